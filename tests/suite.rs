//! `suite.wasm` against the four separate modules it replaces: the same
//! configurations, the same traffic (HTTP/1.1 and HTTP/2), and the same
//! results: what the app receives, what the client gets back, every
//! filter's stats and the tap records. Tests named `smoke_*` also run
//! against the oldest supported Envoy.

use filter_registry::filters;
use harness::client::Proto;
use harness::tap::{read_records, record_access_log};
use harness::{wasm_filter, Bootstrap, Envoy, Request, Upstream, PEER_METADATA_SEED};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Every part of the suite (each filter `filters/suite/Cargo.toml` depends
/// on), in the suite's order, which the separate filters follow here as in
/// the shipped manifests: the configuration this file drives it with, or the
/// example configuration the filter declares.
fn configs() -> Vec<(String, Value)> {
    let chosen: [(&str, Value); 4] = [
        (
            "tap_http",
            json!({"match": {"request_header": {"name": "x-tap-me", "present": true}},
                   "max_request_bytes": 4096, "max_response_bytes": 4096}),
        ),
        ("peer_metadata", json!({})),
        (
            "l7_policy",
            json!({"rules": [
                {"method": "GET", "path": "/api/.*"},
                // Sees the header peer_metadata wrote before it.
                {"method": "GET", "path": "/ns-header", "headerMatches": [{"name": "x-peer-namespace", "value": "mark"}]},
                // Reads the caller peer_metadata published in filter state.
                {"method": "GET", "path": "/ns-from", "from": {"namespace": "mark", "allow_unverified": true}},
                {"method": "GET", "path": "/fix", "headerMatches": [{"name": "x-env", "value": "prod", "mismatch": "REPLACE"}]},
            ]}),
        ),
        (
            "cf_headers",
            json!({"app_guid": "app-1", "process_type": "web", "org_guid": "org-1", "space_guid": "space-1"}),
        ),
    ];
    filters()
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .filter(|f| f.in_suite)
        .map(|f| {
            let config = chosen
                .iter()
                .find(|(name, _)| *name == f.name)
                .map_or(f.example, |(_, config)| config.clone());
            (f.name, config)
        })
        .collect()
}

fn part_config(part: &str) -> Value {
    configs()
        .into_iter()
        .find(|(name, _)| *name == part)
        .map(|(_, config)| config)
        .unwrap_or_else(|| panic!("no {part} in configs()"))
}

fn separate(up: &Upstream) -> Envoy {
    let filters = configs()
        .iter()
        .map(|(name, config)| wasm_filter(name, config))
        .collect();
    start(up, filters)
}

fn suite(up: &Upstream) -> Envoy {
    let config: serde_json::Map<String, Value> = configs()
        .into_iter()
        .map(|(name, config)| (name.to_string(), config))
        .collect();
    start(up, vec![wasm_filter("suite", &Value::Object(config))])
}

fn start(up: &Upstream, filters: Vec<Value>) -> Envoy {
    Envoy::start(&Bootstrap::new(up.port()).listener_with(
        "main",
        filters,
        json!([]),
        record_access_log("records.jsonl"),
    ))
}

fn requests() -> Vec<Request> {
    let peer = |r: Request| r.header("x-envoy-peer-metadata", PEER_METADATA_SEED);
    vec![
        peer(Request::get("/api/ok"))
            .header("CF-App-Id", "spoofed")
            .header("x-peer-app", "spoofed"),
        peer(Request::new("POST", "/api/ok")).body("denied"),
        peer(Request::get("/api/%2e%2e/secret")),
        Request::get("/other"),
        peer(Request::get("/ns-header")),
        Request::get("/ns-header").header("x-peer-namespace", "mark"),
        peer(Request::get("/ns-from")),
        Request::get("/ns-from"),
        Request::get("/fix").header("x-env", "dev"),
        Request::get("/api/ok").header("x-envoy-peer-metadata", "!!broken!!"),
        // Headers the filters do not touch arrive as sent: bytes that are
        // not UTF-8, repeated copies in order.
        peer(Request::get("/api/bytes"))
            .header("x-bin", b"\xff\xfe\x80bin")
            .header("x-rep", "1")
            .header("x-other", "o")
            .header("x-rep", "2"),
        peer(Request::get("/api/tapped"))
            .header("x-tap-me", "1")
            .header("x-tap-me", "2"),
        peer(Request::new("POST", "/api/tapped"))
            .header("x-tap-me", "1")
            .body(vec![7u8; 3000]),
        // Denied by l7_policy, after the tap: recorded whole, with the reply.
        peer(Request::new("POST", "/api/tapped-denied"))
            .header("x-tap-me", "1")
            .body("x"),
    ]
}

/// What one request did: the client's status and body, and the headers the
/// app received, in order (without the per-request id).
fn outcome(envoy: &Envoy, up: &Upstream, request: &Request, proto: Proto) -> Value {
    let before = up.received().len();
    let response = request.send(envoy.addr("main"), proto);
    let received = (up.received().len() > before).then(|| {
        let headers: Vec<(String, String)> = up
            .last()
            .headers
            .iter()
            .filter(|(n, _)| n != "x-request-id")
            // Escaped, not lossy: a changed byte must show.
            .map(|(n, v)| (n.to_ascii_lowercase(), v.escape_ascii().to_string()))
            .collect();
        headers
    });
    json!({"status": response.status, "body": response.body_text(), "app_received": received})
}

fn wasm_stats(envoy: &Envoy) -> BTreeMap<String, u64> {
    envoy
        .stats()
        .into_iter()
        .filter(|(k, _)| k.starts_with("wasmcustom."))
        .collect()
}

/// A record without what differs between two Envoys (ids, times).
fn comparable(mut record: Value) -> Value {
    for message in ["request", "response"] {
        if let Some(headers) = record["http_buffered_trace"][message]["headers"].as_array_mut() {
            headers.retain(|h| h["key"] != "x-request-id" && h["key"] != "date");
        }
    }
    record
}

#[test]
fn smoke_suite_equals_the_separate_filters() {
    let (up_a, up_b) = (Upstream::start(), Upstream::start());
    let (a, b) = (separate(&up_a), suite(&up_b));
    let mut taps = 0;
    for proto in [Proto::H1, Proto::H2] {
        for request in requests() {
            let want = outcome(&a, &up_a, &request, proto);
            let got = outcome(&b, &up_b, &request, proto);
            assert_eq!(got, want, "{proto:?} {request:?}");
            taps += usize::from(format!("{request:?}").contains("x-tap-me"));
        }
    }
    // The requests exercised every filter and every decision.
    let stats = wasm_stats(&a);
    for (stat, at_least) in [
        ("peer_metadata.decoded", 1),
        ("peer_metadata.from_cache", 1),
        ("peer_metadata.malformed", 2),
        ("l7_policy.allowed", 6),
        ("l7_policy.denied", 4),
        ("l7_policy.invalid_path", 2),
        ("cf_headers.stamped", 10),
        ("cf_headers.spoofed_removed", 2),
        ("tap_http.tapped", 4),
    ] {
        let value = stats[&format!("wasmcustom.{stat}")];
        assert!(value >= at_least, "{stat} = {value}");
    }
    assert_eq!(wasm_stats(&b), stats);
    let file = |e: &Envoy| e.scratch().join("records.jsonl");
    let records = |e: &Envoy| -> Vec<Value> {
        read_records(&file(e), taps)
            .into_iter()
            .map(comparable)
            .collect()
    };
    let (got, want) = (records(&b), records(&a));
    assert_eq!(got, want);
    let denied: Vec<&Value> = got
        .iter()
        .filter(|r| {
            r["http_buffered_trace"]["request"]["headers"]
                .as_array()
                .is_some_and(|h| {
                    h.contains(&json!({"key": ":path", "value": "/api/tapped-denied"}))
                })
        })
        .collect();
    assert_eq!(denied.len(), 2, "one per protocol");
    for record in denied {
        assert!(record.get("incomplete").is_none(), "{record}");
        let response = &record["http_buffered_trace"]["response"];
        assert_eq!(
            response["headers"][0],
            json!({"key": ":status", "value": "403"})
        );
        assert_eq!(
            response["body"]["as_bytes"],
            json!("QWNjZXNzIGRlbmllZA0K"),
            "Access denied\r\n"
        );
    }
}

#[test]
fn any_subset_runs_and_each_part_keeps_its_own_errors() {
    let up = Upstream::start();
    // One filter alone behaves as its own module.
    let envoy = Envoy::start(&Bootstrap::http(
        up.port(),
        vec![wasm_filter(
            "suite",
            &json!({"cf_headers": {"app_guid": "a", "process_type": "web", "org_guid": "o", "space_guid": "s"}}),
        )],
    ));
    let response = Request::get("/")
        .header("cf-app-id", "spoofed")
        .send(envoy.addr("main"), Proto::H1);
    assert_eq!(response.status, 200);
    assert_eq!(up.last().header("cf-app-id"), [b"a"]);
    drop(envoy);
    // A mistake inside one part names the part and the field.
    for (config, message) in [
        (
            json!({"l7_policy": {"rules": [{"method": "GET", "path": "("}]}}),
            "l7_policy.rules[0].path",
        ),
        (json!({}), "names no filter"),
        (json!({"cf_header": {}}), "unknown field"),
        (json!({"tap_http": []}), "tap_http"),
        (
            json!({"cf_headers": {"app_guid": "0", "org_guid": "o", "space_guid": "s",
                                  "header_names": {"app_guid": "content-length"}}}),
            "field `cf_headers.header_names.app_guid`: \"content-length\" frames or routes",
        ),
    ] {
        let log = Envoy::refuses(
            &Bootstrap::http(up.port(), vec![wasm_filter("suite", &config)]),
            &[message],
        );
        assert!(log.contains("suite: invalid plugin configuration"), "{log}");
    }
}

/// cf_headers inside the suite, behind peer_metadata and l7_policy: the CF
/// headers spelled with underscores, or sent as request trailers, never
/// reach the app, in stamp and strip-only mode.
#[test]
fn cf_headers_underscore_spellings_and_trailers_never_reach_the_app() {
    const CF: [&str; 4] = [
        "cf-app-id",
        "cf-app-process-type",
        "cf-organization-id",
        "cf-space-id",
    ];
    // As CGI-style frameworks (WSGI, Rack, PHP) read names: `_` is `-`.
    let cf = |fields: &harness::Headers| -> Vec<(String, Vec<u8>)> {
        fields
            .iter()
            .filter(|(n, _)| CF.contains(&n.to_ascii_lowercase().replace('_', "-").as_str()))
            .cloned()
            .collect()
    };
    let up = Upstream::start();
    let stamped: Vec<(String, Vec<u8>)> = CF
        .iter()
        .zip(["app-1", "web", "org-1", "space-1"])
        .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
        .collect();
    for (cf_config, want) in [
        (part_config("cf_headers"), stamped),
        (json!({"mode": "strip_only"}), vec![]),
    ] {
        let mut config: serde_json::Map<String, Value> = configs()
            .into_iter()
            .map(|(name, config)| (name.to_string(), config))
            .collect();
        config.insert("cf_headers".into(), cf_config.clone());
        let envoy = Envoy::start(&Bootstrap::http(
            up.port(),
            vec![wasm_filter("suite", &Value::Object(config))],
        ));
        for proto in [Proto::H1, Proto::H2] {
            let response = Request::get("/api/cf")
                .header("CF_App_Id", "evil")
                .header("cf_space_id", "evil")
                .header("Cf-Organization_Id", "evil")
                .header("cf-app-id", "evil")
                .body("payload")
                .trailer("CF-App-Id", "evil")
                .trailer("cf_app_process_type", "evil")
                .trailer("x-checksum", "abc")
                .send(envoy.addr("main"), proto);
            assert_eq!(response.status, 200, "{proto:?} {cf_config}");
            let got = up.last();
            assert_eq!(cf(&got.headers), want, "{proto:?} {cf_config}");
            assert_eq!(
                got.trailers,
                [("x-checksum".to_string(), b"abc".to_vec())],
                "{proto:?} {cf_config}"
            );
        }
        assert_eq!(
            envoy.counter("wasmcustom.cf_headers.spoofed_removed"),
            2 * (4 + 2),
            "{cf_config}"
        );
    }
}

/// The Star Wars rule (org=empire) in the suite over mTLS, peer_metadata
/// passing the caller to l7_policy in filter state: an xwing (same
/// namespace, another service account) claiming org=empire is denied, with
/// the claim's service account none or the tiefighter's, whatever the
/// configuration, and its own unless `trust_claimed_labels` is set (then
/// the labels are that service account's word); with the `principals` table
/// the tiefighter's certificate alone lands.
#[test]
fn star_wars_claimed_labels_need_the_certificate() {
    use base64::Engine;
    use harness::tls::Pki;
    let metadata = |sa: Option<&str>| {
        fn field(tag: u8, bytes: &[u8]) -> Vec<u8> {
            let mut out = vec![tag, bytes.len() as u8];
            out.extend_from_slice(bytes);
            out
        }
        let entry = |key: &str, value: Vec<u8>| {
            let mut e = field(0x0a, key.as_bytes());
            e.extend(field(0x12, &value));
            field(0x0a, &e)
        };
        let string = |s: &str| field(0x1a, s.as_bytes());
        let mut out = entry("NAMESPACE", string("default"));
        if let Some(sa) = sa {
            out.extend(entry("SERVICE_ACCOUNT", string(sa)));
        }
        out.extend(entry(
            "LABELS",
            field(0x2a, &entry("org", string("empire"))),
        ));
        base64::engine::general_purpose::STANDARD.encode(out)
    };
    let tiefighter = "spiffe://cluster.local/ns/default/sa/tiefighter";
    let rules = json!([{"method": "POST", "path": "/v1/request-landing", "from": {"labels": {"org": "empire"}}}]);
    let app = Upstream::start();
    let pki = Pki::new();
    let server = pki.server();
    let (tie, xwing) = (
        pki.client(tiefighter),
        pki.client("spiffe://cluster.local/ns/default/sa/xwing"),
    );
    // (extra configuration, the tiefighter with its own service account
    // claimed, and with none claimed): by default claimed labels never
    // count; trust_claimed_labels counts the attested claim; the table
    // binds the labels to the certificate.
    for (extra, own, silent) in [
        (json!({}), false, false),
        (json!({"trust_claimed_labels": true}), true, false),
        (
            json!({"principals": {tiefighter: {"labels": {"org": "empire"}}}}),
            true,
            true,
        ),
    ] {
        let mut l7 = json!({"rules": rules});
        for (k, v) in extra.as_object().into_iter().flatten() {
            l7[k] = v.clone();
        }
        let tls = pki.downstream_tls(&server, false);
        let envoy = Envoy::start(
            &Bootstrap::new(app.port())
                .listener_with(
                    "main",
                    vec![wasm_filter(
                        "suite",
                        &json!({"peer_metadata": {}, "l7_policy": l7}),
                    )],
                    json!([{"name": "app", "domains": ["*"], "routes": [
                        {"match": {"prefix": "/"}, "route": {"cluster": "upstream"}}]}]),
                    json!({}),
                )
                .chain_field("main", "transport_socket", tls["transport_socket"].clone()),
        );
        let send = |client, sa: Option<&str>| -> bool {
            let request = format!(
                "POST /v1/request-landing HTTP/1.1\r\nhost: deathstar\r\nx-envoy-peer-metadata: {}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                metadata(sa)
            );
            pki.send(envoy.addr("main"), Some(client), request.as_bytes())
                .starts_with(b"HTTP/1.1 200")
        };
        assert_eq!(send(&tie, Some("tiefighter")), own, "{extra}");
        assert_eq!(send(&tie, None), silent, "namespace alone, {extra}");
        for sa in [None, Some("tiefighter")] {
            assert!(!send(&xwing, sa), "xwing claiming {sa:?}, {extra}");
        }
        // Its own service account: with trust_claimed_labels the labels are
        // that account's word, as the README says; otherwise denied.
        assert_eq!(send(&xwing, Some("xwing")), own && !silent, "{extra}");
        assert_eq!(envoy.counter("wasmcustom.peer_metadata.spoofed"), 1);
    }
}

/// The tap part, first in the suite, decides its request-header conditions
/// on the headers the parts after it left (here `cf-app-id`, which
/// cf_headers stamps), and counts a stream it rules out once.
#[test]
fn the_tap_part_matches_headers_the_later_parts_set() {
    let up = Upstream::start();
    for (app, tapped) in [("app-1", 2), ("app-2", 0)] {
        let config = json!({
            "tap_http": {"match": {"request_header": {"name": "cf-app-id", "exact": app}},
                         "max_request_bytes": 4096, "max_response_bytes": 4096},
            "cf_headers": part_config("cf_headers"),
        });
        let envoy = Envoy::start(&Bootstrap::new(up.port()).listener_with(
            "main",
            vec![wasm_filter("suite", &config)],
            json!([{"name": "app", "domains": ["*"], "routes": [
                {"match": {"prefix": "/"}, "route": {"cluster": "upstream"}}]}]),
            record_access_log("records.jsonl"),
        ));
        for proto in [Proto::H1, Proto::H2] {
            let response = Request::new("POST", "/a")
                .header("cf-app-id", app)
                .body("payload")
                .send(envoy.addr("main"), proto);
            assert_eq!(response.status, 200);
        }
        if tapped > 0 {
            let records = read_records(&envoy.scratch().join("records.jsonl"), tapped);
            for record in &records {
                let body = &record["http_buffered_trace"]["request"]["body"]["as_bytes"];
                assert_eq!(body, &json!("cGF5bG9hZA=="), "payload: {record}");
            }
        }
        assert_eq!(
            envoy.counter("wasmcustom.tap_http.tapped"),
            tapped as u64,
            "{app}"
        );
        assert_eq!(
            envoy.counter("wasmcustom.tap_http.not_matched"),
            2 - tapped as u64,
            "{app}"
        );
    }
}
