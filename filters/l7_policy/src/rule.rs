//! One compiled rule and how it matches a request. Cilium's `PortRuleHTTP`
//! semantics: every field given must match (AND); regular expressions match
//! the whole value; a rule with no fields matches everything.

use crate::config::{
    caller, header_matches, header_requirements, host_regex, pattern, principal, string, string_map,
};
use crate::pattern::Pattern;
use filter_common::header::pairs::HeaderMap;
use filter_common::peer::label;
use filter_common::peer::spiffe::namespace_and_service_account;
use filter_common::predicate::{FoldedRegex, RegexLimits};
use regex_lite::Regex;

/// A request as the rules see it. Header names are lowercase (as Envoy holds
/// them); values are the raw bytes, never trimmed.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a [u8],
    /// `:path`, with or without the query as configured.
    pub path: &'a [u8],
    /// The host with any port and trailing dot removed, lowercase.
    pub host: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub caller: &'a Caller,
    pub repeated: Repeated,
}

filter_common::config_choice! {
    /// How a header that appears several times is matched.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum Repeated {
        /// The values joined with `,` must match as one (Envoy's header matching
        /// up to 1.36 and since CVE-2020-25017: no value can be smuggled in
        /// beside another).
        #[default]
        Joined = "joined",
        /// Any one value may match (Envoy 1.40's header matching).
        AnyValue = "any_value",
    }
}

/// Who is calling, as the connection and the peer-metadata filter say.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// The URI SAN of the mTLS peer certificate.
    pub principal: Option<String>,
    pub namespace: Option<String>,
    pub workload: Option<String>,
    /// By name, each once ([`filter_common::peer::labels_by_name`]).
    pub labels: Vec<(String, String)>,
    /// The service account the caller's metadata claims.
    pub service_account: Option<String>,
    /// The peer-metadata filter verified the claim against the certificate:
    /// its namespace, and its service account when it named one.
    pub verified: bool,
    /// The workload and labels the rules see are proven for this request:
    /// bound to the certificate by the `principals` table, or (with
    /// `trust_claimed_labels`) claimed by a caller whose certificate proves
    /// the claim's namespace and service account. Set by `Config::bind`.
    pub attested: bool,
}

filter_common::config_object! {
    /// What the `principals` table binds to one certificate identity.
    #[derive(Debug)]
    pub struct Binding {
        /// the workload name the certificate stands for
        pub workload: Option<String> = get(string), type "string";
        /// labels the certificate stands for, by name (each once: the object's order)
        pub labels: Vec<(String, String)> = or(string_map, Vec::new()), type "object",
            default "`{}`";
    }
}

impl Caller {
    /// The certificate proves the claim's namespace (`verified`) and the
    /// claim names the certificate's service account.
    pub fn service_account_proven(&self) -> bool {
        self.verified
            && match (
                &self.service_account,
                self.principal
                    .as_deref()
                    .and_then(namespace_and_service_account),
            ) {
                (Some(claimed), Some((_, sa))) => claimed == sa,
                _ => false,
            }
    }
}

#[derive(Debug)]
pub enum Text {
    Exact(String),
    Regex(Regex),
}

impl Text {
    fn matches(&self, value: &str) -> bool {
        match self {
            Text::Exact(s) => s == value,
            Text::Regex(r) => r.is_match(value),
        }
    }
}

/// A `headers` entry: `"Name"` (present) or `"Name: value"` (exact).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderRequirement {
    pub name: String,
    pub value: Option<Vec<u8>>,
}

filter_common::config_choice! {
    /// What a `headerMatches` entry does when the header does not match.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Mismatch {
        /// The rule still matches; the mismatch is logged.
        Log = "LOG",
        /// The rule still matches; the header is added with the value.
        Add = "ADD",
        /// The rule still matches; the header is removed.
        Delete = "DELETE",
        /// The rule still matches; the header is set to the value.
        Replace = "REPLACE",
    }
}

/// A `headerMatches` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderMatch {
    pub name: String,
    /// `None`: the header must be present.
    pub value: Option<Vec<u8>>,
    /// `None`: a mismatch fails the rule.
    pub mismatch: Option<Mismatch>,
}

/// What a matching rule asks to do about its `headerMatches` mismatches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fix {
    pub action: Mismatch,
    pub name: String,
    pub value: Option<Vec<u8>>,
}

filter_common::config_object! {
    /// The caller a rule requires (Cilium's `fromEndpoints`, at L7).
    #[derive(Debug, Default)]
    pub struct From(limits: RegexLimits) {
        /// `{"exact": ...}` or `{"regex": ...}` on the URI SAN of the mTLS peer certificate
        pub principal: Option<Text> = get(|f| principal(f, limits)), type "object";
        /// the caller's namespace, as the peer-metadata filter published it
        /// (`wasm.peer_namespace`)
        pub namespace: Option<String> = get(string), type "string";
        /// the caller's workload name: from the `principals` table for its certificate, else
        /// claimed (`wasm.peer_workload`) and counted only as below
        pub workload: Option<String> = get(string), type "string";
        /// labels that must each equal the caller's, by name (each once: the object's order):
        /// from the `principals` table for its certificate, else claimed (`wasm.peer_labels`)
        /// and counted only as below
        pub labels: Vec<(String, String)> = or(string_map, Vec::new()), type "object",
            default "`{}`";
        /// accept peer metadata that peer_metadata did not verify against the certificate,
        /// and claimed workload and labels that nothing attests
        pub allow_unverified: bool = flag(false), type "bool";
    }
}

impl From {
    fn matches(&self, caller: &Caller) -> bool {
        if let Some(p) = &self.principal {
            if !caller.principal.as_deref().is_some_and(|c| p.matches(c)) {
                return false;
            }
        }
        // Attested workload and labels are bound to the certificate, or
        // claimed with a verified namespace and service account.
        let needs_claims = self.workload.is_some() || !self.labels.is_empty();
        if (self.namespace.is_some() && !caller.verified || needs_claims && !caller.attested)
            && !self.allow_unverified
        {
            return false;
        }
        let same = |want: &Option<String>, have: &Option<String>| {
            want.as_ref().map_or(true, |w| have.as_ref() == Some(w))
        };
        same(&self.namespace, &caller.namespace)
            && same(&self.workload, &caller.workload)
            && self
                .labels
                .iter()
                .all(|(k, v)| label(&caller.labels, k) == Some(v.as_str()))
    }
}

filter_common::config_object! {
    /// One rule: every field it has must match.
    #[derive(Debug, Default)]
    pub struct Rule(limits: RegexLimits) {
        /// regular expression on the method, whole value, case-sensitive (`GET` never matches
        /// `get`)
        pub method: Option<Pattern> = get(|f| pattern(f, limits)), type "regex";
        /// regular expression on `:path`, whole value, **including the query** (Cilium's
        /// behaviour): `/status` does not match `/status/200` nor `/status?x=1`.
        /// `path_includes_query: false` matches the path without the query
        pub path: Option<Pattern> = get(|f| pattern(f, limits)), type "regex";
        /// regular expression on the host, case-insensitive, with any port and a trailing dot
        /// removed first (`Deathstar.default:8080.` → `deathstar.default`)
        pub host: Option<FoldedRegex> = get(|f| host_regex(f, limits)), type "regex";
        /// list of `"Name"` (present) or `"Name: value"` (exact value)
        pub headers: Vec<HeaderRequirement> = or(header_requirements, Vec::new()),
            type "list of strings", default "`[]`";
        /// list of `{"name", "value", "mismatch"}`: the header must equal `value` (or be
        /// present without `value`); on a mismatch, without `mismatch` the rule fails; with
        /// `LOG` the rule still matches and the mismatch is logged, `ADD` adds `name: value`,
        /// `DELETE` removes the header, `REPLACE` sets it to `value`. `secret` (values from
        /// Kubernetes secrets) is refused
        pub header_matches as "headerMatches": Vec<HeaderMatch> = or(header_matches, Vec::new()),
            type "list of objects", default "`[]`";
        /// the caller (Cilium's `fromEndpoints`, at L7), below
        pub from: Option<From> = get(|f| caller(f, limits)), type "object";
    }
}

/// Whether header `name` equals `want` (or, without `want`, is present);
/// `None` when it is absent. Every value is considered, per `repeated`.
fn header_is(request: &Request, name: &str, want: Option<&[u8]>) -> Option<bool> {
    let mut values = request.headers.values(name).peekable();
    values.peek()?;
    let Some(want) = want else {
        return Some(true);
    };
    Some(match request.repeated {
        Repeated::AnyValue => values.any(|v| v == want),
        Repeated::Joined => {
            let mut joined = Vec::new();
            for (i, v) in values.enumerate() {
                if i > 0 {
                    joined.push(b',');
                }
                joined.extend_from_slice(v);
            }
            joined == want
        }
    })
}

fn pattern_matches(pattern: &Option<Pattern>, value: &[u8]) -> bool {
    pattern.as_ref().map_or(true, |p| p.matches(value))
}

/// The first field of a rule that a request does not meet, in the order
/// they are tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Miss {
    Method,
    Path,
    Host,
    /// `headers[i]`.
    Header(usize),
    From,
    /// `headerMatches[i]`, a mismatch without an action.
    HeaderMatch(usize),
}

impl Rule {
    /// `Some(fixes)` when the request matches this rule (the fixes its
    /// `headerMatches` mismatches ask for), `None` when it does not.
    pub fn matches(&self, request: &Request) -> Option<Vec<Fix>> {
        self.explain(request).ok()
    }

    /// Like [`Rule::matches`], naming the field that failed.
    pub fn explain(&self, request: &Request) -> Result<Vec<Fix>, Miss> {
        if !pattern_matches(&self.method, request.method) {
            return Err(Miss::Method);
        }
        if !pattern_matches(&self.path, request.path) {
            return Err(Miss::Path);
        }
        if let Some(host) = &self.host {
            if !request.host.is_some_and(|h| host.is_match(h)) {
                return Err(Miss::Host);
            }
        }
        for (i, required) in self.headers.iter().enumerate() {
            if header_is(request, &required.name, required.value.as_deref()) != Some(true) {
                return Err(Miss::Header(i));
            }
        }
        if let Some(from) = &self.from {
            if !from.matches(request.caller) {
                return Err(Miss::From);
            }
        }
        let mut fixes = Vec::new();
        for (i, m) in self.header_matches.iter().enumerate() {
            if header_is(request, &m.name, m.value.as_deref()) == Some(true) {
                continue;
            }
            match m.mismatch {
                None => return Err(Miss::HeaderMatch(i)),
                Some(action) => fixes.push(Fix {
                    action,
                    name: m.name.clone(),
                    value: m.value.clone(),
                }),
            }
        }
        Ok(fixes)
    }
}
