//! The cost of a regex is bounded when the rules load: a pattern whose
//! estimated RE2 program is over `max_regex_program_size`, or whose match
//! may step through more than `max_regex_cost` NFA states per char, refuses
//! the configuration, naming the rule, the estimate and the limit. The rules
//! `tap policy suggest` writes, at their largest, load with the defaults.
//! tests/re2_oracle.rs checks the size estimate against RE2's own.

// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use filter_common::predicate::re2::check;
use filter_common::predicate::RegexLimits;

const DEFAULT: RegexLimits = RegexLimits::DEFAULT;
use filter_common::host::harness::Harness;
use l7_policy::config::Config;
use serde_json::json;

/// A pathological rule: 998 chars, every count under 1000, which
/// loaded in 1.6 s and then cost Envoy 29 s of CPU on one 30 KB path.
fn pathological() -> String {
    format!("/api/{}x", "(?:[^/]{0,999})?".repeat(62))
}

fn refusal(config: &serde_json::Value) -> String {
    Config::parse(Some(config.to_string().as_bytes()))
        .unwrap_err()
        .to_string()
}

fn loads(config: &serde_json::Value) -> bool {
    Config::parse(Some(config.to_string().as_bytes())).is_ok()
}

/// Through the proxy-wasm shell, as Envoy configures it: the plugin refuses
/// its configuration at once (before regex-lite compiles the pattern, which
/// alone took seconds) and logs the rule, the estimate and the limit.
#[test]
fn a_pathological_regex_is_refused_at_load() {
    let p = pathological();
    assert!(p.len() < 1024 && p.len() > 990, "{}", p.len());
    let config =
        json!({"rules": [{"method": "GET", "path": "/health"}, {"method": "GET", "path": p}]});
    let started = std::time::Instant::now();
    let logs = match Harness::configure(l7_policy::filter::configure, &config.to_string()) {
        Ok(_) => panic!("the pathological regex loaded"),
        Err(logs) => format!("{logs:?}"),
    };
    println!("refused in {:?}: {logs}", started.elapsed());
    for part in [
        "rules[1].path",
        "instructions (RE2 program size), over the limit of 16384",
        "max_regex_program_size",
    ] {
        assert!(logs.contains(part), "{part:?} not in {logs}");
    }
}

#[test]
fn the_refusal_names_the_rule_the_estimate_and_the_limit() {
    // Loops over the same chars, one after the other: every one may be
    // active at every char of the path.
    let costly = format!("/api/{}", "[^/]*".repeat(40));
    let e = refusal(&json!({"rules": [{"path": "/a"}, {"path": costly}]}));
    assert!(e.contains("field `rules[1].path`"), "{e}");
    assert!(e.contains("costs too much to match: up to"), "{e}");
    assert!(
        e.contains(&format!("over the limit of {}", DEFAULT.cost)),
        "{e}"
    );
    assert!(e.contains("max_regex_cost"), "{e}");
    assert!(e.contains("[^/]+/"), "the fix: {e}");
    // The same in host, method and from.principal.regex.
    for rule in [
        json!({"host": format!("{}\\.example\\.com", "[^.]*".repeat(40))}),
        json!({"method": "[A-Z]*".repeat(100)}),
        json!({"from": {"principal": {"regex": format!("spiffe://{}", ".*".repeat(30))}}}),
    ] {
        let e = refusal(&json!({"rules": [rule]}));
        assert!(
            e.contains(&format!("over the limit of {}", DEFAULT.cost)),
            "{e}"
        );
    }
}

#[test]
fn the_limits_are_configurable() {
    // The costliest rule of its kind the default admits.
    let a = (1..200)
        .take_while(|n| {
            check(&format!("/api/.*{}", "a".repeat(*n)), false)
                .unwrap()
                .cost
                <= DEFAULT.cost
        })
        .last()
        .unwrap();
    let rule = json!([{"path": format!("/api/.*{}", "a".repeat(a))}]);
    let cost = check(rule[0]["path"].as_str().unwrap(), false)
        .unwrap()
        .cost;
    assert!(cost > DEFAULT.cost / 2 && cost <= DEFAULT.cost, "{cost}");
    assert!(loads(&json!({"rules": rule})));
    let e = refusal(&json!({"rules": rule, "max_regex_cost": 16}));
    assert!(e.contains("over the limit of 16"), "{e}");
    let longer = json!([{"path": format!("/api/.*{}", "a".repeat(a + 1))}]);
    assert!(!loads(&json!({"rules": longer})));
    assert!(loads(&json!({"rules": longer, "max_regex_cost": 64})));
    let e = refusal(&json!({"rules": rule, "max_regex_program_size": 40}));
    assert!(e.contains("over the limit of 40"), "{e}");
    assert!(e.contains("max_regex_program_size"), "{e}");
    // The pathological regex is over the largest limits that can be set.
    let wide = json!({"rules": [{"path": pathological()}], "max_regex_program_size": 1_048_576, "max_regex_cost": 65_536});
    let e = refusal(&wide);
    assert!(e.contains("over the limit of 1048576"), "{e}");
}

#[test]
fn the_limit_fields_are_validated_like_the_others() {
    let rules = json!([{"path": "/a"}]);
    for (field, value, problem) in [
        ("max_regex_cost", json!(0), "0 is out of range"),
        ("max_regex_cost", json!(65_537), "65537 is out of range"),
        ("max_regex_program_size", json!(0), "0 is out of range"),
        (
            "max_regex_program_size",
            json!(1_048_577),
            "1048577 is out of range",
        ),
        ("max_regex_program_size", json!("100"), ""),
        ("max_regex_cost", json!(-1), ""),
        ("max_regex_cost", json!(1.5), ""),
    ] {
        let e = refusal(&json!({"rules": rules, field: value}));
        assert!(e.contains(&format!("field `{field}`")), "{e}");
        assert!(e.contains(problem), "{e}");
    }
    // Limits of 1 refuse every regex but the empty one.
    assert!(!loads(
        &json!({"rules": rules, "max_regex_cost": 1, "max_regex_program_size": 1})
    ));
    assert!(loads(
        &json!({"rules": rules, "max_regex_cost": 65_536, "max_regex_program_size": 1_048_576})
    ));
    // A field twice, or one with a typo, is refused as every other.
    let twice = r#"{"rules": [], "max_regex_cost": 10, "max_regex_cost": 20}"#;
    let e = Config::parse(Some(twice.as_bytes()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("max_regex_cost"), "{e}");
    let e = refusal(&json!({"rules": [], "max_regex_costs": 10}));
    assert!(e.contains("max_regex_costs"), "{e}");
}

/// What `tap policy suggest` writes (tools/tap/src/segment.rs and
/// query.rs): literal segments, `[0-9]+`, the UUID class, `[^/?]+`, a
/// class of the chars seen, and the query names seen, as an alternation
/// written twice, listed while within l7_policy's 1024-char regex limit
/// and default limits (tests/re2_oracle.rs takes suggest's own output).
pub fn suggested() -> Vec<(String, bool)> {
    let query = |names: &[String]| {
        let parameter = format!("(?:{})(?:=[^&]*)?", names.join("|"));
        format!("(?:\\?{parameter}(?:&{parameter})*)?")
    };
    // Names are listed while the rule stays within 1024 chars and the
    // default limits, as suggest lists them (tools/tap/src/suggest.rs).
    let fill = |path: &str, names: &mut dyn Iterator<Item = String>| {
        let mut taken: Vec<String> = Vec::new();
        for n in names {
            taken.push(n);
            let p = format!("{path}{}", query(&taken));
            let within = p.len() <= 1024
                && check(&p, false)
                    .is_ok_and(|s| s.cost <= DEFAULT.cost && s.size <= DEFAULT.program_size);
            if !within {
                taken.pop();
                break;
            }
        }
        format!("{path}{}", query(&taken))
    };
    let letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let one = letters.chars().map(String::from);
    let two = letters
        .chars()
        .flat_map(|a| letters.chars().map(move |b| format!("{a}{b}")));
    let mixed = one.clone().chain(two.clone());
    let words = (0..1000).map(|i| format!("param{i}"));
    let uuid = "[0-9a-fA-F-]{36}";
    let mut out = vec![
        (fill("/api/v1/items", &mut one.clone()), false),
        (fill("/api/v1/items", &mut two.clone()), false),
        (fill("/a", &mut mixed.clone()), false),
        (fill("/api/v1/items", &mut words.clone()), false),
        (
            fill(
                "/api/v1/items",
                &mut [String::from("[^&=]+")].into_iter().chain(words.clone()),
            ),
            false,
        ),
        (format!("/x/{uuid}").repeat(1024 / 19), false),
        ("/[^/?]+".repeat(1024 / 7), false),
        ("/[0-9]+".repeat(1024 / 7), false),
        ("/[a-zA-Z0-9_.~-]+".repeat(1024 / 18), false),
        (
            format!("/api/v1/orgs/{uuid}/spaces/{uuid}/apps/{uuid}/[a-z0-9-]+(?:\\?[^#]*)?"),
            false,
        ),
        ("/v1/users/[0-9]+/orders/[^/?]+(?:\\?[^#]*)?".into(), false),
        ("/static/.*".into(), false),
        ("[^.]+\\.tenants\\.example\\.com".into(), true),
        ("[^@]+@api\\.example\\.com".into(), true),
        ("GET".into(), false),
        ("GET|HEAD".into(), false),
    ];
    out.push((format!("{}[^.]+", "[^.]+\\.".repeat(60)), true));
    out
}

#[test]
fn what_tap_policy_suggest_writes_loads() {
    for (p, fold) in suggested() {
        assert!(p.len() <= 1024, "{}", p.len());
        let scan = check(&p, fold).unwrap();
        println!(
            "size {:6} cost {:4} {}",
            scan.size,
            scan.cost,
            &p[..p.len().min(70)]
        );
        let rule = if fold {
            json!({"host": p})
        } else {
            json!({"path": p, "method": "GET|HEAD"})
        };
        let config = json!({"rules": [rule]});
        assert!(loads(&config), "{}", refusal(&config));
    }
}

/// The rules of the examples, the manifests, the benchmark and the other
/// tests load with room to spare.
#[test]
fn the_shipped_rules_load() {
    for p in [
        "/v1/request-landing",
        "/.*",
        "/public/.*",
        "/admin/.*",
        "/api/v1/users/[0-9]+",
        "/api/v1/service999/[a-z0-9]+",
        "/api\\b.*",
        "spiffe://cluster\\.local/ns/ops/sa/.*",
    ] {
        let scan = check(p, false).unwrap();
        assert!(scan.size <= 64 && scan.cost <= 8, "{p}: {scan:?}");
    }
}
