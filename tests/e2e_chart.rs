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
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Event, Namespace, Secret};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::{Duration, Instant};
use support::chart::{Release, assert_never_refused, create, install, lease_holder, name, start};
use support::cluster::{self, eventually};
use support::moto::Seed;
use support::rbac::{self, Access};

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

/// An AWS secret `<namespace>/db-...` (customer-managed key, rotating) and a ProtectedSecret
/// `name` in `namespace` syncing its `password`, with `extra` added to the spec; returns the id.
async fn protected_secret(client: &kube::Client, namespace: &str, name: &str, extra: Value) -> String {
    let seed = Seed::new().await;
    let secret_id = seed.compliant_secret(namespace, &json!({"password": "pw-1"})).await;
    let mut spec =
        json!({"source": {"secretId": secret_id}, "data": [{"key": "password", "property": "password"}]});
    spec.as_object_mut().expect("spec").extend(extra.as_object().cloned().unwrap_or_default());
    let psecs = Api::<ProtectedSecret>::namespaced(client.clone(), namespace);
    create(&psecs, dpo_object("ProtectedSecret", name, spec)).await;
    secret_id
}

/// The pod-template annotations of the workload `name`.
async fn template_annotations<K>(
    api: &Api<K>,
    name: &str,
    template: fn(K) -> Option<ObjectMeta>,
) -> Option<BTreeMap<String, String>>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    template(api.get(name).await.ok()?)?.annotations
}

/// The ProtectedSecret controller's whole job in `namespace`: the Secret, `Ready` in status, an
/// Event, and on a new version (pinned by `versionId`: no wait for a refresh) the new value and
/// a rollout restart of a Deployment, a StatefulSet, a DaemonSet and a Rollout it names.
async fn assert_sync_and_restart(client: &kube::Client, namespace: &str) {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let stateful_sets: Api<StatefulSet> = Api::namespaced(client.clone(), namespace);
    let daemon_sets: Api<DaemonSet> = Api::namespaced(client.clone(), namespace);
    // No replicas (and no nodes for the DaemonSet): the restart is in the pod template.
    let labels = json!({"app": "web"});
    let template =
        json!({"metadata": {"labels": labels}, "spec": {"containers": [{"name": "web", "image": "web"}]}});
    let spec = json!({"replicas": 0, "selector": {"matchLabels": labels}, "template": template});
    create(&deployments, json!({"metadata": {"name": "web"}, "spec": spec})).await;
    create(&stateful_sets, json!({"metadata": {"name": "web"}, "spec": spec})).await;
    let spec = json!({"selector": {"matchLabels": labels}, "template": template});
    create(&daemon_sets, json!({"metadata": {"name": "web"}, "spec": spec})).await;
    // Served, as where Argo Rollouts is installed.
    cluster::serve_open_crd(client, "argoproj.io", "v1alpha1", "Rollout", "rollouts", "Namespaced").await;
    let rollout_type = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Rollout"),
        "rollouts",
    );
    let rollouts: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &rollout_type);
    let rollout = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": "web"}, "spec": {}});
    create(&rollouts, rollout).await;
    let kinds = ["Deployment", "StatefulSet", "DaemonSet", "Rollout"];
    let extra = json!({"rolloutRestart": kinds.map(|kind| json!({"kind": kind, "name": "web"}))});
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
    let restarted = |annotations: Option<BTreeMap<String, String>>| {
        annotations.is_some_and(|a| a.contains_key("dpo.dev/restartedAt"))
    };
    eventually("the rollout restart of the Deployment, StatefulSet, DaemonSet and Rollout web", || {
        let (deployments, stateful_sets, daemon_sets, rollouts) =
            (&deployments, &stateful_sets, &daemon_sets, &rollouts);
        async move {
            let reasons = event_reasons(client, namespace, "db").await;
            assert!(
                !reasons.iter().any(|r| r.starts_with("RolloutRestart")),
                "the restart failed: {reasons:?}"
            );
            let deployment = template_annotations(deployments, "web", |d| d.spec?.template.metadata).await;
            let stateful_set =
                template_annotations(stateful_sets, "web", |s| s.spec?.template.metadata).await;
            let daemon_set = template_annotations(daemon_sets, "web", |d| d.spec?.template.metadata).await;
            let rollout = rollouts.get("web").await.ok()?;
            let all = [deployment, stateful_set, daemon_set].into_iter().all(restarted)
                && rollout.data["spec"]["restartAt"].is_string();
            all.then_some(())
        }
    })
    .await;
}

fn ready(conditions: &[Condition]) -> Option<(String, String)> {
    let ready = conditions.iter().find(|c| c.type_ == "Ready")?;
    Some((ready.status.clone(), ready.reason.clone()))
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

        // Served, as where the AWS Load Balancer Controller and Argo Rollouts are installed, and on
        // EKS Auto Mode.
        for (group, version) in [("elbv2.k8s.aws", "v1beta1"), ("eks.amazonaws.com", "v1")] {
            cluster::serve_open_crd(
                &client,
                group,
                version,
                "IngressClassParams",
                "ingressclassparams",
                "Cluster",
            )
            .await;
        }
        cluster::install_gateway_api(&client).await;
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

        // Merge + Delete into a Secret that lets it: its key goes in, and out with it.
        let shared = json!({
            "metadata": {"name": "shared", "annotations": {"dpo.dev/allow-merge-from": "merger"}},
            "stringData": {"own": "kept"},
        });
        create(&secrets, shared).await;
        let target = json!({"name": "shared", "creationPolicy": "Merge", "deletionPolicy": "Delete"});
        protected_secret(&client, app, "merger", json!({"target": target})).await;
        secret_with(&client, app, "shared", 1).await;
        psecs.delete("merger", &DeleteParams::default()).await.expect("deleting ProtectedSecret merger");
        eventually("the merged key taken out", || {
            let secrets = secrets.clone();
            async move {
                let data = secrets.get("shared").await.ok()?.data?;
                (!data.contains_key("password") && data.contains_key("own")).then_some(())
            }
        })
        .await;

        // Two hand edits: the second DriftRepaired Event continues the first one's series.
        for _ in 0..2 {
            let edit = Patch::Merge(json!({"data": {"password": "aGFja2Vk"}}));
            secrets.patch("db", &PatchParams::default(), &edit).await.expect("hand edit");
            secret_with(&client, app, "db", 2).await;
        }
        eventually("a series of DriftRepaired Events", || {
            let events: Api<Event> = Api::namespaced(client.clone(), app);
            async move {
                let listed = events.list(&ListParams::default()).await.ok()?;
                let mut drift =
                    listed.items.into_iter().filter(|e| e.reason.as_deref() == Some("DriftRepaired"));
                drift.any(|e| e.series.is_some_and(|s| s.count.unwrap_or(0) >= 2)).then_some(())
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
        assert_grants_are_what_the_controller_used(&client, &release).await;
    })
    .await;
}

/// Permissions the apiserver checks that the audit log does not record as the request's verb: a
/// server-side apply (`patch`) that creates its object is authorized as `create`. (An `Owner`
/// Secret's owner reference sets no `blockOwnerDeletion`, so the OwnerReferencesPermissionEnforcement
/// admission plugin, on in the test control plane, asks for no rights on the owner's finalizers.)
const CHECKED_WITHOUT_A_REQUEST: [(&str, &str, &str); 1] = [("", "secrets", "create")];

/// Least privilege, from what the code did: after a run that exercised every controller path,
/// the requests the apiserver's audit log recorded for the chart's ServiceAccount are exactly
/// the chart's grants.
async fn assert_grants_are_what_the_controller_used(client: &kube::Client, release: &Release) {
    let user = format!("system:serviceaccount:{}:{}", release.namespace, release.fullname());
    let used = rbac::audited(&user);
    let mut needed = used.clone();
    needed.extend(CHECKED_WITHOUT_A_REQUEST.map(|(g, r, v)| (g.to_string(), r.to_string(), v.to_string())));
    let granted = rbac::granted(client, &release.fullname(), &release.name).await;
    let unused: BTreeSet<&Access> = granted.difference(&needed).collect();
    let missing: BTreeSet<&Access> = used.difference(&granted).collect();
    assert!(
        unused.is_empty() && missing.is_empty(),
        "granted and never used: {unused:?}; used and not granted: {missing:?}"
    );
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

/// Without write access to Secrets the refusal is the object's status, not only a log line.
#[tokio::test]
async fn with_read_only_secrets_a_refused_write_is_in_status() {
    run("install with rbac.secrets.write=false", 1, |client, Case { release, namespaces, .. }| async move {
        let app = &namespaces[0];
        install(&client, &release, &["rbac.secrets.write=false".to_string()]).await;
        let (_dir, _, _, mut controller) = start(&client, &release).await;
        protected_secret(&client, app, "db", json!({})).await;
        let psecs: Api<ProtectedSecret> = Api::namespaced(client.clone(), app);
        let found = eventually("Ready=False SecretWriteForbidden", || {
            let psecs = psecs.clone();
            async move {
                let conditions = psecs.get("db").await.ok()?.status?.conditions;
                ready(&conditions).filter(|(_, reason)| reason == "SecretWriteForbidden")
            }
        })
        .await;
        assert_eq!(found.0, "False");
        eventually("the Event SecretWriteForbidden", || async {
            event_reasons(&client, app, "db").await.iter().any(|r| r == "SecretWriteForbidden").then_some(())
        })
        .await;
        controller.stop();
    })
    .await;
}
