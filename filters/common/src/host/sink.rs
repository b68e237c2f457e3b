//! The host side of the record sinks: filter state, log, HTTP collector.

use super::calls::{header_value, http_call, set_property, set_tick_period, Counter};
use super::types::MapType;
use crate::tap::sink::{RecordQueue, SinkConfig};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

/// Batches a collector may have unanswered at once; more wait in the queue.
const MAX_IN_FLIGHT: usize = 4;

/// Counters every tap filter keeps for its sink.
#[derive(Clone, Copy, Debug)]
pub struct SinkStats {
    pub errors: Counter,
    pub dropped: Counter,
}

/// What a stream context holds to hand a finished record over.
#[derive(Clone)]
pub enum Sink {
    FilterState(Rc<str>),
    Log(log::Level),
    Http(Rc<RefCell<RecordQueue>>),
}

impl Sink {
    /// Hands one record over; `false` (and a counted error or drop) when it is lost.
    pub fn emit(&self, record: String, stats: SinkStats) -> bool {
        match self {
            Sink::FilterState(key) => match set_property(key, record.as_bytes()) {
                Ok(()) => true,
                Err(status) => {
                    log::warn!(
                        "cannot store the record in filter state wasm.{key} (status {status})"
                    );
                    stats.errors.inc();
                    false
                }
            },
            Sink::Log(level) => {
                log::log!(*level, "{record}");
                true
            }
            Sink::Http(queue) => {
                let queued = queue.borrow_mut().push(record);
                if !queued {
                    stats.dropped.inc();
                }
                queued
            }
        }
    }
}

/// The root context's half of the HTTP sink: sends queued records in batches.
struct Collector {
    queue: Rc<RefCell<RecordQueue>>,
    cluster: String,
    path: String,
    authority: String,
    batch_size: usize,
    timeout: Duration,
    in_flight: Vec<(u32, usize)>,
    stats: SinkStats,
    period_nanos: u64,
    next_flush_nanos: u64,
}

/// The root context's side of a sink: the HTTP collector, if any, flushed
/// from the root's tick and told about the collector's answers.
#[derive(Default)]
pub struct SinkRoot {
    collector: Option<Collector>,
}

impl SinkRoot {
    /// Builds the sink and schedules the root's tick: at the HTTP collector's
    /// flush interval, or at `tick` if the filter needs it more often. `None`,
    /// after logging why, if the host refuses the tick.
    pub fn start(
        filter: &str,
        config: &SinkConfig,
        stats: SinkStats,
        tick: Option<Duration>,
    ) -> Option<(Sink, SinkRoot)> {
        let (sink, collector) = build(config, stats);
        let period = [collector.as_ref().map(|(_, period)| *period), tick]
            .into_iter()
            .flatten()
            .min();
        if let Some(period) = period {
            if let Err(status) = set_tick_period(period) {
                log::error!("{filter}: cannot schedule the root context's tick: status {status}");
                return None;
            }
        }
        let collector = collector.map(|(collector, _)| collector);
        Some((sink, SinkRoot { collector }))
    }

    /// Sends queued records when the collector's flush interval has passed.
    pub fn on_tick(&mut self, now_nanos: u64) {
        if let Some(collector) = &mut self.collector {
            collector.on_tick(now_nanos);
        }
    }

    /// Accounts for the collector's answer to batch `token` (from the root
    /// context's `on_http_call_response`).
    pub fn on_http_call_response(&mut self, token: u32) {
        if let Some(collector) = &mut self.collector {
            collector.on_http_call_response(token);
        }
    }
}

/// The stream-side sink and, for the HTTP sink, the root-side collector with
/// the tick period it needs.
fn build(config: &SinkConfig, stats: SinkStats) -> (Sink, Option<(Collector, Duration)>) {
    match config {
        SinkConfig::FilterState { key } => (Sink::FilterState(key.as_str().into()), None),
        SinkConfig::Log { level } => (Sink::Log(*level), None),
        SinkConfig::Http {
            cluster,
            path,
            authority,
            batch_size,
            flush_interval_ms,
            max_queue,
            timeout_ms,
        } => {
            let queue = Rc::new(RefCell::new(RecordQueue::new(*max_queue)));
            let collector = Collector {
                queue: queue.clone(),
                cluster: cluster.clone(),
                path: path.clone(),
                authority: authority.clone().unwrap_or_else(|| cluster.clone()),
                batch_size: *batch_size,
                timeout: Duration::from_millis(*timeout_ms),
                in_flight: Vec::new(),
                stats,
                period_nanos: flush_interval_ms.saturating_mul(1_000_000),
                next_flush_nanos: 0,
            };
            (
                Sink::Http(queue),
                Some((collector, Duration::from_millis(*flush_interval_ms))),
            )
        }
    }
}

impl Collector {
    /// Sends what is queued, a batch per call, while fewer than
    /// [`MAX_IN_FLIGHT`] batches wait for an answer.
    fn flush(&mut self) {
        while self.in_flight.len() < MAX_IN_FLIGHT {
            let Some((body, count)) = self.queue.borrow_mut().take_batch(self.batch_size) else {
                return;
            };
            let headers = [
                (":method", "POST"),
                (":path", self.path.as_str()),
                (":authority", self.authority.as_str()),
                ("content-type", "application/x-ndjson"),
            ];
            match http_call(&self.cluster, &headers, body.as_bytes(), self.timeout) {
                Ok(token) => self.in_flight.push((token, count)),
                Err(status) => {
                    log::warn!(
                        "cannot send {count} records to cluster {}: status {status}",
                        self.cluster
                    );
                    self.stats.errors.add(count as u64);
                }
            }
        }
    }

    /// Flushes when `flush_interval_ms` has passed since the last flush, for
    /// roots that tick faster than the collector needs.
    fn on_tick(&mut self, now_nanos: u64) {
        if now_nanos >= self.next_flush_nanos {
            self.next_flush_nanos = now_nanos.saturating_add(self.period_nanos);
            self.flush();
        }
    }

    fn on_http_call_response(&mut self, token: u32) {
        let status = header_value(MapType::HttpCallResponseHeaders, ":status")
            .and_then(|v| std::str::from_utf8(&v).ok()?.parse().ok());
        self.on_response(token, status);
    }

    fn on_response(&mut self, token: u32, status: Option<u16>) {
        let Some(pos) = self.in_flight.iter().position(|(t, _)| *t == token) else {
            return;
        };
        let (_, count) = self.in_flight.swap_remove(pos);
        if !matches!(status, Some(200..=299)) {
            log::warn!(
                "collector {} answered {status:?}: {count} records lost",
                self.cluster
            );
            self.stats.errors.add(count as u64);
        }
    }
}
