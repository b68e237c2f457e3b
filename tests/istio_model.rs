//! Our models of Istio agree with Istio's own code: for every chain where
//! Istio's discovery server put one of our filters
//! (tests/istio/testdata/placement.golden.json, written by `make test-istio`
//! from istio.io/istio at the commit tests/istio/go.mod pins), Istio's own
//! filters of that chain with our forms placed by `harness::istio` (plugin
//! forms, the newest release it models) or applied by `harness::sidecar`
//! (EnvoyFilter forms and tap.sh) give exactly the chain Istio built.

use harness::istio::{as_wasm_plugin, http_filters, network_filters, Plugin};
use harness::paths::workspace_root;
use harness::sidecar::apply;
use serde_json::{json, Value};
use std::process::Command;

/// The Istio release `harness::istio` models last, which tests/istio's
/// proxies announce (1.30.0).
const NEWEST_MINOR: u32 = 30;
const NAMESPACE: &str = "cf-workloads";

fn golden() -> serde_json::Map<String, Value> {
    let path = workspace_root().join("tests/istio/testdata/placement.golden.json");
    let text = std::fs::read_to_string(&path).expect("the placement golden file");
    serde_json::from_str(&text).expect("JSON")
}

fn load_all(path: &std::path::Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde_yaml::with::singleton_map_recursive::deserialize(d).expect("YAML"))
        .filter(|v: &Value| !v.is_null())
        .collect()
}

/// The plugin objects of a form of the golden file ("wasmplugin/x.yaml",
/// "trafficextension/*").
fn plugin_manifests(form: &str) -> Vec<Value> {
    let root = workspace_root().join("envoyfilters");
    let paths: Vec<_> = if let Some(dir) = form.strip_suffix("/*") {
        std::fs::read_dir(root.join(dir))
            .expect("dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| {
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                !name.starts_with("suite") && !name.contains("-gateway")
            })
            .collect()
    } else {
        vec![root.join(form)]
    };
    paths
        .iter()
        .flat_map(|p| load_all(p))
        .filter(|m| m["kind"] != "EnvoyFilter")
        .collect()
}

/// The filter name Istio gives a plugin (pilot/pkg/model/extensions.go):
/// a WasmPlugin is translated into a TrafficExtension of the same name.
fn envoy_name(manifest: &Value) -> String {
    let meta = &manifest["metadata"];
    let namespace = meta["namespace"].as_str().unwrap_or(NAMESPACE);
    let name = meta["name"].as_str().expect("name");
    let suffix = if manifest["kind"] == "WasmPlugin" {
        "~istio-translated-wasmplugin"
    } else {
        ""
    };
    format!("extensions.istio.io/trafficextension/{namespace}.{name}{suffix}")
}

fn names(filters: &[Value]) -> Vec<String> {
    filters
        .iter()
        .map(|f| f["name"].as_str().expect("name").to_string())
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|s| s.as_str().expect("a name").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Istio's own filters of a chain: all but ours.
fn istio_only(real: &[String], ours: &dyn Fn(&str) -> bool) -> Vec<Value> {
    real.iter()
        .filter(|n| !ours(n))
        .map(|n| json!({"name": n}))
        .collect()
}

#[test]
fn the_placement_model_agrees_with_istios_own_code() {
    let golden = golden();
    let mut chains_checked = 0;
    for (form, placed) in &golden {
        if !(form.starts_with("wasmplugin/") || form.starts_with("trafficextension/")) {
            continue;
        }
        let manifests = plugin_manifests(form);
        assert!(!manifests.is_empty(), "{form}: no plugins");
        let plugins: Vec<Plugin> = manifests
            .iter()
            .map(|m| Plugin::from_manifest(&as_wasm_plugin(m), &envoy_name(m)))
            .collect();
        let ours = |name: &str| plugins.iter().any(|p| p.name == name);
        for chain in placed["chains"].as_array().expect("chains") {
            let at = format!("{form}: {chain}");
            let http = strings(&chain["http"]);
            let network = strings(&chain["network"]);
            let port = chain["port"].as_u64().unwrap_or(0);
            let applying = |network_plugins: bool, port: u64| -> Vec<Plugin> {
                plugins
                    .iter()
                    .filter(|p| p.network == network_plugins && p.applies(false, port))
                    .cloned()
                    .collect()
            };
            if !http.is_empty() {
                let modelled = http_filters(
                    NEWEST_MINOR,
                    &istio_only(&http, &ours),
                    &applying(false, port),
                );
                assert_eq!(names(&modelled), http, "{at}");
            }
            // On a TCP chain a NETWORK plugin's port is the Service's,
            // which for the test app's TCP port is its target port (9000).
            let modelled = network_filters(&istio_only(&network, &ours), &applying(true, port));
            assert_eq!(names(&modelled), network, "{at}");
            chains_checked += 1;
        }
    }
    assert!(chains_checked >= 20, "{chains_checked} chains");
}

/// A chain of the golden file as a listener `harness::sidecar::apply` takes.
fn as_listener(network: &[String], http: &[String]) -> Value {
    let filters: Vec<Value> = network
        .iter()
        .map(|n| {
            if n == "envoy.filters.network.http_connection_manager" {
                json!({"name": n, "typed_config": {"http_filters": http.iter().map(|h| json!({"name": h})).collect::<Vec<_>>()}})
            } else {
                json!({"name": n, "typed_config": {}})
            }
        })
        .collect();
    json!({"filter_chains": [{"filters": filters}]})
}

fn tap_sh(args: &[&str]) -> Value {
    let out = Command::new("bash")
        .arg(workspace_root().join("envoyfilters/tap.sh"))
        .args([
            "--dry-run",
            "--guid",
            "6f1b5a3e-2f7c-4d3a-9a61-0c2b8d4e5f70",
        ])
        .args(args)
        .env("KUBECONFIG", "/nonexistent")
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_yaml::from_slice(&out.stdout).expect("YAML")
}

#[test]
fn the_envoy_filter_model_agrees_with_istios_own_code() {
    let golden = golden();
    let root = workspace_root().join("envoyfilters");
    let mut chains_checked = 0;
    for (form, placed) in &golden {
        let envoy_filters: Vec<Value> = match form.as_str() {
            "tap.sh" => vec![tap_sh(&[])],
            "tap.sh --tcp 9000" => vec![tap_sh(&["--tcp", "9000"])],
            "tap.sh --tcp-outbound 5432" => vec![tap_sh(&["--tcp-outbound", "5432"])],
            f if !f.contains('/') || f.starts_with("remote/") => load_all(&root.join(f))
                .into_iter()
                .filter(|m| m["kind"] == "EnvoyFilter")
                .collect(),
            _ => continue,
        };
        let added: Vec<String> = envoy_filters
            .iter()
            .flat_map(|e| {
                e["spec"]["configPatches"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .filter_map(|p| p["patch"]["value"]["name"].as_str().map(String::from))
            .collect();
        for chain in placed["chains"].as_array().expect("chains") {
            let at = format!("{form}: {chain}");
            let http = strings(&chain["http"]);
            let network = strings(&chain["network"]);
            let is_ours = |n: &String| added.contains(n);
            let mut listener = [as_listener(
                &network
                    .iter()
                    .filter(|n| !is_ours(n))
                    .cloned()
                    .collect::<Vec<_>>(),
                &http
                    .iter()
                    .filter(|n| !is_ours(n))
                    .cloned()
                    .collect::<Vec<_>>(),
            )];
            for e in &envoy_filters {
                apply(&mut listener, e);
            }
            let filters = listener[0]["filter_chains"][0]["filters"]
                .as_array()
                .expect("filters");
            assert_eq!(names(filters), network, "{at}");
            if let Some(hcm) = filters
                .iter()
                .find(|f| f["name"] == "envoy.filters.network.http_connection_manager")
            {
                let modelled = hcm["typed_config"]["http_filters"]
                    .as_array()
                    .expect("http");
                assert_eq!(names(modelled), http, "{at}");
            }
            chains_checked += 1;
        }
    }
    assert!(chains_checked >= 20, "{chains_checked} chains");
}

/// The manifests' headers name the Istio tests/istio builds.
#[test]
fn the_manifests_name_the_istio_that_checked_them() {
    let go_mod =
        std::fs::read_to_string(workspace_root().join("tests/istio/go.mod")).expect("go.mod");
    let pinned = go_mod
        .lines()
        .find_map(|l| l.trim().strip_prefix("istio.io/istio "))
        .expect("go.mod pins istio.io/istio");
    assert_eq!(pinned.trim(), manifests::ISTIO_CODE);
}
