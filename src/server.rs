//! The HTTP endpoints: `/metrics` (Prometheus text), `/healthz` (the process is alive) and
//! `/readyz` (every controller has synced its caches).

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Registered parts by name, each with its ready flag.
type Parts = Vec<(String, Arc<AtomicBool>)>;

/// Readiness of the process: ready once every registered part says so. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Readiness {
    parts: Arc<Mutex<Parts>>,
}

/// One part's readiness; a controller calls [`ReadyHandle::set_ready`] once its caches synced.
#[derive(Clone, Debug)]
pub struct ReadyHandle(Arc<AtomicBool>);

impl ReadyHandle {
    pub fn set_ready(&self) {
        self.0.store(true, Ordering::Release);
    }
}

impl Readiness {
    /// Registers a part that is not ready yet; `/readyz` fails until its handle says ready.
    pub fn register(&self, name: impl Into<String>) -> ReadyHandle {
        let flag = Arc::new(AtomicBool::new(false));
        self.lock().push((name.into(), flag.clone()));
        ReadyHandle(flag)
    }

    /// The parts not ready yet, by name.
    pub fn pending(&self) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|(_, ready)| !ready.load(Ordering::Acquire))
            .map(|(name, _)| name.clone())
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Parts> {
        self.parts.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// What the endpoints serve from.
#[derive(Clone)]
pub struct Endpoints {
    pub registry: Arc<Registry>,
    pub readiness: Readiness,
}

/// Which endpoints a listener serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Routes {
    pub metrics: bool,
    pub health: bool,
}

/// The router for `routes`.
pub fn router(endpoints: Endpoints, routes: Routes) -> Router {
    let mut router = Router::new();
    if routes.metrics {
        router = router.route("/metrics", get(metrics));
    }
    if routes.health {
        router = router.route("/healthz", get(healthz)).route("/readyz", get(readyz));
    }
    router.with_state(endpoints)
}

/// Serves `router` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}

async fn metrics(State(endpoints): State<Endpoints>) -> Response {
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, &endpoints.registry) {
        Ok(()) => {
            ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text)
                .into_response()
        }
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(endpoints): State<Endpoints>) -> Response {
    let pending = endpoints.readiness.pending();
    if pending.is_empty() {
        "ok\n".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, format!("waiting for: {}\n", pending.join(", "))).into_response()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// GET over loopback: the status code and the body.
    pub(crate) async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let status = response[9..12].parse().unwrap();
        let body = response.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or_default();
        (status, body)
    }

    async fn start(
        endpoints: Endpoints,
        routes: Routes,
    ) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve(listener, router(endpoints, routes), async move {
            let _ = stopped.await;
        }));
        (addr, stop)
    }

    #[tokio::test]
    async fn readyz_fails_until_every_part_is_ready_and_healthz_always_answers() {
        let readiness = Readiness::default();
        let endpoints = Endpoints { registry: Arc::new(Registry::default()), readiness: readiness.clone() };
        let (addr, _stop) = start(endpoints, Routes { metrics: false, health: true }).await;
        let secrets = readiness.register("protectedsecret");
        let volumes = readiness.register("encryptedvolumepolicy");
        assert_eq!(http_get(addr, "/healthz").await, (200, "ok\n".into()));
        assert_eq!(
            http_get(addr, "/readyz").await,
            (503, "waiting for: protectedsecret, encryptedvolumepolicy\n".into())
        );
        secrets.set_ready();
        assert_eq!(http_get(addr, "/readyz").await, (503, "waiting for: encryptedvolumepolicy\n".into()));
        volumes.set_ready();
        assert_eq!(http_get(addr, "/readyz").await, (200, "ok\n".into()));
        assert_eq!(http_get(addr, "/metrics").await.0, 404, "metrics are served on their own listener");
    }

    #[tokio::test]
    async fn metrics_serve_the_registry_and_stop_on_shutdown() {
        let mut registry = Registry::default();
        let reconciles = crate::metrics::ReconcileMetrics::register(&mut registry);
        reconciles.observe("protectedsecret", std::time::Duration::from_millis(2), false);
        let endpoints = Endpoints { registry: Arc::new(registry), readiness: Readiness::default() };
        let (addr, stop) = start(endpoints, Routes { metrics: true, health: false }).await;
        let (status, body) = http_get(addr, "/metrics").await;
        assert_eq!(status, 200);
        assert!(body.contains("dpo_reconciles_total{controller=\"protectedsecret\"} 1"), "{body}");
        assert_eq!(http_get(addr, "/healthz").await.0, 404);
        stop.send(()).unwrap();
        // The listener closes once the server has stopped.
        let closed = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            while tokio::net::TcpStream::connect(addr).await.is_ok() {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        });
        closed.await.expect("server still accepting after shutdown");
    }
}
