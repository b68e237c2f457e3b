// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use filter_common::peer::{label, labels_by_name, Key, Peer, Published, MAX_LABELS};
use proptest::prelude::*;

/// Reads every key back from what `published` wrote, as a filter in another
/// module reads Envoy's filter state.
fn read_back(published: &Published) -> Peer {
    Peer::read(&Key::ALL, |key| {
        published
            .entries()
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_bytes().to_vec())
    })
}

fn full() -> Peer {
    Peer {
        workload: Some("cart-v3".into()),
        namespace: Some("shop".into()),
        name: Some("cart-v3-7d9f".into()),
        app: Some("cart".into()),
        version: Some("v3".into()),
        cluster: Some("east".into()),
        identity: Some("spiffe://td/ns/shop/sa/cart".into()),
        principal: Some("spiffe://td/ns/shop/sa/cart".into()),
        verified: true,
        service_account: Some("cart".into()),
        labels: [("app", "cart"), ("q\"uote\\", "line\nbreak\u{1}")]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .into(),
        // The locality is not published, so it does not read back.
        ..Peer::default()
    }
}

#[test]
fn the_published_keys_are_the_documented_ones() {
    let names: Vec<&str> = Key::ALL.iter().map(|k| k.name()).collect();
    assert_eq!(
        names,
        [
            "peer_workload",
            "peer_namespace",
            "peer_name",
            "peer_app",
            "peer_version",
            "peer_cluster",
            "peer_identity",
            "peer_principal",
            "peer_verified",
            "peer_labels",
            "peer_service_account",
        ]
    );
}

#[test]
fn every_field_round_trips_through_filter_state() {
    let state = full();
    let published = Published::new(state.clone());
    assert_eq!(published.entries().len(), Key::ALL.len());
    assert_eq!(**published.state(), state);
    assert_eq!(read_back(&published), state);
    let value = |key| published.entries().iter().find(|(k, _)| *k == key).cloned();
    assert_eq!(
        value(Key::Verified),
        Some((Key::Verified, "true".to_string()))
    );
    assert_eq!(
        value(Key::Labels),
        Some((
            Key::Labels,
            r#"{"app":"cart","q\"uote\\":"line\nbreak\u0001"}"#.to_string()
        ))
    );
}

/// Labels are written in the order received and read back in name order; a
/// label given twice counts with its last value either way.
#[test]
fn labels_keep_their_order_and_a_repeat_counts_with_its_last_value() {
    let pairs = |l: &[(&str, &str)]| -> Vec<(String, String)> {
        l.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let state = Peer {
        labels: pairs(&[("zone", "a"), ("app", "cart"), ("zone", "b")]),
        ..Peer::default()
    };
    let published = Published::new(state.clone());
    assert!(published.entries().contains(&(
        Key::Labels,
        r#"{"zone":"a","app":"cart","zone":"b"}"#.to_string()
    )));
    let read = read_back(&published);
    assert_eq!(read.labels, pairs(&[("app", "cart"), ("zone", "b")]));
    assert_eq!(labels_by_name(&read.labels), labels_by_name(&state.labels));
    assert_eq!(label(&labels_by_name(&state.labels), "zone"), Some("b"));
}

#[test]
fn an_unknown_caller_publishes_only_that_it_is_unverified() {
    let published = Published::new(Peer::default());
    assert_eq!(published.entries(), [(Key::Verified, "false".to_string())]);
    assert_eq!(read_back(&published), Peer::default());
}

/// What `published` holds under `key`, as a host would return it.
fn value_of(published: &Published, key: Key) -> Option<Vec<u8>> {
    published
        .entries()
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.as_bytes().to_vec())
}

#[test]
fn only_the_keys_asked_for_are_read() {
    let published = Published::new(full());
    let mut asked = Vec::new();
    let state = Peer::read(&[Key::Namespace, Key::Verified], |key| {
        asked.push(key);
        value_of(&published, key)
    });
    assert_eq!(asked, [Key::Namespace, Key::Verified]);
    assert_eq!(
        state,
        Peer {
            namespace: Some("shop".into()),
            verified: true,
            ..Peer::default()
        }
    );
}

/// A reader that must tell "nothing published" from "published, not
/// verified" (tap_http's record): `verified` is asked first, and alone when
/// it is absent.
#[test]
fn read_published_asks_once_when_nothing_was_published() {
    let published = Published::new(full());
    let mut asked = Vec::new();
    let state = Peer::read_published(&[Key::Namespace, Key::Workload], |key| {
        asked.push(key);
        value_of(&published, key)
    });
    assert_eq!(asked, [Key::Verified, Key::Namespace, Key::Workload]);
    assert_eq!(
        state,
        Some(Peer {
            namespace: Some("shop".into()),
            workload: Some("cart-v3".into()),
            verified: true,
            ..Peer::default()
        })
    );
    let unknown = Published::new(Peer::default());
    let read = |entries: &[(Key, String)]| {
        let mut asked = 0;
        let state = Peer::read_published(&[Key::Namespace], |key| {
            asked += 1;
            entries
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.as_bytes().to_vec())
        });
        (state, asked)
    };
    assert_eq!(read(unknown.entries()), (Some(Peer::default()), 2));
    assert_eq!(read(&[]), (None, 1), "nothing published: one key asked");
}

/// Filter state another filter may have written under these keys.
#[test]
fn hostile_values_read_as_absent_or_bounded() {
    let read = |key: Key, raw: &[u8]| Peer::read(&[key], |_| Some(raw.to_vec()));
    // Not UTF-8: absent, not a lossy stand-in.
    assert_eq!(read(Key::Namespace, b"sh\xffop").namespace, None);
    assert!(read(Key::Labels, b"{\"app\":\"c\xffart\"}")
        .labels
        .is_empty());
    // Only the exact `true` verifies.
    for raw in [&b"TRUE"[..], b"true ", b"1", b"", b"\xff"] {
        assert!(!read(Key::Verified, raw).verified, "{raw:?}");
    }
    // Not an object of strings: no labels, or only the string members.
    for raw in [&b"[]"[..], b"\"app\"", b"{", b"null", b"{\"a\":"] {
        assert!(read(Key::Labels, raw).labels.is_empty(), "{raw:?}");
    }
    assert_eq!(
        read(Key::Labels, br#"{"a":1,"b":{"c":"d"},"e":"f"}"#).labels,
        [("e".to_string(), "f".to_string())]
    );
    // A label given twice keeps its last value, as any JSON reader takes it.
    assert_eq!(
        read(Key::Labels, br#"{"app":"cart","app":"admin"}"#).labels,
        [("app".to_string(), "admin".to_string())]
    );
    // Huge: at most MAX_LABELS labels, whatever the value holds.
    let mut many = String::from("{");
    for i in 0..MAX_LABELS + 50 {
        many.push_str(&format!("\"k{i}\":\"v\","));
    }
    many.push_str("\"last\":\"v\"}");
    assert_eq!(read(Key::Labels, many.as_bytes()).labels.len(), MAX_LABELS);
    let long = "x".repeat(1 << 20);
    assert_eq!(
        read(Key::Workload, long.as_bytes())
            .workload
            .map(|w| w.len()),
        Some(1 << 20)
    );
}

proptest! {
    /// Any labels and any text (quotes, backslashes, controls, non-ASCII)
    /// read back as written.
    #[test]
    fn any_state_round_trips(
        labels in proptest::collection::btree_map(".{0,12}", ".{0,12}", 0..8),
        workload in proptest::option::of(".{0,24}"),
        principal in proptest::option::of(".{0,24}"),
        verified: bool,
    ) {
        // In name order, each once: as labels read back.
        let labels = labels.into_iter().collect();
        let state = Peer { labels, workload, principal, verified, ..Peer::default() };
        prop_assert_eq!(read_back(&Published::new(state.clone())), state);
    }
}

proptest! {
    /// Labels in any order, repeats included, mean the same labels once
    /// read back.
    #[test]
    fn any_labels_read_back_as_the_same_map(
        labels in proptest::collection::vec(("[ab\"\\\\]{0,2}", ".{0,6}"), 0..10),
    ) {
        let state = Peer { labels, ..Peer::default() };
        let read = read_back(&Published::new(state.clone()));
        prop_assert_eq!(labels_by_name(&read.labels), labels_by_name(&state.labels));
    }
}

proptest! {
    /// Labels by name are the map a reader would build, last value winning,
    /// and `label` finds every name in it and nothing else.
    #[test]
    fn labels_by_name_is_the_last_value_map(
        labels in prop::collection::vec(("[abc]{1,2}", "[xy]{0,2}"), 0..24),
        probe in "[abcd]{1,2}",
    ) {
        let labels: Vec<(String, String)> = labels;
        let map: std::collections::BTreeMap<String, String> = labels.iter().cloned().collect();
        let by_name = labels_by_name(&labels);
        prop_assert_eq!(&by_name, &map.clone().into_iter().collect::<Vec<_>>());
        prop_assert_eq!(label(&by_name, &probe), map.get(&probe).map(String::as_str));
    }
}
