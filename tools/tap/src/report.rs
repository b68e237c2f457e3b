//! How requests read in the reports of `suggest` and `check`: counts in
//! words, and paths and hosts with secret-looking parts masked.

use crate::query::{names, shown_name};
use crate::segment::{classify, looks_secret, without_userinfo, Segment};

/// A path for a report: secret-looking segments and the query's values
/// replaced by placeholders.
pub fn mask(path: &str) -> String {
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    let segments: Vec<String> = path
        .split('/')
        .map(|s| match classify(s) {
            Segment::Token => "{token}".into(),
            // Password-reset and invitation links are often UUIDs.
            Segment::Uuid => "{uuid}".into(),
            // A long number may be a card or account number.
            Segment::Id if looks_secret(s) => "{id}".into(),
            _ => s.to_string(),
        })
        .collect();
    let mut text = segments.join("/");
    if let Some(q) = query {
        let shown: Vec<String> = names(q).map(|n| format!("{}=…", shown_name(n))).collect();
        text.push('?');
        text.push_str(&shown.join("&"));
    }
    text
}

/// "1 request", "2 requests".
pub fn requests(n: usize) -> String {
    format!("{n} request{}", if n == 1 { "" } else { "s" })
}

/// A host for a report: secret-looking labels and any userinfo masked.
pub fn mask_host(host: &str) -> String {
    let (name, userinfo) = without_userinfo(host);
    let userinfo = if userinfo { "{userinfo}@" } else { "" };
    let labels: Vec<&str> = name
        .split('.')
        .map(|label| {
            if looks_secret(label) {
                "{token}"
            } else {
                label
            }
        })
        .collect();
    format!("{userinfo}{}", labels.join("."))
}
