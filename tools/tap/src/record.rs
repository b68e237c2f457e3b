//! Records in one model, whichever tap wrote them: our `tap_http` and
//! `tap_tcp` lines, Envoy's native tap files (`http_buffered_trace`,
//! `socket_buffered_trace`, pretty-printed or one per line).

use base64::Engine;
use serde_json::Value;
use std::collections::BTreeMap;

pub type Headers = Vec<(String, Vec<u8>)>;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Message {
    pub headers: Headers,
    pub body: Vec<u8>,
    pub body_truncated: bool,
    pub trailers: Headers,
}

impl Message {
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    pub fn header_text(&self, name: &str) -> String {
        self.header(name)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpRecord {
    pub request: Message,
    pub response: Option<Message>,
    /// RFC 3339, when the record has `stream_info.start_time`.
    pub start_time: Option<String>,
    pub duration_ms: Option<f64>,
    /// `(local, remote)` as `(ip, port)`, when recorded.
    pub downstream: Option<((String, u16), (String, u16))>,
    /// The caller as the recording Envoy proved it (tap_http's top-level
    /// `peer`): `Some(Some(uri_san))` for a verified client certificate,
    /// `Some(None)` for a connection without one, `None` when the record
    /// does not say (Envoy's native tap, records of older modules). Request
    /// headers such as `x-peer-principal` are what the client sent unless a
    /// filter before the tap replaced them, which a record cannot show.
    pub peer: Option<Option<String>>,
    /// `stream_info.response_code_details` (empty when the record's stream
    /// info has none): `via_upstream` when the app answered; a local reply
    /// names its reason, or nothing (a Wasm filter's).
    pub response_code_details: Option<String>,
    /// The stream ended before its response completed.
    pub incomplete: bool,
}

impl HttpRecord {
    pub fn method(&self) -> String {
        self.request.header_text(":method")
    }
    pub fn path(&self) -> String {
        self.request.header_text(":path")
    }
    pub fn authority(&self) -> String {
        let a = self.request.header_text(":authority");
        if a.is_empty() {
            self.request.header_text("host")
        } else {
            a
        }
    }
    pub fn status(&self) -> Option<u16> {
        self.response
            .as_ref()
            .and_then(|r| r.header_text(":status").parse().ok())
    }

    /// Whether the app behind Envoy sent the response, not a filter or
    /// Envoy itself: `response_code_details` is `via_upstream` where the
    /// record has it; otherwise the router's `x-envoy-upstream-service-time`
    /// response header, which no local reply carries (`None`: the record
    /// cannot tell, as with `suppress_envoy_headers` and no stream info).
    pub fn from_app(&self) -> Option<bool> {
        if let Some(details) = &self.response_code_details {
            return Some(details == "via_upstream");
        }
        let response = self.response.as_ref()?;
        response
            .header("x-envoy-upstream-service-time")
            .map(|_| true)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the downstream client.
    Read,
    /// Toward the downstream client.
    Write,
    Closed,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub time: Option<String>,
    pub direction: Direction,
    pub data: Vec<u8>,
    pub end_stream: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TcpRecord {
    pub trace_id: String,
    pub local: (String, u16),
    pub remote: (String, u16),
    pub events: Vec<Event>,
    pub read_truncated: bool,
    pub write_truncated: bool,
}

impl TcpRecord {
    pub fn bytes(&self, direction: Direction) -> Vec<u8> {
        self.events
            .iter()
            .filter(|e| e.direction == direction)
            .flat_map(|e| e.data.iter().copied())
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Http(HttpRecord),
    Tcp(TcpRecord),
}

impl Record {
    /// The HTTP record, if this is one.
    pub fn as_http(&self) -> Option<&HttpRecord> {
        match self {
            Record::Http(h) => Some(h),
            Record::Tcp(_) => None,
        }
    }
}

fn b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .unwrap_or_default()
}

fn headers(value: &Value) -> Headers {
    value
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| {
            let name = h["key"].as_str().unwrap_or_default().to_string();
            // Envoy writes `raw_value` (base64) beside every value, empty
            // when `value` holds it; ours only for values that are not UTF-8.
            let raw = h["raw_value"].as_str().map(b64).filter(|r| !r.is_empty());
            let value =
                raw.unwrap_or_else(|| h["value"].as_str().unwrap_or_default().as_bytes().to_vec());
            (name, value)
        })
        .collect()
}

fn data(body: &Value) -> (Vec<u8>, bool) {
    let bytes = match (body["as_bytes"].as_str(), body["as_string"].as_str()) {
        (Some(b), _) => b64(b),
        (None, Some(s)) => s.as_bytes().to_vec(),
        _ => Vec::new(),
    };
    (bytes, body["truncated"].as_bool().unwrap_or(false))
}

fn message(value: &Value) -> Message {
    let (body, body_truncated) = data(&value["body"]);
    Message {
        headers: headers(&value["headers"]),
        body,
        body_truncated,
        trailers: headers(&value["trailers"]),
    }
}

fn address(value: Option<&Value>) -> (String, u16) {
    let s = value
        .and_then(|v| v.get("socket_address"))
        .unwrap_or(&Value::Null);
    (
        s["address"].as_str().unwrap_or_default().to_string(),
        s["port_value"].as_u64().unwrap_or(0) as u16,
    )
}

fn http(trace: &Value, top: &Value) -> HttpRecord {
    let info = &top["stream_info"];
    let conn = &trace["downstream_connection"];
    HttpRecord {
        request: message(&trace["request"]),
        response: trace.get("response").map(message),
        start_time: info["start_time"].as_str().map(str::to_string),
        duration_ms: info["duration_ms"].as_f64(),
        downstream: conn.is_object().then(|| {
            (
                address(conn.get("local_address")),
                address(conn.get("remote_address")),
            )
        }),
        peer: top["peer"].as_object().map(|p| {
            p.get("principal")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        }),
        // With stream info, no details is no `via_upstream` (Envoy gives a
        // Wasm filter's local reply none).
        response_code_details: info.is_object().then(|| {
            info["response_code_details"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        }),
        incomplete: top["incomplete"].as_bool().unwrap_or(false),
    }
}

fn tcp(trace: &Value) -> TcpRecord {
    let events = trace["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let (direction, inner) = if let Some(r) = e.get("read") {
                (Direction::Read, r)
            } else if let Some(w) = e.get("write") {
                (Direction::Write, w)
            } else if e.get("closed").is_some() {
                (Direction::Closed, &Value::Null)
            } else {
                return None;
            };
            Some(Event {
                time: e["timestamp"].as_str().map(str::to_string),
                direction,
                data: data(&inner["data"]).0,
                end_stream: inner["end_stream"].as_bool().unwrap_or(false),
            })
        })
        .collect();
    let trace_id = match &trace["trace_id"] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    TcpRecord {
        trace_id,
        local: address(trace.pointer("/connection/local_address")),
        remote: address(trace.pointer("/connection/remote_address")),
        events,
        read_truncated: trace["read_truncated"].as_bool().unwrap_or(false),
        write_truncated: trace["write_truncated"].as_bool().unwrap_or(false),
    }
}

/// One document of a record stream, as it arrives.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub record: Record,
    /// For one of the periodic records of a connection still open when
    /// `tap_tcp` wrote it (its events since the previous one): its
    /// `sequence`.
    pub part: Option<u64>,
}

/// What one document holds; `None` when it is not a tap record.
pub fn item(value: &Value) -> Option<Item> {
    if let Some(trace) = value.get("http_buffered_trace") {
        return Some(Item {
            record: Record::Http(http(trace, value)),
            part: None,
        });
    }
    let trace = value.get("socket_buffered_trace")?;
    Some(Item {
        record: Record::Tcp(tcp(trace)),
        part: trace["sequence"].as_u64(),
    })
}

/// Every record in `text`: JSON lines or pretty-printed documents one after
/// another. Periodic `tap_tcp` records of one connection are merged in
/// `sequence` order (repeats, as a periodic access-log flush writes them,
/// kept once). Anything that is not a record is reported in the error list.
pub fn parse(text: &str) -> (Vec<Record>, Vec<String>) {
    let mut records = Vec::new();
    let mut errors = Vec::new();
    // trace_id -> (index in records, sequences seen)
    let mut segments: BTreeMap<String, (usize, BTreeMap<u64, TcpRecord>)> = BTreeMap::new();
    for (i, item) in serde_json::Deserializer::from_str(text)
        .into_iter::<Value>()
        .enumerate()
    {
        let value = match item {
            Ok(v) => v,
            Err(e) => {
                errors.push(format!("document {}: {e}", i + 1));
                break;
            }
        };
        match self::item(&value) {
            Some(Item {
                record: Record::Tcp(record),
                part: Some(seq),
            }) => {
                let entry = segments.entry(record.trace_id.clone()).or_insert_with(|| {
                    records.push(Record::Tcp(record.clone()));
                    (records.len() - 1, BTreeMap::new())
                });
                entry.1.entry(seq).or_insert(record);
            }
            Some(item) => records.push(item.record),
            None => errors.push(format!("document {}: not a tap record", i + 1)),
        }
    }
    for (index, parts) in segments.into_values() {
        let mut parts = parts.into_values();
        if let Some(mut merged) = parts.next() {
            for part in parts {
                merged.events.extend(part.events);
                merged.read_truncated |= part.read_truncated;
                merged.write_truncated |= part.write_truncated;
            }
            if let Some(slot) = records.get_mut(index) {
                *slot = Record::Tcp(merged);
            }
        }
    }
    (records, errors)
}

/// The HTTP records in `text` (see [`parse`]), and what was not a record.
pub fn parse_http(text: &str) -> (Vec<HttpRecord>, Vec<String>) {
    let (records, errors) = parse(text);
    let http = records
        .iter()
        .filter_map(|r| r.as_http().cloned())
        .collect();
    (http, errors)
}

/// The standard reason phrase of a status code, empty for codes without one
/// here (HTTP/1.1 allows an empty phrase; some decoders still expect one).
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}
