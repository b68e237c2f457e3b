//! Plugin configuration: parse once, fail loudly, name the field and the fix.

use serde::de::DeserializeOwned;
use std::fmt;

/// Why a plugin configuration was refused. `field` is a dotted path into the JSON
/// (`hosts."a.example.com".app_guid`), empty for the document as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub field: String,
    pub problem: String,
    pub fix: String,
}

impl ConfigError {
    pub fn new(
        field: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        ConfigError {
            field: field.into(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "invalid plugin configuration: {}", self.problem)?;
        } else {
            write!(
                f,
                "invalid plugin configuration: field `{}`: {}",
                self.field, self.problem
            )?;
        }
        if !self.fix.is_empty() {
            write!(f, " (fix: {})", self.fix)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Parses a plugin configuration document. An absent or blank configuration is
/// parsed as `{}` so that filters whose every field has a default load without one.
pub fn parse_json<T: DeserializeOwned>(raw: Option<&[u8]>) -> Result<T, ConfigError> {
    let raw = raw.unwrap_or_default();
    let text = std::str::from_utf8(raw).map_err(|e| {
        ConfigError::new(
            "",
            format!("not UTF-8 ({e})"),
            "pass the configuration as a JSON string in a google.protobuf.StringValue",
        )
    })?;
    let text = if text.trim().is_empty() { "{}" } else { text };
    if !text.trim_start().starts_with('{') {
        return Err(ConfigError::new(
            "",
            "is not a JSON object",
            "write the configuration as one JSON object: {\"field\": value, ...}",
        ));
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        let fix = fix_for(&inner);
        let field = if field == "." { String::new() } else { field };
        ConfigError::new(field, inner.to_string(), fix)
    })?;
    de.end()
        .map_err(|e| ConfigError::new("", e.to_string(), "remove what follows the JSON object"))?;
    Ok(value)
}

fn fix_for(e: &serde_json::Error) -> &'static str {
    let msg = e.to_string();
    if msg.starts_with("unknown field") {
        "remove it or correct its spelling; see the filter's README for the fields it takes"
    } else if msg.starts_with("missing field") {
        "add it"
    } else if msg.starts_with("invalid type")
        || msg.starts_with("invalid value")
        || msg.starts_with("unknown variant")
    {
        "use a value of the type and range the README lists for this field"
    } else if e.is_syntax() || e.is_eof() {
        "the configuration must be one well-formed JSON object"
    } else {
        ""
    }
}
