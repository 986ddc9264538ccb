//! `deploy/iam-policy.json` grants exactly the AWS actions the code calls.
//!
//! Every SDK call in `src/aws/` is sent through the requester as
//! `.send(OPERATION, id, || client.<operation>()....send())`, with `OPERATION` declared as
//! `Operation::new("<service>:<Action>", ...)`. The scan below reads those call sites, checks
//! that each SDK operation agrees with the IAM action it is declared as, and collects the set.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Actions AWS checks on the caller for a call the code makes, not called themselves:
/// GetSecretValue / BatchGetSecretValue of a secret under a customer-managed key need
/// kms:Decrypt, which the policy grants only through Secrets Manager (kms:ViaService); an
/// AssumeRole with session tags (the namespace) needs sts:TagSession.
const IMPLIED: &[&str] = &["kms:Decrypt", "sts:TagSession"];

/// Actions the code calls that no policy can grant or deny: every principal may ask who it is.
const UNGATED: &[&str] = &["sts:GetCallerIdentity"];

fn source_without_whitespace() -> Vec<(String, String)> {
    let mut files = Vec::new();
    let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src/aws")];
    while let Some(dir) = dirs.pop() {
        for path in std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()) {
            if path.is_dir() { dirs.push(path) } else { files.push(path) }
        }
    }
    files.sort();
    files
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let code: String = text.chars().filter(|c| !c.is_whitespace()).collect();
            (p.file_name().unwrap().to_string_lossy().into_owned(), code)
        })
        .collect()
}

fn pascal(snake: &str) -> String {
    snake.split('_').map(|w| w[..1].to_uppercase() + &w[1..]).collect()
}

/// IAM actions of the operations the code sends, checked against the SDK call each sends.
fn called_actions() -> BTreeSet<String> {
    let mut called = BTreeSet::new();
    for (file, code) in source_without_whitespace() {
        let declared: BTreeMap<&str, &str> = code
            .match_indices(":Operation=Operation::new(\"")
            .map(|(at, marker)| {
                let name = &code[code[..at].rfind("const").unwrap() + 5..at];
                let rest = &code[at + marker.len()..];
                (name, &rest[..rest.find('"').unwrap()])
            })
            .collect();
        let requester_sends: Vec<usize> = code
            .match_indices(".send(")
            .filter(|(at, m)| code[at + m.len()..].starts_with(|c: char| c.is_ascii_uppercase()))
            .map(|(at, m)| at + m.len())
            .collect();
        assert_eq!(
            requester_sends.len(),
            code.matches(".send()").count(),
            "{file}: an SDK call is sent outside the requester, so its IAM action is not declared"
        );
        for start in requester_sends {
            let rest = &code[start..];
            let name = &rest[..rest.find(',').unwrap()];
            let action = declared.get(name).unwrap_or_else(|| panic!("{file}: {name} is not an Operation"));
            let closure = &rest[rest.find("||").unwrap() + 2..];
            let call = closure.trim_start_matches('{');
            let operation = &call[..call.find("()").unwrap()];
            let operation = operation.rsplit('.').next().unwrap();
            // IAM spells acronyms in capitals (`GetWebACL`), the SDK's method names do not.
            assert!(
                action.split_once(':').unwrap().1.eq_ignore_ascii_case(&pascal(operation)),
                "{file}: {name} is declared as {action} but sends {operation}"
            );
            called.insert(action.to_string());
        }
    }
    called
}

fn policy() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/iam-policy.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn actions(statement: &Value) -> Vec<String> {
    match &statement["Action"] {
        Value::String(action) => vec![action.clone()],
        Value::Array(list) => list.iter().map(|a| a.as_str().unwrap().to_string()).collect(),
        other => panic!("Action {other}"),
    }
}

#[test]
fn the_scan_finds_every_service_the_code_calls() {
    let called = called_actions();
    for expected in [
        "secretsmanager:BatchGetSecretValue",
        "kms:DescribeKey",
        "acm:ListCertificates",
        "ec2:DescribeVolumes",
        "eks:DescribeCluster",
        "sts:AssumeRole",
        "sts:GetCallerIdentity",
    ] {
        assert!(called.contains(expected), "{expected} not found in {called:?}");
    }
}

#[test]
fn the_iam_policy_grants_what_the_code_calls_and_nothing_more() {
    let policy = policy();
    let statements = policy["Statement"].as_array().unwrap();
    assert!(statements.iter().all(|s| s["Effect"] == "Allow"));
    let granted: BTreeSet<String> = statements.iter().flat_map(actions).collect();
    assert!(granted.iter().all(|a| !a.contains('*')), "wildcard actions: {granted:?}");
    let expected: BTreeSet<String> = called_actions()
        .into_iter()
        .filter(|action| !UNGATED.contains(&action.as_str()))
        .chain(IMPLIED.iter().map(|a| a.to_string()))
        .collect();
    assert_eq!(granted, expected);
}

#[test]
fn decrypt_is_granted_only_through_secrets_manager_and_roles_are_narrowed() {
    let policy = policy();
    let statements = policy["Statement"].as_array().unwrap();
    let with = |action: &str| statements.iter().find(|s| actions(s).iter().any(|a| a == action)).unwrap();
    let decrypt = with("kms:Decrypt");
    assert_eq!(actions(decrypt), ["kms:Decrypt"]);
    assert_eq!(decrypt["Condition"]["StringLike"]["kms:ViaService"], "secretsmanager.*.amazonaws.com");
    let assume = with("sts:AssumeRole");
    assert_ne!(assume["Resource"], "*", "AssumeRole must name the allowed roles");
    assert_eq!(
        with("sts:TagSession")["Resource"],
        assume["Resource"],
        "tags only on the sessions it may assume"
    );
    // Actions that support resource-level permissions are not granted on "*".
    for action in [
        "secretsmanager:GetSecretValue",
        "secretsmanager:DescribeSecret",
        "kms:DescribeKey",
        "acm:DescribeCertificate",
        "eks:DescribeCluster",
    ] {
        assert_ne!(with(action)["Resource"], "*", "{action}");
    }
}
