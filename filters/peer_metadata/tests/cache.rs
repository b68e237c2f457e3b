// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use peer_metadata::cache::Cache;
use proptest::prelude::*;
use std::rc::Rc;

#[test]
fn least_recently_used_goes_first() {
    let mut c = Cache::new(2);
    c.insert(b"a", Rc::new(1));
    c.insert(b"b", Rc::new(2));
    assert_eq!(c.get(b"a").as_deref(), Some(&1)); // a is now the most recent
    c.insert(b"c", Rc::new(3));
    assert_eq!(c.get(b"b"), None);
    assert_eq!(c.get(b"a").as_deref(), Some(&1));
    assert_eq!(c.get(b"c").as_deref(), Some(&3));
    c.insert(b"c", Rc::new(4));
    assert_eq!((c.len(), c.get(b"c").as_deref()), (2, Some(&4)));
    let mut off = Cache::new(0);
    off.insert(b"a", Rc::new(1));
    assert!(off.is_empty() && off.get(b"a").is_none());
}

proptest! {
    /// Never more than its capacity, and a hit is always the last value stored.
    #[test]
    fn bounded_and_exact(ops in prop::collection::vec((0u8..20, any::<u16>()), 0..300), cap in 0usize..8) {
        let mut c = Cache::new(cap);
        let mut last = std::collections::HashMap::new();
        for (key, value) in ops {
            if value % 3 == 0 {
                if let Some(hit) = c.get(&[key]) {
                    prop_assert_eq!(Some(*hit), last.get(&key).copied());
                }
            } else {
                c.insert(&[key], Rc::new(value));
                last.insert(key, value);
            }
            prop_assert!(c.len() <= cap);
        }
    }
}
