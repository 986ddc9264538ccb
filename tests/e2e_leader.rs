//! Leader election between two `dpo controller` processes against the cluster in KUBECONFIG:
//! one leads, the other takes over once the lease expires when the leader dies and carries
//! out what changed meanwhile, a leader stopped by SIGTERM releases the lease and exits 0, and a
//! leader whose Lease requests hang stops before another replica can take over.

mod support;

use dpo::api::ProtectedSecret;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};
use support::cluster::{self, eventually};
use support::lease_stall::LeaseStall;
use support::moto::{self, Seed};
use support::process::DpoProcess;

const NAMESPACE: &str = "default";
const LEASE_SECONDS: u64 = 6;
const RENEW_DEADLINE_SECONDS: u64 = 4;

/// A replica reconciling the ProtectedSecrets of `namespace` against moto, its log in `logs`,
/// reaching the cluster in `kubeconfig` (default: the tests' own).
fn start(lease: &str, identity: &str, namespace: &str, logs: &Path, kubeconfig: Option<&Path>) -> DpoProcess {
    let args = [
        "controller".into(),
        "--log-format=text".into(),
        "--controllers=protected-secrets".into(),
        "--metrics-address=127.0.0.1:0".into(),
        "--health-address=127.0.0.1:0".into(),
        format!("--lease-namespace={NAMESPACE}"),
        format!("--lease-name={lease}"),
        format!("--identity={identity}"),
        format!("--lease-duration={LEASE_SECONDS}s"),
        format!("--renew-deadline={RENEW_DEADLINE_SECONDS}s"),
        "--retry-period=1s".into(),
        format!("--region={}", moto::REGION),
        format!("--aws-endpoint-url={}", moto::endpoint()),
        format!("--secret-namespaces={namespace}"),
    ];
    let env: Vec<_> =
        kubeconfig.map(|path| ("KUBECONFIG", path.to_str().expect("UTF-8 path"))).into_iter().collect();
    DpoProcess::start(&args, &env, &logs.join(format!("{identity}.log")))
}

async fn lease_spec(leases: &Api<Lease>, name: &str) -> LeaseSpec {
    leases.get(name).await.expect("cannot read the Lease").spec.expect("Lease spec")
}

async fn holder(leases: &Api<Lease>, name: &str) -> Option<String> {
    let lease = leases.get_opt(name).await.expect("cannot read the Lease")?;
    lease.spec.and_then(|spec| spec.holder_identity).filter(|h| !h.is_empty())
}

/// Waits until `want` holds the Lease; how long that took.
async fn wait_for_holder(leases: &Api<Lease>, name: &str, want: &str) -> Duration {
    let start = Instant::now();
    let what = format!("Lease {name} held by {want}");
    eventually(&what, || async { (holder(leases, name).await.as_deref() == Some(want)).then_some(()) }).await;
    start.elapsed()
}

/// Waits until Secret `name` holds `password` and the label `release=<release>`.
async fn secret_holds(secrets: &Api<Secret>, name: &str, password: &str, release: &str) {
    eventually(&format!("Secret {name} holding {password}, release {release}"), || async {
        let secret = secrets.get_opt(name).await.ok()??;
        let held = secret.data?.get("password")?.0.clone();
        let labelled = secret.metadata.labels?.get("release")? == release;
        (held == password.as_bytes() && labelled).then_some(())
    })
    .await;
}

#[tokio::test]
async fn one_replica_leads_and_the_other_takes_over() {
    let client = cluster::client().await;
    cluster::install_crds(&client).await;
    let namespace = cluster::create_namespace(&client, "dpo-leader").await;
    let leases: Api<Lease> = Api::namespaced(client.clone(), NAMESPACE);
    let name = format!("dpo-e2e-{:08x}", fastrand::u32(..));
    let lease = Duration::from_secs(LEASE_SECONDS);

    let seed = Seed::new().await;
    let secret_id = seed.compliant_secret(&namespace, &json!({"password": "pw-1"})).await;
    let psecs: Api<ProtectedSecret> = Api::namespaced(client.clone(), &namespace);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let apply = |release: &str| {
        let object = json!({
            "apiVersion": "dpo.dev/v1alpha1", "kind": "ProtectedSecret", "metadata": {"name": "db"},
            "spec": {"source": {"secretId": secret_id}, "data": [{"key": "password", "property": "password"}],
                     "target": {"labels": {"release": release}}, "refreshInterval": "1h"},
        });
        let psecs = psecs.clone();
        async move {
            let params = PatchParams::apply(cluster::FIELD_MANAGER).force();
            psecs.patch("db", &params, &Patch::Apply(&object)).await.expect("applying ProtectedSecret db");
        }
    };

    let logs = tempfile::tempdir().expect("temporary directory");
    let mut a = start(&name, "replica-a", &namespace, logs.path(), None);
    wait_for_holder(&leases, &name, "replica-a").await;
    apply("1").await;
    secret_holds(&secrets, "db", "pw-1", "1").await;
    let mut b = start(&name, "replica-b", &namespace, logs.path(), None);
    tokio::time::sleep(lease).await;
    assert_eq!(holder(&leases, &name).await.as_deref(), Some("replica-a"), "the leader keeps its lease");

    // A killed leader cannot release: b takes over once the lease expires on b's clock, and
    // what changed while nobody led (a spec edit, a rotation in AWS) is carried out.
    a.kill();
    apply("2").await;
    seed.put_value(&secret_id, &json!({"password": "pw-2"}).to_string()).await;
    let took = wait_for_holder(&leases, &name, "replica-b").await;
    secret_holds(&secrets, "db", "pw-2", "2").await;
    println!(
        "replica-b took over {took:?} after replica-a was killed (lease {lease:?}) and synced what changed"
    );

    // SIGTERM: a graceful stop that releases the lease and exits 0.
    b.stop();
    assert_eq!(holder(&leases, &name).await, None, "the lease was not released");

    leases.delete(&name, &DeleteParams::default()).await.unwrap();
    cluster::delete_namespace(&client, &namespace).await;
}

/// replica-a reaches the apiserver through a proxy that, once told, never answers its Lease
/// requests while still serving its watches and writes. replica-a stops its controllers and exits
/// 1 at its renew deadline; replica-b takes over only later, once the lease has expired.
#[tokio::test]
async fn a_leader_whose_lease_requests_hang_stops_before_another_takes_over() {
    let client = cluster::client().await;
    cluster::install_crds(&client).await;
    let namespace = cluster::create_namespace(&client, "dpo-leader").await;
    let leases: Api<Lease> = Api::namespaced(client.clone(), NAMESPACE);
    let name = format!("dpo-e2e-{:08x}", fastrand::u32(..));
    let proxy = LeaseStall::start(client.clone()).await;
    let logs = tempfile::tempdir().expect("temporary directory");
    let mut a = start(&name, "replica-a", &namespace, logs.path(), Some(proxy.kubeconfig()));
    wait_for_holder(&leases, &name, "replica-a").await;
    let mut b = start(&name, "replica-b", &namespace, logs.path(), None);
    eventually("replica-b following replica-a", || async {
        b.log_text().contains("waiting for leadership").then_some(())
    })
    .await;

    proxy.stall();
    let patience = Instant::now() + cluster::PATIENCE;
    let (exit, stopped) = loop {
        if let Some(exit) = a.exited() {
            break (exit, jiff::Timestamp::now());
        }
        assert_eq!(holder(&leases, &name).await.as_deref(), Some("replica-a"), "taken while replica-a ran");
        assert!(Instant::now() < patience, "replica-a still running:\n{}", a.log_text());
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let renewed = lease_spec(&leases, &name).await.renew_time.expect("renewTime").0;
    assert_eq!(exit.code(), Some(1), "replica-a exited with {exit:?}:\n{}", a.log_text());
    let log = a.log_text();
    assert!(log.contains("lost leadership: controllers stopped"), "{log}");
    assert!(log.contains("not renewed within the renew deadline of 4s"), "{log}");

    wait_for_holder(&leases, &name, "replica-b").await;
    let acquired = lease_spec(&leases, &name).await.acquire_time.expect("acquireTime").0;
    assert!(stopped < acquired, "replica-b acquired at {acquired}, replica-a stopped at {stopped}");
    let expires = renewed + Duration::from_secs(LEASE_SECONDS);
    println!(
        "replica-a stopped {:.2}s after its last renewal (renew deadline {RENEW_DEADLINE_SECONDS}s), \
         {:.2}s before its lease expired (lease {LEASE_SECONDS}s); replica-b acquired {:.2}s after it stopped",
        (stopped - renewed).total(jiff::Unit::Second).unwrap(),
        (expires - stopped).total(jiff::Unit::Second).unwrap(),
        (acquired - stopped).total(jiff::Unit::Second).unwrap(),
    );

    b.stop();
    leases.delete(&name, &DeleteParams::default()).await.unwrap();
    cluster::delete_namespace(&client, &namespace).await;
}
