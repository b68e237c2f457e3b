//! The plugin configuration, parsed and validated once per VM.

use crate::matcher::{HeaderMatch, HeaderTest, Predicate, Test};
use filter_common::config::{join, parse_document, ConfigError, Field, Result, Value};
use filter_common::header::is_valid_header_name;
use filter_common::predicate::{anchored_regex, compile, StringMatch};
use filter_common::tap::sink::SinkConfig;
use filter_common::tap::{tap_root, Limits};
pub use filter_common::tap::{Budget, DataFormat as BodyFormat, DEFAULT_MAX_BYTES};

pub use crate::redact::{Redaction, DEFAULT_HEADERS as DEFAULT_REDACT, DEFAULT_WORDS};

const CONDITIONS: [&str; 5] = [
    "method",
    "path",
    "request_header",
    "response_header",
    "status",
];

filter_common::config_object! {
    /// The document's own fields as read (the tap's shared ones are read by
    /// [`tap_root`]): [`Config`] is compiled from them.
    pub struct Fields(limits: &Limits) {
        /// request body bytes kept; past it `truncated: true`; `0`: no bodies
        pub max_request_bytes: usize = with(|o, key| limits.bytes(o, key)),
            type "integer", default "`0`";
        /// response body bytes kept
        pub max_response_bytes: usize = with(|o, key| limits.bytes(o, key)),
            type "integer", default "`0`";
        /// base64 in `as_bytes` (`JSON_BODY_AS_BYTES`) or text in `as_string`
        /// (`JSON_BODY_AS_STRING`; invalid UTF-8 becomes U+FFFD)
        pub body_format: BodyFormat = or(BodyFormat::read, BodyFormat::AsBytes),
            type "`\"as_bytes\"` | `\"as_string\"`", default "`\"as_bytes\"`";
        /// header and trailer values written as `[redacted]`; names compare with case ignored
        /// and `_` as `-`; `[]` redacts no header by name (Istio's peer metadata headers stay
        /// redacted)
        pub redact_headers: Vec<String> = or(|f| names(f, true), strings(&DEFAULT_REDACT)),
            type "list of names";
        /// a header, query parameter, form field or JSON member whose lowercase name contains
        /// one is redacted (see the threat model); `[]` turns word redaction off
        pub redact_words: Vec<String> = or(|f| names(f, false), strings(&DEFAULT_WORDS)),
            type "list of words (letters, digits, `-`, `_`)", default "the 13 words above";
        /// write `x-envoy-peer-metadata`, `x-envoy-peer-metadata-id` and `baggage` as sent
        /// instead of `[redacted]` (listing one in `redact_headers` redacts it again)
        pub record_peer_metadata_headers: bool = flag(false), type "bool";
        /// which streams to record, see below
        pub matcher as "match": Predicate =
            or(|f| compile(f, &CONDITIONS, &compile_test), Predicate::Any),
            type "predicate", default "`{\"any\": true}`";
        /// add `http_buffered_trace.downstream_connection` (above)
        pub record_downstream_connection: bool = flag(false), type "bool";
        /// add the top-level `stream_info` (above)
        pub record_stream_info: bool = flag(false), type "bool";
        /// where records go
        pub sink: SinkConfig = or(SinkConfig::read, SinkConfig::default()),
            type "one of below", default "`{\"filter_state\": {}}`";
    }
}

#[derive(Debug)]
pub struct Config {
    pub matcher: Predicate,
    pub max_request_bytes: usize,
    pub max_response_bytes: usize,
    pub body_format: BodyFormat,
    /// What records never carry ([`Redaction`]).
    pub redaction: Redaction,
    pub record_downstream_connection: bool,
    pub record_stream_info: bool,
    pub budget: Budget,
    pub sink: SinkConfig,
}

impl Config {
    /// Parses and validates a plugin configuration document.
    pub fn parse(raw: Option<&[u8]>) -> Result<Config> {
        Config::from_value(&parse_document(raw)?)
    }

    /// From a document already parsed (and checked for repeated keys): the
    /// suite's part for this filter.
    pub fn from_value(document: &Value) -> Result<Config> {
        let (top, budget, limits) = tap_root(document, Fields::FIELDS)?;
        let f = Fields::from_object(&top, &limits)?;
        let mut redaction = Redaction::new(f.redact_headers, f.redact_words);
        redaction.record_peer_metadata_headers = f.record_peer_metadata_headers;
        Ok(Config {
            matcher: f.matcher,
            max_request_bytes: f.max_request_bytes,
            max_response_bytes: f.max_response_bytes,
            body_format: f.body_format,
            redaction,
            record_downstream_connection: f.record_downstream_connection,
            record_stream_info: f.record_stream_info,
            budget,
            sink: f.sink,
        })
    }
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// A list of lowercase names (`headers`: each a header name; otherwise a
/// word of letters, digits, `-` and `_`).
fn names(f: Field, headers: bool) -> Result<Vec<String>> {
    f.list()?
        .iter()
        .enumerate()
        .map(|(i, value)| {
            let path = format!("{}[{i}]", f.path);
            let name = Field { path: &path, value }.str()?;
            let valid = if headers {
                is_valid_header_name(name)
            } else {
                !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            };
            if !valid {
                let (what, fix) = if headers {
                    (
                        "a header name",
                        "list header names such as \"authorization\"",
                    )
                } else {
                    (
                        "a word",
                        "list words of letters, digits, - and _ such as \"token\"",
                    )
                };
                return Err(ConfigError::new(
                    path,
                    format!("{name:?} is not {what}"),
                    fix,
                ));
            }
            Ok(name.to_ascii_lowercase())
        })
        .collect()
}

fn compile_test(kind: &str, field: Field) -> Result<Test> {
    let path = field.path;
    Ok(match kind {
        "method" => {
            let m = field.str()?;
            if m.is_empty() || !m.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(ConfigError::new(
                    path,
                    format!("{m:?} is not a method"),
                    "use a method such as \"GET\"",
                ));
            }
            Test::Method(m.to_string())
        }
        "path" => Test::Path(StringMatch::read(field, &["exact", "prefix", "regex"])?),
        "request_header" => Test::RequestHeader(compile_header(field)?),
        "response_header" => Test::ResponseHeader(compile_header(field)?),
        _ => {
            let o = field.object(&["min", "max"])?;
            let min = o.need("min", |f| f.u64())?;
            let max = o.need("max", |f| f.u64())?;
            if !(100..=999).contains(&min) || !(min..=999).contains(&max) {
                return Err(ConfigError::new(
                    path,
                    format!("{min}..{max} is not a range of status codes"),
                    "use 100 <= min <= max <= 999",
                ));
            }
            Test::Status {
                min: min as u16,
                max: max as u16,
            }
        }
    })
}

fn compile_header(field: Field) -> Result<HeaderMatch> {
    let o = field.object(&["name", "present", "exact", "regex"])?;
    let name = o.need("name", |f| f.str())?;
    if !is_valid_header_name(name) {
        return Err(ConfigError::new(
            join(o.path(), "name"),
            format!("{name:?} is not a header name"),
            "use a header name; pseudo-headers are matched with method, path and status",
        ));
    }
    let tests = ["present", "exact", "regex"]
        .iter()
        .filter(|t| o.has(t))
        .count();
    if tests != 1 {
        return Err(ConfigError::new(
            field.path,
            "needs exactly one of present, exact, regex",
            "keep one test per header predicate; combine them with and/or",
        ));
    }
    let test = if let Some(p) = o.get("present", |f| f.bool())? {
        HeaderTest::Present(p)
    } else if let Some(e) = o.string("exact")? {
        HeaderTest::Exact(e)
    } else {
        let path = join(o.path(), "regex");
        HeaderTest::Regex(o.need("regex", |f| f.str().and_then(|r| anchored_regex(&path, r)))?)
    };
    Ok(HeaderMatch {
        name: name.to_ascii_lowercase(),
        test,
    })
}
