//! Certificate keys: `acm-certificate-rsa-check` (an RSA key has at least 2048 bits, as AWS
//! Config's rule of that name checks) and `acm-certificate-key-algorithm-approved` (the key
//! algorithm is in the policy's `certificate.allowedKeyAlgorithms`).
//!
//! Both read ACM's `KeyAlgorithm`: without it (offline, a failed lookup, ACM not saying) they are
//! skipped, never passed.

use super::ledger::{Issue, Ledger};
use crate::api::{CertificateRequirements, KeyAlgorithm};
use crate::policy::Rule;
use crate::policy::facts::{CertificateFacts, Fact};

/// The shortest RSA key AWS Config's `acm-certificate-rsa-check` accepts.
const MIN_RSA_BITS: u32 = 2048;

/// The key rules that apply under `requirements`.
fn rules(requirements: &CertificateRequirements) -> impl Iterator<Item = Rule> {
    let approval =
        (!requirements.allowed_key_algorithms.is_empty()).then_some(Rule::AcmCertificateKeyAlgorithmApproved);
    std::iter::once(Rule::AcmCertificateRsaCheck).chain(approval)
}

/// Leaves the key rules waiting on a certificate that was not looked up or whose lookup failed.
pub(super) fn pend<T>(requirements: &CertificateRequirements, ledger: &mut Ledger, fact: &Fact<T>) {
    for rule in rules(requirements) {
        ledger.pend_for(rule, fact);
    }
}

/// Records what the key of a certificate whose facts are known violates.
pub(super) fn judge(
    certificate: &CertificateFacts,
    requirements: &CertificateRequirements,
    ledger: &mut Ledger,
    cause: usize,
) {
    let Some(algorithm) = certificate.key_algorithm.as_deref() else {
        rules(requirements).for_each(|rule| ledger.pend(rule));
        return;
    };
    let arn = &certificate.arn;
    match algorithm.strip_prefix("RSA_").map(str::parse::<u32>) {
        // Not an RSA key: the rule has nothing to object to.
        None => ledger.evaluate(Rule::AcmCertificateRsaCheck),
        Some(Ok(bits)) if bits >= MIN_RSA_BITS => ledger.evaluate(Rule::AcmCertificateRsaCheck),
        Some(Ok(bits)) => ledger.report(
            cause,
            Issue::new(
                Rule::AcmCertificateRsaCheck,
                format!(
                    "certificate {arn} has a {bits}-bit RSA key ({algorithm}), shorter than the \
                     {MIN_RSA_BITS} bits an RSA key needs"
                ),
                replacement(certificate, requirements),
            ),
        ),
        // An RSA size ACM did not have when this was written: its length cannot be judged.
        Some(Err(_)) => ledger.pend(Rule::AcmCertificateRsaCheck),
    }
    let allowed = &requirements.allowed_key_algorithms;
    if allowed.is_empty() {
        return;
    }
    ledger.evaluate(Rule::AcmCertificateKeyAlgorithmApproved);
    if !allowed.iter().any(|allowed| allowed.as_str() == algorithm) {
        ledger.report(
            cause,
            Issue::new(
                Rule::AcmCertificateKeyAlgorithmApproved,
                format!(
                    "certificate {arn} has an {algorithm} key, which is not in the policy's \
                     allowedKeyAlgorithms ({})",
                    names(allowed)
                ),
                replacement(certificate, requirements),
            ),
        );
    }
}

fn names(algorithms: &[KeyAlgorithm]) -> String {
    algorithms.iter().map(|algorithm| algorithm.as_str()).collect::<Vec<_>>().join(", ")
}

/// How to replace the certificate with one the policy accepts: request one from ACM with an
/// allowed key it issues (RSA_2048 when any is allowed), or import one when ACM issues none.
fn replacement(certificate: &CertificateFacts, requirements: &CertificateRequirements) -> String {
    let arn = &certificate.arn;
    let allowed = &requirements.allowed_key_algorithms;
    let request = if allowed.is_empty() {
        Some(KeyAlgorithm::Rsa2048)
    } else {
        allowed.iter().copied().find(|algorithm| algorithm.requestable())
    };
    let Some(algorithm) = request else {
        return format!(
            "Import a certificate whose key is one of {} (ACM issues none of them): `aws acm import-certificate \
             --certificate fileb://cert.pem --private-key fileb://key.pem --certificate-chain fileb://chain.pem`, \
             and reference its ARN instead of {arn}",
            names(allowed)
        );
    };
    let mut names = certificate.domain_names.iter().map(String::as_str);
    let domain = names.next().unwrap_or("<host>");
    let others: Vec<&str> = names.collect();
    let alternatives = if others.is_empty() {
        String::new()
    } else {
        format!(" --subject-alternative-names {}", others.join(" "))
    };
    format!(
        "Request a certificate with an {key} key (`aws acm request-certificate --domain-name {domain}{alternatives} \
         --key-algorithm {key} --validation-method DNS`), or import one, and reference its ARN instead of {arn}",
        key = algorithm.as_str()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Judgement;
    use crate::policy::facts::FactError;

    const ARN: &str = "arn:aws:acm:us-east-1:123456789012:certificate/a";

    fn certificate(algorithm: Option<&str>) -> CertificateFacts {
        CertificateFacts {
            arn: ARN.into(),
            status: "ISSUED".into(),
            not_after: None,
            domain_names: vec!["shop.example.com".into(), "www.shop.example.com".into()],
            in_use: true,
            key_algorithm: algorithm.map(str::to_string),
        }
    }

    fn allowing(algorithms: &[KeyAlgorithm]) -> CertificateRequirements {
        CertificateRequirements {
            allowed_key_algorithms: algorithms.to_vec(),
            ..CertificateRequirements::default()
        }
    }

    /// (findings as `rule: message => remediation`, rules checked, rules skipped).
    fn judged(algorithm: Option<&str>, requirements: &CertificateRequirements) -> (Vec<String>, Judgement) {
        let mut ledger = Ledger::default();
        judge(&certificate(algorithm), requirements, &mut ledger, 0);
        let found = ledger
            .issues
            .iter()
            .map(|(_, i)| format!("{}: {} => {}", i.rule, i.message, i.remediation))
            .collect();
        let mut judgement = Judgement::default();
        ledger.record_rules(&mut judgement);
        (found, judgement)
    }

    #[test]
    fn keys_of_2048_bits_and_more_and_ec_keys_pass() {
        for algorithm in ["RSA_2048", "RSA_3072", "RSA_4096", "EC_prime256v1", "EC_secp384r1", "EC_secp521r1"]
        {
            let (found, judgement) = judged(Some(algorithm), &CertificateRequirements::default());
            assert!(found.is_empty(), "{algorithm}: {found:?}");
            assert_eq!(judgement.checked, [Rule::AcmCertificateRsaCheck], "{algorithm}");
        }
    }

    #[test]
    fn an_rsa_key_shorter_than_2048_bits_is_a_finding() {
        let (found, _) = judged(Some("RSA_1024"), &CertificateRequirements::default());
        assert_eq!(
            found,
            [format!(
                "acm-certificate-rsa-check: certificate {ARN} has a 1024-bit RSA key (RSA_1024), shorter than the \
                 2048 bits an RSA key needs => Request a certificate with an RSA_2048 key (`aws acm \
                 request-certificate --domain-name shop.example.com --subject-alternative-names www.shop.example.com \
                 --key-algorithm RSA_2048 --validation-method DNS`), or import one, and reference its ARN instead of \
                 {ARN}"
            )]
        );
        // Allowing nothing but RSA does not excuse a short key; the fix uses an allowed key.
        let (found, _) =
            judged(Some("RSA_1024"), &allowing(&[KeyAlgorithm::Rsa4096, KeyAlgorithm::EcSecp384r1]));
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains("--key-algorithm EC_secp384r1"), "{found:?}");
        assert!(found[1].starts_with(&format!(
            "acm-certificate-key-algorithm-approved: certificate {ARN} has an RSA_1024 key, which is not in the \
             policy's allowedKeyAlgorithms (RSA_4096, EC_secp384r1)"
        )));
    }

    #[test]
    fn the_allowlist_is_judged_only_when_set() {
        let ec_only = allowing(&[KeyAlgorithm::EcPrime256v1]);
        let (found, judgement) = judged(Some("EC_prime256v1"), &ec_only);
        assert!(found.is_empty(), "{found:?}");
        assert_eq!(
            judgement.checked,
            [Rule::AcmCertificateRsaCheck, Rule::AcmCertificateKeyAlgorithmApproved]
        );

        let (found, _) = judged(Some("RSA_2048"), &ec_only);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains(
            "has an RSA_2048 key, which is not in the policy's allowedKeyAlgorithms (EC_prime256v1)"
        ));
        assert!(found[0].contains("--key-algorithm EC_prime256v1"));

        // An algorithm ACM added later is not on any allowlist, and is not RSA.
        let (found, judgement) = judged(Some("ML_DSA_65"), &ec_only);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("acm-certificate-key-algorithm-approved"));
        assert!(judgement.checked.contains(&Rule::AcmCertificateRsaCheck));
    }

    #[test]
    fn allowing_only_keys_acm_cannot_issue_asks_for_an_import() {
        let (found, _) =
            judged(Some("RSA_2048"), &allowing(&[KeyAlgorithm::Rsa3072, KeyAlgorithm::EcSecp521r1]));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].ends_with(&format!(
            "=> Import a certificate whose key is one of RSA_3072, EC_secp521r1 (ACM issues none of them): `aws acm \
             import-certificate --certificate fileb://cert.pem --private-key fileb://key.pem --certificate-chain \
             fileb://chain.pem`, and reference its ARN instead of {ARN}"
        )));
    }

    #[test]
    fn an_unknown_key_is_skipped_never_passed() {
        let both = allowing(&[KeyAlgorithm::Rsa2048]);
        let (found, judgement) = judged(None, &both);
        assert!(found.is_empty());
        assert!(judgement.checked.is_empty(), "{judgement:?}");
        assert_eq!(
            judgement.skipped,
            [Rule::AcmCertificateRsaCheck, Rule::AcmCertificateKeyAlgorithmApproved]
        );

        let (found, judgement) = judged(Some("RSA_lots"), &CertificateRequirements::default());
        assert!(found.is_empty());
        assert_eq!(judgement.skipped, [Rule::AcmCertificateRsaCheck]);

        let mut ledger = Ledger::default();
        let denied =
            FactError { reason: "AccessDenied", message: "acm:DescribeCertificate".into(), transient: false };
        pend(&CertificateRequirements::default(), &mut ledger, &Fact::<()>::Failed(denied.clone()));
        let mut judgement = Judgement::default();
        ledger.record_rules(&mut judgement);
        assert_eq!(judgement.skipped, [Rule::AcmCertificateRsaCheck]);
        assert_eq!(judgement.skip_causes.get(&Rule::AcmCertificateRsaCheck), Some(&denied));
    }
}
