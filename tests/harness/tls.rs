//! Certificates made for one test (a CA, a server certificate for
//! 127.0.0.1/localhost, client certificates with a chosen URI SAN such as a
//! SPIFFE ID) and an HTTP/1.1 client over TLS, with or without a client
//! certificate.

use rcgen::{BasicConstraints, Certificate, CertificateParams, DnType, IsCa, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use serde_json::{json, Value};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

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
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.cert.der().clone()).expect("root");
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots);
        let config = match client {
            Some(issued) => builder
                .with_client_auth_cert(
                    vec![CertificateDer::from(issued.cert.der().to_vec())],
                    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(issued.key.serialize_der())),
                )
                .expect("client certificate"),
            None => builder.with_no_client_auth(),
        };
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
}
