//! The Argo CD health checks in deploy/argocd/argocd-cm-health.yaml, run in a Lua 5.4
//! interpreter against objects as the operator writes them.

mod support;

use serde_json::{Value, json};
use support::gitops::{argo_health, health_script as script, health_scripts as scripts};

const KINDS: [&str; 3] = ["ProtectedSecret", "EncryptedVolumePolicy", "TlsIngressPolicy"];

fn health(obj: Value) -> (String, String) {
    argo_health(&obj)
}

fn object(kind: &str, generation: i64, status: Value) -> Value {
    json!({
        "apiVersion": "dpo.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": "x", "generation": generation},
        "status": status,
    })
}

fn condition(type_: &str, status: &str, reason: &str, message: &str, generation: i64) -> Value {
    json!({"type": type_, "status": status, "reason": reason, "message": message, "observedGeneration": generation,
           "lastTransitionTime": "2026-01-01T00:00:00Z"})
}

#[test]
fn every_kind_has_the_same_check() {
    let scripts = scripts();
    assert_eq!(scripts.len(), KINDS.len());
    let first = script(KINDS[0]);
    assert!(KINDS.iter().all(|kind| script(kind) == first));
}

#[test]
fn ready_for_the_current_generation_is_healthy() {
    for kind in KINDS {
        let obj = object(
            kind,
            3,
            json!({
                "observedGeneration": 3,
                "conditions": [condition("Ready", "True", "Synced", "synced version v7", 3), condition("Reconciling", "False", "Idle", "", 3)],
            }),
        );
        assert_eq!(health(obj), ("Healthy".into(), "synced version v7".into()), "{kind}");
    }
}

#[test]
fn not_ready_is_degraded_with_the_reason_and_message() {
    let obj = object(
        "ProtectedSecret",
        2,
        json!({
            "observedGeneration": 2,
            "conditions": [condition("Ready", "False", "AccessNotAllowed", "namespace shop may not read payments/db", 2)],
        }),
    );
    assert_eq!(
        health(obj),
        ("Degraded".into(), "AccessNotAllowed: namespace shop may not read payments/db".into())
    );
}

#[test]
fn no_status_a_stale_generation_or_reconciling_is_progressing() {
    let cases = [
        json!({"apiVersion": "dpo.dev/v1alpha1", "kind": "TlsIngressPolicy", "metadata": {"name": "x", "generation": 1}}),
        object("TlsIngressPolicy", 1, json!({})),
        // The spec changed (generation 4) since the Ready=True the operator wrote for 3.
        object(
            "EncryptedVolumePolicy",
            4,
            json!({
                "observedGeneration": 3,
                "conditions": [condition("Ready", "True", "Compliant", "", 3)],
            }),
        ),
        // A status written by hand or by an older operator: conditions of an older generation.
        object(
            "EncryptedVolumePolicy",
            4,
            json!({
                "observedGeneration": 4,
                "conditions": [condition("Ready", "False", "Violations", "2 high", 3)],
            }),
        ),
        object(
            "ProtectedSecret",
            1,
            json!({
                "observedGeneration": 1,
                "conditions": [condition("Ready", "False", "Pending", "", 1), condition("Reconciling", "True", "Syncing", "reading prod/db", 1)],
            }),
        ),
        object(
            "ProtectedSecret",
            1,
            json!({
                "observedGeneration": 1,
                "conditions": [condition("Ready", "Unknown", "Starting", "", 1)],
            }),
        ),
    ];
    for obj in cases {
        let (status, message) = health(obj.clone());
        assert_eq!(status, "Progressing", "{obj}: {message}");
        assert!(!message.is_empty(), "{obj}");
    }
}
