// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use filter_common::config::reference::{differences, FieldDoc};
use l7_policy::config::{AllowInPaths, Config, Deny, Fields, HeaderMatchFields, LogLevels};
use l7_policy::rule::{Binding, From, Mismatch, Repeated, Rule};

const README: &str = include_str!("../README.md");

/// Each declared object's table in the README lists its fields as declared,
/// and nothing else.
#[test]
fn the_readme_documents_the_declared_fields() {
    let tables: [(&str, Vec<FieldDoc>); 8] = [
        ("## Configuration reference", Fields::reference()),
        ("## Rules", Rule::reference()),
        (
            "### `headerMatches` entries",
            HeaderMatchFields::reference(),
        ),
        ("### `from`: who may call", From::reference()),
        ("### `principals` entries", Binding::reference()),
        ("### `deny`", Deny::reference()),
        ("### `log`", LogLevels::reference()),
        ("### `allow_in_paths`", AllowInPaths::reference()),
    ];
    let mut problems = Vec::new();
    for (heading, fields) in tables {
        for p in differences(README, heading, &fields) {
            problems.push(format!("{heading}: {p}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// An enumerated value is read into its enum, and anything else is refused
/// listing the values: no value falls through to another.
#[test]
fn enumerated_values_are_typed_and_others_refused() {
    let refused = |json: &str| Config::parse(Some(json.as_bytes())).err().unwrap();
    let e = refused(
        r#"{"rules": [{"headerMatches": [{"name": "x", "value": "v", "mismatch": "replace"}]}]}"#,
    );
    assert_eq!(e.field, "rules[0].headerMatches[0].mismatch");
    assert_eq!(
        e.problem,
        r#""replace" is not one of: LOG, ADD, DELETE, REPLACE"#
    );
    let e = refused(r#"{"rules": [], "repeated_headers": "any"}"#);
    assert_eq!(
        (e.field.as_str(), e.problem.as_str()),
        (
            "repeated_headers",
            r#""any" is not one of: joined, any_value"#
        )
    );
    for name in Mismatch::NAMES {
        assert_eq!(Mismatch::from_name(name).unwrap().as_str(), *name);
    }
    let c = Config::parse(Some(br#"{"rules": [], "repeated_headers": "any_value"}"#)).unwrap();
    assert_eq!(c.repeated_headers, Repeated::AnyValue);
}

/// A configuration without `rules` is refused with the two choices a user
/// most likely means.
#[test]
fn missing_rules_name_both_choices() {
    let e = Config::parse(Some(b"{}")).err().unwrap();
    assert_eq!(
        (e.field.as_str(), e.problem.as_str(), e.fix.as_str()),
        (
            "rules",
            "is missing",
            "add \"rules\": [] to deny everything, or [{}] to allow everything"
        )
    );
}

/// Filter state `wasm.l7_verdict` names each verdict as the README says.
#[test]
fn verdicts_are_recorded_by_name() {
    use l7_policy::path::Invalid;
    use l7_policy::verdict::Verdict;
    for (verdict, dry_run, name) in [
        (Verdict::Allowed(0, Vec::new()), false, "allowed"),
        (Verdict::Allowed(0, Vec::new()), true, "allowed"),
        (Verdict::Denied, false, "denied"),
        (Verdict::Denied, true, "dry_run_denied"),
        (
            Verdict::InvalidPath(Invalid::Backslash),
            false,
            "invalid_path",
        ),
        (
            Verdict::InvalidPath(Invalid::Backslash),
            true,
            "invalid_path",
        ),
    ] {
        assert_eq!(verdict.as_str(dry_run), name);
        assert!(README.contains(&format!("`{name}`")), "{name}");
    }
}
