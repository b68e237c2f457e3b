//! Every example under examples/ is a configuration the pinned Envoy accepts,
//! and each serves traffic as its README says.

use harness::client::Proto;
use harness::tap::read_records;
use harness::{paths, Envoy, Request, Upstream};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Mutex;

/// The examples listen on fixed ports (the app on 18080): one at a time.
static FIXED_PORTS: Mutex<()> = Mutex::new(());

fn example_configs() -> Vec<PathBuf> {
    let mut found = Vec::new();
    let root = paths::workspace_root().join("examples");
    for entry in std::fs::read_dir(&root).expect("examples/") {
        let config = entry.expect("entry").path().join("envoy.yaml");
        if config.exists() {
            found.push(config);
        }
    }
    found.sort();
    found
}

#[test]
fn smoke_every_example_validates() {
    let configs = example_configs();
    assert!(!configs.is_empty(), "no examples/*/envoy.yaml found");
    // The tap example's documented prerequisite: Envoy opens its log file at start.
    for dir in ["/tmp/tap_http", "/tmp/tap_tcp"] {
        std::fs::create_dir_all(dir).expect("create the tap examples' directories");
    }
    for config in configs {
        if let Err(log) = Envoy::validate(&config) {
            panic!("{} does not validate:\n{log}", config.display());
        }
    }
}

#[test]
fn every_example_has_a_compose_file_on_the_same_config() {
    for config in example_configs() {
        let dir = config.parent().expect("dir");
        let compose = std::fs::read_to_string(dir.join("docker-compose.yaml"))
            .unwrap_or_else(|e| panic!("{}: docker-compose.yaml: {e}", dir.display()));
        assert!(
            compose.contains("./envoy.yaml:"),
            "{}: mounts its envoy.yaml",
            dir.display()
        );
        assert!(
            compose.contains("../../dist:/work/dist"),
            "{}: mounts dist/",
            dir.display()
        );
        assert!(
            compose.contains("image: envoyproxy/envoy:v1.40.0"),
            "{}: uses the pinned Envoy",
            dir.display()
        );
        assert!(
            dir.join("README.md").exists(),
            "{}: has a README",
            dir.display()
        );
    }
}

#[test]
fn cf_headers_example_serves_traffic() {
    let _ports = FIXED_PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let config = paths::workspace_root().join("examples/cf_headers/envoy.yaml");
    let app = Upstream::bind("127.0.0.1:18080".parse().expect("addr"));
    let envoy = Envoy::try_start_file(&config, &[]).unwrap_or_else(|e| panic!("{e}"));
    for proto in [Proto::H1, Proto::H2] {
        let response = Request::get("/")
            .header("CF-App-Id", "spoofed")
            .send(envoy.addr("sidecar"), proto);
        assert_eq!(response.status, 200);
        assert_eq!(
            app.last().header("cf-app-id"),
            [&b"eb1534db-8765-430d-adfe-77fd1a8e45a9"[..]]
        );

        let response = Request::get("/")
            .authority("x.worker.apps.example.com")
            .send(envoy.addr("gateway"), proto);
        assert_eq!(response.header("cf-app-process-type"), [&b"worker"[..]]);
        assert_eq!(
            app.last().header("cf-app-id"),
            [&b"a96c7067-c0cd-474a-b83b-68b1980979c2"[..]]
        );

        let response = Request::get("/")
            .authority("nobody.example.com")
            .send(envoy.addr("gateway"), proto);
        assert_eq!(response.status, 503);
    }
    assert_eq!(envoy.counter("wasmcustom.cf_headers.stamped"), 4);
    assert_eq!(envoy.counter("wasmcustom.cf_headers.rejected"), 2);
}

#[test]
fn tap_http_example_records_traffic() {
    let _ports = FIXED_PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let dir = std::path::Path::new("/tmp/tap_http");
    std::fs::create_dir_all(dir).expect("create /tmp/tap_http");
    let file = dir.join("records.jsonl");
    let _ = std::fs::remove_file(&file);
    let config = paths::workspace_root().join("examples/tap_http/envoy.yaml");
    let _app = Upstream::bind("127.0.0.1:18080".parse().expect("addr"));
    let envoy = Envoy::try_start_file(&config, &[]).unwrap_or_else(|e| panic!("{e}"));
    Request::get("/health").send(envoy.addr("inbound"), Proto::H1);
    Request::new("POST", "/api/echo")
        .header("authorization", "Bearer s3cret")
        .body("hello")
        .send(envoy.addr("inbound"), Proto::H2);
    let records = read_records(&file, 1);
    assert_eq!(records.len(), 1, "/health is not recorded");
    let request = &records[0]["http_buffered_trace"]["request"];
    assert_eq!(request["body"]["as_bytes"], "aGVsbG8=");
    assert!(request["headers"].to_string().contains("[redacted]"));
    assert_eq!(envoy.counter("wasmcustom.tap_http.tapped"), 1);
    assert_eq!(envoy.counter("wasmcustom.tap_http.not_matched"), 1);
}

#[test]
fn tap_tcp_example_records_traffic() {
    let _ports = FIXED_PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let dir = std::path::Path::new("/tmp/tap_tcp");
    std::fs::create_dir_all(dir).expect("create /tmp/tap_tcp");
    let file = dir.join("records.jsonl");
    let _ = std::fs::remove_file(&file);
    let config = paths::workspace_root().join("examples/tap_tcp/envoy.yaml");
    let _app = Upstream::bind("127.0.0.1:18080".parse().expect("addr"));
    let envoy = Envoy::try_start_file(&config, &[]).unwrap_or_else(|e| panic!("{e}"));
    let mut conn = std::net::TcpStream::connect(envoy.addr("tcp")).expect("connect");
    conn.write_all(b"GET /hello HTTP/1.1\r\nhost: app\r\nconnection: close\r\n\r\n")
        .expect("write");
    conn.shutdown(std::net::Shutdown::Write)
        .expect("half-close");
    let mut response = Vec::new();
    conn.read_to_end(&mut response).expect("read");
    assert!(response.starts_with(b"HTTP/1.1 200"), "{response:?}");
    let records = read_records(&file, 1);
    let events = records[0]["socket_buffered_trace"]["events"]
        .as_array()
        .expect("events");
    assert!(events[0]["read"]["data"]["as_bytes"]
        .as_str()
        .expect("read data")
        .starts_with("R0VUIC9oZWxsbyBIVFRQLzEuMQ")); // "GET /hello HTTP/1.1"
    assert!(events.iter().any(|e| e.get("write").is_some()));
    assert!(events.last().expect("event").get("closed").is_some());
    assert_eq!(envoy.counter("wasmcustom.tap_tcp.tapped"), 1);
}

#[test]
fn peer_metadata_example_decodes_the_sample() {
    let _ports = FIXED_PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let dir = paths::workspace_root().join("examples/peer_metadata");
    let sample = std::fs::read_to_string(dir.join("sample.b64")).expect("sample.b64");
    let app = Upstream::bind("127.0.0.1:18080".parse().expect("addr"));
    let envoy =
        Envoy::try_start_file(&dir.join("envoy.yaml"), &[]).unwrap_or_else(|e| panic!("{e}"));
    let response = Request::get("/")
        .header("x-envoy-peer-metadata", sample.trim())
        .header("x-peer-workload", "spoofed")
        .send(envoy.addr("inbound"), Proto::H1);
    assert_eq!(response.status, 200);
    let got = app.last();
    assert_eq!(got.header("x-peer-workload"), [&b"netshoot"[..]]);
    assert_eq!(got.header("x-peer-namespace"), [&b"mark"[..]]);
    assert_eq!(got.header("x-peer-verified"), [&b"false"[..]]);
    assert!(got.header("x-envoy-peer-metadata").is_empty());
    assert_eq!(envoy.counter("wasmcustom.peer_metadata.decoded"), 1);
}

#[test]
fn l7_policy_example_guards_the_death_star() {
    let _ports = FIXED_PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let config = paths::workspace_root().join("examples/l7_policy/envoy.yaml");
    let app = Upstream::bind("127.0.0.1:18080".parse().expect("addr"));
    let envoy = Envoy::try_start_file(&config, &[]).unwrap_or_else(|e| panic!("{e}"));
    let landed =
        Request::new("POST", "/v1/request-landing").send(envoy.addr("deathstar"), Proto::H1);
    assert_eq!(landed.status, 200);
    assert_eq!(app.last().path, "/v1/request-landing");
    let exploded = Request::new("PUT", "/v1/exhaust-port").send(envoy.addr("deathstar"), Proto::H2);
    assert_eq!(
        (exploded.status, exploded.body_text().as_str()),
        (403, "Access denied\r\n")
    );
    let sneaky =
        Request::new("POST", "/v1/x/../request-landing").send(envoy.addr("deathstar"), Proto::H1);
    assert_eq!(sneaky.status, 400);
    assert_eq!(envoy.counter("wasmcustom.l7_policy.denied"), 1);
    assert_eq!(envoy.counter("wasmcustom.l7_policy.invalid_path"), 1);
}
