use crate::api::{LabelSelector, TlsIngressPolicySpec};
use crate::policy::Rule;
use crate::policy::ingress::test_support::*;
use crate::policy::{Fact, Verdict};

const MODERN: &str = "ELBSecurityPolicy-TLS13-1-2-2021-06";

fn class(name: &str, controller: &str) -> String {
    format!("kind: GatewayClass\nmetadata: {{name: {name}}}\nspec: {{controllerName: {controller}}}")
}

/// An ALB Gateway `edge` in `shop` with its own LoadBalancerConfiguration `edge`.
fn gateway(class: &str, listeners: &str) -> String {
    format!(
        "kind: Gateway
metadata: {{name: edge, namespace: shop}}
spec:
  gatewayClassName: {class}
  infrastructure: {{parametersRef: {{group: gateway.k8s.aws, kind: LoadBalancerConfiguration, name: edge}}}}
  listeners:
{listeners}"
    )
}

const HTTP: &str = "  - {name: http, port: 80, protocol: HTTP}";
const HTTPS: &str = "  - {name: https, port: 443, protocol: HTTPS, hostname: shop.example.com}";

fn configuration(entries: &str) -> String {
    format!(
        "kind: LoadBalancerConfiguration\nmetadata: {{name: edge, namespace: shop}}\nspec:\n  listenerConfigurations:\n{entries}"
    )
}

fn https_entry(policy: &str) -> String {
    format!("  - {{protocolPort: 'HTTPS:443', defaultCertificate: '{ARN}', sslPolicy: {policy}}}")
}

fn route(name: &str, section: &str, hostnames: &str, rules: &str) -> String {
    format!(
        "kind: HTTPRoute
metadata: {{name: {name}, namespace: shop}}
spec:
  parentRefs: [{{name: edge, sectionName: {section}}}]
  hostnames: [{hostnames}]
  rules: {rules}"
    )
}

const REDIRECTS: &str =
    "[{filters: [{type: RequestRedirect, requestRedirect: {scheme: https, statusCode: 301}}]}]";
const FORWARDS: &str = "[{backendRefs: [{name: shop, port: 80}]}]";

fn documents(parts: &[&str]) -> String {
    parts.join("\n---\n")
}

/// An ALB Gateway that does everything right: HTTPS with a configured certificate and a modern
/// policy, HTTP redirected, the content route on HTTPS.
fn compliant() -> String {
    documents(&[
        &class("aws-alb", "gateway.k8s.aws/alb"),
        &gateway("aws-alb", &format!("{HTTP}\n{HTTPS}")),
        &configuration(&https_entry(MODERN)),
        &route("redirect", "http", "", REDIRECTS),
        &route("shop", "https", "shop.example.com", FORWARDS),
    ])
}

fn known() -> crate::policy::FactSet {
    facts(&[issued(ARN, &["shop.example.com"], "2026-06-01T00:00:00Z")], &[])
}

fn gateway_judgement(
    yaml: &str,
    policy: &TlsIngressPolicySpec,
    facts: &dyn crate::policy::Facts,
) -> crate::policy::Judgement {
    match verdict(&evaluate(yaml, policy, facts), "edge") {
        Verdict::Judged(judgement) => judgement.clone(),
        other => panic!("the Gateway is judged: {other:?}"),
    }
}

#[test]
fn a_compliant_alb_gateway_passes_every_rule() {
    let judgement = gateway_judgement(&compliant(), &policy(), &known());
    assert!(judgement.findings.is_empty(), "{:?}", judgement.findings);
    for rule in [
        Rule::Elbv2AcmCertificateRequired,
        Rule::AlbHttpToHttpsRedirectionCheck,
        Rule::Elbv2PredefinedSecurityPolicySslCheck,
        Rule::AcmCertificateStatus,
        Rule::AcmCertificateExpirationCheck,
        Rule::AcmCertificateHostCoverage,
        Rule::AcmCertificateRsaCheck,
    ] {
        assert!(judgement.checked.contains(&rule), "{rule:?} checked: {:?}", judgement.checked);
    }
    assert!(judgement.skipped.is_empty(), "{:?}", judgement.skipped);
}

#[test]
fn offline_the_certificate_rules_are_skipped_not_passed() {
    let judgement = gateway_judgement(&compliant(), &policy(), &offline());
    assert!(judgement.findings.is_empty(), "{:?}", judgement.findings);
    for rule in
        [Rule::AcmCertificateStatus, Rule::AcmCertificateExpirationCheck, Rule::AcmCertificateHostCoverage]
    {
        assert!(judgement.skipped.contains(&rule), "{rule:?} skipped: {:?}", judgement.skipped);
        assert!(!judgement.checked.contains(&rule), "{rule:?} not checked");
    }
}

#[test]
fn an_http_route_that_does_not_redirect_is_a_finding() {
    let yaml = compliant().replace(REDIRECTS, FORWARDS);
    let found = findings(&evaluate(&yaml, &policy(), &known()));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with(
        "alb-http-to-https-redirection-check shop/edge: HTTPRoute shop/redirect serves plain HTTP on HTTP listener 80 \
         (rules[0]): no RequestRedirect filter with scheme https"
    ), "{found:?}");
    assert!(found[0].contains("type: RequestRedirect, requestRedirect: {scheme: https"), "{found:?}");

    // A route without sectionName attaches to every listener, the HTTP one included.
    let everywhere = compliant().replace("sectionName: https", "port: 80").replace(REDIRECTS, "[]");
    let found = findings(&evaluate(&everywhere, &policy(), &known()));
    assert!(
        found.iter().any(|f| f
            .contains("HTTPRoute shop/redirect serves plain HTTP on HTTP listener 80 (its default rule)")),
        "{found:?}"
    );

    // An HTTP listener no route attaches to serves nothing; the policy may not require redirects.
    let unrouted = documents(&[
        &class("aws-alb", "gateway.k8s.aws/alb"),
        &gateway("aws-alb", &format!("{HTTP}\n{HTTPS}")),
        &configuration(&https_entry(MODERN)),
    ]);
    assert!(findings(&evaluate(&unrouted, &policy(), &known())).is_empty());
    let lenient = TlsIngressPolicySpec { require_https_redirect: false, ..policy() };
    let judgement = gateway_judgement(&compliant().replace(REDIRECTS, FORWARDS), &lenient, &known());
    assert!(judgement.findings.is_empty(), "{:?}", judgement.findings);
    assert!(!judgement.checked.contains(&Rule::AlbHttpToHttpsRedirectionCheck));
}

#[test]
fn routes_from_namespaces_the_listener_does_not_allow_do_not_attach() {
    let foreign = route("redirect", "http", "", FORWARDS).replace("namespace: shop}", "namespace: web}");
    let foreign = foreign.replace("{name: edge,", "{name: edge, namespace: shop,");
    let yaml = documents(&[
        &class("aws-alb", "gateway.k8s.aws/alb"),
        &gateway("aws-alb", &format!("{HTTP}\n{HTTPS}")),
        &configuration(&https_entry(MODERN)),
        &foreign,
    ]);
    assert!(findings(&evaluate(&yaml, &policy(), &known())).is_empty());
    let all = yaml.replace("protocol: HTTP}", "protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}");
    let found = findings(&evaluate(&all, &policy(), &known()));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("HTTPRoute web/redirect serves plain HTTP"), "{found:?}");
}

#[test]
fn a_gateway_without_a_secure_listener_is_a_finding() {
    let yaml = documents(&[&class("aws-alb", "gateway.k8s.aws/alb"), &gateway("aws-alb", HTTP).replace("  infrastructure: {parametersRef: {group: gateway.k8s.aws, kind: LoadBalancerConfiguration, name: edge}}\n", "")]);
    let found = findings(&evaluate(&yaml, &policy(), &known()));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with(
        "elbv2-acm-certificate-required shop/edge: the Gateway has no HTTPS listener: all its traffic is plaintext"
    ), "{found:?}");
}

#[test]
fn security_policies_come_from_the_configuration_or_the_controller_default() {
    let weak = compliant().replace(MODERN, "ELBSecurityPolicy-2016-08");
    let found = findings(&evaluate(&weak, &policy(), &known()));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with(
            "elbv2-predefined-security-policy-ssl-check shop/edge: HTTPS listener 443 uses security policy \
         ELBSecurityPolicy-2016-08, which accepts TLS 1.0"
        ),
        "{found:?}"
    );
    assert!(found[0].contains(
        "Set `sslPolicy: ELBSecurityPolicy-TLS13-1-2-2021-06` in the listenerConfigurations entry `HTTPS:443` of \
         LoadBalancerConfiguration `shop/edge`"
    ), "{found:?}");

    let defaulted = compliant().replace(", sslPolicy: ELBSecurityPolicy-TLS13-1-2-2021-06", "");
    let found = findings(&evaluate(&defaulted, &policy(), &known()));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("ELBSecurityPolicy-2016-08 (the controller's default, as none is set)"),
        "{found:?}"
    );
}

#[test]
fn the_class_configuration_wins_unless_it_prefers_the_gateways() {
    let class_configuration = "kind: LoadBalancerConfiguration
metadata: {name: class-wide, namespace: infra}
spec:
  listenerConfigurations:
  - {protocolPort: 'HTTPS:443', defaultCertificate: 'arn:aws:acm:us-east-1:123456789012:certificate/shop', sslPolicy: ELBSecurityPolicy-2016-08}";
    let configured_class = "kind: GatewayClass
metadata: {name: aws-alb}
spec:
  controllerName: gateway.k8s.aws/alb
  parametersRef: {group: gateway.k8s.aws, kind: LoadBalancerConfiguration, name: class-wide, namespace: infra}";
    let yaml = documents(&[
        configured_class,
        class_configuration,
        &gateway("aws-alb", &format!("{HTTP}\n{HTTPS}")),
        &configuration(&https_entry(MODERN)),
        &route("redirect", "http", "", REDIRECTS),
    ]);
    let found = findings(&evaluate(&yaml, &policy(), &known()));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("LoadBalancerConfiguration `infra/class-wide`"), "{found:?}");

    let preferring = yaml.replace("spec:\n  listenerConfigurations:\n  - {protocolPort: 'HTTPS:443', defaultCertificate: 'arn:aws:acm:us-east-1:123456789012:certificate/shop', sslPolicy: ELBSecurityPolicy-2016-08}", "spec:\n  mergingMode: prefer-gateway\n  listenerConfigurations:\n  - {protocolPort: 'HTTPS:443', sslPolicy: ELBSecurityPolicy-2016-08}");
    assert!(findings(&evaluate(&preferring, &policy(), &known())).is_empty());

    // A class reference without a namespace, or to a configuration not among the inputs, is refused.
    let unnamespaced = yaml.replace(", namespace: infra}", "}");
    let found = findings(&evaluate(&unnamespaced, &policy(), &known()));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("alb-ingress-annotations-valid shop/edge: GatewayClass `aws-alb` references"),
        "{found:?}"
    );
    let missing = documents(&[&class("aws-alb", "gateway.k8s.aws/alb"), &gateway("aws-alb", HTTPS)]);
    let found = findings(&evaluate(&missing, &policy(), &known()));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("LoadBalancerConfiguration `shop/edge`, which is not among the inputs"),
        "{found:?}"
    );
}

#[test]
fn certificates_are_discovered_by_listener_hostname() {
    let discovering = documents(&[
        &class("aws-alb", "gateway.k8s.aws/alb"),
        &gateway("aws-alb", HTTPS),
        &configuration(&format!("  - {{protocolPort: 'HTTPS:443', sslPolicy: {MODERN}}}")),
    ]);
    let judgement = gateway_judgement(&discovering, &policy(), &offline());
    assert!(judgement.skipped.contains(&Rule::Elbv2AcmCertificateRequired), "{judgement:?}");

    let found = findings(&evaluate(&discovering, &policy(), &facts(&[], &[("shop.example.com", &[])])));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("no ISSUED ACM certificate matches host shop.example.com"), "{found:?}");

    let expiring =
        facts(&[issued(ARN, &["shop.example.com"], "2025-06-10T00:00:00Z")], &[("shop.example.com", &[ARN])]);
    let found = findings(&evaluate(&discovering, &policy(), &expiring));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("acm-certificate-expiration-check shop/edge"), "{found:?}");

    let found = findings(&evaluate(&discovering, &policy(), &both_match_shop()));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("host shop.example.com matches 2 ISSUED ACM certificates"), "{found:?}");
}

#[test]
fn a_listener_with_neither_certificate_nor_hostname_has_none() {
    let listener = "  - {name: https, port: 443, protocol: HTTPS, tls: {mode: Terminate, certificateRefs: [{name: shop-tls}]}}";
    let yaml = documents(&[
        &class("aws-alb", "gateway.k8s.aws/alb"),
        &gateway("aws-alb", listener),
        &configuration(&format!("  - {{protocolPort: 'HTTPS:443', sslPolicy: {MODERN}}}")),
    ]);
    let found = findings(&evaluate(&yaml, &policy(), &known()));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0]
            .starts_with("elbv2-acm-certificate-required shop/edge: HTTPS listener 443 has no certificate"),
        "{found:?}"
    );
    assert!(found[0].contains("(the controller does not read tls.certificateRefs)"), "{found:?}");
}

#[test]
fn certificates_must_be_acm_and_cover_route_hostnames() {
    let iam = compliant().replace(ARN, "arn:aws:iam::123456789012:server-certificate/shop");
    let found = findings(&evaluate(&iam, &policy(), &known()));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("is an IAM server certificate: it must be an ACM certificate"), "{found:?}");

    // The listener's wildcard admits a.b.example.com; the certificate's covers one label only.
    let wildcard = compliant()
        .replace("hostname: shop.example.com", "hostname: '*.example.com'")
        .replace("hostnames: [shop.example.com]", "hostnames: [a.b.example.com]");
    let facts = facts(&[issued(ARN, &["*.example.com"], "2026-06-01T00:00:00Z")], &[]);
    let found = findings(&evaluate(&wildcard, &policy(), &facts));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with(
        "acm-certificate-host-coverage shop/edge: no certificate on HTTPS listener 443 covers host a.b.example.com \
         (they cover: *.example.com)"
    ), "{found:?}");

    let mut missing = known();
    missing.certificates.insert(ARN.into(), Fact::NotFound);
    let found = findings(&evaluate(&compliant(), &policy(), &missing));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("does not exist in ACM"), "{found:?}");
}

#[test]
fn nlb_gateways_need_tls_listeners() {
    let listeners = "  - {name: tls, port: 443, protocol: TLS, hostname: shop.example.com}
  - {name: raw, port: 9000, protocol: TCP}
  - {name: dns, port: 53, protocol: UDP}";
    let yaml = documents(&[
        &class("aws-nlb", "gateway.k8s.aws/nlb"),
        &gateway("aws-nlb", listeners),
        &configuration(&format!(
            "  - {{protocolPort: 'TLS:443', defaultCertificate: '{ARN}', sslPolicy: {MODERN}}}"
        )),
    ]);
    let found = findings(&evaluate(&yaml, &policy(), &known()));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with(
            "elbv2-acm-certificate-required shop/edge: TCP listener 9000 of the NLB is plain TCP"
        ),
        "{found:?}"
    );
    let judgement = gateway_judgement(&yaml, &policy(), &known());
    assert!(!judgement.checked.contains(&Rule::AlbHttpToHttpsRedirectionCheck));
}

#[test]
fn listeners_on_one_port_must_agree_on_the_protocol() {
    let listeners = format!("{HTTPS}\n  - {{name: other, port: 443, protocol: HTTP}}");
    let yaml = documents(&[
        &class("aws-alb", "gateway.k8s.aws/alb"),
        &gateway("aws-alb", &listeners),
        &configuration(&https_entry(MODERN)),
    ]);
    let found = findings(&evaluate(&yaml, &policy(), &known()));
    assert!(
        found.iter().any(|f| f.starts_with(
            "alb-ingress-annotations-valid shop/edge: listeners on port 443 have different protocols"
        )),
        "{found:?}"
    );
}

#[test]
fn other_gateways_are_not_applicable() {
    let not_judged = |yaml: &str, policy: &TlsIngressPolicySpec| match verdict(
        &evaluate(yaml, policy, &known()),
        "edge",
    ) {
        Verdict::NotApplicable(reason) => reason.clone(),
        other => panic!("not applicable: {other:?}"),
    };
    let envoy = compliant().replace("gateway.k8s.aws/alb", "gateway.envoyproxy.io/gatewayclass-controller");
    assert_eq!(
        not_judged(&envoy, &policy()),
        "GatewayClass `aws-alb` is implemented by `gateway.envoyproxy.io/gatewayclass-controller`, not the AWS Load Balancer Controller"
    );
    let classless = compliant().replace(
        "kind: GatewayClass\nmetadata: {name: aws-alb}\nspec: {controllerName: gateway.k8s.aws/alb}\n---\n",
        "",
    );
    assert!(not_judged(&classless, &policy()).starts_with("GatewayClass `aws-alb` is not among the inputs"));
    let excluded = TlsIngressPolicySpec { include_gateways: false, ..policy() };
    assert_eq!(not_judged(&compliant(), &excluded), "the policy does not include Gateways");
    let selective = TlsIngressPolicySpec {
        gateway_selector: Some(
            serde_json::from_value(serde_json::json!({"matchLabels": {"edge": "public"}})).unwrap(),
        ),
        ..policy()
    };
    let _: &Option<LabelSelector> = &selective.gateway_selector;
    assert_eq!(not_judged(&compliant(), &selective), "not selected by the policy's gatewaySelector");
    // The ingressSelector does not apply to Gateways.
    let ingresses_only =
        TlsIngressPolicySpec { ingress_selector: selective.gateway_selector.clone(), ..policy() };
    assert!(matches!(
        verdict(&evaluate(&compliant(), &ingresses_only, &known()), "edge"),
        Verdict::Judged(_)
    ));
}

#[test]
fn offline_a_gateway_whose_class_or_configuration_is_not_among_the_inputs_is_not_judged() {
    let offline_defaults = crate::policy::AlbDefaults { inventory_complete: false, ..Default::default() };
    let judged =
        |yaml: &str| verdict(&evaluate_with(yaml, &policy(), &known(), &offline_defaults), "edge").clone();
    let classless = compliant().replace(
        "kind: GatewayClass\nmetadata: {name: aws-alb}\nspec: {controllerName: gateway.k8s.aws/alb}\n---\n",
        "",
    );
    assert_eq!(
        judged(&classless),
        Verdict::NotJudged(
            "GatewayClass `aws-alb` is not among the inputs, so which controller builds the Gateway is unknown".into()
        )
    );
    let unconfigured = documents(&[&class("aws-alb", "gateway.k8s.aws/alb"), &gateway("aws-alb", HTTPS)]);
    assert_eq!(
        judged(&unconfigured),
        Verdict::NotJudged(
            "infrastructure.parametersRef names LoadBalancerConfiguration `shop/edge`, which is not among the inputs"
                .into()
        )
    );
    // A reference the controller refuses is a finding whatever the inputs hold.
    let unnamespaced = documents(&[
        &class("aws-alb", "gateway.k8s.aws/alb").replace(
            "spec: {controllerName: gateway.k8s.aws/alb}",
            "spec: {controllerName: gateway.k8s.aws/alb, parametersRef: {group: gateway.k8s.aws, kind: LoadBalancerConfiguration, name: edge}}",
        ),
        &gateway("aws-alb", HTTPS),
    ]);
    assert!(matches!(judged(&unnamespaced), Verdict::Judged(j) if !j.findings.is_empty()));
    assert!(matches!(judged(&compliant()), Verdict::Judged(_)));
}
