//! The RE2 gate: what RE2 refuses is refused, what RE2 reads otherwise than
//! regex-lite is refused with the fix, and anchoring cannot be escaped.
//! tests/re2_oracle.rs checks the same against RE2 itself on thousands of
//! generated patterns.

// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use filter_common::predicate::re2::check;
use filter_common::predicate::{anchored_regex, FoldedRegex};

fn full(p: &str, v: &str) -> bool {
    anchored_regex("p", p).unwrap().is_match(v)
}

fn refusal(p: &str) -> String {
    anchored_regex("rules[3].path", p).unwrap_err().to_string()
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
        "(?m)*",
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
        let e = refusal(p);
        assert!(
            e.contains("rules[3].path") && (e.contains("RE2") || e.contains("invalid regex")),
            "{p}: {e}"
        );
    }
}

#[test]
fn refused_on_purpose_with_the_fix() {
    for (p, what) in [
        // RE2 reads these otherwise than regex-lite.
        ("/api\\>", "write < or >"),
        ("\\<a", "write < or >"),
        ("a\\b{start}", "\\b\\{"),
        ("\\s", "[\\t\\n\\f\\r ]"),
        ("[\\S]", "[\\t\\n\\f\\r ]"),
        ("[a[b]]", "write \\["),
        ("[[]", "write \\["),
        ("[a&&b]", "escape them"),
        ("[a~~b]", "escape them"),
        ("a{", "write \\{"),
        ("a{,2}", "write \\{"),
        ("(?i)a", "the i flag"),
        ("a(?m)*", "right after flags"),
        // RE2 has these, regex-lite not.
        ("\\pL", "Unicode class"),
        ("\\QA.B\\E", "\\Q"),
        ("\\C", "\\C"),
        ("\\0", "octal"),
        ("\\12", "octal"),
        ("(?P<n>a)", "no names"),
        ("(?<n>a)", "no names"),
        ("a{1000000000000}", "over 1000"),
        ("[\\d-z]", "single character"),
        (
            &format!("{}a{}", "(".repeat(33), ")".repeat(33)),
            "deeper than 32",
        ),
    ] {
        let e = refusal(p);
        assert!(e.contains(what), "{p}: {e}");
    }
    for (p, what) in [
        ("é", "case-insensitive"),
        ("a\\b", "case-insensitive"),
        ("[[:alpha:]]", "case-insensitive"),
        ("\\x41", "case-insensitive"),
        ("(?-i)a", "the i flag"),
    ] {
        let e = FoldedRegex::new("host", p).unwrap_err().to_string();
        assert!(e.contains(what), "{p}: {e}");
    }
}

#[test]
fn meanings_of_re2() {
    assert!(full("/api\\b.*", "/api/users") && full("/api\\b.*", "/api"));
    assert!(!full("/api\\b.*", "/apiadmin"));
    assert!(full("/v1/users\\b", "/v1/users"));
    assert!(!full("/foo^bar", "/foobar"));
    assert!(full("[]a]", "]") && full("[^]a]", "b") && !full("[^]a]", "]"));
    assert!(full("[\\d\\-z]", "-") && full("[a-]", "-") && full("[-a]", "-"));
    assert!(full("a{2}", "aa") && full("a{2,}?", "aaa") && full("(a{10}){100}", &"a".repeat(1000)));
    assert!(full("", "") && !full("", "a"));
    let host = FoldedRegex::new("host", "[a-z]+\\.example\\.com").unwrap();
    assert!(host.is_match("WWW.Example.com") && host.is_match("\u{212A}\u{17F}.example.com"));
    assert!(!FoldedRegex::new("host", "[^k]")
        .unwrap()
        .is_match("\u{212A}"));
    assert!(FoldedRegex::new("host", "\\W")
        .unwrap()
        .is_match("\u{212B}"));
}

#[test]
fn anchoring_cannot_be_escaped() {
    assert!(anchored_regex("p", "a)|(b").is_err());
    assert!(FoldedRegex::new("p", "a)|(b").is_err());
    assert!(check("(a)|(b)", false).is_ok());
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
        assert_eq!(check(p, false).unwrap().looks_around, looks, "{p}");
    }
}

/// The estimates the limits use: RE2's program size (checked against RE2
/// itself in tests/re2_oracle.rs) and the states a match may step through
/// per char.
#[test]
fn size_and_cost_estimates() {
    let scan = |p: &str| check(p, false).unwrap();
    // RE2's own sizes for these: 20, 10, 7, 5.
    assert_eq!(scan("/api/v1/users/[0-9]+").size, 21);
    assert_eq!(scan("a{0,3}").size, 10);
    assert_eq!(scan("a{2,}").size, 7);
    assert_eq!(scan("a*").size, 6);
    // Counts expand: RE2 refuses neither, regex-lite copies the operand.
    assert!(scan("[^/]{0,999}").size > 16_000);
    // A char the running repetition cannot read ends it.
    for p in [
        "/api/v1/users/[0-9]+",
        "/a/[0-9]+/b/[^/?]+/c/[0-9a-fA-F-]{36}(?:\\?[^#]*)?",
        "[^.]+\\.[^.]+\\.example\\.com",
        "(?:[0-9]{2}:){2}[0-9]{2}",
        "(a{10}){100}",
    ] {
        assert!(scan(p).cost <= 10, "{p}: {:?}", scan(p));
    }
    // Repetitions over the same chars in a row all stay active.
    let loops = |n: usize| scan(&format!("/api/{}", "[^/]*".repeat(n))).cost;
    assert!(loops(20) > 2 * loops(5) && loops(20) > 40);
    assert!(scan(&format!(".*{}", "a".repeat(100))).cost > 100);
    assert!(scan(&format!("/api/{}x", "(?:[^/]{0,99})?".repeat(3))).cost > 100);
    // An alternation costs its branches together, also where its first char
    // ends the repetition before it.
    let names = |n: usize| {
        (0..n)
            .map(|i| format!("&n{i}"))
            .collect::<Vec<_>>()
            .join("|")
    };
    let after_loop = |n: usize| scan(&format!("x[^&]*(?:{})", names(n))).cost;
    assert!(after_loop(40) >= 40, "{}", after_loop(40));
    let skippable = |n: usize| scan(&format!("x[^&]*(?:{})*", names(n))).cost;
    assert!(skippable(40) >= 40, "{}", skippable(40));
}
