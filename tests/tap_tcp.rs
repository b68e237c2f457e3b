//! The TCP tap in a real Envoy: a network filter before tcp_proxy to a TCP
//! echo server, records written by tcp_proxy's file access log (or Envoy's
//! log, or an HTTP collector), compared with Envoy's own tap transport socket.

use base64::Engine;
use harness::tap::{log_records, native_socket_tap, read_native, read_records, record_access_log};
use harness::tcp::{echo_then_close, exchange};
use harness::{pattern, wasm_network_filter, Bootstrap, Envoy, Lcg, TcpEcho, Upstream};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

const MARKER: &str = "{\"socket_buffered_trace\"";

/// These tests are about the data a record holds: unless a test sets the
/// limits, each keeps 64 KiB per direction (the filter's default keeps none:
/// `no_data_unless_asked`).
fn bootstrap(echo: &TcpEcho, config: &Value, chain_extra: Value, proxy_extra: Value) -> Bootstrap {
    let mut config = config.clone();
    for limit in ["max_read_bytes", "max_write_bytes"] {
        if config.get(limit).is_none() {
            config[limit] = json!(65536);
        }
    }
    Bootstrap::new(echo.port())
        .cluster("echo", echo.port())
        .tcp_listener(
            "tcp",
            vec![wasm_network_filter("tap_tcp", &config)],
            "echo",
            chain_extra,
            proxy_extra,
        )
}

/// With the filter's defaults a record holds the connection's events and
/// sizes, and none of its bytes: they may be credentials.
#[test]
fn no_data_unless_asked() {
    let echo = TcpEcho::start();
    // The filter's own defaults, not this file's (see `bootstrap`).
    let envoy = Envoy::start(
        &Bootstrap::new(echo.port())
            .cluster("echo", echo.port())
            .tcp_listener(
                "tcp",
                vec![wasm_network_filter("tap_tcp", &json!({}))],
                "echo",
                json!({}),
                record_access_log("records.jsonl"),
            ),
    );
    let sent = b"AUTH hunter2-secret\r\n".to_vec();
    assert_eq!(exchange(envoy.addr("tcp"), &sent, 7), sent);
    let record = &records(&envoy, 1)[0];
    assert!(concat(record, "read").is_empty() && concat(record, "write").is_empty());
    assert!(flag(record, "read_truncated") && flag(record, "write_truncated"));
    assert!(!record
        .to_string()
        .contains(&base64::engine::general_purpose::STANDARD.encode(&sent)));
}

/// Envoy with the tap in front of tcp_proxy, records in `records.jsonl`.
fn tap_envoy(echo: &TcpEcho, config: Value) -> Envoy {
    Envoy::start(&bootstrap(
        echo,
        &config,
        json!({}),
        record_access_log("records.jsonl"),
    ))
}

fn records(envoy: &Envoy, count: usize) -> Vec<Value> {
    read_records(&envoy.scratch().join("records.jsonl"), count)
}

fn trace(record: &Value) -> &Value {
    &record["socket_buffered_trace"]
}

fn events(record: &Value) -> &Vec<Value> {
    trace(record)["events"].as_array().expect("events")
}

fn decode(data: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(data["as_bytes"].as_str().expect("as_bytes"))
        .expect("base64")
}

/// Every byte of one direction (`read` or `write`) in event order.
fn concat(record: &Value, direction: &str) -> Vec<u8> {
    events(record)
        .iter()
        .filter_map(|e| e.get(direction))
        .flat_map(|e| decode(&e["data"]))
        .collect()
}

fn trace_id(record: &Value) -> String {
    trace(record)["trace_id"]
        .as_str()
        .expect("trace_id")
        .to_string()
}

fn flag(record: &Value, key: &str) -> bool {
    trace(record)[key].as_bool().expect("flag")
}

fn is_final(record: &Value) -> bool {
    events(record).iter().any(|e| e.get("closed").is_some())
}

/// The records `read` returns, once one of them is a connection's final one.
fn until_closed(read: impl Fn() -> Vec<Value>) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let all = read();
        if all.iter().any(is_final) {
            return all;
        }
        assert!(Instant::now() < deadline, "no final record in {all:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn smoke_binary_data_both_directions_and_half_close() {
    let echo = TcpEcho::start();
    let envoy = tap_envoy(&echo, json!({}));
    let payload: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    let mut client = TcpStream::connect(envoy.addr("tcp")).unwrap();
    let client_port = client.local_addr().unwrap().port();
    for piece in payload.chunks(700) {
        client.write_all(piece).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    client.shutdown(Shutdown::Write).unwrap();
    let mut back = Vec::new();
    client.read_to_end(&mut back).unwrap();
    assert_eq!(back, payload, "the tap changed the bytes");

    let record = &records(&envoy, 1)[0];
    assert_eq!(concat(record, "read"), payload);
    assert_eq!(concat(record, "write"), payload);
    assert!(!flag(record, "read_truncated") && !flag(record, "write_truncated"));
    assert!(trace_id(record).parse::<u64>().is_ok());
    let connection = &trace(record)["connection"];
    assert_eq!(
        connection["local_address"]["socket_address"]["port_value"],
        envoy.addr("tcp").port()
    );
    assert_eq!(
        connection["remote_address"]["socket_address"],
        json!({"address": "127.0.0.1", "port_value": client_port})
    );
    let events = events(record);
    let reads: Vec<&Value> = events.iter().filter_map(|e| e.get("read")).collect();
    assert!(reads.len() >= 5, "one event per chunk: {}", reads.len());
    // The client's half-close, then the server's, then the close.
    assert_eq!(reads.last().unwrap()["end_stream"], true);
    assert!(reads[..reads.len() - 1]
        .iter()
        .all(|r| r["end_stream"] == false));
    let last_write = events.iter().rev().find_map(|e| e.get("write")).unwrap();
    assert_eq!(last_write["end_stream"], true);
    assert!(events.last().unwrap().get("closed").is_some());
    let stamps: Vec<&str> = events
        .iter()
        .map(|e| e["timestamp"].as_str().unwrap())
        .collect();
    assert!(stamps.windows(2).all(|w| w[0] <= w[1]), "{stamps:?}");
    assert_eq!(envoy.counter("wasmcustom.tap_tcp.tapped"), 1);
}

/// Envoy's tap transport socket and ours on the same connections: the same
/// bytes in each direction and the same truncation flags.
#[test]
fn same_bytes_as_envoys_tap_transport_socket() {
    let echo = TcpEcho::start();
    let limit = 64 * 1024;
    let config = json!({"max_read_bytes": limit, "max_write_bytes": limit});
    let envoy = Envoy::start(&bootstrap(
        &echo,
        &config,
        native_socket_tap(limit, limit),
        record_access_log("records.jsonl"),
    ));
    let mut rng = Lcg(7);
    let cases: Vec<(usize, usize)> = vec![
        (0, 1),
        (1, 1),
        (1000, 100),
        (limit as usize - 1, 4096),
        (limit as usize, limit as usize),
        (limit as usize + 1, 1000),
        (200_000, 7000),
        (3 * limit as usize, 65_536),
    ];
    for (i, (size, chunk)) in cases.iter().enumerate() {
        let payload: Vec<u8> = (0..*size).map(|_| rng.below(256) as u8).collect();
        assert_eq!(exchange(envoy.addr("tcp"), &payload, *chunk), payload);
        // One connection at a time, so that both taps have written it.
        records(&envoy, i + 1);
        read_native(envoy.scratch(), i + 1);
    }
    let ours = records(&envoy, cases.len());
    let native = read_native(envoy.scratch(), cases.len());
    let by_id: BTreeMap<String, &Value> = native.iter().map(|r| (trace_id(r), r)).collect();
    assert_eq!(by_id.len(), cases.len());
    for (record, (size, chunk)) in ours.iter().zip(&cases) {
        let case = format!("{size} bytes in {chunk}-byte writes");
        let theirs = by_id
            .get(&trace_id(record))
            .unwrap_or_else(|| panic!("{case}: no native trace with id {}", trace_id(record)));
        for direction in ["read", "write"] {
            assert_eq!(
                concat(record, direction),
                concat(theirs, direction),
                "{case}: {direction} data differs"
            );
        }
        for key in ["read_truncated", "write_truncated"] {
            assert_eq!(flag(record, key), flag(theirs, key), "{case}: {key}");
        }
        assert_eq!(
            flag(record, "read_truncated"),
            *size > limit as usize,
            "{case}"
        );
        for side in ["local_address", "remote_address"] {
            let (a, b) = (
                &trace(record)["connection"][side]["socket_address"],
                &trace(theirs)["connection"][side]["socket_address"],
            );
            assert_eq!(
                (&a["address"], &a["port_value"]),
                (&b["address"], &b["port_value"]),
                "{case}: {side}"
            );
        }
    }
}

/// Envoy's RSS growth (KiB) over one 20 MiB echo through a tap configured
/// with `config`, after a warm-up connection; and the 20 MiB connection's record.
fn rss_growth_for_20_mib(config: Value) -> (u64, Value) {
    let echo = TcpEcho::start();
    let envoy = tap_envoy(&echo, config);
    let small = pattern(1000);
    assert_eq!(exchange(envoy.addr("tcp"), &small, 1000), small);
    records(&envoy, 1);
    let before = envoy.rss_kib();
    let big = pattern(20 * 1024 * 1024);
    let back = exchange(envoy.addr("tcp"), &big, 256 * 1024);
    assert!(back == big, "20 MiB came back altered");
    let record = records(&envoy, 2).swap_remove(1);
    let after = envoy.rss_kib();
    println!("Envoy RSS {before} KiB -> {after} KiB for 2 x 20 MiB through the tap");
    assert_eq!(envoy.counter("wasmcustom.tap_tcp.truncated"), 1);
    (after.saturating_sub(before), record)
}

/// A 20 MiB stream through the default 64 KiB limits: the record keeps the
/// first 64 KiB, and Envoy's memory does not grow with the stream. The same
/// measurement with 16 MiB limits shows the growth it would otherwise see.
#[test]
fn twenty_mib_stream_keeps_64_kib_and_memory_stays_flat() {
    let (grew, record) = rss_growth_for_20_mib(json!({}));
    let big = pattern(20 * 1024 * 1024);
    assert_eq!(concat(&record, "read"), big[..64 * 1024]);
    assert_eq!(concat(&record, "write"), big[..64 * 1024]);
    assert!(flag(&record, "read_truncated") && flag(&record, "write_truncated"));
    assert!(grew < 8 * 1024, "RSS grew by {grew} KiB with 64 KiB limits");
    let sixteen = 16 * 1024 * 1024;
    let (control, _) = rss_growth_for_20_mib(json!({
        "max_bytes_hard_limit": sixteen, "max_read_bytes": sixteen, "max_write_bytes": sixteen,
        "max_events": 1_000_000
    }));
    println!("RSS growth: {grew} KiB with 64 KiB limits, {control} KiB with 16 MiB limits");
    assert!(
        control > 32 * 1024,
        "the control kept 2 x 16 MiB yet RSS grew by {control} KiB only"
    );
}

#[test]
fn many_short_connections_in_parallel() {
    let echo = TcpEcho::start();
    let envoy = tap_envoy(&echo, json!({}));
    let addr = envoy.addr("tcp");
    let threads: Vec<_> = (0..8)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..25 {
                    let payload = format!("connection {t}-{i} {}", "x".repeat(t * 100 + i));
                    let back = exchange(addr, payload.as_bytes(), 64);
                    assert_eq!(back, payload.as_bytes());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
    let all = records(&envoy, 200);
    assert_eq!(all.len(), 200);
    let mut seen = BTreeMap::new();
    for record in &all {
        let read = String::from_utf8(concat(record, "read")).unwrap();
        assert_eq!(concat(record, "write"), read.as_bytes());
        let id = read.split(' ').nth(1).unwrap().to_string();
        assert!(seen.insert(id, trace_id(record)).is_none(), "{read} twice");
    }
    let ids: std::collections::BTreeSet<&String> = seen.values().collect();
    assert_eq!(ids.len(), 200, "trace ids repeat");
    assert_eq!(envoy.counter("wasmcustom.tap_tcp.tapped"), 200);
}

/// A long-lived connection with `segment.interval_ms`: records appear while
/// it is open, numbered, and together hold every byte.
#[test]
fn long_lived_connection_gets_periodic_records() {
    let echo = TcpEcho::start();
    let config = json!({"segment": {"interval_ms": 200}, "sink": {"log": {"level": "info"}}});
    let envoy = tap_envoy(&echo, config);
    let log = || envoy.log();
    let mut client = TcpStream::connect(envoy.addr("tcp")).unwrap();
    let mut buf = [0u8; 16];
    client.write_all(b"first;").unwrap();
    client.read_exact(&mut buf[..6]).unwrap();
    // Stuck: nothing moves, yet the record of what happened so far appears.
    let open = log_records(log, MARKER, 1);
    assert!(!is_final(&open[0]));
    assert_eq!(concat(&open[0], "read"), b"first;");
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(
        log_records(log, MARKER, 1).len(),
        1,
        "an idle connection repeats no record"
    );
    client.write_all(b"second").unwrap();
    client.read_exact(&mut buf[..6]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    client.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    drop(client);
    let all = until_closed(|| log_records(log, MARKER, 1));
    assert!(all.len() >= 2, "{all:?}");
    let id = trace_id(&all[0]);
    let mut read = Vec::new();
    for (i, record) in all.iter().enumerate() {
        assert_eq!(trace_id(record), id);
        assert_eq!(trace(record)["sequence"], i, "{all:?}");
        let closed = is_final(record);
        assert_eq!(closed, i == all.len() - 1);
        read.extend(concat(record, "read"));
    }
    assert_eq!(read, b"first;second");
    assert_eq!(
        envoy.counter("wasmcustom.tap_tcp.segments"),
        all.len() as u64 - 1
    );
}

/// `segment.bytes`: a record every N bytes, no byte lost between them.
#[test]
fn byte_segments_split_a_stream_without_losing_bytes() {
    let echo = TcpEcho::start();
    let config = json!({"segment": {"bytes": 1000}, "sink": {"log": {"level": "info"}}});
    let envoy = tap_envoy(&echo, config);
    let payload = pattern(5000);
    // In lockstep, so that Envoy sees 100-byte chunks each way.
    let mut client = TcpStream::connect(envoy.addr("tcp")).unwrap();
    let mut back = [0u8; 100];
    for piece in payload.chunks(100) {
        client.write_all(piece).unwrap();
        client.read_exact(&mut back).unwrap();
        assert_eq!(&back[..], piece);
    }
    client.shutdown(Shutdown::Write).unwrap();
    client.read_to_end(&mut Vec::new()).unwrap();
    let all = until_closed(|| log_records(|| envoy.log(), MARKER, 1));
    // 10 000 bytes in both directions, a record after each 1000: ten, then
    // the close with the half-closes.
    assert_eq!(all.len(), 11, "{} records", all.len());
    let (mut read, mut write) = (Vec::new(), Vec::new());
    for (i, record) in all.iter().enumerate() {
        assert_eq!(trace(record)["sequence"], i);
        read.extend(concat(record, "read"));
        write.extend(concat(record, "write"));
    }
    assert_eq!(
        (read.as_slice(), write.as_slice()),
        (&payload[..], &payload[..])
    );
}

/// The default sink with segments: tcp_proxy's periodic access-log flush
/// writes the current segment; duplicates share a sequence number.
#[test]
fn filter_state_segments_with_periodic_access_log_flush() {
    let echo = TcpEcho::start();
    let mut proxy = record_access_log("records.jsonl");
    proxy["access_log_options"] = json!({"access_log_flush_interval": "0.05s"});
    let config = json!({"segment": {"interval_ms": 300}});
    let envoy = Envoy::start(&bootstrap(&echo, &config, json!({}), proxy));
    let mut client = TcpStream::connect(envoy.addr("tcp")).unwrap();
    let mut buf = [0u8; 8];
    for word in [b"alpha;", b"beta;;"] {
        client.write_all(word).unwrap();
        client.read_exact(&mut buf[..6]).unwrap();
        std::thread::sleep(Duration::from_millis(800));
    }
    let open = records(&envoy, 2);
    assert!(open.iter().all(|r| !is_final(r)));
    client.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    let all = until_closed(|| records(&envoy, 1));
    let mut by_sequence = BTreeMap::new();
    for record in &all {
        let n = trace(record)["sequence"].as_u64().unwrap();
        if let Some(earlier) = by_sequence.insert(n, record) {
            assert_eq!(
                earlier, record,
                "sequence {n} written with different content"
            );
        }
    }
    assert_eq!(
        by_sequence.keys().copied().collect::<Vec<_>>(),
        (0..by_sequence.len() as u64).collect::<Vec<_>>()
    );
    let read: Vec<u8> = by_sequence
        .values()
        .flat_map(|r| concat(r, "read"))
        .collect();
    assert_eq!(read, b"alpha;beta;;");
}

#[test]
fn match_sample_and_budget() {
    let echo = TcpEcho::start();
    let cases = [
        (
            json!({"match": {"source_address": "127.0.0.0/8"}}),
            3,
            "tapped",
        ),
        (
            json!({"match": {"source_address": ["10.0.0.0/8", "::1"]}}),
            0,
            "not_matched",
        ),
        (
            json!({"match": {"not": {"destination_port": 1}}}),
            3,
            "tapped",
        ),
        (
            json!({"match": {"destination_port": {"min": 1, "max": 2}}}),
            0,
            "not_matched",
        ),
        (json!({"match": {"sni": {"regex": ".*"}}}), 0, "not_matched"),
        (json!({"sample_percent": 0}), 0, "sampled_out"),
        (json!({"max_records": 2}), 2, "rate_limited"),
        (
            json!({"rate_limit": {"records_per_second": 0.001, "burst": 1}}),
            1,
            "rate_limited",
        ),
    ];
    for (config, tapped, counter) in cases {
        let envoy = tap_envoy(&echo, config.clone());
        for _ in 0..3 {
            assert_eq!(exchange(envoy.addr("tcp"), b"data", 4), b"data");
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while envoy.counter("wasmcustom.tap_tcp.tapped") < tapped && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(
            envoy.counter("wasmcustom.tap_tcp.tapped"),
            tapped,
            "{config}"
        );
        assert_eq!(
            envoy.counter(&format!("wasmcustom.tap_tcp.{counter}")),
            if counter == "tapped" { 3 } else { 3 - tapped },
            "{config}"
        );
        let written =
            std::fs::read_to_string(envoy.scratch().join("records.jsonl")).unwrap_or_default();
        assert_eq!(written.lines().count() as u64, tapped, "{config}");
    }
}

/// A TLS ClientHello (TLS 1.2, one cipher suite) naming `sni`: enough for
/// Envoy's tls_inspector to read the SNI of a passed-through connection.
fn client_hello(sni: &str) -> Vec<u8> {
    let name = sni.as_bytes();
    let mut sni_ext = vec![0x00, 0x00];
    let list_len = name.len() + 3;
    sni_ext.extend_from_slice(&((list_len + 2) as u16).to_be_bytes());
    sni_ext.extend_from_slice(&(list_len as u16).to_be_bytes());
    sni_ext.push(0);
    sni_ext.extend_from_slice(&(name.len() as u16).to_be_bytes());
    sni_ext.extend_from_slice(name);
    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&[7u8; 32]);
    body.push(0);
    body.extend_from_slice(&[0x00, 0x02, 0xc0, 0x2f]);
    body.extend_from_slice(&[0x01, 0x00]);
    body.extend_from_slice(&(sni_ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&sni_ext);
    let mut handshake = vec![0x01];
    handshake.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    handshake.extend_from_slice(&body);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend_from_slice(&(handshake.len() as u16).to_be_bytes());
    record.extend_from_slice(&handshake);
    record
}

/// SNI of TLS passed through (tls_inspector, no termination): the tap sees
/// the name and the ciphertext, as an Istio sidecar does for TLS it does not terminate.
#[test]
fn sni_matching_on_passed_through_tls() {
    let echo = TcpEcho::start();
    let config = json!({"match": {"sni": {"suffix": ".db.internal"}}});
    let bootstrap = bootstrap(&echo, &config, json!({}), record_access_log("records.jsonl"))
        .listener_field(
            "tcp",
            "listener_filters",
            json!([{"name": "envoy.filters.listener.tls_inspector", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"}}]),
        );
    let envoy = Envoy::start(&bootstrap);
    let matching = client_hello("orders.db.internal");
    let talk = |data: &[u8]| assert_eq!(echo_then_close(envoy.addr("tcp"), data), data);
    talk(&matching);
    talk(&client_hello("www.example.com"));
    talk(b"plain text");
    let all = records(&envoy, 1);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(records(&envoy, 1).len(), 1);
    assert_eq!(concat(&all[0], "read"), matching);
    assert_eq!(envoy.counter("wasmcustom.tap_tcp.not_matched"), 2);
}

#[test]
fn limits_events_and_string_format() {
    let echo = TcpEcho::start();
    let config = json!({"max_read_bytes": 100, "max_write_bytes": 3, "max_events": 4, "data_format": "as_string"});
    let envoy = tap_envoy(&echo, config);
    let mut client = TcpStream::connect(envoy.addr("tcp")).unwrap();
    let mut buf = [0u8; 4];
    for word in [b"abcd", b"efgh", b"ijkl", b"mnop"] {
        client.write_all(word).unwrap();
        client.read_exact(&mut buf).unwrap();
    }
    client.shutdown(Shutdown::Write).unwrap();
    client.read_to_end(&mut Vec::new()).unwrap();
    let record = &records(&envoy, 1)[0];
    let text = |d: &str| -> String {
        events(record)
            .iter()
            .filter_map(|e| e.get(d))
            .map(|e| e["data"]["as_string"].as_str().unwrap().to_string())
            .collect()
    };
    // read abcd, write abc (the write limit), read efgh, read ijkl: the
    // fourth event fills the cap, and mnop is dropped by it.
    assert_eq!(text("read"), "abcdefghijkl");
    assert_eq!(text("write"), "abc");
    let events = events(record);
    assert_eq!(events.len(), 5, "4 events and the close: {events:?}");
    assert!(flag(record, "read_truncated") && flag(record, "write_truncated"));
}

#[test]
fn http_collector_sink() {
    let echo = TcpEcho::start();
    let collector = Upstream::start();
    let config = json!({"sink": {"http": {"cluster": "collector", "path": "/tcp", "flush_interval_ms": 50}}});
    let bootstrap =
        bootstrap(&echo, &config, json!({}), json!({})).cluster("collector", collector.port());
    let envoy = Envoy::start(&bootstrap);
    for i in 0..3 {
        let payload = format!("payload {i}");
        assert_eq!(
            exchange(envoy.addr("tcp"), payload.as_bytes(), 64),
            payload.as_bytes()
        );
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut lines: Vec<Value> = Vec::new();
    while lines.len() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        lines = collector
            .received()
            .iter()
            .filter(|r| r.method == "POST" && r.path == "/tcp")
            .flat_map(|r| {
                String::from_utf8_lossy(&r.body)
                    .lines()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .map(|l| serde_json::from_str(&l).expect("JSON line"))
            .collect();
    }
    let mut reads: Vec<String> = lines
        .iter()
        .map(|r| String::from_utf8(concat(r, "read")).unwrap())
        .collect();
    reads.sort();
    assert_eq!(reads, ["payload 0", "payload 1", "payload 2"]);
    assert_eq!(envoy.counter("wasmcustom.tap_tcp.sink_errors"), 0);
}

#[test]
fn invalid_configuration_is_refused_with_the_field() {
    let echo = TcpEcho::start();
    for (config, field) in [
        (json!({"segment": {"bytes": 1000}}), "segment.bytes"),
        (
            json!({"match": {"source_address": "10.0.0.0/40"}}),
            "match.source_address",
        ),
        (json!({"max_read_bytes": "64k"}), "max_read_bytes"),
    ] {
        Envoy::refuses(
            &bootstrap(&echo, &config, json!({}), json!({})),
            &[&format!(
                "tap_tcp: invalid plugin configuration: field `{field}`"
            )],
        );
    }
}
