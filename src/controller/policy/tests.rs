use super::store::LAST_APPLIED;
use super::*;

#[test]
fn slim_objects_keep_everything_a_policy_reads() {
    let mut ingress: k8s_openapi::api::networking::v1::Ingress = serde_json::from_value(serde_json::json!({
        "metadata": {
            "name": "web",
            "labels": {"tier": "prod"},
            "annotations": {
                LAST_APPLIED: "{\"kind\":\"Ingress\"}",
                "alb.ingress.kubernetes.io/ssl-policy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
            },
            "managedFields": [{"manager": "kubectl", "operation": "Update", "fieldsType": "FieldsV1",
                               "fieldsV1": {"f:metadata": {"f:labels": {"f:tier": {}}}}}],
        },
        "spec": {"ingressClassName": "alb"},
    }))
    .unwrap();
    let mut expected = ingress.clone();
    expected.metadata.managed_fields = None;
    expected.metadata.annotations.as_mut().unwrap().remove(LAST_APPLIED);
    slim(&mut ingress);
    assert_eq!(ingress, expected);
    assert_eq!(ingress.metadata.annotations.unwrap().len(), 1);
}

/// Every reconcile waiting for a store goes on once it is listed, not only the last to wait.
#[tokio::test]
async fn all_waiters_see_a_store_become_ready() {
    let (store, mut writer) = reflector::store::<k8s_openapi::api::storage::v1::StorageClass>();
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { ready(&store, "StorageClass").await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    writer.apply_watcher_event(&watcher::Event::Init);
    writer.apply_watcher_event(&watcher::Event::InitDone);
    for waiter in waiters {
        let waited = tokio::time::timeout(Duration::from_secs(5), waiter).await;
        assert!(matches!(waited, Ok(Ok(Ok(())))), "a waiter was not woken: {waited:?}");
    }
}
