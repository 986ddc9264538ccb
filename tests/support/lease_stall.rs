//! An HTTPS proxy between one `dpo controller` and the apiserver that can stall its Lease
//! requests while every other request (watches, Secret writes) still goes through: a leader
//! whose renewals hang while its controllers keep working, the case where two could lead at once.
//! A byte-level proxy could only stall whole connections, so this one terminates TLS with its
//! own certificate and forwards each request with the test's client and credentials.

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use kube::client::Body;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

const LEASES: &str = "/apis/coordination.k8s.io/";

pub struct LeaseStall {
    stalled: Arc<AtomicBool>,
    kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl LeaseStall {
    /// Listens on loopback and forwards to the cluster `upstream` reaches.
    pub async fn start(upstream: kube::Client) -> LeaseStall {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let rcgen::CertifiedKey { cert, signing_key } =
            rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).expect("proxy certificate");
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(signing_key.serialize_der().into());
        let tls = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key)
            .expect("proxy TLS configuration");
        let acceptor = TlsAcceptor::from(Arc::new(tls));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let address = listener.local_addr().expect("proxy address");

        let dir = tempfile::tempdir().expect("temporary directory");
        let ca = dir.path().join("proxy-ca.crt");
        std::fs::write(&ca, cert.pem()).expect("write proxy certificate");
        let kubeconfig = dir.path().join("kubeconfig");
        let config = format!(
            "apiVersion: v1\nkind: Config\n\
             clusters: [{{name: proxy, cluster: {{server: 'https://{address}', certificate-authority: '{}'}}}}]\n\
             users: [{{name: proxy, user: {{}}}}]\n\
             contexts: [{{name: proxy, context: {{cluster: proxy, user: proxy}}}}]\n\
             current-context: proxy\n",
            ca.display()
        );
        std::fs::write(&kubeconfig, config).expect("write proxy kubeconfig");

        let stalled = Arc::new(AtomicBool::new(false));
        let shared = stalled.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (acceptor, upstream, stalled) = (acceptor.clone(), upstream.clone(), shared.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else { return };
                    let forward =
                        service_fn(move |request| forward(upstream.clone(), stalled.clone(), request));
                    // A connection ends when its client goes; nothing to report.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), forward)
                        .await;
                });
            }
        });
        LeaseStall { stalled, kubeconfig, _dir: dir }
    }

    /// A kubeconfig that reaches the cluster through this proxy.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// From now on Lease requests are never answered (the connection stays open).
    pub fn stall(&self) {
        self.stalled.store(true, Ordering::SeqCst);
    }
}

async fn forward(
    upstream: kube::Client,
    stalled: Arc<AtomicBool>,
    request: Request<Incoming>,
) -> Result<Response<Body>, kube::Error> {
    let lease = request.uri().path().starts_with(LEASES);
    let (parts, body) = request.into_parts();
    let body = body.collect().await.map_err(kube::Error::HyperError)?.to_bytes();
    if lease && stalled.load(Ordering::SeqCst) {
        std::future::pending::<()>().await;
    }
    upstream.send(Request::from_parts(parts, Body::from(body.to_vec()))).await
}
