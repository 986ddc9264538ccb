//! `--cluster-name`: every ProtectedSecret's status notes when the cluster does not
//! envelope-encrypt the Secrets it writes with a KMS key, without holding the sync back.

mod support;

use dpo::controller::ControllerConfig;
use serde_json::json;
use support::controller::Harness;
use support::moto::{self, Seed};

/// A synced ProtectedSecret `db` under `--cluster-name cluster`; returns the harness.
async fn synced_under(seed: &Seed, cluster: Option<String>) -> Harness {
    let name = seed.compliant_secret("team", &json!({"password": "pw"})).await;
    let config = ControllerConfig { cluster_name: cluster, ..ControllerConfig::default() };
    let h = Harness::with_config(moto::facts(moto::test_settings()).await, config);
    h.create("db", json!({"source": {"secretId": name}, "dataFrom": {"extract": true}}));
    h.reconcile("db").await.expect("reconcile");
    h
}

#[tokio::test]
async fn a_cluster_without_a_secrets_key_is_noted_and_the_secret_still_synced() {
    let seed = Seed::new().await;
    let plain = seed.cluster(None).await;
    let h = synced_under(&seed, Some(plain.clone())).await;
    let (ready, reason, message) = h.ready("db");
    assert_eq!((ready.as_str(), reason.as_str()), ("True", "Synced"), "{message}");
    let note = format!("EKS cluster {plain} does not envelope-encrypt Secrets with a KMS key");
    assert!(message.contains(&note), "{message}");
    assert!(h.condition("db", "Synced").2.contains(&note));
    assert!(
        h.api
            .object::<k8s_openapi::api::core::v1::Secret>(&support::apiserver::secret_path(
                support::controller::NAMESPACE,
                "db"
            ))
            .data
            .is_some()
    );

    // Read once a re-evaluation period, whatever the number of reconciles.
    h.api.clear_calls();
    h.reconcile("db").await.expect("steady reconcile");
    assert_eq!(h.ctx.aws.metrics().count("eks", "DescribeCluster"), 1);
    assert!(h.api.writes().is_empty(), "a steady refresh writes nothing: {:#?}", h.api.writes());
}

#[tokio::test]
async fn an_encrypted_unknown_or_unnamed_cluster_adds_no_note() {
    let seed = Seed::new().await;
    let key = seed.key().await;
    let encrypted = seed.cluster(Some(&key.arn)).await;
    for cluster in [Some(encrypted), Some(moto::unique("missing")), None] {
        let h = synced_under(&seed, cluster.clone()).await;
        let (ready, _, message) = h.ready("db");
        assert_eq!(ready, "True", "{cluster:?}: {message}");
        assert!(!message.contains("envelope-encrypt"), "{cluster:?}: {message}");
        let calls = h.ctx.aws.metrics().count("eks", "DescribeCluster");
        assert_eq!(calls, u64::from(cluster.is_some()), "{cluster:?}");
    }
}
