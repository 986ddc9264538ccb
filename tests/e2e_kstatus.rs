//! The kstatus helper the GitOps e2e cases judge live objects with (the library Flux uses),
//! built by `tests/tools/build.sh` like the control plane. Objects carry whole numbers
//! (`metadata.generation`), which kstatus reads as int64.

use serde_json::json;
use std::io::Write;
use std::process::{Command, Stdio};

/// kstatus's answer, `<status> <message>`, for each object.
fn kstatus(objects: &[serde_json::Value]) -> Vec<String> {
    let tools = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tools/build.sh"))
        .output()
        .expect("run tests/tools/build.sh");
    assert!(tools.status.success(), "tests/tools/build.sh: {}", String::from_utf8_lossy(&tools.stderr));
    let bin = format!("{}/kstatus", String::from_utf8_lossy(&tools.stdout).trim());
    let mut child = Command::new(bin)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for object in objects {
        writeln!(stdin, "{object}").unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "kstatus: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect()
}

fn protected_secret(generation: i64, observed: i64) -> serde_json::Value {
    json!({
        "apiVersion": "dpo.dev/v1alpha1", "kind": "ProtectedSecret",
        "metadata": {"name": "db", "namespace": "shop", "generation": generation},
        "status": {"observedGeneration": observed, "conditions": [
            {"type": "Ready", "status": "True", "reason": "Synced", "message": "synced",
             "observedGeneration": observed},
        ]},
    })
}

#[test]
fn kstatus_judges_objects_with_a_generation() {
    let judged = kstatus(&[protected_secret(2, 2), protected_secret(2, 1)]);
    assert_eq!(judged[0], "Current Resource is Ready");
    assert_eq!(judged[1], "InProgress ProtectedSecret generation is 2, but latest observed generation is 1");
}
