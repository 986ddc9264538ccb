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
    assert_eq!(cache.get_or_load(&scope(), "k", || counting(&calls, Err(missing()))).await, Err(missing()));
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
    assert_eq!(cache.get_or_load(&scope(), "k", || counting(&calls, Err(transient()))).await, Ok(Fact(1)));
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

/// A value of so many secret bytes.
#[derive(Clone, Debug, PartialEq)]
struct Blob(usize);
impl Cached for Blob {
    const KIND: FactKind = FactKind::SecretValue;
    fn bytes(&self) -> usize {
        self.0
    }
}

fn bounded(value_bytes: usize) -> FactCache {
    FactCache::new(CacheSettings { value_bytes, ..Default::default() })
}

#[tokio::test]
async fn values_are_held_to_their_byte_bound_dropping_the_least_recently_used() {
    let cache = bounded(1_000);
    cache.put(&scope(), "hot", Ok(Blob(100)));
    for i in 0..50 {
        cache.put(&scope(), &format!("v{i}"), Ok(Blob(100)));
        assert!(cache.value_bytes() <= 1_000, "{} bytes held after v{i}", cache.value_bytes());
        assert_eq!(cache.peek::<Blob>(&scope(), "hot"), Some(Ok(Blob(100))), "used, so kept");
    }
    assert_eq!(cache.peek::<Blob>(&scope(), "v0"), None);
    assert_eq!(cache.peek::<Blob>(&scope(), "v49"), Some(Ok(Blob(100))));
    let calls = Arc::new(AtomicU32::new(0));
    let loaded = cache
        .get_or_load(&scope(), "loaded", || {
            let calls = calls.clone();
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok(Blob(600))
            }
        })
        .await;
    assert_eq!(loaded, Ok(Blob(600)));
    assert!(cache.value_bytes() <= 1_000, "{}", cache.value_bytes());
    assert_eq!(cache.peek::<Blob>(&scope(), "loaded"), Some(Ok(Blob(600))), "a load is kept too");
}

#[tokio::test]
async fn a_value_larger_than_the_bound_is_served_but_not_kept() {
    let cache = bounded(1_000);
    cache.put(&scope(), "small", Ok(Blob(10)));
    cache.put(&scope(), "huge", Ok(Blob(1_001)));
    let loaded = cache.get_or_load(&scope(), "huge-load", || async { Ok(Blob(5_000)) }).await;
    assert_eq!(loaded, Ok(Blob(5_000)));
    assert_eq!(cache.peek::<Blob>(&scope(), "huge"), None);
    assert_eq!(cache.peek::<Blob>(&scope(), "huge-load"), None);
    assert_eq!(cache.peek::<Blob>(&scope(), "small"), Some(Ok(Blob(10))), "nothing else was evicted for it");
    assert_eq!(cache.value_bytes(), 10);
}

#[tokio::test]
async fn a_forgotten_value_is_dropped_and_its_bytes_with_it() {
    let cache = bounded(1_000);
    cache.put(&scope(), "old", Ok(Blob(300)));
    cache.put(&scope(), "new", Ok(Blob(200)));
    cache.forget::<Blob>(&scope(), "old");
    assert_eq!(cache.peek::<Blob>(&scope(), "old"), None);
    assert_eq!(cache.value_bytes(), 200);
    // Facts other than values count no bytes.
    cache.put(&scope(), "fact", Ok(Fact(1)));
    assert_eq!(cache.value_bytes(), 200);
}
