//! CF header stamping: what cf-for-k8s does with one VirtualService per route
//! (`headers.request.set` of the four CF headers), as one proxy-wasm filter.
//!
//! [`config`] and [`stamp`] are the pure core; `filter` is the proxy-wasm shell.

pub mod config;
pub mod hosts;
pub mod identity;
pub mod stamp;

#[cfg(target_arch = "wasm32")]
mod filter;
