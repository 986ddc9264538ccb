//! End to end against a real cluster (`KUBECONFIG`), the controller in this process against
//! moto: ProtectedSecrets merging into one Secret that lets them keep each other's keys and
//! labels and take out only their own; one refused for want of the Secret's leave writes
//! nothing; and the single field manager of older releases is released once it holds only what
//! the object now applies itself.
//!
//! Run with `tests/run.sh`, which starts a control plane; without a cluster every test fails
//! saying so.

mod support;

use dpo::api::ProtectedSecret;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::cluster::eventually;
use support::moto::Seed;
use support::protected_secrets::{apply_protected_secret, compliant_secret, in_namespace, key, secret_where};

/// A ProtectedSecret merging `key` (and the label `key: merged`) into the Secret `shared`,
/// removing them when it is deleted.
fn merge(secret_id: &str, key: &str) -> Value {
    json!({
        "source": {"secretId": secret_id},
        "target": {
            "name": "shared", "creationPolicy": "Merge", "deletionPolicy": "Delete",
            "labels": {key: "merged"},
        },
        "data": [{"key": key, "property": "password"}],
        "refreshInterval": "10s",
    })
}

/// Whether the label [`merge`] sets for `key` is on `secret`.
fn labelled(secret: &Secret, key: &str) -> bool {
    secret.labels().get(key).map(String::as_str) == Some("merged")
}

/// Creates the Secret `shared` with a key of its own, letting `allowed` merge into it.
async fn shared_secret(client: &kube::Client, namespace: &str, allowed: &str) -> Api<Secret> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let shared = json!({
        "metadata": {"name": "shared", "annotations": {"dpo.dev/allow-merge-from": allowed}},
        "stringData": {"own": "kept"},
    });
    secrets.create(&PostParams::default(), &serde_json::from_value(shared).unwrap()).await.unwrap();
    secrets
}

#[tokio::test]
async fn protected_secrets_merging_into_one_secret_keep_each_others_keys() {
    in_namespace(|client, namespace| async move {
        shared_secret(&client, &namespace, "a, b").await;
        let (a, b) = (compliant_secret(&namespace, "pw-a").await, compliant_secret(&namespace, "pw-b").await);
        apply_protected_secret(&client, &namespace, "a", merge(&a, "a-password")).await;
        apply_protected_secret(&client, &namespace, "b", merge(&b, "b-password")).await;
        // Not named in the annotation: refused, nothing written.
        apply_protected_secret(&client, &namespace, "c", merge(&a, "c-password")).await;
        let all = |s: &Secret| {
            key(s, "own").as_deref() == Some("kept")
                && key(s, "a-password").as_deref() == Some("pw-a")
                && key(s, "b-password").as_deref() == Some("pw-b")
                && labelled(s, "a-password")
                && labelled(s, "b-password")
        };
        secret_where(&client, &namespace, "shared", "both merged keys beside the owner's", all).await;
        let psecs: Api<ProtectedSecret> = Api::namespaced(client.clone(), &namespace);
        let refused = eventually("c refused with MergeNotAllowed", || {
            let psecs = psecs.clone();
            async move {
                let status = psecs.get("c").await.ok()?.status?;
                status.conditions.into_iter().find(|c| c.type_ == "Ready" && c.reason == "MergeNotAllowed")
            }
        })
        .await;
        assert!(refused.message.contains("dpo.dev/allow-merge-from=c"), "{}", refused.message);

        // A refresh of b rewrites b's key only; a's key and the owner's stay.
        Seed::new().await.put_value(&b, &json!({"password": "pw-b2"}).to_string()).await;
        let refreshed = |s: &Secret| {
            key(s, "b-password").as_deref() == Some("pw-b2")
                && key(s, "a-password").as_deref() == Some("pw-a")
                && labelled(s, "a-password")
        };
        let after = secret_where(&client, &namespace, "shared", "b refreshed beside a", refreshed).await;
        assert_eq!(key(&after, "own").as_deref(), Some("kept"));
        assert!(key(&after, "c-password").is_none(), "a refused merge wrote a key");
        assert!(!labelled(&after, "c-password"), "a refused merge wrote a label");

        // Deleting a (Merge + Delete) takes out a's key and label alone.
        psecs.delete("a", &DeleteParams::default()).await.expect("delete a");
        let without_a = |s: &Secret| key(s, "a-password").is_none() && !labelled(s, "a-password");
        let left = secret_where(&client, &namespace, "shared", "a's key and label removed", without_a).await;
        assert_eq!(key(&left, "b-password").as_deref(), Some("pw-b2"));
        assert!(labelled(&left, "b-password"), "{:?}", left.metadata.labels);
        assert_eq!(key(&left, "own").as_deref(), Some("kept"));
    })
    .await;
}

/// Whether the single field manager of older releases still holds fields of `secret`.
fn legacy_manager(secret: &Secret) -> bool {
    secret.metadata.managed_fields.iter().flatten().any(|e| e.manager.as_deref() == Some("dpo"))
}

#[tokio::test]
async fn the_older_releases_manager_of_a_merged_key_is_released_and_the_key_goes_with_its_object() {
    in_namespace(|client, namespace| async move {
        let secrets = shared_secret(&client, &namespace, "a").await;
        // What a release that applied everything as `dpo` left after a's last write there.
        let legacy = json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {
                "name": "shared",
                "labels": {"dpo.dev/managed-by": "dpo", "a-password": "merged"},
                "annotations": {"dpo.dev/protected-secret": "a", "dpo.dev/content-hmac": "00"},
            },
            // `data`, as the operator applies it (stringData would be a field of its own).
            "data": {"a-password": "cHctb2xk"},
        });
        secrets.patch("shared", &PatchParams::apply("dpo").force(), &Patch::Apply(&legacy)).await.unwrap();
        let a = compliant_secret(&namespace, "pw-a").await;
        apply_protected_secret(&client, &namespace, "a", merge(&a, "a-password")).await;
        let taken = |s: &Secret| key(s, "a-password").as_deref() == Some("pw-a") && !legacy_manager(s);
        let synced = secret_where(&client, &namespace, "shared", "a's key, dpo released", taken).await;
        let annotations = synced.annotations();
        assert!(!annotations.contains_key("dpo.dev/protected-secret"), "{annotations:?}");
        assert!(!annotations.contains_key("dpo.dev/content-hmac"), "{annotations:?}");
        assert!(annotations.contains_key("dpo.dev/allow-merge-from"), "{annotations:?}");
        assert!(labelled(&synced, "a-password"));

        // Held by a alone now: its deletion takes its key and label out.
        let psecs: Api<ProtectedSecret> = Api::namespaced(client.clone(), &namespace);
        psecs.delete("a", &DeleteParams::default()).await.expect("delete a");
        let without_a = |s: &Secret| key(s, "a-password").is_none() && !labelled(s, "a-password");
        let left = secret_where(&client, &namespace, "shared", "a's key and label removed", without_a).await;
        assert_eq!(key(&left, "own").as_deref(), Some("kept"));
    })
    .await;
}
