//! `tap policy suggest` and `check` without Envoy: rules suggested from
//! traffic generated out of hidden rules, judged by l7_policy's own verdicts
//! (the hidden rules are l7_policy rules too); secrets kept out of every
//! output; what a path segment is taken for.

// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use l7_policy::config::Config;
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestCaseError, TestRunner};
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use tap_tool::check::{check_one, Checked, Summary};
use tap_tool::policy::run_check;
use tap_tool::record::{parse, HttpRecord, Record};
use tap_tool::report::mask;
use tap_tool::segment::{classify, looks_secret, Segment};
use tap_tool::suggest::{suggest, Options, Suggestion, Template};

/// One recorded request as `tap_http` writes it.
fn line(method: &str, host: Option<&str>, path: &str, principal: Option<&str>) -> String {
    let mut headers = vec![
        json!({"key": ":method", "value": method}),
        json!({"key": ":path", "value": path}),
    ];
    if let Some(h) = host {
        headers.push(json!({"key": ":authority", "value": h}));
    }
    let peer = match principal {
        Some(p) => json!({"principal": p}),
        None => json!({}),
    };
    json!({"http_buffered_trace": {
        "request": {"headers": headers, "trailers": []},
        "response": {"headers": [{"key": ":status", "value": "200"}], "trailers": []},
    }, "peer": peer, "stream_info": {"response_code": 200, "response_code_details": "via_upstream"}})
    .to_string()
}

fn records(lines: &[String]) -> Vec<HttpRecord> {
    let (records, errors) = parse(&lines.join("\n"));
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(records.len(), lines.len());
    records
        .into_iter()
        .map(|r| match r {
            Record::Http(h) => h,
            Record::Tcp(_) => panic!("an HTTP record was written"),
        })
        .collect()
}

/// The suggestion as `tap policy suggest` prints it.
fn l7_text(suggestion: &Suggestion) -> String {
    serde_json::to_string_pretty(&suggestion.l7_policy()).unwrap()
}

fn cnp_text(suggestion: &Suggestion, options: &Options) -> String {
    serde_yaml::to_string(&suggestion.cnp(options)).unwrap()
}

fn load(text: &str) -> Config {
    Config::parse(Some(text.as_bytes())).unwrap_or_else(|e| panic!("{e:?}\n{text}"))
}

fn allowed(config: &Config, record: &HttpRecord) -> bool {
    check_one(config, record).outcome.is_ok()
}

fn paths(suggestion: &Suggestion) -> Vec<String> {
    suggestion.l7_policy()["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["path"].as_str().unwrap().to_string())
        .collect()
}

/// Deterministic draws for values (ids, UUIDs, tokens) and probe choices,
/// from a seed proptest picks (SplitMix64).
struct Draw(u64);

const HEX: &[u8] = b"0123456789abcdef";
const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

impl Draw {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn chars(&mut self, from: &[u8], len: usize) -> String {
        (0..len).map(|_| *self.pick(from) as char).collect()
    }

    fn id(&mut self) -> String {
        (self.next() % 10_000_000_000).to_string()
    }

    /// A lowercase version-4 UUID.
    fn uuid(&mut self) -> String {
        let variant = *self.pick(b"89ab") as char;
        format!(
            "{}-{}-4{}-{variant}{}-{}",
            self.chars(HEX, 8),
            self.chars(HEX, 4),
            self.chars(HEX, 3),
            self.chars(HEX, 3),
            self.chars(HEX, 12),
        )
    }

    /// A random token of 20 to 40 letters of both cases and digits.
    fn token(&mut self) -> String {
        loop {
            let len = 20 + self.below(21);
            let t = self.chars(ALNUM, len);
            let has = |f: fn(&u8) -> bool| t.as_bytes().iter().any(f);
            if has(u8::is_ascii_lowercase) && has(u8::is_ascii_uppercase) && has(u8::is_ascii_digit)
            {
                return t;
            }
        }
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

/// Literal path words of the hidden services.
const WORDS: &[&str] = &[
    "api", "v1", "v2", "users", "orders", "items", "cart", "search", "admin", "health", "status",
    "reports", "export", "import", "profile", "settings", "billing", "invoice", "payments",
    "refunds", "tenants", "groups", "members", "roles", "tokens", "files", "upload", "download",
    "events", "metrics", "audit", "jobs", "queue", "config", "feature", "flags", "notes", "tags",
    "comments", "likes",
];
/// Words no hidden rule has.
const FRESH: &[&str] = &[
    "zebra", "quartz", "nimbus", "ember", "fjord", "glyph", "kayak", "lumen", "orbit", "prism",
];
const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "PATCH"];
const HOSTS: &[&str] = &["api.example.com", "orders.internal"];
const OTHER_HOST: &str = "admin.example.com";
const INTRUDER: &str = "spiffe://cluster.local/ns/outside/sa/intruder";

fn principal(i: usize) -> String {
    format!("spiffe://cluster.local/ns/team{i}/sa/client{i}")
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Word(&'static str),
    Id,
    Uuid,
    Token,
}

/// A rule of the hidden service: what its callers are meant to be allowed.
#[derive(Debug, Clone)]
struct Hidden {
    caller: Option<String>,
    method: &'static str,
    host: &'static str,
    path: Vec<Part>,
}

/// A request instantiated from a hidden rule.
#[derive(Debug, Clone)]
struct Probe {
    caller: Option<String>,
    method: &'static str,
    host: &'static str,
    segments: Vec<String>,
    query: String,
}

impl Probe {
    fn path(&self) -> String {
        format!("/{}{}", self.segments.join("/"), self.query)
    }

    fn line(&self) -> String {
        line(
            self.method,
            Some(self.host),
            &self.path(),
            self.caller.as_deref(),
        )
    }
}

impl Hidden {
    /// The rule as l7_policy writes it: `strict` with the shapes the values
    /// are drawn from, else with the placeholders `suggest` documents for
    /// UUIDs and tokens (`[0-9a-fA-F-]{36}`, `[^/?]+`).
    fn rule(&self, strict: bool) -> Value {
        let parts: Vec<&str> = self
            .path
            .iter()
            .map(|p| match (p, strict) {
                (Part::Word(w), _) => *w,
                (Part::Id, _) => "[0-9]+",
                (Part::Uuid, true) => {
                    "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
                }
                (Part::Uuid, false) => "[0-9a-fA-F-]{36}",
                (Part::Token, true) => "[A-Za-z0-9]{20,40}",
                (Part::Token, false) => "[^/?]+",
            })
            .collect();
        let mut rule = json!({
            "method": self.method,
            "host": self.host.replace('.', "\\."),
            "path": format!("/{}", parts.join("/")),
        });
        if let Some(c) = &self.caller {
            rule["from"] = json!({"principal": {"exact": c}});
        }
        rule
    }

    /// A fresh request this rule allows; its tokens (path and query) in
    /// `secrets`. Probes carry no query: a suggestion allows only the query
    /// names it saw, which the hidden rules (matched without the query) do
    /// not model.
    fn instance(&self, draw: &mut Draw, secrets: &mut Vec<String>, query: bool) -> Probe {
        let segments = self
            .path
            .iter()
            .map(|p| match p {
                Part::Word(w) => w.to_string(),
                Part::Id => draw.id(),
                Part::Uuid => draw.uuid(),
                Part::Token => {
                    let t = draw.token();
                    secrets.push(t.clone());
                    t
                }
            })
            .collect();
        let query = match if query { draw.below(3) } else { 2 } {
            0 => format!("?page={}", draw.below(50)),
            1 => {
                let (token, key) = (draw.token(), draw.token());
                let query = format!("?token={token}&api_key={key}");
                secrets.extend([token, key]);
                query
            }
            _ => String::new(),
        };
        Probe {
            caller: self.caller.clone(),
            method: self.method,
            host: self.host,
            segments,
            query,
        }
    }
}

fn config_of(hidden: &[Hidden], strict: bool) -> Config {
    let rules: Vec<Value> = hidden.iter().map(|h| h.rule(strict)).collect();
    load(&json!({"path_includes_query": false, "rules": rules}).to_string())
}

/// How a probe outside the hidden rules was made from an instance of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Change {
    Method,
    OtherCaller,
    NoCaller,
    Host,
    Word,
    Append,
    Drop,
    UpperUuid,
}

const CHANGES: [Change; 8] = [
    Change::Method,
    Change::OtherCaller,
    Change::NoCaller,
    Change::Host,
    Change::Word,
    Change::Append,
    Change::Drop,
    Change::UpperUuid,
];

/// `probe` changed one way, or `None` where that change does not apply.
fn changed(mut probe: Probe, rule: &Hidden, change: Change, draw: &mut Draw) -> Option<Probe> {
    match change {
        Change::Method => {
            let others: Vec<&'static str> = METHODS
                .iter()
                .copied()
                .filter(|m| *m != probe.method)
                .collect();
            probe.method = *draw.pick(&others);
        }
        Change::OtherCaller => {
            let mut others: Vec<String> = (0..4).map(principal).collect();
            others.push(INTRUDER.into());
            others.retain(|p| Some(p) != probe.caller.as_ref());
            probe.caller = Some(draw.pick(&others).clone());
        }
        Change::NoCaller => {
            probe.caller.take()?;
        }
        Change::Host => {
            probe.host = if probe.host == OTHER_HOST || draw.chance(2) {
                *HOSTS.iter().find(|h| **h != probe.host)?
            } else {
                OTHER_HOST
            };
        }
        Change::Word => {
            let words: Vec<usize> = (0..rule.path.len())
                .filter(|i| matches!(rule.path[*i], Part::Word(_)))
                .collect();
            let at = *draw.pick(&words);
            probe.segments[at] = draw.pick(FRESH).to_string();
        }
        Change::Append => probe.segments.push(draw.pick(FRESH).to_string()),
        Change::Drop => {
            if probe.segments.len() < 2 {
                return None;
            }
            probe.segments.pop();
        }
        Change::UpperUuid => {
            let uuids: Vec<usize> = (0..rule.path.len())
                .filter(|i| rule.path[*i] == Part::Uuid)
                .collect();
            let at = *draw.pick(&uuids);
            probe.segments[at] = probe.segments[at].to_ascii_uppercase();
        }
    }
    Some(probe)
}

fn part() -> impl Strategy<Value = Part> {
    prop_oneof![
        5 => prop::sample::select(WORDS).prop_map(Part::Word),
        2 => Just(Part::Id),
        2 => Just(Part::Uuid),
        1 => Just(Part::Token),
    ]
}

/// Caller, method and host as indexes, resolved once the number of
/// principals and hosts is known.
fn rule() -> impl Strategy<Value = (usize, &'static str, usize, Vec<Part>)> {
    (
        0..5usize,
        prop::sample::select(METHODS),
        0..2usize,
        prop::collection::vec(part(), 1..=5),
    )
}

#[derive(Debug, Clone)]
struct Case {
    hidden: Vec<Hidden>,
    max_literals: usize,
    seed: u64,
}

/// 1 to 8 rules for 2 to 4 principals and anyone, on 1 or 2 hosts; half
/// the time also a family of rules alike but for a word at one position
/// (a REST collection with many sub-resources), which is what a class
/// generalizes.
fn case() -> impl Strategy<Value = Case> {
    let family = (
        rule(),
        prop::sample::subsequence(WORDS, 2..=9),
        any::<prop::sample::Index>(),
    );
    (
        2..=4usize,
        1..=2usize,
        prop::collection::vec(rule(), 1..=8),
        prop::option::of(family),
        1..=6usize,
        any::<u64>(),
    )
        .prop_map(|(principals, hosts, rules, family, max_literals, seed)| {
            let resolve =
                |(caller, method, host, path): (usize, &'static str, usize, Vec<Part>)| Hidden {
                    caller: (caller < principals).then(|| principal(caller)),
                    method,
                    host: HOSTS[host % hosts],
                    path,
                };
            let mut hidden: Vec<Hidden> = rules.into_iter().map(resolve).collect();
            if let Some((base, words, at)) = family {
                let base = resolve(base);
                let at = at.index(base.path.len());
                for w in words {
                    let mut member = base.clone();
                    member.path[at] = Part::Word(w);
                    hidden.push(member);
                }
            }
            Case {
                hidden,
                max_literals,
                seed,
            }
        })
}

/// Counts over every case, for the rates the test prints and bounds.
#[derive(Default)]
struct Tally {
    cases: usize,
    records: usize,
    rules: usize,
    generalized_rules: usize,
    fresh: usize,
    fresh_allowed: usize,
    outside: usize,
    /// Outside probes the suggestion allows: because a class stands for
    /// more words than were seen, or because a UUID or token placeholder
    /// accepts more than the values drawn.
    by_class: usize,
    by_placeholder: usize,
    /// Per change: outside probes, and those the suggestion allows.
    changes: BTreeMap<Change, (usize, usize)>,
}

fn text_of(checked: &[Checked]) -> String {
    checked
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{}\n", c.json(i)))
        .collect()
}

fn run_case(case: &Case, tally: &mut Tally) -> Result<(), TestCaseError> {
    let mut draw = Draw(case.seed);
    let mut secrets = Vec::new();
    let mut lines = Vec::new();
    for rule in &case.hidden {
        for _ in 0..3 {
            lines.push(rule.instance(&mut draw, &mut secrets, true).line());
        }
    }
    let recorded = records(&lines);
    // The templating against hidden rules, for every caller alike; what
    // callers without a certificate may widen is tested on its own.
    let options = Options {
        max_literals: case.max_literals,
        generalize_unauthenticated: true,
        ..Options::default()
    };
    let suggestion = suggest(recorded.iter(), &options);
    let l7 = l7_text(&suggestion);
    let config = load(&l7);
    let strict = config_of(&case.hidden, true);
    let placeholders = config_of(&case.hidden, false);

    for (r, l) in recorded.iter().zip(&lines) {
        prop_assert!(allowed(&strict, r), "the hidden rules allow {l}");
        prop_assert!(allowed(&config, r), "recorded but denied: {l}\n{l7}");
    }
    for path in paths(&suggestion) {
        prop_assert!(!path.contains(".*"), "{path} without --allow-prefix");
    }
    // A class stands for more than `max_literals` words seen where it is.
    let rules = suggestion.l7_policy()["rules"].clone();
    for (i, rule) in suggestion.rules.iter().enumerate() {
        let Template::Segments(segments) = &rule.path else {
            continue;
        };
        let alone = load(&json!({"path_includes_query": false, "rules": [rules[i]]}).to_string());
        for (at, _) in segments
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(s, Segment::Class(_)))
        {
            let words: BTreeSet<String> = recorded
                .iter()
                .filter(|r| allowed(&alone, r))
                .map(|r| r.path().split(['/', '?']).nth(at).unwrap().to_string())
                .collect();
            prop_assert!(
                words.len() > case.max_literals,
                "rule {i} ({}) from {words:?}",
                rule.path.regex()
            );
        }
    }

    // The same records in another order: the same bytes out.
    let mut shuffled = recorded.clone();
    draw.shuffle(&mut shuffled);
    let again = suggest(shuffled.iter(), &options);
    prop_assert_eq!(&l7_text(&again), &l7);
    prop_assert_eq!(cnp_text(&again, &options), cnp_text(&suggestion, &options));
    prop_assert_eq!(again.report(), suggestion.report());

    let mut fresh = Vec::new();
    let mut outside = Vec::new();
    for rule in &case.hidden {
        for _ in 0..3 {
            fresh.push(rule.instance(&mut draw, &mut secrets, false));
        }
        for change in CHANGES {
            let base = rule.instance(&mut draw, &mut secrets, false);
            let applies = match change {
                Change::Word => rule.path.iter().any(|p| matches!(p, Part::Word(_))),
                Change::UpperUuid => rule.path.contains(&Part::Uuid),
                _ => true,
            };
            if applies {
                if let Some(p) = changed(base, rule, change, &mut draw) {
                    outside.push((change, p));
                }
            }
        }
    }
    let fresh_records = records(&fresh.iter().map(Probe::line).collect::<Vec<_>>());
    for (r, p) in fresh_records.iter().zip(&fresh) {
        prop_assert!(allowed(&strict, r), "the hidden rules allow {p:?}");
        tally.fresh += 1;
        if allowed(&config, r) {
            tally.fresh_allowed += 1;
        }
    }
    let outside_records = records(&outside.iter().map(|(_, p)| p.line()).collect::<Vec<_>>());
    for (r, (change, p)) in outside_records.iter().zip(&outside) {
        let suggested = check_one(&config, r);
        // Every request the hidden rules allow, the suggestion allows.
        if allowed(&strict, r) {
            prop_assert!(suggested.outcome.is_ok(), "{p:?}\n{l7}");
            continue;
        }
        tally.outside += 1;
        let counts = tally.changes.entry(*change).or_default();
        counts.0 += 1;
        let Ok(i) = suggested.outcome else {
            continue;
        };
        counts.1 += 1;
        if allowed(&placeholders, r) {
            tally.by_placeholder += 1;
        } else {
            let rule = &suggestion.rules[i];
            prop_assert!(
                rule.path.generalized(),
                "{p:?} is outside the hidden rules, allowed by rule {i} ({}), which no class widened\n{l7}",
                rule.path.regex()
            );
            tally.by_class += 1;
        }
    }

    // No token, from a path or a query, in anything written.
    let cnp = cnp_text(&suggestion, &options);
    let report = suggestion.report();
    let mut checked: Vec<Checked> = recorded.iter().map(|r| check_one(&config, r)).collect();
    checked.extend(outside_records.iter().map(|r| check_one(&config, r)));
    let json_lines = text_of(&checked);
    let check_report = Summary::of(checked).report(&config);
    let denied_everything = load(r#"{"rules": []}"#);
    let (denials, denied) = run_check(
        &denied_everything,
        &recorded.iter().collect::<Vec<_>>(),
        false,
    );
    prop_assert!(denied);
    for s in &secrets {
        for (what, text) in [
            ("l7_policy", &l7),
            ("CNP", &cnp),
            ("suggest report", &report),
            ("check report", &check_report),
            ("check --json", &json_lines),
            ("check report of denials", &denials),
        ] {
            prop_assert!(!text.contains(s.as_str()), "{s} in the {what}:\n{text}");
        }
    }

    tally.cases += 1;
    tally.records += recorded.len();
    tally.rules += suggestion.rules.len();
    tally.generalized_rules += suggestion
        .rules
        .iter()
        .filter(|r| r.path.generalized())
        .count();
    Ok(())
}

/// Rules suggested from traffic allow all of it and every fresh request of
/// the same shape; what they allow beyond the hidden rules is explained by
/// a class (`max_literals`) or the UUID and token placeholders, and the
/// classes' share stays small.
#[test]
fn suggested_rules_against_hidden_rules() {
    let tally = RefCell::new(Tally::default());
    let mut runner = TestRunner::new(RunnerConfig {
        cases: 256,
        failure_persistence: None,
        ..RunnerConfig::default()
    });
    runner
        .run(&case(), |case| run_case(&case, &mut tally.borrow_mut()))
        .unwrap();
    let t = tally.into_inner();
    let rate = |n: usize, of: usize| 100.0 * n as f64 / of.max(1) as f64;
    eprintln!(
        "{} cases, {} recorded requests, {} rules suggested ({} generalized by a class)",
        t.cases, t.records, t.rules, t.generalized_rules
    );
    eprintln!(
        "fresh requests of the hidden rules allowed: {}/{} ({:.1}%)",
        t.fresh_allowed,
        t.fresh,
        rate(t.fresh_allowed, t.fresh)
    );
    eprintln!(
        "probes outside the hidden rules: {}; allowed through a class: {} ({:.2}%), through the UUID or token placeholder: {} ({:.2}%)",
        t.outside,
        t.by_class,
        rate(t.by_class, t.outside),
        t.by_placeholder,
        rate(t.by_placeholder, t.outside)
    );
    for (change, (n, allowed)) in &t.changes {
        eprintln!("    {change:?}: {allowed}/{n} allowed");
    }
    assert_eq!(t.fresh_allowed, t.fresh, "ids, UUIDs and tokens generalize");
    assert!(t.generalized_rules > 0, "some case made a class");
    assert!(t.by_class > 0, "some probe tested a class");
    assert!(
        rate(t.by_class, t.outside) < 5.0,
        "classes allow too much beyond the hidden rules"
    );
}

const CALLER: &str = "spiffe://cluster.local/ns/shop/sa/frontend";
const HOST: &str = "api.example.com";

/// Secrets in paths and queries, each as it is sent.
const SECRETS: &[(&str, &str)] = &[
    ("alice@example.com", "/users/alice@example.com/profile"),
    ("bob%40corp.example", "/users/bob%40corp.example/settings"),
    (
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
        "/sessions/eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c/refresh",
    ),
    (
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "/blobs/sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    ),
    ("d41d8cd98f00b204e9800998ecf8427e", "/objects/d41d8cd98f00b204e9800998ecf8427e"),
    ("sk_live_4eC39HqLyjWDarjtT1zdp7dc", "/v1/keys/sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
    (
        "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
        "/hooks/ghp_16C7e42F292c6912E7710c838347Ae178B4a/deliveries",
    ),
    ("AKIAIOSFODNN7EXAMPLE", "/aws/AKIAIOSFODNN7EXAMPLE/usage"),
    ("JBSWY3DPEHPK3PXP", "/totp/JBSWY3DPEHPK3PXP"),
    ("xk9qmzpwrtbnhvcjlsda", "/s/xk9qmzpwrtbnhvcjlsda"),
    (
        "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY",
        "/maps/AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY/tiles",
    ),
    // A card number is an id to a rule, but not printed in a report.
    ("4111111111111111", "/cards/4111111111111111/charges"),
    ("tok_9fQ2xLm7", "/search?q=shoes&token=tok_9fQ2xLm7&api_key=KEY-short-123"),
    ("KEY-short-123", "/search?q=shoes&token=tok_9fQ2xLm7&api_key=KEY-short-123"),
    ("hunter2", "/login?user=carol&password=hunter2"),
];

/// No secret of a path or query appears in the suggestion (l7_policy, CNP,
/// report) or in what `check` prints, as a report or `--json` lines.
#[test]
fn secrets_stay_out_of_every_output() {
    let lines: Vec<String> = SECRETS
        .iter()
        .map(|(_, path)| line("GET", Some(HOST), path, Some(CALLER)))
        .collect();
    let recorded = records(&lines);
    let options = Options::default();
    let suggestion = suggest(recorded.iter(), &options);
    let l7 = l7_text(&suggestion);
    let config = load(&l7);
    assert!(recorded.iter().all(|r| allowed(&config, r)), "{l7}");
    let all: Vec<&HttpRecord> = recorded.iter().collect();
    let mut outputs = vec![
        ("l7_policy".to_string(), l7.clone()),
        ("CNP".into(), cnp_text(&suggestion, &options)),
        ("suggest report".into(), suggestion.report()),
        ("check --json".into(), run_check(&config, &all, true).0),
    ];
    // Denied one by one, each request is printed in its report.
    let deny_all = load(r#"{"rules": [{"method": "OPTIONS"}]}"#);
    for (r, (_, path)) in recorded.iter().zip(SECRETS) {
        let (report, denied) = run_check(&deny_all, &[r], false);
        assert!(denied);
        outputs.push((format!("check report of {path}"), report));
    }
    outputs.push(("denied --json".into(), run_check(&deny_all, &all, true).0));
    for (secret, path) in SECRETS {
        assert!(path.contains(secret));
        for (what, text) in &outputs {
            assert!(!text.contains(secret), "{secret} in the {what}:\n{text}");
        }
    }
    // What is printed in their place.
    let (report, _) = run_check(&deny_all, &[&recorded[11]], false);
    assert!(
        report.contains("GET api.example.com /cards/{id}/charges  from spiffe://"),
        "{report}"
    );
    let (report, _) = run_check(&deny_all, &[&recorded[12]], false);
    assert!(
        report.contains("/search?q=…&token=…&api_key=…  from spiffe://"),
        "{report}"
    );
}

/// Segments that are names stay literal; `2024-11-29` is a date, kept as a
/// word (a day's paths are not secret; `max_literals` makes a class of many).
#[test]
fn names_stay_literal() {
    for word in [
        "v1",
        "api",
        "request-landing",
        "index.html",
        "v2beta1",
        "healthz",
        ".well-known",
        "user-profile-settings",
        "internationalization",
        "2024-11-29",
        "2024-11-29T10:00:00Z",
        "apiextensions.k8s.io",
        "grpc.health.v1.Health",
        "oauth2-authorization-callback",
        "node-v20.11.1-darwin-arm64.tar.gz",
        "e2e-tests-2024-11-29-run-15",
        "ISO-8859-1-ENCODED-TEXT",
        "strengths-2024-report",
    ] {
        assert!(!looks_secret(word), "{word}");
        assert_eq!(classify(word), Segment::Literal(word.into()));
    }
}

#[test]
fn ids_and_uuids() {
    for id in ["0", "42", "9007199254740993"] {
        assert_eq!(classify(id), Segment::Id, "{id}");
    }
    for uuid in [
        "0b5c1f43-9c8e-4f6a-b2d7-3e1a9f0c4d21",
        "0B5C1F43-9C8E-4F6A-B2D7-3E1A9F0C4D21",
    ] {
        assert_eq!(classify(uuid), Segment::Uuid, "{uuid}");
    }
    // One character short, or a dash out of place: not a UUID.
    assert_ne!(
        classify("0b5c1f43-9c8e-4f6a-b2d7-3e1a9f0c4d2"),
        Segment::Uuid
    );
    assert_ne!(
        classify("0b5c1f439-c8e-4f6a-b2d7-3e1a9f0c4d21"),
        Segment::Uuid
    );
    assert_eq!(classify(""), Segment::Literal(String::new()));
}

#[test]
fn secret_looking_segments_are_tokens() {
    for (secret, _) in &SECRETS[..11] {
        assert!(looks_secret(secret), "{secret}");
        assert_eq!(classify(secret), Segment::Token, "{secret}");
    }
    // The price of never leaking a mixed-case key: a camel-case name with a
    // digit is taken for one, matched as `[^/?]+` and printed as `{token}`.
    for name in ["listS3BucketObjects", "getCustomerOrdersV2"] {
        assert_eq!(classify(name), Segment::Token, "{name}");
    }
}

/// Random tokens by alphabet, 20 to 40 characters with a digit: the share
/// taken for secrets. Lowercase letters with few digits can read like
/// words; every other alphabet is always caught.
#[test]
fn random_tokens_are_tokens() {
    let mut draw = Draw(1);
    for (name, alphabet, at_least) in [
        ("base62", ALNUM, 100.0),
        ("hex", HEX, 100.0),
        ("base32", &b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"[..], 100.0),
        (
            "lowercase and digits",
            &b"abcdefghijklmnopqrstuvwxyz0123456789"[..],
            99.5,
        ),
    ] {
        let (mut drawn, mut caught) = (0, 0);
        while drawn < 20_000 {
            let len = 20 + draw.below(21);
            let token = draw.chars(alphabet, len);
            let digits = token.bytes().filter(u8::is_ascii_digit).count();
            if digits == 0 || digits == len {
                continue;
            }
            drawn += 1;
            if classify(&token) == Segment::Token {
                caught += 1;
            }
        }
        let share = 100.0 * caught as f64 / drawn as f64;
        eprintln!("{name}: {caught}/{drawn} ({share:.2}%) taken for secrets");
        assert!(share >= at_least, "{name}: {share:.2}%");
    }
}

#[test]
fn reports_mask_secrets_and_query_values() {
    assert_eq!(mask("/orders/12345/items"), "/orders/12345/items");
    assert_eq!(
        mask("/cards/4111111111111111/x?token=abc&api_key=xyz&flag"),
        "/cards/{id}/x?token=…&api_key=…&flag=…"
    );
    assert_eq!(mask("/u/alice@example.com"), "/u/{token}");
    assert_eq!(
        mask("/r?sk_live_4eC39HqLyjWDarjtT1zdp7dc=1"),
        "/r?{token}=…"
    );
}

/// `--allow-prefix`: everything under the prefix is one `PREFIX.*` rule per
/// caller, method and host; without it no path has `.*`.
#[test]
fn allow_prefix_makes_one_rule() {
    let statics = [
        "/static/app.js",
        "/static/css/site.css",
        "/static/img/logo/x.png",
        "/static/v2/a/b/c.js?v=3",
    ];
    let mut lines = Vec::new();
    for caller in [Some(CALLER), None] {
        for path in statics.iter().chain(&["/api/users/12", "/static"]) {
            lines.push(line("GET", Some(HOST), path, caller));
        }
    }
    let recorded = records(&lines);
    let options = Options {
        allow_prefixes: vec!["/static/".into()],
        ..Options::default()
    };
    let suggestion = suggest(recorded.iter(), &options);
    let config = load(&l7_text(&suggestion));
    assert!(recorded.iter().all(|r| allowed(&config, r)));
    let prefixed: Vec<_> = suggestion
        .rules
        .iter()
        .filter(|r| r.path == Template::Prefix("/static/".into()))
        .collect();
    assert_eq!(prefixed.len(), 2, "{}", suggestion.report());
    for r in &prefixed {
        assert_eq!(r.path.regex(), "/static/.*");
        assert_eq!(r.seen, statics.len());
        assert!(r.path.generalized());
    }
    assert!(suggestion.report().contains("GET api.example.com/static/…"));
    for path in paths(&suggestion) {
        assert!(path == "/static/.*" || !path.contains(".*"), "{path}");
    }
    let probe = |path: &str| records(&[line("GET", Some(HOST), path, None)]).remove(0);
    assert!(allowed(&config, &probe("/static/fonts/new/deep.woff2")));
    assert!(!allowed(&config, &probe("/staticfoo")));
    assert!(!allowed(&config, &probe("/api/users/12/secrets")));

    let without = suggest(recorded.iter(), &Options::default());
    assert!(without.rules.len() > suggestion.rules.len());
    for path in paths(&without) {
        assert!(!path.contains(".*"), "{path}");
    }
}

/// A path that ends in `/`, or a root `/`, beside more words than
/// `max_literals` at that position: the class (one character or more) is
/// made of the words, and the empty segment stays itself.
#[test]
fn empty_segments_stay_out_of_classes() {
    let mut paths = vec!["/", "/x/"];
    paths.extend(["/x/a", "/x/b", "/x/c", "/x/d", "/x/e", "/x/f", "/y", "/z"]);
    let lines: Vec<String> = paths
        .iter()
        .map(|p| line("GET", Some(HOST), p, Some(CALLER)))
        .collect();
    let recorded = records(&lines);
    for max_literals in [0, 1, 5] {
        let options = Options {
            max_literals,
            ..Options::default()
        };
        let suggestion = suggest(recorded.iter(), &options);
        let l7 = l7_text(&suggestion);
        let config = load(&l7);
        for (r, p) in recorded.iter().zip(&paths) {
            assert!(
                allowed(&config, r),
                "{p} with max_literals {max_literals}\n{l7}"
            );
        }
        assert!(suggestion.rules.iter().any(|r| r.path.generalized()));
    }
}

fn drop_rules(suggestion: &Suggestion, keep: impl Fn(&Value) -> bool) -> (Config, Vec<Value>) {
    let mut policy = suggestion.l7_policy();
    let rules: Vec<Value> = policy["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| keep(r))
        .cloned()
        .collect();
    policy["rules"] = Value::Array(rules.clone());
    (load(&policy.to_string()), rules)
}

/// A policy without a rule some recorded requests need: `check` says they
/// would be denied (the command exits 1), under the rule that came nearest
/// and the field that failed it.
#[test]
fn check_groups_denials_by_nearest_rule() {
    let requests = [
        ("GET", "/orders/1"),
        ("GET", "/orders/2"),
        ("POST", "/orders/3"),
        ("DELETE", "/orders/4"),
        ("POST", "/orders/5/cancel"),
        ("GET", "/orders/6/../../admin"),
    ];
    let lines: Vec<String> = requests
        .iter()
        .map(|(m, p)| line(m, Some(HOST), p, Some(CALLER)))
        .collect();
    let recorded = records(&lines);
    let all: Vec<&HttpRecord> = recorded.iter().collect();
    let suggestion = suggest(recorded.iter(), &Options::default());
    assert_eq!(suggestion.left_out.values().sum::<usize>(), 1);
    let full = load(&l7_text(&suggestion));
    let (report, denied) = run_check(&full, &all[..5], false);
    assert!(!denied, "{report}");
    assert!(
        report.starts_with("5 requests: 5 allowed, 0 would be denied\n"),
        "{report}"
    );

    let (config, rules) = drop_rules(&suggestion, |r| {
        r["method"] != "DELETE" && !r["path"].as_str().unwrap().ends_with("cancel")
    });
    let index = |method: &str| rules.iter().position(|r| r["method"] == method).unwrap();
    let (get, post) = (index("GET"), index("POST"));
    let (report, denied) = run_check(&config, &all, false);
    assert!(denied);
    assert!(
        report.starts_with("6 requests: 3 allowed, 3 would be denied\n"),
        "{report}"
    );
    let expect = [
        format!(
            "DENIED 1 request: no rule allows the method\n    DELETE api.example.com /orders/4  from {CALLER}  (recorded 200)\n"
        ),
        format!(
            "DENIED 1 request: nearest rule {post} (method POST, path, host, from): the path does not match\n    POST api.example.com /orders/5/cancel  from {CALLER}  (recorded 200)\n"
        ),
        format!("DENIED 1 request: invalid path (dot-segment)\n    GET api.example.com /orders/6/../../admin  from {CALLER}  (recorded 200)\n"),
        format!("rule {get}: allowed 2 requests\n"),
        format!("rule {post}: allowed 1 request\n"),
    ];
    for e in &expect {
        assert!(report.contains(e.as_str()), "{e}\nnot in\n{report}");
    }

    let (lines, denied) = run_check(&config, &all, true);
    assert!(denied);
    let verdicts: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(verdicts.len(), 6);
    assert_eq!(
        verdicts[0],
        json!({"record": 0, "method": "GET", "host": HOST, "path": "/orders/1", "caller": CALLER,
               "verdict": "allowed", "rule": get, "status": null, "recorded_status": 200, "why": null})
    );
    assert_eq!(
        verdicts[3],
        json!({"record": 3, "method": "DELETE", "host": HOST, "path": "/orders/4", "caller": CALLER,
               "verdict": "denied", "rule": null, "status": 403, "recorded_status": 200,
               "why": "no rule allows the method"})
    );
    assert_eq!(
        verdicts[4]["why"],
        format!("nearest rule {post}: the path does not match")
    );
    assert_eq!(verdicts[5]["verdict"], "invalid_path");
    assert_eq!(verdicts[5]["status"], 400);
}

/// A token's template stops at the query: `/files/{token}` recorded without
/// a query allows none, and one with `?page` allows only `page`.
#[test]
fn a_token_segment_does_not_swallow_the_query() {
    let token = "Zx81Kq0PmW3vR7tYb2Ns";
    let recorded = records(&[
        line("GET", Some(HOST), &format!("/files/{token}"), Some(CALLER)),
        line(
            "GET",
            Some(HOST),
            &format!("/pages/{token}?page=2"),
            Some(CALLER),
        ),
    ]);
    let config = load(&l7_text(&suggest(recorded.iter(), &Options::default())));
    let probe = |path: &str| {
        let r = records(&[line("GET", Some(HOST), path, Some(CALLER))]);
        allowed(&config, &r[0])
    };
    assert!(probe("/files/Ab12Cd34Ef56Gh78Ij90"));
    assert!(!probe("/files/Ab12Cd34Ef56Gh78Ij90?admin=1"));
    assert!(probe("/pages/Ab12Cd34Ef56Gh78Ij90?page=3"));
    assert!(!probe("/pages/Ab12Cd34Ef56Gh78Ij90?page=3&admin=1"));
}

/// Query names too many to list within l7_policy's 1024-byte regex limit
/// give any query, marked generalized, and a policy l7_policy loads.
#[test]
fn too_many_query_names_give_any_query() {
    let names: Vec<String> = (0..40)
        .map(|i| {
            format!("utm_tracking_parameter_{}", (b'a' + i % 26) as char)
                .repeat(1 + usize::from(i >= 26))
        })
        .collect();
    let lines: Vec<String> = names
        .iter()
        .map(|n| line("GET", Some(HOST), &format!("/landing?{n}=x"), None))
        .collect();
    let recorded = records(&lines);
    let suggestion = suggest(recorded.iter(), &Options::default());
    assert_eq!(suggestion.rules.len(), 1);
    assert!(suggestion.rules[0].generalized());
    assert!(
        suggestion.report().contains("[generalized]"),
        "{}",
        suggestion.report()
    );
    let config = load(&l7_text(&suggestion));
    assert!(recorded.iter().all(|r| allowed(&config, r)));
    // A handful of names is listed, not generalized.
    let few = records(&lines[..3]);
    let suggestion = suggest(few.iter(), &Options::default());
    assert!(!suggestion.rules[0].generalized());
}

/// Userinfo in the authority and a random tenant label stay out of every
/// output; the rule still allows the recorded requests.
#[test]
fn secret_looking_hosts_are_templated_and_masked() {
    let tenant = "k3j9x0q7m2p8w4z1";
    let hosts = [
        format!("{tenant}.tenants.example.com"),
        "admin:Pa55w0rdXyZ2024qq@api.example.com".to_string(),
    ];
    let lines: Vec<String> = hosts
        .iter()
        .map(|h| line("GET", Some(h), "/status", Some(CALLER)))
        .collect();
    let recorded = records(&lines);
    let options = Options::default();
    let suggestion = suggest(recorded.iter(), &options);
    let config = load(&l7_text(&suggestion));
    assert!(recorded.iter().all(|r| allowed(&config, r)));
    let all: Vec<&HttpRecord> = recorded.iter().collect();
    let outputs = [
        l7_text(&suggestion),
        cnp_text(&suggestion, &options),
        suggestion.report(),
        run_check(&config, &all, true).0,
        run_check(&load(r#"{"rules": []}"#), &all, false).0,
    ];
    for text in &outputs {
        for secret in [tenant, "Pa55w0rdXyZ2024qq", "admin:"] {
            assert!(!text.contains(secret), "{secret} in\n{text}");
        }
    }
    assert!(suggestion.report().contains("{token}.tenants.example.com"));
    assert!(
        outputs[4].contains("{userinfo}@api.example.com"),
        "{}",
        outputs[4]
    );
}

/// In the CiliumNetworkPolicy the host may carry a port (Cilium matches the
/// authority as sent), and a principal that is no SPIFFE ID is left out
/// rather than widened to any caller.
#[test]
fn cnp_hosts_take_a_port_and_unnamed_principals_are_left_out() {
    let recorded = records(&[
        line("GET", Some(HOST), "/a", Some(CALLER)),
        line("GET", Some(HOST), "/b", Some("urn:example:not-spiffe")),
    ]);
    let options = Options::default();
    let cnp = suggest(recorded.iter(), &options).cnp(&options);
    let ingress = cnp["spec"]["ingress"].as_array().unwrap();
    assert_eq!(ingress.len(), 1, "{cnp}");
    let http = &ingress[0]["toPorts"][0]["rules"]["http"][0];
    assert_eq!(http["host"], "api\\.example\\.com(?::[0-9]+)?");
    assert_eq!(http["path"], "/a");
}
