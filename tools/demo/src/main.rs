//! `make demo`: starts an echo app and Envoy with the filters on 127.0.0.1,
//! sends a short scripted set of requests, and says what each filter did.

use filter_registry::Kind;
use harness::client::Proto;
use harness::tap::{read_records, record_access_log};
use harness::tcp::exchange;
use harness::tls::{Issued, Pki};
use harness::{
    wasm_filter, wasm_network_filter, Bootstrap, Envoy, Received, Request, TcpEcho, Upstream,
};
use l7_policy::config::Config;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::process::ExitCode;
use tap_tool::check::check_one;
use tap_tool::policy::run_check;
use tap_tool::record::{parse_http, HttpRecord};
use tap_tool::suggest::{suggest, Options};

const CF: [&str; 4] = [
    "cf-app-id",
    "cf-app-process-type",
    "cf-organization-id",
    "cf-space-id",
];

fn main() -> ExitCode {
    let app = Upstream::start();
    println!("echo app on {}", app.addr());
    cf_headers(&app);
    tap_http(&app);
    let shown = tap_tcp().and_then(|()| {
        peer_metadata(&app);
        l7_policy(&app)
    });
    let shown = shown.and_then(|()| every_other_filter(&app));
    if let Err(failed) = shown {
        eprintln!("\nmake demo FAILED: {failed}");
        return ExitCode::FAILURE;
    }
    println!("\nEverything stopped. `make test` runs the full suite.");
    ExitCode::SUCCESS
}

/// The filters the scenes above show.
const SHOWN: [&str; 5] = [
    "cf_headers",
    "tap_http",
    "tap_tcp",
    "peer_metadata",
    "l7_policy",
];

/// Every other filter of the list (`filter_registry`), with the example
/// configuration it declares: its check request, what came back, its stats.
fn every_other_filter(app: &Upstream) -> Result<(), String> {
    let filters = filter_registry::filters().map_err(|e| e.to_string())?;
    for filter in filters.iter().filter(|f| !SHOWN.contains(&f.name.as_str())) {
        let name = &filter.name;
        println!("\n== {name} (dist/{name}.wasm) ==\n{}", filter.description);
        println!("configuration: {}", filter.example);
        let check = &filter.check;
        let envoy = match filter.kind {
            Kind::Http => Envoy::start(&Bootstrap::http(
                app.port(),
                vec![wasm_filter(name, &filter.example)],
            )),
            Kind::Network => Envoy::start(
                &Bootstrap::new(app.port())
                    .cluster("app", app.port())
                    .tcp_listener(
                        "main",
                        vec![wasm_network_filter(name, &filter.example)],
                        "app",
                        json!({}),
                        json!({}),
                    ),
            ),
        };
        let response = harness::check::request(check).send(envoy.addr("main"), Proto::H1);
        println!(
            "GET / answered {} (expected {})",
            response.status, check.status
        );
        for header in check.response_headers.keys() {
            let values: Vec<String> = response
                .header(header)
                .iter()
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .collect();
            println!("response {header}: {values:?}");
        }
        let prefix = format!("wasmcustom.{name}.");
        let mut stats: Vec<String> = envoy
            .stats()
            .into_iter()
            .filter_map(|(k, v)| Some(format!("{}={v}", k.strip_prefix(&prefix)?)))
            .collect();
        stats.sort();
        println!("stats: {}", stats.join(" "));
        if response.status != check.status {
            return Err(format!("{name}: GET / answered {}", response.status));
        }
    }
    Ok(())
}

fn shown(received: &Received) -> String {
    let parts: Vec<String> = received
        .headers
        .iter()
        .filter(|(n, _)| CF.contains(&n.as_str()))
        .map(|(n, v)| format!("{n}: {}", String::from_utf8_lossy(v)))
        .collect();
    if parts.is_empty() {
        "no CF headers".into()
    } else {
        parts.join(", ")
    }
}

fn cf_headers(app: &Upstream) {
    println!("\n== CF header stamping (dist/cf_headers.wasm) ==");
    let labels = json!({"LABELS": {
        "cloudfoundry.org/app_guid": "eb1534db-8765-430d-adfe-77fd1a8e45a9",
        "cloudfoundry.org/process_type": "web",
        "cloudfoundry.org/org_guid": "04a73274-9280-4b99-9abc-e44e3ff4a74e",
        "cloudfoundry.org/space_guid": "8d18b884-729c-4239-9b88-39c4964a3f86"}});
    let gateway = json!({"hosts": {"test-app-a.apps.example.com": {
        "app_guid": "a96c7067-c0cd-474a-b83b-68b1980979c2",
        "org_guid": "e2d0807b-446e-4b57-898c-26fb16d0ff11",
        "space_guid": "eac690b5-c8fa-44ec-adf9-da4cff4b76ea"}},
        "on_missing_identity": "reject"});
    let bootstrap = Bootstrap::new(app.port())
        .listener(
            "sidecar",
            vec![wasm_filter(
                "cf_headers",
                &json!({"identity_from": "node_labels"}),
            )],
            json!({}),
        )
        .listener(
            "gateway",
            vec![wasm_filter("cf_headers", &gateway)],
            json!({}),
        )
        .node_metadata(labels);
    let envoy = Envoy::start(&bootstrap);
    let info: serde_json::Value =
        serde_json::from_str(&envoy.admin_get("/server_info")).unwrap_or_default();
    let version = info
        .get("version")
        .and_then(Value::as_str)
        .and_then(|v| v.split('/').nth(1))
        .unwrap_or("?");
    println!("Envoy {version} with two listeners: a sidecar (identity from pod labels) and a gateway (identity by host)");

    let spoof = Request::get("/")
        .header("CF-App-Id", "i-am-someone-else")
        .header("cf-app-id", "and-again")
        .header("CF-Space-Id", "not-mine");
    for proto in [Proto::H1, Proto::H2] {
        spoof.send(envoy.addr("sidecar"), proto);
        println!(
            "sidecar, {proto:?}: the client sent 3 forged CF headers; the app received {}",
            shown(&app.last())
        );
    }
    Request::get("/")
        .authority("test-app-a.apps.example.com")
        .send(envoy.addr("gateway"), Proto::H1);
    println!(
        "gateway, host test-app-a.apps.example.com: the app received {}",
        shown(&app.last())
    );
    let denied = spoof
        .clone()
        .authority("unknown.example.com")
        .send(envoy.addr("gateway"), Proto::H1);
    println!(
        "gateway, host unknown.example.com: no identity, so Envoy answered {} {:?} and the app saw nothing",
        denied.status,
        denied.body_text().trim()
    );
    let stat = |name: &str| envoy.counter(&format!("wasmcustom.cf_headers.{name}"));
    println!(
        "stats: stamped={} spoofed_removed={} no_identity={} rejected={}",
        stat("stamped"),
        stat("spoofed_removed"),
        stat("no_identity"),
        stat("rejected")
    );
}

fn tap_http(app: &Upstream) {
    println!("\n== HTTP tap (dist/tap_http.wasm) ==");
    // Bodies only when asked (here: up to 64 bytes each way).
    let config = json!({"match": {"not": {"path": {"prefix": "/health"}}},
                        "max_request_bytes": 64, "max_response_bytes": 64});
    let routes = json!([{"name": "app", "domains": ["*"], "routes": [
        {"match": {"prefix": "/"}, "route": {"cluster": "upstream"}}]}]);
    let bootstrap = Bootstrap::new(app.port()).listener_with(
        "main",
        vec![wasm_filter("tap_http", &config)],
        routes,
        record_access_log("records.jsonl"),
    );
    let envoy = Envoy::start(&bootstrap);
    let file = envoy.scratch().join("records.jsonl");
    println!("a file access log writes each record as one JSON line in Envoy's tap format");
    Request::new("POST", "/api/orders?access_token=s3cret&page=1")
        .header("authorization", "Bearer s3cret")
        .header("x-api-key", "k3y")
        .header("content-type", "application/json")
        .body(r#"{"item": "tea", "qty": 2, "password": "hunter2"}"#)
        .send(envoy.addr("main"), Proto::H1);
    Request::get("/health").send(envoy.addr("main"), Proto::H1);
    Request::get("/big")
        .header("x-echo-body-size", "100000")
        .send(envoy.addr("main"), Proto::H2);
    let records = read_records(&file, 2);
    for record in &records {
        let trace = &record["http_buffered_trace"];
        let header = |side: &str, key: &str| {
            trace
                .get(side)
                .and_then(|s| s.get("headers"))
                .and_then(Value::as_array)
                .and_then(|h| h.iter().find(|h| h["key"] == key))
                .and_then(|h| h["value"].as_str())
                .unwrap_or("-")
                .to_string()
        };
        let body = |side: &str| -> String {
            match trace[side].get("body") {
                None => "no body".into(),
                Some(b) => {
                    use base64::Engine;
                    let text = b["as_bytes"].as_str().unwrap_or("");
                    let len = base64::engine::general_purpose::STANDARD
                        .decode(text)
                        .map_or(0, |v| v.len());
                    let cut = if b["truncated"] == Value::Bool(true) {
                        " (truncated at the cap)"
                    } else {
                        ""
                    };
                    format!("{len} body bytes{cut}")
                }
            }
        };
        println!(
            "recorded {} {} -> {}: request {} (authorization: {}, x-api-key: {}), response {}",
            header("request", ":method"),
            header("request", ":path"),
            header("response", ":status"),
            body("request"),
            header("request", "authorization"),
            header("request", "x-api-key"),
            body("response")
        );
    }
    let first_body = records
        .first()
        .and_then(|r| r.pointer("/http_buffered_trace/request/body/as_bytes"))
        .and_then(Value::as_str)
        .map(|b| {
            use base64::Engine;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b)
                .unwrap_or_default();
            String::from_utf8_lossy(&bytes).into_owned()
        })
        .unwrap_or_default();
    println!("the first request's JSON body as recorded: {first_body}");
    let first: String = records
        .first()
        .map(Value::to_string)
        .unwrap_or_default()
        .chars()
        .take(160)
        .collect();
    println!("the first record begins: {first}...");
    let stat = |name: &str| envoy.counter(&format!("wasmcustom.tap_http.{name}"));
    println!(
        "/health was not recorded (match); stats: tapped={} not_matched={} truncated={}",
        stat("tapped"),
        stat("not_matched"),
        stat("truncated")
    );
}

fn tap_tcp() -> Result<(), String> {
    println!("\n== TCP tap (dist/tap_tcp.wasm) ==");
    let echo = TcpEcho::start();
    let config =
        json!({"max_read_bytes": 1024, "max_write_bytes": 1024, "segment": {"interval_ms": 300}});
    let mut proxy = record_access_log("records.jsonl");
    if let Some(fields) = proxy.as_object_mut() {
        fields.insert(
            "access_log_options".into(),
            json!({"access_log_flush_interval": "0.3s"}),
        );
    }
    let bootstrap = Bootstrap::new(echo.port())
        .cluster("echo", echo.port())
        .tcp_listener(
            "tcp",
            vec![wasm_network_filter("tap_tcp", &config)],
            "echo",
            json!({}),
            proxy,
        );
    let envoy = Envoy::start(&bootstrap);
    let file = envoy.scratch().join("records.jsonl");
    println!("a network filter before tcp_proxy to a TCP echo server; tcp_proxy's access log writes the records");
    let big: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    let back = exchange(envoy.addr("tcp"), &big, 8192);
    println!(
        "sent 100000 binary bytes, got {} back unchanged: {}",
        back.len(),
        back == big
    );
    let mut open = std::net::TcpStream::connect(envoy.addr("tcp"))
        .map_err(|e| format!("tap_tcp: connect: {e}"))?;
    let mut pong = [0u8; 6];
    open.write_all(b"PING\r\n")
        .and_then(|()| open.read_exact(&mut pong))
        .map_err(|e| format!("tap_tcp: PING: {e}"))?;
    std::thread::sleep(std::time::Duration::from_millis(700));
    let records = read_records(&file, 2);
    let decode = |event: &Value, direction: &str| -> Vec<u8> {
        use base64::Engine;
        event
            .get(direction)
            .and_then(|d| d.pointer("/data/as_bytes"))
            .and_then(Value::as_str)
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .unwrap_or_default()
    };
    // The periodic flush writes the current record each time: keep one per
    // (trace_id, sequence).
    let mut unique: Vec<&Value> = Vec::new();
    for record in &records {
        let key = |r: &Value| {
            (
                r.pointer("/socket_buffered_trace/trace_id").cloned(),
                r.pointer("/socket_buffered_trace/sequence").cloned(),
            )
        };
        if !unique.iter().any(|u| key(u) == key(record)) {
            unique.push(record);
        }
    }
    println!(
        "{} lines in the file, {} distinct records (trace_id, sequence)",
        records.len(),
        unique.len()
    );
    for record in unique {
        let trace = &record["socket_buffered_trace"];
        let events = trace["events"].as_array().cloned().unwrap_or_default();
        let count = |d: &str| -> usize { events.iter().map(|e| decode(e, d).len()).sum() };
        let closed = events.iter().any(|e| e.get("closed").is_some());
        println!(
            "connection {} (sequence {}): {} events, {} bytes read, {} written, read_truncated={}, {}",
            trace["trace_id"].as_str().unwrap_or("?"),
            trace["sequence"],
            events.len(),
            count("read"),
            count("write"),
            trace["read_truncated"],
            if closed { "closed" } else { "still open: a periodic record" }
        );
    }
    drop(open);
    let stat = |name: &str| envoy.counter(&format!("wasmcustom.tap_tcp.{name}"));
    println!(
        "stats: tapped={} segments={} truncated={}",
        stat("tapped"),
        stat("segments"),
        stat("truncated")
    );
    Ok(())
}

fn peer_metadata(app: &Upstream) {
    println!("\n== Peer metadata (dist/peer_metadata.wasm) ==");
    let sample_path = harness::paths::workspace_root().join("examples/peer_metadata/sample.b64");
    let sample = std::fs::read_to_string(sample_path).unwrap_or_default();
    let envoy = Envoy::start(&Bootstrap::http(
        app.port(),
        vec![wasm_filter("peer_metadata", &json!({}))],
    ));
    let show = |label: &str, request: Request| {
        request.send(envoy.addr("main"), Proto::H1);
        let got = app.last();
        let parts: Vec<String> = got
            .headers
            .iter()
            .filter(|(n, _)| n.starts_with("x-peer-") || n.starts_with("x-envoy-peer-metadata"))
            .map(|(n, v)| format!("{n}: {}", String::from_utf8_lossy(v)))
            .collect();
        println!("{label}\n    the app got: {}", parts.join(", "));
    };
    show(
        "Istio 1.14.3 x-envoy-peer-metadata (the real sample) plus a spoofed x-peer-workload:",
        Request::get("/")
            .header("x-envoy-peer-metadata", sample.trim())
            .header("x-peer-workload", "spoofed"),
    );
    show(
        "ambient baggage:",
        Request::get("/").header(
            "baggage",
            "k8s.deployment.name=productpage-v1,service.name=productpage,service.version=v1,k8s.namespace.name=bookinfo",
        ),
    );
    show(
        "garbage metadata (the request still goes through):",
        Request::get("/").header("x-envoy-peer-metadata", "%%%garbage%%%"),
    );
    let stat = |name: &str| envoy.counter(&format!("wasmcustom.peer_metadata.{name}"));
    println!(
        "stats: decoded={} from_cache={} malformed={} unverified={} (no mTLS here, so nothing is verified)",
        stat("decoded"),
        stat("from_cache"),
        stat("malformed"),
        stat("unverified")
    );
}

const DEATHSTAR: &str = "deathstar.default.svc.cluster.local";
const TIEFIGHTER: &str = "spiffe://cluster.local/ns/default/sa/tiefighter";
const XWING: &str = "spiffe://cluster.local/ns/default/sa/xwing";

/// The Star Wars callers: client certificates for the tiefighter and the
/// xwing, and a listener certificate, all from one CA.
struct Ships {
    pki: Pki,
    server: Issued,
    tiefighter: Issued,
    xwing: Issued,
}

impl Ships {
    fn new() -> Ships {
        let pki = Pki::new();
        Ships {
            server: pki.server(),
            tiefighter: pki.client(TIEFIGHTER),
            xwing: pki.client(XWING),
            pki,
        }
    }

    /// An Envoy whose listener requires a client certificate, with `filters`
    /// before the router and the tap's records written to `records.jsonl`.
    fn envoy(&self, app: &Upstream, filters: Vec<Value>) -> Envoy {
        let routes = json!([{"name": "app", "domains": ["*"], "routes": [
            {"match": {"prefix": "/"}, "route": {"cluster": "upstream"}}]}]);
        let tls = self.pki.downstream_tls(&self.server, true);
        Envoy::start(
            &Bootstrap::new(app.port())
                .listener_with("main", filters, routes, record_access_log("records.jsonl"))
                .chain_field(
                    "main",
                    "transport_socket",
                    tls.get("transport_socket").cloned().unwrap_or_default(),
                ),
        )
    }

    /// The status and body Envoy answered `ship`.
    fn send(&self, envoy: &Envoy, ship: &str, method: &str, path: &str) -> (u16, String) {
        let client = if ship == "xwing" {
            &self.xwing
        } else {
            &self.tiefighter
        };
        let request = format!(
            "{method} {path} HTTP/1.1\r\nhost: {DEATHSTAR}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        );
        let response = self
            .pki
            .send(envoy.addr("main"), Some(client), request.as_bytes());
        let text = String::from_utf8_lossy(&response);
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        (status, body.trim_end().to_string())
    }
}

/// The tap's records as the `tap` tool reads them, once `count` are written.
fn http_records(file: &std::path::Path, count: usize) -> Vec<HttpRecord> {
    let text: String = read_records(file, count)
        .iter()
        .map(|r| format!("{r}\n"))
        .collect();
    parse_http(&text).0
}

/// Who sent a recorded request: the principal Envoy verified, which the
/// tap records in `peer`.
fn ship_of(record: &HttpRecord) -> Result<&'static str, String> {
    match record.peer.clone().flatten().unwrap_or_default().as_str() {
        TIEFIGHTER => Ok("tiefighter"),
        XWING => Ok("xwing"),
        other => Err(format!(
            "capture: a record of {} {} names caller {other:?}",
            record.method(),
            record.path()
        )),
    }
}

/// The loop a new policy takes: record what the callers do, suggest the
/// narrowest rules that allow it, check them on the recording, enforce them.
/// Every step's claim is checked here, so `make demo` fails when one stops
/// holding.
fn l7_policy(app: &Upstream) -> Result<(), String> {
    println!("\n== L7 policy from recorded traffic (tap_http, tap policy, dist/l7_policy.wasm) ==");
    let ships = Ships::new();
    println!("mTLS listeners; client certificates for {TIEFIGHTER} and {XWING}");

    // As tap.sh installs it: the tap alone, recording the verified caller.
    let capture = ships.envoy(
        app,
        vec![wasm_filter(
            "tap_http",
            &json!({"record_stream_info": true}),
        )],
    );
    let traffic = [
        ("tiefighter", "POST", "/v1/request-landing"),
        ("tiefighter", "GET", "/v1/"),
        ("tiefighter", "POST", "/v1/request-landing"),
        ("tiefighter", "GET", "/v1/ships/7"),
        ("tiefighter", "GET", "/v1/ships/12?fields=name"),
        ("tiefighter", "POST", "/v1/request-landing"),
        ("tiefighter", "GET", "/v1/ships/301"),
        ("xwing", "GET", "/v1/"),
    ];
    for (ship, method, path) in traffic {
        let (status, _) = ships.send(&capture, ship, method, path);
        if status != 200 {
            return Err(format!(
                "capture: {ship} {method} {path} got {status}, not 200"
            ));
        }
    }
    let recorded = http_records(&capture.scratch().join("records.jsonl"), traffic.len());
    drop(capture);
    if recorded.len() != traffic.len() {
        return Err(format!(
            "capture: {} HTTP records for {} requests",
            recorded.len(),
            traffic.len()
        ));
    }
    println!(
        "1. capture (tap_http, the caller from the client certificate): {} requests to {DEATHSTAR}, all 200, {} records",
        traffic.len(),
        recorded.len()
    );

    let records: Vec<&HttpRecord> = recorded.iter().collect();
    let suggestion = suggest(records.iter().copied(), &Options::default());
    let policy = suggestion.l7_policy();
    println!("2. tap policy suggest records.jsonl:");
    print!("{}", indent(&suggestion.report()));
    let rules = policy
        .get("rules")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    println!("   {{\"rules\": [");
    for (i, rule) in rules.iter().enumerate() {
        let comma = if i + 1 < rules.len() { "," } else { "" };
        println!("     {rule}{comma}");
    }
    println!("   ]}}");

    let config = Config::from_value(&policy).map_err(|e| format!("suggested policy: {e}"))?;
    let (report, denied) = run_check(&config, &records, false);
    println!("3. tap policy check policy.json records.jsonl:");
    print!("{}", indent(&report));
    if denied {
        return Err("check: the suggested policy would deny recorded traffic".into());
    }

    let enforce = ships.envoy(
        app,
        vec![
            wasm_filter("peer_metadata", &json!({})),
            wasm_filter("tap_http", &json!({})),
            wasm_filter("l7_policy", &policy),
        ],
    );
    let mut statuses = Vec::new();
    for record in &recorded {
        let (ship, method, path) = (ship_of(record)?, record.method(), record.path());
        let (status, _) = ships.send(&enforce, ship, &method, &path);
        if status != 200 {
            return Err(format!(
                "replay: {ship} {method} {path} got {status}, not 200"
            ));
        }
        statuses.push(status.to_string());
    }
    println!(
        "4. enforce (peer_metadata, tap_http, then l7_policy with these rules): the {} recorded requests again: {}",
        recorded.len(),
        statuses.join(" ")
    );

    println!("5. requests never recorded (a tap in front of l7_policy records them for check):");
    let unseen = [
        ("tiefighter", "GET", "/v1/ships/99", 200),
        ("tiefighter", "PUT", "/v1/exhaust-port", 403),
        (
            "tiefighter",
            "POST",
            "/v1/request-landing?then=explode",
            403,
        ),
        ("xwing", "POST", "/v1/request-landing", 403),
        ("tiefighter", "POST", "/v1/x/../request-landing", 400),
    ];
    let mut answers = Vec::new();
    for (ship, method, path, want) in unseen {
        let (status, body) = ships.send(&enforce, ship, method, path);
        if status != want {
            return Err(format!(
                "enforce: {ship} {method} {path} got {status}, not {want}"
            ));
        }
        answers.push((status, body));
    }
    let all = http_records(
        &enforce.scratch().join("records.jsonl"),
        recorded.len() + unseen.len(),
    );
    let Some(new) = all
        .get(recorded.len()..)
        .filter(|new| new.len() == unseen.len())
    else {
        return Err(format!(
            "enforce: {} HTTP records for {} requests",
            all.len(),
            recorded.len() + unseen.len()
        ));
    };
    for ((ship, method, path, _), ((status, body), record)) in
        unseen.iter().zip(answers.iter().zip(new))
    {
        if (record.method().as_str(), record.path().as_str()) != (*method, *path) {
            return Err(format!(
                "enforce: no record of {method} {path} in its place"
            ));
        }
        let checked = check_one(&config, record);
        let predicted = checked.status.map_or(200, |s| s as u16);
        if predicted != *status {
            return Err(format!(
                "check predicted {predicted} for {ship} {method} {path}; Envoy answered {status}"
            ));
        }
        let answer = if *status == 200 {
            status.to_string()
        } else {
            format!("{status} {body}")
        };
        println!(
            "   {ship} {method} {path} -> {answer}  (check predicted: {})",
            checked.summary()
        );
    }
    if let Some(line) = enforce
        .log()
        .lines()
        .find(|l| l.contains("http-request DROPPED") && l.contains("exhaust-port"))
    {
        println!(
            "   Envoy's log: {}",
            &line[line.find("http-request").unwrap_or(0)..]
        );
    }
    let stat = |name: &str| enforce.counter(&format!("wasmcustom.l7_policy.{name}"));
    let hits: Vec<String> = (0..rules.len())
        .map(|i| format!("rule.{i}.hits={}", stat(&format!("rule.{i}.hits"))))
        .collect();
    println!(
        "   stats: allowed={} denied={} invalid_path={} {}",
        stat("allowed"),
        stat("denied"),
        stat("invalid_path"),
        hits.join(" ")
    );
    Ok(())
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("   {l}\n")).collect()
}
