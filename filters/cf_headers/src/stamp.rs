//! The per-request decision, free of any host call so it can be tested natively.

use crate::config::{Config, OnMissingIdentity, Source};
use filter_common::header::{copies, Copies};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Replace every copy of the four headers with the identity at this index.
    Stamp(usize),
    /// `mode: strip_only`: remove every copy of the four headers.
    Strip,
    /// No identity applies: remove the headers and pass the request on.
    Unidentified,
    /// No identity applies: remove the headers and answer 503.
    Reject,
}

impl Config {
    /// Decides what to do with a request, given its raw `:authority`.
    pub fn verdict(&self, authority: Option<&[u8]>) -> Verdict {
        let identity = match &self.source {
            Source::StripOnly => return Verdict::Strip,
            Source::Static => Some(0),
            Source::NodeLabels { resolved, .. } => *resolved,
            Source::Hosts(table) => authority.and_then(|a| table.lookup(a)),
        };
        match (identity, self.on_missing_identity) {
            (Some(i), _) => Verdict::Stamp(i),
            (None, OnMissingIdentity::Pass) => Verdict::Unidentified,
            (None, OnMissingIdentity::Reject) => Verdict::Reject,
        }
    }

    /// The client's copies of the four headers among `names` (a request's
    /// header or trailer names): every line whose name is a configured one
    /// in any case, or with `_` for `-`.
    pub fn spoofed<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Copies {
        copies(self.names.0.as_slice(), names)
    }
}
