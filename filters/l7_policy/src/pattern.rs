//! Regular expressions as Cilium rules write them, made cheap: most are
//! plain literals (`POST`, `/v1/request-landing`) or a literal followed by a
//! little regex (`/api/v1/users/[0-9]+`). A literal is compared as a string;
//! a literal prefix is compared before the regex engine runs, and the regex
//! then sees only the rest. The result is always the same as matching the
//! whole anchored regex.

use filter_common::config::Result;
use filter_common::predicate::anchored_regex;
use regex_lite::Regex;

#[derive(Debug)]
pub enum Pattern {
    Literal(String),
    /// `prefix` then `rest`, anchored at both ends.
    Prefixed {
        prefix: String,
        rest: Regex,
    },
}

/// The literal text a pattern starts with, and the byte offset where the
/// literal part ends in the pattern; `None` when a prefix cannot be taken
/// safely (alternation, flags, a leading group or class).
fn literal_prefix(pattern: &str) -> Option<(String, usize)> {
    if pattern.contains('|') || pattern.starts_with("(?") {
        return None;
    }
    let mut literal = String::new();
    // Byte offsets in `pattern` after each literal char, to cut before a quantifier.
    let mut ends: Vec<usize> = Vec::new();
    let mut chars = pattern.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.peek() {
                Some(&(j, next)) if next.is_ascii_punctuation() => {
                    chars.next();
                    literal.push(next);
                    ends.push(j + next.len_utf8());
                }
                _ => return Some(cut(literal, ends, i, pattern)),
            },
            '?' | '*' | '{' => {
                // The char before is optional or repeated: not part of the prefix.
                literal.pop();
                ends.pop();
                let end = ends.last().copied().unwrap_or(0);
                return Some((literal, end));
            }
            '.' | '+' | '(' | ')' | '[' | ']' | '}' | '^' | '$' => {
                return Some(cut(literal, ends, i, pattern));
            }
            c => {
                literal.push(c);
                ends.push(i + c.len_utf8());
            }
        }
    }
    Some((literal, pattern.len()))
}

fn cut(mut literal: String, mut ends: Vec<usize>, at: usize, pattern: &str) -> (String, usize) {
    // `a+` keeps `a` as a prefix only if one `a` is required, which it is;
    // but `a+` must still leave an `a+` for the regex: cut one char back.
    if pattern[at..].starts_with('+') {
        literal.pop();
        ends.pop();
    }
    let end = ends.last().copied().unwrap_or(0);
    (literal, end)
}

impl Pattern {
    /// Compiles `pattern` (implicitly anchored); errors name `path`.
    pub fn compile(path: &str, pattern: &str) -> Result<Pattern> {
        // Always compile the whole pattern once: it validates the syntax.
        let whole = anchored_regex(path, pattern)?;
        match literal_prefix(pattern) {
            Some((literal, end)) if end == pattern.len() => Ok(Pattern::Literal(literal)),
            Some((prefix, end)) if !prefix.is_empty() => {
                match anchored_regex(path, &pattern[end..]) {
                    Ok(rest) => Ok(Pattern::Prefixed { prefix, rest }),
                    Err(_) => Ok(Pattern::Prefixed {
                        prefix: String::new(),
                        rest: whole,
                    }),
                }
            }
            _ => Ok(Pattern::Prefixed {
                prefix: String::new(),
                rest: whole,
            }),
        }
    }

    /// The literal this pattern is, if it is one.
    pub fn literal(&self) -> Option<&str> {
        match self {
            Pattern::Literal(l) => Some(l),
            Pattern::Prefixed { .. } => None,
        }
    }

    pub fn matches(&self, value: &[u8]) -> bool {
        match self {
            Pattern::Literal(l) => value == l.as_bytes(),
            Pattern::Prefixed { prefix, rest } => value
                .strip_prefix(prefix.as_bytes())
                .and_then(|tail| std::str::from_utf8(tail).ok())
                .is_some_and(|tail| rest.is_match(tail)),
        }
    }
}
