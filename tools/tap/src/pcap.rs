//! A pcap file Wireshark opens: each HTTP record as a synthesized HTTP/1.1
//! exchange on its own TCP stream (to port 80, so it is decoded as HTTP), each
//! TCP record byte for byte in its order of events. IPv4 over Ethernet; a
//! record's own IPv4 addresses are used when it has them.

use crate::record::{reason_phrase, Direction, HttpRecord, Message, TcpRecord};
use std::net::Ipv4Addr;

const MSS: usize = 1460;
const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const PSH: u8 = 0x08;
const FIN: u8 = 0x01;

pub struct Pcap {
    out: Vec<u8>,
    /// Synthetic clock, microseconds: 100 µs between packets.
    time_us: u64,
    streams: u32,
}

type Endpoint = (Ipv4Addr, u16);

impl Default for Pcap {
    fn default() -> Self {
        Pcap::new()
    }
}

fn checksum(chunks: &[&[u8]]) -> u16 {
    let mut sum = 0u32;
    for chunk in chunks {
        for w in chunk.chunks(2) {
            // An odd chunk's last byte is padded with a zero byte.
            let high = w.first().copied().unwrap_or(0);
            let low = w.get(1).copied().unwrap_or(0);
            sum += u32::from(u16::from_be_bytes([high, low]));
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

impl Pcap {
    pub fn new() -> Pcap {
        let mut out = Vec::new();
        out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&4u16.to_le_bytes());
        out.extend_from_slice(&0i32.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&65535u32.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes()); // Ethernet
        Pcap {
            out,
            time_us: 1_700_000_000_000_000,
            streams: 0,
        }
    }

    fn packet(
        &mut self,
        from: Endpoint,
        to: Endpoint,
        seq: u32,
        ack: u32,
        flags: u8,
        payload: &[u8],
    ) {
        let mut tcp = Vec::with_capacity(20 + payload.len());
        tcp.extend_from_slice(&from.1.to_be_bytes());
        tcp.extend_from_slice(&to.1.to_be_bytes());
        tcp.extend_from_slice(&seq.to_be_bytes());
        tcp.extend_from_slice(&ack.to_be_bytes());
        tcp.push(5 << 4);
        tcp.push(flags);
        tcp.extend_from_slice(&65535u16.to_be_bytes());
        tcp.extend_from_slice(&[0, 0, 0, 0]);
        tcp.extend_from_slice(payload);
        let tcp_len = (tcp.len() as u16).to_be_bytes();
        let pseudo = [
            &from.0.octets()[..],
            &to.0.octets()[..],
            &[0, 6],
            &tcp_len[..],
        ]
        .concat();
        let sum = checksum(&[&pseudo, &tcp]);
        if let Some(field) = tcp.get_mut(16..18) {
            field.copy_from_slice(&sum.to_be_bytes());
        }
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&((20 + tcp.len()) as u16).to_be_bytes());
        ip.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0]);
        ip.extend_from_slice(&from.0.octets());
        ip.extend_from_slice(&to.0.octets());
        let sum = checksum(&[&ip]);
        if let Some(field) = ip.get_mut(10..12) {
            field.copy_from_slice(&sum.to_be_bytes());
        }
        let mut frame = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
        frame.extend_from_slice(&ip);
        frame.extend_from_slice(&tcp);
        self.time_us += 100;
        self.out
            .extend_from_slice(&((self.time_us / 1_000_000) as u32).to_le_bytes());
        self.out
            .extend_from_slice(&((self.time_us % 1_000_000) as u32).to_le_bytes());
        self.out
            .extend_from_slice(&(frame.len() as u32).to_le_bytes());
        self.out
            .extend_from_slice(&(frame.len() as u32).to_le_bytes());
        self.out.extend_from_slice(&frame);
    }

    /// One TCP connection: handshake, `chunks` (true: client to server) in
    /// order, and both FINs.
    pub fn stream(&mut self, client: Endpoint, server: Endpoint, chunks: &[(bool, Vec<u8>)]) {
        self.streams += 1;
        let (mut c_seq, mut s_seq) = (1000u32, 5000u32);
        self.packet(client, server, c_seq, 0, SYN, &[]);
        self.packet(server, client, s_seq, c_seq + 1, SYN | ACK, &[]);
        c_seq += 1;
        s_seq += 1;
        self.packet(client, server, c_seq, s_seq, ACK, &[]);
        for (from_client, data) in chunks {
            for segment in data.chunks(MSS) {
                if *from_client {
                    self.packet(client, server, c_seq, s_seq, PSH | ACK, segment);
                    c_seq = c_seq.wrapping_add(segment.len() as u32);
                } else {
                    self.packet(server, client, s_seq, c_seq, PSH | ACK, segment);
                    s_seq = s_seq.wrapping_add(segment.len() as u32);
                }
            }
        }
        self.packet(client, server, c_seq, s_seq, FIN | ACK, &[]);
        self.packet(server, client, s_seq, c_seq + 1, FIN | ACK, &[]);
        self.packet(client, server, c_seq + 1, s_seq + 1, ACK, &[]);
    }

    /// The next synthetic client endpoint.
    fn client(&self) -> Endpoint {
        (
            Ipv4Addr::new(10, 0, 0, 1),
            40000u16.wrapping_add(self.streams as u16),
        )
    }

    pub fn http(&mut self, r: &HttpRecord) {
        let client = r
            .downstream
            .as_ref()
            .and_then(|(_, remote)| Some((remote.0.parse().ok()?, remote.1)))
            .unwrap_or_else(|| self.client());
        let server = (Ipv4Addr::new(10, 0, 0, 2), 80);
        let mut chunks = vec![(true, request_bytes(r))];
        if let Some(m) = &r.response {
            chunks.push((false, response_bytes(r.status().unwrap_or(0), m)));
        }
        self.stream(client, server, &chunks);
    }

    pub fn tcp(&mut self, t: &TcpRecord) {
        let endpoint = |a: &(String, u16), fallback: Endpoint| -> Endpoint {
            a.0.parse().ok().map_or(fallback, |ip| (ip, a.1))
        };
        let client = endpoint(&t.remote, self.client());
        let server = endpoint(&t.local, (Ipv4Addr::new(10, 0, 0, 2), 9000));
        let chunks: Vec<(bool, Vec<u8>)> = t
            .events
            .iter()
            .filter(|e| e.direction != Direction::Closed && !e.data.is_empty())
            .map(|e| (e.direction == Direction::Read, e.data.clone()))
            .collect();
        self.stream(client, server, &chunks);
    }

    pub fn finish(self) -> Vec<u8> {
        self.out
    }
}

/// Headers, then the body with a length that matches what was recorded
/// (chunked when there are trailers).
fn message_bytes(out: &mut Vec<u8>, m: &Message, skip: &[&str]) {
    for (name, value) in &m.headers {
        let lower = name.to_ascii_lowercase();
        if name.starts_with(':')
            || skip.contains(&lower.as_str())
            || lower == "content-length"
            || lower == "transfer-encoding"
        {
            continue;
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    if m.body_truncated {
        out.extend_from_slice(b"x-tap-truncated: true\r\n");
    }
    if m.trailers.is_empty() {
        out.extend_from_slice(format!("content-length: {}\r\n\r\n", m.body.len()).as_bytes());
        out.extend_from_slice(&m.body);
    } else {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n");
        if !m.body.is_empty() {
            out.extend_from_slice(format!("{:x}\r\n", m.body.len()).as_bytes());
            out.extend_from_slice(&m.body);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n");
        for (name, value) in &m.trailers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
    }
}

pub fn request_bytes(r: &HttpRecord) -> Vec<u8> {
    let mut out = format!("{} {} HTTP/1.1\r\n", r.method(), r.path()).into_bytes();
    let authority = r.authority();
    if !authority.is_empty() {
        out.extend_from_slice(format!("host: {authority}\r\n").as_bytes());
    }
    message_bytes(&mut out, &r.request, &["host"]);
    out
}

pub fn response_bytes(status: u16, m: &Message) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} {}\r\n", reason_phrase(status)).into_bytes();
    message_bytes(&mut out, m, &[]);
    out
}
