//! The `l7-policy-import` command on the demo's policy and on bad input.

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
