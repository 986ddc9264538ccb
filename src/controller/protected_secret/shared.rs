//! What the ProtectedSecret controller keeps between reconciles: the refresh schedule with
//! per-object backoff, which cached values objects hold, what the policy said at the last due
//! refresh, AWS read batching, the HMAC key, metrics and the event recorder. What it keeps of an
//! object goes with the object.

use super::batch::Window;
use super::target::{ContentKey, Echoes};
use crate::api::ProtectedSecret;
use crate::aws::{AwsError, AwsFacts, SecretValue, SecretsApi, Target, ValueRef};
use crate::controller::events::EventPublisher;
use crate::controller::lock;
use crate::metrics::SecretSyncMetrics;
use crate::policy::Judgement;
use crate::policy::facts::SecretFacts;
use kube::runtime::events::Reporter;
use kube::{Resource, ResourceExt};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Fraction of the refresh interval added or taken at random, so that objects created together
/// do not refresh together.
const JITTER: f64 = 0.1;

/// Shortest wait for a refresh whose metadata was read a whole interval ago or earlier.
const MIN_REFRESH_WAIT: Duration = Duration::from_secs(1);

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
    pub(super) echoes: Echoes,
    aws: AwsFacts,
    /// Shared with the metadata batches, which read ahead for the objects due soon.
    objects: Arc<Mutex<Objects>>,
    metadata: MetadataWindow,
    values: ValueWindow,
    recorder: OnceLock<EventPublisher>,
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
    /// The refresh interval, unjittered (`None`: never).
    interval: Option<Duration>,
    /// When the metadata of the last due refresh was read from AWS: the next refresh is an
    /// interval after it, and wants metadata read later.
    checked: Option<Instant>,
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
            interval: None,
            checked: None,
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
            echoes: Echoes::default(),
            aws,
            objects: Arc::default(),
            metadata: Window::new(batch_window),
            values: Window::new(batch_window),
            recorder: OnceLock::new(),
        }
    }

    fn objects(&self) -> std::sync::MutexGuard<'_, Objects> {
        lock(&self.objects)
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
    /// or another region's key is not the one the spec alone gives). The version it held before
    /// is let go. Returns the wait until the next refresh: `interval` (jittered) after the
    /// metadata of a due refresh was read, `checked`; a reconcile between refreshes (a drift
    /// repair) keeps the refresh it had.
    pub(super) fn remember(
        &self,
        ps: &ProtectedSecret,
        synced: ValueRef,
        checked: Option<Instant>,
        interval: Option<Duration>,
    ) -> Option<Duration> {
        let now = Instant::now();
        let mut objects = self.objects();
        *objects.holders.entry(synced.clone()).or_default() += 1;
        let before = objects.schedule.remove(&uid(ps));
        let kept = before.as_ref().filter(|b| checked.is_none() && b.generation == ps.meta().generation);
        let next_check = match (interval, checked, kept.and_then(|b| b.next_check)) {
            (None, ..) => None,
            (Some(interval), Some(checked), _) => Some(checked + jitter(interval)),
            (Some(_), None, Some(kept)) => Some(kept),
            (Some(interval), None, None) => Some(now + jitter(interval)),
        };
        let entry = Schedule {
            generation: ps.meta().generation,
            synced: Some(synced),
            next_check,
            interval,
            checked: checked.or(kept.and_then(|b| b.checked)),
            judgement: before.as_ref().and_then(|b| b.judgement.clone()),
            ..Schedule::blank(ps)
        };
        objects.schedule.insert(uid(ps), entry);
        if let Some(before) = before {
            self.release(&mut objects.holders, before.synced.as_ref());
        }
        next_check.map(|at| at.saturating_duration_since(now).max(MIN_REFRESH_WAIT))
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
        self.echoes.forget(ps);
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

    pub(super) fn recorder(&self, client: &kube::Client) -> &EventPublisher {
        self.recorder.get_or_init(|| {
            let reporter = Reporter { controller: "dpo".into(), instance: std::env::var("POD_NAME").ok() };
            EventPublisher::new(client.clone(), reporter)
        })
    }

    /// Metadata of one secret for a due refresh of `ps`, and when it was read: newer than what
    /// its previous refresh used, and no older than `interval`. Read together with concurrent
    /// reconciles' reads and ahead for the objects due within half their interval, so that a
    /// refresh wave costs a few ListSecrets pages.
    pub(super) async fn metadata(
        &self,
        ps: &ProtectedSecret,
        target: &Target,
        secret_id: &str,
        interval: Duration,
    ) -> Result<(SecretFacts, Instant), AwsError> {
        let aws = &self.aws;
        aws.forget_secret_metadata(target, secret_id, self.max_age(ps, interval));
        let (batch_aws, objects) = (aws.clone(), self.objects.clone());
        let answer = self
            .metadata
            .get((target.clone(), secret_id.to_string()), move |keys| async move {
                let mut by_target: HashMap<Target, Vec<String>> = HashMap::new();
                for (target, id) in keys {
                    by_target.entry(target).or_default().push(id);
                }
                let mut answers = HashMap::new();
                for (target, ids) in by_target {
                    let ahead = due_soon(&lock(&objects), &batch_aws, &target, Instant::now());
                    batch_aws.read_ahead_secret_metadata(&target, &[ids.clone(), ahead].concat()).await;
                    for (id, result) in batch_aws.secrets(&target, &ids).await {
                        answers.insert((target.clone(), id), result);
                    }
                }
                answers
            })
            .await;
        let facts = match answer {
            Some(result) => result,
            None => aws.secret(target, secret_id).await,
        }?;
        // A load of the same secret in flight hides when this answer was read: just now.
        Ok((facts, aws.secret_metadata_fetched(target, secret_id).unwrap_or_else(Instant::now)))
    }

    /// How old the metadata for a due refresh of `ps` may be: read after its previous refresh's
    /// (for the same spec), and within `interval`.
    fn max_age(&self, ps: &ProtectedSecret, interval: Duration) -> Duration {
        let objects = self.objects();
        let previous = objects.schedule.get(&uid(ps)).filter(|e| e.generation == ps.meta().generation);
        previous.and_then(|e| e.checked).map_or(interval, |checked| checked.elapsed().min(interval))
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

/// The secrets of `target` that objects due within half their interval synced, their cached
/// metadata dropped where it is not newer than what the object's last refresh used.
fn due_soon(objects: &Objects, aws: &AwsFacts, target: &Target, now: Instant) -> Vec<String> {
    let kept = aws.secret_metadata_ttl();
    let mut ids = HashSet::new();
    for entry in objects.schedule.values() {
        let (Some(synced), Some(next), Some(interval), Some(checked)) =
            (&entry.synced, entry.next_check, entry.interval, entry.checked)
        else {
            continue;
        };
        if synced.target != *target || next > now + (interval / 2).min(kept / 2) {
            continue;
        }
        aws.forget_secret_metadata(target, &synced.secret_id, now.saturating_duration_since(checked));
        ids.insert(synced.secret_id.clone());
    }
    ids.into_iter().collect()
}

pub(super) fn uid(ps: &ProtectedSecret) -> String {
    ps.uid().unwrap_or_default()
}

/// `wait` give or take [`JITTER`].
pub(super) fn jitter(wait: Duration) -> Duration {
    wait.mul_f64(1.0 + JITTER * (2.0 * fastrand::f64() - 1.0))
}
