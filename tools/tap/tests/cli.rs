//! The `tap` command line: each command's help names its flags, a flag the
//! command does not take is refused by name, a bad value names its flag and
//! what it expects, completion scripts, and the exit statuses scripts rely on.

// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const FILTERS: [&str; 6] = [
    "--method", "--path", "--status", "--header", "--http", "--tcp",
];
const SUGGEST: [&str; 8] = [
    "--format",
    "--max-literals",
    "--allow-prefix",
    "--port",
    "--app",
    "--report",
    "--learn-status",
    "--generalize-unauthenticated",
];

fn tap(args: &[&str]) -> Output {
    tap_in(&std::env::temp_dir(), args)
}

fn tap_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tap"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A directory of its own for one test, with two HTTP records (a GET and a
/// POST) in `records.jsonl`.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tap-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let record = |method: &str, path: &str| {
        format!(
            r#"{{"http_buffered_trace":{{"request":{{"headers":[{{"key":":method","value":"{method}"}},{{"key":":path","value":"{path}"}},{{"key":":authority","value":"app"}}]}},"response":{{"headers":[{{"key":":status","value":"200"}},{{"key":"x-envoy-upstream-service-time","value":"1"}}]}}}}}}"#
        )
    };
    std::fs::write(
        dir.join("records.jsonl"),
        format!("{}\n{}\n", record("GET", "/a"), record("POST", "/b")),
    )
    .unwrap();
    dir
}

/// The help of `command` (`tap COMMAND --help`), which must succeed.
fn help(command: &[&str]) -> String {
    let mut args = command.to_vec();
    args.push("--help");
    let o = tap(&args);
    assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
    stdout(&o)
}

#[test]
fn each_command_has_help_naming_its_flags_and_no_others() {
    let commands: [(&[&str], Vec<&str>, Vec<&str>); 8] = [
        (
            &["list"],
            FILTERS.to_vec(),
            vec!["--out", "--json", "--format"],
        ),
        (
            &["show"],
            FILTERS.to_vec(),
            vec!["--out", "--json", "--report"],
        ),
        (
            &["jsonl"],
            FILTERS.to_vec(),
            vec!["--out", "--json", "--format"],
        ),
        (
            &["har"],
            FILTERS.to_vec(),
            vec!["--out", "--json", "--port"],
        ),
        (
            &["split"],
            [&FILTERS[..], &["--out", "DIR"]].concat(),
            vec!["--json", "--format"],
        ),
        (
            &["pcap"],
            [&FILTERS[..], &["--out", "FILE|-", "--format"]].concat(),
            vec!["--json", "--app"],
        ),
        (
            &["policy", "suggest"],
            [&FILTERS[..], &SUGGEST[..]].concat(),
            vec!["--out", "--json"],
        ),
        (
            &["policy", "check"],
            [&FILTERS[..], &["--json", "<POLICY>"]].concat(),
            [&SUGGEST[..], &["--out"]].concat(),
        ),
    ];
    for (command, flags, others) in commands {
        let text = help(command);
        assert!(
            text.contains(&format!("Usage: tap {}", command.join(" "))),
            "{command:?}:\n{text}"
        );
        for flag in flags {
            assert!(
                text.contains(flag),
                "{command:?} help lacks {flag}:\n{text}"
            );
        }
        for flag in others {
            assert!(
                !text.contains(&format!("{flag} ")) && !text.contains(&format!("{flag}\n")),
                "{command:?} help names {flag}, which it does not take:\n{text}"
            );
        }
    }
    let text = help(&["completions"]);
    assert!(text.contains("<SHELL>") && text.contains("bash"), "{text}");
    let text = help(&["policy"]);
    assert!(text.contains("suggest") && text.contains("check"), "{text}");
    // `tap help COMMAND` is the same help.
    let o = tap(&["help", "policy", "check"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("--json"), "{}", stdout(&o));
    // The top level lists every command.
    let text = help(&[]);
    for command in [
        "list",
        "show",
        "jsonl",
        "split",
        "har",
        "pcap",
        "policy",
        "completions",
    ] {
        assert!(
            text.contains(&format!("\n  {command} ")),
            "{command}:\n{text}"
        );
    }
}

/// `args` is refused as a usage error (2) whose message names `flag`, with
/// nothing on standard output.
fn refused(dir: &Path, args: &[&str], flag: &str) -> String {
    let o = tap_in(dir, args);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    let message = stderr(&o);
    assert!(
        message.contains(flag),
        "{args:?} does not name {flag}: {message}"
    );
    assert!(o.stdout.is_empty(), "{args:?}: {}", stdout(&o));
    message
}

#[test]
fn a_flag_the_command_does_not_take_is_refused_by_name() {
    let dir = scratch("unknown");
    for args in [
        &["list", "--bogus", "records.jsonl"][..],
        &["show", "records.jsonl", "--bogus"],
        &["policy", "suggest", "--bogus", "records.jsonl"],
        &["policy", "check", "policy.json", "--bogus", "records.jsonl"],
    ] {
        let message = refused(&dir, args, "--bogus");
        assert!(message.contains("unexpected argument"), "{message}");
    }
    // Flags of other commands: once accepted and ignored everywhere.
    for (args, flag) in [
        (&["list", "--json", "records.jsonl"][..], "--json"),
        (&["har", "--out", "x.har", "records.jsonl"], "--out"),
        (&["show", "--report", "r.txt", "records.jsonl"], "--report"),
        (
            &[
                "pcap",
                "--out",
                "x.pcap",
                "--format",
                "cnp",
                "records.jsonl",
            ],
            "--format",
        ),
        (
            &[
                "policy",
                "check",
                "policy.json",
                "--format",
                "cnp",
                "records.jsonl",
            ],
            "--format",
        ),
        (&["policy", "suggest", "--json", "records.jsonl"], "--json"),
        (
            &["policy", "suggest", "--out", "x", "records.jsonl"],
            "--out",
        ),
    ] {
        refused(&dir, args, flag);
    }
    // Refused before anything is written.
    assert!(!dir.join("x.har").exists() && !dir.join("x.pcap").exists());
    assert!(!dir.join("r.txt").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_value_names_its_flag_and_what_it_expects() {
    let dir = scratch("values");
    for (args, flag, expects) in [
        (
            &["list", "--status", "99", "records.jsonl"][..],
            "--status",
            "status code (100-599)",
        ),
        (&["list", "--status", "300-200"], "--status", "empty range"),
        (
            &["policy", "suggest", "--learn-status", "2x"],
            "--learn-status",
            "status code",
        ),
        (
            &["policy", "suggest", "--port", "70000"],
            "--port",
            "port number, 0 to 65535",
        ),
        (
            &["policy", "suggest", "--port", "http"],
            "--port",
            "port number",
        ),
        (
            &["policy", "suggest", "--max-literals", "many"],
            "--max-literals",
            "whole number",
        ),
        (
            &["policy", "suggest", "--format", "yaml"],
            "--format",
            "l7_policy, cnp",
        ),
        (
            &["policy", "suggest", "--allow-prefix", "static"],
            "--allow-prefix",
            "starting with /",
        ),
        (&["completions", "tcsh"], "<SHELL>", "bash"),
    ] {
        let message = refused(&dir, args, flag);
        assert!(message.contains(expects), "{args:?}: {message}");
    }
    // A flag without its value.
    let message = refused(&dir, &["list", "--status"], "--status");
    assert!(message.contains("value is required"), "{message}");
    // A required flag or argument left out.
    refused(&dir, &["split", "records.jsonl"], "--out");
    refused(&dir, &["pcap", "records.jsonl"], "--out");
    let o = tap_in(&dir, &["policy", "check"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("<POLICY>"), "{}", stderr(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn completion_scripts_name_every_command() {
    let o = tap(&["completions", "bash"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let script = stdout(&o);
    assert!(script.len() > 1000, "{script}");
    assert!(script.contains("complete -F"), "{script}");
    for word in [
        "list",
        "show",
        "jsonl",
        "split",
        "har",
        "pcap",
        "policy",
        "suggest",
        "check",
        "completions",
        "--allow-prefix",
        "--json",
    ] {
        assert!(script.contains(word), "bash completion lacks {word}");
    }
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let o = tap(&["completions", shell]);
        assert_eq!(o.status.code(), Some(0), "{shell}: {}", stderr(&o));
        let script = stdout(&o);
        assert!(
            script.contains("suggest") && script.contains("learn-status"),
            "{shell}: {script}"
        );
    }
}

#[test]
fn exit_statuses_and_repeated_flags_stay_as_scripts_use_them() {
    let dir = scratch("compat");
    // Usage errors exit 2, help 0.
    for args in [
        &[][..],
        &["policy"],
        &["frobnicate"],
        &["policy", "frobnicate"],
    ] {
        assert_eq!(tap(args).status.code(), Some(2), "{args:?}");
    }
    assert_eq!(tap(&["--help"]).status.code(), Some(0));
    assert_eq!(tap(&["list", "-h"]).status.code(), Some(0));
    // The last of a repeated flag wins; --allow-prefix adds up.
    let o = tap_in(
        &dir,
        &[
            "list",
            "--method",
            "GET",
            "--method",
            "POST",
            "records.jsonl",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().count(), 1, "{}", stdout(&o));
    assert!(stdout(&o).contains("POST"), "{}", stdout(&o));
    let o = tap_in(&dir, &["list", "--http", "--http", "records.jsonl"]);
    assert_eq!(stdout(&o).lines().count(), 2, "{}", stderr(&o));
    let o = tap_in(
        &dir,
        &[
            "policy",
            "suggest",
            "--allow-prefix",
            "/a",
            "--allow-prefix",
            "/b",
            "records.jsonl",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let policy = stdout(&o);
    assert!(policy.contains(r#""path": "/a.*""#), "{policy}");
    assert!(policy.contains(r#""path": "/b.*""#), "{policy}");
    // Flags and files in any order; POLICY is the first argument that is
    // not a flag's value.
    std::fs::write(dir.join("policy.json"), &policy).unwrap();
    for args in [
        &["policy", "check", "policy.json", "--json", "records.jsonl"][..],
        &["policy", "check", "--json", "policy.json", "records.jsonl"],
        &["policy", "check", "policy.json", "records.jsonl", "--json"],
    ] {
        let o = tap_in(&dir, args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        assert_eq!(stdout(&o).lines().count(), 2, "{args:?}: {}", stdout(&o));
    }
    // `check` still exits 1 on a denial and 2 on nothing to check.
    std::fs::write(dir.join("none.json"), r#"{"rules": []}"#).unwrap();
    let o = tap_in(&dir, &["policy", "check", "none.json", "records.jsonl"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let o = tap_in(
        &dir,
        &["policy", "check", "none.json", "--tcp", "records.jsonl"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let _ = std::fs::remove_dir_all(&dir);
}
