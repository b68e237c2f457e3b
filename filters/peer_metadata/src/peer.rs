//! The caller's identity, from whichever form Istio sent it in: the metadata
//! exchange `Struct` of any Istio generation, the peer Istio left in filter
//! state, or the ambient `baggage` header. Every key is optional; what is
//! absent stays `None`.

use crate::structpb::{Struct, Value};
use filter_common::encoding::percent::decode;
use filter_common::header::pairs::HeaderMap;
use filter_common::peer::Peer;

/// Labels that name the app and its version, most specific first: Istio's
/// canonical-service rules.
const APP_LABELS: [&str; 3] = [
    "app",
    "app.kubernetes.io/name",
    "service.istio.io/canonical-name",
];
const VERSION_LABELS: [&str; 3] = [
    "version",
    "app.kubernetes.io/version",
    "service.istio.io/canonical-revision",
];

fn text(s: Option<&str>) -> Option<String> {
    s.filter(|s| !s.is_empty()).map(str::to_string)
}

/// Istio's node fields, whatever the encoding they came in.
#[derive(Debug, Default)]
pub struct NodeFields<'a> {
    pub name: Option<&'a str>,
    pub namespace: Option<&'a str>,
    pub workload_name: Option<&'a str>,
    pub owner: Option<&'a str>,
    pub cluster_id: Option<&'a str>,
    pub service_account: Option<&'a str>,
    pub canonical_telemetry_service: Option<&'a str>,
    pub identity: Option<&'a str>,
    pub region: Option<&'a str>,
    pub zone: Option<&'a str>,
    pub labels: Vec<(String, String)>,
}

/// From the metadata-exchange `Struct` (Istio 1.3 and later).
pub fn from_struct(s: &Struct) -> Peer {
    let labels: Vec<(String, String)> = s
        .structure("LABELS")
        .map(|l| {
            l.0.iter()
                .filter_map(|(k, v)| match v {
                    Value::String(v) => Some((k.clone(), v.clone())),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    from_node(NodeFields {
        name: s.str("NAME"),
        namespace: s.str("NAMESPACE"),
        workload_name: s.str("WORKLOAD_NAME"),
        owner: s.str("OWNER"),
        cluster_id: s.str("CLUSTER_ID"),
        service_account: s.str("SERVICE_ACCOUNT"),
        canonical_telemetry_service: s.str("CANONICAL_TELEMETRY_SERVICE"),
        identity: s.str("IDENTITY"),
        region: s.str("REGION"),
        zone: s.str("AVAILABILITY_ZONE"),
        labels,
    })
}

/// From Istio's node fields: the workload from `OWNER` when
/// `WORKLOAD_NAME` is missing, app and version from the labels.
pub fn from_node(node: NodeFields) -> Peer {
    let labels = node.labels;
    let label = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| labels.iter().find(|(k, _)| k == n))
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    let app = label(&APP_LABELS).or_else(|| text(node.canonical_telemetry_service));
    let version = label(&VERSION_LABELS);
    Peer {
        workload: text(node.workload_name).or_else(|| owner_workload(node.owner)),
        namespace: text(node.namespace),
        name: text(node.name),
        app,
        version,
        cluster: text(node.cluster_id),
        service_account: text(node.service_account),
        identity: text(node.identity),
        region: text(node.region),
        zone: text(node.zone),
        labels,
        ..Peer::default()
    }
}

/// From Istio's `downstream_peer` filter state, one key at a time: `get`
/// returns the property bytes Envoy gives a Wasm module for that key.
/// Istio 1.24 stores an object whose string fields Envoy exposes by name;
/// 1.25 and later store a `google.protobuf.Struct` with the same string
/// keys plus `identity` and `labels`, a map that reaches the module as
/// proxy-wasm pairs. `None` unless it names a namespace or a workload;
/// those two are read first, so a request without the object costs two
/// lookups rather than one per key.
pub fn from_peer_object(get: impl Fn(&str) -> Option<Vec<u8>>, max_labels: usize) -> Option<Peer> {
    let field = |key: &str| {
        get(key)
            .and_then(|v| String::from_utf8(v).ok())
            .filter(|v| !v.is_empty())
    };
    let (namespace, workload) = (field("namespace"), field("workload"));
    if namespace.is_none() && workload.is_none() {
        return None;
    }
    Some(Peer {
        workload,
        namespace,
        name: field("name"),
        app: field("app").or_else(|| field("service")),
        version: field("version").or_else(|| field("revision")),
        cluster: field("cluster"),
        identity: field("identity"),
        region: field("region"),
        zone: field("availability_zone"),
        labels: get("labels")
            .map(|pairs| labels_from_pairs(pairs, max_labels))
            .unwrap_or_default(),
        ..Peer::default()
    })
}

/// From the W3C `baggage` header of Istio ambient mode
/// (`k8s.deployment.name=productpage-v1,service.name=productpage,...`).
pub fn from_baggage(header: &str) -> Peer {
    let mut peer = Peer::default();
    for member in header.split(',') {
        let pair = member.split(';').next().unwrap_or_default();
        let Some((key, value)) = pair.split_once('=') else {
            continue;
        };
        let Some(value) = decode(value.trim()).filter(|v| !v.is_empty()) else {
            continue;
        };
        let slot = match key.trim() {
            "k8s.namespace.name" => &mut peer.namespace,
            "k8s.cluster.name" => &mut peer.cluster,
            "k8s.instance.name" | "k8s.pod.name" => &mut peer.name,
            "service.name" => &mut peer.app,
            "service.version" => &mut peer.version,
            "cloud.region" => &mut peer.region,
            "cloud.availability_zone" => &mut peer.zone,
            key if is_workload_key(key) => &mut peer.workload,
            _ => continue,
        };
        *slot = Some(value);
    }
    peer
}

/// From `x-envoy-peer-metadata-id` (`sidecar~<ip>~<pod>.<ns>~<ns>.svc.<domain>`):
/// only the pod and namespace, when no metadata came with it.
pub fn from_id(id: &str) -> Peer {
    let mut parts = id.split('~');
    let (_kind, _ip, pod_ns) = (parts.next(), parts.next(), parts.next());
    let Some((pod, ns)) = pod_ns.and_then(|p| p.rsplit_once('.')) else {
        return Peer::default();
    };
    Peer {
        name: text(Some(pod)),
        namespace: text(Some(ns)),
        ..Peer::default()
    }
}

/// Labels from a map-valued property as Envoy serializes it for Wasm
/// (proxy-wasm pairs, the layout of a header map), in the order received, at
/// most `max`. Keys are protobuf strings, already UTF-8; a value that is not
/// UTF-8 is not one of the strings Istio stores, so it is skipped. A broken
/// layout gives no labels.
pub fn labels_from_pairs(pairs: Vec<u8>, max: usize) -> Vec<(String, String)> {
    let Some(map) = HeaderMap::decode(pairs) else {
        return Vec::new();
    };
    map.iter()
        .filter_map(|(k, v)| Some((k.to_string(), std::str::from_utf8(v).ok()?.to_string())))
        .take(max)
        .collect()
}

/// `k8s.<kind>.name` for a workload kind (`deployment`, `statefulset`, ...).
fn is_workload_key(key: &str) -> bool {
    key.strip_prefix("k8s.")
        .and_then(|k| k.strip_suffix(".name"))
        .is_some_and(|kind| {
            !kind.is_empty()
                && !matches!(kind, "namespace" | "cluster" | "instance" | "pod" | "node")
                && kind.bytes().all(|b| b.is_ascii_lowercase())
        })
}

/// The workload from `OWNER` (`kubernetes://apis/apps/v1/namespaces/ns/deployments/name`),
/// for Istio versions that did not send `WORKLOAD_NAME`.
fn owner_workload(owner: Option<&str>) -> Option<String> {
    let path = owner?.strip_prefix("kubernetes://apis/")?;
    let mut parts = path.rsplit('/');
    let name = parts.next()?;
    let kind = parts.next()?;
    (kind != "pods" && !name.is_empty()).then(|| name.to_string())
}
