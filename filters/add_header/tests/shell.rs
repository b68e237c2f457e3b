//! The shell driven through the recording host, callback by callback, as
//! Envoy drives it.

// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use filter_common::host::harness::Harness;
use filter_common::host::recording::{self as host, Call};
use filter_common::host::{Action, MapType};

const RESPONSE: MapType = MapType::HttpResponseHeaders;

fn configure(json: &str) -> Harness {
    Harness::configure(add_header::filter::configure, json).unwrap()
}

/// Runs one response whose headers are `headers`; what the client gets.
fn respond(plugin: &mut Harness, headers: &[(&str, &[u8])]) -> Vec<Vec<u8>> {
    host::with(|h| h.set_map(RESPONSE, headers));
    let stream = plugin.stream();
    assert_eq!(stream.response_headers(false), Action::Continue);
    host::with(|h| {
        h.header(RESPONSE, "x-frame-options")
            .into_iter()
            .map(<[u8]>::to_vec)
            .collect()
    })
}

#[test]
fn replaces_the_app_s_copies_unless_told_to_keep_them() {
    let mut replace = configure(r#"{"name": "X-Frame-Options", "value": "DENY"}"#);
    let app = [
        ("x-frame-options", &b"ALLOW-FROM x"[..]),
        ("x-frame-options", b"SAMEORIGIN"),
    ];
    assert_eq!(respond(&mut replace, &app), [b"DENY"]);
    assert_eq!(respond(&mut replace, &[]), [b"DENY"]);
    host::with(|h| assert_eq!(h.counter("add_header.set"), 2));

    let mut keep =
        configure(r#"{"name": "x-frame-options", "value": "DENY", "keep_existing": true}"#);
    assert_eq!(
        respond(&mut keep, &app),
        [&b"ALLOW-FROM x"[..], b"SAMEORIGIN"]
    );
    assert_eq!(respond(&mut keep, &[]), [b"DENY"]);
    host::with(|h| {
        assert_eq!(h.counter("add_header.kept"), 1);
        assert_eq!(h.counter("add_header.set"), 3);
    });
}

#[test]
fn a_bad_configuration_is_refused_naming_the_field() {
    let logs = match Harness::configure(add_header::filter::configure, r#"{"name": "x-a"}"#) {
        Ok(_) => panic!("accepted without a value"),
        Err(logs) => logs,
    };
    assert!(logs.iter().any(|l| l.contains("field `value`")), "{logs:?}");
}

/// The host calls one response costs, from the stream's creation to its
/// deletion: one replace and one counter. Host calls are deterministic, so
/// the budget is the count of a typical request today; a change that adds a
/// call to the hot path fails here before any benchmark. With
/// `keep_existing` add the one header-map read it needs.
#[test]
fn host_calls_per_request_stay_within_budget() {
    const BUDGET: usize = 2;
    let mut plugin = configure(r#"{"name": "x-frame-options", "value": "DENY"}"#);
    host::with(|h| h.set_map(RESPONSE, &[(":status", b"200")]));
    host::take_calls();
    let stream = plugin.stream();
    stream.response_headers(true);
    stream.log();
    stream.delete();
    let tally = host::within_budget(BUDGET).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        tally.get(&Call::ReplaceHeaderMapValue),
        Some(&1),
        "{tally:?}"
    );
    assert_eq!(tally.get(&Call::GetHeaderMapPairs), None, "{tally:?}");
}
