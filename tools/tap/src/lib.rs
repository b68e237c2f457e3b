//! The `tap` command's library: reading records from every tap format this
//! project and Envoy write, and turning them into lists, readable text,
//! one file per record, HAR 1.2 and pcap.

pub mod filter;
pub mod har;
pub mod pcap;
pub mod record;
pub mod show;
pub mod split;
