// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use cf_headers::config::Config;
use cf_headers::identity::Part;
use cf_headers::stamp::*;
use filter_common::header::same_header_name;
use proptest::prelude::*;

fn config(json: &str) -> Config {
    Config::parse(Some(json.as_bytes())).unwrap()
}

const HOSTS: &str = r#"{"hosts": {
    "a.example.com": {"app_guid": "a", "org_guid": "o", "space_guid": "s"},
    "*.apps.example.com": {"app_guid": "w", "org_guid": "o", "space_guid": "s"}}}"#;

#[test]
fn verdicts_per_source() {
    let c = config(r#"{"app_guid": "a", "org_guid": "o", "space_guid": "s"}"#);
    assert_eq!(c.verdict(None), Verdict::Stamp(0));
    assert_eq!(
        config(r#"{"mode": "strip_only"}"#).verdict(Some(b"a")),
        Verdict::Strip
    );

    let c = config(HOSTS);
    let a = c.verdict(Some(b"A.example.com:80"));
    let Verdict::Stamp(i) = a else {
        panic!("{a:?}")
    };
    assert_eq!(c.identities[i][Part::AppGuid], "a");
    let Verdict::Stamp(i) = c.verdict(Some(b"x.apps.example.com")) else {
        panic!()
    };
    assert_eq!(c.identities[i][Part::AppGuid], "w");
    assert_eq!(c.verdict(Some(b"b.example.com")), Verdict::Unidentified);
    assert_eq!(c.verdict(None), Verdict::Unidentified);

    let reject = HOSTS.replacen('{', r#"{"on_missing_identity": "reject", "#, 1);
    assert_eq!(
        config(&reject).verdict(Some(b"b.example.com")),
        Verdict::Reject
    );

    let mut c = config(r#"{"identity_from": "node_labels"}"#);
    assert_eq!(
        c.verdict(None),
        Verdict::Unidentified,
        "unresolved labels mean no identity"
    );
    c.resolve_node_labels(|_| Some("v".into())).unwrap();
    assert!(matches!(c.verdict(None), Verdict::Stamp(_)));
}

#[test]
fn spoofed_copies_are_counted_in_any_case() {
    let c = config(r#"{"mode": "strip_only"}"#);
    let names = [
        "cf-app-id",
        "CF-App-Id",
        "x-cf-app-id",
        "cf-space-id",
        "cf-app-idx",
        "cf-organization-id",
    ];
    let found = c.spoofed(names);
    assert_eq!(found.lines, 4);
    assert_eq!(
        found.spellings,
        ["cf-app-id", "cf-space-id", "cf-organization-id"]
    );
}

#[test]
fn underscore_spellings_are_the_same_header() {
    let c = config(r#"{"mode": "strip_only", "header_names": {"app_guid": "X-App-Guid"}}"#);
    let names = [
        "CF_App_Id",
        "cf_space_id",
        "CF_SPACE-ID",
        "x_app_guid",
        "x-app-guid",
        "cf_space_id",
        "cf__space_id",
        "cf_space_idx",
        "cf-space.id",
    ];
    let found = c.spoofed(names);
    assert_eq!(found.lines, 5, "cf_app_id is no longer a configured name");
    assert_eq!(
        found.spellings,
        ["cf_space_id", "cf_space-id", "x_app_guid", "x-app-guid"]
    );
    let none = c.spoofed(["accept", "x_forwarded_for", "cf_app_id"]);
    assert_eq!(none, Default::default());
    assert_eq!(none.spellings.capacity(), 0, "nothing allocated when clean");
}

proptest! {
    /// Whatever a client sends, a configured header name in any case and
    /// with any `_` for `-` is always counted, and anything else never is.
    #[test]
    fn counting_matches_names(headers in proptest::collection::vec(
        prop_oneof!["(?i)cf[-_]app[-_]id", "(?i)cf[-_]space[-_]id", "[a-z_-]{1,12}"], 0..20)) {
        let c = config(r#"{"mode": "strip_only"}"#);
        let expected = headers.iter().filter(|h| {
            let l = h.to_ascii_lowercase().replace('_', "-");
            ["cf-app-id", "cf-app-process-type", "cf-organization-id", "cf-space-id"].contains(&l.as_str())
        }).count() as u64;
        let found = c.spoofed(headers.iter().map(String::as_str));
        prop_assert_eq!(found.lines, expected);
        // Removing every spelling removes every counted line.
        let left = headers.iter().filter(|h| {
            c.names.0.as_slice().iter().any(|n| same_header_name(n, h))
                && !found.spellings.iter().any(|s| s.eq_ignore_ascii_case(h))
        }).count();
        prop_assert_eq!(left, 0);
    }

    #[test]
    fn host_lookup_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..80)) {
        let _ = config(HOSTS).verdict(Some(&raw));
    }
}
