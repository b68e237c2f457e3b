//! Which records a command works on: `--method`, `--path` (prefix),
//! `--status` (codes, classes and ranges: [`parse_statuses`]),
//! `--header name[=value]` (request or response), `--http` / `--tcp`.

use crate::record::{HttpRecord, Record};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    pub method: Option<String>,
    pub path_prefix: Option<String>,
    pub status: Option<Vec<(u16, u16)>>,
    pub header: Option<(String, Option<String>)>,
    pub only_http: bool,
    pub only_tcp: bool,
}

impl Filter {
    fn has_http_conditions(&self) -> bool {
        self.method.is_some()
            || self.path_prefix.is_some()
            || self.status.is_some()
            || self.header.is_some()
    }

    fn http_matches(&self, r: &HttpRecord) -> bool {
        if self.method.as_ref().is_some_and(|m| *m != r.method()) {
            return false;
        }
        if self
            .path_prefix
            .as_ref()
            .is_some_and(|p| !r.path().starts_with(p.as_str()))
        {
            return false;
        }
        if let Some(want) = &self.status {
            if !r.status().is_some_and(|s| in_statuses(want, s)) {
                return false;
            }
        }
        if let Some((name, value)) = &self.header {
            let messages = std::iter::once(&r.request).chain(r.response.as_ref());
            let found = messages.flat_map(|m| m.headers.iter()).any(|(n, v)| {
                n.eq_ignore_ascii_case(name)
                    && value.as_ref().map_or(true, |want| v == want.as_bytes())
            });
            if !found {
                return false;
            }
        }
        true
    }

    pub fn matches(&self, record: &Record) -> bool {
        match record {
            Record::Http(r) => !self.only_tcp && self.http_matches(r),
            Record::Tcp(_) => !self.only_http && !self.has_http_conditions(),
        }
    }
}

/// Comma-separated status codes (`404`), classes (`5xx`) and ranges
/// (`200-299`), as inclusive ranges: `--status` and `--learn-status`.
pub fn parse_statuses(text: &str) -> Result<Vec<(u16, u16)>, String> {
    let code = |s: &str| {
        s.parse::<u16>()
            .ok()
            .filter(|c| (100..=599).contains(c))
            .ok_or_else(|| format!("{s:?} is not a status code (100-599)"))
    };
    text.split(',')
        .map(|item| {
            let item = item.trim();
            if let Some(class) = item.strip_suffix("xx").filter(|c| c.len() == 1) {
                let hundreds = code(&format!("{class}00"))?;
                Ok((hundreds, hundreds + 99))
            } else if let Some((lo, hi)) = item.split_once('-') {
                let (lo, hi) = (code(lo)?, code(hi)?);
                if lo > hi {
                    return Err(format!("{item:?} is an empty range"));
                }
                Ok((lo, hi))
            } else {
                code(item).map(|c| (c, c))
            }
        })
        .collect()
}

/// Whether `status` is in one of the ranges.
pub fn in_statuses(ranges: &[(u16, u16)], status: u16) -> bool {
    ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&status))
}
