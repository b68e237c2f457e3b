//! Plugin configuration: one JSON document, parsed once per VM with serde_json,
//! then read field by field so that every error names the exact field path
//! (`hosts."a.example.com".app_guid`), the problem, and the fix.
//!
//! Reading a `serde_json::Value` instead of deriving `Deserialize` for every
//! configuration type keeps each filter's `.wasm` small: derived code is
//! instantiated per type, this reader once.

mod declare;
mod duplicate_keys;
// Only tests read it, natively: left out of the modules.
#[cfg(not(target_arch = "wasm32"))]
pub mod reference;

use serde_json::Map;
/// A parsed configuration document, as [`parse_document`] returns it.
pub use serde_json::Value;
use std::fmt;

/// Why a plugin configuration was refused: a [`Refusal`], boxed so that a
/// reader's `Result` is one word and every `?` of the readers stays small.
/// Its fields read through it: `e.field`, `e.problem`, `e.fix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(Box<Refusal>);

/// What a [`ConfigError`] says. `field` is a path into the JSON
/// (`match.and[1].path.regex`), empty for the document as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub field: String,
    pub problem: String,
    pub fix: String,
}

impl std::ops::Deref for ConfigError {
    type Target = Refusal;
    fn deref(&self) -> &Refusal {
        &self.0
    }
}

impl std::ops::DerefMut for ConfigError {
    fn deref_mut(&mut self) -> &mut Refusal {
        &mut self.0
    }
}

impl ConfigError {
    pub fn new(
        field: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        ConfigError(Box::new(Refusal {
            field: field.into(),
            problem: problem.into(),
            fix: fix.into(),
        }))
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

pub type Result<T> = std::result::Result<T, ConfigError>;

/// The fix for a missing field.
pub const ADD_IT: &str = "add it; the README lists what it takes";

/// Parses the plugin configuration document. An absent or blank
/// configuration reads as `{}`; anything but one JSON object is refused,
/// and so is an object with a key twice.
pub fn parse_document(raw: Option<&[u8]>) -> Result<Value> {
    let raw = raw.unwrap_or_default();
    let text = std::str::from_utf8(raw).map_err(|e| {
        ConfigError::new(
            "",
            format!("not UTF-8 ({e})"),
            "pass the configuration as a JSON string in a google.protobuf.StringValue",
        )
    })?;
    if text.trim().is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    let value: Value = serde_json::from_str(text).map_err(|e| {
        ConfigError::new(
            "",
            format!("not valid JSON: {e}"),
            "the configuration must be one well-formed JSON object",
        )
    })?;
    if !value.is_object() {
        return Err(ConfigError::new(
            "",
            format!("is {}, not a JSON object", kind(&value)),
            "write the configuration as one JSON object: {\"field\": value, ...}",
        ));
    }
    duplicate_keys::refuse_duplicate_keys(text, &value)?;
    Ok(value)
}

/// A located JSON value: where it is, and what it is.
#[derive(Clone, Copy)]
pub struct Field<'p, 'a> {
    pub path: &'p str,
    pub value: &'a Value,
}

/// A JSON object whose keys were checked against the fields a filter knows.
pub struct Object<'a> {
    path: String,
    map: &'a Map<String, Value>,
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// `parent.key`, quoting keys that are not plain names (`hosts."a.com"`).
pub fn join(parent: &str, key: &str) -> String {
    let plain = !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    let key = if plain {
        key.to_string()
    } else {
        format!("{key:?}")
    };
    if parent.is_empty() {
        key
    } else {
        format!("{parent}.{key}")
    }
}

fn wrong_type(path: &str, want: &str, value: &Value) -> ConfigError {
    ConfigError::new(
        path,
        format!("expected {want}, found {}", kind(value)),
        "use a value of the type the README lists for this field",
    )
}

fn unknown_field(parent: &str, key: &str, takes: String) -> ConfigError {
    ConfigError::new(
        join(parent, key),
        format!("unknown field (this object takes{takes})"),
        "remove it or correct its spelling; see the filter's README",
    )
}

impl<'a> Field<'_, 'a> {
    fn map(self) -> Result<&'a Map<String, Value>> {
        self.value
            .as_object()
            .ok_or_else(|| wrong_type(self.path, "an object", self.value))
    }

    /// This value as an object with only `allowed` keys.
    pub fn object(self, allowed: &[&str]) -> Result<Object<'a>> {
        let map = self.map()?;
        if let Some(key) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(unknown_field(
                self.path,
                key,
                format!(": {}", allowed.join(", ")),
            ));
        }
        Ok(Object {
            path: self.path.to_string(),
            map,
        })
    }

    /// This value as an object with arbitrary keys (a table such as `hosts`).
    pub fn entries(self) -> Result<Vec<(&'a str, &'a Value)>> {
        Ok(self.map()?.iter().map(|(k, v)| (k.as_str(), v)).collect())
    }

    pub fn str(self) -> Result<&'a str> {
        self.value
            .as_str()
            .ok_or_else(|| wrong_type(self.path, "a string", self.value))
    }

    pub fn bool(self) -> Result<bool> {
        self.value
            .as_bool()
            .ok_or_else(|| wrong_type(self.path, "true or false", self.value))
    }

    pub fn u64(self) -> Result<u64> {
        self.value
            .as_u64()
            .ok_or_else(|| wrong_type(self.path, "a whole number of 0 or more", self.value))
    }

    pub fn f64(self) -> Result<f64> {
        self.value
            .as_f64()
            .ok_or_else(|| wrong_type(self.path, "a number", self.value))
    }

    pub fn list(self) -> Result<&'a [Value]> {
        self.value
            .as_array()
            .map(Vec::as_slice)
            .ok_or_else(|| wrong_type(self.path, "a list", self.value))
    }

    /// The error for `value`, which is none of `choices`.
    pub fn not_one_of(self, value: &str, choices: &[&str]) -> ConfigError {
        ConfigError::new(
            self.path,
            format!("{value:?} is not one of: {}", choices.join(", ")),
            "use one of the listed values",
        )
    }

    /// An object with exactly one key from `variants`: `{"prefix": "/api"}`.
    pub fn one_of(self, variants: &[&str]) -> Result<(&'a str, &'a Value)> {
        let mut iter = self.map()?.iter();
        match (iter.next(), iter.next()) {
            (Some((key, value)), None) if variants.contains(&key.as_str()) => {
                Ok((key.as_str(), value))
            }
            (Some((key, _)), None) => Err(unknown_field(
                self.path,
                key,
                format!(" one of: {}", variants.join(", ")),
            )),
            _ => Err(ConfigError::new(
                self.path,
                format!("needs exactly one of: {}", variants.join(", ")),
                "give one key per object; combine several with and/or",
            )),
        }
    }
}

impl<'a> Object<'a> {
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// Runs `read` on the field if it is present, with its full path.
    pub fn get<T>(
        &self,
        key: &str,
        read: impl FnOnce(Field<'_, 'a>) -> Result<T>,
    ) -> Result<Option<T>> {
        match self.map.get(key) {
            None => Ok(None),
            Some(value) => {
                let path = join(&self.path, key);
                read(Field { path: &path, value }).map(Some)
            }
        }
    }

    /// Like [`Object::get`] for a field that must be present.
    pub fn need<T>(&self, key: &str, read: impl FnOnce(Field<'_, 'a>) -> Result<T>) -> Result<T> {
        self.get(key, read)?
            .ok_or_else(|| ConfigError::new(join(&self.path, key), "is missing", ADD_IT))
    }

    /// Like [`Object::need`], with the `fix` for a missing field.
    pub fn need_with<T>(
        &self,
        key: &str,
        fix: &str,
        read: impl FnOnce(Field<'_, 'a>) -> Result<T>,
    ) -> Result<T> {
        self.get(key, read)?.ok_or_else(|| self.missing(key, fix))
    }

    /// Field `key`, if present, with its full path written to `path`: what
    /// [`config_object!`](crate::config_object) reads a field from, calling
    /// its reader directly rather than through a generic function per
    /// reader, and with one path buffer for all the fields.
    pub fn locate(&self, key: &str, path: &mut String) -> Option<&'a Value> {
        let value = self.map.get(key)?;
        *path = join(&self.path, key);
        Some(value)
    }

    /// Field `key`, or `absent` when it is not given, with its full path
    /// written to `path`: an object whose fields all have defaults reads
    /// as `{}` when it is absent.
    pub fn locate_or<'e>(&self, key: &str, path: &mut String, absent: &'e Value) -> &'e Value
    where
        'a: 'e,
    {
        *path = join(&self.path, key);
        self.map.get(key).unwrap_or(absent)
    }

    /// The error for field `key`, which must be present, with `fix`.
    pub fn missing(&self, key: &str, fix: &str) -> ConfigError {
        ConfigError::new(join(&self.path, key), "is missing", fix)
    }

    pub fn string(&self, key: &str) -> Result<Option<String>> {
        self.get(key, |f| f.str().map(str::to_string))
    }

    pub fn flag(&self, key: &str, default: bool) -> Result<bool> {
        Ok(self.get(key, |f| f.bool())?.unwrap_or(default))
    }
}

/// `read(field)`: how [`config_object!`](crate::config_object) calls a
/// field's reader, so that a closure's argument has its type. Always
/// inlined: no function per reader.
#[inline(always)]
pub fn read_field<'p, 'a, T>(
    read: impl FnOnce(Field<'p, 'a>) -> Result<T>,
    field: Field<'p, 'a>,
) -> Result<T> {
    read(field)
}

/// The whole document as the root object with `allowed` keys.
pub fn root<'a>(document: &'a Value, allowed: &[&str]) -> Result<Object<'a>> {
    Field {
        path: "",
        value: document,
    }
    .object(allowed)
}
