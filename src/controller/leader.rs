//! Leader election on a `coordination.k8s.io/v1` Lease, so that of several replicas exactly one
//! runs the controllers and another takes over within the lease duration when it stops.
//!
//! Expiry is measured on this process's own clock from the moment it first saw the current
//! record (holder and renew time), as client-go does, so clock skew between nodes cannot make
//! a live leader's lease look expired. Every write is a create or a `resourceVersion`-guarded
//! replace: of two candidates racing for an expired lease, one gets a conflict.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;
use std::time::{Duration, Instant};

/// Which Lease, who we are, and how long a lease lasts without renewal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseSettings {
    pub name: String,
    pub namespace: String,
    /// This replica's identity as written to `holderIdentity` (the pod name).
    pub identity: String,
    pub duration: Duration,
}

impl LeaseSettings {
    /// Time between renewals (and between attempts to acquire): a third of the duration, so a
    /// leader gets two more tries before its lease can expire.
    pub fn retry_period(&self) -> Duration {
        self.duration / 3
    }

    /// A leader that has not renewed for this long steps down: its lease may be taken soon.
    pub fn renew_deadline(&self) -> Duration {
        self.duration * 2 / 3
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
}

impl LeaderElector {
    pub fn new(client: kube::Client, settings: LeaseSettings) -> Self {
        let api = Api::namespaced(client, &settings.namespace);
        LeaderElector { api, settings, observed: None }
    }

    pub fn settings(&self) -> &LeaseSettings {
        &self.settings
    }

    /// One round: read the Lease, decide, write if the decision says so.
    pub async fn round(&mut self) -> Result<Role, kube::Error> {
        let now = Instant::now();
        let current = self.api.get_opt(&self.settings.name).await?;
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
                self.write(self.api.create(&PostParams::default(), &lease).await, now)
            }
            decision => {
                let mut lease = current.unwrap_or_default();
                let taking = decision == Decision::Take;
                lease.spec = Some(self.held_spec(lease.spec.take(), taking));
                // The resourceVersion read above guards the replace: a concurrent writer wins.
                let written = self.api.replace(&self.settings.name, &PostParams::default(), &lease).await;
                self.write(written, now)
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
                () = tokio::time::sleep(self.settings.retry_period()) => {}
                () = &mut stop => return Ok(false),
            }
        }
    }

    /// Renews the lease until leadership is lost, and says why. Never returns while leading.
    pub async fn hold(&mut self) -> LeaderError {
        let mut renewed = Instant::now();
        loop {
            tokio::time::sleep(self.settings.retry_period()).await;
            let reason = match self.round().await {
                Ok(Role::Leader) => {
                    renewed = Instant::now();
                    continue;
                }
                Ok(Role::Follower { leader }) => format!("the lease is now held by {}", leader.as_deref().unwrap_or("another replica")),
                Err(error) => {
                    if let Err(fatal) = self.tolerate(error) {
                        return fatal;
                    }
                    if renewed.elapsed() < self.settings.renew_deadline() {
                        continue;
                    }
                    format!("not renewed for {:?}", renewed.elapsed())
                }
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
        let Some(mut lease) = self.api.get_opt(&self.settings.name).await? else { return Ok(()) };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(&self.settings.identity) {
            return Ok(());
        }
        spec.holder_identity = None;
        self.api.replace(&self.settings.name, &PostParams::default(), &lease).await?;
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
            self.observed =
                Some(Observed { holder: spec.holder_identity, renew_time: spec.renew_time, duration, seen_at: now });
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
        spec.lease_duration_seconds = Some(i32::try_from(self.settings.duration.as_secs()).unwrap_or(i32::MAX));
        spec.renew_time = Some(now);
        spec
    }

    /// A lost race (conflict, already exists) makes us a follower; other errors propagate.
    fn write(&mut self, written: Result<Lease, kube::Error>, now: Instant) -> Result<Role, kube::Error> {
        match written {
            Ok(lease) => {
                self.observe(&lease, now);
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
