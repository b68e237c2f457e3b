//! Where tap records go. The wasm sandbox cannot write files, so the default
//! hands each record to Envoy as filter state for a file access log to write.

use crate::config::{ConfigError, Field, Result};
use std::collections::VecDeque;

/// The filter-state key records are stored under; Envoy shows it as
/// `wasm.tap_trace` (`%FILTER_STATE(wasm.tap_trace:PLAIN)%`).
pub const DEFAULT_FILTER_STATE_KEY: &str = "tap_trace";

/// Configured as one of `{"filter_state": {"key": ...}}`, `{"log": {"level": ...}}`,
/// `{"http": {"cluster": ..., ...}}`.
#[derive(Debug, Clone, PartialEq)]
pub enum SinkConfig {
    /// One record per stream in filter state, for a file access log.
    FilterState { key: String },
    /// The record as one log line at `level`, for `kubectl logs`.
    Log { level: log::Level },
    /// Records batched from the root context and POSTed to an Envoy cluster as
    /// JSON Lines.
    Http {
        cluster: String,
        path: String,
        authority: Option<String>,
        batch_size: usize,
        flush_interval_ms: u64,
        max_queue: usize,
        timeout_ms: u64,
    },
}

impl Default for SinkConfig {
    fn default() -> Self {
        SinkConfig::FilterState {
            key: DEFAULT_FILTER_STATE_KEY.into(),
        }
    }
}

crate::config_choice! {
    /// The level the log sink writes records at.
    #[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
    enum LogLevel {
        Trace = "trace",
        Debug = "debug",
        #[default]
        Info = "info",
        Warn = "warn",
        Error = "error",
    }
}

impl From<LogLevel> for log::Level {
    fn from(level: LogLevel) -> log::Level {
        match level {
            LogLevel::Trace => log::Level::Trace,
            LogLevel::Debug => log::Level::Debug,
            LogLevel::Info => log::Level::Info,
            LogLevel::Warn => log::Level::Warn,
            LogLevel::Error => log::Level::Error,
        }
    }
}

fn bad<T>(field: String, problem: String, fix: &str) -> Result<T> {
    Err(ConfigError::new(field, problem, fix))
}

fn bounded(field: Field, min: u64, max: u64) -> Result<u64> {
    let n = field.u64()?;
    if n < min || n > max {
        return bad(
            field.path.into(),
            format!("{n} is out of range"),
            &format!("use {min} to {max}"),
        );
    }
    Ok(n)
}

impl SinkConfig {
    /// Reads the `sink` field.
    pub fn read(field: Field) -> Result<SinkConfig> {
        let (kind, _) = field.one_of(&["filter_state", "log", "http"])?;
        let path = crate::config::join(field.path, kind);
        let inner = Field {
            path: &path,
            value: &field.value[kind],
        };
        match kind {
            "filter_state" => {
                let o = inner.object(&["key"])?;
                let key = o
                    .string("key")?
                    .unwrap_or_else(|| DEFAULT_FILTER_STATE_KEY.into());
                if key.is_empty()
                    || !key
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
                {
                    return bad(
                        crate::config::join(&path, "key"),
                        format!("{key:?} is not a usable filter-state key"),
                        "use letters, digits, '_', '-' or '.'",
                    );
                }
                Ok(SinkConfig::FilterState { key })
            }
            "log" => {
                let o = inner.object(&["level"])?;
                let level = o.get("level", LogLevel::read)?.unwrap_or_default();
                Ok(SinkConfig::Log {
                    level: level.into(),
                })
            }
            _ => {
                let o = inner.object(&[
                    "cluster",
                    "path",
                    "authority",
                    "batch_size",
                    "flush_interval_ms",
                    "max_queue",
                    "timeout_ms",
                ])?;
                let cluster = o.need("cluster", |f| f.str().map(str::to_string))?;
                if cluster.is_empty() {
                    return bad(
                        crate::config::join(&path, "cluster"),
                        "is empty".into(),
                        "name the Envoy cluster of the collector",
                    );
                }
                let http_path = o.string("path")?.unwrap_or_else(|| "/".into());
                if !http_path.starts_with('/') {
                    return bad(
                        crate::config::join(&path, "path"),
                        format!("{http_path:?} does not start with '/'"),
                        "use an absolute path such as \"/records\"",
                    );
                }
                let batch_size = o
                    .get("batch_size", |f| bounded(f, 1, 10_000))?
                    .unwrap_or(50) as usize;
                let max_queue = o
                    .get("max_queue", |f| bounded(f, 1, 1_000_000))?
                    .unwrap_or(1000) as usize;
                if max_queue < batch_size {
                    return bad(
                        crate::config::join(&path, "max_queue"),
                        format!("{max_queue} is smaller than batch_size ({batch_size})"),
                        "let the queue hold at least one batch",
                    );
                }
                Ok(SinkConfig::Http {
                    cluster,
                    path: http_path,
                    authority: o.string("authority")?,
                    batch_size,
                    flush_interval_ms: o
                        .get("flush_interval_ms", |f| bounded(f, 1, 3_600_000))?
                        .unwrap_or(1000),
                    max_queue,
                    timeout_ms: o
                        .get("timeout_ms", |f| bounded(f, 1, 600_000))?
                        .unwrap_or(5000),
                })
            }
        }
    }
}

/// Records waiting for the HTTP collector, oldest first, never more than
/// `max` of them: past that, new records are dropped and counted.
#[derive(Debug, Default)]
pub struct RecordQueue {
    records: VecDeque<String>,
    max: usize,
}

impl RecordQueue {
    pub fn new(max: usize) -> RecordQueue {
        RecordQueue {
            records: VecDeque::new(),
            max,
        }
    }

    /// Queues a record; `false` when the queue is full and it was dropped.
    pub fn push(&mut self, record: String) -> bool {
        if self.records.len() >= self.max {
            return false;
        }
        self.records.push_back(record);
        true
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Takes up to `n` records as one JSON Lines body, and how many it holds.
    pub fn take_batch(&mut self, n: usize) -> Option<(String, usize)> {
        let count = n.min(self.records.len());
        if count == 0 {
            return None;
        }
        let mut body = String::new();
        for record in self.records.drain(..count) {
            body.push_str(&record);
            body.push('\n');
        }
        Some((body, count))
    }
}
