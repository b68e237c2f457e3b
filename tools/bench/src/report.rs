//! The benchmark's pages, made only from its saved results
//! (`bench/results/results.json` and `bench/results/footprint.json` from
//! `make bench`, `bench/results/instructions.json` from `make bench-instructions`):
//! `bench/README.md` from `bench/template.md`, the chart
//! `bench/results/chart.svg`, and the performance lines of the top-level
//! README between its `bench-headline` markers. The same input always gives
//! the same bytes, so a test can tell when a page was edited by hand.

use serde_json::Value;
use std::path::Path;

const START: &str = "<!-- bench-headline:start";
const END: &str = "<!-- bench-headline:end -->";
/// The configurations that stand for the whole chain in the headline.
const SUITE: &str = "suite.wasm: all HTTP filters";
const CHAIN: &str = "all HTTP filters chained";
const BUDGET: f64 = harness::MODULE_BUDGET as f64;

/// A generated file.
pub struct Page {
    /// Under the workspace.
    pub path: String,
    pub content: String,
}

/// Every generated file.
pub fn generate(root: &Path) -> Result<Vec<Page>, String> {
    let read = |p: &str| std::fs::read_to_string(root.join(p)).map_err(|e| format!("{p}: {e}"));
    let json = |p: &str| -> Result<Value, String> {
        serde_json::from_str(&read(p)?).map_err(|e| format!("{p}: {e}"))
    };
    let cpu = json("bench/results/results.json")?;
    let instr = json("bench/results/instructions.json")?;
    let footprint = json("bench/results/footprint.json")?;
    // Measured apart (`bench --only regex`): absent until it has run.
    let regex = json("bench/results/regex.json").unwrap_or(Value::Null);
    let headline = headline(&cpu, &instr)?;
    let page_text = fill(
        &read("bench/template.md")?,
        &[
            ("headline", headline.clone()),
            ("cpu_summary", cpu_summary(&cpu)),
            ("cpu_table", cpu_table(&cpu)),
            (
                "runtimes",
                format!("Runtimes: {}", text(at(&cpu, &["runtimes"]))),
            ),
            ("instructions_summary", instructions_summary(&instr)),
            ("instructions_table", instructions_table(&instr)),
            ("floor_table", floor_table(&cpu, &instr)?),
            ("sizes_table", sizes_table(&cpu)),
            ("footprint_summary", footprint_summary(&footprint)),
            ("footprint_table", footprint_table(&footprint)),
            ("footprint_total", footprint_total(&footprint)),
            ("regex_summary", regex_summary(&regex)),
            ("regex_table", regex_table(&regex)),
        ],
    )?;
    let readme = splice(&read("README.md")?, &headline)?;
    let page = |path: &str, content: String| Page {
        path: path.into(),
        content,
    };
    Ok(vec![
        page("bench/README.md", page_text),
        page("bench/results/chart.svg", chart::svg(&bars(&cpu))?),
        page("README.md", readme),
    ])
}

/// Writes every generated file.
pub fn write(root: &Path) -> Result<(), String> {
    for Page { path, content } in generate(root)? {
        std::fs::write(root.join(&path), content).map_err(|e| format!("{path}: {e}"))?;
    }
    Ok(())
}

/// A partial run's results as a table (CPU or instructions, as measured).
pub fn table(doc: &Value) -> String {
    let counted = rows(doc)
        .first()
        .is_some_and(|r| r.get("instructions_per_request").is_some());
    if counted {
        instructions_table(doc)
    } else {
        cpu_table(doc)
    }
}

fn fill(template: &str, values: &[(&str, String)]) -> Result<String, String> {
    let mut out = template.to_string();
    for (key, value) in values {
        let slot = format!("{{{{{key}}}}}");
        if !out.contains(&slot) {
            return Err(format!("bench/template.md has no {slot}"));
        }
        out = out.replace(&slot, value.trim_end());
    }
    if let Some(at) = out.find("{{") {
        let rest: String = out[at..].chars().take(40).collect();
        return Err(format!(
            "bench/template.md: unknown placeholder at {rest:?}"
        ));
    }
    Ok(format!(
        "<!-- Generated from bench/template.md and bench/results/*.json by `make bench-report`; edit those. -->\n\n{out}"
    ))
}

/// The README with `headline` between its markers.
fn splice(readme: &str, headline: &str) -> Result<String, String> {
    let start = readme
        .find(START)
        .ok_or("README.md has no bench-headline:start marker")?;
    let body = start
        + readme[start..]
            .find('\n')
            .ok_or("README.md ends at its marker")?
        + 1;
    let end = readme
        .find(END)
        .filter(|&e| e >= body)
        .ok_or("README.md has no bench-headline:end marker after the start")?;
    Ok(format!(
        "{}{}\n{}",
        &readme[..body],
        headline.trim_end(),
        &readme[end..]
    ))
}

fn rows(doc: &Value) -> &[Value] {
    doc["results"].as_array().map_or(&[], Vec::as_slice)
}

fn row<'a>(doc: &'a Value, name: &str, which: &str) -> Result<&'a Value, String> {
    rows(doc)
        .iter()
        .find(|r| r["name"] == name)
        .ok_or_else(|| format!("{which} has no configuration {name:?}"))
}

fn ratio(v: &Value) -> String {
    v.as_f64().map_or("–".into(), |r| format!("{r:.2}"))
}

/// The value at `path` (object keys) in `v`, null where there is none.
fn at<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    static NULL: Value = Value::Null;
    path.iter()
        .try_fold(v, |v, key| v.get(key))
        .unwrap_or(&NULL)
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn thousands(n: f64) -> String {
    let digits = format!("{n:.0}");
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Three lines: the chain, the filters against their native counterparts,
/// the sizes.
fn headline(cpu: &Value, instr: &Value) -> Result<String, String> {
    let c = |name: &str| row(cpu, name, "results.json").map(|r| f(&r["ratio_to_bare"]));
    let n = |name: &str| row(cpu, name, "results.json").map(|r| f(&r["ratio_to_native"]));
    let i = |name: &str| row(instr, name, "instructions.json").map(|r| f(&r["ratio_to_bare"]));
    let taps: Vec<f64> = rows(cpu)
        .iter()
        .filter(|r| text(&r["name"]).starts_with("tap_http"))
        .filter_map(|r| r["ratio_to_native"].as_f64())
        .collect();
    if taps.is_empty() {
        return Err("results.json has no tap_http row against the native tap".into());
    }
    let lo = taps.iter().cloned().fold(f64::INFINITY, f64::min);
    let hi = taps.iter().cloned().fold(0.0, f64::max);
    let largest = cpu["sizes"]
        .as_array()
        .and_then(|s| s.iter().max_by_key(|m| m["shipped_bytes"].as_u64()))
        .ok_or("results.json has no sizes")?;
    let budget = if f(&largest["shipped_bytes"]) < BUDGET {
        "Every module under"
    } else {
        "Not every module under"
    };
    Ok(format!(
        "- All four HTTP filters in `suite.wasm`: **{:.2}× bare Envoy's CPU per request** ({:.2}× in instructions); as four separate modules {:.2}×.\n\
         - Against Envoy's native filters on the same traffic: tap_http {lo:.2}–{hi:.2}× the tap filter's CPU, l7_policy {:.2}× RBAC at 10 rules and {:.2}× at 1000, cf_headers {:.2}× `request_headers_to_add`.\n\
         - {budget} the {} KiB ({}-byte) budget; the largest, `{}.wasm`, is {} bytes.\n",
        c(SUITE)?,
        i(SUITE)?,
        c(CHAIN)?,
        n("l7_policy 10 rules")?,
        n("l7_policy 1000 rules")?,
        n("cf_headers")?,
        harness::MODULE_BUDGET / 1024,
        thousands(BUDGET),
        text(&largest["module"]),
        thousands(f(&largest["shipped_bytes"])),
    ))
}

fn cpu_summary(cpu: &Value) -> String {
    format!(
        "Machine: {}. {} rounds of {} s per configuration (alternated), {} connections, HTTP/1.1, fixed request rate; medians, spread in brackets. The run took {} s.",
        text(&cpu["machine"]),
        cpu["rounds"],
        cpu["seconds"],
        cpu["connections"],
        cpu["elapsed_s"],
    )
}

fn markdown(header: &[&str], rows: impl Iterator<Item = Vec<String>>) -> String {
    let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
    let mut md = line(&header.iter().map(|h| h.to_string()).collect::<Vec<_>>());
    md += &line(&vec!["---".to_string(); header.len()]);
    for r in rows {
        md += &line(&r);
    }
    md
}

/// The three ratio columns both tables have, after the measured ones.
const RATIOS: [&str; 3] = ["× bare", "× no-op Wasm", "× native"];

fn with_ratios(mut cells: Vec<String>, r: &Value) -> Vec<String> {
    for key in ["ratio_to_bare", "ratio_to_noop_wasm", "ratio_to_native"] {
        cells.push(ratio(&r[key]));
    }
    cells
}

fn cpu_table(cpu: &Value) -> String {
    let mut header = vec![
        "configuration",
        "rate (req/s)",
        "Envoy CPU µs/request [min–max]",
    ];
    header.extend(RATIOS);
    header.extend(["p50 ms", "p99 ms"]);
    markdown(
        &header,
        rows(cpu).iter().map(|r| {
            let spread = format!(
                "{:.1} [{:.1}–{:.1}]",
                f(&r["cpu_us_per_request"]),
                f(&r["cpu_us_min"]),
                f(&r["cpu_us_max"])
            );
            let mut cells = with_ratios(vec![text(&r["name"]), r["rate"].to_string(), spread], r);
            cells.push(format!("{:.2}", f(&r["p50_ms"])));
            cells.push(format!("{:.2}", f(&r["p99_ms"])));
            cells
        }),
    )
}

fn instructions_summary(instr: &Value) -> String {
    format!(
        "Machine: {}. Instructions Envoy executed per request (all threads, user space), counted by Valgrind's callgrind over {} sequential requests after a warm-up; \"in Wasm code\" is the compiled modules, host calls excluded. The run took {} s.",
        text(&instr["machine"]),
        instr["requests"],
        instr["elapsed_s"],
    )
}

fn instructions_table(instr: &Value) -> String {
    let mut header = vec!["configuration", "instructions/request", "in Wasm code"];
    header.extend(RATIOS);
    markdown(
        &header,
        rows(instr).iter().map(|r| {
            let counts = vec![
                text(&r["name"]),
                thousands(f(&r["instructions_per_request"])),
                thousands(f(&r["wasm_instructions_per_request"])),
            ];
            with_ratios(counts, r)
        }),
    )
}

fn floor_table(cpu: &Value, instr: &Value) -> Result<String, String> {
    let lines = [
        (
            "bare, request of all HTTP filters chained",
            "bare Envoy, the chain's request",
        ),
        (
            "noop wasm, request of all HTTP filters chained",
            "no-op Wasm filter",
        ),
        (
            "probe: the suite's host calls, nothing else",
            "floor: the suite's host calls",
        ),
        (
            "probe: the suite's host calls without peer filter state",
            "floor without peer filter state",
        ),
        (
            "probe: the suite's host calls without peer outputs",
            "floor without any peer output",
        ),
        (
            "suite.wasm: all HTTP filters, peer_metadata without filter state",
            "`suite.wasm` with `filter_state: false`",
        ),
        (SUITE, "`suite.wasm`, all four filters"),
    ];
    let mut cells = Vec::new();
    for (name, label) in lines {
        let i = row(instr, name, "instructions.json")?;
        let c = row(cpu, name, "results.json")?;
        cells.push(vec![
            label.to_string(),
            thousands(f(&i["instructions_per_request"])),
            ratio(&i["ratio_to_bare"]),
            ratio(&c["ratio_to_bare"]),
        ]);
    }
    Ok(markdown(
        &["", "instructions/request", "× bare", "CPU × bare"],
        cells.into_iter(),
    ))
}

fn regex_summary(regex: &Value) -> String {
    if regex.is_null() {
        return "Not measured yet: `cargo run --release -p bench -- --only regex`.".into();
    }
    let rule = |name: &str| text(at(regex, &["rules", name]));
    let worst = rule("worst accepted regex");
    format!(
        "Machine: {}. {} rounds of {} s per configuration (alternated), {} connections, a fixed request rate per row. The worst accepted regex is `{}` followed by {} `a` (cost {}, the default limit {}); the largest suggested query rule lists {} two-char names in {} chars. The run took {} s.",
        text(&regex["machine"]),
        regex["rounds"],
        regex["seconds"],
        regex["connections"],
        worst.trim_end_matches('a'),
        worst.len() - worst.trim_end_matches('a').len(),
        filter_common::predicate::re2::check(&worst, false).map_or(0, |s| s.cost),
        filter_common::predicate::RegexLimits::DEFAULT.cost,
        rule("largest suggested query rule").matches('|').count() / 2 + 1,
        rule("largest suggested query rule").len(),
        regex["elapsed_s"],
    )
}

fn regex_table(regex: &Value) -> String {
    markdown(
        &[
            "configuration",
            "rate (req/s)",
            "Envoy CPU µs/request [min–max]",
            "× bare on the same path",
            "× the simple rule",
            "p50 ms",
        ],
        rows(regex)
            .iter()
            .filter(|r| !text(&r["name"]).starts_with("bare"))
            .map(|r| {
                vec![
                    text(&r["name"]),
                    r["rate"].to_string(),
                    format!(
                        "{:.1} [{:.1}–{:.1}]",
                        f(&r["cpu_us_per_request"]),
                        f(&r["cpu_us_min"]),
                        f(&r["cpu_us_max"])
                    ),
                    ratio(&r["ratio_to_bare"]),
                    ratio(&r["ratio_to_native"]),
                    format!("{:.2}", f(&r["p50_ms"])),
                ]
            }),
    )
}

fn sizes_table(cpu: &Value) -> String {
    let sizes = cpu["sizes"].as_array().map_or(&[][..], Vec::as_slice);
    markdown(
        &[
            "module",
            "cargo output (bytes)",
            "shipped in `dist/` (bytes)",
        ],
        sizes.iter().map(|m| {
            vec![
                text(&m["module"]),
                thousands(f(&m["cargo_bytes"])),
                thousands(f(&m["shipped_bytes"])),
            ]
        }),
    )
}

fn footprint_summary(footprint: &Value) -> String {
    format!(
        "Machine: {}. {} rounds per configuration (alternated), each a fresh Envoy with {} workers that served {} HTTP requests and {} TCP connections before its memory was read; medians. Bare Envoy: {} KiB resident, ready {:.0} ms after its first log line. The run took {} s.",
        text(&footprint["machine"]),
        footprint["rounds"],
        footprint["concurrency"],
        footprint["requests"],
        footprint["connections"],
        thousands(f(at(footprint, &["bare", "rss_kib"]))),
        f(at(footprint, &["bare", "start_to_ready_ms"])),
        footprint["elapsed_s"],
    )
}

fn footprint_table(footprint: &Value) -> String {
    let modules = footprint["modules"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    markdown(
        &[
            "module",
            "shipped (bytes)",
            "V8 VMs",
            "resident memory per VM (KiB)",
            "read and compiled (ms)",
            "Envoy ready, over bare (ms)",
        ],
        modules.iter().map(|m| {
            vec![
                text(&m["module"]),
                thousands(f(&m["shipped_bytes"])),
                m["vms"].to_string(),
                thousands(f(&m["rss_per_vm_kib"])),
                format!("{:.0}", f(&m["compile_ms"])),
                format!("{:+.0}", f(&m["start_to_ready_over_bare_ms"])),
            ]
        }),
    )
}

fn footprint_total(footprint: &Value) -> String {
    let total = f(&footprint["total_shipped_bytes"]);
    let configmap = f(&footprint["configmap_bytes"]);
    let fits = if total <= configmap {
        "they fit in one ConfigMap together"
    } else {
        "they do not all fit in one ConfigMap"
    };
    format!(
        "The six modules together: {} bytes, {:.0}% of the {} bytes (1 MiB) of one ConfigMap: {fits}.",
        thousands(total),
        100.0 * total / configmap,
        thousands(configmap),
    )
}

/// The chart's bars: each filter and native counterpart against bare Envoy on
/// the same request (baselines and probes are in the table).
fn bars(cpu: &Value) -> Vec<chart::Bar> {
    rows(cpu)
        .iter()
        .filter_map(|r| {
            let name = text(&r["name"]);
            let skip = name.starts_with("probe")
                || name.starts_with("bare")
                || name.starts_with("noop wasm");
            (!skip).then_some(chart::Bar {
                native: name.starts_with("native"),
                ratio: r["ratio_to_bare"].as_f64()?,
                name,
            })
        })
        .collect()
}

mod chart {
    //! A horizontal bar chart drawn by `plotters` as SVG: one labelled bar per
    //! configuration, a line at bare Envoy.
    use plotters::coord::ranged1d::SegmentValue;
    use plotters::prelude::*;

    pub struct Bar {
        pub name: String,
        pub ratio: f64,
        pub native: bool,
    }

    const OURS: RGBColor = RGBColor(0x2b, 0x6c, 0xb0);
    const NATIVE: RGBColor = RGBColor(0x9a, 0xa0, 0xa6);

    pub fn svg(bars: &[Bar]) -> Result<String, String> {
        let mut out = String::new();
        let height = 90 + 26 * bars.len() as u32;
        let widest = bars
            .iter()
            .map(|b| b.name.chars().count())
            .max()
            .unwrap_or(10) as u32;
        let max = bars.iter().map(|b| b.ratio).fold(1.0, f64::max) * 1.1;
        {
            let root = SVGBackend::with_string(&mut out, (980, height)).into_drawing_area();
            let _ = root.fill(&WHITE);
            let drawn = (|| -> Result<(), Box<dyn std::error::Error + '_>> {
                let mut chart = ChartBuilder::on(&root)
                    .caption(
                        "Envoy CPU per request, relative to bare Envoy on the same request",
                        ("sans-serif", 18),
                    )
                    .margin(12)
                    .x_label_area_size(34)
                    .y_label_area_size(widest * 6 + 16)
                    .build_cartesian_2d(0.0..max, (0..bars.len()).into_segmented())?;
                // The first bar at the top, as in the table.
                let slot = |i: usize| bars.len() - 1 - i;
                let names: Vec<&str> = bars.iter().rev().map(|b| b.name.as_str()).collect();
                chart
                    .configure_mesh()
                    .disable_y_mesh()
                    .light_line_style(TRANSPARENT)
                    .y_labels(bars.len())
                    .y_label_formatter(&|v| match v {
                        SegmentValue::CenterOf(i) => {
                            names.get(*i).map_or(String::new(), |n| n.to_string())
                        }
                        _ => String::new(),
                    })
                    .x_desc("× bare Envoy (blue: these filters, grey: Envoy's native filters)")
                    .label_style(("sans-serif", 13))
                    .draw()?;
                chart.draw_series(bars.iter().enumerate().map(|(i, b)| {
                    let color = if b.native { NATIVE } else { OURS };
                    let mut bar = Rectangle::new(
                        [
                            (0.0, SegmentValue::Exact(slot(i))),
                            (b.ratio, SegmentValue::Exact(slot(i) + 1)),
                        ],
                        color.filled(),
                    );
                    bar.set_margin(4, 4, 0, 0);
                    bar
                }))?;
                chart.draw_series(bars.iter().enumerate().map(|(i, b)| {
                    Text::new(
                        format!("{:.2}", b.ratio),
                        (b.ratio + max * 0.01, SegmentValue::CenterOf(slot(i))),
                        ("sans-serif", 12).into_font(),
                    )
                }))?;
                chart.draw_series(std::iter::once(PathElement::new(
                    vec![
                        (1.0, SegmentValue::Exact(0)),
                        (1.0, SegmentValue::Exact(bars.len())),
                    ],
                    BLACK.stroke_width(1),
                )))?;
                root.present()?;
                Ok(())
            })();
            drawn.map_err(|e| format!("chart: {e}"))?;
        }
        Ok(out)
    }
}
