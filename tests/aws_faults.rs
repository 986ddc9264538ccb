//! Faults injected between the SDK and moto: throttling and 5xx are retried and then classified,
//! timeouts are retried, AccessDenied names the action, and cached facts survive a fault.

mod support;

use dpo::aws::{AwsError, AwsFacts, AwsSettings, Ec2Api, KmsApi, SecretsApi, Target, ValueRef};
use std::time::Duration;
use support::moto::{self, Seed};
use support::proxy::{Fault, Proxy};

fn here() -> Target {
    Target::default()
}

async fn behind_proxy(settings: AwsSettings) -> (Proxy, AwsFacts) {
    let proxy = Proxy::start(moto::endpoint()).await;
    let facts = moto::facts_at(proxy.endpoint(), settings).await;
    (proxy, facts)
}

#[tokio::test]
async fn throttling_is_retried_with_backoff() {
    let seed = Seed::new().await;
    let (proxy, facts) = behind_proxy(moto::test_settings()).await;
    let name = moto::unique("throttled");
    seed.secret(&name, "v", None).await;

    proxy.inject("DescribeSecret", Fault::Throttle, 1);
    proxy.inject("DescribeSecret", Fault::TooManyRequests, 1);
    assert_eq!(facts.secret(&here(), &name).await.unwrap().name, name);
    let m = facts.metrics();
    assert_eq!(m.count("secretsmanager", "DescribeSecret"), 3);
    assert_eq!(m.count_outcome("secretsmanager", "DescribeSecret", "throttled"), 2);
    assert_eq!(m.count_outcome("secretsmanager", "DescribeSecret", "success"), 1);
    assert_eq!(proxy.seen("DescribeSecret"), 3, "every counted attempt is a real HTTP request");
}

#[tokio::test]
async fn throttling_beyond_the_budget_is_classified() {
    let seed = Seed::new().await;
    let (proxy, facts) = behind_proxy(moto::test_settings()).await;
    let name = moto::unique("throttled");
    seed.secret(&name, "v", None).await;

    proxy.inject("DescribeSecret", Fault::Throttle, 100);
    let err = facts.secret(&here(), &name).await.unwrap_err();
    assert!(matches!(err, AwsError::Throttled { attempts: 3, .. }), "{err:?}");
    assert_eq!(err.reason(), "AwsThrottled");
    assert_eq!(facts.metrics().count_outcome("secretsmanager", "DescribeSecret", "throttled"), 3);

    let volume = seed.volume(true, None).await;
    proxy.inject("DescribeVolumes", Fault::Throttle, 1);
    let found = facts.volumes(&here(), std::slice::from_ref(&volume)).await;
    assert!(found[&volume].as_ref().unwrap().encrypted);
    assert_eq!(
        facts.metrics().count_outcome("ec2", "DescribeVolumes", "throttled"),
        1,
        "EC2's RequestLimitExceeded"
    );
}

#[tokio::test]
async fn server_errors_are_retried_then_classified() {
    let seed = Seed::new().await;
    let (proxy, facts) = behind_proxy(moto::test_settings()).await;
    let key = seed.key().await;
    let other = seed.key().await;

    proxy.inject("DescribeKey", Fault::ServerError, 2);
    assert!(facts.kms_key(&here(), &key.id).await.is_ok());
    assert_eq!(facts.metrics().count_outcome("kms", "DescribeKey", "transient"), 2);

    proxy.inject("DescribeKey", Fault::ServerError, 100);
    let err = facts.kms_key(&here(), &other.id).await.unwrap_err();
    assert!(matches!(err, AwsError::Transient { attempts: 3, .. }), "{err:?}");
    assert_eq!(err.reason(), "AwsUnavailable");
    assert_eq!(facts.metrics().count("kms", "DescribeKey"), 6);
}

#[tokio::test]
async fn a_hung_request_times_out_and_is_retried() {
    let seed = Seed::new().await;
    let mut settings = moto::test_settings();
    // Short enough to keep the test quick; the attempts that follow the hang may time out too
    // on a loaded machine, so there are attempts to spare and the test counts what happened.
    settings.attempt_timeout = Duration::from_secs(2);
    settings.retry.max_attempts = 10;
    let (proxy, facts) = behind_proxy(settings).await;
    let key = seed.key().await;

    proxy.inject("DescribeKey", Fault::Hang, 1);
    assert!(facts.kms_key(&here(), &key.id).await.is_ok());
    let timed_out = facts.metrics().count_outcome("kms", "DescribeKey", "transient");
    assert!(timed_out >= 1, "the hung attempt was not counted as a transient failure");
    assert_eq!(facts.metrics().count_outcome("kms", "DescribeKey", "success"), 1);
    assert_eq!(proxy.seen("DescribeKey") as u64, timed_out + 1, "the timed-out attempt was retried");
}

#[tokio::test]
async fn access_denied_names_the_action_and_is_not_retried() {
    let seed = Seed::new().await;
    let (proxy, facts) = behind_proxy(moto::test_settings()).await;
    let name = moto::unique("denied");
    let (_, version) = seed.secret(&name, "top-secret-value", None).await;

    proxy.inject("GetSecretValue", Fault::AccessDenied, 1);
    let err = facts.value(&here(), &name, &version).await.unwrap_err();
    assert!(
        matches!(&err, AwsError::AccessDenied { action: "secretsmanager:GetSecretValue", resource, .. } if *resource == name),
        "{err:?}"
    );
    assert_eq!(err.reason(), "AccessDenied");
    let shown = format!("{err} {err:?}");
    assert!(
        shown.contains("secretsmanager:GetSecretValue") && !shown.contains("top-secret-value"),
        "{shown}"
    );
    assert_eq!(facts.metrics().count("secretsmanager", "GetSecretValue"), 1);

    // Without BatchGetSecretValue permission, values are read one by one.
    proxy.inject("BatchGetSecretValue", Fault::AccessDenied, 1);
    let wanted = ValueRef { target: here(), secret_id: name.clone(), version_id: version.clone() };
    let values = facts.values(std::slice::from_ref(&wanted)).await;
    assert_eq!(values[&wanted].as_ref().unwrap().expose_text(), Some("top-secret-value"));
    assert_eq!(facts.metrics().count_outcome("secretsmanager", "BatchGetSecretValue", "access_denied"), 1);
    assert_eq!(facts.metrics().count_outcome("secretsmanager", "GetSecretValue", "success"), 1);
}

#[tokio::test]
async fn cached_facts_survive_a_fault() {
    let seed = Seed::new().await;
    let (proxy, facts) = behind_proxy(moto::test_settings()).await;
    let key = seed.key().await;
    let fresh = facts.kms_key(&here(), &key.id).await.unwrap();

    proxy.inject("DescribeKey", Fault::ServerError, 100);
    assert_eq!(facts.kms_key(&here(), &key.id).await.unwrap(), fresh);
    assert_eq!(facts.metrics().count("kms", "DescribeKey"), 1, "a fresh fact needs no call");
}

#[tokio::test]
async fn an_expired_fact_is_served_while_aws_fails() {
    let seed = Seed::new().await;
    let mut settings = moto::test_settings();
    settings.cache.kms_key_ttl = Duration::ZERO;
    let (proxy, facts) = behind_proxy(settings).await;
    let key = seed.key().await;
    let known = facts.kms_key(&here(), &key.id).await.unwrap();

    proxy.inject("DescribeKey", Fault::ServerError, 100);
    assert_eq!(facts.kms_key(&here(), &key.id).await.unwrap(), known);
    assert_eq!(
        facts.metrics().count_outcome("kms", "DescribeKey", "transient"),
        3,
        "AWS was asked, and failed"
    );
    let missing = facts.kms_key(&here(), "alias/never-seen").await.unwrap_err();
    assert_eq!(missing.reason(), "AwsUnavailable", "nothing stale to serve for an unknown key");
}

/// A refused `GetKeyRotationStatus` loses the rotation rule only: what `DescribeKey` answered
/// is still judged.
#[tokio::test]
async fn a_refused_rotation_status_loses_only_the_rotation_rule() {
    use dpo::api::{ProtectedSecretSpec, ResourceRef};
    use dpo::policy::facts::{FACT_ROUNDS, FactRecorder, FactSet};
    use dpo::policy::secret::judge_secret;

    let seed = Seed::new().await;
    let (proxy, facts) = behind_proxy(moto::test_settings()).await;
    let key = seed.key().await;
    seed.disable(&key).await;
    let name = moto::unique("rotation-denied");
    seed.secret(&name, "v", Some(&key.arn)).await;
    let spec: ProtectedSecretSpec =
        serde_json::from_value(serde_json::json!({"source": {"secretId": name}})).unwrap();

    proxy.inject("GetKeyRotationStatus", Fault::AccessDenied, 1);
    let resource = ResourceRef::default();
    let mut known = FactSet::default();
    for _ in 0..FACT_ROUNDS {
        let recorder = FactRecorder::new(&known);
        judge_secret(&resource, &spec, &recorder);
        known.extend(facts.gather(&dpo::aws::FactRequest::new(here(), recorder.into_wanted())).await);
    }
    let judgement = judge_secret(&resource, &spec, &known);
    let found: Vec<&str> = judgement.findings.iter().map(|f| f.rule.as_str()).collect();
    assert_eq!(found, ["kms-key-enabled"], "the disabled key is still found: {judgement:?}");
    assert!(judgement.checked.contains(&dpo::policy::Rule::KmsCmkNotScheduledForDeletion));
    let skipped: Vec<&str> = judgement.skipped.iter().map(|r| r.id()).collect();
    assert_eq!(skipped, ["cmk-backing-key-rotation-enabled"]);
    let cause = &judgement.skip_causes[&dpo::policy::Rule::CmkBackingKeyRotationEnabled];
    assert_eq!((cause.reason, cause.transient), ("AccessDenied", false));
    assert!(cause.message.contains("kms:GetKeyRotationStatus"), "{cause:?}");
    assert_eq!(proxy.seen("GetKeyRotationStatus"), 1);
    assert_eq!(facts.metrics().count("kms", "DescribeKey"), 1);
}
