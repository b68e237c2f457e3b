//! What the results were measured on and with: the machine, Envoy and its
//! Wasm runtimes, the modules' sizes.

use harness::bootstrap::wasm_fixture;
use harness::paths::workspace_root;
use harness::{Bootstrap, Envoy};
use serde_json::{json, Value};
use std::process::Command;

/// The CPU, its cores, Envoy's version and the `--concurrency` it ran with.
pub fn machine(concurrency: u32) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("unknown CPU")
        .trim()
        .to_string();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let envoy = Command::new(harness::paths::envoy_bin())
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let envoy = envoy
        .split("version: ")
        .nth(1)
        .and_then(|v| v.split('/').nth(1))
        .unwrap_or("?")
        .to_string();
    format!("{cpu}, {cores} cores, Envoy {envoy} (--concurrency {concurrency}), V8")
}

/// Which Wasm runtimes this Envoy build has: the benchmark runs on V8; the
/// others are tried with the no-op filter.
pub fn runtimes() -> String {
    let mut out = String::from("V8 measured above.");
    for runtime in ["wamr", "wasmtime"] {
        std::env::set_var("WASM_RUNTIME", runtime);
        let bootstrap = Bootstrap::http(9, vec![wasm_fixture("noop", &json!({}))]);
        std::env::remove_var("WASM_RUNTIME");
        match Envoy::try_start(&bootstrap) {
            Ok(_) => out.push_str(&format!(
                " {runtime}: available (not measured in this run)."
            )),
            Err(e) => {
                // Envoy's own words, e.g. "Failed to create Wasm VM using
                // envoy.wasm.runtime.wamr runtime. Envoy was compiled without support for it".
                let why = e
                    .log
                    .lines()
                    .find_map(|l| l.split_once("] Failed to create Wasm VM"))
                    .map_or(String::new(), |(_, rest)| {
                        format!(": \"Failed to create Wasm VM{}\"", rest.trim_end())
                    });
                out.push_str(&format!(
                    " {runtime}: not in this Envoy build (it refuses envoy.wasm.runtime.{runtime}{why})."
                ));
            }
        }
    }
    out
}

/// Every module as cargo builds it and as shipped (after `make build`'s
/// `wasm-opt -Oz`).
pub fn sizes() -> Value {
    let size = |path: std::path::PathBuf| std::fs::metadata(path).map_or(0, |m| m.len());
    let root = workspace_root();
    harness::modules()
        .iter()
        .map(|f| {
            json!({
                "module": f,
                "cargo_bytes": size(root.join(format!("target/wasm32-wasip1/release/{f}.wasm"))),
                "shipped_bytes": size(root.join(format!("dist/{f}.wasm"))),
            })
        })
        .collect()
}
