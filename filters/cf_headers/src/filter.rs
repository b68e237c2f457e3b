//! The proxy-wasm shell: moves headers between Envoy and the core, nothing more.

use crate::config::Config;
use crate::stamp::Verdict;
use filter_common::host::{first_property, header_map, init_logging, load_config, Counter};
use filter_common::pairs::first_value;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, MapType};
use std::rc::Rc;

const FILTER: &str = "cf_headers";

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| Box::new(Root::default()));
}}

#[derive(Clone, Copy)]
struct Stats {
    stamped: Counter,
    spoofed_removed: Counter,
    no_identity: Counter,
    rejected: Counter,
}

impl Stats {
    fn define() -> Stats {
        Stats {
            stamped: Counter::define("cf_headers.stamped"),
            spoofed_removed: Counter::define("cf_headers.spoofed_removed"),
            no_identity: Counter::define("cf_headers.no_identity"),
            rejected: Counter::define("cf_headers.rejected"),
        }
    }
}

#[derive(Default)]
struct Root {
    state: Option<(Rc<Config>, Stats)>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        init_logging();
        let Some(mut config) = load_config(FILTER, self.get_plugin_configuration(), Config::parse)
        else {
            return false;
        };
        if let Some(keys) = config.pending_label_keys() {
            let keys = keys.clone();
            match config.resolve_node_labels(node_label) {
                Ok(id) => log::info!(
                    "{FILTER}: identity from pod labels: app {} process {} org {} space {}",
                    id.values[0],
                    id.values[1],
                    id.values[2],
                    id.values[3]
                ),
                Err(problems) => log::warn!(
                    "{FILTER}: pod labels {} unusable, so requests get no identity (labels read: {})",
                    problems.join(", "),
                    keys.join(", ")
                ),
            }
        }
        self.state = Some((Rc::new(config), Stats::define()));
        true
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        // Envoy creates no stream for a plugin whose on_configure failed; should
        // one come anyway, it strips the headers (never trusts a client's copy).
        let (config, stats) = match &self.state {
            Some((config, stats)) => (config.clone(), *stats),
            None => (
                Rc::new(Config::parse(Some(br#"{"mode":"strip_only"}"#)).ok()?),
                Stats::define(),
            ),
        };
        Some(Box::new(Stream {
            config,
            stats,
            verdict: Verdict::Strip,
        }))
    }
}

/// Pod labels, through the property path of newer Envoys first.
fn node_label(key: &str) -> Option<String> {
    let raw = first_property(&[
        &["xds", "node", "metadata", "LABELS", key],
        &["node", "metadata", "LABELS", key],
    ])?;
    String::from_utf8(raw).ok()
}

struct Stream {
    config: Rc<Config>,
    stats: Stats,
    verdict: Verdict,
}

impl Context for Stream {}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let headers = header_map(MapType::HttpRequestHeaders).unwrap_or_default();
        let spoofed = self
            .config
            .count_spoofed(headers.iter().map(|(name, _)| name.as_str()));
        let authority = if self.config.needs_authority() {
            first_value(&headers, ":authority")
        } else {
            None
        };
        self.verdict = self.config.verdict(authority);
        self.stats.spoofed_removed.add(spoofed);
        match self.verdict {
            Verdict::Stamp(i) => {
                // Envoy's replace removes every copy and appends one, exactly
                // like a route's OVERWRITE_IF_EXISTS_OR_ADD.
                for (name, value) in self
                    .config
                    .names
                    .0
                    .iter()
                    .zip(&self.config.identities[i].values)
                {
                    self.set_http_request_header(name, Some(value));
                }
                self.stats.stamped.inc();
                Action::Continue
            }
            Verdict::Strip | Verdict::Unidentified | Verdict::Reject => {
                if spoofed > 0 {
                    for name in &self.config.names.0 {
                        self.set_http_request_header(name, None);
                    }
                }
                if self.verdict == Verdict::Strip {
                    return Action::Continue;
                }
                self.stats.no_identity.inc();
                if self.verdict == Verdict::Reject {
                    self.stats.rejected.inc();
                    log::debug!("{FILTER}: no identity for this request, answering 503");
                    self.send_http_response(
                        503,
                        vec![("content-type", "text/plain")],
                        Some(b"no CF app identity for this request\n"),
                    );
                    return Action::Pause;
                }
                Action::Continue
            }
        }
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if !self.config.response_headers || self.verdict == Verdict::Reject {
            return Action::Continue;
        }
        match self.verdict {
            Verdict::Stamp(i) => {
                for (name, value) in self
                    .config
                    .names
                    .0
                    .iter()
                    .zip(&self.config.identities[i].values)
                {
                    self.set_http_response_header(name, Some(value));
                }
            }
            _ => {
                for name in &self.config.names.0 {
                    self.set_http_response_header(name, None);
                }
            }
        }
        Action::Continue
    }
}
