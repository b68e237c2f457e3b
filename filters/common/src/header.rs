//! Header and authority helpers shared by the filters. Pure functions on bytes:
//! header values reach a filter as bytes and may not be UTF-8.

/// The host part of an `:authority` (or `Host`) value, compared the way
/// Envoy's virtual hosts compare it with `strip_any_host_port` and
/// `strip_trailing_host_dot`: ASCII-lowercased, without a numeric port,
/// without one trailing dot. IPv6 literals keep their brackets (`[::1]:80` -> `[::1]`).
///
/// Returns `None` for values that cannot name a configured host (empty, or not
/// UTF-8): callers treat that as "no host matched", never as an error.
pub fn normalize_authority(raw: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(raw).ok()?;
    let host = strip_port(text);
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() {
        return None;
    }
    Some(host.to_ascii_lowercase())
}

fn strip_port(authority: &str) -> &str {
    let Some(colon) = authority.rfind(':') else {
        return authority;
    };
    // A colon inside an IPv6 literal's brackets is not a port separator.
    if authority.rfind(']').is_some_and(|bracket| bracket > colon) {
        return authority;
    }
    let (host, port) = (&authority[..colon], &authority[colon + 1..]);
    // Like Envoy's port stripping: an empty or non-numeric port is part of the host.
    if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
        host
    } else {
        authority
    }
}

/// RFC 9110 `token`: what a header field name may contain. Pseudo-headers
/// (`:path`) are not names a configuration may set.
pub fn is_valid_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A value a configuration may put into a header: visible ASCII with inner
/// spaces or tabs, never CR, LF or NUL, and no surrounding whitespace (which
/// HTTP/1 peers would trim, so it could never be matched exactly downstream).
pub fn is_valid_header_value(value: &str) -> bool {
    let bytes = value.as_bytes();
    let visible = |b: &u8| (0x21..=0x7e).contains(b);
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            visible(first)
                && visible(last)
                && bytes
                    .iter()
                    .all(|b| visible(b) || *b == b' ' || *b == b'\t')
        }
        _ => false,
    }
}

/// A DNS name as it may appear in configuration: lowercase-insensitive labels of
/// letters, digits, `-` and `_`, optionally a leading `*.` wildcard label.
/// Brackets allow IPv6 literals. Returns the canonical (lowercase) form.
pub fn canonical_host_pattern(pattern: &str) -> Option<String> {
    let lower = pattern
        .strip_suffix('.')
        .unwrap_or(pattern)
        .to_ascii_lowercase();
    if lower.starts_with('[') {
        let ok = lower.ends_with(']')
            && lower.len() > 2
            && lower[1..lower.len() - 1]
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        return ok.then_some(lower);
    }
    let name = lower.strip_prefix("*.").unwrap_or(&lower);
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    (!name.is_empty() && name.len() <= 253 && name.split('.').all(label_ok)).then_some(lower)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn authority_forms() {
        let cases: &[(&[u8], Option<&str>)] = &[
            (b"Example.COM", Some("example.com")),
            (b"example.com:8080", Some("example.com")),
            (b"example.com:", Some("example.com:")),
            (b"example.com.", Some("example.com")),
            (b"example.com.:443", Some("example.com")),
            (b"[::1]:80", Some("[::1]")),
            (b"[::1]", Some("[::1]")),
            (b"[::1].:443", Some("[::1]")),
            // What Envoy makes of an unbracketed IPv6 literal.
            (b"::1", Some(":")),
            (b"a.com:abc", Some("a.com:abc")),
            (b"", None),
            (b":80", None),
            (b"\xffbad", None),
        ];
        for (raw, want) in cases {
            assert_eq!(
                normalize_authority(raw).as_deref(),
                *want,
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn names_and_values() {
        assert!(is_valid_header_name("CF-App-Id"));
        assert!(!is_valid_header_name(""));
        assert!(!is_valid_header_name(":path"));
        assert!(!is_valid_header_name("a b"));
        assert!(is_valid_header_value(
            "eb1534db-8765-430d-adfe-77fd1a8e45a9"
        ));
        assert!(is_valid_header_value("a b"));
        for bad in ["", " a", "a ", "a\r\nx: y", "a\0", "caf\u{e9}"] {
            assert!(!is_valid_header_value(bad), "{bad:?}");
        }
    }

    #[test]
    fn host_patterns() {
        assert_eq!(
            canonical_host_pattern("App.Example.com.").as_deref(),
            Some("app.example.com")
        );
        assert_eq!(
            canonical_host_pattern("*.apps.example.com").as_deref(),
            Some("*.apps.example.com")
        );
        assert_eq!(canonical_host_pattern("[::1]").as_deref(), Some("[::1]"));
        for bad in [
            "", "*", "a..b", "a.com:80", "*.*.a", "a b", "a/b", "[]", "x.*.com",
        ] {
            assert_eq!(canonical_host_pattern(bad), None, "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn port_and_case_never_change_the_host(host in "[a-zA-Z0-9-]{1,20}(\\.[a-zA-Z0-9-]{1,20}){0,3}", port in proptest::option::of(0u32..70000)) {
            let authority = match port { Some(p) => format!("{host}:{p}"), None => host.clone() };
            prop_assert_eq!(normalize_authority(authority.as_bytes()), Some(host.to_ascii_lowercase()));
        }

        #[test]
        fn normalize_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = normalize_authority(&raw);
        }
    }
}
