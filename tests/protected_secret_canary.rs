//! A distinctive secret value goes through a sync and every failure path; it must never show
//! in logs, Events, status, metrics or errors, and no failure may empty the synced Secret.

mod support;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use serde_json::{Value, json};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::apiserver::secret_path;
use support::controller::{Harness, NAMESPACE};
use support::moto::{self, Seed};
use support::proxy::{Fault, Proxy};

/// Operations to fail, each for so many requests.
type Injections = &'static [(&'static str, usize)];

const CANARY: &str = "CANARY-7f3a9c1e-never-print-me";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn value(password: &str) -> String {
    json!({"username": "app", "password": password}).to_string()
}

fn spec(secret_id: &str) -> Value {
    json!({"source": {"secretId": secret_id}, "data": [{"key": "password", "property": "password"}]})
}

fn password(h: &Harness, name: &str) -> String {
    let secret: Secret = h.api.object(&secret_path(NAMESPACE, name));
    String::from_utf8(secret.data.unwrap()["password"].0.clone()).unwrap()
}

#[tokio::test]
async fn the_value_never_leaks_on_any_path() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_env_filter("debug")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let seed = Seed::new().await;
    let key = seed.key().await;
    seed.enable_rotation(&key).await;
    let proxy = Proxy::start(moto::endpoint()).await;
    let mut settings = moto::test_settings();
    settings.cache.secret_metadata_ttl = Duration::ZERO;
    settings.cache.kms_key_ttl = Duration::ZERO;
    let h = Harness::new(moto::facts_at(proxy.endpoint(), settings).await);
    let mut errors = Vec::new();

    let main = moto::unique("team/canary");
    seed.secret(&main, &value(CANARY), Some(&key.arn)).await;
    h.create("db", spec(&main));
    h.reconcile("db").await.expect("first sync");
    assert_eq!(password(&h, "db"), CANARY);

    // A new version whose value cannot be read: the Secret keeps the last synced value. Faults
    // outlast the retry budget (3 attempts); AccessDenied is not retried, and a denied
    // BatchGetSecretValue falls back to GetSecretValue.
    let faults: [(Injections, Fault, &str); 3] = [
        (&[("BatchGetSecretValue", 3)], Fault::Throttle, "AwsThrottled"),
        (&[("BatchGetSecretValue", 3)], Fault::ServerError, "AwsUnavailable"),
        (&[("BatchGetSecretValue", 1), ("GetSecretValue", 1)], Fault::AccessDenied, "AccessDenied"),
    ];
    for (round, (operations, fault, reason)) in faults.into_iter().enumerate() {
        seed.put_value(&main, &value(&format!("{CANARY}-{round}"))).await;
        for (operation, times) in operations {
            proxy.inject(operation, fault.clone(), *times);
        }
        let err = h.restarted().reconcile("db").await.expect_err("an AWS failure is an error to back off on");
        errors.push(format!("{err} {err:?}"));
        let (status, got, message) = h.ready("db");
        assert_eq!((status.as_str(), got.as_str()), ("False", reason), "{message}");
        assert!(message.contains("keeps version"), "{message}");
        // Throttling and outages pass by themselves; a denied permission waits for a person.
        let waits_for = if reason == "AccessDenied" { "Stalled" } else { "Reconciling" };
        assert_eq!(h.condition("db", waits_for).0, "True", "{reason}: {waits_for}");
        assert_eq!(password(&h, "db"), CANARY, "{reason} keeps the synced value");
    }
    assert!(h.ready("db").2.contains("secretsmanager:GetSecretValue"), "the IAM action is named");

    // Metadata that cannot be read, for an object that never synced.
    let cold = moto::unique("team/cold");
    seed.secret(&cold, &value(CANARY), Some(&key.arn)).await;
    h.create("cold", spec(&cold));
    proxy.inject("DescribeSecret", Fault::Throttle, 3);
    let err = h.reconcile("cold").await.expect_err("throttled");
    errors.push(format!("{err} {err:?}"));
    assert_eq!(h.ready("cold").1, "AwsThrottled");
    assert!(h.api.get(&secret_path(NAMESPACE, "cold")).is_none());

    // The AWS secret is deleted.
    let gone = moto::unique("team/gone");
    seed.secret(&gone, &value(CANARY), Some(&key.arn)).await;
    h.create("gone", spec(&gone));
    h.reconcile("gone").await.expect("sync");
    seed.secrets.delete_secret().secret_id(&gone).force_delete_without_recovery(true).send().await.unwrap();
    let err = h.restarted().reconcile("gone").await.expect_err("not found");
    errors.push(format!("{err} {err:?}"));
    assert_eq!(h.ready("gone").1, "SecretNotFound");
    assert_eq!(password(&h, "gone"), CANARY, "a deleted AWS secret does not delete the Secret");

    // Templates that fail: a missing key, an operation on the value itself, work past the fuel
    // limit over the value, and output past the Secret's size made of it.
    let runaway = "{% for i in range(100000) %}{% for j in range(100000) %}{% if password == j %}{% endif %}{% endfor %}{% endfor %}";
    let templates = [
        ("tmpl", "{{ nope }}"),
        ("math", "{{ password + 1 }}"),
        ("fuel", runaway),
        ("huge", "{{ password * 100000 }}"),
    ];
    for (name, template) in templates {
        let mut spec = spec(&main);
        spec["template"] = json!({"data": {"DSN": template}});
        h.create(name, spec);
        h.reconcile(name).await.expect("a template error is reported, not retried");
        let (_, reason, message) = h.ready(name);
        assert_eq!(reason, "TemplateError", "{message}");
    }
    assert!(h.ready("tmpl").2.contains("nope"), "the missing key is named");
    assert!(h.ready("fuel").2.contains("fuel limit"), "{}", h.ready("fuel").2);
    assert!(h.ready("huge").2.contains("bytes"), "{}", h.ready("huge").2);

    // An enforced policy the secret now violates.
    seed.kms.disable_key_rotation().key_id(&key.id).send().await.unwrap();
    let mut enforced = spec(&main);
    enforced["policy"] = json!({"enforcement": "Enforce"});
    h.create("enforced", enforced);
    h.reconcile("enforced").await.expect("a violation is reported, not retried");
    assert_eq!(h.ready("enforced").1, "PolicyViolation");

    let encoded = serde_json::to_string(&ByteString(CANARY.as_bytes().to_vec())).unwrap();
    let encoded = encoded.trim_matches('"');
    let leaks = |what: &str, text: &str| {
        assert!(!text.contains(CANARY), "the value leaked into {what}: {text}");
        assert!(
            !text.contains(&encoded[..encoded.len() - 4]),
            "the encoded value leaked into {what}: {text}"
        );
    };
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("not ready"), "logs were captured");
    leaks("logs", &logs);
    leaks("metrics", &h.metrics_text());
    leaks("errors", &errors.join("\n"));
    let calls = h.api.calls();
    assert!(calls.iter().any(|c| c.path.contains("/events")));
    for call in calls.iter().filter(|c| !c.path.contains("/secrets/")) {
        leaks(&format!("{} {}", call.method, call.path), &call.body.to_string());
    }
    for name in ["db", "cold", "gone", "tmpl", "math", "fuel", "huge", "enforced"] {
        leaks("status", &format!("{:?}", h.object(name).status));
    }
}
