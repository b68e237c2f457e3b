//! HAR 1.2 (http://www.softwareishard.com/blog/har-12-spec/) from HTTP
//! records, for browser developer tools.

use crate::content;
use crate::record::{reason_phrase, HttpRecord, Message};
use crate::time::{micros, now_micros, rfc3339};
use base64::Engine;
use serde_json::{json, Value};

fn headers(m: &Message) -> Vec<Value> {
    m.headers
        .iter()
        .filter(|(n, _)| !n.starts_with(':'))
        .map(|(n, v)| json!({"name": n, "value": String::from_utf8_lossy(v)}))
        .collect()
}

fn query(path: &str) -> Vec<Value> {
    let Some((_, q)) = path.split_once('?') else {
        return Vec::new();
    };
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (n, v) = pair.split_once('=').unwrap_or((pair, ""));
            json!({"name": n, "value": v})
        })
        .collect()
}

fn mime(m: &Message) -> String {
    let t = m.header_text("content-type");
    if t.is_empty() {
        "application/octet-stream".into()
    } else {
        t
    }
}

/// HAR's `startedDateTime`: the record's start time in UTC to the
/// millisecond (as browsers write it, and every reader parses), or `None`.
fn started(r: &HttpRecord) -> Option<String> {
    let us = micros(r.start_time.as_deref()?)?;
    Some(millis(us))
}

/// `2026-01-02T03:04:05.123Z`.
fn millis(us: i64) -> String {
    let full = rfc3339(us);
    match full.split_once('.') {
        Some((seconds, fraction)) => format!("{seconds}.{}Z", fraction.get(..3).unwrap_or("000")),
        None => full,
    }
}

/// The host of a request without `:authority` or `Host` (HTTP/1.0 allows
/// that): a name that never resolves (RFC 6761), as HAR needs an absolute URL.
pub const NO_HOST: &str = "no-host.invalid";

/// The URL's host: the request's authority, else the address the client
/// connected to, else [`NO_HOST`].
fn host(r: &HttpRecord) -> String {
    let authority = r.authority();
    if !authority.is_empty() {
        return authority;
    }
    match &r.downstream {
        Some(((ip, port), _)) if ip.contains(':') => format!("[{ip}]:{port}"),
        Some(((ip, port), _)) => format!("{ip}:{port}"),
        None => NO_HOST.into(),
    }
}

/// A note on an entry whose record has no start time.
pub const UNTIMED: &str = "no start time in the record (tap_http's record_stream_info was off): \
                           startedDateTime is when tap read it, time is 0";

fn entry(r: &HttpRecord, read_at: i64) -> Value {
    let path = r.path();
    let scheme = match r.request.header_text(":scheme") {
        s if s.is_empty() => "http".to_string(),
        s => s,
    };
    let mut request = json!({
        "method": r.method(),
        "url": format!("{scheme}://{}{path}", host(r)),
        "httpVersion": "HTTP/1.1",
        "cookies": [],
        "headers": headers(&r.request),
        "queryString": query(&path),
        "headersSize": -1,
        "bodySize": r.request.body.len(),
    });
    if let (false, Some(fields)) = (r.request.body.is_empty(), request.as_object_mut()) {
        fields.insert(
            "postData".into(),
            json!({"mimeType": mime(&r.request), "text": String::from_utf8_lossy(&r.request.body)}),
        );
    }
    let mut notes = Vec::new();
    let response = match &r.response {
        Some(m) => {
            let status = r.status().unwrap_or(0);
            // HAR holds the body decoded, its size on the wire in bodySize.
            let decoded = content::decode(&m.header_text("content-encoding"), &m.body);
            notes.extend(decoded.note);
            let body = &decoded.bytes;
            let mut content = match std::str::from_utf8(body) {
                Ok(text) => json!({"size": body.len(), "mimeType": mime(m), "text": text}),
                Err(_) => json!({
                    "size": body.len(),
                    "mimeType": mime(m),
                    "text": base64::engine::general_purpose::STANDARD.encode(body),
                    "encoding": "base64",
                }),
            };
            if let (true, Some(fields)) = (body != &m.body, content.as_object_mut()) {
                let saved = i64::try_from(body.len()).unwrap_or(i64::MAX)
                    - i64::try_from(m.body.len()).unwrap_or(i64::MAX);
                fields.insert("compression".into(), json!(saved));
            }
            json!({
                "status": status,
                "statusText": reason_phrase(status),
                "httpVersion": "HTTP/1.1",
                "cookies": [],
                "headers": headers(m),
                "content": content,
                "redirectURL": m.header_text("location"),
                "headersSize": -1,
                "bodySize": m.body.len(),
            })
        }
        // No response (a reset): HAR still needs one; status 0 as browsers write.
        None => json!({
            "status": 0, "statusText": "", "httpVersion": "HTTP/1.1", "cookies": [], "headers": [],
            "content": {"size": 0, "mimeType": "x-unknown"}, "redirectURL": "", "headersSize": -1, "bodySize": -1
        }),
    };
    let time = r.duration_ms.unwrap_or(0.0);
    let started = started(r);
    if started.is_none() {
        notes.insert(0, UNTIMED.to_string());
    }
    let mut entry = json!({
        "startedDateTime": started.unwrap_or_else(|| millis(read_at)),
        "time": time,
        "request": request,
        "response": response,
        "cache": {},
        "timings": {"send": 0, "wait": time, "receive": 0},
    });
    if let Some(fields) = entry.as_object_mut() {
        // The address the client connected to: the server as it saw it.
        if let Some(((ip, _), _)) = &r.downstream {
            fields.insert("serverIPAddress".into(), json!(ip));
        }
        if !notes.is_empty() {
            fields.insert("comment".into(), json!(notes.join("; ")));
        }
    }
    entry
}

/// How many of `records` have no start time of their own.
pub fn untimed(records: &[&HttpRecord]) -> usize {
    records.iter().filter(|r| started(r).is_none()).count()
}

/// HAR 1.2 of `records`; a record without a start time gets the time now,
/// and a comment saying so.
pub fn har(records: &[&HttpRecord]) -> Value {
    let read_at = now_micros();
    json!({"log": {
        "version": "1.2",
        "creator": {"name": "tap", "version": env!("CARGO_PKG_VERSION")},
        "pages": [],
        "entries": records.iter().map(|r| entry(r, read_at)).collect::<Vec<_>>()
    }})
}
