//! The HTTP tap through a real Envoy: against Envoy's native tap filter on the
//! same traffic, every matcher, sampling, rate limits, redaction (Istio's
//! peer metadata headers too), the caller peer_metadata decoded, each sink,
//! streams reset midway, and memory while tapping large bodies.

use harness::client::Proto;
use harness::tap::{native_tap, read_native, read_records, record_access_log, request_id};
use harness::tls::Pki;
use harness::{pattern, wasm_filter, Bootstrap, Envoy, Lcg, Request, Upstream, PEER_METADATA_SEED};
use serde_json::{json, Value};
use std::collections::HashMap;

const LOG: &str = "taps.jsonl";

fn stat(envoy: &Envoy, name: &str) -> u64 {
    envoy.counter(&format!("wasmcustom.tap_http.{name}"))
}

/// Routes: `/local` answers 403 from Envoy itself, everything else goes upstream.
fn virtual_hosts() -> Value {
    json!([{"name": "all", "domains": ["*"], "routes": [
        {"match": {"prefix": "/local"}, "direct_response": {"status": 403, "body": {"inline_string": "denied\n"}}},
        {"match": {"prefix": "/"}, "route": {"cluster": "upstream", "timeout": "30s"}}
    ]}])
}

/// Envoy with `filters` and the record access log on listener `main`.
fn start(up: &Upstream, filters: Vec<Value>) -> Envoy {
    let bootstrap = Bootstrap::new(up.port()).listener_with(
        "main",
        filters,
        virtual_hosts(),
        record_access_log(LOG),
    );
    Envoy::start(&bootstrap)
}

fn tap(config: Value) -> Value {
    wasm_filter("tap_http", &config)
}

fn records(envoy: &Envoy, count: usize) -> Vec<Value> {
    read_records(&envoy.scratch().join(LOG), count)
}

/// Lines in the record file right now (for "nothing was written" checks,
/// after a request that was recorded proves the log is flushing).
fn record_lines(envoy: &Envoy) -> usize {
    std::fs::read_to_string(envoy.scratch().join(LOG))
        .unwrap_or_default()
        .lines()
        .count()
}

/// One direction of a record as both taps must agree on it.
fn comparable(message: &Value) -> Value {
    let pairs = |list: &Value| -> Vec<(String, String)> {
        list.as_array()
            .into_iter()
            .flatten()
            .map(|h| {
                (
                    h["key"].as_str().unwrap_or("").to_string(),
                    h["value"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    };
    json!({
        "headers": pairs(&message["headers"]),
        "body": message.get("body").map(|b| json!({"as_bytes": b["as_bytes"], "truncated": b["truncated"]})),
        "trailers": pairs(&message["trailers"]),
    })
}

/// The record whose request had `:path` equal to `path`.
fn find_by_path<'a>(records: &'a [Value], path: &str) -> &'a Value {
    records
        .iter()
        .find(|r| {
            let headers = r["http_buffered_trace"]["request"]["headers"].as_array();
            headers
                .into_iter()
                .flatten()
                .any(|h| h["key"] == ":path" && h["value"] == path)
        })
        .unwrap_or_else(|| panic!("no record for {path} in {records:?}"))
}

fn body_bytes(message: &Value) -> Vec<u8> {
    use base64::Engine;
    let text = message["body"]["as_bytes"].as_str().unwrap_or("");
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("base64")
}

#[test]
fn smoke_differential_against_native_tap() {
    const LIMIT: u64 = 64 * 1024;
    let up = Upstream::start();
    let ours = tap(
        json!({"max_request_bytes": LIMIT, "max_response_bytes": LIMIT, "redact_headers": [], "redact_words": []}),
    );
    let envoy = start(&up, vec![native_tap(LIMIT, LIMIT), ours]);

    let sizes = [0usize, 1, 1000, 65_535, 65_536, 65_537, 200_000, 400_000];
    let mut rng = Lcg(0x7a9);
    let mut sent = 0;
    for i in 0..48 {
        let proto = if i % 2 == 0 { Proto::H1 } else { Proto::H2 };
        let local = i % 12 == 5;
        let method = *rng.pick(&["GET", "POST", "PUT", "DELETE", "PATCH"]);
        let path = if local {
            format!("/local/{i}")
        } else {
            format!("/d/{i}?q={i}")
        };
        let mut request = Request::new(method, &path)
            .header("x-rep", "a")
            .header("X-Rep", "b");
        if method != "GET" && method != "DELETE" {
            request = request.body(pattern(*rng.pick(&sizes)));
        }
        if proto == Proto::H1 && rng.below(3) == 0 {
            request = request.chunked();
        }
        if rng.below(4) == 0 {
            request = request.trailer("x-req-trailer", format!("t{i}"));
        }
        request = request.header("x-echo-body-size", rng.pick(&sizes).to_string());
        match rng.below(3) {
            0 => request = request.header("x-echo-chunked", "1"),
            1 => request = request.header("x-echo-trailer", format!("grpc-status: {}", i % 3)),
            _ => {}
        }
        let response = request.send(envoy.addr("main"), proto);
        assert_eq!(
            response.status,
            if local { 403 } else { 200 },
            "{proto:?} {path}"
        );
        sent += 1;
    }
    let ours: HashMap<String, Value> = records(&envoy, sent)
        .into_iter()
        .map(|r| (request_id(&r), r))
        .collect();
    let native = read_native(envoy.scratch(), sent);
    assert_eq!((ours.len(), native.len()), (sent, sent));
    let mut truncated = 0;
    for theirs in &native {
        let id = request_id(theirs);
        let mine = ours
            .get(&id)
            .unwrap_or_else(|| panic!("no record of ours for {id}"));
        for side in ["request", "response"] {
            let (a, b) = (
                &mine["http_buffered_trace"][side],
                &theirs["http_buffered_trace"][side],
            );
            assert_eq!(comparable(a), comparable(b), "{side} of {id}");
            truncated += usize::from(a["body"]["truncated"] == true);
        }
        assert!(mine.get("incomplete").is_none());
    }
    assert!(
        truncated > 10,
        "the corpus crosses the limit often ({truncated})"
    );
    assert_eq!(stat(&envoy, "tapped"), sent as u64);
}

#[test]
fn smoke_bodies_headers_and_trailers_are_recorded() {
    let up = Upstream::start();
    let envoy = start(
        &up,
        vec![tap(
            json!({"max_request_bytes": 10, "max_response_bytes": 20}),
        )],
    );
    Request::new("POST", "/upload?x=1")
        .header("authorization", "Bearer secret")
        .header("cookie", "a=b")
        .header("x-echo-response-header", "set-cookie: s=1")
        .header("x-echo-trailer", "grpc-status: 0")
        .header("x-echo-body-size", "100")
        .body("0123456789abcdef")
        .trailer("x-checksum", "abc")
        .send(envoy.addr("main"), Proto::H2);
    let record = &records(&envoy, 1)[0]["http_buffered_trace"];
    let request = &record["request"];
    let header = |m: &Value, k: &str| {
        m["headers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["key"] == k)
            .map(|h| h["value"].clone())
    };
    assert_eq!(header(request, ":path"), Some(json!("/upload?x=1")));
    assert_eq!(header(request, "authorization"), Some(json!("[redacted]")));
    assert_eq!(header(request, "cookie"), Some(json!("[redacted]")));
    assert_eq!(body_bytes(request), b"0123456789");
    assert_eq!(request["body"]["truncated"], true);
    assert_eq!(
        request["trailers"],
        json!([{"key": "x-checksum", "value": "abc"}])
    );
    let response = &record["response"];
    assert_eq!(header(response, ":status"), Some(json!("200")));
    assert_eq!(header(response, "set-cookie"), Some(json!("[redacted]")));
    assert_eq!(body_bytes(response), &pattern(100)[..20]);
    assert_eq!(
        response["trailers"],
        json!([{"key": "grpc-status", "value": "0"}])
    );
    assert_eq!((stat(&envoy, "tapped"), stat(&envoy, "truncated")), (1, 1));
}

#[test]
fn headers_only_and_local_replies() {
    let up = Upstream::start();
    let envoy = start(
        &up,
        vec![tap(
            json!({"max_request_bytes": 4096, "max_response_bytes": 4096}),
        )],
    );
    Request::get("/")
        .header("x-echo-status", "204")
        .send(envoy.addr("main"), Proto::H1);
    Request::new("HEAD", "/head").send(envoy.addr("main"), Proto::H2);
    Request::new("POST", "/local/x")
        .body("payload")
        .send(envoy.addr("main"), Proto::H1);
    let records = records(&envoy, 3);
    let find = |path: &str| find_by_path(&records, path)["http_buffered_trace"].clone();
    let no_content = find("/");
    assert!(
        no_content["request"].get("body").is_none() && no_content["response"].get("body").is_none()
    );
    assert!(find("/head")["response"].get("body").is_none());
    let local = find("/local/x");
    // Envoy answered on the headers: the request body never passed the filter
    // (the native tap records none either; see the differential test).
    assert!(local["request"].get("body").is_none());
    assert_eq!(
        local["response"]["headers"][0],
        json!({"key": ":status", "value": "403"})
    );
    assert_eq!(body_bytes(&local["response"]), b"denied\n");
}

#[test]
fn matchers_choose_what_is_recorded() {
    let up = Upstream::start();
    let config = json!({"match": {"or": [
        {"status": {"min": 500, "max": 599}},
        {"and": [{"method": "POST"}, {"path": {"prefix": "/api/"}}, {"not": {"request_header": {"name": "x-skip", "present": true}}}]},
        {"request_header": {"name": "x-debug", "exact": "on"}},
        {"response_header": {"name": "x-trace", "regex": "t-[0-9]+"}},
        {"path": {"regex": "/re/[a-z]+"}},
        {"path": {"exact": "/exact"}}
    ]}});
    let envoy = start(&up, vec![tap(config)]);
    let cases: Vec<(Request, bool)> = vec![
        (Request::get("/x").header("x-echo-status", "503"), true),
        (Request::get("/x").header("x-echo-status", "404"), false),
        (Request::new("POST", "/api/items").body("b"), true),
        (
            Request::new("POST", "/api/items")
                .header("x-skip", "1")
                .body("b"),
            false,
        ),
        (Request::get("/api/items"), false),
        (Request::new("POST", "/apix"), false),
        (Request::get("/y").header("x-debug", "on"), true),
        (
            Request::get("/y")
                .header("x-debug", "off")
                .header("x-debug", "on"),
            true,
        ),
        (
            Request::get("/y").header("x-echo-response-header", "x-trace: t-42"),
            true,
        ),
        (
            Request::get("/y").header("x-echo-response-header", "x-trace: t-42x"),
            false,
        ),
        (Request::get("/re/abc?q=1"), true),
        (Request::get("/re/ABC"), false),
        (Request::get("/exact?with=query"), true),
        (Request::get("/exact/more"), false),
    ];
    let mut expected = Vec::new();
    for (i, (request, tapped)) in cases.iter().enumerate() {
        let proto = if i % 2 == 0 { Proto::H1 } else { Proto::H2 };
        request
            .clone()
            .header("x-case", i.to_string())
            .send(envoy.addr("main"), proto);
        if *tapped {
            expected.push(i.to_string());
        }
    }
    let records = records(&envoy, expected.len());
    let mut got: Vec<String> = records
        .iter()
        .map(|r| {
            let headers = r["http_buffered_trace"]["request"]["headers"]
                .as_array()
                .unwrap();
            headers.iter().find(|h| h["key"] == "x-case").unwrap()["value"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    got.sort_by_key(|c| c.parse::<u32>().unwrap());
    assert_eq!(got, expected);
    assert_eq!(stat(&envoy, "tapped"), expected.len() as u64);
    assert_eq!(
        stat(&envoy, "not_matched"),
        (cases.len() - expected.len()) as u64
    );
    assert_eq!(
        record_lines(&envoy),
        expected.len(),
        "untapped streams write no line"
    );
}

#[test]
fn sampling_and_rate_limits() {
    let up = Upstream::start();
    let envoy = Envoy::start(
        &Bootstrap::new(up.port())
            .listener_with(
                "none",
                vec![tap(json!({"sample_percent": 0}))],
                virtual_hosts(),
                record_access_log("none.jsonl"),
            )
            .listener_with(
                "half",
                vec![tap(json!({"sample_percent": 50}))],
                virtual_hosts(),
                record_access_log("half.jsonl"),
            )
            .listener_with(
                "rate",
                vec![tap(
                    json!({"rate_limit": {"records_per_second": 0.001, "burst": 3}}),
                )],
                virtual_hosts(),
                record_access_log("rate.jsonl"),
            )
            .listener_with(
                "total",
                vec![tap(json!({"max_records": 4}))],
                virtual_hosts(),
                record_access_log("total.jsonl"),
            ),
    );
    for listener in ["none", "half", "rate", "total"] {
        for i in 0..40 {
            let proto = if i % 2 == 0 { Proto::H1 } else { Proto::H2 };
            Request::get(&format!("/{listener}/{i}")).send(envoy.addr(listener), proto);
        }
    }
    let lines = |file: &str| {
        std::fs::read_to_string(envoy.scratch().join(file))
            .unwrap_or_default()
            .lines()
            .count()
    };
    assert_eq!(
        read_records(&envoy.scratch().join("rate.jsonl"), 3).len(),
        3,
        "the burst, then nothing at 0.001/s"
    );
    assert_eq!(
        read_records(&envoy.scratch().join("total.jsonl"), 4).len(),
        4
    );
    // How many the 50% listener tapped, from the counters (the burst and the
    // cap are known); then wait until the log has written them all, so the
    // file is not counted while Envoy is still flushing it.
    let half = (stat(&envoy, "tapped") - 3 - 4) as usize;
    assert_eq!(
        read_records(&envoy.scratch().join("half.jsonl"), half).len(),
        half
    );
    assert_eq!(lines("half.jsonl"), half);
    assert!((8..=32).contains(&half), "50% of 40 requests, got {half}");
    assert_eq!(lines("none.jsonl"), 0);
    // The four plugins share one VM and its counters.
    assert_eq!(stat(&envoy, "sampled_out"), 40 + (40 - half as u64));
    assert_eq!(stat(&envoy, "rate_limited"), (40 - 3) + (40 - 4));
}

/// Credentials by name and by word, in headers and in the query; custom
/// lists replace the defaults; empty lists turn redaction off.
#[test]
fn redaction_is_configurable() {
    let up = Upstream::start();
    let envoy = Envoy::start(
        &Bootstrap::new(up.port())
            .listener_with(
                "defaults",
                vec![tap(json!({}))],
                virtual_hosts(),
                record_access_log("defaults.jsonl"),
            )
            .listener_with(
                "custom",
                vec![tap(
                    json!({"redact_headers": ["X-Customer"], "redact_words": ["Pin"]}),
                )],
                virtual_hosts(),
                record_access_log("custom.jsonl"),
            )
            .listener_with(
                "off",
                vec![tap(json!({"redact_headers": [], "redact_words": []}))],
                virtual_hosts(),
                record_access_log("off.jsonl"),
            ),
    );
    let request = Request::get("/cb?access_token=t1&pin=42&page=2")
        .header("x-api-key", "k1")
        .header("x-amz-security-token", "a1")
        .header("x-customer", "c1")
        .header("x-pin-code", "p1")
        .header("referer", "https://app.example/?session=s1")
        .header("authorization", "Basic abc");
    for listener in ["defaults", "custom", "off"] {
        request.send(envoy.addr(listener), Proto::H1);
    }
    let value = |file: &str, key: &str| {
        let record = &read_records(&envoy.scratch().join(file), 1)[0];
        let headers = record["http_buffered_trace"]["request"]["headers"]
            .as_array()
            .unwrap()
            .clone();
        headers.iter().find(|h| h["key"] == key).unwrap()["value"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let r = "[redacted]";
    for (file, want) in [
        (
            "defaults.jsonl",
            [
                "/cb?access_token=[redacted]&pin=42&page=2",
                r,
                r,
                "c1",
                "p1",
                "https://app.example/?session=[redacted]",
                r,
            ],
        ),
        (
            "custom.jsonl",
            [
                "/cb?access_token=t1&pin=[redacted]&page=2",
                "k1",
                "a1",
                r,
                r,
                "https://app.example/?session=s1",
                "Basic abc",
            ],
        ),
        (
            "off.jsonl",
            [
                "/cb?access_token=t1&pin=42&page=2",
                "k1",
                "a1",
                "c1",
                "p1",
                "https://app.example/?session=s1",
                "Basic abc",
            ],
        ),
    ] {
        let got = [
            ":path",
            "x-api-key",
            "x-amz-security-token",
            "x-customer",
            "x-pin-code",
            "referer",
            "authorization",
        ]
        .map(|key| value(file, key));
        assert_eq!(got, want, "{file}");
    }
    // The app receives everything as it was sent.
    assert_eq!(up.last().path, "/cb?access_token=t1&pin=42&page=2");
}

#[test]
fn as_string_and_extras() {
    let up = Upstream::start();
    let config = json!({"body_format": "as_string", "record_downstream_connection": true, "record_stream_info": true,
                        "max_request_bytes": 4096, "max_response_bytes": 4096});
    let envoy = start(&up, vec![tap(config)]);
    Request::new("POST", "/text")
        .body("caf\u{e9} au lait")
        .send(envoy.addr("main"), Proto::H1);
    let record = &records(&envoy, 1)[0];
    let trace = &record["http_buffered_trace"];
    assert_eq!(trace["request"]["body"]["as_string"], "café au lait");
    let local = &trace["downstream_connection"]["local_address"]["socket_address"];
    assert_eq!(local["address"], "127.0.0.1");
    assert_eq!(local["port_value"], envoy.addr("main").port());
    let info = &record["stream_info"];
    assert!(
        info["start_time"].as_str().unwrap().ends_with('Z'),
        "{info}"
    );
    assert!(info["duration_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(info["response_code"], 200);
    assert_eq!(info["response_code_details"], "via_upstream");
    assert_eq!(info["upstream_address"], up.addr().to_string());
    assert_eq!(info["request_id"].as_str().unwrap(), request_id(record));
}

#[test]
fn log_sink_writes_records_to_envoys_log() {
    let up = Upstream::start();
    let envoy = start(&up, vec![tap(json!({"sink": {"log": {"level": "warn"}}}))]);
    Request::get("/logged")
        .header("x-marker", "m-1")
        .send(envoy.addr("main"), Proto::H1);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let line = loop {
        let log = envoy.log();
        if let Some(line) = log
            .lines()
            .find(|l| l.contains("http_buffered_trace") && l.contains("m-1"))
        {
            break line.to_string();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no record in the log:\n{log}"
        );
        std::thread::sleep(std::time::Duration::from_millis(25));
    };
    assert!(line.contains("[warning]"), "{line}");
    let json = &line[line.find("{\"http_buffered_trace\"").unwrap()..];
    let record: Value = serde_json::from_str(json).unwrap();
    assert_eq!(
        record["http_buffered_trace"]["response"]["headers"][0]["value"],
        "200"
    );
    assert_eq!(record_lines(&envoy), 0, "the log sink sets no filter state");
}

#[test]
fn http_sink_posts_batches_to_a_collector() {
    let up = Upstream::start();
    let collector = Upstream::start();
    let config = json!({"sink": {"http": {"cluster": "collector", "path": "/v1/records", "batch_size": 3, "flush_interval_ms": 50}}});
    let mut bootstrap = Bootstrap::new(up.port()).listener_with(
        "main",
        vec![tap(config)],
        virtual_hosts(),
        json!({}),
    );
    bootstrap = bootstrap.cluster("collector", collector.port());
    let envoy = Envoy::start(&bootstrap);
    for i in 0..7 {
        Request::get(&format!("/c/{i}")).send(
            envoy.addr("main"),
            if i % 2 == 0 { Proto::H1 } else { Proto::H2 },
        );
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while collector
        .received()
        .iter()
        .map(|r| {
            r.body
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .count()
        })
        .sum::<usize>()
        < 7
    {
        assert!(
            std::time::Instant::now() < deadline,
            "collector got {:?}",
            collector.received()
        );
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    let posts = collector.received();
    assert!(posts.len() >= 3, "7 records in batches of at most 3");
    for post in &posts {
        assert_eq!(
            (post.method.as_str(), post.path.as_str()),
            ("POST", "/v1/records")
        );
        assert_eq!(post.header("content-type"), [&b"application/x-ndjson"[..]]);
        let lines: Vec<&[u8]> = post
            .body
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        assert!((1..=3).contains(&lines.len()));
        for line in lines {
            let record: Value = serde_json::from_slice(line).unwrap();
            assert!(record["http_buffered_trace"]["request"]["headers"].is_array());
        }
    }
    assert_eq!(
        (stat(&envoy, "tapped"), stat(&envoy, "sink_errors")),
        (7, 0)
    );
}

#[test]
fn http_sink_counts_drops_and_errors_without_blocking_requests() {
    let up = Upstream::start();
    // A collector that refuses: a port nobody listens on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = json!({"sink": {"http": {"cluster": "collector", "batch_size": 2, "max_queue": 4, "flush_interval_ms": 3600000}}});
    let bootstrap = Bootstrap::new(up.port())
        .listener_with("main", vec![tap(config)], virtual_hosts(), json!({}))
        .cluster("collector", dead);
    let envoy = Envoy::start(&bootstrap);
    for i in 0..10 {
        let response = Request::get(&format!("/q/{i}")).send(envoy.addr("main"), Proto::H1);
        assert_eq!(response.status, 200, "requests never wait for the sink");
    }
    // No flush within the hour-long interval: 4 queued, 6 dropped.
    assert_eq!(stat(&envoy, "sink_dropped"), 6);
    assert_eq!(stat(&envoy, "tapped"), 4);

    // Flushing to the dead collector: every record sent is counted as an error.
    let config = json!({"sink": {"http": {"cluster": "collector", "batch_size": 2, "flush_interval_ms": 20}}});
    let bootstrap = Bootstrap::new(up.port())
        .listener_with("main", vec![tap(config)], virtual_hosts(), json!({}))
        .cluster("collector", dead);
    let envoy = Envoy::start(&bootstrap);
    for i in 0..5 {
        Request::get(&format!("/e/{i}")).send(envoy.addr("main"), Proto::H2);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while stat(&envoy, "sink_errors") < 5 {
        assert!(
            std::time::Instant::now() < deadline,
            "sink_errors = {}",
            stat(&envoy, "sink_errors")
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(stat(&envoy, "sink_errors"), 5);
}

#[test]
fn streams_reset_midway_are_recorded_as_incomplete() {
    use std::io::Write;
    let up = Upstream::start();
    let envoy = start(
        &up,
        vec![tap(
            json!({"max_request_bytes": 65536, "max_response_bytes": 65536}),
        )],
    );
    // The client announces 1000 bytes, sends 10, and goes away.
    {
        let mut s = std::net::TcpStream::connect(envoy.addr("main")).unwrap();
        s.write_all(b"POST /abort HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n0123456789")
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // The upstream announces 100000 bytes, sends 5000, and closes.
    let response = Request::get("/cut")
        .header("x-echo-body-size", "100000")
        .header("x-echo-truncate", "5000")
        .send_h2(envoy.addr("main"));
    assert!(response.is_err(), "the client sees the reset");
    let records = records(&envoy, 2);
    let find = |path: &str| find_by_path(&records, path);
    let aborted = find("/abort");
    assert_eq!(aborted["incomplete"], true);
    assert_eq!(
        body_bytes(&aborted["http_buffered_trace"]["request"]),
        b"0123456789"
    );
    let cut = find("/cut");
    assert_eq!(cut["incomplete"], true);
    let response = &cut["http_buffered_trace"]["response"];
    assert_eq!(response["headers"][0]["value"], "200");
    assert_eq!(body_bytes(response), &pattern(100_000)[..5000]);
    assert_eq!(stat(&envoy, "incomplete"), 2);
    // The VM is fine afterwards.
    assert_eq!(
        Request::get("/after")
            .send(envoy.addr("main"), Proto::H1)
            .status,
        200
    );
    records_len_at_least(&envoy, 3);
}

fn records_len_at_least(envoy: &Envoy, n: usize) {
    assert!(records(envoy, n).len() >= n);
}

#[test]
fn large_bodies_use_bounded_memory() {
    const MIB: usize = 1024 * 1024;
    let up = Upstream::start();
    let envoy = start(
        &up,
        vec![tap(
            json!({"max_request_bytes": 65536, "max_response_bytes": 65536}),
        )],
    );
    // Warm up so that the baseline includes Envoy's pools and the VM.
    Request::new("POST", "/warm")
        .body(pattern(MIB))
        .header("x-echo-body-size", MIB.to_string())
        .send(envoy.addr("main"), Proto::H1);
    let before = envoy.rss_kib();
    let response = Request::new("POST", "/big")
        .body(pattern(50 * MIB))
        .chunked()
        .header("x-echo-body-size", (50 * MIB).to_string())
        .send(envoy.addr("main"), Proto::H1);
    assert_eq!((response.status, response.body.len()), (200, 50 * MIB));
    assert_eq!(up.last().body.len(), 50 * MIB);
    let after = envoy.rss_kib();
    let record = records(&envoy, 2)
        .into_iter()
        .find(|r| r.to_string().contains("/big"))
        .unwrap();
    let trace = &record["http_buffered_trace"];
    assert_eq!(body_bytes(&trace["request"]).len(), 64 * 1024);
    assert_eq!(body_bytes(&trace["response"]).len(), 64 * 1024);
    assert_eq!(
        (
            trace["request"]["body"]["truncated"].clone(),
            trace["response"]["body"]["truncated"].clone()
        ),
        (json!(true), json!(true))
    );
    let growth = after.saturating_sub(before);
    println!("Envoy RSS before {before} KiB, after 2 x 50 MiB through the tap {after} KiB (+{growth} KiB)");
    assert!(
        growth < 16 * 1024,
        "RSS grew by {growth} KiB while 100 MiB streamed through a 64 KiB tap"
    );
}

#[test]
fn bad_configurations_are_refused() {
    let up = Upstream::start();
    let cases = [
        (
            json!({"match": {"path": {"regex": "(unclosed"}}}),
            "field `match.path.regex`: invalid regex",
        ),
        (
            json!({"max_request_bytes": 5_000_000}),
            "field `max_request_bytes`: 5000000 is above max_bytes_hard_limit",
        ),
        (
            json!({"sink": {"http": {"path": "/x"}}}),
            "field `sink.http.cluster`: is missing",
        ),
        (
            json!({"redact": ["cookie"]}),
            "field `redact`: unknown field",
        ),
    ];
    for (config, message) in cases {
        Envoy::refuses(&Bootstrap::http(up.port(), vec![tap(config)]), &[message]);
    }
}

#[test]
fn hostile_headers_are_recorded_faithfully() {
    use base64::Engine;
    let up = Upstream::start();
    let envoy = start(&up, vec![tap(json!({}))]);
    let big = "v".repeat(50_000);
    Request::get("/a%2Fb/../c//d?x=%00")
        .header("x-bin", b"\xff\xfeok")
        .header("x-big", &big)
        .header("x-quote", "\"\\ \tx")
        .send(envoy.addr("main"), Proto::H1);
    let record = &records(&envoy, 1)[0];
    let headers = record["http_buffered_trace"]["request"]["headers"]
        .as_array()
        .unwrap()
        .clone();
    let get = |k: &str| headers.iter().find(|h| h["key"] == k).unwrap().clone();
    assert_eq!(
        get(":path")["value"],
        "/a%2Fb/../c//d?x=%00",
        "the path as Envoy forwarded it"
    );
    assert_eq!(get("x-bin")["value"], "\u{fffd}\u{fffd}ok");
    let raw = base64::engine::general_purpose::STANDARD
        .decode(get("x-bin")["raw_value"].as_str().unwrap())
        .unwrap();
    assert_eq!(raw, b"\xff\xfeok", "raw_value keeps the exact bytes");
    assert_eq!(get("x-big")["value"].as_str().unwrap().len(), 50_000);
    assert_eq!(get("x-quote")["value"], "\"\\ \tx");
    assert!(get(":path").get("raw_value").is_none());
}

#[test]
fn two_taps_on_one_key_never_break_the_vm() {
    // Two tap filters in one chain write the same filter-state key: Envoy may
    // refuse the second write. That must cost a counted record, not the VM.
    let up = Upstream::start();
    let envoy = start(&up, vec![tap(json!({})), tap(json!({}))]);
    for i in 0..3 {
        let response = Request::get(&format!("/twice/{i}")).send(envoy.addr("main"), Proto::H1);
        assert_eq!(response.status, 200);
    }
    assert_eq!(records(&envoy, 3).len(), 3);
    assert_eq!(stat(&envoy, "tapped") + stat(&envoy, "sink_errors"), 6);
    let log = envoy.log();
    assert!(
        !log.contains("panicked") && !log.contains("unexpected status"),
        "{log}"
    );
}

/// A request a filter after the tap answers itself (l7_policy's 403, the
/// tap first as in the shipped manifests) is a complete response: the record
/// holds the reply's status, headers and body, and is not incomplete. The
/// matcher still sees the headers the filters after the tap set.
#[test]
fn local_replies_of_the_filters_after_the_tap_are_recorded_whole() {
    let up = Upstream::start();
    let policy = wasm_filter(
        "l7_policy",
        &json!({"rules": [
            {"method": "GET", "path": "/public/.*"},
            {"method": "POST", "path": "/public/upload"}
        ]}),
    );
    // cf_headers stamps the header the tap's matcher asks for, after the tap.
    let stamp = wasm_filter(
        "cf_headers",
        &json!({"app_guid": "app-1", "process_type": "web", "org_guid": "o", "space_guid": "s"}),
    );
    let matched = json!({"match": {"request_header": {"name": "cf-app-id", "exact": "app-1"}},
                         "max_request_bytes": 4096, "max_response_bytes": 4096});
    let envoy = start(&up, vec![tap(matched), stamp, policy]);
    for (path, proto) in [
        ("/admin/h1", Proto::H1),
        ("/admin/h2", Proto::H2),
        ("/public/%2e%2e/admin", Proto::H1),
    ] {
        Request::new("POST", path)
            .body("payload")
            .send(envoy.addr("main"), proto);
    }
    Request::get("/public/ok").send(envoy.addr("main"), Proto::H2);
    Request::new("POST", "/public/upload")
        .body("payload")
        .send(envoy.addr("main"), Proto::H1);
    let records = records(&envoy, 5);
    for (path, status, body) in [
        ("/admin/h1", "403", &b"Access denied\r\n"[..]),
        ("/admin/h2", "403", b"Access denied\r\n"),
        ("/public/%2e%2e/admin", "400", b"Bad request: "),
        ("/public/ok", "200", b""),
        ("/public/upload", "200", b""),
    ] {
        let record = find_by_path(&records, path);
        assert!(record.get("incomplete").is_none(), "{record}");
        let response = &record["http_buffered_trace"]["response"];
        assert_eq!(
            response["headers"][0],
            json!({"key": ":status", "value": status})
        );
        assert!(body_bytes(response).starts_with(body), "{path}: {response}");
    }
    // The body of a request that matched only on the stamped header.
    let upload = find_by_path(&records, "/public/upload");
    assert_eq!(
        body_bytes(&upload["http_buffered_trace"]["request"]),
        b"payload"
    );
    assert_eq!(stat(&envoy, "tapped"), 5);
    assert_eq!(stat(&envoy, "incomplete"), 0);
}

/// Istio's metadata exchange headers (from Istio 1.14.3, as in
/// `tests/peer_metadata.rs`).
const SEED_ID: &str = "sidecar~172.21.206.228~netshoot.mark~mark.svc.cluster.local";

/// The values a record holds of `x-envoy-peer-metadata` and `-id`, in
/// request headers and trailers, in any case or `_` spelling.
fn metadata_values(record: &Value) -> Vec<String> {
    let request = &record["http_buffered_trace"]["request"];
    ["headers", "trailers"]
        .iter()
        .flat_map(|list| request[list].as_array().cloned().unwrap_or_default())
        .filter(|h| {
            let key = h["key"]
                .as_str()
                .unwrap_or_default()
                .to_ascii_lowercase()
                .replace('_', "-");
            key.starts_with("x-envoy-peer-metadata") || key == "baggage"
        })
        .map(|h| h["value"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The caller's whole workload metadata, as Istio's exchange sends it, never
/// reaches a record by default: over HTTP/1.1 (any case, and as a trailer)
/// and HTTP/2 the values are `[redacted]`, unless the configuration asks for
/// them. Where peer_metadata runs on the stream, the record's
/// `peer.metadata` is the caller it decoded, read from its filter state:
/// verified over mTLS by the certificate, contradicted by another
/// namespace's, unverified without one. Before or after the tap (its record
/// is written when the stream ends), and in the suite.
#[test]
fn peer_metadata_headers_are_redacted_and_the_decoded_caller_recorded() {
    let up = Upstream::start();
    let pki = Pki::new();
    let server = pki.server();
    let mut tls = pki.downstream_tls(&server, false)["transport_socket"].clone();
    tls["typed_config"]["common_tls_context"]["alpn_protocols"] = json!(["h2", "http/1.1"]);
    let peer_metadata = |config: Value| wasm_filter("peer_metadata", &config);
    let mut bootstrap = Bootstrap::new(up.port());
    for (name, filters) in [
        ("alone", vec![tap(json!({}))]),
        (
            "recorded",
            vec![tap(json!({"record_peer_metadata_headers": true}))],
        ),
        ("after", vec![tap(json!({})), peer_metadata(json!({}))]),
        (
            "before",
            vec![
                peer_metadata(json!({"remove_metadata_headers": false})),
                tap(json!({})),
            ],
        ),
        (
            "suite",
            vec![wasm_filter(
                "suite",
                &json!({"tap_http": {}, "peer_metadata": {}}),
            )],
        ),
    ] {
        bootstrap = bootstrap.listener_with(
            name,
            filters,
            virtual_hosts(),
            record_access_log(&format!("{name}.jsonl")),
        );
        if !matches!(name, "alone" | "recorded") {
            bootstrap = bootstrap.chain_field(name, "transport_socket", tls.clone());
        }
    }
    let envoy = Envoy::start(&bootstrap);
    let metadata = |request: Request| {
        request
            .header("X-Envoy-Peer-Metadata", PEER_METADATA_SEED)
            .header("x-envoy-peer-metadata-id", SEED_ID)
    };
    // Ambient mode's carrier of the same metadata (and of the app's own
    // OpenTelemetry baggage).
    const BAGGAGE: &str =
        "k8s.namespace.name=mark,k8s.deployment.name=netshoot,service.name=netshoot";
    let with_baggage = |request: Request| metadata(request).header("Baggage", BAGGAGE);
    let leaked = |record: &Value| {
        let line = record.to_string();
        line.contains(PEER_METADATA_SEED) || line.contains(SEED_ID) || line.contains(BAGGAGE)
    };

    // Without peer_metadata: redacted, and nothing decoded.
    let addr = envoy.addr("alone");
    with_baggage(Request::get("/alone/h1")).send(addr, Proto::H1);
    assert_eq!(
        up.last().header("x-envoy-peer-metadata"),
        [PEER_METADATA_SEED.as_bytes()],
        "the tap changes no traffic"
    );
    with_baggage(Request::get("/alone/h2")).send(addr, Proto::H2);
    Request::new("POST", "/alone/trailer")
        .body("x")
        .trailer("x-envoy-peer-metadata", PEER_METADATA_SEED)
        .send(addr, Proto::H1);
    let records = read_records(&envoy.scratch().join("alone.jsonl"), 3);
    for (path, count) in [("/alone/h1", 3), ("/alone/h2", 3), ("/alone/trailer", 1)] {
        let record = find_by_path(&records, path);
        assert_eq!(
            metadata_values(record),
            vec!["[redacted]"; count],
            "{record}"
        );
        assert!(!leaked(record), "{record}");
        assert_eq!(record["peer"], json!({}), "{record}");
    }
    with_baggage(Request::get("/recorded")).send(envoy.addr("recorded"), Proto::H1);
    let record = &read_records(&envoy.scratch().join("recorded.jsonl"), 1)[0];
    assert_eq!(
        metadata_values(record),
        [PEER_METADATA_SEED, SEED_ID, BAGGAGE]
    );

    // With peer_metadata, over mTLS.
    let netshoot = "spiffe://cluster.local/ns/mark/sa/netshoot";
    let attacker = "spiffe://cluster.local/ns/attacker/sa/default";
    let certs = [pki.client(netshoot), pki.client(attacker)];
    let claims = json!({"workload": "netshoot", "namespace": "mark", "name": "netshoot",
                        "app": "netshoot", "version": "latest", "cluster": "Kubernetes"});
    let with = |verified: bool, claims: &Value| {
        let mut metadata = json!({"verified": verified});
        for (k, v) in claims.as_object().into_iter().flatten() {
            metadata[k] = v.clone();
        }
        metadata
    };
    let cases = [
        (
            "netshoot-h1",
            Some(0),
            Proto::H1,
            json!({"principal": netshoot, "metadata": with(true, &claims)}),
        ),
        (
            "netshoot-h2",
            Some(0),
            Proto::H2,
            json!({"principal": netshoot, "metadata": with(true, &claims)}),
        ),
        (
            "attacker",
            Some(1),
            Proto::H1,
            json!({"principal": attacker, "metadata": {"verified": false}}),
        ),
        (
            "no-certificate",
            None,
            Proto::H1,
            json!({"metadata": with(false, &claims)}),
        ),
    ];
    for listener in ["after", "before", "suite"] {
        let target = envoy.addr(listener);
        for (case, cert, proto, _) in &cases {
            let alpn = if *proto == Proto::H2 {
                "h2"
            } else {
                "http/1.1"
            };
            let bridge = pki.bridge(target, cert.map(|i| &certs[i]), alpn);
            let response =
                metadata(Request::get(&format!("/{listener}/{case}"))).send(bridge.addr(), *proto);
            assert_eq!(response.status, 200, "{listener} {case}");
        }
        let records = read_records(&envoy.scratch().join(format!("{listener}.jsonl")), 4);
        for (case, _, _, peer) in &cases {
            let record = find_by_path(&records, &format!("/{listener}/{case}"));
            assert_eq!(&record["peer"], peer, "{listener} {case}: {record}");
            assert!(!leaked(record), "{listener} {case}: {record}");
            // peer_metadata before the tap keeps the headers here: the tap
            // redacts them. After it (and in the suite) it removed them.
            let kept = if listener == "before" { 2 } else { 0 };
            assert_eq!(
                metadata_values(record),
                vec!["[redacted]"; kept],
                "{listener} {case}"
            );
        }
    }
}
