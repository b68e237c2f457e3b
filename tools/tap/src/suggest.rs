//! `tap policy suggest`: the narrowest l7_policy rules (or CiliumNetworkPolicy)
//! that allow every recorded request worth learning. Requests are grouped by
//! caller, method and host; their paths become templates segment by segment
//! ([`classify`]), and a position with more than `max_literals` distinct
//! words becomes a character class. Nothing broader is ever written, unless
//! an `--allow-prefix` asks for one.
//!
//! Someone may be sending requests while traffic is recorded, so a request
//! is learned only when it proves something ([`Options::learns`]): the app
//! answered it, with a status the operator chose (2xx and 3xx by default),
//! and the stream completed. Local replies (l7_policy's 403, RBAC, a 404 of
//! Envoy's router) never are. The caller is the principal Envoy verified
//! (`peer` in the record), never a request header; requests of callers
//! without one (or records that do not say) are learned literally: no
//! character class, no `[0-9]+`, UUID or `[^/?]+` placeholder (a request
//! with a secret-looking segment is left out), unless
//! `generalize_unauthenticated` asks.

use crate::filter::in_statuses;
use crate::query::{names, Query};
use crate::record::HttpRecord;
use crate::report::mask_host;
use crate::report::requests;
use crate::segment::{class_of, classify, escape, host_regex, looks_secret, Segment};
use crate::terminal::visible;
use crate::traffic::Observed;
use filter_common::predicate::re2::check;
use filter_common::predicate::{RegexLimits, MAX_REGEX_LEN};
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
    /// Response statuses (inclusive ranges, [`parse_statuses`]) that make a
    /// request worth learning; 200-399 by default.
    pub learn_status: Vec<(u16, u16)>,
    /// Let requests without a verified caller form classes and token
    /// templates too.
    pub generalize_unauthenticated: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            max_literals: 5,
            allow_prefixes: Vec::new(),
            port: 80,
            app: None,
            learn_status: vec![(200, 399)],
            generalize_unauthenticated: false,
        }
    }
}

impl Options {
    /// Why a recorded request teaches nothing, or `None` when it is learned.
    pub fn learns(&self, record: &HttpRecord) -> Option<String> {
        if record.incomplete {
            return Some("the stream did not complete".into());
        }
        let Some(status) = record.status() else {
            return Some("no response recorded".into());
        };
        match record.from_app() {
            Some(true) => {}
            Some(false) => {
                let details = record.response_code_details.as_deref().unwrap_or("");
                return Some(format!(
                    "answered by Envoy or a filter, not the app (local reply {status}{})",
                    if details.is_empty() {
                        String::new()
                    } else {
                        format!(", {}", visible(details))
                    }
                ));
            }
            None => {
                return Some(
                    "no proof the app answered (record stream info: tap_http record_stream_info)"
                        .into(),
                )
            }
        }
        if !in_statuses(&self.learn_status, status) {
            return Some(format!("status {status} not learned (--learn-status)"));
        }
        None
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
    query: Query,
    ports: BTreeSet<u16>,
}

impl Seen {
    fn add(&mut self, other: Seen) {
        self.requests += other.requests;
        self.query.add(other.query);
        self.ports.extend(other.ports);
    }
}

/// Any query, where the names seen would make the regex longer or costlier
/// than l7_policy accepts by default.
const ANY_QUERY: &str = "(?:\\?[^#]*)?";

impl SuggestedRule {
    /// The `path` regex: the template, then the query (a prefix covers both).
    /// The names seen are listed while the regex stays within what l7_policy
    /// loads by default: 1024 bytes, and the program size and matching cost
    /// of [`RegexLimits::DEFAULT`] (each name listed is one more state a
    /// match steps through at every parameter).
    pub fn regex(&self) -> String {
        match &self.path {
            Template::Segments(_) => {
                let path = self.path.regex();
                let listed = path.clone() + &self.query.regex();
                let limits = RegexLimits::DEFAULT;
                let within = listed.len() <= MAX_REGEX_LEN
                    && check(&listed, false)
                        .is_ok_and(|s| s.size <= limits.program_size && s.cost <= limits.cost);
                if within {
                    listed
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
    /// The queries its requests carried.
    pub query: Query,
    /// Listener ports recorded for its requests.
    pub ports: BTreeSet<u16>,
}

#[derive(Debug, Clone, Default)]
pub struct Suggestion {
    pub rules: Vec<SuggestedRule>,
    /// Requests left out, by why: they prove nothing ([`Options::learns`]),
    /// or l7_policy refuses their path before any rule.
    pub left_out: BTreeMap<String, usize>,
    pub requests: usize,
}

/// How one recorded path is matched: an allowed prefix, or a template
/// segment by segment. `literal`: every segment as it is (a caller nobody
/// verified), `None` when a segment may be a secret (a token, a UUID, a
/// long number), which must neither be written nor become a placeholder.
fn template(path: &str, options: &Options, literal: bool) -> Option<Template> {
    let prefix = options
        .allow_prefixes
        .iter()
        .filter(|p| path.starts_with(p.as_str()))
        .max_by_key(|p| p.len());
    if let Some(p) = prefix {
        return Some(Template::Prefix(p.clone()));
    }
    path.split('/')
        .map(|s| match classify(s) {
            Segment::Id if literal && !looks_secret(s) => Some(Segment::Literal(s.to_string())),
            Segment::Id | Segment::Uuid | Segment::Token if literal => None,
            segment => Some(segment),
        })
        .collect::<Option<Vec<_>>>()
        .map(Template::Segments)
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
                if let Some(slot) = hole.get_mut(at) {
                    *slot = Segment::Token;
                }
                words.entry(hole).or_default().insert(w.clone());
            }
        }
    }
    let mut out: BTreeMap<Template, Seen> = BTreeMap::new();
    for (t, seen) in templates {
        let t = match t {
            Template::Segments(mut s) if word(s.get(at)).is_some() => {
                let mut hole = s.clone();
                if let Some(slot) = hole.get_mut(at) {
                    *slot = Segment::Token;
                }
                if let Some(w) = words.get(&hole).filter(|w| w.len() > max) {
                    if let Some(slot) = s.get_mut(at) {
                        *slot = Segment::Class(class_of(w.iter().map(String::as_str)));
                    }
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
        if let Some(why) = options.learns(record) {
            *suggestion.left_out.entry(why).or_default() += 1;
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
        if query.is_some_and(|q| !q.is_empty() && names(q).any(str::is_empty)) {
            // `?=x`, `?a&&b`: a rule would have to admit nameless parameters.
            *suggestion
                .left_out
                .entry("a query parameter without a name".into())
                .or_default() += 1;
            continue;
        }
        // Callers nobody verified teach only what they were served: no
        // placeholder, no class.
        let literal = observed.caller.principal.is_none() && !options.generalize_unauthenticated;
        let Some(template) = template(path, options, literal) else {
            *suggestion
                .left_out
                .entry(
                    "a secret-looking segment (token, UUID, long number) from a caller \
                     without a verified certificate (--generalize-unauthenticated to learn it)"
                        .into(),
                )
                .or_default() += 1;
            continue;
        };
        if template.regex().len() > MAX_REGEX_LEN {
            // A rule l7_policy would refuse at load.
            *suggestion
                .left_out
                .entry(
                    "a path whose rule would be longer than l7_policy's 1024-byte regex limit"
                        .into(),
                )
                .or_default() += 1;
            continue;
        }
        let group = Group {
            principal: observed.caller.principal.clone(),
            method: observed.method.clone(),
            host: observed.host.as_deref().map(Host::of),
        };
        let seen = Seen {
            requests: 1,
            query: Query::of(query),
            ports: record.downstream.iter().map(|(local, _)| local.1).collect(),
        };
        groups
            .entry(group)
            .or_default()
            .entry(template)
            .or_default()
            .add(seen);
    }
    for (group, templates) in groups {
        // No class from callers nobody verified: their words stay literal.
        let max = if group.principal.is_none() && !options.generalize_unauthenticated {
            usize::MAX
        } else {
            options.max_literals
        };
        for (path, seen) in generalize(templates, max) {
            suggestion.rules.push(SuggestedRule {
                principal: group.principal.clone(),
                method: group.method.clone(),
                host: group.host.clone(),
                path,
                seen: seen.requests,
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
                Some(p) => visible(p),
                None => "any caller".into(),
            };
            let wider = if r.generalized() {
                "  [generalized]"
            } else {
                ""
            };
            out.push_str(&format!(
                "rule {i}: {}  {} {}{}  from {caller}{wider}\n",
                requests(r.seen),
                visible(&r.method),
                visible(r.host.as_ref().map_or("(any host)", |h| &h.shown)),
                visible(&r.shown()),
            ));
        }
        for (why, n) in &self.left_out {
            out.push_str(&format!("left out: {}, {}\n", requests(*n), visible(why)));
        }
        out
    }
}
