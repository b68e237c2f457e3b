//! The thin layer over the proxy-wasm host shared by every filter: logging set-up,
//! configuration loading, counters and property reads. Nothing here panics on a
//! host error: a failed stat or property read degrades, it never traps the VM.

use crate::config::ConfigError;
use proxy_wasm::hostcalls;
use proxy_wasm::types::{LogLevel, MetricType};

/// Routes the `log` crate to Envoy at Envoy's current level, so that debug
/// messages are not even formatted when Envoy would drop them.
pub fn init_logging() {
    proxy_wasm::set_log_level(hostcalls::get_log_level().unwrap_or(LogLevel::Info));
}

/// Reads and parses the plugin configuration. On error, logs one line naming the
/// filter, the field and the fix, and returns `None`: the caller then returns
/// `false` from `on_configure` so that Envoy never runs a half-configured filter.
pub fn load_config<T>(
    filter: &str,
    raw: Option<Vec<u8>>,
    parse: impl FnOnce(Option<&[u8]>) -> Result<T, ConfigError>,
) -> Option<T> {
    match parse(raw.as_deref()) {
        Ok(config) => Some(config),
        Err(e) => {
            log::error!("{filter}: {e}");
            None
        }
    }
}

/// An Envoy counter. Envoy shows it as `wasmcustom.<name>` in its stats.
#[derive(Clone, Copy, Debug)]
pub struct Counter(Option<u32>);

impl Counter {
    pub fn define(name: &str) -> Counter {
        match hostcalls::define_metric(MetricType::Counter, name) {
            Ok(id) => Counter(Some(id)),
            Err(status) => {
                log::warn!("cannot define counter {name}: {status:?}; it will stay at zero");
                Counter(None)
            }
        }
    }

    pub fn inc(self) {
        self.add(1);
    }

    pub fn add(self, n: u64) {
        if let (Some(id), Ok(n)) = (self.0, i64::try_from(n)) {
            if n > 0 {
                let _ = hostcalls::increment_metric(id, n);
            }
        }
    }
}

/// The first of several property paths that the host answers. Envoy versions
/// expose some attributes under different names (`xds.node` and `node`).
pub fn first_property(paths: &[&[&str]]) -> Option<Vec<u8>> {
    paths
        .iter()
        .find_map(|path| hostcalls::get_property(path.to_vec()).ok().flatten())
}
