// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use filter_registry::{filters, filters_in, modules, Kind};
use std::path::Path;

/// A workspace in a temporary directory: `filters/<name>/Cargo.toml` for each.
fn workspace(crates: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, manifest) in crates {
        let folder = dir.path().join("filters").join(name);
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("Cargo.toml"), manifest).unwrap();
    }
    dir
}

const SUITE: &str = "[package]\nname = \"suite\"\n[dependencies]\nb = { path = \"../b\" }\n";

fn filter(name: &str, table: &str) -> String {
    format!(
        "[package]\nname = \"{name}\"\ndescription = \"d\"\n[package.metadata.filter]\n{table}\n"
    )
}

const HTTP: &str =
    "kind = \"http\"\norder = 20\nfail_open = false\nphase = \"AUTHZ\"\nplugin_priority = 1";

#[test]
fn this_workspace_lists_its_filters_in_chain_order() {
    let names: Vec<String> = filters().unwrap().into_iter().map(|f| f.name).collect();
    let position = |n: &str| names.iter().position(|m| m == n).unwrap();
    assert!(position("tap_http") < position("peer_metadata"));
    assert!(position("peer_metadata") < position("l7_policy"));
    assert!(position("l7_policy") < position("cf_headers"));
    assert!(!names.iter().any(|n| n == "common" || n == "suite"));
    assert_eq!(modules().unwrap().last().map(String::as_str), Some("suite"));
    let tap_tcp = filters()
        .unwrap()
        .into_iter()
        .find(|f| f.name == "tap_tcp")
        .unwrap();
    assert_eq!(tap_tcp.kind, Kind::Network);
    assert!(!tap_tcp.in_suite);
}

#[test]
fn a_folder_with_a_filter_table_is_a_filter() {
    let dir = workspace(&[
        ("suite", SUITE),
        ("common", "[package]\nname = \"common\"\n"),
        ("a", &filter("a", &HTTP.replace("order = 20", "order = 30"))),
        (
            "b",
            &filter(
                "b",
                &format!("{HTTP}\n[package.metadata.filter.example]\nname = \"x\"\nn = [1, 2]"),
            ),
        ),
    ]);
    let found = filters_in(dir.path()).unwrap();
    let names: Vec<&str> = found.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["b", "a"]);
    assert!(found[0].in_suite && !found[1].in_suite);
    assert_eq!(
        found[0].example,
        serde_json::json!({"name": "x", "n": [1, 2]})
    );
    assert_eq!(found[1].example, serde_json::json!({}));
}

#[test]
fn a_wrong_declaration_names_the_file_and_the_field() {
    for (table, says) in [
        (format!("{HTTP}\nordr = 1"), "ordr"),
        (HTTP.replace("kind = \"http\"", "kind = \"tcp\""), "tcp"),
        (HTTP.replace("order = 20\n", ""), "order"),
    ] {
        let dir = workspace(&[("suite", SUITE), ("b", &filter("b", &table))]);
        let error = filters_in(dir.path()).unwrap_err().to_string();
        assert!(
            error.contains(&Path::new("filters/b/Cargo.toml").display().to_string()),
            "{error}"
        );
        assert!(error.contains(says), "{error}");
    }
    let dir = workspace(&[("suite", SUITE), ("b", &filter("c", HTTP))]);
    assert!(filters_in(dir.path())
        .unwrap_err()
        .to_string()
        .contains("name it after its folder"));
    let network = HTTP.replace("\"http\"", "\"network\"");
    let dir = workspace(&[("suite", SUITE), ("b", &filter("b", &network))]);
    assert!(filters_in(dir.path())
        .unwrap_err()
        .to_string()
        .contains("network filter"));
}

#[test]
fn a_check_defaults_to_a_plain_200() {
    let dir = workspace(&[("suite", SUITE), ("b", &filter("b", HTTP))]);
    let check = &filters_in(dir.path()).unwrap()[0].check;
    assert_eq!(check.status, 200);
    assert!(check.response_headers.is_empty() && check.upstream_headers.is_empty());
    let with = format!("{HTTP}\n[package.metadata.filter.check]\nstatus = 403\nresponse_headers = {{ \"x-a\" = \"1\" }}");
    let dir = workspace(&[("suite", SUITE), ("b", &filter("b", &with))]);
    let check = &filters_in(dir.path()).unwrap()[0].check;
    assert_eq!(
        (check.status, check.response_headers["x-a"].as_str()),
        (403, "1")
    );
}
