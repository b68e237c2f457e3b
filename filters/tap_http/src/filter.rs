//! The proxy-wasm shell: copies bodies and request trailers out of Envoy as
//! they stream past (never pausing a stream), and writes the record when the
//! stream is logged. Envoy exposes the final request and response headers and
//! the response trailers only then (during a callback it shows just the map of
//! that callback), and runs this filter's log callback before the connection
//! manager's access logs, so the file access log finds the record.

use crate::config::Config;
use crate::matcher::View;
use crate::record::{Extras, Format, Message, StreamInfo};
use filter_common::capture::Capture;
use filter_common::host::{
    buffer, header_map, init_logging, load_config, now_nanos, property_string, property_u64,
    Counter,
};
use filter_common::host_sink::{Sink, SinkRoot, SinkStats};
use filter_common::host_tap::RecordBudget;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, MapType};
use std::rc::Rc;

const FILTER: &str = "tap_http";

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| Box::new(Root::default()));
}}

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

#[derive(Default)]
struct Root {
    shared: Option<Rc<Shared>>,
    sink_root: SinkRoot,
}

impl Context for Root {
    fn on_http_call_response(&mut self, token: u32, _: usize, _: usize, _: usize) {
        self.sink_root.on_http_call_response(token);
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        init_logging();
        let Some(config) = load_config(FILTER, self.get_plugin_configuration(), Config::parse)
        else {
            return false;
        };
        let stats = Stats::define();
        let Some((sink, sink_root)) = SinkRoot::start(FILTER, &config.sink, stats.sink, None)
        else {
            return false;
        };
        self.sink_root = sink_root;
        let budget = RecordBudget::new(FILTER, &config.budget);
        self.shared = Some(Rc::new(Shared {
            config,
            stats,
            sink,
            budget,
        }));
        true
    }

    fn on_tick(&mut self) {
        self.sink_root.on_tick(now_nanos());
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        // Without a configuration (Envoy never creates streams then) a stream
        // records nothing: an observer fails open.
        let shared = self.shared.clone();
        let (request_limit, response_limit) = shared.as_ref().map_or((0, 0), |s| {
            (s.config.max_request_bytes, s.config.max_response_bytes)
        });
        Some(Box::new(Stream {
            recording: shared.is_some(),
            shared,
            request_body: Capture::new(request_limit),
            response_body: Capture::new(response_limit),
            request_trailers: None,
            response_complete: false,
        }))
    }
}

struct Stream {
    shared: Option<Rc<Shared>>,
    /// Still copying data for a record that may yet be written.
    recording: bool,
    request_body: Capture,
    response_body: Capture,
    request_trailers: Option<Vec<(String, Vec<u8>)>>,
    /// The response reached its end; otherwise the record is incomplete.
    response_complete: bool,
}

impl Context for Stream {}

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

    /// Builds, matches and emits the record, in the log phase.
    fn finish(&mut self) {
        self.recording = false;
        let incomplete = !self.response_complete;
        let Some(shared) = self.shared.clone() else {
            return;
        };
        let (config, stats) = (&shared.config, shared.stats);
        let request_headers = header_map(MapType::HttpRequestHeaders).unwrap_or_default();
        let response_headers = header_map(MapType::HttpResponseHeaders).filter(|h| !h.is_empty());
        let response_trailers = header_map(MapType::HttpResponseTrailers).filter(|h| !h.is_empty());
        let view = View {
            request: &request_headers,
            response: response_headers.as_deref(),
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
        };
        let format = Format {
            body: config.body_format,
            redact: &config.redact_headers,
        };
        let record = format.render(
            &Message {
                headers: &request_headers,
                body: &self.request_body,
                trailers: self.request_trailers.as_deref(),
            },
            &Message {
                headers: response_headers.as_deref().unwrap_or_default(),
                body: &self.response_body,
                trailers: response_trailers.as_deref(),
            },
            &extras,
        );
        if shared.sink.emit(record, stats.sink) {
            stats.tapped.inc();
            if self.request_body.truncated() || self.response_body.truncated() {
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

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(shared) = self.shared.clone() else {
            return Action::Continue;
        };
        if !shared.budget.sample() {
            shared.stats.sampled_out.inc();
            self.recording = false;
            return Action::Continue;
        }
        if !shared.config.matcher.is_any() {
            let headers = header_map(MapType::HttpRequestHeaders).unwrap_or_default();
            let view = View {
                request: &headers,
                response: None,
            };
            if shared.config.matcher.eval(&view) == Some(false) {
                shared.stats.not_matched.inc();
                self.recording = false;
            }
        }
        Action::Continue
    }

    fn on_http_request_body(&mut self, body_size: usize, _end_of_stream: bool) -> Action {
        if self.recording {
            self.capture(BufferType::HttpRequestBody, body_size);
        }
        Action::Continue
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        if self.recording {
            self.request_trailers = header_map(MapType::HttpRequestTrailers);
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.response_complete |= end_of_stream;
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if self.recording {
            self.capture(BufferType::HttpResponseBody, body_size);
        }
        self.response_complete |= end_of_stream;
        Action::Continue
    }

    fn on_http_response_trailers(&mut self, _num_trailers: usize) -> Action {
        self.response_complete = true;
        Action::Continue
    }

    fn on_log(&mut self) {
        if self.recording {
            self.finish();
        }
    }
}
