//! Types shared by the three kinds: severities, findings and the policy status block.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;

/// How much a finding matters. Ordered: `low < medium < high < critical`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    #[default]
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 4] = [Severity::Low, Severity::Medium, Severity::High, Severity::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|sev| sev.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown severity {s:?}: use low, medium, high or critical"))
    }
}

/// The Kubernetes object a finding is about.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRef {
    // Borrowed for the kinds this crate knows, so that references are cheap to make and clone.
    pub api_version: Cow<'static, str>,
    pub kind: Cow<'static, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

impl fmt::Display for ResourceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{}/{}", self.kind, ns, self.name),
            None => write!(f, "{}/{}", self.kind, self.name),
        }
    }
}

/// One policy violation, with the concrete fix.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// Rule id; where an AWS Config managed rule checks the same thing, its name.
    pub rule: String,
    pub severity: Severity,
    pub resource: ResourceRef,
    /// What is wrong, in a sentence.
    pub message: String,
    /// The exact annotation, parameter or AWS CLI command that fixes it.
    pub remediation: String,
}

/// Finding counts by severity.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SeverityCounts {
    #[serde(default)]
    pub low: u32,
    #[serde(default)]
    pub medium: u32,
    #[serde(default)]
    pub high: u32,
    #[serde(default)]
    pub critical: u32,
}

impl SeverityCounts {
    pub fn add(&mut self, severity: Severity) {
        *self.get_mut(severity) += 1;
    }

    pub fn get(&self, severity: Severity) -> u32 {
        match severity {
            Severity::Low => self.low,
            Severity::Medium => self.medium,
            Severity::High => self.high,
            Severity::Critical => self.critical,
        }
    }

    fn get_mut(&mut self, severity: Severity) -> &mut u32 {
        match severity {
            Severity::Low => &mut self.low,
            Severity::Medium => &mut self.medium,
            Severity::High => &mut self.high,
            Severity::Critical => &mut self.critical,
        }
    }

    pub fn total(&self) -> u32 {
        self.low + self.medium + self.high + self.critical
    }

    /// Number of findings at or above `threshold`.
    pub fn at_or_above(&self, threshold: Severity) -> u32 {
        Severity::ALL.into_iter().filter(|s| *s >= threshold).map(|s| self.get(s)).sum()
    }
}

/// Counts over one evaluation pass of a policy.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicySummary {
    /// Objects the policy selected and judged.
    pub evaluated: u32,
    /// Judged objects without any finding.
    pub compliant: u32,
    /// Objects skipped because they carry the `dpo.dev/exempt` label.
    #[serde(default)]
    pub exempt: u32,
    /// Total findings (the printer column `Violations`).
    pub violations: u32,
    /// Rule judgements not made for want of AWS facts (a rule on an object), listed in
    /// `status.skipped`.
    #[serde(default)]
    pub skipped: u32,
    /// Findings by severity.
    pub by_severity: SeverityCounts,
}

/// A rule not judged on some objects because AWS did not give the facts it needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SkippedRule {
    pub rule: String,
    /// The rule's severity: at or above `failOn`, the policy is not Ready unless
    /// `skippedRulesPass` is set.
    pub severity: Severity,
    /// Objects the rule was not judged for.
    pub count: u32,
    /// The first of them, at most `MAX_SKIPPED_RESOURCES`.
    pub resources: Vec<ResourceRef>,
    /// Why, as AWS answered: `AccessDenied: access denied: kms:DescribeKey on ...`; empty when
    /// the facts were not gathered yet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<String>,
}

/// How many objects a skipped rule lists; the rest are counted.
pub const MAX_SKIPPED_RESOURCES: usize = 10;

/// A governed object skipped on purpose, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Exemption {
    pub resource: ResourceRef,
    /// The value of the `dpo.dev/exempt` label.
    pub reason: String,
}

/// Status of a cluster policy (EncryptedVolumePolicy, TlsIngressPolicy).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
// Until the controller writes a status, the apiserver serves this default: without it a new
// object has no `observedGeneration` and kstatus (Flux) calls it Current before anything was
// checked; -1 is behind every generation, so kstatus says InProgress.
#[schemars(extend("default" = {"observedGeneration": -1}))]
pub struct PolicyStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` (gate on it), `Reconciling`.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<PolicySummary>,
    /// The most severe findings first; at most `MAX_STATUS_FINDINGS`.
    #[serde(default)]
    pub findings: Vec<Finding>,
    /// How many findings there are in all, including those not listed.
    #[serde(default)]
    pub findings_total: u32,
    /// Exempt objects, with the reason each gives.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exemptions: Vec<Exemption>,
    /// Rules not judged for want of AWS facts, the most severe first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<SkippedRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_evaluated_time: Option<Time>,
}

/// How many findings a status lists; the rest are counted in `findingsTotal`.
pub const MAX_STATUS_FINDINGS: usize = 100;

/// Minimum TLS protocol version a listener may accept.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum TlsVersion {
    #[serde(rename = "1.0")]
    Tls10,
    #[serde(rename = "1.1")]
    Tls11,
    #[default]
    #[serde(rename = "1.2")]
    Tls12,
    #[serde(rename = "1.3")]
    Tls13,
}

impl fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsVersion::Tls10 => "TLS 1.0",
            TlsVersion::Tls11 => "TLS 1.1",
            TlsVersion::Tls12 => "TLS 1.2",
            TlsVersion::Tls13 => "TLS 1.3",
        })
    }
}

pub(crate) fn default_true() -> bool {
    true
}
