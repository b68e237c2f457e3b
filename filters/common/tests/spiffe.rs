// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use filter_common::peer::spiffe::namespace_and_service_account as spiffe_namespace;

#[test]
fn spiffe_ids() {
    assert_eq!(
        spiffe_namespace("spiffe://cluster.local/ns/shop/sa/cart"),
        Some(("shop", "cart"))
    );
    for bad in [
        "spiffe://cluster.local/ns/shop",
        "spiffe://cluster.local/ns//sa/cart",
        "spiffe:///ns/shop/sa/cart",
        "spiffe://td/ns/shop/sa/cart/extra",
        "https://td/ns/shop/sa/cart",
        "spiffe://td/sa/cart/ns/shop",
        "",
    ] {
        assert_eq!(spiffe_namespace(bad), None, "{bad}");
    }
}
