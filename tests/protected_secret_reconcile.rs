//! The ProtectedSecret reconciler against a fake API server (kube's mock service) and moto:
//! the exact writes it makes, and the ones it must not make; and the whole controller's
//! watches, with and without `--secret-namespaces`.

mod support;

use dpo::aws::AwsFacts;
use dpo::controller::runtime::Shutdown;
use dpo::controller::{Context, ControllerConfig, protected_secret};
use dpo::server::Readiness;
use k8s_openapi::api::core::v1::Secret;
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;
use support::apiserver::{Call, FakeApiserver, protected_secret_path, secret_path};
use support::controller::{Harness, NAMESPACE};
use support::moto::{self, Key, Seed};

const VALUE: &str = r#"{"username":"app","password":"pw-1","db":{"port":5432}}"#;

/// A compliant AWS secret: customer-managed key with rotation on. Returns (name, key).
async fn compliant_secret(seed: &Seed) -> (String, Key) {
    let key = seed.key().await;
    seed.enable_rotation(&key).await;
    let name = moto::unique("team/db");
    seed.secret(&name, VALUE, Some(&key.arn)).await;
    (name, key)
}

fn spec(secret_id: &str) -> Value {
    json!({
        "source": {"secretId": secret_id},
        "data": [{"key": "password", "property": "password"}, {"key": "port", "property": "db.port"}],
        "template": {"data": {"DSN": "postgres://{{ username }}:{{ password }}@db/shop"}},
    })
}

/// Metadata and key facts never go stale in these tests, so a due refresh sees a rotation at once.
async fn fresh_facts() -> AwsFacts {
    let mut settings = moto::test_settings();
    settings.cache.secret_metadata_ttl = std::time::Duration::ZERO;
    settings.cache.kms_key_ttl = std::time::Duration::ZERO;
    moto::facts(settings).await
}

fn secret_writes(calls: &[Call], name: &str) -> Vec<Call> {
    let path = secret_path(NAMESPACE, name);
    calls.iter().filter(|c| c.path == path && c.is_write()).cloned().collect()
}

fn data(api: &support::apiserver::FakeApiserver, name: &str) -> std::collections::BTreeMap<String, String> {
    let secret: Secret = api.object(&secret_path(NAMESPACE, name));
    secret.data.unwrap_or_default().into_iter().map(|(k, v)| (k, String::from_utf8(v.0).unwrap())).collect()
}

#[tokio::test]
async fn first_sync_applies_an_owned_secret_and_a_steady_refresh_writes_nothing() {
    let seed = Seed::new().await;
    let (secret_id, _) = compliant_secret(&seed).await;
    let h = Harness::new(fresh_facts().await);
    h.create("db", spec(&secret_id));

    h.reconcile("db").await.expect("reconcile");
    let writes = h.api.writes();
    let secret_apply = &secret_writes(&writes, "db")[0];
    assert_eq!(secret_writes(&writes, "db").len(), 1, "{writes:#?}");
    assert_eq!(secret_apply.method, "PATCH");
    assert!(secret_apply.content_type.contains("apply-patch"), "server-side apply");
    // Its own field manager, dpo/<uid>.
    assert!(secret_apply.query.contains("fieldManager=dpo%2Fuid-db"), "{}", secret_apply.query);
    assert!(secret_apply.query.contains("force=true"));
    let owner = &secret_apply.body["metadata"]["ownerReferences"][0];
    assert_eq!(
        (owner["kind"].as_str(), owner["uid"].as_str(), owner["controller"].as_bool()),
        (Some("ProtectedSecret"), Some("uid-db"), Some(true))
    );
    assert_eq!(secret_apply.body["metadata"]["labels"]["dpo.dev/managed-by"], "dpo");
    assert_eq!(secret_apply.body["type"], "Opaque");
    let hmac = secret_apply.body["metadata"]["annotations"]["dpo.dev/content-hmac"].as_str().unwrap();
    assert_eq!(hmac.len(), 64);
    assert_eq!(
        data(&h.api, "db"),
        [("DSN", "postgres://app:pw-1@db/shop"), ("password", "pw-1"), ("port", "5432")]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .into()
    );
    // Owner + Retain (the default) holds a finalizer: deletion must drop the owner reference.
    let finalizer =
        writes.iter().find(|c| c.path.ends_with("/protectedsecrets/db")).expect("finalizer patch");
    assert_eq!(finalizer.body["metadata"]["finalizers"], json!(["dpo.dev/protected-secret"]));
    let status =
        writes.iter().find(|c| c.path.ends_with("/protectedsecrets/db/status")).expect("status patch");
    assert!(status.content_type.contains("apply-patch"));
    assert_eq!(h.ready("db").0, "True");
    assert_eq!(h.condition("db", "Compliant").0, "True", "{:?}", h.condition("db", "Compliant"));
    let ps = h.object("db");
    let status = ps.status.unwrap();
    assert_eq!(status.observed_generation, Some(1));
    assert_eq!(status.secret_ref.unwrap().name, "db");
    assert!(status.synced_version_id.is_some());
    assert!(status.conditions.iter().all(|c| c.observed_generation == Some(1)));
    assert!(status.conditions.iter().all(|c| c.type_ != "Reconciling"), "done: no Reconciling condition");
    assert_eq!(h.api.events().len(), 1, "one Synced event");
    assert_eq!(h.api.events()[0]["reason"], "Synced");

    // Steady state: before the refresh is due, and when it is due but nothing changed.
    h.api.clear_calls();
    let before = h.ctx.aws.metrics().total();
    h.reconcile("db").await.expect("steady reconcile");
    assert!(h.api.writes().is_empty(), "{:#?}", h.api.writes());
    assert_eq!(h.ctx.aws.metrics().total(), before, "no AWS call before the refresh is due");
    let due = h.restarted();
    due.reconcile("db").await.expect("due refresh");
    assert!(
        h.api.writes().is_empty(),
        "a refresh that finds nothing new writes nothing: {:#?}",
        h.api.writes()
    );
    assert_eq!(
        h.ctx.aws.metrics().count("secretsmanager", "GetSecretValue")
            + h.ctx.aws.metrics().count("secretsmanager", "BatchGetSecretValue"),
        1,
        "the value of a known version is never read again"
    );
    assert_eq!(h.ctx.protected_secrets.metrics.syncs(), 1);
}

#[tokio::test]
async fn a_rotation_updates_the_secret_and_restarts_consumers() {
    let seed = Seed::new().await;
    let (secret_id, _) = compliant_secret(&seed).await;
    let h = Harness::new(fresh_facts().await);
    let mut spec = spec(&secret_id);
    spec["rolloutRestart"] = json!([{"kind": "Deployment", "name": "shop"}]);
    h.create("db", spec);
    h.api.put("/apis/apps/v1/namespaces/team/deployments/shop", json!({"metadata": {"name": "shop"}}));
    h.reconcile("db").await.unwrap();
    let first = h.object("db").status.unwrap().synced_version_id.unwrap();
    assert!(h.api.writes().iter().all(|c| !c.path.contains("deployments")), "no restart on the first sync");

    let second =
        seed.put_value(&secret_id, r#"{"username":"app","password":"pw-2","db":{"port":5432}}"#).await;
    h.api.clear_calls();
    h.restarted().reconcile("db").await.unwrap();
    assert_ne!(first, second);
    assert_eq!(h.object("db").status.unwrap().synced_version_id.as_deref(), Some(second.as_str()));
    assert_eq!(data(&h.api, "db")["password"], "pw-2");
    let restart =
        h.api.writes().into_iter().find(|c| c.path.ends_with("/deployments/shop")).expect("restart");
    assert!(restart.body["spec"]["template"]["metadata"]["annotations"]["dpo.dev/restartedAt"].is_string());
    let reasons: Vec<Value> = h.api.events().into_iter().map(|e| e["reason"].clone()).collect();
    assert_eq!(reasons, [json!("Synced")], "a new version after a restart is an update, not drift");
}

#[tokio::test]
async fn drift_is_repaired_from_the_cache_without_aws() {
    let seed = Seed::new().await;
    let (secret_id, _) = compliant_secret(&seed).await;
    let h = Harness::new(fresh_facts().await);
    h.create("db", spec(&secret_id));
    h.reconcile("db").await.unwrap();
    let path = secret_path(NAMESPACE, "db");
    let calls = h.ctx.aws.metrics().total();

    let mut edited = h.api.get(&path).unwrap();
    edited["data"]["password"] = json!("aGFja2Vk");
    h.api.put(&path, edited);
    h.api.clear_calls();
    h.reconcile("db").await.unwrap();
    assert_eq!(secret_writes(&h.api.writes(), "db").len(), 1);
    assert_eq!(data(&h.api, "db")["password"], "pw-1");
    assert!(h.api.events().iter().any(|e| e["reason"] == "DriftRepaired"), "{:#?}", h.api.events());

    h.api.remove(&path);
    h.reconcile("db").await.unwrap();
    assert_eq!(data(&h.api, "db")["password"], "pw-1", "a deleted Secret is recreated");
    assert_eq!(h.ctx.aws.metrics().total(), calls, "repairs make no AWS call");
}

#[tokio::test]
async fn owner_never_adopts_a_secret_it_did_not_create() {
    let seed = Seed::new().await;
    let (secret_id, _) = compliant_secret(&seed).await;
    let h = Harness::new(fresh_facts().await);
    h.create("db", spec(&secret_id));
    h.api.put(
        &secret_path(NAMESPACE, "db"),
        json!({"metadata": {"name": "db"}, "data": {"password": "bWluZQ=="}}),
    );
    h.reconcile("db").await.unwrap();
    assert!(secret_writes(&h.api.writes(), "db").is_empty());
    let (status, reason, message) = h.ready("db");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "TargetExists"));
    assert!(message.contains("Secret db exists"), "{message}");
    assert_eq!(data(&h.api, "db")["password"], "mine");
}

#[tokio::test]
async fn merge_writes_only_our_keys_into_an_existing_secret_that_allows_it() {
    let seed = Seed::new().await;
    let (secret_id, _) = compliant_secret(&seed).await;
    let h = Harness::new(fresh_facts().await);
    let mut spec = spec(&secret_id);
    spec["target"] = json!({"name": "app", "creationPolicy": "Merge"});
    h.create("db", spec);
    h.reconcile("db").await.unwrap();
    let (status, reason, _) = h.ready("db");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "TargetNotFound"));
    assert!(secret_writes(&h.api.writes(), "app").is_empty(), "Merge never creates");

    // A Secret that does not let it merge is left alone.
    let mut app =
        json!({"metadata": {"name": "app"}, "type": "kubernetes.io/tls", "data": {"tls.crt": "Y2VydA=="}});
    h.api.put(&secret_path(NAMESPACE, "app"), app.clone());
    h.reconcile("db").await.unwrap();
    let (status, reason, message) = h.ready("db");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "MergeNotAllowed"), "{message}");
    assert!(message.contains("dpo.dev/allow-merge-from=db"), "{message}");
    assert!(secret_writes(&h.api.writes(), "app").is_empty(), "nothing written without the opt-in");

    app["metadata"]["annotations"] = json!({"dpo.dev/allow-merge-from": "other,db"});
    h.api.put(&secret_path(NAMESPACE, "app"), app);
    h.reconcile("db").await.unwrap();
    let apply = secret_writes(&h.api.writes(), "app").pop().expect("apply");
    assert!(apply.body.get("type").is_none(), "Merge never sets the type");
    assert!(apply.body["metadata"].get("ownerReferences").is_none());
    let keys: Vec<&String> = apply.body["data"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["DSN", "password", "port"]);
    assert_eq!(data(&h.api, "app")["tls.crt"], "cert");
    assert_eq!(h.ready("db").0, "True");
}

#[tokio::test]
async fn an_invalid_spec_names_the_field() {
    let h = Harness::new(fresh_facts().await);
    let mut spec = spec("team/db");
    spec["refreshInterval"] = json!("5s");
    h.create("db", spec);
    h.reconcile("db").await.unwrap();
    let (status, reason, message) = h.ready("db");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "InvalidSpec"));
    assert!(message.contains("spec.refreshInterval"), "{message}");
    assert_eq!(h.ctx.aws.metrics().total(), 0);
}

#[tokio::test]
async fn enforce_keeps_the_last_good_secret_and_audit_syncs_and_reports() {
    let seed = Seed::new().await;
    let (secret_id, key) = compliant_secret(&seed).await;
    let h = Harness::new(fresh_facts().await);
    let mut spec = spec(&secret_id);
    spec["policy"] = json!({"enforcement": "Enforce"});
    h.create("db", spec.clone());
    h.reconcile("db").await.unwrap();
    assert_eq!(h.ready("db").0, "True");

    // The key loses automatic rotation, and a new value arrives.
    seed.kms.disable_key_rotation().key_id(&key.id).send().await.unwrap();
    seed.put_value(&secret_id, r#"{"username":"app","password":"pw-bad","db":{"port":1}}"#).await;
    h.api.clear_calls();
    let due = h.restarted();
    due.reconcile("db").await.unwrap();
    let (status, reason, message) = h.ready("db");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "PolicyViolation"), "{message}");
    assert!(message.contains("keeps version"), "{message}");
    assert!(secret_writes(&h.api.writes(), "db").is_empty());
    assert_eq!(data(&h.api, "db")["password"], "pw-1", "the last good value stays");
    let ps = h.object("db");
    let findings = &ps.status.as_ref().unwrap().findings;
    assert!(findings.iter().any(|f| f.rule == "cmk-backing-key-rotation-enabled"), "{findings:#?}");
    assert!(h.api.events().iter().any(|e| e["reason"] == "PolicyViolation"));

    spec["policy"] = json!({"enforcement": "Audit"});
    h.create("audit", spec);
    due.reconcile("audit").await.unwrap();
    assert_eq!(h.ready("audit").0, "True");
    assert_eq!(h.condition("audit", "Compliant").1, "PolicyViolation");
    assert_eq!(data(&h.api, "audit")["password"], "pw-bad");
}

#[tokio::test]
async fn one_aws_read_serves_every_object_on_the_same_version() {
    let seed = Seed::new().await;
    let (secret_id, _) = compliant_secret(&seed).await;
    let h = Harness::new(moto::facts(moto::test_settings()).await);
    let names: Vec<String> = (0..10).map(|i| format!("db-{i}")).collect();
    for name in &names {
        h.create(name, spec(&secret_id));
    }
    let results = futures::future::join_all(names.iter().map(|n| h.reconcile(n))).await;
    assert!(results.iter().all(Result::is_ok));
    for name in &names {
        assert_eq!(h.ready(name).0, "True");
    }
    let m = h.ctx.aws.metrics();
    let reads =
        m.count("secretsmanager", "GetSecretValue") + m.count("secretsmanager", "BatchGetSecretValue");
    assert_eq!(reads, 1, "one value read for ten objects");
    assert_eq!(m.count("secretsmanager", "DescribeSecret") + m.count("secretsmanager", "ListSecrets"), 1);
}

#[tokio::test]
async fn delete_policy_removes_an_orphan_secret_and_the_finalizer() {
    let seed = Seed::new().await;
    let (secret_id, _) = compliant_secret(&seed).await;
    let h = Harness::new(fresh_facts().await);
    let mut spec = spec(&secret_id);
    spec["target"] = json!({"creationPolicy": "Orphan", "deletionPolicy": "Delete"});
    h.create("db", spec);
    h.reconcile("db").await.unwrap();
    let apply = secret_writes(&h.api.writes(), "db").pop().unwrap();
    assert!(apply.body["metadata"].get("ownerReferences").is_none(), "Orphan: no owner reference");
    let path = support::apiserver::protected_secret_path(NAMESPACE, "db");
    let mut object = h.api.get(&path).unwrap();
    assert_eq!(object["metadata"]["finalizers"], json!(["dpo.dev/protected-secret"]));

    object["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    h.api.put(&path, object);
    h.api.clear_calls();
    h.reconcile("db").await.unwrap();
    let writes = h.api.object_writes();
    assert_eq!(writes[0].method, "DELETE");
    assert_eq!(writes[0].path, secret_path(NAMESPACE, "db"));
    assert_eq!(writes[1].body["metadata"]["finalizers"], json!([]));
    assert!(h.api.get(&secret_path(NAMESPACE, "db")).is_none());
}

#[tokio::test]
async fn a_policy_that_cannot_be_checked_is_not_reported_compliant() {
    let seed = Seed::new().await;
    let (secret_id, _) = compliant_secret(&seed).await;
    let proxy = support::proxy::Proxy::start(moto::endpoint()).await;
    let h = Harness::new(moto::facts_at(proxy.endpoint(), moto::test_settings()).await);
    proxy.inject("DescribeKey", support::proxy::Fault::ServerError, 3);
    h.create("db", spec(&secret_id));
    h.reconcile("db").await.unwrap();
    assert_eq!(h.ready("db").0, "True", "an unanswered policy question does not stop a sync");
    let (status, reason, message) = h.condition("db", "Compliant");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "PolicyNotEvaluated"), "{message}");
    assert!(message.contains("kms-key-enabled"), "{message}");
}

#[tokio::test]
async fn enforce_writes_nothing_while_an_enforced_rule_cannot_be_checked() {
    let seed = Seed::new().await;
    let (secret_id, _) = compliant_secret(&seed).await;
    let proxy = support::proxy::Proxy::start(moto::endpoint()).await;
    let h = Harness::new(moto::facts_at(proxy.endpoint(), moto::test_settings()).await);
    let mut spec = spec(&secret_id);
    spec["policy"] = json!({"enforcement": "Enforce"});
    h.create("db", spec);

    proxy.inject("DescribeKey", support::proxy::Fault::AccessDenied, 1);
    h.reconcile("db").await.expect_err("retried with backoff");
    let (status, reason, message) = h.ready("db");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "PolicyNotEvaluated"), "{message}");
    assert!(message.contains("kms-key-enabled") && message.contains("kms:DescribeKey"), "{message}");
    assert_eq!(h.condition("db", "Stalled").0, "True", "a denied permission waits for a person");
    assert!(h.api.get(&secret_path(NAMESPACE, "db")).is_none(), "nothing written on an unchecked rule");
    assert!(h.api.events().iter().any(|e| e["reason"] == "PolicyNotEvaluated"));

    // Every attempt of one reconcile (three in the test settings).
    proxy.inject("DescribeKey", support::proxy::Fault::Throttle, 3);
    h.reconcile("db").await.expect_err("retried with backoff");
    assert_eq!(h.ready("db").1, "PolicyNotEvaluated");
    assert_eq!(h.condition("db", "Reconciling").0, "True", "throttling passes on its own");
    assert!(h.api.get(&secret_path(NAMESPACE, "db")).is_none());

    h.reconcile("db").await.expect("AWS answers again");
    assert_eq!(h.ready("db").0, "True");
    assert_eq!(data(&h.api, "db")["password"], "pw-1");
}

const SECRETS: &str = "/api/v1/secrets";
const PROTECTED_SECRETS: &str = "/apis/dpo.dev/v1alpha1/protectedsecrets";

/// The collection requests among `calls`: (path, "list" or "watch").
fn collection_requests(calls: &[Call]) -> BTreeSet<(String, &'static str)> {
    calls
        .iter()
        .filter(|c| {
            c.method == "GET" && (c.path.ends_with("/secrets") || c.path.ends_with("/protectedsecrets"))
        })
        .map(|c| (c.path.clone(), if c.is_watch() { "watch" } else { "list" }))
        .collect()
}

/// A list and a watch of each of `collections`.
fn listed_and_watched(collections: &[String]) -> BTreeSet<(String, &'static str)> {
    collections.iter().flat_map(|path| [(path.clone(), "list"), (path.clone(), "watch")]).collect()
}

/// Runs the whole controller, watches included, with `--secret-namespaces` set to
/// `namespaces`, over a ProtectedSecret `db` in each of shop, payments and elsewhere. Stops it
/// once it is ready, has listed and watched `collections` and has reconciled the objects in
/// `reconciled`; returns the API server with every call the controller made.
async fn run_controller(namespaces: &[&str], collections: &[String], reconciled: &[&str]) -> FakeApiserver {
    let (client, api) = support::apiserver::start();
    for namespace in ["shop", "payments", "elsewhere"] {
        // Denied by the default access rules: a reconcile writes status and makes no AWS call.
        let object = json!({
            "apiVersion": "dpo.dev/v1alpha1", "kind": "ProtectedSecret",
            "metadata": {"name": "db", "namespace": namespace, "generation": 1, "uid": format!("uid-{namespace}")},
            "spec": {"source": {"secretId": "other-team/db"}, "dataFrom": {"extract": true}},
        });
        api.put(&protected_secret_path(namespace, "db"), object);
    }
    let config = ControllerConfig {
        secret_namespaces: namespaces.iter().map(|ns| ns.to_string()).collect(),
        ..ControllerConfig::default()
    };
    let readiness = Readiness::default();
    let ctx = Context::new(client, fresh_facts().await, config, &mut Registry::default());
    let ctx = Context { ready: readiness.register(protected_secret::CONTROLLER), ..ctx };
    let (trigger, shutdown) = Shutdown::new();
    let running = tokio::spawn(protected_secret::run(ctx, shutdown));

    let expected = listed_and_watched(collections);
    let has_status =
        |ns: &str| api.get(&protected_secret_path(ns, "db")).is_some_and(|ps| !ps["status"].is_null());
    let done = || {
        readiness.pending().is_empty()
            && collection_requests(&api.calls()).is_superset(&expected)
            && reconciled.iter().all(|ns| has_status(ns))
    };
    let waited = tokio::time::timeout(Duration::from_secs(20), async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    trigger.trigger();
    assert!(
        waited.is_ok(),
        "not ready ({:?} pending), or not every collection listed and watched: {:#?}",
        readiness.pending(),
        collection_requests(&api.calls())
    );
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the controller stops on shutdown")
        .expect("the controller does not panic");
    api
}

#[tokio::test]
async fn secret_namespaces_confine_watches_and_writes_to_those_namespaces() {
    let namespaces = ["shop", "payments"];
    let collections: Vec<String> = namespaces
        .iter()
        .flat_map(|ns| {
            [
                format!("/api/v1/namespaces/{ns}/secrets"),
                format!("/apis/dpo.dev/v1alpha1/namespaces/{ns}/protectedsecrets"),
            ]
        })
        .collect();
    let api = run_controller(&namespaces, &collections, &namespaces).await;
    let calls = api.calls();
    // Exactly one namespaced list and watch each; nothing cluster-wide (RBAC would refuse it).
    assert_eq!(collection_requests(&calls), listed_and_watched(&collections));
    for call in &calls {
        assert!(
            namespaces.iter().any(|ns| call.path.contains(&format!("/namespaces/{ns}/"))),
            "a request outside the listed namespaces: {call:?}"
        );
    }
    for ns in namespaces {
        let ps = api.get(&protected_secret_path(ns, "db")).unwrap();
        assert_eq!(ps["status"]["conditions"][0]["reason"], "AccessNotAllowed", "{ps:#}");
    }
    let elsewhere = api.get(&protected_secret_path("elsewhere", "db")).unwrap();
    assert!(elsewhere["status"].is_null(), "not watched, so never reconciled: {elsewhere:#}");
}

#[tokio::test]
async fn without_secret_namespaces_one_watch_covers_every_namespace() {
    let collections = [SECRETS.to_string(), PROTECTED_SECRETS.to_string()];
    let api = run_controller(&[], &collections, &["shop", "payments", "elsewhere"]).await;
    assert_eq!(collection_requests(&api.calls()), listed_and_watched(&collections));
}
