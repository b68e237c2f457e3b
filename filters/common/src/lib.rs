//! Shared building blocks for the proxy-wasm filters in this workspace.
//!
//! Everything outside [`host`] is plain Rust, compiled and unit-tested natively.
//! [`host`] is the thin layer over the proxy-wasm ABI and only exists on wasm32,
//! so native test binaries never link against host calls they cannot resolve.

pub mod base64;
pub mod capture;
pub mod config;
mod duplicate_keys;
pub mod header;
pub mod json;
pub mod pairs;
pub mod peer;
pub mod predicate;
pub mod ratelimit;
pub mod re2;
pub mod sink;
pub mod sort;
pub mod spiffe;
pub mod tap;

#[cfg(target_arch = "wasm32")]
pub mod host;
#[cfg(target_arch = "wasm32")]
pub mod host_plugin;
#[cfg(target_arch = "wasm32")]
pub mod host_sink;
#[cfg(target_arch = "wasm32")]
pub mod host_tap;
