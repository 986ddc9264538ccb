//! ACM certificates: what an ACM ARN looks like, which host names a certificate covers, and the
//! checks on a certificate's state.

use super::certificate_keys;
use super::ledger::{Issue, Ledger};
use crate::api::{CertificateRequirements, Severity};
use crate::policy::Rule;
use crate::policy::arn::Arn;
use crate::policy::facts::{CertificateFacts, Fact, Facts};
use jiff::Timestamp;

const SECONDS_PER_DAY: i64 = 86_400;

/// Whether `arn` names an ACM certificate: `arn:<partition>:acm:<region>:<account>:certificate/<id>`
/// in any AWS partition (`aws`, `aws-cn`, `aws-us-gov`, ...).
pub fn is_acm_certificate_arn(arn: &str) -> bool {
    Arn::parse(arn).is_some_and(|arn| {
        arn.service == "acm"
            && arn.in_aws_partition()
            && !arn.region.is_empty()
            && arn.has_account_id()
            && arn.resource.strip_prefix("certificate/").is_some_and(|id| !id.is_empty())
    })
}

/// Why a certificate reference is not an ACM ARN, for the finding's message.
pub fn describe_non_acm(arn: &str) -> &'static str {
    if arn.contains(":iam:") && arn.contains(":server-certificate/") {
        "an IAM server certificate"
    } else {
        "not an ACM certificate ARN"
    }
}

/// Whether a certificate name (DNS SAN) covers `host`, per RFC 6125: names compare without
/// regard to case or a trailing dot, and a wildcard stands for exactly one whole left-most label
/// (`*.example.com` covers `a.example.com`, not `example.com` nor `a.b.example.com`).
///
/// The load balancer controller discovers certificates by host with the same rule
/// (`pkg/ingress/cert_discovery.go` `domainMatchesHost`), comparing exactly where this ignores
/// case: Ingress hosts are lowercase DNS names (the apiserver validates them), so on any Ingress
/// the two agree.
pub fn name_covers(name: &str, host: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    let host = host.strip_suffix('.').unwrap_or(host);
    if name.eq_ignore_ascii_case(host) {
        return true;
    }
    match (name.strip_prefix("*."), host.split_once('.')) {
        (Some(parent), Some((label, host_parent))) => {
            !label.is_empty() && !parent.is_empty() && parent.eq_ignore_ascii_case(host_parent)
        }
        _ => false,
    }
}

/// The controller's certificate discovery for one host (`pkg/certs`, which its Ingress and
/// Gateway builders share): the ISSUED ACM certificates that match it, or the issue that keeps
/// the listener from being built. It refuses a host that more than one certificate matches
/// (`Discover`), as it cannot choose. `fix` turns an ARN into how to name it in configuration;
/// `setting` names where a certificate could be set instead. A lookup not made or failed is
/// returned as is, for the caller to leave pending.
pub(super) fn discover<'f>(
    facts: &'f dyn Facts,
    host: &str,
    setting: &str,
    fix: &dyn Fn(&str) -> String,
) -> Result<Fact<Vec<&'f CertificateFacts>>, Issue> {
    match facts.certificates_for_host(host) {
        Fact::Known(found) if found.len() > 1 => {
            let arns: Vec<&str> = found.iter().map(|certificate| certificate.arn.as_str()).collect();
            Err(Issue::new(
                Rule::Elbv2AcmCertificateRequired,
                format!(
                    "host {host} matches {} ISSUED ACM certificates ({}), so the controller cannot choose one and \
                     fails to build the HTTPS listener",
                    arns.len(),
                    arns.join(", ")
                ),
                format!("{}, or delete the certificates not meant for {host}", fix(arns[0])),
            ))
        }
        Fact::Known(found) if !found.is_empty() => Ok(Fact::Known(found)),
        Fact::Known(_) | Fact::NotFound => Err(Issue::new(
            Rule::Elbv2AcmCertificateRequired,
            format!(
                "no ISSUED ACM certificate matches host {host}, so the controller cannot discover one and fails to \
                 build the HTTPS listener"
            ),
            format!(
                "Request one with `aws acm request-certificate --domain-name {host} --validation-method DNS` and \
                 complete its validation (or set {setting})"
            ),
        )),
        other => Ok(other),
    }
}

/// `acm-certificate-host-coverage` for one host of a TLS listener (`listener` names it): one of
/// the `known` certificates covers it, or, when some certificate was not looked up (`unknown`),
/// the rule waits; else it is a finding, fixed by adding a certificate as `add_arn` says.
pub(super) fn judge_host_coverage(
    ledger: &mut Ledger,
    cause: usize,
    listener: &str,
    host: &str,
    (known, unknown): (&[&CertificateFacts], bool),
    add_arn: &dyn Fn() -> String,
) {
    ledger.evaluate(Rule::AcmCertificateHostCoverage);
    let covers =
        |certificate: &&CertificateFacts| certificate.domain_names.iter().any(|name| name_covers(name, host));
    if known.iter().any(covers) {
        return;
    }
    if unknown {
        // A certificate not looked up might cover it.
        ledger.pend(Rule::AcmCertificateHostCoverage);
        return;
    }
    let names: Vec<&str> = known.iter().flat_map(|c| c.domain_names.iter().map(String::as_str)).collect();
    ledger.report(
        cause,
        Issue::new(
            Rule::AcmCertificateHostCoverage,
            format!("no certificate on {listener} covers host {host} (they cover: {})", names.join(", ")),
            format!(
                "Request a certificate for it (`aws acm request-certificate --domain-name {host} \
                 --validation-method DNS`) and add its ARN: {}",
                add_arn()
            ),
        ),
    );
}

/// Looks up a configured certificate, records what its state violates, and returns the fact. A
/// certificate AWS does not know is a finding; one not looked up (offline) or whose lookup failed
/// leaves its rules pending: a failed lookup says nothing about the certificate, and the
/// component that gathered the facts reports the failure itself.
pub(super) fn judge_configured<'f>(
    facts: &'f dyn Facts,
    now: Timestamp,
    arn: &str,
    requirements: &CertificateRequirements,
    ledger: &mut Ledger,
    cause: usize,
) -> Fact<&'f CertificateFacts> {
    let fact = facts.certificate(arn);
    match &fact {
        Fact::Known(certificate) => judge_state(certificate, requirements, now, ledger, cause),
        Fact::NotFound => {
            ledger.evaluate(Rule::AcmCertificateExpirationCheck);
            ledger.report(
                cause,
                Issue::new(
                    Rule::AcmCertificateStatus,
                    format!(
                        "certificate {arn} does not exist in ACM (in the account and region the ALB uses)"
                    ),
                    format!(
                        "Request or import the certificate in the load balancer's region \
                         (`aws acm request-certificate --domain-name <host> --validation-method DNS`) \
                         and reference its ARN instead of {arn}"
                    ),
                ),
            );
        }
        Fact::Unknown | Fact::Failed(_) => {
            ledger.pend_for(Rule::AcmCertificateStatus, &fact);
            ledger.pend_for(Rule::AcmCertificateExpirationCheck, &fact);
            certificate_keys::pend(requirements, ledger, &fact);
        }
    }
    fact
}

/// Records the status, key and expiry findings of a certificate whose facts are known.
pub(super) fn judge_state(
    certificate: &CertificateFacts,
    requirements: &CertificateRequirements,
    now: Timestamp,
    ledger: &mut Ledger,
    cause: usize,
) {
    let arn = &certificate.arn;
    ledger.evaluate(Rule::AcmCertificateStatus);
    ledger.evaluate(Rule::AcmCertificateExpirationCheck);
    if certificate.status != "ISSUED" {
        // Clients are refused outright by an expired or revoked certificate.
        let severity = match certificate.status.as_str() {
            "EXPIRED" | "REVOKED" => Severity::Critical,
            _ => Severity::High,
        };
        let issue = Issue::new(
            Rule::AcmCertificateStatus,
            format!("certificate {arn} is {}, not ISSUED", certificate.status),
            format!(
                "See why with `aws acm describe-certificate --certificate-arn {arn}`; complete its \
                 validation or replace it with an ISSUED certificate \
                 (`aws acm request-certificate --domain-name <host> --validation-method DNS`)"
            ),
        );
        ledger.report(cause, issue.at(severity));
    }
    certificate_keys::judge(certificate, requirements, ledger, cause);
    let Some(not_after) = certificate.not_after else { return };
    let seconds_left = not_after.as_second() - now.as_second();
    let renew = format!(
        "Renew it: re-import an imported certificate with `aws acm import-certificate --certificate-arn {arn} \
         --certificate fileb://cert.pem --private-key fileb://key.pem --certificate-chain fileb://chain.pem`; \
         for an ACM-issued one see why managed renewal has not happened with \
         `aws acm describe-certificate --certificate-arn {arn} --query Certificate.RenewalSummary`"
    );
    let expiry = not_after.strftime("%Y-%m-%d");
    if seconds_left <= 0 {
        let issue = Issue::new(
            Rule::AcmCertificateExpirationCheck,
            format!("certificate {arn} expired on {expiry}"),
            renew,
        );
        ledger.report(cause, issue.at(Severity::Critical));
    } else if seconds_left < i64::from(requirements.min_days_to_expiry) * SECONDS_PER_DAY {
        ledger.report(
            cause,
            Issue::new(
                Rule::AcmCertificateExpirationCheck,
                format!(
                    "certificate {arn} expires on {expiry}, in {} days (the policy requires at least {})",
                    seconds_left / SECONDS_PER_DAY,
                    requirements.min_days_to_expiry
                ),
                renew,
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::FactSet;

    #[test]
    fn acm_arns_in_every_partition() {
        assert!(is_acm_certificate_arn("arn:aws:acm:us-east-1:123456789012:certificate/abc-123"));
        assert!(is_acm_certificate_arn("arn:aws-cn:acm:cn-north-1:123456789012:certificate/abc"));
        assert!(is_acm_certificate_arn("arn:aws-us-gov:acm:us-gov-west-1:123456789012:certificate/abc"));
        assert!(!is_acm_certificate_arn("arn:aws:iam::123456789012:server-certificate/shop"));
        assert!(!is_acm_certificate_arn("arn:aws:acm:us-east-1:1234:certificate/abc"));
        assert!(!is_acm_certificate_arn("arn:aws:acm:us-east-1:123456789012:certificate/"));
        assert!(!is_acm_certificate_arn("arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/x"));
        assert!(!is_acm_certificate_arn("arn:AWS:acm:us-east-1:123456789012:certificate/abc"));
        assert!(!is_acm_certificate_arn("certificate/abc"));
        assert_eq!(
            describe_non_acm("arn:aws:iam::123456789012:server-certificate/shop"),
            "an IAM server certificate"
        );
    }

    #[test]
    fn wildcards_cover_exactly_one_label() {
        assert!(name_covers("shop.example.com", "shop.example.com"));
        assert!(name_covers("Shop.Example.COM", "shop.example.com."));
        assert!(name_covers("*.example.com", "shop.example.com"));
        assert!(name_covers("*.EXAMPLE.com", "Shop.example.com"));
        assert!(!name_covers("*.example.com", "example.com"));
        assert!(!name_covers("*.example.com", "a.shop.example.com"));
        assert!(!name_covers("*.example.com", "shopexample.com"));
        assert!(!name_covers("shop.example.com", "*.example.com"));
        assert!(name_covers("*.example.com", "*.example.com"));
        assert!(!name_covers("*", "localhost"));
        assert!(!name_covers("shop*.example.com", "shop1.example.com"));
        assert!(!name_covers("*.com", "example.org"));
    }

    fn certificate(status: &str, not_after: &str) -> CertificateFacts {
        CertificateFacts {
            arn: "arn:aws:acm:us-east-1:123456789012:certificate/a".into(),
            status: status.into(),
            not_after: Some(not_after.parse().unwrap()),
            domain_names: vec!["shop.example.com".into()],
            in_use: true,
            key_algorithm: Some("RSA_2048".into()),
        }
    }

    fn judge(certificate: &CertificateFacts) -> Ledger {
        let mut ledger = Ledger::default();
        let now: Timestamp = "2025-06-01T00:00:00Z".parse().unwrap();
        judge_state(certificate, &CertificateRequirements::default(), now, &mut ledger, 0);
        ledger
    }

    #[test]
    fn issued_certificate_far_from_expiry_passes() {
        assert!(judge(&certificate("ISSUED", "2025-09-01T00:00:00Z")).issues.is_empty());
    }

    #[test]
    fn status_and_expiry_findings() {
        let ledger = judge(&certificate("PENDING_VALIDATION", "2025-06-10T00:00:00Z"));
        let found: Vec<_> = ledger.issues.iter().map(|(_, i)| (i.rule, i.severity)).collect();
        assert_eq!(
            found,
            [
                (Rule::AcmCertificateStatus, Severity::High),
                (Rule::AcmCertificateExpirationCheck, Severity::High)
            ]
        );
        assert!(
            ledger.issues[1]
                .1
                .message
                .contains("expires on 2025-06-10, in 9 days (the policy requires at least 14)")
        );

        let ledger = judge(&certificate("EXPIRED", "2025-05-01T00:00:00Z"));
        let found: Vec<_> = ledger.issues.iter().map(|(_, i)| (i.rule, i.severity)).collect();
        assert_eq!(
            found,
            [
                (Rule::AcmCertificateStatus, Severity::Critical),
                (Rule::AcmCertificateExpirationCheck, Severity::Critical)
            ]
        );
        assert!(ledger.issues[1].1.message.ends_with("expired on 2025-05-01"));
    }

    #[test]
    fn unknown_certificates_are_pending_and_missing_ones_are_findings() {
        let arn = "arn:aws:acm:us-east-1:123456789012:certificate/a";
        let mut facts = FactSet::default();
        let now = Timestamp::UNIX_EPOCH;
        let mut ledger = Ledger::default();
        let fact = judge_configured(&facts, now, arn, &CertificateRequirements::default(), &mut ledger, 0);
        assert_eq!(fact, Fact::Unknown);
        assert!(ledger.issues.is_empty());
        let mut judgement = crate::policy::Judgement::default();
        ledger.record_rules(&mut judgement);
        assert_eq!(
            judgement.skipped,
            [Rule::AcmCertificateStatus, Rule::AcmCertificateExpirationCheck, Rule::AcmCertificateRsaCheck]
        );

        facts.certificates.insert(arn.into(), Fact::NotFound);
        let mut ledger = Ledger::default();
        judge_configured(&facts, now, arn, &CertificateRequirements::default(), &mut ledger, 0);
        assert_eq!(ledger.issues.len(), 1);
        assert!(ledger.issues[0].1.message.contains("does not exist in ACM"));
    }
}
