//! A small JSON writer for records: filters build one line per record on the
//! request path, so they append into one `String` instead of building a tree.

use base64::Engine;

/// Appends `s` as a JSON string literal.
pub fn push_str(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            out.push_str(&format!("\\u{b:04x}"));
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Appends bytes as a JSON string, replacing invalid UTF-8 with U+FFFD.
pub fn push_lossy(out: &mut String, bytes: &[u8]) {
    push_str(out, &String::from_utf8_lossy(bytes));
}

/// Appends bytes as a base64 JSON string (protobuf's JSON form of `bytes`).
pub fn push_base64(out: &mut String, bytes: &[u8]) {
    out.push('"');
    base64::engine::general_purpose::STANDARD.encode_string(bytes, out);
    out.push('"');
}

/// Appends `"key":` (keys are literals chosen by the caller, never escaped).
pub fn push_key(out: &mut String, key: &str) {
    out.push('"');
    out.push_str(key);
    out.push_str("\":");
}
