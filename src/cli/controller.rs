//! `dpo controller`: flags (each also read from an environment variable), their validation into
//! a [`RuntimeConfig`], and the process around [`runtime::run`].

use crate::api::parse_duration;
use crate::aws::{AwsSettings, CacheSettings, Identity};
use crate::controller::ControllerConfig;
use crate::controller::access::AccessRules;
use crate::controller::leader::LeaseSettings;
use crate::controller::runtime::{self, ControllerKind, RuntimeConfig};
use crate::policy::arn::{is_account_id, is_aws_partition};
use crate::policy::ingress::{AlbDefaults, DEFAULT_INGRESS_CLASS, DEFAULT_SSL_POLICY};
use crate::policy::secret::{SERVICE_ACCOUNT_TOKEN_TYPE, SYNCABLE_SECRET_TYPES};
use crate::telemetry::{self, LogFormat};
use clap::{ArgAction, Args};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct ControllerArgs {
    /// Controllers to run, comma-separated.
    #[arg(long, env = "DPO_CONTROLLERS", value_enum, value_delimiter = ',', default_values_t = ControllerKind::ALL)]
    pub controllers: Vec<ControllerKind>,
    /// Reconciles in flight at once, per controller.
    #[arg(long, env = "DPO_CONCURRENCY", default_value_t = crate::controller::DEFAULT_CONCURRENCY)]
    pub concurrency: u16,
    /// AWS region for references without one (default: the SDK's, from AWS_REGION or the profile).
    #[arg(long, env = "DPO_REGION")]
    pub region: Option<String>,
    /// Endpoint for every AWS service (a VPC endpoint, a local stand-in).
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    pub aws_endpoint_url: Option<String>,
    /// YAML rules of which secret ids each namespace may read (default: ids under `<namespace>/`).
    #[arg(long, env = "DPO_SECRET_ACCESS_FILE", value_name = "FILE")]
    pub secret_access_file: Option<PathBuf>,
    /// Namespaces whose ProtectedSecrets are synced, comma-separated (default: every namespace).
    /// ProtectedSecrets elsewhere are not watched at all: no status, no Secret. The operator
    /// needs access to ProtectedSecrets and Secrets only in these (Helm: rbac.secrets.namespaces).
    #[arg(long, env = "DPO_SECRET_NAMESPACES", value_delimiter = ',', value_name = "NAMESPACE")]
    pub secret_namespaces: Vec<String>,
    /// The operator's own AWS account id, which access rules allow by default (default: asked
    /// of STS at start, with GetCallerIdentity).
    #[arg(long, env = "DPO_AWS_ACCOUNT_ID", value_name = "ID")]
    pub aws_account_id: Option<String>,
    /// The partition of --aws-account-id (aws, aws-cn, aws-us-gov, ...).
    #[arg(long, env = "DPO_AWS_PARTITION", default_value = "aws", value_name = "PARTITION")]
    pub aws_partition: String,
    /// Role a reference may ask to assume: an ARN, `*` matching any run; repeat or comma-separate.
    #[arg(long = "allowed-role", env = "DPO_ALLOWED_ROLES", value_delimiter = ',', value_name = "ARN")]
    pub allowed_roles: Vec<String>,
    /// Secret types ProtectedSecrets may write; repeat or comma-separate. Never
    /// kubernetes.io/service-account-token.
    #[arg(
        long = "allowed-secret-types",
        env = "DPO_ALLOWED_SECRET_TYPES",
        value_delimiter = ',',
        value_name = "TYPE",
        default_values_t = SYNCABLE_SECRET_TYPES.map(String::from)
    )]
    pub allowed_secret_types: Vec<String>,
    /// Bytes of secret values kept in memory at most, with an optional unit Ki, Mi or Gi: the
    /// least recently used values are dropped beyond it and read from AWS again when needed.
    #[arg(long, env = "DPO_VALUE_CACHE_BYTES", default_value = "32Mi", value_name = "BYTES")]
    pub value_cache_bytes: String,
    /// Refresh interval of ProtectedSecrets that set none.
    #[arg(long, env = "DPO_DEFAULT_REFRESH", default_value = "1h")]
    pub default_refresh: String,
    /// Period of the full re-evaluation of cluster policies (AWS facts change on their own).
    #[arg(long, env = "DPO_REEVALUATION_PERIOD", default_value = "10m")]
    pub reevaluation_period: String,
    /// Address of /metrics.
    #[arg(long, env = "DPO_METRICS_ADDRESS", default_value = "0.0.0.0:8080")]
    pub metrics_address: String,
    /// Address of /healthz and /readyz (may equal --metrics-address).
    #[arg(long, env = "DPO_HEALTH_ADDRESS", default_value = "0.0.0.0:8081")]
    pub health_address: String,
    #[arg(long, env = "DPO_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
    /// Run the controllers only while holding the Lease (needed with more than one replica).
    #[arg(long, env = "DPO_LEADER_ELECTION", default_value_t = true, action = ArgAction::Set, value_name = "BOOL")]
    pub leader_election: bool,
    #[arg(long, env = "DPO_LEASE_NAME", default_value = "dpo-leader")]
    pub lease_name: String,
    /// Namespace of the Lease (the pod's own, from the downward API).
    #[arg(long, env = "POD_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// How long a lease lasts without renewal: how soon another replica takes over.
    #[arg(long, env = "DPO_LEASE_DURATION", default_value = "15s")]
    pub lease_duration: String,
    /// A leader that has not renewed for this long stops its controllers (and exits 1); shorter
    /// than --lease-duration (default: two thirds of it).
    #[arg(long, env = "DPO_RENEW_DEADLINE")]
    pub renew_deadline: Option<String>,
    /// Time between renewals and between attempts to acquire; shorter than --renew-deadline
    /// (default: a fifth of it).
    #[arg(long, env = "DPO_RETRY_PERIOD")]
    pub retry_period: Option<String>,
    /// This replica's name in the Lease (default: the pod name, else a random one).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// The `--default-ssl-policy` of the cluster's AWS Load Balancer Controller: the security
    /// policy TlsIngressPolicies judge listeners that set none by.
    #[arg(long, env = "DPO_ALB_DEFAULT_SSL_POLICY", default_value = DEFAULT_SSL_POLICY, value_name = "POLICY")]
    pub alb_default_ssl_policy: String,
    /// The EKS cluster the operator runs in: ProtectedSecrets note in their status when it does
    /// not envelope-encrypt Secrets with a KMS key (eks:DescribeCluster, once a
    /// --reevaluation-period).
    #[arg(long, env = "DPO_CLUSTER_NAME", value_name = "NAME")]
    pub cluster_name: Option<String>,
    /// The `--ingress-class` of the cluster's AWS Load Balancer Controller: the class it claims.
    #[arg(long, env = "DPO_ALB_INGRESS_CLASS", default_value = DEFAULT_INGRESS_CLASS, value_name = "CLASS")]
    pub alb_ingress_class: String,
}

/// A flag with a value that cannot work, and why.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {flag}: {message}")]
pub struct ConfigError {
    pub flag: &'static str,
    pub message: String,
}

fn invalid(flag: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError { flag, message: message.into() }
}

/// Refresh and re-evaluation faster than this would mostly spend AWS API quota.
const MIN_PERIOD: Duration = Duration::from_secs(10);
const MIN_LEASE: Duration = Duration::from_secs(3);
/// Lease requests more often than this would load the apiserver for nothing.
const MIN_RETRY: Duration = Duration::from_millis(100);
/// The largest value Secrets Manager stores: a smaller value cache could not keep it.
const MIN_VALUE_CACHE: usize = 64 * 1024;

impl ControllerArgs {
    /// Checks every flag and builds the runtime configuration.
    pub fn validate(&self) -> Result<RuntimeConfig, ConfigError> {
        if self.controllers.is_empty() {
            return Err(invalid("--controllers", "enable at least one controller"));
        }
        // Each controller once, in the order first named.
        let mut controllers = Vec::new();
        for controller in &self.controllers {
            if !controllers.contains(controller) {
                controllers.push(*controller);
            }
        }
        if self.concurrency == 0 {
            return Err(invalid("--concurrency", "must be at least 1"));
        }
        if let Some(region) = &self.region
            && (region.is_empty()
                || !region.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
        {
            return Err(invalid("--region", format!("{region:?} is not an AWS region such as eu-west-1")));
        }
        if let Some(url) = &self.aws_endpoint_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(invalid("--aws-endpoint-url", format!("{url:?} is not an http:// or https:// URL")));
        }
        if let Some(role) = self.allowed_roles.iter().find(|role| !role.starts_with("arn:")) {
            return Err(invalid(
                "--allowed-role",
                format!("{role:?} is not a role ARN (arn:aws:iam::<account>:role/<name>)"),
            ));
        }
        let identity = self.identity()?;
        let secret_access = match &self.secret_access_file {
            Some(path) => {
                AccessRules::load(path).map_err(|e| invalid("--secret-access-file", e.to_string()))?
            }
            None => AccessRules::default(),
        };
        let controller = ControllerConfig {
            default_refresh: period("--default-refresh", &self.default_refresh, MIN_PERIOD)?,
            reevaluation_period: period("--reevaluation-period", &self.reevaluation_period, MIN_PERIOD)?,
            concurrency: self.concurrency,
            secret_access,
            secret_namespaces: self.secret_namespaces()?,
            allowed_secret_types: self.allowed_secret_types()?,
            alb_defaults: AlbDefaults {
                ssl_policy: AlbDefaults::parse_ssl_policy(&self.alb_default_ssl_policy)
                    .map_err(|e| invalid("--alb-default-ssl-policy", e))?,
                ingress_class: AlbDefaults::parse_ingress_class(&self.alb_ingress_class)
                    .map_err(|e| invalid("--alb-ingress-class", e))?,
                eks_auto_mode: false,
                // The controllers watch the whole cluster.
                inventory_complete: true,
            },
            cluster_name: self.cluster_name.clone().filter(|name| !name.is_empty()),
            ..ControllerConfig::default()
        };
        let aws = AwsSettings {
            default_region: self.region.clone(),
            allowed_roles: self.allowed_roles.clone(),
            identity,
            cache: CacheSettings {
                value_bytes: bytes("--value-cache-bytes", &self.value_cache_bytes, MIN_VALUE_CACHE)?,
                ..CacheSettings::default()
            },
            ..AwsSettings::default()
        };
        Ok(RuntimeConfig {
            controllers,
            controller,
            aws,
            aws_endpoint_url: self.aws_endpoint_url.clone(),
            metrics_address: address("--metrics-address", &self.metrics_address)?,
            health_address: address("--health-address", &self.health_address)?,
            leader_election: self.lease_settings()?,
        })
    }

    /// The operator's own account and partition, when given.
    fn identity(&self) -> Result<Option<Identity>, ConfigError> {
        let partition = &self.aws_partition;
        if !is_aws_partition(partition) {
            return Err(invalid(
                "--aws-partition",
                format!("{partition:?} is not a partition such as aws or aws-cn"),
            ));
        }
        let Some(account) = &self.aws_account_id else { return Ok(None) };
        if !is_account_id(account) {
            return Err(invalid("--aws-account-id", format!("{account:?} is not a 12-digit account id")));
        }
        Ok(Some(Identity { partition: partition.clone(), account: account.clone() }))
    }

    /// The namespaces of `--secret-namespaces`, each once, in the order given.
    fn secret_namespaces(&self) -> Result<Vec<String>, ConfigError> {
        let mut namespaces: Vec<String> = Vec::new();
        // An empty value (`DPO_SECRET_NAMESPACES=`) asks for the default, as an unset one does.
        if self.secret_namespaces == [""] {
            return Ok(namespaces);
        }
        for namespace in &self.secret_namespaces {
            if !is_namespace_name(namespace) {
                return Err(invalid(
                    "--secret-namespaces",
                    format!(
                        "{namespace:?} is not a namespace name (lowercase letters, digits and '-', at most 63): \
                         list names separated by single commas, such as shop,payments"
                    ),
                ));
            }
            if !namespaces.contains(namespace) {
                namespaces.push(namespace.clone());
            }
        }
        Ok(namespaces)
    }

    /// The types of `--allowed-secret-types`, refusing the one that would mint tokens.
    fn allowed_secret_types(&self) -> Result<Vec<String>, ConfigError> {
        let types: Vec<String> = self
            .allowed_secret_types
            .iter()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect();
        if types.iter().any(|t| t == SERVICE_ACCOUNT_TOKEN_TYPE) {
            return Err(invalid(
                "--allowed-secret-types",
                format!(
                    "{SERVICE_ACCOUNT_TOKEN_TYPE} would let any ProtectedSecret author mint a token of any \
                     ServiceAccount in their namespace: remove it"
                ),
            ));
        }
        if types.is_empty() {
            return Err(invalid("--allowed-secret-types", "is empty: list at least Opaque"));
        }
        Ok(types)
    }

    fn lease_settings(&self) -> Result<Option<LeaseSettings>, ConfigError> {
        if !self.leader_election {
            return Ok(None);
        }
        if !is_dns_subdomain(&self.lease_name) {
            return Err(invalid("--lease-name", format!("{:?} is not a valid object name", self.lease_name)));
        }
        let namespace = self.lease_namespace.clone().ok_or_else(|| {
            invalid("--lease-namespace", "required with leader election (or set POD_NAMESPACE)")
        })?;
        if !is_namespace_name(&namespace) {
            return Err(invalid("--lease-namespace", format!("{namespace:?} is not a namespace name")));
        }
        let duration = period("--lease-duration", &self.lease_duration, MIN_LEASE)?;
        if duration.subsec_nanos() != 0 {
            return Err(invalid("--lease-duration", "must be whole seconds (the Lease stores seconds)"));
        }
        let renew_deadline = match &self.renew_deadline {
            Some(value) => period("--renew-deadline", value, MIN_RETRY)?,
            None => LeaseSettings::default_renew_deadline(duration),
        };
        // A leader must have stopped before its lease can expire on another replica's clock.
        if renew_deadline >= duration {
            return Err(invalid(
                "--renew-deadline",
                format!("{renew_deadline:?} must be shorter than --lease-duration ({duration:?})"),
            ));
        }
        let retry_period = match &self.retry_period {
            Some(value) => period("--retry-period", value, MIN_RETRY)?,
            None => LeaseSettings::default_retry_period(renew_deadline),
        };
        if retry_period >= renew_deadline {
            return Err(invalid(
                "--retry-period",
                format!("{retry_period:?} must be shorter than --renew-deadline ({renew_deadline:?})"),
            ));
        }
        let identity = match &self.identity {
            Some(identity) if identity.is_empty() => return Err(invalid("--identity", "must not be empty")),
            Some(identity) => identity.clone(),
            None => format!("dpo-{:016x}", fastrand::u64(..)),
        };
        Ok(Some(LeaseSettings {
            name: self.lease_name.clone(),
            namespace,
            identity,
            duration,
            renew_deadline,
            retry_period,
        }))
    }
}

fn period(flag: &'static str, value: &str, min: Duration) -> Result<Duration, ConfigError> {
    let duration = parse_duration(value).map_err(|e| invalid(flag, e.to_string()))?;
    if duration < min {
        return Err(invalid(flag, format!("{value} is shorter than the minimum {min:?}")));
    }
    Ok(duration)
}

/// A size in bytes: digits, then optionally `Ki`, `Mi` or `Gi` (Kubernetes' binary units).
fn bytes(flag: &'static str, value: &str, min: usize) -> Result<usize, ConfigError> {
    let not_a_size = || invalid(flag, format!("{value:?} is not a size such as 32Mi or 33554432"));
    let digits = value.find(|c: char| !c.is_ascii_digit()).unwrap_or(value.len());
    let (number, unit) = value.split_at(digits);
    let unit: usize = match unit {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        _ => return Err(not_a_size()),
    };
    let size = number.parse::<usize>().ok().and_then(|n| n.checked_mul(unit)).ok_or_else(not_a_size)?;
    if size < min {
        return Err(invalid(flag, format!("{value} is smaller than {}Ki", min / 1024)));
    }
    Ok(size)
}

fn address(flag: &'static str, value: &str) -> Result<SocketAddr, ConfigError> {
    value.parse().map_err(|_| invalid(flag, format!("{value:?} is not an address such as 0.0.0.0:8080")))
}

fn is_dns_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// A namespace name is a DNS label: a subdomain without dots, at most 63 characters.
fn is_namespace_name(name: &str) -> bool {
    name.len() <= 63 && !name.contains('.') && is_dns_subdomain(name)
}

/// Exit code of `dpo controller` when a flag is invalid (as `dpo check` on bad usage).
pub const EXIT_BAD_CONFIG: u8 = 2;

/// Runs `dpo controller`: exit 0 after a requested shutdown, 1 on failure (a lost lease
/// included, so the pod restarts and campaigns again), 2 on invalid flags.
pub fn run_controller(args: &ControllerArgs) -> ExitCode {
    telemetry::init(args.log_format);
    let config = match args.validate() {
        Ok(config) => config,
        Err(error) => {
            tracing::error!(flag = error.flag, "{error}");
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(runtime::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "dpo controller stopped");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests;
