//! A small per-worker cache of decoded peers, keyed by the exact header value
//! (never by the unauthenticated `-id` header alone): callers resend the same
//! metadata on every request, so decoding once per value is enough.

use std::rc::Rc;

/// At most `capacity` entries; when full, the least recently used one goes.
#[derive(Debug)]
pub struct Cache<V> {
    capacity: usize,
    /// Most recently used last. Linear scans: capacity is small (hundreds),
    /// and values differ per caller workload, not per request.
    entries: Vec<(Vec<u8>, Rc<V>)>,
}

impl<V> Cache<V> {
    pub fn new(capacity: usize) -> Cache<V> {
        Cache {
            capacity,
            entries: Vec::new(),
        }
    }

    pub fn get(&mut self, key: &[u8]) -> Option<Rc<V>> {
        let at = self.entries.iter().position(|(k, _)| k == key)?;
        let entry = self.entries.remove(at);
        let value = entry.1.clone();
        self.entries.push(entry);
        Some(value)
    }

    pub fn insert(&mut self, key: &[u8], value: Rc<V>) {
        if self.capacity == 0 {
            return;
        }
        if let Some(at) = self.entries.iter().position(|(k, _)| k == key) {
            self.entries.remove(at);
        } else if self.entries.len() >= self.capacity {
            self.entries.remove(0);
        }
        self.entries.push((key.to_vec(), value));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
