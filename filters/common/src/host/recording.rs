//! A stand-in for Envoy behind [`crate::host`] in native builds: the same
//! ABI functions the module imports on wasm32, answered from a per-thread
//! [`HostState`] that a test fills (headers, properties, buffers, time) and
//! reads back (what was set, removed, logged, counted, replied), with every
//! call recorded. The shells above it run unchanged, so a test drives a
//! filter callback by callback as Envoy would and sees what it asked of the
//! host, and how many times: host calls per request are deterministic where
//! timings are not.
//!
//! Where Envoy's answers matter to the shells, this host gives Envoy's:
//! header names are lowercased on write, an absent header or property is
//! `NotFound`, an empty value comes back as a null pointer (proxy-wasm's
//! `copyToPointerSize`), filter state set by `proxy_set_property` is read back
//! by `proxy_get_property` under the same name, and a map the current phase
//! has not got is an error.

use super::memory::allocate;
use super::types::MapType;
use crate::header::pairs::{encode_pairs, HeaderMap};
use std::cell::RefCell;
use std::collections::BTreeMap;

/// The proxy-wasm statuses this host answers with.
const OK: u32 = 0;
const NOT_FOUND: u32 = 1;
const BAD_ARGUMENT: u32 = 2;
const CAS_MISMATCH: u32 = 8;

/// One kind of host call: what a budget counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Call {
    GetHeaderMapPairs,
    GetHeaderMapValue,
    SetHeaderMapPairs,
    ReplaceHeaderMapValue,
    AddHeaderMapValue,
    RemoveHeaderMapValue,
    GetBufferBytes,
    GetProperty,
    SetProperty,
    Log,
    GetLogLevel,
    GetCurrentTime,
    SetTickPeriod,
    DefineMetric,
    IncrementMetric,
    GetSharedData,
    SetSharedData,
    HttpCall,
    SetEffectiveContext,
    SendLocalResponse,
}

/// A local reply a filter sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u32,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

/// An HTTP call a filter dispatched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpCall {
    pub cluster: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    pub timeout_ms: u32,
}

/// What this host holds and what it was asked.
#[derive(Debug)]
pub struct HostState {
    /// Header and trailer maps present in this phase, by ABI map kind.
    pub maps: BTreeMap<u32, Vec<(String, Vec<u8>)>>,
    /// Body and data buffers, and the plugin configuration, by ABI kind.
    pub buffers: BTreeMap<u32, Vec<u8>>,
    /// Properties by path (segments joined with NUL, as on the wire);
    /// filter state a filter sets lands here too, under its key.
    pub properties: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Statuses to answer instead of the real one, by call (Envoy refusing
    /// filter state that exists read-only, a missing map, ...).
    pub refuse: BTreeMap<Call, u32>,
    pub log_level: u32,
    pub logs: Vec<(u32, String)>,
    pub now_nanos: u64,
    pub tick_period_ms: Option<u32>,
    /// Defined metrics: name and value; the id is the index.
    pub metrics: Vec<(String, i64)>,
    pub shared_data: BTreeMap<String, (Vec<u8>, u32)>,
    pub http_calls: Vec<HttpCall>,
    pub replies: Vec<LocalReply>,
    pub effective_context: Option<u32>,
    /// The paths of property reads, in order, segments joined with `.`.
    pub property_reads: Vec<String>,
    /// Every call, in order.
    pub calls: Vec<Call>,
}

impl Default for HostState {
    fn default() -> HostState {
        HostState {
            maps: BTreeMap::new(),
            buffers: BTreeMap::new(),
            properties: BTreeMap::new(),
            refuse: BTreeMap::new(),
            log_level: 2,
            logs: Vec::new(),
            now_nanos: 1_700_000_000_000_000_000,
            tick_period_ms: None,
            metrics: Vec::new(),
            shared_data: BTreeMap::new(),
            http_calls: Vec::new(),
            replies: Vec::new(),
            effective_context: None,
            property_reads: Vec::new(),
            calls: Vec::new(),
        }
    }
}

impl HostState {
    /// A header map's entries; `None` when the phase has not got it.
    pub fn map(&self, map: MapType) -> Option<&[(String, Vec<u8>)]> {
        self.maps.get(&(map as u32)).map(Vec::as_slice)
    }

    /// Every value of header `name` in `map`, in order.
    pub fn header(&self, map: MapType, name: &str) -> Vec<&[u8]> {
        self.map(map)
            .unwrap_or_default()
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
            .collect()
    }

    /// Replaces a whole map (request headers as they arrive, ...), with
    /// names lowercased as Envoy's codecs hand them to filters.
    pub fn set_map(&mut self, map: MapType, headers: &[(&str, &[u8])]) {
        let entries = headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.to_vec()))
            .collect();
        self.maps.insert(map as u32, entries);
    }

    /// A property (or filter state written by another filter) by path.
    pub fn set_property(&mut self, path: &[&str], value: &[u8]) {
        self.properties.insert(path_key(path), value.to_vec());
    }

    pub fn property(&self, path: &[&str]) -> Option<&[u8]> {
        self.properties.get(&path_key(path)).map(Vec::as_slice)
    }

    /// A counter's value by its full name (`cf_headers.stamped`); 0 if never incremented.
    pub fn counter(&self, name: &str) -> i64 {
        self.metrics
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| *v)
            .sum()
    }

    /// How many calls of `kind` were made.
    pub fn count(&self, kind: Call) -> usize {
        self.calls.iter().filter(|c| **c == kind).count()
    }

    /// Calls by kind, as `(kind, count)` in a fixed order.
    pub fn tally(&self) -> BTreeMap<Call, usize> {
        let mut tally = BTreeMap::new();
        for call in &self.calls {
            *tally.entry(*call).or_insert(0) += 1;
        }
        tally
    }
}

fn path_key(path: &[&str]) -> Vec<u8> {
    path.join("\0").into_bytes()
}

thread_local! {
    static HOST: RefCell<HostState> = RefCell::new(HostState::default());
}

/// Runs `f` on this thread's host (each test runs on its own thread).
pub fn with<R>(f: impl FnOnce(&mut HostState) -> R) -> R {
    HOST.with(|h| f(&mut h.borrow_mut()))
}

/// The calls recorded since the last [`take_calls`], by kind, when they are
/// at most `budget`; otherwise why not, with the tally.
pub fn within_budget(budget: usize) -> Result<BTreeMap<Call, usize>, String> {
    let tally = with(|h| h.tally());
    let total: usize = tally.values().sum();
    if total <= budget {
        Ok(tally)
    } else {
        Err(format!("{total} host calls, budget {budget}: {tally:?}"))
    }
}

/// Forgets the calls recorded so far (to count one phase on its own).
pub fn take_calls() -> Vec<Call> {
    with(|h| std::mem::take(&mut h.calls))
}

/// Records a call and answers the refusal configured for it, if any.
fn record(call: Call) -> Option<u32> {
    with(|h| {
        h.calls.push(call);
        h.refuse.get(&call).copied()
    })
}

/// Hands bytes to the module as Envoy does: in memory from the module's
/// allocator, a null pointer for nothing.
///
/// # Safety
/// `data` and `size` must be valid for writes.
unsafe fn give(bytes: &[u8], data: *mut *mut u8, size: *mut usize) {
    let pointer = if bytes.is_empty() {
        std::ptr::null_mut()
    } else {
        let p = allocate(bytes.len());
        // SAFETY: `allocate` returned room for exactly `bytes.len()` bytes.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len()) };
        p
    };
    // SAFETY: the caller's out-pointers are valid.
    unsafe {
        *data = pointer;
        *size = bytes.len();
    }
}

/// Envoy's answer to a read: the bytes found, or `NotFound`.
///
/// # Safety
/// As [`give`].
unsafe fn answer(found: Option<Vec<u8>>, data: *mut *mut u8, size: *mut usize) -> u32 {
    match found {
        // SAFETY: the caller's out-pointers.
        Some(bytes) => unsafe {
            give(&bytes, data, size);
            OK
        },
        None => NOT_FOUND,
    }
}

/// # Safety
/// `(p, n)` must be a live byte slice (or `n` 0).
unsafe fn slice<'a>(p: *const u8, n: usize) -> &'a [u8] {
    if n == 0 || p.is_null() {
        &[]
    } else {
        // SAFETY: the caller passes a live slice.
        unsafe { std::slice::from_raw_parts(p, n) }
    }
}

/// # Safety
/// As [`slice`].
unsafe fn text(p: *const u8, n: usize) -> String {
    // SAFETY: as the caller's.
    String::from_utf8_lossy(unsafe { slice(p, n) }).into_owned()
}

fn pairs(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    HeaderMap::decode(bytes.to_vec())
        .map(|m| m.iter().map(|(n, v)| (n.to_string(), v.to_vec())).collect())
        .unwrap_or_default()
}

/// The ABI functions [`crate::host`] imports on wasm32, with the same
/// signatures, answered by this thread's [`HostState`].
#[allow(clippy::too_many_arguments)]
pub(crate) mod abi {
    use super::*;

    pub unsafe fn proxy_get_header_map_pairs(
        map_type: u32,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> u32 {
        if let Some(status) = record(Call::GetHeaderMapPairs) {
            return status;
        }
        let encoded = with(|h| {
            h.maps.get(&map_type).map(|m| {
                let refs: Vec<(&str, &[u8])> =
                    m.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect();
                encode_pairs(&refs)
            })
        });
        // SAFETY: the caller's out-pointers.
        unsafe { answer(encoded, data, size) }
    }

    pub unsafe fn proxy_set_header_map_pairs(map_type: u32, data: *const u8, size: usize) -> u32 {
        if let Some(status) = record(Call::SetHeaderMapPairs) {
            return status;
        }
        // SAFETY: the caller's slice.
        let entries: Vec<(String, Vec<u8>)> = pairs(unsafe { slice(data, size) })
            .into_iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v))
            .collect();
        edit(map_type, |map| *map = entries)
    }

    pub unsafe fn proxy_get_header_map_value(
        map_type: u32,
        key: *const u8,
        key_size: usize,
        value: *mut *mut u8,
        value_size: *mut usize,
    ) -> u32 {
        if let Some(status) = record(Call::GetHeaderMapValue) {
            return status;
        }
        // SAFETY: the caller's slice.
        let key = unsafe { text(key, key_size) };
        let found = with(|h| {
            let map = h.maps.get(&map_type)?;
            map.iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(&key))
                .map(|(_, v)| v.clone())
        });
        // SAFETY: the caller's out-pointers.
        unsafe { answer(found, value, value_size) }
    }

    /// Envoy's header-map edits; `BAD_ARGUMENT` where the phase has no map.
    fn edit(map_type: u32, f: impl FnOnce(&mut Vec<(String, Vec<u8>)>)) -> u32 {
        with(|h| match h.maps.get_mut(&map_type) {
            Some(map) => {
                f(map);
                OK
            }
            None => BAD_ARGUMENT,
        })
    }

    pub unsafe fn proxy_replace_header_map_value(
        map_type: u32,
        key: *const u8,
        key_size: usize,
        value: *const u8,
        value_size: usize,
    ) -> u32 {
        if let Some(status) = record(Call::ReplaceHeaderMapValue) {
            return status;
        }
        // SAFETY: the caller's slices.
        let (key, value) = unsafe { (text(key, key_size), slice(value, value_size).to_vec()) };
        let key = key.to_ascii_lowercase();
        edit(map_type, |map| {
            // Envoy keeps the first copy's place and drops the others.
            let mut kept = false;
            map.retain_mut(|(n, v)| {
                if *n != key {
                    return true;
                }
                let first = !kept;
                if first {
                    *v = value.clone();
                    kept = true;
                }
                first
            });
            if !kept {
                map.push((key, value));
            }
        })
    }

    pub unsafe fn proxy_add_header_map_value(
        map_type: u32,
        key: *const u8,
        key_size: usize,
        value: *const u8,
        value_size: usize,
    ) -> u32 {
        if let Some(status) = record(Call::AddHeaderMapValue) {
            return status;
        }
        // SAFETY: the caller's slices.
        let (key, value) = unsafe { (text(key, key_size), slice(value, value_size).to_vec()) };
        edit(map_type, |map| map.push((key.to_ascii_lowercase(), value)))
    }

    pub unsafe fn proxy_remove_header_map_value(
        map_type: u32,
        key: *const u8,
        key_size: usize,
    ) -> u32 {
        if let Some(status) = record(Call::RemoveHeaderMapValue) {
            return status;
        }
        // SAFETY: the caller's slice.
        let key = unsafe { text(key, key_size) }.to_ascii_lowercase();
        edit(map_type, |map| map.retain(|(n, _)| *n != key))
    }

    pub unsafe fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max: usize,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> u32 {
        if let Some(status) = record(Call::GetBufferBytes) {
            return status;
        }
        let bytes = with(|h| {
            h.buffers.get(&buffer_type).map(|b| {
                let from = start.min(b.len());
                let to = from.saturating_add(max).min(b.len());
                b.get(from..to).unwrap_or_default().to_vec()
            })
        });
        // SAFETY: the caller's out-pointers.
        unsafe { answer(bytes, data, size) }
    }

    pub unsafe fn proxy_get_property(
        path: *const u8,
        path_size: usize,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> u32 {
        if let Some(status) = record(Call::GetProperty) {
            return status;
        }
        // SAFETY: the caller's slice.
        let path = unsafe { slice(path, path_size) }.to_vec();
        let found = with(|h| {
            let read: Vec<u8> = path
                .iter()
                .map(|b| if *b == 0 { b'.' } else { *b })
                .collect();
            h.property_reads
                .push(String::from_utf8_lossy(&read).into_owned());
            h.properties.get(&path).cloned()
        });
        // SAFETY: the caller's out-pointers.
        unsafe { answer(found, data, size) }
    }

    pub unsafe fn proxy_set_property(
        path: *const u8,
        path_size: usize,
        value: *const u8,
        value_size: usize,
    ) -> u32 {
        if let Some(status) = record(Call::SetProperty) {
            return status;
        }
        // SAFETY: the caller's slices.
        let (path, value) = unsafe { (slice(path, path_size), slice(value, value_size)) };
        let (path, value) = (path.to_vec(), value.to_vec());
        with(|h| h.properties.insert(path, value));
        OK
    }

    pub unsafe fn proxy_log(level: u32, message: *const u8, size: usize) -> u32 {
        if let Some(status) = record(Call::Log) {
            return status;
        }
        // SAFETY: the caller's slice.
        let message = unsafe { text(message, size) };
        with(|h| h.logs.push((level, message)));
        OK
    }

    pub unsafe fn proxy_get_log_level(level: *mut u32) -> u32 {
        if let Some(status) = record(Call::GetLogLevel) {
            return status;
        }
        // SAFETY: the caller's out-pointer.
        unsafe { *level = with(|h| h.log_level) };
        OK
    }

    pub unsafe fn proxy_get_current_time_nanoseconds(time: *mut u64) -> u32 {
        if let Some(status) = record(Call::GetCurrentTime) {
            return status;
        }
        // SAFETY: the caller's out-pointer.
        unsafe { *time = with(|h| h.now_nanos) };
        OK
    }

    pub unsafe fn proxy_set_tick_period_milliseconds(period: u32) -> u32 {
        if let Some(status) = record(Call::SetTickPeriod) {
            return status;
        }
        with(|h| h.tick_period_ms = Some(period));
        OK
    }

    pub unsafe fn proxy_define_metric(
        _kind: u32,
        name: *const u8,
        size: usize,
        id: *mut u32,
    ) -> u32 {
        if let Some(status) = record(Call::DefineMetric) {
            return status;
        }
        // SAFETY: the caller's slice.
        let name = unsafe { text(name, size) };
        let index = with(|h| {
            h.metrics.push((name, 0));
            h.metrics.len() - 1
        });
        // SAFETY: the caller's out-pointer.
        unsafe { *id = u32::try_from(index).unwrap_or(u32::MAX) };
        OK
    }

    pub unsafe fn proxy_increment_metric(id: u32, offset: i64) -> u32 {
        if let Some(status) = record(Call::IncrementMetric) {
            return status;
        }
        with(|h| match h.metrics.get_mut(id as usize) {
            Some(metric) => {
                metric.1 += offset;
                OK
            }
            None => NOT_FOUND,
        })
    }

    pub unsafe fn proxy_get_shared_data(
        key: *const u8,
        key_size: usize,
        value: *mut *mut u8,
        value_size: *mut usize,
        cas: *mut u32,
    ) -> u32 {
        if let Some(status) = record(Call::GetSharedData) {
            return status;
        }
        // SAFETY: the caller's slice.
        let key = unsafe { text(key, key_size) };
        match with(|h| h.shared_data.get(&key).cloned()) {
            // SAFETY: the caller's out-pointers.
            Some((v, token)) => unsafe {
                give(&v, value, value_size);
                *cas = token;
                OK
            },
            None => NOT_FOUND,
        }
    }

    pub unsafe fn proxy_set_shared_data(
        key: *const u8,
        key_size: usize,
        value: *const u8,
        value_size: usize,
        cas: u32,
    ) -> u32 {
        if let Some(status) = record(Call::SetSharedData) {
            return status;
        }
        // SAFETY: the caller's slices.
        let (key, value) = unsafe { (text(key, key_size), slice(value, value_size).to_vec()) };
        with(|h| {
            let current = h.shared_data.get(&key).map_or(0, |(_, c)| *c);
            if cas != 0 && cas != current {
                return CAS_MISMATCH;
            }
            h.shared_data.insert(key, (value, current + 1));
            OK
        })
    }

    pub unsafe fn proxy_http_call(
        upstream: *const u8,
        upstream_size: usize,
        headers: *const u8,
        headers_size: usize,
        body: *const u8,
        body_size: usize,
        _trailers: *const u8,
        _trailers_size: usize,
        timeout_ms: u32,
        token: *mut u32,
    ) -> u32 {
        if let Some(status) = record(Call::HttpCall) {
            return status;
        }
        // SAFETY: the caller's slices.
        let call = unsafe {
            HttpCall {
                cluster: text(upstream, upstream_size),
                headers: pairs(slice(headers, headers_size)),
                body: slice(body, body_size).to_vec(),
                timeout_ms,
            }
        };
        let n = with(|h| {
            h.http_calls.push(call);
            h.http_calls.len()
        });
        // SAFETY: the caller's out-pointer.
        unsafe { *token = u32::try_from(n).unwrap_or(u32::MAX) };
        OK
    }

    pub unsafe fn proxy_set_effective_context(context_id: u32) -> u32 {
        if let Some(status) = record(Call::SetEffectiveContext) {
            return status;
        }
        with(|h| h.effective_context = Some(context_id));
        OK
    }

    pub unsafe fn proxy_send_local_response(
        status_code: u32,
        _details: *const u8,
        _details_size: usize,
        body: *const u8,
        body_size: usize,
        headers: *const u8,
        headers_size: usize,
        _grpc_status: i32,
    ) -> u32 {
        if let Some(status) = record(Call::SendLocalResponse) {
            return status;
        }
        // SAFETY: the caller's slices.
        let reply = unsafe {
            LocalReply {
                status: status_code,
                headers: pairs(slice(headers, headers_size)),
                body: slice(body, body_size).to_vec(),
            }
        };
        with(|h| h.replies.push(reply));
        OK
    }
}
