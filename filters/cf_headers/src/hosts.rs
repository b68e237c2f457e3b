//! Host -> identity lookup for gateways: exact names first, then the longest
//! matching `*.suffix` wildcard, like Envoy's virtual host domains.

use filter_common::header::{canonical_host_pattern, normalize_authority};
use std::collections::HashMap;

#[derive(Debug, Default)]
pub struct HostTable {
    exact: HashMap<String, usize>,
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
            self.wildcards.push((suffix.to_string(), identity));
            self.wildcards
                .sort_by_key(|(suffix, _)| std::cmp::Reverse(suffix.len()));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> HostTable {
        let mut t = HostTable::default();
        t.insert("App.Example.com", 0).unwrap();
        t.insert("*.example.com", 1).unwrap();
        t.insert("*.deep.example.com", 2).unwrap();
        t.insert("[::1]", 3).unwrap();
        t
    }

    #[test]
    fn exact_beats_wildcard_and_longest_wildcard_wins() {
        let t = table();
        assert_eq!(t.lookup(b"app.example.com"), Some(0));
        assert_eq!(t.lookup(b"APP.EXAMPLE.COM:8443"), Some(0));
        assert_eq!(t.lookup(b"app.example.com."), Some(0));
        assert_eq!(t.lookup(b"other.example.com"), Some(1));
        assert_eq!(t.lookup(b"a.b.example.com"), Some(1));
        assert_eq!(t.lookup(b"x.deep.example.com"), Some(2));
        assert_eq!(t.lookup(b"[::1]:80"), Some(3));
    }

    #[test]
    fn near_misses_do_not_match() {
        let t = table();
        for miss in [
            &b"example.com"[..],
            b".example.com",
            b"app.example.com.evil",
            b"appexample.com",
            b"",
            b"\xff.example.com",
            b"app.example.com\0",
        ] {
            assert_eq!(t.lookup(miss), None, "{:?}", String::from_utf8_lossy(miss));
        }
    }

    #[test]
    fn duplicates_are_refused() {
        let mut t = table();
        assert!(t.insert("app.example.COM", 9).is_err());
        assert!(t.insert("*.EXAMPLE.com", 9).is_err());
        assert!(t.insert("a.com:80", 9).is_err());
    }
}
