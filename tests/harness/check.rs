//! A filter's declared check (`[package.metadata.filter.check]`): the
//! request to send through its example configuration and what must come
//! back, for every place that sends it (tests/filters.rs, the generated
//! examples, `make demo`).

use crate::client::{Request, Response};
use crate::upstream::Received;
use filter_registry::Check;

/// The check's request: a GET of `/` with its headers.
pub fn request(check: &Check) -> Request {
    check
        .request_headers
        .iter()
        .fold(Request::get("/"), |r, (name, value)| r.header(name, value))
}

/// What `response` (and the request the app `received`, when the check
/// names headers the app must get) differ in from `check`, each prefixed
/// with `at`.
pub fn problems(
    at: &str,
    check: &Check,
    response: &Response,
    received: impl FnOnce() -> Received,
) -> Vec<String> {
    let text = |values: Vec<&[u8]>| -> Vec<String> {
        values
            .into_iter()
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect()
    };
    let mut problems = Vec::new();
    if response.status != check.status {
        problems.push(format!(
            "{at}: status {} (want {})",
            response.status, check.status
        ));
    }
    for (name, value) in &check.response_headers {
        let got = text(response.header(name));
        if got != [value.clone()] {
            problems.push(format!(
                "{at}: response header {name}: {got:?} (want {value:?})"
            ));
        }
    }
    if !check.upstream_headers.is_empty() {
        let received = received();
        for (name, value) in &check.upstream_headers {
            let got = text(received.header(name));
            if got != [value.clone()] {
                problems.push(format!("{at}: app got {name}: {got:?} (want {value:?})"));
            }
        }
    }
    problems
}
