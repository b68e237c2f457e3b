//! The configurations the benchmark measures: each filter, its native
//! counterpart, the chain and the suite, the probes, and for every request
//! shape bare Envoy and the no-op filter as baselines.

use crate::host_calls::{self, Call};
use filter_registry::Kind;
use harness::bootstrap::{wasm_filter, wasm_fixture};
use harness::tap::{native_tap, record_access_log};
use harness::PEER_METADATA_SEED;
use harness::{Bootstrap, Envoy};
use serde_json::{json, Value};

/// One measured configuration.
pub struct Setup {
    pub name: String,
    /// What it is compared with: `bare`, and its native counterpart if any.
    pub native: Option<String>,
    pub filters: Vec<Value>,
    pub route_extra: Value,
    pub hcm_extra: Value,
    pub method: &'static str,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub rate: u32,
}

fn setup(name: &str, filters: Vec<Value>) -> Setup {
    Setup {
        name: name.into(),
        native: None,
        filters,
        route_extra: json!({}),
        hcm_extra: json!({}),
        method: "GET",
        path: "/".into(),
        headers: vec![],
        rate: rate(),
    }
}

pub fn env_u32(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rate() -> u32 {
    env_u32("BENCH_RATE", 2000)
}

/// A metadata header of about 6 KB: the seed's keys and 120 more labels.
fn large_metadata() -> Result<String, String> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut bytes = b64
        .decode(PEER_METADATA_SEED)
        .map_err(|e| format!("PEER_METADATA_SEED: {e}"))?;
    let field = |tag: u8, data: &[u8]| -> Vec<u8> {
        let mut out = vec![tag];
        let mut n = data.len();
        while n >= 0x80 {
            out.push((n as u8 & 0x7f) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
        out.extend_from_slice(data);
        out
    };
    let mut labels = Vec::new();
    for i in 0..120 {
        let mut entry = field(0x0a, format!("example.com/label-{i}").as_bytes());
        entry.extend(field(0x12, &field(0x1a, format!("value-{i}").as_bytes())));
        labels.extend(field(0x0a, &entry));
    }
    let mut entry = field(0x0a, b"EXTRA_LABELS");
    entry.extend(field(0x12, &field(0x2a, &labels)));
    bytes.extend(field(0x0a, &entry));
    Ok(b64.encode(bytes))
}

/// l7_policy's rules and RBAC's policies for the same `n` rules, and the
/// path of a request that matches the last GET rule.
pub struct Rules {
    pub ours: Value,
    pub rbac: Value,
    pub path: String,
}

/// `n` rules and the request that matches the last GET rule; RBAC the same.
pub fn rules(n: usize) -> Rules {
    let mut ours = Vec::new();
    let mut policies = serde_json::Map::new();
    let mut last_get = 0;
    for i in 0..n {
        let method = match i % 4 {
            0 => "GET",
            1 => "POST",
            2 => "PUT",
            _ => "DELETE",
        };
        if method == "GET" {
            last_get = i;
        }
        let path = format!("/api/v1/service{i}/[a-z0-9]+");
        ours.push(json!({"method": method, "path": path}));
        policies.insert(
            format!("rule-{i}"),
            json!({"permissions": [{"and_rules": {"rules": [
                {"header": {"name": ":method", "string_match": {"exact": method}}},
                {"header": {"name": ":path", "string_match": {"safe_regex": {"regex": path}}}}
            ]}}], "principals": [{"any": true}]}),
        );
    }
    let rbac = json!({"name": "envoy.filters.http.rbac", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
        "rules": {"action": "ALLOW", "policies": policies}}});
    Rules {
        ours: json!({"rules": ours}),
        rbac,
        path: format!("/api/v1/service{last_get}/abc123"),
    }
}

/// The four HTTP filters' configurations as the chain and the suite run
/// them, in the shipped manifests' order, which is also the suite's order.
pub fn suite_parts() -> [(&'static str, Value); 4] {
    [
        (
            "tap_http",
            json!({"match": {"request_header": {"name": "x-tap-me", "present": true}}}),
        ),
        ("peer_metadata", json!({})),
        ("l7_policy", rules(10).ours),
        ("cf_headers", identity()),
    ]
}

pub fn identity() -> Value {
    json!({"app_guid": "eb1534db-8765-430d-adfe-77fd1a8e45a9", "process_type": "web",
           "org_guid": "04a73274-9280-4b99-9abc-e44e3ff4a74e", "space_guid": "8d18b884-729c-4239-9b88-39c4964a3f86"})
}

pub fn setups() -> Result<Vec<Setup>, String> {
    let mut all = vec![setup("bare", vec![])];
    all.push(setup("noop wasm", vec![wasm_fixture("noop", &json!({}))]));
    // The price of each kind of host call a filter makes, on top of no-op.
    for (name, work) in [
        ("probe: 50 header-map reads", json!({"read_map": 50})),
        ("probe: 50 header writes", json!({"set_header": 50})),
        ("probe: 50 header appends", json!({"add_header": 50})),
        ("probe: 50 filter-state writes", json!({"set_property": 50})),
        (
            "probe: 50 missing property reads",
            json!({"get_property": 50}),
        ),
        (
            "probe: 1 header-map read, 50 header-map writes",
            json!({"set_map": 50}),
        ),
        ("probe: 50 counter increments", json!({"increment": 50})),
    ] {
        all.push(setup(name, vec![wasm_fixture("noop", &work)]));
    }
    let mut cf = setup("cf_headers", vec![wasm_filter("cf_headers", &identity())]);
    cf.native = Some("native request_headers_to_add".into());
    all.push(cf);
    let mut headers = setup("native request_headers_to_add", vec![]);
    headers.route_extra = json!({"request_headers_to_add": identity().as_object().into_iter().flatten().map(|(k, v)| json!({
        "header": {"key": format!("cf-{}", k.replace('_', "-")), "value": v}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"})).collect::<Vec<_>>()});
    all.push(headers);
    for (label, header) in [
        ("small", PEER_METADATA_SEED.to_string()),
        ("large", large_metadata()?),
    ] {
        let mut peer = setup(
            &format!("peer_metadata ({label} header)"),
            vec![wasm_filter(
                "peer_metadata",
                &json!({"max_header_bytes": 16384, "max_keys": 1000}),
            )],
        );
        peer.headers = vec![("x-envoy-peer-metadata".into(), header)];
        all.push(peer);
    }
    // Where peer_metadata's time goes: without filter state, and with no
    // metadata to decode (only the output headers are cleaned and written).
    let mut no_state = setup(
        "peer_metadata (small header, no filter state)",
        vec![wasm_filter(
            "peer_metadata",
            &json!({"filter_state": false}),
        )],
    );
    no_state.headers = vec![(
        "x-envoy-peer-metadata".into(),
        PEER_METADATA_SEED.to_string(),
    )];
    all.push(no_state);
    all.push(setup(
        "peer_metadata (no header)",
        vec![wasm_filter("peer_metadata", &json!({}))],
    ));
    for n in [1, 10, 100, 1000] {
        let Rules { ours, rbac, path } = rules(n);
        let mut policy = setup(
            &format!("l7_policy {n} rules"),
            vec![wasm_filter("l7_policy", &ours)],
        );
        policy.path = path.clone();
        policy.native = Some(format!("native RBAC {n} rules"));
        all.push(policy);
        let mut native = setup(&format!("native RBAC {n} rules"), vec![rbac]);
        native.path = path;
        all.push(native);
    }
    for size in [0usize, 1024, 65536, 1 << 20] {
        let suffix = if size == 0 {
            String::new()
        } else {
            format!(" {} body", human(size))
        };
        let path = if size == 0 {
            "/".to_string()
        } else {
            format!("/bytes/{size}")
        };
        let rate = if size >= 1 << 20 {
            100
        } else if size >= 65536 {
            500
        } else {
            rate()
        };
        if size > 0 {
            let mut bare = setup(&format!("bare{suffix}"), vec![]);
            bare.path = path.clone();
            bare.rate = rate;
            all.push(bare);
        }
        // Bodies kept as the native tap keeps them (tap_http keeps none
        // unless asked): the same work on both sides.
        let mut tap = setup(
            &format!("tap_http{suffix}"),
            vec![wasm_filter(
                "tap_http",
                &json!({"max_request_bytes": 65536, "max_response_bytes": 65536}),
            )],
        );
        tap.hcm_extra = record_access_log("records.jsonl");
        tap.native = Some(format!("native tap{suffix}"));
        tap.path = path.clone();
        tap.rate = rate;
        all.push(tap);
        let mut native = setup(
            &format!("native tap{suffix}"),
            vec![native_tap(65536, 65536)],
        );
        native.path = path;
        native.rate = rate;
        all.push(native);
    }
    // What the shipped manifests and tap.sh add to each record: the stream's
    // times and status details, and the client's address.
    let mut timed = setup(
        "tap_http with stream info and addresses",
        vec![wasm_filter(
            "tap_http",
            &json!({"max_request_bytes": 65536, "max_response_bytes": 65536,
                    "record_stream_info": true, "record_downstream_connection": true}),
        )],
    );
    timed.hcm_extra = record_access_log("records.jsonl");
    timed.native = Some("native tap".into());
    all.push(timed);
    let parts = suite_parts();
    let chain = chain_request();
    let chained = |name: &str, filters: Vec<Value>| {
        let mut s = setup(name, filters);
        s.hcm_extra = record_access_log("records.jsonl");
        s.headers = chain.headers.clone();
        s.path = chain.path.clone();
        s
    };
    all.push(chained(
        "all HTTP filters chained",
        parts.iter().map(|(n, c)| wasm_filter(n, c)).collect(),
    ));
    // The same four configurations, unchanged, in one module and context;
    // then each part alone in the suite, to show what each part costs there.
    let suite = |name: &str, parts: &[(&str, Value)]| {
        let config: serde_json::Map<String, Value> = parts
            .iter()
            .map(|(n, c)| (n.to_string(), c.clone()))
            .collect();
        chained(name, vec![wasm_filter("suite", &Value::Object(config))])
    };
    all.push(suite("suite.wasm: all HTTP filters", &parts));
    // What the chain's outputs cost: the same, with peer_metadata publishing
    // headers only (its documented `filter_state: false`).
    let mut headers_only = parts.clone();
    headers_only[1].1 = json!({"filter_state": false});
    all.push(suite(
        "suite.wasm: all HTTP filters, peer_metadata without filter state",
        &headers_only,
    ));
    for part in &parts {
        all.push(suite(
            &format!("suite.wasm: {} only", part.0),
            std::slice::from_ref(part),
        ));
    }
    // The floor under any module with these outputs: the no-op filter making
    // only the host calls the suite makes for this request, with no work of
    // its own. Then with fewer outputs, as a change of the filters' contracts
    // would have it.
    let calls =
        suite_host_calls().map_err(|e| format!("cannot count the suite's host calls: {e}"))?;
    for (name, work) in [
        (
            "probe: the suite's host calls, nothing else",
            calls.probe(true, true),
        ),
        (
            "probe: the suite's host calls without peer filter state",
            calls.probe(true, false),
        ),
        (
            "probe: the suite's host calls without peer outputs",
            calls.probe(false, false),
        ),
    ] {
        all.push(chained(name, vec![wasm_fixture("noop", &work)]));
    }
    // Every other HTTP filter of the list, with the example configuration
    // it declares.
    for filter in filter_registry::filters().map_err(|e| e.to_string())? {
        if filter.kind == Kind::Http && !all.iter().any(|s| s.name == filter.name) {
            all.push(setup(
                &filter.name,
                vec![wasm_filter(&filter.name, &filter.example)],
            ));
        }
    }
    add_baselines(&mut all);
    Ok(all)
}

/// The longest path Envoy takes with its default 60 KiB limit on request
/// headers (`max_request_headers_kb`), leaving room for the others.
pub const LONG_PATH: usize = 60_000;

/// The simple rule the regex rows are compared with.
pub const SIMPLE_RULE: &str = "l7_policy simple rule, 60 KB path";

/// The costliest `.*` then a literal the default limits accept: every
/// state of the literal may be active at every char of the path.
pub fn worst_accepted_regex() -> String {
    costliest(filter_common::predicate::RegexLimits::DEFAULT.cost)
}

/// `.*` then the longest literal of `a` whose cost is at most `cost`.
pub fn costliest(cost: u32) -> String {
    let mut p = String::from("/api/.*");
    while filter_common::predicate::re2::check(&format!("{p}a"), false)
        .is_ok_and(|s| s.cost <= cost)
    {
        p.push('a');
    }
    p
}

/// The largest query rule `tap policy suggest` writes: two-char names
/// written twice, listed while the rule stays within l7_policy's 1024-char
/// regex limit and its default limits (suggest writes any query past that).
pub fn largest_suggested_query() -> String {
    let letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let query = |names: &[String]| {
        let parameter = format!("(?:{})(?:=[^&]*)?", names.join("|"));
        format!("/api/v1/items(?:\\?{parameter}(?:&{parameter})*)?")
    };
    let limits = filter_common::predicate::RegexLimits::DEFAULT;
    let within = |p: &str| {
        p.len() <= filter_common::predicate::MAX_REGEX_LEN
            && filter_common::predicate::re2::check(p, false)
                .is_ok_and(|s| s.cost <= limits.cost && s.size <= limits.program_size)
    };
    let mut names: Vec<String> = Vec::new();
    for a in letters.chars() {
        for b in letters.chars() {
            names.push(format!("{a}{b}"));
            if !within(&query(&names)) {
                names.pop();
                return query(&names);
            }
        }
    }
    query(&names)
}

/// What one rule costs Envoy on the longest path: the simple rule (a
/// literal prefix and a class, checked without the regex engine), a simple
/// regex the engine runs over the whole path, the worst regex the default
/// limits accept and the largest query rule `tap policy suggest` writes,
/// each on a path that keeps it running to the end; and bare Envoy on each
/// path. `bench --only regex` (and `make bench`) measures them.
pub fn regex_setups() -> Vec<Setup> {
    let fill = |prefix: &str, unit: &str| {
        let mut p = prefix.to_string();
        while p.len() + unit.len() <= LONG_PATH {
            p.push_str(unit);
        }
        p
    };
    let digits = fill("/api/v1/users/", "0");
    let letters = fill("/api/", "a");
    // A rate below what one worker serves: a request still running when the
    // window ends would count its CPU and not itself.
    let mut rows: Vec<(String, String, String, u32)> = vec![
        (
            SIMPLE_RULE.into(),
            "/api/v1/users/[0-9]+".into(),
            digits.clone(),
            100,
        ),
        (
            "l7_policy simple regex, 60 KB path".into(),
            "/api/v1/users/[0-9]+(?:\\?.*)?".into(),
            digits,
            20,
        ),
    ];
    // `.*` then a literal, at other limits: what a lower or a higher
    // max_regex_cost bounds.
    for cost in [16, 64, 128, 256] {
        rows.push((
            format!("l7_policy regex of cost {cost}, 60 KB path"),
            costliest(cost),
            letters.clone(),
            if cost > 64 { 1 } else { 4 },
        ));
    }
    rows.push((
        "l7_policy worst accepted regex, 60 KB path".into(),
        worst_accepted_regex(),
        letters,
        4,
    ));
    rows.push((
        "l7_policy largest suggested query rule, 60 KB path".into(),
        largest_suggested_query(),
        fill("/api/v1/items?aa", "&aa"),
        3,
    ));
    let mut all = Vec::new();
    for (name, rule, path, rate) in rows {
        // The rows above the default limit raise it (a limit costs nothing
        // per request: it is checked when the rules load).
        let ours = json!({"rules": [{"method": "GET", "path": rule}], "max_regex_cost": 256});
        let mut policy = setup(&name, vec![wasm_filter("l7_policy", &ours)]);
        policy.path = path.clone();
        policy.rate = rate;
        if name != SIMPLE_RULE {
            policy.native = Some(SIMPLE_RULE.into());
        }
        all.push(policy);
        // Bare Envoy once per request shape.
        if !all
            .iter()
            .any(|o: &Setup| is_bare(o) && o.path == path && o.rate == rate)
        {
            let mut bare = setup(&format!("bare, request of {name}"), vec![]);
            bare.path = path;
            bare.rate = rate;
            all.push(bare);
        }
    }
    all
}

/// The host calls `suite.wasm` makes for the chain's request (Istio's
/// metadata header, no client certificate, the path of the last GET rule),
/// split by the outputs they serve.
pub struct SuiteHostCalls {
    pub header_map_reads: usize,
    pub header_removals: usize,
    /// The `x-peer-*` headers peer_metadata appends.
    pub peer_header_appends: usize,
    /// The other parts' appends (the `CF-*` headers).
    pub other_header_appends: usize,
    /// The filter-state entries peer_metadata writes (none with its
    /// `filter_state: false`).
    pub peer_filter_state_writes: usize,
    pub other_filter_state_writes: usize,
    pub principal_reads: usize,
    pub counter_increments: usize,
}

/// The chain's request: Istio's metadata header, the path of the last GET rule.
pub fn chain_request() -> host_calls::Request {
    host_calls::Request {
        method: "GET".into(),
        path: rules(10).path,
        headers: vec![(
            "x-envoy-peer-metadata".into(),
            PEER_METADATA_SEED.to_string(),
        )],
    }
}

/// The suite's host calls for the chain's request, counted by driving the
/// suite through the recording host as Envoy drives it (the same count
/// `tests/host_calls.rs` holds to a budget). The probe rows make exactly
/// these calls.
pub fn suite_host_calls() -> Result<SuiteHostCalls, String> {
    let parts = suite_parts();
    let request = chain_request();
    let all = host_calls::suite(&parts, &request)?;
    let mut headers_only = parts.clone();
    headers_only[1].1 = json!({"filter_state": false});
    let headers_only = host_calls::suite(&headers_only, &request)?;
    let without_peer: Vec<(&str, Value)> = parts
        .iter()
        .filter(|(name, _)| *name != "peer_metadata")
        .cloned()
        .collect();
    let without_peer = host_calls::suite(&without_peer, &request)?;
    let (appends, states) = (Call::AddHeaderMapValue, Call::SetProperty);
    let uncovered: Vec<&Call> = all.calls.keys().filter(|c| !PROBED.contains(c)).collect();
    if !uncovered.is_empty() {
        return Err(format!(
            "the suite makes host calls the no-op probe cannot make: {uncovered:?}"
        ));
    }
    if all.property_reads.iter().any(|p| p != PRINCIPAL) {
        return Err(format!(
            "the suite reads properties other than the principal: {:?}",
            all.property_reads
        ));
    }
    Ok(SuiteHostCalls {
        header_map_reads: all.count(Call::GetHeaderMapPairs),
        header_removals: all.count(Call::RemoveHeaderMapValue),
        peer_header_appends: all.count(appends) - without_peer.count(appends),
        other_header_appends: without_peer.count(appends),
        peer_filter_state_writes: all.count(states) - headers_only.count(states),
        other_filter_state_writes: headers_only.count(states),
        principal_reads: all.count(Call::GetProperty),
        counter_increments: all.count(Call::IncrementMetric),
    })
}

impl SuiteHostCalls {
    /// The no-op fixture's work making these calls, with or without the peer
    /// headers and the peer filter-state entries.
    fn probe(&self, peer_headers: bool, peer_state: bool) -> Value {
        let appends = self.other_header_appends
            + if peer_headers {
                self.peer_header_appends
            } else {
                0
            };
        let states = self.other_filter_state_writes
            + if peer_state {
                self.peer_filter_state_writes
            } else {
                0
            };
        json!({"raw_map": self.header_map_reads, "remove_header": self.header_removals,
               "add_header": appends, "set_property": states,
               "read_principal": self.principal_reads, "increment": self.counter_increments})
    }
}

/// The host calls the no-op probe makes (see `probe`).
const PROBED: [Call; 6] = [
    Call::GetHeaderMapPairs,
    Call::RemoveHeaderMapValue,
    Call::AddHeaderMapValue,
    Call::SetProperty,
    Call::GetProperty,
    Call::IncrementMetric,
];
const PRINCIPAL: &str = "connection.uri_san_peer_certificate";

/// What a configuration's traffic is: two configurations with equal shapes
/// send the same requests.
#[derive(PartialEq)]
struct RequestShape<'a> {
    method: &'a str,
    path: &'a str,
    headers: &'a [(String, String)],
    rate: u32,
}

/// The request a configuration is measured with.
fn request(s: &Setup) -> RequestShape<'_> {
    RequestShape {
        method: s.method,
        path: &s.path,
        headers: &s.headers,
        rate: s.rate,
    }
}

pub fn is_bare(s: &Setup) -> bool {
    s.filters.is_empty() && s.route_extra == json!({}) && s.hcm_extra == json!({})
}

pub fn is_noop(s: &Setup) -> bool {
    s.name.starts_with("noop wasm")
}

/// Bare Envoy for every request a configuration sends (a 1.2 KB metadata
/// header or a longer path costs Envoy something even without filters), and
/// the no-op filter for every request with headers, so that each ratio
/// compares the same traffic.
fn add_baselines(all: &mut Vec<Setup>) {
    let mut added = Vec::new();
    for s in all.iter() {
        let known = |added: &[Setup], pred: fn(&Setup) -> bool| {
            all.iter()
                .chain(added)
                .any(|o| pred(o) && request(o) == request(s))
        };
        let copy = |name: String, filters: Vec<Value>| Setup {
            name,
            native: None,
            filters,
            route_extra: json!({}),
            hcm_extra: json!({}),
            method: s.method,
            path: s.path.clone(),
            headers: s.headers.clone(),
            rate: s.rate,
        };
        if !known(&added, is_bare) {
            added.push(copy(format!("bare, request of {}", s.name), vec![]));
        }
        if !s.headers.is_empty() && !known(&added, is_noop) {
            added.push(copy(
                format!("noop wasm, request of {}", s.name),
                vec![wasm_fixture("noop", &json!({}))],
            ));
        }
    }
    all.extend(added);
}

/// Where in the list of configurations the baselines of one are.
pub struct Baselines {
    /// Bare Envoy with the same request.
    pub bare: Option<usize>,
    /// The no-op filter with the same request, else with the plain one.
    pub noop: Option<usize>,
}

/// The bare Envoy and no-op filter measured with the same request as `s`.
pub fn baselines(all: &[Setup], s: &Setup) -> Baselines {
    let twin =
        |pred: fn(&Setup) -> bool| all.iter().position(|o| pred(o) && request(o) == request(s));
    let noop = twin(is_noop).or_else(|| all.iter().position(|o| o.name == "noop wasm"));
    Baselines {
        bare: twin(is_bare),
        noop,
    }
}

fn human(n: usize) -> String {
    match n {
        n if n >= 1 << 20 => format!("{} MiB", n >> 20),
        n if n >= 1024 => format!("{} KiB", n >> 10),
        n => format!("{n} B"),
    }
}

/// Envoy with configuration `s` on one listener, `main`.
pub fn start(upstream: u16, s: &Setup) -> Envoy {
    let mut route = json!({
        "match": {"prefix": "/"},
        "route": {"cluster": "upstream", "timeout": "30s"}
    });
    if let (Some(fields), Some(extra)) = (route.as_object_mut(), s.route_extra.as_object()) {
        for (k, v) in extra {
            fields.insert(k.clone(), v.clone());
        }
    }
    let routes = json!([{"name": "app", "domains": ["*"], "routes": [route]}]);
    Envoy::start(&Bootstrap::new(upstream).listener_with(
        "main",
        s.filters.clone(),
        routes,
        s.hcm_extra.clone(),
    ))
}
