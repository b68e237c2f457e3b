//! Header and authority helpers shared by the filters. Pure functions on bytes:
//! header values reach a filter as bytes and may not be UTF-8.

pub mod pairs;

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

/// Why a configured name may not be a header a filter writes.
///
/// A filter that writes a header chosen by configuration must never write one
/// that frames or routes the message: set to `content-length` with a value a
/// caller influences, a filter would make the upstream read the rest of the
/// body as a second request. Names Envoy owns (`x-envoy-*`) are refused too:
/// Envoy and the mesh give them meaning.
pub fn forbidden_output_header(name: &str) -> Option<&'static str> {
    const FRAMING: [&str; 9] = [
        "content-length",
        "transfer-encoding",
        "host",
        "connection",
        "te",
        "upgrade",
        "keep-alive",
        "proxy-connection",
        "expect",
    ];
    let lower = name.to_ascii_lowercase();
    if lower.starts_with(':') {
        Some("is a pseudo-header")
    } else if FRAMING.iter().any(|f| same_header_name(f, &lower)) {
        Some("frames or routes the HTTP message (framing, hop-by-hop or Host)")
    } else if lower
        .get(..8)
        .is_some_and(|prefix| same_header_name(prefix, "x-envoy-"))
    {
        Some("is a header Envoy owns (x-envoy-*)")
    } else if !is_valid_header_name(name) {
        Some("is not a header name")
    } else {
        None
    }
}

/// Whether two header names are the same once case is ignored and `_` and
/// `-` are treated as one character: CGI-style frameworks (WSGI, Rack, PHP)
/// map both `CF-App-Id` and `CF_App_Id` to `HTTP_CF_APP_ID`, so a filter that
/// owns a header must treat its underscore spellings as the same header.
pub fn same_header_name(a: &str, b: &str) -> bool {
    let fold = |c: u8| match c {
        b'_' => b'-',
        c => c.to_ascii_lowercase(),
    };
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| fold(x) == fold(y))
}

/// A client's copies of headers a filter owns, found among a request's
/// header or trailer names.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Copies {
    /// Lines, each repeat counted.
    pub lines: u64,
    /// Their distinct names, lowercase (how Envoy holds them): removing each
    /// removes every line. Empty, and never allocated, when `lines` is 0.
    pub spellings: Vec<String>,
}

/// Every line among `names` whose name is one of `owned` in any case, or
/// with `_` for `-` ([`same_header_name`]).
pub fn copies<'a, S: AsRef<str>>(owned: &[S], names: impl IntoIterator<Item = &'a str>) -> Copies {
    let mut found = Copies::default();
    for name in names {
        if !owned.iter().any(|o| same_header_name(o.as_ref(), name)) {
            continue;
        }
        found.lines += 1;
        if !found.spellings.iter().any(|s| s.eq_ignore_ascii_case(name)) {
            found.spellings.push(name.to_ascii_lowercase());
        }
    }
    found
}
