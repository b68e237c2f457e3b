//! The proxy-wasm shell: reads the caller's metadata headers and the mTLS
//! peer certificate once per request, decodes (or finds in the per-worker
//! cache), and writes the identity headers and filter state. Client-sent
//! copies of the output headers are always removed first.

use crate::cache::Cache;
use crate::config::Config;
use crate::flatnode::peer_from_flatnode;
use crate::identity::{single_value, LastOutputs};
use crate::peer;
use crate::structpb::decode_header;
use filter_common::header::pairs::HeaderMap;
use filter_common::header::{copies, Copies};
use filter_common::host::plugin::{Exchange, Map, Plugin, StreamFilter};
use filter_common::host::{
    load_config, now_nanos, property, remove_trailer_copies, Action, Counter,
};
use filter_common::peer::Peer;
use filter_common::peer::{BAGGAGE_HEADER, METADATA_HEADERS};
use filter_common::tap::ratelimit::TokenBucket;
use std::cell::RefCell;
use std::rc::Rc;

const FILTER: &str = "peer_metadata";
const METADATA: &str = METADATA_HEADERS[0];
const METADATA_ID: &str = METADATA_HEADERS[1];
const BAGGAGE: &str = BAGGAGE_HEADER;
#[derive(Clone, Copy)]
struct Stats {
    decoded: Counter,
    from_cache: Counter,
    malformed: Counter,
    oversized: Counter,
    verified: Counter,
    unverified: Counter,
    spoofed: Counter,
    spoofed_removed: Counter,
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
            spoofed: c("spoofed"),
            spoofed_removed: c("spoofed_removed"),
            istio_filter_state: c("istio_filter_state"),
        }
    }
}

struct Shared {
    config: Config,
    stats: Stats,
    cache: RefCell<Cache<Peer>>,
    last: RefCell<LastOutputs>,
    /// Warnings about contradicted claims: a few a second at most, so a
    /// caller that spoofs on every request cannot flood the log.
    warnings: RefCell<TokenBucket>,
}

/// The plugin for one configuration; `None` after logging what is wrong.
pub fn configure(raw: Option<&[u8]>) -> Option<Box<dyn Plugin>> {
    plugin(load_config(FILTER, raw, Config::parse)?)
}

/// The plugin for a parsed configuration (the suite parses its own).
pub fn plugin(config: Config) -> Option<Box<dyn Plugin>> {
    Some(Box::new(PeerMetadata(Rc::new(Shared {
        cache: RefCell::new(Cache::new(config.cache_entries)),
        last: RefCell::default(),
        warnings: RefCell::new(TokenBucket::new(1.0, 5.0)),
        config,
        stats: Stats::define(),
    }))))
}

struct PeerMetadata(Rc<Shared>);

impl Plugin for PeerMetadata {
    fn stream(&self) -> Box<dyn StreamFilter> {
        Box::new(Stream(self.0.clone()))
    }
}

struct Stream(Rc<Shared>);

impl Shared {
    /// The peer from the metadata header (decoded or cached), Istio's filter
    /// state, the baggage header, or the `-id` header, in that order.
    fn peer(&self, headers: &HeaderMap) -> Option<Rc<Peer>> {
        let values = |name: &'static str| -> Vec<&[u8]> { headers.values(name).collect() };
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
                        let peer = Rc::new(peer::from_struct(&tree));
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
        let text = |name: &'static str| -> Option<String> {
            let all = values(name);
            let joined = all.join(&b","[..]);
            if joined.len() > max {
                stats.oversized.inc();
                return None;
            }
            String::from_utf8(joined).ok().filter(|s| !s.is_empty())
        };
        let peer = text(BAGGAGE)
            .map(|b| peer::from_baggage(&b))
            .filter(|p| !p.is_empty())
            .or_else(|| text(METADATA_ID).map(|id| peer::from_id(&id)))
            .filter(|p| !p.is_empty())?;
        stats.decoded.inc();
        Some(Rc::new(peer))
    }
}

/// The peer Istio's metadata exchange left in filter state: `downstream_peer`
/// (Istio 1.24 and later), read key by key, else the `FlatNode` bytes of
/// `wasm.downstream_peer` (Istio 1.7 to 1.23).
fn istio_filter_state(max_labels: usize) -> Option<Peer> {
    peer::from_peer_object(
        |key| property(&["filter_state", "downstream_peer", key]),
        max_labels,
    )
    .or_else(|| peer_from_flatnode(&property(&["downstream_peer"])?, max_labels))
}

impl StreamFilter for Stream {
    fn on_request_headers(&mut self, x: &mut Exchange, _end_of_stream: bool) -> Action {
        let shared = &self.0;
        let config = &shared.config;
        let headers = x.headers(Map::Request);
        let peer = shared.peer(headers);
        // The client's copies of the output headers, in any spelling
        // (`x_peer_namespace`: CGI-style frameworks give the app both under
        // one name), and the metadata headers when they are to go.
        let spoofed = copies(&config.headers, headers.iter().map(|(name, _)| name));
        let metadata = if config.remove_metadata_headers {
            copies(&METADATA_HEADERS, headers.iter().map(|(name, _)| name))
        } else {
            Copies::default()
        };
        shared.stats.spoofed_removed.add(spoofed.lines);
        for name in spoofed.spellings.iter().chain(&metadata.spellings) {
            x.set_header(Map::Request, name, None);
        }
        let outputs = shared
            .last
            .borrow_mut()
            .get(peer.as_ref(), x.principal(), config);
        if outputs.spoofed {
            shared.stats.spoofed.inc();
            if shared.warnings.borrow_mut().try_take(now_nanos()) {
                log::warn!(
                    "{FILTER}: peer metadata contradicts the certificate {}; only the principal is passed on",
                    x.principal().unwrap_or_default()
                );
            }
        }
        if peer.is_some() {
            if outputs.verified {
                shared.stats.verified.inc();
            } else {
                shared.stats.unverified.inc();
            }
        }
        for (name, value) in &outputs.headers {
            x.set_header(Map::Request, name, Some(value.as_bytes()));
        }
        if let Some(published) = &outputs.published {
            if let Err((key, status)) = x.publish_peer(published) {
                let key = key.name();
                log::debug!("{FILTER}: filter state wasm.{key} refused (status {status})");
            }
        }
        Action::Continue
    }

    /// The client's copies of the output headers in the trailers go too.
    /// Envoy calls this only for a request that has trailers.
    fn on_request_trailers(&mut self, _x: &mut Exchange) -> Action {
        let removed = remove_trailer_copies(&self.0.config.headers);
        self.0.stats.spoofed_removed.add(removed);
        Action::Continue
    }
}
