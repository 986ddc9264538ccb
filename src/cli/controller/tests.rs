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
    assert_eq!(
        (lease.duration, lease.renew_deadline, lease.retry_period),
        (Duration::from_secs(15), Duration::from_secs(10), Duration::from_secs(2))
    );
    assert_eq!(config.controller.secret_access, AccessRules::default());
}

#[test]
fn a_controller_named_twice_runs_once() {
    let config =
        parse(&["--controllers", "protected-secrets,tls-ingress-policies,protected-secrets"]).unwrap();
    assert_eq!(config.controllers, [ControllerKind::ProtectedSecrets, ControllerKind::TlsIngressPolicies]);
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
    assert_eq!(config.controllers, [ControllerKind::ProtectedSecrets, ControllerKind::TlsIngressPolicies]);
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
            eks_auto_mode: false,
            inventory_complete: true,
        }
    );
    for (flag, bad) in [("--alb-default-ssl-policy", ""), ("--alb-ingress-class", "Internal ALB")] {
        let error = rejected(&[&format!("{flag}={bad}")]);
        assert_eq!(error.flag, flag, "{error}");
    }
}

#[test]
fn invalid_values_name_their_flag() {
    let cases: [(&[&str], &str); 12] = [
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
        (&["--allowed-secret-types=Opaque,kubernetes.io/service-account-token"], "--allowed-secret-types"),
        (&["--allowed-secret-types="], "--allowed-secret-types"),
    ];
    for (flags, flag) in cases {
        let error = rejected(flags);
        assert_eq!(error.flag, flag, "{flags:?}: {error}");
        assert!(error.to_string().starts_with(&format!("invalid {flag}: ")), "{error}");
    }
}

#[test]
fn lease_timings_keep_duration_above_renew_deadline_above_retry_period() {
    let timings = |flags: &[&str]| {
        let lease = parse(flags).unwrap().leader_election.unwrap();
        (lease.duration, lease.renew_deadline, lease.retry_period)
    };
    let seconds = Duration::from_secs;
    // Unset, each is derived from the one above it.
    assert_eq!(timings(&["--lease-duration=30s"]), (seconds(30), seconds(20), seconds(4)));
    assert_eq!(
        timings(&["--lease-duration=30s", "--renew-deadline=25s"]),
        (seconds(30), seconds(25), seconds(5))
    );
    assert_eq!(
        timings(&["--lease-duration=6s", "--renew-deadline=4s", "--retry-period=500ms"]),
        (seconds(6), seconds(4), Duration::from_millis(500))
    );
    let cases: [(&[&str], &str, &str); 5] = [
        (&["--renew-deadline=15s"], "--renew-deadline", "15s must be shorter than --lease-duration (15s)"),
        (
            &["--lease-duration=6s", "--renew-deadline=10s"],
            "--renew-deadline",
            "shorter than --lease-duration (6s)",
        ),
        (&["--retry-period=10s"], "--retry-period", "10s must be shorter than --renew-deadline (10s)"),
        (
            &["--renew-deadline=3s", "--retry-period=4s"],
            "--retry-period",
            "shorter than --renew-deadline (3s)",
        ),
        (&["--retry-period=10ms"], "--retry-period", "shorter than the minimum 100ms"),
    ];
    for (flags, flag, message) in cases {
        let error = rejected(flags);
        assert_eq!(error.flag, flag, "{flags:?}: {error}");
        assert!(error.message.contains(message), "{flags:?}: {error}");
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
fn the_operators_account_is_asked_of_sts_unless_given() {
    assert_eq!(parse(&[]).unwrap().aws.identity, None);
    let given = parse(&["--aws-account-id", "111111111111", "--aws-partition", "aws-cn"]).unwrap();
    let identity = Identity { partition: "aws-cn".into(), account: "111111111111".into() };
    assert_eq!(given.aws.identity, Some(identity));
    assert_eq!(rejected(&["--aws-account-id", "1111"]).flag, "--aws-account-id");
    assert_eq!(
        rejected(&["--aws-account-id", "111111111111", "--aws-partition", "AWS"]).flag,
        "--aws-partition"
    );
}

#[test]
fn the_secret_access_file_is_validated_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.yaml");
    let rules = "- namespaces: [payments]\n  secretIdPrefixes: [shared/]\n  accounts: [\"111111111111\"]\n";
    std::fs::write(&path, rules).unwrap();
    let config = parse(&["--secret-access-file", path.to_str().unwrap()]).unwrap();
    assert_eq!(config.controller.secret_access, AccessRules::parse("rules", rules).unwrap());
    std::fs::write(&path, "- namespaces: [payments]\n  secretIdPrefixes: []\n").unwrap();
    let error = rejected(&["--secret-access-file", path.to_str().unwrap()]);
    assert!(error.message.contains("rule 0: `secretIdPrefixes` is empty"), "{error}");
}

#[test]
fn leader_election_needs_a_namespace() {
    let argv = ["dpo", "controller"];
    let Command::Controller(mut args) = Cli::try_parse_from(argv).unwrap().command else { unreachable!() };
    args.lease_namespace = None;
    assert_eq!(args.validate().unwrap_err().flag, "--lease-namespace");
    args.lease_namespace = Some("dpo.system".into());
    assert_eq!(args.validate().unwrap_err().flag, "--lease-namespace");
    args.leader_election = false;
    assert!(args.validate().is_ok());
}

#[test]
fn allowed_secret_types_default_to_the_syncable_ones_and_replace_them() {
    let defaults = parse(&[]).unwrap().controller.allowed_secret_types;
    assert_eq!(defaults, crate::policy::secret::SYNCABLE_SECRET_TYPES);
    let config = parse(&["--allowed-secret-types", "Opaque,example.com/b"]).unwrap();
    assert_eq!(config.controller.allowed_secret_types, ["Opaque", "example.com/b"]);
}

#[test]
fn the_value_cache_bound_is_bytes_with_binary_units() {
    assert_eq!(parse(&[]).unwrap().aws.cache.value_bytes, crate::aws::DEFAULT_VALUE_BYTES);
    let bound =
        |value: &str| parse(&[&format!("--value-cache-bytes={value}")]).unwrap().aws.cache.value_bytes;
    assert_eq!(bound("64Mi"), 64 << 20);
    assert_eq!(bound("1Gi"), 1 << 30);
    assert_eq!(bound("65536"), 65536);
    assert_eq!(bound("64Ki"), 65536);
    for bad in ["32MB", "32 Mi", "Mi", "", "-1Mi", "1.5Mi", "99999999999999999Gi"] {
        let error = rejected(&[&format!("--value-cache-bytes={bad}")]);
        assert_eq!(error.flag, "--value-cache-bytes", "{bad}: {error}");
        assert!(error.message.contains("such as 32Mi"), "{bad}: {error}");
    }
    let error = rejected(&["--value-cache-bytes=63Ki"]);
    assert!(error.message.contains("smaller than 64Ki"), "{error}");
}

#[test]
fn the_cluster_name_is_optional_and_empty_means_none() {
    assert_eq!(parse(&[]).unwrap().controller.cluster_name, None);
    assert_eq!(parse(&["--cluster-name", ""]).unwrap().controller.cluster_name, None);
    let named = parse(&["--cluster-name", "shop"]).unwrap();
    assert_eq!(named.controller.cluster_name.as_deref(), Some("shop"));
}
