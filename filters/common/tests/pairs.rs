use filter_common::pairs::{decode_pairs, encode_pairs};
use proptest::prelude::*;

#[test]
fn round_trip_and_empty() {
    let encoded = encode_pairs(&[
        (":path", b"/x"),
        ("x-bin", b"\xff\x00\x01"),
        ("x-empty", b""),
    ]);
    let decoded = decode_pairs(&encoded).unwrap();
    assert_eq!(decoded[0], (":path".to_string(), b"/x".to_vec()));
    assert_eq!(decoded[1].1, b"\xff\x00\x01");
    assert_eq!(decoded[2].1, b"");
    assert_eq!(decode_pairs(&[]).unwrap(), vec![]);
}

#[test]
fn broken_layouts_are_refused() {
    let encoded = encode_pairs(&[("a", b"b")]);
    for cut in 1..encoded.len() - 1 {
        assert_eq!(decode_pairs(&encoded[..cut]), None, "cut at {cut}");
    }
    assert_eq!(decode_pairs(&[0xff, 0xff, 0xff, 0xff]), None);
}

proptest! {
    #[test]
    fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode_pairs(&bytes);
    }

    #[test]
    fn round_trips(pairs in proptest::collection::vec(("[a-z:-]{0,12}", proptest::collection::vec(any::<u8>(), 0..40)), 0..12)) {
        let refs: Vec<(&str, &[u8])> = pairs.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect();
        let decoded = decode_pairs(&encode_pairs(&refs)).unwrap();
        prop_assert_eq!(decoded, pairs);
    }
}
