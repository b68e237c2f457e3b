//! How a filter runs in Envoy. A filter is a [`Plugin`] (what one plugin
//! configuration holds: config, stats, caches) that makes a [`StreamFilter`]
//! per request. A filter's own module runs one plugin; `suite.wasm` runs
//! several as one [`Chain`], in one Wasm context per request, so the boundary
//! cost (context creation, one call per callback) is paid once, and the
//! request headers are read once and shared through the [`Exchange`].
//!
//! A network filter is a [`NetworkPlugin`] that makes a [`ConnectionFilter`]
//! per connection.
//!
//! The module's exports ([`http_module!`], [`network_module!`]) dispatch
//! Envoy's calls to the contexts ([`super::contexts`]) directly: no SDK,
//! so no SDK code that panics on a status, and only the callbacks a filter
//! uses are exported.

use super::calls::{
    add_header, header_map_bytes, mtls_principal, property, send_response, set_header, set_property,
};
use super::contexts::{with_stream, Contexts, Kind};
use super::types::{Action, MapType};
use crate::header::pairs::HeaderMap;
use crate::peer::{Key, Peer, Published};
use std::borrow::Cow;
use std::cell::{Cell, OnceCell, RefCell};
use std::rc::Rc;
use std::thread::LocalKey;

/// One configured filter, shared by all its streams on this worker.
pub trait Plugin {
    fn stream(&self) -> Box<dyn StreamFilter>;
    /// The root context's tick (only filters that schedule one get it).
    fn on_tick(&self) {}
    /// The answer to an HTTP call this plugin dispatched.
    fn on_http_call_response(&self, _token: u32) {}
}

/// One filter's part of one request. Every callback defaults to doing nothing.
pub trait StreamFilter {
    fn on_request_headers(&mut self, _x: &mut Exchange, _end_of_stream: bool) -> Action {
        Action::Continue
    }
    fn on_request_body(&mut self, _x: &mut Exchange, _size: usize, _end_of_stream: bool) -> Action {
        Action::Continue
    }
    fn on_request_trailers(&mut self, _x: &mut Exchange) -> Action {
        Action::Continue
    }
    fn on_response_headers(&mut self, _x: &mut Exchange, _end_of_stream: bool) -> Action {
        Action::Continue
    }
    fn on_response_body(
        &mut self,
        _x: &mut Exchange,
        _size: usize,
        _end_of_stream: bool,
    ) -> Action {
        Action::Continue
    }
    fn on_response_trailers(&mut self, _x: &mut Exchange) -> Action {
        Action::Continue
    }
    fn on_log(&mut self, _x: &mut Exchange) {}
    /// In a [`Chain`], once every part has run its request-headers callback
    /// and none stopped the request: the request headers as they leave the
    /// module, from memory (no host call). A filter on its own never gets it.
    fn after_chain_request_headers(&mut self, _x: &mut Exchange) {}
}

/// A header map of the stream, in either direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Map {
    Request,
    RequestTrailers,
    Response,
    ResponseTrailers,
}

impl Map {
    fn abi(self) -> MapType {
        match self {
            Map::Request => MapType::HttpRequestHeaders,
            Map::RequestTrailers => MapType::HttpRequestTrailers,
            Map::Response => MapType::HttpResponseHeaders,
            Map::ResponseTrailers => MapType::HttpResponseTrailers,
        }
    }
}

/// What the filters of one module share about the stream in one callback:
/// its header maps (each read from Envoy once, then kept in step with the
/// changes each filter makes, so a later filter sees what it would see as a
/// separate filter), the mTLS principal, the filter state they wrote and the
/// caller peer_metadata published. Forgotten at the end of every callback:
/// between callbacks other filters may change all of them. So a VM, which
/// runs one callback at a time, needs one exchange, not one per stream.
pub struct Exchange {
    /// Request headers, request trailers, response headers, response
    /// trailers (by [`Map`]'s order): filled on first read.
    maps: [OnceCell<HeaderMap>; 4],
    /// Which of `maps` a filter read in this callback (bit `1 << index`):
    /// most callbacks read none, and then emptying them costs one test.
    filled: Cell<u8>,
    /// Which of the maps read Envoy had: only those tell which headers
    /// are absent (the others are empty stand-ins).
    envoys: Cell<u8>,
    principal: Option<Option<String>>,
    /// Filter state written in this callback: keys and values.
    written: HeaderMap,
    /// The caller published in this callback, when all its filter state was
    /// written: what a later filter would read back from that filter state.
    peer: Option<Rc<Peer>>,
}

static NO_HEADERS: HeaderMap = HeaderMap::new();

/// Room for the request headers filters add after reading them (cf_headers
/// adds four); the other maps are rarely edited after a read.
const ADDED: usize = 8;

/// The room `Exchange::written` keeps between callbacks: what filters
/// usually write; a larger write is freed when its callback ends.
const WRITTEN_KEPT: usize = 4096;

impl Exchange {
    const fn new() -> Exchange {
        Exchange {
            maps: [const { OnceCell::new() }; 4],
            filled: Cell::new(0),
            envoys: Cell::new(0),
            principal: None,
            written: HeaderMap::new(),
            peer: None,
        }
    }

    fn cell(&self, map: Map) -> &OnceCell<HeaderMap> {
        let [request, request_trailers, response, response_trailers] = &self.maps;
        match map {
            Map::Request => request,
            Map::RequestTrailers => request_trailers,
            Map::Response => response,
            Map::ResponseTrailers => response_trailers,
        }
    }

    /// A header map as Envoy holds it now: empty where Envoy has none (a
    /// map its phase has not reached, trailers a stream did not send).
    /// Several maps may be read at once; none can be edited while they are.
    pub fn headers(&self, map: Map) -> &HeaderMap {
        let cell = self.cell(map);
        if let Some(headers) = cell.get() {
            return headers;
        }
        let bit = 1 << map as u8;
        self.filled.set(self.filled.get() | bit);
        let read = header_map_bytes(map.abi()).and_then(|bytes| {
            HeaderMap::decode_with_room(bytes, if map == Map::Request { ADDED } else { 0 })
        });
        let headers = match read {
            Some(headers) => {
                self.envoys.set(self.envoys.get() | bit);
                headers
            }
            None => HeaderMap::new(),
        };
        // Not `get_or_init`: its check for a reentrant fill (none can
        // happen here) would put a panic on every request's path.
        let _ = cell.set(headers);
        cell.get().unwrap_or(&NO_HEADERS)
    }

    /// Whether Envoy has `map` (response headers exist once the response
    /// started, trailers only when the peer sent some).
    pub fn has(&self, map: Map) -> bool {
        self.headers(map);
        self.is_envoys(map)
    }

    fn is_envoys(&self, map: Map) -> bool {
        self.envoys.get() & 1 << map as u8 != 0
    }

    /// A header map to keep past this callback (a filter that records
    /// trailers, which arrive once); `None` where Envoy has none.
    pub fn take_headers(&mut self, map: Map) -> Option<HeaderMap> {
        if !self.has(map) {
            return None;
        }
        self.envoys.set(self.envoys.get() & !(1 << map as u8));
        self.cached(map).map(std::mem::take)
    }

    /// The map as read in this callback, to keep in step with an edit.
    fn cached(&mut self, map: Map) -> Option<&mut HeaderMap> {
        let [request, request_trailers, response, response_trailers] = &mut self.maps;
        match map {
            Map::Request => request,
            Map::RequestTrailers => request_trailers,
            Map::Response => response,
            Map::ResponseTrailers => response_trailers,
        }
        .get_mut()
    }

    /// Replaces every copy of a header with one value, or removes them.
    pub fn set_header(&mut self, map: Map, name: &str, value: Option<&[u8]>) {
        let name = lowercase(name);
        let absent = self.is_envoys(map)
            && self
                .cached(map)
                .is_some_and(|headers| !headers.contains(&name));
        let result = match value {
            // Nothing to remove: an append is the same edit, and Envoy does
            // less for it than for a replace.
            Some(value) if absent => add_header(map.abi(), &name, value),
            None if absent => Ok(()),
            _ => set_header(map.abi(), &name, value),
        };
        if let Err(status) = result {
            log::debug!("header {name} not changed (status {status})");
            return;
        }
        if let Some(headers) = self.cached(map) {
            if !absent {
                headers.remove(&name);
            }
            if let Some(value) = value {
                headers.append(&name, value);
            }
        }
    }

    /// Appends one more copy of a header.
    pub fn add_header(&mut self, map: Map, name: &str, value: &[u8]) {
        let name = lowercase(name);
        if let Err(status) = add_header(map.abi(), &name, value) {
            log::debug!("header {name} not added (status {status})");
            return;
        }
        if let Some(headers) = self.cached(map) {
            headers.append(&name, value);
        }
    }

    /// Answers the request from the filter; the caller then returns `Pause`.
    pub fn send_response(&mut self, code: u32, headers: &[(&str, &str)], body: &[u8]) {
        if let Err(status) = send_response(code, headers, body) {
            log::warn!("local reply {code} refused (status {status})");
        }
    }

    /// The URI SAN of the downstream mTLS certificate (read once).
    pub fn principal(&mut self) -> Option<&str> {
        self.principal.get_or_insert_with(mtls_principal).as_deref()
    }

    /// Sets filter state `wasm.<key>`; `Err(status)` when Envoy refuses.
    pub fn set_filter_state(&mut self, key: &str, value: &[u8]) -> Result<(), u32> {
        set_property(key, value)?;
        self.written.remove(key);
        self.written.append(key, value);
        Ok(())
    }

    /// Filter state `wasm.<key>`: what a filter of this module wrote in this
    /// callback, else what Envoy holds.
    pub fn filter_state(&self, key: &str) -> Option<Vec<u8>> {
        match self.written.first(key) {
            Some(value) => Some(value.to_vec()),
            None => property(&[key]),
        }
    }

    /// Writes the caller's filter state (`wasm.peer_*`) and, when Envoy took
    /// all of it, keeps the caller for the filters after this one in the
    /// module. `Err` names the first key Envoy refused, with its status.
    pub fn publish_peer(&mut self, published: &Published) -> Result<(), (Key, u32)> {
        let mut refused = None;
        for (key, value) in published.entries() {
            if let Err(status) = self.set_filter_state(key.name(), value.as_bytes()) {
                refused.get_or_insert((*key, status));
            }
        }
        match refused {
            Some(refused) => Err(refused),
            None => {
                self.peer = Some(published.state().clone());
                Ok(())
            }
        }
    }

    /// The caller a filter before this one published: from memory when it
    /// ran in this module, else `keys` read back from Envoy's filter state.
    pub fn published_peer(&self, keys: &[Key]) -> Rc<Peer> {
        match &self.peer {
            Some(peer) => peer.clone(),
            None => Rc::new(Peer::read(keys, |key| self.filter_state(key.name()))),
        }
    }

    fn end_callback(&mut self) {
        let filled = self.filled.replace(0);
        if filled != 0 {
            for (i, cell) in self.maps.iter_mut().enumerate() {
                if filled & 1 << i != 0 {
                    cell.take();
                }
            }
            self.envoys.set(0);
        }
        self.principal = None;
        if !self.written.is_empty() {
            self.written.clear(WRITTEN_KEPT);
        }
        self.peer = None;
    }
}

/// Header names as Envoy holds them; most are lowercase already.
fn lowercase(name: &str) -> Cow<'_, str> {
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(name.to_ascii_lowercase())
    } else {
        Cow::Borrowed(name)
    }
}

/// Several filters run as one, in order, as Envoy runs a filter chain: a
/// filter that stops the request (a local reply) ends that callback, and
/// the filters after it, which never saw the request, see no response
/// either; every filter sees the log.
pub struct Chain(pub Vec<Box<dyn Plugin>>);

impl Plugin for Chain {
    fn stream(&self) -> Box<dyn StreamFilter> {
        Box::new(ChainStream {
            parts: self.0.iter().map(|p| p.stream()).collect(),
            reached: self.0.len(),
        })
    }

    fn on_tick(&self) {
        self.0.iter().for_each(|p| p.on_tick());
    }

    fn on_http_call_response(&self, token: u32) {
        self.0.iter().for_each(|p| p.on_http_call_response(token));
    }
}

struct ChainStream {
    parts: Vec<Box<dyn StreamFilter>>,
    /// How many parts the request reached (all, unless one stopped it).
    reached: usize,
}

impl ChainStream {
    /// Runs the parts the request reached until one does not continue; in
    /// the request direction that part is the last the request reaches.
    fn each(
        &mut self,
        request: bool,
        mut f: impl FnMut(&mut dyn StreamFilter) -> Action,
    ) -> Action {
        for (i, part) in self.parts.iter_mut().take(self.reached).enumerate() {
            let action = f(part.as_mut());
            if action != Action::Continue {
                if request {
                    self.reached = i + 1;
                }
                return action;
            }
        }
        Action::Continue
    }
}

impl StreamFilter for ChainStream {
    fn on_request_headers(&mut self, x: &mut Exchange, end_of_stream: bool) -> Action {
        let action = self.each(true, |f| f.on_request_headers(x, end_of_stream));
        if action == Action::Continue {
            for part in &mut self.parts {
                part.after_chain_request_headers(x);
            }
        }
        action
    }
    fn on_request_body(&mut self, x: &mut Exchange, size: usize, end_of_stream: bool) -> Action {
        self.each(true, |f| f.on_request_body(x, size, end_of_stream))
    }
    fn on_request_trailers(&mut self, x: &mut Exchange) -> Action {
        self.each(true, |f| f.on_request_trailers(x))
    }
    fn on_response_headers(&mut self, x: &mut Exchange, end_of_stream: bool) -> Action {
        self.each(false, |f| f.on_response_headers(x, end_of_stream))
    }
    fn on_response_body(&mut self, x: &mut Exchange, size: usize, end_of_stream: bool) -> Action {
        self.each(false, |f| f.on_response_body(x, size, end_of_stream))
    }
    fn on_response_trailers(&mut self, x: &mut Exchange) -> Action {
        self.each(false, |f| f.on_response_trailers(x))
    }
    fn on_log(&mut self, x: &mut Exchange) {
        self.parts.iter_mut().for_each(|f| f.on_log(x));
    }
}

/// HTTP filter modules ([`http_module!`]): each request gets its plugin's
/// [`StreamFilter`].
pub struct Http;

thread_local! {
    static HTTP: RefCell<Contexts<Http>> = const { RefCell::new(Contexts::new()) };
    static EXCHANGE: RefCell<Exchange> = const { RefCell::new(Exchange::new()) };
}

impl Kind for Http {
    type Plugin = dyn Plugin;
    type Stream = Box<dyn StreamFilter>;

    fn contexts() -> &'static LocalKey<RefCell<Contexts<Self>>> {
        &HTTP
    }

    fn stream(plugin: &dyn Plugin, _id: u32) -> Box<dyn StreamFilter> {
        plugin.stream()
    }

    fn on_tick(plugin: &dyn Plugin) {
        plugin.on_tick();
    }

    fn on_http_call_response(plugin: &dyn Plugin, token: u32) {
        plugin.on_http_call_response(token);
    }
}

/// A stream callback: runs `f` on stream `id`'s filter; `Continue` for an
/// unknown stream.
pub fn on_stream(id: u32, f: impl FnOnce(&mut dyn StreamFilter, &mut Exchange) -> Action) -> u32 {
    let action = with_stream::<Http, _>(id, |filter| {
        EXCHANGE.with(|x| {
            let mut x = x.try_borrow_mut().ok()?;
            let action = f(filter.as_mut(), &mut x);
            x.end_callback();
            Some(action)
        })
    });
    action.flatten().unwrap_or(Action::Continue) as u32
}

/// One configured network filter, shared by all its connections on this worker.
pub trait NetworkPlugin {
    /// The filter of connection `id` (a context id: the root's tick acts for
    /// the connection with [`super::calls::set_effective_context`]).
    fn connection(&self, id: u32) -> Box<dyn ConnectionFilter>;
    /// The root context's tick (only filters that schedule one get it).
    fn on_tick(&self) {}
    /// The answer to an HTTP call this plugin dispatched.
    fn on_http_call_response(&self, _token: u32) {}
}

/// One network filter's part of one connection. Every callback defaults to
/// doing nothing; the data callbacks return whether the bytes go on.
pub trait ConnectionFilter {
    fn on_new_connection(&mut self) -> Action {
        Action::Continue
    }
    /// `size` bytes read from downstream are in [`super::types::BufferType::DownstreamData`].
    fn on_downstream_data(&mut self, _size: usize, _end_of_stream: bool) -> Action {
        Action::Continue
    }
    /// `size` bytes toward downstream are in [`super::types::BufferType::UpstreamData`].
    fn on_upstream_data(&mut self, _size: usize, _end_of_stream: bool) -> Action {
        Action::Continue
    }
    fn on_downstream_close(&mut self) {}
    fn on_upstream_close(&mut self) {}
    /// Envoy is done with the connection (both sides closed, or a failure):
    /// it then runs the access log and deletes the context. A context Envoy
    /// deletes without this (or on a module that does not export it) is
    /// only dropped.
    fn on_done(&mut self) {}
}

/// Network filter modules ([`network_module!`]): each connection gets its
/// plugin's [`ConnectionFilter`].
pub struct Network;

thread_local! {
    static NETWORK: RefCell<Contexts<Network>> = const { RefCell::new(Contexts::new()) };
}

impl Kind for Network {
    type Plugin = dyn NetworkPlugin;
    type Stream = Box<dyn ConnectionFilter>;

    fn contexts() -> &'static LocalKey<RefCell<Contexts<Self>>> {
        &NETWORK
    }

    fn stream(plugin: &dyn NetworkPlugin, id: u32) -> Box<dyn ConnectionFilter> {
        plugin.connection(id)
    }

    fn on_tick(plugin: &dyn NetworkPlugin) {
        plugin.on_tick();
    }

    fn on_http_call_response(plugin: &dyn NetworkPlugin, token: u32) {
        plugin.on_http_call_response(token);
    }
}

/// A connection callback: runs `f` on connection `id`'s filter; `Continue`
/// for an unknown connection.
pub fn on_connection(id: u32, f: impl FnOnce(&mut dyn ConnectionFilter) -> Action) -> u32 {
    let action = with_stream::<Network, _>(id, |connection| f(connection.as_mut()));
    action.unwrap_or(Action::Continue) as u32
}

/// `proxy_on_done` of a network module: the connection's `on_done`, then
/// done (1) for every context, roots included: none waits for anything.
pub fn on_connection_done(id: u32) -> u32 {
    with_stream::<Network, _>(id, |connection| connection.on_done());
    1
}
