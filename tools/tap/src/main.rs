//! `tap`: read tap records (this project's filters and Envoy's tap files).
//!
//! ```text
//! tap list  [FILTERS] [FILE|DIR ...]        one line per record
//! tap show  [FILTERS] [FILE|DIR ...]        headers and bodies, binary as hex
//! tap split [FILTERS] --out DIR [FILE ...]  one JSON file per record (tap_<n>.json)
//! tap har   [FILTERS] [FILE ...] > x.har    HAR 1.2 (HTTP records)
//! tap pcap  [FILTERS] --out x.pcap [FILE ...]
//! tap policy suggest [FILTERS] [--format l7_policy|cnp] [--max-literals N]
//!            [--allow-prefix PREFIX ...] [--port N] [--app NAME] [--report FILE]
//!            [--learn-status 2xx,3xx] [--generalize-unauthenticated] [FILE ...]
//! tap policy check POLICY [FILTERS] [--json] [FILE ...]
//! FILTERS: --method M  --path PREFIX  --status 404|5xx|200-299  --header NAME[=VALUE]  --http  --tcp
//! ```
//! Without files, records are read from standard input. A directory means
//! every `*.json` and `*.jsonl` file in it.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use tap_tool::filter::parse_statuses;
use tap_tool::filter::Filter;
use tap_tool::policy::{self, Format};
use tap_tool::record::{parse, Record};
use tap_tool::suggest::Options;
use tap_tool::terminal::visible;
use tap_tool::{har, pcap, show};

const USAGE: &str = "usage: tap list|show|split|har|pcap [--method M] [--path PREFIX] [--status 404|5xx|200-299] [--header NAME[=VALUE]] [--http|--tcp] [--out PATH] [FILE|DIR ...]
       tap policy suggest [FILTERS] [--format l7_policy|cnp] [--max-literals N] [--allow-prefix PREFIX] [--port N] [--app NAME] [--report FILE] [--learn-status 2xx,3xx] [--generalize-unauthenticated] [FILE|DIR ...]
       tap policy check POLICY [FILTERS] [--json] [FILE|DIR ...]";

fn fail(message: &str) -> ExitCode {
    eprintln!("tap: {}", visible(message));
    ExitCode::from(2)
}

fn inputs(paths: &[PathBuf]) -> Result<String, String> {
    if paths.is_empty() {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("stdin: {e}"))?;
        return Ok(text);
    }
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| format!("{}: {e}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json" || x == "jsonl"))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    let mut text = String::new();
    for file in files {
        let content =
            std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        text.push_str(&content);
        text.push('\n');
    }
    Ok(text)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(mut command) = args.first().cloned() else {
        return fail(USAGE);
    };
    let mut rest = args.iter().skip(1);
    let mut policy_file = None;
    if command == "policy" {
        command = match rest.next().map(String::as_str) {
            Some("suggest") => "suggest".into(),
            Some("check") => match rest.next() {
                Some(file) if !file.starts_with("--") => {
                    policy_file = Some(PathBuf::from(file));
                    "check".into()
                }
                _ => return fail("policy check needs the POLICY file first"),
            },
            _ => return fail(USAGE),
        };
    }
    let mut filter = Filter::default();
    let mut out: Option<PathBuf> = None;
    let mut report: Option<PathBuf> = None;
    let mut options = Options::default();
    let mut format = Format::L7Policy;
    let mut json = false;
    let mut paths = Vec::new();
    while let Some(arg) = rest.next() {
        let mut value = |name: &str| rest.next().cloned().ok_or(format!("{name} needs a value"));
        let number = |name: &str, v: String| {
            v.parse::<u64>()
                .map_err(|_| format!("{name} needs a number, not {v:?}"))
        };
        let result = match arg.as_str() {
            "--format" => value("--format").and_then(|v| {
                format = match v.as_str() {
                    "l7_policy" => Format::L7Policy,
                    "cnp" => Format::Cnp,
                    _ => return Err(format!("--format is l7_policy or cnp, not {v:?}")),
                };
                Ok(())
            }),
            "--max-literals" => value("--max-literals")
                .and_then(|v| number("--max-literals", v))
                .map(|n| options.max_literals = n as usize),
            "--allow-prefix" => value("--allow-prefix").and_then(|p| {
                if p.starts_with('/') {
                    options.allow_prefixes.push(p);
                    Ok(())
                } else {
                    Err(format!(
                        "--allow-prefix takes a path prefix starting with /, not {p:?}"
                    ))
                }
            }),
            "--port" => value("--port")
                .and_then(|v| number("--port", v))
                .and_then(|n| u16::try_from(n).map_err(|_| format!("--port {n} is not a port")))
                .map(|n| options.port = n),
            "--app" => value("--app").map(|v| options.app = Some(v)),
            "--learn-status" => value("--learn-status")
                .and_then(|v| parse_statuses(&v).map_err(|e| format!("--learn-status: {e}")))
                .map(|s| options.learn_status = s),
            "--generalize-unauthenticated" => {
                options.generalize_unauthenticated = true;
                Ok(())
            }
            "--report" => value("--report").map(|v| report = Some(PathBuf::from(v))),
            "--json" => {
                json = true;
                Ok(())
            }
            "--method" => value("--method").map(|v| filter.method = Some(v)),
            "--path" => value("--path").map(|v| filter.path_prefix = Some(v)),
            "--status" => value("--status")
                .and_then(|v| parse_statuses(&v).map_err(|e| format!("--status: {e}")))
                .map(|s| filter.status = Some(s)),
            "--header" => value("--header").map(|v| {
                filter.header = Some(match v.split_once('=') {
                    Some((n, v)) => (n.to_string(), Some(v.to_string())),
                    None => (v, None),
                })
            }),
            "--out" => value("--out").map(|v| out = Some(PathBuf::from(v))),
            "--http" => {
                filter.only_http = true;
                Ok(())
            }
            "--tcp" => {
                filter.only_tcp = true;
                Ok(())
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other if other.starts_with("--") => Err(format!("unknown option {other}")),
            other => {
                paths.push(PathBuf::from(other));
                Ok(())
            }
        };
        if let Err(e) = result {
            return fail(&e);
        }
    }
    let text = match inputs(&paths) {
        Ok(t) => t,
        Err(e) => return fail(&e),
    };
    let (records, errors) = parse(&text);
    for e in &errors {
        eprintln!("tap: skipped {}", visible(e));
    }
    let selected: Vec<&Record> = records.iter().filter(|r| filter.matches(r)).collect();
    let http: Vec<_> = selected.iter().filter_map(|r| r.as_http()).collect();
    let stdout = std::io::stdout();
    let mut stdout = stdout.lock();
    match command.as_str() {
        "list" => {
            for r in &selected {
                let _ = writeln!(stdout, "{}", show::list_line(r));
            }
        }
        "show" => {
            for r in &selected {
                let _ = writeln!(stdout, "{}", show::show(r));
            }
        }
        "split" => {
            let Some(dir) = out else {
                return fail("split needs --out DIR");
            };
            if let Err(e) = tap_tool::split::split(&text, &filter, &dir) {
                return fail(&e);
            }
        }
        "har" => {
            let doc = har::har(&http);
            let _ = writeln!(
                stdout,
                "{}",
                serde_json::to_string_pretty(&doc).unwrap_or_default()
            );
        }
        "suggest" | "check" => {
            if command == "suggest" {
                match policy::run_suggest(&http, &options, &format, report.as_deref()) {
                    Ok(text) => {
                        let _ = writeln!(stdout, "{text}");
                    }
                    Err(e) => return fail(&e),
                }
            } else {
                let config = match policy_file.as_deref().map(policy::load) {
                    Some(Ok(c)) => c,
                    Some(Err(e)) => return fail(&e),
                    None => return fail(USAGE),
                };
                // A gate that checked nothing, or skipped what it could not
                // read, proves nothing.
                if !errors.is_empty() {
                    return fail("check: some input is not tap records (skipped above)");
                }
                if http.is_empty() {
                    return fail("check: no HTTP records to check");
                }
                let (text, denied) = policy::run_check(&config, &http, json);
                let _ = write!(stdout, "{text}");
                if denied {
                    return ExitCode::from(1);
                }
            }
        }
        "pcap" => {
            let Some(file) = out else {
                return fail("pcap needs --out FILE");
            };
            let mut capture = pcap::Pcap::new();
            for r in &selected {
                match r {
                    Record::Http(h) => capture.http(h),
                    Record::Tcp(t) => capture.tcp(t),
                }
            }
            if let Err(e) = std::fs::write(&file, capture.finish()) {
                return fail(&format!("{}: {e}", file.display()));
            }
        }
        _ => return fail(USAGE),
    }
    ExitCode::SUCCESS
}
