#!/usr/bin/env bash
# tap.sh: tap one Cloud Foundry app on Kubernetes (cf-for-k8s) and fetch what
# it said. Ships tap_http.wasm (or tap_tcp.wasm) into the app's sidecars,
# applies an EnvoyFilter named <guid>-tap, waits until every sidecar has
# loaded it, captures for a while, copies the records out of every pod, and
# removes everything it created, however it exits.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: tap.sh [options] <app-name>
  --guid GUID             the app's GUID (instead of `cf app <name> --guid`)
  --namespace NS          where the app's pods run (default: cf-workloads)
  --duration SECONDS      how long to capture (default: 60)
  --count N               stop after N records
  --tcp PORT              tap raw TCP on PORT (tap_tcp) instead of HTTP
  --method M              only requests with method M
  --path PREFIX           only requests whose path starts with PREFIX
  --header NAME[=VALUE]   only requests with this header (and value)
  --status N|MIN-MAX      only responses with this status (or range)
  --max-body BYTES        bytes kept per body or direction (default: 65536)
  --out DIR               where records go (default: ./tap-<guid>-<time>)
  --format jsonl|har|pcap records as JSON lines, HAR or pcap (har and pcap need
                          the `tap` tool on PATH: make tap)
  --wasm-dir DIR          where tap_http.wasm and tap_tcp.wasm are (default:
                          the repository's dist/)
  --timeout SECONDS       how long sidecars may take to load the filter (default: 60)
  --dry-run               print the EnvoyFilter, apply nothing
  --keep                  leave the tap installed when done
  -h, --help              this text
Needs KUBECONFIG, kubectl, and (without --guid) cf logged in.
EOF
}

die() {
  local code=$1
  shift
  echo "tap.sh: $*" >&2
  exit "$code"
}

say() { echo "tap.sh: $*" >&2; }

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

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
app="" guid="" namespace="cf-workloads" duration=60 count="" tcp_port=""
method="" path_prefix="" header="" status="" max_body=65536 out="" format="jsonl"
wasm_dir="$script_dir/../dist" timeout=60 dry_run=false keep=false

need_value() { [[ $# -ge 2 && -n $2 ]] || die 2 "$1 needs a value"; }
while [[ $# -gt 0 ]]; do
  case $1 in
    --guid) need_value "$@"; guid=$2; shift 2 ;;
    --namespace) need_value "$@"; namespace=$2; shift 2 ;;
    --duration) need_value "$@"; duration=$2; shift 2 ;;
    --count) need_value "$@"; count=$2; shift 2 ;;
    --tcp) need_value "$@"; tcp_port=$2; shift 2 ;;
    --method) need_value "$@"; method=$2; shift 2 ;;
    --path) need_value "$@"; path_prefix=$2; shift 2 ;;
    --header) need_value "$@"; header=$2; shift 2 ;;
    --status) need_value "$@"; status=$2; shift 2 ;;
    --max-body) need_value "$@"; max_body=$2; shift 2 ;;
    --out) need_value "$@"; out=$2; shift 2 ;;
    --format) need_value "$@"; format=$2; shift 2 ;;
    --wasm-dir) need_value "$@"; wasm_dir=$2; shift 2 ;;
    --timeout) need_value "$@"; timeout=$2; shift 2 ;;
    --dry-run) dry_run=true; shift ;;
    --keep) keep=true; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) usage >&2; die 2 "unknown option $1" ;;
    *) [[ -z $app ]] || die 2 "one app at a time ($app, $1)"; app=$1; shift ;;
  esac
done

[[ -n $app || -n $guid ]] || { usage >&2; die 2 "name the app (or give --guid)"; }
for n in "$duration" "$max_body" "$timeout" ${count:+"$count"} ${tcp_port:+"$tcp_port"}; do
  [[ $n =~ ^[0-9]+$ ]] || die 2 "'$n' is not a number"
done
case $format in jsonl | har | pcap) ;; *) die 2 "--format is jsonl, har or pcap, not '$format'" ;; esac
if [[ $format != jsonl ]] && ! command -v tap >/dev/null; then
  die 2 "--format $format needs the tap tool on PATH (make tap; cargo install --path tools/tap)"
fi
if [[ -n $tcp_port && -n $method$path_prefix$header$status ]]; then
  die 2 "--method, --path, --header and --status apply to HTTP, not to --tcp"
fi

[[ -n ${KUBECONFIG:-} ]] || die 3 "KUBECONFIG is not set: point it at the cluster's kubeconfig"

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
[[ $guid =~ ^[0-9a-fA-F-]+$ ]] || die 5 "'$guid' is not an app GUID"

name="$guid-tap"
label="cloudfoundry.org/app_guid"
if [[ -n $tcp_port ]]; then
  filter=tap_tcp
  records="tap-$guid-tcp.jsonl"
else
  filter=tap_http
  records="tap-$guid.jsonl"
fi
proxy_dir=/etc/istio/proxy
wasm="$wasm_dir/$filter.wasm"
[[ -f $wasm || $dry_run == true ]] || die 2 "$wasm is missing: run make build (or give --wasm-dir)"

# The plugin configuration (JSON).
budget=""
[[ -n $count ]] && budget=", \"max_records\": $count"
if [[ -n $tcp_port ]]; then
  plugin="{\"match\": {\"destination_port\": $tcp_port}, \"max_read_bytes\": $max_body, \"max_write_bytes\": $max_body$budget}"
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
  plugin="{\"match\": $match, \"max_request_bytes\": $max_body, \"max_response_bytes\": $max_body, \"record_stream_info\": true$budget}"
fi
plugin_yaml=${plugin//\'/\'\'}

# The EnvoyFilter: the tap before the router (HTTP) or tcp_proxy (TCP) on
# inbound, and the file access log that writes its records.
if [[ -n $tcp_port ]]; then
  apply_to=NETWORK_FILTER
  anchor=envoy.filters.network.tcp_proxy
  listener_match="        portNumber: $tcp_port
        filterChain:
          filter:
            name: $anchor"
  filter_match=$listener_match
  wasm_type=type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm
  log_owner_type=type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
else
  apply_to=HTTP_FILTER
  listener_match="        filterChain:
          filter:
            name: envoy.filters.network.http_connection_manager"
  filter_match="$listener_match
            subFilter:
              name: envoy.filters.http.router"
  wasm_type=type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
  log_owner_type=type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
fi

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
  configPatches:
  - applyTo: $apply_to
    match:
      context: SIDECAR_INBOUND
      listener:
$filter_match
    patch:
      operation: INSERT_BEFORE
      value:
        name: $filter
        typed_config:
          '@type': $wasm_type
          config:
            name: $filter
            root_id: $filter
            vm_config:
              vm_id: $filter
              runtime: envoy.wasm.runtime.v8
              code:
                local:
                  filename: $proxy_dir/$filter.wasm
            configuration:
              '@type': type.googleapis.com/google.protobuf.StringValue
              value: '$plugin_yaml'
            fail_open: true
  - applyTo: NETWORK_FILTER
    match:
      context: SIDECAR_INBOUND
      listener:
$listener_match
    patch:
      operation: MERGE
      value:
        typed_config:
          '@type': $log_owner_type
$(access_log)
EOF
}

access_log() {
  cat <<EOF
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
              path: $proxy_dir/$records
              log_format:
                text_format_source:
                  inline_string: "%FILTER_STATE(wasm.tap_trace:PLAIN)%\n"
EOF
}

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

pods=$(kube get pods -n "$namespace" -l "$label=$guid" -o 'jsonpath={.items[*].metadata.name}')
read -r -a pod_list <<<"$pods"
[[ ${#pod_list[@]} -gt 0 ]] || die 7 "no pods labelled $label=$guid in namespace $namespace"
say "app $guid: ${#pod_list[@]} pod(s): ${pod_list[*]}"

installed=false
shipped=()
cleanup() {
  local code=$?
  trap - EXIT INT TERM
  if [[ $keep == true ]]; then
    say "left installed (--keep): EnvoyFilter $name; remove with: kubectl delete envoyfilter -n $namespace $name"
    exit "$code"
  fi
  if [[ $installed == true ]]; then
    kubectl delete envoyfilter -n "$namespace" "$name" --ignore-not-found >/dev/null 2>&1 ||
      say "could not delete EnvoyFilter $name: kubectl delete envoyfilter -n $namespace $name"
  fi
  local pod
  for pod in "${shipped[@]}"; do
    kubectl exec -n "$namespace" "$pod" -c istio-proxy -- rm -f "$proxy_dir/$filter.wasm" "$proxy_dir/$records" >/dev/null 2>&1 ||
      say "could not remove the tap files from $pod"
  done
  exit "$code"
}
trap cleanup EXIT
trap 'say "interrupted, cleaning up"; exit 130' INT TERM

for pod in "${pod_list[@]}"; do
  shipped+=("$pod")
  kube cp "$wasm" "$namespace/$pod:$proxy_dir/$filter.wasm" -c istio-proxy >/dev/null
done
manifest | kube apply -f - >/dev/null
installed=true
say "EnvoyFilter $name applied"

# A sidecar has loaded the filter once its counters exist.
tapped_in() {
  kubectl exec -n "$namespace" "$1" -c istio-proxy -- pilot-agent request GET stats 2>/dev/null |
    awk -v stat="wasmcustom.$filter.tapped:" '$1 == stat { print $2; found = 1 } END { if (!found) exit 1 }'
}
deadline=$((SECONDS + timeout))
for pod in "${pod_list[@]}"; do
  until tapped_in "$pod" >/dev/null; do
    ((SECONDS < deadline)) || die 8 "the sidecar of $pod did not load $filter within ${timeout}s (kubectl logs $pod -c istio-proxy)"
    sleep 1
  done
done
say "all sidecars loaded $filter; capturing for ${duration}s${count:+ or $count records}"

end=$((SECONDS + duration))
while ((SECONDS < end)); do
  if [[ -n $count ]]; then
    total=0
    for pod in "${pod_list[@]}"; do
      n=$(tapped_in "$pod" || echo 0)
      total=$((total + n))
    done
    ((total >= count)) && break
  fi
  sleep 1
done

if [[ -z $out ]]; then
  out="./tap-$guid-$(date +%Y%m%d-%H%M%S)"
fi
mkdir -p "$out"
for pod in "${pod_list[@]}"; do
  # Envoy writes access logs on a timer; reopening flushes them.
  kubectl exec -n "$namespace" "$pod" -c istio-proxy -- pilot-agent request POST reopen_logs >/dev/null 2>&1 || true
  kubectl cp -c istio-proxy "$namespace/$pod:$proxy_dir/$records" "$out/$pod.jsonl" >/dev/null 2>&1 ||
    say "no records from $pod"
done
case $format in
  jsonl) say "records in $out/*.jsonl" ;;
  har) tap har "$out"/*.jsonl >"$out/records.har" && say "HAR in $out/records.har" ;;
  pcap) tap pcap --out "$out/records.pcap" "$out"/*.jsonl && say "pcap in $out/records.pcap" ;;
esac
