//! The Helm chart as a release in a namespace of its own, installed with `helm install` and
//! checked as users get it, and `dpo controller` run as the chart's Pod would run it: its
//! Deployment's arguments and a token of its ServiceAccount.

use super::cluster::{self, eventually};
use super::moto;
use super::process::DpoProcess;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Namespace, Pod, ServiceAccount};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::config::Kubeconfig;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/data-protection-operator");

pub fn name(prefix: &str) -> String {
    moto::unique(prefix).to_lowercase()
}

/// A release of the chart in its own namespace.
#[derive(Clone)]
pub struct Release {
    pub name: String,
    pub namespace: String,
}

impl Release {
    pub fn new() -> Self {
        Release { name: name("chart"), namespace: name("dpo-chart") }
    }

    /// The chart's `dpo.fullname`: the Deployment, ServiceAccount and ClusterRole name.
    pub fn fullname(&self) -> String {
        format!("{}-data-protection-operator", self.name)
    }

    /// Creates the release namespace enforcing `restricted`, and installs the chart into it.
    pub async fn install(&self, client: &kube::Client, set: &[String]) {
        let labels = json!({"pod-security.kubernetes.io/enforce": "restricted"});
        let namespace = json!({"metadata": {"name": self.namespace, "labels": labels}});
        create(&Api::<Namespace>::all(client.clone()), namespace).await;
        // Helm 4 applies the CRDs server-side: on a cluster whose CRDs other tests applied
        // (an older schema, as field manager dpo-e2e) it must take the fields over.
        let mut args =
            vec!["install", &self.name, CHART, "--namespace", &self.namespace, "--force-conflicts"];
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

    pub async fn deployment(&self, client: &kube::Client) -> Deployment {
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), &self.namespace);
        deployments.get(&self.fullname()).await.expect("the chart's Deployment")
    }

    pub async fn uninstall(&self, client: &kube::Client) {
        let _ = Command::new("helm").args(["uninstall", &self.name, "--namespace", &self.namespace]).output();
        cluster::delete_namespace(client, &self.namespace).await;
    }
}

/// The CRDs the chart ships are established, and the apiserver accepts them as they are (helm
/// leaves CRDs that exist alone, so a server-side dry run checks them whatever was there).
pub async fn assert_crds_established(client: &kube::Client) {
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
pub async fn assert_pods_admitted(client: &kube::Client, release: &Release) {
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
pub async fn service_account_kubeconfig(client: &kube::Client, release: &Release, dir: &Path) -> PathBuf {
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
pub async fn chart_args(client: &kube::Client, release: &Release, dir: &Path) -> Vec<String> {
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
pub fn start_as_pod(args: &[String], kubeconfig: &Path, release: &Release, identity: &str) -> DpoProcess {
    let kubeconfig = kubeconfig.to_str().expect("a UTF-8 path");
    let env = [("KUBECONFIG", kubeconfig), ("POD_NAME", identity), ("POD_NAMESPACE", &release.namespace)];
    DpoProcess::start(args, &env, &Path::new(kubeconfig).with_file_name("controller.log"))
}

/// The log has no answer of the apiserver refusing the ServiceAccount anything: RBAC's
/// "is forbidden: User ... cannot ...", or a 401. (A namespace that another test is deleting
/// answers 403 to anyone: no missing permission, so not counted.)
pub fn assert_never_refused(controller: &DpoProcess) {
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
pub async fn lease_holder(client: &kube::Client, release: &Release, args: &[String]) -> Option<String> {
    let name = args.iter().find_map(|a| a.strip_prefix("--lease-name=")).expect("--lease-name in the chart");
    let lease = Api::<Lease>::namespaced(client.clone(), &release.namespace).get_opt(name).await;
    lease.expect("reading the Lease")?.spec?.holder_identity.filter(|h| !h.is_empty())
}

pub async fn create<K>(api: &Api<K>, object: Value) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let object: K = serde_json::from_value(object).expect("object");
    api.create(&PostParams::default(), &object).await.unwrap_or_else(|e| panic!("creating {object:?}: {e}"))
}

/// The chart installed and checked as users get it, its Deployment scaled to zero so that
/// Pods a kubelet runs do not compete for the Lease with the process [`start`] runs.
pub async fn install(client: &kube::Client, release: &Release, set: &[String]) {
    release.install(client, set).await;
    assert_crds_established(client).await;
    assert_pods_admitted(client, release).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &release.namespace);
    let none = Patch::Merge(json!({"spec": {"replicas": 0}}));
    deployments.patch(&release.fullname(), &PatchParams::default(), &none).await.expect("scaling to 0");
}

/// `dpo controller` started as the chart's Pod would run, once it holds the Lease; the
/// temporary directory holds the kubeconfig, access rules and log.
pub async fn start(
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
