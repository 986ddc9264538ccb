//! The ProtectedSecret controller: keeps a Kubernetes Secret in sync with an AWS Secrets
//! Manager secret, under the ProtectedSecret's data-protection policy.
//!
//! One reconcile: check the spec and the namespace's access rules (before any AWS call), find
//! the version to sync (metadata only, and only when a refresh is due), read its value (shared by
//! every object on the same version, batched with concurrent reconciles), judge the policy,
//! render the keys, write the Secret if it differs, restart consumers on a new version, and
//! write status only if it changed. A failure never empties or deletes a synced Secret.

mod batch;
mod outcome;
mod render;
mod report;
mod shared;
mod target;

use super::FIELD_MANAGER;
use render::render_blocking;
pub use target::{
    ALLOW_MERGE_ANNOTATION, FINALIZER, HASH_ANNOTATION, MANAGED_BY, MANAGED_BY_LABEL, OWNER_ANNOTATION,
};

use super::policy::slim;
use super::{CacheSync, Context};
use crate::api::{Enforcement, ProtectedSecret, ResourceRef, SecretVersion, parse_duration};
use crate::aws::{AwsError, AwsFacts, FactRequest, Target, ValueRef};
use crate::policy::Judgement;
use crate::policy::facts::{FactError, FactRecorder, FactSet};
use crate::policy::secret::{judge_secret, refused_secret_type, validate_spec};
use futures::{FutureExt, StreamExt, TryStreamExt};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef, reflector};
use kube::runtime::{Config as RuntimeConfig, WatchStreamExt, predicates, watcher};
use kube::{Resource, ResourceExt};
use outcome::{Failure, Outcome, Synced};
use report::{next_status, report, summary};
use serde_json::json;
pub use shared::Shared;
use shared::jitter;
use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use target::{Refusal, RestartError, Written};
use tokio::sync::Semaphore;

/// `controller` label of the shared reconcile metrics.
pub const CONTROLLER: &str = "protectedsecret";

/// A reconcile that could not finish. AWS failures are reported in status first.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("ProtectedSecret {0} has no namespace")]
    NotNamespaced(String),
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Aws(#[from] AwsError),
    #[error("enforced rules not evaluated: {0}")]
    NotEvaluated(String),
}

/// Runs the controller until `shutdown` completes, then finishes the reconciles in flight.
///
/// With `secret_namespaces` set there is one controller per namespace, as a watch covers one
/// namespace or all of them; they share the context and the concurrency limit. (One controller
/// over merged namespaced watches would keep a single cache, and each namespace's relist would
/// replace it with that namespace's objects alone.)
pub async fn run(ctx: Context, shutdown: impl Future<Output = ()> + Send + Sync + 'static) {
    let shutdown = shutdown.boxed().shared();
    let ctx = Arc::new(ctx);
    let concurrency = ctx.config.concurrency;
    // 0 is kube-runtime's "unbounded".
    let permits = Arc::new(Semaphore::new(match concurrency {
        0 => Semaphore::MAX_PERMITS,
        n => usize::from(n),
    }));
    let sync = CacheSync::new(ctx.ready.clone());
    let mut controllers = Vec::new();
    for scope in scopes(&ctx.config.secret_namespaces) {
        let controller = controller(&ctx.client, scope, &sync, &ctx.protected_secrets);
        let permits = permits.clone();
        let running = controller
            .with_config(RuntimeConfig::default().concurrency(concurrency))
            .graceful_shutdown_on(shutdown.clone())
            .run(
                move |ps, ctx| {
                    let permits = permits.clone();
                    async move {
                        // Never closed, so the permit is always granted.
                        let _permit = permits.acquire_owned().await;
                        reconcile(ps, ctx).await
                    }
                },
                error_policy,
                ctx.clone(),
            );
        controllers.push(running.boxed());
    }
    futures::stream::select_all(controllers)
        .for_each(|result| async move {
            if let Err(err) = result {
                tracing::warn!(error = %err, "protectedsecret reconcile failed");
            }
        })
        .await;
}

/// The namespaces to watch, one watch each: `[None]` is a single watch of every namespace.
fn scopes(namespaces: &[String]) -> Vec<Option<&str>> {
    if namespaces.is_empty() { vec![None] } else { namespaces.iter().map(|ns| Some(ns.as_str())).collect() }
}

/// The controller of the ProtectedSecrets in `scope` (`None`: every namespace), its cache
/// tracked by `sync`. What `shared` keeps about an object goes with it: at its deletion, or at
/// a relist that no longer holds it.
fn controller(
    client: &kube::Client,
    scope: Option<&str>,
    sync: &CacheSync,
    shared: &Arc<Shared>,
) -> Controller<ProtectedSecret> {
    let (store, writer) = reflector::store();
    let watch = watcher(scoped::<ProtectedSecret>(client, scope), watcher::Config::default()).modify(slim);
    let managed = watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY}"));
    let (known, listed, writes, scope_name) =
        (store.clone(), store.clone(), shared.clone(), scope.map(String::from));
    let shared = shared.clone();
    // The reflector has updated the store by the time an event gets here.
    let events = reflector(writer, watch).inspect_ok(move |event| match event {
        watcher::Event::Delete(ps) => shared.forget(ps),
        watcher::Event::InitDone => shared.forget_missing(scope_name.as_deref(), |namespace, name, uid| {
            let found = listed.get(&ObjectRef::new(name).within(namespace));
            found.is_some_and(|ps| uid.is_none_or(|uid| ps.uid().as_deref() == Some(uid)))
        }),
        _ => {}
    });
    // Our own finalizer and status writes change no generation: they need no reconcile. A
    // deletion does change it.
    let changed =
        sync.track(events).applied_objects().predicate_filter(predicates::generation, Default::default());
    Controller::for_stream(changed, store)
        // An edit or deletion of a Secret we write is seen at once, whatever the creation policy
        // (an owner reference exists only under Owner). Its metadata tells whose it is: the
        // watch never carries the values.
        .watches_stream(
            watcher(scoped::<PartialObjectMeta<Secret>>(client, scope), managed).touched_objects(),
            move |secret| {
                if writes.echoes.is_echo(&secret) { Vec::new() } else { writers(&secret, &known) }
            },
        )
}

/// The ProtectedSecrets that write `secret`: the one its owner annotation names, and those it
/// lets merge into it (with `*`, every one in `known` that targets it).
fn writers(
    secret: &PartialObjectMeta<Secret>,
    known: &reflector::Store<ProtectedSecret>,
) -> Vec<ObjectRef<ProtectedSecret>> {
    let Some(namespace) = secret.namespace() else { return Vec::new() };
    let mut names: Vec<String> = secret.annotations().get(OWNER_ANNOTATION).cloned().into_iter().collect();
    let merging: Vec<&str> = target::merge_allowed_from(secret).collect();
    if merging.contains(&"*") {
        let name = secret.name_any();
        let targets_it = |ps: &&Arc<ProtectedSecret>| {
            ps.namespace() == Some(namespace.clone()) && target::target_name(ps) == name
        };
        names.extend(known.state().iter().filter(targets_it).map(|ps| ps.name_any()));
    } else {
        names.extend(merging.into_iter().map(str::to_string));
    }
    names.into_iter().map(|name| ObjectRef::new(&name).within(&namespace)).collect()
}

/// The objects of kind `K` in `scope` (`None`: every namespace).
fn scoped<K>(client: &kube::Client, scope: Option<&str>) -> Api<K>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
{
    match scope {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    }
}

/// Requeues a failed reconcile with exponential backoff, per object.
pub fn error_policy(ps: Arc<ProtectedSecret>, _err: &Error, ctx: Arc<Context>) -> Action {
    Action::requeue(ctx.protected_secrets.backoff(&ps))
}

/// Reconciles one ProtectedSecret.
pub async fn reconcile(ps: Arc<ProtectedSecret>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let result = reconcile_object(&ps, &ctx).await;
    ctx.reconciles.observe(CONTROLLER, started.elapsed(), result.is_err());
    result
}

async fn reconcile_object(ps: &ProtectedSecret, ctx: &Context) -> Result<Action, Error> {
    let namespace = ps.namespace().ok_or_else(|| Error::NotNamespaced(ps.name_any()))?;
    let name = ps.name_any();
    let shared = &ctx.protected_secrets;
    if ps.meta().deletion_timestamp.is_some() {
        if has_finalizer(ps) {
            target::release(&ctx.client, ps).await?;
            set_finalizer(ctx, ps, false).await?;
        }
        shared.forget(ps);
        return Ok(Action::await_change());
    }
    let needs_finalizer = target::needs_finalizer(ps);
    if needs_finalizer != has_finalizer(ps) {
        set_finalizer(ctx, ps, needs_finalizer).await?;
    }
    // `None`: sync once. An invalid interval is reported by the spec check.
    let interval = interval(ps, ctx);
    let refresh = interval.as_ref().ok().filter(|d| !d.is_zero()).copied();
    let once = interval.is_ok_and(|d| d.is_zero());

    let outcome = sync(ps, ctx, &namespace, once).await?;
    let previous = ps.status.clone().unwrap_or_default();
    let status = next_status(ps, &previous, &outcome, ctx.cluster.note(&ctx.aws).await.as_deref());
    if status != previous {
        let api: Api<ProtectedSecret> = Api::namespaced(ctx.client.clone(), &namespace);
        let body =
            json!({"apiVersion": crate::api::API_VERSION, "kind": "ProtectedSecret", "status": status});
        api.patch_status(&name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&body)).await?;
    }
    report(ps, ctx, &previous, &outcome).await;

    let failure = match outcome.sync {
        Ok(synced) => {
            let wait = shared.remember(ps, synced.value, synced.checked, refresh);
            shared.metrics.succeeded(&namespace, &name, jiff::Timestamp::now().as_second());
            match synced.restart_failed {
                None => return Ok(wait.map_or_else(Action::await_change, Action::requeue)),
                Some(failure) => failure,
            }
        }
        Err(failure) => {
            // What the staleness alert watches: kept, and known, while the object fails.
            shared.metrics.failing(&namespace, &name, last_synced(&previous));
            failure
        }
    };
    shared.metrics.failed(&failure.reason);
    match failure.retry {
        Some(err) => Err(err),
        // Spec, tenancy, template, policy and target problems wait for a change; the AWS
        // secret or the target may change without an event, so look again later.
        None => Ok(Action::requeue(jitter(refresh.unwrap_or(ctx.config.default_refresh)))),
    }
}

/// When the Secret last got a version, as far as status tells (0: not known): the start of the
/// current `Synced=True`.
fn last_synced(status: &crate::api::ProtectedSecretStatus) -> i64 {
    let synced = status.conditions.iter().find(|c| c.type_ == crate::status::SYNCED && c.status == "True");
    synced.map_or(0, |c| c.last_transition_time.0.as_second())
}

/// Everything from the spec check to the Secret write. Kubernetes API errors end the
/// reconcile; everything else is an outcome reported in status.
async fn sync(ps: &ProtectedSecret, ctx: &Context, namespace: &str, once: bool) -> Result<Outcome, Error> {
    let spec = &ps.spec;
    let shared = &ctx.protected_secrets;
    let errors = validate_spec(spec);
    if !errors.is_empty() {
        let message = errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
        return Ok(Outcome::failed(Failure::new("InvalidSpec", message)));
    }
    if let Some(refusal) = refused_secret_type(spec, &ctx.config.allowed_secret_types) {
        return Ok(Outcome::failed(Failure::new("TargetTypeNotAllowed", refusal.to_string())));
    }
    let secret_id = &spec.source.secret_id;
    // Learnt at start (or given by a flag): the check below makes no AWS call.
    let identity = match ctx.aws.identity().await {
        Ok(identity) => identity,
        Err(err) => return Ok(Outcome::failed(Failure::aws(err))),
    };
    let access = ctx.config.secret_access.check(namespace, &spec.source, &identity, ctx.aws.default_region());
    let target = match access {
        Ok(target) => target,
        Err(denied) => return Ok(Outcome::failed(Failure::new(denied.reason, denied.message))),
    };
    if let Err(err) = ctx.aws.scope(&target) {
        return Ok(Outcome::failed(Failure::aws(err)));
    }
    // Before the refresh is due, the version synced last is still the one to hold: a drift
    // repair needs neither metadata nor a policy verdict from AWS.
    let known = shared.remembered(ps).or_else(|| synced_once(ps, once));
    let due = known.is_none();
    let mut checked = None;
    let version_id = match spec.source.version() {
        SecretVersion::Id(id) => id.to_string(),
        SecretVersion::Stage(stage) => match known {
            Some(version_id) => version_id,
            None => match shared.metadata(ps, &target, secret_id, refresh_interval(ps, ctx)).await {
                Ok((facts, fetched)) => match facts.version_for_stage(stage) {
                    Some(version_id) => {
                        checked = Some(fetched);
                        version_id.to_string()
                    }
                    None => {
                        return Ok(Outcome::failed(Failure::new(
                            "SecretNotFound",
                            format!("AWS secret {secret_id} has no version labelled {stage}"),
                        )));
                    }
                },
                Err(err) => return Ok(Outcome::failed(Failure::aws(err))),
            },
        },
    };
    let wanted =
        ValueRef { target: target.clone(), secret_id: secret_id.clone(), version_id: version_id.clone() };
    let value = match shared.value(wanted.clone()).await {
        Ok(value) => value,
        Err(err) => return Ok(Outcome::failed(Failure::aws(err))),
    };
    let judgement = if due {
        let judged = judge(&ctx.aws, ps, &target).await;
        shared.judged(ps, &version_id, &judged);
        Some(judged)
    } else {
        // The object may be a copy older than our last status write (the watch lags behind it):
        // what the policy said comes from memory, or that write would be undone.
        shared.judgement(ps, &version_id)
    };
    let causes: Vec<FactError> = judgement
        .iter()
        .flat_map(|j| j.skip_causes.values().cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let unchecked = judgement.as_ref().map_or_else(Vec::new, |j| j.skipped.iter().map(|r| r.id()).collect());
    let findings = judgement.map(|j| j.findings);
    let refused = |failure| {
        Ok(Outcome { sync: Err(failure), findings: findings.clone(), unchecked: unchecked.clone() })
    };
    let data = match render_blocking(spec, &value).await {
        Ok(data) => data,
        Err(err) => return refused(Failure::new(err.reason, err.to_string())),
    };
    if spec.policy.enforcement == Enforcement::Enforce {
        if let Some(found) = findings.as_ref().filter(|f| !f.is_empty()) {
            let message = format!(
                "policy is enforced and version {version_id} violates it ({}); the Secret is not written",
                summary(found)
            );
            return refused(Failure::new("PolicyViolation", message));
        }
        if !unchecked.is_empty() {
            return refused(Failure::not_evaluated(&version_id, &unchecked, &causes));
        }
    }
    let refused = |failure| {
        Ok(Outcome { sync: Err(failure), findings: findings.clone(), unchecked: unchecked.clone() })
    };
    let written = match target::write(&ctx.client, ps, data, &shared.key, &shared.echoes).await {
        Ok(Ok(written)) => written,
        Ok(Err(Refusal { reason, message })) => return refused(Failure::new(reason, message)),
        Err(err) => {
            let secret = format!("the write of Secret {}", target::target_name(ps));
            return refused(Failure::refused("SecretWrite", &secret, err)?);
        }
    };
    // After a restart the HMAC key is new and every earlier write looks foreign: a new version
    // is an update whatever the annotation says.
    let written = match written {
        Written::Repaired if synced_version(ps) != Some(version_id.as_str()) => Written::Updated,
        written => written,
    };
    let restart_failed = roll_out(ctx, ps, namespace, &version_id).await;
    Ok(Outcome { sync: Ok(Synced { value: wanted, written, checked, restart_failed }), findings, unchecked })
}

/// Restarts the `rolloutRestart` workloads if the version they were last restarted for (or
/// started with) is not `version_id`. Status records that version only once they were, so a
/// restart that fails, or whose status write does, is owed until it is done.
async fn roll_out(ctx: &Context, ps: &ProtectedSecret, namespace: &str, version_id: &str) -> Option<Failure> {
    let status = ps.status.as_ref()?;
    let restarted_for = status.rolled_out_version_id.as_ref().or(status.synced_version_id.as_ref())?;
    if ps.spec.rollout_restart.is_empty() || restarted_for == version_id {
        return None;
    }
    let at = jiff::Timestamp::now().to_string();
    let mut failed = target::restart(&ctx.client, namespace, &ps.spec.rollout_restart, &at).await;
    if failed.is_empty() {
        return None;
    }
    let workloads: Vec<String> = failed.iter().map(|(workload, _)| workload.clone()).collect();
    let (workload, err) = failed.swap_remove(0);
    let restart = format!("the restart of {workload}");
    let mut failure = match err {
        RestartError::Paused => Failure::new(
            "RolloutRestartPaused",
            format!(
                "{workload} is paused, so a restart would roll nothing out: resume it (kubectl rollout resume), or \
                 take it out of rolloutRestart"
            ),
        ),
        RestartError::Kube(err) => {
            Failure::refused("RolloutRestart", &restart, err).unwrap_or_else(|err| Failure {
                reason: "RolloutRestartFailed".into(),
                message: format!("could not restart {workload}: {err}"),
                retry: Some(Error::Kube(err)),
                transient: true,
            })
        }
    };
    failure.message = format!(
        "{}; {} still run(s) a version before {version_id}: retried",
        failure.message,
        workloads.join(", ")
    );
    Some(failure)
}

fn synced_version(ps: &ProtectedSecret) -> Option<&str> {
    ps.status.as_ref()?.synced_version_id.as_deref()
}

/// The object's refresh interval, `--default-refresh` where it sets none.
fn interval(ps: &ProtectedSecret, ctx: &Context) -> Result<Duration, crate::api::DurationError> {
    ps.spec.refresh_interval.as_deref().map_or(Ok(ctx.config.default_refresh), parse_duration)
}

/// How old the metadata read for a due refresh may be: the object's own interval, else the
/// default one.
fn refresh_interval(ps: &ProtectedSecret, ctx: &Context) -> Duration {
    interval(ps, ctx).ok().filter(|d| !d.is_zero()).unwrap_or(ctx.config.default_refresh)
}

/// With `refreshInterval: 0`, the version already synced for this generation (after a restart
/// of the controller, status is the only memory).
fn synced_once(ps: &ProtectedSecret, once: bool) -> Option<String> {
    let status = ps.status.as_ref()?;
    (once && status.observed_generation == ps.meta().generation).then(|| status.synced_version_id.clone())?
}

/// The policy verdict: evaluate, gather what the evaluation asked for, evaluate again.
async fn judge(aws: &AwsFacts, ps: &ProtectedSecret, target: &Target) -> Judgement {
    let resource = ResourceRef {
        api_version: crate::api::API_VERSION.into(),
        kind: ProtectedSecret::kind(&()),
        namespace: ps.namespace(),
        name: ps.name_any(),
    };
    let mut known = FactSet::default();
    for _ in 0..crate::policy::facts::FACT_ROUNDS {
        let recorder = FactRecorder::new(&known);
        let judgement = judge_secret(&resource, &ps.spec, &recorder);
        let wanted = recorder.into_wanted();
        if wanted.is_empty() {
            return judgement;
        }
        known.extend(aws.gather(&FactRequest::new(target.clone(), wanted)).await);
    }
    judge_secret(&resource, &ps.spec, &known)
}

fn has_finalizer(ps: &ProtectedSecret) -> bool {
    ps.finalizers().iter().any(|f| f == FINALIZER)
}

/// Adds or removes our finalizer. The resourceVersion makes the list replacement safe against
/// a concurrent change by someone else.
async fn set_finalizer(ctx: &Context, ps: &ProtectedSecret, present: bool) -> Result<(), Error> {
    let mut finalizers: Vec<String> = ps.finalizers().iter().filter(|f| *f != FINALIZER).cloned().collect();
    if present {
        finalizers.push(FINALIZER.to_string());
    }
    let patch = json!({"metadata": {"finalizers": finalizers, "resourceVersion": ps.resource_version()}});
    let api: Api<ProtectedSecret> = Api::namespaced(ctx.client.clone(), &ps.namespace().unwrap_or_default());
    match api.patch(&ps.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
        // Gone: an earlier reconcile of the same deletion removed the finalizer already.
        Err(kube::Error::Api(status)) if status.code == 404 && !present => Ok(()),
        result => result.map(drop).map_err(Error::from),
    }
}
