use filter_common::config::*;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Inner {
    #[allow(dead_code)]
    guid: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Outer {
    #[serde(default)]
    hosts: BTreeMap<String, Inner>,
    #[serde(default)]
    flag: bool,
}

#[test]
fn empty_and_blank_mean_defaults() {
    for raw in [None, Some(&b""[..]), Some(&b"  \n"[..])] {
        let c: Outer = parse_json(raw).unwrap();
        assert!(c.hosts.is_empty());
        assert!(!c.flag);
    }
}

#[test]
fn unknown_field_is_named_with_its_path() {
    let e =
        parse_json::<Outer>(Some(br#"{"hosts": {"a.com": {"guid": "x", "gid": 1}}}"#)).unwrap_err();
    assert_eq!(e.field, "hosts.a.com.gid");
    assert!(e.problem.contains("unknown field `gid`"), "{e}");
    assert!(e.to_string().contains("fix: remove it"), "{e}");
}

#[test]
fn wrong_type_and_missing_field_are_named() {
    let e = parse_json::<Outer>(Some(br#"{"flag": "yes"}"#)).unwrap_err();
    assert_eq!(e.field, "flag");
    assert!(e.problem.contains("invalid type"), "{e}");
    let e = parse_json::<Outer>(Some(br#"{"hosts": {"a": {}}}"#)).unwrap_err();
    assert_eq!(e.field, "hosts.a");
    assert!(e.problem.contains("missing field `guid`"), "{e}");
}

#[test]
fn syntax_errors_and_trailing_garbage_are_refused() {
    assert!(parse_json::<Outer>(Some(b"{")).is_err());
    assert!(parse_json::<Outer>(Some(b"{} {}")).is_err());
    assert!(parse_json::<Outer>(Some(b"[]")).is_err());
    assert!(parse_json::<Outer>(Some(&[0xff, 0xfe]))
        .unwrap_err()
        .problem
        .contains("UTF-8"));
}
