//! Whose AWS session a read uses: role sessions of one namespace each, tagged with it and with
//! the external id its access rule sets, as STS receives them; and the operator's own identity,
//! asked of STS once.

mod support;

use dpo::aws::{AwsSettings, Identity, RoleSession, SecretsApi, Target};
use support::moto::{self, Seed};
use support::proxy::Proxy;

const ROLE: &str = "arn:aws:iam::123456789012:role/dpo-tenant";

fn session(namespace: &str, external_id: Option<&str>) -> Target {
    let session = RoleSession { namespace: namespace.into(), external_id: external_id.map(String::from) };
    Target { region: None, role_arn: Some(ROLE.into()), session: Some(session) }
}

#[tokio::test]
async fn each_namespace_assumes_the_role_in_a_session_of_its_own_tagged_with_it() {
    let seed = Seed::new().await;
    let name = moto::unique("tenant/db");
    let (_, version) = seed.secret(&name, "v", None).await;
    let proxy = Proxy::start(moto::endpoint()).await;
    let settings = AwsSettings { allowed_roles: vec![ROLE.into()], ..moto::test_settings() };
    let facts = moto::facts_at(proxy.endpoint(), settings).await;

    let shop = session("shop", Some("shop-ext-1"));
    facts.value(&shop, &name, &version).await.expect("read as shop");
    facts.value(&shop, &name, &version).await.expect("again, from the cache");
    let [assumed] = proxy.bodies("AssumeRole").try_into().expect("one AssumeRole");
    for part in [
        "Tags.member.1.Key=kubernetes-namespace",
        "Tags.member.1.Value=shop",
        "TransitiveTagKeys.member.1=kubernetes-namespace",
        "ExternalId=shop-ext-1",
        "RoleSessionName=dpo",
    ] {
        assert!(assumed.split('&').any(|p| p == part), "{part} missing from {assumed}");
    }

    // Another namespace's read is its own: its own session, and nothing served from shop's.
    facts.value(&session("payments", None), &name, &version).await.expect("read as payments");
    let bodies = proxy.bodies("AssumeRole");
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    assert!(bodies[1].contains("Tags.member.1.Value=payments") && !bodies[1].contains("ExternalId"));
    assert_eq!(facts.metrics().count("secretsmanager", "GetSecretValue"), 2);
    assert_eq!(facts.metrics().count("sts", "AssumeRole"), 2);

    // The operator's own session of a role carries no tag.
    facts.value(&Target { session: None, ..shop }, &name, &version).await.expect("read untagged");
    assert!(!proxy.bodies("AssumeRole")[2].contains("Tags"), "{:?}", proxy.bodies("AssumeRole"));
}

#[tokio::test]
async fn the_operators_identity_is_asked_once_or_taken_as_given() {
    let facts = moto::facts(moto::test_settings()).await;
    let moto_account = Identity { partition: "aws".into(), account: "123456789012".into() };
    assert_eq!(facts.identity().await, Ok(moto_account.clone()));
    assert_eq!(facts.identity().await, Ok(moto_account));
    assert_eq!(facts.metrics().count("sts", "GetCallerIdentity"), 1);

    let given = Identity { partition: "aws-cn".into(), account: "111111111111".into() };
    let settings = AwsSettings { identity: Some(given.clone()), ..moto::test_settings() };
    let facts = moto::facts(settings).await;
    assert_eq!(facts.identity().await, Ok(given));
    assert_eq!(facts.metrics().count("sts", "GetCallerIdentity"), 0);
}
