//! Bounded copies of data streaming past a filter.

/// Keeps at most `limit` bytes of a stream and remembers whether more went by.
#[derive(Debug, Clone, Default)]
pub struct Capture {
    data: Vec<u8>,
    limit: usize,
    seen: u64,
    truncated: bool,
}

impl Capture {
    pub fn new(limit: usize) -> Capture {
        Capture {
            data: Vec::new(),
            limit,
            seen: 0,
            truncated: false,
        }
    }

    /// How many more bytes this capture would keep: callers read no more than
    /// this from the host, so a large stream never costs a large copy.
    pub fn room(&self) -> usize {
        self.limit - self.data.len()
    }

    /// Records that `total` bytes went by, of which `kept` (at most
    /// [`Capture::room`] of them) are appended.
    pub fn push(&mut self, kept: &[u8], total: usize) {
        let kept = kept.get(..self.room()).unwrap_or(kept);
        self.data.extend_from_slice(kept);
        self.seen += total as u64;
        if (total as u64) > kept.len() as u64 {
            self.truncated = true;
        }
    }

    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Whether any data went by (a zero-length stream is not a body).
    pub fn seen(&self) -> u64 {
        self.seen
    }

    pub fn truncated(&self) -> bool {
        self.truncated
    }
}
