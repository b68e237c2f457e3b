//! Percent-escapes (`%XX`), read byte by byte where they are checked
//! (l7_policy's paths), decoded for a comparison (tap_http's redaction) or
//! decoded whole (the values of Istio ambient's `baggage`).

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

/// `text` with every `%XX` decoded; `None` for a malformed escape or a
/// result that is not UTF-8.
pub fn decode(text: &str) -> Option<String> {
    let mut rest = text.as_bytes();
    let mut out = Vec::with_capacity(rest.len());
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'%' {
            out.push(escaped(rest)?);
            rest = rest.get(3..)?;
        } else {
            out.push(b);
            rest = tail;
        }
    }
    String::from_utf8(out).ok()
}
