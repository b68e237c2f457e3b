//! The RE2 gate: a regex in a rule is RE2 syntax, as Envoy's `safe_regex`
//! reads it, but this workspace matches with regex-lite. This scanner lets
//! through only what both read alike and refuses the rest with what to
//! write instead: what RE2 refuses, and what RE2 reads otherwise than
//! regex-lite (`\<` `\>` `\s` `[a[b]]` `[a&&b]` `a{`, `\b{start}`, ...), or
//! accepts but regex-lite lacks (`\pL`, `\Q..\E`, octal). It also checks
//! that parentheses balance on their own, so the anchors that wrap the
//! pattern (`^(?:..)$`) cannot be escaped. A hand-written scanner, not a
//! parser, to keep every filter module small.
//!
//! It also estimates the size of the program RE2 compiles the pattern to
//! (`RE2::ProgramSize`, what Envoy's `re2.max_program_size` limits), from
//! the pattern: a weight per char, escape and class, counted repetitions
//! expanded as RE2 and regex-lite expand them (`x{2,5}` is `xx(x(x(x)?)?)?`:
//! five copies and three splits); regex-lite's NFA is about as large. And
//! it estimates what a match costs: at most how many NFA states
//! regex-lite's PikeVM steps through per char of the value (`Scan::cost`),
//! from which repetitions may be active at once. Limits on both bound the
//! cost of a rule when it loads (`predicate::RegexLimits`).
//! `tests/re2_oracle.rs` checks the estimate against RE2's own sizes.

/// What is wrong, and mostly how to fix it.
pub type Refusal = &'static str;

const MAX_REPEAT: u32 = 1000;
const TRAILING: Refusal = "a trailing `\\`";
const OPEN: Refusal = "an unclosed `[`";
const BAD_GROUP: Refusal = "a `(?` other than (?:..) and flags m s U (no names)";
const FOLD: Refusal = "\\b, \\x, [:name:] or non-ASCII in a case-insensitive regex";
const NESTED: Refusal = "`[` in a class (RE2: literal): write \\[";
const SPACE: Refusal = "\\s or \\S (RE2's lacks \\v): write [\\t\\n\\f\\r ]";

/// What the gate found in an accepted pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scan {
    /// It looks at the text around a position (`^`, `\A`, `\b`, `\B`):
    /// such a pattern cannot be matched on a piece of the value cut out of
    /// its context.
    pub looks_around: bool,
    /// The estimated size of its RE2 program, never below RE2's own by
    /// more than a few instructions (saturates at `u32::MAX`).
    pub size: u32,
    /// The estimated cost of matching it per char of the value: at most
    /// how many NFA states regex-lite's PikeVM steps through per char,
    /// whatever the value (saturates at `u32::MAX`).
    pub cost: u32,
}

/// RE2's program for the empty pattern (match and the unanchored prefix).
const BASE: u64 = 4;
/// What `.`, or a negated or non-ASCII part of a class, adds: the UTF-8
/// byte sequences of the rest of Unicode.
const UNICODE: u64 = 16;

/// Chars an element can consume, a bit per ASCII char; any other char
/// counts as NUL (which no path or header value holds): a set with NUL is
/// one that may also have chars outside ASCII.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Chars(u128);

const NONE: Chars = Chars(0);
/// A length that is not always the same.
const VARIES: u64 = u64::MAX;
const ALL: Chars = Chars(u128::MAX);

impl Chars {
    /// With `c` (folded: both cases, and the Kelvin sign and the long s
    /// for k and s).
    fn with(self, c: u8, fold: bool) -> Chars {
        let bit = |c: u8| 1u128 << ((c & 0x7F) * u8::from(c.is_ascii()));
        let mut out = self.0 | bit(c);
        if fold {
            out |= bit(c.to_ascii_lowercase()) | bit(c.to_ascii_uppercase());
            out |= u128::from(matches!(c | 0x20, b'k' | b's'));
        }
        Chars(out)
    }

    fn range(mut self, low: u8, high: u8, fold: bool) -> Chars {
        for c in low..=high.min(127) {
            self = self.with(c, fold);
        }
        Chars(self.0 | u128::from(high > 127))
    }

    fn or(self, o: Chars) -> Chars {
        Chars(self.0 | o.0)
    }

    fn meets(self, o: Chars) -> bool {
        self.0 & o.0 != 0
    }

    fn not(self) -> Chars {
        Chars(!self.0 | 1)
    }
}

/// What an element (a char, class, group or repetition) costs, and what
/// it reads.
#[derive(Debug, Clone, Copy, Default)]
struct Cost {
    /// RE2 program size (regex-lite's NFA is about as large).
    size: u64,
    /// States active at once when the element is entered at one position,
    /// and as it is entered, before it reads a char.
    width: u64,
    entry: u64,
    /// What it consumes; what its first char can be; what the chars after
    /// the first can be.
    chars: Chars,
    head: Chars,
    rest: Chars,
    /// It may match the empty string.
    empty: bool,
    /// It is one char from a set (a literal, escape, class or `.`).
    single: bool,
    /// It always matches this many chars (`VARIES`: not always as many).
    len: u64,
}

impl Cost {
    fn char(size: u64, chars: Chars) -> Cost {
        Cost {
            size,
            width: 1,
            entry: 1,
            chars,
            head: chars,
            rest: NONE,
            empty: false,
            single: true,
            len: 1,
        }
    }
}

/// One alternative of a group, as the PikeVM runs it. Entered at one
/// position, its elements are tried in turn; an element entered while
/// earlier ones are still running (after a variable-length one) is entered
/// at many positions and may have all its states active (its size). A
/// char none of the running elements can consume ends them all when it is
/// read: after it the next element is entered at one position again.
#[derive(Debug, Clone, Copy)]
struct Branch {
    /// Widest finished stretch; states of the running one; what its
    /// elements consume; the next element is entered at one position.
    done: u64,
    open: u64,
    open_chars: Chars,
    fresh: bool,
    chars: Chars,
    head: Chars,
    rest: Chars,
    elements: u32,
    nonempty: bool,
    len: u64,
    entry: u64,
}

const BRANCH: Branch = Branch {
    done: 0,
    open: 0,
    open_chars: NONE,
    fresh: true,
    chars: NONE,
    head: NONE,
    rest: NONE,
    elements: 0,
    nonempty: false,
    len: 0,
    entry: 0,
};

impl Branch {
    fn push(&mut self, e: Cost) {
        if !self.nonempty {
            self.head = self.head.or(e.head);
            self.rest = self.rest.or(e.rest);
            self.entry = self.entry.saturating_add(e.entry);
        }
        if self.elements > 0 {
            self.rest = self.rest.or(e.chars);
        }
        self.elements += 1;
        self.nonempty |= !e.empty;
        self.chars = self.chars.or(e.chars);
        self.len = self.len.saturating_add(e.len);
        if self.fresh && e.len != VARIES {
            // Entered once, it ends at one position: so does the next.
            self.done = self.done.max(e.width);
            return;
        }
        if e.single && !e.chars.meets(self.open_chars) {
            // Read, it ends every running element: one thread goes on.
            self.done = self.done.max(self.open + 1);
            (self.open, self.open_chars, self.fresh) = (0, NONE, true);
            return;
        }
        self.open = if self.fresh {
            e.width
        } else if e.head != NONE && !e.head.meets(self.open_chars) {
            // Its first char ends the running elements: it runs entered
            // once, after them (or they run on past it, if it is skipped).
            self.open.saturating_add(e.entry).max(e.width)
        } else {
            self.open.saturating_add(e.size)
        };
        self.open_chars = self.open_chars.or(e.chars);
        self.fresh = false;
    }
}

/// An open group (0: the whole pattern).
#[derive(Debug, Clone, Copy)]
struct Group {
    /// The largest product of counts nested in it.
    counts: u32,
    /// Program size so far, widths of its finished alternatives and their
    /// number.
    size: u64,
    widths: u64,
    entries: u64,
    alternatives: u64,
    capturing: bool,
    chars: Chars,
    head: Chars,
    rest: Chars,
    empty: bool,
    len: u64,
    branch: Branch,
}

const GROUP: Group = Group {
    counts: 1,
    size: 0,
    widths: 0,
    entries: 0,
    alternatives: 0,
    capturing: false,
    chars: NONE,
    head: NONE,
    rest: NONE,
    empty: false,
    len: VARIES,
    branch: BRANCH,
};

impl Group {
    fn push(&mut self, e: Cost) {
        self.size = self.size.saturating_add(e.size);
        self.branch.push(e);
    }

    fn end_branch(&mut self) {
        let b = self.branch;
        self.widths = self.widths.saturating_add(b.done.max(b.open));
        self.entries = self.entries.saturating_add(b.entry);
        self.alternatives += 1;
        self.chars = self.chars.or(b.chars);
        self.head = self.head.or(b.head);
        self.rest = self.rest.or(b.rest);
        self.empty |= !b.nonempty;
        if self.alternatives == 1 {
            self.len = b.len;
        } else if self.len != b.len {
            self.len = VARIES;
        }
        self.branch = BRANCH;
    }

    fn end(mut self) -> Cost {
        self.end_branch();
        Cost {
            size: self.size + 2 * u64::from(self.capturing),
            // One split state enters every alternative.
            width: self.widths + u64::from(self.alternatives > 1),
            entry: self.entries + u64::from(self.alternatives > 1),
            chars: self.chars,
            head: self.head,
            rest: self.rest,
            empty: self.empty,
            single: false,
            len: self.len,
        }
    }
}

/// `x` repeated `low` to `high` times (`unbounded`: or more): RE2 and
/// regex-lite copy the operand, `x{n,m}` as n copies and m - n optional
/// ones (a split each), `x{n,}` as n copies then a loop, `x*` `x+` `x?` as
/// the operand and a split. Copies that cannot overlap (each starts with a
/// char none of the others' later chars can be) run one at a time; others
/// may have all their states active.
fn repeat(x: Cost, low: u32, high: u32, unbounded: bool) -> Cost {
    let (low, high) = (u64::from(low), u64::from(high));
    let size = if unbounded {
        low.max(1).saturating_mul(x.size).saturating_add(1)
    } else {
        high.saturating_mul(x.size).saturating_add(high - low)
    };
    let many = unbounded || high > 1;
    // Copies of a fixed length, or that each start with a char the
    // others cannot read after their first, run one at a time.
    let apart = (x.len != VARIES && x.len > 0) || (!x.empty && !x.head.meets(x.rest));
    Cost {
        size,
        width: if !many {
            x.width + 1
        } else if apart {
            x.width + 2
        } else {
            size
        },
        entry: x.entry + 1,
        chars: x.chars,
        head: x.head,
        rest: if many { x.rest.or(x.chars) } else { x.rest },
        empty: x.empty || low == 0,
        single: false,
        len: if unbounded || low != high {
            VARIES
        } else {
            x.len.saturating_mul(low)
        },
    }
}

/// Checks `p` (RE2 syntax); `fold` when it matches case-insensitively as a
/// whole.
pub fn check(p: &str, fold: bool) -> Result<Scan, Refusal> {
    let b = p.as_bytes();
    let mut i = 0;
    let mut looks_around = false;
    // A fixed array, not a `Vec`, for module size.
    let mut groups = [GROUP; 33];
    let mut depth = 0;
    // The last element, not yet added to its group: a repetition may
    // follow. Its weight for nested counts (0: nothing to repeat), and
    // whether it is a repetition.
    let mut pending: Option<Cost> = None;
    let (mut last, mut repeated) = (0u32, false);
    'scan: while let Some(&c) = b.get(i) {
        i += 1;
        let mut atom = 1;
        let mut was_repeat = false;
        if !matches!(c, b'*' | b'+' | b'?' | b'{') {
            if let (Some(e), Some(g)) = (pending.take(), groups.get_mut(depth)) {
                g.push(e);
            }
        }
        let element = match c {
            b'.' => Cost::char(UNICODE, ALL),
            b'\\' => {
                let e = *b.get(i).ok_or(TRAILING)?;
                i += 1;
                if matches!(e, b'b' | b'B' | b'A') {
                    if fold && e != b'A' {
                        return Err(FOLD);
                    }
                    if e == b'b'
                        && b.get(i) == Some(&b'{')
                        && b.get(i + 1).is_some_and(u8::is_ascii_alphabetic)
                    {
                        return Err("\\b{ (RE2: \\b then `{`): write \\b\\{");
                    }
                    looks_around = true;
                    Cost::char(1, NONE)
                } else {
                    // `\xFF` is one char (up to two UTF-8 bytes): repeated whole.
                    if e == b'x' && b.get(i).is_some_and(u8::is_ascii_hexdigit) {
                        i += usize::from(b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)) + 1;
                    }
                    let (size, chars) = escape(e, fold)?;
                    let size = if fold { 2 * size + 8 } else { size };
                    Cost::char(size, chars)
                }
            }
            b'[' => {
                let (end, size, chars) = class(b, i, fold)?;
                i = end;
                Cost::char(size, chars)
            }
            b'(' => {
                if b.get(i) == Some(&b'?') {
                    i += 1;
                    // Flags: regex-lite refuses a repeated or dangling
                    // `-` as RE2 does (and `(?)`, `(?ii)`, which RE2 takes). Named
                    // groups are refused: RE2 and regex-lite name them apart.
                    let mut neg = false;
                    loop {
                        let f = *b.get(i).ok_or(BAD_GROUP)?;
                        i += 1;
                        match f {
                            // Case-insensitive is all or nothing: RE2
                            // also folds the Kelvin sign and the long s
                            // (see `FoldedRegex`), regex-lite does not.
                            b'i' if neg || !fold => {
                                return Err("the i flag: write [Aa]");
                            }
                            b'-' => neg = true,
                            b'i' | b'm' | b's' | b'U' => {}
                            b':' => break,
                            b')' => {
                                // Flags for the rest of the group. RE2
                                // repeats what came before them in
                                // `a(?m)*`: refused.
                                last = 0;
                                continue 'scan;
                            }
                            _ => return Err(BAD_GROUP),
                        }
                    }
                }
                depth += 1;
                let g = groups
                    .get_mut(depth)
                    .ok_or("groups nested deeper than 32")?;
                // Only a group without `?` captures.
                *g = Group {
                    capturing: b.get(i.wrapping_sub(1)) == Some(&b'('),
                    ..GROUP
                };
                (last, repeated) = (0, false);
                continue;
            }
            b')' => {
                let g = *groups
                    .get(depth)
                    .filter(|_| depth > 0)
                    .ok_or("an unbalanced `)`")?;
                atom = g.counts;
                depth -= 1;
                g.end()
            }
            b'|' => {
                if let Some(g) = groups.get_mut(depth) {
                    g.end_branch();
                    g.size += 1;
                }
                (last, repeated) = (0, false);
                continue;
            }
            b'*' | b'+' | b'?' | b'{' => {
                let (low, n, unbounded) = match c {
                    b'{' => count(b, &mut i).ok_or("a `{` that is no count: write \\{")?,
                    b'?' => (0, 1, false),
                    _ => (u32::from(c == b'+'), 1, true),
                };
                if last == 0 {
                    return Err("a repetition of nothing or right after flags");
                }
                if repeated {
                    return Err("a repetition of a repetition");
                }
                atom = last.saturating_mul(n.max(1));
                if n > MAX_REPEAT || atom > MAX_REPEAT {
                    return Err("a count over 1000 (nested ones multiply)");
                }
                if b.get(i) == Some(&b'?') {
                    i += 1;
                }
                was_repeat = true;
                repeat(pending.take().unwrap_or_default(), low, n, unbounded)
            }
            b'^' => {
                looks_around = true;
                Cost::char(1, NONE)
            }
            b'$' => Cost::char(1, NONE),
            _ if fold && !c.is_ascii() => return Err(FOLD),
            // A char is as many instructions as UTF-8 bytes, each a range.
            _ if c >= 0xC0 => {
                let mut size = 1;
                while b.get(i).is_some_and(|&n| n & 0xC0 == 0x80) {
                    i += 1;
                    size += 1;
                }
                Cost::char(size, NONE.with(c, false))
            }
            // Folded, k also matches the Kelvin sign, s the long s.
            b'k' | b'K' | b's' | b'S' if fold => Cost::char(4, NONE.with(c, true)),
            _ => Cost::char(1, NONE.with(c, fold)),
        };
        let element = if element.single && element.chars == NONE {
            // An assertion (`^`, `$`, `\b`, ...) reads no char.
            Cost {
                empty: true,
                single: false,
                head: NONE,
                len: 0,
                ..element
            }
        } else {
            element
        };
        if let Some(g) = groups.get_mut(depth) {
            g.counts = g.counts.max(atom);
        }
        pending = Some(element);
        (last, repeated) = (atom, was_repeat);
    }
    if depth > 0 {
        return Err("an unbalanced `(`");
    }
    let [mut whole, ..] = groups;
    if let Some(e) = pending {
        whole.push(e);
    }
    let whole = whole.end();
    let clamp = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
    Ok(Scan {
        looks_around,
        size: clamp(whole.size.saturating_add(BASE)),
        // The anchors, the match state and the start state tried at every
        // char.
        cost: clamp(whole.width.saturating_add(3)),
    })
}

/// An escape after `\` (but `\b \B \A`), outside a class or in one: its
/// program size and the chars it stands for (none: `\z`).
fn escape(e: u8, fold: bool) -> Result<(u64, Chars), Refusal> {
    // [0-9A-Za-z_], [0-9].
    let word = Chars(0x07FF_FFFE_87FF_FFFE_03FF_0000_0000_0000);
    let digit = Chars(0x03FF_0000_0000_0000);
    // The char an escape of a control char or a punctuation stands for.
    let char = match e {
        b'a' => 7,
        b'f' => 12,
        b't' => b'\t',
        b'n' => b'\n',
        b'r' => b'\r',
        b'v' => 11,
        _ => e,
    };
    match e {
        b'a' | b'f' | b't' | b'n' | b'r' | b'v' => Ok((1, NONE.with(char, false))),
        b'd' => Ok((1, digit)),
        b'z' => Ok((1, NONE)),
        b'w' => Ok((3, word)),
        b'D' => Ok((UNICODE, digit.not())),
        b'W' => Ok((UNICODE, word.not())),
        // regex-lite checks the digits as RE2 does.
        b'x' if fold => Err(FOLD),
        b'x' => Ok((2, ALL)),
        b's' | b'S' => Err(SPACE),
        b'<' | b'>' => Err("\\< or \\> (RE2: < or >): write < or >"),
        b'0'..=b'7' => Err("an octal escape: write \\x{..}"),
        b'p' | b'P' => Err("a Unicode class \\p"),
        b'Q' => Err("a quoted \\Q..\\E"),
        b'C' => Err("\\C (any byte)"),
        // Any other ASCII char but a letter or digit stands for itself.
        _ if e.is_ascii() && !e.is_ascii_alphanumeric() => Ok((1, NONE.with(char, fold))),
        _ => Err("an escape RE2 lacks"),
    }
}

/// A class from after its `[`: the index after its `]`. In RE2 a `]`
/// first is literal and so is `[` (unless `[:name:]`), `&&` and `~~`;
/// regex-lite nests classes and has set operations there. With the index,
/// its program size (a range per item, more for what is not ASCII) and
/// the chars it matches (more, where that is simpler).
fn class(b: &[u8], mut i: usize, fold: bool) -> Result<(usize, u64, Chars), Refusal> {
    let (mut size, mut chars) = (0, NONE);
    let negated = b.get(i) == Some(&b'^');
    if negated {
        i += 1;
        size = UNICODE;
    }
    let start = i;
    // The last plain char, which a `-` makes the start of a range.
    let mut from: Option<u8> = None;
    loop {
        let c = *b.get(i).ok_or(OPEN)?;
        i += 1;
        let mut next = None;
        match c {
            b']' if i > start + 1 => {
                let chars = if negated { chars.not() } else { chars };
                return Ok((i, if fold { 2 * size + 8 } else { size }, chars));
            }
            b'[' if b.get(i) == Some(&b':') => {
                if fold {
                    return Err(FOLD);
                }
                // RE2 and regex-lite know the same 14 names.
                i += 1;
                size += 4;
                chars = chars.range(0, 127, false);
                if b.get(i) == Some(&b'^') {
                    i += 1;
                    size += UNICODE;
                    chars = ALL;
                }
                while b.get(i).is_some_and(u8::is_ascii_alphabetic) {
                    i += 1;
                }
                if b.get(i) != Some(&b':') || b.get(i + 1) != Some(&b']') {
                    return Err(NESTED);
                }
                i += 2;
            }
            b'[' => return Err(NESTED),
            b'&' | b'~' | b'-' if b.get(i) == Some(&c) => {
                return Err("`&&` `~~` `--` in a class (RE2: literal): escape them");
            }
            b'\\' => {
                let e = *b.get(i).ok_or(TRAILING)?;
                i += 1;
                let (n, set) = escape(e, fold)?;
                size += n;
                chars = chars.or(set);
                // regex-lite refuses `[\z]` and `[\d-z]` (RE2: a literal `-`).
                if e.is_ascii_punctuation() {
                    next = Some(e);
                }
            }
            _ if fold && !c.is_ascii() => return Err(FOLD),
            b'-' if b.get(i) != Some(&b']') && from.is_some() => {
                // A range: to the next char, or all chars when that is an
                // escape or not ASCII.
                let low = from.unwrap_or(0);
                match b.get(i) {
                    Some(&high) if high.is_ascii() && high != b'\\' => {
                        chars = chars.range(low, high, fold);
                        i += 1;
                    }
                    _ => chars = ALL,
                }
                size += 1;
            }
            _ if c >= 0xC0 => {
                size += 4;
                chars = chars.with(c, fold);
            }
            _ if c.is_ascii() => {
                size += 1;
                chars = chars.with(c, fold);
                next = Some(c);
            }
            _ => {}
        }
        from = next;
    }
}

/// `{n}`, `{n,}` or `{n,m}` from after its `{`: `n`, the largest count
/// (`m`, or `n` when unbounded; over 1000 when `m < n`) and whether it is
/// unbounded, with `i` after its `}`.
fn count(b: &[u8], i: &mut usize) -> Option<(u32, u32, bool)> {
    let n = number(b, i)?;
    let (m, unbounded) = if b.get(*i) == Some(&b',') {
        *i += 1;
        if b.get(*i) == Some(&b'}') {
            (n, true)
        } else {
            (number(b, i)?, false)
        }
    } else {
        (n, false)
    };
    if b.get(*i) != Some(&b'}') {
        return None;
    }
    *i += 1;
    Some((n, if m < n { u32::MAX } else { m }, unbounded))
}

fn number(b: &[u8], i: &mut usize) -> Option<u32> {
    let mut n: Option<u32> = None;
    while let Some(d) = b.get(*i).filter(|d| d.is_ascii_digit()) {
        *i += 1;
        n = Some(
            n.unwrap_or(0)
                .saturating_mul(10)
                .saturating_add(u32::from(d - b'0')),
        );
    }
    n
}
