//! `tap policy suggest|check`: the command-line side of [`crate::suggest`]
//! and [`crate::check`].

use crate::check::{check_one, Summary};
use crate::record::HttpRecord;
use crate::suggest::{suggest, Options};
use l7_policy::config::Config;
use std::path::Path;

pub enum Format {
    L7Policy,
    Cnp,
}

/// The policy a `check` evaluates: an l7_policy configuration (JSON), or a
/// CiliumNetworkPolicy (YAML or JSON) imported as `l7-policy-import` does.
pub fn load(file: &Path) -> Result<Config, String> {
    let name = file.display();
    let text = std::fs::read_to_string(file).map_err(|e| format!("{name}: {e}"))?;
    // JSON is read by l7_policy itself, which names repeated keys; YAML is
    // for CiliumNetworkPolicies.
    let (value, json): (serde_json::Value, bool) = match serde_json::from_str(&text) {
        Ok(value) => (value, true),
        Err(json) => (
            serde_yaml::from_str(&text)
                .map_err(|yaml| format!("{name}: not JSON ({json}) nor YAML ({yaml})"))?,
            false,
        ),
    };
    let kind = value.get("kind").and_then(serde_json::Value::as_str);
    let document = if kind == Some("CiliumNetworkPolicy") {
        let (config, warnings) =
            l7_policy::cilium::import(&value).map_err(|e| format!("{name}: {e}"))?;
        for w in warnings {
            eprintln!("tap: {name}: warning: {w}");
        }
        config.to_string()
    } else if json {
        text
    } else {
        value.to_string()
    };
    Config::parse(Some(document.as_bytes())).map_err(|e| format!("{name}: {e}"))
}

/// The suggested policy on standard output, the report on standard error
/// (or in `report`).
pub fn run_suggest(
    records: &[&HttpRecord],
    options: &Options,
    format: &Format,
    report: Option<&Path>,
) -> Result<String, String> {
    let suggestion = suggest(records.iter().copied(), options);
    let text = suggestion.report();
    match report {
        Some(file) => {
            std::fs::write(file, &text).map_err(|e| format!("{}: {e}", file.display()))?
        }
        None => eprint!("{text}"),
    }
    Ok(match format {
        Format::L7Policy => {
            serde_json::to_string_pretty(&suggestion.l7_policy()).unwrap_or_default()
        }
        Format::Cnp => serde_yaml::to_string(&suggestion.cnp(options)).unwrap_or_default(),
    })
}

/// The report (or one JSON line per record), and whether any request would
/// be denied.
pub fn run_check(config: &Config, records: &[&HttpRecord], json: bool) -> (String, bool) {
    let checked: Vec<_> = records.iter().map(|r| check_one(config, r)).collect();
    let lines = json.then(|| {
        checked
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{}\n", c.json(i)))
            .collect::<String>()
    });
    let summary = Summary::of(checked);
    let denied = summary.denials() > 0;
    (lines.unwrap_or_else(|| summary.report(config)), denied)
}
