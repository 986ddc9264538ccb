//! A mock apiserver (`tower_test::mock::pair`) that answers status patches and Event writes the
//! way the real one does, and records every request for the test to inspect.

use super::apiserver::Call;
use http::{Request, Response, StatusCode};
use kube::client::Body;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

pub struct ApiServer {
    pub client: kube::Client,
    requests: Arc<Mutex<Vec<Call>>>,
    reject_writes: Arc<AtomicBool>,
}

impl ApiServer {
    /// Starts serving on the current tokio runtime.
    pub fn start() -> Self {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let requests: Arc<Mutex<Vec<Call>>> = Arc::default();
        let log = requests.clone();
        let reject_writes: Arc<AtomicBool> = Arc::default();
        let reject = reject_writes.clone();
        tokio::spawn(async move {
            while let Some((request, send)) = handle.next_request().await {
                let recorded = Call::read(request).await;
                let response = respond(&recorded, reject.load(Ordering::Relaxed));
                log.lock().unwrap().push(recorded);
                send.send_response(response);
            }
        });
        ApiServer { client: kube::Client::new(service, "default"), requests, reject_writes }
    }

    /// From now on, status writes are refused with 409 Conflict.
    pub fn reject_writes(&self) {
        self.reject_writes.store(true, Ordering::Relaxed);
    }

    /// The requests made since the last call.
    pub fn take(&self) -> Vec<Call> {
        std::mem::take(&mut *self.requests.lock().unwrap())
    }
}

fn respond(request: &Call, reject_writes: bool) -> Response<Body> {
    let segments: Vec<&str> = request.path.split('/').collect();
    let (status, body) = match request.method.as_str() {
        "PATCH" if reject_writes && request.path.ends_with("/status") => (
            StatusCode::CONFLICT,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Conflict", "code": 409}),
        ),
        // PATCH .../<plural>/<name>/status: the object with the applied status.
        "PATCH" if request.path.ends_with("/status") => (
            StatusCode::OK,
            json!({
                "apiVersion": request.body["apiVersion"],
                "kind": request.body["kind"],
                "metadata": {"name": segments[segments.len() - 2], "generation": 1},
                // Every field of both policy specs has a default.
                "spec": {},
                "status": request.body["status"],
            }),
        ),
        "POST" | "PATCH" if request.path.contains("/events") => (StatusCode::CREATED, request.body.clone()),
        _ => (
            StatusCode::NOT_FOUND,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}),
        ),
    };
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Body::from(serde_json::to_vec(&body).unwrap()))
        .unwrap()
}
