//! `make bench`: Envoy's CPU per request, throughput and latency with each
//! filter, against bare Envoy, a no-op Wasm filter and Envoy's native
//! counterparts, on 127.0.0.1 at a fixed request rate. Configurations are
//! measured in rounds (alternated), reported as medians with their spread,
//! written to bench/results/*.json, from which bench/README.md, its chart and
//! the README's performance lines are generated (`--report` regenerates them).
//!
//! Environment: BENCH_ROUNDS (3), BENCH_SECONDS (3), BENCH_RATE (2000),
//! BENCH_ONLY (substrings of configuration names, `|`-separated), OHA (the load generator).

use harness::bootstrap::{wasm_filter, wasm_fixture};
use harness::paths::workspace_root;
use harness::tap::{native_tap, record_access_log};
use harness::PEER_METADATA_SEED;
use harness::{Bootstrap, Envoy};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::Duration;

/// An upstream that answers as fast as it can: `/bytes/N` with N bytes, any
/// other path with `ok`. HTTP/1.1 keep-alive, a thread per connection.
fn fast_upstream() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let body: &'static [u8] = Box::leak(vec![b'x'; 1 << 20].into_boxed_slice());
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || serve(conn, body));
        }
    });
    port
}

fn serve(conn: TcpStream, body: &'static [u8]) {
    let _ = conn.set_nodelay(true);
    let Ok(mut writer) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let size = line
            .split(' ')
            .nth(1)
            .and_then(|p| p.strip_prefix("/bytes/"))
            .and_then(|n| n.parse::<usize>().ok())
            .map_or(2, |n| n.min(body.len()));
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            if header == "\r\n" {
                break;
            }
            if let Some(v) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut skip = vec![0u8; length];
        if reader.read_exact(&mut skip).is_err() {
            return;
        }
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {size}\r\n\r\n"
        );
        let out = if size == 2 {
            [head.as_bytes(), b"ok"].concat()
        } else {
            [head.as_bytes(), &body[..size]].concat()
        };
        if writer.write_all(&out).is_err() {
            return;
        }
    }
}

/// One measured configuration.
struct Setup {
    name: String,
    /// What it is compared with: `bare`, and its native counterpart if any.
    native: Option<String>,
    filters: Vec<Value>,
    route_extra: Value,
    hcm_extra: Value,
    method: &'static str,
    path: String,
    headers: Vec<(String, String)>,
    rate: u32,
}

fn setup(name: &str, filters: Vec<Value>) -> Setup {
    Setup {
        name: name.into(),
        native: None,
        filters,
        route_extra: json!({}),
        hcm_extra: json!({}),
        method: "GET",
        path: "/".into(),
        headers: vec![],
        rate: rate(),
    }
}

fn env_u32(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rate() -> u32 {
    env_u32("BENCH_RATE", 2000)
}

/// A metadata header of about 6 KB: the seed's keys and 120 more labels.
fn large_metadata() -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut bytes = b64.decode(PEER_METADATA_SEED).expect("seed");
    let field = |tag: u8, data: &[u8]| -> Vec<u8> {
        let mut out = vec![tag];
        let mut n = data.len();
        while n >= 0x80 {
            out.push((n as u8 & 0x7f) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
        out.extend_from_slice(data);
        out
    };
    let mut labels = Vec::new();
    for i in 0..120 {
        let mut entry = field(0x0a, format!("example.com/label-{i}").as_bytes());
        entry.extend(field(0x12, &field(0x1a, format!("value-{i}").as_bytes())));
        labels.extend(field(0x0a, &entry));
    }
    let mut entry = field(0x0a, b"EXTRA_LABELS");
    entry.extend(field(0x12, &field(0x2a, &labels)));
    bytes.extend(field(0x0a, &entry));
    b64.encode(bytes)
}

/// `n` rules and the request that matches the last GET rule; RBAC the same.
fn rules(n: usize) -> (Value, Value, String) {
    let mut ours = Vec::new();
    let mut policies = serde_json::Map::new();
    let mut last_get = 0;
    for i in 0..n {
        let method = ["GET", "POST", "PUT", "DELETE"][i % 4];
        if method == "GET" {
            last_get = i;
        }
        let path = format!("/api/v1/service{i}/[a-z0-9]+");
        ours.push(json!({"method": method, "path": path}));
        policies.insert(
            format!("rule-{i}"),
            json!({"permissions": [{"and_rules": {"rules": [
                {"header": {"name": ":method", "string_match": {"exact": method}}},
                {"header": {"name": ":path", "string_match": {"safe_regex": {"regex": path}}}}
            ]}}], "principals": [{"any": true}]}),
        );
    }
    let rbac = json!({"name": "envoy.filters.http.rbac", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
        "rules": {"action": "ALLOW", "policies": policies}}});
    (
        json!({"rules": ours}),
        rbac,
        format!("/api/v1/service{last_get}/abc123"),
    )
}

fn identity() -> Value {
    json!({"app_guid": "eb1534db-8765-430d-adfe-77fd1a8e45a9", "process_type": "web",
           "org_guid": "04a73274-9280-4b99-9abc-e44e3ff4a74e", "space_guid": "8d18b884-729c-4239-9b88-39c4964a3f86"})
}

fn setups() -> Vec<Setup> {
    let mut all = vec![setup("bare", vec![])];
    all.push(setup("noop wasm", vec![wasm_fixture("noop", &json!({}))]));
    // The price of each kind of host call a filter makes, on top of no-op.
    for (name, work) in [
        ("probe: 50 header-map reads", json!({"read_map": 50})),
        ("probe: 50 header writes", json!({"set_header": 50})),
        ("probe: 50 header appends", json!({"add_header": 50})),
        ("probe: 50 filter-state writes", json!({"set_property": 50})),
        (
            "probe: 50 missing property reads",
            json!({"get_property": 50}),
        ),
        (
            "probe: 1 header-map read, 50 header-map writes",
            json!({"set_map": 50}),
        ),
        ("probe: 50 counter increments", json!({"increment": 50})),
    ] {
        all.push(setup(name, vec![wasm_fixture("noop", &work)]));
    }
    let mut cf = setup("cf_headers", vec![wasm_filter("cf_headers", &identity())]);
    cf.native = Some("native request_headers_to_add".into());
    all.push(cf);
    let mut headers = setup("native request_headers_to_add", vec![]);
    headers.route_extra = json!({"request_headers_to_add": identity().as_object().unwrap().iter().map(|(k, v)| json!({
        "header": {"key": format!("cf-{}", k.replace('_', "-")), "value": v}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"})).collect::<Vec<_>>()});
    all.push(headers);
    for (label, header) in [
        ("small", PEER_METADATA_SEED.to_string()),
        ("large", large_metadata()),
    ] {
        let mut peer = setup(
            &format!("peer_metadata ({label} header)"),
            vec![wasm_filter(
                "peer_metadata",
                &json!({"max_header_bytes": 16384, "max_keys": 1000}),
            )],
        );
        peer.headers = vec![("x-envoy-peer-metadata".into(), header)];
        all.push(peer);
    }
    // Where peer_metadata's time goes: without filter state, and with no
    // metadata to decode (only the output headers are cleaned and written).
    let mut no_state = setup(
        "peer_metadata (small header, no filter state)",
        vec![wasm_filter(
            "peer_metadata",
            &json!({"filter_state": false}),
        )],
    );
    no_state.headers = vec![(
        "x-envoy-peer-metadata".into(),
        PEER_METADATA_SEED.to_string(),
    )];
    all.push(no_state);
    all.push(setup(
        "peer_metadata (no header)",
        vec![wasm_filter("peer_metadata", &json!({}))],
    ));
    for n in [1, 10, 100, 1000] {
        let (ours, rbac, path) = rules(n);
        let mut policy = setup(
            &format!("l7_policy {n} rules"),
            vec![wasm_filter("l7_policy", &ours)],
        );
        policy.path = path.clone();
        policy.native = Some(format!("native RBAC {n} rules"));
        all.push(policy);
        let mut native = setup(&format!("native RBAC {n} rules"), vec![rbac]);
        native.path = path;
        all.push(native);
    }
    for size in [0usize, 1024, 65536, 1 << 20] {
        let suffix = if size == 0 {
            String::new()
        } else {
            format!(" {} body", human(size))
        };
        let path = if size == 0 {
            "/".to_string()
        } else {
            format!("/bytes/{size}")
        };
        let rate = if size >= 1 << 20 {
            100
        } else if size >= 65536 {
            500
        } else {
            rate()
        };
        if size > 0 {
            let mut bare = setup(&format!("bare{suffix}"), vec![]);
            bare.path = path.clone();
            bare.rate = rate;
            all.push(bare);
        }
        let mut tap = setup(
            &format!("tap_http{suffix}"),
            vec![wasm_filter("tap_http", &json!({}))],
        );
        tap.hcm_extra = record_access_log("records.jsonl");
        tap.native = Some(format!("native tap{suffix}"));
        tap.path = path.clone();
        tap.rate = rate;
        all.push(tap);
        let mut native = setup(
            &format!("native tap{suffix}"),
            vec![native_tap(65536, 65536)],
        );
        native.path = path;
        native.rate = rate;
        all.push(native);
    }
    let (ten, _, path) = rules(10);
    // In the shipped manifests' order, which is also the suite's order.
    let parts = [
        (
            "tap_http",
            json!({"match": {"request_header": {"name": "x-tap-me", "present": true}}}),
        ),
        ("peer_metadata", json!({})),
        ("l7_policy", ten),
        ("cf_headers", identity()),
    ];
    // The chain's request: Istio's metadata header, the path of the last GET rule.
    let chained = |name: &str, filters: Vec<Value>| {
        let mut s = setup(name, filters);
        s.hcm_extra = record_access_log("records.jsonl");
        s.headers = vec![(
            "x-envoy-peer-metadata".into(),
            PEER_METADATA_SEED.to_string(),
        )];
        s.path = path.clone();
        s
    };
    all.push(chained(
        "all HTTP filters chained",
        parts.iter().map(|(n, c)| wasm_filter(n, c)).collect(),
    ));
    // The same four configurations, unchanged, in one module and context;
    // then each part alone in the suite, to show what each part costs there.
    let suite = |name: &str, parts: &[(&str, Value)]| {
        let config: serde_json::Map<String, Value> = parts
            .iter()
            .map(|(n, c)| (n.to_string(), c.clone()))
            .collect();
        chained(name, vec![wasm_filter("suite", &Value::Object(config))])
    };
    all.push(suite("suite.wasm: all HTTP filters", &parts));
    // What the chain's outputs cost: the same, with peer_metadata publishing
    // headers only (its documented `filter_state: false`).
    let mut headers_only = parts.clone();
    headers_only[1].1 = json!({"filter_state": false});
    all.push(suite(
        "suite.wasm: all HTTP filters, peer_metadata without filter state",
        &headers_only,
    ));
    for part in &parts {
        all.push(suite(
            &format!("suite.wasm: {} only", part.0),
            std::slice::from_ref(part),
        ));
    }
    // The floor under any module with these outputs: the no-op filter making
    // only the host calls the suite makes for this request (1 header-map
    // read, 11 appends, 1 removal, 10 filter-state writes, 1 principal read,
    // 6 counters; counted by driving the suite's exports against a recording
    // stand-in for Envoy), with no work of its own. Then with fewer outputs,
    // as a change of the filters' contracts would have it.
    let calls = |appends: u32, states: u32| {
        json!({"raw_map": 1, "remove_header": 1, "add_header": appends,
               "set_property": states, "read_principal": 1, "increment": 6})
    };
    for (name, work) in [
        ("probe: the suite's host calls, nothing else", calls(11, 10)),
        (
            "probe: the suite's host calls without peer filter state",
            calls(11, 2),
        ),
        (
            "probe: the suite's host calls without peer outputs",
            calls(4, 2),
        ),
    ] {
        all.push(chained(name, vec![wasm_fixture("noop", &work)]));
    }
    add_baselines(&mut all);
    all
}

/// The request a configuration is measured with.
fn request(s: &Setup) -> (&str, &str, &[(String, String)], u32) {
    (s.method, &s.path, &s.headers, s.rate)
}

fn is_bare(s: &Setup) -> bool {
    s.filters.is_empty() && s.route_extra == json!({}) && s.hcm_extra == json!({})
}

fn is_noop(s: &Setup) -> bool {
    s.name.starts_with("noop wasm")
}

/// Bare Envoy for every request a configuration sends (a 1.2 KB metadata
/// header or a longer path costs Envoy something even without filters), and
/// the no-op filter for every request with headers, so that each ratio
/// compares the same traffic.
fn add_baselines(all: &mut Vec<Setup>) {
    let mut added = Vec::new();
    for s in all.iter() {
        let known = |added: &[Setup], pred: fn(&Setup) -> bool| {
            all.iter()
                .chain(added)
                .any(|o| pred(o) && request(o) == request(s))
        };
        let copy = |name: String, filters: Vec<Value>| Setup {
            name,
            native: None,
            filters,
            route_extra: json!({}),
            hcm_extra: json!({}),
            method: s.method,
            path: s.path.clone(),
            headers: s.headers.clone(),
            rate: s.rate,
        };
        if !known(&added, is_bare) {
            added.push(copy(format!("bare, request of {}", s.name), vec![]));
        }
        if !s.headers.is_empty() && !known(&added, is_noop) {
            added.push(copy(
                format!("noop wasm, request of {}", s.name),
                vec![wasm_fixture("noop", &json!({}))],
            ));
        }
    }
    all.extend(added);
}

/// The bare Envoy and no-op filter measured with the same request as `s`.
fn baselines(all: &[Setup], s: &Setup) -> (Option<usize>, Option<usize>) {
    let twin =
        |pred: fn(&Setup) -> bool| all.iter().position(|o| pred(o) && request(o) == request(s));
    let noop = twin(is_noop).or_else(|| all.iter().position(|o| o.name == "noop wasm"));
    (twin(is_bare), noop)
}

fn human(n: usize) -> String {
    match n {
        n if n >= 1 << 20 => format!("{} MiB", n >> 20),
        n if n >= 1024 => format!("{} KiB", n >> 10),
        n => format!("{n} B"),
    }
}

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

fn oha() -> String {
    std::env::var("OHA").unwrap_or_else(|_| {
        workspace_root()
            .join(".tools/bin/oha")
            .display()
            .to_string()
    })
}

/// Runs the load generator; returns (requests, rps, p50 ms, p99 ms, non-2xx).
fn load(url: &str, s: &Setup, seconds: u32) -> (f64, f64, f64, f64, u64) {
    let mut cmd = Command::new(oha());
    cmd.args([
        "-z",
        &format!("{seconds}s"),
        "-q",
        &s.rate.to_string(),
        "-c",
        "16",
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
        .unwrap_or_else(|e| panic!("cannot run {}: {e} (make bench installs it)", oha()));
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("oha output: {e}: {}", String::from_utf8_lossy(&out.stderr)));
    let codes = v["statusCodeDistribution"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let total: u64 = codes.values().filter_map(Value::as_u64).sum();
    let bad: u64 = codes
        .iter()
        .filter(|(c, _)| !c.starts_with('2'))
        .filter_map(|(_, n)| n.as_u64())
        .sum();
    let ms = |p: &str| v["latencyPercentiles"][p].as_f64().unwrap_or(f64::NAN) * 1000.0;
    (
        total as f64,
        v["summary"]["requestsPerSec"].as_f64().unwrap_or(0.0),
        ms("p50"),
        ms("p99"),
        bad,
    )
}

#[derive(Default, Clone)]
struct Samples {
    cpu_us: Vec<f64>,
    rps: Vec<f64>,
    p50: Vec<f64>,
    p99: Vec<f64>,
    errors: u64,
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    if s.is_empty() {
        return f64::NAN;
    }
    s[s.len() / 2]
}

fn spread(v: &[f64]) -> (f64, f64) {
    (
        v.iter().copied().fold(f64::INFINITY, f64::min),
        v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    )
}

/// Envoy with configuration `s` on one listener, `main`.
fn start(upstream: u16, s: &Setup) -> Envoy {
    let routes = json!([{"name": "app", "domains": ["*"], "routes": [{
        "match": {"prefix": "/"},
        "route": {"cluster": "upstream", "timeout": "30s"}
    }]}]);
    let mut routes = routes;
    if let Some(extra) = s.route_extra.as_object() {
        for (k, v) in extra {
            routes[0]["routes"][0][k] = v.clone();
        }
    }
    Envoy::start(&Bootstrap::new(upstream).listener_with(
        "main",
        s.filters.clone(),
        routes,
        s.hcm_extra.clone(),
    ))
}

fn measure(upstream: u16, s: &Setup, seconds: u32) -> (f64, f64, f64, f64, u64) {
    let envoy = start(upstream, s);
    let url = format!("http://{}{}", envoy.addr("main"), s.path);
    load(&url, s, 1); // warm up: connections, JIT, caches
    let perf = profile(envoy.pid(), &s.name, seconds);
    let before = cpu_ns(envoy.pid());
    let (requests, rps, p50, p99, bad) = load(&url, s, seconds);
    let cpu = cpu_ns(envoy.pid()) - before;
    if let Some(mut perf) = perf {
        let _ = perf.wait();
    }
    (cpu as f64 / 1000.0 / requests.max(1.0), rps, p50, p99, bad)
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

/// Instructions Envoy executes per request (Valgrind's callgrind, counting
/// only while `requests` requests run, after a warm-up): unlike CPU time, the
/// same on a busy or a quiet machine, so small differences show.
fn instructions(upstream: u16, s: &Setup, requests: u32) -> Instructions {
    let dir = workspace_root().join("target/bench-callgrind");
    let out = dir.join("callgrind.out");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("target/bench-callgrind");
    let wrapper = dir.join("envoy");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec valgrind --tool=callgrind --trace-children=yes --instr-atstart=no --smc-check=all-non-file --callgrind-out-file={} {} \"$@\"\n",
            out.display(),
            harness::paths::envoy_bin().display()
        ),
    )
    .expect("write the valgrind wrapper");
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("make the valgrind wrapper executable");
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
        cmd.arg(&url).output().expect("oha");
    };
    send(100);
    let control = |args: &[&str]| {
        Command::new("callgrind_control")
            .args(args)
            .arg(envoy.pid().to_string())
            .output()
            .expect("callgrind_control (Debian package valgrind)");
    };
    control(&["--instr=on"]);
    send(20);
    control(&["--zero"]);
    send(requests);
    control(&["--dump"]);
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
        return Instructions::default();
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
    counts
}

/// Instructions per request, and how many of them ran in compiled Wasm.
#[derive(Default, Clone, Copy)]
struct Instructions {
    total: f64,
    wasm: f64,
}

/// The configurations `make bench-instructions` counts: the baselines, each
/// filter and its native counterpart, the chain and the suite with its parts.
const COUNTED: [&str; 20] = [
    "bare",
    "noop wasm",
    "cf_headers",
    "native request_headers_to_add",
    "peer_metadata (small header)",
    "l7_policy 10 rules",
    "native RBAC 10 rules",
    "tap_http",
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
fn count_instructions(upstream: u16, all: &[Setup], requests: u32, whole: bool) {
    let started = std::time::Instant::now();
    let counted = |s: &Setup| !whole || COUNTED.contains(&s.name.as_str());
    // Each counted configuration and its baselines, in the usual order.
    let mut picked: Vec<usize> = Vec::new();
    for (i, s) in all.iter().enumerate().filter(|(_, s)| counted(s)) {
        let (bare, noop) = baselines(all, s);
        picked.extend([Some(i), bare, noop].into_iter().flatten());
    }
    picked.sort_unstable();
    picked.dedup();
    let chosen: Vec<&Setup> = picked.into_iter().map(|i| &all[i]).collect();
    let counts: Vec<Instructions> = chosen
        .iter()
        .map(|s| {
            let n = instructions(upstream, s, requests);
            eprintln!(
                "{:<48} {:>10.0} instructions/request ({:>7.0} in Wasm code)",
                s.name, n.total, n.wasm
            );
            n
        })
        .collect();
    let of = |name: &str| {
        chosen
            .iter()
            .position(|s| s.name == name)
            .map(|i| counts[i].total)
    };
    let ratio = |n: f64, base: Option<f64>| base.map(|b| n / b);
    let mut rows = Vec::new();
    for (s, n) in chosen.iter().zip(&counts) {
        let native = s.native.as_deref().and_then(of);
        let (bare, noop) = baselines(all, s);
        let name_of = |i: Option<usize>| i.and_then(|i| of(&all[i].name));
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
        "machine": machine(),
        "requests": requests,
        "elapsed_s": started.elapsed().as_secs(),
        "results": rows,
    });
    save_or_print("instructions.json", &doc, whole);
}

/// Writes a full run's results and regenerates the pages made from them
/// (bench/README.md, the chart, the README's headline); a partial run only
/// prints its results, keeping the last full ones.
fn save_or_print(file: &str, doc: &Value, save: bool) {
    if !save {
        println!("{}", bench::report::table(doc));
        return;
    }
    let text = serde_json::to_string_pretty(doc).expect("results as JSON");
    let root = workspace_root();
    let path = root.join("bench/results").join(file);
    std::fs::create_dir_all(path.parent().expect("bench/results")).expect("bench/results");
    std::fs::write(&path, text + "\n").unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    println!("written: bench/results/{file}");
    report(&root);
}

fn report(root: &std::path::Path) {
    if let Err(e) = bench::report::write(root) {
        eprintln!("bench report: {e}");
        std::process::exit(1);
    }
    println!("written: bench/README.md, bench/results/chart.svg, README.md (headline)");
}

fn main() {
    if std::env::args().any(|a| a == "--report") {
        report(&workspace_root());
        return;
    }
    // No debug logging on the request path while measuring.
    std::env::set_var("ENVOY_QUIET", "1");
    let rounds = env_u32("BENCH_ROUNDS", 3);
    let seconds = env_u32("BENCH_SECONDS", 3);
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let all: Vec<Setup> = setups()
        .into_iter()
        .filter(|s| only.split('|').any(|part| s.name.contains(part)))
        .collect();
    let upstream = fast_upstream();
    if let Some(requests) = std::env::var("BENCH_INSTRUCTIONS")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        count_instructions(upstream, &all, requests, only.is_empty());
        return;
    }
    let mut samples = vec![Samples::default(); all.len()];
    let started = std::time::Instant::now();
    for round in 0..rounds {
        // Alternate: each round starts at a different configuration.
        for k in 0..all.len() {
            let i = (k + round as usize * 7) % all.len();
            let (cpu, rps, p50, p99, bad) = measure(upstream, &all[i], seconds);
            let s = &mut samples[i];
            s.cpu_us.push(cpu);
            s.rps.push(rps);
            s.p50.push(p50);
            s.p99.push(p99);
            s.errors += bad;
            eprintln!("round {}/{rounds} {:<36} {cpu:>8.1} µs/request {rps:>8.0} rps p50 {p50:.2} ms p99 {p99:.2} ms", round + 1, all[i].name);
        }
    }
    let elapsed = started.elapsed();
    // A partial run (BENCH_ONLY) prints its table but keeps the last full results.
    write_results(&all, &samples, rounds, seconds, elapsed, only.is_empty());
    std::thread::sleep(Duration::from_millis(10));
}

fn machine() -> String {
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
    format!("{cpu}, {cores} cores, Envoy {envoy} (--concurrency 1), V8")
}

fn write_results(
    all: &[Setup],
    samples: &[Samples],
    rounds: u32,
    seconds: u32,
    elapsed: Duration,
    save: bool,
) {
    let by_name = |n: &str| all.iter().position(|s| s.name == n);
    let cpu = |i: usize| median(&samples[i].cpu_us);
    let mut rows = Vec::new();
    for (i, s) in all.iter().enumerate() {
        let c = cpu(i);
        let (lo, hi) = spread(&samples[i].cpu_us);
        let ratio = |j: Option<usize>| j.filter(|&j| j != i).map(|j| c / cpu(j));
        let (bare, noop) = baselines(all, s);
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
            "name": s.name, "rate": s.rate, "cpu_us_per_request": c, "cpu_us_min": lo, "cpu_us_max": hi,
            "rps": median(&samples[i].rps), "p50_ms": median(&samples[i].p50), "p99_ms": median(&samples[i].p99),
            "ratio_to_bare": vs_bare, "ratio_to_noop_wasm": vs_noop, "ratio_to_native": vs_native,
            "native": s.native, "non_2xx": samples[i].errors, "samples_cpu_us": samples[i].cpu_us,
        }));
    }
    let doc = json!({
        "machine": machine(),
        "rounds": rounds,
        "seconds": seconds,
        "connections": 16,
        "elapsed_s": elapsed.as_secs(),
        "runtimes": runtimes(),
        "sizes": sizes(),
        "results": rows,
    });
    save_or_print("results.json", &doc, save);
}

/// Which Wasm runtimes this Envoy build has: the benchmark runs on V8; the
/// others are tried with the no-op filter.
fn runtimes() -> String {
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
fn sizes() -> Value {
    let size = |path: std::path::PathBuf| std::fs::metadata(path).map_or(0, |m| m.len());
    let root = workspace_root();
    harness::MODULES
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
