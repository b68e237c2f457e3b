//! `make bench-instructions`: instructions Envoy executes per request, under
//! Valgrind's callgrind.

use crate::cpu::oha;
use crate::machine::machine;
use crate::save_or_print;
use bench::configurations::{baselines, is_bare, is_noop, start, Baselines, Setup};
use harness::paths::workspace_root;
use serde_json::json;
use std::process::Command;

/// Instructions Envoy executes per request (Valgrind's callgrind, counting
/// only while `requests` requests run, after a warm-up): unlike CPU time, the
/// same on a busy or a quiet machine, so small differences show.
fn instructions(upstream: u16, s: &Setup, requests: u32) -> Result<Instructions, String> {
    let dir = workspace_root().join("target/bench-callgrind");
    let out = dir.join("callgrind.out");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let wrapper = dir.join("envoy");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec valgrind --tool=callgrind --trace-children=yes --instr-atstart=no --smc-check=all-non-file --callgrind-out-file={} {} \"$@\"\n",
            out.display(),
            harness::paths::envoy_bin().display()
        ),
    )
    .and_then(|()| {
        std::fs::set_permissions(
            &wrapper,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
    })
    .map_err(|e| format!("the valgrind wrapper {}: {e}", wrapper.display()))?;
    let real = std::env::var_os("ENVOY_BIN");
    std::env::set_var("ENVOY_BIN", &wrapper);
    let envoy = start(upstream, s);
    match real {
        Some(bin) => std::env::set_var("ENVOY_BIN", bin),
        None => std::env::remove_var("ENVOY_BIN"),
    }
    let url = format!("http://{}{}", envoy.addr("main"), s.path);
    let send = |n: u32| {
        let mut cmd = Command::new(oha());
        cmd.args(["-n", &n.to_string(), "-c", "1", "--no-tui", "-m", s.method]);
        for (k, v) in &s.headers {
            cmd.args(["-H", &format!("{k}: {v}")]);
        }
        cmd.arg(&url)
            .output()
            .map(drop)
            .map_err(|e| format!("cannot run {}: {e} (make bench installs it)", oha()))
    };
    send(100)?;
    let control = |args: &[&str]| {
        Command::new("callgrind_control")
            .args(args)
            .arg(envoy.pid().to_string())
            .output()
            .map(drop)
            .map_err(|e| format!("callgrind_control (Debian package valgrind): {e}"))
    };
    control(&["--instr=on"])?;
    send(20)?;
    control(&["--zero"])?;
    send(requests)?;
    control(&["--dump"])?;
    // The dump is written next to `callgrind.out`, numbered.
    let dump = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("callgrind.out."))
        });
    let Some(dump) = dump else {
        return Ok(Instructions::default());
    };
    // Per function, exclusive. Code Envoy's binary does not name is V8's
    // builtins (copied below 4 GiB) or the compiled Wasm (above).
    let annotated = Command::new("callgrind_annotate")
        .arg("--threshold=100")
        .arg(&dump)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let mut counts = Instructions::default();
    let functions = annotated
        .split_once("file:function")
        .map_or("", |(_, rest)| rest);
    for line in functions.lines() {
        let Some(n) = line
            .split_whitespace()
            .next()
            .and_then(|n| n.replace(',', "").parse::<f64>().ok())
        else {
            continue;
        };
        let n = n / f64::from(requests);
        counts.total += n;
        let address = line
            .split("???:0x")
            .nth(1)
            .and_then(|a| u64::from_str_radix(a.split_whitespace().next()?, 16).ok());
        if line.ends_with("[???]") && address.is_some_and(|a| a >> 32 != 0) {
            counts.wasm += n;
        }
    }
    Ok(counts)
}

/// Instructions per request, and how many of them ran in compiled Wasm.
#[derive(Default, Clone, Copy)]
struct Instructions {
    total: f64,
    wasm: f64,
}

/// The configurations `make bench-instructions` counts: the baselines, each
/// filter and its native counterpart, the chain and the suite with its parts.
const COUNTED: [&str; 21] = [
    "bare",
    "noop wasm",
    "cf_headers",
    "native request_headers_to_add",
    "peer_metadata (small header)",
    "l7_policy 10 rules",
    "native RBAC 10 rules",
    "tap_http",
    "tap_http with stream info and addresses",
    "native tap",
    "all HTTP filters chained",
    "suite.wasm: all HTTP filters",
    "suite.wasm: all HTTP filters, peer_metadata without filter state",
    "suite.wasm: peer_metadata only",
    "suite.wasm: l7_policy only",
    "suite.wasm: cf_headers only",
    "suite.wasm: tap_http only",
    "probe: 50 counter increments",
    "probe: the suite's host calls, nothing else",
    "probe: the suite's host calls without peer filter state",
    "probe: the suite's host calls without peer outputs",
];

/// Prints (and for the whole set, writes to `bench/results/instructions.json`)
/// the instructions per request of each configuration.
pub fn count_instructions(
    upstream: u16,
    all: &[Setup],
    requests: u32,
    whole: bool,
) -> Result<(), String> {
    let started = std::time::Instant::now();
    let counted = |s: &Setup| !whole || COUNTED.contains(&s.name.as_str());
    // Each counted configuration and its baselines, in the usual order.
    let mut picked: Vec<usize> = Vec::new();
    for (i, s) in all.iter().enumerate().filter(|(_, s)| counted(s)) {
        let Baselines { bare, noop } = baselines(all, s);
        picked.extend([Some(i), bare, noop].into_iter().flatten());
    }
    picked.sort_unstable();
    picked.dedup();
    let chosen: Vec<&Setup> = picked.into_iter().filter_map(|i| all.get(i)).collect();
    let mut counts: Vec<Instructions> = Vec::new();
    for s in &chosen {
        let n = instructions(upstream, s, requests)?;
        eprintln!(
            "{:<48} {:>10.0} instructions/request ({:>7.0} in Wasm code)",
            s.name, n.total, n.wasm
        );
        counts.push(n);
    }
    let of = |name: &str| {
        chosen
            .iter()
            .zip(&counts)
            .find(|(s, _)| s.name == name)
            .map(|(_, n)| n.total)
    };
    let ratio = |n: f64, base: Option<f64>| base.map(|b| n / b);
    let mut rows = Vec::new();
    for (s, n) in chosen.iter().zip(&counts) {
        let native = s.native.as_deref().and_then(of);
        let Baselines { bare, noop } = baselines(all, s);
        let name_of = |i: Option<usize>| i.and_then(|i| all.get(i)).and_then(|b| of(&b.name));
        let noop = (!is_bare(s) && !is_noop(s) && !s.name.starts_with("native"))
            .then(|| name_of(noop))
            .flatten();
        rows.push(json!({
            "name": s.name,
            "instructions_per_request": n.total,
            "wasm_instructions_per_request": n.wasm,
            "ratio_to_bare": ratio(n.total, name_of(bare).filter(|_| !is_bare(s))),
            "ratio_to_noop_wasm": ratio(n.total, noop),
            "ratio_to_native": ratio(n.total, native),
        }));
    }
    let doc = json!({
        "machine": machine(1),
        "requests": requests,
        "elapsed_s": started.elapsed().as_secs(),
        "results": rows,
    });
    save_or_print("instructions.json", &doc, whole)
}
