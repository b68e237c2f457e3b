//! Percent-escapes (`%XX`), read byte by byte where they are checked
//! (l7_policy's paths) or decoded for a comparison (tap_http's redaction).

/// The value of an ASCII hex digit.
pub fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The byte `%XX` at the start of `bytes` encodes.
pub fn escaped(bytes: &[u8]) -> Option<u8> {
    match bytes {
        [b'%', h, l, ..] => Some(hex(*h)? << 4 | hex(*l)?),
        _ => None,
    }
}
