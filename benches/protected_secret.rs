//! The ProtectedSecret controller core against moto and a fake API server: 1,000
//! ProtectedSecrets over 100 AWS secrets, a cold start and refresh cycles in which every
//! object's refresh is due. Prints AWS calls by operation against the naive one
//! GetSecretValue per object per refresh, API server writes per steady refresh, the cold start
//! time, how long a runaway template (nested `range(100000)`) takes to be rejected once its
//! fuel runs out, and peak RSS.

#[path = "../tests/support/mod.rs"]
mod support;

use dpo::aws::AwsFacts;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use support::bench::{Sizes, peak_rss_kib};
use support::controller::Harness;
use support::moto::{self, Seed};

/// ProtectedSecrets, AWS secrets and refresh cycles.
const FULL: Sizes = Sizes { objects: 1_000, secrets: 100, rounds: 5 };
const SMOKE: Sizes = Sizes { objects: 100, secrets: 10, rounds: 2 };

/// Reconciles in flight at once, as `ControllerConfig::concurrency` bounds them.
const CONCURRENCY: usize = 100;

/// Far more work than the template fuel allows: only the fuel stops it.
const RUNAWAY: &str = "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}";

/// Metadata lifetime in the cache: longer than a cycle, shorter than the pause between cycles.
const METADATA_TTL: Duration = Duration::from_secs(3);

const OPERATIONS: &[(&str, &str)] = &[
    ("secretsmanager", "DescribeSecret"),
    ("secretsmanager", "ListSecrets"),
    ("secretsmanager", "GetSecretValue"),
    ("secretsmanager", "BatchGetSecretValue"),
    ("kms", "DescribeKey"),
    ("kms", "GetKeyRotationStatus"),
];

fn calls(aws: &AwsFacts) -> BTreeMap<String, u64> {
    OPERATIONS
        .iter()
        .map(|(service, op)| (format!("{service}:{op}"), aws.metrics().count(service, op)))
        .collect()
}

fn main() {
    let Sizes { objects, secrets, rounds: refreshes } = Sizes::pick(FULL, SMOKE);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let seed = Seed::new().await;
        let key = seed.key().await;
        seed.enable_rotation(&key).await;
        let run = moto::unique("bench");
        let ids: Vec<String> = (0..secrets).map(|i| format!("team/{run}/s-{i:03}")).collect();
        for id in &ids {
            seed.secret(id, &json!({"username": "app", "password": id}).to_string(), Some(&key.arn)).await;
        }
        let mut settings = moto::test_settings();
        // Metadata expires between refresh cycles, as it does between hourly refreshes.
        settings.cache.secret_metadata_ttl = METADATA_TTL;
        let h = Harness::new(moto::facts(settings).await);
        let names: Vec<String> = (0..objects).map(|i| format!("ps-{i:04}")).collect();
        for (i, name) in names.iter().enumerate() {
            h.create(name, json!({"source": {"secretId": ids[i % secrets]}, "data": [{"key": "password", "property": "password"}]}));
        }

        let started = Instant::now();
        let ready = h.reconcile_all(&names, CONCURRENCY).await;
        let cold = started.elapsed();
        assert_eq!(ready, objects, "all synced after the cold start");
        let cold_calls = calls(&h.ctx.aws);
        let cold_writes = h.api.writes().len();
        let runaway = runaway_rejection(&h, &ids[0]).await;

        let mut steady_writes = Vec::new();
        for _ in 1..refreshes {
            tokio::time::sleep(METADATA_TTL + Duration::from_millis(100)).await;
            h.api.clear_calls();
            let due = h.restarted();
            assert_eq!(due.reconcile_all(&names, CONCURRENCY).await, objects);
            steady_writes.push(h.api.writes().len());
        }
        let total = calls(&h.ctx.aws);
        let all: u64 = total.values().sum();
        let secretsmanager: u64 = total.iter().filter(|(op, _)| op.starts_with("secretsmanager")).map(|(_, n)| n).sum();
        let naive = (objects * refreshes) as f64;

        println!("protected_secret: {objects} ProtectedSecrets over {secrets} AWS secrets, {refreshes} refresh cycles (1 cold + {} due), concurrency {CONCURRENCY}", refreshes - 1);
        println!("AWS calls by operation (cold start / all cycles):");
        for (op, n) in &total {
            println!("  {op:<36} {:>5} / {n:>5}", cold_calls[op]);
        }
        println!("AWS calls, all operations:                  {all}");
        println!("Secrets Manager calls per ProtectedSecret per refresh: {:.4}", secretsmanager as f64 / naive);
        println!("AWS calls (all services) per ProtectedSecret per refresh: {:.4}", all as f64 / naive);
        println!("naive (1 GetSecretValue per object per refresh):         1.0000");
        println!("reduction vs naive (all services): {:.0}x", naive / all as f64);
        println!("API server writes, cold start (Secrets, status, finalizers, events): {cold_writes}");
        println!("API server writes per steady refresh: {steady_writes:?}");
        println!("cold start to all {objects} synced: {:.2} s", cold.as_secs_f64());
        println!("runaway template rejected in {:.1} ms", runaway.as_secs_f64() * 1000.0);
        println!("peak RSS (VmHWM): {:.1} MiB", peak_rss_kib() as f64 / 1024.0);
    });
}

/// The time of one reconcile of a ProtectedSecret whose template runs away, over a secret whose
/// value and metadata are cached: what its fuel lets it cost the operator.
async fn runaway_rejection(h: &Harness, secret_id: &str) -> Duration {
    h.create("runaway", json!({"source": {"secretId": secret_id}, "template": {"data": {"LOOP": RUNAWAY}}}));
    let started = Instant::now();
    h.reconcile("runaway").await.expect("a template error is reported, not retried");
    let took = started.elapsed();
    let (status, reason, message) = h.ready("runaway");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "TemplateError"), "{message}");
    assert!(message.contains("fuel limit"), "{message}");
    took
}
