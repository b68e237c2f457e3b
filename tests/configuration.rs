//! What every module does with a configuration document as a whole, in a
//! real Envoy: a key given twice in one object is refused, naming the key,
//! instead of the last one silently winning.

use harness::bootstrap::wasm_filter_raw;
use harness::{wasm_network_filter, Bootstrap, Envoy, Upstream};
use serde_json::json;

/// A valid configuration for each module with one key repeated, and the
/// field the refusal must name.
const DUPLICATED: [(&str, &str, &str); 6] = [
    (
        "l7_policy",
        r#"{"rules": [{"method": "GET"}], "dry_run": false, "rules": [{}]}"#,
        "rules",
    ),
    (
        "cf_headers",
        r#"{"app_guid": "a", "process_type": "web", "org_guid": "o", "space_guid": "s", "app_guid": "b"}"#,
        "app_guid",
    ),
    (
        "peer_metadata",
        r#"{"headers": {"namespace": "x-ns", "namespace": "x-ns2"}}"#,
        "headers.namespace",
    ),
    (
        "tap_http",
        r#"{"max_request_bytes": 10, "max_request_bytes": 20}"#,
        "max_request_bytes",
    ),
    (
        "suite",
        r#"{"l7_policy": {"rules": [{"path": "/a"}, {"path": "/b", "path": "/c"}]}}"#,
        "l7_policy.rules[1].path",
    ),
    (
        "tap_tcp",
        r#"{"max_read_bytes": 1024, "max_read_bytes": 2048}"#,
        "max_read_bytes",
    ),
];

/// A listener with `module` configured by `configuration`, verbatim.
fn bootstrap(app: &Upstream, module: &str, configuration: &str) -> Bootstrap {
    if module == "tap_tcp" {
        let mut filter = wasm_network_filter(module, &json!({}));
        filter["typed_config"]["config"]["configuration"]["value"] = json!(configuration);
        Bootstrap::new(app.port()).tcp_listener(
            "tcp",
            vec![filter],
            "upstream",
            json!({}),
            json!({}),
        )
    } else {
        Bootstrap::http(app.port(), vec![wasm_filter_raw(module, configuration)])
    }
}

#[test]
fn a_key_given_twice_is_refused_naming_it() {
    let app = Upstream::start();
    for (module, configuration, field) in DUPLICATED {
        let message =
            format!("{module}: invalid plugin configuration: field `{field}`: appears twice");
        Envoy::refuses(&bootstrap(&app, module, configuration), &[&message]);
    }
}

/// The same documents with the repetition removed load: the refusal is about
/// the repetition, not about the values.
#[test]
fn the_same_documents_without_the_repetition_load() {
    let app = Upstream::start();
    for (module, configuration, _) in DUPLICATED {
        let last_wins: serde_json::Value = serde_json::from_str(configuration).unwrap();
        if let Err(e) = Envoy::try_start(&bootstrap(&app, module, &last_wins.to_string())) {
            panic!("{module} refused {last_wins}:\n{}", e.log);
        }
    }
}
