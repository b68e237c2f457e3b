//! The suite's configuration: one object naming the filters to run, each
//! with exactly the configuration it takes as a separate module. The document
//! is parsed and checked for repeated keys once, as a whole; each filter reads
//! its part from it. Errors name the full path (`l7_policy.rules[0].path`).

use cf_headers::config::Config as CfHeaders;
use filter_common::config::{parse_document, root, ConfigError, Field, Result};
use l7_policy::config::Config as L7Policy;
use peer_metadata::config::Config as PeerMetadata;
use tap_http::config::Config as TapHttp;

filter_common::config_object! {
    /// Each configured filter's own configuration, parsed by that filter.
    /// The fields are in the order the suite runs the filters: the order of
    /// the separate filters in the shipped manifests. The tap goes first, so
    /// that the replies of the filters after it (l7_policy's 403) pass
    /// through it; it reads the request headers when the stream ends, so it
    /// still records them as the app received them. Then identity, the
    /// policy that uses it, and stamping.
    pub struct Config {
        /// run tap_http with this configuration ([reference](../tap_http/README.md))
        pub tap_http: Option<TapHttp> =
            get(|f| TapHttp::from_value(f.value).map_err(|e| under(f, e))), type "object";
        /// run peer_metadata with this configuration ([reference](../peer_metadata/README.md))
        pub peer_metadata: Option<PeerMetadata> =
            get(|f| PeerMetadata::from_value(f.value).map_err(|e| under(f, e))), type "object";
        /// run l7_policy with this configuration ([reference](../l7_policy/README.md))
        pub l7_policy: Option<L7Policy> =
            get(|f| L7Policy::from_value(f.value).map_err(|e| under(f, e))), type "object";
        /// run cf_headers with this configuration ([reference](../cf_headers/README.md))
        pub cf_headers: Option<CfHeaders> =
            get(|f| CfHeaders::from_value(f.value).map_err(|e| under(f, e))), type "object";
    }
}

/// The filters the suite can run, in the order it runs them.
pub const PARTS: &[&str] = Config::FIELDS;

impl Config {
    pub fn parse(raw: Option<&[u8]>) -> Result<Config> {
        let document = parse_document(raw)?;
        let config = Config::from_object(&root(&document, PARTS)?)?;
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

/// A part's error placed under the part's name.
fn under(part: Field, mut e: ConfigError) -> ConfigError {
    e.field = if e.field.is_empty() {
        part.path.to_string()
    } else {
        format!("{}.{}", part.path, e.field)
    };
    e
}
