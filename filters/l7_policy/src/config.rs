//! The plugin configuration, compiled once per VM. Any bad field refuses the
//! whole configuration (fail closed), naming the rule index and the field.

use crate::path::Allow;
use crate::pattern::Pattern;
use crate::rule::{
    Binding, Caller, Fix, From, HeaderMatch, HeaderRequirement, Mismatch, Repeated, Request, Rule,
    Text,
};
use filter_common::config::{
    join, parse_document, root, ConfigError, Field, Object, Result, Value,
};
use filter_common::header::{forbidden_output_header, is_valid_header_name, is_valid_header_value};
use filter_common::peer::spiffe::namespace_and_service_account;
use filter_common::predicate::{anchored_regex_within, FoldedRegex, RegexLimits};
use std::collections::BTreeMap;

const FIELDS: [&str; 13] = [
    "rules",
    "principals",
    "trust_claimed_labels",
    "dry_run",
    "path_includes_query",
    "reject_invalid_paths",
    "invalid_path_status",
    "allow_in_paths",
    "deny",
    "log",
    "repeated_headers",
    "max_regex_program_size",
    "max_regex_cost",
];
const RULE_FIELDS: [&str; 6] = ["method", "path", "host", "headers", "headerMatches", "from"];
const ALLOW_IN_PATHS: [&str; 7] = [
    "path_parameters_dot_segments",
    "encoded_delimiter_dot_segments",
    "double_encoding",
    "malformed_escapes",
    "invalid_utf8",
    "percent_u",
    "encoded_control_characters",
];
const LEVELS: [&str; 6] = ["off", "trace", "debug", "info", "warn", "error"];

/// The local reply for a denied request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deny {
    pub status: u32,
    pub body: String,
    pub headers: Vec<(String, String)>,
}

/// The largest `max_regex_program_size` and `max_regex_cost`: a regex
/// at either takes about a second to compile or to match a 60 KiB path.
const MAX_PROGRAM_SIZE: u32 = 1 << 20;
const MAX_COST: u32 = 1 << 16;

/// At most this many principals, and labels per principal.
const MAX_PRINCIPALS: usize = 10_000;
const MAX_BOUND_LABELS: usize = 64;

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

fn level(name: &str) -> Option<log::Level> {
    match name {
        "trace" => Some(log::Level::Trace),
        "debug" => Some(log::Level::Debug),
        "info" => Some(log::Level::Info),
        "warn" => Some(log::Level::Warn),
        "error" => Some(log::Level::Error),
        _ => None,
    }
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
        let top = root(document, &FIELDS)?;
        // One closure for both (each closure is code of its own).
        let limit = |key, max, default| {
            top.get(key, |f| limit(f, max))
                .map(|n| n.unwrap_or(default))
        };
        let default = RegexLimits::DEFAULT;
        let limits = RegexLimits {
            program_size: limit(
                "max_regex_program_size",
                MAX_PROGRAM_SIZE,
                default.program_size,
            )?,
            cost: limit("max_regex_cost", MAX_COST, default.cost)?,
        };
        let rules = top.need("rules", |f| {
            f.list()?
                .iter()
                .enumerate()
                .map(|(i, value)| {
                    let path = format!("rules[{i}]");
                    compile_rule(Field { path: &path, value }, limits)
                })
                .collect::<Result<Vec<_>>>()
        });
        let rules = rules.map_err(|mut e| {
            if e.field == "rules" && e.problem == "is missing" {
                e.fix = "add \"rules\": [] to deny everything, or [{}] to allow everything".into();
            }
            e
        })?;
        let deny = top
            .get("deny", |f| {
                let o = f.object(&["status", "body", "headers"])?;
                Ok(Deny {
                    status: o.get("status", status)?.unwrap_or(403),
                    body: o
                        .string("body")?
                        .unwrap_or_else(|| "Access denied\r\n".into()),
                    headers: o
                        .get("headers", |f| reply_headers(f))?
                        .unwrap_or_else(default_deny_headers),
                })
            })?
            .unwrap_or_else(|| Deny {
                status: 403,
                body: "Access denied\r\n".into(),
                headers: default_deny_headers(),
            });
        let (log_allowed, log_denied) = top
            .get("log", |f| {
                let o = f.object(&["allowed", "denied"])?;
                Ok((
                    o.get("allowed", |f| f.choice(&LEVELS))?.map(level),
                    o.get("denied", |f| f.choice(&LEVELS))?.map(level),
                ))
            })?
            .unwrap_or((None, None));
        let mut by_method: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        let mut any_method = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            match rule.method.as_ref().and_then(Pattern::literal) {
                Some(m) => by_method.entry(m.to_string()).or_default().push(i),
                None => any_method.push(i),
            }
        }
        let principals = top.get("principals", principals)?.unwrap_or_default();
        Ok(Config {
            needs_caller: rules.iter().any(|r| r.from.is_some()),
            needs_host: rules.iter().any(|r| r.host.is_some()),
            rules,
            principals,
            trust_claimed_labels: top.flag("trust_claimed_labels", false)?,
            by_method,
            any_method,
            dry_run: top.flag("dry_run", false)?,
            path_includes_query: top.flag("path_includes_query", true)?,
            reject_invalid_paths: top.flag("reject_invalid_paths", true)?,
            invalid_path_status: top.get("invalid_path_status", status)?.unwrap_or(400),
            allow_in_paths: top
                .get("allow_in_paths", allow_in_paths)?
                .unwrap_or_default(),
            deny,
            log_allowed: log_allowed.unwrap_or(Some(log::Level::Debug)),
            log_denied: log_denied.unwrap_or(Some(log::Level::Info)),
            repeated_headers: match top
                .get("repeated_headers", |f| f.choice(&["joined", "any_value"]))?
            {
                Some("any_value") => Repeated::AnyValue,
                _ => Repeated::Joined,
            },
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

fn allow_in_paths(field: Field) -> Result<Allow> {
    let o = field.object(&ALLOW_IN_PATHS)?;
    // One call for every name: smaller than one per name.
    let mut flags = [false; ALLOW_IN_PATHS.len()];
    for (flag, name) in flags.iter_mut().zip(ALLOW_IN_PATHS) {
        *flag = o.flag(name, false)?;
    }
    // In the order of ALLOW_IN_PATHS.
    let [path_parameters_dot_segments, encoded_delimiter_dot_segments, double_encoding, malformed_escapes, invalid_utf8, percent_u, encoded_control_characters] =
        flags;
    Ok(Allow {
        path_parameters_dot_segments,
        encoded_delimiter_dot_segments,
        double_encoding,
        malformed_escapes,
        invalid_utf8,
        percent_u,
        encoded_control_characters,
    })
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

fn pattern(o: &Object, key: &str, limits: RegexLimits) -> Result<Option<Pattern>> {
    o.get(key, |f| Pattern::compile_within(f.path, f.str()?, limits))
}

/// Hosts compare case-insensitively.
fn host_regex(o: &Object, limits: RegexLimits) -> Result<Option<FoldedRegex>> {
    o.get("host", |f| FoldedRegex::within(f.path, f.str()?, limits))
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

fn compile_rule(field: Field, limits: RegexLimits) -> Result<Rule> {
    let o = field.object(&RULE_FIELDS)?;
    let headers = o
        .get("headers", |f| {
            f.list()?
                .iter()
                .enumerate()
                .map(|(i, value)| {
                    let path = format!("{}[{i}]", f.path);
                    let text = Field { path: &path, value }.str()?;
                    let (name, value) = match text.split_once(':') {
                        Some((name, value)) => {
                            (name, Some(value.strip_prefix(' ').unwrap_or(value)))
                        }
                        None => (text, None),
                    };
                    Ok(HeaderRequirement {
                        name: header_name(&path, name)?,
                        value: value.map(|v| v.as_bytes().to_vec()),
                    })
                })
                .collect::<Result<Vec<_>>>()
        })?
        .unwrap_or_default();
    let header_matches = o
        .get("headerMatches", |f| {
            f.list()?
                .iter()
                .enumerate()
                .map(|(i, value)| {
                    let path = format!("{}[{i}]", f.path);
                    let m = Field { path: &path, value }
                        .object(&["name", "value", "mismatch", "secret"])?;
                    if m.has("secret") {
                        return Err(ConfigError::new(
                            join(&path, "secret"),
                            "values from Kubernetes secrets are not supported",
                            "put the value in \"value\"",
                        ));
                    }
                    let name_path = join(&path, "name");
                    let given = m.need("name", |f| f.str().map(str::to_string))?;
                    let name = header_name(&name_path, &given)?;
                    let value = m
                        .string("value")?
                        .filter(|v| !v.is_empty())
                        .map(String::into_bytes);
                    let mismatch = match m.get("mismatch", |f| {
                        f.choice(&["LOG", "ADD", "DELETE", "REPLACE"])
                    })? {
                        None => None,
                        Some("LOG") => Some(Mismatch::Log),
                        Some("ADD") => Some(Mismatch::Add),
                        Some("DELETE") => Some(Mismatch::Delete),
                        Some(_) => Some(Mismatch::Replace),
                    };
                    if matches!(
                        mismatch,
                        Some(Mismatch::Add | Mismatch::Replace | Mismatch::Delete)
                    ) {
                        written_header(
                            &name_path,
                            &given,
                            "match it without ADD, REPLACE or DELETE",
                        )?;
                    }
                    if matches!(mismatch, Some(Mismatch::Add | Mismatch::Replace))
                        && value.is_none()
                    {
                        return Err(ConfigError::new(
                            join(&path, "value"),
                            "is needed to add or replace the header",
                            "give the value, or use LOG or DELETE",
                        ));
                    }
                    Ok(HeaderMatch {
                        name,
                        value,
                        mismatch,
                    })
                })
                .collect::<Result<Vec<_>>>()
        })?
        .unwrap_or_default();
    Ok(Rule {
        method: pattern(&o, "method", limits)?,
        path: pattern(&o, "path", limits)?,
        host: host_regex(&o, limits)?,
        headers,
        header_matches,
        from: o.get("from", |f| compile_from(f, limits))?,
    })
}

fn principals(field: Field) -> Result<Vec<(String, Binding)>> {
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
        let o = Field { path: &path, value }.object(&["workload", "labels"])?;
        let binding = Binding {
            workload: o.string("workload")?,
            labels: o.get("labels", string_map)?.unwrap_or_default(),
        };
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
fn string_map(f: Field) -> Result<Vec<(String, String)>> {
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

fn compile_from(field: Field, limits: RegexLimits) -> Result<From> {
    let o = field.object(&[
        "principal",
        "namespace",
        "workload",
        "labels",
        "allow_unverified",
    ])?;
    let principal = o.get("principal", |f| {
        let (how, value) = f.one_of(&["exact", "regex"])?;
        let path = join(f.path, how);
        let text = Field { path: &path, value }.str()?;
        Ok(match how {
            "exact" => Text::Exact(text.to_string()),
            _ => Text::Regex(anchored_regex_within(&path, text, limits)?),
        })
    })?;
    let labels = o.get("labels", string_map)?.unwrap_or_default();
    let from = From {
        principal,
        namespace: o.string("namespace")?,
        workload: o.string("workload")?,
        labels,
        allow_unverified: o.flag("allow_unverified", false)?,
    };
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
