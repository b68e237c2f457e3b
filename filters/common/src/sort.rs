//! An index heapsort: O(n log n) comparisons in the worst case and one
//! copy of the code in a module whatever is sorted (the standard library's
//! sorts are kilobytes of Wasm per element type). Not stable: compare the
//! indexes too where order among equals matters.

/// The indexes `0..n` ordered by `less(a, b)` ("`a` sorts before `b`").
pub fn sorted_indexes(n: usize, less: &mut dyn FnMut(usize, usize) -> bool) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    for start in (0..n / 2).rev() {
        sift_down(&mut v, start, n, less);
    }
    for end in (1..n).rev() {
        v.swap(0, end);
        sift_down(&mut v, 0, end, less);
    }
    v
}

/// Moves `v[node]` down until the heap `v[..end]` is ordered again.
fn sift_down(
    v: &mut [usize],
    mut node: usize,
    end: usize,
    less: &mut dyn FnMut(usize, usize) -> bool,
) {
    let mut lt = |v: &[usize], a: usize, b: usize| match (v.get(a), v.get(b)) {
        (Some(&x), Some(&y)) => less(x, y),
        _ => false,
    };
    loop {
        let mut child = 2 * node + 1;
        if child >= end {
            return;
        }
        if child + 1 < end && lt(v, child, child + 1) {
            child += 1;
        }
        if !lt(v, node, child) {
            return;
        }
        v.swap(node, child);
        node = child;
    }
}
