//! What a ProtectedSecret spec must get right before anything is read: its own fields, the
//! Secret keys it produces, and what it may put on the Secret it writes.

use crate::api::{CreationPolicy, ProtectedSecretSpec, SecretPolicy, parse_duration};
use crate::policy::kms::KeyRef;
use std::collections::HashSet;
use std::fmt;

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

/// Secret types a synced value can be, and the default of `--allowed-secret-types`.
pub const SYNCABLE_SECRET_TYPES: [&str; 5] = [
    "Opaque",
    "kubernetes.io/tls",
    "kubernetes.io/dockerconfigjson",
    "kubernetes.io/basic-auth",
    "kubernetes.io/ssh-auth",
];

/// Never writable: the token controller would fill such a Secret with a token of whichever
/// ServiceAccount of the namespace it names.
pub const SERVICE_ACCOUNT_TOKEN_TYPE: &str = "kubernetes.io/service-account-token";

/// Label and annotation keys a ProtectedSecret may not put on its Secret: the operator's own
/// (ownership, merge consent, the content HMAC) and those that bind a Secret to a ServiceAccount.
fn reserved(key: &str) -> bool {
    key.starts_with("dpo.dev/") || key.starts_with("kubernetes.io/service-account.")
}

/// Why `key` cannot be a key of a Secret's `data`, as the apiserver judges it
/// (`IsConfigMapKey`); `None` when it can.
pub fn secret_key_problem(key: &str) -> Option<&'static str> {
    if key.is_empty() || key.len() > 253 {
        Some("is not 1 to 253 characters long")
    } else if !key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
        Some("has characters other than letters, digits, '-', '_' and '.'")
    } else if key == "." || key.starts_with("..") {
        Some("is '.' or starts with '..'")
    } else {
        None
    }
}

const SECRET_KEY_FIX: &str = "use letters, digits, '-', '_' and '.' only";

/// Every problem of `spec` a person must fix, each naming its field. The Secret type is
/// judged apart, by [`refused_secret_type`], against what the operator's admin allows.
pub fn validate_spec(spec: &ProtectedSecretSpec) -> Vec<SpecError> {
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
    if let Some(interval) = &spec.refresh_interval {
        match parse_duration(interval) {
            Err(e) => fail("spec.refreshInterval".into(), e.to_string(), "write a duration such as 1h"),
            Ok(d) if !d.is_zero() && d < std::time::Duration::from_secs(10) => fail(
                "spec.refreshInterval".into(),
                format!("{interval} is shorter than 10s"),
                "use 0 to sync once, or at least 10s",
            ),
            Ok(_) => {}
        }
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
        if let Some(problem) = secret_key_problem(&mapping.key) {
            fail(format!("spec.data[{i}].key"), format!("{:?} {problem}", mapping.key), SECRET_KEY_FIX);
        }
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
            if let Some(problem) = secret_key_problem(key) {
                fail(
                    format!("spec.template.data.{key}"),
                    format!("the key {key:?} {problem}"),
                    SECRET_KEY_FIX,
                );
            }
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

/// Why the Secret type of `spec` may not be written, when it is not among `allowed` (the
/// operator's `--allowed-secret-types`).
pub fn refused_secret_type(spec: &ProtectedSecretSpec, allowed: &[String]) -> Option<SpecError> {
    let type_ = spec.target.type_.as_deref()?;
    if allowed.iter().any(|a| a == type_) && type_ != SERVICE_ACCOUNT_TOKEN_TYPE {
        return None;
    }
    Some(SpecError {
        field: "spec.target.type".into(),
        message: format!("{type_:?} is not a Secret type this operator writes"),
        fix: format!("use one of {} (the operator's --allowed-secret-types)", allowed.join(", ")),
    })
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::api::ProtectedSecret;
    use crate::policy::testing::from_yaml;

    pub(crate) fn spec(yaml: &str) -> ProtectedSecretSpec {
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

    #[test]
    fn secret_types_outside_the_allowed_list_are_refused_and_a_token_always() {
        let defaults: Vec<String> = SYNCABLE_SECRET_TYPES.map(String::from).to_vec();
        let typed = |type_: &str| spec(&format!("  target: {{type: {type_}}}\n"));
        assert_eq!(refused_secret_type(&spec(""), &defaults), None, "no type is Opaque");
        assert_eq!(refused_secret_type(&typed("kubernetes.io/tls"), &defaults), None);
        let custom = refused_secret_type(&typed("example.com/x"), &defaults).expect("refused");
        assert_eq!(custom.field, "spec.target.type");
        assert!(custom.fix.contains("kubernetes.io/ssh-auth (the operator's --allowed-secret-types)"));
        let widened = vec!["example.com/x".to_string(), SERVICE_ACCOUNT_TOKEN_TYPE.to_string()];
        assert_eq!(refused_secret_type(&typed("example.com/x"), &widened), None, "the admin may widen it");
        assert!(refused_secret_type(&typed("Opaque"), &widened).is_some(), "or narrow it");
        let token = typed(SERVICE_ACCOUNT_TOKEN_TYPE);
        assert!(refused_secret_type(&token, &widened).is_some(), "a token is never written");
    }

    #[test]
    fn secret_keys_are_judged_as_the_apiserver_does() {
        for valid in ["password", "tls.crt", ".dockerconfigjson", "a-b_c.D9", &"k".repeat(253)] {
            assert_eq!(secret_key_problem(valid), None, "{valid}");
        }
        for invalid in ["", ".", "..", "..x", "a b", "a/b", "é", &"k".repeat(254)] {
            assert!(secret_key_problem(invalid).is_some(), "{invalid:?}");
        }
        let bad = spec("  data: [{key: 'a b', property: x}]\n  template: {data: {'..x': '{{ x }}'}}\n");
        let errors = validate_spec(&bad);
        assert_eq!(fields(&errors), ["spec.data[0].key", "spec.template.data...x"]);
        assert!(errors[0].to_string().contains("\"a b\" has characters other than"), "{}", errors[0]);
    }
}
