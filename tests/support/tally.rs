//! A kube client that notes every request it sends and every answer it gets, so that a test
//! can count what the controller asked of a real apiserver: lists, watches, `410 Gone`.

use http::{Request, Response};
use hyper::body::{Bytes, Frame};
use kube::client::Body;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Instant;

#[derive(Clone, Debug)]
pub struct Call {
    pub at: Instant,
    pub method: String,
    pub path: String,
    pub query: String,
    pub status: Option<u16>,
}

impl Call {
    pub fn is_watch(&self) -> bool {
        self.query.split('&').any(|pair| pair == "watch=true")
    }

    pub fn on(&self, resource: &str) -> bool {
        self.path.ends_with(&format!("/{resource}"))
    }

    pub fn resource_version(&self) -> Option<u64> {
        self.query.split('&').find_map(|pair| pair.strip_prefix("resourceVersion=")?.parse().ok())
    }
}

/// Every request of one client, and when an answer said `410 Gone` (as a status, or as the
/// ERROR event a watch stream carries).
#[derive(Clone, Default)]
pub struct Tally {
    calls: Arc<Mutex<Vec<Call>>>,
    gone: Arc<Mutex<Vec<Instant>>>,
}

impl Tally {
    pub fn calls_since(&self, from: Instant) -> Vec<Call> {
        self.calls.lock().unwrap().iter().filter(|c| c.at >= from).cloned().collect()
    }

    pub fn gone_since(&self, from: Instant) -> Option<Instant> {
        self.gone.lock().unwrap().iter().copied().find(|at| *at >= from)
    }

    fn saw_gone(&self) {
        self.gone.lock().unwrap().push(Instant::now());
    }

    /// The watch of `resource` opened after `from` that the apiserver accepted.
    pub fn watching(&self, resource: &str, from: Instant) -> Option<Call> {
        self.calls_since(from).into_iter().find(|c| c.is_watch() && c.on(resource) && c.status == Some(200))
    }

    /// A list of `resource` after `from` that succeeded: a relist.
    pub fn listed(&self, resource: &str, from: Instant) -> Option<Call> {
        let calls = self.calls_since(from);
        calls
            .into_iter()
            .find(|c| c.method == "GET" && !c.is_watch() && c.on(resource) && c.status == Some(200))
    }
}

/// A client sending through `real`, each request and answer noted in the returned [`Tally`].
pub fn counting(real: kube::Client) -> (kube::Client, Tally) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Tap>>();
    let tally = Tally::default();
    let noting = tally.clone();
    let namespace = real.default_namespace().to_string();
    tokio::spawn(async move {
        while let Some((request, reply)) = handle.next_request().await {
            let uri = request.uri().clone();
            let call = Call {
                at: Instant::now(),
                method: request.method().to_string(),
                path: uri.path().to_string(),
                query: uri.query().unwrap_or_default().to_string(),
                status: None,
            };
            let index = {
                let mut calls = noting.calls.lock().unwrap();
                calls.push(call);
                calls.len() - 1
            };
            let (real, tally) = (real.clone(), noting.clone());
            tokio::spawn(async move {
                match real.send(request).await {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        tally.calls.lock().unwrap()[index].status = Some(status);
                        if status == 410 {
                            tally.saw_gone();
                        }
                        reply.send_response(response.map(|inner| Tap { inner, tally, tail: Vec::new() }));
                    }
                    Err(err) => reply.send_error(err),
                }
            });
        }
    });
    (kube::Client::new(service, namespace), tally)
}

/// An answer's body, passed through unchanged, watched for a `410 Gone` ERROR event.
struct Tap {
    inner: Body,
    tally: Tally,
    /// The end of the previous chunk, in case the marker spans two.
    tail: Vec<u8>,
}

const GONE: &[u8] = br#""code":410"#;

impl hyper::body::Body for Tap {
    type Data = Bytes;
    type Error = kube::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, kube::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            let mut window = std::mem::take(&mut this.tail);
            window.extend_from_slice(data);
            if window.windows(GONE.len()).any(|w| w == GONE) {
                this.tally.saw_gone();
            } else {
                this.tail = window[window.len().saturating_sub(GONE.len())..].to_vec();
            }
        }
        polled
    }
}
