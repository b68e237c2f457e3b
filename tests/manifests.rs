//! The Istio manifests under `envoyfilters/`: current with their generator,
//! shaped as Istio requires, and what they insert accepted and run by Envoy
//! inside an Istio-shaped sidecar configuration (`virtualInbound` with
//! `original_dst`, per-port and catch-all filter chains).

use harness::client::Proto;
use harness::istio::as_wasm_plugin;
use harness::paths::{venv_tool, workspace_root};
use harness::sidecar::{apply, hcm, load_manifests, rewrite, sidecar_listeners};
use harness::tap::read_records;
use harness::tcp::echo_then_close;
use harness::{header_values, Bootstrap, Envoy, Request, TcpEcho, Upstream};
use manifests::{
    files, module_bytes, module_cluster, module_sha256, specs, ISTIO_CRDS, MODULE_HOST, RECORD_DIR,
    SYSTEM_CA_BUNDLE, TCP_PORT, WASM_DIR,
};
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

/// The one object in a manifest file.
fn load(path: &Path) -> Value {
    let mut all = load_manifests(path);
    assert_eq!(all.len(), 1, "{}", path.display());
    all.remove(0)
}

/// The text with module hashes, image digests and inline modules masked.
fn without_hashes(text: &str) -> String {
    text.lines()
        .map(|l| {
            for key in ["sha256: ", "inline_bytes: "] {
                if let Some(at) = l.find(key) {
                    return format!("{}{key}<module>", &l[..at]);
                }
            }
            l.to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn dist(module: &str) -> Vec<u8> {
    module_bytes(module).unwrap_or_else(|e| panic!("{e}"))
}

/// Exactly what the generator writes for the modules in `dist/`, hashes
/// included: the toolchain and wasm-opt are pinned and source paths
/// remapped, so every clean build gives the modules the manifests name.
#[test]
fn manifests_are_current() {
    let root = workspace_root();
    for (path, text) in files(&dist).unwrap() {
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

/// The generated examples (`examples/<filter>/` of each filter without a
/// hand-written one) are what the generator writes now.
#[test]
fn generated_examples_are_current() {
    let root = workspace_root();
    for (path, text) in manifests::example_files().unwrap() {
        let on_disk = std::fs::read_to_string(root.join(&path))
            .unwrap_or_else(|e| panic!("{path}: {e} (run `make manifests`)"));
        assert!(on_disk == text, "{path} is stale: run `make manifests`");
    }
}

fn files_generated_yaml() -> usize {
    files(&|_| Vec::new())
        .unwrap()
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
    for (path, m) in files
        .iter()
        .flat_map(|p| load_manifests(p).into_iter().map(move |m| (p, m)))
    {
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
                                .is_some_and(|u| u.starts_with(&format!("http://{MODULE_HOST}/"))),
                            "{at}"
                        );
                        assert!(
                            remote["http_uri"]["cluster"] == module_cluster().as_str()
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
                    spec["pluginConfig"].is_object() && spec["priority"].is_i64(),
                    "{at}"
                );
            }
            (Some("extensions.istio.io/v1alpha1"), Some("TrafficExtension")) => {
                let wasm = &spec["wasm"];
                assert!(
                    wasm["url"]
                        .as_str()
                        .is_some_and(|u| u.starts_with("oci://")),
                    "{at}: url"
                );
                assert!(
                    is_sha256(wasm["sha256"].as_str().unwrap_or("")),
                    "{at}: sha256"
                );
                assert!(
                    wasm["pluginConfig"].is_object() && spec["priority"].is_i64(),
                    "{at}"
                );
                // TrafficExtension's phases are not WasmPlugin's names
                // (UNSPECIFIED, not UNSPECIFIED_PHASE): ours name one.
                assert!(
                    ["AUTHN", "AUTHZ", "STATS"].contains(&spec["phase"].as_str().unwrap_or("")),
                    "{at}: phase"
                );
            }
            (Some("networking.istio.io/v1beta1"), Some("ServiceEntry" | "DestinationRule")) => {}
            other => panic!("{at}: unexpected {other:?}"),
        }
    }
    // Failure policy (envoyfilters/README.md): the taps fail open in every
    // form; the filters that enforce or strip headers fail closed where the
    // form claims releases without FAIL_RELOAD (EnvoyFilter from 1.14, only
    // the legacy `fail_open`, never `failure_policy`; WasmPlugin from 1.20),
    // and reload where every release it claims has it (TrafficExtension).
    let root = workspace_root().join("envoyfilters");
    for spec in specs().unwrap() {
        let f = spec.filter;
        // Observers fail open; the rest closed (or reload).
        let tap = spec.fail_open;
        let mut envoy_filters = vec![format!("{f}.yaml"), format!("remote/{f}.yaml")];
        let mut plugins = vec![format!("{f}.yaml")];
        if f == "cf_headers" {
            envoy_filters.push(format!("{f}-gateway.yaml"));
            plugins.push(format!("{f}-gateway.yaml"));
        }
        for file in &envoy_filters {
            let m = load(&root.join(file));
            let config = &m["spec"]["configPatches"][0]["patch"]["value"]["typed_config"]["config"];
            assert_eq!(config["fail_open"], json!(tap), "{file}");
            assert!(config.get("failure_policy").is_none(), "{file}");
        }
        for file in &plugins {
            let plugin = load(&root.join("wasmplugin").join(file));
            let want = if tap { "FAIL_OPEN" } else { "FAIL_CLOSE" };
            assert_eq!(plugin["spec"]["failStrategy"], want, "wasmplugin/{file}");
            let extension = load(&root.join("trafficextension").join(file));
            let want = if tap { "FAIL_OPEN" } else { "FAIL_RELOAD" };
            assert_eq!(
                extension["spec"]["wasm"]["failStrategy"], want,
                "trafficextension/{file}"
            );
        }
    }
}

/// For `oci://` URLs Istio compares `sha256` with the digest of the image
/// manifest it pulled (istio/istio pkg/wasm/imagefetcher.go, cache.go); on a
/// mismatch a FAIL_CLOSE plugin never runs (pkg/wasm/convert.go: its update
/// is rejected, from 1.25 replaced by a deny-all filter). So every
/// WasmPlugin carries the digest of the image `make oci` builds from
/// `dist/`, never the module's own hash; the remote forms carry the module's.
#[test]
fn wasmplugins_name_the_image_digest_and_remote_forms_the_module_hash() {
    let mut checked = 0;
    for path in manifest_files() {
        let m = load_manifests(&path).remove(0);
        let at = path.display();
        let plugin = match m["kind"].as_str() {
            Some("WasmPlugin") => Some(&m["spec"]),
            Some("TrafficExtension") => Some(&m["spec"]["wasm"]),
            _ => None,
        };
        if let Some(plugin) = plugin {
            let url = plugin["url"].as_str().expect("url");
            let module = url
                .trim_start_matches("oci://ghcr.io/example/")
                .split(':')
                .next()
                .expect("module");
            let bytes = dist(module);
            let digest = oci_layout::manifest_digest(&bytes);
            assert_eq!(
                plugin["sha256"].as_str().map(|h| format!("sha256:{h}")),
                Some(digest),
                "{at}: sha256 must be the image manifest digest of {module} (make manifests)"
            );
            checked += 1;
        }
        if let Some(patches) = m["spec"]["configPatches"].as_array() {
            for p in patches {
                let code = &p["patch"]["value"]["typed_config"]["config"]["vm_config"]["code"];
                if let Some(remote) = code.get("remote") {
                    let uri = remote["http_uri"]["uri"].as_str().expect("uri");
                    let module = uri
                        .rsplit('/')
                        .next()
                        .and_then(|f| f.strip_suffix(".wasm"))
                        .expect("module");
                    assert_eq!(
                        remote["sha256"].as_str(),
                        Some(module_sha256(module).expect("dist").as_str()),
                        "{at}"
                    );
                    checked += 1;
                }
                if let Some(inline) = code["local"]["inline_bytes"].as_str() {
                    use base64::Engine;
                    let name = p["patch"]["value"]["name"].as_str().expect("name");
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(inline)
                        .expect("base64");
                    assert!(
                        bytes == dist(name),
                        "{at}: inline module is dist/{name}.wasm"
                    );
                    checked += 1;
                }
            }
        }
    }
    // A WasmPlugin and a TrafficExtension per module and for the gateway, a
    // remote form per module, the gateway's inline module.
    let modules = specs().unwrap().len();
    assert_eq!(checked, (modules + 1) * 2 + modules + 1);
}

/// The Istio versions a manifest claims in its header ("Istio 1.20 and later").
fn claimed_versions(path: &Path) -> Vec<&'static str> {
    let text = std::fs::read_to_string(path).expect("manifest");
    let header = text.lines().nth(1).unwrap_or("");
    let at = header
        .find("(Istio 1.")
        .unwrap_or_else(|| panic!("{}: its header names no Istio version", path.display()));
    let minor: u32 = header[at + "(Istio 1.".len()..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|m| m.parse().ok())
        .expect("minor version");
    assert!(
        header[at..].starts_with(&format!("(Istio 1.{minor} and later)")),
        "{}",
        path.display()
    );
    manifests::crds_since(minor)
}

/// `tests/validate_k8s.py` (jsonschema and CEL): the API server's strict
/// validation against the CRDs of `version`. Returns the error lines.
fn crd_errors(version: &str, manifests: &[PathBuf]) -> Vec<String> {
    let crds = workspace_root().join(format!("tests/fixtures/istio-crds/{version}.yaml"));
    let out = std::process::Command::new(venv_tool("python"))
        .arg(workspace_root().join("tests/validate_k8s.py"))
        .arg(crds)
        .args(manifests)
        .output()
        .expect("run tests/validate_k8s.py (make test-tools)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.code().is_some()
            && stdout.lines().count() >= manifests.len()
            && out.stderr.is_empty(),
        "validate_k8s.py failed to run:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .filter(|l| !l.starts_with("ok "))
        .map(str::to_string)
        .collect()
}

/// Every manifest validates, unknown fields being errors, against the real
/// CRDs of every Istio release it claims; every release is claimed by some.
/// Each header says which of them it was checked against, up to the newest.
#[test]
fn every_manifest_validates_against_the_istio_versions_it_claims() {
    let files = manifest_files();
    for file in &files {
        let claimed = claimed_versions(file);
        let text = std::fs::read_to_string(file).expect("manifest");
        let checked = text.lines().nth(2).unwrap_or("");
        let (first, newest) = (claimed[0], claimed[claimed.len() - 1]);
        let range = if first == newest {
            format!(" CRD of Istio {newest}, the newest")
        } else {
            format!(" CRDs of Istio {first} to {newest}, the newest")
        };
        assert!(
            checked.starts_with("# ") && checked.contains(&range),
            "{}: its third line names the releases checked: {checked}",
            file.display()
        );
    }
    for version in ISTIO_CRDS {
        let claiming: Vec<PathBuf> = files
            .iter()
            .filter(|f| claimed_versions(f).contains(&version))
            .cloned()
            .collect();
        assert!(!claiming.is_empty(), "no manifest claims Istio {version}");
        let errors = crd_errors(version, &claiming);
        assert!(errors.is_empty(), "Istio {version}:\n{}", errors.join("\n"));
    }
}

/// The WasmPlugin forms use `match` (Istio 1.16), `failStrategy` (1.19) and
/// `type` (1.20): Istio 1.14's CRD refuses them.
#[test]
fn wasmplugin_forms_are_refused_by_istio_1_14() {
    let plugins: Vec<PathBuf> = manifest_files()
        .into_iter()
        .filter(|f| load_manifests(f)[0]["kind"] == "WasmPlugin")
        .collect();
    // One per module, and the gateway's.
    assert_eq!(plugins.len(), specs().unwrap().len() + 1);
    let errors = crd_errors("1.14.6", &plugins);
    assert_eq!(errors.len(), plugins.len(), "{errors:#?}");
    for e in errors {
        assert!(
            e.contains("were unexpected") && e.contains("'failStrategy'") && e.contains("'type'"),
            "{e}"
        );
    }
}

/// `TrafficExtension` is new in Istio 1.30: 1.29's CRDs do not serve it, so
/// the forms are for 1.30 and later only (their headers say so).
#[test]
fn trafficextension_forms_are_not_served_before_istio_1_30() {
    let extensions: Vec<PathBuf> = manifest_files()
        .into_iter()
        .filter(|f| load_manifests(f)[0]["kind"] == "TrafficExtension")
        .collect();
    // One per module, and the gateway's.
    assert_eq!(extensions.len(), specs().unwrap().len() + 1);
    for file in &extensions {
        assert_eq!(claimed_versions(file), ["1.30.3"], "{}", file.display());
        let header = std::fs::read_to_string(file).expect("manifest");
        assert!(
            header.contains("TrafficExtension exists from Istio 1.30 only"),
            "{}",
            file.display()
        );
    }
    let errors = crd_errors("1.29.6", &extensions);
    assert_eq!(errors.len(), extensions.len(), "{errors:#?}");
    for e in errors {
        assert!(
            e.contains(
                "apiVersion extensions.istio.io/v1alpha1 kind TrafficExtension is not served"
            ),
            "{e}"
        );
    }
    assert!(crd_errors("1.30.3", &extensions).is_empty());
}

/// `FAIL_RELOAD`, which the TrafficExtension forms use for the filters
/// that enforce: Istio 1.28's WasmPlugin CRD has it and 1.24's refuses it,
/// so a WasmPlugin form, which claims 1.20, cannot carry it (README: edit
/// it in on 1.25 and later); every TrafficExtension CRD has it.
#[test]
fn fail_reload_is_refused_where_the_forms_do_not_use_it() {
    let dir = workspace_root().join(format!("target/fail-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let mut plugin = load(&workspace_root().join("envoyfilters/wasmplugin/l7_policy.yaml"));
    plugin["spec"]["failStrategy"] = json!("FAIL_RELOAD");
    let path = dir.join("l7_policy.yaml");
    std::fs::write(&path, serde_yaml::to_string(&plugin).expect("yaml")).expect("write");
    let refused = crd_errors("1.24.0", std::slice::from_ref(&path));
    assert!(
        refused
            .iter()
            .any(|e| e.contains("failStrategy") && e.contains("is not one of")),
        "{refused:#?}"
    );
    for version in ["1.28.0", "1.29.6", "1.30.3"] {
        let errors = crd_errors(version, std::slice::from_ref(&path));
        assert!(errors.is_empty(), "Istio {version}: {errors:#?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The validator refuses what the API server refuses: unknown fields,
/// values outside an enum, wrong types, and the CRDs' CEL rules.
#[test]
fn crd_validation_refuses_what_the_api_server_refuses() {
    let dir = workspace_root().join(format!("target/crd-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let plugin = load(&workspace_root().join("envoyfilters/wasmplugin/l7_policy.yaml"));
    let extension = load(&workspace_root().join("envoyfilters/trafficextension/l7_policy.yaml"));
    let filter = load(&workspace_root().join("envoyfilters/l7_policy.yaml"));
    let broken = |name: &str, base: &Value, edit: &dyn Fn(&mut Value)| -> PathBuf {
        let mut doc = base.clone();
        edit(&mut doc);
        let path = dir.join(format!("{name}.yaml"));
        std::fs::write(&path, serde_yaml::to_string(&doc).expect("yaml")).expect("write");
        path
    };
    let cases: Vec<(&str, PathBuf, &str)> = vec![
        (
            "1.20.0",
            broken("unknown-field", &filter, &|d| {
                d["spec"]["workloadSelector"]["label"] = json!({"a": "b"})
            }),
            "'label' was unexpected",
        ),
        (
            "1.20.0",
            broken("bad-phase", &plugin, &|d| {
                d["spec"]["phase"] = json!("AUTHORIZATION")
            }),
            "is not one of",
        ),
        (
            "1.24.0",
            broken("bad-type", &plugin, &|d| {
                d["spec"]["priority"] = json!("high")
            }),
            "is not of type",
        ),
        (
            "1.28.0",
            broken("bad-scheme", &plugin, &|d| {
                d["spec"]["url"] = json!("ftp://example.com/x.wasm")
            }),
            "url must have schema one of",
        ),
        (
            "1.24.0",
            broken("two-targets", &plugin, &|d| {
                d["spec"]["targetRefs"] = json!([{"kind": "Service", "group": "", "name": "x"}])
            }),
            "only one of targetRefs or selector can be set",
        ),
        // TrafficExtension: a field it does not have, in `wasm` and at the
        // top (where a WasmPlugin keeps `url`), WasmPlugin's phase names,
        // both kinds of extension at once.
        (
            "1.30.3",
            broken("te-unknown-field", &extension, &|d| {
                d["spec"]["wasm"]["failOpen"] = json!(true)
            }),
            "'failOpen' was unexpected",
        ),
        (
            "1.30.3",
            broken("te-flat-url", &extension, &|d| {
                d["spec"]["url"] = d["spec"]["wasm"]["url"].clone()
            }),
            "'url' was unexpected",
        ),
        (
            "1.30.3",
            broken("te-wasmplugin-phase", &extension, &|d| {
                d["spec"]["phase"] = json!("UNSPECIFIED_PHASE")
            }),
            "is not one of",
        ),
        (
            "1.30.3",
            broken("te-wasm-and-lua", &extension, &|d| {
                d["spec"]["lua"] = json!({"inlineCode": "function envoy_on_request(h) end"})
            }),
            "exactly one of wasm or lua must be set",
        ),
    ];
    for (version, path, expected) in cases {
        let errors = crd_errors(version, std::slice::from_ref(&path));
        assert!(
            errors.iter().any(|e| e.contains(expected)),
            "Istio {version} {}: expected an error containing {expected:?}, got {errors:#?}",
            path.display()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
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
        .cluster(&format!("inbound|{TCP_PORT}||"), echo.port())
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

/// The filter names of every HTTP connection manager, and the network
/// filters of every chain, in `listener`.
fn chains(listener: &Value) -> (Vec<Vec<String>>, Vec<Vec<String>>) {
    let names = |list: &Value| -> Vec<String> {
        list.as_array()
            .expect("filters")
            .iter()
            .map(|f| f["name"].as_str().expect("name").to_string())
            .collect()
    };
    let (mut http, mut network) = (Vec::new(), Vec::new());
    for chain in listener["filter_chains"].as_array().expect("chains") {
        for f in chain["filters"].as_array().expect("filters") {
            if f["name"] == "envoy.filters.network.http_connection_manager" {
                http.push(names(&f["typed_config"]["http_filters"]));
            }
        }
        network.push(names(&chain["filters"]));
    }
    (http, network)
}

fn position(list: &[String], name: &str) -> usize {
    list.iter()
        .position(|n| n == name)
        .unwrap_or_else(|| panic!("{name} missing from {list:?}"))
}

fn last_position(list: &[String], name: &str) -> usize {
    list.iter()
        .rposition(|n| n == name)
        .unwrap_or_else(|| panic!("{name} missing from {list:?}"))
}

/// Our filters in one chain, in order.
fn ours<'a>(list: &'a [String], of: &[&str]) -> Vec<&'a str> {
    list.iter()
        .map(String::as_str)
        .filter(|n| of.contains(n))
        .collect()
}

const HTTP_ORDER: [&str; 4] = ["tap_http", "peer_metadata", "l7_policy", "cf_headers"];

/// A `WasmPlugin` as Istio 1.30 turns it into a `TrafficExtension`
/// (istio/istio pilot/pkg/config/kube/extensions/translate.go,
/// `translateWasmPlugin`, read at istio.io/istio
/// v0.0.0-20260827124520-eed52ebb66ad): selector, targetRefs (the deprecated
/// targetRef merged in), phase (the same numbers: UNSPECIFIED_PHASE becomes
/// UNSPECIFIED), priority and match at the top; the module and what the VM
/// is told under `wasm`; verificationKey dropped. Istio names the result
/// `<name>~istio-translated-wasmplugin`, a name no object can have; here it
/// keeps its own, to compare with the form.
fn translate_wasm_plugin(plugin: &Value) -> Value {
    const TOP: [&str; 4] = ["selector", "targetRefs", "priority", "match"];
    const WASM: [&str; 9] = [
        "url",
        "sha256",
        "imagePullPolicy",
        "imagePullSecret",
        "pluginConfig",
        "pluginName",
        "failStrategy",
        "vmConfig",
        "type",
    ];
    let spec = plugin["spec"].as_object().expect("spec");
    let mut top = serde_json::Map::new();
    let mut wasm = serde_json::Map::new();
    for (key, value) in spec {
        match key.as_str() {
            k if TOP.contains(&k) => {
                top.insert(key.clone(), value.clone());
            }
            k if WASM.contains(&k) => {
                wasm.insert(key.clone(), value.clone());
            }
            "phase" => {
                let phase = value.as_str().expect("phase");
                let phase = if phase == "UNSPECIFIED_PHASE" {
                    "UNSPECIFIED"
                } else {
                    phase
                };
                top.insert(key.clone(), json!(phase));
            }
            "targetRef" => {
                if !spec.contains_key("targetRefs") {
                    top.insert("targetRefs".to_string(), json!([value]));
                }
            }
            "verificationKey" => {}
            other => panic!("a WasmPlugin field translate.go does not know: {other}"),
        }
    }
    top.insert("wasm".to_string(), Value::Object(wasm));
    json!({
        "apiVersion": "extensions.istio.io/v1alpha1",
        "kind": "TrafficExtension",
        "metadata": plugin["metadata"],
        "spec": top
    })
}

/// Each TrafficExtension form is its WasmPlugin form as Istio 1.30
/// translates a WasmPlugin (so the two place and configure the plugin the
/// same way), except `failStrategy`: FAIL_RELOAD for the filters that
/// enforce, which every release with TrafficExtension has. The taps'
/// `-records` access log is the same object in both directories, and the
/// same patch as the EnvoyFilter forms'.
#[test]
fn trafficextension_forms_are_their_wasmplugin_forms_as_istio_translates_them() {
    let root = workspace_root().join("envoyfilters");
    let mut compared = 0;
    for path in manifest_files() {
        let Ok(file) = path.strip_prefix(root.join("wasmplugin")) else {
            continue;
        };
        let plugin = load(&path);
        let extension = load(&root.join("trafficextension").join(file));
        let at = file.display();
        if plugin["kind"] == "EnvoyFilter" {
            assert_eq!(extension, plugin, "{at}");
            let module = file
                .to_str()
                .and_then(|f| f.strip_suffix("-records.yaml"))
                .expect("a -records file");
            let form = load(&root.join(format!("{module}.yaml")));
            assert_eq!(
                extension["spec"]["configPatches"],
                json!([form["spec"]["configPatches"][1]]),
                "{at}: the EnvoyFilter form's access log"
            );
            continue;
        }
        let mut expected = translate_wasm_plugin(&plugin);
        let url = plugin["spec"]["url"].as_str().unwrap_or_default();
        let open = specs()
            .unwrap()
            .iter()
            .any(|s| s.fail_open && url.contains(&format!("/{}:", s.filter)));
        expected["spec"]["wasm"]["failStrategy"] =
            json!(if open { "FAIL_OPEN" } else { "FAIL_RELOAD" });
        assert_eq!(extension, expected, "{at}");
        assert_eq!(
            as_wasm_plugin(&extension)["spec"]["phase"],
            plugin["spec"]["phase"]
        );
        compared += 1;
    }
    // One per module, and the gateway's.
    assert_eq!(compared, specs().unwrap().len() + 1);
}

/// Each form's placement applied to a real Istio sidecar's `virtualInbound`
/// chains, as each Istio release builds them: our HTTP filters always run
/// tap_http → peer_metadata → l7_policy → cf_headers, after Istio's metadata
/// exchange (which they read) and before the router; where the forms differ
/// relative to Istio's RBAC and `istio.stats` is what envoyfilters/README.md
/// says. The TrafficExtension forms are placed like the WasmPlugin forms, in
/// the chain 1.30 builds: the order of 1.24 to 1.28, which Istio's
/// `buildHTTPConnectionManager` still builds with TrafficExtensions in their
/// place (pilot/pkg/networking/core/listener_builder.go at istio.io/istio
/// v0.0.0-20260827124520-eed52ebb66ad, read, not run).
#[test]
fn every_form_gives_the_same_order_in_a_real_sidecar() {
    use harness::istio::{real_virtual_inbound, rebuild, with_tcp_port_chain, Plugin};
    // The real listener, plus the chain Istio adds for a TCP port of the app:
    // Service port TCP_PORT to container port 5000. Istio matches a NETWORK
    // plugin's ports against the Service's port, its chain against the target.
    const TARGET_PORT: u64 = 5000;
    let service_ports = [(TARGET_PORT, u64::from(TCP_PORT))];
    let real = with_tcp_port_chain(&real_virtual_inbound(), TARGET_PORT);
    let envoyfilters = workspace_root().join("envoyfilters");
    let separate = [
        "peer_metadata",
        "l7_policy",
        "cf_headers",
        "tap_http",
        "tap_tcp",
    ];
    for minor in [14, 20, 24, 28, 30] {
        // EnvoyFilter forms: Istio's own chain, then the patches by priority.
        for set in [&separate[..], &["suite", "tap_tcp"][..]] {
            let mut manifests: Vec<Value> = set
                .iter()
                .map(|f| load(&envoyfilters.join(format!("{f}.yaml"))))
                .collect();
            manifests.sort_by_key(|m| m["spec"]["priority"].as_i64());
            let mut listeners = vec![rebuild(&real, minor, &[], false, &service_ports)];
            for m in &manifests {
                apply(&mut listeners, m);
            }
            let (http, tcp) = chains(&listeners[0]);
            let expected: Vec<&str> = if set.contains(&"suite") {
                vec!["suite"]
            } else {
                HTTP_ORDER.to_vec()
            };
            for list in &http {
                let at = format!("EnvoyFilter forms, Istio 1.{minor}: {list:?}");
                let router = position(list, "envoy.filters.http.router");
                // Right before the router, after everything Istio built.
                assert_eq!(list[router - expected.len()..router], expected[..], "{at}");
                assert!(
                    position(list, "istio.stats") < router - expected.len(),
                    "{at}"
                );
                assert!(
                    last_position(list, "envoy.filters.http.rbac") < router - expected.len(),
                    "{at}"
                );
                assert!(
                    position(list, "istio.metadata_exchange") < router - expected.len(),
                    "{at}"
                );
            }
            let tcp_chains: Vec<&Vec<String>> = tcp
                .iter()
                .filter(|l| l.last().is_some_and(|n| n.ends_with("tcp_proxy")))
                .collect();
            for list in &tcp_chains {
                let at = format!("EnvoyFilter forms, Istio 1.{minor}: {list:?}");
                assert_eq!(list[list.len() - 2], "tap_tcp", "{at}");
            }
            assert!(!http.is_empty() && !tcp_chains.is_empty());
        }
        if minor < 20 {
            continue;
        }
        // WasmPlugin forms, and from 1.30 the TrafficExtension forms: Istio
        // places them while building the chain.
        let dirs: &[&str] = if minor >= 30 {
            &["wasmplugin", "trafficextension"]
        } else {
            &["wasmplugin"]
        };
        let sets = [&separate[..], &["suite", "tap_tcp"][..]];
        for (dir, set) in dirs
            .iter()
            .flat_map(|dir| sets.iter().map(move |set| (*dir, *set)))
        {
            let plugins: Vec<Plugin> = set
                .iter()
                .map(|f| {
                    Plugin::from_manifest(
                        &as_wasm_plugin(&load(&envoyfilters.join(format!("{dir}/{f}.yaml")))),
                        f,
                    )
                })
                .collect();
            let listener = rebuild(&real, minor, &plugins, false, &service_ports);
            let (http, _) = chains(&listener);
            let expected: Vec<&str> = if set.contains(&"suite") {
                vec!["suite"]
            } else {
                HTTP_ORDER.to_vec()
            };
            for list in &http {
                let at = format!("{dir} forms, Istio 1.{minor}: {list:?}");
                assert_eq!(
                    ours(list, &[&HTTP_ORDER[..], &["suite"]].concat()),
                    expected,
                    "{at}"
                );
                let first = position(list, expected[0]);
                let last = position(list, expected[expected.len() - 1]);
                // After the metadata exchange, before istio.stats and the router.
                assert!(position(list, "istio.metadata_exchange") < first, "{at}");
                assert!(last < position(list, "istio.stats"), "{at}");
                // The policy decides after Istio's CUSTOM authorization
                // (ext_authz) and before its RBAC; CF identity comes after
                // RBAC. The tap comes before both (after CUSTOM), so their
                // denials pass through it.
                let policy = position(
                    list,
                    if set.contains(&"suite") {
                        "suite"
                    } else {
                        "l7_policy"
                    },
                );
                let rbac = last_position(list, "envoy.filters.http.rbac");
                assert!(
                    position(list, "envoy.filters.http.ext_authz") < policy,
                    "{at}"
                );
                assert!(policy < rbac, "{at}");
                if !set.contains(&"suite") {
                    assert!(rbac < position(list, "cf_headers"), "{at}");
                    let tap = position(list, "tap_http");
                    assert!(tap < rbac, "{at}");
                }
            }
            // tap_tcp: on the app's TCP port only, after Istio's network
            // RBAC and before its TCP stats; not in front of HTTP chains,
            // where no access log would write its records.
            let mut tapped_chains = 0;
            for chain in listener["filter_chains"].as_array().expect("chains") {
                let list: Vec<String> = chain["filters"]
                    .as_array()
                    .expect("filters")
                    .iter()
                    .map(|f| f["name"].as_str().expect("name").to_string())
                    .collect();
                let at = format!("{dir} forms, Istio 1.{minor}: {list:?}");
                let port = chain["filter_chain_match"]["destination_port"].as_u64();
                if port != Some(TARGET_PORT) {
                    assert!(!list.iter().any(|n| n == "tap_tcp"), "{at}");
                    continue;
                }
                let tap = position(&list, "tap_tcp");
                assert!(position(&list, "istio.metadata_exchange") < tap, "{at}");
                assert!(
                    last_position(&list, "envoy.filters.network.rbac") < tap,
                    "{at}"
                );
                assert_eq!(list[tap + 1], "istio.stats", "{at}");
                tapped_chains += 1;
            }
            assert_eq!(tapped_chains, 1, "tap_tcp on the app's TCP port's chain");
            // None of them on the app's outbound listeners.
            let outbound = rebuild(&real, minor, &plugins, true, &service_ports);
            let (http, tcp) = chains(&outbound);
            for list in http.iter().chain(&tcp) {
                assert!(
                    ours(list, &[&HTTP_ORDER[..], &["suite", "tap_tcp"]].concat()).is_empty(),
                    "{dir} forms on an outbound listener, Istio 1.{minor}: {list:?}"
                );
            }
        }
    }
}

/// The remote form with the cluster `remote/module-source.yaml` gives:
/// `outbound|80||wasm.example.com` speaking TLS with SNI `wasm.example.com`
/// and checking that name in the server's certificate. The cluster is built
/// here the way Istio translates `tls.mode: SIMPLE` with `sni` and
/// `subjectAltNames` (an `UpstreamTlsContext`), not by Istio. Envoy fetches
/// the module over TLS, checks its sha256 and runs it. The `ServiceEntry`
/// alone gives a plain cluster: the fetch goes out in the clear, which the
/// server sees.
#[test]
fn remote_form_fetches_the_module_over_tls() {
    use harness::tls::{HttpsFiles, Pki};
    let source = load_manifests(&workspace_root().join("envoyfilters/remote/module-source.yaml"));
    let rule = source
        .iter()
        .find(|d| d["kind"] == "DestinationRule")
        .expect("a DestinationRule");
    assert_eq!(rule["spec"]["host"], MODULE_HOST);
    assert_eq!(rule["spec"]["exportTo"], json!(["."]));
    let port = &rule["spec"]["trafficPolicy"]["portLevelSettings"][0];
    assert_eq!(port["port"]["number"], 80);
    assert_eq!(port["tls"]["mode"], "SIMPLE");
    assert_eq!(port["tls"]["caCertificates"], SYSTEM_CA_BUNDLE);
    let sni = port["tls"]["sni"].as_str().expect("sni");
    assert_eq!(port["tls"]["subjectAltNames"], json!([sni]));
    let entry = source
        .iter()
        .find(|d| d["kind"] == "ServiceEntry")
        .expect("a ServiceEntry");
    assert_eq!(entry["spec"]["hosts"][0], MODULE_HOST);
    assert_eq!(entry["spec"]["exportTo"], json!(["."]));
    let port = &entry["spec"]["ports"][0];
    assert_eq!(
        (&port["number"], &port["targetPort"]),
        (&json!(80), &json!(443))
    );
    assert_eq!(
        format!("outbound|{}||{MODULE_HOST}", port["number"]),
        module_cluster()
    );

    let pki = Pki::new();
    let server = HttpsFiles::start(
        &pki.host(MODULE_HOST),
        vec![("l7_policy.wasm".to_string(), dist("l7_policy"))],
    );
    let app = Upstream::start();
    let manifest = load(&workspace_root().join("envoyfilters/remote/l7_policy.yaml"));
    let rewrites = [(format!("{RECORD_DIR}/"), "@SCRATCH@/".to_string())];
    let bootstrap = |tls: bool| {
        let mut b = Bootstrap::new(app.port())
            .cluster("inbound|8080||", app.port())
            .cluster(&module_cluster(), server.port());
        if tls {
            b = b.cluster_field(&module_cluster(), "transport_socket", pki.upstream_tls(sni));
        }
        for listener in sidecar_listeners(std::slice::from_ref(&manifest), &rewrites) {
            if listener["name"] == "virtualInbound" {
                b = b.raw_listener(listener);
            }
        }
        b
    };

    let envoy = Envoy::start(&bootstrap(true));
    let allowed = Request::get("/hello").send(envoy.addr("virtualInbound"), Proto::H1);
    assert_eq!(allowed.status, 200);
    let denied = Request::new("POST", "/hello").send(envoy.addr("virtualInbound"), Proto::H2);
    assert_eq!(denied.status, 403, "the fetched policy runs");
    let seen = server.seen();
    assert!(!seen.is_empty());
    for s in &seen {
        assert_eq!(s.sni.as_deref(), Some(MODULE_HOST), "{seen:?}");
        assert_eq!(
            s.request.as_deref(),
            Some("GET /l7_policy.wasm HTTP/1.1"),
            "{seen:?}"
        );
        assert!(s.plaintext.is_none());
    }
    drop(envoy);

    // Without the DestinationRule: the request for the module leaves in the clear.
    let before = server.seen().len();
    let plain = Envoy::try_start(&bootstrap(false));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while server.seen().len() == before && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    drop(plain);
    let clear = server.seen()[before..].to_vec();
    assert!(
        clear.iter().any(|s| s
            .plaintext
            .as_ref()
            .is_some_and(|b| b.starts_with(b"GET /l7_policy.wasm HTTP/1.1"))),
        "{clear:?}"
    );
}

/// A remote form whose module does not match its sha256 (a rebuilt module,
/// a wrong digest) does what its failure policy says, as
/// envoyfilters/README.md tells: the VM is never created, so l7_policy
/// (`fail_open: false`) answers every request 503 and the tap (`fail_open:
/// true`) is left out, the app answering. Envoy fetches the module over TLS
/// as in the test above.
#[test]
fn remote_forms_with_a_wrong_sha256_fail_as_their_policy_says() {
    use harness::tls::{HttpsFiles, Pki};
    let pki = Pki::new();
    let server = HttpsFiles::start(
        &pki.host(MODULE_HOST),
        vec![
            ("l7_policy.wasm".to_string(), dist("l7_policy")),
            ("tap_http.wasm".to_string(), dist("tap_http")),
        ],
    );
    let app = Upstream::start();
    for (filter, status) in [("l7_policy", 503), ("tap_http", 200)] {
        let mut manifest =
            load(&workspace_root().join(format!("envoyfilters/remote/{filter}.yaml")));
        let code = manifest
            .pointer_mut(
                "/spec/configPatches/0/patch/value/typed_config/config/vm_config/code/remote",
            )
            .expect("remote code");
        code["sha256"] = json!(sha256_of_nothing());
        let rewrites = [(format!("{RECORD_DIR}/"), "@SCRATCH@/".to_string())];
        let mut bootstrap = Bootstrap::new(app.port())
            .cluster("inbound|8080||", app.port())
            .cluster(&module_cluster(), server.port())
            .cluster_field(
                &module_cluster(),
                "transport_socket",
                pki.upstream_tls(MODULE_HOST),
            );
        for listener in sidecar_listeners(std::slice::from_ref(&manifest), &rewrites) {
            if listener["name"] == "virtualInbound" {
                bootstrap = bootstrap.raw_listener(listener);
            }
        }
        let envoy = Envoy::start(&bootstrap);
        for proto in [Proto::H1, Proto::H2] {
            let response = Request::get("/hello").send(envoy.addr("virtualInbound"), proto);
            assert_eq!(response.status, status, "{filter} {proto:?}");
        }
        assert!(
            server
                .seen()
                .iter()
                .any(|s| s.request.as_deref() == Some(&*format!("GET /{filter}.wasm HTTP/1.1"))),
            "{filter}: the module was fetched"
        );
    }
}

/// The sha256 of no bytes: a well-formed digest no module has.
fn sha256_of_nothing() -> String {
    manifests::sha256_hex(b"")
}

/// What `istioctl analyze`'s `destinationrule.CaCertificateAnalyzer` reports
/// for a `DestinationRule` (istio/istio
/// pkg/config/analysis/analyzers/destinationrule/ca-certificates.go, read at
/// istio.io/istio v0.0.0-20260827124520-eed52ebb66ad): for TLS mode SIMPLE
/// or MUTUAL, in the rule's traffic policy (IST0128) or a port's (IST0129),
/// without `caCertificates` and without a `credentialName` in a rule that
/// has a `workloadSelector`.
fn ca_certificate_findings(rule: &Value) -> Vec<String> {
    let unverified = |tls: &Value| {
        let mode = tls["mode"].as_str().unwrap_or("");
        let has = |key: &str| tls[key].as_str().is_some_and(|v| !v.is_empty());
        (mode == "SIMPLE" || mode == "MUTUAL")
            && !has("caCertificates")
            && !(has("credentialName") && rule["spec"]["workloadSelector"].is_object())
    };
    let policy = &rule["spec"]["trafficPolicy"];
    let mut found = Vec::new();
    if unverified(&policy["tls"]) {
        found.push("IST0128".to_string());
    }
    for port in policy["portLevelSettings"].as_array().into_iter().flatten() {
        if unverified(&port["tls"]) {
            found.push(format!("IST0129 port {}", port["port"]["number"]));
        }
    }
    found
}

/// No `DestinationRule` under envoyfilters/ gives `istioctl analyze` an
/// IST0128 or IST0129 to report: the remote forms' rule names the proxy
/// image's CA bundle in `caCertificates` (the bundle Istio 1.21 and later
/// use anyway when it is left out; 1.14 to 1.20 verify nothing without it).
/// Without it, the analyzer's rule reports the port, as it did before; a
/// `credentialName` would need a `workloadSelector` too.
#[test]
fn destination_rules_leave_istioctl_analyze_no_ist0129() {
    let mut rules = 0;
    for path in manifest_files() {
        for doc in load_manifests(&path) {
            if doc["kind"] != "DestinationRule" {
                continue;
            }
            rules += 1;
            assert_eq!(
                ca_certificate_findings(&doc),
                Vec::<String>::new(),
                "{}",
                path.display()
            );
            let tls = &doc["spec"]["trafficPolicy"]["portLevelSettings"][0]["tls"];
            assert_eq!(tls["caCertificates"], SYSTEM_CA_BUNDLE);
            let mut without = doc.clone();
            let at = "/spec/trafficPolicy/portLevelSettings/0/tls";
            let tls = without.pointer_mut(at).expect("tls");
            tls.as_object_mut().expect("tls").remove("caCertificates");
            assert_eq!(ca_certificate_findings(&without), ["IST0129 port 80"]);
            let tls = without.pointer_mut(at).expect("tls");
            tls["credentialName"] = json!("wasm-modules-ca");
            assert_eq!(ca_certificate_findings(&without), ["IST0129 port 80"]);
            without["spec"]["workloadSelector"] = json!({"matchLabels": {"app": "my-app"}});
            assert!(ca_certificate_findings(&without).is_empty());
        }
    }
    assert_eq!(rules, 1);
}

/// What envoyfilters/README.md tells users of Istio 1.25 and later (Envoy
/// 1.33 and later) to do for FAIL_RELOAD in an `EnvoyFilter` form: replace
/// `fail_open: false` with `failure_policy: FAIL_RELOAD`. Envoy accepts the
/// edited filter; with the taps' `fail_open: true` left in beside a policy
/// it refuses the configuration, which is why the shipped forms, which
/// claim Istio 1.14, keep the older field alone.
#[test]
fn envoyfilter_forms_take_failure_policy_on_newer_envoys() {
    let dist = format!("{}/", workspace_root().join("dist").display());
    let rewrites = [
        (format!("{WASM_DIR}/"), dist),
        (format!("{RECORD_DIR}/"), "@SCRATCH@/".to_string()),
    ];
    let edited = |file: &str, edit: &dyn Fn(&mut Value)| -> Bootstrap {
        let mut manifest = load(&workspace_root().join("envoyfilters").join(file));
        edit(&mut manifest["spec"]["configPatches"][0]["patch"]["value"]["typed_config"]["config"]);
        let mut bootstrap = Bootstrap::new(1)
            .cluster("inbound|8080||", 1)
            .cluster(&format!("inbound|{TCP_PORT}||"), 1);
        for listener in sidecar_listeners(&[manifest], &rewrites) {
            bootstrap = bootstrap.raw_listener(listener);
        }
        bootstrap
    };
    let reload = edited("l7_policy.yaml", &|c| {
        assert_eq!(c["fail_open"], false);
        c.as_object_mut().expect("config").remove("fail_open");
        c["failure_policy"] = json!("FAIL_RELOAD");
    });
    validate(&reload);
    let both = edited("tap_http.yaml", &|c| {
        assert_eq!(c["fail_open"], true);
        c["failure_policy"] = json!("FAIL_OPEN");
    });
    let refused = Envoy::validate_bootstrap(&both).expect_err("fail_open with failure_policy");
    assert!(
        refused.contains("only one of fail_open or failure_policy can be set"),
        "{refused}"
    );
}

/// A `WasmPlugin` as Istio hands it to Envoy (pilot/pkg/model/extensions.go,
/// `buildPluginConfig`): named `<namespace>.<name>`, root id `pluginName`
/// (none in ours), `pluginConfig` as a JSON string and no configuration at
/// all when it is empty, failure policy from `failStrategy`; the module as
/// the istio-agent keeps it, a local file. A `TrafficExtension` the same
/// way from its `wasm`, its `failStrategy` becoming Envoy's `failure_policy`
/// (`buildWasmConfig` at istio.io/istio v0.0.0-20260827124520-eed52ebb66ad:
/// FAIL_OPEN, FAIL_CLOSE or unset as FAIL_CLOSED, FAIL_RELOAD), where the
/// releases before 1.25 set the older `fail_open`.
fn as_istio_builds(plugin: &Value, module: &str) -> Value {
    let extension = plugin["kind"] == "TrafficExtension";
    let spec = if extension {
        &plugin["spec"]["wasm"]
    } else {
        &plugin["spec"]
    };
    let name = format!(
        "{}.{}",
        plugin["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default"),
        plugin["metadata"]["name"].as_str().expect("name")
    );
    let mut config = json!({
        "name": name,
        "root_id": spec["pluginName"].as_str().unwrap_or(""),
        "vm_config": {
            "runtime": "envoy.wasm.runtime.v8",
            "code": {"local": {"filename": workspace_root().join(format!("dist/{module}.wasm"))}}
        }
    });
    if extension {
        config["failure_policy"] = json!(match spec["failStrategy"].as_str() {
            Some("FAIL_OPEN") => "FAIL_OPEN",
            Some("FAIL_RELOAD") => "FAIL_RELOAD",
            None | Some("FAIL_CLOSE") => "FAIL_CLOSED",
            Some(other) => panic!("failStrategy {other}"),
        });
    } else {
        config["fail_open"] = json!(spec["failStrategy"] == "FAIL_OPEN");
    }
    if spec["pluginConfig"]
        .as_object()
        .is_some_and(|c| !c.is_empty())
    {
        config["configuration"] = json!({
            "@type": "type.googleapis.com/google.protobuf.StringValue",
            "value": spec["pluginConfig"].to_string()
        });
    }
    json!({"name": name, "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
        "config": config
    }})
}

/// The HTTP `WasmPlugin` and `TrafficExtension` forms (with the taps'
/// `-records` access log) placed by phase and priority into an Istio-shaped
/// sidecar and run the way Istio configures them: the peer_metadata plugin,
/// whose `pluginConfig` is empty, starts without any configuration, and the
/// TrafficExtensions' filters with `failure_policy: FAIL_RELOAD`; over
/// HTTP/1.1 and HTTP/2 the app gets the CF identity and the peer verdict,
/// the policy denies a POST, and the tap records.
#[test]
fn wasmplugin_forms_run_as_istio_configures_them() {
    use harness::istio::{http_filters, Plugin};
    let envoyfilters = workspace_root().join("envoyfilters");
    let sets = [&HTTP_ORDER[..], &["suite"][..]];
    for (dir, set) in ["wasmplugin", "trafficextension"]
        .into_iter()
        .flat_map(|dir| sets.iter().map(move |set| (dir, *set)))
    {
        let app = Upstream::start();
        let manifests: Vec<(&str, Value)> = set
            .iter()
            .map(|f| (*f, load(&envoyfilters.join(format!("{dir}/{f}.yaml")))))
            .collect();
        let plugins: Vec<Plugin> = manifests
            .iter()
            .map(|(f, m)| Plugin::from_manifest(&as_wasm_plugin(m), f))
            .collect();
        let router = json!({"name": "envoy.filters.http.router", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}});
        let placed: Vec<Value> = http_filters(28, std::slice::from_ref(&router), &plugins)
            .into_iter()
            .map(
                |f| match manifests.iter().find(|(name, _)| f["name"] == *name) {
                    Some((name, m)) => as_istio_builds(m, name),
                    None => f,
                },
            )
            .collect();
        let mut connection_manager = hcm("inbound_0.0.0.0_8080", "inbound|8080||");
        connection_manager["typed_config"]["http_filters"] = Value::Array(placed);
        let mut listeners = vec![harness::sidecar::virtual_inbound(
            "virtualInbound",
            json!([connection_manager]),
        )];
        let records = if set.contains(&"suite") {
            "suite"
        } else {
            "tap_http"
        };
        apply(
            &mut listeners,
            &load(&envoyfilters.join(format!("{dir}/{records}-records.yaml"))),
        );
        let rewrites = [(format!("{RECORD_DIR}/"), "@SCRATCH@/".to_string())];
        let mut bootstrap = Bootstrap::new(app.port())
            .cluster("inbound|8080||", app.port())
            .node_metadata(json!({"LABELS": {
                "app": "my-app",
                "cloudfoundry.org/app_guid": "eb1534db-8765-430d-adfe-77fd1a8e45a9",
                "cloudfoundry.org/process_type": "web",
                "cloudfoundry.org/org_guid": "04a73274-9280-4b99-9abc-e44e3ff4a74e",
                "cloudfoundry.org/space_guid": "8d18b884-729c-4239-9b88-39c4964a3f86"
            }}));
        for listener in rewrite(listeners, &rewrites) {
            bootstrap = bootstrap.raw_listener(listener);
        }
        validate(&bootstrap);
        let envoy = Envoy::start(&bootstrap);
        for proto in [Proto::H1, Proto::H2] {
            let response = Request::get("/hello")
                .header("cf-app-id", "spoofed")
                .send(envoy.addr("virtualInbound"), proto);
            assert_eq!(response.status, 200, "{dir} {set:?} {proto:?}");
            let got = app.last();
            assert_eq!(
                got.header("cf-app-id"),
                [&b"eb1534db-8765-430d-adfe-77fd1a8e45a9"[..]],
                "{dir} {set:?}"
            );
            assert_eq!(
                got.header("x-peer-verified"),
                [&b"false"[..]],
                "{dir} {set:?}"
            );
        }
        let denied = Request::new("POST", "/hello").send(envoy.addr("virtualInbound"), Proto::H1);
        assert_eq!(denied.status, 403, "{dir} {set:?}");
        let tapped = read_records(&envoy.scratch().join("tap_http.jsonl"), 3);
        assert_eq!(tapped.len(), 3, "{dir} {set:?}");
        // The records carry the identity cf_headers stamped, not the
        // client's (the tap reads the request headers when the stream ends).
        let headers = tapped[0]["http_buffered_trace"]["request"]["headers"].to_string();
        assert!(
            headers.contains("eb1534db-8765-430d-adfe-77fd1a8e45a9")
                && !headers.contains("spoofed"),
            "{dir} {set:?}: {headers}"
        );
    }
}
