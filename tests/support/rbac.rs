//! What a ServiceAccount did and what it may do, as sets of (API group, resource[/subresource],
//! verb): the requests the apiserver's audit log recorded for it, and the rules of the RBAC
//! objects bound to it.

use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule, Role};
use kube::api::{Api, ListParams};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;

/// (API group, resource or `resource/subresource`, verb).
pub type Access = (String, String, String);

/// The audit log the test control plane writes beside its kubeconfig.
fn audit_log() -> PathBuf {
    let kubeconfig = std::env::var("KUBECONFIG").unwrap_or_default();
    let dir = std::path::Path::new(&kubeconfig).parent().map(PathBuf::from).unwrap_or_default();
    dir.join("audit.log")
}

/// Every resource request the apiserver recorded for `username`
/// (`system:serviceaccount:<namespace>:<name>`), whatever its answer.
pub fn audited(username: &str) -> BTreeSet<Access> {
    let path = audit_log();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("no audit log at {} ({e}): run tests/run.sh, whose control plane writes one", path.display())
    });
    let mut used = BTreeSet::new();
    for line in text.lines() {
        let entry: Value = serde_json::from_str(line).expect("an audit log line is JSON");
        if entry["user"]["username"] != username {
            continue;
        }
        let (Some(object), Some(verb)) = (entry.get("objectRef"), entry["verb"].as_str()) else { continue };
        let field = |name: &str| object.get(name).and_then(Value::as_str).unwrap_or_default().to_string();
        let resource = match field("subresource").as_str() {
            "" => field("resource"),
            sub => format!("{}/{sub}", field("resource")),
        };
        used.insert((field("apiGroup"), resource, verb.to_string()));
    }
    used
}

/// What the ClusterRole `cluster_role` and the Roles labelled `app.kubernetes.io/instance=<instance>`
/// grant, one entry per group, resource and verb.
pub async fn granted(client: &kube::Client, cluster_role: &str, instance: &str) -> BTreeSet<Access> {
    let mut rules: Vec<PolicyRule> = Vec::new();
    let role = Api::<ClusterRole>::all(client.clone()).get(cluster_role).await.expect("the ClusterRole");
    rules.extend(role.rules.unwrap_or_default());
    let labelled = ListParams::default().labels(&format!("app.kubernetes.io/instance={instance}"));
    let roles = Api::<Role>::all(client.clone()).list(&labelled).await.expect("the Roles");
    rules.extend(roles.items.into_iter().flat_map(|r| r.rules.unwrap_or_default()));
    let mut access = BTreeSet::new();
    for rule in rules {
        for group in rule.api_groups.iter().flatten() {
            for resource in rule.resources.iter().flatten() {
                for verb in &rule.verbs {
                    access.insert((group.clone(), resource.clone(), verb.clone()));
                }
            }
        }
    }
    access
}
