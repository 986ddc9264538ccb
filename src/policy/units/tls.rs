//! TlsIngressPolicy as units: one per ALB (the Ingresses of an IngressGroup, or a lone Ingress),
//! one per Service and one per Gateway. IngressClasses, IngressClassParams (the AWS Load Balancer
//! Controller's and EKS Auto Mode's), GatewayClasses, LoadBalancerConfigurations and Namespaces
//! decide how objects are grouped, built and selected, so they are inputs of every unit; a
//! Gateway's HTTPRoutes are inputs of its unit.

use super::{Judge, Unit, UnitPlan, UnitVerdicts, Versions};
use crate::api::TlsIngressPolicySpec;
use crate::policy::ingress::{
    AlbDefaults, AlbGroup, AutoModeIngressClassParams, GatewayInventory, IngressClassParams, InventoryIndex,
    alb_groups, evaluate_gateway, evaluate_group, evaluate_service, not_alb_verdicts,
};
use crate::policy::{Facts, resource_ref};
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use std::iter;

/// The objects a TlsIngressPolicy is evaluated over.
#[derive(Clone, Debug, Default)]
pub struct TlsObjects<'a> {
    pub ingresses: Vec<&'a Ingress>,
    pub ingress_classes: Vec<&'a IngressClass>,
    pub ingress_class_params: Vec<&'a IngressClassParams>,
    pub auto_mode_class_params: Vec<&'a AutoModeIngressClassParams>,
    pub services: Vec<&'a Service>,
    pub namespaces: Vec<&'a Namespace>,
    pub gateways: GatewayInventory<'a>,
}

/// The units of a TlsIngressPolicy: ALBs first, then Services, then Gateways.
pub struct TlsUnits<'a> {
    policy: &'a TlsIngressPolicySpec,
    defaults: &'a AlbDefaults,
    index: InventoryIndex<'a>,
    groups: Vec<AlbGroup<'a>>,
    services: Vec<&'a Service>,
    gateways: GatewayInventory<'a>,
}

impl Judge for TlsUnits<'_> {
    fn judge(&self, unit: usize, facts: &dyn Facts) -> UnitVerdicts {
        if let Some(group) = self.groups.get(unit) {
            return evaluate_group(self.policy, group, &self.index, facts, self.defaults)
                .into_iter()
                .map(Some)
                .collect();
        }
        let unit = unit - self.groups.len();
        let verdict = match self.services.get(unit) {
            Some(service) => evaluate_service(self.policy, service, &self.index, facts, self.defaults),
            None => {
                let gateway = self.gateways.gateways[unit - self.services.len()];
                evaluate_gateway(self.policy, gateway, &self.gateways, &self.index, facts, self.defaults)
            }
        };
        vec![Some(verdict)]
    }
}

/// Cuts a TlsIngressPolicy's world into units. Verdict slots are those of
/// `evaluate_tls_policy`: the Ingresses in input order, then the Services, then the Gateways.
pub fn tls_plan<'a>(
    policy: &'a TlsIngressPolicySpec,
    objects: &TlsObjects<'a>,
    defaults: &'a AlbDefaults,
) -> UnitPlan<TlsUnits<'a>> {
    let TlsObjects {
        ingresses,
        ingress_classes,
        ingress_class_params,
        auto_mode_class_params,
        services,
        namespaces,
        gateways,
    } = objects;
    let index = InventoryIndex::new(ingress_classes, ingress_class_params, namespaces)
        .with_auto_mode_params(auto_mode_class_params);
    let grouping = alb_groups(ingresses, &index, defaults);
    let fixed = not_alb_verdicts(policy, grouping.not_alb, ingresses, &index, defaults);
    let mut shared = Versions::default();
    index.metadata().for_each(|meta| shared.add(meta));
    gateways.gateway_classes.iter().for_each(|class| shared.add(&class.metadata));
    gateways
        .load_balancer_configurations
        .iter()
        .for_each(|configuration| shared.add(&configuration.metadata));

    let groups = grouping.groups.iter().map(|group| {
        Unit::new(&shared, group.members.iter().map(|member| (member.position, &member.ingress.metadata)))
    });
    let service_units = services
        .iter()
        .enumerate()
        .map(|(i, service)| Unit::new(&shared, iter::once((ingresses.len() + i, &service.metadata))));
    let first_gateway = ingresses.len() + services.len();
    let gateway_units = gateways.gateways.iter().enumerate().map(|(i, gateway)| {
        let mut inputs = shared.clone();
        gateways.routes_naming(gateway).for_each(|route| inputs.add(&route.metadata));
        Unit::new(&inputs, iter::once((first_gateway + i, &gateway.metadata)))
    });
    let units = groups.chain(service_units).chain(gateway_units).collect();
    let resources = ingresses
        .iter()
        .map(|o| resource_ref(*o))
        .chain(services.iter().map(|o| resource_ref(*o)))
        .chain(gateways.gateways.iter().map(|o| resource_ref(*o)))
        .collect();
    UnitPlan {
        judge: TlsUnits {
            policy,
            defaults,
            index,
            groups: grouping.groups,
            services: services.clone(),
            gateways: gateways.clone(),
        },
        units,
        resources,
        fixed,
    }
}
