//! The peer-metadata filter in a real Envoy: the Istio seed sample decoded
//! into x-peer-* headers, spoofing and hostile input, baggage, filter state.

use base64::Engine;
use harness::bootstrap::wasm_fixture;
use harness::client::Proto;
use harness::tap::read_records;
use harness::tls::Pki;
use harness::PEER_METADATA_SEED;
use harness::{wasm_filter, Bootstrap, Envoy, Request, Upstream};
use serde_json::{json, Value};

/// From Istio 1.14.3 (`../shared/seeds/002_aabf6a41fd8df476.txt`).
const SEED_ID: &str = "sidecar~172.21.206.228~netshoot.mark~mark.svc.cluster.local";

fn envoy(app: &Upstream, config: Value, hcm_extra: Value) -> Envoy {
    let routes = json!([{"name": "app", "domains": ["*"], "routes": [
        {"match": {"prefix": "/"}, "route": {"cluster": "upstream"}}]}]);
    Envoy::start(&Bootstrap::new(app.port()).listener_with(
        "main",
        vec![wasm_filter("peer_metadata", &config)],
        routes,
        hcm_extra,
    ))
}

fn text(values: Vec<&[u8]>) -> Vec<String> {
    values
        .into_iter()
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

#[test]
fn smoke_the_seed_sample_reaches_the_app_as_headers() {
    let app = Upstream::start();
    let envoy = envoy(&app, json!({}), json!({}));
    for proto in [Proto::H1, Proto::H2] {
        let response = Request::get("/")
            .header("x-envoy-peer-metadata", PEER_METADATA_SEED)
            .header("x-envoy-peer-metadata-id", SEED_ID)
            .header("x-peer-workload", "spoofed")
            .header("X-Peer-Verified", "true")
            .send(envoy.addr("main"), proto);
        assert_eq!(response.status, 200);
        let got = app.last();
        for (name, want) in [
            ("x-peer-workload", "netshoot"),
            ("x-peer-namespace", "mark"),
            ("x-peer-name", "netshoot"),
            ("x-peer-app", "netshoot"),
            ("x-peer-version", "latest"),
            ("x-peer-cluster", "Kubernetes"),
            ("x-peer-verified", "false"),
        ] {
            assert_eq!(text(got.header(name)), [want], "{name} over {proto:?}");
        }
        assert!(
            got.header("x-peer-principal").is_empty(),
            "no mTLS, no principal"
        );
        assert!(got.header("x-envoy-peer-metadata").is_empty());
        assert!(got.header("x-envoy-peer-metadata-id").is_empty());
    }
    assert_eq!(envoy.counter("wasmcustom.peer_metadata.decoded"), 1);
    assert_eq!(envoy.counter("wasmcustom.peer_metadata.from_cache"), 1);
    assert_eq!(envoy.counter("wasmcustom.peer_metadata.unverified"), 2);
}

#[test]
fn hostile_metadata_never_fails_a_request() {
    let app = Upstream::start();
    let envoy = envoy(&app, json!({}), json!({}));
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let seed = base64::engine::general_purpose::STANDARD
        .decode(PEER_METADATA_SEED)
        .unwrap();
    // 40 nested lists: over the depth cap.
    let mut deep = vec![0x0a, 0x01, b'd'];
    let mut value: Vec<u8> = vec![0x08, 0x00];
    for _ in 0..40 {
        let mut list = vec![0x0a, value.len() as u8];
        list.extend_from_slice(&value);
        let mut v = vec![0x32, list.len() as u8];
        v.extend_from_slice(&list);
        value = v;
        if value.len() > 120 {
            break;
        }
    }
    deep.push(0x12);
    deep.push(value.len() as u8);
    deep.extend_from_slice(&value);
    let mut entry = vec![0x0a, deep.len() as u8];
    entry.extend_from_slice(&deep);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("not base64", b"%%%not-base64%%%".to_vec()),
        ("truncated", b64(&seed[..seed.len() / 2]).into_bytes()),
        ("oversized", "A".repeat(10_000).into_bytes()),
        ("deep", b64(&entry).into_bytes()),
        ("non-UTF-8", vec![b'Q', 0xff, 0xfe, b'=']),
        ("garbage protobuf", b64(&[0xff; 64]).into_bytes()),
    ];
    for (what, bad) in &cases {
        for proto in [Proto::H1, Proto::H2] {
            let response = Request::get("/")
                .header("x-envoy-peer-metadata", bad)
                .send(envoy.addr("main"), proto);
            assert_eq!(response.status, 200, "{what} over {proto:?}");
            let got = app.last();
            assert!(got.header("x-peer-workload").is_empty(), "{what}");
            assert_eq!(text(got.header("x-peer-verified")), ["false"], "{what}");
        }
    }
    let conflicting = Request::get("/")
        .header("x-envoy-peer-metadata", PEER_METADATA_SEED)
        .header("x-envoy-peer-metadata", b64(&seed[..10]))
        .send(envoy.addr("main"), Proto::H1);
    assert_eq!(conflicting.status, 200);
    assert!(app.last().header("x-peer-workload").is_empty());
    // The VM is healthy: the next valid request still decodes.
    let ok = Request::get("/")
        .header("x-envoy-peer-metadata", PEER_METADATA_SEED)
        .send(envoy.addr("main"), Proto::H1);
    assert_eq!(ok.status, 200);
    assert_eq!(text(app.last().header("x-peer-workload")), ["netshoot"]);
    assert_eq!(envoy.counter("wasmcustom.peer_metadata.oversized"), 2);
    assert_eq!(envoy.counter("wasmcustom.peer_metadata.malformed"), 11);
    assert_eq!(envoy.counter("wasmcustom.peer_metadata.decoded"), 1);
}

#[test]
fn baggage_and_id_fallbacks_and_filter_state() {
    let app = Upstream::start();
    let log = json!({"access_log": [{
        "name": "envoy.access_loggers.file",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "path": "@SCRATCH@/peers.log",
            "log_format": {"json_format": {
                "ns": "%FILTER_STATE(wasm.peer_namespace:PLAIN)%",
                "app": "%FILTER_STATE(wasm.peer_app:PLAIN)%",
                "verified": "%FILTER_STATE(wasm.peer_verified:PLAIN)%",
                "labels": "%FILTER_STATE(wasm.peer_labels:PLAIN)%"
            }}
        }
    }]});
    let envoy = envoy(&app, json!({"remove_metadata_headers": false}), log);
    Request::get("/")
        .header("x-envoy-peer-metadata", PEER_METADATA_SEED)
        .send(envoy.addr("main"), Proto::H1);
    assert_eq!(
        app.last().header("x-envoy-peer-metadata").len(),
        1,
        "kept when configured"
    );
    Request::get("/")
        .header("baggage", "k8s.deployment.name=productpage-v1,service.name=productpage,k8s.namespace.name=bookinfo")
        .send(envoy.addr("main"), Proto::H2);
    let got = app.last();
    assert_eq!(text(got.header("x-peer-workload")), ["productpage-v1"]);
    assert_eq!(text(got.header("x-peer-app")), ["productpage"]);
    Request::get("/")
        .header("x-envoy-peer-metadata-id", SEED_ID)
        .send(envoy.addr("main"), Proto::H1);
    let got = app.last();
    assert_eq!(text(got.header("x-peer-name")), ["netshoot"]);
    assert!(got.header("x-peer-app").is_empty());
    let lines = read_records(&envoy.scratch().join("peers.log"), 3);
    assert_eq!(lines[0]["ns"], "mark");
    assert_eq!(lines[0]["verified"], "false");
    let labels: Value = serde_json::from_str(lines[0]["labels"].as_str().unwrap()).unwrap();
    assert_eq!(labels["service.istio.io/canonical-revision"], "latest");
    assert_eq!(lines[1]["app"], "productpage");
}

/// Real certificates: a TLS listener that asks for client certificates, and
/// clients with and without one.
#[test]
fn mtls_verifies_the_spiffe_namespace() {
    let app = Upstream::start();
    let pki = Pki::new();
    let server = pki.server();
    let routes = json!([{"name": "app", "domains": ["*"], "routes": [
        {"match": {"prefix": "/"}, "route": {"cluster": "upstream"}}]}]);
    let start = |config: Value| {
        let tls = pki.downstream_tls(&server, false);
        Envoy::start(
            &Bootstrap::new(app.port())
                .listener_with(
                    "main",
                    vec![wasm_filter("peer_metadata", &config)],
                    routes.clone(),
                    json!({}),
                )
                .chain_field("main", "transport_socket", tls["transport_socket"].clone()),
        )
    };
    let request = format!(
        "GET / HTTP/1.1\r\nhost: app\r\nx-envoy-peer-metadata: {PEER_METADATA_SEED}\r\nx-peer-principal: spoofed\r\nconnection: close\r\n\r\n"
    );
    let same_ns = pki.client("spiffe://cluster.local/ns/mark/sa/netshoot");
    let other_ns = pki.client("spiffe://cluster.local/ns/attacker/sa/default");

    let envoy = start(json!({}));
    // A certificate of another namespace contradicts the claim: only the
    // principal passes. Without a certificate nothing contradicts it.
    let cases = [
        (
            Some(&same_ns),
            "true",
            Some("spiffe://cluster.local/ns/mark/sa/netshoot"),
            vec!["netshoot"],
        ),
        (
            Some(&other_ns),
            "false",
            Some("spiffe://cluster.local/ns/attacker/sa/default"),
            vec![],
        ),
        (None, "false", None, vec!["netshoot"]),
    ];
    for (client, verified, principal, workload) in cases {
        let response = pki.send(envoy.addr("main"), client, request.as_bytes());
        assert!(
            response.starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&response)
        );
        let got = app.last();
        assert_eq!(
            text(got.header("x-peer-verified")),
            [verified],
            "{principal:?}"
        );
        assert_eq!(
            text(got.header("x-peer-principal")),
            principal
                .map(str::to_string)
                .into_iter()
                .collect::<Vec<_>>()
        );
        assert_eq!(text(got.header("x-peer-workload")), workload);
    }
    assert_eq!(envoy.counter("wasmcustom.peer_metadata.verified"), 1);
    assert_eq!(envoy.counter("wasmcustom.peer_metadata.unverified"), 2);
    assert_eq!(envoy.counter("wasmcustom.peer_metadata.spoofed"), 1);
    drop(envoy);

    let strict = start(json!({"require_verified": true}));
    for (client, workload) in [
        (Some(&same_ns), vec!["netshoot"]),
        (Some(&other_ns), vec![]),
        (None, vec![]),
    ] {
        let response = pki.send(strict.addr("main"), client, request.as_bytes());
        assert!(response.starts_with(b"HTTP/1.1 200"));
        assert_eq!(text(app.last().header("x-peer-workload")), workload);
    }
}

/// A FlatNode as Istio 1.7 to 1.23 store it in `wasm.downstream_peer`, built
/// with the `flatbuffers` crate.
fn flatnode(namespace: &str, workload: &str, app: &str) -> Vec<u8> {
    let mut b = flatbuffers::FlatBufferBuilder::new();
    let (k, v) = (b.create_string("app"), b.create_string(app));
    let t = b.start_table();
    b.push_slot_always(4, k);
    b.push_slot_always(6, v);
    let kv = b.end_table(t);
    let labels = b.create_vector(&[kv]);
    let (ns, wl) = (b.create_string(namespace), b.create_string(workload));
    let t = b.start_table();
    b.push_slot_always(6, ns); // slot 1: namespace
    b.push_slot_always(8, labels); // slot 2: labels
    b.push_slot_always(12, wl); // slot 4: workload_name
    let root = b.end_table(t);
    b.finish(root, None);
    b.finished_data().to_vec()
}

/// When Istio's metadata exchange consumed the headers, the peer it stored in
/// filter state is used (here stored by a test fixture the same way).
#[test]
fn istio_filter_state_when_the_headers_are_gone() {
    let app = Upstream::start();
    let node = base64::engine::general_purpose::STANDARD.encode(flatnode(
        "bookinfo",
        "reviews-v2",
        "reviews",
    ));
    let start = |config: Value| {
        Envoy::start(&Bootstrap::http(
            app.port(),
            vec![
                wasm_fixture(
                    "set_filter_state",
                    &json!({"key": "downstream_peer", "base64": node}),
                ),
                wasm_filter("peer_metadata", &config),
            ],
        ))
    };
    let envoy = start(json!({}));
    Request::get("/").send(envoy.addr("main"), Proto::H1);
    let got = app.last();
    assert_eq!(text(got.header("x-peer-namespace")), ["bookinfo"]);
    assert_eq!(text(got.header("x-peer-workload")), ["reviews-v2"]);
    assert_eq!(text(got.header("x-peer-app")), ["reviews"]);
    assert_eq!(
        envoy.counter("wasmcustom.peer_metadata.istio_filter_state"),
        1
    );
    // A metadata header, when present, still wins.
    Request::get("/")
        .header("x-envoy-peer-metadata", PEER_METADATA_SEED)
        .send(envoy.addr("main"), Proto::H2);
    assert_eq!(text(app.last().header("x-peer-namespace")), ["mark"]);
    drop(envoy);
    let off = start(json!({"istio_filter_state": false}));
    Request::get("/").send(off.addr("main"), Proto::H1);
    assert!(app.last().header("x-peer-namespace").is_empty());
}

/// The seed sample with an `IDENTITY` key added (Istio's metadata carries one
/// from 1.29): a `Struct` is a run of map entries, so one more entry appended
/// to the encoding is one more key.
fn seed_with_identity(identity: &str) -> String {
    let engine = base64::engine::general_purpose::STANDARD;
    let mut bytes = engine.decode(PEER_METADATA_SEED).unwrap();
    let mut value = vec![0x1a, identity.len() as u8]; // Value.string_value
    value.extend_from_slice(identity.as_bytes());
    let mut entry = vec![0x0a, 8]; // key
    entry.extend_from_slice(b"IDENTITY");
    entry.extend_from_slice(&[0x12, value.len() as u8]); // value
    entry.extend_from_slice(&value);
    bytes.extend_from_slice(&[0x0a, entry.len() as u8]); // Struct.fields
    bytes.extend_from_slice(&entry);
    engine.encode(bytes)
}

/// peer_metadata with its defaults behind a listener that asks for a client
/// certificate from `pki` (optional, so plaintext callers still arrive).
fn mtls_envoy(app: &Upstream, pki: &Pki) -> Envoy {
    let routes = json!([{"name": "app", "domains": ["*"], "routes": [
        {"match": {"prefix": "/"}, "route": {"cluster": "upstream"}}]}]);
    let tls = pki.downstream_tls(&pki.server(), false);
    Envoy::start(
        &Bootstrap::new(app.port())
            .listener_with(
                "main",
                vec![wasm_filter("peer_metadata", &json!({}))],
                routes,
                json!({}),
            )
            .chain_field("main", "transport_socket", tls["transport_socket"].clone()),
    )
}

/// An identity in the metadata reaches the app as `x-peer-identity`, counts
/// as verified only when it is the certificate's URI SAN, and never replaces
/// the principal.
#[test]
fn mtls_checks_the_identity_against_the_certificate() {
    let app = Upstream::start();
    let pki = Pki::new();
    let envoy = mtls_envoy(&app, &pki);
    let cert = "spiffe://cluster.local/ns/mark/sa/netshoot";
    let admin = "spiffe://cluster.local/ns/mark/sa/admin";
    let client = pki.client(cert);
    // Another service account's identity is contradicted by the
    // certificate: none of the claim passes.
    for (identity, client, verified, principal, claimed) in [
        (cert, Some(&client), "true", vec![cert], true),
        (admin, Some(&client), "false", vec![cert], false),
        (cert, None, "false", vec![], true),
    ] {
        let request = format!(
            "GET / HTTP/1.1\r\nhost: app\r\nx-envoy-peer-metadata: {}\r\nx-peer-identity: spoofed\r\nconnection: close\r\n\r\n",
            seed_with_identity(identity)
        );
        let response = pki.send(envoy.addr("main"), client, request.as_bytes());
        assert!(response.starts_with(b"HTTP/1.1 200"));
        let got = app.last();
        let case = format!("{identity} with {principal:?}");
        let claim = |v: &str| if claimed { vec![v.to_string()] } else { vec![] };
        assert_eq!(
            text(got.header("x-peer-identity")),
            claim(identity),
            "{case}"
        );
        assert_eq!(text(got.header("x-peer-verified")), [verified], "{case}");
        assert_eq!(text(got.header("x-peer-principal")), principal, "{case}");
        assert_eq!(
            text(got.header("x-peer-namespace")),
            claim("mark"),
            "{case}"
        );
    }
    assert_eq!(envoy.counter("wasmcustom.peer_metadata.spoofed"), 1);
}

/// The seed sample's claims (namespace `mark`) with a `NAMESPACE` or
/// `SERVICE_ACCOUNT` the certificate contradicts: the app gets the principal
/// and `x-peer-verified: false`, nothing claimed, and the filter counts it
/// and warns. Client-sent copies of the outputs, in any `_`/`-` spelling,
/// never reach the app.
#[test]
fn a_claim_the_certificate_contradicts_passes_only_the_principal() {
    let app = Upstream::start();
    let pki = Pki::new();
    let envoy = mtls_envoy(&app, &pki);
    let cert = "spiffe://cluster.local/ns/default/sa/tiefighter";
    let client = pki.client(cert);
    let engine = base64::engine::general_purpose::STANDARD;
    // One more map entry appended to the seed: a later key replaces the
    // seed's own (protobuf map semantics).
    let with = |key: &str, value: &str| {
        let mut bytes = engine.decode(PEER_METADATA_SEED).unwrap();
        let mut v = vec![0x1a, value.len() as u8];
        v.extend_from_slice(value.as_bytes());
        let mut entry = vec![0x0a, key.len() as u8];
        entry.extend_from_slice(key.as_bytes());
        entry.extend_from_slice(&[0x12, v.len() as u8]);
        entry.extend_from_slice(&v);
        bytes.extend_from_slice(&[0x0a, entry.len() as u8]);
        bytes.extend_from_slice(&entry);
        engine.encode(bytes)
    };
    let kube_system = with("NAMESPACE", "kube-system");
    let other_sa = {
        let mut bytes = engine.decode(with("NAMESPACE", "default")).unwrap();
        bytes.extend(engine.decode(with("SERVICE_ACCOUNT", "xwing")).unwrap());
        engine.encode(bytes)
    };
    for metadata in [&kube_system, &other_sa] {
        let request = format!(
            "GET / HTTP/1.1\r\nhost: app\r\nx-envoy-peer-metadata: {metadata}\r\nx_peer_namespace: kube-system\r\nx-peer_workload: coredns\r\nx_peer_verified: true\r\nconnection: close\r\n\r\n"
        );
        let response = pki.send(envoy.addr("main"), Some(&client), request.as_bytes());
        assert!(response.starts_with(b"HTTP/1.1 200"));
        let got = app.last();
        let peer: Vec<(String, String)> = got
            .headers
            .iter()
            .filter(|(n, _)| n.replace('_', "-").starts_with("x-peer-"))
            .map(|(n, v)| (n.clone(), String::from_utf8_lossy(v).into_owned()))
            .collect();
        assert_eq!(
            peer,
            [
                ("x-peer-principal".to_string(), cert.to_string()),
                ("x-peer-verified".to_string(), "false".to_string())
            ]
        );
    }
    assert_eq!(envoy.counter("wasmcustom.peer_metadata.spoofed"), 2);
    assert_eq!(envoy.counter("wasmcustom.peer_metadata.unverified"), 2);
    let log = envoy.log();
    assert!(
        log.contains("peer metadata contradicts the certificate spiffe://cluster.local/ns/default/sa/tiefighter"),
        "no warning in the log"
    );
}

/// A client's own `x-peer-*` headers never reach the app: exact copies,
/// spellings with `_` (which CGI-style frameworks give the app under the same
/// name) and request trailers (which some frameworks merge into the headers),
/// over HTTP/1.1 and HTTP/2. Each line removed is counted.
#[test]
fn client_copies_of_the_outputs_never_reach_the_app() {
    let app = Upstream::start();
    let envoy = envoy(&app, json!({}), json!({}));
    let is_output = |name: &str| {
        let folded = name.to_ascii_lowercase().replace('_', "-");
        ["x-peer-namespace", "x-peer-workload", "x-peer-verified"].contains(&folded.as_str())
    };
    for proto in [Proto::H1, Proto::H2] {
        let response = Request::new("POST", "/")
            .header("x_peer_namespace", "kube-system")
            .header("X_Peer-Workload", "coredns")
            .header("x-peer-verified", "true")
            .header("x_envoy_peer_metadata", "not-base64")
            .body("payload")
            .trailer("x-peer-namespace", "kube-system")
            .trailer("x_peer_verified", "true")
            .trailer("x-checksum", "abc")
            .send(envoy.addr("main"), proto);
        assert_eq!(response.status, 200);
        let got = app.last();
        // Only the filter's own verdict: no peer, so not verified.
        assert_eq!(text(got.header("x-peer-verified")), ["false"], "{proto:?}");
        let leaked: Vec<&String> = got
            .headers
            .iter()
            .chain(&got.trailers)
            .map(|(name, _)| name)
            .filter(|name| is_output(name) && *name != "x-peer-verified")
            .collect();
        assert!(leaked.is_empty(), "{proto:?}: {leaked:?}");
        assert!(
            !got.trailers.iter().any(|(name, _)| is_output(name)),
            "{proto:?}"
        );
        // The metadata header goes in any spelling too (not a spoof: not counted).
        assert!(got.header("x_envoy_peer_metadata").is_empty(), "{proto:?}");
        assert_eq!(
            got.trailers,
            [("x-checksum".to_string(), b"abc".to_vec())],
            "{proto:?}"
        );
        assert_eq!(got.body, b"payload");
    }
    assert_eq!(
        envoy.counter("wasmcustom.peer_metadata.spoofed_removed"),
        2 * (3 + 2)
    );
}

/// An output header name that would frame the message is refused at load:
/// with `headers.workload: content-length`, a caller's `WORKLOAD_NAME=0`
/// would have cut a POST's body into a second request.
#[test]
fn output_names_that_frame_the_message_are_refused_at_load() {
    let app = Upstream::start();
    for (field, name) in [
        ("workload", "content-length"),
        ("namespace", "Transfer_Encoding"),
        ("verified", ":authority"),
        ("principal", "x-envoy-original-path"),
    ] {
        Envoy::refuses(
            &Bootstrap::http(
                app.port(),
                vec![wasm_filter(
                    "peer_metadata",
                    &json!({"headers": {field: name}}),
                )],
            ),
            &[&format!(
                "peer_metadata: invalid plugin configuration: field `headers.{field}`"
            )],
        );
    }
}
