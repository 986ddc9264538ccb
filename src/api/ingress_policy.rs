//! `TlsIngressPolicy`: ALB ingresses, NLB services and gateways terminate TLS properly.

use super::common::{PolicyStatus, Severity, TlsVersion, default_true};
use super::selector::LabelSelector;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Requires AWS Load Balancer Controller ingresses (and NLB services) to terminate TLS with a
/// valid ACM certificate, redirect HTTP to HTTPS and use TLS 1.2+ security policies.
#[derive(CustomResource, JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "dpo.dev",
    version = "v1alpha1",
    kind = "TlsIngressPolicy",
    shortname = "tlspol",
    category = "dpo",
    status = "PolicyStatus",
    doc = "Requires ALB ingresses and NLB services to terminate TLS with valid ACM certificates.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
    ),
    printcolumn(name = "Violations", type_ = "integer", json_path = ".status.summary.violations"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct TlsIngressPolicySpec {
    /// Namespaces governed; absent: all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// Ingresses (and Services) governed; absent: all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_selector: Option<LabelSelector>,
    /// Every HTTP listener must redirect to HTTPS.
    #[serde(default = "default_true")]
    pub require_https_redirect: bool,
    /// Lowest TLS version a listener may accept.
    #[serde(default)]
    pub min_tls_version: TlsVersion,
    /// If set, only these ELB security policies are allowed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_ssl_policies: Vec<String>,
    /// TLS listeners must use a post-quantum predefined policy (a `-PQ-` one, such as
    /// `ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09`): hybrid ML-KEM key exchange, so that traffic
    /// recorded today cannot be decrypted by a future quantum computer.
    #[serde(default)]
    pub require_post_quantum: bool,
    /// Internet-facing ALBs must have a WAFv2 Web ACL (`alb-waf-enabled`); with AWS facts, one
    /// that exists.
    #[serde(default)]
    pub require_waf: bool,
    /// Certificate requirements.
    #[serde(default)]
    pub certificate: CertificateRequirements,
    /// Also judge Services of type LoadBalancer with NLB TLS annotations.
    #[serde(default = "default_true")]
    pub include_services: bool,
    /// Also judge Gateway API Gateways of the AWS Load Balancer Controller's gateway classes.
    #[serde(default = "default_true")]
    pub include_gateways: bool,
    /// Gateways governed; absent: all of them (`ingressSelector` does not apply to Gateways).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_selector: Option<LabelSelector>,
    /// Findings at or above this severity make `Ready=False`, and so do rules at or above it
    /// that could not be judged for want of AWS facts (`reason: PolicyNotEvaluated`).
    #[serde(default)]
    pub fail_on: Severity,
    /// Rules that could not be judged (AWS denied or did not answer a call they need) do not
    /// keep the policy from `Ready`; they are still counted and listed in status.
    #[serde(default)]
    pub skipped_rules_pass: bool,
}

impl Default for TlsIngressPolicySpec {
    fn default() -> Self {
        TlsIngressPolicySpec {
            namespace_selector: None,
            ingress_selector: None,
            require_https_redirect: true,
            min_tls_version: TlsVersion::Tls12,
            allowed_ssl_policies: Vec::new(),
            require_post_quantum: false,
            require_waf: false,
            certificate: CertificateRequirements::default(),
            include_services: true,
            include_gateways: true,
            gateway_selector: None,
            fail_on: Severity::High,
            skipped_rules_pass: false,
        }
    }
}

/// Requirements on ACM certificates.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CertificateRequirements {
    /// A certificate must stay valid at least this many more days.
    #[serde(default = "default_min_days_to_expiry")]
    #[schemars(range(min = 0, max = 3650))]
    pub min_days_to_expiry: u32,
    /// If set, certificates must have one of these key algorithms (ACM's `KeyAlgorithm`). An RSA
    /// key shorter than 2048 bits is refused whatever this says (`acm-certificate-rsa-check`),
    /// so `RSA_1024` cannot be listed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_key_algorithms: Vec<KeyAlgorithm>,
}

/// A certificate key algorithm, as ACM names it.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyAlgorithm {
    #[serde(rename = "RSA_2048")]
    Rsa2048,
    #[serde(rename = "RSA_3072")]
    Rsa3072,
    #[serde(rename = "RSA_4096")]
    Rsa4096,
    #[serde(rename = "EC_prime256v1")]
    EcPrime256v1,
    #[serde(rename = "EC_secp384r1")]
    EcSecp384r1,
    #[serde(rename = "EC_secp521r1")]
    EcSecp521r1,
}

impl KeyAlgorithm {
    /// ACM's name for it, as DescribeCertificate reports it.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::Rsa2048 => "RSA_2048",
            KeyAlgorithm::Rsa3072 => "RSA_3072",
            KeyAlgorithm::Rsa4096 => "RSA_4096",
            KeyAlgorithm::EcPrime256v1 => "EC_prime256v1",
            KeyAlgorithm::EcSecp384r1 => "EC_secp384r1",
            KeyAlgorithm::EcSecp521r1 => "EC_secp521r1",
        }
    }

    /// Whether ACM issues certificates with this key (RequestCertificate `--key-algorithm`);
    /// certificates with the others can only be imported.
    pub fn requestable(self) -> bool {
        matches!(self, KeyAlgorithm::Rsa2048 | KeyAlgorithm::EcPrime256v1 | KeyAlgorithm::EcSecp384r1)
    }
}

fn default_min_days_to_expiry() -> u32 {
    14
}

impl Default for CertificateRequirements {
    fn default() -> Self {
        CertificateRequirements {
            min_days_to_expiry: default_min_days_to_expiry(),
            allowed_key_algorithms: Vec::new(),
        }
    }
}
