//! Configuration both tap filters read the same way: how much to keep, how
//! data is written, and how many records to allow (sampling, rate, total).

pub mod capture;
pub mod ratelimit;
pub mod sink;

use crate::config::{root, ConfigError, Field, Object, Result};
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

crate::config_object! {
    /// At most this many records a second per worker, with bursts.
    #[derive(Debug, Clone, Copy, PartialEq)]
    pub struct RateLimit {
        /// records a second, above 0
        pub records_per_second: f64 = need(rate), type "number";
        /// records at once, at least 1
        pub burst: f64 = or(burst, records_per_second.max(1.0)), type "number",
            default "the rate (at least 1)";
    }
}

crate::config_object! {
    /// How many records a tap may write: a sampled share of what matches, at
    /// most `rate_limit` a second per worker, at most `max_records` in all.
    /// Top-level fields of every tap, so each tap's README lists them.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Budget {
        /// share of streams (tap_http) or connections (tap_tcp) considered, decided when it starts
        pub sample_percent: f64 = or(percentage, 100.0), type "number 0–100";
        /// per worker (Envoy thread); `burst` defaults to the rate (at least 1)
        pub rate_limit: Option<RateLimit> = get(RateLimit::read),
            type "`{\"records_per_second\": n, \"burst\": m}`";
        /// stop after this many records, counted across all workers (Envoy shared data)
        pub max_records: Option<u64> = get(|f| f.u64()), type "integer";
    }
}

crate::config_object! {
    /// Per-direction byte limits under one `max_bytes_hard_limit`: a
    /// top-level field of every tap.
    pub struct Limits {
        /// the most either limit may be set to: a guard against a typo that would hold megabytes per stream or connection
        hard_limit as "max_bytes_hard_limit": u64 = or(hard_limit, DEFAULT_HARD_LIMIT),
            type "integer ≤ 16 MiB";
    }
}

fn percentage(f: Field) -> Result<f64> {
    let value = f.f64()?;
    if !(0.0..=100.0).contains(&value) {
        return Err(ConfigError::new(
            f.path,
            "is not a percentage",
            "use a number from 0 to 100",
        ));
    }
    Ok(value)
}

fn rate(f: Field) -> Result<f64> {
    let rate = f.f64()?;
    if !(rate > 0.0 && rate.is_finite()) {
        return Err(ConfigError::new(
            f.path,
            "is not a positive rate",
            "use records per second above 0, or remove rate_limit",
        ));
    }
    Ok(rate)
}

fn burst(f: Field) -> Result<f64> {
    let burst = f.f64()?;
    if !(burst >= 1.0 && burst.is_finite()) {
        return Err(ConfigError::new(
            f.path,
            "is below 1",
            "allow a burst of at least one record",
        ));
    }
    Ok(burst)
}

fn hard_limit(f: Field) -> Result<u64> {
    let limit = f.u64()?;
    if limit > ABSOLUTE_HARD_LIMIT {
        return Err(ConfigError::new(
            f.path,
            format!("{limit} is above {ABSOLUTE_HARD_LIMIT}"),
            "tap at most 16 MiB per direction",
        ));
    }
    Ok(limit)
}

impl Limits {
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
    let all: Vec<&str> = fields
        .iter()
        .chain(Budget::FIELDS)
        .chain(Limits::FIELDS)
        .copied()
        .collect();
    let top = root(document, &all)?;
    let budget = Budget::from_object(&top)?;
    let limits = Limits::from_object(&top)?;
    Ok((top, budget, limits))
}
