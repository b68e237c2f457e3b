//! The FlatNode reader against buffers built by the `flatbuffers` crate (an
//! independent implementation), and hostile bytes.

// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use flatbuffers::{FlatBufferBuilder, WIPOffset};
use peer_metadata::flatnode::peer_from_flatnode;
use proptest::prelude::*;

fn slot(i: u16) -> u16 {
    4 + 2 * i
}

/// A FlatNode with string fields at their slots and `labels` at slot 2.
fn flatnode(strings: &[(u16, &str)], labels: &[(&str, &str)]) -> Vec<u8> {
    let mut b = FlatBufferBuilder::new();
    let kvs: Vec<_> = labels
        .iter()
        .map(|(k, v)| {
            let (k, v) = (b.create_string(k), b.create_string(v));
            let t = b.start_table();
            b.push_slot_always(slot(0), k);
            b.push_slot_always(slot(1), v);
            b.end_table(t)
        })
        .collect();
    let labels = b.create_vector(&kvs);
    let strings: Vec<(u16, WIPOffset<&str>)> = strings
        .iter()
        .map(|(i, s)| (*i, b.create_string(s)))
        .collect();
    let t = b.start_table();
    for (i, s) in strings {
        b.push_slot_always(slot(i), s);
    }
    b.push_slot_always(slot(2), labels);
    let root = b.end_table(t);
    b.finish(root, None);
    b.finished_data().to_vec()
}

#[test]
fn reads_istio_1_7_to_1_23_filter_state() {
    let bytes = flatnode(
        &[
            (0, "reviews-v2-abc"),
            (1, "bookinfo"),
            (
                3,
                "kubernetes://apis/apps/v1/namespaces/bookinfo/deployments/reviews-v2",
            ),
            (6, "1.14.3"),
            (7, "cluster.local"),
            (9, "Kubernetes"),
            (11, "spiffe://cluster.local/ns/bookinfo/sa/reviews"),
        ],
        &[
            ("app", "reviews"),
            ("version", "v2"),
            ("security.istio.io/tlsMode", "istio"),
        ],
    );
    let peer = peer_from_flatnode(&bytes, 256).expect("a peer");
    assert_eq!(peer.name.as_deref(), Some("reviews-v2-abc"));
    assert_eq!(peer.namespace.as_deref(), Some("bookinfo"));
    assert_eq!(
        peer.workload.as_deref(),
        Some("reviews-v2"),
        "from OWNER without WORKLOAD_NAME"
    );
    assert_eq!(peer.cluster.as_deref(), Some("Kubernetes"));
    assert_eq!(
        (peer.app.as_deref(), peer.version.as_deref()),
        (Some("reviews"), Some("v2"))
    );
    assert_eq!(peer.labels.len(), 3);
    let with_workload = flatnode(&[(1, "ns"), (4, "cart")], &[]);
    assert_eq!(
        peer_from_flatnode(&with_workload, 256)
            .unwrap()
            .workload
            .as_deref(),
        Some("cart")
    );
    let capped = peer_from_flatnode(&bytes, 1).unwrap();
    assert_eq!(capped.labels.len(), 1);
}

#[test]
fn not_a_flatnode() {
    assert!(peer_from_flatnode(&[], 256).is_none());
    assert!(peer_from_flatnode(b"namespace=x", 256).is_none());
    assert!(
        peer_from_flatnode(&flatnode(&[], &[]), 256).is_none(),
        "an empty node is no peer"
    );
    let bytes = flatnode(&[(1, "bookinfo")], &[("app", "x")]);
    for cut in 0..bytes.len() {
        let _ = peer_from_flatnode(&bytes[..cut], 256);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn hostile_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = peer_from_flatnode(&bytes, 16);
    }

    #[test]
    fn flipped_bytes_never_panic(at in any::<prop::sample::Index>(), x in 1u8..) {
        let mut bytes = flatnode(&[(0, "pod"), (1, "ns"), (9, "c")], &[("app", "a"), ("version", "v")]);
        let i = at.index(bytes.len());
        bytes[i] ^= x;
        let _ = peer_from_flatnode(&bytes, 16);
    }
}
