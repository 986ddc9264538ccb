//! The one cache for every AWS fact: keyed by (role, region, fact kind, id), a TTL per kind,
//! single-flight loads, bounded size with least-recently-used eviction (in entries, and in bytes
//! for secret values), short negative caching of NotFound, and stale answers while AWS is
//! throttling or unavailable.

use super::error::AwsError;
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Whose view of AWS a fact is: the region and the assumed role (none: the controller's own),
/// and the namespace the role's session is for, as IAM may let each see other things.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Scope {
    pub region: String,
    pub role_arn: Option<String>,
    pub session: Option<super::RoleSession>,
}

/// What a cached entry holds; each kind has its own TTL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FactKind {
    SecretMetadata,
    SecretValue,
    KmsKey,
    KmsKeyRotation,
    Certificate,
    CertificateList,
    Volume,
    EbsDefault,
    WebAcl,
}

/// A type the cache holds, tied to its kind so that a key always finds the type it stored.
pub(crate) trait Cached: Clone + Send + Sync + 'static {
    const KIND: FactKind;

    /// Secret bytes it holds, which count against [`CacheSettings::value_bytes`].
    fn bytes(&self) -> usize {
        0
    }
}

/// Default of [`CacheSettings::value_bytes`]: 32 MiB, some 500 values of the largest size
/// Secrets Manager stores (64 KiB), or thousands of typical ones.
pub const DEFAULT_VALUE_BYTES: usize = 32 * 1024 * 1024;

/// How long facts stay fresh. `None`: until evicted.
#[derive(Clone, Debug)]
pub struct CacheSettings {
    /// Entries kept at most; the least recently used are evicted beyond it.
    pub capacity: usize,
    /// Bytes of secret values kept at most; the least recently used values are dropped beyond
    /// it, and a value larger than it is not kept at all.
    pub value_bytes: usize,
    /// A ProtectedSecret's due refresh asks for metadata newer than what its previous one used,
    /// and no older than its interval; this bounds how long a read ahead of it is kept.
    pub secret_metadata_ttl: Duration,
    pub kms_key_ttl: Duration,
    pub certificate_ttl: Duration,
    pub certificate_list_ttl: Duration,
    /// Encryption of an existing volume never changes; only its absence might.
    pub volume_ttl: Duration,
    pub ebs_default_ttl: Duration,
    /// How long a NotFound is believed.
    pub not_found_ttl: Duration,
    /// How old a fact may be and still be served while AWS is throttling or unavailable.
    pub max_stale: Duration,
}

impl Default for CacheSettings {
    fn default() -> Self {
        const MINUTE: Duration = Duration::from_secs(60);
        Self {
            capacity: 10_000,
            value_bytes: DEFAULT_VALUE_BYTES,
            secret_metadata_ttl: 60 * MINUTE,
            kms_key_ttl: 30 * MINUTE,
            certificate_ttl: 30 * MINUTE,
            certificate_list_ttl: 10 * MINUTE,
            volume_ttl: 360 * MINUTE,
            ebs_default_ttl: 30 * MINUTE,
            not_found_ttl: Duration::from_secs(30),
            max_stale: 60 * MINUTE,
        }
    }
}

impl CacheSettings {
    fn ttl(&self, kind: FactKind) -> Option<Duration> {
        match kind {
            FactKind::SecretMetadata => Some(self.secret_metadata_ttl),
            // A version's value never changes: keep it until evicted.
            FactKind::SecretValue => None,
            FactKind::KmsKey | FactKind::KmsKeyRotation => Some(self.kms_key_ttl),
            FactKind::Certificate => Some(self.certificate_ttl),
            FactKind::CertificateList => Some(self.certificate_list_ttl),
            FactKind::Volume => Some(self.volume_ttl),
            FactKind::EbsDefault => Some(self.ebs_default_ttl),
            // A load balancer's Web ACL is replaced as rarely as its certificates.
            FactKind::WebAcl => Some(self.certificate_ttl),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    scope: Scope,
    kind: FactKind,
    id: String,
}

type Value = Arc<dyn Any + Send + Sync>;

/// What a load produced; every waiter of a single-flight load sees the same.
#[derive(Clone)]
struct Loaded {
    result: Result<Value, AwsError>,
    fetched: Instant,
    /// AWS failed transiently and the previous value is served instead.
    stale: bool,
    bytes: usize,
}

type Load = Shared<BoxFuture<'static, Loaded>>;

enum State {
    Ready { result: Result<Value, AwsError>, fetched: Instant, expires: Option<Instant> },
    Loading(Load),
}

struct Entry {
    state: State,
    last_used: u64,
    /// [`Cached::bytes`] of what it holds.
    bytes: usize,
}

#[derive(Default)]
struct Entries {
    map: HashMap<Key, Entry>,
    clock: u64,
    /// The sum of the entries' bytes.
    bytes: usize,
}

/// What a lookup found, decided under the lock and acted on outside it.
enum Lookup {
    Fresh(Result<Value, AwsError>),
    Wait(Load),
}

pub struct FactCache {
    settings: CacheSettings,
    entries: Mutex<Entries>,
}

impl FactCache {
    pub fn new(settings: CacheSettings) -> Self {
        Self { settings, entries: Mutex::default() }
    }

    /// Entries currently held (fresh, stale or loading).
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of secret values held now.
    pub fn value_bytes(&self) -> usize {
        self.lock().bytes
    }

    /// The fact for `id`, loading it with `load` when it is missing or expired. Concurrent
    /// callers for one key share one load.
    pub(crate) async fn get_or_load<T, F, Fut>(&self, scope: &Scope, id: &str, load: F) -> Result<T, AwsError>
    where
        T: Cached,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, AwsError>> + Send + 'static,
    {
        let key = Key { scope: scope.clone(), kind: T::KIND, id: id.to_string() };
        let pending = match self.lookup(&key, load) {
            Lookup::Fresh(result) => return downcast(result),
            Lookup::Wait(pending) => pending,
        };
        let loaded = pending.clone().await;
        self.settle(&key, &pending, &loaded);
        downcast(loaded.result)
    }

    /// A fresh fact, without loading it.
    pub(crate) fn peek<T: Cached>(&self, scope: &Scope, id: &str) -> Option<Result<T, AwsError>> {
        let key = Key { scope: scope.clone(), kind: T::KIND, id: id.to_string() };
        let mut entries = self.lock();
        let clock = entries.tick();
        let entry = entries.map.get_mut(&key)?;
        match &entry.state {
            State::Ready { result, expires, .. } if is_fresh(*expires, Instant::now()) => {
                entry.last_used = clock;
                Some(downcast(result.clone()))
            }
            _ => None,
        }
    }

    /// When the fact held for `id` was fetched from AWS (an answer served stale keeps the time
    /// of its fetch).
    pub(crate) fn fetched<T: Cached>(&self, scope: &Scope, id: &str) -> Option<Instant> {
        let key = Key { scope: scope.clone(), kind: T::KIND, id: id.to_string() };
        match &self.lock().map.get(&key)?.state {
            State::Ready { fetched, .. } => Some(*fetched),
            State::Loading(_) => None,
        }
    }

    /// How long a fact of `kind` is served before it is read again.
    pub(crate) fn ttl(&self, kind: FactKind) -> Option<Duration> {
        self.settings.ttl(kind)
    }

    /// Stores a fact learnt in bulk (a ListSecrets page, a DescribeVolumes batch). Only values
    /// and NotFound are kept; a load in flight for the key is left alone.
    pub(crate) fn put<T: Cached>(&self, scope: &Scope, id: &str, result: Result<T, AwsError>) {
        if matches!(&result, Err(e) if !e.is_not_found()) {
            return;
        }
        let key = Key { scope: scope.clone(), kind: T::KIND, id: id.to_string() };
        let mut entries = self.lock();
        if matches!(entries.map.get(&key), Some(Entry { state: State::Loading(_), .. })) {
            return;
        }
        let bytes = result.as_ref().map_or(0, Cached::bytes);
        if bytes > self.settings.value_bytes {
            entries.remove(&key);
            return;
        }
        let now = Instant::now();
        let result = result.map(|v| Arc::new(v) as Value);
        let expires = self.expiry(T::KIND, &result, now);
        let clock = entries.tick();
        entries.insert(
            key,
            Entry { state: State::Ready { result, fetched: now, expires }, last_used: clock, bytes },
        );
        self.evict(&mut entries);
    }

    /// Drops the fact for `id` if it was fetched `max_age` ago or earlier, so that the next
    /// lookup asks AWS and, should AWS fail, fails too instead of answering with the old value.
    pub(crate) fn forget_older_than<T: Cached>(&self, scope: &Scope, id: &str, max_age: Duration) {
        let key = Key { scope: scope.clone(), kind: T::KIND, id: id.to_string() };
        let mut entries = self.lock();
        let old = matches!(
            entries.map.get(&key),
            Some(Entry { state: State::Ready { fetched, .. }, .. }) if fetched.elapsed() >= max_age
        );
        if old {
            entries.remove(&key);
        }
    }

    /// Drops the fact for `id`; a load in flight is left to finish.
    pub(crate) fn forget<T: Cached>(&self, scope: &Scope, id: &str) {
        self.forget_older_than::<T>(scope, id, Duration::ZERO);
    }

    fn lookup<T, F, Fut>(&self, key: &Key, load: F) -> Lookup
    where
        T: Cached,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, AwsError>> + Send + 'static,
    {
        let now = Instant::now();
        let mut entries = self.lock();
        let clock = entries.tick();
        let mut stale = None;
        if let Some(entry) = entries.map.get_mut(key) {
            entry.last_used = clock;
            match &entry.state {
                State::Ready { result, expires, .. } if is_fresh(*expires, now) => {
                    return Lookup::Fresh(result.clone());
                }
                State::Loading(pending) => return Lookup::Wait(pending.clone()),
                State::Ready { result: Ok(value), fetched, .. }
                    if now.duration_since(*fetched) < self.settings.max_stale =>
                {
                    stale = Some((value.clone(), *fetched, entry.bytes));
                }
                State::Ready { .. } => {}
            }
        }
        let fut = load();
        let pending = async move {
            match (fut.await, stale) {
                (Ok(value), _) => Loaded {
                    bytes: value.bytes(),
                    result: Ok(Arc::new(value)),
                    fetched: Instant::now(),
                    stale: false,
                },
                (Err(err), Some((value, fetched, bytes))) if err.class().is_retryable() => {
                    tracing::warn!(error = %err, "serving a cached AWS fact while AWS fails");
                    Loaded { result: Ok(value), fetched, stale: true, bytes }
                }
                (Err(err), _) => Loaded { result: Err(err), fetched: Instant::now(), stale: false, bytes: 0 },
            }
        }
        .boxed()
        .shared();
        entries.insert(
            key.clone(),
            Entry { state: State::Loading(pending.clone()), last_used: clock, bytes: 0 },
        );
        self.evict(&mut entries);
        Lookup::Wait(pending)
    }

    /// Records a finished load, once: the first waiter to get here does it.
    fn settle(&self, key: &Key, pending: &Load, loaded: &Loaded) {
        let mut entries = self.lock();
        let Some(entry) = entries.map.get(key) else { return };
        if !matches!(&entry.state, State::Loading(current) if current.ptr_eq(pending)) {
            return;
        }
        let last_used = entry.last_used;
        let now = Instant::now();
        let expires = if loaded.stale {
            // Ask AWS again soon, but not on every call while it is struggling.
            Some(now + self.settings.not_found_ttl)
        } else {
            self.expiry(key.kind, &loaded.result, now)
        };
        match &loaded.result {
            Err(e) if !e.is_not_found() => entries.remove(key),
            _ if loaded.bytes > self.settings.value_bytes => entries.remove(key),
            result => {
                let state = State::Ready { result: result.clone(), fetched: loaded.fetched, expires };
                entries.insert(key.clone(), Entry { state, last_used, bytes: loaded.bytes });
                self.evict(&mut entries);
            }
        }
    }

    fn expiry(&self, kind: FactKind, result: &Result<Value, AwsError>, now: Instant) -> Option<Instant> {
        match result {
            Ok(_) => self.settings.ttl(kind).map(|ttl| now + ttl),
            Err(_) => Some(now + self.settings.not_found_ttl),
        }
    }

    /// Drops the least recently used settled entries once over capacity, and values once over
    /// their byte bound, down to nine tenths of it so that the sort is amortised.
    fn evict(&self, entries: &mut Entries) {
        let capacity = self.settings.capacity.max(1);
        if entries.map.len() > capacity {
            let target = capacity - capacity / 10;
            entries.drop_least_recent(|_| true, |entries| entries.map.len() > target);
        }
        let bound = self.settings.value_bytes;
        if entries.bytes > bound {
            let target = bound - bound / 10;
            entries.drop_least_recent(|entry| entry.bytes > 0, |entries| entries.bytes > target);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Entries> {
        // A panic while holding the lock cannot leave the map inconsistent: keep going.
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Entries {
    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    fn insert(&mut self, key: Key, entry: Entry) {
        self.bytes += entry.bytes;
        if let Some(old) = self.map.insert(key, entry) {
            self.bytes -= old.bytes;
        }
    }

    fn remove(&mut self, key: &Key) {
        if let Some(old) = self.map.remove(key) {
            self.bytes -= old.bytes;
        }
    }

    /// Drops the settled entries `eligible` picks, least recently used first, while `over`.
    fn drop_least_recent(&mut self, eligible: impl Fn(&Entry) -> bool, over: impl Fn(&Self) -> bool) {
        let mut settled: Vec<(u64, Key)> = self
            .map
            .iter()
            .filter(|(_, e)| matches!(e.state, State::Ready { .. }) && eligible(e))
            .map(|(k, e)| (e.last_used, k.clone()))
            .collect();
        settled.sort_unstable_by_key(|(used, _)| *used);
        for (_, key) in settled {
            if !over(self) {
                break;
            }
            self.remove(&key);
        }
    }
}

fn is_fresh(expires: Option<Instant>, now: Instant) -> bool {
    expires.is_none_or(|at| now < at)
}

fn downcast<T: Cached>(result: Result<Value, AwsError>) -> Result<T, AwsError> {
    let value = result?;
    // Keys carry T::KIND, so a key only ever holds a T; stay total anyway.
    value.downcast_ref::<T>().cloned().ok_or(AwsError::Invalid {
        action: "cache",
        message: format!("cached fact of kind {:?} has an unexpected type", T::KIND),
    })
}

#[cfg(test)]
mod tests;
