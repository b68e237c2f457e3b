//! The events of one connection (or of one segment of a long-lived one),
//! bounded, and their rendering as one line of Envoy's `socket_buffered_trace`.

use filter_common::encoding::json::{push_address, push_key, push_str, rfc3339};
use filter_common::tap::{push_data, DataFormat};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Bytes Envoy read from downstream.
    Read,
    /// Bytes Envoy writes toward downstream.
    Write,
}

impl Direction {
    /// This direction's one of a pair (read first).
    fn of<T>(self, [read, write]: [T; 2]) -> T {
        match self {
            Direction::Read => read,
            Direction::Write => write,
        }
    }
}

/// What one record may hold: bytes per direction and events in all.
#[derive(Debug, Clone, Copy)]
pub struct TraceLimits {
    pub read_bytes: usize,
    pub write_bytes: usize,
    pub events: usize,
}

#[derive(Debug)]
struct Event {
    nanos: u64,
    direction: Direction,
    start: usize,
    end: usize,
    truncated: bool,
    end_stream: bool,
}

/// The connection a record describes.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    /// Envoy's connection id, as the native tap and Envoy's logs show it.
    pub trace_id: u64,
    /// `ip:port` as Envoy's `destination.address` / `source.address` give them.
    pub local_address: String,
    pub remote_address: String,
}

#[derive(Debug)]
pub struct Trace {
    limits: TraceLimits,
    /// Kept bytes of every event, back to back.
    data: Vec<u8>,
    events: Vec<Event>,
    kept: [usize; 2],
    truncated: [bool; 2],
    /// Bytes that went by in both directions, kept or not.
    observed: u64,
}

impl Trace {
    pub fn new(limits: TraceLimits) -> Trace {
        Trace {
            limits,
            data: Vec::new(),
            events: Vec::new(),
            kept: [0; 2],
            truncated: [false; 2],
            observed: 0,
        }
    }

    fn limit(&self, direction: Direction) -> usize {
        match direction {
            Direction::Read => self.limits.read_bytes,
            Direction::Write => self.limits.write_bytes,
        }
    }

    /// How many bytes of the next chunk in `direction` this trace would keep:
    /// callers copy no more than this out of Envoy.
    pub fn room(&self, direction: Direction) -> usize {
        if self.events.len() >= self.limits.events {
            return 0;
        }
        self.limit(direction) - direction.of(self.kept)
    }

    /// Records that `total` bytes went by in `direction` at `nanos`, of which
    /// `kept` (at most [`Trace::room`]) are kept; `end_stream` when that side
    /// half-closed with them. Past a limit, data is dropped and the direction
    /// marked truncated; a half-close is still recorded while events remain.
    pub fn push(
        &mut self,
        direction: Direction,
        nanos: u64,
        kept: &[u8],
        total: usize,
        end_stream: bool,
    ) {
        self.observed += total as u64;
        if total == 0 && !end_stream {
            return;
        }
        if self.events.len() >= self.limits.events {
            *direction.of(self.truncated.each_mut()) |= total > 0;
            return;
        }
        let kept = kept.get(..self.room(direction).min(total)).unwrap_or(kept);
        let take = kept.len();
        let truncated = take < total;
        *direction.of(self.truncated.each_mut()) |= truncated;
        if take == 0 && total > 0 && !end_stream {
            return;
        }
        let start = self.data.len();
        self.data.extend_from_slice(kept);
        *direction.of(self.kept.each_mut()) += take;
        self.events.push(Event {
            nanos,
            direction,
            start,
            end: start + take,
            truncated,
            end_stream,
        });
    }

    /// Bytes seen in both directions since this trace (re)started.
    pub fn observed(&self) -> u64 {
        self.observed
    }

    /// Nothing went by since this trace (re)started.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.observed == 0
    }

    pub fn truncated(&self) -> bool {
        self.truncated[0] || self.truncated[1]
    }

    /// Starts the next segment: no events, full limits again.
    pub fn restart(&mut self) {
        self.data.clear();
        self.events.clear();
        self.kept = [0; 2];
        self.truncated = [false; 2];
        self.observed = 0;
    }

    /// One JSON line. `sequence` numbers the records of a segmented
    /// connection; `closed_at` adds the final `closed` event.
    pub fn render(
        &self,
        connection: &Connection,
        format: DataFormat,
        sequence: Option<u64>,
        closed_at: Option<u64>,
    ) -> String {
        let mut out = String::with_capacity(256 + self.events.len() * 96 + self.data.len() * 4 / 3);
        out.push_str("{\"socket_buffered_trace\":{\"trace_id\":\"");
        out.push_str(&connection.trace_id.to_string());
        out.push_str("\",\"connection\":{");
        push_key(&mut out, "local_address");
        push_address(&mut out, &connection.local_address);
        out.push(',');
        push_key(&mut out, "remote_address");
        push_address(&mut out, &connection.remote_address);
        out.push_str("},\"events\":[");
        for (i, event) in self.events.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_timestamp(&mut out, event.nanos);
            push_key(
                &mut out,
                match event.direction {
                    Direction::Read => "read",
                    Direction::Write => "write",
                },
            );
            out.push_str("{\"data\":");
            push_data(
                &mut out,
                format,
                self.data.get(event.start..event.end).unwrap_or_default(),
                event.truncated,
            );
            out.push_str(if event.end_stream {
                ",\"end_stream\":true}}"
            } else {
                ",\"end_stream\":false}}"
            });
        }
        if let Some(nanos) = closed_at {
            if !self.events.is_empty() {
                out.push(',');
            }
            push_timestamp(&mut out, nanos);
            out.push_str("\"closed\":{}}");
        }
        out.push_str("],");
        for (key, truncated) in [
            ("read_truncated", self.truncated[0]),
            ("write_truncated", self.truncated[1]),
        ] {
            push_key(&mut out, key);
            out.push_str(if truncated { "true," } else { "false," });
        }
        match sequence {
            Some(n) => {
                push_key(&mut out, "sequence");
                out.push_str(&n.to_string());
            }
            None => {
                out.pop();
            }
        }
        out.push_str("}}");
        out
    }
}

/// Opens an event object with its timestamp: `{"timestamp":"...",`.
fn push_timestamp(out: &mut String, nanos: u64) {
    out.push('{');
    push_key(out, "timestamp");
    push_str(out, &rfc3339(nanos));
    out.push(',');
}
