//! Identity from every Istio generation's keys, from ambient baggage, and SPIFFE IDs.

// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use peer_metadata::peer::{from_baggage, from_peer_object, from_struct, labels_from_pairs};
use peer_metadata::structpb::{decode_header, Limits, Struct, Value};
use proptest::prelude::*;

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
    let peer = from_struct(&decode_header(SEED.as_bytes(), Limits::default()).unwrap());
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
    let peer = from_struct(&old);
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
    let peer = from_struct(&new);
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
    assert!(from_struct(&odd).is_empty());
    assert!(from_struct(&Struct::default()).is_empty());
}

#[test]
fn ambient_baggage() {
    let peer = from_baggage(
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
        from_baggage("k8s.statefulset.name=db,k8s.namespace.name=%zz,service.name=%E2%9C%93");
    assert_eq!(other.workload.as_deref(), Some("db"));
    assert_eq!(other.namespace, None, "a broken escape is ignored");
    assert_eq!(other.app.as_deref(), Some("✓"));
    assert!(from_baggage("").is_empty());
    assert!(from_baggage(",,=,k8s..name=x,k8s.node.name=n").is_empty());
}

/// `get` for `from_peer_object` over string keys, as Envoy returns a
/// string-valued property: its bytes.
fn strings<'a>(fields: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<Vec<u8>> + 'a {
    move |key: &str| {
        fields
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_bytes().to_vec())
    }
}

/// A map as Envoy serializes a map-valued property for Wasm (proxy-wasm
/// pairs): `u32` count, a `u32` size for each key and value, then each key
/// and value followed by a NUL. Written from the ABI, apart from the decoder.
fn pairs(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = (entries.len() as u32).to_le_bytes().to_vec();
    for (k, v) in entries {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in entries {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v);
        out.push(0);
    }
    out
}

#[test]
fn istio_1_24_peer_object_fields() {
    // The object's fields (Istio 1.24 `WorkloadMetadataObject::getField`);
    // `labels` and `identity` are not among them.
    let fields = [
        ("workload", "cart-v3"),
        ("namespace", "shop"),
        ("name", "cart-v3-xyz"),
        ("cluster", "east"),
        ("service", "cart"),
        ("revision", "v3"),
        ("type", "deployment"),
        ("app", ""),
    ];
    let peer = from_peer_object(strings(&fields), 64).unwrap();
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
    assert_eq!((peer.identity, peer.labels), (None, vec![]));
    assert_eq!(from_peer_object(|_| None, 64), None);
}

/// Istio 1.25 and later: the `google.protobuf.Struct` of
/// `WorkloadMetadataObject::serializeAsProto()` (istio/proxy
/// `extensions/common/metadata_object.cc`), key by key as Envoy hands it to
/// Wasm: strings as their bytes, `labels` (a Struct) as pairs.
#[test]
fn istio_1_25_struct_with_identity_and_labels() {
    let labels = pairs(&[
        ("topology.istio.io/network", b"net-1"),
        ("team", b"payments"),
        ("odd", &[0xff, 0xfe]),
        ("", b"empty key"),
    ]);
    let get = |key: &str| match key {
        "labels" => Some(labels.clone()),
        _ => strings(&[
            ("type", "deployment"),
            ("workload", "cart-v3"),
            ("name", "cart-v3-xyz"),
            ("cluster", "east"),
            ("namespace", "shop"),
            ("service", "cart"),
            ("revision", "v3"),
            ("app", "cart"),
            ("version", "v3"),
            ("identity", "spiffe://cluster.local/ns/shop/sa/cart"),
            ("region", "eu-west-1"),
            ("availability_zone", "eu-west-1a"),
        ])(key),
    };
    let peer = from_peer_object(get, 64).unwrap();
    assert_eq!(
        peer.identity.as_deref(),
        Some("spiffe://cluster.local/ns/shop/sa/cart")
    );
    assert_eq!(
        peer.labels,
        vec![
            ("topology.istio.io/network".into(), "net-1".into()),
            ("team".into(), "payments".into()),
            ("".into(), "empty key".into()),
        ],
        "in order, the non-UTF-8 value skipped"
    );
    assert_eq!(
        (peer.namespace.as_deref(), peer.name.as_deref()),
        (Some("shop"), Some("cart-v3-xyz"))
    );
    assert_eq!(
        (peer.region.as_deref(), peer.zone.as_deref()),
        (Some("eu-west-1"), Some("eu-west-1a"))
    );
    let capped = from_peer_object(get, 1).unwrap();
    assert_eq!(capped.labels.len(), 1, "at most max_keys labels");
}

/// Older Istio, or no labels configured: the keys are simply absent, and a
/// `labels` that is not a map gives no labels rather than no peer.
#[test]
fn peer_object_without_identity_or_labels() {
    let fields = [("namespace", "shop"), ("identity", "")];
    let peer = from_peer_object(strings(&fields), 64).unwrap();
    assert_eq!((peer.identity, peer.labels), (None, vec![]));
    let broken = |key: &str| match key {
        "namespace" => Some(b"shop".to_vec()),
        "labels" => Some(vec![9, 0, 0, 0, 1]),
        _ => None,
    };
    let peer = from_peer_object(broken, 64).unwrap();
    assert!(peer.labels.is_empty());
    assert_eq!(labels_from_pairs(Vec::new(), 64), vec![]);
    assert_eq!(
        from_peer_object(strings(&[("identity", "spiffe://td/ns/a/sa/b")]), 64),
        None,
        "no namespace and no workload: not a peer"
    );
}

#[test]
fn identity_from_the_metadata_header() {
    let peer = from_struct(&tree(&[
        ("NAMESPACE", s("shop")),
        ("IDENTITY", s("spiffe://cluster.local/ns/shop/sa/cart")),
    ]));
    assert_eq!(
        peer.identity.as_deref(),
        Some("spiffe://cluster.local/ns/shop/sa/cart")
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn labels_from_any_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        prop_assert!(labels_from_pairs(bytes, 16).len() <= 16);
    }

    #[test]
    fn labels_round_trip(entries in proptest::collection::vec(("[a-z./-]{0,12}", "\\PC{0,12}"), 0..8)) {
        let raw: Vec<(&str, &[u8])> = entries.iter().map(|(k, v)| (k.as_str(), v.as_bytes())).collect();
        prop_assert_eq!(labels_from_pairs(pairs(&raw), 64), entries);
    }
}
