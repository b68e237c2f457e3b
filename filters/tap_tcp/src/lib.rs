//! TCP tap: a network filter recording connections in Envoy's
//! `socket_buffered_trace` JSON, one record per connection (or per segment of
//! a long-lived one).
//!
//! [`config`], [`matcher`] and [`trace`] are the pure core; `filter` is the
//! proxy-wasm shell that copies bytes out of Envoy as they pass.

pub mod config;
pub mod matcher;
pub mod trace;

pub mod filter;

#[cfg(target_arch = "wasm32")]
filter_common::network_module!(
    filter::configure,
    [
        new_connection,
        downstream_data,
        upstream_data,
        downstream_close,
        done,
        tick,
        http_call_response
    ]
);
