//! The bypass corpus at the path level: what is refused and why.

use l7_policy::path::{check, without_query, Invalid};
use proptest::prelude::*;

#[test]
fn refused_paths() {
    let cases: &[(&[u8], Invalid)] = &[
        (b"/v1/request-landing%2F..", Invalid::EncodedSeparator),
        (b"/v1%2frequest-landing", Invalid::EncodedSeparator),
        (b"/v1%5Crequest-landing", Invalid::EncodedSeparator),
        (b"/v1/request-landing%00", Invalid::EncodedSeparator),
        (b"/v1/%2e%2e/exhaust-port", Invalid::EncodedSeparator),
        (b"/v1/%2E/exhaust-port", Invalid::EncodedSeparator),
        (b"/v1/../exhaust-port", Invalid::DotSegment),
        (b"/v1/./request-landing", Invalid::DotSegment),
        (b"/v1/request-landing/..", Invalid::DotSegment),
        (b"/..", Invalid::DotSegment),
        (b"/v1//request-landing", Invalid::EmptySegment),
        (b"//v1/request-landing", Invalid::EmptySegment),
        (b"/v1\\request-landing", Invalid::Backslash),
        (b"/v1/request-landing#frag", Invalid::Fragment),
        (b"v1/request-landing", Invalid::Form),
        (b"", Invalid::Form),
        (b"/v1/request landing", Invalid::Form),
        (b"/v1/\x00", Invalid::Form),
        (b"/v1/caf\xc3\xa9", Invalid::Form),
        (b"http://deathstar/v1/request-landing", Invalid::Form),
    ];
    for (path, why) in cases {
        assert_eq!(check(path), Err(*why), "{}", String::from_utf8_lossy(path));
    }
}

#[test]
fn accepted_paths() {
    for path in [
        &b"/"[..],
        b"/v1/request-landing",
        b"/v1/request-landing/",
        b"/v1/request-landing?x=../..//%2F%00",
        b"/v1/request-landing;jsessionid=1",
        b"/v1/...",
        b"/v1/.hidden/a..b",
        b"/v1/%41%20",
        b"*",
    ] {
        assert_eq!(check(path), Ok(()), "{}", String::from_utf8_lossy(path));
    }
    assert_eq!(without_query(b"/a?b=c"), b"/a");
    assert_eq!(without_query(b"/a"), b"/a");
}

proptest! {
    /// Whatever is accepted has no dot-segment, no `//`, no encoded separator
    /// anywhere in its path part.
    #[test]
    fn accepted_means_unambiguous(path in "/[a-z./%2FfEe5Cc0\\\\#?]{0,24}") {
        if check(path.as_bytes()).is_ok() {
            let p = path.split('?').next().unwrap();
            prop_assert!(!p.contains("//") && !p.contains('\\') && !p.contains('#'));
            prop_assert!(!p.split('/').any(|s| s == "." || s == ".."));
            let lower = p.to_ascii_lowercase();
            prop_assert!(!["%2f", "%5c", "%00", "%2e"].iter().any(|e| lower.contains(e)));
        }
    }
}
