//! Tenancy: which AWS Secrets Manager secrets a namespace may read.
//!
//! The rules file is a YAML list; a namespace may read a secret id when a rule whose
//! `namespaces` match it lists a prefix of the secret's name. `{namespace}` in a prefix stands
//! for the namespace; `*` in a namespace pattern matches any run of characters; the prefix `*`
//! allows every secret. Without a file, the one rule is "a namespace reads ids under
//! `<namespace>/`".
//!
//! ```yaml
//! - namespaces: ["payments", "payments-*"]
//!   secretIdPrefixes: ["payments/", "shared/payments/"]
//! - namespaces: ["*"]
//!   secretIdPrefixes: ["{namespace}/"]
//! ```

use crate::policy::arn::Arn;
use serde::Deserialize;
use std::path::Path;

const NAMESPACE_PLACEHOLDER: &str = "{namespace}";
const ANY_SECRET: &str = "*";

/// One rule: namespaces matching any of `namespaces` may read the ids under `secret_id_prefixes`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessRule {
    pub namespaces: Vec<String>,
    pub secret_id_prefixes: Vec<String>,
}

/// The validated rules. A namespace gets the union of the prefixes of every rule matching it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessRules {
    rules: Vec<AccessRule>,
}

/// Why a rules file was rejected: the file, the rule's index and what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum AccessRulesError {
    #[error("cannot read the secret access rules {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("secret access rules {path}: not a YAML list of rules: {source}")]
    Parse { path: String, source: serde_yaml::Error },
    #[error("secret access rules {path}: rule {index}: {message}")]
    Invalid { path: String, index: usize, message: String },
}

impl Default for AccessRules {
    fn default() -> Self {
        AccessRules {
            rules: vec![AccessRule {
                namespaces: vec!["*".into()],
                secret_id_prefixes: vec![format!("{NAMESPACE_PLACEHOLDER}/")],
            }],
        }
    }
}

impl AccessRules {
    /// Reads and validates a rules file.
    pub fn load(path: &Path) -> Result<Self, AccessRulesError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|source| AccessRulesError::Read { path: name.clone(), source })?;
        Self::parse(&name, &text)
    }

    /// Parses and validates rules; `path` only names the source in errors.
    pub fn parse(path: &str, text: &str) -> Result<Self, AccessRulesError> {
        let rules: Vec<AccessRule> = serde_yaml::from_str(text)
            .map_err(|source| AccessRulesError::Parse { path: path.to_string(), source })?;
        for (index, rule) in rules.iter().enumerate() {
            validate(rule).map_err(|message| AccessRulesError::Invalid {
                path: path.to_string(),
                index,
                message,
            })?;
        }
        Ok(AccessRules { rules })
    }

    /// Whether `namespace` may read `secret_id` (a name, or an ARN matched on its name part).
    pub fn allowed(&self, namespace: &str, secret_id: &str) -> bool {
        let Some(name) = secret_name(secret_id) else { return false };
        self.prefixes(namespace).any(|prefix| prefix == ANY_SECRET || name.starts_with(&prefix))
    }

    /// The prefixes `namespace` may read, for messages that tell a user what to change.
    pub fn describe(&self, namespace: &str) -> String {
        let prefixes: Vec<String> = self.prefixes(namespace).map(|p| format!("{p:?}")).collect();
        if prefixes.is_empty() { "none".to_string() } else { prefixes.join(", ") }
    }

    /// The prefixes of the rules matching `namespace`, placeholder filled in.
    fn prefixes(&self, namespace: &str) -> impl Iterator<Item = String> {
        self.rules
            .iter()
            .filter(move |rule| {
                rule.namespaces.iter().any(|pattern| crate::glob::matches(pattern, namespace))
            })
            .flat_map(|rule| &rule.secret_id_prefixes)
            .map(move |prefix| prefix.replace(NAMESPACE_PLACEHOLDER, namespace))
    }
}

fn validate(rule: &AccessRule) -> Result<(), String> {
    if rule.namespaces.is_empty() {
        return Err("`namespaces` is empty; list namespace names or patterns such as team-*".into());
    }
    for pattern in &rule.namespaces {
        let valid = !pattern.is_empty()
            && pattern.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '*');
        if !valid {
            return Err(format!(
                "namespace pattern {pattern:?} is not a namespace name (a-z, 0-9, -) with optional *"
            ));
        }
    }
    if rule.secret_id_prefixes.is_empty() {
        return Err("`secretIdPrefixes` is empty; list prefixes such as \"{namespace}/\"".into());
    }
    for prefix in &rule.secret_id_prefixes {
        if prefix.is_empty() {
            return Err("an empty secret id prefix; write \"*\" to allow every secret".into());
        }
        // Braces are not valid in secret names, so any left after the placeholder is a typo.
        if prefix.replace(NAMESPACE_PLACEHOLDER, "").contains(['{', '}']) {
            return Err(format!("prefix {prefix:?}: the only placeholder is {NAMESPACE_PLACEHOLDER}"));
        }
        if prefix.starts_with("arn:") {
            return Err(format!(
                "prefix {prefix:?}: prefixes match secret names; write the name, not the ARN"
            ));
        }
    }
    Ok(())
}

/// The name part of a secret id: the id itself, or the name in a Secrets Manager ARN. Any other
/// ARN names no secret.
fn secret_name(secret_id: &str) -> Option<&str> {
    if !secret_id.starts_with("arn:") {
        return Some(secret_id);
    }
    Arn::parse(secret_id)?.secret_name()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:secretsmanager:eu-west-1:111111111111:secret:";

    #[test]
    fn by_default_a_namespace_reads_its_own_prefix_only() {
        let rules = AccessRules::default();
        assert!(rules.allowed("shop", "shop/db"));
        assert!(rules.allowed("shop", &format!("{ARN}shop/db-AbCdEf")));
        assert!(!rules.allowed("shop", "shopping/db"));
        assert!(!rules.allowed("shop", "payments/db"));
        assert!(!rules.allowed("shop", &format!("{ARN}payments/db-AbCdEf")));
        assert!(!rules.allowed("shop", "shop"));
    }

    #[test]
    fn rules_match_namespace_patterns_and_add_up() {
        let rules = AccessRules::parse(
            "rules.yaml",
            r#"
- namespaces: ["payments", "payments-*"]
  secretIdPrefixes: ["shared/payments/"]
- namespaces: ["*"]
  secretIdPrefixes: ["{namespace}/"]
- namespaces: ["platform"]
  secretIdPrefixes: ["*"]
"#,
        )
        .unwrap();
        assert!(rules.allowed("payments-eu", "shared/payments/key"));
        assert!(rules.allowed("payments-eu", "payments-eu/db"));
        assert!(rules.allowed("payments", "shared/payments/key"));
        assert!(!rules.allowed("shop", "shared/payments/key"));
        assert!(rules.allowed("platform", "anything/at/all"));
        assert!(rules.allowed("platform", &format!("{ARN}x-AbCdEf")));
        assert_eq!(rules.describe("payments-eu"), r#""shared/payments/", "payments-eu/""#);
        assert_eq!(rules.describe("platform"), r#""platform/", "*""#);
    }

    #[test]
    fn arns_are_matched_on_their_name_and_foreign_arns_are_refused() {
        let rules = AccessRules::default();
        assert!(rules.allowed("shop", "arn:aws-cn:secretsmanager:cn-north-1:1:secret:shop/db"));
        assert!(!rules.allowed("shop", "arn:aws:ssm:eu-west-1:111111111111:parameter/shop/db"));
        assert!(!rules.allowed("shop", "arn:aws:secretsmanager:eu-west-1:111111111111:secret:"));
        // An ARN whose name part would only match across the `:` separators is not a match.
        assert!(!rules.allowed("shop", "arn:shop/x"));
    }

    #[test]
    fn no_rules_allow_nothing() {
        let rules = AccessRules::parse("rules.yaml", "[]").unwrap();
        assert!(!rules.allowed("shop", "shop/db"));
        assert_eq!(rules.describe("shop"), "none");
    }

    #[test]
    fn invalid_rules_are_refused_with_the_rule_and_reason() {
        let cases = [
            ("- namespaces: []\n  secretIdPrefixes: [a/]", "rule 0: `namespaces` is empty"),
            ("- namespaces: [Shop]\n  secretIdPrefixes: [a/]", "\"Shop\" is not a namespace name"),
            ("- namespaces: [shop]\n  secretIdPrefixes: []", "`secretIdPrefixes` is empty"),
            ("- namespaces: [shop]\n  secretIdPrefixes: [\"\"]", "empty secret id prefix"),
            ("- namespaces: [shop]\n  secretIdPrefixes: [\"{ns}/\"]", "the only placeholder"),
            ("- namespaces: [shop]\n  secretIdPrefixes: [\"arn:aws:x\"]", "not the ARN"),
            ("- namespaces: [shop]\n  prefixes: [a/]", "unknown field `prefixes`"),
            ("namespaces: [shop]", "not a YAML list of rules"),
        ];
        for (text, expected) in cases {
            let error = AccessRules::parse("rules.yaml", text).unwrap_err().to_string();
            assert!(error.contains(expected), "{text:?}: {error}");
            assert!(error.contains("rules.yaml"), "{error}");
        }
    }
}
