//! The plugin configuration, parsed and validated once per VM.

use crate::structpb::Limits;
use filter_common::config::{
    join, parse_document, root, ConfigError, Field, Object, Result, Value,
};
use filter_common::header::{forbidden_output_header, same_header_name};
use filter_common::peer::Key;

/// What the filter tells the app, in this order: the output, its default
/// header name, and the filter-state key that carries the same value.
pub const OUTPUTS: [(&str, &str, Key); 9] = [
    ("workload", "x-peer-workload", Key::Workload),
    ("namespace", "x-peer-namespace", Key::Namespace),
    ("name", "x-peer-name", Key::Name),
    ("app", "x-peer-app", Key::App),
    ("version", "x-peer-version", Key::Version),
    ("cluster", "x-peer-cluster", Key::Cluster),
    ("identity", "x-peer-identity", Key::Identity),
    ("principal", "x-peer-principal", Key::Principal),
    ("verified", "x-peer-verified", Key::Verified),
];

const FIELDS: [&str; 9] = [
    "headers",
    "remove_metadata_headers",
    "require_verified",
    "max_header_bytes",
    "max_depth",
    "max_keys",
    "cache_entries",
    "filter_state",
    "istio_filter_state",
];

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Output header names, lowercase, in the order of [`OUTPUTS`].
    pub headers: Vec<String>,
    pub remove_metadata_headers: bool,
    pub require_verified: bool,
    pub max_header_bytes: usize,
    pub limits: Limits,
    pub cache_entries: usize,
    /// Publish the identity as filter state (`wasm.peer_*`).
    pub filter_state: bool,
    /// Without metadata headers, read the peer Istio's own metadata exchange
    /// stored in filter state (`downstream_peer`, `wasm.downstream_peer`).
    pub istio_filter_state: bool,
}

fn bounded(top: &Object, key: &str, min: u64, max: u64, default: u64) -> Result<usize> {
    let value = top.get(key, |f| f.u64())?.unwrap_or(default);
    if !(min..=max).contains(&value) {
        return Err(ConfigError::new(
            key,
            format!("{value} is out of range"),
            format!("use {min} to {max}"),
        ));
    }
    Ok(value as usize)
}

impl Config {
    /// Parses and validates a plugin configuration document.
    pub fn parse(raw: Option<&[u8]>) -> Result<Config> {
        Config::from_value(&parse_document(raw)?)
    }

    /// From a document already parsed (and checked for repeated keys): the
    /// suite's part for this filter.
    pub fn from_value(document: &Value) -> Result<Config> {
        let top = root(document, &FIELDS)?;
        let names: Vec<&str> = OUTPUTS.iter().map(|(n, _, _)| *n).collect();
        let custom = top
            .get("headers", |f| read_headers(f, &names))?
            .unwrap_or_default();
        let headers: Vec<String> = OUTPUTS
            .iter()
            .map(|(output, default, _)| {
                custom
                    .iter()
                    .find(|(o, _)| o == output)
                    .map_or_else(|| default.to_string(), |(_, h)| h.clone())
            })
            .collect();
        if let Some((i, h)) = headers.iter().enumerate().find(|(i, h)| {
            headers
                .get(..*i)
                .unwrap_or_default()
                .iter()
                .any(|earlier| same_header_name(earlier, h))
        }) {
            return Err(ConfigError::new(
                join("headers", OUTPUTS.get(i).map_or("", |o| o.0)),
                format!(
                    "{h:?} is already the header of another output, once case is ignored and \
                     '_' and '-' are treated alike, as CGI-style frameworks read them"
                ),
                "give every output its own header",
            ));
        }
        Ok(Config {
            headers,
            remove_metadata_headers: top.flag("remove_metadata_headers", true)?,
            require_verified: top.flag("require_verified", false)?,
            max_header_bytes: bounded(&top, "max_header_bytes", 64, 65536, 8192)?,
            limits: Limits {
                max_depth: bounded(&top, "max_depth", 1, 32, 8)?,
                max_entries: bounded(&top, "max_keys", 1, 10_000, 256)?,
            },
            cache_entries: bounded(&top, "cache_entries", 0, 10_000, 256)?,
            filter_state: top.flag("filter_state", true)?,
            istio_filter_state: top.flag("istio_filter_state", true)?,
        })
    }

    /// The header for output `name` (one of [`OUTPUTS`]).
    pub fn header(&self, name: &str) -> &str {
        OUTPUTS
            .iter()
            .position(|(n, _, _)| *n == name)
            .and_then(|i| self.headers.get(i))
            .map_or("", String::as_str)
    }
}

fn read_headers(field: Field, outputs: &[&str]) -> Result<Vec<(String, String)>> {
    let o = field.object(outputs)?;
    let mut out = Vec::new();
    for output in outputs {
        if let Some(name) = o.get(output, |f| f.str().map(str::to_string))? {
            if let Some(why) = forbidden_output_header(&name) {
                return Err(ConfigError::new(
                    join(o.path(), output),
                    format!("{name:?} {why}"),
                    format!("use a header of its own such as \"x-peer-{output}\""),
                ));
            }
            out.push((output.to_string(), name.to_ascii_lowercase()));
        }
    }
    Ok(out)
}
