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
            "EKS cluster {} does not envelope-encrypt Secrets with a KMS key: Secrets written here have \
             only EKS's default encryption, under a key no one can audit or revoke ({})",
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
                "set clusterSecretsEncryption.clusterName to the cluster's name (aws eks list-clusters)"
                    .into(),
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
                 for secrets): they have only EKS's default encryption (an AWS-owned key from Kubernetes 1.28 on, none \
                 before), which no one can audit or revoke"
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
    judge_key(
        judgement,
        policy,
        key,
        &format!("EKS cluster {name} (Secrets encryption)"),
        requirements,
        facts,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::EncryptedVolumePolicy;
    use crate::policy::facts::{FactError, FactRecorder, FactSet, KeyManager, KmsKeyFacts};
    use crate::policy::storage::evaluate_volume_policy;
    use crate::policy::testing::from_yaml;
    use crate::policy::{Evaluation, Verdict};

    const CLUSTER_ARN: &str = "arn:aws:eks:us-east-1:111122223333:cluster/shop";
    const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    fn policy(cluster: &str) -> EncryptedVolumePolicy {
        from_yaml(&format!(
            "apiVersion: dpo.dev/v1alpha1\nkind: EncryptedVolumePolicy\nmetadata: {{name: ebs}}\n\
             spec: {{checkAccountDefault: false, clusterSecretsEncryption: {cluster}}}\n"
        ))
    }

    fn cluster(key: Option<&str>) -> Fact<ClusterFacts> {
        Fact::Known(ClusterFacts {
            name: "shop".into(),
            arn: CLUSTER_ARN.into(),
            secrets_key_arn: key.map(str::to_string),
        })
    }

    fn key(enabled: bool) -> KmsKeyFacts {
        KmsKeyFacts {
            arn: KEY.into(),
            key_id: "1234abcd-12ab-34cd-56ef-1234567890ab".into(),
            key_manager: KeyManager::Customer,
            enabled,
            pending_deletion: false,
            deletion_date: None,
        }
    }

    /// Facts of cluster `shop` whose Secrets key (if any) is `key_facts`, rotating or not.
    fn facts(cluster_fact: Fact<ClusterFacts>, key_facts: Option<(KmsKeyFacts, bool)>) -> FactSet {
        let mut set = FactSet::default();
        set.clusters.insert("shop".into(), cluster_fact);
        if let Some((facts, rotating)) = key_facts {
            set.kms_keys.insert(KEY.into(), Fact::Known(facts));
            set.kms_rotations.insert(KEY.into(), Fact::Known(rotating));
        }
        set
    }

    /// The one verdict, the policy's own.
    fn evaluate(policy: &EncryptedVolumePolicy, facts: &dyn Facts) -> Evaluation {
        let evaluation = evaluate_volume_policy(policy, &[], &[], facts);
        assert_eq!(evaluation.verdicts.len(), 1);
        assert_eq!(evaluation.verdicts[0].resource.kind, "EncryptedVolumePolicy");
        evaluation
    }

    fn judgement(evaluation: &Evaluation) -> &Judgement {
        match &evaluation.verdicts[0].verdict {
            Verdict::Judged(judgement) => judgement,
            other => panic!("not judged: {other:?}"),
        }
    }

    fn findings(evaluation: &Evaluation) -> Vec<(&str, Severity)> {
        evaluation.findings().map(|f| (f.rule.as_str(), f.severity)).collect()
    }

    #[test]
    fn a_cluster_with_an_enabled_rotating_approved_key_is_compliant() {
        let policy = policy("{clusterName: shop}");
        let evaluation = evaluate(&policy, &facts(cluster(Some(KEY)), Some((key(true), true))));
        assert_eq!(findings(&evaluation), []);
        let judged = judgement(&evaluation);
        for rule in [Rule::EksSecretsEncrypted, Rule::KmsKeyEnabled, Rule::CmkBackingKeyRotationEnabled] {
            assert!(judged.checked.contains(&rule), "{rule} judged");
        }
        assert!(judged.skipped.is_empty());

        let mut approved = policy.clone();
        approved.spec.allowed_kms_keys = vec![KEY.into()];
        let evaluation = evaluate(&approved, &facts(cluster(Some(KEY)), Some((key(true), true))));
        assert_eq!(findings(&evaluation), []);
        assert!(judgement(&evaluation).checked.contains(&Rule::KmsKeyApproved));
    }

    #[test]
    fn a_cluster_without_a_secrets_key_is_a_violation_high_when_required_low_when_not() {
        let evaluation = evaluate(&policy("{clusterName: shop}"), &facts(cluster(None), None));
        assert_eq!(findings(&evaluation), [("eks-secrets-encrypted", Severity::High)]);
        let finding = evaluation.findings().next().unwrap();
        assert!(finding.message.contains("EKS cluster shop"), "{}", finding.message);
        assert!(finding.remediation.contains("aws eks associate-encryption-config --cluster-name shop"));

        let evaluation =
            evaluate(&policy("{clusterName: shop, required: false}"), &facts(cluster(None), None));
        assert_eq!(findings(&evaluation), [("eks-secrets-encrypted", Severity::Low)]);
    }

    #[test]
    fn the_secrets_key_is_judged_like_every_other_key() {
        let policy = policy("{clusterName: shop}");
        let disabled = evaluate(&policy, &facts(cluster(Some(KEY)), Some((key(false), true))));
        assert_eq!(findings(&disabled), [("kms-key-enabled", Severity::Critical)]);
        let not_rotating = evaluate(&policy, &facts(cluster(Some(KEY)), Some((key(true), false))));
        assert_eq!(findings(&not_rotating), [("cmk-backing-key-rotation-enabled", Severity::Medium)]);
        assert!(judgement(&not_rotating).checked.contains(&Rule::EksSecretsEncrypted));

        let mut other_keys = policy.clone();
        other_keys.spec.allowed_kms_keys = vec![KEY.replace("1234abcd", "9999abcd")];
        let unapproved = evaluate(&other_keys, &facts(cluster(Some(KEY)), Some((key(true), true))));
        assert_eq!(findings(&unapproved), [("kms-key-approved", Severity::High)]);
    }

    #[test]
    fn a_secrets_key_alias_resolves_in_the_clusters_account() {
        let policy = policy("{clusterName: shop}");
        let recorder_facts = facts(cluster(Some("alias/eks")), None);
        let recorder = FactRecorder::new(&recorder_facts);
        evaluate_volume_policy(&policy, &[], &[], &recorder);
        let wanted = recorder.into_wanted();
        let qualified = "arn:aws:kms:us-east-1:111122223333:alias/eks";
        assert_eq!(wanted.kms_keys.iter().collect::<Vec<_>>(), [qualified]);
    }

    #[test]
    fn offline_or_failed_the_rule_is_skipped_with_its_cause_never_passed() {
        let policy = policy("{clusterName: shop}");
        let offline = crate::policy::Offline { now: jiff::Timestamp::UNIX_EPOCH };
        let evaluation = evaluate(&policy, &offline);
        assert_eq!(findings(&evaluation), []);
        assert_eq!(judgement(&evaluation).skipped, [Rule::EksSecretsEncrypted]);
        assert!(judgement(&evaluation).checked.is_empty());
        assert_eq!(evaluation.summary().skipped, 1);

        let denied = FactError {
            reason: "AccessDenied",
            message: "access denied: eks:DescribeCluster on shop".into(),
            transient: false,
        };
        let evaluation = evaluate(&policy, &facts(Fact::Failed(denied.clone()), None));
        assert_eq!(judgement(&evaluation).skip_causes[&Rule::EksSecretsEncrypted], denied);
        assert_eq!(evaluation.skipped()[0].causes, [denied]);

        // The key's facts missing: the key rules wait, the cluster's own rule is judged.
        let evaluation = evaluate(&policy, &facts(cluster(Some(KEY)), None));
        let judged = judgement(&evaluation);
        assert!(judged.checked.contains(&Rule::EksSecretsEncrypted));
        assert!(judged.skipped.contains(&Rule::KmsKeyEnabled));
    }

    #[test]
    fn a_missing_cluster_is_a_finding_and_names_the_fix() {
        let evaluation = evaluate(&policy("{clusterName: shop}"), &facts(Fact::NotFound, None));
        assert_eq!(findings(&evaluation), [("eks-secrets-encrypted", Severity::Medium)]);
        assert!(evaluation.findings().next().unwrap().remediation.contains("aws eks list-clusters"));
    }

    #[test]
    fn the_policys_own_verdict_holds_the_account_default_and_the_cluster() {
        let mut both = policy("{clusterName: shop}");
        both.spec.check_account_default = true;
        let evaluation = evaluate(&both, &facts(cluster(None), None));
        let judged = judgement(&evaluation);
        assert_eq!(judged.skipped, [Rule::Ec2EbsEncryptionByDefault]);
        assert_eq!(findings(&evaluation), [("eks-secrets-encrypted", Severity::High)]);
        assert_eq!(evaluation.summary().evaluated, 1);

        let mut neither = both.clone();
        (neither.spec.check_account_default, neither.spec.cluster_secrets_encryption) = (false, None);
        assert!(evaluate_volume_policy(&neither, &[], &[], &FactSet::default()).verdicts.is_empty());
    }

    #[test]
    fn the_note_for_protected_secrets_names_the_cluster_only_when_unencrypted() {
        let Fact::Known(unencrypted) = cluster(None) else { unreachable!() };
        let note = unencrypted_secrets_note(&unencrypted).expect("a note");
        assert!(note.contains("EKS cluster shop") && note.contains("eks-secrets-encrypted"), "{note}");
        let Fact::Known(encrypted) = cluster(Some(KEY)) else { unreachable!() };
        assert_eq!(unencrypted_secrets_note(&encrypted), None);
    }
}
