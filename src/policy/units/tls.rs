//! TlsIngressPolicy as units: one per ALB (the Ingresses of an IngressGroup, or a lone Ingress)
//! and one per Service. IngressClasses, IngressClassParams and Namespaces (the objects of the
//! [`InventoryIndex`]) decide how Ingresses are grouped and selected, so they are inputs of every
//! unit.

use super::{Judge, Unit, UnitPlan, UnitVerdicts, Versions};
use crate::api::TlsIngressPolicySpec;
use crate::policy::ingress::{
    AlbDefaults, AlbGroup, InventoryIndex, alb_groups, evaluate_group, evaluate_service,
};
use crate::policy::{Facts, Verdict, resource_ref};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use std::iter;

/// The units of a TlsIngressPolicy: ALBs first, then Services.
pub struct TlsUnits<'a> {
    policy: &'a TlsIngressPolicySpec,
    defaults: &'a AlbDefaults,
    index: InventoryIndex<'a>,
    groups: Vec<AlbGroup<'a>>,
    services: Vec<&'a Service>,
}

impl Judge for TlsUnits<'_> {
    fn judge(&self, unit: usize, facts: &dyn Facts) -> UnitVerdicts {
        match self.groups.get(unit) {
            Some(group) => evaluate_group(self.policy, group, &self.index, facts, self.defaults)
                .into_iter()
                .map(Some)
                .collect(),
            None => {
                let service = self.services[unit - self.groups.len()];
                vec![Some(evaluate_service(self.policy, service, &self.index, facts, self.defaults))]
            }
        }
    }
}

/// Cuts a TlsIngressPolicy's world into units. Verdict slots are those of
/// `evaluate_tls_policy`: the Ingresses in input order, then the Services.
pub fn tls_plan<'a>(
    policy: &'a TlsIngressPolicySpec,
    ingresses: &[&'a Ingress],
    index: InventoryIndex<'a>,
    services: &[&'a Service],
    defaults: &'a AlbDefaults,
) -> UnitPlan<TlsUnits<'a>> {
    let grouping = alb_groups(ingresses, &index, defaults);
    let mut shared = Versions::default();
    index.metadata().for_each(|meta| shared.add(meta));

    let groups = grouping.groups.iter().map(|group| {
        Unit::new(&shared, group.members.iter().map(|member| (member.position, &member.ingress.metadata)))
    });
    let service_units = services
        .iter()
        .enumerate()
        .map(|(i, service)| Unit::new(&shared, iter::once((ingresses.len() + i, &service.metadata))));
    let units = groups.chain(service_units).collect();
    let resources =
        ingresses.iter().map(|o| resource_ref(*o)).chain(services.iter().map(|o| resource_ref(*o))).collect();
    let fixed =
        grouping.not_alb.into_iter().map(|(slot, reason)| (slot, Verdict::NotApplicable(reason))).collect();
    UnitPlan {
        judge: TlsUnits { policy, defaults, index, groups: grouping.groups, services: services.to_vec() },
        units,
        resources,
        fixed,
    }
}
