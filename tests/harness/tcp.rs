//! A TCP echo server for network-filter tests: every connection gets back
//! exactly the bytes it sent; when the client half-closes, the server sends
//! what is left and half-closes too.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub struct TcpEcho {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<std::thread::JoinHandle<()>>,
}

impl TcpEcho {
    /// Listens on 127.0.0.1 at a free port.
    pub fn start() -> TcpEcho {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind echo");
        let addr = listener.local_addr().expect("local addr");
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::Relaxed) {
                    break;
                }
                if let Ok(conn) = conn {
                    std::thread::spawn(move || echo(conn));
                }
            }
        });
        TcpEcho {
            addr,
            stop,
            accept: Some(accept),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

fn echo(mut conn: TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if conn.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
    let _ = conn.shutdown(Shutdown::Write);
}

impl Drop for TcpEcho {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if TcpStream::connect(self.addr).is_ok() {
            if let Some(accept) = self.accept.take() {
                let _ = accept.join();
            }
        }
    }
}

/// Sends `data` in `chunk`-byte writes while reading the echo on another
/// thread, half-closes, and returns everything that came back.
pub fn exchange(addr: SocketAddr, data: &[u8], chunk: usize) -> Vec<u8> {
    let mut conn = TcpStream::connect(addr).expect("connect");
    let mut reader = conn.try_clone().expect("clone");
    let read = std::thread::spawn(move || {
        let mut back = Vec::new();
        reader.read_to_end(&mut back).expect("read echo");
        back
    });
    for piece in data.chunks(chunk.max(1)) {
        conn.write_all(piece).expect("write");
    }
    conn.shutdown(Shutdown::Write).expect("half-close");
    read.join().expect("reader")
}

/// Sends `data`, reads its echo, then half-closes: unlike [`exchange`], the
/// FIN never arrives while a listener filter (`tls_inspector`) still holds
/// the connection, which makes Envoy close it outright.
pub fn echo_then_close(addr: SocketAddr, data: &[u8]) -> Vec<u8> {
    let mut conn = TcpStream::connect(addr).expect("connect");
    conn.write_all(data).expect("write");
    let mut back = vec![0u8; data.len()];
    conn.read_exact(&mut back).expect("read the echo");
    conn.shutdown(Shutdown::Write).expect("half-close");
    let _ = conn.read_to_end(&mut Vec::new());
    back
}
