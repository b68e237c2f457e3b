//! The proxy-wasm shell: decides at connection start whether to tap, copies
//! at most the configured bytes of each chunk as it passes (always returning
//! `Continue`: bytes are never held or changed), and hands records over at
//! close, and, for segmented connections, every `segment.bytes` bytes or on
//! the root's tick every `segment.interval_ms`.

use crate::config::Config;
use crate::matcher::{address_ip, View};
use crate::trace::{Connection, Direction, Trace, TraceLimits};
use filter_common::host::plugin::{ConnectionFilter, NetworkPlugin};
use filter_common::host::sink::{Sink, SinkRoot, SinkStats};
use filter_common::host::tap::RecordBudget;
use filter_common::host::{
    buffer, load_config, now_nanos, property_string, property_u64, set_effective_context, Action,
    BufferType, Counter,
};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

const FILTER: &str = "tap_tcp";

#[derive(Clone, Copy)]
struct Stats {
    tapped: Counter,
    segments: Counter,
    not_matched: Counter,
    sampled_out: Counter,
    rate_limited: Counter,
    truncated: Counter,
    sink: SinkStats,
}

impl Stats {
    fn define() -> Stats {
        let c = |name: &str| Counter::define(&format!("{FILTER}.{name}"));
        Stats {
            tapped: c("tapped"),
            segments: c("segments"),
            not_matched: c("not_matched"),
            sampled_out: c("sampled_out"),
            rate_limited: c("rate_limited"),
            truncated: c("truncated"),
            sink: SinkStats {
                errors: c("sink_errors"),
                dropped: c("sink_dropped"),
            },
        }
    }
}

/// One tapped connection: what its next record holds.
struct Tapped {
    connection: Connection,
    trace: Trace,
    sequence: u64,
}

/// What every connection of one plugin shares (one VM is single-threaded).
struct Shared {
    config: Config,
    stats: Stats,
    sink: Sink,
    budget: RecordBudget,
    /// Tapped connections by context id, for time-driven segments.
    live: RefCell<BTreeMap<u32, Rc<RefCell<Tapped>>>>,
}

impl Shared {
    /// Hands over the record of `tapped` (the final one when `closed_at` is
    /// set) and starts its next segment.
    fn emit(&self, tapped: &mut Tapped, closed_at: Option<u64>) {
        let sequence = self.config.segment.map(|_| tapped.sequence);
        let record = tapped.trace.render(
            &tapped.connection,
            self.config.data_format,
            sequence,
            closed_at,
        );
        log::debug!(
            "{FILTER}: record {} of connection {} ({} bytes of JSON){}",
            tapped.sequence,
            tapped.connection.trace_id,
            record.len(),
            if closed_at.is_some() { ", final" } else { "" }
        );
        if self.sink.emit(record, self.stats.sink) {
            if closed_at.is_some() {
                self.stats.tapped.inc();
            } else {
                self.stats.segments.inc();
            }
            if tapped.trace.truncated() {
                self.stats.truncated.inc();
            }
        }
        tapped.sequence += 1;
        tapped.trace.restart();
    }
}

/// Parses the plugin configuration and starts the sink; `None` refuses it.
pub fn configure(raw: Option<&[u8]>) -> Option<Box<dyn NetworkPlugin>> {
    let config = load_config(FILTER, raw, Config::parse)?;
    let stats = Stats::define();
    let segment_ms = config.segment.and_then(|s| s.interval_ms);
    let tick = segment_ms.map(Duration::from_millis);
    let (sink, sink_root) = SinkRoot::start(FILTER, &config.sink, stats.sink, tick)?;
    let budget = RecordBudget::new(FILTER, &config.budget);
    Some(Box::new(Root {
        shared: Rc::new(Shared {
            config,
            stats,
            sink,
            budget,
            live: RefCell::new(BTreeMap::new()),
        }),
        sink_root: RefCell::new(sink_root),
        segment_interval_nanos: segment_ms.map(|ms| ms * 1_000_000),
        next_segment_nanos: Cell::new(0),
    }))
}

struct Root {
    shared: Rc<Shared>,
    sink_root: RefCell<SinkRoot>,
    segment_interval_nanos: Option<u64>,
    next_segment_nanos: Cell<u64>,
}

impl NetworkPlugin for Root {
    fn connection(&self, id: u32) -> Box<dyn ConnectionFilter> {
        Box::new(Conn {
            id,
            shared: self.shared.clone(),
            tapped: None,
        })
    }

    fn on_tick(&self) {
        let now = now_nanos();
        self.sink_root.borrow_mut().on_tick(now);
        let Some(interval) = self.segment_interval_nanos else {
            return;
        };
        if now < self.next_segment_nanos.get() {
            return;
        }
        self.next_segment_nanos.set(now.saturating_add(interval));
        let shared = &self.shared;
        let live: Vec<(u32, Rc<RefCell<Tapped>>)> = shared
            .live
            .borrow()
            .iter()
            .map(|(id, tapped)| (*id, tapped.clone()))
            .collect();
        for (id, tapped) in live {
            let mut tapped = tapped.borrow_mut();
            // Filter state belongs to the connection: act in its context.
            if tapped.trace.is_empty() || !set_effective_context(id) {
                continue;
            }
            shared.emit(&mut tapped, None);
        }
    }

    fn on_http_call_response(&self, token: u32) {
        self.sink_root.borrow_mut().on_http_call_response(token);
    }
}

struct Conn {
    id: u32,
    shared: Rc<Shared>,
    /// Set while this connection is being recorded.
    tapped: Option<Rc<RefCell<Tapped>>>,
}

fn connection_view_matches(shared: &Shared, connection: &Connection) -> bool {
    if shared.config.matcher.is_any() {
        return true;
    }
    let sni = property_string(&["connection", "requested_server_name"]);
    let view = View {
        source: address_ip(&connection.remote_address),
        destination: address_ip(&connection.local_address),
        destination_port: property_u64(&["destination", "port"])
            .and_then(|p| u16::try_from(p).ok()),
        sni: sni.as_deref(),
    };
    shared.config.matcher.eval(&view) == Some(true)
}

impl Conn {
    fn start(&mut self) {
        let shared = &self.shared;
        if !shared.budget.sample() {
            shared.stats.sampled_out.inc();
            return;
        }
        let connection = Connection {
            trace_id: property_u64(&["connection", "id"]).unwrap_or_default(),
            local_address: property_string(&["destination", "address"]).unwrap_or_default(),
            remote_address: property_string(&["source", "address"]).unwrap_or_default(),
        };
        if !connection_view_matches(shared, &connection) {
            shared.stats.not_matched.inc();
            return;
        }
        if !shared.budget.take() {
            shared.stats.rate_limited.inc();
            return;
        }
        log::debug!(
            "{FILTER}: recording connection {} from {} to {}",
            connection.trace_id,
            connection.remote_address,
            connection.local_address
        );
        let config = &shared.config;
        let tapped = Rc::new(RefCell::new(Tapped {
            connection,
            trace: Trace::new(TraceLimits {
                read_bytes: config.max_read_bytes,
                write_bytes: config.max_write_bytes,
                events: config.max_events,
            }),
            sequence: 0,
        }));
        if config.segment.is_some_and(|s| s.interval_ms.is_some()) {
            shared.live.borrow_mut().insert(self.id, tapped.clone());
        }
        self.tapped = Some(tapped);
    }

    fn observe(&mut self, direction: Direction, size: usize, end_stream: bool) {
        let Some(tapped) = &self.tapped else {
            return;
        };
        let shared = &self.shared;
        let mut tapped = tapped.borrow_mut();
        let room = tapped.trace.room(direction).min(size);
        let kept = if room > 0 {
            let kind = match direction {
                Direction::Read => BufferType::DownstreamData,
                Direction::Write => BufferType::UpstreamData,
            };
            buffer(kind, 0, room)
        } else {
            Vec::new()
        };
        tapped
            .trace
            .push(direction, now_nanos(), &kept, size, end_stream);
        let due = shared
            .config
            .segment
            .and_then(|s| s.bytes)
            .is_some_and(|bytes| tapped.trace.observed() >= bytes);
        if due {
            shared.emit(&mut tapped, None);
        }
    }

    /// The final record, once: at close, or when Envoy drops the context.
    fn finish(&mut self) {
        let Some(tapped) = self.tapped.take() else {
            return;
        };
        let shared = &self.shared;
        shared.live.borrow_mut().remove(&self.id);
        shared.emit(&mut tapped.borrow_mut(), Some(now_nanos()));
    }
}

impl Drop for Conn {
    /// A context Envoy deletes without `on_done` must not stay on the tick's list.
    fn drop(&mut self) {
        self.shared.live.borrow_mut().remove(&self.id);
    }
}

impl ConnectionFilter for Conn {
    fn on_new_connection(&mut self) -> Action {
        self.start();
        Action::Continue
    }

    fn on_downstream_data(&mut self, size: usize, end_of_stream: bool) -> Action {
        self.observe(Direction::Read, size, end_of_stream);
        Action::Continue
    }

    fn on_upstream_data(&mut self, size: usize, end_of_stream: bool) -> Action {
        self.observe(Direction::Write, size, end_of_stream);
        Action::Continue
    }

    fn on_downstream_close(&mut self) {
        self.finish();
    }

    fn on_done(&mut self) {
        self.finish();
    }
}
