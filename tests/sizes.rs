//! Every module `make build` ships fits the size budget: under 320 KiB, so
//! that three fit in one Kubernetes ConfigMap (1 MiB) and load fast.

use harness::{modules, MODULE_BUDGET as BUDGET};
use std::path::Path;

#[test]
fn every_module_is_under_320_kib() {
    let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist");
    let mut over = Vec::new();
    for module in &modules() {
        let path = dist.join(format!("{module}.wasm"));
        let size = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run `make build`)", path.display()))
            .len();
        println!("{module}.wasm: {size} bytes");
        if size >= BUDGET {
            over.push(format!("{module}.wasm is {size} bytes"));
        }
    }
    assert!(over.is_empty(), "over the {BUDGET}-byte budget: {over:?}");
}
