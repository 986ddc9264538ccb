use super::*;

const OWN: &str = "123456789012";
const OTHER: &str = "222222222222";
const REGION: &str = "us-east-1";

fn identity() -> Identity {
    Identity { partition: "aws".into(), account: OWN.into() }
}

fn arn(account: &str, region: &str, name: &str) -> String {
    format!("arn:aws:secretsmanager:{region}:{account}:secret:{name}")
}

fn role(account: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:role/{name}")
}

fn source(secret_id: &str) -> SecretSource {
    SecretSource { secret_id: secret_id.into(), ..SecretSource::default() }
}

fn with_role(secret_id: &str, role_arn: &str) -> SecretSource {
    SecretSource { role_arn: Some(role_arn.into()), ..source(secret_id) }
}

fn check(rules: &AccessRules, namespace: &str, source: &SecretSource) -> Result<Target, Denied> {
    rules.check(namespace, source, &identity(), REGION)
}

fn allowed(rules: &AccessRules, namespace: &str, secret_id: &str) -> bool {
    check(rules, namespace, &source(secret_id)).is_ok()
}

/// The message of a refusal with `reason`.
fn refused(rules: &AccessRules, namespace: &str, source: &SecretSource, reason: &str) -> String {
    let denied = check(rules, namespace, source).expect_err("refused");
    assert_eq!(denied.reason, reason, "{}", denied.message);
    denied.message
}

fn rules(text: &str) -> AccessRules {
    AccessRules::parse("rules.yaml", text).unwrap()
}

#[test]
fn by_default_a_namespace_reads_its_own_prefix_in_the_operators_account_only() {
    let rules = AccessRules::default();
    assert!(allowed(&rules, "shop", "shop/db"));
    assert!(allowed(&rules, "shop", &arn(OWN, "eu-west-1", "shop/db-AbCdEf")));
    assert!(!allowed(&rules, "shop", "shopping/db"));
    assert!(!allowed(&rules, "shop", "payments/db"));
    assert!(!allowed(&rules, "shop", &arn(OWN, REGION, "payments/db-AbCdEf")));
    assert!(!allowed(&rules, "shop", "shop"));
    let message = refused(&rules, "shop", &source(&arn(OTHER, REGION, "shop/db")), "AccessNotAllowed");
    assert!(
        message.contains(&format!("in account {OTHER}"))
            && message.contains("accounts of its access rules")
            && message.contains(&format!("{OWN} (the operator's own, by default)")),
        "{message}"
    );
}

#[test]
fn a_reference_is_read_where_it_points_and_in_a_session_only_with_a_role() {
    let rules = AccessRules::default();
    let by_name = check(&rules, "shop", &source("shop/db")).unwrap();
    assert_eq!(by_name, Target { region: Some(REGION.into()), role_arn: None, session: None });
    let regional = SecretSource { region: Some("eu-west-1".into()), ..source("shop/db") };
    assert_eq!(check(&rules, "shop", &regional).unwrap().region.as_deref(), Some("eu-west-1"));
    let by_arn = check(&rules, "shop", &source(&arn(OWN, "eu-west-1", "shop/db"))).unwrap();
    assert_eq!(by_arn.region.as_deref(), Some("eu-west-1"), "the ARN's region");
}

#[test]
fn rules_match_namespace_patterns_and_add_up() {
    let rules = rules(
        r#"
- namespaces: ["payments", "payments-*"]
  secretIdPrefixes: ["shared/payments/"]
- namespaces: ["*"]
  secretIdPrefixes: ["{namespace}/"]
- namespaces: ["platform"]
  secretIdPrefixes: ["*"]
"#,
    );
    assert!(allowed(&rules, "payments-eu", "shared/payments/key"));
    assert!(allowed(&rules, "payments-eu", "payments-eu/db"));
    assert!(allowed(&rules, "payments", "shared/payments/key"));
    assert!(!allowed(&rules, "shop", "shared/payments/key"));
    assert!(allowed(&rules, "platform", "anything/at/all"));
    assert!(allowed(&rules, "platform", &arn(OWN, REGION, "x-AbCdEf")));
    let message = refused(&rules, "payments-eu", &source("other/db"), "AccessNotAllowed");
    assert!(message.contains(r#"secretIdPrefixes of its access rules allow names starting with "shared/payments/", "payments-eu/""#), "{message}");
}

#[test]
fn accounts_and_regions_of_a_rule_bound_what_its_prefixes_allow() {
    let rules = rules(&format!(
        r#"
- namespaces: [shop]
  secretIdPrefixes: [shared/]
  accounts: ["{OTHER}"]
  regions: [eu-*]
- namespaces: [platform]
  secretIdPrefixes: ["*"]
  accounts: ["*"]
"#
    ));
    assert!(allowed(&rules, "shop", &arn(OTHER, "eu-west-1", "shared/key")));
    let home = refused(&rules, "shop", &source(&arn(OWN, "eu-west-1", "shared/key")), "AccessNotAllowed");
    assert!(
        home.contains(&format!("in account {OWN}")) && home.contains(&format!("allow {OTHER}")),
        "{home}"
    );
    let us = refused(&rules, "shop", &source(&arn(OTHER, REGION, "shared/key")), "AccessNotAllowed");
    assert!(
        us.contains("in region us-east-1")
            && us.contains(r#"regions of its access rules for it allow "eu-*""#),
        "{us}"
    );
    assert!(allowed(&rules, "platform", &arn(OTHER, REGION, "x")));
    assert!(allowed(&rules, "platform", "x"), "* takes the operator's own account too");
}

#[test]
fn roles_are_allowed_per_namespace_and_their_sessions_carry_the_namespace_and_external_id() {
    let rules = rules(&format!(
        r#"
- namespaces: [shop, payments]
  secretIdPrefixes: ["{{namespace}}/"]
  accounts: ["{OTHER}"]
  roles: ["arn:aws:iam::{OTHER}:role/{{namespace}}-reader", "arn:aws:iam::{OTHER}:role/shared-*"]
  externalId: "dpo-{{namespace}}"
- namespaces: ["*"]
  secretIdPrefixes: ["{{namespace}}/"]
"#
    ));
    let target = check(&rules, "shop", &with_role("shop/db", &role(OTHER, "shop-reader"))).unwrap();
    assert_eq!(target.role_arn, Some(role(OTHER, "shop-reader")));
    let session = RoleSession { namespace: "shop".into(), external_id: Some("dpo-shop".into()) };
    assert_eq!(target.session, Some(session));
    assert!(check(&rules, "payments", &with_role("payments/db", &role(OTHER, "shared-ro"))).is_ok());

    let message =
        refused(&rules, "shop", &with_role("shop/db", &role(OTHER, "payments-reader")), "AccessNotAllowed");
    assert!(
        message.contains(&format!("may not assume role {}", role(OTHER, "payments-reader")))
            && message.contains(&format!(
                r#"roles of its access rules for AWS secret shop/db allow "{}""#,
                role(OTHER, "shop-reader")
            )),
        "{message}"
    );
    // A name read through a role resolves in the role's account, which only the first rule allows.
    let message =
        refused(&rules, "shop", &with_role("shop/db", &role(OWN, "shop-reader")), "AccessNotAllowed");
    assert!(message.contains("roles of its access rules for AWS secret shop/db allow none"), "{message}");
}

#[test]
fn a_reference_that_cannot_point_anywhere_names_the_field() {
    let rules = AccessRules::default();
    let cases = [
        (source("arn:aws:ssm:us-east-1:123456789012:parameter/shop/db"), "spec.source.secretId"),
        (source(&arn(OWN, REGION, "")), "spec.source.secretId"),
        (source("arn:shop/x"), "spec.source.secretId"),
        (source(&arn("1", REGION, "shop/db")), "spec.source.secretId"),
        (source("arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:shop/db"), "partition aws-cn"),
        (with_role("shop/db", "arn:aws:iam::123456789012:user/shop"), "spec.source.roleArn"),
        (with_role("shop/db", "arn:aws-cn:iam::123456789012:role/shop"), "partition aws-cn"),
        (
            SecretSource { region: Some("eu-west-1".into()), ..source(&arn(OWN, REGION, "shop/db")) },
            "spec.source.region eu-west-1 is not the region of spec.source.secretId (us-east-1)",
        ),
    ];
    for (source, expected) in cases {
        let message = refused(&rules, "shop", &source, "InvalidReference");
        assert!(message.contains(expected), "{source:?}: {message}");
    }
}

#[test]
fn no_rules_allow_nothing() {
    let rules = rules("[]");
    let message = refused(&rules, "shop", &source("shop/db"), "AccessNotAllowed");
    assert!(message.contains("names starting with none"), "{message}");
}

#[test]
fn invalid_rules_are_refused_with_the_rule_and_reason() {
    let cases = [
        ("- namespaces: []\n  secretIdPrefixes: [a/]", "rule 0: `namespaces` is empty"),
        ("- namespaces: [Shop]\n  secretIdPrefixes: [a/]", "\"Shop\" is not a namespace name"),
        ("- namespaces: [shop]\n  secretIdPrefixes: []", "`secretIdPrefixes` is empty"),
        ("- namespaces: [shop]\n  secretIdPrefixes: [\"\"]", "empty secret id prefix"),
        ("- namespaces: [shop]\n  secretIdPrefixes: [\"{ns}/\"]", "the only placeholder"),
        ("- namespaces: [shop]\n  secretIdPrefixes: [\"arn:aws:x\"]", "write the name"),
        ("- namespaces: [shop]\n  prefixes: [a/]", "unknown field `prefixes`"),
        (
            "- namespaces: [shop]\n  secretIdPrefixes: [a/]\n  accounts: [\"12345\"]",
            "not a 12-digit account id",
        ),
        ("- namespaces: [shop]\n  secretIdPrefixes: [a/]\n  regions: [EU]", "\"EU\" is not a region name"),
        ("- namespaces: [shop]\n  secretIdPrefixes: [a/]\n  roles: [reader]", "\"reader\" is not a role ARN"),
        (
            "- namespaces: [shop]\n  secretIdPrefixes: [a/]\n  roles: [\"arn:aws:iam::1:role/{ns}\"]",
            "the only placeholder",
        ),
        ("- namespaces: [shop]\n  secretIdPrefixes: [a/]\n  externalId: xy", "`roles` is empty"),
        (
            "- namespaces: [shop]\n  secretIdPrefixes: [a/]\n  roles: [\"arn:aws:iam::1:role/r\"]\n  externalId: \"a b\"",
            "externalId \"a b\": use 2 or more",
        ),
        ("namespaces: [shop]", "not a YAML list of rules"),
    ];
    for (text, expected) in cases {
        let error = AccessRules::parse("rules.yaml", text).unwrap_err().to_string();
        assert!(error.contains(expected), "{text:?}: {error}");
        assert!(error.contains("rules.yaml"), "{error}");
    }
}
