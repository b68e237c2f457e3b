//! `Exchange`'s header API, the same calls for request and response headers
//! and trailers: one host read per map per callback, edits kept in step for
//! the parts after the editor, and the fewest host calls for each edit.

// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use filter_common::header::pairs::HeaderMap;
use filter_common::host::harness::Harness;
use filter_common::host::plugin::{Chain, Exchange, Map, Plugin, StreamFilter};
use filter_common::host::recording::{self as host, Call};
use filter_common::host::{Action, MapType};
use std::cell::RefCell;

thread_local! {
    /// What the second part saw of each map: `(map, header, values)`.
    static SEEN: RefCell<Vec<(Map, String)>> = const { RefCell::new(Vec::new()) };
    /// The trailers the second part kept past their callback.
    static KEPT: RefCell<Option<HeaderMap>> = const { RefCell::new(None) };
}

const MAPS: [(Map, MapType); 4] = [
    (Map::Request, MapType::HttpRequestHeaders),
    (Map::RequestTrailers, MapType::HttpRequestTrailers),
    (Map::Response, MapType::HttpResponseHeaders),
    (Map::ResponseTrailers, MapType::HttpResponseTrailers),
];

/// Edits `map`: replaces `x-set`, removes `x-gone`, appends to `x-add`.
struct Editor;
/// Reads `map` after the editor, as a later filter in the chain.
struct Reader;

fn edit(x: &mut Exchange, map: Map) {
    // Reading first makes the edits keep the read map in step.
    let has_set = x.headers(map).contains("x-set");
    assert!(has_set);
    x.set_header(map, "X-Set", Some(b"new"));
    x.set_header(map, "x-gone", None);
    x.add_header(map, "x-add", b"2");
    // Absent before: an append, no replace.
    x.set_header(map, "x-new", Some(b"1"));
}

fn read(x: &mut Exchange, map: Map) {
    let headers = x.headers(map);
    let mut seen: Vec<String> = ["x-set", "x-gone", "x-add", "x-new"]
        .iter()
        .map(|name| {
            let values: Vec<String> = headers
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
                .collect();
            format!("{name}={}", values.join(","))
        })
        .collect();
    seen.sort();
    SEEN.with(|s| s.borrow_mut().push((map, seen.join(" "))));
}

impl StreamFilter for Editor {
    fn on_request_headers(&mut self, x: &mut Exchange, _end: bool) -> Action {
        edit(x, Map::Request);
        Action::Continue
    }
    fn on_request_trailers(&mut self, x: &mut Exchange) -> Action {
        edit(x, Map::RequestTrailers);
        Action::Continue
    }
    fn on_response_headers(&mut self, x: &mut Exchange, _end: bool) -> Action {
        edit(x, Map::Response);
        Action::Continue
    }
    fn on_response_trailers(&mut self, x: &mut Exchange) -> Action {
        edit(x, Map::ResponseTrailers);
        Action::Continue
    }
}

impl StreamFilter for Reader {
    fn on_request_headers(&mut self, x: &mut Exchange, _end: bool) -> Action {
        read(x, Map::Request);
        Action::Continue
    }
    fn on_request_trailers(&mut self, x: &mut Exchange) -> Action {
        read(x, Map::RequestTrailers);
        let kept = x.take_headers(Map::RequestTrailers);
        KEPT.with(|k| *k.borrow_mut() = kept);
        Action::Continue
    }
    fn on_response_headers(&mut self, x: &mut Exchange, _end: bool) -> Action {
        read(x, Map::Response);
        Action::Continue
    }
    fn on_response_trailers(&mut self, x: &mut Exchange) -> Action {
        read(x, Map::ResponseTrailers);
        Action::Continue
    }
    fn on_log(&mut self, x: &mut Exchange) {
        // Several maps borrowed at once: reads only.
        let (request, response) = (x.headers(Map::Request), x.headers(Map::Response));
        assert!(request.contains("x-new") && response.contains("x-new"));
        assert!(
            !x.has(Map::ResponseTrailers) || x.headers(Map::ResponseTrailers).contains("x-new")
        );
    }
}

struct Part<F: Fn() -> Box<dyn StreamFilter>>(F);

impl<F: Fn() -> Box<dyn StreamFilter>> Plugin for Part<F> {
    fn stream(&self) -> Box<dyn StreamFilter> {
        (self.0)()
    }
}

fn editor_then_reader(_config: Option<&[u8]>) -> Option<Box<dyn Plugin>> {
    Some(Box::new(Chain(vec![
        Box::new(Part(|| Box::new(Editor) as Box<dyn StreamFilter>)),
        Box::new(Part(|| Box::new(Reader) as Box<dyn StreamFilter>)),
    ])))
}

#[test]
fn one_api_edits_and_reads_every_map_in_both_directions() {
    host::with(|h| {
        for (_, map) in MAPS {
            h.set_map(
                map,
                &[
                    ("x-set", b"old"),
                    ("x-set", b"older"),
                    ("x-gone", b"1"),
                    ("x-add", b"1"),
                ],
            );
        }
    });
    let mut module = Harness::configure(editor_then_reader, "").unwrap();
    let stream = module.stream();
    host::take_calls();
    assert_eq!(stream.request_headers(false), Action::Continue);
    assert_eq!(stream.request_trailers(), Action::Continue);
    assert_eq!(stream.response_headers(false), Action::Continue);
    assert_eq!(stream.response_trailers(), Action::Continue);
    let calls = host::take_calls();
    stream.log();

    let expected = "x-add=1,2 x-gone= x-new=1 x-set=new";
    let seen = SEEN.with(|s| s.borrow().clone());
    assert_eq!(
        seen,
        MAPS.iter()
            .map(|(map, _)| (*map, expected.to_string()))
            .collect::<Vec<_>>()
    );
    host::with(|h| {
        for (_, map) in MAPS {
            assert_eq!(h.header(map, "x-set"), [b"new"], "{map:?}");
            assert_eq!(h.header(map, "x-add"), [b"1", b"2"], "{map:?}");
            assert!(h.header(map, "x-gone").is_empty(), "{map:?}");
        }
    });
    // Per map: one read shared by both parts, a replace for x-set, a
    // removal for x-gone, appends for x-add and the absent x-new.
    let count = |call: Call| calls.iter().filter(|c| **c == call).count();
    assert_eq!(count(Call::GetHeaderMapPairs), 4, "{calls:?}");
    assert_eq!(count(Call::ReplaceHeaderMapValue), 4, "{calls:?}");
    assert_eq!(count(Call::RemoveHeaderMapValue), 4, "{calls:?}");
    assert_eq!(count(Call::AddHeaderMapValue), 8, "{calls:?}");

    let kept = KEPT.with(|k| k.borrow_mut().take()).expect("trailers kept");
    assert_eq!(kept.first("x-set"), Some(&b"new"[..]));
}

#[test]
fn a_map_envoy_has_not_got_reads_empty_and_is_not_taken() {
    let mut module = Harness::configure(
        |_| {
            struct Probe;
            impl StreamFilter for Probe {
                fn on_request_headers(&mut self, x: &mut Exchange, _end: bool) -> Action {
                    assert!(x.has(Map::Request));
                    assert!(!x.has(Map::ResponseTrailers));
                    assert!(x.headers(Map::ResponseTrailers).is_empty());
                    assert!(x.take_headers(Map::ResponseTrailers).is_none());
                    assert!(x.take_headers(Map::Request).is_some());
                    Action::Continue
                }
            }
            Some(Box::new(Part(|| Box::new(Probe) as Box<dyn StreamFilter>)))
        },
        "",
    )
    .unwrap();
    host::with(|h| h.set_map(MapType::HttpRequestHeaders, &[(":path", b"/")]));
    assert_eq!(module.stream().request_headers(true), Action::Continue);
}
