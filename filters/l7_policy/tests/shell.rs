//! The shell, driven callback by callback through the recording host: how
//! it reads the caller (the certificate, and what peer_metadata published
//! in filter state), what it answers, and how many host calls that takes.

// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use filter_common::host::harness::Harness;
use filter_common::host::recording::{self as host, Call};
use filter_common::host::{Action, MapType};

const REQUEST: MapType = MapType::HttpRequestHeaders;
const TIEFIGHTER: &str = "spiffe://cluster.local/ns/default/sa/tiefighter";
const XWING: &str = "spiffe://cluster.local/ns/default/sa/xwing";

fn configure(config: &str) -> Harness {
    match Harness::configure(l7_policy::filter::configure, config) {
        Ok(plugin) => plugin,
        Err(logs) => panic!("configuration refused: {logs:?}"),
    }
}

/// What peer_metadata publishes, and the certificate Envoy holds.
fn caller(principal: Option<&str>, state: &[(&str, &str)]) {
    host::with(|h| {
        if let Some(p) = principal {
            h.set_property(&["connection", "uri_san_peer_certificate"], p.as_bytes());
        }
        for (key, value) in state {
            h.set_property(&[key], value.as_bytes());
        }
    });
}

/// One landing request through `config`: the status of the local reply,
/// or 200 when it was forwarded.
fn landing(config: &str) -> u32 {
    host::with(|h| {
        h.set_map(
            REQUEST,
            &[
                (":method", b"POST"),
                (":path", b"/v1/request-landing"),
                (":authority", b"deathstar"),
            ],
        )
    });
    let mut plugin = configure(config);
    let stream = plugin.stream();
    let action = stream.request_headers(true);
    let reply = host::with(|h| h.replies.last().map(|r| r.status));
    match (action, reply) {
        (Action::Continue, None) => 200,
        (Action::Pause, Some(status)) => status,
        other => panic!("a reply must pause and only a reply: {other:?}"),
    }
}

const EMPIRE: &str = r#"{"rules": [{"method": "POST", "path": "/v1/request-landing", "from": {"labels": {"org": "empire"}}}]"#;

fn with_tail(rules: &str, tail: &str) -> String {
    format!("{rules}{tail}}}")
}

#[test]
fn claimed_labels_do_not_count_by_default() {
    caller(
        Some(TIEFIGHTER),
        &[
            ("peer_labels", r#"{"org":"empire"}"#),
            ("peer_namespace", "default"),
            ("peer_service_account", "tiefighter"),
            ("peer_verified", "true"),
        ],
    );
    assert_eq!(landing(&with_tail(EMPIRE, "")), 403);
}

#[test]
fn claimed_labels_count_when_trusted_and_verified() {
    let config = with_tail(EMPIRE, r#", "trust_claimed_labels": true"#);
    let verified = [
        ("peer_labels", r#"{"org":"empire","class":"tiefighter"}"#),
        ("peer_namespace", "default"),
        ("peer_service_account", "tiefighter"),
        ("peer_verified", "true"),
    ];
    caller(Some(TIEFIGHTER), &verified);
    assert_eq!(landing(&config), 200);
    // The same claim, not verified by peer_metadata, does not count.
    host::with(|h| *h = Default::default());
    let mut unverified = verified;
    unverified[3] = ("peer_verified", "false");
    caller(Some(TIEFIGHTER), &unverified);
    assert_eq!(landing(&config), 403);
}

#[test]
fn labels_that_are_not_a_json_object_of_strings_give_no_labels() {
    let config = with_tail(EMPIRE, r#", "trust_claimed_labels": true"#);
    for labels in [
        r#"["org","empire"]"#,
        r#"{"org":["empire"]}"#,
        r#"{"org":"empire""#,
        "org=empire",
    ] {
        host::with(|h| *h = Default::default());
        caller(
            Some(TIEFIGHTER),
            &[
                ("peer_labels", labels),
                ("peer_namespace", "default"),
                ("peer_service_account", "tiefighter"),
                ("peer_verified", "true"),
            ],
        );
        assert_eq!(landing(&config), 403, "{labels}");
    }
}

#[test]
fn the_principals_table_wins_over_claims() {
    let config = with_tail(
        EMPIRE,
        &format!(r#", "principals": {{"{TIEFIGHTER}": {{"labels": {{"org": "empire"}}}}}}"#),
    );
    caller(Some(TIEFIGHTER), &[]);
    assert_eq!(landing(&config), 200, "the table alone is enough");
    host::with(|h| *h = Default::default());
    // An xwing claiming the empire, verified and trusted: the table decides.
    caller(
        Some(XWING),
        &[
            ("peer_labels", r#"{"org":"empire"}"#),
            ("peer_namespace", "default"),
            ("peer_verified", "true"),
        ],
    );
    assert_eq!(landing(&config), 403);
    // With a table the claimed labels are not even read.
    host::with(|h| {
        let claims = ["peer_labels", "peer_workload"];
        let read: Vec<&String> = h
            .property_reads
            .iter()
            .filter(|r| claims.contains(&r.as_str()))
            .collect();
        assert!(read.is_empty(), "read {read:?}");
    });
}

#[test]
fn a_namespace_rule_needs_the_verified_claim() {
    let config = r#"{"rules": [{"from": {"namespace": "default"}}]}"#;
    caller(Some(XWING), &[("peer_namespace", "default")]);
    assert_eq!(landing(config), 403, "unverified");
    host::with(|h| *h = Default::default());
    caller(
        Some(XWING),
        &[("peer_namespace", "default"), ("peer_verified", "true")],
    );
    assert_eq!(landing(config), 200);
    // Filter state that is not UTF-8 is no namespace at all.
    host::with(|h| *h = Default::default());
    host::with(|h| {
        h.set_property(&["peer_namespace"], b"def\xffault");
        h.set_property(&["peer_verified"], b"true");
    });
    assert_eq!(landing(config), 403, "non-UTF-8");
}

#[test]
fn the_verdict_is_published_in_filter_state() {
    assert_eq!(landing(r#"{"rules": [{"path": "/v1/.*"}]}"#), 200);
    host::with(|h| {
        assert_eq!(h.property(&["l7_verdict"]), Some(&b"allowed"[..]));
        assert_eq!(h.property(&["l7_rule"]), Some(&b"0"[..]));
        assert_eq!(h.counter("l7_policy.rule.0.hits"), 1);
    });
    host::with(|h| *h = Default::default());
    assert_eq!(landing(r#"{"rules": [], "dry_run": true}"#), 200);
    host::with(|h| {
        assert_eq!(h.property(&["l7_verdict"]), Some(&b"dry_run_denied"[..]));
        assert_eq!(h.counter("l7_policy.dry_run_denied"), 1);
    });
}

/// Host calls for an allowed request by a rule without `from`: the
/// header-map read, the verdict in filter state, two counters. No caller
/// is read when no rule needs one.
#[test]
fn host_calls_per_request_stay_within_budget() {
    const BUDGET: usize = 5;
    let config = r#"{"rules": [{"method": "POST", "path": "/v1/request-landing"}]}"#;
    host::with(|h| {
        h.set_map(
            REQUEST,
            &[(":method", b"POST"), (":path", b"/v1/request-landing")],
        )
    });
    let mut plugin = configure(config);
    host::take_calls();
    let stream = plugin.stream();
    assert_eq!(stream.request_headers(true), Action::Continue);
    stream.log();
    stream.delete();
    let tally = match host::within_budget(BUDGET) {
        Ok(tally) => tally,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(tally.get(&Call::GetProperty), None, "{tally:?}");
}

/// A refused path is answered before the caller is read, even when rules
/// need one: a client sending such paths cheaply costs no identity lookups.
#[test]
fn a_refused_path_reads_no_caller() {
    let config = with_tail(EMPIRE, "");
    caller(Some(TIEFIGHTER), &[("peer_namespace", "default")]);
    host::with(|h| {
        h.set_map(
            REQUEST,
            &[(":method", b"POST"), (":path", b"/v1/x/../request-landing")],
        )
    });
    let mut plugin = configure(&config);
    host::take_calls();
    let stream = plugin.stream();
    assert_eq!(stream.request_headers(true), Action::Pause);
    host::with(|h| {
        assert_eq!(h.replies.last().map(|r| r.status), Some(400));
        let peer: Vec<&String> = h
            .property_reads
            .iter()
            .filter(|r| r.starts_with("peer_") || r.contains("uri_san"))
            .collect();
        assert!(peer.is_empty(), "read {peer:?}");
    });
}
