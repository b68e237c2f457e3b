//! The `tap` tool on records the real filters wrote (and Envoy's native tap
//! beside them): both formats read the same, HAR 1.2 structure, and a pcap
//! that scapy (and, in `make test-extra`, tshark) decodes into the same HTTP
//! exchanges and TCP bytes.

use harness::client::Proto;
use harness::paths::{venv_tool, workspace_root};
use harness::tap::{
    assert_mitmproxy_reads, mitmproxy_flows, native_tap, read_native, read_records,
    record_access_log,
};
use harness::tcp::exchange;
use harness::{wasm_filter, wasm_network_filter, Bootstrap, Envoy, Request, TcpEcho, Upstream};
use l7_policy::config::Config;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use tap_tool::filter::{parse_statuses, Filter};
use tap_tool::policy::run_check;
use tap_tool::record::{parse, parse_http, Direction, HttpRecord, Record};
use tap_tool::suggest::{suggest, Options};
use tap_tool::{har, pcap, show, split};

struct Taps {
    envoy: Envoy,
    _app: Upstream,
    _echo: TcpEcho,
}

/// Envoy with tap_http and Envoy's tap filter on one HTTP listener, tap_tcp
/// on a TCP listener, after a few varied exchanges.
fn recorded() -> Taps {
    let app = Upstream::start();
    let echo = TcpEcho::start();
    let config = json!({"record_downstream_connection": true, "record_stream_info": true,
                        "redact_headers": [], "redact_words": [],
                        "max_request_bytes": 65536, "max_response_bytes": 65536});
    let routes = json!([{"name": "app", "domains": ["*"], "routes": [
        {"match": {"prefix": "/"}, "route": {"cluster": "upstream"}}]}]);
    let bootstrap = Bootstrap::new(app.port())
        .listener_with(
            "http",
            vec![wasm_filter("tap_http", &config), native_tap(65536, 65536)],
            routes,
            record_access_log("http.jsonl"),
        )
        .cluster("echo", echo.port())
        .tcp_listener(
            "tcp",
            vec![wasm_network_filter(
                "tap_tcp",
                &json!({"max_read_bytes": 65536, "max_write_bytes": 65536}),
            )],
            "echo",
            json!({}),
            record_access_log("tcp.jsonl"),
        );
    let envoy = Envoy::start(&bootstrap);
    let http = envoy.addr("http");
    Request::get("/hello?x=1&y=two").send(http, Proto::H1);
    Request::new("POST", "/api/orders")
        .header("content-type", "application/json")
        .body(r#"{"item": "tea"}"#)
        .send(http, Proto::H2);
    Request::get("/binary")
        .header("x-echo-body-size", "3000")
        .send(http, Proto::H1);
    Request::get("/missing")
        .header("x-echo-status", "404")
        .send(http, Proto::H1);
    let binary: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
    assert_eq!(exchange(envoy.addr("tcp"), &binary, 700), binary);
    read_records(&envoy.scratch().join("http.jsonl"), 4);
    read_native(envoy.scratch(), 4);
    read_records(&envoy.scratch().join("tcp.jsonl"), 1);
    Taps {
        envoy,
        _app: app,
        _echo: echo,
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).expect("read records")
}

fn http_records(text: &str) -> Vec<HttpRecord> {
    let (records, errors) = parse_http(text);
    assert!(errors.is_empty(), "{errors:?}");
    records
}

fn native_text(dir: &Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).expect("dir") {
        let path = entry.expect("entry").path();
        if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("native_"))
        {
            text.push_str(&read(&path));
        }
    }
    text
}

#[test]
fn reads_our_records_and_envoys_the_same() {
    let taps = recorded();
    let ours = http_records(&read(&taps.envoy.scratch().join("http.jsonl")));
    let native = http_records(&native_text(taps.envoy.scratch()));
    assert_eq!((ours.len(), native.len()), (4, 4));
    let id = |r: &HttpRecord| r.request.header_text("x-request-id");
    for record in &ours {
        let twin = native
            .iter()
            .find(|n| id(n) == id(record))
            .expect("the same stream in the native tap");
        assert_eq!(record.request.headers, twin.request.headers);
        assert_eq!(record.request.body, twin.request.body);
        let (a, b) = (
            record.response.as_ref().unwrap(),
            twin.response.as_ref().unwrap(),
        );
        assert_eq!(
            (&a.headers, &a.body, a.body_truncated),
            (&b.headers, &b.body, b.body_truncated)
        );
        assert!(
            record.start_time.is_some() && record.downstream.is_some(),
            "stream info and connection"
        );
    }
    let lines: Vec<String> = ours
        .iter()
        .map(|r| show::list_line(&Record::Http(r.clone())))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("GET") && l.contains("/hello?x=1&y=two") && l.contains(" 200 ")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("/missing") && l.contains(" 404 ")),
        "{lines:?}"
    );
    let sized = ours.iter().find(|r| r.path() == "/binary").unwrap();
    assert_eq!(sized.response.as_ref().unwrap().body.len(), 3000);
    let shown = show::show(&Record::Http(sized.clone()));
    assert!(shown.contains("--- response ---") && shown.contains(":status: 200"));
    let (tcp, _) = parse(&read(&taps.envoy.scratch().join("tcp.jsonl")));
    let shown = show::show(&tcp[0]);
    assert!(
        shown.contains("00000000  00 01 02 03"),
        "binary data shows as a hex dump:\n{shown}"
    );
    let line = show::list_line(&tcp[0]);
    assert!(line.contains("TCP") && line.contains("5000B"), "{line}");
    // Filters and split.
    let (all, _) = parse(&read(&taps.envoy.scratch().join("http.jsonl")));
    let errors = Filter {
        status: Some(parse_statuses("4xx").unwrap()),
        ..Filter::default()
    };
    assert_eq!(all.iter().filter(|r| errors.matches(r)).count(), 1);
    let posts = Filter {
        method: Some("POST".into()),
        ..Filter::default()
    };
    assert_eq!(all.iter().filter(|r| posts.matches(r)).count(), 1);
    let out = taps.envoy.scratch().join("split");
    let n = split::split(&native_text(taps.envoy.scratch()), &Filter::default(), &out).unwrap();
    assert_eq!(n, 4);
    let again = http_records(&read(&out.join("tap_0.json")));
    assert_eq!(again.len(), 1);
}

/// `tap policy` reads Envoy's native tap files as it reads ours: on the same
/// streams it suggests the same policy, and each form allows the other's
/// records.
#[test]
fn policy_from_native_records_is_the_same() {
    let taps = recorded();
    let ours = http_records(&read(&taps.envoy.scratch().join("http.jsonl")));
    let native = http_records(&native_text(taps.envoy.scratch()));
    let options = Options::default();
    let from_ours = suggest(ours.iter(), &options);
    let from_native = suggest(native.iter(), &options);
    // The 404 is not learned, from either: the native records show the
    // app answered by the router's header, ours by their stream info.
    assert_eq!(from_ours.rules.len(), 3, "{}", from_ours.report());
    assert_eq!(from_ours.left_out, from_native.left_out);
    assert_eq!(from_ours.l7_policy(), from_native.l7_policy());
    let config = Config::from_value(&from_native.l7_policy()).unwrap();
    let (report, denied) = run_check(&config, &ours.iter().collect::<Vec<_>>(), false);
    assert!(denied, "{report}");
    assert!(
        report.starts_with("4 requests: 3 allowed, 1 would be denied")
            && report.contains("GET localhost /missing  (recorded 404)"),
        "{report}"
    );
}

/// HAR 1.2's required fields and their types (softwareishard.com/blog/har-12-spec).
fn check_har(doc: &Value) {
    let log = &doc["log"];
    assert_eq!(log["version"], "1.2");
    assert!(log["creator"]["name"].is_string() && log["creator"]["version"].is_string());
    for e in log["entries"].as_array().expect("entries") {
        assert!(
            e["startedDateTime"]
                .as_str()
                .is_some_and(|t| t.contains('T') && t.ends_with('Z')),
            "{e}"
        );
        assert!(e["time"].is_number() && e["cache"].is_object());
        for key in ["send", "wait", "receive"] {
            assert!(e["timings"][key].is_number(), "timings.{key}");
        }
        let rq = &e["request"];
        for key in ["method", "url", "httpVersion"] {
            assert!(rq[key].is_string(), "request.{key}");
        }
        for key in ["cookies", "headers", "queryString"] {
            assert!(rq[key].is_array(), "request.{key}");
        }
        assert!(rq["headersSize"].is_i64() && rq["bodySize"].is_i64());
        let rs = &e["response"];
        assert!(
            rs["status"].is_u64() && rs["statusText"].is_string() && rs["httpVersion"].is_string()
        );
        assert!(
            rs["cookies"].is_array() && rs["headers"].is_array() && rs["redirectURL"].is_string()
        );
        assert!(rs["content"]["size"].is_i64() && rs["content"]["mimeType"].is_string());
        assert!(rs["headersSize"].is_i64() && rs["bodySize"].is_i64());
        for h in rq["headers"]
            .as_array()
            .unwrap()
            .iter()
            .chain(rs["headers"].as_array().unwrap())
        {
            assert!(h["name"].is_string() && h["value"].is_string());
        }
    }
}

#[test]
fn har_from_real_records() {
    let taps = recorded();
    let records = http_records(&read(&taps.envoy.scratch().join("http.jsonl")));
    let doc = har::har(&records.iter().collect::<Vec<_>>());
    check_har(&doc);
    // mitmproxy reads it as written, with the records' own times.
    let file = taps.envoy.scratch().join("records.har");
    std::fs::write(&file, doc.to_string()).unwrap();
    assert_mitmproxy_reads(&file);
    for (flow, record) in mitmproxy_flows(&file).iter().zip(&records) {
        let start = tap_tool::time::micros(record.start_time.as_deref().unwrap()).unwrap();
        let seen = (flow["start"].as_f64().unwrap() * 1000.0).round() as i64;
        assert_eq!(seen, start / 1000, "start time in milliseconds");
        assert_eq!(flow["method"], record.method());
    }
    let entries = doc["log"]["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 4);
    let hello = entries
        .iter()
        .find(|e| e["request"]["url"].as_str().unwrap().contains("/hello"))
        .unwrap();
    assert_eq!(
        hello["request"]["queryString"],
        json!([{"name": "x", "value": "1"}, {"name": "y", "value": "two"}])
    );
    let post = entries
        .iter()
        .find(|e| e["request"]["method"] == "POST")
        .unwrap();
    assert_eq!(post["request"]["postData"]["text"], r#"{"item": "tea"}"#);
    assert_eq!(post["request"]["postData"]["mimeType"], "application/json");
}

/// What a decoder printed; the test fails if it could not run or failed.
fn decoded_by(mut command: Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn tshark(args: &[&str]) -> String {
    let mut command = Command::new("tshark");
    command.args(args);
    decoded_by(command)
}

/// The records of [`recorded`] as a pcap written by the tap tool.
struct Capture {
    /// Keeps Envoy and the upstreams running while the test reads the file.
    _taps: Taps,
    http: Vec<Record>,
    tcp: Vec<Record>,
    file: std::path::PathBuf,
}

fn captured() -> Capture {
    let taps = recorded();
    let (http, _) = parse(&read(&taps.envoy.scratch().join("http.jsonl")));
    let (tcp, _) = parse(&read(&taps.envoy.scratch().join("tcp.jsonl")));
    let mut capture = pcap::Pcap::new(pcap::Format::Pcap);
    for r in http.iter().chain(&tcp) {
        match r {
            Record::Http(h) => capture.http(h),
            Record::Tcp(t) => capture.tcp(t),
        }
    }
    let file = taps.envoy.scratch().join("capture.pcap");
    std::fs::write(&file, capture.finish()).unwrap();
    Capture {
        _taps: taps,
        http,
        tcp,
        file,
    }
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

/// The pcap as scapy (PyPI, in `.venv/`) decodes it: its own TCP reassembly
/// and HTTP dissector, checksums recomputed, sequence numbers followed.
#[test]
fn pcap_that_scapy_decodes() {
    let c = captured();
    let mut command = Command::new(venv_tool("python"));
    command
        .arg(workspace_root().join("tests/pcap_decode.py"))
        .arg(&c.file);
    let decoded: Value =
        serde_json::from_str(&decoded_by(command)).expect("JSON from pcap_decode.py");
    assert_eq!(decoded["problems"], json!([]), "frames with problems");
    let mut expected = Vec::new();
    let mut bodies = Vec::new();
    for r in &c.http {
        if let Record::Http(h) = r {
            expected.push(json!([h.method(), h.path(), ""]));
            expected.push(json!(["", "", h.status().unwrap().to_string()]));
            bodies.push(h.request.body.clone());
            bodies.push(h.response.as_ref().unwrap().body.clone());
        }
    }
    let messages = decoded["http"].as_array().expect("http messages");
    let seen: Vec<Value> = messages.iter().map(|m| json!([m[0], m[1], m[2]])).collect();
    assert_eq!(seen, expected, "scapy's reading of the HTTP streams");
    let seen_bodies: Vec<Vec<u8>> = messages
        .iter()
        .map(|m| hex(m[3].as_str().unwrap()))
        .collect();
    assert_eq!(seen_bodies, bodies, "HTTP bodies");
    assert!(bodies.iter().any(|b| b.len() == 3000), "the 3000-byte body");
    // One TCP stream per record; the TCP record's byte for byte.
    let streams = decoded["streams"].as_array().expect("streams");
    assert_eq!(streams.len(), c.http.len() + c.tcp.len());
    let Record::Tcp(t) = &c.tcp[0] else {
        panic!("a TCP record")
    };
    let last = &streams[c.http.len()];
    let client = hex(last["client"].as_str().unwrap());
    let server = hex(last["server"].as_str().unwrap());
    assert_eq!(client, t.bytes(Direction::Read), "client bytes");
    assert_eq!(server, t.bytes(Direction::Write), "server bytes");
    assert_eq!(client.len(), 5000);
}

/// The same pcap as Wireshark's dissectors read it (`make test-extra`: needs
/// tshark from the system, which `make test` does not).
#[test]
#[ignore = "needs tshark: make test-extra"]
fn pcap_that_tshark_decodes() {
    let c = captured();
    let (http, tcp) = (&c.http, &c.tcp);
    let file = c.file.to_str().unwrap();
    // Every HTTP exchange, as Wireshark's HTTP dissector reads it.
    let decoded = tshark(&[
        "-r",
        file,
        "-Y",
        "http",
        "-T",
        "fields",
        "-E",
        "separator=|",
        "-e",
        "http.request.method",
        "-e",
        "http.request.uri",
        "-e",
        "http.response.code",
    ]);
    let mut expected = Vec::new();
    for r in http {
        if let Record::Http(h) = r {
            expected.push(format!("{}|{}|", h.method(), h.path()));
            expected.push(format!("||{}", h.status().unwrap()));
        }
    }
    let lines: Vec<&str> = decoded.lines().collect();
    assert_eq!(lines, expected, "tshark's reading of the HTTP streams");
    // Bodies: the decoded response body of /binary equals the record's.
    let bodies = tshark(&[
        "-r",
        file,
        "-Y",
        "http.response",
        "-T",
        "fields",
        "-e",
        "http.file_data",
    ]);
    assert!(bodies.lines().count() >= 4);
    // No checksum or sequence problems in any stream.
    let problems = tshark(&[
        "-r",
        file,
        "-o",
        "tcp.check_checksum:TRUE",
        "-o",
        "ip.check_checksum:TRUE",
        "-Y",
        "tcp.checksum.status == 0 || ip.checksum.status == 0 || tcp.analysis.flags",
        "-T",
        "fields",
        "-e",
        "frame.number",
    ]);
    assert_eq!(problems.trim(), "", "frames with problems");
    // The TCP record, byte for byte in each direction (the last stream).
    let Record::Tcp(t) = &tcp[0] else {
        panic!("a TCP record")
    };
    let streams = http.len();
    let follow = tshark(&["-r", file, "-q", "-z", &format!("follow,tcp,raw,{streams}")]);
    let (mut client, mut server) = (Vec::new(), Vec::new());
    for line in follow.lines() {
        let (target, hex) = match line.strip_prefix('\t') {
            Some(hex) => (&mut server, hex),
            None => (&mut client, line),
        };
        if hex.len() % 2 == 0 && !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            target.extend(self::hex(hex));
        }
    }
    assert_eq!(client, t.bytes(Direction::Read), "client bytes");
    assert_eq!(server, t.bytes(Direction::Write), "server bytes");
    assert_eq!(client.len(), 5000);
}

/// Wireshark's reader on a live stream: `tap pcap --out -` piped into
/// `tshark -i -` decodes the first exchange before the second record is
/// written (`make test-extra`: needs tshark from the system).
#[test]
#[ignore = "needs tshark: make test-extra"]
fn tshark_reads_the_live_stream_from_a_pipe() {
    let taps = recorded();
    let text = read(&taps.envoy.scratch().join("http.jsonl"));
    let lines: Vec<&str> = text.lines().collect();
    let expected: Vec<String> = lines
        .iter()
        .map(|l| match &parse(l).0[0] {
            Record::Http(h) => h.path(),
            Record::Tcp(_) => panic!("HTTP records"),
        })
        .collect();
    let mut tap = Command::new(harness::paths::tap_binary())
        .args(["pcap", "--out", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("tap pcap");
    let mut tshark = Command::new("tshark")
        .args([
            "-l",
            "-i",
            "-",
            "-Y",
            "http.request",
            "-T",
            "fields",
            "-e",
            "http.request.uri",
        ])
        .stdin(tap.stdout.take().unwrap())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("tshark");
    let (tx, decoded) = std::sync::mpsc::channel();
    let out = tshark.stdout.take().unwrap();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut input = tap.stdin.take().unwrap();
    for (line, uri) in lines.iter().zip(&expected) {
        use std::io::Write;
        writeln!(input, "{line}").unwrap();
        input.flush().unwrap();
        // This exchange decoded while the next record is not written yet.
        let seen = decoded
            .recv_timeout(std::time::Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("tshark decoded nothing for {uri} within 20 s"));
        assert_eq!(&seen, uri);
    }
    drop(input);
    assert!(tap.wait().unwrap().success());
    let _ = tshark.wait();
}

/// Wireshark shows each record's pcapng comment on its first packet
/// (`make test-extra`: needs tshark).
#[test]
#[ignore = "needs tshark: make test-extra"]
fn tshark_shows_the_record_comments() {
    let taps = recorded();
    let records = taps.envoy.scratch().join("http.jsonl");
    let file = taps.envoy.scratch().join("capture.pcapng");
    let status = Command::new(harness::paths::tap_binary())
        .args(["pcap", "--out"])
        .arg(&file)
        .arg(&records)
        .status()
        .expect("tap pcap");
    assert!(status.success());
    let comments = tshark(&[
        "-r",
        file.to_str().unwrap(),
        "-Y",
        "frame.comment",
        "-T",
        "fields",
        "-e",
        "frame.comment",
    ]);
    let expected: Vec<String> = http_records(&read(&records))
        .iter()
        .map(|h| {
            format!(
                "tap: {} {} -> {}; no client certificate; time from the record",
                h.method(),
                h.path(),
                h.status().unwrap()
            )
        })
        .collect();
    assert_eq!(comments.lines().collect::<Vec<_>>(), expected);
}

/// Envoy's compressor filter behind the tap, so that the tap records the
/// response as it leaves (gzip or br, as the client accepts): the HAR holds
/// the decoded body, and mitmproxy, which encodes it again with the recorded
/// content-encoding, reads back the app's own bytes.
#[test]
fn compressed_responses_read_back_in_mitmproxy() {
    let app = Upstream::start();
    let compressor = |name: &str, kind: &str| {
        json!({"name": format!("compressor.{name}"), "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.compressor.v3.Compressor",
            "compressor_library": {"name": name, "typed_config": {
                "@type": format!("type.googleapis.com/envoy.extensions.compression.{name}.compressor.v3.{kind}")}}}})
    };
    let routes = json!([{"name": "app", "domains": ["*"], "routes": [
        {"match": {"prefix": "/"}, "route": {"cluster": "upstream"}}]}]);
    let bootstrap = Bootstrap::new(app.port()).listener_with(
        "http",
        vec![
            wasm_filter(
                "tap_http",
                &json!({"record_stream_info": true, "max_response_bytes": 65536}),
            ),
            compressor("gzip", "Gzip"),
            compressor("brotli", "Brotli"),
        ],
        routes,
        record_access_log("http.jsonl"),
    );
    let envoy = Envoy::start(&bootstrap);
    let mut plain = Vec::new();
    for coding in ["gzip", "br"] {
        let response = Request::get(&format!("/compressed/{coding}"))
            .header("accept-encoding", coding)
            .send(envoy.addr("http"), Proto::H1);
        assert_eq!(response.header("content-encoding"), [coding.as_bytes()]);
        // The app's bytes: what the client got, decoded on its own.
        let mut decoded = Vec::new();
        let wire = &response.body[..];
        let result = if coding == "gzip" {
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(wire), &mut decoded)
        } else {
            std::io::Read::read_to_end(
                &mut brotli_decompressor::Decompressor::new(wire, 4096),
                &mut decoded,
            )
        };
        result.expect("a compressed body");
        assert!(decoded.starts_with(b"{"), "the echo's JSON");
        plain.push(decoded);
    }
    read_records(&envoy.scratch().join("http.jsonl"), 2);
    let records = http_records(&read(&envoy.scratch().join("http.jsonl")));
    for (record, coding) in records.iter().zip(["gzip", "br"]) {
        let m = record.response.as_ref().unwrap();
        assert_eq!(
            m.header_text("content-encoding"),
            coding,
            "recorded as sent"
        );
    }
    let doc = har::har(&records.iter().collect::<Vec<_>>());
    check_har(&doc);
    let file = envoy.scratch().join("compressed.har");
    std::fs::write(&file, doc.to_string()).unwrap();
    assert_mitmproxy_reads(&file);
    let flows = mitmproxy_flows(&file);
    for (flow, body) in flows.iter().zip(&plain) {
        let expected: String = body.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(flow["response_body"], expected, "the app's bytes, decoded");
    }
}
