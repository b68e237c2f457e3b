//! The trace core: limits, truncation, half-close, event cap, rendering.

// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use base64::Engine;
use proptest::prelude::*;
use serde_json::Value;
use tap_tcp::config::DataFormat;
use tap_tcp::trace::{Connection, Direction, Trace, TraceLimits};

fn limits(read: usize, write: usize, events: usize) -> TraceLimits {
    TraceLimits {
        read_bytes: read,
        write_bytes: write,
        events,
    }
}

fn conn() -> Connection {
    Connection {
        trace_id: 42,
        local_address: "127.0.0.1:9000".into(),
        remote_address: "[::1]:5555".into(),
    }
}

/// Feeds a chunk the way the filter does: copy at most `room` bytes.
fn feed(t: &mut Trace, d: Direction, chunk: &[u8], end: bool) {
    let room = t.room(d).min(chunk.len());
    t.push(d, 1_000_000_000, &chunk[..room], chunk.len(), end);
}

fn render(t: &Trace, seq: Option<u64>, closed: Option<u64>) -> Value {
    serde_json::from_str(&t.render(&conn(), DataFormat::AsBytes, seq, closed)).expect("valid JSON")
}

fn data(event: &Value, d: &str) -> Vec<u8> {
    let b = event[d]["data"]["as_bytes"].as_str().unwrap();
    base64::engine::general_purpose::STANDARD.decode(b).unwrap()
}

fn concat(record: &Value, d: &str) -> Vec<u8> {
    record["socket_buffered_trace"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e.get(d).is_some())
        .flat_map(|e| data(e, d))
        .collect()
}

#[test]
fn records_envoys_shape() {
    let mut t = Trace::new(limits(100, 100, 10));
    feed(&mut t, Direction::Read, b"ping", false);
    feed(&mut t, Direction::Write, b"pong", false);
    feed(&mut t, Direction::Read, b"", true);
    let r = render(&t, None, Some(2_000_000_000));
    let trace = &r["socket_buffered_trace"];
    assert_eq!(trace["trace_id"], "42");
    assert_eq!(
        trace["connection"]["local_address"]["socket_address"],
        serde_json::json!({"address": "127.0.0.1", "port_value": 9000})
    );
    assert_eq!(
        trace["connection"]["remote_address"]["socket_address"]["address"],
        "::1"
    );
    let events = trace["events"].as_array().unwrap();
    assert_eq!(events.len(), 4);
    assert_eq!(events[0]["timestamp"], "1970-01-01T00:00:01.000000000Z");
    assert_eq!(data(&events[0], "read"), b"ping");
    assert_eq!(events[0]["read"]["end_stream"], false);
    assert_eq!(data(&events[1], "write"), b"pong");
    assert_eq!(events[2]["read"]["end_stream"], true);
    assert_eq!(events[2]["read"]["data"]["as_bytes"], "");
    assert_eq!(events[3]["closed"], serde_json::json!({}));
    assert_eq!(events[3]["timestamp"], "1970-01-01T00:00:02.000000000Z");
    assert_eq!(
        (
            trace["read_truncated"].clone(),
            trace["write_truncated"].clone()
        ),
        (false.into(), false.into())
    );
    assert!(trace.get("sequence").is_none());
    assert_eq!(
        render(&t, Some(3), None)["socket_buffered_trace"]["sequence"],
        3
    );
}

#[test]
fn limits_truncate_per_direction_like_envoy() {
    let mut t = Trace::new(limits(10, 4, 100));
    feed(&mut t, Direction::Read, b"hello", false);
    feed(&mut t, Direction::Read, b"world12345", false); // 5 of 10 fit
    feed(&mut t, Direction::Read, b"more", false); // dropped
    feed(&mut t, Direction::Write, b"abc", false);
    feed(&mut t, Direction::Read, b"", true); // half-close still recorded
    let r = render(&t, None, None);
    assert_eq!(concat(&r, "read"), b"helloworld");
    assert_eq!(concat(&r, "write"), b"abc");
    let trace = &r["socket_buffered_trace"];
    assert_eq!(trace["read_truncated"], true);
    assert_eq!(trace["write_truncated"], false);
    let events = trace["events"].as_array().unwrap();
    assert_eq!(events.len(), 4, "the dropped chunk leaves no event");
    assert_eq!(events[1]["read"]["data"]["truncated"], true);
    assert_eq!(events[0]["read"]["data"]["truncated"], false);
    assert_eq!(events[3]["read"]["end_stream"], true);
    assert!(t.truncated());
}

#[test]
fn event_cap_drops_later_events_but_not_the_close() {
    let mut t = Trace::new(limits(1000, 1000, 2));
    for _ in 0..5 {
        feed(&mut t, Direction::Read, b"x", false);
    }
    feed(&mut t, Direction::Write, b"y", true);
    assert_eq!(t.room(Direction::Read), 0);
    let r = render(&t, None, Some(5));
    let trace = &r["socket_buffered_trace"];
    let events = trace["events"].as_array().unwrap();
    assert_eq!(events.len(), 3);
    assert!(events[2].get("closed").is_some());
    assert_eq!(trace["read_truncated"], true);
    assert_eq!(trace["write_truncated"], true);
}

#[test]
fn restart_begins_a_fresh_segment() {
    let mut t = Trace::new(limits(3, 3, 10));
    feed(&mut t, Direction::Read, b"abcdef", false);
    assert!(t.truncated() && t.observed() == 6 && !t.is_empty());
    t.restart();
    assert!(t.is_empty() && !t.truncated() && t.observed() == 0);
    assert_eq!(t.room(Direction::Read), 3);
    feed(&mut t, Direction::Read, b"gh", false);
    assert_eq!(concat(&render(&t, Some(1), None), "read"), b"gh");
}

#[test]
fn zero_limits_record_only_that_data_went_by() {
    let mut t = Trace::new(limits(0, 0, 10));
    feed(&mut t, Direction::Read, b"secret", false);
    assert!(!t.is_empty(), "a record still says bytes went by");
    let r = render(&t, None, None);
    assert_eq!(r["socket_buffered_trace"]["events"], serde_json::json!([]));
    assert_eq!(r["socket_buffered_trace"]["read_truncated"], true);
}

#[test]
fn as_string_keeps_text_and_replaces_invalid_utf8() {
    let mut t = Trace::new(limits(100, 100, 10));
    feed(&mut t, Direction::Read, b"GET / \"q\"\n\xff", false);
    let r: Value =
        serde_json::from_str(&t.render(&conn(), DataFormat::AsString, None, None)).unwrap();
    assert_eq!(
        r["socket_buffered_trace"]["events"][0]["read"]["data"]["as_string"],
        "GET / \"q\"\n\u{fffd}"
    );
}

proptest! {
    /// Whatever the chunking, a record keeps exactly the first `limit` bytes
    /// of each direction, in order, and says truncated exactly when more went by.
    #[test]
    fn keeps_the_prefix_of_each_direction(
        chunks in prop::collection::vec((any::<bool>(), prop::collection::vec(any::<u8>(), 0..300)), 0..40),
        read_limit in 0usize..2000,
        write_limit in 0usize..2000,
    ) {
        let mut t = Trace::new(limits(read_limit, write_limit, 10_000));
        let (mut read, mut write) = (Vec::new(), Vec::new());
        for (is_read, chunk) in &chunks {
            let d = if *is_read { Direction::Read } else { Direction::Write };
            feed(&mut t, d, chunk, false);
            if *is_read { read.extend_from_slice(chunk) } else { write.extend_from_slice(chunk) }
        }
        let r = render(&t, None, Some(0));
        prop_assert_eq!(concat(&r, "read"), read[..read.len().min(read_limit)].to_vec());
        prop_assert_eq!(concat(&r, "write"), write[..write.len().min(write_limit)].to_vec());
        prop_assert_eq!(r["socket_buffered_trace"]["read_truncated"].as_bool(), Some(read.len() > read_limit));
        prop_assert_eq!(r["socket_buffered_trace"]["write_truncated"].as_bool(), Some(write.len() > write_limit));
        prop_assert_eq!(t.observed(), (read.len() + write.len()) as u64);
    }
}
