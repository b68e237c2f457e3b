//! `make manifests`: writes the Istio manifests under `envoyfilters/` for the
//! modules in `dist/` (their sha256, their images' digests, and the gateway's
//! module itself go into the manifests), and `examples/<filter>/` for each
//! filter without a hand-written example.

use manifests::{example_files, files, module_bytes, workspace_root};
use std::process::ExitCode;

fn main() -> ExitCode {
    let root = workspace_root();
    let wasm = |module: &str| -> Vec<u8> {
        module_bytes(module).unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(1);
        })
    };
    let (manifests, examples) = match (files(&wasm), example_files()) {
        (Ok(manifests), Ok(examples)) => (manifests, examples),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("manifests: {e}");
            return ExitCode::from(2);
        }
    };
    let manifests = manifests
        .into_iter()
        .map(|(path, text)| (format!("envoyfilters/{path}"), text));
    for (path, text) in manifests.chain(examples) {
        let target = root.join(&path);
        let written = match target.parent() {
            Some(dir) => std::fs::create_dir_all(dir),
            None => Ok(()),
        }
        .and_then(|()| std::fs::write(&target, text));
        if let Err(e) = written {
            eprintln!("{}: {e}", target.display());
            return ExitCode::FAILURE;
        }
        println!("{path}");
    }
    ExitCode::SUCCESS
}
