//! `ProtectedSecret`: a Kubernetes Secret kept in sync with AWS Secrets Manager, under policy.

use super::common::{Finding, default_true};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Syncs a value from AWS Secrets Manager into a Kubernetes Secret and keeps it fresh, while
/// checking the policy around it: a customer-managed KMS key, enabled and rotating, and the
/// secret itself rotating on time.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "dpo.dev",
    version = "v1alpha1",
    kind = "ProtectedSecret",
    namespaced,
    shortname = "psec",
    category = "dpo",
    status = "ProtectedSecretStatus",
    doc = "A Kubernetes Secret synced from AWS Secrets Manager under data-protection policy.",
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
    printcolumn(name = "Secret", type_ = "string", json_path = ".status.secretRef.name", priority = "1"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[x_kube(validation = Rule::new("(has(self.data) && size(self.data) > 0) || has(self.dataFrom) || has(self.template)").message("set at least one of data, dataFrom or template: otherwise nothing would be synced"))]
#[serde(rename_all = "camelCase")]
pub struct ProtectedSecretSpec {
    /// Where the value lives in AWS Secrets Manager.
    pub source: SecretSource,
    /// The Kubernetes Secret to write.
    #[serde(default)]
    pub target: SecretTarget,
    /// Explicit keys of the Secret, each taken from a JSON property of the AWS secret.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<DataMapping>,
    /// Takes keys in bulk from the AWS secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_from: Option<DataFrom>,
    /// Renders Secret keys from templates over the secret's JSON properties.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<SecretTemplate>,
    /// How often to look for a new version, as a duration (`1h`, `15m`); `0` syncs once.
    /// Default: the controller's `--default-refresh` (1h unless set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == '0' || duration(self) == duration('0s') || duration(self) >= duration('10s')").message("refreshInterval must be 0 (sync once) or at least 10s"))]
    #[schemars(regex(pattern = r"^(0|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$"))]
    pub refresh_interval: Option<String>,
    /// Workloads in this namespace to restart when the synced value changes (opt-in).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rollout_restart: Vec<RolloutTarget>,
    /// The data-protection policy the AWS secret must meet.
    #[serde(default)]
    pub policy: SecretPolicy,
}

/// The AWS Secrets Manager secret to read.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[x_kube(validation = Rule::new("!(has(self.versionStage) && has(self.versionId))").message("set at most one of versionStage and versionId"))]
#[serde(rename_all = "camelCase")]
pub struct SecretSource {
    /// Secret name or full ARN.
    #[schemars(length(min = 1, max = 2048))]
    pub secret_id: String,
    /// AWS region of the secret; default: the controller's region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z]{2}(-[a-z]+)+-[0-9]+$"))]
    pub region: Option<String>,
    /// Staging label to read; default `AWSCURRENT`. Exclusive with `versionId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_stage: Option<String>,
    /// Exact version to read. Exclusive with `versionStage`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// IAM role to assume for this read; must be in the controller's allowlist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$"))]
    pub role_arn: Option<String>,
}

/// Staging label read when neither `versionStage` nor `versionId` is set.
pub const DEFAULT_VERSION_STAGE: &str = "AWSCURRENT";

impl SecretSource {
    /// The version to read: an exact id, or a staging label.
    pub fn version(&self) -> SecretVersion<'_> {
        match (&self.version_id, &self.version_stage) {
            (Some(id), _) => SecretVersion::Id(id),
            (None, Some(stage)) => SecretVersion::Stage(stage),
            (None, None) => SecretVersion::Stage(DEFAULT_VERSION_STAGE),
        }
    }
}

/// Which version of a secret to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SecretVersion<'a> {
    Stage(&'a str),
    Id(&'a str),
}

/// The Kubernetes Secret the value is written to.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecretTarget {
    /// Secret name; default: the ProtectedSecret's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Secret type; default `Opaque`. One of the operator's `--allowed-secret-types`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(rename = "type")]
    #[x_kube(validation = Rule::new("self != 'kubernetes.io/service-account-token'").message("a ProtectedSecret never writes a ServiceAccount token Secret"))]
    #[schemars(length(min = 1, max = 253))]
    pub type_: Option<String>,
    /// Labels added to the Secret; not `dpo.dev/*` keys.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[x_kube(validation = Rule::new(RESERVED_KEYS_RULE).message(RESERVED_KEYS_MESSAGE))]
    #[schemars(extend("maxProperties" = 64))]
    pub labels: BTreeMap<String, String>,
    /// Annotations added to the Secret; not `dpo.dev/*` or `kubernetes.io/service-account.*`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[x_kube(validation = Rule::new(RESERVED_KEYS_RULE).message(RESERVED_KEYS_MESSAGE))]
    #[schemars(extend("maxProperties" = 64))]
    pub annotations: BTreeMap<String, String>,
    /// Owner: create and own the Secret. Orphan: create it without an owner. Merge: only write
    /// our keys into a Secret that already exists.
    #[serde(default)]
    pub creation_policy: CreationPolicy,
    /// Retain: keep the Secret when the ProtectedSecret goes. Delete: remove it (or, with
    /// Merge, our keys).
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

/// The operator's own keys and those binding a Secret to a ServiceAccount (also checked by the
/// controller, for objects stored before this rule).
const RESERVED_KEYS_RULE: &str =
    "self.all(k, !k.startsWith('dpo.dev/') && !k.startsWith('kubernetes.io/service-account.'))";
const RESERVED_KEYS_MESSAGE: &str = "dpo.dev/* and kubernetes.io/service-account.* keys are reserved for the operator and ServiceAccount tokens";

/// A Secret data key as the apiserver takes it (the controller checks the same, for keys taken
/// from the AWS secret).
const SECRET_KEY_RULE: &str = "self != '.' && !self.startsWith('..')";

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CreationPolicy {
    #[default]
    Owner,
    Orphan,
    Merge,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeletionPolicy {
    #[default]
    Retain,
    Delete,
}

/// One Secret key taken from the AWS secret.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DataMapping {
    /// Key in the Kubernetes Secret.
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    #[x_kube(validation = Rule::new(SECRET_KEY_RULE).message("a Secret key is not '.' and does not start with '..'"))]
    pub key: String,
    /// JSON path into the secret value (`db.password`, `hosts.0`); absent: the whole value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property: Option<String>,
}

/// Bulk extraction of keys.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct DataFrom {
    /// Every top-level JSON key of the secret becomes a Secret key.
    #[serde(default)]
    pub extract: bool,
}

/// Keys rendered from templates (minijinja syntax, strict: a missing key is an error).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct SecretTemplate {
    /// Secret key to template, e.g. `DSN: "postgres://{{ username }}:{{ password }}@db/shop"`.
    #[serde(default)]
    #[x_kube(validation = Rule::new("self.all(k, size(k) <= 253 && k.matches('^[-._a-zA-Z0-9]+$') && k != '.' && !k.startsWith('..'))").message("template keys are Secret keys: 1 to 253 letters, digits, '-', '_' or '.', not '.' or '..*'"))]
    #[schemars(extend("maxProperties" = 256))]
    pub data: BTreeMap<String, String>,
}

/// A workload restarted when the synced value changes.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct RolloutTarget {
    pub kind: WorkloadKind,
    #[schemars(length(min = 1))]
    pub name: String,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
    DaemonSet,
    /// An Argo Rollouts `Rollout` (`argoproj.io/v1alpha1`), restarted through `spec.restartAt`.
    Rollout,
}

/// The data-protection policy the AWS secret must meet.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecretPolicy {
    /// Audit: sync and report violations. Enforce: do not sync a violating value (the last good
    /// Secret stays).
    #[serde(default)]
    pub enforcement: Enforcement,
    /// The secret must be encrypted with a customer-managed KMS key, not `aws/secretsmanager`.
    #[serde(default = "default_true")]
    pub require_customer_managed_key: bool,
    /// KMS keys allowed to encrypt the secret: `alias/...`, key ids or ARNs. Empty: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_kms_keys: Vec<String>,
    /// The KMS key must have automatic rotation on.
    #[serde(default = "default_true")]
    pub require_key_rotation: bool,
    /// Rotation requirements for the secret itself.
    #[serde(default)]
    pub rotation: RotationPolicy,
}

impl Default for SecretPolicy {
    fn default() -> Self {
        SecretPolicy {
            enforcement: Enforcement::Audit,
            require_customer_managed_key: true,
            allowed_kms_keys: Vec::new(),
            require_key_rotation: true,
            rotation: RotationPolicy::default(),
        }
    }
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Enforcement {
    #[default]
    Audit,
    Enforce,
}

/// Rotation requirements for the AWS secret.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RotationPolicy {
    /// Rotation must be enabled.
    #[serde(default)]
    pub required: bool,
    /// Longest rotation interval allowed, in days.
    #[serde(default = "default_max_interval_days")]
    #[schemars(range(min = 1, max = 3650))]
    pub max_interval_days: u32,
    /// The secret must have rotated within this many days; default `maxIntervalDays`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3650))]
    pub max_days_since_rotation: Option<u32>,
}

fn default_max_interval_days() -> u32 {
    90
}

impl Default for RotationPolicy {
    fn default() -> Self {
        RotationPolicy {
            required: false,
            max_interval_days: default_max_interval_days(),
            max_days_since_rotation: None,
        }
    }
}

/// Observed state of a ProtectedSecret.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
// Served until the controller writes a status: see `PolicyStatus`.
#[schemars(extend("default" = {"observedGeneration": -1}))]
pub struct ProtectedSecretStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` (gate on it), `Synced`, `Compliant`, `Reconciling`.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// AWS version id of the value in the Secret: never the value, never a hash of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synced_version_id: Option<String>,
    /// The version the `rolloutRestart` workloads were last restarted for (or started with); a
    /// restart is owed while it is not `syncedVersionId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolled_out_version_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct SecretRef {
    pub name: String,
}
