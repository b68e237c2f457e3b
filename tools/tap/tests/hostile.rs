//! The tap tool facing records an attacker helped write: requests sent
//! while traffic was recorded must not widen the policy, a header must not
//! pose as the caller, and nothing a record holds may drive the terminal.

// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use l7_policy::config::Config;
use serde_json::{json, Value};
use tap_tool::check::check_one;
use tap_tool::filter::parse_statuses;
use tap_tool::policy::run_check;
use tap_tool::record::{parse_http, HttpRecord};
use tap_tool::suggest::{suggest, Options};

const TIEFIGHTER: &str = "spiffe://cluster.local/ns/default/sa/tiefighter";
const HOST: &str = "deathstar.default.svc.cluster.local";

/// How the response came about, as tap_http records it.
#[derive(Clone, Copy)]
enum Origin {
    /// The app: `response_code_details` `via_upstream`.
    App,
    /// A filter's local reply (l7_policy's 403).
    LocalReply,
    /// No stream info; the router's `x-envoy-upstream-service-time`.
    AppByHeader,
    /// No stream info and no router header: nothing says.
    Unknown,
}

fn record(
    method: &str,
    path: &str,
    peer: Option<&str>,
    status: u16,
    origin: Origin,
    extra: &[(&str, &str)],
) -> String {
    let mut request = vec![
        json!({"key": ":authority", "value": HOST}),
        json!({"key": ":path", "value": path}),
        json!({"key": ":method", "value": method}),
    ];
    for (k, v) in extra {
        request.push(json!({"key": k, "value": v}));
    }
    let mut response = vec![json!({"key": ":status", "value": status.to_string()})];
    if matches!(origin, Origin::App | Origin::AppByHeader) {
        response.push(json!({"key": "x-envoy-upstream-service-time", "value": "1"}));
    }
    let mut top = json!({"http_buffered_trace": {
        "request": {"headers": request, "trailers": []},
        "response": {"headers": response, "trailers": []}},
        "peer": peer.map_or(json!({}), |p| json!({"principal": p}))});
    match origin {
        Origin::App => {
            top["stream_info"] =
                json!({"response_code": status, "response_code_details": "via_upstream"})
        }
        Origin::LocalReply => {
            top["stream_info"] =
                json!({"response_code": status, "response_code_details": "wasm_local_reply"})
        }
        Origin::AppByHeader | Origin::Unknown => {}
    }
    top.to_string()
}

fn records(lines: &[String]) -> Vec<HttpRecord> {
    let (records, errors) = parse_http(&lines.join("\n"));
    assert!(errors.is_empty(), "{errors:?}");
    records
}

fn load(policy: &Value) -> Config {
    Config::parse(Some(policy.to_string().as_bytes())).unwrap()
}

fn verdict(config: &Config, method: &str, path: &str, peer: Option<&str>) -> &'static str {
    let r = records(&[record(method, path, peer, 200, Origin::App, &[])]);
    check_one(config, &r[0]).verdict()
}

/// The legitimate traffic of the Star Wars demo.
fn legitimate() -> Vec<String> {
    let mut lines = vec![record(
        "POST",
        "/v1/request-landing",
        Some(TIEFIGHTER),
        200,
        Origin::App,
        &[],
    )];
    for path in ["/v1/ships/1", "/v1/ships/2", "/v1/ships/3", "/v1/"] {
        lines.push(record("GET", path, Some(TIEFIGHTER), 200, Origin::App, &[]));
    }
    lines
}

/// Six 404s from a caller without a certificate, a request the policy in
/// force refused (recorded because the tap runs first), and a request whose
/// `x-peer-principal` header claims the tiefighter: none may widen the
/// policy, and the header is no caller.
#[test]
fn what_an_attacker_sends_while_recording_teaches_nothing() {
    let mut lines = legitimate();
    for word in ["a", "b", "c", "d", "e", "f-g"] {
        lines.push(record(
            "GET",
            &format!("/v1/{word}"),
            None,
            404,
            Origin::App,
            &[],
        ));
    }
    lines.push(record(
        "DELETE",
        "/v1/admin",
        Some(TIEFIGHTER),
        403,
        Origin::LocalReply,
        &[],
    ));
    lines.push(record(
        "GET",
        "/v1/ships/4",
        None,
        200,
        Origin::App,
        &[
            ("x-peer-principal", TIEFIGHTER),
            ("x-peer-verified", "true"),
        ],
    ));
    let recorded = records(&lines);
    let suggestion = suggest(recorded.iter(), &Options::default());
    let policy = suggestion.l7_policy();
    let config = load(&policy);
    let text = policy.to_string();
    assert!(!text.contains("[a-z"), "a class from 404s: {text}");
    assert!(!text.contains("admin"), "a refused request learned: {text}");

    for (method, path, peer) in [
        ("GET", "/v1/exhaust-port", None),
        ("GET", "/v1/admin", None),
        ("GET", "/v1/exhaust-port", Some(TIEFIGHTER)),
        ("DELETE", "/v1/admin", Some(TIEFIGHTER)),
        ("DELETE", "/v1/admin", None),
        // The spoofed header gave the tiefighter nothing, and the anonymous
        // caller only the one path it was served.
        ("GET", "/v1/ships/5", None),
    ] {
        assert_eq!(
            verdict(&config, method, path, peer),
            "denied",
            "{method} {path} from {peer:?}\n{text}"
        );
    }
    for (method, path, peer) in [
        ("POST", "/v1/request-landing", Some(TIEFIGHTER)),
        ("GET", "/v1/ships/99", Some(TIEFIGHTER)),
        ("GET", "/v1/ships/4", None),
    ] {
        assert_eq!(
            verdict(&config, method, path, peer),
            "allowed",
            "{method} {path}\n{text}"
        );
    }
    // The anonymous request is for any caller, never for the principal its
    // header named.
    let anonymous = suggestion
        .rules
        .iter()
        .find(|r| r.path.shown().contains("ships/4"))
        .unwrap();
    assert_eq!(anonymous.principal, None);

    let report = suggestion.report();
    for line in [
        "left out: 6 requests, status 404 not learned (--learn-status)\n",
        "left out: 1 request, answered by Envoy or a filter, not the app (local reply 403, wasm_local_reply)\n",
    ] {
        assert!(report.contains(line), "{line:?} not in\n{report}");
    }
}

/// Callers without a certificate: their words stay literal and their
/// secret-looking segments are left out, unless asked.
#[test]
fn unauthenticated_requests_do_not_generalise_unless_asked() {
    let mut lines = Vec::new();
    for word in ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"] {
        lines.push(record(
            "GET",
            &format!("/v1/{word}"),
            None,
            200,
            Origin::App,
            &[],
        ));
    }
    lines.push(record(
        "GET",
        "/v1/files/Zx81Kq0PmW3vR7tYb2Ns",
        None,
        200,
        Origin::App,
        &[],
    ));
    let recorded = records(&lines);
    let strict = suggest(recorded.iter(), &Options::default());
    let config = load(&strict.l7_policy());
    assert_eq!(verdict(&config, "GET", "/v1/alpha", None), "allowed");
    assert_eq!(verdict(&config, "GET", "/v1/golf", None), "denied");
    assert_eq!(
        verdict(&config, "GET", "/v1/files/Ab12Cd34Ef56Gh78Ij90", None),
        "denied"
    );
    assert!(strict
        .report()
        .contains("left out: 1 request, a secret-looking segment (token, UUID, long number) from a caller without a verified certificate"));

    let loose = suggest(
        recorded.iter(),
        &Options {
            generalize_unauthenticated: true,
            ..Options::default()
        },
    );
    let config = load(&loose.l7_policy());
    assert_eq!(verdict(&config, "GET", "/v1/golf", None), "allowed");
    assert_eq!(
        verdict(&config, "GET", "/v1/files/Ab12Cd34Ef56Gh78Ij90", None),
        "allowed"
    );
}

/// Only what the app answered with a chosen status is learned; a record
/// that cannot show who answered is left out, and says why.
#[test]
fn statuses_and_origins_choose_what_is_learned() {
    let lines = vec![
        record("GET", "/ok", None, 204, Origin::App, &[]),
        record("GET", "/moved", None, 302, Origin::App, &[]),
        record("GET", "/by-header", None, 200, Origin::AppByHeader, &[]),
        record("GET", "/unknown", None, 200, Origin::Unknown, &[]),
        record("GET", "/gone", None, 410, Origin::App, &[]),
        record("GET", "/local", None, 200, Origin::LocalReply, &[]),
    ];
    let recorded = records(&lines);
    let learned = |options: &Options| -> Vec<String> {
        suggest(recorded.iter(), options)
            .rules
            .iter()
            .map(|r| r.path.shown())
            .collect()
    };
    assert_eq!(
        learned(&Options::default()),
        ["/by-header", "/moved", "/ok"]
    );
    let report = suggest(recorded.iter(), &Options::default()).report();
    assert!(
        report.contains("left out: 1 request, no proof the app answered"),
        "{report}"
    );
    let gone = Options {
        learn_status: parse_statuses("2xx,410").unwrap(),
        ..Options::default()
    };
    assert_eq!(learned(&gone), ["/by-header", "/gone", "/ok"]);
    assert_eq!(
        parse_statuses("200-299, 304").unwrap(),
        [(200, 299), (304, 304)]
    );
    for bad in ["", "2x", "99", "600", "300-200", "abc", "1xx0"] {
        assert!(parse_statuses(bad).is_err(), "{bad:?}");
    }
    // An incomplete stream proves nothing either.
    let mut incomplete: Value =
        serde_json::from_str(&record("GET", "/cut", None, 200, Origin::App, &[])).unwrap();
    incomplete["incomplete"] = json!(true);
    let r = records(&[incomplete.to_string()]);
    assert!(suggest(r.iter(), &Options::default()).rules.is_empty());
}

/// `check` shows the status each denied request got when it was recorded.
#[test]
fn check_shows_the_recorded_status() {
    let recorded = records(&[
        record("GET", "/v1/a", None, 404, Origin::App, &[]),
        record(
            "DELETE",
            "/v1/admin",
            Some(TIEFIGHTER),
            403,
            Origin::LocalReply,
            &[],
        ),
    ]);
    let config = load(&json!({"rules": [{"method": "GET", "path": "/v1/ships/[0-9]+"}]}));
    let all: Vec<&HttpRecord> = recorded.iter().collect();
    let (report, denied) = run_check(&config, &all, false);
    assert!(denied);
    assert!(
        report.contains("GET deathstar.default.svc.cluster.local /v1/a  (recorded 404)"),
        "{report}"
    );
    assert!(report.contains(&format!("DELETE deathstar.default.svc.cluster.local /v1/admin  from {TIEFIGHTER}  (recorded 403)")), "{report}");
    let (lines, _) = run_check(&config, &all, true);
    let first: Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    assert_eq!(first["recorded_status"], 404);
}

/// What would drive a terminal: an OSC title, a screen clear, a bare
/// carriage return, a bidirectional override.
const EVIL: &str = "\u{1b}]0;PWNED\u{7}\u{1b}[2J\rX\u{202e}";

fn evil_record(peer: &str) -> String {
    json!({"http_buffered_trace": {
        "request": {"headers": [
            {"key": ":authority", "value": format!("h{EVIL}.example")},
            {"key": ":path", "value": format!("/v1/{EVIL}?q{EVIL}=1")},
            {"key": ":method", "value": format!("GET{EVIL}")},
            {"key": format!("x-{EVIL}"), "value": EVIL},
        ], "body": {"as_bytes": base64("line 1\r\nline 2\rX\n"), "truncated": false},
           "trailers": []},
        "response": {"headers": [{"key": ":status", "value": "200"},
                                 {"key": "x-envoy-upstream-service-time", "value": "1"}],
                     "body": {"as_bytes": base64(EVIL), "truncated": false}, "trailers": []}},
        "stream_info": {"start_time": format!("2026{EVIL}"), "response_code_details": format!("via{EVIL}")},
        "peer": {"principal": peer}})
    .to_string()
}

fn base64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// No character that moves the cursor, changes modes or reorders text, but
/// the line feeds (and tabs) a multi-line output is made of, and a carriage
/// return only before a line feed.
fn assert_inert(what: &str, text: &str) {
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let ok = match c {
            '\n' | '\t' => true,
            '\r' => chars.peek() == Some(&'\n'),
            c => !c.is_control() && !('\u{202a}'..='\u{202e}').contains(&c),
        };
        assert!(ok, "{what} prints {c:?}:\n{text:?}");
    }
}

#[test]
fn human_output_escapes_control_characters_and_machine_output_stays_exact() {
    use tap_tool::record::parse;
    use tap_tool::show::{list_line, show};
    let lines = [
        evil_record(&format!("spiffe://cluster.local/ns/a/sa/{EVIL}")),
        evil_record(&format!("spiffe://cluster.local/ns/a/sa/b{EVIL}")),
    ];
    let text = lines.join("\n");
    let (all, errors) = parse(&text);
    assert!(errors.is_empty(), "{errors:?}");
    for r in &all {
        assert_inert("tap list", &list_line(r));
        let shown = show(r);
        assert_inert("tap show", &shown);
        assert!(
            shown.contains("\\x1b]0;PWNED\\x07\\x1b[2J\\rX\\u{202e}"),
            "{shown}"
        );
        assert!(
            shown.contains("line 1\r\nline 2\\rX\n"),
            "line breaks kept, a bare carriage return escaped: {shown}"
        );
    }
    let http = records(&lines);
    let options = Options {
        learn_status: parse_statuses("100-599").unwrap(),
        generalize_unauthenticated: true,
        ..Options::default()
    };
    // The path is refused by l7_policy (a raw control byte): a rule from
    // the method and host alone, by a clean path.
    let mut clean: Value = serde_json::from_str(&lines[0]).unwrap();
    clean["http_buffered_trace"]["request"]["headers"][1]["value"] = json!("/v1/ok");
    clean["stream_info"]["response_code_details"] = json!("via_upstream");
    let mut with_clean = http.clone();
    with_clean.extend(records(&[clean.to_string()]));
    let suggestion = suggest(with_clean.iter(), &options);
    assert!(!suggestion.rules.is_empty());
    assert_inert("suggest report", &suggestion.report());
    let config = load(&json!({"rules": [{"method": "POST"}]}));
    let all_http: Vec<&HttpRecord> = with_clean.iter().collect();
    let (report, _) = run_check(&config, &all_http, false);
    assert_inert("check report", &report);
    // Machine outputs: exact.
    let har = tap_tool::har::har(&all_http);
    assert!(
        har.to_string().contains("\\u001b]0;PWNED\\u0007"),
        "HAR keeps the bytes"
    );
    let (json_lines, _) = run_check(&config, &all_http, true);
    for line in json_lines.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        assert!(v["method"].as_str().unwrap().contains('\u{1b}'));
    }
}

/// Numbers that identify people or pay for things never appear in a
/// policy, a report or `check --json`.
#[test]
fn ssns_and_card_numbers_are_secrets() {
    use tap_tool::segment::looks_secret;
    for secret in [
        "078-05-1120",
        "378282246310005",
        "4111111111111111",
        "4111-1111-1111-1111",
        "6011000990139424",
        "3056930009020004",
    ] {
        assert!(looks_secret(secret), "{secret}");
    }
    for word in ["378282246310006", "12345", "078-05-112", "2026-12-07", "v1"] {
        assert!(!looks_secret(word), "{word}");
    }
    let lines: Vec<String> = ["/v1/people/078-05-1120", "/v1/cards/378282246310005"]
        .iter()
        .map(|p| record("GET", p, Some(TIEFIGHTER), 200, Origin::App, &[]))
        .collect();
    let recorded = records(&lines);
    let all: Vec<&HttpRecord> = recorded.iter().collect();
    let suggestion = suggest(recorded.iter(), &Options::default());
    let config = load(&json!({"rules": []}));
    let (report, _) = run_check(&config, &all, false);
    let (json_lines, _) = run_check(&config, &all, true);
    let cnp = serde_yaml::to_string(&suggestion.cnp(&Options::default())).unwrap();
    for text in [
        suggestion.l7_policy().to_string(),
        suggestion.report(),
        report,
        json_lines,
        cnp,
    ] {
        assert!(
            !text.contains("078-05-1120") && !text.contains("378282246310005"),
            "{text}"
        );
    }
    // From a caller without a certificate they are left out, not templated.
    let anonymous = records(&[record(
        "GET",
        "/v1/people/078-05-1120",
        None,
        200,
        Origin::App,
        &[],
    )]);
    assert!(suggest(anonymous.iter(), &Options::default())
        .rules
        .is_empty());
}

/// `?=x` or `?a&&b` would need a rule admitting nameless parameters: left
/// out. An empty query (`/p?`) allows only itself.
#[test]
fn nameless_query_parameters_are_not_learned() {
    let recorded = records(&[
        record("GET", "/p?=x", Some(TIEFIGHTER), 200, Origin::App, &[]),
        record("GET", "/q?a&&b", Some(TIEFIGHTER), 200, Origin::App, &[]),
        record("GET", "/r?", Some(TIEFIGHTER), 200, Origin::App, &[]),
        record("GET", "/s?a=1", Some(TIEFIGHTER), 200, Origin::App, &[]),
    ]);
    let suggestion = suggest(recorded.iter(), &Options::default());
    let text = suggestion.l7_policy().to_string();
    assert!(
        !text.contains("(?:|") && !text.contains("|)") && !text.contains("(?:)"),
        "{text}"
    );
    assert!(suggestion
        .report()
        .contains("left out: 2 requests, a query parameter without a name"));
    let config = load(&suggestion.l7_policy());
    assert_eq!(verdict(&config, "GET", "/r?", Some(TIEFIGHTER)), "allowed");
    assert_eq!(verdict(&config, "GET", "/r?=x", Some(TIEFIGHTER)), "denied");
    assert_eq!(verdict(&config, "GET", "/s?=x", Some(TIEFIGHTER)), "denied");
    assert_eq!(
        verdict(&config, "GET", "/s?a=2", Some(TIEFIGHTER)),
        "allowed"
    );
}
