//! `Chain`'s stop semantics, driven through the recording host as Envoy
//! drives a module: a part that stops the request ends that callback, the
//! parts after it never see the request nor its response, and every part
//! sees the log.

// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use filter_common::host::harness::Harness;
use filter_common::host::plugin::{Chain, Exchange, Plugin, StreamFilter};
use filter_common::host::Action;
use std::cell::RefCell;

thread_local! {
    /// What the parts saw, in order: `<part> <callback>`.
    static SEEN: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    /// Which part stops which callback: `(part, callback)`.
    static STOPS: RefCell<Vec<(char, &'static str)>> = const { RefCell::new(Vec::new()) };
}

struct Part(char);

impl Plugin for Part {
    fn stream(&self) -> Box<dyn StreamFilter> {
        Box::new(PartStream(self.0))
    }
}

struct PartStream(char);

impl PartStream {
    fn saw(&self, callback: &'static str) -> Action {
        SEEN.with(|s| s.borrow_mut().push(format!("{} {callback}", self.0)));
        let stops = STOPS.with(|s| s.borrow().contains(&(self.0, callback)));
        if stops {
            Action::Pause
        } else {
            Action::Continue
        }
    }
}

impl StreamFilter for PartStream {
    fn on_request_headers(&mut self, _x: &mut Exchange, _end: bool) -> Action {
        self.saw("request_headers")
    }
    fn on_request_body(&mut self, _x: &mut Exchange, _size: usize, _end: bool) -> Action {
        self.saw("request_body")
    }
    fn on_request_trailers(&mut self, _x: &mut Exchange) -> Action {
        self.saw("request_trailers")
    }
    fn on_response_headers(&mut self, _x: &mut Exchange, _end: bool) -> Action {
        self.saw("response_headers")
    }
    fn on_response_body(&mut self, _x: &mut Exchange, _size: usize, _end: bool) -> Action {
        self.saw("response_body")
    }
    fn on_response_trailers(&mut self, _x: &mut Exchange) -> Action {
        self.saw("response_trailers")
    }
    fn on_log(&mut self, _x: &mut Exchange) {
        self.saw("log");
    }
    fn after_chain_request_headers(&mut self, _x: &mut Exchange) {
        self.saw("after_chain");
    }
}

fn three_parts(_config: Option<&[u8]>) -> Option<Box<dyn Plugin>> {
    Some(Box::new(Chain(vec![
        Box::new(Part('a')),
        Box::new(Part('b')),
        Box::new(Part('c')),
    ])))
}

/// Runs one whole request through the chain with `stops`; what each part saw.
fn run(stops: &[(char, &'static str)]) -> (Vec<Action>, Vec<String>) {
    STOPS.with(|s| *s.borrow_mut() = stops.to_vec());
    SEEN.with(|s| s.borrow_mut().clear());
    let Ok(mut plugin) = Harness::configure(three_parts, "{}") else {
        panic!("the chain refused its configuration");
    };
    let stream = plugin.stream();
    let actions = vec![
        stream.request_headers(false),
        stream.request_body(10, false),
        stream.request_trailers(),
        stream.response_headers(false),
        stream.response_body(10, true),
        stream.response_trailers(),
    ];
    stream.log();
    stream.delete();
    (actions, SEEN.with(|s| s.borrow().clone()))
}

fn seen_by(seen: &[String], part: char) -> Vec<&str> {
    seen.iter()
        .filter_map(|s| s.strip_prefix(&format!("{part} ")))
        .collect()
}

#[test]
fn every_part_sees_every_callback_in_order_when_none_stops() {
    let (actions, seen) = run(&[]);
    assert!(actions.iter().all(|a| *a == Action::Continue));
    // After the request headers of all three, each part gets the final headers.
    assert_eq!(
        seen.get(..6).unwrap_or_default(),
        [
            "a request_headers",
            "b request_headers",
            "c request_headers",
            "a after_chain",
            "b after_chain",
            "c after_chain"
        ]
    );
    for part in ['a', 'b', 'c'] {
        assert_eq!(seen_by(&seen, part).len(), 8, "{part}: {seen:?}");
    }
}

#[test]
fn a_local_reply_ends_the_request_at_that_part() {
    let (actions, seen) = run(&[('b', "request_headers")]);
    assert_eq!(actions.first(), Some(&Action::Pause));
    // `c` never saw the request, so it sees neither the response nor
    // the final headers; `a` and `b` see the reply's response; all log.
    assert_eq!(seen_by(&seen, 'c'), ["log"]);
    assert_eq!(
        seen_by(&seen, 'a'),
        [
            "request_headers",
            "request_body",
            "request_trailers",
            "response_headers",
            "response_body",
            "response_trailers",
            "log"
        ]
    );
    assert!(!seen.iter().any(|s| s.ends_with("after_chain")), "{seen:?}");
}

#[test]
fn a_stop_in_the_body_keeps_later_parts_off_the_rest_of_the_request() {
    let (actions, seen) = run(&[('a', "request_body")]);
    assert_eq!(actions.get(1), Some(&Action::Pause));
    // `b` and `c` had the headers (and the final headers), nothing after.
    for part in ['b', 'c'] {
        assert_eq!(
            seen_by(&seen, part),
            ["request_headers", "after_chain", "log"],
            "{part}"
        );
    }
}

#[test]
fn a_pause_in_the_response_stops_that_callback_only() {
    let (actions, seen) = run(&[('a', "response_headers")]);
    assert_eq!(actions.get(3), Some(&Action::Pause));
    // The response direction does not shorten the chain: `b` and `c`
    // miss that one callback and see the rest of the response.
    for part in ['b', 'c'] {
        let s = seen_by(&seen, part);
        assert!(!s.contains(&"response_headers"), "{part}: {s:?}");
        assert!(
            s.contains(&"response_body") && s.contains(&"log"),
            "{part}: {s:?}"
        );
    }
}
