//! What Envoy does with requests after a Wasm VM fails, under each failure
//! policy of `envoy.extensions.wasm.v3.PluginConfig`: `failure_policy`
//! `FAIL_CLOSED`, `FAIL_OPEN` and `FAIL_RELOAD` (with the default backoff
//! and with a long one), neither field set, and the deprecated
//! `fail_open: true` that the shipped tap manifests use.
//!
//! The `trap` fixture (`tests/fixtures/trap`) traps its VM on a request
//! with `x-trap: now` and otherwise names its VM in the response (`x-vm`,
//! `x-vm-request`), so a test sees whether the filter ran and whether in a
//! fresh VM. One Envoy (one worker) has a listener per policy, each with
//! its own VM; every listener gets the same requests, over HTTP/1.1 and
//! HTTP/2. Envoy 1.36.2 and 1.40.0 do the same (`make test-old-envoy`
//! runs this on 1.36.2); the expectations hold for both. The findings, for
//! readers: `tests/fixtures/README.md`.

use harness::bootstrap::wasm_fixture;
use harness::client::Proto;
use harness::tap::read_records;
use harness::{paths, Bootstrap, Envoy, Request, Upstream};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

/// `FAIL_RELOAD` reloads a failed VM only when the last load is older than
/// the backoff: at least its base interval (1 s by default), at most 1.5
/// times it (Envoy's `JitteredLowerBoundBackOffStrategy`). Waiting this
/// long makes the next request reload.
const PAST_DEFAULT_BACKOFF: Duration = Duration::from_millis(1600);

/// One listener and the `PluginConfig` fields that set its failure policy.
struct Policy {
    listener: &'static str,
    fields: Value,
}

fn policies() -> Vec<Policy> {
    vec![
        Policy {
            listener: "closed",
            fields: json!({"failure_policy": "FAIL_CLOSED"}),
        },
        Policy {
            listener: "open",
            fields: json!({"failure_policy": "FAIL_OPEN"}),
        },
        Policy {
            listener: "reload",
            fields: json!({"failure_policy": "FAIL_RELOAD"}),
        },
        // A backoff no test outlasts: the failed VM is never reloaded here.
        Policy {
            listener: "reload_slow",
            fields: json!({"failure_policy": "FAIL_RELOAD",
                           "reload_config": {"backoff": {"base_interval": "60s"}}}),
        },
        // What the harness and the fail-closed manifests configure.
        Policy {
            listener: "unset",
            fields: json!({}),
        },
        // Deprecated; what the tap manifests (and Istio's FAIL_OPEN) configure.
        Policy {
            listener: "legacy_fail_open",
            fields: json!({"fail_open": true}),
        },
    ]
}

/// The `trap` fixture under `envoy.filters.http.wasm`, in its own VM (a
/// shared `vm_id` would share the VM, and its failure, between listeners),
/// with `fields` in place of the harness's `fail_open: false`.
fn trap_filter(listener: &str, fields: &Value) -> Value {
    let mut filter = wasm_fixture("trap", &json!({}));
    let config = &mut filter["typed_config"]["config"];
    let name = format!("trap_{listener}");
    config["name"] = json!(name);
    config["root_id"] = json!(name);
    config["vm_config"]["vm_id"] = json!(name);
    let config = config.as_object_mut().expect("plugin config");
    config.remove("fail_open");
    for (key, value) in fields.as_object().expect("fields") {
        config.insert(key.clone(), value.clone());
    }
    filter
}

fn access_log() -> Value {
    json!({"access_log": [{
        "name": "envoy.access_loggers.file",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "path": "@SCRATCH@/access.log",
            "log_format": {"json_format": {
                "path": "%REQ(:PATH)%",
                "code": "%RESPONSE_CODE%",
                "details": "%RESPONSE_CODE_DETAILS%"
            }}
        }
    }]})
}

fn bootstrap(app: &Upstream, policies: &[Policy]) -> Bootstrap {
    policies.iter().fold(Bootstrap::new(app.port()), |b, p| {
        let route = json!({"match": {"prefix": "/"}, "route": {"cluster": "upstream"}});
        b.listener_with(
            p.listener,
            vec![trap_filter(p.listener, &p.fields)],
            json!([{"name": p.listener, "domains": ["*"], "routes": [route]}]),
            access_log(),
        )
    })
}

/// `1.40.0` from `envoy --version`.
fn envoy_version() -> String {
    let output = Command::new(paths::envoy_bin())
        .arg("--version")
        .output()
        .expect("envoy --version");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.split("version: ")
        .nth(1)
        .and_then(|v| v.split('/').nth(1))
        .unwrap_or_else(|| panic!("no version in {text:?}"))
        .to_string()
}

/// What one request met, by the response, the upstream and the access log.
#[derive(Debug)]
enum Seen {
    /// 200 from the app with the filter's `x-vm` and `x-vm-request`.
    Filter { vm: String, request: String },
    /// 200 from the app without them: the filter did not run.
    Skipped,
    /// Envoy's own 503 (empty body); the request never reached the app.
    Failed,
}

struct Run<'a> {
    envoy: &'a Envoy,
    app: &'a Upstream,
    /// Each request's path and what it met, per listener in order.
    seen: HashMap<&'static str, Vec<(String, Seen)>>,
}

impl Run<'_> {
    fn send(&mut self, listener: &'static str, trap: bool, proto: Proto) {
        let list = self.seen.entry(listener).or_default();
        let path = format!("/{listener}/{}", list.len() + 1);
        let mut request = Request::get(&path);
        if trap {
            request = request.header("x-trap", "now");
        }
        let response = request.send(self.envoy.addr(listener), proto);
        let reached = self.app.received().iter().any(|r| r.path == path);
        let text = |name: &str| {
            let values = response.header(name);
            (!values.is_empty()).then(|| String::from_utf8_lossy(values[0]).into_owned())
        };
        let got = (response.status, reached, text("x-vm"), text("x-vm-request"));
        let seen = match got {
            (200, true, Some(vm), Some(request)) => Seen::Filter { vm, request },
            (200, true, None, None) => Seen::Skipped,
            (503, false, None, None) if response.body.is_empty() => Seen::Failed,
            // (status, reached the app, x-vm, x-vm-request)
            other => panic!("{path} over {proto:?}: {other:?}"),
        };
        list.push((path, seen));
    }

    /// A listener's requests in order, VMs named by first appearance:
    /// `vm1#2` is the second request the first VM answered, `pass` a
    /// request the app got without the filter, `503` Envoy's answer.
    fn story(&self, listener: &str) -> Vec<String> {
        let mut vms: Vec<&str> = Vec::new();
        self.seen[listener]
            .iter()
            .map(|(_, seen)| match seen {
                Seen::Filter { vm, request } => {
                    let at = vms
                        .iter()
                        .position(|v| *v == vm.as_str())
                        .unwrap_or_else(|| {
                            vms.push(vm);
                            vms.len() - 1
                        });
                    format!("vm{}#{request}", at + 1)
                }
                Seen::Skipped => "pass".into(),
                Seen::Failed => "503".into(),
            })
            .collect()
    }
}

#[test]
fn failure_policies_after_a_vm_trap() {
    let version = envoy_version();
    let app = Upstream::start();
    let policies = policies();
    let envoy = Envoy::start(&bootstrap(&app, &policies));
    let runtime = paths::wasm_runtime();
    let created = || envoy.counter(&format!("wasm.{runtime}.created"));
    let mut run = Run {
        envoy: &envoy,
        app: &app,
        seen: HashMap::new(),
    };
    let listeners: Vec<&'static str> = policies.iter().map(|p| p.listener).collect();

    // 1: every filter runs.
    for &l in &listeners {
        run.send(l, false, Proto::H1);
    }
    let created_before = created();
    // Past the backoff since each VM was loaded at start, so that the
    // first request after a trap may reload.
    std::thread::sleep(PAST_DEFAULT_BACKOFF);
    // 2-7, one listener after the other: FAIL_RELOAD's 3 (a reload) to 7
    // must fall within the 1 s backoff that 3 starts.
    for &l in &listeners {
        run.send(l, true, Proto::H1); // 2: the trap
        let reload = Instant::now();
        run.send(l, false, Proto::H2); // 3
        run.send(l, false, Proto::H1); // 4
        run.send(l, true, Proto::H2); // 5: another trap
        run.send(l, false, Proto::H1); // 6
        run.send(l, false, Proto::H2); // 7
        let took = reload.elapsed();
        assert!(
            took < Duration::from_millis(900),
            "requests 3 to 7 took {took:?}: too slow to see the 1 s backoff"
        );
    }
    std::thread::sleep(PAST_DEFAULT_BACKOFF);
    for &l in &listeners {
        run.send(l, false, Proto::H1); // 8
        run.send(l, false, Proto::H2); // 9
    }

    let on = format!("Envoy {version}");
    let story = |l: &str| run.story(l);
    let closed = [
        "vm1#1", "503", "503", "503", "503", "503", "503", "503", "503",
    ];
    // FAIL_CLOSED: the trapping request and every request after it get 503,
    // with or without a wait, until Envoy restarts (or the listener's
    // configuration changes).
    assert_eq!(story("closed"), closed, "FAIL_CLOSED on {on}");
    // Neither field set: FAIL_CLOSED.
    assert_eq!(story("unset"), closed, "no failure policy on {on}");
    // FAIL_OPEN: the trapping request still gets 503; every later request,
    // trapping ones included, reaches the app without the filter, for good.
    assert_eq!(
        story("open"),
        ["vm1#1", "503", "pass", "pass", "pass", "pass", "pass", "pass", "pass"],
        "FAIL_OPEN on {on}"
    );
    // fail_open: true is FAIL_OPEN, except that the trapping request too
    // reaches the app.
    assert_eq!(
        story("legacy_fail_open"),
        ["vm1#1", "pass", "pass", "pass", "pass", "pass", "pass", "pass", "pass"],
        "fail_open: true on {on}"
    );
    // FAIL_RELOAD: the trapping request gets 503; the next request (3) runs
    // in a fresh VM (counting from 1 again), which later requests keep. A
    // trap (5) within the backoff of the last load (3) leaves 503s (6, 7)
    // until the backoff has passed; then the next request (8) reloads.
    assert_eq!(
        story("reload"),
        ["vm1#1", "503", "vm2#1", "vm2#2", "503", "503", "503", "vm3#1", "vm3#2"],
        "FAIL_RELOAD on {on}"
    );
    // FAIL_RELOAD with a 60 s backoff: every request of this test is within
    // it, so it answers as FAIL_CLOSED does.
    assert_eq!(
        story("reload_slow"),
        closed,
        "FAIL_RELOAD, 60 s backoff, on {on}"
    );

    // Each policy's failed requests are Envoy's local reply `wasm_fail_stream`.
    let total: usize = listeners.iter().map(|l| run.seen[l].len()).sum();
    let details: HashMap<String, String> = read_records(&envoy.scratch().join("access.log"), total)
        .iter()
        .map(|r| {
            let code = r["code"]
                .as_u64()
                .map_or(r["code"].to_string(), |c| c.to_string());
            (
                r["path"].as_str().unwrap_or_default().to_string(),
                format!("{code} {}", r["details"].as_str().unwrap_or_default()),
            )
        })
        .collect();
    for (path, seen) in run.seen.values().flatten() {
        let want = match seen {
            Seen::Failed => "503 wasm_fail_stream",
            _ => "200 via_upstream",
        };
        assert_eq!(
            details.get(path).map(String::as_str),
            Some(want),
            "{path} on {on}"
        );
    }

    // Stats `wasm.<plugin name>.vm_reload_{success,backoff,failure}`:
    // reloads and requests held back by the backoff (one per request).
    // `wasm.<plugin name>.vm_reload` exists but stays 0.
    let reloads = |l: &str| {
        [
            "vm_reload",
            "vm_reload_success",
            "vm_reload_backoff",
            "vm_reload_failure",
        ]
        .map(|s| envoy.counter(&format!("wasm.trap_{l}.{s}")))
    };
    assert_eq!(reloads("reload"), [0, 2, 2, 0], "FAIL_RELOAD stats on {on}");
    // Every request after the trap, trapping ones included: 7.
    assert_eq!(
        reloads("reload_slow"),
        [0, 0, 7, 0],
        "FAIL_RELOAD (60 s) stats on {on}"
    );
    for l in ["closed", "open", "unset", "legacy_fail_open"] {
        assert_eq!(reloads(l), [0; 4], "{l} stats on {on}");
    }
    // Each reload is one more VM created; no other policy creates any.
    assert_eq!(created() - created_before, 2, "VMs created on {on}");
    assert!(
        envoy
            .log()
            .contains("Function: proxy_on_request_headers failed"),
        "the trap is in Envoy's log"
    );
}

/// `fail_open` and `failure_policy` together are refused.
#[test]
fn fail_open_and_failure_policy_together_are_refused() {
    let app = Upstream::start();
    let both = [Policy {
        listener: "both",
        fields: json!({"fail_open": true, "failure_policy": "FAIL_RELOAD"}),
    }];
    let refused = Envoy::validate_bootstrap(&bootstrap(&app, &both))
        .expect_err("Envoy accepted fail_open with failure_policy");
    assert!(
        refused.contains("only one of fail_open or failure_policy can be set"),
        "{refused}"
    );
}
