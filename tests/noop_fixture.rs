//! The benchmark's no-op fixture makes exactly the host calls its
//! configuration names, so that the probes price what they say.

use harness::bootstrap::wasm_fixture;
use harness::client::Proto;
use harness::{Bootstrap, Envoy, Request, Upstream};
use serde_json::{json, Value};

fn text(values: Vec<&[u8]>) -> Vec<String> {
    values
        .into_iter()
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

fn start(app: &Upstream, config: Value) -> Envoy {
    Envoy::start(&Bootstrap::http(
        app.port(),
        vec![wasm_fixture("noop", &config)],
    ))
}

fn send(envoy: &Envoy) {
    Request::get("/")
        .header("x-probe-0", "client")
        .header("x-envoy-peer-metadata", "seed")
        .send(envoy.addr("main"), Proto::H1);
}

#[test]
fn noop_changes_nothing_and_probes_make_the_calls_named() {
    let app = Upstream::start();
    let idle = start(&app, json!({}));
    send(&idle);
    let got = app.last();
    assert_eq!(text(got.header("x-probe-0")), ["client"]);
    assert_eq!(text(got.header("x-envoy-peer-metadata")), ["seed"]);
    assert_eq!(idle.counter("wasmcustom.probe"), 0);
    drop(idle);

    let probe = start(
        &app,
        json!({"set_header": 2, "add_header": 1, "remove_header": 1, "set_map": 2,
               "read_map": 1, "raw_map": 1, "get_property": 1, "increment": 3}),
    );
    send(&probe);
    send(&probe);
    let got = app.last();
    assert_eq!(text(got.header("x-probe-0")), ["value", "value"]);
    assert_eq!(text(got.header("x-probe-1")), ["value"]);
    assert!(got.header("x-envoy-peer-metadata").is_empty());
    assert_eq!(probe.counter("wasmcustom.probe"), 6);
}
