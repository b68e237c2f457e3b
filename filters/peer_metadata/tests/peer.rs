//! Identity from every Istio generation's keys, from ambient baggage, and SPIFFE IDs.

use peer_metadata::peer::{spiffe_namespace, Peer};
use peer_metadata::structpb::{decode_header, Limits, Struct, Value};

fn s(v: &str) -> Value {
    Value::String(v.into())
}

fn tree(pairs: &[(&str, Value)]) -> Struct {
    Struct(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    )
}

fn labels(pairs: &[(&str, &str)]) -> Value {
    Value::Struct(tree(
        &pairs.iter().map(|(k, v)| (*k, s(v))).collect::<Vec<_>>(),
    ))
}

#[test]
fn istio_1_14_seed() {
    const SEED: &str = "ChwKDkFQUF9DT05UQUlORVJTEgoaCG5ldHNob290ChoKCkNMVVNURVJfSUQSDBoKS3ViZXJuZXRlcwogCgxJTlNUQU5DRV9JUFMSEBoOMTcyLjIxLjIwNi4yMjgKGQoNSVNUSU9fVkVSU0lPThIIGgYxLjE0LjMKlAEKBkxBQkVMUxKJASqGAQokChlzZWN1cml0eS5pc3Rpby5pby90bHNNb2RlEgcaBWlzdGlvCi0KH3NlcnZpY2UuaXN0aW8uaW8vY2Fub25pY2FsLW5hbWUSChoIbmV0c2hvb3QKLwojc2VydmljZS5pc3Rpby5pby9jYW5vbmljYWwtcmV2aXNpb24SCBoGbGF0ZXN0ChoKB01FU0hfSUQSDxoNY2x1c3Rlci5sb2NhbAoSCgROQU1FEgoaCG5ldHNob290ChMKCU5BTUVTUEFDRRIGGgRtYXJrCj0KBU9XTkVSEjQaMmt1YmVybmV0ZXM6Ly9hcGlzL3YxL25hbWVzcGFjZXMvbWFyay9wb2RzL25ldHNob290ChcKEVBMQVRGT1JNX01FVEFEQVRBEgIqAAobCg1XT1JLTE9BRF9OQU1FEgoaCG5ldHNob290";
    let peer = Peer::from_struct(&decode_header(SEED.as_bytes(), Limits::default()).unwrap());
    assert_eq!(peer.workload.as_deref(), Some("netshoot"));
    assert_eq!(peer.namespace.as_deref(), Some("mark"));
    assert_eq!(peer.name.as_deref(), Some("netshoot"));
    assert_eq!(
        peer.app.as_deref(),
        Some("netshoot"),
        "canonical-name label"
    );
    assert_eq!(
        peer.version.as_deref(),
        Some("latest"),
        "canonical-revision label"
    );
    assert_eq!(peer.cluster.as_deref(), Some("Kubernetes"));
    assert_eq!(peer.labels.len(), 3);
}

#[test]
fn istio_1_3_to_1_7_keys() {
    let old = tree(&[
        ("EXCHANGE_KEYS", s("NAME,NAMESPACE,INSTANCE_IPS,LABELS,OWNER,PLATFORM_METADATA,WORKLOAD_NAME,CANONICAL_TELEMETRY_SERVICE,MESH_ID,SERVICE_ACCOUNT")),
        ("NAME", s("reviews-v2-7d79d5bd5d-abcde")),
        ("NAMESPACE", s("bookinfo")),
        ("OWNER", s("kubernetes://apis/apps/v1/namespaces/bookinfo/deployments/reviews-v2")),
        ("SERVICE_ACCOUNT", s("bookinfo-reviews")),
        ("CANONICAL_TELEMETRY_SERVICE", s("reviews")),
        ("LABELS", labels(&[("pod-template-hash", "7d79d5bd5d")])),
    ]);
    let peer = Peer::from_struct(&old);
    assert_eq!(peer.workload.as_deref(), Some("reviews-v2"), "from OWNER");
    assert_eq!(
        peer.app.as_deref(),
        Some("reviews"),
        "from CANONICAL_TELEMETRY_SERVICE"
    );
    assert_eq!(peer.service_account.as_deref(), Some("bookinfo-reviews"));
    assert_eq!(peer.version, None);
}

#[test]
fn istio_1_24_keys_and_label_precedence() {
    let new = tree(&[
        ("IDENTITY", s("spiffe://cluster.local/ns/shop/sa/cart")),
        ("NAMESPACE", s("shop")),
        ("WORKLOAD_NAME", s("cart-v3")),
        ("CLUSTER_ID", s("east")),
        ("REGION", s("eu-west-1")),
        ("AVAILABILITY_ZONE", s("eu-west-1a")),
        (
            "LABELS",
            labels(&[
                ("service.istio.io/canonical-name", "cart-canonical"),
                ("app", "cart"),
                ("app.kubernetes.io/version", "3.1"),
            ]),
        ),
    ]);
    let peer = Peer::from_struct(&new);
    assert_eq!(
        peer.app.as_deref(),
        Some("cart"),
        "app beats the canonical name"
    );
    assert_eq!(peer.version.as_deref(), Some("3.1"));
    assert_eq!(
        (peer.region.as_deref(), peer.zone.as_deref()),
        (Some("eu-west-1"), Some("eu-west-1a"))
    );
    assert_eq!(peer.name, None);
}

#[test]
fn wrong_types_and_empty_values_are_absent() {
    let odd = tree(&[
        ("NAMESPACE", Value::Number(3.0)),
        ("WORKLOAD_NAME", s("")),
        ("LABELS", s("not a struct")),
        ("OWNER", s("kubernetes://apis/v1/namespaces/x/pods/p")),
    ]);
    assert!(Peer::from_struct(&odd).is_empty());
    assert!(Peer::from_struct(&Struct::default()).is_empty());
}

#[test]
fn ambient_baggage() {
    let peer = Peer::from_baggage(
        "k8s.deployment.name=productpage-v1, service.name=productpage,service.version=v1,\
         k8s.namespace.name=bookinfo,k8s.cluster.name=Kubernetes,k8s.instance.name=productpage-v1-abc;prop=1,\
         cloud.region=us%2Deast,cloud.availability_zone=us-east-1b,unknown.key=x,noequals",
    );
    assert_eq!(peer.workload.as_deref(), Some("productpage-v1"));
    assert_eq!(peer.app.as_deref(), Some("productpage"));
    assert_eq!(peer.version.as_deref(), Some("v1"));
    assert_eq!(peer.namespace.as_deref(), Some("bookinfo"));
    assert_eq!(peer.cluster.as_deref(), Some("Kubernetes"));
    assert_eq!(peer.name.as_deref(), Some("productpage-v1-abc"));
    assert_eq!(peer.region.as_deref(), Some("us-east"));
    assert_eq!(peer.zone.as_deref(), Some("us-east-1b"));
    let other =
        Peer::from_baggage("k8s.statefulset.name=db,k8s.namespace.name=%zz,service.name=%E2%9C%93");
    assert_eq!(other.workload.as_deref(), Some("db"));
    assert_eq!(other.namespace, None, "a broken escape is ignored");
    assert_eq!(other.app.as_deref(), Some("✓"));
    assert!(Peer::from_baggage("").is_empty());
    assert!(Peer::from_baggage(",,=,k8s..name=x,k8s.node.name=n").is_empty());
}

#[test]
fn spiffe_ids() {
    assert_eq!(
        spiffe_namespace("spiffe://cluster.local/ns/shop/sa/cart"),
        Some(("shop", "cart"))
    );
    for bad in [
        "spiffe://cluster.local/ns/shop",
        "spiffe://cluster.local/ns//sa/cart",
        "spiffe:///ns/shop/sa/cart",
        "spiffe://td/ns/shop/sa/cart/extra",
        "https://td/ns/shop/sa/cart",
        "spiffe://td/sa/cart/ns/shop",
        "",
    ] {
        assert_eq!(spiffe_namespace(bad), None, "{bad}");
    }
}

#[test]
fn istio_1_24_peer_object_fields() {
    let fields = [
        ("workload", "cart-v3"),
        ("namespace", "shop"),
        ("name", "cart-v3-xyz"),
        ("cluster", "east"),
        ("service", "cart"),
        ("revision", "v3"),
        ("region", "eu"),
        ("availability_zone", "eu-1a"),
        ("app", ""),
    ];
    let get = |key: &str| {
        fields
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.to_string())
    };
    let peer = Peer::from_peer_object(get);
    assert_eq!(peer.workload.as_deref(), Some("cart-v3"));
    assert_eq!(
        peer.app.as_deref(),
        Some("cart"),
        "service when app is empty"
    );
    assert_eq!(
        peer.version.as_deref(),
        Some("v3"),
        "revision when version is absent"
    );
    assert_eq!(
        (peer.region.as_deref(), peer.zone.as_deref()),
        (Some("eu"), Some("eu-1a"))
    );
    assert!(Peer::from_peer_object(|_| None).is_empty());
}
