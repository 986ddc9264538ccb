//! `dpo controller`: builds the [`Context`], serves the endpoints, takes the lease and runs the
//! enabled controllers until SIGTERM/SIGINT or until leadership is lost.
//!
//! A controller is an `async fn(Context, Shutdown)` listed in [`CONTROLLERS`]. It passes the
//! [`Shutdown`] to kube-runtime's `graceful_shutdown_on`, so in-flight reconciles finish, and
//! calls `ctx.ready.set_ready()` once its caches have synced.

use super::leader::{LeaderElector, LeaderError, LeaseSettings};
use super::{Context, ControllerConfig, policy, protected_secret};
use crate::aws::{AwsError, AwsFacts, AwsMetrics, AwsSettings};
use crate::metrics::register_build_info;
use crate::server::{self, Endpoints, Readiness, ReadyHandle, Routes};
use futures::future::{BoxFuture, Shared};
use futures::stream::{FuturesUnordered, StreamExt};
use futures::{FutureExt, future};
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;
use tokio::sync::watch;

/// The kinds a controller can be enabled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum ControllerKind {
    ProtectedSecrets,
    EncryptedVolumePolicies,
    TlsIngressPolicies,
}

impl ControllerKind {
    pub const ALL: [ControllerKind; 3] = [
        ControllerKind::ProtectedSecrets,
        ControllerKind::EncryptedVolumePolicies,
        ControllerKind::TlsIngressPolicies,
    ];

    /// The name in logs, metrics and `/readyz`.
    pub fn name(self) -> &'static str {
        match self {
            ControllerKind::ProtectedSecrets => "protectedsecret",
            ControllerKind::EncryptedVolumePolicies => "encryptedvolumepolicy",
            ControllerKind::TlsIngressPolicies => "tlsingresspolicy",
        }
    }
}

/// A running controller; it returns only after its shutdown future resolved.
pub type ControllerFuture = BoxFuture<'static, ()>;
pub type ControllerFn = fn(Context, Shutdown) -> ControllerFuture;

/// The controllers built into this binary. An enabled kind missing here is reported at start.
pub const CONTROLLERS: &[(ControllerKind, ControllerFn)] = &[
    (ControllerKind::ProtectedSecrets, |ctx, shutdown| protected_secret::run(ctx, shutdown).boxed()),
    (ControllerKind::EncryptedVolumePolicies, |ctx, shutdown| {
        policy::run_volume_policies(ctx, shutdown).boxed()
    }),
    (ControllerKind::TlsIngressPolicies, |ctx, shutdown| policy::run_tls_policies(ctx, shutdown).boxed()),
];

/// Resolves once shutdown is asked for. Cheap to clone; `Send + Sync + 'static`, as
/// kube-runtime's `graceful_shutdown_on` wants.
#[derive(Clone)]
pub struct Shutdown {
    asked: watch::Receiver<bool>,
    resolved: Shared<BoxFuture<'static, ()>>,
}

/// Asks every [`Shutdown`] made with it to resolve.
pub struct ShutdownTrigger(watch::Sender<bool>);

impl ShutdownTrigger {
    pub fn trigger(&self) {
        self.0.send_replace(true);
    }
}

impl Shutdown {
    pub fn new() -> (ShutdownTrigger, Shutdown) {
        let (sender, asked) = watch::channel(false);
        let mut waiting = asked.clone();
        let resolved = async move {
            // An error means the trigger is gone; nobody can ask any more, so resolve too.
            let _ = waiting.wait_for(|asked| *asked).await;
        }
        .boxed()
        .shared();
        (ShutdownTrigger(sender), Shutdown { asked, resolved })
    }

    /// A shutdown asked for by SIGTERM (what the kubelet sends) or SIGINT (Ctrl-C).
    pub fn on_signals() -> std::io::Result<Shutdown> {
        use tokio::signal::unix::{SignalKind, signal};
        let (trigger, shutdown) = Shutdown::new();
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        tokio::spawn(async move {
            let name = tokio::select! {
                _ = terminate.recv() => "SIGTERM",
                _ = interrupt.recv() => "SIGINT",
            };
            tracing::info!(signal = name, "shutting down: letting in-flight reconciles finish");
            trigger.trigger();
        });
        Ok(shutdown)
    }

    pub fn is_asked(&self) -> bool {
        *self.asked.borrow()
    }
}

impl Future for Shutdown {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        self.resolved.poll_unpin(cx)
    }
}

/// Everything `dpo controller` needs, validated.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    pub controllers: Vec<ControllerKind>,
    pub controller: ControllerConfig,
    pub aws: AwsSettings,
    /// Overrides the AWS endpoint of every service (a local stand-in, a VPC endpoint).
    pub aws_endpoint_url: Option<String>,
    pub metrics_address: SocketAddr,
    pub health_address: SocketAddr,
    /// `None`: leader election is off and this process always runs the controllers.
    pub leader_election: Option<LeaseSettings>,
}

/// Why `dpo controller` stopped other than by a shutdown signal.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot install the signal handlers: {0}")]
    Signals(std::io::Error),
    #[error("AWS configuration: {0}")]
    Aws(#[from] AwsError),
    #[error("cannot configure the Kubernetes client (in-cluster service account or KUBECONFIG): {0}")]
    Kube(#[from] kube::Error),
    #[error("cannot listen on {address} ({flag}): {source}")]
    Bind { flag: &'static str, address: SocketAddr, source: std::io::Error },
    #[error("the HTTP server stopped: {0}")]
    Server(std::io::Error),
    #[error(transparent)]
    Leader(#[from] LeaderError),
    #[error("controller {0} stopped before shutdown was asked for")]
    ControllerStopped(&'static str),
}

/// Runs `dpo controller` until SIGTERM/SIGINT; an error means the process should exit non-zero.
pub async fn run(config: RuntimeConfig) -> Result<(), RuntimeError> {
    let shutdown = Shutdown::on_signals().map_err(RuntimeError::Signals)?;
    let client = super::client::from_env().await?;
    run_with(config, client, shutdown).await
}

/// Runs `dpo controller` against `client` until `shutdown`.
pub async fn run_with(
    config: RuntimeConfig,
    client: kube::Client,
    shutdown: Shutdown,
) -> Result<(), RuntimeError> {
    let mut registry = Registry::default();
    register_build_info(&mut registry);

    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(url) = &config.aws_endpoint_url {
        loader = loader.endpoint_url(url);
    }
    // A given region spares the SDK its region lookup (environment, profile, IMDS).
    if let Some(region) = &config.aws.default_region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    let aws = AwsFacts::new(loader.load().await, config.aws.clone(), AwsMetrics::register(&mut registry))?;
    // Access rules judge each reference against the operator's own account: learnt now, no
    // reconcile waits for it. Should STS fail, the first reconciles ask again.
    if config.controllers.contains(&ControllerKind::ProtectedSecrets) {
        match aws.identity().await {
            Ok(identity) => {
                tracing::info!(account = identity.account, partition = identity.partition, "AWS identity")
            }
            Err(error) => tracing::warn!(%error, "the operator's own AWS account is not known yet"),
        }
    }
    let base = Context::new(client.clone(), aws.clone(), config.controller.clone(), &mut registry);
    let readiness = Readiness::default();
    let endpoints = Endpoints { registry: Arc::new(registry), readiness: readiness.clone() };
    let servers = start_servers(&config, endpoints, shutdown.clone()).await?;
    tracing::info!(
        region = aws.default_region(),
        controllers = ?config.controllers,
        secret_namespaces = ?config.controller.secret_namespaces,
        "starting"
    );

    let mut elector = config.leader_election.clone().map(|lease| LeaderElector::new(client.clone(), lease));
    if let Some(elector) = &mut elector
        && !elector.acquire(shutdown.clone()).await?
    {
        return join_servers(servers).await;
    }

    let context = |ready| Context { ready, ..base.clone() };
    let running = start_controllers(&config.controllers, context, &readiness, &shutdown);
    let holding = async {
        match &mut elector {
            Some(elector) => elector.hold().await,
            None => future::pending().await,
        }
    };
    tokio::select! {
        result = supervise(running, shutdown.clone()) => result?,
        // Dropping `supervise` aborts the controllers at once: the lease may soon be another's.
        lost = holding => {
            tracing::error!(error = %lost, "lost leadership: controllers stopped");
            return Err(lost.into());
        }
    }
    if let Some(elector) = &mut elector
        && let Err(error) = elector.release().await
    {
        tracing::warn!(%error, "could not release the lease; another replica takes over when it expires");
    }
    join_servers(servers).await
}

/// Starts each enabled controller that this binary has, with its own readiness handle. Until
/// a replica leads nothing is registered, so a standby replica is ready (it can take over).
fn start_controllers(
    enabled: &[ControllerKind],
    context: impl Fn(ReadyHandle) -> Context,
    readiness: &Readiness,
    shutdown: &Shutdown,
) -> Vec<(&'static str, ControllerFuture)> {
    enabled
        .iter()
        .filter_map(|kind| match CONTROLLERS.iter().find(|(k, _)| k == kind) {
            Some((_, start)) => {
                let ctx = context(readiness.register(kind.name()));
                Some((kind.name(), start(ctx, shutdown.clone())))
            }
            None => {
                tracing::warn!(controller = kind.name(), "enabled but not built into this binary");
                None
            }
        })
        .collect()
}

/// How long controllers may take to finish their reconciles after shutdown was asked for,
/// within the Pod's default 30 s termination grace period.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs the controllers, each on its own task, until shutdown and until each has finished or
/// [`DRAIN_TIMEOUT`] has passed since shutdown (a controller whose watch is failing, its CRD
/// missing say, never finishes). A controller that stops before shutdown is an error. Returning
/// or being dropped aborts the controllers still running.
pub async fn supervise(
    controllers: Vec<(&'static str, ControllerFuture)>,
    shutdown: Shutdown,
) -> Result<(), RuntimeError> {
    let tasks: Vec<_> =
        controllers.into_iter().map(|(name, controller)| (name, tokio::spawn(controller))).collect();
    let _abort = AbortOnDrop(tasks.iter().map(|(_, task)| task.abort_handle()).collect());
    let mut running: FuturesUnordered<_> =
        tasks.into_iter().map(|(name, task)| task.map(move |joined| (name, joined))).collect();
    let drained = shutdown.clone().then(|()| tokio::time::sleep(DRAIN_TIMEOUT));
    tokio::pin!(drained);
    loop {
        let (name, joined) = tokio::select! {
            next = running.next() => match next {
                Some(stopped) => stopped,
                None => break,
            },
            () = &mut drained => {
                tracing::warn!(running = running.len(), "controllers did not finish within {DRAIN_TIMEOUT:?} of shutdown");
                return Ok(());
            }
        };
        if let Err(error) = joined {
            tracing::error!(controller = name, %error, "controller task failed");
            return Err(RuntimeError::ControllerStopped(name));
        }
        if !shutdown.is_asked() {
            return Err(RuntimeError::ControllerStopped(name));
        }
        tracing::info!(controller = name, "controller stopped");
    }
    shutdown.await;
    Ok(())
}

struct AbortOnDrop(Vec<tokio::task::AbortHandle>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.iter().for_each(tokio::task::AbortHandle::abort);
    }
}

type ServerTask = tokio::task::JoinHandle<std::io::Result<()>>;

/// Binds the listeners (one when both addresses are the same) and serves until shutdown.
async fn start_servers(
    config: &RuntimeConfig,
    endpoints: Endpoints,
    shutdown: Shutdown,
) -> Result<Vec<ServerTask>, RuntimeError> {
    let listeners = if config.metrics_address == config.health_address {
        vec![("--metrics-address", config.metrics_address, Routes { metrics: true, health: true })]
    } else {
        vec![
            ("--metrics-address", config.metrics_address, Routes { metrics: true, health: false }),
            ("--health-address", config.health_address, Routes { metrics: false, health: true }),
        ]
    };
    let mut tasks = Vec::new();
    for (flag, address, routes) in listeners {
        let listener = tokio::net::TcpListener::bind(address).await.map_err(|source| RuntimeError::Bind {
            flag,
            address,
            source,
        })?;
        let router = server::router(endpoints.clone(), routes);
        tasks.push(tokio::spawn(server::serve(listener, router, shutdown.clone())));
    }
    Ok(tasks)
}

async fn join_servers(servers: Vec<ServerTask>) -> Result<(), RuntimeError> {
    for server in servers {
        match server.await {
            Ok(result) => result.map_err(RuntimeError::Server)?,
            Err(joined) => return Err(RuntimeError::Server(std::io::Error::other(joined))),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::leader::tests::{FakeApiserver, settings as lease_settings};
    use crate::server::tests::http_get;
    use std::time::Duration;

    fn assert_graceful_shutdown_trigger<F: Future<Output = ()> + Send + Sync + 'static>(_: &F) {}

    #[tokio::test]
    async fn every_clone_of_a_shutdown_resolves_when_triggered() {
        let (trigger, shutdown) = Shutdown::new();
        assert_graceful_shutdown_trigger(&shutdown);
        let waiters: Vec<_> = (0..3).map(|_| tokio::spawn(shutdown.clone())).collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(waiters.iter().all(|w| !w.is_finished()));
        assert!(!shutdown.is_asked());
        trigger.trigger();
        for waiter in waiters {
            tokio::time::timeout(Duration::from_secs(30), waiter).await.unwrap().unwrap();
        }
        assert!(shutdown.is_asked());
        // A clone made after the trigger resolves at once.
        tokio::time::timeout(Duration::from_secs(30), shutdown.clone()).await.unwrap();
    }

    /// A controller that, like kube-runtime's, finishes its in-flight work after shutdown.
    fn draining(shutdown: Shutdown, finished: Arc<std::sync::atomic::AtomicBool>) -> ControllerFuture {
        async move {
            shutdown.await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            finished.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        .boxed()
    }

    #[tokio::test]
    async fn supervise_waits_for_controllers_to_drain_after_shutdown() {
        let (trigger, shutdown) = Shutdown::new();
        let finished = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let supervised = tokio::spawn(supervise(
            vec![("a", draining(shutdown.clone(), finished.clone()))],
            shutdown.clone(),
        ));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!supervised.is_finished());
        trigger.trigger();
        supervised.await.unwrap().unwrap();
        assert!(finished.load(std::sync::atomic::Ordering::SeqCst), "returned before the controller drained");
    }

    #[tokio::test(start_paused = true)]
    async fn supervise_gives_up_on_a_controller_that_never_drains() {
        let (trigger, shutdown) = Shutdown::new();
        let supervised = tokio::spawn(supervise(vec![("stuck", future::pending().boxed())], shutdown));
        tokio::time::sleep(DRAIN_TIMEOUT * 2).await;
        assert!(!supervised.is_finished(), "returned before shutdown was asked for");
        trigger.trigger();
        let started = tokio::time::Instant::now();
        supervised.await.unwrap().unwrap();
        assert_eq!(started.elapsed(), DRAIN_TIMEOUT);
    }

    #[tokio::test]
    async fn a_controller_stopping_on_its_own_is_an_error() {
        let (_trigger, shutdown) = Shutdown::new();
        let result = supervise(vec![("early", async {}.boxed())], shutdown).await;
        assert!(matches!(result, Err(RuntimeError::ControllerStopped("early"))), "{result:?}");
        let (_trigger, shutdown) = Shutdown::new();
        let result = supervise(vec![("panics", async { panic!("boom") }.boxed())], shutdown).await;
        assert!(matches!(result, Err(RuntimeError::ControllerStopped("panics"))), "{result:?}");
    }

    #[tokio::test]
    async fn run_leads_serves_the_endpoints_and_releases_the_lease_on_shutdown() {
        let apiserver = FakeApiserver::default();
        let address = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap()
        };
        // The lease, endpoints and shutdown on their own: this apiserver serves only the Lease.
        let config = RuntimeConfig {
            controllers: Vec::new(),
            controller: ControllerConfig::default(),
            aws: AwsSettings { default_region: Some("eu-west-1".into()), ..AwsSettings::default() },
            aws_endpoint_url: None,
            metrics_address: address,
            health_address: address,
            leader_election: Some(lease_settings("replica-a", 15)),
        };
        let (trigger, shutdown) = Shutdown::new();
        let running = tokio::spawn(run_with(config, apiserver.client(), shutdown));
        let holder = || apiserver.stored().and_then(|spec| spec.holder_identity);
        tokio::time::timeout(Duration::from_secs(10), async {
            while holder().is_none() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("the lease was not acquired");
        assert_eq!(holder().as_deref(), Some("replica-a"));
        let (status, metrics) = http_get(address, "/metrics").await;
        assert_eq!(status, 200);
        assert!(metrics.contains("dpo_build_info{version="), "{metrics}");
        assert_eq!(http_get(address, "/readyz").await.0, 200);
        trigger.trigger();
        tokio::time::timeout(Duration::from_secs(10), running).await.unwrap().unwrap().unwrap();
        assert_eq!(holder(), None, "the lease was not released");
        assert!(tokio::net::TcpStream::connect(address).await.is_err(), "still serving after shutdown");
    }

    #[tokio::test]
    async fn dropping_supervise_stops_the_controllers() {
        let (_trigger, shutdown) = Shutdown::new();
        let (alive, watching) = tokio::sync::oneshot::channel::<()>();
        let controller = async move {
            let _alive = alive;
            future::pending::<()>().await;
        };
        let supervised = supervise(vec![("leading", controller.boxed())], shutdown);
        // Polled long enough to start the controller, then dropped, as on a lost lease.
        assert!(tokio::time::timeout(Duration::from_millis(20), supervised).await.is_err());
        let stopped = tokio::time::timeout(Duration::from_secs(10), watching).await;
        assert!(stopped.is_ok(), "the controller kept running");
    }

    #[tokio::test]
    async fn with_no_controllers_supervise_waits_for_shutdown() {
        let (trigger, shutdown) = Shutdown::new();
        let supervised = tokio::spawn(supervise(Vec::new(), shutdown));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!supervised.is_finished());
        trigger.trigger();
        supervised.await.unwrap().unwrap();
    }
}
