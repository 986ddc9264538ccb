//! The stores of the kinds policies govern: slim reflectors of every object, and the wait for
//! their first list.

use super::PolicyError;
use futures::{FutureExt, Stream};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::time::{Duration, Instant};

/// How long a reconcile waits for the governed kinds' first list before retrying later.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a reconcile looks whether a governed kind has been listed.
const READY_POLL: Duration = Duration::from_millis(50);
/// kubectl's copy of the object as last applied.
pub(super) const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drops what the apiserver and kubectl add to objects and no policy reads: `managedFields` and
/// the last-applied configuration, a copy of the object. Together they are often half of it.
pub fn slim<T: Resource>(object: &mut T) {
    let meta = object.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
    }
}

/// A reflector over every object of kind `T`: the store of [`slim`] objects, and the stream of
/// changed objects (deleted ones included) that keeps the store filled while it is polled.
pub fn reflect<T>(
    client: &kube::Client,
) -> (Store<T>, impl Stream<Item = Result<T, watcher::Error>> + Send + 'static)
where
    T: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let objects = watcher(Api::all(client.clone()), watcher::Config::default()).modify(slim);
    let stream = reflector::reflector(writer, objects).default_backoff().touched_objects();
    (reader, stream)
}

/// An empty store that is ready: the stand-in for a kind the cluster does not serve.
pub fn empty_store<T>() -> Store<T>
where
    T: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    let (reader, mut writer) = reflector::store();
    writer.apply_watcher_event(&watcher::Event::Init);
    writer.apply_watcher_event(&watcher::Event::InitDone);
    reader
}

/// Waits for a store's first list. `Store::wait_until_ready` wakes only the last task to wait,
/// and the reconciles of several policies wait at once after a start, so this polls instead.
pub async fn ready<T>(store: &Store<T>, kind: &'static str) -> Result<(), PolicyError>
where
    T: Resource<DynamicType = ()> + Clone + 'static,
{
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        match store.wait_until_ready().now_or_never() {
            Some(Ok(())) => return Ok(()),
            Some(Err(_)) => return Err(PolicyError::NotReady(kind)),
            None if Instant::now() >= deadline => return Err(PolicyError::NotReady(kind)),
            None => tokio::time::sleep(READY_POLL).await,
        }
    }
}
