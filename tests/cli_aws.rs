//! `dpo check --aws` judges the rules it otherwise skips, reading facts from moto through the
//! real SDK.

mod support;

use std::process::Command;
use support::moto::{Seed, endpoint, unique};

fn manifests(
    secret_default_key: &str,
    secret_cmk: &str,
    certificate: &str,
    volume: &str,
    cluster: &str,
) -> String {
    format!(
        r#"
apiVersion: dpo.dev/v1alpha1
kind: EncryptedVolumePolicy
metadata: {{name: volumes}}
spec: {{checkAccountDefault: false, clusterSecretsEncryption: {{clusterName: {cluster}}}}}
---
apiVersion: dpo.dev/v1alpha1
kind: TlsIngressPolicy
metadata: {{name: tls}}
spec: {{certificate: {{allowedKeyAlgorithms: [RSA_2048, RSA_3072]}}}}
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {{name: gp3}}
provisioner: ebs.csi.aws.com
parameters: {{encrypted: "true"}}
---
apiVersion: v1
kind: PersistentVolume
metadata: {{name: pv-data}}
spec:
  storageClassName: gp3
  capacity: {{storage: 1Gi}}
  accessModes: [ReadWriteOnce]
  csi: {{driver: ebs.csi.aws.com, volumeHandle: {volume}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  namespace: shop
  annotations:
    alb.ingress.kubernetes.io/listen-ports: '[{{"HTTPS": 443}}]'
    alb.ingress.kubernetes.io/certificate-arn: {certificate}
    alb.ingress.kubernetes.io/ssl-policy: ELBSecurityPolicy-TLS13-1-2-2021-06
spec:
  ingressClassName: alb
  rules: [{{host: shop.example.com}}]
---
apiVersion: dpo.dev/v1alpha1
kind: ProtectedSecret
metadata: {{name: default-key, namespace: shop}}
spec:
  source: {{secretId: {secret_default_key}}}
  dataFrom: {{extract: true}}
---
apiVersion: dpo.dev/v1alpha1
kind: ProtectedSecret
metadata: {{name: cmk, namespace: shop}}
spec:
  source: {{secretId: {secret_cmk}}}
  dataFrom: {{extract: true}}
"#
    )
}

#[tokio::test]
async fn aws_facts_turn_skipped_rules_into_findings() {
    let seed = Seed::new().await;
    let key = seed.key().await;
    let default_key_secret = unique("shop/default-key");
    seed.secret(&default_key_secret, r#"{"password":"x"}"#, None).await;
    let cmk_secret = unique("shop/cmk");
    seed.secret(&cmk_secret, r#"{"password":"x"}"#, Some(&key.arn)).await;
    let expiring = seed
        .certificate(&["shop.example.com"], jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 5))
        .await;
    let volume = seed.volume(false, None).await;
    let cluster = seed.cluster(None).await;

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("stack.yaml");
    std::fs::write(&file, manifests(&default_key_secret, &cmk_secret, &expiring, &volume, &cluster)).unwrap();

    let run = |extra: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_dpo"))
            .args(["check", file.to_str().unwrap(), "-o", "json"])
            .args(extra)
            .env("AWS_ENDPOINT_URL", endpoint())
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env_remove("AWS_PROFILE")
            .output()
            .unwrap();
        let report: serde_json::Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stderr)));
        (output.status.code(), report)
    };
    let findings = |report: &serde_json::Value| -> Vec<(String, String)> {
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (f["rule"].as_str().unwrap().to_string(), f["resource"]["name"].as_str().unwrap().to_string())
            })
            .collect()
    };

    let (offline_code, offline) = run(&[]);
    assert_eq!(offline_code, Some(0), "{offline}");
    assert!(findings(&offline).is_empty(), "{offline}");
    let skipped = offline["summary"]["skipped"].as_array().unwrap();

    let (code, online) = run(&["--aws"]);
    assert_eq!(code, Some(1), "{online}");
    let found = findings(&online);
    for expected in [
        ("encrypted-volumes", "pv-data"),
        ("acm-certificate-expiration-check", "web"),
        // The seeded certificate has an ECDSA P-256 key.
        ("acm-certificate-key-algorithm-approved", "web"),
        ("secretsmanager-using-cmk", "default-key"),
        ("cmk-backing-key-rotation-enabled", "cmk"),
        ("eks-secrets-encrypted", "volumes"),
    ] {
        assert!(
            found.iter().any(|(rule, name)| rule == expected.0 && name == expected.1),
            "{expected:?} not in {found:?}"
        );
    }
    let still_skipped = online["summary"]["skipped"].as_array().unwrap();
    for judged in [
        "encrypted-volumes",
        "acm-certificate-rsa-check",
        "acm-certificate-key-algorithm-approved",
        "eks-secrets-encrypted",
    ] {
        assert!(skipped.iter().any(|s| s["rule"] == judged), "{judged} not skipped offline: {offline}");
        assert!(!still_skipped.iter().any(|s| s["rule"] == judged), "{judged} skipped with --aws: {online}");
    }
}
