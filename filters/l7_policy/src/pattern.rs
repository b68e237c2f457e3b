//! Regular expressions as Cilium rules write them, made cheap: most are
//! plain literals (`POST`, `/v1/request-landing`) or a literal followed by a
//! little regex (`/api/v1/users/[0-9]+`). A literal is compared as a string;
//! a literal prefix is compared before the regex engine runs, and the regex
//! then sees only the rest. A rest that is one repeated class (`[0-9]+`,
//! `[a-z0-9-]*`, `.*`) is checked char by char without the regex engine.
//! The result is always the same as matching the whole anchored regex: a
//! prefix is split off only where the rest does not look at the text before
//! it (`\b`, `\B`, `^`, `\A`), never across an alternation, and never after
//! a pattern that starts with flags; flags inside a group (`(?s)`) apply to
//! that group only, so the rest keeps its meaning.

use filter_common::config::Result;
use filter_common::predicate::{anchored_regex_within, re2_regex, RegexLimits};
use regex_lite::Regex;

#[derive(Debug)]
pub enum Pattern {
    Literal(String),
    /// `prefix` then `rest`, anchored at both ends.
    Prefixed {
        prefix: String,
        rest: Rest,
    },
}

/// What follows a literal prefix.
#[derive(Debug)]
pub enum Rest {
    Regex(Regex),
    /// At least `min` chars, each in `class`.
    Run {
        class: Class,
        min: usize,
    },
}

#[derive(Debug, Clone, Copy)]
pub enum Class {
    /// `.`: any char but a newline.
    AnyButNewline,
    /// ASCII chars, one bit each (two words, not a `u128`: its 16-byte
    /// alignment would grow every rule, and 1000 rules are walked per request).
    Ascii([u64; 2]),
}

impl Class {
    fn contains(self, c: char) -> bool {
        match self {
            Class::AnyButNewline => c != '\n',
            Class::Ascii(bits) => {
                let c = c as u32;
                bits.get((c / 64) as usize)
                    .is_some_and(|word| word & (1 << (c % 64)) != 0)
            }
        }
    }
}

/// `.*`, `.+`, or a bracketed class of ASCII chars and ranges followed by
/// `*` or `+`; `None` for anything else (negation, escapes, nested classes,
/// set operations, a `-` that is neither a range nor at an end), which the
/// regex engine keeps.
fn run(rest: &str) -> Option<Rest> {
    let (class, min) = match rest.strip_suffix('*') {
        Some(class) => (class, 0),
        None => (rest.strip_suffix('+')?, 1),
    };
    if class == "." {
        return Some(Rest::Run {
            class: Class::AnyButNewline,
            min,
        });
    }
    let inner = class.strip_prefix('[')?.strip_suffix(']')?.as_bytes();
    let unsafe_char = |b: &u8| matches!(b, b'[' | b']' | b'\\' | b'&' | b'~') || !b.is_ascii();
    if matches!(inner.first(), None | Some(b'^')) || inner.iter().any(unsafe_char) {
        return None;
    }
    let mut bits = [0u64; 2];
    let mut set = |c: u8| {
        if let Some(word) = bits.get_mut(usize::from(c / 64)) {
            *word |= 1 << (c % 64);
        }
    };
    let mut rest = inner;
    loop {
        rest = match rest {
            [] => break,
            &[low, b'-', high, ref tail @ ..] => {
                if low > high || high == b'-' {
                    return None;
                }
                (low..=high).for_each(&mut set);
                tail
            }
            &[c, ref tail @ ..] => {
                // A '-' that is not a range is literal only first or last.
                if c == b'-' && rest.len() != inner.len() && !tail.is_empty() {
                    return None;
                }
                set(c);
                tail
            }
        };
    }
    Some(Rest::Run {
        class: Class::Ascii(bits),
        min,
    })
}

impl Rest {
    fn matches(&self, text: &str) -> bool {
        match self {
            Rest::Regex(r) => r.is_match(text),
            Rest::Run { class, min } => {
                text.len() >= *min && text.chars().all(|c| class.contains(c))
            }
        }
    }
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
    /// Compiles `pattern` (RE2 syntax, implicitly anchored); errors name `path`.
    pub fn compile(path: &str, pattern: &str) -> Result<Pattern> {
        Pattern::compile_within(path, pattern, RegexLimits::DEFAULT)
    }

    /// [`Pattern::compile`] within other `limits`.
    pub fn compile_within(path: &str, pattern: &str, limits: RegexLimits) -> Result<Pattern> {
        // Always compile the whole pattern once: it validates the syntax
        // and its cost.
        let whole = anchored_regex_within(path, pattern, limits)?;
        let whole = || Pattern::Prefixed {
            prefix: String::new(),
            rest: Rest::Regex(whole),
        };
        let Some((prefix, end)) = literal_prefix(pattern) else {
            return Ok(whole());
        };
        if end == pattern.len() {
            return Ok(Pattern::Literal(prefix));
        }
        let tail = pattern.get(end..).unwrap_or_default();
        if let Some(rest) = run(tail) {
            return Ok(Pattern::Prefixed { prefix, rest });
        }
        // A tail that looks at the text around a position (`\b`, `^`) would
        // see the start of the tail where the whole sees the prefix: no split.
        Ok(match re2_regex(path, tail, false, limits) {
            Ok((rest, false)) if !prefix.is_empty() => Pattern::Prefixed {
                prefix,
                rest: Rest::Regex(rest),
            },
            _ => whole(),
        })
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
                .is_some_and(|tail| rest.matches(tail)),
        }
    }
}
