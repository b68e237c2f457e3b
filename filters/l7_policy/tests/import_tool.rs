//! The `l7-policy-import` command on the demo's policy and on bad input.

// A test fails by panicking: unwrap, expect, panic and indexing are how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use std::process::Command;

fn run(file: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_l7-policy-import"))
        .arg(file)
        .output()
        .expect("run l7-policy-import")
}

#[test]
fn imports_the_star_wars_policy() {
    let root = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/l7_policy/sw-l7-policy.yaml"
    );
    let out = run(root);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        config,
        serde_json::json!({"rules": [{"method": "POST", "path": "/v1/request-landing", "from": {"labels": {"org": "empire"}}}]})
    );
    // org=empire is the caller's claim: the tool says so, and shows the
    // principal and the principals-table forms, each valid configuration.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "warning: spec.ingress[0].fromEndpoints[0]: matchLabels {\"org\":\"empire\"}"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("any pod in the namespace can claim them"),
        "{stderr}"
    );
    let form = |prefix: &str| -> serde_json::Value {
        let line = stderr
            .lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in {stderr}"));
        serde_json::from_str(line).expect("JSON")
    };
    let principal = "spiffe://cluster.local/ns/<namespace>/sa/<service account>";
    assert_eq!(
        form("\"from\": "),
        serde_json::json!({"principal": {"exact": principal}})
    );
    let table = form("\"principals\": ");
    assert_eq!(
        table,
        serde_json::json!({principal: {"labels": {"org": "empire"}}})
    );
    let mut with_table = config.clone();
    with_table["principals"] = table;
    let loaded = l7_policy::config::Config::parse(Some(with_table.to_string().as_bytes()));
    assert!(loaded.is_ok(), "{:?}", loaded.err());
}

#[test]
fn no_warning_without_label_selectors() {
    let dir = std::env::temp_dir().join(format!("l7-import-ns-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("ns.yaml");
    std::fs::write(
        &file,
        "metadata:\n  namespace: shop\nspec:\n  ingress:\n  - fromEndpoints:\n    - matchLabels:\n        k8s:io.kubernetes.pod.namespace: shop\n    toPorts:\n    - rules:\n        http:\n        - method: GET\n  - fromEndpoints:\n    - matchLabels:\n        app: cart\n    toPorts:\n    - rules:\n        http:\n        - method: POST\n",
    )
    .unwrap();
    let out = run(file.to_str().unwrap());
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("ingress[0]"), "{stderr}");
    assert!(
        stderr.contains("spec.ingress[1].fromEndpoints[0]")
            && stderr.contains("spiffe://cluster.local/ns/shop/sa/<service account>"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn says_what_cannot_be_imported() {
    let dir = std::env::temp_dir().join(format!("l7-import-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cidr = dir.join("cidr.yaml");
    std::fs::write(&cidr, "spec:\n  ingress:\n  - fromCIDR: [10.0.0.0/8]\n").unwrap();
    let out = run(cidr.to_str().unwrap());
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("spec.ingress[0].fromCIDR"));
    let broken = dir.join("broken.yaml");
    std::fs::write(&broken, "spec: [unclosed\n").unwrap();
    assert!(String::from_utf8_lossy(&run(broken.to_str().unwrap()).stderr).contains("not YAML"));
    assert_eq!(
        run(dir.join("missing.yaml").to_str().unwrap())
            .status
            .code(),
        Some(1)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
