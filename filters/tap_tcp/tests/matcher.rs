//! Connection matching: ports, CIDR ranges (IPv4, IPv6, mapped), SNI.

// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use std::net::IpAddr;
use tap_tcp::config::Config;
use tap_tcp::matcher::{address_ip, Cidr, View};

fn eval(matcher: &str, view: &View) -> bool {
    let config = Config::parse(Some(format!(r#"{{"match": {matcher}}}"#).as_bytes())).unwrap();
    config.matcher.eval(view) == Some(true)
}

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

#[test]
fn cidr_ranges() {
    let net = Cidr::parse("10.1.0.0/16").unwrap();
    assert!(net.contains("10.1.255.3".parse().unwrap()));
    assert!(!net.contains("10.2.0.1".parse().unwrap()));
    assert!(
        net.contains("::ffff:10.1.2.3".parse().unwrap()),
        "IPv4-mapped"
    );
    assert!(!net.contains("fd00::1".parse().unwrap()));
    let odd = Cidr::parse("192.168.0.0/23").unwrap();
    assert!(odd.contains("192.168.1.9".parse().unwrap()));
    assert!(!odd.contains("192.168.2.0".parse().unwrap()));
    let v6 = Cidr::parse("fd00:ab::/33").unwrap();
    assert!(v6.contains("fd00:ab:7fff::1".parse().unwrap()));
    assert!(!v6.contains("fd00:ab:8000::1".parse().unwrap()));
    assert!(Cidr::parse("0.0.0.0/0")
        .unwrap()
        .contains("8.8.8.8".parse().unwrap()));
    assert!(Cidr::parse("::/0")
        .unwrap()
        .contains("::1".parse().unwrap()));
    let host = Cidr::parse("127.0.0.1").unwrap();
    assert!(
        host.contains("127.0.0.1".parse().unwrap()) && !host.contains("127.0.0.2".parse().unwrap())
    );
    for bad in [
        "",
        "10.0.0.0/",
        "10.0.0.0/33",
        "::/129",
        "10.0.0.0/+8",
        "10.0.0/8",
        "x/8",
        "10.0.0.0/8/8",
    ] {
        assert_eq!(Cidr::parse(bad), None, "{bad}");
    }
}

#[test]
fn envoy_address_strings() {
    assert_eq!(address_ip("10.0.0.1:8080"), ip("10.0.0.1"));
    assert_eq!(address_ip("[fd00::1]:443"), ip("fd00::1"));
    assert_eq!(address_ip("fd00::1"), ip("fd00::1"));
    assert_eq!(address_ip("10.0.0.1"), ip("10.0.0.1"));
    assert_eq!(address_ip("/var/run/socket"), None);
    assert_eq!(address_ip(""), None);
}

#[test]
fn conditions() {
    let view = View {
        source: ip("10.1.2.3"),
        destination: ip("127.0.0.1"),
        destination_port: Some(5432),
        sni: Some("db.prod.internal"),
    };
    assert!(eval(r#"{"destination_port": 5432}"#, &view));
    assert!(!eval(r#"{"destination_port": 5433}"#, &view));
    assert!(eval(
        r#"{"destination_port": {"min": 5000, "max": 6000}}"#,
        &view
    ));
    assert!(eval(
        r#"{"source_address": ["192.168.0.0/16", "10.0.0.0/8"]}"#,
        &view
    ));
    assert!(!eval(r#"{"source_address": "10.1.2.4"}"#, &view));
    assert!(eval(r#"{"destination_address": "127.0.0.0/8"}"#, &view));
    assert!(eval(r#"{"sni": {"suffix": ".internal"}}"#, &view));
    assert!(eval(
        r#"{"sni": {"regex": "db\\.[a-z]+\\.internal"}}"#,
        &view
    ));
    assert!(
        !eval(r#"{"sni": {"regex": "prod"}}"#, &view),
        "regexes match the whole name"
    );
    assert!(eval(r#"{"sni": {"prefix": "db."}}"#, &view));
    assert!(eval(r#"{"sni": {"exact": "db.prod.internal"}}"#, &view));
    assert!(eval(
        r#"{"and": [{"destination_port": 5432}, {"not": {"source_address": "10.9.0.0/16"}}]}"#,
        &view
    ));
    assert!(!eval(
        r#"{"or": [{"destination_port": 1}, {"sni": {"exact": "x"}}]}"#,
        &view
    ));
}

#[test]
fn absent_facts_never_match() {
    let plain = View {
        source: None,
        destination: None,
        destination_port: None,
        sni: Some(""),
    };
    for m in [
        r#"{"destination_port": {"min": 1, "max": 65535}}"#,
        r#"{"source_address": "0.0.0.0/0"}"#,
        r#"{"destination_address": "::/0"}"#,
        r#"{"sni": {"prefix": ""}}"#,
        r#"{"sni": {"regex": ".*"}}"#,
    ] {
        assert!(
            !eval(m, &plain),
            "{m} matched a connection without that fact"
        );
        assert!(eval(&format!(r#"{{"not": {m}}}"#), &plain));
    }
}
