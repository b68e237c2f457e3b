//! The suite's configuration: one object naming the filters to run, each
//! with exactly the configuration it takes as a separate module. The document
//! is parsed and checked for repeated keys once, as a whole; each filter reads
//! its part from it. Errors name the full path (`l7_policy.rules[0].path`).

use filter_common::config::{parse_document, root, ConfigError, Object, Result, Value};

/// The filters the suite can run, in the order it runs them: the order of
/// the separate filters in the shipped manifests. The tap goes first, so that
/// the replies of the filters after it (l7_policy's 403) pass through it; it
/// reads the request headers when the stream ends, so it still records them
/// as the app received them. Then identity, the policy that uses it, and
/// stamping.
pub const PARTS: [&str; 4] = ["tap_http", "peer_metadata", "l7_policy", "cf_headers"];

/// Each configured filter's own configuration, parsed by that filter.
pub struct Config {
    pub peer_metadata: Option<peer_metadata::config::Config>,
    pub l7_policy: Option<l7_policy::config::Config>,
    pub cf_headers: Option<cf_headers::config::Config>,
    pub tap_http: Option<tap_http::config::Config>,
}

impl Config {
    pub fn parse(raw: Option<&[u8]>) -> Result<Config> {
        let document = parse_document(raw)?;
        let top = root(&document, &PARTS)?;
        let config = Config {
            tap_http: part(&top, PARTS[0], tap_http::config::Config::from_value)?,
            peer_metadata: part(&top, PARTS[1], peer_metadata::config::Config::from_value)?,
            l7_policy: part(&top, PARTS[2], l7_policy::config::Config::from_value)?,
            cf_headers: part(&top, PARTS[3], cf_headers::config::Config::from_value)?,
        };
        if config.is_empty() {
            return Err(ConfigError::new(
                "",
                "names no filter",
                format!(
                    "configure at least one of {}, each with the configuration it takes as a separate filter",
                    PARTS.join(", ")
                ),
            ));
        }
        Ok(config)
    }

    fn is_empty(&self) -> bool {
        self.peer_metadata.is_none()
            && self.l7_policy.is_none()
            && self.cf_headers.is_none()
            && self.tap_http.is_none()
    }
}

/// One filter's part, if present, read by that filter, with the filter's
/// errors placed under `name`.
fn part<T>(top: &Object, name: &str, read: fn(&Value) -> Result<T>) -> Result<Option<T>> {
    top.get(name, |f| {
        read(f.value).map_err(|mut e| {
            e.field = if e.field.is_empty() {
                name.to_string()
            } else {
                format!("{name}.{}", e.field)
            };
            e
        })
    })
}
