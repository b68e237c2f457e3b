//! The Istio manifests under `envoyfilters/`: current with their generator,
//! shaped as Istio requires, and what they insert accepted and run by Envoy
//! inside an Istio-shaped sidecar configuration (`virtualInbound` with
//! `original_dst`, per-port and catch-all filter chains).

use harness::client::Proto;
use harness::manifests::{
    apply, files, hcm, module_sha256, rewrite, sidecar_listeners, specs, RECORD_DIR, WASM_DIR,
};
use harness::paths::workspace_root;
use harness::tap::read_records;
use harness::tcp::echo_then_close;
use harness::{header_values, Bootstrap, Envoy, Request, TcpEcho, Upstream};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

fn manifest_files() -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![workspace_root().join("envoyfilters")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("envoyfilters/") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

fn load(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("read manifest");
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn without_hashes(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("sha256: ") {
            Some(at) => format!("{}sha256: <hash>", &l[..at]),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Exactly what the generator writes for the modules in `dist/`, hashes
/// included: the toolchain and wasm-opt are pinned and source paths
/// remapped, so every clean build gives the modules the manifests name.
#[test]
fn manifests_are_current() {
    let root = workspace_root();
    let sha256 = |m: &str| module_sha256(m).unwrap_or_else(|e| panic!("{e}"));
    for (path, text) in files(&sha256) {
        let on_disk = std::fs::read_to_string(root.join("envoyfilters").join(&path))
            .unwrap_or_else(|e| panic!("envoyfilters/{path}: {e} (run `make manifests`)"));
        assert_eq!(
            without_hashes(&on_disk),
            without_hashes(&text),
            "envoyfilters/{path} is stale: run `make manifests`"
        );
        assert!(
            on_disk == text,
            "envoyfilters/{path} names other modules than dist/ holds: after a change to a filter run \
             `make manifests`; otherwise dist/ was built with another toolchain or wasm-opt (WASM_OPT)"
        );
    }
}

fn files_generated_yaml() -> usize {
    files(&|_| String::new())
        .iter()
        .filter(|(p, _)| p.ends_with(".yaml"))
        .count()
}

fn is_dns1123(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

#[test]
fn every_manifest_has_what_istio_requires() {
    let files = manifest_files();
    let generated = files_generated_yaml();
    assert_eq!(
        files.len(),
        generated,
        "every YAML under envoyfilters/ is generated"
    );
    for path in files {
        let m = load(&path);
        let at = path.display();
        assert!(
            is_dns1123(m["metadata"]["name"].as_str().unwrap_or("")),
            "{at}: metadata.name"
        );
        let spec = &m["spec"];
        match (m["apiVersion"].as_str(), m["kind"].as_str()) {
            (Some("networking.istio.io/v1alpha3"), Some("EnvoyFilter")) => {
                assert!(
                    spec["workloadSelector"]["labels"]
                        .as_object()
                        .is_some_and(|l| !l.is_empty()),
                    "{at}: selector"
                );
                let patches = spec["configPatches"].as_array().expect("configPatches");
                assert!(!patches.is_empty(), "{at}");
                for p in patches {
                    assert!(
                        ["HTTP_FILTER", "NETWORK_FILTER"]
                            .contains(&p["applyTo"].as_str().unwrap_or("")),
                        "{at}: applyTo"
                    );
                    assert!(
                        ["SIDECAR_INBOUND", "GATEWAY"]
                            .contains(&p["match"]["context"].as_str().unwrap_or("")),
                        "{at}: context"
                    );
                    assert!(
                        p["match"]["listener"]["filterChain"]["filter"]["name"].is_string(),
                        "{at}: match"
                    );
                    assert!(
                        ["INSERT_BEFORE", "MERGE"]
                            .contains(&p["patch"]["operation"].as_str().unwrap_or("")),
                        "{at}: operation"
                    );
                    let typed = &p["patch"]["value"]["typed_config"];
                    assert!(
                        typed["@type"]
                            .as_str()
                            .is_some_and(|t| t.starts_with("type.googleapis.com/envoy.")),
                        "{at}: @type"
                    );
                    if let Some(remote) = typed["config"]["vm_config"]["code"].get("remote") {
                        assert!(
                            is_sha256(remote["sha256"].as_str().unwrap_or("")),
                            "{at}: sha256"
                        );
                        assert!(
                            remote["http_uri"]["uri"]
                                .as_str()
                                .is_some_and(|u| u.starts_with("https://")),
                            "{at}"
                        );
                        assert!(
                            remote["http_uri"]["cluster"].is_string()
                                && remote["http_uri"]["timeout"].is_string(),
                            "{at}"
                        );
                    }
                    if let Some(config) = typed.get("config") {
                        let plugin: Value = serde_json::from_str(
                            config["configuration"]["value"].as_str().unwrap(),
                        )
                        .expect("plugin JSON");
                        assert!(plugin.is_object(), "{at}");
                        assert_eq!(
                            config["vm_config"]["runtime"], "envoy.wasm.runtime.v8",
                            "{at}"
                        );
                    }
                }
            }
            (Some("extensions.istio.io/v1alpha1"), Some("WasmPlugin")) => {
                assert!(
                    spec["url"]
                        .as_str()
                        .is_some_and(|u| u.starts_with("oci://")),
                    "{at}: url"
                );
                assert!(
                    is_sha256(spec["sha256"].as_str().unwrap_or("")),
                    "{at}: sha256"
                );
                assert!(
                    ["AUTHN", "AUTHZ", "STATS", "UNSPECIFIED_PHASE"]
                        .contains(&spec["phase"].as_str().unwrap_or("")),
                    "{at}: phase"
                );
                assert!(
                    ["FAIL_OPEN", "FAIL_CLOSE"]
                        .contains(&spec["failStrategy"].as_str().unwrap_or("")),
                    "{at}"
                );
                assert!(
                    ["HTTP", "NETWORK"].contains(&spec["type"].as_str().unwrap_or("")),
                    "{at}: type"
                );
                assert!(
                    spec["selector"]["matchLabels"]
                        .as_object()
                        .is_some_and(|l| !l.is_empty()),
                    "{at}"
                );
                assert!(
                    spec["pluginConfig"].is_object() && spec["priority"].is_i64(),
                    "{at}"
                );
            }
            other => panic!("{at}: unexpected {other:?}"),
        }
    }
    // Failure policy: the filters that enforce or strip fail closed, the taps open.
    for spec in specs() {
        let m = load(&workspace_root().join(format!("envoyfilters/{}.yaml", spec.filter)));
        let fail_open =
            &m["spec"]["configPatches"][0]["patch"]["value"]["typed_config"]["config"]["fail_open"];
        assert_eq!(
            fail_open,
            &json!(spec.filter.starts_with("tap_")),
            "{}",
            spec.filter
        );
    }
    for filter in harness::MODULES {
        let docker = std::fs::read_to_string(
            workspace_root().join(format!("envoyfilters/oci/{filter}.Dockerfile")),
        )
        .unwrap();
        assert!(
            docker.contains("FROM scratch")
                && docker.contains(&format!("COPY dist/{filter}.wasm ./plugin.wasm"))
        );
    }
}

/// Every sidecar manifest applied together (in priority order) to an
/// Istio-shaped sidecar, the gateway manifest to a gateway listener: Envoy
/// validates it, starts, and every filter acts on real traffic.
#[test]
fn istio_shaped_sidecar_runs_every_manifest() {
    sidecar_runs(&[
        "peer_metadata",
        "l7_policy",
        "cf_headers",
        "tap_http",
        "tap_tcp",
    ]);
}

/// The same with `suite.yaml` in place of the four HTTP filters' manifests.
#[test]
fn istio_shaped_sidecar_runs_the_suite_manifest() {
    sidecar_runs(&["suite", "tap_tcp"]);
}

fn sidecar_runs(filters: &[&str]) {
    let app = Upstream::start();
    let echo = TcpEcho::start();
    let mut manifests: Vec<Value> = filters
        .iter()
        .map(|f| load(&workspace_root().join(format!("envoyfilters/{f}.yaml"))))
        .collect();
    manifests.sort_by_key(|m| m["spec"]["priority"].as_i64());
    let dist = format!("{}/", workspace_root().join("dist").display());
    let rewrites = [
        (format!("{WASM_DIR}/"), dist),
        (format!("{RECORD_DIR}/"), "@SCRATCH@/".to_string()),
    ];
    let inbound = sidecar_listeners(&manifests, &rewrites);
    let mut gateway = vec![json!({
        "name": "gateway",
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
        "filter_chains": [{"filters": [hcm("outbound_0.0.0.0_8080", "inbound|8080||")]}]
    })];
    apply(
        &mut gateway,
        &load(&workspace_root().join("envoyfilters/cf_headers-gateway.yaml")),
    );
    let mut bootstrap = Bootstrap::new(app.port())
        .cluster("inbound|8080||", app.port())
        .cluster("inbound|9000||", echo.port())
        .node_metadata(json!({"LABELS": {
            "app": "my-app",
            "cloudfoundry.org/app_guid": "eb1534db-8765-430d-adfe-77fd1a8e45a9",
            "cloudfoundry.org/process_type": "web",
            "cloudfoundry.org/org_guid": "04a73274-9280-4b99-9abc-e44e3ff4a74e",
            "cloudfoundry.org/space_guid": "8d18b884-729c-4239-9b88-39c4964a3f86"
        }}));
    for listener in inbound.into_iter().chain(rewrite(gateway, &rewrites)) {
        bootstrap = bootstrap.raw_listener(listener);
    }
    validate(&bootstrap);
    let envoy = Envoy::start(&bootstrap);

    // GET passes the policy; the app sees CF identity and the peer verdict.
    for proto in [Proto::H1, Proto::H2] {
        let response = Request::get("/hello").send(envoy.addr("virtualInbound"), proto);
        assert_eq!(response.status, 200, "{proto:?}");
        let got = app.last();
        assert_eq!(
            got.header("cf-app-id"),
            [&b"eb1534db-8765-430d-adfe-77fd1a8e45a9"[..]]
        );
        assert_eq!(got.header("x-peer-verified"), [&b"false"[..]]);
    }
    // POST is not in the shipped rules: the policy answers, fail-closed filters work.
    let denied = Request::new("POST", "/hello").send(envoy.addr("virtualInbound"), Proto::H1);
    assert_eq!(
        (denied.status, denied.body_text().as_str()),
        (403, "Access denied\r\n")
    );
    let records = read_records(&envoy.scratch().join("tap_http.jsonl"), 3);
    assert_eq!(records.len(), 3);
    assert_eq!(
        echo_then_close(envoy.addr("virtualInboundTcp"), b"ping"),
        b"ping"
    );
    let tcp = read_records(&envoy.scratch().join("tap_tcp.jsonl"), 1);
    assert!(tcp[0]["socket_buffered_trace"]["events"].is_array());
    // The gateway stamps identity by host.
    let via_gateway = Request::get("/")
        .authority("my-app.apps.example.com")
        .send(envoy.addr("gateway"), Proto::H1);
    assert_eq!(via_gateway.status, 200);
    assert_eq!(
        header_values(&app.last().headers, "cf-app-id"),
        [&b"00000000-0000-0000-0000-000000000000"[..]]
    );
}

/// `envoy --mode validate` on the configuration.
fn validate(bootstrap: &Bootstrap) {
    if let Err(log) = Envoy::validate_bootstrap(bootstrap) {
        panic!("envoy --mode validate refused the sidecar:\n{log}");
    }
}
