//! KMS key references and the key rules shared by secrets and volumes.

use super::arn::{Arn, Scope};
use super::facts::{Fact, Facts, KeyManager};
use super::{Judgement, Rule};
use crate::api::ResourceRef;

/// A KMS key as written in a manifest, in the shapes KMS accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyRef<'a> {
    pub name: KeyName<'a>,
    /// The account and region of an ARN. A key id or `alias/...` has none: it resolves where it is
    /// used.
    pub scope: Option<Scope<'a>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyName<'a> {
    /// A key id (`1234abcd-...`, `mrk-...`) or the id part of a key ARN.
    Id(&'a str),
    /// An alias name without the `alias/` prefix, from `alias/x` or an alias ARN.
    Alias(&'a str),
}

impl<'a> KeyRef<'a> {
    pub fn parse(key: &'a str) -> Option<KeyRef<'a>> {
        let (resource, scope) = match Arn::parse(key) {
            Some(arn) if arn.service == "kms" => (arn.resource, Some(arn.scope())),
            Some(_) => return None,
            None => (key, None),
        };
        if let Some(alias) = resource.strip_prefix("alias/") {
            return (!alias.is_empty()).then_some(KeyRef { name: KeyName::Alias(alias), scope });
        }
        let id = resource.strip_prefix("key/").unwrap_or(resource);
        let valid = !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        valid.then_some(KeyRef { name: KeyName::Id(id), scope })
    }

    /// Whether the reference names an AWS-managed key (`alias/aws/...`).
    pub fn is_aws_managed_alias(self) -> bool {
        matches!(self.name, KeyName::Alias(alias) if alias.starts_with("aws/"))
    }

    /// Whether two references name the same key, as far as can be told without KMS.
    fn same_key(self, other: KeyRef<'_>) -> Option<bool> {
        // A key and its aliases belong to one account and region.
        if let (Some(a), Some(b)) = (self.scope, other.scope)
            && a != b
        {
            return Some(false);
        }
        match (self.name, other.name) {
            // Key ids are unique.
            (KeyName::Id(a), KeyName::Id(b)) => Some(a == b),
            // An alias is its account's name for a key: equal names agree only where both
            // resolve in the same account (an ARN's, or both where they are used).
            (KeyName::Alias(a), KeyName::Alias(b)) if a == b && self.scope == other.scope => Some(true),
            // Several aliases may name one key; an alias and an id need KMS to compare.
            _ => None,
        }
    }
}

/// `key` as the ARN it stands for in `home` when it is a key id or `alias/...`, so that it is
/// looked up, and compared, in the account and region where it resolves.
pub fn qualified(key: &str, home: Option<Scope<'_>>) -> String {
    match (KeyRef::parse(key), home) {
        (Some(KeyRef { name, scope: None }), Some(Scope { partition, region, account })) => {
            let resource = match name {
                KeyName::Id(id) => format!("key/{id}"),
                KeyName::Alias(alias) => format!("alias/{alias}"),
            };
            format!("arn:{partition}:kms:{region}:{account}:{resource}")
        }
        _ => key.to_string(),
    }
}

/// Whether `key` is in `allowed`, as far as can be told: `Some(answer)`, or `None` when it takes
/// KMS to resolve aliases and the facts of either side are not known. An alias entry without an
/// account matches only in the account it resolves in.
pub fn key_allowed(key: &str, allowed: &[String], facts: &dyn Facts) -> Option<bool> {
    let resolved_arn = |k: &str| facts.kms_key(k).known().map(|f| f.arn.clone());
    let key_ref = KeyRef::parse(key);
    let key_arn = resolved_arn(key);
    let mut undecidable = false;
    for candidate in allowed {
        if candidate == key {
            return Some(true);
        }
        let by_reference = key_ref.zip(KeyRef::parse(candidate)).and_then(|(a, b)| a.same_key(b));
        // Both sides are looked up, so that one round of gathering finds both.
        let by_resolution = || {
            let candidate_arn = resolved_arn(candidate);
            Some(key_arn.as_ref()? == candidate_arn.as_ref()?)
        };
        match by_reference.or_else(by_resolution) {
            Some(true) => return Some(true),
            Some(false) => {}
            None => undecidable = true,
        }
    }
    if undecidable { None } else { Some(false) }
}

/// What the governing policy asks of a KMS key.
#[derive(Clone, Copy, Debug)]
pub struct KeyRequirements<'a> {
    pub allowed: &'a [String],
    /// Where key ids and `alias/...` references, the key's and the allowlist's, resolve: the
    /// account and region of what uses the key. `None`: the operator's own.
    pub home: Option<Scope<'a>>,
    /// The rule that requires a customer-managed key here, if the policy asks for one.
    pub customer_managed: Option<CustomerManaged<'a>>,
    pub rotation: bool,
}

/// A customer-managed key requirement: the rule that carries it and how to fix a violation.
#[derive(Clone, Copy, Debug)]
pub struct CustomerManaged<'a> {
    pub rule: Rule,
    pub fix: &'a str,
}

/// Judges one KMS key: allowlist, customer-managed, enabled, not pending deletion, rotating.
/// `key` is the reference as written; `usage` says what uses it, for messages.
pub fn judge_key(
    judgement: &mut Judgement,
    resource: &ResourceRef,
    key: &str,
    usage: &str,
    wanted: KeyRequirements<'_>,
    facts: &dyn Facts,
) {
    // Only AWS can create aliases under alias/aws/, whatever a describe call says of the key.
    let aws_managed_alias = KeyRef::parse(key).is_some_and(KeyRef::is_aws_managed_alias);
    // Messages quote the references as written; lookups and comparisons use them qualified.
    let written = key;
    let key = &qualified(written, wanted.home);
    if !wanted.allowed.is_empty() {
        let allowed: Vec<String> = wanted.allowed.iter().map(|entry| qualified(entry, wanted.home)).collect();
        match key_allowed(key, &allowed, facts) {
            Some(true) => judgement.check(Rule::KmsKeyApproved),
            Some(false) => judgement.violation(
                Rule::KmsKeyApproved,
                resource,
                format!("{usage} uses KMS key {written}, which is not in the policy's allowlist"),
                format!("use one of the approved keys: {}", wanted.allowed.join(", ")),
            ),
            None => judgement.skip_for(Rule::KmsKeyApproved, &facts.kms_key(key)),
        }
    }
    let key_fact = facts.kms_key(key);
    let key_facts = match &key_fact {
        Fact::Known(k) => *k,
        Fact::NotFound => {
            judgement.violation_at(
                Rule::KmsKeyEnabled,
                Rule::KmsKeyEnabled.severity(),
                resource,
                format!("{usage} uses KMS key {written}, which does not exist"),
                format!(
                    "create the key or point {usage} at an existing one: aws kms describe-key --key-id {key}"
                ),
            );
            return;
        }
        Fact::Unknown | Fact::Failed(_) => {
            if let Some(requirement) = wanted.customer_managed {
                if aws_managed_alias {
                    customer_managed_violation(judgement, requirement, resource, written, usage);
                } else {
                    judgement.skip_for(requirement.rule, &key_fact);
                }
            }
            for rule in [Rule::KmsKeyEnabled, Rule::KmsCmkNotScheduledForDeletion] {
                judgement.skip_for(rule, &key_fact);
            }
            if wanted.rotation {
                judgement.skip_for(Rule::CmkBackingKeyRotationEnabled, &key_fact);
            }
            return;
        }
    };
    let customer_managed = key_facts.key_manager == KeyManager::Customer && !aws_managed_alias;
    if let Some(requirement) = wanted.customer_managed {
        if customer_managed {
            judgement.check(requirement.rule);
        } else {
            customer_managed_violation(judgement, requirement, resource, written, usage);
        }
    }
    if key_facts.pending_deletion {
        let when = key_facts.deletion_date.map(|d| format!(" on {d}")).unwrap_or_default();
        judgement.violation(
            Rule::KmsCmkNotScheduledForDeletion,
            resource,
            format!("KMS key {} used by {usage} is scheduled for deletion{when}", key_facts.arn),
            format!("aws kms cancel-key-deletion --key-id {}", key_facts.key_id),
        );
    } else {
        judgement.check(Rule::KmsCmkNotScheduledForDeletion);
        if key_facts.enabled {
            judgement.check(Rule::KmsKeyEnabled);
        } else {
            judgement.violation(
                Rule::KmsKeyEnabled,
                resource,
                format!(
                    "KMS key {} used by {usage} is disabled: nothing can be decrypted with it",
                    key_facts.arn
                ),
                format!("aws kms enable-key --key-id {}", key_facts.key_id),
            );
        }
    }
    // AWS rotates AWS-managed keys itself every year; only customer keys need it turned on.
    // Asked only when the answer counts: it is a call of its own, and a failed one loses this
    // rule alone.
    if wanted.rotation && customer_managed {
        match facts.kms_key_rotation(key) {
            Fact::Known(true) => judgement.check(Rule::CmkBackingKeyRotationEnabled),
            Fact::Known(false) => judgement.violation(
                Rule::CmkBackingKeyRotationEnabled,
                resource,
                format!("KMS key {} used by {usage} does not rotate automatically", key_facts.arn),
                format!("aws kms enable-key-rotation --key-id {}", key_facts.key_id),
            ),
            other => judgement.skip_for(Rule::CmkBackingKeyRotationEnabled, &other),
        }
    }
}

fn customer_managed_violation(
    judgement: &mut Judgement,
    requirement: CustomerManaged<'_>,
    resource: &ResourceRef,
    key: &str,
    usage: &str,
) {
    judgement.violation(
        requirement.rule,
        resource,
        format!("{usage} is encrypted with the AWS-managed key {key}, not a customer-managed key"),
        requirement.fix.to_string(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::facts::{FactError, FactSet, KmsKeyFacts};

    const KEY_ARN: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    const KEY_ID: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";

    fn key(manager: KeyManager, enabled: bool, pending_deletion: bool) -> KmsKeyFacts {
        KmsKeyFacts {
            arn: KEY_ARN.into(),
            key_id: KEY_ID.into(),
            key_manager: manager,
            enabled,
            pending_deletion,
            deletion_date: None,
        }
    }

    fn facts_with(reference: &str, facts: KmsKeyFacts, rotating: bool) -> FactSet {
        let mut set = FactSet::default();
        set.kms_keys.insert(reference.into(), Fact::Known(facts));
        set.kms_rotations.insert(reference.into(), Fact::Known(rotating));
        set
    }

    fn judged(key_ref: &str, wanted: KeyRequirements<'_>, facts: &dyn Facts) -> Judgement {
        let mut judgement = Judgement::default();
        judge_key(&mut judgement, &ResourceRef::default(), key_ref, "StorageClass gp3", wanted, facts);
        judgement
    }

    fn rules(judgement: &Judgement) -> Vec<&str> {
        judgement.findings.iter().map(|f| f.rule.as_str()).collect()
    }

    const ALL: KeyRequirements<'static> = KeyRequirements {
        allowed: &[],
        home: None,
        customer_managed: Some(CustomerManaged { rule: Rule::StorageclassUsingCmk, fix: "use a CMK" }),
        rotation: true,
    };

    #[test]
    fn parses_key_references() {
        fn name(key: &str) -> Option<KeyName<'_>> {
            KeyRef::parse(key).map(|key_ref| key_ref.name)
        }
        assert_eq!(name(KEY_ARN), Some(KeyName::Id(KEY_ID)));
        assert_eq!(name(KEY_ID), Some(KeyName::Id(KEY_ID)));
        assert_eq!(name("alias/shop"), Some(KeyName::Alias("shop")));
        let alias_arn = KeyRef::parse("arn:aws:kms:us-east-1:111122223333:alias/shop").unwrap();
        assert_eq!(alias_arn.name, KeyName::Alias("shop"));
        assert_eq!(
            alias_arn.scope,
            Some(Scope { partition: "aws", region: "us-east-1", account: "111122223333" })
        );
        assert_eq!(KeyRef::parse("alias/shop").unwrap().scope, None);
        assert!(KeyRef::parse("alias/aws/ebs").unwrap().is_aws_managed_alias());
        assert_eq!(KeyRef::parse("arn:aws:s3:::bucket"), None);
        assert_eq!(KeyRef::parse("alias/"), None);
        assert_eq!(KeyRef::parse("not a key"), None);
    }

    #[test]
    fn ids_and_aliases_are_qualified_where_they_resolve() {
        let home = Some(Scope { partition: "aws", region: "eu-west-1", account: "999999999999" });
        assert_eq!(qualified("alias/shop", home), "arn:aws:kms:eu-west-1:999999999999:alias/shop");
        assert_eq!(qualified(KEY_ID, home), format!("arn:aws:kms:eu-west-1:999999999999:key/{KEY_ID}"));
        assert_eq!(qualified(KEY_ARN, home), KEY_ARN);
        assert_eq!(qualified("alias/shop", None), "alias/shop");
    }

    #[test]
    fn allowlist_compares_ids_and_arns_offline() {
        let offline = FactSet::default();
        assert_eq!(key_allowed(KEY_ID, &[KEY_ARN.into()], &offline), Some(true));
        assert_eq!(key_allowed(KEY_ARN, &["abcd".into()], &offline), Some(false));
        // An alias and a key id need KMS to compare.
        assert_eq!(key_allowed("alias/shop", &[KEY_ARN.into()], &offline), None);
    }

    #[test]
    fn allowlist_resolves_aliases_through_facts() {
        let facts = facts_with("alias/shop", key(KeyManager::Customer, true, false), true);
        let mut facts = facts;
        facts.kms_keys.insert(KEY_ARN.into(), Fact::Known(key(KeyManager::Customer, true, false)));
        assert_eq!(key_allowed("alias/shop", &[KEY_ARN.into()], &facts), Some(true));
        assert_eq!(key_allowed("alias/shop", &[KEY_ARN.replace("1234abcd", "9999abcd")], &facts), None);
    }

    #[test]
    fn alias_entries_match_only_in_the_account_they_resolve_in() {
        let offline = FactSet::default();
        let elsewhere = "arn:aws:kms:us-east-1:999999999999:alias/shop";
        // `alias/shop` in the allowlist resolves in the account the policy judges in: another
        // account's alias of the same name is another key.
        assert_eq!(key_allowed(elsewhere, &["alias/shop".into()], &offline), None);
        let ours = "arn:aws:kms:us-east-1:111122223333:alias/shop";
        assert_eq!(key_allowed(elsewhere, &[ours.into()], &offline), Some(false));
        assert_eq!(key_allowed(elsewhere, &[elsewhere.into()], &offline), Some(true));
        assert_eq!(key_allowed("alias/shop", &["alias/shop".into()], &offline), Some(true));

        let mut facts = FactSet::default();
        facts.kms_keys.insert("alias/shop".into(), Fact::Known(key(KeyManager::Customer, true, false)));
        let mut foreign = key(KeyManager::Customer, true, false);
        foreign.arn = "arn:aws:kms:us-east-1:999999999999:key/aaaaaaaa-12ab-34cd-56ef-1234567890ab".into();
        facts.kms_keys.insert(elsewhere.into(), Fact::Known(foreign));
        assert_eq!(key_allowed(elsewhere, &["alias/shop".into()], &facts), Some(false));
    }

    #[test]
    fn healthy_customer_key_passes_every_rule() {
        let facts = facts_with(KEY_ARN, key(KeyManager::Customer, true, false), true);
        let judgement = judged(KEY_ARN, ALL, &facts);
        assert!(judgement.findings.is_empty(), "{:?}", judgement.findings);
        assert!(judgement.checked.contains(&Rule::CmkBackingKeyRotationEnabled));
        assert!(judgement.skipped.is_empty());
    }

    #[test]
    fn each_key_problem_is_its_own_finding_with_a_cli_fix() {
        let facts = facts_with(KEY_ARN, key(KeyManager::Customer, false, false), false);
        let judgement = judged(KEY_ARN, ALL, &facts);
        assert_eq!(rules(&judgement), ["kms-key-enabled", "cmk-backing-key-rotation-enabled"]);
        assert!(judgement.findings[0].remediation.contains("aws kms enable-key --key-id 1234abcd"));

        let facts = facts_with(KEY_ARN, key(KeyManager::Customer, false, true), true);
        let judgement = judged(KEY_ARN, ALL, &facts);
        assert_eq!(rules(&judgement), ["kms-cmk-not-scheduled-for-deletion"]);
        assert!(judgement.findings[0].remediation.contains("cancel-key-deletion"));
    }

    #[test]
    fn aws_managed_key_fails_customer_managed_requirement_but_needs_no_rotation() {
        let facts = facts_with("alias/aws/ebs", key(KeyManager::Aws, true, false), false);
        let judgement = judged("alias/aws/ebs", ALL, &facts);
        assert_eq!(rules(&judgement), ["storageclass-using-cmk"]);
    }

    #[test]
    fn aws_alias_is_aws_managed_whatever_the_facts_say() {
        let facts = facts_with("alias/aws/secretsmanager", key(KeyManager::Customer, true, false), false);
        let judgement = judged("alias/aws/secretsmanager", ALL, &facts);
        assert_eq!(rules(&judgement), ["storageclass-using-cmk"]);
    }

    #[test]
    fn offline_skips_what_needs_kms_but_still_flags_aws_managed_aliases() {
        let offline = FactSet::default();
        let judgement = judged("alias/aws/ebs", ALL, &offline);
        assert_eq!(rules(&judgement), ["storageclass-using-cmk"]);
        assert!(judgement.skipped.contains(&Rule::KmsKeyEnabled));

        let judgement = judged("alias/shop", ALL, &offline);
        assert!(judgement.findings.is_empty());
        assert!(judgement.skipped.contains(&Rule::StorageclassUsingCmk));
    }

    #[test]
    fn a_failed_rotation_status_loses_the_rotation_rule_alone() {
        let denied = FactError {
            reason: "AccessDenied",
            message: "kms:GetKeyRotationStatus".into(),
            transient: false,
        };
        let mut facts = facts_with(KEY_ARN, key(KeyManager::Customer, false, false), true);
        facts.kms_rotations.insert(KEY_ARN.into(), Fact::Failed(denied.clone()));
        let judgement = judged(KEY_ARN, ALL, &facts);
        assert_eq!(rules(&judgement), ["kms-key-enabled"]);
        assert!(judgement.checked.contains(&Rule::KmsCmkNotScheduledForDeletion));
        assert_eq!(judgement.skipped, [Rule::CmkBackingKeyRotationEnabled]);
        assert_eq!(judgement.skip_causes[&Rule::CmkBackingKeyRotationEnabled], denied);

        // A failed DescribeKey loses what it tells, with its cause; rotation only where asked.
        let mut facts = FactSet::default();
        facts.kms_keys.insert(KEY_ARN.into(), Fact::Failed(denied.clone()));
        let judgement = judged(KEY_ARN, KeyRequirements { rotation: false, ..ALL }, &facts);
        assert_eq!(
            judgement.skipped,
            [Rule::StorageclassUsingCmk, Rule::KmsKeyEnabled, Rule::KmsCmkNotScheduledForDeletion]
        );
        assert_eq!(judgement.skip_causes.len(), 3);
    }

    #[test]
    fn rotation_is_asked_only_of_customer_managed_keys() {
        let mut facts = FactSet::default();
        facts.kms_keys.insert("alias/aws/ebs".into(), Fact::Known(key(KeyManager::Aws, true, false)));
        let recorder = crate::policy::facts::FactRecorder::new(&facts);
        judged("alias/aws/ebs", ALL, &recorder);
        assert!(recorder.into_wanted().kms_rotations.is_empty());
    }

    #[test]
    fn missing_key_is_a_finding() {
        let mut facts = FactSet::default();
        facts.kms_keys.insert("alias/gone".into(), Fact::NotFound);
        let judgement = judged("alias/gone", ALL, &facts);
        assert_eq!(rules(&judgement), ["kms-key-enabled"]);
    }
}
