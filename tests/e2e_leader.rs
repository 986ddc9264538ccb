//! Leader election between two `dpo controller` processes against the cluster in KUBECONFIG:
//! one leads, the other takes over once the lease expires when the leader dies, and a
//! leader stopped by SIGTERM releases the lease and exits 0.

mod support;

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::api::DeleteParams;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NAMESPACE: &str = "default";
const LEASE_SECONDS: u64 = 6;

/// A `dpo controller` process, killed if the test fails while it runs.
struct Replica(Child);

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(lease: &str, identity: &str) -> Replica {
    let child = Command::new(env!("CARGO_BIN_EXE_dpo"))
        .args(["controller", "--region=us-east-1", "--log-format=text"])
        .args(["--metrics-address=127.0.0.1:0", "--health-address=127.0.0.1:0"])
        .args(["--lease-namespace", NAMESPACE, "--lease-name", lease, "--identity", identity])
        .arg(format!("--lease-duration={LEASE_SECONDS}s"))
        .stdout(Stdio::null())
        .spawn()
        .expect("cannot start dpo");
    Replica(child)
}

async fn holder(leases: &Api<Lease>, name: &str) -> Option<String> {
    let lease = leases.get_opt(name).await.expect("cannot read the Lease")?;
    lease.spec.and_then(|spec| spec.holder_identity).filter(|h| !h.is_empty())
}

/// Waits until `want` holds the Lease; how long that took.
async fn wait_for_holder(leases: &Api<Lease>, name: &str, want: &str) -> Duration {
    let start = Instant::now();
    let what = format!("Lease {name} held by {want}");
    support::cluster::eventually(&what, || async {
        (holder(leases, name).await.as_deref() == Some(want)).then_some(())
    })
    .await;
    start.elapsed()
}

#[tokio::test]
async fn one_replica_leads_and_the_other_takes_over() {
    let client = support::cluster::client().await;
    support::cluster::install_crds(&client).await;
    let leases: Api<Lease> = Api::namespaced(client, NAMESPACE);
    let name = format!("dpo-e2e-{:08x}", fastrand::u32(..));
    let lease = Duration::from_secs(LEASE_SECONDS);

    let mut a = start(&name, "replica-a");
    wait_for_holder(&leases, &name, "replica-a").await;
    let mut b = start(&name, "replica-b");
    tokio::time::sleep(lease).await;
    assert_eq!(holder(&leases, &name).await.as_deref(), Some("replica-a"), "the leader keeps its lease");

    // A killed leader cannot release: b takes over once the lease expires on b's clock.
    a.0.kill().unwrap();
    a.0.wait().unwrap();
    let took = wait_for_holder(&leases, &name, "replica-b").await;
    println!("replica-b took over {took:?} after replica-a was killed (lease {lease:?})");

    // SIGTERM: a graceful stop that releases the lease and exits 0.
    let status = Command::new("kill").args(["-TERM", &b.0.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = b.0.wait().unwrap();
    assert!(exit.success(), "dpo controller exited with {exit:?} after SIGTERM");
    assert_eq!(holder(&leases, &name).await, None, "the lease was not released");

    leases.delete(&name, &DeleteParams::default()).await.unwrap();
}
