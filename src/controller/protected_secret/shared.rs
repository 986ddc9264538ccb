//! What the ProtectedSecret controller keeps between reconciles: the refresh schedule with
//! per-object backoff, which cached values objects hold, what the policy said at the last due
//! refresh, AWS read batching, the HMAC key, metrics and the event recorder. What it keeps of an
//! object goes with the object.

use super::batch::Window;
use super::target::ContentKey;
use crate::api::ProtectedSecret;
use crate::aws::{AwsError, AwsFacts, SecretValue, SecretsApi, Target, ValueRef};
use crate::metrics::SecretSyncMetrics;
use crate::policy::Judgement;
use crate::policy::facts::SecretFacts;
use kube::runtime::events::{Recorder, Reporter};
use kube::{Resource, ResourceExt};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Fraction of the refresh interval added or taken at random, so that objects created together
/// do not refresh together.
const JITTER: f64 = 0.1;

/// First and longest wait after a failure.
const BACKOFF_BASE: Duration = Duration::from_secs(5);
const BACKOFF_MAX: Duration = Duration::from_secs(300);

type MetadataWindow = Window<(Target, String), Result<SecretFacts, AwsError>>;
type ValueWindow = Window<ValueRef, Result<SecretValue, AwsError>>;

/// What the controller keeps between reconciles: the per-process HMAC key, the refresh
/// schedule, read batching, its metrics and the event recorder.
pub struct Shared {
    pub metrics: SecretSyncMetrics,
    pub(super) key: ContentKey,
    aws: AwsFacts,
    objects: Mutex<Objects>,
    metadata: MetadataWindow,
    values: ValueWindow,
    recorder: OnceLock<Recorder>,
}

#[derive(Default)]
struct Objects {
    /// By uid.
    schedule: HashMap<String, Schedule>,
    /// How many objects hold each synced version. A version none holds leaves the value cache,
    /// rather than waiting there to be evicted.
    holders: HashMap<ValueRef, usize>,
}

/// When an object next looks for a new version, and which version it has.
#[derive(Debug)]
struct Schedule {
    namespace: String,
    name: String,
    generation: Option<i64>,
    /// `None` until a sync.
    synced: Option<ValueRef>,
    /// `None`: never (refreshInterval 0).
    next_check: Option<Instant>,
    failures: u32,
    /// What the policy said at the last due refresh, for (generation, version id).
    judgement: Option<(Option<i64>, String, Judgement)>,
}

impl Schedule {
    fn blank(ps: &ProtectedSecret) -> Self {
        Schedule {
            namespace: ps.namespace().unwrap_or_default(),
            name: ps.name_any(),
            generation: None,
            synced: None,
            next_check: Some(Instant::now()),
            failures: 0,
            judgement: None,
        }
    }
}

impl Shared {
    /// `batch_window`: how long concurrent AWS reads are collected into one call.
    pub fn new(metrics: SecretSyncMetrics, batch_window: Duration, aws: AwsFacts) -> Self {
        Shared {
            metrics,
            key: ContentKey::random(),
            aws,
            objects: Mutex::default(),
            metadata: Window::new(batch_window),
            values: Window::new(batch_window),
            recorder: OnceLock::new(),
        }
    }

    fn objects(&self) -> std::sync::MutexGuard<'_, Objects> {
        self.objects.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The version `ps` synced, while its refresh is not yet due and its spec unchanged.
    pub(super) fn remembered(&self, ps: &ProtectedSecret) -> Option<String> {
        let objects = self.objects();
        let entry = objects.schedule.get(&uid(ps))?;
        let due = entry.next_check.is_some_and(|at| Instant::now() >= at);
        let synced = entry.synced.as_ref().filter(|_| entry.generation == ps.meta().generation && !due)?;
        Some(synced.version_id.clone())
    }

    /// Notes a successful sync of the version `synced`, keyed as it was read (a role session's
    /// or another region's key is not the one the spec alone gives); the next check is `refresh`
    /// from now. The version it held before is let go.
    pub(super) fn remember(&self, ps: &ProtectedSecret, synced: ValueRef, refresh: Option<Duration>) {
        let now = Instant::now();
        let mut objects = self.objects();
        *objects.holders.entry(synced.clone()).or_default() += 1;
        let before = objects.schedule.remove(&uid(ps));
        let entry = Schedule {
            generation: ps.meta().generation,
            synced: Some(synced),
            next_check: refresh.map(|r| now + r),
            judgement: before.as_ref().and_then(|b| b.judgement.clone()),
            ..Schedule::blank(ps)
        };
        objects.schedule.insert(uid(ps), entry);
        if let Some(before) = before {
            self.release(&mut objects.holders, before.synced.as_ref());
        }
    }

    /// Notes what the policy said of `ps` at `version_id`.
    pub(super) fn judged(&self, ps: &ProtectedSecret, version_id: &str, judgement: &Judgement) {
        let mut objects = self.objects();
        let entry = objects.schedule.entry(uid(ps)).or_insert_with(|| Schedule::blank(ps));
        entry.judgement = Some((ps.meta().generation, version_id.to_string(), judgement.clone()));
    }

    /// What the policy said of `ps` at `version_id` when last judged, for its current spec.
    pub(super) fn judgement(&self, ps: &ProtectedSecret, version_id: &str) -> Option<Judgement> {
        let objects = self.objects();
        let (generation, version, judgement) = objects.schedule.get(&uid(ps))?.judgement.as_ref()?;
        (*generation == ps.meta().generation && version == version_id).then(|| judgement.clone())
    }

    /// Lets go of a version an object held; the last holder takes its value out of the cache.
    fn release(&self, holders: &mut HashMap<ValueRef, usize>, synced: Option<&ValueRef>) {
        let Some(synced) = synced else { return };
        let Some(count) = holders.get_mut(synced) else { return };
        *count -= 1;
        if *count == 0 {
            holders.remove(synced);
            self.aws.forget_value(synced);
        }
    }

    /// Counts a failure of `ps` and returns how long to wait before trying again.
    pub(super) fn backoff(&self, ps: &ProtectedSecret) -> Duration {
        let mut objects = self.objects();
        let entry = objects.schedule.entry(uid(ps)).or_insert_with(|| Schedule::blank(ps));
        entry.failures = entry.failures.saturating_add(1);
        let wait = BACKOFF_BASE.saturating_mul(1 << entry.failures.min(8).saturating_sub(1)).min(BACKOFF_MAX);
        jitter(wait)
    }

    /// Drops what is kept about a deleted ProtectedSecret.
    pub(super) fn forget(&self, ps: &ProtectedSecret) {
        let mut objects = self.objects();
        if let Some(entry) = objects.schedule.remove(&uid(ps)) {
            self.release(&mut objects.holders, entry.synced.as_ref());
        }
        self.metrics.forget(&ps.namespace().unwrap_or_default(), &ps.name_any());
    }

    /// Drops what is kept about the objects of `scope` (`None`: every namespace) that are gone:
    /// those `exists(namespace, name, uid)` denies, deleted while no watch saw it. A series is
    /// kept while an object of that name exists, whatever its uid.
    pub(super) fn forget_missing(
        &self,
        scope: Option<&str>,
        exists: impl Fn(&str, &str, Option<&str>) -> bool,
    ) {
        let mut objects = self.objects();
        let Objects { schedule, holders } = &mut *objects;
        schedule.retain(|uid, entry| {
            if scope.is_some_and(|namespace| namespace != entry.namespace)
                || exists(&entry.namespace, &entry.name, Some(uid))
            {
                return true;
            }
            if !exists(&entry.namespace, &entry.name, None) {
                self.metrics.forget(&entry.namespace, &entry.name);
            }
            self.release(holders, entry.synced.as_ref());
            false
        });
    }

    pub(super) fn recorder(&self, client: &kube::Client) -> &Recorder {
        self.recorder.get_or_init(|| {
            let reporter = Reporter { controller: "dpo".into(), instance: std::env::var("POD_NAME").ok() };
            Recorder::new(client.clone(), reporter)
        })
    }

    /// Metadata of one secret no older than `max_age`, read together with concurrent
    /// reconciles' reads.
    pub(super) async fn metadata(
        &self,
        target: &Target,
        secret_id: &str,
        max_age: Duration,
    ) -> Result<SecretFacts, AwsError> {
        let aws = &self.aws;
        aws.forget_secret_metadata(target, secret_id, max_age);
        let batch_aws = aws.clone();
        let answer = self
            .metadata
            .get((target.clone(), secret_id.to_string()), move |keys| async move {
                let mut by_target: HashMap<Target, Vec<String>> = HashMap::new();
                for (target, id) in keys {
                    by_target.entry(target).or_default().push(id);
                }
                let mut answers = HashMap::new();
                for (target, ids) in by_target {
                    for (id, result) in batch_aws.secrets(&target, &ids).await {
                        answers.insert((target.clone(), id), result);
                    }
                }
                answers
            })
            .await;
        match answer {
            Some(result) => result,
            None => aws.secret(target, secret_id).await,
        }
    }

    /// The value of one version, read together with concurrent reconciles' reads.
    pub(super) async fn value(&self, wanted: ValueRef) -> Result<SecretValue, AwsError> {
        let aws = &self.aws;
        let batch_aws = aws.clone();
        let answer =
            self.values.get(wanted.clone(), move |keys| async move { batch_aws.values(&keys).await }).await;
        match answer {
            Some(result) => result,
            None => aws.value(&wanted.target, &wanted.secret_id, &wanted.version_id).await,
        }
    }
}

pub(super) fn uid(ps: &ProtectedSecret) -> String {
    ps.uid().unwrap_or_default()
}

/// `wait` give or take [`JITTER`].
pub(super) fn jitter(wait: Duration) -> Duration {
    wait.mul_f64(1.0 + JITTER * (2.0 * fastrand::f64() - 1.0))
}
