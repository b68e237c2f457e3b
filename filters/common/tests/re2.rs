//! The RE2 gate: what RE2 refuses is refused, what differs is translated,
//! and anchoring cannot be escaped. tests/re2_oracle.rs checks the same
//! against RE2 itself on thousands of generated patterns.

use filter_common::predicate::{anchored_regex, anchored_regex_folded};
use filter_common::re2::translate;

fn full(p: &str, v: &str) -> bool {
    anchored_regex("p", p).unwrap().is_match(v)
}

#[test]
fn refused_like_re2() {
    for p in [
        "/public)|(/nothing",
        "a)",
        "(a",
        "/foo[",
        "a**",
        "a++",
        "a?*",
        "a{2}*",
        "*a",
        "(?i)*",
        "a{1001}",
        "(a{100}){100}",
        "(a{3}){334}",
        "a{2,1}",
        "(?x)a",
        "(?u)a",
        "(?R)a",
        "(?=a)",
        "(?P=n)",
        "(?P<>a)",
        "(?-)a",
        "\\Z",
        "\\e",
        "\\1",
        "\\8",
        "\\u0041",
        "\\é",
        "[z-a]",
        "[a--b]",
        "[[:foo:]]",
        "[]",
        "[\\b]",
        "\\x{110000}",
        "a\\",
    ] {
        let e = anchored_regex("rules[3].path", p).unwrap_err().to_string();
        assert!(
            e.contains("rules[3].path") && (e.contains("RE2") || e.contains("invalid regex")),
            "{p}: {e}"
        );
    }
}

#[test]
fn refused_on_purpose_with_the_fix() {
    for (p, what) in [
        ("\\pL", "Unicode class"),
        ("\\QA.B\\E", "\\Q"),
        ("\\C", "\\C"),
        ("\\0", "octal"),
        ("\\12", "octal"),
        ("(?P<é>a)", "group name"),
        ("a(?i)*", "right after a flag group"),
        ("(?ii)a", "given twice"),
        ("(?)a", "empty flag group"),
    ] {
        let e = anchored_regex("p", p).unwrap_err().to_string();
        assert!(e.contains(what), "{p}: {e}");
    }
    let e = anchored_regex_folded("host", "é").unwrap_err().to_string();
    assert!(e.contains("case-insensitive"), "{e}");
}

#[test]
fn meanings_of_re2() {
    // RE2 has no \< \>: they are the literal chars.
    assert!(full("/api\\>", "/api>") && !full("/api\\>", "/api"));
    assert!(full("\\<a", "<a"));
    // \b is a word boundary; ^ in the middle never matches.
    assert!(full("/api\\b.*", "/api/users") && full("/api\\b.*", "/api"));
    assert!(!full("/api\\b.*", "/apiadmin"));
    assert!(full("/v1/users\\b", "/v1/users"));
    assert!(!full("/foo^bar", "/foobar"));
    // Classes: `[` is literal, `&&` `~~` are literal, `]` first is literal.
    assert!(full("[a[b]]", "[]") && full("[a[b]]", "b]") && !full("[a[b]]", "a"));
    assert!(full("[a&&b]", "&") && full("[a~~b]", "~"));
    assert!(full("[]a]", "]") && full("[^]a]", "b") && !full("[^]a]", "]"));
    assert!(full("[a-b-c]", "-") && full("[\\d-z]", "-"));
    // \s has no vertical tab in RE2.
    assert!(full("\\s", "\x0C") && !full("\\s", "\x0B") && full("\\S", "\x0B"));
    // A `{` that is not a count is literal.
    assert!(full("a{", "a{") && full("a{x}", "a{x}") && full("a{,2}", "a{,2}"));
    assert!(full("a{2}", "aa") && full("a{2,}?", "aaa") && full("(a{10}){100}", &"a".repeat(1000)));
    assert!(full("(?P<n>a)(?<m>b)(?P<n>c)", "abc"));
    assert!(full("", "") && !full("", "a"));
    assert!(full("(?i)k", "\u{212A}") && full("(?i)[a-z]+", "\u{17F}"));
    assert!(anchored_regex_folded("h", "K")
        .unwrap()
        .is_match("\u{212A}"));
    assert!(
        full("(?i-s:A.)", "ab") && full("(?i)[k-m]", "\u{212A}") && !full("(?i)[l-m]", "\u{212A}")
    );
}

#[test]
fn anchoring_cannot_be_escaped() {
    assert!(anchored_regex("p", "a)|(b").is_err());
    assert!(anchored_regex_folded("p", "a)|(b").is_err());
    assert!(translate("(a)|(b)", false).is_ok());
}

#[test]
fn looks_around() {
    for (p, looks) in [
        ("[0-9]+", false),
        ("[^/]+", false),
        ("\\b.*", true),
        ("x\\B", true),
        ("^a", true),
        ("\\Aa", true),
        ("a$", false),
        ("a\\z", false),
        ("\\\\b", false),
        ("[\\^]", false),
    ] {
        assert_eq!(translate(p, false).unwrap().looks_around, looks, "{p}");
    }
}
