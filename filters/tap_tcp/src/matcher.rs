//! What a connection is matched on: addresses, destination port and SNI, all
//! known when the connection starts.

use filter_common::predicate::{Condition, StringMatch};
use std::net::IpAddr;

pub type Predicate = filter_common::predicate::Predicate<Test>;

#[derive(Debug)]
pub enum Test {
    DestinationPort {
        min: u16,
        max: u16,
    },
    SourceAddress(Vec<Cidr>),
    DestinationAddress(Vec<Cidr>),
    /// `connection.requested_server_name`; false when the client sent none.
    Sni(StringMatch),
}

/// The connection as the predicates see it.
#[derive(Debug, Default)]
pub struct View<'a> {
    pub source: Option<IpAddr>,
    pub destination: Option<IpAddr>,
    pub destination_port: Option<u16>,
    pub sni: Option<&'a str>,
}

impl Condition for Test {
    type View<'a> = View<'a>;

    fn eval(&self, view: &View) -> Option<bool> {
        Some(match self {
            Test::DestinationPort { min, max } => view
                .destination_port
                .is_some_and(|p| (*min..=*max).contains(&p)),
            Test::SourceAddress(cidrs) => view
                .source
                .is_some_and(|ip| cidrs.iter().any(|c| c.contains(ip))),
            Test::DestinationAddress(cidrs) => view
                .destination
                .is_some_and(|ip| cidrs.iter().any(|c| c.contains(ip))),
            Test::Sni(m) => view.sni.is_some_and(|s| !s.is_empty() && m.matches(s)),
        })
    }
}

/// An address range such as `10.0.0.0/8` or `fd00::/8`; a plain address is a
/// range of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `addr` or `addr/prefix`; `None` when it is neither.
    pub fn parse(text: &str) -> Option<Cidr> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = addr.parse().ok()?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p.parse().ok()?,
            Some(_) => return None,
        };
        (prefix <= max).then_some(Cidr { network, prefix })
    }

    /// Whether `ip` is in the range. An IPv4-mapped IPv6 address
    /// (`::ffff:10.0.0.1`, as dual-stack listeners report IPv4 peers) counts
    /// as its IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let (whole, rest) = ((bits / 8) as usize, bits % 8);
    if a.get(..whole) != b.get(..whole) {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    a.get(whole).map(|a| a & mask) == b.get(whole).map(|b| b & mask)
}

/// The IP of an Envoy address string (`1.2.3.4:80`, `[::1]:80`).
pub fn address_ip(address: &str) -> Option<IpAddr> {
    if let Ok(ip) = address.parse() {
        return Some(ip);
    }
    let host = match address.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => address,
    };
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}
