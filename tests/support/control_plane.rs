//! The test control plane of `tests/tools/control-plane.sh`, started by a benchmark run without
//! `KUBECONFIG` and stopped when it ends; and kube-apiserver's own request counts.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tools/control-plane.sh");

/// A control plane this process started: `down` when dropped.
pub struct ControlPlane {
    dir: PathBuf,
}

impl ControlPlane {
    /// The cluster in `KUBECONFIG` if set (`None`), else a control plane started for this
    /// process with `KUBECONFIG` pointing at it. Call before any other thread starts: it sets
    /// the environment.
    pub fn ensure() -> Option<ControlPlane> {
        if std::env::var_os("KUBECONFIG").is_some() {
            return None;
        }
        let dir = std::env::temp_dir().join(format!("dpo-bench-cp-{}", std::process::id()));
        let status = Command::new(SCRIPT).arg("up").arg(&dir).status().expect("run control-plane.sh");
        let control_plane = ControlPlane { dir };
        assert!(status.success(), "control-plane.sh up failed (it says why above)");
        // SAFETY: no other thread runs yet (the caller's promise), so none reads the environment.
        unsafe { std::env::set_var("KUBECONFIG", control_plane.dir.join("kubeconfig")) };
        Some(control_plane)
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let _ = Command::new(SCRIPT).arg("down").arg(&self.dir).status();
    }
}

/// kube-apiserver's `apiserver_request_total`, summed over codes: (verb, resource) -> requests,
/// where resource is `group/resource[/subresource]` (`/secrets`, `dpo.dev/protectedsecrets/status`).
/// The metric has no label telling clients apart.
pub async fn apiserver_requests(client: &kube::Client) -> BTreeMap<(String, String), u64> {
    let request = http::Request::get("/metrics").body(Vec::new()).expect("a request");
    let text = client.request_text(request).await.expect("kube-apiserver /metrics");
    let mut counts = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("apiserver_request_total{")) {
        let Some((labels, value)) = line["apiserver_request_total{".len()..].rsplit_once("} ") else {
            continue;
        };
        let label = |name: &str| {
            labels
                .split("\",")
                .find_map(|pair| pair.strip_prefix(&format!("{name}=\"")))
                .map(|v| v.trim_end_matches('"').to_string())
                .unwrap_or_default()
        };
        let mut resource = format!("{}/{}", label("group"), label("resource"));
        let subresource = label("subresource");
        if !subresource.is_empty() {
            resource = format!("{resource}/{subresource}");
        }
        let count = value.trim().parse::<f64>().unwrap_or(0.0) as u64;
        *counts.entry((label("verb"), resource)).or_default() += count;
    }
    counts
}

/// What `after` counts beyond `before`, keeping only what grew.
pub fn grown(
    before: &BTreeMap<(String, String), u64>,
    after: &BTreeMap<(String, String), u64>,
) -> BTreeMap<(String, String), u64> {
    after
        .iter()
        .map(|(key, n)| (key.clone(), n - before.get(key).copied().unwrap_or(0).min(*n)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// Whether `verb` changes something.
pub fn is_write(verb: &str) -> bool {
    matches!(verb, "POST" | "PUT" | "PATCH" | "APPLY" | "DELETE" | "DELETECOLLECTION" | "CREATE" | "UPDATE")
}
