//! The Kubernetes Secret a ProtectedSecret writes: ownership checks per creation policy,
//! server-side apply only when something differs, drift detection with a per-process HMAC,
//! release on deletion, and rollout restarts of consumers.

use crate::api::{CreationPolicy, DeletionPolicy, ProtectedSecret, RolloutTarget, WorkloadKind};
use crate::controller::FIELD_MANAGER;
use crate::controller::lock;
use hmac::{Hmac, KeyInit, Mac};
use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, ObjectMeta};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde_json::json;
use sha2::Sha256;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// Label on every Secret we write; the controller watches Secrets carrying it.
pub const MANAGED_BY_LABEL: &str = "dpo.dev/managed-by";
pub const MANAGED_BY: &str = "dpo";
/// Name of the ProtectedSecret (same namespace) that writes the Secret.
pub const OWNER_ANNOTATION: &str = "dpo.dev/protected-secret";
/// HMAC-SHA256 of the keys we wrote, keyed per process: tells a hand edit from our own write
/// without storing anything from which the value could be guessed.
pub const HASH_ANNOTATION: &str = "dpo.dev/content-hmac";
/// Pod-template annotation that restarts a workload.
pub const RESTARTED_AT_ANNOTATION: &str = "dpo.dev/restartedAt";
/// Finalizer, held only where deletion needs work the garbage collector does not do.
pub const FINALIZER: &str = "dpo.dev/protected-secret";
/// On a Secret: the ProtectedSecrets of its namespace that may merge keys into it
/// (`name[,name...]`, or `*` for any). Without it, `creationPolicy: Merge` writes nothing.
pub const ALLOW_MERGE_ANNOTATION: &str = "dpo.dev/allow-merge-from";

/// The server-side-apply field manager of one ProtectedSecret: its own, so that several merging
/// into one Secret keep each other's keys, and applying nothing on release removes only its own.
fn field_manager(ps: &ProtectedSecret) -> String {
    format!("{FIELD_MANAGER}/{}", ps.uid().unwrap_or_default())
}

/// The names in a Secret's [`ALLOW_MERGE_ANNOTATION`].
pub fn merge_allowed_from(secret: &impl Resource) -> impl Iterator<Item = &str> {
    let listed = secret.annotations().get(ALLOW_MERGE_ANNOTATION);
    listed.into_iter().flat_map(|names| names.split(',')).map(str::trim).filter(|name| !name.is_empty())
}

/// The per-process HMAC key.
pub struct ContentKey([u8; 32]);

impl ContentKey {
    pub fn random() -> Self {
        let mut key = [0u8; 32];
        // Without OS randomness the process cannot keep secrets safe at all.
        getrandom::fill(&mut key).expect("the operating system provides randomness");
        ContentKey(key)
    }

    /// HMAC of `data`, hex. Length-prefixed so that no two maps hash alike.
    pub fn digest<'a>(&self, data: impl IntoIterator<Item = (&'a String, &'a ByteString)>) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).expect("HMAC takes any key length");
        for (key, value) in data {
            mac.update(&(key.len() as u64).to_be_bytes());
            mac.update(key.as_bytes());
            mac.update(&(value.0.len() as u64).to_be_bytes());
            mac.update(&value.0);
        }
        mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Why the Secret was not written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub reason: &'static str,
    pub message: String,
}

/// What a write did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    /// The Secret already held exactly this: no request was made.
    Unchanged,
    Created,
    Updated,
    /// Someone else changed our keys (or deleted the Secret); they were put back.
    Repaired,
}

/// The resourceVersion of each Secret as our last write left it: the watch event of that write
/// is our own echo, and reconciling for it would only read the Secret again.
#[derive(Default)]
pub struct Echoes(Mutex<HashMap<(String, String), String>>);

impl Echoes {
    fn expect(&self, namespace: &str, secret: &Secret) {
        if let Some(version) = secret.resource_version() {
            lock(&self.0).insert((namespace.to_string(), secret.name_any()), version);
        }
    }

    /// Whether `secret` is what our last write of it left, seen once.
    pub fn is_echo(&self, secret: &impl Resource) -> bool {
        let key = (secret.namespace().unwrap_or_default(), secret.name_any());
        let mut expected = lock(&self.0);
        let echo =
            expected.get(&key).is_some_and(|version| secret.resource_version().as_ref() == Some(version));
        if echo {
            expected.remove(&key);
        }
        echo
    }

    /// Forgets the write of the Secret a deleted ProtectedSecret wrote.
    pub fn forget(&self, ps: &ProtectedSecret) {
        lock(&self.0).remove(&(ps.namespace().unwrap_or_default(), target_name(ps)));
    }
}

pub fn target_name(ps: &ProtectedSecret) -> String {
    ps.spec.target.name.clone().unwrap_or_else(|| ps.name_any())
}

/// Whether `secret` was written by `ps` under its creation policy. A Secret retained by an
/// earlier ProtectedSecret of the same name (deleted with `Retain`, then created again by a
/// restore or a GitOps replace) is taken back; one that still has a controller is not.
fn is_ours(secret: &Secret, ps: &ProtectedSecret) -> bool {
    let written_under_our_name = || {
        secret.labels().get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGED_BY)
            && secret.annotations().get(OWNER_ANNOTATION) == Some(&ps.name_any())
    };
    match ps.spec.target.creation_policy {
        CreationPolicy::Owner => {
            let uid = ps.uid();
            let owners = secret.owner_references();
            owners.iter().any(|o| Some(&o.uid) == uid.as_ref())
                || (written_under_our_name() && !owners.iter().any(|o| o.controller == Some(true)))
        }
        CreationPolicy::Orphan => written_under_our_name(),
        CreationPolicy::Merge => true,
    }
}

/// Annotations only the operator writes, for its own bookkeeping: never a tenant's.
const BOOKKEEPING: [&str; 2] = [OWNER_ANNOTATION, HASH_ANNOTATION];

/// Field managers of earlier writers that `ps`, applying `want`, releases: until they are, keys
/// only they applied would stay in the Secret for good. A Secret `ps` alone writes (Owner,
/// Orphan) drops a previous ProtectedSecret of the same name and the single manager of older
/// operator versions. A merged-into Secret has other writers, whose managers are never stale;
/// the older versions' single manager there held the keys of whichever object wrote last, so it
/// is released only when all it applied is `want`'s or bookkeeping: then nothing another object
/// needs goes with it.
fn stale_managers(secret: &Secret, ps: &ProtectedSecret, want: &Secret) -> Vec<String> {
    if ps.spec.target.creation_policy == CreationPolicy::Merge {
        let legacy = applied_entries(secret, FIELD_MANAGER).next().is_some()
            && applied_only(secret, want, FIELD_MANAGER, &BOOKKEEPING)
            && !applied_elsewhere(secret, FIELD_MANAGER);
        return if legacy { vec![FIELD_MANAGER.to_string()] } else { Vec::new() };
    }
    let ours = field_manager(ps);
    let prefix = format!("{FIELD_MANAGER}/");
    let mut stale: Vec<String> = secret
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|e| e.operation.as_deref() == Some("Apply"))
        .filter_map(|e| e.manager.clone())
        .filter(|m| *m != ours && (m == FIELD_MANAGER || m.starts_with(&prefix)))
        .collect();
    stale.dedup();
    stale
}

/// An apply that holds nothing: as `manager`, it gives up every field only `manager` owns.
async fn release_fields(api: &Api<Secret>, name: &str, manager: &str) -> Result<Secret, kube::Error> {
    let namespace = api.namespace().unwrap_or_default();
    let nothing =
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace}});
    api.patch(name, &PatchParams::apply(manager).force(), &Patch::Apply(&nothing)).await
}

/// The Secret as we apply it: only the fields we own.
fn desired(ps: &ProtectedSecret, data: BTreeMap<String, ByteString>, key: &ContentKey) -> Secret {
    let target = &ps.spec.target;
    let mut labels = target.labels.clone();
    labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
    let mut annotations = target.annotations.clone();
    // A merged-into Secret has several writers: one owner or digest annotation would flip
    // between them with every write.
    if target.creation_policy != CreationPolicy::Merge {
        annotations.insert(OWNER_ANNOTATION.into(), ps.name_any());
        annotations.insert(HASH_ANNOTATION.into(), key.digest(&data));
    }
    let owner = (target.creation_policy == CreationPolicy::Owner).then(|| ps.controller_owner_ref(&()));
    Secret {
        metadata: ObjectMeta {
            name: Some(target_name(ps)),
            namespace: ps.namespace(),
            labels: Some(labels),
            annotations: Some(annotations),
            owner_references: owner.flatten().map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        // Merge never changes the type of someone else's Secret.
        type_: (target.creation_policy != CreationPolicy::Merge)
            .then(|| target.type_.clone().unwrap_or_else(|| "Opaque".into())),
        data: Some(data),
        ..Secret::default()
    }
}

/// Whether `actual` already holds everything in `want` (the HMAC annotation aside: its key
/// changes with every process, and rewriting it alone would be a write with no effect) and
/// nothing more that `manager` applied: a key dropped from the spec or from the AWS value is
/// removed by the next apply.
fn holds(actual: &Secret, want: &Secret, manager: &str) -> bool {
    applied_only(actual, want, manager, &[]) && contains_all(actual, want)
}

/// The maps whose keys a Secret's writer applies, as managed fields name them.
const KEYED: [&[&str]; 3] = [&["f:data"], &["f:metadata", "f:labels"], &["f:metadata", "f:annotations"]];

/// Whether every data key, label and annotation `manager` applied to `actual` is in `want`, or
/// is one of the annotations `spare`.
fn applied_only(actual: &Secret, want: &Secret, manager: &str, spare: &[&str]) -> bool {
    let wanted = |path: &[&str], key: &str| match path {
        ["f:data"] => want.data.as_ref().is_some_and(|d| d.contains_key(key)),
        [_, "f:labels"] => want.metadata.labels.as_ref().is_some_and(|l| l.contains_key(key)),
        _ => spare.contains(&key) || want.metadata.annotations.as_ref().is_some_and(|a| a.contains_key(key)),
    };
    KEYED.iter().all(|path| applied_keys(actual, manager, path).all(|key| wanted(path, key)))
}

/// Whether `manager` applied a field of `secret` outside its data, labels and annotations (its
/// type, owner references): a release would take those away too.
fn applied_elsewhere(secret: &Secret, manager: &str) -> bool {
    let outside = |fields: &serde_json::Value, allowed: &[&str]| {
        fields.as_object().is_some_and(|f| f.keys().any(|k| k != "." && !allowed.contains(&k.as_str())))
    };
    applied_entries(secret, manager).filter_map(|e| e.fields_v1.as_ref()).any(|fields| {
        outside(&fields.0, &["f:data", "f:metadata"])
            || fields.0.get("f:metadata").is_some_and(|meta| outside(meta, &["f:labels", "f:annotations"]))
    })
}

/// The managed-fields entries of what `manager` applied to `secret`.
fn applied_entries<'a>(secret: &'a Secret, manager: &'a str) -> impl Iterator<Item = &'a ManagedFieldsEntry> {
    let entries = secret.metadata.managed_fields.iter().flatten();
    entries.filter(move |e| e.manager.as_deref() == Some(manager) && e.operation.as_deref() == Some("Apply"))
}

/// The keys under `path` of the fields `manager` applied to `secret`.
fn applied_keys<'a>(
    secret: &'a Secret,
    manager: &'a str,
    path: &'a [&'a str],
) -> impl Iterator<Item = &'a str> {
    applied_entries(secret, manager)
        .filter_map(move |e| path.iter().try_fold(&e.fields_v1.as_ref()?.0, |node, step| node.get(step)))
        .filter_map(|fields| fields.as_object())
        .flat_map(|fields| fields.keys().filter_map(|k| k.strip_prefix("f:")))
}

fn contains_all(actual: &Secret, want: &Secret) -> bool {
    let contains = |have: Option<&BTreeMap<String, String>>, need: Option<&BTreeMap<String, String>>| {
        need.into_iter()
            .flatten()
            .filter(|(k, _)| *k != HASH_ANNOTATION)
            .all(|(k, v)| have.and_then(|h| h.get(k)) == Some(v))
    };
    let data = actual.data.as_ref();
    want.data.iter().flatten().all(|(k, v)| data.and_then(|d| d.get(k)) == Some(v))
        && contains(actual.metadata.labels.as_ref(), want.metadata.labels.as_ref())
        && contains(actual.metadata.annotations.as_ref(), want.metadata.annotations.as_ref())
        && (want.type_.is_none() || actual.type_ == want.type_)
        && want
            .metadata
            .owner_references
            .iter()
            .flatten()
            .all(|o| actual.owner_references().iter().any(|a| a.uid == o.uid))
}

/// Writes `data` into the target Secret per the creation policy, if anything differs.
pub async fn write(
    client: &kube::Client,
    ps: &ProtectedSecret,
    data: BTreeMap<String, ByteString>,
    key: &ContentKey,
    echoes: &Echoes,
) -> Result<Result<Written, Refusal>, kube::Error> {
    let namespace = ps.namespace().unwrap_or_default();
    let name = target_name(ps);
    let api: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let existing = api.get_opt(&name).await?;
    let policy = ps.spec.target.creation_policy;
    match (&existing, policy) {
        (None, CreationPolicy::Merge) => {
            return Ok(Err(Refusal {
                reason: "TargetNotFound",
                message: format!(
                    "Secret {name} does not exist and creationPolicy Merge only adds keys to an existing \
                     Secret: create it, or use creationPolicy Owner"
                ),
            }));
        }
        (Some(secret), CreationPolicy::Merge)
            if !merge_allowed_from(secret).any(|allowed| allowed == "*" || allowed == ps.name_any()) =>
        {
            return Ok(Err(Refusal {
                reason: "MergeNotAllowed",
                message: format!(
                    "Secret {name} does not let this ProtectedSecret merge into it: its owner can annotate it \
                     {ALLOW_MERGE_ANNOTATION}={}",
                    ps.name_any()
                ),
            }));
        }
        (Some(secret), _) if !is_ours(secret, ps) => {
            return Ok(Err(Refusal {
                reason: "TargetExists",
                message: format!(
                    "Secret {name} exists and was not created by this ProtectedSecret, so it is left alone: \
                     delete it, choose another target.name, or use creationPolicy Merge"
                ),
            }));
        }
        _ => {}
    }
    let want = desired(ps, data, key);
    let stale = existing.as_ref().map(|secret| stale_managers(secret, ps, &want)).unwrap_or_default();
    let outcome = match &existing {
        Some(secret) if stale.is_empty() && holds(secret, &want, &field_manager(ps)) => {
            return Ok(Ok(Written::Unchanged));
        }
        None if ps.status.as_ref().is_some_and(|s| s.synced_version_id.is_some()) => Written::Repaired,
        None => Written::Created,
        Some(secret) => {
            let ours: Vec<_> = want
                .data
                .iter()
                .flatten()
                .filter_map(|(k, _)| secret.data.as_ref()?.get_key_value(k))
                .collect();
            let written = secret.annotations().get(HASH_ANNOTATION);
            if written.is_some_and(|h| *h != key.digest(ours)) { Written::Repaired } else { Written::Updated }
        }
    };
    let mut applied =
        api.patch(&name, &PatchParams::apply(&field_manager(ps)).force(), &Patch::Apply(&want)).await?;
    for manager in stale {
        applied = release_fields(&api, &name, &manager).await?;
    }
    echoes.expect(&namespace, &applied);
    Ok(Ok(outcome))
}

/// Whether the ProtectedSecret's deletion needs our finalizer: Owner + Retain must drop the
/// owner reference (or the garbage collector deletes the Secret), Orphan + Delete must delete
/// the Secret, Merge + Delete must take our keys out. Owner + Delete is the garbage
/// collector's job.
pub fn needs_finalizer(ps: &ProtectedSecret) -> bool {
    matches!(
        (ps.spec.target.creation_policy, ps.spec.target.deletion_policy),
        (CreationPolicy::Owner, DeletionPolicy::Retain)
            | (CreationPolicy::Orphan, DeletionPolicy::Delete)
            | (CreationPolicy::Merge, DeletionPolicy::Delete)
    )
}

/// Carries out the deletion policy for a ProtectedSecret that is going away.
pub async fn release(client: &kube::Client, ps: &ProtectedSecret) -> Result<(), kube::Error> {
    let namespace = ps.namespace().unwrap_or_default();
    let name = target_name(ps);
    let api: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let Some(secret) = api.get_opt(&name).await? else { return Ok(()) };
    if !is_ours(&secret, ps) {
        return Ok(());
    }
    match (ps.spec.target.creation_policy, ps.spec.target.deletion_policy) {
        (CreationPolicy::Owner, DeletionPolicy::Retain) => {
            let uid = ps.uid();
            let others: Vec<_> =
                secret.owner_references().iter().filter(|o| Some(&o.uid) != uid.as_ref()).cloned().collect();
            let patch =
                json!({"metadata": {"ownerReferences": if others.is_empty() { None } else { Some(others) }}});
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
        }
        (CreationPolicy::Merge, DeletionPolicy::Delete) => {
            release_fields(&api, &name, &field_manager(ps)).await?;
        }
        (CreationPolicy::Orphan, DeletionPolicy::Delete)
        | (CreationPolicy::Owner, DeletionPolicy::Delete) => {
            api.delete(&name, &Default::default()).await?;
        }
        (_, DeletionPolicy::Retain) => {}
    }
    Ok(())
}

/// Why a workload was not restarted.
#[derive(Debug)]
pub enum RestartError {
    Kube(kube::Error),
    /// A paused Deployment rolls nothing out, so a restart would only look done.
    Paused,
}

/// Restarts the consumers named in `targets` as `kubectl rollout restart` does: the pod-template
/// annotation, or a Rollout's `spec.restartAt`. Returns the workloads that were not restarted.
pub async fn restart(
    client: &kube::Client,
    namespace: &str,
    targets: &[RolloutTarget],
    at: &str,
) -> Vec<(String, RestartError)> {
    let annotation =
        json!({"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT_ANNOTATION: at}}}}});
    let mut failed = Vec::new();
    for target in targets {
        let (client, name) = (client.clone(), target.name.as_str());
        let result = match target.kind {
            WorkloadKind::Deployment => restart_deployment(client, namespace, name, &annotation).await,
            WorkloadKind::StatefulSet => {
                patch(Api::<StatefulSet>::namespaced(client, namespace), name, &annotation).await
            }
            WorkloadKind::DaemonSet => {
                patch(Api::<DaemonSet>::namespaced(client, namespace), name, &annotation).await
            }
            WorkloadKind::Rollout => {
                let rollouts = Api::<DynamicObject>::namespaced_with(client, namespace, &rollout_resource());
                patch(rollouts, name, &json!({"spec": {"restartAt": at}})).await
            }
        };
        if let Err(err) = result {
            failed.push((format!("{:?}/{name}", target.kind), err));
        }
    }
    failed
}

/// Argo Rollouts' `Rollout`, served where Argo Rollouts is installed.
fn rollout_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Rollout"),
        "rollouts",
    )
}

async fn restart_deployment(
    client: kube::Client,
    namespace: &str,
    name: &str,
    annotation: &serde_json::Value,
) -> Result<(), RestartError> {
    let deployments = Api::<Deployment>::namespaced(client, namespace);
    let deployment = deployments.get(name).await.map_err(RestartError::Kube)?;
    if deployment.spec.and_then(|spec| spec.paused) == Some(true) {
        return Err(RestartError::Paused);
    }
    patch(deployments, name, annotation).await
}

async fn patch<K>(api: Api<K>, name: &str, patch: &serde_json::Value) -> Result<(), RestartError>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.patch(name, &PatchParams::default(), &Patch::Merge(patch)).await.map_err(RestartError::Kube)?;
    Ok(())
}

#[cfg(test)]
mod tests;
