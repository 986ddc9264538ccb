//! `dpo controller`: flags (each also read from an environment variable), their validation into
//! a [`RuntimeConfig`], and the process around [`runtime::run`].

use crate::api::parse_duration;
use crate::aws::AwsSettings;
use crate::controller::ControllerConfig;
use crate::controller::access::AccessRules;
use crate::controller::leader::LeaseSettings;
use crate::controller::runtime::{self, ControllerKind, RuntimeConfig};
use crate::policy::ingress::{AlbDefaults, DEFAULT_INGRESS_CLASS, DEFAULT_SSL_POLICY};
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
    #[arg(long, env = "DPO_CONCURRENCY", default_value_t = 4)]
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
    /// Role a reference may ask to assume: an ARN, `*` matching any run; repeat or comma-separate.
    #[arg(long = "allowed-role", env = "DPO_ALLOWED_ROLES", value_delimiter = ',', value_name = "ARN")]
    pub allowed_roles: Vec<String>,
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
    /// This replica's name in the Lease (default: the pod name, else a random one).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// The `--default-ssl-policy` of the cluster's AWS Load Balancer Controller: the security
    /// policy TlsIngressPolicies judge listeners that set none by.
    #[arg(long, env = "DPO_ALB_DEFAULT_SSL_POLICY", default_value = DEFAULT_SSL_POLICY, value_name = "POLICY")]
    pub alb_default_ssl_policy: String,
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
            alb_defaults: AlbDefaults {
                ssl_policy: AlbDefaults::parse_ssl_policy(&self.alb_default_ssl_policy)
                    .map_err(|e| invalid("--alb-default-ssl-policy", e))?,
                ingress_class: AlbDefaults::parse_ingress_class(&self.alb_ingress_class)
                    .map_err(|e| invalid("--alb-ingress-class", e))?,
            },
            ..ControllerConfig::default()
        };
        let aws = AwsSettings {
            default_region: self.region.clone(),
            allowed_roles: self.allowed_roles.clone(),
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
        let identity = match &self.identity {
            Some(identity) if identity.is_empty() => return Err(invalid("--identity", "must not be empty")),
            Some(identity) => identity.clone(),
            None => format!("dpo-{:016x}", fastrand::u64(..)),
        };
        Ok(Some(LeaseSettings { name: self.lease_name.clone(), namespace, identity, duration }))
    }
}

fn period(flag: &'static str, value: &str, min: Duration) -> Result<Duration, ConfigError> {
    let duration = parse_duration(value).map_err(|e| invalid(flag, e.to_string()))?;
    if duration < min {
        return Err(invalid(flag, format!("{value} is shorter than the minimum {}s", min.as_secs())));
    }
    Ok(duration)
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
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn parse(flags: &[&str]) -> Result<RuntimeConfig, ConfigError> {
        let argv = ["dpo", "controller", "--lease-namespace", "dpo-system"].iter().chain(flags);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Controller(args) => args.validate(),
            other => panic!("parsed as {other:?}"),
        }
    }

    fn rejected(flags: &[&str]) -> ConfigError {
        parse(flags).expect_err("accepted")
    }

    #[test]
    fn defaults_run_every_controller_under_leader_election() {
        let config = parse(&["--identity", "pod-a"]).unwrap();
        assert_eq!(config.controllers, ControllerKind::ALL);
        assert_eq!(config.controller.default_refresh, Duration::from_secs(3600));
        assert_eq!(config.controller.reevaluation_period, Duration::from_secs(600));
        assert_eq!(config.metrics_address, "0.0.0.0:8080".parse().unwrap());
        let lease = config.leader_election.unwrap();
        assert_eq!(
            (lease.name.as_str(), lease.namespace.as_str(), lease.identity.as_str()),
            ("dpo-leader", "dpo-system", "pod-a")
        );
        assert_eq!(lease.duration, Duration::from_secs(15));
        assert!(config.controller.secret_access.allowed("shop", "shop/db"));
    }

    #[test]
    fn a_controller_named_twice_runs_once() {
        let config =
            parse(&["--controllers", "protected-secrets,tls-ingress-policies,protected-secrets"]).unwrap();
        assert_eq!(
            config.controllers,
            [ControllerKind::ProtectedSecrets, ControllerKind::TlsIngressPolicies]
        );
    }

    #[test]
    fn flags_set_what_they_name() {
        let config = parse(&[
            "--controllers",
            "protected-secrets,tls-ingress-policies",
            "--concurrency=8",
            "--region=eu-west-1",
            "--allowed-role=arn:aws:iam::111111111111:role/dpo-*",
            "--default-refresh=30m",
            "--leader-election=false",
            "--health-address=127.0.0.1:9000",
        ])
        .unwrap();
        assert_eq!(
            config.controllers,
            [ControllerKind::ProtectedSecrets, ControllerKind::TlsIngressPolicies]
        );
        assert_eq!(config.controller.concurrency, 8);
        assert_eq!(config.aws.default_region.as_deref(), Some("eu-west-1"));
        assert_eq!(config.aws.allowed_roles, ["arn:aws:iam::111111111111:role/dpo-*"]);
        assert_eq!(config.controller.default_refresh, Duration::from_secs(1800));
        assert_eq!(config.leader_election, None);
        assert_eq!(config.health_address, "127.0.0.1:9000".parse().unwrap());
    }

    #[test]
    fn the_load_balancer_controllers_own_defaults_are_flags() {
        // Unset, they are the AWS Load Balancer Controller's: --default-ssl-policy
        // ELBSecurityPolicy-2016-08 and --ingress-class alb.
        assert_eq!(parse(&[]).unwrap().controller.alb_defaults, AlbDefaults::default());
        assert_eq!(AlbDefaults::default().ssl_policy, "ELBSecurityPolicy-2016-08");
        assert_eq!(AlbDefaults::default().ingress_class, "alb");
        let config = parse(&[
            "--alb-default-ssl-policy=ELBSecurityPolicy-TLS13-1-2-2021-06",
            "--alb-ingress-class=internal-alb",
        ])
        .unwrap();
        assert_eq!(
            config.controller.alb_defaults,
            AlbDefaults {
                ssl_policy: "ELBSecurityPolicy-TLS13-1-2-2021-06".into(),
                ingress_class: "internal-alb".into(),
            }
        );
        for (flag, bad) in [("--alb-default-ssl-policy", ""), ("--alb-ingress-class", "Internal ALB")] {
            let error = rejected(&[&format!("{flag}={bad}")]);
            assert_eq!(error.flag, flag, "{error}");
        }
    }

    #[test]
    fn invalid_values_name_their_flag() {
        let cases: [(&[&str], &str); 10] = [
            (&["--concurrency=0"], "--concurrency"),
            (&["--region=EU West"], "--region"),
            (&["--aws-endpoint-url=localhost:5000"], "--aws-endpoint-url"),
            (&["--allowed-role=dpo-reader"], "--allowed-role"),
            (&["--default-refresh=1s"], "--default-refresh"),
            (&["--reevaluation-period=soon"], "--reevaluation-period"),
            (&["--metrics-address=:8080"], "--metrics-address"),
            (&["--lease-duration=1500ms"], "--lease-duration"),
            (&["--lease-name=Leader"], "--lease-name"),
            (&["--secret-access-file=/nonexistent/rules.yaml"], "--secret-access-file"),
        ];
        for (flags, flag) in cases {
            let error = rejected(flags);
            assert_eq!(error.flag, flag, "{flags:?}: {error}");
            assert!(error.to_string().starts_with(&format!("invalid {flag}: ")), "{error}");
        }
    }

    #[test]
    fn secret_namespaces_default_to_every_namespace_and_are_listed_once() {
        assert!(parse(&[]).unwrap().controller.secret_namespaces.is_empty());
        assert!(parse(&["--secret-namespaces="]).unwrap().controller.secret_namespaces.is_empty());
        let config = parse(&["--secret-namespaces", "shop,payments", "--secret-namespaces=shop"]).unwrap();
        assert_eq!(config.controller.secret_namespaces, ["shop", "payments"]);
    }

    #[test]
    fn a_secret_namespace_that_is_no_namespace_name_is_refused() {
        let too_long = "a".repeat(64);
        for bad in ["Shop", "shop,,payments", "shop, payments", "team.shop", "-shop", too_long.as_str()] {
            let error = rejected(&[&format!("--secret-namespaces={bad}")]);
            assert_eq!(error.flag, "--secret-namespaces", "{bad}: {error}");
            assert!(error.message.contains("is not a namespace name"), "{error}");
            assert!(error.message.contains("such as shop,payments"), "the fix is named: {error}");
        }
        assert!(parse(&["--secret-namespaces", &"a".repeat(63)]).is_ok());
    }

    #[test]
    fn the_secret_access_file_is_validated_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.yaml");
        std::fs::write(&path, "- namespaces: [payments]\n  secretIdPrefixes: [shared/]\n").unwrap();
        let config = parse(&["--secret-access-file", path.to_str().unwrap()]).unwrap();
        assert!(config.controller.secret_access.allowed("payments", "shared/key"));
        assert!(!config.controller.secret_access.allowed("payments", "payments/key"));
        std::fs::write(&path, "- namespaces: [payments]\n  secretIdPrefixes: []\n").unwrap();
        let error = rejected(&["--secret-access-file", path.to_str().unwrap()]);
        assert!(error.message.contains("rule 0: `secretIdPrefixes` is empty"), "{error}");
    }

    #[test]
    fn leader_election_needs_a_namespace() {
        let argv = ["dpo", "controller"];
        let Command::Controller(mut args) = Cli::try_parse_from(argv).unwrap().command else {
            unreachable!()
        };
        args.lease_namespace = None;
        assert_eq!(args.validate().unwrap_err().flag, "--lease-namespace");
        args.lease_namespace = Some("dpo.system".into());
        assert_eq!(args.validate().unwrap_err().flag, "--lease-namespace");
        args.leader_election = false;
        assert!(args.validate().is_ok());
    }
}
