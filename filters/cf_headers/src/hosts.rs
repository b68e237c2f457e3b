//! Host -> identity lookup for gateways: exact names first, then the longest
//! matching `*.suffix` wildcard, like Envoy's virtual host domains.

use filter_common::header::{canonical_host_pattern, normalize_authority};
use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub struct HostTable {
    exact: BTreeMap<String, usize>,
    /// `(".suffix", identity)`, longest suffix first.
    wildcards: Vec<(String, usize)>,
}

impl HostTable {
    /// Adds a configured host; `Err` says what is wrong with it.
    pub fn insert(&mut self, pattern: &str, identity: usize) -> Result<(), String> {
        let canonical = canonical_host_pattern(pattern)
            .ok_or_else(|| format!("{pattern:?} is not a host name"))?;
        let duplicate = || format!("{pattern:?} is listed twice (host names are case-insensitive)");
        if let Some(suffix) = canonical.strip_prefix('*') {
            if self.wildcards.iter().any(|(s, _)| s == suffix) {
                return Err(duplicate());
            }
            // After every longer or equal suffix: longest first, in config order.
            let at = self
                .wildcards
                .partition_point(|(s, _)| s.len() >= suffix.len());
            self.wildcards.insert(at, (suffix.to_string(), identity));
        } else if self.exact.insert(canonical, identity).is_some() {
            return Err(duplicate());
        }
        Ok(())
    }

    /// The identity for a request's raw `:authority`.
    pub fn lookup(&self, authority: &[u8]) -> Option<usize> {
        let host = normalize_authority(authority)?;
        if let Some(&i) = self.exact.get(&host) {
            return Some(i);
        }
        self.wildcards
            .iter()
            .find(|(suffix, _)| host.len() > suffix.len() && host.ends_with(suffix.as_str()))
            .map(|&(_, i)| i)
    }
}
