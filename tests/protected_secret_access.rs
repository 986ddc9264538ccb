//! Tenancy in the ProtectedSecret reconciler, against the fake API server and moto: what a
//! namespace's access rules refuse costs no AWS call, what they allow through a role is read in
//! a session tagged with the namespace, and AWS's refusals reach status and Events without the
//! operator's own session ARN.

mod support;

use serde_json::{Value, json};
use support::access::{ACCOUNT, ROLE, harness, settings};
use support::controller::{Harness, NAMESPACE};
use support::moto::{self, Seed};
use support::proxy::{Fault, Proxy};

const OTHER: &str = "222222222222";

fn spec(source: Value) -> Value {
    json!({"source": source, "data": [{"key": "password", "property": "password"}]})
}

#[tokio::test]
async fn every_refusal_is_made_before_any_aws_call() {
    let h = harness(moto::facts(settings()).await);
    let arn =
        |account: &str, region: &str| format!("arn:aws:secretsmanager:{region}:{account}:secret:team/db");
    let cases = [
        (json!({"secretId": "other-team/db"}), "AccessNotAllowed", r#"allow names starting with "team/""#),
        (json!({"secretId": arn(OTHER, "us-east-1")}), "AccessNotAllowed", "in account 222222222222"),
        (json!({"secretId": "team/db", "region": "eu-west-1"}), "AccessNotAllowed", r#"allow "us-*""#),
        (
            json!({"secretId": "team/db", "roleArn": "arn:aws:iam::123456789012:role/dpo-shop"}),
            "AccessNotAllowed",
            r#"roles of its access rules for AWS secret team/db allow "arn:aws:iam::123456789012:role/dpo-team""#,
        ),
        // A rule allows it, the operator's allowlist does not.
        (
            json!({"secretId": "team/db", "roleArn": "arn:aws:iam::123456789012:role/unlisted"}),
            "AccessNotAllowed",
            "--allowed-role",
        ),
        (
            json!({"secretId": arn(ACCOUNT, "us-east-1"), "region": "us-west-2"}),
            "InvalidReference",
            "spec.source.region us-west-2 is not the region of spec.source.secretId (us-east-1)",
        ),
    ];
    for (i, (source, reason, expected)) in cases.iter().enumerate() {
        let name = format!("ps-{i}");
        h.create(&name, spec(source.clone()));
        h.reconcile(&name).await.expect("reconcile");
        let (status, got, message) = h.ready(&name);
        assert_eq!((status.as_str(), got.as_str()), ("False", *reason), "{source}: {message}");
        assert!(message.contains(expected), "{source}: {message}");
    }
    assert_eq!(h.ctx.aws.metrics().total(), 0);
    assert_eq!(h.ctx.protected_secrets.metrics.errors("AccessNotAllowed"), 5);
}

/// A compliant secret of the namespace, and a harness reading AWS through a proxy.
async fn behind_proxy() -> (String, Proxy, Harness) {
    let name = Seed::new().await.compliant_secret(NAMESPACE, &json!({"password": "pw"})).await;
    let proxy = Proxy::start(moto::endpoint()).await;
    let h = harness(moto::facts_at(proxy.endpoint(), settings()).await);
    (name, proxy, h)
}

#[tokio::test]
async fn a_role_is_assumed_in_a_session_tagged_with_the_namespace() {
    let (name, proxy, h) = behind_proxy().await;
    h.create("db", spec(json!({"secretId": name, "roleArn": ROLE})));
    h.reconcile("db").await.expect("reconcile");
    assert_eq!(h.ready("db").0, "True", "{:?}", h.ready("db"));
    let [assumed] = proxy.bodies("AssumeRole").try_into().expect("one AssumeRole");
    for part in ["Tags.member.1.Value=team", "ExternalId=ext-team"] {
        assert!(assumed.split('&').any(|p| p == part), "{part} missing from {assumed}");
    }
}

#[tokio::test]
async fn status_and_events_do_not_show_the_operators_session() {
    let (name, proxy, h) = behind_proxy().await;
    proxy.inject("BatchGetSecretValue", Fault::AccessDenied, 1);
    proxy.inject("GetSecretValue", Fault::AccessDenied, 1);
    h.create("db", spec(json!({"secretId": name})));
    h.reconcile("db").await.expect_err("retried with backoff");

    let (status, reason, message) = h.ready("db");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "AccessDenied"), "{message}");
    assert!(message.contains("secretsmanager:GetSecretValue") && message.contains(&name), "{message}");
    let shown = format!("{message} {:?} {}", h.api.events(), h.metrics_text());
    assert!(shown.contains("<operator identity>"), "{shown}");
    assert!(!shown.contains("assumed-role") && !shown.contains("dpo-controller"), "{shown}");
}
