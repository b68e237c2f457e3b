//! The plugin configuration: parsed once per VM, validated whole, then compiled
//! into the form requests are served from.

use crate::hosts::HostTable;
use crate::identity::{ByPart, HeaderNames, Identity, Part, DEFAULT_PROCESS_TYPE};
use filter_common::config::{join, parse_document, root, ConfigError, Field, Object, Value};
use filter_common::header::{forbidden_output_header, is_valid_header_value, same_header_name};

/// What happens to a request no identity applies to. Its CF headers are
/// stripped either way.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum OnMissingIdentity {
    #[default]
    Pass,
    Reject,
}

const TOP_FIELDS: [&str; 11] = [
    "mode",
    "app_guid",
    "process_type",
    "org_guid",
    "space_guid",
    "identity_from",
    "label_keys",
    "hosts",
    "header_names",
    "response_headers",
    "on_missing_identity",
];

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
        let top = root(document, &TOP_FIELDS)?;
        let strip_only =
            top.get("mode", |f| f.choice(&["stamp", "strip_only"]))? == Some("strip_only");
        let names = compile_header_names(&top)?;
        let static_field = ["app_guid", "process_type", "org_guid", "space_guid"]
            .into_iter()
            .find(|f| top.has(f));
        let given: Vec<&str> = [
            static_field,
            top.has("identity_from").then_some("identity_from"),
            top.has("hosts").then_some("hosts"),
        ]
        .into_iter()
        .flatten()
        .collect();
        let node_labels = top
            .get("identity_from", |f| f.choice(&["node_labels"]))?
            .is_some();
        if top.has("label_keys") && !node_labels {
            return Err(ConfigError::new(
                "label_keys",
                "only applies with identity_from: node_labels",
                "remove label_keys or set \"identity_from\": \"node_labels\"",
            ));
        }
        let mut identities = Vec::new();
        let source = match (strip_only, given.as_slice()) {
            (true, []) => Source::StripOnly,
            (true, [field, ..]) => {
                return Err(ConfigError::new(
                    *field,
                    "mode strip_only sets no identity",
                    "remove the identity fields, or remove \"mode\": \"strip_only\" to stamp",
                ))
            }
            (false, []) => {
                return Err(ConfigError::new(
                    "",
                    "no identity source is configured",
                    "give app_guid, org_guid and space_guid (static), \"identity_from\": \"node_labels\", \
                     or a \"hosts\" table; or set \"mode\": \"strip_only\"",
                ))
            }
            (false, [first, second, ..]) => {
                return Err(ConfigError::new(
                    *second,
                    format!("conflicts with `{first}`: a configuration has one identity source"),
                    "keep either the static guids, identity_from, or hosts",
                ))
            }
            (false, [_]) if node_labels => {
                let keys =
                    top.get("label_keys", |f| four_strings(f, Part::default_label_key, true))?;
                Source::NodeLabels {
                    keys: keys.unwrap_or_else(|| ByPart::named(Part::default_label_key)),
                    resolved: None,
                }
            }
            (false, [_]) if top.has("hosts") => {
                Source::Hosts(top.need("hosts", |f| compile_hosts(f, &mut identities))?)
            }
            (false, [_]) => {
                identities.push(compile_identity(&top)?);
                Source::Static
            }
        };
        Ok(Config {
            names,
            identities,
            source,
            response_headers: top.flag("response_headers", false)?,
            on_missing_identity: match top
                .get("on_missing_identity", |f| f.choice(&["pass", "reject"]))?
            {
                Some("reject") => OnMissingIdentity::Reject,
                _ => OnMissingIdentity::Pass,
            },
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

fn compile_header_names(top: &Object) -> Result<HeaderNames, ConfigError> {
    let given = top.get("header_names", |f| {
        four_strings(f, Part::default_header, false)
    })?;
    let Some(mut given) = given else {
        return Ok(HeaderNames::default());
    };
    for part in Part::ALL {
        let name = &given[part];
        let field = join("header_names", part.field());
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

/// An identity from the four fields of `o` (process type optional).
fn compile_identity(o: &Object) -> Result<Identity, ConfigError> {
    ByPart::try_from_fn(|part| {
        let name = part.field();
        let value = match o.string(name)? {
            Some(v) => v,
            None if part == Part::ProcessType => DEFAULT_PROCESS_TYPE.to_string(),
            None => {
                return Err(ConfigError::new(
                    join(o.path(), name),
                    "is missing; an identity needs app_guid, org_guid and space_guid",
                    "add it (or use identity_from / hosts instead of a static identity)",
                ))
            }
        };
        if !is_valid_header_value(&value) {
            return Err(ConfigError::new(
                join(o.path(), name),
                format!("{value:?} cannot be sent as a header value"),
                "use a non-empty value of visible ASCII characters, without surrounding spaces",
            ));
        }
        Ok(value)
    })
}

fn compile_hosts(field: Field, identities: &mut Vec<Identity>) -> Result<HostTable, ConfigError> {
    let entries = field.entries()?;
    if entries.is_empty() {
        return Err(ConfigError::new(
            "hosts",
            "is empty, so no request could be stamped",
            "add at least one \"<fqdn>\": {identity} entry",
        ));
    }
    let mut table = HostTable::default();
    for (host, value) in entries {
        let path = join(field.path, host);
        let entry = Field { path: &path, value }.object(&Part::FIELDS)?;
        identities.push(compile_identity(&entry)?);
        table.insert(host, identities.len() - 1).map_err(|problem| {
            ConfigError::new(
                path.clone(),
                problem,
                "use a DNS name such as \"app.example.com\" or \"*.apps.example.com\", without port, once",
            )
        })?;
    }
    Ok(table)
}
