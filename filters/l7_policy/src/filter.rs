//! The proxy-wasm shell: one decision per request, on the request headers.
//! Reads the headers once (and the caller only when a rule needs it), asks
//! the core, then forwards, answers 403 (or 400 for an ambiguous path), or in
//! dry-run mode only records what it would have done.

use crate::config::Config;
use crate::path;
use crate::rule::{Caller, Fix, Mismatch, Request};
use filter_common::header::normalize_authority;
use filter_common::host::{
    header_map, init_logging, load_config, mtls_principal, property_string, set_property, Counter,
};
use filter_common::pairs::first_value;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, MapType};
use std::rc::Rc;

const FILTER: &str = "l7_policy";

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| Box::new(Root::default()));
}}

struct Stats {
    allowed: Counter,
    denied: Counter,
    dry_run_denied: Counter,
    invalid_path: Counter,
    rule_hits: Vec<Counter>,
}

impl Stats {
    fn define(rules: usize) -> Stats {
        let c = |name: &str| Counter::define(&format!("{FILTER}.{name}"));
        Stats {
            allowed: c("allowed"),
            denied: c("denied"),
            dry_run_denied: c("dry_run_denied"),
            invalid_path: c("invalid_path"),
            rule_hits: (0..rules).map(|i| c(&format!("rule.{i}.hits"))).collect(),
        }
    }
}

struct Shared {
    config: Config,
    stats: Stats,
    /// Some rule has `from`: the caller must be read.
    needs_caller: bool,
}

#[derive(Default)]
struct Root {
    shared: Option<Rc<Shared>>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        init_logging();
        let Some(config) = load_config(FILTER, self.get_plugin_configuration(), Config::parse)
        else {
            return false;
        };
        log::info!("{FILTER}: {} rules compiled", config.rules.len());
        self.shared = Some(Rc::new(Shared {
            stats: Stats::define(config.rules.len()),
            needs_caller: config.rules.iter().any(|r| r.from.is_some()),
            config,
        }));
        true
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Stream {
            shared: self.shared.clone(),
        }))
    }
}

struct Stream {
    shared: Option<Rc<Shared>>,
}

impl Context for Stream {}

fn value<'h>(headers: &'h [(String, Vec<u8>)], name: &str) -> &'h [u8] {
    first_value(headers, name).unwrap_or_default()
}

/// The caller: the mTLS principal and what the peer-metadata filter published.
fn caller() -> Caller {
    let labels = property_string(&["peer_labels"])
        .and_then(|json| serde_json::from_str::<serde_json::Value>(&json).ok())
        .and_then(|v| v.as_object().cloned())
        .map(|o| {
            o.into_iter()
                .filter_map(|(k, v)| Some((k, v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    Caller {
        principal: mtls_principal(),
        namespace: property_string(&["peer_namespace"]),
        workload: property_string(&["peer_workload"]),
        labels,
        verified: property_string(&["peer_verified"]).as_deref() == Some("true"),
    }
}

impl Stream {
    /// The Hubble-style decision line.
    fn record(
        &self,
        level: Option<log::Level>,
        verdict: &str,
        headers: &[(String, Vec<u8>)],
        rule: &str,
    ) {
        let Some(level) = level.filter(|l| log::log_enabled!(*l)) else {
            return;
        };
        let text = |name: &str| String::from_utf8_lossy(value(headers, name)).into_owned();
        let protocol = property_string(&["request", "protocol"]).unwrap_or_default();
        log::log!(
            level,
            "http-request {verdict} ({protocol} {} {}://{}{}) rule={rule}",
            text(":method"),
            text(":scheme"),
            text(":authority"),
            text(":path"),
        );
    }

    fn apply(&self, fix: &Fix) {
        let value = fix.value.as_deref().map(String::from_utf8_lossy);
        match fix.action {
            Mismatch::Log => log::info!("{FILTER}: header {} did not match (LOG)", fix.name),
            Mismatch::Add => {
                if let Some(v) = &value {
                    self.add_http_request_header(&fix.name, v);
                }
            }
            Mismatch::Delete => self.set_http_request_header(&fix.name, None),
            Mismatch::Replace => self.set_http_request_header(&fix.name, value.as_deref()),
        }
    }
}

fn set_state(verdict: &str, rule: &str) {
    for (key, value) in [("l7_verdict", verdict), ("l7_rule", rule)] {
        if let Err(status) = set_property(key, value.as_bytes()) {
            log::debug!("{FILTER}: filter state wasm.{key} refused (status {status})");
        }
    }
}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(shared) = self.shared.clone() else {
            return Action::Continue;
        };
        let (config, stats) = (&shared.config, &shared.stats);
        let headers = header_map(MapType::HttpRequestHeaders).unwrap_or_default();
        let raw_path = value(&headers, ":path");
        if config.reject_invalid_paths {
            if let Err(why) = path::check(raw_path) {
                stats.invalid_path.inc();
                set_state("invalid_path", "none");
                self.record(config.log_denied, "DROPPED", &headers, "invalid-path");
                log::debug!("{FILTER}: path refused: {}", why.as_str());
                if config.dry_run {
                    return Action::Continue;
                }
                self.send_http_response(
                    config.invalid_path_status,
                    vec![("content-type", "text/plain")],
                    Some(format!("Bad request: {}\r\n", why.as_str()).as_bytes()),
                );
                return Action::Pause;
            }
        }
        let caller = if shared.needs_caller {
            caller()
        } else {
            Caller::default()
        };
        let host = normalize_authority(value(&headers, ":authority"));
        let request = Request {
            method: value(&headers, ":method"),
            path: if config.path_includes_query {
                raw_path
            } else {
                path::without_query(raw_path)
            },
            host: host.as_deref(),
            headers: &headers,
            caller: &caller,
            repeated: config.repeated_headers,
        };
        match config.decide(&request) {
            Some((i, fixes)) => {
                stats.allowed.inc();
                if let Some(hits) = stats.rule_hits.get(i) {
                    hits.inc();
                }
                let rule = i.to_string();
                set_state("allowed", &rule);
                self.record(config.log_allowed, "FORWARDED", &headers, &rule);
                for fix in &fixes {
                    self.apply(fix);
                }
                Action::Continue
            }
            None if config.dry_run => {
                stats.dry_run_denied.inc();
                set_state("dry_run_denied", "none");
                self.record(config.log_denied, "DROPPED (dry run)", &headers, "none");
                Action::Continue
            }
            None => {
                stats.denied.inc();
                set_state("denied", "none");
                self.record(config.log_denied, "DROPPED", &headers, "none");
                let deny = &config.deny;
                let reply_headers: Vec<(&str, &str)> = deny
                    .headers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .collect();
                self.send_http_response(deny.status, reply_headers, Some(deny.body.as_bytes()));
                Action::Pause
            }
        }
    }
}
