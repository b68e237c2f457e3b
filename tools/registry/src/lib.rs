//! The one list of filters: every `filters/<name>/Cargo.toml` with a
//! `[package.metadata.filter]` table is a filter, and that table says how
//! the workspace places it. The build, the manifests, the integration tests,
//! the examples, the demo and the bench all read it from here; the suite's
//! parts are the filters `filters/suite/Cargo.toml` depends on.

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// An HTTP filter or a network (TCP) filter.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Http,
    Network,
}

/// `[package.metadata.filter]`, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    kind: Kind,
    order: i32,
    fail_open: bool,
    phase: String,
    plugin_priority: i32,
    #[serde(default)]
    records: Option<String>,
    #[serde(default)]
    example: toml::Table,
    #[serde(default)]
    check: Check,
}

/// What the integration tests expect of one request through the filter
/// with its example configuration, on HTTP/1.1 and HTTP/2 (a GET of `/`
/// with `request_headers`): the status, headers the client gets and headers
/// the app gets.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    #[serde(default)]
    pub request_headers: BTreeMap<String, String>,
    #[serde(default = "ok")]
    pub status: u16,
    #[serde(default)]
    pub response_headers: BTreeMap<String, String>,
    #[serde(default)]
    pub upstream_headers: BTreeMap<String, String>,
}

fn ok() -> u16 {
    200
}

impl Default for Check {
    fn default() -> Check {
        Check {
            request_headers: BTreeMap::new(),
            status: ok(),
            response_headers: BTreeMap::new(),
            upstream_headers: BTreeMap::new(),
        }
    }
}

#[derive(Deserialize)]
struct Manifest {
    package: Package,
    #[serde(default)]
    dependencies: toml::Table,
}

#[derive(Deserialize)]
struct Package {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    metadata: Option<Metadata>,
}

#[derive(Deserialize)]
struct Metadata {
    filter: Option<Table>,
}

/// One filter, as its `Cargo.toml` declares it.
#[derive(Clone, Debug)]
pub struct Filter {
    /// The crate's name: `dist/<name>.wasm`, the plugin's name and root id.
    pub name: String,
    /// The crate's description.
    pub description: String,
    pub kind: Kind,
    /// Place in the filter chain, lower first: the `EnvoyFilter` priority
    /// (Istio applies lower first, and each insertion before the router
    /// lands after the previous one) and the suite's run order.
    pub order: i32,
    /// Observers fail open; filters that enforce or strip headers fail
    /// closed, or reload, by form.
    pub fail_open: bool,
    /// `WasmPlugin` and `TrafficExtension` phase (the names both kinds
    /// share), and priority within it (higher runs first).
    pub phase: String,
    pub plugin_priority: i32,
    /// The file its records go to, through an access log.
    pub records: Option<String>,
    /// The configuration the manifests ship and the examples, demo and
    /// bench run.
    pub example: Value,
    /// What a request through the example configuration gets.
    pub check: Check,
    /// Whether `suite.wasm` embeds it.
    pub in_suite: bool,
}

/// What is wrong with a filter's declaration: the file and the problem.
#[derive(Debug)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// The workspace this crate sits in (`tools/registry/`).
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors().nth(2).unwrap_or(here).to_path_buf()
}

fn read_manifest(path: &Path) -> Result<Manifest, Error> {
    let text =
        std::fs::read_to_string(path).map_err(|e| Error(format!("{}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| Error(format!("{}: {e}", path.display())))
}

/// Every filter under `root/filters`, in chain order (then by name).
pub fn filters_in(root: &Path) -> Result<Vec<Filter>, Error> {
    let dir = root.join("filters");
    let suite = read_manifest(&dir.join("suite/Cargo.toml"))?;
    let mut found = Vec::new();
    let entries = std::fs::read_dir(&dir).map_err(|e| Error(format!("{}: {e}", dir.display())))?;
    for entry in entries {
        let path = entry
            .map_err(|e| Error(format!("{}: {e}", dir.display())))?
            .path()
            .join("Cargo.toml");
        if !path.exists() {
            continue;
        }
        let manifest = read_manifest(&path)?;
        let package = manifest.package;
        let Some(table) = package.metadata.and_then(|m| m.filter) else {
            continue;
        };
        let folder = path
            .parent()
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned());
        if folder.as_deref() != Some(package.name.as_str()) {
            return Err(Error(format!(
                "{}: the crate is named {:?}: name it after its folder",
                path.display(),
                package.name
            )));
        }
        let example = serde_json::to_value(&table.example)
            .map_err(|e| Error(format!("{}: example: {e}", path.display())))?;
        found.push(Filter {
            in_suite: suite.dependencies.contains_key(&package.name),
            name: package.name,
            description: package.description,
            kind: table.kind,
            order: table.order,
            fail_open: table.fail_open,
            phase: table.phase,
            plugin_priority: table.plugin_priority,
            records: table.records,
            example,
            check: table.check,
        });
    }
    found.sort_by(|a, b| (a.order, &a.name).cmp(&(b.order, &b.name)));
    if let Some(f) = found.iter().find(|f| f.in_suite && f.kind != Kind::Http) {
        return Err(Error(format!(
            "filters/suite/Cargo.toml: {} is a network filter; the suite holds HTTP filters",
            f.name
        )));
    }
    Ok(found)
}

/// Every filter of this workspace, in chain order.
pub fn filters() -> Result<Vec<Filter>, Error> {
    filters_in(&workspace_root())
}

/// The modules `make build` writes to `dist/`: every filter, then the suite.
pub fn modules() -> Result<Vec<String>, Error> {
    let mut all: Vec<String> = filters()?.into_iter().map(|f| f.name).collect();
    all.push("suite".into());
    Ok(all)
}
