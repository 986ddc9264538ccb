//! Collects the AWS reads of reconciles that run at about the same time (a start-up burst, a
//! refresh wave) into one bulk call: metadata through `SecretsApi::secrets` (ListSecrets pages)
//! and values through `SecretsApi::values` (BatchGetSecretValue).

use crate::controller::lock;
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

type Waiting<K, V> = Vec<(K, oneshot::Sender<V>)>;

/// Requests arriving within `window` of the first one are answered by one `flush`.
pub struct Window<K, V> {
    window: Duration,
    pending: Arc<Mutex<Waiting<K, V>>>,
}

impl<K, V> Window<K, V>
where
    K: Clone + Eq + Hash + Send + 'static,
    V: Clone + Send + 'static,
{
    pub fn new(window: Duration) -> Self {
        Window { window, pending: Arc::default() }
    }

    /// The answer for `key`, from the batch it joins. `None` when the batch did not answer it.
    pub async fn get<F, Fut>(&self, key: K, flush: F) -> Option<V>
    where
        F: FnOnce(Vec<K>) -> Fut + Send + 'static,
        Fut: Future<Output = HashMap<K, V>> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let first = {
            let mut pending = lock(&self.pending);
            pending.push((key, reply));
            pending.len() == 1
        };
        if first {
            // Its own task: the batch completes even if the reconcile that opened it is cancelled.
            let pending = self.pending.clone();
            let window = self.window;
            tokio::spawn(async move {
                tokio::time::sleep(window).await;
                let batch = std::mem::take(&mut *lock(&pending));
                let keys: Vec<K> = batch.iter().map(|(k, _)| k.clone()).collect();
                let answers = flush(keys).await;
                for (key, reply) in batch {
                    if let Some(value) = answers.get(&key) {
                        // A receiver gone means its reconcile was cancelled: nothing to tell.
                        let _ = reply.send(value.clone());
                    }
                }
            });
        }
        answer.await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn concurrent_requests_share_one_flush() {
        let window = Arc::new(Window::<u32, u32>::new(Duration::from_millis(20)));
        let flushes = Arc::new(AtomicUsize::new(0));
        let asks = (0..10u32).map(|i| {
            let (window, flushes) = (window.clone(), flushes.clone());
            async move {
                window
                    .get(i % 5, move |keys| async move {
                        flushes.fetch_add(1, Ordering::SeqCst);
                        keys.into_iter().map(|k| (k, k * 10)).collect()
                    })
                    .await
            }
        });
        let answers = futures::future::join_all(asks).await;
        assert_eq!(answers, (0..10u32).map(|i| Some((i % 5) * 10)).collect::<Vec<_>>());
        assert_eq!(flushes.load(Ordering::SeqCst), 1);
        let late = window.get(7, |_| async { HashMap::new() }).await;
        assert_eq!(late, None, "a key the batch does not answer gets None, not a hang");
    }
}
