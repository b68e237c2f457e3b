//! The suite's shell, driven through the recording host: the four parts in
//! one context share one read of the request headers, each sees what the
//! parts before it did, and a denial stops the parts after the policy.

// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use filter_common::host::harness::Harness;
use filter_common::host::recording::{self as host, Call};
use filter_common::host::{Action, MapType};

const REQUEST: MapType = MapType::HttpRequestHeaders;
const SEED: &str = "ChwKDkFQUF9DT05UQUlORVJTEgoaCG5ldHNob290ChoKCkNMVVNURVJfSUQSDBoKS3ViZXJuZXRlcwogCgxJTlNUQU5DRV9JUFMSEBoOMTcyLjIxLjIwNi4yMjgKGQoNSVNUSU9fVkVSU0lPThIIGgYxLjE0LjMKlAEKBkxBQkVMUxKJASqGAQokChlzZWN1cml0eS5pc3Rpby5pby90bHNNb2RlEgcaBWlzdGlvCi0KH3NlcnZpY2UuaXN0aW8uaW8vY2Fub25pY2FsLW5hbWUSChoIbmV0c2hvb3QKLwojc2VydmljZS5pc3Rpby5pby9jYW5vbmljYWwtcmV2aXNpb24SCBoGbGF0ZXN0ChoKB01FU0hfSUQSDxoNY2x1c3Rlci5sb2NhbAoSCgROQU1FEgoaCG5ldHNob290ChMKCU5BTUVTUEFDRRIGGgRtYXJrCj0KBU9XTkVSEjQaMmt1YmVybmV0ZXM6Ly9hcGlzL3YxL25hbWVzcGFjZXMvbWFyay9wb2RzL25ldHNob290ChcKEVBMQVRGT1JNX01FVEFEQVRBEgIqAAobCg1XT1JLTE9BRF9OQU1FEgoaCG5ldHNob290";

/// All four parts; the policy lets `mark`'s verified callers GET `/api/*`.
const ALL: &str = r#"{
  "tap_http": {"match": {"request_header": {"name": "cf-app-id", "exact": "app"}}},
  "peer_metadata": {},
  "l7_policy": {"rules": [{"method": "GET", "path": "/api/.*", "from": {"namespace": "mark"}}]},
  "cf_headers": {"app_guid": "app", "org_guid": "org", "space_guid": "space"}
}"#;

fn request(method: &[u8], path: &[u8]) -> Harness {
    host::with(|h| {
        h.set_map(
            REQUEST,
            &[
                (":method", method),
                (":path", path),
                (":authority", b"app.example.com"),
                ("x-envoy-peer-metadata", SEED.as_bytes()),
                ("cf-app-id", b"forged"),
            ],
        );
        h.set_map(MapType::HttpResponseHeaders, &[(":status", b"200")]);
        h.set_property(
            &["connection", "uri_san_peer_certificate"],
            b"spiffe://cluster.local/ns/mark/sa/netshoot",
        );
    });
    match Harness::configure(suite::filter::configure, ALL) {
        Ok(plugin) => plugin,
        Err(logs) => panic!("configuration refused: {logs:?}"),
    }
}

#[test]
fn the_parts_share_one_read_and_see_each_others_work() {
    let mut plugin = request(b"GET", b"/api/users");
    host::take_calls();
    let stream = plugin.stream();
    assert_eq!(stream.request_headers(true), Action::Continue);
    host::with(|h| {
        assert_eq!(h.count(Call::GetHeaderMapPairs), 1, "{:?}", h.tally());
        // peer_metadata decoded and verified the caller, so the policy let it in;
        assert_eq!(h.header(REQUEST, "x-peer-namespace"), [b"mark"]);
        assert_eq!(h.header(REQUEST, "x-peer-verified"), [b"true"]);
        assert_eq!(h.property(&["l7_verdict"]), Some(&b"allowed"[..]));
        // cf_headers replaced the forged identity.
        assert_eq!(h.header(REQUEST, "cf-app-id"), [b"app"]);
    });
    stream.response_headers(true);
    stream.log();
    // The tap matched the stamped `cf-app-id`, which only the part after it
    // set, and records the caller the peer_metadata part published.
    host::with(|h| {
        let record = String::from_utf8_lossy(h.property(&["tap_trace"]).expect("no record"));
        assert!(
            record.contains(
                r#""metadata":{"verified":true,"workload":"netshoot","namespace":"mark","#
            ),
            "{record}"
        );
        assert!(!record.contains(SEED), "{record}");
        assert_eq!(h.counter("tap_http.tapped"), 1);
    });
}

#[test]
fn a_denial_stops_the_parts_after_the_policy() {
    let mut plugin = request(b"DELETE", b"/api/users");
    let stream = plugin.stream();
    assert_eq!(stream.request_headers(true), Action::Pause);
    host::with(|h| {
        assert_eq!(h.replies.first().map(|r| r.status), Some(403));
        // cf_headers never ran: the forged header is still there (the
        // request goes nowhere), and nothing was stamped.
        assert_eq!(h.header(REQUEST, "cf-app-id"), [b"forged"]);
        assert_eq!(h.counter("cf_headers.stamped"), 0);
        assert_eq!(h.counter("l7_policy.denied"), 1);
        // The local reply's headers, as Envoy hands them to the filters before.
        h.set_map(MapType::HttpResponseHeaders, &[(":status", b"403")]);
    });
    stream.response_headers(true);
    stream.log();
    // The tap saw the reply but its condition (`cf-app-id: app`) never held.
    host::with(|h| {
        assert!(h.property(&["tap_trace"]).is_none());
        assert_eq!(h.counter("tap_http.not_matched"), 1);
    });
}
