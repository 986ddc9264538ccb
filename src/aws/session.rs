//! The [`AwsFacts`] handle: SDK clients per (region, role session), built lazily and dropped
//! when unused, the role allowlist, and the operator's own AWS identity.

use super::cache::{FactCache, Scope};
use super::error::AwsError;
use super::metrics::AwsMetrics;
use super::pool::Pool;
use super::retry::{Operation, Requester, RetryPolicy};
use crate::policy::arn::Arn;
use aws_config::Region;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::{
    self, ProvideCredentials, SharedCredentialsProvider, error::CredentialsError,
};
use aws_sdk_sts::types::Tag;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::OnceCell;

/// The session tag naming the namespace a role session reads for: the key EKS Pod Identity
/// uses, so one IAM condition (`aws:PrincipalTag/kubernetes-namespace`) serves both.
pub const NAMESPACE_TAG: &str = "kubernetes-namespace";

/// How the AWS layer behaves.
#[derive(Clone, Debug)]
pub struct AwsSettings {
    /// Region for references without one; default: the region of the SDK configuration.
    pub default_region: Option<String>,
    /// Roles a reference may ask to assume: exact ARNs or globs where `*` matches anything.
    pub allowed_roles: Vec<String>,
    /// `RoleSessionName` of assumed-role sessions (shows in CloudTrail).
    pub role_session_name: String,
    /// The operator's own account and partition, when given rather than asked of STS.
    pub identity: Option<Identity>,
    /// SDK clients (per region and role session) and role sessions kept at most, each...
    pub max_sessions: usize,
    /// ...until unused this long: an assumed role's credentials last an hour, so a session
    /// unused longer would need new ones anyway.
    pub session_idle: Duration,
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
            identity: None,
            max_sessions: 1024,
            session_idle: Duration::from_secs(3600),
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
    /// Whom the role's session is for. `None`: the operator's own session of the role.
    pub session: Option<RoleSession>,
}

/// A role session for one namespace: tagged with it, so that IAM can tell namespaces apart, and
/// with the external id the role's trust policy may ask for. Two namespaces never share one.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RoleSession {
    pub namespace: String,
    pub external_id: Option<String>,
}

impl Target {
    pub fn region(region: impl Into<String>) -> Self {
        Self { region: Some(region.into()), ..Self::default() }
    }

    /// Where a ProtectedSecret's source secret is read, by the operator's own sessions.
    pub fn of(source: &crate::api::SecretSource) -> Self {
        Self { region: source.region.clone(), role_arn: source.role_arn.clone(), session: None }
    }
}

/// The operator's own AWS account and partition: where a reference that names neither points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub partition: String,
    pub account: String,
}

/// SDK clients for one scope.
#[derive(Debug)]
pub(crate) struct Clients {
    pub secrets: aws_sdk_secretsmanager::Client,
    pub kms: aws_sdk_kms::Client,
    pub acm: aws_sdk_acm::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub eks: aws_sdk_eks::Client,
    pub wafv2: aws_sdk_wafv2::Client,
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
    clients: Pool<Scope, Arc<Clients>>,
    /// One credentials provider per role session, shared by every region so the SDK's identity
    /// cache assumes each role once until its credentials near expiry.
    roles: Pool<(String, Option<RoleSession>), SharedCredentialsProvider>,
    identity: OnceCell<Identity>,
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
            clients: Pool::new(settings.max_sessions, settings.session_idle),
            roles: Pool::new(settings.max_sessions, settings.session_idle),
            identity: OnceCell::new_with(settings.identity.clone()),
            settings,
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
        // Without a role there is no session of a namespace's own: every reference shares one view.
        let session = target.role_arn.as_ref().and(target.session.clone());
        Ok(Scope { region, role_arn: target.role_arn.clone(), session })
    }

    /// The operator's own account and partition: as given in the settings, else asked of STS
    /// (GetCallerIdentity, which needs no permission) once.
    pub async fn identity(&self) -> Result<Identity, AwsError> {
        let inner = &self.inner;
        let identity = inner.identity.get_or_try_init(|| async {
            let sts = aws_sdk_sts::Client::new(&self.sts_config());
            let out = inner
                .requester
                .send(GET_CALLER_IDENTITY, "caller", || sts.get_caller_identity().send())
                .await?;
            let arn = out.arn.unwrap_or_default();
            match (Arn::parse(&arn), out.account) {
                (Some(parsed), Some(account)) => Ok(Identity { partition: parsed.partition.into(), account }),
                _ => Err(AwsError::Invalid {
                    action: GET_CALLER_IDENTITY.action,
                    message: format!("the caller's ARN {arn:?} or account is missing"),
                }),
            }
        });
        identity.await.cloned()
    }

    pub(crate) fn clients(&self, scope: &Scope) -> Arc<Clients> {
        self.inner.clients.get(scope, || Arc::new(self.build_clients(scope)))
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
            config = config.credentials_provider(self.role_credentials(role, &scope.session));
        }
        let config = config.build();
        Clients {
            secrets: aws_sdk_secretsmanager::Client::new(&config),
            kms: aws_sdk_kms::Client::new(&config),
            acm: aws_sdk_acm::Client::new(&config),
            wafv2: aws_sdk_wafv2::Client::new(&config),
            ec2: aws_sdk_ec2::Client::new(&config),
            eks: aws_sdk_eks::Client::new(&config),
        }
    }

    fn role_credentials(&self, role_arn: &str, session: &Option<RoleSession>) -> SharedCredentialsProvider {
        let key = (role_arn.to_string(), session.clone());
        self.inner.roles.get(&key, || {
            SharedCredentialsProvider::new(AssumedRole {
                role_arn: role_arn.to_string(),
                session_name: self.inner.settings.role_session_name.clone(),
                session: session.clone(),
                sts: aws_sdk_sts::Client::new(&self.sts_config()),
                requester: self.inner.requester.clone(),
            })
        })
    }

    /// STS in the controller's region, with the operator's own credentials.
    fn sts_config(&self) -> SdkConfig {
        let region = Region::new(self.inner.default_region.clone());
        self.inner.base.to_builder().region(region).retry_config(RetryConfig::disabled()).build()
    }
}

/// Whether `role_arn` matches an allowlist entry (exact, or a glob where `*` matches any run).
pub fn role_allowed(allowlist: &[String], role_arn: &str) -> bool {
    allowlist.iter().any(|pattern| crate::glob::matches(pattern, role_arn))
}

const ASSUME_ROLE: Operation = Operation::new("sts:AssumeRole", "role");
const GET_CALLER_IDENTITY: Operation = Operation::new("sts:GetCallerIdentity", "caller");

/// Credentials of an assumed role. The SDK's identity cache keeps them until near expiry.
#[derive(Debug)]
struct AssumedRole {
    role_arn: String,
    session_name: String,
    session: Option<RoleSession>,
    sts: aws_sdk_sts::Client,
    requester: Requester,
}

impl AssumedRole {
    async fn assume(&self) -> provider::Result {
        let session = self.session.as_ref();
        let tags = match session {
            Some(session) => {
                let tag = Tag::builder().key(NAMESPACE_TAG).value(&session.namespace).build();
                Some(vec![tag.map_err(CredentialsError::invalid_configuration)?])
            }
            None => None,
        };
        // Transitive: a role chained from this session keeps the tag and cannot drop it.
        let transitive = session.map(|_| vec![NAMESPACE_TAG.to_string()]);
        let external_id = session.and_then(|session| session.external_id.clone());
        let out = self
            .requester
            .send(ASSUME_ROLE, &self.role_arn, || {
                self.sts
                    .assume_role()
                    .role_arn(&self.role_arn)
                    .role_session_name(&self.session_name)
                    .set_tags(tags.clone())
                    .set_transitive_tag_keys(transitive.clone())
                    .set_external_id(external_id.clone())
                    .send()
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

    const ROLE: &str = "arn:aws:iam::111111111111:role/dpo-reader";

    /// A handle that never reaches AWS: these tests build clients, they send nothing.
    async fn offline(max_sessions: usize) -> AwsFacts {
        let base = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
            .load()
            .await;
        let settings =
            AwsSettings { allowed_roles: vec![ROLE.into()], max_sessions, ..AwsSettings::default() };
        AwsFacts::new(base, settings, AwsMetrics::default()).unwrap()
    }

    fn for_namespace(namespace: &str) -> Target {
        let session = RoleSession { namespace: namespace.into(), external_id: None };
        Target { region: None, role_arn: Some(ROLE.into()), session: Some(session) }
    }

    #[tokio::test]
    async fn namespaces_never_share_a_role_session_and_the_operator_shares_its_own() {
        let facts = offline(16).await;
        let scope = |target: &Target| facts.scope(target).unwrap();
        let (shop, payments) = (scope(&for_namespace("shop")), scope(&for_namespace("payments")));
        assert_ne!(shop, payments, "the fact cache keeps them apart");
        assert!(!Arc::ptr_eq(&facts.clients(&shop), &facts.clients(&payments)));
        assert!(Arc::ptr_eq(&facts.clients(&shop), &facts.clients(&scope(&for_namespace("shop")))));
        // Without a role, a namespace has no session of its own.
        let own = Target { region: None, role_arn: None, ..for_namespace("shop") };
        assert_eq!(scope(&own), scope(&Target::default()));
    }

    #[tokio::test]
    async fn clients_and_role_sessions_are_bounded() {
        let facts = offline(2).await;
        for namespace in ["a", "b", "c", "d"] {
            let scope = facts.scope(&for_namespace(namespace)).unwrap();
            facts.clients(&scope);
        }
        assert_eq!((facts.inner.clients.len(), facts.inner.roles.len()), (2, 2));
    }
}
