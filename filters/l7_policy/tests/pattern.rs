//! The literal fast paths give exactly the answers of the whole anchored regex.

// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use filter_common::predicate::{anchored_regex_within, RegexLimits};
use l7_policy::pattern::{Pattern, Rest};
use proptest::prelude::*;

const WIDE: RegexLimits = RegexLimits {
    program_size: u32::MAX,
    cost: u32::MAX,
};

fn atom() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-c/]".prop_map(String::from),
        Just("\\.".to_string()),
        Just("\\-".to_string()),
        Just(".".to_string()),
        Just("[a-b]".to_string()),
        Just("[0-9]".to_string()),
        Just("[a-c0-9/-]".to_string()),
        Just("[-.b]".to_string()),
        Just("[^a]".to_string()),
        Just("[\\d/]".to_string()),
        Just("\\d".to_string()),
        Just("\\w".to_string()),
        Just("(a|b)".to_string()),
        Just("(ab)".to_string()),
    ]
}

/// Zero-width assertions: the ones that look at the text around a position
/// are what a split-off prefix would hide.
fn assertion() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("\\b".to_string()),
        Just("\\B".to_string()),
        Just("^".to_string()),
        Just("$".to_string()),
        Just("\\A".to_string()),
        Just("\\z".to_string()),
    ]
}

/// Flags for the rest of the group (never repeated: RE2 refuses `(?m)*`).
fn flags() -> impl Strategy<Value = String> {
    prop_oneof![Just("(?m)".to_string()), Just("(?s)".to_string())]
}

fn quantifier() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just(""),
        Just(""),
        Just(""),
        Just("?"),
        Just("*"),
        Just("+"),
        Just("*?"),
        Just("{1,2}")
    ]
}

fn sequence(item: BoxedStrategy<String>) -> impl Strategy<Value = String> {
    prop::collection::vec((item, quantifier()), 0..6)
        .prop_map(|parts| parts.into_iter().map(|(a, q)| format!("{a}{q}")).collect())
}

/// Sequences of atoms, nested groups and alternations, with a literal
/// prefix most of the time (the case the fast paths are for) and
/// assertions anywhere.
fn pattern() -> impl Strategy<Value = String> {
    let leaf = atom().boxed();
    let nested = leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            3 => atom(),
            1 => assertion(),
            1 => (sequence(inner.clone()), sequence(inner.clone()))
                .prop_map(|(a, b)| format!("({a}|{b})")),
            1 => sequence(inner.clone()).prop_map(|a| format!("(?:{a})")),
        ]
        .boxed()
    });
    let prefix = prop_oneof![Just(""), Just("/api"), Just("/v1/a-b"), Just("ab")];
    let item = prop_oneof![
        4 => (nested, quantifier()).prop_map(|(a, q)| format!("{a}{q}")),
        1 => (assertion(), quantifier()).prop_map(|(a, q)| format!("{a}{q}")),
        1 => flags(),
    ];
    let items = prop::collection::vec(item, 0..6).prop_map(|parts| parts.concat());
    (prefix, items).prop_map(|(p, rest)| format!("{p}{rest}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn same_as_the_whole_regex(p in pattern(), alt in any::<bool>(), values in prop::collection::vec("(/api|/v1/a-b|ab)?[a-c/.\\-0-9\né_ ]{0,6}", 8)) {
        let p = if alt { format!("{p}|b.") } else { p };
        // The answers, not the cost: generated patterns may be over the limits.
        let whole = anchored_regex_within("p", &p, WIDE).unwrap();
        let fast = Pattern::compile_within("p", &p, WIDE).unwrap();
        for v in values {
            prop_assert_eq!(fast.matches(v.as_bytes()), whole.is_match(&v), "pattern {:?} value {:?}", p, v);
        }
    }
}

#[test]
fn literals_and_prefixes() {
    assert_eq!(
        Pattern::compile("p", "POST").unwrap().literal(),
        Some("POST")
    );
    assert_eq!(
        Pattern::compile("p", "/v1/request-landing")
            .unwrap()
            .literal(),
        Some("/v1/request-landing")
    );
    assert_eq!(
        Pattern::compile("p", "/a\\.b").unwrap().literal(),
        Some("/a.b")
    );
    assert_eq!(Pattern::compile("p", "GET|HEAD").unwrap().literal(), None);
    let prefixed = Pattern::compile("p", "/users/[0-9]+").unwrap();
    assert!(
        prefixed.matches(b"/users/42")
            && !prefixed.matches(b"/users/")
            && !prefixed.matches(b"/userz/1")
    );
    let optional = Pattern::compile("p", "/ab?").unwrap();
    assert!(optional.matches(b"/a") && optional.matches(b"/ab"));
    assert!(Pattern::compile("p", "(").is_err());
    assert!(!Pattern::compile("p", "/a").unwrap().matches(b"/a\xff"));
    let run = Pattern::compile("p", "/api/v1/items/[a-z0-9-]+").unwrap();
    assert!(matches!(
        run,
        Pattern::Prefixed {
            rest: Rest::Run { min: 1, .. },
            ..
        }
    ));
    assert!(run.matches(b"/api/v1/items/ab-12") && !run.matches(b"/api/v1/items/"));
    assert!(!run.matches(b"/api/v1/items/AB") && !run.matches(b"/api/v1/items/a/b"));
    let any = Pattern::compile("p", "/public/.*").unwrap();
    assert!(any.matches(b"/public/") && any.matches("/public/ü/x".as_bytes()));
    assert!(!any.matches(b"/public/a\nb"));
    // A rest that looks at the text before it is never split off.
    let word = Pattern::compile("p", "/api\\b.*").unwrap();
    assert!(word.matches(b"/api/users") && word.matches(b"/api") && !word.matches(b"/apiadmin"));
    assert!(Pattern::compile("p", "/v1/users\\b")
        .unwrap()
        .matches(b"/v1/users"));
    assert!(!Pattern::compile("p", "/foo^bar")
        .unwrap()
        .matches(b"/foobar"));
    assert!(Pattern::compile("p", "/a\\Bb").unwrap().matches(b"/ab"));
    // RE2 reads `\>` as a literal `>`, regex-lite as a word end: refused.
    assert!(Pattern::compile("p", "/api\\>").is_err());
    assert!(Pattern::compile("p", "/public)|(/nothing").is_err());
    // Negated, escaped or nested classes stay with the regex engine.
    for kept in ["/a/[^/]+", "/a/[\\w]+", "/a/[[:digit:]]+", "/a/[a-c-e]+"] {
        assert!(
            matches!(
                Pattern::compile("p", kept).unwrap(),
                Pattern::Prefixed {
                    rest: Rest::Regex(_),
                    ..
                }
            ),
            "{kept}"
        );
    }
}
