//! HAR 1.2 (http://www.softwareishard.com/blog/har-12-spec/) from HTTP
//! records, for browser developer tools.

use crate::record::{reason_phrase, HttpRecord, Message};
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

fn entry(r: &HttpRecord) -> Value {
    let path = r.path();
    let scheme = match r.request.header_text(":scheme") {
        s if s.is_empty() => "http".to_string(),
        s => s,
    };
    let mut request = json!({
        "method": r.method(),
        "url": format!("{scheme}://{}{path}", r.authority()),
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
    let response = match &r.response {
        Some(m) => {
            let status = r.status().unwrap_or(0);
            let content = match std::str::from_utf8(&m.body) {
                Ok(text) => json!({"size": m.body.len(), "mimeType": mime(m), "text": text}),
                Err(_) => json!({
                    "size": m.body.len(),
                    "mimeType": mime(m),
                    "text": base64::engine::general_purpose::STANDARD.encode(&m.body),
                    "encoding": "base64",
                }),
            };
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
    json!({
        "startedDateTime": r.start_time.clone().unwrap_or_else(|| "1970-01-01T00:00:00.000Z".into()),
        "time": time,
        "request": request,
        "response": response,
        "cache": {},
        "timings": {"send": 0, "wait": time, "receive": 0},
    })
}

pub fn har(records: &[&HttpRecord]) -> Value {
    json!({"log": {
        "version": "1.2",
        "creator": {"name": "tap", "version": env!("CARGO_PKG_VERSION")},
        "pages": [],
        "entries": records.iter().map(|r| entry(r)).collect::<Vec<_>>()
    }})
}
