//! Configuration that could turn the filter into a smuggling tool is refused
//! at load, naming the field and the fix; `allow_in_paths` reads as documented.

// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use filter_common::config::ConfigError;
use l7_policy::config::Config;
use l7_policy::path::Allow;

fn refused(json: &str) -> ConfigError {
    Config::parse(Some(json.as_bytes())).expect_err(json)
}

#[test]
fn written_header_names_that_frame_or_route_are_refused() {
    let names = [
        "content-length",
        "Content-Length",
        "transfer-encoding",
        "transfer_encoding",
        "host",
        "connection",
        "te",
        "upgrade",
        "keep-alive",
        "proxy-connection",
        "expect",
        "x-envoy-original-path",
        "X-Envoy-Decorator-Operation",
        "x_envoy_upstream_rq_timeout_ms",
    ];
    for name in names {
        for action in ["ADD", "REPLACE", "DELETE"] {
            let json = format!(
                r#"{{"rules": [{{"path": "/a"}}, {{"headerMatches": [
                    {{"name": "x-ok", "value": "1", "mismatch": "ADD"}},
                    {{"name": "{name}", "value": "1", "mismatch": "{action}"}}]}}]}}"#
            );
            let e = refused(&json);
            assert_eq!(e.field, "rules[1].headerMatches[1].name", "{json}: {e}");
            assert!(e.problem.contains(name), "{e}");
            assert!(e.fix.contains("ADD, REPLACE or DELETE"), "{e}");
        }
        let json = format!(r#"{{"rules": [], "deny": {{"headers": {{"{name}": "1"}}}}}}"#);
        let e = refused(&json);
        let plain = name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        let field = if plain {
            format!("deny.headers.{name}")
        } else {
            format!("deny.headers.{name:?}")
        };
        assert_eq!(e.field, field, "{json}: {e}");
        assert!(e.problem.contains(name), "{e}");
        assert!(e.fix.contains("remove it from the local reply"), "{e}");
    }
}

#[test]
fn pseudo_headers_are_refused_wherever_they_would_be_written() {
    // A pseudo-header is not a header name at all: refused as such, even
    // for matching.
    for json in [
        r#"{"rules": [{"headerMatches": [{"name": ":path", "value": "/", "mismatch": "REPLACE"}]}]}"#,
        r#"{"rules": [{"headerMatches": [{"name": ":authority", "value": "x"}]}]}"#,
    ] {
        assert_eq!(refused(json).field, "rules[0].headerMatches[0].name");
    }
    assert_eq!(
        refused(r#"{"rules": [], "deny": {"headers": {":status": "200"}}}"#).field,
        "deny.headers.\":status\""
    );
}

#[test]
fn any_header_may_be_matched_or_logged() {
    for name in ["content-length", "host", "x-envoy-peer-metadata", "te"] {
        for mismatch in ["", r#", "mismatch": "LOG""#] {
            let json = format!(
                r#"{{"rules": [{{"headerMatches": [{{"name": "{name}", "value": "1"{mismatch}}}], "headers": ["{name}"]}}]}}"#
            );
            Config::parse(Some(json.as_bytes())).unwrap_or_else(|e| panic!("{json}: {e}"));
        }
    }
    let c = Config::parse(Some(
        br#"{"rules": [{"headerMatches": [{"name": "X-Add", "value": "1", "mismatch": "ADD"}]}],
             "deny": {"headers": {"x-policy": "l7", "content-type": "text/plain"}}}"#,
    ))
    .expect("application headers may be written");
    assert_eq!(c.deny.headers.len(), 2);
}

#[test]
fn allow_in_paths() {
    let c = Config::parse(Some(br#"{"rules": []}"#)).unwrap();
    assert_eq!(c.allow_in_paths, Allow::default());
    let c = Config::parse(Some(
        br#"{"rules": [], "allow_in_paths": {"path_parameters_dot_segments": true,
             "encoded_delimiter_dot_segments": true, "double_encoding": true,
             "malformed_escapes": true, "invalid_utf8": true,
             "percent_u": true, "encoded_control_characters": true}}"#,
    ))
    .unwrap();
    assert_eq!(
        c.allow_in_paths,
        Allow {
            path_parameters_dot_segments: true,
            encoded_delimiter_dot_segments: true,
            double_encoding: true,
            malformed_escapes: true,
            invalid_utf8: true,
            percent_u: true,
            encoded_control_characters: true,
        }
    );
    let c = Config::parse(Some(
        br#"{"rules": [], "allow_in_paths": {"percent_u": true}}"#,
    ))
    .unwrap();
    assert_eq!(
        c.allow_in_paths,
        Allow {
            percent_u: true,
            ..Allow::default()
        }
    );
    // Each name sets its own class, and only that one.
    for (name, want) in [
        (
            "path_parameters_dot_segments",
            Allow {
                path_parameters_dot_segments: true,
                ..Allow::default()
            },
        ),
        (
            "encoded_delimiter_dot_segments",
            Allow {
                encoded_delimiter_dot_segments: true,
                ..Allow::default()
            },
        ),
        (
            "double_encoding",
            Allow {
                double_encoding: true,
                ..Allow::default()
            },
        ),
        (
            "malformed_escapes",
            Allow {
                malformed_escapes: true,
                ..Allow::default()
            },
        ),
        (
            "invalid_utf8",
            Allow {
                invalid_utf8: true,
                ..Allow::default()
            },
        ),
        (
            "encoded_control_characters",
            Allow {
                encoded_control_characters: true,
                ..Allow::default()
            },
        ),
    ] {
        let json = format!(r#"{{"rules": [], "allow_in_paths": {{"{name}": true}}}}"#);
        let c = Config::parse(Some(json.as_bytes())).unwrap();
        assert_eq!(c.allow_in_paths, want, "{name}");
    }
    for (json, field) in [
        (
            r#"{"rules": [], "allow_in_paths": {"dot_segments": true}}"#,
            "allow_in_paths.dot_segments",
        ),
        (
            r#"{"rules": [], "allow_in_paths": {"double_encoding": "yes"}}"#,
            "allow_in_paths.double_encoding",
        ),
        (r#"{"rules": [], "allow_in_paths": true}"#, "allow_in_paths"),
        (r#"{"rules": [], "allow": {}}"#, "allow"),
    ] {
        let e = refused(json);
        assert_eq!(e.field, field, "{json}: {e}");
        assert!(!e.fix.is_empty());
    }
}
