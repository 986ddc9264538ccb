//! Each AWS fact is read correctly from moto through the real SDK.

mod support;

use dpo::aws::{AcmApi, AwsError, Ec2Api, EksApi, FactRequest, KmsApi, SecretsApi, Target};
use dpo::policy::facts::{Fact, KeyManager};
use support::moto::{self, Seed};
use support::proxy::Proxy;

fn here() -> Target {
    Target::default()
}

#[tokio::test]
async fn kms_keys_resolve_aliases_and_report_their_state() {
    let seed = Seed::new().await;
    let facts = moto::facts(moto::test_settings()).await;
    let rotating = seed.key().await;
    seed.enable_rotation(&rotating).await;
    let alias = format!("alias/{}", moto::unique("rotating"));
    seed.alias(&alias, &rotating).await;
    let doomed = seed.key().await;
    seed.schedule_deletion(&doomed).await;
    let disabled = seed.key().await;
    seed.disable(&disabled).await;

    let by_alias = facts.kms_key(&here(), &alias).await.unwrap();
    assert_eq!(by_alias.arn, rotating.arn);
    assert_eq!(by_alias.key_id, rotating.id);
    assert_eq!(by_alias.key_manager, KeyManager::Customer);
    assert!(by_alias.enabled && !by_alias.pending_deletion);
    assert_eq!(facts.kms_key_rotation(&here(), &alias).await, Ok(true));

    let doomed = facts.kms_key(&here(), &doomed.arn).await.unwrap();
    assert!(doomed.pending_deletion && doomed.deletion_date.is_some(), "{doomed:?}");
    let disabled = facts.kms_key(&here(), &disabled.id).await.unwrap();
    assert!(!disabled.enabled, "{disabled:?}");
    assert_eq!(facts.kms_key_rotation(&here(), &disabled.arn).await, Ok(false));

    let missing = facts.kms_key(&here(), "alias/does-not-exist").await.unwrap_err();
    assert!(missing.is_not_found(), "{missing:?}");
    assert_eq!(missing.reason(), "KmsKeyNotFound");
}

#[tokio::test]
async fn secret_metadata_has_key_rotation_and_versions() {
    let seed = Seed::new().await;
    let facts = moto::facts(moto::test_settings()).await;
    let key = seed.key().await;
    let with_cmk = moto::unique("cmk");
    let (arn, first_version) = seed.secret(&with_cmk, r#"{"password":"p1"}"#, Some(&key.arn)).await;
    seed.rotation(&with_cmk, 30).await;
    let with_default = moto::unique("default");
    seed.secret(&with_default, "plain", None).await;

    let cmk = facts.secret(&here(), &with_cmk).await.unwrap();
    assert_eq!(cmk.arn, arn);
    assert_eq!(cmk.name, with_cmk);
    assert_eq!(cmk.kms_key_id.as_deref(), Some(key.arn.as_str()));
    assert!(cmk.rotation_enabled);
    assert_eq!(cmk.rotation_interval_days, Some(30));
    assert!(cmk.next_rotation.is_some() && cmk.last_changed.is_some() && cmk.created.is_some(), "{cmk:?}");
    // RotateSecret adds a version; the first one stays listed with its stages.
    assert!(cmk.version_stages.contains_key(&first_version), "{cmk:?}");
    let current = cmk.version_for_stage("AWSCURRENT").expect("a current version");

    let default = facts.secret(&here(), &with_default).await.unwrap();
    assert_eq!(default.kms_key_id, None, "the default aws/secretsmanager key is reported as absent");
    assert!(!default.rotation_enabled);
    assert_eq!(default.rotation_interval_days, None);

    let by_arn = facts.secret(&here(), &arn).await.unwrap();
    assert_eq!(by_arn.name, with_cmk);
    let missing = facts.secret(&here(), &moto::unique("missing")).await.unwrap_err();
    assert_eq!(missing.reason(), "SecretNotFound");

    let value = facts.value(&here(), &with_cmk, current).await.unwrap();
    assert_eq!(value.version_id(), current);
    assert_eq!(value.expose_text(), Some(r#"{"password":"p1"}"#));
    assert!(!format!("{value:?}").contains("p1"));
}

/// A seed, a facts handle, a domain of the test's own and an expiry 90 days out.
async fn certificate_setup() -> (Seed, dpo::aws::AwsFacts, String, jiff::Timestamp) {
    let domain = format!("{}.example.test", moto::unique("zone"));
    let expiry = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 90);
    (Seed::new().await, moto::facts(moto::test_settings()).await, domain, expiry)
}

#[tokio::test]
async fn certificates_are_described_and_discovered_by_host() {
    let (seed, facts, domain, expiry) = certificate_setup().await;
    let wildcard = format!("*.{domain}");
    let apex = format!("shop.{domain}");
    let arn = seed.certificate(&[&apex, &wildcard], expiry).await;
    let other = seed.certificate(&[&format!("other.{domain}")], expiry).await;

    let cert = facts.certificate(&here(), &arn).await.unwrap();
    assert_eq!(cert.arn, arn);
    assert_eq!(cert.status, "ISSUED");
    assert_eq!(cert.domain_names, vec![apex.clone(), wildcard.clone()]);
    assert!(!cert.in_use);
    let not_after = cert.not_after.expect("not after");
    assert!((not_after - expiry).get_seconds().abs() <= 86_400, "{not_after} vs {expiry}");

    let api = facts.certificates_for_host(&here(), &format!("api.{domain}")).await.unwrap();
    assert_eq!(api.iter().map(|c| c.arn.as_str()).collect::<Vec<_>>(), vec![arn.as_str()]);
    let other_host = facts.certificates_for_host(&here(), &format!("other.{domain}")).await.unwrap();
    let mut arns: Vec<&str> = other_host.iter().map(|c| c.arn.as_str()).collect();
    arns.sort();
    let mut expected = vec![arn.as_str(), other.as_str()];
    expected.sort();
    assert_eq!(arns, expected, "the wildcard and the exact name both cover other.{domain}");
    assert!(facts.certificates_for_host(&here(), &format!("a.b.{domain}")).await.unwrap().is_empty());
    assert!(facts.certificates_for_host(&here(), &domain).await.unwrap().is_empty());
    assert_eq!(facts.metrics().count("acm", "ListCertificates"), 1, "the listing is cached");

    let missing =
        facts.certificate(&here(), &arn.replace(&arn[arn.len() - 6..], "000000")).await.unwrap_err();
    assert!(missing.is_not_found(), "{missing:?}");
}

#[tokio::test]
async fn certificate_key_algorithms_are_read_as_acm_names_them() {
    // moto answers DescribeCertificate's KeyAlgorithm from the certificate's own key.
    let (seed, facts, domain, expiry) = certificate_setup().await;
    let p256 = seed.certificate(&[&format!("p256.{domain}")], expiry).await;
    let p384 =
        seed.certificate_with_key(&[&format!("p384.{domain}")], expiry, &rcgen::PKCS_ECDSA_P384_SHA384).await;
    let rsa = seed.requested_certificate(&format!("rsa.{domain}")).await;

    for (arn, algorithm) in [(&p256, "EC_prime256v1"), (&p384, "EC_secp384r1"), (&rsa, "RSA_2048")] {
        let certificate = facts.certificate(&here(), arn).await.unwrap();
        assert_eq!(certificate.key_algorithm.as_deref(), Some(algorithm), "{certificate:?}");
    }
    // Certificates found by host carry their key too: they come from the same description.
    let found = facts.certificates_for_host(&here(), &format!("p384.{domain}")).await.unwrap();
    assert_eq!(found.iter().map(|c| c.key_algorithm.as_deref()).collect::<Vec<_>>(), [Some("EC_secp384r1")]);
}

#[tokio::test]
async fn volumes_are_read_in_batches_of_200() {
    let seed = Seed::new().await;
    let facts = moto::facts(moto::test_settings()).await;
    let key = seed.key().await;
    let encrypted = seed.volume(true, Some(&key.arn)).await;
    let plain = seed.volume(false, None).await;
    let mut ids = vec![encrypted.clone(), plain.clone(), "vol-0123456789abcdef0".to_string()];
    for _ in 0..198 {
        ids.push(seed.volume(false, None).await);
    }

    let found = facts.volumes(&here(), &ids).await;
    assert_eq!(found.len(), 201);
    let enc = found[&encrypted].as_ref().unwrap();
    assert!(enc.encrypted);
    assert_eq!(enc.kms_key_id.as_deref(), Some(key.arn.as_str()));
    assert!(!found[&plain].as_ref().unwrap().encrypted);
    assert!(matches!(&found["vol-0123456789abcdef0"], Err(AwsError::NotFound { .. })));
    assert_eq!(facts.metrics().count("ec2", "DescribeVolumes"), 2, "201 ids take two calls");

    facts.volumes(&here(), &ids).await;
    assert_eq!(facts.metrics().count("ec2", "DescribeVolumes"), 2, "the second read is cached");
}

/// moto 5.2 does not implement GetEbsDefaultKmsKeyId; the proxy answers it as AWS does.
#[tokio::test]
async fn ebs_encryption_by_default_and_its_key() {
    let seed = Seed::new().await;
    let proxy = Proxy::start(moto::endpoint()).await;
    let mut settings = moto::test_settings();
    settings.cache.ebs_default_ttl = std::time::Duration::ZERO;
    let facts = moto::facts_at(proxy.endpoint(), settings).await;

    seed.ebs_default(true).await;
    proxy.inject("GetEbsDefaultKmsKeyId", moto::ebs_default_key_answer("alias/aws/ebs"), 1);
    let on = facts.ebs_default(&here()).await.unwrap();
    assert!(on.encryption_by_default);
    assert_eq!(on.default_kms_key_id.as_deref(), Some("alias/aws/ebs"));
    assert_eq!(on.region, moto::REGION);

    seed.ebs_default(false).await;
    proxy.inject(
        "GetEbsDefaultKmsKeyId",
        moto::ebs_default_key_answer("arn:aws:kms:us-east-1:123456789012:key/k"),
        1,
    );
    let off = facts.ebs_default(&here()).await.unwrap();
    assert!(!off.encryption_by_default);
    assert_eq!(off.default_kms_key_id.as_deref(), Some("arn:aws:kms:us-east-1:123456789012:key/k"));
}

#[tokio::test]
async fn gather_fills_a_fact_set_and_never_fails() {
    let seed = Seed::new().await;
    let mut settings = moto::test_settings();
    settings.allowed_roles = vec!["arn:aws:iam::123456789012:role/allowed-*".into()];
    let facts = moto::facts(settings).await;
    let key = seed.key().await;
    let alias = format!("alias/{}", moto::unique("gather"));
    seed.alias(&alias, &key).await;
    let secret = moto::unique("gather");
    seed.secret(&secret, "v", Some(&key.id)).await;
    let volume = seed.volume(true, None).await;
    let cert = seed
        .certificate(&["gather.example.test"], jiff::Timestamp::now() + jiff::SignedDuration::from_hours(240))
        .await;

    let wanted = FactRequest {
        kms_keys: [alias.clone(), "alias/missing".to_string()].into(),
        kms_rotations: [alias.clone()].into(),
        certificate_arns: [cert.clone()].into(),
        hosts: ["gather.example.test".to_string()].into(),
        volume_ids: [volume.clone()].into(),
        secret_ids: [secret.clone()].into(),
        ..FactRequest::default()
    };
    let set = facts.gather(&wanted).await;
    let by_alias = set.kms_keys[&alias].known().expect("key by alias");
    assert_eq!(set.kms_keys[&key.arn].known(), Some(by_alias), "an alias is also stored under its ARN");
    assert_eq!(set.kms_keys["alias/missing"], Fact::NotFound);
    assert_eq!(set.kms_rotations[&alias], Fact::Known(false));
    assert_eq!(set.certificates[&cert].known().map(|c| c.status.as_str()), Some("ISSUED"));
    assert!(
        matches!(&set.host_certificates["gather.example.test"], Fact::Known(arns) if arns.contains(&cert))
    );
    assert!(set.volumes[&volume].known().is_some_and(|v| v.encrypted));
    assert_eq!(set.secrets[&secret].known().map(|s| s.name.as_str()), Some(secret.as_str()));
    assert!(set.ebs_default.is_none(), "not asked for");

    let denied = FactRequest {
        target: Target { role_arn: Some("arn:aws:iam::123456789012:role/other".into()), ..Target::default() },
        secret_ids: [secret.clone()].into(),
        kms_keys: [alias.clone()].into(),
        ..FactRequest::default()
    };
    let before = facts.metrics().count("secretsmanager", "DescribeSecret");
    let set = facts.gather(&denied).await;
    assert!(matches!(&set.secrets[&secret], Fact::Failed(cause) if cause.reason == "AccessNotAllowed"));
    assert!(matches!(&set.kms_keys[&alias], Fact::Failed(cause) if cause.reason == "AccessNotAllowed"));
    assert_eq!(facts.metrics().count("secretsmanager", "DescribeSecret"), before);
    assert_eq!(facts.metrics().count("sts", "AssumeRole"), 0);
}

#[tokio::test]
async fn eks_clusters_name_the_kms_key_of_their_secrets() {
    let seed = Seed::new().await;
    let facts = moto::facts(moto::test_settings()).await;
    let key = seed.key().await;
    let encrypted = seed.cluster(Some(&key.arn)).await;
    let plain = seed.cluster(None).await;

    let cluster = facts.eks_cluster(&here(), &encrypted).await.unwrap();
    assert_eq!(cluster.name, encrypted);
    assert!(
        cluster.arn.starts_with("arn:aws:eks:us-east-1:") && cluster.arn.ends_with(&encrypted),
        "{cluster:?}"
    );
    assert_eq!(cluster.secrets_key_arn.as_deref(), Some(key.arn.as_str()));
    assert_eq!(facts.eks_cluster(&here(), &plain).await.unwrap().secrets_key_arn, None);
    let missing = facts.eks_cluster(&here(), &moto::unique("missing")).await.unwrap_err();
    assert!(missing.is_not_found(), "{missing:?}");
    assert_eq!(missing.reason(), "ClusterNotFound");
    assert_eq!(facts.metrics().count("eks", "DescribeCluster"), 3);

    let gone = moto::unique("gone");
    let wanted = FactRequest { clusters: [encrypted.clone(), gone.clone()].into(), ..FactRequest::default() };
    let set = facts.gather(&wanted).await;
    assert_eq!(set.clusters[&encrypted].known().and_then(|c| c.secrets_key_arn.clone()), Some(key.arn));
    assert_eq!(set.clusters[&gone], Fact::NotFound);

    // A refused role makes no call; the fact fails with its cause, for the rule to be skipped.
    let target =
        Target { role_arn: Some("arn:aws:iam::123456789012:role/other".into()), ..Target::default() };
    let denied = FactRequest { target, clusters: [plain.clone()].into(), ..FactRequest::default() };
    let set = facts.gather(&denied).await;
    assert!(matches!(&set.clusters[&plain], Fact::Failed(cause) if cause.reason == "AccessNotAllowed"));
}

/// A regional Web ACL is read with GetWebACL in its own region: one that exists is known with
/// its rules, a deleted one is not found, and an ARN of no regional Web ACL is an error naming it.
#[tokio::test]
async fn web_acls_are_read_in_their_region_and_a_missing_one_is_not_found() {
    let config = moto::sdk_config(moto::endpoint()).await;
    let waf = aws_sdk_wafv2::Client::new(&config);
    let visibility = aws_sdk_wafv2::types::VisibilityConfig::builder()
        .sampled_requests_enabled(false)
        .cloud_watch_metrics_enabled(false)
        .metric_name("shop")
        .build()
        .expect("visibility");
    let allow = aws_sdk_wafv2::types::DefaultAction::builder()
        .allow(aws_sdk_wafv2::types::AllowAction::builder().build())
        .build();
    let created = waf
        .create_web_acl()
        .name(moto::unique("shop"))
        .scope(aws_sdk_wafv2::types::Scope::Regional)
        .default_action(allow)
        .visibility_config(visibility)
        .send()
        .await
        .expect("CreateWebACL");
    let acl = created.summary.and_then(|s| s.arn).expect("the Web ACL's ARN");
    let missing = format!("{}/00000000-0000-0000-0000-000000000000", acl.rsplit_once('/').unwrap().0);
    let global = "arn:aws:wafv2:us-east-1:123456789012:global/webacl/shop/a1b2".to_string();

    let facts = moto::facts(moto::test_settings()).await;
    let wanted = FactRequest {
        web_acl_arns: [acl.clone(), missing.clone(), global.clone()].into(),
        ..FactRequest::default()
    };
    let set = facts.gather(&wanted).await;
    assert!(
        matches!(&set.web_acls[&acl], Fact::Known(found) if found.arn == acl && found.rules == 0),
        "{:?}",
        set.web_acls
    );
    assert!(matches!(set.web_acls[&missing], Fact::NotFound), "{:?}", set.web_acls[&missing]);
    assert!(
        matches!(&set.web_acls[&global], Fact::Failed(cause) if cause.message.contains("not a regional WAFv2 Web ACL ARN")),
        "{:?}",
        set.web_acls[&global]
    );
    assert_eq!(facts.metrics().count("wafv2", "GetWebACL"), 2, "the malformed ARN is refused without a call");
}
