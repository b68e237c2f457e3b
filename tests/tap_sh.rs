//! `envoyfilters/tap.sh` against fake `cf` and `kubectl` programs on PATH
//! that record every call and answer like the real ones: the happy path,
//! every error, cleanup after an interrupt; and the EnvoyFilter it applies,
//! run in a real Envoy inside an Istio-shaped sidecar.

use harness::client::Proto;
use harness::manifests::sidecar_listeners;
use harness::paths::{venv_tool, workspace_root};
use harness::tap::read_records;
use harness::tcp::echo_then_close;
use harness::{Bootstrap, Envoy, Request, TcpEcho, Upstream};
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const GUID: &str = "eb1534db-8765-430d-adfe-77fd1a8e45a9";

/// Fake `cf`: `FAKE_CF` = `ok` (default), `not-logged-in`, `not-found`.
const FAKE_CF: &str = r#"#!/usr/bin/env bash
echo "cf $*" >> "$FAKE_DIR/calls"
case ${FAKE_CF:-ok} in
  ok) echo "$FAKE_GUID" ;;
  not-logged-in) echo "Not logged in. Use 'cf login' or 'cf login --sso' to log in."; exit 1 ;;
  not-found) echo "App '$2' not found."; exit 1 ;;
esac
"#;

/// Fake `kubectl`. `FAKE_PODS`: pod names; `FAKE_FORBID`: a verb that is
/// forbidden; `FAKE_LOADED=never`: sidecars never load the filter;
/// `FAKE_TAPPED`: the tapped counter each sidecar reports.
const FAKE_KUBECTL: &str = r#"#!/usr/bin/env bash
echo "kubectl $*" >> "$FAKE_DIR/calls"
if [[ ${FAKE_FORBID:-} == "$1" ]]; then
  echo "Error from server (Forbidden): $1 is forbidden: User \"dev\" cannot $1 in namespace \"cf-workloads\"" >&2
  exit 1
fi
case $1 in
  get) echo -n "${FAKE_PODS:-}" ;;
  apply) cat > "$FAKE_DIR/applied.yaml" ;;
  delete) ;;
  cp)
    if [[ $2 == -c ]]; then                      # fetch: cp -c istio-proxy ns/pod:path dest
      cp "$FAKE_DIR/records.jsonl" "$5"
    fi ;;
  exec)
    shift 7                                       # exec -n NS POD -c istio-proxy --
    if [[ "$*" == "pilot-agent request GET stats" ]]; then
      echo "cluster.inbound|8080||.upstream_cx_total: 3"
      if [[ ${FAKE_LOADED:-yes} != never ]]; then
        echo "wasmcustom.tap_http.tapped: ${FAKE_TAPPED:-2}"
        echo "wasmcustom.tap_tcp.tapped: ${FAKE_TAPPED:-2}"
      fi
    fi ;;
esac
"#;

struct Fake {
    dir: PathBuf,
}

impl Fake {
    fn new() -> Fake {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = workspace_root().join(format!("target/tap-sh/{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        for (name, text) in [("cf", FAKE_CF), ("kubectl", FAKE_KUBECTL)] {
            let path = dir.join("bin").join(name);
            std::fs::write(&path, text).unwrap();
            Command::new("chmod").arg("+x").arg(&path).status().unwrap();
        }
        let record = r#"{"http_buffered_trace":{"request":{"headers":[{"key":":method","value":"GET"},{"key":":path","value":"/"}],"trailers":[]},"response":{"headers":[{"key":":status","value":"200"}],"trailers":[]}}}"#;
        std::fs::write(dir.join("records.jsonl"), format!("{record}\n{record}\n")).unwrap();
        Fake { dir }
    }

    fn command(&self, env: &[(&str, &str)], args: &[&str]) -> Command {
        let mut c = Command::new("bash");
        c.arg(workspace_root().join("envoyfilters/tap.sh"))
            .args(args)
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    self.dir.join("bin").display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            )
            .env("FAKE_DIR", &self.dir)
            .env("FAKE_GUID", GUID)
            .env("KUBECONFIG", "/dev/null")
            .current_dir(&self.dir);
        for (k, v) in env {
            c.env(k, v);
        }
        c
    }

    fn run(&self, env: &[(&str, &str)], args: &[&str]) -> Output {
        self.command(env, args).output().expect("run tap.sh")
    }

    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn applied(&self) -> Value {
        let text =
            std::fs::read_to_string(self.dir.join("applied.yaml")).expect("an applied manifest");
        serde_yaml::from_str(&text).expect("the applied manifest is YAML")
    }
}

/// `bootstrap` with the Istio-shaped sidecar listener `listener` (on `port`
/// if given) after applying the EnvoyFilter tap.sh applied: the module and
/// records that live in `/etc/istio/proxy` in a pod come from `dist/` and go
/// to the run's directory.
fn in_sidecar(
    mut bootstrap: Bootstrap,
    manifest: Value,
    filter: &str,
    listener: &str,
    port: Option<u16>,
) -> Bootstrap {
    let module = workspace_root().join("dist").join(format!("{filter}.wasm"));
    let rewrites = [
        (
            format!("/etc/istio/proxy/{filter}.wasm"),
            module.display().to_string(),
        ),
        ("/etc/istio/proxy/".to_string(), "@SCRATCH@/".to_string()),
    ];
    for mut l in sidecar_listeners(&[manifest], &rewrites) {
        if l["name"] == listener {
            if let Some(port) = port {
                l["address"]["socket_address"]["port_value"] = port.into();
            }
            bootstrap = bootstrap.raw_listener(l);
        }
    }
    bootstrap
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn count(calls: &[String], prefix: &str) -> usize {
    calls.iter().filter(|c| c.starts_with(prefix)).count()
}

#[test]
fn happy_path_taps_fetches_and_cleans_up() {
    let fake = Fake::new();
    let out = fake.dir.join("out");
    let o = fake.run(
        &[("FAKE_PODS", "app-0 app-1"), ("FAKE_TAPPED", "2")],
        &[
            "--count",
            "4",
            "--duration",
            "30",
            "--method",
            "GET",
            "--out",
            out.to_str().unwrap(),
            "my-app",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let calls = fake.calls();
    assert_eq!(calls[0], "cf app my-app --guid");
    assert_eq!(
        calls[1],
        format!("kubectl get pods -n cf-workloads -l cloudfoundry.org/app_guid={GUID} -o jsonpath={{.items[*].metadata.name}}")
    );
    assert_eq!(
        count(&calls, "kubectl cp "),
        4,
        "ship to and fetch from both pods: {calls:#?}"
    );
    assert!(calls
        .iter()
        .any(|c| c.contains("tap_http.wasm cf-workloads/app-0:/etc/istio/proxy/tap_http.wasm")));
    assert!(calls.iter().any(|c| c.contains(&format!(
        "cf-workloads/app-1:/etc/istio/proxy/tap-{GUID}.jsonl"
    ))));
    assert!(calls
        .iter()
        .any(|c| c.ends_with("pilot-agent request POST reopen_logs")));
    let apply = calls
        .iter()
        .position(|c| c == "kubectl apply -f -")
        .expect("applied");
    let delete = calls
        .iter()
        .position(|c| {
            *c == format!(
                "kubectl delete envoyfilter -n cf-workloads {GUID}-tap --ignore-not-found"
            )
        })
        .expect("deleted");
    assert!(apply < delete);
    assert_eq!(
        count(
            &calls,
            "kubectl exec -n cf-workloads app-0 -c istio-proxy -- rm -f"
        ),
        1,
        "{calls:#?}"
    );
    for pod in ["app-0", "app-1"] {
        assert_eq!(
            std::fs::read_to_string(out.join(format!("{pod}.jsonl")))
                .unwrap()
                .lines()
                .count(),
            2
        );
    }
    let manifest = fake.applied();
    assert_eq!(manifest["metadata"]["name"], format!("{GUID}-tap"));
    assert_eq!(manifest["metadata"]["namespace"], "cf-workloads");
    assert_eq!(
        manifest["spec"]["workloadSelector"]["labels"]["cloudfoundry.org/app_guid"],
        GUID
    );
    let plugin: Value = serde_json::from_str(
        manifest["spec"]["configPatches"][0]["patch"]["value"]["typed_config"]["config"]
            ["configuration"]["value"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        plugin["match"],
        serde_json::json!({"and": [{"method": "GET"}]})
    );
    assert_eq!(plugin["max_records"], 4);
}

/// The manifest tap.sh applies, with its match options, in a real Envoy.
#[test]
fn the_applied_manifest_taps_in_envoy() {
    let fake = Fake::new();
    let o = fake.run(
        &[("FAKE_PODS", "app-0")],
        &[
            "--guid",
            GUID,
            "--count",
            "1",
            "--method",
            "POST",
            "--path",
            "/api/",
            "--header",
            "x-debug=1",
            "--status",
            "200-299",
            "--max-body",
            "16",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let app = Upstream::start();
    let bootstrap = Bootstrap::new(app.port()).cluster("inbound|8080||", app.port());
    let bootstrap = in_sidecar(
        bootstrap,
        fake.applied(),
        "tap_http",
        "virtualInbound",
        None,
    );
    let envoy = Envoy::start(&bootstrap);
    let addr = envoy.addr("virtualInbound");
    Request::new("POST", "/api/orders")
        .header("x-debug", "1")
        .body("0123456789abcdefXYZ")
        .send(addr, Proto::H1);
    Request::new("POST", "/api/orders")
        .body("not matched: no header")
        .send(addr, Proto::H1);
    Request::get("/api/orders")
        .header("x-debug", "1")
        .send(addr, Proto::H2);
    let records = read_records(&envoy.scratch().join(format!("tap-{GUID}.jsonl")), 1);
    std::thread::sleep(Duration::from_millis(300));
    let records = read_records(
        &envoy.scratch().join(format!("tap-{GUID}.jsonl")),
        records.len(),
    );
    assert_eq!(records.len(), 1, "only the matching request");
    let body = &records[0]["http_buffered_trace"]["request"]["body"];
    assert_eq!(body["truncated"], true, "--max-body 16");
    assert!(records[0]["stream_info"]["start_time"].is_string());
}

#[test]
fn tcp_mode_manifest_taps_in_envoy() {
    // The sidecar listener takes the tapped port itself, so that the
    // destination port the filter matches is the one asked for (in a pod,
    // original_dst restores the app's port).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let fake = Fake::new();
    let o = fake.run(
        &[("FAKE_PODS", "app-0")],
        &["--guid", GUID, "--count", "1", "--tcp", &port.to_string()],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let manifest = fake.applied();
    assert_eq!(
        manifest["spec"]["configPatches"][0]["match"]["listener"]["portNumber"],
        port
    );
    let echo = TcpEcho::start();
    let app = Upstream::start();
    let bootstrap = Bootstrap::new(app.port()).cluster("inbound|9000||", echo.port());
    let bootstrap = in_sidecar(
        bootstrap,
        manifest,
        "tap_tcp",
        "virtualInboundTcp",
        Some(port),
    );
    let envoy = Envoy::start(&bootstrap);
    assert_eq!(
        echo_then_close(envoy.addr("virtualInboundTcp"), b"hello"),
        b"hello"
    );
    let records = read_records(&envoy.scratch().join(format!("tap-{GUID}-tcp.jsonl")), 1);
    let read = &records[0]["socket_buffered_trace"]["events"][0]["read"]["data"]["as_bytes"];
    assert_eq!(read, "aGVsbG8=");
}

#[test]
fn errors_are_clear_and_exit_non_zero() {
    /// Environment, arguments, exit code, message.
    type Case<'a> = (Vec<(&'a str, &'a str)>, Vec<&'a str>, i32, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec![("KUBECONFIG", "")],
            vec!["my-app"],
            3,
            "KUBECONFIG is not set",
        ),
        (
            vec![("FAKE_CF", "not-logged-in")],
            vec!["my-app"],
            4,
            "cf is not logged in",
        ),
        (
            vec![("FAKE_CF", "not-found")],
            vec!["ghost"],
            5,
            "app 'ghost' not found",
        ),
        (
            vec![("FAKE_PODS", "")],
            vec!["my-app"],
            7,
            "no pods labelled cloudfoundry.org/app_guid=",
        ),
        (
            vec![("FAKE_PODS", "app-0"), ("FAKE_FORBID", "get")],
            vec!["my-app"],
            6,
            "kubectl is not allowed",
        ),
        (
            vec![("FAKE_PODS", "app-0")],
            vec!["--format", "xml", "my-app"],
            2,
            "--format is jsonl, har or pcap",
        ),
        (
            vec![("FAKE_PODS", "app-0")],
            vec!["--status", "abc", "my-app"],
            2,
            "--status is a code",
        ),
        (
            vec![("FAKE_PODS", "app-0")],
            vec!["--tcp", "80", "--method", "GET", "my-app"],
            2,
            "apply to HTTP",
        ),
        (vec![], vec![], 2, "name the app"),
    ];
    for (env, args, code, message) in cases {
        let fake = Fake::new();
        let o = fake.run(&env, &args);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(message),
            "{args:?}: wanted {message:?} in {}",
            stderr(&o)
        );
        assert_eq!(count(&fake.calls(), "kubectl apply"), 0, "{args:?}");
    }
}

#[test]
fn failures_after_install_still_clean_up() {
    // Forbidden to apply: the shipped modules are removed.
    let fake = Fake::new();
    let o = fake.run(
        &[("FAKE_PODS", "app-0"), ("FAKE_FORBID", "apply")],
        &["my-app"],
    );
    assert_eq!(o.status.code(), Some(6), "{}", stderr(&o));
    assert!(stderr(&o).contains("kubectl is not allowed"));
    let calls = fake.calls();
    assert_eq!(
        count(
            &calls,
            "kubectl exec -n cf-workloads app-0 -c istio-proxy -- rm -f"
        ),
        1,
        "{calls:#?}"
    );
    assert_eq!(count(&calls, "kubectl delete"), 0, "nothing was applied");
    // The filter never loads: a timeout, then everything removed.
    let fake = Fake::new();
    let o = fake.run(
        &[("FAKE_PODS", "app-0"), ("FAKE_LOADED", "never")],
        &["--timeout", "2", "my-app"],
    );
    assert_eq!(o.status.code(), Some(8), "{}", stderr(&o));
    assert!(stderr(&o).contains("did not load tap_http within 2s"));
    let calls = fake.calls();
    assert_eq!(count(&calls, "kubectl delete envoyfilter"), 1, "{calls:#?}");
    assert_eq!(
        count(
            &calls,
            "kubectl exec -n cf-workloads app-0 -c istio-proxy -- rm -f"
        ),
        1
    );
}

fn wait_for_call(fake: &Fake, child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !fake.calls().iter().any(|c| c.contains(what)) {
        assert!(child.try_wait().unwrap().is_none(), "tap.sh ended early");
        assert!(
            Instant::now() < deadline,
            "no call {what:?}: {:#?}",
            fake.calls()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn interrupted_capture_cleans_up() {
    let fake = Fake::new();
    let mut child = fake
        .command(
            &[("FAKE_PODS", "app-0 app-1")],
            &["--duration", "120", "my-app"],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tap.sh");
    wait_for_call(&fake, &mut child, "pilot-agent request GET stats");
    std::thread::sleep(Duration::from_millis(300));
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert!(stderr(&o).contains("interrupted, cleaning up"));
    let calls = fake.calls();
    assert_eq!(count(&calls, "kubectl delete envoyfilter"), 1, "{calls:#?}");
    assert_eq!(
        count(
            &calls,
            "kubectl exec -n cf-workloads app-1 -c istio-proxy -- rm -f"
        ),
        1
    );
}

#[test]
fn dry_run_and_keep() {
    let fake = Fake::new();
    let o = fake.run(&[], &["--guid", GUID, "--dry-run"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        fake.calls().is_empty(),
        "dry run calls nothing: {:#?}",
        fake.calls()
    );
    let printed: Value = serde_yaml::from_slice(&o.stdout).unwrap();
    assert_eq!(printed["kind"], "EnvoyFilter");
    let fake = Fake::new();
    let o = fake.run(
        &[("FAKE_PODS", "app-0")],
        &["--guid", GUID, "--count", "1", "--keep"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("left installed"));
    assert_eq!(count(&fake.calls(), "kubectl delete"), 0);
}

fn tap_tool() -> PathBuf {
    let bin = workspace_root().join("target/debug/tap");
    if !bin.exists() {
        let status = Command::new("cargo")
            .args(["build", "-q", "-p", "tap-tool"])
            .current_dir(workspace_root())
            .status()
            .expect("cargo");
        assert!(status.success());
    }
    bin
}

#[test]
fn har_and_pcap_formats_use_the_tap_tool() {
    let fake = Fake::new();
    std::os::unix::fs::symlink(tap_tool(), fake.dir.join("bin/tap")).unwrap();
    for (format, file) in [("har", "records.har"), ("pcap", "records.pcap")] {
        let out = fake.dir.join(format!("out-{format}"));
        let o = fake.run(
            &[("FAKE_PODS", "app-0")],
            &[
                "--guid",
                GUID,
                "--count",
                "1",
                "--format",
                format,
                "--out",
                out.to_str().unwrap(),
            ],
        );
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let written = std::fs::read(out.join(file)).unwrap();
        if format == "har" {
            let doc: Value = serde_json::from_slice(&written).unwrap();
            assert_eq!(doc["log"]["entries"].as_array().unwrap().len(), 2);
        } else {
            assert_eq!(&written[..4], &0xa1b2_c3d4u32.to_le_bytes());
        }
    }
    // Without the tool, the format is refused before anything happens.
    let fake = Fake::new();
    let o = fake.run(
        &[
            ("FAKE_PODS", "app-0"),
            (
                "PATH",
                &format!("{}:/usr/bin:/bin", fake.dir.join("bin").display()),
            ),
        ],
        &["--format", "har", "my-app"],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("needs the tap tool"));
}

#[test]
fn shellcheck_is_clean() {
    let root = workspace_root();
    let o = Command::new(venv_tool("shellcheck"))
        .arg(root.join("envoyfilters/tap.sh"))
        .arg(root.join("tests/fresh-clone.sh"))
        .arg(root.join(".ci/run"))
        .output()
        .expect("run shellcheck");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
}
