//! Human-readable output: one line per record (`list`), and whole records
//! with headers and bodies (`show`), binary shown safely as a hex dump and
//! control characters escaped ([`crate::terminal`]).

use crate::record::{Direction, Message, Record};
use crate::terminal::{visible, visible_bytes, visible_text};
use std::fmt::Write;

/// `time  method  authority  path  status  request-bytes  response-bytes`,
/// or for a connection `time  TCP  remote -> local  read-bytes  write-bytes`.
pub fn list_line(record: &Record) -> String {
    match record {
        Record::Http(r) => format!(
            "{}  {}  {}  {}  {}  {}  {}",
            visible(r.start_time.as_deref().unwrap_or("-")),
            visible(&r.method()),
            visible(&r.authority()),
            visible(&r.path()),
            r.status().map_or("-".into(), |s| s.to_string()),
            size(r.request.body.len(), r.request.body_truncated),
            r.response
                .as_ref()
                .map_or("-".into(), |m| size(m.body.len(), m.body_truncated)),
        ),
        Record::Tcp(t) => format!(
            "{}  TCP  {}:{} -> {}:{}  {}  {}",
            visible(
                t.events
                    .first()
                    .and_then(|e| e.time.as_deref())
                    .unwrap_or("-")
            ),
            visible(&t.remote.0),
            t.remote.1,
            visible(&t.local.0),
            t.local.1,
            size(t.bytes(Direction::Read).len(), t.read_truncated),
            size(t.bytes(Direction::Write).len(), t.write_truncated),
        ),
    }
}

fn size(n: usize, truncated: bool) -> String {
    if truncated {
        format!("{n}B+")
    } else {
        format!("{n}B")
    }
}

/// Text as text (line breaks and tabs kept, other control characters
/// escaped), anything else as a hex dump.
pub fn body(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text)
            if !text
                .chars()
                .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) =>
        {
            visible_text(text)
        }
        _ => hexdump(bytes),
    }
}

pub fn hexdump(bytes: &[u8]) -> String {
    let mut out = String::new();
    for (i, chunk) in bytes.chunks(16).enumerate() {
        let hex: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
        let text: String = chunk
            .iter()
            .map(|&b| {
                if (0x20..0x7f).contains(&b) {
                    b as char
                } else {
                    '.'
                }
            })
            .collect();
        let _ = writeln!(out, "{:08x}  {:<47}  |{text}|", i * 16, hex.join(" "));
    }
    out
}

fn header_lines(out: &mut String, headers: &[(String, Vec<u8>)]) {
    for (name, value) in headers {
        let _ = writeln!(out, "{}: {}", visible(name), visible_bytes(value));
    }
}

fn message(out: &mut String, title: &str, m: &Message) {
    let _ = writeln!(out, "--- {title} ---");
    header_lines(out, &m.headers);
    if !m.body.is_empty() || m.body_truncated {
        let _ = writeln!(out);
        out.push_str(&body(&m.body));
        if !out.ends_with('\n') {
            out.push('\n');
        }
        if m.body_truncated {
            let _ = writeln!(out, "[body truncated at {} bytes]", m.body.len());
        }
    }
    if !m.trailers.is_empty() {
        let _ = writeln!(out, "(trailers)");
        header_lines(out, &m.trailers);
    }
}

pub fn show(record: &Record) -> String {
    let mut out = String::new();
    match record {
        Record::Http(r) => {
            let _ = writeln!(out, "=== {}", list_line(record));
            message(&mut out, "request", &r.request);
            match &r.response {
                Some(m) => message(&mut out, "response", m),
                None => {
                    let _ = writeln!(out, "--- no response ---");
                }
            }
        }
        Record::Tcp(t) => {
            let _ = writeln!(
                out,
                "=== {} (trace {})",
                list_line(record),
                visible(&t.trace_id)
            );
            for e in &t.events {
                let what = match e.direction {
                    Direction::Read => "read",
                    Direction::Write => "write",
                    Direction::Closed => "closed",
                };
                let end = if e.end_stream { " (end of stream)" } else { "" };
                let _ = writeln!(
                    out,
                    "--- {} {what} {} bytes{end}",
                    visible(e.time.as_deref().unwrap_or("-")),
                    e.data.len()
                );
                if !e.data.is_empty() {
                    out.push_str(&body(&e.data));
                    if !out.ends_with('\n') {
                        out.push('\n');
                    }
                }
            }
        }
    }
    out
}
