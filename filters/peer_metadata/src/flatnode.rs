//! A reader for the `FlatNode` FlatBuffer that Istio 1.7 to 1.23 store as
//! filter state `wasm.downstream_peer` (istio/proxy `extensions/common/node_info.fbs`),
//! for when Istio's metadata exchange already consumed the headers. Only the
//! fields the peer needs are read; every offset is bounds-checked.

use crate::peer::{from_node, NodeFields};
use filter_common::peer::Peer;

/// Field slots of `FlatNode`, in schema order.
const NAME: usize = 0;
const NAMESPACE: usize = 1;
const LABELS: usize = 2;
const OWNER: usize = 3;
const WORKLOAD_NAME: usize = 4;
const CLUSTER_ID: usize = 9;

struct Buf<'a>(&'a [u8]);

impl<'a> Buf<'a> {
    fn u16(&self, at: usize) -> Option<u16> {
        Some(u16::from_le_bytes(
            self.0.get(at..at.checked_add(2)?)?.try_into().ok()?,
        ))
    }

    fn u32(&self, at: usize) -> Option<u32> {
        Some(u32::from_le_bytes(
            self.0.get(at..at.checked_add(4)?)?.try_into().ok()?,
        ))
    }

    /// Follows the unsigned offset stored at `at`.
    fn deref(&self, at: usize) -> Option<usize> {
        at.checked_add(self.u32(at)? as usize)
    }

    /// Where field `slot` of the table at `table` is, if present.
    fn field(&self, table: usize, slot: usize) -> Option<usize> {
        let soffset = self.u32(table)? as i32;
        let vtable = usize::try_from(table as i64 - i64::from(soffset)).ok()?;
        let vtable_len = usize::from(self.u16(vtable)?);
        let entry = 4 + 2 * slot;
        if entry + 2 > vtable_len {
            return None;
        }
        match self.u16(vtable + entry)? {
            0 => None,
            offset => table.checked_add(usize::from(offset)),
        }
    }

    fn string(&self, table: usize, slot: usize) -> Option<&'a str> {
        let at = self.deref(self.field(table, slot)?)?;
        let len = self.u32(at)? as usize;
        let bytes = self.0.get(at + 4..(at + 4).checked_add(len)?)?;
        std::str::from_utf8(bytes).ok()
    }

    /// The tables of a vector-of-tables field, at most `max`.
    fn tables(&self, table: usize, slot: usize, max: usize) -> Vec<usize> {
        let Some(vector) = self.field(table, slot).and_then(|at| self.deref(at)) else {
            return Vec::new();
        };
        let len = self.u32(vector).unwrap_or(0) as usize;
        (0..len.min(max))
            .filter_map(|i| self.deref(vector.checked_add(4 + 4 * i)?))
            .collect()
    }
}

/// The peer in a `FlatNode` buffer; `None` if it is not one.
pub fn peer_from_flatnode(bytes: &[u8], max_labels: usize) -> Option<Peer> {
    let buf = Buf(bytes);
    let root = buf.deref(0)?;
    // A table starts with its vtable offset: reject buffers without one.
    buf.u16(usize::try_from(root as i64 - i64::from(buf.u32(root)? as i32)).ok()?)?;
    let labels = buf
        .tables(root, LABELS, max_labels)
        .into_iter()
        .filter_map(|kv| {
            Some((
                buf.string(kv, 0)?.to_string(),
                buf.string(kv, 1)?.to_string(),
            ))
        })
        .collect();
    let peer = from_node(NodeFields {
        name: buf.string(root, NAME),
        namespace: buf.string(root, NAMESPACE),
        workload_name: buf.string(root, WORKLOAD_NAME),
        owner: buf.string(root, OWNER),
        cluster_id: buf.string(root, CLUSTER_ID),
        labels,
        ..NodeFields::default()
    });
    (!peer.is_empty()).then_some(peer)
}
