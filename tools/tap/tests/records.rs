//! Reading every record shape, merging periodic TCP records, filters, and the
//! command line.

// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use std::process::Command;
use tap_tool::filter::{parse_statuses, Filter};
use tap_tool::record::{parse, Direction, Record};

const OURS: &str = r#"{"http_buffered_trace":{"request":{"headers":[{"key":":method","value":"GET"},{"key":":path","value":"/a?b=1"},{"key":":authority","value":"app"},{"key":"x-bin","value":"\ufffd","raw_value":"/w=="}],"body":{"as_bytes":"aGk=","truncated":false},"trailers":[]},"response":{"headers":[{"key":":status","value":"503"}],"body":{"as_string":"down","truncated":true},"trailers":[]}},"stream_info":{"start_time":"2026-11-21T10:00:00.000000000Z","duration_ms":1.5}}"#;

const NATIVE: &str = r#"{
 "http_buffered_trace": {
  "request": {"headers": [{"key": ":method", "value": "POST", "raw_value": ""}, {"key": ":path", "value": "/b", "raw_value": ""}], "trailers": []}
 }
}"#;

fn segment(seq: u64, data: &str, closed: bool) -> String {
    let closed = if closed {
        r#",{"timestamp":"t","closed":{}}"#
    } else {
        ""
    };
    format!(
        r#"{{"socket_buffered_trace":{{"trace_id":"7","connection":{{"local_address":{{"socket_address":{{"address":"10.0.0.2","port_value":5432}}}},"remote_address":{{"socket_address":{{"address":"10.0.0.9","port_value":40000}}}}}},"events":[{{"timestamp":"t","read":{{"data":{{"as_bytes":"{data}","truncated":false}},"end_stream":false}}}}{closed}],"read_truncated":false,"write_truncated":false,"sequence":{seq}}}}}"#
    )
}

#[test]
fn every_shape_reads() {
    let text = format!("{OURS}\n{NATIVE}\n");
    let (records, errors) = parse(&text);
    assert!(errors.is_empty(), "{errors:?}");
    let Record::Http(ours) = &records[0] else {
        panic!()
    };
    assert_eq!(
        ours.request.header("x-bin"),
        Some(&b"\xff"[..]),
        "raw bytes win over the readable value"
    );
    assert_eq!(ours.request.body, b"hi");
    let response = ours.response.as_ref().unwrap();
    assert_eq!(
        (response.body.as_slice(), response.body_truncated),
        (&b"down"[..], true)
    );
    assert_eq!(ours.status(), Some(503));
    assert_eq!(
        ours.start_time.as_deref(),
        Some("2026-11-21T10:00:00.000000000Z")
    );
    let Record::Http(native) = &records[1] else {
        panic!()
    };
    assert_eq!(native.method(), "POST");
    assert!(native.response.is_none());
    let (_, errors) = parse("{\"other\": 1}\nnot json");
    assert_eq!(errors.len(), 2, "{errors:?}");
}

#[test]
fn periodic_tcp_records_merge_in_order_once() {
    // Out of order, with the repeats a periodic access-log flush writes.
    let text = [
        segment(1, "Yg==", false),
        segment(0, "YQ==", false),
        segment(1, "Yg==", false),
        segment(2, "Yw==", true),
    ]
    .join("\n");
    let (records, errors) = parse(&text);
    assert!(errors.is_empty());
    assert_eq!(records.len(), 1);
    let Record::Tcp(t) = &records[0] else {
        panic!()
    };
    assert_eq!(t.bytes(Direction::Read), b"abc");
    assert_eq!(t.events.last().unwrap().direction, Direction::Closed);
    assert_eq!((t.local.1, t.remote.0.as_str()), (5432, "10.0.0.9"));
}

#[test]
fn filters() {
    let (records, _) = parse(&format!("{OURS}\n{NATIVE}\n{}", segment(0, "YQ==", true)));
    let count = |f: Filter| records.iter().filter(|r| f.matches(r)).count();
    assert_eq!(count(Filter::default()), 3);
    assert_eq!(
        count(Filter {
            status: Some(parse_statuses("5xx").unwrap()),
            ..Filter::default()
        }),
        1
    );
    assert_eq!(
        count(Filter {
            status: Some(parse_statuses("503").unwrap()),
            ..Filter::default()
        }),
        1
    );
    assert_eq!(
        count(Filter {
            method: Some("POST".into()),
            ..Filter::default()
        }),
        1
    );
    assert_eq!(
        count(Filter {
            path_prefix: Some("/a".into()),
            ..Filter::default()
        }),
        1
    );
    assert_eq!(
        count(Filter {
            header: Some((":AUTHORITY".into(), Some("app".into()))),
            ..Filter::default()
        }),
        1
    );
    assert_eq!(
        count(Filter {
            header: Some(("x-none".into(), None)),
            ..Filter::default()
        }),
        0
    );
    assert_eq!(
        count(Filter {
            only_tcp: true,
            ..Filter::default()
        }),
        1
    );
    assert_eq!(
        count(Filter {
            only_http: true,
            ..Filter::default()
        }),
        2
    );
}

#[test]
fn command_line() {
    let dir = std::env::temp_dir().join(format!("tap-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.jsonl"), format!("{OURS}\n")).unwrap();
    std::fs::write(dir.join("tap_1.json"), NATIVE).unwrap();
    let tap = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_tap"))
            .args(args)
            .output()
            .unwrap()
    };
    let list = tap(&["list", dir.to_str().unwrap()]);
    assert!(list.status.success());
    let text = String::from_utf8_lossy(&list.stdout);
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.contains("GET  app  /a?b=1  503  2B  4B+"), "{text}");
    let filtered = tap(&["list", "--method", "POST", dir.to_str().unwrap()]);
    assert_eq!(String::from_utf8_lossy(&filtered.stdout).lines().count(), 1);
    let har = tap(&["har", dir.join("a.jsonl").to_str().unwrap()]);
    let doc: serde_json::Value = serde_json::from_slice(&har.stdout).unwrap();
    assert_eq!(doc["log"]["entries"][0]["response"]["status"], 503);
    let pcap = dir.join("x.pcap");
    assert!(tap(&[
        "pcap",
        "--out",
        pcap.to_str().unwrap(),
        dir.to_str().unwrap()
    ])
    .status
    .success());
    assert_eq!(
        &std::fs::read(&pcap).unwrap()[..4],
        &0xa1b2_c3d4u32.to_le_bytes()
    );
    let split = dir.join("split");
    assert!(tap(&[
        "split",
        "--out",
        split.to_str().unwrap(),
        dir.to_str().unwrap()
    ])
    .status
    .success());
    assert!(split.join("tap_1.json").exists());
    assert_eq!(tap(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(tap(&["list", "--status"]).status.code(), Some(2));
    assert_eq!(tap(&["list", "/no/such/file"]).status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}
