//! Tenancy: which AWS Secrets Manager secrets a namespace may read, and which roles it may
//! assume to read them.
//!
//! The rules file is a YAML list. A namespace may read a reference when one rule whose
//! `namespaces` match it allows all of the reference:
//! - `secretIdPrefixes`: a prefix of the secret's name (`*` allows every name);
//! - `accounts`: the secret's account, a 12-digit id or `*` (default: the operator's own);
//! - `regions`: the secret's region, a name or a pattern (default: any);
//! - `roles`: the role the reference assumes, an ARN or a pattern (default: none, so only the
//!   operator's own identity). `--allowed-role` bounds them still.
//!
//! `externalId` is passed to AssumeRole for that rule's roles. `{namespace}` in a prefix, role
//! or external id stands for the namespace; `*` in a pattern matches any run of characters.
//! Without a file, the one rule is "a namespace reads ids under `<namespace>/` in the operator's
//! own account". Every check is made on the spec alone: a refused reference costs no AWS call.
//!
//! ```yaml
//! - namespaces: ["payments", "payments-*"]
//!   secretIdPrefixes: ["payments/", "shared/payments/"]
//!   accounts: ["111111111111"]
//!   regions: ["eu-*"]
//!   roles: ["arn:aws:iam::111111111111:role/payments-reader"]
//!   externalId: "dpo-{namespace}"
//! - namespaces: ["*"]
//!   secretIdPrefixes: ["{namespace}/"]
//! ```

use crate::api::SecretSource;
use crate::aws::{Identity, RoleSession, Target};
use crate::glob;
use crate::policy::arn::{Arn, is_account_id};
use serde::Deserialize;
use std::path::Path;

const NAMESPACE_PLACEHOLDER: &str = "{namespace}";
const ANY: &str = "*";

/// One rule: namespaces matching any of `namespaces` may read what the other fields allow.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessRule {
    pub namespaces: Vec<String>,
    pub secret_id_prefixes: Vec<String>,
    #[serde(default)]
    pub accounts: Vec<String>,
    #[serde(default)]
    pub regions: Vec<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub external_id: Option<String>,
}

/// The validated rules, in file order: the first rule allowing a reference sets its external id.
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

/// A reference the rules refuse, or one that cannot point anywhere: the condition reason
/// (`AccessNotAllowed`, `InvalidReference`) and a message naming what to change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denied {
    pub reason: &'static str,
    pub message: String,
}

fn not_allowed(message: String) -> Denied {
    Denied { reason: "AccessNotAllowed", message }
}

fn invalid(message: String) -> Denied {
    Denied { reason: "InvalidReference", message }
}

impl Default for AccessRules {
    fn default() -> Self {
        AccessRules {
            rules: vec![AccessRule {
                namespaces: vec![ANY.into()],
                secret_id_prefixes: vec![format!("{NAMESPACE_PLACEHOLDER}/")],
                accounts: Vec::new(),
                regions: Vec::new(),
                roles: Vec::new(),
                external_id: None,
            }],
        }
    }
}

/// What a reference points at, every part resolved.
struct Reference<'a> {
    name: &'a str,
    account: &'a str,
    region: &'a str,
    role: Option<&'a str>,
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

    /// Where `namespace` may read `source`, or why not. `identity` is the operator's own account
    /// and partition, `default_region` the controller's region.
    pub fn check(
        &self,
        namespace: &str,
        source: &SecretSource,
        identity: &Identity,
        default_region: &str,
    ) -> Result<Target, Denied> {
        let reference = resolve(source, identity, default_region)?;
        let Reference { name, account, region, role } = reference;
        let secret_id = &source.secret_id;
        let own = account == identity.account;
        let mut rules: Vec<&AccessRule> =
            self.rules.iter().filter(|r| any(&r.namespaces, namespace)).collect();
        let every = |rules: &[&AccessRule], field: fn(&AccessRule) -> &[String]| -> String {
            let values: Vec<String> =
                rules.iter().flat_map(|r| field(r)).map(|v| format!("{:?}", filled(v, namespace))).collect();
            if values.is_empty() { "none".into() } else { values.join(", ") }
        };

        let prefixes = every(&rules, |r| &r.secret_id_prefixes);
        rules.retain(|r| {
            r.secret_id_prefixes.iter().any(|p| p == ANY || name.starts_with(&filled(p, namespace)))
        });
        if rules.is_empty() {
            return Err(not_allowed(format!(
                "namespace {namespace} may not read AWS secret {secret_id}: the secretIdPrefixes of its access \
                 rules allow names starting with {prefixes}"
            )));
        }
        let accounts = rules.iter().map(|r| accounts_of(r, identity)).collect::<Vec<_>>().join(", ");
        rules.retain(|r| match r.accounts.as_slice() {
            [] => own,
            listed => listed.iter().any(|a| a == ANY || a == account),
        });
        if rules.is_empty() {
            return Err(not_allowed(format!(
                "namespace {namespace} may not read AWS secret {secret_id} in account {account}: the accounts of \
                 its access rules for {name:?} allow {accounts}"
            )));
        }
        let regions = every(&rules, |r| &r.regions);
        rules.retain(|r| r.regions.is_empty() || any(&r.regions, region));
        if rules.is_empty() {
            return Err(not_allowed(format!(
                "namespace {namespace} may not read AWS secret {secret_id} in region {region}: the regions of its \
                 access rules for it allow {regions}"
            )));
        }
        if let Some(role) = role {
            let roles = every(&rules, |r| &r.roles);
            rules.retain(|r| r.roles.iter().any(|pattern| glob::matches(&filled(pattern, namespace), role)));
            if rules.is_empty() {
                return Err(not_allowed(format!(
                    "namespace {namespace} may not assume role {role}: the roles of its access rules for AWS \
                     secret {secret_id} allow {roles}"
                )));
            }
        }
        let session = role.map(|_| RoleSession {
            namespace: namespace.to_string(),
            external_id: rules[0].external_id.as_deref().map(|id| filled(id, namespace)),
        });
        Ok(Target { region: Some(region.to_string()), role_arn: role.map(String::from), session })
    }
}

/// Resolves the reference's account (its ARN's, else its role's, as a name read through a role
/// resolves there, else the operator's) and region (its ARN's, else `spec.source.region`, else
/// the controller's), refusing one that cannot point anywhere.
fn resolve<'a>(
    source: &'a SecretSource,
    identity: &'a Identity,
    default_region: &'a str,
) -> Result<Reference<'a>, Denied> {
    let secret_id = source.secret_id.as_str();
    let own_partition = |arn: &Arn, field: &str| match arn.partition == identity.partition {
        true => Ok(()),
        false => Err(invalid(format!(
            "{field} is in partition {}, and the operator runs in {}: no credentials of it reach there",
            arn.partition, identity.partition
        ))),
    };
    let role = match &source.role_arn {
        Some(role) => {
            let arn = Arn::parse(role)
                .filter(|arn| {
                    arn.service == "iam" && arn.resource.starts_with("role/") && arn.has_account_id()
                })
                .ok_or_else(|| {
                    invalid(format!(
                        "spec.source.roleArn {role:?} is not a role ARN (arn:aws:iam::<account>:role/<name>)"
                    ))
                })?;
            own_partition(&arn, "spec.source.roleArn")?;
            Some((role.as_str(), arn.account))
        }
        None => None,
    };
    let region = source.region.as_deref();
    if !secret_id.starts_with("arn:") {
        let account = role.map_or(identity.account.as_str(), |(_, account)| account);
        let region = region.unwrap_or(default_region);
        return Ok(Reference { name: secret_id, account, region, role: role.map(|(role, _)| role) });
    }
    let secret = Arn::parse(secret_id)
        .filter(|arn| arn.has_account_id() && !arn.region.is_empty())
        .and_then(|arn| Some((arn.secret_name()?, arn)));
    let Some((name, arn)) = secret else {
        return Err(invalid(format!(
            "spec.source.secretId {secret_id:?} is not a Secrets Manager secret ARN \
             (arn:aws:secretsmanager:<region>:<account>:secret:<name>)"
        )));
    };
    own_partition(&arn, "spec.source.secretId")?;
    if let Some(region) = region.filter(|region| *region != arn.region) {
        return Err(invalid(format!(
            "spec.source.region {region} is not the region of spec.source.secretId ({}): drop spec.source.region \
             or make them agree",
            arn.region
        )));
    }
    Ok(Reference { name, account: arn.account, region: arn.region, role: role.map(|(role, _)| role) })
}

/// Whether any of `patterns` matches `text`.
fn any(patterns: &[String], text: &str) -> bool {
    patterns.iter().any(|pattern| glob::matches(pattern, text))
}

fn filled(value: &str, namespace: &str) -> String {
    value.replace(NAMESPACE_PLACEHOLDER, namespace)
}

/// A rule's accounts as a message shows them.
fn accounts_of(rule: &AccessRule, identity: &Identity) -> String {
    match rule.accounts.as_slice() {
        [] => format!("{} (the operator's own, by default)", identity.account),
        listed => listed.join(", "),
    }
}

fn validate(rule: &AccessRule) -> Result<(), String> {
    if rule.namespaces.is_empty() {
        return Err("`namespaces` is empty; list namespace names or patterns such as team-*".into());
    }
    for pattern in &rule.namespaces {
        if !is_pattern(pattern) {
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
        placeholders("prefix", prefix)?;
        if prefix.starts_with("arn:") {
            return Err(format!(
                "prefix {prefix:?}: prefixes match secret names; write the name, and the account in `accounts`"
            ));
        }
    }
    for account in &rule.accounts {
        if account != ANY && !is_account_id(account) {
            return Err(format!("account {account:?} is not a 12-digit account id or *"));
        }
    }
    for region in &rule.regions {
        if !is_pattern(region) {
            return Err(format!(
                "region {region:?} is not a region name such as eu-west-1 or a pattern such as eu-*"
            ));
        }
    }
    for role in &rule.roles {
        placeholders("role", role)?;
        if Arn::parse(role).is_none_or(|arn| arn.service != "iam") {
            return Err(format!(
                "role {role:?} is not a role ARN or pattern such as arn:aws:iam::111111111111:role/dpo-*"
            ));
        }
    }
    if let Some(external_id) = &rule.external_id {
        placeholders("externalId", external_id)?;
        // What AWS accepts as an ExternalId (a namespace name fits).
        let valid =
            filled(external_id, "ns").chars().all(|c| c.is_ascii_alphanumeric() || "_+=,.@:/-".contains(c));
        if !valid || external_id.len() < 2 {
            return Err(format!("externalId {external_id:?}: use 2 or more of A-Z, a-z, 0-9 and _+=,.@:/-"));
        }
        if rule.roles.is_empty() {
            return Err("`externalId` is set but `roles` is empty: an external id goes with a role".into());
        }
    }
    Ok(())
}

/// Whether `text` is a name of a-z, 0-9 and `-` (a namespace, a region), with optional `*`.
fn is_pattern(text: &str) -> bool {
    !text.is_empty()
        && text.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '*')
}

/// Braces are valid in none of the fields, so any left after the placeholder is a typo.
fn placeholders(field: &str, value: &str) -> Result<(), String> {
    match value.replace(NAMESPACE_PLACEHOLDER, "").contains(['{', '}']) {
        true => Err(format!("{field} {value:?}: the only placeholder is {NAMESPACE_PLACEHOLDER}")),
        false => Ok(()),
    }
}

#[cfg(test)]
mod tests;
