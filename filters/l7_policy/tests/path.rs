//! The bypass corpus at the path level: what is refused and why, what each
//! `allow_in_paths` option lets through, and a property of every accepted path.

// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use l7_policy::path::{check_with, without_query, Allow, Invalid};

/// The check as the filter runs it by default: nothing relaxed.
fn check(raw: &[u8]) -> Result<(), Invalid> {
    check_with(raw, Allow::default())
}
use proptest::prelude::*;

fn show(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

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
        assert_eq!(check(path), Err(*why), "{}", show(path));
    }
}

/// Paths that reach `/admin` on some backend although a rule on
/// `/public/.*` matches them, and the variants an attacker tries next.
const HOSTILE: &[(&[u8], Invalid)] = &[
    // `;parameters` hiding a dot-segment (Tomcat, Spring, Jetty, Shiro).
    (b"/public/..;/admin", Invalid::DotSegmentParameters),
    (b"/public/.;/admin", Invalid::DotSegmentParameters),
    (b"/public/..;x=1/admin", Invalid::DotSegmentParameters),
    (b"/public/a/..;/..;/admin", Invalid::DotSegmentParameters),
    (b"/public/..;", Invalid::DotSegmentParameters),
    (b"/public/.;", Invalid::DotSegmentParameters),
    (b"/..;/admin", Invalid::DotSegmentParameters),
    (b"/public/..;/", Invalid::DotSegmentParameters),
    (b"/public/..;a;b/admin", Invalid::DotSegmentParameters),
    // The same with `;` encoded, any case; `..%3Bx` is `..;x`.
    (b"/public/..%3B/admin", Invalid::DotSegmentParameters),
    (b"/public/..%3b/admin", Invalid::DotSegmentParameters),
    (b"/public/..%3Bx/admin", Invalid::DotSegmentParameters),
    (b"/public/.%3b/admin", Invalid::DotSegmentParameters),
    // Dots up to an encoded `?` or `#`: a parser reading the decoded path
    // again ends it on a dot-segment (`urlsplit(unquote(p))` is `/`).
    (b"/public/..%3f/admin", Invalid::DotSegmentEncodedDelimiter),
    (b"/public/..%23/admin", Invalid::DotSegmentEncodedDelimiter),
    (b"/public/..%3F", Invalid::DotSegmentEncodedDelimiter),
    (
        b"/public/..%23%20/admin",
        Invalid::DotSegmentEncodedDelimiter,
    ),
    (
        b"/public/..%23%3b/admin",
        Invalid::DotSegmentEncodedDelimiter,
    ),
    (b"/public/.%3f/admin", Invalid::DotSegmentEncodedDelimiter),
    (b"/public/.%23", Invalid::DotSegmentEncodedDelimiter),
    (b"/public/..%3F%3F", Invalid::DotSegmentEncodedDelimiter),
    (b"/public/..%3fx/admin", Invalid::DotSegmentEncodedDelimiter),
    (b"/public/.%3F./admin", Invalid::DotSegmentEncodedDelimiter),
    (
        b"/public/..%3F;x/admin",
        Invalid::DotSegmentEncodedDelimiter,
    ),
    (
        b"/public/a/..%3f/..%3f/admin",
        Invalid::DotSegmentEncodedDelimiter,
    ),
    (b"/public/..%3F?x=1", Invalid::DotSegmentEncodedDelimiter),
    // The first delimiter names the class: `;` before `?` is a parameter.
    (b"/public/..;%3F/admin", Invalid::DotSegmentParameters),
    (b"/public/..%3B%23/admin", Invalid::DotSegmentParameters),
    // Blanks between the dots and the delimiter: trimmed, a dot-segment.
    (b"/public/..%20%3F/admin", Invalid::DotSegment),
    (b"/public/%20..%23", Invalid::DotSegment),
    (b"/public/..%C2%A0%23/admin", Invalid::DotSegment),
    // Only parameters in the middle: `//` once they are removed.
    (b"/public/;/admin", Invalid::EmptySegment),
    (b"/public/;x=1/admin", Invalid::EmptySegment),
    (b"/public/%3B/admin", Invalid::EmptySegment),
    (b"/;/public/x", Invalid::EmptySegment),
    // Double encoding, also split over escapes and of `%u`.
    (b"/public/%252e%252e/admin", Invalid::DoubleEncoding),
    (b"/public/%252E%252E/admin", Invalid::DoubleEncoding),
    (b"/public/%252f/admin", Invalid::DoubleEncoding),
    (b"/public/..%253B/admin", Invalid::DoubleEncoding),
    (b"/public/%25%32%65%25%32%65/admin", Invalid::DoubleEncoding),
    (b"/public/%25%32e/admin", Invalid::DoubleEncoding),
    (b"/public/%252%65/admin", Invalid::DoubleEncoding),
    (b"/public/%25u002e/admin", Invalid::DoubleEncoding),
    (b"/public/%25U002e/admin", Invalid::DoubleEncoding),
    (b"/public/%2525/admin", Invalid::DoubleEncoding),
    // A `%` that is not an escape (a decoder may keep it, then decode again).
    (b"/public/%%32%65%%32%65/admin", Invalid::MalformedEscape),
    (b"/public/%zz", Invalid::MalformedEscape),
    (b"/public/100%", Invalid::MalformedEscape),
    (b"/public/%2", Invalid::MalformedEscape),
    // Overlong UTF-8 and other bytes that are not UTF-8.
    (b"/public/%c0%ae%c0%ae/admin", Invalid::InvalidUtf8),
    (b"/public/%C0%AE%C0%AE/admin", Invalid::InvalidUtf8),
    (b"/public/%e0%80%ae%e0%80%ae/admin", Invalid::InvalidUtf8),
    (b"/public/%f0%80%80%ae/admin", Invalid::InvalidUtf8),
    (b"/public/%c0%af/admin", Invalid::InvalidUtf8),
    (b"/public/..%c0%af../admin", Invalid::InvalidUtf8),
    (b"/public/%e0%80%af/admin", Invalid::InvalidUtf8),
    (b"/public/%c1%9c/admin", Invalid::InvalidUtf8),
    (b"/public/%c1%81", Invalid::InvalidUtf8),
    (b"/public/%C0%2E", Invalid::InvalidUtf8),
    (b"/public/%c0%80", Invalid::InvalidUtf8),
    (b"/public/%ed%a0%80", Invalid::InvalidUtf8),
    (b"/public/%ed%bf%bf", Invalid::InvalidUtf8),
    (b"/public/%f4%90%80%80", Invalid::InvalidUtf8),
    (b"/public/%f5%80%80%80", Invalid::InvalidUtf8),
    (b"/public/%ff", Invalid::InvalidUtf8),
    (b"/public/%80", Invalid::InvalidUtf8),
    (b"/public/%E9", Invalid::InvalidUtf8),
    (b"/public/%E2%82", Invalid::InvalidUtf8),
    (b"/public/%E2%82/x", Invalid::InvalidUtf8),
    (b"/public/%E2%82x", Invalid::InvalidUtf8),
    (b"/public/%E2%82%41", Invalid::InvalidUtf8),
    (b"/public/%C3?x", Invalid::InvalidUtf8),
    // IIS's %u, any case.
    (b"/public/%u002e%u002e/admin", Invalid::PercentU),
    (b"/public/%U002E%U002E/admin", Invalid::PercentU),
    (b"/public/%u2215admin", Invalid::PercentU),
    (b"/public/%u", Invalid::PercentU),
    // Encoded control characters (C0 but NUL, DEL, C1).
    (b"/public/..%09/admin", Invalid::EncodedControl),
    (b"/public/..%0a/admin", Invalid::EncodedControl),
    (b"/public/..%0D%0A/admin", Invalid::EncodedControl),
    (b"/public/%01", Invalid::EncodedControl),
    (b"/public/%1f", Invalid::EncodedControl),
    (b"/public/%7F", Invalid::EncodedControl),
    (b"/public/%C2%85", Invalid::EncodedControl),
    (b"/public/%c2%80", Invalid::EncodedControl),
    (b"/public/%c2%9f", Invalid::EncodedControl),
    // NUL stays an encoded separator (never allowed).
    (b"/public/..%00/admin", Invalid::EncodedSeparator),
    // Dots with encoded blanks around them, which trim() and Windows strip.
    (b"/public/..%20/admin", Invalid::DotSegment),
    (b"/public/%20../admin", Invalid::DotSegment),
    (b"/public/.%20/admin", Invalid::DotSegment),
    (b"/public/..%20%20", Invalid::DotSegment),
    (b"/public/..%20;x/admin", Invalid::DotSegment),
    // Unicode spaces that `trim()` in .NET, Python and Go strips.
    (b"/public/..%C2%A0/admin", Invalid::DotSegment),
    (b"/public/%c2%a0../admin", Invalid::DotSegment),
    (b"/public/..%E2%80%80/admin", Invalid::DotSegment),
    (b"/public/..%E2%80%8A%20/admin", Invalid::DotSegment),
    (b"/public/..%E3%80%80/admin", Invalid::DotSegment),
    (b"/public/%EF%BB%BF../admin", Invalid::DotSegment),
    // `+`, a space to form decoders (Java's URLDecoder, unquote_plus).
    (b"/public/..+/admin", Invalid::DotSegment),
    (b"/public/+../admin", Invalid::DotSegment),
    (b"/public/.+", Invalid::DotSegment),
    (b"/public/..++%20/admin", Invalid::DotSegment),
    (b"/public/..+;x/admin", Invalid::DotSegment),
    (b"/public/..%E2%80%AF;x/admin", Invalid::DotSegment),
    (b"/public/.%E1%9A%80/admin", Invalid::DotSegment),
    // Encoded dots in any mix, backslash in any form.
    (b"/public/.%2e/admin", Invalid::EncodedSeparator),
    (b"/public/%2e./admin", Invalid::EncodedSeparator),
    (b"/public/%2E%2e;/admin", Invalid::EncodedSeparator),
    (b"/public/..%5c/admin", Invalid::EncodedSeparator),
    (b"/public/..%255c/admin", Invalid::DoubleEncoding),
    (b"/public/..\\admin", Invalid::Backslash),
    (b"/public/%u005c/admin", Invalid::PercentU),
];

#[test]
fn hostile_paths() {
    for (path, why) in HOSTILE {
        assert_eq!(check(path), Err(*why), "{}", show(path));
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
        b"/public/index.html;jsessionid=1",
        b"/public/a;b=c/d",
        b"/public/%E2%82%AC",
        b"/public/caf%C3%A9",
        b"/public/caf%c3%a9",
        b"/public/%F0%9F%98%80",
        b"/public/%ef%bf%bd",
        b"/public/%F4%8F%BF%BF",
        b"/public/%C2%A0",
        b"/public/%ED%9F%BF",
        b"/public/;jsessionid=1",
        b"/public/%3Bjsessionid=1",
        b"/public/a%3Bb",
        b"/public/...;x",
        b"/public/.a;x",
        b"/public/a.;x",
        b"/public/%20",
        b"/public/a%20b",
        b"/public/%25",
        b"/public/%25zz",
        b"/public/%25g1",
        b"/public/%252",
        b"/public/%25a",
        b"/public/a%2Bb",
        b"/public/c++/x",
        b"/public/+",
        b"/public/...+/x",
        b"/public/a+../b",
        b"/public/x?%252e%252e/..;/%c0%ae%u002e%09%zz",
        // Valid UTF-8 that only Unicode compatibility mappings turn into
        // dots: passed (see the README).
        b"/public/%EF%BC%8E%EF%BC%8E/admin",
        // Unicode blanks not next to dots.
        b"/public/a%C2%A0../b",
        b"/public/%E3%80%80",
        // An encoded `?` or `#` before the dots, or after a name: the
        // segment up to it is empty or a name, and a parser reading the
        // decoded path again takes the rest as the query or the fragment.
        b"/public/%3F../admin",
        b"/public/%23..",
        b"/public/%3F/admin",
        b"/public/a%3F/admin",
        b"/public/...%3F",
        b"/public/a..%23",
        b"/public/..a%3F",
    ] {
        assert_eq!(check(path), Ok(()), "{}", show(path));
    }
    assert_eq!(without_query(b"/a?b=c"), b"/a");
    assert_eq!(without_query(b"/a"), b"/a");
}

/// Each option, alone, and which of the hostile paths it lets through:
/// exactly those of its own class.
#[test]
fn each_option_lets_through_exactly_its_class() {
    let options: [(Allow, Invalid); 7] = [
        (
            Allow {
                path_parameters_dot_segments: true,
                ..Allow::default()
            },
            Invalid::DotSegmentParameters,
        ),
        (
            Allow {
                encoded_delimiter_dot_segments: true,
                ..Allow::default()
            },
            Invalid::DotSegmentEncodedDelimiter,
        ),
        (
            Allow {
                double_encoding: true,
                ..Allow::default()
            },
            Invalid::DoubleEncoding,
        ),
        (
            Allow {
                malformed_escapes: true,
                ..Allow::default()
            },
            Invalid::MalformedEscape,
        ),
        (
            Allow {
                invalid_utf8: true,
                ..Allow::default()
            },
            Invalid::InvalidUtf8,
        ),
        (
            Allow {
                percent_u: true,
                ..Allow::default()
            },
            Invalid::PercentU,
        ),
        (
            Allow {
                encoded_control_characters: true,
                ..Allow::default()
            },
            Invalid::EncodedControl,
        ),
    ];
    // Where allowing a class changes the verdict other than to `Ok` for its
    // own paths: (the class allowed, path, verdict then).
    let exceptions: &[(Invalid, &[u8], Result<(), Invalid>)] = &[
        // A control after dots is still a padded dot-segment.
        (
            Invalid::EncodedControl,
            b"/public/..%09/admin",
            Err(Invalid::DotSegment),
        ),
        (
            Invalid::EncodedControl,
            b"/public/..%0a/admin",
            Err(Invalid::DotSegment),
        ),
        (
            Invalid::EncodedControl,
            b"/public/..%0D%0A/admin",
            Err(Invalid::DotSegment),
        ),
        // A kept `%` followed by hex digits is double encoding.
        (
            Invalid::MalformedEscape,
            b"/public/%%32%65%%32%65/admin",
            Err(Invalid::DoubleEncoding),
        ),
        // `%C0` allowed, `%2E` is not.
        (
            Invalid::InvalidUtf8,
            b"/public/%C0%2E",
            Err(Invalid::EncodedSeparator),
        ),
        // Bytes that need not be UTF-8 are not read as C1 controls either.
        (Invalid::InvalidUtf8, b"/public/%C2%85", Ok(())),
        (Invalid::InvalidUtf8, b"/public/%c2%80", Ok(())),
        (Invalid::InvalidUtf8, b"/public/%c2%9f", Ok(())),
    ];
    for (allow, class) in options {
        for (path, why) in HOSTILE {
            let want = match exceptions.iter().find(|(c, p, _)| *c == class && p == path) {
                Some((_, _, want)) => *want,
                None if *why == class => Ok(()),
                None => Err(*why),
            };
            assert_eq!(
                check_with(path, allow),
                want,
                "{class:?} allowed: {}",
                show(path)
            );
        }
    }
    // What each option lets through, pinned.
    let relaxed: &[(Allow, &[u8], Result<(), Invalid>)] = &[
        (options[0].0, b"/public/..;/admin", Ok(())),
        (options[0].0, b"/public/..%3Bx/admin", Ok(())),
        (options[0].0, b"/public/;/admin", Err(Invalid::EmptySegment)),
        (
            options[0].0,
            b"/public/..%3F/admin",
            Err(Invalid::DotSegmentEncodedDelimiter),
        ),
        (options[1].0, b"/public/..%3F/admin", Ok(())),
        (options[1].0, b"/public/..%23%3b/admin", Ok(())),
        (
            options[1].0,
            b"/public/..;/admin",
            Err(Invalid::DotSegmentParameters),
        ),
        (
            options[1].0,
            b"/public/..%20%3F/admin",
            Err(Invalid::DotSegment),
        ),
        (options[2].0, b"/public/%252e%252e/admin", Ok(())),
        (options[2].0, b"/public/%25u002e/admin", Ok(())),
        (options[2].0, b"/public/..%253B/admin", Ok(())),
        (options[3].0, b"/public/100%", Ok(())),
        (options[3].0, b"/public/%zz", Ok(())),
        (
            options[3].0,
            b"/public/%%32%65",
            Err(Invalid::DoubleEncoding),
        ),
        (options[4].0, b"/public/caf%E9", Ok(())),
        (options[4].0, b"/public/%c0%ae%c0%ae/admin", Ok(())),
        (options[4].0, b"/public/%C2%85", Ok(())),
        (
            options[4].0,
            b"/public/%C0%2E",
            Err(Invalid::EncodedSeparator),
        ),
        (options[5].0, b"/public/%u002e%u002e/admin", Ok(())),
        (options[5].0, b"/public/%u", Ok(())),
        (options[6].0, b"/public/a%09b", Ok(())),
        (options[6].0, b"/public/%C2%85", Ok(())),
        (
            options[6].0,
            b"/public/..%09/admin",
            Err(Invalid::DotSegment),
        ),
        (
            options[6].0,
            b"/public/..%00/admin",
            Err(Invalid::EncodedSeparator),
        ),
    ];
    for (allow, path, want) in relaxed {
        assert_eq!(check_with(path, *allow), *want, "{allow:?} {}", show(path));
    }
    // Everything allowed: still no encoded separator, dot-segment or `//`.
    let all = Allow {
        path_parameters_dot_segments: true,
        encoded_delimiter_dot_segments: true,
        double_encoding: true,
        malformed_escapes: true,
        invalid_utf8: true,
        percent_u: true,
        encoded_control_characters: true,
    };
    for (path, why) in [
        (&b"/public/%2e%2e/admin"[..], Invalid::EncodedSeparator),
        (b"/public/../admin", Invalid::DotSegment),
        (b"/public/..%20/admin", Invalid::DotSegment),
        (b"/public/..%20%23/admin", Invalid::DotSegment),
        (b"/public//admin", Invalid::EmptySegment),
        (b"/public/;/admin", Invalid::EmptySegment),
    ] {
        assert_eq!(check_with(path, all), Err(why), "{}", show(path));
    }
}

/// One percent-decoding pass as a server does it: `%XX` is a byte, anything
/// else (including a `%` that does not start an escape) stays as it is.
fn decode(path: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::new();
    let mut i = 0;
    while i < path.len() {
        if path[i] == b'%' && i + 2 < path.len() {
            if let (Some(h), Some(l)) = (hex(path[i + 1]), hex(path[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(path[i]);
        i += 1;
    }
    out
}

/// The property `check` guarantees, on the path part.
fn unambiguous(raw: &[u8]) -> Result<(), String> {
    if raw == b"*" {
        return Ok(());
    }
    let once = decode(without_query(raw));
    let text = std::str::from_utf8(&once).map_err(|e| format!("not UTF-8 once decoded: {e}"))?;
    if text.chars().any(char::is_control) {
        return Err("a control character once decoded".into());
    }
    if text.contains('\\') {
        return Err("a backslash once decoded".into());
    }
    if decode(&once) != once {
        return Err("decoding twice changes it".into());
    }
    if text.contains("%u") || text.contains("%U") {
        return Err("a %u escape once decoded".into());
    }
    let segments: Vec<&str> = text.split('/').skip(1).collect();
    for (i, segment) in segments.iter().enumerate() {
        let name = segment.split(';').next().unwrap_or_default();
        let last = i + 1 == segments.len();
        if name.is_empty() && !last {
            return Err(format!("empty segment {segment:?} once decoded"));
        }
        // Up to the first `;`, `?` or `#`: where a parser reading the
        // decoded path again ends the segment.
        let name = segment.split([';', '?', '#']).next().unwrap_or_default();
        if name == "." || name == ".." || name.trim() == "." || name.trim() == ".." {
            return Err(format!("dot-segment {segment:?} once decoded"));
        }
    }
    Ok(())
}

/// Paths made of the pieces attacks are made of.
fn hostile_path() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"/".to_vec()),
        Just(b".".to_vec()),
        Just(b";".to_vec()),
        Just(b"a".to_vec()),
        Just(b"?".to_vec()),
        Just(b"\\".to_vec()),
        Just(b"%".to_vec()),
        Just(b"u".to_vec()),
        "[0-9a-fA-F]".prop_map(String::into_bytes),
        "%[0-9a-fA-F]{2}".prop_map(String::into_bytes),
        "%(2[035eEfF]|3[bBfF]|5[cC]|0[09aAdD]|20|7[fF]|[c-fC-F][0-9a-fA-F]|[89aAbB][0-9a-fA-F])"
            .prop_map(String::into_bytes),
        // Unicode blanks, whole.
        prop_oneof![
            Just(b"%C2%A0".to_vec()),
            Just(b"%E2%80%80".to_vec()),
            Just(b"%E3%80%80".to_vec()),
            Just(b"%EF%BB%BF".to_vec()),
        ],
    ];
    proptest::collection::vec(piece, 0..16).prop_map(|pieces| {
        let mut path = b"/".to_vec();
        path.extend(pieces.concat());
        path
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5_000))]

    /// The property proved: for any path `check` accepts, its path part
    /// percent-decoded once is UTF-8 with no control character and no `\`,
    /// decoding it a second time changes nothing (so no `%XX` or `%u` is
    /// left for a server that decodes twice), and no segment is `.` or `..`
    /// up to its first `;`, `?` or `#` with blanks trimmed, nor empty once
    /// its `;parameters` are removed, except the last.
    #[test]
    fn accepted_means_unambiguous(path in hostile_path()) {
        if check(&path).is_ok() {
            prop_assert_eq!(unambiguous(&path), Ok(()), "{}", show(&path));
        }
    }

    /// Never panics, on any bytes and with any options.
    #[test]
    fn never_panics(
        path in proptest::collection::vec(any::<u8>(), 0..64),
        flags in any::<[bool; 7]>(),
    ) {
        let allow = Allow {
            path_parameters_dot_segments: flags[0],
            double_encoding: flags[1],
            malformed_escapes: flags[2],
            invalid_utf8: flags[3],
            percent_u: flags[4],
            encoded_control_characters: flags[5],
            encoded_delimiter_dot_segments: flags[6],
        };
        let _ = check_with(&path, allow);
        if check(&path).is_ok() {
            prop_assert_eq!(unambiguous(&path), Ok(()), "{}", show(&path));
        }
    }
}
