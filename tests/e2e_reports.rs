//! `dpo check --output policyreport` applied with kubectl to the cluster named by `KUBECONFIG`,
//! with the openreports.io CRDs installed: the apiserver takes every report, and what it stores
//! is what `dpo check` reported, remediations quoting YAML of their own included. Run with
//! `tests/run.sh`, which starts a control plane; without a cluster the test fails saying so.

#[path = "support/check.rs"]
mod check;
mod support;

use check::{dpo, json};
use kube::api::{Api, DynamicObject};
use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};
use support::cluster;

const REPORT_CRDS: [&str; 2] = [
    include_str!("fixtures/openreports.io_reports.yaml"),
    include_str!("fixtures/openreports.io_clusterreports.yaml"),
];

/// An unencrypted StorageClass and an ALB Ingress serving HTTP without a redirect, in `namespace`.
fn manifests(namespace: &str) -> String {
    format!(
        "apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: {namespace}-plain
provisioner: ebs.csi.aws.com
parameters:
  encrypted: \"false\"
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop
  namespace: {namespace}
  annotations:
    alb.ingress.kubernetes.io/listen-ports: '[{{\"HTTP\": 80}}]'
spec:
  ingressClassName: alb
  rules:
    - host: shop.example.com
      http:
        paths:
          - path: /
            pathType: Prefix
            backend:
              service:
                name: shop
                port:
                  number: 80
---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  name: alb
spec:
  controller: ingress.k8s.aws/alb
"
    )
}

fn kubectl_apply(yaml: &[u8]) {
    let mut child = Command::new("kubectl")
        .args(["apply", "--server-side", "--field-manager", cluster::FIELD_MANAGER, "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl runs (tests/run.sh installs it)");
    child.stdin.take().unwrap().write_all(yaml).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "kubectl apply: {}", String::from_utf8_lossy(&output.stderr));
}

/// The results of a stored report, as (rule, result, remediation) sorted.
fn results(report: &DynamicObject) -> Vec<(String, String, String)> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let mut results: Vec<_> = report.data["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| (text(&r["rule"]), text(&r["result"]), text(&r["properties"]["remediation"])))
        .collect();
    results.sort();
    results
}

#[tokio::test]
async fn policy_reports_apply_as_written() {
    let client = cluster::client().await;
    cluster::install_vendored_crds(&client, &REPORT_CRDS).await;
    let namespace = cluster::create_namespace(&client, "reports").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("manifests.yaml");
    std::fs::write(&file, manifests(&namespace)).unwrap();
    let path = file.to_str().unwrap();

    let reports = dpo(&["check", path, "--output", "policyreport"], None);
    assert_eq!(reports.status.code(), Some(1), "{}", String::from_utf8_lossy(&reports.stderr));
    kubectl_apply(&reports.stdout);

    let stored = |kind: &str, plural: &str, namespace: Option<&str>| {
        let resource = cluster::api_resource("openreports.io", "v1alpha1", kind, plural);
        match namespace {
            Some(namespace) => Api::<DynamicObject>::namespaced_with(client.clone(), namespace, &resource),
            None => Api::all_with(client.clone(), &resource),
        }
    };
    let namespaced = stored("Report", "reports", Some(&namespace)).get("dpo-check").await.unwrap();
    let cluster_report = stored("ClusterReport", "clusterreports", None).get("dpo-check").await.unwrap();

    // What the JSON report says, as the stored reports must say it.
    let findings = json(&dpo(&["check", path, "--output", "json"], None));
    let remediation_of = |kind: &str| {
        let finding = findings["findings"].as_array().unwrap().iter().find(|f| f["resource"]["kind"] == kind);
        finding.map(|f| {
            (f["rule"].as_str().unwrap().to_string(), f["remediation"].as_str().unwrap().to_string())
        })
    };
    for (report, kind) in [(&namespaced, "Ingress"), (&cluster_report, "StorageClass")] {
        let (rule, remediation) = remediation_of(kind).unwrap_or_else(|| panic!("a finding on the {kind}"));
        let stored = results(report);
        assert!(stored.contains(&(rule.clone(), "fail".into(), remediation.clone())), "{rule}: {stored:?}");
        let fails = stored.iter().filter(|(_, result, _)| result == "fail").count();
        assert_eq!(report.data["summary"]["fail"], fails as u64, "{kind}");
    }
    let quoted = |report: &DynamicObject| results(report).iter().any(|(_, _, fix)| fix.contains(": \""));
    assert!(quoted(&namespaced) && quoted(&cluster_report), "remediations quote YAML of their own");
    cluster::delete_namespace(&client, &namespace).await;
}
