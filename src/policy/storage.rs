//! EncryptedVolumePolicy: EBS StorageClasses, their bound volumes, and the account default.

use super::facts::{Fact, Facts};
use super::kms::{CustomerManaged, KeyRequirements, judge_key};
use super::{Evaluation, Judgement, Rule, Verdict, exemption, parse_bool, resource_ref, selector};
use crate::api::{EncryptedVolumePolicy, EncryptedVolumePolicySpec, ResourceRef, Severity};
use k8s_openapi::api::core::v1::PersistentVolume;
use k8s_openapi::api::storage::v1::StorageClass;
use std::collections::HashSet;

/// The EBS CSI driver (self-managed add-on).
pub const EBS_CSI: &str = "ebs.csi.aws.com";
/// The EBS driver built into EKS Auto Mode.
pub const EBS_AUTO_MODE: &str = "ebs.csi.eks.amazonaws.com";
/// The in-tree provisioner, long deprecated but still found in old clusters.
pub const EBS_IN_TREE: &str = "kubernetes.io/aws-ebs";

pub fn is_ebs_provisioner(provisioner: &str) -> bool {
    matches!(provisioner, EBS_CSI | EBS_AUTO_MODE | EBS_IN_TREE)
}

/// Evaluates a policy over the StorageClasses and PersistentVolumes given.
pub fn evaluate_volume_policy(
    policy: &EncryptedVolumePolicy,
    classes: &[&StorageClass],
    volumes: &[&PersistentVolume],
    facts: &dyn Facts,
) -> Evaluation {
    let spec = &policy.spec;
    let mut evaluation = Evaluation::default();
    let mut governed_classes = HashSet::new();
    for class in classes {
        if let Some(verdict) = judge_storage_class(spec, class, facts) {
            if !matches!(verdict, Verdict::NotApplicable(_)) {
                governed_classes.insert(class.metadata.name.as_deref().unwrap_or_default());
            }
            evaluation.push(resource_ref(*class), verdict);
        }
    }
    if spec.check_volumes {
        for volume in volumes {
            let class =
                volume.spec.as_ref().and_then(|s| s.storage_class_name.as_deref()).unwrap_or_default();
            if governed_classes.contains(class) {
                evaluation.push(resource_ref(*volume), judge_volume(spec, volume, facts));
            }
        }
    }
    if spec.check_account_default {
        evaluation
            .push(resource_ref(policy), Verdict::Judged(judge_account_default(&resource_ref(policy), facts)));
    }
    evaluation
}

/// Judges one StorageClass; `None` when the policy's selector does not select it.
pub fn judge_storage_class(
    spec: &EncryptedVolumePolicySpec,
    class: &StorageClass,
    facts: &dyn Facts,
) -> Option<Verdict> {
    if !selector::matches(spec.storage_class_selector.as_ref(), class.metadata.labels.as_ref()) {
        return None;
    }
    if let Some(reason) = exemption(&class.metadata) {
        return Some(Verdict::Exempt(reason.to_string()));
    }
    if !is_ebs_provisioner(&class.provisioner) {
        return Some(Verdict::NotApplicable(format!(
            "provisioner {} does not make EBS volumes",
            class.provisioner
        )));
    }
    let resource = resource_ref(class);
    let name = class.metadata.name.as_deref().unwrap_or_default();
    let usage = format!("StorageClass {name}");
    let parameter = |wanted: &str| {
        // Both drivers match parameter names case-insensitively.
        class
            .parameters
            .iter()
            .flatten()
            .find(|(k, _)| k.eq_ignore_ascii_case(wanted))
            .map(|(_, v)| v.as_str())
    };
    let mut judgement = Judgement::default();
    let encrypted = judge_encrypted_parameter(
        &mut judgement,
        &resource,
        &class.provisioner,
        parameter("encrypted"),
        spec,
        facts,
    );
    let kms_key = parameter("kmsKeyId").filter(|k| !k.is_empty());
    if kms_key.is_some() && encrypted == EncryptedParameter::Absent {
        judgement.violation(
            Rule::StorageclassEncrypted,
            &resource,
            format!("{usage} sets kmsKeyId but not encrypted: \"true\", so the key is not used as asked"),
            "set parameters.encrypted: \"true\" next to kmsKeyId".to_string(),
        );
    }
    let wanted = key_requirements(spec);
    if wanted.allowed.is_empty() && wanted.customer_managed.is_none() {
        return Some(Verdict::Judged(judgement));
    }
    match kms_key {
        Some(key) => judge_key(&mut judgement, &resource, key, &usage, wanted, facts),
        // Without kmsKeyId, EC2 encrypts with the account's default EBS key.
        None => match facts.ebs_default() {
            Fact::Known(default) => {
                let key = default.default_kms_key_id.as_deref().unwrap_or("alias/aws/ebs");
                judge_key(
                    &mut judgement,
                    &resource,
                    key,
                    &format!("{usage} (account default key)"),
                    wanted,
                    facts,
                );
            }
            _ => {
                let fix = match spec.allowed_kms_keys.first() {
                    Some(key) => format!("set parameters.kmsKeyId: \"{key}\""),
                    None => "set parameters.kmsKeyId to the ARN of a customer-managed KMS key".to_string(),
                };
                let rule = if spec.allowed_kms_keys.is_empty() {
                    Rule::StorageclassUsingCmk
                } else {
                    Rule::KmsKeyApproved
                };
                judgement.violation(
                    rule,
                    &resource,
                    format!("{usage} sets no kmsKeyId, so volumes use the account's default EBS key, which the policy does not approve"),
                    fix,
                );
            }
        },
    }
    Some(Verdict::Judged(judgement))
}

fn key_requirements(spec: &EncryptedVolumePolicySpec) -> KeyRequirements<'_> {
    KeyRequirements {
        allowed: &spec.allowed_kms_keys,
        customer_managed: spec.require_customer_managed_key.then_some(CustomerManaged {
            rule: Rule::StorageclassUsingCmk,
            fix: "set parameters.kmsKeyId to the ARN of a customer-managed KMS key",
        }),
        // EBS keys are not required to rotate by this policy kind.
        rotation: false,
    }
}

/// What a StorageClass's `encrypted` parameter amounts to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EncryptedParameter {
    Requested,
    /// Absent or false.
    Absent,
    /// A value the driver does not read as the user meant (already reported).
    Misread,
}

/// Judges the `encrypted` parameter.
fn judge_encrypted_parameter(
    judgement: &mut Judgement,
    resource: &ResourceRef,
    provisioner: &str,
    value: Option<&str>,
    spec: &EncryptedVolumePolicySpec,
    facts: &dyn Facts,
) -> EncryptedParameter {
    let name = &resource.name;
    let fix = "set parameters.encrypted: \"true\"".to_string();
    let requested = match (provisioner, value) {
        (_, None) => false,
        // The in-tree plugin parses with Go's ParseBool and fails provisioning otherwise.
        (EBS_IN_TREE, Some(raw)) => match parse_bool(raw) {
            Some(on) => on,
            None => {
                judgement.violation(
                    Rule::StorageclassEncrypted,
                    resource,
                    format!(
                        "StorageClass {name}: encrypted: {raw:?} is not a boolean, so provisioning fails"
                    ),
                    fix,
                );
                return EncryptedParameter::Misread;
            }
        },
        // The CSI drivers treat only the exact string "true" as a request for encryption.
        (_, Some("true")) => true,
        (_, Some(raw)) => {
            if parse_bool(raw) == Some(true) {
                judgement.violation(
                    Rule::StorageclassEncrypted,
                    resource,
                    format!("StorageClass {name}: the EBS CSI driver reads only the exact string \"true\"; {raw:?} leaves volumes unencrypted"),
                    fix,
                );
                return EncryptedParameter::Misread;
            }
            false
        }
    };
    if requested || !spec.require_encryption {
        judgement.check(Rule::StorageclassEncrypted);
        return if requested { EncryptedParameter::Requested } else { EncryptedParameter::Absent };
    }
    match facts.ebs_default() {
        Fact::Known(default) if default.encryption_by_default => {
            let key = default.default_kms_key_id.as_deref().unwrap_or("alias/aws/ebs");
            judgement.violation_at(
                Rule::StorageclassEncrypted,
                Severity::Low,
                resource,
                format!("StorageClass {name} does not ask for encryption and relies on the account's EBS encryption by default (key {key})"),
                fix,
            );
        }
        Fact::Known(default) => judgement.violation(
            Rule::StorageclassEncrypted,
            resource,
            format!("StorageClass {name} provisions unencrypted volumes: it does not ask for encryption and EBS encryption by default is off in {}", default.region),
            fix,
        ),
        other => {
            let why = match other {
                Fact::Failed(reason) => format!(" (could not read the account default: {reason})"),
                _ => " unless the account's EBS encryption by default is on (checked with --aws)".to_string(),
            };
            judgement.violation(
                Rule::StorageclassEncrypted,
                resource,
                format!("StorageClass {name} does not ask for encryption: its volumes are unencrypted{why}"),
                fix,
            );
        }
    }
    EncryptedParameter::Absent
}

/// The EBS volume id behind a PersistentVolume, from the CSI handle or the in-tree source.
pub fn volume_id(volume: &PersistentVolume) -> Option<&str> {
    let spec = volume.spec.as_ref()?;
    if let Some(csi) = spec.csi.as_ref().filter(|c| is_ebs_provisioner(&c.driver)) {
        return Some(csi.volume_handle.as_str());
    }
    // In-tree ids look like `aws://us-east-1a/vol-0abc` or plain `vol-0abc`.
    let id = spec.aws_elastic_block_store.as_ref()?.volume_id.as_str();
    Some(id.rsplit('/').next().unwrap_or(id))
}

/// Judges the EBS volume of a PersistentVolume whose class the policy governs.
pub fn judge_volume(
    spec: &EncryptedVolumePolicySpec,
    volume: &PersistentVolume,
    facts: &dyn Facts,
) -> Verdict {
    if let Some(reason) = exemption(&volume.metadata) {
        return Verdict::Exempt(reason.to_string());
    }
    let Some(id) = volume_id(volume) else {
        return Verdict::NotApplicable("not an EBS volume".to_string());
    };
    let resource = resource_ref(volume);
    let mut judgement = Judgement::default();
    match facts.volume(id) {
        Fact::Known(facts_of_volume) if !facts_of_volume.encrypted => judgement.violation(
            Rule::EncryptedVolumes,
            &resource,
            format!("EBS volume {id} is not encrypted"),
            format!("snapshot it, copy the snapshot with --encrypted, restore and rebind: aws ec2 copy-snapshot --encrypted --source-snapshot-id <snapshot of {id}>"),
        ),
        Fact::Known(facts_of_volume) => {
            judgement.check(Rule::EncryptedVolumes);
            if let Some(key) = &facts_of_volume.kms_key_id {
                let usage = format!("EBS volume {id}");
                judge_key(&mut judgement, &resource, key, &usage, key_requirements(spec), facts);
            }
        }
        Fact::NotFound => judgement.violation_at(
            Rule::EncryptedVolumes,
            Severity::Medium,
            &resource,
            format!("EBS volume {id} behind this PersistentVolume does not exist"),
            "delete the stale PersistentVolume, or check the region the controller reads".to_string(),
        ),
        Fact::Unknown | Fact::Failed(_) => judgement.skip(Rule::EncryptedVolumes),
    }
    Verdict::Judged(judgement)
}

/// Judges the account/region's EBS encryption by default, reported against the policy itself.
pub fn judge_account_default(policy: &ResourceRef, facts: &dyn Facts) -> Judgement {
    let mut judgement = Judgement::default();
    match facts.ebs_default() {
        Fact::Known(default) if default.encryption_by_default => {
            judgement.check(Rule::Ec2EbsEncryptionByDefault)
        }
        Fact::Known(default) => judgement.violation(
            Rule::Ec2EbsEncryptionByDefault,
            policy,
            format!("EBS encryption by default is off in {}", default.region),
            format!("aws ec2 enable-ebs-encryption-by-default --region {}", default.region),
        ),
        _ => judgement.skip(Rule::Ec2EbsEncryptionByDefault),
    }
    judgement
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::facts::{EbsDefaultFacts, FactSet, KeyManager, KmsKeyFacts, Offline, VolumeFacts};
    use crate::policy::testing::from_yaml;

    const CMK: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    fn class(provisioner: &str, parameters: &str) -> StorageClass {
        from_yaml(&format!(
            "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {{name: gp3, labels: {{tier: prod}}}}\nprovisioner: {provisioner}\nparameters: {{{parameters}}}\n"
        ))
    }

    fn policy(spec: &str) -> EncryptedVolumePolicy {
        from_yaml(&format!(
            "apiVersion: dpo.dev/v1alpha1\nkind: EncryptedVolumePolicy\nmetadata: {{name: ebs}}\nspec: {spec}\n"
        ))
    }

    fn judge(spec: &str, class: &StorageClass, facts: &dyn Facts) -> Verdict {
        judge_storage_class(&policy(spec).spec, class, facts).expect("selected")
    }

    fn findings(verdict: &Verdict) -> Vec<(&str, Severity)> {
        match verdict {
            Verdict::Judged(j) => j.findings.iter().map(|f| (f.rule.as_str(), f.severity)).collect(),
            other => panic!("not judged: {other:?}"),
        }
    }

    fn offline() -> Offline {
        Offline { now: jiff::Timestamp::UNIX_EPOCH }
    }

    fn account_default(on: bool) -> FactSet {
        FactSet {
            ebs_default: Some(Fact::Known(EbsDefaultFacts {
                region: "us-east-1".into(),
                encryption_by_default: on,
                default_kms_key_id: Some("alias/aws/ebs".into()),
            })),
            ..FactSet::default()
        }
    }

    #[test]
    fn encrypted_class_with_approved_key_is_compliant() {
        let class = class(EBS_CSI, &format!("type: gp3, encrypted: \"true\", kmsKeyId: \"{CMK}\""));
        let verdict = judge(&format!("{{allowedKmsKeys: [\"{CMK}\"]}}"), &class, &offline());
        assert_eq!(findings(&verdict), []);
    }

    #[test]
    fn unencrypted_class_is_a_violation_for_every_ebs_provisioner() {
        for provisioner in [EBS_CSI, EBS_AUTO_MODE, EBS_IN_TREE] {
            let verdict = judge("{}", &class(provisioner, "type: gp3"), &offline());
            assert_eq!(findings(&verdict), [("storageclass-encrypted", Severity::High)], "{provisioner}");
        }
    }

    #[test]
    fn string_booleans_are_read_as_each_driver_reads_them() {
        // The CSI driver reads only "true"; the in-tree plugin reads Go booleans.
        let csi = judge("{}", &class(EBS_CSI, "encrypted: \"True\""), &offline());
        assert_eq!(findings(&csi), [("storageclass-encrypted", Severity::High)]);
        let in_tree = judge("{}", &class(EBS_IN_TREE, "encrypted: \"True\""), &offline());
        assert_eq!(findings(&in_tree), []);
        let garbage = judge("{}", &class(EBS_IN_TREE, "encrypted: \"yes\""), &offline());
        assert_eq!(findings(&garbage), [("storageclass-encrypted", Severity::High)]);
        let explicit_off = judge("{}", &class(EBS_CSI, "encrypted: \"false\""), &offline());
        assert_eq!(findings(&explicit_off), [("storageclass-encrypted", Severity::High)]);
    }

    #[test]
    fn parameter_names_are_case_insensitive() {
        let verdict = judge("{}", &class(EBS_CSI, "Encrypted: \"true\""), &offline());
        assert_eq!(findings(&verdict), []);
    }

    #[test]
    fn relying_on_account_default_is_low_when_on_and_high_when_off() {
        let class = class(EBS_CSI, "type: gp3");
        let on = judge("{}", &class, &account_default(true));
        assert_eq!(findings(&on), [("storageclass-encrypted", Severity::Low)]);
        let Verdict::Judged(j) = &on else { unreachable!() };
        assert!(j.findings[0].message.contains("alias/aws/ebs"));
        let off = judge("{}", &class, &account_default(false));
        assert_eq!(findings(&off), [("storageclass-encrypted", Severity::High)]);
    }

    #[test]
    fn key_without_encrypted_flag_is_flagged() {
        let verdict = judge("{}", &class(EBS_CSI, &format!("kmsKeyId: \"{CMK}\"")), &offline());
        assert_eq!(
            findings(&verdict),
            [("storageclass-encrypted", Severity::High), ("storageclass-encrypted", Severity::High)]
        );
        let Verdict::Judged(j) = &verdict else { unreachable!() };
        assert!(j.findings[1].message.contains("sets kmsKeyId but not encrypted"));
        let misread =
            judge("{}", &class(EBS_CSI, &format!("encrypted: \"1\", kmsKeyId: \"{CMK}\"")), &offline());
        assert_eq!(findings(&misread), [("storageclass-encrypted", Severity::High)]);
    }

    #[test]
    fn allowlist_and_customer_managed_key_requirements() {
        let other = "arn:aws:kms:us-east-1:111122223333:key/ffffffff-12ab-34cd-56ef-1234567890ab";
        let unapproved = class(EBS_CSI, &format!("encrypted: \"true\", kmsKeyId: \"{other}\""));
        let verdict = judge(&format!("{{allowedKmsKeys: [\"{CMK}\"]}}"), &unapproved, &offline());
        assert_eq!(findings(&verdict), [("kms-key-approved", Severity::High)]);

        let no_key = class(EBS_CSI, "encrypted: \"true\"");
        let verdict = judge("{requireCustomerManagedKey: true}", &no_key, &offline());
        assert_eq!(findings(&verdict), [("storageclass-using-cmk", Severity::Medium)]);

        let mut facts = account_default(true);
        facts.kms_keys.insert(
            "alias/aws/ebs".into(),
            Fact::Known(KmsKeyFacts {
                arn: "arn:aws:kms:us-east-1:111122223333:key/aaaa".into(),
                key_id: "aaaa".into(),
                key_manager: KeyManager::Aws,
                enabled: true,
                pending_deletion: false,
                deletion_date: None,
                rotation_enabled: true,
            }),
        );
        let verdict = judge("{requireCustomerManagedKey: true}", &no_key, &facts);
        assert_eq!(findings(&verdict), [("storageclass-using-cmk", Severity::Medium)]);
    }

    #[test]
    fn non_ebs_unselected_and_exempt_classes() {
        let efs = class("efs.csi.aws.com", "");
        assert!(matches!(judge("{}", &efs, &offline()), Verdict::NotApplicable(_)));
        let spec = policy("{storageClassSelector: {matchLabels: {tier: dev}}}").spec;
        assert_eq!(judge_storage_class(&spec, &class(EBS_CSI, ""), &offline()), None);
        let mut exempt = class(EBS_CSI, "");
        exempt
            .metadata
            .labels
            .get_or_insert_default()
            .insert("dpo.dev/exempt".into(), "scratch space".into());
        assert_eq!(judge("{}", &exempt, &offline()), Verdict::Exempt("scratch space".into()));
    }

    fn volume(source: &str) -> PersistentVolume {
        from_yaml(&format!(
            "apiVersion: v1\nkind: PersistentVolume\nmetadata: {{name: pv-1}}\nspec: {{storageClassName: gp3, {source}}}\n"
        ))
    }

    #[test]
    fn volume_ids_from_csi_and_in_tree_sources() {
        assert_eq!(volume_id(&volume("csi: {driver: ebs.csi.aws.com, volumeHandle: vol-1}")), Some("vol-1"));
        assert_eq!(
            volume_id(&volume("awsElasticBlockStore: {volumeID: \"aws://us-east-1a/vol-2\"}")),
            Some("vol-2")
        );
        assert_eq!(volume_id(&volume("csi: {driver: efs.csi.aws.com, volumeHandle: fs-1}")), None);
    }

    #[test]
    fn volumes_are_judged_from_ec2_facts_and_skipped_offline() {
        let spec = policy("{}").spec;
        let pv = volume("csi: {driver: ebs.csi.aws.com, volumeHandle: vol-1}");
        let Verdict::Judged(offline_judgement) = judge_volume(&spec, &pv, &offline()) else { panic!() };
        assert_eq!(offline_judgement.skipped, [Rule::EncryptedVolumes]);

        let mut facts = FactSet::default();
        facts.volumes.insert(
            "vol-1".into(),
            Fact::Known(VolumeFacts { volume_id: "vol-1".into(), encrypted: false, kms_key_id: None }),
        );
        assert_eq!(findings(&judge_volume(&spec, &pv, &facts)), [("encrypted-volumes", Severity::High)]);
    }

    #[test]
    fn whole_policy_evaluation_counts_objects_and_the_account_default() {
        let policy = policy("{}");
        let encrypted = class(EBS_CSI, "encrypted: \"true\"");
        let efs = class("efs.csi.aws.com", "");
        let pv = volume("csi: {driver: ebs.csi.aws.com, volumeHandle: vol-1}");
        let evaluation =
            evaluate_volume_policy(&policy, &[&encrypted, &efs], &[&pv], &account_default(false));
        let summary = evaluation.summary();
        assert_eq!((summary.evaluated, summary.compliant, summary.violations), (3, 2, 1));
        assert_eq!(evaluation.sorted_findings()[0].rule, "ec2-ebs-encryption-by-default");
        assert_eq!(evaluation.sorted_findings()[0].resource.kind, "EncryptedVolumePolicy");
    }
}
