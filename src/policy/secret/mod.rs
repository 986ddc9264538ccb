//! ProtectedSecret: spec checks that need no AWS ([`spec`]), and the Secrets Manager / KMS
//! rules.

mod spec;

pub use spec::{
    SERVICE_ACCOUNT_TOKEN_TYPE, SYNCABLE_SECRET_TYPES, SpecError, refused_secret_type, secret_key_problem,
    validate_spec,
};

use super::arn::Arn;
use super::facts::{Fact, Facts, SecretFacts};
use super::kms::{CustomerManaged, KeyRequirements, judge_key};
use super::{Judgement, Rule};
use crate::api::{ProtectedSecretSpec, ResourceRef, SecretPolicy};
use jiff::{SignedDuration, Timestamp};

/// The key Secrets Manager uses when a secret names none.
pub const DEFAULT_SECRETS_MANAGER_KEY: &str = "alias/aws/secretsmanager";

/// Judges the AWS secret behind a ProtectedSecret against its policy.
pub fn judge_secret(resource: &ResourceRef, spec: &ProtectedSecretSpec, facts: &dyn Facts) -> Judgement {
    let mut judgement = Judgement::default();
    let policy = &spec.policy;
    let secret = match facts.secret(&spec.source.secret_id) {
        Fact::Known(secret) => secret,
        other => {
            for rule in secret_rules(policy) {
                judgement.skip_for(rule, &other);
            }
            return judgement;
        }
    };
    let usage = format!("secret {}", secret.name);
    // Secrets Manager omits the key id when the secret uses its default key.
    let key = secret.kms_key_id.as_deref().unwrap_or(DEFAULT_SECRETS_MANAGER_KEY);
    let fix = format!(
        "aws secretsmanager update-secret --secret-id {} --kms-key-id <customer-managed key ARN>",
        secret.name
    );
    let wanted = KeyRequirements {
        allowed: &policy.allowed_kms_keys,
        // Secrets Manager resolves the secret's key in the secret's own account and region, and
        // so does the policy for its allowlist.
        home: Arn::parse(&secret.arn).filter(|arn| arn.service == "secretsmanager").map(|arn| arn.scope()),
        customer_managed: policy
            .require_customer_managed_key
            .then_some(CustomerManaged { rule: Rule::SecretsmanagerUsingCmk, fix: &fix }),
        rotation: policy.require_key_rotation,
    };
    judge_key(&mut judgement, resource, key, &usage, wanted, facts);
    judge_rotation(&mut judgement, resource, policy, secret, facts.now());
    judgement
}

fn secret_rules(policy: &SecretPolicy) -> Vec<Rule> {
    let mut rules = vec![Rule::KmsKeyEnabled, Rule::KmsCmkNotScheduledForDeletion];
    if policy.require_customer_managed_key {
        rules.push(Rule::SecretsmanagerUsingCmk);
    }
    if !policy.allowed_kms_keys.is_empty() {
        rules.push(Rule::KmsKeyApproved);
    }
    if policy.require_key_rotation {
        rules.push(Rule::CmkBackingKeyRotationEnabled);
    }
    if policy.rotation.required {
        rules.extend([
            Rule::SecretsmanagerRotationEnabledCheck,
            Rule::SecretsmanagerSecretPeriodicRotation,
            Rule::SecretsmanagerScheduledRotationSuccessCheck,
        ]);
    }
    rules
}

/// A rotation that runs this much past its schedule counts as failed: AWS rotates within a
/// window, not to the minute.
const ROTATION_GRACE: SignedDuration = SignedDuration::from_hours(24);

fn judge_rotation(
    judgement: &mut Judgement,
    resource: &ResourceRef,
    policy: &SecretPolicy,
    secret: &SecretFacts,
    now: Timestamp,
) {
    let name = &secret.name;
    let rotation = &policy.rotation;
    let days = |d: u32| SignedDuration::from_hours(24 * i64::from(d));
    if rotation.required {
        match (secret.rotation_enabled, secret.rotation_interval_days) {
            (false, _) => judgement.violation(
                Rule::SecretsmanagerRotationEnabledCheck,
                resource,
                format!("secret {name} does not rotate"),
                format!("aws secretsmanager rotate-secret --secret-id {name} --rotation-lambda-arn <arn> --rotation-rules AutomaticallyAfterDays={}", rotation.max_interval_days),
            ),
            (true, Some(interval)) if interval > rotation.max_interval_days => judgement.violation(
                Rule::SecretsmanagerRotationEnabledCheck,
                resource,
                format!("secret {name} rotates every {interval} days, more than the {} allowed", rotation.max_interval_days),
                format!("aws secretsmanager rotate-secret --secret-id {name} --rotation-rules AutomaticallyAfterDays={}", rotation.max_interval_days),
            ),
            _ => judgement.check(Rule::SecretsmanagerRotationEnabledCheck),
        }
        let max_age = rotation.max_days_since_rotation.unwrap_or(rotation.max_interval_days);
        match secret.last_rotated.or(secret.created) {
            Some(since) if now.duration_since(since) > days(max_age) => judgement.violation(
                Rule::SecretsmanagerSecretPeriodicRotation,
                resource,
                format!("secret {name} was last rotated on {since}, more than {max_age} days ago"),
                format!("aws secretsmanager rotate-secret --secret-id {name}"),
            ),
            Some(_) => judgement.check(Rule::SecretsmanagerSecretPeriodicRotation),
            None => judgement.skip(Rule::SecretsmanagerSecretPeriodicRotation),
        }
    }
    if secret.rotation_enabled {
        let due = secret.next_rotation.or_else(|| {
            let interval = secret.rotation_interval_days?;
            Some(secret.last_rotated.or(secret.created)? + days(interval))
        });
        match due {
            Some(due) if now > due + ROTATION_GRACE => judgement.violation(
                Rule::SecretsmanagerScheduledRotationSuccessCheck,
                resource,
                format!("secret {name} was due to rotate on {due} and has not: the rotation is failing"),
                format!("read the rotation function's logs, then retry: aws secretsmanager rotate-secret --secret-id {name}"),
            ),
            Some(_) => judgement.check(Rule::SecretsmanagerScheduledRotationSuccessCheck),
            None => judgement.skip(Rule::SecretsmanagerScheduledRotationSuccessCheck),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::spec::tests::spec;
    use super::*;
    use crate::policy::facts::{FactSet, KeyManager, KmsKeyFacts};

    const CMK: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    fn now() -> Timestamp {
        "2026-06-01T00:00:00Z".parse().unwrap()
    }

    fn secret_facts(
        kms_key: Option<&str>,
        rotation_days: Option<u32>,
        last_rotated: Option<&str>,
    ) -> SecretFacts {
        SecretFacts {
            arn: "arn:aws:secretsmanager:us-east-1:111122223333:secret:shop/db-AbCdEf".into(),
            name: "shop/db".into(),
            kms_key_id: kms_key.map(String::from),
            rotation_enabled: rotation_days.is_some(),
            rotation_interval_days: rotation_days,
            last_rotated: last_rotated.map(|t| t.parse().unwrap()),
            created: Some("2026-01-01T00:00:00Z".parse().unwrap()),
            ..SecretFacts::default()
        }
    }

    fn world(secret: SecretFacts, key_rotation: bool) -> FactSet {
        let mut facts = FactSet { now: Some(now()), ..FactSet::default() };
        facts.secrets.insert("shop/db".into(), Fact::Known(secret));
        facts.kms_keys.insert(
            CMK.into(),
            Fact::Known(KmsKeyFacts {
                arn: CMK.into(),
                key_id: "1234abcd-12ab-34cd-56ef-1234567890ab".into(),
                key_manager: KeyManager::Customer,
                enabled: true,
                pending_deletion: false,
                deletion_date: None,
            }),
        );
        facts.kms_rotations.insert(CMK.into(), Fact::Known(key_rotation));
        facts
    }

    fn rules_found(spec: &ProtectedSecretSpec, facts: &dyn Facts) -> Vec<String> {
        judge_secret(&ResourceRef::default(), spec, facts).findings.into_iter().map(|f| f.rule).collect()
    }

    #[test]
    fn compliant_secret_with_rotating_cmk() {
        let spec = spec("  policy: {rotation: {required: true, maxIntervalDays: 30}}\n");
        let facts = world(secret_facts(Some(CMK), Some(30), Some("2026-05-20T00:00:00Z")), true);
        assert_eq!(rules_found(&spec, &facts), Vec::<String>::new());
    }

    #[test]
    fn default_key_violates_using_cmk_without_a_kms_call() {
        let facts = world(secret_facts(None, None, None), true);
        let judgement = judge_secret(&ResourceRef::default(), &spec(""), &facts);
        assert_eq!(judgement.findings[0].rule, "secretsmanager-using-cmk");
        assert!(judgement.findings[0].remediation.contains("update-secret --secret-id shop/db --kms-key-id"));
    }

    #[test]
    fn key_rotation_off_is_reported() {
        let facts = world(secret_facts(Some(CMK), None, None), false);
        assert_eq!(rules_found(&spec(""), &facts), ["cmk-backing-key-rotation-enabled"]);
        let relaxed = spec("  policy: {requireKeyRotation: false}\n");
        assert_eq!(rules_found(&relaxed, &facts), Vec::<String>::new());
    }

    #[test]
    fn rotation_rules() {
        let spec = spec("  policy: {rotation: {required: true, maxIntervalDays: 30}}\n");
        let off = world(secret_facts(Some(CMK), None, Some("2026-05-20T00:00:00Z")), true);
        assert_eq!(rules_found(&spec, &off), ["secretsmanager-rotation-enabled-check"]);
        let too_slow = world(secret_facts(Some(CMK), Some(90), Some("2026-05-20T00:00:00Z")), true);
        assert_eq!(rules_found(&spec, &too_slow), ["secretsmanager-rotation-enabled-check"]);
        // Due on 2026-04-01 + 30 days and not rotated since: stale and failing.
        let stale = world(secret_facts(Some(CMK), Some(30), Some("2026-04-01T00:00:00Z")), true);
        assert_eq!(
            rules_found(&spec, &stale),
            ["secretsmanager-secret-periodic-rotation", "secretsmanager-scheduled-rotation-success-check"]
        );
    }

    #[test]
    fn the_secrets_keys_are_looked_up_in_the_secrets_own_account_and_region() {
        let mut facts = FactSet { now: Some(now()), ..FactSet::default() };
        let mut secret = secret_facts(None, None, None);
        secret.arn = "arn:aws:secretsmanager:eu-west-1:999999999999:secret:shop/db-AbCdEf".into();
        facts.secrets.insert("shop/db".into(), Fact::Known(secret));
        let spec = spec("  policy: {allowedKmsKeys: [alias/shop]}\n");
        let recorder = crate::policy::facts::FactRecorder::new(&facts);
        judge_secret(&ResourceRef::default(), &spec, &recorder);
        let wanted: Vec<String> = recorder.into_wanted().kms_keys.into_iter().collect();
        assert_eq!(
            wanted,
            [
                "arn:aws:kms:eu-west-1:999999999999:alias/aws/secretsmanager",
                "arn:aws:kms:eu-west-1:999999999999:alias/shop"
            ]
        );
    }

    #[test]
    fn offline_skips_every_aws_rule() {
        let spec = spec("  policy: {rotation: {required: true}}\n");
        let judgement = judge_secret(&ResourceRef::default(), &spec, &FactSet::default());
        assert!(judgement.findings.is_empty());
        assert!(judgement.skipped.contains(&Rule::SecretsmanagerUsingCmk));
        assert!(judgement.skipped.contains(&Rule::SecretsmanagerRotationEnabledCheck));
    }
}
