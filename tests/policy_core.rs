//! The policy core against what the real components do: the CRD schemas the apiserver enforces
//! for policy selectors.

use serde_json::Value;

/// The schema under `path` (property names) of a kind's `spec`.
fn spec_schema<'a>(crds: &'a [Value], kind: &str, path: &[&str]) -> &'a Value {
    let crd = crds.iter().find(|crd| crd["spec"]["names"]["kind"] == kind).expect("kind");
    let mut schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    for name in path {
        schema = &schema["properties"][name];
    }
    schema
}

#[test]
fn selector_operators_outside_the_four_kubernetes_knows_are_refused_by_the_schema() {
    let crds: Vec<Value> = dpo::api::crds().iter().map(|crd| serde_json::to_value(crd).unwrap()).collect();
    for (kind, selector) in [
        ("EncryptedVolumePolicy", "storageClassSelector"),
        ("TlsIngressPolicy", "ingressSelector"),
        ("TlsIngressPolicy", "namespaceSelector"),
    ] {
        let requirement = &spec_schema(&crds, kind, &[selector, "matchExpressions"])["items"];
        assert_eq!(
            requirement["properties"]["operator"]["enum"],
            serde_json::json!(["In", "NotIn", "Exists", "DoesNotExist"]),
            "{kind}.spec.{selector}: {requirement}"
        );
        assert_eq!(requirement["required"], serde_json::json!(["key", "operator"]), "{kind}.spec.{selector}");
    }
}

mod support;

/// SDK clients for moto in `region`.
async fn config_in(region: &'static str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region))
        .endpoint_url(support::moto::endpoint())
        .credentials_provider(aws_credential_types::Credentials::new(
            "testing", "testing", None, None, "tests",
        ))
        .load()
        .await
}

#[tokio::test]
async fn dpo_check_aws_reads_a_secrets_keys_in_the_secrets_own_region() {
    // The secret, its key and the allowlist's alias live in eu-west-1; dpo check runs in us-east-1.
    let config = config_in("eu-west-1").await;
    let kms = aws_sdk_kms::Client::new(&config);
    let key = kms.create_key().send().await.expect("CreateKey").key_metadata.expect("key metadata");
    kms.enable_key_rotation().key_id(&key.key_id).send().await.expect("EnableKeyRotation");
    let alias = support::moto::unique("alias/shop");
    kms.create_alias().alias_name(&alias).target_key_id(&key.key_id).send().await.expect("CreateAlias");
    let name = support::moto::unique("shop/db");
    aws_sdk_secretsmanager::Client::new(&config)
        .create_secret()
        .name(&name)
        .secret_string(r#"{"password":"x"}"#)
        .kms_key_id(key.arn.as_deref().expect("key arn"))
        .send()
        .await
        .expect("CreateSecret");

    let manifest = format!(
        "apiVersion: dpo.dev/v1alpha1\nkind: ProtectedSecret\nmetadata: {{name: db, namespace: shop}}\nspec:\n  \
         source: {{secretId: {name}, region: eu-west-1}}\n  dataFrom: {{extract: true}}\n  policy: {{allowedKmsKeys: [{alias}]}}\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret.yaml");
    std::fs::write(&file, manifest).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_dpo"))
        .args(["check", file.to_str().unwrap(), "-o", "json", "--aws"])
        .env("AWS_ENDPOINT_URL", support::moto::endpoint())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stderr)));
    assert_eq!(report["findings"], serde_json::json!([]), "{report}");
    // The allowlist's alias is resolved in eu-west-1 too, so the approval is judged, not skipped.
    let skipped = report["summary"]["skipped"].as_array().unwrap();
    assert!(!skipped.iter().any(|s| s["rule"] == "kms-key-approved"), "{report}");
    assert_eq!(output.status.code(), Some(0), "{report}");
}
