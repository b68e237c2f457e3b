//! The host calls a module makes per request, counted without Envoy: the
//! module's Rust code driven through filter-common's recording host exactly
//! as Envoy drives it. Counts are deterministic where timings are not, so
//! tests hold them to budgets and the benchmark builds its floor from them.

use filter_common::host::contexts::ConfigureFn;
use filter_common::host::harness::Harness;
use filter_common::host::plugin::Plugin;
pub use filter_common::host::recording::Call;
use filter_common::host::recording::{self as host, HostState};
use filter_common::host::MapType;
use serde_json::Value;
use std::collections::BTreeMap;

/// One request as the benchmark's client sends it.
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

/// What one request asked of the host.
pub struct Calls {
    pub calls: BTreeMap<Call, usize>,
    /// Property paths read, `.`-joined.
    pub property_reads: Vec<String>,
}

impl Calls {
    pub fn count(&self, call: Call) -> usize {
        self.calls.get(&call).copied().unwrap_or(0)
    }

    pub fn total(&self) -> usize {
        self.calls.values().sum()
    }
}

/// The host calls `suite.wasm` configured with `parts` makes for `request`.
pub fn suite(parts: &[(&str, Value)], request: &Request) -> Result<Calls, String> {
    let config: serde_json::Map<String, Value> = parts
        .iter()
        .map(|(name, c)| (name.to_string(), c.clone()))
        .collect();
    module(suite::filter::configure, &Value::Object(config), request)
}

/// The host calls the module whose plugins `configure` makes, configured
/// with `config`, makes for `request` on a warm worker (its second request:
/// caches filled), from the stream's creation to its deletion, with a `200`
/// response and no client certificate.
pub fn module(
    configure: ConfigureFn<dyn Plugin>,
    config: &Value,
    request: &Request,
) -> Result<Calls, String> {
    host::with(|h| *h = HostState::default());
    let mut plugin = Harness::configure(configure, &config.to_string())
        .map_err(|logs| format!("configuration refused: {logs:?}"))?;
    let mut headers: Vec<(&str, &[u8])> = vec![
        (":method", request.method.as_bytes()),
        (":path", request.path.as_bytes()),
        (":authority", b"127.0.0.1"),
        (":scheme", b"http"),
    ];
    headers.extend(
        request
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_bytes())),
    );
    let mut last = None;
    for _ in 0..2 {
        host::with(|h| {
            h.set_map(MapType::HttpRequestHeaders, &headers);
            h.set_map(MapType::HttpResponseHeaders, &[(":status", b"200")]);
            h.property_reads.clear();
        });
        host::take_calls();
        let stream = plugin.stream();
        stream.request_headers(true);
        stream.response_headers(true);
        stream.log();
        stream.delete();
        last = Some(host::with(|h| Calls {
            calls: h.tally(),
            property_reads: h.property_reads.clone(),
        }));
    }
    last.ok_or_else(|| "no request ran".to_string())
}
