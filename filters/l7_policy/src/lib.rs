//! L7 policy: Cilium's HTTP rule language (`PortRuleHTTP`) in any Envoy.
//!
//! The pure core: [`config`] compiles the rules once per VM, [`path`] refuses
//! paths that could slip past them, [`rule`] matches one request, and
//! [`verdict`] is the whole decision on one request's headers, and
//! [`cilium`] turns a `CiliumNetworkPolicy` into this filter's configuration.
//! `filter` is the proxy-wasm shell (also run by `suite.wasm`).

pub mod cilium;
pub mod config;
pub mod path;
pub mod pattern;
pub mod rule;
pub mod verdict;

pub mod filter;

// The module's entry point; off when another module (the suite) embeds this one.
#[cfg(all(target_arch = "wasm32", feature = "plugin"))]
// Only the callbacks the filter uses: Envoy skips the others.
filter_common::http_module!(filter::configure, [request_headers]);
