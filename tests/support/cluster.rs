//! The real cluster of the e2e tests: the one in `KUBECONFIG`, which `tests/run.sh` points at
//! the control plane it starts (`tests/tools/control-plane.sh`). Without one, a test fails
//! saying so: an e2e test never passes without a cluster.

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use serde_json::json;
use std::future::Future;
use std::time::{Duration, Instant};

/// The field manager of what the tests themselves apply.
pub const FIELD_MANAGER: &str = "dpo-e2e";

/// How long an e2e step may take: long enough for a loaded machine, short of a hang.
pub const PATIENCE: Duration = Duration::from_secs(120);

/// A client for the cluster in `KUBECONFIG`, built as `dpo controller` builds its own.
pub async fn client() -> kube::Client {
    let from = std::env::var("KUBECONFIG").unwrap_or_else(|_| "~/.kube/config".into());
    let hint = "run tests/run.sh, which starts a control plane, or set KUBECONFIG to a cluster";
    let client = dpo::controller::client::from_env()
        .await
        .unwrap_or_else(|e| panic!("e2e: no Kubernetes client from KUBECONFIG={from}: {e}; {hint}"));
    match tokio::time::timeout(Duration::from_secs(30), client.apiserver_version()).await {
        Ok(Ok(_)) => client,
        Ok(Err(e)) => panic!("e2e: the cluster in KUBECONFIG={from} answers: {e}; {hint}"),
        Err(_) => panic!("e2e: the cluster in KUBECONFIG={from} did not answer within 30 s; {hint}"),
    }
}

/// Applies the CRDs (server-side) and waits until the apiserver serves them.
pub async fn install_crds(client: &kube::Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in dpo::api::crds() {
        let name = crd.metadata.name.clone().expect("CRD name");
        api.patch(&name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&crd))
            .await
            .unwrap_or_else(|e| panic!("applying CRD {name}: {e}"));
        tokio::time::timeout(PATIENCE, await_condition(api.clone(), &name, conditions::is_crd_established()))
            .await
            .unwrap_or_else(|_| panic!("CRD {name} not Established within {PATIENCE:?}"))
            .unwrap_or_else(|e| panic!("watching CRD {name}: {e}"));
        await_served(client, &crd).await;
    }
}

/// The Gateway API CRDs vendored under `tests/fixtures/` (see its README for the version).
const GATEWAY_API_CRDS: [&str; 3] = [
    include_str!("../fixtures/gateway.networking.k8s.io_gatewayclasses.yaml"),
    include_str!("../fixtures/gateway.networking.k8s.io_gateways.yaml"),
    include_str!("../fixtures/gateway.networking.k8s.io_httproutes.yaml"),
];

/// Installs what a cluster with the AWS Load Balancer Controller's gateway support serves: the
/// Gateway API's GatewayClass, Gateway and HTTPRoute CRDs, and its LoadBalancerConfiguration
/// (with an open schema).
pub async fn install_gateway_api(client: &kube::Client) {
    install_vendored_crds(client, &GATEWAY_API_CRDS).await;
    serve_open_crd(
        client,
        "gateway.k8s.aws",
        "v1beta1",
        "LoadBalancerConfiguration",
        "loadbalancerconfigurations",
        "Namespaced",
    )
    .await;
}

/// Applies CRDs vendored as YAML text and waits until the apiserver serves them.
pub async fn install_vendored_crds(client: &kube::Client, texts: &[&str]) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for text in texts {
        let crd: CustomResourceDefinition = serde_yaml::from_str(text).expect("a vendored CRD");
        let name = crd.metadata.name.clone().expect("CRD name");
        api.patch(&name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&crd))
            .await
            .unwrap_or_else(|e| panic!("applying CRD {name}: {e}"));
        await_served(client, &crd).await;
    }
}

/// Waits until the apiserver lists `crd`'s objects. `Established` comes a moment before its
/// handler serves the group: a request in between gets a bare `404 page not found`.
pub async fn await_served(client: &kube::Client, crd: &CustomResourceDefinition) {
    let spec = &crd.spec;
    let version = spec.versions.iter().find(|v| v.storage).expect("a storage version");
    let resource = ApiResource {
        group: spec.group.clone(),
        version: version.name.clone(),
        api_version: format!("{}/{}", spec.group, version.name),
        kind: spec.names.kind.clone(),
        plural: spec.names.plural.clone(),
    };
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    eventually(&format!("the apiserver to serve {}", resource.plural), || async {
        api.list(&ListParams::default().limit(1)).await.ok()
    })
    .await;
}

/// Waits until `check` returns something, failing after [`PATIENCE`] with `what`.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out after {PATIENCE:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Creates a namespace with a unique name starting with `prefix`.
pub async fn create_namespace(client: &kube::Client, prefix: &str) -> String {
    let name = super::moto::unique(prefix).to_lowercase();
    let object = serde_json::from_value(json!({"metadata": {"name": name}})).expect("namespace");
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &object)
        .await
        .unwrap_or_else(|e| panic!("creating namespace {name}: {e}"));
    name
}

/// Creates `objects` (JSON as applied, each with its `apiVersion`, `kind` and, where
/// namespaced, `metadata.namespace`) of the kind `resource`, `concurrency` at a time. A `status`
/// is written after the create, as the controller that owns it would (the apiserver drops it
/// from a create).
pub async fn create_all(
    client: &kube::Client,
    resource: &ApiResource,
    objects: Vec<serde_json::Value>,
    concurrency: usize,
) {
    use futures::StreamExt;
    futures::stream::iter(objects)
        .for_each_concurrent(concurrency, |object| async move {
            let api: Api<DynamicObject> = match object["metadata"]["namespace"].as_str() {
                Some(namespace) => Api::namespaced_with(client.clone(), namespace, resource),
                None => Api::all_with(client.clone(), resource),
            };
            let status = object.get("status").cloned();
            let dynamic: DynamicObject = serde_json::from_value(object).expect("an object");
            let name = dynamic.metadata.name.clone().unwrap_or_default();
            api.create(&PostParams::default(), &dynamic)
                .await
                .unwrap_or_else(|e| panic!("creating {} {name}: {e}", resource.kind));
            if let Some(status) = status {
                api.patch_status(&name, &PatchParams::default(), &Patch::Merge(json!({"status": status})))
                    .await
                    .unwrap_or_else(|e| panic!("writing the status of {} {name}: {e}", resource.kind));
            }
        })
        .await;
}

pub async fn delete_namespace(client: &kube::Client, name: &str) {
    let _ = Api::<Namespace>::all(client.clone()).delete(name, &DeleteParams::default()).await;
}

/// The resource of `kind` (plural `plural`) in `group`/`version`, for a dynamic `Api` of a kind
/// the operator has no type for in the tests.
pub fn api_resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&kube::core::GroupVersionKind::gvk(group, version, kind), plural)
}

/// Serves `kind` (plural `plural`, group `group`, version `v1alpha1`/`v1beta1` as given) the way
/// its project's CRD registers it, with an open schema: what the operator does where a
/// companion (the AWS Load Balancer Controller, Argo Rollouts) is installed can then be seen.
pub async fn serve_open_crd(
    client: &kube::Client,
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
    scope: &str,
) {
    let name = format!("{plural}.{group}");
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "group": group,
            "scope": scope,
            "names": {"plural": plural, "singular": kind.to_lowercase(), "kind": kind, "listKind": format!("{kind}List")},
            "versions": [{
                "name": version, "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
            }],
        },
    }))
    .expect("a CRD");
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let apply = PatchParams::apply(FIELD_MANAGER).force();
    crds.patch(&name, &apply, &Patch::Apply(&crd))
        .await
        .unwrap_or_else(|e| panic!("applying CRD {name}: {e}"));
    await_served(client, &crd).await;
}
