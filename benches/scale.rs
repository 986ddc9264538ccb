//! The operator at scale on a real control plane: `dpo controller` (the release binary, default
//! flags but for where AWS and the lease are) over 10,000 ProtectedSecrets in 100 namespaces on
//! 1,000 AWS secrets (CMK-encrypted, rotation on; `data`, `dataFrom` and templates mixed), and
//! 10,000 Ingresses in 500 IngressGroups, 2,000 StorageClasses and bound PersistentVolumes under
//! 3 policies, with moto as AWS behind a counting proxy.
//!
//! `cargo bench --bench scale` starts the test control plane (`tests/tools/control-plane.sh`)
//! unless `KUBECONFIG` names a cluster, which must hold no ProtectedSecrets. It prints the time to
//! all Ready cold and after a restart, kube-apiserver's own request counts for both and for one
//! compressed refresh cycle, AWS calls per refresh and per rotated secret, and the controller's
//! CPU and memory, each against its target. Without `--bench` (`cargo test --benches`) it runs
//! the same on 100 ProtectedSecrets and 100 Ingresses; with `DPO_SCALE=tenth`, on a tenth of the
//! full size. The controller inherits the environment, so `DPO_CONCURRENCY=8 cargo bench --bench
//! scale` measures another setting.

#[path = "../tests/support/mod.rs"]
mod support;

use dpo::api::{EncryptedVolumePolicy, ProtectedSecret, TlsIngressPolicy};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolume};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, ApiResource, ListParams};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};
use support::bench::{cpu_time, status_kib};
use support::cluster::{self, create_all};
use support::control_plane::{ControlPlane, apiserver_requests, grown};
use support::moto::{self, Seed};
use support::process::{DpoProcess, scrape};
use support::proxy::Proxy;
use support::traffic::{counts, print_counts, values_read};
use support::world::{self, INGRESSES_PER_GROUP, POLICIES, SSL_POLICY};

struct Size {
    namespaces: usize,
    secrets_per_namespace: usize,
    objects_per_secret: usize,
    groups: usize,
    classes: usize,
    /// `--default-refresh` of the compressed refresh cycle.
    refresh: Duration,
}

const FULL: Size = Size {
    namespaces: 100,
    secrets_per_namespace: 10,
    objects_per_secret: 10,
    groups: 500,
    classes: 2_000,
    // Long enough for the warm start's 10,000 reconciles: a shorter cycle re-reconciles the
    // objects synced first before the rest are reached.
    refresh: Duration::from_secs(240),
};
/// A tenth of [`FULL`], for the figures of a smaller cluster: `DPO_SCALE=tenth`.
const TENTH: Size = Size {
    namespaces: 10,
    secrets_per_namespace: 10,
    objects_per_secret: 10,
    groups: 50,
    classes: 200,
    refresh: Duration::from_secs(240),
};
const SMOKE: Size = Size {
    namespaces: 2,
    secrets_per_namespace: 5,
    objects_per_secret: 10,
    groups: 5,
    classes: 20,
    refresh: Duration::from_secs(10),
};

/// Requests in flight at once while seeding kube-apiserver and moto.
const SEEDING: usize = 32;
/// Secrets rotated in AWS during the steady period.
const ROTATED: usize = 10;
/// Longest wait for all Ready; beyond it the figure is reported as missed.
const GIVE_UP: Duration = Duration::from_secs(900);

/// Targets on the default settings of a 2-core machine.
const READY_TARGET: Duration = Duration::from_secs(60);
const AWS_CALLS_PER_100_TARGET: f64 = 1.0;
const VALUE_READS_PER_ROTATION_TARGET: f64 = 1.0;
const PEAK_RSS_TARGET_MIB: f64 = 128.0;

impl Size {
    fn secrets(&self) -> usize {
        self.namespaces * self.secrets_per_namespace
    }

    fn objects(&self) -> usize {
        self.secrets() * self.objects_per_secret
    }
}

fn namespace(n: usize) -> String {
    format!("scale-{n:03}")
}

fn secret_id(secret: usize, size: &Size) -> String {
    format!("{}/app-{secret}", namespace(secret / size.secrets_per_namespace))
}

fn secret_value(secret: usize, round: usize) -> String {
    json!({"username": format!("user-{secret}"), "password": format!("pw-{secret}-{round}"), "host": format!("db-{secret}.internal")})
        .to_string()
}

/// ProtectedSecret `copy` of `secret`: explicit keys, every key, or a template, in turn.
fn protected_secret(secret: usize, copy: usize, size: &Size) -> Value {
    let source = json!({"secretId": secret_id(secret, size)});
    let spec = match copy % 3 {
        0 => {
            json!({"source": source, "data": [{"key": "password", "property": "password"}, {"key": "username", "property": "username"}]})
        }
        1 => json!({"source": source, "dataFrom": {"extract": true}}),
        _ => json!({"source": source, "data": [{"key": "password", "property": "password"}],
                    "template": {"data": {"DSN": "postgres://{{ username }}:{{ password }}@{{ host }}/app"}}}),
    };
    json!({
        "apiVersion": "dpo.dev/v1alpha1", "kind": "ProtectedSecret",
        "metadata": {"name": format!("app-{secret}-{copy}"), "namespace": namespace(secret / size.secrets_per_namespace)},
        "spec": spec,
    })
}

/// Seeds AWS (one rotating key per namespace, the secrets, the world's certificates, keys and
/// volumes) and the cluster; returns the key the proxy gives as the EBS default.
async fn seed(client: &kube::Client, size: &Size) -> String {
    let started = Instant::now();
    let seed = Seed::new().await;
    let mut keys = Vec::new();
    for _ in 0..size.namespaces {
        let key = seed.key().await;
        seed.enable_rotation(&key).await;
        keys.push(key.arn);
    }
    let (seed_ref, keys_ref) = (&seed, &keys);
    futures::stream::iter(0..size.secrets())
        .for_each_concurrent(SEEDING, |secret| async move {
            let id = secret_id(secret, size);
            let key = &keys_ref[secret / size.secrets_per_namespace];
            seed_ref.secret(&id, &secret_value(secret, 0), Some(key)).await;
            seed_ref.rotation(&id, 30).await;
        })
        .await;
    let aws = world::seed_aws(&seed, size.groups, size.classes).await;
    seed.ebs_default(true).await;
    println!(
        "seeded moto in {:.0} s: {} keys and {} secrets (rotation on), {} certificates, {} keys and {} volumes",
        started.elapsed().as_secs_f64(),
        size.namespaces,
        size.secrets(),
        aws.certificates.len(),
        aws.keys.len(),
        aws.volumes.len()
    );

    let started = Instant::now();
    let erase = ApiResource::erase::<Namespace>(&());
    let namespaces = (0..size.namespaces)
        .map(|n| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace(n)}}));
    create_all(client, &erase, namespaces.collect(), SEEDING).await;
    let psecs = (0..size.secrets()).flat_map(|s| (0..size.objects_per_secret).map(move |c| (s, c)));
    let psecs = psecs.map(|(s, c)| protected_secret(s, c, size)).collect();
    create_all(client, &ApiResource::erase::<ProtectedSecret>(&()), psecs, SEEDING).await;
    let ingresses = (0..size.groups * INGRESSES_PER_GROUP).map(|i| {
        world::ingress(
            i,
            &namespace(i % size.namespaces),
            &aws.certificates[i / INGRESSES_PER_GROUP],
            SSL_POLICY,
        )
    });
    create_all(client, &ApiResource::erase::<Ingress>(&()), ingresses.collect(), SEEDING).await;
    let classes = (0..size.classes).map(|i| world::storage_class(i, &aws.keys[i % aws.keys.len()]));
    create_all(client, &ApiResource::erase::<StorageClass>(&()), classes.collect(), SEEDING).await;
    let volumes = aws.volumes.iter().enumerate().map(|(i, id)| world::persistent_volume(i, id));
    create_all(client, &ApiResource::erase::<PersistentVolume>(&()), volumes.collect(), SEEDING).await;
    for (kind, name, spec) in POLICIES {
        let resource = policy_resource(kind);
        create_all(client, &resource, vec![world::policy(kind, name, spec())], 1).await;
    }
    println!(
        "seeded kube-apiserver in {:.0} s: {} namespaces, {} ProtectedSecrets, {} Ingresses in {} IngressGroups, {} StorageClasses, {} bound PersistentVolumes, {} policies",
        started.elapsed().as_secs_f64(),
        size.namespaces,
        size.objects(),
        size.groups * INGRESSES_PER_GROUP,
        size.groups,
        size.classes,
        size.classes,
        POLICIES.len()
    );
    aws.keys[0].clone()
}

fn policy_resource(kind: &str) -> ApiResource {
    match kind {
        "EncryptedVolumePolicy" => ApiResource::erase::<EncryptedVolumePolicy>(&()),
        _ => ApiResource::erase::<TlsIngressPolicy>(&()),
    }
}

/// A running controller and where its metrics are.
struct Controller {
    process: DpoProcess,
    metrics: SocketAddr,
    started: Instant,
    started_unix: i64,
}

fn start_controller(aws_endpoint: &str, refresh: Option<Duration>, log: &Path) -> Controller {
    let metrics =
        std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port");
    let mut args = vec![
        "controller".to_string(),
        format!("--region={}", moto::REGION),
        format!("--aws-endpoint-url={aws_endpoint}"),
        "--lease-namespace=default".into(),
        // One listener for both, on loopback: the defaults' fixed ports may be taken.
        format!("--metrics-address={metrics}"),
        format!("--health-address={metrics}"),
    ];
    args.extend(refresh.map(|r| format!("--default-refresh={}s", r.as_secs())));
    let started_unix = jiff::Timestamp::now().as_second();
    let process = DpoProcess::start(&args, &[], log);
    Controller { process, metrics, started: Instant::now(), started_unix }
}

impl Controller {
    fn pid(&self) -> String {
        self.process.pid().to_string()
    }

    async fn metrics(&self) -> String {
        scrape(self.metrics).await.unwrap_or_default()
    }

    /// Waits until every ProtectedSecret synced in this process and each policy controller
    /// evaluated as many policies as there are; the time since start, `None` past [`GIVE_UP`].
    async fn ready(&self, size: &Size) -> Option<Duration> {
        let tls = POLICIES.iter().filter(|(kind, _, _)| *kind == "TlsIngressPolicy").count() as f64;
        loop {
            let text = self.metrics().await;
            let synced = text
                .lines()
                .filter(|l| l.starts_with("dpo_secret_last_sync_timestamp_seconds{"))
                .filter(|l| value_of(l) >= self.started_unix as f64)
                .count();
            let evaluated = |controller: &str| {
                let series = format!("{{controller=\"{controller}\"}}");
                sample(&text, &format!("dpo_reconciles_total{series}"))
                    - sample(&text, &format!("dpo_reconcile_errors_total{series}"))
            };
            if synced >= size.objects()
                && evaluated("encryptedvolumepolicy") >= (POLICIES.len() as f64 - tls)
                && evaluated("tlsingresspolicy") >= tls
            {
                return Some(self.started.elapsed());
            }
            if self.started.elapsed() > GIVE_UP {
                println!(
                    "  gave up after {GIVE_UP:?}: {synced} of {} ProtectedSecrets synced",
                    size.objects()
                );
                return None;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    fn report_process(&self, title: &str) {
        let pid = self.pid();
        println!(
            "  controller {title}: CPU {:.1} s, peak RSS (VmHWM) {:.1} MiB, RSS now {:.1} MiB",
            cpu_time(&pid).as_secs_f64(),
            status_kib(&pid, "VmHWM") as f64 / 1024.0,
            status_kib(&pid, "VmRSS") as f64 / 1024.0
        );
    }
}

fn value_of(line: &str) -> f64 {
    line.rsplit_once(' ').and_then(|(_, v)| v.parse().ok()).unwrap_or(0.0)
}

/// The value of the series `series` (`name{labels}`), 0 when absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines().find(|l| l.starts_with(series) && l[series.len()..].starts_with(' ')).map_or(0.0, value_of)
}

/// ProtectedSecrets not Ready=True, and policies not Ready=True, as kube-apiserver holds them.
async fn not_ready(client: &kube::Client) -> (usize, Vec<String>) {
    let ready = |conditions: Option<&Value>| {
        conditions
            .and_then(Value::as_array)
            .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
    };
    let psecs: Api<ProtectedSecret> = Api::all(client.clone());
    let listed = psecs.list(&ListParams::default()).await.expect("list ProtectedSecrets");
    let psecs = listed
        .items
        .iter()
        .filter(|ps| !ready(serde_json::to_value(&ps.status).ok().as_ref().map(|s| &s["conditions"])))
        .count();
    let mut policies = Vec::new();
    for (kind, name, _) in POLICIES {
        let resource = policy_resource(kind);
        let api: Api<kube::api::DynamicObject> = Api::all_with(client.clone(), &resource);
        let object = api.get(name).await.expect("a policy");
        if !ready(object.data.get("status").map(|s| &s["conditions"])) {
            policies.push(format!("{kind}/{name}: {}", object.data["status"]));
        }
    }
    (psecs, policies)
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

fn print_ready(title: &str, took: Option<Duration>) {
    match took {
        Some(took) => println!(
            "{title}: all Ready in {:.1} s (target <= {} s: {})",
            took.as_secs_f64(),
            READY_TARGET.as_secs(),
            verdict(took <= READY_TARGET)
        ),
        None => println!(
            "{title}: not all Ready within {GIVE_UP:?} (target <= {} s: MISSED)",
            READY_TARGET.as_secs()
        ),
    }
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim().to_string()
}

/// Rotates `ROTATED` secrets, one per namespace, and waits until every ProtectedSecret of each
/// has synced the new version; returns how long that took.
async fn rotate(client: &kube::Client, size: &Size) -> Duration {
    let seed = Seed::new().await;
    let rotated: Vec<usize> = (0..ROTATED).map(|i| (i * size.secrets() / ROTATED) % size.secrets()).collect();
    let mut versions = HashMap::new();
    for &secret in &rotated {
        versions.insert(
            secret_id(secret, size),
            seed.put_value(&secret_id(secret, size), &secret_value(secret, 1)).await,
        );
    }
    let started = Instant::now();
    loop {
        let mut behind = 0;
        for &secret in &rotated {
            let psecs: Api<ProtectedSecret> =
                Api::namespaced(client.clone(), &namespace(secret / size.secrets_per_namespace));
            let want = &versions[&secret_id(secret, size)];
            let listed = psecs.list(&ListParams::default()).await.expect("list ProtectedSecrets");
            behind += listed
                .items
                .iter()
                .filter(|ps| ps.spec.source.secret_id == secret_id(secret, size))
                .filter(|ps| ps.status.as_ref().and_then(|s| s.synced_version_id.as_ref()) != Some(want))
                .count();
        }
        if behind == 0 || started.elapsed() > GIVE_UP {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn run(size: &Size) {
    println!("load at start: {}", load());
    let client = cluster::client().await;
    cluster::install_crds(&client).await;
    let existing = Api::<ProtectedSecret>::all(client.clone()).list(&ListParams::default().limit(1)).await;
    assert!(
        existing.expect("list ProtectedSecrets").items.is_empty(),
        "the scale bench wants a cluster without ProtectedSecrets"
    );
    let proxy = Proxy::start(moto::endpoint()).await;
    let ebs_default = seed(&client, size).await;
    // moto lacks GetEbsDefaultKmsKeyId; the proxy answers it as AWS does, every time.
    proxy.inject("GetEbsDefaultKmsKeyId", moto::ebs_default_key_answer(&ebs_default), usize::MAX);
    let logs = std::env::temp_dir().join(format!("dpo-scale-logs-{}", std::process::id()));
    std::fs::create_dir_all(&logs).expect("a log directory");
    println!("controller logs in {}", logs.display());

    let before = counts(&client, &proxy).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let idle: u64 = grown(&before.apiserver, &apiserver_requests(&client).await).values().sum();
    println!(
        "kube-apiserver requests in 10 s without the controller (kube-controller-manager, this bench): {idle}"
    );

    println!(
        "\ncold start: {} ProtectedSecrets on {} AWS secrets, 3 policies over {} Ingresses and {} StorageClasses",
        size.objects(),
        size.secrets(),
        size.groups * INGRESSES_PER_GROUP,
        size.classes
    );
    let before = counts(&client, &proxy).await;
    let mut controller = start_controller(proxy.endpoint(), None, &logs.join("cold.log"));
    let cold = controller.ready(size).await;
    let after = counts(&client, &proxy).await;
    print_ready("cold start", cold);
    print_counts("cold start", &before, &after);
    controller.report_process("after the cold start");
    let cold_peak = status_kib(&controller.pid(), "VmHWM") as f64 / 1024.0;
    let (psecs, policies) = not_ready(&client).await;
    println!("  not Ready as kube-apiserver holds them: {psecs} ProtectedSecrets, policies {policies:?}");

    println!("\nwarm start: the controller restarted (SIGTERM), the apiserver's caches warm");
    controller.process.stop();
    let before = counts(&client, &proxy).await;
    let mut controller = start_controller(proxy.endpoint(), None, &logs.join("warm.log"));
    let warm = controller.ready(size).await;
    let after = counts(&client, &proxy).await;
    print_ready("warm start", warm);
    print_counts("warm start", &before, &after);
    controller.report_process("after the warm start");

    let refresh = size.refresh;
    println!(
        "\nsteady: restarted with --default-refresh={}s; one refresh cycle counted after all Ready",
        refresh.as_secs()
    );
    controller.process.stop();
    let controller = start_controller(proxy.endpoint(), Some(refresh), &logs.join("steady.log"));
    let restarted = controller.ready(size).await;
    println!("  all Ready again in {:.1} s", restarted.unwrap_or(GIVE_UP).as_secs_f64());
    let reconciles = |text: &str| sample(text, "dpo_reconciles_total{controller=\"protectedsecret\"}");
    let (before, before_reconciles) =
        (counts(&client, &proxy).await, reconciles(&controller.metrics().await));
    tokio::time::sleep(refresh).await;
    let (after, after_reconciles) = (counts(&client, &proxy).await, reconciles(&controller.metrics().await));
    let refreshes = after_reconciles - before_reconciles;
    println!(
        "  {refreshes} ProtectedSecret reconciles in the {} s counted ({} objects)",
        refresh.as_secs(),
        size.objects()
    );
    let (writes, calls) = print_counts("one refresh cycle", &before, &after);
    let per_cycle = if refreshes > 0.0 { size.objects() as f64 / refreshes } else { 0.0 };
    let per_100 = calls as f64 * per_cycle * 100.0 / size.objects() as f64;
    println!(
        "AWS calls per 100 ProtectedSecrets per refresh: {per_100:.2} (target <= {AWS_CALLS_PER_100_TARGET}: {})",
        verdict(refreshes > 0.0 && per_100 <= AWS_CALLS_PER_100_TARGET)
    );
    println!(
        "kube-apiserver writes per steady refresh, Leases aside: {:.0} (target 0: {})",
        writes as f64 * per_cycle,
        verdict(writes == 0)
    );
    controller.report_process("after the steady cycle");

    println!(
        "\nrotation: {ROTATED} AWS secrets get a new version ({} ProtectedSecrets each)",
        size.objects_per_secret
    );
    let before = counts(&client, &proxy).await;
    let took = rotate(&client, size).await;
    let after = counts(&client, &proxy).await;
    let reads = values_read(&proxy, &before, &after);
    println!(
        "  all their ProtectedSecrets synced the new version {:.1} s after the rotation",
        took.as_secs_f64()
    );
    print_counts("rotation", &before, &after);
    let per_secret = reads as f64 / ROTATED as f64;
    println!(
        "values read per rotated secret: {per_secret:.2} (target <= {VALUE_READS_PER_ROTATION_TARGET}: {})",
        verdict(per_secret <= VALUE_READS_PER_ROTATION_TARGET)
    );
    controller.report_process("at the end");
    println!(
        "peak RSS of the controller from a cold start: {cold_peak:.1} MiB (target <= {PEAK_RSS_TARGET_MIB} MiB: {})",
        verdict(cold_peak <= PEAK_RSS_TARGET_MIB)
    );
    println!("load at end: {}", load());
}

fn main() {
    let size = match (std::env::args().any(|a| a == "--bench"), std::env::var("DPO_SCALE").as_deref()) {
        (false, _) => &SMOKE,
        (true, Ok("tenth")) => &TENTH,
        (true, _) => &FULL,
    };
    // Before the runtime's threads: it sets KUBECONFIG.
    let _control_plane = ControlPlane::ensure();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(run(size));
}
