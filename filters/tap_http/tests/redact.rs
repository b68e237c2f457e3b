// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use proptest::prelude::*;
use serde_json::{json, Value};
use tap_http::config::Config;
use tap_http::redact::{BodyKind, Redaction};

fn defaults() -> Redaction {
    Config::parse(None).unwrap().redaction
}

fn text(b: std::borrow::Cow<[u8]>) -> String {
    String::from_utf8(b.into_owned()).unwrap()
}

#[test]
fn credential_headers_are_hidden_by_name_and_by_word() {
    let r = defaults();
    for name in [
        "authorization",
        "Cookie",
        "x-api-key",
        "X-Auth-Token",
        "x-amz-security-token",
        "x-csrf-token",
        "x-vault-token",
        "x-session-id",
        "api-key",
        "x-client-secret",
        "x-goog-api-key",
        "sec-websocket-key",
    ] {
        assert!(r.hides_header(name), "{name}");
        assert_eq!(text(r.header(name, b"s3cret")), "[redacted]", "{name}");
    }
    for name in [
        ":authority",
        ":method",
        "content-type",
        "x-request-id",
        "x-peer-principal",
        "x-forwarded-client-cert",
        "user-agent",
        "accept",
    ] {
        assert!(!r.hides_header(name), "{name}");
        assert_eq!(text(r.header(name, b"v")), "v", "{name}");
    }
}

#[test]
fn query_values_of_credential_names_are_hidden_in_urls() {
    let r = defaults();
    let cases = [
        (
            ":path",
            "/cb?access_token=abc&page=2",
            "/cb?access_token=[redacted]&page=2",
        ),
        (
            ":path",
            "/s?X-Amz-Signature=f00&X-Amz-Credential=AKIA%2F&x=1",
            "/s?X-Amz-Signature=[redacted]&X-Amz-Credential=[redacted]&x=1",
        ),
        (
            ":path",
            "/a?access%5Ftoken=abc",
            "/a?access%5Ftoken=[redacted]",
        ),
        (
            ":path",
            "/a?key=1&key=2",
            "/a?key=[redacted]&key=[redacted]",
        ),
        (":path", "/a?q=token&flag&", "/a?q=token&flag&"),
        (":path", "/a/token/b", "/a/token/b"),
        (
            "referer",
            "https://x.example/p?password=hunter2#frag",
            "https://x.example/p?password=[redacted]#frag",
        ),
        (
            "location",
            "/login?next=/&session=zz",
            "/login?next=/&session=[redacted]",
        ),
        (":path", "/p?=x&apikey=", "/p?=x&apikey=[redacted]"),
    ];
    for (name, value, want) in cases {
        assert_eq!(text(r.header(name, value.as_bytes())), want, "{value}");
    }
    // Not a URL header: left alone.
    assert_eq!(text(r.header("x-note", b"/a?token=1")), "/a?token=1");
}

#[test]
fn form_and_json_bodies_lose_their_credentials() {
    let r = defaults();
    let form = r.body(BodyKind::Form, b"user=alice&password=hunter2&remember=1");
    assert_eq!(text(form), "user=alice&password=[redacted]&remember=1");
    let body = br#"{"access_token": "eyJhbGciOi.x.y", "refresh_token":"r1", "expires_in": 3600,
        "nested": {"client_secret": {"a": [1, "}"]}, "ok": "token"}, "list": [{"api_key": 12}],
        "pass\u0077ord": null, "name": "password"}"#;
    let out = text(r.body(BodyKind::Json, body));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["access_token"], "[redacted]");
    assert_eq!(v["refresh_token"], "[redacted]");
    assert_eq!(v["expires_in"], 3600);
    assert_eq!(v["nested"]["client_secret"], "[redacted]");
    assert_eq!(v["nested"]["ok"], "token");
    assert_eq!(v["list"][0]["api_key"], "[redacted]");
    assert_eq!(v["password"], "[redacted]");
    assert_eq!(v["name"], "password");
    assert!(!out.contains("eyJ") && !out.contains("r1"));
    // Other bodies are kept as they are (bodies are off by default).
    assert_eq!(text(r.body(BodyKind::Other, b"password=x")), "password=x");
}

#[test]
fn a_body_cut_at_its_cap_hides_what_it_has() {
    let r = defaults();
    let body = br#"{"user": "a", "password": "hunter2-and-more"}"#;
    for cut in 0..body.len() {
        let out = text(r.body(BodyKind::Json, &body[..cut]));
        assert!(!out.contains("hunter"), "cut at {cut}: {out}");
    }
}

#[test]
fn content_types_choose_the_reader() {
    assert_eq!(BodyKind::of(Some(b"application/json")), BodyKind::Json);
    assert_eq!(
        BodyKind::of(Some(b"Application/Problem+JSON; charset=utf-8")),
        BodyKind::Json
    );
    assert_eq!(
        BodyKind::of(Some(b"application/x-www-form-urlencoded; charset=UTF-8")),
        BodyKind::Form
    );
    assert_eq!(BodyKind::of(Some(b"text/plain")), BodyKind::Other);
    assert_eq!(BodyKind::of(None), BodyKind::Other);
}

#[test]
fn empty_words_turn_word_redaction_off() {
    let r = Config::parse(Some(br#"{"redact_words": [], "redact_headers": []}"#))
        .unwrap()
        .redaction;
    assert!(!r.hides_header("x-api-key"));
    assert_eq!(text(r.header(":path", b"/a?token=1")), "/a?token=1");
    assert_eq!(
        text(r.body(BodyKind::Json, br#"{"password":"x"}"#)),
        r#"{"password":"x"}"#
    );
}

/// Istio's metadata exchange headers carry the caller's whole workload
/// metadata: redacted by default in any case and `_`/`-` spelling, whatever
/// `redact_headers` and `redact_words` say, unless the configuration
/// records them.
#[test]
fn peer_metadata_headers_are_redacted_unless_recorded() {
    let names = [
        "x-envoy-peer-metadata",
        "x-envoy-peer-metadata-id",
        "X-Envoy-Peer-Metadata",
        "X-ENVOY-PEER-METADATA-ID",
        "x_envoy_peer_metadata",
        "baggage",
        "Baggage",
    ];
    for config in ["{}", r#"{"redact_headers": [], "redact_words": []}"#] {
        let r = Config::parse(Some(config.as_bytes())).unwrap().redaction;
        for name in names {
            assert!(r.hides_header(name), "{config}: {name}");
            assert_eq!(text(r.header(name, b"ChwKDkFQ")), "[redacted]", "{name}");
        }
        for name in [
            "x-envoy-peer-metadata-idx",
            "x-envoy-peer",
            "x-peer-workload",
            "baggages",
            "x-baggage",
        ] {
            assert!(!r.hides_header(name), "{config}: {name}");
        }
    }
    let r = Config::parse(Some(br#"{"record_peer_metadata_headers": true}"#))
        .unwrap()
        .redaction;
    for name in names {
        assert!(!r.hides_header(name), "{name}");
        assert_eq!(text(r.header(name, b"ChwKDkFQ")), "ChwKDkFQ", "{name}");
    }
    assert!(r.hides_header("authorization"), "the rest still redacted");
    // Listed by name, they are redacted like any other name.
    let r = Config::parse(Some(
        br#"{"record_peer_metadata_headers": true, "redact_headers": ["x-envoy-peer-metadata"]}"#,
    ))
    .unwrap()
    .redaction;
    assert!(r.hides_header("X-Envoy-Peer-Metadata"));
    assert!(!r.hides_header("x-envoy-peer-metadata-id"));
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        Just(Value::Null),
        "[ -~]{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::vec(("[a-z_]{1,8}|password|api_key|x_token", inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// Every member whose name holds a word, at any depth.
fn assert_redacted(original: &Value, redacted: &Value, r: &Redaction) {
    match (original, redacted) {
        (Value::Object(o), Value::Object(n)) => {
            assert_eq!(o.len(), n.len());
            for (k, v) in o {
                let secret = r.words.iter().any(|w| k.contains(w.as_str()));
                if secret {
                    assert_eq!(n[k], json!("[redacted]"), "{k}");
                } else {
                    assert_redacted(v, &n[k], r);
                }
            }
        }
        (Value::Array(o), Value::Array(n)) => {
            assert_eq!(o.len(), n.len());
            for (a, b) in o.iter().zip(n) {
                assert_redacted(a, b, r);
            }
        }
        (a, b) => assert_eq!(a, b),
    }
}

proptest! {
    /// Redacted JSON is still the same JSON, but for the credentials' values;
    /// pretty or compact.
    #[test]
    fn json_stays_json(v in json_value(), pretty in any::<bool>()) {
        let r = defaults();
        let text_in = if pretty { serde_json::to_string_pretty(&v) } else { serde_json::to_string(&v) }.unwrap();
        let out = text(r.body(BodyKind::Json, text_in.as_bytes()));
        let parsed: Value = serde_json::from_str(&out).unwrap();
        assert_redacted(&v, &parsed, &r);
    }

    /// Any bytes: no panic, and a form body keeps its shape.
    #[test]
    fn any_bytes_are_safe(data in prop::collection::vec(any::<u8>(), 0..200)) {
        let r = defaults();
        let _ = r.body(BodyKind::Json, &data);
        let form = r.body(BodyKind::Form, &data);
        prop_assert_eq!(form.split(|&b| b == b'&').count(), data.split(|&b| b == b'&').count());
        let _ = r.header(":path", &data);
    }
}
