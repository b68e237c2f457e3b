//! The shared pieces of the tap filters: capture, JSON, rate limits, sampling, queue.

// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use filter_common::encoding::json::{push_base64, push_str};
use filter_common::tap::capture::Capture;
use filter_common::tap::ratelimit::{Sampler, TokenBucket};
use filter_common::tap::sink::RecordQueue;
use proptest::prelude::*;

#[test]
fn capture_keeps_the_limit_and_flags_truncation() {
    let mut c = Capture::new(5);
    c.push(b"abc", 3);
    assert_eq!((c.data(), c.truncated(), c.room()), (&b"abc"[..], false, 2));
    c.push(b"de", 4); // the caller read only `room` of a 4-byte chunk
    assert_eq!(
        (c.data(), c.truncated(), c.seen()),
        (&b"abcde"[..], true, 7)
    );
    let mut exact = Capture::new(3);
    exact.push(b"xyz", 3);
    assert!(!exact.truncated(), "exactly at the limit is not truncated");
    let mut none = Capture::new(0);
    none.push(b"", 10);
    assert!(none.truncated() && none.data().is_empty());
}

#[test]
fn json_strings_are_escaped() {
    let mut out = String::new();
    push_str(&mut out, "a\"b\\c\nd\u{1}é");
    assert_eq!(out, r#""a\"b\\c\nd\u0001é""#);
    let parsed: String = serde_json::from_str(&out).unwrap();
    assert_eq!(parsed, "a\"b\\c\nd\u{1}é");
    let mut b = String::new();
    push_base64(&mut b, b"\xff\x00hi");
    assert_eq!(b, "\"/wBoaQ==\"");
}

#[test]
fn token_bucket_refills_at_its_rate() {
    let second = 1_000_000_000u64;
    let mut bucket = TokenBucket::new(2.0, 2.0);
    let t0 = 10 * second;
    assert!(bucket.try_take(t0) && bucket.try_take(t0));
    assert!(!bucket.try_take(t0), "burst spent");
    assert!(!bucket.try_take(t0 + second / 4));
    assert!(
        bucket.try_take(t0 + second / 2),
        "one token after half a second at 2/s"
    );
    assert!(bucket.try_take(t0 + 10 * second) && bucket.try_take(t0 + 10 * second));
    assert!(
        !bucket.try_take(t0 + 10 * second),
        "never more than the burst saved up"
    );
    assert!(
        !bucket.try_take(t0),
        "a clock going backwards gives nothing"
    );
}

#[test]
fn sampler_is_fair() {
    let mut s = Sampler::new(42);
    let hits = (0..100_000).filter(|_| s.sample(25.0)).count();
    assert!((23_500..26_500).contains(&hits), "{hits}");
    assert!((0..1000).all(|_| s.sample(100.0)));
    assert!((0..1000).all(|_| !s.sample(0.0)));
}

#[test]
fn record_queue_is_bounded_and_batches_json_lines() {
    let mut q = RecordQueue::new(3);
    assert!(q.push("1".into()) && q.push("2".into()) && q.push("3".into()));
    assert!(!q.push("4".into()), "full: dropped");
    assert_eq!(q.take_batch(2), Some(("1\n2\n".to_string(), 2)));
    assert_eq!(q.take_batch(2), Some(("3\n".to_string(), 1)));
    assert_eq!(q.take_batch(2), None);
    assert!(q.is_empty());
}

proptest! {
    #[test]
    fn any_string_round_trips_through_json(s in ".*") {
        let mut out = String::new();
        push_str(&mut out, &s);
        let back: String = serde_json::from_str(&out).unwrap();
        prop_assert_eq!(back, s);
    }

    #[test]
    fn capture_never_exceeds_its_limit(limit in 0usize..100, chunks in proptest::collection::vec(0usize..50, 0..20)) {
        let mut c = Capture::new(limit);
        let mut total = 0;
        for n in chunks {
            let data = vec![7u8; n];
            let room = c.room().min(n);
            c.push(&data[..room], n);
            total += n;
        }
        prop_assert!(c.data().len() <= limit);
        prop_assert_eq!(c.data().len(), total.min(limit));
        prop_assert_eq!(c.truncated(), total > limit);
    }
}
