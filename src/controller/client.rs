//! The Kubernetes client every controller uses.

/// A client from the environment (in-cluster service account, or `KUBECONFIG`).
///
/// kube's rustls (ring) and the AWS SDK's (aws-lc-rs) are both linked, so rustls cannot pick a
/// process-wide crypto provider by itself and would panic at the first TLS handshake: install
/// kube's first.
pub async fn from_env() -> Result<kube::Client, kube::Error> {
    // Fails only when a provider is installed already, which is as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
    kube::Client::try_default().await
}
