//! NLB Services as the controllers build them.

use super::*;
use crate::policy::ingress::test_support::{evaluate, findings, issued, parse};
use crate::policy::{FactSet, Offline};

const ARN: &str = "arn:aws:acm:us-east-1:123456789012:certificate/nlb";

fn nlb(annotations: &str) -> String {
    service_with_ports(
        annotations,
        "    - {name: https, port: 443}\n    - {name: admin, port: 8443, protocol: TCP}\n    - {name: dns, port: 53, protocol: UDP}",
    )
}

/// An NLB Service of the load balancer controller with these annotations and `ports` entries.
fn service_with_ports(annotations: &str, ports: &str) -> String {
    format!(
        "kind: Service
metadata:
  name: api
  namespace: shop
  annotations:
    service.beta.kubernetes.io/aws-load-balancer-type: external
{annotations}
spec:
  type: LoadBalancer
  ports:
{ports}"
    )
}

fn verdict_of(yaml: &str, facts: &dyn Facts) -> Verdict {
    let service: Service = parse(yaml);
    let index = InventoryIndex::new(&[], &[], &[]);
    evaluate_service(&TlsIngressPolicySpec::default(), &service, &index, facts, &AlbDefaults::default())
}

#[test]
fn tls_on_every_tcp_port_with_a_good_policy_is_compliant() {
    let yaml = nlb(&format!(
        "    service.beta.kubernetes.io/aws-load-balancer-ssl-cert: {ARN}
    service.beta.kubernetes.io/aws-load-balancer-ssl-negotiation-policy: ELBSecurityPolicy-TLS13-1-2-2021-06"
    ));
    let Verdict::Judged(judgement) = verdict_of(&yaml, &Offline { now: jiff::Timestamp::UNIX_EPOCH }) else {
        panic!("an NLB Service is judged")
    };
    assert!(judgement.findings.is_empty(), "{:?}", judgement.findings);
    assert_eq!(
        judgement.checked,
        [Rule::Elbv2AcmCertificateRequired, Rule::Elbv2PredefinedSecurityPolicySslCheck]
    );
    assert_eq!(
        judgement.skipped,
        [Rule::AcmCertificateStatus, Rule::AcmCertificateExpirationCheck, Rule::AcmCertificateRsaCheck]
    );
}

#[test]
fn ports_left_out_of_ssl_ports_and_default_policy_are_findings() {
    let evaluation = evaluate(
        &nlb(&format!(
            "    service.beta.kubernetes.io/aws-load-balancer-ssl-cert: {ARN}
    service.beta.kubernetes.io/aws-load-balancer-ssl-ports: https"
        )),
        &TlsIngressPolicySpec::default(),
        &Offline { now: jiff::Timestamp::UNIX_EPOCH },
    );
    let found = findings(&evaluation);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].contains("port 8443 (admin) of the NLB is plain TCP"));
    assert!(found[0].contains("service.beta.kubernetes.io/aws-load-balancer-ssl-ports: \"https,8443\""));
    assert!(found[1].contains(
        "ELBSecurityPolicy-2016-08 (the controller's default, as none is set), which accepts TLS 1.0"
    ));
}

#[test]
fn no_certificate_means_no_tls_and_an_iam_certificate_is_not_acm() {
    let evaluation = evaluate(&nlb(""), &TlsIngressPolicySpec::default(), &FactSet::default());
    let found = findings(&evaluation);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found.iter().all(|f| f.starts_with("elbv2-acm-certificate-required")));

    let iam = nlb("    service.beta.kubernetes.io/aws-load-balancer-ssl-cert: arn:aws:iam::123456789012:server-certificate/api
    service.beta.kubernetes.io/aws-load-balancer-ssl-negotiation-policy: ELBSecurityPolicy-TLS13-1-2-2021-06");
    let found = findings(&evaluate(&iam, &TlsIngressPolicySpec::default(), &FactSet::default()));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("is an IAM server certificate"));
}

fn found_offline(yaml: &str) -> Vec<String> {
    findings(&evaluate(yaml, &TlsIngressPolicySpec::default(), &Offline { now: jiff::Timestamp::UNIX_EPOCH }))
}

const GOOD_POLICY: &str = "    service.beta.kubernetes.io/aws-load-balancer-ssl-negotiation-policy: ELBSecurityPolicy-TLS13-1-2-2021-06";

/// A certificate, `ssl-ports: '*'` and a modern policy.
fn star_ssl_ports() -> String {
    format!(
        "    service.beta.kubernetes.io/aws-load-balancer-ssl-cert: {ARN}
    service.beta.kubernetes.io/aws-load-balancer-ssl-ports: '*'
{GOOD_POLICY}"
    )
}

#[test]
fn ssl_ports_naming_no_port_of_the_service_make_the_controller_refuse_the_nlb() {
    let star = nlb(&star_ssl_ports());
    let evaluation = evaluate(&star, &TlsIngressPolicySpec::default(), &FactSet::default());
    let found = findings(&evaluation);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with(
            "alb-ingress-annotations-valid shop/api: service.beta.kubernetes.io/aws-load-balancer-ssl-ports lists `*`, \
             which no port of the Service is named or numbered"
        ));
    assert!(found[0].ends_with(
            "=> Remove `service.beta.kubernetes.io/aws-load-balancer-ssl-ports` to make every TCP port TLS, or list \
             the TLS ports by name or number"
        ));
    assert_eq!(evaluation.findings().next().unwrap().severity, Severity::Medium);
    // The NLB is not built: nothing else is judged on it.
    let Verdict::Judged(judgement) = &evaluation.verdicts[0].verdict else { panic!("judged") };
    assert_eq!(judgement.checked, [Rule::AlbIngressAnnotationsValid]);

    let stale = star.replace("ssl-ports: '*'", "ssl-ports: 'https, 9443'");
    let found = found_offline(&stale);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("lists `9443`"), "{found:?}");
    assert!(found[0].ends_with("=> Set `service.beta.kubernetes.io/aws-load-balancer-ssl-ports: \"https\"`, the ports the Service has"));
}

#[test]
fn the_in_tree_nlb_reads_a_star_as_every_port() {
    let yaml =
        nlb(&star_ssl_ports()).replace("aws-load-balancer-type: external", "aws-load-balancer-type: nlb");
    assert_eq!(found_offline(&yaml), Vec::<String>::new());
    // A class makes it the AWS Load Balancer Controller's again.
    let classed = yaml
        .replace("  type: LoadBalancer", "  type: LoadBalancer\n  loadBalancerClass: service.k8s.aws/nlb");
    assert!(found_offline(&classed)[0].starts_with("alb-ingress-annotations-valid"));
}

/// An NLB with TCP and UDP on 443 (HTTP/3 next to HTTPS).
fn quic(annotations: &str) -> String {
    service_with_ports(
        &format!("{GOOD_POLICY}\n{annotations}"),
        "    - {name: https, port: 443, protocol: TCP}\n    - {name: quic, port: 443, protocol: UDP}",
    )
}

#[test]
fn a_tcp_udp_listener_cannot_terminate_tls_and_ssl_ports_do_not_change_that() {
    let merged = quic(&format!(
        "    service.beta.kubernetes.io/aws-load-balancer-enable-tcp-udp-listener: \"true\"
    service.beta.kubernetes.io/aws-load-balancer-ssl-cert: {ARN}
    service.beta.kubernetes.io/aws-load-balancer-ssl-ports: \"443\""
    ));
    let found = found_offline(&merged);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        found[0],
        "elbv2-acm-certificate-required shop/api: port 443 (https) of the NLB is a TCP_UDP listener, which \
             cannot terminate TLS => Serve UDP on a port number of its own: the TCP and UDP ports 443 make one \
             TCP_UDP listener, which cannot terminate TLS"
    );
    // Without a certificate, moving UDP is not enough.
    let uncertified =
        quic("    service.beta.kubernetes.io/aws-load-balancer-enable-tcp-udp-listener: \"true\"");
    let found = found_offline(&uncertified);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].ends_with(&format!(
            "cannot terminate TLS; set `service.beta.kubernetes.io/aws-load-balancer-ssl-cert: {CERTIFICATE_PLACEHOLDER}`"
        )));
    // Without the listener merged (the controller's feature gate is off unless enabled), the TCP
    // port is a TLS listener of its own.
    for off in ["", "    service.beta.kubernetes.io/aws-load-balancer-enable-tcp-udp-listener: \"false\""] {
        let separate =
            quic(&format!("{off}\n    service.beta.kubernetes.io/aws-load-balancer-ssl-cert: {ARN}"));
        assert_eq!(found_offline(&separate), Vec::<String>::new(), "{off}");
    }
}

#[test]
fn the_remediation_names_every_step_a_port_needs() {
    // No certificate, and ssl-ports lists another port: a certificate alone would leave 8443
    // plaintext.
    let yaml = nlb("    service.beta.kubernetes.io/aws-load-balancer-ssl-ports: https");
    let found = found_offline(&yaml);
    let admin = found.iter().find(|f| f.contains("port 8443 (admin)")).expect("8443 reported");
    assert!(admin.ends_with(&format!(
            "=> Set `service.beta.kubernetes.io/aws-load-balancer-ssl-cert: {CERTIFICATE_PLACEHOLDER}`; add the port \
             to `service.beta.kubernetes.io/aws-load-balancer-ssl-ports: \"https,8443\"`"
        )));
    let https = found.iter().find(|f| f.contains("port 443 (https)")).expect("443 reported");
    assert!(https.ends_with(&format!(
        "=> Set `service.beta.kubernetes.io/aws-load-balancer-ssl-cert: {CERTIFICATE_PLACEHOLDER}`"
    )));
}

#[test]
fn certificate_state_is_judged_with_facts() {
    let mut facts = FactSet { now: Some("2025-06-01T00:00:00Z".parse().unwrap()), ..FactSet::default() };
    facts.certificates.insert(
        ARN.into(),
        crate::policy::Fact::Known(issued(ARN, &["api.example.com"], "2025-06-05T00:00:00Z")),
    );
    let yaml = nlb(&format!(
        "    service.beta.kubernetes.io/aws-load-balancer-ssl-cert: {ARN}
    service.beta.kubernetes.io/aws-load-balancer-ssl-negotiation-policy: ELBSecurityPolicy-TLS13-1-2-2021-06"
    ));
    let found = findings(&evaluate(&yaml, &TlsIngressPolicySpec::default(), &facts));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("acm-certificate-expiration-check"));
}

#[test]
fn other_services_are_not_applicable() {
    let offline = Offline { now: jiff::Timestamp::UNIX_EPOCH };
    let cluster_ip = "kind: Service\nmetadata: {name: db, namespace: shop}\nspec: {ports: [{port: 5432}]}";
    assert_eq!(
        verdict_of(cluster_ip, &offline),
        Verdict::NotApplicable("a ClusterIP Service has no load balancer".into())
    );
    let classic = "kind: Service\nmetadata: {name: web, namespace: shop}\nspec: {type: LoadBalancer}";
    assert!(
        matches!(verdict_of(classic, &offline), Verdict::NotApplicable(reason) if reason.starts_with("not an NLB"))
    );
    let by_class = "kind: Service\nmetadata: {name: web, namespace: shop}
spec: {type: LoadBalancer, loadBalancerClass: service.k8s.aws/nlb, ports: [{port: 80}]}";
    assert!(matches!(verdict_of(by_class, &offline), Verdict::Judged(_)));
    let excluded = TlsIngressPolicySpec { include_services: false, ..TlsIngressPolicySpec::default() };
    let service: Service = parse(by_class);
    let index = InventoryIndex::new(&[], &[], &[]);
    assert!(matches!(
        evaluate_service(&excluded, &service, &index, &offline, &AlbDefaults::default()),
        Verdict::NotApplicable(_)
    ));
}

#[test]
fn post_quantum_and_certificate_keys_apply_to_nlbs() {
    let annotations = |policy: &str| {
        format!(
            "    service.beta.kubernetes.io/aws-load-balancer-ssl-cert: {ARN}
    service.beta.kubernetes.io/aws-load-balancer-ssl-negotiation-policy: {policy}"
        )
    };
    let post_quantum = TlsIngressPolicySpec { require_post_quantum: true, ..TlsIngressPolicySpec::default() };
    let mut facts = FactSet { now: Some("2025-06-01T00:00:00Z".parse().unwrap()), ..FactSet::default() };
    let mut certificate = issued(ARN, &["api.example.com"], "2026-06-01T00:00:00Z");
    certificate.key_algorithm = Some("RSA_1024".into());
    facts.certificates.insert(ARN.into(), crate::policy::Fact::Known(certificate));

    let found =
        findings(&evaluate(&nlb(&annotations("ELBSecurityPolicy-TLS13-1-2-2021-06")), &post_quantum, &facts));
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0].contains(
            "the NLB's TLS listeners uses security policy ELBSecurityPolicy-TLS13-1-2-2021-06, \
             which offers no post-quantum key exchange"
        ),
        "{found:?}"
    );
    assert!(
        found[0].ends_with(
            "Set `service.beta.kubernetes.io/aws-load-balancer-ssl-negotiation-policy: \
             ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09` on the Service"
        ),
        "{found:?}"
    );
    assert!(found[1].starts_with("acm-certificate-rsa-check shop/api"), "{found:?}");

    let found = findings(&evaluate(
        &nlb(&annotations("ELBSecurityPolicy-TLS13-1-3-PQ-2025-09")),
        &post_quantum,
        &facts,
    ));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("acm-certificate-rsa-check"), "{found:?}");
}
