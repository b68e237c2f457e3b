//! Certificates made for one test (a CA, a server certificate for
//! 127.0.0.1/localhost, client certificates with a chosen URI SAN such as a
//! SPIFFE ID), an HTTP/1.1 client over TLS, with or without a client
//! certificate, and a bridge that carries the plaintext clients of
//! [`crate::Request`] (HTTP/1.1 and HTTP/2) over mTLS.

use rcgen::{BasicConstraints, Certificate, CertificateParams, DnType, IsCa, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use serde_json::{json, Value};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// A certificate and its private key.
pub struct Issued {
    pub cert: Certificate,
    pub key: KeyPair,
}

pub struct Pki {
    ca: Issued,
}

impl Default for Pki {
    fn default() -> Self {
        Pki::new()
    }
}

impl Pki {
    pub fn new() -> Pki {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "test CA");
        let cert = params.self_signed(&key).expect("CA certificate");
        Pki {
            ca: Issued { cert, key },
        }
    }

    fn issue(&self, sans: Vec<SanType>) -> Issued {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.subject_alt_names = sans;
        let cert = params
            .signed_by(&key, &self.ca.cert, &self.ca.key)
            .expect("certificate");
        Issued { cert, key }
    }

    /// For Envoy's listener: `localhost` and 127.0.0.1.
    pub fn server(&self) -> Issued {
        self.issue(vec![
            SanType::DnsName("localhost".try_into().expect("dns")),
            SanType::IpAddress([127, 0, 0, 1].into()),
        ])
    }

    /// For a server named `host` (DNS SAN).
    pub fn host(&self, host: &str) -> Issued {
        self.issue(vec![SanType::DnsName(host.try_into().expect("dns"))])
    }

    /// An upstream `transport_socket` that speaks TLS with SNI `sni` and
    /// trusts only this CA for a certificate naming `sni`.
    pub fn upstream_tls(&self, sni: &str) -> Value {
        json!({
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                "sni": sni,
                "common_tls_context": {"validation_context": {
                    "trusted_ca": {"inline_string": self.ca.cert.pem()},
                    "match_typed_subject_alt_names": [{"san_type": "DNS", "matcher": {"exact": sni}}]
                }}
            }
        })
    }

    /// For a client, with URI SAN `uri` (a SPIFFE ID, say).
    pub fn client(&self, uri: &str) -> Issued {
        self.issue(vec![SanType::URI(uri.try_into().expect("URI SAN"))])
    }

    /// A filter chain's `transport_socket`: TLS with `server`, asking for a
    /// client certificate signed by this CA (`require`: refuse clients without one).
    pub fn downstream_tls(&self, server: &Issued, require: bool) -> Value {
        json!({"transport_socket": {
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
                "require_client_certificate": require,
                "common_tls_context": {
                    "tls_certificates": [{
                        "certificate_chain": {"inline_string": server.cert.pem()},
                        "private_key": {"inline_string": server.key.serialize_pem()}
                    }],
                    "validation_context": {"trusted_ca": {"inline_string": self.ca.cert.pem()}}
                }
            }
        }})
    }

    /// Sends `request` (raw HTTP/1.1 bytes, which should ask for
    /// `connection: close`) over TLS to `addr`, presenting `client` if given;
    /// returns the raw response.
    pub fn send(&self, addr: SocketAddr, client: Option<&Issued>, request: &[u8]) -> Vec<u8> {
        let config = self.client_config(client, Vec::new());
        let name = ServerName::try_from("localhost").expect("name");
        let mut conn = rustls::ClientConnection::new(Arc::new(config), name).expect("TLS client");
        let mut sock = TcpStream::connect(addr).expect("connect");
        let mut tls = rustls::Stream::new(&mut conn, &mut sock);
        tls.write_all(request).expect("write over TLS");
        let mut response = Vec::new();
        match tls.read_to_end(&mut response) {
            Ok(_) => {}
            // Envoy may close without close_notify after `connection: close`.
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => {}
            Err(e) => panic!("read over TLS: {e}"),
        }
        response
    }

    /// A plaintext port on 127.0.0.1 whose every connection goes on to
    /// `target` over TLS, presenting `client` if given and offering the ALPN
    /// protocol `alpn` (`h2`, `http/1.1`): `Request::send` through it
    /// reaches an mTLS listener as that caller over either protocol.
    pub fn bridge(&self, target: SocketAddr, client: Option<&Issued>, alpn: &str) -> TlsBridge {
        let config = Arc::new(self.client_config(client, vec![alpn.as_bytes().to_vec()]));
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind bridge");
        let addr = listener.local_addr().expect("bridge addr");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let accept = std::thread::spawn(move || {
            for plain in listener.incoming() {
                if stopped.load(Ordering::Relaxed) {
                    break;
                }
                if let Ok(plain) = plain {
                    let config = config.clone();
                    std::thread::spawn(move || {
                        if carry(&plain, target, config).is_err() {
                            // The client sees the failure as a reset.
                            let _ = plain.shutdown(Shutdown::Both);
                        }
                    });
                }
            }
        });
        TlsBridge {
            addr,
            stop,
            accept: Some(accept),
        }
    }

    fn client_config(&self, client: Option<&Issued>, alpn: Vec<Vec<u8>>) -> rustls::ClientConfig {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.cert.der().clone()).expect("root");
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots);
        let mut config = match client {
            Some(issued) => builder
                .with_client_auth_cert(
                    vec![CertificateDer::from(issued.cert.der().to_vec())],
                    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(issued.key.serialize_der())),
                )
                .expect("client certificate"),
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = alpn;
        config
    }
}

/// See [`Pki::bridge`]; stops accepting when dropped.
pub struct TlsBridge {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<std::thread::JoinHandle<()>>,
}

impl TlsBridge {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for TlsBridge {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if TcpStream::connect(self.addr).is_ok() {
            if let Some(accept) = self.accept.take() {
                let _ = accept.join();
            }
        }
    }
}

/// Sends what the TLS connection has to send.
fn flush(conn: &mut rustls::ClientConnection, mut sock: &TcpStream) -> std::io::Result<()> {
    while conn.wants_write() {
        conn.write_tls(&mut sock)?;
    }
    Ok(())
}

/// One bridged connection: a thread carries the client's bytes into the TLS
/// connection while this one reads TLS records. Each holds the connection's
/// lock while it writes TLS records to the socket, which is enough for the
/// small exchanges of the tests (a peer that stopped reading in one
/// direction would block the other). The client sees the server's close as
/// end of stream.
fn carry(
    plain: &TcpStream,
    target: SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<()> {
    let sock = TcpStream::connect(target)?;
    let name = ServerName::try_from("localhost").expect("name");
    let conn = rustls::ClientConnection::new(config, name).map_err(std::io::Error::other)?;
    let conn = Arc::new(Mutex::new(conn));
    flush(&mut conn.lock().expect("TLS"), &sock)?;
    let (up_conn, up_sock, up_plain) = (conn.clone(), sock.try_clone()?, plain.try_clone()?);
    std::thread::spawn(move || -> std::io::Result<()> {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = (&up_plain).read(&mut buf)?;
            let mut conn = up_conn.lock().expect("TLS");
            if n == 0 {
                conn.send_close_notify();
                return flush(&mut conn, &up_sock);
            }
            conn.writer().write_all(&buf[..n])?;
            flush(&mut conn, &up_sock)?;
        }
    });
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = (&sock).read(&mut buf)?;
        if n == 0 {
            break;
        }
        let mut received = Vec::new();
        let closed = {
            let mut conn = conn.lock().expect("TLS");
            let mut rest = &buf[..n];
            let mut closed = false;
            while !rest.is_empty() {
                conn.read_tls(&mut rest)?;
                let state = conn.process_new_packets().map_err(std::io::Error::other)?;
                let mut plaintext = vec![0u8; state.plaintext_bytes_to_read()];
                conn.reader().read_exact(&mut plaintext)?;
                received.extend_from_slice(&plaintext);
                closed |= state.peer_has_closed();
            }
            flush(&mut conn, &sock)?;
            closed
        };
        (&*plain).write_all(&received)?;
        if closed {
            break;
        }
    }
    plain.shutdown(Shutdown::Write)
}

/// What an [`HttpsFiles`] server saw on one connection.
#[derive(Clone, Debug, Default)]
pub struct Seen {
    /// The SNI of a TLS handshake.
    pub sni: Option<String>,
    /// The request line, when the handshake succeeded.
    pub request: Option<String>,
    /// The first bytes, when they were not a TLS handshake (plaintext).
    pub plaintext: Option<Vec<u8>>,
}

/// An HTTPS server on 127.0.0.1 serving fixed files (`GET /<name>`) with a
/// certificate from [`Pki`], recording what each connection sent.
pub struct HttpsFiles {
    port: u16,
    seen: Arc<std::sync::Mutex<Vec<Seen>>>,
}

impl HttpsFiles {
    pub fn start(server: &Issued, files: Vec<(String, Vec<u8>)>) -> HttpsFiles {
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(server.cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server.key.serialize_der())),
        )
        .expect("server certificate");
        let config = Arc::new(config);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let files = Arc::new(files);
        let record = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (config, files, record) = (config.clone(), files.clone(), record.clone());
                std::thread::spawn(move || {
                    let saw = serve(stream, config, &files);
                    record.lock().expect("seen").push(saw);
                });
            }
        });
        HttpsFiles { port, seen }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("seen").clone()
    }
}

fn serve(
    mut sock: TcpStream,
    config: Arc<rustls::ServerConfig>,
    files: &[(String, Vec<u8>)],
) -> Seen {
    let mut saw = Seen::default();
    let _ = sock.set_read_timeout(Some(std::time::Duration::from_secs(5)));
    let mut first = [0u8; 1];
    if sock.peek(&mut first).unwrap_or(0) == 1 && first[0] != 0x16 {
        // Not a TLS handshake record: keep what arrived in the clear.
        let mut buf = vec![0u8; 512];
        let n = sock.read(&mut buf).unwrap_or(0);
        buf.truncate(n);
        saw.plaintext = Some(buf);
        return saw;
    }
    let mut conn = match rustls::ServerConnection::new(config) {
        Ok(c) => c,
        Err(_) => return saw,
    };
    let mut request = Vec::new();
    {
        let mut tls = rustls::Stream::new(&mut conn, &mut sock);
        let mut buf = [0u8; 4096];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            match tls.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => request.extend_from_slice(&buf[..n]),
            }
        }
    }
    saw.sni = conn.server_name().map(str::to_string);
    let text = String::from_utf8_lossy(&request).to_string();
    let line = text.lines().next().unwrap_or("").to_string();
    let path = line.split(' ').nth(1).unwrap_or("").trim_start_matches('/');
    let response = match files.iter().find(|(name, _)| name == path) {
        Some((_, body)) => {
            let mut r = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            )
            .into_bytes();
            r.extend_from_slice(body);
            r
        }
        None => {
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_vec()
        }
    };
    saw.request = Some(line);
    let mut tls = rustls::Stream::new(&mut conn, &mut sock);
    let _ = tls.write_all(&response);
    let _ = tls.flush();
    conn.send_close_notify();
    let _ = conn.write_tls(&mut sock);
    saw
}
