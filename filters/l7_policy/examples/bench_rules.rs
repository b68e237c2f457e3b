//! `cargo run --release -p l7_policy --example bench_rules`: the native cost of deciding one request with
//! 1, 10, 100 and 1000 rules (the filter's work inside Envoy, without the
//! wasm boundary). Prints figures; asserts nothing about time.

use filter_common::header::pairs::HeaderMap;
use l7_policy::config::Config;
use l7_policy::rule::{Caller, Repeated, Request};
use std::hint::black_box;
use std::time::Instant;

/// The method of rule `i`: the rules cycle through four.
fn method(i: usize) -> &'static str {
    match i % 4 {
        0 => "GET",
        1 => "POST",
        2 => "PUT",
        _ => "DELETE",
    }
}

fn config(n: usize) -> Config {
    let rules: Vec<String> = (0..n)
        .map(|i| {
            let method = method(i);
            format!(r#"{{"method": "{method}", "path": "/api/v1/service{i}/[a-z0-9]+"}}"#)
        })
        .collect();
    let json = format!(r#"{{"rules": [{}]}}"#, rules.join(","));
    match Config::parse(Some(json.as_bytes())) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("bench_rules: {e}");
            std::process::exit(1);
        }
    }
}

fn decide(config: &Config, method: &str, path: &str) -> Option<usize> {
    let caller = Caller::default();
    let headers = HeaderMap::default();
    let request = Request {
        method: method.as_bytes(),
        path: path.as_bytes(),
        host: Some("app.example.com"),
        headers: &headers,
        caller: &caller,
        repeated: Repeated::Joined,
    };
    config.decide(&request).map(|(i, _)| i)
}

fn main() {
    println!(
        "{:>6} {:>16} {:>16}",
        "rules", "last rule (ns)", "no rule (ns)"
    );
    for n in [1, 10, 100, 1000] {
        let c = config(n);
        let last = n - 1;
        let method = method(last);
        let hit = format!("/api/v1/service{last}/abc123");
        if decide(&c, method, &hit) != Some(last) {
            eprintln!("bench_rules: {hit} is not decided by rule {last}");
            std::process::exit(1);
        }
        let iterations = 200_000 / n.max(1) + 1000;
        let time = |method: &str, path: &str| {
            let start = Instant::now();
            for _ in 0..iterations {
                black_box(decide(&c, black_box(method), black_box(path)));
            }
            start.elapsed().as_nanos() as f64 / iterations as f64
        };
        let (a, b) = (time(method, &hit), time("PATCH", "/nothing/here"));
        println!("{n:>6} {a:>16.0} {b:>16.0}");
    }
}
