//! Renders one stream as a single line of Envoy's tap JSON
//! (`{"http_buffered_trace": {"request": {...}, "response": {...}}}`).

use crate::config::BodyFormat;
use crate::matcher::Headers;
use crate::redact::{BodyKind, Redaction};
pub use filter_common::encoding::json::rfc3339;
use filter_common::encoding::json::{push_address, push_base64, push_key, push_lossy, push_str};
use filter_common::peer::{Key, Peer};
use filter_common::tap::capture::Capture;
use filter_common::tap::push_data;

pub use crate::redact::REDACTED;

/// One direction of the stream as it will be written.
pub struct Message<'a> {
    pub headers: &'a Headers,
    pub body: &'a Capture,
    pub trailers: Option<&'a Headers>,
}

/// Optional fields beyond Envoy's default record.
#[derive(Debug, Default)]
pub struct Extras {
    /// Downstream `(local, remote)` addresses as `ip:port`, written like
    /// Envoy's `record_downstream_connection`.
    pub downstream: Option<(String, String)>,
    pub stream_info: Option<StreamInfo>,
    /// The stream ended without completing (reset or aborted midway).
    pub incomplete: bool,
    /// The URI SAN of the client certificate the connection's mTLS
    /// handshake verified; `None` without one. Always written (top-level
    /// `peer`): the caller as Envoy proved it, which no request header is.
    pub peer: Option<String>,
    /// The caller peer_metadata published in filter state (`wasm.peer_*`),
    /// when it ran on the stream: written as `peer.metadata`.
    pub caller: Option<Peer>,
}

/// What `peer.metadata` shows of the published caller besides `verified`,
/// in this order, each named without `peer_`: not the principal (`peer`'s
/// own is the certificate's) nor the labels.
pub const CALLER_KEYS: [Key; 8] = [
    Key::Workload,
    Key::Namespace,
    Key::Name,
    Key::App,
    Key::Version,
    Key::Cluster,
    Key::Identity,
    Key::ServiceAccount,
];

#[derive(Debug, Default)]
pub struct StreamInfo {
    pub start_time_nanos: Option<u64>,
    pub duration_nanos: Option<u64>,
    pub request_id: Option<String>,
    pub response_code: Option<u64>,
    pub response_code_details: Option<String>,
    pub response_flags: Option<u64>,
    pub upstream_address: Option<String>,
}

pub struct Format<'a> {
    pub body: BodyFormat,
    pub redact: &'a Redaction,
}

impl Format<'_> {
    pub fn render(&self, request: &Message, response: &Message, extras: &Extras) -> String {
        let size = request.body.data().len() + response.body.data().len();
        let mut out = String::with_capacity(512 + size * 4 / 3);
        out.push_str("{\"http_buffered_trace\":{\"request\":");
        self.message(&mut out, request);
        // Like Envoy, no response object when no response started.
        if !response.headers.is_empty() {
            out.push_str(",\"response\":");
            self.message(&mut out, response);
        }
        if let Some((local, remote)) = &extras.downstream {
            out.push(',');
            push_key(&mut out, "downstream_connection");
            out.push('{');
            push_key(&mut out, "local_address");
            push_address(&mut out, local);
            out.push(',');
            push_key(&mut out, "remote_address");
            push_address(&mut out, remote);
            out.push('}');
        }
        out.push('}');
        if let Some(info) = &extras.stream_info {
            out.push(',');
            push_key(&mut out, "stream_info");
            push_stream_info(&mut out, info);
        }
        out.push(',');
        push_key(&mut out, "peer");
        out.push('{');
        if let Some(principal) = &extras.peer {
            push_key(&mut out, "principal");
            push_str(&mut out, principal);
            if extras.caller.is_some() {
                out.push(',');
            }
        }
        if let Some(caller) = &extras.caller {
            out.push_str("\"metadata\":{\"verified\":");
            out.push_str(if caller.verified { "true" } else { "false" });
            for key in CALLER_KEYS {
                if let Some(value) = caller.value(key) {
                    out.push(',');
                    push_key(
                        &mut out,
                        key.name().strip_prefix("peer_").unwrap_or_default(),
                    );
                    push_str(&mut out, &value);
                }
            }
            out.push('}');
        }
        out.push('}');
        if extras.incomplete {
            out.push_str(",\"incomplete\":true");
        }
        out.push('}');
        out
    }

    fn message(&self, out: &mut String, message: &Message) {
        out.push('{');
        push_key(out, "headers");
        self.headers(out, message.headers);
        if message.body.seen() > 0 {
            out.push(',');
            push_key(out, "body");
            let kind = BodyKind::of(message.headers.first("content-type"));
            push_data(
                out,
                self.body,
                &self.redact.body(kind, message.body.data()),
                message.body.truncated(),
            );
        }
        out.push(',');
        push_key(out, "trailers");
        self.headers(out, message.trailers.unwrap_or(&Headers::default()));
        out.push('}');
    }

    fn headers(&self, out: &mut String, headers: &Headers) {
        out.push('[');
        for (i, (name, value)) in headers.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push('{');
            push_key(out, "key");
            push_str(out, name);
            out.push(',');
            push_key(out, "value");
            let value = self.redact.header(name, value);
            match std::str::from_utf8(&value) {
                Ok(text) => push_str(out, text),
                Err(_) => {
                    // Not UTF-8: a readable `value`, and the exact bytes in
                    // `raw_value` (Envoy's HeaderValue field for them).
                    push_lossy(out, &value);
                    out.push(',');
                    push_key(out, "raw_value");
                    push_base64(out, &value);
                }
            }
            out.push('}');
        }
        out.push(']');
    }
}

fn push_stream_info(out: &mut String, info: &StreamInfo) {
    let mut fields: Vec<(&str, String)> = Vec::new();
    let text = |value: &str| {
        let mut s = String::new();
        push_str(&mut s, value);
        s
    };
    if let Some(t) = info.start_time_nanos {
        fields.push(("start_time", text(&rfc3339(t))));
    }
    if let Some(d) = info.duration_nanos {
        // Integer arithmetic: float formatting would add ~16 KiB to the module.
        let micros = d / 1000;
        fields.push((
            "duration_ms",
            format!("{}.{:03}", micros / 1000, micros % 1000),
        ));
    }
    if let Some(id) = &info.request_id {
        fields.push(("request_id", text(id)));
    }
    if let Some(code) = info.response_code {
        fields.push(("response_code", code.to_string()));
    }
    if let Some(details) = &info.response_code_details {
        fields.push(("response_code_details", text(details)));
    }
    if let Some(flags) = info.response_flags {
        fields.push(("response_flags", flags.to_string()));
    }
    if let Some(upstream) = &info.upstream_address {
        fields.push(("upstream_address", text(upstream)));
    }
    out.push('{');
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_key(out, key);
        out.push_str(value);
    }
    out.push('}');
}
