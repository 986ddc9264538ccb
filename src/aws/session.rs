//! The [`AwsFacts`] handle: SDK clients per (region, role), built lazily, and the role allowlist.

use super::cache::{FactCache, Scope};
use super::error::AwsError;
use super::metrics::AwsMetrics;
use super::retry::{Operation, Requester, RetryPolicy};
use aws_config::Region;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::{
    self, ProvideCredentials, SharedCredentialsProvider, error::CredentialsError,
};
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// How the AWS layer behaves.
#[derive(Clone, Debug)]
pub struct AwsSettings {
    /// Region for references without one; default: the region of the SDK configuration.
    pub default_region: Option<String>,
    /// Roles a reference may ask to assume: exact ARNs or globs where `*` matches anything.
    pub allowed_roles: Vec<String>,
    /// `RoleSessionName` of assumed-role sessions (shows in CloudTrail).
    pub role_session_name: String,
    pub cache: super::CacheSettings,
    pub retry: RetryPolicy,
    /// Time allowed for one HTTP attempt.
    pub attempt_timeout: Duration,
    /// From this many uncached secret names in one region on, metadata is read with ListSecrets
    /// pages rather than one DescribeSecret each.
    pub list_secrets_from: usize,
}

impl Default for AwsSettings {
    fn default() -> Self {
        Self {
            default_region: None,
            allowed_roles: Vec::new(),
            role_session_name: "dpo".into(),
            cache: Default::default(),
            retry: RetryPolicy::default(),
            attempt_timeout: Duration::from_secs(10),
            list_secrets_from: 3,
        }
    }
}

/// Where a reference points: a region (default: the controller's) and a role to assume.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Target {
    pub region: Option<String>,
    pub role_arn: Option<String>,
}

impl Target {
    pub fn region(region: impl Into<String>) -> Self {
        Self { region: Some(region.into()), role_arn: None }
    }

    /// Where a ProtectedSecret's source secret is read.
    pub fn of(source: &crate::api::SecretSource) -> Self {
        Self { region: source.region.clone(), role_arn: source.role_arn.clone() }
    }
}

/// SDK clients for one scope.
#[derive(Debug)]
pub(crate) struct Clients {
    pub secrets: aws_sdk_secretsmanager::Client,
    pub kms: aws_sdk_kms::Client,
    pub acm: aws_sdk_acm::Client,
    pub ec2: aws_sdk_ec2::Client,
}

/// The AWS facts layer. Cheap to clone: clones share clients, cache and counters.
#[derive(Clone)]
pub struct AwsFacts {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    base: SdkConfig,
    default_region: String,
    pub settings: AwsSettings,
    pub cache: FactCache,
    pub requester: Requester,
    clients: Mutex<HashMap<Scope, Arc<Clients>>>,
    /// One credentials provider per role, shared by every region so the SDK's identity cache
    /// assumes each role once until its credentials near expiry.
    roles: Mutex<HashMap<String, SharedCredentialsProvider>>,
}

impl std::fmt::Debug for AwsFacts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsFacts").field("default_region", &self.inner.default_region).finish_non_exhaustive()
    }
}

impl AwsFacts {
    /// Loads the SDK configuration the standard way (environment, profile, web identity, IMDS;
    /// `AWS_ENDPOINT_URL` included) and registers the request counters in `registry`.
    pub async fn from_env(settings: AwsSettings, registry: &mut Registry) -> Result<Self, AwsError> {
        let base = aws_config::defaults(BehaviorVersion::latest()).load().await;
        Self::new(base, settings, AwsMetrics::register(registry))
    }

    /// A handle over an SDK configuration built by the caller.
    pub fn new(base: SdkConfig, settings: AwsSettings, metrics: AwsMetrics) -> Result<Self, AwsError> {
        let default_region =
            settings.default_region.clone().or_else(|| base.region().map(|r| r.to_string())).ok_or_else(
                || AwsError::Invalid {
                    action: "configuration",
                    message: "no AWS region: set AWS_REGION or the controller's default region".into(),
                },
            )?;
        let inner = Inner {
            base,
            default_region,
            cache: FactCache::new(settings.cache.clone()),
            requester: Requester { metrics, retry: settings.retry.clone() },
            settings,
            clients: Mutex::default(),
            roles: Mutex::default(),
        };
        Ok(Self { inner: Arc::new(inner) })
    }

    pub fn metrics(&self) -> &AwsMetrics {
        &self.inner.requester.metrics
    }

    pub fn cache(&self) -> &FactCache {
        &self.inner.cache
    }

    pub fn default_region(&self) -> &str {
        &self.inner.default_region
    }

    /// Resolves a target, refusing (without any AWS call) a role outside the allowlist.
    pub fn scope(&self, target: &Target) -> Result<Scope, AwsError> {
        if let Some(role) = &target.role_arn
            && !role_allowed(&self.inner.settings.allowed_roles, role)
        {
            return Err(AwsError::RoleNotAllowed { role_arn: role.clone() });
        }
        let region = target.region.clone().unwrap_or_else(|| self.inner.default_region.clone());
        Ok(Scope { region, role_arn: target.role_arn.clone() })
    }

    pub(crate) fn clients(&self, scope: &Scope) -> Arc<Clients> {
        let mut clients = lock(&self.inner.clients);
        clients.entry(scope.clone()).or_insert_with(|| Arc::new(self.build_clients(scope))).clone()
    }

    fn build_clients(&self, scope: &Scope) -> Clients {
        let inner = &self.inner;
        let mut config = inner
            .base
            .to_builder()
            .region(Region::new(scope.region.clone()))
            // Retries happen in our layer so that every attempt is counted and classified.
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .operation_attempt_timeout(inner.settings.attempt_timeout)
                    .build(),
            );
        if let Some(role) = &scope.role_arn {
            config = config.credentials_provider(self.role_credentials(role));
        }
        let config = config.build();
        Clients {
            secrets: aws_sdk_secretsmanager::Client::new(&config),
            kms: aws_sdk_kms::Client::new(&config),
            acm: aws_sdk_acm::Client::new(&config),
            ec2: aws_sdk_ec2::Client::new(&config),
        }
    }

    fn role_credentials(&self, role_arn: &str) -> SharedCredentialsProvider {
        let mut roles = lock(&self.inner.roles);
        roles
            .entry(role_arn.to_string())
            .or_insert_with(|| {
                let sts_config = self
                    .inner
                    .base
                    .to_builder()
                    .region(Region::new(self.inner.default_region.clone()))
                    .retry_config(RetryConfig::disabled())
                    .build();
                SharedCredentialsProvider::new(AssumedRole {
                    role_arn: role_arn.to_string(),
                    session_name: self.inner.settings.role_session_name.clone(),
                    sts: aws_sdk_sts::Client::new(&sts_config),
                    requester: self.inner.requester.clone(),
                })
            })
            .clone()
    }
}

/// Whether `role_arn` matches an allowlist entry (exact, or a glob where `*` matches any run).
pub fn role_allowed(allowlist: &[String], role_arn: &str) -> bool {
    allowlist.iter().any(|pattern| crate::glob::matches(pattern, role_arn))
}

const ASSUME_ROLE: Operation = Operation::new("sts:AssumeRole", "role");

/// Credentials of an assumed role. The SDK's identity cache keeps them until near expiry.
#[derive(Debug)]
struct AssumedRole {
    role_arn: String,
    session_name: String,
    sts: aws_sdk_sts::Client,
    requester: Requester,
}

impl AssumedRole {
    async fn assume(&self) -> provider::Result {
        let out = self
            .requester
            .send(ASSUME_ROLE, &self.role_arn, || {
                self.sts.assume_role().role_arn(&self.role_arn).role_session_name(&self.session_name).send()
            })
            .await
            .map_err(CredentialsError::provider_error)?;
        let creds = out
            .credentials
            .ok_or_else(|| CredentialsError::unhandled("AssumeRole returned no credentials"))?;
        let expiry = SystemTime::try_from(creds.expiration).ok();
        Ok(Credentials::new(
            creds.access_key_id,
            creds.secret_access_key,
            Some(creds.session_token),
            expiry,
            "dpo-assume-role",
        ))
    }
}

impl ProvideCredentials for AssumedRole {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        provider::future::ProvideCredentials::new(self.assume())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_allowlist_matches_exact_and_globs() {
        let allow = vec![
            "arn:aws:iam::111111111111:role/exact".to_string(),
            "arn:aws:iam::222222222222:role/dpo-*".to_string(),
        ];
        assert!(role_allowed(&allow, "arn:aws:iam::111111111111:role/exact"));
        assert!(!role_allowed(&allow, "arn:aws:iam::111111111111:role/exact2"));
        assert!(role_allowed(&allow, "arn:aws:iam::222222222222:role/dpo-reader"));
        assert!(!role_allowed(&allow, "arn:aws:iam::333333333333:role/dpo-reader"));
        assert!(!role_allowed(&[], "arn:aws:iam::111111111111:role/exact"));
    }
}
