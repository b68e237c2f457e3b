//! The benchmark's pages, made from its saved results (`make bench-report`);
//! `tests/bench_report.rs` checks the committed pages are what they make.

pub mod report;
