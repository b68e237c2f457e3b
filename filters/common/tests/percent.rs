//! Percent-decoding: every escape decoded, malformed ones refused rather
//! than guessed at.

// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use filter_common::encoding::percent::decode;
use proptest::prelude::*;

#[test]
fn decodes_escapes_and_refuses_malformed_ones() {
    assert_eq!(decode("a%20b%E2%9C%93").as_deref(), Some("a b\u{2713}"));
    assert_eq!(decode("plain").as_deref(), Some("plain"));
    assert_eq!(decode("").as_deref(), Some(""));
    // `u8::from_str_radix` would read "+1" as 1: not an escape.
    for bad in ["%", "%1", "%zz", "%+1", "%-1", "a%2", "%FF"] {
        assert_eq!(decode(bad), None, "{bad}");
    }
}

proptest! {
    #[test]
    fn every_byte_escaped_decodes_back(text in ".*") {
        let escaped: String = text.bytes().map(|b| format!("%{b:02X}")).collect();
        prop_assert_eq!(decode(&escaped), Some(text.clone()));
        let lower = escaped.to_ascii_lowercase();
        prop_assert_eq!(decode(&lower), Some(text));
    }
}
