//! The TCP tap in a real Envoy: a network filter before tcp_proxy to a TCP
//! echo server, records written by tcp_proxy's file access log.

use base64::Engine;
use harness::tap::{native_socket_tap, read_native, read_records, record_access_log};
use harness::tcp::exchange;
use harness::{wasm_network_filter, Bootstrap, Envoy, TcpEcho};
use serde_json::{json, Value};

fn tap_envoy(echo: &TcpEcho, config: Value, chain_extra: Value) -> Envoy {
    let bootstrap = Bootstrap::new(echo.port())
        .cluster("echo", echo.port())
        .tcp_listener(
            "tcp",
            vec![wasm_network_filter("tap_tcp", &config)],
            "echo",
            chain_extra,
            record_access_log("records.jsonl"),
        );
    Envoy::start(&bootstrap)
}

fn b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .expect("base64")
}

#[test]
fn smoke_one_connection() {
    let echo = TcpEcho::start();
    let envoy = tap_envoy(&echo, json!({}), json!({}));
    let back = exchange(envoy.addr("tcp"), b"hello tap", 4);
    assert_eq!(back, b"hello tap");
    let records = read_records(&envoy.scratch().join("records.jsonl"), 1);
    println!("{}", serde_json::to_string_pretty(&records[0]).unwrap());
    println!("{}", envoy.log());
    let _ = b64("");
    let _ = (native_socket_tap(1, 1), read_native);
}
