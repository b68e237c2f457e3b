//! A capture Wireshark opens, as pcap or pcapng: each HTTP record as a
//! synthesized HTTP/1.1 exchange on its own TCP stream (to port 80, so it is
//! decoded as HTTP), each TCP record byte for byte in its order of events.
//! IPv4 over Ethernet; a record's own IPv4 addresses are used when it has
//! them. Packets carry the record's times (an HTTP record's
//! `stream_info.start_time` and duration, a TCP event's timestamp); a record
//! without them is stamped with the time it was read, and says so in a
//! pcapng comment. Bytes are produced record by record ([`Pcap::take`]), so
//! a capture can be written as a stream while records arrive.

use crate::record::{reason_phrase, Direction, HttpRecord, Item, Message, Record, TcpRecord};
use crate::time::{micros, now_micros};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::Ipv4Addr;

const MSS: usize = 1460;
const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const PSH: u8 = 0x08;
const FIN: u8 = 0x01;
/// The handshake's packets go 1 µs apart just before a record's first data,
/// which is at the recorded time.
const HANDSHAKE: i64 = 4;
/// Closed connections remembered (a stream may run for days).
const CLOSED_KEPT: usize = 4096;

/// The file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// libpcap: read by every tool; no per-packet comments.
    Pcap,
    /// pcapng: the first packet of each record carries a comment (request
    /// line and status, the verified caller, truncation, where its time
    /// came from).
    Pcapng,
}

type Endpoint = (Ipv4Addr, u16);

/// One TCP stream: its endpoints and the next sequence number each way.
struct Flow {
    client: Endpoint,
    server: Endpoint,
    c_seq: u32,
    s_seq: u32,
}

/// A packet without data: from the client or not, sequence, ack, flags.
type Empty = (bool, u32, u32, u8);

impl Flow {
    /// The handshake; the flow after it.
    fn open(w: &mut Writer, client: Endpoint, server: Endpoint) -> Flow {
        let (c, s) = (1000u32, 5000u32);
        let flow = Flow {
            client,
            server,
            c_seq: c + 1,
            s_seq: s + 1,
        };
        flow.empty(
            w,
            [
                (true, c, 0, SYN),
                (false, s, c + 1, SYN | ACK),
                (true, c + 1, s + 1, ACK),
            ],
        );
        flow
    }

    /// Both FINs and the last ACK.
    fn close(&self, w: &mut Writer) {
        let (c, s) = (self.c_seq, self.s_seq);
        self.empty(
            w,
            [
                (true, c, s, FIN | ACK),
                (false, s, c + 1, FIN | ACK),
                (true, c + 1, s + 1, ACK),
            ],
        );
    }

    fn empty(&self, w: &mut Writer, packets: [Empty; 3]) {
        for (from_client, seq, ack, flags) in packets {
            w.packet(None, self.header(from_client, seq, ack, flags), &[]);
        }
    }

    fn header(&self, from_client: bool, seq: u32, ack: u32, flags: u8) -> Header {
        let (from, to) = if from_client {
            (self.client, self.server)
        } else {
            (self.server, self.client)
        };
        Header {
            from,
            to,
            seq,
            ack,
            flags,
        }
    }

    /// `bytes` from one side in MSS-sized segments, the first at `at`.
    fn send(&mut self, w: &mut Writer, mut at: Option<i64>, from_client: bool, bytes: &[u8]) {
        for segment in bytes.chunks(MSS) {
            let (seq, ack) = if from_client {
                (self.c_seq, self.s_seq)
            } else {
                (self.s_seq, self.c_seq)
            };
            w.packet(
                at.take(),
                self.header(from_client, seq, ack, PSH | ACK),
                segment,
            );
            let next = seq.wrapping_add(segment.len() as u32);
            if from_client {
                self.c_seq = next;
            } else {
                self.s_seq = next;
            }
        }
    }

    /// The events of a TCP record; whether it closed (then it is closed).
    fn events(&mut self, w: &mut Writer, t: &TcpRecord) -> bool {
        let mut closed = false;
        for e in &t.events {
            match e.direction {
                Direction::Closed => closed = true,
                _ if e.data.is_empty() => {}
                direction => {
                    let at = e.time.as_deref().and_then(micros);
                    self.send(w, at, direction == Direction::Read, &e.data);
                }
            }
        }
        if closed {
            self.close(w);
        }
        closed
    }
}

/// A connection of periodic TCP records, written as its parts arrive.
struct Connection {
    flow: Flow,
    parts: BTreeSet<u64>,
    closed: bool,
    /// The time of its last packet.
    time: i64,
}

/// A TCP record's first event time.
fn first_time(t: &TcpRecord) -> Option<i64> {
    t.events
        .iter()
        .find_map(|e| e.time.as_deref().and_then(micros))
}

pub struct Pcap {
    format: Format,
    out: Vec<u8>,
    streams: u32,
    /// Connections of periodic TCP records, by trace id: open ones, and
    /// the last closed ones (a late repeat of a part is then still known).
    open: BTreeMap<String, Connection>,
    /// The closed connections kept in `open`, oldest first.
    closed: VecDeque<String>,
    /// Records written with the time they were read, having none of their own.
    pub untimed: usize,
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

/// A TCP segment's header fields.
struct Header {
    from: Endpoint,
    to: Endpoint,
    seq: u32,
    ack: u32,
    flags: u8,
}

/// An Ethernet frame holding one IPv4 TCP segment, checksums computed.
fn frame(h: &Header, payload: &[u8]) -> Vec<u8> {
    let Header {
        from,
        to,
        seq,
        ack,
        flags,
    } = *h;
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
    frame
}

/// A pcapng block: type, length, body padded to 32 bits, length again.
fn block(out: &mut Vec<u8>, kind: u32, body: &[u8]) {
    let padded = body.len().div_ceil(4) * 4;
    let total = (12 + padded) as u32;
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&total.to_le_bytes());
    out.extend_from_slice(body);
    out.resize(out.len() + padded - body.len(), 0);
    out.extend_from_slice(&total.to_le_bytes());
}

/// A pcapng option: code, length, value padded to 32 bits.
fn option(out: &mut Vec<u8>, code: u16, value: &[u8]) {
    out.extend_from_slice(&code.to_le_bytes());
    out.extend_from_slice(&(value.len() as u16).to_le_bytes());
    out.extend_from_slice(value);
    out.resize(out.len() + value.len().div_ceil(4) * 4 - value.len(), 0);
}

/// Packets of one record, with its time so far and its comment (written on
/// the first packet only).
struct Writer<'a> {
    pcap: &'a mut Pcap,
    time: i64,
    comment: Option<String>,
}

impl Writer<'_> {
    /// One packet, 1 µs after the one before unless `at` is later.
    fn packet(&mut self, at: Option<i64>, header: Header, payload: &[u8]) {
        self.time = at.map_or(self.time + 1, |at| at.max(self.time + 1));
        let frame = frame(&header, payload);
        let comment = self.comment.take();
        self.pcap
            .record_packet(self.time, &frame, comment.as_deref());
    }
}

impl Pcap {
    pub fn new(format: Format) -> Pcap {
        let mut out = Vec::new();
        match format {
            Format::Pcap => {
                out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
                out.extend_from_slice(&2u16.to_le_bytes());
                out.extend_from_slice(&4u16.to_le_bytes());
                out.extend_from_slice(&0i32.to_le_bytes());
                out.extend_from_slice(&0u32.to_le_bytes());
                out.extend_from_slice(&65535u32.to_le_bytes());
                out.extend_from_slice(&1u32.to_le_bytes()); // Ethernet
            }
            Format::Pcapng => {
                let mut section = Vec::new();
                section.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
                section.extend_from_slice(&1u16.to_le_bytes());
                section.extend_from_slice(&0u16.to_le_bytes());
                // Section length unknown: the capture is a stream.
                section.extend_from_slice(&(-1i64).to_le_bytes());
                option(
                    &mut section,
                    4,
                    concat!("tap ", env!("CARGO_PKG_VERSION")).as_bytes(),
                );
                option(&mut section, 0, &[]);
                block(&mut out, 0x0a0d_0d0a, &section);
                let mut interface = Vec::new();
                interface.extend_from_slice(&1u16.to_le_bytes()); // Ethernet
                interface.extend_from_slice(&0u16.to_le_bytes());
                interface.extend_from_slice(&0u32.to_le_bytes()); // no snap length
                block(&mut out, 1, &interface);
            }
        }
        Pcap {
            format,
            out,
            streams: 0,
            open: BTreeMap::new(),
            closed: VecDeque::new(),
            untimed: 0,
        }
    }

    fn record_packet(&mut self, time_us: i64, frame: &[u8], comment: Option<&str>) {
        let time = u64::try_from(time_us).unwrap_or(0);
        let len = (frame.len() as u32).to_le_bytes();
        match self.format {
            Format::Pcap => {
                self.out
                    .extend_from_slice(&((time / 1_000_000) as u32).to_le_bytes());
                self.out
                    .extend_from_slice(&((time % 1_000_000) as u32).to_le_bytes());
                self.out.extend_from_slice(&len);
                self.out.extend_from_slice(&len);
                self.out.extend_from_slice(frame);
            }
            Format::Pcapng => {
                let mut body = Vec::with_capacity(32 + frame.len());
                body.extend_from_slice(&0u32.to_le_bytes()); // interface 0
                body.extend_from_slice(&((time >> 32) as u32).to_le_bytes());
                body.extend_from_slice(&(time as u32).to_le_bytes());
                body.extend_from_slice(&len);
                body.extend_from_slice(&len);
                body.extend_from_slice(frame);
                body.resize(body.len().div_ceil(4) * 4, 0);
                if let Some(comment) = comment {
                    option(&mut body, 1, comment.as_bytes());
                    option(&mut body, 0, &[]);
                }
                block(&mut self.out, 6, &body);
            }
        }
    }

    /// The next synthetic client endpoint.
    fn client(&self) -> Endpoint {
        (
            Ipv4Addr::new(10, 0, 0, 1),
            40000u16.wrapping_add(self.streams as u16),
        )
    }

    /// The time a record starts at: its own, or (counted in `untimed`) now.
    fn start(&mut self, recorded: Option<i64>) -> (i64, &'static str) {
        match recorded {
            Some(at) => (at, "time from the record"),
            None => {
                self.untimed += 1;
                (
                    now_micros(),
                    "no time in the record: stamped when tap read it",
                )
            }
        }
    }

    /// One document of a record stream: an HTTP record, a whole TCP record,
    /// or a part of a connection (written after the parts before it).
    pub fn item(&mut self, item: &Item) {
        match item {
            Item {
                record: Record::Http(h),
                ..
            } => self.http(h),
            Item {
                record: Record::Tcp(t),
                part: None,
            } => self.tcp(t),
            Item {
                record: Record::Tcp(t),
                part: Some(n),
            } => self.segment(*n, t),
        }
    }

    pub fn http(&mut self, r: &HttpRecord) {
        let client = r
            .downstream
            .as_ref()
            .and_then(|(_, remote)| Some((remote.0.parse().ok()?, remote.1)))
            .unwrap_or_else(|| self.client());
        let server = (Ipv4Addr::new(10, 0, 0, 2), 80);
        self.streams += 1;
        let (start, origin) = self.start(r.start_time.as_deref().and_then(micros));
        let mut comment = format!("tap: {} {}", r.method(), r.path());
        if let Some(status) = r.status() {
            comment.push_str(&format!(" -> {status}"));
        }
        match &r.peer {
            Some(Some(principal)) => comment.push_str(&format!("; caller {principal} (mTLS)")),
            Some(None) => comment.push_str("; no client certificate"),
            None => {}
        }
        if r.request.body_truncated || r.response.as_ref().is_some_and(|m| m.body_truncated) {
            comment.push_str("; body truncated");
        }
        if r.incomplete {
            comment.push_str("; incomplete");
        }
        comment.push_str(&format!("; {origin}"));
        let mut w = Writer {
            pcap: self,
            time: start - HANDSHAKE,
            comment: Some(comment),
        };
        let mut flow = Flow::open(&mut w, client, server);
        flow.send(&mut w, Some(start), true, &request_bytes(r));
        if let Some(m) = &r.response {
            let answered = r.duration_ms.map(|ms| start + (ms * 1000.0) as i64);
            let bytes = response_bytes(r.status().unwrap_or(0), m);
            flow.send(&mut w, answered, false, &bytes);
        }
        flow.close(&mut w);
    }

    fn endpoints(&self, t: &TcpRecord) -> (Endpoint, Endpoint) {
        let endpoint = |a: &(String, u16), fallback: Endpoint| -> Endpoint {
            a.0.parse().ok().map_or(fallback, |ip| (ip, a.1))
        };
        (
            endpoint(&t.remote, self.client()),
            endpoint(&t.local, (Ipv4Addr::new(10, 0, 0, 2), 9000)),
        )
    }

    fn tcp_comment(t: &TcpRecord, part: Option<u64>, origin: &str) -> String {
        let mut comment = format!("tap: TCP connection {}", t.trace_id);
        if let Some(n) = part {
            comment.push_str(&format!(", part {n}"));
        }
        if t.read_truncated || t.write_truncated {
            comment.push_str("; data truncated");
        }
        format!("{comment}; {origin}")
    }

    pub fn tcp(&mut self, t: &TcpRecord) {
        let (client, server) = self.endpoints(t);
        self.streams += 1;
        let (start, origin) = self.start(first_time(t));
        let mut w = Writer {
            pcap: self,
            time: start - HANDSHAKE,
            comment: Some(Self::tcp_comment(t, None, origin)),
        };
        let mut flow = Flow::open(&mut w, client, server);
        if !flow.events(&mut w, t) {
            flow.close(&mut w);
        }
    }

    /// Part `n` of a connection still open when it was written: the
    /// handshake with the first part seen, the close with the part that
    /// closed it; a part seen before is written once.
    fn segment(&mut self, n: u64, t: &TcpRecord) {
        let seen = |c: &Connection| c.closed || c.parts.contains(&n);
        if self.open.get(&t.trace_id).is_some_and(seen) {
            return;
        }
        let known = self.open.remove(&t.trace_id);
        let (start, origin) = self.start(first_time(t));
        let mut c = match known {
            Some(c) => c,
            None => {
                let (client, server) = self.endpoints(t);
                self.streams += 1;
                let mut w = Writer {
                    pcap: self,
                    time: start - HANDSHAKE,
                    comment: None,
                };
                let flow = Flow::open(&mut w, client, server);
                Connection {
                    flow,
                    parts: BTreeSet::new(),
                    closed: false,
                    time: w.time,
                }
            }
        };
        c.parts.insert(n);
        let mut w = Writer {
            pcap: self,
            time: c.time.max(start - 1),
            comment: Some(Self::tcp_comment(t, Some(n), origin)),
        };
        c.closed = c.flow.events(&mut w, t);
        c.time = w.time;
        if c.closed {
            self.closed.push_back(t.trace_id.clone());
            if self.closed.len() > CLOSED_KEPT {
                if let Some(oldest) = self.closed.pop_front() {
                    self.open.remove(&oldest);
                }
            }
        }
        self.open.insert(t.trace_id.clone(), c);
    }

    /// The bytes written since the last call (the file header first).
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// What is left to write: connections whose close was never recorded
    /// are closed, as the capture ends.
    pub fn finish(mut self) -> Vec<u8> {
        for (_, c) in std::mem::take(&mut self.open) {
            if !c.closed {
                let mut w = Writer {
                    pcap: &mut self,
                    time: c.time,
                    comment: None,
                };
                c.flow.close(&mut w);
            }
        }
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
