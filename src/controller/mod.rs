//! The controllers: one module per kind, each a reconcile function of (object, context), and
//! the runtime that runs them ([`runtime`], [`leader`]).

pub mod access;
pub mod leader;
pub mod policy;
pub mod protected_secret;
pub mod runtime;

use crate::aws::AwsFacts;
use crate::metrics::{PolicyMetrics, ReconcileMetrics, SecretSyncMetrics};
use crate::policy::AlbDefaults;
use crate::server::ReadyHandle;
use access::AccessRules;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Duration;

/// Settings shared by the controllers, validated at start.
#[derive(Clone, Debug)]
pub struct ControllerConfig {
    /// Refresh interval for ProtectedSecrets that do not set one.
    pub default_refresh: Duration,
    /// Period of the full re-evaluation of cluster policies (facts change in AWS).
    pub reevaluation_period: Duration,
    /// Reconciles in flight at once, per controller.
    pub concurrency: u16,
    /// Which secret ids each namespace may reference.
    pub secret_access: AccessRules,
    /// How long AWS reads of concurrent reconciles are collected into one batch call.
    pub batch_window: Duration,
    /// How the AWS Load Balancer Controller of the cluster is configured (TlsIngressPolicy).
    pub alb_defaults: AlbDefaults,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            default_refresh: Duration::from_secs(3600),
            reevaluation_period: Duration::from_secs(600),
            concurrency: 4,
            secret_access: AccessRules::default(),
            batch_window: Duration::from_millis(20),
            alb_defaults: AlbDefaults::default(),
        }
    }
}

/// What every reconcile gets besides its object.
#[derive(Clone)]
pub struct Context {
    pub client: kube::Client,
    pub aws: AwsFacts,
    pub reconciles: ReconcileMetrics,
    pub policies: PolicyMetrics,
    pub config: Arc<ControllerConfig>,
    /// Set once this controller's caches have synced; `/readyz` fails until every controller's is.
    pub ready: ReadyHandle,
    /// State the ProtectedSecret controller keeps between reconciles.
    pub protected_secrets: Arc<protected_secret::Shared>,
}

impl Context {
    /// A context whose metrics are registered in `registry`, with the ProtectedSecret state
    /// fresh and a readiness handle of its own (replace `ready` with one from the runtime's
    /// [`crate::server::Readiness`] to take part in `/readyz`).
    pub fn new(
        client: kube::Client,
        aws: AwsFacts,
        config: ControllerConfig,
        registry: &mut Registry,
    ) -> Self {
        let protected_secrets =
            protected_secret::Shared::new(SecretSyncMetrics::register(registry), config.batch_window);
        Context {
            client,
            aws,
            reconciles: ReconcileMetrics::register(registry),
            policies: PolicyMetrics::register(registry),
            config: Arc::new(config),
            ready: crate::server::Readiness::default().register("standalone"),
            protected_secrets: Arc::new(protected_secrets),
        }
    }
}

/// Marks `ready` once `store` has its first list, so `/readyz` turns green when the controller
/// works from a synced cache.
pub fn ready_when_synced<K>(store: kube::runtime::reflector::Store<K>, ready: ReadyHandle)
where
    K: kube::Resource + Clone + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Send + Sync,
{
    tokio::spawn(async move {
        if store.wait_until_ready().await.is_ok() {
            ready.set_ready();
        }
    });
}
