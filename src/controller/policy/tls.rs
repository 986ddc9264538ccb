//! TlsIngressPolicy on the shared engine: Ingresses, IngressClasses, IngressClassParams (the AWS
//! Load Balancer Controller's and EKS Auto Mode's), Services and Namespaces.

use super::{PolicyError, PolicyKind, empty_store, ready, reflect, refs, run};
use crate::api::{PolicyStatus, Severity, TlsIngressPolicy, TlsIngressPolicySpec};
use crate::controller::{Context, ControllerConfig};
use crate::policy::ingress::{AutoModeIngressClassParams, IngressClassParams, InventoryIndex};
use crate::policy::units::{TlsUnits, UnitPlan, tls_plan};
use crate::policy::{resource_ref, selector};
use futures::Stream;
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::ListParams;
use kube::core::ClusterResourceScope;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;

/// The annotation that puts Ingresses of several namespaces on one ALB.
const GROUP_NAME: &str = "alb.ingress.kubernetes.io/group.name";

/// The TlsIngressPolicy kind.
pub struct TlsPolicies;

/// The objects a TlsIngressPolicy evaluation sees.
#[derive(Clone, Debug, Default)]
pub struct TlsWorld {
    pub ingresses: Vec<Arc<Ingress>>,
    pub ingress_classes: Vec<Arc<IngressClass>>,
    pub ingress_class_params: Vec<Arc<IngressClassParams>>,
    pub auto_mode_class_params: Vec<Arc<AutoModeIngressClassParams>>,
    pub services: Vec<Arc<Service>>,
    pub namespaces: Vec<Arc<Namespace>>,
}

pub struct TlsStores {
    ingresses: Store<Ingress>,
    ingress_classes: Store<IngressClass>,
    ingress_class_params: Store<IngressClassParams>,
    auto_mode_class_params: Store<AutoModeIngressClassParams>,
    services: Store<Service>,
    namespaces: Store<Namespace>,
}

impl PolicyKind for TlsPolicies {
    type Policy = TlsIngressPolicy;
    type World = TlsWorld;
    type Stores = TlsStores;
    type Units<'w> = TlsUnits<'w>;
    const CONTROLLER: &'static str = "tlsingresspolicy";

    fn status(policy: &TlsIngressPolicy) -> Option<&PolicyStatus> {
        policy.status.as_ref()
    }

    fn fail_on(policy: &TlsIngressPolicy) -> Severity {
        policy.spec.fail_on
    }

    fn skipped_rules_pass(policy: &TlsIngressPolicy) -> bool {
        policy.spec.skipped_rules_pass
    }

    fn plan<'w>(
        policy: &'w TlsIngressPolicy,
        world: &'w TlsWorld,
        config: &'w ControllerConfig,
    ) -> UnitPlan<TlsUnits<'w>> {
        let index = InventoryIndex::new(
            &refs(&world.ingress_classes),
            &refs(&world.ingress_class_params),
            &refs(&world.namespaces),
        )
        .with_auto_mode_params(&refs(&world.auto_mode_class_params));
        tls_plan(&policy.spec, &refs(&world.ingresses), index, &refs(&world.services), &config.alb_defaults)
    }

    async fn snapshot(stores: &TlsStores) -> Result<TlsWorld, PolicyError> {
        ready(&stores.ingresses, "Ingress").await?;
        ready(&stores.ingress_classes, "IngressClass").await?;
        ready(&stores.ingress_class_params, "IngressClassParams").await?;
        ready(&stores.auto_mode_class_params, "IngressClassParams (eks.amazonaws.com)").await?;
        ready(&stores.services, "Service").await?;
        ready(&stores.namespaces, "Namespace").await?;
        Ok(TlsWorld {
            ingresses: stores.ingresses.state(),
            ingress_classes: stores.ingress_classes.state(),
            ingress_class_params: stores.ingress_class_params.state(),
            auto_mode_class_params: stores.auto_mode_class_params.state(),
            services: stores.services.state(),
            namespaces: stores.namespaces.state(),
        })
    }
}

/// Whether the policy's selectors select an object with this metadata (its Namespace looked up
/// in `namespaces`).
fn selects(spec: &TlsIngressPolicySpec, meta: &ObjectMeta, namespaces: &Store<Namespace>) -> bool {
    if !selector::matches(spec.ingress_selector.as_ref(), meta.labels.as_ref()) {
        return false;
    }
    let Some(namespace_selector) = spec.namespace_selector.as_ref() else { return true };
    let name = meta.namespace.as_deref().unwrap_or("default");
    namespaces.get(&ObjectRef::new(name)).is_some_and(|namespace| {
        selector::matches(Some(namespace_selector), namespace.metadata.labels.as_ref())
    })
}

/// A watch of `K` when the cluster serves it, else an empty store. Only a 404 says it does not;
/// on any other answer the watch is started and retries on its own. For a group it does not
/// serve, kube-apiserver answers a plain-text `404 page not found`, not a `Status` with reason
/// NotFound: go by the code.
async fn reflect_if_served<K>(
    client: &Client,
    missing: &str,
) -> (Store<K>, Option<impl Stream<Item = Result<K, kube::runtime::watcher::Error>> + Send + 'static>)
where
    K: Resource<DynamicType = (), Scope = ClusterResourceScope>
        + Clone
        + Debug
        + DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let probe = Api::<K>::all(client.clone()).list_metadata(&ListParams::default().limit(1)).await;
    if matches!(probe, Err(kube::Error::Api(status)) if status.code == 404) {
        tracing::info!("{missing}");
        return (empty_store(), None);
    }
    let (store, changes) = reflect::<K>(client);
    (store, Some(changes))
}

/// Runs the TlsIngressPolicy controller until `shutdown` completes: one watch each of Ingresses,
/// IngressClasses, IngressClassParams (when the cluster serves them), Services and Namespaces,
/// `ctx.config.concurrency` policies evaluated at once.
pub async fn run_tls_policies(ctx: Context, shutdown: impl Future<Output = ()> + Send + Sync + 'static) {
    let client = ctx.client.clone();
    let (ingresses, ingress_changes) = reflect::<Ingress>(&client);
    let (ingress_classes, class_changes) = reflect::<IngressClass>(&client);
    let (services, service_changes) = reflect::<Service>(&client);
    let (namespaces, namespace_changes) = reflect::<Namespace>(&client);
    let (ingress_class_params, params_changes) = reflect_if_served::<IngressClassParams>(
        &client,
        "the cluster does not serve elbv2.k8s.aws/v1beta1 IngressClassParams; evaluating without them (restart after installing the AWS Load Balancer Controller CRDs)",
    )
    .await;
    let (auto_mode_class_params, auto_mode_params_changes) = reflect_if_served::<AutoModeIngressClassParams>(
        &client,
        "the cluster does not serve eks.amazonaws.com/v1 IngressClassParams (not an EKS Auto Mode cluster); evaluating without them",
    )
    .await;
    let stores = TlsStores {
        ingresses,
        ingress_classes,
        ingress_class_params,
        auto_mode_class_params,
        services,
        namespaces: namespaces.clone(),
    };
    run::<TlsPolicies>(
        ctx,
        stores,
        move |controller, policies, engine| {
            let all = {
                let policies = policies.clone();
                move || policies.state().iter().map(|p| ObjectRef::from_obj(&**p)).collect::<Vec<_>>()
            };
            let (ingress_policies, ingress_engine, ingress_namespaces) =
                (policies.clone(), engine.clone(), namespaces.clone());
            let all_for_ingress = all.clone();
            let controller = controller
                .watches_stream(ingress_changes, move |ingress: Ingress| {
                    // Members of an IngressGroup shape each other's ALB, wherever they live.
                    let grouped =
                        ingress.metadata.annotations.as_ref().is_some_and(|a| a.contains_key(GROUP_NAME));
                    if grouped {
                        return all_for_ingress();
                    }
                    ingress_engine.affected(&ingress_policies, &[resource_ref(&ingress)], |policy| {
                        selects(&policy.spec, &ingress.metadata, &ingress_namespaces)
                    })
                })
                .watches_stream(service_changes, move |service: Service| {
                    engine.affected(&policies, &[resource_ref(&service)], |policy| {
                        policy.spec.include_services && selects(&policy.spec, &service.metadata, &namespaces)
                    })
                });
            // Classes, their parameters and namespace labels bear on many objects at once.
            let (for_classes, for_namespaces) = (all.clone(), all.clone());
            let controller = controller
                .watches_stream(class_changes, move |_: IngressClass| for_classes())
                .watches_stream(namespace_changes, move |_: Namespace| for_namespaces());
            let for_auto_mode_params = all.clone();
            let controller = match auto_mode_params_changes {
                Some(changes) => controller
                    .watches_stream(changes, move |_: AutoModeIngressClassParams| for_auto_mode_params()),
                None => controller,
            };
            match params_changes {
                Some(changes) => controller.watches_stream(changes, move |_: IngressClassParams| all()),
                None => controller,
            }
        },
        shutdown,
    )
    .await;
}
