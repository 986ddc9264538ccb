//! EncryptedVolumePolicy: EBS StorageClasses, their bound volumes, and the account default.

use super::facts::{Fact, Facts};
use super::kms::{CustomerManaged, KeyRequirements, judge_key};
use super::{Evaluation, Judgement, Rule, Verdict, exemption, resource_ref, selector};
use crate::api::{EncryptedVolumePolicy, EncryptedVolumePolicySpec, ResourceRef, Severity};
use k8s_openapi::api::core::v1::PersistentVolume;
use k8s_openapi::api::storage::v1::StorageClass;
use std::collections::HashSet;

mod cluster;
pub use cluster::{judge_cluster_secrets, unencrypted_secrets_note};

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
    if let Some(own) = judge_policy_itself(spec, &resource_ref(policy), facts) {
        evaluation.push(resource_ref(policy), Verdict::Judged(own));
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
    let kms_key = parameter("kmsKeyId").filter(|k| !k.is_empty());
    let requested = Requested::read(parameter("encrypted"), kms_key);
    let wanted = key_requirements(spec);
    judge_encryption(&mut judgement, &resource, requested, spec, &wanted, facts);
    if wanted.allowed.is_empty() && wanted.customer_managed.is_none() {
        return Some(Verdict::Judged(judgement));
    }
    match kms_key {
        Some(key) => judge_key(&mut judgement, &resource, key, &usage, wanted, facts),
        // Without kmsKeyId, EC2 encrypts with the account's default EBS key, if at all.
        None => match facts.ebs_default() {
            Fact::Known(default) if requested == Requested::DefaultKey || default.encryption_by_default => {
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
            // Unencrypted volumes have no key to approve; none of them is a customer's.
            Fact::Known(_) => {
                if let Some(requirement) = wanted.customer_managed {
                    judgement.violation(
                        requirement.rule,
                        &resource,
                        format!(
                            "{usage} provisions unencrypted volumes: no customer-managed key protects them"
                        ),
                        requirement.fix.to_string(),
                    );
                }
            }
            // The default key may be customer-managed or not, approved or not: only EC2 can say
            // which key it is, so the rules wait for that fact rather than guess.
            unknown => {
                if !wanted.allowed.is_empty() {
                    judgement.skip_for(Rule::KmsKeyApproved, &unknown);
                }
                if let Some(requirement) = wanted.customer_managed {
                    judgement.skip_for(requirement.rule, &unknown);
                }
            }
        },
    }
    Some(Verdict::Judged(judgement))
}

/// How a class gets a customer-managed key; the driver then encrypts whatever `encrypted` says.
const KMS_KEY_FIX: &str = "set parameters.kmsKeyId to the ARN of a customer-managed KMS key";

fn key_requirements(spec: &EncryptedVolumePolicySpec) -> KeyRequirements<'_> {
    KeyRequirements {
        allowed: &spec.allowed_kms_keys,
        // Volumes are in the operator's own account and region.
        home: None,
        customer_managed: spec
            .require_customer_managed_key
            .then_some(CustomerManaged { rule: Rule::StorageclassUsingCmk, fix: KMS_KEY_FIX }),
        // EBS keys are not required to rotate by this policy kind.
        rotation: false,
    }
}

/// What the EBS CSI driver asks EC2 for, read from a class's `encrypted` and `kmsKeyId` the way
/// the driver reads them (`pkg/driver/controller.go`: encrypted only on the exact string
/// `"true"`; `pkg/cloud/cloud.go` `CreateDisk`: `Encrypted=true` whenever a key is passed). In-tree
/// `kubernetes.io/aws-ebs` classes are migrated to the driver with their parameters unchanged
/// (csi-translation-lib), so they are read the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Requested<'a> {
    /// Encryption with the class's own key, whatever `encrypted` says.
    Key,
    /// `encrypted: "true"` without a key: the account's default EBS key.
    DefaultKey,
    /// No encryption asked for. `misread` holds a value people mean as true (Go's `ParseBool`
    /// reads it so) that the driver does not.
    Nothing { misread: Option<&'a str> },
}

impl<'a> Requested<'a> {
    fn read(encrypted: Option<&'a str>, kms_key: Option<&str>) -> Requested<'a> {
        match (kms_key, encrypted) {
            (Some(_), _) => Requested::Key,
            (None, Some("true")) => Requested::DefaultKey,
            (None, raw) => Requested::Nothing { misread: raw.filter(|raw| means_true(raw)) },
        }
    }
}

/// The values Go's `strconv.ParseBool` reads as true.
fn means_true(value: &str) -> bool {
    matches!(value, "1" | "t" | "T" | "true" | "TRUE" | "True")
}

/// `storageclass-encrypted`: the class asks for encryption, or the policy does not require it.
/// Where the policy also asks for a customer-managed or approved key, the fix is a `kmsKeyId`:
/// `encrypted: "true"` alone would encrypt with the account's default key.
fn judge_encryption(
    judgement: &mut Judgement,
    resource: &ResourceRef,
    requested: Requested<'_>,
    spec: &EncryptedVolumePolicySpec,
    wanted: &KeyRequirements<'_>,
    facts: &dyn Facts,
) {
    let misread = match requested {
        Requested::Nothing { misread } if spec.require_encryption => misread,
        _ => return judgement.check(Rule::StorageclassEncrypted),
    };
    let name = &resource.name;
    let fix = match (wanted.customer_managed.is_some(), wanted.allowed) {
        (true, _) => format!("{KMS_KEY_FIX} (the EBS CSI driver then encrypts, whatever encrypted says)"),
        (false, []) => "set parameters.encrypted: \"true\"".to_string(),
        (false, approved) => format!(
            "set parameters.kmsKeyId to an approved key ({}); the EBS CSI driver then encrypts, whatever encrypted says",
            approved.join(", ")
        ),
    };
    let asks = match misread {
        Some(raw) => format!(
            "StorageClass {name} sets encrypted: {raw:?}, but the EBS CSI driver asks for encryption only on the \
             exact string \"true\" (write encrypted: \"true\")"
        ),
        None => format!("StorageClass {name} does not ask for encryption"),
    };
    match facts.ebs_default() {
        Fact::Known(default) if default.encryption_by_default => {
            let key = default.default_kms_key_id.as_deref().unwrap_or("alias/aws/ebs");
            judgement.violation_at(
                Rule::StorageclassEncrypted,
                Severity::Low,
                resource,
                format!("{asks} and relies on the account's EBS encryption by default (key {key})"),
                fix,
            );
        }
        Fact::Known(default) => judgement.violation(
            Rule::StorageclassEncrypted,
            resource,
            format!(
                "{asks}: its volumes are unencrypted, as EBS encryption by default is off in {}",
                default.region
            ),
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
                format!("{asks}: its volumes are unencrypted{why}"),
                fix,
            );
        }
    }
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
        unknown @ (Fact::Unknown | Fact::Failed(_)) => judgement.skip_for(Rule::EncryptedVolumes, &unknown),
    }
    Verdict::Judged(judgement)
}

/// Whether the policy judges settings of the account and cluster, reported against itself.
pub fn judges_itself(spec: &EncryptedVolumePolicySpec) -> bool {
    spec.check_account_default || spec.cluster_secrets_encryption.is_some()
}

/// The account's EBS encryption by default and the cluster's Secrets encryption, as the policy
/// asks: one verdict, against the policy itself. `None` when it asks for neither.
pub fn judge_policy_itself(
    spec: &EncryptedVolumePolicySpec,
    policy: &ResourceRef,
    facts: &dyn Facts,
) -> Option<Judgement> {
    if !judges_itself(spec) {
        return None;
    }
    let mut judgement =
        if spec.check_account_default { judge_account_default(policy, facts) } else { Judgement::default() };
    if let Some(cluster) = &spec.cluster_secrets_encryption {
        judge_cluster_secrets(&mut judgement, policy, cluster, spec, facts);
    }
    Some(judgement)
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
        other => judgement.skip_for(Rule::Ec2EbsEncryptionByDefault, &other),
    }
    judgement
}

#[cfg(test)]
mod tests;
