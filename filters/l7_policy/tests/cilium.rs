//! CiliumNetworkPolicy import.

// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use l7_policy::cilium::import;

/// The configuration alone, without the import's warnings.
fn rules_from_policy(policy: &serde_json::Value) -> Result<serde_json::Value, String> {
    import(policy).map(|(config, _)| config)
}
use l7_policy::config::Config;
use serde_json::json;

#[test]
fn the_star_wars_l7_policy() {
    let policy = json!({
        "apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
        "metadata": {"name": "rule1"},
        "spec": {
            "description": "L7 policy to restrict access to specific HTTP call",
            "endpointSelector": {"matchLabels": {"class": "deathstar", "org": "empire"}},
            "ingress": [{
                "fromEndpoints": [{"matchLabels": {"org": "empire"}}],
                "toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}],
                             "rules": {"http": [{"method": "POST", "path": "/v1/request-landing"}]}}]
            }]
        }
    });
    let config = rules_from_policy(&policy).unwrap();
    assert_eq!(
        config,
        json!({"rules": [{"method": "POST", "path": "/v1/request-landing", "from": {"labels": {"org": "empire"}}}]})
    );
    Config::parse(Some(config.to_string().as_bytes())).expect("a valid configuration");
}

#[test]
fn selectors_namespaces_and_refusals() {
    let spec = json!({"ingress": [
        {"fromEndpoints": [{"matchLabels": {"k8s:app": "a", "k8s:io.kubernetes.pod.namespace": "ns1"}}, {"matchLabels": {"any:app": "b"}}],
         "toPorts": [{"rules": {"http": [{"path": "/x"}, {"method": "GET"}]}}]},
        {"toPorts": [{"rules": {"http": [{}]}}, {"ports": [{"port": "81"}]}]}
    ]});
    let rules = rules_from_policy(&spec).unwrap()["rules"].clone();
    assert_eq!(rules.as_array().unwrap().len(), 5);
    assert_eq!(
        rules[0],
        json!({"path": "/x", "from": {"namespace": "ns1", "labels": {"app": "a"}}})
    );
    assert_eq!(
        rules[1],
        json!({"path": "/x", "from": {"labels": {"app": "b"}}})
    );
    assert_eq!(rules[4], json!({}));
    for (bad, where_) in [
        (json!({"egress": []}), "spec"),
        (
            json!({"ingress": [{"fromCIDR": ["10.0.0.0/8"]}]}),
            "spec.ingress[0].fromCIDR",
        ),
        (
            json!({"ingress": [{"fromEndpoints": [{"matchExpressions": []}]}]}),
            "spec.ingress[0].fromEndpoints[0].matchExpressions",
        ),
        (
            json!({"ingress": [{"toPorts": [{"rules": {"kafka": []}}]}]}),
            "spec.ingress[0].toPorts[0].rules.kafka",
        ),
    ] {
        let e = rules_from_policy(&bad).unwrap_err();
        assert!(e.starts_with(where_), "{e}");
    }
}
