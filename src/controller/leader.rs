//! Leader election on a `coordination.k8s.io/v1` Lease, so that of several replicas exactly one
//! runs the controllers and another takes over within the lease duration when it stops.
//!
//! Expiry is measured on this process's own clock from the moment it first saw the current
//! record (holder and renew time), as client-go does, so clock skew between nodes cannot make
//! a live leader's lease look expired. Every Lease request has a deadline, and a leader that has
//! not renewed within the renew deadline stops leading: it has stopped before the lease can
//! expire on anyone else's clock, which starts no earlier than its last renewal. Every write is a create or a `resourceVersion`-guarded
//! replace: of two candidates racing for an expired lease, one gets a conflict.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;
use std::time::Duration;
// The runtime's clock, so that tests can run leases on paused time.
use tokio::time::Instant;

/// Which Lease, who we are, and the timings, client-go's split:
/// `duration` > `renew_deadline` > `retry_period`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseSettings {
    pub name: String,
    pub namespace: String,
    /// This replica's identity as written to `holderIdentity` (the pod name).
    pub identity: String,
    /// How long a lease lasts without renewal: another replica takes over after it.
    pub duration: Duration,
    /// A leader that has not renewed for this long stops its controllers. Shorter than
    /// `duration`, so it has stopped before any other replica can see the lease expire.
    pub renew_deadline: Duration,
    /// Time between renewals, and between attempts to acquire.
    pub retry_period: Duration,
}

impl LeaseSettings {
    /// The default renew deadline: two thirds of the lease duration (client-go's 10 s of 15 s).
    pub fn default_renew_deadline(duration: Duration) -> Duration {
        duration * 2 / 3
    }

    /// The default retry period: a fifth of the renew deadline (client-go's 2 s of 10 s), so
    /// that a renewal stalled for a whole [`Self::request_timeout`] is retried before the deadline.
    pub fn default_retry_period(renew_deadline: Duration) -> Duration {
        renew_deadline / 5
    }

    /// The deadline of each Lease request: half the renew deadline, as client-go gives the
    /// leader-election client, so a request hung on a dead connection leaves time for a retry.
    pub fn request_timeout(&self) -> Duration {
        self.renew_deadline / 2
    }
}

/// The part of a Lease that decides who leads, with the instant this process first saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    pub holder: Option<String>,
    pub renew_time: Option<MicroTime>,
    pub duration: Duration,
    /// When this record was first seen here; it expires `duration` later.
    pub seen_at: Instant,
}

/// What to do about the lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// No Lease exists: create it, holding it.
    Create,
    /// The lease is free or expired: take it over.
    Take,
    /// We hold it: renew it.
    Renew,
    /// Someone else holds a live lease: wait (at most until it would expire).
    Follow { leader: String, expires_in: Duration },
}

/// The leader-election rule: given the lease as observed, who we are and the time, what to do.
pub fn decide(lease: Option<&Observed>, identity: &str, now: Instant) -> Decision {
    let Some(lease) = lease else { return Decision::Create };
    match lease.holder.as_deref() {
        Some(holder) if holder == identity => Decision::Renew,
        None | Some("") => Decision::Take,
        Some(holder) => {
            let expiry = lease.seen_at + lease.duration;
            if now >= expiry {
                Decision::Take
            } else {
                Decision::Follow { leader: holder.to_string(), expires_in: expiry - now }
            }
        }
    }
}

/// Why leader election stopped.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("leadership of Lease {namespace}/{name} lost: {reason}")]
    Lost { namespace: String, name: String, reason: String },
    #[error(
        "not allowed to use Lease {namespace}/{name} (grant get, create and update on \
         coordination.k8s.io leases in {namespace}): {source}"
    )]
    Forbidden { namespace: String, name: String, source: kube::Error },
}

/// The outcome of one round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    Leader,
    Follower { leader: Option<String> },
}

/// Campaigns for and holds one Lease.
pub struct LeaderElector {
    api: Api<Lease>,
    settings: LeaseSettings,
    observed: Option<Observed>,
    /// When the round that last wrote the lease as ours began: before the write took effect.
    renewed_at: Option<Instant>,
}

impl LeaderElector {
    pub fn new(client: kube::Client, settings: LeaseSettings) -> Self {
        let api = Api::namespaced(client, &settings.namespace);
        LeaderElector { api, settings, observed: None, renewed_at: None }
    }

    /// One round: read the Lease, decide, write if the decision says so.
    pub async fn round(&mut self) -> Result<Role, kube::Error> {
        let started = Instant::now();
        let limit = self.settings.request_timeout();
        let current = bounded(limit, self.api.get_opt(&self.settings.name)).await?;
        // Seen once the answer is here, which is after the holder began the write it shows: the
        // holder's renew deadline runs out before the lease expires by this clock.
        let now = Instant::now();
        if let Some(lease) = &current {
            self.observe(lease, now);
        }
        match decide(current.as_ref().and(self.observed.as_ref()), &self.settings.identity, now) {
            Decision::Follow { leader, .. } => Ok(Role::Follower { leader: Some(leader) }),
            Decision::Create => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.settings.name.clone()),
                        namespace: Some(self.settings.namespace.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(self.held_spec(None, true)),
                };
                let created = bounded(limit, self.api.create(&PostParams::default(), &lease)).await;
                self.write(created, started)
            }
            decision => {
                let mut lease = current.unwrap_or_default();
                let taking = decision == Decision::Take;
                lease.spec = Some(self.held_spec(lease.spec.take(), taking));
                // The resourceVersion read above guards the replace: a concurrent writer wins.
                let written =
                    bounded(limit, self.api.replace(&self.settings.name, &PostParams::default(), &lease))
                        .await;
                self.write(written, started)
            }
        }
    }

    /// Campaigns until this replica leads (`Ok(true)`) or `stop` resolves first (`Ok(false)`).
    /// Errors reaching the apiserver are retried; a missing permission is not.
    pub async fn acquire(&mut self, stop: impl Future<Output = ()>) -> Result<bool, LeaderError> {
        let mut stop = std::pin::pin!(stop);
        let mut last_leader = None;
        loop {
            match self.round().await {
                Ok(Role::Leader) => {
                    tracing::info!(lease = %self.settings.name, identity = %self.settings.identity, "acquired leadership");
                    return Ok(true);
                }
                Ok(Role::Follower { leader }) => {
                    if leader != last_leader {
                        tracing::info!(lease = %self.settings.name, leader = ?leader, "waiting for leadership");
                        last_leader = leader;
                    }
                }
                Err(error) => self.tolerate(error)?,
            }
            tokio::select! {
                () = tokio::time::sleep(self.settings.retry_period) => {}
                () = &mut stop => return Ok(false),
            }
        }
    }

    /// Renews the lease every retry period until leadership is lost, and says why. Returns at
    /// the latest a renew deadline after the last successful renewal began, however long the
    /// apiserver takes to answer, so the controllers stop before the lease can expire elsewhere.
    pub async fn hold(&mut self) -> LeaderError {
        loop {
            let deadline = self.renewed_at.unwrap_or_else(Instant::now) + self.settings.renew_deadline;
            let retry_period = self.settings.retry_period;
            let attempt = async {
                tokio::time::sleep(retry_period).await;
                self.round().await
            };
            let outcome = tokio::select! {
                biased;
                () = tokio::time::sleep_until(deadline) => None,
                round = attempt => Some(round),
            };
            let reason = match outcome {
                None => {
                    format!("not renewed within the renew deadline of {:?}", self.settings.renew_deadline)
                }
                Some(Ok(Role::Follower { leader: Some(leader) })) => {
                    format!("the lease is now held by {leader}")
                }
                // Renewed; or a write raced ours without taking the lease (someone edited it).
                Some(Ok(Role::Leader | Role::Follower { leader: None })) => continue,
                Some(Err(error)) => match self.tolerate(error) {
                    Ok(()) => continue,
                    Err(fatal) => return fatal,
                },
            };
            return LeaderError::Lost {
                namespace: self.settings.namespace.clone(),
                name: self.settings.name.clone(),
                reason,
            };
        }
    }

    /// Gives the lease up so another replica takes over at once rather than after it expires.
    pub async fn release(&mut self) -> Result<(), kube::Error> {
        let limit = self.settings.request_timeout();
        let Some(mut lease) = bounded(limit, self.api.get_opt(&self.settings.name)).await? else {
            return Ok(());
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(&self.settings.identity) {
            return Ok(());
        }
        spec.holder_identity = None;
        bounded(limit, self.api.replace(&self.settings.name, &PostParams::default(), &lease)).await?;
        tracing::info!(lease = %self.settings.name, "released leadership");
        Ok(())
    }

    fn observe(&mut self, lease: &Lease, now: Instant) {
        let spec = lease.spec.clone().unwrap_or_default();
        let duration = spec
            .lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok())
            .map_or(self.settings.duration, Duration::from_secs);
        let changed = self.observed.as_ref().is_none_or(|seen| {
            (seen.holder.as_ref(), seen.renew_time.as_ref(), seen.duration)
                != (spec.holder_identity.as_ref(), spec.renew_time.as_ref(), duration)
        });
        if changed {
            self.observed = Some(Observed {
                holder: spec.holder_identity,
                renew_time: spec.renew_time,
                duration,
                seen_at: now,
            });
        }
    }

    /// The spec with us as holder, renewed now; `taking` starts a new term.
    fn held_spec(&self, previous: Option<LeaseSpec>, taking: bool) -> LeaseSpec {
        let now = MicroTime(jiff::Timestamp::now());
        let mut spec = previous.unwrap_or_default();
        if taking {
            spec.acquire_time = Some(now.clone());
            spec.lease_transitions = Some(spec.lease_transitions.map_or(0, |t| t + 1));
        }
        spec.holder_identity = Some(self.settings.identity.clone());
        spec.lease_duration_seconds =
            Some(i32::try_from(self.settings.duration.as_secs()).unwrap_or(i32::MAX));
        spec.renew_time = Some(now);
        spec
    }

    /// A lost race (conflict, already exists) makes us a follower; other errors propagate.
    /// `started` is when the round that wrote began.
    fn write(&mut self, written: Result<Lease, kube::Error>, started: Instant) -> Result<Role, kube::Error> {
        match written {
            Ok(lease) => {
                self.observe(&lease, started);
                self.renewed_at = Some(started);
                Ok(Role::Leader)
            }
            Err(kube::Error::Api(status)) if status.is_conflict() || status.is_already_exists() => {
                Ok(Role::Follower { leader: None })
            }
            Err(error) => Err(error),
        }
    }

    fn tolerate(&self, error: kube::Error) -> Result<(), LeaderError> {
        match error {
            kube::Error::Api(status) if status.is_forbidden() => Err(LeaderError::Forbidden {
                namespace: self.settings.namespace.clone(),
                name: self.settings.name.clone(),
                source: kube::Error::Api(status),
            }),
            error => {
                tracing::warn!(lease = %self.settings.name, %error, "leader election round failed; retrying");
                Ok(())
            }
        }
    }
}

/// A Lease request with its deadline: one hung on a dead connection fails like any other error.
async fn bounded<T>(
    limit: Duration,
    request: impl Future<Output = Result<T, kube::Error>>,
) -> Result<T, kube::Error> {
    tokio::time::timeout(limit, request)
        .await
        .unwrap_or_else(|_| Err(kube::Error::Service(format!("no answer within {limit:?}").into())))
}

#[cfg(test)]
pub(crate) mod tests;
