//! Facts about AWS that some rules need. The policy core never fetches them: the controllers
//! (and `dpo check --aws`) gather them first through `crate::aws`, then hand them in here.

use jiff::Timestamp;
use std::collections::HashMap;
use std::fmt;

/// A fact as the evaluator sees it.
#[derive(Clone, Debug, PartialEq)]
pub enum Fact<T> {
    Known(T),
    /// Not gathered (offline run): rules needing it are reported as skipped.
    Unknown,
    /// Gathering failed: rules needing it are reported as skipped, with the cause.
    Failed(FactError),
    /// AWS says there is no such thing.
    NotFound,
}

impl<T> Fact<T> {
    pub fn as_ref(&self) -> Fact<&T> {
        match self {
            Fact::Known(t) => Fact::Known(t),
            Fact::Unknown => Fact::Unknown,
            Fact::Failed(e) => Fact::Failed(e.clone()),
            Fact::NotFound => Fact::NotFound,
        }
    }

    pub fn known(&self) -> Option<&T> {
        match self {
            Fact::Known(t) => Some(t),
            _ => None,
        }
    }
}

/// Why gathering a fact failed. Safe to show: it never holds a secret value.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FactError {
    /// CamelCase, as conditions use it: `AccessDenied`, `AwsThrottled`, `AwsUnavailable`, ...
    pub reason: &'static str,
    /// What went wrong, naming the refused IAM action where there is one.
    pub message: String,
    /// Asking again may succeed without anyone's help (throttling, 5xx, timeouts).
    pub transient: bool,
}

impl fmt::Display for FactError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.message)
    }
}

/// Who manages a KMS key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyManager {
    Aws,
    Customer,
}

/// State of a KMS key, as `DescribeKey` tells it. Whether it rotates is a fact of its own
/// ([`Facts::kms_key_rotation`]): another call, which may fail alone.
#[derive(Clone, Debug, PartialEq)]
pub struct KmsKeyFacts {
    pub arn: String,
    pub key_id: String,
    pub key_manager: KeyManager,
    pub enabled: bool,
    pub pending_deletion: bool,
    /// When a pending deletion happens.
    pub deletion_date: Option<Timestamp>,
}

/// State of an ACM certificate.
#[derive(Clone, Debug, PartialEq)]
pub struct CertificateFacts {
    pub arn: String,
    /// `ISSUED`, `PENDING_VALIDATION`, `EXPIRED`, `REVOKED`, ...
    pub status: String,
    pub not_after: Option<Timestamp>,
    /// The domain name and every subject alternative name.
    pub domain_names: Vec<String>,
    pub in_use: bool,
    /// ACM's `KeyAlgorithm`: `RSA_2048`, `EC_prime256v1`, ...; `None` when ACM did not say.
    pub key_algorithm: Option<String>,
}

/// A WAFv2 Web ACL that exists (GetWebACL found it).
#[derive(Clone, Debug, PartialEq)]
pub struct WebAclFacts {
    pub arn: String,
    /// How many rules it holds: an empty Web ACL only applies its default action.
    pub rules: usize,
}

/// Encryption of one EBS volume.
#[derive(Clone, Debug, PartialEq)]
pub struct VolumeFacts {
    pub volume_id: String,
    pub encrypted: bool,
    pub kms_key_id: Option<String>,
}

/// The account/region's EBS encryption-by-default setting.
#[derive(Clone, Debug, PartialEq)]
pub struct EbsDefaultFacts {
    pub region: String,
    pub encryption_by_default: bool,
    /// The default key (an alias such as `alias/aws/ebs`, or an ARN).
    pub default_kms_key_id: Option<String>,
}

/// How an EKS cluster encrypts Kubernetes Secrets, as `DescribeCluster` tells it.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterFacts {
    pub name: String,
    pub arn: String,
    /// The KMS key of the cluster's `encryptionConfig` (which once named `secrets` alone and now
    /// covers all Kubernetes API data); `None` when there is none (EKS then encrypts with a key of its own that no one can audit or
    /// revoke, from Kubernetes 1.28 on, and not at all before).
    pub secrets_key_arn: Option<String>,
}

/// Metadata of a Secrets Manager secret (never its value).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct SecretFacts {
    pub arn: String,
    pub name: String,
    /// Absent when the secret uses the default `aws/secretsmanager` key.
    pub kms_key_id: Option<String>,
    pub rotation_enabled: bool,
    pub rotation_interval_days: Option<u32>,
    pub last_rotated: Option<Timestamp>,
    pub last_changed: Option<Timestamp>,
    pub next_rotation: Option<Timestamp>,
    pub created: Option<Timestamp>,
    /// Version id -> staging labels.
    pub version_stages: HashMap<String, Vec<String>>,
}

impl SecretFacts {
    /// The version id carrying a staging label.
    pub fn version_for_stage(&self, stage: &str) -> Option<&str> {
        self.version_stages
            .iter()
            .find(|(_, stages)| stages.iter().any(|s| s == stage))
            .map(|(id, _)| id.as_str())
    }
}

/// Where the evaluator looks facts up. Lookups are synchronous and cheap: the facts were
/// gathered before evaluation began.
pub trait Facts {
    fn now(&self) -> Timestamp;
    /// A KMS key by id, ARN, alias name or alias ARN.
    fn kms_key(&self, key: &str) -> Fact<&KmsKeyFacts>;
    /// Whether a KMS key (referenced as for [`Facts::kms_key`]) has automatic rotation on.
    fn kms_key_rotation(&self, key: &str) -> Fact<&bool>;
    fn certificate(&self, arn: &str) -> Fact<&CertificateFacts>;
    /// ACM certificates the ALB controller would discover for a host.
    fn certificates_for_host(&self, host: &str) -> Fact<Vec<&CertificateFacts>>;
    fn volume(&self, volume_id: &str) -> Fact<&VolumeFacts>;
    fn ebs_default(&self) -> Fact<&EbsDefaultFacts>;
    fn secret(&self, secret_id: &str) -> Fact<&SecretFacts>;
    /// An EKS cluster, by name, in the operator's region.
    fn eks_cluster(&self, name: &str) -> Fact<&ClusterFacts>;
    /// A regional WAFv2 Web ACL, by ARN.
    fn web_acl(&self, arn: &str) -> Fact<&WebAclFacts>;
}

/// The offline world: every AWS fact is unknown, so rules that need one are skipped.
pub struct Offline {
    pub now: Timestamp,
}

impl Facts for Offline {
    fn now(&self) -> Timestamp {
        self.now
    }
    fn kms_key(&self, _: &str) -> Fact<&KmsKeyFacts> {
        Fact::Unknown
    }
    fn kms_key_rotation(&self, _: &str) -> Fact<&bool> {
        Fact::Unknown
    }
    fn certificate(&self, _: &str) -> Fact<&CertificateFacts> {
        Fact::Unknown
    }
    fn certificates_for_host(&self, _: &str) -> Fact<Vec<&CertificateFacts>> {
        Fact::Unknown
    }
    fn volume(&self, _: &str) -> Fact<&VolumeFacts> {
        Fact::Unknown
    }
    fn ebs_default(&self) -> Fact<&EbsDefaultFacts> {
        Fact::Unknown
    }
    fn secret(&self, _: &str) -> Fact<&SecretFacts> {
        Fact::Unknown
    }
    fn eks_cluster(&self, _: &str) -> Fact<&ClusterFacts> {
        Fact::Unknown
    }
    fn web_acl(&self, _: &str) -> Fact<&WebAclFacts> {
        Fact::Unknown
    }
}

/// Facts gathered ahead of an evaluation, held in maps. Keys are exactly the references used
/// in manifests (a KMS alias is stored under the alias and under its ARN).
#[derive(Clone, Debug, Default)]
pub struct FactSet {
    pub now: Option<Timestamp>,
    pub kms_keys: HashMap<String, Fact<KmsKeyFacts>>,
    /// Automatic rotation of KMS keys, by the same references as `kms_keys`.
    pub kms_rotations: HashMap<String, Fact<bool>>,
    pub certificates: HashMap<String, Fact<CertificateFacts>>,
    /// Host -> ARNs of matching certificates (looked up in `certificates`).
    pub host_certificates: HashMap<String, Fact<Vec<String>>>,
    pub volumes: HashMap<String, Fact<VolumeFacts>>,
    pub ebs_default: Option<Fact<EbsDefaultFacts>>,
    pub secrets: HashMap<String, Fact<SecretFacts>>,
    /// EKS clusters by name.
    pub clusters: HashMap<String, Fact<ClusterFacts>>,
    pub web_acls: HashMap<String, Fact<WebAclFacts>>,
}

fn lookup<'a, T>(map: &'a HashMap<String, Fact<T>>, key: &str) -> Fact<&'a T> {
    map.get(key).map_or(Fact::Unknown, Fact::as_ref)
}

impl Facts for FactSet {
    fn now(&self) -> Timestamp {
        self.now.unwrap_or_else(Timestamp::now)
    }
    fn kms_key(&self, key: &str) -> Fact<&KmsKeyFacts> {
        lookup(&self.kms_keys, key)
    }
    fn kms_key_rotation(&self, key: &str) -> Fact<&bool> {
        lookup(&self.kms_rotations, key)
    }
    fn certificate(&self, arn: &str) -> Fact<&CertificateFacts> {
        lookup(&self.certificates, arn)
    }
    fn certificates_for_host(&self, host: &str) -> Fact<Vec<&CertificateFacts>> {
        match self.host_certificates.get(host) {
            None => Fact::Unknown,
            Some(Fact::Known(arns)) => {
                Fact::Known(arns.iter().filter_map(|arn| self.certificates.get(arn)?.known()).collect())
            }
            Some(Fact::Failed(e)) => Fact::Failed(e.clone()),
            Some(Fact::NotFound) => Fact::NotFound,
            Some(Fact::Unknown) => Fact::Unknown,
        }
    }
    fn volume(&self, volume_id: &str) -> Fact<&VolumeFacts> {
        lookup(&self.volumes, volume_id)
    }
    fn ebs_default(&self) -> Fact<&EbsDefaultFacts> {
        self.ebs_default.as_ref().map_or(Fact::Unknown, Fact::as_ref)
    }
    fn secret(&self, secret_id: &str) -> Fact<&SecretFacts> {
        lookup(&self.secrets, secret_id)
    }
    fn eks_cluster(&self, name: &str) -> Fact<&ClusterFacts> {
        lookup(&self.clusters, name)
    }
    fn web_acl(&self, arn: &str) -> Fact<&WebAclFacts> {
        lookup(&self.web_acls, arn)
    }
}

/// Rounds of (evaluate, gather what was wanted) every caller runs: certificates discovered by
/// host are judged in the second round, facts they lead to in the third.
pub const FACT_ROUNDS: usize = 3;

/// The AWS references an evaluation asked for and did not find among the facts it was given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Wanted {
    pub kms_keys: std::collections::BTreeSet<String>,
    /// Keys whose rotation status is wanted.
    pub kms_rotations: std::collections::BTreeSet<String>,
    pub certificate_arns: std::collections::BTreeSet<String>,
    pub hosts: std::collections::BTreeSet<String>,
    pub volume_ids: std::collections::BTreeSet<String>,
    pub ebs_default: bool,
    pub secret_ids: std::collections::BTreeSet<String>,
    /// Names of EKS clusters.
    pub clusters: std::collections::BTreeSet<String>,
    pub web_acl_arns: std::collections::BTreeSet<String>,
}

impl Wanted {
    pub fn is_empty(&self) -> bool {
        *self == Wanted::default()
    }

    /// Drops the references `other` wants (the account default, wanted by the cluster's policies
    /// only, stays).
    pub fn remove(&mut self, other: &Wanted) {
        self.kms_keys.retain(|key| !other.kms_keys.contains(key));
        self.kms_rotations.retain(|key| !other.kms_rotations.contains(key));
        self.certificate_arns.retain(|arn| !other.certificate_arns.contains(arn));
        self.hosts.retain(|host| !other.hosts.contains(host));
        self.volume_ids.retain(|id| !other.volume_ids.contains(id));
        self.secret_ids.retain(|id| !other.secret_ids.contains(id));
        self.clusters.retain(|name| !other.clusters.contains(name));
        self.web_acl_arns.retain(|arn| !other.web_acl_arns.contains(arn));
    }

    /// Adds what `more` wants.
    pub fn merge(&mut self, more: Wanted) {
        self.kms_keys.extend(more.kms_keys);
        self.kms_rotations.extend(more.kms_rotations);
        self.certificate_arns.extend(more.certificate_arns);
        self.hosts.extend(more.hosts);
        self.volume_ids.extend(more.volume_ids);
        self.ebs_default |= more.ebs_default;
        self.secret_ids.extend(more.secret_ids);
        self.clusters.extend(more.clusters);
        self.web_acl_arns.extend(more.web_acl_arns);
    }
}

/// Answers from `known` and records every lookup it could not answer, so that a caller can
/// learn which facts an evaluation needs by running it, gather them, and run it again. The rules
/// stay the only place that knows which facts they read.
pub struct FactRecorder<'a> {
    known: &'a FactSet,
    // Shared by the evaluations `dpo check` runs on every core.
    wanted: std::sync::Mutex<Wanted>,
}

impl<'a> FactRecorder<'a> {
    pub fn new(known: &'a FactSet) -> Self {
        FactRecorder { known, wanted: Default::default() }
    }

    pub fn into_wanted(self) -> Wanted {
        self.wanted.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn note<T>(&self, fact: Fact<T>, record: impl FnOnce(&mut Wanted)) -> Fact<T> {
        if matches!(fact, Fact::Unknown) {
            record(&mut self.wanted.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        }
        fact
    }
}

impl Facts for FactRecorder<'_> {
    fn now(&self) -> Timestamp {
        self.known.now()
    }
    fn kms_key(&self, key: &str) -> Fact<&KmsKeyFacts> {
        self.note(self.known.kms_key(key), |w| {
            w.kms_keys.insert(key.to_string());
        })
    }
    fn kms_key_rotation(&self, key: &str) -> Fact<&bool> {
        self.note(self.known.kms_key_rotation(key), |w| {
            w.kms_rotations.insert(key.to_string());
        })
    }
    fn certificate(&self, arn: &str) -> Fact<&CertificateFacts> {
        self.note(self.known.certificate(arn), |w| {
            w.certificate_arns.insert(arn.to_string());
        })
    }
    fn certificates_for_host(&self, host: &str) -> Fact<Vec<&CertificateFacts>> {
        self.note(self.known.certificates_for_host(host), |w| {
            w.hosts.insert(host.to_string());
        })
    }
    fn volume(&self, volume_id: &str) -> Fact<&VolumeFacts> {
        self.note(self.known.volume(volume_id), |w| {
            w.volume_ids.insert(volume_id.to_string());
        })
    }
    fn ebs_default(&self) -> Fact<&EbsDefaultFacts> {
        self.note(self.known.ebs_default(), |w| w.ebs_default = true)
    }
    fn secret(&self, secret_id: &str) -> Fact<&SecretFacts> {
        self.note(self.known.secret(secret_id), |w| {
            w.secret_ids.insert(secret_id.to_string());
        })
    }
    fn eks_cluster(&self, name: &str) -> Fact<&ClusterFacts> {
        self.note(self.known.eks_cluster(name), |w| {
            w.clusters.insert(name.to_string());
        })
    }
    fn web_acl(&self, arn: &str) -> Fact<&WebAclFacts> {
        self.note(self.known.web_acl(arn), |w| {
            w.web_acl_arns.insert(arn.to_string());
        })
    }
}

impl FactSet {
    /// Adds facts gathered later; what is already known stays.
    pub fn extend(&mut self, more: FactSet) {
        fn merge<T>(into: &mut HashMap<String, Fact<T>>, from: HashMap<String, Fact<T>>) {
            for (key, fact) in from {
                into.entry(key).or_insert(fact);
            }
        }
        merge(&mut self.kms_keys, more.kms_keys);
        merge(&mut self.kms_rotations, more.kms_rotations);
        merge(&mut self.certificates, more.certificates);
        merge(&mut self.host_certificates, more.host_certificates);
        merge(&mut self.volumes, more.volumes);
        merge(&mut self.secrets, more.secrets);
        merge(&mut self.clusters, more.clusters);
        merge(&mut self.web_acls, more.web_acls);
        if self.ebs_default.is_none() {
            self.ebs_default = more.ebs_default;
        }
        self.now = self.now.or(more.now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorder_notes_only_what_it_cannot_answer() {
        let mut known = FactSet::default();
        known.kms_keys.insert("alias/known".into(), Fact::NotFound);
        let recorder = FactRecorder::new(&known);
        assert_eq!(recorder.kms_key("alias/known"), Fact::NotFound);
        assert_eq!(recorder.kms_key("alias/new"), Fact::Unknown);
        assert_eq!(recorder.ebs_default(), Fact::Unknown);
        assert_eq!(recorder.certificates_for_host("shop.example.com"), Fact::Unknown);
        let wanted = recorder.into_wanted();
        assert_eq!(wanted.kms_keys.iter().collect::<Vec<_>>(), ["alias/new"]);
        assert!(wanted.ebs_default);
        assert_eq!(wanted.hosts.len(), 1);
        assert!(wanted.secret_ids.is_empty());
    }

    #[test]
    fn extend_keeps_known_facts() {
        let mut first = FactSet::default();
        first.volumes.insert("vol-1".into(), Fact::NotFound);
        let mut second = FactSet::default();
        let late = FactError { reason: "AwsUnavailable", message: "late".into(), transient: true };
        second.volumes.insert("vol-1".into(), Fact::Failed(late));
        second.volumes.insert("vol-2".into(), Fact::NotFound);
        first.extend(second);
        assert_eq!(first.volumes["vol-1"], Fact::NotFound);
        assert_eq!(first.volumes.len(), 2);
    }
}
