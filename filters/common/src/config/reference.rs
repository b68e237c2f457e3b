//! What a README's configuration reference must say: each declared field
//! ([`config_object!`](crate::config_object)) as one table row, `| field |
//! type | default | meaning |`, and no row for a field that is not declared.
//! Only tests build these tables, so none of this is in a module.

/// One field as the README's configuration reference lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDoc {
    pub name: &'static str,
    /// The type column: `integer 1–32`, `"pass"` | `"reject"`.
    pub type_text: String,
    /// The default column: `` `1024` ``, `none`, `required`.
    pub default_text: String,
    /// The meaning column: the field's doc comment, one line.
    pub doc: String,
}

/// A default value as the README shows it, in backticks.
pub trait ShowDefault {
    fn show(&self) -> String;
}

macro_rules! show_as_display {
    ($($t:ty),*) => {$(
        impl ShowDefault for $t {
            fn show(&self) -> String {
                format!("`{self}`")
            }
        }
    )*};
}
show_as_display!(bool, u16, u32, u64, usize, f64);

impl ShowDefault for &str {
    fn show(&self) -> String {
        format!("`{self:?}`")
    }
}

impl ShowDefault for String {
    fn show(&self) -> String {
        self.as_str().show()
    }
}

impl ShowDefault for Vec<String> {
    fn show(&self) -> String {
        let items: Vec<String> = self.iter().map(|s| format!("{s:?}")).collect();
        format!("`[{}]`", items.join(", "))
    }
}

/// A doc comment's lines (`///` gives each with its leading space) as one
/// line.
pub fn doc_line(lines: &[&str]) -> String {
    lines
        .iter()
        .flat_map(|l| l.split_whitespace())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `"a"` | `"b"`: the README's type of a string with these values.
pub fn choices(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n:?}`")).collect();
    quoted.join(" | ")
}

/// One row of a README table: the names in its first cell (`` `a`, `b` ``
/// documents two fields alike) and its other cells, `\|` read as `|`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub names: Vec<String>,
    pub cells: Vec<String>,
}

fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    let mut out = vec![String::new()];
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                chars.next();
                out.last_mut().into_iter().for_each(|s| s.push('|'));
            }
            '|' => out.push(String::new()),
            c => out.last_mut().into_iter().for_each(|s| s.push(c)),
        }
    }
    out.iter().map(|s| doc_line(&[s])).collect()
}

/// The rows of the first table after the line `heading` (a Markdown heading,
/// or any line that introduces the table) whose header row begins with
/// `| field |`; `None` when there is none.
pub fn table(readme: &str, heading: &str) -> Option<Vec<Row>> {
    let mut lines = readme.lines().skip_while(|l| l.trim() != heading).skip(1);
    lines.find(|l| l.trim_start().starts_with("| field |"))?;
    let rows = lines
        .skip(1)
        .take_while(|l| l.trim_start().starts_with('|'))
        .map(|l| {
            let mut cells = cells(l);
            let first = if cells.is_empty() {
                String::new()
            } else {
                cells.remove(0)
            };
            let names = first
                .split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect();
            Row { names, cells }
        })
        .collect();
    Some(rows)
}

/// Where the table under `heading` differs from `fields`: a field without a
/// row, a row whose type, default or meaning is not the declared one, a row
/// for a field not declared. Each problem names the row the declaration
/// gives.
pub fn differences(readme: &str, heading: &str, fields: &[FieldDoc]) -> Vec<String> {
    let Some(rows) = table(readme, heading) else {
        return vec![format!("no `| field |` table after {heading:?}")];
    };
    let mut problems = Vec::new();
    for f in fields {
        let want = vec![f.type_text.clone(), f.default_text.clone(), f.doc.clone()];
        let row = rows.iter().find(|r| r.names.iter().any(|n| n == f.name));
        match row {
            None => problems.push(format!(
                "`{}` has no row; declared: | `{}` | {} |",
                f.name,
                f.name,
                want.join(" | ")
            )),
            Some(r) if r.cells != want => problems.push(format!(
                "`{}`'s row differs from its declaration:\n  README:   | {} |\n  declared: | {} |",
                f.name,
                r.cells.join(" | "),
                want.join(" | ")
            )),
            Some(_) => {}
        }
    }
    for r in &rows {
        for n in &r.names {
            if !fields.iter().any(|f| f.name == n) {
                problems.push(format!("`{n}` has a row but is not a field"));
            }
        }
    }
    problems
}

/// A filter README's `## Configuration reference` table against the fields
/// its configuration declares: `Err` lists every difference.
pub fn check_reference(readme: &str, fields: &[FieldDoc]) -> Result<(), String> {
    let problems = differences(readme, "## Configuration reference", fields);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}
