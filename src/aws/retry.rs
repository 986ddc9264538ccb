//! One AWS request: counted per attempt, retried on throttling and transient failures with
//! exponential backoff and full jitter, classified when it finally fails.

use super::error::{AwsError, classify};
use super::metrics::AwsMetrics;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use std::future::Future;
use std::time::Duration;

/// How hard to retry. The SDK's own retries are off so that every attempt is counted and
/// classified here.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Attempts in total, the first included.
    pub max_attempts: u32,
    /// Backoff ceiling of the first retry; doubles per retry.
    pub base_delay: Duration,
    /// Largest backoff ceiling.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { max_attempts: 4, base_delay: Duration::from_millis(200), max_delay: Duration::from_secs(5) }
    }
}

impl RetryPolicy {
    /// Full jitter: a uniform delay in [0, min(max, base * 2^retry)].
    fn backoff(&self, retry: u32) -> Duration {
        let ceiling = self.base_delay.saturating_mul(1 << retry.min(16)).min(self.max_delay);
        ceiling.mul_f64(fastrand::f64())
    }
}

/// An AWS operation, named by its IAM action (`secretsmanager:GetSecretValue`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Operation {
    pub action: &'static str,
    /// What a NotFound from this operation is about (`secret`, `KMS key`).
    pub subject: &'static str,
}

impl Operation {
    pub const fn new(action: &'static str, subject: &'static str) -> Self {
        Self { action, subject }
    }

    fn labels(&self) -> (&'static str, &'static str) {
        self.action.split_once(':').unwrap_or(("unknown", self.action))
    }
}

/// Sends requests for one handle: the accounting and the retry policy.
#[derive(Clone, Debug)]
pub(crate) struct Requester {
    pub metrics: AwsMetrics,
    pub retry: RetryPolicy,
}

impl Requester {
    /// Runs `send` until it succeeds, fails for good, or the retry budget is spent. `id` names
    /// what the request is about, for errors.
    pub async fn send<T, E, F, Fut>(&self, op: Operation, id: &str, mut send: F) -> Result<T, AwsError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, Response>>>,
        E: ProvideErrorMetadata,
    {
        let (service, operation) = op.labels();
        let mut attempt = 1;
        loop {
            let err = match send().await {
                Ok(out) => {
                    self.metrics.record(service, operation, "success");
                    return Ok(out);
                }
                Err(err) => classify(&err),
            };
            self.metrics.record(service, operation, err.class.label());
            if !err.class.is_retryable() || attempt >= self.retry.max_attempts {
                return Err(err.into_error(op.action, id, op.subject, attempt));
            }
            let delay = self.retry.backoff(attempt - 1);
            tracing::debug!(action = op.action, attempt, code = %err.code, ?delay, "retrying AWS request");
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_bounded_by_the_doubling_ceiling() {
        let policy = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
        };
        for _ in 0..200 {
            assert!(policy.backoff(0) <= Duration::from_millis(100));
            assert!(policy.backoff(2) <= Duration::from_millis(400));
            assert!(policy.backoff(30) <= Duration::from_millis(1000));
        }
    }
}
