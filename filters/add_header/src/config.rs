//! The plugin configuration, parsed once per VM, and the per-response decision.

use filter_common::config::{parse_document, root, ConfigError, Field, Result, Value};
use filter_common::header::{forbidden_output_header, is_valid_header_name, is_valid_header_value};

filter_common::config_object! {
    #[derive(Debug)]
    pub struct Config {
        /// the response header to set (stored lowercase, as Envoy holds names)
        pub name: String = need(read_name), type "string";
        /// its value
        pub value: String = need(read_value), type "string";
        /// keep the app's own copies of the header instead of replacing them
        pub keep_existing: bool = flag(false), type "boolean";
    }
}

impl Config {
    pub fn parse(raw: Option<&[u8]>) -> Result<Config> {
        Config::from_value(&parse_document(raw)?)
    }

    /// From a parsed document: the suite gives a part its object this way.
    pub fn from_value(document: &Value) -> Result<Config> {
        Config::from_object(&root(document, Config::FIELDS)?)
    }

    /// Whether to set the header on a response that `has` it already or not.
    pub fn sets(&self, has: bool) -> bool {
        !(has && self.keep_existing)
    }
}

fn read_name(f: Field) -> Result<String> {
    let name = f.str()?;
    if !is_valid_header_name(name) {
        return Err(ConfigError::new(
            f.path,
            format!("{name:?} is not a header name"),
            "use letters, digits and -, for example \"x-frame-options\"",
        ));
    }
    if let Some(why) = forbidden_output_header(name) {
        return Err(ConfigError::new(
            f.path,
            format!("{name:?} {why}"),
            "set a header that does not frame or route the message",
        ));
    }
    Ok(name.to_ascii_lowercase())
}

fn read_value(f: Field) -> Result<String> {
    let value = f.str()?;
    if !is_valid_header_value(value) {
        return Err(ConfigError::new(
            f.path,
            "is not a header value",
            "use visible ASCII without surrounding spaces",
        ));
    }
    Ok(value.to_string())
}
