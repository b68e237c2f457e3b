//! The plugin configuration, parsed and validated once per VM.

use crate::matcher::{Cidr, Predicate, Test};
use filter_common::config::{parse_document, ConfigError, Field, Result};
use filter_common::predicate::{compile, StringMatch};
use filter_common::tap::sink::SinkConfig;
use filter_common::tap::tap_root;
pub use filter_common::tap::{Budget, DataFormat, DEFAULT_MAX_BYTES};

pub const DEFAULT_MAX_EVENTS: usize = 1024;
const MAX_EVENTS_LIMIT: u64 = 1_000_000;

const FIELDS: [&str; 6] = [
    "match",
    "max_read_bytes",
    "max_write_bytes",
    "max_events",
    "data_format",
    "segment",
];

const CONDITIONS: [&str; 4] = [
    "destination_port",
    "source_address",
    "destination_address",
    "sni",
];

/// When a long-lived connection gets a record before it closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Segment {
    /// After this many bytes (both directions) since the last record.
    pub bytes: Option<u64>,
    /// Every this many milliseconds, if anything happened since the last record.
    pub interval_ms: Option<u64>,
}

#[derive(Debug)]
pub struct Config {
    pub matcher: Predicate,
    /// Bytes kept per record from downstream (`read`) and toward it (`write`).
    pub max_read_bytes: usize,
    pub max_write_bytes: usize,
    pub max_events: usize,
    pub data_format: DataFormat,
    pub segment: Option<Segment>,
    pub budget: Budget,
    pub sink: SinkConfig,
}

impl Config {
    pub fn parse(raw: Option<&[u8]>) -> Result<Config> {
        let document = parse_document(raw)?;
        let (top, budget, limits) = tap_root(&document, &FIELDS)?;
        let max_events = top.get("max_events", |f| {
            let n = f.u64()?;
            if n == 0 || n > MAX_EVENTS_LIMIT {
                return Err(ConfigError::new(
                    f.path,
                    format!("{n} is out of range"),
                    "keep from 1 to 1000000 events per record",
                ));
            }
            Ok(n as usize)
        })?;
        let sink = top.get("sink", SinkConfig::read)?.unwrap_or_default();
        let segment = top.get("segment", read_segment)?;
        if let (Some(Segment { bytes: Some(_), .. }), SinkConfig::FilterState { .. }) =
            (segment, &sink)
        {
            return Err(ConfigError::new(
                "segment.bytes",
                "cannot be used with the filter_state sink: Envoy writes filter state only \
                 when its access log runs, so a record replaced by the next one before that \
                 would be lost",
                "use segment.interval_ms with tcp_proxy's access_log_flush_interval, or the \
                 log or http sink",
            ));
        }
        Ok(Config {
            matcher: top
                .get("match", |f| compile(f, &CONDITIONS, &compile_test))?
                .unwrap_or(Predicate::Any),
            max_read_bytes: limits.bytes(&top, "max_read_bytes")?,
            max_write_bytes: limits.bytes(&top, "max_write_bytes")?,
            max_events: max_events.unwrap_or(DEFAULT_MAX_EVENTS),
            data_format: DataFormat::read(&top, "data_format")?,
            segment,
            budget,
            sink,
        })
    }
}

fn read_segment(field: Field) -> Result<Segment> {
    let o = field.object(&["bytes", "interval_ms"])?;
    let bytes = o.get("bytes", |f| {
        let n = f.u64()?;
        if n == 0 {
            return Err(ConfigError::new(
                f.path,
                "is 0",
                "use a positive byte count",
            ));
        }
        Ok(n)
    })?;
    let interval_ms = o.get("interval_ms", |f| {
        let n = f.u64()?;
        if !(10..=3_600_000).contains(&n) {
            return Err(ConfigError::new(
                f.path,
                format!("{n} is out of range"),
                "use 10 to 3600000 milliseconds",
            ));
        }
        Ok(n)
    })?;
    if bytes.is_none() && interval_ms.is_none() {
        return Err(ConfigError::new(
            field.path,
            "sets neither bytes nor interval_ms",
            "set one or both, or remove segment to write one record per connection",
        ));
    }
    Ok(Segment { bytes, interval_ms })
}

fn compile_test(kind: &str, field: Field) -> Result<Test> {
    Ok(match kind {
        "destination_port" => {
            let (min, max) = match field.value.as_u64() {
                Some(port) => (port, port),
                None => {
                    let o = field.object(&["min", "max"])?;
                    (o.need("min", |f| f.u64())?, o.need("max", |f| f.u64())?)
                }
            };
            if !(1..=65535).contains(&min) || !(min..=65535).contains(&max) {
                return Err(ConfigError::new(
                    field.path,
                    format!("{min}..{max} is not a port range"),
                    "use a port (5432) or {\"min\": 1, \"max\": 65535} with min <= max",
                ));
            }
            Test::DestinationPort {
                min: min as u16,
                max: max as u16,
            }
        }
        "source_address" => Test::SourceAddress(cidrs(field)?),
        "destination_address" => Test::DestinationAddress(cidrs(field)?),
        _ => Test::Sni(StringMatch::read(
            field,
            &["exact", "prefix", "suffix", "regex"],
        )?),
    })
}

/// One range (`"10.0.0.0/8"`) or a list of them.
fn cidrs(field: Field) -> Result<Vec<Cidr>> {
    let one = |f: Field| -> Result<Cidr> {
        let text = f.str()?;
        Cidr::parse(text).ok_or_else(|| {
            ConfigError::new(
                f.path,
                format!("{text:?} is not an address or CIDR range"),
                "use an IPv4 or IPv6 address, optionally with /prefix (10.0.0.0/8, fd00::/8)",
            )
        })
    };
    if field.value.is_string() {
        return Ok(vec![one(field)?]);
    }
    let items = field.list()?;
    if items.is_empty() {
        return Err(ConfigError::new(
            field.path,
            "is an empty list",
            "give at least one address or range",
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, value)| {
            let path = format!("{}[{i}]", field.path);
            one(Field { path: &path, value })
        })
        .collect()
}
