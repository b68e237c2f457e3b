//! A small JSON writer for records: filters build one line per record on the
//! request path, so they append into one `String` instead of building a tree.

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
    crate::encoding::base64::encode_into(bytes, out);
    out.push('"');
}

/// Appends `"key":` (keys are literals chosen by the caller, never escaped).
pub fn push_key(out: &mut String, key: &str) {
    out.push('"');
    out.push_str(key);
    out.push_str("\":");
}

/// `ip:port` (or `[v6]:port`) as Envoy's JSON `Address`.
pub fn push_address(out: &mut String, address: &str) {
    let (ip, port) = match address.rsplit_once(':') {
        Some((ip, port))
            if port.parse::<u32>().is_ok() && (!ip.contains(':') || ip.starts_with('[')) =>
        {
            (ip.trim_start_matches('[').trim_end_matches(']'), port)
        }
        _ => (address, "0"),
    };
    out.push_str("{\"socket_address\":{");
    push_key(out, "address");
    push_str(out, ip);
    out.push(',');
    push_key(out, "port_value");
    out.push_str(port);
    out.push_str("}}");
}

/// UTC time as `2026-01-02T03:04:05.123456789Z`.
pub fn rfc3339(nanos: u64) -> String {
    let secs = nanos / 1_000_000_000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Days to civil date (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        nanos % 1_000_000_000
    )
}
