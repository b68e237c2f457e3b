//! The RE2 gate: a regex in a rule is RE2 syntax, as Envoy's `safe_regex`
//! reads it, but this workspace matches with regex-lite. This scanner lets
//! through only what both read alike and refuses the rest with what to
//! write instead: what RE2 refuses, and what RE2 reads otherwise than
//! regex-lite (`\<` `\>` `\s` `[a[b]]` `[a&&b]` `a{`, `\b{start}`, ...), or
//! accepts but regex-lite lacks (`\pL`, `\Q..\E`, octal). It also checks
//! that parentheses balance on their own, so the anchors that wrap the
//! pattern (`^(?:..)$`) cannot be escaped. A hand-written scanner, not a
//! parser, to keep every filter module small.

/// What is wrong, and mostly how to fix it.
pub type Refusal = &'static str;

const MAX_REPEAT: u32 = 1000;
const TRAILING: Refusal = "a trailing `\\`";
const OPEN: Refusal = "an unclosed `[`";
const BAD_GROUP: Refusal = "a `(?` other than (?:..) and flags m s U (no names)";
const FOLD: Refusal = "\\b, \\x, [:name:] or non-ASCII in a case-insensitive regex";
const NESTED: Refusal = "`[` in a class (RE2: literal): write \\[";
const SPACE: Refusal = "\\s or \\S (RE2's lacks \\v): write [\\t\\n\\f\\r ]";

/// Checks `p` (RE2 syntax); `fold` when it matches case-insensitively as a
/// whole. `Ok(true)` when it looks at the text around a position (`^`,
/// `\A`, `\b`, `\B`): such a pattern cannot be matched on a piece of the
/// value cut out of its context.
pub fn check(p: &str, fold: bool) -> Result<bool, Refusal> {
    let b = p.as_bytes();
    let mut i = 0;
    let mut looks_around = false;
    // Per open group (0: the whole pattern), the largest product of counts
    // nested in it; a fixed array, not a `Vec`, for module size.
    let mut groups = [1u32; 33];
    let mut depth = 0;
    // Weight of the last atom (0: nothing to repeat), and whether it is a
    // repetition.
    let (mut last, mut repeated) = (0u32, false);
    'scan: while let Some(&c) = b.get(i) {
        i += 1;
        let mut atom = 1;
        let mut was_repeat = false;
        match c {
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
                } else {
                    escape(e, fold)?;
                }
            }
            b'[' => i = class(b, i, fold)?,
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
                *groups
                    .get_mut(depth)
                    .ok_or("groups nested deeper than 32")? = 1;
                (last, repeated) = (0, false);
                continue;
            }
            b')' => {
                atom = *groups
                    .get(depth)
                    .filter(|_| depth > 0)
                    .ok_or("an unbalanced `)`")?;
                depth -= 1;
            }
            b'|' => atom = 0,
            b'*' | b'+' | b'?' | b'{' => {
                let n = match c {
                    b'{' => count(b, &mut i).ok_or("a `{` that is no count: write \\{")?,
                    _ => 0,
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
            }
            b'^' => looks_around = true,
            _ if fold && !c.is_ascii() => return Err(FOLD),
            _ => {}
        }
        if let Some(g) = groups.get_mut(depth) {
            *g = (*g).max(atom);
        }
        (last, repeated) = (atom, was_repeat);
    }
    if depth > 0 {
        return Err("an unbalanced `(`");
    }
    Ok(looks_around)
}

/// An escape after `\` (but `\b \B \A`), outside a class or in one.
fn escape(e: u8, fold: bool) -> Result<(), Refusal> {
    match e {
        b'a' | b'f' | b't' | b'n' | b'r' | b'v' | b'd' | b'D' | b'w' | b'W' | b'z' => Ok(()),
        // regex-lite checks the digits as RE2 does.
        b'x' if fold => Err(FOLD),
        b'x' => Ok(()),
        b's' | b'S' => Err(SPACE),
        b'<' | b'>' => Err("\\< or \\> (RE2: < or >): write < or >"),
        b'0'..=b'7' => Err("an octal escape: write \\x{..}"),
        b'p' | b'P' => Err("a Unicode class \\p"),
        b'Q' => Err("a quoted \\Q..\\E"),
        b'C' => Err("\\C (any byte)"),
        // Any other ASCII char but a letter or digit stands for itself.
        _ if e.is_ascii() && !e.is_ascii_alphanumeric() => Ok(()),
        _ => Err("an escape RE2 lacks"),
    }
}

/// A class from after its `[`: the index after its `]`. In RE2 a `]`
/// first is literal and so is `[` (unless `[:name:]`), `&&` and `~~`;
/// regex-lite nests classes and has set operations there.
fn class(b: &[u8], mut i: usize, fold: bool) -> Result<usize, Refusal> {
    if b.get(i) == Some(&b'^') {
        i += 1;
    }
    let start = i;
    loop {
        let c = *b.get(i).ok_or(OPEN)?;
        i += 1;
        match c {
            b']' if i > start + 1 => return Ok(i),
            b'[' if b.get(i) == Some(&b':') => {
                if fold {
                    return Err(FOLD);
                }
                // RE2 and regex-lite know the same 14 names.
                i += 1;
                if b.get(i) == Some(&b'^') {
                    i += 1;
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
                escape(e, fold)?;
                // regex-lite refuses `[\z]` and `[\d-z]` (RE2: a literal `-`).
            }
            _ if fold && !c.is_ascii() => return Err(FOLD),
            _ => {}
        }
    }
}

/// `{n}`, `{n,}` or `{n,m}` from after its `{`: the largest count (`m`, or
/// `n` when unbounded; over 1000 when `m < n`), with `i` after its `}`.
fn count(b: &[u8], i: &mut usize) -> Option<u32> {
    let n = number(b, i)?;
    let m = if b.get(*i) == Some(&b',') {
        *i += 1;
        if b.get(*i) == Some(&b'}') {
            n
        } else {
            number(b, i)?
        }
    } else {
        n
    };
    if b.get(*i) != Some(&b'}') {
        return None;
    }
    *i += 1;
    Some(if m < n { u32::MAX } else { m })
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
