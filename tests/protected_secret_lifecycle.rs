//! The reconciler against the fake API server and moto at the edges of a ProtectedSecret's
//! life: what it may not ask for (refused in status, naming what to change, nothing written),
//! its deletion seen more than once, its retained Secret taken back when it is created again, the
//! refresh of one that sets no interval, and a reconcile of a copy the watch has not yet updated.

mod support;

use dpo::controller::{ControllerConfig, protected_secret};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use support::apiserver::{protected_secret_path, secret_path};
use support::controller::{Harness, NAMESPACE};
use support::moto::{self, Seed};

#[tokio::test]
async fn a_secret_type_outside_the_allowed_ones_is_refused_before_any_aws_call() {
    let h = Harness::new(moto::facts(moto::test_settings()).await);
    for (name, type_) in [("custom", "example.com/custom"), ("token", "kubernetes.io/service-account-token")]
    {
        let spec = json!({
            "source": {"secretId": "team/db"},
            "target": {"type": type_},
            "dataFrom": {"extract": true},
        });
        h.create(name, spec);
        h.reconcile(name).await.unwrap();
        let (status, reason, message) = h.ready(name);
        assert_eq!((status.as_str(), reason.as_str()), ("False", "TargetTypeNotAllowed"), "{message}");
        assert!(
            message.contains("spec.target.type") && message.contains("--allowed-secret-types"),
            "{message}"
        );
        assert!(h.api.get(&secret_path(NAMESPACE, name)).is_none(), "{name}: a Secret was written");
    }
    assert_eq!(h.ctx.aws.metrics().total(), 0);
}

#[tokio::test]
async fn an_extracted_property_that_cannot_be_a_secret_key_is_named_and_nothing_is_written() {
    let value = json!({"user": "app", "db password": "canary-7f3a"});
    let secret_id = Seed::new().await.compliant_secret(NAMESPACE, &value).await;
    let h = Harness::new(moto::facts(moto::test_settings()).await);
    h.create("db", json!({"source": {"secretId": secret_id}, "dataFrom": {"extract": true}}));
    h.reconcile("db").await.unwrap();
    let (status, reason, message) = h.ready("db");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "InvalidSecretKey"), "{message}");
    assert!(message.contains("spec.dataFrom.extract") && message.contains("\"db password\""), "{message}");
    assert!(!message.contains("canary-7f3a"), "{message}");
    assert!(h.api.get(&secret_path(NAMESPACE, "db")).is_none(), "a Secret was written");
}

#[tokio::test]
async fn a_deletion_reconciled_again_after_the_object_is_gone_is_done_not_failed() {
    let secret_id = Seed::new().await.compliant_secret(NAMESPACE, &json!({"password": "pw"})).await;
    let h = Harness::new(moto::facts(moto::test_settings()).await);
    let target = json!({"creationPolicy": "Orphan", "deletionPolicy": "Delete"});
    h.create(
        "db",
        json!({"source": {"secretId": secret_id}, "dataFrom": {"extract": true}, "target": target}),
    );
    h.reconcile("db").await.unwrap();
    let path = protected_secret_path(NAMESPACE, "db");
    let mut object = h.api.get(&path).unwrap();
    object["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    h.api.put(&path, object);
    // The watch may hand the same deleting object over twice: the second copy still shows the
    // finalizer the first reconcile removed, after which the apiserver let the object go.
    let stale = Arc::new(h.object("db"));
    h.reconcile("db").await.unwrap();
    h.api.remove(&path);
    let again = protected_secret::reconcile(stale, h.ctx.clone()).await;
    assert!(again.is_ok(), "{again:?}");
}

#[tokio::test]
async fn a_rollout_is_restarted_through_restart_at_and_a_paused_deployment_is_refused() {
    let seed = Seed::new().await;
    let secret_id = seed.compliant_secret(NAMESPACE, &json!({"password": "pw-1"})).await;
    let mut settings = moto::test_settings();
    // The rotation below is seen by the next reconcile, not after a cache lifetime.
    settings.cache.secret_metadata_ttl = std::time::Duration::ZERO;
    let h = Harness::new(moto::facts(settings).await);
    let workloads = json!([{"kind": "Deployment", "name": "shop"}, {"kind": "Rollout", "name": "web"}]);
    h.create("db", json!({"source": {"secretId": secret_id}, "dataFrom": {"extract": true}, "rolloutRestart": workloads}));
    let deployment = "/apis/apps/v1/namespaces/team/deployments/shop";
    let rollout = "/apis/argoproj.io/v1alpha1/namespaces/team/rollouts/web";
    h.api.put(deployment, json!({"metadata": {"name": "shop"}, "spec": {"paused": true}}));
    h.api.put(
        rollout,
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": "web"}}),
    );
    h.reconcile("db").await.unwrap();

    seed.put_value(&secret_id, &json!({"password": "pw-2"}).to_string()).await;
    h.api.clear_calls();
    h.restarted().reconcile("db").await.unwrap();
    let restarted = h.api.writes().into_iter().find(|c| c.path == rollout).expect("the Rollout restarted");
    assert!(restarted.body["spec"]["restartAt"].is_string(), "{}", restarted.body);
    assert!(h.api.writes().iter().all(|c| c.path != deployment), "the paused Deployment was patched");
    let (status, reason, message) = h.ready("db");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "RolloutRestartPaused"), "{message}");
    assert!(
        message.contains("Deployment/shop is paused") && message.contains("kubectl rollout resume"),
        "{message}"
    );
    assert_eq!(h.condition("db", "Synced").0, "True", "the Secret holds the new version");
}

#[tokio::test]
async fn a_retained_secret_is_taken_back_and_its_earlier_manager_released() {
    let secret_id = Seed::new().await.compliant_secret(NAMESPACE, &json!({"password": "pw"})).await;
    let h = Harness::new(moto::facts(moto::test_settings()).await);
    let path = secret_path(NAMESPACE, "db");
    // As a ProtectedSecret `db` deleted with Retain left it: our label and owner annotation, its
    // owner reference dropped, its fields still its own manager's.
    let fields = json!({"f:data": {"f:password": {}, "f:username": {}}});
    h.api.put(
        &path,
        json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {
                "name": "db", "namespace": NAMESPACE,
                "labels": {"dpo.dev/managed-by": "dpo"},
                "annotations": {"dpo.dev/protected-secret": "db"},
                "managedFields": [{"manager": "dpo/uid-old", "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": fields}],
            },
            "data": {"password": "b2xk", "username": "YXBw"},
        }),
    );
    h.create(
        "db",
        json!({"source": {"secretId": secret_id}, "data": [{"key": "password", "property": "password"}]}),
    );
    h.reconcile("db").await.unwrap();

    let (status, reason, message) = h.ready("db");
    assert_eq!((status.as_str(), reason.as_str()), ("True", "Synced"), "{message}");
    let writes: Vec<_> = h.api.writes().into_iter().filter(|c| c.path == path).collect();
    let [apply, release] = writes.as_slice() else { panic!("an apply and a release: {writes:#?}") };
    assert!(apply.query.contains("fieldManager=dpo%2Fuid-db"), "{}", apply.query);
    let owner = &apply.body["metadata"]["ownerReferences"][0];
    assert_eq!((owner["uid"].as_str(), owner["controller"].as_bool()), (Some("uid-db"), Some(true)));
    assert!(apply.body["data"]["password"].is_string(), "{}", apply.body);
    // The earlier manager applies nothing: what only it held (username) leaves the Secret.
    assert!(release.query.contains("fieldManager=dpo%2Fuid-old"), "{}", release.query);
    assert!(release.content_type.contains("apply-patch") && release.query.contains("force=true"));
    assert_eq!(release.body["data"], serde_json::Value::Null, "{}", release.body);
    assert_eq!(release.body["metadata"].as_object().map(|m| m.len()), Some(2), "{}", release.body);
}

#[tokio::test]
async fn an_object_that_sets_no_refresh_interval_refreshes_at_the_default_refresh() {
    let seed = Seed::new().await;
    let secret_id = seed.compliant_secret(NAMESPACE, &json!({"password": "one"})).await;
    let mut settings = moto::test_settings();
    settings.cache.secret_metadata_ttl = Duration::ZERO;
    let default_refresh = Duration::from_millis(500);
    let config = ControllerConfig { default_refresh, ..ControllerConfig::default() };
    let h = Harness::with_config(moto::facts(settings).await, config);
    h.create(
        "db",
        json!({"source": {"secretId": secret_id}, "data": [{"key": "password", "property": "password"}]}),
    );
    h.reconcile("db").await.unwrap();

    let second = seed.put_value(&secret_id, &json!({"password": "two"}).to_string()).await;
    // Past the default refresh and its jitter.
    tokio::time::sleep(default_refresh.mul_f64(1.2)).await;
    h.reconcile("db").await.unwrap();
    let synced = h.object("db").status.and_then(|s| s.synced_version_id);
    assert_eq!(synced.as_deref(), Some(second.as_str()), "the refresh was due after the default refresh");
}

#[tokio::test]
async fn a_reconcile_of_a_copy_older_than_its_status_keeps_what_the_policy_said() {
    let secret_id = Seed::new().await.compliant_secret(NAMESPACE, &json!({"password": "pw"})).await;
    let h = Harness::new(moto::facts(moto::test_settings()).await);
    h.create(
        "db",
        json!({"source": {"secretId": secret_id}, "data": [{"key": "password", "property": "password"}]}),
    );
    // What the watch may still hand out after the first sync's writes: the object without status.
    let stale = h.object("db");
    h.reconcile("db").await.unwrap();
    let compliant = h.condition("db", "Compliant");
    assert_eq!(compliant.0, "True", "{compliant:?}");

    protected_secret::reconcile(Arc::new(stale), h.ctx.clone()).await.unwrap();
    assert_eq!(h.condition("db", "Compliant"), compliant, "the refresh is not due: the verdict stands");
}
