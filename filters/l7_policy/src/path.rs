//! Paths that could make a rule match something other than what the app
//! serves: encoded slashes, backslashes, NUL and dots, dot-segments, empty
//! segments. Envoy's connection manager can normalise some of these
//! (`normalize_path`, `merge_slashes`); whatever reaches this filter still
//! carrying them is refused, so that no rule is ever evaluated against an
//! ambiguous path.

/// Why a path is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// Not starting with `/` (and not `*`), or not ASCII.
    Form,
    /// `%2F`, `%5C`, `%00` or `%2E`, any case.
    EncodedSeparator,
    /// `/./` or `/../`, or a path ending in `/.` or `/..`.
    DotSegment,
    /// `//`.
    EmptySegment,
    /// `\`.
    Backslash,
    /// `#` (a fragment is never sent to a server).
    Fragment,
}

impl Invalid {
    pub fn as_str(self) -> &'static str {
        match self {
            Invalid::Form => "not an absolute ASCII path",
            Invalid::EncodedSeparator => "encoded slash, backslash, NUL or dot",
            Invalid::DotSegment => "dot-segment",
            Invalid::EmptySegment => "empty segment (//)",
            Invalid::Backslash => "backslash",
            Invalid::Fragment => "fragment (#)",
        }
    }
}

/// Checks the path part of `:path` (the query after `?` is not a path and may
/// carry anything).
pub fn check(raw: &[u8]) -> Result<(), Invalid> {
    if raw == b"*" {
        return Ok(());
    }
    let path = raw.split(|&b| b == b'?').next().unwrap_or_default();
    if path.first() != Some(&b'/') || !raw.iter().all(|b| (0x21..0x7f).contains(b)) {
        return Err(Invalid::Form);
    }
    if raw.contains(&b'#') {
        return Err(Invalid::Fragment);
    }
    if path.contains(&b'\\') {
        return Err(Invalid::Backslash);
    }
    for window in path.windows(3) {
        if window[0] == b'%' {
            let code = [
                window[1].to_ascii_uppercase(),
                window[2].to_ascii_uppercase(),
            ];
            if matches!(&code, b"2F" | b"5C" | b"00" | b"2E") {
                return Err(Invalid::EncodedSeparator);
            }
        }
    }
    let mut segments = path[1..].split(|&b| b == b'/').peekable();
    while let Some(segment) = segments.next() {
        match segment {
            b"." | b".." => return Err(Invalid::DotSegment),
            // Only a trailing slash may leave an empty segment.
            b"" if segments.peek().is_some() => return Err(Invalid::EmptySegment),
            _ => {}
        }
    }
    Ok(())
}

/// `:path` without its query, for rules configured to ignore it.
pub fn without_query(raw: &[u8]) -> &[u8] {
    raw.split(|&b| b == b'?').next().unwrap_or_default()
}
