//! `dpo check` as users run it: the shipped binary over real files and stdin; and the start-up
//! checks of `dpo controller`, which need no cluster.

#[path = "support/check.rs"]
mod check;

use check::{dpo, json, rules_of, stderr};
use std::path::Path;

const UNENCRYPTED_CLASS: &str = "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: plain\nprovisioner: ebs.csi.aws.com\nparameters:\n  type: gp3\n";

#[test]
fn shipped_examples_fail_with_fixes() {
    let output = dpo(&["check", "deploy/examples", "-o", "json"], None);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = json(&output);
    let rules = rules_of(&report);
    for expected in ["storageclass-encrypted", "kms-key-approved"] {
        assert!(rules.iter().any(|r| r == expected), "{expected} missing from {rules:?}");
    }
    for finding in report["findings"].as_array().unwrap() {
        assert!(!finding["remediation"].as_str().unwrap().is_empty(), "{finding}");
        // The compliant WordPress stack produces nothing.
        assert_ne!(finding["resource"]["namespace"], "wordpress", "{finding}");
        assert_ne!(finding["resource"]["name"], "gp3-encrypted", "{finding}");
    }
}

#[test]
fn shipped_policies_require_post_quantum_tls_and_leave_certificate_keys_to_aws() {
    let report = json(&dpo(&["check", "deploy/examples", "-o", "json"], None));
    let api: Vec<&serde_json::Value> =
        report["findings"].as_array().unwrap().iter().filter(|f| f["resource"]["name"] == "api").collect();
    assert_eq!(api.len(), 1, "{report}");
    assert_eq!(api[0]["rule"], "elbv2-predefined-security-policy-ssl-check");
    assert!(api[0]["message"].as_str().unwrap().contains("offers no post-quantum key exchange"), "{report}");
    assert!(
        api[0]["remediation"].as_str().unwrap().contains("ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09"),
        "{report}"
    );
    // Offline the certificate keys are unknown: skipped for each Ingress, NLB Service and Gateway
    // with an ACM certificate (wordpress, api, shop, Auto Mode's catalog and checkout-api, and the
    // storefront and checkout Gateways), never passed.
    let skipped = report["summary"]["skipped"].as_array().unwrap();
    for rule in ["acm-certificate-rsa-check", "acm-certificate-key-algorithm-approved"] {
        let entry = skipped.iter().find(|s| s["rule"] == rule).unwrap_or_else(|| panic!("{rule}: {report}"));
        assert_eq!(entry["resources"], 7, "{rule}: {report}");
    }
}

/// The rules of the findings on the object named `name`.
fn rules_on(report: &serde_json::Value, name: &str) -> Vec<String> {
    let on = report["findings"].as_array().unwrap().iter().filter(|f| f["resource"]["name"] == name);
    on.map(|f| f["rule"].as_str().unwrap().to_string()).collect()
}

#[test]
fn auto_mode_example_is_compliant_with_its_web_acl_left_to_aws() {
    let args =
        ["check", "deploy/examples/auto-mode", "--policy", "deploy/examples/policies.yaml", "-o", "json"];
    let output = dpo(&args, None);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report = json(&output);
    assert_eq!(rules_of(&report), Vec::<String>::new(), "{report}");
    // The Ingress and the eks.amazonaws.com/nlb Service are judged, not "not applicable": both
    // wait on their certificates' status.
    let skipped = report["summary"]["skipped"].as_array().unwrap();
    let status =
        skipped.iter().find(|s| s["rule"] == "acm-certificate-status").expect("certificates skipped");
    assert_eq!(status["resources"], 2, "{report}");
    let waf =
        skipped.iter().find(|s| s["rule"] == "alb-waf-enabled").expect("the Web ACL's existence is skipped");
    assert_eq!(waf["resources"], 1, "{report}");
}

#[test]
fn auto_mode_violations_are_found_under_the_shipped_policies() {
    let report = json(&dpo(&["check", "deploy/examples", "-o", "json"], None));
    assert_eq!(
        rules_on(&report, "partners"),
        ["elbv2-acm-certificate-required", "elbv2-predefined-security-policy-ssl-check", "alb-waf-enabled"],
        "{report}"
    );
    assert_eq!(rules_on(&report, "partners-feed"), ["elbv2-acm-certificate-required"], "{report}");
    // Auto Mode ignores the partners Ingress's group.name: the self-managed storefront group's
    // findings stay on its own members.
    let partners =
        report["findings"].as_array().unwrap().iter().filter(|f| f["resource"]["name"] == "partners");
    assert!(partners.clone().all(|f| !f["message"].as_str().unwrap().contains("IngressGroup")), "{report}");
    assert!(rules_on(&report, "shop").contains(&"alb-waf-enabled".to_string()), "{report}");
}

#[test]
fn eks_auto_mode_gives_classless_load_balancer_services_an_nlb() {
    let service = "apiVersion: v1\nkind: Service\nmetadata: {name: api, namespace: shop}\nspec:\n  type: LoadBalancer\n  ports: [{name: https, port: 443}]\n";
    let output = dpo(&["check", "-", "-o", "json"], Some(service));
    assert_eq!(rules_of(&json(&output)), Vec::<String>::new());
    let output = dpo(&["check", "-", "--eks-auto-mode", "-o", "json"], Some(service));
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(rules_of(&json(&output)), ["elbv2-acm-certificate-required"]);
}

#[test]
fn shipped_gateways_are_judged_like_ingresses() {
    let report = json(&dpo(&["check", "deploy/examples", "-o", "json"], None));
    let of = |name: &str| -> Vec<String> {
        let findings = report["findings"].as_array().unwrap().iter();
        findings
            .filter(|f| f["resource"]["kind"] == "Gateway" && f["resource"]["name"] == name)
            .map(|f| format!("{}: {}", f["rule"].as_str().unwrap(), f["message"].as_str().unwrap()))
            .collect()
    };
    // The compliant storefront: redirected HTTP, a post-quantum policy, a configured certificate.
    assert_eq!(of("storefront"), Vec::<String>::new(), "{report}");
    let checkout = of("checkout");
    assert_eq!(checkout.len(), 2, "{checkout:?}");
    assert!(checkout[0].starts_with(
        "alb-http-to-https-redirection-check: HTTPRoute checkout/checkout serves plain HTTP on HTTP listener 80"
    ));
    assert!(checkout[1].starts_with(
        "elbv2-predefined-security-policy-ssl-check: HTTPS listener 443 uses security policy ELBSecurityPolicy-2016-08 \
         (the controller's default, as none is set)"
    ));
    // Offline the certificate's state is unknown: skipped for the Gateways, never passed (7: the
    // storefront and checkout Gateways, wordpress, api, shop, and Auto Mode's catalog and
    // checkout-api).
    let skipped = report["summary"]["skipped"].as_array().unwrap();
    let status = skipped.iter().find(|s| s["rule"] == "acm-certificate-status").expect("status skipped");
    assert_eq!(status["resources"], 7, "{report}");
}

#[test]
fn gateway_api_objects_are_parsed_and_a_gateway_of_another_controller_is_not_judged() {
    let stream = "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: envoy}\nspec: {controllerName: gateway.envoyproxy.io/gatewayclass-controller}\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: edge, namespace: web}\nspec:\n  gatewayClassName: envoy\n  listeners: [{name: http, port: 80, protocol: HTTP}]\n";
    let output = dpo(&["check", "-", "-o", "json"], Some(stream));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(rules_of(&json(&output)), Vec::<String>::new());
    let broken = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: edge, namespace: web}\nspec: {listeners: 80}\n";
    let output = dpo(&["check", "-", "-o", "json"], Some(broken));
    assert_ne!(output.status.code(), Some(0), "an invalid Gateway is an input error");
}

#[test]
fn the_clusters_secrets_encryption_is_skipped_offline_never_passed() {
    let report = json(&dpo(&["check", "deploy/examples", "-o", "json"], None));
    assert!(!rules_of(&report).iter().any(|rule| rule == "eks-secrets-encrypted"), "{report}");
    let skipped = report["summary"]["skipped"].as_array().unwrap();
    let entry = skipped
        .iter()
        .find(|s| s["rule"] == "eks-secrets-encrypted")
        .unwrap_or_else(|| panic!("eks-secrets-encrypted not skipped: {report}"));
    // Judged once, on the policy that names the cluster.
    assert_eq!(entry["resources"], 1, "{report}");
}

#[test]
fn a_class_with_a_kms_key_is_judged_by_its_key_whatever_encrypted_says() {
    // io2-fast sets encrypted: "True" and a kmsKeyId outside the allowlist: the EBS CSI driver
    // encrypts with any key it is given, so only the key is wrong.
    let report = json(&dpo(&["check", "deploy/examples", "-o", "json"], None));
    let io2: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["resource"]["name"] == "io2-fast")
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert_eq!(io2, ["kms-key-approved"], "{report}");
}

#[test]
fn a_rule_on_the_account_default_key_is_skipped_offline() {
    let stream = "apiVersion: dpo.dev/v1alpha1\nkind: EncryptedVolumePolicy\nmetadata: {name: cmk}\nspec: {requireCustomerManagedKey: true, checkAccountDefault: false}\n---\napiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: gp3}\nprovisioner: ebs.csi.aws.com\nparameters: {encrypted: \"true\"}\n";
    let output = dpo(&["check", "-", "-o", "json"], Some(stream));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report = json(&output);
    assert_eq!(rules_of(&report), Vec::<String>::new(), "{report}");
    let skipped = report["summary"]["skipped"].as_array().unwrap();
    assert!(skipped.iter().any(|s| s["rule"] == "storageclass-using-cmk"), "{report}");
}

/// An HTTPS Ingress with a certificate and a redirect that sets no security policy, of class
/// `class` (no IngressClass object among the inputs).
fn ingress_without_ssl_policy(class: &str) -> String {
    format!(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: web\n  namespace: shop\n  annotations:\n    alb.ingress.kubernetes.io/listen-ports: '[{{\"HTTP\": 80}}, {{\"HTTPS\": 443}}]'\n    alb.ingress.kubernetes.io/certificate-arn: arn:aws:acm:us-east-1:111122223333:certificate/web\n    alb.ingress.kubernetes.io/ssl-redirect: '443'\nspec:\n  ingressClassName: {class}\n  rules: [{{host: shop.example.com}}]\n"
    )
}

#[test]
fn ingresses_are_judged_by_the_load_balancer_controllers_own_defaults() {
    // Unset, the controller's defaults: class alb, and ELBSecurityPolicy-2016-08 (TLS 1.0) on
    // listeners that set no policy.
    let default = dpo(&["check", "-", "-o", "json"], Some(&ingress_without_ssl_policy("alb")));
    assert_eq!(rules_of(&json(&default)), ["elbv2-predefined-security-policy-ssl-check"]);
    let hardened = dpo(
        &["check", "-", "-o", "json", "--alb-default-ssl-policy", "ELBSecurityPolicy-TLS13-1-2-2021-06"],
        Some(&ingress_without_ssl_policy("alb")),
    );
    assert_eq!(hardened.status.code(), Some(0), "{}", stderr(&hardened));
    assert_eq!(rules_of(&json(&hardened)), Vec::<String>::new());

    let other_class = ingress_without_ssl_policy("internal-alb");
    assert_eq!(
        rules_of(&json(&dpo(&["check", "-", "-o", "json"], Some(&other_class)))),
        Vec::<String>::new()
    );
    let claimed =
        dpo(&["check", "-", "-o", "json", "--alb-ingress-class", "internal-alb"], Some(&other_class));
    assert_eq!(rules_of(&json(&claimed)), ["elbv2-predefined-security-policy-ssl-check"]);

    let bad = dpo(&["check", "-", "--alb-ingress-class", "Internal ALB"], Some(""));
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("--alb-ingress-class"), "{}", stderr(&bad));
}

/// A policy that would let unencrypted classes through.
const LENIENT_POLICY: &str = "apiVersion: dpo.dev/v1alpha1\nkind: EncryptedVolumePolicy\nmetadata: {name: lenient}\nspec: {requireEncryption: false, checkAccountDefault: false}\n";

/// A directory with the change under review (`change.yaml`) and the trusted policy
/// (`policies/strict.yaml`).
fn repository(change: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("change.yaml"), change).unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    let strict = LENIENT_POLICY
        .replace("lenient", "strict")
        .replace("requireEncryption: false", "requireEncryption: true");
    std::fs::write(dir.path().join("policies/strict.yaml"), strict).unwrap();
    dir
}

#[test]
fn with_policy_files_only_they_count_and_policies_among_the_inputs_are_findings() {
    let repo = repository(&format!("{LENIENT_POLICY}---\n{UNENCRYPTED_CLASS}"));
    let (root, policies) = (repo.path().to_str().unwrap(), repo.path().join("policies"));
    // The trusted policy is among the inputs too, and counts as trusted there.
    let output = dpo(&["check", root, "--policy", policies.to_str().unwrap(), "-o", "json"], None);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = json(&output);
    let mut rules = rules_of(&report);
    rules.sort();
    assert_eq!(rules, ["policy-in-input", "storageclass-encrypted"], "{report}");
    let finding =
        report["findings"].as_array().unwrap().iter().find(|f| f["rule"] == "policy-in-input").unwrap();
    assert_eq!(finding["resource"]["name"], "lenient");
    assert_eq!(finding["severity"], "high");
    assert!(finding["message"].as_str().unwrap().contains("change.yaml:1"), "{finding}");
    assert!(!stderr(&output).contains("warning"), "{}", stderr(&output));
}

#[test]
fn without_policy_files_policies_among_the_inputs_are_applied_with_a_warning() {
    let output =
        dpo(&["check", "-", "-o", "json"], Some(&format!("{LENIENT_POLICY}---\n{UNENCRYPTED_CLASS}")));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(rules_of(&json(&output)), Vec::<String>::new());
    let warning = stderr(&output);
    assert!(warning.contains("warning: <stdin>:1: EncryptedVolumePolicy lenient"), "{warning}");
    assert!(warning.contains("--policy"), "{warning}");
}

#[test]
fn a_policy_file_holds_only_policies() {
    let repo = repository(UNENCRYPTED_CLASS);
    let change = repo.path().join("change.yaml");
    let output = dpo(&["check", "-", "--policy", change.to_str().unwrap()], Some(UNENCRYPTED_CLASS));
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(message.contains(&format!("{}:1:", change.display())), "{message}");
    assert!(message.contains("StorageClass plain is not a policy"), "{message}");
}

#[test]
fn stdin_multi_document_with_comments_and_empty_documents() {
    let stream = format!("# leading comment\n---\n---\n{UNENCRYPTED_CLASS}...\n---\n# only a comment\n");
    let output = dpo(&["check", "-", "-o", "json"], Some(&stream));
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(rules_of(&json(&output)), ["storageclass-encrypted"]);
}

#[test]
fn list_kinds_and_json_files_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let list = serde_json::json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": [serde_yaml::from_str::<serde_json::Value>(UNENCRYPTED_CLASS).unwrap()]
    });
    std::fs::write(dir.path().join("list.json"), list.to_string()).unwrap();
    std::fs::write(dir.path().join("ignored.txt"), "not a manifest").unwrap();
    let output = dpo(&["check", dir.path().to_str().unwrap(), "-o", "json"], None);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(rules_of(&json(&output)), ["storageclass-encrypted"]);
}

#[test]
fn fail_on_threshold_sets_the_exit_code() {
    let output = dpo(&["check", "-", "--fail-on", "critical", "-o", "json"], Some(UNENCRYPTED_CLASS));
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(rules_of(&json(&output)), ["storageclass-encrypted"]);
}

#[test]
fn compliant_input_exits_zero() {
    let output = dpo(&["check", "deploy/examples/wordpress", "-o", "json"], None);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(rules_of(&json(&output)), Vec::<String>::new());
}

fn assert_bad_input(stdin: &str, expected: &[&str]) {
    let output = dpo(&["check", "-"], Some(stdin));
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let message = stderr(&output);
    for part in expected {
        assert!(message.contains(part), "{part:?} not in {message}");
    }
}

#[test]
fn bad_input_names_file_line_and_field() {
    assert_bad_input("key: [unclosed\n", &["<stdin>:", "not valid YAML"]);
    assert_bad_input("just: a map\n", &["not a Kubernetes object"]);
    assert_bad_input(
        "apiVersion: dpo.dev/v9\nkind: ProtectedSecret\nmetadata: {name: x}\n",
        &["unknown dpo.dev object"],
    );
    let wrong_type = "---\napiVersion: dpo.dev/v1alpha1\nkind: ProtectedSecret\nmetadata: {name: db, namespace: shop}\nspec:\n  source: {secretId: shop/db}\n  dataFrom: {extract: true}\n  policy:\n    rotation:\n      maxIntervalDays: lots\n";
    assert_bad_input(wrong_type, &["<stdin>:10:", "spec.policy.rotation.maxIntervalDays", "invalid type"]);
    let conflicting = "apiVersion: dpo.dev/v1alpha1\nkind: ProtectedSecret\nmetadata: {name: db, namespace: shop}\nspec:\n  source: {secretId: shop/db, versionStage: AWSCURRENT, versionId: abc}\n  dataFrom: {extract: true}\n";
    assert_bad_input(conflicting, &["spec.source.versionId", "keep one of versionId and versionStage"]);
}

#[test]
fn a_boolean_or_number_in_a_map_of_strings_is_bad_input() {
    // kubectl sends `true` as a JSON boolean, which the apiserver refuses in parameters.
    let class = UNENCRYPTED_CLASS.replace("  type: gp3\n", "  type: gp3\n  encrypted: true\n");
    assert_bad_input(
        &class,
        &[
            "<stdin>:",
            "parameters.encrypted: expected a string, found the boolean true; quote it: encrypted: \"true\"",
        ],
    );
    let annotated = UNENCRYPTED_CLASS
        .replace("  name: plain\n", "  name: plain\n  annotations: {example.com/enabled: on}\n");
    assert_bad_input(
        &annotated,
        &["metadata.annotations.example.com/enabled", "kubectl reads as the boolean true"],
    );
}

#[test]
fn ingress_class_params_without_spec_are_read() {
    for api_version in ["elbv2.k8s.aws/v1beta1", "eks.amazonaws.com/v1"] {
        let params =
            format!("apiVersion: {api_version}\nkind: IngressClassParams\nmetadata: {{name: bare}}\n");
        let output = dpo(&["check", "-", "-o", "json"], Some(&params));
        assert_eq!(output.status.code(), Some(0), "{api_version}: {}", stderr(&output));
    }
}

#[test]
fn a_selector_with_an_unknown_operator_is_bad_input() {
    let policy = "apiVersion: dpo.dev/v1alpha1\nkind: EncryptedVolumePolicy\nmetadata: {name: prod}\nspec:\n  storageClassSelector:\n    matchExpressions: [{key: tier, operator: Gt, values: [\"1\"]}]\n";
    assert_bad_input(
        &format!("{policy}---\n{UNENCRYPTED_CLASS}"),
        &[
            "spec.storageClassSelector.matchExpressions[0].operator",
            "`Gt`",
            "`In`, `NotIn`, `Exists`, `DoesNotExist`",
        ],
    );
}

/// Runs `dpo check` over one file holding `body`, expecting bad input that names the file.
fn assert_bad_file(body: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rendered.yaml");
    std::fs::write(&path, body).unwrap();
    let output = dpo(&["check", path.to_str().unwrap()], None);
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{}: {message}", &body[..body.len().min(200)]);
    assert!(message.contains(&format!("{}:", path.display())), "{message}");
}

#[test]
fn pathologically_nested_yaml_is_bad_input_not_a_crash() {
    let class = "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: deep\nprovisioner: ebs.csi.aws.com\n";
    let depth = 100_000;
    assert_bad_file(&format!("{class}parameters:\n  a: {}{}\n", "[".repeat(depth), "]".repeat(depth)));
    assert_bad_file(&format!("{class}parameters: {}1{}\n", "{a: ".repeat(depth), "}".repeat(depth)));
    assert_bad_file(&format!("{class}mountOptions:\n  {}x\n", "- ".repeat(depth)));
    assert_bad_file(&format!("{}{}\n", "[".repeat(depth), "]".repeat(depth)));
    let config_map = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deep\ndata:\n";
    assert_bad_file(&format!("{config_map}  a:\n    {}x{}\n", "[".repeat(depth), "]".repeat(depth)));
    // Aliases that expand a billion-fold.
    let mut laughs = format!("{config_map}  a0: &a0 [x, x, x, x, x, x, x, x, x]\n");
    for level in 1..10 {
        let refs = vec![format!("*a{}", level - 1); 9].join(", ");
        laughs.push_str(&format!("  a{level}: &a{level} [{refs}]\n"));
    }
    assert_bad_file(&laughs);
}

#[test]
fn a_broken_document_of_a_kind_no_rule_governs_is_bad_input() {
    // `helm template` output: documents no policy reads, each broken in its own way.
    let stream = format!(
        "---\n# Source: app/templates/cm.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  settings: [unclosed\n---\n{UNENCRYPTED_CLASS}"
    );
    assert_bad_input(
        &stream,
        &["<stdin>:9: document 1: invalid ConfigMap", "expected ',' or ']', while parsing a flow sequence"],
    );
    let duplicate = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: a\n  name: b\n";
    assert_bad_input(duplicate, &["<stdin>:4:", "invalid Deployment", "duplicate entry with key \"name\""]);
    let tab = "apiVersion: v1\nkind: Secret\nmetadata:\n\tname: x\n";
    assert_bad_input(tab, &["<stdin>:4:", "invalid Secret"]);
}

#[test]
fn keep_going_reports_the_good_files_next_to_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..100 {
        let body = if i == 42 {
            "apiVersion: [broken\n".to_string()
        } else {
            UNENCRYPTED_CLASS.replace("plain", &format!("class-{i}"))
        };
        std::fs::write(dir.path().join(format!("sc-{i:03}.yaml")), body).unwrap();
    }
    let path = dir.path().to_str().unwrap();
    let stopped = dpo(&["check", path, "-o", "json"], None);
    assert_eq!(stopped.status.code(), Some(2));
    assert!(stopped.stdout.is_empty());
    assert!(stderr(&stopped).contains(&format!("{}", Path::new(path).join("sc-042.yaml").display())));

    let kept_going = dpo(&["check", path, "-o", "json", "--keep-going"], None);
    assert_eq!(kept_going.status.code(), Some(2));
    assert_eq!(rules_of(&json(&kept_going)).len(), 99);
}

#[test]
fn usage_errors_exit_two() {
    assert_eq!(dpo(&["check"], None).status.code(), Some(2));
    assert_eq!(dpo(&["check", "-", "--fail-on", "severe"], Some("")).status.code(), Some(2));
    let missing = dpo(&["check", "no/such/dir"], None);
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("no/such/dir"));
}

#[test]
fn controller_names_a_bad_secret_namespace_from_the_environment_and_exits_two() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_dpo"))
        .args(["controller", "--leader-election=false", "--log-format=text"])
        .env("DPO_SECRET_NAMESPACES", "shop,Payments")
        .output()
        .expect("dpo runs");
    let log = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{log}");
    assert!(log.contains(r#"invalid --secret-namespaces: "Payments" is not a namespace name"#), "{log}");
}
