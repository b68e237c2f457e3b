//! One Envoy process per test, on loopback, stopped on drop.

use crate::bootstrap::Bootstrap;
use crate::client::Request;
use crate::paths;
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Placeholder for the run's scratch directory in generated configurations.
pub const SCRATCH: &str = "@SCRATCH@";

pub struct Envoy {
    child: Child,
    dir: PathBuf,
    admin: SocketAddr,
    listeners: HashMap<String, SocketAddr>,
}

/// Who runs Envoy, from which binary (see [`Envoy::try_start_file_as`]). The
/// binary is named here because the default one may be a script whose
/// interpreter that user cannot reach.
pub struct RunAs {
    pub bin: PathBuf,
    pub uid: u32,
    pub gid: u32,
}

/// Envoy refused the configuration or died before it was live.
#[derive(Debug)]
pub struct StartError {
    pub status: Option<ExitStatus>,
    pub log: String,
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Envoy did not start ({:?}); its log:\n{}",
            self.status, self.log
        )
    }
}

impl Envoy {
    /// Starts Envoy with `bootstrap` and panics with Envoy's log if it fails.
    pub fn start(bootstrap: &Bootstrap) -> Envoy {
        Envoy::try_start(bootstrap).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Expects Envoy to refuse `bootstrap`; returns its log, which must contain
    /// every one of `messages`.
    pub fn refuses(bootstrap: &Bootstrap, messages: &[&str]) -> String {
        let log = match Envoy::try_start(bootstrap) {
            Ok(_) => panic!("Envoy accepted {}", bootstrap.json()),
            Err(e) => e.log,
        };
        for message in messages {
            assert!(log.contains(message), "wanted {message:?} in:\n{log}");
        }
        log
    }

    /// Starts Envoy; `@SCRATCH@` anywhere in the configuration becomes this
    /// run's scratch directory (for access logs and tap files), see [`Envoy::scratch`].
    pub fn try_start(bootstrap: &Bootstrap) -> Result<Envoy, StartError> {
        Envoy::try_start_with(bootstrap, &[])
    }

    /// Like [`Envoy::try_start`] with more command-line arguments; a
    /// `--concurrency` among them replaces the default of one worker.
    pub fn try_start_with(bootstrap: &Bootstrap, extra_args: &[&str]) -> Result<Envoy, StartError> {
        let (dir, config) = write_config(bootstrap);
        Envoy::spawn(&config, dir, extra_args, None)
    }

    /// `envoy --mode validate` on `bootstrap`, written to its own scratch
    /// directory (tests run in parallel); `Err` holds Envoy's output.
    pub fn validate_bootstrap(bootstrap: &Bootstrap) -> Result<(), String> {
        let (dir, config) = write_config(bootstrap);
        let result = Envoy::validate(&config);
        let _ = std::fs::remove_dir_all(&dir);
        result
    }

    /// `envoy --mode validate` on a configuration file; `Err` holds Envoy's output.
    pub fn validate(config: &Path) -> Result<(), String> {
        let output = Command::new(paths::envoy_bin())
            .args([
                "--mode",
                "validate",
                "--disable-hot-restart",
                "-l",
                "warning",
                "-c",
            ])
            .arg(config)
            .current_dir(paths::workspace_root())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", paths::envoy_bin().display()))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    }

    /// Starts Envoy on a configuration file as it is (for the examples).
    pub fn try_start_file(config: &Path, extra_args: &[&str]) -> Result<Envoy, StartError> {
        Envoy::spawn(config, scratch_dir(), extra_args, None)
    }

    /// Starts Envoy on a configuration file as another user (the caller must
    /// be root), to meet file permissions as an unprivileged Envoy does. The
    /// scratch directory, where Envoy writes its admin address, is handed to
    /// that user.
    pub fn try_start_file_as(
        config: &Path,
        extra_args: &[&str],
        run_as: &RunAs,
    ) -> Result<Envoy, StartError> {
        let dir = scratch_dir();
        std::os::unix::fs::chown(&dir, Some(run_as.uid), Some(run_as.gid))
            .unwrap_or_else(|e| panic!("chown {} to {}: {e}", dir.display(), run_as.uid));
        Envoy::spawn(config, dir, extra_args, Some(run_as))
    }

    fn spawn(
        config: &Path,
        dir: PathBuf,
        extra_args: &[&str],
        run_as: Option<&RunAs>,
    ) -> Result<Envoy, StartError> {
        let admin_file = dir.join("admin.txt");
        let bin = run_as.map_or_else(paths::envoy_bin, |r| r.bin.clone());
        let mut command = Command::new(&bin);
        if let Some(r) = run_as {
            // std also drops root's supplementary groups before setuid.
            command.uid(r.uid).gid(r.gid);
        }
        let mut child = command
            .arg("-c")
            .arg(config)
            .args(default_concurrency(extra_args))
            .arg("--disable-hot-restart")
            .args(log_args())
            // Access logs (tap records) reach their files within 50 ms, not 10 s.
            .args(["--file-flush-interval-msec", "50"])
            .arg("--admin-address-path")
            .arg(&admin_file)
            .args(extra_args)
            .current_dir(paths::workspace_root())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            // Envoy's --log-path file is flushed every few seconds; stderr is not buffered.
            .stderr(Stdio::from(
                std::fs::File::create(dir.join("envoy.log")).expect("log file"),
            ))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
        let deadline = Instant::now() + START_TIMEOUT;
        let fail = |child: &mut Child, dir: &Path| {
            let status = child.try_wait().ok().flatten();
            if status.is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
            StartError {
                status,
                log: read_log(dir),
            }
        };
        let admin = loop {
            if let Ok(text) = std::fs::read_to_string(&admin_file) {
                if let Ok(addr) = text.trim().parse::<SocketAddr>() {
                    if is_ready(addr, &admin_file) {
                        break addr;
                    }
                }
            }
            if Instant::now() > deadline || child.try_wait().ok().flatten().is_some() {
                return Err(fail(&mut child, &dir));
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut envoy = Envoy {
            child,
            dir,
            admin,
            listeners: HashMap::new(),
        };
        envoy.listeners = envoy.read_listeners();
        Ok(envoy)
    }

    fn read_listeners(&self) -> HashMap<String, SocketAddr> {
        let body = self.admin_get("/listeners?format=json");
        let value: serde_json::Value = serde_json::from_str(&body).expect("listeners JSON");
        let mut out = HashMap::new();
        for status in value["listener_statuses"].as_array().into_iter().flatten() {
            let sock = &status["local_address"]["socket_address"];
            if let (Some(name), Some(ip), Some(port)) = (
                status["name"].as_str(),
                sock["address"].as_str(),
                sock["port_value"].as_u64(),
            ) {
                out.insert(
                    name.to_string(),
                    SocketAddr::new(ip.parse().expect("ip"), port as u16),
                );
            }
        }
        out
    }

    /// Address of listener `name`.
    pub fn addr(&self, name: &str) -> SocketAddr {
        *self
            .listeners
            .get(name)
            .unwrap_or_else(|| panic!("no listener {name:?}; have {:?}", self.listeners.keys()))
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
    }

    /// GET on the admin endpoint; the body as text.
    pub fn admin_get(&self, path: &str) -> String {
        let response = Request::get(path)
            .send_h1(self.admin)
            .expect("admin request");
        String::from_utf8_lossy(&response.body).into_owned()
    }

    /// Every counter and gauge, by name.
    pub fn stats(&self) -> HashMap<String, u64> {
        self.admin_get("/stats")
            .lines()
            .filter_map(|line| {
                let (name, value) = line.split_once(": ")?;
                Some((name.to_string(), value.trim().parse().ok()?))
            })
            .collect()
    }

    /// A counter's value; 0 when Envoy has not created it.
    pub fn counter(&self, name: &str) -> u64 {
        self.stats().get(name).copied().unwrap_or(0)
    }

    /// The run's scratch directory (removed on drop unless a test failed).
    pub fn scratch(&self) -> &Path {
        &self.dir
    }

    /// Everything Envoy logged so far.
    pub fn log(&self) -> String {
        read_log(&self.dir)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory of the Envoy process, in KiB (Linux).
    pub fn rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .ok()
            .and_then(|s| {
                let line = s.lines().find(|l| l.starts_with("VmRSS:"))?.to_string();
                line.split_whitespace().nth(1)?.parse().ok()
            })
            .unwrap_or(0)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "---- Envoy log ({}) ----\n{}",
                self.dir.display(),
                tail(&self.log(), 300)
            );
        } else if std::env::var_os("ENVOY_KEEP_RUNS").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// One worker, unless the caller's arguments choose (Envoy refuses an
/// option given twice).
fn default_concurrency(extra_args: &[&str]) -> &'static [&'static str] {
    if extra_args.contains(&"--concurrency") {
        &[]
    } else {
        &["--concurrency", "1"]
    }
}

/// Tests log filters at debug; `ENVOY_QUIET=1` (the benchmark) logs warnings
/// only, so that no log line is formatted on the request path.
fn log_args() -> &'static [&'static str] {
    if std::env::var_os("ENVOY_QUIET").is_some() {
        &["-l", "warning"]
    } else {
        &["-l", "info", "--component-log-level", "wasm:debug"]
    }
}

/// Writes `bootstrap` into a fresh scratch directory with `@SCRATCH@` replaced;
/// returns the directory and the configuration file.
fn write_config(bootstrap: &Bootstrap) -> (PathBuf, PathBuf) {
    let dir = scratch_dir();
    let config = dir.join("envoy.json");
    let text = bootstrap
        .json()
        .to_string()
        .replace(SCRATCH, &dir.display().to_string());
    std::fs::write(&config, text).expect("write Envoy config");
    (dir, config)
}

fn scratch_dir() -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = paths::workspace_root()
        .join("target/envoy-runs")
        .join(format!(
            "{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// True when the Envoy answering on `addr` is live and is the one that
/// wrote `admin_file`. A 200 from `/ready` alone once came from another
/// process on a loaded machine while this Envoy was still refusing its
/// configuration; the admin address file is this run's own.
fn is_ready(addr: SocketAddr, admin_file: &Path) -> bool {
    let live = Request::get("/ready")
        .send_h1(addr)
        .is_ok_and(|r| r.status == 200);
    live && Request::get("/server_info")
        .send_h1(addr)
        .ok()
        .and_then(|r| serde_json::from_slice::<serde_json::Value>(&r.body).ok())
        .is_some_and(|info| {
            info["command_line_options"]["admin_address_path"].as_str()
                == Some(&*admin_file.to_string_lossy())
        })
}

fn read_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("envoy.log")).unwrap_or_default()
}

fn tail(text: &str, lines: usize) -> String {
    // Skip the list of compiled-in extensions Envoy prints at start.
    let all: Vec<&str> = text
        .lines()
        .filter(|l| !l.contains("statically linked") && !l.contains("]   envoy."))
        .collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
