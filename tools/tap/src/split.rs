//! `split`: one pretty-printed file per selected record document, like
//! Envoy's `file_per_tap` (`tap_<n>.json`).

use crate::filter::Filter;
use crate::record::parse;
use std::path::Path;

/// Writes each record document of `text` that `filter` selects to
/// `dir/tap_<n>.json`; returns how many.
pub fn split(text: &str, filter: &Filter, dir: &Path) -> Result<usize, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut n = 0;
    for value in serde_json::Deserializer::from_str(text)
        .into_iter::<serde_json::Value>()
        .flatten()
    {
        let (records, _) = parse(&value.to_string());
        if !records.iter().any(|r| filter.matches(r)) {
            continue;
        }
        let path = dir.join(format!("tap_{n}.json"));
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&value).unwrap_or_default(),
        )
        .map_err(|e| format!("{}: {e}", path.display()))?;
        n += 1;
    }
    Ok(n)
}
