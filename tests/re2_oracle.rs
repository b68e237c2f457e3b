//! RE2 itself is the oracle for regexes in rules: a few thousand generated
//! patterns (RE2 constructs, regex-lite-only constructs, unbalanced junk)
//! and values, judged by google-re2 through tests/re2_oracle.py. The filter
//! refuses at load exactly the patterns RE2 refuses (or, where it refuses
//! more, the pattern is in a documented class, counted below), and for every
//! pattern both accept, l7_policy's `Pattern` (with its literal fast paths),
//! `anchored_regex` and the case-insensitive host form give RE2's FullMatch.

use filter_common::predicate::{anchored_regex, FoldedRegex};
use harness::paths::{venv_tool, workspace_root};
use harness::Lcg;
use l7_policy::pattern::Pattern;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

/// Constructs RE2 has that this filter refuses on purpose (each named in
/// filters/l7_policy/README.md), by a word of the refusal's message.
const REFUSED_ON_PURPOSE: [&str; 18] = [
    // RE2 reads these otherwise than regex-lite.
    "write < or >",
    "\\b\\{",
    "\\s or \\S",
    "write \\[",
    "escape them",
    "write \\{",
    "ranges must start and end with a single character",
    "nested deeper than 32",
    "(no names)",
    "the i flag",
    "right after flags",
    "case-insensitive",
    // RE2 has these, regex-lite not (or not alike).
    "octal escape",
    "Unicode class",
    "\\Q..\\E",
    "\\C",
    "over 1000",
    "flag directive",
];

const ATOMS: &[&str] = &[
    "a",
    "b",
    "k",
    "s",
    "/",
    "-",
    ".",
    "é",
    "_",
    " ",
    "\\.",
    "\\-",
    "\\/",
    "\\b",
    "\\B",
    "^",
    "$",
    "\\A",
    "\\z",
    "\\Z",
    "\\<",
    "\\>",
    "\\b{start}",
    "[a-c]",
    "[^a]",
    "[a[b]]",
    "[a&&b]",
    "[a--b]",
    "[a~~b]",
    "[[]",
    "[]a]",
    "[^]a]",
    "[a-]",
    "[-a]",
    "[a-b-c]",
    "[z-a]",
    "[[:alpha:]]",
    "[[:^digit:]]",
    "[[:lower:]]",
    "[[:foo:]]",
    "[:a:]",
    "[\\d/]",
    "[\\w-]",
    "[\\s]",
    "[\\S]",
    "[\\D]",
    "[a\\W]",
    "[^\\W]",
    "[^\\s]",
    "[k-m]",
    "[r-t]",
    "[^k]",
    "[\\]]",
    "[\\-a]",
    "[\\b]",
    "\\d",
    "\\w",
    "\\W",
    "\\s",
    "\\S",
    "\\pL",
    "\\p{Greek}",
    "\\QA.B\\E",
    "\\C",
    "\\e",
    "\\_",
    "\\%",
    "\\ ",
    "\\0",
    "\\12",
    "\\1",
    "\\8",
    "\\x41",
    "\\x{6B}",
    "\\x{110000}",
    "\\u0041",
    "\\é",
    "\\v",
    "\\t",
    "\\n",
    "(",
    ")",
    "|",
    "(?:",
    "(?i)",
    "(?i:",
    "(?-i)",
    "(?m)",
    "(?s)",
    "(?U)",
    "(?ims)",
    "(?i-s:",
    "(?)",
    "(?-)",
    "(?x)",
    "(?u)",
    "(?R)",
    "(?P<n>",
    "(?<n>",
    "(?P<>",
    "(?P=n)",
    "(?=",
    "(?!",
    "(?#",
    "{",
    "}",
    "{2}",
    "(a|b)",
    "(ab)",
    "(a*)",
    "()",
    "[0-9]",
    "[a-z0-9-]",
];

const QUANTIFIERS: &[&str] = &[
    "", "", "", "", "", "*", "+", "?", "*?", "+?", "??", "{2}", "{1,3}", "{0}", "{2,}", "{1001}",
    "{2,1}", "**", "++", "?*", "???", "{,2}", "{x}", "{2}*", "*{2}", "{10}",
];

const PREFIXES: &[&str] = &["", "", "/api", "/v1/users", "ab", "/a"];

const VALUE_CHARS: &[&str] = &[
    "a", "b", "k", "s", "K", "S", "\u{212A}", "\u{17F}", "/", "-", ".", "_", "\n", "\t", "\u{b}",
    "\u{c}", "\r", " ", "é", "É", "A", "0", "1", "<", ">", "[", "]", "&", "~", "%", "a", "b",
];

fn junk(rng: &mut Lcg) -> String {
    let chars: Vec<char> = "()[]{}|\\^$.*+?ab-:,0123&~<>".chars().collect();
    (0..1 + rng.below(6)).map(|_| *rng.pick(&chars)).collect()
}

fn pattern(rng: &mut Lcg) -> String {
    let mut p = (*rng.pick(PREFIXES)).to_string();
    for _ in 0..rng.below(6) {
        if rng.below(12) == 0 {
            p.push_str(&junk(rng));
        } else {
            p.push_str(rng.pick::<&str>(ATOMS));
            p.push_str(rng.pick::<&str>(QUANTIFIERS));
        }
    }
    p
}

fn values(rng: &mut Lcg, p: &str) -> Vec<String> {
    let mut values = vec![String::new(), p.to_string()];
    for _ in 0..14 {
        let mut v = if rng.below(2) == 0 {
            (*rng.pick(PREFIXES)).to_string()
        } else {
            String::new()
        };
        for _ in 0..rng.below(7) {
            v.push_str(rng.pick::<&str>(VALUE_CHARS));
        }
        values.push(v);
    }
    values
}

/// The cases written out, so each failure names a pattern one can try.
fn explicit() -> Vec<&'static str> {
    vec![
        "/api\\b.*",
        "/v1/users\\b",
        "/api\\>",
        "/api\\<",
        "/foo^bar",
        "/public)|(/nothing",
        "a)|(b",
        "/api/v1/users/[0-9]+",
        "/public/.*",
        "/v1/request-landing",
        "",
        "\\b",
        "a{1000}",
        "(a{10}){100}",
        "(a{3}){334}",
        "a{1000000000000}",
        "/a/[^/]+",
        "/a(?i)b",
        "(?i)k",
        "[\\d-z]+",
    ]
}

type Matcher = Box<dyn Fn(&str) -> bool>;

fn oracle(cases: &[Value]) -> Vec<Value> {
    let mut child = Command::new(venv_tool("python"))
        .arg(workspace_root().join("tests/re2_oracle.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python for tests/re2_oracle.py");
    let input = serde_json::to_vec(cases).unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "re2_oracle.py failed (google-re2 missing? run `make test-tools`)"
    );
    serde_json::from_slice(&output.stdout).expect("JSON from re2_oracle.py")
}

#[test]
fn rules_match_what_re2_full_match_matches() {
    let mut rng = Lcg(0x2e2);
    let mut cases = Vec::new();
    for p in explicit() {
        for fold in [false, true] {
            cases.push(json!({"pattern": p, "fold": fold, "values": values(&mut rng, p)}));
        }
    }
    for _ in 0..4000 {
        let p = pattern(&mut rng);
        let fold = rng.below(4) == 0;
        cases.push(json!({"pattern": p, "fold": fold, "values": values(&mut rng, &p)}));
    }
    let verdicts = oracle(&cases);
    assert_eq!(verdicts.len(), cases.len());
    let (mut accepted, mut refused, mut checked) = (0, 0, 0);
    let mut on_purpose: BTreeMap<&str, usize> = BTreeMap::new();
    let mut wrong = Vec::new();
    for (case, verdict) in cases.iter().zip(&verdicts) {
        let p = case["pattern"].as_str().unwrap();
        let fold = case["fold"].as_bool().unwrap();
        let re2_ok = verdict["error"].is_null();
        let ours = if fold {
            FoldedRegex::new("p", p)
                .map(|r| (None, Box::new(move |v: &str| r.is_match(v)) as Matcher))
        } else {
            Pattern::compile("p", p).and_then(|fast| {
                let r = anchored_regex("p", p)?;
                Ok((
                    Some(fast),
                    Box::new(move |v: &str| r.is_match(v)) as Matcher,
                ))
            })
        };
        match (re2_ok, ours) {
            (false, Err(_)) => refused += 1,
            (false, Ok(_)) => wrong.push(format!(
                "{p:?} (fold {fold}): RE2 refuses ({}), we accept",
                verdict["error"]
            )),
            (true, Err(e)) => {
                let e = e.to_string();
                match REFUSED_ON_PURPOSE.iter().find(|w| e.contains(*w)) {
                    Some(w) => *on_purpose.entry(w).or_default() += 1,
                    None => wrong.push(format!("{p:?} (fold {fold}): RE2 accepts, we refuse: {e}")),
                }
            }
            (true, Ok((fast, whole))) => {
                accepted += 1;
                let values = case["values"].as_array().unwrap();
                for (v, want) in values.iter().zip(verdict["matches"].as_array().unwrap()) {
                    let (v, want) = (v.as_str().unwrap(), want.as_bool().unwrap());
                    checked += 1;
                    if whole(v) != want {
                        wrong.push(format!(
                            "{p:?} (fold {fold}) on {v:?}: regex says {}, RE2 {want}",
                            !want
                        ));
                    }
                    if let Some(fast) = &fast {
                        if fast.matches(v.as_bytes()) != want {
                            wrong.push(format!(
                                "{p:?} on {v:?}: Pattern says {}, RE2 {want}",
                                !want
                            ));
                        }
                    }
                }
            }
        }
    }
    println!(
        "RE2 oracle: {} patterns, {accepted} accepted by both ({checked} values), {refused} refused by both, refused here on purpose: {on_purpose:?}",
        cases.len()
    );
    assert!(
        wrong.is_empty(),
        "{} differ from RE2, first: {:#?}",
        wrong.len(),
        &wrong[..wrong.len().min(25)]
    );
    assert!(
        accepted > 800 && refused > 500,
        "a corpus with both verdicts"
    );
}
