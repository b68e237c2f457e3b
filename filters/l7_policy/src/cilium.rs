//! A `CiliumNetworkPolicy` (or its `spec`) as this filter's configuration.
//!
//! Mapping: every `spec.ingress[]` entry (and `spec.specs[].ingress[]`) with
//! `toPorts[].rules.http` contributes its HTTP rules unchanged (`method`,
//! `path`, `host`, `headers`, `headerMatches`). Its `fromEndpoints[].matchLabels`
//! become each rule's `from.labels` (one copy of the rule per endpoint
//! selector, since selectors are ORed), with `k8s:io.kubernetes.pod.namespace`
//! as `from.namespace` and the `k8s:`/`any:` source prefixes dropped. Ports
//! are not carried: the filter applies to the listener it is installed on.
//! Anything this filter cannot enforce (`matchExpressions`, `fromEntities`,
//! `fromCIDR`, L7 protocols other than HTTP, egress) is refused with its path.

use serde_json::{json, Map, Value};

const NAMESPACE_LABEL: &str = "io.kubernetes.pod.namespace";

fn refuse<T>(path: &str, what: &str) -> Result<T, String> {
    Err(format!("{path}: {what} cannot be enforced by this filter"))
}

/// The filter configuration for a policy document, and a warning for each
/// `fromEndpoints` selector that selects by labels: Cilium attests labels
/// itself, but here they are what the caller's sidecar claims.
pub fn import(policy: &Value) -> Result<(Value, Vec<String>), String> {
    let mut warnings = Vec::new();
    let namespace = policy
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("<namespace>");
    let spec = policy.get("spec").unwrap_or(policy);
    let mut specs = vec![("spec".to_string(), spec)];
    if let Some(list) = spec.get("specs").and_then(Value::as_array) {
        specs = list
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("spec.specs[{i}]"), s))
            .collect();
    }
    let mut rules = Vec::new();
    for (path, spec) in specs {
        if spec.get("egress").is_some() || spec.get("egressDeny").is_some() {
            return refuse(&path, "egress");
        }
        let ingress = spec
            .get("ingress")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for (i, entry) in ingress.iter().enumerate() {
            let at = format!("{path}.ingress[{i}]");
            for key in [
                "fromEntities",
                "fromCIDR",
                "fromCIDRSet",
                "fromRequires",
                "fromNodes",
                "fromGroups",
            ] {
                if entry.get(key).is_some() {
                    return refuse(&format!("{at}.{key}"), key);
                }
            }
            let selectors = endpoint_selectors(entry, &at)?;
            for (k, from) in selectors.iter().flatten().enumerate() {
                if let Some(labels) = from.get("labels") {
                    let ns = from
                        .get("namespace")
                        .and_then(Value::as_str)
                        .unwrap_or(namespace);
                    warnings.push(label_warning(
                        &format!("{at}.fromEndpoints[{k}]"),
                        ns,
                        labels,
                    ));
                }
            }
            for (j, port) in entry
                .get("toPorts")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                let Some(port_rules) = port.get("rules") else {
                    continue;
                };
                let port_at = format!("{at}.toPorts[{j}].rules");
                if let Some(other) = port_rules
                    .as_object()
                    .and_then(|o| o.keys().find(|k| *k != "http"))
                {
                    return refuse(&format!("{port_at}.{other}"), "a non-HTTP L7 protocol");
                }
                for rule in port_rules
                    .get("http")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    match &selectors {
                        None => rules.push(rule.clone()),
                        Some(list) => {
                            for from in list {
                                let mut r = rule.clone();
                                if let (Some(obj), false) = (r.as_object_mut(), from.is_empty()) {
                                    obj.insert("from".into(), Value::Object(from.clone()));
                                }
                                rules.push(r);
                            }
                        }
                    }
                }
            }
        }
    }
    Ok((json!({"rules": rules}), warnings))
}

/// Why a label selector is weaker here than in Cilium, and the two forms
/// that tie it to certificates.
fn label_warning(at: &str, namespace: &str, labels: &Value) -> String {
    let principal = format!("spiffe://cluster.local/ns/{namespace}/sa/<service account>");
    format!(
        "{at}: matchLabels {labels} are what the caller's own sidecar claims: any pod in the \
         namespace can claim them, and its certificate proves only its namespace and service \
         account. l7_policy does not count claimed labels unless \"trust_claimed_labels\" is \
         set, and then only when the claim names the certificate's service account. Bind \
         them to certificates instead: require the principal:\n  \"from\": {}\nor give each principal its labels (once the table is set, it is the only source of \
         labels):\n  \"principals\": {}",
        json!({"principal": {"exact": principal}}),
        json!({ principal.clone(): {"labels": labels} }),
    )
}

/// The `from` object for each `fromEndpoints` selector; `None` without any.
fn endpoint_selectors(entry: &Value, at: &str) -> Result<Option<Vec<Map<String, Value>>>, String> {
    let Some(list) = entry.get("fromEndpoints").and_then(Value::as_array) else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for (k, selector) in list.iter().enumerate() {
        let sel_at = format!("{at}.fromEndpoints[{k}]");
        if selector.get("matchExpressions").is_some() {
            return refuse(&format!("{sel_at}.matchExpressions"), "matchExpressions");
        }
        let mut labels = Map::new();
        let mut from = Map::new();
        for (key, value) in selector
            .get("matchLabels")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let key = key
                .strip_prefix("k8s:")
                .or_else(|| key.strip_prefix("any:"))
                .unwrap_or(key);
            if key == NAMESPACE_LABEL {
                from.insert("namespace".into(), value.clone());
            } else {
                labels.insert(key.to_string(), value.clone());
            }
        }
        if !labels.is_empty() {
            from.insert("labels".into(), Value::Object(labels));
        }
        out.push(from);
    }
    Ok(Some(out))
}
