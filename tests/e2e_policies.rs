//! End to end against the cluster named by `KUBECONFIG`: the CRDs are applied, the policy
//! controllers run in-process with moto as AWS, and policies flip `Ready` as governed objects
//! are made non-compliant and compliant again. Run with `tests/run.sh`, which starts a
//! control plane; without a cluster every test fails saying so.

mod support;

use dpo::api::{EncryptedVolumePolicy, TlsIngressPolicy};
use dpo::controller::policy::{run_tls_policies, run_volume_policies};
use dpo::controller::{Context, ControllerConfig};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource};
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use support::cluster::{self, PATIENCE as WAIT};
use support::moto::{self, Seed};
use tokio::sync::oneshot;

/// Runs a policy controller in-process with moto as AWS; dropping the guard stops it.
struct Running(Option<oneshot::Sender<()>>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.0.take() {
            let _ = stop.send(());
        }
    }
}

type Shutdown = Pin<Box<dyn Future<Output = ()> + Send + Sync>>;

async fn start<Fut>(client: &Client, run: impl FnOnce(Context, Shutdown) -> Fut) -> Running
where
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut registry = Registry::default();
    let aws = moto::facts(moto::test_settings()).await;
    let ctx = Context::new(client.clone(), aws, ControllerConfig::default(), &mut registry);
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(run(
        ctx,
        Box::pin(async move {
            // A dropped sender stops the controller too.
            let _ = stopped.await;
        }),
    ));
    Running(Some(stop))
}

/// Waits until `get` returns the object and `done` holds for it; fails with its last state.
async fn wait_for<K>(api: &Api<K>, name: &str, what: &str, done: impl Fn(&K) -> bool) -> K
where
    K: Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let object = api.get(name).await.unwrap_or_else(|err| panic!("reading {name}: {err}"));
        if done(&object) {
            return object;
        }
        if tokio::time::Instant::now() > deadline {
            panic!(
                "{name}: {what} not reached within {WAIT:?}; last seen:\n{}",
                serde_json::to_string_pretty(&object).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn ready_is(status: Option<&dpo::api::PolicyStatus>, generation: Option<i64>, want: &str) -> bool {
    status.is_some_and(|s| {
        s.observed_generation == generation
            && s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == want && c.observed_generation == generation)
    })
}

/// The `kubectl get` columns of a policy, read from the Table API: column name -> cell.
async fn printed_columns(client: &Client, path: &str) -> serde_json::Map<String, Value> {
    let request = http::Request::get(path)
        .header(http::header::ACCEPT, "application/json;as=Table;v=v1;g=meta.k8s.io")
        .body(Vec::new())
        .expect("request");
    let table: Value =
        serde_json::from_str(&client.request_text(request).await.expect("Table API")).expect("Table JSON");
    assert_eq!(table["kind"], "Table", "{table}");
    let names = table["columnDefinitions"]
        .as_array()
        .expect("columnDefinitions")
        .iter()
        .map(|c| c["name"].as_str().unwrap_or_default().to_string());
    let cells = table["rows"][0]["cells"].as_array().expect("one row").iter().cloned();
    names.zip(cells).collect()
}

/// An EncryptedVolumePolicy `name` with `spec`.
fn volume_policy(name: &str, spec: Value) -> EncryptedVolumePolicy {
    let policy = json!({
        "apiVersion": "dpo.dev/v1alpha1", "kind": "EncryptedVolumePolicy", "metadata": {"name": name}, "spec": spec,
    });
    serde_json::from_value(policy).expect("policy")
}

fn unique() -> String {
    // Kubernetes names: lowercase alphanumerics and dashes.
    moto::unique("e2e").to_lowercase()
}

async fn create_storage_class(api: &Api<StorageClass>, name: &str, label: &str, encrypted: bool) {
    let parameters =
        if encrypted { json!({"type": "gp3", "encrypted": "true"}) } else { json!({"type": "gp3"}) };
    let class: StorageClass = serde_json::from_value(json!({
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": name, "labels": {"dpo.dev/e2e": label}},
        "provisioner": "ebs.csi.aws.com",
        "parameters": parameters,
    }))
    .expect("StorageClass");
    api.create(&PostParams::default(), &class)
        .await
        .unwrap_or_else(|err| panic!("creating StorageClass {name}: {err}"));
}

/// StorageClass parameters are immutable: changing them means replacing the object.
async fn replace_storage_class(api: &Api<StorageClass>, name: &str, label: &str, encrypted: bool) {
    api.delete(name, &DeleteParams::default()).await.unwrap_or_else(|err| panic!("deleting {name}: {err}"));
    let deadline = tokio::time::Instant::now() + WAIT;
    while api.get_opt(name).await.expect("reading StorageClass").is_some() {
        assert!(tokio::time::Instant::now() < deadline, "StorageClass {name} not deleted within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    create_storage_class(api, name, label, encrypted).await;
}

#[tokio::test]
async fn encrypted_volume_policy_flips_ready_with_its_storage_class() {
    let client = cluster::client().await;
    cluster::install_crds(&client).await;
    let id = unique();
    let classes: Api<StorageClass> = Api::all(client.clone());
    create_storage_class(&classes, &id, &id, true).await;
    let policies: Api<EncryptedVolumePolicy> = Api::all(client.clone());
    let policy = volume_policy(
        &id,
        json!({
            "storageClassSelector": {"matchLabels": {"dpo.dev/e2e": id}},
            "checkVolumes": false,
            "checkAccountDefault": false,
        }),
    );
    let policy = policies.create(&PostParams::default(), &policy).await.expect("creating the policy");
    let generation = policy.metadata.generation;
    let _controller = start(&client, run_volume_policies).await;

    wait_for(&policies, &id, "Ready=True", |p| ready_is(p.status.as_ref(), generation, "True")).await;
    replace_storage_class(&classes, &id, &id, false).await;
    let failing =
        wait_for(&policies, &id, "Ready=False", |p| ready_is(p.status.as_ref(), generation, "False")).await;
    let status = failing.status.expect("status");
    assert_eq!(status.findings[0].rule, "storageclass-encrypted");
    assert_eq!(status.findings[0].resource.name, id);
    assert_eq!(status.conditions[0].reason, "ViolationsFound");

    let columns =
        printed_columns(&client, &format!("/apis/dpo.dev/v1alpha1/encryptedvolumepolicies/{id}")).await;
    assert_eq!(columns.get("Ready"), Some(&json!("False")), "{columns:?}");
    assert_eq!(columns.get("Reason"), Some(&json!("ViolationsFound")), "{columns:?}");
    assert_eq!(columns.get("Violations"), Some(&json!(1)), "{columns:?}");

    replace_storage_class(&classes, &id, &id, true).await;
    wait_for(&policies, &id, "Ready=True again", |p| ready_is(p.status.as_ref(), generation, "True")).await;
    let columns =
        printed_columns(&client, &format!("/apis/dpo.dev/v1alpha1/encryptedvolumepolicies/{id}")).await;
    assert_eq!((columns.get("Ready"), columns.get("Violations")), (Some(&json!("True")), Some(&json!(0))));

    let _ = policies.delete(&id, &DeleteParams::default()).await;
    let _ = classes.delete(&id, &DeleteParams::default()).await;
}

#[tokio::test]
async fn encrypted_volume_policy_judges_the_clusters_secrets_encryption_on_itself() {
    let client = cluster::client().await;
    cluster::install_crds(&client).await;
    let id = unique();
    let eks_cluster = Seed::new().await.cluster(None).await;
    let policies: Api<EncryptedVolumePolicy> = Api::all(client.clone());
    let policy = volume_policy(
        &id,
        json!({
            "storageClassSelector": {"matchLabels": {"dpo.dev/e2e": id}},
            "checkAccountDefault": false,
            "clusterSecretsEncryption": {"clusterName": eks_cluster},
        }),
    );
    let policy = policies.create(&PostParams::default(), &policy).await.expect("the CRD takes the field");
    let _controller = start(&client, run_volume_policies).await;

    let failing = wait_for(&policies, &id, "Ready=False", |p| {
        ready_is(p.status.as_ref(), policy.metadata.generation, "False")
    })
    .await;
    let status = failing.status.expect("status");
    assert_eq!(status.findings[0].rule, "eks-secrets-encrypted", "{status:?}");
    assert_eq!(status.findings[0].resource.kind, "EncryptedVolumePolicy");
    assert_eq!(status.findings[0].resource.name, id);

    // Not required: still reported, below failOn.
    let patch =
        json!({"spec": {"clusterSecretsEncryption": {"clusterName": eks_cluster, "required": false}}});
    let patched = policies.patch(&id, &PatchParams::default(), &Patch::Merge(&patch)).await.expect("patch");
    let passing = wait_for(&policies, &id, "Ready=True", |p| {
        ready_is(p.status.as_ref(), patched.metadata.generation, "True")
    })
    .await;
    let findings = passing.status.expect("status").findings;
    assert_eq!(
        findings.iter().map(|f| (f.rule.as_str(), f.severity)).collect::<Vec<_>>(),
        [("eks-secrets-encrypted", dpo::api::Severity::Low)]
    );

    let bad_name = volume_policy(
        &format!("{id}-bad"),
        json!({"clusterSecretsEncryption": {"clusterName": "not a name"}}),
    );
    let refused = policies.create(&PostParams::default(), &bad_name).await;
    assert!(refused.is_err(), "the CRD schema refuses a bad cluster name");
    let _ = policies.delete(&id, &DeleteParams::default()).await;
}

fn tls_ingress(name: &str, namespace: &str, host: &str, certificate: &str, label: &str) -> Ingress {
    serde_json::from_value(json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"dpo.dev/e2e": label},
            "annotations": {
                "alb.ingress.kubernetes.io/listen-ports": "[{\"HTTP\": 80}, {\"HTTPS\": 443}]",
                "alb.ingress.kubernetes.io/ssl-redirect": "443",
                "alb.ingress.kubernetes.io/ssl-policy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
                "alb.ingress.kubernetes.io/certificate-arn": certificate,
            },
        },
        "spec": {
            "ingressClassName": "alb",
            "rules": [{"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}],
        },
    }))
    .expect("Ingress")
}

#[tokio::test]
async fn tls_ingress_policy_flips_ready_with_the_certificate() {
    let client = cluster::client().await;
    cluster::install_crds(&client).await;
    let id = unique();
    let seed = Seed::new().await;
    let host = format!("{id}.example.com");
    let days = |n: i64| jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * n);
    let valid = seed.certificate(&[&host], days(200)).await;
    let expiring = seed.certificate(&[&host], days(3)).await;

    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": id}})).expect("Namespace");
    namespaces.create(&PostParams::default(), &namespace).await.expect("creating the namespace");
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), &id);
    ingresses
        .create(&PostParams::default(), &tls_ingress("web", &id, &host, &valid, &id))
        .await
        .expect("creating the Ingress");
    let policies: Api<TlsIngressPolicy> = Api::all(client.clone());
    let policy: TlsIngressPolicy = serde_json::from_value(json!({
        "apiVersion": "dpo.dev/v1alpha1",
        "kind": "TlsIngressPolicy",
        "metadata": {"name": id},
        "spec": {"ingressSelector": {"matchLabels": {"dpo.dev/e2e": id}}},
    }))
    .expect("policy");
    let policy = policies.create(&PostParams::default(), &policy).await.expect("creating the policy");
    let generation = policy.metadata.generation;
    let _controller = start(&client, run_tls_policies).await;

    wait_for(&policies, &id, "Ready=True", |p| ready_is(p.status.as_ref(), generation, "True")).await;
    let certificate = |arn: &str| {
        Patch::Merge(json!({"metadata": {"annotations": {"alb.ingress.kubernetes.io/certificate-arn": arn}}}))
    };
    ingresses
        .patch("web", &PatchParams::default(), &certificate(&expiring))
        .await
        .expect("patching the Ingress");
    let failing =
        wait_for(&policies, &id, "Ready=False", |p| ready_is(p.status.as_ref(), generation, "False")).await;
    let status = failing.status.expect("status");
    assert_eq!(status.findings[0].rule, "acm-certificate-expiration-check");
    let columns = printed_columns(&client, &format!("/apis/dpo.dev/v1alpha1/tlsingresspolicies/{id}")).await;
    assert_eq!(
        (columns.get("Ready"), columns.get("Violations")),
        (Some(&json!("False")), Some(&json!(1))),
        "{columns:?}"
    );

    ingresses
        .patch("web", &PatchParams::default(), &certificate(&valid))
        .await
        .expect("patching the Ingress");
    wait_for(&policies, &id, "Ready=True again", |p| ready_is(p.status.as_ref(), generation, "True")).await;
    let columns = printed_columns(&client, &format!("/apis/dpo.dev/v1alpha1/tlsingresspolicies/{id}")).await;
    assert_eq!((columns.get("Ready"), columns.get("Violations")), (Some(&json!("True")), Some(&json!(0))));

    let _ = policies.delete(&id, &DeleteParams::default()).await;
    let _ = namespaces.delete(&id, &DeleteParams::default()).await;
}

/// On EKS Auto Mode the certificate and security policy of an Ingress can come from its class's
/// `eks.amazonaws.com/v1` IngressClassParams: the controller watches them, so editing them
/// re-judges the Ingress.
#[tokio::test]
async fn auto_mode_ingress_class_params_are_watched() {
    let client = cluster::client().await;
    cluster::install_crds(&client).await;
    cluster::serve_open_crd(
        &client,
        "eks.amazonaws.com",
        "v1",
        "IngressClassParams",
        "ingressclassparams",
        "Cluster",
    )
    .await;
    let id = unique();
    let seed = Seed::new().await;
    let host = format!("{id}.example.com");
    let valid =
        seed.certificate(&[&host], jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 200)).await;

    let params_type =
        cluster::api_resource("eks.amazonaws.com", "v1", "IngressClassParams", "ingressclassparams");
    let params: Api<kube::core::DynamicObject> = Api::all_with(client.clone(), &params_type);
    let params_object = |ssl_policy: &str| {
        json!({
            "apiVersion": "eks.amazonaws.com/v1", "kind": "IngressClassParams", "metadata": {"name": id},
            "spec": {"scheme": "internet-facing", "certificateARNs": [valid], "sslPolicy": ssl_policy},
        })
    };
    let apply = PatchParams::apply("e2e").force();
    params
        .patch(&id, &apply, &Patch::Apply(params_object("ELBSecurityPolicy-TLS13-1-2-2021-06")))
        .await
        .expect("applying the IngressClassParams");
    let classes: Api<k8s_openapi::api::networking::v1::IngressClass> = Api::all(client.clone());
    let class = json!({"metadata": {"name": id}, "spec": {"controller": "eks.amazonaws.com/alb",
        "parameters": {"apiGroup": "eks.amazonaws.com", "kind": "IngressClassParams", "name": id}}});
    classes
        .create(&PostParams::default(), &serde_json::from_value(class).expect("IngressClass"))
        .await
        .expect("creating the IngressClass");

    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": id}})).expect("Namespace");
    namespaces.create(&PostParams::default(), &namespace).await.expect("creating the namespace");
    // The certificate and policy come from the params: drop the Ingress's own.
    let mut ingress = tls_ingress("web", &id, &host, &valid, &id);
    let annotations = ingress.metadata.annotations.as_mut().expect("annotations");
    annotations.remove("alb.ingress.kubernetes.io/certificate-arn");
    annotations.remove("alb.ingress.kubernetes.io/ssl-policy");
    ingress.spec.as_mut().expect("spec").ingress_class_name = Some(id.clone());
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), &id);
    ingresses.create(&PostParams::default(), &ingress).await.expect("creating the Ingress");
    let policies: Api<TlsIngressPolicy> = Api::all(client.clone());
    let policy: TlsIngressPolicy = serde_json::from_value(json!({
        "apiVersion": "dpo.dev/v1alpha1", "kind": "TlsIngressPolicy", "metadata": {"name": id},
        "spec": {"ingressSelector": {"matchLabels": {"dpo.dev/e2e": id}}},
    }))
    .expect("policy");
    let generation = policies
        .create(&PostParams::default(), &policy)
        .await
        .expect("creating the policy")
        .metadata
        .generation;
    let _controller = start(&client, run_tls_policies).await;

    let ready =
        wait_for(&policies, &id, "Ready=True", |p| ready_is(p.status.as_ref(), generation, "True")).await;
    let summary = ready.status.and_then(|s| s.summary).expect("summary");
    assert_eq!(summary.evaluated, 1, "the Ingress is judged, not skipped as not ALB");
    params
        .patch(&id, &apply, &Patch::Apply(params_object("ELBSecurityPolicy-2016-08")))
        .await
        .expect("weakening the IngressClassParams");
    let failing =
        wait_for(&policies, &id, "Ready=False", |p| ready_is(p.status.as_ref(), generation, "False")).await;
    let status = failing.status.expect("status");
    assert_eq!(status.findings[0].rule, "elbv2-predefined-security-policy-ssl-check", "{status:?}");
    assert!(status.findings[0].remediation.contains(&format!("IngressClassParams `{id}`")), "{status:?}");

    let _ = policies.delete(&id, &DeleteParams::default()).await;
    let _ = namespaces.delete(&id, &DeleteParams::default()).await;
    let _ = classes.delete(&id, &DeleteParams::default()).await;
    let _ = params.delete(&id, &DeleteParams::default()).await;
}

#[tokio::test]
async fn tls_ingress_policy_judges_an_alb_gateway() {
    let client = cluster::client().await;
    cluster::install_crds(&client).await;
    cluster::install_gateway_api(&client).await;
    let id = unique();
    let seed = Seed::new().await;
    let host = format!("{id}.example.com");
    let valid =
        seed.certificate(&[&host], jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 200)).await;

    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": id}})).expect("Namespace");
    namespaces.create(&PostParams::default(), &namespace).await.expect("creating the namespace");
    let classes = cluster::api_resource("gateway.networking.k8s.io", "v1", "GatewayClass", "gatewayclasses");
    let gateways = cluster::api_resource("gateway.networking.k8s.io", "v1", "Gateway", "gateways");
    let configurations = cluster::api_resource(
        "gateway.k8s.aws",
        "v1beta1",
        "LoadBalancerConfiguration",
        "loadbalancerconfigurations",
    );
    let create = |resource: &kube::api::ApiResource, namespaced: bool, object: Value| {
        let api: Api<kube::api::DynamicObject> = match namespaced {
            true => Api::namespaced_with(client.clone(), &id, resource),
            false => Api::all_with(client.clone(), resource),
        };
        let mut object: kube::api::DynamicObject = serde_json::from_value(object).expect("object");
        object.types = Some(kube::core::TypeMeta {
            api_version: resource.api_version.clone(),
            kind: resource.kind.clone(),
        });
        async move { api.create(&PostParams::default(), &object).await.expect("creating a Gateway API object") }
    };
    create(
        &classes,
        false,
        json!({"metadata": {"name": id}, "spec": {"controllerName": "gateway.k8s.aws/alb"}}),
    )
    .await;
    let listener = |policy: &str| {
        json!({"listenerConfigurations": [
            {"protocolPort": "HTTPS:443", "defaultCertificate": valid, "sslPolicy": policy}
        ]})
    };
    create(
        &configurations,
        true,
        json!({"metadata": {"name": "edge"}, "spec": listener("ELBSecurityPolicy-TLS13-1-2-2021-06")}),
    )
    .await;
    create(&gateways, true, json!({
        "metadata": {"name": "edge", "labels": {"dpo.dev/e2e": id}},
        "spec": {
            "gatewayClassName": id,
            "infrastructure": {"parametersRef": {"group": "gateway.k8s.aws", "kind": "LoadBalancerConfiguration", "name": "edge"}},
            "listeners": [{"name": "https", "port": 443, "protocol": "HTTPS", "hostname": host}],
        },
    }))
    .await;
    let policies: Api<TlsIngressPolicy> = Api::all(client.clone());
    let selector = json!({"matchLabels": {"dpo.dev/e2e": id}});
    let policy: TlsIngressPolicy = serde_json::from_value(json!({
        "apiVersion": "dpo.dev/v1alpha1",
        "kind": "TlsIngressPolicy",
        "metadata": {"name": id},
        "spec": {"ingressSelector": selector, "gatewaySelector": selector},
    }))
    .expect("policy");
    let policy = policies.create(&PostParams::default(), &policy).await.expect("creating the policy");
    let generation = policy.metadata.generation;
    let _controller = start(&client, run_tls_policies).await;

    let ready =
        wait_for(&policies, &id, "Ready=True", |p| ready_is(p.status.as_ref(), generation, "True")).await;
    assert!(ready.status.expect("status").findings.is_empty());

    // The controller watches LoadBalancerConfigurations: a weak policy there fails the Gateway.
    let configuration_api: Api<kube::api::DynamicObject> =
        Api::namespaced_with(client.clone(), &id, &configurations);
    configuration_api
        .patch(
            "edge",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": listener("ELBSecurityPolicy-2016-08")})),
        )
        .await
        .expect("patching the LoadBalancerConfiguration");
    let failing =
        wait_for(&policies, &id, "Ready=False", |p| ready_is(p.status.as_ref(), generation, "False")).await;
    let status = failing.status.expect("status");
    assert_eq!(status.findings.len(), 1, "{:?}", status.findings);
    assert_eq!(status.findings[0].rule, "elbv2-predefined-security-policy-ssl-check");
    assert_eq!(status.findings[0].resource.kind, "Gateway");

    // A modern policy again, and an HTTP listener no route attaches to: it serves nothing.
    configuration_api
        .patch(
            "edge",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": listener("ELBSecurityPolicy-TLS13-1-2-2021-06")})),
        )
        .await
        .expect("patching the LoadBalancerConfiguration");
    let listeners = json!({"spec": {"listeners": [
        {"name": "http", "port": 80, "protocol": "HTTP"},
        {"name": "https", "port": 443, "protocol": "HTTPS", "hostname": host},
    ]}});
    Api::<kube::api::DynamicObject>::namespaced_with(client.clone(), &id, &gateways)
        .patch("edge", &PatchParams::default(), &Patch::Merge(listeners))
        .await
        .expect("patching the Gateway");
    wait_for(&policies, &id, "Ready=True again", |p| ready_is(p.status.as_ref(), generation, "True")).await;
    // The controller watches HTTPRoutes: one serving plain HTTP fails the Gateway.
    let routes = cluster::api_resource("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes");
    create(
        &routes,
        true,
        json!({"metadata": {"name": "plain"}, "spec": {
            "parentRefs": [{"name": "edge", "sectionName": "http"}],
            "rules": [{"backendRefs": [{"name": "web", "port": 80}]}],
        }}),
    )
    .await;
    let failing =
        wait_for(&policies, &id, "Ready=False", |p| ready_is(p.status.as_ref(), generation, "False")).await;
    let status = failing.status.expect("status");
    assert_eq!(status.findings.len(), 1, "{:?}", status.findings);
    assert_eq!(status.findings[0].rule, "alb-http-to-https-redirection-check");

    let _ = policies.delete(&id, &DeleteParams::default()).await;
    let _ = Api::<kube::api::DynamicObject>::all_with(client.clone(), &classes)
        .delete(&id, &DeleteParams::default())
        .await;
    let _ = namespaces.delete(&id, &DeleteParams::default()).await;
}
