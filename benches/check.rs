//! `dpo check` throughput over a generated corpus of 100,000 objects: StorageClasses,
//! Ingresses in IngressGroups, and NLB Services. Prints objects/second for parse+evaluate and
//! for evaluate alone. `DPO_BENCH_OBJECTS` sets another corpus size (for profiling).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dpo::cli::check::{Context, Policies, Settings, check};
use dpo::cli::input::{Inputs, parse_text};
use dpo::policy::{AlbDefaults, Offline};
use std::time::Duration;

#[path = "../tests/support/corpus.rs"]
mod corpus;

fn objects() -> usize {
    std::env::var("DPO_BENCH_OBJECTS").ok().and_then(|n| n.parse().ok()).unwrap_or(100_000)
}
fn parse(text: &str) -> Inputs {
    let mut inputs = Inputs::default();
    parse_text("corpus.yaml", text, &mut inputs);
    assert!(inputs.errors.is_empty(), "{:?}", inputs.errors.first());
    inputs
}

fn bench(c: &mut Criterion) {
    let text = corpus::manifests(0..objects());
    let facts = Offline { now: jiff::Timestamp::now() };
    let inputs = parse(&text);
    assert_eq!(inputs.objects.len(), objects());

    let alb = AlbDefaults::default();
    let settings = Settings { policies: Policies::FromInputs, context: Context::default(), alb: &alb };

    let mut group = c.benchmark_group("dpo-check");
    group.throughput(Throughput::Elements(objects() as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("parse+evaluate", |b| b.iter(|| check(&parse(&text), settings, &facts)));
    group.bench_function("evaluate", |b| b.iter(|| check(&inputs, settings, &facts)));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
