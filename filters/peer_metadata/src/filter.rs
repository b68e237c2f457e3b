//! The proxy-wasm shell: reads the caller's metadata headers and the mTLS
//! peer certificate once per request, decodes (or finds in the per-worker
//! cache), and writes the identity headers and filter state. Client-sent
//! copies of the output headers are always removed first.

use crate::cache::Cache;
use crate::config::Config;
use crate::flatnode::peer_from_flatnode;
use crate::identity::{single_value, Identity};
use crate::peer::Peer;
use crate::structpb::decode_header;
use filter_common::host::{
    header_map, init_logging, load_config, mtls_principal, property, property_string, set_property,
    Counter,
};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, MapType};
use std::cell::RefCell;
use std::rc::Rc;

const FILTER: &str = "peer_metadata";
const METADATA: &str = "x-envoy-peer-metadata";
const METADATA_ID: &str = "x-envoy-peer-metadata-id";
const BAGGAGE: &str = "baggage";

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| Box::new(Root::default()));
}}

#[derive(Clone, Copy)]
struct Stats {
    decoded: Counter,
    from_cache: Counter,
    malformed: Counter,
    oversized: Counter,
    verified: Counter,
    unverified: Counter,
    istio_filter_state: Counter,
}

impl Stats {
    fn define() -> Stats {
        let c = |name: &str| Counter::define(&format!("{FILTER}.{name}"));
        Stats {
            decoded: c("decoded"),
            from_cache: c("from_cache"),
            malformed: c("malformed"),
            oversized: c("oversized"),
            verified: c("verified"),
            unverified: c("unverified"),
            istio_filter_state: c("istio_filter_state"),
        }
    }
}

struct Shared {
    config: Config,
    stats: Stats,
    cache: RefCell<Cache<Peer>>,
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
        self.shared = Some(Rc::new(Shared {
            cache: RefCell::new(Cache::new(config.cache_entries)),
            config,
            stats: Stats::define(),
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

impl Shared {
    /// The peer from the metadata header (decoded or cached), Istio's filter
    /// state, the baggage header, or the `-id` header, in that order.
    fn peer(&self, headers: &[(String, Vec<u8>)]) -> Option<Rc<Peer>> {
        let values = |name: &str| -> Vec<&[u8]> {
            headers
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| v.as_slice())
                .collect()
        };
        let stats = self.stats;
        let max = self.config.max_header_bytes;
        match single_value(&values(METADATA)) {
            Err(_) => {
                log::debug!("{FILTER}: repeated {METADATA} headers disagree; ignored");
                stats.malformed.inc();
                return None;
            }
            Ok(Some(raw)) if raw.len() > max => {
                log::debug!(
                    "{FILTER}: {METADATA} of {} bytes is over {max}; ignored",
                    raw.len()
                );
                stats.oversized.inc();
                return None;
            }
            Ok(Some(raw)) => {
                if let Some(peer) = self.cache.borrow_mut().get(raw) {
                    stats.from_cache.inc();
                    return Some(peer);
                }
                return match decode_header(raw, self.config.limits) {
                    Ok(tree) => {
                        stats.decoded.inc();
                        let peer = Rc::new(Peer::from_struct(&tree));
                        self.cache.borrow_mut().insert(raw, peer.clone());
                        Some(peer)
                    }
                    Err(e) => {
                        log::debug!("{FILTER}: {METADATA} ignored: {e}");
                        stats.malformed.inc();
                        None
                    }
                };
            }
            Ok(None) => {}
        }
        if self.config.istio_filter_state {
            if let Some(peer) = istio_filter_state(self.config.limits.max_entries) {
                stats.istio_filter_state.inc();
                return Some(Rc::new(peer));
            }
        }
        let text = |name: &str| -> Option<String> {
            let all = values(name);
            let joined = all.join(&b","[..]);
            if joined.len() > max {
                stats.oversized.inc();
                return None;
            }
            String::from_utf8(joined).ok().filter(|s| !s.is_empty())
        };
        let peer = text(BAGGAGE)
            .map(|b| Peer::from_baggage(&b))
            .filter(|p| !p.is_empty())
            .or_else(|| text(METADATA_ID).map(|id| Peer::from_id(&id)))
            .filter(|p| !p.is_empty())?;
        stats.decoded.inc();
        Some(Rc::new(peer))
    }
}

/// The peer Istio's metadata exchange left in filter state: the typed
/// `downstream_peer` object of Istio 1.24 and later (read field by field),
/// else the `FlatNode` bytes of `wasm.downstream_peer` (Istio 1.7 to 1.23).
fn istio_filter_state(max_labels: usize) -> Option<Peer> {
    let field = |name: &str| property_string(&["filter_state", "downstream_peer", name]);
    if field("namespace").is_some() || field("workload").is_some() {
        return Some(Peer::from_peer_object(field));
    }
    peer_from_flatnode(&property(&["downstream_peer"])?, max_labels)
}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(shared) = self.shared.clone() else {
            return Action::Continue;
        };
        let config = &shared.config;
        let headers = header_map(MapType::HttpRequestHeaders).unwrap_or_default();
        for name in &config.headers {
            if headers.iter().any(|(n, _)| n == name) {
                self.set_http_request_header(name, None);
            }
        }
        if config.remove_metadata_headers {
            for name in [METADATA, METADATA_ID] {
                if headers.iter().any(|(n, _)| n == name) {
                    self.set_http_request_header(name, None);
                }
            }
        }
        let peer = shared.peer(&headers);
        let principal = mtls_principal();
        let identity = Identity::new(
            peer.as_deref(),
            principal.as_deref(),
            config.require_verified,
        );
        if peer.is_some() {
            if identity.verified {
                shared.stats.verified.inc();
            } else {
                shared.stats.unverified.inc();
            }
        }
        for (name, value) in identity.headers(config) {
            self.set_http_request_header(name, Some(&value));
        }
        if config.filter_state {
            for (key, value) in identity.filter_state() {
                if let Err(status) = set_property(&key, value.as_bytes()) {
                    log::debug!("{FILTER}: filter state wasm.{key} refused (status {status})");
                }
            }
        }
        Action::Continue
    }
}
