//! Call economy of the Secrets Manager facts: single-flight, no re-reads of unchanged versions,
//! batched value reads, ListSecrets for many secrets, answers for another secret than the one
//! asked refused, and the role allowlist.

mod support;

use dpo::aws::{AwsError, KmsApi, SecretsApi, Target, ValueRef};
use futures::StreamExt;
use std::time::Duration;
use support::moto::{self, Seed};
use support::proxy::{Fault, Proxy};

fn here() -> Target {
    Target::default()
}

fn value_ref(secret_id: &str, version_id: &str) -> ValueRef {
    ValueRef { target: here(), secret_id: secret_id.into(), version_id: version_id.into() }
}

#[tokio::test]
async fn a_hundred_concurrent_asks_make_one_call() {
    let seed = Seed::new().await;
    let facts = moto::facts(moto::test_settings()).await;
    let name = moto::unique("concurrent");
    seed.secret(&name, "v", None).await;
    let key = seed.key().await;

    let target = here();
    let asks = (0..100).map(|_| facts.secret(&target, &name));
    let answers = futures::future::join_all(asks).await;
    assert!(answers.iter().all(|a| a.as_ref().is_ok_and(|s| s.name == name)));
    assert_eq!(facts.metrics().count("secretsmanager", "DescribeSecret"), 1);

    let asks = (0..100).map(|_| facts.kms_key(&target, &key.id));
    let answers = futures::future::join_all(asks).await;
    assert!(answers.iter().all(Result::is_ok));
    assert_eq!(facts.metrics().count("kms", "GetKeyRotationStatus"), 0, "asked only when wanted");
    let asks = (0..100).map(|_| facts.kms_key_rotation(&target, &key.id));
    let answers = futures::future::join_all(asks).await;
    assert!(answers.iter().all(Result::is_ok));
    assert_eq!(facts.metrics().count("kms", "DescribeKey"), 1);
    assert_eq!(facts.metrics().count("kms", "GetKeyRotationStatus"), 1);
}

/// One refresh as a controller does it: metadata, then the value of the wanted stage.
async fn refresh(facts: &dpo::aws::AwsFacts, name: &str) -> String {
    let meta = facts.secret(&here(), name).await.unwrap();
    let version = meta.version_for_stage("AWSCURRENT").expect("current version").to_string();
    let values = facts.values(&[value_ref(name, &version)]).await;
    let value = values[&value_ref(name, &version)].as_ref().unwrap();
    value.expose_text().unwrap().to_string()
}

#[tokio::test]
async fn an_unchanged_version_is_never_read_again() {
    let seed = Seed::new().await;
    let mut settings = moto::test_settings();
    settings.cache.secret_metadata_ttl = Duration::ZERO;
    let facts = moto::facts(settings).await;
    let name = moto::unique("refresh");
    seed.secret(&name, "first", None).await;
    let value_reads = |facts: &dpo::aws::AwsFacts| {
        facts.metrics().count("secretsmanager", "GetSecretValue")
            + facts.metrics().count("secretsmanager", "BatchGetSecretValue")
    };

    assert_eq!(refresh(&facts, &name).await, "first");
    assert_eq!(value_reads(&facts), 1);
    assert_eq!(refresh(&facts, &name).await, "first");
    assert_eq!(
        facts.metrics().count("secretsmanager", "DescribeSecret"),
        2,
        "metadata is asked each refresh"
    );
    assert_eq!(value_reads(&facts), 1, "the second refresh read no value");

    seed.put_value(&name, "second").await;
    assert_eq!(refresh(&facts, &name).await, "second");
    assert_eq!(value_reads(&facts), 2, "a new version is read once");
}

#[tokio::test]
async fn a_burst_of_200_value_reads_is_batched() {
    let seed = Seed::new().await;
    let facts = moto::facts(moto::test_settings()).await;
    let prefix = moto::unique("burst");
    let mut wanted = Vec::new();
    for i in 0..200 {
        let name = format!("{prefix}/s{i:03}");
        let (_, version) = seed.secret(&name, &format!("value-{i}"), None).await;
        wanted.push(value_ref(&name, &version));
    }

    let values = facts.values(&wanted).await;
    assert_eq!(values.len(), 200);
    for (i, r) in wanted.iter().enumerate() {
        assert_eq!(values[r].as_ref().unwrap().expose_text(), Some(format!("value-{i}").as_str()));
    }
    let batches = facts.metrics().count("secretsmanager", "BatchGetSecretValue");
    println!("200 values: {batches} BatchGetSecretValue calls");
    assert!(batches <= 10, "{batches} calls");
    assert_eq!(facts.metrics().count("secretsmanager", "GetSecretValue"), 0);

    facts.values(&wanted).await;
    assert_eq!(facts.metrics().count("secretsmanager", "BatchGetSecretValue"), batches, "values are cached");
}

#[tokio::test]
async fn an_older_version_is_read_by_its_id() {
    let seed = Seed::new().await;
    let facts = moto::facts(moto::test_settings()).await;
    let name = moto::unique("older");
    let (_, old) = seed.secret(&name, "old", None).await;
    let new = seed.put_value(&name, "new").await;

    let values = facts.values(&[value_ref(&name, &old), value_ref(&name, &new)]).await;
    assert_eq!(values[&value_ref(&name, &old)].as_ref().unwrap().expose_text(), Some("old"));
    assert_eq!(values[&value_ref(&name, &new)].as_ref().unwrap().expose_text(), Some("new"));
    assert_eq!(facts.metrics().count("secretsmanager", "BatchGetSecretValue"), 1);
    assert_eq!(facts.metrics().count("secretsmanager", "GetSecretValue"), 1, "only the non-current version");

    let missing = moto::unique("gone");
    let values = facts.values(&[value_ref(&missing, "v")]).await;
    assert_eq!(values[&value_ref(&missing, "v")].as_ref().unwrap_err().reason(), "SecretNotFound");
}

#[tokio::test]
async fn many_secrets_cost_a_few_list_calls() {
    let seed = Seed::new().await;
    let facts = moto::facts(moto::test_settings()).await;
    let prefix = moto::unique("team");
    let mut names = Vec::new();
    for i in 0..12 {
        let name = format!("{prefix}/app{i}");
        seed.secret(&name, "v", None).await;
        names.push(name);
    }
    let missing = format!("{prefix}/absent");
    names.push(missing.clone());

    let found = facts.secrets(&here(), &names).await;
    assert_eq!(found.len(), 13);
    assert!(names[..12].iter().all(|n| found[n].as_ref().is_ok_and(|s| &s.name == n)));
    assert_eq!(found[&missing].as_ref().unwrap_err().reason(), "SecretNotFound");
    // 13 names under one path are one ListSecrets page; only the absent one is described.
    assert_eq!(facts.metrics().count("secretsmanager", "ListSecrets"), 1);
    assert_eq!(facts.metrics().count("secretsmanager", "DescribeSecret"), 1);

    facts.secrets(&here(), &names).await;
    assert_eq!(facts.metrics().count("secretsmanager", "ListSecrets"), 1, "all cached, the absent one too");
    assert_eq!(facts.metrics().count("secretsmanager", "DescribeSecret"), 1);

    let listed = facts.list_secrets(&here(), &[format!("{prefix}/")]).await.unwrap();
    assert_eq!(listed.len(), 12);
}

#[tokio::test]
async fn a_path_holding_far_more_secrets_than_wanted_is_given_up_for_the_names() {
    let seed = Seed::new().await;
    let facts = moto::facts(moto::test_settings()).await;
    let prefix = moto::unique("crowded");
    let names: Vec<String> = (0..310).map(|i| format!("{prefix}/s-{i:03}")).collect();
    futures::stream::iter(&names)
        .for_each_concurrent(16, |name| async { drop(seed.secret(name, "v", None).await) })
        .await;
    let wanted = vec![names[7].clone(), names[300].clone(), format!("{prefix}/absent")];

    let found = facts.secrets(&here(), &wanted).await;
    assert!(wanted[..2].iter().all(|n| found[n].as_ref().is_ok_and(|s| &s.name == n)));
    // The path would take 4 pages: it is given up after the 2 its names cost listed one by one,
    // and they are listed by name, in one call.
    assert_eq!(facts.metrics().count("secretsmanager", "ListSecrets"), 3);
    assert_eq!(facts.metrics().count("secretsmanager", "DescribeSecret"), 1, "only the absent one");
}

#[tokio::test]
async fn a_name_or_partial_arn_resolves_to_that_secret_only() {
    let seed = Seed::new().await;
    let facts = moto::facts(moto::test_settings()).await;
    let prefix = moto::unique("exact");
    let (longer_arn, longer_version) = seed.secret(&format!("{prefix}/db-extra"), "not-mine", None).await;
    let absent = format!("{prefix}/db");
    // The partial ARN of the absent secret: the longer one's ARN up to its name.
    let partial = format!("{}{absent}", &longer_arn[..longer_arn.find(":secret:").unwrap() + 8]);
    let others = [format!("{prefix}/a"), format!("{prefix}/b")];
    let names: Vec<String> = [absent.clone(), partial.clone()].into_iter().chain(others).collect();

    // ListSecrets filters by prefix, so the listing holds the longer secret: it answers neither.
    let found = facts.secrets(&here(), &names).await;
    assert!(facts.metrics().count("secretsmanager", "ListSecrets") >= 1);
    for id in [&absent, &partial] {
        assert_eq!(
            found[id].as_ref().map(|s| &s.name),
            Err(&AwsError::NotFound { kind: "secret", id: id.clone() })
        );
    }
    // A batch read answered with the longer secret's value is not the value of the name asked.
    let values = facts.values(&[value_ref(&absent, &longer_version)]).await;
    assert!(values[&value_ref(&absent, &longer_version)].is_err(), "{values:?}");
}

#[tokio::test]
async fn a_describe_or_value_answer_for_a_longer_name_is_not_the_secret_asked_for() {
    let seed = Seed::new().await;
    let prefix = moto::unique("exact-one");
    let longer = format!("{prefix}/db-extra");
    let (longer_arn, longer_version) = seed.secret(&longer, "not-mine", None).await;
    let partial = format!("{}{prefix}/db", &longer_arn[..longer_arn.find(":secret:").unwrap() + 8]);
    let proxy = Proxy::start(moto::endpoint()).await;
    let facts = moto::facts_at(proxy.endpoint(), moto::test_settings()).await;
    // What AWS's prefix lookup of the partial ARN may answer: the longer name's secret.
    let answer = |extra: serde_json::Value| {
        let mut body = serde_json::json!({"ARN": longer_arn, "Name": longer});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        Fault::Respond { content_type: "application/x-amz-json-1.1", body: body.to_string() }
    };
    proxy.inject(
        "DescribeSecret",
        answer(serde_json::json!({"VersionIdsToStages": {&longer_version: ["AWSCURRENT"]}})),
        1,
    );
    proxy.inject(
        "GetSecretValue",
        answer(serde_json::json!({"VersionId": longer_version, "SecretString": "not-mine"})),
        1,
    );

    let described = facts.secret(&here(), &partial).await;
    assert_eq!(described.map(|s| s.name), Err(AwsError::NotFound { kind: "secret", id: partial.clone() }));
    let value = facts.value(&here(), &partial, &longer_version).await;
    assert!(matches!(&value, Err(AwsError::NotFound { id, .. }) if *id == partial), "{value:?}");
    assert_eq!((proxy.seen("DescribeSecret"), proxy.seen("GetSecretValue")), (1, 1), "answered, not retried");
}

#[tokio::test]
async fn roles_are_assumed_once_and_only_when_allowed() {
    let seed = Seed::new().await;
    let mut settings = moto::test_settings();
    settings.allowed_roles = vec!["arn:aws:iam::123456789012:role/dpo-*".into()];
    let facts = moto::facts(settings).await;
    let name = moto::unique("role");
    let (_, version) = seed.secret(&name, "via-role", None).await;

    let denied =
        Target { role_arn: Some("arn:aws:iam::123456789012:role/admin".into()), ..Target::default() };
    let err = facts.secret(&denied, &name).await.unwrap_err();
    assert!(matches!(err, AwsError::RoleNotAllowed { .. }), "{err:?}");
    assert_eq!(err.reason(), "AccessNotAllowed");
    assert_eq!(facts.metrics().count("sts", "AssumeRole"), 0);
    assert_eq!(facts.metrics().count("secretsmanager", "DescribeSecret"), 0);

    let allowed =
        Target { role_arn: Some("arn:aws:iam::123456789012:role/dpo-reader".into()), ..Target::default() };
    let meta = facts.secret(&allowed, &name).await.unwrap();
    assert_eq!(meta.name, name);
    let value = facts.value(&allowed, &name, &version).await.unwrap();
    assert_eq!(value.expose_text(), Some("via-role"));
    let eu = Target { region: Some("eu-west-1".into()), ..allowed.clone() };
    assert!(facts.secret(&eu, &name).await.unwrap_err().is_not_found(), "the secret lives in us-east-1");
    assert_eq!(facts.metrics().count("sts", "AssumeRole"), 1, "credentials are reused until near expiry");
}
