//! What a ProtectedSecret may not ask for, refused by the reconciler against the fake API
//! server and moto: the refusal is in status, naming what to change, and nothing is written.

mod support;

use serde_json::json;
use support::apiserver::secret_path;
use support::controller::{Harness, NAMESPACE};
use support::moto::{self, Seed, secrets_manager_calls};

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
    assert_eq!(secrets_manager_calls(&h.ctx.aws), 0);
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
