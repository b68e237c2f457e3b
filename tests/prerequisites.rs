//! What `make` cannot install into the project (Rust, a C/C++ compiler,
//! Python with venv) stops it with one line that names the fix: no make
//! trailer, no backtrace.

use harness::paths::workspace_root;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The full path of a command on the test's own PATH.
fn which(name: &str) -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} is not on PATH"))
}

/// A directory of links to the named commands, to use as the whole PATH.
fn path_of(dir: &Path, commands: &[&str]) -> PathBuf {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("scratch PATH");
    for c in commands {
        std::os::unix::fs::symlink(which(c), dir.join(c)).expect("link");
    }
    dir.to_path_buf()
}

/// `make ARGS` with only `path` as PATH (and `env`): its exit code and every
/// line it printed. Not a sub-make of the `make test` that runs this test.
fn make_with(path: &Path, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, Vec<String>) {
    let o = Command::new(which("make"))
        .args(["--no-print-directory", "-C"])
        .arg(workspace_root())
        .args(args)
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .env_remove("MAKELEVEL")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTUP_TOOLCHAIN")
        .envs(env.iter().copied())
        .env("PATH", path)
        .output()
        .expect("run make");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.code(), text.lines().map(str::to_string).collect())
}

fn make(path: &Path, args: &[&str]) -> (Option<i32>, Vec<String>) {
    make_with(path, args, &[])
}

/// A stand-in `python` (a shell script) in `dir`.
fn fake_python(dir: &Path, script: &str) -> String {
    let file = dir.join("python");
    std::fs::write(&file, format!("#!/bin/sh\n{script}\n")).expect("fake python");
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    file.display().to_string()
}

fn scratch(name: &str) -> PathBuf {
    workspace_root().join("target/prerequisites").join(name)
}

const SHELL: [&str; 5] = ["sh", "make", "rm", "mkdir", "date"];

fn assert_one_line(got: (Option<i32>, Vec<String>), fix: &str) {
    let (code, lines) = got;
    assert_eq!(code, Some(2), "{lines:?}");
    assert_eq!(lines.len(), 1, "one line: {lines:?}");
    assert!(lines[0].contains(fix), "{:?} names {fix:?}", lines[0]);
}

#[test]
fn without_rust_make_says_how_to_install_it() {
    let path = path_of(&scratch("no-rust"), &SHELL);
    for target in ["build", "lint", "manifests"] {
        assert_one_line(make(&path, &[target]), "rustup (https://rustup.rs)");
    }
}

#[test]
fn cargo_without_rustup_is_not_enough() {
    let mut commands = SHELL.to_vec();
    commands.push("cargo");
    let path = path_of(&scratch("no-rustup"), &commands);
    assert_one_line(make(&path, &["build"]), "rustup not found");
}

#[test]
fn flags_that_would_change_the_modules_are_refused() {
    let mut commands = SHELL.to_vec();
    commands.extend(["cargo", "rustup", "cc", "c++"]);
    let path = path_of(&scratch("overrides"), &commands);
    for var in ["RUSTFLAGS", "RUSTUP_TOOLCHAIN"] {
        let got = make_with(&path, &["build"], &[(var, "1")]);
        assert_one_line(got, &format!("{var} set"));
    }
}

#[test]
fn without_a_cpp_compiler_make_names_the_package() {
    let mut commands = SHELL.to_vec();
    commands.extend(["cargo", "rustup"]);
    let path = path_of(&scratch("no-cxx"), &commands);
    assert_one_line(make(&path, &["build"]), "apt-get install g++");
}

/// `make <venv>/bin/python` with a stand-in python that runs `script`: the
/// virtualenv's directory and what make did.
fn make_venv(name: &str, script: &str) -> (PathBuf, (Option<i32>, Vec<String>)) {
    let dir = scratch(name);
    let path = path_of(&dir, &SHELL);
    let venv = scratch(&format!("{name}-venv"));
    let python = fake_python(&dir, script);
    let target = format!("{}/bin/python", venv.display());
    let made = make(&path, &[&target, &format!("PYTHON={python}")]);
    (venv, made)
}

#[test]
fn without_python_venv_make_names_the_package() {
    // A Python without ensurepip, as Debian's without python3-venv.
    let (_, made) = make_venv("no-venv", "exit 1");
    assert_one_line(made, "apt-get install python3-venv");
    let path = path_of(&scratch("no-python"), &SHELL);
    let target = format!("{}/bin/python", scratch("no-python-venv").display());
    let missing = make(&path, &[&target, "PYTHON=python3-not-installed"]);
    assert_one_line(missing, "apt-get install python3 python3-venv");
}

#[test]
fn a_failed_virtualenv_is_not_left_half_made() {
    // Imports work, then `-m venv DIR` creates DIR and fails.
    let (venv, (code, lines)) = make_venv(
        "venv-fails",
        r#"[ "$1" = -c ] && exit 0; mkdir -p "$3/bin"; exit 1"#,
    );
    assert_ne!(code, Some(0), "{lines:?}");
    assert!(lines[0].contains("-m venv"), "{lines:?}");
    assert!(!venv.exists(), "no half-made virtualenv is left behind");
}
