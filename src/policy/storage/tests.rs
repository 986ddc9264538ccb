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
fn only_the_exact_string_true_asks_for_encryption_and_in_tree_classes_read_the_same() {
    // The EBS CSI driver asks for encryption on `value == "true"` only; in-tree classes reach it
    // through CSI migration with their parameters unchanged.
    for provisioner in [EBS_CSI, EBS_AUTO_MODE, EBS_IN_TREE] {
        let exact = judge("{}", &class(provisioner, "encrypted: \"true\""), &offline());
        assert_eq!(findings(&exact), [], "{provisioner}");
        for raw in ["True", "TRUE", "1", "t", "T"] {
            let verdict = judge("{}", &class(provisioner, &format!("encrypted: \"{raw}\"")), &offline());
            assert_eq!(
                findings(&verdict),
                [("storageclass-encrypted", Severity::High)],
                "{provisioner} {raw}"
            );
            let Verdict::Judged(j) = &verdict else { unreachable!() };
            let finding = &j.findings[0];
            assert!(finding.message.contains(&format!("encrypted: \"{raw}\"")), "{}", finding.message);
            assert!(
                finding.message.contains("write encrypted: \"true\""),
                "the fix is named: {}",
                finding.message
            );
            assert_eq!(finding.remediation, "set parameters.encrypted: \"true\"");
        }
        for raw in ["false", "yes", ""] {
            let verdict = judge("{}", &class(provisioner, &format!("encrypted: \"{raw}\"")), &offline());
            assert_eq!(
                findings(&verdict),
                [("storageclass-encrypted", Severity::High)],
                "{provisioner} {raw:?}"
            );
        }
    }
}

#[test]
fn a_misread_value_relies_on_the_account_default_like_an_absent_one() {
    let misread = class(EBS_CSI, "encrypted: \"True\"");
    assert_eq!(
        findings(&judge("{}", &misread, &account_default(true))),
        [("storageclass-encrypted", Severity::Low)]
    );
    assert_eq!(
        findings(&judge("{}", &misread, &account_default(false))),
        [("storageclass-encrypted", Severity::High)]
    );
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
fn a_kms_key_means_encrypted_with_that_key_whatever_encrypted_says() {
    // The driver sets Encrypted=true on CreateVolume whenever it passes a KmsKeyId.
    let other = "arn:aws:kms:us-east-1:111122223333:key/ffffffff-12ab-34cd-56ef-1234567890ab";
    for provisioner in [EBS_CSI, EBS_AUTO_MODE, EBS_IN_TREE] {
        for encrypted in ["", "encrypted: \"True\", ", "encrypted: \"1\", ", "encrypted: \"false\", "] {
            let class = class(provisioner, &format!("{encrypted}kmsKeyId: \"{other}\""));
            let verdict = judge("{}", &class, &offline());
            assert_eq!(findings(&verdict), [], "{provisioner} {encrypted}");
            let Verdict::Judged(j) = &verdict else { unreachable!() };
            assert!(j.checked.contains(&Rule::StorageclassEncrypted));
            // ... and the key is judged by the key rules.
            let verdict = judge(&format!("{{allowedKmsKeys: [\"{CMK}\"]}}"), &class, &offline());
            assert_eq!(
                findings(&verdict),
                [("kms-key-approved", Severity::High)],
                "{provisioner} {encrypted}"
            );
        }
    }
    // An empty kmsKeyId is not passed on.
    let empty = judge("{}", &class(EBS_CSI, "kmsKeyId: \"\""), &offline());
    assert_eq!(findings(&empty), [("storageclass-encrypted", Severity::High)]);
}

#[test]
fn allowlist_and_customer_managed_key_requirements() {
    let other = "arn:aws:kms:us-east-1:111122223333:key/ffffffff-12ab-34cd-56ef-1234567890ab";
    let unapproved = class(EBS_CSI, &format!("encrypted: \"true\", kmsKeyId: \"{other}\""));
    let verdict = judge(&format!("{{allowedKmsKeys: [\"{CMK}\"]}}"), &unapproved, &offline());
    assert_eq!(findings(&verdict), [("kms-key-approved", Severity::High)]);

    let no_key = class(EBS_CSI, "encrypted: \"true\"");
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
        }),
    );
    let verdict = judge("{requireCustomerManagedKey: true}", &no_key, &facts);
    assert_eq!(findings(&verdict), [("storageclass-using-cmk", Severity::Medium)]);
}

#[test]
fn the_account_default_key_is_not_guessed_offline() {
    // Without kmsKeyId EC2 uses the account's default EBS key, which may well be a customer-managed
    // key: only EC2 can say which.
    let no_key = class(EBS_CSI, "encrypted: \"true\"");
    let allowlist = format!("{{allowedKmsKeys: [\"{CMK}\"]}}");
    for (spec, rule) in [
        ("{requireCustomerManagedKey: true}", Rule::StorageclassUsingCmk),
        (allowlist.as_str(), Rule::KmsKeyApproved),
    ] {
        let failed = FactSet {
            ebs_default: Some(Fact::Failed(crate::policy::facts::FactError {
                reason: "AwsThrottled",
                message: "throttled".into(),
                transient: true,
            })),
            ..FactSet::default()
        };
        for facts in [&offline() as &dyn Facts, &failed] {
            let Verdict::Judged(judgement) = judge(spec, &no_key, facts) else { panic!("not judged") };
            assert_eq!(judgement.findings, [], "{spec}");
            assert_eq!(judgement.skipped, [rule], "{spec}");
        }
    }
}

#[test]
fn non_ebs_unselected_and_exempt_classes() {
    let efs = class("efs.csi.aws.com", "");
    assert!(matches!(judge("{}", &efs, &offline()), Verdict::NotApplicable(_)));
    let spec = policy("{storageClassSelector: {matchLabels: {tier: dev}}}").spec;
    assert_eq!(judge_storage_class(&spec, &class(EBS_CSI, ""), &offline()), None);
    let mut exempt = class(EBS_CSI, "");
    exempt.metadata.labels.get_or_insert_default().insert("dpo.dev/exempt".into(), "scratch space".into());
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
    let evaluation = evaluate_volume_policy(&policy, &[&encrypted, &efs], &[&pv], &account_default(false));
    let summary = evaluation.summary();
    assert_eq!((summary.evaluated, summary.compliant, summary.violations), (3, 2, 1));
    assert_eq!(evaluation.sorted_findings()[0].rule, "ec2-ebs-encryption-by-default");
    assert_eq!(evaluation.sorted_findings()[0].resource.kind, "EncryptedVolumePolicy");
}

fn customer_key(arn: &str) -> Fact<KmsKeyFacts> {
    Fact::Known(KmsKeyFacts {
        arn: arn.into(),
        key_id: "1234abcd-12ab-34cd-56ef-1234567890ab".into(),
        key_manager: KeyManager::Customer,
        enabled: true,
        pending_deletion: false,
        deletion_date: None,
    })
}

#[test]
fn a_kms_key_encrypts_even_with_encrypted_false_and_is_judged_as_the_volumes_key() {
    // pkg/cloud/cloud.go CreateDisk sets Encrypted=true whenever it passes the class's KmsKeyId.
    let class = class(EBS_CSI, &format!("encrypted: \"false\", kmsKeyId: \"{CMK}\""));
    let mut facts = account_default(false);
    facts.kms_keys.insert(CMK.into(), customer_key(CMK));
    let spec = format!("{{requireCustomerManagedKey: true, allowedKmsKeys: [\"{CMK}\"]}}");
    let Verdict::Judged(judgement) = judge(&spec, &class, &facts) else { panic!("judged") };
    assert_eq!(judgement.findings, []);
    for rule in [Rule::StorageclassEncrypted, Rule::StorageclassUsingCmk, Rule::KmsKeyApproved] {
        assert!(judgement.checked.contains(&rule), "{rule:?}");
    }
}

#[test]
fn an_unencrypted_class_has_no_key_to_approve_and_no_customer_key() {
    // Neither the class nor the account encrypts: there is no key, not an AWS-managed one.
    let plain = class(EBS_CSI, "type: gp3");
    let spec = format!("{{requireCustomerManagedKey: true, allowedKmsKeys: [\"{CMK}\"]}}");
    let Verdict::Judged(judgement) = judge(&spec, &plain, &account_default(false)) else { panic!("judged") };
    let found: Vec<(&str, &str)> =
        judgement.findings.iter().map(|f| (f.rule.as_str(), f.message.as_str())).collect();
    assert_eq!(
        found,
        [
            (
                "storageclass-encrypted",
                "StorageClass gp3 does not ask for encryption: its volumes are unencrypted, as EBS encryption by \
                 default is off in us-east-1"
            ),
            (
                "storageclass-using-cmk",
                "StorageClass gp3 provisions unencrypted volumes: no customer-managed key protects them"
            ),
        ]
    );
    assert!(!judgement.checked.contains(&Rule::KmsKeyApproved));
    // With encryption by default on, the account's default key is the volumes' key.
    let Verdict::Judged(judgement) = judge(&spec, &plain, &account_default(true)) else { panic!("judged") };
    assert!(
        judgement.findings[1].message.contains("(account default key) is encrypted with the AWS-managed key")
    );
    assert!(judgement.skipped.contains(&Rule::KmsKeyApproved), "resolving the alias takes KMS");
}

#[test]
fn the_encryption_fix_is_a_key_where_the_policy_wants_one() {
    // `encrypted: "true"` alone encrypts with the account default key, which a policy wanting a
    // customer-managed or approved key would refuse next.
    let plain = class(EBS_CSI, "type: gp3");
    let remediation = |spec: &str| {
        let Verdict::Judged(judgement) = judge(spec, &plain, &offline()) else { panic!("judged") };
        let finding =
            judgement.findings.iter().find(|f| f.rule == "storageclass-encrypted").expect("a finding");
        finding.remediation.clone()
    };
    assert_eq!(remediation("{}"), "set parameters.encrypted: \"true\"");
    assert_eq!(
        remediation("{requireCustomerManagedKey: true}"),
        "set parameters.kmsKeyId to the ARN of a customer-managed KMS key (the EBS CSI driver then encrypts, \
         whatever encrypted says)"
    );
    assert_eq!(
        remediation(&format!("{{allowedKmsKeys: [\"{CMK}\"]}}")),
        format!(
            "set parameters.kmsKeyId to an approved key ({CMK}); the EBS CSI driver then encrypts, whatever encrypted \
             says"
        )
    );
}
