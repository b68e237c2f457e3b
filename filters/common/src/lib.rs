//! Shared building blocks for the proxy-wasm filters in this workspace.
//!
//! Everything outside [`host`] is plain Rust. [`host`] is the layer over the
//! proxy-wasm ABI: on wasm32 it calls Envoy; natively it calls
//! [`host::recording`], a stand-in that tests fill and read, so the filters'
//! shells are unit-tested natively too.

pub mod config;
pub mod encoding;
pub mod header;
pub mod peer;
pub mod predicate;
pub mod sort;
pub mod tap;

pub mod host;
