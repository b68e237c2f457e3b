//! The echo upstream: records every request exactly as it arrived and answers
//! with a JSON description of it.
//!
//! Test controls, sent as request headers (and recorded like any other):
//! - `x-echo-status: 404` sets the status;
//! - each `x-echo-response-header: Name: value` adds a response header;
//! - `x-echo-body-size: N` answers N bytes of a repeating pattern instead of JSON;
//! - `x-echo-chunked: 1` sends the body chunked, and each
//!   `x-echo-trailer: Name: value` adds a response trailer (implies chunked);
//! - `x-echo-truncate: N` announces the whole body but sends only N bytes,
//!   then closes: a response reset midway;
//! - `x-echo-token-response: 1` answers an OAuth token response (JSON with
//!   [`ACCESS_TOKEN`] and [`REFRESH_TOKEN`]) instead.

use crate::{header_values, wire, Headers};
use serde_json::json;
use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as the upstream saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    pub method: String,
    pub path: String,
    /// Every header line in arrival order, repeats included, raw value bytes.
    pub headers: Headers,
    pub body: Vec<u8>,
    /// Trailers of a chunked request body.
    pub trailers: Headers,
}

impl Received {
    pub fn header(&self, name: &str) -> Vec<&[u8]> {
        header_values(&self.headers, name)
    }
}

pub struct Upstream {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
    accept: Option<std::thread::JoinHandle<()>>,
}

impl Upstream {
    /// Listens on 127.0.0.1 at a free port.
    pub fn start() -> Upstream {
        Upstream::bind("127.0.0.1:0".parse().expect("addr"))
    }

    pub fn bind(addr: SocketAddr) -> Upstream {
        let listener =
            TcpListener::bind(addr).unwrap_or_else(|e| panic!("bind upstream {addr}: {e}"));
        let addr = listener.local_addr().expect("local addr");
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (received.clone(), stop.clone());
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::Relaxed) {
                    break;
                }
                if let Ok(conn) = conn {
                    let r = r.clone();
                    std::thread::spawn(move || serve(conn, r));
                }
            }
        });
        Upstream {
            addr,
            received,
            stop,
            accept: Some(accept),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Everything received so far, oldest first.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }

    /// The most recent request; panics if none arrived.
    pub fn last(&self) -> Received {
        self.received()
            .pop()
            .expect("the upstream received no request")
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop and wait until it has closed the listener, so
        // the next test can bind the same fixed port.
        if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
            if let Some(accept) = self.accept.take() {
                let _ = accept.join();
            }
        }
    }
}

fn serve(conn: TcpStream, received: Arc<Mutex<Vec<Received>>>) {
    let Ok(mut writer) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(conn);
    while let Ok(Some((start, headers))) = wire::read_head(&mut reader) {
        let Ok((body, trailers)) = wire::read_body(&mut reader, &headers, false) else {
            return;
        };
        let mut parts = start.split(' ');
        let method = parts.next().unwrap_or_default().to_string();
        let path = parts.next().unwrap_or_default().to_string();
        let request = Received {
            method,
            path,
            headers,
            body,
            trailers,
        };
        let (response, close) = respond(&request);
        received.lock().expect("lock").push(request);
        if writer.write_all(&response).is_err() || close {
            return;
        }
    }
}

/// A body of `n` bytes that is easy to check: `0123456789abcdef` repeated.
pub fn pattern(n: usize) -> Vec<u8> {
    b"0123456789abcdef"
        .iter()
        .copied()
        .cycle()
        .take(n)
        .collect()
}

/// The response to `request`, and whether to close the connection after it.
/// The credentials of the `x-echo-token-response` body.
pub const ACCESS_TOKEN: &str = "at-9f2c41d7e8b3a6c5";
pub const REFRESH_TOKEN: &str = "rt-7e1a90c3b5d2f486";

fn respond(request: &Received) -> (Vec<u8>, bool) {
    let text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
    let number = |name: &str| {
        request
            .header(name)
            .first()
            .and_then(|v| text(v).parse::<usize>().ok())
    };
    let status = number("x-echo-status").unwrap_or(200);
    let (body, content_type) = match number("x-echo-body-size") {
        Some(n) => (pattern(n), "application/octet-stream"),
        None if !request.header("x-echo-token-response").is_empty() => (
            json!({"access_token": ACCESS_TOKEN, "token_type": "Bearer", "expires_in": 3600,
                   "refresh_token": REFRESH_TOKEN, "scope": "ships:read"})
            .to_string()
            .into_bytes(),
            "application/json",
        ),
        None => {
            let echo = json!({
                "method": request.method,
                "path": request.path,
                "headers": request.headers.iter().map(|(n, v)| [n.clone(), text(v)]).collect::<Vec<_>>(),
                "body_length": request.body.len(),
                "body": text(&request.body[..request.body.len().min(4096)]),
            });
            (echo.to_string().into_bytes(), "application/json")
        }
    };
    let mut out = format!("HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\n").into_bytes();
    if status == 204 || status == 304 {
        out.extend_from_slice(b"\r\n");
        return (out, false);
    }
    if request.method == "HEAD" {
        out.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
        return (out, false);
    }
    for extra in request.header("x-echo-response-header") {
        out.extend_from_slice(extra);
        out.extend_from_slice(b"\r\n");
    }
    let trailers: Headers = request
        .header("x-echo-trailer")
        .iter()
        .filter_map(|t| {
            let t = text(t);
            let (name, value) = t.split_once(':')?;
            Some((name.trim().to_string(), value.trim().as_bytes().to_vec()))
        })
        .collect();
    if let Some(sent) = number("x-echo-truncate") {
        out.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
        out.extend_from_slice(&body[..sent.min(body.len())]);
        return (out, true);
    }
    if request.header("x-echo-chunked").is_empty() && trailers.is_empty() {
        out.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
        out.extend_from_slice(&body);
        return (out, false);
    }
    out.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n");
    wire::write_chunked(&mut out, &body, 7000, &trailers);
    (out, false)
}
