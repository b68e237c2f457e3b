//! The plugin configuration, parsed and validated once per VM.

use crate::structpb::Limits;
use filter_common::config::{join, parse_document, root, ConfigError, Field, Result, Value};
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

filter_common::config_object! {
    /// The document's fields as read: [`Config`] is compiled from them.
    pub struct Fields {
        /// output header names: any of `workload`, `namespace`, `name`, `app`, `version`,
        /// `cluster`, `identity`, `principal`, `verified`; names must differ, and must not be
        /// pseudo-headers, framing or hop-by-hop headers (`content-length`,
        /// `transfer-encoding`, `host`, `connection`, `te`, `upgrade`, `keep-alive`,
        /// `proxy-connection`, `expect`, in any `_`/`-` spelling) or `x-envoy-*`: such a
        /// name is refused at load, naming the field
        pub headers: Vec<String> = or(read_headers, default_headers()), type "object",
            default "see above";
        /// remove `x-envoy-peer-metadata` and `-id` before the app
        pub remove_metadata_headers: bool = flag(true), type "bool";
        /// ignore metadata that is not verified
        pub require_verified: bool = flag(false), type "bool";
        /// a larger metadata (or baggage) header is ignored and counted `oversized`
        pub max_header_bytes: usize = or(|f| bounded(f, 64, 65536), 8192), type "64–65536";
        /// structs and lists nested deeper make the metadata malformed
        pub max_depth: usize = or(|f| bounded(f, 1, 32), 8), type "1–32";
        /// keys and list items in the whole tree (see [Limits](#limits) for the cost)
        pub max_keys: usize = or(|f| bounded(f, 1, 10_000), 256), type "1–10000";
        /// decoded peers kept per worker, keyed by the exact header value (least recently
        /// used evicted); 0 turns the cache off
        pub cache_entries: usize = or(|f| bounded(f, 0, 10_000), 256), type "0–10000";
        /// publish filter state (below)
        pub filter_state: bool = flag(true), type "bool";
        /// without metadata headers, read the peer Istio stored in filter state (source 2)
        pub istio_filter_state: bool = flag(true), type "bool";
    }
}

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

fn bounded(f: Field, min: u64, max: u64) -> Result<usize> {
    let value = f.u64()?;
    if !(min..=max).contains(&value) {
        return Err(ConfigError::new(
            f.path,
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
        let f = Fields::from_object(&root(document, Fields::FIELDS)?)?;
        Ok(Config {
            headers: f.headers,
            remove_metadata_headers: f.remove_metadata_headers,
            require_verified: f.require_verified,
            max_header_bytes: f.max_header_bytes,
            limits: Limits {
                max_depth: f.max_depth,
                max_entries: f.max_keys,
            },
            cache_entries: f.cache_entries,
            filter_state: f.filter_state,
            istio_filter_state: f.istio_filter_state,
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

fn default_headers() -> Vec<String> {
    OUTPUTS.iter().map(|(_, h, _)| h.to_string()).collect()
}

/// The header of every output: the ones given, lowercase, the defaults for
/// the rest; no two the same to a CGI-style framework.
fn read_headers(field: Field) -> Result<Vec<String>> {
    let names: Vec<&str> = OUTPUTS.iter().map(|(n, _, _)| *n).collect();
    let o = field.object(&names)?;
    let mut headers = Vec::new();
    for (output, default, _) in OUTPUTS {
        let name = match o.get(output, |f| f.str().map(str::to_string))? {
            Some(name) => name,
            None => {
                headers.push(default.to_string());
                continue;
            }
        };
        if let Some(why) = forbidden_output_header(&name) {
            return Err(ConfigError::new(
                join(o.path(), output),
                format!("{name:?} {why}"),
                format!("use a header of its own such as \"x-peer-{output}\""),
            ));
        }
        headers.push(name.to_ascii_lowercase());
    }
    if let Some((i, h)) = headers.iter().enumerate().find(|(i, h)| {
        headers
            .get(..*i)
            .unwrap_or_default()
            .iter()
            .any(|earlier| same_header_name(earlier, h))
    }) {
        return Err(ConfigError::new(
            join(field.path, OUTPUTS.get(i).map_or("", |o| o.0)),
            format!(
                "{h:?} is already the header of another output, once case is ignored and \
                 '_' and '-' are treated alike, as CGI-style frameworks read them"
            ),
            "give every output its own header",
        ));
    }
    Ok(headers)
}
