//! Access rules for the namespace of the reconcile tests that let it assume its role, and AWS
//! settings that know moto's account (so no GetCallerIdentity) and allow that role.

use super::controller::{Harness, NAMESPACE};
use super::moto;
use dpo::aws::{AwsFacts, AwsSettings, Identity};
use dpo::controller::ControllerConfig;
use dpo::controller::access::AccessRules;

/// moto's account, given as a flag would give it.
pub const ACCOUNT: &str = "123456789012";
pub const ROLE: &str = "arn:aws:iam::123456789012:role/dpo-team";

/// `NAMESPACE` reads `NAMESPACE/…` in `us-*` regions, may assume its own role (and one role the
/// operator's allowlist refuses), with an external id.
pub fn rules() -> AccessRules {
    let text = format!(
        r#"
- namespaces: ["{NAMESPACE}"]
  secretIdPrefixes: ["{{namespace}}/"]
  regions: [us-*]
  roles: ["arn:aws:iam::{ACCOUNT}:role/dpo-{{namespace}}", "arn:aws:iam::{ACCOUNT}:role/unlisted"]
  externalId: "ext-{{namespace}}"
"#
    );
    AccessRules::parse("rules.yaml", &text).unwrap()
}

/// Test settings with moto's account as the operator's identity, allowing the `dpo-*` roles.
pub fn settings() -> AwsSettings {
    AwsSettings {
        identity: Some(Identity { partition: "aws".into(), account: ACCOUNT.into() }),
        allowed_roles: vec!["arn:aws:iam::*:role/dpo-*".into()],
        ..moto::test_settings()
    }
}

/// A harness under [`rules`].
pub fn harness(aws: AwsFacts) -> Harness {
    Harness::with_config(aws, ControllerConfig { secret_access: rules(), ..ControllerConfig::default() })
}
