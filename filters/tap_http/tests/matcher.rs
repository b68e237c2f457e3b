// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use filter_common::header::pairs::HeaderMap;
use tap_http::config::Config;
use tap_http::matcher::{Predicate, View};

fn matcher(json: &str) -> Predicate {
    Config::parse(Some(format!(r#"{{"match": {json}}}"#).as_bytes()))
        .unwrap()
        .matcher
}

fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
    HeaderMap::from_pairs(pairs)
}

fn request() -> HeaderMap {
    headers(&[
        (":method", b"POST"),
        (":path", b"/api/v1/items?debug=1#frag"),
        ("x-tenant", b"a"),
        ("x-tenant", b"b"),
        ("x-bin", b"\xff\xfe"),
    ])
}

fn response(status: &str) -> HeaderMap {
    headers(&[
        (":status", status.as_bytes()),
        ("content-type", b"application/json"),
    ])
}

/// At the end of the stream: the request headers are final.
fn eval(p: &Predicate, resp: Option<&HeaderMap>) -> Option<bool> {
    let req = request();
    p.eval(&View {
        request: &req,
        request_final: true,
        response: resp,
    })
}

/// When the request starts, before the filters after the tap ran.
fn eval_early(p: &Predicate) -> Option<bool> {
    let req = request();
    p.eval(&View {
        request: &req,
        request_final: false,
        response: None,
    })
}

#[test]
fn request_predicates() {
    let cases = [
        (r#"{"any": true}"#, Some(true)),
        (r#"{"method": "POST"}"#, Some(true)),
        (r#"{"method": "post"}"#, Some(false)),
        (r#"{"path": {"exact": "/api/v1/items"}}"#, Some(true)),
        (
            r#"{"path": {"exact": "/api/v1/items?debug=1"}}"#,
            Some(false),
        ),
        (r#"{"path": {"prefix": "/api/"}}"#, Some(true)),
        (r#"{"path": {"regex": "/api/v[0-9]+/.*"}}"#, Some(true)),
        (r#"{"path": {"regex": "/api"}}"#, Some(false)),
        (
            r#"{"request_header": {"name": "X-Tenant", "exact": "b"}}"#,
            Some(true),
        ),
        (
            r#"{"request_header": {"name": "x-tenant", "regex": "[ab]"}}"#,
            Some(true),
        ),
        (
            r#"{"request_header": {"name": "x-tenant", "exact": "a,b"}}"#,
            Some(false),
        ),
        (
            r#"{"request_header": {"name": "x-none", "present": false}}"#,
            Some(true),
        ),
        (
            r#"{"request_header": {"name": "x-bin", "present": true}}"#,
            Some(true),
        ),
        (
            r#"{"request_header": {"name": "x-bin", "regex": ".*"}}"#,
            Some(false),
        ),
        (r#"{"not": {"method": "GET"}}"#, Some(true)),
    ];
    for (json, want) in cases {
        assert_eq!(eval(&matcher(json), None), want, "{json}");
    }
}

#[test]
fn request_header_predicates_wait_for_the_final_headers() {
    // A filter after the tap may still set or remove any header.
    for json in [
        r#"{"request_header": {"name": "x-tenant", "exact": "b"}}"#,
        r#"{"request_header": {"name": "cf-app-id", "present": true}}"#,
        r#"{"request_header": {"name": "x-none", "present": false}}"#,
    ] {
        assert_eq!(eval_early(&matcher(json)), None, "{json}");
    }
    // Method and path are decided at once, also next to an unknown header.
    assert_eq!(eval_early(&matcher(r#"{"method": "GET"}"#)), Some(false));
    let p = matcher(
        r#"{"and": [{"path": {"prefix": "/other/"}}, {"request_header": {"name": "x-tenant", "exact": "b"}}]}"#,
    );
    assert_eq!(eval_early(&p), Some(false));
    let p = matcher(
        r#"{"or": [{"path": {"prefix": "/api/"}}, {"request_header": {"name": "x-tenant", "exact": "z"}}]}"#,
    );
    assert_eq!(eval_early(&p), Some(true));
}

#[test]
fn response_predicates_wait_for_the_response() {
    let p = matcher(r#"{"status": {"min": 500, "max": 599}}"#);
    assert_eq!(eval(&p, None), None);
    assert_eq!(eval(&p, Some(&response("503"))), Some(true));
    assert_eq!(eval(&p, Some(&response("200"))), Some(false));
    let p = matcher(r#"{"and": [{"method": "GET"}, {"status": {"min": 500, "max": 599}}]}"#);
    assert_eq!(
        eval(&p, None),
        Some(false),
        "decided early: the request already fails"
    );
    let p = matcher(r#"{"or": [{"method": "POST"}, {"status": {"min": 500, "max": 599}}]}"#);
    assert_eq!(
        eval(&p, None),
        Some(true),
        "decided early: the request already matches"
    );
    let p = matcher(
        r#"{"not": {"response_header": {"name": "content-type", "regex": "application/.*"}}}"#,
    );
    assert_eq!(eval(&p, None), None);
    assert_eq!(eval(&p, Some(&response("200"))), Some(false));
}
