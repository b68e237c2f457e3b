// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use cf_headers::hosts::*;

fn table() -> HostTable {
    let mut t = HostTable::default();
    t.insert("App.Example.com", 0).unwrap();
    t.insert("*.example.com", 1).unwrap();
    t.insert("*.deep.example.com", 2).unwrap();
    t.insert("[::1]", 3).unwrap();
    t
}

#[test]
fn exact_beats_wildcard_and_longest_wildcard_wins() {
    let t = table();
    assert_eq!(t.lookup(b"app.example.com"), Some(0));
    assert_eq!(t.lookup(b"APP.EXAMPLE.COM:8443"), Some(0));
    assert_eq!(t.lookup(b"app.example.com."), Some(0));
    assert_eq!(t.lookup(b"other.example.com"), Some(1));
    assert_eq!(t.lookup(b"a.b.example.com"), Some(1));
    assert_eq!(t.lookup(b"x.deep.example.com"), Some(2));
    assert_eq!(t.lookup(b"[::1]:80"), Some(3));
}

#[test]
fn near_misses_do_not_match() {
    let t = table();
    for miss in [
        &b"example.com"[..],
        b".example.com",
        b"app.example.com.evil",
        b"appexample.com",
        b"",
        b"\xff.example.com",
        b"app.example.com\0",
    ] {
        assert_eq!(t.lookup(miss), None, "{:?}", String::from_utf8_lossy(miss));
    }
}

#[test]
fn duplicates_are_refused() {
    let mut t = table();
    assert!(t.insert("app.example.COM", 9).is_err());
    assert!(t.insert("*.EXAMPLE.com", 9).is_err());
    assert!(t.insert("a.com:80", 9).is_err());
}
