//! The whole decision on one request, from its headers and its caller: what
//! the shell enforces and what `tap policy check` predicts from recorded
//! traffic, so the two cannot differ.

use crate::config::Config;
use crate::path::{self, Invalid};
use crate::rule::{Caller, Fix, Miss, Request};
use filter_common::header::normalize_authority;
use filter_common::header::pairs::HeaderMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Refused before any rule is tried (`reject_invalid_paths`).
    InvalidPath(Invalid),
    /// The first rule that matches, and the fixes its `headerMatches` ask for.
    Allowed(usize, Vec<Fix>),
    Denied,
}

impl Verdict {
    /// The verdict as filter state `wasm.l7_verdict` records it (`allowed`,
    /// `denied`, `invalid_path`); a denial in dry-run mode, which lets the
    /// request through, is `dry_run_denied`.
    pub fn as_str(&self, dry_run: bool) -> &'static str {
        match self {
            Verdict::InvalidPath(_) => "invalid_path",
            Verdict::Allowed(..) => "allowed",
            Verdict::Denied if dry_run => "dry_run_denied",
            Verdict::Denied => "denied",
        }
    }
}

/// The first value of header `name`, empty when it is absent.
pub(crate) fn value<'h>(headers: &'h HeaderMap, name: &str) -> &'h [u8] {
    headers.first(name).unwrap_or_default()
}

impl Config {
    /// The verdict on a request with these headers (names lowercase,
    /// pseudo-headers included) from `caller`, already bound
    /// ([`Config::bind`]). Dry-run is the shell's business: this is what
    /// would be enforced.
    pub fn verdict(&self, headers: &HeaderMap, caller: &Caller) -> Verdict {
        if let Err(why) = self.check_path(headers) {
            return Verdict::InvalidPath(why);
        }
        match self.decide_headers(headers, caller) {
            Some((i, fixes)) => Verdict::Allowed(i, fixes),
            None => Verdict::Denied,
        }
    }

    /// The path check that comes before any rule (`reject_invalid_paths`).
    /// The shell runs it before it reads the caller, so a refused path costs
    /// no identity lookups.
    pub fn check_path(&self, headers: &HeaderMap) -> Result<(), Invalid> {
        if self.reject_invalid_paths {
            path::check_with(value(headers, ":path"), self.allow_in_paths)?;
        }
        Ok(())
    }

    /// The rules' decision on a request whose path passed [`Config::check_path`].
    pub fn decide_headers(
        &self,
        headers: &HeaderMap,
        caller: &Caller,
    ) -> Option<(usize, Vec<Fix>)> {
        self.with_request(headers, caller, |r| self.decide(r))
    }

    /// Each rule the request does not match, and the first field that fails
    /// it (for a denied request: every rule, in order).
    pub fn misses(&self, headers: &HeaderMap, caller: &Caller) -> Vec<(usize, Miss)> {
        self.with_request(headers, caller, |r| {
            self.rules
                .iter()
                .enumerate()
                .filter_map(|(i, rule)| Some((i, rule.explain(r).err()?)))
                .collect()
        })
    }

    /// `f` on the request as the rules see it.
    fn with_request<R>(
        &self,
        headers: &HeaderMap,
        caller: &Caller,
        f: impl FnOnce(&Request) -> R,
    ) -> R {
        let raw_path = value(headers, ":path");
        let host = self
            .needs_host
            .then(|| normalize_authority(value(headers, ":authority")))
            .flatten();
        f(&Request {
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
        })
    }
}
