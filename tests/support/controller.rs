//! A ProtectedSecret controller context over the fake API server and moto, and helpers to
//! drive reconciles the way the runtime does: the object as the API server holds it.

use super::apiserver::{self, FakeApiserver, protected_secret_path};
use dpo::api::ProtectedSecret;
use dpo::aws::AwsFacts;
use dpo::controller::protected_secret::{self, Error, Shared};
use dpo::controller::{Context, ControllerConfig};
use futures::StreamExt;
use kube::runtime::controller::Action;
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use std::sync::Arc;

pub const NAMESPACE: &str = "team";

pub struct Harness {
    pub ctx: Arc<Context>,
    pub api: FakeApiserver,
    pub registry: Arc<Registry>,
}

impl Harness {
    pub fn new(aws: AwsFacts) -> Self {
        Self::with_config(aws, ControllerConfig::default())
    }

    pub fn with_config(aws: AwsFacts, config: ControllerConfig) -> Self {
        let (client, api) = apiserver::start();
        let mut registry = Registry::default();
        let ctx = Context::new(client, aws, config, &mut registry);
        Harness { ctx: Arc::new(ctx), api, registry: Arc::new(registry) }
    }

    /// The same cluster and AWS handle, with the controller's memory gone: every refresh is
    /// due, as after the refresh interval or a restart.
    pub fn restarted(&self) -> Self {
        let mut ctx = (*self.ctx).clone();
        let metrics = self.ctx.protected_secrets.metrics.clone();
        ctx.protected_secrets = Arc::new(Shared::new(metrics, ctx.config.batch_window, ctx.aws.clone()));
        Harness { ctx: Arc::new(ctx), api: self.api.clone(), registry: self.registry.clone() }
    }

    /// Stores a ProtectedSecret `name` with `spec`, generation 1.
    pub fn create(&self, name: &str, spec: Value) {
        let object = json!({
            "apiVersion": "dpo.dev/v1alpha1", "kind": "ProtectedSecret",
            "metadata": {"name": name, "namespace": NAMESPACE, "generation": 1, "uid": format!("uid-{name}")},
            "spec": spec,
        });
        self.api.put(&protected_secret_path(NAMESPACE, name), object);
    }

    /// Replaces the spec of `name`, as an edit does: the generation goes up by one.
    pub fn update(&self, name: &str, spec: Value) {
        let path = protected_secret_path(NAMESPACE, name);
        let mut object = self.api.get(&path).expect("stored");
        object["metadata"]["generation"] = json!(object["metadata"]["generation"].as_i64().unwrap_or(0) + 1);
        object["spec"] = spec;
        self.api.put(&path, object);
    }

    /// Marks `name` deleted, as the apiserver does while finalizers hold it.
    pub fn delete(&self, name: &str) {
        let path = protected_secret_path(NAMESPACE, name);
        let mut object = self.api.get(&path).expect("stored");
        object["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        self.api.put(&path, object);
    }

    pub fn object(&self, name: &str) -> ProtectedSecret {
        self.api.object(&protected_secret_path(NAMESPACE, name))
    }

    /// One reconcile of the stored object.
    pub async fn reconcile(&self, name: &str) -> Result<Action, Error> {
        protected_secret::reconcile(Arc::new(self.object(name)), self.ctx.clone()).await
    }

    /// Reconciles each of `names` once, `concurrency` at a time, and returns how many are Ready.
    pub async fn reconcile_all(&self, names: &[String], concurrency: usize) -> usize {
        let results: Vec<_> = futures::stream::iter(names)
            .map(|name| self.reconcile(name))
            .buffer_unordered(concurrency)
            .collect()
            .await;
        assert!(results.iter().all(Result::is_ok), "every reconcile succeeds");
        names.iter().filter(|name| self.ready(name).0 == "True").count()
    }

    /// The Ready condition: (status, reason, message).
    pub fn ready(&self, name: &str) -> (String, String, String) {
        self.condition(name, "Ready")
    }

    pub fn condition(&self, name: &str, type_: &str) -> (String, String, String) {
        let status = self.object(name).status.expect("status written");
        let c = status
            .conditions
            .iter()
            .find(|c| c.type_ == type_)
            .unwrap_or_else(|| panic!("{type_} condition"));
        (c.status.clone(), c.reason.clone(), c.message.clone())
    }

    pub fn metrics_text(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).expect("metrics encode");
        text
    }
}
