// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use filter_common::header::pairs::HeaderMap;
use filter_common::peer::Peer;
use filter_common::tap::capture::Capture;
use tap_http::config::BodyFormat;
use tap_http::record::{rfc3339, Extras, Format, Message, StreamInfo};
use tap_http::redact::Redaction;

/// The seed sample of `x-envoy-peer-metadata` (Istio 1.14.3), as the
/// integration tests send it.
const SEED_START: &str = "ChwKDkFQUF9DT05UQUlORVJT";

fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
    HeaderMap::from_pairs(pairs)
}

fn capture(data: &[u8], limit: usize) -> Capture {
    let mut c = Capture::new(limit);
    for chunk in data.chunks(3) {
        let room = c.room().min(chunk.len());
        c.push(&chunk[..room], chunk.len());
    }
    c
}

#[test]
fn record_is_envoy_tap_json() {
    let redact = Redaction::new(vec!["authorization".to_string()], Vec::new());
    let format = Format {
        body: BodyFormat::AsBytes,
        redact: &redact,
    };
    let req_h = headers(&[
        (":method", b"POST"),
        ("Authorization", b"Bearer x"),
        ("x-bin", b"a\xffb"),
        ("x-q", b"\"\n"),
    ]);
    let resp_h = headers(&[(":status", b"200")]);
    let trailers = headers(&[("grpc-status", b"0")]);
    let (req_body, resp_body) = (capture(b"hello world", 5), Capture::new(10));
    let line = format.render(
        &Message {
            headers: &req_h,
            body: &req_body,
            trailers: None,
        },
        &Message {
            headers: &resp_h,
            body: &resp_body,
            trailers: Some(&trailers),
        },
        &Extras::default(),
    );
    assert!(!line.contains('\n'));
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    let t = &v["http_buffered_trace"];
    assert_eq!(t["request"]["headers"][1]["value"], "[redacted]");
    assert_eq!(t["request"]["headers"][2]["value"], "a\u{fffd}b");
    assert_eq!(t["request"]["headers"][2]["raw_value"], "Yf9i");
    assert_eq!(t["request"]["headers"][3]["value"], "\"\n");
    assert_eq!(t["request"]["body"]["as_bytes"], "aGVsbG8=");
    assert_eq!(t["request"]["body"]["truncated"], true);
    assert_eq!(t["request"]["trailers"], serde_json::json!([]));
    assert!(t["response"].get("body").is_none(), "no data, no body");
    assert_eq!(t["response"]["trailers"][0]["key"], "grpc-status");
    assert!(v.get("incomplete").is_none() && v.get("stream_info").is_none());
    assert_eq!(
        v["peer"],
        serde_json::json!({}),
        "no certificate: an empty peer"
    );
}

#[test]
fn no_response_and_extras() {
    let format = Format {
        body: BodyFormat::AsString,
        redact: &Redaction::default(),
    };
    let req_h = headers(&[(":method", b"GET")]);
    let body = capture(b"caf\xc3\xa9", 100);
    let extras = Extras {
        downstream: Some(("127.0.0.1:10000".into(), "[::1]:5555".into())),
        stream_info: Some(StreamInfo {
            start_time_nanos: Some(1_700_000_000_123_456_789),
            duration_nanos: Some(1_234_567),
            request_id: Some("id-1".into()),
            ..Default::default()
        }),
        incomplete: true,
        peer: Some("spiffe://cluster.local/ns/a/sa/b".into()),
        caller: None,
    };
    let line = format.render(
        &Message {
            headers: &req_h,
            body: &body,
            trailers: None,
        },
        &Message {
            headers: &HeaderMap::default(),
            body: &Capture::new(0),
            trailers: None,
        },
        &extras,
    );
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    let t = &v["http_buffered_trace"];
    assert!(
        t.get("response").is_none(),
        "like Envoy: no response object without a response"
    );
    assert_eq!(t["request"]["body"]["as_string"], "café");
    assert_eq!(v["peer"]["principal"], "spiffe://cluster.local/ns/a/sa/b");
    assert_eq!(
        t["downstream_connection"]["local_address"]["socket_address"]["port_value"],
        10000
    );
    assert_eq!(
        t["downstream_connection"]["remote_address"]["socket_address"]["address"],
        "::1"
    );
    assert_eq!(
        v["stream_info"]["start_time"],
        "2023-11-14T22:13:20.123456789Z"
    );
    assert_eq!(v["stream_info"]["duration_ms"], 1.234);
    assert_eq!(v["incomplete"], true);
}

#[test]
fn rfc3339_dates() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000000Z");
    assert_eq!(
        rfc3339(951_782_400_000_000_000),
        "2000-02-29T00:00:00.000000000Z"
    );
    assert_eq!(
        rfc3339(4_102_444_799_999_999_999),
        "2099-12-31T23:59:59.999999999Z"
    );
}

/// Istio's peer metadata headers are redacted wherever they stand
/// (request and response headers, trailers); the caller peer_metadata
/// published is `peer.metadata`: `verified` and the claims it passed on,
/// after the principal, without labels.
#[test]
fn peer_metadata_is_redacted_and_the_published_caller_recorded() {
    let redact = Redaction::default();
    let format = Format {
        body: BodyFormat::AsBytes,
        redact: &redact,
    };
    let metadata: &[(&str, &[u8])] = &[
        ("X-Envoy-Peer-Metadata", SEED_START.as_bytes()),
        (
            "x-envoy-peer-metadata-id",
            b"sidecar~10.0.0.1~netshoot.mark~mark.svc.cluster.local",
        ),
        ("x-peer-workload", b"netshoot"),
    ];
    let (request, response, trailers) = (
        headers(metadata),
        headers(&[&[(":status", &b"200"[..])], metadata].concat()),
        headers(metadata),
    );
    let render = |extras: &Extras| {
        let line = format.render(
            &Message {
                headers: &request,
                body: &Capture::new(0),
                trailers: Some(&trailers),
            },
            &Message {
                headers: &response,
                body: &Capture::new(0),
                trailers: Some(&trailers),
            },
            extras,
        );
        assert!(
            !line.contains(SEED_START) && !line.contains("sidecar~"),
            "{line}"
        );
        serde_json::from_str::<serde_json::Value>(&line).unwrap()
    };
    let v = render(&Extras::default());
    let t = &v["http_buffered_trace"];
    for list in [
        &t["request"]["headers"],
        &t["request"]["trailers"],
        &t["response"]["trailers"],
    ] {
        assert_eq!(list[0]["value"], "[redacted]", "{list}");
        assert_eq!(list[1]["value"], "[redacted]", "{list}");
        assert_eq!(list[2]["value"], "netshoot", "{list}");
    }
    assert_eq!(t["response"]["headers"][1]["value"], "[redacted]");
    assert_eq!(t["response"]["headers"][2]["value"], "[redacted]");
    assert_eq!(
        v["peer"],
        serde_json::json!({}),
        "no peer_metadata: no metadata"
    );

    let principal = "spiffe://cluster.local/ns/mark/sa/netshoot";
    let caller = Peer {
        workload: Some("netshoot".into()),
        namespace: Some("mark".into()),
        name: Some("netshoot-5c8f".into()),
        app: Some("netshoot".into()),
        version: Some("latest".into()),
        cluster: Some("Kubernetes".into()),
        identity: Some(principal.into()),
        principal: Some(principal.into()),
        verified: true,
        service_account: Some("netshoot".into()),
        labels: vec![("security.istio.io/tlsMode".into(), "istio".into())],
        // Not published: the record has no locality.
        region: Some("us-east1".into()),
        zone: None,
    };
    let v = render(&Extras {
        peer: Some(principal.into()),
        caller: Some(caller),
        ..Extras::default()
    });
    assert_eq!(
        v["peer"],
        serde_json::json!({"principal": principal, "metadata": {
            "verified": true, "workload": "netshoot", "namespace": "mark",
            "name": "netshoot-5c8f", "app": "netshoot", "version": "latest",
            "cluster": "Kubernetes", "identity": principal, "service_account": "netshoot"}})
    );
    // Without a certificate, and with nothing but `verified` published
    // (peer_metadata ran and found no caller to pass on).
    let v = render(&Extras {
        caller: Some(Peer::default()),
        ..Extras::default()
    });
    assert_eq!(
        v["peer"],
        serde_json::json!({"metadata": {"verified": false}})
    );
}
