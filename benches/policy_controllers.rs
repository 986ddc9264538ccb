//! The policy controllers at scale: 10,000 Ingresses in 500 IngressGroups and 2,000 encrypted
//! StorageClasses with a bound PersistentVolume each, under 3 policies, with moto as AWS (one
//! certificate per group, 20 customer-managed keys, 2,000 volumes) and the governed objects in
//! memory. Prints the time to the first complete status of every policy, the CPU of a full pass,
//! the re-evaluation after one Ingress changes, the AWS calls made, and the peak RSS.
//!
//! Objects are as the apiserver serves them: with a uid and a resourceVersion, by which the engine
//! tells changed objects, and with kubectl's last-applied configuration and managedFields, which
//! the controllers' watches strip before storing them (so does this benchmark, with the same
//! function).

#[path = "../tests/support/mod.rs"]
mod support;

use dpo::api::{EncryptedVolumePolicy, PolicyStatus, TlsIngressPolicy};
use dpo::aws::AwsFacts;
use dpo::controller::policy::{
    PolicyEngine, PolicyKind, TlsPolicies, TlsWorld, VolumePolicies, VolumeWorld, slim,
};
use dpo::controller::{Context, ControllerConfig};
use k8s_openapi::api::networking::v1::Ingress;
use kube::Resource;
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use support::apiserver;
use support::bench::{cpu_time, peak_rss_kib};
use support::moto::{self, Seed};
use support::proxy::Proxy;
use support::world::{self, AwsWorld, CLASSES, GROUPS, INGRESSES_PER_GROUP, KEYS, SSL_POLICY};

/// Every AWS operation a full pass may make.
const OPERATIONS: [(&str, &str); 7] = [
    ("acm", "DescribeCertificate"),
    ("acm", "ListCertificates"),
    ("kms", "DescribeKey"),
    ("kms", "GetKeyRotationStatus"),
    ("ec2", "DescribeVolumes"),
    ("ec2", "GetEbsEncryptionByDefault"),
    ("ec2", "GetEbsDefaultKmsKeyId"),
];

/// An object applied with `kubectl apply` as the apiserver serves it, slimmed as the watches do.
fn served<T: serde::de::DeserializeOwned + Resource>(mut object: Value, uid: String) -> Arc<T> {
    static REVISION: AtomicU64 = AtomicU64::new(1);
    let applied = format!("{object}\n");
    object["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = json!(applied);
    let mut fields = object.clone();
    if let Some(fields) = fields.as_object_mut() {
        fields.retain(|key, _| !matches!(key.as_str(), "apiVersion" | "kind" | "status"));
    }
    let api_version = object["apiVersion"].clone();
    let metadata = &mut object["metadata"];
    metadata["uid"] = json!(uid);
    metadata["resourceVersion"] = json!(REVISION.fetch_add(1, Ordering::Relaxed).to_string());
    metadata["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
    metadata["managedFields"] = json!([{
        "manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": api_version,
        "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": fields_v1(&fields),
    }]);
    let mut object: T = serde_json::from_value(object).expect("object");
    slim(&mut object);
    Arc::new(object)
}

/// The managedFields entry of a manager that set every field of `value` (lists as a whole).
fn fields_v1(value: &Value) -> Value {
    match value {
        Value::Object(map) => map.iter().map(|(key, value)| (format!("f:{key}"), fields_v1(value))).collect(),
        _ => json!({}),
    }
}

fn ingress(index: usize, certificate: &str, ssl_policy: &str) -> Arc<Ingress> {
    let namespace = format!("ns-{}", index % 50);
    served(world::ingress(index, &namespace, certificate, ssl_policy), format!("ingress-{index}"))
}

fn policy<P: serde::de::DeserializeOwned>(kind: &str, name: &str) -> P {
    let (_, _, spec) = world::POLICIES.iter().find(|(k, n, _)| *k == kind && *n == name).expect("a policy");
    let mut object = world::policy(kind, name, spec());
    object["metadata"]["generation"] = json!(1);
    serde_json::from_value(object).expect("policy")
}

fn calls(aws: &AwsFacts) -> Vec<u64> {
    OPERATIONS.iter().map(|(service, operation)| aws.metrics().count(service, operation)).collect()
}

fn print_calls(title: &str, before: &[u64], after: &[u64]) {
    let counts: Vec<String> = OPERATIONS
        .iter()
        .zip(before.iter().zip(after))
        .map(|((service, operation), (b, a))| format!("{service}:{operation}={}", a - b))
        .collect();
    println!("{title}: {}", counts.join(" "));
}

async fn seed_world(seed: &Seed) -> (VolumeWorld, TlsWorld, Vec<String>) {
    let AwsWorld { certificates, keys, volumes } = world::seed_aws(seed, GROUPS, CLASSES).await;
    let volume_world = VolumeWorld {
        storage_classes: (0..CLASSES)
            .map(|i| served(world::storage_class(i, &keys[i % KEYS]), format!("storageclass-{i}")))
            .collect(),
        persistent_volumes: volumes
            .iter()
            .enumerate()
            .map(|(i, id)| served(world::persistent_volume(i, id), format!("persistentvolume-{i}")))
            .collect(),
    };
    let tls_world = TlsWorld {
        ingresses: (0..GROUPS * INGRESSES_PER_GROUP)
            .map(|i| ingress(i, &certificates[i / INGRESSES_PER_GROUP], SSL_POLICY))
            .collect(),
        ..TlsWorld::default()
    };
    (volume_world, tls_world, certificates)
}

fn context(client: kube::Client, aws: AwsFacts) -> Context {
    Context::new(client, aws, ControllerConfig::default(), &mut Registry::default())
}

/// Reconciles every policy once, concurrently as the controllers do; returns their statuses.
async fn full_pass(
    volumes: &PolicyEngine<VolumePolicies>,
    tls: &PolicyEngine<TlsPolicies>,
    volume_policy: &EncryptedVolumePolicy,
    tls_policies: &[TlsIngressPolicy; 2],
    volume_world: &VolumeWorld,
    tls_world: &TlsWorld,
) -> (PolicyStatus, [PolicyStatus; 2], usize) {
    let (v, a, b) = tokio::join!(
        volumes.reconcile(volume_policy, volume_world),
        tls.reconcile(&tls_policies[0], tls_world),
        tls.reconcile(&tls_policies[1], tls_world),
    );
    let (v, a, b) = (v.expect("reconcile"), a.expect("reconcile"), b.expect("reconcile"));
    let writes = v.writes + a.writes + b.writes;
    (v.status, [a.status, b.status], writes)
}

fn summarize<K: PolicyKind>(name: &str, status: &PolicyStatus) -> String {
    let summary = status.summary.clone().unwrap_or_default();
    let ready =
        status.conditions.iter().find(|c| c.type_ == "Ready").map(|c| c.status.as_str()).unwrap_or("-");
    format!(
        "{}/{name}: Ready={ready} evaluated={} compliant={} violations={}",
        K::CONTROLLER,
        summary.evaluated,
        summary.compliant,
        summary.violations
    )
}

#[tokio::main]
async fn main() {
    let seed = Seed::new().await;
    let seeding = Instant::now();
    let (volume_world, mut tls_world, certificates) = seed_world(&seed).await;
    println!(
        "seeded moto in {:.1}s: {GROUPS} certificates, {KEYS} keys, {CLASSES} volumes; {} Ingresses in {GROUPS} groups, {CLASSES} StorageClasses and PersistentVolumes",
        seeding.elapsed().as_secs_f64(),
        tls_world.ingresses.len()
    );

    // moto lacks GetEbsDefaultKmsKeyId; the proxy answers it as AWS does.
    let proxy = Proxy::start(moto::endpoint()).await;
    proxy.inject("GetEbsDefaultKmsKeyId", moto::ebs_default_key_answer("alias/aws/ebs"), 1);
    let aws = moto::facts_at(proxy.endpoint(), dpo::aws::AwsSettings::default()).await;
    let (client, api) = apiserver::start();
    let volumes = PolicyEngine::<VolumePolicies>::new(context(client.clone(), aws.clone()));
    let tls = PolicyEngine::<TlsPolicies>::new(context(client.clone(), aws.clone()));
    let mut volume_policy: EncryptedVolumePolicy = policy("EncryptedVolumePolicy", "ebs");
    let mut tls_policies: [TlsIngressPolicy; 2] =
        [policy("TlsIngressPolicy", "tls-all"), policy("TlsIngressPolicy", "tls-prod")];

    api.store(&volume_policy);
    tls_policies.iter().for_each(|policy| api.store(policy));
    let before = calls(&aws);
    let (started, cpu) = (Instant::now(), cpu_time("self"));
    let (volume_status, tls_statuses, writes) =
        full_pass(&volumes, &tls, &volume_policy, &tls_policies, &volume_world, &tls_world).await;
    println!(
        "first complete status of all 3 policies: {:.0} ms wall, {:.0} ms CPU, {writes} status writes",
        started.elapsed().as_secs_f64() * 1e3,
        (cpu_time("self") - cpu).as_secs_f64() * 1e3
    );
    println!("  {}", summarize::<VolumePolicies>("ebs", &volume_status));
    println!("  {}", summarize::<TlsPolicies>("tls-all", &tls_statuses[0]));
    println!("  {}", summarize::<TlsPolicies>("tls-prod", &tls_statuses[1]));
    let after_first = calls(&aws);
    print_calls("AWS calls, first full pass", &before, &after_first);
    volume_policy.status = Some(volume_status);
    let [all_status, prod_status] = tls_statuses;
    tls_policies[0].status = Some(all_status);
    tls_policies[1].status = Some(prod_status);
    api.take();

    // The periodic pass: fresh engines (no facts held, no verdicts kept), the aws layer's cache
    // warm. A controller has one engine per kind; the first ones go.
    drop((volumes, tls));
    let volumes = PolicyEngine::<VolumePolicies>::new(context(client.clone(), aws.clone()));
    let tls = PolicyEngine::<TlsPolicies>::new(context(client.clone(), aws.clone()));
    let (started, cpu) = (Instant::now(), cpu_time("self"));
    let (_, _, writes) =
        full_pass(&volumes, &tls, &volume_policy, &tls_policies, &volume_world, &tls_world).await;
    println!(
        "full re-evaluation pass (unchanged world): {:.0} ms wall, {:.0} ms CPU, {writes} status writes, {} apiserver requests",
        started.elapsed().as_secs_f64() * 1e3,
        (cpu_time("self") - cpu).as_secs_f64() * 1e3,
        api.take().len()
    );
    print_calls("AWS calls, second full pass", &after_first, &calls(&aws));

    // One Ingress gets a security policy that allows TLS 1.0: the policy that governs it (a
    // dev-tier Ingress: tls-all only) is evaluated again.
    let changed = 1_234;
    tls_world.ingresses[changed] =
        ingress(changed, &certificates[changed / INGRESSES_PER_GROUP], "ELBSecurityPolicy-2016-08");
    let started = Instant::now();
    let outcome = tls.reconcile(&tls_policies[0], &tls_world).await.expect("reconcile");
    println!(
        "one Ingress changed: tls-all re-evaluated and its status written in {:.1} ms ({} of {} units judged, {} write, {} apiserver requests; violations now {})",
        started.elapsed().as_secs_f64() * 1e3,
        outcome.judged_units,
        outcome.units,
        outcome.writes,
        api.take().len(),
        outcome.status.summary.map(|s| s.violations).unwrap_or_default()
    );
    print_calls("AWS calls, whole run", &before, &calls(&aws));
    println!("peak RSS (VmHWM): {:.1} MiB", peak_rss_kib() as f64 / 1024.0);
}
