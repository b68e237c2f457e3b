//! The plugin configuration: parsed once per VM, validated whole, then compiled
//! into the form requests are served from.

use crate::hosts::HostTable;
use crate::identity::{ByPart, HeaderNames, Identity, Part, DEFAULT_PROCESS_TYPE};
use filter_common::config::{join, parse_document, root, ConfigError, Field, Object, Value};
use filter_common::header::{forbidden_output_header, is_valid_header_value, same_header_name};

filter_common::config_choice! {
    /// What happens to a request no identity applies to. Its CF headers are
    /// stripped either way.
    #[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
    pub enum OnMissingIdentity {
        #[default]
        Pass = "pass",
        Reject = "reject",
    }
}

filter_common::config_choice! {
    /// Whether the filter stamps an identity or only strips the headers.
    #[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
    pub enum Mode {
        #[default]
        Stamp = "stamp",
        StripOnly = "strip_only",
    }
}

filter_common::config_choice! {
    /// Where an identity other than a static one or a host's comes from.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum IdentityFrom {
        NodeLabels = "node_labels",
    }
}

filter_common::config_object! {
    /// An identity: the static one (top-level fields) or a host's.
    pub struct IdentityFields<'a> {
        /// **Static identity.** All three required together.
        pub app_guid: &'a str = need(identity_value, IDENTITY_NEEDS), type "string", default "—";
        /// Process type of the static identity.
        pub process_type: &'a str = or(identity_value, DEFAULT_PROCESS_TYPE), type "string";
        /// **Static identity.** All three required together.
        pub org_guid: &'a str = need(identity_value, IDENTITY_NEEDS), type "string", default "—";
        /// **Static identity.** All three required together.
        pub space_guid: &'a str = need(identity_value, IDENTITY_NEEDS), type "string", default "—";
    }
}

const IDENTITY_NEEDS: &str =
    "add it: an identity needs app_guid, org_guid and space_guid (or use identity_from / hosts \
     instead of a static identity)";

filter_common::config_object! {
    /// The document's fields but the static identity's ([`IdentityFields`]):
    /// [`Config`] is compiled from them.
    pub struct Fields {
        /// `strip_only` removes the four headers and sets nothing (no identity source allowed).
        pub mode: Mode = or(Mode::read, Mode::Stamp), type Mode::type_text();
        /// Rename any of `app_guid`, `process_type`, `org_guid`, `space_guid` (for example
        /// `{"app_guid": "X-App-Guid"}`). Names must be valid header names, distinct once case
        /// is ignored and `_` and `-` are treated alike, and none the filter could break a
        /// message with (see [Hostile input](#hostile-input)).
        pub header_names: HeaderNames = or(compile_header_names, HeaderNames::default()),
            type "object", default "the four CF names";
        /// **Identity from pod labels.** Reads the Envoy node metadata `LABELS` (Istio copies
        /// the pod's labels there), keys below. Read once when the plugin loads, through the
        /// `xds.node` property path and the older `node` path, so Envoy 1.36 and newer work.
        pub identity_from: Option<IdentityFrom> = get(IdentityFrom::read),
            type IdentityFrom::type_text(), default "—";
        /// Only with `node_labels`: the label names to read, any of `app_guid`,
        /// `process_type`, `org_guid`, `space_guid`. Defaults: `cloudfoundry.org/app_guid`,
        /// `cloudfoundry.org/process_type`, `cloudfoundry.org/org_guid`,
        /// `cloudfoundry.org/space_guid`. A missing process-type label means `web`.
        pub label_keys: Option<ByPart<String>> =
            get(|f| four_strings(f, Part::default_label_key, true)),
            type "object", default "see below";
        /// **Identity per host**, for an ingress gateway: `{"<fqdn>": {"app_guid",
        /// "process_type"?, "org_guid", "space_guid"}}`. Matched against `:authority`
        /// case-insensitively, with a numeric port and one trailing dot removed, exactly as
        /// Envoy's virtual hosts match with `strip_any_host_port` and `strip_trailing_host_dot`
        /// (an empty or non-numeric port stays part of the host, so it matches nothing). A key
        /// may be a wildcard `*.apps.example.com` (one or more labels); exact names win over
        /// wildcards, longer wildcards over shorter. Keys must be host names without a port and
        /// appear once (case-insensitively); the table must not be empty.
        pub hosts: Option<(HostTable, Vec<Identity>)> = get(compile_hosts),
            type "object", default "—";
        /// Also set the four headers on the response (the app's own copies are replaced), or
        /// strip them when the request had no identity.
        pub response_headers: bool = flag(false), type "bool";
        /// When no identity applies (unknown host, pod labels missing): `pass` strips the
        /// headers and forwards the request; `reject` answers `503` with body `no CF app
        /// identity for this request`.
        pub on_missing_identity: OnMissingIdentity =
            or(OnMissingIdentity::read, OnMissingIdentity::Pass),
            type OnMissingIdentity::type_text();
    }
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
        keys: ByPart<String>,
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
        Config::from_value(&parse_document(raw)?)
    }

    /// From a document already parsed (and checked for repeated keys): the
    /// suite's part for this filter.
    pub fn from_value(document: &Value) -> Result<Config, ConfigError> {
        let keys = [Fields::FIELDS, IdentityFields::FIELDS].concat();
        let top = root(document, &keys)?;
        let f = Fields::from_object(&top)?;
        let static_field = IdentityFields::FIELDS.iter().copied().find(|k| top.has(k));
        let given: Vec<&str> = [
            static_field,
            f.identity_from.map(|_| "identity_from"),
            f.hosts.as_ref().map(|_| "hosts"),
        ]
        .into_iter()
        .flatten()
        .collect();
        let node_labels = f.identity_from == Some(IdentityFrom::NodeLabels);
        if f.label_keys.is_some() && !node_labels {
            return Err(ConfigError::new(
                "label_keys",
                "only applies with identity_from: node_labels",
                "remove label_keys or set \"identity_from\": \"node_labels\"",
            ));
        }
        let mut identities = Vec::new();
        let source = match (f.mode, given.as_slice()) {
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
            (Mode::Stamp, [_]) => match (f.label_keys, f.hosts) {
                (keys, _) if node_labels => Source::NodeLabels {
                    keys: keys.unwrap_or_else(|| ByPart::named(Part::default_label_key)),
                    resolved: None,
                },
                (_, Some((table, hosts))) => {
                    identities = hosts;
                    Source::Hosts(table)
                }
                (_, None) => {
                    identities.push(identity(&top)?);
                    Source::Static
                }
            },
        };
        Ok(Config {
            names: f.header_names,
            identities,
            source,
            response_headers: f.response_headers,
            on_missing_identity: f.on_missing_identity,
        })
    }

    /// The pod label keys to read, while node labels are still unresolved.
    pub fn pending_label_keys(&self) -> Option<&ByPart<String>> {
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
        let values = ByPart::from_fn(|part| {
            let key = &keys[part];
            let problem = match label(key) {
                Some(v) if is_valid_header_value(&v) => return v,
                // A pod without a process type label runs the web process.
                None if part == Part::ProcessType => return DEFAULT_PROCESS_TYPE.to_string(),
                Some(_) => "not a valid header value",
                None => "missing",
            };
            problems.push(format!("{key} ({problem})"));
            String::new()
        });
        if !problems.is_empty() {
            return Err(problems);
        }
        *resolved = Some(self.identities.len());
        self.identities.push(values);
        self.identities.last().ok_or_else(Vec::new)
    }

    /// Whether the request's `:authority` decides its identity.
    pub fn needs_authority(&self) -> bool {
        matches!(self.source, Source::Hosts(_))
    }
}

/// `{"app_guid": ..., "process_type": ..., "org_guid": ..., "space_guid": ...}`
/// overrides over `defaults`; values must not be empty.
fn four_strings(
    field: Field,
    defaults: fn(Part) -> &'static str,
    nonempty: bool,
) -> Result<ByPart<String>, ConfigError> {
    let o = field.object(&Part::FIELDS)?;
    ByPart::try_from_fn(|part| {
        let name = part.field();
        match o.string(name)? {
            Some(value) if nonempty && value.is_empty() => Err(ConfigError::new(
                join(o.path(), name),
                "is empty",
                "name the value to use",
            )),
            Some(value) => Ok(value),
            None => Ok(defaults(part).to_string()),
        }
    })
}

fn compile_header_names(field: Field) -> Result<HeaderNames, ConfigError> {
    let mut given = four_strings(field, Part::default_header, false)?;
    for part in Part::ALL {
        let name = &given[part];
        let field = join(field.path, part.field());
        // Strip-only mode removes the header it names, which for a framing
        // header changes the message as much as writing it.
        if let Some(problem) = forbidden_output_header(name) {
            return Err(ConfigError::new(
                field,
                format!("{name:?} {problem}: cf_headers writes and removes this header"),
                "name a header only the app reads, of letters, digits and '-' (for example \"CF-App-Id\")",
            ));
        }
        let mut earlier_parts = Part::ALL.into_iter().take_while(|p| *p != part);
        if let Some(earlier) = earlier_parts.find(|p| same_header_name(&given[*p], name)) {
            return Err(ConfigError::new(
                field,
                format!(
                    "{name:?} is the same header as {:?} ({}) once case is ignored and '_' and '-' \
                     are treated alike, as CGI-style frameworks (WSGI, Rack, PHP) read them",
                    given[earlier].to_ascii_lowercase(),
                    earlier.field()
                ),
                "give each value its own header name",
            ));
        }
    }
    for name in given.as_mut_slice() {
        name.make_ascii_lowercase();
    }
    Ok(HeaderNames(given))
}

/// A value of an identity: sent as a header value.
fn identity_value<'a>(f: Field<'_, 'a>) -> Result<&'a str, ConfigError> {
    let value = f.str()?;
    if !is_valid_header_value(value) {
        return Err(ConfigError::new(
            f.path,
            format!("{value:?} cannot be sent as a header value"),
            "use a non-empty value of visible ASCII characters, without surrounding spaces",
        ));
    }
    Ok(value)
}

/// The identity `o` gives: the top level's static one, or a host's.
fn identity(o: &Object) -> Result<Identity, ConfigError> {
    let f = IdentityFields::from_object(o)?;
    let mut values = [f.app_guid, f.process_type, f.org_guid, f.space_guid].into_iter();
    Ok(ByPart::from_fn(|_| {
        values.next().unwrap_or_default().to_string()
    }))
}

fn compile_hosts(field: Field) -> Result<(HostTable, Vec<Identity>), ConfigError> {
    let entries = field.entries()?;
    if entries.is_empty() {
        return Err(ConfigError::new(
            "hosts",
            "is empty, so no request could be stamped",
            "add at least one \"<fqdn>\": {identity} entry",
        ));
    }
    let mut table = HostTable::default();
    let mut identities = Vec::new();
    for (host, value) in entries {
        let path = join(field.path, host);
        let entry = Field { path: &path, value }.object(IdentityFields::FIELDS)?;
        identities.push(identity(&entry)?);
        table.insert(host, identities.len() - 1).map_err(|problem| {
            ConfigError::new(
                path.clone(),
                problem,
                "use a DNS name such as \"app.example.com\" or \"*.apps.example.com\", without port, once",
            )
        })?;
    }
    Ok((table, identities))
}
