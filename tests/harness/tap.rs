//! Helpers for tap tests: the file access log that writes our records, Envoy's
//! native tap filter, and readers for both outputs.

use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

/// Connection-manager (or `tcp_proxy`) fields that add the file access log writing tap records
/// (`%FILTER_STATE(wasm.tap_trace:PLAIN)%`) to `file` in the scratch directory,
/// one JSON line per tapped stream, skipping streams without a record.
pub fn record_access_log(file: &str) -> Value {
    json!({"access_log": [manifests::record_log(&format!("@SCRATCH@/{file}"))]})
}

/// Envoy's own tap filter writing one file per stream (`native_<id>.json`).
pub fn native_tap(max_request_bytes: u64, max_response_bytes: u64) -> Value {
    json!({"name": "envoy.filters.http.tap", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.tap.v3.Tap",
        "common_config": {"static_config": {
            "match": {"any_match": true},
            "output_config": {
                "sinks": [{"format": "JSON_BODY_AS_BYTES", "file_per_tap": {"path_prefix": "@SCRATCH@/native"}}],
                "max_buffered_rx_bytes": max_request_bytes,
                "max_buffered_tx_bytes": max_response_bytes
            }
        }}
    }})
}

/// Envoy's tap transport socket around raw_buffer, writing one JSON file per
/// connection (`native_<id>.json`): put it in a filter chain's `transport_socket`.
pub fn native_socket_tap(max_read_bytes: u64, max_write_bytes: u64) -> Value {
    json!({"transport_socket": {
        "name": "envoy.transport_sockets.tap",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tap.v3.Tap",
            "common_config": {"static_config": {
                "match": {"any_match": true},
                "output_config": {
                    "sinks": [{"format": "JSON_BODY_AS_BYTES", "file_per_tap": {"path_prefix": "@SCRATCH@/native"}}],
                    "max_buffered_rx_bytes": max_read_bytes,
                    "max_buffered_tx_bytes": max_write_bytes
                }
            }},
            "transport_socket": {
                "name": "envoy.transport_sockets.raw_buffer",
                "typed_config": {"@type": "type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer"}
            }
        }
    }})
}

fn wait_for<T>(what: &str, mut read: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(found) = read() {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// All records in a JSON Lines file, once there are at least `count` of them.
pub fn read_records(file: &Path, count: usize) -> Vec<Value> {
    wait_for(&format!("{count} records in {}", file.display()), || {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        // A record is complete once its line is.
        let lines: Vec<&str> = text
            .split_inclusive('\n')
            .filter(|l| l.ends_with('\n'))
            .collect();
        (lines.len() >= count).then(|| {
            lines
                .iter()
                .map(|l| {
                    serde_json::from_str(l).unwrap_or_else(|e| panic!("bad record line {l:?}: {e}"))
                })
                .collect()
        })
    })
}

/// The records a filter with the `log` sink wrote to Envoy's log so far: every
/// log line holding `marker` (such as `{"socket_buffered_trace"`), parsed from
/// there, once there are at least `count`.
pub fn log_records(log: impl Fn() -> String, marker: &str, count: usize) -> Vec<Value> {
    wait_for(&format!("{count} records in the Envoy log"), || {
        let text = log();
        // Envoy may be writing the last line while it is read.
        let found: Vec<Value> = text
            .split_inclusive('\n')
            .filter_map(|line| line.strip_suffix('\n'))
            .filter_map(|line| line.find(marker).map(|at| &line[at..]))
            .map(|json| {
                serde_json::from_str(json).unwrap_or_else(|e| panic!("bad record {json:?}: {e}"))
            })
            .collect();
        (found.len() >= count).then_some(found)
    })
}

/// All of the native tap's files in `dir`, once there are at least `count`.
pub fn read_native(dir: &Path, count: usize) -> Vec<Value> {
    wait_for(&format!("{count} native tap files"), || {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(dir).ok()? {
            let path = entry.ok()?.path();
            if path.file_name()?.to_str()?.starts_with("native_") {
                // Envoy writes each file whole at the end of its stream.
                found.push(serde_json::from_str(&std::fs::read_to_string(&path).ok()?).ok()?);
            }
        }
        (found.len() >= count).then_some(found)
    })
}

/// The `x-request-id` a record's request carried: pairs records of two taps.
pub fn request_id(record: &Value) -> String {
    record["http_buffered_trace"]["request"]["headers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|h| h["key"] == "x-request-id")
        .and_then(|h| h["value"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// The flows mitmproxy's own HAR reader (what `mitmdump -nr` and `mitmweb`
/// use) makes of `har`: `tests/har_mitmproxy.py`'s JSON, one per entry.
pub fn mitmproxy_flows(har: &Path) -> Vec<Value> {
    let output = std::process::Command::new(crate::paths::venv_tool("python"))
        .arg(crate::paths::workspace_root().join("tests/har_mitmproxy.py"))
        .arg(har)
        .output()
        .unwrap_or_else(|e| panic!("tests/har_mitmproxy.py: {e}"));
    assert!(
        output.status.success(),
        "mitmproxy could not read {}: {}",
        har.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON from tests/har_mitmproxy.py")
}

/// mitmproxy reads every entry of the HAR file `har` as the file says:
/// method, URL, status, headers in order, bodies, start time and server.
pub fn assert_mitmproxy_reads(har: &Path) {
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(har).expect("read the HAR")).expect("HAR");
    let entries = doc["log"]["entries"].as_array().expect("HAR entries");
    let flows = mitmproxy_flows(har);
    assert_eq!(
        flows.len(),
        entries.len(),
        "mitmproxy's flows of {}",
        har.display()
    );
    let pairs = |headers: &Value| -> Vec<Value> {
        headers
            .as_array()
            .into_iter()
            .flatten()
            .map(|h| json!([h["name"], h["value"]]))
            .collect()
    };
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    for (flow, entry) in flows.iter().zip(entries) {
        let (request, response) = (&entry["request"], &entry["response"]);
        assert_eq!(flow["method"], request["method"], "{flow}");
        assert_eq!(flow["url"], request["url"], "{flow}");
        assert_eq!(flow["status"], response["status"], "{flow}");
        // mitmproxy's Request.make adds content-length where the HAR has
        // none: that one (with the body's length) is mitmproxy's, not a
        // difference.
        let expected = pairs(&request["headers"]);
        let mut seen = flow["request_headers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let posted_len = request["postData"]["text"]
            .as_str()
            .unwrap_or_default()
            .len();
        if !expected.iter().any(|h| h[0] == "content-length") {
            seen.retain(|h| h != &json!(["content-length", posted_len.to_string()]));
        }
        assert_eq!(seen, expected, "{flow}");
        assert_eq!(
            flow["response_headers"],
            json!(pairs(&response["headers"])),
            "{flow}"
        );
        let posted = request["postData"]["text"].as_str().unwrap_or_default();
        assert_eq!(flow["request_body"], hex(posted.as_bytes()), "{flow}");
        let content = &response["content"];
        let text = content["text"].as_str().unwrap_or_default();
        let body = if content["encoding"] == "base64" {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .expect("base64 content")
        } else {
            text.as_bytes().to_vec()
        };
        assert_eq!(flow["response_body"], hex(&body), "{flow}");
        assert_eq!(flow["server"][0], entry["serverIPAddress"], "{flow}");
        let started = entry["startedDateTime"].as_str().expect("startedDateTime");
        let seconds = flow["start"].as_f64().expect("a start time");
        assert!(
            seconds > 1_000_000_000.0,
            "{started} read as {seconds}: not 1970"
        );
    }
}
