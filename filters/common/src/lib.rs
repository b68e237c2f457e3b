//! Shared building blocks for the proxy-wasm filters in this workspace.
//!
//! Everything outside the `host*` modules is plain Rust. [`host`] is the thin
//! layer over the proxy-wasm ABI: on wasm32 it calls Envoy; natively it calls
//! [`recording_host`], a stand-in that tests fill and read, so the filters'
//! shells ([`host_plugin`] and above) are unit-tested natively too.

pub mod base64;
pub mod capture;
pub mod config;
mod duplicate_keys;
pub mod header;
pub mod json;
pub mod pairs;
pub mod peer;
pub mod percent;
pub mod predicate;
pub mod ratelimit;
pub mod re2;
pub mod sink;
pub mod sort;
pub mod spiffe;
pub mod tap;

pub mod host;
pub mod host_contexts;
pub mod host_plugin;
pub mod host_sink;
pub mod host_tap;
#[cfg(not(target_arch = "wasm32"))]
pub mod recording_host;
