//! How a filter runs in Envoy. A filter is a [`Plugin`] (what one plugin
//! configuration holds: config, stats, caches) that makes a [`StreamFilter`]
//! per request. A filter's own module runs one plugin; `suite.wasm` runs
//! several as one [`Chain`], in one Wasm context per request, so the boundary
//! cost (context creation, one call per callback) is paid once, and the
//! request headers are read once and shared through the [`Exchange`].
//!
//! The module's exports ([`http_module!`]) dispatch Envoy's calls to the
//! contexts here directly: no SDK, so no SDK code that panics on a status,
//! and only the callbacks HTTP filters use are exported.

use crate::host::{
    header_map, init_logging, mtls_principal, plugin_configuration, property, send_response,
    set_header, set_property, Action, MapType,
};
use crate::pairs::HeaderMap;
use crate::peer::{Key, PeerState, Published};
use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// Parses a plugin configuration; `None` after logging the field and the fix.
pub type Configure = fn(Option<&[u8]>) -> Option<Box<dyn Plugin>>;

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

/// What the filters of one module share about the request in one callback:
/// the request headers (read from Envoy once, then kept in step with the
/// changes each filter makes, so a later filter sees what it would see as a
/// separate filter), the mTLS principal, the filter state they wrote and the
/// caller peer_metadata published. Forgotten at the end of every callback:
/// between callbacks other filters may change all of them.
#[derive(Default)]
pub struct Exchange {
    request: Option<HeaderMap>,
    /// Whether `request` is Envoy's map, not the empty stand-in for a map
    /// Envoy could not give: only then does it tell which headers are absent.
    request_is_envoys: bool,
    principal: Option<Option<String>>,
    /// Filter state written in this callback: keys and values.
    written: HeaderMap,
    /// The caller published in this callback, when all its filter state was
    /// written: what a later filter would read back from that filter state.
    peer: Option<Rc<PeerState>>,
}

impl Exchange {
    /// The request headers as Envoy holds them now (valid in the request
    /// headers callback; empty where Envoy has none). Borrowed from the
    /// exchange, so no header can be written while they are read.
    pub fn request_headers(&mut self) -> &HeaderMap {
        let is_envoys = &mut self.request_is_envoys;
        self.request.get_or_insert_with(|| {
            let map = header_map(MapType::HttpRequestHeaders);
            *is_envoys = map.is_some();
            map.unwrap_or_default()
        })
    }

    /// Replaces every copy of a request header with one value, or removes them.
    pub fn set_request_header(&mut self, name: &str, value: Option<&[u8]>) {
        let name = lowercase(name);
        let absent =
            self.request_is_envoys && self.request.as_ref().is_some_and(|h| !h.contains(&name));
        let result = match value {
            // Nothing to remove: an append is the same edit, and Envoy does
            // less for it than for a replace.
            Some(value) if absent => {
                crate::host::add_header(MapType::HttpRequestHeaders, &name, value)
            }
            None if absent => Ok(()),
            _ => set_header(MapType::HttpRequestHeaders, &name, value),
        };
        if let Err(status) = result {
            log::debug!("request header {name} not changed (status {status})");
            return;
        }
        if let Some(headers) = &mut self.request {
            if !absent {
                headers.remove(&name);
            }
            if let Some(value) = value {
                headers.append(&name, value);
            }
        }
    }

    /// Appends one more copy of a request header.
    pub fn add_request_header(&mut self, name: &str, value: &[u8]) {
        let name = lowercase(name);
        if let Err(status) = crate::host::add_header(MapType::HttpRequestHeaders, &name, value) {
            log::debug!("request header {name} not added (status {status})");
            return;
        }
        if let Some(headers) = &mut self.request {
            headers.append(&name, value);
        }
    }

    /// Replaces every copy of a response header with one value, or removes them.
    pub fn set_response_header(&mut self, name: &str, value: Option<&[u8]>) {
        let name = lowercase(name);
        if let Err(status) = set_header(MapType::HttpResponseHeaders, &name, value) {
            log::debug!("response header {name} not changed (status {status})");
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
        if self.written.is_empty() {
            // Room for what a callback usually writes, grown once.
            self.written = HeaderMap::with_capacity(512, 16);
        }
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
    pub fn published_peer(&self, keys: &[Key]) -> Rc<PeerState> {
        match &self.peer {
            Some(peer) => peer.clone(),
            None => Rc::new(PeerState::read(keys, |key| self.filter_state(key.name()))),
        }
    }

    fn end_callback(&mut self) {
        self.request = None;
        self.request_is_envoys = false;
        self.principal = None;
        self.written = HeaderMap::default();
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
        for (i, part) in self.parts[..self.reached].iter_mut().enumerate() {
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

/// The configured plugins (root contexts) and the live streams of this VM.
/// Context ids grow, so both stay sorted by pushing at the end.
struct Contexts {
    roots: Vec<(u32, Option<Rc<dyn Plugin>>)>,
    streams: Vec<(u32, Stream)>,
}

thread_local! {
    static CONTEXTS: RefCell<Contexts> = const {
        RefCell::new(Contexts { roots: Vec::new(), streams: Vec::new() })
    };
    static CONFIGURE: Cell<Option<Configure>> = const { Cell::new(None) };
}

fn find<T>(list: &[(u32, T)], id: u32) -> Result<usize, usize> {
    list.binary_search_by_key(&id, |(k, _)| *k)
}

/// The module's start: every root context Envoy creates in this VM will
/// configure one plugin with `configure`.
pub fn register(configure: Configure) {
    CONFIGURE.with(|c| c.set(Some(configure)));
}

/// Runs `f` on the contexts; `None` if they are in use (a host call that
/// called back into the module, which Envoy does not do for these).
fn with_contexts<R>(f: impl FnOnce(&mut Contexts) -> R) -> Option<R> {
    CONTEXTS.with(|c| c.try_borrow_mut().ok().map(|mut c| f(&mut c)))
}

/// `proxy_on_context_create`: a root context (`parent` 0) or a stream of root `parent`.
pub fn on_context_create(id: u32, parent: u32) {
    with_contexts(|c| {
        if parent == 0 {
            if let Err(at) = find(&c.roots, id) {
                c.roots.insert(at, (id, None));
            }
            return;
        }
        let filter = find(&c.roots, parent)
            .ok()
            .and_then(|i| c.roots[i].1.as_ref().map(|p| p.stream()));
        let stream = Stream {
            filter,
            exchange: Exchange::default(),
        };
        match find(&c.streams, id) {
            Ok(i) => c.streams[i].1 = stream,
            Err(at) => c.streams.insert(at, (id, stream)),
        }
    });
}

/// `proxy_on_configure`: parses the plugin configuration; `false` refuses it.
pub fn on_configure(root: u32, size: usize) -> bool {
    init_logging();
    let raw = plugin_configuration(size);
    let configure = CONFIGURE.with(Cell::get);
    // Configuring may log or define stats (host calls), never call back in.
    let plugin: Option<Rc<dyn Plugin>> = configure.and_then(|f| f(raw.as_deref())).map(Rc::from);
    let ok = plugin.is_some();
    with_contexts(|c| match find(&c.roots, root) {
        Ok(i) => c.roots[i].1 = plugin,
        Err(at) => c.roots.insert(at, (root, plugin)),
    });
    ok
}

fn root_plugin(root: u32) -> Option<Rc<dyn Plugin>> {
    with_contexts(|c| find(&c.roots, root).ok().and_then(|i| c.roots[i].1.clone())).flatten()
}

/// `proxy_on_tick`.
pub fn on_tick(root: u32) {
    if let Some(plugin) = root_plugin(root) {
        plugin.on_tick();
    }
}

/// `proxy_on_http_call_response`.
pub fn on_http_call_response(root: u32, token: u32) {
    if let Some(plugin) = root_plugin(root) {
        plugin.on_http_call_response(token);
    }
}

/// A stream callback: runs `f` on stream `id`'s filter; `Continue` for an
/// unknown stream or one without a filter.
pub fn on_stream(id: u32, f: impl FnOnce(&mut dyn StreamFilter, &mut Exchange) -> Action) -> u32 {
    let action = with_contexts(|c| {
        let i = find(&c.streams, id).ok()?;
        let stream = &mut c.streams[i].1;
        let filter = stream.filter.as_mut()?;
        let action = f(filter.as_mut(), &mut stream.exchange);
        stream.exchange.end_callback();
        Some(action)
    });
    action.flatten().unwrap_or(Action::Continue) as u32
}

/// `proxy_on_delete`: forgets a stream or a root context.
pub fn on_delete(id: u32) {
    with_contexts(|c| {
        if let Ok(i) = find(&c.streams, id) {
            c.streams.remove(i);
        } else if let Ok(i) = find(&c.roots, id) {
            c.roots.remove(i);
        }
    });
}

/// Memory the host fills (`proxy_on_memory_allocate`); taken back by the
/// host-call wrappers in [`crate::host`] with exactly this capacity.
pub fn allocate(size: usize) -> *mut u8 {
    let mut buffer = std::mem::ManuallyDrop::new(Vec::<u8>::with_capacity(size));
    buffer.as_mut_ptr()
}

struct Stream {
    filter: Option<Box<dyn StreamFilter>>,
    exchange: Exchange,
}

/// The exports of an HTTP filter module, dispatching to `$configure`'s
/// plugins. With a list, only those callbacks are exported: Envoy skips a
/// callback the module does not export, which saves a call into the VM per
/// request for each one a filter does not need. `proxy_on_done` is never
/// exported: these filters have nothing to finish, and without it Envoy
/// treats every context as done at once.
#[macro_export]
macro_rules! http_module {
    ($configure:path) => {
        $crate::http_module!(
            $configure,
            [
                request_headers,
                request_body,
                request_trailers,
                response_headers,
                response_body,
                response_trailers,
                log,
                tick,
                http_call_response
            ]
        );
    };
    ($configure:path, [$($callback:ident),*]) => {
        #[cfg(target_os = "wasi")]
        extern "C" {
            fn __wasm_call_ctors();
        }

        #[no_mangle]
        pub extern "C" fn _initialize() {
            // SAFETY: the WASI reactor's constructors, run once before anything else.
            #[cfg(target_os = "wasi")]
            unsafe {
                __wasm_call_ctors();
            }
            $crate::host_plugin::register($configure);
        }

        #[no_mangle]
        pub extern "C" fn proxy_abi_version_0_2_1() {}

        #[no_mangle]
        pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
            $crate::host_plugin::allocate(size)
        }

        #[no_mangle]
        pub extern "C" fn proxy_on_vm_start(_root: u32, _size: usize) -> u32 {
            1
        }

        #[no_mangle]
        pub extern "C" fn proxy_on_configure(root: u32, size: usize) -> u32 {
            $crate::host_plugin::on_configure(root, size) as u32
        }

        #[no_mangle]
        pub extern "C" fn proxy_on_context_create(id: u32, parent: u32) {
            $crate::host_plugin::on_context_create(id, parent);
        }

        #[no_mangle]
        pub extern "C" fn proxy_on_delete(id: u32) {
            $crate::host_plugin::on_delete(id);
        }

        $($crate::http_callback!($callback);)*
    };
}

/// One optional export of [`http_module!`].
#[doc(hidden)]
#[macro_export]
macro_rules! http_callback {
    (request_headers) => {
        #[no_mangle]
        pub extern "C" fn proxy_on_request_headers(id: u32, _n: usize, end: u32) -> u32 {
            $crate::host_plugin::on_stream(id, |f, x| f.on_request_headers(x, end != 0))
        }
    };
    (request_body) => {
        #[no_mangle]
        pub extern "C" fn proxy_on_request_body(id: u32, size: usize, end: u32) -> u32 {
            $crate::host_plugin::on_stream(id, |f, x| f.on_request_body(x, size, end != 0))
        }
    };
    (request_trailers) => {
        #[no_mangle]
        pub extern "C" fn proxy_on_request_trailers(id: u32, _n: usize) -> u32 {
            $crate::host_plugin::on_stream(id, |f, x| f.on_request_trailers(x))
        }
    };
    (response_headers) => {
        #[no_mangle]
        pub extern "C" fn proxy_on_response_headers(id: u32, _n: usize, end: u32) -> u32 {
            $crate::host_plugin::on_stream(id, |f, x| f.on_response_headers(x, end != 0))
        }
    };
    (response_body) => {
        #[no_mangle]
        pub extern "C" fn proxy_on_response_body(id: u32, size: usize, end: u32) -> u32 {
            $crate::host_plugin::on_stream(id, |f, x| f.on_response_body(x, size, end != 0))
        }
    };
    (response_trailers) => {
        #[no_mangle]
        pub extern "C" fn proxy_on_response_trailers(id: u32, _n: usize) -> u32 {
            $crate::host_plugin::on_stream(id, |f, x| f.on_response_trailers(x))
        }
    };
    (log) => {
        #[no_mangle]
        pub extern "C" fn proxy_on_log(id: u32) {
            $crate::host_plugin::on_stream(id, |f, x| {
                f.on_log(x);
                $crate::host::Action::Continue
            });
        }
    };
    (tick) => {
        #[no_mangle]
        pub extern "C" fn proxy_on_tick(root: u32) {
            $crate::host_plugin::on_tick(root);
        }
    };
    (http_call_response) => {
        #[no_mangle]
        pub extern "C" fn proxy_on_http_call_response(
            root: u32,
            token: u32,
            _headers: usize,
            _body: usize,
            _trailers: usize,
        ) {
            $crate::host_plugin::on_http_call_response(root, token);
        }
    };
}
