//! The Kubernetes client every controller uses: kube's middleware over a connector with
//! timeouts and TCP keepalive, so a dead connection fails its requests instead of hanging them.

use hyper_timeout::TimeoutConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kube::client::retry::RetryPolicy;
use kube::client::{Body, ClientBuilder, ConfigExt};
use kube::{Client, Config};
use std::time::Duration;
use tower::retry::RetryLayer;
use tower::{BoxError, ServiceBuilder};

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest an answer may pause. kube-runtime's watcher asks for watches that end after 290 s
/// and itself drops one silent for 295 s, so this never cuts a healthy watch: it is the backstop
/// for every other request. Lease requests have their own, much shorter deadline.
pub const READ_TIMEOUT: Duration = Duration::from_secs(300);
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Probes an idle connection after 30 s, then every 10 s: a peer gone without a FIN or RST (a
/// node or NAT that vanished) is noticed within a minute rather than the kernel's two hours.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_RETRIES: u32 = 3;

/// A client from the environment (in-cluster service account, or `KUBECONFIG`).
///
/// kube's rustls (ring) and the AWS SDK's (aws-lc-rs) are both linked, so rustls cannot pick a
/// process-wide crypto provider by itself and would panic at the first TLS handshake: install
/// kube's first.
pub async fn from_env() -> Result<Client, kube::Error> {
    // Fails only when a provider is installed already, which is as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut config = Config::infer().await.map_err(kube::Error::InferConfig)?;
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    config.read_timeout = Some(READ_TIMEOUT);
    config.write_timeout = Some(WRITE_TIMEOUT);
    // The read timeout counts from each request, not from when its pooled connection went idle.
    config.reset_reader_on_write = true;
    build(&config)
}

/// kube's own client stack (`Client::try_from`), but over a connector with TCP keepalive, which
/// kube's builder does not set.
pub fn build(config: &Config) -> Result<Client, kube::Error> {
    if let Some(proxy_url) = &config.proxy_url {
        return Err(kube::Error::ProxyProtocolUnsupported { proxy_url: Box::new(proxy_url.clone()) });
    }
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_keepalive(Some(KEEPALIVE_IDLE));
    http.set_keepalive_interval(Some(KEEPALIVE_INTERVAL));
    http.set_keepalive_retries(Some(KEEPALIVE_RETRIES));
    let mut connector = TimeoutConnector::new(config.rustls_https_connector_with_connector(http)?);
    connector.set_connect_timeout(config.connect_timeout);
    connector.set_read_timeout(config.read_timeout);
    connector.set_write_timeout(config.write_timeout);
    connector.set_reset_reader_on_write(config.reset_reader_on_write);
    let http_client =
        hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build::<_, Body>(connector);
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(config.default_retry.then(|| RetryLayer::new(RetryPolicy::server_retry())))
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .map_err(BoxError::from)
        .service(http_client);
    Ok(ClientBuilder::new(service, config.default_namespace.clone()).build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_client_is_built_from_a_kubeconfig() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut config = Config::new("https://127.0.0.1:6443".parse().unwrap());
        assert!(build(&config).is_ok());
        config.proxy_url = Some("http://proxy:3128".parse().unwrap());
        let error = build(&config).err().expect("a proxy was accepted");
        assert!(error.to_string().contains("unsupported protocol"), "{error}");
    }
}
