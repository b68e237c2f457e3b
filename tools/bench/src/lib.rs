//! The benchmark's configurations, the host calls they make (counted
//! natively), and its pages, made from its saved results (`make
//! bench-report`); `tests/bench_report.rs` checks the committed pages are
//! what they make.

pub mod configurations;
pub mod host_calls;
pub mod report;
