//! The rule catalogue: ids (stable, never renamed), default severities and descriptions.

use crate::api::Severity;

/// Every rule the operator evaluates. Where an AWS Config managed rule checks the same thing,
/// the id is that rule's name so auditors can map one to the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    SecretsmanagerUsingCmk,
    SecretsmanagerRotationEnabledCheck,
    SecretsmanagerScheduledRotationSuccessCheck,
    SecretsmanagerSecretPeriodicRotation,
    CmkBackingKeyRotationEnabled,
    KmsCmkNotScheduledForDeletion,
    KmsKeyEnabled,
    KmsKeyApproved,
    StorageclassEncrypted,
    /// A StorageClass names a customer-managed KMS key where the policy asks for one.
    StorageclassUsingCmk,
    EncryptedVolumes,
    Ec2EbsEncryptionByDefault,
    EksSecretsEncrypted,
    Elbv2AcmCertificateRequired,
    AlbHttpToHttpsRedirectionCheck,
    Elbv2PredefinedSecurityPolicySslCheck,
    AcmCertificateExpirationCheck,
    AcmCertificateStatus,
    AcmCertificateHostCoverage,
    AcmCertificateRsaCheck,
    /// A certificate's key algorithm is in the policy's allowlist.
    AcmCertificateKeyAlgorithmApproved,
    /// An internet-facing ALB has a WAFv2 Web ACL, and the Web ACL exists.
    AlbWafEnabled,
    /// Annotations the AWS Load Balancer Controller would reject (bad JSON, bad values).
    AlbIngressAnnotationsValid,
    /// Members of one IngressGroup set conflicting values for one ALB.
    AlbIngressGroupConsistent,
    /// A policy among the manifests `dpo check` judges while `--policy` names the trusted ones.
    PolicyInInput,
}

impl Rule {
    pub const ALL: [Rule; 25] = [
        Rule::SecretsmanagerUsingCmk,
        Rule::SecretsmanagerRotationEnabledCheck,
        Rule::SecretsmanagerScheduledRotationSuccessCheck,
        Rule::SecretsmanagerSecretPeriodicRotation,
        Rule::CmkBackingKeyRotationEnabled,
        Rule::KmsCmkNotScheduledForDeletion,
        Rule::KmsKeyEnabled,
        Rule::KmsKeyApproved,
        Rule::StorageclassEncrypted,
        Rule::StorageclassUsingCmk,
        Rule::EncryptedVolumes,
        Rule::Ec2EbsEncryptionByDefault,
        Rule::EksSecretsEncrypted,
        Rule::Elbv2AcmCertificateRequired,
        Rule::AlbHttpToHttpsRedirectionCheck,
        Rule::Elbv2PredefinedSecurityPolicySslCheck,
        Rule::AcmCertificateExpirationCheck,
        Rule::AcmCertificateStatus,
        Rule::AcmCertificateHostCoverage,
        Rule::AcmCertificateRsaCheck,
        Rule::AcmCertificateKeyAlgorithmApproved,
        Rule::AlbWafEnabled,
        Rule::AlbIngressAnnotationsValid,
        Rule::AlbIngressGroupConsistent,
        Rule::PolicyInInput,
    ];

    pub fn id(self) -> &'static str {
        self.meta().0
    }

    /// Severity of a violation unless the rule says otherwise for a particular case.
    pub fn severity(self) -> Severity {
        self.meta().1
    }

    /// One line saying what the rule checks.
    pub fn description(self) -> &'static str {
        self.meta().2
    }

    /// The AWS Config managed rule this one mirrors, if any.
    pub fn aws_config_rule(self) -> Option<&'static str> {
        match self {
            Rule::KmsKeyApproved
            | Rule::StorageclassEncrypted
            | Rule::StorageclassUsingCmk
            | Rule::AcmCertificateStatus
            | Rule::AcmCertificateHostCoverage
            | Rule::AcmCertificateKeyAlgorithmApproved
            | Rule::AlbIngressAnnotationsValid
            | Rule::AlbIngressGroupConsistent
            | Rule::PolicyInInput
            | Rule::KmsKeyEnabled => None,
            other => Some(other.id()),
        }
    }

    pub fn from_id(id: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|rule| rule.id() == id)
    }

    fn meta(self) -> (&'static str, Severity, &'static str) {
        use Severity::*;
        match self {
            Rule::SecretsmanagerUsingCmk => (
                "secretsmanager-using-cmk",
                Medium,
                "The secret is encrypted with a customer-managed KMS key, not aws/secretsmanager.",
            ),
            Rule::SecretsmanagerRotationEnabledCheck => (
                "secretsmanager-rotation-enabled-check",
                Medium,
                "Rotation is on, and its interval is within the policy's maximum.",
            ),
            Rule::SecretsmanagerScheduledRotationSuccessCheck => (
                "secretsmanager-scheduled-rotation-success-check",
                Medium,
                "The last scheduled rotation succeeded.",
            ),
            Rule::SecretsmanagerSecretPeriodicRotation => (
                "secretsmanager-secret-periodic-rotation",
                Medium,
                "The secret was rotated within the last N days.",
            ),
            Rule::CmkBackingKeyRotationEnabled => {
                ("cmk-backing-key-rotation-enabled", Medium, "The KMS key has automatic rotation on.")
            }
            Rule::KmsCmkNotScheduledForDeletion => {
                ("kms-cmk-not-scheduled-for-deletion", Critical, "The KMS key is not pending deletion.")
            }
            Rule::KmsKeyEnabled => ("kms-key-enabled", Critical, "The KMS key is enabled."),
            Rule::KmsKeyApproved => (
                "kms-key-approved",
                High,
                "The KMS key (aliases resolved to ARNs) is in the policy's allowlist.",
            ),
            Rule::StorageclassEncrypted => {
                ("storageclass-encrypted", High, "An EBS StorageClass provisions encrypted volumes.")
            }
            Rule::StorageclassUsingCmk => (
                "storageclass-using-cmk",
                Medium,
                "An EBS StorageClass encrypts with a customer-managed KMS key, not aws/ebs.",
            ),
            Rule::EncryptedVolumes => {
                ("encrypted-volumes", High, "A bound PersistentVolume's EBS volume is encrypted.")
            }
            Rule::Ec2EbsEncryptionByDefault => (
                "ec2-ebs-encryption-by-default",
                Medium,
                "The account and region have EBS encryption by default on.",
            ),
            Rule::EksSecretsEncrypted => (
                "eks-secrets-encrypted",
                High,
                "The EKS cluster envelope-encrypts Kubernetes Secrets with a KMS key.",
            ),
            Rule::Elbv2AcmCertificateRequired => (
                "elbv2-acm-certificate-required",
                High,
                "An ALB ingress, NLB service or load balancer gateway terminates TLS with an ACM certificate.",
            ),
            Rule::AlbHttpToHttpsRedirectionCheck => {
                ("alb-http-to-https-redirection-check", High, "Every HTTP listener redirects to HTTPS.")
            }
            Rule::Elbv2PredefinedSecurityPolicySslCheck => (
                "elbv2-predefined-security-policy-ssl-check",
                High,
                "The SSL policy allows nothing below the policy's minimum TLS version, and offers post-quantum \
                 key exchange where the policy requires it.",
            ),
            Rule::AcmCertificateExpirationCheck => (
                "acm-certificate-expiration-check",
                High,
                "The certificate expires no sooner than N days from now.",
            ),
            Rule::AcmCertificateStatus => ("acm-certificate-status", High, "The certificate is ISSUED."),
            Rule::AcmCertificateHostCoverage => (
                "acm-certificate-host-coverage",
                High,
                "The certificate's names cover every host of the ingress.",
            ),
            Rule::AcmCertificateRsaCheck => {
                ("acm-certificate-rsa-check", High, "An RSA certificate's key is at least 2048 bits long.")
            }
            Rule::AcmCertificateKeyAlgorithmApproved => (
                "acm-certificate-key-algorithm-approved",
                Medium,
                "The certificate's key algorithm is in the policy's allowedKeyAlgorithms.",
            ),
            Rule::AlbWafEnabled => (
                "alb-waf-enabled",
                Medium,
                "An internet-facing ALB has a WAFv2 Web ACL, and the Web ACL exists.",
            ),
            Rule::AlbIngressAnnotationsValid => (
                "alb-ingress-annotations-valid",
                High,
                "The AWS Load Balancer Controller annotations parse and hold valid values.",
            ),
            Rule::AlbIngressGroupConsistent => (
                "alb-ingress-group-consistent",
                High,
                "Members of one IngressGroup do not set conflicting values for the shared ALB.",
            ),
            Rule::PolicyInInput => (
                "policy-in-input",
                High,
                "The checked manifests bring no policy of their own while --policy names the trusted ones.",
            ),
        }
    }

    /// How to fix a violation in general; each finding carries the exact fix for its case.
    pub fn remediation(self) -> &'static str {
        match self {
            Rule::SecretsmanagerUsingCmk => {
                "Encrypt the secret with a customer-managed KMS key: \
                 `aws secretsmanager update-secret --secret-id <secret> --kms-key-id <key-arn>`."
            }
            Rule::SecretsmanagerRotationEnabledCheck => {
                "Turn rotation on, at most the policy's maximum interval apart: \
                 `aws secretsmanager rotate-secret --secret-id <secret> \
                 --rotation-rules AutomaticallyAfterDays=<days>` (with `--rotation-lambda-arn` unless \
                 the secret uses managed rotation)."
            }
            Rule::SecretsmanagerScheduledRotationSuccessCheck => {
                "Fix what made the rotation function fail (its CloudWatch logs say), then rotate again: \
                 `aws secretsmanager rotate-secret --secret-id <secret>`."
            }
            Rule::SecretsmanagerSecretPeriodicRotation => {
                "Rotate the secret now and keep rotation scheduled: \
                 `aws secretsmanager rotate-secret --secret-id <secret>`."
            }
            Rule::CmkBackingKeyRotationEnabled => {
                "Turn on automatic key rotation: `aws kms enable-key-rotation --key-id <key-id>`."
            }
            Rule::KmsCmkNotScheduledForDeletion => {
                "Cancel the deletion, then enable the key again: \
                 `aws kms cancel-key-deletion --key-id <key-id>` and `aws kms enable-key --key-id <key-id>`."
            }
            Rule::KmsKeyEnabled => "Enable the key: `aws kms enable-key --key-id <key-id>`.",
            Rule::KmsKeyApproved => {
                "Use a key from the policy's `allowedKmsKeys`, or add this key's ARN to that list."
            }
            Rule::StorageclassEncrypted => {
                "Set `parameters.kmsKeyId` on the StorageClass (the EBS CSI driver then encrypts with that key, \
                 whatever `encrypted` says) or `parameters.encrypted: \"true\"` (the account's default EBS key); \
                 StorageClass parameters cannot be changed, so recreate it."
            }
            Rule::StorageclassUsingCmk => {
                "Set `parameters.kmsKeyId` to the ARN of a customer-managed KMS key; StorageClass parameters \
                 cannot be changed, so recreate it."
            }
            Rule::EncryptedVolumes => {
                "EBS volumes cannot be encrypted in place: snapshot the volume, copy the snapshot with \
                 `aws ec2 copy-snapshot --encrypted --kms-key-id <key-arn>`, and restore the volume from \
                 the copy, or move the data to a claim of an encrypted StorageClass."
            }
            Rule::Ec2EbsEncryptionByDefault => {
                "Turn on EBS encryption by default: `aws ec2 enable-ebs-encryption-by-default --region <region>`."
            }
            Rule::EksSecretsEncrypted => {
                "Turn on envelope encryption of Secrets with a customer-managed KMS key: \
                 `aws eks associate-encryption-config --cluster-name <cluster> \
                 --encryption-config '[{\"resources\":[\"secrets\"],\"provider\":{\"keyArn\":\"<key-arn>\"}}]'` \
                 (it cannot be turned off again)."
            }
            Rule::Elbv2AcmCertificateRequired => {
                "Terminate TLS with an ACM certificate: `alb.ingress.kubernetes.io/certificate-arn: <acm-arn>` \
                 on an Ingress, `service.beta.kubernetes.io/aws-load-balancer-ssl-cert: <acm-arn>` on an NLB \
                 Service."
            }
            Rule::AlbHttpToHttpsRedirectionCheck => {
                "Redirect HTTP to HTTPS: annotate the Ingress with `alb.ingress.kubernetes.io/ssl-redirect: \"443\"`."
            }
            Rule::Elbv2PredefinedSecurityPolicySslCheck => {
                "Set `alb.ingress.kubernetes.io/ssl-policy` (Ingress) or \
                 `service.beta.kubernetes.io/aws-load-balancer-ssl-negotiation-policy` (NLB Service) to a \
                 policy with no protocol below the minimum, such as `ELBSecurityPolicy-TLS13-1-2-2021-06` \
                 (`ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09` where post-quantum key exchange is required)."
            }
            Rule::AcmCertificateExpirationCheck => {
                "Renew or replace the certificate (ACM renews DNS-validated certificates itself while the \
                 validation CNAME records stay in place) and reference the ARN that is valid."
            }
            Rule::AcmCertificateStatus => {
                "Complete the certificate's validation (`aws acm describe-certificate --certificate-arn <arn>` \
                 lists the pending records) or reference an ISSUED certificate."
            }
            Rule::AcmCertificateHostCoverage => {
                "Reference certificates that cover every host: list several ARNs, comma-separated, in \
                 `alb.ingress.kubernetes.io/certificate-arn`, or request one with \
                 `aws acm request-certificate --domain-name <host> --subject-alternative-names <hosts> \
                 --validation-method DNS`."
            }
            Rule::AcmCertificateRsaCheck => {
                "Replace the certificate with one whose key is RSA 2048 bits or longer, or ECDSA: \
                 `aws acm request-certificate --domain-name <host> --key-algorithm RSA_2048 \
                 --validation-method DNS` (or import one), and reference its ARN."
            }
            Rule::AcmCertificateKeyAlgorithmApproved => {
                "Replace the certificate with one whose key algorithm the policy allows: \
                 `aws acm request-certificate --domain-name <host> --key-algorithm <algorithm> \
                 --validation-method DNS` (RSA_2048, EC_prime256v1 or EC_secp384r1; import others), \
                 and reference its ARN."
            }
            Rule::AlbWafEnabled => {
                "Attach a regional WAFv2 Web ACL: `alb.ingress.kubernetes.io/wafv2-acl-arn: \
                 arn:aws:wafv2:<region>:<account>:regional/webacl/<name>/<id>` on the Ingress (or \
                 `spec.wafv2AclArn` in its elbv2.k8s.aws IngressClassParams); `aws wafv2 list-web-acls \
                 --scope REGIONAL` lists the ARNs."
            }
            Rule::AlbIngressAnnotationsValid => {
                "Give each `alb.ingress.kubernetes.io/*` annotation a value in the syntax the AWS Load Balancer \
                 Controller documents for it."
            }
            Rule::AlbIngressGroupConsistent => {
                "Give the conflicting annotation one value on every Ingress of the group, or move the Ingress \
                 to a group of its own with `alb.ingress.kubernetes.io/group.name`."
            }
            Rule::PolicyInInput => {
                "Move the policy into the files CI passes with `--policy`, where changes to policy are \
                 reviewed, or drop it from the change."
            }
        }
    }

    /// Whether the rule needs facts from AWS (and so is skipped offline without `--aws`).
    pub fn needs_aws(self) -> bool {
        matches!(
            self,
            Rule::SecretsmanagerUsingCmk
                | Rule::SecretsmanagerRotationEnabledCheck
                | Rule::SecretsmanagerScheduledRotationSuccessCheck
                | Rule::SecretsmanagerSecretPeriodicRotation
                | Rule::CmkBackingKeyRotationEnabled
                | Rule::KmsCmkNotScheduledForDeletion
                | Rule::KmsKeyEnabled
                | Rule::EncryptedVolumes
                | Rule::Ec2EbsEncryptionByDefault
                | Rule::EksSecretsEncrypted
                | Rule::AcmCertificateExpirationCheck
                | Rule::AcmCertificateStatus
                | Rule::AcmCertificateHostCoverage
                | Rule::AcmCertificateRsaCheck
                | Rule::AcmCertificateKeyAlgorithmApproved
        )
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_of_the_design_contract_are_stable() {
        let contract = [
            "secretsmanager-using-cmk",
            "secretsmanager-rotation-enabled-check",
            "secretsmanager-scheduled-rotation-success-check",
            "secretsmanager-secret-periodic-rotation",
            "cmk-backing-key-rotation-enabled",
            "kms-cmk-not-scheduled-for-deletion",
            "kms-key-enabled",
            "kms-key-approved",
            "storageclass-encrypted",
            "encrypted-volumes",
            "ec2-ebs-encryption-by-default",
            "elbv2-acm-certificate-required",
            "alb-http-to-https-redirection-check",
            "elbv2-predefined-security-policy-ssl-check",
            "acm-certificate-expiration-check",
            "acm-certificate-status",
            "acm-certificate-host-coverage",
            "acm-certificate-rsa-check",
            "eks-secrets-encrypted",
        ];
        for id in contract {
            let rule = Rule::from_id(id).unwrap_or_else(|| panic!("rule {id} missing"));
            assert_eq!(rule.id(), id);
        }
    }

    #[test]
    fn ids_are_unique() {
        let mut ids: Vec<_> = Rule::ALL.iter().map(|r| r.id()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), Rule::ALL.len());
    }

    #[test]
    fn the_readme_lists_every_rule_with_its_severity() {
        let readme = include_str!("../../README.md");
        for rule in Rule::ALL {
            let row = format!("| `{}` | {} |", rule.id(), rule.severity());
            assert!(readme.contains(&row), "the README's rule table has no row starting {row}");
        }
    }
}
