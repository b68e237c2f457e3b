//! CF header stamping: what cf-for-k8s does with one VirtualService per route
//! (`headers.request.set` of the four CF headers), as one proxy-wasm filter.
//!
//! [`config`] and [`stamp`] are the pure core; `filter` is the proxy-wasm shell
//! (also run by `suite.wasm`).

pub mod config;
pub mod hosts;
pub mod identity;
pub mod stamp;

pub mod filter;

// The module's entry point; off when another module (the suite) embeds this one.
#[cfg(all(target_arch = "wasm32", feature = "plugin"))]
// Only the callbacks the filter uses: Envoy skips the others.
filter_common::http_module!(
    filter::configure,
    [request_headers, request_trailers, response_headers]
);
