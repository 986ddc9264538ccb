//! The Prometheus registry and the metrics every controller shares. Controller-specific
//! families live beside them here, so `/metrics` is one registry with one naming scheme.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    pub controller: &'static str,
}

/// Reconcile accounting shared by all controllers.
#[derive(Clone)]
pub struct ReconcileMetrics {
    reconciles: Family<ControllerLabels, Counter>,
    failures: Family<ControllerLabels, Counter>,
    duration: Family<ControllerLabels, Histogram>,
}

impl ReconcileMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = ReconcileMetrics {
            reconciles: Family::default(),
            failures: Family::default(),
            duration: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.001, 2.0, 16))),
        };
        registry.register("dpo_reconciles", "Reconciles run, by controller", metrics.reconciles.clone());
        registry.register(
            "dpo_reconcile_errors",
            "Reconciles that failed, by controller",
            metrics.failures.clone(),
        );
        registry.register(
            "dpo_reconcile_duration_seconds",
            "Time spent in one reconcile, by controller",
            metrics.duration.clone(),
        );
        metrics
    }

    /// Records one reconcile of `controller` that took `elapsed`.
    pub fn observe(&self, controller: &'static str, elapsed: Duration, failed: bool) {
        let labels = ControllerLabels { controller };
        self.reconciles.get_or_create(&labels).inc();
        if failed {
            self.failures.get_or_create(&labels).inc();
        }
        self.duration.get_or_create(&labels).observe(elapsed.as_secs_f64());
    }

    pub fn reconciles(&self, controller: &'static str) -> u64 {
        self.reconciles.get_or_create(&ControllerLabels { controller }).get()
    }

    pub fn failures(&self, controller: &'static str) -> u64 {
        self.failures.get_or_create(&ControllerLabels { controller }).get()
    }
}

/// Registers `dpo_build_info{version}`, so dashboards can tell which release is running.
pub fn register_build_info(registry: &mut Registry) {
    let info = Info::new(vec![("version".to_string(), env!("CARGO_PKG_VERSION").to_string())]);
    registry.register("dpo_build", "Build of the running operator", info);
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ObjectLabels {
    namespace: String,
    name: String,
}

/// ProtectedSecret syncing: Secrets written, failures by reason, and when each object last
/// synced (alert on `time() - dpo_secret_last_sync_timestamp_seconds`).
#[derive(Clone, Default)]
pub struct SecretSyncMetrics {
    syncs: Counter,
    errors: Family<ReasonLabels, Counter>,
    last_success: Family<ObjectLabels, Gauge>,
}

impl SecretSyncMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = SecretSyncMetrics::default();
        registry.register(
            "dpo_secret_syncs",
            "Kubernetes Secrets written from AWS values",
            metrics.syncs.clone(),
        );
        registry.register(
            "dpo_secret_sync_errors",
            "ProtectedSecret reconciles that could not sync, by Ready reason",
            metrics.errors.clone(),
        );
        registry.register(
            "dpo_secret_last_sync_timestamp_seconds",
            "Unix time of the last successful sync, per ProtectedSecret",
            metrics.last_success.clone(),
        );
        metrics
    }

    pub fn synced(&self) {
        self.syncs.inc();
    }

    pub fn failed(&self, reason: &str) {
        self.errors.get_or_create(&ReasonLabels { reason: reason.to_string() }).inc();
    }

    pub fn succeeded(&self, namespace: &str, name: &str, unix_seconds: i64) {
        self.last_success.get_or_create(&object(namespace, name)).set(unix_seconds);
    }

    /// Keeps the series of an object that fails, starting it at `unix_seconds` (the last sync
    /// known from status, 0 for none) if this process has not synced it yet.
    pub fn failing(&self, namespace: &str, name: &str, unix_seconds: i64) {
        let labels = object(namespace, name);
        if self.last_success.get(&labels).is_none() {
            self.last_success.get_or_create(&labels).set(unix_seconds);
        }
    }

    /// Drops the per-object series of a deleted ProtectedSecret.
    pub fn forget(&self, namespace: &str, name: &str) {
        self.last_success.remove(&object(namespace, name));
    }

    pub fn syncs(&self) -> u64 {
        self.syncs.get()
    }

    pub fn errors(&self, reason: &str) -> u64 {
        self.errors.get(&ReasonLabels { reason: reason.to_string() }).map_or(0, |c| c.get())
    }
}

fn object(namespace: &str, name: &str) -> ObjectLabels {
    ObjectLabels { namespace: namespace.to_string(), name: name.to_string() }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FindingLabels {
    pub policy: String,
    pub rule: String,
    pub severity: &'static str,
}

/// What the cluster policies found, and how long evaluating them takes.
#[derive(Clone)]
pub struct PolicyMetrics {
    findings: Family<FindingLabels, Gauge>,
    evaluation: Family<ControllerLabels, Histogram>,
}

impl PolicyMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = PolicyMetrics {
            findings: Family::default(),
            evaluation: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.0005, 2.0, 16))),
        };
        registry.register(
            "dpo_policy_findings",
            "Findings of the last evaluation of a cluster policy, by policy, rule and severity",
            metrics.findings.clone(),
        );
        registry.register(
            "dpo_policy_evaluation_duration_seconds",
            "Time to evaluate one cluster policy (facts included), by controller",
            metrics.evaluation.clone(),
        );
        metrics
    }

    pub fn set_findings(&self, labels: &FindingLabels, count: i64) {
        self.findings.get_or_create(labels).set(count);
    }

    /// Drops a series, so that a rule no longer violated does not linger at its last value.
    pub fn remove_findings(&self, labels: &FindingLabels) {
        self.findings.remove(labels);
    }

    pub fn findings(&self, labels: &FindingLabels) -> Option<i64> {
        self.findings.get(labels).map(|gauge| gauge.get())
    }

    pub fn observe_evaluation(&self, controller: &'static str, elapsed: Duration) {
        self.evaluation.get_or_create(&ControllerLabels { controller }).observe(elapsed.as_secs_f64());
    }
}

impl Default for PolicyMetrics {
    /// Unregistered metrics, for tools and tests that read them directly.
    fn default() -> Self {
        Self::register(&mut Registry::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;

    #[test]
    fn reconciles_are_counted_per_controller_and_exposed() {
        let mut registry = Registry::default();
        let metrics = ReconcileMetrics::register(&mut registry);
        metrics.observe("protectedsecret", Duration::from_millis(3), false);
        metrics.observe("protectedsecret", Duration::from_millis(5), true);
        assert_eq!((metrics.reconciles("protectedsecret"), metrics.failures("protectedsecret")), (2, 1));
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        assert!(text.contains("dpo_reconciles_total{controller=\"protectedsecret\"} 2"), "{text}");
        assert!(text.contains("dpo_reconcile_duration_seconds_count{controller=\"protectedsecret\"} 2"));
    }

    #[test]
    fn build_info_carries_the_version() {
        let mut registry = Registry::default();
        register_build_info(&mut registry);
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        let expected = format!("dpo_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"));
        assert!(text.contains(&expected), "{text}");
    }

    #[test]
    fn stale_finding_series_disappear() {
        let mut registry = Registry::default();
        let metrics = PolicyMetrics::register(&mut registry);
        let labels =
            FindingLabels { policy: "ebs".into(), rule: "storageclass-encrypted".into(), severity: "high" };
        metrics.set_findings(&labels, 3);
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        assert!(
            text.contains(
                "dpo_policy_findings{policy=\"ebs\",rule=\"storageclass-encrypted\",severity=\"high\"} 3"
            ),
            "{text}"
        );
        metrics.remove_findings(&labels);
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        assert!(!text.contains("policy=\"ebs\""), "{text}");
        assert_eq!(metrics.findings(&labels), None);
    }
}
