//! The L7 policy filter in a real Envoy: the Star Wars demo (also from the
//! demo's CiliumNetworkPolicy, with caller identity from peer_metadata over
//! mTLS), Cilium semantics, a bypass corpus over HTTP/1.1 and HTTP/2, dry-run,
//! filter state, and a differential test against Envoy's RBAC filter.

use base64::Engine;
use harness::client::Proto;
use harness::tap::read_records;
use harness::tls::Pki;
use harness::{wasm_filter, Bootstrap, Envoy, Lcg, Request, Upstream};
use serde_json::{json, Value};

const DEATHSTAR: &str = "deathstar.default.svc.cluster.local";

fn routes() -> Value {
    json!([{"name": "app", "domains": ["*"], "routes": [
        {"match": {"prefix": "/"}, "route": {"cluster": "upstream"}}]}])
}

fn policy_envoy(app: &Upstream, config: Value, hcm_extra: Value) -> Envoy {
    Envoy::start(&Bootstrap::new(app.port()).listener_with(
        "main",
        vec![wasm_filter("l7_policy", &config)],
        routes(),
        hcm_extra,
    ))
}

fn star_wars_rules() -> Value {
    json!({"rules": [{"method": "POST", "path": "/v1/request-landing"}]})
}

#[test]
fn smoke_star_wars() {
    let app = Upstream::start();
    let envoy = policy_envoy(&app, star_wars_rules(), json!({}));
    for proto in [Proto::H1, Proto::H2] {
        let landed = Request::new("POST", "/v1/request-landing")
            .authority(DEATHSTAR)
            .send(envoy.addr("main"), proto);
        assert_eq!(landed.status, 200, "{proto:?}");
        assert_eq!(app.last().path, "/v1/request-landing");
        let before = app.received().len();
        let exploded = Request::new("PUT", "/v1/exhaust-port")
            .authority(DEATHSTAR)
            .send(envoy.addr("main"), proto);
        assert_eq!(exploded.status, 403, "{proto:?}");
        assert_eq!(exploded.body, b"Access denied\r\n");
        assert_eq!(exploded.header("content-type"), [&b"text/plain"[..]]);
        assert_eq!(app.received().len(), before, "the Death Star never saw it");
    }
    assert_eq!(envoy.counter("wasmcustom.l7_policy.allowed"), 2);
    assert_eq!(envoy.counter("wasmcustom.l7_policy.denied"), 2);
    assert_eq!(envoy.counter("wasmcustom.l7_policy.rule.0.hits"), 2);
    let log = envoy.log();
    assert!(
        log.contains(&format!(
            "http-request DROPPED (HTTP/1.1 PUT http://{DEATHSTAR}/v1/exhaust-port) rule=none"
        )),
        "no Hubble-style line in the log"
    );
}

/// An `x-envoy-peer-metadata` value (a Struct) for a caller in `namespace`
/// with `labels` and, when given, a `SERVICE_ACCOUNT`, encoded here by hand.
fn peer_metadata(
    namespace: &str,
    workload: &str,
    service_account: Option<&str>,
    labels: &[(&str, &str)],
) -> String {
    fn field(tag: u8, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let mut n = bytes.len();
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(b);
                break;
            }
            out.push(b | 0x80);
        }
        out.extend_from_slice(bytes);
        out
    }
    let entry = |key: &str, value: Vec<u8>| {
        let mut e = field(0x0a, key.as_bytes());
        e.extend(field(0x12, &value));
        field(0x0a, &e)
    };
    let string = |s: &str| field(0x1a, s.as_bytes());
    let mut label_struct = Vec::new();
    for (k, v) in labels {
        label_struct.extend(entry(k, string(v)));
    }
    let mut out = entry("NAMESPACE", string(namespace));
    out.extend(entry("WORKLOAD_NAME", string(workload)));
    if let Some(sa) = service_account {
        out.extend(entry("SERVICE_ACCOUNT", string(sa)));
    }
    out.extend(entry("LABELS", field(0x2a, &label_struct)));
    base64::engine::general_purpose::STANDARD.encode(out)
}

/// The Star Wars callers over mTLS, with certificates from the harness's CA:
/// `send(certificate, metadata, method, path)` is the status.
pub struct StarWars {
    pub pki: Pki,
    pub tiefighter: harness::tls::Issued,
    pub xwing: harness::tls::Issued,
}

const TIEFIGHTER: &str = "spiffe://cluster.local/ns/default/sa/tiefighter";

impl StarWars {
    fn new() -> StarWars {
        let pki = Pki::new();
        StarWars {
            tiefighter: pki.client(TIEFIGHTER),
            xwing: pki.client("spiffe://cluster.local/ns/default/sa/xwing"),
            pki,
        }
    }

    fn send(
        &self,
        envoy: &Envoy,
        client: Option<&harness::tls::Issued>,
        metadata: Option<&str>,
        method: &str,
        path: &str,
    ) -> u16 {
        let metadata = metadata
            .map(|m| format!("x-envoy-peer-metadata: {m}\r\n"))
            .unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nhost: {DEATHSTAR}\r\n{metadata}content-length: 0\r\nconnection: close\r\n\r\n"
        );
        let response = self
            .pki
            .send(envoy.addr("main"), client, request.as_bytes());
        String::from_utf8_lossy(&response)
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }
}

fn imported_star_wars_policy() -> Value {
    let yaml = std::fs::read_to_string(
        harness::paths::workspace_root().join("examples/l7_policy/sw-l7-policy.yaml"),
    )
    .expect("policy YAML");
    let policy: Value = serde_yaml::from_str(&yaml).expect("YAML");
    l7_policy::cilium::import(&policy).expect("importable").0
}

/// The demo's own CiliumNetworkPolicy, imported, with `fromEndpoints`
/// (org=empire) enforced over mTLS with peer_metadata in front: an xwing
/// (same namespace, another service account) claiming org=empire is denied
/// by default and with the `principals` table. Claimed labels count only with
/// `trust_claimed_labels` and a certificate that proves the claim's
/// namespace and service account; with the `principals` table the labels
/// come from the certificate alone.
#[test]
fn star_wars_from_the_demos_cilium_network_policy() {
    let config = imported_star_wars_policy();
    let app = Upstream::start();
    let sw = StarWars::new();
    let server = sw.pki.server();
    let start = |config: &Value| {
        let tls = sw.pki.downstream_tls(&server, false);
        Envoy::start(
            &Bootstrap::new(app.port())
                .listener_with(
                    "main",
                    vec![
                        wasm_filter("peer_metadata", &json!({})),
                        wasm_filter("l7_policy", config),
                    ],
                    routes(),
                    json!({}),
                )
                .chain_field("main", "transport_socket", tls["transport_socket"].clone()),
        )
    };
    let empire_labels = [("org", "empire"), ("class", "tiefighter")];
    let empire = peer_metadata("default", "tiefighter", Some("tiefighter"), &empire_labels);
    let empire_no_sa = peer_metadata("default", "tiefighter", None, &empire_labels);
    let empire_as_xwing = peer_metadata("default", "tiefighter", Some("xwing"), &empire_labels);
    let alliance = peer_metadata(
        "default",
        "xwing",
        Some("xwing"),
        &[("org", "alliance"), ("class", "xwing")],
    );
    let land = "/v1/request-landing";

    let (tie, xw) = (Some(&sw.tiefighter), Some(&sw.xwing));
    // By default claimed labels never count: the policy as imported lets
    // no one land.
    let envoy = start(&config);
    assert_eq!(sw.send(&envoy, tie, Some(&empire), "POST", land), 403);
    assert_eq!(sw.send(&envoy, xw, Some(&empire_no_sa), "POST", land), 403);
    assert_eq!(
        sw.send(&envoy, xw, Some(&empire_as_xwing), "POST", land),
        403
    );
    drop(envoy);

    // trust_claimed_labels: claims whose namespace and service account the
    // certificate proves.
    let mut trusting = config.clone();
    trusting["trust_claimed_labels"] = json!(true);
    let envoy = start(&trusting);
    let send = |client, metadata: &str, method: &str, path: &str| {
        sw.send(&envoy, client, Some(metadata), method, path)
    };
    assert_eq!(send(tie, &empire, "POST", land), 200);
    assert_eq!(send(tie, &empire, "PUT", "/v1/exhaust-port"), 403);
    assert_eq!(send(xw, &alliance, "POST", land), 403);
    // An xwing claiming org=empire: with no service account (namespace
    // alone proves nothing about labels), with the tiefighter's (the
    // certificate contradicts it).
    assert_eq!(send(xw, &empire_no_sa, "POST", land), 403);
    assert_eq!(send(xw, &empire, "POST", land), 403);
    assert_eq!(send(tie, &empire_no_sa, "POST", land), 403);
    // Claiming org=empire without a certificate.
    assert_eq!(send(None, &empire, "POST", land), 403);
    // With its own service account the claim is attested as that account's
    // word: what trust_claimed_labels accepts (see the README).
    assert_eq!(send(xw, &empire_as_xwing, "POST", land), 200);
    assert_eq!(envoy.counter("wasmcustom.peer_metadata.spoofed"), 1);
    drop(envoy);

    // The principals table binds org=empire to the tiefighter's certificate.
    let mut bound = config.clone();
    bound["principals"] = json!({TIEFIGHTER: {"labels": {"org": "empire"}}});
    let envoy = start(&bound);
    let send = |client, metadata: Option<&str>| sw.send(&envoy, client, metadata, "POST", land);
    assert_eq!(send(tie, None), 200, "no metadata needed");
    assert_eq!(
        send(tie, Some(&alliance)),
        200,
        "the table wins over claims"
    );
    assert_eq!(
        send(xw, Some(&empire_as_xwing)),
        403,
        "claims its own account"
    );
    assert_eq!(send(xw, Some(&empire_no_sa)), 403);
    assert_eq!(send(None, Some(&empire)), 403);
}

/// The bypass corpus: each request and the status it must get, over HTTP/1.1
/// and HTTP/2. 400 is this filter refusing an ambiguous path; "Envoy" marks
/// requests Envoy's codec itself refuses before any filter runs.
#[test]
fn bypass_corpus() {
    let app = Upstream::start();
    let config = json!({"rules": [
        {"method": "POST", "path": "/v1/request-landing"},
        {"method": "GET", "path": "/public/[a-z]+"},
        {"host": "deathstar\\.default\\.svc\\.cluster\\.local", "path": "/hosted"},
        {"path": "/token", "headers": ["X-Token: abc"]}
    ]});
    let envoy = policy_envoy(&app, config, json!({}));
    struct Case {
        method: &'static str,
        path: &'static str,
        authority: &'static str,
        headers: Vec<(&'static str, &'static [u8])>,
        want: u16,
        h2: bool,
        /// When Envoy's HTTP/1.1 codec answers before any filter runs.
        h1_envoy: Option<u16>,
    }
    let case = |method, path, want| Case {
        method,
        path,
        authority: DEATHSTAR,
        headers: vec![],
        want,
        h2: true,
        h1_envoy: None,
    };
    let mut cases = vec![
        case("POST", "/v1/request-landing", 200),
        case("POST", "/v1/request-landing/", 403),
        case("POST", "/v1/request-landing%2F", 400),
        case("POST", "/v1%2frequest-landing", 400),
        case("POST", "/v1%5Crequest-landing", 400),
        case("POST", "/v1/request-landing%00", 400),
        case("POST", "/v1/%2e%2e/v1/request-landing", 400),
        case("POST", "/v1/./request-landing", 400),
        case("POST", "/v1/../v1/request-landing", 400),
        case("POST", "/x/../v1/request-landing", 400),
        case("POST", "/v1//request-landing", 400),
        case("POST", "//v1/request-landing", 400),
        case("POST", "/v1/request-landing;jsessionid=1", 403),
        case("POST", "/v1/request-landing?x=1", 403),
        case("POST", "/V1/REQUEST-LANDING", 403),
        // Envoy's HTTP/1.1 codec refuses a lowercase method; over HTTP/2 it
        // reaches the filter, which matches methods exactly.
        Case {
            h1_envoy: Some(400),
            ..case("post", "/v1/request-landing", 403)
        },
        case("PUT", "/v1/exhaust-port", 403),
        case("GET", "/public/abc", 200),
        case("GET", "/public/abc/../../v1/exhaust-port", 400),
        case("GET", "/public/ABC", 403),
        case("GET", "/public/", 403),
        case("GET", "/hosted", 200),
        Case {
            authority: "DeathStar.Default.svc.cluster.local",
            ..case("GET", "/hosted", 200)
        },
        Case {
            authority: "deathstar.default.svc.cluster.local:8080",
            ..case("GET", "/hosted", 200)
        },
        Case {
            authority: "deathstar.default.svc.cluster.local.",
            ..case("GET", "/hosted", 200)
        },
        Case {
            authority: "deathstar.default.svc.cluster.local.evil.com",
            ..case("GET", "/hosted", 403)
        },
        Case {
            authority: "evil.com",
            ..case("GET", "/hosted", 403)
        },
        Case {
            headers: vec![("x-token", b"abc")],
            ..case("GET", "/token", 200)
        },
        Case {
            headers: vec![("x-token", b"abc"), ("x-token", b"evil")],
            ..case("GET", "/token", 403)
        },
        Case {
            headers: vec![("x-token", b"evil"), ("x-token", b"abc")],
            ..case("GET", "/token", 403)
        },
        Case {
            headers: vec![("x-token", b"abcd")],
            ..case("GET", "/token", 403)
        },
        Case {
            headers: vec![("X-TOKEN", b"abc")],
            ..case("GET", "/token", 200)
        },
        Case {
            headers: vec![("x-token", b"ABC")],
            ..case("GET", "/token", 403)
        },
        // HTTP/1.1 only: the h2 client library refuses these request lines.
        Case {
            h2: false,
            ..case("POST", "/v1\\request-landing", 400)
        },
        // Envoy's HTTP/1.1 codec refuses a fragment (400) before any filter.
        Case {
            h2: false,
            ..case("POST", "/v1/request-landing#x", 400)
        },
        // Envoy trims optional whitespace around HTTP/1.1 header values
        // itself, so " abc " arrives as "abc"; this filter never trims.
        Case {
            h2: false,
            headers: vec![("x-token", b" abc ")],
            ..case("GET", "/token", 200)
        },
        // NUL in a header value: Envoy's codec refuses the request.
        Case {
            h2: false,
            headers: vec![("x-token", b"abc\x00")],
            ..case("GET", "/token", 400)
        },
    ];
    let mut sent = 0;
    for c in cases.drain(..) {
        let protos: &[Proto] = if c.h2 {
            &[Proto::H1, Proto::H2]
        } else {
            &[Proto::H1]
        };
        for proto in protos {
            let mut request = Request::new(c.method, c.path).authority(c.authority);
            for (name, value) in &c.headers {
                request = request.header(name, value);
            }
            let status = match proto {
                Proto::H1 => request
                    .send_h1(envoy.addr("main"))
                    .map(|r| r.status)
                    .unwrap_or(0),
                Proto::H2 => request
                    .send_h2(envoy.addr("main"))
                    .map(|r| r.status)
                    .unwrap_or(0),
            };
            let want = match proto {
                Proto::H1 => c.h1_envoy.unwrap_or(c.want),
                Proto::H2 => c.want,
            };
            assert_eq!(
                status, want,
                "{proto:?} {} {} host={} headers={:?}",
                c.method, c.path, c.authority, c.headers
            );
            sent += 1;
        }
    }
    println!("bypass corpus: {sent} requests, every verdict as expected");
    assert!(envoy.counter("wasmcustom.l7_policy.invalid_path") >= 20);
}

/// Paths that `/public/.*` matches but that reach another resource on
/// common backends (`;` parameters hiding a dot-segment, dots before an
/// encoded `?` or `#`, double encoding, overlong UTF-8, `%u`, controls after
/// dots): every one answered 400 by this filter, before any rule, over
/// HTTP/1.1 and HTTP/2. The body names
/// the filter's reason, so each is shown to have reached the filter with its
/// bytes intact; the allowed forms reach the app byte for byte.
#[test]
fn hostile_paths_refused_before_rules() {
    use l7_policy::path::Invalid;
    let app = Upstream::start();
    let rules = json!({"rules": [{"method": "GET", "path": "/public/.*"}]});
    let envoy = policy_envoy(&app, rules, json!({}));
    let refused: &[(&str, Invalid)] = &[
        ("/public/..;/admin", Invalid::DotSegmentParameters),
        ("/public/.;/admin", Invalid::DotSegmentParameters),
        ("/public/..;x=1/admin", Invalid::DotSegmentParameters),
        ("/public/a/..;/..;/admin", Invalid::DotSegmentParameters),
        ("/public/..;", Invalid::DotSegmentParameters),
        ("/public/..%3B/admin", Invalid::DotSegmentParameters),
        ("/public/..%3bx/admin", Invalid::DotSegmentParameters),
        // Envoy forwards these byte for byte, and an app
        // that decodes the path and parses it as a URL again resolves them
        // to `/` (tests/path_differential.rs).
        ("/public/..%3f/admin", Invalid::DotSegmentEncodedDelimiter),
        ("/public/..%23/admin", Invalid::DotSegmentEncodedDelimiter),
        ("/public/..%3F", Invalid::DotSegmentEncodedDelimiter),
        (
            "/public/..%23%20/admin",
            Invalid::DotSegmentEncodedDelimiter,
        ),
        (
            "/public/..%23%3b/admin",
            Invalid::DotSegmentEncodedDelimiter,
        ),
        ("/public/.%3f/admin", Invalid::DotSegmentEncodedDelimiter),
        ("/public/..%3F%3F", Invalid::DotSegmentEncodedDelimiter),
        (
            "/public/a/..%3fx/admin",
            Invalid::DotSegmentEncodedDelimiter,
        ),
        ("/public/..%3F?x=1", Invalid::DotSegmentEncodedDelimiter),
        ("/public/..%20%3F/admin", Invalid::DotSegment),
        ("/public/;/admin", Invalid::EmptySegment),
        ("/public/%252e%252e/admin", Invalid::DoubleEncoding),
        ("/public/%25%32%65%25%32%65/admin", Invalid::DoubleEncoding),
        ("/public/%%32%65%%32%65/admin", Invalid::MalformedEscape),
        ("/public/%c0%ae%c0%ae/admin", Invalid::InvalidUtf8),
        ("/public/%e0%80%ae%e0%80%ae/admin", Invalid::InvalidUtf8),
        ("/public/%f0%80%80%ae/admin", Invalid::InvalidUtf8),
        ("/public/%c0%af/admin", Invalid::InvalidUtf8),
        ("/public/%ed%a0%80", Invalid::InvalidUtf8),
        ("/public/%u002e%u002e/admin", Invalid::PercentU),
        ("/public/%U002E%U002E/admin", Invalid::PercentU),
        ("/public/..%09/admin", Invalid::EncodedControl),
        ("/public/..%0d%0a/admin", Invalid::EncodedControl),
        ("/public/%C2%85", Invalid::EncodedControl),
        ("/public/..%00/admin", Invalid::EncodedSeparator),
        ("/public/..%20/admin", Invalid::DotSegment),
        ("/public/..%C2%A0/admin", Invalid::DotSegment),
        ("/public/%E3%80%80../admin", Invalid::DotSegment),
        ("/public/.%2e/admin", Invalid::EncodedSeparator),
    ];
    let allowed = [
        "/public/index.html;jsessionid=1",
        "/public/a;b=c/d",
        "/public/%E2%82%AC",
        "/public/caf%C3%A9",
        "/public/;jsessionid=1",
        "/public/...;x",
        "/public/a%20b",
        "/public/x?next=/..;/%252e%c0%ae%u002e%09",
        "/public/%3F../admin",
        "/public/a%23b",
    ];
    for proto in [Proto::H1, Proto::H2] {
        for (path, why) in refused {
            let response = Request::get(path).send(envoy.addr("main"), proto);
            assert_eq!(
                (response.status, response.body_text()),
                (400, format!("Bad request: {}\r\n", why.as_str())),
                "{proto:?} {path}"
            );
        }
        for path in allowed {
            let response = Request::get(path).send(envoy.addr("main"), proto);
            assert_eq!(response.status, 200, "{proto:?} {path}");
            assert_eq!(app.last().path, path, "{proto:?}: the app got other bytes");
        }
    }
    assert_eq!(
        app.received().len(),
        2 * allowed.len(),
        "no refused path reached the app"
    );
    assert_eq!(
        envoy.counter("wasmcustom.l7_policy.invalid_path"),
        2 * refused.len() as u64
    );
    assert_eq!(
        envoy.counter("wasmcustom.l7_policy.allowed"),
        2 * allowed.len() as u64
    );
    // A raw tab (not encoded) never reaches the filter: Envoy's HTTP/1.1
    // codec answers 400 itself, and the filter's counter does not move.
    let raw = Request::get("/public/..\t/admin").send(envoy.addr("main"), Proto::H1);
    assert_eq!(raw.status, 400);
    assert!(
        !raw.body_text().starts_with("Bad request: "),
        "{}",
        raw.body_text()
    );
    assert_eq!(
        envoy.counter("wasmcustom.l7_policy.invalid_path"),
        2 * refused.len() as u64
    );
}

/// `allow_in_paths` lets exactly its class through in Envoy.
#[test]
fn allow_in_paths_relaxes_one_class() {
    let app = Upstream::start();
    for (class, passes, refused) in [
        (
            "path_parameters_dot_segments",
            &["/public/..;/admin", "/public/..%3Bx/admin"][..],
            &[
                "/public/%252e%252e/admin",
                "/public/../admin",
                "/public/;/admin",
                "/public/..%3F/admin",
            ][..],
        ),
        (
            "encoded_delimiter_dot_segments",
            &[
                "/public/..%3f/admin",
                "/public/..%23/admin",
                "/public/..%3F",
                "/public/..%23%20/admin",
                "/public/..%23%3b/admin",
            ][..],
            &[
                "/public/..;/admin",
                "/public/..%3B/admin",
                "/public/..%20%3F/admin",
                "/public/../admin",
            ][..],
        ),
    ] {
        let config = json!({
            "rules": [{"method": "GET", "path": "/public/.*"}],
            "allow_in_paths": {class: true}
        });
        let envoy = policy_envoy(&app, config, json!({}));
        for proto in [Proto::H1, Proto::H2] {
            for path in passes {
                let response = Request::get(path).send(envoy.addr("main"), proto);
                assert_eq!(response.status, 200, "{class}: {proto:?} {path}");
                assert_eq!(app.last().path, *path);
            }
            for path in refused {
                let response = Request::get(path).send(envoy.addr("main"), proto);
                assert_eq!(response.status, 400, "{class}: {proto:?} {path}");
            }
        }
        assert_eq!(
            envoy.counter("wasmcustom.l7_policy.invalid_path"),
            2 * refused.len() as u64,
            "{class}"
        );
    }
}

#[test]
fn dry_run_records_but_never_blocks() {
    let app = Upstream::start();
    let log = json!({"access_log": [{
        "name": "envoy.access_loggers.file",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "path": "@SCRATCH@/verdicts.log",
            "log_format": {"json_format": {
                "path": "%REQ(:PATH)%", "code": "%RESPONSE_CODE%",
                "verdict": "%FILTER_STATE(wasm.l7_verdict:PLAIN)%",
                "rule": "%FILTER_STATE(wasm.l7_rule:PLAIN)%"
            }}
        }
    }]});
    let mut config = star_wars_rules();
    config["dry_run"] = json!(true);
    let envoy = policy_envoy(&app, config, log.clone());
    for (method, path) in [
        ("POST", "/v1/request-landing"),
        ("PUT", "/v1/exhaust-port"),
        ("GET", "/a//b"),
    ] {
        let response = Request::new(method, path).send(envoy.addr("main"), Proto::H1);
        assert_eq!(response.status, 200, "{method} {path}");
    }
    let lines = read_records(&envoy.scratch().join("verdicts.log"), 3);
    let verdicts: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| (l["verdict"].as_str().unwrap(), l["rule"].as_str().unwrap()))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("allowed", "0"),
            ("dry_run_denied", "none"),
            ("invalid_path", "none")
        ]
    );
    assert_eq!(envoy.counter("wasmcustom.l7_policy.dry_run_denied"), 1);
    assert_eq!(envoy.counter("wasmcustom.l7_policy.denied"), 0);
    drop(envoy);
    // Enforcing, the same requests and the same filter state.
    let envoy = policy_envoy(&app, star_wars_rules(), log);
    for (method, path, want) in [
        ("POST", "/v1/request-landing", 200),
        ("PUT", "/v1/exhaust-port", 403),
        ("GET", "/a//b", 400),
    ] {
        assert_eq!(
            Request::new(method, path)
                .send(envoy.addr("main"), Proto::H2)
                .status,
            want
        );
    }
    let lines = read_records(&envoy.scratch().join("verdicts.log"), 3);
    assert_eq!(lines[1]["verdict"], "denied");
    assert_eq!(lines[1]["code"], 403);
    assert_eq!(lines[2]["verdict"], "invalid_path");
}

#[test]
fn header_match_actions_reach_the_app() {
    let app = Upstream::start();
    let config = json!({"rules": [{"path": "/a", "headerMatches": [
        {"name": "X-Add", "value": "added", "mismatch": "ADD"},
        {"name": "X-Del", "value": "keep", "mismatch": "DELETE"},
        {"name": "X-Rep", "value": "new", "mismatch": "REPLACE"},
        {"name": "X-Must", "value": "yes"}
    ]}], "deny": {"status": 404, "body": "no such thing\n", "headers": {"x-policy": "l7"}}});
    let envoy = policy_envoy(&app, config, json!({}));
    let response = Request::get("/a")
        .header("x-must", "yes")
        .header("x-del", "drop-me")
        .header("x-rep", "old")
        .send(envoy.addr("main"), Proto::H1);
    assert_eq!(response.status, 200);
    let got = app.last();
    assert_eq!(got.header("x-add"), [&b"added"[..]]);
    assert!(got.header("x-del").is_empty());
    assert_eq!(got.header("x-rep"), [&b"new"[..]]);
    let denied = Request::get("/a").send(envoy.addr("main"), Proto::H2);
    assert_eq!(
        (denied.status, denied.body_text().as_str()),
        (404, "no such thing\n")
    );
    assert_eq!(denied.header("x-policy"), [&b"l7"[..]]);
}

#[test]
fn bad_rules_refuse_to_load() {
    let app = Upstream::start();
    for (config, field) in [
        (
            json!({"rules": [{}, {"path": "/v1/(unclosed"}]}),
            "rules[1].path",
        ),
        (
            json!({"rules": [{"headerMatches": [{"name": "x", "secret": {"name": "s"}}]}]}),
            "rules[0].headerMatches[0].secret",
        ),
        (json!({}), "rules"),
        (
            json!({"rules": [{"headerMatches": [{"name": "Content-Length", "value": "0", "mismatch": "REPLACE"}]}]}),
            "rules[0].headerMatches[0].name",
        ),
        (
            json!({"rules": [], "allow_in_paths": {"dot_segments": true}}),
            "allow_in_paths.dot_segments",
        ),
    ] {
        Envoy::refuses(
            &Bootstrap::http(app.port(), vec![wasm_filter("l7_policy", &config)]),
            &[&format!(
                "l7_policy: invalid plugin configuration: field `{field}`"
            )],
        );
    }
}

/// A pattern RE2 refuses is refused by Envoy (an RBAC `safe_regex`) and by
/// this filter (the listener never comes up): the gate and RE2 agree where
/// it matters most, in a real Envoy.
#[test]
fn patterns_re2_refuses_are_refused_by_both() {
    let app = Upstream::start();
    for (p, re2_says) in [
        ("/public)|(/nothing", "unexpected ): /public)|(/nothing"),
        ("/a**", "bad repetition operator: **"),
        ("(/a{100}){100}", "invalid repetition size: {100}"),
        ("/a{1001}", "invalid repetition size: {1001}"),
        ("/a\\Z", "invalid escape sequence: \\Z"),
        ("/(?=a)", "invalid perl operator: (?="),
        ("/[z-a]", "invalid character class range: z-a"),
        ("/a\\1", "invalid escape sequence: \\1"),
    ] {
        let rbac = json!({"name": "envoy.filters.http.rbac", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
            "rules": {"action": "ALLOW", "policies": {"p": {
                "permissions": [{"header": {"name": ":path", "string_match": {"safe_regex": {"regex": p}}}}],
                "principals": [{"any": true}]}}}}});
        // RE2's own error, as Envoy reports it.
        Envoy::refuses(&Bootstrap::http(app.port(), vec![rbac]), &[re2_says]);
        let config = json!({"rules": [{"method": "GET"}, {"path": p}]});
        Envoy::refuses(
            &Bootstrap::http(app.port(), vec![wasm_filter("l7_policy", &config)]),
            &["l7_policy: invalid plugin configuration: field `rules[1].path`"],
        );
    }
}

/// Envoy's RBAC with the equivalent `safe_regex` permissions, on its own
/// listener, against this filter: the same verdict for every request of a
/// generated corpus.
#[test]
fn same_verdicts_as_envoys_rbac() {
    let app = Upstream::start();
    let mut rng = Lcg(0x5eed);
    let methods = ["GET", "POST", "PUT", "DELETE", "PATCH"];
    let segments = [
        "v1", "v2", "api", "users", "orders", "status", "admin", "a1", "x",
    ];
    // Common Cilium forms, and forms whose zero-width assertions look at the
    // text around them (a literal prefix must not be split off those).
    let path_patterns = |rng: &mut Lcg| -> String {
        let (a, b) = (*rng.pick(&segments), *rng.pick(&segments));
        match rng.below(12) {
            0 => format!("/{a}/{b}"),
            1 => format!("/{a}/.*"),
            2 => format!("/{a}/[a-z0-9]+"),
            3 => format!("/({a}|{b})(/[a-z]+)?"),
            4 => format!("/{a}\\b.*"),
            5 => format!("/{a}/{b}\\b"),
            6 => format!("/{a}\\B.*"),
            7 => format!("^/{a}(/.*)?$"),
            8 => format!("/{a}^{b}"),
            9 => format!("/{a}(/(v1|users|[0-9]+))*\\b(\\?.*)?"),
            10 => format!("(/{a}|/{b}/x)\\b[/a-z]*"),
            _ => format!("/{a}(/[^/]+)?/?$"),
        }
    };
    let mut ours = Vec::new();
    let mut policies = serde_json::Map::new();
    for i in 0..25 {
        let mut rule = serde_json::Map::new();
        let mut permissions = Vec::new();
        if rng.below(3) > 0 {
            let m = if rng.below(4) == 0 {
                format!("{}|{}", rng.pick(&methods), rng.pick(&methods))
            } else {
                rng.pick(&methods).to_string()
            };
            permissions.push(json!({"header": {"name": ":method", "string_match": {"safe_regex": {"regex": m}}}}));
            rule.insert("method".into(), json!(m));
        }
        if rng.below(5) > 0 {
            let p = path_patterns(&mut rng);
            permissions.push(
                json!({"header": {"name": ":path", "string_match": {"safe_regex": {"regex": p}}}}),
            );
            rule.insert("path".into(), json!(p));
        }
        if rng.below(4) == 0 {
            let (name, value) = ("x-role", *rng.pick(&["admin", "user"]));
            if rng.below(2) == 0 {
                permissions.push(json!({"header": {"name": name, "present_match": true}}));
                rule.insert("headers".into(), json!([name]));
            } else {
                permissions
                    .push(json!({"header": {"name": name, "string_match": {"exact": value}}}));
                rule.insert("headers".into(), json!([format!("{name}: {value}")]));
            }
        }
        let permission = if permissions.is_empty() {
            json!({"any": true})
        } else {
            json!({"and_rules": {"rules": permissions}})
        };
        policies.insert(
            format!("rule-{i}"),
            json!({"permissions": [permission], "principals": [{"any": true}]}),
        );
        ours.push(Value::Object(rule));
    }
    // Patterns that once differed from RE2: `\b` after a literal prefix,
    // `\b` at the end, `^` in the middle.
    for (i, p) in ["/api\\b.*", "/v1/users\\b", "/v1^api.*"]
        .iter()
        .enumerate()
    {
        policies.insert(
            format!("fixed-{i}"),
            json!({"permissions": [{"header": {"name": ":path", "string_match": {"safe_regex": {"regex": p}}}}],
                   "principals": [{"any": true}]}),
        );
        ours.push(json!({"path": p}));
    }
    let repeated = rbac_repeated_header_semantics(&app);
    println!("this Envoy's RBAC matches repeated headers as: {repeated}");
    let rbac = json!({"name": "envoy.filters.http.rbac", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
        "rules": {"action": "ALLOW", "policies": policies}}});
    let config = json!({"rules": ours, "repeated_headers": repeated});
    let envoy = Envoy::start(
        &Bootstrap::new(app.port())
            .listener_with(
                "ours",
                vec![wasm_filter("l7_policy", &config)],
                routes(),
                json!({}),
            )
            .listener_with("rbac", vec![rbac], routes(), json!({})),
    );
    let total = 3000;
    let mut differing = Vec::new();
    let mut allowed = 0;
    for _ in 0..total {
        let method = *rng.pick(&methods);
        let mut path = format!("/{}", rng.pick(&segments));
        if rng.below(6) == 0 {
            // A word char or not right after the segment: `\b`, `\B`.
            let glued: [&str; 4] = ["admin", "-x", "_1", "~"];
            path.push_str(glued[rng.below(glued.len())]);
        }
        for _ in 0..rng.below(3) {
            path.push('/');
            let more: [&str; 7] = ["v1", "users", "42", "abc", "x", "Admin", "a-b"];
            path.push_str(more[rng.below(more.len())]);
        }
        if rng.below(5) == 0 {
            let queries: [&str; 3] = ["?q=1", "?", "?a=b&c=d"];
            path.push_str(queries[rng.below(queries.len())]);
        }
        let mut request = Request::new(method, &path);
        match rng.below(4) {
            0 => request = request.header("x-role", *rng.pick(&["admin", "user", "guest"])),
            1 => request = request.header("x-role", "user").header("x-role", "admin"),
            _ => {}
        }
        let proto = if rng.below(2) == 0 {
            Proto::H1
        } else {
            Proto::H2
        };
        let a = request.send(envoy.addr("ours"), proto).status;
        let b = request.send(envoy.addr("rbac"), proto).status;
        if a == 200 {
            allowed += 1;
        }
        if a != b {
            differing.push(format!(
                "{method} {path} {:?}: ours {a}, RBAC {b}",
                request.headers
            ));
        }
    }
    println!(
        "RBAC differential: {total} requests, {allowed} allowed, {} differ",
        differing.len()
    );
    assert!(
        differing.is_empty(),
        "{} differ, first: {:?}",
        differing.len(),
        &differing[..differing.len().min(10)]
    );
    assert!(
        allowed > total / 10 && allowed < total * 9 / 10,
        "a corpus that tests both verdicts: {allowed} allowed"
    );
}

/// How this Envoy's RBAC matches a repeated header: `"joined"` (the values
/// joined with `,`, Envoy up to 1.36) or `"any_value"` (Envoy 1.40).
fn rbac_repeated_header_semantics(app: &Upstream) -> &'static str {
    let rbac = json!({"name": "envoy.filters.http.rbac", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
        "rules": {"action": "ALLOW", "policies": {"p": {
            "permissions": [{"header": {"name": "x-role", "string_match": {"exact": "admin"}}}],
            "principals": [{"any": true}]}}}}});
    let envoy = Envoy::start(&Bootstrap::new(app.port()).listener_with(
        "rbac",
        vec![rbac],
        routes(),
        json!({}),
    ));
    let status = Request::get("/")
        .header("x-role", "user")
        .header("x-role", "admin")
        .send(envoy.addr("rbac"), Proto::H1)
        .status;
    if status == 200 {
        "any_value"
    } else {
        "joined"
    }
}

/// The security review's rule (998 chars, every count under 1000), which
/// loaded in 1.6 s and then cost Envoy 29 s of CPU on one 30 KB path: Envoy
/// does not start with it, and the filter's log line names the rule, the
/// estimate and the limit.
#[test]
fn a_regex_over_the_cost_limits_is_refused_at_load() {
    let app = Upstream::start();
    let review = format!("/api/{}x", "(?:[^/]{0,999})?".repeat(62));
    let config =
        json!({"rules": [{"method": "GET", "path": "/health"}, {"method": "GET", "path": review}]});
    let started = std::time::Instant::now();
    Envoy::refuses(
        &Bootstrap::http(app.port(), vec![wasm_filter("l7_policy", &config)]),
        &[
            "l7_policy: invalid plugin configuration: field `rules[1].path`",
            "about 1114956 instructions (RE2 program size), over the limit of 16384",
            "raise max_regex_program_size",
        ],
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    // Repetitions in a row over the same chars: refused for their cost.
    let config = json!({"rules": [{"path": format!("/api/{}", "[^/]*".repeat(40))}]});
    Envoy::refuses(
        &Bootstrap::http(app.port(), vec![wasm_filter("l7_policy", &config)]),
        &[
            "costs too much to match",
            "over the limit of 32",
            "max_regex_cost",
        ],
    );
}
