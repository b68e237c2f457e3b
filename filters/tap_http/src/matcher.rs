//! Match predicates, evaluated with what is known so far: a predicate on the
//! response is unknown until the response exists, one on a request header
//! until the request headers are final, so a stream that can no longer match
//! stops being recorded as early as possible.

use filter_common::header::pairs::HeaderMap;
use filter_common::predicate::{Condition, StringMatch};
use regex_lite::Regex;

/// A request or response header list: lowercase names, raw value bytes.
pub type Headers = HeaderMap;

pub type Predicate = filter_common::predicate::Predicate<Test>;

#[derive(Debug)]
pub enum Test {
    Method(String),
    Path(StringMatch),
    RequestHeader(HeaderMatch),
    ResponseHeader(HeaderMatch),
    Status { min: u16, max: u16 },
}

#[derive(Debug)]
pub struct HeaderMatch {
    /// Lowercase, as Envoy holds header names.
    pub name: String,
    pub test: HeaderTest,
}

#[derive(Debug)]
pub enum HeaderTest {
    Present(bool),
    Exact(String),
    Regex(Regex),
}

/// What the predicates look at.
pub struct View<'a> {
    pub request: &'a Headers,
    /// The request headers are final (the stream ended). Before that, a
    /// condition on a request header is unknown: the tap runs first, and a
    /// filter after it may still set or remove the header (`cf-app-id`).
    pub request_final: bool,
    /// `None` while (or when) there is no response.
    pub response: Option<&'a Headers>,
}

impl View<'_> {
    fn request_value(&self, name: &str) -> Option<&[u8]> {
        self.request.first(name)
    }
}

impl HeaderMatch {
    /// Repeated headers: the test passes if any one value passes.
    fn matches(&self, headers: &Headers) -> bool {
        let mut values = headers.values(&self.name);
        match &self.test {
            HeaderTest::Present(want) => values.next().is_some() == *want,
            HeaderTest::Exact(s) => values.any(|v| v == s.as_bytes()),
            HeaderTest::Regex(r) => {
                values.any(|v| std::str::from_utf8(v).is_ok_and(|v| r.is_match(v)))
            }
        }
    }
}

impl Condition for Test {
    type View<'a> = View<'a>;

    /// Response conditions are unknown while there is no response.
    fn eval(&self, view: &View) -> Option<bool> {
        match self {
            Test::Method(m) => Some(
                view.request_value(":method")
                    .is_some_and(|v| v == m.as_bytes()),
            ),
            Test::Path(m) => {
                let path = view.request_value(":path").unwrap_or_default();
                let path = path.split(|&b| b == b'?' || b == b'#').next();
                let path = path.unwrap_or_default();
                Some(std::str::from_utf8(path).is_ok_and(|p| m.matches(p)))
            }
            Test::RequestHeader(h) => view.request_final.then(|| h.matches(view.request)),
            Test::ResponseHeader(h) => view.response.map(|r| h.matches(r)),
            Test::Status { min, max } => view.response.map(|r| {
                r.first(":status")
                    .and_then(|v| std::str::from_utf8(v).ok()?.parse::<u16>().ok())
                    .is_some_and(|s| (*min..=*max).contains(&s))
            }),
        }
    }
}
