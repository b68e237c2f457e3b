// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use filter_common::tap::sink::SinkConfig;
use tap_http::config::{BodyFormat, Config, DEFAULT_MAX_BYTES, DEFAULT_WORDS};

fn parse(s: &str) -> Result<Config, filter_common::config::ConfigError> {
    Config::parse(Some(s.as_bytes()))
}

#[test]
fn defaults_are_private() {
    let c = parse("").unwrap();
    assert_eq!(c.max_request_bytes, DEFAULT_MAX_BYTES as usize);
    assert_eq!(c.max_response_bytes, 0, "bodies only when asked");
    assert_eq!(c.body_format, BodyFormat::AsBytes);
    assert_eq!(
        c.redaction.headers,
        [
            "authorization",
            "proxy-authorization",
            "cookie",
            "set-cookie"
        ]
    );
    assert_eq!(c.redaction.words, DEFAULT_WORDS);
    assert_eq!(
        c.sink,
        SinkConfig::FilterState {
            key: "tap_trace".into()
        }
    );
    assert_eq!(c.budget.sample_percent, 100.0);
    assert!(c.budget.rate_limit.is_none() && c.budget.max_records.is_none());
    assert!(!c.record_downstream_connection && !c.record_stream_info);
    assert!(
        !c.redaction.record_peer_metadata_headers,
        "Istio's peer metadata headers are redacted"
    );
}

#[test]
fn everything_set() {
    let c = parse(
        r#"{"match": {"and": [{"method": "POST"}, {"not": {"path": {"prefix": "/health"}}},
                       {"or": [{"status": {"min": 500, "max": 599}}, {"response_header": {"name": "X-Debug", "present": true}}]}]},
            "sample_percent": 12.5, "max_request_bytes": 1024, "max_response_bytes": 0,
            "max_bytes_hard_limit": 2048, "body_format": "as_string", "redact_headers": ["X-Secret"], "redact_words": ["Pin", "my_otp-2"],
            "record_downstream_connection": true, "record_stream_info": true, "record_peer_metadata_headers": true,
            "rate_limit": {"records_per_second": 5}, "max_records": 100,
            "sink": {"http": {"cluster": "collector", "path": "/in", "batch_size": 10}}}"#,
    )
    .unwrap();
    assert_eq!((c.max_request_bytes, c.max_response_bytes), (1024, 0));
    assert_eq!(c.redaction.headers, ["x-secret"]);
    assert_eq!(c.redaction.words, ["pin", "my_otp-2"]);
    assert!(c.redaction.record_peer_metadata_headers);
    assert_eq!(c.budget.rate_limit.unwrap().burst, 5.0);
    assert!(matches!(
        c.sink,
        SinkConfig::Http {
            batch_size: 10,
            max_queue: 1000,
            ..
        }
    ));
    let c = parse(r#"{"redact_headers": [], "sink": {"log": {"level": "debug"}}}"#).unwrap();
    assert!(
        c.redaction.headers.is_empty(),
        "an empty list turns redaction off"
    );
    assert_eq!(
        c.sink,
        SinkConfig::Log {
            level: log::Level::Debug
        }
    );
}

#[test]
fn refusals_name_the_field() {
    let cases = [
        (r#"{"match": {"mthod": "GET"}}"#, "match.mthod"),
        (
            r#"{"match": {"method": "GET", "path": {"exact": "/"}}}"#,
            "match",
        ),
        (r#"{"match": {"and": []}}"#, "match.and"),
        (
            r#"{"match": {"and": [{"method": ""}]}}"#,
            "match.and[0].method",
        ),
        (
            r#"{"match": {"or": [{"any": true}, {"path": {"regex": "("}}]}}"#,
            "match.or[1].path.regex",
        ),
        (
            r#"{"match": {"path": {"suffix": "/x"}}}"#,
            "match.path.suffix",
        ),
        (
            r#"{"match": {"request_header": {"name": "x", "present": true, "exact": "y"}}}"#,
            "match.request_header",
        ),
        (
            r#"{"match": {"request_header": {"name": ":path", "present": true}}}"#,
            "match.request_header.name",
        ),
        (
            r#"{"match": {"response_header": {"name": "x", "regex": "[z-a]"}}}"#,
            "match.response_header.regex",
        ),
        (
            r#"{"match": {"status": {"min": 500, "max": 400}}}"#,
            "match.status",
        ),
        (r#"{"match": {"status": {"min": 500}}}"#, "match.status.max"),
        (r#"{"match": {"any": false}}"#, "match.any"),
        (r#"{"sample_percent": 101}"#, "sample_percent"),
        (r#"{"sample_percent": "10"}"#, "sample_percent"),
        (r#"{"max_request_bytes": 2000000}"#, "max_request_bytes"),
        (r#"{"max_response_bytes": -1}"#, "max_response_bytes"),
        (
            r#"{"max_bytes_hard_limit": 100000000}"#,
            "max_bytes_hard_limit",
        ),
        (r#"{"body_format": "JSON_BODY_AS_BYTES"}"#, "body_format"),
        (
            r#"{"redact_headers": ["ok", "not ok"]}"#,
            "redact_headers[1]",
        ),
        (r#"{"redact_headers": "cookie"}"#, "redact_headers"),
        (r#"{"redact_words": ["ok", "not ok"]}"#, "redact_words[1]"),
        (r#"{"redact_words": [""]}"#, "redact_words[0]"),
        (r#"{"redact_words": "token"}"#, "redact_words"),
        (
            r#"{"record_peer_metadata_headers": "yes"}"#,
            "record_peer_metadata_headers",
        ),
        (
            r#"{"record_peer_metadata_headers": false, "record_peer_metadata_headers": true}"#,
            "record_peer_metadata_headers",
        ),
        (r#"{"record_peer_metadata": true}"#, "record_peer_metadata"),
        (
            r#"{"rate_limit": {"records_per_second": 0}}"#,
            "rate_limit.records_per_second",
        ),
        (
            r#"{"rate_limit": {"records_per_second": 1, "burst": 0.5}}"#,
            "rate_limit.burst",
        ),
        (r#"{"rate_limit": {"rps": 1}}"#, "rate_limit.rps"),
        (r#"{"max_records": 1.5}"#, "max_records"),
        (r#"{"sink": {"file": {}}}"#, "sink.file"),
        (r#"{"sink": {"http": {}}}"#, "sink.http.cluster"),
        (
            r#"{"sink": {"http": {"cluster": "c", "path": "x"}}}"#,
            "sink.http.path",
        ),
        (
            r#"{"sink": {"http": {"cluster": "c", "batch_size": 0}}}"#,
            "sink.http.batch_size",
        ),
        (
            r#"{"sink": {"http": {"cluster": "c", "batch_size": 10, "max_queue": 5}}}"#,
            "sink.http.max_queue",
        ),
        (r#"{"sink": {"log": {"level": "loud"}}}"#, "sink.log.level"),
        (
            r#"{"sink": {"filter_state": {"key": "a b"}}}"#,
            "sink.filter_state.key",
        ),
        (r#"{"sink": {"log": {}, "http": {}}}"#, "sink"),
        (r#"{"tap": true}"#, "tap"),
    ];
    for (json, field) in cases {
        let e = parse(json).expect_err(json);
        assert_eq!(e.field, field, "{json}: {e}");
        assert!(!e.fix.is_empty(), "{json}: {e} has no fix");
    }
}

#[test]
fn deep_nesting_is_refused() {
    let mut json = r#"{"method": "GET"}"#.to_string();
    for _ in 0..20 {
        json = format!(r#"{{"not": {json}}}"#);
    }
    let e = parse(&format!(r#"{{"match": {json}}}"#)).unwrap_err();
    assert!(e.problem.contains("nest too deep"), "{e}");
}

/// The README's configuration reference lists each declared field as
/// declared (its own and those every tap takes, `filter_common::tap`), and
/// nothing else.
#[test]
fn the_readme_documents_the_declared_fields() {
    // The tap's own fields, then those every tap takes (filter_common::tap).
    let fields: Vec<_> = tap_http::config::Fields::reference()
        .into_iter()
        .chain(filter_common::tap::Budget::reference())
        .chain(filter_common::tap::Limits::reference())
        .collect();
    filter_common::config::reference::check_reference(include_str!("../README.md"), &fields)
        .unwrap_or_else(|e| panic!("{e}"));
}
