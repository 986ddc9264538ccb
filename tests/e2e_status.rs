//! Every failure reaches status, against a real cluster (`KUBECONFIG`) with the controller in
//! this process and moto as AWS: Secret writes and rollout restarts the apiserver refuses
//! (an immutable field, a ValidatingAdmissionPolicy), a restart owed until it is done, keys
//! dropped from the spec or from the AWS value, and the staleness metric of objects that fail
//! or are gone.
//!
//! Run with `tests/run.sh`, which starts a control plane; without a cluster every test fails
//! saying so.

mod support;

use dpo::api::ProtectedSecret;
use dpo::controller::ControllerConfig;
use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use std::future::Future;
use support::cluster::{self, eventually};
use support::moto::{self, Seed};
use support::running::InProcess;

/// Whether a request the admission policy is to refuse still goes through.
type Probe = std::pin::Pin<Box<dyn Future<Output = bool> + Send>>;

/// What a case works with: its namespace, the controller watching only it, and AWS.
struct Scene {
    client: kube::Client,
    namespace: String,
    controller: InProcess,
    psecs: Api<ProtectedSecret>,
    secrets: Api<Secret>,
}

/// Runs `scenario` in a fresh namespace with the controller running; always cleans up,
/// cluster-scoped admission policies named after the namespace included.
async fn in_namespace<F, Fut>(scenario: F)
where
    F: FnOnce(Scene) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let client = cluster::client().await;
    cluster::install_crds(&client).await;
    let namespace = cluster::create_namespace(&client, "dpo-status").await;
    let config =
        ControllerConfig { secret_namespaces: vec![namespace.clone()], ..ControllerConfig::default() };
    let scene = Scene {
        controller: InProcess::start(&client, moto::facts(moto::test_settings()).await, config),
        psecs: Api::namespaced(client.clone(), &namespace),
        secrets: Api::namespaced(client.clone(), &namespace),
        client: client.clone(),
        namespace: namespace.clone(),
    };
    let outcome = tokio::spawn(scenario(scene)).await;
    let gone = DeleteParams::default();
    let _ = Api::<ValidatingAdmissionPolicyBinding>::all(client.clone()).delete(&namespace, &gone).await;
    let _ = Api::<ValidatingAdmissionPolicy>::all(client.clone()).delete(&namespace, &gone).await;
    cluster::delete_namespace(&client, &namespace).await;
    if let Err(err) = outcome {
        std::panic::resume_unwind(err.into_panic());
    }
}

impl Scene {
    /// A new AWS secret holding `value` under a customer-managed, rotating key.
    async fn aws_secret(&self, value: &Value) -> String {
        Seed::new().await.compliant_secret(&self.namespace, value).await
    }

    async fn apply(&self, name: &str, spec: Value) {
        let object = json!({"apiVersion": "dpo.dev/v1alpha1", "kind": "ProtectedSecret", "metadata": {"name": name}, "spec": spec});
        self.psecs
            .patch(name, &PatchParams::apply(cluster::FIELD_MANAGER).force(), &Patch::Apply(&object))
            .await
            .unwrap_or_else(|e| panic!("applying ProtectedSecret {name}: {e}"));
    }

    async fn condition(&self, name: &str, type_: &str) -> Option<Condition> {
        let status = self.psecs.get_opt(name).await.ok()??.status?;
        status.conditions.into_iter().find(|c| c.type_ == type_)
    }

    /// Waits for `Ready` of `name` to have `status` and a reason starting with `reason`.
    async fn ready(&self, name: &str, status: &str, reason: &str) -> Condition {
        eventually(&format!("{name} Ready={status} {reason}…"), || async {
            self.condition(name, "Ready").await.filter(|c| c.status == status && c.reason.starts_with(reason))
        })
        .await
    }

    /// Waits until Secret `name` holds exactly the keys and values of `want`.
    async fn secret_holds(&self, name: &str, want: &[(&str, &str)]) -> Secret {
        eventually(&format!("Secret {name} holding exactly {want:?}"), || async {
            let secret = self.secrets.get_opt(name).await.ok()??;
            let data = secret.data.clone().unwrap_or_default();
            let held = data.len() == want.len()
                && want.iter().all(|(k, v)| data.get(*k).is_some_and(|b| b.0 == v.as_bytes()));
            held.then_some(secret)
        })
        .await
    }

    async fn assert_event(&self, object: &str, reason: &str) {
        let events: Api<Event> = Api::namespaced(self.client.clone(), &self.namespace);
        let fields = format!("involvedObject.name={object}");
        eventually(&format!("an Event {reason} about {object}"), || async {
            let listed = events.list(&ListParams::default().fields(&fields)).await.ok()?;
            listed.items.iter().any(|e| e.reason.as_deref() == Some(reason)).then_some(())
        })
        .await;
    }

    fn errors(&self, reason: &str) -> f64 {
        self.controller.sample(&format!("dpo_secret_sync_errors_total{{reason=\"{reason}\"}}")).unwrap_or(0.0)
    }

    fn last_sync(&self, name: &str) -> Option<f64> {
        let series = format!(
            "dpo_secret_last_sync_timestamp_seconds{{namespace=\"{}\",name=\"{name}\"}}",
            self.namespace
        );
        self.controller.sample(&series)
    }

    /// A ValidatingAdmissionPolicy (with its binding, both named after the namespace) refusing
    /// `resource` objects of the namespace that carry `label`, in effect once a probe is refused.
    async fn refuse_labelled(&self, resource: &str, label: &str, probe: impl Fn() -> Probe) {
        let name = &self.namespace;
        let policy = json!({
            "metadata": {"name": name},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {"resourceRules": [{
                    "apiGroups": ["", "apps"], "apiVersions": ["v1"],
                    "operations": ["CREATE", "UPDATE"], "resources": [resource],
                }]},
                "validations": [{
                    "expression": format!("!has(object.metadata.labels) || !('{label}' in object.metadata.labels)"),
                    "message": format!("{resource} labelled {label} are refused here"),
                }],
            },
        });
        let binding = json!({
            "metadata": {"name": name},
            "spec": {
                "policyName": name, "validationActions": ["Deny"],
                "matchResources": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}},
            },
        });
        let post = PostParams::default();
        let policies: Api<ValidatingAdmissionPolicy> = Api::all(self.client.clone());
        policies.create(&post, &serde_json::from_value(policy).unwrap()).await.expect("creating the policy");
        let bindings: Api<ValidatingAdmissionPolicyBinding> = Api::all(self.client.clone());
        bindings
            .create(&post, &serde_json::from_value(binding).unwrap())
            .await
            .expect("creating the binding");
        eventually("the admission policy in effect", || async { (!probe().await).then_some(()) }).await;
    }

    async fn allow_again(&self) {
        let bindings: Api<ValidatingAdmissionPolicyBinding> = Api::all(self.client.clone());
        bindings.delete(&self.namespace, &DeleteParams::default()).await.expect("deleting the binding");
    }
}

fn password_spec(secret_id: &str) -> Value {
    json!({"source": {"secretId": secret_id}, "data": [{"key": "password", "property": "password"}]})
}

#[tokio::test]
async fn secret_writes_the_apiserver_refuses_are_reported_and_the_secret_kept() {
    in_namespace(|scene| async move {
        let id = scene.aws_secret(&json!({"password": "pw-1"})).await;
        scene.apply("db", password_spec(&id)).await;
        scene.ready("db", "True", "Synced").await;
        let before = scene.secret_holds("db", &[("password", "pw-1")]).await;

        // A Secret's type is immutable.
        let mut spec = password_spec(&id);
        spec["target"] = json!({"type": "kubernetes.io/basic-auth"});
        scene.apply("db", spec).await;
        let ready = scene.ready("db", "False", "SecretWrite").await;
        assert_eq!(ready.reason, "SecretWriteInvalid", "{ready:?}");
        assert!(ready.message.contains("immutable"), "the apiserver's words: {}", ready.message);
        let stalled = scene.condition("db", "Stalled").await.map(|c| c.status);
        assert_eq!(stalled.as_deref(), Some("True"), "a refused write is no transient failure");
        scene.assert_event("db", "SecretWriteInvalid").await;
        assert!(scene.errors("SecretWriteInvalid") >= 1.0, "{}", scene.controller.metrics());

        // An admission policy refuses it.
        let denied = scene.namespace.clone();
        let secrets = scene.secrets.clone();
        scene
            .refuse_labelled("secrets", "dpo-e2e-deny", move || {
                let secrets = secrets.clone();
                Box::pin(async move {
                    let probe = json!({"metadata": {"name": "probe", "labels": {"dpo-e2e-deny": "yes"}}});
                    let probe: Secret = serde_json::from_value(probe).unwrap();
                    secrets.create(&PostParams { dry_run: true, ..Default::default() }, &probe).await.is_ok()
                })
            })
            .await;
        let mut spec = password_spec(&id);
        spec["target"] = json!({"labels": {"dpo-e2e-deny": "yes"}});
        scene.apply("db", spec).await;
        let ready = eventually("Ready=False for the admission policy's refusal", || async {
            let ready = scene.condition("db", "Ready").await?;
            ready.message.contains("secrets labelled dpo-e2e-deny are refused").then_some(ready)
        })
        .await;
        assert!(ready.status == "False" && ready.reason.starts_with("SecretWrite"), "{ready:?} in {denied}");
        assert!(scene.errors(&ready.reason) >= 1.0, "{}", scene.controller.metrics());
        scene.assert_event("db", &ready.reason).await;

        let after = scene.secret_holds("db", &[("password", "pw-1")]).await;
        assert_eq!(
            after.metadata.resource_version, before.metadata.resource_version,
            "the Secret was written"
        );
        scene.controller.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_rollout_restart_owed_is_retried_until_done() {
    in_namespace(|scene| async move {
        let deployments: Api<Deployment> = Api::namespaced(scene.client.clone(), &scene.namespace);
        let labels = json!({"app": "web", "dpo-e2e-frozen": "yes"});
        let web = json!({"metadata": {"name": "web", "labels": labels}, "spec": {"replicas": 0,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "web"}]}}}});
        deployments.create(&PostParams::default(), &serde_json::from_value(web).unwrap()).await.expect("web");
        let id = scene.aws_secret(&json!({"password": "pw-1"})).await;
        let mut spec = password_spec(&id);
        spec["rolloutRestart"] = json!([{"kind": "Deployment", "name": "web"}]);
        spec["refreshInterval"] = json!("10s");
        scene.apply("db", spec).await;
        scene.ready("db", "True", "Synced").await;

        let probed = deployments.clone();
        scene
            .refuse_labelled("deployments", "dpo-e2e-frozen", move || {
                let deployments = probed.clone();
                Box::pin(async move {
                    let touch = json!({"metadata": {"annotations": {"probe": "1"}}});
                    let dry_run = PatchParams { dry_run: true, ..Default::default() };
                    deployments.patch("web", &dry_run, &Patch::Merge(&touch)).await.is_ok()
                })
            })
            .await;
        Seed::new().await.put_value(&id, &json!({"password": "pw-2"}).to_string()).await;
        scene.secret_holds("db", &[("password", "pw-2")]).await;
        let ready = scene.ready("db", "False", "RolloutRestart").await;
        assert!(ready.message.contains("Deployment/web"), "names the workload: {}", ready.message);
        let synced = scene.condition("db", "Synced").await.map(|c| c.status);
        assert_eq!(synced.as_deref(), Some("True"), "the Secret holds the new version");
        scene.assert_event("db", &ready.reason).await;
        assert!(scene.errors(&ready.reason) >= 1.0, "{}", scene.controller.metrics());

        scene.allow_again().await;
        scene.ready("db", "True", "Synced").await;
        let web = deployments.get("web").await.expect("web");
        let template = web.spec.and_then(|s| s.template.metadata).and_then(|m| m.annotations).unwrap_or_default();
        assert!(template.contains_key("dpo.dev/restartedAt"), "web was not restarted: {template:?}");
        let status = scene.psecs.get("db").await.expect("db").status.expect("status");
        assert_eq!(status.rolled_out_version_id, status.synced_version_id, "{status:?}");
        scene.controller.stop().await;
    })
    .await;
}

#[tokio::test]
async fn keys_dropped_from_the_aws_value_or_the_spec_leave_the_secret() {
    in_namespace(|scene| async move {
        let id =
            scene.aws_secret(&json!({"username": "app", "password": "pw-1", "host": "db.internal"})).await;
        let extract =
            json!({"source": {"secretId": id}, "dataFrom": {"extract": true}, "refreshInterval": "10s"});
        scene.apply("db", extract).await;
        scene.secret_holds("db", &[("username", "app"), ("password", "pw-1"), ("host", "db.internal")]).await;

        Seed::new().await.put_value(&id, &json!({"username": "app", "password": "pw-2"}).to_string()).await;
        scene.secret_holds("db", &[("username", "app"), ("password", "pw-2")]).await;

        scene.apply("db", password_spec(&id)).await;
        scene.secret_holds("db", &[("password", "pw-2")]).await;
        scene.ready("db", "True", "Synced").await;
        scene.controller.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_failing_object_keeps_its_staleness_series_and_a_deleted_one_loses_it() {
    in_namespace(|scene| async move {
        let missing = format!("{}/missing", scene.namespace);
        scene.apply("failing", password_spec(&missing)).await;
        scene.ready("failing", "False", "SecretNotFound").await;
        eventually("a series for the failing object", || async { scene.last_sync("failing") }).await;
        assert_eq!(scene.last_sync("failing"), Some(0.0), "never synced: {}", scene.controller.metrics());

        // Synced once and deleted with no finalizer: no reconcile sees it go, the watch does.
        let id = scene.aws_secret(&json!({"password": "pw-1"})).await;
        let mut spec = password_spec(&id);
        spec["refreshInterval"] = json!("0");
        spec["target"] = json!({"deletionPolicy": "Delete"});
        scene.apply("once", spec).await;
        scene.ready("once", "True", "Synced").await;
        let synced = eventually("a series for the synced object", || async { scene.last_sync("once") }).await;
        assert!(synced > 0.0, "{synced}");
        let ps = scene.psecs.get("once").await.expect("once");
        assert!(ps.metadata.finalizers.unwrap_or_default().is_empty(), "Owner + Delete needs no finalizer");
        scene.psecs.delete("once", &DeleteParams::default()).await.expect("deleting once");
        eventually("the deleted object's series dropped", || async {
            scene.last_sync("once").is_none().then_some(())
        })
        .await;
        assert_eq!(scene.last_sync("failing"), Some(0.0), "{}", scene.controller.metrics());
        scene.controller.stop().await;
    })
    .await;
}
