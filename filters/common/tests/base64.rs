//! The small codec against the `base64` crate: same encodings, and the same
//! accept/reject decision (and bytes) for arbitrary input, including
//! partial padding and non-canonical last characters.

// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::{DecodePaddingMode, Engine};
use filter_common::encoding::base64::{decode, encode_into};
use proptest::prelude::*;

const INDIFFERENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

fn encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    encode_into(bytes, &mut out);
    out
}

#[test]
fn known_vectors() {
    // RFC 4648 section 10.
    for (plain, coded) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(encode(plain.as_bytes()), coded);
        assert_eq!(decode(coded.as_bytes()).as_deref(), Some(plain.as_bytes()));
        let unpadded = coded.trim_end_matches('=');
        assert_eq!(
            decode(unpadded.as_bytes()).as_deref(),
            Some(plain.as_bytes())
        );
    }
    for bad in [
        "Z", "Zg===", "Zh==", "Zm9=", "Zm 9v", "Zm9v=", "Zg==Zg==", "-_==", "====",
    ] {
        assert_eq!(decode(bad.as_bytes()), None, "{bad}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn encodes_like_the_crate(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        prop_assert_eq!(encode(&bytes), STANDARD.encode(&bytes));
        prop_assert_eq!(decode(STANDARD.encode(&bytes).as_bytes()), Some(bytes.clone()));
        let unpadded = STANDARD.encode(&bytes).trim_end_matches('=').to_string();
        prop_assert_eq!(decode(unpadded.as_bytes()), Some(bytes));
    }

    #[test]
    fn decides_like_the_crate(text in "[A-Za-z0-9+/=_ -]{0,24}") {
        prop_assert_eq!(decode(text.as_bytes()), INDIFFERENT.decode(text.as_bytes()).ok());
    }

    #[test]
    fn near_valid_input_decides_like_the_crate(
        bytes in proptest::collection::vec(any::<u8>(), 0..40),
        cut in 0usize..4,
        pad in 0usize..4,
    ) {
        let coded = STANDARD.encode(&bytes);
        let mut text = coded.trim_end_matches('=').to_string();
        text.truncate(text.len().saturating_sub(cut));
        text.push_str(&"=".repeat(pad));
        prop_assert_eq!(decode(text.as_bytes()), INDIFFERENT.decode(text.as_bytes()).ok());
    }
}
