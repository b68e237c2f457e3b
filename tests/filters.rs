//! Every filter of the one list (`filter_registry`: each
//! `filters/<name>/Cargo.toml` with a `[package.metadata.filter]` table), as
//! its own module with the example configuration it declares, in a real
//! Envoy: Envoy accepts it, and a request through it gets what the
//! filter's `check` table says, over HTTP/1.1 and HTTP/2; a network filter
//! passes bytes both ways. The filters' own test files go deeper; this one
//! makes sure a filter is never shipped untried. `smoke_*`: `make
//! test-old-envoy` runs it on the oldest supported Envoy too.

use filter_registry::{filters, Filter, Kind};
use harness::check;
use harness::client::Proto;
use harness::tcp::exchange;
use harness::{wasm_filter, wasm_network_filter, Bootstrap, Envoy, TcpEcho, Upstream};
use serde_json::json;

/// What went wrong for `filter`, if anything.
fn try_http(filter: &Filter) -> Vec<String> {
    let up = Upstream::start();
    let envoy = Envoy::start(&Bootstrap::http(
        up.port(),
        vec![wasm_filter(&filter.name, &filter.example)],
    ));
    [Proto::H1, Proto::H2]
        .into_iter()
        .flat_map(|proto| {
            let response = check::request(&filter.check).send(envoy.addr("main"), proto);
            let at = format!("{}, {proto:?}", filter.name);
            check::problems(&at, &filter.check, &response, || up.last())
        })
        .collect()
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
