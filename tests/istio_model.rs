//! Our models of Istio agree with Istio's own code
//! (tests/istio/testdata/placement.golden.json, written by `make test-istio`
//! from istio.io/istio at the commit tests/istio/go.mod pins): applied to
//! every chain Istio builds for the sidecar and the gateway with no form
//! (the golden file's baselines), each form's plugins placed by
//! `harness::istio` (the newest release it models: which proxy, chain and
//! port they select, and their order) or its EnvoyFilter patches applied
//! by `harness::sidecar::apply_as_istio` (`match.context`, `portNumber`,
//! the filters named; tap.sh too) must put our filters on exactly the
//! chains Istio's discovery server put them on, each with exactly its
//! filters in order, and change no other chain.
//!
//! What this guards: the model deciding WHERE our filters go, not only
//! their order where Istio already put them. The tap_tcp EnvoyFilter forms
//! once matched every inbound `tcp_proxy` (Istio put the tap on the
//! passthrough and blackhole chains too, until they named `portNumber:
//! 9000`); a model that ignores `portNumber`, the context or a plugin's
//! ports and selector puts filters on chains Istio leaves alone, and fails
//! here naming them.

use harness::istio::{as_wasm_plugin, plugin_site, rebuild_chain, Plugin, Proxy};
use harness::paths::workspace_root;
use harness::sidecar::{apply_as_istio, load_manifests};
use serde_json::{json, Value};
use std::process::Command;

/// The Istio release `harness::istio` models last, which tests/istio's
/// proxies announce (1.30.0).
const NEWEST_MINOR: u32 = 30;
const NAMESPACE: &str = "cf-workloads";
const APP_GUID: &str = "6f1b5a3e-2f7c-4d3a-9a61-0c2b8d4e5f70";
/// The app's Service (tests/istio/testdata/cluster.yaml): target port to
/// Service port.
const SERVICE_PORTS: &[(u64, u64)] = &[(8080, 80), (8081, 8081), (9000, 9000)];

fn golden() -> serde_json::Map<String, Value> {
    let path = workspace_root().join("tests/istio/testdata/placement.golden.json");
    let text = std::fs::read_to_string(&path).expect("the placement golden file");
    serde_json::from_str(&text).expect("JSON")
}

/// tests/istio's two proxies (xds_test.go `sidecar`, `gateway`), by the
/// name the golden file gives them.
fn proxies() -> Vec<(&'static str, Proxy)> {
    let labels = |l: &[(&str, &str)]| {
        l.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    vec![
        (
            "sidecar",
            Proxy {
                gateway: false,
                namespace: NAMESPACE.to_string(),
                labels: labels(&[
                    ("app", "my-app"),
                    ("cloudfoundry.org/app_guid", APP_GUID),
                    ("security.istio.io/tlsMode", "istio"),
                ]),
            },
        ),
        (
            "gateway",
            Proxy {
                gateway: true,
                namespace: "istio-system".to_string(),
                labels: labels(&[("istio", "ingressgateway")]),
            },
        ),
    ]
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

/// A proxy's baseline chains as Envoy-shaped listeners, in order, each
/// chain keeping its golden line under "golden".
fn baseline_listeners(golden: &serde_json::Map<String, Value>, proxy: &str) -> Vec<Value> {
    let key = format!("({proxy} baseline)");
    let placed = golden.get(&key).unwrap_or_else(|| panic!("no {key}"));
    assert_eq!(placed["proxy"], proxy);
    let mut listeners: Vec<Value> = Vec::new();
    for c in placed["chains"].as_array().expect("chains") {
        let http = strings(&c["http"]);
        let filters: Vec<Value> = strings(&c["network"])
            .iter()
            .map(|n| {
                if n == "envoy.filters.network.http_connection_manager" {
                    json!({"name": n, "typed_config": {"http_filters": http.iter().map(|h| json!({"name": h})).collect::<Vec<_>>()}})
                } else {
                    json!({"name": n, "typed_config": {}})
                }
            })
            .collect();
        let mut fcm = serde_json::Map::new();
        if let Some(p) = c["port"].as_u64() {
            fcm.insert("destination_port".into(), json!(p));
        }
        if let Some(t) = c["transport"].as_str() {
            fcm.insert("transport_protocol".into(), json!(t));
        }
        if !c["alpn"].is_null() {
            fcm.insert("application_protocols".into(), c["alpn"].clone());
        }
        let chain =
            json!({"name": c["chain"], "filter_chain_match": fcm, "filters": filters, "golden": c});
        match listeners.last_mut() {
            Some(l) if l["name"] == c["listener"] => l["filter_chains"]
                .as_array_mut()
                .expect("chains")
                .push(chain),
            _ => listeners.push(json!({
                "name": c["listener"],
                "address": {"socket_address": {"port_value": c["listener_port"]}},
                "filter_chains": [chain],
            })),
        }
    }
    let names: Vec<&Value> = listeners.iter().map(|l| &l["name"]).collect();
    for (i, n) in names.iter().enumerate() {
        assert!(!names[..i].contains(n), "{key}: listener {n} split");
    }
    listeners
}

/// A chain's filter names, network and HTTP, in order.
fn chain_names(chain: &Value) -> (Vec<String>, Vec<String>) {
    let filters = chain["filters"].as_array().expect("filters");
    let name = |f: &Value| f["name"].as_str().expect("name").to_string();
    let http = filters
        .iter()
        .find(|f| f["name"] == "envoy.filters.network.http_connection_manager")
        .map(|hcm| {
            hcm["typed_config"]["http_filters"]
                .as_array()
                .expect("http_filters")
                .iter()
                .map(name)
                .collect()
        })
        .unwrap_or_default();
    (filters.iter().map(name).collect(), http)
}

/// The golden lines of the chains a model changed: a baseline chain's
/// line with the modelled filters, for each chain whose filters differ
/// from the baseline's.
fn changed(modelled: &[Value]) -> Vec<Value> {
    let mut out = Vec::new();
    for l in modelled {
        for chain in l["filter_chains"].as_array().expect("chains") {
            let base = &chain["golden"];
            let (network, http) = chain_names(chain);
            if network != strings(&base["network"]) || http != strings(&base["http"]) {
                let mut line = base.clone();
                line["network"] = json!(network);
                if !http.is_empty() {
                    line["http"] = json!(http);
                }
                out.push(line);
            }
        }
    }
    out
}

/// Where the chains a model put a form's filters on, proxy by proxy,
/// differ from the form's golden chains (all on its `proxy`, the other
/// proxy left as it was: TestPlacement checks both).
fn compare(form: &str, placed: &Value, modelled: &[(&str, Vec<Value>)]) -> Vec<String> {
    let want_proxy = placed["proxy"].as_str().expect("proxy");
    let want = placed["chains"].as_array().expect("chains");
    assert!(!want.is_empty(), "{form}: no chains in the golden file");
    let mut problems = Vec::new();
    for (proxy, got) in modelled {
        let want: &[Value] = if *proxy == want_proxy { want } else { &[] };
        let key = |c: &Value| {
            let mut k = c.clone();
            let o = k.as_object_mut().expect("a chain");
            o.remove("network");
            o.remove("http");
            k
        };
        for g in got {
            match want.iter().find(|w| key(w) == key(g)) {
                None => problems.push(format!(
                    "{form}: {proxy}: the model puts ours on a chain Istio leaves alone: {g}"
                )),
                Some(w) if w != g => problems.push(format!(
                    "{form}: {proxy}: the model builds {g}\n    Istio built {w}"
                )),
                Some(_) => {}
            }
        }
        for w in want {
            if !got.iter().any(|g| key(g) == key(w)) {
                problems.push(format!(
                    "{form}: {proxy}: the model leaves alone a chain Istio put ours on: {w}"
                ));
            }
        }
    }
    problems
}

fn assert_agrees(problems: &[String]) {
    assert!(
        problems.is_empty(),
        "the model disagrees with Istio's own code:\n  {}",
        problems.join("\n  ")
    );
}

/// Golden keys by kind: the baselines, the plugin forms, the rest
/// (EnvoyFilter forms, remote ones included, and tap.sh).
fn is_baseline(form: &str) -> bool {
    form.starts_with('(')
}

fn is_plugin_form(form: &str) -> bool {
    form.starts_with("wasmplugin/") || form.starts_with("trafficextension/")
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
        .flat_map(|p| load_manifests(p))
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

#[test]
fn plugin_forms_land_where_istios_own_code_puts_them() {
    let golden = golden();
    let mut forms = 0;
    let mut problems = Vec::new();
    for (form, placed) in &golden {
        if !is_plugin_form(form) {
            continue;
        }
        let manifests = plugin_manifests(form);
        assert!(!manifests.is_empty(), "{form}: no plugins");
        let mut modelled = Vec::new();
        for (name, proxy) in proxies() {
            // The records logs (`-records.yaml`: Telemetry) place no filter.
            let plugins: Vec<Plugin> = manifests
                .iter()
                .filter(|m| m["kind"] == "WasmPlugin" || m["kind"] == "TrafficExtension")
                .filter(|m| proxy.selects(m, NAMESPACE))
                .map(|m| Plugin::from_manifest(&as_wasm_plugin(m), &envoy_name(m)))
                .collect();
            let mut listeners = baseline_listeners(&golden, name);
            for l in listeners.iter_mut() {
                let head = json!({"name": l["name"], "address": l["address"]});
                for chain in l["filter_chains"].as_array_mut().expect("chains") {
                    if let Some(site) = plugin_site(&proxy, &head, chain, SERVICE_PORTS) {
                        let golden_line = chain["golden"].clone();
                        *chain = rebuild_chain(chain, NEWEST_MINOR, &plugins, &site);
                        chain["golden"] = golden_line;
                    }
                }
            }
            modelled.push((name, changed(&listeners)));
        }
        problems.extend(compare(form, placed, &modelled));
        forms += 1;
    }
    assert_agrees(&problems);
    assert!(forms >= 16, "{forms} plugin forms");
}

fn tap_sh(args: &[&str]) -> Value {
    let out = Command::new("bash")
        .arg(workspace_root().join("envoyfilters/tap.sh"))
        .args(["--dry-run", "--guid", APP_GUID])
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
fn envoy_filter_forms_land_where_istios_own_code_puts_them() {
    let golden = golden();
    let root = workspace_root().join("envoyfilters");
    let mut forms = 0;
    let mut problems = Vec::new();
    for (form, placed) in &golden {
        if is_baseline(form) || is_plugin_form(form) {
            continue;
        }
        let mut envoy_filters: Vec<Value> = match form.as_str() {
            "tap.sh" => vec![tap_sh(&[])],
            "tap.sh --tcp 9000" => vec![tap_sh(&["--tcp", "9000"])],
            "tap.sh --tcp-outbound 5432" => vec![tap_sh(&["--tcp-outbound", "5432"])],
            f => load_manifests(&root.join(f))
                .into_iter()
                .filter(|m| m["kind"] == "EnvoyFilter")
                .collect(),
        };
        assert!(!envoy_filters.is_empty(), "{form}: no EnvoyFilter");
        // Istio applies a proxy's EnvoyFilters by ascending priority.
        envoy_filters.sort_by_key(|e| e["spec"]["priority"].as_i64().unwrap_or(0));
        let mut modelled = Vec::new();
        for (name, proxy) in proxies() {
            let mut listeners = baseline_listeners(&golden, name);
            for e in envoy_filters.iter().filter(|e| proxy.selects(e, NAMESPACE)) {
                apply_as_istio(&mut listeners, e, &proxy);
            }
            modelled.push((name, changed(&listeners)));
        }
        problems.extend(compare(form, placed, &modelled));
        forms += 1;
    }
    assert_agrees(&problems);
    assert!(forms >= 16, "{forms} EnvoyFilter forms");
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
