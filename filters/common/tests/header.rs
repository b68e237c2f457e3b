// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use filter_common::header::*;
use proptest::prelude::*;

#[test]
fn authority_forms() {
    let cases: &[(&[u8], Option<&str>)] = &[
        (b"Example.COM", Some("example.com")),
        (b"example.com:8080", Some("example.com")),
        (b"example.com:", Some("example.com:")),
        (b"example.com.", Some("example.com")),
        (b"example.com.:443", Some("example.com")),
        (b"[::1]:80", Some("[::1]")),
        (b"[::1]", Some("[::1]")),
        (b"[::1].:443", Some("[::1]")),
        // What Envoy makes of an unbracketed IPv6 literal.
        (b"::1", Some(":")),
        (b"a.com:abc", Some("a.com:abc")),
        (b"", None),
        (b":80", None),
        (b"\xffbad", None),
    ];
    for (raw, want) in cases {
        assert_eq!(
            normalize_authority(raw).as_deref(),
            *want,
            "{:?}",
            String::from_utf8_lossy(raw)
        );
    }
}

#[test]
fn names_and_values() {
    assert!(is_valid_header_name("CF-App-Id"));
    assert!(!is_valid_header_name(""));
    assert!(!is_valid_header_name(":path"));
    assert!(!is_valid_header_name("a b"));
    assert!(is_valid_header_value(
        "eb1534db-8765-430d-adfe-77fd1a8e45a9"
    ));
    assert!(is_valid_header_value("a b"));
    for bad in ["", " a", "a ", "a\r\nx: y", "a\0", "caf\u{e9}"] {
        assert!(!is_valid_header_value(bad), "{bad:?}");
    }
}

#[test]
fn host_patterns() {
    assert_eq!(
        canonical_host_pattern("App.Example.com.").as_deref(),
        Some("app.example.com")
    );
    assert_eq!(
        canonical_host_pattern("*.apps.example.com").as_deref(),
        Some("*.apps.example.com")
    );
    assert_eq!(canonical_host_pattern("[::1]").as_deref(), Some("[::1]"));
    for bad in [
        "", "*", "a..b", "a.com:80", "*.*.a", "a b", "a/b", "[]", "x.*.com",
    ] {
        assert_eq!(canonical_host_pattern(bad), None, "{bad:?}");
    }
}

proptest! {
    #[test]
    fn port_and_case_never_change_the_host(host in "[a-zA-Z0-9-]{1,20}(\\.[a-zA-Z0-9-]{1,20}){0,3}", port in proptest::option::of(0u32..70000)) {
        let authority = match port { Some(p) => format!("{host}:{p}"), None => host.clone() };
        prop_assert_eq!(normalize_authority(authority.as_bytes()), Some(host.to_ascii_lowercase()));
    }

    #[test]
    fn normalize_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = normalize_authority(&raw);
    }
}

#[test]
fn output_headers_that_would_frame_or_route_are_forbidden() {
    for name in [
        "content-length",
        "Content-Length",
        "content_length",
        "transfer-encoding",
        "host",
        "Host",
        "connection",
        "te",
        "upgrade",
        "keep-alive",
        "proxy-connection",
        "expect",
        ":path",
        ":authority",
        "x-envoy-original-path",
        "X-Envoy-Peer-Metadata",
        "x_envoy_decorator_operation",
        "X-Envoy_Original-Path",
        "x_envoy-foo",
        "",
        "a b",
    ] {
        assert!(forbidden_output_header(name).is_some(), "{name:?} allowed");
    }
    for name in [
        "cf-app-id",
        "CF-App-Id",
        "x-peer-namespace",
        "x-envoyish",
        "tee",
    ] {
        assert_eq!(forbidden_output_header(name), None, "{name:?} refused");
    }
}

#[test]
fn underscores_and_dashes_name_the_same_header() {
    assert!(same_header_name("cf-app-id", "CF_App_Id"));
    assert!(same_header_name("cf-space-id", "cf_space_id"));
    assert!(same_header_name("x-peer-namespace", "X_PEER-namespace"));
    assert!(!same_header_name("cf-app-id", "cf-app-ids"));
    assert!(!same_header_name("cf-app-id", "cf.app.id"));
    assert!(!same_header_name("cf-app-id", "cfxapp-id"));
}
