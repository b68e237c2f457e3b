//! The shell, driven callback by callback through the recording host as
//! Envoy drives a network filter: records at close, time-driven segments on
//! the root's tick (each written in its connection's context), byte-driven
//! segments, and the host calls a chunk costs.

// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use filter_common::host::harness::{Connection, NetworkHarness};
use filter_common::host::recording::{self as host, Call};
use filter_common::host::Action;
use serde_json::Value;

const SECOND: u64 = 1_000_000_000;

/// These tests follow the data: unless they say otherwise, 64 KiB per
/// direction are kept (the filter's default keeps none).
fn configure(config: &str) -> NetworkHarness {
    let mut value: Value = serde_json::from_str(config).unwrap();
    for limit in ["max_read_bytes", "max_write_bytes"] {
        if value.get(limit).is_none() {
            value[limit] = 65536.into();
        }
    }
    let config = value.to_string();
    match NetworkHarness::configure(tap_tcp::filter::configure, &config) {
        Ok(plugin) => plugin,
        Err(logs) => panic!("configuration refused: {logs:?}"),
    }
}

/// A new connection with Envoy's id `trace_id`.
fn connect(plugin: &mut NetworkHarness, trace_id: u64) -> Connection {
    host::with(|h| {
        h.set_property(&["connection", "id"], &trace_id.to_le_bytes());
        h.set_property(&["destination", "address"], b"10.0.0.1:5432");
        h.set_property(&["source", "address"], b"10.0.0.2:40000");
    });
    let connection = plugin.connection();
    assert_eq!(connection.new_connection(), Action::Continue);
    connection
}

fn advance(nanos: u64) {
    host::with(|h| h.now_nanos += nanos);
}

/// The record in filter state `wasm.tap_trace`, if any.
fn record() -> Option<Value> {
    let bytes = host::with(|h| h.property(&["tap_trace"]).map(<[u8]>::to_vec))?;
    serde_json::from_slice(&bytes).ok()
}

fn sequence(record: &Value) -> Option<u64> {
    record["socket_buffered_trace"]["sequence"].as_u64()
}

/// The kinds of a record's events, in order: `read`, `write`, `closed`.
fn events(record: &Value) -> Vec<String> {
    record["socket_buffered_trace"]["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            ["read", "write", "closed"]
                .into_iter()
                .find(|k| e.get(k).is_some())
                .map(str::to_string)
        })
        .collect()
}

fn records_written() -> usize {
    host::with(|h| h.count(Call::SetProperty))
}

#[test]
fn a_connection_is_recorded_once_when_it_closes() {
    let mut plugin = configure("{}");
    let connection = connect(&mut plugin, 42);
    assert_eq!(connection.downstream_data(b"ping", false), Action::Continue);
    assert_eq!(connection.upstream_data(b"pong", true), Action::Continue);
    assert_eq!(records_written(), 0, "nothing while it is open");
    connection.downstream_close();
    connection.done();
    let record = record().expect("a record at close");
    assert_eq!(events(&record), ["read", "write", "closed"]);
    assert_eq!(record["socket_buffered_trace"]["trace_id"], "42");
    assert_eq!(sequence(&record), None, "no sequence without segments");
    assert_eq!(
        records_written(),
        1,
        "done after the close writes nothing more"
    );
    host::with(|h| assert_eq!(h.counter("tap_tcp.tapped"), 1));
}

#[test]
fn a_connection_envoy_only_finishes_is_recorded_at_done() {
    let mut plugin = configure("{}");
    let connection = connect(&mut plugin, 43);
    connection.upstream_data(b"bye", false);
    connection.done();
    assert_eq!(
        events(&record().expect("a record at done")),
        ["write", "closed"]
    );
}

#[test]
fn the_tick_writes_segments_in_each_connections_context() {
    let mut plugin = configure(r#"{"segment": {"interval_ms": 1000}}"#);
    host::with(|h| assert_eq!(h.tick_period_ms, Some(1000)));
    let first = connect(&mut plugin, 7);
    let idle = connect(&mut plugin, 8);
    first.downstream_data(b"one", false);
    advance(SECOND);
    plugin.tick();
    let segment = record().expect("a segment on the tick");
    assert_eq!(sequence(&segment), Some(0));
    assert_eq!(events(&segment), ["read"]);
    // Written as the connection, not the root; the idle one had nothing.
    host::with(|h| assert_eq!(h.effective_context, Some(first.id())));
    assert_eq!(records_written(), 1);
    // Before the interval passes, the tick writes nothing.
    first.upstream_data(b"two", false);
    advance(SECOND / 2);
    plugin.tick();
    assert_eq!(records_written(), 1);
    // After it, only the events since the last segment.
    advance(SECOND);
    plugin.tick();
    let segment = record().expect("a second segment");
    assert_eq!(
        (sequence(&segment), events(&segment)),
        (Some(1), vec!["write".to_string()])
    );
    // The final record follows the segments, with `closed`.
    first.done();
    let last = record().expect("the final record");
    assert_eq!(
        (sequence(&last), events(&last)),
        (Some(2), vec!["closed".to_string()])
    );
    host::with(|h| {
        assert_eq!(h.counter("tap_tcp.segments"), 2);
        assert_eq!(h.counter("tap_tcp.tapped"), 1);
    });
    // A connection that is gone is off the tick's list, done or only deleted.
    idle.delete();
    advance(2 * SECOND);
    let before = records_written();
    plugin.tick();
    assert_eq!(records_written(), before);
}

#[test]
fn byte_segments_follow_the_data() {
    let mut plugin = configure(r#"{"segment": {"bytes": 8}, "sink": {"log": {}}}"#);
    let connection = connect(&mut plugin, 9);
    connection.downstream_data(b"12345", false);
    host::with(|h| assert_eq!(h.counter("tap_tcp.segments"), 0));
    connection.upstream_data(b"67890", false);
    host::with(|h| assert_eq!(h.counter("tap_tcp.segments"), 1));
    connection.done();
    host::with(|h| {
        let records: Vec<&String> = h
            .logs
            .iter()
            .map(|(_, m)| m)
            .filter(|m| m.starts_with("{\"socket_buffered_trace\""))
            .collect();
        assert_eq!(records.len(), 2, "{:?}", h.logs);
    });
}

/// Host calls for one chunk of a recorded connection: the copy of its
/// bytes (at most the configured cap) and the time. No header or property
/// is read per chunk.
#[test]
fn host_calls_per_chunk_stay_within_budget() {
    const BUDGET: usize = 2;
    let mut plugin = configure("{}");
    let connection = connect(&mut plugin, 1);
    host::take_calls();
    connection.downstream_data(b"payload", false);
    if let Err(e) = host::within_budget(BUDGET) {
        panic!("{e}");
    }
}
