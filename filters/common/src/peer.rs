//! The caller as peer_metadata publishes it and l7_policy reads it: the
//! filter-state keys (Envoy shows each as `wasm.<key>`, and access logs and
//! other filters read them, so they are a public contract) and how each value
//! is written and read back. Writer and reader use this module only, so the
//! two cannot drift apart. In one module (the suite) the reader gets the
//! same [`Peer`] from memory, without the text round trip
//! (`Exchange::publish_peer`).

pub mod spiffe;

use crate::encoding::json::push_str;
use crate::sort::sorted_indexes;
use serde_json::Value;
use std::rc::Rc;

/// One published filter-state key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Workload,
    Namespace,
    Name,
    App,
    Version,
    Cluster,
    Identity,
    Principal,
    Verified,
    Labels,
    ServiceAccount,
}

impl Key {
    /// Every key, in the order they are written.
    pub const ALL: [Key; 11] = [
        Key::Workload,
        Key::Namespace,
        Key::Name,
        Key::App,
        Key::Version,
        Key::Cluster,
        Key::Identity,
        Key::Principal,
        Key::Verified,
        Key::Labels,
        Key::ServiceAccount,
    ];

    /// The filter-state key, as Envoy shows it after `wasm.`.
    pub const fn name(self) -> &'static str {
        match self {
            Key::Workload => "peer_workload",
            Key::Namespace => "peer_namespace",
            Key::Name => "peer_name",
            Key::App => "peer_app",
            Key::Version => "peer_version",
            Key::Cluster => "peer_cluster",
            Key::Identity => "peer_identity",
            Key::Principal => "peer_principal",
            Key::Verified => "peer_verified",
            Key::Labels => "peer_labels",
            Key::ServiceAccount => "peer_service_account",
        }
    }
}

/// The headers Istio's metadata exchange adds to a request: the caller's
/// whole workload metadata (a base64 `google.protobuf.Struct`) and its node
/// id. peer_metadata decodes and removes them; tap_http keeps their values
/// out of records.
pub const METADATA_HEADERS: [&str; 2] = ["x-envoy-peer-metadata", "x-envoy-peer-metadata-id"];

/// The W3C `baggage` header: in ambient mode it carries the caller's
/// workload metadata (namespace, workload, service account, cluster), which
/// peer_metadata decodes; it also carries whatever OpenTelemetry baggage
/// the app propagates, so peer_metadata leaves it on the request, and
/// tap_http keeps its value out of records like [`METADATA_HEADERS`].
pub const BAGGAGE_HEADER: &str = "baggage";

/// At most this many labels are read back: peer_metadata's `max_keys`
/// (at most 10,000) bounds what it writes, and a reader stays bounded
/// whoever wrote the key.
pub const MAX_LABELS: usize = 10_000;

/// One caller: what it claims (decoded by peer_metadata from whichever form
/// Istio sent), the certificate it presented, and whether the two agree.
/// The same value is published as filter state (each `None`, and empty
/// `labels`, is a key that is not written; `verified` always is; `region`
/// and `zone` are not published) and read back by the filters after
/// peer_metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Peer {
    pub workload: Option<String>,
    pub namespace: Option<String>,
    /// The pod (or instance) name.
    pub name: Option<String>,
    pub app: Option<String>,
    pub version: Option<String>,
    pub cluster: Option<String>,
    /// The SPIFFE ID Istio attributes to the caller (`spiffe://<td>/ns/<ns>/sa/<sa>`):
    /// a claim like the rest, so it is checked against the certificate and
    /// never stands in for it.
    pub identity: Option<String>,
    /// The URI SAN of the mTLS peer certificate.
    pub principal: Option<String>,
    /// peer_metadata verified the claim against the certificate
    /// (`peer_verified`: `true` or `false`).
    pub verified: bool,
    /// The service account the caller claims.
    pub service_account: Option<String>,
    /// The locality the caller claims (kept in memory, not published).
    pub region: Option<String>,
    pub zone: Option<String>,
    /// Claimed pod labels in the order received (`peer_labels`: one JSON
    /// object of strings); read back from filter state, in name order. A
    /// label given twice counts with its last value ([`label_map`]), as JSON
    /// readers take it.
    pub labels: Vec<(String, String)>,
}

impl Peer {
    /// Nothing claimed, no certificate.
    pub fn is_empty(&self) -> bool {
        *self == Peer::default()
    }

    /// The filter-state value of `key`; `None` when it is not written.
    pub fn value(&self, key: Key) -> Option<String> {
        let text = match key {
            Key::Workload => &self.workload,
            Key::Namespace => &self.namespace,
            Key::Name => &self.name,
            Key::App => &self.app,
            Key::Version => &self.version,
            Key::Cluster => &self.cluster,
            Key::Identity => &self.identity,
            Key::Principal => &self.principal,
            Key::ServiceAccount => &self.service_account,
            Key::Verified => return Some(if self.verified { "true" } else { "false" }.to_string()),
            Key::Labels => return (!self.labels.is_empty()).then(|| encode_labels(&self.labels)),
        };
        text.clone()
    }

    /// Reads `keys` back from their filter-state values (`get`); the other
    /// fields stay unset. A value that is not UTF-8 reads as absent, a
    /// `peer_labels` that is not a JSON object as no labels.
    pub fn read(keys: &[Key], mut get: impl FnMut(Key) -> Option<Vec<u8>>) -> Peer {
        Peer::read_from(keys, &mut get)
    }

    /// [`Peer::read`] once in the module, whoever reads.
    fn read_from(keys: &[Key], get: &mut dyn FnMut(Key) -> Option<Vec<u8>>) -> Peer {
        let mut state = Peer::default();
        for &key in keys {
            let Some(raw) = get(key) else {
                continue;
            };
            let slot = match key {
                Key::Workload => &mut state.workload,
                Key::Namespace => &mut state.namespace,
                Key::Name => &mut state.name,
                Key::App => &mut state.app,
                Key::Version => &mut state.version,
                Key::Cluster => &mut state.cluster,
                Key::Identity => &mut state.identity,
                Key::Principal => &mut state.principal,
                Key::ServiceAccount => &mut state.service_account,
                Key::Verified => {
                    state.verified = raw == b"true";
                    continue;
                }
                Key::Labels => {
                    state.labels = decode_labels(&raw);
                    continue;
                }
            };
            *slot = String::from_utf8(raw).ok();
        }
        state
    }

    /// What a filter published, read back like [`Peer::read`] with
    /// `verified` read first: `None` when it is absent, which is when no
    /// filter published a caller (peer_metadata writes it on every request
    /// it publishes for), so a reader that finds nothing asks once.
    pub fn read_published(
        keys: &[Key],
        mut get: impl FnMut(Key) -> Option<Vec<u8>>,
    ) -> Option<Peer> {
        let verified = get(Key::Verified)?;
        let mut state = Peer::read_from(keys, &mut get);
        state.verified = verified == b"true";
        Some(state)
    }
}

/// A [`Peer`] with its filter-state values, written once per state
/// (callers repeat the same identity on every request of a connection).
#[derive(Debug, PartialEq, Eq)]
pub struct Published {
    state: Rc<Peer>,
    entries: Vec<(Key, String)>,
}

impl Published {
    pub fn new(state: Peer) -> Published {
        let entries = Key::ALL
            .iter()
            .filter_map(|&key| Some((key, state.value(key)?)))
            .collect();
        Published {
            state: Rc::new(state),
            entries,
        }
    }

    pub fn state(&self) -> &Rc<Peer> {
        &self.state
    }

    /// `(key, value)` for every key written, in the order of [`Key::ALL`].
    pub fn entries(&self) -> &[(Key, String)] {
        &self.entries
    }
}

/// `{"name":"value",...}`, in the order given.
fn encode_labels(labels: &[(String, String)]) -> String {
    let mut json = String::from("{");
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        push_str(&mut json, k);
        json.push(':');
        push_str(&mut json, v);
    }
    json.push('}');
    json
}

/// The string-valued members of a JSON object in name order, at most
/// [`MAX_LABELS`]; a name given twice keeps its last value. Anything else
/// reads as no labels.
fn decode_labels(raw: &[u8]) -> Vec<(String, String)> {
    // From text, as the configuration is parsed: one instance of the parser.
    let Some(Ok(Value::Object(members))) = std::str::from_utf8(raw).ok().map(serde_json::from_str)
    else {
        return Vec::new();
    };
    let mut labels = Vec::new();
    for (k, v) in &members {
        if labels.len() == MAX_LABELS {
            break;
        }
        if let Value::String(v) = v {
            labels.push((k.clone(), v.clone()));
        }
    }
    labels
}

/// Labels by name, each name once: a label given twice keeps its last
/// value. A sorted list rather than a map: a reader looks labels up with
/// [`label`], and one index heapsort is less module than a map's code.
pub fn labels_by_name(labels: &[(String, String)]) -> Vec<(String, String)> {
    let name = |i: usize| labels.get(i).map(|(n, _)| n.as_str());
    // Equal names keep their received order, so the last one is the value.
    let order = sorted_indexes(labels.len(), &mut |a, b| (name(a), a) < (name(b), b));
    let mut out: Vec<(String, String)> = Vec::with_capacity(labels.len());
    for i in order {
        let Some((n, v)) = labels.get(i) else {
            continue;
        };
        match out.last_mut() {
            Some(last) if last.0 == *n => last.1.clone_from(v),
            _ => out.push((n.clone(), v.clone())),
        }
    }
    out
}

/// The value of label `name` in labels sorted by name ([`labels_by_name`]).
pub fn label<'a>(labels: &'a [(String, String)], name: &str) -> Option<&'a str> {
    let at = labels
        .binary_search_by(|(n, _)| n.as_str().cmp(name))
        .ok()?;
    labels.get(at).map(|(_, v)| v.as_str())
}
