//! `envoyfilters/tap.sh` against fake `cf` and `kubectl` programs on PATH
//! that record every call and answer like the real ones: the happy path,
//! every error, cleanup after failures and an interrupt, pods that appear
//! mid-capture, the wait for the sidecars' access-log flush, records read
//! from `kubectl logs` on a proxy image without tar, the caps and the port
//! checks; the `kubectl get` templates in a real kubectl; and the
//! EnvoyFilter it applies (module inline) run in a real Envoy on
//! Istio-shaped inbound and outbound listeners, with the fake reading that
//! Envoy's stats and log, and applied and removed through LDS.

use base64::Engine;
use harness::client::Proto;
use harness::paths::{tap_binary, venv_tool, workspace_root};
use harness::sidecar::{apply, rewrite, sidecar_listeners};
use harness::tap::assert_mitmproxy_reads;
use harness::tcp::echo_then_close;
use harness::{Bootstrap, Envoy, Request, TcpEcho, Upstream};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const GUID: &str = "eb1534db-8765-430d-adfe-77fd1a8e45a9";
/// A one-second capture that waits at most two seconds for records.
const SHORT_RUN: [&str; 8] = [
    "--guid",
    GUID,
    "--duration",
    "1",
    "--timeout",
    "2",
    "--out",
    "out",
];

/// The `-o` of each `kubectl get` tap.sh runs: the fake `kubectl` refuses any
/// other, so a changed template fails every test until it is changed here
/// too, and `kubectl_templates_in_a_real_kubectl` runs these in a real
/// kubectl against [`ApiServer`]. What kubectl prints (1.20, Debian 12's, and
/// 1.32 alike), fields unset printing `<no value>` and unnamed container
/// ports skipped:
///
/// ```text
/// pod:      label a=1\nlabel b=2\nport pg=5433\nport http-envoy-prom=15090\n
/// svc:      s-route-1#cloudfoundry.org/app_guid=g,cloudfoundry.org/process_type=web,#8080|8080|TCP|http|<no value>;\n
///           headless##5432|pg|TCP|<no value>|tcp;\n
/// svc -A:   data/db#5432|TCP|tcp-pg|<no value>;9187|TCP|<no value>|<no value>;\n
/// se -A:    istio-system/rds#5432|TCP|pg;443|<no value>|<no value>;\n
/// pods:     app-0=u0 app-1=u1 (a space after each)
/// ```
const TEMPLATES: [(&str, &str); 5] = [
    (
        "FAKE_T_PODS",
        r#"jsonpath={range .items[*]}{.metadata.name}={.metadata.uid}{" "}{end}"#,
    ),
    (
        "FAKE_T_POD",
        r#"go-template={{range $k, $v := .metadata.labels}}label {{$k}}={{$v}}{{"\n"}}{{end}}{{range .spec.containers}}{{range .ports}}{{if .name}}port {{.name}}={{.containerPort}}{{"\n"}}{{end}}{{end}}{{end}}"#,
    ),
    (
        "FAKE_T_SVC",
        r#"go-template={{range .items}}{{.metadata.name}}#{{range $k, $v := .spec.selector}}{{$k}}={{$v}},{{end}}#{{range .spec.ports}}{{.port}}|{{.targetPort}}|{{.protocol}}|{{.name}}|{{.appProtocol}};{{end}}{{"\n"}}{{end}}"#,
    ),
    (
        "FAKE_T_SVC_ALL",
        r#"go-template={{range .items}}{{.metadata.namespace}}/{{.metadata.name}}#{{range .spec.ports}}{{.port}}|{{.protocol}}|{{.name}}|{{.appProtocol}};{{end}}{{"\n"}}{{end}}"#,
    ),
    (
        "FAKE_T_SE_ALL",
        r#"go-template={{range .items}}{{.metadata.namespace}}/{{.metadata.name}}#{{range .spec.ports}}{{.number}}|{{.protocol}}|{{.name}};{{end}}{{"\n"}}{{end}}"#,
    ),
];

fn template(name: &str) -> &'static str {
    TEMPLATES.iter().find(|(n, _)| *n == name).unwrap().1
}

/// Fake `cf`: `FAKE_CF` = `ok` (default), `not-logged-in`, `not-found`.
const FAKE_CF: &str = r#"#!/usr/bin/env bash
echo "cf $*" >> "$FAKE_DIR/calls"
case ${FAKE_CF:-ok} in
  ok) echo "$FAKE_GUID" ;;
  not-logged-in) echo "Not logged in. Use 'cf login' or 'cf login --sso' to log in."; exit 1 ;;
  not-found) echo "App '$2' not found."; exit 1 ;;
esac
"#;

/// Fake `kubectl`, answering from the environment and from files in
/// `$FAKE_DIR`:
///
/// - `FAKE_PODS`: the app's pods; `FAKE_PODS_LATER`: the pods from the second
///   `get pods` on (a pod created mid-capture);
/// - `get` checks that its `-o` is exactly the template or jsonpath this file
///   keeps for that resource ([`TEMPLATES`], verified in a real kubectl), and
///   fails like kubectl otherwise; with `FAKE_REAL_KUBECTL` it then runs that
///   kubectl (against [`ApiServer`]);
/// - `FAKE_SVCS`: the Services, as the script's go-template prints them
///   (default: the CF route Service, port 8080 named `http`);
///   `FAKE_POD_PORTS`: named container ports (`port NAME=N` lines);
///   `FAKE_SVCS_ALL`, `FAKE_SES_ALL`: the Services and ServiceEntries of all
///   namespaces (`get -A`; default none), `FAKE_FORBID_ALL=1` forbids `-A`;
/// - `FAKE_FORBID`: a verb the cluster forbids;
/// - `FAKE_ENVOY`: the sidecar Envoy's version in `server_info` (default
///   1.28.0);
/// - `FAKE_IMAGE=distroless`: a proxy image with no tar and no shell tools:
///   `cp` and any `exec` but pilot-agent fail;
/// - stats: `FAKE_LOADED=never` (or `live`: only a live sidecar's own stats
///   show the filter, however long it takes to start), or `load-after.<pod>` (the filter's counter
///   appears after that many stats calls); the counter reads `FAKE_BASELINE`
///   (default 0) the first time and `FAKE_TAPPED` (default 2) or
///   `tapped.<pod>` after; `rate_limited` reads 0, then `FAKE_LIMITED`
///   (default 0);
/// - records: `records.<pod>` or `records.jsonl` (the file route), `logs.<pod>`
///   or `logs` (the logs route, `@TAG@` standing for the run's tag taken from
///   the applied manifest); `FAKE_FLUSH_POLLS=N`: a sidecar's records show only
///   from the N+1th fetch after its `reopen_logs`;
/// - a live sidecar: with `admin.<pod>` (an Envoy admin address), stats and
///   `reopen_logs` go to that Envoy, `logs` prints `pod-<pod>/dev/stdout` and
///   `cp` and `rm` use the files under `pod-<pod>/`;
/// - `logs --follow`: appends its pid to `follow-pids`; a live sidecar's
///   stdout is followed (`tail -F`); otherwise the chunks `follow.<pod>.<n>`
///   (`@TAG@` as above) are printed as they are, without adding a newline,
///   chunk n > 1 once the file `release.<pod>.<n>` exists; then the stream
///   stays open until killed, or ends with `FAKE_FOLLOW_END=1`;
/// - kubectl's global flags `--kubeconfig F` and `--context C` before the
///   verb are taken (the calls log shows them).
const FAKE_KUBECTL: &str = r#"#!/usr/bin/env bash
echo "kubectl $*" >> "$FAKE_DIR/calls"
original=("$@")
while [[ $1 == --kubeconfig || $1 == --context ]]; do shift 2; done
verb=$1
shift
if [[ ${FAKE_FORBID:-} == "$verb" ]]; then
  echo "Error from server (Forbidden): $verb is forbidden: User \"dev\" cannot $verb in namespace \"cf-workloads\"" >&2
  exit 1
fi
args=() output="" all=false
while [[ $# -gt 0 ]]; do
  case $1 in
    -o) output=$2; shift 2 ;;
    -A) all=true; shift ;;
    -n | -c | -l) shift 2 ;;
    --) shift; args+=("$@"); break ;;
    *) args+=("$1"); shift ;;
  esac
done
count_up() {
  local n
  n=$(( $(cat "$FAKE_DIR/$1" 2>/dev/null || echo 0) + 1 ))
  echo "$n" > "$FAKE_DIR/$1"
  echo "$n"
}
live() { [[ -f $FAKE_DIR/admin.$pod ]]; }
admin() {
  "$FAKE_PYTHON" -c 'import sys, urllib.request as u
r = u.urlopen(u.Request("http://" + sys.argv[1] + "/" + sys.argv[3], method=sys.argv[2]))
sys.stdout.write(r.read().decode())' "$(cat "$FAKE_DIR/admin.$pod")" "$1" "$2"
}
flushed() {
  [[ -z ${FAKE_FLUSH_POLLS:-} ]] && return 0
  [[ -f $FAKE_DIR/reopened.$pod ]] || return 1
  (( $(count_up "polls.$pod") > FAKE_FLUSH_POLLS ))
}
case $verb in
  get)
    case ${args[0]}.$all in
      pods.false) want=$FAKE_T_PODS ;;
      pod.false) want=$FAKE_T_POD ;;
      svc.false) want=$FAKE_T_SVC ;;
      svc.true) want=$FAKE_T_SVC_ALL ;;
      serviceentries.networking.istio.io.true) want=$FAKE_T_SE_ALL ;;
      *) want="(no template for ${args[0]} all=$all)" ;;
    esac
    if [[ $output != "$want" ]]; then
      echo "fake kubectl: get ${args[0]} -o '$output' is not the -o the test verified: '$want'" >&2
      exit 1
    fi
    if [[ $all == true && -n ${FAKE_FORBID_ALL:-} ]]; then
      echo "Error from server (Forbidden): services is forbidden: User \"dev\" cannot list resource \"${args[0]}\" in API group \"\" at the cluster scope" >&2
      exit 1
    fi
    if [[ -n ${FAKE_REAL_KUBECTL:-} ]]; then exec "$FAKE_REAL_KUBECTL" "${original[@]}"; fi
    case ${args[0]}.$all in
      svc.true) printf '%s' "${FAKE_SVCS_ALL:-}" ;;
      serviceentries.networking.istio.io.true) printf '%s' "${FAKE_SES_ALL:-}" ;;
      pods.false)
        pods=${FAKE_PODS:-}
        if (( $(count_up get-pods) > 1 )) && [[ -n ${FAKE_PODS_LATER+set} ]]; then pods=$FAKE_PODS_LATER; fi
        for p in $pods; do printf '%s=uid-%s ' "$p" "$p"; done ;;
      pod.false)
        printf '%s\n' "label cloudfoundry.org/app_guid=$FAKE_GUID" "label cloudfoundry.org/process_type=web" "label cloudfoundry.org/version=1"
        [[ -z ${FAKE_POD_PORTS:-} ]] || printf '%s\n' "$FAKE_POD_PORTS" ;;
      svc.false)
        if [[ -n ${FAKE_SVCS+set} ]]; then
          printf '%s' "$FAKE_SVCS"
        else
          printf 's-route-1#cloudfoundry.org/app_guid=%s,cloudfoundry.org/process_type=web,#8080|<no value>|TCP|http|<no value>;\n' "$FAKE_GUID"
        fi ;;
    esac ;;
  apply)
    cat > "$FAKE_DIR/applied.yaml"
    # What the API server says when a client-side apply copies a large
    # object into its last-applied annotation.
    if [[ " ${args[*]} " != *" --server-side "* ]] && (( $(wc -c < "$FAKE_DIR/applied.yaml") > 262144 )); then
      echo 'The EnvoyFilter "x-tap" is invalid: metadata.annotations: Too long: must have at most 262144 bytes' >&2
      exit 1
    fi ;;
  delete) ;;
  exec)
    pod=${args[0]}
    case "${args[*]:1}" in
      "pilot-agent request GET server_info")
        if live; then admin GET server_info; exit; fi
        printf '{"version": "0123abcd/%s/Clean/RELEASE/BoringSSL"}\n' "${FAKE_ENVOY:-1.28.0}" ;;
      "pilot-agent request GET stats"*)
        if live; then admin GET "${args[4]}"; exit; fi
        n=$(count_up "stats.$pod")
        echo "wasmcustom.other_filter.count: 7"
        after=$(cat "$FAKE_DIR/load-after.$pod" 2>/dev/null || echo 0)
        if [[ ${FAKE_LOADED:-yes} == yes ]] && (( n > after )); then
          v=${FAKE_TAPPED:-2}
          [[ -f $FAKE_DIR/tapped.$pod ]] && v=$(cat "$FAKE_DIR/tapped.$pod")
          (( n == after + 1 )) && v=${FAKE_BASELINE:-0}
          limited=${FAKE_LIMITED:-0}
          (( n == after + 1 )) && limited=0
          echo "wasmcustom.tap_http.tapped: $v"
          echo "wasmcustom.tap_http.rate_limited: $limited"
          echo "wasmcustom.tap_tcp.tapped: $v"
          echo "wasmcustom.tap_tcp.rate_limited: $limited"
        fi ;;
      "pilot-agent request POST reopen_logs")
        touch "$FAKE_DIR/reopened.$pod"
        if live; then admin POST reopen_logs > /dev/null; fi ;;
      *)
        if [[ ${FAKE_IMAGE:-} == distroless ]]; then
          echo "OCI runtime exec failed: exec failed: unable to start container process: exec: \"${args[1]}\": executable file not found in \$PATH: unknown" >&2
          echo "command terminated with exit code 126" >&2
          exit 126
        fi
        if [[ ${args[1]} == rm ]]; then
          for f in "${args[@]:3}"; do rm -f "$FAKE_DIR/pod-$pod$f"; done
        fi ;;
    esac ;;
  cp)
    src=${args[0]} dest=${args[1]}
    [[ $src == *:* ]] || exit 0   # into a pod: the calls log shows it
    pod=${src#*/} pod=${pod%%:*} path=${src#*:}
    if [[ ${FAKE_IMAGE:-} == distroless ]]; then
      echo "error: Internal error occurred: error executing command in container: failed to exec in container: failed to start exec: OCI runtime exec failed: exec failed: unable to start container process: exec: \"tar\": executable file not found in \$PATH: unknown" >&2
      exit 1
    fi
    file=$FAKE_DIR/pod-$pod$path
    live || [[ -f $file ]] || file=$FAKE_DIR/records.$pod
    live || [[ -f $file ]] || file=$FAKE_DIR/records.jsonl
    if [[ ! -f $file ]]; then
      echo "tar: ${path#/}: Cannot stat: No such file or directory" >&2
      echo "command terminated with exit code 2" >&2
      exit 1
    fi
    if flushed; then cp "$file" "$dest"; else : > "$dest"; fi ;;
  logs)
    pod=${args[0]}
    if [[ " ${args[*]} " == *" --follow "* ]]; then
      echo "$$" >> "$FAKE_DIR/follow-pids"
      if live; then exec tail -n +1 -F "$FAKE_DIR/pod-$pod/dev/stdout" 2>/dev/null; fi
      tag=$(grep -o 'tap\.sh/[0-9-]*' "$FAKE_DIR/applied.yaml" | head -n 1)
      n=1
      while [[ -f $FAKE_DIR/follow.$pod.$n ]]; do
        while (( n > 1 )) && [[ ! -f $FAKE_DIR/release.$pod.$n ]]; do sleep 0.1; done
        sed "s|@TAG@|$tag|g" "$FAKE_DIR/follow.$pod.$n"
        n=$((n + 1))
      done
      [[ -n ${FAKE_FOLLOW_END:-} ]] && exit 0
      exec sleep 1000
    fi
    if live; then cat "$FAKE_DIR/pod-$pod/dev/stdout" 2>/dev/null; exit 0; fi
    file=$FAKE_DIR/logs.$pod
    [[ -f $file ]] || file=$FAKE_DIR/logs
    [[ -f $file ]] || exit 0
    tag=$(grep -o 'tap\.sh/[0-9-]*' "$FAKE_DIR/applied.yaml" | head -n 1)
    if flushed; then sed "s|@TAG@|$tag|g" "$file"; else grep -v '@TAG@' "$file" || true; fi ;;
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
        Fake { dir }
    }

    /// A file the fake answers from (see [`FAKE_KUBECTL`]).
    fn write(&self, name: &str, text: &str) -> &Fake {
        std::fs::write(self.dir.join(name), text).unwrap();
        self
    }

    fn command(&self, env: &[(&str, &str)], args: &[&str]) -> Command {
        let mut c = Command::new("bash");
        c.arg(workspace_root().join("envoyfilters/tap.sh"));
        self.with_env(c, env, args)
    }

    /// tap.sh run as kubectl runs the plugin `kubectl tap`: the program
    /// `kubectl-tap` on PATH (here a symlink to tap.sh), with the arguments
    /// that follow `kubectl tap`.
    fn plugin(&self, env: &[(&str, &str)], args: &[&str]) -> Command {
        let link = self.dir.join("bin/kubectl-tap");
        if !link.exists() {
            std::os::unix::fs::symlink(workspace_root().join("envoyfilters/tap.sh"), &link)
                .unwrap();
        }
        self.with_env(Command::new(link), env, args)
    }

    fn with_env(&self, mut c: Command, env: &[(&str, &str)], args: &[&str]) -> Command {
        c.args(args)
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
            .env("FAKE_PYTHON", venv_tool("python"))
            .env("KUBECONFIG", "/dev/null")
            .current_dir(&self.dir);
        for (name, value) in TEMPLATES {
            c.env(name, value);
        }
        for (k, v) in env {
            c.env(k, v);
        }
        c
    }

    fn run(&self, env: &[(&str, &str)], args: &[&str]) -> Output {
        self.command(env, args).output().expect("run tap.sh")
    }

    /// What tap.sh wrote to standard error, when it was started by
    /// [`follow`] (or [`run_live`]).
    fn err(&self) -> String {
        std::fs::read_to_string(self.dir.join("tap.err")).unwrap_or_default()
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

    /// The records tap.sh wrote for `pod` under `out`, one string per line.
    fn records(&self, out: &str, pod: &str) -> Vec<String> {
        std::fs::read_to_string(self.dir.join(out).join(format!("{pod}.jsonl")))
            .unwrap_or_else(|e| panic!("{out}/{pod}.jsonl: {e}"))
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// A compact one-line record as tap_http writes it, with a `size`-byte body.
fn record(path: &str, size: usize) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(vec![b'x'; size]);
    json!({"http_buffered_trace": {
        "request": {"headers": [{"key": ":method", "value": "GET"}, {"key": ":path", "value": path},
                                {"key": "user-agent", "value": "curl/8.5.0 \"quoted\" {braces}"}],
                    "body": {"as_bytes": body, "truncated": false}, "trailers": []},
        "response": {"headers": [{"key": ":status", "value": "200"}], "trailers": []}}})
    .to_string()
}

/// An istio-proxy container log: pilot-agent and Envoy lines, Istio's access
/// log in its text and JSON formats, another tap's records, and `records`
/// tagged with this run's tag (`@TAG@`).
fn proxy_log(records: &[String]) -> String {
    let mut log = String::new();
    log += "2025-06-01T10:00:00.000000Z\tinfo\tEnvoy proxy is ready\n";
    log += "[2025-06-01T10:00:01.000Z] \"GET /health HTTP/1.1\" 200 - via_upstream - \"-\" 0 2 1 0 \"-\" \"kube-probe/1.29\" \"5f1c\" \"10.0.0.7:8080\" \"10.0.0.7:8080\" inbound|8080|| 127.0.0.6:51234 10.0.0.7:8080 10.0.0.1:40000 - default\n";
    for r in records {
        log += &format!("@TAG@ {r}\n");
        log += "{\"start_time\":\"2025-06-01T10:00:02.000Z\",\"method\":\"GET\",\"path\":\"/\",\"response_code\":200}\n";
        log += &format!("tap.sh/1700000000-1-1 {}\n", record("/other-tap", 3));
    }
    log += "2025-06-01T10:00:03.000000Z\twarning\tenvoy config\tgRPC config stream closed: 13\n";
    log
}

/// Istio's default text access log, as meshConfig.accessLogFile=/dev/stdout
/// adds it to every connection manager and tcp_proxy, writing to `path`.
fn istio_access_log(path: &str) -> Value {
    json!({"name": "envoy.access_loggers.file", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
        "path": path,
        "log_format": {"text_format_source": {"inline_string":
            "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% \"%UPSTREAM_TRANSPORT_FAILURE_REASON%\" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% \"%REQ(USER-AGENT)%\" \"%UPSTREAM_HOST%\" %UPSTREAM_CLUSTER%\n"}}
    }})
}

/// Where the fake keeps `pod`'s files; text replacements that put the pod's
/// paths (records file, stdout) there, for a real Envoy playing its sidecar.
fn pod_paths(fake: &Fake, pod: &str) -> (PathBuf, Vec<(String, String)>) {
    let root = fake.dir.join(format!("pod-{pod}"));
    std::fs::create_dir_all(root.join("etc/istio/proxy")).unwrap();
    std::fs::create_dir_all(root.join("dev")).unwrap();
    let rewrites = vec![
        (
            "/etc/istio/proxy/".to_string(),
            format!("{}/etc/istio/proxy/", root.display()),
        ),
        (
            "/dev/stdout".to_string(),
            format!("{}/dev/stdout", root.display()),
        ),
    ];
    (root, rewrites)
}

/// Adds Istio's own access log to every connection manager and tcp_proxy of
/// `listener`, writing where the pod's stdout goes.
fn with_istio_access_log(mut listener: Value, stdout: &str) -> Value {
    for chain in listener["filter_chains"].as_array_mut().unwrap() {
        for f in chain["filters"].as_array_mut().unwrap() {
            if f["name"] == "envoy.filters.network.http_connection_manager"
                || f["name"] == "envoy.filters.network.tcp_proxy"
            {
                let logs = &mut f["typed_config"]["access_log"];
                if logs.is_null() {
                    *logs = json!([]);
                }
                logs.as_array_mut().unwrap().push(istio_access_log(stdout));
            }
        }
    }
    listener
}

/// Inbound sidecar listener `name` with the applied EnvoyFilter (on `port`
/// if given), its paths those of the fake's `pod`.
fn inbound_sidecar(
    fake: &Fake,
    pod: &str,
    bootstrap: Bootstrap,
    name: &str,
    port: Option<u16>,
) -> Bootstrap {
    inbound_sidecar_with(fake, pod, bootstrap, name, port, &[])
}

/// [`inbound_sidecar`] with `installed` EnvoyFilters applied before tap.sh's,
/// as the sidecar of an app that already has filters.
fn inbound_sidecar_with(
    fake: &Fake,
    pod: &str,
    bootstrap: Bootstrap,
    name: &str,
    port: Option<u16>,
    installed: &[Value],
) -> Bootstrap {
    let (root, rewrites) = pod_paths(fake, pod);
    let stdout = root.join("dev/stdout").display().to_string();
    let mut manifests = installed.to_vec();
    manifests.push(fake.applied());
    let mut l = sidecar_listeners(&manifests, &rewrites)
        .into_iter()
        .find(|l| l["name"] == name)
        .expect("listener");
    if let Some(port) = port {
        l["address"]["socket_address"]["port_value"] = port.into();
    }
    bootstrap.raw_listener(with_istio_access_log(l, &stdout))
}

/// An outbound listener as Istio writes one for a TCP Service (VIP
/// 10.96.0.20, `port`): tcp_proxy to `cluster`, here on 127.0.0.1:`port`.
fn outbound_listener(port: u16, cluster: &str) -> Value {
    json!({
        "name": format!("10.96.0.20_{port}"),
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
        "traffic_direction": "OUTBOUND",
        "filter_chains": [{"filters": [{"name": "envoy.filters.network.tcp_proxy", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
            "stat_prefix": cluster, "cluster": cluster}}]}]
    })
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn count(calls: &[String], prefix: &str) -> usize {
    calls.iter().filter(|c| c.starts_with(prefix)).count()
}

/// A port no listener holds now and no other test of this file was given:
/// the kernel may hand the same free port to two tests at once, and Envoy
/// listens with SO_REUSEPORT, so both Envoys would bind it and share each
/// other's connections (one test's tap counting the other's).
fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
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

/// Runs tap.sh against the fake with a real Envoy as the sidecar of pod
/// `app-0`: once tap.sh has applied its EnvoyFilter, `sidecar` builds that
/// Envoy from it, the fake's stats, `reopen_logs` and logs go to it, and
/// `traffic` runs. Returns tap.sh's output and the Envoy.
fn run_live(
    fake: &Fake,
    env: &[(&str, &str)],
    args: &[&str],
    sidecar: impl FnOnce(&Fake) -> Bootstrap,
    traffic: impl FnOnce(&Envoy),
) -> (Output, Envoy) {
    let mut env = env.to_vec();
    env.push(("FAKE_PODS", "app-0"));
    // Until the live Envoy is up, the fake's stats must not show the filter:
    // tap.sh would take the fake's counts for the sidecar's (a slow start,
    // under load, had it expect records the live sidecar never counted).
    env.push(("FAKE_LOADED", "live"));
    let (out, err) = (fake.dir.join("tap.out"), fake.dir.join("tap.err"));
    let mut child = fake
        .command(&env, args)
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("start tap.sh");
    // tap.sh reads stats once the apply call has returned.
    wait_for_call(fake, &mut child, "pilot-agent request GET stats");
    let envoy = Envoy::start(&sidecar(fake));
    std::fs::write(fake.dir.join("admin.app-0"), envoy.admin_addr().to_string()).unwrap();
    // Traffic once tap.sh has seen the filter loaded: what the sidecar
    // counted before that is not awaited.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&err).unwrap().contains("capturing") {
        assert!(
            child.try_wait().unwrap().is_none(),
            "tap.sh ended early: {}",
            std::fs::read_to_string(&err).unwrap()
        );
        assert!(Instant::now() < deadline, "tap.sh did not start capturing");
        std::thread::sleep(Duration::from_millis(50));
    }
    traffic(&envoy);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "tap.sh did not finish");
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = Output {
        status,
        stdout: std::fs::read(&out).unwrap(),
        stderr: std::fs::read(&err).unwrap(),
    };
    (output, envoy)
}

fn module(filter: &str) -> Vec<u8> {
    std::fs::read(workspace_root().join("dist").join(format!("{filter}.wasm")))
        .expect("dist/ module: run make build")
}

fn patches(manifest: &Value) -> &Vec<Value> {
    manifest["spec"]["configPatches"]
        .as_array()
        .expect("configPatches")
}

/// The patch that puts the tap into chains.
fn filter_patch(manifest: &Value) -> &Value {
    patches(manifest)
        .iter()
        .find(|p| p["applyTo"] != "EXTENSION_CONFIG" && p["patch"]["operation"] != "MERGE")
        .expect("a patch that inserts the tap")
}

/// Whether the module travels over ECDS: an extension config the filter
/// names, not the filter's own configuration.
fn over_ecds(manifest: &Value) -> bool {
    let extension = patches(manifest)
        .iter()
        .find(|p| p["applyTo"] == "EXTENSION_CONFIG");
    let filter = &filter_patch(manifest)["patch"]["value"];
    match extension {
        Some(e) => {
            assert_eq!(e["patch"]["value"]["name"], filter["name"]);
            assert!(filter["typed_config"].is_null() && !filter["config_discovery"].is_null());
            true
        }
        None => {
            assert!(filter["config_discovery"].is_null());
            false
        }
    }
}

/// The patch whose `value.typed_config` is the Wasm filter's configuration:
/// the extension config, or the filter itself with the module inline.
fn wasm_patch(manifest: &Value) -> &Value {
    if over_ecds(manifest) {
        &patches(manifest)[0]
    } else {
        filter_patch(manifest)
    }
}

fn log_patch(manifest: &Value) -> &Value {
    let merge = patches(manifest)
        .iter()
        .find(|p| p["patch"]["operation"] == "MERGE")
        .expect("the access log patch");
    &merge["patch"]["value"]["typed_config"]["access_log"][0]
}

#[test]
fn happy_path_taps_reads_logs_and_cleans_up() {
    let fake = Fake::new();
    // A record line longer than the 16 KiB where container runtimes split.
    let records = [record("/", 0), record("/long", 20000)];
    fake.write("logs", &proxy_log(&records));
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
            "out",
            "my-app",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let calls = fake.calls();
    assert_eq!(calls[0], "cf app my-app --guid");
    assert_eq!(
        calls[1],
        format!("kubectl get pods -n cf-workloads -l cloudfoundry.org/app_guid={GUID} -o jsonpath={{range .items[*]}}{{.metadata.name}}={{.metadata.uid}}{{\" \"}}{{end}}")
    );
    assert_eq!(
        count(&calls, "kubectl cp "),
        0,
        "nothing copied: {calls:#?}"
    );
    let apply = calls
        .iter()
        .position(|c| c.starts_with("kubectl apply --server-side"))
        .expect("applied server-side");
    let delete = calls
        .iter()
        .position(|c| {
            *c == format!(
                "kubectl delete envoyfilter -n cf-workloads {GUID}-tap --ignore-not-found"
            )
        })
        .expect("deleted");
    assert!(apply < delete);
    for pod in ["app-0", "app-1"] {
        let reopen = calls
            .iter()
            .position(|c| {
                *c == format!("kubectl exec -n cf-workloads {pod} -c istio-proxy -- pilot-agent request POST reopen_logs")
            })
            .expect("reopen_logs");
        let logs = calls
            .iter()
            .rposition(|c| {
                c.starts_with(&format!(
                    "kubectl logs -n cf-workloads {pod} -c istio-proxy --since="
                ))
            })
            .expect("logs read");
        assert!(reopen < logs && logs < delete, "{calls:#?}");
        assert_eq!(
            fake.records("out", pod),
            records,
            "exactly this run's records, whole"
        );
    }
    assert_eq!(
        count(&calls, "kubectl exec"),
        count(
            &calls,
            "kubectl exec -n cf-workloads app-0 -c istio-proxy -- pilot-agent"
        ) + count(
            &calls,
            "kubectl exec -n cf-workloads app-1 -c istio-proxy -- pilot-agent"
        ),
        "the logs route runs nothing but pilot-agent in the sidecar: {calls:#?}"
    );
    let manifest = fake.applied();
    assert_eq!(manifest["metadata"]["name"], format!("{GUID}-tap"));
    assert_eq!(manifest["metadata"]["namespace"], "cf-workloads");
    assert_eq!(
        manifest["spec"]["workloadSelector"]["labels"]["cloudfoundry.org/app_guid"],
        GUID
    );
    let config = &wasm_patch(&manifest)["patch"]["value"]["typed_config"]["config"];
    let plugin: Value =
        serde_json::from_str(config["configuration"]["value"].as_str().unwrap()).unwrap();
    assert_eq!(
        plugin["match"],
        serde_json::json!({"and": [{"method": "GET"}]})
    );
    assert_eq!(plugin["max_records"], 4);
    assert_eq!(plugin["max_request_bytes"], 0, "no bodies unless asked");
    assert_eq!(plugin["record_stream_info"], true, "real time and duration");
    assert_eq!(
        plugin["record_downstream_connection"], true,
        "the client's address"
    );
    let log = log_patch(&manifest);
    assert_eq!(log["typed_config"]["path"], "/dev/stdout");
    let format = log["typed_config"]["log_format"]["text_format_source"]["inline_string"]
        .as_str()
        .unwrap();
    let tag = format.split(' ').next().unwrap();
    assert!(tag.starts_with("tap.sh/"), "{format}");
    assert_eq!(
        config["name"],
        format!("tap_http-{}", tag.trim_start_matches("tap.sh/")),
        "the plugin (and its --count budget) is this run's"
    );
}

/// The module travels in the EnvoyFilter: the bytes of dist/, no file in
/// any pod, and the object well under what Kubernetes stores (etcd's
/// default request limit is 1.5 MiB); as an extension config the filter
/// names (ECDS), or with --inline-module in the filter itself.
#[test]
fn module_ships_in_the_envoy_filter() {
    for (args, filter, context) in [
        (vec![], "tap_http", "SIDECAR_INBOUND"),
        (vec!["--tcp", "5432"], "tap_tcp", "SIDECAR_INBOUND"),
        (
            vec!["--tcp-outbound", "5432"],
            "tap_tcp",
            "SIDECAR_OUTBOUND",
        ),
    ] {
        for inline in [false, true] {
            let fake = Fake::new();
            let mut all = vec!["--guid", GUID, "--dry-run"];
            all.extend(args.iter().copied());
            if inline {
                all.push("--inline-module");
            }
            let o = fake.run(&[], &all);
            assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
            let manifest: Value = serde_yaml::from_slice(&o.stdout).unwrap();
            assert_eq!(over_ecds(&manifest), !inline, "{all:?}");
            assert_eq!(manifest["spec"]["priority"], 1000, "{all:?}");
            assert_eq!(filter_patch(&manifest)["match"]["context"], context);
            let patch = wasm_patch(&manifest);
            let code =
                &patch["patch"]["value"]["typed_config"]["config"]["vm_config"]["code"]["local"];
            assert!(code["filename"].is_null(), "no file path: {code}");
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(code["inline_bytes"].as_str().expect("inline_bytes"))
                .unwrap();
            assert!(
                bytes == module(filter),
                "inline_bytes are dist/{filter}.wasm"
            );
            let size = o.stdout.len();
            eprintln!(
                "{filter} ({context}, inline {inline}): module {} bytes, EnvoyFilter {size} bytes",
                bytes.len()
            );
            assert!(size < 1024 * 1024, "{size} bytes");
        }
    }
}

/// ECDS as tap.sh uses it needs Envoy 1.26 for HTTP filters (before, a Wasm
/// filter from ECDS got requests before it was ready) and 1.28 for network
/// filters: on an older sidecar, or one whose version cannot be read, the
/// module goes inline, and tap.sh says why.
#[test]
fn taps_use_ecds_where_the_sidecar_envoy_has_it() {
    for (envoy, forbid, args, ecds, says) in [
        ("1.28.0", "", vec!["--tcp", "9000"], true, ""),
        ("1.40.1", "", vec!["--tcp-outbound", "5432"], true, ""),
        (
            "1.27.3",
            "",
            vec!["--tcp", "9000"],
            false,
            "runs Envoy 1.27; sending tap_tcp over ECDS needs 1.28",
        ),
        (
            "1.27.3",
            "",
            vec!["--tcp-outbound", "5432"],
            false,
            "needs 1.28",
        ),
        ("1.26.0", "", vec![], true, ""),
        (
            "1.25.9",
            "",
            vec![],
            false,
            "runs Envoy 1.25; sending tap_http over ECDS needs 1.26",
        ),
        ("1.22.0", "", vec![], false, "needs 1.26"),
        (
            "1.28.0",
            "exec",
            vec!["--tcp", "9000"],
            false,
            "could not read the Envoy version",
        ),
        (
            "1.28.0",
            "exec",
            vec![],
            false,
            "could not read the Envoy version",
        ),
    ] {
        let fake = Fake::new();
        let mut all = vec!["--guid", GUID, "--duration", "1", "--timeout", "1"];
        all.extend(args.iter().copied());
        let svcs = format!("app#cloudfoundry.org/app_guid={GUID},#9000|9000|TCP|tcp|<no value>;\n");
        let all_svcs = "data/db#5432|TCP|tcp-pg|<no value>;\n";
        let mut env = vec![
            ("FAKE_PODS", "app-0"),
            ("FAKE_ENVOY", envoy),
            ("FAKE_SVCS", svcs.as_str()),
            ("FAKE_SVCS_ALL", all_svcs),
        ];
        if !forbid.is_empty() {
            env.push(("FAKE_FORBID", forbid));
        }
        let o = fake.run(&env, &all);
        let at = format!("Envoy {envoy} {args:?}: {}", stderr(&o));
        let manifest = fake.applied();
        assert_eq!(over_ecds(&manifest), ecds, "{at}");
        if !says.is_empty() {
            assert!(stderr(&o).contains(says), "{at}");
        }
        let how = if ecds {
            "over ECDS"
        } else {
            "inline in each chain"
        };
        assert!(stderr(&o).contains(how), "{at}");
    }
}

/// HTTP, records through `kubectl logs` from a proxy image without tar or a
/// shell: the applied EnvoyFilter in a real Envoy beside Istio's own access
/// log on the same stdout, a record line over 64 KiB, match options.
#[test]
fn http_logs_route_end_to_end_in_envoy() {
    let fake = Fake::new();
    let app = Upstream::start();
    let big = harness::pattern(60_000);
    let (o, envoy) = run_live(
        &fake,
        &[("FAKE_IMAGE", "distroless")],
        &[
            "--guid",
            GUID,
            "--count",
            "2",
            "--duration",
            "60",
            "--method",
            "POST",
            "--path",
            "/api/",
            "--header",
            "x-debug=1",
            "--status",
            "200-299",
            "--max-body",
            "65536",
            "--out",
            "out",
        ],
        |fake| {
            let bootstrap = Bootstrap::new(app.port()).cluster("inbound|8080||", app.port());
            inbound_sidecar(fake, "app-0", bootstrap, "virtualInbound", None)
        },
        |envoy| {
            let addr = envoy.addr("virtualInbound");
            Request::new("POST", "/api/orders")
                .header("x-debug", "1")
                .body(big.clone())
                .send(addr, Proto::H1);
            Request::new("POST", "/api/orders")
                .body("not matched: no header")
                .send(addr, Proto::H1);
            Request::get("/api/orders")
                .header("x-debug", "1")
                .send(addr, Proto::H2);
            Request::new("POST", "/api/small")
                .header("x-debug", "1")
                .body("0123456789")
                .send(addr, Proto::H2);
        },
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // The live Envoy's own server_info (1.36 or later) says ECDS.
    assert!(over_ecds(&fake.applied()), "{}", stderr(&o));
    let stdout = std::fs::read_to_string(fake.dir.join("pod-app-0/dev/stdout")).unwrap();
    assert!(
        stdout.lines().filter(|l| l.starts_with("[")).count() >= 4,
        "Istio's access log shares the stream: {stdout}"
    );
    assert!(stdout.lines().any(|l| l.len() > 64 * 1024));
    let lines = fake.records("out", "app-0");
    assert_eq!(lines.len(), 2, "only the matching requests");
    let records: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).expect("a whole JSON record"))
        .collect();
    let body = |r: &Value| {
        base64::engine::general_purpose::STANDARD
            .decode(
                r["http_buffered_trace"]["request"]["body"]["as_bytes"]
                    .as_str()
                    .unwrap(),
            )
            .unwrap()
    };
    let mut bodies: Vec<Vec<u8>> = records.iter().map(body).collect();
    bodies.sort_by_key(|b| b.len());
    assert_eq!(bodies, vec![b"0123456789".to_vec(), big]);
    assert!(records
        .iter()
        .all(|r| r["stream_info"]["start_time"].is_string()));
    assert!(
        records.iter().all(
            |r| r["http_buffered_trace"]["downstream_connection"]["remote_address"]
                ["socket_address"]["address"]
                == "127.0.0.1"
        ),
        "the client's address: {records:?}"
    );
    let calls = fake.calls();
    assert_eq!(count(&calls, "kubectl cp"), 0, "{calls:#?}");
    assert!(
        calls
            .iter()
            .filter(|c| c.starts_with("kubectl exec"))
            .all(|c| c.contains("-- pilot-agent request")),
        "{calls:#?}"
    );
    assert_eq!(envoy.counter("wasmcustom.tap_http.tapped"), 2);
}

/// TCP on an inbound port a Service declares as TCP, records through the
/// file route: copied out of the sidecar, then removed from it.
#[test]
fn tcp_file_route_end_to_end_in_envoy() {
    // The sidecar listener takes the tapped port itself, so that the
    // destination port the filter matches is the one asked for (in a pod,
    // original_dst restores the app's port).
    let port = free_port();
    let echo = TcpEcho::start();
    let svcs = format!(
        "s-route-1#cloudfoundry.org/app_guid={GUID},#8080|<no value>|TCP|http|<no value>;\n\
         echo#cloudfoundry.org/app_guid={GUID},cloudfoundry.org/process_type=web,#9000|{port}|TCP|tcp-echo|<no value>;\n"
    );
    let fake = Fake::new();
    let (o, _envoy) = run_live(
        &fake,
        &[("FAKE_SVCS", &svcs)],
        &[
            "--guid",
            GUID,
            "--count",
            "1",
            "--bodies",
            "--tcp",
            &port.to_string(),
            "--records",
            "file",
            "--out",
            "out",
        ],
        |fake| {
            let bootstrap = Bootstrap::new(echo.port()).cluster("inbound|9000||", echo.port());
            inbound_sidecar(fake, "app-0", bootstrap, "virtualInboundTcp", Some(port))
        },
        |envoy| {
            assert_eq!(
                echo_then_close(envoy.addr("virtualInboundTcp"), b"hello"),
                b"hello"
            );
        },
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let manifest = fake.applied();
    // The live Envoy's own server_info (1.36 or later) says ECDS.
    assert!(over_ecds(&manifest), "{}", stderr(&o));
    let patch = filter_patch(&manifest);
    assert_eq!(patch["match"]["context"], "SIDECAR_INBOUND");
    assert_eq!(patch["match"]["listener"]["portNumber"], port);
    let path = log_patch(&manifest)["typed_config"]["path"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(path.starts_with(&format!("/etc/istio/proxy/tap-{GUID}-")));
    let records = fake.records("out", "app-0");
    assert_eq!(records.len(), 1);
    let record: Value = serde_json::from_str(&records[0]).unwrap();
    let read = &record["socket_buffered_trace"]["events"][0]["read"]["data"]["as_bytes"];
    assert_eq!(read, "aGVsbG8=");
    let calls = fake.calls();
    assert!(calls
        .iter()
        .any(|c| c.ends_with(&format!("-- rm -f {path}"))));
    assert!(
        !fake.dir.join(format!("pod-app-0{path}")).exists(),
        "the records file is removed from the sidecar"
    );
}

/// `--tcp-outbound`: the database case. The EnvoyFilter patches the outbound
/// listener Istio builds for a TCP Service's port, in a real Envoy.
#[test]
fn tcp_outbound_end_to_end_in_envoy() {
    let port = free_port();
    let db = TcpEcho::start();
    let cluster = "outbound|5432||db.data.svc.cluster.local";
    let svcs = format!("data/db#{port}|TCP|tcp-pg|<no value>;\n");
    let fake = Fake::new();
    let (o, _envoy) = run_live(
        &fake,
        &[("FAKE_SVCS_ALL", &svcs)],
        &[
            "--guid",
            GUID,
            "--count",
            "1",
            "--bodies",
            "--tcp-outbound",
            &port.to_string(),
            "--out",
            "out",
        ],
        |fake| {
            let manifest = fake.applied();
            let (root, rewrites) = pod_paths(fake, "app-0");
            let mut listeners = vec![outbound_listener(port, cluster)];
            apply(&mut listeners, &manifest);
            let l = rewrite(listeners, &rewrites).remove(0);
            let stdout = root.join("dev/stdout").display().to_string();
            Bootstrap::new(db.port())
                .cluster(cluster, db.port())
                .raw_listener(with_istio_access_log(l, &stdout))
        },
        |envoy| {
            let addr = envoy.addr(&format!("10.96.0.20_{port}"));
            assert_eq!(echo_then_close(addr, b"SELECT 1;"), b"SELECT 1;");
        },
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // The Service declares the port as TCP: checked, nothing to warn about.
    assert!(
        fake.calls()
            .iter()
            .any(|c| c.starts_with("kubectl get svc -A")),
        "{:#?}",
        fake.calls()
    );
    for warning in ["cannot list", "exit 8", "no protocol"] {
        assert!(!stderr(&o).contains(warning), "{}", stderr(&o));
    }
    let manifest = fake.applied();
    assert!(over_ecds(&manifest), "{}", stderr(&o));
    for patch in manifest["spec"]["configPatches"].as_array().unwrap() {
        if patch["applyTo"] == "EXTENSION_CONFIG" {
            continue;
        }
        assert_eq!(patch["match"]["context"], "SIDECAR_OUTBOUND");
        assert_eq!(patch["match"]["listener"]["portNumber"], port);
    }
    let records = fake.records("out", "app-0");
    assert_eq!(records.len(), 1);
    let record: Value = serde_json::from_str(&records[0]).unwrap();
    // Read: what the app sent the database; write: what came back.
    let events = record["socket_buffered_trace"]["events"]
        .as_array()
        .unwrap();
    for direction in ["read", "write"] {
        assert!(
            events
                .iter()
                .any(|e| e[direction]["data"]["as_bytes"] == "U0VMRUNUIDE7"),
            "{direction}: {events:?}"
        );
    }
}

/// A pod created while the tap is on (a restart, a scale-up) gets the filter
/// from the EnvoyFilter like the others; tap.sh waits for it to load and
/// fetches its records.
#[test]
fn a_pod_created_during_the_tap_loads_it_and_gives_its_records() {
    let fake = Fake::new();
    let records = [record("/a", 1), record("/b", 2)];
    fake.write("logs", &proxy_log(&records))
        .write("load-after.app-1", "2");
    let o = fake.run(
        &[("FAKE_PODS", "app-0"), ("FAKE_PODS_LATER", "app-0 app-1")],
        &["--guid", GUID, "--duration", "5", "--out", "out"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("new pod app-1"), "{err}");
    assert!(
        err.contains("the sidecar of app-1 loaded tap_http"),
        "{err}"
    );
    assert_eq!(fake.records("out", "app-1"), records);
    assert_eq!(fake.records("out", "app-0"), records);
    let calls = fake.calls();
    assert!(
        count(
            &calls,
            "kubectl exec -n cf-workloads app-1 -c istio-proxy -- pilot-agent request GET stats"
        ) >= 3,
        "{calls:#?}"
    );
    assert_eq!(count(&calls, "kubectl cp"), 0);
}

/// reopen_logs only asks Envoy to write its access-log buffer: tap.sh polls
/// until the records the sidecar counted are all there, by either route.
#[test]
fn flush_wait_polls_until_every_counted_record_arrived() {
    let records = [record("/a", 1), record("/b", 2)];
    for route in ["logs", "file"] {
        let fake = Fake::new();
        fake.write("logs", &proxy_log(&records)).write(
            "records.jsonl",
            &format!("{}\n{}\n", records[0], records[1]),
        );
        let o = fake.run(
            &[("FAKE_PODS", "app-0"), ("FAKE_FLUSH_POLLS", "3")],
            &[
                "--guid",
                GUID,
                "--duration",
                "1",
                "--records",
                route,
                "--out",
                "out",
            ],
        );
        assert_eq!(o.status.code(), Some(0), "{route}: {}", stderr(&o));
        assert_eq!(fake.records("out", "app-0"), records, "{route}");
        let calls = fake.calls();
        let fetch = if route == "logs" {
            "kubectl logs"
        } else {
            "kubectl cp"
        };
        assert_eq!(count(&calls, fetch), 4, "{route}: {calls:#?}");
    }
    // A sidecar that ran an earlier tap starts from that tap's count: only
    // what this tap added is awaited.
    let fake = Fake::new();
    fake.write("logs", &proxy_log(&records));
    let started = Instant::now();
    let o = fake.run(
        &[
            ("FAKE_PODS", "app-0"),
            ("FAKE_BASELINE", "5"),
            ("FAKE_TAPPED", "7"),
        ],
        &["--guid", GUID, "--duration", "1", "--timeout", "30"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(started.elapsed() < Duration::from_secs(15));
}

#[test]
fn flush_wait_gives_up_after_its_timeout() {
    let records = [record("/a", 1), record("/b", 2)];
    // Never flushed.
    let fake = Fake::new();
    fake.write("logs", &proxy_log(&records));
    let o = fake.run(
        &[("FAKE_PODS", "app-0"), ("FAKE_FLUSH_POLLS", "1000")],
        &SHORT_RUN,
    );
    assert_eq!(o.status.code(), Some(10), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("app-0: only 0 of the 2 records its sidecar counted arrived within 2s"),
        "{}",
        stderr(&o)
    );
    assert!(fake.records("out", "app-0").is_empty());
    assert_eq!(count(&fake.calls(), "kubectl delete envoyfilter"), 1);
    // One record short: what came is kept.
    let fake = Fake::new();
    fake.write("logs", &proxy_log(&records));
    let o = fake.run(&[("FAKE_PODS", "app-0"), ("FAKE_TAPPED", "3")], &SHORT_RUN);
    assert_eq!(o.status.code(), Some(10), "{}", stderr(&o));
    assert!(stderr(&o).contains("only 2 of the 3 records"));
    assert_eq!(fake.records("out", "app-0"), records);
}

/// A record line cut short (a log rotation in the middle of it, say) is
/// reported and kept apart; a last line still being written is left for the
/// next read.
#[test]
fn lines_that_are_not_whole_json_are_reported() {
    let records = [record("/a", 1), record("/b", 2)];
    let cut = record("/cut", 100);
    let mut log = proxy_log(&records);
    log += &format!("@TAG@ {}\n", &cut[..cut.len() / 2]);
    log += &format!("@TAG@ {}", &cut[..cut.len() - 3]);
    let fake = Fake::new();
    fake.write("logs", &log);
    let o = fake.run(&[("FAKE_PODS", "app-0")], &SHORT_RUN);
    assert_eq!(o.status.code(), Some(10), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("app-0: 1 line(s) that are not whole JSON records"),
        "{}",
        stderr(&o)
    );
    assert_eq!(fake.records("out", "app-0"), records);
    let invalid = std::fs::read_to_string(fake.dir.join("out/app-0.invalid")).unwrap();
    assert_eq!(invalid, format!("{}\n", &cut[..cut.len() / 2]));
}

#[test]
fn tcp_refuses_ports_istio_does_not_proxy_as_tcp() {
    let selector = format!("cloudfoundry.org/app_guid={GUID},cloudfoundry.org/process_type=web,");
    let cf_route = format!("s-route-1#{selector}#8080|<no value>|TCP|http|<no value>;\n");
    // Services, --tcp port, exit code, message.
    let cases: Vec<(String, &str, i32, &str)> = vec![
        (cf_route.clone(), "8080", 9, "s-route-1 (port name 'http')"),
        (cf_route.clone(), "8080", 9, "CF apps serve HTTP on 8080"),
        (
            cf_route.clone(),
            "9999",
            9,
            "no Service in cf-workloads selecting app-0 declares port 9999",
        ),
        (
            format!("db#{selector}#5432|5432|TCP|tcp-pg|http;\n"),
            "5432",
            9,
            "appProtocol 'http'",
        ),
        (
            format!("web#{selector}#80|8443|TCP|grpc-web|<no value>;\n"),
            "8443",
            9,
            "port name 'grpc-web'",
        ),
        (
            format!("dns#{selector}#53|5353|UDP|dns|<no value>;\n"),
            "5353",
            9,
            "protocol UDP",
        ),
        (
            "other#cloudfoundry.org/app_guid=another-app,#5432|5432|TCP|tcp|<no value>;\n"
                .to_string(),
            "5432",
            9,
            "no Service",
        ),
        (
            "headless##5432|5432|TCP|tcp|<no value>;\n".to_string(),
            "5432",
            9,
            "no Service",
        ),
        // Accepted: declared TCP by name, by a named target port, by a
        // well-known port; sniffed with a warning.
        (
            format!("{cf_route}db#{selector}#5432|<no value>|TCP|tcp-pg|<no value>;\n"),
            "5432",
            0,
            "",
        ),
        (
            format!("db#{selector}#5432|pg|TCP|<no value>|<no value>;3306|3306|TCP|<no value>|<no value>;\n"),
            "5433",
            0,
            "port 5433 has no protocol Istio knows",
        ),
        (
            format!("db#{selector}#3306|3306|TCP|<no value>|<no value>;\n"),
            "3306",
            0,
            "",
        ),
        (
            format!("tls#{selector}#443|8443|TCP|https|<no value>;\n"),
            "8443",
            0,
            "",
        ),
    ];
    for (svcs, port, code, message) in cases {
        let fake = Fake::new();
        fake.write("logs", &proxy_log(&[record("/", 0)]));
        let o = fake.run(
            &[
                ("FAKE_PODS", "app-0"),
                ("FAKE_SVCS", &svcs),
                ("FAKE_POD_PORTS", "port pg=5433"),
                ("FAKE_TAPPED", "1"),
            ],
            &["--guid", GUID, "--tcp", port, "--duration", "1"],
        );
        assert_eq!(
            o.status.code(),
            Some(code),
            "{port} {svcs:?}: {}",
            stderr(&o)
        );
        assert!(
            stderr(&o).contains(message),
            "{port} {svcs:?}: wanted {message:?} in {}",
            stderr(&o)
        );
        if code == 9 {
            assert_eq!(count(&fake.calls(), "kubectl apply"), 0);
        } else if message.is_empty() {
            assert!(!stderr(&o).contains("no protocol Istio knows"));
        }
    }
}

#[test]
fn errors_are_clear_and_exit_non_zero() {
    /// Environment, arguments, exit code, message.
    type Case<'a> = (Vec<(&'a str, &'a str)>, Vec<&'a str>, i32, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec![
                ("KUBECONFIG", ""),
                ("HOME", "/nonexistent"),
                ("KUBERNETES_SERVICE_HOST", ""),
            ],
            vec!["my-app"],
            3,
            "no kubeconfig: KUBECONFIG is not set, ~/.kube/config does not exist",
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
            vec![("FAKE_PODS", "app-0"), ("FAKE_FORBID", "exec")],
            vec!["my-app"],
            6,
            "kubectl is not allowed to exec pilot-agent in app-0",
        ),
        (
            vec![("FAKE_PODS", "app-0")],
            vec!["--format", "xml", "my-app"],
            2,
            "--format is jsonl, har or pcap",
        ),
        (
            vec![("FAKE_PODS", "app-0")],
            vec!["--records", "s3", "my-app"],
            2,
            "--records is logs or file",
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
        (
            vec![("FAKE_PODS", "app-0")],
            vec!["--tcp", "80", "--tcp-outbound", "5432", "my-app"],
            2,
            "one tap each",
        ),
        (
            vec![("FAKE_PODS", "app-0")],
            vec!["--wasm-dir", "/nonexistent", "my-app"],
            2,
            "tap_http.wasm is missing",
        ),
        (vec![], vec![], 2, "name the app"),
        (
            vec![("FAKE_PODS", "app-0")],
            vec!["--follow", "--records", "file", "my-app"],
            2,
            "--follow streams the sidecars' logs: it takes --records logs, not file",
        ),
        (
            vec![("FAKE_PODS", "app-0")],
            vec!["--follow", "--format", "har", "my-app"],
            2,
            "--follow writes JSON lines",
        ),
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
        if code != 6 {
            assert_eq!(count(&fake.calls(), "kubectl apply"), 0, "{args:?}");
        }
    }
}

#[test]
fn failures_after_install_still_clean_up() {
    // Forbidden to apply: nothing is left behind, and no file was put
    // anywhere (an apply that failed may still have stored the object: the
    // delete is tried, quietly).
    let fake = Fake::new();
    let o = fake.run(
        &[("FAKE_PODS", "app-0"), ("FAKE_FORBID", "apply")],
        &["my-app"],
    );
    assert_eq!(o.status.code(), Some(6), "{}", stderr(&o));
    assert!(stderr(&o).contains("kubectl is not allowed"));
    let calls = fake.calls();
    // Only the read of the sidecar's Envoy version, before the apply.
    assert_eq!(count(&calls, "kubectl exec"), 1, "{calls:#?}");
    assert_eq!(
        count(&calls, "kubectl exec -n cf-workloads app-0 -c istio-proxy -- pilot-agent request GET server_info"),
        1,
        "{calls:#?}"
    );
    assert_eq!(count(&calls, "kubectl cp"), 0, "{calls:#?}");
    assert!(!stderr(&o).contains("could not delete"));
    // The filter never loads: a timeout, then everything removed, the file
    // route's records file included.
    let fake = Fake::new();
    let o = fake.run(
        &[("FAKE_PODS", "app-0"), ("FAKE_LOADED", "never")],
        &["--timeout", "2", "--records", "file", "my-app"],
    );
    assert_eq!(o.status.code(), Some(8), "{}", stderr(&o));
    assert!(stderr(&o).contains("did not load tap_http within 2s"));
    let calls = fake.calls();
    assert_eq!(count(&calls, "kubectl delete envoyfilter"), 1, "{calls:#?}");
    assert_eq!(
        count(
            &calls,
            &format!("kubectl exec -n cf-workloads app-0 -c istio-proxy -- rm -f /etc/istio/proxy/tap-{GUID}-")
        ),
        1
    );
    // Outbound, nothing to patch: the message says what Istio needs.
    let fake = Fake::new();
    let o = fake.run(
        &[("FAKE_PODS", "app-0"), ("FAKE_LOADED", "never")],
        &["--timeout", "1", "--tcp-outbound", "5432", "my-app"],
    );
    assert_eq!(o.status.code(), Some(8), "{}", stderr(&o));
    assert!(stderr(&o).contains("a Service or ServiceEntry declaring port 5432 as TCP"));
    // The file route on a proxy image without tar: told, cleaned up.
    let fake = Fake::new();
    let o = fake.run(
        &[("FAKE_PODS", "app-0"), ("FAKE_IMAGE", "distroless")],
        &[
            "--records",
            "file",
            "--duration",
            "1",
            "--timeout",
            "2",
            "my-app",
        ],
    );
    assert_eq!(o.status.code(), Some(10), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("needs tar in the istio-proxy container"),
        "{}",
        stderr(&o)
    );
    assert_eq!(count(&fake.calls(), "kubectl delete envoyfilter"), 1);
}

#[test]
fn interrupted_capture_cleans_up() {
    let fake = Fake::new();
    let mut child = fake
        .command(
            &[("FAKE_PODS", "app-0 app-1")],
            &["--duration", "120", "--records", "file", "my-app"],
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
    for pod in ["app-0", "app-1"] {
        assert_eq!(
            count(
                &calls,
                &format!("kubectl exec -n cf-workloads {pod} -c istio-proxy -- rm -f")
            ),
            1
        );
    }
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
    fake.write("logs", &proxy_log(&[record("/", 0)]));
    let o = fake.run(
        &[("FAKE_PODS", "app-0"), ("FAKE_TAPPED", "1")],
        &["--guid", GUID, "--count", "1", "--keep"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("left installed"));
    assert_eq!(count(&fake.calls(), "kubectl delete"), 0);
}

#[test]
fn har_and_pcap_formats_use_the_tap_tool() {
    for (format, file) in [("har", "records.har"), ("pcap", "records.pcap")] {
        let fake = Fake::new();
        fake.write("logs", &proxy_log(&[record("/a", 5), record("/b", 0)]));
        std::os::unix::fs::symlink(tap_binary(), fake.dir.join("bin/tap")).unwrap();
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
            assert_mitmproxy_reads(&out.join(file));
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

/// The plugin configuration carries the caps: a rate per worker and a
/// record cap per sidecar, whether or not `--count` is given.
#[test]
fn caps_are_always_in_the_plugin_configuration() {
    // Arguments, max_records, records per second, body cap.
    // Bodies (and connection data) only with --bodies or --max-body.
    let cases: [(&[&str], u64, u64, u64); 10] = [
        (&[], 500, 5, 0),
        (&["--bodies"], 500, 5, 4096),
        (&["--records", "file"], 100, 5, 0),
        (&["--records", "file", "--bodies"], 100, 5, 65536),
        (&["--count", "7", "--bodies"], 7, 5, 4096),
        (
            &["--count", "2000", "--records", "file", "--bodies"],
            2000,
            5,
            65536,
        ),
        (&["--rate", "020", "--count", "08"], 8, 20, 0),
        (&["--max-body", "100"], 500, 5, 100),
        (&["--tcp", "5432", "--records", "file"], 100, 5, 0),
        (
            &["--tcp", "5432", "--records", "file", "--bodies"],
            100,
            5,
            65536,
        ),
    ];
    for (args, max_records, rate, body) in cases {
        let fake = Fake::new();
        let mut all = vec!["--guid", GUID, "--dry-run"];
        all.extend(args);
        let o = fake.run(&[], &all);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        let manifest: Value = serde_yaml::from_slice(&o.stdout).unwrap();
        let config = &wasm_patch(&manifest)["patch"]["value"]["typed_config"]["config"];
        let plugin: Value =
            serde_json::from_str(config["configuration"]["value"].as_str().unwrap())
                .unwrap_or_else(|e| panic!("{args:?}: the configuration is JSON: {e}"));
        assert_eq!(plugin["max_records"], max_records, "{args:?}");
        assert_eq!(
            plugin["rate_limit"],
            json!({"records_per_second": rate, "burst": rate}),
            "{args:?}"
        );
        let body_field = if args.contains(&"--tcp") {
            "max_read_bytes"
        } else {
            "max_request_bytes"
        };
        assert_eq!(plugin[body_field], body, "{args:?}");
    }
    for (args, message) in [
        (["--rate", "0"], "--rate is records per second, at least 1"),
        (["--rate", "1.5"], "'1.5' is not a number"),
        (["--count", "0"], "--count is at least 1"),
    ] {
        let fake = Fake::new();
        let mut all = vec!["--guid", GUID, "--dry-run"];
        all.extend(args);
        let o = fake.run(&[], &all);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stderr(&o).contains(message), "{args:?}: {}", stderr(&o));
    }
}

/// Without `--count` the capture still ends early once every sidecar has
/// recorded its cap; what the caps kept out is reported per pod.
#[test]
fn capture_ends_when_every_sidecar_recorded_its_cap() {
    let records: Vec<String> = (0..100).map(|i| record(&format!("/{i}"), 0)).collect();
    let fake = Fake::new();
    fake.write("records.jsonl", &(records.join("\n") + "\n"));
    let started = Instant::now();
    let o = fake.run(
        &[
            ("FAKE_PODS", "app-0 app-1"),
            ("FAKE_TAPPED", "100"),
            ("FAKE_LIMITED", "7"),
        ],
        &[
            "--guid",
            GUID,
            "--records",
            "file",
            "--duration",
            "60",
            "--out",
            "out",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(started.elapsed() < Duration::from_secs(30));
    let err = stderr(&o);
    assert!(
        err.contains("every sidecar recorded its cap of 100 records: capture ends early"),
        "{err}"
    );
    for pod in ["app-0", "app-1"] {
        assert!(
            err.contains(&format!(
                "{pod}: its sidecar recorded its cap of 100 records; what matched after that was not recorded"
            )),
            "{err}"
        );
        assert!(
            err.contains(&format!("{pod}: 7 matched request(s) not recorded: over --rate (5 a second per worker) or the cap of 100 records")),
            "{err}"
        );
        assert_eq!(fake.records("out", pod), records);
    }
    // One sidecar at its cap, the other short of it: the capture runs its
    // course, and only the first is reported as capped.
    let fake = Fake::new();
    fake.write("records.app-0", &(records.join("\n") + "\n"))
        .write("records.app-1", &(records[0].clone() + "\n"))
        .write("tapped.app-0", "100")
        .write("tapped.app-1", "1");
    let started = Instant::now();
    let o = fake.run(
        &[("FAKE_PODS", "app-0 app-1")],
        &[
            "--guid",
            GUID,
            "--records",
            "file",
            "--duration",
            "5",
            "--out",
            "out",
        ],
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    // tap.sh times the capture in whole seconds (bash's SECONDS).
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "{:?}: {err}",
        started.elapsed()
    );
    assert!(!err.contains("capture ends early"), "{err}");
    assert!(
        err.contains("app-0: its sidecar recorded its cap of 100 records"),
        "{err}"
    );
    assert!(
        !err.contains("app-1: its sidecar recorded its cap"),
        "{err}"
    );
    assert_eq!(fake.records("out", "app-0"), records);
    assert_eq!(fake.records("out", "app-1"), records[..1]);
}

/// `--tcp-outbound` on a port that no Service or ServiceEntry declares as
/// TCP: a warning before anything is installed that the wait will end with
/// exit 8; the tap is still tried (the mesh may know more than this cluster).
#[test]
fn tcp_outbound_warns_early_about_ports_istio_does_not_proxy_as_tcp() {
    let not_tcp = "port 5432 is not TCP to Istio:";
    let exit_8 = "tap.sh will end with exit 8 after --timeout (1s)";
    // Services, ServiceEntries, forbidden, messages wanted, messages not wanted.
    type Case<'a> = (&'a str, &'a str, bool, Vec<&'a str>, Vec<&'a str>);
    let cases: Vec<Case> = vec![
        (
            "web/frontend#5432|TCP|http|<no value>;\n",
            "",
            false,
            vec![not_tcp, "web/frontend (port name 'http')", exit_8],
            vec![],
        ),
        (
            "data/db#5432|TCP|tcp-pg|http;\n",
            "istio-system/api#5432|HTTP2|h2;\n",
            false,
            vec![
                not_tcp,
                "data/db (port name 'tcp-pg', appProtocol 'http')",
                "ServiceEntry istio-system/api (protocol HTTP2)",
            ],
            vec![],
        ),
        (
            "web/frontend#5432|TCP|http|<no value>;\n",
            "istio-system/rds#443|TLS|tls;5432|TCP|pg;\n",
            false,
            vec![],
            vec![not_tcp, "exit 8"],
        ),
        (
            "data/db#80|TCP|http|<no value>;5432|TCP|tcp-pg|<no value>;\n",
            "",
            false,
            vec![],
            vec!["exit 8", "no protocol"],
        ),
        (
            "data/db#5432|TCP|<no value>|<no value>;\n",
            "",
            false,
            vec!["port 5432 has no protocol Istio knows (data/db (port name ''))"],
            vec!["exit 8"],
        ),
        (
            "data/db#5433|TCP|tcp|<no value>;\n",
            "",
            false,
            vec![
                "no Service or ServiceEntry in this cluster declares port 5432",
                exit_8,
            ],
            vec![],
        ),
        (
            "",
            "",
            true,
            vec!["cannot list Services in all namespaces (Error from server (Forbidden)"],
            vec!["exit 8"],
        ),
    ];
    for (svcs, ses, forbidden, wanted, unwanted) in cases {
        let fake = Fake::new();
        let mut env = vec![
            ("FAKE_PODS", "app-0"),
            ("FAKE_LOADED", "never"),
            ("FAKE_SVCS_ALL", svcs),
            ("FAKE_SES_ALL", ses),
        ];
        if forbidden {
            env.push(("FAKE_FORBID_ALL", "1"));
        }
        let o = fake.run(
            &env,
            &["--guid", GUID, "--tcp-outbound", "5432", "--timeout", "1"],
        );
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(8), "{svcs:?} {ses:?}: {err}");
        for m in wanted {
            assert!(err.contains(m), "{svcs:?} {ses:?}: wanted {m:?} in {err}");
        }
        for m in unwanted {
            // The exit-8 message itself names the outbound listener.
            let before_wait = err.split("did not load").next().unwrap();
            assert!(!before_wait.contains(m), "{svcs:?} {ses:?}: {m:?} in {err}");
        }
        let calls = fake.calls();
        let check = calls
            .iter()
            .position(|c| c.starts_with("kubectl get svc -A"))
            .expect("Services listed");
        let apply = calls
            .iter()
            .position(|c| c.starts_with("kubectl apply"))
            .expect("still applied");
        assert!(check < apply, "{calls:#?}");
    }
}

/// A ServiceEntry port's protocol is its `protocol` field alone, case
/// ignored (Istio's `protocol.Parse` in its ServiceEntry conversion): unlike
/// a Service port, neither the port name nor a well-known port such as 3306
/// makes it TCP, and an empty or unknown protocol is sniffed.
#[test]
fn service_entry_ports_take_their_protocol_from_the_protocol_field_alone() {
    // Port, ServiceEntries, the warning wanted (none: the port is TCP).
    let cases = [
        (
            "3306",
            "data/mysql#3306|<no value>|<no value>;\n",
            Some("port 3306 has no protocol Istio knows (ServiceEntry data/mysql)"),
        ),
        (
            "3306",
            "data/mysql#3306|<no value>|mysql;\n",
            Some("port 3306 has no protocol Istio knows (ServiceEntry data/mysql)"),
        ),
        (
            "5432",
            "data/pg#5432|TCP-pg|tcp-pg;\n",
            Some("port 5432 has no protocol Istio knows (ServiceEntry data/pg)"),
        ),
        (
            "5432",
            "data/pg#5432|GRPC-Web|tcp;\n",
            Some("port 5432 is not TCP to Istio: ServiceEntry data/pg (protocol GRPC-Web)"),
        ),
        ("5432", "data/pg#5432|Mongo|http-pg;\n", None),
        ("3306", "data/mysql#3306|tcp|<no value>;\n", None),
    ];
    for (port, ses, wanted) in cases {
        let fake = Fake::new();
        let o = fake.run(
            &[
                ("FAKE_PODS", "app-0"),
                ("FAKE_LOADED", "never"),
                ("FAKE_SES_ALL", ses),
            ],
            &["--guid", GUID, "--tcp-outbound", port, "--timeout", "1"],
        );
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(8), "{ses:?}: {err}");
        let before_wait = err.split("did not load").next().unwrap();
        match wanted {
            Some(m) => assert!(before_wait.contains(m), "{ses:?}: wanted {m:?} in {err}"),
            None => {
                for m in [
                    "no protocol Istio knows",
                    "not TCP to Istio",
                    "declares port",
                ] {
                    assert!(!before_wait.contains(m), "{ses:?}: {m:?} in {err}");
                }
            }
        }
    }
}

/// The fake's template check bites: a template other than the one verified
/// fails like a kubectl error (exit 6), so tap.sh cannot drift from it.
#[test]
fn fake_kubectl_refuses_templates_other_than_the_verified_ones() {
    let fake = Fake::new();
    let changed = template("FAKE_T_SVC").replace(".targetPort", ".targetport");
    let o = fake.run(
        &[("FAKE_PODS", "app-0"), ("FAKE_T_SVC", &changed)],
        &["--guid", GUID, "--tcp", "5432"],
    );
    assert_eq!(o.status.code(), Some(6), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("is not the -o the test verified"),
        "{}",
        stderr(&o)
    );
}

/// A Kubernetes API server that answers GETs from fixed JSON documents by
/// path (the query ignored), with the discovery documents kubectl reads
/// first: enough for a real `kubectl get`.
struct ApiServer {
    addr: std::net::SocketAddr,
}

impl ApiServer {
    fn start(documents: Vec<(&str, Value)>) -> ApiServer {
        let resource = |name: &str, kind: &str, short: &str| {
            json!({"name": name, "singularName": kind.to_lowercase(), "namespaced": true,
                   "kind": kind, "verbs": ["get", "list"], "shortNames": [short]})
        };
        let mut routes: std::collections::HashMap<String, Value> = [
            ("/api", json!({"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})),
            ("/apis", json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [{
                "name": "networking.istio.io",
                "versions": [{"groupVersion": "networking.istio.io/v1", "version": "v1"}],
                "preferredVersion": {"groupVersion": "networking.istio.io/v1", "version": "v1"}}]})),
            ("/api/v1", json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": [
                resource("pods", "Pod", "po"), resource("services", "Service", "svc")]})),
            ("/apis/networking.istio.io/v1", json!({"kind": "APIResourceList", "apiVersion": "v1",
                "groupVersion": "networking.istio.io/v1",
                "resources": [resource("serviceentries", "ServiceEntry", "se")]})),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        for (path, doc) in documents {
            routes.insert(path.to_string(), doc);
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            use std::io::{BufRead, Write};
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut reader = std::io::BufReader::new(conn.try_clone().unwrap());
                let mut first = String::new();
                if reader.read_line(&mut first).is_err() {
                    continue;
                }
                loop {
                    let mut line = String::new();
                    match reader.read_line(&mut line) {
                        Ok(n) if n > 2 => continue,
                        _ => break,
                    }
                }
                let target = first.split(' ').nth(1).unwrap_or("/");
                let path = target.split('?').next().unwrap();
                let (status, body) = match routes.get(path) {
                    Some(doc) => ("200 OK", doc.to_string()),
                    None => (
                        "404 Not Found",
                        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                               "reason": "NotFound", "code": 404})
                        .to_string(),
                    ),
                };
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        ApiServer { addr }
    }

    /// A kubeconfig for this server, written into `dir`.
    fn kubeconfig(&self, dir: &std::path::Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\ncurrent-context: fake\n\
                 clusters: [{{name: fake, cluster: {{server: \"http://{}\"}}}}]\n\
                 contexts: [{{name: fake, context: {{cluster: fake, user: fake}}}}]\n\
                 users: [{{name: fake, user: {{}}}}]\n",
                self.addr
            ),
        )
        .unwrap();
        path
    }
}

/// The `kubectl` on PATH; the test fails without one.
fn real_kubectl() -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join("kubectl"))
        .find(|p| p.is_file())
        .expect("no kubectl on PATH: this test needs one (apt-get install kubernetes-client)")
}

/// The templates in [`TEMPLATES`], which the fake insists tap.sh sends, run
/// in a real kubectl against [`ApiServer`]: their output, and tap.sh's
/// verdicts on it for `--tcp` and `--tcp-outbound`. Needs `kubectl` on PATH:
/// `make test-extra` runs it.
#[test]
#[ignore = "needs kubectl"]
fn kubectl_templates_in_a_real_kubectl() {
    let kubectl = real_kubectl();
    let version = Command::new(&kubectl)
        .args(["version", "--client"])
        .output()
        .expect("run kubectl version");
    eprintln!(
        "{}: {}",
        kubectl.display(),
        String::from_utf8_lossy(&version.stdout).trim()
    );
    let labels = json!({"cloudfoundry.org/app_guid": GUID, "cloudfoundry.org/process_type": "web"});
    let service = |name: &str, ns: &str, selector: Value, ports: Value| json!({"metadata": {"name": name, "namespace": ns}, "spec": {"selector": selector, "ports": ports}});
    let server = ApiServer::start(vec![
        (
            "/api/v1/namespaces/cf-workloads/pods",
            json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": [
                {"metadata": {"name": "app-0", "namespace": "cf-workloads", "uid": "u0"}, "spec": {"containers": []}}]}),
        ),
        (
            "/api/v1/namespaces/cf-workloads/pods/app-0",
            json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "app-0",
                "namespace": "cf-workloads", "uid": "u0", "labels": labels},
                "spec": {"containers": [
                    {"name": "opi", "ports": [{"name": "pg", "containerPort": 5433}, {"containerPort": 8080}]},
                    {"name": "istio-proxy", "ports": [{"name": "http-envoy-prom", "containerPort": 15090}]}]}}),
        ),
        (
            "/api/v1/namespaces/cf-workloads/services",
            json!({"kind": "ServiceList", "apiVersion": "v1", "metadata": {}, "items": [
                service("s-route-1", "cf-workloads", labels.clone(),
                    json!([{"port": 8080, "protocol": "TCP", "name": "http", "targetPort": 8080}])),
                service("db", "cf-workloads", json!({"cloudfoundry.org/app_guid": GUID}),
                    json!([{"port": 5432, "protocol": "TCP", "name": "tcp-pg", "targetPort": "pg"}])),
                service("metrics", "cf-workloads", labels.clone(),
                    json!([{"port": 9000, "protocol": "TCP", "targetPort": 9000}])),
                {"metadata": {"name": "headless", "namespace": "cf-workloads"},
                 "spec": {"ports": [{"port": 5432, "protocol": "TCP", "targetPort": "pg", "appProtocol": "tcp"}]}}]}),
        ),
        (
            "/api/v1/services",
            json!({"kind": "ServiceList", "apiVersion": "v1", "metadata": {}, "items": [
                service("db", "data", json!({"app": "pg"}), json!([
                    {"port": 5432, "protocol": "TCP", "name": "tcp-pg", "targetPort": 5432},
                    {"port": 9187, "protocol": "TCP", "targetPort": 9187}])),
                service("frontend", "web", json!({"app": "web"}), json!([
                    {"port": 8081, "protocol": "TCP", "name": "http-web", "targetPort": 8080}]))]}),
        ),
        (
            "/apis/networking.istio.io/v1/serviceentries",
            json!({"kind": "ServiceEntryList", "apiVersion": "networking.istio.io/v1", "metadata": {}, "items": [
                {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
                 "metadata": {"name": "rds", "namespace": "istio-system"},
                 "spec": {"hosts": ["db.example.com"], "ports": [
                    {"number": 3307, "protocol": "TCP", "name": "mysql"}, {"number": 8443}]}}]}),
        ),
    ]);
    let fake = Fake::new();
    let kubeconfig = server.kubeconfig(&fake.dir);
    let cache = fake.dir.join("kube-cache");
    let get = |args: &[&str], name: &str| {
        let o = Command::new(&kubectl)
            .args(args)
            .arg("-o")
            .arg(template(name))
            .env("KUBECONFIG", &kubeconfig)
            .env("KUBECACHEDIR", &cache)
            .output()
            .expect("run kubectl");
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        String::from_utf8(o.stdout).unwrap()
    };
    assert_eq!(
        get(&["get", "pod", "-n", "cf-workloads", "app-0"], "FAKE_T_POD"),
        format!(
            "label cloudfoundry.org/app_guid={GUID}\nlabel cloudfoundry.org/process_type=web\n\
             port pg=5433\nport http-envoy-prom=15090\n"
        )
    );
    assert_eq!(
        get(&["get", "svc", "-n", "cf-workloads"], "FAKE_T_SVC"),
        format!(
            "s-route-1#cloudfoundry.org/app_guid={GUID},cloudfoundry.org/process_type=web,#8080|8080|TCP|http|<no value>;\n\
             db#cloudfoundry.org/app_guid={GUID},#5432|pg|TCP|tcp-pg|<no value>;\n\
             metrics#cloudfoundry.org/app_guid={GUID},cloudfoundry.org/process_type=web,#9000|9000|TCP|<no value>|<no value>;\n\
             headless##5432|pg|TCP|<no value>|tcp;\n"
        )
    );
    assert_eq!(
        get(&["get", "svc", "-A"], "FAKE_T_SVC_ALL"),
        "data/db#5432|TCP|tcp-pg|<no value>;9187|TCP|<no value>|<no value>;\n\
         web/frontend#8081|TCP|http-web|<no value>;\n"
    );
    assert_eq!(
        get(
            &["get", "serviceentries.networking.istio.io", "-A"],
            "FAKE_T_SE_ALL"
        ),
        "istio-system/rds#3307|TCP|mysql;8443|<no value>|<no value>;\n"
    );
    assert_eq!(
        get(
            &[
                "get",
                "pods",
                "-n",
                "cf-workloads",
                "-l",
                "cloudfoundry.org/app_guid=x"
            ],
            "FAKE_T_PODS"
        ),
        "app-0=u0 "
    );
    // tap.sh on what the real kubectl prints. Arguments, exit code, wanted,
    // not wanted.
    let exit_8 = "will end with exit 8";
    let cases: [(&[&str], i32, &str, &str); 8] = [
        (
            &["--tcp", "5433"],
            0,
            "capturing",
            "no protocol Istio knows",
        ),
        (
            &["--tcp", "8080"],
            9,
            "s-route-1 (port name 'http')",
            "capturing",
        ),
        (
            &["--tcp", "9000"],
            0,
            "port 9000 has no protocol Istio knows (Service metrics (port name ''))",
            "refuse",
        ),
        (&["--tcp-outbound", "5432"], 8, "did not load", exit_8),
        (&["--tcp-outbound", "3307"], 8, "did not load", exit_8),
        (
            &["--tcp-outbound", "8443"],
            8,
            "port 8443 has no protocol Istio knows (ServiceEntry istio-system/rds)",
            exit_8,
        ),
        (
            &["--tcp-outbound", "9187"],
            8,
            "port 9187 has no protocol Istio knows (data/db (port name ''))",
            exit_8,
        ),
        (
            &["--tcp-outbound", "8081"],
            8,
            "port 8081 is not TCP to Istio: web/frontend (port name 'http-web')",
            "cannot list",
        ),
    ];
    for (args, code, wanted, unwanted) in cases {
        let fake = Fake::new();
        fake.write("logs", &proxy_log(&[record("/", 0)]));
        let mut env = vec![
            ("FAKE_REAL_KUBECTL", kubectl.to_str().unwrap()),
            ("KUBECONFIG", kubeconfig.to_str().unwrap()),
            ("KUBECACHEDIR", cache.to_str().unwrap()),
            ("FAKE_TAPPED", "1"),
        ];
        if code == 8 {
            env.push(("FAKE_LOADED", "never"));
        }
        let mut all = vec!["--guid", GUID, "--duration", "1", "--timeout", "1"];
        all.extend(args);
        let o = fake.run(&env, &all);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {err}");
        assert!(err.contains(wanted), "{args:?}: wanted {wanted:?} in {err}");
        assert!(!err.contains(unwanted), "{args:?}: {unwanted:?} in {err}");
    }
}

/// `--rate` in a real Envoy: matched requests past the rate are counted as
/// rate_limited, not tapped, and tap.sh reports them; the flush wait awaits
/// only the tapped ones.
#[test]
fn rate_cap_in_envoy() {
    let fake = Fake::new();
    let app = Upstream::start();
    let (o, envoy) = run_live(
        &fake,
        &[],
        &[
            "--guid",
            GUID,
            "--rate",
            "1",
            "--count",
            "50",
            "--duration",
            "3",
            "--out",
            "out",
        ],
        |fake| {
            let bootstrap = Bootstrap::new(app.port()).cluster("inbound|8080||", app.port());
            inbound_sidecar(fake, "app-0", bootstrap, "virtualInbound", None)
        },
        |envoy| {
            for i in 0..4 {
                Request::get(&format!("/{i}")).send(envoy.addr("virtualInbound"), Proto::H1);
            }
        },
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let tapped = envoy.counter("wasmcustom.tap_http.tapped");
    let limited = envoy.counter("wasmcustom.tap_http.rate_limited");
    // A burst of 1 at 1 a second: the first request, and a second one only
    // if a second went by between them.
    assert!((1..=2).contains(&tapped), "tapped {tapped}");
    assert_eq!(tapped + limited, 4);
    assert_eq!(fake.records("out", "app-0").len() as u64, tapped);
    assert!(
        stderr(&o).contains(&format!(
            "app-0: {limited} matched request(s) not recorded: over --rate (1 a second per worker) or the cap of 50 records"
        )),
        "{}",
        stderr(&o)
    );
}

/// The file route's default cap in a real Envoy: 100 records, the rest
/// counted as rate_limited; the capture ends early once it is reached.
#[test]
fn default_file_cap_in_envoy() {
    let fake = Fake::new();
    let app = Upstream::start();
    let started = Instant::now();
    let (o, envoy) = run_live(
        &fake,
        &[],
        &[
            "--guid",
            GUID,
            "--records",
            "file",
            "--rate",
            "1000",
            "--duration",
            "120",
            "--out",
            "out",
        ],
        |fake| {
            let bootstrap = Bootstrap::new(app.port()).cluster("inbound|8080||", app.port());
            inbound_sidecar(fake, "app-0", bootstrap, "virtualInbound", None)
        },
        |envoy| {
            for i in 0..103 {
                Request::get(&format!("/{i}")).send(envoy.addr("virtualInbound"), Proto::H1);
            }
        },
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_eq!(envoy.counter("wasmcustom.tap_http.tapped"), 100);
    assert_eq!(envoy.counter("wasmcustom.tap_http.rate_limited"), 3);
    assert_eq!(fake.records("out", "app-0").len(), 100);
    let err = stderr(&o);
    assert!(err.contains("capture ends early"), "{err}");
    assert!(
        err.contains("app-0: 3 matched request(s) not recorded"),
        "{err}"
    );
}

/// Installing and removing a tap changes the filter chains it patches, and
/// Envoy drains the connections of a changed chain: tcp_proxy, which has no
/// graceful drain, closes them by the end of the drain time. Here with
/// `--tcp-outbound`, listeners from a watched LDS file as Istio sends them,
/// and Istio's `--drain-strategy immediate` with a 2 s drain: a connection
/// open when the tap is applied is closed within 3 s, one opened during the
/// tap is closed within 3 s of its removal, and a connection on another
/// port's listener still works after each drain has ended.
#[test]
fn installing_and_removing_a_tap_drains_the_chains_it_changes() {
    let (port, other) = (free_port(), free_port());
    let db = TcpEcho::start();
    let cluster = "outbound|5432||db.data.svc.cluster.local";
    let fake = Fake::new();
    let o = fake.run(
        &[],
        &[
            "--guid",
            GUID,
            "--tcp-outbound",
            &port.to_string(),
            "--dry-run",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let manifest: Value = serde_yaml::from_slice(&o.stdout).unwrap();
    let (_, rewrites) = pod_paths(&fake, "app-0");
    let plain = vec![
        outbound_listener(port, cluster),
        outbound_listener(other, cluster),
    ];
    // Istio patches the listener of the tapped port (it matches
    // `portNumber`; the harness's `apply` does not): the first one.
    let mut tapped = plain.clone();
    apply(&mut tapped[..1], &manifest);
    let tapped = rewrite(tapped, &rewrites);
    assert!(tapped[0] != plain[0] && tapped[1] == plain[1]);
    let lds = fake.dir.join("lds");
    std::fs::create_dir_all(&lds).unwrap();
    let publish = |listeners: &[Value]| {
        let resources: Vec<Value> = listeners
            .iter()
            .map(|l| {
                let mut l = l.clone();
                l["@type"] = "type.googleapis.com/envoy.config.listener.v3.Listener".into();
                l
            })
            .collect();
        let tmp = fake.dir.join("lds.json.tmp");
        std::fs::write(&tmp, json!({"resources": resources}).to_string()).unwrap();
        std::fs::rename(&tmp, lds.join("lds.json")).unwrap();
    };
    publish(&plain);
    let mut config = Bootstrap::new(db.port())
        .cluster(cluster, db.port())
        .json()
        .clone();
    config["static_resources"]
        .as_object_mut()
        .unwrap()
        .remove("listeners");
    config["node"] = json!({"id": "sidecar~10.0.0.7~app-0.cf-workloads~cf-workloads.svc.cluster.local", "cluster": "app"});
    config["dynamic_resources"] = json!({"lds_config": {"resource_api_version": "V3",
        "path_config_source": {"path": lds.join("lds.json"), "watched_directory": {"path": lds}}}});
    let config_path = fake.dir.join("envoy.json");
    std::fs::write(&config_path, config.to_string()).unwrap();
    let envoy = Envoy::try_start_file(
        &config_path,
        &["--drain-time-s", "2", "--drain-strategy", "immediate"],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let connect = |name: &str| {
        let mut c = std::net::TcpStream::connect(envoy.addr(name)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        assert!(echoes(&mut c), "{name}: a working connection");
        c
    };
    let updates = || envoy.counter("listener_manager.lds.update_success");
    // Publishes `listeners`; returns when Envoy took them and how long
    // `conn` then stayed open.
    let update_and_time_close = |listeners: &[Value], conn: &mut std::net::TcpStream| {
        let before = updates();
        publish(listeners);
        let deadline = Instant::now() + Duration::from_secs(10);
        while updates() == before {
            assert!(Instant::now() < deadline, "Envoy did not take the update");
            std::thread::sleep(Duration::from_millis(20));
        }
        let updated = Instant::now();
        let mut buf = [0u8; 16];
        use std::io::Read;
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => {}
            Ok(n) => panic!("{n} unexpected bytes"),
        }
        (updated, updated.elapsed())
    };
    let drain = Duration::from_secs(2);
    // Past the end of the drain that began at `updated`.
    let after_drain = |updated: Instant| {
        std::thread::sleep(
            (updated + drain + Duration::from_millis(500))
                .saturating_duration_since(Instant::now()),
        );
    };
    let name = format!("10.96.0.20_{port}");
    let other_name = format!("10.96.0.20_{other}");
    let mut bystander = connect(&other_name);
    let mut before_tap = connect(&name);
    let (updated, open) = update_and_time_close(&tapped, &mut before_tap);
    // When within the drain Envoy closes it is Envoy's timing (a run closed
    // one 0.36 s in); that it does so by the drain's end (with 1 s to spare
    // for this machine) is the point.
    assert!(
        open < drain + Duration::from_secs(1),
        "still open {open:?} after the tap was applied (2 s drain)"
    );
    after_drain(updated);
    assert!(
        echoes(&mut bystander),
        "another port's listener is untouched by the drain"
    );
    let mut during_tap = connect(&name);
    let (updated, open) = update_and_time_close(&plain, &mut during_tap);
    assert!(
        open < drain + Duration::from_secs(1),
        "still open {open:?} after the tap was removed (2 s drain)"
    );
    after_drain(updated);
    assert!(
        echoes(&mut bystander),
        "still untouched after the second drain"
    );
    assert!(echoes(&mut connect(&name)), "new connections work");
}

/// Sends a few bytes on `c` and expects them back.
fn echoes(c: &mut std::net::TcpStream) -> bool {
    use std::io::{Read, Write};
    let mut buf = [0u8; 4];
    c.write_all(b"ping").is_ok() && c.read_exact(&mut buf).is_ok() && &buf == b"ping"
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

/// A request another filter of the sidecar answers itself (l7_policy's 403,
/// installed before tap.sh runs, before the router as the shipped
/// EnvoyFilter puts it) is recorded whole, with the reply's body: tap.sh
/// inserts its tap first in the chain, ahead of the filters already there.
#[test]
fn denials_are_recorded_with_their_reply() {
    let fake = Fake::new();
    let app = Upstream::start();
    let policy = json!({"spec": {"configPatches": [{
        "applyTo": "HTTP_FILTER",
        "match": {"context": "SIDECAR_INBOUND", "listener": {"filterChain": {"filter": {
            "name": "envoy.filters.network.http_connection_manager",
            "subFilter": {"name": "envoy.filters.http.router"}}}}},
        "patch": {"operation": "INSERT_BEFORE",
            "value": harness::wasm_filter("l7_policy", &json!({"rules": [{"method": "GET"}]}))}
    }]}});
    let (o, _envoy) = run_live(
        &fake,
        &[("FAKE_IMAGE", "distroless")],
        &[
            "--guid",
            GUID,
            "--count",
            "2",
            "--duration",
            "60",
            "--bodies",
            "--out",
            "out",
        ],
        |fake| {
            let bootstrap = Bootstrap::new(app.port()).cluster("inbound|8080||", app.port());
            inbound_sidecar_with(fake, "app-0", bootstrap, "virtualInbound", None, &[policy])
        },
        |envoy| {
            let addr = envoy.addr("virtualInbound");
            assert_eq!(Request::get("/allowed").send(addr, Proto::H1).status, 200);
            let denied = Request::new("POST", "/denied")
                .body("x")
                .send(addr, Proto::H2);
            assert_eq!(denied.status, 403);
        },
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let records: Vec<Value> = fake
        .records("out", "app-0")
        .iter()
        .map(|l| serde_json::from_str(l).expect("a whole JSON record"))
        .collect();
    assert_eq!(records.len(), 2);
    let denied = records
        .iter()
        .find(|r| r["http_buffered_trace"]["response"]["headers"][0]["value"] == "403")
        .expect("the denial is recorded");
    assert!(denied.get("incomplete").is_none(), "{denied}");
    let body = base64::engine::general_purpose::STANDARD
        .decode(
            denied["http_buffered_trace"]["response"]["body"]["as_bytes"]
                .as_str()
                .expect("a response body"),
        )
        .expect("base64");
    assert_eq!(body, b"Access denied\r\n");
}

/// Credentials a client and the app exchange, as the requests below send
/// them (the app's token response is the upstream's).
const CLIENT_SECRETS: [&str; 5] = [
    "key-3b8f0c2a91d4",
    "tok-5e7d1a2c9b04",
    "amz-8c2e4f6a0b1d",
    "qtok-1f3a5c7e9b2d",
    "pw-hunter2-4c6e8a",
];

/// The requests of a debugging session with credentials in every place a
/// client puts them: headers, a query, a form body; and a token response.
/// `quiet`: the app answers with a plain body instead of echoing the
/// request (the echo repeats the credentials as JSON strings under names of
/// its own, which no redaction by name can know: the reason bodies are
/// opt-in).
fn credential_traffic(envoy: &Envoy, quiet: bool) {
    let addr = envoy.addr("virtualInbound");
    let plain = |request: Request| {
        if quiet {
            request.header("x-echo-body-size", "16")
        } else {
            request
        }
    };
    plain(
        Request::get("/api/ships")
            .header("x-api-key", CLIENT_SECRETS[0])
            .header("x-auth-token", CLIENT_SECRETS[1])
            .header("x-amz-security-token", CLIENT_SECRETS[2]),
    )
    .send(addr, Proto::H1);
    plain(Request::get(&format!(
        "/callback?access_token={}&page=2",
        CLIENT_SECRETS[3]
    )))
    .send(addr, Proto::H2);
    plain(
        Request::new("POST", "/login")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("user=vader&password={}", CLIENT_SECRETS[4])),
    )
    .send(addr, Proto::H1);
    Request::new("POST", "/oauth/token")
        .header("x-echo-token-response", "1")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send(addr, Proto::H2);
}

/// A default tap (the logs route, no options) and one with `--bodies`, in
/// a real Envoy: no credential reaches the container log, where a log agent
/// would ship it; the records still say which header, parameter or field
/// was there, and tap.sh says where they go.
#[test]
fn a_default_tap_keeps_credentials_off_the_container_log() {
    use harness::upstream::{ACCESS_TOKEN, REFRESH_TOKEN};
    for bodies in [false, true] {
        let fake = Fake::new();
        let app = Upstream::start();
        let mut args = vec![
            "--guid",
            GUID,
            "--count",
            "4",
            "--duration",
            "60",
            "--out",
            "out",
        ];
        if bodies {
            args.push("--bodies");
        }
        let (o, envoy) = run_live(
            &fake,
            &[],
            &args,
            |fake| {
                let bootstrap = Bootstrap::new(app.port()).cluster("inbound|8080||", app.port());
                inbound_sidecar(fake, "app-0", bootstrap, "virtualInbound", None)
            },
            |envoy| credential_traffic(envoy, bodies),
        );
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert!(
            stderr(&o).contains(
                "records go to the sidecar's container log, which a log agent may ship off the pod"
            ),
            "{}",
            stderr(&o)
        );
        // The tap's lines of the container log (Istio's own access log
        // shares it, and writes the path with its query: not ours to
        // change, README says so).
        let log: String = std::fs::read_to_string(fake.dir.join("pod-app-0/dev/stdout"))
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("tap.sh/"))
            .map(|l| format!("{l}\n"))
            .collect();
        let lines = fake.records("out", "app-0");
        assert_eq!(lines.len(), 4, "{log}");
        assert_eq!(log.lines().count(), 4, "{log}");
        let records: Vec<Value> = lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        // Bodies are base64 in the record: decoded, they are searched too.
        let mut everything = log.clone();
        for r in &records {
            for message in ["request", "response"] {
                if let Some(b) = r["http_buffered_trace"][message]["body"]["as_bytes"].as_str() {
                    let bytes = base64::engine::general_purpose::STANDARD.decode(b).unwrap();
                    everything.push_str(&String::from_utf8_lossy(&bytes));
                }
            }
        }
        for secret in CLIENT_SECRETS.iter().chain(&[ACCESS_TOKEN, REFRESH_TOKEN]) {
            assert!(
                !everything.contains(secret),
                "{secret} reached the container log (bodies {bodies}):\n{everything}"
            );
        }
        let text = lines.join("\n");
        for shown in [
            r#"{"key":"x-api-key","value":"[redacted]"}"#,
            "/callback?access_token=[redacted]&page=2",
        ] {
            assert!(text.contains(shown), "{shown} not in {text}");
        }
        let login = records
            .iter()
            .find(|r| r.to_string().contains("/login"))
            .unwrap();
        let body = &login["http_buffered_trace"]["request"]["body"];
        if bodies {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(body["as_bytes"].as_str().unwrap())
                .unwrap();
            assert_eq!(bytes, b"user=vader&password=[redacted]");
            // Names are matched by word: `token_type` goes too.
            assert!(
                everything.contains(r#""expires_in":3600"#)
                    && everything.contains(r#""scope":"ships:read""#),
                "the rest of the JSON is kept: {everything}"
            );
        } else {
            assert_eq!(body["as_bytes"], "", "no body without --bodies");
            assert_eq!(body["truncated"], true, "the record says one went by");
        }
        // The verified caller has a field of its own (no certificate here).
        assert!(records.iter().all(|r| r["peer"] == json!({})));
        drop(envoy);
    }
}

/// Names tap.sh writes into the manifest are Kubernetes names: anything
/// else is refused in one line, before anything is applied.
#[test]
fn names_that_would_change_the_manifest_are_refused() {
    for (args, message) in [
        (
            vec![
                "--guid",
                GUID,
                "--namespace",
                "cf-workloads\n  labels:\n    injected: \"yes\"",
                "--dry-run",
            ],
            "--namespace must be a Kubernetes namespace name",
        ),
        (
            vec!["--guid", GUID, "--namespace", "CF", "--dry-run"],
            "--namespace must be",
        ),
        (
            vec!["--guid", GUID, "--namespace", "-a", "--dry-run"],
            "--namespace must be",
        ),
        (
            vec!["--guid", GUID, "--namespace", &"a".repeat(64), "--dry-run"],
            "--namespace must be",
        ),
        (vec!["--guid", "ABC-DEF", "--dry-run"], "is not an app GUID"),
        (
            vec!["--guid", "abc\ndef", "--dry-run"],
            "is not an app GUID",
        ),
        (vec!["my-app\n  x: y", "--dry-run"], "control characters"),
    ] {
        let fake = Fake::new();
        let o = fake.run(&[], &args);
        assert_eq!(
            o.status.code(),
            Some(if message.contains("GUID") { 5 } else { 2 }),
            "{args:?}: {}",
            stderr(&o)
        );
        assert!(stderr(&o).contains(message), "{args:?}: {}", stderr(&o));
        assert_eq!(stderr(&o).lines().count(), 1, "one line: {}", stderr(&o));
        assert!(o.stdout.is_empty(), "{args:?}: nothing printed");
    }
    let fake = Fake::new();
    let o = fake.run(
        &[],
        &["--guid", GUID, "--namespace", "cf-workloads-2", "--dry-run"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

/// tap.sh started with its standard output read line by line as it comes
/// (standard error in `tap.err`), in a process group of its own.
struct Following {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

/// tap.sh in a process group of its own, standard output piped, standard
/// error in `tap.err`.
fn follow_child(fake: &Fake, env: &[(&str, &str)], args: &[&str]) -> Child {
    use std::os::unix::process::CommandExt;
    fake.command(env, args)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(fake.dir.join("tap.err")).unwrap())
        .process_group(0)
        .spawn()
        .expect("start tap.sh")
}

fn follow(fake: &Fake, env: &[(&str, &str)], args: &[&str]) -> Following {
    let mut child = follow_child(fake, env, args);
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            if tx.send(line.expect("UTF-8 lines")).is_err() {
                break;
            }
        }
    });
    Following { child, lines }
}

impl Following {
    /// Once tap.sh waits for pod app-0's sidecar to load the filter: that
    /// sidecar as a real Envoy (its upstream `app`), and tap.sh following it.
    fn live_sidecar(&mut self, fake: &Fake, app: &Upstream) -> Envoy {
        wait_for_call(fake, &mut self.child, "pilot-agent request GET stats");
        let bootstrap = Bootstrap::new(app.port()).cluster("inbound|8080||", app.port());
        let envoy = Envoy::start(&inbound_sidecar(
            fake,
            "app-0",
            bootstrap,
            "virtualInbound",
            None,
        ));
        std::fs::write(fake.dir.join("admin.app-0"), envoy.admin_addr().to_string()).unwrap();
        self.wait_for_err(fake, "following until Ctrl-C");
        envoy
    }

    /// The next line of standard output, within `within`.
    fn line(&self, fake: &Fake, within: Duration) -> String {
        self.lines
            .recv_timeout(within)
            .unwrap_or_else(|e| panic!("no line within {within:?} ({e}): {}", fake.err()))
    }

    fn wait_for_err(&mut self, fake: &Fake, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !fake.err().contains(what) {
            assert!(
                self.child.try_wait().unwrap().is_none(),
                "tap.sh ended early: {}",
                fake.err()
            );
            assert!(Instant::now() < deadline, "no {what:?} in {}", fake.err());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends tap.sh `signal` (INT, TERM).
    fn signal(&self, signal: &str) {
        Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
    }

    /// Waits for tap.sh to end (within `within`); its status and the lines
    /// it printed that were not read yet.
    fn finish(mut self, fake: &Fake, within: Duration) -> (std::process::ExitStatus, Vec<String>) {
        let deadline = Instant::now() + within;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "tap.sh did not end: {}",
                fake.err()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let rest = self.lines.iter().collect();
        (status, rest)
    }
}

/// A test that failed half-way does not leave tap.sh following: SIGTERM,
/// and tap.sh cleans up.
impl Drop for Following {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.signal("TERM");
            let deadline = Instant::now() + Duration::from_secs(15);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// After tap.sh ended: the EnvoyFilter deleted once, every `kubectl logs
/// --follow` it started gone, and nothing left in its process group.
fn nothing_left(fake: &Fake, group: u32) {
    let calls = fake.calls();
    assert_eq!(
        count(
            &calls,
            &format!("kubectl delete envoyfilter -n cf-workloads {GUID}-tap")
        ),
        1,
        "{calls:#?}"
    );
    let pids = std::fs::read_to_string(fake.dir.join("follow-pids")).unwrap_or_default();
    assert!(!pids.is_empty(), "some pod was followed: {calls:#?}");
    let alive = |target: &str| {
        Command::new("kill")
            .args(["-0", "--", target])
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    };
    for pid in pids.lines() {
        assert!(!alive(pid), "kubectl logs --follow {pid} still runs");
    }
    // A fake follower killed in the middle of its own short sleep leaves
    // that sleep behind for a moment.
    let deadline = Instant::now() + Duration::from_secs(3);
    while alive(&format!("-{group}")) {
        assert!(
            Instant::now() < deadline,
            "processes of tap.sh's group still run"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The `:path` of a record line.
fn record_path(line: &str) -> String {
    let r: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    r["http_buffered_trace"]["request"]["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["key"] == ":path")
        .unwrap()["value"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `--follow` with a real Envoy as the sidecar: each record reaches tap.sh's
/// standard output (and nothing else does) before the next request is sent;
/// Ctrl-C (SIGINT) ends it cleanly, with the EnvoyFilter deleted and no
/// `kubectl logs --follow` left running.
#[test]
fn follow_streams_records_as_they_are_written_in_envoy() {
    let fake = Fake::new();
    let app = Upstream::start();
    let mut f = follow(
        &fake,
        &[("FAKE_PODS", "app-0"), ("FAKE_LOADED", "live")],
        &["--guid", GUID, "--follow"],
    );
    let envoy = f.live_sidecar(&fake, &app);
    let addr = envoy.addr("virtualInbound");
    Request::get("/first").send(addr, Proto::H1);
    let first = f.line(&fake, Duration::from_secs(20));
    assert_eq!(record_path(&first), "/first");
    Request::get("/second").send(addr, Proto::H2);
    let second = f.line(&fake, Duration::from_secs(20));
    assert_eq!(record_path(&second), "/second");
    let record: Value = serde_json::from_str(&second).unwrap();
    assert!(record["stream_info"]["start_time"].is_string(), "{second}");
    f.wait_for_err(&fake, "records: app-0 2 (2 in all)");
    let group = f.child.id();
    f.signal("INT");
    let (status, rest) = f.finish(&fake, Duration::from_secs(30));
    let err = fake.err();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(rest.is_empty(), "only records on stdout: {rest:?}");
    assert!(err.contains("records: app-0 1 (1 in all)"), "{err}");
    assert!(err.contains("interrupted: stopping"), "{err}");
    assert!(err.contains("followed 2 record(s): app-0 2"), "{err}");
    assert_eq!(envoy.counter("wasmcustom.tap_http.tapped"), 2);
    nothing_left(&fake, group);
}

/// A pod that starts after the tap began is followed too, once its sidecar
/// has loaded the filter; only this run's records come out of each log;
/// SIGTERM ends it cleanly.
#[test]
fn follow_takes_in_pods_that_start_later() {
    let fake = Fake::new();
    let (a, b) = (record("/from-app-0", 1), record("/from-app-1", 2));
    fake.write("follow.app-0.1", &proxy_log(std::slice::from_ref(&a)))
        .write("follow.app-1.1", &proxy_log(std::slice::from_ref(&b)))
        .write("load-after.app-1", "1");
    let mut f = follow(
        &fake,
        &[("FAKE_PODS", "app-0"), ("FAKE_PODS_LATER", "app-0 app-1")],
        &["--guid", GUID, "--follow"],
    );
    assert_eq!(f.line(&fake, Duration::from_secs(20)), a);
    assert_eq!(f.line(&fake, Duration::from_secs(20)), b);
    f.wait_for_err(&fake, "records: app-0 1, app-1 1 (2 in all)");
    let group = f.child.id();
    f.signal("TERM");
    let (status, rest) = f.finish(&fake, Duration::from_secs(30));
    let err = fake.err();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(rest.is_empty(), "{rest:?}");
    assert!(err.contains("new pod app-1"), "{err}");
    assert!(err.contains("interrupted: stopping"), "{err}");
    nothing_left(&fake, group);
}

/// `--count N` ends the stream after N records in all, whichever sidecars
/// they came from; `--out DIR` keeps a copy per pod.
#[test]
fn follow_stops_after_count_records() {
    let fake = Fake::new();
    let ours: Vec<String> = (0..3).map(|i| record(&format!("/{i}"), i)).collect();
    fake.write("follow.app-0.1", &proxy_log(&ours))
        .write("follow.app-1.1", &proxy_log(&ours));
    let started = Instant::now();
    let f = follow(
        &fake,
        &[("FAKE_PODS", "app-0 app-1")],
        &[
            "--guid",
            GUID,
            "--follow",
            "--count",
            "4",
            "--duration",
            "60",
            "--out",
            "out",
        ],
    );
    let group = f.child.id();
    let (status, lines) = f.finish(&fake, Duration::from_secs(40));
    let err = fake.err();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30), "{err}");
    assert_eq!(lines.len(), 4, "{lines:#?}");
    assert!(lines.iter().all(|l| ours.contains(l)), "{lines:#?}");
    assert!(err.contains("4 records: stopping"), "{err}");
    let mut kept: Vec<String> = ["app-0", "app-1"]
        .iter()
        .flat_map(|pod| {
            std::fs::read_to_string(fake.dir.join(format!("out/{pod}.jsonl")))
                .unwrap_or_default()
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    let mut printed = lines.clone();
    kept.sort();
    printed.sort();
    assert_eq!(kept, printed, "the copy is what was printed");
    let manifest = fake.applied();
    let config = &wasm_patch(&manifest)["patch"]["value"]["typed_config"]["config"];
    let plugin: Value =
        serde_json::from_str(config["configuration"]["value"].as_str().unwrap()).unwrap();
    assert_eq!(
        plugin["max_records"], 4,
        "the cap still applies per sidecar"
    );
    nothing_left(&fake, group);
}

/// A record line split across two chunks of the log stream is printed only
/// once it is whole; a line cut off where a follower's stream ends is never
/// printed, and the follower that replaces it does not repeat what was
/// printed.
#[test]
fn follow_never_prints_half_a_line() {
    let fake = Fake::new();
    let (r1, r2, r3) = (record("/1", 10), record("/2", 3000), record("/3", 3000));
    let (h2, h3) = (r2.len() / 2, r3.len() / 2);
    fake.write(
        "follow.app-0.1",
        &format!("@TAG@ {r1}\n@TAG@ {}", &r2[..h2]),
    )
    .write(
        "follow.app-0.2",
        &format!("{}\n@TAG@ {}", &r2[h2..], &r3[..h3]),
    );
    let f = follow(
        &fake,
        &[
            ("FAKE_PODS", "app-0"),
            ("FAKE_TAPPED", "3"),
            ("FAKE_FOLLOW_END", "1"),
        ],
        &["--guid", GUID, "--follow", "--duration", "12"],
    );
    assert_eq!(f.line(&fake, Duration::from_secs(20)), r1);
    // The first half of r2 has been in the stream for a while: not printed.
    assert!(
        f.lines.recv_timeout(Duration::from_secs(2)).is_err(),
        "half a line printed: {}",
        fake.err()
    );
    fake.write("release.app-0.2", "");
    assert_eq!(f.line(&fake, Duration::from_secs(20)), r2);
    let group = f.child.id();
    let (status, rest) = f.finish(&fake, Duration::from_secs(30));
    let err = fake.err();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(
        rest.is_empty(),
        "nothing after r2, r3 only ever came half: {rest:?}"
    );
    assert!(
        err.contains("following app-0 ended: following it again"),
        "{err}"
    );
    assert!(err.contains("followed 2 record(s): app-0 2"), "{err}");
    assert!(err.contains("12s: stopping"), "{err}");
    assert_eq!(
        err.matches("following app-0 ended").count(),
        1,
        "said once: {err}"
    );
    assert!(
        count(
            &fake.calls(),
            "kubectl logs -n cf-workloads app-0 -c istio-proxy --follow"
        ) >= 2,
        "{:#?}",
        fake.calls()
    );
    nothing_left(&fake, group);
}

/// Installed as `kubectl-tap` on PATH, tap.sh is the kubectl plugin `kubectl
/// tap`: its usage says so; `-n`, `--context` and `--kubeconfig` reach every
/// kubectl call; KUBECONFIG may be unset when kubectl has another
/// kubeconfig, and exit 3 says when it has none. kubectl itself, where
/// there is one on PATH, finds and runs the plugin.
#[test]
fn runs_as_the_kubectl_plugin() {
    let fake = Fake::new();
    let o = fake.plugin(&[], &["--help"]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&o.stdout).starts_with("usage: kubectl tap [options] <app-name>\n"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let o = fake.run(&[], &["--help"]);
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("usage: tap.sh [options]"));

    let home = fake.dir.join("home");
    std::fs::create_dir_all(home.join(".kube")).unwrap();
    let kubeconfig = fake.dir.join("cluster.kubeconfig");
    std::fs::write(&kubeconfig, "apiVersion: v1\nkind: Config\n").unwrap();
    let kc = kubeconfig.display().to_string();
    fake.write("logs", &proxy_log(&[record("/", 0)]));
    // No KUBECONFIG, no ~/.kube/config: --kubeconfig is enough.
    let o = fake
        .plugin(
            &[
                ("FAKE_PODS", "app-0"),
                ("FAKE_TAPPED", "1"),
                ("KUBERNETES_SERVICE_HOST", ""),
            ],
            &[
                "-n",
                "apps",
                "--context",
                "ctx",
                "--kubeconfig",
                &kc,
                "--count",
                "1",
                "--duration",
                "5",
                "--out",
                "out",
                "my-app",
            ],
        )
        .env_remove("KUBECONFIG")
        .env("HOME", &home)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(fake.records("out", "app-0"), [record("/", 0)]);
    assert_eq!(fake.applied()["metadata"]["namespace"], "apps");
    let calls = fake.calls();
    let kubectl: Vec<&String> = calls.iter().filter(|c| c.starts_with("kubectl ")).collect();
    assert!(kubectl.len() > 5, "{calls:#?}");
    for call in &kubectl {
        assert!(
            call.starts_with(&format!("kubectl --kubeconfig {kc} --context ctx ")),
            "{call}"
        );
        assert!(call.contains(" -n apps "), "{call}");
    }
    for verb in ["get pods", "exec", "apply", "logs", "delete envoyfilter"] {
        assert!(
            kubectl.iter().any(|c| c.contains(&format!(" ctx {verb} "))),
            "no kubectl {verb}: {calls:#?}"
        );
    }
    assert!(
        !stderr(&o).contains("tap.sh:"),
        "named as invoked: {}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("kubectl tap: app "), "{}", stderr(&o));

    // No KUBECONFIG, but ~/.kube/config: kubectl's default, and --option=VALUE.
    let fake = Fake::new();
    fake.write("logs", &proxy_log(&[record("/", 0)]));
    std::fs::write(home.join(".kube/config"), "apiVersion: v1\nkind: Config\n").unwrap();
    let o = fake
        .plugin(
            &[
                ("FAKE_PODS", "app-0"),
                ("FAKE_TAPPED", "1"),
                ("KUBERNETES_SERVICE_HOST", ""),
            ],
            &[
                "--namespace=apps",
                "--context=ctx",
                "--count=1",
                "--duration=5",
                "my-app",
            ],
        )
        .env_remove("KUBECONFIG")
        .env("HOME", &home)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let calls = fake.calls();
    assert!(
        calls
            .iter()
            .filter(|c| c.starts_with("kubectl "))
            .all(|c| c.starts_with("kubectl --context ctx ") && c.contains(" -n apps ")),
        "{calls:#?}"
    );

    // No kubeconfig at all (nor a pod's service account): exit 3, before
    // anything is called; and a --kubeconfig that does not exist.
    for args in [
        vec!["my-app"],
        vec!["--kubeconfig", "/nonexistent", "my-app"],
    ] {
        let fake = Fake::new();
        let o = fake
            .plugin(
                &[("FAKE_PODS", "app-0"), ("KUBERNETES_SERVICE_HOST", "")],
                &args,
            )
            .env_remove("KUBECONFIG")
            .env("HOME", fake.dir.join("no-home"))
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(3), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).starts_with("kubectl tap: "), "{}", stderr(&o));
        assert!(fake.calls().is_empty(), "{:#?}", fake.calls());
    }

    // kubectl finds kubectl-tap on PATH and hands it the arguments.
    let real = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join("kubectl"))
        .find(|p| p.is_file());
    let Some(real) = real else {
        eprintln!("no kubectl on PATH: plugin dispatch by kubectl itself not checked");
        return;
    };
    let plugins = fake.dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::os::unix::fs::symlink(
        workspace_root().join("envoyfilters/tap.sh"),
        plugins.join("kubectl-tap"),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        plugins.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let o = Command::new(&real)
        .args(["tap", "-n", "apps", "--guid", GUID, "--dry-run"])
        .env("PATH", &path)
        .env("KUBECONFIG", "/dev/null")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let manifest: Value = serde_yaml::from_slice(&o.stdout).unwrap();
    assert_eq!(manifest["metadata"]["namespace"], "apps");
    let o = Command::new(&real)
        .args(["tap", "--help"])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("usage: kubectl tap "));
}

/// Reads `chunks` into `captured` until it holds `what` (20 s at most).
fn until(
    captured: &mut Vec<u8>,
    chunks: &std::sync::mpsc::Receiver<Vec<u8>>,
    what: &[u8],
    fake: &Fake,
) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !captured.windows(what.len()).any(|w| w == what) {
        let left = deadline.saturating_duration_since(Instant::now());
        match chunks.recv_timeout(left) {
            Ok(bytes) => captured.extend(bytes),
            Err(e) => panic!(
                "no {:?} in the capture ({e}): {}",
                String::from_utf8_lossy(what),
                fake.err()
            ),
        }
    }
}

/// The live tap end to end: `tap.sh --follow | tap pcap --out -` with a
/// real Envoy as the sidecar; the capture's reader sees the first exchange
/// before the second request is sent, and Ctrl-C (SIGINT) leaves nothing
/// installed and nothing running.
#[test]
fn follow_into_a_live_capture() {
    let fake = Fake::new();
    let app = Upstream::start();
    let mut child = follow_child(
        &fake,
        &[("FAKE_PODS", "app-0"), ("FAKE_LOADED", "live")],
        &["--guid", GUID, "--follow"],
    );
    let mut pcap = Command::new(tap_binary())
        .args(["pcap", "--out", "-"])
        .stdin(child.stdout.take().unwrap())
        .stdout(Stdio::piped())
        .spawn()
        .expect("tap pcap");
    let mut out = pcap.stdout.take().unwrap();
    let (tx, chunks) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 65536];
        while let Ok(n) = std::io::Read::read(&mut out, &mut buffer) {
            if n == 0 || tx.send(buffer[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut captured = Vec::new();
    // The pcapng section header comes first, before any record.
    until(&mut captured, &chunks, &0x0a0d_0d0au32.to_le_bytes(), &fake);
    let (lines_tx, lines) = std::sync::mpsc::channel::<String>();
    drop(lines_tx);
    let mut f = Following { child, lines };
    let envoy = f.live_sidecar(&fake, &app);
    let addr = envoy.addr("virtualInbound");
    Request::get("/first").send(addr, Proto::H1);
    until(&mut captured, &chunks, b"GET /first HTTP/1.1", &fake);
    assert!(
        !captured.windows(7).any(|w| w == b"/second"),
        "nothing of the second request yet"
    );
    Request::get("/second").send(addr, Proto::H2);
    until(&mut captured, &chunks, b"GET /second HTTP/1.1", &fake);
    // The pcapng comment names the request and says the time is the record's.
    until(&mut captured, &chunks, b"time from the record", &fake);
    let group = f.child.id();
    f.signal("INT");
    let (status, _) = f.finish(&fake, Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{}", fake.err());
    assert!(
        pcap.wait().unwrap().success(),
        "tap pcap ends with the stream"
    );
    nothing_left(&fake, group);
}
