//! `dpo check` throughput over a generated corpus of 100,000 objects: StorageClasses,
//! Ingresses in IngressGroups, and NLB Services. Prints objects/second for parse+evaluate and
//! for evaluate alone. `DPO_BENCH_OBJECTS` sets another corpus size (for profiling).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dpo::cli::check::{Context, Policies, Settings, check};
use dpo::cli::input::{Inputs, parse_text};
use dpo::policy::{AlbDefaults, Offline};
use std::fmt::Write;
use std::time::Duration;

fn objects() -> usize {
    std::env::var("DPO_BENCH_OBJECTS").ok().and_then(|n| n.parse().ok()).unwrap_or(100_000)
}
const INGRESSES_PER_GROUP: usize = 20;

fn storage_class(i: usize, out: &mut String) {
    let encrypted = if i.is_multiple_of(3) { "\"false\"" } else { "\"true\"" };
    write!(
        out,
        "---\napiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: sc-{i}\n  labels:\n    tier: prod\nprovisioner: ebs.csi.aws.com\nparameters:\n  type: gp3\n  encrypted: {encrypted}\n  kmsKeyId: arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-{i:012}\n"
    )
    .unwrap();
}

fn ingress(i: usize, out: &mut String) {
    let group = i / INGRESSES_PER_GROUP;
    let ports = if i.is_multiple_of(4) { r#"[{"HTTP": 80}, {"HTTPS": 443}]"# } else { r#"[{"HTTPS": 443}]"# };
    write!(
        out,
        "---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: app-{i}\n  namespace: team-{group}\n  annotations:\n    alb.ingress.kubernetes.io/group.name: group-{group}\n    alb.ingress.kubernetes.io/group.order: \"{order}\"\n    alb.ingress.kubernetes.io/listen-ports: '{ports}'\n    alb.ingress.kubernetes.io/certificate-arn: arn:aws:acm:us-east-1:111122223333:certificate/{i:08}-2222-3333-4444-555555555555\n    alb.ingress.kubernetes.io/ssl-policy: ELBSecurityPolicy-TLS13-1-2-2021-06\nspec:\n  ingressClassName: alb\n  rules:\n    - host: app-{i}.example.com\n      http:\n        paths:\n          - path: /\n            pathType: Prefix\n            backend:\n              service:\n                name: app-{i}\n                port:\n                  number: 80\n",
        order = i % INGRESSES_PER_GROUP
    )
    .unwrap();
}

fn service(i: usize, out: &mut String) {
    write!(
        out,
        "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: nlb-{i}\n  namespace: team-{i}\n  annotations:\n    service.beta.kubernetes.io/aws-load-balancer-type: external\n    service.beta.kubernetes.io/aws-load-balancer-ssl-cert: arn:aws:acm:us-east-1:111122223333:certificate/{i:08}-aaaa-bbbb-cccc-dddddddddddd\n    service.beta.kubernetes.io/aws-load-balancer-ssl-ports: \"443\"\nspec:\n  type: LoadBalancer\n  ports:\n    - name: https\n      port: 443\n      targetPort: 8443\n"
    )
    .unwrap();
}

/// 40% Ingresses, 30% StorageClasses, 30% Services, interleaved as a real repository would be.
fn corpus() -> String {
    let mut text = String::with_capacity(objects() * 700);
    for i in 0..objects() {
        match i % 10 {
            0..=3 => ingress(i, &mut text),
            4..=6 => storage_class(i, &mut text),
            _ => service(i, &mut text),
        }
    }
    text
}

fn parse(text: &str) -> Inputs {
    let mut inputs = Inputs::default();
    parse_text("corpus.yaml", text, &mut inputs);
    assert!(inputs.errors.is_empty(), "{:?}", inputs.errors.first());
    inputs
}

fn bench(c: &mut Criterion) {
    let text = corpus();
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
