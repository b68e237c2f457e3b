//! The plugin configuration, compiled once per VM. Any bad field refuses the
//! whole configuration (fail closed), naming the rule index and the field.

use crate::path::Allow;
use crate::pattern::Pattern;
use crate::rule::{
    Binding, Caller, Fix, From, HeaderMatch, HeaderRequirement, Mismatch, Repeated, Request, Rule,
    Text,
};
use filter_common::config::{join, parse_document, root, ConfigError, Field, Result, Value};
use filter_common::header::{forbidden_output_header, is_valid_header_name, is_valid_header_value};
use filter_common::peer::spiffe::namespace_and_service_account;
use filter_common::predicate::{anchored_regex_within, FoldedRegex, RegexLimits};
use std::collections::BTreeMap;

/// The largest `max_regex_program_size` and `max_regex_cost`: a regex
/// at either takes about a second to compile or to match a 60 KiB path.
const MAX_PROGRAM_SIZE: u32 = 1 << 20;
const MAX_COST: u32 = 1 << 16;

/// At most this many principals, and labels per principal.
const MAX_PRINCIPALS: usize = 10_000;
const MAX_BOUND_LABELS: usize = 64;

filter_common::config_object! {
    /// The document's fields as read: [`Config`] is compiled from them.
    pub struct Fields {
        /// largest estimated RE2 program size of a regex in a rule (see
        /// [Regular expressions](#regular-expressions))
        pub max_regex_program_size: u32 =
            or(|f| limit(f, MAX_PROGRAM_SIZE), RegexLimits::DEFAULT.program_size),
            type "integer 1–1048576";
        /// largest estimated number of NFA states a match of a regex in a rule steps through
        /// per char of the value
        pub max_regex_cost: u32 = or(|f| limit(f, MAX_COST), RegexLimits::DEFAULT.cost),
            type "integer 1–65536";
        /// the rules ([Rules](#rules)), tried in order; `[]` denies everything
        pub rules: Vec<Rule> = need(
            |f| {
                let limits = RegexLimits {
                    program_size: max_regex_program_size,
                    cost: max_regex_cost,
                };
                list(f, |f| Rule::read(f, limits))
            },
            "add \"rules\": [] to deny everything, or [{}] to allow everything"
        ), type "list of rules";
        /// the local reply to a denied request; any of the three can be set
        pub deny: Deny = object(Deny::read), type "object",
            default "`{\"status\": 403, \"body\": \"Access denied\\r\\n\", \"headers\": {\"content-type\": \"text/plain\"}}`";
        /// level of the decision lines (`trace` … `error`, or `off`)
        pub log: LogLevels = object(LogLevels::read), type "object",
            default "`{\"allowed\": \"debug\", \"denied\": \"info\"}`";
        /// the workload and labels each mTLS principal (URI SAN) stands for: what
        /// `from.workload` and `from.labels` see for that certificate, whatever it claims
        /// ([`from`](#from-who-may-call); entries below)
        pub principals: Vec<(String, Binding)> = or(principals, Vec::new()), type "object",
            default "`{}`";
        /// without a `principals` table, count the workload and labels a caller claims when
        /// its certificate proves the claim's namespace and service account
        /// ([`from`](#from-who-may-call))
        pub trust_claimed_labels: bool = flag(false), type "bool";
        /// evaluate and record, never block (like RBAC shadow rules)
        pub dry_run: bool = flag(false), type "bool";
        /// match `path` rules against `:path` with its query (Cilium's behaviour)
        pub path_includes_query: bool = flag(true), type "bool";
        /// refuse hostile paths (see [Hostile input](#hostile-input))
        pub reject_invalid_paths: bool = flag(true), type "bool";
        /// the reply to a refused path (body `Bad request: <reason>`)
        pub invalid_path_status: u32 = or(status, 400), type "integer 200–599";
        /// classes of paths let through although `reject_invalid_paths` is on, each a boolean
        /// (below)
        pub allow_in_paths: AllowInPaths = object(AllowInPaths::read), type "object",
            default "`{}` (all `false`)";
        /// how a header that appears several times is matched ([Rules](#rules))
        pub repeated_headers: Repeated = or(Repeated::read, Repeated::Joined),
            type Repeated::type_text();
    }
}

filter_common::config_object! {
    /// The local reply for a denied request.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Deny {
        /// the status of the reply
        pub status: u32 = or(status, 403), type "integer 200–599";
        /// the body of the reply
        pub body: String = or(|f| f.str().map(str::to_string), "Access denied\r\n".into()),
            type "string";
        /// the headers of the reply (none that frames or routes the message)
        pub headers: Vec<(String, String)> = or(reply_headers, default_deny_headers()),
            type "object", default "`{\"content-type\": \"text/plain\"}`";
    }
}

filter_common::config_choice! {
    /// The level of a decision line; `off` writes none.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum LogLevel {
        Off = "off",
        Trace = "trace",
        Debug = "debug",
        Info = "info",
        Warn = "warn",
        Error = "error",
    }
}

impl LogLevel {
    /// The `log` level, `None` for `off`.
    pub fn level(self) -> Option<log::Level> {
        match self {
            LogLevel::Off => None,
            LogLevel::Trace => Some(log::Level::Trace),
            LogLevel::Debug => Some(log::Level::Debug),
            LogLevel::Info => Some(log::Level::Info),
            LogLevel::Warn => Some(log::Level::Warn),
            LogLevel::Error => Some(log::Level::Error),
        }
    }
}

filter_common::config_object! {
    /// The levels of the decision lines.
    pub struct LogLevels {
        /// the level of a request's `FORWARDED` line
        pub allowed: LogLevel = or(LogLevel::read, LogLevel::Debug), type LogLevel::type_text();
        /// the level of a request's `DROPPED` line
        pub denied: LogLevel = or(LogLevel::read, LogLevel::Info), type LogLevel::type_text();
    }
}

filter_common::config_object! {
    /// The classes of paths let through although `reject_invalid_paths` is on
    /// ([`Allow`]).
    pub struct AllowInPaths {
        /// a segment that is `.` or `..` once its `;parameters` are removed (`..;`, `.;x=1`)
        pub path_parameters_dot_segments: bool = flag(false), type "bool";
        /// a segment that is `.` or `..` up to an encoded `?` or `#` (`..%3F`, `.%23x`)
        pub encoded_delimiter_dot_segments: bool = flag(false), type "bool";
        /// `%25` followed by two hex digits or `u` once decoded (`%252e`)
        pub double_encoding: bool = flag(false), type "bool";
        /// a `%` not starting a `%XX` escape (`%zz`, `100%`)
        pub malformed_escapes: bool = flag(false), type "bool";
        /// percent-encoded bytes that are not UTF-8 (the path is then not read as UTF-8 at all)
        pub invalid_utf8: bool = flag(false), type "bool";
        /// `%u` escapes (IIS's `%uXXXX`), then passed on unread
        pub percent_u: bool = flag(false), type "bool";
        /// encoded control characters but NUL (`%01`–`%1F`, `%7F`, C1 `%C2%80`–`%C2%9F`)
        pub encoded_control_characters: bool = flag(false), type "bool";
    }
}

impl AllowInPaths {
    fn allow(self) -> Allow {
        Allow {
            path_parameters_dot_segments: self.path_parameters_dot_segments,
            encoded_delimiter_dot_segments: self.encoded_delimiter_dot_segments,
            double_encoding: self.double_encoding,
            malformed_escapes: self.malformed_escapes,
            invalid_utf8: self.invalid_utf8,
            percent_u: self.percent_u,
            encoded_control_characters: self.encoded_control_characters,
        }
    }
}

#[derive(Debug)]
pub struct Config {
    pub rules: Vec<Rule>,
    /// Workload and labels per mTLS principal (URI SAN): what `from.workload`
    /// and `from.labels` see for that certificate, whatever it claims.
    /// Sorted by principal.
    pub principals: Vec<(String, Binding)>,
    /// Without a `principals` table, count the workload and labels a caller
    /// claims when its certificate proves the claim's namespace and service
    /// account.
    pub trust_claimed_labels: bool,
    /// Rules by literal method (indexes in order); rules without a literal
    /// method are in `any_method`. A request is only tried against rules its
    /// method can match.
    by_method: BTreeMap<String, Vec<usize>>,
    any_method: Vec<usize>,
    /// Some rule has `from`: the caller must be read.
    pub(crate) needs_caller: bool,
    /// Some rule has `host`: the authority must be normalized (an allocation).
    pub(crate) needs_host: bool,
    pub dry_run: bool,
    /// Match `path` rules against `:path` with its query (Cilium's behaviour).
    pub path_includes_query: bool,
    pub reject_invalid_paths: bool,
    pub invalid_path_status: u32,
    /// Classes of paths let through although `reject_invalid_paths` is on.
    pub allow_in_paths: Allow,
    pub deny: Deny,
    /// Log levels for decisions; `None` is off.
    pub log_allowed: Option<log::Level>,
    pub log_denied: Option<log::Level>,
    pub repeated_headers: Repeated,
}

fn status(field: Field) -> Result<u32> {
    let code = field.u64()?;
    if !(200..=599).contains(&code) {
        return Err(ConfigError::new(
            field.path,
            format!("{code} is not an HTTP status for a local reply"),
            "use 200 to 599",
        ));
    }
    Ok(code as u32)
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
        let mut by_method: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        let mut any_method = Vec::new();
        for (i, rule) in f.rules.iter().enumerate() {
            match rule.method.as_ref().and_then(Pattern::literal) {
                Some(m) => by_method.entry(m.to_string()).or_default().push(i),
                None => any_method.push(i),
            }
        }
        Ok(Config {
            needs_caller: f.rules.iter().any(|r| r.from.is_some()),
            needs_host: f.rules.iter().any(|r| r.host.is_some()),
            rules: f.rules,
            principals: f.principals,
            trust_claimed_labels: f.trust_claimed_labels,
            by_method,
            any_method,
            dry_run: f.dry_run,
            path_includes_query: f.path_includes_query,
            reject_invalid_paths: f.reject_invalid_paths,
            invalid_path_status: f.invalid_path_status,
            allow_in_paths: f.allow_in_paths.allow(),
            deny: f.deny,
            log_allowed: f.log.allowed.level(),
            log_denied: f.log.denied.level(),
            repeated_headers: f.repeated_headers,
        })
    }
}

impl Config {
    /// The caller as the rules see it. A principal in the `principals` table
    /// gets the table's workload and labels, whatever it claimed; once the table names any principal,
    /// a caller it does not name has no workload or labels. Without a table,
    /// claimed ones are attested only with `trust_claimed_labels` and a
    /// certificate that proves the claim's namespace and service account.
    pub fn bind(&self, caller: &mut Caller) {
        if self.principals.is_empty() {
            caller.attested = self.trust_claimed_labels && caller.service_account_proven();
            return;
        }
        caller.workload = None;
        caller.labels = Vec::new();
        let Some((_, binding)) = caller.principal.as_deref().and_then(|p| {
            let at = self
                .principals
                .binary_search_by(|(k, _)| k.as_str().cmp(p))
                .ok()?;
            self.principals.get(at)
        }) else {
            caller.attested = false;
            return;
        };
        caller.workload = binding.workload.clone();
        caller.labels = binding.labels.clone();
        caller.attested = true;
    }

    /// The first rule (in configuration order) the request matches, and the
    /// fixes its `headerMatches` ask for; `None`: denied.
    pub fn decide(&self, request: &Request) -> Option<(usize, Vec<Fix>)> {
        let method = std::str::from_utf8(request.method).unwrap_or_default();
        let literal = self.by_method.get(method).map_or(&[][..], Vec::as_slice);
        let (mut a, mut b) = (literal.iter().peekable(), self.any_method.iter().peekable());
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(&&x), Some(&&y)) if x < y => a.next(),
                (Some(_), Some(_)) => b.next(),
                (Some(_), None) => a.next(),
                (None, _) => b.next(),
            };
            let i = *next?;
            if let Some(fixes) = self.rules.get(i).and_then(|r| r.matches(request)) {
                return Some((i, fixes));
            }
        }
    }
}

/// A regex limit, 1 to `max`.
fn limit(field: Field, max: u32) -> Result<u32> {
    let n = field.u64()?;
    match u32::try_from(n) {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(ConfigError::new(
            field.path,
            format!("{n} is out of range"),
            format!("use 1 to {max} (l7_policy README: Limits)"),
        )),
    }
}

/// A list, each item read by `read` with its path (`rules[2]`).
fn list<T>(field: Field, read: impl Fn(Field) -> Result<T>) -> Result<Vec<T>> {
    field
        .list()?
        .iter()
        .enumerate()
        .map(|(i, value)| {
            let path = format!("{}[{i}]", field.path);
            read(Field { path: &path, value })
        })
        .collect()
}

/// A header name the filter writes (a local reply header, or a request header
/// a `headerMatches` entry adds, replaces or deletes): never one that frames
/// or routes the message, a pseudo-header, or one Envoy owns.
fn written_header(path: &str, name: &str, fix: &str) -> Result<()> {
    match forbidden_output_header(name) {
        Some(why) => Err(ConfigError::new(
            path,
            format!("{name:?} {why}; this filter may not write it"),
            format!("{fix}, or write an application header such as \"x-policy\""),
        )),
        None => Ok(()),
    }
}

fn default_deny_headers() -> Vec<(String, String)> {
    vec![("content-type".into(), "text/plain".into())]
}

fn reply_headers(field: Field) -> Result<Vec<(String, String)>> {
    field
        .entries()?
        .into_iter()
        .map(|(name, value)| {
            let path = join(field.path, name);
            let value = Field { path: &path, value }.str()?;
            if !is_valid_header_name(name) || !is_valid_header_value(value) {
                return Err(ConfigError::new(
                    path,
                    "is not a valid header",
                    "use a header name and a printable value",
                ));
            }
            written_header(&path, name, "remove it from the local reply")?;
            Ok((name.to_ascii_lowercase(), value.to_string()))
        })
        .collect()
}

/// A rule's `method` or `path`.
pub(crate) fn pattern(f: Field, limits: RegexLimits) -> Result<Pattern> {
    Pattern::compile_within(f.path, f.str()?, limits)
}

/// A rule's `host`: hosts compare case-insensitively.
pub(crate) fn host_regex(f: Field, limits: RegexLimits) -> Result<FoldedRegex> {
    FoldedRegex::within(f.path, f.str()?, limits)
}

pub(crate) fn string(f: Field) -> Result<String> {
    f.str().map(str::to_string)
}

fn header_name(path: &str, name: &str) -> Result<String> {
    if !is_valid_header_name(name) {
        return Err(ConfigError::new(
            path,
            format!("{name:?} is not a header name"),
            "use a header name such as \"X-Token\"",
        ));
    }
    Ok(name.to_ascii_lowercase())
}

/// A rule's `headers`: `"Name"` (present) or `"Name: value"` (exact value).
pub(crate) fn header_requirements(f: Field) -> Result<Vec<HeaderRequirement>> {
    list(f, |f| {
        let text = f.str()?;
        let (name, value) = match text.split_once(':') {
            Some((name, value)) => (name, Some(value.strip_prefix(' ').unwrap_or(value))),
            None => (text, None),
        };
        Ok(HeaderRequirement {
            name: header_name(f.path, name)?,
            value: value.map(|v| v.as_bytes().to_vec()),
        })
    })
}

filter_common::config_object! {
    /// A `headerMatches` entry as written: [`HeaderMatch`] is compiled from it.
    pub struct HeaderMatchFields<'a> {
        /// values from Kubernetes secrets: refused
        pub secret: Option<()> = get(|f| Err(ConfigError::new(
            f.path,
            "values from Kubernetes secrets are not supported",
            "put the value in \"value\"",
        ))), type "object";
        /// the header's name
        pub name: &'a str = need(|f| f.str()), type "string";
        /// the value the header must have; without it (or empty), the header must be present
        pub value: Option<&'a str> = get(|f| f.str()), type "string";
        /// what a mismatch does; without it, the rule fails
        pub mismatch: Option<Mismatch> = get(Mismatch::read), type Mismatch::type_text();
    }
}

/// A rule's `headerMatches`.
pub(crate) fn header_matches(f: Field) -> Result<Vec<HeaderMatch>> {
    list(f, |entry| {
        let m = HeaderMatchFields::read(entry)?;
        let name_path = join(entry.path, "name");
        let name = header_name(&name_path, m.name)?;
        let value = m
            .value
            .filter(|v| !v.is_empty())
            .map(|v| v.as_bytes().to_vec());
        if matches!(
            m.mismatch,
            Some(Mismatch::Add | Mismatch::Replace | Mismatch::Delete)
        ) {
            written_header(
                &name_path,
                m.name,
                "match it without ADD, REPLACE or DELETE",
            )?;
        }
        if matches!(m.mismatch, Some(Mismatch::Add | Mismatch::Replace)) && value.is_none() {
            return Err(ConfigError::new(
                join(entry.path, "value"),
                "is needed to add or replace the header",
                "give the value, or use LOG or DELETE",
            ));
        }
        Ok(HeaderMatch {
            name,
            value,
            mismatch: m.mismatch,
        })
    })
}

pub(crate) fn principals(field: Field) -> Result<Vec<(String, Binding)>> {
    let entries = field.entries()?;
    if entries.len() > MAX_PRINCIPALS {
        return Err(ConfigError::new(
            field.path,
            format!("has more than {MAX_PRINCIPALS} principals"),
            format!("bind at most {MAX_PRINCIPALS}"),
        ));
    }
    // serde_json keeps an object's keys sorted, so the table is sorted by
    // principal for a binary search per request (tests/rules.rs checks it).
    let mut out: Vec<(String, Binding)> = Vec::new();
    for &(principal, value) in &entries {
        let path = join(field.path, principal);
        let binding = Binding::read(Field { path: &path, value })?;
        let problem = if namespace_and_service_account(principal).is_none() {
            "is not a SPIFFE ID (spiffe://<trust domain>/ns/<namespace>/sa/<service account>)"
        } else if binding.labels.len() > MAX_BOUND_LABELS {
            "binds more than 64 labels"
        } else if binding.workload.is_none() && binding.labels.is_empty() {
            "binds nothing"
        } else {
            out.push((principal.to_string(), binding));
            continue;
        };
        return Err(ConfigError::new(
            path,
            problem,
            "bind a certificate's URI SAN to a workload and at most 64 labels",
        ));
    }
    Ok(out)
}

/// A JSON object of strings. Inserted one by one: collecting into a map
/// would sort, and a sort is kilobytes of Wasm per element type.
/// A JSON object of strings, by name (each name once: the parsed object's order).
pub(crate) fn string_map(f: Field) -> Result<Vec<(String, String)>> {
    let mut labels = Vec::new();
    for (k, v) in f.entries()? {
        let path = join(f.path, k);
        let value = Field {
            path: &path,
            value: v,
        }
        .str()?;
        labels.push((k.to_string(), value.to_string()));
    }
    Ok(labels)
}

/// `from.principal`: `{"exact": ...}` or `{"regex": ...}`.
pub(crate) fn principal(f: Field, limits: RegexLimits) -> Result<Text> {
    let (how, value) = f.one_of(&["exact", "regex"])?;
    let path = join(f.path, how);
    let text = Field { path: &path, value }.str()?;
    Ok(match how {
        "exact" => Text::Exact(text.to_string()),
        _ => Text::Regex(anchored_regex_within(&path, text, limits)?),
    })
}

/// A rule's `from`, which must require something of the caller.
pub(crate) fn caller(field: Field, limits: RegexLimits) -> Result<From> {
    let from = From::read(field, limits)?;
    if from.principal.is_none()
        && from.namespace.is_none()
        && from.workload.is_none()
        && from.labels.is_empty()
    {
        return Err(ConfigError::new(
            field.path,
            "requires nothing of the caller",
            "give principal, namespace, workload or labels, or remove from",
        ));
    }
    Ok(from)
}
