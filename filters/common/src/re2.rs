//! RE2 syntax, as Envoy's `safe_regex` parses it, translated to the
//! regex-lite syntax that means the same. A pattern RE2 refuses is refused;
//! a construct whose meaning differs is rewritten (`\<` is a literal `<` in
//! RE2, `\s` has no vertical tab, `[a[b]` is one class, `a{` is literal) or,
//! where that would cost more than it is worth, refused with the fix:
//! `\p{..}` classes, `\Q..\E`, `\C`, octal escapes, counts that look like
//! counts but are over 1000, non-ASCII group names, and non-ASCII text in a
//! case-insensitive regex. The output has balanced parentheses, so wrapping
//! it (`^(?:..)$`) cannot be escaped.

/// What is wrong and how to fix it.
pub type Refusal = (&'static str, &'static str);

/// The regex-lite pattern, and whether it looks at the text around a
/// position (`^`, `\A`, `\b`, `\B` outside a class): such a pattern cannot be
/// matched on a piece of the value cut out of its context.
pub struct Translated {
    pub regex: String,
    pub looks_around: bool,
}

const MAX_REPEAT: u32 = 1000;

struct Group {
    /// Case-insensitive outside this group.
    fold: bool,
    /// Largest product of counts nested in this group.
    weight: u32,
}

/// Translates `p` (RE2 syntax); `fold` is case-insensitive matching around it.
pub fn translate(p: &str, fold: bool) -> Result<Translated, Refusal> {
    let mut out = String::with_capacity(p.len() + 8);
    let mut looks_around = false;
    let mut fold = fold;
    let mut groups: Vec<Group> = Vec::new();
    // Weight of the last atom, or None where a repetition has no argument.
    let mut last: Option<u32> = None;
    let mut repeated = false;
    let mut it = p.chars().peekable();
    while let Some(c) = it.next() {
        let mut atom = Some(1);
        let mut was_repeat = false;
        match c {
            '\\' => {
                let e = it.next().ok_or(TRAILING)?;
                match e {
                    'b' | 'B' | 'A' => {
                        looks_around = true;
                        out.push('\\');
                        out.push(e);
                    }
                    'w' | 'W' if fold => {
                        out.push('[');
                        if e == 'W' {
                            out.push('^');
                        }
                        out.push_str(WORD_FOLDED);
                        out.push(']');
                    }
                    'z' | 'd' | 'D' | 'w' | 'W' | 'a' | 'f' | 't' | 'n' | 'r' | 'v' => {
                        out.push('\\');
                        out.push(e);
                    }
                    's' => out.push_str(r"[\t\n\f\r ]"),
                    'S' => out.push_str(r"[^\t\n\f\r ]"),
                    _ => literal(&mut out, escape(e, &mut it)?, fold)?,
                }
            }
            '[' => class(&mut out, &mut it, fold)?,
            '(' => {
                let mut f = fold;
                if it.peek() == Some(&'?') {
                    it.next();
                    let (flags, opens) = group_flags(&mut it, &mut f)?;
                    if !opens {
                        // `(?i)`: flags for the rest of the group.
                        fold = f;
                        out.push_str(&flags);
                        out.push(')');
                        last = None;
                        repeated = false;
                        continue;
                    }
                    out.push_str(&flags);
                    out.push(':');
                } else {
                    out.push('(');
                }
                groups.push(Group { fold, weight: 1 });
                fold = f;
                last = None;
                repeated = false;
                continue;
            }
            ')' => {
                let g = groups
                    .pop()
                    .ok_or(("unbalanced `)`", "escape it as `\\)`"))?;
                fold = g.fold;
                out.push(')');
                atom = Some(g.weight);
            }
            '|' => {
                out.push('|');
                atom = None;
            }
            '*' | '+' | '?' => {
                repeat(&mut out, &mut it, last, repeated, c)?;
                was_repeat = true;
                atom = last;
            }
            '{' => match count(&mut it) {
                Some((text, n)) => {
                    if n > MAX_REPEAT {
                        return Err(("a repetition count over 1000", "RE2 allows at most {1000}"));
                    }
                    let w = last.unwrap_or(1).saturating_mul(n.max(1));
                    if w > MAX_REPEAT {
                        return Err((
                            "nested repetition counts over 1000 in all",
                            "RE2 allows a product of at most 1000",
                        ));
                    }
                    repeat(&mut out, &mut it, last, repeated, '{')?;
                    out.push_str(&text);
                    if it.peek() == Some(&'?') {
                        it.next();
                        out.push('?');
                    }
                    was_repeat = true;
                    atom = Some(w);
                }
                None => out.push_str("\\{"),
            },
            '^' => {
                looks_around = true;
                out.push('^');
            }
            '$' | '.' => out.push(c),
            _ => literal(&mut out, c, fold)?,
        }
        if let Some(w) = atom {
            if let Some(g) = groups.last_mut() {
                g.weight = g.weight.max(w);
            }
        }
        last = atom;
        repeated = was_repeat;
    }
    if !groups.is_empty() {
        return Err(("unbalanced `(`", "close it, or escape it as `\\(`"));
    }
    Ok(Translated {
        regex: out,
        looks_around,
    })
}

/// `\w` in a case-insensitive regex: RE2 adds what folds to k and s.
const WORD_FOLDED: &str = "0-9A-Za-z_\\x{212A}\\x{17F}";

const TRAILING: Refusal = ("a trailing `\\`", "escape it as `\\\\`");

/// A repetition operator; RE2 refuses one with nothing before it and one
/// right after another (`a**`, `a*{2}`); `*?`, `+?`, `??` are non-greedy.
fn repeat(
    out: &mut String,
    it: &mut std::iter::Peekable<std::str::Chars>,
    last: Option<u32>,
    repeated: bool,
    c: char,
) -> Result<(), Refusal> {
    if last.is_none() {
        return Err((
            "a repetition with nothing to repeat",
            "escape the operator with `\\`",
        ));
    }
    if repeated {
        return Err((
            "a repetition of a repetition (`**`, `+*`, `*{2}`)",
            "group it: `(?:a*)*`",
        ));
    }
    if c != '{' {
        out.push(c);
        if it.peek() == Some(&'?') {
            it.next();
            out.push('?');
        }
    }
    Ok(())
}

/// `{n}`, `{n,}` or `{n,m}` after a `{`: the text and the largest count
/// (`m`, or `n` when unbounded). RE2 takes anything else as a literal `{`.
fn count(it: &mut std::iter::Peekable<std::str::Chars>) -> Option<(String, u32)> {
    let rest: String = it.clone().take(12).collect();
    let end = rest.find('}')?;
    let body = rest.get(..end)?;
    let (min, max) = match body.split_once(',') {
        Some((a, b)) => (a, Some(b)),
        None => (body, None),
    };
    let num = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u32>().unwrap_or(u32::MAX))
    };
    let n = num(min)?;
    let m = match max {
        Some("") => n,
        Some(b) => {
            let m = num(b)?;
            if m < n {
                return Some((String::new(), u32::MAX));
            }
            m
        }
        None => n,
    };
    for _ in 0..=end {
        it.next();
    }
    Some((format!("{{{body}}}"), m))
}

/// `(?` flags `)` or `(?` flags `:`, or `(?P<name>` / `(?<name>`: the
/// regex-lite text up to (not with) the `)` or `:`, and whether a group opens.
fn group_flags(
    it: &mut std::iter::Peekable<std::str::Chars>,
    fold: &mut bool,
) -> Result<(String, bool), Refusal> {
    const BAD: Refusal = (
        "a `(?` group RE2 does not have (look-around, atomic, comment, backreference or flag other than i m s U)",
        "use (?:..) or the flags i, m, s, U",
    );
    if it.peek() == Some(&'P') {
        it.next();
        if it.peek() != Some(&'<') {
            return Err(BAD);
        }
    }
    if it.peek() == Some(&'<') {
        it.next();
        let mut name = 0;
        loop {
            match it.next() {
                Some('>') if name > 0 => return Ok(("(?".into(), true)),
                Some(c) if c.is_ascii_alphanumeric() || c == '_' => name += 1,
                _ => {
                    return Err((
                        "a group name that is empty, not closed by `>` or not ASCII letters, digits and `_`",
                        "name it with [A-Za-z0-9_] or use (?:..)",
                    ))
                }
            }
        }
    }
    let mut on = String::new();
    let mut off = String::new();
    let mut neg = false;
    loop {
        match it.next() {
            Some(c @ ('i' | 'm' | 's' | 'U')) => {
                let (add, del) = if neg {
                    (&mut off, &mut on)
                } else {
                    (&mut on, &mut off)
                };
                if c == 'i' {
                    *fold = !neg;
                }
                del.retain(|d| d != c);
                if !add.contains(c) {
                    add.push(c);
                }
            }
            Some('-') if !neg => neg = true,
            Some(end @ (')' | ':')) if !(neg && off.is_empty()) => {
                let mut text = String::from("(?");
                text.push_str(&on);
                if !off.is_empty() {
                    text.push('-');
                    text.push_str(&off);
                }
                if on.is_empty() && off.is_empty() && end == ')' {
                    // `(?)` does nothing.
                    return Ok((String::from("(?:"), false));
                }
                return Ok((text, end == ':'));
            }
            _ => return Err(BAD),
        }
    }
}

/// The char an escape stands for (after `\`), where it stands for one.
fn escape(e: char, it: &mut std::iter::Peekable<std::str::Chars>) -> Result<char, Refusal> {
    match e {
        'x' => {
            let mut hex = String::new();
            if it.peek() == Some(&'{') {
                it.next();
                loop {
                    match it.next() {
                        Some('}') => break,
                        Some(h) if hex.len() < 8 => hex.push(h),
                        _ => return Err(BAD_HEX),
                    }
                }
            } else {
                hex.extend(it.next());
                hex.extend(it.next());
                if hex.len() != 2 {
                    return Err(BAD_HEX);
                }
            }
            u32::from_str_radix(&hex, 16)
                .ok()
                .filter(|_| hex.bytes().all(|b| b.is_ascii_hexdigit()))
                .and_then(char::from_u32)
                .ok_or(BAD_HEX)
        }
        '0'..='7' => Err(("an octal escape", "write it as \\x{..}")),
        'p' | 'P' => Err(("a Unicode class \\p", "list the characters in a class [..]")),
        'Q' => Err(("a quoted literal \\Q..\\E", "escape each special character with `\\`")),
        'C' => Err(("\\C (any byte)", "use `.`")),
        // RE2: any ASCII char but a letter or digit stands for itself.
        _ if e.is_ascii() && !e.is_ascii_alphanumeric() => Ok(e),
        _ => Err((
            "an escape RE2 does not know (it has \\a \\f \\t \\n \\r \\v \\x \\d \\D \\s \\S \\w \\W \\b \\B \\A \\z)",
            "remove the `\\`, or escape only punctuation",
        )),
    }
}

const BAD_HEX: Refusal = ("a bad \\x escape", "write \\xHH or \\x{H..} up to 10FFFF");

/// Appends `c` as a literal (outside a class).
fn literal(out: &mut String, c: char, fold: bool) -> Result<(), Refusal> {
    if fold {
        check_fold(c)?;
        if let Some(extra) = fold_extra(c) {
            out.push('[');
            push_escaped(out, c);
            out.push_str(extra);
            out.push(']');
            return Ok(());
        }
    }
    push_escaped(out, c);
    Ok(())
}

fn check_fold(c: char) -> Result<(), Refusal> {
    if c.is_ascii() {
        Ok(())
    } else {
        Err((
            "a non-ASCII character in a case-insensitive regex",
            "write it with \\x{..} in a class of both cases, outside (?i)",
        ))
    }
}

/// RE2 folds case by Unicode: `k` also matches the Kelvin sign and `s` the
/// long s; regex-lite folds ASCII only.
fn fold_extra(c: char) -> Option<&'static str> {
    match c {
        'k' | 'K' => Some("\\x{212A}"),
        's' | 'S' => Some("\\x{17F}"),
        _ => None,
    }
}

fn push_escaped(out: &mut String, c: char) {
    if "\\.+*?()|[]{}^$#&-~".contains(c) {
        out.push('\\');
    }
    out.push(c);
}

/// A class after `[`, as RE2 reads it: `]` first is literal, `[` is literal
/// unless it starts `[:name:]`, `a-z` is a range, a `-` elsewhere literal.
fn class(
    out: &mut String,
    it: &mut std::iter::Peekable<std::str::Chars>,
    fold: bool,
) -> Result<(), Refusal> {
    const OPEN: Refusal = ("an unclosed `[`", "close the class, or escape it as `\\[`");
    out.push('[');
    if it.peek() == Some(&'^') {
        it.next();
        out.push('^');
    }
    let mut first = true;
    let mut extra = "";
    loop {
        let c = it.next().ok_or(OPEN)?;
        if c == ']' && !first {
            break;
        }
        first = false;
        let lo = match c {
            '[' if it.peek() == Some(&':') => {
                let name: String = it.clone().take(16).collect();
                let end = name.find(":]").ok_or(BAD_POSIX)?;
                let body = name.get(1..end).ok_or(BAD_POSIX)?;
                let bare = body.strip_prefix('^').unwrap_or(body);
                if !matches!(
                    bare,
                    "alnum"
                        | "alpha"
                        | "ascii"
                        | "blank"
                        | "cntrl"
                        | "digit"
                        | "graph"
                        | "lower"
                        | "print"
                        | "punct"
                        | "space"
                        | "upper"
                        | "word"
                        | "xdigit"
                ) {
                    return Err(BAD_POSIX);
                }
                if fold && !matches!(bare, "blank" | "cntrl" | "digit" | "punct" | "space") {
                    return Err((
                        "a [:name:] class with letters in a case-insensitive regex",
                        "list the letters: [a-z]",
                    ));
                }
                for _ in 0..end + 2 {
                    it.next();
                }
                out.push_str("[:");
                out.push_str(body);
                out.push_str(":]");
                continue;
            }
            '\\' => {
                let e = it.next().ok_or(TRAILING)?;
                match e {
                    'w' if fold => {
                        out.push_str(WORD_FOLDED);
                        continue;
                    }
                    'W' if fold => {
                        out.push_str("[^");
                        out.push_str(WORD_FOLDED);
                        out.push(']');
                        continue;
                    }
                    'd' | 'D' | 'w' | 'W' => {
                        out.push('\\');
                        out.push(e);
                        continue;
                    }
                    's' => {
                        out.push_str(r"\t\n\f\r ");
                        continue;
                    }
                    'S' => {
                        out.push_str(r"[^\t\n\f\r ]");
                        continue;
                    }
                    'a' => '\x07',
                    'f' => '\x0C',
                    't' => '\t',
                    'n' => '\n',
                    'r' => '\r',
                    'v' => '\x0B',
                    _ => escape(e, it)?,
                }
            }
            c => c,
        };
        let mut hi = lo;
        let mut ahead = it.clone();
        if ahead.next() == Some('-') && !matches!(ahead.next(), Some(']') | None) {
            it.next();
            hi = match it.next().ok_or(OPEN)? {
                '\\' => {
                    let e = it.next().ok_or(TRAILING)?;
                    match e {
                        'a' => '\x07',
                        'f' => '\x0C',
                        't' => '\t',
                        'n' => '\n',
                        'r' => '\r',
                        'v' => '\x0B',
                        _ => escape(e, it)?,
                    }
                }
                h => h,
            };
            if hi < lo {
                return Err(("a class range backwards (`z-a`)", "write the low end first"));
            }
        }
        if fold {
            check_fold(lo)?;
            check_fold(hi)?;
            for (a, b) in [('k', "\\x{212A}"), ('s', "\\x{17F}")] {
                let up = a.to_ascii_uppercase();
                if (lo..=hi).contains(&a) || (lo..=hi).contains(&up) {
                    extra = if extra.is_empty() || extra == b {
                        b
                    } else {
                        "\\x{212A}\\x{17F}"
                    };
                }
            }
        }
        push_escaped(out, lo);
        if hi != lo {
            out.push('-');
            push_escaped(out, hi);
        }
    }
    out.push_str(extra);
    out.push(']');
    Ok(())
}

const BAD_POSIX: Refusal = (
    "an unknown [:name:] class",
    "use one of alnum alpha ascii blank cntrl digit graph lower print punct space upper word xdigit",
);
