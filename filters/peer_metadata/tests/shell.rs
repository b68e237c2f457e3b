//! The shell, driven callback by callback through the recording host: which
//! source names the caller when several are present, what reaches the app,
//! and how many host calls a request costs.

// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use filter_common::host::harness::Harness;
use filter_common::host::recording::{self as host, Call};
use filter_common::host::{Action, MapType};

const REQUEST: MapType = MapType::HttpRequestHeaders;
/// Istio 1.14's header for workload `netshoot` in namespace `mark`.
const SEED: &str = "ChwKDkFQUF9DT05UQUlORVJTEgoaCG5ldHNob290ChoKCkNMVVNURVJfSUQSDBoKS3ViZXJuZXRlcwogCgxJTlNUQU5DRV9JUFMSEBoOMTcyLjIxLjIwNi4yMjgKGQoNSVNUSU9fVkVSU0lPThIIGgYxLjE0LjMKlAEKBkxBQkVMUxKJASqGAQokChlzZWN1cml0eS5pc3Rpby5pby90bHNNb2RlEgcaBWlzdGlvCi0KH3NlcnZpY2UuaXN0aW8uaW8vY2Fub25pY2FsLW5hbWUSChoIbmV0c2hvb3QKLwojc2VydmljZS5pc3Rpby5pby9jYW5vbmljYWwtcmV2aXNpb24SCBoGbGF0ZXN0ChoKB01FU0hfSUQSDxoNY2x1c3Rlci5sb2NhbAoSCgROQU1FEgoaCG5ldHNob290ChMKCU5BTUVTUEFDRRIGGgRtYXJrCj0KBU9XTkVSEjQaMmt1YmVybmV0ZXM6Ly9hcGlzL3YxL25hbWVzcGFjZXMvbWFyay9wb2RzL25ldHNob290ChcKEVBMQVRGT1JNX01FVEFEQVRBEgIqAAobCg1XT1JLTE9BRF9OQU1FEgoaCG5ldHNob290";
const BAGGAGE: &[u8] = b"k8s.deployment.name=from-baggage,k8s.namespace.name=baggage-ns";
const ID: &[u8] = b"sidecar~10.0.0.1~pod-from-id.id-ns~id-ns.svc.cluster.local";

fn configure(config: &str) -> Harness {
    match Harness::configure(peer_metadata::filter::configure, config) {
        Ok(plugin) => plugin,
        Err(logs) => panic!("configuration refused: {logs:?}"),
    }
}

/// Istio's `downstream_peer` filter state object (1.24 and later), as
/// Envoy answers property reads of its fields.
fn istio_filter_state(workload: &str, namespace: &str) {
    host::with(|h| {
        h.set_property(
            &["filter_state", "downstream_peer", "workload"],
            workload.as_bytes(),
        );
        h.set_property(
            &["filter_state", "downstream_peer", "namespace"],
            namespace.as_bytes(),
        );
    });
}

/// Runs one request with `headers`; the values the app then gets for
/// `x-peer-workload` and `x-peer-namespace`.
fn caller(config: &str, headers: &[(&str, &[u8])]) -> (Vec<String>, Vec<String>) {
    host::with(|h| h.set_map(REQUEST, headers));
    let mut plugin = configure(config);
    let stream = plugin.stream();
    assert_eq!(stream.request_headers(true), Action::Continue);
    host::with(|h| {
        let text = |name| {
            h.header(REQUEST, name)
                .iter()
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .collect()
        };
        (text("x-peer-workload"), text("x-peer-namespace"))
    })
}

fn one(v: &str) -> Vec<String> {
    vec![v.to_string()]
}

#[test]
fn the_metadata_header_wins_over_every_other_source() {
    istio_filter_state("from-state", "state-ns");
    let got = caller(
        "{}",
        &[
            ("x-envoy-peer-metadata", SEED.as_bytes()),
            ("baggage", BAGGAGE),
            ("x-envoy-peer-metadata-id", ID),
        ],
    );
    assert_eq!(got, (one("netshoot"), one("mark")));
    host::with(|h| {
        assert_eq!(h.counter("peer_metadata.decoded"), 1);
        assert_eq!(h.counter("peer_metadata.istio_filter_state"), 0);
        // The metadata headers do not reach the app.
        assert!(h.header(REQUEST, "x-envoy-peer-metadata").is_empty());
        assert!(h.header(REQUEST, "x-envoy-peer-metadata-id").is_empty());
    });
}

#[test]
fn without_the_header_istio_filter_state_wins_over_baggage_and_id() {
    istio_filter_state("from-state", "state-ns");
    let got = caller(
        "{}",
        &[("baggage", BAGGAGE), ("x-envoy-peer-metadata-id", ID)],
    );
    assert_eq!(got, (one("from-state"), one("state-ns")));
    host::with(|h| assert_eq!(h.counter("peer_metadata.istio_filter_state"), 1));
}

#[test]
fn istio_filter_state_is_not_read_when_turned_off() {
    istio_filter_state("from-state", "state-ns");
    let got = caller(r#"{"istio_filter_state": false}"#, &[("baggage", BAGGAGE)]);
    assert_eq!(got, (one("from-baggage"), one("baggage-ns")));
    host::with(|h| assert_eq!(h.count(Call::GetProperty), 1, "only the principal"));
}

#[test]
fn baggage_wins_over_the_id_header() {
    let got = caller(
        "{}",
        &[("x-envoy-peer-metadata-id", ID), ("baggage", BAGGAGE)],
    );
    assert_eq!(got, (one("from-baggage"), one("baggage-ns")));
}

#[test]
fn the_id_header_alone_names_namespace_only() {
    let got = caller("{}", &[("x-envoy-peer-metadata-id", ID)]);
    assert_eq!(got, (vec![], one("id-ns")));
}

#[test]
fn broken_metadata_stops_the_search_for_a_caller() {
    istio_filter_state("from-state", "state-ns");
    for (metadata, counter) in [
        (vec![SEED.as_bytes(), b"Cg=="], "peer_metadata.malformed"),
        (vec![&[b'A'; 9000][..]], "peer_metadata.oversized"),
        (vec![&b"!!not base64"[..]], "peer_metadata.malformed"),
    ] {
        let mut headers: Vec<(&str, &[u8])> = metadata
            .iter()
            .map(|v| ("x-envoy-peer-metadata", *v))
            .collect();
        headers.push(("baggage", BAGGAGE));
        let got = caller("{}", &headers);
        assert_eq!(got, (vec![], vec![]), "{counter}");
        host::with(|h| assert_eq!(h.counter(counter), 1, "{counter}"));
        host::with(|h| *h = Default::default());
        istio_filter_state("from-state", "state-ns");
    }
}

#[test]
fn a_certificate_of_the_claimed_namespace_verifies_the_claim() {
    host::with(|h| {
        h.set_property(
            &["connection", "uri_san_peer_certificate"],
            b"spiffe://cluster.local/ns/mark/sa/netshoot",
        )
    });
    caller("{}", &[("x-envoy-peer-metadata", SEED.as_bytes())]);
    host::with(|h| {
        assert_eq!(h.header(REQUEST, "x-peer-verified"), [b"true"]);
        assert_eq!(
            h.property(&["peer_principal"]),
            Some(&b"spiffe://cluster.local/ns/mark/sa/netshoot"[..])
        );
        assert_eq!(h.counter("peer_metadata.verified"), 1);
    });
}

#[test]
fn client_copies_of_the_outputs_never_reach_the_app() {
    let got = caller(
        "{}",
        &[
            ("x-peer-workload", b"forged"),
            ("X_Peer_Namespace", b"forged"),
            ("x-peer-verified", b"true"),
        ],
    );
    assert_eq!(got, (vec![], vec![]));
    host::with(|h| {
        assert!(h.header(REQUEST, "x_peer_namespace").is_empty());
        assert_eq!(h.header(REQUEST, "x-peer-verified"), [b"false"]);
        assert_eq!(h.counter("peer_metadata.spoofed_removed"), 3);
    });
}

/// Host calls for a request with the metadata header over mTLS, its second
/// time (from the per-worker cache): the header-map read, the principal,
/// the removals and outputs, the filter state, the counters.
#[test]
fn host_calls_per_request_stay_within_budget() {
    const BUDGET: usize = 23;
    host::with(|h| {
        h.set_property(
            &["connection", "uri_san_peer_certificate"],
            b"spiffe://cluster.local/ns/mark/sa/netshoot",
        )
    });
    let headers: &[(&str, &[u8])] = &[
        (":path", b"/"),
        ("x-envoy-peer-metadata", SEED.as_bytes()),
        ("x-envoy-peer-metadata-id", ID),
    ];
    host::with(|h| h.set_map(REQUEST, headers));
    let mut plugin = configure("{}");
    plugin.stream().request_headers(true);
    host::with(|h| h.set_map(REQUEST, headers));
    host::take_calls();
    let stream = plugin.stream();
    stream.request_headers(true);
    stream.log();
    stream.delete();
    let tally = match host::within_budget(BUDGET) {
        Ok(tally) => tally,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(tally.get(&Call::GetHeaderMapPairs), Some(&1), "{tally:?}");
    assert_eq!(host::with(|h| h.counter("peer_metadata.from_cache")), 1);
}
