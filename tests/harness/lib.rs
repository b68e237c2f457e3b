//! The real-Envoy integration harness every filter's tests use.
//!
//! - [`Envoy`]: starts the Envoy named by `ENVOY_BIN` (default: the project's
//!   virtualenv) on free loopback ports, waits until admin says it is live,
//!   reads stats, prints its log when a test fails, stops it on drop.
//! - [`bootstrap`]: generated Envoy configurations that load `dist/*.wasm`.
//! - [`Upstream`]: an HTTP/1.1 server that records every request exactly as
//!   it arrived (header order, repeats, raw bytes) and echoes it back.
//! - [`Request`]: HTTP/1.1 (raw bytes on the wire) and HTTP/2 (h2c) clients.
//! - [`TcpEcho`]: a TCP echo server for network filters.

pub mod bootstrap;
pub mod check;
pub mod client;
pub mod envoy;
pub mod istio;
pub mod paths;
pub mod sidecar;
pub mod tap;
pub mod tcp;
pub mod tls;
pub mod upstream;
mod wire;

/// A real `x-envoy-peer-metadata` value (Istio 1.14, workload `netshoot` in
/// namespace `mark`), from the seed documents.
pub const PEER_METADATA_SEED: &str = "ChwKDkFQUF9DT05UQUlORVJTEgoaCG5ldHNob290ChoKCkNMVVNURVJfSUQSDBoKS3ViZXJuZXRlcwogCgxJTlNUQU5DRV9JUFMSEBoOMTcyLjIxLjIwNi4yMjgKGQoNSVNUSU9fVkVSU0lPThIIGgYxLjE0LjMKlAEKBkxBQkVMUxKJASqGAQokChlzZWN1cml0eS5pc3Rpby5pby90bHNNb2RlEgcaBWlzdGlvCi0KH3NlcnZpY2UuaXN0aW8uaW8vY2Fub25pY2FsLW5hbWUSChoIbmV0c2hvb3QKLwojc2VydmljZS5pc3Rpby5pby9jYW5vbmljYWwtcmV2aXNpb24SCBoGbGF0ZXN0ChoKB01FU0hfSUQSDxoNY2x1c3Rlci5sb2NhbAoSCgROQU1FEgoaCG5ldHNob290ChMKCU5BTUVTUEFDRRIGGgRtYXJrCj0KBU9XTkVSEjQaMmt1YmVybmV0ZXM6Ly9hcGlzL3YxL25hbWVzcGFjZXMvbWFyay9wb2RzL25ldHNob290ChcKEVBMQVRGT1JNX01FVEFEQVRBEgIqAAobCg1XT1JLTE9BRF9OQU1FEgoaCG5ldHNob290";

/// Bytes a shipped module may have: three must fit in one Kubernetes
/// ConfigMap (1 MiB). The largest, the suite, holds four filters.
pub const MODULE_BUDGET: u64 = 320 * 1024;

/// The modules `make build` writes to `dist/`: every filter of the one list
/// (`filter_registry`), then the suite.
pub fn modules() -> Vec<String> {
    filter_registry::modules().unwrap_or_else(|e| panic!("the filters' list: {e}"))
}

pub use bootstrap::{wasm_filter, wasm_network_filter, Bootstrap};
pub use client::{Request, Response};
pub use envoy::{Envoy, StartError};
pub use tcp::TcpEcho;
pub use upstream::{pattern, Received, Upstream};

/// A small deterministic generator for test corpora: the same on every run.
pub struct Lcg(pub u64);

impl Lcg {
    pub fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Header lists as the harness carries them: names as sent, raw value bytes.
pub type Headers = Vec<(String, Vec<u8>)>;

/// All values of `name` (ASCII case-insensitive) in order.
pub fn header_values<'a>(headers: &'a Headers, name: &str) -> Vec<&'a [u8]> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
        .collect()
}
