//! The Prometheus registry and the metrics every controller shares. Controller-specific
//! families live beside them here, so `/metrics` is one registry with one naming scheme.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
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
