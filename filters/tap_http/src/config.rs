//! The plugin configuration, parsed and validated once per VM.

use crate::matcher::{HeaderMatch, HeaderTest, Predicate, Test};
use filter_common::config::{join, parse_document, ConfigError, Field, Object, Result, Value};
use filter_common::header::is_valid_header_name;
use filter_common::predicate::{anchored_regex, compile, StringMatch};
use filter_common::tap::sink::SinkConfig;
use filter_common::tap::tap_root;
pub use filter_common::tap::{Budget, DataFormat as BodyFormat, DEFAULT_MAX_BYTES};

pub use crate::redact::{Redaction, DEFAULT_HEADERS as DEFAULT_REDACT, DEFAULT_WORDS};

const FIELDS: [&str; 9] = [
    "match",
    "max_request_bytes",
    "max_response_bytes",
    "body_format",
    "redact_headers",
    "redact_words",
    "record_peer_metadata_headers",
    "record_downstream_connection",
    "record_stream_info",
];

const CONDITIONS: [&str; 5] = [
    "method",
    "path",
    "request_header",
    "response_header",
    "status",
];

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
        let (top, budget, limits) = tap_root(document, &FIELDS)?;
        let max_request_bytes = limits.bytes(&top, "max_request_bytes")?;
        let max_response_bytes = limits.bytes(&top, "max_response_bytes")?;
        let body_format = BodyFormat::read(&top, "body_format")?;
        let mut redaction = Redaction::new(
            names(&top, "redact_headers", &DEFAULT_REDACT, true)?,
            names(&top, "redact_words", &DEFAULT_WORDS, false)?,
        );
        redaction.record_peer_metadata_headers = top.flag("record_peer_metadata_headers", false)?;
        let matcher = top
            .get("match", |f| compile(f, &CONDITIONS, &compile_test))?
            .unwrap_or(Predicate::Any);
        Ok(Config {
            matcher,
            max_request_bytes,
            max_response_bytes,
            body_format,
            redaction,
            record_downstream_connection: top.flag("record_downstream_connection", false)?,
            record_stream_info: top.flag("record_stream_info", false)?,
            budget,
            sink: top.get("sink", SinkConfig::read)?.unwrap_or_default(),
        })
    }
}

/// A list of lowercase names (`headers`: each a header name; otherwise a
/// word of letters, digits, `-` and `_`), or `default`.
fn names(top: &Object, key: &str, default: &[&str], headers: bool) -> Result<Vec<String>> {
    let list = top.get(key, |f| {
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
            .collect::<Result<Vec<_>>>()
    })?;
    Ok(list.unwrap_or_else(|| default.iter().map(|s| s.to_string()).collect()))
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
