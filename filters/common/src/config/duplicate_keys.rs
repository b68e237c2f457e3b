//! Duplicate keys in a JSON document. serde_json keeps the last of two equal
//! keys; in a hand-edited configuration a second `rules` is a mistake that
//! would silently replace the first, so the configuration is refused instead.

use crate::config::{join, ConfigError, Result};
use serde_json::Value;

/// The first key that appears twice in one object, as an error naming it.
/// `value` is `text` parsed: when the text holds as many keys as the parsed
/// objects have entries, no key was dropped, and the check stays linear;
/// only a document with a repeated key is searched for its name.
pub fn refuse_duplicate_keys(text: &str, value: &Value) -> Result<()> {
    let mut keys = 0;
    walk(text, &mut |_, _, _| {
        keys += 1;
        Ok(())
    })?;
    if keys == entries(value) {
        return Ok(());
    }
    walk(text, &mut |path, earlier, key| {
        if earlier.iter().any(|k| k == key) {
            return Err(ConfigError::new(
                join(path, key),
                "appears twice in the same object",
                "keep one: a repeated key would silently replace the first",
            ));
        }
        Ok(())
    })?;
    // Keys were dropped, yet none compares equal as text: refuse all the same.
    Err(ConfigError::new(
        "",
        "has a key twice in one object",
        "keep one of each key: a repeated key would silently replace the first",
    ))
}

/// How many keys the objects of `value` hold, nested ones included.
fn entries(value: &Value) -> usize {
    match value {
        Value::Object(map) => map.len() + map.values().map(entries).sum::<usize>(),
        Value::Array(items) => items.iter().map(entries).sum(),
        _ => 0,
    }
}

/// Called with an object's path, the keys seen before in it, and the key.
type OnKey<'f> = dyn FnMut(&str, &[String], &str) -> Result<()> + 'f;

enum Frame {
    Object {
        path: String,
        keys: Vec<String>,
        /// The next string is a key, not a value.
        expect_key: bool,
    },
    Array {
        path: String,
        index: usize,
    },
}

impl Frame {
    /// Where a container opened inside this one sits.
    fn child_path(&self) -> String {
        match self {
            Frame::Object { path, keys, .. } => join(path, keys.last().map_or("", String::as_str)),
            Frame::Array { path, index } => format!("{path}[{index}]"),
        }
    }
}

/// Calls `on_key(object path, keys seen before in that object, key)` for
/// every key of every object, in document order. `text` is valid JSON.
fn walk(text: &str, on_key: &mut OnKey) -> Result<()> {
    let bytes = text.as_bytes();
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'{' | b'[' => {
                let path = stack.last().map(Frame::child_path).unwrap_or_default();
                stack.push(if b == b'{' {
                    Frame::Object {
                        path,
                        keys: Vec::new(),
                        expect_key: true,
                    }
                } else {
                    Frame::Array { path, index: 0 }
                });
            }
            b'}' | b']' => {
                stack.pop();
            }
            b',' => match stack.last_mut() {
                Some(Frame::Object { expect_key, .. }) => *expect_key = true,
                Some(Frame::Array { index, .. }) => *index += 1,
                None => {}
            },
            b'"' => {
                let end = string_end(bytes, i + 1);
                if let Some(Frame::Object {
                    path,
                    keys,
                    expect_key: expect_key @ true,
                    ..
                }) = stack.last_mut()
                {
                    let key = unescape(text.get(i + 1..end).unwrap_or_default());
                    on_key(path, keys, &key)?;
                    keys.push(key);
                    *expect_key = false;
                }
                i = end;
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// The index of the quote closing a string whose content starts at `start`.
fn string_end(bytes: &[u8], start: usize) -> usize {
    let mut i = start;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\\' => i += 2,
            b'"' => return i,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// A JSON string's content without its escapes, so that two spellings of one
/// key compare equal. Unpaired surrogates become U+FFFD.
fn unescape(raw: &str) -> String {
    if !raw.contains('\\') {
        return raw.to_string();
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    let mut pending_high: Option<u32> = None;
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let unit = match chars.next() {
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                u32::from_str_radix(&hex, 16).unwrap_or(0xFFFD)
            }
            Some('b') => 0x08,
            Some('f') => 0x0c,
            Some('n') => 0x0a,
            Some('r') => 0x0d,
            Some('t') => 0x09,
            Some(other) => other as u32,
            None => break,
        };
        if let Some(high) = pending_high.take() {
            if let 0xDC00..=0xDFFF = unit {
                let c = 0x10000 + ((high - 0xD800) << 10) + (unit - 0xDC00);
                out.push(char::from_u32(c).unwrap_or('\u{FFFD}'));
                continue;
            }
            out.push('\u{FFFD}');
        }
        match unit {
            0xD800..=0xDBFF => pending_high = Some(unit),
            _ => out.push(char::from_u32(unit).unwrap_or('\u{FFFD}')),
        }
    }
    if pending_high.is_some() {
        out.push('\u{FFFD}');
    }
    out
}
