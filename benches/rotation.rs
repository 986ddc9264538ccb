//! The value cache under rotation, against moto and a fake API server: 1,000 ProtectedSecrets
//! over 250 AWS secrets of 4 KiB, each secret rotated every round and every object's refresh due
//! (an edit makes it due at once, as the interval passing would); 60 rounds stand for an hour of
//! rotation every minute. Prints the bytes the value cache held at most against its default bound
//! and against what it would hold had it kept every version read, AWS value reads, and peak RSS;
//! then the same for a few rounds under a bound a quarter of the current versions' size.
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

/// The AWS secrets, seeded once for every run.
struct World {
    seed: Seed,
    ids: Vec<String>,
}

/// What one run measured.
struct Figures {
    most: usize,
    reads: u64,
    per_round: Duration,
}

/// Syncs `objects` ProtectedSecrets over the world's secrets under a value cache of `bound`
/// bytes, then rotates every secret and refreshes every object for each of `rounds`.
async fn run(world: &World, objects: usize, bound: usize, rounds: std::ops::Range<usize>) -> Figures {
    let mut settings = moto::test_settings();
    // Every due refresh sees the rotation: metadata is read afresh.
    settings.cache.secret_metadata_ttl = Duration::ZERO;
    settings.cache.value_bytes = bound;
    let h = Harness::new(moto::facts(settings).await);
    let secrets = world.ids.len();
    let names: Vec<String> = (0..objects).map(|i| format!("ps-{i:04}")).collect();
    for (i, name) in names.iter().enumerate() {
        h.create(name, spec(&world.ids[i % secrets]));
    }
    let (most, sampler) = watch_bytes(&h.ctx.aws);
    assert_eq!(h.reconcile_all(&names, CONCURRENCY).await, objects, "all synced at the start");
    let (started, count) = (Instant::now(), rounds.len());
    for round in rounds {
        let rotated = futures::stream::iter(world.ids.iter().enumerate())
            .map(|(i, id)| async move { world.seed.put_value(id, &value(i, round).to_string()).await })
            .buffer_unordered(SEEDING)
            .count()
            .await;
        assert_eq!(rotated, secrets);
        for (i, name) in names.iter().enumerate() {
            h.update(name, spec(&world.ids[i % secrets]));
        }
        assert_eq!(h.reconcile_all(&names, CONCURRENCY).await, objects, "round {round}: all synced");
        h.api.clear_calls();
        h.api.forget_events();
        let bytes = h.ctx.aws.cache().value_bytes();
        assert!(bytes <= bound, "round {round}: {bytes} bytes held");
        if round % 10 == 0 {
            let (most, rss) = (mib(most.load(Ordering::Relaxed)), peak_rss_kib() as f64 / 1024.0);
            println!(
                "round {round:>2}: value cache {:.2} MiB now, {most:.2} MiB at most; peak RSS {rss:.1} MiB",
                mib(bytes)
            );
        }
    }
    sampler.abort();
    let most = most.load(Ordering::Relaxed);
    Figures { most, reads: value_reads(&h.ctx.aws), per_round: started.elapsed() / count.max(1) as u32 }
}

fn main() {
    let Sizes { objects, secrets, rounds } = Sizes::pick(FULL, SMOKE);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let seed = Seed::new().await;
        let ids = futures::stream::iter(0..secrets)
            .map(|i| {
                let seed = &seed;
                async move { seed.compliant_secret(NAMESPACE, &value(i, 0)).await }
            })
            .buffered(SEEDING)
            .collect()
            .await;
        let world = World { seed, ids };
        let value_size = value(0, 0).to_string().len();
        let current = secrets * value_size;
        println!(
            "rotation: {objects} ProtectedSecrets over {secrets} AWS secrets of {value_size} bytes, {rounds} rounds \
             (every secret rotated, every object refreshed), concurrency {CONCURRENCY}"
        );
        let hour = run(&world, objects, DEFAULT_VALUE_BYTES, 1..rounds + 1).await;
        let read = secrets * (rounds + 1);
        println!("value cache bound (default --value-cache-bytes): {:.2} MiB", mib(DEFAULT_VALUE_BYTES));
        println!("value cache held at most:                        {:.2} MiB", mib(hour.most));
        println!("the current versions alone:                      {:.2} MiB", mib(current));
        println!("every version read ({read}), had none been dropped: {:.2} MiB", mib(read * value_size));
        println!("AWS value reads (GetSecretValue, BatchGetSecretValue): {}", hour.reads);
        println!("rounds: {:.2} s each on average", hour.per_round.as_secs_f64());
        println!("peak RSS (VmHWM): {:.1} MiB", peak_rss_kib() as f64 / 1024.0);

        let (tight, more) = (current / 4, (rounds / 6).max(1));
        let squeezed = run(&world, objects, tight, rounds + 1..rounds + 1 + more).await;
        println!(
            "under a bound of {:.2} MiB (a quarter of the current versions), {more} rounds: held at most {:.2} MiB, \
             {} AWS value reads, {:.2} s a round",
            mib(tight),
            mib(squeezed.most),
            squeezed.reads,
            squeezed.per_round.as_secs_f64()
        );
        println!("peak RSS (VmHWM): {:.1} MiB", peak_rss_kib() as f64 / 1024.0);
    });
}
