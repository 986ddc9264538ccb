//! `dpo check` over a repository of many examples and environments: every document judged and
//! reported where it stands, references resolved only within their reach, and a report a script
//! can use.

#[path = "support/check.rs"]
mod check;

use check::{dpo, json, stderr};
use serde_json::Value;
use std::path::Path;

/// A directory tree of `(path, content)` files.
fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    dir
}

fn check(dir: &Path, extra: &[&str]) -> (Value, String) {
    let root = dir.to_str().unwrap();
    let output = dpo(&[&["check", root, "-o", "json", "--fail-on", "critical"], extra].concat(), None);
    assert!(output.status.code().is_some_and(|code| code < 2), "{}", stderr(&output));
    (json(&output), stderr(&output))
}

/// `(file below the root, documentIndex, rule)` of every finding.
fn placed(report: &Value, root: &Path) -> Vec<(String, u64, String)> {
    let prefix = format!("{}/", root.display());
    let mut found: Vec<_> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let file = f["file"].as_str().unwrap();
            let below = file.strip_prefix(&prefix).unwrap_or(file).to_string();
            (below, f["documentIndex"].as_u64().unwrap(), f["rule"].as_str().unwrap().to_string())
        })
        .collect();
    found.sort();
    found
}

fn storage_class(name: &str, encrypted: bool) -> String {
    let parameters = if encrypted { "  encrypted: \"true\"\n" } else { "  type: gp3\n" };
    format!(
        "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: {name}\nprovisioner: ebs.csi.aws.com\nparameters:\n{parameters}"
    )
}

/// An ALB Ingress of class `alb`; `https` gives it a certificate, HTTPS only and a modern policy.
fn ingress(name: &str, https: bool) -> String {
    let annotations = if https {
        "    alb.ingress.kubernetes.io/listen-ports: '[{\"HTTPS\": 443}]'\n    alb.ingress.kubernetes.io/certificate-arn: arn:aws:acm:us-east-1:123456789012:certificate/0b8a\n    alb.ingress.kubernetes.io/ssl-policy: ELBSecurityPolicy-TLS13-1-2-2021-06\n"
    } else {
        "    alb.ingress.kubernetes.io/scheme: internet-facing\n"
    };
    format!(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: {name}\n  namespace: shop\n  annotations:\n{annotations}spec:\n  ingressClassName: alb\n  defaultBackend:\n    service: {{name: web, port: {{number: 80}}}}\n"
    )
}

#[test]
fn every_document_is_judged_at_its_own_file_even_when_another_has_its_name() {
    let dir = tree(&[
        ("a/storageclass.yaml", &storage_class("ebs-sc", false)),
        ("b/storageclass.yaml", &storage_class("ebs-sc", false)),
        ("c/storageclass.yaml", &storage_class("ebs-sc", true)),
        // One file, two documents of one name.
        ("d/both.yaml", &format!("{}---\n{}", storage_class("ebs-sc", true), storage_class("ebs-sc", false))),
    ]);
    let (report, log) = check(dir.path(), &[]);
    assert_eq!(
        placed(&report, dir.path()),
        [
            ("a/storageclass.yaml".into(), 0, "storageclass-encrypted".into()),
            ("b/storageclass.yaml".into(), 0, "storageclass-encrypted".into()),
            ("d/both.yaml".into(), 1, "storageclass-encrypted".into()),
        ]
    );
    assert_eq!(report["summary"]["resources"], 5, "{report}");
    let warning = &report["warnings"][0];
    assert_eq!(warning["locations"].as_array().unwrap().len(), 5, "{warning}");
    assert!(log.contains("StorageClass/ebs-sc is written in 5 documents"), "{log}");
    assert!(log.contains("b/storageclass.yaml:1"), "{log}");
}

#[test]
fn a_compliant_ingress_takes_no_blame_for_another_of_its_name() {
    let dir = tree(&[("prod/web.yaml", &ingress("web", true)), ("staging/web.yaml", &ingress("web", false))]);
    let (report, _) = check(dir.path(), &[]);
    let files: Vec<String> = placed(&report, dir.path()).into_iter().map(|(file, ..)| file).collect();
    assert!(!files.is_empty() && files.iter().all(|file| file == "staging/web.yaml"), "{files:?}");
}

#[test]
fn a_class_of_one_directory_does_not_change_how_a_sibling_directory_is_judged() {
    // `other/` names its own class `alb` for another controller; `shop/` means the ALB's.
    let nginx_alb = "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata:\n  name: alb\nspec:\n  controller: k8s.io/ingress-nginx\n";
    let dir = tree(&[("other/class.yaml", nginx_alb), ("shop/web.yaml", &ingress("web", false))]);
    let (by_directory, _) = check(dir.path(), &[]);
    assert!(
        placed(&by_directory, dir.path()).iter().any(|(file, ..)| file == "shop/web.yaml"),
        "{by_directory}"
    );
    // Resolved as one cluster, the Ingress belongs to the other controller.
    let (as_one, _) = check(dir.path(), &["--context", "input"]);
    assert_eq!(placed(&as_one, dir.path()), []);
    // A class in a parent directory is shared by everything below it.
    let shared = tree(&[("class.yaml", nginx_alb), ("shop/web.yaml", &ingress("web", false))]);
    assert_eq!(placed(&check(shared.path(), &[]).0, shared.path()), []);
}

#[test]
fn json_findings_carry_file_line_and_document_index() {
    let text = format!("# storage\n{}---\n{}", storage_class("fine", true), storage_class("plain", false));
    let dir = tree(&[("classes.yaml", &text)]);
    let (report, _) = check(dir.path(), &[]);
    let finding = &report["findings"][0];
    assert_eq!(finding["file"], format!("{}/classes.yaml", dir.path().display()));
    assert_eq!(finding["line"], 10);
    assert_eq!(finding["documentIndex"], 1);
    assert_eq!(finding["resource"]["name"], "plain");
}

#[test]
fn objects_of_removed_api_versions_are_reported_as_not_judged() {
    let old = "apiVersion: extensions/v1beta1\nkind: Ingress\nmetadata:\n  name: legacy\n  namespace: shop\nspec:\n  backend: {serviceName: web, servicePort: 80}\n";
    let dir = tree(&[("legacy.yaml", old)]);
    let (report, _) = check(dir.path(), &[]);
    let not_judged = &report["notJudged"][0];
    assert_eq!(not_judged["resource"]["name"], "legacy");
    assert_eq!(not_judged["documentIndex"], 0);
    assert!(not_judged["reason"].as_str().unwrap().contains("removed in Kubernetes 1.22"), "{not_judged}");
    assert_eq!(report["summary"]["notJudged"], 1);

    let text = dpo(&["check", dir.path().to_str().unwrap()], None);
    let out = String::from_utf8_lossy(&text.stdout);
    assert!(out.contains("Not judged:\n"), "{out}");
    assert!(
        out.contains("legacy.yaml:1: Ingress/shop/legacy: extensions/v1beta1 Ingress was removed"),
        "{out}"
    );
}

#[test]
fn the_account_default_is_judged_only_for_a_run_with_a_storage_class() {
    let dir = tree(&[("web.yaml", &ingress("web", true))]);
    let (report, _) = check(dir.path(), &[]);
    assert_eq!(report["summary"]["resources"], 1, "{report}");
    let skipped: Vec<&str> = report["summary"]["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["rule"].as_str().unwrap())
        .collect();
    assert!(!skipped.contains(&"ec2-ebs-encryption-by-default"), "{skipped:?}");

    let with_class = tree(&[("web.yaml", &ingress("web", true)), ("sc.yaml", &storage_class("gp3", true))]);
    let (report, _) = check(with_class.path(), &[]);
    assert_eq!(report["summary"]["resources"], 2, "{report}");
    assert!(report["summary"]["skipped"].to_string().contains("ec2-ebs-encryption-by-default"), "{report}");
}

#[test]
fn a_helm_template_gets_a_hint_to_render_it_first() {
    let template = "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ .Release.Name }}\n";
    let dir = tree(&[("templates/service.yaml", template)]);
    let output = dpo(&["check", dir.path().to_str().unwrap()], None);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("render it first: `helm template CHART | dpo check -`"),
        "{}",
        stderr(&output)
    );

    let quoted = "apiVersion: v1\nkind: Service\nmetadata:\n  name: \"{{ .Release.Name }}\"\n";
    let dir = tree(&[("templates/service.yaml", quoted)]);
    let (report, log) = check(dir.path(), &[]);
    assert!(log.contains("looks like a template"), "{log}");
    assert!(report["warnings"][0]["message"].as_str().unwrap().contains("helm template"), "{report}");
}
