//! What a record must not carry: credentials. Records travel further than
//! the pod (a file fetched to a laptop, the sidecar's log shipped to a
//! central store), so values that look like credentials are replaced by
//! `[redacted]` before a record is written:
//!
//! - header and trailer values, by exact name (`redact_headers`) or when the
//!   name contains a credential word (`redact_words`; pseudo-headers never);
//! - Istio's peer metadata headers (`x-envoy-peer-metadata` and `-id`: the
//!   caller's whole workload metadata; and `baggage`, which carries it in
//!   ambient mode besides the app's own OpenTelemetry baggage), unless the
//!   configuration records them (`record_peer_metadata_headers`);
//! - query values in `:path` and in the URL-valued headers, when the
//!   parameter's name contains a word (`?access_token=[redacted]&page=2`);
//! - form fields (`application/x-www-form-urlencoded`) and JSON members
//!   (any `*json*` content type) of bodies, by the same test on the name:
//!   a JSON member's whole value is replaced, whatever its type.
//!
//! Names are compared in ASCII lowercase after one percent-decoding (query
//! and form names) or JSON unescaping, so `access%5Ftoken` and
//! `"access\u005ftoken"` are `access_token`.

use filter_common::encoding::percent::{escaped, hex};
use filter_common::header::same_header_name;
use filter_common::peer::{BAGGAGE_HEADER, METADATA_HEADERS};
use std::borrow::Cow;

pub const REDACTED: &str = "[redacted]";

/// Header names whose values are credentials, whatever the words.
pub const DEFAULT_HEADERS: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];

/// Words that mark a name as a credential's: `x-api-key`, `x-auth-token`,
/// `x-amz-security-token`, `access_token`, `client_secret`, `password`,
/// `x-csrf-token`, `sessionid`, `X-Amz-Signature`, `X-Amz-Credential`.
pub const DEFAULT_WORDS: [&str; 13] = [
    "auth",
    "token",
    "secret",
    "passw",
    "pwd",
    "key",
    "session",
    "cookie",
    "credential",
    "signature",
    "csrf",
    "xsrf",
    "jwt",
];

/// Headers whose value is a URL or a path: their query is redacted like
/// `:path`'s.
const URL_HEADERS: [&str; 5] = [
    ":path",
    "referer",
    "location",
    "content-location",
    "x-envoy-original-path",
];

/// What to redact; the configuration's `redact_headers` and `redact_words`,
/// lowercase.
#[derive(Debug, Clone, Default)]
pub struct Redaction {
    pub headers: Vec<String>,
    pub words: Vec<String>,
    /// Write Istio's peer metadata headers as they are (otherwise redacted,
    /// whatever `headers` lists).
    pub record_peer_metadata_headers: bool,
    /// The words' first bytes, as bits: a name is scanned for a word only
    /// where one starts (every header of every record is scanned).
    first: [u64; 2],
}

/// How a body is read for redaction, from its message's `content-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Json,
    Form,
    /// Kept as it is.
    Other,
}

impl BodyKind {
    pub fn of(content_type: Option<&[u8]>) -> BodyKind {
        // The media type, before any `;` parameter; case ignored.
        let essence = content_type
            .unwrap_or_default()
            .split(|&b| b == b';')
            .next()
            .unwrap_or_default();
        if contains(essence, b"json") {
            BodyKind::Json
        } else if essence
            .trim_ascii()
            .eq_ignore_ascii_case(b"application/x-www-form-urlencoded")
        {
            BodyKind::Form
        } else {
            BodyKind::Other
        }
    }
}

/// Whether `needle` (lowercase) occurs in `hay`, case ignored.
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && (0..hay.len()).any(|i| starts_folded(hay.get(i..).unwrap_or_default(), needle))
}

/// Whether `hay` starts with `word` (lowercase), ASCII case ignored.
fn starts_folded(hay: &[u8], word: &[u8]) -> bool {
    hay.len() >= word.len()
        && hay
            .iter()
            .zip(word)
            .all(|(h, w)| h.to_ascii_lowercase() == *w)
}

impl Redaction {
    /// Whether `name` contains a credential word, ASCII case ignored.
    fn secret(&self, name: &[u8]) -> bool {
        name.iter().enumerate().any(|(i, c)| {
            let c = c.to_ascii_lowercase();
            let bit = self
                .first
                .get(usize::from(c >> 6))
                .map_or(0, |b| b >> (c & 63) & 1);
            bit == 1
                && self.words.iter().any(|w| {
                    w.as_bytes().first() == Some(&c)
                        && starts_folded(name.get(i..).unwrap_or_default(), w.as_bytes())
                })
        })
    }

    /// `headers` and `words`, lowercase.
    pub fn new(headers: Vec<String>, words: Vec<String>) -> Redaction {
        let mut first = [0u64; 2];
        for c in words.iter().filter_map(|w| w.bytes().next()) {
            if let Some(bits) = first.get_mut(usize::from(c >> 6)) {
                *bits |= 1 << (c & 63);
            }
        }
        Redaction {
            headers,
            words,
            record_peer_metadata_headers: false,
            first,
        }
    }

    /// The whole value of this header is replaced. Names compare with case
    /// ignored and `_` as `-` (`X_Envoy_Peer_Metadata` too).
    pub fn hides_header(&self, name: &str) -> bool {
        let named = |h: &str| same_header_name(h, name);
        self.headers.iter().any(|h| named(h))
            || (!self.record_peer_metadata_headers
                && (METADATA_HEADERS.iter().any(|h| named(h)) || named(BAGGAGE_HEADER)))
            || (!name.starts_with(':') && self.secret(name.as_bytes()))
    }

    /// The header's value with the credentials it carries replaced.
    pub fn header<'a>(&self, name: &str, value: &'a [u8]) -> Cow<'a, [u8]> {
        if self.hides_header(name) {
            return Cow::Borrowed(REDACTED.as_bytes());
        }
        if self.words.is_empty() || !URL_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name)) {
            return Cow::Borrowed(value);
        }
        let Some(q) = value.iter().position(|&b| b == b'?') else {
            return Cow::Borrowed(value);
        };
        let (head, rest) = value.split_at(q + 1);
        let end = rest.iter().position(|&b| b == b'#').unwrap_or(rest.len());
        let (query, tail) = rest.split_at(end);
        match self.pairs(query) {
            Cow::Borrowed(_) => Cow::Borrowed(value),
            Cow::Owned(query) => Cow::Owned([head, &query, tail].concat()),
        }
    }

    /// A body of `kind` with its credential fields replaced.
    pub fn body<'a>(&self, kind: BodyKind, data: &'a [u8]) -> Cow<'a, [u8]> {
        if self.words.is_empty() {
            return Cow::Borrowed(data);
        }
        match kind {
            BodyKind::Json => self.json(data),
            BodyKind::Form => self.pairs(data),
            BodyKind::Other => Cow::Borrowed(data),
        }
    }

    /// `name=value&...` with the values of credential names replaced.
    fn pairs<'a>(&self, text: &'a [u8]) -> Cow<'a, [u8]> {
        let mut out: Option<Vec<u8>> = None;
        let mut start = 0;
        for part in text.split(|&b| b == b'&') {
            let end = start + part.len();
            if let Some(eq) = part.iter().position(|&b| b == b'=') {
                let name = part.get(..eq).unwrap_or_default();
                if self.secret(&percent_decoded(name)) {
                    let out =
                        out.get_or_insert_with(|| text.get(..start).unwrap_or_default().to_vec());
                    out.extend_from_slice(name);
                    out.push(b'=');
                    out.extend_from_slice(REDACTED.as_bytes());
                } else if let Some(out) = out.as_mut() {
                    out.extend_from_slice(part);
                }
            } else if let Some(out) = out.as_mut() {
                out.extend_from_slice(part);
            }
            if let Some(out) = out.as_mut() {
                if end < text.len() {
                    out.push(b'&');
                }
            }
            start = end + 1;
        }
        out.map_or(Cow::Borrowed(text), Cow::Owned)
    }

    /// JSON text with the value of every member whose name is a credential's
    /// replaced by `"[redacted]"`. Linear; a body cut off at its cap (or not
    /// JSON at all) is scanned as far as it goes, and a credential's value
    /// that runs to the end is replaced to the end.
    fn json<'a>(&self, data: &'a [u8]) -> Cow<'a, [u8]> {
        let mut out: Option<Vec<u8>> = None;
        let mut copied = 0;
        let mut i = 0;
        while let Some(&b) = data.get(i) {
            if b != b'"' {
                i += 1;
                continue;
            }
            let end = string_end(data, i);
            let key = data
                .get(i + 1..end.saturating_sub(1).max(i + 1))
                .unwrap_or_default();
            let colon = skip_blanks(data, end);
            if data.get(colon) != Some(&b':') || !self.secret(&json_decoded(key)) {
                i = end;
                continue;
            }
            let value = skip_blanks(data, colon + 1);
            let after = value_end(data, value);
            let o = out.get_or_insert_with(Vec::new);
            o.extend_from_slice(data.get(copied..value).unwrap_or_default());
            o.push(b'"');
            o.extend_from_slice(REDACTED.as_bytes());
            o.push(b'"');
            copied = after;
            i = after;
        }
        match out {
            Some(mut o) => {
                o.extend_from_slice(data.get(copied..).unwrap_or_default());
                Cow::Owned(o)
            }
            None => Cow::Borrowed(data),
        }
    }
}

/// The index after the string starting at `start` (a `"`), or the end.
fn string_end(data: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while let Some(&b) = data.get(i) {
        match b {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    data.len()
}

fn skip_blanks(data: &[u8], mut i: usize) -> usize {
    while matches!(data.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// The index after the JSON value starting at `start`: a string, an object
/// or array (brackets counted outside strings), or a bare word up to the
/// next `,` `}` `]` or blank. The end of `data` when it runs off.
fn value_end(data: &[u8], start: usize) -> usize {
    match data.get(start) {
        Some(b'"') => string_end(data, start),
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            let mut i = start;
            while let Some(&b) = data.get(i) {
                match b {
                    b'"' => {
                        i = string_end(data, i);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            return i + 1;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            data.len()
        }
        _ => {
            let mut i = start;
            while let Some(&b) = data.get(i) {
                if matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                    break;
                }
                i += 1;
            }
            i
        }
    }
}

/// `%XX` decoded once, `+` kept (for [`Redaction::secret`], which ignores
/// case).
fn percent_decoded(name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len());
    let mut i = 0;
    while let Some(&b) = name.get(i) {
        match escaped(name.get(i..).unwrap_or_default()) {
            Some(d) => {
                out.push(d);
                i += 3;
            }
            None => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// A JSON string's raw text with `\uXXXX` escapes of ASCII and the simple
/// escapes decoded (for [`Redaction::secret`], which ignores case).
fn json_decoded(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        match raw.get(i + 1) {
            Some(b'u') => {
                // `\u00XX` is ASCII; anything else is no letter of a word.
                let code = match raw.get(i + 2..i + 6) {
                    Some([b'0', b'0', h, l]) => hex(*h).zip(hex(*l)).map(|(h, l)| h << 4 | l),
                    _ => None,
                };
                out.push(code.unwrap_or(b'?'));
                i += 6;
            }
            Some(&e) => {
                out.push(e);
                i += 2;
            }
            None => i += 1,
        }
    }
    out
}
