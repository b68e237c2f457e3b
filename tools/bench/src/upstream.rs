//! The upstream behind Envoy while the benchmark measures.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};

/// An upstream that answers as fast as it can: `/bytes/N` with N bytes, any
/// other path with `ok`. HTTP/1.1 keep-alive, a thread per connection.
pub fn fast_upstream() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("upstream: {e}"))?;
    let port = listener
        .local_addr()
        .map_err(|e| format!("upstream: {e}"))?
        .port();
    std::thread::spawn(move || {
        let body: &'static [u8] = Box::leak(vec![b'x'; 1 << 20].into_boxed_slice());
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || serve(conn, body));
        }
    });
    Ok(port)
}

fn serve(conn: TcpStream, body: &'static [u8]) {
    let _ = conn.set_nodelay(true);
    let Ok(mut writer) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let size = line
            .split(' ')
            .nth(1)
            .and_then(|p| p.strip_prefix("/bytes/"))
            .and_then(|n| n.parse::<usize>().ok())
            .map_or(2, |n| n.min(body.len()));
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            if header == "\r\n" {
                break;
            }
            if let Some(v) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut skip = vec![0u8; length];
        if reader.read_exact(&mut skip).is_err() {
            return;
        }
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {size}\r\n\r\n"
        );
        // `size` is at most `body.len()`.
        let payload = if size == 2 {
            b"ok"
        } else {
            body.get(..size).unwrap_or_default()
        };
        let out = [head.as_bytes(), payload].concat();
        if writer.write_all(&out).is_err() {
            return;
        }
    }
}
