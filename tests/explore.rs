use harness::client::Proto;
use harness::{wasm_filter, Bootstrap, Envoy, Request, Upstream};
use serde_json::json;

#[test]
fn explore_tap() {
    let up = Upstream::start();
    let native = json!({"name": "envoy.filters.http.tap", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.tap.v3.Tap",
        "common_config": {"static_config": {"match": {"any_match": true}, "output_config": {
            "sinks": [{"format": "JSON_BODY_AS_BYTES", "file_per_tap": {"path_prefix": "@SCRATCH@/native"}}],
            "max_buffered_rx_bytes": 10, "max_buffered_tx_bytes": 20}}}}});
    let ours = wasm_filter(
        "tap_http",
        &json!({"max_request_bytes": 10, "max_response_bytes": 20, "redact_headers": []}),
    );
    let access_log = json!({"access_log": [{
        "name": "envoy.access_loggers.file",
        "filter": {"extension_filter": {"name": "envoy.access_loggers.extension_filters.cel", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter",
            "expression": "'wasm.tap_trace' in filter_state"}}},
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "path": "@SCRATCH@/taps.jsonl",
            "log_format": {"text_format_source": {"inline_string": "%FILTER_STATE(wasm.tap_trace:PLAIN)%\n"}}}}]});
    let vh = json!([{"name": "x", "domains": ["*"], "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "upstream"}}]}]);
    let envoy = Envoy::start(&Bootstrap::new(up.port()).listener_with(
        "main",
        vec![native, ours],
        vh,
        access_log,
    ));
    Request::get("/get?q=1")
        .header("x-a", "1")
        .header("x-a", "2")
        .send(envoy.addr("main"), Proto::H1);
    Request::new("POST", "/post")
        .body("hello world, this is long")
        .send(envoy.addr("main"), Proto::H1);
    Request::new("POST", "/empty").send(envoy.addr("main"), Proto::H2);
    // A reset midway: content-length 1000, 10 bytes, close.
    {
        use std::io::Write;
        let mut s = std::net::TcpStream::connect(envoy.addr("main")).unwrap();
        s.write_all(b"POST /reset HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n0123456789")
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    for e in std::fs::read_dir(envoy.scratch()).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        if name.starts_with("native") || name.starts_with("taps") {
            let text = std::fs::read_to_string(&p).unwrap();
            if name.starts_with("native") {
                let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                println!("== {name}\n{}", v);
            } else {
                println!("== {name}\n{text}");
            }
        }
    }
    println!(
        "{}",
        envoy
            .log()
            .lines()
            .filter(|l| l.contains("wasm") && !l.contains("server.cc"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
