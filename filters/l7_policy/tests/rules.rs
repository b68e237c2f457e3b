//! Cilium semantics on the compiled rules, and the per-method index that
//! decides them against a plain scan of every rule in order.

// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use filter_common::header::pairs::HeaderMap;
use l7_policy::config::Config;
use l7_policy::rule::{Caller, Fix, Mismatch, Repeated, Request};
use proptest::prelude::*;
use serde_json::{json, Value};

fn config(json: &str) -> Config {
    Config::parse(Some(json.as_bytes())).unwrap_or_else(|e| panic!("{json}: {e}"))
}

#[derive(Debug)]
struct Req {
    method: &'static [u8],
    path: &'static str,
    host: Option<&'static str>,
    headers: HeaderMap,
    caller: Caller,
}

fn req(method: &'static str, path: &'static str) -> Req {
    Req {
        method: method.as_bytes(),
        path,
        host: Some("deathstar.default.svc.cluster.local"),
        headers: HeaderMap::default(),
        caller: Caller::default(),
    }
}

impl Req {
    fn header(mut self, name: &str, value: &str) -> Req {
        self.headers.append(name, value.as_bytes());
        self
    }
}

/// Runs `f` on the request as the filter presents it to the rules: the
/// caller bound by the configuration's `principals` table.
fn with_request<T>(c: &Config, r: &Req, f: impl FnOnce(&Request) -> T) -> T {
    let mut caller = r.caller.clone();
    c.bind(&mut caller);
    f(&Request {
        method: r.method,
        path: r.path.as_bytes(),
        host: r.host,
        headers: &r.headers,
        caller: &caller,
        repeated: c.repeated_headers,
    })
}

/// The first matching rule and its fixes: the filter's decision.
fn decide(c: &Config, r: &Req) -> Option<(usize, Vec<Fix>)> {
    with_request(c, r, |request| c.decide(request))
}

/// What `decide` must equal: every rule tried in configuration order.
fn first_match(c: &Config, request: &Request) -> Option<(usize, Vec<Fix>)> {
    c.rules
        .iter()
        .enumerate()
        .find_map(|(i, rule)| Some((i, rule.matches(request)?)))
}

fn allowed(c: &Config, r: &Req) -> bool {
    decide(c, r).is_some()
}

#[test]
fn star_wars() {
    let c = config(r#"{"rules": [{"method": "POST", "path": "/v1/request-landing"}]}"#);
    assert!(allowed(&c, &req("POST", "/v1/request-landing")));
    assert!(!allowed(&c, &req("PUT", "/v1/exhaust-port")));
    assert!(!allowed(&c, &req("GET", "/v1/request-landing")));
}

#[test]
fn anchoring_and_method_case() {
    let c = config(r#"{"rules": [{"method": "GET", "path": "/status"}]}"#);
    assert!(allowed(&c, &req("GET", "/status")));
    assert!(
        !allowed(&c, &req("GET", "/status/200")),
        "implicitly anchored"
    );
    assert!(!allowed(&c, &req("GET", "/v1/status")));
    assert!(!allowed(&c, &req("get", "/status")), "methods are exact");
    assert!(!allowed(&c, &req("GETX", "/status")));
    assert!(
        !allowed(&c, &req("GET", "/status?x=1")),
        "the query is part of :path"
    );
    let regexes = config(r#"{"rules": [{"method": "GET|HEAD", "path": "/public/.*"}]}"#);
    assert!(allowed(&regexes, &req("HEAD", "/public/a/b")));
    assert!(!allowed(&regexes, &req("POST", "/public/a")));
}

#[test]
fn empty_rule_and_no_rules() {
    assert!(allowed(
        &config(r#"{"rules": [{}]}"#),
        &req("DELETE", "/anything")
    ));
    assert!(!allowed(&config(r#"{"rules": []}"#), &req("GET", "/")));
    let e = Config::parse(Some(b"{}")).unwrap_err();
    assert_eq!(e.field, "rules");
    assert!(e.fix.contains("[]"), "{e}");
}

#[test]
fn hosts_are_case_insensitive_regexes() {
    let c = config(r#"{"rules": [{"host": "deathstar\\.default\\.svc\\.cluster\\.local"}]}"#);
    assert!(allowed(&c, &req("GET", "/")));
    let mut upper = req("GET", "/");
    upper.host = Some("DEATHSTAR.default.svc.cluster.local");
    assert!(allowed(&c, &upper));
    let mut other = req("GET", "/");
    other.host = Some("deathstar.default.svc.cluster.local.evil.com");
    assert!(!allowed(&c, &other));
    let mut none = req("GET", "/");
    none.host = None;
    assert!(!allowed(&c, &none));
}

#[test]
fn headers_presence_and_exact_over_every_value() {
    let c = config(r#"{"rules": [{"headers": ["X-Has-Force", "X-Token: abc"]}]}"#);
    assert!(allowed(
        &c,
        &req("GET", "/")
            .header("x-has-force", "")
            .header("x-token", "abc")
    ));
    assert!(
        !allowed(&c, &req("GET", "/").header("x-token", "abc")),
        "presence"
    );
    assert!(!allowed(
        &c,
        &req("GET", "/")
            .header("x-has-force", "1")
            .header("x-token", "abcd")
    ));
    // A repeated header is the comma-joined list of its values, as Envoy presents it.
    let repeated = req("GET", "/")
        .header("x-has-force", "1")
        .header("x-token", "abc")
        .header("x-token", "evil");
    assert!(!allowed(&c, &repeated), "never just the first value");
    let joined = req("GET", "/")
        .header("x-has-force", "1")
        .header("x-token", "ab")
        .header("x-token", "c");
    assert!(!allowed(&c, &joined));
    let exact_list = config(r#"{"rules": [{"headers": ["X-Token: abc,evil"]}]}"#);
    assert!(allowed(
        &exact_list,
        &req("GET", "/")
            .header("x-token", "abc")
            .header("x-token", "evil")
    ));
    let any =
        config(r#"{"rules": [{"headers": ["X-Token: abc"]}], "repeated_headers": "any_value"}"#);
    assert_eq!(any.repeated_headers, Repeated::AnyValue);
    assert!(allowed(
        &any,
        &req("GET", "/")
            .header("x-token", "evil")
            .header("x-token", "abc")
    ));
    assert!(!allowed(&any, &req("GET", "/").header("x-token", "evil")));
    assert!(
        !allowed(
            &c,
            &req("GET", "/")
                .header("x-has-force", "1")
                .header("x-token", " abc")
        ),
        "no trimming"
    );
}

#[test]
fn header_matches_actions() {
    let c = config(
        r#"{"rules": [{"path": "/a", "headerMatches": [
            {"name": "X-Mode", "value": "safe"},
            {"name": "X-Log", "value": "1", "mismatch": "LOG"},
            {"name": "X-Add", "value": "added", "mismatch": "ADD"},
            {"name": "X-Del", "value": "keep", "mismatch": "DELETE"},
            {"name": "X-Rep", "value": "new", "mismatch": "REPLACE"}
        ]}]}"#,
    );
    assert!(
        !allowed(&c, &req("GET", "/a")),
        "no mismatch action: the rule fails"
    );
    let (_, fixes) = decide(
        &c,
        &req("GET", "/a")
            .header("x-mode", "safe")
            .header("x-del", "drop"),
    )
    .unwrap();
    let actions: Vec<(Mismatch, &str)> =
        fixes.iter().map(|f| (f.action, f.name.as_str())).collect();
    assert_eq!(
        actions,
        [
            (Mismatch::Log, "x-log"),
            (Mismatch::Add, "x-add"),
            (Mismatch::Delete, "x-del"),
            (Mismatch::Replace, "x-rep")
        ]
    );
    let all_good = req("GET", "/a")
        .header("x-mode", "safe")
        .header("x-log", "1")
        .header("x-add", "added")
        .header("x-del", "keep")
        .header("x-rep", "new");
    assert_eq!(decide(&c, &all_good).unwrap().1, vec![]);
}

#[test]
fn from_requires_a_verified_caller_unless_told_otherwise() {
    let c = config(
        r#"{"rules": [
            {"path": "/v1/request-landing", "from": {"labels": {"org": "empire"}}},
            {"path": "/open", "from": {"namespace": "rebels", "allow_unverified": true}},
            {"path": "/admin", "from": {"principal": {"regex": "spiffe://cluster\\.local/ns/empire/sa/.*"}}}
        ]}"#,
    );
    let mut empire = req("POST", "/v1/request-landing");
    empire.caller.labels.push(("org".into(), "empire".into()));
    assert!(!allowed(&c, &empire), "unverified labels are not trusted");
    empire.caller.verified = true;
    empire.caller.principal = Some("spiffe://cluster.local/ns/default/sa/tiefighter".into());
    assert!(
        !allowed(&c, &empire),
        "verified by namespace alone: the labels are the sidecar's word"
    );
    empire.caller.service_account = Some("tiefighter".into());
    assert!(
        !allowed(&c, &empire),
        "the certificate's service account: still the sidecar's labels"
    );
    let mut rebel = req("GET", "/open");
    rebel.caller.namespace = Some("rebels".into());
    assert!(allowed(&c, &rebel), "allow_unverified");
    let mut admin = req("GET", "/admin");
    assert!(!allowed(&c, &admin));
    admin.caller.principal = Some("spiffe://cluster.local/ns/empire/sa/vader".into());
    assert!(allowed(&c, &admin));
    admin.caller.principal = Some("spiffe://cluster.local/ns/empire-evil/sa/x".into());
    assert!(!allowed(&c, &admin));
}

#[test]
fn errors_name_the_rule_and_field() {
    for (json, field) in [
        (r#"{"rules": [{}, {"path": "("}]}"#, "rules[1].path"),
        (r#"{"rules": [{"method": "[a-"}]}"#, "rules[0].method"),
        (r#"{"rules": [{"paths": "/"}]}"#, "rules[0].paths"),
        (
            r#"{"rules": [{"headers": ["Bad Header: x"]}]}"#,
            "rules[0].headers[0]",
        ),
        (
            r#"{"rules": [{"headerMatches": [{"name": "x", "secret": {"name": "s"}}]}]}"#,
            "rules[0].headerMatches[0].secret",
        ),
        (
            r#"{"rules": [{"headerMatches": [{"name": "x", "mismatch": "ADD"}]}]}"#,
            "rules[0].headerMatches[0].value",
        ),
        (
            r#"{"rules": [{"headerMatches": [{"name": "x", "value": "v", "mismatch": "DROP"}]}]}"#,
            "rules[0].headerMatches[0].mismatch",
        ),
        (r#"{"rules": [{"from": {}}]}"#, "rules[0].from"),
        (
            r#"{"rules": [{"from": {"principal": {"prefix": "x"}}}]}"#,
            "rules[0].from.principal.prefix",
        ),
        (r#"{"rules": [], "deny": {"status": 99}}"#, "deny.status"),
        (
            r#"{"rules": [], "deny": {"headers": {"x": "a\nb"}}}"#,
            "deny.headers.x",
        ),
        (r#"{"rules": [], "log": {"denied": "loud"}}"#, "log.denied"),
        (r#"{"rules": {}}"#, "rules"),
    ] {
        let e = Config::parse(Some(json.as_bytes())).expect_err(json);
        assert_eq!(e.field, field, "{json}: {e}");
    }
}

#[test]
fn defaults_and_options() {
    let c = config(r#"{"rules": []}"#);
    assert_eq!(
        (c.deny.status, c.deny.body.as_str()),
        (403, "Access denied\r\n")
    );
    assert_eq!(
        c.deny.headers,
        [("content-type".to_string(), "text/plain".to_string())]
    );
    assert!(!c.dry_run && c.path_includes_query && c.reject_invalid_paths);
    assert_eq!(c.invalid_path_status, 400);
    assert_eq!(
        (c.log_allowed, c.log_denied),
        (Some(log::Level::Debug), Some(log::Level::Info))
    );
    let o = config(
        r#"{"rules": [], "dry_run": true, "path_includes_query": false, "log": {"allowed": "off"},
                      "deny": {"status": 404, "body": "nope", "headers": {"X-Why": "policy"}}}"#,
    );
    assert!(o.dry_run && !o.path_includes_query);
    assert_eq!(o.log_allowed, None);
    assert_eq!(
        o.deny.headers,
        [("x-why".to_string(), "policy".to_string())]
    );
}

/// Cilium's Star Wars rule (org=empire): a caller in the same namespace with
/// another service account claiming the label is denied. By default claimed
/// labels never count; the `principals` table binds labels to a certificate
/// whatever the caller claims; `trust_claimed_labels` counts claims whose
/// namespace and service account the certificate proves.
#[test]
fn labels_and_workload_count_only_when_the_certificate_attests_them() {
    let rules = r#"[
        {"path": "/v1/request-landing", "from": {"labels": {"org": "empire"}}},
        {"path": "/v1/dock", "from": {"workload": "tiefighter"}}
    ]"#;
    let tiefighter = "spiffe://cluster.local/ns/default/sa/tiefighter";
    let xwing = "spiffe://cluster.local/ns/default/sa/xwing";
    let claim = |path: &'static str, cert: &str, sa: Option<&str>| {
        let mut r = req("POST", path);
        r.caller = Caller {
            principal: Some(cert.into()),
            namespace: Some("default".into()),
            workload: Some("tiefighter".into()),
            labels: vec![("org".to_string(), "empire".to_string())],
            service_account: sa.map(str::to_string),
            verified: true,
            attested: false,
        };
        r
    };
    let strict = config(&format!(r#"{{"rules": {rules}}}"#));
    let c = config(&format!(
        r#"{{"rules": {rules}, "trust_claimed_labels": true}}"#
    ));
    for path in ["/v1/request-landing", "/v1/dock"] {
        for sa in [Some("tiefighter"), Some("xwing"), None] {
            assert!(
                !allowed(&strict, &claim(path, tiefighter, sa)),
                "{path}: claims never count by default"
            );
        }
        assert!(
            allowed(&c, &claim(path, tiefighter, Some("tiefighter"))),
            "{path}"
        );
        assert!(
            !allowed(&c, &claim(path, xwing, None)),
            "{path}: no service account claimed"
        );
        assert!(
            !allowed(&c, &claim(path, xwing, Some("tiefighter"))),
            "{path}: another one"
        );
        assert!(
            !allowed(&c, &claim(path, tiefighter, None)),
            "{path}: namespace alone"
        );
    }
    let bound = config(&format!(
        r#"{{"rules": {rules}, "trust_claimed_labels": true, "principals": {{
            "{tiefighter}": {{"labels": {{"org": "empire"}}, "workload": "tiefighter"}},
            "{xwing}": {{"labels": {{"org": "alliance"}}}}
        }}}}"#
    ));
    for path in ["/v1/request-landing", "/v1/dock"] {
        assert!(
            allowed(&bound, &claim(path, tiefighter, None)),
            "{path}: bound"
        );
        assert!(
            !allowed(&bound, &claim(path, xwing, Some("xwing"))),
            "{path}: the table wins"
        );
        let mut bare = req("POST", path);
        bare.caller.principal = Some(tiefighter.into());
        assert!(allowed(&bound, &bare), "{path}: no metadata needed");
    }
    // Once there is a table, a principal it does not name has no labels,
    // even with a claim its certificate attests.
    let other = claim(
        "/v1/request-landing",
        "spiffe://cluster.local/ns/default/sa/probe",
        Some("probe"),
    );
    assert!(allowed(&c, &other), "attested claim, no table");
    assert!(!allowed(&bound, &other), "not in the table");
}

#[test]
fn principals_table_errors_name_the_field() {
    for (json, field) in [
        (r#"{"rules": [], "principals": []}"#, "principals"),
        (
            r#"{"rules": [], "trust_claimed_labels": 1}"#,
            "trust_claimed_labels",
        ),
        (
            r#"{"rules": [], "principals": {"tiefighter": {"labels": {"org": "empire"}}}}"#,
            "principals.tiefighter",
        ),
        (
            r#"{"rules": [], "principals": {"spiffe://td/ns/a/sa/b": {}}}"#,
            r#"principals."spiffe://td/ns/a/sa/b""#,
        ),
        (
            r#"{"rules": [], "principals": {"spiffe://td/ns/a/sa/b": {"labels": {"org": 1}}}}"#,
            r#"principals."spiffe://td/ns/a/sa/b".labels.org"#,
        ),
        (
            r#"{"rules": [], "principals": {"spiffe://td/ns/a/sa/b": {"app": "x"}}}"#,
            r#"principals."spiffe://td/ns/a/sa/b".app"#,
        ),
    ] {
        let e = Config::parse(Some(json.as_bytes())).expect_err(json);
        assert_eq!(e.field, field, "{json}: {e}");
    }
}

/// The table is looked up by binary search: every principal is found
/// whatever order the configuration lists them in.
#[test]
fn every_principal_in_the_table_is_found() {
    let names: Vec<String> = (0..50)
        .rev()
        .map(|i| format!("spiffe://td/ns/n{}/sa/s{i}", i % 7))
        .collect();
    let table: Vec<String> = names
        .iter()
        .map(|p| format!(r#""{p}": {{"workload": "w-{p}"}}"#))
        .collect();
    let c = config(&format!(
        r#"{{"rules": [{{"from": {{"workload": "x"}}}}], "principals": {{{}}}}}"#,
        table.join(", ")
    ));
    for p in &names {
        let mut caller = Caller {
            principal: Some(p.clone()),
            ..Caller::default()
        };
        c.bind(&mut caller);
        assert!(caller.attested, "{p}");
        assert_eq!(caller.workload.as_deref(), Some(format!("w-{p}").as_str()));
    }
}

/// Methods as rules write them: literals (indexed by method), regexes and
/// an empty literal (tried against every rule without a literal method).
const RULE_METHODS: [&str; 9] = [
    "GET", "POST", "PUT", "", "GET|HEAD", "P.*", "GET?", "[A-Z]+", "(GET)",
];
/// Request methods, including ones no literal names and one not UTF-8.
const METHODS: [&[u8]; 8] = [
    b"GET", b"POST", b"PUT", b"HEAD", b"GE", b"get", b"", b"G\xffT",
];
const RULE_PATHS: [&str; 4] = ["/a", "/a/.*", "/[a-z]+", "/b"];
const PATHS: [&str; 4] = ["/a", "/a/x", "/b", "/"];
const RULE_HOSTS: [&str; 2] = ["a\\.example", "b\\..*"];
const HOSTS: [Option<&str>; 3] = [None, Some("a.example"), Some("b.x")];
const RULE_HEADERS: [&str; 3] = ["X-A", "X-A: 1", "X-B: 2"];
const PRINCIPALS: [&str; 2] = ["spiffe://td/ns/ns1/sa/a", "spiffe://td/ns/ns2/sa/b"];

fn optional<T: Clone + std::fmt::Debug + 'static>(
    choices: &'static [T],
) -> impl Strategy<Value = Option<T>> {
    proptest::option::of(proptest::sample::select(choices))
}

fn header_match() -> impl Strategy<Value = Value> {
    (
        proptest::sample::select(&["x-a", "x-c"][..]),
        proptest::sample::select(&["1", "2"][..]),
        proptest::sample::select(&["", "LOG", "ADD", "DELETE", "REPLACE"][..]),
    )
        .prop_map(|(name, value, mismatch)| {
            let mut m = json!({"name": name, "value": value});
            if !mismatch.is_empty() {
                m["mismatch"] = json!(mismatch);
            }
            m
        })
}

fn from() -> impl Strategy<Value = Value> {
    (
        proptest::sample::select(vec![
            json!({"namespace": "ns1"}),
            json!({"principal": {"exact": PRINCIPALS[0]}}),
            json!({"principal": {"regex": "spiffe://td/ns/ns2/.*"}}),
            json!({"labels": {"app": "x"}}),
            json!({"workload": "w"}),
        ]),
        any::<bool>(),
    )
        .prop_map(|(mut from, allow_unverified)| {
            from["allow_unverified"] = json!(allow_unverified);
            from
        })
}

fn rule() -> impl Strategy<Value = Value> {
    (
        optional(&RULE_METHODS),
        optional(&RULE_PATHS),
        optional(&RULE_HOSTS),
        proptest::sample::subsequence(&RULE_HEADERS[..], 0..=2),
        proptest::collection::vec(header_match(), 0..=2),
        proptest::option::of(from()),
    )
        .prop_map(|(method, path, host, headers, header_matches, from)| {
            let mut rule = json!({});
            for (key, value) in [("method", method), ("path", path), ("host", host)] {
                if let Some(value) = value {
                    rule[key] = json!(value);
                }
            }
            if !headers.is_empty() {
                rule["headers"] = json!(headers);
            }
            if !header_matches.is_empty() {
                rule["headerMatches"] = json!(header_matches);
            }
            if let Some(from) = from {
                rule["from"] = from;
            }
            rule
        })
}

/// A configuration: rules, and the options that change what a rule sees.
fn policy() -> impl Strategy<Value = Config> {
    (
        proptest::collection::vec(rule(), 0..10),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(rules, any_value, trust_claimed_labels, table)| {
            let mut document = json!({
                "rules": rules,
                "trust_claimed_labels": trust_claimed_labels,
                "repeated_headers": if any_value { "any_value" } else { "joined" },
            });
            if table {
                document["principals"] =
                    json!({PRINCIPALS[0]: {"workload": "w", "labels": {"app": "x"}}});
            }
            config(&document.to_string())
        })
}

fn caller() -> impl Strategy<Value = Caller> {
    (
        optional(&PRINCIPALS),
        optional(&["ns1", "ns2"]),
        optional(&["w", "v"]),
        any::<bool>(),
        optional(&["a", "b"]),
        any::<bool>(),
    )
        .prop_map(
            |(principal, namespace, workload, app, service_account, verified)| Caller {
                principal: principal.map(str::to_string),
                namespace: namespace.map(str::to_string),
                workload: workload.map(str::to_string),
                labels: app
                    .then(|| ("app".to_string(), "x".to_string()))
                    .into_iter()
                    .collect(),
                service_account: service_account.map(str::to_string),
                verified,
                attested: false,
            },
        )
}

fn request() -> impl Strategy<Value = Req> {
    let header = (
        proptest::sample::select(&["x-a", "x-b", "x-c"][..]),
        proptest::sample::select(&["1", "2", ""][..]),
    );
    (
        proptest::sample::select(&METHODS[..]),
        proptest::sample::select(&PATHS[..]),
        proptest::sample::select(&HOSTS[..]),
        proptest::collection::vec(header, 0..4),
        caller(),
    )
        .prop_map(|(method, path, host, headers, caller)| {
            let mut r = Req {
                method,
                path,
                host,
                headers: HeaderMap::default(),
                caller,
            };
            for (name, value) in headers {
                r.headers.append(name, value.as_bytes());
            }
            r
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Trying only the rules a request's method can match, merged in order,
    /// decides as trying every rule in order.
    #[test]
    fn the_method_index_decides_as_every_rule_in_order(
        c in policy(),
        requests in proptest::collection::vec(request(), 1..8),
    ) {
        for r in &requests {
            let (indexed, scanned) =
                with_request(&c, r, |request| (c.decide(request), first_match(&c, request)));
            prop_assert_eq!(indexed, scanned, "{:?}", r);
        }
    }
}

/// What `tap policy check` reports for a denial: the first field each rule
/// fails, in the order the filter tries them.
#[test]
fn explain_names_the_first_field_that_fails() {
    use l7_policy::rule::Miss;
    let c = config(
        r#"{"rules": [{"method": "POST", "path": "/v1/request-landing", "host": "deathstar.*",
            "headers": ["X-Ship"], "headerMatches": [{"name": "x-class", "value": "tie"}]}]}"#,
    );
    let explain = |r: &Req| with_request(&c, r, |request| c.rules[0].explain(request));
    let landing = || req("POST", "/v1/request-landing").header("x-ship", "1");
    assert_eq!(explain(&req("PUT", "/v1/exhaust-port")), Err(Miss::Method));
    assert_eq!(explain(&req("POST", "/v1/exhaust-port")), Err(Miss::Path));
    let mut elsewhere = landing();
    elsewhere.host = Some("alderaan");
    assert_eq!(explain(&elsewhere), Err(Miss::Host));
    assert_eq!(
        explain(&req("POST", "/v1/request-landing")),
        Err(Miss::Header(0))
    );
    assert_eq!(explain(&landing()), Err(Miss::HeaderMatch(0)));
    assert_eq!(explain(&landing().header("x-class", "tie")), Ok(vec![]));
    assert!(Miss::Method < Miss::Path && Miss::Header(3) < Miss::From);
}

/// The verdict on a request's headers: the path check first, then the rules
/// on the path without its query when `path_includes_query` is off.
#[test]
fn verdict_checks_the_path_then_the_rules() {
    use l7_policy::verdict::Verdict;
    let c = config(
        r#"{"path_includes_query": false, "rules": [{"method": "GET", "path": "/v1/ships/[0-9]+", "host": "deathstar"}]}"#,
    );
    let verdict = |path: &str, authority: &str| {
        let headers = HeaderMap::from_pairs(&[
            (":method", "GET"),
            (":path", path),
            (":authority", authority),
        ]);
        c.verdict(&headers, &Caller::default())
    };
    assert_eq!(
        verdict("/v1/ships/42?x=1", "DeathStar:8080"),
        Verdict::Allowed(0, vec![])
    );
    assert_eq!(verdict("/v1/ships/x", "deathstar"), Verdict::Denied);
    assert_eq!(verdict("/v1/ships/42", "alderaan"), Verdict::Denied);
    assert!(matches!(
        verdict("/v1/ships/../42", "deathstar"),
        Verdict::InvalidPath(_)
    ));
    let headers = HeaderMap::from_pairs(&[(":method", "GET"), (":path", "/v1/ships/x")]);
    assert_eq!(
        c.misses(&headers, &Caller::default()),
        vec![(0, l7_policy::rule::Miss::Path)]
    );
}
