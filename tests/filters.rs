//! Every filter of the one list (`filter_registry`: each
//! `filters/<name>/Cargo.toml` with a `[package.metadata.filter]` table), as
//! its own module with the example configuration it declares, in a real
//! Envoy: Envoy accepts it, and a request through it gets what the
//! filter's `check` table says, over HTTP/1.1 and HTTP/2; a network filter
//! passes bytes both ways. The filters' own test files go deeper; this one
//! makes sure a filter is never shipped untried. `smoke_*`: `make
//! test-old-envoy` runs it on the oldest supported Envoy too.

use filter_registry::{filters, Filter, Kind};
use harness::client::Proto;
use harness::tcp::exchange;
use harness::{wasm_filter, wasm_network_filter, Bootstrap, Envoy, Request, TcpEcho, Upstream};
use serde_json::json;

fn text(values: Vec<&[u8]>) -> Vec<String> {
    values
        .into_iter()
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

/// What went wrong for `filter`, if anything.
fn try_http(filter: &Filter) -> Vec<String> {
    let up = Upstream::start();
    let envoy = Envoy::start(&Bootstrap::http(
        up.port(),
        vec![wasm_filter(&filter.name, &filter.example)],
    ));
    let check = &filter.check;
    let mut problems = Vec::new();
    for proto in [Proto::H1, Proto::H2] {
        let mut request = Request::get("/");
        for (name, value) in &check.request_headers {
            request = request.header(name, value);
        }
        let response = request.send(envoy.addr("main"), proto);
        let at = format!("{}, {proto:?}", filter.name);
        if response.status != check.status {
            problems.push(format!(
                "{at}: status {} (want {})",
                response.status, check.status
            ));
        }
        for (name, value) in &check.response_headers {
            let got = text(response.header(name));
            if got != [value.clone()] {
                problems.push(format!(
                    "{at}: response header {name}: {got:?} (want {value:?})"
                ));
            }
        }
        if !check.upstream_headers.is_empty() {
            let received = up.last();
            for (name, value) in &check.upstream_headers {
                let got = text(received.header(name));
                if got != [value.clone()] {
                    problems.push(format!("{at}: app got {name}: {got:?} (want {value:?})"));
                }
            }
        }
    }
    problems
}

fn try_network(filter: &Filter) -> Vec<String> {
    let echo = TcpEcho::start();
    let envoy = Envoy::start(
        &Bootstrap::new(echo.port())
            .cluster("echo", echo.port())
            .tcp_listener(
                "tcp",
                vec![wasm_network_filter(&filter.name, &filter.example)],
                "echo",
                json!({}),
                json!({}),
            ),
    );
    let sent = b"hello through the filter\r\n".to_vec();
    let got = exchange(envoy.addr("tcp"), &sent, 5);
    if got == sent {
        Vec::new()
    } else {
        vec![format!("{}: echo gave {got:?}", filter.name)]
    }
}

#[test]
fn smoke_every_filter_runs_its_example_and_passes_its_check() {
    let all = filters().unwrap_or_else(|e| panic!("{e}"));
    assert!(all.len() >= 5, "{all:?}");
    let problems: Vec<String> = all
        .iter()
        .flat_map(|f| match f.kind {
            Kind::Http => try_http(f),
            Kind::Network => try_network(f),
        })
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
