//! L7 policy: Cilium's HTTP rule language (`PortRuleHTTP`) in any Envoy.
//!
//! The pure core: [`config`] compiles the rules once per VM, [`path`] refuses
//! paths that could slip past them, [`rule`] matches one request, and
//! [`cilium`] turns a `CiliumNetworkPolicy` into this filter's configuration.
//! `filter` is the proxy-wasm shell.

pub mod cilium;
pub mod config;
pub mod path;
pub mod pattern;
pub mod rule;

#[cfg(target_arch = "wasm32")]
mod filter;
