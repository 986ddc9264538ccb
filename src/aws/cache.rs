//! The one cache for every AWS fact: keyed by (role, region, fact kind, id), a TTL per kind,
//! single-flight loads, bounded size with least-recently-used eviction, short negative caching
//! of NotFound, and stale answers while AWS is throttling or unavailable.

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
}

/// How long facts stay fresh. `None`: until evicted.
#[derive(Clone, Debug)]
pub struct CacheSettings {
    /// Entries kept at most; the least recently used are evicted beyond it.
    pub capacity: usize,
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
            secret_metadata_ttl: 5 * MINUTE,
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
}

type Load = Shared<BoxFuture<'static, Loaded>>;

enum State {
    Ready { result: Result<Value, AwsError>, fetched: Instant, expires: Option<Instant> },
    Loading(Load),
}

struct Entry {
    state: State,
    last_used: u64,
}

#[derive(Default)]
struct Entries {
    map: HashMap<Key, Entry>,
    clock: u64,
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
        let now = Instant::now();
        let result = result.map(|v| Arc::new(v) as Value);
        let expires = self.expiry(T::KIND, &result, now);
        let clock = entries.tick();
        entries
            .map
            .insert(key, Entry { state: State::Ready { result, fetched: now, expires }, last_used: clock });
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
            entries.map.remove(&key);
        }
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
                    stale = Some((value.clone(), *fetched));
                }
                State::Ready { .. } => {}
            }
        }
        let fut = load();
        let pending = async move {
            match (fut.await, stale) {
                (Ok(value), _) => {
                    Loaded { result: Ok(Arc::new(value)), fetched: Instant::now(), stale: false }
                }
                (Err(err), Some((value, fetched))) if err.class().is_retryable() => {
                    tracing::warn!(error = %err, "serving a cached AWS fact while AWS fails");
                    Loaded { result: Ok(value), fetched, stale: true }
                }
                (Err(err), _) => Loaded { result: Err(err), fetched: Instant::now(), stale: false },
            }
        }
        .boxed()
        .shared();
        entries.map.insert(key.clone(), Entry { state: State::Loading(pending.clone()), last_used: clock });
        self.evict(&mut entries);
        Lookup::Wait(pending)
    }

    /// Records a finished load, once: the first waiter to get here does it.
    fn settle(&self, key: &Key, pending: &Load, loaded: &Loaded) {
        let mut entries = self.lock();
        let Some(entry) = entries.map.get_mut(key) else { return };
        if !matches!(&entry.state, State::Loading(current) if current.ptr_eq(pending)) {
            return;
        }
        let now = Instant::now();
        let expires = if loaded.stale {
            // Ask AWS again soon, but not on every call while it is struggling.
            Some(now + self.settings.not_found_ttl)
        } else {
            self.expiry(key.kind, &loaded.result, now)
        };
        match (&loaded.result, expires) {
            (Err(e), _) if !e.is_not_found() => {
                entries.map.remove(key);
            }
            (result, expires) => {
                entry.state = State::Ready { result: result.clone(), fetched: loaded.fetched, expires };
            }
        }
    }

    fn expiry(&self, kind: FactKind, result: &Result<Value, AwsError>, now: Instant) -> Option<Instant> {
        match result {
            Ok(_) => self.settings.ttl(kind).map(|ttl| now + ttl),
            Err(_) => Some(now + self.settings.not_found_ttl),
        }
    }

    /// Drops the least recently used settled entries once over capacity (a tenth at a time, so
    /// that the sort is amortised).
    fn evict(&self, entries: &mut Entries) {
        let capacity = self.settings.capacity.max(1);
        if entries.map.len() <= capacity {
            return;
        }
        let target = capacity - capacity / 10;
        let mut settled: Vec<(u64, Key)> = entries
            .map
            .iter()
            .filter(|(_, e)| matches!(e.state, State::Ready { .. }))
            .map(|(k, e)| (e.last_used, k.clone()))
            .collect();
        settled.sort_unstable_by_key(|(used, _)| *used);
        let excess = entries.map.len().saturating_sub(target);
        for (_, key) in settled.into_iter().take(excess) {
            entries.map.remove(&key);
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
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[derive(Clone, Debug, PartialEq)]
    struct Fact(u32);
    impl Cached for Fact {
        const KIND: FactKind = FactKind::KmsKey;
    }

    fn scope() -> Scope {
        Scope { region: "us-east-1".into(), role_arn: None, session: None }
    }

    fn counting(
        calls: &Arc<AtomicU32>,
        result: Result<u32, AwsError>,
    ) -> impl Future<Output = Result<Fact, AwsError>> + Send + 'static {
        let calls = calls.clone();
        async move {
            calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            result.map(Fact)
        }
    }

    fn transient() -> AwsError {
        AwsError::Transient { action: "kms:DescribeKey", attempts: 3, message: "500".into() }
    }

    #[tokio::test]
    async fn concurrent_asks_share_one_load() {
        let cache = FactCache::new(CacheSettings::default());
        let calls = Arc::new(AtomicU32::new(0));
        let scope = scope();
        let asks = (0..50).map(|_| cache.get_or_load(&scope, "k", || counting(&calls, Ok(7))));
        let results = futures::future::join_all(asks).await;
        assert!(results.iter().all(|r| r == &Ok(Fact(7))));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(cache.get_or_load(&scope, "k", || counting(&calls, Ok(8))).await, Ok(Fact(7)));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn not_found_is_cached_briefly_and_other_errors_not_at_all() {
        let cache =
            FactCache::new(CacheSettings { not_found_ttl: Duration::from_millis(50), ..Default::default() });
        let calls = Arc::new(AtomicU32::new(0));
        let missing = || AwsError::NotFound { kind: "KMS key", id: "k".into() };
        assert_eq!(
            cache.get_or_load(&scope(), "k", || counting(&calls, Err(missing()))).await,
            Err(missing())
        );
        assert_eq!(cache.get_or_load(&scope(), "k", || counting(&calls, Ok(1))).await, Err(missing()));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(cache.get_or_load(&scope(), "k", || counting(&calls, Ok(1))).await, Ok(Fact(1)));

        assert_eq!(
            cache.get_or_load(&scope(), "e", || counting(&calls, Err(transient()))).await,
            Err(transient())
        );
        assert_eq!(cache.get_or_load(&scope(), "e", || counting(&calls, Ok(2))).await, Ok(Fact(2)));
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn an_expired_fact_is_served_while_aws_fails() {
        let cache = FactCache::new(CacheSettings { kms_key_ttl: Duration::ZERO, ..Default::default() });
        let calls = Arc::new(AtomicU32::new(0));
        assert_eq!(cache.get_or_load(&scope(), "k", || counting(&calls, Ok(1))).await, Ok(Fact(1)));
        assert_eq!(
            cache.get_or_load(&scope(), "k", || counting(&calls, Err(transient()))).await,
            Ok(Fact(1))
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_fact_older_than_asked_is_loaded_again_and_a_younger_one_is_not() {
        let cache = FactCache::new(CacheSettings::default());
        let calls = Arc::new(AtomicU32::new(0));
        assert_eq!(cache.get_or_load(&scope(), "k", || counting(&calls, Ok(1))).await, Ok(Fact(1)));
        cache.forget_older_than::<Fact>(&scope(), "k", Duration::from_secs(60));
        assert_eq!(cache.get_or_load(&scope(), "k", || counting(&calls, Ok(2))).await, Ok(Fact(1)));
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        tokio::time::sleep(Duration::from_millis(30)).await;
        cache.forget_older_than::<Fact>(&scope(), "k", Duration::from_millis(25));
        assert_eq!(cache.peek::<Fact>(&scope(), "k"), None);
        assert_eq!(
            cache.get_or_load(&scope(), "k", || counting(&calls, Err(transient()))).await,
            Err(transient()),
            "a value older than asked for is not an answer, even while AWS fails"
        );
        assert_eq!(cache.get_or_load(&scope(), "k", || counting(&calls, Ok(3))).await, Ok(Fact(3)));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn eviction_keeps_the_recently_used() {
        let cache = FactCache::new(CacheSettings { capacity: 10, ..Default::default() });
        cache.put(&scope(), "hot", Ok(Fact(0)));
        for i in 0..30 {
            cache.put(&scope(), &format!("k{i}"), Ok(Fact(i)));
            assert_eq!(cache.peek::<Fact>(&scope(), "hot"), Some(Ok(Fact(0))));
        }
        assert!(cache.len() <= 10, "{}", cache.len());
        assert_eq!(cache.peek::<Fact>(&scope(), "k0"), None);
        assert_eq!(cache.peek::<Fact>(&scope(), "k29"), Some(Ok(Fact(29))));
    }

    #[tokio::test]
    async fn scopes_do_not_share_entries() {
        let cache = FactCache::new(CacheSettings::default());
        cache.put(&scope(), "k", Ok(Fact(1)));
        let other = Scope { region: "eu-west-1".into(), ..scope() };
        assert_eq!(cache.peek::<Fact>(&other, "k"), None);
        let role = Scope { role_arn: Some("arn:aws:iam::111111111111:role/r".into()), ..scope() };
        assert_eq!(cache.peek::<Fact>(&role, "k"), None);
    }
}
