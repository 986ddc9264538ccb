//! Faults under a running ProtectedSecret controller, against the test control plane of
//! `tests/tools/control-plane.sh` (the one `tests/run.sh` starts): kube-apiserver restarted,
//! etcd compacted so that the controller's watches resume into `410 Gone`, and AWS unreachable.
//! Each checks that no synced Secret is lost, emptied or even rewritten, that the controller
//! carries on without help, and that it does not hot-loop: every request it makes to the
//! apiserver goes through a counting client.
//!
//! The first two restart kube-apiserver, so they need that control plane, found as the
//! directory of `KUBECONFIG`; against any other cluster they fail saying so.

mod support;

use dpo::api::ProtectedSecret;
use dpo::controller::ControllerConfig;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::cluster::{self, eventually};
use support::moto::{self, Seed};
use support::running::InProcess;
use support::tally::{Tally, counting};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The tests stop parts of the shared control plane: one at a time, whatever `--test-threads`.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long request counts are taken over once the controller has recovered.
const QUIET: Duration = Duration::from_secs(10);

// ---- the control plane ----------------------------------------------------------------------

/// The directory `control-plane.sh up` wrote `KUBECONFIG` into.
fn control_plane_dir() -> PathBuf {
    let kubeconfig = std::env::var("KUBECONFIG").unwrap_or_default();
    let dir = PathBuf::from(&kubeconfig).parent().map(PathBuf::from).unwrap_or_default();
    let ours = ["kube-apiserver.pid", "etcd.port", "bin"].iter().all(|f| dir.join(f).is_file());
    assert!(
        ours,
        "these fault tests restart kube-apiserver and compact etcd, so they need the test control plane \
         of tests/tools/control-plane.sh (run tests/run.sh without KUBECONFIG); KUBECONFIG={kubeconfig:?} is not one"
    );
    dir
}

/// Runs `control-plane.sh COMMAND DIR`; its standard output.
async fn control_plane(command: &'static str) -> String {
    let dir = control_plane_dir();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tools/control-plane.sh");
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(script).arg(command).arg(dir).output()
    })
    .await
    .expect("control-plane.sh task")
    .expect("run control-plane.sh");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "control-plane.sh {command} failed: {stderr}");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

// ---- AWS unreachable ---------------------------------------------------------------------------

/// A TCP gate in front of moto. moto keeps its secrets in memory, so stopping it would lose
/// them (and a restarted one picks a new port); closing the gate makes AWS unreachable the way
/// an outage does, new connections refused and open ones cut, while moto keeps its state.
struct Gate {
    address: SocketAddr,
    open: watch::Sender<bool>,
}

impl Gate {
    async fn start(upstream: &str) -> Gate {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the gate");
        let gate =
            Gate { address: listener.local_addr().expect("gate address"), open: watch::channel(true).0 };
        gate.serve(listener, upstream);
        gate
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    fn close(&self) {
        self.open.send_replace(false);
    }

    async fn reopen(&self, upstream: &str) {
        self.open.send_replace(true);
        let listener =
            eventually("the gate listening again", || async { TcpListener::bind(self.address).await.ok() })
                .await;
        self.serve(listener, upstream);
    }

    fn serve(&self, listener: TcpListener, upstream: &str) {
        let (upstream, mut closed) =
            (upstream.trim_start_matches("http://").to_string(), self.open.subscribe());
        let open = self.open.clone();
        tokio::spawn(async move {
            loop {
                let (mut client, _) = tokio::select! {
                    accepted = listener.accept() => match accepted { Ok(c) => c, Err(_) => continue },
                    // Dropping the listener refuses further connections.
                    _ = closed.wait_for(|open| !*open) => return,
                };
                let (upstream, mut cut) = (upstream.clone(), open.subscribe());
                tokio::spawn(async move {
                    let Ok(mut moto) = TcpStream::connect(&upstream).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut moto) => {}
                        _ = cut.wait_for(|open| !*open) => {}
                    }
                });
            }
        });
    }
}

// ---- the scene: a namespace, AWS secrets, the controller -------------------------------------

struct Scene {
    client: kube::Client,
    namespace: String,
    tally: Tally,
    secrets: Api<Secret>,
    psecs: Api<ProtectedSecret>,
}

/// Runs `scenario` with the controller watching a fresh namespace (reaching AWS at
/// `aws_endpoint`, moto by default), then stops the controller and removes the namespace,
/// pass or fail.
async fn with_controller<F, Fut>(aws_endpoint: Option<String>, scenario: F)
where
    F: FnOnce(Scene) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let _serial = SERIAL.lock().await;
    let client = cluster::client().await;
    cluster::install_crds(&client).await;
    let namespace = cluster::create_namespace(&client, "dpo-faults").await;
    let (counted, tally) = counting(client.clone());
    let aws =
        moto::facts_at(aws_endpoint.as_deref().unwrap_or(moto::endpoint()), moto::test_settings()).await;
    let config =
        ControllerConfig { secret_namespaces: vec![namespace.clone()], ..ControllerConfig::default() };
    let controller = InProcess::start(&counted, aws, config);
    let scene = Scene {
        secrets: Api::namespaced(client.clone(), &namespace),
        psecs: Api::namespaced(client.clone(), &namespace),
        client: client.clone(),
        namespace: namespace.clone(),
        tally,
    };
    let outcome = tokio::spawn(scenario(scene)).await;
    controller.stop().await;
    cluster::delete_namespace(&client, &namespace).await;
    if let Err(err) = outcome {
        std::panic::resume_unwind(err.into_panic());
    }
}

fn password(secret: &Secret) -> Option<String> {
    let bytes = secret.data.as_ref()?.get("password")?;
    String::from_utf8(bytes.0.clone()).ok()
}

/// What changes with any write: the object's uid and resourceVersion.
fn identity(secret: &Secret) -> (Option<String>, Option<String>) {
    (secret.metadata.uid.clone(), secret.metadata.resource_version.clone())
}

impl Scene {
    /// An AWS secret `{username, password}` under a customer-managed, rotating key.
    async fn aws_secret(&self, password: &str) -> String {
        let value = json!({"username": "app", "password": password});
        Seed::new().await.compliant_secret(&self.namespace, &value).await
    }

    async fn apply(&self, name: &str, spec: serde_json::Value) {
        let object = json!({"apiVersion": "dpo.dev/v1alpha1", "kind": "ProtectedSecret", "metadata": {"name": name}, "spec": spec});
        self.psecs
            .patch(name, &PatchParams::apply(cluster::FIELD_MANAGER).force(), &Patch::Apply(&object))
            .await
            .unwrap_or_else(|e| panic!("apply ProtectedSecret {name}: {e}"));
    }

    /// ProtectedSecret `name` syncing the password of a new AWS secret holding `password`.
    async fn protect(&self, name: &str, password: &str, refresh: &str) -> String {
        let id = self.aws_secret(password).await;
        let spec = json!({"source": {"secretId": id}, "data": [{"key": "password", "property": "password"}], "refreshInterval": refresh});
        self.apply(name, spec).await;
        id
    }

    async fn secret(&self, name: &str) -> Option<Secret> {
        self.secrets.get_opt(name).await.ok().flatten()
    }

    /// ProtectedSecrets `db-0`… `db-<n-1>` refreshing every `refresh`, synced and Ready: the
    /// Secrets as they are then, and the AWS secret ids.
    async fn synced(&self, n: usize, refresh: &str) -> (Vec<Secret>, Vec<String>) {
        let mut ids = Vec::new();
        for i in 0..n {
            ids.push(self.protect(&format!("db-{i}"), &format!("pw-{i}"), refresh).await);
        }
        let mut secrets = Vec::new();
        for i in 0..n {
            secrets.push(self.holds(&format!("db-{i}"), &format!("pw-{i}")).await);
            self.ready_is(&format!("db-{i}"), "True").await;
        }
        (secrets, ids)
    }

    /// Waits until Secret `name` holds `password`.
    async fn holds(&self, name: &str, password: &str) -> Secret {
        eventually(&format!("Secret {name} holding {password}"), || async {
            self.secret(name).await.filter(|s| self::password(s).as_deref() == Some(password))
        })
        .await
    }

    async fn condition(&self, name: &str, type_: &str) -> Option<Condition> {
        let status = self.psecs.get_opt(name).await.ok().flatten()?.status?;
        status.conditions.into_iter().find(|c| c.type_ == type_)
    }

    async fn ready_is(&self, name: &str, status: &str) -> Condition {
        eventually(&format!("{name} Ready={status}"), || async {
            self.condition(name, "Ready").await.filter(|c| c.status == status)
        })
        .await
    }

    /// Asserts that Secret `name` is the very object `before` was: never deleted, never written.
    async fn untouched(&self, name: &str, before: &Secret) {
        let now = self.secret(name).await.unwrap_or_else(|| panic!("Secret {name} lost"));
        assert_eq!(password(&now), password(before), "Secret {name} changed");
        assert_eq!(identity(&now), identity(before), "Secret {name} was recreated or rewritten");
    }

    /// Counts the controller's requests over [`QUIET`] and asserts at most `bound`.
    async fn quiet(&self, bound: usize) -> usize {
        let from = Instant::now();
        tokio::time::sleep(QUIET).await;
        let calls = self.tally.calls_since(from);
        let listed: Vec<String> =
            calls.iter().map(|c| format!("{} {}?{}", c.method, c.path, c.query)).collect();
        assert!(calls.len() <= bound, "{} requests in {QUIET:?} after recovery: {listed:#?}", calls.len());
        calls.len()
    }

    /// Restarts kube-apiserver; how long it was away.
    async fn restart_apiserver(&self) -> Duration {
        let started = Instant::now();
        control_plane("restart-apiserver").await;
        started.elapsed()
    }
}

// ---- the cases ---------------------------------------------------------------------------------

#[tokio::test]
async fn kube_apiserver_restarted_mid_run() {
    with_controller(None, |scene| async move {
        let (before, _) = scene.synced(3, "1h").await;

        let restart = Instant::now();
        let away = scene.restart_apiserver().await;
        let outage = scene.tally.calls_since(restart).len();
        let (psec_watch, secret_watch) = eventually("both watches open again", || async {
            Some((scene.tally.watching("protectedsecrets", restart)?, scene.tally.watching("secrets", restart)?))
        })
        .await;
        let relisted = scene.tally.listed("protectedsecrets", restart).is_some();

        // Carries on: a new object is seen and synced, a deleted Secret is seen and repaired.
        scene.protect("db-new", "pw-new", "1h").await;
        scene.holds("db-new", "pw-new").await;
        scene.secrets.delete("db-0", &DeleteParams::default()).await.expect("delete Secret db-0");
        eventually("Secret db-0 recreated", || async {
            let s = scene.secret("db-0").await?;
            (identity(&s) != identity(&before[0]) && password(&s).as_deref() == Some("pw-0")).then_some(())
        })
        .await;
        for (i, secret) in before.iter().enumerate().skip(1) {
            scene.untouched(&format!("db-{i}"), secret).await;
        }
        let quiet = scene.quiet(6).await;
        println!(
            "kube-apiserver away {away:?}; {outage} controller requests until it was back, watches reopened \
             {:?} / {:?} after the restart began (relisted: {relisted}); {quiet} requests in {QUIET:?} after recovery",
            psec_watch.at - restart,
            secret_watch.at - restart,
        );
        assert!(outage <= 60, "{outage} requests while kube-apiserver restarted: a retry loop without backoff");
    })
    .await;
}

#[tokio::test]
async fn etcd_compacted_so_watches_resume_into_410_gone() {
    with_controller(None, |scene| async move {
        let (before, _) = scene.synced(3, "1h").await;
        // Writes the controller does not watch move etcd past the revision its watches are at,
        // and compaction makes that revision unreadable.
        let configmaps: Api<ConfigMap> = Api::namespaced(scene.client.clone(), &scene.namespace);
        for i in 0..5 {
            let cm = serde_json::from_value(json!({"metadata": {"name": format!("filler-{i}")}})).unwrap();
            configmaps.create(&PostParams::default(), &cm).await.expect("create ConfigMap");
        }
        let compacted: u64 = control_plane("compact").await.parse().expect("compacted revision");
        let restart = Instant::now();
        let away = scene.restart_apiserver().await;

        // The watch resumes from its old revision, is told 410 Gone and lists again.
        let resumed = eventually("a watch resuming after the restart", || async {
            let calls = scene.tally.calls_since(restart);
            calls.into_iter().find(|c| c.is_watch() && c.on("protectedsecrets") && c.resource_version().is_some())
        })
        .await;
        let from = resumed.resource_version().unwrap_or_default();
        assert!(from < compacted, "the watch resumed from {from}, not below the compacted revision {compacted}");
        let gone = eventually("410 Gone", || async { scene.tally.gone_since(restart) }).await;
        let relist = eventually("a relist after 410 Gone", || async { scene.tally.listed("protectedsecrets", gone) }).await;
        eventually("the watches open again", || async {
            Some((scene.tally.watching("protectedsecrets", relist.at)?, scene.tally.watching("secrets", gone)?))
        })
        .await;

        // Carries on: a spec change and a hand edit made after the relist are both acted on.
        let mut spec = serde_json::to_value(&scene.psecs.get("db-0").await.expect("get db-0").spec).unwrap();
        spec["target"]["labels"] = json!({"team": "shop"});
        scene.apply("db-0", spec).await;
        eventually("the new label on Secret db-0", || async {
            let s = scene.secret("db-0").await?;
            (s.metadata.labels?.get("team").map(String::as_str) == Some("shop")).then_some(())
        })
        .await;
        let edit = json!({"data": {"password": "aGFja2Vk"}});
        scene.secrets.patch("db-1", &PatchParams::default(), &Patch::Merge(&edit)).await.expect("hand edit");
        scene.holds("db-1", "pw-1").await;
        scene.untouched("db-2", &before[2]).await;
        assert_eq!(password(&scene.secret("db-0").await.expect("db-0")).as_deref(), Some("pw-0"));
        let quiet = scene.quiet(6).await;
        println!(
            "compacted at {compacted}; kube-apiserver away {away:?}; the watch resumed from {from}, got 410 Gone \
             {:?} and relisted {:?} after the restart began; {quiet} requests in {QUIET:?} after recovery",
            gone - restart,
            relist.at - restart,
        );
    })
    .await;
}

#[tokio::test]
async fn aws_unreachable_keeps_every_secret_and_recovers_on_its_own() {
    let gate = Arc::new(Gate::start(moto::endpoint()).await);
    let endpoint = gate.endpoint();
    with_controller(Some(endpoint), |scene| async move {
        let (before, ids) = scene.synced(2, "10s").await;

        gate.close();
        let closed = Instant::now();
        for i in 0..2 {
            let ready = scene.ready_is(&format!("db-{i}"), "False").await;
            assert_eq!(ready.reason, "AwsUnavailable", "{ready:?}");
            assert!(ready.message.contains("AWS unavailable calling"), "names the AWS call: {}", ready.message);
            assert!(ready.message.contains("keeps version"), "says the Secret is kept: {}", ready.message);
            let reconciling = scene.condition(&format!("db-{i}"), "Reconciling").await;
            assert_eq!(reconciling.map(|c| c.status).as_deref(), Some("True"), "retried while AWS is away");
        }
        let noticed = closed.elapsed();
        println!("while AWS is away: {}", scene.condition("db-0", "Ready").await.unwrap().message);
        // A rotation while the controller cannot see AWS, to be picked up once it can.
        Seed::new().await.put_value(&ids[1], &json!({"username": "app", "password": "pw-1b"}).to_string()).await;
        for (i, secret) in before.iter().enumerate() {
            scene.untouched(&format!("db-{i}"), secret).await;
        }
        let outage_calls = scene.tally.calls_since(closed).len();

        gate.reopen(moto::endpoint()).await;
        let reopened = Instant::now();
        for i in 0..2 {
            scene.ready_is(&format!("db-{i}"), "True").await;
        }
        scene.holds("db-1", "pw-1b").await;
        let recovered = reopened.elapsed();
        scene.untouched("db-0", &before[0]).await;
        // Each refresh reads its Secret once: two objects every 10 s, and room for a retry.
        let quiet = scene.quiet(8).await;
        println!(
            "AWS away: Ready=False after {noticed:?}, {outage_calls} apiserver requests meanwhile; Ready=True \
             {recovered:?} after AWS returned; {quiet} requests in {QUIET:?} after recovery"
        );
        assert!(outage_calls <= 20, "{outage_calls} apiserver requests while AWS was away");
    })
    .await;
}
