//! `make manifests`: writes the Istio manifests under `envoyfilters/` for the
//! modules in `dist/` (their sha256, their images' digests, and the gateway's
//! module itself go into the manifests).

use manifests::{files, module_bytes, workspace_root};

fn main() {
    let root = workspace_root();
    let wasm = |module: &str| -> Vec<u8> {
        module_bytes(module).unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(1);
        })
    };
    for (path, text) in files(&wasm) {
        let target = root.join("envoyfilters").join(&path);
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir).expect("create envoyfilters/");
        }
        std::fs::write(&target, text).expect("write manifest");
        println!("envoyfilters/{path}");
    }
}
