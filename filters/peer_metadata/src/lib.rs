//! Peer metadata: who is calling, from Istio's metadata exchange.
//!
//! [`structpb`] decodes `google.protobuf.Struct` from its wire form; the rest
//! of the pure core turns the decoded tree into a peer identity. `filter` is
//! the proxy-wasm shell.

pub mod cache;
pub mod config;
pub mod identity;
pub mod peer;
pub mod structpb;

#[cfg(target_arch = "wasm32")]
mod filter;
