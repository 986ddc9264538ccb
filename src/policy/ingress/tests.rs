//! End-to-end behaviour of the TLS ingress policy over manifests.

use super::test_support::*;
use crate::api::{TlsIngressPolicySpec, TlsVersion};
use crate::policy::{Rule, Verdict};

#[test]
fn compliant_ingress_offline_has_no_findings_and_skips_aws_rules() {
    let evaluation = evaluate(&shop(&COMPLIANT), &policy(), &offline());
    let judgement = judgement(&evaluation, "web");
    assert!(judgement.findings.is_empty(), "{:?}", findings(&evaluation));
    assert_eq!(
        judgement.checked,
        [
            Rule::AlbIngressAnnotationsValid,
            Rule::Elbv2AcmCertificateRequired,
            Rule::Elbv2PredefinedSecurityPolicySslCheck,
            Rule::AlbHttpToHttpsRedirectionCheck,
        ]
    );
    assert_eq!(
        judgement.skipped,
        [
            Rule::AcmCertificateStatus,
            Rule::AcmCertificateExpirationCheck,
            Rule::AcmCertificateRsaCheck,
            Rule::AcmCertificateHostCoverage
        ]
    );
}

#[test]
fn compliant_ingress_with_facts_checks_every_rule() {
    let facts = facts(&[issued(ARN, &["*.example.com"], "2026-01-01T00:00:00Z")], &[]);
    let evaluation = evaluate(&shop(&COMPLIANT), &policy(), &facts);
    let judgement = judgement(&evaluation, "web");
    assert!(judgement.findings.is_empty(), "{:?}", findings(&evaluation));
    assert!(judgement.skipped.is_empty());
    assert_eq!(judgement.checked.len(), 8);
}

#[test]
fn without_annotations_the_alb_is_plain_http() {
    let found = findings(&evaluate(&shop(&[]), &policy(), &offline()));
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].starts_with(
        "elbv2-acm-certificate-required shop/web: the ALB has no HTTPS listener: all its traffic is plaintext HTTP"
    ));
    assert!(found[0].contains(
        "alb.ingress.kubernetes.io/certificate-arn: arn:aws:acm:<region>:<account>:certificate/<id>"
    ));
    assert!(found[1].starts_with(
        "alb-http-to-https-redirection-check shop/web: HTTP listener 80 serves the Ingress's paths without redirecting"
    ));
    assert!(found[1].ends_with("Set `alb.ingress.kubernetes.io/ssl-redirect: \"443\"` (with an HTTPS port 443 in alb.ingress.kubernetes.io/listen-ports)"));
}

/// The controller fails to build an ALB whose listen-ports it cannot read: that is the one finding,
/// not also a missing HTTPS listener that no fix of the certificate would add.
#[test]
fn an_unreadable_annotation_is_one_finding_not_one_per_listener_rule() {
    for bad in [
        ("alb.ingress.kubernetes.io/listen-ports", r#"[{"HTTPS":443},{"HTTP":80"#),
        ("alb.ingress.kubernetes.io/ssl-redirect", "https"),
    ] {
        let mut annotations = COMPLIANT.to_vec();
        annotations.retain(|(key, _)| *key != bad.0);
        annotations.push(bad);
        let evaluation = evaluate(&shop(&annotations), &policy(), &offline());
        let found = findings(&evaluation);
        assert_eq!(found.len(), 1, "{found:?}");
        // The value is quoted, not a panic.
        assert!(
            found[0].starts_with(&format!("alb-ingress-annotations-valid shop/web: {}: ", bad.0)),
            "{found:?}"
        );
        assert!(found[0].contains("the controller fails to build the ALB"), "{found:?}");
        assert_eq!(judgement(&evaluation, "web").checked, [Rule::AlbIngressAnnotationsValid]);
    }
}

#[test]
fn a_certificate_alone_makes_the_default_listener_https_443() {
    // No HTTP listener, so nothing to redirect; the controller's default policy is TLS 1.0.
    let found = findings(&evaluate(&shop(&[CERTIFICATE]), &policy(), &offline()));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with(
        "elbv2-predefined-security-policy-ssl-check shop/web: HTTPS listener 443 uses security policy \
         ELBSecurityPolicy-2016-08 (the controller's default, as none is set), which accepts TLS 1.0"
    ));
    assert!(found[0].ends_with(
        "Set `alb.ingress.kubernetes.io/ssl-policy: ELBSecurityPolicy-TLS13-1-2-2021-06` on the Ingress"
    ));
}

#[test]
fn legacy_redirect_action_satisfies_the_redirect_rule() {
    let yaml = format!(
        "kind: Ingress
metadata:
  name: web
  namespace: shop
  annotations:
    alb.ingress.kubernetes.io/listen-ports: '[{{\"HTTP\": 80}}, {{\"HTTPS\": 443}}]'
    alb.ingress.kubernetes.io/certificate-arn: {ARN}
    alb.ingress.kubernetes.io/ssl-policy: ELBSecurityPolicy-TLS13-1-2-2021-06
    alb.ingress.kubernetes.io/actions.ssl-redirect: >-
      {{\"Type\": \"redirect\", \"RedirectConfig\": {{\"Protocol\": \"HTTPS\", \"Port\": \"443\", \"StatusCode\": \"HTTP_301\"}}}}
spec:
  ingressClassName: alb
  rules:
    - http:
        paths:
          - {{path: /*, pathType: ImplementationSpecific, backend: {{service: {{name: ssl-redirect, port: {{name: use-annotation}}}}}}}}
          - {{path: /*, pathType: ImplementationSpecific, backend: {{service: {{name: web, port: {{number: 80}}}}}}}}"
    );
    let evaluation = evaluate(&yaml, &policy(), &offline());
    assert!(findings(&evaluation).is_empty(), "{:?}", findings(&evaluation));
    assert!(judgement(&evaluation, "web").checked.contains(&Rule::AlbHttpToHttpsRedirectionCheck));
}

#[test]
fn redirect_rule_is_not_judged_when_the_policy_does_not_require_it() {
    let lenient = TlsIngressPolicySpec { require_https_redirect: false, ..policy() };
    let evaluation = evaluate(&shop(&[BOTH_PORTS, CERTIFICATE, MODERN_POLICY]), &lenient, &offline());
    assert!(findings(&evaluation).is_empty());
    assert!(!judgement(&evaluation, "web").checked.contains(&Rule::AlbHttpToHttpsRedirectionCheck));
}

#[test]
fn ssl_redirect_to_a_port_without_https_listener_is_invalid() {
    let found = findings(&evaluate(
        &shop(&[BOTH_PORTS, CERTIFICATE, MODERN_POLICY, ("alb.ingress.kubernetes.io/ssl-redirect", "8443")]),
        &policy(),
        &offline(),
    ));
    // The controller cannot build this ALB: only the cause is reported, not its consequences.
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("ssl-redirect redirects to port 8443, where the ALB has no listener"));
    assert!(found[0].ends_with("Set `alb.ingress.kubernetes.io/ssl-redirect: \"443\"`, an HTTPS port listed in alb.ingress.kubernetes.io/listen-ports"));
}

#[test]
fn min_tls_version_and_allowed_policies() {
    let strict = TlsIngressPolicySpec { min_tls_version: TlsVersion::Tls13, ..policy() };
    let found = findings(&evaluate(&shop(&COMPLIANT), &strict, &offline()));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("accepts TLS 1.2, below the policy's minimum TLS 1.3"));
    assert!(found[0].contains("ssl-policy: ELBSecurityPolicy-TLS13-1-3-2021-06"));

    let allowlisted = TlsIngressPolicySpec {
        allowed_ssl_policies: vec!["ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09".into()],
        ..policy()
    };
    let found = findings(&evaluate(&shop(&COMPLIANT), &allowlisted, &offline()));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("is not in the policy's allowedSslPolicies"));
    assert!(found[0].contains("ssl-policy: ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09"));

    let custom = ("alb.ingress.kubernetes.io/ssl-policy", "MyOwnPolicy");
    let found =
        findings(&evaluate(&shop(&[BOTH_PORTS, CERTIFICATE, REDIRECT, custom]), &policy(), &offline()));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("MyOwnPolicy, which is not an ELB predefined security policy"));
}

#[test]
fn post_quantum_is_required_of_annotations_and_ingress_class_params_alike() {
    let post_quantum = TlsIngressPolicySpec { require_post_quantum: true, ..policy() };
    let found = findings(&evaluate(&shop(&COMPLIANT), &post_quantum, &offline()));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        found[0],
        "elbv2-predefined-security-policy-ssl-check shop/web: HTTPS listener 443 uses security policy \
         ELBSecurityPolicy-TLS13-1-2-2021-06, which offers no post-quantum key exchange (the policy sets \
         requirePostQuantum) => Set `alb.ingress.kubernetes.io/ssl-policy: ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09` \
         on the Ingress"
    );
    let pq = ("alb.ingress.kubernetes.io/ssl-policy", "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09");
    let compliant = shop(&[BOTH_PORTS, CERTIFICATE, REDIRECT, pq]);
    assert!(findings(&evaluate(&compliant, &post_quantum, &offline())).is_empty());

    // The controller's default policy is judged too, and so is the class's, which wins.
    let defaulted =
        findings(&evaluate(&shop(&[BOTH_PORTS, CERTIFICATE, REDIRECT]), &post_quantum, &offline()));
    assert!(defaulted[0].contains("ELBSecurityPolicy-2016-08 (the controller's default"), "{defaulted:?}");
    let by_class = with_params("{sslPolicy: ELBSecurityPolicy-TLS13-1-3-FIPS-2023-04}", &compliant);
    let found = findings(&evaluate(&by_class, &post_quantum, &offline()));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0]
            .contains("ELBSecurityPolicy-TLS13-1-3-FIPS-2023-04, which offers no post-quantum key exchange")
    );
    assert!(
        found[0]
            .contains("`spec.sslPolicy: ELBSecurityPolicy-TLS13-1-3-FIPS-PQ-2025-09` in IngressClassParams")
    );
}

const SHARED: (&str, &str) = ("alb.ingress.kubernetes.io/group.name", "shared");

#[test]
fn group_members_share_redirect_and_certificates() {
    let web = shop(&[SHARED, BOTH_PORTS, CERTIFICATE, REDIRECT, MODERN_POLICY]);
    let certificate = issued(ARN, &["shop.example.com", "api.example.com"], "2026-01-01T00:00:00Z");

    // `api` only listens on HTTP 80, yet the group's ALB redirects it: ssl-redirect is group-wide.
    let http_only = format!("{web}\n---\n{}", alb_ingress("api", "api.example.com", &[SHARED]));
    let evaluation = evaluate(&http_only, &policy(), &facts(std::slice::from_ref(&certificate), &[]));
    assert!(findings(&evaluation).is_empty(), "{:?}", findings(&evaluation));
    assert!(judgement(&evaluation, "api").checked.contains(&Rule::AlbIngressGroupConsistent));

    // On port 443 without a certificate of its own, `api` gets the ones discovered for its host.
    let discovering = format!("{web}\n---\n{}", alb_ingress("api", "api.example.com", &[SHARED, BOTH_PORTS]));
    let discovered = facts(std::slice::from_ref(&certificate), &[("api.example.com", &[ARN])]);
    assert!(findings(&evaluate(&discovering, &policy(), &discovered)).is_empty());

    // Hosts of every member on the listener must be covered by the listener's certificates.
    let sharing =
        format!("{web}\n---\n{}", alb_ingress("api", "api.example.com", &[SHARED, BOTH_PORTS, CERTIFICATE]));
    let shop_only = issued(ARN, &["shop.example.com"], "2026-01-01T00:00:00Z");
    let found = findings(&evaluate(&sharing, &policy(), &facts(&[shop_only], &[])));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with(
        "acm-certificate-host-coverage shop/api: IngressGroup shared: no certificate on HTTPS listener 443 covers \
         host api.example.com"
    ));
}

#[test]
fn group_conflicts_are_reported_on_the_member_that_causes_them() {
    let weak = ("alb.ingress.kubernetes.io/ssl-policy", "ELBSecurityPolicy-TLS13-1-2-Res-2021-06");
    let yaml = format!(
        "{}\n---\n{}\n---\n{}",
        alb_ingress("a", "a.example.com", &[SHARED, BOTH_PORTS, CERTIFICATE, REDIRECT, MODERN_POLICY]),
        alb_ingress(
            "b",
            "b.example.com",
            &[SHARED, BOTH_PORTS, CERTIFICATE, weak, ("alb.ingress.kubernetes.io/ssl-redirect", "8443")]
        ),
        alb_ingress(
            "c",
            "c.example.com",
            &[SHARED, ("alb.ingress.kubernetes.io/listen-ports", r#"[{"HTTP": 443}]"#)]
        )
    );
    let found = findings(&evaluate(&yaml, &policy(), &offline()));
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(found.iter().all(|f| f.starts_with("alb-ingress-group-consistent")));
    assert!(found[0].starts_with(
        "alb-ingress-group-consistent shop/b: IngressGroup shared: HTTPS listener 443 gets security policy \
         ELBSecurityPolicy-TLS13-1-2-Res-2021-06 from Ingress shop/b but ELBSecurityPolicy-TLS13-1-2-2021-06 from \
         Ingress shop/a"
    ));
    assert!(found[1].starts_with(
        "alb-ingress-group-consistent shop/b: IngressGroup shared: alb.ingress.kubernetes.io/ssl-redirect is 8443 on \
         Ingress shop/b but 443 on Ingress shop/a"
    ));
    assert!(found[2].starts_with(
        "alb-ingress-group-consistent shop/c: IngressGroup shared: listen port 443 is HTTP on Ingress shop/c but \
         HTTPS on Ingress shop/a"
    ));
}

#[test]
fn group_order_decides_which_member_a_conflict_is_blamed_on() {
    let first = ("alb.ingress.kubernetes.io/group.order", "-1");
    let weak = ("alb.ingress.kubernetes.io/ssl-policy", "ELBSecurityPolicy-TLS13-1-2-Res-2021-06");
    let yaml = format!(
        "{}\n---\n{}",
        alb_ingress("a", "a.example.com", &[SHARED, BOTH_PORTS, CERTIFICATE, REDIRECT, MODERN_POLICY]),
        alb_ingress("b", "b.example.com", &[SHARED, first, BOTH_PORTS, CERTIFICATE, weak])
    );
    let found = findings(&evaluate(&yaml, &policy(), &offline()));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("alb-ingress-group-consistent shop/a:"));
}

#[test]
fn findings_caused_by_an_exempt_member_go_to_a_judged_one() {
    let exempt = shop(&[
        SHARED,
        BOTH_PORTS,
        CERTIFICATE,
        REDIRECT,
        ("alb.ingress.kubernetes.io/ssl-policy", "ELBSecurityPolicy-2016-08"),
    ])
    .replace("metadata:\n", "metadata:\n  labels: {dpo.dev/exempt: legacy clients}\n");
    let yaml = format!("{exempt}\n---\n{}", alb_ingress("api", "api.example.com", &[SHARED, BOTH_PORTS]));
    let evaluation = evaluate(&yaml, &policy(), &offline());
    assert_eq!(verdict(&evaluation, "web"), &Verdict::Exempt("legacy clients".into()));
    let found = findings(&evaluation);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("elbv2-predefined-security-policy-ssl-check shop/api: IngressGroup shared:")
    );
    assert!(found[0].contains("(set on Ingress shop/web, which this policy does not judge)"));
}

const PARAMS_CLASS: &str = "kind: IngressClass
metadata: {name: shared}
spec:
  controller: ingress.k8s.aws/alb
  parameters: {apiGroup: elbv2.k8s.aws, kind: IngressClassParams, name: shared}";

fn with_params(params_spec: &str, ingress: &str) -> String {
    format!(
        "{PARAMS_CLASS}
---
apiVersion: elbv2.k8s.aws/v1beta1
kind: IngressClassParams
metadata: {{name: shared}}
spec: {params_spec}
---
{}",
        ingress.replace("ingressClassName: alb", "ingressClassName: shared")
    )
}

#[test]
fn ingress_class_params_override_annotations() {
    // The params' policy and certificate replace the annotations' weak policy and IAM certificate.
    let annotated = shop(&[
        BOTH_PORTS,
        REDIRECT,
        ("alb.ingress.kubernetes.io/ssl-policy", "ELBSecurityPolicy-2016-08"),
        ("alb.ingress.kubernetes.io/certificate-arn", "arn:aws:iam::123456789012:server-certificate/shop"),
    ]);
    let params = format!("{{sslPolicy: ELBSecurityPolicy-TLS13-1-2-2021-06, certificateArn: [{ARN}]}}");
    let found = findings(&evaluate(&with_params(&params, &annotated), &policy(), &offline()));
    assert!(found.is_empty(), "{found:?}");

    // A weak policy in the params wins over a good annotation, and the fix points at the params.
    let found = findings(&evaluate(
        &with_params("{sslPolicy: ELBSecurityPolicy-TLS-1-1-2017-01}", &shop(&COMPLIANT)),
        &policy(),
        &offline(),
    ));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("uses security policy ELBSecurityPolicy-TLS-1-1-2017-01, which accepts TLS 1.1")
    );
    assert!(found[0].ends_with(
        "Set `spec.sslPolicy: ELBSecurityPolicy-TLS13-1-2-2021-06` in IngressClassParams `shared` (it overrides the \
         alb.ingress.kubernetes.io/ssl-policy annotation)"
    ));
}

#[test]
fn ingress_class_params_certificate_makes_the_default_listener_https() {
    let plain = shop(&[MODERN_POLICY]);
    let found = findings(&evaluate(
        &with_params(&format!("{{certificateArn: [{ARN}]}}"), &plain),
        &policy(),
        &offline(),
    ));
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn ingress_class_params_ssl_redirect_port() {
    let no_redirect = shop(&[BOTH_PORTS, CERTIFICATE, MODERN_POLICY]);
    let found =
        findings(&evaluate(&with_params("{sslRedirectPort: \"443\"}", &no_redirect), &policy(), &offline()));
    assert!(found.is_empty(), "{found:?}");

    // An unparsable port makes the controller drop the redirect for the whole ALB.
    let redirecting = shop(&COMPLIANT);
    let found =
        findings(&evaluate(&with_params("{sslRedirectPort: https}", &redirecting), &policy(), &offline()));
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].contains("sslRedirectPort of IngressClassParams: `https` is not a port number"));
    assert!(found[1].starts_with("alb-http-to-https-redirection-check"));
}

#[test]
fn missing_ingress_class_params_are_reported() {
    let yaml = format!(
        "{PARAMS_CLASS}\n---\n{}",
        shop(&COMPLIANT).replace("ingressClassName: alb", "ingressClassName: shared")
    );
    let evaluation = evaluate(&yaml, &policy(), &offline());
    let found = findings(&evaluation);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("references IngressClassParams `shared`, which does not exist"));
    assert_eq!(evaluation.findings().next().unwrap().severity, crate::api::Severity::Medium);
}

#[test]
fn default_ingress_class_and_other_controllers() {
    let classless = shop(&COMPLIANT).replace("  ingressClassName: alb\n", "");
    let alb_default = "kind: IngressClass
metadata:
  name: public
  annotations: {ingressclass.kubernetes.io/is-default-class: \"true\"}
spec: {controller: ingress.k8s.aws/alb}";
    let evaluation = evaluate(&format!("{alb_default}\n---\n{classless}"), &policy(), &offline());
    assert!(matches!(verdict(&evaluation, "web"), Verdict::Judged(_)));

    let evaluation = evaluate(&classless, &policy(), &offline());
    assert_eq!(verdict(&evaluation, "web"), &Verdict::NotApplicable("the Ingress has no class".into()));

    let nginx = shop(&[]).replace("ingressClassName: alb", "ingressClassName: nginx");
    let evaluation = evaluate(&nginx, &policy(), &offline());
    assert!(
        matches!(verdict(&evaluation, "web"), Verdict::NotApplicable(reason) if reason.contains("`nginx`"))
    );
}

#[test]
fn exempt_label_and_selectors() {
    let exempt = shop(&[]).replace("metadata:\n", "metadata:\n  labels: {dpo.dev/exempt: migrating}\n");
    let evaluation = evaluate(&exempt, &policy(), &offline());
    assert_eq!(verdict(&evaluation, "web"), &Verdict::Exempt("migrating".into()));
    assert_eq!(evaluation.summary().exempt, 1);

    let labelled = shop(&[]).replace("metadata:\n", "metadata:\n  labels: {tier: public}\n");
    let selecting: TlsIngressPolicySpec =
        serde_yaml::from_str("ingressSelector: {matchLabels: {tier: public}}").unwrap();
    assert!(matches!(verdict(&evaluate(&labelled, &selecting, &offline()), "web"), Verdict::Judged(_)));
    assert_eq!(
        verdict(&evaluate(&shop(&[]), &selecting, &offline()), "web"),
        &Verdict::NotApplicable("not selected by the policy's ingressSelector".into())
    );

    let by_namespace: TlsIngressPolicySpec =
        serde_yaml::from_str("namespaceSelector: {matchLabels: {env: prod}}").unwrap();
    assert!(matches!(
        verdict(&evaluate(&shop(&[]), &by_namespace, &offline()), "web"),
        Verdict::NotApplicable(reason) if reason.contains("namespace `shop` is not among the inputs")
    ));
    let prod = "kind: Namespace\nmetadata: {name: shop, labels: {env: prod}}";
    let evaluation = evaluate(&format!("{prod}\n---\n{}", shop(&[])), &by_namespace, &offline());
    assert!(matches!(verdict(&evaluation, "web"), Verdict::Judged(_)));
    let dev = "kind: Namespace\nmetadata: {name: shop, labels: {env: dev}}";
    let evaluation = evaluate(&format!("{dev}\n---\n{}", shop(&[])), &by_namespace, &offline());
    assert!(
        matches!(verdict(&evaluation, "web"), Verdict::NotApplicable(reason) if reason.contains("not selected"))
    );

    // An empty namespaceSelector selects everything, so the Namespace object is not needed.
    let empty: TlsIngressPolicySpec = serde_yaml::from_str("namespaceSelector: {}").unwrap();
    assert!(matches!(verdict(&evaluate(&shop(&[]), &empty, &offline()), "web"), Verdict::Judged(_)));
}

#[test]
fn verdicts_follow_input_order_then_services() {
    let yaml = format!(
        "{}\n---\n{}\n---\nkind: Service\nmetadata: {{name: db, namespace: shop}}\n---\n{}",
        alb_ingress("z", "z.example.com", &[SHARED]),
        shop(&[]).replace("ingressClassName: alb", "ingressClassName: nginx"),
        alb_ingress("a", "a.example.com", &[SHARED])
    );
    let evaluation = evaluate(&yaml, &policy(), &offline());
    let names: Vec<&str> = evaluation.verdicts.iter().map(|v| v.resource.name.as_str()).collect();
    assert_eq!(names, ["z", "web", "a", "db"]);
}
