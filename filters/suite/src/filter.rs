//! The proxy-wasm shell: each configured filter's plugin, chained in order.

use crate::config::Config;
use filter_common::host::load_config;
use filter_common::host::plugin::{Chain, Plugin};

/// The chain for one configuration; `None` after logging what is wrong.
pub fn configure(raw: Option<&[u8]>) -> Option<Box<dyn Plugin>> {
    let config = load_config("suite", raw, Config::parse)?;
    // The tap first: it then sees the replies the parts after it send.
    let parts = [
        config.tap_http.map(tap_http::filter::plugin),
        config.peer_metadata.map(peer_metadata::filter::plugin),
        config.l7_policy.map(l7_policy::filter::plugin),
        config.cf_headers.map(cf_headers::filter::plugin),
    ];
    let mut chain = Vec::new();
    for part in parts.into_iter().flatten() {
        chain.push(part?);
    }
    Some(Box::new(Chain(chain)))
}
