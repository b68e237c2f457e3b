//! Records as they arrive: `tap list`, `show` and `pcap --out -` write each
//! record while the records after it are still being written (a reader sees
//! the first before the second exists); record times in the capture; the
//! pcapng blocks as the format defines them; RFC 3339 times read back.

// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use proptest::prelude::*;
use std::io::{Read, Write};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use tap_tool::pcap::{Format, Pcap};
use tap_tool::record::{item, parse, Item};
use tap_tool::time::{micros, rfc3339};

/// An HTTP record; `start` (RFC 3339) and `duration_ms` as tap_http's
/// `record_stream_info` writes them, when given.
fn record(path: &str, start: Option<&str>) -> String {
    let info = start.map_or(String::new(), |t| {
        format!(r#","stream_info":{{"start_time":"{t}","duration_ms":250.000}}"#)
    });
    format!(
        r#"{{"http_buffered_trace":{{"request":{{"headers":[{{"key":":method","value":"GET"}},{{"key":":path","value":"{path}"}},{{"key":":authority","value":"app"}}]}},"response":{{"headers":[{{"key":":status","value":"200"}}]}}}},"peer":{{"principal":"spiffe://cluster.local/ns/a/sa/b"}}{info}}}"#
    )
}

/// `tap ARGS` reading a pipe the test writes, its output read on a thread
/// (so a read can time out).
struct Live {
    child: Child,
    input: std::process::ChildStdin,
    output: mpsc::Receiver<Vec<u8>>,
}

impl Live {
    fn start(args: &[&str]) -> Live {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tap"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let input = child.stdin.take().unwrap();
        let mut stdout: ChildStdout = child.stdout.take().unwrap();
        let (tx, output) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 65536];
            while let Ok(n) = stdout.read(&mut buffer) {
                if n == 0 || tx.send(buffer[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Live {
            child,
            input,
            output,
        }
    }

    fn send(&mut self, line: &str) {
        self.input.write_all(line.as_bytes()).unwrap();
        self.input.write_all(b"\n").unwrap();
        self.input.flush().unwrap();
    }

    /// What arrives until `done` says it is enough, or 10 s pass.
    fn until(&self, got: &mut Vec<u8>, done: impl Fn(&[u8]) -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !done(got) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.output.recv_timeout(left) {
                Ok(bytes) => got.extend(bytes),
                Err(_) => panic!(
                    "no more output within 10 s; so far: {:?}",
                    String::from_utf8_lossy(got)
                ),
            }
        }
    }

    fn end(mut self) {
        drop(self.input);
        assert!(self.child.wait().unwrap().success());
    }
}

#[test]
fn list_writes_each_record_before_the_next_exists() {
    let mut live = Live::start(&["list"]);
    let mut got = Vec::new();
    live.send(&record("/first", None));
    live.until(&mut got, |g| g.contains(&b'\n'));
    let text = String::from_utf8_lossy(&got).into_owned();
    assert!(
        text.contains("/first") && !text.contains("/second"),
        "{text}"
    );
    live.send(&record("/second", None));
    live.until(&mut got, |g| g.iter().filter(|&&b| b == b'\n').count() == 2);
    assert!(String::from_utf8_lossy(&got).contains("/second"));
    live.end();
}

#[test]
fn show_writes_each_record_before_the_next_exists() {
    let mut live = Live::start(&["show"]);
    let mut got = Vec::new();
    live.send(&record("/first", None));
    live.until(&mut got, |g| String::from_utf8_lossy(g).contains("/first"));
    live.send(&record("/second", None));
    live.until(&mut got, |g| String::from_utf8_lossy(g).contains("/second"));
    live.end();
}

/// The pcapng blocks of a capture: `(type, body)`, each length checked
/// against the trailing copy and the 32-bit padding.
fn blocks(bytes: &[u8]) -> Vec<(u32, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 0;
    let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    while at < bytes.len() {
        let (kind, total) = (word(at), word(at + 4) as usize);
        assert_eq!(total % 4, 0, "block at {at} not padded");
        assert_eq!(
            word(at + total - 4) as usize,
            total,
            "block at {at}: trailing length"
        );
        out.push((kind, bytes[at + 8..at + total - 4].to_vec()));
        at += total;
    }
    out
}

/// Whole pcapng blocks at the start of `bytes`.
fn complete_blocks(bytes: &[u8]) -> usize {
    let mut at = 0;
    let mut n = 0;
    while at + 8 <= bytes.len() {
        let total = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        if at + total > bytes.len() {
            break;
        }
        at += total;
        n += 1;
    }
    n
}

/// An Enhanced Packet Block's time (µs), frame and comment.
fn packet(body: &[u8]) -> (u64, Vec<u8>, Option<String>) {
    let word = |at: usize| u32::from_le_bytes(body[at..at + 4].try_into().unwrap());
    let time = (u64::from(word(4)) << 32) | u64::from(word(8));
    let len = word(12) as usize;
    assert_eq!(word(16) as usize, len, "original length");
    let frame = body[20..20 + len].to_vec();
    let mut at = 20 + len.div_ceil(4) * 4;
    let mut comment = None;
    while at + 4 <= body.len() {
        let code = u16::from_le_bytes([body[at], body[at + 1]]);
        let size = usize::from(u16::from_le_bytes([body[at + 2], body[at + 3]]));
        if code == 0 {
            break;
        }
        if code == 1 {
            comment = Some(String::from_utf8(body[at + 4..at + 4 + size].to_vec()).unwrap());
        }
        at += 4 + size.div_ceil(4) * 4;
    }
    (time, frame, comment)
}

#[test]
fn pcap_to_standard_output_writes_each_record_before_the_next_exists() {
    let mut live = Live::start(&["pcap", "--out", "-"]);
    let mut got = Vec::new();
    // The section and interface before any record.
    live.until(&mut got, |g| complete_blocks(g) >= 2);
    live.send(&record("/first", Some("2026-12-08T10:00:00.000000Z")));
    // Handshake, request, response, close: 3 + 1 + 1 + 3 packets.
    live.until(&mut got, |g| complete_blocks(g) >= 2 + 8);
    assert_eq!(complete_blocks(&got), 10, "only the first record's packets");
    live.send(&record("/second", Some("2026-12-08T10:00:01.000000Z")));
    live.until(&mut got, |g| complete_blocks(g) >= 2 + 16);
    live.end();
    let blocks = blocks(&got);
    assert_eq!(blocks[0].0, 0x0a0d_0d0a, "section header first");
    assert_eq!(
        &blocks[0].1[..4],
        &0x1a2b_3c4du32.to_le_bytes(),
        "byte-order magic"
    );
    assert_eq!(blocks[1].0, 1, "then the interface");
    let packets: Vec<_> = blocks[2..]
        .iter()
        .map(|(k, b)| {
            assert_eq!(*k, 6, "enhanced packet blocks");
            packet(b)
        })
        .collect();
    let start = micros("2026-12-08T10:00:00Z").unwrap() as u64;
    assert!(
        packets[..3].iter().all(|p| p.0 < start),
        "the handshake before"
    );
    assert_eq!(
        packets[3].0, start,
        "the request at the record's start time"
    );
    let response = packets
        .iter()
        .position(|(_, f, _)| f.windows(12).any(|w| w == b"HTTP/1.1 200"))
        .unwrap();
    assert!(response > 0);
    assert_eq!(packets[response].0, start + 250_000, "start + duration");
    assert_eq!(
        packets[11].0,
        start + 1_000_000,
        "the second record's request"
    );
    let comment = packets[0].2.as_deref().unwrap();
    assert!(comment.contains("GET /first -> 200"), "{comment}");
    assert!(
        comment.contains("spiffe://cluster.local/ns/a/sa/b"),
        "{comment}"
    );
    assert!(comment.contains("time from the record"), "{comment}");
    assert!(
        packets[1..8].iter().all(|p| p.2.is_none()),
        "one comment per record"
    );
}

#[test]
fn a_record_without_time_is_stamped_when_read_and_says_so() {
    let before = tap_tool::time::now_micros() as u64;
    let mut capture = Pcap::new(Format::Pcapng);
    let (records, _) = parse(&record("/untimed", None));
    let Some(tap_tool::record::Record::Http(h)) = records.first() else {
        panic!("an HTTP record")
    };
    capture.http(h);
    assert_eq!(capture.untimed, 1);
    let bytes = capture.finish();
    let blocks = blocks(&bytes);
    let (time, _, comment) = packet(&blocks[2].1);
    assert!(
        time >= before && time < before + 60_000_000,
        "now, not 1970: {time}"
    );
    assert!(comment.unwrap().contains("no time in the record"));
}

#[test]
fn classic_pcap_carries_record_times() {
    let mut capture = Pcap::new(Format::Pcap);
    let value: serde_json::Value =
        serde_json::from_str(&record("/x", Some("2026-12-08T10:00:00.5Z"))).unwrap();
    let Some(Item {
        record: tap_tool::record::Record::Http(h),
        ..
    }) = item(&value)
    else {
        panic!("an HTTP record")
    };
    capture.http(&h);
    let bytes = capture.finish();
    // Packet records after the 24-byte file header: time, lengths, frame.
    let mut times = Vec::new();
    let mut at = 24;
    while at < bytes.len() {
        let word = |i: usize| u32::from_le_bytes(bytes[at + i..at + i + 4].try_into().unwrap());
        times.push(i64::from(word(0)) * 1_000_000 + i64::from(word(4)));
        at += 16 + word(8) as usize;
    }
    let start = micros("2026-12-08T10:00:00.5Z").unwrap();
    assert_eq!(times.len(), 8);
    assert_eq!(times[3], start, "the request at the record's start");
    assert!(times.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn rfc3339_times_read_back() {
    assert_eq!(micros("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(micros("1970-01-01T00:00:01.5Z"), Some(1_500_000));
    assert_eq!(micros("2000-03-01T00:00:00Z"), Some(951_868_800_000_000));
    assert_eq!(
        micros("2026-12-08T10:00:00.123456789Z"),
        micros("2026-12-08T10:00:00.123456Z")
    );
    assert_eq!(
        micros("2026-12-08T12:00:00+02:00"),
        micros("2026-12-08T10:00:00Z")
    );
    assert_eq!(
        micros("2026-12-08T08:30:00-01:30"),
        micros("2026-12-08T10:00:00Z")
    );
    for bad in [
        "",
        "2026-12-08",
        "2026-12-08T10:00:00",
        "2026-13-08T10:00:00Z",
        "2026-12-08T24:00:00Z",
        "2026-12-08T10:00:00.Z",
        "2026-12-08T10:00:00Zjunk",
        "2026-12-08 10:00:00Z",
        "２０２６-12-08T10:00:00Z",
    ] {
        assert_eq!(micros(bad), None, "{bad:?}");
    }
}

proptest! {
    #[test]
    fn times_round_trip(us in 0i64..4_102_444_800_000_000) {
        prop_assert_eq!(micros(&rfc3339(us)), Some(us));
    }

    #[test]
    fn any_text_is_read_without_panicking(text in "\\PC{0,40}") {
        let _ = micros(&text);
    }
}

/// Part `seq` of connection 7, read bytes `data` (base64) at second `seq`;
/// `closed` adds the close event.
fn segment(seq: u64, data: &str, closed: bool) -> String {
    let closed = if closed {
        format!(r#",{{"timestamp":"2026-12-08T10:00:0{seq}.5Z","closed":{{}}}}"#)
    } else {
        String::new()
    };
    format!(
        r#"{{"socket_buffered_trace":{{"trace_id":"7","connection":{{"local_address":{{"socket_address":{{"address":"10.0.0.2","port_value":5432}}}},"remote_address":{{"socket_address":{{"address":"10.0.0.9","port_value":40000}}}}}},"events":[{{"timestamp":"2026-12-08T10:00:0{seq}Z","read":{{"data":{{"as_bytes":"{data}","truncated":false}},"end_stream":false}}}}{closed}],"read_truncated":false,"write_truncated":false,"sequence":{seq}}}}}"#
    )
}

/// TCP flags and payload of each frame in a pcapng capture.
fn tcp_frames(bytes: &[u8]) -> Vec<(u64, u8, Vec<u8>)> {
    blocks(bytes)[2..]
        .iter()
        .map(|(_, body)| {
            let (time, frame, _) = packet(body);
            // Ethernet 14, IPv4 20, TCP 20.
            (time, frame[14 + 20 + 13], frame[14 + 40..].to_vec())
        })
        .collect()
}

#[test]
fn a_connections_parts_are_one_tcp_stream_as_they_arrive() {
    let mut capture = Pcap::new(Format::Pcapng);
    let mut written = Vec::new();
    // "abc", "def" (twice, as a periodic flush may write it), then "gh" and the close.
    for line in [
        segment(0, "YWJj", false),
        segment(1, "ZGVm", false),
        segment(1, "ZGVm", false),
        segment(2, "Z2g=", true),
    ] {
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        capture.item(&item(&value).unwrap());
        written.push(capture.take());
    }
    // The handshake and the first part before the second part exists.
    let first = [written[0].clone()].concat();
    assert_eq!(tcp_frames(&first).len(), 3 + 1);
    assert!(written[2].is_empty(), "a repeated part is written once");
    let all = [written.concat(), capture.finish()].concat();
    let frames = tcp_frames(&all);
    let syns = frames.iter().filter(|f| f.1 & 0x02 != 0).count();
    let fins = frames.iter().filter(|f| f.1 & 0x01 != 0).count();
    assert_eq!((syns, fins), (2, 2), "one handshake, one close");
    let data: Vec<u8> = frames.iter().flat_map(|f| f.2.clone()).collect();
    assert_eq!(data, b"abcdefgh");
    let at = |s: &str| micros(s).unwrap() as u64;
    let times: Vec<u64> = frames
        .iter()
        .filter(|f| !f.2.is_empty())
        .map(|f| f.0)
        .collect();
    assert_eq!(
        times,
        [
            at("2026-12-08T10:00:00Z"),
            at("2026-12-08T10:00:01Z"),
            at("2026-12-08T10:00:02Z")
        ]
    );
    assert!(
        frames.windows(2).all(|w| w[0].0 < w[1].0),
        "time goes forward"
    );
}

#[test]
fn har_gives_record_times_and_says_when_there_is_none() {
    let text = format!(
        "{}\n{}\n",
        record("/timed", Some("2026-12-08T10:00:00.123456789Z")),
        record("/untimed", None)
    );
    let (records, _) = tap_tool::record::parse_http(&text);
    let refs: Vec<_> = records.iter().collect();
    let before = tap_tool::time::now_micros();
    let doc = tap_tool::har::har(&refs);
    let entries = doc["log"]["entries"].as_array().unwrap();
    assert_eq!(entries[0]["startedDateTime"], "2026-12-08T10:00:00.123Z");
    assert_eq!(entries[0]["time"], 250.0);
    assert!(entries[0].get("comment").is_none());
    let untimed = entries[1]["startedDateTime"].as_str().unwrap();
    let at = micros(untimed).unwrap();
    assert!(
        at / 1000 >= before / 1000 && at < before + 60_000_000,
        "{untimed}: not 1970"
    );
    assert_eq!(entries[1]["comment"], tap_tool::har::UNTIMED);
    assert_eq!(tap_tool::har::untimed(&refs), 1);
}

#[test]
fn jsonl_passes_each_selected_record_on_one_line_as_it_arrives() {
    let mut live = Live::start(&["jsonl", "--path", "/keep"]);
    let mut got = Vec::new();
    // Pretty-printed, as Envoy's file_per_tap writes it: one line out.
    let pretty = serde_json::to_string_pretty(
        &serde_json::from_str::<serde_json::Value>(&record("/keep/1", None)).unwrap(),
    )
    .unwrap();
    live.send(&pretty);
    live.until(&mut got, |g| g.contains(&b'\n'));
    let first: serde_json::Value =
        serde_json::from_slice(&got[..got.len() - 1]).expect("one JSON document per line");
    assert_eq!(
        first,
        serde_json::from_str::<serde_json::Value>(&pretty).unwrap()
    );
    live.send(&record("/other", None));
    live.send(&record("/keep/2", None));
    live.until(&mut got, |g| g.iter().filter(|&&b| b == b'\n').count() == 2);
    let text = String::from_utf8(got).unwrap();
    assert!(
        text.contains("/keep/2") && !text.contains("/other"),
        "{text}"
    );
    live.end();
}

#[test]
fn closed_connections_are_remembered_within_a_bound() {
    let closed = |id: usize| {
        segment(0, "YQ==", true).replace(r#""trace_id":"7""#, &format!(r#""trace_id":"{id}""#))
    };
    let mut capture = Pcap::new(Format::Pcap);
    let feed = |capture: &mut Pcap, id: usize| {
        let value: serde_json::Value = serde_json::from_str(&closed(id)).unwrap();
        capture.item(&item(&value).unwrap());
        capture.take()
    };
    for id in 0..=4096 {
        assert!(!feed(&mut capture, id).is_empty());
    }
    // A late repeat of a recent connection's part is known and skipped; the
    // oldest connection was forgotten (4096 are kept), so its repeat is new.
    assert!(feed(&mut capture, 4096).is_empty());
    assert!(!feed(&mut capture, 0).is_empty());
}

/// A capture is not written to a terminal (`script` gives the command one).
#[test]
fn pcap_refuses_to_write_to_a_terminal() {
    let command = format!("{} pcap --out - </dev/null", env!("CARGO_BIN_EXE_tap"));
    let output = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .expect("script (bsdutils)");
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(text.contains("standard output is a terminal"), "{text}");
}

#[test]
fn har_urls_are_absolute_without_an_authority() {
    let no_authority = record("/a", None).replace(r#",{"key":":authority","value":"app"}"#, "");
    let with_address = no_authority.replace(
        r#""response":"#,
        r#""downstream_connection":{"local_address":{"socket_address":{"address":"10.1.2.3","port_value":8080}},"remote_address":{"socket_address":{"address":"10.9.9.9","port_value":40000}}},"response":"#,
    );
    let (records, errors) =
        tap_tool::record::parse_http(&format!("{no_authority}\n{with_address}\n"));
    assert!(errors.is_empty(), "{errors:?}");
    let doc = tap_tool::har::har(&records.iter().collect::<Vec<_>>());
    let urls: Vec<&str> = doc["log"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["request"]["url"].as_str().unwrap())
        .collect();
    assert_eq!(urls, ["http://no-host.invalid/a", "http://10.1.2.3:8080/a"]);
}
