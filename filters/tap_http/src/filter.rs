//! The proxy-wasm shell: copies bodies and request trailers out of Envoy as
//! they stream past (never pausing a stream), and writes the record when the
//! stream is logged. Envoy exposes the final request and response headers and
//! the response trailers only then (during a callback it shows just the map of
//! that callback), and runs this filter's log callback before the connection
//! manager's access logs, so the file access log finds the record.

use crate::config::Config;
use crate::matcher::View;
use crate::record::{Extras, Format, Message, StreamInfo, CALLER_KEYS};
use filter_common::header::pairs::HeaderMap;
use filter_common::host::plugin::{Exchange, Map, Plugin, StreamFilter};
use filter_common::host::sink::{Sink, SinkRoot, SinkStats};
use filter_common::host::tap::RecordBudget;
use filter_common::host::{
    buffer, load_config, mtls_principal, now_nanos, property, property_string, property_u64,
    Counter,
};
use filter_common::host::{Action, BufferType};
use filter_common::peer::Peer;
use filter_common::tap::capture::Capture;
use std::cell::RefCell;
use std::rc::Rc;

const FILTER: &str = "tap_http";

#[derive(Clone, Copy)]
struct Stats {
    tapped: Counter,
    not_matched: Counter,
    sampled_out: Counter,
    rate_limited: Counter,
    truncated: Counter,
    incomplete: Counter,
    sink: SinkStats,
}

impl Stats {
    fn define() -> Stats {
        let c = |name: &str| Counter::define(&format!("{FILTER}.{name}"));
        Stats {
            tapped: c("tapped"),
            not_matched: c("not_matched"),
            sampled_out: c("sampled_out"),
            rate_limited: c("rate_limited"),
            truncated: c("truncated"),
            incomplete: c("incomplete"),
            sink: SinkStats {
                errors: c("sink_errors"),
                dropped: c("sink_dropped"),
            },
        }
    }
}

/// What every stream of one plugin shares (one VM is single-threaded).
struct Shared {
    config: Config,
    stats: Stats,
    sink: Sink,
    budget: RecordBudget,
}

/// The plugin for one configuration; `None` after logging what is wrong.
pub fn configure(raw: Option<&[u8]>) -> Option<Box<dyn Plugin>> {
    plugin(load_config(FILTER, raw, Config::parse)?)
}

/// The plugin for a parsed configuration (the suite parses its own).
pub fn plugin(config: Config) -> Option<Box<dyn Plugin>> {
    let stats = Stats::define();
    let (sink, sink_root) = SinkRoot::start(FILTER, &config.sink, stats.sink, None)?;
    let budget = RecordBudget::new(FILTER, &config.budget);
    Some(Box::new(TapHttp {
        shared: Rc::new(Shared {
            config,
            stats,
            sink,
            budget,
        }),
        sink_root: RefCell::new(sink_root),
    }))
}

struct TapHttp {
    shared: Rc<Shared>,
    sink_root: RefCell<SinkRoot>,
}

impl Plugin for TapHttp {
    fn stream(&self) -> Box<dyn StreamFilter> {
        let config = &self.shared.config;
        Box::new(Stream {
            shared: self.shared.clone(),
            recording: true,
            request_body: Capture::new(config.max_request_bytes),
            response_body: Capture::new(config.max_response_bytes),
            request_trailers: None,
            response_complete: false,
        })
    }

    fn on_tick(&self) {
        self.sink_root.borrow_mut().on_tick(now_nanos());
    }

    fn on_http_call_response(&self, token: u32) {
        self.sink_root.borrow_mut().on_http_call_response(token);
    }
}

struct Stream {
    shared: Rc<Shared>,
    /// Still copying data for a record that may yet be written.
    recording: bool,
    request_body: Capture,
    response_body: Capture,
    request_trailers: Option<HeaderMap>,
    /// The response reached its end; otherwise the record is incomplete.
    response_complete: bool,
}

impl Stream {
    fn capture(&mut self, kind: BufferType, size: usize) {
        let capture = match kind {
            BufferType::HttpRequestBody => &mut self.request_body,
            _ => &mut self.response_body,
        };
        let room = capture.room().min(size);
        let kept = if room > 0 {
            buffer(kind, 0, room)
        } else {
            Vec::new()
        };
        capture.push(&kept, size);
    }

    /// Whether the request's conditions already rule the stream out (counted
    /// as not matched). `request_final`: no filter will change `request`.
    fn ruled_out(&self, request: &HeaderMap, request_final: bool) -> bool {
        let view = View {
            request,
            request_final,
            response: None,
        };
        let out = self.shared.config.matcher.eval(&view) == Some(false);
        if out {
            self.shared.stats.not_matched.inc();
        }
        out
    }

    /// Builds, matches and emits the record, in the log phase.
    fn finish(&mut self, x: &mut Exchange) {
        self.recording = false;
        let incomplete = !self.response_complete;
        let shared = self.shared.clone();
        let (config, stats) = (&shared.config, shared.stats);
        let request_headers = x.headers(Map::Request);
        // The request's conditions first: a stream they rule out needs no
        // response maps from Envoy.
        if self.ruled_out(request_headers, true) {
            return;
        }
        let response_headers = Some(x.headers(Map::Response)).filter(|h| !h.is_empty());
        let response_trailers = Some(x.headers(Map::ResponseTrailers)).filter(|h| !h.is_empty());
        let view = View {
            request: request_headers,
            request_final: true,
            response: response_headers,
        };
        // Unknown at the end means the response never came: no match.
        if config.matcher.eval(&view) != Some(true) {
            stats.not_matched.inc();
            return;
        }
        if !shared.budget.take() {
            stats.rate_limited.inc();
            return;
        }
        let extras = Extras {
            downstream: config
                .record_downstream_connection
                .then(downstream_addresses),
            stream_info: config.record_stream_info.then(stream_info),
            incomplete,
            peer: mtls_principal(),
            // From Envoy's filter state, which no client can set; in the
            // suite too: peer_metadata's part wrote it in an earlier callback.
            caller: Peer::read_published(&CALLER_KEYS, |key| property(&[key.name()])),
        };
        let no_headers = HeaderMap::default();
        let format = Format {
            body: config.body_format,
            redact: &config.redaction,
        };
        let record = format.render(
            &Message {
                headers: request_headers,
                body: &self.request_body,
                trailers: self.request_trailers.as_ref(),
            },
            &Message {
                headers: response_headers.unwrap_or(&no_headers),
                body: &self.response_body,
                trailers: response_trailers,
            },
            &extras,
        );
        if shared.sink.emit(record, stats.sink) {
            stats.tapped.inc();
            // A body past a cap of 0 (bodies off) is not news.
            let cut = |c: &Capture, cap: usize| cap > 0 && c.truncated();
            if cut(&self.request_body, config.max_request_bytes)
                || cut(&self.response_body, config.max_response_bytes)
            {
                stats.truncated.inc();
            }
            if incomplete {
                stats.incomplete.inc();
            }
        }
    }
}

fn downstream_addresses() -> (String, String) {
    (
        property_string(&["destination", "address"]).unwrap_or_default(),
        property_string(&["source", "address"]).unwrap_or_default(),
    )
}

fn stream_info() -> StreamInfo {
    StreamInfo {
        start_time_nanos: property_u64(&["request", "time"]),
        duration_nanos: property_u64(&["request", "duration"]),
        request_id: property_string(&["request", "id"]),
        response_code: property_u64(&["response", "code"]),
        response_code_details: property_string(&["response", "code_details"]),
        response_flags: property_u64(&["response", "flags"]),
        upstream_address: property_string(&["upstream", "address"]),
    }
}

impl StreamFilter for Stream {
    fn on_request_headers(&mut self, x: &mut Exchange, _end_of_stream: bool) -> Action {
        let shared = &self.shared;
        if !shared.budget.sample() {
            shared.stats.sampled_out.inc();
            self.recording = false;
            return Action::Continue;
        }
        if !shared.config.matcher.is_any() {
            let headers = x.headers(Map::Request);
            if self.ruled_out(headers, false) {
                self.recording = false;
            }
        }
        Action::Continue
    }

    /// In the suite the request headers the parts after the tap left are in
    /// memory: its request-header conditions are decided now, so a stream
    /// they rule out costs no header read when it ends.
    fn after_chain_request_headers(&mut self, x: &mut Exchange) {
        if !self.recording || self.shared.config.matcher.is_any() {
            return;
        }
        let headers = x.headers(Map::Request);
        if self.ruled_out(headers, true) {
            self.recording = false;
        }
    }

    fn on_request_body(&mut self, _x: &mut Exchange, size: usize, _end_of_stream: bool) -> Action {
        if self.recording {
            self.capture(BufferType::HttpRequestBody, size);
        }
        Action::Continue
    }

    fn on_request_trailers(&mut self, x: &mut Exchange) -> Action {
        if self.recording {
            self.request_trailers = x.take_headers(Map::RequestTrailers);
        }
        Action::Continue
    }

    fn on_response_headers(&mut self, _x: &mut Exchange, end_of_stream: bool) -> Action {
        self.response_complete |= end_of_stream;
        Action::Continue
    }

    fn on_response_body(&mut self, _x: &mut Exchange, size: usize, end_of_stream: bool) -> Action {
        if self.recording {
            self.capture(BufferType::HttpResponseBody, size);
        }
        self.response_complete |= end_of_stream;
        Action::Continue
    }

    fn on_response_trailers(&mut self, _x: &mut Exchange) -> Action {
        self.response_complete = true;
        Action::Continue
    }

    fn on_log(&mut self, x: &mut Exchange) {
        if self.recording {
            self.finish(x);
        }
    }
}
