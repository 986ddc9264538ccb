//! A value the cache lets go of is wiped: this binary's allocator looks at the one allocation
//! that held a value as it is freed, before it goes back to the system (nothing freed is read),
//! and tells whether its bytes were zeroed.

mod support;

use dpo::aws::{SecretsApi, Target};
use serde_json::json;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use support::controller::{Harness, NAMESPACE};
use support::moto::{self, Seed};

/// The system allocator, which checks the watched allocation when it is freed.
struct Watching;

/// The address and length of the bytes watched (0: none), and what their free found.
static WATCHED: AtomicUsize = AtomicUsize::new(0);
static WATCHED_LEN: AtomicUsize = AtomicUsize::new(0);
static FOUND: AtomicU8 = AtomicU8::new(NOT_FREED);
const NOT_FREED: u8 = 0;
const WIPED: u8 = 1;
const NOT_WIPED: u8 = 2;

#[global_allocator]
static ALLOCATOR: Watching = Watching;

// SAFETY: every call is passed on to `System` with its arguments unchanged.
unsafe impl GlobalAlloc for Watching {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let address = ptr as usize;
        // A plain load first: every free of the process passes here.
        if address != 0
            && WATCHED.load(Ordering::Acquire) == address
            && WATCHED.compare_exchange(address, 0, Ordering::AcqRel, Ordering::Acquire).is_ok()
        {
            let len = WATCHED_LEN.load(Ordering::Acquire).min(layout.size());
            // SAFETY: the block is still allocated (it is freed below), and its first `len` bytes
            // were written with the value when it was watched: they are initialised.
            let bytes = unsafe { std::slice::from_raw_parts(ptr, len) };
            let found = if bytes.iter().all(|b| *b == 0) { WIPED } else { NOT_WIPED };
            FOUND.store(found, Ordering::Release);
        }
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Watches the allocation holding `bytes` (heap memory, not empty) until it is freed.
fn watch(bytes: &[u8]) {
    assert!(!bytes.is_empty());
    FOUND.store(NOT_FREED, Ordering::Release);
    WATCHED_LEN.store(bytes.len(), Ordering::Release);
    WATCHED.store(bytes.as_ptr() as usize, Ordering::Release);
}

fn found() -> u8 {
    FOUND.load(Ordering::Acquire)
}

/// The globals watch one allocation at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn spec(secret_id: &str) -> serde_json::Value {
    json!({"source": {"secretId": secret_id}, "data": [{"key": "password", "property": "password"}]})
}

/// Syncs `name` from a new secret holding `password`, and watches the value the cache holds for
/// it, which no reconcile holds any more.
async fn synced_and_watched(h: &Harness, name: &str, password: &str) {
    let secret_id = Seed::new().await.compliant_secret(NAMESPACE, &json!({"password": password})).await;
    h.create(name, spec(&secret_id));
    h.reconcile(name).await.unwrap();
    let version = h.object(name).status.unwrap().synced_version_id.unwrap();
    let reads = h.ctx.aws.metrics().total();
    let cached = h.ctx.aws.value(&Target::default(), &secret_id, &version).await.unwrap();
    assert_eq!(h.ctx.aws.metrics().total(), reads, "the cached value, not a new read");
    watch(cached.expose_bytes());
    drop(cached);
    assert_eq!(found(), NOT_FREED, "the cache holds it");
}

#[tokio::test]
async fn the_check_sees_a_value_freed_unwiped() {
    let _one = ONE_AT_A_TIME.lock().await;
    let plain = String::from("canary-not-wiped");
    watch(plain.as_bytes());
    drop(plain);
    assert_eq!(found(), NOT_WIPED);
}

#[tokio::test]
async fn a_version_no_object_holds_is_wiped_as_it_leaves_the_cache() {
    let _one = ONE_AT_A_TIME.lock().await;
    let h = Harness::new(moto::facts(moto::test_settings()).await);
    synced_and_watched(&h, "db", "canary-deleted").await;
    h.delete("db");
    h.reconcile("db").await.unwrap();
    assert_eq!(h.ctx.aws.cache().value_bytes(), 0);
    assert_eq!(found(), WIPED);
}

#[tokio::test]
async fn an_evicted_value_is_wiped() {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut settings = moto::test_settings();
    // Room for one of the two values.
    settings.cache.value_bytes = json!({"password": "canary-evicted"}).to_string().len() + 10;
    let h = Harness::new(moto::facts(settings).await);
    synced_and_watched(&h, "one", "canary-evicted").await;
    let secret_id =
        Seed::new().await.compliant_secret(NAMESPACE, &json!({"password": "canary-second"})).await;
    h.create("two", spec(&secret_id));
    h.reconcile("two").await.unwrap();
    assert_eq!(found(), WIPED, "one's value made room for two's");
}
