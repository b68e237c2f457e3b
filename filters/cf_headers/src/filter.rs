//! The proxy-wasm shell: moves headers between Envoy and the core, nothing more.

use crate::config::Config;
use crate::identity::Part;
use crate::stamp::Verdict;
use filter_common::header::pairs::HeaderMap;
use filter_common::header::Copies;
use filter_common::host::plugin::{Exchange, Map, Plugin, StreamFilter};
use filter_common::host::{first_property, load_config, remove_trailer_copies, Action, Counter};
use std::rc::Rc;

const FILTER: &str = "cf_headers";

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

struct CfHeaders {
    config: Rc<Config>,
    stats: Stats,
}

/// The plugin for one configuration; `None` after logging what is wrong.
pub fn configure(raw: Option<&[u8]>) -> Option<Box<dyn Plugin>> {
    plugin(load_config(FILTER, raw, Config::parse)?)
}

/// The plugin for a parsed configuration (the suite parses its own).
pub fn plugin(mut config: Config) -> Option<Box<dyn Plugin>> {
    if let Some(keys) = config.pending_label_keys() {
        let keys = keys.as_slice().join(", ");
        match config.resolve_node_labels(node_label) {
            Ok(id) => log::info!(
                "{FILTER}: identity from pod labels: app {} process {} org {} space {}",
                id[Part::AppGuid],
                id[Part::ProcessType],
                id[Part::OrgGuid],
                id[Part::SpaceGuid]
            ),
            Err(problems) => log::warn!(
                "{FILTER}: pod labels {} unusable, so requests get no identity (labels read: {keys})",
                problems.join(", "),
            ),
        }
    }
    Some(Box::new(CfHeaders {
        config: Rc::new(config),
        stats: Stats::define(),
    }))
}

impl Plugin for CfHeaders {
    fn stream(&self) -> Box<dyn StreamFilter> {
        Box::new(Stream {
            config: self.config.clone(),
            stats: self.stats,
            verdict: Verdict::Strip,
        })
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

/// The client's copies of the CF headers in a header or trailer map (one
/// instance of the generic scan for both).
fn spoofed(config: &Config, map: &HeaderMap) -> Copies {
    config.spoofed(map.iter().map(|(name, _)| name))
}

struct Stream {
    config: Rc<Config>,
    stats: Stats,
    verdict: Verdict,
}

impl StreamFilter for Stream {
    fn on_request_headers(&mut self, x: &mut Exchange, _end_of_stream: bool) -> Action {
        let headers = x.headers(Map::Request);
        let spoofed = spoofed(&self.config, headers);
        let authority = if self.config.needs_authority() {
            headers.first(":authority")
        } else {
            None
        };
        self.verdict = self.config.verdict(authority);
        self.stats.spoofed_removed.add(spoofed.lines);
        let config = &self.config;
        match self.verdict {
            Verdict::Stamp(i) => {
                // Envoy's replace removes every copy and appends one, exactly
                // like a route's OVERWRITE_IF_EXISTS_OR_ADD; the other
                // spellings (`cf_app_id`) go first.
                for name in &spoofed.spellings {
                    if !config.names.is_configured(name) {
                        x.set_header(Map::Request, name, None);
                    }
                }
                if let Some(identity) = config.identities.get(i) {
                    for (name, value) in config.names.with(identity) {
                        x.set_header(Map::Request, name, Some(value.as_bytes()));
                    }
                }
                self.stats.stamped.inc();
                Action::Continue
            }
            Verdict::Strip | Verdict::Unidentified | Verdict::Reject => {
                for name in &spoofed.spellings {
                    x.set_header(Map::Request, name, None);
                }
                if self.verdict == Verdict::Strip {
                    return Action::Continue;
                }
                self.stats.no_identity.inc();
                if self.verdict == Verdict::Reject {
                    self.stats.rejected.inc();
                    log::debug!("{FILTER}: no identity for this request, answering 503");
                    x.send_response(
                        503,
                        &[("content-type", "text/plain")],
                        b"no CF app identity for this request\n",
                    );
                    return Action::Pause;
                }
                Action::Continue
            }
        }
    }

    /// Trailers reach the app too (some frameworks merge them into the
    /// headers): the client's copies go, whatever the verdict. Envoy calls
    /// this only for a request that has trailers.
    fn on_request_trailers(&mut self, _x: &mut Exchange) -> Action {
        let removed = remove_trailer_copies(self.config.names.0.as_slice());
        self.stats.spoofed_removed.add(removed);
        Action::Continue
    }

    fn on_response_headers(&mut self, x: &mut Exchange, _end_of_stream: bool) -> Action {
        let config = &self.config;
        if !config.response_headers || self.verdict == Verdict::Reject {
            return Action::Continue;
        }
        match self.verdict {
            Verdict::Stamp(i) => {
                if let Some(identity) = config.identities.get(i) {
                    for (name, value) in config.names.with(identity) {
                        x.set_header(Map::Response, name, Some(value.as_bytes()));
                    }
                }
            }
            _ => {
                for name in config.names.0.as_slice() {
                    x.set_header(Map::Response, name, None);
                }
            }
        }
        Action::Continue
    }
}
