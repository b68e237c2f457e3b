// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use filter_common::peer::Peer;
use filter_common::peer::Published;
use peer_metadata::config::Config;
use peer_metadata::identity::{single_value, Conflicting, Identity, LastOutputs};
use peer_metadata::peer::from_id;
use std::rc::Rc;

/// The filter state an identity publishes, as Envoy shows it (`wasm.<key>`).
fn filter_state(id: &Identity) -> Vec<(&'static str, String)> {
    Published::new(id.state())
        .entries()
        .iter()
        .map(|(key, value)| (key.name(), value.clone()))
        .collect()
}

fn peer() -> Peer {
    Peer {
        workload: Some("cart-v3".into()),
        namespace: Some("shop".into()),
        app: Some("cart".into()),
        labels: vec![
            ("app".into(), "cart".into()),
            ("q\"uote".into(), "v".into()),
        ],
        ..Peer::default()
    }
}

#[test]
fn verified_only_when_the_certificate_namespace_matches() {
    let p = peer();
    let ok = Identity::new(
        Some(&p),
        Some("spiffe://cluster.local/ns/shop/sa/cart"),
        false,
    );
    assert!(ok.verified);
    let other = Identity::new(
        Some(&p),
        Some("spiffe://cluster.local/ns/attacker/sa/x"),
        false,
    );
    assert!(!other.verified && other.spoofed && other.peer.is_none());
    let plain = Identity::new(Some(&p), None, false);
    assert!(!plain.verified);
    let not_spiffe = Identity::new(Some(&p), Some("https://shop/ns/shop/sa/cart"), false);
    assert!(!not_spiffe.verified);
    assert!(
        Identity::new(Some(&p), None, true).peer.is_none(),
        "require_verified drops it"
    );
    assert!(
        Identity::new(Some(&p), Some("spiffe://td/ns/shop/sa/a"), true)
            .peer
            .is_some()
    );
    let unnamed = Peer::default();
    assert!(!Identity::new(Some(&unnamed), Some("spiffe://td/ns/shop/sa/a"), false).verified);
}

#[test]
fn headers_and_filter_state() {
    let config = Config::parse(Some(br#"{"headers": {"app": "x-caller-app"}}"#)).unwrap();
    let p = peer();
    let id = Identity::new(Some(&p), Some("spiffe://td/ns/shop/sa/cart"), false);
    assert_eq!(
        id.headers(&config),
        vec![
            ("x-peer-workload", "cart-v3".to_string()),
            ("x-peer-namespace", "shop".to_string()),
            ("x-caller-app", "cart".to_string()),
            (
                "x-peer-principal",
                "spiffe://td/ns/shop/sa/cart".to_string()
            ),
            ("x-peer-verified", "true".to_string()),
        ]
    );
    let state = filter_state(&id);
    assert!(state.contains(&("peer_verified", "true".into())));
    assert!(state.contains(&("peer_app", "cart".into())));
    let labels = &state.iter().find(|(k, _)| *k == "peer_labels").unwrap().1;
    let parsed: serde_json::Value = serde_json::from_str(labels).unwrap();
    assert_eq!(parsed["q\"uote"], "v");
    let nobody = Identity::new(None, None, false);
    assert_eq!(
        nobody.headers(&config),
        vec![("x-peer-verified", "false".to_string())]
    );
}

#[test]
fn repeated_metadata_headers() {
    assert_eq!(single_value(&[]), Ok(None));
    assert_eq!(single_value(&[b"a", b"a"]), Ok(Some(&b"a"[..])));
    assert_eq!(single_value(&[b"a", b"b"]), Err(Conflicting));
}

#[test]
fn peer_from_id_header() {
    let p = from_id("sidecar~172.21.206.228~netshoot.mark~mark.svc.cluster.local");
    assert_eq!(
        (p.name.as_deref(), p.namespace.as_deref()),
        (Some("netshoot"), Some("mark"))
    );
    let dotted = from_id("sidecar~10.0.0.1~web.v2.pod.prod~prod.svc.cluster.local");
    assert_eq!(
        (dotted.name.as_deref(), dotted.namespace.as_deref()),
        (Some("web.v2.pod"), Some("prod"))
    );
    for bad in [
        "",
        "sidecar",
        "sidecar~1.2.3.4",
        "sidecar~1.2.3.4~nodots~x",
        "~~.~",
    ] {
        assert!(from_id(bad).is_empty(), "{bad}");
    }
}

#[test]
fn values_that_cannot_be_headers_are_left_out() {
    let config = Config::parse(None).unwrap();
    let p = Peer {
        workload: Some("evil\r\nx-injected: 1".into()),
        namespace: Some("nul\0".into()),
        app: Some("ok app".into()),
        ..Peer::default()
    };
    let headers = Identity::new(Some(&p), None, false).headers(&config);
    assert_eq!(
        headers,
        vec![
            ("x-peer-app", "ok app".to_string()),
            ("x-peer-verified", "false".to_string())
        ]
    );
}

#[test]
fn last_outputs_are_reused_only_for_the_same_peer_and_certificate() {
    let config = Config::parse(None).unwrap();
    let mut last = LastOutputs::default();
    let fresh = |p: Option<&Rc<Peer>>, principal: Option<&str>| {
        LastOutputs::default().get(p, principal, &config)
    };
    let cart = Rc::new(peer());
    let cert = Some("spiffe://td/ns/shop/sa/cart");
    let first = last.get(Some(&cart), cert, &config);
    assert_eq!(*first, *fresh(Some(&cart), cert));
    assert!(first.verified);
    // The same peer, as the same entry or decoded again: the kept outputs.
    assert!(Rc::ptr_eq(&first, &last.get(Some(&cart), cert, &config)));
    let again = Rc::new(peer());
    assert!(Rc::ptr_eq(&first, &last.get(Some(&again), cert, &config)));
    // Anything else is computed anew, and is then what is kept.
    let other_cert = Some("spiffe://td/ns/other/sa/cart");
    let unverified = last.get(Some(&cart), other_cert, &config);
    assert!(!unverified.verified);
    assert_eq!(*unverified, *fresh(Some(&cart), other_cert));
    let shop = Rc::new(Peer {
        app: Some("shop".into()),
        ..peer()
    });
    assert_eq!(
        *last.get(Some(&shop), other_cert, &config),
        *fresh(Some(&shop), other_cert)
    );
    assert_eq!(*last.get(None, None, &config), *fresh(None, None));
    assert_eq!(
        last.get(None, None, &config).headers,
        vec![("x-peer-verified".to_string(), "false".to_string())]
    );
    assert_eq!(*last.get(Some(&cart), cert, &config), *first);
    // Without filter state configured, none is made.
    let no_state = Config::parse(Some(br#"{"filter_state": false}"#)).unwrap();
    let outputs = LastOutputs::default().get(Some(&cart), cert, &no_state);
    assert!(outputs.published.is_none());
    assert_eq!(outputs.headers, first.headers);
}

/// The identity Istio attributes to the peer is an output of its own: the
/// principal stays the certificate's, and an identity that names another
/// service account than the certificate makes the peer unverified.
#[test]
fn identity_is_checked_against_the_certificate_and_never_replaces_it() {
    let config = Config::parse(None).unwrap();
    let cert = "spiffe://cluster.local/ns/shop/sa/cart";
    let claimed = |identity: &str| Peer {
        identity: Some(identity.into()),
        ..peer()
    };
    let same = claimed(cert);
    let id = Identity::new(Some(&same), Some(cert), true);
    assert!(id.verified && id.peer.is_some());
    let headers = id.headers(&config);
    assert!(headers.contains(&("x-peer-identity", cert.to_string())));
    assert!(headers.contains(&("x-peer-principal", cert.to_string())));
    assert!(filter_state(&id).contains(&("peer_identity", cert.to_string())));

    let other = claimed("spiffe://cluster.local/ns/shop/sa/admin");
    let id = Identity::new(Some(&other), Some(cert), false);
    assert!(!id.verified, "same namespace, another service account");
    assert!(id
        .headers(&config)
        .contains(&("x-peer-principal", cert.to_string())));
    assert!(Identity::new(Some(&other), Some(cert), true).peer.is_none());

    // Without a certificate the claim is passed on, unverified, and there is
    // still no principal.
    let id = Identity::new(Some(&same), None, false);
    let headers = id.headers(&config);
    assert!(!id.verified);
    assert!(headers.contains(&("x-peer-identity", cert.to_string())));
    assert!(!headers.iter().any(|(h, _)| *h == "x-peer-principal"));
}

/// What the certificate proves: the namespace and service account of its
/// SPIFFE ID. A claim that names another one is contradicted: none of it
/// passes, only the principal and `verified: false`.
#[test]
fn a_claim_the_certificate_contradicts_passes_nothing_but_the_principal() {
    let config = Config::parse(None).unwrap();
    let cert = "spiffe://cluster.local/ns/default/sa/tiefighter";
    let with = |f: fn(&mut Peer)| {
        let mut p = Peer {
            namespace: Some("default".into()),
            workload: Some("tiefighter".into()),
            labels: vec![("org".into(), "empire".into())],
            ..Peer::default()
        };
        f(&mut p);
        p
    };
    let only_principal = vec![
        ("x-peer-principal", cert.to_string()),
        ("x-peer-verified", "false".to_string()),
    ];
    for (why, p) in [
        (
            "namespace",
            with(|p| p.namespace = Some("kube-system".into())),
        ),
        (
            "service account",
            with(|p| p.service_account = Some("xwing".into())),
        ),
        (
            "identity",
            with(|p| p.identity = Some("spiffe://cluster.local/ns/default/sa/xwing".into())),
        ),
    ] {
        let id = Identity::new(Some(&p), Some(cert), false);
        assert!(id.spoofed && !id.verified, "{why}");
        assert_eq!(id.headers(&config), only_principal, "{why}");
        assert_eq!(
            filter_state(&id),
            vec![
                ("peer_principal", cert.to_string()),
                ("peer_verified", "false".to_string())
            ],
            "{why}"
        );
    }
    // The same claims with the certificate's own service account: verified,
    // and the service account is published for the policy filter.
    let own = with(|p| p.service_account = Some("tiefighter".into()));
    let id = Identity::new(Some(&own), Some(cert), false);
    assert!(id.verified && !id.spoofed);
    assert!(filter_state(&id).contains(&("peer_service_account", "tiefighter".into())));
    // No service account claimed: verified by namespace alone, not spoofed.
    let silent = with(|_| {});
    let id = Identity::new(Some(&silent), Some(cert), false);
    assert!(id.verified && !id.spoofed);
    assert!(!filter_state(&id)
        .iter()
        .any(|(k, _)| *k == "peer_service_account"));
    // Without a certificate nothing can contradict the claim.
    let id = Identity::new(Some(&own), None, false);
    assert!(!id.verified && !id.spoofed && id.peer.is_some());
}
