//! What Istio does with the manifests `tools/manifests` generates: their
//! patches applied to an Istio-shaped sidecar configuration, for tests.

use manifests::TCP_PORT;
use serde_json::{json, Value};

/// Applies an EnvoyFilter's patches the way Istio does for the operations the
/// manifests use, to every filter chain of the listeners in `listeners`.
/// A filter that names an extension config (`config_discovery`) gets the
/// configuration an `EXTENSION_CONFIG` patch of the same EnvoyFilter adds,
/// as Envoy receives it over ECDS (tests/istio checks that Istio serves it).
pub fn apply(listeners: &mut [Value], envoy_filter: &Value) {
    let patches = envoy_filter["spec"]["configPatches"]
        .as_array()
        .expect("patches");
    let extension_configs: Vec<&Value> = patches
        .iter()
        .filter(|p| p["applyTo"] == "EXTENSION_CONFIG")
        .map(|p| {
            assert_eq!(
                p["patch"]["operation"], "ADD",
                "EXTENSION_CONFIG takes ADD only"
            );
            &p["patch"]["value"]
        })
        .collect();
    for patch in patches
        .iter()
        .filter(|p| p["applyTo"] != "EXTENSION_CONFIG")
    {
        let target = patch["match"]["listener"]["filterChain"]["filter"]["name"]
            .as_str()
            .expect("filter name");
        let mut value = patch["patch"]["value"].clone();
        if let Some(discovery) = value.get("config_discovery").cloned() {
            let name = &value["name"];
            let served = extension_configs
                .iter()
                .find(|c| &c["name"] == name)
                .unwrap_or_else(|| panic!("no EXTENSION_CONFIG named {name}"));
            let kind = &served["typed_config"]["@type"];
            assert!(
                discovery["type_urls"]
                    .as_array()
                    .is_some_and(|urls| urls.contains(kind)),
                "config_discovery of {name} does not accept {kind}"
            );
            value = json!({"name": name, "typed_config": served["typed_config"]});
        }
        for listener in listeners.iter_mut() {
            for chain in listener["filter_chains"].as_array_mut().expect("chains") {
                let filters = chain["filters"].as_array_mut().expect("filters");
                let Some(at) = filters.iter().position(|f| f["name"] == target) else {
                    continue;
                };
                match (
                    patch["applyTo"].as_str(),
                    patch["patch"]["operation"].as_str(),
                ) {
                    (Some("HTTP_FILTER"), Some("INSERT_BEFORE")) => {
                        let http = filters[at]["typed_config"]["http_filters"]
                            .as_array_mut()
                            .expect("http_filters");
                        let router = http
                            .iter()
                            .position(|f| f["name"] == "envoy.filters.http.router")
                            .expect("router");
                        http.insert(router, value.clone());
                    }
                    (Some("HTTP_FILTER"), Some("INSERT_FIRST")) => filters[at]["typed_config"]
                        ["http_filters"]
                        .as_array_mut()
                        .expect("http_filters")
                        .insert(0, value.clone()),
                    (Some("NETWORK_FILTER"), Some("INSERT_BEFORE")) => {
                        filters.insert(at, value.clone())
                    }
                    (Some("NETWORK_FILTER"), Some("MERGE")) => {
                        // Proto merge: repeated fields append.
                        let logs = value["typed_config"]["access_log"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default();
                        let typed = &mut filters[at]["typed_config"];
                        if typed["access_log"].is_null() {
                            typed["access_log"] = json!([]);
                        }
                        typed["access_log"]
                            .as_array_mut()
                            .expect("access_log")
                            .extend(logs);
                    }
                    other => panic!("operation {other:?} not applied by this test"),
                }
            }
        }
    }
}

fn listener_filters() -> Value {
    json!([
        {"name": "envoy.filters.listener.original_dst", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst"}},
        {"name": "envoy.filters.listener.tls_inspector", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"}}
    ])
}

pub fn hcm(stat_prefix: &str, cluster: &str) -> Value {
    json!({"name": "envoy.filters.network.http_connection_manager", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": stat_prefix,
        "normalize_path": true,
        "route_config": {"name": format!("inbound|8080||"), "virtual_hosts": [{"name": "inbound|http|8080", "domains": ["*"],
            "routes": [{"name": "default", "match": {"prefix": "/"}, "route": {"cluster": cluster, "timeout": "0s"}}]}]},
        "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]
    }})
}

/// An inbound sidecar listener as Istio writes it (`virtualInbound`), on a
/// loopback port: `original_dst`, a per-port chain for 8080 and a catch-all.
pub fn virtual_inbound(name: &str, filters: Value) -> Value {
    json!({
        "name": name,
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
        "listener_filters": listener_filters(),
        "listener_filters_timeout": "1s",
        "continue_on_listener_filters_timeout": true,
        "filter_chains": [
            {"name": "0.0.0.0_8080", "filter_chain_match": {"destination_port": 8080, "transport_protocol": "raw_buffer"}, "filters": filters.clone()},
            {"name": "virtualInbound-catchall", "filter_chain_match": {"prefix_ranges": [{"address_prefix": "0.0.0.0", "prefix_len": 0}]}, "filters": filters}
        ]
    })
}

/// Text replacements in `listeners` (module paths and record directories of
/// the pod mapped to this machine's).
pub fn rewrite(listeners: Vec<Value>, rewrites: &[(String, String)]) -> Vec<Value> {
    listeners
        .into_iter()
        .map(|l| {
            let mut text = l.to_string();
            for (from, to) in rewrites {
                text = text.replace(from.as_str(), to);
            }
            serde_json::from_str(&text).expect("listener JSON")
        })
        .collect()
}

/// An Istio-shaped sidecar's inbound listeners, `virtualInbound` (HTTP to
/// cluster `inbound|8080||`) and `virtualInboundTcp` (`tcp_proxy` to
/// `inbound|9000||`), with `envoy_filters` applied in order and `rewrites` made.
pub fn sidecar_listeners(envoy_filters: &[Value], rewrites: &[(String, String)]) -> Vec<Value> {
    let mut inbound = vec![
        virtual_inbound(
            "virtualInbound",
            json!([hcm("inbound_0.0.0.0_8080", "inbound|8080||")]),
        ),
        virtual_inbound(
            "virtualInboundTcp",
            json!([{"name": "envoy.filters.network.tcp_proxy", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
                "stat_prefix": format!("inbound|{TCP_PORT}||"), "cluster": format!("inbound|{TCP_PORT}||")}}]),
        ),
    ];
    for envoy_filter in envoy_filters {
        apply(&mut inbound, envoy_filter);
    }
    rewrite(inbound, rewrites)
}
