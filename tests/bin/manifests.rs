//! `make manifests`: writes the Istio manifests under `envoyfilters/` for the
//! modules in `dist/` (their sha256 goes into the remote and WasmPlugin forms).

use harness::manifests::files;
use harness::paths::workspace_root;
use sha2::{Digest, Sha256};

fn main() {
    let root = workspace_root();
    let sha256 = |filter: &str| -> String {
        let path = root.join("dist").join(format!("{filter}.wasm"));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| {
            eprintln!("{}: {e} (run `make build` first)", path.display());
            std::process::exit(1);
        });
        Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
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
