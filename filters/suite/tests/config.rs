// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use suite::config::Config;

fn refusal(json: &str) -> String {
    match Config::parse(Some(json.as_bytes())) {
        Ok(_) => panic!("{json} was accepted"),
        Err(e) => e.to_string(),
    }
}

/// Each part is read from the suite's one parsed document: what a filter
/// refuses names the part, then the filter's own path.
#[test]
fn a_part_s_errors_name_the_full_path() {
    for (json, field) in [
        (
            r#"{"l7_policy": {"rules": [{"method": "GET", "path": "("}]}}"#,
            "l7_policy.rules[0].path",
        ),
        (r#"{"tap_http": []}"#, "tap_http"),
        (
            r#"{"peer_metadata": {"max_depth": 0}}"#,
            "peer_metadata.max_depth",
        ),
        (
            r#"{"cf_headers": {"hosts": {"a.example.com": {"app_guid": "a", "org_guid": "o"}}}}"#,
            r#"cf_headers.hosts."a.example.com".space_guid"#,
        ),
        (r#"{"cf_headers": {}}"#, "cf_headers"),
        (
            r#"{"tap_http": {"sample_percent": 101}}"#,
            "tap_http.sample_percent",
        ),
    ] {
        let message = refusal(json);
        assert!(
            message.contains(&format!("field `{field}`:")),
            "{json}: {message}"
        );
    }
    assert!(refusal("{}").contains("names no filter"));
}

/// The duplicate-key check runs on the suite's text, so a key repeated
/// inside a part is refused with its full path.
#[test]
fn a_key_repeated_inside_a_part_is_refused_with_its_full_path() {
    for (json, field) in [
        (
            r#"{"l7_policy": {"rules": [{"path": "/a"}, {"path": "/b", "path": "/c"}]}}"#,
            "l7_policy.rules[1].path",
        ),
        (
            r#"{"peer_metadata": {"headers": {"namespace": "x-ns", "namespace": "x-ns2"}}}"#,
            "peer_metadata.headers.namespace",
        ),
        (
            r#"{"tap_http": {"max_request_bytes": 10, "max_request_bytes": 20}}"#,
            "tap_http.max_request_bytes",
        ),
        (r#"{"cf_headers": {}, "cf_headers": {}}"#, "cf_headers"),
    ] {
        let message = refusal(json);
        assert!(
            message.contains(&format!("field `{field}`: appears twice")),
            "{json}: {message}"
        );
    }
}

/// A part configures its filter exactly as the same object does as that
/// filter's own document.
#[test]
fn a_part_reads_as_the_filter_s_own_document() {
    let l7 = r#"{"rules": [{"method": "GET", "path": "/api/.*", "from": {"namespace": "shop"}}], "dry_run": true}"#;
    let peer = r#"{"headers": {"namespace": "x-ns"}, "filter_state": false, "max_keys": 12}"#;
    let json = format!(r#"{{"l7_policy": {l7}, "peer_metadata": {peer}}}"#);
    let suite = Config::parse(Some(json.as_bytes())).unwrap();
    assert_eq!(
        suite.peer_metadata,
        Some(peer_metadata::config::Config::parse(Some(peer.as_bytes())).unwrap())
    );
    let alone = l7_policy::config::Config::parse(Some(l7.as_bytes())).unwrap();
    let part = suite.l7_policy.unwrap();
    assert_eq!(format!("{part:?}"), format!("{alone:?}"));
    assert!(suite.cf_headers.is_none() && suite.tap_http.is_none());
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
