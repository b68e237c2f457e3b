//! An in-place heapsort: O(n log n) comparisons in the worst case, no
//! allocation, and a few hundred bytes of Wasm (the standard library's sorts
//! are kilobytes per element type). Not stable: sort by a key that includes
//! the original position where order among equals matters.

/// Sorts `v` so that no element is `less` than the one before it.
pub fn heap_sort_by<T>(v: &mut [T], mut less: impl FnMut(&T, &T) -> bool) {
    let len = v.len();
    for start in (0..len / 2).rev() {
        sift_down(v, start, len, &mut less);
    }
    for end in (1..len).rev() {
        v.swap(0, end);
        sift_down(v, 0, end, &mut less);
    }
}

/// Moves `v[node]` down until the heap `v[..end]` is ordered again.
fn sift_down<T>(v: &mut [T], mut node: usize, end: usize, less: &mut impl FnMut(&T, &T) -> bool) {
    loop {
        let mut child = 2 * node + 1;
        if child >= end {
            return;
        }
        if child + 1 < end && lt(v, child, child + 1, less) {
            child += 1;
        }
        if !lt(v, node, child, less) {
            return;
        }
        v.swap(node, child);
        node = child;
    }
}

/// `v[a] < v[b]`; false for an index out of range (never the case above).
fn lt<T>(v: &[T], a: usize, b: usize, less: &mut impl FnMut(&T, &T) -> bool) -> bool {
    match (v.get(a), v.get(b)) {
        (Some(x), Some(y)) => less(x, y),
        _ => false,
    }
}
