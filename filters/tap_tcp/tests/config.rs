//! Configuration: defaults, every field, and errors that name the field.

// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use filter_common::tap::sink::SinkConfig;
use tap_tcp::config::{Config, DataFormat, Segment, DEFAULT_MAX_BYTES, DEFAULT_MAX_EVENTS};

fn parse(json: &str) -> Config {
    Config::parse(Some(json.as_bytes())).unwrap_or_else(|e| panic!("{json}: {e}"))
}

#[test]
fn defaults() {
    for c in [Config::parse(None).unwrap(), parse("{}"), parse("  ")] {
        assert_eq!(c.max_read_bytes, DEFAULT_MAX_BYTES as usize);
        assert_eq!(c.max_write_bytes, 0, "no data unless asked");
        assert_eq!(c.max_events, DEFAULT_MAX_EVENTS);
        assert_eq!(c.data_format, DataFormat::AsBytes);
        assert_eq!(c.segment, None);
        assert!(c.matcher.is_any());
        assert_eq!(c.budget.sample_percent, 100.0);
        assert_eq!(
            c.sink,
            SinkConfig::FilterState {
                key: "tap_trace".into()
            }
        );
    }
}

#[test]
fn every_field() {
    let c = parse(
        r#"{
            "match": {"and": [{"destination_port": 5432}, {"source_address": ["10.0.0.0/8", "fd00::/8"]},
                              {"not": {"sni": {"suffix": ".internal"}}}, {"destination_address": "127.0.0.1"}]},
            "max_read_bytes": 10, "max_write_bytes": 0, "max_bytes_hard_limit": 100,
            "max_events": 7, "data_format": "as_string",
            "segment": {"bytes": 1000, "interval_ms": 250},
            "sample_percent": 50, "rate_limit": {"records_per_second": 2}, "max_records": 9,
            "sink": {"log": {"level": "warn"}}
        }"#,
    );
    assert_eq!(
        (c.max_read_bytes, c.max_write_bytes, c.max_events),
        (10, 0, 7)
    );
    assert_eq!(c.data_format, DataFormat::AsString);
    assert_eq!(
        c.segment,
        Some(Segment {
            bytes: Some(1000),
            interval_ms: Some(250)
        })
    );
    assert_eq!(c.budget.max_records, Some(9));
    assert!(!c.matcher.is_any());
}

#[test]
fn errors_name_the_field_and_the_fix() {
    let cases = [
        (r#"{"max_read_byte": 1}"#, "max_read_byte"),
        (r#"{"max_read_bytes": -1}"#, "max_read_bytes"),
        (r#"{"max_write_bytes": 2000000}"#, "max_write_bytes"),
        (r#"{"max_events": 0}"#, "max_events"),
        (r#"{"data_format": "hex"}"#, "data_format"),
        (r#"{"segment": {}}"#, "segment"),
        (
            r#"{"segment": {"interval_ms": 5, "bytes": 1}, "sink": {"log": {}}}"#,
            "segment.interval_ms",
        ),
        (
            r#"{"segment": {"bytes": 0}, "sink": {"log": {}}}"#,
            "segment.bytes",
        ),
        (r#"{"segment": {"bytes": 100}}"#, "segment.bytes"),
        (r#"{"segment": {"every": 100}}"#, "segment.every"),
        (
            r#"{"match": {"destination_port": 0}}"#,
            "match.destination_port",
        ),
        (
            r#"{"match": {"destination_port": {"min": 10, "max": 9}}}"#,
            "match.destination_port",
        ),
        (
            r#"{"match": {"destination_port": {"min": 10}}}"#,
            "match.destination_port.max",
        ),
        (
            r#"{"match": {"source_address": "10.0.0.0/33"}}"#,
            "match.source_address",
        ),
        (
            r#"{"match": {"source_address": ["10.0.0.1", "nope"]}}"#,
            "match.source_address[1]",
        ),
        (
            r#"{"match": {"source_address": []}}"#,
            "match.source_address",
        ),
        (
            r#"{"match": {"destination_address": "10.0.0.0/"}}"#,
            "match.destination_address",
        ),
        (r#"{"match": {"sni": {"regex": "("}}}"#, "match.sni.regex"),
        (r#"{"match": {"sni": {"glob": "*"}}}"#, "match.sni.glob"),
        (
            r#"{"match": {"or": [{"any": true}, {"method": "GET"}]}}"#,
            "match.or[1].method",
        ),
        (r#"{"sample_percent": 200}"#, "sample_percent"),
        (r#"{"sink": {"file": {}}}"#, "sink.file"),
    ];
    for (json, field) in cases {
        let e = Config::parse(Some(json.as_bytes())).expect_err(json);
        assert_eq!(e.field, field, "{json}: {e}");
        assert!(!e.fix.is_empty(), "{json}: no fix in {e}");
    }
}

#[test]
fn interval_segments_work_with_filter_state() {
    let c = parse(r#"{"segment": {"interval_ms": 1000}}"#);
    assert_eq!(c.segment.and_then(|s| s.interval_ms), Some(1000));
}

/// The README's configuration reference lists each declared field as
/// declared (its own and those every tap takes, `filter_common::tap`), and
/// nothing else.
#[test]
fn the_readme_documents_the_declared_fields() {
    // The tap's own fields, then those every tap takes (filter_common::tap).
    let fields: Vec<_> = tap_tcp::config::Fields::reference()
        .into_iter()
        .chain(filter_common::tap::Budget::reference())
        .chain(filter_common::tap::Limits::reference())
        .collect();
    filter_common::config::reference::check_reference(include_str!("../README.md"), &fields)
        .unwrap_or_else(|e| panic!("{e}"));
}
