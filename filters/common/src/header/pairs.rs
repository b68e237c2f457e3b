//! The proxy-wasm ABI's serialized header map, decoded without trusting it
//! (the SDK's own decoder panics on a non-UTF-8 name or a short buffer) and
//! read in place.

/// A header map in one buffer: the bytes Envoy serialized it into, read in
/// place, plus what was added since. Reading a map costs one allocation, not
/// two per header, and forgetting it one free; a request carries dozens of
/// headers and several filters read them.
#[derive(Clone, Default)]
pub struct HeaderMap {
    bytes: Vec<u8>,
    /// `(name start, name end, value end)` in `bytes`; the value starts one
    /// byte after the name ends (Envoy's NUL, or a gap this map leaves).
    entries: Vec<(usize, usize, usize)>,
}

impl HeaderMap {
    pub const fn new() -> HeaderMap {
        HeaderMap {
            bytes: Vec::new(),
            entries: Vec::new(),
        }
    }

    /// Envoy's serialization: `u32 count`, then `count` pairs of `u32` sizes,
    /// then each name and value followed by a NUL. Names that are not UTF-8
    /// are replaced lossily; `None` if the layout is broken.
    pub fn decode(bytes: Vec<u8>) -> Option<HeaderMap> {
        HeaderMap::decode_with_room(bytes, 0)
    }

    /// [`HeaderMap::decode`], with room for `added` more headers: a map that
    /// filters edit after reading it then takes its first additions without
    /// moving its entries (measured: moving them costs more than the rest of
    /// an edit).
    pub fn decode_with_room(bytes: Vec<u8>, added: usize) -> Option<HeaderMap> {
        let mut map = HeaderMap {
            bytes,
            entries: Vec::new(),
        };
        if map.bytes.is_empty() {
            return Some(map);
        }
        let word = |bytes: &[u8], at: usize| -> Option<usize> {
            let b = bytes.get(at..at.checked_add(4)?)?;
            Some(u32::from_le_bytes(b.try_into().ok()?) as usize)
        };
        let count = word(&map.bytes, 0)?;
        let mut data = 4usize.checked_add(count.checked_mul(8)?)?;
        let end = map.bytes.len();
        if data > end {
            return None;
        }
        map.entries.reserve(count + added);
        for i in 0..count {
            let name_len = word(&map.bytes, 4 + i * 8)?;
            let value_len = word(&map.bytes, 8 + i * 8)?;
            let name_end = data.checked_add(name_len)?;
            let value_end = name_end.checked_add(1)?.checked_add(value_len)?;
            if value_end > end {
                return None;
            }
            let name = map.bytes.get(data..name_end)?;
            if std::str::from_utf8(name).is_ok() {
                map.entries.push((data, name_end, value_end));
            } else {
                let name = String::from_utf8_lossy(name).into_owned();
                let value = map.bytes.get(name_end + 1..value_end)?.to_vec();
                map.append(&name, &value);
            }
            data = value_end.checked_add(1)?;
        }
        Some(map)
    }

    /// A map of these headers, in this order (tests build their maps so).
    pub fn from_pairs<N: AsRef<str>, V: AsRef<[u8]>>(pairs: &[(N, V)]) -> HeaderMap {
        let mut map = HeaderMap::default();
        for (name, value) in pairs {
            map.append(name.as_ref(), value.as_ref());
        }
        map
    }

    /// Every `(name, value)`, in order (repeated names repeat).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.entries.iter().map(|&(start, name_end, value_end)| {
            let name = self.bytes.get(start..name_end).unwrap_or_default();
            // SAFETY: every name was checked to be UTF-8 when it was added
            // (`decode` checks, `append` takes a `&str`), and the bytes of an
            // entry never change.
            let name = unsafe { std::str::from_utf8_unchecked(name) };
            (
                name,
                self.bytes.get(name_end + 1..value_end).unwrap_or_default(),
            )
        })
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The values of header `name` (names as Envoy holds them: lowercase).
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.entries
            .iter()
            .filter(move |entry| self.is(entry, name))
            .map(|&(_, name_end, value_end)| {
                self.bytes.get(name_end + 1..value_end).unwrap_or_default()
            })
    }

    /// Whether an entry is header `name`; lengths first, as most differ.
    fn is(&self, &(start, name_end, _): &(usize, usize, usize), name: &str) -> bool {
        name_end - start == name.len() && self.bytes.get(start..name_end) == Some(name.as_bytes())
    }

    /// The first value of header `name`.
    pub fn first(&self, name: &str) -> Option<&[u8]> {
        let &(_, name_end, value_end) = self.entries.iter().find(|e| self.is(e, name))?;
        self.bytes.get(name_end + 1..value_end)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.first(name).is_some()
    }

    /// Adds a copy of header `name` at the end.
    pub fn append(&mut self, name: &str, value: &[u8]) {
        let start = self.bytes.len();
        let name_end = start + name.len();
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.push(0);
        self.bytes.extend_from_slice(value);
        self.entries.push((start, name_end, self.bytes.len()));
    }

    /// Forgets every header, keeping the room they took unless it is more
    /// than `keep` bytes (a map used again and again without growing for good).
    pub fn clear(&mut self, keep: usize) {
        if self.bytes.capacity() > keep {
            *self = HeaderMap::new();
        } else {
            self.bytes.clear();
            self.entries.clear();
        }
    }

    /// Removes every copy of header `name` (its bytes stay until the map is dropped).
    pub fn remove(&mut self, name: &str) {
        let mut entries = std::mem::take(&mut self.entries);
        entries.retain(|entry| !self.is(entry, name));
        self.entries = entries;
    }
}

impl PartialEq for HeaderMap {
    fn eq(&self, other: &HeaderMap) -> bool {
        self.iter().eq(other.iter())
    }
}

impl std::fmt::Debug for HeaderMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.iter().map(|(n, v)| (n, String::from_utf8_lossy(v))))
            .finish()
    }
}

/// The serialization [`HeaderMap::decode`] reads, for tests and for host calls that take maps.
pub fn encode_pairs(pairs: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (name, value) in pairs {
        out.extend_from_slice(&(name.len() as u32).to_le_bytes());
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    }
    for (name, value) in pairs {
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.extend_from_slice(value);
        out.push(0);
    }
    out
}
