//! The plugin configuration: parsed once per VM, validated whole, then compiled
//! into the form requests are served from.

use crate::hosts::HostTable;
use crate::identity::{FourNames, HeaderNames, Identity, DEFAULT_LABEL_KEYS, DEFAULT_PROCESS_TYPE};
use filter_common::config::{parse_json, ConfigError};
use filter_common::header::{is_valid_header_name, is_valid_header_value};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Default, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Stamp,
    StripOnly,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum IdentityFrom {
    NodeLabels,
}

/// What happens to a request no identity applies to. Its CF headers are
/// stripped either way.
#[derive(Debug, Default, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnMissingIdentity {
    #[default]
    Pass,
    Reject,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    mode: Mode,
    app_guid: Option<String>,
    process_type: Option<String>,
    org_guid: Option<String>,
    space_guid: Option<String>,
    identity_from: Option<IdentityFrom>,
    label_keys: Option<FourNames>,
    hosts: Option<BTreeMap<String, RawIdentity>>,
    header_names: Option<FourNames>,
    #[serde(default)]
    response_headers: bool,
    #[serde(default)]
    on_missing_identity: OnMissingIdentity,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdentity {
    app_guid: String,
    process_type: Option<String>,
    org_guid: String,
    space_guid: String,
}

/// Where a request's identity comes from.
#[derive(Debug)]
pub enum Source {
    /// `mode: strip_only`: remove the headers, set nothing.
    StripOnly,
    /// A static identity, index 0 of [`Config::identities`].
    Static,
    /// The workload's own pod labels; `resolved` once they have been read.
    NodeLabels {
        keys: [String; 4],
        resolved: Option<usize>,
    },
    /// One identity per host, for an ingress gateway.
    Hosts(HostTable),
}

#[derive(Debug)]
pub struct Config {
    pub names: HeaderNames,
    pub identities: Vec<Identity>,
    pub source: Source,
    pub response_headers: bool,
    pub on_missing_identity: OnMissingIdentity,
}

impl Config {
    /// Parses and validates a plugin configuration document.
    pub fn parse(raw: Option<&[u8]>) -> Result<Config, ConfigError> {
        let raw: RawConfig = parse_json(raw)?;
        Config::compile(raw)
    }

    fn compile(raw: RawConfig) -> Result<Config, ConfigError> {
        let names = compile_header_names(raw.header_names)?;
        let static_fields: Vec<&str> = [
            ("app_guid", raw.app_guid.is_some()),
            ("process_type", raw.process_type.is_some()),
            ("org_guid", raw.org_guid.is_some()),
            ("space_guid", raw.space_guid.is_some()),
        ]
        .iter()
        .filter(|(_, set)| *set)
        .map(|(name, _)| *name)
        .collect();
        let mut given: Vec<&str> = Vec::new();
        if !static_fields.is_empty() {
            given.push(static_fields[0]);
        }
        if raw.identity_from.is_some() {
            given.push("identity_from");
        }
        if raw.hosts.is_some() {
            given.push("hosts");
        }
        if raw.label_keys.is_some() && raw.identity_from != Some(IdentityFrom::NodeLabels) {
            return Err(ConfigError::new(
                "label_keys",
                "only applies with identity_from: node_labels",
                "remove label_keys or set \"identity_from\": \"node_labels\"",
            ));
        }

        let mut identities = Vec::new();
        let source = match (raw.mode, given.as_slice()) {
            (Mode::StripOnly, []) => Source::StripOnly,
            (Mode::StripOnly, [field, ..]) => {
                return Err(ConfigError::new(
                    *field,
                    "mode strip_only sets no identity",
                    "remove the identity fields, or remove \"mode\": \"strip_only\" to stamp",
                ))
            }
            (Mode::Stamp, []) => {
                return Err(ConfigError::new(
                    "",
                    "no identity source is configured",
                    "give app_guid, org_guid and space_guid (static), \"identity_from\": \"node_labels\", \
                     or a \"hosts\" table; or set \"mode\": \"strip_only\"",
                ))
            }
            (Mode::Stamp, [first, second, ..]) => {
                return Err(ConfigError::new(
                    *second,
                    format!("conflicts with `{first}`: a configuration has one identity source"),
                    "keep either the static guids, identity_from, or hosts",
                ))
            }
            (Mode::Stamp, [_]) => {
                if let Some(IdentityFrom::NodeLabels) = raw.identity_from {
                    let keys = raw.label_keys.unwrap_or_default().over(DEFAULT_LABEL_KEYS);
                    for (field, key) in &keys {
                        if key.is_empty() {
                            return Err(ConfigError::new(
                                format!("label_keys.{field}"),
                                "is empty",
                                "name the pod label that holds this value",
                            ));
                        }
                    }
                    Source::NodeLabels {
                        keys: keys.map(|(_, k)| k),
                        resolved: None,
                    }
                } else if let Some(hosts) = raw.hosts {
                    Source::Hosts(compile_hosts(hosts, &mut identities)?)
                } else {
                    let identity = RawIdentity {
                        app_guid: required(raw.app_guid, "app_guid")?,
                        process_type: raw.process_type,
                        org_guid: required(raw.org_guid, "org_guid")?,
                        space_guid: required(raw.space_guid, "space_guid")?,
                    };
                    identities.push(compile_identity(identity, "")?);
                    Source::Static
                }
            }
        };
        Ok(Config {
            names,
            identities,
            source,
            response_headers: raw.response_headers,
            on_missing_identity: raw.on_missing_identity,
        })
    }

    /// The pod label keys to read, while node labels are still unresolved.
    pub fn pending_label_keys(&self) -> Option<&[String; 4]> {
        match &self.source {
            Source::NodeLabels {
                keys,
                resolved: None,
            } => Some(keys),
            _ => None,
        }
    }

    /// Resolves `identity_from: node_labels` with the workload's labels.
    /// `label` answers one label key. Returns the label keys that were missing
    /// or unusable; the identity is set only when none was.
    pub fn resolve_node_labels(
        &mut self,
        label: impl Fn(&str) -> Option<String>,
    ) -> Result<&Identity, Vec<String>> {
        let Source::NodeLabels { keys, resolved } = &mut self.source else {
            return Err(Vec::new());
        };
        let mut problems = Vec::new();
        let mut values: [String; 4] = Default::default();
        for (i, key) in keys.iter().enumerate() {
            match label(key) {
                Some(v) if is_valid_header_value(&v) => values[i] = v,
                // A pod without a process type label runs the web process.
                None if i == 1 => values[i] = DEFAULT_PROCESS_TYPE.to_string(),
                Some(_) => problems.push(format!("{key} (not a valid header value)")),
                None => problems.push(format!("{key} (missing)")),
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        self.identities.push(Identity { values });
        let index = self.identities.len() - 1;
        *resolved = Some(index);
        Ok(&self.identities[index])
    }

    /// Whether the request's `:authority` decides its identity.
    pub fn needs_authority(&self) -> bool {
        matches!(self.source, Source::Hosts(_))
    }
}

fn required(value: Option<String>, field: &str) -> Result<String, ConfigError> {
    value.ok_or_else(|| {
        ConfigError::new(
            field,
            "is missing; a static identity needs app_guid, org_guid and space_guid",
            "add it, or use identity_from / hosts instead",
        )
    })
}

fn compile_header_names(given: Option<FourNames>) -> Result<HeaderNames, ConfigError> {
    let defaults = HeaderNames::default();
    let [a, b, c, d] = &defaults.0;
    let pairs = given.unwrap_or_default().over([a, b, c, d]);
    let mut names: [String; 4] = Default::default();
    for (i, (field, name)) in pairs.into_iter().enumerate() {
        if !is_valid_header_name(&name) {
            return Err(ConfigError::new(
                format!("header_names.{field}"),
                format!("{name:?} is not a valid header name"),
                "use letters, digits and '-' (for example \"CF-App-Id\")",
            ));
        }
        let lower = name.to_ascii_lowercase();
        if let Some(j) = names[..i].iter().position(|n| *n == lower) {
            return Err(ConfigError::new(
                format!("header_names.{field}"),
                format!("{name:?} is also the header of {}", FourNames::FIELDS[j]),
                "give each value its own header name",
            ));
        }
        names[i] = lower;
    }
    Ok(HeaderNames(names))
}

fn compile_identity(raw: RawIdentity, prefix: &str) -> Result<Identity, ConfigError> {
    let process_type = raw
        .process_type
        .unwrap_or_else(|| DEFAULT_PROCESS_TYPE.to_string());
    let values = [raw.app_guid, process_type, raw.org_guid, raw.space_guid];
    for (field, value) in FourNames::FIELDS.iter().zip(&values) {
        if !is_valid_header_value(value) {
            return Err(ConfigError::new(
                format!("{prefix}{field}"),
                format!("{value:?} cannot be sent as a header value"),
                "use a non-empty value of visible ASCII characters, without surrounding spaces",
            ));
        }
    }
    Ok(Identity { values })
}

fn compile_hosts(
    hosts: BTreeMap<String, RawIdentity>,
    identities: &mut Vec<Identity>,
) -> Result<HostTable, ConfigError> {
    if hosts.is_empty() {
        return Err(ConfigError::new(
            "hosts",
            "is empty, so no request could be stamped",
            "add at least one \"<fqdn>\": {identity} entry",
        ));
    }
    let mut table = HostTable::default();
    for (host, raw) in hosts {
        let field = format!("hosts.{host:?}");
        let identity = compile_identity(raw, &format!("{field}."))?;
        identities.push(identity);
        table.insert(&host, identities.len() - 1).map_err(|problem| {
            ConfigError::new(
                field.clone(),
                problem,
                "use a DNS name such as \"app.example.com\" or \"*.apps.example.com\", without port, once",
            )
        })?;
    }
    Ok(table)
}
