//! `TlsIngressPolicy`: ALB Ingresses and NLB Services terminate TLS with valid ACM certificates,
//! redirect HTTP to HTTPS and use security policies with a high enough TLS floor.
//!
//! Ingresses are judged the way the AWS Load Balancer Controller builds them: Ingresses of one
//! IngressGroup become one ALB, so a group is evaluated as a whole ([`alb_groups`],
//! [`evaluate_group`]) and each finding goes to the member whose setting causes it (or, when no
//! one member does, to the group's first member). A member that is exempt or not selected by the
//! policy still shapes the ALB; findings it causes go to the first judged member, naming it.
//!
//! Rules that need AWS facts read them through [`Facts`]: a fact not gathered (offline) or whose
//! lookup failed leaves the rule skipped — a failed lookup says nothing about the certificate, and
//! the component that gathered the facts reports its failures — while a certificate AWS does not
//! know is a finding.
//!
//! Settings the controller would reject (bad `listen-ports` JSON, a group name it refuses, a
//! missing IngressClassParams) are `alb-ingress-annotations-valid` findings; the rest of the
//! Ingress is still judged on what it asks for.
//!
//! Selection: `ingressSelector` matches the object's labels and `namespaceSelector` its
//! Namespace's labels. When a non-empty `namespaceSelector` is set and the Namespace object is not
//! among the inputs, the object is not judged offline ([`Verdict::NotJudged`]); in a cluster,
//! where every Namespace is seen, it is not selected.

mod alb;
mod alb_certificates;
mod annotations;
#[cfg(test)]
mod auto_mode_tests;
mod certificate_keys;
mod certificates;
mod class;
pub mod gateway;
mod group;
mod ledger;
#[cfg(test)]
mod offline_tests;
mod params;
mod service;
mod ssl_policy;
#[cfg(test)]
mod test_support;
mod waf;

pub use alb::evaluate_group;
pub use certificates::name_covers;
pub use class::{AlbClass, IngressClassification, InventoryIndex, classify};
pub use gateway::{GatewayInventory, evaluate_gateway};
pub use group::{AlbGroup, AlbGroups, AlbMember, GroupId, alb_groups};
pub use params::{
    AutoModeIngressClassParams, AutoModeIngressClassParamsSpec, ClassParams, IngressClassParams,
    IngressClassParamsSpec, IngressGroupParams, SharedParams,
};
pub use service::evaluate_service;
pub use ssl_policy::{SslPolicy, predefined};

use super::{Evaluation, Facts, Verdict, exemption, resource_ref, selector};
use crate::api::TlsIngressPolicySpec;
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// The objects one evaluation of a TlsIngressPolicy sees.
#[derive(Clone, Copy, Debug, Default)]
pub struct IngressInventory<'a> {
    pub ingresses: &'a [&'a Ingress],
    pub ingress_classes: &'a [&'a IngressClass],
    pub ingress_class_params: &'a [&'a IngressClassParams],
    /// EKS Auto Mode's (`eks.amazonaws.com/v1`).
    pub auto_mode_class_params: &'a [&'a AutoModeIngressClassParams],
    pub services: &'a [&'a Service],
    pub namespaces: &'a [&'a Namespace],
}

/// Settings of the AWS Load Balancer Controller deployment that change what it builds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlbDefaults {
    /// Security policy of HTTPS listeners without `ssl-policy` and of NLB TLS listeners without
    /// `aws-load-balancer-ssl-negotiation-policy`: the controller flag `--default-ssl-policy`,
    /// which its Ingress and Service model builders both take.
    pub ssl_policy: String,
    /// The class the controller claims: the `kubernetes.io/ingress.class` value it accepts
    /// (controller flag `--ingress-class`).
    pub ingress_class: String,
    /// The cluster runs EKS Auto Mode, whose admission sets `loadBalancerClass:
    /// eks.amazonaws.com/nlb` on LoadBalancer Services created without a class. A live cluster's
    /// Services already carry it; manifests checked offline do not.
    pub eks_auto_mode: bool,
    /// The inventory holds every object of the cluster, as the controllers' watches do: an
    /// IngressClass or Namespace it lacks does not exist. `dpo check` sees only the manifests it
    /// is given, so there an object whose verdict depends on an absent one is not judged.
    pub inventory_complete: bool,
}

/// The controller's `--default-ssl-policy` unless set (`pkg/config/controller_config.go`).
pub const DEFAULT_SSL_POLICY: &str = "ELBSecurityPolicy-2016-08";
/// The controller's `--ingress-class` unless set (`pkg/config/ingress_config.go`).
pub const DEFAULT_INGRESS_CLASS: &str = "alb";

impl Default for AlbDefaults {
    fn default() -> Self {
        AlbDefaults {
            ssl_policy: DEFAULT_SSL_POLICY.into(),
            ingress_class: DEFAULT_INGRESS_CLASS.into(),
            eks_auto_mode: false,
            inventory_complete: true,
        }
    }
}

impl AlbDefaults {
    /// The verdict of an object whose verdict depends on one the inventory lacks: out of scope
    /// where the inventory is complete (the object does not exist), not judged where it is not.
    fn absent(&self, reason: String) -> Verdict {
        match self.inventory_complete {
            true => Verdict::NotApplicable(reason),
            false => Verdict::NotJudged(reason),
        }
    }

    /// Checks a `--default-ssl-policy` value: an ELB security policy name (letters, digits, `-`).
    /// A name ELB does not predefine is accepted here and reported on the listeners that use it.
    pub fn parse_ssl_policy(value: &str) -> Result<String, String> {
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(format!(
                "{value:?} is not an ELB security policy name: give the controller's --default-ssl-policy, such as \
                 ELBSecurityPolicy-TLS13-1-2-2021-06 ({DEFAULT_SSL_POLICY} unless it sets one)"
            ));
        }
        Ok(value.to_string())
    }

    /// Checks an `--ingress-class` value: an IngressClass name (a lowercase DNS subdomain).
    pub fn parse_ingress_class(value: &str) -> Result<String, String> {
        let label_ok = |label: &str| {
            !label.is_empty()
                && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        };
        if value.len() > 253 || !value.split('.').all(label_ok) {
            return Err(format!(
                "{value:?} is not an IngressClass name (lowercase letters, digits, '-' and '.'): give the \
                 controller's --ingress-class ({DEFAULT_INGRESS_CLASS} unless it sets one)"
            ));
        }
        Ok(value.to_string())
    }
}

/// Evaluates a TlsIngressPolicy over an inventory: one verdict per Ingress in input order, then
/// one per Service, then one per Gateway.
pub fn evaluate_tls_policy(
    policy: &TlsIngressPolicySpec,
    inventory: &IngressInventory<'_>,
    gateways: &GatewayInventory<'_>,
    facts: &dyn Facts,
    defaults: &AlbDefaults,
) -> Evaluation {
    let index =
        InventoryIndex::new(inventory.ingress_classes, inventory.ingress_class_params, inventory.namespaces)
            .with_auto_mode_params(inventory.auto_mode_class_params);
    let grouping = alb_groups(inventory.ingresses, &index, defaults);
    let mut verdicts: Vec<Option<Verdict>> = vec![None; inventory.ingresses.len()];
    for (position, verdict) in
        not_alb_verdicts(policy, grouping.not_alb, inventory.ingresses, &index, defaults)
    {
        verdicts[position] = Some(verdict);
    }
    for group in &grouping.groups {
        let group_verdicts = evaluate_group(policy, group, &index, facts, defaults);
        for (member, verdict) in group.members.iter().zip(group_verdicts) {
            verdicts[member.position] = Some(verdict);
        }
    }
    let mut evaluation = Evaluation::default();
    for (ingress, verdict) in inventory.ingresses.iter().zip(verdicts) {
        // Every position is filled: alb_groups places each Ingress in a group or in not_alb.
        if let Some(verdict) = verdict {
            evaluation.push(resource_ref(*ingress), verdict);
        }
    }
    for service in inventory.services {
        evaluation.push(resource_ref(*service), evaluate_service(policy, service, &index, facts, defaults));
    }
    for gateway in &gateways.gateways {
        let verdict = evaluate_gateway(policy, gateway, gateways, &index, facts, defaults);
        evaluation.push(resource_ref(*gateway), verdict);
    }
    evaluation
}

/// The verdicts of the Ingresses no ALB is known to serve ([`AlbGroups::not_alb`], by position in
/// `ingresses`). One not judged for want of an object is first put to the policy's selectors: an
/// Ingress the policy does not select is out of scope whatever else the inputs lack.
pub fn not_alb_verdicts(
    policy: &TlsIngressPolicySpec,
    not_alb: Vec<(usize, Verdict)>,
    ingresses: &[&Ingress],
    index: &InventoryIndex<'_>,
    defaults: &AlbDefaults,
) -> Vec<(usize, Verdict)> {
    not_alb
        .into_iter()
        .map(|(position, verdict)| match verdict {
            Verdict::NotJudged(_) => {
                let excluded = excluded(policy, &ingresses[position].metadata, index, defaults);
                (position, excluded.unwrap_or(verdict))
            }
            verdict => (position, verdict),
        })
        .collect()
}

/// The verdict for an object the policy does not judge (not selected, or exempt, or whose
/// Namespace is needed and absent); `None` for one it judges.
fn excluded(
    policy: &TlsIngressPolicySpec,
    meta: &ObjectMeta,
    index: &InventoryIndex<'_>,
    defaults: &AlbDefaults,
) -> Option<Verdict> {
    excluded_by(policy, policy.ingress_selector.as_ref(), "ingressSelector", meta, index, defaults)
}

/// [`excluded`] with the object selector of the object's kind (`field` names it).
fn excluded_by(
    policy: &TlsIngressPolicySpec,
    object_selector: Option<&crate::api::LabelSelector>,
    field: &str,
    meta: &ObjectMeta,
    index: &InventoryIndex<'_>,
    defaults: &AlbDefaults,
) -> Option<Verdict> {
    if !selector::matches(object_selector, meta.labels.as_ref()) {
        return Some(Verdict::NotApplicable(format!("not selected by the policy's {field}")));
    }
    if let Some(namespace_selector) = policy.namespace_selector.as_ref().filter(|s| !s.is_empty()) {
        let name = meta.namespace.as_deref().unwrap_or("default");
        let Some(namespace) = index.namespace(name) else {
            return Some(defaults.absent(format!(
                "namespace `{name}` is not among the inputs, and the policy's namespaceSelector needs its labels"
            )));
        };
        if !selector::matches(Some(namespace_selector), namespace.metadata.labels.as_ref()) {
            return Some(Verdict::NotApplicable(format!(
                "namespace `{name}` is not selected by the policy's namespaceSelector"
            )));
        }
    }
    exemption(meta).map(|reason| Verdict::Exempt(reason.to_string()))
}

#[cfg(test)]
mod tests;
