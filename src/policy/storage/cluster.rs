//! `eks-secrets-encrypted`: the EKS cluster envelope-encrypts Kubernetes Secrets with a KMS key,
//! and that key passes the policy's key rules (enabled, not pending deletion, rotating, approved).

use crate::api::{ClusterSecretsEncryption, EncryptedVolumePolicySpec, ResourceRef, Severity};
use crate::policy::arn::Arn;
use crate::policy::facts::{ClusterFacts, Fact, Facts};
use crate::policy::kms::{KeyRequirements, judge_key};
use crate::policy::{Judgement, Rule};

/// What a cluster's envelope encryption says of the Secrets written to it, for those who write
/// them (the ProtectedSecret controller): `None` when they are encrypted with a KMS key.
pub fn unencrypted_secrets_note(cluster: &ClusterFacts) -> Option<String> {
    match &cluster.secrets_key_arn {
        Some(_) => None,
        None => Some(format!(
            "EKS cluster {} does not envelope-encrypt Secrets with a KMS key: Secrets written here are \
             protected only by EKS's own key ({})",
            cluster.name,
            Rule::EksSecretsEncrypted
        )),
    }
}

/// Judges the cluster's Secrets encryption, reported against the policy itself.
pub fn judge_cluster_secrets(
    judgement: &mut Judgement,
    policy: &ResourceRef,
    wanted: &ClusterSecretsEncryption,
    spec: &EncryptedVolumePolicySpec,
    facts: &dyn Facts,
) {
    let name = &wanted.cluster_name;
    let severity = if wanted.required { Rule::EksSecretsEncrypted.severity() } else { Severity::Low };
    let cluster = match facts.eks_cluster(name) {
        Fact::Known(cluster) => cluster,
        Fact::NotFound => {
            return judgement.violation_at(
                Rule::EksSecretsEncrypted,
                severity.min(Severity::Medium),
                policy,
                format!("EKS cluster {name} does not exist in the region the controller reads"),
                "set clusterSecretsEncryption.clusterName to the cluster's name (aws eks list-clusters)".into(),
            );
        }
        unknown => return judgement.skip_for(Rule::EksSecretsEncrypted, &unknown),
    };
    let Some(key) = &cluster.secrets_key_arn else {
        return judgement.violation_at(
            Rule::EksSecretsEncrypted,
            severity,
            policy,
            format!(
                "EKS cluster {name} does not envelope-encrypt Kubernetes Secrets with a KMS key (no encryptionConfig \
                 for secrets): they are protected only by EKS's own key, which no one can audit or revoke"
            ),
            format!(
                "aws eks associate-encryption-config --cluster-name {name} --encryption-config \
                 '[{{\"resources\":[\"secrets\"],\"provider\":{{\"keyArn\":\"<key-arn>\"}}}}]'"
            ),
        );
    };
    judgement.check(Rule::EksSecretsEncrypted);
    let requirements = KeyRequirements {
        allowed: &spec.allowed_kms_keys,
        // EKS takes an ARN or an alias; an alias resolves in the cluster's account and region.
        home: Arn::parse(&cluster.arn).map(|arn| arn.scope()),
        // `requireCustomerManagedKey` is the EBS rule's (storageclass-using-cmk).
        customer_managed: None,
        // A Secrets key outlives every Secret it ever wrapped: it must rotate.
        rotation: true,
    };
    judge_key(judgement, policy, key, &format!("EKS cluster {name} (Secrets encryption)"), requirements, facts);
}
