//! Text for a terminal. Records are data from the network and from files
//! anyone can write: a method, path, header or body holding `ESC ] 0 ;` or a
//! bare carriage return would retitle the terminal, clear the screen or
//! overwrite a line if printed as it is. Every human-readable output goes
//! through [`visible`] (one line) or [`visible_text`] (a body); machine
//! outputs (JSON, HAR, pcap, policies) stay exact.

use std::fmt::Write;

/// Unicode's bidirectional formatting characters: not control characters,
/// but they reorder what a terminal shows around them.
fn is_bidi(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn escape(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if (c as u32) < 0x100 => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
}

/// One line: every control character (C0, DEL, C1) and bidirectional
/// formatting character written as an escape (`\x1b`, `\r`, `\u{202e}`).
pub fn visible(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() || is_bidi(c) {
            escape(&mut out, c);
        } else {
            out.push(c);
        }
    }
    out
}

/// Bytes as one line: [`visible`] of their UTF-8 reading, each invalid byte
/// as `\xNN`.
pub fn visible_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(&visible(chunk.valid()));
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// Several lines (a body): line feeds and tabs kept, a carriage return only
/// before a line feed; everything else [`visible`] escapes is escaped.
pub fn visible_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        let keep = match c {
            '\n' | '\t' => true,
            '\r' => chars.peek() == Some(&'\n'),
            c => !c.is_control() && !is_bidi(c),
        };
        if keep {
            out.push(c);
        } else {
            escape(&mut out, c);
        }
    }
    out
}
