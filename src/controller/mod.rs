//! The controllers: one module per kind, each a reconcile function of (object, context), and
//! the runtime that runs them ([`runtime`], [`leader`]).

pub mod access;
pub mod client;
pub mod envelope;
pub mod events;
pub mod leader;
pub mod policy;
pub mod protected_secret;
pub mod runtime;

use crate::aws::AwsFacts;
use crate::metrics::{PolicyMetrics, ReconcileMetrics, SecretSyncMetrics};
use crate::policy::AlbDefaults;
use crate::policy::secret::SYNCABLE_SECRET_TYPES;
use crate::server::ReadyHandle;
use access::AccessRules;
use futures::{Stream, TryStreamExt};
use kube::runtime::watcher;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A poisoned lock still holds consistent data: the controllers' locked state is plain data,
/// changed by single inserts, removals and takes.
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Field manager of every server-side apply the controllers make.
pub const FIELD_MANAGER: &str = "dpo";

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
    /// Secret types ProtectedSecrets may write.
    pub allowed_secret_types: Vec<String>,
    /// The EKS cluster the operator runs in, whose Secrets encryption ProtectedSecrets note.
    pub cluster_name: Option<String>,
}

/// Reconciles in flight at once, per controller. Each mostly waits on the apiserver or AWS, and
/// reads that overlap are batched, so many in flight cost little and shorten a start.
pub const DEFAULT_CONCURRENCY: u16 = 32;

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            default_refresh: Duration::from_secs(3600),
            reevaluation_period: Duration::from_secs(600),
            concurrency: DEFAULT_CONCURRENCY,
            secret_access: AccessRules::default(),
            batch_window: Duration::from_millis(20),
            alb_defaults: AlbDefaults::default(),
            secret_namespaces: Vec::new(),
            allowed_secret_types: SYNCABLE_SECRET_TYPES.map(String::from).to_vec(),
            cluster_name: None,
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
    /// Whether the cluster envelope-encrypts the Secrets the ProtectedSecrets write.
    pub cluster: Arc<envelope::ClusterEncryption>,
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
        let metrics = SecretSyncMetrics::register(registry);
        let protected_secrets = protected_secret::Shared::new(metrics, config.batch_window, aws.clone());
        let cluster =
            envelope::ClusterEncryption::new(config.cluster_name.clone(), config.reevaluation_period);
        Context {
            client,
            aws,
            reconciles: ReconcileMetrics::register(registry),
            policies: PolicyMetrics::register(registry),
            config: Arc::new(config),
            ready: crate::server::Readiness::default().register("standalone"),
            protected_secrets: Arc::new(protected_secrets),
            cluster: Arc::new(cluster),
        }
    }
}

/// A controller's readiness over its caches: `/readyz` turns green once every watch passed
/// through [`CacheSync::track`] has completed its first list. Wrap every watch before polling
/// any. (A task of our own awaiting `Store::wait_until_ready` would race the controller, which
/// awaits it too, for the store's single wakeup, and could wait forever.)
pub struct CacheSync {
    ready: ReadyHandle,
    pending: Arc<AtomicUsize>,
}

impl CacheSync {
    pub fn new(ready: ReadyHandle) -> Self {
        CacheSync { ready, pending: Arc::default() }
    }

    /// Passes `events` through, counting this cache synced at its first complete list.
    pub fn track<K, S>(&self, events: S) -> impl Stream<Item = S::Item> + use<K, S>
    where
        S: Stream<Item = Result<watcher::Event<K>, watcher::Error>>,
    {
        self.pending.fetch_add(1, Ordering::AcqRel);
        let (pending, ready) = (self.pending.clone(), self.ready.clone());
        let mut synced = false;
        events.inspect_ok(move |event| {
            if matches!(event, watcher::Event::InitDone) && !std::mem::replace(&mut synced, true) {
                // The last cache to sync turns the controller ready; a relist counts nothing.
                if pending.fetch_sub(1, Ordering::AcqRel) == 1 {
                    ready.set_ready();
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ProtectedSecret;
    use crate::server::Readiness;
    use futures::{StreamExt, stream};
    use kube::runtime::watcher::Event;

    type Events = Vec<Result<Event<ProtectedSecret>, watcher::Error>>;

    fn listed_twice() -> Events {
        vec![Ok(Event::Init), Ok(Event::InitDone), Ok(Event::Init), Ok(Event::InitDone)]
    }

    #[tokio::test]
    async fn ready_once_every_cache_has_synced() {
        let readiness = Readiness::default();
        let sync = CacheSync::new(readiness.register("protectedsecret"));
        let first = sync.track(stream::iter(listed_twice()));
        let second = sync.track(stream::iter(vec![Ok(Event::Init), Ok(Event::InitDone)] as Events));
        assert_eq!(first.count().await, 4);
        assert_eq!(readiness.pending(), ["protectedsecret"], "one cache's relist is not another's list");
        second.count().await;
        assert!(readiness.pending().is_empty(), "{:?}", readiness.pending());
    }
}
