//! The HTTP filters in one module (`dist/suite.wasm`): any configured subset
//! of peer_metadata, l7_policy, cf_headers and tap_http runs in one Wasm
//! context per request, so the per-filter boundary cost is paid once and the
//! request headers are read once.
//!
//! [`config`] is the pure core; `filter` is the proxy-wasm shell.

pub mod config;

pub mod filter;

#[cfg(target_arch = "wasm32")]
filter_common::http_module!(filter::configure);
