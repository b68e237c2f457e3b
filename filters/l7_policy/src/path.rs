//! Paths that could make a rule match something other than what the app
//! serves. A rule is a regular expression on the raw `:path`; the app behind
//! it decodes, splits and normalises that path its own way (Tomcat, Spring,
//! Jetty and Shiro drop `;parameters` before resolving dot-segments, IIS
//! decodes `%u`, some servers decode twice, some decode and then parse the
//! result as a URL again, ending the path at a decoded `?` or `#`, lenient
//! UTF-8 decoders accept overlong forms). Any path whose meaning depends on
//! such a choice is refused, so that no rule is ever evaluated against an
//! ambiguous path.
//! Envoy's connection manager can normalise some of these first
//! (`normalize_path`, `merge_slashes`); whatever reaches this filter still
//! carrying them is refused.
//!
//! The check is one pass over the percent-escapes (decoding them on the fly,
//! without allocating) and one over the segments: linear in the path length.

use filter_common::encoding::percent::{escaped, hex};

/// Why a path is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// Not starting with `/` (and not `*`), or a byte that is not visible
    /// ASCII (raw spaces, controls, non-ASCII).
    Form,
    /// `%2F`, `%5C`, `%00` or `%2E`, any case.
    EncodedSeparator,
    /// A `.` or `..` segment: `/./`, `/../`, a path ending in `/.` or `/..`,
    /// also with encoded blanks around the dots (`..%20`, `%09..`), which
    /// `trim()`-style code and Windows strip.
    DotSegment,
    /// A segment that is `.` or `..` once its `;parameters` are removed:
    /// `..;`, `.;x=1`, `..%3B`, `..%3bx` (an encoded `;` counts as `;`).
    DotSegmentParameters,
    /// A segment that is `.` or `..` up to an encoded `?` or `#` (`..%3F`,
    /// `.%23x`, `..%3f%3f`, `..%23;x`): an app that decodes the path and then
    /// parses it as a URL again (`urlsplit(unquote(p))`,
    /// `new URI(URLDecoder.decode(p))`) ends the path there, on a dot-segment.
    DotSegmentEncodedDelimiter,
    /// `//`, or a segment with nothing but `;parameters` in the middle of
    /// the path (`/a/;x/b`), which becomes `//` once they are removed.
    EmptySegment,
    /// `\`.
    Backslash,
    /// `#` (a fragment is never sent to a server).
    Fragment,
    /// `%25` followed by two hex digits or `u` once decoded (`%252e`,
    /// `%25%32%65`, `%25u002e`): a server that decodes twice sees another
    /// character.
    DoubleEncoding,
    /// A `%` that does not start a `%XX` escape (`%zz`, `%%32%65`, a `%` at
    /// the end): invalid URI syntax that decoders handle differently.
    MalformedEscape,
    /// Percent-encoded bytes that are not UTF-8: overlong forms (`%c0%ae`,
    /// `%e0%80%ae`, `%f0%80%80%ae`), surrogates (`%ed%a0%80`), code points
    /// above U+10FFFF, stray continuation bytes, truncated sequences.
    InvalidUtf8,
    /// `%u` or `%U` (IIS's `%uXXXX` escapes).
    PercentU,
    /// A percent-encoded control character other than NUL: `%01`-`%1F`,
    /// `%7F`, and the C1 controls U+0080-U+009F (`%C2%80`-`%C2%9F`).
    EncodedControl,
}

impl Invalid {
    pub fn as_str(self) -> &'static str {
        match self {
            Invalid::Form => "not an absolute ASCII path",
            Invalid::EncodedSeparator => "encoded slash, backslash, NUL or dot",
            Invalid::DotSegment => "dot-segment",
            Invalid::DotSegmentParameters => "dot-segment with ;parameters",
            Invalid::DotSegmentEncodedDelimiter => "dot-segment before an encoded ? or #",
            Invalid::EmptySegment => "empty segment (//)",
            Invalid::Backslash => "backslash",
            Invalid::Fragment => "fragment (#)",
            Invalid::DoubleEncoding => "double percent-encoding",
            Invalid::MalformedEscape => "malformed percent-escape",
            Invalid::InvalidUtf8 => "percent-encoded bytes that are not UTF-8",
            Invalid::PercentU => "%u escape",
            Invalid::EncodedControl => "encoded control character",
        }
    }
}

/// Classes of paths an application may need, each refused unless allowed
/// (`allow_in_paths` in the configuration). Everything else the check
/// refuses cannot be allowed one by one (only `reject_invalid_paths: false`
/// turns the whole check off).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Allow {
    /// [`Invalid::DotSegmentParameters`].
    pub path_parameters_dot_segments: bool,
    /// [`Invalid::DotSegmentEncodedDelimiter`].
    pub encoded_delimiter_dot_segments: bool,
    /// [`Invalid::DoubleEncoding`].
    pub double_encoding: bool,
    /// [`Invalid::MalformedEscape`].
    pub malformed_escapes: bool,
    /// [`Invalid::InvalidUtf8`]; the path is then not read as UTF-8 at all,
    /// so C1 controls (`%C2%85`) are not recognised either.
    pub invalid_utf8: bool,
    /// [`Invalid::PercentU`]; `%u` is then passed on as it is.
    pub percent_u: bool,
    /// [`Invalid::EncodedControl`] (never `%00`).
    pub encoded_control_characters: bool,
}

/// Checks the path part of `:path` (the query after `?` is not a path and may
/// carry anything), refusing everything [`Invalid`] lists except the classes
/// `allow` names.
///
/// With `Allow::default()`, a path this accepts, percent-decoded once, has
/// no segment that is `.` or `..` up to its first `;`, `?` or `#` (blanks
/// around the dots trimmed), nor empty (except the last) once its
/// `;parameters` are removed; so parsed again as a URL, it ends on no
/// dot-segment. It has no `\`, no control character, is valid UTF-8, and
/// contains no `%XX` or `%u` escape: decoding it again changes nothing
/// (`tests/path.rs` checks this property on arbitrary input, and
/// `tests/path_differential.rs` resolves the accepted paths as Python,
/// Node, Java and Go apps do).
pub fn check_with(raw: &[u8], allow: Allow) -> Result<(), Invalid> {
    if raw == b"*" {
        return Ok(());
    }
    let path = without_query(raw);
    if path.first() != Some(&b'/') || !raw.iter().all(|b| (0x21..0x7f).contains(b)) {
        return Err(Invalid::Form);
    }
    if raw.contains(&b'#') {
        return Err(Invalid::Fragment);
    }
    if path.contains(&b'\\') {
        return Err(Invalid::Backslash);
    }
    escapes(path, allow)?;
    segments(path, allow)
}

/// `:path` without its query, for rules configured to ignore it.
pub fn without_query(raw: &[u8]) -> &[u8] {
    raw.split(|&b| b == b'?').next().unwrap_or_default()
}

/// A UTF-8 decoder over the decoded bytes (Unicode's table of well-formed
/// byte sequences): `need` continuation bytes are still expected, the next
/// one in `lo..=hi`.
#[derive(Default)]
struct Utf8 {
    need: u8,
    lo: u8,
    hi: u8,
    lead: u8,
}

impl Utf8 {
    fn push(&mut self, b: u8) -> Result<(), Invalid> {
        if self.need > 0 {
            if !(self.lo..=self.hi).contains(&b) {
                return Err(Invalid::InvalidUtf8);
            }
            self.need -= 1;
            (self.lo, self.hi) = (0x80, 0xbf);
            if self.need == 0 && self.lead == 0xc2 && b <= 0x9f {
                return Err(Invalid::EncodedControl);
            }
            return Ok(());
        }
        let (need, lo, hi) = match b {
            0x00..=0x7f => return Ok(()),
            0xc2..=0xdf => (1, 0x80, 0xbf),
            0xe0 => (2, 0xa0, 0xbf),
            0xe1..=0xec | 0xee..=0xef => (2, 0x80, 0xbf),
            0xed => (2, 0x80, 0x9f),
            0xf0 => (3, 0x90, 0xbf),
            0xf1..=0xf3 => (3, 0x80, 0xbf),
            0xf4 => (3, 0x80, 0x8f),
            _ => return Err(Invalid::InvalidUtf8),
        };
        (self.need, self.lo, self.hi, self.lead) = (need, lo, hi, b);
        Ok(())
    }

    /// An unescaped (ASCII) byte or the end of the path: no sequence may be
    /// left open.
    fn end(&self) -> Result<(), Invalid> {
        if self.need > 0 {
            return Err(Invalid::InvalidUtf8);
        }
        Ok(())
    }
}

/// The escape scan: every percent-escape, and the decoded text as a second
/// decoder would read it.
fn escapes(path: &[u8], allow: Allow) -> Result<(), Invalid> {
    let mut utf8 = Utf8::default();
    // After a decoded `%`: 1, after a decoded `%` and one hex digit: 2.
    let mut percent = 0u8;
    let mut i = 0;
    while let Some(&b) = path.get(i) {
        let rest = path.get(i..).unwrap_or_default();
        let (decoded, width) = if b != b'%' {
            if !allow.invalid_utf8 {
                utf8.end()?;
            }
            (b, 1)
        } else if matches!(rest.get(1), Some(b'u' | b'U')) {
            if !allow.percent_u {
                return Err(Invalid::PercentU);
            }
            // Passed on as it is: read as the two characters `%u`.
            if !allow.invalid_utf8 {
                utf8.end()?;
            }
            percent = 0;
            i += 2;
            continue;
        } else if let Some(byte) = escaped(rest) {
            match byte {
                b'/' | b'\\' | b'.' | 0 => return Err(Invalid::EncodedSeparator),
                0x01..=0x1f | 0x7f if !allow.encoded_control_characters => {
                    return Err(Invalid::EncodedControl)
                }
                _ => {}
            }
            if !allow.invalid_utf8 {
                match utf8.push(byte) {
                    Err(Invalid::EncodedControl) if allow.encoded_control_characters => {}
                    other => other?,
                }
            }
            (byte, 3)
        } else {
            if !allow.malformed_escapes {
                return Err(Invalid::MalformedEscape);
            }
            if !allow.invalid_utf8 {
                utf8.end()?;
            }
            (b'%', 1)
        };
        // What a second decoding would see.
        percent = match (percent, decoded) {
            (1, b'u' | b'U') if !allow.double_encoding => return Err(Invalid::DoubleEncoding),
            (2, d) if hex(d).is_some() && !allow.double_encoding => {
                return Err(Invalid::DoubleEncoding)
            }
            (1, d) if hex(d).is_some() => 2,
            (_, b'%') => 1,
            _ => 0,
        };
        i += width;
    }
    if !allow.invalid_utf8 {
        utf8.end()?;
    }
    Ok(())
}

/// A segment's name, up to its first `;` or encoded `;`, `?` or `#`, and
/// that delimiter decoded (0: the whole segment).
fn name_of(segment: &[u8]) -> (&[u8], u8) {
    let mut i = 0;
    while let Some(&b) = segment.get(i) {
        let d = match b {
            b';' => b';',
            _ => escaped(segment.get(i..).unwrap_or_default()).unwrap_or(0),
        };
        if matches!(d, b';' | b'?' | b'#') {
            return (segment.get(..i).unwrap_or_default(), d);
        }
        i += 1;
    }
    (segment, 0)
}

/// The length of the blank at the start of `bytes`: `+` (1 byte), an encoded
/// ASCII blank or control (`%20`, `%09`: 3 bytes), or a Unicode space that `trim()`-style
/// code strips (.NET `Trim`, Python `strip`, Go `TrimSpace`): U+00A0 and
/// U+0085 (6 bytes), U+1680, U+2000-U+200B, U+2028, U+2029, U+202F, U+205F,
/// U+3000 and the byte order mark U+FEFF (9 bytes).
fn blank_at_start(bytes: &[u8]) -> Option<usize> {
    // `+` is a space to form decoders some apps run on paths (Java's
    // URLDecoder, Python's unquote_plus).
    if bytes.first() == Some(&b'+') {
        return Some(1);
    }
    let byte = |i: usize| escaped(bytes.get(i * 3..).unwrap_or_default());
    match (byte(0)?, byte(1), byte(2)) {
        (0x00..=0x20 | 0x7f, _, _) => Some(3),
        (0xc2, Some(0x85 | 0xa0), _) => Some(6),
        (0xe1, Some(0x9a), Some(0x80))
        | (0xe2, Some(0x80), Some(0x80..=0x8b | 0xa8 | 0xa9 | 0xaf))
        | (0xe2, Some(0x81), Some(0x9f))
        | (0xe3, Some(0x80), Some(0x80))
        | (0xef, Some(0xbb), Some(0xbf)) => Some(9),
        _ => None,
    }
}

/// `name` without encoded blanks and controls around it.
fn trim_blanks(mut name: &[u8]) -> &[u8] {
    while let Some(width) = blank_at_start(name) {
        name = name.get(width..).unwrap_or_default();
    }
    'end: loop {
        for width in [1, 3, 6, 9] {
            let Some(start) = name.len().checked_sub(width) else {
                continue;
            };
            if blank_at_start(name.get(start..).unwrap_or_default()) == Some(width) {
                name = name.get(..start).unwrap_or_default();
                continue 'end;
            }
        }
        return name;
    }
}

fn is_dots(name: &[u8]) -> bool {
    matches!(name, b"." | b"..")
}

/// The segment scan.
fn segments(path: &[u8], allow: Allow) -> Result<(), Invalid> {
    let mut segments = path
        .get(1..)
        .unwrap_or_default()
        .split(|&b| b == b'/')
        .peekable();
    while let Some(segment) = segments.next() {
        // Only the last segment may be empty (a trailing slash).
        let last = segments.peek().is_none();
        if is_dots(segment) {
            return Err(Invalid::DotSegment);
        }
        let (name, end) = name_of(segment);
        let core = trim_blanks(name);
        if is_dots(core) && core.len() != name.len() {
            return Err(Invalid::DotSegment);
        }
        // `name` differs from `segment` (no dot-segment itself): `end` is the
        // `;`, `?` or `#` that ends it.
        if is_dots(name) {
            if end == b';' && !allow.path_parameters_dot_segments {
                return Err(Invalid::DotSegmentParameters);
            }
            if end != b';' && !allow.encoded_delimiter_dot_segments {
                return Err(Invalid::DotSegmentEncodedDelimiter);
            }
        }
        // Parameters alone; after an encoded `?` or `#` the rest is the
        // query or the fragment to a parser, not an empty segment.
        if name.is_empty() && !last && matches!(end, b';' | 0) {
            return Err(Invalid::EmptySegment);
        }
    }
    Ok(())
}
