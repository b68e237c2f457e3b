//! The plugin configuration, parsed and validated once per VM.

use crate::matcher::{HeaderMatch, HeaderTest, Predicate, StringMatch};
use filter_common::config::{join, parse_document, root, ConfigError, Field, Result};
use filter_common::header::is_valid_header_name;
use filter_common::sink::SinkConfig;
use regex_lite::Regex;

pub const DEFAULT_MAX_BYTES: u64 = 64 * 1024;
pub const DEFAULT_HARD_LIMIT: u64 = 1024 * 1024;
/// The most a configuration may raise `max_bytes_hard_limit` to: two of these
/// per stream, base64-encoded, must still fit in memory and in one log line.
pub const ABSOLUTE_HARD_LIMIT: u64 = 16 * 1024 * 1024;
pub const DEFAULT_REDACT: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];
/// Longest regular expression accepted, to bound compile time and memory.
const MAX_REGEX_LEN: usize = 1024;
const MAX_PREDICATE_DEPTH: usize = 16;

const TOP_FIELDS: [&str; 12] = [
    "match",
    "sample_percent",
    "max_request_bytes",
    "max_response_bytes",
    "max_bytes_hard_limit",
    "body_format",
    "redact_headers",
    "record_downstream_connection",
    "record_stream_info",
    "rate_limit",
    "max_records",
    "sink",
];

const PREDICATES: [&str; 9] = [
    "any",
    "and",
    "or",
    "not",
    "method",
    "path",
    "request_header",
    "response_header",
    "status",
];

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// Base64 in `as_bytes`, like Envoy's `JSON_BODY_AS_BYTES`.
    #[default]
    AsBytes,
    /// UTF-8 text in `as_string`, like `JSON_BODY_AS_STRING`.
    AsString,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub records_per_second: f64,
    pub burst: f64,
}

#[derive(Debug)]
pub struct Config {
    pub matcher: Predicate,
    pub sample_percent: f64,
    pub max_request_bytes: usize,
    pub max_response_bytes: usize,
    pub body_format: BodyFormat,
    /// Lowercase header names whose values are replaced by `[redacted]`.
    pub redact_headers: Vec<String>,
    pub record_downstream_connection: bool,
    pub record_stream_info: bool,
    pub rate_limit: Option<RateLimit>,
    pub max_records: Option<u64>,
    pub sink: SinkConfig,
}

impl Config {
    pub fn parse(raw: Option<&[u8]>) -> Result<Config> {
        let document = parse_document(raw)?;
        let top = root(&document, &TOP_FIELDS)?;
        let sample_percent = top.get("sample_percent", |f| f.f64())?.unwrap_or(100.0);
        if !(0.0..=100.0).contains(&sample_percent) {
            return Err(ConfigError::new(
                "sample_percent",
                "is not a percentage",
                "use a number from 0 to 100",
            ));
        }
        let hard_limit = top
            .get("max_bytes_hard_limit", |f| f.u64())?
            .unwrap_or(DEFAULT_HARD_LIMIT);
        if hard_limit > ABSOLUTE_HARD_LIMIT {
            return Err(ConfigError::new(
                "max_bytes_hard_limit",
                format!("{hard_limit} is above {ABSOLUTE_HARD_LIMIT}"),
                "tap at most 16 MiB per direction",
            ));
        }
        let limit = |field: &str| -> Result<usize> {
            let value = top
                .get(field, |f| f.u64())?
                .unwrap_or(DEFAULT_MAX_BYTES.min(hard_limit));
            if value > hard_limit {
                return Err(ConfigError::new(
                    field,
                    format!("{value} is above max_bytes_hard_limit ({hard_limit})"),
                    "lower it, or raise max_bytes_hard_limit deliberately",
                ));
            }
            Ok(value as usize)
        };
        let max_request_bytes = limit("max_request_bytes")?;
        let max_response_bytes = limit("max_response_bytes")?;
        let body_format = match top.get("body_format", |f| f.choice(&["as_bytes", "as_string"]))? {
            Some("as_string") => BodyFormat::AsString,
            _ => BodyFormat::AsBytes,
        };
        let redact_headers = top
            .get("redact_headers", |f| {
                f.list()?
                    .iter()
                    .enumerate()
                    .map(|(i, value)| {
                        let path = format!("{}[{i}]", f.path);
                        let name = Field { path: &path, value }.str()?;
                        if !is_valid_header_name(name) {
                            return Err(ConfigError::new(
                                path,
                                format!("{name:?} is not a header name"),
                                "list header names such as \"authorization\"",
                            ));
                        }
                        Ok(name.to_ascii_lowercase())
                    })
                    .collect::<Result<Vec<_>>>()
            })?
            .unwrap_or_else(|| DEFAULT_REDACT.iter().map(|s| s.to_string()).collect());
        let rate_limit = top.get("rate_limit", |f| {
            let o = f.object(&["records_per_second", "burst"])?;
            let rate = o.need("records_per_second", |f| f.f64())?;
            if !(rate > 0.0 && rate.is_finite()) {
                return Err(ConfigError::new(
                    join(o.path(), "records_per_second"),
                    "is not a positive rate",
                    "use records per second above 0, or remove rate_limit",
                ));
            }
            let burst = o.get("burst", |f| f.f64())?.unwrap_or(rate.max(1.0));
            if !(burst >= 1.0 && burst.is_finite()) {
                return Err(ConfigError::new(
                    join(o.path(), "burst"),
                    "is below 1",
                    "allow a burst of at least one record",
                ));
            }
            Ok(RateLimit {
                records_per_second: rate,
                burst,
            })
        })?;
        let matcher = top
            .get("match", |f| compile_predicate(f, 0))?
            .unwrap_or(Predicate::Any);
        Ok(Config {
            matcher,
            sample_percent,
            max_request_bytes,
            max_response_bytes,
            body_format,
            redact_headers,
            record_downstream_connection: top.flag("record_downstream_connection", false)?,
            record_stream_info: top.flag("record_stream_info", false)?,
            rate_limit,
            max_records: top.get("max_records", |f| f.u64())?,
            sink: top.get("sink", SinkConfig::read)?.unwrap_or_default(),
        })
    }
}

fn compile_regex(path: &str, pattern: &str) -> Result<Regex> {
    if pattern.len() > MAX_REGEX_LEN {
        return Err(ConfigError::new(
            path,
            "regex is too long",
            "keep it under 1024 characters",
        ));
    }
    Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
        ConfigError::new(
            path,
            format!("invalid regex {pattern:?}: {e}"),
            "fix the regular expression (it must match the whole value)",
        )
    })
}

fn compile_predicate(field: Field, depth: usize) -> Result<Predicate> {
    if depth > MAX_PREDICATE_DEPTH {
        return Err(ConfigError::new(
            field.path,
            "predicates nest too deep",
            "nest at most 16 levels",
        ));
    }
    let (kind, value) = field.one_of(&PREDICATES)?;
    let path = join(field.path, kind);
    let inner = Field { path: &path, value };
    let list = || -> Result<Vec<Predicate>> {
        let items = inner.list()?;
        if items.is_empty() {
            return Err(ConfigError::new(
                path.as_str(),
                "is an empty list",
                "give at least one predicate",
            ));
        }
        items
            .iter()
            .enumerate()
            .map(|(i, value)| {
                let path = format!("{path}[{i}]");
                compile_predicate(Field { path: &path, value }, depth + 1)
            })
            .collect()
    };
    Ok(match kind {
        "any" => {
            if !inner.bool()? {
                return Err(ConfigError::new(
                    path,
                    "false would never match",
                    "use {\"any\": true}, or {\"not\": {\"any\": true}} to tap nothing",
                ));
            }
            Predicate::Any
        }
        "and" => Predicate::And(list()?),
        "or" => Predicate::Or(list()?),
        "not" => Predicate::Not(Box::new(compile_predicate(inner, depth + 1)?)),
        "method" => {
            let m = inner.str()?;
            if m.is_empty() || !m.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(ConfigError::new(
                    path,
                    format!("{m:?} is not a method"),
                    "use a method such as \"GET\"",
                ));
            }
            Predicate::Method(m.to_string())
        }
        "path" => {
            let (how, value) = inner.one_of(&["exact", "prefix", "regex"])?;
            let path = join(&path, how);
            let text = Field { path: &path, value }.str()?;
            Predicate::Path(match how {
                "exact" => StringMatch::Exact(text.to_string()),
                "prefix" => StringMatch::Prefix(text.to_string()),
                _ => StringMatch::Regex(compile_regex(&path, text)?),
            })
        }
        "request_header" => Predicate::RequestHeader(compile_header(inner)?),
        "response_header" => Predicate::ResponseHeader(compile_header(inner)?),
        _ => {
            let o = inner.object(&["min", "max"])?;
            let min = o.need("min", |f| f.u64())?;
            let max = o.need("max", |f| f.u64())?;
            if !(100..=999).contains(&min) || !(min..=999).contains(&max) {
                return Err(ConfigError::new(
                    path,
                    format!("{min}..{max} is not a range of status codes"),
                    "use 100 <= min <= max <= 999",
                ));
            }
            Predicate::Status {
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
        HeaderTest::Regex(o.need("regex", |f| f.str().and_then(|r| compile_regex(&path, r)))?)
    };
    Ok(HeaderMatch {
        name: name.to_ascii_lowercase(),
        test,
    })
}
