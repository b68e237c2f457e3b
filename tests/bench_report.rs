//! The benchmark's pages are what its saved results make: nobody edited a
//! table, the chart or the README's performance lines by hand.

use bench::report::{generate, Page};
use harness::paths::workspace_root;

#[test]
fn bench_pages_are_generated_from_the_results() {
    let root = workspace_root();
    let files = generate(&root).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(files.len(), 3);
    for Page { path, content } in files {
        let on_disk = std::fs::read_to_string(root.join(&path))
            .unwrap_or_else(|e| panic!("{path}: {e} (run `make bench-report`)"));
        assert!(
            on_disk == content,
            "{path} differs from what bench/template.md and bench/results/*.json make: run `make bench-report` (and edit the template, not the page)"
        );
    }
}
