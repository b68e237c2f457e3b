//! `tap policy check`: the verdict l7_policy would give each recorded
//! request, from the filter's own core ([`Config::verdict`]), and the
//! would-be denials grouped by the rule that came nearest and the field that
//! failed it.

use crate::record::HttpRecord;
use crate::segment::{mask, requests};
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
    /// Every rule failed; this one got furthest before `Miss`.
    Nearest(usize, Miss),
}

/// The verdict on one recorded request.
#[derive(Debug, Clone)]
pub struct Checked {
    pub method: String,
    pub host: Option<String>,
    pub path: String,
    /// The rule that allows it, or why it would be denied.
    pub outcome: Result<usize, Denial>,
    /// The local reply l7_policy would send (none when allowed).
    pub status: Option<u32>,
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
        outcome,
        status,
    }
}

/// The rule whose first failing field comes latest (`Miss` is in the order
/// fields are tried); the first such rule on a tie.
fn nearest(config: &Config, observed: &Observed, caller: &l7_policy::rule::Caller) -> Denial {
    let misses = match config.misses(&observed.headers, caller) {
        Ok(m) => m,
        Err(why) => return Denial::InvalidPath(why.as_str()),
    };
    misses
        .into_iter()
        .enumerate()
        .rev()
        .max_by_key(|(_, miss)| *miss)
        .map_or(Denial::NoRules, |(i, miss)| Denial::Nearest(i, miss))
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
    if rule.from.is_some() {
        parts.push("from".into());
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
                Denial::InvalidPath(what) => format!("invalid path ({what})"),
                Denial::NoRules => "no rules".into(),
                Denial::Nearest(i, miss) => {
                    let rule = config.rules.get(*i).map(describe_rule).unwrap_or_default();
                    format!("nearest rule {i} ({rule}): {}", describe_miss(*miss))
                }
            };
            out.push_str(&format!("DENIED {}: {heading}\n", requests(group.len())));
            for c in group.iter().take(3) {
                out.push_str(&format!(
                    "    {} {} {}\n",
                    c.method,
                    c.host.as_deref().unwrap_or("-"),
                    mask(&c.path)
                ));
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

impl Checked {
    /// One line of `--json`: the prediction for record `index`.
    pub fn json(&self, index: usize) -> Value {
        let (verdict, rule, why) = match &self.outcome {
            Ok(i) => ("allowed", Some(*i), None),
            Err(Denial::InvalidPath(what)) => ("invalid_path", None, Some(what.to_string())),
            Err(Denial::NoRules) => ("denied", None, Some("no rules".to_string())),
            Err(Denial::Nearest(i, miss)) => (
                "denied",
                None,
                Some(format!("nearest rule {i}: {}", describe_miss(*miss))),
            ),
        };
        json!({
            "record": index,
            "method": self.method,
            "host": self.host,
            "path": mask(&self.path),
            "verdict": verdict,
            "rule": rule,
            "status": self.status,
            "why": why,
        })
    }
}
