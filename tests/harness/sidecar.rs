//! What Istio does with the manifests `tools/manifests` generates: their
//! patches applied to an Istio-shaped sidecar configuration, for tests.

use crate::istio::Proxy;
use manifests::TCP_PORT;
use serde_json::{json, Value};

/// The patch context Istio applies a listener's patches in
/// (`ListenerBuilder.patchListeners`, pilot/pkg/networking/core/
/// listener_builder.go): a gateway's listeners `GATEWAY`; a sidecar's
/// inbound listener, `virtualInbound` (the only one a sidecar outside
/// ambient mode gets), `SIDECAR_INBOUND`; its other listeners (per Service
/// port, `virtualOutbound`) `SIDECAR_OUTBOUND`.
pub fn patch_context(proxy: &Proxy, listener: &str) -> &'static str {
    if proxy.gateway {
        "GATEWAY"
    } else if listener == "virtualInbound" {
        "SIDECAR_INBOUND"
    } else {
        "SIDECAR_OUTBOUND"
    }
}

/// Whether Istio applies `patch` (one of an EnvoyFilter's
/// `configPatches`, `NETWORK_FILTER` or `HTTP_FILTER`) to `chain` of
/// `listener` on `proxy` (Envoy's shapes: the listener's `name` and
/// `address`, the chain's `name`, `filter_chain_match` and `filters`), as
/// pilot/pkg/networking/core/envoyfilter/listener_patch.go matches it:
/// - `match.context`: absent or `ANY`, or the listener's [`patch_context`];
/// - `listener.name`: the listener's;
/// - `listener.portNumber`: on `virtualInbound` and `virtualOutbound` the
///   chain's destination port (`filterChainMatch`), so a chain of no port
///   (passthrough, catch-all) never matches one; on any other listener
///   the port it binds (`listenerMatch`);
/// - `filterChain.name`, `transportProtocol`, `applicationProtocols` (each
///   of its comma-separated names), `destinationPort`: the chain's;
/// - `filterChain.filter.name`: a network filter of the chain by that name
///   (patches insert relative to it or merge into it), for `HTTP_FILTER`
///   a connection manager; its `subFilter.name` an HTTP filter of that
///   connection manager, except for `ADD` and `INSERT_FIRST`, which do not
///   look at it.
pub fn patch_applies(patch: &Value, proxy: &Proxy, listener: &Value, chain: &Value) -> bool {
    let apply_to = patch["applyTo"].as_str().unwrap_or("");
    assert!(
        matches!(apply_to, "NETWORK_FILTER" | "HTTP_FILTER"),
        "{apply_to} patches are not modelled"
    );
    let name = listener["name"].as_str().expect("a listener's name");
    let m = &patch["match"];
    let context = m["context"].as_str().unwrap_or("ANY");
    if context != "ANY" && context != patch_context(proxy, name) {
        return false;
    }
    let l = &m["listener"];
    if l["name"].as_str().is_some_and(|n| n != name) {
        return false;
    }
    let fcm = &chain["filter_chain_match"];
    if let Some(port) = l["portNumber"].as_u64().filter(|p| *p != 0) {
        let at = if name == "virtualInbound" || name == "virtualOutbound" {
            fcm["destination_port"].as_u64()
        } else {
            listener["address"]["socket_address"]["port_value"].as_u64()
        };
        if at != Some(port) {
            return false;
        }
    }
    let fc = &l["filterChain"];
    if fc["name"].as_str().is_some_and(|n| chain["name"] != n)
        || fc["transportProtocol"]
            .as_str()
            .is_some_and(|t| fcm["transport_protocol"] != t)
        || fc["destinationPort"]
            .as_u64()
            .is_some_and(|p| fcm["destination_port"].as_u64() != Some(p))
    {
        return false;
    }
    if let Some(alpn) = fc["applicationProtocols"].as_str() {
        let has = |p: &str| {
            fcm["application_protocols"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == p))
        };
        if !alpn.split(',').all(has) {
            return false;
        }
    }
    assert!(fc["sni"].is_null(), "sni matches are not modelled");
    let filter = &fc["filter"];
    let Some(target) = filter["name"].as_str() else {
        assert!(filter.is_null(), "a filter match without a name");
        return apply_to == "NETWORK_FILTER";
    };
    let Some(found) = chain["filters"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["name"] == target))
    else {
        return false;
    };
    if apply_to == "HTTP_FILTER" {
        if target != "envoy.filters.network.http_connection_manager" {
            return false;
        }
        let operation = patch["patch"]["operation"].as_str().unwrap_or("");
        if let Some(sub) = filter["subFilter"]["name"].as_str() {
            if !matches!(operation, "ADD" | "INSERT_FIRST") {
                return found["typed_config"]["http_filters"]
                    .as_array()
                    .is_some_and(|h| h.iter().any(|f| f["name"] == sub));
            }
        }
    }
    true
}

/// Applies an EnvoyFilter's patches the way Istio does for the operations the
/// manifests use, to every filter chain of the listeners in `listeners`
/// that holds the filter a patch names, whatever its `match.context` and
/// `portNumber`. The harness's listeners are not a proxy's: each stands
/// for the chains Istio patches (`virtualInboundTcp`, its own listener on
/// a loopback port with chains for 8080 and any address, for port 9000's
/// chains of `virtualInbound`), so matching those against them would only
/// drop the filters the tests mean to run. Which of a real proxy's chains
/// Istio patches is [`patch_applies`] and [`apply_as_istio`], which
/// tests/istio_model.rs holds to the chains Istio's own code patched.
/// A filter that names an extension config (`config_discovery`) gets the
/// configuration an `EXTENSION_CONFIG` patch of the same EnvoyFilter adds,
/// as Envoy receives it over ECDS (tests/istio checks that Istio serves it).
pub fn apply(listeners: &mut [Value], envoy_filter: &Value) {
    apply_where(listeners, envoy_filter, |_, _, _| true);
}

/// Applies an EnvoyFilter's patches to the chains of `listeners` (one
/// proxy's, as Istio built them) where Istio applies them on `proxy`
/// ([`patch_applies`]). Whether the EnvoyFilter selects the proxy at all
/// is [`Proxy::selects`].
pub fn apply_as_istio(listeners: &mut [Value], envoy_filter: &Value, proxy: &Proxy) {
    apply_where(listeners, envoy_filter, |patch, listener, chain| {
        patch_applies(patch, proxy, listener, chain)
    });
}

fn apply_where(
    listeners: &mut [Value],
    envoy_filter: &Value,
    applies: impl Fn(&Value, &Value, &Value) -> bool,
) {
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
        let filter_match = &patch["match"]["listener"]["filterChain"]["filter"];
        let target = filter_match["name"].as_str().expect("filter name");
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
            let head = json!({"name": listener["name"], "address": listener["address"]});
            for chain in listener["filter_chains"].as_array_mut().expect("chains") {
                if !applies(patch, &head, chain) {
                    continue;
                }
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
                        // Before the subFilter named, else first.
                        let before = match filter_match["subFilter"]["name"].as_str() {
                            Some(sub) => http.iter().position(|f| f["name"] == sub),
                            None => Some(0),
                        };
                        if let Some(before) = before {
                            http.insert(before, value.clone());
                        }
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

/// Every object in a manifest file (YAML documents; empty ones skipped).
pub fn load_manifests(path: &std::path::Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| {
            serde_yaml::with::singleton_map_recursive::deserialize(d)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        })
        .filter(|v: &Value| !v.is_null())
        .collect()
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
