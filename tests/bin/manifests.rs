//! `make manifests`: writes the Istio manifests under `envoyfilters/` for the
//! modules in `dist/` (their sha256 goes into the remote and WasmPlugin forms).

use harness::manifests::{files, module_sha256};
use harness::paths::workspace_root;

fn main() {
    let root = workspace_root();
    let sha256 = |module: &str| -> String {
        module_sha256(module).unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(1);
        })
    };
    for (path, text) in files(&sha256) {
        let target = root.join("envoyfilters").join(&path);
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir).expect("create envoyfilters/");
        }
        std::fs::write(&target, text).expect("write manifest");
        println!("envoyfilters/{path}");
    }
}
