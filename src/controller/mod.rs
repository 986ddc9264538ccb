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
use kube::runtime::reflector::Store;
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
    /// Namespaces the ProtectedSecret controller watches and writes Secrets in; empty: every
    /// namespace.
    pub secret_namespaces: Vec<String>,
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
            secret_namespaces: Vec::new(),
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

/// Marks `ready` once every one of `stores` has its first list, so `/readyz` turns green when
/// the controller works from synced caches.
pub fn ready_when_synced<K>(stores: impl IntoIterator<Item = Store<K>>, ready: ReadyHandle)
where
    K: kube::Resource + Clone + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Send + Sync,
{
    let stores: Vec<Store<K>> = stores.into_iter().collect();
    tokio::spawn(async move {
        let synced = futures::future::join_all(stores.iter().map(Store::wait_until_ready)).await;
        if synced.iter().all(Result::is_ok) {
            ready.set_ready();
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ProtectedSecret;
    use crate::server::Readiness;
    use kube::runtime::reflector;
    use kube::runtime::watcher::Event;
    use std::time::Duration;

    #[tokio::test]
    async fn ready_once_every_store_has_synced() {
        let readiness = Readiness::default();
        let (first, mut first_writer) = reflector::store::<ProtectedSecret>();
        let (second, mut second_writer) = reflector::store::<ProtectedSecret>();
        ready_when_synced([first, second], readiness.register("protectedsecret"));
        for event in [Event::Init, Event::InitDone] {
            first_writer.apply_watcher_event(&event);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(readiness.pending(), ["protectedsecret"], "ready with one cache not synced");
        for event in [Event::Init, Event::InitDone] {
            second_writer.apply_watcher_event(&event);
        }
        tokio::time::timeout(Duration::from_secs(5), async {
            while !readiness.pending().is_empty() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("not ready after every cache synced");
    }
}
