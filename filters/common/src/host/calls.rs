//! The host calls as safe functions (not the SDK's, whose wrappers panic on
//! statuses Envoy really returns), logging, configuration loading,
//! counters and property reads. Nothing here panics on a host error: a failed
//! stat or property read degrades, it never traps the VM.

use crate::config::ConfigError;
use crate::header::pairs::{encode_pairs, HeaderMap};
use std::ptr::{null, null_mut};
use std::time::Duration;

// Native builds (unit tests) answer the same calls from a recording host.
#[cfg(target_arch = "wasm32")]
use super::abi;
use super::memory::host_bytes;
#[cfg(not(target_arch = "wasm32"))]
use super::recording::abi;
use super::types::{BufferType, MapType};

const STATUS_CAS_MISMATCH: u32 = 8;

/// Sets a property (a single-segment path: filter state `wasm.<key>`);
/// `Err(status)` when Envoy refuses it.
pub fn set_property(key: &str, value: &[u8]) -> Result<(), u32> {
    // SAFETY: plain host call reading two live slices.
    status(unsafe { abi::proxy_set_property(key.as_ptr(), key.len(), value.as_ptr(), value.len()) })
}

fn status(code: u32) -> Result<(), u32> {
    if code == 0 {
        Ok(())
    } else {
        Err(code)
    }
}

/// Replaces every copy of header `name` with one `value`, or removes them all
/// (`None`). `Err(status)` when Envoy refuses (no such map in this phase).
pub fn set_header(map: MapType, name: &str, value: Option<&[u8]>) -> Result<(), u32> {
    // SAFETY: plain host calls reading live slices.
    status(unsafe {
        match value {
            Some(v) => abi::proxy_replace_header_map_value(
                map as u32,
                name.as_ptr(),
                name.len(),
                v.as_ptr(),
                v.len(),
            ),
            None => abi::proxy_remove_header_map_value(map as u32, name.as_ptr(), name.len()),
        }
    })
}

/// Appends one more copy of header `name`.
pub fn add_header(map: MapType, name: &str, value: &[u8]) -> Result<(), u32> {
    // SAFETY: plain host call reading live slices.
    status(unsafe {
        abi::proxy_add_header_map_value(
            map as u32,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        )
    })
}

/// Answers the request from the filter (Envoy's local reply).
pub fn send_response(code: u32, headers: &[(&str, &str)], body: &[u8]) -> Result<(), u32> {
    let pairs: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
    let map = encode_pairs(&pairs);
    // SAFETY: plain host call reading live slices.
    status(unsafe {
        abi::proxy_send_local_response(
            code,
            null(),
            0,
            body.as_ptr(),
            body.len(),
            map.as_ptr(),
            map.len(),
            -1,
        )
    })
}

/// A header or trailer map, `None` when the host has none (for example the
/// response headers of a stream reset before any response).
pub fn header_map(map: MapType) -> Option<HeaderMap> {
    HeaderMap::decode(header_map_bytes(map)?)
}

/// A header or trailer map as the host serializes it, not decoded.
pub fn header_map_bytes(map: MapType) -> Option<Vec<u8>> {
    let (mut data, mut size) = (null_mut(), 0);
    // SAFETY: plain host call with out-pointers to locals.
    let status = unsafe { abi::proxy_get_header_map_pairs(map as u32, &mut data, &mut size) };
    host_bytes(status, data, size)
}

/// Replaces a whole header or trailer map with `pairs`.
pub fn set_header_map(map: MapType, pairs: &[(&str, &[u8])]) -> Result<(), u32> {
    let encoded = encode_pairs(pairs);
    // SAFETY: plain host call reading a live slice.
    status(unsafe { abi::proxy_set_header_map_pairs(map as u32, encoded.as_ptr(), encoded.len()) })
}

/// Up to `max` bytes of a body buffer from `start`; empty when there is none.
pub fn buffer(kind: BufferType, start: usize, max: usize) -> Vec<u8> {
    let (mut data, mut size) = (null_mut(), 0);
    // SAFETY: plain host call with out-pointers to locals.
    let status =
        unsafe { abi::proxy_get_buffer_bytes(kind as u32, start, max, &mut data, &mut size) };
    host_bytes(status, data, size).unwrap_or_default()
}

/// The `log` crate's messages, to Envoy's log.
struct EnvoyLog;

impl log::Log for EnvoyLog {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }

    fn log(&self, record: &log::Record) {
        let level = match record.level() {
            log::Level::Trace => 0,
            log::Level::Debug => 1,
            log::Level::Info => 2,
            log::Level::Warn => 3,
            log::Level::Error => 4,
        };
        let message = record.args().to_string();
        // SAFETY: plain host call reading a live slice.
        unsafe { abi::proxy_log(level, message.as_ptr(), message.len()) };
    }

    fn flush(&self) {}
}

/// Routes the `log` crate to Envoy at Envoy's current level, so that debug
/// messages are not even formatted when Envoy would drop them.
pub fn init_logging() {
    let _ = log::set_logger(&EnvoyLog);
    let mut level = 2;
    // SAFETY: plain host call with an out-pointer to a local.
    if unsafe { abi::proxy_get_log_level(&mut level) } != 0 {
        level = 2;
    }
    log::set_max_level(match level {
        0 => log::LevelFilter::Trace,
        1 => log::LevelFilter::Debug,
        2 => log::LevelFilter::Info,
        3 => log::LevelFilter::Warn,
        _ => log::LevelFilter::Error,
    });
}

/// The plugin configuration Envoy holds for this root context.
pub fn plugin_configuration(size: usize) -> Option<Vec<u8>> {
    Some(buffer(BufferType::PluginConfiguration, 0, size)).filter(|b| !b.is_empty())
}

/// One value of a header (the first copy), `None` when absent.
pub fn header_value(map: MapType, name: &str) -> Option<Vec<u8>> {
    let (mut data, mut size) = (null_mut(), 0);
    // SAFETY: plain host call with a live input slice and out-pointers to locals.
    let status = unsafe {
        abi::proxy_get_header_map_value(map as u32, name.as_ptr(), name.len(), &mut data, &mut size)
    };
    host_bytes(status, data, size).filter(|_| !data.is_null())
}

/// Host callbacks for another context from now on (a root's tick acting
/// for a connection); `false` when the context is gone.
pub fn set_effective_context(context_id: u32) -> bool {
    // SAFETY: plain host call.
    unsafe { abi::proxy_set_effective_context(context_id) == 0 }
}

/// Asks for the root context's tick every `period`.
pub fn set_tick_period(period: Duration) -> Result<(), u32> {
    let ms = u32::try_from(period.as_millis()).unwrap_or(u32::MAX);
    // SAFETY: plain host call.
    status(unsafe { abi::proxy_set_tick_period_milliseconds(ms) })
}

/// Sends an HTTP request to `cluster`; the answer comes to the root
/// context's `on_http_call_response` with the returned token.
pub fn http_call(
    cluster: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> Result<u32, u32> {
    let pairs: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
    let map = encode_pairs(&pairs);
    let trailers = encode_pairs(&[]);
    let ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
    let mut token = 0;
    // SAFETY: plain host call reading live slices, with an out-pointer to a local.
    status(unsafe {
        abi::proxy_http_call(
            cluster.as_ptr(),
            cluster.len(),
            map.as_ptr(),
            map.len(),
            body.as_ptr(),
            body.len(),
            trailers.as_ptr(),
            trailers.len(),
            ms,
            &mut token,
        )
    })?;
    Ok(token)
}

/// A value in the VM-wide shared data, with its compare-and-swap token.
pub fn shared_data(key: &str) -> (Option<Vec<u8>>, u32) {
    let (mut data, mut size, mut cas) = (null_mut(), 0, 0);
    // SAFETY: plain host call with a live input slice and out-pointers to locals.
    let status = unsafe {
        abi::proxy_get_shared_data(key.as_ptr(), key.len(), &mut data, &mut size, &mut cas)
    };
    let value = host_bytes(status, data, size).filter(|_| !data.is_null());
    (value, if status == 0 { cas } else { 0 })
}

/// Why a shared-data write failed.
#[derive(Debug, PartialEq, Eq)]
pub enum SharedDataError {
    /// Another worker wrote since `cas` was read: read again.
    CasMismatch,
    Other(u32),
}

/// Writes shared data if nobody wrote since `cas` was read (0: unconditionally).
pub fn set_shared_data(key: &str, value: &[u8], cas: u32) -> Result<(), SharedDataError> {
    // SAFETY: plain host call reading live slices.
    let code = unsafe {
        abi::proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas)
    };
    match code {
        0 => Ok(()),
        STATUS_CAS_MISMATCH => Err(SharedDataError::CasMismatch),
        other => Err(SharedDataError::Other(other)),
    }
}

/// Reads and parses the plugin configuration. On error, logs one line naming the
/// filter, the field and the fix, and returns `None`: the caller then returns
/// `false` from `on_configure` so that Envoy never runs a half-configured filter.
pub fn load_config<T>(
    filter: &str,
    raw: Option<&[u8]>,
    parse: impl FnOnce(Option<&[u8]>) -> Result<T, ConfigError>,
) -> Option<T> {
    match parse(raw) {
        Ok(config) => Some(config),
        Err(e) => {
            log::error!("{filter}: {e}");
            None
        }
    }
}

/// An Envoy counter. Envoy shows it as `wasmcustom.<name>` in its stats.
#[derive(Clone, Copy, Debug)]
pub struct Counter(Option<u32>);

impl Counter {
    pub fn define(name: &str) -> Counter {
        let mut id = 0;
        // SAFETY: plain host call reading a live slice, out-pointer to a local.
        match unsafe { abi::proxy_define_metric(0, name.as_ptr(), name.len(), &mut id) } {
            0 => Counter(Some(id)),
            status => {
                log::warn!("cannot define counter {name}: status {status}; it will stay at zero");
                Counter(None)
            }
        }
    }

    pub fn inc(self) {
        self.add(1);
    }

    pub fn add(self, n: u64) {
        if let (Some(id), Ok(n)) = (self.0, i64::try_from(n)) {
            if n > 0 {
                // SAFETY: plain host call.
                unsafe { abi::proxy_increment_metric(id, n) };
            }
        }
    }
}

/// A property, `None` for any status but OK: the SDK's wrapper panics on
/// statuses it does not expect, which a filter-state object of a type it does
/// not know can produce.
pub fn property(path: &[&str]) -> Option<Vec<u8>> {
    // Envoy's path encoding: segments each followed by a NUL.
    let mut encoded = Vec::new();
    for segment in path {
        encoded.extend_from_slice(segment.as_bytes());
        encoded.push(0);
    }
    encoded.pop();
    let (mut data, mut size) = (null_mut(), 0);
    // SAFETY: plain host call with a live input slice and out-pointers to locals.
    let status =
        unsafe { abi::proxy_get_property(encoded.as_ptr(), encoded.len(), &mut data, &mut size) };
    host_bytes(status, data, size).filter(|_| !data.is_null())
}

/// The first of several property paths that the host answers. Envoy versions
/// expose some attributes under different names (`xds.node` and `node`).
pub fn first_property(paths: &[&[&str]]) -> Option<Vec<u8>> {
    paths.iter().find_map(|path| property(path))
}

/// A property as UTF-8 text (`source.address`, `request.id`).
pub fn property_string(path: &[&str]) -> Option<String> {
    first_property(&[path]).and_then(|v| String::from_utf8(v).ok())
}

/// A property Envoy encodes as a little-endian 64-bit integer (`connection.id`,
/// `destination.port`, `request.time`).
pub fn property_u64(path: &[&str]) -> Option<u64> {
    first_property(&[path])
        .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
        .map(u64::from_le_bytes)
}

/// Host time in nanoseconds since the epoch (0 if the host will not say).
pub fn now_nanos() -> u64 {
    let mut nanos = 0;
    // SAFETY: plain host call with an out-pointer to a local.
    if unsafe { abi::proxy_get_current_time_nanoseconds(&mut nanos) } != 0 {
        return 0;
    }
    nanos
}

/// The URI SAN of the downstream peer certificate (a SPIFFE ID in a mesh),
/// when the connection is mTLS. Envoy has one only when the client presented
/// a certificate, which is what `connection.mtls` says: one read, not two
/// (a value read costs a call back into the VM to allocate it).
pub fn mtls_principal() -> Option<String> {
    property_string(&["connection", "uri_san_peer_certificate"]).filter(|p| !p.is_empty())
}

/// Removes from the request trailers every copy of the headers in `owned`,
/// in any spelling ([`crate::header::copies`]); returns how many lines went.
/// Trailers reach the app too, and some frameworks merge them into the
/// headers, so a filter that owns a header owns its trailer copies as well.
pub fn remove_trailer_copies(owned: &[String]) -> u64 {
    let Some(trailers) = header_map(MapType::HttpRequestTrailers) else {
        return 0;
    };
    let copies = crate::header::copies(owned, trailers.iter().map(|(name, _)| name));
    for name in &copies.spellings {
        // Fails only without a trailer map, which was just read.
        let _ = set_header(MapType::HttpRequestTrailers, name, None);
    }
    copies.lines
}
