//! What ProtectedSecrets cost. One tenant's may not cost the others: a runaway template fails
//! alone while the objects reconciled with it sync, and the value cache stays within its bound,
//! drops the versions no object holds, and reads an evicted value again rather than miss it. A
//! refresh wave reads metadata in bulk, however its objects' refreshes are spread.

mod support;

use dpo::aws::AwsFacts;
use dpo::controller::ControllerConfig;
use k8s_openapi::api::core::v1::Secret;
use serde_json::{Value, json};
use std::time::Duration;
use support::access;
use support::apiserver::secret_path;
use support::controller::{Harness, NAMESPACE};
use support::moto::{self, Seed};

/// Not moto's default region, [`moto::REGION`].
const OTHER_REGION: &str = "us-west-2";

const LOOPS: &str = "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}";

fn spec(secret_id: &str) -> Value {
    json!({"source": {"secretId": secret_id}, "data": [{"key": "password", "property": "password"}]})
}

fn templated(secret_id: &str, key: &str, template: &str) -> Value {
    json!({"source": {"secretId": secret_id}, "template": {"data": {key: template}}})
}

fn password(h: &Harness, name: &str) -> String {
    let secret: Secret = h.api.object(&secret_path(NAMESPACE, name));
    String::from_utf8(secret.data.unwrap()["password"].0.clone()).unwrap()
}

/// GetSecretValue and BatchGetSecretValue calls so far.
fn value_reads(aws: &AwsFacts) -> u64 {
    ["GetSecretValue", "BatchGetSecretValue"].iter().map(|op| aws.metrics().count("secretsmanager", op)).sum()
}

/// Metadata never goes stale, so a due refresh sees a rotation at once.
async fn facts(value_bytes: Option<usize>) -> AwsFacts {
    let mut settings = moto::test_settings();
    settings.cache.secret_metadata_ttl = Duration::ZERO;
    if let Some(bound) = value_bytes {
        settings.cache.value_bytes = bound;
    }
    moto::facts(settings).await
}

#[tokio::test]
async fn a_runaway_template_fails_alone_and_the_objects_reconciled_with_it_sync() {
    let seed = Seed::new().await;
    let secret_id = seed.compliant_secret(NAMESPACE, &json!({"username": "app", "password": "pw"})).await;
    let h = Harness::new(facts(None).await);
    h.create("runaway", templated(&secret_id, "LOOP", LOOPS));
    h.create("huge", templated(&secret_id, "BIG", "{{ password * 1000000 }}"));
    h.create("db", spec(&secret_id));

    let (runaway, huge, db) = tokio::join!(h.reconcile("runaway"), h.reconcile("huge"), h.reconcile("db"));
    for result in [runaway, huge, db] {
        result.expect("a template error is reported, not retried");
    }
    assert_eq!(value_reads(&h.ctx.aws), 1, "the three shared one read of the value");
    let (status, reason, message) = h.ready("runaway");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "TemplateError"), "{message}");
    // The fuel, not a clock, stops it, so its cost is bounded on any machine: the benchmark
    // protected_secret prints how long the rejection takes.
    assert!(
        message.contains("spec.template.data.LOOP") && message.contains("fuel limit of 250000"),
        "{message}"
    );
    let (status, reason, message) = h.ready("huge");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "TemplateError"), "{message}");
    assert!(message.contains("spec.template.data.BIG") && message.contains("1048576 bytes"), "{message}");
    for name in ["runaway", "huge"] {
        assert!(h.api.get(&secret_path(NAMESPACE, name)).is_none(), "{name}: nothing written");
    }
    assert_eq!(h.ready("db").0, "True");
    assert_eq!(password(&h, "db"), "pw");
}

#[tokio::test]
async fn a_version_no_object_holds_leaves_the_value_cache() {
    let seed = Seed::new().await;
    let first = json!({"password": "one"}).to_string();
    let secret_id = seed.compliant_secret(NAMESPACE, &json!({"password": "one"})).await;
    let h = Harness::new(facts(None).await);
    let cache = h.ctx.aws.cache();
    for name in ["a", "b"] {
        h.create(name, spec(&secret_id));
        h.reconcile(name).await.unwrap();
    }
    assert_eq!(cache.value_bytes(), first.len());

    let second = json!({"password": "two-longer"}).to_string();
    seed.put_value(&secret_id, &second).await;
    // An edit makes the refresh due at once.
    h.update("a", spec(&secret_id));
    h.reconcile("a").await.unwrap();
    assert_eq!(password(&h, "a"), "two-longer");
    assert_eq!(cache.value_bytes(), first.len() + second.len(), "b still holds the first version");
    h.update("b", spec(&secret_id));
    h.reconcile("b").await.unwrap();
    assert_eq!(cache.value_bytes(), second.len(), "no object holds the first version");

    h.delete("a");
    h.reconcile("a").await.unwrap();
    assert_eq!(cache.value_bytes(), second.len(), "b holds the second version");
    h.delete("b");
    h.reconcile("b").await.unwrap();
    assert_eq!(cache.value_bytes(), 0);
}

/// Synced and then deleted, `source` leaves nothing in the value cache, whatever scope it was
/// read in.
async fn deleted_leaves_no_value(h: &Harness, source: Value) {
    let cache = h.ctx.aws.cache();
    h.create("db", json!({"source": source, "data": [{"key": "password", "property": "password"}]}));
    h.reconcile("db").await.unwrap();
    assert_eq!(h.ready("db").0, "True", "{:?}", h.ready("db"));
    assert_eq!(cache.value_bytes(), json!({"password": "pw"}).to_string().len());
    h.delete("db");
    h.reconcile("db").await.unwrap();
    assert_eq!(cache.value_bytes(), 0, "{source}: no object holds the version");
}

#[tokio::test]
async fn a_version_read_through_a_role_leaves_the_value_cache() {
    let secret_id = Seed::new().await.compliant_secret(NAMESPACE, &json!({"password": "pw"})).await;
    let h = access::harness(moto::facts(access::settings()).await);
    deleted_leaves_no_value(&h, json!({"secretId": secret_id, "roleArn": access::ROLE})).await;
}

#[tokio::test]
async fn a_version_of_another_region_leaves_the_value_cache() {
    let seed = Seed::in_region(OTHER_REGION).await;
    let name = seed.compliant_secret(NAMESPACE, &json!({"password": "pw"})).await;
    let arn = seed.secrets.describe_secret().secret_id(&name).send().await.unwrap().arn.unwrap();
    assert!(arn.contains(&format!(":{OTHER_REGION}:")), "{arn}");
    let h = Harness::new(facts(None).await);
    deleted_leaves_no_value(&h, json!({"secretId": arn})).await;
}

#[tokio::test]
async fn an_evicted_value_is_read_again_and_never_missing_from_the_secret() {
    let seed = Seed::new().await;
    let (one, two) = (json!({"password": "pw-one"}), json!({"password": "pw-two"}));
    let bound = one.to_string().len() + 10;
    let h = Harness::new(facts(Some(bound)).await);
    let cache = h.ctx.aws.cache();
    for (name, value) in [("one", &one), ("two", &two)] {
        let secret_id = seed.compliant_secret(NAMESPACE, value).await;
        h.create(name, spec(&secret_id));
        h.reconcile(name).await.unwrap();
        assert!(cache.value_bytes() <= bound, "{} bytes", cache.value_bytes());
    }
    assert_eq!(cache.value_bytes(), two.to_string().len(), "one's value made room for two's");

    // Before its refresh is due, one still holds its version: a reconcile reads it again.
    let reads = value_reads(&h.ctx.aws);
    h.api.clear_calls();
    h.reconcile("one").await.unwrap();
    assert_eq!(value_reads(&h.ctx.aws), reads + 1);
    assert!(h.api.writes().iter().all(|c| !c.path.contains("/secrets/")), "the Secret is unchanged");
    assert_eq!((h.ready("one").0, password(&h, "one")), ("True".into(), "pw-one".into()));

    // Deleted by hand while evicted (one's value took its room again): restored from the value
    // read again.
    h.api.remove(&secret_path(NAMESPACE, "two"));
    h.reconcile("two").await.unwrap();
    assert_eq!(value_reads(&h.ctx.aws), reads + 2);
    assert_eq!(password(&h, "two"), "pw-two");
    assert!(cache.value_bytes() <= bound, "{} bytes", cache.value_bytes());
}

/// The default refresh of the refresh tests (shorter than any refreshInterval may be), as
/// they wait for it.
const REFRESH: Duration = Duration::from_secs(2);

fn refreshing(aws: AwsFacts) -> Harness {
    Harness::with_config(aws, ControllerConfig { default_refresh: REFRESH, ..ControllerConfig::default() })
}

/// DescribeSecret and ListSecrets calls so far.
fn metadata_reads(aws: &AwsFacts) -> u64 {
    ["DescribeSecret", "ListSecrets"].iter().map(|op| aws.metrics().count("secretsmanager", op)).sum()
}

#[tokio::test]
async fn a_refresh_wave_reads_the_metadata_of_every_object_due_soon_in_one_listing() {
    let seed = Seed::new().await;
    let key = seed.key().await;
    seed.enable_rotation(&key).await;
    let path = moto::unique(&format!("{NAMESPACE}/wave"));
    // The wave below must take less than half the interval, less its jitter: an object it has
    // refreshed is then not yet due soon, and its fresh metadata not read ahead again.
    let refresh = Duration::from_secs(6);
    let config = ControllerConfig {
        default_refresh: refresh,
        batch_window: Duration::from_millis(1),
        ..ControllerConfig::default()
    };
    let h = Harness::with_config(moto::facts(moto::test_settings()).await, config);
    let mut names = Vec::new();
    for i in 0..10 {
        let secret_id = format!("{path}/db-{i}");
        seed.secret(&secret_id, &json!({"password": format!("pw-{i}")}).to_string(), Some(&key.arn)).await;
        for copy in 0..2 {
            let name = format!("db-{i}-{copy}");
            h.create(&name, spec(&secret_id));
            names.push(name);
        }
    }
    assert_eq!(h.reconcile_all(&names, 4).await, names.len(), "{:?}", h.ready("db-0-0"));
    let before = metadata_reads(&h.ctx.aws);

    tokio::time::sleep(refresh + refresh / 4).await;
    // One after another, so that no batch window joins them: the first reads ahead for all.
    let wave = std::time::Instant::now();
    for name in &names {
        h.reconcile(name).await.unwrap();
    }
    let took = wave.elapsed();
    assert_eq!(
        metadata_reads(&h.ctx.aws) - before,
        1,
        "one ListSecrets page for 20 due objects on 10 secrets (the wave took {took:?})"
    );
    assert_eq!(password(&h, "db-9-1"), "pw-9");
}

#[tokio::test]
async fn a_repair_between_refreshes_leaves_the_next_refresh_where_it_was() {
    let seed = Seed::new().await;
    let secret_id = seed.compliant_secret(NAMESPACE, &json!({"password": "pw"})).await;
    let h = refreshing(moto::facts(moto::test_settings()).await);
    h.create("db", spec(&secret_id));
    h.reconcile("db").await.unwrap();
    assert_eq!(h.ready("db").0, "True", "{:?}", h.ready("db"));
    let before = metadata_reads(&h.ctx.aws);

    tokio::time::sleep(REFRESH / 2).await;
    h.api.remove(&secret_path(NAMESPACE, "db"));
    h.reconcile("db").await.unwrap();
    assert_eq!(password(&h, "db"), "pw", "repaired from the version held");
    assert_eq!(metadata_reads(&h.ctx.aws), before, "a repair needs no metadata");

    // Due at the first sync's interval (jitter aside), not one interval after the repair.
    tokio::time::sleep(REFRESH / 2 + REFRESH / 4).await;
    h.reconcile("db").await.unwrap();
    assert_eq!(metadata_reads(&h.ctx.aws), before + 1, "the refresh is due");
}
