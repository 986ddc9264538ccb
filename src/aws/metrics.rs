//! Accounting of AWS requests: `dpo_aws_requests_total{service,operation,outcome}`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// Every outcome label a request can get.
pub const OUTCOMES: &[&str] = &["success", "not_found", "access_denied", "throttled", "transient", "invalid"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    service: String,
    operation: String,
    outcome: String,
}

impl RequestLabels {
    fn new(service: &str, operation: &str, outcome: &str) -> Self {
        Self { service: service.into(), operation: operation.into(), outcome: outcome.into() }
    }
}

/// Counts every HTTP attempt to AWS (retries included). Cheap to clone: clones share counters.
#[derive(Clone, Debug, Default)]
pub struct AwsMetrics {
    requests: Family<RequestLabels, Counter>,
    /// Every request of the family, for checks that no request at all was made.
    total: Counter,
}

impl AwsMetrics {
    /// Registers the counter family in `registry`; it is exposed as `dpo_aws_requests_total`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "dpo_aws_requests",
            "AWS API requests (each HTTP attempt, retries included)",
            metrics.requests.clone(),
        );
        metrics
    }

    pub(crate) fn record(&self, service: &str, operation: &str, outcome: &str) {
        self.requests.get_or_create(&RequestLabels::new(service, operation, outcome)).inc();
        self.total.inc();
    }

    /// Requests made to any service, any operation and outcome.
    pub fn total(&self) -> u64 {
        self.total.get()
    }

    /// Requests made to `service` (`secretsmanager`) `operation` (`GetSecretValue`), any outcome.
    pub fn count(&self, service: &str, operation: &str) -> u64 {
        OUTCOMES.iter().map(|outcome| self.count_outcome(service, operation, outcome)).sum()
    }

    /// Requests made to `service` `operation` that ended with `outcome` (`throttled`, ...).
    pub fn count_outcome(&self, service: &str, operation: &str, outcome: &str) -> u64 {
        self.requests.get(&RequestLabels::new(service, operation, outcome)).map_or(0, |c| c.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_operation_and_exposes_the_family() {
        let mut registry = Registry::with_prefix("dpo");
        let metrics = AwsMetrics::register(&mut registry);
        metrics.record("kms", "DescribeKey", "success");
        metrics.record("kms", "DescribeKey", "throttled");
        metrics.record("kms", "GetKeyRotationStatus", "success");
        assert_eq!(metrics.count("kms", "DescribeKey"), 2);
        assert_eq!(metrics.count_outcome("kms", "DescribeKey", "throttled"), 1);
        assert_eq!(metrics.count("acm", "DescribeCertificate"), 0);
        assert_eq!(metrics.total(), 3);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains(
                r#"dpo_aws_requests_total{service="kms",operation="DescribeKey",outcome="throttled"} 1"#
            ),
            "{text}"
        );
    }
}
