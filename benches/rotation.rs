//! The value cache under rotation, against moto and a fake API server: 1,000 ProtectedSecrets
//! over 250 AWS secrets of 4 KiB, each secret rotated every round and every object's refresh due
//! (an edit makes it due at once, as the interval passing would); 60 rounds stand for an hour of
//! rotation every minute. Prints the bytes the value cache held at most against its bound and
//! against what it would hold had it kept every version read, AWS value reads, and peak RSS.
//!
//! RSS is the whole process: the controller, and the fake API server's objects and kube's Event
//! recorder, which keeps six minutes of Events (in a compressed hour, all of them).

#[path = "../tests/support/mod.rs"]
mod support;

use dpo::aws::{AwsFacts, DEFAULT_VALUE_BYTES};
use futures::StreamExt;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use support::bench::{Sizes, peak_rss_kib};
use support::controller::{Harness, NAMESPACE};
use support::moto::{self, Seed};

const FULL: Sizes = Sizes { objects: 1_000, secrets: 250, rounds: 60 };
const SMOKE: Sizes = Sizes { objects: 40, secrets: 10, rounds: 3 };

/// Bytes of filler in each value, besides its password.
const FILLER: usize = 4096;
/// Reconciles in flight at once, and AWS seeding calls.
const CONCURRENCY: usize = 100;
const SEEDING: usize = 16;

fn value(secret: usize, round: usize) -> Value {
    json!({"username": "app", "password": format!("pw-{secret}-{round}"), "bundle": "x".repeat(FILLER)})
}

fn spec(secret_id: &str) -> Value {
    json!({"source": {"secretId": secret_id},
           "data": [{"key": "password", "property": "password"}, {"key": "ca.crt", "property": "bundle"}]})
}

fn value_reads(aws: &AwsFacts) -> u64 {
    ["GetSecretValue", "BatchGetSecretValue"].iter().map(|op| aws.metrics().count("secretsmanager", op)).sum()
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// The largest of `cache`'s value bytes, sampled every millisecond until dropped.
fn watch_bytes(aws: &AwsFacts) -> (Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let most = Arc::new(AtomicUsize::new(0));
    let (aws, seen) = (aws.clone(), most.clone());
    let task = tokio::spawn(async move {
        loop {
            seen.fetch_max(aws.cache().value_bytes(), Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    (most, task)
}

fn main() {
    let Sizes { objects, secrets, rounds } = Sizes::pick(FULL, SMOKE);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let seed = Seed::new().await;
        let ids: Vec<String> = futures::stream::iter(0..secrets)
            .map(|i| {
                let seed = &seed;
                async move { seed.compliant_secret(NAMESPACE, &value(i, 0)).await }
            })
            .buffered(SEEDING)
            .collect()
            .await;
        let value_size = value(0, 0).to_string().len();
        let mut settings = moto::test_settings();
        // Every due refresh sees the rotation: metadata is read afresh.
        settings.cache.secret_metadata_ttl = Duration::ZERO;
        let h = Harness::new(moto::facts(settings).await);
        let names: Vec<String> = (0..objects).map(|i| format!("ps-{i:04}")).collect();
        for (i, name) in names.iter().enumerate() {
            h.create(name, spec(&ids[i % secrets]));
        }
        let (most, sampler) = watch_bytes(&h.ctx.aws);
        assert_eq!(h.reconcile_all(&names, CONCURRENCY).await, objects, "all synced at the start");

        let started = Instant::now();
        for round in 1..=rounds {
            let rotated = futures::stream::iter(ids.iter().enumerate())
                .map(|(i, id)| {
                    let seed = &seed;
                    async move { seed.put_value(id, &value(i, round).to_string()).await }
                })
                .buffer_unordered(SEEDING)
                .count()
                .await;
            assert_eq!(rotated, secrets);
            for (i, name) in names.iter().enumerate() {
                h.update(name, spec(&ids[i % secrets]));
            }
            assert_eq!(h.reconcile_all(&names, CONCURRENCY).await, objects, "round {round}: all synced");
            h.api.clear_calls();
            h.api.forget_events();
            let bytes = h.ctx.aws.cache().value_bytes();
            assert!(bytes <= DEFAULT_VALUE_BYTES, "round {round}: {bytes} bytes held");
            if round % 10 == 0 || round == rounds {
                println!(
                    "round {round:>2}: value cache {:.2} MiB now, {:.2} MiB at most; peak RSS {:.1} MiB",
                    mib(bytes),
                    mib(most.load(Ordering::Relaxed)),
                    peak_rss_kib() as f64 / 1024.0
                );
            }
        }
        let elapsed = started.elapsed();
        sampler.abort();
        let read = secrets * (rounds + 1);
        println!(
            "rotation: {objects} ProtectedSecrets over {secrets} AWS secrets of {value_size} bytes, {rounds} rounds \
             (every secret rotated, every object refreshed), concurrency {CONCURRENCY}"
        );
        println!("value cache bound (default --value-cache-bytes): {:.2} MiB", mib(DEFAULT_VALUE_BYTES));
        println!("value cache held at most:                        {:.2} MiB", mib(most.load(Ordering::Relaxed)));
        println!("the current versions alone:                      {:.2} MiB", mib(secrets * value_size));
        println!("every version read ({read}), had none been dropped: {:.2} MiB", mib(read * value_size));
        println!("AWS value reads (GetSecretValue, BatchGetSecretValue): {}", value_reads(&h.ctx.aws));
        println!("rounds: {:.2} s each on average", elapsed.as_secs_f64() / rounds as f64);
        println!("peak RSS (VmHWM): {:.1} MiB", peak_rss_kib() as f64 / 1024.0);
    });
}
