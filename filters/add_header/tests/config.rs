// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use add_header::config::Config;
use filter_common::config::ConfigError;

fn parse(json: &str) -> Result<Config, ConfigError> {
    Config::parse(Some(json.as_bytes()))
}

#[test]
fn replaces_unless_told_to_keep() {
    let c = parse(r#"{"name": "X-Frame-Options", "value": "DENY"}"#).unwrap();
    assert_eq!(c.name, "x-frame-options");
    assert!(c.sets(false) && c.sets(true));
    let c = parse(r#"{"name": "x-env", "value": "prod", "keep_existing": true}"#).unwrap();
    assert!(c.sets(false) && !c.sets(true));
}

#[test]
fn errors_name_the_field_and_the_fix() {
    for (json, field) in [
        (r#"{"name": "x-env", "vaule": "prod"}"#, "vaule"),
        (r#"{"name": "x-env"}"#, "value"),
        (r#"{"name": "x env", "value": "prod"}"#, "name"),
        (r#"{"name": 1, "value": "prod"}"#, "name"),
        (r#"{"name": "content-length", "value": "0"}"#, "name"),
        (r#"{"name": ":status", "value": "200"}"#, "name"),
        (r#"{"name": "x-env", "value": "a\nb"}"#, "value"),
        (r#"{"name": "x-env", "value": "1", "value": "2"}"#, "value"),
    ] {
        let e = parse(json).unwrap_err();
        assert_eq!(e.field, field, "{json}");
        assert!(!e.fix.is_empty(), "{json}");
    }
}

/// The README's configuration reference lists each declared field as
/// declared, and nothing else.
#[test]
fn the_readme_documents_the_declared_fields() {
    filter_common::config::reference::check_reference(
        include_str!("../README.md"),
        &Config::reference(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
}
