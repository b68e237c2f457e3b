//! Clients: HTTP/1.1 writes the request bytes itself (so tests can send what
//! libraries refuse: odd case, repeats, non-UTF-8); HTTP/2 is the `h2` crate
//! over cleartext with prior knowledge.

use crate::{header_values, wire, Headers};
use std::io::{self, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    H1,
    H2,
}

#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub authority: String,
    pub headers: Headers,
    pub body: Vec<u8>,
    pub trailers: Headers,
    /// HTTP/1.1: send the body chunked (always so when there are trailers).
    pub chunked: bool,
}

#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Headers,
    pub body: Vec<u8>,
    pub trailers: Headers,
}

impl Response {
    pub fn header(&self, name: &str) -> Vec<&[u8]> {
        header_values(&self.headers, name)
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Request {
    pub fn new(method: &str, path: &str) -> Request {
        Request {
            method: method.into(),
            path: path.into(),
            authority: "localhost".into(),
            headers: Headers::new(),
            body: Vec::new(),
            trailers: Headers::new(),
            chunked: false,
        }
    }

    pub fn get(path: &str) -> Request {
        Request::new("GET", path)
    }

    pub fn authority(mut self, authority: &str) -> Request {
        self.authority = authority.into();
        self
    }

    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Request {
        self.headers.push((name.into(), value.as_ref().to_vec()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = body.into();
        self
    }

    pub fn trailer(mut self, name: &str, value: impl AsRef<[u8]>) -> Request {
        self.trailers.push((name.into(), value.as_ref().to_vec()));
        self
    }

    pub fn chunked(mut self) -> Request {
        self.chunked = true;
        self
    }

    /// Sends over `proto` and panics on a transport error.
    pub fn send(&self, addr: SocketAddr, proto: Proto) -> Response {
        match proto {
            Proto::H1 => self
                .send_h1(addr)
                .unwrap_or_else(|e| panic!("HTTP/1.1 {} {}: {e}", self.method, self.path)),
            Proto::H2 => self
                .send_h2(addr)
                .unwrap_or_else(|e| panic!("HTTP/2 {} {}: {e}", self.method, self.path)),
        }
    }

    /// One request on a new HTTP/1.1 connection, written byte for byte.
    pub fn send_h1(&self, addr: SocketAddr) -> io::Result<Response> {
        let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT)?;
        stream.set_read_timeout(Some(TIMEOUT))?;
        let mut out = format!(
            "{} {} HTTP/1.1\r\nhost: {}\r\n",
            self.method, self.path, self.authority
        )
        .into_bytes();
        wire::write_fields(&mut out, &self.headers);
        let chunked = self.chunked || !self.trailers.is_empty();
        if chunked {
            out.extend_from_slice(b"transfer-encoding: chunked\r\n");
        } else if !self.body.is_empty() || matches!(self.method.as_str(), "POST" | "PUT" | "PATCH")
        {
            out.extend_from_slice(format!("content-length: {}\r\n", self.body.len()).as_bytes());
        }
        out.extend_from_slice(b"connection: close\r\n\r\n");
        if chunked {
            wire::write_chunked(&mut out, &self.body, 16 * 1024, &self.trailers);
        } else {
            out.extend_from_slice(&self.body);
        }
        stream.write_all(&out)?;
        let mut reader = BufReader::new(stream);
        let (status_line, headers) = wire::read_head(&mut reader)?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed before a response",
            )
        })?;
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("bad status line {status_line:?}"),
                )
            })?;
        let (body, trailers) = if self.method == "HEAD" || status == 204 || status == 304 {
            (Vec::new(), Headers::new())
        } else {
            wire::read_body(&mut reader, &headers, true)?
        };
        Ok(Response {
            status,
            headers,
            body,
            trailers,
        })
    }

    /// One request on a new HTTP/2 connection (h2c, prior knowledge).
    pub fn send_h2(&self, addr: SocketAddr) -> Result<Response, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async {
            tokio::time::timeout(TIMEOUT, self.h2_exchange(addr))
                .await
                .map_err(|_| "timed out".to_string())?
        })
    }

    async fn h2_exchange(&self, addr: SocketAddr) -> Result<Response, String> {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        let (client, connection) = h2::client::handshake(tcp)
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let mut client = client.ready().await.map_err(|e| e.to_string())?;
        let mut builder = http::Request::builder()
            .method(self.method.as_str())
            .uri(format!("http://{}{}", self.authority, self.path));
        for (name, value) in &self.headers {
            builder = builder.header(name.as_str(), value.as_slice());
        }
        let request = builder.body(()).map_err(|e| e.to_string())?;
        let end = self.body.is_empty() && self.trailers.is_empty();
        let (response, mut send) = client
            .send_request(request, end)
            .map_err(|e| e.to_string())?;
        if !self.body.is_empty() {
            send.send_data(self.body.clone().into(), self.trailers.is_empty())
                .map_err(|e| e.to_string())?;
        }
        if !self.trailers.is_empty() {
            let mut trailers = http::HeaderMap::new();
            for (name, value) in &self.trailers {
                let name =
                    http::HeaderName::from_bytes(name.as_bytes()).map_err(|e| e.to_string())?;
                let value = http::HeaderValue::from_bytes(value).map_err(|e| e.to_string())?;
                trailers.append(name, value);
            }
            send.send_trailers(trailers).map_err(|e| e.to_string())?;
        }
        let response = response.await.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec()))
            .collect();
        let mut recv = response.into_body();
        let mut body = Vec::new();
        while let Some(chunk) = recv.data().await {
            let chunk = chunk.map_err(|e| e.to_string())?;
            let _ = recv.flow_control().release_capacity(chunk.len());
            body.extend_from_slice(&chunk);
        }
        let trailers = recv
            .trailers()
            .await
            .map_err(|e| e.to_string())?
            .map(|t| {
                t.iter()
                    .map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec()))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Response {
            status,
            headers,
            body,
            trailers,
        })
    }
}
