#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The crate's layout by layer: the host layer (`src/host/`) builds on the
//! shared parts, never the other way round, and its files import each other
//! in one direction only, so each can be read (and replaced) from the bottom
//! up.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The Rust files under `dir`, recursively, with their code (comments dropped).
fn code_files(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(code_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            let code = fs::read_to_string(&path)
                .unwrap()
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            files.push((path, code));
        }
    }
    files
}

/// The names following each occurrence of `prefix` in `code`.
fn names_after<'a>(code: &'a str, prefix: &str) -> Vec<&'a str> {
    code.match_indices(prefix)
        .map(|(i, _)| {
            let rest = &code[i + prefix.len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .collect()
}

/// Which host files each host file imports.
fn host_imports() -> BTreeMap<String, Vec<String>> {
    let host = src().join("host");
    let files = code_files(&host);
    let names: Vec<String> = files
        .iter()
        .map(|(p, _)| p.file_stem().unwrap().to_string_lossy().into_owned())
        .filter(|n| n != "mod")
        .collect();
    let mut graph = BTreeMap::new();
    for (path, code) in &files {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if name == "mod" {
            continue;
        }
        let mut uses: Vec<String> = names_after(code, "super::")
            .into_iter()
            .chain(names_after(code, "crate::host::"))
            .filter(|n| names.iter().any(|m| m == n) && *n != name)
            .map(str::to_string)
            .collect();
        uses.sort();
        uses.dedup();
        graph.insert(name, uses);
    }
    graph
}

/// A cycle in `graph`, if there is one.
fn cycle(graph: &BTreeMap<String, Vec<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, Vec<String>>,
        path: &mut Vec<String>,
        done: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut found = path[at..].to_vec();
            found.push(node.to_string());
            return Some(found);
        }
        if done.iter().any(|n| n == node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.push(node.to_string());
        None
    }
    let mut done = Vec::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn host_files_import_each_other_in_one_direction() {
    let graph = host_imports();
    assert!(graph.len() >= 10, "host files found: {graph:?}");
    // The bottom of the layer imports nothing of it; the harness sits on top.
    for bottom in ["types", "memory"] {
        assert_eq!(graph[bottom], Vec::<String>::new(), "{bottom}");
    }
    assert!(graph["harness"].contains(&"plugin".to_string()));
    assert_eq!(cycle(&graph), None, "{graph:#?}");
}

#[test]
fn the_cycle_check_finds_a_cycle() {
    let mut graph = host_imports();
    graph.get_mut("types").unwrap().push("harness".into());
    let found = cycle(&graph).expect("a cycle through types and harness");
    assert!(found.contains(&"types".to_string()) && found.contains(&"harness".to_string()));
}

#[test]
fn shared_parts_do_not_call_the_host() {
    let offenders: Vec<_> = code_files(&src())
        .into_iter()
        .filter(|(path, _)| !path.starts_with(src().join("host")) && !path.ends_with("lib.rs"))
        .filter(|(_, code)| code.contains("crate::host"))
        .map(|(path, _)| path)
        .collect();
    assert!(offenders.is_empty(), "{offenders:?}");
}

/// Filters read and edit a stream's headers and trailers, in both
/// directions, through `Exchange` only: it keeps one read per map per
/// callback and keeps the filters of a chain in step with each other's edits.
#[test]
fn filters_reach_headers_through_the_exchange() {
    let filters = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let raw = [
        "header_map(",
        "header_map_bytes(",
        "header_value(",
        "MapType::Http",
    ];
    let mut offenders = Vec::new();
    for entry in fs::read_dir(&filters).unwrap() {
        let dir = entry.unwrap().path();
        if dir.file_name().is_some_and(|n| n == "common") || !dir.join("src").is_dir() {
            continue;
        }
        for (path, code) in code_files(&dir.join("src")) {
            offenders.extend(
                raw.iter()
                    .filter(|call| {
                        code.match_indices(*call).any(|(i, _)| {
                            // A whole name, not the end of a longer one.
                            !code[..i].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
                        })
                    })
                    .map(|call| format!("{}: {call}", path.display())),
            );
        }
    }
    assert!(offenders.is_empty(), "{offenders:#?}");
}
