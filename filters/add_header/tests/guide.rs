//! The contributor guide (`filters/common/README.md`) shows every file of
//! this filter: each block under a "`filters/add_header/<file>`:" line must be
//! that file as it is, and every file of the filter (but its README and this
//! test, which only this filter has) must be shown. The guide's example is
//! then compiled for wasm32 and tested natively as this crate, so it cannot
//! rot.

// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn crate_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// The guide's blocks, by the path named on the line before each.
fn shown(guide: &str) -> BTreeMap<String, String> {
    let mut blocks = BTreeMap::new();
    let mut lines = guide.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(path) = line
            .strip_prefix("`filters/add_header/")
            .and_then(|l| l.strip_suffix("`:"))
        else {
            continue;
        };
        assert_eq!(lines.next(), Some(""), "a blank line after {path}");
        let fence = lines.next().unwrap_or_default();
        assert!(fence.starts_with("```"), "a code block after {path}");
        let mut text = String::new();
        for line in lines.by_ref() {
            if line == "```" {
                break;
            }
            text.push_str(line);
            text.push('\n');
        }
        assert!(
            blocks.insert(path.to_string(), text).is_none(),
            "{path} shown twice"
        );
    }
    blocks
}

/// The filter's files, relative to its folder.
fn files(dir: &Path, base: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files(&path, base));
        } else {
            found.push(path.strip_prefix(base).unwrap().display().to_string());
        }
    }
    found
}

#[test]
fn the_guide_shows_every_file_as_it_is() {
    let dir = crate_dir();
    let guide = std::fs::read_to_string(dir.join("../common/README.md")).unwrap();
    let blocks = shown(&guide);
    assert!(blocks.len() >= 6, "{:?}", blocks.keys());
    for (path, text) in &blocks {
        let file = std::fs::read_to_string(dir.join(path))
            .unwrap_or_else(|e| panic!("the guide shows {path}: {e}"));
        assert!(
            *text == file,
            "filters/common/README.md shows filters/add_header/{path} other than it is: \
             copy the file into the guide (or the guide's block into the file)"
        );
    }
    for file in files(&dir, &dir) {
        if file == "README.md" || file == "tests/guide.rs" {
            continue;
        }
        assert!(
            blocks.contains_key(&file),
            "the guide does not show filters/add_header/{file}"
        );
    }
}

#[test]
fn a_changed_block_is_found() {
    let dir = crate_dir();
    let guide = std::fs::read_to_string(dir.join("../common/README.md")).unwrap();
    let changed = guide.replacen(
        "pub fn sets(&self, has: bool)",
        "pub fn sets(&self, had: bool)",
        1,
    );
    assert_ne!(changed, guide);
    let file = std::fs::read_to_string(dir.join("src/config.rs")).unwrap();
    assert_ne!(shown(&changed)["src/config.rs"], file);
}
