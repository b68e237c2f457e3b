//! The whole decision on one request, from its headers and its caller: what
//! the shell enforces and what `tap policy check` predicts from recorded
//! traffic, so the two cannot differ.

use crate::config::Config;
use crate::path::{self, Invalid};
use crate::rule::{Caller, Fix, Miss, Request};
use filter_common::header::normalize_authority;
use filter_common::pairs::HeaderMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Refused before any rule is tried (`reject_invalid_paths`).
    InvalidPath(Invalid),
    /// The first rule that matches, and the fixes its `headerMatches` ask for.
    Allowed(usize, Vec<Fix>),
    Denied,
}

fn value<'h>(headers: &'h HeaderMap, name: &str) -> &'h [u8] {
    headers.first(name).unwrap_or_default()
}

impl Config {
    /// The verdict on a request with these headers (names lowercase,
    /// pseudo-headers included) from `caller`, already bound
    /// ([`Config::bind`]). Dry-run is the shell's business: this is what
    /// would be enforced.
    pub fn verdict(&self, headers: &HeaderMap, caller: &Caller) -> Verdict {
        match self.with_request(headers, caller, |r| self.decide(r)) {
            Err(why) => Verdict::InvalidPath(why),
            Ok(Some((i, fixes))) => Verdict::Allowed(i, fixes),
            Ok(None) => Verdict::Denied,
        }
    }

    /// Why each rule does not match the request (for a denied request: every
    /// rule), or why its path is refused.
    pub fn misses(&self, headers: &HeaderMap, caller: &Caller) -> Result<Vec<Miss>, Invalid> {
        self.with_request(headers, caller, |r| {
            self.rules
                .iter()
                .filter_map(|rule| rule.explain(r).err())
                .collect()
        })
    }

    /// `f` on the request as the rules see it, once its path passed the check.
    fn with_request<R>(
        &self,
        headers: &HeaderMap,
        caller: &Caller,
        f: impl FnOnce(&Request) -> R,
    ) -> Result<R, Invalid> {
        let raw_path = value(headers, ":path");
        if self.reject_invalid_paths {
            path::check_with(raw_path, self.allow_in_paths)?;
        }
        let host = self
            .needs_host
            .then(|| normalize_authority(value(headers, ":authority")))
            .flatten();
        Ok(f(&Request {
            method: value(headers, ":method"),
            path: if self.path_includes_query {
                raw_path
            } else {
                path::without_query(raw_path)
            },
            host: host.as_deref(),
            headers,
            caller,
            repeated: self.repeated_headers,
        }))
    }
}
