//! The governed world of the policy benchmarks: 10,000 Ingresses in 500 IngressGroups (one ACM
//! certificate each) and 2,000 encrypted StorageClasses with a bound PersistentVolume each
//! (under 20 customer-managed keys), under 3 policies. Objects are the JSON a user applies; AWS
//! is seeded in moto.

use super::moto::Seed;
use futures::StreamExt;
use serde_json::{Value, json};

pub const GROUPS: usize = 500;
pub const INGRESSES_PER_GROUP: usize = 20;
pub const CLASSES: usize = 2_000;
pub const KEYS: usize = 20;
/// Seeding requests in flight at once.
pub const SEEDING: usize = 16;
/// The security policy every Ingress sets: TLS 1.2 and up, which every policy passes.
pub const SSL_POLICY: &str = "ELBSecurityPolicy-TLS13-1-2-2021-06";

/// What the world's objects refer to in AWS.
pub struct AwsWorld {
    /// One per IngressGroup.
    pub certificates: Vec<String>,
    /// Key ARNs of the StorageClasses.
    pub keys: Vec<String>,
    /// One per StorageClass.
    pub volumes: Vec<String>,
}

/// Seeds the certificates of `groups` IngressGroups, the keys, and the volumes of `classes`
/// StorageClasses in moto.
pub async fn seed_aws(seed: &Seed, groups: usize, classes: usize) -> AwsWorld {
    let certificates: Vec<String> = futures::stream::iter(0..groups)
        .map(|group| async move {
            let until = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 200);
            seed.certificate(&[&host(group)], until).await
        })
        .buffered(SEEDING)
        .collect()
        .await;
    let mut keys = Vec::new();
    for _ in 0..KEYS {
        keys.push(seed.key().await.arn);
    }
    let keys_ref = &keys;
    let volumes: Vec<String> = futures::stream::iter(0..classes)
        .map(|index| async move { seed.volume(true, Some(&keys_ref[index % KEYS])).await })
        .buffered(SEEDING)
        .collect()
        .await;
    AwsWorld { certificates, keys, volumes }
}

pub fn host(group: usize) -> String {
    format!("g{group}.bench.example.com")
}

/// Ingress `index` of group `index / INGRESSES_PER_GROUP`, in `namespace`: HTTP redirected to
/// HTTPS with `certificate`; every other group is labelled `tier: prod`.
pub fn ingress(index: usize, namespace: &str, certificate: &str, ssl_policy: &str) -> Value {
    let group = index / INGRESSES_PER_GROUP;
    let tier = if group.is_multiple_of(2) { "prod" } else { "dev" };
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": format!("ing-{index}"),
            "namespace": namespace,
            "labels": {"tier": tier},
            "annotations": {
                "alb.ingress.kubernetes.io/group.name": format!("g{group}"),
                "alb.ingress.kubernetes.io/listen-ports": "[{\"HTTP\": 80}, {\"HTTPS\": 443}]",
                "alb.ingress.kubernetes.io/ssl-redirect": "443",
                "alb.ingress.kubernetes.io/ssl-policy": ssl_policy,
                "alb.ingress.kubernetes.io/certificate-arn": certificate,
            },
        },
        "spec": {
            "ingressClassName": "alb",
            "rules": [{"host": host(group), "http": {"paths": [{
                "path": format!("/app-{index}"), "pathType": "Prefix",
                "backend": {"service": {"name": format!("svc-{index}"), "port": {"number": 80}}},
            }]}}],
        },
    })
}

pub fn storage_class(index: usize, key: &str) -> Value {
    json!({
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": format!("sc-{index}")},
        "provisioner": "ebs.csi.aws.com",
        "parameters": {"type": "gp3", "encrypted": "true", "kmsKeyId": key},
    })
}

/// The PersistentVolume of StorageClass `index`, bound (its status as the PV binder writes it).
pub fn persistent_volume(index: usize, volume_id: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": format!("pv-{index}")},
        "spec": {
            "storageClassName": format!("sc-{index}"),
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "claimRef": {"namespace": "data", "name": format!("data-{index}")},
            "csi": {"driver": "ebs.csi.aws.com", "volumeHandle": volume_id},
        },
        "status": {"phase": "Bound"},
    })
}

/// A policy: (kind, name, spec).
pub type Policy = (&'static str, &'static str, fn() -> Value);

pub const POLICIES: [Policy; 3] = [
    ("EncryptedVolumePolicy", "ebs", || json!({"requireCustomerManagedKey": true})),
    ("TlsIngressPolicy", "tls-all", || json!({})),
    ("TlsIngressPolicy", "tls-prod", || json!({"ingressSelector": {"matchLabels": {"tier": "prod"}}})),
];

/// Policy `kind`/`name` with `spec`, as applied.
pub fn policy(kind: &str, name: &str, spec: Value) -> Value {
    json!({"apiVersion": "dpo.dev/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": spec})
}
