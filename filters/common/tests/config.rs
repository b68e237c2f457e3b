use filter_common::config::{join, parse_document, root, ConfigError, Field};

fn doc(s: &str) -> serde_json::Value {
    parse_document(Some(s.as_bytes())).unwrap()
}

#[test]
fn empty_and_blank_mean_an_empty_object() {
    for raw in [None, Some(&b""[..]), Some(&b"  \n"[..])] {
        assert_eq!(parse_document(raw).unwrap(), serde_json::json!({}));
    }
}

#[test]
fn documents_that_are_not_one_object_are_refused() {
    for bad in [&b"{"[..], b"{} {}", b"[]", b"1", b"\"x\"", &[0xff, 0xfe]] {
        let e = parse_document(Some(bad)).unwrap_err();
        assert_eq!(e.field, "");
        assert!(!e.fix.is_empty());
    }
}

#[test]
fn unknown_fields_are_named_with_their_path() {
    let d = doc(r#"{"hosts": {"a.com": {"guid": "x", "gid": 1}}}"#);
    let r = root(&d, &["hosts"]).unwrap();
    let e = r
        .need("hosts", |hosts| {
            for (name, value) in hosts.entries()? {
                let path = join(hosts.path, name);
                Field { path: &path, value }.object(&["guid"])?;
            }
            Ok(())
        })
        .unwrap_err();
    assert_eq!(e.field, "hosts.\"a.com\".gid");
    assert!(
        e.problem
            .contains("unknown field (this object takes: guid)"),
        "{e}"
    );
    assert!(e.to_string().contains("fix: remove it"), "{e}");
    assert_eq!(root(&d, &["other"]).err().unwrap().field, "hosts");
}

#[test]
fn wrong_types_missing_fields_and_choices() {
    let d = doc(r#"{"flag": "yes", "n": -1, "mode": "x", "m": {"a": 1, "b": 2}}"#);
    let r = root(&d, &["flag", "n", "mode", "m", "absent"]).unwrap();
    let e: ConfigError = r.flag("flag", false).unwrap_err();
    assert_eq!(
        (e.field.as_str(), e.problem.as_str()),
        ("flag", "expected true or false, found a string")
    );
    assert_eq!(r.get("n", |f| f.u64()).unwrap_err().field, "n");
    assert_eq!(
        r.need("absent", |f| f.str()).unwrap_err().problem,
        "is missing"
    );
    assert!(r
        .get("mode", |f| f.choice(&["a", "b"]))
        .unwrap_err()
        .problem
        .contains("not one of: a, b"));
    assert!(r
        .get("m", |f| f.one_of(&["a", "b"]))
        .unwrap_err()
        .problem
        .contains("exactly one"));
    assert_eq!(r.get("absent", |f| f.str()).unwrap(), None);
}
