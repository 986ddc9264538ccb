//! The e2e ProtectedSecret scenarios' frame: a fresh namespace with the controller running in
//! this process against moto, and what the scenarios apply and wait for.

use super::cluster::{self, eventually};
use super::moto::{self, Seed};
use super::running::InProcess;
use dpo::api::ProtectedSecret;
use dpo::controller::ControllerConfig;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use std::future::Future;
use std::time::Duration;

/// Runs `scenario` in a fresh namespace with the controller running, and always cleans up.
pub async fn in_namespace<F, Fut>(scenario: F)
where
    F: FnOnce(kube::Client, String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    run_in_namespace(false, scenario).await;
}

/// [`in_namespace`], the controller watching every namespace or (`only_there`) only the
/// scenario's own (`--secret-namespaces`).
pub async fn run_in_namespace<F, Fut>(only_there: bool, scenario: F)
where
    F: FnOnce(kube::Client, String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let client = cluster::client().await;
    cluster::install_crds(&client).await;
    let namespace = cluster::create_namespace(&client, "dpo-e2e").await;

    let mut settings = moto::test_settings();
    settings.cache.secret_metadata_ttl = Duration::from_secs(1);
    let config = ControllerConfig {
        secret_namespaces: if only_there { vec![namespace.clone()] } else { Vec::new() },
        ..ControllerConfig::default()
    };
    let controller = InProcess::start(&client, moto::facts(settings).await, config);

    let outcome = tokio::spawn(scenario(client.clone(), namespace.clone())).await;

    controller.stop().await;
    cluster::delete_namespace(&client, &namespace).await;
    if let Err(err) = outcome {
        std::panic::resume_unwind(err.into_panic());
    }
}

pub async fn compliant_secret(namespace: &str, password: &str) -> String {
    let value = json!({"username": "app", "password": password});
    Seed::new().await.compliant_secret(namespace, &value).await
}

pub async fn apply_protected_secret(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    spec: serde_json::Value,
) {
    let api: Api<ProtectedSecret> = Api::namespaced(client.clone(), namespace);
    let object = json!({"apiVersion": "dpo.dev/v1alpha1", "kind": "ProtectedSecret", "metadata": {"name": name}, "spec": spec});
    api.patch(name, &PatchParams::apply(cluster::FIELD_MANAGER).force(), &Patch::Apply(&object))
        .await
        .expect("apply ProtectedSecret");
}

/// The Secret `name` once `check` holds for it.
pub async fn secret_where(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    what: &str,
    check: impl Fn(&Secret) -> bool,
) -> Secret {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    eventually(what, || {
        let secrets = secrets.clone();
        let found = async move { secrets.get_opt(name).await.ok().flatten() };
        let check = &check;
        async move { found.await.filter(|s| check(s)) }
    })
    .await
}

pub fn key(secret: &Secret, key: &str) -> Option<String> {
    String::from_utf8(secret.data.as_ref()?.get(key)?.0.clone()).ok()
}

/// The Secret's managers of `dpo/<uid>` form, the operator's own.
pub fn dpo_managers(secret: &Secret) -> Vec<String> {
    let entries = secret.metadata.managed_fields.iter().flatten();
    entries.filter_map(|e| e.manager.clone()).filter(|m| m.starts_with("dpo/")).collect()
}
