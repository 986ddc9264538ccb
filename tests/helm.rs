//! The Helm chart: lint, and what `helm template` renders for the default values and variants
//! (RBAC verbs and resources, pod security, leader election, monitoring), the CRDs equal to
//! `crds/`, and `deploy/manifests/` equal to the chart's output.
//!
//! helm must be on PATH: tests/run.sh installs it. Without it these tests fail.

use clap::Parser;
use dpo::cli::{Cli, Command as Subcommand};
use dpo::controller::access::AccessRules;
use dpo::controller::runtime::RuntimeConfig;
use dpo::policy::secret::SYNCABLE_SECRET_TYPES;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/data-protection-operator");
const NAMESPACE: &str = "dpo-system";
/// `deploy/manifests/` is this command's output; regenerate it with the same command.
const MANIFESTS: &str = "deploy/manifests/data-protection-operator.yaml";
const MANIFESTS_COMMAND: &[&str] = &[
    "template",
    "data-protection-operator",
    "charts/data-protection-operator",
    "--namespace",
    NAMESPACE,
    "--include-crds",
];

fn helm(args: &[&str]) -> std::process::Output {
    Command::new("helm")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run helm ({e}): run tests/run.sh, which installs helm"))
}

/// Renders the chart with `--set` values; fails the test when helm does.
fn render(set: &[&str]) -> Vec<Value> {
    documents(try_render(set))
}

/// The documents `helm template` printed; fails the test when helm failed.
fn documents(output: std::process::Output) -> Vec<Value> {
    assert!(output.status.success(), "helm template failed: {}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8(output.stdout).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| serde_yaml::from_value::<Value>(serde::Deserialize::deserialize(doc).unwrap()).unwrap())
        .filter(|doc| !doc.is_null())
        .collect()
}

fn try_render(set: &[&str]) -> std::process::Output {
    let mut args = vec!["template", "dpo", CHART, "--namespace", NAMESPACE];
    for value in set {
        args.extend(["--set", value]);
    }
    helm(&args)
}

fn find<'a>(docs: &'a [Value], kind: &str, name_suffix: &str) -> Option<&'a Value> {
    docs.iter().find(|d| {
        d["kind"] == kind && d["metadata"]["name"].as_str().is_some_and(|n| n.ends_with(name_suffix))
    })
}

fn one<'a>(docs: &'a [Value], kind: &str, name_suffix: &str) -> &'a Value {
    find(docs, kind, name_suffix).unwrap_or_else(|| panic!("no {kind} named *{name_suffix}"))
}

fn strings(value: &Value) -> Vec<&str> {
    value.as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
}

/// RBAC rules as (apiGroup/resource -> verbs), resourceNames noted after the resource.
fn grants(role: &Value) -> BTreeMap<String, BTreeSet<String>> {
    let mut grants: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for rule in role["rules"].as_array().unwrap() {
        let names = strings(&rule["resourceNames"]).join(",");
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                let key = if names.is_empty() {
                    format!("{group}/{resource}")
                } else {
                    format!("{group}/{resource}[{names}]")
                };
                grants.entry(key).or_default().extend(strings(&rule["verbs"]).into_iter().map(String::from));
            }
        }
    }
    grants
}

fn verbs(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|v| v.to_string()).collect()
}

const READ: &[&str] = &["get", "list", "watch"];
const SECRET_WRITE: &[&str] = &["get", "list", "watch", "create", "patch", "delete"];

fn operator_args(docs: &[Value]) -> Vec<String> {
    let container =
        &one(docs, "Deployment", "data-protection-operator")["spec"]["template"]["spec"]["containers"][0];
    strings(&container["args"]).into_iter().map(String::from).collect()
}

/// The operator's flags as `dpo controller` validates them, with what the pod supplies besides
/// (the access rules file mounted from the ConfigMap, POD_NAMESPACE) left to other tests.
fn controller_config(docs: &[Value]) -> RuntimeConfig {
    let argv = std::iter::once("dpo".to_string()).chain(operator_args(docs));
    let Subcommand::Controller(mut args) =
        Cli::try_parse_from(argv).expect("the chart's flags parse").command
    else {
        panic!("the chart runs another command than `dpo controller`")
    };
    args.secret_access_file = None;
    args.lease_namespace = Some(NAMESPACE.into());
    args.validate().expect("the chart's flags are valid")
}

#[test]
fn the_chart_lints_with_default_and_variant_values() {
    for set in [
        "",
        "leaderElection.enabled=false,replicaCount=1",
        "rbac.secrets.namespaces={shop,payments},rbac.secrets.write=false",
        "monitoring.serviceMonitor.enabled=true,monitoring.prometheusRule.enabled=true,monitoring.grafanaDashboard.enabled=true",
    ] {
        let mut args = vec!["lint", CHART, "--strict"];
        if !set.is_empty() {
            args.extend(["--set", set]);
        }
        let output = helm(&args);
        assert!(
            output.status.success(),
            "helm lint --set {set:?}: {}",
            String::from_utf8_lossy(&output.stdout)
        );
    }
}

/// Grants on the workloads `rolloutRestart` restarts.
fn is_workload(key: &str) -> bool {
    key.starts_with("apps/") || key.starts_with("argoproj.io/")
}

/// The grants a ProtectedSecret controller needs wherever it works: those on ProtectedSecrets,
/// Secrets and workloads.
fn protected_secret_grants(
    grants: &BTreeMap<String, BTreeSet<String>>,
) -> BTreeMap<String, BTreeSet<String>> {
    let theirs =
        |key: &String| key.starts_with("dpo.dev/protectedsecrets") || key == "/secrets" || is_workload(key);
    grants.iter().filter(|(key, _)| theirs(key)).map(|(k, v)| (k.clone(), v.clone())).collect()
}

// Which verbs the code needs is judged against the apiserver's audit log of a real run (the
// chart e2e test); these tests check the chart's shape under each value.
#[test]
fn default_rbac_is_one_cluster_role_and_the_lease_role() {
    let docs = render(&[]);
    let cluster = grants(one(&docs, "ClusterRole", "data-protection-operator"));
    assert_eq!(cluster["/secrets"], verbs(SECRET_WRITE));
    assert_eq!(cluster["apps/deployments"], verbs(&["get", "patch"]));
    assert!(!cluster.values().flatten().any(|verb| verb == "update" || verb == "*"), "{cluster:?}");

    // Leases only in the release namespace, updates only of the operator's own Lease.
    let leases = one(&docs, "Role", "leader-election");
    assert_eq!(leases["metadata"]["namespace"], NAMESPACE);
    let lease_grants = grants(leases);
    assert_eq!(lease_grants["coordination.k8s.io/leases"], verbs(&["create"]));
    assert_eq!(lease_grants["coordination.k8s.io/leases[dpo-leader]"], verbs(&["get", "update"]));
    let binding = one(&docs, "ClusterRoleBinding", "data-protection-operator");
    assert_eq!(binding["subjects"][0]["name"], "dpo-data-protection-operator");
    assert_eq!(binding["subjects"][0]["namespace"], NAMESPACE);
    assert!(find(&docs, "Role", "-secrets").is_none());
}

#[test]
fn protected_secrets_can_be_restricted_to_namespaces() {
    const ROLE: &str = "dpo-data-protection-operator-protected-secrets";
    let docs = render(&["rbac.secrets.namespaces={shop,payments}"]);
    // The controller watches and writes only there...
    assert_eq!(controller_config(&docs).controller.secret_namespaces, ["shop", "payments"]);
    assert!(operator_args(&docs).iter().any(|a| a == "--secret-namespaces=shop,payments"));
    // ...and may do so nowhere else.
    let cluster = grants(one(&docs, "ClusterRole", "data-protection-operator"));
    for key in cluster.keys() {
        assert!(
            !key.starts_with("dpo.dev/protectedsecrets") && key != "/secrets" && !is_workload(key),
            "{key} is granted cluster-wide: {cluster:?}"
        );
    }
    let roles: Vec<&Value> =
        docs.iter().filter(|d| d["kind"] == "Role" && d["metadata"]["name"] == ROLE).collect();
    let namespaces: Vec<&str> = roles.iter().map(|r| r["metadata"]["namespace"].as_str().unwrap()).collect();
    assert_eq!(namespaces, ["shop", "payments"]);
    let expected =
        protected_secret_grants(&grants(one(&render(&[]), "ClusterRole", "data-protection-operator")));
    for role in &roles {
        assert_eq!(grants(role), expected);
    }
    let bindings = docs.iter().filter(|d| d["kind"] == "RoleBinding" && d["roleRef"]["name"] == ROLE);
    assert_eq!(
        bindings.map(|b| b["metadata"]["namespace"].as_str().unwrap()).collect::<Vec<_>>(),
        ["shop", "payments"]
    );

    let everywhere = render(&[]);
    assert!(controller_config(&everywhere).controller.secret_namespaces.is_empty());
    assert!(!operator_args(&everywhere).iter().any(|a| a.starts_with("--secret-namespaces")));

    for bad in ["rbac.secrets.namespaces={Shop}", &format!("rbac.secrets.namespaces={{{}}}", "a".repeat(64))]
    {
        let refused = try_render(&[bad]);
        assert!(!refused.status.success(), "values.schema.json accepted {bad}");
    }
}

#[test]
fn secrets_can_be_read_only_and_restarts_off() {
    let read_only = render(&["rbac.secrets.write=false", "rbac.rolloutRestart=false"]);
    let cluster = grants(one(&read_only, "ClusterRole", "data-protection-operator"));
    assert_eq!(cluster["/secrets"], verbs(READ));
    assert!(!cluster.keys().any(|k| is_workload(k)), "{cluster:?}");

    let namespaced =
        render(&["rbac.secrets.namespaces={shop}", "rbac.secrets.write=false", "rbac.rolloutRestart=false"]);
    let role = grants(one(&namespaced, "Role", "-protected-secrets"));
    assert_eq!(role["/secrets"], verbs(READ));
    assert!(!role.keys().any(|k| is_workload(k)), "{role:?}");
}

#[test]
fn the_pod_meets_the_restricted_pod_security_standard() {
    let docs = render(&[]);
    let pod = &one(&docs, "Deployment", "data-protection-operator")["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    let container = &pod["containers"][0];
    let security = &container["securityContext"];
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["runAsNonRoot"], true);
    assert_eq!(strings(&security["capabilities"]["drop"]), ["ALL"]);
    assert!(security["capabilities"]["add"].is_null());
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert!(container["resources"]["requests"]["memory"].is_string());
    assert!(pod["topologySpreadConstraints"].as_array().is_some_and(|c| c.len() == 2));
}

#[test]
fn two_replicas_run_with_leader_election_and_a_disruption_budget() {
    let docs = render(&[]);
    assert_eq!(one(&docs, "Deployment", "data-protection-operator")["spec"]["replicas"], 2);
    let args = operator_args(&docs);
    for expected in [
        "controller",
        "--leader-election=true",
        "--lease-name=dpo-leader",
        "--secret-access-file=/etc/dpo/secret-access.yaml",
    ] {
        assert!(args.iter().any(|a| a == expected), "{expected} missing from {args:?}");
    }
    assert_eq!(one(&docs, "PodDisruptionBudget", "data-protection-operator")["spec"]["maxUnavailable"], 1);
    let lease = controller_config(&docs).leader_election.expect("leader election");
    assert_eq!(
        (lease.duration, lease.renew_deadline, lease.retry_period),
        (Duration::from_secs(15), Duration::from_secs(10), Duration::from_secs(2))
    );
    let tuned = render(&[
        "leaderElection.leaseDuration=30s,leaderElection.renewDeadline=20s,leaderElection.retryPeriod=5s",
    ]);
    let lease = controller_config(&tuned).leader_election.expect("leader election");
    assert_eq!(
        (lease.duration, lease.renew_deadline, lease.retry_period),
        (Duration::from_secs(30), Duration::from_secs(20), Duration::from_secs(5))
    );

    let single = render(&["leaderElection.enabled=false", "replicaCount=1"]);
    assert!(operator_args(&single).iter().any(|a| a == "--leader-election=false"));
    assert!(!operator_args(&single).iter().any(|a| a.starts_with("--lease-")));
    assert!(find(&single, "Role", "leader-election").is_none());
    assert!(find(&single, "PodDisruptionBudget", "").is_none(), "a budget on one replica blocks node drains");

    let refused = try_render(&["leaderElection.enabled=false"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("needs leaderElection.enabled"));
}

#[test]
fn the_cluster_name_reaches_the_controller_only_when_set() {
    assert_eq!(
        controller_config(&render(&["clusterName=shop"])).controller.cluster_name.as_deref(),
        Some("shop")
    );
    assert!(!operator_args(&render(&[])).iter().any(|a| a.starts_with("--cluster-name")));
    assert!(!try_render(&["clusterName=not a name"]).status.success(), "values.schema.json took a bad name");
}

#[test]
fn aws_settings_reach_the_service_account_and_the_flags() {
    let role = "arn:aws:iam::111111111111:role/dpo";
    let docs = render(&[
        &format!("aws.roleArn={role}"),
        "aws.region=eu-west-1",
        "aws.allowedRoles={arn:aws:iam::222222222222:role/dpo-*}",
    ]);
    assert_eq!(
        one(&docs, "ServiceAccount", "data-protection-operator")["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        role
    );
    let args = operator_args(&docs);
    assert!(args.iter().any(|a| a == "--region=eu-west-1"), "{args:?}");
    assert!(args.iter().any(|a| a == "--allowed-role=arn:aws:iam::222222222222:role/dpo-*"), "{args:?}");
    // Without a role ARN (EKS Pod Identity) there is no IRSA annotation.
    assert!(
        one(&render(&[]), "ServiceAccount", "data-protection-operator")["metadata"]["annotations"].is_null()
    );
    let invalid = try_render(&["aws.roleArn=dpo"]);
    assert!(!invalid.status.success(), "values.schema.json accepted a role name for a role ARN");

    // An account id is a string (a number would lose digits on its way through Helm).
    let account = ["--set-string", "aws.accountId=111111111111", "--set", "aws.partition=aws-cn"];
    let docs =
        documents(helm(&[&["template", "dpo", CHART, "--namespace", NAMESPACE][..], &account].concat()));
    let identity = controller_config(&docs).aws.identity.expect("the account id reaches --aws-account-id");
    assert_eq!((identity.account.as_str(), identity.partition.as_str()), ("111111111111", "aws-cn"));
    assert_eq!(controller_config(&render(&[])).aws.identity, None, "asked of STS by default");
}

#[test]
fn the_value_cache_bound_reaches_the_flag() {
    let bound = |set: &[&str]| controller_config(&render(set)).aws.cache.value_bytes;
    assert_eq!(bound(&[]), dpo::aws::DEFAULT_VALUE_BYTES);
    assert_eq!(bound(&["valueCacheBytes=64Mi"]), 64 << 20);
    for bad in ["valueCacheBytes=32MB", "valueCacheBytes=1.5Gi"] {
        assert!(!try_render(&[bad]).status.success(), "values.schema.json accepted {bad}");
    }
}

#[test]
fn the_allowed_secret_types_reach_the_flag_and_never_take_the_token_type() {
    let allowed = |set: &[&str]| controller_config(&render(set)).controller.allowed_secret_types;
    assert_eq!(allowed(&[]), SYNCABLE_SECRET_TYPES.map(String::from));
    assert_eq!(
        allowed(&["protectedSecrets.allowedSecretTypes={Opaque,example.com/custom}"]),
        ["Opaque", "example.com/custom"]
    );
    for bad in [
        "protectedSecrets.allowedSecretTypes={Opaque,kubernetes.io/service-account-token}",
        "protectedSecrets.allowedSecretTypes={}",
    ] {
        let refused = try_render(&[bad]);
        assert!(!refused.status.success(), "values.schema.json accepted {bad}");
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(stderr.contains("allowedSecretTypes"), "{bad}: {stderr}");
    }
}

#[test]
fn the_load_balancer_controllers_defaults_reach_the_flags() {
    let defaults = controller_config(&render(&[])).controller.alb_defaults;
    assert_eq!(defaults, dpo::policy::AlbDefaults::default());
    let docs = render(&[
        "albController.defaultSslPolicy=ELBSecurityPolicy-TLS13-1-2-2021-06",
        "albController.ingressClass=internal-alb",
    ]);
    let defaults = controller_config(&docs).controller.alb_defaults;
    assert_eq!(
        (defaults.ssl_policy.as_str(), defaults.ingress_class.as_str()),
        ("ELBSecurityPolicy-TLS13-1-2-2021-06", "internal-alb")
    );
    for bad in ["albController.ingressClass=Internal ALB", "albController.defaultSslPolicy="] {
        assert!(!try_render(&[bad]).status.success(), "values.schema.json accepted {bad}");
    }
}

#[test]
fn secret_access_values_become_the_rules_file_the_operator_reads() {
    let config = |docs: &[Value]| {
        let data = &one(docs, "ConfigMap", "secret-access")["data"]["secret-access.yaml"];
        AccessRules::parse("configmap", data.as_str().unwrap()).unwrap()
    };
    assert_eq!(config(&render(&[])), AccessRules::default());
    let custom = config(&render(&[
        "secretAccess[0].namespaces={payments-*}",
        "secretAccess[0].secretIdPrefixes={shared/}",
        "secretAccess[0].accounts={*}",
        "secretAccess[0].regions={eu-*}",
        "secretAccess[0].roles[0]=arn:aws:iam::111111111111:role/{namespace}-reader",
        "secretAccess[0].externalId=dpo-{namespace}",
    ]));
    let expected = r#"
- namespaces: [payments-*]
  secretIdPrefixes: [shared/]
  accounts: ["*"]
  regions: [eu-*]
  roles: ["arn:aws:iam::111111111111:role/{namespace}-reader"]
  externalId: dpo-{namespace}
"#;
    assert_eq!(custom, AccessRules::parse("expected", expected).unwrap());
    for bad in ["secretAccess[0].accounts={any}", "secretAccess[0].roles[0]=reader"] {
        let set = ["secretAccess[0].namespaces={shop}", "secretAccess[0].secretIdPrefixes={shop/}", bad];
        assert!(!try_render(&set).status.success(), "values.schema.json accepted {bad}");
    }
}

#[test]
fn monitoring_renders_a_service_monitor_alerts_and_a_dashboard() {
    let off = render(&[]);
    assert!(["ServiceMonitor", "PrometheusRule"].iter().all(|kind| find(&off, kind, "").is_none()));
    assert!(find(&off, "ConfigMap", "-dashboard").is_none());

    let docs = render(&[
        "monitoring.serviceMonitor.enabled=true",
        "monitoring.prometheusRule.enabled=true",
        "monitoring.grafanaDashboard.enabled=true",
    ]);
    let monitor = one(&docs, "ServiceMonitor", "data-protection-operator");
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "metrics");
    let service = one(&docs, "Service", "-metrics");
    assert_eq!(service["spec"]["ports"][0]["name"], "metrics");
    let rules = &one(&docs, "PrometheusRule", "data-protection-operator")["spec"]["groups"][0]["rules"];
    let alerts: Vec<&str> = rules.as_array().unwrap().iter().map(|r| r["alert"].as_str().unwrap()).collect();
    for alert in ["DpoSecretSyncFailing", "DpoPolicyViolations", "DpoCertificateExpiring"] {
        assert!(alerts.contains(&alert), "{alert} missing from {alerts:?}");
    }
    let expiring = rules.as_array().unwrap().iter().find(|r| r["alert"] == "DpoCertificateExpiring").unwrap();
    assert!(expiring["expr"].as_str().unwrap().contains("acm-certificate-expiration-check"));
    let dashboard = &one(&docs, "ConfigMap", "-dashboard")["data"]["data-protection-operator.json"];
    let dashboard: Value = serde_json::from_str(dashboard.as_str().unwrap()).expect("dashboard is not JSON");
    let exprs: Vec<&str> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap())
        .map(|t| t["expr"].as_str().unwrap())
        .collect();
    assert!(exprs.iter().any(|e| e.contains("dpo_aws_requests_total")), "{exprs:?}");
    assert!(exprs.iter().any(|e| e.contains("dpo_reconcile_errors_total")), "{exprs:?}");
}

#[test]
fn the_chart_crds_are_the_repository_crds() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let chart = std::fs::read_to_string(root.join("charts/data-protection-operator/crds/crds.yaml")).unwrap();
    let repo = std::fs::read_to_string(root.join("crds/crds.yaml")).unwrap();
    assert!(
        chart == repo,
        "charts/data-protection-operator/crds/crds.yaml differs from crds/crds.yaml: cp crds/crds.yaml charts/data-protection-operator/crds/"
    );
}

#[test]
fn deploy_manifests_are_the_rendered_chart() {
    let output = helm(MANIFESTS_COMMAND);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let rendered = String::from_utf8(output.stdout).unwrap();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(MANIFESTS);
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        rendered == checked_in,
        "{MANIFESTS} is out of date: helm {} > {MANIFESTS}",
        MANIFESTS_COMMAND.join(" ")
    );
}
