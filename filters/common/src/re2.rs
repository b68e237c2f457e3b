//! RE2 syntax, as Envoy's `safe_regex` parses it, checked and translated to
//! the regex-lite syntax that means the same. A pattern RE2 refuses is
//! refused; a construct whose meaning differs is rewritten (`\<` is a literal
//! `<` in RE2, `\s` has no vertical tab, `[a[b]` is one class, `a{` is
//! literal, `(?i)k` also matches the Kelvin sign) or, where that would cost
//! more module size than it is worth, refused with the fix. The output has
//! balanced parentheses, so wrapping it (`^(?:..)$`) cannot be escaped.
//! Kept small on purpose: every filter module carries it.

/// What is wrong and, in most cases, how to fix it.
pub type Refusal = &'static str;

/// The regex-lite pattern, and whether it looks at the text around a
/// position (`^`, `\A`, `\b`, `\B` outside a class): such a pattern cannot be
/// matched on a piece of the value cut out of its context.
pub struct Translated {
    pub regex: String,
    pub looks_around: bool,
}

const MAX_REPEAT: u32 = 1000;
/// Where [`Scan::literal`] writes a char.
const OUTSIDE: u8 = 0;
const IN_CLASS: u8 = 1;
const ENDPOINT: u8 = 2;
const TRAILING: Refusal = "a trailing `\\`";
const BAD_HEX: Refusal = "a bad \\x escape";
const OPEN: Refusal = "an unclosed `[`";
const BAD_GROUP: Refusal = "a `(?` RE2 does not have: use (?:..) or the flags i m s U";
/// `\W` in a case-insensitive regex: RE2 also folds the Kelvin sign to k and
/// the long s to s (so `\w` has them, `\W` not); regex-lite folds ASCII only.
const NOT_WORD_FOLDED: &str =
    "\\x00-\\x2F\\x3A-\\x40\\x5B-\\x5E\\x60\\x7B-\\x{17E}\\x{180}-\\x{2129}\\x{212B}-\\x{10FFFF}";

struct Scan<'a> {
    p: &'a str,
    /// A byte offset in `p`.
    at: usize,
    out: String,
    fold: bool,
}

impl Scan<'_> {
    #[inline(never)]
    fn next(&mut self) -> Option<char> {
        let c = self.p.get(self.at..).and_then(|rest| rest.chars().next());
        self.at += c.map_or(1, char::len_utf8);
        c
    }

    fn peek(&self, ahead: usize) -> Option<u8> {
        self.p.as_bytes().get(self.at + ahead).copied()
    }

    #[inline(never)]
    fn eat(&mut self, c: u8) -> bool {
        let is = self.peek(0) == Some(c);
        if is {
            self.at += 1;
        }
        is
    }

    #[inline(never)]
    fn put(&mut self, c: char) {
        self.out.push(c);
    }

    /// `c` as a literal, escaped where regex-lite gives it a meaning; in a
    /// case-insensitive regex, `k` and `s` with what RE2 also folds to them
    /// (not at a range's ends: the range adds them).
    #[inline(never)]
    fn literal(&mut self, c: char, at: u8) -> Result<(), Refusal> {
        if self.fold && !c.is_ascii() {
            return Err("a non-ASCII character in a case-insensitive regex");
        }
        let extra = match c.to_ascii_lowercase() {
            'k' if self.fold && at != ENDPOINT => "\\x{212A}",
            's' if self.fold && at != ENDPOINT => "\\x{17F}",
            _ => "",
        };
        let group = !extra.is_empty() && at == OUTSIDE;
        if group {
            self.put('[');
        }
        if matches!(
            c,
            '\\' | '.'
                | '+'
                | '*'
                | '?'
                | '('
                | ')'
                | '|'
                | '['
                | ']'
                | '{'
                | '}'
                | '^'
                | '$'
                | '#'
                | '&'
                | '-'
                | '~'
        ) {
            self.put('\\');
        }
        self.put(c);
        self.out.push_str(extra);
        if group {
            self.put(']');
        }
        Ok(())
    }

    /// A number; past 4 digits it reads as over 1000.
    fn number(&mut self) -> Option<u32> {
        let mut n = None;
        while let Some(d) = self.peek(0).filter(u8::is_ascii_digit) {
            self.at += 1;
            n = Some(
                n.unwrap_or(0u32)
                    .saturating_mul(10)
                    .saturating_add(u32::from(d - b'0')),
            );
        }
        n
    }

    /// `{n}`, `{n,}` or `{n,m}` after a `{`: the largest count (`m`, or `n`
    /// when unbounded; over 1000 when `m < n`). RE2 takes anything else as a
    /// literal `{`: then `None`, and the scan where it was.
    fn count(&mut self) -> Option<u32> {
        let start = self.at;
        let n = self.number();
        let m = if self.eat(b',') && self.peek(0) != Some(b'}') {
            self.number()
        } else {
            n
        };
        match (n, m) {
            (Some(n), Some(m)) if self.eat(b'}') => Some(if m < n { u32::MAX } else { m }),
            _ => {
                self.at = start;
                None
            }
        }
    }

    /// The char an escape stands for (after `\`), where it stands for one.
    #[inline(never)]
    fn escape(&mut self, e: char) -> Result<char, Refusal> {
        Ok(match e {
            'a' => '\x07',
            'f' => '\x0C',
            't' => '\t',
            'n' => '\n',
            'r' => '\r',
            'v' => '\x0B',
            'x' => {
                let mut v = 0u32;
                let braced = self.eat(b'{');
                let mut digits = 0;
                while !(braced && digits > 0 && self.eat(b'}')) {
                    let d = self.next().and_then(|c| c.to_digit(16)).ok_or(BAD_HEX)?;
                    v = v.saturating_mul(16).saturating_add(d);
                    digits += 1;
                    if !braced && digits == 2 {
                        break;
                    }
                }
                return char::from_u32(v).ok_or(BAD_HEX);
            }
            '0'..='7' => return Err("an octal escape: write \\x{..}"),
            'p' | 'P' => return Err("a Unicode class \\p: list the characters in [..]"),
            'Q' => return Err("a quoted literal \\Q..\\E: escape each special character"),
            'C' => return Err("\\C (any byte): use `.`"),
            // RE2: any ASCII char but a letter or digit stands for itself.
            _ if e.is_ascii() && !e.is_ascii_alphanumeric() => e,
            _ => return Err("an escape RE2 does not know: escape only punctuation"),
        })
    }

    /// A Perl class (`\d \s \w` and negations) as regex-lite class items
    /// (regex-lite has no class in a class: negations are ranges).
    #[inline(never)]
    fn perl(&mut self, e: char, in_class: bool) -> bool {
        let items = match e {
            's' => "\\t\\n\\f\\r ",
            'S' => "\\x00-\\x08\\x0B\\x0E-\\x1F\\x21-\\x{10FFFF}",
            'w' if self.fold => "\\w\\x{212A}\\x{17F}",
            'W' if self.fold => NOT_WORD_FOLDED,
            // The same ASCII sets in both.
            'd' => "\\d",
            'D' => "\\D",
            'w' => "\\w",
            'W' => "\\W",
            _ => return false,
        };
        if !in_class {
            self.put('[');
        }
        self.out.push_str(items);
        if !in_class {
            self.put(']');
        }
        true
    }

    /// A class char: literal or escaped.
    fn class_char(&mut self, c: char) -> Result<char, Refusal> {
        if c != '\\' {
            return Ok(c);
        }
        let e = self.next().ok_or(TRAILING)?;
        self.escape(e)
    }

    /// A class after `[`, as RE2 reads it: `]` first is literal, `[` is
    /// literal unless it starts `[:name:]`, `a-z` is a range, another `-`
    /// literal.
    fn class(&mut self) -> Result<(), Refusal> {
        self.put('[');
        if self.eat(b'^') {
            self.put('^');
        }
        let mut first = true;
        loop {
            let c = self.next().ok_or(OPEN)?;
            if c == ']' && !first {
                break;
            }
            first = false;
            if c == '[' && self.peek(0) == Some(b':') {
                // RE2 and regex-lite know the same 14 names.
                if self.fold {
                    return Err("a [:name:] class in a case-insensitive regex: list the chars");
                }
                let p = self.p;
                let rest = p.get(self.at..).unwrap_or_default();
                let end = rest
                    .as_bytes()
                    .windows(2)
                    .position(|w| w == b":]")
                    .ok_or("an unclosed [:name:]")?
                    + 2;
                self.put('[');
                self.out.push_str(rest.get(..end).unwrap_or_default());
                self.at += end;
                continue;
            }
            if c == '\\' && self.peek(0).is_some_and(|e| self.perl(char::from(e), true)) {
                self.at += 1;
                continue;
            }
            let lo = self.class_char(c)?;
            let mut hi = lo;
            if self.peek(0) == Some(b'-') && !matches!(self.peek(1), Some(b']') | None) {
                self.at += 1;
                let c = self.next().ok_or(OPEN)?;
                hi = self.class_char(c)?;
            }
            if hi == lo {
                self.literal(lo, IN_CLASS)?;
                continue;
            }
            self.literal(lo, ENDPOINT)?;
            self.put('-');
            self.literal(hi, ENDPOINT)?;
            // regex-lite folds a range's ASCII letters; RE2 also the
            // Kelvin sign and the long s into k and s.
            let has =
                |a: char| (lo..=hi).contains(&a) || (lo..=hi).contains(&a.to_ascii_uppercase());
            if self.fold && has('k') {
                self.out.push_str("\\x{212A}");
            }
            if self.fold && has('s') {
                self.out.push_str("\\x{17F}");
            }
        }
        self.put(']');
        Ok(())
    }

    /// After `(?`: flags for the rest of the group (`(?i)`, `false`) or a
    /// group (`(?i:`, `(?P<name>`, `true`), written out.
    fn flags(&mut self) -> Result<bool, Refusal> {
        if self.eat(b'P') && self.peek(0) != Some(b'<') {
            return Err(BAD_GROUP);
        }
        if self.eat(b'<') {
            let mut name = 0;
            loop {
                match self.next() {
                    Some('>') if name > 0 => break,
                    Some(c) if c.is_ascii_alphanumeric() || c == '_' => name += 1,
                    _ => return Err("a group name that is empty, unclosed or not [A-Za-z0-9_]"),
                }
            }
            self.out.push_str("(?:");
            return Ok(true);
        }
        self.out.push_str("(?");
        let mut seen = 0u8;
        let mut neg = false;
        loop {
            let c = self.next().ok_or(BAD_GROUP)?;
            match c {
                '-' if !neg => neg = true,
                ')' if seen == 0 => return Err("an empty flag group `(?)`"),
                ')' | ':' => {
                    self.put(c);
                    return Ok(c == ':');
                }
                _ => {
                    let bit = match c {
                        'i' => 1u8,
                        'm' => 2,
                        's' => 4,
                        'U' => 8,
                        _ => return Err(BAD_GROUP),
                    };
                    if seen & bit != 0 {
                        return Err("a flag given twice");
                    }
                    seen |= bit;
                    if c == 'i' {
                        self.fold = !neg;
                    }
                }
            }
            self.put(c);
        }
    }
}

/// Translates `p` (RE2 syntax); `fold` is case-insensitive matching around it.
pub fn translate(p: &str, fold: bool) -> Result<Translated, Refusal> {
    let mut s = Scan {
        p,
        at: 0,
        out: String::with_capacity(p.len() + 8),
        fold,
    };
    let mut looks_around = false;
    // Per open group: case-insensitive outside it, and the largest product
    // of counts nested in it.
    let mut groups: Vec<(bool, u32)> = Vec::new();
    // Weight of the last atom (0: nothing to repeat), whether it is a
    // repetition, and whether a flag group came since.
    let (mut last, mut repeated, mut flagged) = (0u32, false, false);
    while let Some(c) = s.next() {
        let mut atom = 1;
        let mut was_repeat = false;
        match c {
            '\\' => {
                let e = s.next().ok_or(TRAILING)?;
                if matches!(e, 'b' | 'B' | 'A' | 'z') {
                    looks_around |= e != 'z';
                    s.put('\\');
                    s.put(e);
                } else if !s.perl(e, false) {
                    let c = s.escape(e)?;
                    s.literal(c, OUTSIDE)?;
                }
            }
            '[' => s.class()?,
            '(' => {
                let outer = s.fold;
                if !s.eat(b'?') {
                    s.put('(');
                } else if !s.flags()? {
                    // `(?i)`: flags for the rest of the group.
                    flagged = true;
                    continue;
                }
                groups.push((outer, 1));
                (last, repeated) = (0, false);
                continue;
            }
            ')' => {
                let (outer, weight) = groups
                    .pop()
                    .ok_or("an unbalanced `)`: escape it as `\\)`")?;
                s.fold = outer;
                s.put(')');
                atom = weight;
            }
            '|' => {
                s.put('|');
                atom = 0;
            }
            '*' | '+' | '?' | '{' => {
                let start = s.at - 1;
                let n = match c {
                    '{' => s.count(),
                    _ => Some(0),
                };
                match n {
                    None => s.out.push_str("\\{"),
                    Some(_) if last == 0 => {
                        return Err("a repetition of nothing: escape it with `\\`")
                    }
                    // RE2 accepts `a(?i)*` (a repetition of the `a`).
                    Some(_) if flagged => return Err("a repetition right after a flag group"),
                    Some(_) if repeated => {
                        return Err("a repetition of a repetition (`a**`): group it")
                    }
                    Some(n) if n > MAX_REPEAT || last.saturating_mul(n.max(1)) > MAX_REPEAT => {
                        return Err("a repetition count over 1000 (nested counts multiply)")
                    }
                    Some(n) => {
                        s.out.push_str(p.get(start..s.at).unwrap_or_default());
                        if s.eat(b'?') {
                            s.put('?');
                        }
                        was_repeat = true;
                        atom = last.saturating_mul(n.max(1));
                    }
                }
            }
            '^' => {
                looks_around = true;
                s.put('^');
            }
            '$' | '.' => s.put(c),
            _ => s.literal(c, OUTSIDE)?,
        }
        if let Some(g) = groups.last_mut() {
            g.1 = g.1.max(atom);
        }
        (last, repeated, flagged) = (atom, was_repeat, false);
    }
    if !groups.is_empty() {
        return Err("an unbalanced `(`: close it or escape it as `\\(`");
    }
    Ok(Translated {
        regex: s.out,
        looks_around,
    })
}
