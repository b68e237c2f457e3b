//! The host layer: everything that talks to Envoy through the proxy-wasm ABI.
//! Its files build on each other in one direction, never in a circle:
//!
//! - [`types`]: the ABI's enumerations (header maps, buffers, actions);
//! - [`memory`]: memory handed between the module and the host;
//! - `abi` (wasm32) or [`recording`] (native): the host functions, Envoy's
//!   imports or a stand-in that tests fill and read;
//! - [`calls`]: the host calls as safe functions that never trap on a status
//!   (re-exported here, so a filter writes `host::header_value`);
//! - [`contexts`]: the root, stream and connection contexts and their plugins;
//! - [`plugin`]: what a filter implements (`Plugin`, `StreamFilter`,
//!   `NetworkPlugin`, `ConnectionFilter`), the `Exchange` and the `Chain`;
//! - [`exports`]: the `http_module!` and `network_module!` entry points;
//! - [`sink`], [`tap`]: the host side of the tap filters' parts;
//! - [`harness`] (native): drives a module's plugin callback by callback.

#[cfg(target_arch = "wasm32")]
mod abi;
pub mod calls;
pub mod contexts;
pub mod exports;
#[cfg(not(target_arch = "wasm32"))]
pub mod harness;
pub mod memory;
pub mod plugin;
#[cfg(not(target_arch = "wasm32"))]
pub mod recording;
pub mod sink;
pub mod tap;
pub mod types;

pub use calls::*;
pub use types::*;
