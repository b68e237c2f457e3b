//! HTTP/1.1 framing shared by the echo upstream and the raw client: they read
//! bytes exactly as sent, with no normalisation a library would add.

use crate::Headers;
use std::io::{self, BufRead};

const MAX_HEAD: usize = 1 << 20;

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Reads a start line and header block. `Ok(None)` on a clean EOF before any byte.
pub fn read_head(reader: &mut impl BufRead) -> io::Result<Option<(String, Headers)>> {
    let mut start = Vec::new();
    if reader.read_until(b'\n', &mut start)? == 0 {
        return Ok(None);
    }
    let start = String::from_utf8_lossy(trim_eol(&start)).into_owned();
    let mut total = 0;
    let headers = read_fields(reader, &mut total)?;
    Ok(Some((start, headers)))
}

/// Header or trailer lines up to the empty line.
fn read_fields(reader: &mut impl BufRead, total: &mut usize) -> io::Result<Headers> {
    let mut fields = Headers::new();
    loop {
        let mut line = Vec::new();
        let n = reader.read_until(b'\n', &mut line)?;
        *total += n;
        if n == 0 || *total > MAX_HEAD {
            return Err(invalid("truncated or oversized header block".into()));
        }
        let line = trim_eol(&line);
        if line.is_empty() {
            return Ok(fields);
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or_else(|| invalid("header line without colon".into()))?;
        let name = String::from_utf8_lossy(&line[..colon]).into_owned();
        fields.push((name, trim_ows(&line[colon + 1..]).to_vec()));
    }
}

/// Reads a body framed by `headers`: chunked (with its trailers),
/// content-length, or (when `until_eof`) everything up to the end of the
/// connection.
pub fn read_body(
    reader: &mut impl BufRead,
    headers: &Headers,
    until_eof: bool,
) -> io::Result<(Vec<u8>, Headers)> {
    let chunked = crate::header_values(headers, "transfer-encoding")
        .iter()
        .any(|v| {
            String::from_utf8_lossy(v)
                .to_ascii_lowercase()
                .contains("chunked")
        });
    if chunked {
        return read_chunked(reader);
    }
    if let Some(len) = crate::header_values(headers, "content-length").first() {
        let len: usize = String::from_utf8_lossy(len)
            .trim()
            .parse()
            .map_err(|_| invalid("bad content-length".into()))?;
        let mut body = vec![0; len];
        reader.read_exact(&mut body)?;
        return Ok((body, Headers::new()));
    }
    let mut body = Vec::new();
    if until_eof {
        reader.read_to_end(&mut body)?;
    }
    Ok((body, Headers::new()))
}

fn read_chunked(reader: &mut impl BufRead) -> io::Result<(Vec<u8>, Headers)> {
    let mut body = Vec::new();
    loop {
        let mut line = Vec::new();
        reader.read_until(b'\n', &mut line)?;
        let text = String::from_utf8_lossy(trim_eol(&line)).into_owned();
        let size_text = text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| invalid(format!("bad chunk size {text:?}")))?;
        if size == 0 {
            let mut total = 0;
            return Ok((body, read_fields(reader, &mut total)?));
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        let mut crlf = [0; 2];
        reader.read_exact(&mut crlf)?;
    }
}

/// Writes `body` chunked (in `chunk` sized pieces) followed by `trailers`.
pub fn write_chunked(out: &mut Vec<u8>, body: &[u8], chunk: usize, trailers: &Headers) {
    for piece in body.chunks(chunk.max(1)) {
        out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        out.extend_from_slice(piece);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n");
    write_fields(out, trailers);
    out.extend_from_slice(b"\r\n");
}

/// `name: value` lines.
pub fn write_fields(out: &mut Vec<u8>, fields: &Headers) {
    for (name, value) in fields {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn trim_ows(value: &[u8]) -> &[u8] {
    let start = value
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(start, |e| e + 1);
    &value[start..end]
}
