//! The certificates of an ALB's HTTPS listeners: configured ARNs, the controller's discovery by
//! host (`pkg/ingress/cert_discovery.go`, `model_build_listener.go`
//! `computeIngressInferredTLSCertARNs`), and the state and host coverage of each certificate.

use super::alb::{ACM_ARN_PLACEHOLDER, AlbEvaluation, Listener, Settings, https_ports};
use super::annotations::{CERTIFICATE_ARN, LISTEN_PORTS, Protocol, SSL_REDIRECT};
use super::certificates::{
    describe_non_acm, discover, is_acm_certificate_arn, judge_configured, judge_host_coverage, judge_state,
};
use super::group::AlbMember;
use super::ledger::Issue;
use crate::policy::Rule;
use crate::policy::facts::{CertificateFacts, Fact};

impl<'g> AlbEvaluation<'g> {
    /// `elbv2-acm-certificate-required`: the ALB has an HTTPS listener, each with ACM certificates
    /// (configured, or discoverable by the Ingress's hosts).
    pub(super) fn judge_certificates_configured(
        &mut self,
        settings: &[Settings<'g>],
        listeners: &mut [Listener<'g>],
    ) {
        self.ledger.evaluate(Rule::Elbv2AcmCertificateRequired);
        if https_ports(listeners).next().is_none() {
            self.ledger.report(
                0,
                Issue::new(
                    Rule::Elbv2AcmCertificateRequired,
                    "the ALB has no HTTPS listener: all its traffic is plaintext HTTP".into(),
                    format!(
                        "Set `{LISTEN_PORTS}: '[{{\"HTTP\": 80}}, {{\"HTTPS\": 443}}]'`, \
                         `{CERTIFICATE_ARN}: {ACM_ARN_PLACEHOLDER}` and `{SSL_REDIRECT}: \"443\"`"
                    ),
                ),
            );
            return;
        }
        // Certificates of an Ingress without HTTPS ports are never put on a listener.
        let listens_https =
            |member: &Settings<'g>| member.ports.iter().any(|(_, protocol)| *protocol == Protocol::Https);
        for (cause, member) in settings.iter().enumerate().filter(|(_, member)| listens_https(member)) {
            for arn in member.certificates.iter().filter(|arn| !is_acm_certificate_arn(arn)) {
                let message = format!(
                    "certificate {arn} is {}: the ALB must use an ACM certificate",
                    describe_non_acm(arn)
                );
                let remediation = member.certificate_source.fix(
                    CERTIFICATE_ARN,
                    member.certificate_field,
                    ACM_ARN_PLACEHOLDER,
                );
                self.ledger
                    .report(cause, Issue::new(Rule::Elbv2AcmCertificateRequired, message, remediation));
            }
        }
        for (cause, member) in settings.iter().enumerate() {
            if member.certificates.is_empty() && listens_https(member) {
                self.discover_certificates(cause, member, listeners);
            }
        }
        // The controller merges the certificates of every member on a port into its listener
        // (`model_builder.go` `mergeListenPortConfigs`), so a member without certificates or hosts
        // is served by the others'. A listener left with none is one ELB refuses to create.
        for listener in listeners.iter().filter(|listener| listener.protocol == Protocol::Https) {
            let unserved = listener.certificates.is_empty()
                && listener.discovered.is_empty()
                && !listener.discovery_pending
                && listener.members.iter().all(|&member| settings[member].hosts.is_empty());
            let Some(&cause) = listener.members.first().filter(|_| unserved) else { continue };
            let member = &settings[cause];
            self.ledger.report(
                cause,
                Issue::new(
                    Rule::Elbv2AcmCertificateRequired,
                    format!(
                        "HTTPS listener {} has no certificate: no Ingress on it sets {CERTIFICATE_ARN} or has a host \
                         for the controller to discover an ACM certificate by, and ELB creates no HTTPS listener \
                         without one",
                        listener.port
                    ),
                    member.certificate_source.fix(CERTIFICATE_ARN, member.certificate_field, ACM_ARN_PLACEHOLDER),
                ),
            );
        }
    }

    /// The controller's certificate discovery for a member with HTTPS ports and no certificate:
    /// every host must match exactly the ISSUED ACM certificates found for it. A member without
    /// hosts discovers nothing and fails nothing (`cert_discovery.go` `Discover`).
    fn discover_certificates(&mut self, cause: usize, member: &Settings<'g>, listeners: &mut [Listener<'g>]) {
        let serves_member = |listener: &Listener<'g>| {
            listener.protocol == Protocol::Https && listener.members.contains(&cause)
        };
        let fix = |arn: &str| member.certificate_source.fix(CERTIFICATE_ARN, member.certificate_field, arn);
        for &host in &member.hosts {
            match discover(self.facts, host, CERTIFICATE_ARN, &fix) {
                Err(issue) => self.ledger.report(cause, issue),
                Ok(Fact::Known(found)) => {
                    for listener in listeners.iter_mut().filter(|listener| serves_member(listener)) {
                        for certificate in &found {
                            if !listener.discovered.iter().any(|(known, _)| known.arn == certificate.arn) {
                                listener.discovered.push((certificate, cause));
                            }
                        }
                    }
                }
                Ok(other) => {
                    self.ledger.pend_for(Rule::Elbv2AcmCertificateRequired, &other);
                    for listener in listeners.iter_mut().filter(|listener| serves_member(listener)) {
                        listener.discovery_pending = true;
                    }
                }
            }
        }
    }

    /// Status, expiry and host coverage of the certificates on each HTTPS listener.
    pub(super) fn judge_certificate_states(&mut self, settings: &[Settings<'g>], listeners: &[Listener<'g>]) {
        let requirements = &self.policy.certificate;
        let now = self.facts.now();
        // Each certificate is judged once, however many listeners use it.
        let mut judged: Vec<(&str, Fact<&'g CertificateFacts>)> = Vec::new();
        for listener in listeners.iter().filter(|listener| listener.protocol == Protocol::Https) {
            let mut known: Vec<&CertificateFacts> = Vec::new();
            let mut unknown = listener.discovery_pending;
            for &(arn, provider) in
                listener.certificates.iter().filter(|(arn, _)| is_acm_certificate_arn(arn))
            {
                let fact = match judged.iter().find(|(seen, _)| *seen == arn) {
                    Some((_, fact)) => fact.clone(),
                    None => {
                        let fact =
                            judge_configured(self.facts, now, arn, requirements, &mut self.ledger, provider);
                        judged.push((arn, fact.clone()));
                        fact
                    }
                };
                match fact {
                    Fact::Known(certificate) => known.push(certificate),
                    Fact::Unknown | Fact::Failed(_) => unknown = true,
                    Fact::NotFound => {}
                }
            }
            for &(certificate, provider) in &listener.discovered {
                if !judged.iter().any(|(seen, _)| *seen == certificate.arn) {
                    judge_state(certificate, requirements, now, &mut self.ledger, provider);
                    judged.push((&certificate.arn, Fact::Known(certificate)));
                }
                known.push(certificate);
            }
            // A listener without any certificate is reported as elbv2-acm-certificate-required.
            if !known.is_empty() || unknown {
                self.judge_host_coverage(settings, listener, &known, unknown);
            }
        }
    }

    /// `acm-certificate-host-coverage`: each host of the Ingresses on the listener is covered by
    /// one of its certificates.
    fn judge_host_coverage(
        &mut self,
        settings: &[Settings<'g>],
        listener: &Listener<'g>,
        known: &[&CertificateFacts],
        unknown: bool,
    ) {
        let label = format!("HTTPS listener {}", listener.port);
        let mut seen: Vec<&str> = Vec::new();
        for &cause in &listener.members {
            for &host in &settings[cause].hosts {
                if seen.contains(&host) {
                    continue;
                }
                seen.push(host);
                let add_arn = || {
                    let member = &settings[cause];
                    member.certificate_source.fix(
                        CERTIFICATE_ARN,
                        member.certificate_field,
                        "<existing ARNs>,<new ARN>",
                    )
                };
                judge_host_coverage(&mut self.ledger, cause, &label, host, (known, unknown), &add_arn);
            }
        }
    }
}

/// The hosts of an Ingress's rules and TLS entries, each once.
pub(super) fn hosts<'g>(member: &'g AlbMember<'g>) -> Vec<&'g str> {
    let Some(spec) = &member.ingress.spec else { return Vec::new() };
    let rule_hosts = spec.rules.iter().flatten().filter_map(|rule| rule.host.as_deref());
    let tls_hosts = spec.tls.iter().flatten().flat_map(|tls| tls.hosts.iter().flatten().map(String::as_str));
    let mut hosts: Vec<&str> = Vec::new();
    for host in rule_hosts.chain(tls_hosts).filter(|host| !host.is_empty()) {
        if !hosts.contains(&host) {
            hosts.push(host);
        }
    }
    hosts
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use crate::policy::{Fact, Rule};

    #[test]
    fn iam_server_certificate_is_not_acm() {
        let iam = (
            "alb.ingress.kubernetes.io/certificate-arn",
            "arn:aws:iam::123456789012:server-certificate/shop",
        );
        let found =
            findings(&evaluate(&shop(&[BOTH_PORTS, iam, REDIRECT, MODERN_POLICY]), &policy(), &offline()));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with(
            "elbv2-acm-certificate-required shop/web: certificate arn:aws:iam::123456789012:server-certificate/shop is \
             an IAM server certificate"
        ));

        // On an Ingress without HTTPS ports the certificate is never used, so it is not judged.
        let http_only = ("alb.ingress.kubernetes.io/listen-ports", r#"[{"HTTP": 80}]"#);
        let found = findings(&evaluate(&shop(&[http_only, iam]), &policy(), &offline()));
        assert!(found.iter().all(|f| !f.contains("IAM server certificate")), "{found:?}");
    }

    #[test]
    fn certificate_discovery_by_host() {
        let discovering = shop(&[BOTH_PORTS, REDIRECT, MODERN_POLICY]);
        // Offline the discovery cannot be judged: skipped, not passed, not failed.
        let evaluation = evaluate(&discovering, &policy(), &offline());
        let offline_judgement = judgement(&evaluation, "web");
        assert!(offline_judgement.findings.is_empty());
        assert!(offline_judgement.skipped.contains(&Rule::Elbv2AcmCertificateRequired));
        assert!(!offline_judgement.checked.contains(&Rule::Elbv2AcmCertificateRequired));

        let none_found = facts(&[], &[("shop.example.com", &[])]);
        let found = findings(&evaluate(&discovering, &policy(), &none_found));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("no ISSUED ACM certificate matches host shop.example.com"));
        assert!(
            found[0].contains(
                "aws acm request-certificate --domain-name shop.example.com --validation-method DNS"
            )
        );

        let expiring = facts(
            &[issued(ARN, &["shop.example.com"], "2025-06-10T00:00:00Z")],
            &[("shop.example.com", &[ARN])],
        );
        let evaluation = evaluate(&discovering, &policy(), &expiring);
        let found = findings(&evaluation);
        // The discovered certificate is judged like a configured one.
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("acm-certificate-expiration-check shop/web"));
        assert!(judgement(&evaluation, "web").skipped.is_empty());
    }

    #[test]
    fn a_host_matched_by_several_certificates_is_a_finding() {
        // The load balancer controller refuses to build the listener ("multiple certificates found
        // for host", pkg/ingress/cert_discovery.go) unless certificate-arn picks one.
        let discovering = shop(&[BOTH_PORTS, REDIRECT, MODERN_POLICY]);
        let both = both_match_shop();
        let found = findings(&evaluate(&discovering, &policy(), &both));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with(&format!(
                "elbv2-acm-certificate-required shop/web: host shop.example.com matches 2 ISSUED ACM certificates \
                 ({ARN}, {OTHER_ARN})"
            )),
            "{found:?}"
        );
        assert!(found[0].contains(&format!("alb.ingress.kubernetes.io/certificate-arn: {ARN}")), "{found:?}");
        // Naming the certificate leaves nothing to discover.
        assert!(findings(&evaluate(&shop(&COMPLIANT), &policy(), &both)).is_empty());
    }

    #[test]
    fn https_without_certificate_or_host_cannot_be_discovered() {
        let yaml = "kind: Ingress
metadata:
  name: web
  namespace: shop
  annotations:
    alb.ingress.kubernetes.io/listen-ports: '[{\"HTTPS\": 443}]'
    alb.ingress.kubernetes.io/ssl-policy: ELBSecurityPolicy-TLS13-1-2-2021-06
spec:
  ingressClassName: alb
  defaultBackend: {service: {name: web, port: {number: 80}}}";
        let found = findings(&evaluate(yaml, &policy(), &offline()));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains("HTTPS listener 443 has no certificate: no Ingress on it sets"),
            "{found:?}"
        );
    }

    /// An Ingress of `group` with a default backend and no host, listening on HTTPS 443.
    fn hostless(name: &str, group: &str) -> String {
        format!(
            "kind: Ingress
metadata:
  name: {name}
  namespace: shop
  annotations:
    alb.ingress.kubernetes.io/group.name: {group}
    alb.ingress.kubernetes.io/listen-ports: '[{{\"HTTPS\": 443}}]'
spec:
  ingressClassName: alb
  defaultBackend: {{service: {{name: {name}, port: {{number: 80}}}}}}"
        )
    }

    #[test]
    fn a_group_member_without_certificate_or_host_is_served_by_the_others_certificates() {
        let shared = ("alb.ingress.kubernetes.io/group.name", "shared");
        let web = shop(&[shared, BOTH_PORTS, CERTIFICATE, REDIRECT, MODERN_POLICY]);
        let yaml = format!("{web}\n---\n{}", hostless("api", "shared"));
        let certificate = issued(ARN, &["shop.example.com"], "2026-01-01T00:00:00Z");
        for facts in [facts(&[], &[]), facts(&[certificate], &[])] {
            let evaluation = evaluate(&yaml, &policy(), &facts);
            assert!(findings(&evaluation).is_empty(), "{:?}", findings(&evaluation));
            assert!(judgement(&evaluation, "api").checked.contains(&Rule::Elbv2AcmCertificateRequired));
        }
        // Members that all lack certificates and hosts leave the listener without any: one
        // finding, on the first of them.
        let bare = format!("{}\n---\n{}", hostless("a", "bare"), hostless("b", "bare"));
        let found = findings(&evaluate(&bare, &policy(), &offline()));
        let required: Vec<_> =
            found.iter().filter(|f| f.starts_with("elbv2-acm-certificate-required")).collect();
        assert_eq!(required.len(), 1, "{found:?}");
        assert!(required[0].starts_with(
            "elbv2-acm-certificate-required shop/a: IngressGroup bare: HTTPS listener 443 has no certificate"
        ));
    }

    #[test]
    fn a_group_member_with_hosts_and_no_certificate_still_has_its_hosts_discovered() {
        // The controller discovers certificates for each member without any of its own, whatever
        // the other members set, and fails the group when a host matches none.
        let shared = ("alb.ingress.kubernetes.io/group.name", "shared");
        let web = shop(&[shared, BOTH_PORTS, CERTIFICATE, REDIRECT, MODERN_POLICY]);
        let yaml = format!("{web}\n---\n{}", alb_ingress("api", "api.example.com", &[shared, BOTH_PORTS]));
        let certificate = issued(ARN, &["shop.example.com", "api.example.com"], "2026-01-01T00:00:00Z");
        let none_found = facts(std::slice::from_ref(&certificate), &[("api.example.com", &[])]);
        let found = findings(&evaluate(&yaml, &policy(), &none_found));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("no ISSUED ACM certificate matches host api.example.com"), "{found:?}");
        // Offline the discovery is skipped, not passed.
        let evaluation = evaluate(&yaml, &policy(), &offline());
        assert!(judgement(&evaluation, "api").skipped.contains(&Rule::Elbv2AcmCertificateRequired));
    }

    #[test]
    fn certificate_status_expiry_and_missing_certificates() {
        let mut pending = issued(ARN, &["shop.example.com"], "2025-05-20T00:00:00Z");
        pending.status = "PENDING_VALIDATION".into();
        let found = findings(&evaluate(&shop(&COMPLIANT), &policy(), &facts(&[pending], &[])));
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].starts_with("acm-certificate-status shop/web: certificate"));
        assert!(found[0].contains("is PENDING_VALIDATION, not ISSUED"));
        assert!(found[1].starts_with("acm-certificate-expiration-check shop/web"));
        assert!(found[1].contains("expired on 2025-05-20"));
        let evaluation = evaluate(
            &shop(&COMPLIANT),
            &policy(),
            &facts(&[issued(ARN, &["x"], "2025-05-20T00:00:00Z")], &[]),
        );
        let expired = evaluation.findings().find(|f| f.rule == "acm-certificate-expiration-check").unwrap();
        assert_eq!(expired.severity, crate::api::Severity::Critical);

        let mut missing = facts(&[], &[]);
        missing.certificates.insert(ARN.into(), Fact::NotFound);
        let found = findings(&evaluate(&shop(&COMPLIANT), &policy(), &missing));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("does not exist in ACM"));

        // A failed lookup is not evidence either way: the rules are skipped.
        let mut failed = facts(&[], &[]);
        failed.certificates.insert(
            ARN.into(),
            Fact::Failed(crate::policy::facts::FactError {
                reason: "AccessDenied",
                message: "acm:DescribeCertificate".into(),
                transient: false,
            }),
        );
        let evaluation = evaluate(&shop(&COMPLIANT), &policy(), &failed);
        assert!(findings(&evaluation).is_empty());
        assert!(judgement(&evaluation, "web").skipped.contains(&Rule::AcmCertificateStatus));
    }

    #[test]
    fn host_coverage_follows_rfc_6125_wildcards() {
        let wildcard = facts(&[issued(ARN, &["*.example.com"], "2026-01-01T00:00:00Z")], &[]);
        let covered = alb_ingress("web", "Shop.Example.com", &COMPLIANT);
        assert!(findings(&evaluate(&covered, &policy(), &wildcard)).is_empty());

        let too_deep = alb_ingress("web", "a.shop.example.com", &COMPLIANT);
        let found = findings(&evaluate(&too_deep, &policy(), &wildcard));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with(
            "acm-certificate-host-coverage shop/web: no certificate on HTTPS listener 443 covers host a.shop.example.com \
             (they cover: *.example.com)"
        ));
        assert!(found[0].contains("--domain-name a.shop.example.com"));

        // Certificates of one listener cover together.
        let two = [
            issued(ARN, &["shop.example.com"], "2026-01-01T00:00:00Z"),
            issued(OTHER_ARN, &["a.shop.example.com"], "2026-01-01T00:00:00Z"),
        ];
        let both = (
            "alb.ingress.kubernetes.io/certificate-arn",
            "arn:aws:acm:us-east-1:123456789012:certificate/shop, arn:aws:acm:us-east-1:123456789012:certificate/other",
        );
        let yaml =
            too_deep.replace(&format!("certificate-arn: '{ARN}'"), &format!("certificate-arn: '{}'", both.1));
        assert!(findings(&evaluate(&yaml, &policy(), &facts(&two, &[]))).is_empty());
    }

    #[test]
    fn keys_of_configured_and_discovered_certificates_are_judged() {
        let later = "2026-06-01T00:00:00Z";
        let mut weak = issued(ARN, &["shop.example.com"], later);
        weak.key_algorithm = Some("RSA_1024".into());
        let found = findings(&evaluate(&shop(&COMPLIANT), &policy(), &facts(&[weak.clone()], &[])));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with(&format!(
            "acm-certificate-rsa-check shop/web: certificate {ARN} has a 1024-bit RSA key (RSA_1024)"
        )));

        let ec_only = crate::api::TlsIngressPolicySpec {
            certificate: crate::api::CertificateRequirements {
                allowed_key_algorithms: vec![crate::api::KeyAlgorithm::EcPrime256v1],
                ..Default::default()
            },
            ..policy()
        };
        let discovering = shop(&[BOTH_PORTS, REDIRECT, MODERN_POLICY]);
        let discovered = facts(&[issued(ARN, &["shop.example.com"], later)], &[("shop.example.com", &[ARN])]);
        let found = findings(&evaluate(&discovering, &ec_only, &discovered));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("acm-certificate-key-algorithm-approved shop/web"), "{found:?}");

        // Offline neither key rule passes: both are skipped.
        let evaluation = evaluate(&shop(&COMPLIANT), &ec_only, &offline());
        let skipped = &judgement(&evaluation, "web").skipped;
        assert!(skipped.contains(&Rule::AcmCertificateRsaCheck), "{skipped:?}");
        assert!(skipped.contains(&Rule::AcmCertificateKeyAlgorithmApproved), "{skipped:?}");
    }
}
