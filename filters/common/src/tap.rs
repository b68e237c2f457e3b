//! Configuration both tap filters read the same way: how much to keep, how
//! data is written, and how many records to allow (sampling, rate, total).

pub mod capture;
pub mod ratelimit;
pub mod sink;

use crate::config::{join, root, ConfigError, Object, Result};
use crate::encoding::json::{push_base64, push_key, push_lossy};
use serde_json::Value;

/// Bodies and connection data are kept only when a configuration asks:
/// they can hold anything, credentials included, and no redaction can know
/// every format (headers, queries, form and JSON fields are redacted).
pub const DEFAULT_MAX_BYTES: u64 = 0;
pub const DEFAULT_HARD_LIMIT: u64 = 1024 * 1024;
/// The most a configuration may raise `max_bytes_hard_limit` to: two of these
/// per stream, base64-encoded, must still fit in memory and in one log line.
pub const ABSOLUTE_HARD_LIMIT: u64 = 16 * 1024 * 1024;

/// Top-level fields every tap takes: [`Budget`], [`Limits`] and the sink.
const TAP_FIELDS: [&str; 5] = [
    "sample_percent",
    "rate_limit",
    "max_records",
    "max_bytes_hard_limit",
    "sink",
];

crate::config_choice! {
    /// How recorded bytes are written.
    #[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
    pub enum DataFormat {
        /// Base64 in `as_bytes`, like Envoy's `JSON_BODY_AS_BYTES`.
        #[default]
        AsBytes = "as_bytes",
        /// UTF-8 text in `as_string`, like `JSON_BODY_AS_STRING`.
        AsString = "as_string",
    }
}

/// Appends tap data as Envoy's `Body`: `{"as_bytes": ..., "truncated": ...}`.
pub fn push_data(out: &mut String, format: DataFormat, data: &[u8], truncated: bool) {
    out.push('{');
    match format {
        DataFormat::AsBytes => {
            push_key(out, "as_bytes");
            push_base64(out, data);
        }
        DataFormat::AsString => {
            push_key(out, "as_string");
            push_lossy(out, data);
        }
    }
    out.push_str(if truncated {
        ",\"truncated\":true}"
    } else {
        ",\"truncated\":false}"
    });
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub records_per_second: f64,
    pub burst: f64,
}

/// How many records a tap may write: a sampled share of what matches, at most
/// `rate_limit` a second per worker, at most `max_records` in all.
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    pub sample_percent: f64,
    pub rate_limit: Option<RateLimit>,
    pub max_records: Option<u64>,
}

impl Budget {
    pub fn read(top: &Object) -> Result<Budget> {
        let sample_percent = top.get("sample_percent", |f| f.f64())?.unwrap_or(100.0);
        if !(0.0..=100.0).contains(&sample_percent) {
            return Err(ConfigError::new(
                "sample_percent",
                "is not a percentage",
                "use a number from 0 to 100",
            ));
        }
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
        Ok(Budget {
            sample_percent,
            rate_limit,
            max_records: top.get("max_records", |f| f.u64())?,
        })
    }
}

/// Per-direction byte limits under one `max_bytes_hard_limit`.
pub struct Limits {
    hard_limit: u64,
}

impl Limits {
    pub fn read(top: &Object) -> Result<Limits> {
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
        Ok(Limits { hard_limit })
    }

    /// Field `field` as a byte limit (default [`DEFAULT_MAX_BYTES`]).
    pub fn bytes(&self, top: &Object, field: &str) -> Result<usize> {
        let value = top.get(field, |f| f.u64())?.unwrap_or(DEFAULT_MAX_BYTES);
        if value > self.hard_limit {
            return Err(ConfigError::new(
                field,
                format!(
                    "{value} is above max_bytes_hard_limit ({})",
                    self.hard_limit
                ),
                "lower it, or raise max_bytes_hard_limit deliberately",
            ));
        }
        Ok(value as usize)
    }
}

/// A tap's configuration document as its root object (the tap's own `fields`
/// and the shared ones), with the shared budget and limits read.
pub fn tap_root<'a>(document: &'a Value, fields: &[&str]) -> Result<(Object<'a>, Budget, Limits)> {
    let all: Vec<&str> = fields.iter().chain(&TAP_FIELDS).copied().collect();
    let top = root(document, &all)?;
    let budget = Budget::read(&top)?;
    let limits = Limits::read(&top)?;
    Ok((top, budget, limits))
}
