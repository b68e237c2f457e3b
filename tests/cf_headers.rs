//! CF header stamping through a real Envoy. Tests named `smoke_*` also run
//! against the oldest supported Envoy (`make test-old-envoy`).

use harness::bootstrap::wasm_filter_raw;
use harness::client::Proto;
use harness::{header_values, wasm_filter, Bootstrap, Envoy, Lcg, Received, Request, Upstream};
use serde_json::{json, Value};

const NAMES: [&str; 4] = [
    "cf-app-id",
    "cf-app-process-type",
    "cf-organization-id",
    "cf-space-id",
];
const BOTH: [Proto; 2] = [Proto::H1, Proto::H2];

fn stat(envoy: &Envoy, name: &str) -> u64 {
    envoy.counter(&format!("wasmcustom.cf_headers.{name}"))
}

fn start(up: &Upstream, config: Value) -> Envoy {
    Envoy::start(&Bootstrap::http(
        up.port(),
        vec![wasm_filter("cf_headers", &config)],
    ))
}

/// The CF headers as the upstream received them: every copy, in order.
fn cf_headers(received: &Received) -> Vec<(String, String)> {
    received
        .headers
        .iter()
        .filter(|(n, _)| NAMES.contains(&n.to_ascii_lowercase().as_str()))
        .map(|(n, v)| (n.clone(), String::from_utf8_lossy(v).into_owned()))
        .collect()
}

fn stamped(values: [&str; 4]) -> Vec<(String, String)> {
    NAMES
        .iter()
        .zip(values)
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

/// A client that sends every CF header twice, in odd case, with its own values.
fn spoofing(path: &str) -> Request {
    Request::get(path)
        .header("CF-App-Id", "evil-app")
        .header("cf-app-id", "evil-app-2")
        .header("Cf-Organization-Id", "evil-org")
        .header("x-keep", "1")
        .header("CF-SPACE-ID", "evil-space")
        .header("cf-space-id", "evil-space-2")
        .header("cf-app-process-type", "evil")
}

#[test]
fn smoke_static_identity_replaces_spoofed_headers() {
    let up = Upstream::start();
    let envoy = start(
        &up,
        json!({"app_guid": "app-1", "process_type": "worker", "org_guid": "org-1", "space_guid": "space-1"}),
    );
    for proto in BOTH {
        let response = spoofing("/static").send(envoy.addr("main"), proto);
        assert_eq!(response.status, 200, "{proto:?}");
        let got = up.last();
        assert_eq!(
            cf_headers(&got),
            stamped(["app-1", "worker", "org-1", "space-1"]),
            "{proto:?}"
        );
        assert_eq!(got.header("x-keep"), [b"1"], "other headers pass untouched");
    }
    Request::get("/clean").send(envoy.addr("main"), Proto::H1);
    assert_eq!(
        cf_headers(&up.last()),
        stamped(["app-1", "worker", "org-1", "space-1"])
    );
    assert_eq!(stat(&envoy, "stamped"), 3);
    assert_eq!(
        stat(&envoy, "spoofed_removed"),
        12,
        "6 spoofed lines on each of two requests"
    );
    assert_eq!(stat(&envoy, "no_identity"), 0);
}

fn labels(app: Option<&str>) -> Value {
    let mut labels = json!({
        "cloudfoundry.org/process_type": "web",
        "cloudfoundry.org/org_guid": "org-l",
        "cloudfoundry.org/space_guid": "space-l",
        "app": "unrelated"
    });
    if let Some(app) = app {
        labels["cloudfoundry.org/app_guid"] = json!(app);
    }
    json!({"LABELS": labels, "NAMESPACE": "cf-workloads"})
}

#[test]
fn smoke_node_labels_identity() {
    let up = Upstream::start();
    let bootstrap = Bootstrap::http(
        up.port(),
        vec![wasm_filter(
            "cf_headers",
            &json!({"identity_from": "node_labels"}),
        )],
    )
    .node_metadata(labels(Some("app-l")));
    let envoy = Envoy::start(&bootstrap);
    for proto in BOTH {
        spoofing("/labels").send(envoy.addr("main"), proto);
        assert_eq!(
            cf_headers(&up.last()),
            stamped(["app-l", "web", "org-l", "space-l"]),
            "{proto:?}"
        );
    }
    assert_eq!(stat(&envoy, "stamped"), 2);
    assert!(
        envoy.log().contains("identity from pod labels: app app-l"),
        "the identity is logged once at load"
    );
}

#[test]
fn node_labels_missing_strip_and_count() {
    let up = Upstream::start();
    let bootstrap = Bootstrap::http(
        up.port(),
        vec![wasm_filter(
            "cf_headers",
            &json!({"identity_from": "node_labels"}),
        )],
    )
    .node_metadata(labels(None));
    let envoy = Envoy::start(&bootstrap);
    let response = spoofing("/nolabels").send(envoy.addr("main"), Proto::H1);
    assert_eq!(
        response.status, 200,
        "the default passes requests without identity on"
    );
    assert_eq!(
        cf_headers(&up.last()),
        vec![],
        "but never with a client's CF headers"
    );
    assert_eq!(stat(&envoy, "no_identity"), 1);
    assert_eq!(stat(&envoy, "stamped"), 0);
    assert!(
        envoy.log().contains("cloudfoundry.org/app_guid (missing)"),
        "{}",
        envoy.log()
    );
}

#[test]
fn node_labels_with_custom_label_keys() {
    let up = Upstream::start();
    let config = json!({"identity_from": "node_labels", "label_keys": {"app_guid": "app", "process_type": "none-such"}});
    let bootstrap = Bootstrap::http(up.port(), vec![wasm_filter("cf_headers", &config)])
        .node_metadata(labels(None));
    let envoy = Envoy::start(&bootstrap);
    Request::get("/").send(envoy.addr("main"), Proto::H2);
    assert_eq!(
        cf_headers(&up.last()),
        stamped(["unrelated", "web", "org-l", "space-l"])
    );
}

fn hosts_config(extra: Value) -> Value {
    let mut config = json!({"hosts": {
        "app-a.apps.example.com": {"app_guid": "guid-a", "org_guid": "org", "space_guid": "space"},
        "*.wild.example.com": {"app_guid": "guid-w", "process_type": "api", "org_guid": "org", "space_guid": "space"}
    }});
    if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    config
}

#[test]
fn hosts_identity_by_authority() {
    let up = Upstream::start();
    let envoy = start(&up, hosts_config(json!({})));
    let cases = [
        (
            "app-a.apps.example.com",
            Some(["guid-a", "web", "org", "space"]),
        ),
        (
            "APP-A.Apps.Example.COM:8080",
            Some(["guid-a", "web", "org", "space"]),
        ),
        (
            "app-a.apps.example.com.",
            Some(["guid-a", "web", "org", "space"]),
        ),
        (
            "x.wild.example.com",
            Some(["guid-w", "api", "org", "space"]),
        ),
        (
            "x.y.wild.example.com:443",
            Some(["guid-w", "api", "org", "space"]),
        ),
        ("wild.example.com", None),
        ("app-a.apps.example.com.evil.com", None),
        ("unknown.example.com", None),
    ];
    for proto in BOTH {
        for (authority, want) in cases {
            let response = spoofing("/host")
                .authority(authority)
                .send(envoy.addr("main"), proto);
            assert_eq!(response.status, 200);
            let want = want.map(stamped).unwrap_or_default();
            assert_eq!(cf_headers(&up.last()), want, "{proto:?} {authority}");
        }
    }
    assert_eq!(stat(&envoy, "stamped"), 10);
    assert_eq!(stat(&envoy, "no_identity"), 6);
    assert_eq!(stat(&envoy, "rejected"), 0);
}

#[test]
fn hosts_reject_unknown_with_503() {
    let up = Upstream::start();
    let envoy = start(&up, hosts_config(json!({"on_missing_identity": "reject"})));
    for proto in BOTH {
        let response = spoofing("/")
            .authority("unknown.example.com")
            .send(envoy.addr("main"), proto);
        assert_eq!(response.status, 503, "{proto:?}");
        assert_eq!(
            response.body_text(),
            "no CF app identity for this request\n"
        );
        let ok = Request::get("/")
            .authority("app-a.apps.example.com")
            .send(envoy.addr("main"), proto);
        assert_eq!(ok.status, 200);
    }
    assert_eq!(
        up.received().len(),
        2,
        "rejected requests never reach the app"
    );
    assert_eq!(stat(&envoy, "rejected"), 2);
    assert_eq!(stat(&envoy, "no_identity"), 2);
}

#[test]
fn strip_only_mode_and_custom_names() {
    let up = Upstream::start();
    let envoy = start(
        &up,
        json!({"mode": "strip_only", "header_names": {"app_guid": "X-App-Guid"}}),
    );
    let request = spoofing("/strip")
        .header("x-app-guid", "evil")
        .header("X-App-Guid", "evil2");
    for proto in BOTH {
        request.send(envoy.addr("main"), proto);
        let got = up.last();
        assert_eq!(got.header("x-app-guid"), Vec::<&[u8]>::new(), "{proto:?}");
        // cf-app-id is no longer one of the configured names, so it passes.
        assert_eq!(got.header("cf-app-id"), [&b"evil-app"[..], b"evil-app-2"]);
        assert_eq!(got.header("cf-space-id"), Vec::<&[u8]>::new());
    }
    assert_eq!(stat(&envoy, "spoofed_removed"), 2 * 6);
    assert_eq!(
        stat(&envoy, "no_identity"),
        0,
        "strip-only is not a missing identity"
    );
}

#[test]
fn response_headers_carry_the_identity() {
    let up = Upstream::start();
    let envoy = start(&up, hosts_config(json!({"response_headers": true})));
    for proto in BOTH {
        let response = Request::get("/")
            .authority("app-a.apps.example.com")
            .header("x-echo-response-header", "CF-App-Id: from-the-app")
            .send(envoy.addr("main"), proto);
        let got: Vec<_> = NAMES.iter().map(|n| response.header(n).concat()).collect();
        assert_eq!(got, [&b"guid-a"[..], b"web", b"org", b"space"], "{proto:?}");
        let response = Request::get("/")
            .authority("nobody.example.com")
            .header("x-echo-response-header", "CF-App-Id: from-the-app")
            .send(envoy.addr("main"), proto);
        assert_eq!(
            response.header("cf-app-id"),
            Vec::<&[u8]>::new(),
            "no identity: stripped from the response too"
        );
    }
}

#[test]
fn hostile_values_never_break_the_filter() {
    let up = Upstream::start();
    let envoy = start(
        &up,
        json!({"app_guid": "app-1", "org_guid": "org-1", "space_guid": "space-1"}),
    );
    let big = "x".repeat(50_000);
    let requests = [
        Request::get("/bin").header("cf-app-id", b"\xff\xfe\x80binary"),
        Request::get("/bin")
            .header("x-other", b"\xc3\x28")
            .header("CF-App-Id", b"caf\xe9"),
        Request::get("/big").header("cf-app-id", big.as_bytes()),
        Request::get("/%2F..//x?q=%00").header("cf-space-id", ""),
    ];
    for proto in BOTH {
        for request in &requests {
            let response = request.send(envoy.addr("main"), proto);
            assert_eq!(response.status, 200, "{proto:?} {}", request.path);
            assert_eq!(
                cf_headers(&up.last()),
                stamped(["app-1", "web", "org-1", "space-1"])
            );
        }
    }
    // A value with NUL or a bare CR never reaches the filter: Envoy's codec refuses it.
    let response = Request::get("/nul")
        .header("cf-app-id", b"a\0b")
        .send_h1(envoy.addr("main"))
        .expect("h1");
    assert_eq!(response.status, 400);
    assert_eq!(stat(&envoy, "stamped"), 8);
    let log = envoy.log();
    assert!(
        !log.contains("panicked") && !log.contains("Function: proxy_on"),
        "{log}"
    );
}

#[test]
fn bad_configurations_are_refused_naming_the_field() {
    let up = Upstream::start();
    let cases = [
        (
            r#"{"app_guid": 1, "org_guid": "o", "space_guid": "s"}"#,
            "field `app_guid`: expected a string, found a number",
        ),
        (
            r#"{"app_guid": "a", "org_guid": "o"}"#,
            "field `space_guid`: is missing",
        ),
        (
            r#"{"app_guid": "a", "org_guid": "o", "space_guid": "s", "colour": "red"}"#,
            "field `colour`: unknown field",
        ),
        (r#"{"hosts": {}}"#, "field `hosts`: is empty"),
        (
            r#"{"hosts": {"a b": {"app_guid": "a", "org_guid": "o", "space_guid": "s"}}}"#,
            "field `hosts.\"a b\"`",
        ),
        (
            r#"{"identity_from": "pod"}"#,
            "field `identity_from`: \"pod\" is not one of: node_labels",
        ),
        (r#"{}"#, "no identity source is configured"),
        (
            r#"{"app_guid": "a""#,
            "(fix: the configuration must be one well-formed JSON object)",
        ),
    ];
    for (config, message) in cases {
        let bootstrap = Bootstrap::http(up.port(), vec![wasm_filter_raw("cf_headers", config)]);
        Envoy::refuses(
            &bootstrap,
            &[message, "Unable to create Wasm plugin cf_headers"],
        );
    }
}

/// Our filter and Envoy's own route-level `request_headers_to_add`
/// (`OVERWRITE_IF_EXISTS_OR_ADD`) must deliver identical header lists to the
/// upstream, for a generated set of requests over HTTP/1.1 and HTTP/2.
#[test]
fn differential_against_native_request_headers_to_add() {
    let up = Upstream::start();
    let identity = [
        "a96c7067-c0cd-474a-b83b-68b1980979c2",
        "web",
        "04a73274-9280-4b99-9abc-e44e3ff4a74e",
        "8d18b884-729c-4239-9b88-39c4964a3f86",
    ];
    let config = json!({"app_guid": identity[0], "process_type": identity[1], "org_guid": identity[2], "space_guid": identity[3]});
    let native: Vec<Value> = ["CF-App-Id", "CF-App-Process-Type", "CF-Organization-Id", "CF-Space-Id"]
        .iter()
        .zip(identity)
        .map(|(k, v)| json!({"header": {"key": k, "value": v}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}))
        .collect();
    let bootstrap = Bootstrap::new(up.port())
        .listener("ours", vec![wasm_filter("cf_headers", &config)], json!({}))
        .listener("native", vec![], json!({"request_headers_to_add": native}));
    let envoy = Envoy::start(&bootstrap);

    let mut rng = Lcg(0x5eed);
    let spellings = [
        "CF-App-Id",
        "cf-app-id",
        "CF-APP-ID",
        "Cf-App-Process-Type",
        "cf-organization-id",
        "CF-Space-Id",
        "cf-space-ID",
    ];
    let others = [
        "accept",
        "x-a",
        "X-B",
        "cookie",
        "x-forwarded-for",
        "user-agent",
        "x-cf-app-id",
        "cf-app-idx",
    ];
    let mut compared = 0;
    for i in 0..150 {
        let proto = if i % 2 == 0 { Proto::H1 } else { Proto::H2 };
        let mut request = Request::new(
            ["GET", "POST", "PUT", "DELETE"][rng.below(4)],
            &format!("/diff/{i}"),
        );
        for _ in 0..rng.below(12) {
            let name = if rng.below(2) == 0 {
                spellings[rng.below(spellings.len())]
            } else {
                others[rng.below(others.len())]
            };
            request = request.header(name, format!("v{}", rng.below(1000)));
        }
        if request.method != "GET" {
            request = request.body(vec![b'b'; rng.below(3000)]);
        }
        request.send(envoy.addr("ours"), proto);
        let ours = up.last();
        request.send(envoy.addr("native"), proto);
        let theirs = up.last();
        // x-request-id is random. The router adds x-envoy-expected-rq-timeout-ms
        // before it applies route headers, so only its position differs by design.
        let comparable = |r: &Received| -> Vec<(String, String)> {
            r.headers
                .iter()
                .filter(|(n, _)| n != "x-request-id" && n != "x-envoy-expected-rq-timeout-ms")
                .map(|(n, v)| (n.clone(), String::from_utf8_lossy(v).into_owned()))
                .collect()
        };
        assert_eq!(
            ours.header("x-envoy-expected-rq-timeout-ms"),
            theirs.header("x-envoy-expected-rq-timeout-ms")
        );
        assert_eq!(
            comparable(&ours),
            comparable(&theirs),
            "{proto:?} request {i}: {} {:?}",
            request.method,
            request.headers
        );
        assert_eq!(
            (&ours.method, &ours.path, &ours.body),
            (&theirs.method, &theirs.path, &theirs.body)
        );
        assert_eq!(
            header_values(&ours.headers, "cf-app-id"),
            [identity[0].as_bytes()]
        );
        compared += 1;
    }
    assert_eq!(compared, 150);
    assert_eq!(stat(&envoy, "stamped"), 150);
}

/// Host selection against Envoy's own virtual-host matching: per-host routes
/// with `request_headers_to_add`, a catch-all route that removes the headers,
/// and the connection manager stripping ports and trailing dots.
#[test]
fn differential_hosts_against_native_virtual_hosts() {
    let up = Upstream::start();
    let hosts = [
        ("app-a.apps.example.com", "guid-a"),
        ("*.wild.example.com", "guid-w"),
        ("*.deep.wild.example.com", "guid-d"),
        ("[::1]", "guid-6"),
    ];
    let mut table = serde_json::Map::new();
    let mut virtual_hosts = Vec::new();
    for (host, guid) in hosts {
        table.insert(
            host.into(),
            json!({"app_guid": guid, "org_guid": "org", "space_guid": "space"}),
        );
        let add: Vec<Value> = NAMES
            .iter()
            .zip([guid, "web", "org", "space"])
            .map(|(k, v)| json!({"header": {"key": k, "value": v}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}))
            .collect();
        virtual_hosts.push(json!({"name": host, "domains": [host], "routes": [{
            "match": {"prefix": "/"}, "route": {"cluster": "upstream"}, "request_headers_to_add": add}]}));
    }
    virtual_hosts.push(json!({"name": "default", "domains": ["*"], "routes": [{
        "match": {"prefix": "/"}, "route": {"cluster": "upstream"}, "request_headers_to_remove": NAMES}]}));
    let bootstrap = Bootstrap::new(up.port())
        .listener(
            "ours",
            vec![wasm_filter("cf_headers", &json!({"hosts": table}))],
            json!({}),
        )
        .listener_with(
            "native",
            vec![],
            Value::Array(virtual_hosts),
            json!({"strip_any_host_port": true, "strip_trailing_host_dot": true}),
        );
    let envoy = Envoy::start(&bootstrap);

    let bases = [
        "app-a.apps.example.com",
        "APP-A.Apps.Example.Com",
        "x.wild.example.com",
        "a.b.wild.example.com",
        "wild.example.com",
        "x.deep.wild.example.com",
        "deep.wild.example.com",
        "app-a.apps.example.com.evil",
        "other.example.com",
        "[::1]",
        "localhost",
        "xwild.example.com",
    ];
    let suffixes = ["", ":80", ":8443", ".", ".:443", ":"];
    let mut rng = Lcg(0xa17);
    for i in 0..300 {
        let proto = if i % 2 == 0 { Proto::H1 } else { Proto::H2 };
        let authority = format!(
            "{}{}",
            bases[rng.below(bases.len())],
            suffixes[rng.below(suffixes.len())]
        );
        let request = spoofing(&format!("/hosts/{i}")).authority(&authority);
        request.send(envoy.addr("ours"), proto);
        let ours = up.last();
        request.send(envoy.addr("native"), proto);
        let theirs = up.last();
        assert_eq!(
            cf_headers(&ours),
            cf_headers(&theirs),
            "{proto:?} {authority}"
        );
    }
}

/// A header name as CGI-style frameworks (WSGI, Rack, PHP) see it: `_` and
/// `-` are one character, case does not count (`HTTP_CF_APP_ID`).
fn cgi(name: &str) -> String {
    name.to_ascii_lowercase().replace('_', "-")
}

/// Every line of `fields` a CGI-style app would read as one of the CF headers.
fn cgi_cf(fields: &harness::Headers) -> Vec<(String, String)> {
    fields
        .iter()
        .filter(|(n, _)| NAMES.contains(&cgi(n).as_str()))
        .map(|(n, v)| (n.clone(), String::from_utf8_lossy(v).into_owned()))
        .collect()
}

/// A client that spells the CF headers with underscores, beside one header
/// with an underscore that is none of them.
fn underscored(request: Request) -> Request {
    request
        .header("CF_App_Id", "evil-guid")
        .header("cf_space_id", "evil-space")
        .header("Cf-Organization_Id", "evil-org")
        .header("cf_app_id", "evil-guid-2")
        .header("x_keep", "1")
}

const STATIC: [&str; 4] = ["app-1", "web", "org-1", "space-1"];

fn static_config() -> Value {
    json!({"app_guid": STATIC[0], "org_guid": STATIC[2], "space_guid": STATIC[3]})
}

#[test]
fn underscore_spellings_never_reach_the_app() {
    let up = Upstream::start();
    for (config, want) in [
        (static_config(), stamped(STATIC)),
        (json!({"mode": "strip_only"}), vec![]),
    ] {
        let envoy = start(&up, config.clone());
        for proto in BOTH {
            let response = underscored(Request::get("/underscore")).send(envoy.addr("main"), proto);
            assert_eq!(response.status, 200, "{proto:?}");
            let got = up.last();
            assert_eq!(cgi_cf(&got.headers), want, "{proto:?} {config}");
            assert_eq!(got.header("x_keep"), [b"1"], "other underscore names pass");
            // Together with the plain spellings.
            underscored(spoofing("/both")).send(envoy.addr("main"), proto);
            assert_eq!(cgi_cf(&up.last().headers), want, "{proto:?} {config}");
        }
        assert_eq!(
            stat(&envoy, "spoofed_removed"),
            2 * (4 + 4 + 6),
            "each underscore line counts, on both protocols: {config}"
        );
    }
}

/// A configured name with `_` is stamped as configured; its `-` spelling
/// from the client goes.
#[test]
fn configured_underscore_name_is_stamped_and_its_dash_spelling_removed() {
    let up = Upstream::start();
    let mut config = static_config();
    config["header_names"] = json!({"app_guid": "X_App_Guid"});
    let envoy = start(&up, config);
    for proto in BOTH {
        Request::get("/custom")
            .header("x-app-guid", "evil")
            .header("X_App_Guid", "evil-2")
            .header("X-APP-GUID", "evil-3")
            .send(envoy.addr("main"), proto);
        let got = up.last();
        let app: Vec<_> = got
            .headers
            .iter()
            .filter(|(n, _)| cgi(n) == "x-app-guid")
            .cloned()
            .collect();
        assert_eq!(
            app,
            [("x_app_guid".to_string(), b"app-1".to_vec())],
            "{proto:?}"
        );
    }
    assert_eq!(stat(&envoy, "spoofed_removed"), 2 * 3);
}

/// CF headers sent as request trailers (HTTP/1.1 chunked, HTTP/2) are removed
/// and counted; other trailers pass.
#[test]
fn cf_trailers_never_reach_the_app() {
    let up = Upstream::start();
    for (config, want) in [
        (static_config(), stamped(STATIC)),
        (json!({"mode": "strip_only"}), vec![]),
    ] {
        let envoy = start(&up, config.clone());
        for proto in BOTH {
            let response = Request::new("POST", "/trailers")
                .body("payload")
                .trailer("CF-App-Id", "evil-guid")
                .trailer("x-checksum", "abc")
                .trailer("cf-space-id", "evil-space")
                .trailer("cf_organization_id", "evil-org")
                .trailer("CF_App_Process_Type", "evil")
                .send(envoy.addr("main"), proto);
            assert_eq!(response.status, 200, "{proto:?}");
            let got = up.last();
            assert_eq!(got.body, b"payload");
            assert_eq!(cgi_cf(&got.headers), want, "{proto:?} {config}");
            assert_eq!(cgi_cf(&got.trailers), vec![], "{proto:?} {config}");
            assert_eq!(
                got.trailers,
                [("x-checksum".to_string(), b"abc".to_vec())],
                "{proto:?}: other trailers pass"
            );
        }
        assert_eq!(stat(&envoy, "spoofed_removed"), 2 * 4, "{config}");
    }
}

/// What the connection manager's `headers_with_underscores_action` does to
/// underscore names, in headers and trailers, before the filter runs (the
/// README states it).
#[test]
fn underscore_names_under_each_connection_manager_setting() {
    let up = Upstream::start();
    let route = json!([{"name": "all", "domains": ["*"], "routes": [
        {"match": {"prefix": "/"}, "route": {"cluster": "upstream", "timeout": "30s"}}]}]);
    let mut bootstrap = Bootstrap::new(up.port());
    for action in ["ALLOW", "DROP_HEADER", "REJECT_REQUEST"] {
        bootstrap = bootstrap.listener_with(
            action,
            vec![wasm_filter("cf_headers", &static_config())],
            route.clone(),
            json!({"common_http_protocol_options": {"headers_with_underscores_action": action}}),
        );
    }
    let envoy = Envoy::start(&bootstrap);
    let headers = underscored(Request::get("/hcm"));
    let trailers = Request::new("POST", "/hcm")
        .body("p")
        .trailer("cf_space_id", "evil")
        .trailer("x_t", "1")
        .trailer("x-checksum", "abc");
    let checksum = ("x-checksum".to_string(), b"abc".to_vec());
    for proto in BOTH {
        for action in ["ALLOW", "DROP_HEADER"] {
            let allow = action == "ALLOW";
            let response = headers.send(envoy.addr(action), proto);
            assert_eq!(response.status, 200, "{proto:?} {action}");
            let got = up.last();
            assert_eq!(cgi_cf(&got.headers), stamped(STATIC), "{proto:?} {action}");
            let keep: &[&[u8]] = if allow { &[b"1"] } else { &[] };
            assert_eq!(got.header("x_keep"), keep, "{proto:?} {action}");
            let response = trailers.send(envoy.addr(action), proto);
            assert_eq!(response.status, 200, "{proto:?} {action}");
            let mut want = vec![checksum.clone()];
            if allow {
                want.insert(0, ("x_t".to_string(), b"1".to_vec()));
            }
            assert_eq!(up.last().trailers, want, "{proto:?} {action}");
        }
        let before = up.received().len();
        for request in [&headers, &trailers] {
            match proto {
                Proto::H1 => {
                    let response = request.send_h1(envoy.addr("REJECT_REQUEST")).expect("h1");
                    assert_eq!(response.status, 400);
                }
                Proto::H2 => assert!(request.send_h2(envoy.addr("REJECT_REQUEST")).is_err()),
            }
        }
        assert_eq!(
            up.received().len(),
            before,
            "REJECT_REQUEST: never reaches the app"
        );
    }
    assert_eq!(
        stat(&envoy, "spoofed_removed"),
        2 * (4 + 1),
        "only ALLOW lets the underscore spellings reach the filter"
    );
}

#[test]
fn header_names_that_frame_or_alias_are_refused_at_load() {
    let up = Upstream::start();
    let with_names = |names: Value| {
        json!({"app_guid": "0", "org_guid": "o", "space_guid": "s", "header_names": names})
            .to_string()
    };
    let cases = [
        (
            with_names(json!({"app_guid": "content-length"})),
            "field `header_names.app_guid`: \"content-length\" frames or routes the HTTP message",
        ),
        (
            with_names(json!({"space_guid": "Transfer_Encoding"})),
            "field `header_names.space_guid`: \"Transfer_Encoding\" frames or routes",
        ),
        (
            with_names(json!({"org_guid": ":authority"})),
            "field `header_names.org_guid`: \":authority\" is a pseudo-header",
        ),
        (
            with_names(json!({"process_type": "x-envoy-original-path"})),
            "field `header_names.process_type`: \"x-envoy-original-path\" is a header Envoy owns",
        ),
        (
            with_names(json!({"org_guid": "CF_App_Id"})),
            "field `header_names.org_guid`: \"CF_App_Id\" is the same header as \"cf-app-id\" (app_guid)",
        ),
        (
            json!({"mode": "strip_only", "header_names": {"app_guid": "host"}}).to_string(),
            "field `header_names.app_guid`: \"host\" frames or routes",
        ),
    ];
    for (config, message) in cases {
        let bootstrap = Bootstrap::http(up.port(), vec![wasm_filter_raw("cf_headers", &config)]);
        Envoy::refuses(
            &bootstrap,
            &[message, "Unable to create Wasm plugin cf_headers"],
        );
    }
    assert!(up.received().is_empty());
}
