//! Match predicates shared by the tap filters: `any`, `and`, `or`, `not` over
//! filter-specific conditions, in three-valued logic. A condition may be
//! unknown (`None`) until the data it looks at exists (an HTTP response, for
//! example), so a stream that can no longer match is dropped as early as possible.

pub mod re2;

use crate::config::{join, ConfigError, Field, Result};
use regex_lite::Regex;

/// Longest regular expression accepted, to bound compile time and memory.
pub const MAX_REGEX_LEN: usize = 1024;

/// How large and how costly a regular expression may be (the estimates of
/// [`re2::Scan`]): every filter uses [`RegexLimits::DEFAULT`]; l7_policy's
/// `max_regex_program_size` and `max_regex_cost` set others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegexLimits {
    /// RE2 program size: bounds compile time and memory. Envoy's own
    /// default (`re2.max_program_size.error_level`) is 100.
    pub program_size: u32,
    /// NFA states stepped through per char of the value: bounds the time
    /// a match takes, about 20 ns per state and char natively.
    pub cost: u32,
}

impl RegexLimits {
    /// Above what `tap policy suggest` writes (53 UUID segments in 1024
    /// chars: a size of about 13,500; it lists query names only up to this
    /// cost), and a cost that keeps the costliest rule within a few times a
    /// simple regex on the longest path (bench: one rule on the longest
    /// path).
    pub const DEFAULT: RegexLimits = RegexLimits {
        program_size: 16_384,
        cost: 32,
    };
}
const MAX_DEPTH: usize = 16;

/// A condition a filter evaluates against its `View` of a stream or connection.
pub trait Condition {
    type View<'a>;
    /// `Some(result)` once decided, `None` while it depends on data not yet seen.
    fn eval(&self, view: &Self::View<'_>) -> Option<bool>;
}

#[derive(Debug)]
pub enum Predicate<C> {
    Any,
    And(Vec<Predicate<C>>),
    Or(Vec<Predicate<C>>),
    Not(Box<Predicate<C>>),
    Is(C),
}

impl<C: Condition> Predicate<C> {
    pub fn eval(&self, view: &C::View<'_>) -> Option<bool> {
        match self {
            Predicate::Any => Some(true),
            Predicate::And(all) => decide(all, view, false),
            Predicate::Or(any) => decide(any, view, true),
            Predicate::Not(p) => p.eval(view).map(|b| !b),
            Predicate::Is(c) => c.eval(view),
        }
    }

    /// Whether evaluating needs any data at all (`any` does not).
    pub fn is_any(&self) -> bool {
        matches!(self, Predicate::Any)
    }
}

/// Three-valued and/or: `deciding` (false for and, true for or) from any one
/// predicate decides the whole; otherwise an unknown keeps it unknown.
fn decide<C: Condition>(
    predicates: &[Predicate<C>],
    view: &C::View<'_>,
    deciding: bool,
) -> Option<bool> {
    let mut unknown = false;
    for p in predicates {
        match p.eval(view) {
            Some(b) if b == deciding => return Some(deciding),
            None => unknown = true,
            Some(_) => {}
        }
    }
    (!unknown).then_some(!deciding)
}

/// Compiles `{"and": [...]}`, `{"or": [...]}`, `{"not": {...}}`, `{"any": true}`
/// and, through `condition`, each of the filter's `conditions` (keys such as
/// `"method"`), with every error naming the field path.
pub fn compile<C>(
    field: Field,
    conditions: &[&str],
    condition: &dyn Fn(&str, Field) -> Result<C>,
) -> Result<Predicate<C>> {
    compile_at(field, conditions, condition, 0)
}

fn compile_at<C>(
    field: Field,
    conditions: &[&str],
    condition: &dyn Fn(&str, Field) -> Result<C>,
    depth: usize,
) -> Result<Predicate<C>> {
    if depth > MAX_DEPTH {
        return Err(ConfigError::new(
            field.path,
            "predicates nest too deep",
            "nest at most 16 levels",
        ));
    }
    let mut kinds = vec!["any", "and", "or", "not"];
    kinds.extend_from_slice(conditions);
    let (kind, value) = field.one_of(&kinds)?;
    let path = join(field.path, kind);
    let inner = Field { path: &path, value };
    let list = || -> Result<Vec<Predicate<C>>> {
        let items = inner.list()?;
        if items.is_empty() {
            return Err(ConfigError::new(
                path.as_str(),
                "is an empty list",
                "give at least one predicate",
            ));
        }
        items
            .iter()
            .enumerate()
            .map(|(i, value)| {
                let path = format!("{path}[{i}]");
                compile_at(
                    Field { path: &path, value },
                    conditions,
                    condition,
                    depth + 1,
                )
            })
            .collect()
    };
    Ok(match kind {
        "any" => {
            if !inner.bool()? {
                return Err(ConfigError::new(
                    path,
                    "false would never match",
                    "use {\"any\": true}, or {\"not\": {\"any\": true}} to tap nothing",
                ));
            }
            Predicate::Any
        }
        "and" => Predicate::And(list()?),
        "or" => Predicate::Or(list()?),
        "not" => Predicate::Not(Box::new(compile_at(
            inner,
            conditions,
            condition,
            depth + 1,
        )?)),
        _ => Predicate::Is(condition(kind, inner)?),
    })
}

/// A regular expression that must match the whole value, like Envoy's
/// `safe_regex` (RE2 syntax, full match).
pub fn anchored_regex(path: &str, pattern: &str) -> Result<Regex> {
    anchored_regex_within(path, pattern, RegexLimits::DEFAULT)
}

/// An [`anchored_regex`] within other `limits`.
pub fn anchored_regex_within(path: &str, pattern: &str, limits: RegexLimits) -> Result<Regex> {
    re2_regex(path, pattern, false, limits).map(|(r, _)| r)
}

/// A case-insensitive [`anchored_regex`], as RE2 matches `(?i:pattern)`.
#[derive(Debug)]
pub struct FoldedRegex(Regex);

impl FoldedRegex {
    pub fn new(path: &str, pattern: &str) -> Result<FoldedRegex> {
        FoldedRegex::within(path, pattern, RegexLimits::DEFAULT)
    }

    /// A [`FoldedRegex`] within other `limits`.
    pub fn within(path: &str, pattern: &str, limits: RegexLimits) -> Result<FoldedRegex> {
        re2_regex(path, pattern, true, limits).map(|(r, _)| FoldedRegex(r))
    }

    /// RE2 folds case by Unicode, so `k` also matches the Kelvin sign and
    /// `s` the long s; regex-lite folds ASCII only. The gate refuses every
    /// other way a non-ASCII char could fold and `\b` (which sees them as
    /// non-word chars), so folding these two in the value is the same.
    pub fn is_match(&self, value: &str) -> bool {
        // Their UTF-8 starts with 0xE2 (U+212A) or 0xC5 (U+017F).
        if !value.bytes().any(|b| b == 0xE2 || b == 0xC5) {
            return self.0.is_match(value);
        }
        let mut folded = String::with_capacity(value.len());
        for c in value.chars() {
            folded.push(match c {
                '\u{212A}' => 'k',
                '\u{17F}' => 's',
                c => c,
            });
        }
        self.0.is_match(&folded)
    }
}

/// The anchored regex for the RE2 `pattern`, and whether it looks at the
/// text around a position (`^`, `\A`, `\b`, `\B`). The pattern is checked
/// on its own before it is wrapped, so the anchors cannot be escaped, and
/// refused over `limits`, before regex-lite compiles it (which alone can
/// take seconds).
pub fn re2_regex(
    path: &str,
    pattern: &str,
    fold: bool,
    limits: RegexLimits,
) -> Result<(Regex, bool)> {
    if pattern.len() > MAX_REGEX_LEN {
        return Err(ConfigError::new(
            path,
            "regex is too long",
            "keep it under 1024 characters",
        ));
    }
    let refuse = |what: &dyn std::fmt::Display| {
        ConfigError::new(
            path,
            format!("invalid regex {pattern:?}: {what}"),
            "write RE2 syntax that reads alike here (l7_policy README: Regular expressions)",
        )
    };
    let scan = re2::check(pattern, fold).map_err(|what| refuse(&what))?;
    let over = if scan.size > limits.program_size {
        Some((
            "compiles to too large a program: about",
            scan.size,
            "instructions (RE2 program size)",
            limits.program_size,
            "max_regex_program_size",
        ))
    } else if scan.cost > limits.cost {
        Some((
            "costs too much to match: up to",
            scan.cost,
            "steps per char of the value",
            limits.cost,
            "max_regex_cost",
        ))
    } else {
        None
    };
    if let Some((what, n, unit, max, field)) = over {
        // The first 60 bytes of a long pattern (all of it if they end
        // inside a char).
        let shown = pattern.get(..60).unwrap_or(pattern);
        let more = if shown.len() < pattern.len() {
            "..."
        } else {
            ""
        };
        return Err(ConfigError::new(
            path,
            format!("regex {shown:?}{more} {what} {n} {unit}, over the limit of {max}"),
            format!("{REPEATS} or split it into several rules; l7_policy: raise {field} (README: Limits)"),
        ));
    }
    let open = if fold { "^(?i:" } else { "^(?:" };
    let regex = Regex::new(&format!("{open}{pattern})$")).map_err(|e| refuse(&e))?;
    Ok((regex, scan.looks_around))
}

const REPEATS: &str = "use fewer or smaller counts ({n,m} is m copies), end a repetition with a char the next cannot match (`[^/]+/`, not `[^/]*[^/]*`),";

/// A string test: `{"exact": ..}`, `{"prefix": ..}`, `{"suffix": ..}` or `{"regex": ..}`.
#[derive(Debug)]
pub enum StringMatch {
    Exact(String),
    Prefix(String),
    Suffix(String),
    /// Matches the whole value, like Envoy's `safe_regex`.
    Regex(Regex),
}

impl StringMatch {
    /// Reads a string test offering the `allowed` kinds.
    pub fn read(field: Field, allowed: &[&str]) -> Result<StringMatch> {
        let (how, value) = field.one_of(allowed)?;
        let path = join(field.path, how);
        let text = Field { path: &path, value }.str()?;
        Ok(match how {
            "exact" => StringMatch::Exact(text.to_string()),
            "prefix" => StringMatch::Prefix(text.to_string()),
            "suffix" => StringMatch::Suffix(text.to_string()),
            _ => StringMatch::Regex(anchored_regex(&path, text)?),
        })
    }

    pub fn matches(&self, value: &str) -> bool {
        match self {
            StringMatch::Exact(s) => value == s,
            StringMatch::Prefix(s) => value.starts_with(s.as_str()),
            StringMatch::Suffix(s) => value.ends_with(s.as_str()),
            StringMatch::Regex(r) => r.is_match(value),
        }
    }
}
