//! The harness's echo upstream as a program: `echo-upstream [127.0.0.1:18080]`.
//! The examples' envoy.yaml files route to it.

fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18080".into());
    let addr = addr
        .parse()
        .unwrap_or_else(|e| panic!("bad address {addr:?}: {e}"));
    let upstream = harness::Upstream::bind(addr);
    println!("echo upstream listening on {}", upstream.addr());
    loop {
        std::thread::park();
    }
}
