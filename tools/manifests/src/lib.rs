//! The Istio manifests under `envoyfilters/`, generated from one table so
//! that every filter gets the same shapes: an `EnvoyFilter` loading the
//! `.wasm` from a ConfigMap mounted into the sidecar, an `EnvoyFilter` loading
//! it from a URL with its sha256, and a `WasmPlugin` and a `TrafficExtension`
//! pulling the OCI image `make oci` writes. `make manifests` writes them;
//! `tests/manifests.rs` checks the files are current, valid for the Istio
//! versions they claim, and that Envoy accepts and runs what they insert.

pub mod examples;

use base64::Engine;
use serde_json::{json, Value};

/// Where the ConfigMap with the module is mounted in the sidecar.
pub const WASM_DIR: &str = "/var/local/wasm";
/// Where tap records are written in the sidecar (`kubectl cp` reads them).
pub const RECORD_DIR: &str = "/etc/istio/proxy";
/// Where the ingress gateway runs (Istio's and cf-for-k8s's default).
pub const GATEWAY_NAMESPACE: &str = "istio-system";
/// The host the remote forms fetch modules from.
pub const MODULE_HOST: &str = "wasm.example.com";
/// The app's TCP port in the examples: the one the tap_tcp `WasmPlugin`
/// taps (edit it like the selector).
pub const TCP_PORT: u16 = 9000;
/// The CA bundle the remote forms' `DestinationRule` verifies the module
/// host with: the operating system's bundle in Istio's proxy images (Ubuntu
/// and Wolfi based alike), which the istio-agent reads and serves to Envoy
/// over SDS. Named explicitly so that every release verifies (1.14 to 1.20
/// verify nothing without it) and `istioctl analyze` has no IST0129
/// (`destinationrule.CaCertificateAnalyzer`) to report.
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The Istio releases whose CRDs are in `tests/fixtures/istio-crds/`, oldest
/// first: every manifest is validated against each of them it claims, and
/// its header names the newest.
pub const ISTIO_CRDS: [&str; 6] = ["1.14.6", "1.20.0", "1.24.0", "1.28.0", "1.29.6", "1.30.3"];

/// The `istio.io/istio` version tests/istio/go.mod pins (tests/istio_model.rs
/// checks they agree).
pub const ISTIO_CODE: &str = "v0.0.0-20260827124520-eed52ebb66ad";

/// The kinds of manifest.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Form {
    /// `<filter>.yaml`, `remote/`, the gateway one, `module-source.yaml`.
    EnvoyFilter,
    /// `wasmplugin/`.
    WasmPlugin,
    /// `trafficextension/`: the kind that supersedes `WasmPlugin`, served
    /// from Istio 1.30 only.
    TrafficExtension,
}

impl Form {
    /// The oldest Istio minor release (1.x) the form runs on: `EnvoyFilter`
    /// as cf-for-k8s's last release runs it, `WasmPlugin` with `match`,
    /// `failStrategy` and `type` (1.20), `TrafficExtension` when it appeared.
    pub fn since(self) -> u32 {
        match self {
            Form::EnvoyFilter => 14,
            Form::WasmPlugin => 20,
            Form::TrafficExtension => 30,
        }
    }
}

/// What a plugin does when its VM fails.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Failure {
    /// Skipped: traffic goes on without it (and without it if its module
    /// cannot be fetched).
    Open,
    /// Every request gets 503 until the VM is configured again.
    Close,
    /// After a runtime error (a trap), the next request, at most once a
    /// second, gets a fresh VM; the rest as `Close`.
    Reload,
}

impl Failure {
    /// `failStrategy` of a `WasmPlugin` or a `TrafficExtension`'s `wasm`.
    pub fn strategy(self) -> &'static str {
        match self {
            Failure::Open => "FAIL_OPEN",
            Failure::Close => "FAIL_CLOSE",
            Failure::Reload => "FAIL_RELOAD",
        }
    }
}

/// The failure strategy of a filter in a form. Observers (the taps) fail
/// open in every form: they must never stop traffic, and with `FAIL_RELOAD`
/// a module that cannot be fetched would deny every request. The filters
/// that enforce or strip headers never let a request through unchecked:
/// they reload where every release the form claims can (Istio 1.25 and
/// Envoy 1.33 have `FAIL_RELOAD`: the `TrafficExtension` forms), and fail
/// closed elsewhere, because the `EnvoyFilter` forms claim Istio 1.14 and
/// the `WasmPlugin` forms 1.20, whose Envoys and CRDs refuse it.
pub fn failure(spec: &Spec, form: Form) -> Failure {
    if spec.fail_open {
        return Failure::Open;
    }
    match form {
        Form::EnvoyFilter | Form::WasmPlugin => Failure::Close,
        Form::TrafficExtension => Failure::Reload,
    }
}

pub use filter_registry::Kind;

/// One filter's deployment facts.
#[derive(Clone, Debug)]
pub struct Spec {
    /// `dist/<filter>.wasm`.
    pub filter: String,
    pub kind: Kind,
    /// The plugin configuration shipped in the manifests.
    pub config: Value,
    /// Observers fail open; filters that enforce or strip headers fail
    /// closed, or reload, by form ([`failure`]).
    pub fail_open: bool,
    /// `EnvoyFilter` priority: Istio applies lower first, and each insertion
    /// before the router lands after the previous one.
    pub priority: i32,
    /// `WasmPlugin` and `TrafficExtension` phase (the names both kinds
    /// share), and priority within it (higher runs first).
    pub phase: String,
    pub plugin_priority: i32,
    /// Records to a file under [`RECORD_DIR`] through an access log.
    pub records: Option<String>,
}

/// Every filter of the one list (`filter_registry`), then the suite; an
/// error names the filter declaration that is wrong.
pub fn specs() -> Result<Vec<Spec>, filter_registry::Error> {
    let filters = filter_registry::filters()?;
    let mut all: Vec<Spec> = filters
        .iter()
        .map(|f| Spec {
            filter: f.name.clone(),
            kind: f.kind,
            config: f.example.clone(),
            fail_open: f.fail_open,
            priority: f.order,
            phase: f.phase.clone(),
            plugin_priority: f.plugin_priority,
            records: f.records.clone(),
        })
        .collect();
    // The suite's parts in one module, each with its configuration above:
    // applied instead of them (never together), where the policy runs.
    let suite = filters
        .iter()
        .filter(|f| f.in_suite)
        .map(|f| (f.name.clone(), f.example.clone()))
        .collect();
    let records = filters
        .iter()
        .filter(|f| f.in_suite)
        .find_map(|f| f.records.clone());
    all.push(Spec {
        filter: "suite".into(),
        kind: Kind::Http,
        config: Value::Object(suite),
        fail_open: false,
        priority: 10,
        phase: "AUTHZ".into(),
        plugin_priority: 100,
        records,
    });
    Ok(all)
}

/// The generated `examples/<filter>/` files (paths from the workspace root)
/// of every filter without a hand-written example.
pub fn example_files() -> Result<Vec<(String, String)>, filter_registry::Error> {
    let root = workspace_root();
    Ok(filter_registry::filters()?
        .iter()
        .filter(|f| examples::is_generated(&root, &f.name))
        .flat_map(examples::files)
        .collect())
}

/// `cf_headers` at an ingress gateway: identity per host.
pub fn gateway_config() -> Value {
    json!({"hosts": {"my-app.apps.example.com": {
        "app_guid": "00000000-0000-0000-0000-000000000000",
        "process_type": "web",
        "org_guid": "00000000-0000-0000-0000-000000000000",
        "space_guid": "00000000-0000-0000-0000-000000000000"
    }}, "on_missing_identity": "pass"})
}

fn k8s_name(filter: &str) -> String {
    filter.replace('_', "-")
}

/// The cluster Istio makes for the `ServiceEntry` of [`MODULE_HOST`]: its
/// port 80, which the `DestinationRule` turns into TLS to port 443.
pub fn module_cluster() -> String {
    format!("outbound|80||{MODULE_HOST}")
}

/// Where the module comes from: a mounted file, a URL and its sha256, or
/// the bytes themselves inside the manifest.
#[derive(Clone, Copy)]
pub enum Code<'a> {
    ConfigMap,
    Remote { sha256: &'a str },
    Inline { wasm: &'a [u8] },
}

fn wasm_config(spec: &Spec, config: &Value, code: Code) -> Value {
    let code = match code {
        Code::ConfigMap => {
            json!({"local": {"filename": format!("{WASM_DIR}/{}.wasm", spec.filter)}})
        }
        Code::Remote { sha256 } => json!({"remote": {
            "http_uri": {
                "uri": format!("http://{MODULE_HOST}/{}.wasm", spec.filter),
                "cluster": module_cluster(),
                "timeout": "10s"
            },
            "sha256": sha256,
            "retry_policy": {"num_retries": 3}
        }}),
        Code::Inline { wasm } => json!({"local": {
            "inline_bytes": base64::engine::general_purpose::STANDARD.encode(wasm)
        }}),
    };
    let type_url = match spec.kind {
        Kind::Http => "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
        Kind::Network => "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm",
    };
    // `fail_open` is what every Envoy since Istio 1.14's knows (deprecated
    // in favour of `failure_policy`, which only Envoy 1.33 and later accept,
    // and never both: Envoy refuses `fail_open: true` with a policy).
    let (failure_key, failure_value) = match failure(spec, Form::EnvoyFilter) {
        Failure::Open => ("fail_open", json!(true)),
        Failure::Close => ("fail_open", json!(false)),
        Failure::Reload => ("failure_policy", json!("FAIL_RELOAD")),
    };
    let mut plugin = json!({
        "name": spec.filter,
        "root_id": spec.filter,
        "vm_config": {"vm_id": spec.filter, "runtime": "envoy.wasm.runtime.v8", "code": code},
        "configuration": {
            "@type": "type.googleapis.com/google.protobuf.StringValue",
            "value": config.to_string()
        }
    });
    insert(&mut plugin, "", failure_key, failure_value);
    json!({"name": spec.filter, "typed_config": {"@type": type_url, "config": plugin}})
}

/// Sets `key` to `field` in the object at `pointer` (JSON pointer) in
/// `value`, an object this file built.
fn insert(value: &mut Value, pointer: &str, key: &str, field: Value) {
    if let Some(object) = value.pointer_mut(pointer).and_then(Value::as_object_mut) {
        object.insert(key.to_string(), field);
    }
}

/// The file access log that writes the records a tap leaves in filter state
/// to `path`, one JSON line each, skipping streams without a record.
pub fn record_log(path: &str) -> Value {
    json!({
        "name": "envoy.access_loggers.file",
        "filter": {"extension_filter": {
            "name": "envoy.access_loggers.extension_filters.cel",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter",
                "expression": "'wasm.tap_trace' in filter_state"
            }
        }},
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "path": path,
            "log_format": {"text_format_source": {"inline_string": "%FILTER_STATE(wasm.tap_trace:PLAIN)%\n"}}
        }
    })
}

const HCM: &str = "envoy.filters.network.http_connection_manager";
const TCP_PROXY: &str = "envoy.filters.network.tcp_proxy";

/// The patch that adds the records' access log to the connection manager (or tcp_proxy).
fn record_patch(spec: &Spec, context: &str) -> Option<Value> {
    let file = spec.records.as_deref()?;
    let (name, type_url) = match spec.kind {
        Kind::Http => (HCM, "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"),
        Kind::Network => (TCP_PROXY, "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"),
    };
    Some(json!({
        "applyTo": "NETWORK_FILTER",
        "match": {"context": context, "listener": listener_match(spec, json!({"filter": {"name": name}}))},
        "patch": {"operation": "MERGE", "value": {"typed_config": {"@type": type_url, "access_log": [record_log(&format!("{RECORD_DIR}/{file}"))]}}}
    }))
}

/// The listener part of a patch's match. A network filter goes to the chains
/// of [`TCP_PORT`] only, as the plugin forms' `match.ports` do: without a
/// port, Istio's translation puts it on every inbound chain that ends in
/// tcp_proxy, the passthrough and blackhole chains included (tests/istio).
fn listener_match(spec: &Spec, filter_chain: Value) -> Value {
    match spec.kind {
        Kind::Http => json!({"filterChain": filter_chain}),
        Kind::Network => json!({"portNumber": TCP_PORT, "filterChain": filter_chain}),
    }
}

fn filter_patch(spec: &Spec, config: &Value, code: Code, context: &str) -> Value {
    let (apply_to, matched) = match spec.kind {
        Kind::Http => (
            "HTTP_FILTER",
            json!({"filter": {"name": HCM, "subFilter": {"name": "envoy.filters.http.router"}}}),
        ),
        Kind::Network => ("NETWORK_FILTER", json!({"filter": {"name": TCP_PROXY}})),
    };
    json!({
        "applyTo": apply_to,
        "match": {"context": context, "listener": listener_match(spec, matched)},
        "patch": {"operation": "INSERT_BEFORE", "value": wasm_config(spec, config, code)}
    })
}

/// An `EnvoyFilter` for the sidecars of workloads labelled `app: my-app`
/// (or, for `gateway`, the ingress gateway in [`GATEWAY_NAMESPACE`]).
pub fn envoy_filter(spec: &Spec, code: Code, gateway: bool) -> Value {
    let (context, selector, metadata, config) = if gateway {
        (
            "GATEWAY",
            json!({"istio": "ingressgateway"}),
            json!({"name": format!("{}-gateway", k8s_name(&spec.filter)), "namespace": GATEWAY_NAMESPACE}),
            gateway_config(),
        )
    } else {
        (
            "SIDECAR_INBOUND",
            json!({"app": "my-app"}),
            json!({"name": k8s_name(&spec.filter)}),
            spec.config.clone(),
        )
    };
    let mut patches = vec![filter_patch(spec, &config, code, context)];
    patches.extend(record_patch(spec, context));
    json!({
        "apiVersion": "networking.istio.io/v1alpha3",
        "kind": "EnvoyFilter",
        "metadata": metadata,
        "spec": {"workloadSelector": {"labels": selector}, "priority": spec.priority, "configPatches": patches}
    })
}

/// The image `make oci` writes for a module, as users push it.
pub fn image(filter: &str) -> String {
    format!("ghcr.io/example/{filter}:{}", oci_layout::TAG)
}

/// Where a plugin goes and what it is told: its metadata, the labels it
/// selects, its configuration and its phase (the gateway's in `AUTHN`).
fn plugin_placement(spec: &Spec, gateway: bool) -> (Value, Value, Value, &str) {
    if gateway {
        (
            json!({"name": format!("{}-gateway", k8s_name(&spec.filter)), "namespace": GATEWAY_NAMESPACE}),
            json!({"istio": "ingressgateway"}),
            gateway_config(),
            "AUTHN",
        )
    } else {
        (
            json!({"name": k8s_name(&spec.filter)}),
            json!({"app": "my-app"}),
            spec.config.clone(),
            &spec.phase,
        )
    }
}

/// A sidecar plugin's `match`. Without it Istio also puts a plugin on the
/// app's outbound listeners (pilot/pkg/model/extensions.go,
/// matchTrafficSelectors). A NETWORK plugin would also sit in front of every
/// inbound HTTP connection manager, where no access log writes its records.
fn sidecar_match(spec: &Spec) -> Value {
    match spec.kind {
        Kind::Http => json!([{"mode": "SERVER"}]),
        Kind::Network => json!([{"mode": "SERVER", "ports": [{"number": TCP_PORT}]}]),
    }
}

fn plugin_type(spec: &Spec) -> &'static str {
    match spec.kind {
        Kind::Http => "HTTP",
        Kind::Network => "NETWORK",
    }
}

/// A `WasmPlugin` (Istio 1.20 and later: `type` and `failStrategy`) pulling
/// the module's image. For `oci://` Istio checks `sha256` against the image
/// manifest's digest, not the module's (pkg/wasm/imagefetcher.go).
pub fn wasm_plugin(spec: &Spec, image_digest: &str, gateway: bool) -> Value {
    let sha256 = image_digest.trim_start_matches("sha256:");
    let (metadata, selector, config, phase) = plugin_placement(spec, gateway);
    let mut plugin = json!({
        "apiVersion": "extensions.istio.io/v1alpha1",
        "kind": "WasmPlugin",
        "metadata": metadata,
        "spec": {
            "selector": {"matchLabels": selector},
            "url": format!("oci://{}", image(&spec.filter)),
            "sha256": sha256,
            "imagePullPolicy": "IfNotPresent",
            "phase": phase,
            "priority": spec.plugin_priority,
            "failStrategy": failure(spec, Form::WasmPlugin).strategy(),
            "type": plugin_type(spec),
            "pluginConfig": config
        }
    });
    if !gateway {
        insert(&mut plugin, "/spec", "match", sidecar_match(spec));
    }
    plugin
}

/// A `TrafficExtension` (Istio 1.30 and later), the kind that supersedes
/// `WasmPlugin`: the same plugin, placed the same way (selector, `phase`,
/// `priority` and `match` at the top; the module, its digest, `type` and
/// configuration under `wasm`), as Istio 1.30 translates a `WasmPlugin`
/// (pilot/pkg/config/kube/extensions/translate.go). Only `failStrategy`
/// differs: the filters that enforce reload their VM after a crash.
pub fn traffic_extension(spec: &Spec, image_digest: &str, gateway: bool) -> Value {
    let sha256 = image_digest.trim_start_matches("sha256:");
    let (metadata, selector, config, phase) = plugin_placement(spec, gateway);
    let mut extension = json!({
        "apiVersion": "extensions.istio.io/v1alpha1",
        "kind": "TrafficExtension",
        "metadata": metadata,
        "spec": {
            "selector": {"matchLabels": selector},
            "phase": phase,
            "priority": spec.plugin_priority,
            "wasm": {
                "url": format!("oci://{}", image(&spec.filter)),
                "sha256": sha256,
                "imagePullPolicy": "IfNotPresent",
                "failStrategy": failure(spec, Form::TrafficExtension).strategy(),
                "type": plugin_type(spec),
                "pluginConfig": config
            }
        }
    });
    if !gateway {
        insert(&mut extension, "/spec", "match", sidecar_match(spec));
    }
    extension
}

/// The access-log half of a tap deployed as a `WasmPlugin` or a
/// `TrafficExtension`, which cannot add an access log themselves: the same
/// object for both (same name, so applying both leaves one).
pub fn wasm_plugin_records(spec: &Spec) -> Option<Value> {
    let patch = record_patch(spec, "SIDECAR_INBOUND")?;
    Some(json!({
        "apiVersion": "networking.istio.io/v1alpha3",
        "kind": "EnvoyFilter",
        "metadata": {"name": format!("{}-records", k8s_name(&spec.filter))},
        "spec": {"workloadSelector": {"labels": {"app": "my-app"}}, "configPatches": [patch]}
    }))
}

/// What the remote forms need besides the `EnvoyFilter`, in the namespace
/// of the workloads (Istio's egress TLS origination pattern): a
/// `ServiceEntry` whose port 80 makes the cluster Envoy fetches through, and
/// a `DestinationRule` that originates TLS on it to port 443 and checks the
/// server's certificate against [`SYSTEM_CA_BUNDLE`] and its name. With the `ServiceEntry` alone the cluster is plain TCP and
/// the fetch goes out unencrypted. Both are exported to their own namespace
/// only, so no other workload's traffic to the host changes.
pub fn module_source() -> Vec<Value> {
    vec![
        json!({
            "apiVersion": "networking.istio.io/v1beta1",
            "kind": "ServiceEntry",
            "metadata": {"name": "wasm-modules"},
            "spec": {
                "hosts": [MODULE_HOST],
                "exportTo": ["."],
                "location": "MESH_EXTERNAL",
                "resolution": "DNS",
                "ports": [{"number": 80, "name": "http-modules", "protocol": "HTTP", "targetPort": 443}]
            }
        }),
        json!({
            "apiVersion": "networking.istio.io/v1beta1",
            "kind": "DestinationRule",
            "metadata": {"name": "wasm-modules"},
            "spec": {
                "host": MODULE_HOST,
                "exportTo": ["."],
                "trafficPolicy": {"portLevelSettings": [{
                    "port": {"number": 80},
                    "tls": {
                        "mode": "SIMPLE",
                        "sni": MODULE_HOST,
                        "subjectAltNames": [MODULE_HOST],
                        "caCertificates": SYSTEM_CA_BUNDLE
                    }
                }]}
            }
        }),
    ]
}

/// The workspace, whose `dist/` holds the modules.
pub use filter_registry::workspace_root;

/// The sha256 of bytes, in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The bytes of `dist/<module>.wasm`.
pub fn module_bytes(module: &str) -> Result<Vec<u8>, String> {
    let path = workspace_root().join("dist").join(format!("{module}.wasm"));
    std::fs::read(&path).map_err(|e| format!("{}: {e} (run `make build` first)", path.display()))
}

/// The sha256 of `dist/<module>.wasm`, in hex.
pub fn module_sha256(module: &str) -> Result<String, String> {
    module_bytes(module).map(|b| sha256_hex(&b))
}

// serde_yaml fails only on what YAML cannot hold (non-string map keys,
// nested enums) or on a `Serialize` impl's own error; a JSON value emits
// null, booleans, numbers, strings, sequences and string-keyed maps.
#[allow(clippy::expect_used)]
fn yaml_docs(values: &[Value]) -> String {
    values
        .iter()
        .map(|v| serde_yaml::to_string(v).expect("YAML"))
        .collect::<Vec<_>>()
        .join("---\n")
}

/// The releases of [`ISTIO_CRDS`] from Istio 1.`since` on.
pub fn crds_since(since: u32) -> Vec<&'static str> {
    ISTIO_CRDS
        .into_iter()
        .filter(|v| v.split('.').nth(1).and_then(|m| m.parse::<u32>().ok()) >= Some(since))
        .collect()
}

/// What a file was checked against, for its header: the newest Istio and
/// how (the CRDs of `kinds` in `tests/fixtures/istio-crds/`, what `also`
/// says, and Istio's own code at [`ISTIO_CODE`]: tests/istio places,
/// validates and analyzes every form).
pub fn checked(kinds: &str, since: u32, also: &str) -> String {
    let crds = crds_since(since);
    let range = match (crds.first(), crds.last()) {
        (Some(first), Some(newest)) if first != newest => {
            format!("the {kinds} CRDs of Istio {first} to {newest}")
        }
        (Some(newest), _) => format!("the {kinds} CRD of Istio {newest}"),
        (None, _) => format!("no {kinds} CRD of Istio 1.{since} or later"),
    };
    format!("Checked: {range}, the newest (tests/manifests.rs); {also}; checked by Istio's own code at istio.io/istio {ISTIO_CODE} (tests/istio/).")
}

/// Every generated file: its path under `envoyfilters/` and its text, for
/// the modules `wasm` gives (`dist/<module>.wasm`).
pub fn files(
    wasm: &dyn Fn(&str) -> Vec<u8>,
) -> Result<Vec<(String, String)>, filter_registry::Error> {
    let yaml = |header: &str, checked: &str, values: &[Value]| -> String {
        format!(
            "# Generated by `make manifests` from tools/manifests/src/lib.rs; edit there.\n# {header}\n# {checked}\n{}",
            yaml_docs(values)
        )
    };
    let envoy_filter_checked = checked(
        "EnvoyFilter",
        Form::EnvoyFilter.since(),
        "what it inserts, run in Envoy",
    );
    let wasm_plugin_checked = checked(
        "WasmPlugin",
        Form::WasmPlugin.since(),
        "its Envoy configuration as Istio's source builds it, run in Envoy",
    );
    let traffic_extension_checked = format!(
        "TrafficExtension exists from Istio 1.30 only (it supersedes WasmPlugin; before 1.30 use ../wasmplugin/). {}",
        checked(
            "TrafficExtension",
            Form::TrafficExtension.since(),
            "its Envoy configuration as Istio's source builds it, run in Envoy",
        )
    );
    let records_checked =
        |form: Form| checked("EnvoyFilter", form.since(), "the access log, run in Envoy");
    let mut out = Vec::new();
    for spec in specs()? {
        let f = spec.filter.as_str();
        let module = wasm(f);
        let digest = oci_layout::manifest_digest(&module);
        // Where a network filter goes: the one port it taps (edit it too).
        let at = match spec.kind {
            Kind::Http => String::new(),
            Kind::Network => format!(", on their inbound TCP port {TCP_PORT}"),
        };
        out.push((
            format!("{f}.yaml"),
            yaml(
                &format!("{f} in the sidecars of pods labelled app=my-app{at} (Istio 1.14 and later); the module comes from ConfigMap {}-wasm mounted at {WASM_DIR} (see README.md).", k8s_name(f)),
                &envoy_filter_checked,
                &[envoy_filter(&spec, Code::ConfigMap, false)],
            ),
        ));
        out.push((
            format!("remote/{f}.yaml"),
            yaml(
                &format!("{f} fetched by Envoy from {MODULE_HOST} over TLS and checked against its sha256{at} (Istio 1.14 and later); apply remote/module-source.yaml in the same namespace."),
                &envoy_filter_checked,
                &[envoy_filter(&spec, Code::Remote { sha256: &sha256_hex(&module) }, false)],
            ),
        ));
        out.push((
            format!("wasmplugin/{f}.yaml"),
            yaml(
                &format!("{f} as an Istio WasmPlugin (Istio 1.20 and later), pulling the image `make oci` writes to dist/oci/{f}/, pushed as {}; sha256 is that image's manifest digest.", image(f)),
                &wasm_plugin_checked,
                &[wasm_plugin(&spec, &digest, false)],
            ),
        ));
        out.push((
            format!("trafficextension/{f}.yaml"),
            yaml(
                &format!("{f} as an Istio TrafficExtension (Istio 1.30 and later), pulling the image `make oci` writes to dist/oci/{f}/, pushed as {}; sha256 is that image's manifest digest.", image(f)),
                &traffic_extension_checked,
                &[traffic_extension(&spec, &digest, false)],
            ),
        ));
        if let Some(records) = wasm_plugin_records(&spec) {
            out.push((
                format!("wasmplugin/{f}-records.yaml"),
                yaml(
                    &format!(
                        "The access log that writes {f} records; apply with wasmplugin/{f}.yaml (Istio 1.20 and later)."
                    ),
                    &records_checked(Form::WasmPlugin),
                    std::slice::from_ref(&records),
                ),
            ));
            out.push((
                format!("trafficextension/{f}-records.yaml"),
                yaml(
                    &format!(
                        "The access log that writes {f} records; apply with trafficextension/{f}.yaml (Istio 1.30 and later). The same object as wasmplugin/{f}-records.yaml: a TrafficExtension cannot add an access log either."
                    ),
                    &records_checked(Form::TrafficExtension),
                    &[records],
                ),
            ));
        }
        if f == "cf_headers" {
            out.push((
                format!("{f}-gateway.yaml"),
                yaml(
                    &format!("cf_headers at the ingress gateway in {GATEWAY_NAMESPACE}: CF identity per host (fill in the host table). The module is inside this manifest (Istio 1.14 and later): nothing to mount into the gateway."),
                    &envoy_filter_checked,
                    &[envoy_filter(&spec, Code::Inline { wasm: &module }, true)],
                ),
            ));
            out.push((
                format!("wasmplugin/{f}-gateway.yaml"),
                yaml(
                    &format!("cf_headers at the ingress gateway in {GATEWAY_NAMESPACE} as a WasmPlugin (Istio 1.20 and later): CF identity per host (fill in the host table)."),
                    &wasm_plugin_checked,
                    &[wasm_plugin(&spec, &digest, true)],
                ),
            ));
            out.push((
                format!("trafficextension/{f}-gateway.yaml"),
                yaml(
                    &format!("cf_headers at the ingress gateway in {GATEWAY_NAMESPACE} as a TrafficExtension (Istio 1.30 and later): CF identity per host (fill in the host table)."),
                    &traffic_extension_checked,
                    &[traffic_extension(&spec, &digest, true)],
                ),
            ));
        }
    }
    out.push((
        "remote/module-source.yaml".to_string(),
        yaml(
            &format!("For the remote/ forms, in their namespace: the ServiceEntry that makes Envoy's cluster {} and the DestinationRule that makes it speak TLS to {MODULE_HOST}:443, checking the server's certificate against the proxy image's CA bundle and its name (Istio 1.14 and later).", module_cluster()),
            &checked(
                "ServiceEntry and DestinationRule",
                Form::EnvoyFilter.since(),
                "nothing for istioctl analyze's destinationrule.CaCertificateAnalyzer (IST0129) to report; the TLS cluster, run in Envoy",
            ),
            &module_source(),
        ),
    ));
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
#[allow(clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn spec(filter: &str) -> Spec {
        specs()
            .unwrap()
            .into_iter()
            .find(|s| s.filter == filter)
            .expect("a filter")
    }

    #[test]
    fn taps_fail_open_everywhere_and_the_rest_reload_only_where_every_claimed_release_can() {
        for filter in ["tap_http", "tap_tcp"] {
            for form in [Form::EnvoyFilter, Form::WasmPlugin, Form::TrafficExtension] {
                assert_eq!(failure(&spec(filter), form), Failure::Open, "{filter}");
            }
        }
        for filter in ["peer_metadata", "l7_policy", "cf_headers", "suite"] {
            assert_eq!(failure(&spec(filter), Form::EnvoyFilter), Failure::Close);
            assert_eq!(failure(&spec(filter), Form::WasmPlugin), Failure::Close);
            assert_eq!(
                failure(&spec(filter), Form::TrafficExtension),
                Failure::Reload
            );
        }
        // FAIL_RELOAD needs Istio 1.25: only a form claiming 1.25 and later has it.
        for form in [Form::EnvoyFilter, Form::WasmPlugin, Form::TrafficExtension] {
            let reloads = failure(&spec("l7_policy"), form) == Failure::Reload;
            assert_eq!(reloads, form.since() >= 25, "{form:?}");
        }
    }

    #[test]
    fn the_envoy_filter_forms_keep_the_field_every_envoy_knows() {
        for s in specs().unwrap() {
            let f = envoy_filter(&s, Code::ConfigMap, false);
            let config = &f["spec"]["configPatches"][0]["patch"]["value"]["typed_config"]["config"];
            assert_eq!(config["fail_open"], json!(s.fail_open), "{}", s.filter);
            assert!(config.get("failure_policy").is_none());
        }
    }

    #[test]
    fn headers_name_the_releases_checked_and_istios_own_code() {
        assert_eq!(crds_since(30), ["1.30.3"]);
        assert_eq!(crds_since(14), ISTIO_CRDS);
        assert_eq!(crds_since(20)[0], "1.20.0");
        let one = checked("TrafficExtension", 30, "run");
        assert!(
            one.contains("the TrafficExtension CRD of Istio 1.30.3, the newest"),
            "{one}"
        );
        let range = checked("WasmPlugin", 20, "run");
        assert!(range.contains("CRDs of Istio 1.20.0 to 1.30.3"), "{range}");
        assert!(
            range.ends_with(&format!(
                "checked by Istio's own code at istio.io/istio {ISTIO_CODE} (tests/istio/)."
            )),
            "{range}"
        );
    }

    #[test]
    fn a_traffic_extension_is_its_wasm_plugin_with_the_module_under_wasm() {
        for s in specs().unwrap() {
            for gateway in [false, true] {
                let plugin = wasm_plugin(&s, "sha256:00", gateway);
                let extension = traffic_extension(&s, "sha256:00", gateway);
                let (p, e) = (&plugin["spec"], &extension["spec"]);
                for key in ["selector", "phase", "priority", "match"] {
                    assert_eq!(p[key], e[key], "{} {key}", s.filter);
                }
                for key in ["url", "sha256", "imagePullPolicy", "type", "pluginConfig"] {
                    assert_eq!(p[key], e["wasm"][key], "{} {key}", s.filter);
                }
                assert_eq!(plugin["metadata"], extension["metadata"]);
            }
        }
    }

    #[test]
    fn the_module_source_verifies_the_server_with_the_proxy_images_bundle() {
        let rule = &module_source()[1];
        let tls = &rule["spec"]["trafficPolicy"]["portLevelSettings"][0]["tls"];
        assert_eq!(tls["mode"], "SIMPLE");
        assert_eq!(tls["caCertificates"], SYSTEM_CA_BUNDLE);
    }
}
