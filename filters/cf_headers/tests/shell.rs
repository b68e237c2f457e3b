//! The shell, driven callback by callback through the recording host: what
//! it asks of Envoy for each request, and how many host calls that takes.

// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use filter_common::host::harness::Harness;
use filter_common::host::recording::{self as host, Call};
use filter_common::host::{Action, MapType};

const REQUEST: MapType = MapType::HttpRequestHeaders;
const STATIC: &str = r#"{"app_guid": "app", "org_guid": "org", "space_guid": "space"}"#;

fn request(headers: &[(&str, &[u8])]) {
    host::with(|h| h.set_map(REQUEST, headers));
}

fn configure(config: &str) -> Harness {
    match Harness::configure(cf_headers::filter::configure, config) {
        Ok(plugin) => plugin,
        Err(logs) => panic!("configuration refused: {logs:?}"),
    }
}

#[test]
fn stamps_over_every_spelling_a_client_sent() {
    request(&[
        (":authority", b"app.example.com"),
        ("cf-app-id", b"evil"),
        ("CF_App_Id", b"evil-too"),
        ("cf-space-id", b"evil"),
        ("x-other", b"kept"),
    ]);
    let mut plugin = configure(STATIC);
    let stream = plugin.stream();
    assert_eq!(stream.request_headers(true), Action::Continue);
    host::with(|h| {
        assert_eq!(h.header(REQUEST, "cf-app-id"), [b"app"]);
        assert_eq!(h.header(REQUEST, "cf_app_id"), Vec::<&[u8]>::new());
        assert_eq!(h.header(REQUEST, "cf-app-process-type"), [b"web"]);
        assert_eq!(h.header(REQUEST, "cf-organization-id"), [b"org"]);
        assert_eq!(h.header(REQUEST, "cf-space-id"), [b"space"]);
        assert_eq!(h.header(REQUEST, "x-other"), [b"kept"]);
        assert_eq!(h.counter("cf_headers.stamped"), 1);
        assert_eq!(h.counter("cf_headers.spoofed_removed"), 3);
    });
}

#[test]
fn trailer_copies_are_removed_and_counted() {
    request(&[(":authority", b"a")]);
    host::with(|h| {
        h.set_map(
            MapType::HttpRequestTrailers,
            &[
                ("cf-org_id", b"x"),
                ("Cf-Organization_Id", b"evil"),
                ("grpc-status", b"0"),
            ],
        )
    });
    let mut plugin = configure(STATIC);
    let stream = plugin.stream();
    stream.request_headers(false);
    assert_eq!(stream.request_trailers(), Action::Continue);
    host::with(|h| {
        let names: Vec<&str> = h
            .map(MapType::HttpRequestTrailers)
            .unwrap_or_default()
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(names, ["cf-org_id", "grpc-status"]);
        assert_eq!(h.counter("cf_headers.spoofed_removed"), 1);
    });
}

#[test]
fn an_unknown_host_is_rejected_with_a_local_reply_when_configured() {
    request(&[(":authority", b"other.example.com"), ("cf-app-id", b"evil")]);
    let mut plugin = configure(
        r#"{"hosts": {"app.example.com": {"app_guid": "a", "org_guid": "o", "space_guid": "s"}},
            "on_missing_identity": "reject", "response_headers": true}"#,
    );
    let stream = plugin.stream();
    assert_eq!(stream.request_headers(true), Action::Pause);
    host::with(|h| {
        assert_eq!(h.replies.len(), 1);
        assert_eq!(h.replies[0].status, 503);
        assert_eq!(h.header(REQUEST, "cf-app-id"), Vec::<&[u8]>::new());
        assert_eq!(h.counter("cf_headers.rejected"), 1);
        assert_eq!(h.counter("cf_headers.no_identity"), 1);
        // The local reply's own headers are Envoy's: the filter leaves them.
        h.set_map(MapType::HttpResponseHeaders, &[(":status", b"503")]);
    });
    host::take_calls();
    stream.response_headers(true);
    assert_eq!(
        host::take_calls(),
        [],
        "a rejected request's reply is not stamped"
    );
}

#[test]
fn a_refused_configuration_names_the_field() {
    let logs = match Harness::configure(cf_headers::filter::configure, r#"{"app_guid": 1}"#) {
        Ok(_) => panic!("a number as app_guid was accepted"),
        Err(logs) => logs,
    };
    assert!(
        logs.iter().any(|l| l.contains("app_guid")),
        "no log names the field: {logs:?}"
    );
}

/// Host calls for a request without spoofed headers, from the stream's
/// creation to its deletion: one header-map read, one append per header,
/// one counter. A change that adds calls to the hot path fails here first.
#[test]
fn host_calls_per_request_stay_within_budget() {
    const BUDGET: usize = 6;
    request(&[(":authority", b"app.example.com"), (":path", b"/")]);
    let mut plugin = configure(STATIC);
    host::take_calls();
    let stream = plugin.stream();
    stream.request_headers(true);
    stream.response_headers(true);
    stream.log();
    stream.delete();
    let tally = match host::within_budget(BUDGET) {
        Ok(tally) => tally,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(tally.get(&Call::GetHeaderMapPairs), Some(&1), "{tally:?}");
}
