//! Any bytes as the `x-envoy-peer-metadata` value (raw and base64-encoded),
//! as Istio's FlatNode filter state, as baggage and as an `-id`: decoding and
//! mapping to a peer must never panic, and must respect the caps.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peer_metadata::flatnode::peer_from_flatnode;
use peer_metadata::peer::Peer;
use peer_metadata::structpb::{decode_header, decode_struct, Limits, Struct, Value};

fn entries(s: &Struct, depth: usize, max_depth: usize) -> usize {
    assert!(depth <= max_depth, "nested past the cap");
    s.0.iter().map(|(_, v)| 1 + value_entries(v, depth, max_depth)).sum()
}

fn value_entries(v: &Value, depth: usize, max_depth: usize) -> usize {
    match v {
        Value::Struct(s) => entries(s, depth + 1, max_depth),
        Value::List(l) => {
            assert!(depth < max_depth, "nested past the cap");
            l.iter().map(|v| 1 + value_entries(v, depth + 1, max_depth)).sum()
        }
        _ => 0,
    }
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(tree) = decode_struct(data, limits) {
        assert!(entries(&tree, 0, limits.max_depth) <= limits.max_entries);
        let _ = Peer::from_struct(&tree);
    }
    if let Ok(tree) = decode_header(data, limits) {
        let _ = Peer::from_struct(&tree);
    }
    let _ = peer_from_flatnode(data, 64);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Peer::from_baggage(text);
        let _ = Peer::from_id(text);
    }
});
