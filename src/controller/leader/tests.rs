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
    assert_eq!(decide(Some(&observed(Some("me"), t0)), "me", t0 + Duration::from_secs(60)), Decision::Renew);
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
fn the_default_timings_are_client_gos_split() {
    let settings = settings("me", 15);
    assert_eq!(settings.renew_deadline, Duration::from_secs(10));
    assert_eq!(settings.retry_period, Duration::from_secs(2));
    // A renewal hung for a whole request timeout leaves time for another before the deadline.
    assert_eq!(settings.request_timeout(), Duration::from_secs(5));
    assert!(
        settings.retry_period + settings.request_timeout() + settings.retry_period < settings.renew_deadline
    );
    assert_eq!(LeaseSettings::default_renew_deadline(Duration::from_secs(6)), Duration::from_secs(4));
    assert_eq!(LeaseSettings::default_retry_period(Duration::from_secs(4)), Duration::from_millis(800));
}

pub(crate) fn settings(identity: &str, seconds: u64) -> LeaseSettings {
    let duration = Duration::from_secs(seconds);
    let renew_deadline = LeaseSettings::default_renew_deadline(duration);
    LeaseSettings {
        name: "dpo-leader".into(),
        namespace: "dpo-system".into(),
        identity: identity.into(),
        duration,
        renew_deadline,
        retry_period: LeaseSettings::default_retry_period(renew_deadline),
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
    /// Requests are never answered, as on a connection that went dead.
    stall: Arc<std::sync::atomic::AtomicBool>,
}

const PATH: &str = "/apis/coordination.k8s.io/v1/namespaces/dpo-system/leases";

impl FakeApiserver {
    pub(crate) fn client(&self) -> kube::Client {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let server = self.clone();
        tokio::spawn(async move {
            while let Some((request, respond)) = handle.next_request().await {
                let server = server.clone();
                tokio::spawn(async move { respond.send_response(server.answer(request).await) });
            }
        });
        kube::Client::new(service, "dpo-system")
    }

    pub(crate) fn stored(&self) -> Option<LeaseSpec> {
        self.lease.lock().unwrap().as_ref().and_then(|l| l.spec.clone())
    }

    async fn answer(&self, request: Request<Body>) -> Response<Body> {
        if self.stall.load(std::sync::atomic::Ordering::SeqCst) {
            future::pending::<()>().await;
        }
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
                if parts.method == "PUT" && (raced || lease.metadata.resource_version != current_version) {
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
    assert!(writes[1].1.spec.as_ref().unwrap().renew_time > writes[0].1.spec.as_ref().unwrap().renew_time);
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
    // Renewals every 400 ms: the first conflicts, the next succeeds; a keeps leading.
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

#[tokio::test(start_paused = true)]
async fn a_leader_whose_renewal_hangs_stops_at_its_renew_deadline_before_the_lease_expires() {
    let apiserver = FakeApiserver::default();
    let mut a = LeaderElector::new(apiserver.client(), settings("a", 15));
    let mut b = LeaderElector::new(apiserver.client(), settings("b", 15));
    let renewed = Instant::now();
    assert_eq!(a.round().await.unwrap(), Role::Leader);
    assert_eq!(b.round().await.unwrap(), Role::Follower { leader: Some("a".into()) });
    apiserver.stall.store(true, std::sync::atomic::Ordering::SeqCst);
    let lost =
        tokio::time::timeout(Duration::from_secs(60), a.hold()).await.expect("a never stopped leading");
    let stopped = Instant::now();
    assert!(lost.to_string().contains("not renewed within the renew deadline of 10s"), "{lost}");
    assert!(stopped - renewed <= Duration::from_secs(10), "a led for {:?}", stopped - renewed);
    // The apiserver answers again: b takes over once the lease expired on its clock, after a stopped.
    apiserver.stall.store(false, std::sync::atomic::Ordering::SeqCst);
    assert!(b.acquire(future::pending()).await.unwrap());
    let took = Instant::now();
    assert!(stopped < took, "b led from {:?}, a until {:?}", took - renewed, stopped - renewed);
    assert!(took - renewed >= Duration::from_secs(15));
}
