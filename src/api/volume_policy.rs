//! `EncryptedVolumePolicy`: EBS StorageClasses, and the volumes made from them, are encrypted.

use super::common::{PolicyStatus, Severity, default_true};
use super::selector::LabelSelector;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Requires EBS StorageClasses, and the volumes provisioned from them, to be encrypted, with
/// approved customer-managed KMS keys where asked.
#[derive(CustomResource, JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "dpo.dev",
    version = "v1alpha1",
    kind = "EncryptedVolumePolicy",
    shortname = "evpol",
    category = "dpo",
    status = "PolicyStatus",
    doc = "Requires EBS StorageClasses and their volumes to be encrypted with approved KMS keys.",
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
pub struct EncryptedVolumePolicySpec {
    /// StorageClasses governed; absent: all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_selector: Option<LabelSelector>,
    /// StorageClasses must provision encrypted volumes.
    #[serde(default = "default_true")]
    pub require_encryption: bool,
    /// KMS keys allowed (`alias/...`, key ids or ARNs); empty: any key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_kms_keys: Vec<String>,
    /// The key must be customer-managed (a `kmsKeyId` is set and KMS says CUSTOMER).
    #[serde(default)]
    pub require_customer_managed_key: bool,
    /// Also check the EBS volumes of bound PersistentVolumes (EC2 DescribeVolumes).
    #[serde(default = "default_true")]
    pub check_volumes: bool,
    /// Also check the account's EBS encryption-by-default setting.
    #[serde(default = "default_true")]
    pub check_account_default: bool,
    /// Also check that the EKS cluster envelope-encrypts Kubernetes Secrets with a KMS key
    /// (`eks-secrets-encrypted`), and judge that key as the policy's other keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_secrets_encryption: Option<ClusterSecretsEncryption>,
    /// Findings at or above this severity make `Ready=False`, and so do rules at or above it
    /// that could not be judged for want of AWS facts (`reason: PolicyNotEvaluated`).
    #[serde(default)]
    pub fail_on: Severity,
    /// Rules that could not be judged (AWS denied or did not answer a call they need) do not
    /// keep the policy from `Ready`; they are still counted and listed in status.
    #[serde(default)]
    pub skipped_rules_pass: bool,
}

impl Default for EncryptedVolumePolicySpec {
    fn default() -> Self {
        EncryptedVolumePolicySpec {
            storage_class_selector: None,
            require_encryption: true,
            allowed_kms_keys: Vec::new(),
            require_customer_managed_key: false,
            check_volumes: true,
            check_account_default: true,
            cluster_secrets_encryption: None,
            fail_on: Severity::High,
            skipped_rules_pass: false,
        }
    }
}

/// The EKS cluster whose Secrets encryption an EncryptedVolumePolicy checks (`DescribeCluster`
/// in the controller's region).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSecretsEncryption {
    /// The EKS cluster's name.
    #[schemars(length(min = 1, max = 100), regex(pattern = r"^[0-9A-Za-z][A-Za-z0-9_-]*$"))]
    pub cluster_name: String,
    /// A cluster without a KMS key for Secrets is a violation at the rule's severity (high);
    /// `false` reports it at low severity, below the default `failOn`.
    #[serde(default = "default_true")]
    pub required: bool,
}
