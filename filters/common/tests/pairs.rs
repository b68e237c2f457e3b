// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use filter_common::header::pairs::{encode_pairs, HeaderMap};
use proptest::prelude::*;

fn decode(bytes: &[u8]) -> Option<HeaderMap> {
    HeaderMap::decode(bytes.to_vec())
}

#[test]
fn round_trip_and_empty() {
    let encoded = encode_pairs(&[
        (":path", b"/x"),
        ("x-bin", b"\xff\x00\x01"),
        ("x-empty", b""),
    ]);
    let decoded = decode(&encoded).unwrap();
    let pairs: Vec<(&str, &[u8])> = decoded.iter().collect();
    assert_eq!(
        pairs,
        [
            (":path", &b"/x"[..]),
            ("x-bin", b"\xff\x00\x01"),
            ("x-empty", b"")
        ]
    );
    assert!(decode(&[]).unwrap().is_empty());
}

#[test]
fn broken_layouts_are_refused() {
    let encoded = encode_pairs(&[("a", b"b")]);
    for cut in 1..encoded.len() - 1 {
        assert_eq!(decode(&encoded[..cut]), None, "cut at {cut}");
    }
    assert_eq!(decode(&[0xff, 0xff, 0xff, 0xff]), None);
}

#[test]
fn names_that_are_not_utf8_are_replaced_in_place() {
    let mut encoded = encode_pairs(&[("a", b"1"), ("bXd", b"2"), ("c", b"3")]);
    let at = encoded.windows(3).position(|w| w == b"bXd").unwrap();
    encoded[at + 1] = 0xff;
    let decoded = decode(&encoded).unwrap();
    let pairs: Vec<(&str, &[u8])> = decoded.iter().collect();
    assert_eq!(pairs, [("a", &b"1"[..]), ("b\u{fffd}d", b"2"), ("c", b"3")]);
}

#[test]
fn lookups_and_edits() {
    let mut map = HeaderMap::from_pairs(&[("x-a", "1"), ("x-b", "2"), ("x-a", "3")]);
    assert_eq!(map.first("x-a"), Some(&b"1"[..]));
    assert_eq!(map.values("x-a").collect::<Vec<_>>(), [b"1", b"3"]);
    assert!(map.contains("x-b") && !map.contains("x-c") && !map.contains("x-"));
    map.remove("x-a");
    map.append("x-c", b"4");
    map.append("x-a", b"5");
    assert_eq!(
        map,
        HeaderMap::from_pairs(&[("x-b", "2"), ("x-c", "4"), ("x-a", "5")])
    );
    assert_ne!(map, HeaderMap::from_pairs(&[("x-b", "2"), ("x-c", "4")]));
    assert_eq!(
        format!("{map:?}"),
        r#"[("x-b", "2"), ("x-c", "4"), ("x-a", "5")]"#
    );
}

#[test]
fn cleared_maps_start_again() {
    for keep in [0, 4096] {
        let mut map = decode(&encode_pairs(&[("x-a", b"1"), ("x-b", b"2")])).unwrap();
        map.append("x-c", b"3");
        map.clear(keep);
        assert!(map.is_empty() && !map.contains("x-a") && !map.contains("x-c"));
        map.append("x-d", b"4");
        assert_eq!(map, HeaderMap::from_pairs(&[("x-d", "4")]), "keep {keep}");
    }
}

proptest! {
    #[test]
    fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Some(map) = decode(&bytes) {
            let _ = map.iter().count();
        }
    }

    #[test]
    fn round_trips(pairs in proptest::collection::vec(("[a-z:-]{0,12}", proptest::collection::vec(any::<u8>(), 0..40)), 0..12)) {
        let refs: Vec<(&str, &[u8])> = pairs.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect();
        let decoded = decode(&encode_pairs(&refs)).unwrap();
        prop_assert_eq!(decoded.iter().collect::<Vec<_>>(), refs.clone());
        prop_assert_eq!(decoded, HeaderMap::from_pairs(&refs));
    }

    /// Edits on a decoded map leave it equal to the same edits on a list.
    #[test]
    fn edits_match_a_plain_list(
        pairs in proptest::collection::vec(("[a-c]", "[a-z]{0,3}"), 0..8),
        edits in proptest::collection::vec((any::<bool>(), "[a-d]", "[a-z]{0,3}"), 0..8),
    ) {
        let refs: Vec<(&str, &[u8])> = pairs.iter().map(|(n, v)| (n.as_str(), v.as_bytes())).collect();
        let mut map = decode(&encode_pairs(&refs)).unwrap();
        let mut list: Vec<(String, Vec<u8>)> = pairs.iter().map(|(n, v)| (n.clone(), v.clone().into_bytes())).collect();
        for (remove, name, value) in &edits {
            if *remove {
                map.remove(name);
                list.retain(|(n, _)| n != name);
            } else {
                map.append(name, value.as_bytes());
                list.push((name.clone(), value.clone().into_bytes()));
            }
        }
        prop_assert_eq!(map, HeaderMap::from_pairs(&list));
    }
}
