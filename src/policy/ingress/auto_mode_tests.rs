//! EKS Auto Mode load balancers: `eks.amazonaws.com/alb` IngressClasses with their
//! `eks.amazonaws.com/v1` IngressClassParams, and `eks.amazonaws.com/nlb` Services, judged by the
//! same rules as the self-managed controller's.

use super::AlbDefaults;
use super::test_support::*;
use crate::policy::Rule;

const OTHER: &str = "arn:aws:acm:us-east-1:123456789012:certificate/other";

fn auto_mode(params_spec: &str, ingresses: &[String]) -> String {
    let ingresses: Vec<String> =
        ingresses.iter().map(|i| i.replace("ingressClassName: alb", "ingressClassName: auto")).collect();
    format!(
        "apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {{name: auto}}
spec:
  controller: eks.amazonaws.com/alb
  parameters: {{apiGroup: eks.amazonaws.com, kind: IngressClassParams, name: auto}}
---
apiVersion: eks.amazonaws.com/v1
kind: IngressClassParams
metadata: {{name: auto}}
spec: {params_spec}
---
{}",
        ingresses.join("\n---\n")
    )
}

#[test]
fn auto_mode_params_certificates_and_policy_apply() {
    let ingress = shop(&[BOTH_PORTS, REDIRECT]);
    let params =
        format!("{{sslPolicy: ELBSecurityPolicy-TLS13-1-2-2021-06, certificateARNs: [{ARN}, {OTHER}]}}");
    let certs = [
        issued(ARN, &["shop.example.com"], "2026-01-01T00:00:00Z"),
        issued(OTHER, &["*.example.com"], "2026-01-01T00:00:00Z"),
    ];
    let evaluation = evaluate(&auto_mode(&params, &[ingress]), &policy(), &facts(&certs, &[]));
    assert!(findings(&evaluation).is_empty(), "{:?}", findings(&evaluation));
    assert!(judgement(&evaluation, "web").checked.contains(&Rule::AcmCertificateStatus));
}

#[test]
fn auto_mode_violations_point_at_its_fields() {
    let iam = "arn:aws:iam::123456789012:server-certificate/shop";
    let params = format!("{{sslPolicy: ELBSecurityPolicy-TLS-1-1-2017-01, certificateARNs: [{iam}]}}");
    let found =
        findings(&evaluate(&auto_mode(&params, &[shop(&[BOTH_PORTS, REDIRECT])]), &policy(), &offline()));
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found.iter().any(|f| f.starts_with("elbv2-acm-certificate-required shop/web")
        && f.contains("Set `spec.certificateARNs: arn:aws:acm:<region>:<account>:certificate/<id>` in IngressClassParams `auto`")), "{found:?}");
    assert!(found.iter().any(|f| f.starts_with("elbv2-predefined-security-policy-ssl-check shop/web")
        && f.contains("accepts TLS 1.1")));
}

#[test]
fn auto_mode_ignores_the_group_name_annotation() {
    // Two Ingresses naming one group by annotation stay two ALBs under Auto Mode: one's weak
    // policy is not blamed on the other.
    let group = ("alb.ingress.kubernetes.io/group.name", "shop");
    let weak = ("alb.ingress.kubernetes.io/ssl-policy", "ELBSecurityPolicy-2016-08");
    let a = alb_ingress("a", "a.example.com", &[BOTH_PORTS, CERTIFICATE, REDIRECT, MODERN_POLICY, group]);
    let b = alb_ingress("b", "b.example.com", &[BOTH_PORTS, CERTIFICATE, REDIRECT, weak, group]);
    let evaluation = evaluate(&auto_mode("{}", &[a.clone(), b.clone()]), &policy(), &offline());
    assert!(!judgement(&evaluation, "a").checked.contains(&Rule::AlbIngressGroupConsistent));
    assert!(judgement(&evaluation, "a").findings.is_empty());

    // spec.group.name does group them: the conflicting policies are one ALB's.
    let evaluation = evaluate(&auto_mode("{group: {name: shop}}", &[a, b]), &policy(), &offline());
    let found = findings(&evaluation);
    assert!(found.iter().any(|f| f.starts_with("alb-ingress-group-consistent")), "{found:?}");
}

fn service(class: Option<&str>) -> String {
    let class = class.map(|c| format!("\n  loadBalancerClass: {c}")).unwrap_or_default();
    format!(
        "apiVersion: v1
kind: Service
metadata: {{name: api, namespace: shop}}
spec:
  type: LoadBalancer{class}
  ports: [{{name: https, port: 443, protocol: TCP}}]"
    )
}

#[test]
fn auto_mode_nlb_services_are_judged() {
    let found = findings(&evaluate(&service(Some("eks.amazonaws.com/nlb")), &policy(), &offline()));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0]
            .starts_with("elbv2-acm-certificate-required shop/api: port 443 (https) of the NLB is plain TCP")
    );

    // Without a class, Auto Mode's admission gives the Service its NLB; elsewhere it is no NLB.
    let unclassed = service(None);
    assert!(findings(&evaluate(&unclassed, &policy(), &offline())).is_empty());
    let auto = AlbDefaults { eks_auto_mode: true, ..AlbDefaults::default() };
    assert_eq!(findings(&evaluate_with(&unclassed, &policy(), &offline(), &auto)).len(), 1);

    // Another class stays another controller's, Auto Mode or not.
    let other = service(Some("example.com/lb"));
    assert!(findings(&evaluate_with(&other, &policy(), &offline(), &auto)).is_empty());
}

#[test]
fn annotations_on_an_auto_mode_ingress_class_are_not_read() {
    // Auto Mode takes configuration from IngressClassParams only; is-default-class is
    // Kubernetes', and still gives class-less Ingresses the class.
    let manifests = auto_mode("{scheme: internet-facing}", &[shop(&COMPLIANT)]).replacen(
        "metadata: {name: auto}\nspec:\n  controller",
        "metadata:
  name: auto
  annotations:
    ingressclass.kubernetes.io/is-default-class: \"true\"
    alb.ingress.kubernetes.io/wafv2-acl-arn: arn:aws:wafv2:us-east-1:123456789012:regional/webacl/shop/a1b2
spec:
  controller",
        1,
    );
    let classless = manifests.replace("  ingressClassName: auto\n", "");
    let require_waf = crate::api::TlsIngressPolicySpec { require_waf: true, ..policy() };
    let found = findings(&evaluate(&classless, &require_waf, &offline()));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("alb-waf-enabled shop/web: the ALB is internet-facing and has no WAFv2 Web ACL")
    );
}
