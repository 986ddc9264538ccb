//! TlsIngressPolicy on the shared engine: Ingresses, IngressClasses, IngressClassParams,
//! Services and Namespaces.

use super::{PolicyError, PolicyKind, empty_store, ready, reflect, refs, run};
use crate::api::{PolicyStatus, Severity, TlsIngressPolicy, TlsIngressPolicySpec};
use crate::controller::{Context, ControllerConfig};
use crate::policy::ingress::IngressClassParams;
use crate::policy::units::{TlsUnits, UnitPlan, tls_plan};
use crate::policy::{resource_ref, selector};
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::ListParams;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client};
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
    pub services: Vec<Arc<Service>>,
    pub namespaces: Vec<Arc<Namespace>>,
}

pub struct TlsStores {
    ingresses: Store<Ingress>,
    ingress_classes: Store<IngressClass>,
    ingress_class_params: Store<IngressClassParams>,
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
        tls_plan(
            &policy.spec,
            &refs(&world.ingresses),
            &refs(&world.ingress_classes),
            &refs(&world.ingress_class_params),
            &refs(&world.services),
            &refs(&world.namespaces),
            &config.alb_defaults,
        )
    }

    async fn snapshot(stores: &TlsStores) -> Result<TlsWorld, PolicyError> {
        ready(&stores.ingresses, "Ingress").await?;
        ready(&stores.ingress_classes, "IngressClass").await?;
        ready(&stores.ingress_class_params, "IngressClassParams").await?;
        ready(&stores.services, "Service").await?;
        ready(&stores.namespaces, "Namespace").await?;
        Ok(TlsWorld {
            ingresses: stores.ingresses.state(),
            ingress_classes: stores.ingress_classes.state(),
            ingress_class_params: stores.ingress_class_params.state(),
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

/// Whether the cluster serves IngressClassParams. Only a 404 says no; on any other answer the
/// watch is started and retries on its own. For a group it does not serve, kube-apiserver
/// answers a plain-text `404 page not found`, not a `Status` with reason NotFound: go by the code.
async fn serves_ingress_class_params(client: &Client) -> bool {
    let probe =
        Api::<IngressClassParams>::all(client.clone()).list_metadata(&ListParams::default().limit(1)).await;
    !matches!(probe, Err(kube::Error::Api(status)) if status.code == 404)
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
    let params = if serves_ingress_class_params(&client).await {
        Some(reflect::<IngressClassParams>(&client))
    } else {
        tracing::info!(
            "the cluster does not serve elbv2.k8s.aws/v1beta1 IngressClassParams; evaluating without them (restart after installing the AWS Load Balancer Controller CRDs)"
        );
        None
    };
    let (ingress_class_params, params_changes) = match params {
        Some((store, changes)) => (store, Some(changes)),
        None => (empty_store(), None),
    };
    let stores = TlsStores {
        ingresses,
        ingress_classes,
        ingress_class_params,
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
            match params_changes {
                Some(changes) => controller.watches_stream(changes, move |_: IngressClassParams| all()),
                None => controller,
            }
        },
        shutdown,
    )
    .await;
}
