//! The cluster policies (EncryptedVolumePolicy, TlsIngressPolicy) on one engine.
//!
//! A policy kind ([`PolicyKind`]) says only which objects it sees ([`PolicyKind::World`]) and
//! which pure evaluation from `crate::policy` it runs; everything else is shared here:
//!
//! - incremental evaluation (`incremental.rs`): the world is cut into units (an IngressGroup, a
//!   Service, a StorageClass with its volumes), and only units whose objects changed since the
//!   policy's previous evaluation are judged again; every unit is judged when the policy's
//!   generation changes and once every `reevaluation_period`, when the held AWS facts are read
//!   afresh;
//! - gathering AWS facts: units are judged over a
//!   [`FactRecorder`](crate::policy::facts::FactRecorder), what they wanted is gathered
//!   through the aws layer (whose cache reads each certificate and key once per TTL) and they are
//!   judged again, at most [`FACT_ROUNDS`] times;
//! - status (`status.rs`): `Ready` by `failOn` over findings and over rules AWS facts were missing
//!   for, `Reconciling`/`Stalled`, summary, bounded findings, skipped rules, exemptions. Status is
//!   written only when something besides `lastEvaluatedTime` changed, so `lastEvaluatedTime` is
//!   the time of the evaluation that produced the status shown (an unchanged world writes
//!   nothing); `dpo_policy_evaluation_duration_seconds` shows that evaluations keep running;
//! - Events on newly found and newly resolved violations, and `dpo_policy_findings`;
//! - the run loop: one reflector per governed kind (objects slimmed before they are stored),
//!   changes mapped to the policies that select or last governed the object, a full
//!   re-evaluation every `reevaluation_period`.

mod incremental;
mod status;
mod store;
pub mod tls;
pub mod volume;

pub use store::{empty_store, ready, reflect, slim};

pub use tls::{TlsPolicies, TlsWorld, run_tls_policies};
pub use volume::{VolumePolicies, VolumeWorld, run_volume_policies};

use super::events::EventPublisher;
use super::lock;
use super::{CacheSync, Context, ControllerConfig, FIELD_MANAGER};
use crate::api::{Finding, PolicyStatus, ResourceRef, Severity};
use crate::aws::{FactRequest, Target};
use crate::metrics::FindingLabels;
use crate::policy::facts::{FACT_ROUNDS, Fact, FactSet};
use crate::policy::units::{Judge, UnitPlan};
use crate::policy::{Evaluation, Verdict, sort_findings};
use crate::status::{RECONCILING, event_note};
use futures::{StreamExt, TryStreamExt};
use incremental::{Basis, Incremental, Judged, UnitCache};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Patch, PatchParams};
use kube::core::ClusterResourceScope;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{PredicateConfig, WatchStreamExt, predicates, watcher};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use status::{Gate, desired_status, same_apart_from_time};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Debug;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Retry delay after a failed reconcile.
const RETRY_AFTER: Duration = Duration::from_secs(30);

/// A cluster policy kind: what it governs and which pure evaluation judges it.
pub trait PolicyKind: Send + Sync + 'static {
    type Policy: Resource<DynamicType = (), Scope = ClusterResourceScope>
        + Clone
        + Debug
        + DeserializeOwned
        + Serialize
        + Send
        + Sync
        + 'static;
    /// The governed objects one evaluation sees.
    type World: Send + Sync;
    /// Judges the units of a world.
    type Units<'w>: Judge + Send + Sync
    where
        Self: 'w;
    /// The live stores the world is read from.
    type Stores: Send + Sync + 'static;
    /// Controller name in metrics and logs.
    const CONTROLLER: &'static str;

    fn status(policy: &Self::Policy) -> Option<&PolicyStatus>;
    fn fail_on(policy: &Self::Policy) -> Severity;
    /// Whether rules not judged for want of AWS facts may leave the policy Ready.
    fn skipped_rules_pass(policy: &Self::Policy) -> bool;
    /// Cuts `world` into the units `policy` judges.
    fn plan<'w>(
        policy: &'w Self::Policy,
        world: &'w Self::World,
        config: &'w ControllerConfig,
    ) -> UnitPlan<Self::Units<'w>>;
    /// The world as the stores hold it once each has listed its kind.
    fn snapshot(stores: &Self::Stores) -> impl Future<Output = Result<Self::World, PolicyError>> + Send;
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("writing the status of {policy}: {source}")]
    WriteStatus {
        policy: String,
        #[source]
        source: kube::Error,
    },
    #[error("the watch of {0} has not listed its objects yet")]
    NotReady(&'static str),
}

/// What one reconcile did.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The status the policy has now.
    pub status: PolicyStatus,
    /// Status writes made (0 when nothing changed).
    pub writes: usize,
    pub evaluation: Evaluation,
    /// Units the world was cut into.
    pub units: usize,
    /// Units judged by this evaluation; the others kept the verdicts of the previous one.
    pub judged_units: usize,
    /// When every unit is due to be judged again (the held AWS facts are read afresh then).
    pub next_full_pass: Duration,
}

impl Outcome {
    /// When to evaluate again: at the next full pass, or sooner while the status waits on facts
    /// AWS failed to give for a passing reason (`Reconciling=True`).
    pub fn requeue_after(&self) -> Duration {
        let retrying = self.status.conditions.iter().any(|c| c.type_ == RECONCILING && c.status == "True");
        if retrying { self.next_full_pass.min(RETRY_AFTER) } else { self.next_full_pass }
    }
}

/// What the engine remembers of a policy between evaluations.
#[derive(Default)]
struct Memory {
    /// Violations last seen, by rule and object (messages may change while the violation stays).
    violations: BTreeSet<(String, ResourceRef)>,
    /// `dpo_policy_findings` series last set.
    series: HashSet<FindingLabels>,
    /// Objects judged or exempted last time: a change to one of them concerns the policy even
    /// when it no longer selects it.
    governed: HashSet<ResourceRef>,
}

/// AWS facts gathered for earlier evaluations of a kind's policies.
struct HeldFacts {
    facts: FactSet,
    since: Instant,
    /// Counts the readings: verdicts judged over facts of an earlier one are not kept.
    epoch: u64,
}

impl Default for HeldFacts {
    fn default() -> Self {
        HeldFacts { facts: FactSet::default(), since: Instant::now(), epoch: 0 }
    }
}

/// The facts an evaluation starts from.
struct Held {
    facts: FactSet,
    epoch: u64,
    /// Time left until they are read afresh.
    left: Duration,
}

/// The shared engine of one policy kind.
pub struct PolicyEngine<K: PolicyKind> {
    ctx: Context,
    recorder: EventPublisher,
    memory: Mutex<HashMap<String, Memory>>,
    /// Verdicts of each policy's units, kept for its next evaluation.
    units: Mutex<HashMap<String, UnitCache>>,
    facts: Mutex<HeldFacts>,
    kind: PhantomData<fn() -> K>,
}

impl<K: PolicyKind> PolicyEngine<K> {
    pub fn new(ctx: Context) -> Self {
        let reporter = Reporter {
            controller: "dpo".into(),
            instance: std::env::var("POD_NAME").ok().filter(|name| !name.is_empty()),
        };
        PolicyEngine {
            recorder: EventPublisher::new(ctx.client.clone(), reporter),
            ctx,
            memory: Mutex::default(),
            units: Mutex::default(),
            facts: Mutex::default(),
            kind: PhantomData,
        }
    }

    fn memory(&self) -> MutexGuard<'_, HashMap<String, Memory>> {
        lock(&self.memory)
    }

    /// Runs the evaluation, judging the units whose objects changed and gathering the AWS facts
    /// they ask for. Facts gathered for earlier evaluations are reused for up to
    /// `reevaluation_period`; after that they are read again (through the aws layer's cache) and
    /// every unit is judged.
    async fn evaluate(&self, policy: &K::Policy, world: &K::World) -> (Judged, Duration) {
        let Held { mut facts, epoch, left } = self.held_facts();
        facts.now = Some(jiff::Timestamp::now());
        let name = policy.name_any();
        let basis = Basis { uid: policy.meta().uid.clone(), generation: policy.meta().generation, epoch };
        let cache = lock(&self.units).remove(&name).unwrap_or_default();
        let mut evaluation = Incremental::new(K::plan(policy, world, &self.ctx.config), basis, cache);
        for _ in 0..FACT_ROUNDS {
            let wanted = evaluation.round(&facts);
            if wanted.is_empty() {
                break;
            }
            let gathered = self.ctx.aws.gather(&FactRequest::new(Target::default(), wanted)).await;
            self.hold(&gathered);
            facts.extend(gathered);
        }
        let mut judged = evaluation.finish(&facts);
        lock(&self.units).insert(name, std::mem::take(&mut judged.cache));
        (judged, left)
    }

    fn held_facts(&self) -> Held {
        let mut held = lock(&self.facts);
        let period = self.ctx.config.reevaluation_period;
        if held.since.elapsed() >= period {
            *held = HeldFacts { epoch: held.epoch + 1, ..HeldFacts::default() };
        }
        Held {
            facts: held.facts.clone(),
            epoch: held.epoch,
            left: period.saturating_sub(held.since.elapsed()),
        }
    }

    /// Keeps what AWS answered; failures are asked again next time.
    fn hold(&self, gathered: &FactSet) {
        fn settled<T: Clone>(facts: &HashMap<String, Fact<T>>) -> HashMap<String, Fact<T>> {
            facts
                .iter()
                .filter(|(_, f)| !matches!(f, Fact::Failed(_)))
                .map(|(k, f)| (k.clone(), f.clone()))
                .collect()
        }
        let settled = FactSet {
            now: None,
            kms_keys: settled(&gathered.kms_keys),
            kms_rotations: settled(&gathered.kms_rotations),
            certificates: settled(&gathered.certificates),
            host_certificates: settled(&gathered.host_certificates),
            volumes: settled(&gathered.volumes),
            ebs_default: gathered.ebs_default.clone().filter(|f| !matches!(f, Fact::Failed(_))),
            secrets: settled(&gathered.secrets),
            clusters: settled(&gathered.clusters),
            web_acls: settled(&gathered.web_acls),
        };
        lock(&self.facts).facts.extend(settled);
    }

    /// Evaluates one policy over `world`, writes its status if it changed, and reports new and
    /// resolved violations.
    pub async fn reconcile(&self, policy: &K::Policy, world: &K::World) -> Result<Outcome, PolicyError> {
        let started = Instant::now();
        let name = policy.name_any();
        let generation = policy.meta().generation;
        let mut current = K::status(policy).cloned().unwrap_or_default();
        let mut writes = 0;
        if current.observed_generation != generation {
            // kstatus: a spec not yet evaluated is in progress.
            let mut reconciling = current.clone();
            reconciling.conditions.retain(|c| c.type_ != RECONCILING);
            reconciling.conditions.push(Condition {
                type_: RECONCILING.into(),
                status: "True".into(),
                reason: "Evaluating".into(),
                message: format!("evaluating generation {}", generation.unwrap_or_default()),
                observed_generation: generation,
                last_transition_time: now(),
            });
            self.write_status(&name, &reconciling).await?;
            writes += 1;
            current = reconciling;
        }

        let (Judged { evaluation, units, judged, .. }, next_full_pass) = self.evaluate(policy, world).await;
        let gate = Gate { fail_on: K::fail_on(policy), skipped_rules_pass: K::skipped_rules_pass(policy) };
        let desired = desired_status(&evaluation, gate, generation, &current, &now());
        if !same_apart_from_time(&desired, &current) {
            self.write_status(&name, &desired).await?;
            writes += 1;
            current = desired;
        }
        self.report(policy, &name, &evaluation, K::status(policy)).await;
        self.ctx.policies.observe_evaluation(K::CONTROLLER, started.elapsed());
        Ok(Outcome { status: current, writes, evaluation, units, judged_units: judged, next_full_pass })
    }

    async fn write_status(&self, name: &str, status: &PolicyStatus) -> Result<(), PolicyError> {
        let api: Api<K::Policy> = Api::all(self.ctx.client.clone());
        let patch = Patch::Apply(serde_json::json!({
            "apiVersion": K::Policy::api_version(&()),
            "kind": K::Policy::kind(&()),
            "status": status,
        }));
        api.patch_status(name, &PatchParams::apply(FIELD_MANAGER).force(), &patch)
            .await
            .map(drop)
            .map_err(|source| PolicyError::WriteStatus { policy: name.to_string(), source })
    }

    /// Events for violations found or resolved since the last evaluation, and the metrics.
    async fn report(
        &self,
        policy: &K::Policy,
        name: &str,
        evaluation: &Evaluation,
        stored: Option<&PolicyStatus>,
    ) {
        let findings: BTreeMap<(String, ResourceRef), &Finding> =
            evaluation.findings().map(|f| ((f.rule.clone(), f.resource.clone()), f)).collect();
        let (found, resolved) = {
            let mut memory = self.memory();
            let known = memory.contains_key(name);
            let entry = memory.entry(name.to_string()).or_default();
            let previous = match stored {
                _ if known => Some(std::mem::take(&mut entry.violations)),
                // Never evaluated: every violation is new.
                None => Some(BTreeSet::new()),
                // After a restart the status is the memory; a truncated list cannot tell what is
                // new, so that first pass reports nothing.
                Some(s) if s.findings.len() as u32 == s.findings_total => {
                    Some(s.findings.iter().map(|f| (f.rule.clone(), f.resource.clone())).collect())
                }
                Some(_) => None,
            };
            let (found, resolved) = match &previous {
                Some(previous) => (
                    findings.iter().filter(|(key, _)| !previous.contains(*key)).map(|(_, f)| *f).collect(),
                    previous.iter().filter(|key| !findings.contains_key(*key)).cloned().collect(),
                ),
                None => (Vec::new(), Vec::new()),
            };
            entry.violations = findings.keys().cloned().collect();
            entry.governed = evaluation
                .verdicts
                .iter()
                .filter(|v| !matches!(v.verdict, Verdict::NotApplicable(_)))
                .map(|v| v.resource.clone())
                .collect();
            entry.series = self.set_metrics(name, evaluation, std::mem::take(&mut entry.series));
            (found, resolved)
        };
        self.publish_events(policy, found, resolved).await;
    }

    fn set_metrics(
        &self,
        name: &str,
        evaluation: &Evaluation,
        previous: HashSet<FindingLabels>,
    ) -> HashSet<FindingLabels> {
        let mut counts: HashMap<FindingLabels, i64> = HashMap::new();
        for finding in evaluation.findings() {
            let labels = FindingLabels {
                policy: name.to_string(),
                rule: finding.rule.clone(),
                severity: finding.severity.as_str(),
            };
            *counts.entry(labels).or_default() += 1;
        }
        for stale in previous.iter().filter(|labels| !counts.contains_key(*labels)) {
            self.ctx.policies.remove_findings(stale);
        }
        for (labels, count) in &counts {
            self.ctx.policies.set_findings(labels, *count);
        }
        counts.into_keys().collect()
    }

    async fn publish_events(
        &self,
        policy: &K::Policy,
        found: Vec<&Finding>,
        resolved: Vec<(String, ResourceRef)>,
    ) {
        let reference = policy.object_ref(&());
        let mut events = Vec::new();
        // In the order status lists them: the most severe first.
        let mut found: Vec<Finding> = found.into_iter().cloned().collect();
        sort_findings(&mut found);
        if let Some(top) = found.first() {
            events.push(Event {
                type_: EventType::Warning,
                reason: "ViolationsFound".into(),
                note: Some(event_note(format!(
                    "{} new violation(s); the most severe: {} ({}) on {}: {}",
                    found.len(),
                    top.rule,
                    top.severity,
                    top.resource,
                    top.message
                ))),
                action: "Evaluate".into(),
                secondary: None,
            });
        }
        if let Some((rule, resource)) = resolved.first() {
            events.push(Event {
                type_: EventType::Normal,
                reason: "ViolationsResolved".into(),
                note: Some(event_note(format!(
                    "{} violation(s) resolved, among them {rule} on {resource}",
                    resolved.len()
                ))),
                action: "Evaluate".into(),
                secondary: None,
            });
        }
        for event in events {
            // Events are informational: failing to publish one must not fail the evaluation.
            if let Err(err) = self.recorder.publish(&event, &reference).await {
                tracing::warn!(policy = %policy.name_any(), reason = %event.reason, error = %err, "publishing an event failed");
            }
        }
    }

    /// Forgets a deleted policy: its memory, its units' verdicts and its metric series.
    pub fn forget(&self, name: &str) {
        lock(&self.units).remove(name);
        if let Some(memory) = self.memory().remove(name) {
            for labels in &memory.series {
                self.ctx.policies.remove_findings(labels);
            }
        }
    }

    /// Whether the last evaluation of `policy` judged or exempted `resource`.
    pub fn governed(&self, policy: &str, resource: &ResourceRef) -> bool {
        self.memory().get(policy).is_some_and(|m| m.governed.contains(resource))
    }

    /// The policies a change to the objects `resources` concerns: those that select one of them
    /// now (`selects`) and those that governed one of them last time.
    pub fn affected(
        &self,
        policies: &Store<K::Policy>,
        resources: &[ResourceRef],
        selects: impl Fn(&K::Policy) -> bool,
    ) -> Vec<ObjectRef<K::Policy>> {
        policies
            .state()
            .iter()
            .filter(|policy| {
                selects(policy) || resources.iter().any(|r| self.governed(&policy.name_any(), r))
            })
            .map(|policy| ObjectRef::from_obj(&**policy))
            .collect()
    }
}

/// The objects behind a store's snapshot, as the pure evaluation takes them.
fn refs<T>(objects: &[Arc<T>]) -> Vec<&T> {
    objects.iter().map(Arc::as_ref).collect()
}

fn now() -> Time {
    // The apiserver keeps seconds; comparing with what it returns needs the same precision.
    Time(jiff::Timestamp::from_second(jiff::Timestamp::now().as_second()).unwrap_or_default())
}

/// Runs the controller of one policy kind until `shutdown` completes. `watches` adds the
/// governed kinds' triggers to the controller.
async fn run<K: PolicyKind>(
    ctx: Context,
    stores: K::Stores,
    watches: impl FnOnce(Controller<K::Policy>, Store<K::Policy>, Arc<PolicyEngine<K>>) -> Controller<K::Policy>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let engine = Arc::new(PolicyEngine::<K>::new(ctx.clone()));
    let (policies, writer) = reflector::store();
    let sync = CacheSync::new(ctx.ready.clone());
    let forget = engine.clone();
    // Status writes do not change the generation: filtering on it keeps our own writes from
    // triggering another evaluation.
    let triggers = sync
        .track(reflector::reflector(
            writer,
            watcher(Api::<K::Policy>::all(ctx.client.clone()), watcher::Config::default()).modify(slim),
        ))
        .default_backoff()
        .inspect_ok(move |event| {
            if let watcher::Event::Delete(policy) = event {
                forget.forget(&policy.name_any());
            }
        })
        .touched_objects()
        .predicate_filter(predicates::generation, PredicateConfig::default());
    let controller = Controller::for_stream(triggers, policies.clone())
        .with_config(kube::runtime::Config::default().concurrency(ctx.config.concurrency));
    let controller = watches(controller, policies, engine.clone());
    let stores = Arc::new(stores);
    controller
        .graceful_shutdown_on(shutdown)
        .run(
            move |policy, engine: Arc<PolicyEngine<K>>| {
                let stores = stores.clone();
                async move {
                    let started = Instant::now();
                    let result = match K::snapshot(&stores).await {
                        Ok(world) => engine.reconcile(&policy, &world).await,
                        Err(err) => Err(err),
                    };
                    engine.ctx.reconciles.observe(K::CONTROLLER, started.elapsed(), result.is_err());
                    // The periodic full pass catches what changes in AWS (expiry nears, rotation
                    // off); it is due when the held facts are read afresh.
                    result.map(|outcome| Action::requeue(outcome.requeue_after()))
                }
            },
            |policy, err, _| {
                tracing::warn!(policy = %policy.name_any(), error = %err, "policy evaluation failed");
                Action::requeue(RETRY_AFTER)
            },
            engine,
        )
        .for_each(|result| {
            if let Err(err) = result {
                tracing::debug!(controller = K::CONTROLLER, error = %err, "controller event");
            }
            std::future::ready(())
        })
        .await;
}

#[cfg(test)]
mod tests;
