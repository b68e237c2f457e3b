//! Memory passed between the module and the host: what the host asks the
//! module for (`proxy_on_memory_allocate`) and the host calls take back.

/// Memory the host fills (`proxy_on_memory_allocate`); taken back by the
/// host-call wrappers ([`host_bytes`]) with exactly this capacity.
pub fn allocate(size: usize) -> *mut u8 {
    let mut buffer = std::mem::ManuallyDrop::new(Vec::<u8>::with_capacity(size));
    buffer.as_mut_ptr()
}

/// Takes ownership of memory the host filled through `proxy_on_memory_allocate`.
pub(super) fn host_bytes(status: u32, data: *mut u8, size: usize) -> Option<Vec<u8>> {
    if status != 0 {
        return None;
    }
    if data.is_null() {
        return Some(Vec::new());
    }
    // SAFETY: the host wrote `size` bytes into a buffer it obtained from this
    // module's allocator with exactly that capacity (proxy-wasm ABI).
    Some(unsafe { Vec::from_raw_parts(data, size, size) })
}
