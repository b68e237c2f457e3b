//! The proxy-wasm shell: each configured filter's plugin, chained in order.

use crate::config::Config;
use filter_common::host::load_config;
use filter_common::host::plugin::{Chain, Plugin};

/// The chain for one configuration; `None` after logging what is wrong.
pub fn configure(raw: Option<&[u8]>) -> Option<Box<dyn Plugin>> {
    let config = load_config("suite", raw, Config::parse)?;
    let mut chain = Vec::new();
    for part in parts(config) {
        chain.push(part?);
    }
    Some(Box::new(Chain(chain)))
}

include!(concat!(env!("OUT_DIR"), "/plugins.rs"));
