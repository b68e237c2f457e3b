//! Host calls per request for the benchmark's chain request, counted through
//! the recording host: the suite's budget, the suite against the same four
//! filters as separate modules, and the floor rows' counts.

// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use bench::configurations::{chain_request, suite_host_calls, suite_parts};
use bench::host_calls::{module, suite, Call};
use filter_common::host::contexts::ConfigureFn;
use filter_common::host::plugin::Plugin;

/// The suite's host calls for the chain's request: one header-map read, the
/// outputs (11 header appends, 10 filter-state entries), the removal of the
/// metadata header, the principal, 6 counters. A change that adds a call
/// per request fails here, before any benchmark.
const SUITE_BUDGET: usize = 30;

#[test]
fn the_suite_stays_within_its_budget() {
    let calls = match suite(&suite_parts(), &chain_request()) {
        Ok(calls) => calls,
        Err(e) => panic!("{e}"),
    };
    assert!(
        calls.total() <= SUITE_BUDGET,
        "{} host calls, budget {SUITE_BUDGET}: {:?}",
        calls.total(),
        calls.calls
    );
}

#[test]
fn the_suite_makes_fewer_calls_than_the_separate_modules() {
    let request = chain_request();
    let separate: [(&str, ConfigureFn<dyn Plugin>); 4] = [
        ("tap_http", tap_http::filter::configure),
        ("peer_metadata", peer_metadata::filter::configure),
        ("l7_policy", l7_policy::filter::configure),
        ("cf_headers", cf_headers::filter::configure),
    ];
    let parts = suite_parts();
    let mut reads = 0;
    let mut total = 0;
    for (name, configure) in separate {
        let Some((_, config)) = parts.iter().find(|(n, _)| *n == name) else {
            panic!("no {name} in the suite's parts");
        };
        let calls = match module(configure, config, &request) {
            Ok(calls) => calls,
            Err(e) => panic!("{name}: {e}"),
        };
        reads += calls.count(Call::GetHeaderMapPairs);
        total += calls.total();
    }
    let Ok(together) = suite(&parts, &request) else {
        panic!("the suite refused the parts");
    };
    // Each separate module reads the request headers itself (the tap at
    // the log); the suite reads them once and decides the tap from memory.
    assert_eq!(together.count(Call::GetHeaderMapPairs), 1);
    assert!(reads >= 4, "{reads} reads by the separate modules");
    assert!(together.total() < total, "{} vs {total}", together.total());
}

#[test]
fn the_floor_rows_make_the_suites_calls() {
    let calls = match suite_host_calls() {
        Ok(calls) => calls,
        Err(e) => panic!("{e}"),
    };
    let Ok(all) = suite(&suite_parts(), &chain_request()) else {
        panic!("the suite refused the parts");
    };
    let probed = calls.header_map_reads
        + calls.header_removals
        + calls.peer_header_appends
        + calls.other_header_appends
        + calls.peer_filter_state_writes
        + calls.other_filter_state_writes
        + calls.principal_reads
        + calls.counter_increments;
    assert_eq!(probed, all.total(), "{:?}", all.calls);
    // Without peer_metadata the appends are cf_headers' four.
    assert_eq!(calls.other_header_appends, 4);
    assert!(calls.peer_header_appends > 0 && calls.peer_filter_state_writes > 0);
}
