//! `oci-layout [DIST [OUT]]`: an OCI image layout for every `DIST/*.wasm`
//! (default `dist/`) in `OUT/<module>/` (default `DIST/oci/`), and each
//! image's manifest digest on standard output.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() > 2 || args.iter().any(|a| a.starts_with('-')) {
        eprintln!("usage: oci-layout [DIST [OUT]]");
        return ExitCode::from(2);
    }
    let dist = PathBuf::from(args.first().map_or("dist", String::as_str));
    let out = args.get(1).map_or_else(|| dist.join("oci"), PathBuf::from);
    match oci_layout::write_layouts(&dist, &out) {
        Ok(written) if written.is_empty() => {
            eprintln!(
                "oci-layout: no *.wasm in {}: run `make build` first",
                dist.display()
            );
            ExitCode::FAILURE
        }
        Ok(written) => {
            for (_, dir, digest) in written {
                println!("{digest}  oci:{}:{}", dir.display(), oci_layout::TAG);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("oci-layout: {e}");
            ExitCode::FAILURE
        }
    }
}
