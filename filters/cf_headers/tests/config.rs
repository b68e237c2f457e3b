use cf_headers::config::*;
use cf_headers::identity::HeaderNames;
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
    assert_eq!(c.identities[0].values, ["a-1", "worker", "o-1", "s-1"]);
    assert_eq!(c.names, HeaderNames::default());
    let c = parse(r#"{"app_guid": "a", "org_guid": "o", "space_guid": "s"}"#).unwrap();
    assert_eq!(c.identities[0].values[1], "web");
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
        c.names.0,
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
        c.pending_label_keys().unwrap()[0],
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
    assert_eq!(id.values[1], "web");
    assert_eq!(id.values[0], "cloudfoundry.org/app_guid-v");
    assert!(c.pending_label_keys().is_none());

    let mut c =
        parse(r#"{"identity_from": "node_labels", "label_keys": {"app_guid": "app"}}"#).unwrap();
    assert_eq!(c.pending_label_keys().unwrap()[0], "app");
    let bad = c.resolve_node_labels(|_| Some("a\nb".into())).unwrap_err();
    assert_eq!(bad.len(), 4);
}
