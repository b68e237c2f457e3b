//! How a filter runs in Envoy. A filter is a [`Plugin`] (what one plugin
//! configuration holds: config, stats, caches) that makes a [`StreamFilter`]
//! per request. A filter's own module runs one plugin; `suite.wasm` runs
//! several as one [`Chain`], in one Wasm context per request, so the boundary
//! cost (context creation, one call per callback) is paid once, and the
//! request headers are read once and shared through the [`Exchange`].

use crate::host::{
    header_map, init_logging, mtls_principal, property, send_response, set_header, set_property,
};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, MapType};
use std::cell::Cell;
use std::rc::Rc;

pub type Headers = Vec<(String, Vec<u8>)>;

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
}

/// What the filters of one module share about the request in one callback:
/// the request headers (read from Envoy once, then kept in step with the
/// changes each filter makes, so a later filter sees what it would see as a
/// separate filter), the mTLS principal, and the filter state they wrote.
/// Forgotten at the end of every callback: between callbacks other filters
/// may change all three.
#[derive(Default)]
pub struct Exchange {
    request: Option<Rc<Headers>>,
    principal: Option<Option<String>>,
    written: Vec<(String, Vec<u8>)>,
}

impl Exchange {
    /// The request headers as Envoy holds them now (valid in the request
    /// headers callback; empty where Envoy has none).
    pub fn request_headers(&mut self) -> Rc<Headers> {
        self.request
            .get_or_insert_with(|| {
                Rc::new(header_map(MapType::HttpRequestHeaders).unwrap_or_default())
            })
            .clone()
    }

    /// Replaces every copy of a request header with one value, or removes them.
    pub fn set_request_header(&mut self, name: &str, value: Option<&[u8]>) {
        if let Err(status) = set_header(MapType::HttpRequestHeaders, name, value) {
            log::debug!("request header {name} not changed (status {status})");
            return;
        }
        if let Some(cached) = &mut self.request {
            let name = name.to_ascii_lowercase();
            let headers = Rc::make_mut(cached);
            headers.retain(|(n, _)| *n != name);
            if let Some(value) = value {
                headers.push((name, value.to_vec()));
            }
        }
    }

    /// Appends one more copy of a request header.
    pub fn add_request_header(&mut self, name: &str, value: &[u8]) {
        if let Err(status) = crate::host::add_header(MapType::HttpRequestHeaders, name, value) {
            log::debug!("request header {name} not added (status {status})");
            return;
        }
        if let Some(cached) = &mut self.request {
            Rc::make_mut(cached).push((name.to_ascii_lowercase(), value.to_vec()));
        }
    }

    /// Replaces every copy of a response header with one value, or removes them.
    pub fn set_response_header(&mut self, name: &str, value: Option<&[u8]>) {
        if let Err(status) = set_header(MapType::HttpResponseHeaders, name, value) {
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
        self.written.retain(|(k, _)| k != key);
        self.written.push((key.to_string(), value.to_vec()));
        Ok(())
    }

    /// Filter state `wasm.<key>`: what a filter of this module wrote in this
    /// callback, else what Envoy holds.
    pub fn filter_state(&self, key: &str) -> Option<Vec<u8>> {
        match self.written.iter().find(|(k, _)| k == key) {
            Some((_, value)) => Some(value.clone()),
            None => property(&[key]),
        }
    }

    fn end_callback(&mut self) {
        self.request = None;
        self.principal = None;
        self.written.clear();
    }
}

/// Several filters run as one, in order. A filter that stops the request
/// (a local reply) ends that callback: later filters do not see it, as with
/// separate filters in Envoy's chain.
pub struct Chain(pub Vec<Box<dyn Plugin>>);

impl Plugin for Chain {
    fn stream(&self) -> Box<dyn StreamFilter> {
        Box::new(ChainStream(self.0.iter().map(|p| p.stream()).collect()))
    }

    fn on_tick(&self) {
        self.0.iter().for_each(|p| p.on_tick());
    }

    fn on_http_call_response(&self, token: u32) {
        self.0.iter().for_each(|p| p.on_http_call_response(token));
    }
}

struct ChainStream(Vec<Box<dyn StreamFilter>>);

impl ChainStream {
    fn each(&mut self, mut f: impl FnMut(&mut dyn StreamFilter) -> Action) -> Action {
        for part in &mut self.0 {
            let action = f(part.as_mut());
            if action != Action::Continue {
                return action;
            }
        }
        Action::Continue
    }
}

impl StreamFilter for ChainStream {
    fn on_request_headers(&mut self, x: &mut Exchange, end_of_stream: bool) -> Action {
        self.each(|f| f.on_request_headers(x, end_of_stream))
    }
    fn on_request_body(&mut self, x: &mut Exchange, size: usize, end_of_stream: bool) -> Action {
        self.each(|f| f.on_request_body(x, size, end_of_stream))
    }
    fn on_request_trailers(&mut self, x: &mut Exchange) -> Action {
        self.each(|f| f.on_request_trailers(x))
    }
    fn on_response_headers(&mut self, x: &mut Exchange, end_of_stream: bool) -> Action {
        self.each(|f| f.on_response_headers(x, end_of_stream))
    }
    fn on_response_body(&mut self, x: &mut Exchange, size: usize, end_of_stream: bool) -> Action {
        self.each(|f| f.on_response_body(x, size, end_of_stream))
    }
    fn on_response_trailers(&mut self, x: &mut Exchange) -> Action {
        self.each(|f| f.on_response_trailers(x))
    }
    fn on_log(&mut self, x: &mut Exchange) {
        self.0.iter_mut().for_each(|f| f.on_log(x));
    }
}

thread_local! {
    static CONFIGURE: Cell<Option<Configure>> = const { Cell::new(None) };
}

/// The module's entry point: every root context Envoy creates in this VM
/// configures one plugin with `configure`.
pub fn register(configure: Configure) {
    CONFIGURE.with(|c| c.set(Some(configure)));
    proxy_wasm::set_root_context(|_| {
        Box::new(Root {
            configure: CONFIGURE.with(Cell::get),
            plugin: None,
        })
    });
}

struct Root {
    configure: Option<Configure>,
    plugin: Option<Rc<dyn Plugin>>,
}

impl Context for Root {
    fn on_http_call_response(&mut self, token: u32, _: usize, _: usize, _: usize) {
        if let Some(plugin) = &self.plugin {
            plugin.on_http_call_response(token);
        }
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        init_logging();
        let raw = self.get_plugin_configuration();
        self.plugin = self
            .configure
            .and_then(|configure| configure(raw.as_deref()))
            .map(Rc::from);
        self.plugin.is_some()
    }

    fn on_tick(&mut self) {
        if let Some(plugin) = &self.plugin {
            plugin.on_tick();
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        // Envoy creates no stream for a plugin whose configuration failed;
        // should one come anyway, it passes through.
        Some(Box::new(Stream {
            filter: self.plugin.as_ref().map(|p| p.stream()),
            exchange: Exchange::default(),
        }))
    }
}

struct Stream {
    filter: Option<Box<dyn StreamFilter>>,
    exchange: Exchange,
}

impl Stream {
    fn call(&mut self, f: impl FnOnce(&mut dyn StreamFilter, &mut Exchange) -> Action) -> Action {
        let Some(filter) = &mut self.filter else {
            return Action::Continue;
        };
        let action = f(filter.as_mut(), &mut self.exchange);
        self.exchange.end_callback();
        action
    }
}

impl Context for Stream {}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.call(|f, x| f.on_request_headers(x, end_of_stream))
    }
    fn on_http_request_body(&mut self, size: usize, end_of_stream: bool) -> Action {
        self.call(|f, x| f.on_request_body(x, size, end_of_stream))
    }
    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        self.call(|f, x| f.on_request_trailers(x))
    }
    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.call(|f, x| f.on_response_headers(x, end_of_stream))
    }
    fn on_http_response_body(&mut self, size: usize, end_of_stream: bool) -> Action {
        self.call(|f, x| f.on_response_body(x, size, end_of_stream))
    }
    fn on_http_response_trailers(&mut self, _num_trailers: usize) -> Action {
        self.call(|f, x| f.on_response_trailers(x))
    }
    fn on_log(&mut self) {
        self.call(|f, x| {
            f.on_log(x);
            Action::Continue
        });
    }
}
