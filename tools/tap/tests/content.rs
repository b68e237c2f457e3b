//! Content-encoded bodies decoded for HAR: gzip, deflate (zlib and raw), br
//! and lists of codings; a body cut at the tap's cap decodes as far as it
//! goes; an unknown coding, data that is not what it claims and a body that
//! would expand past the bound are left as recorded, each with a note.

// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
use flate2::Compression;
use proptest::prelude::*;
use std::io::Write;
use tap_tool::content::{decode, Decoded, MAX_DECODED};

const TEXT: &[u8] = br#"{"greeting": "hello from a brotli body"}"#;

/// `TEXT` as Python's brotli.compress wrote it (mitmproxy's own brotli).
const BROTLI: [u8; 44] = [
    139, 19, 128, 123, 34, 103, 114, 101, 101, 116, 105, 110, 103, 34, 58, 32, 34, 104, 101, 108,
    108, 111, 32, 102, 114, 111, 109, 32, 97, 32, 98, 114, 111, 116, 108, 105, 32, 98, 111, 100,
    121, 34, 125, 3,
];

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = ZlibEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn raw_deflate(data: &[u8]) -> Vec<u8> {
    let mut e = DeflateEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn clean(bytes: &[u8]) -> Decoded {
    Decoded {
        bytes: bytes.to_vec(),
        note: None,
    }
}

#[test]
fn known_codings_decode() {
    assert_eq!(decode("gzip", &gzip(TEXT)), clean(TEXT));
    assert_eq!(decode("X-GZIP", &gzip(TEXT)), clean(TEXT));
    assert_eq!(decode("deflate", &zlib(TEXT)), clean(TEXT));
    assert_eq!(decode("deflate", &raw_deflate(TEXT)), clean(TEXT));
    assert_eq!(decode("br", &BROTLI), clean(TEXT));
    assert_eq!(decode("", TEXT), clean(TEXT));
    assert_eq!(decode("identity", TEXT), clean(TEXT));
    // Applied in the order listed: deflate first, then gzip.
    assert_eq!(decode("deflate, gzip", &gzip(&zlib(TEXT))), clean(TEXT));
}

#[test]
fn a_body_cut_at_the_cap_decodes_as_far_as_it_goes() {
    let long: Vec<u8> = (0..20_000u32)
        .flat_map(|i| i.to_string().into_bytes())
        .collect();
    let encoded = gzip(&long);
    let cut = &encoded[..encoded.len() / 2];
    let d = decode("gzip", cut);
    assert!(
        !d.bytes.is_empty() && long.starts_with(&d.bytes),
        "a prefix"
    );
    assert!(d.note.unwrap().contains("ends early"));
}

#[test]
fn what_cannot_be_decoded_is_left_as_recorded_with_a_note() {
    let d = decode("zstd", b"\x28\xb5\x2f\xfd");
    assert_eq!(d.bytes, b"\x28\xb5\x2f\xfd");
    assert!(d.note.unwrap().contains("cannot decode zstd"));
    let d = decode("gzip", b"plain text, not gzip");
    assert_eq!(d.bytes, b"plain text, not gzip");
    assert!(d.note.unwrap().contains("not gzip data"));
}

#[test]
fn a_decompression_bomb_is_left_encoded() {
    let bomb = gzip(&vec![0u8; MAX_DECODED + 1]);
    assert!(bomb.len() < MAX_DECODED / 100, "small on the wire");
    let d = decode("gzip", &bomb);
    assert_eq!(d.bytes, bomb);
    assert!(d.note.unwrap().contains("more than"));
}

proptest! {
    #[test]
    fn any_bytes_decode_without_panicking(
        coding in prop::sample::select(vec!["gzip", "deflate", "br", "gzip, br", "zstd"]),
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let _ = decode(coding, &bytes);
    }

    #[test]
    fn gzip_round_trips(data in proptest::collection::vec(any::<u8>(), 0..2000)) {
        prop_assert_eq!(decode("gzip", &gzip(&data)), clean(&data));
    }
}
