//! End to end against a real cluster (`KUBECONFIG`): the controllers run in this process with
//! moto as AWS, and the live objects they write are judged by the two GitOps tools that gate on
//! them: kstatus (the library Flux uses) and the Argo CD health checks we ship.
//!
//! Run with `tests/run.sh`, which starts a control plane; without a cluster every test fails
//! saying so.

mod support;

use dpo::api::{EncryptedVolumePolicy, ProtectedSecret};
use dpo::aws::AwsFacts;
use dpo::controller::policy::run_volume_policies;
use dpo::controller::protected_secret;
use dpo::controller::{Context, ControllerConfig};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use std::future::Future;
use std::pin::Pin;
use support::cluster::{self, FIELD_MANAGER, PATIENCE, eventually};
use support::gitops::{argo_health, kstatus};
use support::moto::{self, Seed};
use support::proxy::{Fault, Proxy};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The live object as JSON, and both verdicts on it.
struct Judged {
    object: Value,
    kstatus: (String, String),
    argo: (String, String),
}

fn judge<K: serde::Serialize>(live: &K) -> Judged {
    let object = serde_json::to_value(live).expect("object as JSON");
    let kstatus = kstatus(std::slice::from_ref(&object)).remove(0);
    Judged { kstatus, argo: argo_health(&object), object }
}

// ---- controllers ---------------------------------------------------------------------------

type Shutdown = Pin<Box<dyn Future<Output = ()> + Send + Sync>>;

/// A controller running in this process with moto as AWS.
struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Running {
    /// Stops the controller and waits until it has returned, so it writes nothing more.
    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(PATIENCE, self.task)
            .await
            .unwrap_or_else(|_| panic!("controller still running {PATIENCE:?} after its shutdown"))
            .expect("controller task");
    }
}

async fn start<Fut>(
    client: &kube::Client,
    aws: AwsFacts,
    run: impl FnOnce(Context, Shutdown) -> Fut,
) -> Running
where
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut registry = prometheus_client::registry::Registry::default();
    let ctx = Context::new(client.clone(), aws, ControllerConfig::default(), &mut registry);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(run(
        ctx,
        Box::pin(async move {
            let _ = stopped.await;
        }),
    ));
    Running { stop, task }
}

async fn start_protected_secrets(client: &kube::Client) -> Running {
    start(client, moto::facts(moto::test_settings()).await, protected_secret::run).await
}

/// Runs `scenario` in a fresh namespace (controllers are the scenario's to start), and always
/// cleans up.
async fn in_namespace<F, Fut>(scenario: F)
where
    F: FnOnce(kube::Client, String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let client = cluster::client().await;
    cluster::install_crds(&client).await;
    let namespace = cluster::create_namespace(&client, "dpo-e2e-gitops").await;
    let outcome = tokio::spawn(scenario(client.clone(), namespace.clone())).await;
    cluster::delete_namespace(&client, &namespace).await;
    if let Err(err) = outcome {
        std::panic::resume_unwind(err.into_panic());
    }
}

// ---- ProtectedSecrets ----------------------------------------------------------------------

async fn compliant_secret(namespace: &str) -> String {
    Seed::new().await.compliant_secret(namespace, &json!({"username": "app", "password": "pw-1"})).await
}

fn spec(secret_id: &str) -> Value {
    json!({"source": {"secretId": secret_id}, "data": [{"key": "password", "property": "password"}]})
}

async fn apply(api: &Api<ProtectedSecret>, name: &str, spec: Value) -> ProtectedSecret {
    let object = json!({"apiVersion": "dpo.dev/v1alpha1", "kind": "ProtectedSecret", "metadata": {"name": name}, "spec": spec});
    api.patch(name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&object))
        .await
        .expect("apply ProtectedSecret")
}

fn condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Waits until the controller has written `Ready` with `reason` for the object's current
/// generation; the live object then.
async fn settled(api: &Api<ProtectedSecret>, name: &str, reason: &'static str) -> ProtectedSecret {
    eventually(&format!("Ready with reason {reason} for the current generation"), || {
        let api = api.clone();
        let name = name.to_string();
        async move {
            let live = api.get(&name).await.ok()?;
            let generation = live.metadata.generation;
            let status = live.status.as_ref()?;
            let ready = condition(&status.conditions, "Ready")?;
            (status.observed_generation == generation
                && ready.observed_generation == generation
                && ready.reason == reason)
                .then_some(live)
        }
    })
    .await
}

#[tokio::test]
async fn a_synced_protected_secret_is_current_and_healthy() {
    in_namespace(|client, namespace| async move {
        let controller = start_protected_secrets(&client).await;
        let api: Api<ProtectedSecret> = Api::namespaced(client.clone(), &namespace);
        let secret_id = compliant_secret(&namespace).await;
        apply(&api, "db", spec(&secret_id)).await;
        let live = settled(&api, "db", "Synced").await;
        let judged = judge(&live);
        assert_eq!(judged.kstatus, ("Current".into(), "Resource is Ready".into()), "{}", judged.object);
        assert_eq!(judged.argo.0, "Healthy", "{}", judged.object);
        assert!(judged.argo.1.contains(&secret_id), "the Ready message names the secret: {:?}", judged.argo);
        controller.stop().await;
    })
    .await;
}

/// A condition of `type_` with status True, if there is one.
fn true_condition<'a>(live: &'a ProtectedSecret, type_: &str) -> Option<&'a Condition> {
    condition(&live.status.as_ref()?.conditions, type_).filter(|c| c.status == "True")
}

/// Both tools fail a permanent error at once, with the controller's reason and message.
fn assert_failed(judged: &Judged, live: &ProtectedSecret, reason: &str) {
    let stalled =
        true_condition(live, "Stalled").unwrap_or_else(|| panic!("Stalled=True in {}", judged.object));
    assert_eq!(stalled.reason, reason);
    assert!(true_condition(live, "Reconciling").is_none(), "{}", judged.object);
    assert_eq!(judged.kstatus, ("Failed".into(), stalled.message.clone()), "{}", judged.object);
    assert_eq!(judged.argo.0, "Degraded", "{}", judged.object);
    assert!(judged.argo.1.starts_with(&format!("{reason}: ")), "{:?}", judged.argo);
}

#[tokio::test]
async fn a_refused_reference_fails_at_once() {
    in_namespace(|client, namespace| async move {
        let controller = start_protected_secrets(&client).await;
        let api: Api<ProtectedSecret> = Api::namespaced(client.clone(), &namespace);
        // Outside `<namespace>/`: refused before AWS is asked.
        apply(&api, "db", spec("some-other-namespace/db")).await;
        let live = settled(&api, "db", "AccessNotAllowed").await;
        assert_failed(&judge(&live), &live, "AccessNotAllowed");
        controller.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_missing_aws_secret_fails_at_once() {
    in_namespace(|client, namespace| async move {
        let controller = start_protected_secrets(&client).await;
        let api: Api<ProtectedSecret> = Api::namespaced(client.clone(), &namespace);
        apply(&api, "db", spec(&format!("{namespace}/does-not-exist"))).await;
        let live = settled(&api, "db", "SecretNotFound").await;
        assert_failed(&judge(&live), &live, "SecretNotFound");
        controller.stop().await;
    })
    .await;
}

#[tokio::test]
async fn an_aws_outage_is_in_progress_while_retried() {
    in_namespace(|client, namespace| async move {
        let proxy = Proxy::start(moto::endpoint()).await;
        let aws = moto::facts_at(proxy.endpoint(), moto::test_settings()).await;
        let controller = start(&client, aws, protected_secret::run).await;
        let secret_id = compliant_secret(&namespace).await;
        for operation in ["BatchGetSecretValue", "DescribeSecret", "ListSecretVersionIds", "GetSecretValue"] {
            proxy.inject(operation, Fault::ServerError, usize::MAX);
        }
        let api: Api<ProtectedSecret> = Api::namespaced(client.clone(), &namespace);
        apply(&api, "db", spec(&secret_id)).await;
        let live = settled(&api, "db", "AwsUnavailable").await;
        let reconciling = true_condition(&live, "Reconciling").expect("Reconciling=True while retried");
        assert!(true_condition(&live, "Stalled").is_none(), "{:?}", live.status);
        let judged = judge(&live);
        assert_eq!(judged.kstatus, ("InProgress".into(), reconciling.message.clone()), "{}", judged.object);
        assert_eq!(judged.argo, ("Progressing".into(), reconciling.message.clone()), "{}", judged.object);
        controller.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_generation_the_controller_has_not_seen_is_in_progress() {
    in_namespace(|client, namespace| async move {
        let api: Api<ProtectedSecret> = Api::namespaced(client.clone(), &namespace);
        let secret_id = compliant_secret(&namespace).await;

        // No controller yet: the apiserver serves the CRD's default status, so neither tool
        // calls an object nobody has looked at ready.
        let created = apply(&api, "db", spec(&secret_id)).await;
        assert_eq!(
            created.status.as_ref().and_then(|s| s.observed_generation),
            Some(-1),
            "{:?}",
            created.status
        );
        let judged = judge(&api.get("db").await.expect("get ProtectedSecret"));
        assert_eq!(
            judged.kstatus,
            (
                "InProgress".into(),
                "ProtectedSecret generation is 1, but latest observed generation is -1".into()
            ),
            "{}",
            judged.object
        );
        assert_eq!(judged.argo.0, "Progressing", "{}", judged.object);

        let controller = start_protected_secrets(&client).await;
        settled(&api, "db", "Synced").await;
        controller.stop().await;

        // A spec change the stopped controller cannot observe: generation moves past the status.
        let mut changed = spec(&secret_id);
        changed["refreshInterval"] = json!("7m");
        let live = apply(&api, "db", changed).await;
        let generation = live.metadata.generation.expect("generation");
        let observed = live.status.as_ref().and_then(|s| s.observed_generation).expect("observedGeneration");
        assert!(observed < generation, "observed {observed}, generation {generation}");
        let judged = judge(&live);
        let stale = format!(
            "ProtectedSecret generation is {generation}, but latest observed generation is {observed}"
        );
        assert_eq!(judged.kstatus, ("InProgress".into(), stale), "{}", judged.object);
        assert_eq!(
            judged.argo,
            ("Progressing".into(), format!("Waiting for the operator to observe generation {generation}")),
            "{}",
            judged.object
        );

        // Once the controller is back, the new generation is synced and current again.
        let controller = start_protected_secrets(&client).await;
        let judged = judge(&settled(&api, "db", "Synced").await);
        assert_eq!((judged.kstatus.0.as_str(), judged.argo.0.as_str()), ("Current", "Healthy"));
        controller.stop().await;
    })
    .await;
}

// ---- policies ------------------------------------------------------------------------------

/// An EncryptedVolumePolicy over one StorageClass of `encrypted`, as the controller leaves it
/// once it has evaluated the current generation.
async fn evaluated_volume_policy(encrypted: &str) -> EncryptedVolumePolicy {
    let client = cluster::client().await;
    cluster::install_crds(&client).await;
    let id = moto::unique("e2e-gitops").to_lowercase();
    let classes: Api<StorageClass> = Api::all(client.clone());
    let class: StorageClass = serde_json::from_value(json!({
        "metadata": {"name": id, "labels": {"dpo.dev/e2e": id}},
        "provisioner": "ebs.csi.aws.com",
        "parameters": {"type": "gp3", "encrypted": encrypted},
    }))
    .expect("StorageClass");
    classes.create(&PostParams::default(), &class).await.expect("create StorageClass");
    let policies: Api<EncryptedVolumePolicy> = Api::all(client.clone());
    let policy: EncryptedVolumePolicy = serde_json::from_value(json!({
        "apiVersion": "dpo.dev/v1alpha1",
        "kind": "EncryptedVolumePolicy",
        "metadata": {"name": id},
        "spec": {
            "storageClassSelector": {"matchLabels": {"dpo.dev/e2e": id}},
            "checkVolumes": false,
            "checkAccountDefault": false,
        },
    }))
    .expect("EncryptedVolumePolicy");
    policies.create(&PostParams::default(), &policy).await.expect("create policy");
    let controller = start(&client, moto::facts(moto::test_settings()).await, run_volume_policies).await;

    let live = eventually("Ready and Reconciling=False for the current generation", || {
        let policies = policies.clone();
        let id = id.clone();
        async move {
            let live = policies.get(&id).await.ok()?;
            let generation = live.metadata.generation;
            let status = live.status.as_ref()?;
            let ready = condition(&status.conditions, "Ready")?;
            let reconciling =
                condition(&status.conditions, "Reconciling").is_some_and(|c| c.status == "True");
            (status.observed_generation == generation
                && ready.observed_generation == generation
                && !reconciling)
                .then_some(live)
        }
    })
    .await;
    controller.stop().await;
    let _ = policies.delete(&id, &DeleteParams::default()).await;
    let _ = classes.delete(&id, &DeleteParams::default()).await;
    live
}

#[tokio::test]
async fn a_compliant_policy_is_current_and_healthy() {
    let judged = judge(&evaluated_volume_policy("true").await);
    assert_eq!(judged.kstatus, ("Current".into(), "Resource is Ready".into()), "{}", judged.object);
    assert_eq!(judged.argo.0, "Healthy", "{}", judged.object);
}

#[tokio::test]
async fn a_policy_with_findings_fails_at_once() {
    let live = evaluated_volume_policy("false").await;
    let conditions = &live.status.as_ref().expect("status").conditions;
    let stalled = condition(conditions, "Stalled").filter(|c| c.status == "True").expect("Stalled=True");
    let judged = judge(&live);
    assert_eq!(stalled.reason, "ViolationsFound", "{}", judged.object);
    assert_eq!(judged.kstatus, ("Failed".into(), stalled.message.clone()), "{}", judged.object);
    assert_eq!(judged.argo.0, "Degraded", "{}", judged.object);
}

/// kstatus reads `metadata.generation` only as an int64: the JSON the tests hand it keeps whole
/// numbers whole.
#[test]
fn kstatus_compares_generations() {
    let object = |generation: i64, observed: i64| {
        json!({
            "apiVersion": "dpo.dev/v1alpha1", "kind": "ProtectedSecret",
            "metadata": {"name": "db", "namespace": "shop", "generation": generation},
            "status": {"observedGeneration": observed, "conditions": [
                {"type": "Ready", "status": "True", "reason": "Synced", "message": "synced",
                 "observedGeneration": observed},
            ]},
        })
    };
    let judged = kstatus(&[object(2, 2), object(2, 1)]);
    assert_eq!(judged[0], ("Current".into(), "Resource is Ready".into()));
    assert_eq!(
        judged[1],
        ("InProgress".into(), "ProtectedSecret generation is 2, but latest observed generation is 1".into())
    );
}
