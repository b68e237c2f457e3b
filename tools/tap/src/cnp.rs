//! The suggestion as a CiliumNetworkPolicy (`tap policy suggest --format cnp`).

use crate::segment::escape;
use crate::suggest::{Options, Suggestion};
use filter_common::peer::spiffe::namespace_and_service_account;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Cilium matches `host` against the authority as sent, which may carry a
/// port; l7_policy compares the host without it.
const ANY_PORT: &str = "(?::[0-9]+)?";

impl Suggestion {
    /// A CiliumNetworkPolicy with the same rules: one ingress entry per
    /// caller, which a principal names by its namespace and service account
    /// (the labels Cilium gives every endpoint); requests without one get
    /// `{}`, which in a namespaced policy is any endpoint of its namespace.
    pub fn cnp(&self, options: &Options) -> Value {
        let mut by_caller: BTreeMap<Option<&str>, (Vec<Value>, BTreeSet<u16>)> = BTreeMap::new();
        for r in &self.rules {
            let mut rule = Map::new();
            rule.insert("method".into(), json!(escape(&r.method)));
            rule.insert("path".into(), json!(r.regex()));
            if let Some(h) = &r.host {
                rule.insert("host".into(), json!(format!("{}{ANY_PORT}", h.regex)));
            }
            let entry = by_caller.entry(r.principal.as_deref()).or_default();
            entry.0.push(Value::Object(rule));
            entry.1.extend(&r.ports);
        }
        let ingress: Vec<Value> = by_caller
            .into_iter()
            .filter_map(|(principal, (http, mut ports))| {
                if ports.is_empty() {
                    ports.insert(options.port);
                }
                let selector = match principal.map(namespace_and_service_account) {
                    Some(Some((ns, sa))) => json!({"matchLabels": {
                        "k8s:io.kubernetes.pod.namespace": ns,
                        "k8s:io.cilium.k8s.policy.serviceaccount": sa,
                    }}),
                    // A principal that is no SPIFFE ID has no labels to
                    // select it by: its rules are left out, not widened.
                    Some(None) => return None,
                    None => json!({}),
                };
                let ports: Vec<Value> = ports
                    .iter()
                    .map(|p| json!({"port": p.to_string(), "protocol": "TCP"}))
                    .collect();
                Some(json!({
                    "fromEndpoints": [selector],
                    "toPorts": [{"ports": ports, "rules": {"http": http}}],
                }))
            })
            .collect();
        let selector = match &options.app {
            Some(app) => json!({"matchLabels": {"app": app}}),
            None => json!({}),
        };
        json!({
            "apiVersion": "cilium.io/v2",
            "kind": "CiliumNetworkPolicy",
            "metadata": {"name": "suggested-l7-policy"},
            "spec": {"endpointSelector": selector, "ingress": ingress},
        })
    }
}
