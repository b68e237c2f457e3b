//! Peer metadata: who is calling, from Istio's metadata exchange.
//!
//! The pure core: [`structpb`] decodes `google.protobuf.Struct` from its wire
//! form, [`flatnode`] reads Istio's FlatBuffer filter state, [`peer`] turns
//! either (or ambient baggage) into a peer, [`identity`] decides trust and
//! the outputs, [`cache`] and [`config`] hold the rest. `filter` is the
//! proxy-wasm shell (also run by `suite.wasm`).

pub mod cache;
pub mod config;
pub mod flatnode;
pub mod identity;
pub mod peer;
pub mod structpb;

pub mod filter;

// The module's entry point; off when another module (the suite) embeds this one.
#[cfg(all(target_arch = "wasm32", feature = "plugin"))]
// Only the callbacks the filter uses: Envoy skips the others.
filter_common::http_module!(filter::configure, [request_headers, request_trailers]);
