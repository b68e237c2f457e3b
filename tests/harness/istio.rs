//! Where Istio puts a sidecar's inbound filters and the `WasmPlugin`s among
//! them, release by release, so tests can place our manifests into a real
//! sidecar's configuration (tests/fixtures/istio-sidecar-virtual-inbound.yaml).
//!
//! From istio/istio, read at tags 1.14.0 to 1.28.0:
//! - HTTP (`buildHTTPConnectionManager`, pilot/pkg/networking/core/
//!   listener_builder.go, v1alpha3/listener.go before 1.16): metadata
//!   exchange, CUSTOM authorization (ext_authz), `WasmPlugin`s of phase
//!   AUTHN, Istio authentication, phase AUTHZ, RBAC, phase STATS, phase
//!   UNSPECIFIED_PHASE, then gRPC stats, fault, CORS, telemetry
//!   (`istio.stats`) and the router. Before 1.16 the metadata exchange came
//!   after the Wasm phases instead of first.
//! - Network (`buildInboundNetworkFilters`/`buildNetworkFiltersStack`,
//!   networkfilter.go; `buildInboundNetworkFiltersForHTTP`,
//!   listener_inbound.go), `WasmPlugin`s of type NETWORK from 1.20: metadata
//!   exchange, CUSTOM authorization, AUTHN, AUTHZ, RBAC, STATS, UNSPECIFIED,
//!   telemetry, the terminal filter; on HTTP chains the same phases before
//!   the HTTP connection manager.
//! - Within a phase, plugins run by descending `priority`
//!   (pilot/pkg/model/push_context.go).
//! - A plugin applies to a listener when its `match` is empty or one of its
//!   selectors matches: mode `SERVER` inbound, `CLIENT` outbound,
//!   `CLIENT_AND_SERVER` or none both; `ports` empty or naming the chain's
//!   port (pilot/pkg/model/extensions.go, `matchTrafficSelectors`). On an
//!   inbound HTTP chain that port is the Service's target port
//!   (`buildSidecarInboundHTTPOpts`); for the network filters of an inbound
//!   TCP chain it is the Service's own port (`buildInboundNetworkFilters`,
//!   listener_inbound.go).
//! - Which chains Istio asks plugins for, with what class and port:
//!   [`plugin_site`]; which proxies a plugin or EnvoyFilter selects:
//!   [`Proxy::selects`].
//! - `EnvoyFilter` patches are applied to what this builds, in ascending
//!   `priority` ([`crate::sidecar::apply`]; on which chains:
//!   [`crate::sidecar::patch_applies`]).
//!
//! The newest release modelled, 1.30 (TrafficExtension; WasmPlugins
//! translated into it), is checked against Istio's own code:
//! tests/istio_model.rs applies every plugin form to every chain Istio's
//! discovery server built for the sidecar and the gateway with no form
//! (tests/istio, istio.io/istio at the commit its go.mod pins) and must put
//! our filters on exactly the chains Istio put them on, with exactly their
//! filters, and on no other; so must [`crate::sidecar::apply_as_istio`]
//! for the EnvoyFilter forms and tap.sh.

use serde_json::Value;

/// What Istio builds a filter for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Role {
    /// Kept in front (the network `istio_authn` of the real dump).
    Front,
    MetadataExchange,
    /// CUSTOM action: ext_authz and its shadow RBAC.
    CustomAuthz,
    Authn,
    Rbac,
    /// gRPC stats, fault, CORS, ...
    Builtin,
    Telemetry,
    Terminal,
}

pub fn http_role(filter: &Value) -> Role {
    let name = filter["name"].as_str().unwrap_or("");
    let shadow_ext_authz = filter["typed_config"]["shadow_rules"]["policies"]
        .as_object()
        .is_some_and(|p| p.keys().any(|k| k.starts_with("istio-ext-authz")));
    match name {
        "istio.metadata_exchange" => Role::MetadataExchange,
        "envoy.filters.http.ext_authz" => Role::CustomAuthz,
        "envoy.filters.http.rbac" if shadow_ext_authz => Role::CustomAuthz,
        "envoy.filters.http.rbac" => Role::Rbac,
        "envoy.filters.http.jwt_authn" | "istio_authn" | "istio.authn" => Role::Authn,
        "envoy.filters.http.grpc_stats"
        | "envoy.filters.http.fault"
        | "envoy.filters.http.cors"
        | "envoy.filters.http.grpc_web"
        | "istio.alpn" => Role::Builtin,
        "istio.stats" => Role::Telemetry,
        "envoy.filters.http.router" => Role::Terminal,
        other => panic!("no Istio role known for HTTP filter {other}"),
    }
}

pub fn network_role(filter: &Value) -> Role {
    match filter["name"].as_str().unwrap_or("") {
        "istio_authn" => Role::Front,
        "istio.metadata_exchange" => Role::MetadataExchange,
        "envoy.filters.network.ext_authz" => Role::CustomAuthz,
        "envoy.filters.network.rbac" => Role::Rbac,
        "istio.stats" => Role::Telemetry,
        "envoy.filters.network.tcp_proxy" | "envoy.filters.network.http_connection_manager" => {
            Role::Terminal
        }
        other => panic!("no Istio role known for network filter {other}"),
    }
}

/// Istio's root namespace: its EnvoyFilters and plugins apply to every
/// proxy they select.
pub const ROOT_NAMESPACE: &str = "istio-system";

/// A proxy as Istio picks the configuration that applies to it.
#[derive(Clone, Debug)]
pub struct Proxy {
    /// An ingress gateway (else a sidecar).
    pub gateway: bool,
    /// Its configuration namespace (its pod's).
    pub namespace: String,
    /// Its pod's labels.
    pub labels: Vec<(String, String)>,
}

impl Proxy {
    /// Whether an EnvoyFilter, WasmPlugin or TrafficExtension applies to
    /// this proxy: it is in the proxy's namespace or the root namespace
    /// (`namespace` when the manifest names none), and its
    /// `workloadSelector.labels` (EnvoyFilter) or `selector.matchLabels`
    /// (plugins) are all among the proxy's labels, an absent selector
    /// selecting every proxy of its namespace (push_context.go
    /// `EnvoyFilters`, `TrafficExtensionsByListenerInfo`;
    /// `PolicyMatcherForProxy`). `targetRefs` are not modelled.
    pub fn selects(&self, manifest: &Value, namespace: &str) -> bool {
        let ns = manifest["metadata"]["namespace"]
            .as_str()
            .unwrap_or(namespace);
        let spec = &manifest["spec"];
        assert!(
            spec["targetRefs"].is_null() && spec["targetRef"].is_null(),
            "targetRefs are not modelled"
        );
        let selector = if manifest["kind"] == "EnvoyFilter" {
            &spec["workloadSelector"]["labels"]
        } else {
            &spec["selector"]["matchLabels"]
        };
        let labels_match = selector.as_object().map_or(true, |wanted| {
            wanted.iter().all(|(k, v)| {
                self.labels
                    .iter()
                    .any(|(lk, lv)| lk == k && v.as_str() == Some(lv.as_str()))
            })
        });
        (ns == self.namespace || ns == ROOT_NAMESPACE) && labels_match
    }
}

/// A `WasmPlugin` as Istio sees it.
#[derive(Clone, Debug)]
pub struct Plugin {
    /// The filter's name in Envoy's configuration.
    pub name: String,
    pub phase: String,
    pub priority: i64,
    pub network: bool,
    /// `match`: each selector's mode and ports.
    pub selectors: Vec<(String, Vec<u64>)>,
}

impl Plugin {
    /// From a `WasmPlugin` manifest; `name` is the module it pulls.
    pub fn from_manifest(manifest: &Value, name: &str) -> Plugin {
        let spec = &manifest["spec"];
        Plugin {
            name: name.to_string(),
            phase: spec["phase"]
                .as_str()
                .unwrap_or("UNSPECIFIED_PHASE")
                .to_string(),
            priority: spec["priority"].as_i64().unwrap_or(i64::from(i32::MIN)),
            network: spec["type"] == "NETWORK",
            selectors: spec["match"]
                .as_array()
                .map(|all| {
                    all.iter()
                        .map(|m| {
                            let mode = m["mode"].as_str().unwrap_or("UNDEFINED").to_string();
                            let ports = m["ports"]
                                .as_array()
                                .map(|p| p.iter().filter_map(|p| p["number"].as_u64()).collect())
                                .unwrap_or_default();
                            (mode, ports)
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// Whether Istio puts this plugin on a chain of an inbound (or outbound)
    /// listener for `port` (0: a chain for no particular port).
    pub fn applies(&self, outbound: bool, port: u64) -> bool {
        let mode_matches = |mode: &str| match mode {
            "CLIENT_AND_SERVER" | "UNDEFINED" => true,
            "SERVER" => !outbound,
            "CLIENT" => outbound,
            other => panic!("unknown WasmPlugin match mode {other}"),
        };
        self.selectors.is_empty()
            || self.selectors.iter().any(|(mode, ports)| {
                mode_matches(mode) && (ports.is_empty() || ports.contains(&port))
            })
    }

    fn filter(&self) -> Value {
        serde_json::json!({"name": self.name, "wasm_plugin": {"phase": self.phase, "priority": self.priority}})
    }
}

/// A `TrafficExtension` in a `WasmPlugin`'s shape, as [`Plugin`] reads it:
/// the inverse of Istio's translation (`wasm` folded into `spec`, phase
/// `UNSPECIFIED` named as the WasmPlugin enum names it). A WasmPlugin is
/// returned as it is.
pub fn as_wasm_plugin(manifest: &Value) -> Value {
    if manifest["kind"] != "TrafficExtension" {
        return manifest.clone();
    }
    let mut spec = manifest["spec"].as_object().expect("spec").clone();
    let wasm = spec.remove("wasm").expect("a Wasm extension");
    spec.extend(wasm.as_object().expect("wasm").clone());
    if spec["phase"] == "UNSPECIFIED" {
        spec.insert("phase".to_string(), serde_json::json!("UNSPECIFIED_PHASE"));
    }
    serde_json::json!({"kind": "WasmPlugin", "metadata": manifest["metadata"], "spec": spec})
}

fn phase(plugins: &[Plugin], phase: &str, network: bool) -> Vec<Value> {
    let mut selected: Vec<&Plugin> = plugins
        .iter()
        .filter(|p| p.phase == phase && p.network == network)
        .collect();
    selected.sort_by_key(|p| std::cmp::Reverse(p.priority));
    selected.into_iter().map(Plugin::filter).collect()
}

fn of(filters: &[Value], role: fn(&Value) -> Role, wanted: Role) -> Vec<Value> {
    filters
        .iter()
        .filter(|f| role(f) == wanted)
        .cloned()
        .collect()
}

/// The HTTP filters Istio `minor` (1.minor) builds from the kinds of filter
/// in `istio` (one real chain's `http_filters`), with `plugins` placed.
pub fn http_filters(minor: u32, istio: &[Value], plugins: &[Plugin]) -> Vec<Value> {
    let r = |role| of(istio, http_role, role);
    let mut out = Vec::new();
    if minor >= 16 {
        out.extend(r(Role::MetadataExchange));
    }
    out.extend(r(Role::CustomAuthz));
    out.extend(phase(plugins, "AUTHN", false));
    out.extend(r(Role::Authn));
    out.extend(phase(plugins, "AUTHZ", false));
    out.extend(r(Role::Rbac));
    out.extend(phase(plugins, "STATS", false));
    out.extend(phase(plugins, "UNSPECIFIED_PHASE", false));
    if minor < 16 {
        out.extend(r(Role::MetadataExchange));
    }
    out.extend(r(Role::Builtin));
    out.extend(r(Role::Telemetry));
    out.extend(r(Role::Terminal));
    assert_eq!(
        out.len(),
        istio.len() + plugins.iter().filter(|p| !p.network).count(),
        "every filter placed once"
    );
    out
}

/// The network filters of one chain (`istio`: the real chain's filters),
/// with NETWORK `plugins` placed (Istio 1.20 and later).
pub fn network_filters(istio: &[Value], plugins: &[Plugin]) -> Vec<Value> {
    let r = |role| of(istio, network_role, role);
    let mut out = r(Role::Front);
    out.extend(r(Role::MetadataExchange));
    out.extend(r(Role::CustomAuthz));
    out.extend(phase(plugins, "AUTHN", true));
    out.extend(phase(plugins, "AUTHZ", true));
    out.extend(r(Role::Rbac));
    out.extend(phase(plugins, "STATS", true));
    out.extend(phase(plugins, "UNSPECIFIED_PHASE", true));
    out.extend(r(Role::Telemetry));
    out.extend(r(Role::Terminal));
    assert_eq!(
        out.len(),
        istio.len() + plugins.iter().filter(|p| p.network).count(),
        "every filter placed once"
    );
    out
}

/// The real sidecar's `virtualInbound` listener (tests/fixtures).
pub fn real_virtual_inbound() -> Value {
    let path =
        crate::paths::workspace_root().join("tests/fixtures/istio-sidecar-virtual-inbound.yaml");
    let text = std::fs::read_to_string(&path).expect("the sidecar fixture");
    serde_yaml::from_str(&text).expect("the sidecar fixture is YAML")
}

/// How Istio asks for the plugins of one chain (`model.ListenerInfo`): as a
/// listener of class outbound or gateway (`outbound`: the mode `CLIENT`
/// matches) or inbound (`SERVER`), with the port its HTTP plugins and the
/// one its NETWORK plugins are matched against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PluginSite {
    pub outbound: bool,
    pub http_port: u64,
    pub network_port: u64,
}

/// A chain's destination port (0: a chain for no particular port).
fn destination_port(chain: &Value) -> u64 {
    chain["filter_chain_match"]["destination_port"]
        .as_u64()
        .unwrap_or(0)
}

fn is_tcp(chain: &Value) -> bool {
    chain["filters"].as_array().is_some_and(|f| {
        f.iter()
            .any(|f| f["name"] == "envoy.filters.network.tcp_proxy")
    })
}

/// The site of a chain of an inbound listener, or (`outbound`) of one
/// rebuilt as an outbound listener: on an HTTP chain the port is its
/// target port (`buildSidecarInboundHTTPOpts`, for the HTTP and the network
/// plugins); for the network filters of a TCP chain, the port of the
/// Service (`service_ports`: target port to Service port where they
/// differ; `buildInboundNetworkFilters`).
fn inbound_site(chain: &Value, outbound: bool, service_ports: &[(u64, u64)]) -> PluginSite {
    let target = destination_port(chain);
    let network_port = if is_tcp(chain) {
        service_ports
            .iter()
            .find(|(t, _)| *t == target)
            .map_or(target, |(_, s)| *s)
    } else {
        target
    };
    PluginSite {
        outbound,
        http_port: target,
        network_port,
    }
}

/// Where Istio looks for plugins for `chain` of `listener` (Envoy's
/// shapes: the listener's `name` and `address`, the chain's
/// `filter_chain_match` and `name`) on `proxy`; None for the chains it
/// builds without plugins: the blackhole chains (`buildInboundBlackhole`,
/// `blackholeFilterChain`), the outbound catch-all
/// (`buildOutboundCatchAllNetworkFilterChains`) and an outbound listener's
/// `PassthroughFilterChain` (`buildListenerFromEntry`), all of
/// pilot/pkg/networking/core.
/// - a sidecar's `virtualInbound`: class inbound, ports as [`inbound_site`]
///   (the passthrough chains, of no port: 0);
/// - its other listeners: class outbound, the port of the Service the
///   listener is for, which is the port it binds (`le.servicePort.Port`);
/// - a gateway's listeners: class gateway, which matches as `CLIENT`
///   (`workloadModeForListenerClass`), the port it binds (`opts.port`).
pub fn plugin_site(
    proxy: &Proxy,
    listener: &Value,
    chain: &Value,
    service_ports: &[(u64, u64)],
) -> Option<PluginSite> {
    let name = chain["name"].as_str().unwrap_or("");
    if name.ends_with("-blackhole")
        || name == "virtualOutbound-catchall-tcp"
        || name == "PassthroughFilterChain"
    {
        return None;
    }
    if !proxy.gateway && listener["name"] == "virtualInbound" {
        return Some(inbound_site(chain, false, service_ports));
    }
    let port = listener["address"]["socket_address"]["port_value"]
        .as_u64()
        .expect("a listener's port");
    Some(PluginSite {
        outbound: true,
        http_port: port,
        network_port: port,
    })
}

/// `chain` as Istio 1.`minor` builds it at `site` with `plugins` (those
/// that select the proxy): the network plugins that match the site (from
/// 1.20) among its network filters, on TCP and HTTP chains alike (Istio
/// asks for `FilterChainTypeNetwork` plugins for both), the HTTP plugins
/// that match among the HTTP filters of its connection manager.
pub fn rebuild_chain(chain: &Value, minor: u32, plugins: &[Plugin], site: &PluginSite) -> Value {
    let mut chain = chain.clone();
    let applying = |port: u64, network: bool| -> Vec<Plugin> {
        plugins
            .iter()
            .filter(|p| p.network == network && (!network || minor >= 20))
            .filter(|p| p.applies(site.outbound, port))
            .cloned()
            .collect()
    };
    let filters = chain["filters"].as_array().expect("filters").clone();
    let mut rebuilt = network_filters(&filters, &applying(site.network_port, true));
    for f in rebuilt.iter_mut() {
        if f["name"] == "envoy.filters.network.http_connection_manager" {
            let http = f["typed_config"]["http_filters"]
                .as_array()
                .expect("http_filters")
                .clone();
            f["typed_config"]["http_filters"] =
                Value::Array(http_filters(minor, &http, &applying(site.http_port, false)));
        }
    }
    chain["filters"] = Value::Array(rebuilt);
    chain
}

/// `listener` rebuilt as Istio 1.`minor` would with `plugins`, as an inbound
/// listener or (`outbound`) as one of the app's outbound listeners: every
/// chain's network filters and every connection manager's HTTP filters.
/// `service_ports` maps a chain's target port to the port of the Service
/// that declares it (where they differ).
pub fn rebuild(
    listener: &Value,
    minor: u32,
    plugins: &[Plugin],
    outbound: bool,
    service_ports: &[(u64, u64)],
) -> Value {
    let mut listener = listener.clone();
    for chain in listener["filter_chains"]
        .as_array_mut()
        .expect("filter_chains")
    {
        let site = inbound_site(chain, outbound, service_ports);
        *chain = rebuild_chain(chain, minor, plugins, &site);
    }
    listener
}

/// `listener` with one more filter chain: a copy of its plain-text TCP
/// catch-all for `port`, as Istio adds one per TCP port a Service declares.
pub fn with_tcp_port_chain(listener: &Value, port: u64) -> Value {
    let mut listener = listener.clone();
    let chains = listener["filter_chains"]
        .as_array_mut()
        .expect("filter_chains");
    let mut chain = chains
        .iter()
        .find(|c| {
            c["filter_chain_match"]["transport_protocol"] == "raw_buffer"
                && c["filters"].as_array().is_some_and(|f| {
                    f.iter()
                        .any(|f| f["name"] == "envoy.filters.network.tcp_proxy")
                })
                && c["filter_chain_match"]["destination_port"].is_null()
        })
        .expect("a plain-text TCP chain")
        .clone();
    chain["name"] = Value::String(format!("0.0.0.0_{port}"));
    chain["filter_chain_match"] =
        serde_json::json!({"destination_port": port, "transport_protocol": "raw_buffer"});
    chains.insert(0, chain);
    listener
}
