//! The Helm chart as users install it, against the cluster in `KUBECONFIG`: `helm install` into
//! a namespace that enforces the `restricted` Pod Security Standard, with default values and with
//! `rbac.secrets.namespaces`; every object is accepted and the ReplicaSet's Pods are admitted.
//! Then the real `dpo controller` runs out of cluster with the flags of the installed Deployment
//! and a TokenRequest token of the chart's own ServiceAccount, so that every controller does its
//! whole job with the chart's permissions and nothing more: a verb the chart forgot fails here.
//!
//! Run with `tests/run.sh` (helm on PATH, a control plane); without a cluster every test fails.

mod support;

use dpo::api::{EncryptedVolumePolicy, ProtectedSecret, TlsIngressPolicy};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Namespace, Pod, Secret, ServiceAccount};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::{Value, json};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::cluster::{self, eventually};
use support::moto::{self, Seed};
use support::process::DpoProcess;

const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/data-protection-operator");

fn name(prefix: &str) -> String {
    moto::unique(prefix).to_lowercase()
}

/// A release of the chart in its own namespace.
#[derive(Clone)]
struct Release {
    name: String,
    namespace: String,
}

impl Release {
    fn new() -> Self {
        Release { name: name("chart"), namespace: name("dpo-chart") }
    }

    /// The chart's `dpo.fullname`: the Deployment, ServiceAccount and ClusterRole name.
    fn fullname(&self) -> String {
        format!("{}-data-protection-operator", self.name)
    }

    /// Creates the release namespace enforcing `restricted`, and installs the chart into it.
    async fn install(&self, client: &kube::Client, set: &[String]) {
        let labels = json!({"pod-security.kubernetes.io/enforce": "restricted"});
        let namespace = json!({"metadata": {"name": self.namespace, "labels": labels}});
        create(&Api::<Namespace>::all(client.clone()), namespace).await;
        // Helm 4 applies the CRDs server-side: on a cluster whose CRDs other tests applied
        // (an older schema, as field manager dpo-e2e) it must take the fields over.
        let mut args = vec!["install", &self.name, CHART, "--namespace", &self.namespace, "--force-conflicts"];
        for value in set {
            args.extend(["--set", value]);
        }
        let output = Command::new("helm")
            .args(&args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run helm ({e}): run tests/run.sh, which installs it"));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "helm {args:?} failed: {stderr}");
    }

    async fn deployment(&self, client: &kube::Client) -> Deployment {
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), &self.namespace);
        deployments.get(&self.fullname()).await.expect("the chart's Deployment")
    }

    async fn uninstall(&self, client: &kube::Client) {
        let _ = Command::new("helm").args(["uninstall", &self.name, "--namespace", &self.namespace]).output();
        cluster::delete_namespace(client, &self.namespace).await;
    }
}

/// The CRDs the chart ships are established, and the apiserver accepts them as they are (helm
/// leaves CRDs that exist alone, so a server-side dry run checks them whatever was there).
async fn assert_crds_established(client: &kube::Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let text = std::fs::read_to_string(format!("{CHART}/crds/crds.yaml")).expect("the chart's CRDs");
    let dry_run = PatchParams { dry_run: true, ..PatchParams::apply("dpo-e2e-chart").force() };
    let crds: Vec<CustomResourceDefinition> = serde_yaml::Deserializer::from_str(&text)
        .map(|document| serde::Deserialize::deserialize(document).expect("a CRD"))
        .collect();
    for crd in crds {
        let crd_name = crd.metadata.name.clone().expect("CRD name");
        api.patch(&crd_name, &dry_run, &Patch::Apply(&crd))
            .await
            .unwrap_or_else(|e| panic!("the apiserver refuses CRD {crd_name}: {e}"));
        let conditions = api.get(&crd_name).await.expect("CRD").status.and_then(|s| s.conditions);
        let established =
            conditions.unwrap_or_default().iter().any(|c| c.type_ == "Established" && c.status == "True");
        assert!(established, "CRD {crd_name} is not Established");
        cluster::await_served(client, &crd).await;
    }
}

/// The namespace really enforces `restricted`, and the ReplicaSet's Pods were admitted in it.
async fn assert_pods_admitted(client: &kube::Client, release: &Release) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), &release.namespace);
    let container = json!({"name": "c", "image": "busybox", "securityContext": {"privileged": true}});
    let privileged = json!({"metadata": {"name": "privileged"}, "spec": {"containers": [container]}});
    let dry_run = PostParams { dry_run: true, ..PostParams::default() };
    let refused = pods.create(&dry_run, &serde_json::from_value(privileged).expect("pod")).await;
    assert!(
        matches!(&refused, Err(kube::Error::Api(s)) if s.message.contains("violates PodSecurity")),
        "Pod Security admission does not enforce restricted in {}: {refused:?}",
        release.namespace
    );
    let replicas = release.deployment(client).await.spec.and_then(|s| s.replicas).unwrap_or(1);
    let selector = format!("app.kubernetes.io/instance={}", release.name);
    eventually("the ReplicaSet creating the operator's Pods", || {
        let (pods, selector) = (pods.clone(), selector.clone());
        async move {
            let listed = pods.list(&ListParams::default().labels(&selector)).await.ok()?;
            (listed.items.len() == replicas as usize).then_some(())
        }
    })
    .await;
    let events: Api<Event> = Api::namespaced(client.clone(), &release.namespace);
    let failed = events.list(&ListParams::default().fields("reason=FailedCreate")).await.expect("events");
    let messages: Vec<_> = failed.items.iter().filter_map(|e| e.message.as_deref()).collect();
    assert!(messages.is_empty(), "the ReplicaSet failed to create Pods: {messages:?}");
}

/// A kubeconfig for the cluster in `KUBECONFIG` (its server and CA) that authenticates with a
/// TokenRequest token of the chart's ServiceAccount.
async fn service_account_kubeconfig(client: &kube::Client, release: &Release, dir: &Path) -> PathBuf {
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &release.namespace);
    let request =
        serde_json::from_value::<TokenRequest>(json!({"spec": {"audiences": [], "expirationSeconds": 3600}}));
    let answer = accounts
        .create_token_request(&release.fullname(), &PostParams::default(), &request.unwrap())
        .await
        .expect("TokenRequest for the chart's ServiceAccount");
    let token = answer.status.expect("TokenRequest status").token;
    let admin = Kubeconfig::read().expect("the kubeconfig in KUBECONFIG");
    let context = admin.current_context.as_ref().expect("current-context");
    let context = admin.contexts.iter().find(|c| &c.name == context).and_then(|c| c.context.as_ref());
    let cluster_name = &context.expect("the current context").cluster;
    let cluster = admin.clusters.iter().find(|c| &c.name == cluster_name).and_then(|c| c.cluster.as_ref());
    let config = json!({
        "apiVersion": "v1", "kind": "Config", "current-context": "chart",
        "clusters": [{"name": "chart", "cluster": cluster.expect("the current cluster")}],
        "users": [{"name": "chart", "user": {"token": token}}],
        "contexts": [{"name": "chart", "context": {"cluster": "chart", "user": "chart"}}],
    });
    let path = dir.join("kubeconfig");
    std::fs::write(&path, config.to_string()).expect("writing the kubeconfig");
    path
}

/// The arguments of the installed Deployment's container, made to run here: the access rules
/// from the chart's ConfigMap in a local file, endpoints on free loopback ports, moto as AWS.
async fn chart_args(client: &kube::Client, release: &Release, dir: &Path) -> Vec<String> {
    let pod = release.deployment(client).await.spec.expect("spec").template.spec.expect("pod spec");
    let container = pod.containers.into_iter().find(|c| c.name == "operator").expect("container operator");
    let configmap = Api::<ConfigMap>::namespaced(client.clone(), &release.namespace)
        .get(&format!("{}-secret-access", release.fullname()))
        .await
        .expect("the chart's secret-access ConfigMap");
    let rules = configmap.data.and_then(|mut d| d.remove("secret-access.yaml")).expect("secret-access.yaml");
    let rules_path = dir.join("secret-access.yaml");
    std::fs::write(&rules_path, rules).expect("writing the access rules");
    let mut args: Vec<String> = container
        .args
        .expect("container args")
        .into_iter()
        .map(|arg| match arg.split_once('=') {
            Some(("--secret-access-file", _)) => format!("--secret-access-file={}", rules_path.display()),
            Some((flag @ ("--metrics-address" | "--health-address"), _)) => format!("{flag}=127.0.0.1:0"),
            _ => arg,
        })
        .collect();
    args.extend([format!("--region={}", moto::REGION), format!("--aws-endpoint-url={}", moto::endpoint())]);
    args
}

/// `dpo controller` started as the Pod would run: the Deployment's args, POD_NAME and
/// POD_NAMESPACE, and a token of the chart's ServiceAccount.
fn start_as_pod(args: &[String], kubeconfig: &Path, release: &Release, identity: &str) -> DpoProcess {
    let kubeconfig = kubeconfig.to_str().expect("a UTF-8 path");
    let env = [("KUBECONFIG", kubeconfig), ("POD_NAME", identity), ("POD_NAMESPACE", &release.namespace)];
    DpoProcess::start(args, &env, &Path::new(kubeconfig).with_file_name("controller.log"))
}

/// The log has no answer of the apiserver refusing the ServiceAccount anything: RBAC's
/// "is forbidden: User ... cannot ...", or a 401. (A namespace that another test is deleting
/// answers 403 to anyone: no missing permission, so not counted.)
fn assert_never_refused(controller: &DpoProcess) {
    let log = controller.log_text();
    let refused: Vec<&str> =
        log.lines().filter(|l| l.contains("is forbidden: User") || l.contains("code: 401")).collect();
    assert!(
        refused.is_empty(),
        "the chart's ServiceAccount was refused {} time(s):\n{}",
        refused.len(),
        refused.join("\n")
    );
}

/// The holder of the Lease the chart names, in the release namespace.
async fn lease_holder(client: &kube::Client, release: &Release, args: &[String]) -> Option<String> {
    let name = args.iter().find_map(|a| a.strip_prefix("--lease-name=")).expect("--lease-name in the chart");
    let lease = Api::<Lease>::namespaced(client.clone(), &release.namespace).get_opt(name).await;
    lease.expect("reading the Lease")?.spec?.holder_identity.filter(|h| !h.is_empty())
}

/// Waits for the Secret `name` to hold version `n` of its AWS secret (`password` is `pw-<n>`).
async fn secret_with(client: &kube::Client, namespace: &str, name: &str, n: u8) -> Secret {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let password = format!("pw-{n}");
    eventually(&format!("Secret {namespace}/{name} with version {n} of its AWS secret"), || {
        let (secrets, password) = (secrets.clone(), password.as_bytes());
        async move {
            let secret = secrets.get_opt(name).await.ok()??;
            (secret.data.as_ref()?.get("password")?.0 == password).then_some(secret)
        }
    })
    .await
}

/// The reasons of the Events recorded about `object` in `namespace`.
async fn event_reasons(client: &kube::Client, namespace: &str, object: &str) -> Vec<String> {
    let events: Api<Event> = Api::namespaced(client.clone(), namespace);
    let fields = format!("involvedObject.name={object}");
    let listed = events.list(&ListParams::default().fields(&fields)).await.expect("events");
    listed.items.into_iter().filter_map(|e| e.reason).collect()
}

async fn create<K>(api: &Api<K>, object: Value) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let object: K = serde_json::from_value(object).expect("object");
    api.create(&PostParams::default(), &object).await.unwrap_or_else(|e| panic!("creating {object:?}: {e}"))
}

/// An AWS secret `<namespace>/db-...` (customer-managed key, rotating) and a ProtectedSecret
/// `name` in `namespace` syncing its `password`, with `extra` added to the spec; returns the id.
async fn protected_secret(client: &kube::Client, namespace: &str, name: &str, extra: Value) -> String {
    let seed = Seed::new().await;
    let key = seed.key().await;
    seed.enable_rotation(&key).await;
    let secret_id = moto::unique(&format!("{namespace}/db"));
    seed.secret(&secret_id, &json!({"password": "pw-1"}).to_string(), Some(&key.arn)).await;
    let mut spec =
        json!({"source": {"secretId": secret_id}, "data": [{"key": "password", "property": "password"}]});
    spec.as_object_mut().expect("spec").extend(extra.as_object().cloned().unwrap_or_default());
    let psecs = Api::<ProtectedSecret>::namespaced(client.clone(), namespace);
    create(&psecs, dpo_object("ProtectedSecret", name, spec)).await;
    secret_id
}

/// The ProtectedSecret controller's whole job in `namespace`: the Secret, `Ready` in status, an
/// Event, and on a new version (pinned by `versionId`: no wait for a refresh) the new value and
/// a rollout restart of the Deployment it names.
async fn assert_sync_and_restart(client: &kube::Client, namespace: &str) {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    // No replicas: the restart is in the pod template.
    let labels = json!({"app": "web"});
    let template =
        json!({"metadata": {"labels": labels}, "spec": {"containers": [{"name": "web", "image": "web"}]}});
    let spec = json!({"replicas": 0, "selector": {"matchLabels": labels}, "template": template});
    create(&deployments, json!({"metadata": {"name": "web"}, "spec": spec})).await;
    let extra = json!({"rolloutRestart": [{"kind": "Deployment", "name": "web"}]});
    let secret_id = protected_secret(client, namespace, "db", extra).await;
    secret_with(client, namespace, "db", 1).await;
    let psecs: Api<ProtectedSecret> = Api::namespaced(client.clone(), namespace);
    eventually("the ProtectedSecret's status Ready=True", || {
        let psecs = psecs.clone();
        async move {
            let ps = psecs.get("db").await.ok()?;
            let status = ps.status?;
            let current = status.observed_generation == ps.metadata.generation;
            (current && ready(&status.conditions)?.0 == "True").then_some(())
        }
    })
    .await;
    eventually("the Synced Event", || async {
        event_reasons(client, namespace, "db").await.iter().any(|r| r == "Synced").then_some(())
    })
    .await;

    let version = Seed::new().await.put_value(&secret_id, &json!({"password": "pw-2"}).to_string()).await;
    let pin = json!({"spec": {"source": {"versionId": version}}});
    psecs.patch("db", &PatchParams::default(), &Patch::Merge(&pin)).await.expect("pinning the new version");
    secret_with(client, namespace, "db", 2).await;
    eventually("the rollout restart of Deployment web", || {
        let deployments = deployments.clone();
        async move {
            let reasons = event_reasons(client, namespace, "db").await;
            assert!(!reasons.iter().any(|r| r == "RolloutRestartFailed"), "the restart failed: {reasons:?}");
            let template = deployments.get("web").await.ok()?.spec?.template.metadata?;
            template.annotations?.get("dpo.dev/restartedAt").cloned()
        }
    })
    .await;
}

fn ready(conditions: &[Condition]) -> Option<(String, String)> {
    let ready = conditions.iter().find(|c| c.type_ == "Ready")?;
    Some((ready.status.clone(), ready.reason.clone()))
}

/// The chart installed and checked as users get it, its Deployment scaled to zero so that
/// Pods a kubelet runs do not compete for the Lease with the process [`start`] runs.
async fn install(client: &kube::Client, release: &Release, set: &[String]) {
    release.install(client, set).await;
    assert_crds_established(client).await;
    assert_pods_admitted(client, release).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &release.namespace);
    let none = Patch::Merge(json!({"spec": {"replicas": 0}}));
    deployments.patch(&release.fullname(), &PatchParams::default(), &none).await.expect("scaling to 0");
}

/// `dpo controller` started as the chart's Pod would run, once it holds the Lease; the
/// temporary directory holds the kubeconfig, access rules and log.
async fn start(
    client: &kube::Client,
    release: &Release,
) -> (tempfile::TempDir, Vec<String>, PathBuf, DpoProcess) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let kubeconfig = service_account_kubeconfig(client, release, dir.path()).await;
    let args = chart_args(client, release, dir.path()).await;
    let identity = name("replica");
    let controller = start_as_pod(&args, &kubeconfig, release, &identity);
    eventually("the Lease acquired", || async {
        (lease_holder(client, release, &args).await? == identity).then_some(())
    })
    .await;
    (dir, args, kubeconfig, controller)
}

/// Whether the ServiceAccount may list `api`'s objects: `Ok`, or the HTTP status of the refusal.
async fn may_list<K>(api: Api<K>) -> Result<(), u16>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.list_metadata(&ListParams::default().limit(1)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) => Err(s.code),
        Err(e) => panic!("listing as the ServiceAccount: {e}"),
    }
}

/// What a case works in: its release, `namespaces` of its own, and `id`, the name of the
/// cluster-scoped objects it creates; all removed at the end, whether the case passed or not.
#[derive(Clone)]
struct Case {
    release: Release,
    namespaces: Vec<String>,
    id: String,
}

async fn run<F, Fut>(label: &str, namespaces: usize, body: F)
where
    F: FnOnce(kube::Client, Case) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let started = Instant::now();
    let client = cluster::client().await;
    let case = Case {
        release: Release::new(),
        namespaces: (0..namespaces).map(|_| name("dpo-chart-app")).collect(),
        id: name("dpo-chart"),
    };
    for namespace in &case.namespaces {
        create(&Api::<Namespace>::all(client.clone()), json!({"metadata": {"name": namespace}})).await;
    }
    let outcome = tokio::spawn(body(client.clone(), case.clone())).await;
    for namespace in &case.namespaces {
        // A failed case may leave a finalizer that no controller will remove.
        let psecs: Api<ProtectedSecret> = Api::namespaced(client.clone(), namespace);
        let unfinalize = Patch::Merge(json!({"metadata": {"finalizers": null}}));
        for ps in psecs.list_metadata(&ListParams::default()).await.map(|l| l.items).unwrap_or_default() {
            let name = ps.metadata.name.unwrap_or_default();
            let _ = psecs.patch(&name, &PatchParams::default(), &unfinalize).await;
        }
        cluster::delete_namespace(&client, namespace).await;
    }
    let gone = DeleteParams::default();
    let _ = Api::<EncryptedVolumePolicy>::all(client.clone()).delete(&case.id, &gone).await;
    let _ = Api::<TlsIngressPolicy>::all(client.clone()).delete(&case.id, &gone).await;
    let _ = Api::<StorageClass>::all(client.clone()).delete(&case.id, &gone).await;
    case.release.uninstall(&client).await;
    if let Err(err) = outcome {
        std::panic::resume_unwind(err.into_panic());
    }
    println!("{label}: {:.1?}", started.elapsed());
}

fn dpo_object(kind: &str, name: &str, spec: Value) -> Value {
    json!({"apiVersion": "dpo.dev/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": spec})
}

#[tokio::test]
async fn the_default_install_is_admitted_and_its_rbac_runs_every_controller() {
    run("default install", 1, |client, Case { release, namespaces, id }| async move {
        let app = &namespaces[0];
        install(&client, &release, &[]).await;
        // An unencrypted class: the EncryptedVolumePolicy finds a violation and records an Event.
        let labels = json!({"dpo.dev/e2e": id});
        let class = json!({"metadata": {"name": id, "labels": labels}, "provisioner": "ebs.csi.aws.com"});
        create(&Api::<StorageClass>::all(client.clone()), class).await;
        let volumes: Api<EncryptedVolumePolicy> = Api::all(client.clone());
        let selector = json!({"matchLabels": labels});
        let spec =
            json!({"storageClassSelector": selector, "checkVolumes": false, "checkAccountDefault": false});
        create(&volumes, dpo_object("EncryptedVolumePolicy", &id, spec)).await;
        let tls: Api<TlsIngressPolicy> = Api::all(client.clone());
        create(&tls, dpo_object("TlsIngressPolicy", &id, json!({"ingressSelector": selector}))).await;

        let (_dir, args, _, mut controller) = start(&client, &release).await;
        assert_sync_and_restart(&client, app).await;

        // Orphan + Delete: a finalizer on the ProtectedSecret, and the Secret deleted with it.
        let target = json!({"name": "orphan", "creationPolicy": "Orphan", "deletionPolicy": "Delete"});
        protected_secret(&client, app, "orphan", json!({"target": target})).await;
        secret_with(&client, app, "orphan", 1).await;
        let psecs: Api<ProtectedSecret> = Api::namespaced(client.clone(), app);
        psecs.delete("orphan", &DeleteParams::default()).await.expect("deleting ProtectedSecret orphan");
        let secrets: Api<Secret> = Api::namespaced(client.clone(), app);
        eventually("the Secret deleted with its ProtectedSecret", || {
            let (secrets, psecs) = (secrets.clone(), psecs.clone());
            async move {
                let secret = secrets.get_opt("orphan").await.ok()?;
                (secret.is_none() && psecs.get_opt("orphan").await.ok()?.is_none()).then_some(())
            }
        })
        .await;

        // Fails at once, with the refusal that says which permission is missing.
        assert_never_refused(&controller);
        let found = eventually("the EncryptedVolumePolicy's Ready=False", || {
            let (volumes, id) = (volumes.clone(), &id);
            async move { ready(&volumes.get(id).await.ok()?.status?.conditions).filter(|r| r.0 == "False") }
        })
        .await;
        assert_eq!(found.1, "ViolationsFound");
        // Events about cluster-scoped objects go to default.
        eventually("the EncryptedVolumePolicy's Event", || async {
            event_reasons(&client, "default", &id).await.iter().any(|r| r == "ViolationsFound").then_some(())
        })
        .await;
        eventually("the TlsIngressPolicy's Ready=True", || {
            let (tls, id) = (tls.clone(), &id);
            async move { ready(&tls.get(id).await.ok()?.status?.conditions).filter(|(s, _)| s == "True") }
        })
        .await;

        controller.stop();
        assert_never_refused(&controller);
        assert_eq!(lease_holder(&client, &release, &args).await, None, "the Lease was not released");
    })
    .await;
}

#[tokio::test]
async fn with_secret_namespaces_the_chart_grants_and_the_controller_touches_only_those() {
    run("install with rbac.secrets.namespaces", 2, |client, Case { release, namespaces, .. }| async move {
        let (ns_a, ns_b) = (&namespaces[0], &namespaces[1]);
        // The chart's Role and RoleBinding go into ns-a, which exists by now.
        install(&client, &release, &[format!("rbac.secrets.namespaces={{{ns_a}}}")]).await;
        // Were it watched, even its first reconcile would write a status, a Secret or an Event.
        protected_secret(&client, ns_b, "db", json!({})).await;
        let (_dir, args, kubeconfig, mut controller) = start(&client, &release).await;
        let flag = format!("--secret-namespaces={ns_a}");
        assert!(args.contains(&flag), "the chart does not pass {flag}: {args:?}");

        // The grant itself is narrow: Secrets and ProtectedSecrets in ns-a only.
        let config = Kubeconfig::read_from(&kubeconfig).expect("kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(config, &KubeConfigOptions::default()).await;
        let account = kube::Client::try_from(config.expect("config")).expect("client");
        assert_eq!(may_list(Api::<Secret>::namespaced(account.clone(), ns_a)).await, Ok(()));
        assert_eq!(may_list(Api::<ProtectedSecret>::namespaced(account.clone(), ns_a)).await, Ok(()));
        assert_eq!(may_list(Api::<Secret>::namespaced(account.clone(), ns_b)).await, Err(403));
        assert_eq!(may_list(Api::<ProtectedSecret>::namespaced(account.clone(), ns_b)).await, Err(403));
        assert_eq!(may_list(Api::<Secret>::all(account.clone())).await, Err(403));

        assert_sync_and_restart(&client, ns_a).await;
        // ns-b has had as long as ns-a took for two syncs, and a few seconds more.
        tokio::time::sleep(Duration::from_secs(5)).await;
        controller.stop();
        assert_never_refused(&controller);

        let untouched =
            Api::<ProtectedSecret>::namespaced(client.clone(), ns_b).get("db").await.expect("get");
        // What the apiserver serves until a controller writes status: the CRD's default.
        let status = untouched.status.unwrap_or_default();
        let unwritten = status.observed_generation == Some(-1) && status.conditions.is_empty();
        assert!(unwritten, "status written in {ns_b}: {status:?}");
        assert!(untouched.metadata.finalizers.unwrap_or_default().is_empty(), "a finalizer added in {ns_b}");
        let secret = Api::<Secret>::namespaced(client.clone(), ns_b).get_opt("db").await.expect("get");
        assert!(secret.is_none(), "a Secret written in {ns_b}");
        let reasons = event_reasons(&client, ns_b, "db").await;
        assert!(reasons.is_empty(), "Events about the ProtectedSecret in {ns_b}: {reasons:?}");
    })
    .await;
}

/// The process as the chart runs it has no knob for its AWS caches: `refreshInterval` alone
/// must bound how long a new AWSCURRENT version takes to reach the Secret.
#[tokio::test]
async fn with_the_charts_flags_a_rotation_is_synced_within_the_refresh_interval() {
    run("rotation with the chart's flags", 1, |client, Case { release, namespaces, .. }| async move {
        let app = &namespaces[0];
        install(&client, &release, &[]).await;
        let (_dir, _, _, mut controller) = start(&client, &release).await;
        let secret_id = protected_secret(&client, app, "db", json!({"refreshInterval": "10s"})).await;
        secret_with(&client, app, "db", 1).await;
        Seed::new().await.put_value(&secret_id, &json!({"password": "pw-2"}).to_string()).await;
        secret_with(&client, app, "db", 2).await;
        controller.stop();
    })
    .await;
}
