//! The proxy-wasm shell: one decision per request, on the request headers.
//! Reads the headers once (and the caller only when a rule needs it), asks
//! the core, then forwards, answers 403 (or 400 for an ambiguous path), or in
//! dry-run mode only records what it would have done.

use crate::config::Config;
use crate::rule::{Caller, Fix, Mismatch};
use crate::verdict::{value, Verdict};
use filter_common::header::pairs::HeaderMap;
use filter_common::host::plugin::{Exchange, Map, Plugin, StreamFilter};
use filter_common::host::Action;
use filter_common::host::{load_config, property_string, Counter};
use filter_common::peer::{labels_by_name, Key};
use std::rc::Rc;

const FILTER: &str = "l7_policy";

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
}

/// The plugin for one configuration; `None` after logging what is wrong.
pub fn configure(raw: Option<&[u8]>) -> Option<Box<dyn Plugin>> {
    plugin(load_config(FILTER, raw, Config::parse)?)
}

/// The plugin for a parsed configuration (the suite parses its own).
pub fn plugin(config: Config) -> Option<Box<dyn Plugin>> {
    log::info!("{FILTER}: {} rules compiled", config.rules.len());
    Some(Box::new(L7Policy(Rc::new(Shared {
        stats: Stats::define(config.rules.len()),
        config,
    }))))
}

struct L7Policy(Rc<Shared>);

impl Plugin for L7Policy {
    fn stream(&self) -> Box<dyn StreamFilter> {
        Box::new(Stream(self.0.clone()))
    }
}

struct Stream(Rc<Shared>);

/// What the rules may read of the published caller, without and with the
/// claimed workload and labels.
const CALLER: [Key; 3] = [Key::Namespace, Key::ServiceAccount, Key::Verified];
const CALLER_AND_CLAIMS: [Key; 5] = [
    Key::Namespace,
    Key::ServiceAccount,
    Key::Verified,
    Key::Workload,
    Key::Labels,
];

/// The caller: the mTLS principal and what the peer-metadata filter
/// published (from memory when it ran in the same module). The claimed
/// workload and labels are read only when they can count: with a
/// `principals` table they come from the table ([`Config::bind`]), and
/// reading the claimed labels would be wasted.
fn caller(x: &mut Exchange, claims: bool) -> Caller {
    let peer = x.published_peer(if claims { &CALLER_AND_CLAIMS } else { &CALLER });
    Caller {
        namespace: peer.namespace.clone(),
        workload: claims.then(|| peer.workload.clone()).flatten(),
        labels: if claims {
            labels_by_name(&peer.labels)
        } else {
            Vec::new()
        },
        service_account: peer.service_account.clone(),
        verified: peer.verified,
        principal: x.principal().map(str::to_string),
        attested: false,
    }
}

impl Stream {
    /// The Hubble-style decision line.
    fn record(level: Option<log::Level>, verdict: &str, headers: &HeaderMap, rule: &str) {
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

    fn apply(x: &mut Exchange, fix: &Fix) {
        match fix.action {
            Mismatch::Log => log::info!("{FILTER}: header {} did not match (LOG)", fix.name),
            Mismatch::Add => {
                if let Some(v) = &fix.value {
                    x.add_header(Map::Request, &fix.name, v);
                }
            }
            Mismatch::Delete => x.set_header(Map::Request, &fix.name, None),
            Mismatch::Replace => x.set_header(Map::Request, &fix.name, fix.value.as_deref()),
        }
    }
}

fn set_state(x: &mut Exchange, verdict: &str, rule: &str) {
    for (key, value) in [("l7_verdict", verdict), ("l7_rule", rule)] {
        if let Err(status) = x.set_filter_state(key, value.as_bytes()) {
            log::debug!("{FILTER}: filter state wasm.{key} refused (status {status})");
        }
    }
}

impl StreamFilter for Stream {
    fn on_request_headers(&mut self, x: &mut Exchange, _end_of_stream: bool) -> Action {
        let shared = self.0.clone();
        let (config, stats) = (&shared.config, &shared.stats);
        if let Err(why) = config.check_path(x.headers(Map::Request)) {
            let headers = x.headers(Map::Request);
            Stream::record(config.log_denied, "DROPPED", headers, "invalid-path");
            stats.invalid_path.inc();
            set_state(x, Verdict::InvalidPath(why).as_str(config.dry_run), "none");
            log::debug!("{FILTER}: path refused: {}", why.as_str());
            if config.dry_run {
                return Action::Continue;
            }
            x.send_response(
                config.invalid_path_status,
                &[("content-type", "text/plain")],
                format!("Bad request: {}\r\n", why.as_str()).as_bytes(),
            );
            return Action::Pause;
        }
        let caller = if config.needs_caller {
            let mut caller = caller(x, config.principals.is_empty());
            config.bind(&mut caller);
            caller
        } else {
            Caller::default()
        };
        // The headers are borrowed from the exchange until the decision is
        // logged; the state and header writes come after.
        let headers = x.headers(Map::Request);
        let verdict = match config.decide_headers(headers, &caller) {
            Some((i, fixes)) => Verdict::Allowed(i, fixes),
            None => Verdict::Denied,
        };
        let state = verdict.as_str(config.dry_run);
        match verdict {
            Verdict::Allowed(i, fixes) => {
                let rule = i.to_string();
                Stream::record(config.log_allowed, "FORWARDED", headers, &rule);
                stats.allowed.inc();
                if let Some(hits) = stats.rule_hits.get(i) {
                    hits.inc();
                }
                set_state(x, state, &rule);
                for fix in &fixes {
                    Stream::apply(x, fix);
                }
                Action::Continue
            }
            Verdict::Denied if config.dry_run => {
                Stream::record(config.log_denied, "DROPPED (dry run)", headers, "none");
                stats.dry_run_denied.inc();
                set_state(x, state, "none");
                Action::Continue
            }
            // (An invalid path was answered above.)
            Verdict::Denied | Verdict::InvalidPath(_) => {
                Stream::record(config.log_denied, "DROPPED", headers, "none");
                stats.denied.inc();
                set_state(x, state, "none");
                let deny = &config.deny;
                let reply_headers: Vec<(&str, &str)> = deny
                    .headers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .collect();
                x.send_response(deny.status, &reply_headers, deny.body.as_bytes());
                Action::Pause
            }
        }
    }
}
