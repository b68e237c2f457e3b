//! A differential of l7_policy's path check against the resolvers apps use.
//!
//! Tens of thousands of generated paths under `/public/` (dots,
//! percent-encoded delimiters and dots in both cases, `;` `?` `#`, blanks,
//! fullwidth and other compatibility characters, double encodings, and
//! mixtures) go through l7_policy's own core with the rule
//! `{"method": "GET", "path": "/public/.*"}`: the path check and the rule
//! matching `Config::verdict` runs in the filter. Every path it allows is then
//! resolved, in one process per interpreter, the ways Python, Node, Java and
//! Go apps decode, re-parse and normalise a path (`tests/path_resolvers/`),
//! and none may land outside `/public/` (`/public` itself is fine: it is
//! what `normpath` makes of `/public/`, which the rule allows as written).
//!
//! Python always runs (the project's `.venv`, else `python3`); a missing
//! `node`, `java` or `go` is one line saying which resolvers were skipped.

use filter_common::header::pairs::HeaderMap;
use harness::paths::workspace_root;
use harness::Lcg;
use l7_policy::config::Config;
use l7_policy::rule::Caller;
use l7_policy::verdict::Verdict;
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{ErrorKind, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Paths generated (distinct), besides the seeds.
const GENERATED: usize = 40_000;

/// The security review's five paths, which an app that decodes once and then
/// parses the result as a URL again resolves to `/`. They are resolved
/// whatever the filter makes of them: Python's resolvers must take each
/// outside `/public/`, or the differential could not see the class it was
/// written for (the other interpreters say which they do not take out).
const PROBES: [&str; 5] = [
    "/public/..%3f/admin",
    "/public/..%23/admin",
    "/public/..%3F",
    "/public/..%23%20/admin",
    "/public/..%23%3b/admin",
];

/// Always in the corpus, with the probes: the class around them.
const SEEDS: &[&str] = &[
    "/public/.%3f/admin",
    "/public/.%3F",
    "/public/..%3F%3F",
    "/public/..%3f./admin",
    "/public/.%3f./admin",
    "/public/%3f../admin",
    "/public/%23..",
    "/public/..%20%3F/admin",
    "/public/%20..%23",
    "/public/..%C2%A0%23/admin",
    "/public/.%23",
    "/public/..%3F;x/admin",
    "/public/..;%3F/admin",
    "/public/..%3B%3F/admin",
    "/public/a/..%3f/..%3f/admin",
    "/public/..%3F?x=1",
    "/public/%EF%BC%8E%EF%BC%8E/admin",
    "/public/..%EF%BC%9F/admin",
    "/public/",
    "/public/a",
];

/// Pieces of a segment, repeated for weight.
#[rustfmt::skip]
const PIECES: &[&str] = &[
    ".", ".", ".", ".", "..", "..", "..", "...",
    "%3F", "%3f", "%3F", "%23", "%23", "%3B", "%3b", ";", ";",
    "%20", "%20", "%C2%A0", "%c2%a0", "%E3%80%80", "+",
    "%EF%BC%8E", "%EF%BC%8E", "%ef%bc%8f", "%EF%BC%9F", "%EF%BC%83", "%EF%BC%9B", "%EF%BC%BC",
    "%E2%80%A5", "%E2%80%A4", "%EF%B9%92", "%C3%A9", "%E2%88%95",
    "%25", "%25%25", "%25G",
    "a", "a", "admin", "x=1", "%41", "%3D", "%2B", "%26", "/",
];

/// Pieces the filter refuses wherever they are (but `?`, which starts the
/// query): rarer, so that most paths get as far as the resolvers.
#[rustfmt::skip]
const REFUSED: &[&str] = &[
    "%2F", "%2f", "%5C", "%5c", "%2E", "%2e", "?", "#", "\\", "%09", "%0A", "%C0%AE",
    "\u{e9}", "\u{ff0e}", "%253F", "%2523", "%252e", "%252F", "%2525", "%25%33%66", "%",
    "%u002e", "%00",
];

#[rustfmt::skip]
const DOTS: &[&str] = &[".", "..", "..", "%EF%BC%8E%EF%BC%8E", ".%EF%BC%8E", "%E2%80%A5"];
#[rustfmt::skip]
const DELIMITERS: &[&str] = &[
    "%3F", "%3f", "%23", "%3B", "%3b", ";", "%EF%BC%9F", "%EF%BC%83", "%EF%BC%9B",
];
#[rustfmt::skip]
const BLANKS: &[&str] = &["", "", "", "", "%20", "%C2%A0", "%E3%80%80", "+"];
#[rustfmt::skip]
const TAILS: &[&str] = &["", "", "", "%3F", "%23", "%3B", "x", ";x=1", "%20", "..", "%3Fx%23y"];
#[rustfmt::skip]
const NAMES: &[&str] = &["a", "admin", "index.html", "x;y=1", "%E2%82%AC", "...", ".a"];

/// One of `pieces`, now and then one the filter refuses.
fn piece(rng: &mut Lcg, pieces: &[&'static str]) -> &'static str {
    let from = if rng.below(16) == 0 { REFUSED } else { pieces };
    from[rng.below(from.len())]
}

fn segment(rng: &mut Lcg) -> String {
    match rng.below(4) {
        // Dots, blanks, a delimiter, more: the class and its neighbours.
        0 | 1 => [
            *rng.pick(BLANKS),
            *rng.pick(DOTS),
            *rng.pick(BLANKS),
            piece(rng, DELIMITERS),
            *rng.pick(BLANKS),
            *rng.pick(TAILS),
        ]
        .concat(),
        2 => (0..1 + rng.below(5)).map(|_| piece(rng, PIECES)).collect(),
        _ => rng.pick(NAMES).to_string(),
    }
}

fn generated(rng: &mut Lcg) -> String {
    let segments: Vec<String> = (0..1 + rng.below(4)).map(|_| segment(rng)).collect();
    let mut path = format!("/public/{}", segments.join("/"));
    match rng.below(16) {
        0 | 1 => path.push('/'),
        2 => path.push_str("?q=../x#f"),
        3 => path.push_str("?q=/..%3F/..;/%2e%2e"),
        4 => path.push_str("#f"),
        _ => {}
    }
    path
}

/// The filter's decision on `GET path`.
fn verdict(config: &Config, path: &str) -> Verdict {
    let headers = HeaderMap::from_pairs(&[
        (":method", "GET".as_bytes()),
        (":path", path.as_bytes()),
        (":authority", b"h"),
    ]);
    config.verdict(&headers, &Caller::default())
}

struct Interpreter {
    what: &'static str,
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
}

/// `go run` with the standard library only: no module, no workspace, no
/// toolchain download; a build cache under `target/` where Go would find
/// none (no `HOME`).
fn go_env() -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("GOTOOLCHAIN", "local".to_string()),
        ("GOWORK", "off".to_string()),
        ("GOFLAGS", String::new()),
    ];
    let var = |name| std::env::var_os(name).is_some();
    if !var("GOCACHE") && !var("HOME") && !var("XDG_CACHE_HOME") {
        let cache = workspace_root().join("target/go-build");
        env.push(("GOCACHE", cache.display().to_string()));
    }
    env
}

fn interpreters() -> Vec<Interpreter> {
    let dir = workspace_root().join("tests/path_resolvers");
    let script = |name: &str| dir.join(name).display().to_string();
    let venv = workspace_root().join(".venv/bin/python");
    vec![
        Interpreter {
            what: "python",
            program: if venv.exists() {
                venv
            } else {
                "python3".into()
            },
            args: vec![script("resolve.py")],
            env: vec![],
        },
        Interpreter {
            what: "node",
            program: "node".into(),
            args: vec![script("resolve.js")],
            env: vec![],
        },
        Interpreter {
            what: "java",
            program: "java".into(),
            args: vec![script("Resolve.java")],
            env: vec![],
        },
        Interpreter {
            what: "go",
            program: "go".into(),
            args: vec!["run".into(), script("resolve.go")],
            env: go_env(),
        },
    ]
}

/// Each resolver's name and what it made of each input, in input order;
/// `None` when the interpreter is not installed.
type Resolved = Vec<(String, Vec<Option<String>>)>;

fn resolve(interpreter: &Interpreter, input: &str, count: usize) -> Option<Resolved> {
    let mut child = match Command::new(&interpreter.program)
        .args(&interpreter.args)
        .envs(interpreter.env.iter().map(|(k, v)| (k, v)))
        .current_dir(workspace_root().join("tests/path_resolvers"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == ErrorKind::NotFound && interpreter.what != "python" => return None,
        Err(e) => panic!("{}: {e}", interpreter.program.display()),
    };
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_string();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        output.status.success(),
        "{} {:?}: {}\n{}",
        interpreter.program.display(),
        interpreter.args,
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let mut lines = stdout.lines();
    let names: Vec<String> = serde_json::from_str(lines.next().unwrap()).unwrap();
    let mut resolved: Resolved = names.into_iter().map(|n| (n, Vec::new())).collect();
    for line in lines {
        let row: Vec<Value> = serde_json::from_str(line).unwrap();
        assert_eq!(row.len(), resolved.len(), "{line}");
        for ((_, out), value) in resolved.iter_mut().zip(row) {
            out.push(value.as_str().map(str::to_string));
        }
    }
    for (name, out) in &resolved {
        assert_eq!(out.len(), count, "{name}: one result per path");
    }
    Some(resolved)
}

fn inside(resolved: &str) -> bool {
    resolved == "/public" || resolved.starts_with("/public/")
}

#[test]
fn no_allowed_path_resolves_outside_the_prefix() {
    let config = Config::parse(Some(
        br#"{"rules": [{"method": "GET", "path": "/public/.*"}]}"#,
    ))
    .unwrap();
    let mut corpus: BTreeSet<String> = PROBES.iter().chain(SEEDS).map(|s| s.to_string()).collect();
    let mut rng = Lcg(0x1d07_5eed);
    while corpus.len() < GENERATED + PROBES.len() + SEEDS.len() {
        corpus.insert(generated(&mut rng));
    }
    // What the filter makes of the corpus: the allowed paths, and how many
    // it refuses for each reason.
    let mut allowed = Vec::new();
    let mut refused = std::collections::BTreeMap::new();
    for path in &corpus {
        match verdict(&config, path) {
            Verdict::Allowed(..) => allowed.push(path),
            Verdict::InvalidPath(why) => *refused.entry(why.as_str()).or_insert(0) += 1,
            Verdict::Denied => *refused.entry("denied by the rule").or_insert(0) += 1,
        }
    }
    // The probes go last, whatever the filter makes of them.
    let input: String = allowed
        .iter()
        .map(|p| p.as_str())
        .chain(PROBES)
        .map(|p| format!("{p}\n"))
        .collect();
    let count = allowed.len() + PROBES.len();
    println!(
        "{} paths ({} generated, {} seeds), {} allowed by l7_policy with /public/.*",
        corpus.len(),
        corpus.len() - PROBES.len() - SEEDS.len(),
        PROBES.len() + SEEDS.len(),
        allowed.len()
    );
    println!("refused: {refused:?}");

    let interpreters = interpreters();
    let results: Vec<Option<Resolved>> = std::thread::scope(|s| {
        let running: Vec<_> = interpreters
            .iter()
            .map(|i| s.spawn(|| resolve(i, &input, count)))
            .collect();
        running.into_iter().map(|h| h.join().unwrap()).collect()
    });

    let mut escapes = Vec::new();
    let mut blind = Vec::new();
    let mut documented = 0;
    for (interpreter, result) in interpreters.iter().zip(results) {
        let Some(resolved) = result else {
            println!(
                "skipped: {} is not installed, its resolvers did not run",
                interpreter.what
            );
            continue;
        };
        let mut seen = vec![false; PROBES.len()];
        for (name, out) in &resolved {
            let (paths, probes) = out.split_at(allowed.len());
            let refused = paths.iter().filter(|r| r.is_none()).count();
            let mut found = 0;
            for (path, r) in allowed.iter().zip(paths) {
                let Some(r) = r else { continue };
                if inside(r) {
                    continue;
                }
                found += 1;
                if name.starts_with("documented: ") {
                    documented += 1;
                } else {
                    escapes.push((path.as_str(), format!("{name}: {path} -> {r}")));
                }
            }
            let documented_only = name.starts_with("documented: ");
            for (seen, r) in seen.iter_mut().zip(probes) {
                if !documented_only && r.as_deref().is_some_and(|r| !inside(r)) {
                    *seen = true;
                }
            }
            println!(
                "{name}: {} checked, {refused} refused by the app, {found} outside /public/{}",
                paths.len() - refused,
                if documented_only {
                    " (the documented NFKC class: counted, not failed)"
                } else {
                    ""
                }
            );
        }
        for (probe, seen) in PROBES.iter().zip(seen) {
            if !seen {
                println!(
                    "{}: none of its resolvers takes probe {probe} outside /public/",
                    interpreter.what
                );
                blind.push(format!("{}: {probe}", interpreter.what));
            }
        }
    }
    for (_, escape) in &escapes {
        println!("ESCAPE {escape}");
    }
    let paths: BTreeSet<&str> = escapes.iter().map(|(path, _)| *path).collect();
    assert!(
        escapes.is_empty(),
        "{} allowed paths resolve outside /public/, {} times in all (above)",
        paths.len(),
        escapes.len()
    );
    assert!(
        !blind.iter().any(|b| b.starts_with("python:")),
        "the differential cannot see the class it was written for: {blind:#?}"
    );
    assert!(
        documented > 0,
        "the corpus should reach the documented NFKC class (fullwidth dots)"
    );
}
