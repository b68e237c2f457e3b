//! The suite's parts come from the one list of filters: every HTTP filter
//! this crate depends on (`Cargo.toml`), in the chain order each declares
//! (`[package.metadata.filter] order`). Writes `$OUT_DIR/parts.rs` (the
//! configuration, one field per part) and `$OUT_DIR/plugins.rs` (each
//! configured part's plugin, in that order).

use std::fmt::Write;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = filter_registry::workspace_root();
    let filters = root.join("filters");
    println!("cargo:rerun-if-changed={}", filters.display());
    for entry in std::fs::read_dir(&filters)? {
        let manifest = entry?.path().join("Cargo.toml");
        if manifest.exists() {
            println!("cargo:rerun-if-changed={}", manifest.display());
        }
    }
    let parts: Vec<_> = filter_registry::filters()?
        .into_iter()
        .filter(|f| f.in_suite)
        .collect();
    if parts.is_empty() {
        return Err("filters/suite/Cargo.toml depends on no filter".into());
    }

    let mut config = String::from(
        "filter_common::config_object! {\n    \
         /// Each configured filter's own configuration, parsed by that filter,\n    \
         /// in the order the suite runs them: the filters' chain order.\n    \
         pub struct Config {\n",
    );
    for part in &parts {
        let name = &part.name;
        writeln!(
            config,
            "        /// run {name} with this configuration ([reference](../{name}/README.md))\n        \
             pub {name}: Option<{name}::config::Config> =\n            \
             get(|f| {name}::config::Config::from_value(f.value).map_err(|e| under(f, e))), type \"object\";"
        )?;
    }
    config.push_str("    }\n}\n\nimpl Config {\n    /// Whether no part is configured.\n    fn is_empty(&self) -> bool {\n        ");
    let none: Vec<String> = parts
        .iter()
        .map(|p| format!("self.{}.is_none()", p.name))
        .collect();
    config.push_str(&none.join(" && "));
    config.push_str("\n    }\n}\n");

    let mut plugins = String::from(
        "/// Each configured part's plugin, in the order the parts run.\n\
         fn parts(config: Config) -> Vec<Option<Box<dyn Plugin>>> {\n    \
         [\n",
    );
    for part in &parts {
        writeln!(
            plugins,
            "        config.{0}.map({0}::filter::plugin),",
            part.name
        )?;
    }
    plugins.push_str("    ]\n    .into_iter()\n    .flatten()\n    .collect()\n}\n");

    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("parts.rs"), config)?;
    std::fs::write(out.join("plugins.rs"), plugins)?;
    Ok(())
}
