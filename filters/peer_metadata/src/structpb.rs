//! A decoder for `google.protobuf.Struct` in protobuf wire format, as Istio's
//! metadata exchange sends it (base64 in `x-envoy-peer-metadata`). Input is
//! hostile: every length is checked against what is left, nesting and key
//! counts are capped, and nothing panics.
//!
//! ```text
//! Struct    { map<string, Value> fields = 1; }   // entries: key = 1, value = 2
//! Value     { null_value = 1 (enum); number_value = 2 (double);
//!             string_value = 3; bool_value = 4; struct_value = 5; list_value = 6; }
//! ListValue { repeated Value values = 1; }
//! ```

use filter_common::encoding::base64;
use filter_common::sort::sorted_indexes;
use std::fmt;

/// A decoded `google.protobuf.Value`.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Number(f64),
    String(String),
    Bool(bool),
    Struct(Struct),
    List(Vec<Value>),
}

/// A decoded `google.protobuf.Struct`: keys in wire order, each once (a
/// repeated key keeps its last value, as protobuf maps do).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Struct(pub Vec<(String, Value)>);

impl Struct {
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// A string field (`None` when absent or not a string).
    pub fn str(&self, key: &str) -> Option<&str> {
        match self.get(key) {
            Some(Value::String(s)) => Some(s),
            _ => None,
        }
    }

    /// A nested struct field.
    pub fn structure(&self, key: &str) -> Option<&Struct> {
        match self.get(key) {
            Some(Value::Struct(s)) => Some(s),
            _ => None,
        }
    }

    /// Makes each key appear once: a repeated key keeps its last value, in
    /// its last place. The places are sorted by key and then by place (a
    /// heapsort: O(n log n) key comparisons for n keys, whatever the input),
    /// so the repeats of a key are neighbours and the last of them is kept;
    /// a scan of the keys so far for each key would be O(n²), 12 million
    /// comparisons for 4,900 distinct keys.
    fn dedup(&mut self) {
        let entries = &mut self.0;
        if entries.len() < 2 {
            return;
        }
        let key = |i: usize| Key(entries.get(i).map_or("", |(k, _)| k.as_str()));
        let order = sorted_indexes(entries.len(), &mut |a, b| (key(a), a) < (key(b), b));
        let mut keep = vec![true; entries.len()];
        let mut repeated = false;
        for pair in order.windows(2) {
            if let [a, b] = *pair {
                if key(a) == key(b) {
                    if let Some(k) = keep.get_mut(a) {
                        *k = false;
                        repeated = true;
                    }
                }
            }
        }
        if repeated {
            let mut i = 0;
            entries.retain(|_| {
                i += 1;
                keep.get(i - 1).copied().unwrap_or(true)
            });
        }
    }
}

/// A key as the duplicate check orders it; under `cfg(test)` it counts its
/// comparisons, so a test can show the decode is not quadratic.
#[derive(PartialEq, Eq)]
struct Key<'a>(&'a str);

impl PartialOrd for Key<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key<'_> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        #[cfg(test)]
        tests::COMPARISONS.with(|c| c.set(c.get() + 1));
        self.0.cmp(other.0)
    }
}

/// Caps that bound the work and memory one header can cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Structs and lists inside one another.
    pub max_depth: usize,
    /// Keys and list items in the whole tree.
    pub max_entries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 8,
            max_entries: 256,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    Base64,
    /// Truncated, a bad wire type, a length past the end, invalid UTF-8.
    Malformed(&'static str),
    TooDeep,
    TooManyEntries,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Base64 => f.write_str("not base64"),
            Error::Malformed(why) => write!(f, "malformed protobuf: {why}"),
            Error::TooDeep => f.write_str("nested too deep"),
            Error::TooManyEntries => f.write_str("too many keys or list items"),
        }
    }
}

/// Decodes a header value: base64 (standard alphabet, with or without `=`
/// padding: both are seen in the wild), then a `Struct`.
pub fn decode_header(value: &[u8], limits: Limits) -> Result<Struct, Error> {
    let bytes = base64::decode(value).ok_or(Error::Base64)?;
    decode_struct(&bytes, limits)
}

/// Decodes a serialized `Struct`.
pub fn decode_struct(bytes: &[u8], limits: Limits) -> Result<Struct, Error> {
    let mut decoder = Decoder { limits, entries: 0 };
    decoder.structure(bytes, 0)
}

struct Decoder {
    limits: Limits,
    entries: usize,
}

/// One field of a message: its number and payload.
enum Field<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32,
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, Error> {
        let mut value = 0u64;
        for i in 0..10 {
            let (&b, rest) = self
                .bytes
                .split_first()
                .ok_or(Error::Malformed("truncated varint"))?;
            self.bytes = rest;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(Error::Malformed("varint longer than 10 bytes"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if n > self.bytes.len() {
            return Err(Error::Malformed("length past the end"));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    /// The next field, or `None` at the end of the message.
    fn field(&mut self) -> Result<Option<(u64, Field<'a>)>, Error> {
        if self.bytes.is_empty() {
            return Ok(None);
        }
        let tag = self.varint()?;
        let number = tag >> 3;
        if number == 0 {
            return Err(Error::Malformed("field number 0"));
        }
        let field = match tag & 7 {
            0 => Field::Varint(self.varint()?),
            1 => {
                let b = self.take(8)?;
                let mut raw = [0u8; 8];
                raw.copy_from_slice(b);
                Field::Fixed64(u64::from_le_bytes(raw))
            }
            2 => {
                let len = self.varint()?;
                let len =
                    usize::try_from(len).map_err(|_| Error::Malformed("length past the end"))?;
                Field::Bytes(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Field::Fixed32
            }
            _ => return Err(Error::Malformed("unsupported wire type")),
        };
        Ok(Some((number, field)))
    }
}

fn text(bytes: &[u8]) -> Result<String, Error> {
    String::from_utf8(bytes.to_vec()).map_err(|_| Error::Malformed("string is not UTF-8"))
}

impl Decoder {
    fn count(&mut self) -> Result<(), Error> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(Error::TooManyEntries);
        }
        Ok(())
    }

    fn nest(&self, depth: usize) -> Result<usize, Error> {
        if depth >= self.limits.max_depth {
            return Err(Error::TooDeep);
        }
        Ok(depth + 1)
    }

    fn structure(&mut self, bytes: &[u8], depth: usize) -> Result<Struct, Error> {
        let mut out = Struct::default();
        let mut reader = Reader { bytes };
        while let Some((number, field)) = reader.field()? {
            match (number, field) {
                (1, Field::Bytes(entry)) => {
                    self.count()?;
                    out.0.push(self.entry(entry, depth)?);
                }
                (1, _) => return Err(Error::Malformed("Struct.fields is not length-delimited")),
                _ => {}
            }
        }
        out.dedup();
        Ok(out)
    }

    /// A map entry; a missing key is "" and a missing value is null, as in protobuf.
    fn entry(&mut self, bytes: &[u8], depth: usize) -> Result<(String, Value), Error> {
        let (mut key, mut value) = (String::new(), Value::Null);
        let mut reader = Reader { bytes };
        while let Some((number, field)) = reader.field()? {
            match (number, field) {
                (1, Field::Bytes(b)) => key = text(b)?,
                (2, Field::Bytes(b)) => value = self.value(b, depth)?,
                (1 | 2, _) => {
                    return Err(Error::Malformed("map entry field has the wrong wire type"))
                }
                _ => {}
            }
        }
        Ok((key, value))
    }

    /// A `Value`; with several kinds set, the last one wins (a oneof). An
    /// empty `Value` is null.
    fn value(&mut self, bytes: &[u8], depth: usize) -> Result<Value, Error> {
        let mut value = Value::Null;
        let mut reader = Reader { bytes };
        while let Some((number, field)) = reader.field()? {
            value = match (number, field) {
                (1, Field::Varint(_)) => Value::Null,
                (2, Field::Fixed64(bits)) => Value::Number(f64::from_bits(bits)),
                (3, Field::Bytes(b)) => Value::String(text(b)?),
                (4, Field::Varint(b)) => Value::Bool(b != 0),
                (5, Field::Bytes(b)) => {
                    let depth = self.nest(depth)?;
                    Value::Struct(self.structure(b, depth)?)
                }
                (6, Field::Bytes(b)) => {
                    let depth = self.nest(depth)?;
                    Value::List(self.list(b, depth)?)
                }
                (1..=6, _) => return Err(Error::Malformed("Value field has the wrong wire type")),
                _ => continue,
            };
        }
        Ok(value)
    }

    fn list(&mut self, bytes: &[u8], depth: usize) -> Result<Vec<Value>, Error> {
        let mut out = Vec::new();
        let mut reader = Reader { bytes };
        while let Some((number, field)) = reader.field()? {
            match (number, field) {
                (1, Field::Bytes(b)) => {
                    self.count()?;
                    out.push(self.value(b, depth)?);
                }
                (1, _) => return Err(Error::Malformed("ListValue.values is not length-delimited")),
                _ => {}
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    thread_local! {
        pub static COMPARISONS: Cell<u64> = const { Cell::new(0) };
    }

    /// A serialized Struct of `n` distinct string keys.
    fn distinct(n: usize) -> Vec<u8> {
        fn field(tag: u8, bytes: &[u8], out: &mut Vec<u8>) {
            out.push(tag);
            let mut len = bytes.len();
            while len >= 0x80 {
                out.push((len as u8 & 0x7f) | 0x80);
                len >>= 7;
            }
            out.push(len as u8);
            out.extend_from_slice(bytes);
        }
        let mut out = Vec::new();
        for i in 0..n {
            let (mut entry, mut value) = (Vec::new(), Vec::new());
            field(0x1a, b"v", &mut value);
            field(0x0a, format!("key-{i:05}").as_bytes(), &mut entry);
            field(0x12, &value, &mut entry);
            field(0x0a, &entry, &mut out);
        }
        out
    }

    fn comparisons(n: usize) -> u64 {
        let bytes = distinct(n);
        let limits = Limits {
            max_depth: 8,
            max_entries: 10_000,
        };
        COMPARISONS.with(|c| c.set(0));
        let decoded = decode_struct(&bytes, limits).map(|s| s.0.len());
        assert_eq!(decoded, Ok(n));
        COMPARISONS.with(Cell::get)
    }

    /// Key comparisons grow as n log n, not n²: 4x the keys cost under 6x the
    /// comparisons (a scan per key costs 16x), and 4,900 keys cost under
    /// 50 comparisons each (a scan per key: 2,450 each on average).
    #[test]
    fn distinct_keys_cost_n_log_n_comparisons() {
        let (small, large) = (comparisons(2_000), comparisons(8_000));
        assert!(small > 2_000);
        assert!(large < 6 * small, "{small} then {large}");
        assert!(comparisons(4_900) < 50 * 4_900);
    }
}
