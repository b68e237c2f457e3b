//! The shell, driven callback by callback through the recording host: what
//! it copies out of Envoy as a stream passes, the record it hands over, and
//! how many host calls that takes.

// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use filter_common::host::harness::Harness;
use filter_common::host::recording::{self as host, Call};
use filter_common::host::{Action, BufferType, MapType};
use serde_json::Value;

fn configure(config: &str) -> Harness {
    match Harness::configure(tap_http::filter::configure, config) {
        Ok(plugin) => plugin,
        Err(logs) => panic!("configuration refused: {logs:?}"),
    }
}

/// One POST with a body in two chunks and a response with a body, through
/// the plugin as Envoy calls it; the record left in filter state, if any.
fn exchange(config: &str) -> Option<Value> {
    let mut plugin = configure(config);
    // From here on, only what the stream asks of the host.
    host::take_calls();
    host::with(|h| {
        h.set_map(
            MapType::HttpRequestHeaders,
            &[
                (":method", b"POST"),
                (":path", b"/upload"),
                ("authorization", b"secret"),
            ],
        )
    });
    let stream = plugin.stream();
    assert_eq!(stream.request_headers(false), Action::Continue);
    for chunk in [&b"hello "[..], b"world"] {
        host::with(|h| {
            h.buffers
                .insert(BufferType::HttpRequestBody as u32, chunk.to_vec())
        });
        assert_eq!(stream.request_body(chunk.len(), false), Action::Continue);
    }
    host::with(|h| h.set_map(MapType::HttpRequestTrailers, &[("x-sum", b"1")]));
    assert_eq!(stream.request_trailers(), Action::Continue);
    host::with(|h| h.set_map(MapType::HttpResponseHeaders, &[(":status", b"201")]));
    assert_eq!(stream.response_headers(false), Action::Continue);
    host::with(|h| {
        h.buffers
            .insert(BufferType::HttpResponseBody as u32, b"created".to_vec())
    });
    assert_eq!(stream.response_body(7, true), Action::Continue);
    stream.log();
    stream.delete();
    let record = host::with(|h| h.property(&["tap_trace"]).map(<[u8]>::to_vec))?;
    serde_json::from_slice(&record).ok()
}

fn body(record: &Value, message: &str) -> (String, bool) {
    let b = &record["http_buffered_trace"][message]["body"];
    (
        b["as_string"].as_str().unwrap_or_default().to_string(),
        b["truncated"].as_bool().unwrap_or_default(),
    )
}

#[test]
fn a_stream_is_recorded_with_bodies_trailers_and_redaction() {
    let Some(record) = exchange(
        r#"{"body_format": "as_string", "max_request_bytes": 100, "max_response_bytes": 100}"#,
    ) else {
        panic!("no record in filter state");
    };
    assert_eq!(body(&record, "request"), ("hello world".to_string(), false));
    assert_eq!(body(&record, "response"), ("created".to_string(), false));
    let request = &record["http_buffered_trace"]["request"];
    assert_eq!(
        request["headers"][2],
        serde_json::json!({"key": "authorization", "value": "[redacted]"})
    );
    assert_eq!(
        request["trailers"][0],
        serde_json::json!({"key": "x-sum", "value": "1"})
    );
    host::with(|h| assert_eq!(h.counter("tap_http.tapped"), 1));
}

#[test]
fn bodies_are_copied_only_up_to_the_cap() {
    let Some(record) = exchange(r#"{"body_format": "as_string", "max_request_bytes": 8}"#) else {
        panic!("no record in filter state");
    };
    assert_eq!(body(&record, "request"), ("hello wo".to_string(), true));
    host::with(|h| assert_eq!(h.counter("tap_http.truncated"), 1));
}

/// Bodies are kept only when asked: by default a record says a body went
/// by (`truncated`, no bytes) and nothing is copied out of Envoy.
#[test]
fn bodies_are_off_by_default() {
    let Some(record) = exchange(r#"{"body_format": "as_string"}"#) else {
        panic!("no record in filter state");
    };
    assert_eq!(body(&record, "request"), (String::new(), true));
    assert_eq!(body(&record, "response"), (String::new(), true));
    host::with(|h| assert_eq!(h.count(Call::GetBufferBytes), 0, "bodies were copied"));
}

/// The caller as Envoy proved it: the URI SAN of the client certificate,
/// read by the tap itself, in `peer`; an empty `peer` without one.
#[test]
fn the_verified_caller_is_recorded() {
    let Some(record) = exchange("{}") else {
        panic!("no record in filter state");
    };
    assert_eq!(record["peer"], serde_json::json!({}));
    let principal = "spiffe://cluster.local/ns/default/sa/tiefighter";
    host::with(|h| {
        h.set_property(
            &["connection", "uri_san_peer_certificate"],
            principal.as_bytes(),
        )
    });
    let Some(record) = exchange("{}") else {
        panic!("no record in filter state");
    };
    assert_eq!(record["peer"]["principal"], principal);
}

/// Where peer_metadata ran on the stream, the caller it published in filter
/// state (`wasm.peer_*`) is the record's `peer.metadata`: `verified` and the
/// claims, not its principal (`peer.principal` is the tap's own reading of
/// the certificate) nor the labels. Without it, `peer` says nothing more.
#[test]
fn the_caller_peer_metadata_published_is_recorded() {
    let Some(record) = exchange("{}") else {
        panic!("no record in filter state");
    };
    assert_eq!(record["peer"], serde_json::json!({}));
    host::with(|h| {
        for (key, value) in [
            ("peer_verified", "true"),
            ("peer_namespace", "mark"),
            ("peer_workload", "netshoot"),
            ("peer_service_account", "netshoot"),
            (
                "peer_principal",
                "spiffe://cluster.local/ns/mark/sa/netshoot",
            ),
            ("peer_labels", r#"{"app": "netshoot"}"#),
        ] {
            h.set_property(&[key], value.as_bytes());
        }
    });
    let Some(record) = exchange("{}") else {
        panic!("no record in filter state");
    };
    assert_eq!(
        record["peer"],
        serde_json::json!({"metadata": {"verified": true, "workload": "netshoot",
                                        "namespace": "mark", "service_account": "netshoot"}})
    );
    // A claim peer_metadata could not verify says so.
    host::with(|h| h.set_property(&["peer_verified"], b"false"));
    let Some(record) = exchange("{}") else {
        panic!("no record in filter state");
    };
    assert_eq!(record["peer"]["metadata"]["verified"], false);
}

#[test]
fn a_stream_ruled_out_by_its_method_copies_nothing() {
    let record = exchange(r#"{"match": {"method": "GET"}}"#);
    assert!(record.is_none());
    host::with(|h| {
        assert_eq!(h.count(Call::GetBufferBytes), 0, "bodies were copied");
        assert_eq!(h.counter("tap_http.not_matched"), 1);
    });
}

#[test]
fn a_refused_record_is_counted_not_fatal() {
    host::with(|h| h.refuse.insert(Call::SetProperty, 2));
    assert!(exchange("{}").is_none());
    host::with(|h| {
        assert_eq!(h.counter("tap_http.sink_errors"), 1);
        assert_eq!(h.counter("tap_http.tapped"), 0);
    });
}

/// Host calls for the exchange above with bodies kept: two body chunks and
/// one response chunk copied, the trailers, at the log the request and
/// response maps, the verified caller, whether peer_metadata published a
/// caller (`wasm.peer_verified`), the record, the counter. With the default
/// configuration (no bodies) the three copies are not made; where
/// peer_metadata published a caller, its eight other keys are read.
#[test]
fn host_calls_per_request_stay_within_budget() {
    const BUDGET: usize = 11;
    const BUDGET_WITHOUT_BODIES: usize = 8;
    const BUDGET_WITH_CALLER: usize = BUDGET_WITHOUT_BODIES + 8;
    assert!(exchange(r#"{"max_request_bytes": 100, "max_response_bytes": 100}"#).is_some());
    if let Err(e) = host::within_budget(BUDGET) {
        panic!("{e}");
    }
    assert!(exchange("{}").is_some());
    if let Err(e) = host::within_budget(BUDGET_WITHOUT_BODIES) {
        panic!("{e}");
    }
    host::with(|h| h.set_property(&["peer_verified"], b"true"));
    assert!(exchange("{}").is_some());
    if let Err(e) = host::within_budget(BUDGET_WITH_CALLER) {
        panic!("{e}");
    }
}
