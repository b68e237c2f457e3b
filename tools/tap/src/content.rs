//! Bodies as HAR holds them: decoded from their `content-encoding`, as
//! browsers export them and as HAR readers expect (mitmproxy encodes the
//! text again with the recorded `content-encoding` when it reads the file).

use std::io::Read;

/// A body decoded from its content codings.
#[derive(Debug, PartialEq, Eq)]
pub struct Decoded {
    pub bytes: Vec<u8>,
    /// What could not be done, for the entry's comment: a coding this tool
    /// does not know, or data that ends early (a body cut at the tap's cap).
    pub note: Option<String>,
}

/// Bodies decode to at most this many bytes: a small compressed body can
/// expand enormously (a decompression bomb in recorded traffic).
pub const MAX_DECODED: usize = 64 << 20;

/// `body` decoded from the codings of a `content-encoding` value (applied
/// in the order listed, so undone in reverse): gzip (x-gzip), deflate, br;
/// identity is none.
pub fn decode(content_encoding: &str, body: &[u8]) -> Decoded {
    let codings: Vec<String> = content_encoding
        .split(',')
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty() && c != "identity")
        .collect();
    let mut bytes = body.to_vec();
    for coding in codings.iter().rev() {
        let reader: Box<dyn Read + '_> = match coding.as_str() {
            "gzip" | "x-gzip" => Box::new(flate2::read::MultiGzDecoder::new(&bytes[..])),
            // HTTP's deflate is zlib-wrapped; some servers send it raw.
            "deflate" if bytes.first().is_some_and(|b| b & 0x0f == 8) => {
                Box::new(flate2::read::ZlibDecoder::new(&bytes[..]))
            }
            "deflate" => Box::new(flate2::read::DeflateDecoder::new(&bytes[..])),
            "br" => Box::new(brotli_decompressor::Decompressor::new(&bytes[..], 4096)),
            other => {
                return Decoded {
                    bytes,
                    note: Some(format!(
                        "body left {other}-encoded: tap cannot decode {other}"
                    )),
                }
            }
        };
        let mut out = Vec::new();
        let limit = u64::try_from(MAX_DECODED).unwrap_or(u64::MAX) + 1;
        let result = reader.take(limit).read_to_end(&mut out);
        if out.len() > MAX_DECODED {
            return Decoded {
                bytes,
                note: Some(format!(
                    "body left {coding}-encoded: it decodes to more than {MAX_DECODED} bytes"
                )),
            };
        }
        match result {
            Ok(_) => bytes = out,
            Err(_) if !out.is_empty() => {
                return Decoded {
                    bytes: out,
                    note: Some(format!(
                        "{coding} body ends early (cut at the tap's cap): what it held is decoded"
                    )),
                }
            }
            Err(e) => {
                return Decoded {
                    bytes,
                    note: Some(format!(
                        "body left {coding}-encoded: not {coding} data ({e})"
                    )),
                }
            }
        }
    }
    Decoded { bytes, note: None }
}
