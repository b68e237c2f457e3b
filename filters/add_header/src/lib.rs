//! Sets one response header from the plugin configuration.
//!
//! [`config`] is the pure core; `filter` is the proxy-wasm shell.

pub mod config;
pub mod filter;

// The module's entry point; off when another module (the suite) embeds this one.
#[cfg(all(target_arch = "wasm32", feature = "plugin"))]
// Only the callback the filter uses: Envoy skips the others.
filter_common::http_module!(filter::configure, [response_headers]);
