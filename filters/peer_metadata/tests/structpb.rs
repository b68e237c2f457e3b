//! The Struct decoder: the Istio seed sample, an independent encoder (prost)
//! on thousands of random trees, and hostile bytes.

// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use base64::Engine;
use peer_metadata::structpb::{decode_header, decode_struct, Error, Limits, Struct, Value};
use proptest::prelude::*;
use prost::Message;
use prost_types::value::Kind;
use std::collections::BTreeMap;

/// From Istio 1.14.3 (`../shared/seeds/002_aabf6a41fd8df476.txt`).
const SEED: &str = "ChwKDkFQUF9DT05UQUlORVJTEgoaCG5ldHNob290ChoKCkNMVVNURVJfSUQSDBoKS3ViZXJuZXRlcwogCgxJTlNUQU5DRV9JUFMSEBoOMTcyLjIxLjIwNi4yMjgKGQoNSVNUSU9fVkVSU0lPThIIGgYxLjE0LjMKlAEKBkxBQkVMUxKJASqGAQokChlzZWN1cml0eS5pc3Rpby5pby90bHNNb2RlEgcaBWlzdGlvCi0KH3NlcnZpY2UuaXN0aW8uaW8vY2Fub25pY2FsLW5hbWUSChoIbmV0c2hvb3QKLwojc2VydmljZS5pc3Rpby5pby9jYW5vbmljYWwtcmV2aXNpb24SCBoGbGF0ZXN0ChoKB01FU0hfSUQSDxoNY2x1c3Rlci5sb2NhbAoSCgROQU1FEgoaCG5ldHNob290ChMKCU5BTUVTUEFDRRIGGgRtYXJrCj0KBU9XTkVSEjQaMmt1YmVybmV0ZXM6Ly9hcGlzL3YxL25hbWVzcGFjZXMvbWFyay9wb2RzL25ldHNob290ChcKEVBMQVRGT1JNX01FVEFEQVRBEgIqAAobCg1XT1JLTE9BRF9OQU1FEgoaCG5ldHNob290";

fn s(v: &str) -> Value {
    Value::String(v.into())
}

#[test]
fn the_istio_seed_sample_decodes_to_its_eleven_keys_and_three_labels() {
    let peer = decode_header(SEED.as_bytes(), Limits::default()).expect("decodes");
    let keys: Vec<&str> = peer.0.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "APP_CONTAINERS",
            "CLUSTER_ID",
            "INSTANCE_IPS",
            "ISTIO_VERSION",
            "LABELS",
            "MESH_ID",
            "NAME",
            "NAMESPACE",
            "OWNER",
            "PLATFORM_METADATA",
            "WORKLOAD_NAME"
        ]
    );
    assert_eq!(peer.get("NAMESPACE"), Some(&s("mark")));
    assert_eq!(peer.get("WORKLOAD_NAME"), Some(&s("netshoot")));
    assert_eq!(peer.get("CLUSTER_ID"), Some(&s("Kubernetes")));
    assert_eq!(peer.get("ISTIO_VERSION"), Some(&s("1.14.3")));
    assert_eq!(
        peer.get("OWNER"),
        Some(&s("kubernetes://apis/v1/namespaces/mark/pods/netshoot"))
    );
    assert_eq!(
        peer.get("PLATFORM_METADATA"),
        Some(&Value::Struct(Struct::default()))
    );
    let labels = peer.structure("LABELS").expect("labels");
    assert_eq!(
        labels.0,
        vec![
            ("security.istio.io/tlsMode".to_string(), s("istio")),
            ("service.istio.io/canonical-name".to_string(), s("netshoot")),
            (
                "service.istio.io/canonical-revision".to_string(),
                s("latest")
            ),
        ]
    );
    // The same without padding.
    let unpadded = SEED.trim_end_matches('=');
    assert_eq!(
        decode_header(unpadded.as_bytes(), Limits::default()),
        Ok(peer)
    );
}

fn to_prost(value: &Value) -> prost_types::Value {
    let kind = match value {
        Value::Null => Kind::NullValue(0),
        Value::Number(n) => Kind::NumberValue(*n),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Struct(s) => Kind::StructValue(struct_to_prost(s)),
        Value::List(l) => Kind::ListValue(prost_types::ListValue {
            values: l.iter().map(to_prost).collect(),
        }),
    };
    prost_types::Value { kind: Some(kind) }
}

fn struct_to_prost(s: &Struct) -> prost_types::Struct {
    prost_types::Struct {
        fields: s.0.iter().map(|(k, v)| (k.clone(), to_prost(v))).collect(),
    }
}

/// Canonical form for comparison: keys sorted (prost writes a BTreeMap),
/// numbers by bit pattern (NaN equals itself).
#[derive(Debug, PartialEq)]
enum Canon {
    Null,
    Number(u64),
    String(String),
    Bool(bool),
    Struct(BTreeMap<String, Canon>),
    List(Vec<Canon>),
}

fn canon(value: &Value) -> Canon {
    match value {
        Value::Null => Canon::Null,
        Value::Number(n) => Canon::Number(n.to_bits()),
        Value::String(s) => Canon::String(s.clone()),
        Value::Bool(b) => Canon::Bool(*b),
        Value::Struct(s) => canon_struct(s),
        Value::List(l) => Canon::List(l.iter().map(canon).collect()),
    }
}

fn canon_struct(s: &Struct) -> Canon {
    Canon::Struct(s.0.iter().map(|(k, v)| (k.clone(), canon(v))).collect())
}

fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<f64>().prop_map(Value::Number),
        prop_oneof![
            Just(0.0),
            Just(-0.0),
            Just(f64::NAN),
            Just(1e300),
            Just(f64::INFINITY)
        ]
        .prop_map(Value::Number),
        "\\PC{0,40}".prop_map(Value::String),
        ".{0,300}".prop_map(Value::String),
        any::<bool>().prop_map(Value::Bool),
    ];
    leaf.prop_recursive(5, 96, 8, |inner| {
        prop_oneof![
            prop::collection::btree_map("\\PC{0,20}", inner.clone(), 0..8)
                .prop_map(|m| Value::Struct(Struct(m.into_iter().collect()))),
            prop::collection::vec(inner, 0..8).prop_map(Value::List),
        ]
    })
}

fn arb_struct() -> impl Strategy<Value = Struct> {
    prop::collection::btree_map("\\PC{0,20}", arb_value(), 0..12)
        .prop_map(|m| Struct(m.into_iter().collect()))
}

const WIDE: Limits = Limits {
    max_depth: 64,
    max_entries: 100_000,
};

/// Cases per property, also recorded in the README.
const DIFFERENTIAL_CASES: u32 = 3000;
const HOSTILE_CASES: u32 = 2000;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(DIFFERENTIAL_CASES))]

    /// prost (an independent protobuf implementation) encodes, we decode: the
    /// same tree, for every value kind, nesting, unicode and number.
    #[test]
    fn decodes_what_prost_encodes(tree in arb_struct()) {
        let bytes = struct_to_prost(&tree).encode_to_vec();
        let decoded = decode_struct(&bytes, WIDE).expect("decodes");
        prop_assert_eq!(canon_struct(&decoded), canon_struct(&tree));
        let header = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let from_header = decode_header(header.as_bytes(), WIDE).expect("decodes");
        prop_assert_eq!(canon_struct(&from_header), canon_struct(&decoded));
    }

}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(HOSTILE_CASES))]

    /// Any prefix of a valid encoding, and any byte flipped, decodes or fails
    /// cleanly: never a panic.
    #[test]
    fn damaged_encodings_never_panic(tree in arb_struct(), cut in any::<prop::sample::Index>(), flip in any::<(prop::sample::Index, u8)>()) {
        let bytes = struct_to_prost(&tree).encode_to_vec();
        if !bytes.is_empty() {
            let _ = decode_struct(&bytes[..cut.index(bytes.len())], Limits::default());
            let mut flipped = bytes.clone();
            flipped[flip.0.index(bytes.len())] ^= flip.1 | 1;
            let _ = decode_struct(&flipped, Limits::default());
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_struct(&bytes, Limits::default());
        let _ = decode_header(&bytes, Limits::default());
    }
}

#[test]
fn unknown_fields_are_skipped_at_every_level() {
    // Struct{ 9: varint, 1: entry{ 7: fixed32, 1: "k", 2: Value{ 15: fixed64, 3: "v" } } }
    let value = [&[0x79][..], &[0u8; 8], &[0x1a, 1, b'v']].concat();
    let mut entry = vec![0x3d, 1, 2, 3, 4, 0x0a, 1, b'k', 0x12, value.len() as u8];
    entry.extend_from_slice(&value);
    let mut bytes = vec![0x48, 0x96, 0x01, 0x0a, entry.len() as u8];
    bytes.extend_from_slice(&entry);
    let decoded = decode_struct(&bytes, Limits::default()).expect("decodes");
    assert_eq!(decoded.0, vec![("k".to_string(), s("v"))]);
}

#[test]
fn multi_byte_lengths_and_repeated_keys() {
    let long = "x".repeat(20_000); // a three-byte length varint
    let tree = Struct(vec![("k".into(), s(&long))]);
    let mut bytes = struct_to_prost(&tree).encode_to_vec();
    let again = struct_to_prost(&Struct(vec![("k".into(), Value::Bool(true))])).encode_to_vec();
    bytes.extend_from_slice(&again); // concatenated messages merge: the last value wins
    let decoded = decode_struct(&bytes, Limits::default()).expect("decodes");
    assert_eq!(decoded.0, vec![("k".to_string(), Value::Bool(true))]);
}

#[test]
fn caps_and_malformed_input() {
    let mut deep = Value::Null;
    for _ in 0..10 {
        deep = Value::List(vec![deep]);
    }
    let bytes = struct_to_prost(&Struct(vec![("d".into(), deep)])).encode_to_vec();
    assert_eq!(
        decode_struct(&bytes, Limits::default()),
        Err(Error::TooDeep)
    );
    assert!(decode_struct(
        &bytes,
        Limits {
            max_depth: 10,
            max_entries: 100
        }
    )
    .is_ok());

    let wide = Struct((0..300).map(|i| (i.to_string(), Value::Null)).collect());
    let bytes = struct_to_prost(&wide).encode_to_vec();
    assert_eq!(
        decode_struct(&bytes, Limits::default()),
        Err(Error::TooManyEntries)
    );

    for (bytes, why) in [
        (&[0x0a, 0x05, 0x0a][..], "length past the end"),
        (&[0x0a][..], "truncated varint"),
        (&[0x0b][..], "unsupported wire type"),
        (&[0x00, 0x00][..], "field number 0"),
        (&[0x08, 0x01][..], "Struct.fields is not length-delimited"),
        (&[0x0a, 0x03, 0x0a, 0x01, 0xff][..], "string is not UTF-8"),
        (
            &[
                0x0a, 0x0b, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01,
            ][..],
            "varint longer than 10 bytes",
        ),
    ] {
        assert_eq!(
            decode_struct(bytes, Limits::default()),
            Err(Error::Malformed(why)),
            "{bytes:?}"
        );
    }
    assert_eq!(
        decode_header(b"not base64!", Limits::default()),
        Err(Error::Base64)
    );
    assert_eq!(decode_header(b"", Limits::default()), Ok(Struct::default()));
}

/// 4,900 distinct keys decode to every key in wire order; a repeated key
/// keeps its last value, in its last place.
#[test]
fn many_distinct_keys_decode_with_repeats_resolved() {
    let mut fields: Vec<(String, prost_types::Value)> = (0..4_900)
        .map(|i| {
            let v = prost_types::Value {
                kind: Some(Kind::StringValue(format!("v{i}"))),
            };
            (format!("label-{i:04}"), v)
        })
        .collect();
    // Each entry on its own (prost would merge a map): repeats of key 7 and 8.
    let mut bytes = Vec::new();
    let repeat = |k: &str, v: &str| {
        let v = prost_types::Value {
            kind: Some(Kind::StringValue(v.into())),
        };
        (k.to_string(), v)
    };
    fields.push(repeat("label-0007", "second"));
    fields.push(repeat("label-0008", "second"));
    fields.push(repeat("label-0007", "third"));
    for (k, v) in &fields {
        let one = prost_types::Struct {
            fields: [(k.clone(), v.clone())].into_iter().collect(),
        };
        bytes.extend(one.encode_to_vec());
    }
    let limits = Limits {
        max_depth: 8,
        max_entries: 10_000,
    };
    let decoded = decode_struct(&bytes, limits).expect("decodes");
    assert_eq!(decoded.0.len(), 4_900);
    let keys: Vec<&str> = decoded.0.iter().map(|(k, _)| k.as_str()).collect();
    let mut want: Vec<String> = (0..4_900)
        .filter(|i| *i != 7 && *i != 8)
        .map(|i| format!("label-{i:04}"))
        .collect();
    want.extend(["label-0008".to_string(), "label-0007".to_string()]);
    assert_eq!(keys, want);
    assert_eq!(decoded.str("label-0007"), Some("third"));
    assert_eq!(decoded.str("label-0008"), Some("second"));
    assert_eq!(decoded.str("label-4899"), Some("v4899"));
    let header = base64::engine::general_purpose::STANDARD.encode(&bytes);
    assert_eq!(decode_header(header.as_bytes(), limits), Ok(decoded));
}
