//! What a module costs once rather than per request: the memory its VMs hold
//! in Envoy and the time from configuration to a module ready in every
//! worker. Envoy runs with `--concurrency 2`, bare and with each shipped
//! module in a representative configuration, in alternated rounds; medians.

use crate::machine::machine;
use crate::save_or_print;
use crate::stats::median;
use bench::configurations::{identity, rules, suite_parts};
use filter_registry::Kind;
use harness::bootstrap::{wasm_filter, wasm_network_filter};
use harness::tap::record_access_log;
use harness::tcp::exchange;
use harness::{Bootstrap, Envoy, Request, TcpEcho, PEER_METADATA_SEED};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Workers Envoy runs: the smallest count where what every worker adds shows.
const CONCURRENCY: u32 = 2;
/// Requests (each on its own connection, so both workers see some) and TCP
/// connections sent before memory is read.
const REQUESTS: u32 = 200;
const CONNECTIONS: u32 = 20;
/// The data a Kubernetes ConfigMap may hold.
pub const CONFIGMAP_BYTES: u64 = 1 << 20;
/// Envoy's gauge of live V8 VMs, which divides the memory a module adds.
const ACTIVE_VMS: &str = "wasm.envoy.wasm.runtime.v8.active";

/// One Envoy configuration measured here: bare Envoy or one module.
struct Subject {
    module: Option<String>,
    http_filters: Vec<Value>,
    hcm_extra: Value,
    network_filters: Vec<Value>,
}

fn http(module: &str, config: &Value) -> Subject {
    Subject {
        module: Some(module.into()),
        http_filters: vec![wasm_filter(module, config)],
        hcm_extra: json!({}),
        network_filters: vec![],
    }
}

/// Bare Envoy, then every shipped module as the CPU benchmark configures it:
/// the HTTP filters before the router, tap_tcp before `tcp_proxy`; then
/// every other filter of the list with the example configuration it declares.
fn subjects() -> Result<Vec<Subject>, String> {
    let parts: serde_json::Map<String, Value> = suite_parts()
        .into_iter()
        .map(|(name, config)| (name.to_string(), config))
        .collect();
    let mut tap_http = http("tap_http", &json!({}));
    tap_http.hcm_extra = record_access_log("records.jsonl");
    let mut suite = http("suite", &Value::Object(parts));
    suite.hcm_extra = record_access_log("records.jsonl");
    let mut all = vec![
        Subject {
            module: None,
            http_filters: vec![],
            hcm_extra: json!({}),
            network_filters: vec![],
        },
        http("cf_headers", &identity()),
        tap_http,
        Subject {
            module: Some("tap_tcp".into()),
            http_filters: vec![],
            hcm_extra: json!({}),
            network_filters: vec![wasm_network_filter("tap_tcp", &json!({}))],
        },
        http("peer_metadata", &json!({})),
        http("l7_policy", &rules(10).ours),
        suite,
    ];
    for filter in filter_registry::filters().map_err(|e| e.to_string())? {
        if all
            .iter()
            .any(|s| s.module.as_deref() == Some(filter.name.as_str()))
        {
            continue;
        }
        all.push(match filter.kind {
            Kind::Http => http(&filter.name, &filter.example),
            Kind::Network => Subject {
                network_filters: vec![wasm_network_filter(&filter.name, &filter.example)],
                module: Some(filter.name),
                http_filters: vec![],
                hcm_extra: json!({}),
            },
        });
    }
    Ok(all)
}

/// What one Envoy run showed.
#[derive(Clone, Copy)]
struct Sample {
    rss_kib: f64,
    /// Live V8 VMs (Envoy's gauge).
    vms: u64,
    /// From Envoy's first log line to its main dispatch loop.
    start_to_ready_ms: f64,
    /// From the base VM's creation to its first clone: reading and compiling
    /// the module.
    compile_ms: Option<f64>,
}

/// Every round's samples of one subject.
#[derive(Default)]
struct Samples {
    rss_kib: Vec<f64>,
    vms: Vec<u64>,
    start_to_ready_ms: Vec<f64>,
    compile_ms: Vec<f64>,
}

impl Samples {
    fn add(&mut self, s: Sample) {
        self.rss_kib.push(s.rss_kib);
        self.vms.push(s.vms);
        self.start_to_ready_ms.push(s.start_to_ready_ms);
        self.compile_ms.extend(s.compile_ms);
    }
}

/// A timestamp of Envoy's default log format, `[2025-01-31 12:34:56.789]`,
/// as milliseconds since midnight.
pub fn log_ms(line: &str) -> Option<f64> {
    let time = line.strip_prefix('[')?.get(11..23)?;
    let mut parts = time.split([':', '.']);
    let mut next = || parts.next()?.parse::<f64>().ok();
    let (h, m, s, ms) = (next()?, next()?, next()?, next()?);
    Some(((h * 60.0 + m) * 60.0 + s) * 1000.0 + ms)
}

/// Milliseconds from the first line containing `from` to the first after it
/// containing `to` (across midnight too).
pub fn log_span(log: &str, from: &str, to: &str) -> Option<f64> {
    let mut lines = log.lines();
    let start = lines.by_ref().find(|l| l.contains(from)).and_then(log_ms)?;
    let end = lines.find(|l| l.contains(to)).and_then(log_ms)?;
    let day = 24.0 * 3600.0 * 1000.0;
    Some((end - start).rem_euclid(day))
}

/// (RSS with the module − RSS bare) / the VMs holding the module.
pub fn per_vm_kib(with_module_kib: f64, bare_kib: f64, vms: u64) -> Option<f64> {
    (vms > 0).then(|| (with_module_kib - bare_kib) / vms as f64)
}

fn sample(upstream: u16, echo: &TcpEcho, subject: &Subject) -> Result<Sample, String> {
    let bootstrap = Bootstrap::new(upstream)
        .listener_with(
            "http",
            subject.http_filters.clone(),
            json!([{"name": "all", "domains": ["*"], "routes": [{"match": {"prefix": "/"},
                "route": {"cluster": "upstream", "timeout": "30s"}}]}]),
            subject.hcm_extra.clone(),
        )
        .cluster("echo", echo.port())
        .tcp_listener(
            "tcp",
            subject.network_filters.clone(),
            "echo",
            json!({}),
            json!({}),
        );
    let concurrency = CONCURRENCY.to_string();
    let envoy = Envoy::try_start_with(&bootstrap, &["--concurrency", &concurrency])
        .map_err(|e| e.to_string())?;
    traffic(&envoy);
    // Access logs and stats settle; the RSS is read once they have.
    std::thread::sleep(Duration::from_millis(300));
    let rss_kib = envoy.rss_kib() as f64;
    let vms = envoy.stats().get(ACTIVE_VMS).copied().unwrap_or(0);
    let log = envoy.log();
    Ok(Sample {
        rss_kib,
        vms,
        start_to_ready_ms: log_span(&log, "initializing epoch 0", "starting main dispatch loop")
            .unwrap_or(f64::NAN),
        compile_ms: log_span(&log, "Base Wasm created", "Thread-Local Wasm created"),
    })
}

/// The chain's request (Istio's metadata header, a path l7_policy allows) on
/// fresh connections, and TCP connections through `tcp_proxy`.
fn traffic(envoy: &Envoy) {
    let request = Request::get(&rules(10).path)
        .header("x-envoy-peer-metadata", PEER_METADATA_SEED)
        .header("x-tap-me", "1");
    for _ in 0..REQUESTS {
        let _ = request.send_h1(envoy.addr("http"));
    }
    for _ in 0..CONNECTIONS {
        exchange(
            envoy.addr("tcp"),
            b"GET / HTTP/1.1\r\nhost: echo\r\n\r\n",
            1024,
        );
    }
}

/// Measures bare Envoy and every module `rounds` times and writes
/// `bench/results/footprint.json`.
pub fn run(upstream: u16, rounds: u32) -> Result<(), String> {
    // Envoy's debug lines of the wasm component time the load; no request
    // is timed here.
    let quiet = std::env::var_os("ENVOY_QUIET");
    std::env::remove_var("ENVOY_QUIET");
    let echo = TcpEcho::start();
    let subjects = subjects()?;
    let mut samples: Vec<Samples> = subjects.iter().map(|_| Samples::default()).collect();
    let started = Instant::now();
    for round in 0..rounds {
        // Alternate: each round starts at a different subject.
        for k in 0..subjects.len() {
            let i = (k + round as usize) % subjects.len();
            let (Some(subject), Some(kept)) = (subjects.get(i), samples.get_mut(i)) else {
                continue;
            };
            let s = sample(upstream, &echo, subject)?;
            kept.add(s);
            eprintln!(
                "footprint {}/{rounds} {:<14} {:>8.0} KiB RSS, {} VMs, ready in {:>5.0} ms, compiled in {:>5.0} ms",
                round + 1,
                subject.module.as_deref().unwrap_or("bare"),
                s.rss_kib,
                s.vms,
                s.start_to_ready_ms,
                s.compile_ms.unwrap_or(f64::NAN),
            );
        }
    }
    if let Some(quiet) = quiet {
        std::env::set_var("ENVOY_QUIET", quiet);
    }
    let doc = results(&subjects, &samples, rounds, started.elapsed());
    save_or_print("footprint.json", &doc, true)
}

fn results(subjects: &[Subject], samples: &[Samples], rounds: u32, elapsed: Duration) -> Value {
    let bare = samples.first();
    let bare_rss = bare.map_or(f64::NAN, |b| median(&b.rss_kib));
    let bare_ready = bare.map_or(f64::NAN, |b| median(&b.start_to_ready_ms));
    let root = harness::paths::workspace_root();
    let mut modules = Vec::new();
    let mut total = 0;
    for (subject, s) in subjects.iter().zip(samples) {
        let Some(module) = &subject.module else {
            continue;
        };
        let bytes =
            std::fs::metadata(root.join(format!("dist/{module}.wasm"))).map_or(0, |m| m.len());
        total += bytes;
        let rss = median(&s.rss_kib);
        // The same count every round; the largest if Envoy ever differed.
        let vms = s.vms.iter().copied().max().unwrap_or(0);
        let ready = median(&s.start_to_ready_ms);
        modules.push(json!({
            "module": module,
            "shipped_bytes": bytes,
            "vms": vms,
            "rss_kib": rss,
            "rss_per_vm_kib": per_vm_kib(rss, bare_rss, vms),
            "compile_ms": median(&s.compile_ms),
            "start_to_ready_ms": ready,
            "start_to_ready_over_bare_ms": ready - bare_ready,
            "samples_rss_kib": s.rss_kib,
            "samples_compile_ms": s.compile_ms,
            "samples_start_to_ready_ms": s.start_to_ready_ms,
        }));
    }
    json!({
        "machine": machine(CONCURRENCY),
        "concurrency": CONCURRENCY,
        "rounds": rounds,
        "requests": REQUESTS,
        "connections": CONNECTIONS,
        "elapsed_s": elapsed.as_secs(),
        "bare": {
            "rss_kib": bare_rss,
            "start_to_ready_ms": bare_ready,
            "samples_rss_kib": bare.map(|b| b.rss_kib.clone()),
            "samples_start_to_ready_ms": bare.map(|b| b.start_to_ready_ms.clone()),
        },
        "modules": modules,
        "total_shipped_bytes": total,
        "configmap_bytes": CONFIGMAP_BYTES,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
#[allow(clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn envoy_log_times_are_read_to_the_millisecond() {
        let line = "[2026-11-30 04:14:57.467][16519][debug][wasm] [source/extensions/common/wasm/wasm.cc:83] Base Wasm created 1 now active";
        assert_eq!(
            log_ms(line),
            Some(((4.0 * 60.0 + 14.0) * 60.0 + 57.0) * 1000.0 + 467.0)
        );
        assert_eq!(log_ms("no timestamp"), None);
    }

    #[test]
    fn a_span_starts_at_the_first_line_and_ends_at_the_next_match_after_it() {
        let log = "[2026-11-30 23:59:59.990][1][debug][wasm] Thread-Local Wasm created 0\n\
                   [2026-11-30 23:59:59.995][1][debug][wasm] Base Wasm created 1 now active\n\
                   [2026-12-01 00:00:00.380][1][debug][wasm] Thread-Local Wasm created 2 now active\n\
                   [2026-12-01 00:00:00.390][1][debug][wasm] Thread-Local Wasm created 3 now active\n";
        assert_eq!(
            log_span(log, "Base Wasm created", "Thread-Local Wasm created"),
            Some(385.0)
        );
        assert_eq!(log_span(log, "Base Wasm created", "never logged"), None);
    }

    #[test]
    fn the_memory_a_module_adds_is_shared_by_its_vms() {
        assert_eq!(per_vm_kib(100_000.0, 88_000.0, 4), Some(3_000.0));
        assert_eq!(per_vm_kib(100_000.0, 88_000.0, 0), None);
    }
}
