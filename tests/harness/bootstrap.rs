//! Generated Envoy bootstraps: loopback listeners on port 0, an upstream
//! cluster, and HTTP filters that load the built `.wasm` files.

use crate::paths;
use serde_json::{json, Value};

/// An Envoy bootstrap under construction. Every listener binds 127.0.0.1:0;
/// [`crate::Envoy::port`] tells which port each one got.
#[derive(Clone, Debug)]
pub struct Bootstrap {
    value: Value,
}

impl Bootstrap {
    /// No listeners yet; cluster `upstream` points at 127.0.0.1:`upstream_port`.
    pub fn new(upstream_port: u16) -> Bootstrap {
        Bootstrap {
            value: json!({
                "admin": {"address": socket(0)},
                "static_resources": {
                    "listeners": [],
                    "clusters": [{
                        "name": "upstream",
                        "type": "STATIC",
                        "connect_timeout": "2s",
                        "typed_extension_protocol_options": {
                            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                                "explicit_http_config": {"http_protocol_options": {"enable_trailers": true}}
                            }
                        },
                        "load_assignment": {
                            "cluster_name": "upstream",
                            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": socket(upstream_port)}}]}]
                        }
                    }]
                }
            }),
        }
    }

    /// Adds a plain HTTP/1.1 cluster `name` at 127.0.0.1:`port` (for example a
    /// collector that filters call with `dispatch_http_call`).
    pub fn cluster(mut self, name: &str, port: u16) -> Bootstrap {
        let cluster = json!({
            "name": name,
            "type": "STATIC",
            "connect_timeout": "1s",
            "load_assignment": {
                "cluster_name": name,
                "endpoints": [{"lb_endpoints": [{"endpoint": {"address": socket(port)}}]}]
            }
        });
        if let Some(Value::Array(clusters)) = self.value.pointer_mut("/static_resources/clusters") {
            clusters.push(cluster);
        }
        self
    }

    /// One HTTP listener `main` with `filters` before the router.
    pub fn http(upstream_port: u16, filters: Vec<Value>) -> Bootstrap {
        Bootstrap::new(upstream_port).listener("main", filters, json!({}))
    }

    /// Adds an HTTP listener: `filters` run before the router; the fields of
    /// `route_extra` (for example `request_headers_to_add`) join the one route.
    pub fn listener(self, name: &str, filters: Vec<Value>, route_extra: Value) -> Bootstrap {
        let mut route =
            json!({"match": {"prefix": "/"}, "route": {"cluster": "upstream", "timeout": "30s"}});
        merge(&mut route, &route_extra);
        let virtual_hosts = json!([{"name": name, "domains": ["*"], "routes": [route]}]);
        self.listener_with(name, filters, virtual_hosts, json!({}))
    }

    /// Adds an HTTP listener with its own virtual hosts (each route should go
    /// to cluster `upstream`) and extra connection manager fields.
    pub fn listener_with(
        mut self,
        name: &str,
        filters: Vec<Value>,
        virtual_hosts: Value,
        hcm_extra: Value,
    ) -> Bootstrap {
        let mut http_filters = filters;
        http_filters.push(json!({
            "name": "envoy.filters.http.router",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}
        }));
        let mut hcm = json!({
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": name,
            "codec_type": "AUTO",
            "http_protocol_options": {"enable_trailers": true},
            "route_config": {"name": name, "virtual_hosts": virtual_hosts},
            "http_filters": http_filters
        });
        merge(&mut hcm, &hcm_extra);
        let listener = json!({
            "name": name,
            "address": socket(0),
            "filter_chains": [{"filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": hcm
            }]}]
        });
        self.listeners().push(listener);
        self
    }

    /// Adds a TCP listener: `filters` (network filters) run before a
    /// `tcp_proxy` to `cluster`; `chain_extra` joins the filter chain (a
    /// `transport_socket`), `proxy_extra` the `tcp_proxy` (an `access_log`).
    pub fn tcp_listener(
        mut self,
        name: &str,
        filters: Vec<Value>,
        cluster: &str,
        chain_extra: Value,
        proxy_extra: Value,
    ) -> Bootstrap {
        let mut proxy = json!({
            "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
            "stat_prefix": name,
            "cluster": cluster
        });
        merge(&mut proxy, &proxy_extra);
        let mut network_filters = filters;
        network_filters
            .push(json!({"name": "envoy.filters.network.tcp_proxy", "typed_config": proxy}));
        let mut chain = json!({"filters": network_filters});
        merge(&mut chain, &chain_extra);
        let listener = json!({"name": name, "address": socket(0), "filter_chains": [chain]});
        self.listeners().push(listener);
        self
    }

    /// Adds a listener as given (its address should be 127.0.0.1:0).
    pub fn raw_listener(mut self, listener: Value) -> Bootstrap {
        self.listeners().push(listener);
        self
    }

    /// Sets `key` on listener `name` (for example `listener_filters`).
    pub fn listener_field(mut self, name: &str, key: &str, value: Value) -> Bootstrap {
        if let Some(listener) = self.listeners().iter_mut().find(|l| l["name"] == name) {
            listener[key] = value;
        }
        self
    }

    /// Sets `key` on the filter chain of listener `name` (for example
    /// `transport_socket`).
    pub fn chain_field(mut self, name: &str, key: &str, value: Value) -> Bootstrap {
        if let Some(listener) = self.listeners().iter_mut().find(|l| l["name"] == name) {
            listener["filter_chains"][0][key] = value;
        }
        self
    }

    /// Sets `key` on cluster `name` (for example `transport_socket`).
    pub fn cluster_field(mut self, name: &str, key: &str, value: Value) -> Bootstrap {
        if let Some(Value::Array(clusters)) = self.value.pointer_mut("/static_resources/clusters") {
            if let Some(cluster) = clusters.iter_mut().find(|c| c["name"] == name) {
                cluster[key] = value;
            }
        }
        self
    }

    /// Sets the node's metadata, as Istio does (pod labels under `LABELS`).
    pub fn node_metadata(mut self, metadata: Value) -> Bootstrap {
        self.value["node"] = json!({"id": "test-node", "cluster": "test", "metadata": metadata});
        self
    }

    fn listeners(&mut self) -> &mut Vec<Value> {
        match self.value.pointer_mut("/static_resources/listeners") {
            Some(Value::Array(listeners)) => listeners,
            _ => unreachable!("Bootstrap::new always creates the listener list"),
        }
    }

    pub fn json(&self) -> &Value {
        &self.value
    }
}

fn merge(into: &mut Value, extra: &Value) {
    if let (Some(into), Some(extra)) = (into.as_object_mut(), extra.as_object()) {
        into.extend(extra.clone());
    }
}

fn socket(port: u16) -> Value {
    json!({"socket_address": {"address": "127.0.0.1", "port_value": port}})
}

/// `envoy.filters.http.wasm` loading the test-only module `name`
/// (`tests/fixtures/<name>`) with `config`.
pub fn wasm_fixture(name: &str, config: &Value) -> Value {
    wasm_http(name, &paths::fixture_wasm(name), &config.to_string())
}

/// `envoy.filters.network.wasm` loading `dist/<filter>.wasm` with `config`.
pub fn wasm_network_filter(filter: &str, config: &Value) -> Value {
    let mut value = wasm_filter(filter, config);
    value["name"] = json!("envoy.filters.network.wasm");
    value["typed_config"]["@type"] =
        json!("type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm");
    value
}

/// `envoy.filters.http.wasm` loading `dist/<filter>.wasm` with `config` as its
/// plugin configuration (JSON).
pub fn wasm_filter(filter: &str, config: &Value) -> Value {
    wasm_filter_raw(filter, &config.to_string())
}

/// Like [`wasm_filter`] with the plugin configuration given verbatim, so tests
/// can hand the filter malformed documents.
pub fn wasm_filter_raw(filter: &str, configuration: &str) -> Value {
    wasm_http(filter, &paths::wasm(filter), configuration)
}

fn wasm_http(filter: &str, filename: &std::path::Path, configuration: &str) -> Value {
    json!({
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": filter,
                "root_id": filter,
                "vm_config": {
                    "vm_id": filter,
                    "runtime": paths::wasm_runtime(),
                    "code": {"local": {"filename": filename}}
                },
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": configuration
                },
                "fail_open": false
            }
        }
    })
}
