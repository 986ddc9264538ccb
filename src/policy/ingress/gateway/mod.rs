//! Gateway API Gateways built by the AWS Load Balancer Controller (v3): those of a GatewayClass
//! whose `controllerName` is `gateway.k8s.aws/alb` (an ALB; HTTPRoutes attach to its HTTP and
//! HTTPS listeners) or `gateway.k8s.aws/nlb` (an NLB with TCP, UDP and TLS listeners).
//!
//! The controller builds one load balancer listener per port (`pkg/gateway/model/
//! model_build_listener.go`): on HTTPS and TLS ports it takes the certificates and `sslPolicy`
//! of the `listenerConfigurations` entry for that port in the LoadBalancerConfiguration, or else
//! discovers ACM certificates by the listeners' `hostname`s, and the controller's
//! `--default-ssl-policy`. It reads neither `tls.certificateRefs` (Secrets; ALBs and NLBs take
//! ACM certificates only) nor `tls.mode`. The same rules apply as to Ingresses: every secure
//! listener has ACM certificates that are valid and cover its hosts (the listener's `hostname`
//! and those of the HTTPRoutes attached to it), a good security policy, and every HTTP
//! listener's routes redirect to HTTPS (a listener no route attaches to serves nothing).
//!
//! A Gateway is selected by `gatewaySelector` (not `ingressSelector`) and `namespaceSelector`.

mod judge;
mod routes;
#[cfg(test)]
mod tests;
mod types;

pub use types::*;

use super::{AlbDefaults, InventoryIndex, excluded_by};
use crate::api::TlsIngressPolicySpec;
use crate::policy::{Facts, Verdict, resource_ref};
use kube::ResourceExt;

/// The `controllerName` of the AWS Load Balancer Controller's ALB gateway classes.
pub const ALB_GATEWAY_CONTROLLER: &str = "gateway.k8s.aws/alb";
/// The `controllerName` of its NLB gateway classes.
pub const NLB_GATEWAY_CONTROLLER: &str = "gateway.k8s.aws/nlb";
const CONFIGURATION_GROUP: &str = "gateway.k8s.aws";
const CONFIGURATION_KIND: &str = "LoadBalancerConfiguration";

/// The Gateway API objects one evaluation sees.
#[derive(Clone, Debug, Default)]
pub struct GatewayInventory<'a> {
    pub gateways: Vec<&'a Gateway>,
    pub http_routes: Vec<&'a HTTPRoute>,
    pub gateway_classes: Vec<&'a GatewayClass>,
    pub load_balancer_configurations: Vec<&'a LoadBalancerConfiguration>,
}

/// Which load balancer the controller builds for a Gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Alb,
    Nlb,
}

/// Why a Gateway's LoadBalancerConfigurations are not known.
enum Unresolved {
    /// The controller refuses the reference.
    Refused(String),
    /// The reference names a configuration not among the inputs.
    Absent(String),
}

/// The LoadBalancerConfigurations of a Gateway, the preferred one first (`mergingMode` of the
/// class's: `prefer-gateway-class` unless it says `prefer-gateway`).
struct Configurations<'a> {
    ordered: Vec<&'a LoadBalancerConfiguration>,
}

impl<'a> Configurations<'a> {
    /// The `listenerConfigurations` entry for `port`, from the preferred configuration that has one.
    fn listener(&self, port: i32) -> Option<(&'a ListenerConfiguration, &'a LoadBalancerConfiguration)> {
        self.ordered.iter().find_map(|configuration| {
            let entry =
                configuration.spec.listener_configurations.iter().find(|entry| entry.port() == Some(port));
            entry.map(|entry| (entry, *configuration))
        })
    }
}

impl<'a> GatewayInventory<'a> {
    /// The HTTPRoutes whose `parentRefs` name `gateway`: the routes its verdict depends on.
    pub fn routes_naming<'s>(&'s self, gateway: &'s Gateway) -> impl Iterator<Item = &'a HTTPRoute> + 's {
        self.http_routes
            .iter()
            .copied()
            .filter(|route| routes::parents_naming(route, gateway).next().is_some())
    }

    fn class(&self, name: &str) -> Option<&'a GatewayClass> {
        self.gateway_classes.iter().copied().find(|class| class.name_any() == name)
    }

    fn configuration(&self, namespace: &str, name: &str) -> Option<&'a LoadBalancerConfiguration> {
        self.load_balancer_configurations
            .iter()
            .copied()
            .find(|c| c.name_any() == name && c.namespace().as_deref().unwrap_or("default") == namespace)
    }

    /// The configurations a Gateway uses, or why they are not known.
    fn configurations(
        &self,
        class: &GatewayClass,
        gateway: &Gateway,
    ) -> Result<Configurations<'a>, Unresolved> {
        let is_configuration = |reference: &ParametersRef| {
            reference.group == CONFIGURATION_GROUP && reference.kind == CONFIGURATION_KIND
        };
        let mut ordered = Vec::new();
        let mut prefer_gateway = false;
        if let Some(reference) = class.spec.parameters_ref.as_ref().filter(|r| is_configuration(r)) {
            let Some(namespace) = reference.namespace.as_deref() else {
                return Err(Unresolved::Refused(format!(
                    "GatewayClass `{}` references LoadBalancerConfiguration `{}` without a namespace, which the \
                     controller requires",
                    class.name_any(),
                    reference.name
                )));
            };
            let found = self.configuration(namespace, &reference.name).ok_or_else(|| {
                Unresolved::Absent(format!(
                    "GatewayClass `{}` references LoadBalancerConfiguration `{namespace}/{}`, which is not among the \
                     inputs",
                    class.name_any(),
                    reference.name
                ))
            })?;
            prefer_gateway = found.spec.merging_mode.as_deref() == Some("prefer-gateway");
            ordered.push(found);
        }
        let own = gateway.spec.infrastructure.as_ref().and_then(|i| i.parameters_ref.as_ref());
        if let Some(reference) = own.filter(|r| is_configuration(r)) {
            let namespace = gateway.namespace().unwrap_or_else(|| "default".into());
            let found = self.configuration(&namespace, &reference.name).ok_or_else(|| {
                Unresolved::Absent(format!(
                    "infrastructure.parametersRef names LoadBalancerConfiguration `{namespace}/{}`, which is not \
                     among the inputs",
                    reference.name
                ))
            })?;
            if prefer_gateway {
                ordered.insert(0, found);
            } else {
                ordered.push(found);
            }
        }
        Ok(Configurations { ordered })
    }
}

/// Evaluates one Gateway.
pub fn evaluate_gateway(
    policy: &TlsIngressPolicySpec,
    gateway: &Gateway,
    inventory: &GatewayInventory<'_>,
    index: &InventoryIndex<'_>,
    facts: &dyn Facts,
    defaults: &AlbDefaults,
) -> Verdict {
    if !policy.include_gateways {
        return Verdict::NotApplicable("the policy does not include Gateways".into());
    }
    let class_name = &gateway.spec.gateway_class_name;
    let Some(class) = inventory.class(class_name) else {
        return defaults.absent(format!(
            "GatewayClass `{class_name}` is not among the inputs, so which controller builds the Gateway is unknown"
        ));
    };
    let kind = match class.spec.controller_name.as_str() {
        ALB_GATEWAY_CONTROLLER => Kind::Alb,
        NLB_GATEWAY_CONTROLLER => Kind::Nlb,
        other => {
            return Verdict::NotApplicable(format!(
                "GatewayClass `{class_name}` is implemented by `{other}`, not the AWS Load Balancer Controller"
            ));
        }
    };
    if let Some(verdict) = excluded_by(
        policy,
        policy.gateway_selector.as_ref(),
        "gatewaySelector",
        &gateway.metadata,
        index,
        defaults,
    ) {
        return verdict;
    }
    let routes = routes::attached(gateway, &inventory.http_routes, index);
    let ledger = match inventory.configurations(class, gateway) {
        Ok(configurations) => judge::judge(policy, gateway, kind, &configurations, &routes, facts, defaults),
        // Offline the configuration may well exist in the cluster, and it decides the listeners.
        Err(Unresolved::Absent(reason)) if !defaults.inventory_complete => return Verdict::NotJudged(reason),
        Err(Unresolved::Refused(reason) | Unresolved::Absent(reason)) => judge::refused(reason),
    };
    ledger.into_verdict(&resource_ref(gateway))
}
