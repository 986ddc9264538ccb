//! Services of type LoadBalancer served by an NLB: TLS listeners need ACM certificates and a
//! security policy with a high enough TLS floor (annotations of the AWS Load Balancer Controller,
//! `docs/guide/service/annotations.md`; the in-tree `nlb` type reads the same ones).
//!
//! With `aws-load-balancer-ssl-cert` set, a port is TLS when `aws-load-balancer-ssl-ports` is
//! unset or lists its name or number (`*` matches nothing); without a certificate no port is.

use super::annotations::{
    AUTO_MODE_NLB_LOAD_BALANCER_CLASS, NLB_LOAD_BALANCER_CLASS, NLB_SSL_CERT, NLB_SSL_POLICY, NLB_SSL_PORTS,
    NLB_TYPE, annotation, string_list,
};
use super::certificates::{describe_non_acm, is_acm_certificate_arn, judge_configured};
use super::ledger::{Issue, Ledger};
use super::{AlbDefaults, InventoryIndex, excluded, ssl_policy};
use crate::api::TlsIngressPolicySpec;
use crate::policy::{Facts, Rule, Verdict, resource_ref};
use k8s_openapi::api::core::v1::{Service, ServicePort};

/// `aws-load-balancer-type` values that make an NLB: `external` and the deprecated `nlb-ip` (AWS
/// Load Balancer Controller) and `nlb` (the in-tree cloud provider).
const NLB_TYPES: [&str; 3] = ["external", "nlb-ip", "nlb"];

/// Evaluates one Service.
pub fn evaluate_service(
    policy: &TlsIngressPolicySpec,
    service: &Service,
    index: &InventoryIndex<'_>,
    facts: &dyn Facts,
    defaults: &AlbDefaults,
) -> Verdict {
    if !policy.include_services {
        return Verdict::NotApplicable("the policy does not include Services".into());
    }
    if let Some(reason) = not_an_nlb(service, defaults) {
        return Verdict::NotApplicable(reason);
    }
    if let Some(verdict) = excluded(policy, &service.metadata, index, defaults) {
        return verdict;
    }
    judge(policy, service, facts, defaults).into_verdict(&resource_ref(service))
}

fn not_an_nlb(service: &Service, defaults: &AlbDefaults) -> Option<String> {
    let spec = service.spec.as_ref();
    let service_type = spec.and_then(|spec| spec.type_.as_deref()).unwrap_or("ClusterIP");
    if service_type != "LoadBalancer" {
        return Some(format!("a {service_type} Service has no load balancer"));
    }
    match spec.and_then(|spec| spec.load_balancer_class.as_deref()) {
        Some(NLB_LOAD_BALANCER_CLASS | AUTO_MODE_NLB_LOAD_BALANCER_CLASS) => None,
        Some(class) => Some(format!(
            "loadBalancerClass `{class}` is neither the AWS Load Balancer Controller's nor EKS Auto Mode's"
        )),
        None if defaults.eks_auto_mode => None,
        None => match annotation(service.metadata.annotations.as_ref(), NLB_TYPE) {
            Some(kind) if NLB_TYPES.contains(&kind) => None,
            _ => Some(format!(
                "not an NLB: neither loadBalancerClass {NLB_LOAD_BALANCER_CLASS} nor {NLB_TYPE} set"
            )),
        },
    }
}

fn judge(
    policy: &TlsIngressPolicySpec,
    service: &Service,
    facts: &dyn Facts,
    defaults: &AlbDefaults,
) -> Ledger {
    let annotations = service.metadata.annotations.as_ref();
    let certificates: Vec<&str> =
        annotation(annotations, NLB_SSL_CERT).map(|raw| string_list(raw).collect()).unwrap_or_default();
    let ssl_ports: Vec<&str> =
        annotation(annotations, NLB_SSL_PORTS).map(|raw| string_list(raw).collect()).unwrap_or_default();
    let is_tls = |port: &ServicePort| {
        !certificates.is_empty()
            && (ssl_ports.is_empty()
                || ssl_ports.iter().any(|entry| {
                    port.name.as_deref() == Some(*entry)
                        || entry.parse::<i32>().is_ok_and(|number| number == port.port)
                }))
    };
    // NLBs terminate TLS on TCP ports only; UDP and SCTP listeners cannot carry it.
    let tcp_ports = service
        .spec
        .iter()
        .flat_map(|spec| spec.ports.iter().flatten())
        .filter(|port| port.protocol.as_deref().unwrap_or("TCP") == "TCP");

    let mut ledger = Ledger::default();
    ledger.evaluate(Rule::Elbv2AcmCertificateRequired);
    let mut tls_ports = 0;
    for port in tcp_ports {
        if is_tls(port) {
            tls_ports += 1;
            continue;
        }
        let label = match &port.name {
            Some(name) => format!("port {} ({name})", port.port),
            None => format!("port {}", port.port),
        };
        let remediation = if certificates.is_empty() {
            format!(
                "Set `{NLB_SSL_CERT}: arn:aws:acm:<region>:<account>:certificate/<id>`; every port is TLS unless \
                 {NLB_SSL_PORTS} lists some"
            )
        } else {
            let listed = ssl_ports.join(",");
            format!("Add the port to `{NLB_SSL_PORTS}: \"{listed},{}\"`", port.port)
        };
        ledger.report(
            0,
            Issue::new(
                Rule::Elbv2AcmCertificateRequired,
                format!("{label} of the NLB is plain TCP: it has no TLS listener"),
                remediation,
            ),
        );
    }
    for arn in certificates.iter().filter(|arn| !is_acm_certificate_arn(arn)) {
        ledger.report(
            0,
            Issue::new(
                Rule::Elbv2AcmCertificateRequired,
                format!("certificate {arn} is {}: the NLB must use an ACM certificate", describe_non_acm(arn)),
                format!("Set `{NLB_SSL_CERT}` to ACM certificate ARNs (arn:aws:acm:<region>:<account>:certificate/<id>)"),
            ),
        );
    }
    if tls_ports == 0 {
        return ledger;
    }
    ledger.evaluate(Rule::Elbv2PredefinedSecurityPolicySslCheck);
    let (policy_name, defaulted) = match annotation(annotations, NLB_SSL_POLICY) {
        Some(name) => (name, false),
        None => (defaults.ssl_policy.as_str(), true),
    };
    let fix = |recommended: &str| format!("Set `{NLB_SSL_POLICY}: {recommended}` on the Service");
    if let Some(issue) = ssl_policy::judge(policy, policy_name, defaulted, &"the NLB's TLS listeners", &fix) {
        ledger.report(0, issue);
    }
    let now = facts.now();
    for arn in certificates.iter().filter(|arn| is_acm_certificate_arn(arn)) {
        judge_configured(facts, now, arn, &policy.certificate, &mut ledger, 0);
    }
    ledger
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::ingress::test_support::{evaluate, findings, issued, parse};
    use crate::policy::{FactSet, Offline};

    const ARN: &str = "arn:aws:acm:us-east-1:123456789012:certificate/nlb";

    fn nlb(annotations: &str) -> String {
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
    - {{name: https, port: 443}}
    - {{name: admin, port: 8443, protocol: TCP}}
    - {{name: dns, port: 53, protocol: UDP}}"
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
        let Verdict::Judged(judgement) = verdict_of(&yaml, &Offline { now: jiff::Timestamp::UNIX_EPOCH })
        else {
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
        let cluster_ip =
            "kind: Service\nmetadata: {name: db, namespace: shop}\nspec: {ports: [{port: 5432}]}";
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
        let post_quantum =
            TlsIngressPolicySpec { require_post_quantum: true, ..TlsIngressPolicySpec::default() };
        let mut facts = FactSet { now: Some("2025-06-01T00:00:00Z".parse().unwrap()), ..FactSet::default() };
        let mut certificate = issued(ARN, &["api.example.com"], "2026-06-01T00:00:00Z");
        certificate.key_algorithm = Some("RSA_1024".into());
        facts.certificates.insert(ARN.into(), crate::policy::Fact::Known(certificate));

        let found = findings(&evaluate(
            &nlb(&annotations("ELBSecurityPolicy-TLS13-1-2-2021-06")),
            &post_quantum,
            &facts,
        ));
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
}
