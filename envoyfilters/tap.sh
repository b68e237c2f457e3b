#!/usr/bin/env bash
# tap.sh: tap one Cloud Foundry app on Kubernetes (cf-for-k8s) and fetch what
# it said. Applies an EnvoyFilter named <guid>-tap that carries tap_http.wasm
# (or tap_tcp.wasm) inline, so that every sidecar of the app loads it, pods
# created while the tap is installed included; waits until they have;
# captures for a while; reads the records back from each sidecar's log (or
# file) once the sidecar has written all it counted; and removes what it
# created, however it exits.
#
# Installed as `kubectl-tap` on PATH (copied or symlinked), it is the kubectl
# plugin `kubectl tap`.
set -euo pipefail

# The program as invoked: `kubectl tap` when run as the plugin.
case ${0##*/} in
  kubectl-tap) prog="kubectl tap" ;;
  *) prog=${0##*/} ;;
esac

usage() {
  printf 'usage: %s [options] <app-name>\n' "$prog"
  cat <<'EOF'
  --guid GUID             the app's GUID (instead of `cf app <name> --guid`)
  -n, --namespace NS      where the app's pods run (default: cf-workloads)
  --context NAME          the kubeconfig context to use (every kubectl call)
  --kubeconfig FILE       the kubeconfig to use (every kubectl call; default:
                          $KUBECONFIG, else ~/.kube/config)
  --duration SECONDS      how long to capture (default: 60; with --follow:
                          until interrupted)
  --count N               stop after N records (and record at most N per
                          sidecar); without it each sidecar records at most
                          500 (--records logs) or 100 (--records file)
  --follow                stream the records to standard output as JSON lines
                          as the sidecars write them, new pods included, until
                          Ctrl-C, --duration or --count; counts per pod on
                          standard error; --records logs and --format jsonl
                          only; with --out DIR, a copy in DIR/<pod>.jsonl
  --rate N                records per second per Envoy worker, bursts of N
                          (default: 5)
  --tcp PORT              tap raw TCP the app receives on PORT (tap_tcp) instead
                          of HTTP; a Service selecting the app's pods must
                          declare PORT as TCP to Istio (not http, http2, grpc)
  --tcp-outbound PORT     tap raw TCP the app sends to PORT (a database, say);
                          the destination must be a Service or ServiceEntry
                          declaring PORT as TCP (else a warning, and exit 8
                          after --timeout)
  --method M              only requests with method M
  --path PREFIX           only requests whose path starts with PREFIX
  --header NAME[=VALUE]   only requests with this header (and value)
  --status N|MIN-MAX      only responses with this status (or range)
  --bodies                keep bodies (HTTP) or connection data (--tcp); without
                          it records hold headers only: bodies can carry any
                          credential, and only some formats can be redacted
  --max-body BYTES        bytes kept per body or direction, implies --bodies
                          (default with --bodies: 4096 with --records logs,
                          65536 with --records file)
  --records logs|file     how records come back: the sidecar's log, read with
                          `kubectl logs` (default; any proxy image; a log
                          agent may ship that log off the pod), or a file
                          in the sidecar copied with `kubectl cp` (needs tar
                          in the proxy image; records stay in the pod)
  --out DIR               where records go (default: ./tap-<guid>-<time>;
                          with --follow: standard output only)
  --format jsonl|har|pcap records as JSON lines, HAR or pcap (har and pcap need
                          the `tap` tool on PATH: make tap)
  --wasm-dir DIR          where tap_http.wasm and tap_tcp.wasm are (default:
                          $TAP_WASM_DIR, else the dist/ of the repository this
                          script is in, symlinks followed)
  --timeout SECONDS       how long sidecars may take to load the filter, and to
                          write out the records they counted (default: 60)
  --inline-module         put the module into the filter of every chain it
                          taps instead of sending it to each sidecar once
                          over extension-config discovery (ECDS); done by
                          itself where the first pod's Envoy is older than
                          1.26 (HTTP) or 1.28 (--tcp, --tcp-outbound), or its
                          version cannot be read (--dry-run asks no pod)
  --dry-run               print the EnvoyFilter, apply nothing
  --keep                  leave the tap installed when done
  -h, --help              this text
Options also take the form --option=VALUE.
Needs kubectl with a kubeconfig (--kubeconfig, $KUBECONFIG, ~/.kube/config,
or a pod's service account), and (without --guid) cf logged in.
Exit codes: 2 usage, 3 no kubeconfig, 4 cf not logged in, 5 app not found,
6 kubectl refused or failed, 7 no pods, 8 the filter did not load in time,
9 the --tcp port cannot be tapped, 10 records incomplete.
EOF
}

die() {
  local code=$1
  shift
  echo "$prog: $*" >&2
  exit "$code"
}

say() { echo "$prog: $*" >&2; }

# JSON string literal for a user value; control characters are refused.
json_string() {
  local s=$1
  if [[ $s =~ [[:cntrl:]] ]]; then
    die 2 "control characters are not allowed in '$s'"
  fi
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  printf '"%s"' "$s"
}

# This script's directory, through symlinks (a `kubectl-tap` symlink on
# PATH finds the repository's dist/).
source_path=${BASH_SOURCE[0]}
while [[ -L $source_path ]]; do
  link=$(readlink "$source_path")
  [[ $link == /* ]] || link=$(dirname "$source_path")/$link
  source_path=$link
done
script_dir=$(cd "$(dirname "$source_path")" && pwd)
app="" guid="" namespace="cf-workloads" duration="" count="" tcp_port="" outbound_port=""
method="" path_prefix="" header="" status="" max_body="" bodies=false records_via="logs" out="" format="jsonl" rate=5
wasm_dir=${TAP_WASM_DIR:-$script_dir/../dist} timeout=60 dry_run=false keep=false inline_module=false
follow=false context="" kubeconfig=""

need_value() { [[ $# -ge 2 && -n $2 ]] || die 2 "$1 needs a value"; }
while [[ $# -gt 0 ]]; do
  # --option=VALUE, as kubectl takes its flags: two words.
  if [[ $1 =~ ^(--[a-z-]+|-n)=(.*)$ ]]; then
    set -- "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" "${@:2}"
  fi
  case $1 in
    --guid) need_value "$@"; guid=$2; shift 2 ;;
    -n | --namespace) need_value "$@"; namespace=$2; shift 2 ;;
    --context) need_value "$@"; context=$2; shift 2 ;;
    --kubeconfig) need_value "$@"; kubeconfig=$2; shift 2 ;;
    --follow) follow=true; shift ;;
    --duration) need_value "$@"; duration=$2; shift 2 ;;
    --count) need_value "$@"; count=$2; shift 2 ;;
    --rate) need_value "$@"; rate=$2; shift 2 ;;
    --tcp) need_value "$@"; tcp_port=$2; shift 2 ;;
    --tcp-outbound) need_value "$@"; outbound_port=$2; shift 2 ;;
    --method) need_value "$@"; method=$2; shift 2 ;;
    --path) need_value "$@"; path_prefix=$2; shift 2 ;;
    --header) need_value "$@"; header=$2; shift 2 ;;
    --status) need_value "$@"; status=$2; shift 2 ;;
    --max-body) need_value "$@"; max_body=$2; bodies=true; shift 2 ;;
    --bodies) bodies=true; shift ;;
    --records) need_value "$@"; records_via=$2; shift 2 ;;
    --out) need_value "$@"; out=$2; shift 2 ;;
    --format) need_value "$@"; format=$2; shift 2 ;;
    --wasm-dir) need_value "$@"; wasm_dir=$2; shift 2 ;;
    --timeout) need_value "$@"; timeout=$2; shift 2 ;;
    --dry-run) dry_run=true; shift ;;
    --inline-module) inline_module=true; shift ;;
    --keep) keep=true; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) usage >&2; die 2 "unknown option $1" ;;
    *) [[ -z $app ]] || die 2 "one app at a time ($app, $1)"; app=$1; shift ;;
  esac
done

[[ -n $app || -n $guid ]] || { usage >&2; die 2 "name the app (or give --guid)"; }
# Names that go into the manifest are Kubernetes names (a namespace is an
# RFC 1123 label); anything else could add fields to the YAML. The app's
# name only reaches `cf` as one argument.
[[ $namespace =~ ^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$ ]] ||
  die 2 "--namespace must be a Kubernetes namespace name (lowercase letters, digits and '-', at most 63), not '$(printf '%q' "$namespace")'"
if [[ $app =~ [[:cntrl:]] ]]; then
  die 2 "the app name has control characters: '$(printf '%q' "$app")'"
fi
case $records_via in logs | file) ;; *) die 2 "--records is logs or file, not '$records_via'" ;; esac
# Bodies and connection data only when asked (--bodies): they can hold any
# credential, and only headers, queries, form and JSON fields are redacted.
# A record is one log line: with the logs route, bodies are capped lower so
# that records stay short lines in the container log (the runtime splits
# lines over 16 KiB, and the kubelet rotates the log at 10 MiB by default).
if [[ $bodies == false ]]; then
  max_body=0
elif [[ -z $max_body ]]; then
  if [[ $records_via == logs ]]; then max_body=4096; else max_body=65536; fi
fi
for n in ${duration:+"$duration"} "$max_body" "$timeout" "$rate" ${count:+"$count"} ${tcp_port:+"$tcp_port"} ${outbound_port:+"$outbound_port"}; do
  [[ $n =~ ^[0-9]+$ ]] || die 2 "'$n' is not a number"
done
# Decimal from here on (bash reads 010 as octal, JSON refuses it).
max_body=$((10#$max_body)) timeout=$((10#$timeout)) rate=$((10#$rate))
[[ -z $count ]] || count=$((10#$count))
# --duration: 60 seconds by default; with --follow, none (until interrupted).
if [[ -n $duration ]]; then
  duration=$((10#$duration))
elif [[ $follow == false ]]; then
  duration=60
fi
[[ -z $tcp_port ]] || tcp_port=$((10#$tcp_port))
[[ -z $outbound_port ]] || outbound_port=$((10#$outbound_port))
((rate > 0)) || die 2 "--rate is records per second, at least 1"
[[ -z $count ]] || ((count > 0)) || die 2 "--count is at least 1"
# The record cap per sidecar (the filter's max_records, counted across its
# workers): --count, or a default that bounds what a tap can write. The file
# route's records sit in /etc/istio/proxy, a memory-backed emptyDir counted
# against the sidecar's memory limit, and have larger bodies: fewer of them.
if [[ -n $count ]]; then
  cap=$count
elif [[ $records_via == logs ]]; then
  cap=500
else
  cap=100
fi
case $format in jsonl | har | pcap) ;; *) die 2 "--format is jsonl, har or pcap, not '$format'" ;; esac
# --follow reads the sidecars' logs as they are written (`kubectl logs -f`);
# following a file would need `tail` in the proxy image, which the
# distroless one lacks; and HAR and pcap are whole documents, not streams.
if [[ $follow == true ]]; then
  [[ $records_via == logs ]] || die 2 "--follow streams the sidecars' logs: it takes --records logs, not file (a file in the sidecar would need tail in the proxy image)"
  [[ $format == jsonl ]] || die 2 "--follow writes JSON lines; --format $format needs a capture with an end (or convert --out DIR/*.jsonl with the tap tool afterwards)"
fi
if [[ $format != jsonl ]] && ! command -v tap >/dev/null; then
  die 2 "--format $format needs the tap tool on PATH (make tap; cargo install --path tools/tap)"
fi
if [[ -n $tcp_port && -n $outbound_port ]]; then
  die 2 "--tcp (inbound) and --tcp-outbound are one tap each"
fi
port=${tcp_port:-$outbound_port}
if [[ -n $port && -n $method$path_prefix$header$status ]]; then
  die 2 "--method, --path, --header and --status apply to HTTP, not to --tcp"
fi

# kubectl's own order: --kubeconfig, $KUBECONFIG, ~/.kube/config, and in a
# pod its service account. With none of them, kubectl would talk to
# localhost:8080: refuse before anything else.
kubectl_flags=()
if [[ -n $kubeconfig ]]; then
  [[ -f $kubeconfig ]] || die 3 "--kubeconfig $kubeconfig: no such file"
  kubectl_flags+=(--kubeconfig "$kubeconfig")
elif [[ -z ${KUBECONFIG:-} && ! -f ${HOME:-/nonexistent}/.kube/config ]] &&
  ! [[ -n ${KUBERNETES_SERVICE_HOST:-} && -f /var/run/secrets/kubernetes.io/serviceaccount/token ]]; then
  die 3 "no kubeconfig: KUBECONFIG is not set, ~/.kube/config does not exist and this is not a pod; give --kubeconfig FILE or set KUBECONFIG"
fi
[[ -z $context ]] || kubectl_flags+=(--context "$context")
# Every kubectl call, through this function: the plugin's --kubeconfig and
# --context reach each of them.
kubectl() { command kubectl ${kubectl_flags[@]+"${kubectl_flags[@]}"} "$@"; }

if [[ -z $guid ]]; then
  if ! guid_out=$(cf app "$app" --guid 2>&1); then
    case $guid_out in
      *"Not logged in"* | *"not logged in"*) die 4 "cf is not logged in: run cf login (and cf target)" ;;
      *"not found"*) die 5 "app '$app' not found in the targeted org and space" ;;
      *) die 5 "cf app $app --guid failed: $guid_out" ;;
    esac
  fi
  guid=$(printf '%s' "$guid_out" | tr -d '[:space:]')
fi
# A label value and, with -tap, the EnvoyFilter's name (lowercase, 63 at most).
[[ $guid =~ ^[0-9a-f]([-0-9a-f]{0,57}[0-9a-f])?$ ]] || die 5 "'$(printf '%q' "$guid")' is not an app GUID (lowercase hex and '-')"

name="$guid-tap"
label="cloudfoundry.org/app_guid"
if [[ -n $port ]]; then filter=tap_tcp; else filter=tap_http; fi
wasm="$wasm_dir/$filter.wasm"
[[ -f $wasm ]] || die 2 "$wasm is missing: run make build (or give --wasm-dir)"

# This run's name. It tags the records in the sidecar's log (so that they can
# be told apart from Istio's access log and from other taps' records), names
# the records file, and names the plugin: the filter's record cap counts in
# Envoy's shared data under the plugin's name for as long as the Envoy runs,
# so a reused name would start this tap with an earlier tap's count spent.
run_id="$(date +%s)-$$-$RANDOM"
tag="tap.sh/$run_id"
records_file="/etc/istio/proxy/tap-$guid-$run_id.jsonl"

# The plugin configuration (JSON). Matched requests (connections) past the
# rate or the cap are not recorded, and counted as rate_limited, not tapped.
budget=", \"rate_limit\": {\"records_per_second\": $rate, \"burst\": $rate}, \"max_records\": $cap"
if [[ -n $port ]]; then
  plugin="{\"match\": {\"destination_port\": $port}, \"max_read_bytes\": $max_body, \"max_write_bytes\": $max_body$budget}"
else
  conditions=()
  [[ -n $method ]] && conditions+=("{\"method\": $(json_string "$method")}")
  [[ -n $path_prefix ]] && conditions+=("{\"path\": {\"prefix\": $(json_string "$path_prefix")}}")
  if [[ -n $header ]]; then
    if [[ $header == *=* ]]; then
      conditions+=("{\"request_header\": {\"name\": $(json_string "${header%%=*}"), \"exact\": $(json_string "${header#*=}")}}")
    else
      conditions+=("{\"request_header\": {\"name\": $(json_string "$header"), \"present\": true}}")
    fi
  fi
  if [[ -n $status ]]; then
    if [[ $status =~ ^([0-9]{3})-([0-9]{3})$ ]]; then
      conditions+=("{\"status\": {\"min\": ${BASH_REMATCH[1]}, \"max\": ${BASH_REMATCH[2]}}}")
    elif [[ $status =~ ^[0-9]{3}$ ]]; then
      conditions+=("{\"status\": {\"min\": $status, \"max\": $status}}")
    else
      die 2 "--status is a code (404) or a range (500-599), not '$status'"
    fi
  fi
  match='{"any": true}'
  if [[ ${#conditions[@]} -gt 0 ]]; then
    match="{\"and\": [$(IFS=,; echo "${conditions[*]}")]}"
  fi
  plugin="{\"match\": $match, \"max_request_bytes\": $max_body, \"max_response_bytes\": $max_body, \"record_stream_info\": true, \"record_downstream_connection\": true$budget}"
fi
plugin_yaml=${plugin//\'/\'\'}

# The EnvoyFilter: the tap first among the HTTP filters, or before tcp_proxy (TCP), and
# the access log that writes its records. Istio matches `portNumber` against
# the destination port of virtualInbound's filter chains and against the
# port of outbound listeners.
# The module travels once per sidecar: the filter in each matching chain
# only names an extension config that istiod serves over ECDS (as Istio's
# own WasmPlugin does), instead of carrying the module into every HTTP
# connection manager (one per port and TLS mode). The name is unique to
# this tap (namespace and app), as ECDS names are per proxy.
# `priority` orders this EnvoyFilter among others that patch the same
# chains (those of priority 0, the default, otherwise go by creation time):
# applied after them, the tap stays first among the HTTP filters and right
# before tcp_proxy.
ecds_name="$namespace.$name.$filter"
priority=1000
# Until the extension config arrives, and if the sidecar refuses it (a
# module or configuration its Envoy cannot load), the filter runs this
# instead: an RBAC filter without rules, which lets everything through, as
# Istio's agent does for a FAIL_OPEN plugin it cannot fetch. Applied
# without warming, so that the listener never waits for the tap (Istio
# waits, with initial_fetch_timeout 0s, for filters that enforce; a tap
# must never stop traffic).
if [[ -n $port ]]; then
  default_type=type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC
  default_fields="            stat_prefix: tap_sh_untapped"
else
  default_type=type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC
  default_fields="            rules_stat_prefix: tap_sh_untapped"
fi
context=SIDECAR_INBOUND
if [[ -n $port ]]; then
  [[ -n $outbound_port ]] && context=SIDECAR_OUTBOUND
  apply_to=NETWORK_FILTER
  listener_match="        portNumber: $port
        filterChain:
          filter:
            name: envoy.filters.network.tcp_proxy"
  filter_match=$listener_match
  operation=INSERT_BEFORE
  wasm_type=type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm
  log_owner_type=type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
else
  apply_to=HTTP_FILTER
  listener_match="        filterChain:
          filter:
            name: envoy.filters.network.http_connection_manager"
  # First in the chain: the replies of every filter after it (Istio's RBAC
  # and ext_authz, l7_policy's 403) pass through it and are recorded whole.
  filter_match=$listener_match
  operation=INSERT_FIRST
  wasm_type=type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
  log_owner_type=type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
fi
# The logs route writes to /dev/stdout, the path of Istio's own access log:
# Envoy keeps one writer per path, so both logs' lines reach the container log
# whole, one after the other.
if [[ $records_via == logs ]]; then
  log_path=/dev/stdout
  log_line="$tag %FILTER_STATE(wasm.tap_trace:PLAIN)%\n"
else
  log_path=$records_file
  log_line="%FILTER_STATE(wasm.tap_trace:PLAIN)%\n"
fi

# The Wasm filter's configuration, each line indented by $1.
wasm_config() {
  cat <<EOF | sed "s/^/$1/"
'@type': $wasm_type
config:
  name: $filter-$run_id
  root_id: $filter
  vm_config:
    vm_id: $filter
    runtime: envoy.wasm.runtime.v8
    code:
      local:
        inline_bytes: $(base64 <"$wasm" | tr -d '\n')
  configuration:
    '@type': type.googleapis.com/google.protobuf.StringValue
    value: '$plugin_yaml'
  fail_open: true
EOF
}

# The EnvoyFilter. Unless --inline-module, the module is an extension
# config (EXTENSION_CONFIG) that the filter names (config_discovery).
manifest() {
  cat <<EOF
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata:
  name: $name
  namespace: $namespace
spec:
  workloadSelector:
    labels:
      $label: $guid
  priority: $priority
  configPatches:
EOF
  if [[ $inline_module == false ]]; then
    cat <<EOF
  - applyTo: EXTENSION_CONFIG
    patch:
      operation: ADD
      value:
        name: $ecds_name
        typed_config:
$(wasm_config "          ")
EOF
  fi
  cat <<EOF
  - applyTo: $apply_to
    match:
      context: $context
      listener:
$filter_match
    patch:
      operation: $operation
      value:
        name: $ecds_name
EOF
  if [[ $inline_module == false ]]; then
    cat <<EOF
        config_discovery:
          config_source:
            ads: {}
            resource_api_version: V3
          default_config:
            '@type': $default_type
$default_fields
          apply_default_config_without_warming: true
          type_urls:
          - $wasm_type
          - $default_type
EOF
  else
    cat <<EOF
        typed_config:
$(wasm_config "          ")
EOF
  fi
  cat <<EOF
  - applyTo: NETWORK_FILTER
    match:
      context: $context
      listener:
$listener_match
    patch:
      operation: MERGE
      value:
        typed_config:
          '@type': $log_owner_type
          access_log:
          - name: envoy.access_loggers.file
            filter:
              extension_filter:
                name: envoy.access_loggers.extension_filters.cel
                typed_config:
                  '@type': type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter
                  expression: '''wasm.tap_trace'' in filter_state'
            typed_config:
              '@type': type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
              path: $log_path
              log_format:
                text_format_source:
                  inline_string: "$log_line"
EOF
}

# Where the records travel, said before anything is installed.
if [[ $records_via == logs ]]; then
  if [[ $bodies == true ]]; then
    kept="bodies (up to $max_body bytes, only form and JSON fields redacted)"
  else
    kept="no bodies"
  fi
  say "records go to the sidecar's container log, which a log agent may ship off the pod: credential headers, query values and form and JSON fields redacted, $kept; --records file keeps them in the pod"
fi

if [[ $dry_run == true ]]; then
  manifest
  exit 0
fi

# kubectl, with a clear message when the cluster says no.
kube() {
  local output
  if ! output=$(kubectl "$@" 2>&1); then
    case $output in
      *Forbidden* | *forbidden*) die 6 "kubectl is not allowed to '${*:1:3}': $output" ;;
      *) die 6 "kubectl ${*:1:3} failed: $output" ;;
    esac
  fi
  printf '%s' "$output"
}

# The protocol Istio gives a Service port (Istio's ConvertProtocol): http
# (an HTTP connection manager, no tcp_proxy), tcp (tcp_proxy), sniffed (both
# chains: connections detected as HTTP take the HTTP one), or other (UDP,
# SCTP: not proxied). Arguments: port, name, protocol, appProtocol.
istio_protocol() {
  local number=$1 p=$2 proto=$3 app=$4
  case $proto in TCP | "<no value>" | "") ;; *) echo other; return ;; esac
  [[ $p == "<no value>" ]] && p=""
  if [[ -n $app && $app != "<no value>" ]]; then
    case $app in
      kubernetes.io/h2c | kubernetes.io/ws) echo http; return ;;
      kubernetes.io/wss) echo tcp; return ;;
    esac
    p=$app
  fi
  p=$(printf '%s' "$p" | tr '[:upper:]' '[:lower:]')
  [[ $p == grpc-web* ]] && { echo http; return; }
  case ${p%%-*} in
    http | http2 | http_proxy | grpc) echo http ;;
    tcp | https | tls | mongo | redis | mysql) echo tcp ;;
    udp) echo other ;;
    *) case $number in 25 | 53 | 3306 | 27017) echo tcp ;; *) echo sniffed ;; esac ;;
  esac
}

# The same for a ServiceEntry port, whose protocol is its `protocol` field
# alone, case ignored (Istio's protocol.Parse): no port name, no well-known
# port; an empty or unknown one is sniffed. Argument: protocol.
service_entry_protocol() {
  case $(printf '%s' "$1" | tr '[:upper:]' '[:lower:]') in
    http | http2 | http_proxy | grpc | grpc-web) echo http ;;
    tcp | https | tls | mongo | redis | mysql) echo tcp ;;
    udp) echo other ;;
    *) echo sniffed ;;
  esac
}

# What tap.sh reads with `kubectl get`, as kubectl's go-template and
# jsonpath printers write it: a field that is not set prints "<no value>"
# (go-template). tests/tap_sh.rs holds the same strings, and runs them in a
# real kubectl where there is one.
# shellcheck disable=SC2016 # $k and $v are go-template variables
pod_template='go-template={{range $k, $v := .metadata.labels}}label {{$k}}={{$v}}{{"\n"}}{{end}}{{range .spec.containers}}{{range .ports}}{{if .name}}port {{.name}}={{.containerPort}}{{"\n"}}{{end}}{{end}}{{end}}'
# shellcheck disable=SC2016 # as above
services_template='go-template={{range .items}}{{.metadata.name}}#{{range $k, $v := .spec.selector}}{{$k}}={{$v}},{{end}}#{{range .spec.ports}}{{.port}}|{{.targetPort}}|{{.protocol}}|{{.name}}|{{.appProtocol}};{{end}}{{"\n"}}{{end}}'
all_services_template='go-template={{range .items}}{{.metadata.namespace}}/{{.metadata.name}}#{{range .spec.ports}}{{.port}}|{{.protocol}}|{{.name}}|{{.appProtocol}};{{end}}{{"\n"}}{{end}}'
service_entries_template='go-template={{range .items}}{{.metadata.namespace}}/{{.metadata.name}}#{{range .spec.ports}}{{.number}}|{{.protocol}}|{{.name}};{{end}}{{"\n"}}{{end}}'
pods_jsonpath='jsonpath={range .items[*]}{.metadata.name}={.metadata.uid}{" "}{end}'

# Adds a Service's port to the caller's tcp, sniffed or http list, by the
# protocol Istio gives it, with what decided it.
file_port() {
  local label=$1 number=$2 proto=$3 pname=$4 app=$5 verdict
  verdict=$(istio_protocol "$number" "$pname" "$proto" "$app")
  [[ $pname == "<no value>" ]] && pname=""
  if [[ $app == "<no value>" || -z $app ]]; then app=""; else app=", appProtocol '$app'"; fi
  case $verdict in
    tcp) tcp+=" $label" ;;
    sniffed) sniffed+=" $label (port name '$pname')" ;;
    http) http+=" $label (port name '$pname'$app)" ;;
    *) http+=" $label (protocol $proto)" ;;
  esac
}

# Istio builds an inbound tcp_proxy filter chain for a port only when a
# Service selecting the pod declares it (by its target port) with a protocol
# that is not HTTP: refuse any other port before installing anything.
check_inbound_tcp_port() {
  local pod=$1 info services svc selector ports kv kvs selects entries entry number target proto pname app
  local tcp="" sniffed="" http=""
  info=$(kube get pod -n "$namespace" "$pod" -o "$pod_template")
  services=$(kube get svc -n "$namespace" -o "$services_template")
  # Fields apart by "#" (not a tab: read merges adjacent tabs, and the
  # selector of a Service without one is empty).
  while IFS='#' read -r svc selector ports; do
    # A Service without a selector picks no pods by label.
    [[ -n $svc && -n $selector ]] || continue
    selects=true
    IFS=, read -r -a kvs <<<"$selector"
    for kv in "${kvs[@]}"; do
      [[ -z $kv ]] || grep -qxF "label $kv" <<<"$info" || { selects=false; break; }
    done
    [[ $selects == true ]] || continue
    # A missing field prints as "<no value>", hence the ";" between ports.
    IFS=';' read -r -a entries <<<"$ports"
    for entry in ${entries[@]+"${entries[@]}"}; do
      IFS='|' read -r number target proto pname app <<<"$entry"
      [[ -z $target || $target == "<no value>" ]] && target=$number
      if [[ ! $target =~ ^[0-9]+$ ]]; then
        target=$(awk -v n="port $target=" 'index($0, n) == 1 { print substr($0, length(n) + 1); exit }' <<<"$info")
      fi
      [[ $target == "$tcp_port" ]] || continue
      file_port "$svc" "$number" "$proto" "$pname" "$app"
    done
  done <<<"$services"
  if [[ -n $http ]]; then
    die 9 "port $tcp_port of $pod is not plain TCP to Istio:$http; its connections go through the HTTP connection manager (or are not proxied), where tap_tcp has no tcp_proxy to sit before. Tap HTTP without --tcp (CF apps serve HTTP on 8080)."
  fi
  if [[ -z $tcp$sniffed ]]; then
    die 9 "no Service in $namespace selecting $pod declares port $tcp_port: Istio builds inbound TCP filter chains only for ports a Service declares, so there is nothing to tap. Declare it in a Service (port name tcp or tcp-<suffix>, or appProtocol: tcp)."
  fi
  if [[ -z $tcp ]]; then
    say "port $tcp_port has no protocol Istio knows (Service$sniffed): Istio detects HTTP per connection, and connections it detects as HTTP take the HTTP chain, untapped; name the port tcp-<suffix> to tap them all"
  fi
}

# Istio builds an outbound listener with tcp_proxy for a port when a Service
# (by its port) or a ServiceEntry declares it as TCP (or leaves it to
# sniffing); for a port declared only as HTTP it builds a connection manager,
# and the tap never loads (exit 8 after --timeout). A warning, not a refusal:
# the mesh may know Services this cluster's API does not list (other
# clusters of a multi-cluster mesh), and listing all namespaces may be
# forbidden (then nothing is checked).
check_outbound_tcp_port() {
  local services entries name ports items entry number proto pname app verdict
  local tcp="" sniffed="" http=""
  if ! services=$(kubectl get svc -A -o "$all_services_template" 2>&1); then
    say "cannot list Services in all namespaces (${services%%$'\n'*}): port $outbound_port not checked"
    return 0
  fi
  # ServiceEntries need Istio's CRD and the right to list them.
  entries=$(kubectl get serviceentries.networking.istio.io -A -o "$service_entries_template" 2>/dev/null) || entries=""
  while IFS='#' read -r name ports; do
    [[ -n $name ]] || continue
    IFS=';' read -r -a items <<<"$ports"
    for entry in ${items[@]+"${items[@]}"}; do
      IFS='|' read -r number proto pname app <<<"$entry"
      [[ $number == "$outbound_port" ]] || continue
      file_port "$name" "$number" "$proto" "$pname" "$app"
    done
  done <<<"$services"
  while IFS='#' read -r name ports; do
    [[ -n $name ]] || continue
    IFS=';' read -r -a items <<<"$ports"
    for entry in ${items[@]+"${items[@]}"}; do
      IFS='|' read -r number proto pname <<<"$entry"
      [[ $number == "$outbound_port" ]] || continue
      [[ $proto == "<no value>" ]] && proto=""
      verdict=$(service_entry_protocol "$proto")
      case $verdict in
        tcp) tcp+=" ServiceEntry $name" ;;
        sniffed) sniffed+=" ServiceEntry $name" ;;
        *) http+=" ServiceEntry $name (protocol $proto)" ;;
      esac
    done
  done <<<"$entries"
  [[ -n $tcp ]] && return 0
  if [[ -n $sniffed ]]; then
    say "port $outbound_port has no protocol Istio knows (${sniffed# }): Istio detects HTTP per connection, and connections it detects as HTTP take the HTTP chain, untapped"
  elif [[ -n $http ]]; then
    say "port $outbound_port is not TCP to Istio:$http; outbound listeners for HTTP ports have a connection manager and no tcp_proxy, so the filter will not load and tap.sh will end with exit 8 after --timeout (${timeout}s)"
  else
    say "no Service or ServiceEntry in this cluster declares port $outbound_port: unless the mesh knows it from elsewhere, no outbound listener has it, and tap.sh will end with exit 8 after --timeout (${timeout}s)"
  fi
}

# The app's pods as "name=uid" words.
initial=$(kube get pods -n "$namespace" -l "$label=$guid" -o "$pods_jsonpath")
[[ -n ${initial// /} ]] || die 7 "no pods labelled $label=$guid in namespace $namespace"
if [[ -n $tcp_port ]]; then check_inbound_tcp_port "${initial%%=*}"; fi
if [[ -n $outbound_port ]]; then check_outbound_tcp_port; fi

# The minor version (1.x) of the Envoy in the sidecar of pod $1, from its
# server_info; fails when that cannot be read.
envoy_minor() {
  local info
  info=$(kubectl exec -n "$namespace" "$1" -c istio-proxy -- pilot-agent request GET server_info 2>/dev/null) || return 1
  [[ $info =~ \"version\":\ *\"[^\"/]*/1\.([0-9]+)\. ]] || return 1
  echo "${BASH_REMATCH[1]}"
}

# ECDS as tap.sh uses it needs, in the sidecar's Envoy: 1.28 (Istio 1.20)
# for network filters, which older ones cannot take over ECDS; 1.26 (Istio
# 1.18) for HTTP filters, as older ones let requests in before a Wasm filter
# from ECDS is ready and answer them 500 (envoyproxy/envoy#25946). An app's
# pods run one proxy image (outside an Istio upgrade): the first pod's Envoy
# decides. Older, or when the version cannot be read: the module inline.
if [[ $inline_module == false ]]; then
  if [[ -n $port ]]; then ecds_since=28; else ecds_since=26; fi
  first_pod=${initial%%=*}
  if ! minor=$(envoy_minor "$first_pod"); then
    inline_module=true
    say "could not read the Envoy version of $first_pod (pilot-agent request GET server_info): the module goes inline into each tapped chain, as Envoys before 1.$ecds_since need"
  elif ((minor < ecds_since)); then
    inline_module=true
    say "$first_pod runs Envoy 1.$minor; sending $filter over ECDS needs 1.$ecds_since: the module goes inline into each tapped chain"
  fi
fi

# Per-pod state, in files (bash 3 has no associative arrays): <pod>.uid,
# <pod>.new (created while the tap is on), <pod>.seen (SECONDS when first
# seen), <pod>.base (the counters, tapped and rate_limited, when the filter
# was first seen loaded).
state=$(mktemp -d "${TMPDIR:-/tmp}/tap.sh.XXXXXX")
# installed: false, then "attempted" while kubectl apply runs (an apply that
# failed may still have stored the object), then true.
installed=false
cleanup() {
  local code=$? fpid
  trap - EXIT INT TERM
  # --follow's followers first: none is left behind.
  for fpid in "$state"/*.fpid; do
    if [[ -e $fpid ]]; then follow_stop "$(basename "$fpid" .fpid)"; fi
  done
  if [[ $keep == true ]]; then
    say "left installed (--keep): EnvoyFilter $name; remove with: kubectl delete envoyfilter -n $namespace $name"
  else
    if [[ $installed == true ]]; then
      kubectl delete envoyfilter -n "$namespace" "$name" --ignore-not-found >/dev/null 2>&1 ||
        say "could not delete EnvoyFilter $name: kubectl delete envoyfilter -n $namespace $name"
    elif [[ $installed == attempted ]]; then
      kubectl delete envoyfilter -n "$namespace" "$name" --ignore-not-found >/dev/null 2>&1 || true
    fi
    # The file route leaves a file in each sidecar; the logs route nothing.
    if [[ $installed == true && $records_via == file ]]; then
      local f pod
      for f in "$state"/*.uid; do
        [[ -e $f ]] || continue
        pod=$(basename "$f" .uid)
        kubectl exec -n "$namespace" "$pod" -c istio-proxy -- rm -f "$records_file" >/dev/null 2>&1 ||
          say "could not remove $records_file from $pod"
      done
    fi
  fi
  rm -rf "$state"
  exit "$code"
}
trap cleanup EXIT
trap 'say "interrupted, cleaning up"; exit 130' INT TERM

# Reads the pod list; a pod not seen before (or re-created under the same
# name, with a new uid) is new: its Envoy started during the tap.
listed=false
pod_list=()
refresh_pods() {
  local entries entry pod uid
  if [[ $listed == false ]]; then
    entries=$initial
  elif ! entries=$(kubectl get pods -n "$namespace" -l "$label=$guid" -o "$pods_jsonpath" 2>/dev/null); then
    return 0 # keep the last list through a failed call: the next one may do
  fi
  pod_list=()
  for entry in $entries; do
    pod=${entry%%=*} uid=${entry#*=}
    pod_list+=("$pod")
    if [[ -f $state/$pod.uid && $(<"$state/$pod.uid") == "$uid" ]]; then continue; fi
    if [[ -f $state/$pod.uid ]]; then
      say "pod $pod was re-created: the records of its previous sidecar went with it"
      rm -f "$state/$pod.base" "$state/$pod.late" "$state/$pod.full"
    fi
    printf '%s\n' "$uid" >"$state/$pod.uid"
    printf '%s\n' "$SECONDS" >"$state/$pod.seen"
    if [[ $listed == true ]]; then
      touch "$state/$pod.new"
      say "new pod $pod: it gets the filter from the EnvoyFilter too"
    fi
  done
  listed=true
}

# Sets $tapped to the sidecar's count of records handed to the access log
# (the filter's `tapped` counter) and $limited to its count of matched
# requests (connections) left unrecorded by the rate or the record cap
# (`rate_limited`); fails while the sidecar has not loaded the filter (the
# counters appear when it does). pilot-agent is in every proxy image,
# distroless included.
read_tapped() {
  local stats counters
  if ! stats=$(kubectl exec -n "$namespace" "$1" -c istio-proxy -- pilot-agent request GET 'stats?filter=wasmcustom' 2>&1); then
    case $stats in
      *Forbidden* | *forbidden*) die 6 "kubectl is not allowed to exec pilot-agent in $1 (to read the sidecar's stats): $stats" ;;
    esac
    return 1
  fi
  counters=$(printf '%s\n' "$stats" | awk -v t="wasmcustom.$filter.tapped:" -v r="wasmcustom.$filter.rate_limited:" '
    $1 == t { tapped = $2; found = 1 }
    $1 == r { limited = $2 }
    END { if (!found) exit 1; print tapped, limited + 0 }') || return 1
  read -r tapped limited <<<"$counters"
}

# Whether the sidecar of $1 has loaded the filter; the first time, notes the
# counter it started from: a sidecar that ran an earlier tap keeps that tap's
# count, a new one starts from 0.
loaded() {
  [[ -f $state/$1.base ]] && return 0
  read_tapped "$1" || return 1
  if [[ -f $state/$1.new ]]; then
    echo 0 0 >"$state/$1.base"
    say "the sidecar of $1 loaded $filter"
  else
    printf '%s %s\n' "$tapped" "$limited" >"$state/$1.base"
  fi
}

started=$SECONDS
refresh_pods
say "app $guid: ${#pod_list[@]} pod(s): ${pod_list[*]}"
installed=attempted
# Server-side apply: a client-side apply would copy the object, module and
# all, into its last-applied annotation, and annotations are limited to 256 KiB.
manifest | kube apply --server-side --force-conflicts --field-manager=tap.sh -n "$namespace" -f - >/dev/null
installed=true
if [[ $inline_module == true ]]; then
  say "EnvoyFilter $name applied ($context, $filter inline in each chain)"
else
  say "EnvoyFilter $name applied ($context, $filter sent once to each sidecar over ECDS)"
fi

# Every pod there at the start must load the filter within --timeout; pods
# that appear meanwhile are awaited during the capture.
deadline=$((SECONDS + timeout))
while :; do
  waiting=()
  for pod in ${pod_list[@]+"${pod_list[@]}"}; do
    loaded "$pod" || [[ -f $state/$pod.new ]] || waiting+=("$pod")
  done
  ((${#waiting[@]} == 0)) && break
  if ((SECONDS >= deadline)); then
    hint="kubectl logs ${waiting[0]} -c istio-proxy"
    [[ -n $outbound_port ]] && hint="no outbound listener on port $outbound_port has a tcp_proxy: is the destination a Service or ServiceEntry declaring port $outbound_port as TCP? ($hint)"
    die 8 "the sidecar of ${waiting[*]} did not load $filter within ${timeout}s ($hint)"
  fi
  sleep 1
  refresh_pods
done
if [[ $follow == true ]]; then
  say "all sidecars loaded $filter; following $(if [[ -n $duration ]]; then echo "for ${duration}s"; else echo "until Ctrl-C"; fi)${count:+ or $count records} (at most $cap records per sidecar, $rate a second per worker)"
else
  say "all sidecars loaded $filter; capturing for ${duration}s${count:+ or $count records} (at most $cap records per sidecar, $rate a second per worker)"
fi

# The capture: pods that appear meanwhile are watched until they load. It
# ends early at --count records in all, or once every sidecar has recorded
# its cap (none can record more). --follow has its own loop (below).
end=$((SECONDS + ${duration:-0}))
while [[ $follow == false ]] && ((SECONDS < end)); do
  sleep 1
  refresh_pods
  total=0 open=0
  for pod in ${pod_list[@]+"${pod_list[@]}"}; do
    if ! loaded "$pod"; then
      open=$((open + 1))
      if ((SECONDS - $(<"$state/$pod.seen") >= timeout)) && [[ ! -f $state/$pod.late ]]; then
        touch "$state/$pod.late"
        say "the sidecar of $pod has not loaded $filter ${timeout}s after the pod appeared"
      fi
      continue
    fi
    if read_tapped "$pod"; then
      read -r base _ <"$state/$pod.base"
      total=$((total + tapped - base))
      ((tapped - base >= cap)) || open=$((open + 1))
    else
      open=$((open + 1))
    fi
  done
  if [[ -n $count ]] && ((total >= count)); then break; fi
  if ((open == 0 && ${#pod_list[@]} > 0)); then
    say "every sidecar recorded its cap of $cap records: capture ends early"
    break
  fi
done

# Drops from file $1 a last line without its newline: it is still being
# written, and is read whole next time.
whole_lines() {
  if [[ -s $1 && -n $(tail -c 1 "$1") ]]; then
    sed '$d' "$1" >"$1.whole" && mv "$1.whole" "$1"
  fi
}

# The records in the container log $1 (the logs route): the lines that start
# with this run's tag, tag removed.
tagged() {
  awk -v tag="$tag " 'index($0, tag) == 1 { print substr($0, length(tag) + 1) }' "$1"
}

# Fetches what $1's sidecar has written into $state/$1.raw (one record a
# line); sets $fetch_error and fails when it cannot.
fetch() {
  local pod=$1 src=$state/$1.src err
  : >"$src"
  if [[ $records_via == logs ]]; then
    # --since counts back from the node's clock, so the local clock's offset
    # does not matter; the margin covers the time kubectl takes.
    if ! err=$(kubectl logs -n "$namespace" "$pod" -c istio-proxy --since="$((SECONDS - started + 60))s" 2>&1 >"$src"); then
      fetch_error="kubectl logs failed: $err"
      return 1
    fi
  elif ! err=$(kubectl cp -c istio-proxy "$namespace/$pod:$records_file" "$src" 2>&1); then
    case $err in
      *'"tar"'* | *"tar: not found"* | *"tar: command not found"*)
        fetch_error="kubectl cp needs tar in the istio-proxy container, and this proxy image has none (distroless?): use --records logs"
        fetch_final=true
        return 1 ;;
      *"No such file"*) : >"$src" ;; # nothing written yet
      *) fetch_error="kubectl cp failed: $err"; return 1 ;;
    esac
  fi
  whole_lines "$src"
  if [[ $records_via == logs ]]; then
    tagged "$src" >"$state/$pod.raw"
  else
    mv "$src" "$state/$pod.raw"
  fi
}

# Splits $state/$1.raw into whole JSON objects ($1.ok) and anything else
# ($1.bad), and sets $present to the number of whole ones. A record is one
# JSON object on one line: a line that was cut (by a log rotation, say) has
# an unclosed string or bracket, or is not an object.
classify() {
  local ok=$state/$1.ok bad=$state/$1.bad
  : >"$ok"
  : >"$bad"
  awk -v ok="$ok" -v bad="$bad" '
    function whole(s,   t, n, i, c, depth) {
      if (substr(s, 1, 1) != "{") return 0
      t = s
      gsub(/\\./, "", t)        # escapes, so that no quote in a string is left
      gsub(/"[^"]*"/, "", t)    # strings
      if (index(t, "\"")) return 0
      n = length(t)
      depth = 0
      for (i = 1; i <= n; i++) {
        c = substr(t, i, 1)
        if (c == "{" || c == "[") depth++
        else if (c == "}" || c == "]") {
          depth--
          if (depth < 0 || (depth == 0 && i < n)) return 0
        }
      }
      return depth == 0
    }
    { if (whole($0)) print > ok; else print > bad }
  ' "$state/$1.raw"
  present=$(($(wc -l <"$ok")))
}

# --follow: a `kubectl logs --follow` per pod writes the pod's container log
# into $state/<pod>.stream; this loop, the only writer of standard output,
# reads what each stream has added (whole lines only), picks this run's
# records out of it as the fetch does (tag, whole JSON), and prints them.
# Per pod: <pod>.fpid (the follower, a child of this shell, or none),
# <pod>.offset (bytes of the stream read), <pod>.fuid (the pod uid
# followed), <pod>.got (records printed from the sidecar's current
# container), <pod>.skip (records the current follower repeats, to drop),
# <pod>.sent (records printed from the pod, all told).

# Starts following $1, dropping the first $2 records (a follower that
# replaces one that ended reads the log from the start of the tap again).
follow_start() {
  local pod=$1
  printf '%s\n' "$2" >"$state/$pod.skip"
  printf '0\n' >"$state/$pod.offset"
  cp "$state/$pod.uid" "$state/$pod.fuid"
  : >"$state/$pod.stream"
  # exec: the follower's pid is kubectl's own, which the clean-up stops.
  (exec kubectl ${kubectl_flags[@]+"${kubectl_flags[@]}"} logs -n "$namespace" "$pod" -c istio-proxy --follow --since="$((SECONDS - started + 60))s") \
    >"$state/$pod.stream" 2>"$state/$pod.ferr" &
  printf '%s\n' "$!" >"$state/$pod.fpid"
}

# Stops the follower of $1 (if it still runs) and waits for it.
follow_stop() {
  local f=$state/$1.fpid pid i
  [[ -f $f ]] || return 0
  pid=$(<"$f")
  rm -f "$f"
  kill "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# Prints the records that $1's stream added since the last read, up to
# --count in all, and copies them to --out DIR/<pod>.jsonl when given.
follow_read() {
  local pod=$1 stream=$state/$1.stream chunk=$state/$1.src offset size skip line got sent
  [[ -f $stream && -f $state/$pod.offset ]] || return 0
  offset=$(<"$state/$pod.offset")
  size=$(($(wc -c <"$stream")))
  ((size > offset)) || return 0
  # All the stream has now (it may have grown since its size was read; no
  # pipe into head, whose early exit would fail the pipeline).
  tail -c +"$((offset + 1))" "$stream" >"$chunk"
  whole_lines "$chunk"
  printf '%s\n' "$((offset + $(wc -c <"$chunk")))" >"$state/$pod.offset"
  tagged "$chunk" >"$state/$pod.raw"
  classify "$pod"
  if [[ -s $state/$pod.bad ]]; then
    say "$pod: $(($(wc -l <"$state/$pod.bad"))) line(s) that are not whole JSON records${out:+, kept apart in $out/$pod.invalid}"
    [[ -z $out ]] || cat "$state/$pod.bad" >>"$out/$pod.invalid"
    incomplete=true
  fi
  ((present > 0)) || return 0
  skip=$(<"$state/$pod.skip") got=$(<"$state/$pod.got") sent=$(<"$state/$pod.sent")
  while IFS= read -r line; do
    if ((skip > 0)); then
      skip=$((skip - 1))
      continue
    fi
    if [[ -n $count ]] && ((total >= count)); then break; fi
    printf '%s\n' "$line"
    [[ -z $out ]] || printf '%s\n' "$line" >>"$out/$pod.jsonl"
    total=$((total + 1)) got=$((got + 1)) sent=$((sent + 1))
  done <"$state/$pod.ok"
  printf '%s\n' "$skip" >"$state/$pod.skip"
  printf '%s\n' "$got" >"$state/$pod.got"
  printf '%s\n' "$sent" >"$state/$pod.sent"
  if ((got >= cap)) && [[ ! -f $state/$pod.capped ]]; then
    touch "$state/$pod.capped"
    say "$pod: its sidecar recorded its cap of $cap records${count:+ (--count)}; what matches after that is not recorded"
  fi
}

# Reads the pod list; follows each pod whose sidecar has loaded the filter,
# again when its follower has ended (a container restart, a broken stream)
# and the pod is still there; stops following pods that are gone.
follow_pods() {
  local f pod err skip base
  refresh_pods
  for f in "$state"/*.fpid; do
    [[ -e $f ]] || continue
    pod=$(basename "$f" .fpid)
    [[ " ${pod_list[*]:-} " == *" $pod "* && $(<"$state/$pod.uid") == "$(<"$state/$pod.fuid")" ]] && continue
    follow_read "$pod"
    follow_stop "$pod"
    [[ " ${pod_list[*]:-} " == *" $pod "* ]] || say "pod $pod is gone: no more records from it"
  done
  for pod in ${pod_list[@]+"${pod_list[@]}"}; do
    if [[ -f $state/$pod.fpid ]]; then
      kill -0 "$(<"$state/$pod.fpid")" 2>/dev/null && continue
      follow_read "$pod"
      follow_stop "$pod"
      # Said once per pod and reason: a container that stays down ends
      # each new follower too.
      err="following $pod ended$(head -n 1 "$state/$pod.ferr" 2>/dev/null | sed 's/.*/ (&)/' || true): following it again"
      if [[ ! -f $state/$pod.ended || $(<"$state/$pod.ended") != "$err" ]]; then
        say "$err"
        printf '%s\n' "$err" >"$state/$pod.ended"
      fi
    fi
    if ! loaded "$pod"; then
      if ((SECONDS - $(<"$state/$pod.seen") >= timeout)) && [[ ! -f $state/$pod.late ]]; then
        touch "$state/$pod.late"
        say "the sidecar of $pod has not loaded $filter ${timeout}s after the pod appeared"
      fi
      continue
    fi
    skip=0
    if [[ -f $state/$pod.fuid && $(<"$state/$pod.uid") == "$(<"$state/$pod.fuid")" ]]; then
      # Followed before: the same container's log repeats what was printed,
      # unless the container restarted (its counter then starts again below
      # what was printed), when the log is the new container's.
      read_tapped "$pod" || continue # not running (yet): next time
      read -r base _ <"$state/$pod.base"
      skip=$(<"$state/$pod.got")
      if ((tapped < base + skip)); then
        say "the sidecar of $pod restarted: following its new container"
        echo 0 0 >"$state/$pod.base"
        skip=0
        rm -f "$state/$pod.capped"
      fi
    else
      [[ -f $state/$pod.sent ]] || echo 0 >"$state/$pod.sent"
    fi
    echo "$skip" >"$state/$pod.got"
    follow_start "$pod" "$skip"
  done
}

# Follows until --count records, --duration, or SIGINT or SIGTERM (then a
# clean end, exit 0); the clean-up stops the followers.
follow_records() {
  local stop="" next_list=0 reported="" now pod f sleeper
  total=0 incomplete=false
  [[ -z $out ]] || mkdir -p "$out"
  trap 'stop=interrupted' INT TERM
  [[ -z $duration ]] || end=$((SECONDS + duration))
  while [[ -z $stop ]]; do
    if ((SECONDS >= next_list)); then
      follow_pods
      next_list=$((SECONDS + 3))
    fi
    for f in "$state"/*.offset; do
      [[ -e $f ]] || continue
      follow_read "$(basename "$f" .offset)"
    done
    if [[ -n $count ]] && ((total >= count)); then stop=count; fi
    if [[ -n $duration ]] && ((SECONDS >= end)); then stop=duration; fi
    # What each sidecar has sent so far, when it changed (at most a line a
    # second).
    now=""
    for f in "$state"/*.sent; do
      [[ -e $f ]] || continue
      pod=$(basename "$f" .sent)
      now+="${now:+, }$pod $(<"$f")"
    done
    if [[ -n $now && $now != "$reported" && $SECONDS != "${reported_at:-}" ]] && ((total > 0)); then
      say "records: $now ($total in all)"
      reported=$now reported_at=$SECONDS
    fi
    [[ -n $stop ]] && break
    # In the background, so that a signal ends the wait at once.
    sleep 0.5 &
    sleeper=$!
    wait "$sleeper" 2>/dev/null || kill "$sleeper" 2>/dev/null || true
  done
  trap 'say "interrupted, cleaning up"; exit 130' INT TERM
  case $stop in
    interrupted) say "interrupted: stopping" ;;
    count) say "$count records: stopping" ;;
    duration) say "${duration}s: stopping" ;;
  esac
  if [[ $stop != count ]]; then
    for f in "$state"/*.offset; do
      [[ -e $f ]] || continue
      follow_read "$(basename "$f" .offset)"
    done
  fi
  for f in "$state"/*.fpid; do
    [[ -e $f ]] || continue
    follow_stop "$(basename "$f" .fpid)"
  done
  say "followed $total record(s)${now:+: $now}${out:+; a copy in $out/<pod>.jsonl}"
  [[ $incomplete == false ]] || die 10 "records are incomplete (see above)"
  exit 0
}

if [[ $follow == true ]]; then follow_records; fi

if [[ -z $out ]]; then
  out="./tap-$guid-$(date +%Y%m%d-%H%M%S)"
fi
mkdir -p "$out"

# Envoy writes access logs from a buffer on a timer; reopen_logs makes it
# write them out, but asynchronously: poll until every record the sidecar
# counted has arrived, or --timeout.
refresh_pods
fetching=()
for pod in ${pod_list[@]+"${pod_list[@]}"}; do
  if ! loaded "$pod"; then
    say "the sidecar of $pod never loaded $filter: no records from it"
    continue
  fi
  kubectl exec -n "$namespace" "$pod" -c istio-proxy -- pilot-agent request POST reopen_logs >/dev/null 2>&1 || true
  read -r base lbase <"$state/$pod.base"
  if ! read_tapped "$pod"; then
    tapped=$base limited=$lbase
  elif ((tapped < base)); then
    say "the sidecar of $pod restarted during the tap: the records of its previous run are not fetched (kubectl logs --previous)"
    base=0 lbase=0
  fi
  printf '%s\n' "$((tapped - base))" >"$state/$pod.expected"
  # What the caps kept out: the filter counts it, records nothing of it.
  if ((tapped - base >= cap)); then
    say "$pod: its sidecar recorded its cap of $cap records${count:+ (--count)}; what matched after that was not recorded"
  fi
  if ((limited > lbase)); then
    say "$pod: $((limited - lbase)) matched $([[ -n $port ]] && echo connection || echo request)(s) not recorded: over --rate ($rate a second per worker) or the cap of $cap records"
  fi
  fetching+=("$pod")
done
incomplete=false
if ((${#fetching[@]} > 0)); then
  deadline=$((SECONDS + timeout))
  pending=("${fetching[@]}")
  while :; do
    still=()
    for pod in "${pending[@]}"; do
      fetch_error="" fetch_final=false
      if fetch "$pod"; then
        rm -f "$state/$pod.error"
        classify "$pod"
        ((present >= $(<"$state/$pod.expected"))) && continue
      else
        printf '%s\n' "$fetch_error" >"$state/$pod.error"
        [[ $fetch_final == true ]] && continue # no use trying again
      fi
      still+=("$pod")
    done
    ((${#still[@]} == 0 || SECONDS >= deadline)) && break
    pending=("${still[@]}")
    sleep 1
  done
  for pod in "${fetching[@]}"; do
    expected=$(<"$state/$pod.expected")
    if [[ -f $state/$pod.error ]]; then
      say "no records from $pod: $(<"$state/$pod.error")"
      ((expected == 0)) || incomplete=true
      continue
    fi
    cp "$state/$pod.ok" "$out/$pod.jsonl"
    present=$(($(wc -l <"$out/$pod.jsonl")))
    say "$pod: $present record(s)"
    if ((present < expected)); then
      say "$pod: only $present of the $expected records its sidecar counted arrived within ${timeout}s"
      incomplete=true
    fi
    if [[ -s $state/$pod.bad ]]; then
      cp "$state/$pod.bad" "$out/$pod.invalid"
      say "$pod: $(($(wc -l <"$out/$pod.invalid"))) line(s) that are not whole JSON records, kept apart in $out/$pod.invalid"
      incomplete=true
    fi
  done
fi
for f in "$state"/*.uid; do
  pod=$(basename "$f" .uid)
  [[ " ${pod_list[*]:-} " == *" $pod "* ]] || say "pod $pod is gone: its records went with it"
done

case $format in
  jsonl) say "records in $out/*.jsonl" ;;
  har) tap har "$out"/*.jsonl >"$out/records.har" && say "HAR in $out/records.har" ;;
  pcap) tap pcap --out "$out/records.pcap" "$out"/*.jsonl && say "pcap in $out/records.pcap" ;;
esac
[[ $incomplete == false ]] || die 10 "records are incomplete (see above)"
