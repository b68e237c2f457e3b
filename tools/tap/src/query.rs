//! The query part of a suggested rule: the parameter names seen, never
//! their values.

use crate::segment::{literal_or, looks_secret};
use std::collections::BTreeSet;

/// The parameter names of a query (`a=1&b&c=` gives `a`, `b`, `c`).
pub fn names(query: &str) -> impl Iterator<Item = &str> {
    query
        .split('&')
        .map(|pair| pair.split_once('=').map_or(pair, |(name, _)| name))
}

/// A parameter name as a report shows it.
pub fn shown_name(name: &str) -> &str {
    if looks_secret(name) {
        "{token}"
    } else {
        name
    }
}

/// The parameter names a rule's requests carried in their queries (never
/// the values), and whether any had a query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pub names: BTreeSet<String>,
    pub with: bool,
}

impl Query {
    pub fn of(query: Option<&str>) -> Query {
        Query {
            names: query
                .into_iter()
                .flat_map(names)
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .collect(),
            with: query.is_some(),
        }
    }

    pub fn add(&mut self, other: Query) {
        self.names.extend(other.names);
        self.with |= other.with;
    }

    /// What follows the path in the regex: nothing when no request had a
    /// query; else an optional query of `&`-separated parameters with the
    /// names seen (a secret-looking name as any name) and any value, in any
    /// order. Optional, and any subset: leaving parameters out asks for no
    /// more. A name is never empty (`?=x` is left out by `suggest`).
    pub fn regex(&self) -> String {
        if !self.with {
            return String::new();
        }
        // Only empty queries (`/p?`) were seen: `(?:)` would admit a
        // parameter without a name.
        if self.names.is_empty() {
            return "(?:\\?)?".into();
        }
        let names: BTreeSet<String> = self.names.iter().map(|n| literal_or(n, "[^&=]+")).collect();
        let names: Vec<String> = names.into_iter().collect();
        let parameter = format!("(?:{})(?:=[^&]*)?", names.join("|"));
        format!("(?:\\?{parameter}(?:&{parameter})*)?")
    }

    /// `[?page=…&size=…]` for a report.
    pub fn shown(&self) -> String {
        if !self.with {
            return String::new();
        }
        let names: Vec<String> = self
            .names
            .iter()
            .map(|n| format!("{}=…", shown_name(n)))
            .collect();
        format!("[?{}]", names.join("&"))
    }
}
