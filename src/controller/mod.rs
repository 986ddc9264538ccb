//! The controllers: one module per kind, each a reconcile function of (object, context).

pub mod protected_secret;

use crate::aws::AwsFacts;
use crate::metrics::ReconcileMetrics;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Settings shared by the controllers, validated at start.
#[derive(Clone, Debug)]
pub struct ControllerConfig {
    /// Refresh interval for ProtectedSecrets that do not set one.
    pub default_refresh: Duration,
    /// Period of the full re-evaluation of cluster policies (facts change in AWS).
    pub reevaluation_period: Duration,
    /// Reconciles in flight at once, per controller.
    pub concurrency: u16,
    /// Which AWS secrets each namespace may read.
    pub secret_access: SecretAccess,
    /// How long AWS reads of concurrent reconciles are collected into one batch call.
    pub batch_window: Duration,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            default_refresh: Duration::from_secs(3600),
            reevaluation_period: Duration::from_secs(600),
            concurrency: 4,
            secret_access: SecretAccess::default(),
            batch_window: Duration::from_millis(20),
        }
    }
}

/// Namespace access rules for AWS secret ids (Helm value `secretAccess`).
///
/// A namespace with no rule may read the secrets whose name starts with `<namespace>/`. A rule
/// replaces that default with its own name prefixes, where `{namespace}` stands for the
/// namespace and `*` allows every secret. ARNs are judged by their name part.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecretAccess {
    /// Namespace -> allowed secret name prefixes.
    pub rules: BTreeMap<String, Vec<String>>,
}

impl SecretAccess {
    /// Whether `namespace` may read `secret_id` (a name or an ARN).
    pub fn allows(&self, namespace: &str, secret_id: &str) -> bool {
        let name = secret_name(secret_id);
        let default = [format!("{namespace}/")];
        let prefixes = self.rules.get(namespace).map_or(&default[..], Vec::as_slice);
        prefixes.iter().any(|prefix| {
            let prefix = prefix.replace("{namespace}", namespace);
            prefix == "*" || (!prefix.is_empty() && name.starts_with(&prefix))
        })
    }

    /// The prefixes `namespace` may read, for messages.
    pub fn describe(&self, namespace: &str) -> String {
        match self.rules.get(namespace) {
            Some(prefixes) if !prefixes.is_empty() => prefixes
                .iter()
                .map(|p| format!("{:?}", p.replace("{namespace}", namespace)))
                .collect::<Vec<_>>()
                .join(", "),
            Some(_) => "none".to_string(),
            None => format!("{:?}", format!("{namespace}/")),
        }
    }
}

/// The name part of a Secrets Manager ARN (`arn:aws:secretsmanager:r:a:secret:NAME`), or the id.
fn secret_name(secret_id: &str) -> &str {
    match secret_id.strip_prefix("arn:") {
        Some(rest) if rest.contains(":secretsmanager:") => {
            rest.split_once(":secret:").map_or(secret_id, |(_, name)| name)
        }
        _ => secret_id,
    }
}

/// What every reconcile gets besides its object.
#[derive(Clone)]
pub struct Context {
    pub client: kube::Client,
    pub aws: AwsFacts,
    pub reconciles: ReconcileMetrics,
    pub config: Arc<ControllerConfig>,
    /// State the ProtectedSecret controller keeps between reconciles.
    pub protected_secrets: Arc<protected_secret::Shared>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_read_their_own_prefix_by_default() {
        let access = SecretAccess::default();
        assert!(access.allows("shop", "shop/db"));
        assert!(access.allows("shop", "arn:aws:secretsmanager:us-east-1:123456789012:secret:shop/db-AbC123"));
        assert!(!access.allows("shop", "shopping/db"));
        assert!(!access.allows("shop", "other/db"));
        assert!(!access.allows("shop", "arn:aws:secretsmanager:us-east-1:123456789012:secret:other/shop/db"));
    }

    #[test]
    fn rules_replace_the_default() {
        let access = SecretAccess {
            rules: [
                ("shop".to_string(), vec!["shared/".to_string(), "{namespace}-prod/".to_string()]),
                ("ops".to_string(), vec!["*".to_string()]),
                ("locked".to_string(), vec![]),
            ]
            .into(),
        };
        assert!(access.allows("shop", "shared/tls"));
        assert!(access.allows("shop", "shop-prod/db"));
        assert!(!access.allows("shop", "shop/db"));
        assert!(access.allows("ops", "anything"));
        assert!(!access.allows("locked", "locked/db"));
        assert!(access.allows("other", "other/db"));
        assert_eq!(access.describe("shop"), r#""shared/", "shop-prod/""#);
        assert_eq!(access.describe("other"), r#""other/""#);
    }
}
