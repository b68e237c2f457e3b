//! `make bench`: Envoy's CPU per request, throughput and latency of every
//! configuration under a fixed request rate from oha, in alternated rounds.

use crate::machine::{machine, runtimes, sizes};
use crate::save_or_print;
use crate::stats::{median, spread, Spread};
use bench::configurations::{baselines, is_bare, is_noop, start, Baselines, Setup};
use harness::paths::workspace_root;
use serde_json::{json, Value};
use std::process::Command;
use std::time::{Duration, Instant};

/// Connections oha keeps open to Envoy.
const CONNECTIONS: u32 = 16;

/// Envoy's CPU time so far, all threads, in nanoseconds.
fn cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// The load generator: `OHA`, else the one `make bench` installs.
pub fn oha() -> String {
    std::env::var("OHA").unwrap_or_else(|_| {
        workspace_root()
            .join(".tools/bin/oha")
            .display()
            .to_string()
    })
}

/// What one run of the load generator saw.
struct Load {
    /// Responses received.
    requests: f64,
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// Responses whose status was not 2xx.
    non_2xx: u64,
}

/// Runs the load generator against `url` with the request and rate of `s`.
fn load(url: &str, s: &Setup, seconds: u32) -> Result<Load, String> {
    let mut cmd = Command::new(oha());
    cmd.args([
        "-z",
        &format!("{seconds}s"),
        "-q",
        &s.rate.to_string(),
        "-c",
        &CONNECTIONS.to_string(),
        "--no-tui",
        "--output-format",
        "json",
        "-m",
        s.method,
    ]);
    for (k, v) in &s.headers {
        cmd.args(["-H", &format!("{k}: {v}")]);
    }
    cmd.arg(url);
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {}: {e} (make bench installs it)", oha()))?;
    let v: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("oha output: {e}: {}", String::from_utf8_lossy(&out.stderr)))?;
    let codes = v
        .get("statusCodeDistribution")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let total: u64 = codes.values().filter_map(Value::as_u64).sum();
    let non_2xx: u64 = codes
        .iter()
        .filter(|(c, _)| !c.starts_with('2'))
        .filter_map(|(_, n)| n.as_u64())
        .sum();
    let ms = |p: &str| {
        v.get("latencyPercentiles")
            .and_then(|l| l.get(p))
            .and_then(Value::as_f64)
            .unwrap_or(f64::NAN)
            * 1000.0
    };
    Ok(Load {
        requests: total as f64,
        rps: v
            .pointer("/summary/requestsPerSec")
            .and_then(Value::as_f64)
            .unwrap_or(0.0),
        p50_ms: ms("p50"),
        p99_ms: ms("p99"),
        non_2xx,
    })
}

/// One measured window of one configuration.
struct Measurement {
    cpu_us_per_request: f64,
    load: Load,
}

/// Every round's measurements of one configuration.
#[derive(Default, Clone)]
struct Samples {
    cpu_us: Vec<f64>,
    rps: Vec<f64>,
    p50_ms: Vec<f64>,
    p99_ms: Vec<f64>,
    non_2xx: u64,
}

impl Samples {
    fn add(&mut self, m: &Measurement) {
        self.cpu_us.push(m.cpu_us_per_request);
        self.rps.push(m.load.rps);
        self.p50_ms.push(m.load.p50_ms);
        self.p99_ms.push(m.load.p99_ms);
        self.non_2xx += m.load.non_2xx;
    }
}

fn measure(upstream: u16, s: &Setup, seconds: u32) -> Result<Measurement, String> {
    let envoy = start(upstream, s);
    let url = format!("http://{}{}", envoy.addr("main"), s.path);
    load(&url, s, 1)?; // warm up: connections, JIT, caches
    let perf = profile(envoy.pid(), &s.name, seconds);
    let before = cpu_ns(envoy.pid());
    let measured = load(&url, s, seconds)?;
    let cpu = cpu_ns(envoy.pid()).saturating_sub(before);
    if let Some(mut perf) = perf {
        let _ = perf.wait();
    }
    Ok(Measurement {
        cpu_us_per_request: cpu as f64 / 1000.0 / measured.requests.max(1.0),
        load: measured,
    })
}

/// With `BENCH_PERF` set, samples Envoy's CPU (`perf record -e cpu-clock`)
/// during the measured load into `target/bench-perf/<configuration>.data`:
/// where the time goes, for `perf report --sort dso,sym`.
fn profile(pid: u32, name: &str, seconds: u32) -> Option<std::process::Child> {
    std::env::var_os("BENCH_PERF")?;
    let dir = workspace_root().join("target/bench-perf");
    std::fs::create_dir_all(&dir).ok()?;
    let file: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    Command::new("perf")
        .args([
            "record",
            "-q",
            "-e",
            "cpu-clock",
            "-p",
            &pid.to_string(),
            "-o",
        ])
        .arg(dir.join(format!("{file}.data")))
        .args(["--", "sleep", &seconds.to_string()])
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()
}

/// Measures every configuration `rounds` times for `seconds` each; a whole
/// run (`save`) writes `bench/results/results.json`, a partial one prints.
pub fn run(
    upstream: u16,
    all: &[Setup],
    rounds: u32,
    seconds: u32,
    save: bool,
) -> Result<(), String> {
    let started = Instant::now();
    let samples = rounds_of(upstream, all, rounds, seconds)?;
    let mut doc = results(all, &samples, rounds, seconds, started.elapsed());
    doc.insert("runtimes".into(), json!(runtimes()));
    doc.insert("sizes".into(), sizes());
    save_or_print("results.json", &Value::Object(doc), save)
}

/// The regex rows (`bench --only regex`, and after a whole run):
/// `bench/results/regex.json`.
pub fn run_regex(upstream: u16, rounds: u32, seconds: u32) -> Result<(), String> {
    let all = bench::configurations::regex_setups();
    let started = Instant::now();
    let samples = rounds_of(upstream, &all, rounds, seconds)?;
    let mut doc = results(&all, &samples, rounds, seconds, started.elapsed());
    doc.insert(
        "rules".into(),
        json!({
            "worst accepted regex": bench::configurations::worst_accepted_regex(),
            "largest suggested query rule": bench::configurations::largest_suggested_query(),
        }),
    );
    save_or_print("regex.json", &Value::Object(doc), true)
}

/// Every configuration measured `rounds` times, alternated.
fn rounds_of(
    upstream: u16,
    all: &[Setup],
    rounds: u32,
    seconds: u32,
) -> Result<Vec<Samples>, String> {
    let mut samples = vec![Samples::default(); all.len()];
    for round in 0..rounds {
        // Alternate: each round starts at a different configuration.
        for k in 0..all.len() {
            let i = (k + round as usize * 7) % all.len();
            let (Some(s), Some(kept)) = (all.get(i), samples.get_mut(i)) else {
                continue;
            };
            let m = measure(upstream, s, seconds)?;
            kept.add(&m);
            eprintln!(
                "round {}/{rounds} {:<36} {:>8.1} µs/request {:>8.0} rps p50 {:.2} ms p99 {:.2} ms",
                round + 1,
                s.name,
                m.cpu_us_per_request,
                m.load.rps,
                m.load.p50_ms,
                m.load.p99_ms
            );
        }
    }
    Ok(samples)
}

fn results(
    all: &[Setup],
    samples: &[Samples],
    rounds: u32,
    seconds: u32,
    elapsed: Duration,
) -> serde_json::Map<String, Value> {
    let by_name = |n: &str| all.iter().position(|s| s.name == n);
    let cpu = |i: usize| samples.get(i).map(|kept| median(&kept.cpu_us));
    let mut rows = Vec::new();
    for (i, (s, kept)) in all.iter().zip(samples).enumerate() {
        let c = median(&kept.cpu_us);
        let Spread { min, max } = spread(&kept.cpu_us);
        let ratio = |j: Option<usize>| j.filter(|&j| j != i).and_then(cpu).map(|b| c / b);
        let Baselines { bare, noop } = baselines(all, s);
        let vs_bare = ratio(bare);
        // The no-op filter is measured with the small response only.
        let sized = s.path.starts_with("/bytes/");
        let vs_noop = if s.name.starts_with("native") || is_bare(s) || is_noop(s) || sized {
            None
        } else {
            ratio(noop)
        };
        let vs_native = ratio(s.native.as_deref().and_then(by_name));
        rows.push(json!({
            "name": s.name, "rate": s.rate, "cpu_us_per_request": c, "cpu_us_min": min, "cpu_us_max": max,
            "rps": median(&kept.rps), "p50_ms": median(&kept.p50_ms), "p99_ms": median(&kept.p99_ms),
            "ratio_to_bare": vs_bare, "ratio_to_noop_wasm": vs_noop, "ratio_to_native": vs_native,
            "native": s.native, "non_2xx": kept.non_2xx, "samples_cpu_us": kept.cpu_us,
        }));
    }
    serde_json::Map::from_iter([
        ("machine".to_string(), json!(machine(1))),
        ("rounds".to_string(), json!(rounds)),
        ("seconds".to_string(), json!(seconds)),
        ("connections".to_string(), json!(CONNECTIONS)),
        ("elapsed_s".to_string(), json!(elapsed.as_secs())),
        ("results".to_string(), json!(rows)),
    ])
}
