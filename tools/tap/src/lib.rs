//! The `tap` command's library: reading records from every tap format this
//! project and Envoy write, and turning them into lists, readable text,
//! one file per record, HAR 1.2 and pcap; and l7_policy rules suggested
//! from recorded traffic and checked against it.

pub mod check;
pub mod cnp;
pub mod content;
pub mod filter;
pub mod har;
pub mod pcap;
pub mod policy;
pub mod query;
pub mod record;
pub mod report;
pub mod segment;
pub mod show;
pub mod split;
pub mod stream;
pub mod suggest;
pub mod terminal;
pub mod time;
pub mod traffic;
