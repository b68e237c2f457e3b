// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use cf_headers::config::*;
use cf_headers::identity::{HeaderNames, Part};
use filter_common::config::ConfigError;

fn parse(s: &str) -> Result<Config, ConfigError> {
    Config::parse(Some(s.as_bytes()))
}

const STATIC: &str =
    r#"{"app_guid": "a-1", "process_type": "worker", "org_guid": "o-1", "space_guid": "s-1"}"#;

#[test]
fn static_identity() {
    let c = parse(STATIC).unwrap();
    assert!(matches!(c.source, Source::Static));
    assert_eq!(c.identities[0].as_slice(), ["a-1", "worker", "o-1", "s-1"]);
    assert_eq!(c.identities[0][Part::ProcessType], "worker");
    assert_eq!(c.names, HeaderNames::default());
    let c = parse(r#"{"app_guid": "a", "org_guid": "o", "space_guid": "s"}"#).unwrap();
    assert_eq!(c.identities[0][Part::ProcessType], "web");
}

#[test]
fn refusals_name_the_field() {
    let cases = [
        (r#"{"app_guid": "a", "org_guid": "o"}"#, "space_guid"),
        (
            r#"{"app_guid": "a", "org_guid": "o", "space_guid": ""}"#,
            "space_guid",
        ),
        (
            r#"{"app_guid": "a\r\nx: y", "org_guid": "o", "space_guid": "s"}"#,
            "app_guid",
        ),
        (
            r#"{"app_guid": 5, "org_guid": "o", "space_guid": "s"}"#,
            "app_guid",
        ),
        (
            r#"{"app_guid": "a", "org_guid": "o", "space_guid": "s", "spce": 1}"#,
            "spce",
        ),
        (r#"{"hosts": {}}"#, "hosts"),
        (
            r#"{"hosts": {"a.com": {"app_guid": "a", "org_guid": "o"}}}"#,
            "hosts.\"a.com\".space_guid",
        ),
        (
            r#"{"hosts": {"a.com:80": {"app_guid": "a", "org_guid": "o", "space_guid": "s"}}}"#,
            "hosts.\"a.com:80\"",
        ),
        (
            r#"{"hosts": {"A.com": {"app_guid": "a", "org_guid": "o", "space_guid": "s"},
                          "a.com": {"app_guid": "b", "org_guid": "o", "space_guid": "s"}}}"#,
            "hosts.\"a.com\"",
        ),
        (r#"{"identity_from": "node_label"}"#, "identity_from"),
        (
            r#"{"identity_from": "node_labels", "app_guid": "x"}"#,
            "identity_from",
        ),
        (
            r#"{"identity_from": "node_labels", "label_keys": {"app_guid": ""}}"#,
            "label_keys.app_guid",
        ),
        (
            r#"{"label_keys": {}, "hosts": {"a.com": {"app_guid": "a", "org_guid": "o", "space_guid": "s"}}}"#,
            "label_keys",
        ),
        (r#"{"mode": "strip_only", "app_guid": "a"}"#, "app_guid"),
        (r#"{"mode": "strip"}"#, "mode"),
        (
            r#"{"mode": "strip_only", "header_names": {"app_guid": "bad name"}}"#,
            "header_names.app_guid",
        ),
        (
            r#"{"mode": "strip_only", "header_names": {"org_guid": "cf-app-id"}}"#,
            "header_names.org_guid",
        ),
        (
            r#"{"mode": "strip_only", "header_names": {"space_guid": "cf_app_id"}}"#,
            "header_names.space_guid",
        ),
        (
            r#"{"mode": "strip_only", "header_names": {"app_guid": "x-id", "org_guid": "X_ID"}}"#,
            "header_names.org_guid",
        ),
        (
            r#"{"mode": "strip_only", "response_headers": "yes"}"#,
            "response_headers",
        ),
        (
            r#"{"mode": "strip_only", "on_missing_identity": "drop"}"#,
            "on_missing_identity",
        ),
        ("{}", ""),
        ("", ""),
        ("[1]", ""),
    ];
    for (json, field) in cases {
        let e = parse(json).expect_err(json);
        assert_eq!(e.field, field, "{json}: {e}");
        assert!(!e.fix.is_empty(), "{json}: {e} has no fix");
    }
}

#[test]
fn header_names_override_partially_and_lowercase() {
    let c = parse(r#"{"mode": "strip_only", "header_names": {"app_guid": "X-App"}}"#).unwrap();
    assert_eq!(
        c.names.0.as_slice(),
        [
            "x-app",
            "cf-app-process-type",
            "cf-organization-id",
            "cf-space-id"
        ]
    );
}

#[test]
fn node_labels_resolve_once_with_defaults_and_problems() {
    let mut c = parse(r#"{"identity_from": "node_labels"}"#).unwrap();
    assert_eq!(
        c.pending_label_keys().unwrap()[Part::AppGuid],
        "cloudfoundry.org/app_guid"
    );
    let missing = c
        .resolve_node_labels(|k| (k != "cloudfoundry.org/space_guid").then(|| "v".into()))
        .unwrap_err();
    assert_eq!(missing, ["cloudfoundry.org/space_guid (missing)"]);
    assert!(c.pending_label_keys().is_some());
    let id = c
        .resolve_node_labels(|k| (k != "cloudfoundry.org/process_type").then(|| format!("{k}-v")))
        .unwrap()
        .clone();
    assert_eq!(id[Part::ProcessType], "web");
    assert_eq!(id[Part::AppGuid], "cloudfoundry.org/app_guid-v");
    assert_eq!(id[Part::SpaceGuid], "cloudfoundry.org/space_guid-v");
    assert!(c.pending_label_keys().is_none());

    let mut c =
        parse(r#"{"identity_from": "node_labels", "label_keys": {"app_guid": "app"}}"#).unwrap();
    assert_eq!(c.pending_label_keys().unwrap()[Part::AppGuid], "app");
    assert_eq!(
        c.pending_label_keys().unwrap()[Part::OrgGuid],
        "cloudfoundry.org/org_guid"
    );
    let bad = c.resolve_node_labels(|_| Some("a\nb".into())).unwrap_err();
    assert_eq!(bad.len(), 4);
}

/// A configured header name that frames, routes or belongs to Envoy would
/// turn the filter into a smuggling tool (`content-length: 0` on a request
/// with a body): refused at load in every mode, naming the field and the fix.
#[test]
fn header_names_that_frame_the_message_are_refused() {
    let names = [
        "content-length",
        "Content-Length",
        "content_length",
        "transfer-encoding",
        "Transfer_Encoding",
        "host",
        "connection",
        "te",
        "upgrade",
        "keep-alive",
        "proxy-connection",
        "expect",
        ":authority",
        ":path",
        "x-envoy-original-path",
        "X-Envoy-Upstream-Rq-Timeout-Ms",
        "x_envoy_internal",
        "",
        "bad name",
    ];
    for field in ["app_guid", "process_type", "org_guid", "space_guid"] {
        for name in names {
            for mode in [
                r#""app_guid": "0", "org_guid": "o", "space_guid": "s""#,
                r#""mode": "strip_only""#,
            ] {
                let json = format!(r#"{{{mode}, "header_names": {{"{field}": {name:?}}}}}"#);
                let e = parse(&json).expect_err(&json);
                assert_eq!(e.field, format!("header_names.{field}"), "{json}: {e}");
                assert!(e.problem.contains(&format!("{name:?}")), "{e}");
                assert!(e.fix.contains("CF-App-Id"), "{e}");
            }
        }
    }
    // Names near the refused ones are headers like any other.
    for name in [
        "content-lengths",
        "x-content-length",
        "hostname",
        "x-envoyer",
        "tea",
    ] {
        let json = format!(r#"{{"mode": "strip_only", "header_names": {{"app_guid": "{name}"}}}}"#);
        assert_eq!(parse(&json).expect(&json).names.0[Part::AppGuid], name);
    }
}

#[test]
fn names_that_fold_together_are_refused_saying_why() {
    let e = parse(r#"{"mode": "strip_only", "header_names": {"org_guid": "CF_App_Id"}}"#)
        .expect_err("folds to cf-app-id");
    assert_eq!(e.field, "header_names.org_guid");
    assert!(
        e.problem
            .contains("\"CF_App_Id\" is the same header as \"cf-app-id\" (app_guid)"),
        "{e}"
    );
    assert!(e.problem.contains("CGI"), "{e}");
    // Underscore names are allowed when they fold to no other configured name.
    let c = parse(r#"{"mode": "strip_only", "header_names": {"app_guid": "X_App_Guid"}}"#).unwrap();
    assert_eq!(c.names.0[Part::AppGuid], "x_app_guid");
}

#[test]
fn each_header_carries_its_own_value() {
    let c = parse(
        r#"{"app_guid": "a-1", "process_type": "worker", "org_guid": "o-1", "space_guid": "s-1",
            "header_names": {"org_guid": "X-Org", "space_guid": "X-Space"}}"#,
    )
    .unwrap();
    let pairs: Vec<(&str, &str)> = c.names.with(&c.identities[0]).collect();
    assert_eq!(
        pairs,
        [
            ("cf-app-id", "a-1"),
            ("cf-app-process-type", "worker"),
            ("x-org", "o-1"),
            ("x-space", "s-1"),
        ]
    );
}

/// The README's configuration reference lists each declared field (the
/// document's and the static identity's) as declared, and nothing else.
#[test]
fn the_readme_documents_the_declared_fields() {
    let mut fields = Fields::reference();
    fields.extend(IdentityFields::reference());
    filter_common::config::reference::check_reference(include_str!("../README.md"), &fields)
        .unwrap_or_else(|e| panic!("{e}"));
}
