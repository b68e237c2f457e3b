//! Which records a command works on: `--method`, `--path` (prefix),
//! `--status` (`404` or a class such as `5xx`), `--header name[=value]`
//! (request or response), `--http` / `--tcp`.

use crate::record::{HttpRecord, Record};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    pub method: Option<String>,
    pub path_prefix: Option<String>,
    pub status: Option<String>,
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
            let status = r.status().map(|s| s.to_string()).unwrap_or_default();
            let ok = match want.strip_suffix("xx") {
                Some(class) => status.len() == 3 && status.starts_with(class),
                None => status == *want,
            };
            if !ok {
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
