//! The index heapsort against the standard library's sort, and its
//! comparison count.

// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use filter_common::sort::sorted_indexes;

#[test]
fn sorts_like_the_standard_library() {
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for len in [0, 1, 2, 3, 7, 64, 1000] {
        let v: Vec<u32> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed % 50) as u32
            })
            .collect();
        let mut want = v.clone();
        want.sort();
        let order = sorted_indexes(v.len(), &mut |a, b| v[a] < v[b]);
        let got: Vec<u32> = order.iter().map(|&i| v[i]).collect();
        assert_eq!(got, want, "{len}");
    }
}

#[test]
fn comparisons_are_n_log_n_in_the_worst_case() {
    for n in [1_000usize, 10_000] {
        for v in [
            (0..n).collect::<Vec<_>>(),
            (0..n).rev().collect(),
            vec![7; n],
        ] {
            let mut count = 0usize;
            sorted_indexes(n, &mut |a, b| {
                count += 1;
                v[a] < v[b]
            });
            let log2 = usize::BITS - n.leading_zeros();
            assert!(count <= 3 * n * log2 as usize, "{n}: {count}");
        }
    }
}
