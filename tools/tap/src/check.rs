//! `tap policy check`: the verdict l7_policy would give each recorded
//! request, from the filter's own core ([`Config::verdict`]), and the
//! would-be denials grouped by the rule that came nearest and the field that
//! failed it.

use crate::record::HttpRecord;
use crate::report::{mask, mask_host, requests};
use crate::terminal::visible;
use crate::traffic::Observed;
use l7_policy::config::Config;
use l7_policy::rule::{Miss, Rule};
use l7_policy::verdict::Verdict;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Why a group of requests would be denied.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Denial {
    /// The path is refused before any rule (`reject_invalid_paths`).
    InvalidPath(&'static str),
    /// The configuration has no rules.
    NoRules,
    /// No rule allows the method.
    Method,
    /// Every rule failed; this one got furthest before `Miss`.
    Nearest(usize, Miss),
}

/// The verdict on one recorded request.
#[derive(Debug, Clone)]
pub struct Checked {
    pub method: String,
    pub host: Option<String>,
    pub path: String,
    /// The caller's mTLS principal, as recorded.
    pub principal: Option<String>,
    /// The rule that allows it, or why it would be denied.
    pub outcome: Result<usize, Denial>,
    /// The local reply l7_policy would send (none when allowed).
    pub status: Option<u32>,
    /// The status the record holds: what the request got when it was
    /// recorded (a 404 of the app, a 403 of the policy then in force).
    pub recorded_status: Option<u16>,
}

pub fn check_one(config: &Config, record: &HttpRecord) -> Checked {
    let observed = Observed::of(record);
    let mut caller = observed.caller.clone();
    config.bind(&mut caller);
    let outcome = match config.verdict(&observed.headers, &caller) {
        Verdict::Allowed(i, _) => Ok(i),
        Verdict::InvalidPath(why) => Err(Denial::InvalidPath(why.as_str())),
        Verdict::Denied => Err(nearest(config, &observed, &caller)),
    };
    let status = match &outcome {
        Ok(_) => None,
        Err(Denial::InvalidPath(_)) => Some(config.invalid_path_status),
        Err(_) => Some(config.deny.status),
    };
    Checked {
        method: observed.method,
        host: observed.host,
        path: observed.path,
        principal: observed.caller.principal,
        outcome,
        status,
        recorded_status: record.status(),
    }
}

/// The rule whose first failing field comes latest (`Miss` is in the order
/// fields are tried); the first such rule on a tie. When every rule fails on
/// the method, no rule is nearer than another.
fn nearest(config: &Config, observed: &Observed, caller: &l7_policy::rule::Caller) -> Denial {
    let misses = config.misses(&observed.headers, caller);
    match misses.into_iter().rev().max_by_key(|(_, miss)| *miss) {
        None => Denial::NoRules,
        Some((_, Miss::Method)) => Denial::Method,
        Some((i, miss)) => Denial::Nearest(i, miss),
    }
}

fn describe_rule(rule: &Rule) -> String {
    let mut parts = Vec::new();
    if let Some(m) = &rule.method {
        parts.push(format!("method {}", m.literal().unwrap_or("(regex)")));
    }
    if rule.path.is_some() {
        parts.push("path".into());
    }
    if rule.host.is_some() {
        parts.push("host".into());
    }
    if !rule.headers.is_empty() {
        parts.push("headers".into());
    }
    if rule.from.is_some() {
        parts.push("from".into());
    }
    if !rule.header_matches.is_empty() {
        parts.push("headerMatches".into());
    }
    parts.join(", ")
}

fn describe_miss(miss: Miss) -> String {
    match miss {
        Miss::Method => "the method differs".into(),
        Miss::Path => "the path does not match".into(),
        Miss::Host => "the host does not match".into(),
        Miss::Header(i) => format!("headers[{i}] is missing or differs"),
        Miss::From => "the caller is not the one it names".into(),
        Miss::HeaderMatch(i) => format!("headerMatches[{i}] is missing or differs"),
    }
}

/// How many requests each rule allowed, and the denials by why.
pub struct Summary {
    pub checked: usize,
    pub allowed_by: BTreeMap<usize, usize>,
    pub denied: BTreeMap<Denial, Vec<Checked>>,
}

impl Summary {
    pub fn of(checked: Vec<Checked>) -> Summary {
        let mut summary = Summary {
            checked: checked.len(),
            allowed_by: BTreeMap::new(),
            denied: BTreeMap::new(),
        };
        for c in checked {
            match &c.outcome {
                Ok(i) => *summary.allowed_by.entry(*i).or_default() += 1,
                Err(d) => summary.denied.entry(d.clone()).or_default().push(c),
            }
        }
        summary
    }

    pub fn denials(&self) -> usize {
        self.denied.values().map(Vec::len).sum()
    }

    /// The text report: totals, then each group of denials with up to three
    /// requests (secret-looking segments and query values masked), then the
    /// requests each rule allowed and the rules nothing used.
    pub fn report(&self, config: &Config) -> String {
        let denied = self.denials();
        let mut out = format!(
            "{}: {} allowed, {} would be denied\n",
            requests(self.checked),
            self.checked - denied,
            denied
        );
        for (why, group) in &self.denied {
            let heading = match why {
                Denial::Nearest(i, miss) => {
                    let rule = config.rules.get(*i).map(describe_rule).unwrap_or_default();
                    format!(
                        "nearest rule {i} ({}): {}",
                        visible(&rule),
                        describe_miss(*miss)
                    )
                }
                other => other.to_string(),
            };
            out.push_str(&format!("DENIED {}: {heading}\n", requests(group.len())));
            for c in group.iter().take(3) {
                out.push_str(&format!("    {}\n", c.request()));
            }
            if group.len() > 3 {
                out.push_str(&format!("    … and {} more\n", group.len() - 3));
            }
        }
        for i in 0..config.rules.len() {
            match self.allowed_by.get(&i) {
                Some(n) => out.push_str(&format!("rule {i}: allowed {}\n", requests(*n))),
                None => out.push_str(&format!("rule {i}: allowed none of these requests\n")),
            }
        }
        out
    }
}

impl std::fmt::Display for Denial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Denial::InvalidPath(what) => write!(f, "invalid path ({what})"),
            Denial::NoRules => write!(f, "no rules"),
            Denial::Method => write!(f, "no rule allows the method"),
            Denial::Nearest(i, miss) => write!(f, "nearest rule {i}: {}", describe_miss(*miss)),
        }
    }
}

impl Checked {
    /// `allowed`, `denied` or `invalid_path`.
    pub fn verdict(&self) -> &'static str {
        match &self.outcome {
            Ok(_) => "allowed",
            Err(Denial::InvalidPath(_)) => "invalid_path",
            Err(_) => "denied",
        }
    }

    /// The prediction in words: `allowed by rule 1`, `denied 403: no rule
    /// allows the method`, `refused 400: invalid path (dot-segment)`.
    pub fn summary(&self) -> String {
        let status = self.status.unwrap_or_default();
        match &self.outcome {
            Ok(i) => format!("allowed by rule {i}"),
            Err(why @ Denial::InvalidPath(_)) => format!("refused {status}: {why}"),
            Err(why) => format!("denied {status}: {why}"),
        }
    }

    /// The request as a report shows it: secret-looking segments and query
    /// values masked, the caller when it has a verified principal, and the
    /// status it got when it was recorded; control characters escaped.
    pub fn request(&self) -> String {
        let mut line = format!(
            "{} {} {}",
            self.method,
            self.host.as_deref().map_or("-".into(), mask_host),
            mask(&self.path)
        );
        if let Some(p) = &self.principal {
            line.push_str(&format!("  from {p}"));
        }
        match self.recorded_status {
            Some(s) => line.push_str(&format!("  (recorded {s})")),
            None => line.push_str("  (recorded without a response)"),
        }
        visible(&line)
    }

    /// One line of `--json`: the prediction for record `index`.
    pub fn json(&self, index: usize) -> Value {
        json!({
            "record": index,
            "method": self.method,
            "host": self.host.as_deref().map(mask_host),
            "path": mask(&self.path),
            "caller": self.principal,
            "verdict": self.verdict(),
            "rule": self.outcome.as_ref().ok(),
            "status": self.status,
            "recorded_status": self.recorded_status,
            "why": self.outcome.as_ref().err().map(ToString::to_string),
        })
    }
}
