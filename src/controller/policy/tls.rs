//! TlsIngressPolicy on the shared engine: Ingresses, IngressClasses, IngressClassParams (the AWS
//! Load Balancer Controller's and EKS Auto Mode's), Services, Namespaces and the Gateway API's
//! Gateways, HTTPRoutes and GatewayClasses with the AWS Load Balancer Controller's
//! LoadBalancerConfigurations.

use super::{PolicyError, PolicyKind, empty_store, ready, reflect, refs, run};
use crate::api::{PolicyStatus, Severity, TlsIngressPolicy, TlsIngressPolicySpec};
use crate::controller::{Context, ControllerConfig};
use crate::policy::ingress::gateway::{Gateway, GatewayClass, HTTPRoute, LoadBalancerConfiguration};
use crate::policy::ingress::{AutoModeIngressClassParams, GatewayInventory, IngressClassParams};
use crate::policy::units::{TlsObjects, TlsUnits, UnitPlan, tls_plan};
use crate::policy::{resource_ref, selector};
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::ListParams;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
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
    pub gateways: Vec<Arc<Gateway>>,
    pub http_routes: Vec<Arc<HTTPRoute>>,
    pub gateway_classes: Vec<Arc<GatewayClass>>,
    pub load_balancer_configurations: Vec<Arc<LoadBalancerConfiguration>>,
}

pub struct TlsStores {
    ingresses: Store<Ingress>,
    ingress_classes: Store<IngressClass>,
    ingress_class_params: Store<IngressClassParams>,
    auto_mode_class_params: Store<AutoModeIngressClassParams>,
    services: Store<Service>,
    namespaces: Store<Namespace>,
    gateways: Store<Gateway>,
    http_routes: Store<HTTPRoute>,
    gateway_classes: Store<GatewayClass>,
    load_balancer_configurations: Store<LoadBalancerConfiguration>,
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
        let objects = TlsObjects {
            ingresses: refs(&world.ingresses),
            ingress_classes: refs(&world.ingress_classes),
            ingress_class_params: refs(&world.ingress_class_params),
            auto_mode_class_params: refs(&world.auto_mode_class_params),
            services: refs(&world.services),
            namespaces: refs(&world.namespaces),
            gateways: GatewayInventory {
                gateways: refs(&world.gateways),
                http_routes: refs(&world.http_routes),
                gateway_classes: refs(&world.gateway_classes),
                load_balancer_configurations: refs(&world.load_balancer_configurations),
            },
        };
        tls_plan(&policy.spec, &objects, &config.alb_defaults)
    }

    async fn snapshot(stores: &TlsStores) -> Result<TlsWorld, PolicyError> {
        ready(&stores.ingresses, "Ingress").await?;
        ready(&stores.ingress_classes, "IngressClass").await?;
        ready(&stores.ingress_class_params, "IngressClassParams").await?;
        ready(&stores.auto_mode_class_params, "IngressClassParams (eks.amazonaws.com)").await?;
        ready(&stores.services, "Service").await?;
        ready(&stores.namespaces, "Namespace").await?;
        ready(&stores.gateways, "Gateway").await?;
        ready(&stores.http_routes, "HTTPRoute").await?;
        ready(&stores.gateway_classes, "GatewayClass").await?;
        ready(&stores.load_balancer_configurations, "LoadBalancerConfiguration").await?;
        Ok(TlsWorld {
            ingresses: stores.ingresses.state(),
            ingress_classes: stores.ingress_classes.state(),
            ingress_class_params: stores.ingress_class_params.state(),
            auto_mode_class_params: stores.auto_mode_class_params.state(),
            services: stores.services.state(),
            namespaces: stores.namespaces.state(),
            gateways: stores.gateways.state(),
            http_routes: stores.http_routes.state(),
            gateway_classes: stores.gateway_classes.state(),
            load_balancer_configurations: stores.load_balancer_configurations.state(),
        })
    }
}

/// Whether the policy's selectors select an object with this metadata (`object_selector` the
/// one for its kind, its Namespace looked up in `namespaces`).
fn selects(
    spec: &TlsIngressPolicySpec,
    object_selector: Option<&crate::api::LabelSelector>,
    meta: &ObjectMeta,
    namespaces: &Store<Namespace>,
) -> bool {
    if !selector::matches(object_selector, meta.labels.as_ref()) {
        return false;
    }
    let Some(namespace_selector) = spec.namespace_selector.as_ref() else { return true };
    let name = meta.namespace.as_deref().unwrap_or("default");
    namespaces.get(&ObjectRef::new(name)).is_some_and(|namespace| {
        selector::matches(Some(namespace_selector), namespace.metadata.labels.as_ref())
    })
}

/// Whether the cluster serves kind `K`. Only a 404 says no; on any other answer the watch is
/// started and retries on its own. For a group it does not serve, kube-apiserver answers a
/// plain-text `404 page not found`, not a `Status` with reason NotFound: go by the code.
async fn serves<K>(client: &Client) -> bool
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned,
{
    let probe = Api::<K>::all(client.clone()).list_metadata(&ListParams::default().limit(1)).await;
    !matches!(probe, Err(kube::Error::Api(status)) if status.code == 404)
}

/// A reflector of kind `K` when the cluster serves it; otherwise an empty store, and one log
/// line saying what is evaluated without it (`restart_after` names what brings the CRDs, e.g.
/// "installing the Gateway API CRDs").
async fn reflect_if_served<K>(
    client: &Client,
    restart_after: &str,
) -> (Store<K>, Option<impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static>)
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
{
    if serves::<K>(client).await {
        let (store, changes) = reflect::<K>(client);
        return (store, Some(changes));
    }
    tracing::info!(
        "the cluster does not serve {} {}; evaluating without them (restart after {restart_after})",
        K::api_version(&()),
        K::kind(&()),
    );
    (empty_store(), None)
}

/// Runs the TlsIngressPolicy controller until `shutdown` completes: one watch each of Ingresses,
/// IngressClasses, Services and Namespaces, and of the IngressClassParams of both kinds, Gateways,
/// HTTPRoutes, GatewayClasses and LoadBalancerConfigurations when the cluster serves them,
/// `ctx.config.concurrency` policies evaluated at once.
pub async fn run_tls_policies(ctx: Context, shutdown: impl Future<Output = ()> + Send + Sync + 'static) {
    let client = ctx.client.clone();
    let (ingresses, ingress_changes) = reflect::<Ingress>(&client);
    let (ingress_classes, class_changes) = reflect::<IngressClass>(&client);
    let (services, service_changes) = reflect::<Service>(&client);
    let (namespaces, namespace_changes) = reflect::<Namespace>(&client);
    const LBC_CRDS: &str = "installing the AWS Load Balancer Controller CRDs";
    const GATEWAY_CRDS: &str = "installing the Gateway API CRDs";
    let (ingress_class_params, params_changes) =
        reflect_if_served::<IngressClassParams>(&client, LBC_CRDS).await;
    let (auto_mode_class_params, auto_mode_params_changes) =
        reflect_if_served::<AutoModeIngressClassParams>(&client, "enabling EKS Auto Mode").await;
    let (gateways, gateway_changes) = reflect_if_served::<Gateway>(&client, GATEWAY_CRDS).await;
    let (http_routes, route_changes) = reflect_if_served::<HTTPRoute>(&client, GATEWAY_CRDS).await;
    let (gateway_classes, gateway_class_changes) =
        reflect_if_served::<GatewayClass>(&client, GATEWAY_CRDS).await;
    let (load_balancer_configurations, configuration_changes) =
        reflect_if_served::<LoadBalancerConfiguration>(&client, LBC_CRDS).await;
    let stores = TlsStores {
        ingresses,
        ingress_classes,
        ingress_class_params,
        auto_mode_class_params,
        services,
        namespaces: namespaces.clone(),
        gateways,
        http_routes,
        gateway_classes,
        load_balancer_configurations,
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
            let (gateway_policies, gateway_engine, gateway_namespaces) =
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
                        selects(
                            &policy.spec,
                            policy.spec.ingress_selector.as_ref(),
                            &ingress.metadata,
                            &ingress_namespaces,
                        )
                    })
                })
                .watches_stream(service_changes, move |service: Service| {
                    engine.affected(&policies, &[resource_ref(&service)], |policy| {
                        let selector = policy.spec.ingress_selector.as_ref();
                        policy.spec.include_services
                            && selects(&policy.spec, selector, &service.metadata, &namespaces)
                    })
                });
            // Classes, their parameters and namespace labels bear on many objects at once.
            let (for_classes, for_namespaces) = (all.clone(), all.clone());
            let controller = controller
                .watches_stream(class_changes, move |_: IngressClass| for_classes())
                .watches_stream(namespace_changes, move |_: Namespace| for_namespaces());
            let controller = match gateway_changes {
                Some(changes) => controller.watches_stream(changes, move |gateway: Gateway| {
                    gateway_engine.affected(&gateway_policies, &[resource_ref(&gateway)], |policy| {
                        let selector = policy.spec.gateway_selector.as_ref();
                        policy.spec.include_gateways
                            && selects(&policy.spec, selector, &gateway.metadata, &gateway_namespaces)
                    })
                }),
                None => controller,
            };
            // Routes may name Gateways of any namespace; they and the controllers' settings are
            // re-read for every policy.
            let (for_params, for_auto_mode_params, for_routes, for_gateway_classes) =
                (all.clone(), all.clone(), all.clone(), all.clone());
            let controller = match params_changes {
                Some(changes) => {
                    controller.watches_stream(changes, move |_: IngressClassParams| for_params())
                }
                None => controller,
            };
            let controller = match auto_mode_params_changes {
                Some(changes) => controller
                    .watches_stream(changes, move |_: AutoModeIngressClassParams| for_auto_mode_params()),
                None => controller,
            };
            let controller = match route_changes {
                Some(changes) => controller.watches_stream(changes, move |_: HTTPRoute| for_routes()),
                None => controller,
            };
            let controller = match gateway_class_changes {
                Some(changes) => {
                    controller.watches_stream(changes, move |_: GatewayClass| for_gateway_classes())
                }
                None => controller,
            };
            match configuration_changes {
                Some(changes) => {
                    controller.watches_stream(changes, move |_: LoadBalancerConfiguration| all())
                }
                None => controller,
            }
        },
        shutdown,
    )
    .await;
}
