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
use std::time::Duration;
// The runtime's clock, so that tests can run leases on paused time.
use tokio::time::Instant;

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
            // (why leadership would be lost, whether a later renewal can still save it)
            let (reason, transient) = match self.round().await {
                Ok(Role::Leader) => {
                    renewed = Instant::now();
                    continue;
                }
                Ok(Role::Follower { leader: Some(leader) }) => {
                    (format!("the lease is now held by {leader}"), false)
                }
                // A write raced ours without taking the lease (someone edited it): try again.
                Ok(Role::Follower { leader: None }) => {
                    ("the lease kept changing under renewal".to_string(), true)
                }
                Err(error) => {
                    if let Err(fatal) = self.tolerate(error) {
                        return fatal;
                    }
                    ("the apiserver did not answer".to_string(), true)
                }
            };
            if transient && renewed.elapsed() < self.settings.renew_deadline() {
                continue;
            }
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use futures::future;
    use http::{Request, Response, StatusCode};
    use kube::client::Body;
    use std::sync::{Arc, Mutex};

    fn observed(holder: Option<&str>, seen_at: Instant) -> Observed {
        Observed {
            holder: holder.map(str::to_string),
            renew_time: None,
            duration: Duration::from_secs(15),
            seen_at,
        }
    }

    #[test]
    fn decide_creates_takes_renews_or_follows() {
        let t0 = Instant::now();
        assert_eq!(decide(None, "me", t0), Decision::Create);
        assert_eq!(
            decide(Some(&observed(Some("me"), t0)), "me", t0 + Duration::from_secs(60)),
            Decision::Renew
        );
        assert_eq!(decide(Some(&observed(None, t0)), "me", t0), Decision::Take);
        assert_eq!(decide(Some(&observed(Some(""), t0)), "me", t0), Decision::Take);
        let other = observed(Some("other"), t0);
        assert_eq!(
            decide(Some(&other), "me", t0 + Duration::from_secs(5)),
            Decision::Follow { leader: "other".into(), expires_in: Duration::from_secs(10) }
        );
        assert_eq!(decide(Some(&other), "me", t0 + Duration::from_secs(15)), Decision::Take);
    }

    #[test]
    fn a_leader_renews_twice_before_its_lease_can_expire() {
        let settings = settings("me", 15);
        assert_eq!(settings.retry_period(), Duration::from_secs(5));
        assert_eq!(settings.renew_deadline(), Duration::from_secs(10));
    }

    pub(crate) fn settings(identity: &str, seconds: u64) -> LeaseSettings {
        LeaseSettings {
            name: "dpo-leader".into(),
            namespace: "dpo-system".into(),
            identity: identity.into(),
            duration: Duration::from_secs(seconds),
        }
    }

    /// An apiserver holding Leases in memory, with resourceVersion checks as the real one does.
    #[derive(Clone, Default)]
    pub(crate) struct FakeApiserver {
        lease: Arc<Mutex<Option<Lease>>>,
        forbid: Arc<std::sync::atomic::AtomicBool>,
        /// The next write gets a conflict, as when someone else wrote the Lease meanwhile.
        conflict_once: Arc<std::sync::atomic::AtomicBool>,
        writes: Arc<Mutex<Vec<(String, Lease)>>>,
    }

    const PATH: &str = "/apis/coordination.k8s.io/v1/namespaces/dpo-system/leases";

    impl FakeApiserver {
        pub(crate) fn client(&self) -> kube::Client {
            let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
            let server = self.clone();
            tokio::spawn(async move {
                while let Some((request, respond)) = handle.next_request().await {
                    respond.send_response(server.answer(request).await);
                }
            });
            kube::Client::new(service, "dpo-system")
        }

        pub(crate) fn stored(&self) -> Option<LeaseSpec> {
            self.lease.lock().unwrap().as_ref().and_then(|l| l.spec.clone())
        }

        async fn answer(&self, request: Request<Body>) -> Response<Body> {
            if self.forbid.load(std::sync::atomic::Ordering::SeqCst) {
                return status(StatusCode::FORBIDDEN, "Forbidden");
            }
            let (parts, body) = request.into_parts();
            let path = parts.uri.path().to_string();
            let body = body.collect_bytes().await.unwrap();
            let mut stored = self.lease.lock().unwrap();
            match (parts.method.as_str(), path.strip_prefix(PATH)) {
                ("GET", Some("/dpo-leader")) => match &*stored {
                    Some(lease) => json(lease),
                    None => status(StatusCode::NOT_FOUND, "NotFound"),
                },
                ("POST", Some("")) if stored.is_some() => status(StatusCode::CONFLICT, "AlreadyExists"),
                ("PUT", Some("/dpo-leader")) | ("POST", Some("")) => {
                    let mut lease: Lease = serde_json::from_slice(&body).unwrap();
                    let current_version = stored.as_ref().and_then(|l| l.metadata.resource_version.clone());
                    let raced = self.conflict_once.swap(false, std::sync::atomic::Ordering::SeqCst);
                    if parts.method == "PUT" && (raced || lease.metadata.resource_version != current_version)
                    {
                        return status(StatusCode::CONFLICT, "Conflict");
                    }
                    let next: u64 = current_version.map_or(0, |v| v.parse().unwrap()) + 1;
                    lease.metadata.resource_version = Some(next.to_string());
                    self.writes.lock().unwrap().push((parts.method.to_string(), lease.clone()));
                    *stored = Some(lease.clone());
                    json(&lease)
                }
                other => panic!("unexpected request {other:?}"),
            }
        }
    }

    fn json(lease: &Lease) -> Response<Body> {
        Response::builder().status(200).body(Body::from(serde_json::to_vec(lease).unwrap())).unwrap()
    }

    fn status(code: StatusCode, reason: &str) -> Response<Body> {
        let body = serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": reason, "reason": reason, "code": code.as_u16(),
        });
        Response::builder().status(code).body(Body::from(serde_json::to_vec(&body).unwrap())).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_candidate_creates_the_lease_and_the_second_follows() {
        let apiserver = FakeApiserver::default();
        let mut a = LeaderElector::new(apiserver.client(), settings("a", 15));
        let mut b = LeaderElector::new(apiserver.client(), settings("b", 15));
        assert_eq!(a.round().await.unwrap(), Role::Leader);
        let spec = apiserver.stored().unwrap();
        assert_eq!((spec.holder_identity.as_deref(), spec.lease_duration_seconds), (Some("a"), Some(15)));
        assert_eq!(spec.lease_transitions, Some(0));
        assert_eq!(b.round().await.unwrap(), Role::Follower { leader: Some("a".into()) });
        assert_eq!(a.round().await.unwrap(), Role::Leader, "the holder renews");
        let writes = apiserver.writes.lock().unwrap().clone();
        assert_eq!(writes.iter().map(|(method, _)| method.as_str()).collect::<Vec<_>>(), ["POST", "PUT"]);
        assert!(
            writes[1].1.spec.as_ref().unwrap().renew_time > writes[0].1.spec.as_ref().unwrap().renew_time
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_expired_lease_is_taken_over_with_a_new_term() {
        let apiserver = FakeApiserver::default();
        let mut a = LeaderElector::new(apiserver.client(), settings("a", 1));
        let mut b = LeaderElector::new(apiserver.client(), settings("b", 1));
        assert_eq!(a.round().await.unwrap(), Role::Leader);
        assert_eq!(b.round().await.unwrap(), Role::Follower { leader: Some("a".into()) });
        // a stops renewing; b sees the same record for a whole lease duration on its own clock.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(b.round().await.unwrap(), Role::Leader);
        let spec = apiserver.stored().unwrap();
        assert_eq!((spec.holder_identity.as_deref(), spec.lease_transitions), (Some("b"), Some(1)));
        // a learns it lost: the lease names b, which renewed within the duration.
        assert_eq!(a.round().await.unwrap(), Role::Follower { leader: Some("b".into()) });
    }

    #[tokio::test(start_paused = true)]
    async fn a_stale_write_loses_the_race() {
        let apiserver = FakeApiserver::default();
        let mut a = LeaderElector::new(apiserver.client(), settings("a", 15));
        a.round().await.unwrap();
        a.release().await.unwrap();
        // b reads the free lease; a takes it back before b writes, so b's write is stale.
        let mut lease = apiserver.lease.lock().unwrap().clone().unwrap();
        assert_eq!(a.round().await.unwrap(), Role::Leader);
        let mut b = LeaderElector::new(apiserver.client(), settings("b", 15));
        lease.spec = Some(b.held_spec(lease.spec.take(), true));
        let written = b.api.replace("dpo-leader", &PostParams::default(), &lease).await;
        assert_eq!(b.write(written, Instant::now()).unwrap(), Role::Follower { leader: None });
        assert_eq!(apiserver.stored().unwrap().holder_identity.as_deref(), Some("a"));
    }

    #[tokio::test(start_paused = true)]
    async fn release_frees_the_lease_for_an_immediate_takeover() {
        let apiserver = FakeApiserver::default();
        let mut a = LeaderElector::new(apiserver.client(), settings("a", 60));
        let mut b = LeaderElector::new(apiserver.client(), settings("b", 60));
        assert!(a.acquire(future::pending()).await.unwrap());
        assert_eq!(b.round().await.unwrap(), Role::Follower { leader: Some("a".into()) });
        a.release().await.unwrap();
        assert_eq!(apiserver.stored().unwrap().holder_identity, None);
        assert_eq!(b.round().await.unwrap(), Role::Leader);
        // Releasing a lease someone else holds changes nothing.
        a.release().await.unwrap();
        assert_eq!(apiserver.stored().unwrap().holder_identity.as_deref(), Some("b"));
    }

    #[tokio::test(start_paused = true)]
    async fn acquire_gives_up_on_stop_and_on_missing_permissions() {
        let apiserver = FakeApiserver::default();
        let mut a = LeaderElector::new(apiserver.client(), settings("a", 60));
        let mut b = LeaderElector::new(apiserver.client(), settings("b", 60));
        a.round().await.unwrap();
        assert!(!b.acquire(tokio::time::sleep(Duration::from_millis(50))).await.unwrap());
        apiserver.forbid.store(true, std::sync::atomic::Ordering::SeqCst);
        let error = b.acquire(future::pending()).await.unwrap_err();
        assert!(matches!(error, LeaderError::Forbidden { .. }), "{error}");
        assert!(error.to_string().contains("grant get, create and update"), "{error}");
    }

    #[tokio::test(start_paused = true)]
    async fn hold_rides_out_a_conflicting_write_that_keeps_the_holder() {
        let apiserver = FakeApiserver::default();
        let mut a = LeaderElector::new(apiserver.client(), settings("a", 3));
        a.round().await.unwrap();
        apiserver.conflict_once.store(true, std::sync::atomic::Ordering::SeqCst);
        // Renewals every second: the first conflicts, the next succeeds; a keeps leading.
        let holding = tokio::time::timeout(Duration::from_millis(2500), a.hold()).await;
        assert!(holding.is_err(), "leadership given up: {}", holding.unwrap());
        let writes = apiserver.writes.lock().unwrap().len();
        assert!(writes >= 2, "no renewal after the conflict ({writes} writes)");
        assert_eq!(apiserver.stored().unwrap().holder_identity.as_deref(), Some("a"));
    }

    #[tokio::test(start_paused = true)]
    async fn hold_reports_the_loss_when_another_replica_holds_the_lease() {
        let apiserver = FakeApiserver::default();
        let mut a = LeaderElector::new(apiserver.client(), settings("a", 3));
        a.round().await.unwrap();
        let mut lease = apiserver.lease.lock().unwrap().clone().unwrap();
        lease.spec.as_mut().unwrap().holder_identity = Some("b".into());
        *apiserver.lease.lock().unwrap() = Some(lease);
        let lost = tokio::time::timeout(Duration::from_secs(5), a.hold()).await.expect("still holding");
        assert!(lost.to_string().contains("held by b"), "{lost}");
    }
}
