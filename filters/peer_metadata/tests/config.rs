// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use peer_metadata::config::Config;

fn parse(json: &str) -> Config {
    Config::parse(Some(json.as_bytes())).unwrap_or_else(|e| panic!("{json}: {e}"))
}

#[test]
fn defaults() {
    let c = parse("{}");
    assert_eq!(c.header("workload"), "x-peer-workload");
    assert_eq!(c.header("principal"), "x-peer-principal");
    assert_eq!(c.header("identity"), "x-peer-identity");
    assert_eq!(c.header("verified"), "x-peer-verified");
    assert!(c.remove_metadata_headers && !c.require_verified && c.filter_state);
    assert_eq!(
        (
            c.max_header_bytes,
            c.limits.max_depth,
            c.limits.max_entries,
            c.cache_entries
        ),
        (8192, 8, 256, 256)
    );
    assert_eq!(Config::parse(None).unwrap(), c);
}

#[test]
fn custom_headers_and_fields() {
    let c = parse(
        r#"{"headers": {"app": "X-Caller-App", "verified": "x-caller-verified", "identity": "x-caller-spiffe"},
                      "remove_metadata_headers": false, "require_verified": true,
                      "max_header_bytes": 4096, "max_depth": 4, "max_keys": 64, "cache_entries": 0,
                      "filter_state": false}"#,
    );
    assert_eq!(c.header("app"), "x-caller-app");
    assert_eq!(c.header("verified"), "x-caller-verified");
    assert_eq!(c.header("identity"), "x-caller-spiffe");
    assert_eq!(c.header("namespace"), "x-peer-namespace");
    assert!(!c.remove_metadata_headers && c.require_verified && !c.filter_state);
    assert_eq!(
        (
            c.max_header_bytes,
            c.limits.max_depth,
            c.limits.max_entries,
            c.cache_entries
        ),
        (4096, 4, 64, 0)
    );
}

#[test]
fn errors_name_the_field() {
    for (json, field) in [
        (r#"{"headers": {"pod": "x"}}"#, "headers.pod"),
        (r#"{"headers": {"app": "bad header"}}"#, "headers.app"),
        (r#"{"headers": {"app": ":path"}}"#, "headers.app"),
        (
            r#"{"headers": {"app": "x-peer-version"}}"#,
            "headers.version",
        ),
        // One header to a CGI-style framework (`HTTP_X_PEER_VERSION`).
        (
            r#"{"headers": {"app": "X_Peer_Version"}}"#,
            "headers.version",
        ),
        (r#"{"max_header_bytes": 10}"#, "max_header_bytes"),
        (r#"{"max_depth": 0}"#, "max_depth"),
        (r#"{"max_keys": "many"}"#, "max_keys"),
        (r#"{"require_verified": "yes"}"#, "require_verified"),
        (r#"{"strict": true}"#, "strict"),
    ] {
        let e = Config::parse(Some(json.as_bytes())).expect_err(json);
        assert_eq!(e.field, field, "{json}: {e}");
    }
}

/// A header the filter writes from the caller's metadata must not frame,
/// route or belong to Envoy: `workload: content-length` would let a caller
/// choose the length of the body the upstream reads.
#[test]
fn framing_hop_by_hop_and_envoy_headers_are_refused_as_outputs() {
    for name in [
        "content-length",
        "Transfer-Encoding",
        "transfer_encoding",
        "connection",
        "te",
        "upgrade",
        "host",
        ":authority",
        "x-envoy-original-path",
    ] {
        let json = format!(r#"{{"headers": {{"workload": "{name}"}}}}"#);
        let e = Config::parse(Some(json.as_bytes())).expect_err(&json);
        assert_eq!(e.field, "headers.workload", "{name}");
        assert!(e.fix.contains("x-peer-workload"), "{name}: {e}");
    }
    let ok = r#"{"headers": {"workload": "x-caller-workload"}}"#;
    assert_eq!(
        parse(ok).header("workload"),
        "x-caller-workload",
        "an ordinary name still loads"
    );
}

/// The README's configuration reference lists each declared field as
/// declared, and nothing else.
#[test]
fn the_readme_documents_the_declared_fields() {
    filter_common::config::reference::check_reference(
        include_str!("../README.md"),
        &peer_metadata::config::Fields::reference(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
}
