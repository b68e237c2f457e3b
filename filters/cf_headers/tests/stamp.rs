use cf_headers::config::Config;
use cf_headers::stamp::*;
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
    assert_eq!(c.identities[i].app_guid(), "a");
    let Verdict::Stamp(i) = c.verdict(Some(b"x.apps.example.com")) else {
        panic!()
    };
    assert_eq!(c.identities[i].app_guid(), "w");
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
    assert_eq!(c.count_spoofed(names), 4);
}

proptest! {
    /// Whatever a client sends, a configured header name is always counted
    /// and anything else never is.
    #[test]
    fn counting_matches_names(headers in proptest::collection::vec(
        prop_oneof!["(?i)cf-app-id", "(?i)cf-space-id", "[a-z-]{1,12}"], 0..20)) {
        let c = config(r#"{"mode": "strip_only"}"#);
        let expected = headers.iter().filter(|h| {
            let l = h.to_ascii_lowercase();
            ["cf-app-id", "cf-app-process-type", "cf-organization-id", "cf-space-id"].contains(&l.as_str())
        }).count() as u64;
        prop_assert_eq!(c.count_spoofed(headers.iter().map(String::as_str)), expected);
    }

    #[test]
    fn host_lookup_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..80)) {
        let _ = config(HOSTS).verdict(Some(&raw));
    }
}
