//! `tap policy suggest`: the narrowest l7_policy rules (or CiliumNetworkPolicy)
//! that allow every recorded request. Requests are grouped by caller, method
//! and host; their paths become templates segment by segment ([`classify`]),
//! and a position with more than `max_literals` distinct words becomes a
//! character class. Nothing broader is ever written, unless an
//! `--allow-prefix` asks for one.

use crate::query::Query;
use crate::record::HttpRecord;
use crate::report::mask_host;
use crate::report::requests;
use crate::segment::{class_of, classify, escape, host_regex, Segment};
use crate::traffic::Observed;
use filter_common::predicate::MAX_REGEX_LEN;
use l7_policy::path::{check_with, Allow};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone)]
pub struct Options {
    /// A position with more distinct words than this becomes a class.
    pub max_literals: usize,
    /// Paths starting with one of these are allowed as `PREFIX.*`.
    pub allow_prefixes: Vec<String>,
    /// The port a CiliumNetworkPolicy names when records carry none.
    pub port: u16,
    /// The `app` label of the endpoint a CiliumNetworkPolicy selects.
    pub app: Option<String>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            max_literals: 5,
            allow_prefixes: Vec::new(),
            port: 80,
            app: None,
        }
    }
}

/// A path rule: a segment per `/`-separated part, or an allowed prefix.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Template {
    Segments(Vec<Segment>),
    Prefix(String),
}

impl Template {
    pub fn regex(&self) -> String {
        match self {
            Template::Segments(s) => s.iter().map(Segment::regex).collect::<Vec<_>>().join("/"),
            Template::Prefix(p) => format!("{}.*", escape(p)),
        }
    }

    pub fn shown(&self) -> String {
        match self {
            Template::Segments(s) => s.iter().map(Segment::shown).collect::<Vec<_>>().join("/"),
            Template::Prefix(p) => format!("{p}…"),
        }
    }

    /// A class came from `max_literals`, or a prefix from `--allow-prefix`:
    /// the rule allows paths no template of a single observed path would.
    pub fn generalized(&self) -> bool {
        match self {
            Template::Segments(s) => s.iter().any(|s| matches!(s, Segment::Class(_))),
            Template::Prefix(_) => true,
        }
    }
}

/// Who a rule is for: the caller's mTLS principal, or anyone; its method
/// and host.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Group {
    principal: Option<String>,
    method: String,
    host: Option<Host>,
}

/// A host as a rule matches it ([`host_regex`]) and as a report shows it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Host {
    pub regex: String,
    pub shown: String,
}

impl Host {
    fn of(host: &str) -> Host {
        Host {
            regex: host_regex(host),
            shown: mask_host(host),
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Seen {
    requests: usize,
    workloads: BTreeSet<String>,
    query: Query,
    ports: BTreeSet<u16>,
}

impl Seen {
    fn add(&mut self, other: Seen) {
        self.requests += other.requests;
        self.workloads.extend(other.workloads);
        self.query.add(other.query);
        self.ports.extend(other.ports);
    }
}

/// Any query, where the names seen would make the regex longer than
/// l7_policy accepts.
const ANY_QUERY: &str = "(?:\\?[^#]*)?";

impl SuggestedRule {
    /// The `path` regex: the template, then the query (a prefix covers both).
    pub fn regex(&self) -> String {
        match &self.path {
            Template::Segments(_) => {
                let path = self.path.regex();
                let query = self.query.regex();
                if path.len() + query.len() <= MAX_REGEX_LEN {
                    path + &query
                } else {
                    path + ANY_QUERY
                }
            }
            Template::Prefix(_) => self.path.regex(),
        }
    }

    /// The rule allows requests no single recorded one's template would: a
    /// class, a prefix, or any query because the names seen were too many
    /// to list.
    pub fn generalized(&self) -> bool {
        self.path.generalized() || self.regex().ends_with(ANY_QUERY)
    }

    pub fn shown(&self) -> String {
        match &self.path {
            Template::Segments(_) => format!("{}{}", self.path.shown(), self.query.shown()),
            Template::Prefix(_) => self.path.shown(),
        }
    }
}

/// One suggested rule and what it covers.
#[derive(Debug, Clone)]
pub struct SuggestedRule {
    pub principal: Option<String>,
    pub method: String,
    pub host: Option<Host>,
    pub path: Template,
    /// Recorded requests it allows.
    pub seen: usize,
    /// The workloads these callers claimed (reported, not required).
    pub workloads: BTreeSet<String>,
    /// The queries its requests carried.
    pub query: Query,
    /// Listener ports recorded for its requests.
    pub ports: BTreeSet<u16>,
}

#[derive(Debug, Clone, Default)]
pub struct Suggestion {
    pub rules: Vec<SuggestedRule>,
    /// Requests left out, by why: paths l7_policy refuses before any rule.
    pub left_out: BTreeMap<String, usize>,
    pub requests: usize,
}

fn template(path: &str, options: &Options) -> Template {
    let prefix = options
        .allow_prefixes
        .iter()
        .filter(|p| path.starts_with(p.as_str()))
        .max_by_key(|p| p.len());
    match prefix {
        Some(p) => Template::Prefix(p.clone()),
        None => Template::Segments(path.split('/').map(classify).collect()),
    }
}

/// A literal that can join a class. The empty segment (a path's start, a
/// trailing `/`) cannot: a class matches one character or more.
fn word(segment: Option<&Segment>) -> Option<&String> {
    match segment {
        Some(Segment::Literal(w)) if !w.is_empty() => Some(w),
        _ => None,
    }
}

/// Turns the words at one position into a class where templates agree on
/// every other position and more than `max` distinct words were seen there.
fn generalize_at(
    templates: BTreeMap<Template, Seen>,
    at: usize,
    max: usize,
) -> BTreeMap<Template, Seen> {
    // (the template with a hole at `at`) -> the words seen in the hole
    let mut words: BTreeMap<Vec<Segment>, BTreeSet<String>> = BTreeMap::new();
    for t in templates.keys() {
        if let Template::Segments(s) = t {
            if let Some(w) = word(s.get(at)) {
                let mut hole = s.clone();
                hole[at] = Segment::Token;
                words.entry(hole).or_default().insert(w.clone());
            }
        }
    }
    let mut out: BTreeMap<Template, Seen> = BTreeMap::new();
    for (t, seen) in templates {
        let t = match t {
            Template::Segments(mut s) if word(s.get(at)).is_some() => {
                let mut hole = s.clone();
                hole[at] = Segment::Token;
                if let Some(w) = words.get(&hole).filter(|w| w.len() > max) {
                    s[at] = Segment::Class(class_of(w.iter().map(String::as_str)));
                }
                Template::Segments(s)
            }
            t => t,
        };
        out.entry(t).or_default().add(seen);
    }
    out
}

fn generalize(mut templates: BTreeMap<Template, Seen>, max: usize) -> BTreeMap<Template, Seen> {
    let longest = templates
        .keys()
        .map(|t| match t {
            Template::Segments(s) => s.len(),
            Template::Prefix(_) => 0,
        })
        .max()
        .unwrap_or(0);
    loop {
        let before = templates.len();
        for at in 0..longest {
            templates = generalize_at(templates, at, max);
        }
        if templates.len() == before {
            return templates;
        }
    }
}

pub fn suggest<'a>(
    records: impl IntoIterator<Item = &'a HttpRecord>,
    options: &Options,
) -> Suggestion {
    let mut groups: BTreeMap<Group, BTreeMap<Template, Seen>> = BTreeMap::new();
    let mut suggestion = Suggestion::default();
    for record in records {
        suggestion.requests += 1;
        let observed = Observed::of(record);
        if observed.method.is_empty() {
            *suggestion
                .left_out
                .entry("no :method recorded".into())
                .or_default() += 1;
            continue;
        }
        if let Err(why) = check_with(observed.path.as_bytes(), Allow::default()) {
            *suggestion
                .left_out
                .entry(format!("path refused by l7_policy ({})", why.as_str()))
                .or_default() += 1;
            continue;
        }
        let (path, query) = match observed.path.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (observed.path.as_str(), None),
        };
        let group = Group {
            principal: observed.caller.principal.clone(),
            method: observed.method.clone(),
            host: observed.host.as_deref().map(Host::of),
        };
        let seen = Seen {
            requests: 1,
            workloads: observed.caller.workload.iter().cloned().collect(),
            query: Query::of(query),
            ports: record.downstream.iter().map(|(local, _)| local.1).collect(),
        };
        groups
            .entry(group)
            .or_default()
            .entry(template(path, options))
            .or_default()
            .add(seen);
    }
    for (group, templates) in groups {
        for (path, seen) in generalize(templates, options.max_literals) {
            suggestion.rules.push(SuggestedRule {
                principal: group.principal.clone(),
                method: group.method.clone(),
                host: group.host.clone(),
                path,
                seen: seen.requests,
                workloads: seen.workloads,
                query: seen.query,
                ports: seen.ports,
            });
        }
    }
    suggestion
}

impl Suggestion {
    /// The l7_policy plugin configuration. Paths are matched with their
    /// query (l7_policy's default, and Cilium's), which [`Query::regex`]
    /// narrows to the parameter names seen.
    pub fn l7_policy(&self) -> Value {
        let rules: Vec<Value> = self
            .rules
            .iter()
            .map(|r| {
                let mut rule = Map::new();
                if let Some(p) = &r.principal {
                    rule.insert("from".into(), json!({"principal": {"exact": p}}));
                }
                rule.insert("method".into(), json!(escape(&r.method)));
                if let Some(h) = &r.host {
                    rule.insert("host".into(), json!(h.regex));
                }
                rule.insert("path".into(), json!(r.regex()));
                Value::Object(rule)
            })
            .collect();
        json!({ "rules": rules })
    }

    /// One line per rule (its index is l7_policy's `rule.<i>.hits`): the
    /// requests it covers, and what it allows in words.
    pub fn report(&self) -> String {
        let mut out = format!("{}, {} rules\n", requests(self.requests), self.rules.len());
        for (i, r) in self.rules.iter().enumerate() {
            let caller = match &r.principal {
                Some(p) => p.clone(),
                None => "any caller".into(),
            };
            let claims = if r.workloads.is_empty() {
                String::new()
            } else {
                let w: Vec<&str> = r.workloads.iter().map(String::as_str).collect();
                format!(" (claims workload {})", w.join(", "))
            };
            let wider = if r.generalized() {
                "  [generalized]"
            } else {
                ""
            };
            out.push_str(&format!(
                "rule {i}: {}  {} {}{}  from {caller}{claims}{wider}\n",
                requests(r.seen),
                r.method,
                r.host.as_ref().map_or("(any host)", |h| &h.shown),
                r.shown(),
            ));
        }
        for (why, n) in &self.left_out {
            out.push_str(&format!("left out: {}, {why}\n", requests(*n)));
        }
        out
    }
}
