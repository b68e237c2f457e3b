//! The plugin configuration, parsed and validated once per VM.

use crate::matcher::{Cidr, Predicate, Test};
use filter_common::config::{parse_document, ConfigError, Field, Result};
use filter_common::predicate::{compile, StringMatch};
use filter_common::tap::sink::SinkConfig;
use filter_common::tap::{tap_root, Limits};
pub use filter_common::tap::{Budget, DataFormat, DEFAULT_MAX_BYTES};

pub const DEFAULT_MAX_EVENTS: usize = 1024;
const MAX_EVENTS_LIMIT: u64 = 1_000_000;

const CONDITIONS: [&str; 4] = [
    "destination_port",
    "source_address",
    "destination_address",
    "sni",
];

filter_common::config_object! {
    /// When a long-lived connection gets a record before it closes.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct Segment {
        /// After this many bytes (both directions) since the last record.
        pub bytes: Option<u64> = get(positive), type "integer";
        /// Every this many milliseconds, if anything happened since the last record.
        pub interval_ms: Option<u64> = get(interval), type "integer 10–3600000";
    }
}

filter_common::config_object! {
    /// The document's own fields as read (the tap's shared ones are read by
    /// [`tap_root`]): [`Config`] is compiled from them.
    pub struct Fields(limits: &Limits) {
        /// which connections to record, decided when the connection starts; see below
        pub matcher as "match": Predicate =
            or(|f| compile(f, &CONDITIONS, &compile_test), Predicate::Any),
            type "predicate", default "`{\"any\": true}`";
        /// bytes from downstream kept per record; past it data is dropped and `read_truncated`
        /// set; `0`: no data, only the events (a connection's data can hold any credential: a
        /// database password, a Redis `AUTH`)
        pub max_read_bytes: usize = with(|o, key| limits.bytes(o, key)),
            type "integer", default "`0`";
        /// bytes toward downstream kept per record
        pub max_write_bytes: usize = with(|o, key| limits.bytes(o, key)),
            type "integer", default "`0`";
        /// events per record (the `closed` event is always added); past it later events are
        /// dropped and the direction marked truncated
        pub max_events: usize = or(max_events, DEFAULT_MAX_EVENTS), type "integer 1–1000000";
        /// base64 in `as_bytes` (`JSON_BODY_AS_BYTES`) or text in `as_string` (invalid UTF-8
        /// becomes U+FFFD)
        pub data_format: DataFormat = or(DataFormat::read, DataFormat::AsBytes),
            type "`\"as_bytes\"` | `\"as_string\"`", default "`\"as_bytes\"`";
        /// also write a record after every `n` bytes (both directions, checked per chunk)
        /// and/or every `t` ms (10–3600000) for connections that had events since their last
        /// record; limits apply per record
        pub segment: Option<Segment> = get(read_segment),
            type "`{\"bytes\": n, \"interval_ms\": t}`";
        /// where records go
        pub sink: SinkConfig = or(SinkConfig::read, SinkConfig::default()),
            type "one of below", default "`{\"filter_state\": {}}`";
    }
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
        let (top, budget, limits) = tap_root(&document, Fields::FIELDS)?;
        let f = Fields::from_object(&top, &limits)?;
        if let (Some(Segment { bytes: Some(_), .. }), SinkConfig::FilterState { .. }) =
            (f.segment, &f.sink)
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
            matcher: f.matcher,
            max_read_bytes: f.max_read_bytes,
            max_write_bytes: f.max_write_bytes,
            max_events: f.max_events,
            data_format: f.data_format,
            segment: f.segment,
            budget,
            sink: f.sink,
        })
    }
}

fn max_events(f: Field) -> Result<usize> {
    let n = f.u64()?;
    if n == 0 || n > MAX_EVENTS_LIMIT {
        return Err(ConfigError::new(
            f.path,
            format!("{n} is out of range"),
            "keep from 1 to 1000000 events per record",
        ));
    }
    Ok(n as usize)
}

fn positive(f: Field) -> Result<u64> {
    let n = f.u64()?;
    if n == 0 {
        return Err(ConfigError::new(
            f.path,
            "is 0",
            "use a positive byte count",
        ));
    }
    Ok(n)
}

fn interval(f: Field) -> Result<u64> {
    let n = f.u64()?;
    if !(10..=3_600_000).contains(&n) {
        return Err(ConfigError::new(
            f.path,
            format!("{n} is out of range"),
            "use 10 to 3600000 milliseconds",
        ));
    }
    Ok(n)
}

fn read_segment(field: Field) -> Result<Segment> {
    let segment = Segment::read(field)?;
    if segment.bytes.is_none() && segment.interval_ms.is_none() {
        return Err(ConfigError::new(
            field.path,
            "sets neither bytes nor interval_ms",
            "set one or both, or remove segment to write one record per connection",
        ));
    }
    Ok(segment)
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
