//! HTTP tap: one record per stream in Envoy's `http_buffered_trace` JSON.
//!
//! [`config`], [`matcher`], [`record`] and [`redact`] are the pure core; `filter` is the
//! proxy-wasm shell that copies data out of Envoy as it streams past.

pub mod config;
pub mod matcher;
pub mod record;
pub mod redact;

pub mod filter;

// The module's entry point; off when another module (the suite) embeds this one.
#[cfg(all(target_arch = "wasm32", feature = "plugin"))]
filter_common::http_module!(filter::configure);
