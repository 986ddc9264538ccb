//! Whether the cluster the operator writes Secrets to envelope-encrypts them with a KMS key
//! (`--cluster-name`): read with `DescribeCluster` at most once a re-evaluation period, and noted
//! in the status of every ProtectedSecret. A note only: it never holds a sync back.

use crate::aws::{AwsFacts, EksApi, Target};
use crate::policy::storage::unencrypted_secrets_note;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// How soon a failed read is tried again: failures are not noted, only logged.
const RETRY_FAILED: Duration = Duration::from_secs(30);

/// The cluster's Secrets encryption, as last read.
pub struct ClusterEncryption {
    /// The cluster's name; `None`: not known, nothing is noted.
    name: Option<String>,
    ttl: Duration,
    /// When it was read, and the note it gave.
    last: Mutex<Option<(Instant, Duration, Option<String>)>>,
}

impl ClusterEncryption {
    pub fn new(name: Option<String>, ttl: Duration) -> Self {
        ClusterEncryption { name, ttl, last: Mutex::default() }
    }

    /// What to note in the status of a ProtectedSecret: `None` when the cluster encrypts Secrets
    /// with a KMS key, or when that is not known. Concurrent reconciles wait for one read.
    pub async fn note(&self, aws: &AwsFacts) -> Option<String> {
        let name = self.name.as_deref()?;
        let mut last = self.last.lock().await;
        if let Some((read, fresh_for, note)) = last.as_ref()
            && read.elapsed() < *fresh_for
        {
            return note.clone();
        }
        let (fresh_for, note) = match aws.eks_cluster(&Target::default(), name).await {
            Ok(cluster) => (self.ttl, unencrypted_secrets_note(&cluster)),
            Err(error) => {
                tracing::warn!(cluster = name, %error, "cannot tell whether the cluster envelope-encrypts Secrets");
                (RETRY_FAILED, None)
            }
        };
        *last = Some((Instant::now(), fresh_for, note.clone()));
        note
    }
}
