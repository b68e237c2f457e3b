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

const TRAILING: Refusal = ("a trailing `\\`", "escape it as `\\\\`");
const BAD_HEX: Refusal = ("a bad \\x escape", "write \\xHH or \\x{H..} up to 10FFFF");
const OPEN: Refusal = ("an unclosed `[`", "close the class, or escape it as `\\[`");
const BAD_GROUP: Refusal = (
    "a `(?` group RE2 does not have (look-around, atomic, comment, backreference or flag other than i m s U)",
    "use (?:..) or the flags i, m, s, U",
);
const BAD_POSIX: Refusal = (
    "an unknown [:name:] class",
    "use alnum alpha ascii blank cntrl digit graph lower print punct space upper word xdigit",
);
/// `\W` in a case-insensitive regex: RE2 also folds the Kelvin sign to k and
/// the long s to s (so `\w` has them, `\W` not); regex-lite folds ASCII only.
const NOT_WORD_FOLDED: &str =
    "\\x00-\\x2F\\x3A-\\x40\\x5B-\\x5E\\x60\\x7B-\\x{17E}\\x{180}-\\x{2129}\\x{212B}-\\x{10FFFF}";

struct Scan {
    chars: Vec<char>,
    at: usize,
    out: String,
}

impl Scan {
    #[inline(never)]
    fn next(&mut self) -> Option<char> {
        let c = self.chars.get(self.at).copied();
        self.at += 1;
        c
    }

    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.at + ahead).copied()
    }

    fn eat(&mut self, c: char) -> bool {
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

    /// `c` as a literal, escaped where regex-lite gives it a meaning.
    #[inline(never)]
    fn literal(&mut self, c: char) {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            self.put('\\');
        }
        self.put(c);
    }

    /// A number of up to 4 digits; more than 4 reads as over 1000.
    fn number(&mut self) -> Option<u32> {
        let mut n = None;
        while let Some(d) = self.peek(0).and_then(|c| c.to_digit(10)) {
            self.at += 1;
            n = Some(n.unwrap_or(0u32).saturating_mul(10).saturating_add(d));
        }
        n
    }

    /// `{n}`, `{n,}` or `{n,m}` after a `{`: the largest count (`m`, or `n`
    /// when unbounded), with the scan after it. RE2 takes anything else as
    /// a literal `{`: then `None`, and the scan where it was.
    fn count(&mut self) -> Option<u32> {
        let start = self.at;
        let n = self.number();
        let m = if self.eat(',') {
            if self.peek(0) == Some('}') {
                n
            } else {
                self.number()
            }
        } else {
            n
        };
        match (n, m) {
            (Some(n), Some(m)) if self.eat('}') => Some(if m < n { u32::MAX } else { m }),
            _ => {
                self.at = start;
                None
            }
        }
    }

    /// The char an escape stands for (after `\`), where it stands for one.
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
                let braced = self.eat('{');
                let mut digits = 0;
                loop {
                    if braced && self.eat('}') && digits > 0 {
                        break;
                    }
                    let d = self.next().and_then(|c| c.to_digit(16)).ok_or(BAD_HEX)?;
                    v = v.saturating_mul(16).saturating_add(d);
                    digits += 1;
                    if !braced && digits == 2 {
                        break;
                    }
                }
                return char::from_u32(v).ok_or(BAD_HEX);
            }
            '0'..='7' => return Err(("an octal escape", "write it as \\x{..}")),
            'p' | 'P' => return Err(("a Unicode class \\p", "list the characters in a class [..]")),
            'Q' => {
                return Err(("a quoted literal \\Q..\\E", "escape each special character with `\\`"))
            }
            'C' => return Err(("\\C (any byte)", "use `.`")),
            // RE2: any ASCII char but a letter or digit stands for itself.
            _ if e.is_ascii() && !e.is_ascii_alphanumeric() => e,
            _ => {
                return Err((
                    "an escape RE2 does not know (it has \\a \\f \\t \\n \\r \\v \\x \\d \\D \\s \\S \\w \\W \\b \\B \\A \\z)",
                    "remove the `\\`, or escape only punctuation",
                ))
            }
        })
    }

    /// A Perl class (`\d \s \w` and negations) as regex-lite class items
    /// (regex-lite has no class in a class: negations are ranges).
    fn perl(&mut self, e: char, fold: bool, in_class: bool) -> bool {
        let items = match e {
            'd' => "0-9",
            's' => "\\t\\n\\f\\r ",
            'w' if fold => "0-9A-Za-z_\\x{212A}\\x{17F}",
            'w' => "0-9A-Za-z_",
            'D' => "\\x00-\\x2F\\x3A-\\x{10FFFF}",
            'S' => "\\x00-\\x08\\x0B\\x0E-\\x1F\\x21-\\x{10FFFF}",
            'W' if fold => NOT_WORD_FOLDED,
            'W' => "\\x00-\\x2F\\x3A-\\x40\\x5B-\\x5E\\x60\\x7B-\\x{10FFFF}",
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

    /// A class after `[`, as RE2 reads it: `]` first is literal, `[` is
    /// literal unless it starts `[:name:]`, `a-z` is a range, another `-`
    /// literal.
    fn class(&mut self, fold: bool) -> Result<(), Refusal> {
        self.put('[');
        if self.eat('^') {
            self.put('^');
        }
        let mut first = true;
        let (mut kelvin, mut long_s) = (false, false);
        loop {
            let c = self.next().ok_or(OPEN)?;
            if c == ']' && !first {
                break;
            }
            first = false;
            let lo = match c {
                '[' if self.peek(0) == Some(':') => {
                    self.posix(fold)?;
                    continue;
                }
                '\\' => {
                    let e = self.next().ok_or(TRAILING)?;
                    if self.perl(e, fold, true) {
                        continue;
                    }
                    self.escape(e)?
                }
                c => c,
            };
            let mut hi = lo;
            if self.peek(0) == Some('-') && !matches!(self.peek(1), Some(']') | None) {
                self.at += 1;
                hi = match self.next().ok_or(OPEN)? {
                    '\\' => {
                        let e = self.next().ok_or(TRAILING)?;
                        self.escape(e)?
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
                let has =
                    |c: char| (lo..=hi).contains(&c) || (lo..=hi).contains(&c.to_ascii_uppercase());
                kelvin |= has('k');
                long_s |= has('s');
            }
            self.literal(lo);
            if hi != lo {
                self.put('-');
                self.literal(hi);
            }
        }
        if kelvin {
            self.out.push_str("\\x{212A}");
        }
        if long_s {
            self.out.push_str("\\x{17F}");
        }
        self.put(']');
        Ok(())
    }

    /// `[:name:]` or `[:^name:]` in a class, after its `[`.
    fn posix(&mut self, fold: bool) -> Result<(), Refusal> {
        let start = self.at + 1;
        let end = (start..self.chars.len().min(start + 9))
            .find(|&i| self.chars.get(i) == Some(&':') && self.chars.get(i + 1) == Some(&']'))
            .ok_or(BAD_POSIX)?;
        let name: String = self
            .chars
            .get(start..end)
            .unwrap_or_default()
            .iter()
            .collect();
        let bare = name.strip_prefix('^').unwrap_or(&name);
        let known = [
            "blank", "cntrl", "digit", "punct", "space", "alnum", "alpha", "ascii", "graph",
            "lower", "print", "upper", "word", "xdigit",
        ];
        let kind = known.iter().position(|k| *k == bare).ok_or(BAD_POSIX)?;
        if fold && kind > 4 {
            return Err((
                "a [:name:] class with letters in a case-insensitive regex",
                "list the letters: [a-z]",
            ));
        }
        self.out.push_str("[:");
        self.out.push_str(&name);
        self.out.push_str(":]");
        self.at = end + 2;
        Ok(())
    }

    /// After `(?`: flags for the rest of the group (`(?i)`, `false`) or a
    /// group (`(?i:`, `(?P<name>`, `true`), written out; `fold` updated.
    fn flags(&mut self, fold: &mut bool) -> Result<bool, Refusal> {
        if self.eat('P') && self.peek(0) != Some('<') {
            return Err(BAD_GROUP);
        }
        if self.eat('<') {
            let mut name = 0;
            loop {
                match self.next() {
                    Some('>') if name > 0 => break,
                    Some(c) if c.is_ascii_alphanumeric() || c == '_' => name += 1,
                    _ => {
                        return Err((
                            "a group name that is empty, not closed by `>` or not ASCII letters, digits and `_`",
                            "name it with [A-Za-z0-9_] or use (?:..)",
                        ))
                    }
                }
            }
            self.out.push_str("(?:");
            return Ok(true);
        }
        // Each flag on (1) or off (2), in the order i m s U.
        let mut set = [0u8; 4];
        let mut neg = false;
        let mut any_off = false;
        loop {
            match self.next() {
                Some('-') if !neg => neg = true,
                Some(end @ (')' | ':')) if any_off || !neg => {
                    self.out.push_str("(?");
                    for off in [false, true] {
                        if off && set.contains(&2) {
                            self.put('-');
                        }
                        for (f, state) in "imsU".chars().zip(set) {
                            if state == 1 + u8::from(off) {
                                self.put(f);
                            }
                        }
                    }
                    if set == [0; 4] && end == ')' {
                        // `(?)` does nothing.
                        self.put(':');
                        self.put(')');
                        return Ok(false);
                    }
                    self.put(end);
                    return Ok(end == ':');
                }
                Some(c) => {
                    let i = "imsU".find(c).ok_or(BAD_GROUP)?;
                    if let Some(s) = set.get_mut(i) {
                        *s = 1 + u8::from(neg);
                    }
                    any_off |= neg;
                    if c == 'i' {
                        *fold = !neg;
                    }
                }
                None => return Err(BAD_GROUP),
            }
        }
    }
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

struct Group {
    /// Case-insensitive outside this group.
    fold: bool,
    /// Largest product of counts nested in this group.
    weight: u32,
}

/// Translates `p` (RE2 syntax); `fold` is case-insensitive matching around it.
pub fn translate(p: &str, fold: bool) -> Result<Translated, Refusal> {
    let mut s = Scan {
        chars: p.chars().collect(),
        at: 0,
        out: String::with_capacity(p.len() + 8),
    };
    let mut looks_around = false;
    let mut fold = fold;
    let mut groups: Vec<Group> = Vec::new();
    // Weight of the last atom, or None where a repetition has no argument.
    let mut last: Option<u32> = None;
    let mut repeated = false;
    // Flag groups not yet written out, and whether one came since the last atom.
    let mut pending = String::new();
    let mut flagged = false;
    while let Some(c) = s.next() {
        if !matches!(c, '*' | '+' | '?' | '{') {
            s.out.push_str(&std::mem::take(&mut pending));
        }
        let mut atom = Some(1);
        let mut was_repeat = false;
        match c {
            '\\' => {
                let e = s.next().ok_or(TRAILING)?;
                match e {
                    'b' | 'B' | 'A' | 'z' => {
                        looks_around |= e != 'z';
                        s.put('\\');
                        s.put(e);
                    }
                    _ if s.perl(e, fold, false) => {}
                    _ => {
                        let c = s.escape(e)?;
                        literal(&mut s, c, fold)?;
                    }
                }
            }
            '[' => s.class(fold)?,
            '(' => {
                let mut inner = fold;
                if s.eat('?') {
                    let mark = s.out.len();
                    if !s.flags(&mut inner)? {
                        // `(?i)`: flags for the rest of the group. RE2 lets
                        // `a(?i)*` repeat the `a`: written after what follows.
                        pending.push_str(&s.out.split_off(mark));
                        fold = inner;
                        flagged = true;
                        continue;
                    }
                } else {
                    s.put('(');
                }
                groups.push(Group { fold, weight: 1 });
                fold = inner;
                last = None;
                repeated = false;
                continue;
            }
            ')' => {
                let g = groups
                    .pop()
                    .ok_or(("unbalanced `)`", "escape it as `\\)`"))?;
                fold = g.fold;
                s.put(')');
                atom = Some(g.weight);
            }
            '|' => {
                s.put('|');
                atom = None;
            }
            '*' | '+' | '?' | '{' => {
                let start = s.at - 1;
                let n = if c == '{' {
                    match s.count() {
                        Some(n) => Some(n),
                        None => {
                            s.out.push_str(&std::mem::take(&mut pending));
                            s.out.push_str("\\{");
                            None
                        }
                    }
                } else {
                    Some(0)
                };
                if let Some(n) = n {
                    let Some(w) = last else {
                        return Err((
                            "a repetition with nothing to repeat",
                            "escape the operator with `\\`",
                        ));
                    };
                    if repeated && flagged {
                        return Err((
                            "a repetition of a repetition across a flag group (`a*(?i)*`)",
                            "drop one of the two",
                        ));
                    }
                    if repeated {
                        return Err((
                            "a repetition of a repetition (`**`, `+*`, `*{2}`)",
                            "group it: `(?:a*)*`",
                        ));
                    }
                    if n > MAX_REPEAT {
                        return Err((
                            "a repetition count over 1000, or backwards",
                            "RE2 allows {n,m} with n <= m <= 1000",
                        ));
                    }
                    let w = w.saturating_mul(n.max(1));
                    if w > MAX_REPEAT {
                        return Err((
                            "nested repetition counts over 1000 in all",
                            "RE2 allows a product of at most 1000",
                        ));
                    }
                    if c == '{' {
                        for i in start..s.at {
                            let d = s.chars.get(i).copied().unwrap_or('}');
                            s.put(d);
                        }
                    } else {
                        s.put(c);
                    }
                    if s.eat('?') {
                        s.put('?');
                    }
                    was_repeat = true;
                    atom = Some(w);
                }
            }
            '^' => {
                looks_around = true;
                s.put('^');
            }
            '$' | '.' => s.put(c),
            _ => literal(&mut s, c, fold)?,
        }
        if let (Some(w), Some(g)) = (atom, groups.last_mut()) {
            g.weight = g.weight.max(w);
        }
        last = atom;
        repeated = was_repeat;
        flagged = false;
    }
    s.out.push_str(&pending);
    if !groups.is_empty() {
        return Err(("unbalanced `(`", "close it, or escape it as `\\(`"));
    }
    Ok(Translated {
        regex: s.out,
        looks_around,
    })
}

/// Appends `c` as a literal outside a class.
fn literal(s: &mut Scan, c: char, fold: bool) -> Result<(), Refusal> {
    if fold {
        check_fold(c)?;
        let extra = match c {
            'k' | 'K' => "\\x{212A}",
            's' | 'S' => "\\x{17F}",
            _ => "",
        };
        if !extra.is_empty() {
            s.put('[');
            s.put(c);
            s.out.push_str(extra);
            s.put(']');
            return Ok(());
        }
    }
    s.literal(c);
    Ok(())
}
