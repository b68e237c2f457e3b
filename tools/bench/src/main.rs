//! `make bench`: Envoy's CPU per request, throughput and latency with each
//! filter, against bare Envoy, a no-op Wasm filter and Envoy's native
//! counterparts, on 127.0.0.1 at a fixed request rate; then the memory each
//! module's VMs hold and the time Envoy takes to load it. Configurations are
//! measured in rounds (alternated), reported as medians with their spread,
//! written to bench/results/*.json, from which bench/README.md, its chart and
//! the README's performance lines are generated.
//!
//! Arguments: `--report` regenerates the pages from the saved results;
//! `--only footprint` measures memory and load time only, `--only regex`
//! what one l7_policy rule costs on the longest path.
//!
//! Environment: BENCH_ROUNDS (3), BENCH_SECONDS (3), BENCH_RATE (2000),
//! BENCH_ONLY (substrings of configuration names, `|`-separated),
//! BENCH_FOOTPRINT_ROUNDS (5), BENCH_INSTRUCTIONS (requests to count under
//! callgrind instead), OHA (the load generator).

mod cpu;
mod footprint;
mod instructions;
mod machine;
mod stats;
mod upstream;

use bench::configurations::{env_u32, setups, Setup};
use harness::paths::workspace_root;
use serde_json::Value;
use std::process::ExitCode;

/// Writes a full run's results and regenerates the pages made from them
/// (bench/README.md, the chart, the README's headline); a partial run only
/// prints its results, keeping the last full ones.
pub fn save_or_print(file: &str, doc: &Value, save: bool) -> Result<(), String> {
    if !save {
        println!("{}", bench::report::table(doc));
        return Ok(());
    }
    let text = serde_json::to_string_pretty(doc).map_err(|e| format!("results as JSON: {e}"))?;
    let root = workspace_root();
    let dir = root.join("bench/results");
    let path = dir.join(file);
    std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&path, text + "\n"))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    println!("written: bench/results/{file}");
    report(&root)
}

fn report(root: &std::path::Path) -> Result<(), String> {
    bench::report::write(root).map_err(|e| format!("bench report: {e}"))?;
    println!("written: bench/README.md, bench/results/chart.svg, README.md (headline)");
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let known =
        args.iter().any(|a| a == "--report") || only(&args, "footprint") || only(&args, "regex");
    if let (Some(unknown), false) = (args.first(), known) {
        eprintln!(
            "bench: unknown argument {unknown:?}; known: --report, --only footprint, --only regex"
        );
        return ExitCode::from(2);
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Whether `args` hold `--only WHAT`.
fn only(args: &[String], what: &str) -> bool {
    args.windows(2)
        .any(|w| matches!(w, [flag, value] if flag == "--only" && value == what))
}

fn run(args: &[String]) -> Result<(), String> {
    if args.iter().any(|a| a == "--report") {
        return report(&workspace_root());
    }
    let upstream = upstream::fast_upstream()?;
    let footprint_rounds = env_u32("BENCH_FOOTPRINT_ROUNDS", 5);
    if only(args, "footprint") {
        return footprint::run(upstream, footprint_rounds);
    }
    // No debug logging on the request path while measuring.
    std::env::set_var("ENVOY_QUIET", "1");
    let rounds = env_u32("BENCH_ROUNDS", 3);
    let seconds = env_u32("BENCH_SECONDS", 3);
    if only(args, "regex") {
        return cpu::run_regex(upstream, rounds, seconds);
    }
    let names = std::env::var("BENCH_ONLY").unwrap_or_default();
    let all: Vec<Setup> = setups()?
        .into_iter()
        .filter(|s| names.split('|').any(|part| s.name.contains(part)))
        .collect();
    if let Some(requests) = std::env::var("BENCH_INSTRUCTIONS")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        return instructions::count_instructions(upstream, &all, requests, names.is_empty());
    }
    // A partial run (BENCH_ONLY) prints its table but keeps the last full results.
    cpu::run(upstream, &all, rounds, seconds, names.is_empty())?;
    if names.is_empty() {
        footprint::run(upstream, footprint_rounds)?;
        cpu::run_regex(upstream, rounds, seconds)?;
    }
    Ok(())
}
