// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

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
        .get("mode", Mode::read)
        .unwrap_err()
        .problem
        .contains("not one of: stamp, strip_only"));
    assert!(r
        .get("m", |f| f.one_of(&["a", "b"]))
        .unwrap_err()
        .problem
        .contains("exactly one"));
    assert_eq!(r.get("absent", |f| f.str()).unwrap(), None);
}

#[test]
fn a_key_twice_in_one_object_is_refused_and_named() {
    let cases = [
        (r#"{"rules": [], "dry_run": true, "rules": [{}]}"#, "rules"),
        (r#"{"a": {"b": 1, "b": 2}}"#, "a.b"),
        (
            r#"{"rules": [{}, {"method": "GET", "path": "/", "method": "POST"}]}"#,
            "rules[1].method",
        ),
        (r#"{"x": [[], [{"k": 1}, {"k": 1, "k": 2}]]}"#, "x[1][1].k"),
        (r#"{"hosts": {"a.com": 1, "a.com": 2}}"#, "hosts.\"a.com\""),
        // Two spellings of one key.
        (r#"{"rules": [], "\u0072ules": []}"#, "rules"),
        // Braces and quotes inside strings are not structure.
        (r#"{"s": "{\"s\": 1, ", "t": "]}", "s": 2}"#, "s"),
    ];
    for (text, field) in cases {
        let e = parse_document(Some(text.as_bytes())).unwrap_err();
        assert_eq!(e.field, field, "{text}");
        assert!(e.problem.contains("twice"), "{e}");
    }
}

#[test]
fn equal_keys_in_different_objects_are_not_duplicates() {
    for text in [
        r#"{"rules": [{"method": "GET"}, {"method": "POST"}], "method": 1}"#,
        r#"{"a": {"k": 1}, "b": {"k": 1}, "k": {"k": {"k": 1}}}"#,
        r#"{"k": "k", "v": ["k", "k"], "w": {"x": "k"}}"#,
        r#"{"\\": 1, "\\\\": 2, "\"": 3}"#,
    ] {
        assert!(parse_document(Some(text.as_bytes())).is_ok(), "{text}");
    }
}

fn json_value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i32>().prop_map(serde_json::Value::from),
        "[a-c\"\\\\{}\\[\\],:é\u{1F600}]{0,4}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            proptest::collection::btree_map("[a-c\"\\\\{}é\u{1F600}]{0,3}", inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest::proptest! {
    /// Every document serde_json writes (its keys are unique) loads, with
    /// its keys spelled plainly or as `\u` escapes; a copy of any object's
    /// first entry appended to that object is refused, naming that key.
    #[test]
    fn only_a_repeated_key_is_refused(body in proptest::collection::btree_map("[a-c\"é]{0,3}", json_value(), 0..4), ascii in proptest::bool::ANY) {
        let doc = serde_json::Value::Object(body.clone().into_iter().collect());
        let text = if ascii { escape_non_ascii(&doc.to_string()) } else { doc.to_string() };
        proptest::prop_assert!(parse_document(Some(text.as_bytes())).is_ok(), "{}", text);
        if let Some((key, value)) = body.iter().next() {
            let repeated = format!("{},{}:{}}}", &text[..text.len() - 1], serde_json::Value::from(key.as_str()), value);
            let e = parse_document(Some(repeated.as_bytes())).unwrap_err();
            proptest::prop_assert_eq!(&e.field, &join("", key), "{}", repeated);
        }
    }
}

/// `text` with every non-ASCII char written as JSON `\u` escapes.
fn escape_non_ascii(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

filter_common::config_choice! {
    /// A declared choice.
    #[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
    pub enum Mode {
        #[default]
        Stamp = "stamp",
        StripOnly = "strip_only",
    }
}

filter_common::config_object! {
    /// A nested object, read with a context value.
    #[derive(Debug, PartialEq)]
    pub struct Inner(scale: u64) {
        /// scaled by the context
        pub n: u64 = need(|f| Ok(f.u64()? * scale)), type "integer";
    }
}

filter_common::config_object! {
    /// A declared object.
    #[derive(Debug, PartialEq)]
    pub struct Declared {
        /// a required string
        pub name: String = need(|f| f.str().map(str::to_string), "name it"), type "string";
        /// an optional count, whose doc
        /// comment runs over two lines
        pub count: Option<u64> = get(|f| f.u64()), type "integer";
        /// a bool
        pub on: bool = flag(true), type "bool";
        /// a number with a default
        pub limit: u64 = or(|f| f.u64(), 16), type "integer";
        /// one of two
        pub mode: Mode = or(Mode::read, Mode::default()), type Mode::type_text();
        /// a keyword as a key, read after `limit`
        pub matcher as "match": Option<Inner> = get(|f| Inner::read(f, limit)), type "object",
            default "`{}`";
    }
}

#[test]
fn a_declared_object_reads_its_fields_and_refuses_others() {
    let read = |text: &str| {
        Declared::read(Field {
            path: "",
            value: &doc(text),
        })
    };
    assert_eq!(
        Declared::FIELDS,
        ["name", "count", "on", "limit", "mode", "match"]
    );
    assert_eq!(
        read(r#"{"name": "a", "limit": 3, "match": {"n": 2}, "mode": "strip_only"}"#).unwrap(),
        Declared {
            name: "a".into(),
            count: None,
            on: true,
            limit: 3,
            mode: Mode::StripOnly,
            matcher: Some(Inner { n: 6 }),
        }
    );
    let e = read(r#"{"count": 1}"#).unwrap_err();
    assert_eq!(
        (e.field.as_str(), e.problem.as_str(), e.fix.as_str()),
        ("name", "is missing", "name it")
    );
    let e = read(r#"{"name": "a", "mode": "strip"}"#).unwrap_err();
    assert_eq!(
        (e.field.as_str(), e.problem.as_str()),
        ("mode", r#""strip" is not one of: stamp, strip_only"#)
    );
    let e = read(r#"{"name": "a", "match": {"m": 1}}"#).unwrap_err();
    assert_eq!(e.field, "match.m");
    assert!(e.problem.contains("this object takes: n"), "{e}");
    assert_eq!(
        read(r#"{"name": "a", "match": {}}"#).unwrap_err().field,
        "match.n"
    );
    assert_eq!(Mode::from_name("stamp"), Some(Mode::Stamp));
    assert_eq!(Mode::StripOnly.as_str(), "strip_only");
    assert_eq!(Mode::from_name("Stamp"), None);
}

#[test]
fn a_declared_object_s_table_is_what_the_readme_must_say() {
    use filter_common::config::reference::{differences, FieldDoc};
    let table = Declared::reference();
    assert_eq!(
        table[1],
        FieldDoc {
            name: "count",
            type_text: "integer".into(),
            default_text: "none".into(),
            doc: "an optional count, whose doc comment runs over two lines".into(),
        }
    );
    let defaults: Vec<&str> = table.iter().map(|f| f.default_text.as_str()).collect();
    assert_eq!(
        defaults,
        ["required", "none", "`true`", "`16`", "`\"stamp\"`", "`{}`"]
    );
    assert_eq!(table[4].type_text, r#"`"stamp"` | `"strip_only"`"#);
    let readme = "## Reference\n\n| field | type | default | meaning |\n|---|---|---|---|\n\
        | `name` | string | required | a required string |\n\
        | `count`, `on` | integer | none | an optional count, whose doc comment runs over two lines |\n\
        | `limit` | integer | `16` | a number with a default |\n\
        | `mode` | `\"stamp\"` \\| `\"strip_only\"` | `\"stamp\"` | one of two |\n\
        | `stale` | bool | `false` | gone |\n\nAfter.\n";
    let problems = differences(readme, "## Reference", &table);
    assert_eq!(
        problems.len(),
        3,
        "on differs, match has no row, stale is not a field:\n{}",
        problems.join("\n")
    );
    assert!(
        problems[0].starts_with("`on`'s row differs"),
        "{}",
        problems[0]
    );
    assert!(
        problems[1].starts_with("`match` has no row"),
        "{}",
        problems[1]
    );
    assert_eq!(problems[2], "`stale` has a row but is not a field");
}
