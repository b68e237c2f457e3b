//! `l7-policy-import policy.yaml`: prints the l7_policy plugin configuration
//! (JSON) for a CiliumNetworkPolicy, or says which part cannot be carried over.

// A host tool: on the wasm target (where the filter library is built) it is empty.
#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    let Some(file) = std::env::args().nth(1) else {
        eprintln!("usage: l7-policy-import <CiliumNetworkPolicy.yaml>");
        std::process::exit(2);
    };
    let text = match std::fs::read_to_string(&file) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("{file}: {e}");
            std::process::exit(1);
        }
    };
    let policy: serde_json::Value = match serde_yaml::from_str(&text) {
        Ok(value) => value,
        Err(e) => {
            eprintln!("{file}: not YAML: {e}");
            std::process::exit(1);
        }
    };
    match l7_policy::cilium::import(&policy) {
        Ok((config, warnings)) => {
            for warning in warnings {
                eprintln!("{file}: warning: {warning}");
            }
            println!("{config}");
        }
        Err(e) => {
            eprintln!("{file}: {e}");
            std::process::exit(1);
        }
    }
}
