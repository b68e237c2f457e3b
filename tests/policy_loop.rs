//! The policy loop in real Envoys: traffic recorded by tap_http behind
//! peer_metadata on an mTLS listener, the policy `tap policy suggest` writes
//! from it, and that policy enforced by l7_policy on replayed requests, which
//! get exactly the verdicts `tap policy check` predicts from their
//! recordings, over HTTP/1.1 and HTTP/2.

// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use harness::client::Proto;
use harness::paths::tap_binary;
use harness::tap::{read_records, record_access_log};
use harness::tls::{Issued, Pki, TlsBridge};
use harness::{wasm_filter, Bootstrap, Envoy, Lcg, Request, Upstream};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Instant;
use tap_tool::record::{parse_http, HttpRecord};

const SHOP: &str = "shop.example.com";
const ADMIN: &str = "admin.example.com:8443";
const FRONTEND: &str = "spiffe://cluster.local/ns/shop/sa/frontend";
const CHECKOUT: &str = "spiffe://cluster.local/ns/shop/sa/checkout";
const OPS: &str = "spiffe://cluster.local/ns/ops/sa/admin";

fn routes() -> Value {
    json!([{"name": "app", "domains": ["*"], "routes": [
        {"match": {"prefix": "/"}, "route": {"cluster": "upstream"}}]}])
}

/// One request: who sends it, and what.
struct Call {
    caller: Option<&'static str>,
    method: &'static str,
    host: &'static str,
    path: String,
}

fn call(
    caller: Option<&'static str>,
    method: &'static str,
    host: &'static str,
    path: &str,
) -> Call {
    Call {
        caller,
        method,
        host,
        path: path.to_string(),
    }
}

fn uuid(rng: &mut Lcg) -> String {
    let hex: String = (0..32)
        .map(|_| *rng.pick(&"0123456789abcdef".chars().collect::<Vec<_>>()))
        .collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// An API-key-like segment: letters of both cases and digits, mixed.
fn token(rng: &mut Lcg) -> String {
    let pools: [Vec<char>; 3] = [
        ('A'..='Z').collect(),
        ('0'..='9').collect(),
        ('a'..='z').collect(),
    ];
    let key: String = (0..24).map(|i| *rng.pick(&pools[i % 3])).collect();
    format!("tok_{key}")
}

/// A word with characters that regexes give a meaning.
const FILE: &str = "/v1/files/report.v2+final(1).pdf";

const CATEGORIES: [&str; 7] = [
    "books", "games", "music", "garden", "tools", "toys", "shoes",
];

/// The traffic the policy is learned from: three callers and one without a
/// certificate, two hosts, decimal ids, UUIDs, tokens, emails, queries, and
/// seven words at one position.
fn training(rng: &mut Lcg) -> Vec<Call> {
    let (f, c, o) = (Some(FRONTEND), Some(CHECKOUT), Some(OPS));
    let mut calls = Vec::new();
    for currency in ["EUR", "USD", "EUR", "JPY"] {
        let id = 1 + rng.below(100_000);
        calls.push(call(
            f,
            "GET",
            SHOP,
            &format!("/v1/products/{id}?currency={currency}"),
        ));
    }
    for page in 1..=2 {
        let id = 1 + rng.below(1000);
        calls.push(call(
            f,
            "GET",
            SHOP,
            &format!("/v1/products/{id}/reviews?page={page}"),
        ));
    }
    for word in CATEGORIES {
        calls.push(call(f, "GET", SHOP, &format!("/v1/categories/{word}")));
    }
    for _ in 0..3 {
        calls.push(call(
            f,
            "POST",
            SHOP,
            &format!("/v1/carts/{}/items", uuid(rng)),
        ));
    }
    for _ in 0..2 {
        calls.push(call(f, "GET", SHOP, &format!("/v1/orders/{}", uuid(rng))));
    }
    calls.push(call(f, "POST", SHOP, "/v1/request-landing"));
    calls.push(call(f, "GET", SHOP, FILE));
    for _ in 0..2 {
        calls.push(call(c, "POST", SHOP, "/v1/orders"));
        calls.push(call(c, "PUT", SHOP, &format!("/v1/orders/{}", uuid(rng))));
        calls.push(call(c, "DELETE", SHOP, &format!("/v1/carts/{}", uuid(rng))));
    }
    for _ in 0..3 {
        calls.push(call(
            c,
            "GET",
            SHOP,
            &format!("/v1/payments/{}/status", token(rng)),
        ));
    }
    for user in ["alice@example.com", "bob@example.org"] {
        calls.push(call(o, "GET", ADMIN, &format!("/v1/users/{user}")));
    }
    for _ in 0..2 {
        let id = 1 + rng.below(10_000);
        calls.push(call(o, "DELETE", ADMIN, &format!("/v1/users/{id}")));
    }
    for report in ["daily", "weekly"] {
        calls.push(call(o, "GET", ADMIN, &format!("/v1/reports/{report}")));
    }
    for _ in 0..2 {
        calls.push(call(None, "GET", SHOP, "/healthz"));
    }
    calls
}

/// What `tap policy check` calls a verdict.
const ALLOWED: &str = "allowed";
const DENIED: &str = "denied";
const INVALID: &str = "invalid_path";

/// Requests the policy was not learned from, each with the verdict the
/// suggested policy is meant to give it.
fn probes(rng: &mut Lcg) -> Vec<(Call, &'static str)> {
    let (f, c, o) = (Some(FRONTEND), Some(CHECKOUT), Some(OPS));
    vec![
        // Fresh values on learned templates.
        (
            call(f, "GET", SHOP, "/v1/products/424242?currency=GBP"),
            ALLOWED,
        ),
        (call(f, "GET", SHOP, "/v1/products/7/reviews"), ALLOWED),
        (call(f, "GET", SHOP, "/v1/categories/kitchen"), ALLOWED),
        (
            call(f, "POST", SHOP, &format!("/v1/carts/{}/items", uuid(rng))),
            ALLOWED,
        ),
        (
            call(c, "PUT", SHOP, &format!("/v1/orders/{}", uuid(rng))),
            ALLOWED,
        ),
        (
            call(
                c,
                "GET",
                SHOP,
                &format!("/v1/payments/{}/status", token(rng)),
            ),
            ALLOWED,
        ),
        (
            call(o, "GET", ADMIN, "/v1/users/carol@example.net"),
            ALLOWED,
        ),
        (call(o, "DELETE", ADMIN, "/v1/users/99"), ALLOWED),
        (
            call(o, "GET", "admin.example.com", "/v1/reports/daily"),
            ALLOWED,
        ),
        (
            call(f, "GET", "Shop.Example.COM", "/v1/products/5"),
            ALLOWED,
        ),
        (
            call(f, "GET", "shop.example.com.", "/v1/products/6"),
            ALLOWED,
        ),
        (call(None, "GET", SHOP, "/healthz"), ALLOWED),
        (call(o, "GET", SHOP, "/healthz"), ALLOWED),
        (call(f, "GET", SHOP, FILE), ALLOWED),
        // Never seen.
        (call(f, "DELETE", SHOP, "/v1/products/1"), DENIED),
        (call(f, "PUT", SHOP, "/v1/exhaust-port"), DENIED),
        (call(f, "GET", SHOP, "/v1/unknown"), DENIED),
        (
            call(f, "GET", "other.example.com", "/v1/products/1"),
            DENIED,
        ),
        (
            call(f, "PUT", SHOP, &format!("/v1/orders/{}", uuid(rng))),
            DENIED,
        ),
        (call(None, "GET", SHOP, "/v1/products/1"), DENIED),
        (call(f, "GET", SHOP, "/v1/categories/Kitchen"), DENIED),
        (call(f, "GET", SHOP, "/v1/products/12abc"), DENIED),
        (call(o, "GET", ADMIN, "/v1/reports/monthly"), DENIED),
        (call(f, "GET", SHOP, "/v1/products/1/reviews/2"), DENIED),
        // What the file's name would match if its `.`, `+` or `()` were
        // taken as regex syntax.
        (
            call(f, "GET", SHOP, "/v1/files/reportXv2+final(1).pdf"),
            DENIED,
        ),
        (
            call(f, "GET", SHOP, "/v1/files/report.v22final(1).pdf"),
            DENIED,
        ),
        (
            call(f, "GET", SHOP, "/v1/files/report.v2+final1.pdf"),
            DENIED,
        ),
        // Paths l7_policy refuses before any rule.
        (call(f, "GET", SHOP, "/v1/products/./1"), INVALID),
        (call(f, "GET", SHOP, "/v1/products%2F1"), INVALID),
        (call(f, "GET", SHOP, "/v1//products/1"), INVALID),
    ]
}

/// The callers' certificates, and one bridge per listener, caller and
/// protocol.
struct Callers {
    pki: Pki,
    certs: Vec<(&'static str, Issued)>,
    bridges: HashMap<(SocketAddr, Option<String>, bool), TlsBridge>,
}

impl Callers {
    fn new() -> Callers {
        let pki = Pki::new();
        let certs = [FRONTEND, CHECKOUT, OPS]
            .into_iter()
            .map(|p| (p, pki.client(p)))
            .collect();
        Callers {
            pki,
            certs,
            bridges: HashMap::new(),
        }
    }

    /// A listener's TLS: client certificates asked for, not required (a
    /// caller without one reaches the filters), ALPN for both protocols.
    fn listener_tls(&self) -> Value {
        let server = self.pki.server();
        let mut tls = self.pki.downstream_tls(&server, false)["transport_socket"].clone();
        tls["typed_config"]["common_tls_context"]["alpn_protocols"] = json!(["h2", "http/1.1"]);
        tls
    }

    /// The status `request` gets from `target` when `caller` sends it.
    fn send(
        &mut self,
        target: SocketAddr,
        caller: Option<&str>,
        proto: Proto,
        request: &Request,
    ) -> u16 {
        let key = (target, caller.map(str::to_string), proto == Proto::H2);
        let (pki, certs) = (&self.pki, &self.certs);
        let bridge = self.bridges.entry(key).or_insert_with(|| {
            let cert = caller.map(|p| {
                &certs
                    .iter()
                    .find(|(name, _)| *name == p)
                    .unwrap_or_else(|| panic!("no certificate for {p}"))
                    .1
            });
            let alpn = match proto {
                Proto::H1 => "http/1.1",
                Proto::H2 => "h2",
            };
            pki.bridge(target, cert, alpn)
        });
        request.send(bridge.addr(), proto).status
    }
}

fn tap(bin: &Path, dir: &Path, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run tap")
}

/// `tap policy suggest --report report.txt RECORDS` in `dir`: the policy
/// (also written to policy.json) and the report.
fn suggest(bin: &Path, dir: &Path, records: &str) -> (Value, String) {
    let suggested = tap(
        bin,
        dir,
        &["policy", "suggest", "--report", "report.txt", records],
    );
    assert!(suggested.status.success(), "{}", text(&suggested.stderr));
    std::fs::write(dir.join("policy.json"), &suggested.stdout).unwrap();
    let policy: Value = serde_json::from_slice(&suggested.stdout).expect("policy JSON");
    let report = std::fs::read_to_string(dir.join("report.txt")).unwrap();
    (policy, report)
}

fn http_records(file: &Path) -> Vec<HttpRecord> {
    let (records, errors) = parse_http(&std::fs::read_to_string(file).unwrap());
    assert!(errors.is_empty(), "{errors:?}");
    records
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn suggested_policy_enforced_as_checked() {
    let started = Instant::now();
    let bin = tap_binary();
    let app = Upstream::start();
    let mut callers = Callers::new();
    let mut rng = Lcg(0x5eed_1007);

    // Capture: peer_metadata gives tap_http the caller's principal.
    let tap_config = json!({"record_downstream_connection": true});
    let mut bootstrap = Bootstrap::new(app.port());
    for name in ["training", "probes"] {
        bootstrap = bootstrap
            .listener_with(
                name,
                vec![
                    wasm_filter("peer_metadata", &json!({})),
                    wasm_filter("tap_http", &tap_config),
                ],
                routes(),
                record_access_log(&format!("{name}.jsonl")),
            )
            .chain_field(name, "transport_socket", callers.listener_tls());
    }
    let capture = Envoy::start(&bootstrap);
    let dir = capture.scratch().to_path_buf();

    let training = training(&mut rng);
    for c in &training {
        for proto in [Proto::H1, Proto::H2] {
            let request = Request::new(c.method, &c.path).authority(c.host);
            let status = callers.send(capture.addr("training"), c.caller, proto, &request);
            assert_eq!(status, 200, "{proto:?} {} {}", c.method, c.path);
        }
    }
    let trained = 2 * training.len();
    read_records(&dir.join("training.jsonl"), trained);
    let recorded = http_records(&dir.join("training.jsonl"));
    assert_eq!(recorded.len(), trained);
    let mut by_caller: BTreeMap<String, usize> = BTreeMap::new();
    for c in &training {
        *by_caller
            .entry(c.caller.unwrap_or_default().into())
            .or_default() += 2;
    }
    let mut recorded_by: BTreeMap<String, usize> = BTreeMap::new();
    for r in &recorded {
        *recorded_by
            .entry(r.peer.clone().flatten().unwrap_or_default())
            .or_default() += 1;
    }
    assert_eq!(
        recorded_by, by_caller,
        "the records name each caller Envoy verified"
    );

    // Suggest, then check the policy against what it was learned from.
    let (policy, report) = suggest(&bin, &dir, "training.jsonl");
    eprintln!("{report}");
    let rules = policy["rules"].as_array().expect("rules");
    assert!(
        rules.iter().any(|r| r["path"] == "/v1/categories/[a-z]+"),
        "seven words at one position become a class: {policy:#}"
    );
    let written = policy.to_string();
    for secret in ["tok_", "@example"] {
        assert!(
            !written.contains(secret),
            "{secret} written into the policy"
        );
    }
    let checked = tap(
        &bin,
        &dir,
        &["policy", "check", "policy.json", "training.jsonl"],
    );
    assert_eq!(
        checked.status.code(),
        Some(0),
        "every recorded request allowed: {}{}",
        text(&checked.stdout),
        text(&checked.stderr)
    );

    // The same records as a CiliumNetworkPolicy, imported by check.
    let cnp = tap(
        &bin,
        &dir,
        &["policy", "suggest", "--format", "cnp", "training.jsonl"],
    );
    assert!(cnp.status.success(), "{}", text(&cnp.stderr));
    std::fs::write(dir.join("cnp.yaml"), &cnp.stdout).unwrap();
    let imported = tap(
        &bin,
        &dir,
        &["policy", "check", "cnp.yaml", "--json", "training.jsonl"],
    );
    assert!(
        matches!(imported.status.code(), Some(0 | 1)),
        "the CiliumNetworkPolicy imports: {}",
        text(&imported.stderr)
    );
    let lines: Vec<Value> = text(&imported.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), trained);
    for (line, record) in lines.iter().zip(&recorded) {
        if record.peer.clone().flatten().is_none() {
            assert_eq!(line["verdict"], ALLOWED, "{line}");
        }
    }

    // Probes, recorded the same way.
    let probes = probes(&mut rng);
    for (i, (c, _)) in probes.iter().enumerate() {
        let proto = if i % 2 == 0 { Proto::H1 } else { Proto::H2 };
        let request = Request::new(c.method, &c.path)
            .authority(c.host)
            .header("x-probe", i.to_string());
        let status = callers.send(capture.addr("probes"), c.caller, proto, &request);
        assert_eq!(status, 200, "{proto:?} {} {}", c.method, c.path);
    }
    read_records(&dir.join("probes.jsonl"), probes.len());
    let records = http_records(&dir.join("probes.jsonl"));
    assert_eq!(records.len(), probes.len());
    let predicted = tap(
        &bin,
        &dir,
        &["policy", "check", "policy.json", "--json", "probes.jsonl"],
    );
    assert_eq!(
        predicted.status.code(),
        Some(1),
        "some probes denied: {}",
        text(&predicted.stderr)
    );
    let predictions: Vec<Value> = text(&predicted.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(predictions.len(), records.len());

    // Enforce the suggested policy and replay every probe as recorded.
    let enforcing = Envoy::start(
        &Bootstrap::new(app.port())
            .listener_with(
                "enforce",
                vec![
                    wasm_filter("peer_metadata", &json!({})),
                    wasm_filter("l7_policy", &policy),
                ],
                routes(),
                json!({}),
            )
            .chain_field("enforce", "transport_socket", callers.listener_tls()),
    );
    let reached_app = app.received().len();
    let mut verdicts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut mismatches = Vec::new();
    let mut exhaust_port = 0;
    for (i, (record, prediction)) in records.iter().zip(&predictions).enumerate() {
        assert_eq!(prediction["record"], i);
        let method = record.method();
        assert_eq!(prediction["method"], method.as_str());
        let probe: usize = record.request.header_text("x-probe").parse().unwrap();
        let (c, intended) = &probes[probe];
        let verdict = prediction["verdict"].as_str().unwrap();
        assert_eq!(
            verdict, *intended,
            "{} {} {} from {:?}: {prediction}",
            c.method, c.host, c.path, c.caller
        );
        *verdicts.entry(verdict).or_default() += 1;
        let expected = match verdict {
            ALLOWED => 200,
            _ => prediction["status"].as_u64().expect("a denial's status") as u16,
        };
        let principal = record.peer.clone().flatten();
        let caller = principal.as_deref();
        let (path, authority) = (record.path(), record.authority());
        let request = Request::new(&method, &path).authority(&authority);
        for proto in [Proto::H1, Proto::H2] {
            let status = callers.send(enforcing.addr("enforce"), caller, proto, &request);
            if status != expected {
                mismatches.push(format!(
                    "{proto:?} {method} {authority} {path} from {caller:?}: predicted {expected} ({prediction}), got {status}"
                ));
            }
            if method == "PUT" && path == "/v1/exhaust-port" {
                assert_eq!((verdict, status), (DENIED, 403));
                exhaust_port += 1;
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    assert_eq!(exhaust_port, 2, "PUT /v1/exhaust-port replayed");
    for v in [ALLOWED, DENIED, INVALID] {
        assert!(verdicts.get(v).copied().unwrap_or(0) > 0, "no probe {v}");
    }
    let count = |v: &str| 2 * verdicts.get(v).copied().unwrap_or(0) as u64;
    for (counter, verdict) in [
        ("allowed", ALLOWED),
        ("denied", DENIED),
        ("invalid_path", INVALID),
    ] {
        assert_eq!(
            enforcing.counter(&format!("wasmcustom.l7_policy.{counter}")),
            count(verdict),
            "{counter}"
        );
    }
    // The rule that allowed each request is the one predicted.
    for i in 0..rules.len() {
        let predicted = predictions.iter().filter(|p| p["rule"] == i).count() as u64;
        assert_eq!(
            enforcing.counter(&format!("wasmcustom.l7_policy.rule.{i}.hits")),
            2 * predicted,
            "rule {i}"
        );
    }
    for codec in ["http1", "http2"] {
        assert_eq!(
            enforcing.counter(&format!("http.enforce.downstream_cx_{codec}_total")),
            records.len() as u64,
            "one {codec} connection per probe"
        );
    }
    assert_eq!(
        app.received().len() - reached_app,
        count(ALLOWED) as usize,
        "only allowed requests reached the app"
    );
    eprintln!(
        "policy loop: {trained} training records -> {} rules; {} probes predicted {verdicts:?}, \
         each replayed over HTTP/1.1 and HTTP/2 with the predicted status ({} requests); {:.1} s",
        rules.len(),
        records.len(),
        2 * records.len(),
        started.elapsed().as_secs_f64()
    );
}

/// What someone sends while traffic is recorded, with tap_http installed as
/// tap.sh installs it (first, no peer_metadata) in front of the policy in
/// force: six 404s from a caller without a certificate, a request the
/// policy refused, and a request whose `x-peer-principal` claims another
/// caller. The policy `tap policy suggest` writes from these records,
/// enforced by l7_policy, allows none of what they would have widened.
#[test]
fn what_an_attacker_sends_while_recording_is_not_learned() {
    let bin = tap_binary();
    let app = Upstream::start();
    let mut callers = Callers::new();
    let in_force = wasm_filter(
        "l7_policy",
        &json!({"rules": [{"method": "GET|POST", "path": "/.*"}]}),
    );
    let tap_config = json!({"record_stream_info": true});
    let capture = Envoy::start(
        &Bootstrap::new(app.port())
            .listener_with(
                "capture",
                vec![wasm_filter("tap_http", &tap_config), in_force],
                routes(),
                record_access_log("capture.jsonl"),
            )
            .chain_field("capture", "transport_socket", callers.listener_tls()),
    );
    let dir = capture.scratch().to_path_buf();
    let deathstar = "deathstar.example.com";
    let send = |callers: &mut Callers, caller, request: Request| {
        callers.send(
            capture.addr("capture"),
            caller,
            Proto::H1,
            &request.authority(deathstar),
        )
    };
    let f = Some(FRONTEND);
    let mut sent = 0;
    let mut expect = |status: u16, want: u16, what: &str| {
        assert_eq!(status, want, "{what}");
        sent += 1;
    };
    expect(
        send(&mut callers, f, Request::new("POST", "/v1/request-landing")),
        200,
        "landing",
    );
    for path in ["/v1/ships/1", "/v1/ships/2", "/v1/ships/3", "/v1/"] {
        expect(send(&mut callers, f, Request::get(path)), 200, path);
    }
    for word in ["a", "b", "c", "d", "e", "f-g"] {
        let request = Request::get(&format!("/v1/{word}")).header("x-echo-status", "404");
        expect(send(&mut callers, None, request), 404, word);
    }
    expect(
        send(&mut callers, f, Request::new("DELETE", "/v1/admin")),
        403,
        "refused",
    );
    let spoofed = Request::get("/v1/ships/4").header("x-peer-principal", FRONTEND);
    expect(send(&mut callers, None, spoofed), 200, "spoofed");
    read_records(&dir.join("capture.jsonl"), sent);

    let (policy, report) = suggest(&bin, &dir, "capture.jsonl");
    for line in [
        "left out: 6 requests, status 404 not learned (--learn-status)",
        "left out: 1 request, answered by Envoy or a filter, not the app (local reply 403",
    ] {
        assert!(report.contains(line), "{line:?} not in\n{report}");
    }
    let enforcing = Envoy::start(
        &Bootstrap::new(app.port())
            .listener_with(
                "enforce",
                vec![wasm_filter("l7_policy", &policy)],
                routes(),
                json!({}),
            )
            .chain_field("enforce", "transport_socket", callers.listener_tls()),
    );
    for (caller, method, path, spoof, want) in [
        (None, "GET", "/v1/exhaust-port", false, 403),
        (None, "GET", "/v1/admin", false, 403),
        (None, "GET", "/v1/ships/5", false, 403),
        (None, "GET", "/v1/ships/1", true, 403),
        (f, "DELETE", "/v1/admin", false, 403),
        (f, "GET", "/v1/exhaust-port", false, 403),
        (f, "POST", "/v1/request-landing", false, 200),
        (f, "GET", "/v1/ships/99", false, 200),
        (None, "GET", "/v1/ships/4", false, 200),
    ] {
        for proto in [Proto::H1, Proto::H2] {
            let mut request = Request::new(method, path).authority(deathstar);
            if spoof {
                request = request.header("x-peer-principal", FRONTEND);
            }
            let status = callers.send(enforcing.addr("enforce"), caller, proto, &request);
            assert_eq!(
                status, want,
                "{proto:?} {method} {path} from {caller:?} (spoofed header: {spoof})\n{policy:#}\n{report}"
            );
        }
    }
}
