use filter_common::pairs::HeaderMap;
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

fn eval(p: &Predicate, resp: Option<&HeaderMap>) -> Option<bool> {
    let req = request();
    p.eval(&View {
        request: &req,
        response: resp,
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
