//! ProtectedSecret: spec checks that need no AWS, and the Secrets Manager / KMS rules.

use super::arn::Arn;
use super::facts::{Fact, Facts, SecretFacts};
use super::kms::{CustomerManaged, KeyRef, KeyRequirements, judge_key};
use super::{Judgement, Rule};
use crate::api::{CreationPolicy, ProtectedSecretSpec, ResourceRef, SecretPolicy, parse_duration};
use jiff::{SignedDuration, Timestamp};
use std::collections::HashSet;
use std::fmt;

/// The key Secrets Manager uses when a secret names none.
pub const DEFAULT_SECRETS_MANAGER_KEY: &str = "alias/aws/secretsmanager";

/// A ProtectedSecret spec mistake, naming the field and the fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError {
    /// Path of the field under `spec`, e.g. `spec.data[1].key`.
    pub field: String,
    pub message: String,
    pub fix: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} ({})", self.field, self.message, self.fix)
    }
}

impl std::error::Error for SpecError {}

/// Checks a spec for what the schema cannot express. Empty when the spec is usable.
/// Secret types a synced value can be. Not `kubernetes.io/service-account-token`: the token
/// controller would fill it with a token of whichever ServiceAccount it names.
pub const SYNCABLE_SECRET_TYPES: [&str; 5] = [
    "Opaque",
    "kubernetes.io/tls",
    "kubernetes.io/dockerconfigjson",
    "kubernetes.io/basic-auth",
    "kubernetes.io/ssh-auth",
];

/// Label and annotation keys a ProtectedSecret may not put on its Secret: the operator's own
/// (ownership, merge consent, the content HMAC) and those that bind a Secret to a ServiceAccount.
fn reserved(key: &str) -> bool {
    key.starts_with("dpo.dev/") || key.starts_with("kubernetes.io/service-account.")
}

/// [`validate_spec_allowing`] with only the [`SYNCABLE_SECRET_TYPES`].
pub fn validate_spec(spec: &ProtectedSecretSpec) -> Vec<SpecError> {
    validate_spec_allowing(spec, &[])
}

/// Every problem of `spec` a person must fix, each naming its field; `extra_types` are Secret
/// types the operator's admin allows beyond the [`SYNCABLE_SECRET_TYPES`].
pub fn validate_spec_allowing(spec: &ProtectedSecretSpec, extra_types: &[String]) -> Vec<SpecError> {
    let mut errors = Vec::new();
    let mut fail = |field: String, message: String, fix: &str| {
        errors.push(SpecError { field, message, fix: fix.to_string() });
    };
    let source = &spec.source;
    if source.secret_id.trim().is_empty() {
        fail("spec.source.secretId".into(), "is empty".into(), "name the secret or give its ARN");
    }
    if source.version_id.is_some() && source.version_stage.is_some() {
        fail(
            "spec.source.versionId".into(),
            "is set together with versionStage".into(),
            "keep one of versionId and versionStage",
        );
    }
    match parse_duration(&spec.refresh_interval) {
        Err(e) => fail("spec.refreshInterval".into(), e.to_string(), "write a duration such as 1h"),
        Ok(d) if !d.is_zero() && d < std::time::Duration::from_secs(10) => fail(
            "spec.refreshInterval".into(),
            format!("{} is shorter than 10s", spec.refresh_interval),
            "use 0 to sync once, or at least 10s",
        ),
        Ok(_) => {}
    }
    let extract = spec.data_from.as_ref().is_some_and(|d| d.extract);
    let templated = spec.template.as_ref().is_some_and(|t| !t.data.is_empty());
    if spec.data.is_empty() && !extract && !templated {
        fail(
            "spec.data".into(),
            "nothing is synced: no data, dataFrom.extract or template".into(),
            "add data: [{key: password, property: password}] or dataFrom: {extract: true}",
        );
    }
    let mut keys = HashSet::new();
    for (i, mapping) in spec.data.iter().enumerate() {
        if !keys.insert(mapping.key.as_str()) {
            fail(
                format!("spec.data[{i}].key"),
                format!("key {:?} appears twice", mapping.key),
                "give each key once",
            );
        }
        if let Some(property) = &mapping.property
            && property.split('.').any(str::is_empty)
        {
            fail(
                format!("spec.data[{i}].property"),
                format!("{property:?} has an empty path segment"),
                "write a JSON path like db.password or hosts.0",
            );
        }
    }
    if let Some(template) = &spec.template {
        let environment = minijinja::Environment::new();
        for (key, source) in &template.data {
            if let Err(e) = environment.template_from_str(source) {
                fail(
                    format!("spec.template.data.{key}"),
                    format!("does not parse: {e}"),
                    "fix the template syntax",
                );
            }
        }
    }
    if spec.target.creation_policy == CreationPolicy::Merge && spec.target.type_.is_some() {
        fail(
            "spec.target.type".into(),
            "is set with creationPolicy Merge, which never changes an existing Secret's type".into(),
            "remove target.type, or use creationPolicy Owner",
        );
    }
    if let Some(type_) = &spec.target.type_
        && !SYNCABLE_SECRET_TYPES.contains(&type_.as_str())
        && !extra_types.contains(type_)
    {
        fail(
            "spec.target.type".into(),
            format!("{type_:?} is not a type a synced value can be"),
            "use Opaque, kubernetes.io/tls, kubernetes.io/dockerconfigjson, kubernetes.io/basic-auth or \
             kubernetes.io/ssh-auth (the operator's admin may allow more with --extra-secret-types)",
        );
    }
    let target = &spec.target;
    for (field, keys) in [("labels", &target.labels), ("annotations", &target.annotations)] {
        for key in keys.keys().filter(|key| reserved(key)) {
            fail(
                format!("spec.target.{field}.{key}"),
                "is reserved for the operator and for ServiceAccount tokens".into(),
                "remove it",
            );
        }
    }
    validate_policy(&spec.policy, &mut fail);
    errors
}

fn validate_policy(policy: &SecretPolicy, fail: &mut impl FnMut(String, String, &str)) {
    for (i, key) in policy.allowed_kms_keys.iter().enumerate() {
        let field = format!("spec.policy.allowedKmsKeys[{i}]");
        match KeyRef::parse(key) {
            None => fail(
                field,
                format!("{key:?} is not a KMS key id, ARN or alias"),
                "write alias/name, a key id or a key ARN",
            ),
            Some(key_ref) if key_ref.is_aws_managed_alias() && policy.require_customer_managed_key => fail(
                field,
                format!("{key} is AWS-managed but requireCustomerManagedKey is true"),
                "remove it from allowedKmsKeys, or set requireCustomerManagedKey: false",
            ),
            Some(_) => {}
        }
    }
    if let Some(max_age) = policy.rotation.max_days_since_rotation
        && max_age < policy.rotation.max_interval_days
    {
        fail(
            "spec.policy.rotation.maxDaysSinceRotation".into(),
            format!(
                "{max_age} is shorter than maxIntervalDays ({}), so a compliant schedule would fail it",
                policy.rotation.max_interval_days
            ),
            "raise maxDaysSinceRotation to at least maxIntervalDays",
        );
    }
}

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
    use super::*;
    use crate::api::ProtectedSecret;
    use crate::policy::facts::{FactSet, KeyManager, KmsKeyFacts};
    use crate::policy::testing::from_yaml;

    const CMK: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    fn spec(yaml: &str) -> ProtectedSecretSpec {
        let object: ProtectedSecret = from_yaml(&format!(
            "apiVersion: dpo.dev/v1alpha1\nkind: ProtectedSecret\nmetadata: {{name: db, namespace: shop}}\nspec:\n  source: {{secretId: shop/db}}\n  dataFrom: {{extract: true}}\n{yaml}"
        ));
        object.spec
    }

    fn fields(errors: &[SpecError]) -> Vec<&str> {
        errors.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn a_plain_spec_is_valid() {
        assert_eq!(validate_spec(&spec("")), []);
        // Asking for no CMK and listing no keys is a consistent choice.
        assert_eq!(validate_spec(&spec("  policy: {requireCustomerManagedKey: false}\n")), []);
    }

    #[test]
    fn each_mistake_names_its_field() {
        let errors = validate_spec(&spec(
            "  refreshInterval: 5s\n  data: [{key: a, property: x..y}, {key: a}]\n  template: {data: {DSN: \"{{ user \"}}\n  policy: {allowedKmsKeys: [\"alias/aws/secretsmanager\", \"nonsense key\"]}\n",
        ));
        assert_eq!(
            fields(&errors),
            [
                "spec.refreshInterval",
                "spec.data[0].property",
                "spec.data[1].key",
                "spec.template.data.DSN",
                "spec.policy.allowedKmsKeys[0]",
                "spec.policy.allowedKmsKeys[1]",
            ]
        );
        assert!(errors[4].fix.contains("requireCustomerManagedKey: false"));
    }

    #[test]
    fn conflicting_and_empty_specs_are_errors() {
        let mut both = spec("");
        both.source.version_id = Some("v1".into());
        both.source.version_stage = Some("AWSPREVIOUS".into());
        assert_eq!(fields(&validate_spec(&both)), ["spec.source.versionId"]);

        let mut nothing = spec("");
        nothing.data_from = None;
        assert_eq!(fields(&validate_spec(&nothing)), ["spec.data"]);

        let merge_with_type = spec("  target: {creationPolicy: Merge, type: kubernetes.io/tls}\n");
        assert_eq!(fields(&validate_spec(&merge_with_type)), ["spec.target.type"]);
        let token = spec("  target: {type: kubernetes.io/service-account-token}\n");
        assert_eq!(fields(&validate_spec(&token)), ["spec.target.type"]);
        let widened = ["kubernetes.io/service-account-token".to_string()];
        assert!(validate_spec_allowing(&token, &widened).is_empty(), "the admin may widen the list");
        assert!(validate_spec(&spec("  target: {type: kubernetes.io/tls}\n")).is_empty());
        let reserved = spec(
            "  target:\n    labels: {dpo.dev/managed-by: me, team: shop}\n    annotations: \
             {kubernetes.io/service-account.name: default, dpo.dev/allow-merge-from: '*'}\n",
        );
        assert_eq!(
            fields(&validate_spec(&reserved)),
            [
                "spec.target.labels.dpo.dev/managed-by",
                "spec.target.annotations.dpo.dev/allow-merge-from",
                "spec.target.annotations.kubernetes.io/service-account.name"
            ]
        );

        let bad_ages = spec("  policy: {rotation: {maxIntervalDays: 30, maxDaysSinceRotation: 7}}\n");
        assert_eq!(fields(&validate_spec(&bad_ages)), ["spec.policy.rotation.maxDaysSinceRotation"]);
    }

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
