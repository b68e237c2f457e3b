//! What one path segment is, for templating and for masking: a decimal id,
//! a UUID, something that looks like a secret (a token, a long hex or random
//! string, an email address), or a plain word kept as it is.

/// A path segment as a rule matches it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Segment {
    /// Kept as observed (escaped in the regex).
    Literal(String),
    /// `[0-9]+`
    Id,
    /// `[0-9a-fA-F-]{36}`
    Uuid,
    /// `[^/?]+`: a value that looks like a secret or a random token (any
    /// characters of one segment; the query is matched apart).
    Token,
    /// The narrowest class of characters covering the distinct values seen
    /// at one position (more than the configured number of them): `[a-z]+`.
    Class(String),
}

/// Below this length a segment is a word, whatever it is made of.
const TOKEN_MIN_LEN: usize = 16;

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Changes between a letter and a digit from one character to the next:
/// `abc123def` has 2. Words and versions have few, and a separator between
/// a word and a number is not a change (`e2e-tests-2024-11-29` has 2);
/// random tokens alternate often.
fn switches(s: &str) -> usize {
    s.as_bytes()
        .windows(2)
        .filter(|pair| match pair {
            [a, b] => {
                a.is_ascii_alphanumeric()
                    && b.is_ascii_alphanumeric()
                    && a.is_ascii_digit() != b.is_ascii_digit()
            }
            _ => false,
        })
        .count()
}

/// Runs of consonants (`y` counted as a vowel): the longest, and how many
/// have four or more. Words seldom run more than five together
/// (`strengths`), or four twice; random letters often do.
fn consonants(s: &str) -> (usize, usize) {
    let (mut longest, mut clusters, mut run) = (0, 0, 0);
    for c in s.chars() {
        if c.is_ascii_alphabetic() && !"aeiouyAEIOUY".contains(c) {
            run += 1;
            longest = longest.max(run);
            if run == 4 {
                clusters += 1;
            }
        } else {
            run = 0;
        }
    }
    (longest, clusters)
}

/// A value that must never appear literally in a policy: an email address
/// (`@`, also percent-encoded), a JWT (`eyJ`), a social security number
/// (`078-05-1120`), a card number (13-19 digits passing Luhn), a long hex
/// string, or a long
/// string with digits whose letters and digits alternate, or whose letters
/// mix cases, are all capitals (AWS key ids, base32 secrets) or run
/// consonants together, as random tokens and API keys do. A camel-case name
/// with a digit (`listS3Buckets`) is taken for a key too: telling the two
/// apart is guesswork, and a key must not leak.
pub fn looks_secret(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    if lower.contains('@') || lower.contains("%40") || s.starts_with("eyJ") {
        return true;
    }
    if is_ssn(s) || is_card_number(s) {
        return true;
    }
    if s.len() < TOKEN_MIN_LEN {
        return false;
    }
    let alnum = s.chars().filter(char::is_ascii_alphanumeric).count();
    if s.chars().all(|c| c.is_ascii_hexdigit()) {
        return true;
    }
    let has = |f: fn(&char) -> bool| s.chars().any(|c| f(&c));
    let letters = s.chars().filter(char::is_ascii_alphabetic).count();
    // Within a part between separators, past its first letter: the dotted
    // name of a gRPC service (`grpc.health.v1.Health`) is words.
    let mixed_case = s.split(|c: char| !c.is_ascii_alphanumeric()).any(|part| {
        let rest = part.get(1..).unwrap_or_default();
        rest.contains(|c: char| c.is_ascii_lowercase())
            && rest.contains(|c: char| c.is_ascii_uppercase())
    });
    // Not a timestamp's `T` and `Z`, nor words in capitals with numbers
    // between them (`ISO-8859-1`).
    let switches = switches(s);
    let capitals = !has(char::is_ascii_lowercase) && letters * 4 >= alnum && switches >= 1;
    let (longest, clusters) = consonants(s);
    // Mostly letters and digits (not a sentence of words joined by `-`).
    alnum * 4 >= s.len() * 3
        && has(char::is_ascii_digit)
        && (switches + clusters >= 5 || mixed_case || capitals || longest >= 6)
}

/// A US social security number as written: `078-05-1120`.
fn is_ssn(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 11
        && b.iter().enumerate().all(|(i, c)| match i {
            3 | 6 => *c == b'-',
            _ => c.is_ascii_digit(),
        })
}

/// A payment card number: 13 to 19 digits (`-` and blanks, also `%20`,
/// between them) passing the Luhn check, as every card number does
/// (`378282246310005`, `4111-1111-1111-1111`).
fn is_card_number(s: &str) -> bool {
    let compact = s.replace("%20", " ");
    if !compact
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b'-' || b == b' ')
    {
        return false;
    }
    let digits: Vec<u32> = compact.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&digits.len()) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| match (i % 2, d * 2) {
            (0, _) => d,
            (_, twice) if twice > 9 => twice - 9,
            (_, twice) => twice,
        })
        .sum();
    sum % 10 == 0
}

/// How one observed segment is matched.
pub fn classify(s: &str) -> Segment {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        Segment::Id
    } else if is_uuid(s) {
        Segment::Uuid
    } else if looks_secret(s) {
        Segment::Token
    } else {
        Segment::Literal(s.to_string())
    }
}

/// `s` as an RE2 (and regex-lite) literal.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The narrowest character class, repeated, that covers every value.
pub fn class_of<'a>(values: impl IntoIterator<Item = &'a str>) -> String {
    let (mut lower, mut upper, mut digit) = (false, false, false);
    let mut other: Vec<char> = Vec::new();
    for c in values.into_iter().flat_map(str::chars) {
        match c {
            'a'..='z' => lower = true,
            'A'..='Z' => upper = true,
            '0'..='9' => digit = true,
            c if !other.contains(&c) => other.push(c),
            _ => {}
        }
    }
    other.sort_unstable();
    let mut class = String::from("[");
    for (on, range) in [(lower, "a-z"), (upper, "A-Z"), (digit, "0-9")] {
        if on {
            class.push_str(range);
        }
    }
    // `-` last, where it is a literal in every regex dialect.
    for c in other.iter().filter(|c| **c != '-') {
        if "\\]^[".contains(*c) {
            class.push('\\');
        }
        class.push(*c);
    }
    if other.contains(&'-') {
        class.push('-');
    }
    class.push_str("]+");
    class
}

impl Segment {
    /// The regex for this segment.
    pub fn regex(&self) -> String {
        match self {
            Segment::Literal(s) => escape(s),
            Segment::Id => "[0-9]+".into(),
            Segment::Uuid => "[0-9a-fA-F-]{36}".into(),
            Segment::Token => "[^/?]+".into(),
            Segment::Class(c) => c.clone(),
        }
    }

    /// How the segment reads in a report: literals as they are, the rest
    /// as a placeholder (a token is never printed).
    pub fn shown(&self) -> String {
        match self {
            Segment::Literal(s) => s.clone(),
            Segment::Id => "{id}".into(),
            Segment::Uuid => "{uuid}".into(),
            Segment::Token => "{token}".into(),
            Segment::Class(c) => format!("{{{c}}}"),
        }
    }
}

/// `s` as a regex literal, or `any` when it looks like a secret.
pub fn literal_or(s: &str, any: &str) -> String {
    if looks_secret(s) {
        any.to_string()
    } else {
        escape(s)
    }
}

/// A host's name after any userinfo (`user:pw@`), which l7_policy's host
/// keeps, and whether there was some.
pub fn without_userinfo(host: &str) -> (&str, bool) {
    match host.rsplit_once('@') {
        Some((_, name)) => (name, true),
        None => (host, false),
    }
}

/// The `host` regex for a recorded host: each label escaped, a
/// secret-looking label (a tenant token, a random subdomain) as any label,
/// and userinfo as any userinfo.
pub fn host_regex(host: &str) -> String {
    let (name, userinfo) = without_userinfo(host);
    let labels: Vec<String> = name.split('.').map(|l| literal_or(l, "[^.]+")).collect();
    let userinfo = if userinfo { "[^@]+@" } else { "" };
    format!("{userinfo}{}", labels.join("\\."))
}
