//! Which Ingresses the AWS Load Balancer Controller implements, and with which IngressClassParams
//! (`pkg/ingress/group_loader.go` `classifyIngress`, `class_loader.go`). EKS Auto Mode's
//! `eks.amazonaws.com/alb` classes are resolved the same way, against its own IngressClassParams.

use super::AlbDefaults;
use super::annotations::{ALB_CONTROLLER, AUTO_MODE_ALB_CONTROLLER, DEFAULT_CLASS, LEGACY_CLASS, annotation};
use super::ledger::Issue;
use super::params::{AutoModeIngressClassParams, ClassParams, IngressClassParams};
use crate::api::Severity;
use crate::policy::{Rule, Verdict, selector};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::HashMap;

/// API group an ALB IngressClass's `spec.parameters` must name, per controller, and the kind.
const PARAMS_API_GROUP: &str = "elbv2.k8s.aws";
const AUTO_MODE_PARAMS_API_GROUP: &str = "eks.amazonaws.com";
const PARAMS_KIND: &str = "IngressClassParams";

/// Lookups by name over the objects an evaluation sees, built once per evaluation.
pub struct InventoryIndex<'a> {
    classes: HashMap<&'a str, &'a IngressClass>,
    params: HashMap<&'a str, &'a IngressClassParams>,
    auto_mode_params: HashMap<&'a str, &'a AutoModeIngressClassParams>,
    namespaces: HashMap<&'a str, &'a Namespace>,
    default_class: DefaultClass<'a>,
}

/// The IngressClass the apiserver gives Ingresses created without one.
enum DefaultClass<'a> {
    None,
    One(&'a IngressClass),
    /// Several classes are marked default: the apiserver then refuses Ingresses without a class.
    Ambiguous,
}

impl<'a> InventoryIndex<'a> {
    pub fn new(
        ingress_classes: &[&'a IngressClass],
        ingress_class_params: &[&'a IngressClassParams],
        namespaces: &[&'a Namespace],
    ) -> InventoryIndex<'a> {
        let by_name = |meta: &'a ObjectMeta| meta.name.as_deref().unwrap_or_default();
        let mut default_class = DefaultClass::None;
        for class in ingress_classes {
            if annotation(class.metadata.annotations.as_ref(), DEFAULT_CLASS) == Some("true") {
                default_class = match default_class {
                    DefaultClass::None => DefaultClass::One(class),
                    _ => DefaultClass::Ambiguous,
                };
            }
        }
        InventoryIndex {
            classes: ingress_classes.iter().map(|class| (by_name(&class.metadata), *class)).collect(),
            params: ingress_class_params.iter().map(|params| (by_name(&params.metadata), *params)).collect(),
            auto_mode_params: HashMap::new(),
            namespaces: namespaces.iter().map(|ns| (by_name(&ns.metadata), *ns)).collect(),
            default_class,
        }
    }

    /// Adds EKS Auto Mode's IngressClassParams (a name space of their own).
    pub fn with_auto_mode_params(mut self, params: &[&'a AutoModeIngressClassParams]) -> Self {
        let name =
            |params: &'a AutoModeIngressClassParams| params.metadata.name.as_deref().unwrap_or_default();
        self.auto_mode_params.extend(params.iter().map(|params| (name(params), *params)));
        self
    }

    fn class_params(&self, auto_mode: bool, name: &str) -> Option<ClassParams<'a>> {
        match auto_mode {
            false => self.params.get(name).map(|params| ClassParams::LoadBalancerController(params)),
            true => self.auto_mode_params.get(name).map(|params| ClassParams::AutoMode(params)),
        }
    }

    /// Every object indexed, in no particular order.
    pub fn metadata(&self) -> impl Iterator<Item = &'a ObjectMeta> + '_ {
        let classes = self.classes.values().map(|class| &class.metadata);
        let params = self.params.values().map(|params| &params.metadata);
        let auto_mode_params = self.auto_mode_params.values().map(|params| &params.metadata);
        let namespaces = self.namespaces.values().map(|namespace| &namespace.metadata);
        classes.chain(params).chain(auto_mode_params).chain(namespaces)
    }

    pub fn namespace(&self, name: &str) -> Option<&'a Namespace> {
        self.namespaces.get(name).copied()
    }
}

/// Whether the ALB controller implements an Ingress.
#[derive(Debug)]
pub enum IngressClassification<'a> {
    Alb(AlbClass<'a>),
    /// Not an Ingress the controller is known to implement, and its verdict: not applicable
    /// (another controller's, or no controller's), or not judged where that turns on an object
    /// not among the inputs.
    NotAlb(Verdict),
}

/// How the ALB controller sees an Ingress it implements.
#[derive(Debug, Default)]
pub struct AlbClass<'a> {
    /// The IngressClass, when the Ingress is claimed through one rather than the legacy annotation.
    pub class_name: Option<&'a str>,
    pub params: Option<ClassParams<'a>>,
    /// EKS Auto Mode implements the class (`eks.amazonaws.com/alb`), not the self-managed
    /// controller: it ignores the `group.name` annotation.
    pub auto_mode: bool,
    /// A class configuration the controller rejects (it then leaves the Ingress alone).
    pub(super) problem: Option<Issue>,
}

/// Classifies an Ingress the way the controller does: the legacy `kubernetes.io/ingress.class`
/// annotation first (matched against the controller's `--ingress-class` alone, no IngressClass
/// object, in `class_annotation_matcher.go`), then `spec.ingressClassName`, then the default
/// IngressClass. An `ingressClassName` naming a class that is not among the inputs counts as ALB
/// when it is the controller's own class name (`alb` unless configured otherwise): manifests
/// checked offline rarely include the IngressClass the controller's chart installs.
pub fn classify<'a>(
    ingress: &'a Ingress,
    index: &InventoryIndex<'a>,
    defaults: &AlbDefaults,
) -> IngressClassification<'a> {
    if let Some(legacy) = annotation(ingress.metadata.annotations.as_ref(), LEGACY_CLASS) {
        return if legacy == defaults.ingress_class {
            IngressClassification::Alb(AlbClass::default())
        } else {
            not_alb(format!("{LEGACY_CLASS} is `{legacy}`"))
        };
    }
    let class_name = ingress.spec.as_ref().and_then(|spec| spec.ingress_class_name.as_deref());
    let class = match class_name {
        Some(name) => match index.classes.get(name) {
            Some(class) => *class,
            None if name == defaults.ingress_class => {
                return IngressClassification::Alb(AlbClass { class_name, ..AlbClass::default() });
            }
            None => {
                return IngressClassification::NotAlb(defaults.absent(format!(
                    "IngressClass `{name}` is not among the inputs and is not the ALB controller's `{}`",
                    defaults.ingress_class
                )));
            }
        },
        None => match index.default_class {
            DefaultClass::One(class) => class,
            DefaultClass::None => return not_alb("the Ingress has no class".into()),
            DefaultClass::Ambiguous => {
                return not_alb(
                    "the Ingress has no class and several IngressClasses are marked default".into(),
                );
            }
        },
    };
    let class_spec = class.spec.as_ref();
    let controller = class_spec.and_then(|spec| spec.controller.as_deref()).unwrap_or_default();
    let name = class.metadata.name.as_deref().unwrap_or_default();
    let (auto_mode, params_group) = match controller {
        ALB_CONTROLLER => (false, PARAMS_API_GROUP),
        AUTO_MODE_ALB_CONTROLLER => (true, AUTO_MODE_PARAMS_API_GROUP),
        _ => return not_alb(format!("IngressClass `{name}` uses controller `{controller}`")),
    };
    let mut alb = AlbClass { class_name: Some(name), auto_mode, ..AlbClass::default() };
    let Some(reference) = class_spec.and_then(|spec| spec.parameters.as_ref()) else {
        return IngressClassification::Alb(alb);
    };
    if reference.api_group.as_deref() != Some(params_group) || reference.kind != PARAMS_KIND {
        alb.problem = Some(class_problem(
            format!(
                "IngressClass `{name}` references unknown parameters; the controller ignores this Ingress"
            ),
            format!(
                "Set spec.parameters of IngressClass `{name}` to apiGroup: {params_group}, kind: {PARAMS_KIND}"
            ),
        ));
        return IngressClassification::Alb(alb);
    }
    let params_name = reference.name.as_str();
    match index.class_params(auto_mode, params_name) {
        Some(params) => match namespace_refused(ingress, params, index, defaults) {
            Ok(problem) => {
                alb.params = Some(params);
                alb.problem = problem;
            }
            Err(unknown) => return IngressClassification::NotAlb(unknown),
        },
        // Offline the params may well exist in the cluster, and they decide the whole Ingress.
        None if !defaults.inventory_complete => {
            return IngressClassification::NotAlb(Verdict::NotJudged(format!(
                "IngressClass `{name}` references IngressClassParams `{params_name}`, which is not among the inputs"
            )));
        }
        None => {
            alb.problem = Some(class_problem(
                format!(
                    "IngressClass `{name}` references IngressClassParams `{params_name}`, which does not exist; the \
                     controller does not reconcile Ingresses of a class whose parameters are missing"
                ),
                format!(
                    "Create IngressClassParams `{params_name}`, or set spec.parameters of IngressClass `{name}` to \
                     existing ones"
                ),
            ));
        }
    }
    IngressClassification::Alb(alb)
}

fn not_alb<'a>(reason: String) -> IngressClassification<'a> {
    IngressClassification::NotAlb(Verdict::NotApplicable(reason))
}

/// The controller refuses an Ingress whose namespace the IngressClassParams' `namespaceSelector`
/// does not select (`class_loader.go`). A selector with requirements needs the Namespace object:
/// without it the Ingress is not judged offline (`Err`), and nothing is said in a cluster.
fn namespace_refused(
    ingress: &Ingress,
    params: ClassParams<'_>,
    index: &InventoryIndex<'_>,
    defaults: &AlbDefaults,
) -> Result<Option<Issue>, Verdict> {
    let Some(selector) = params.namespace_selector() else { return Ok(None) };
    let namespace_name = ingress.metadata.namespace.as_deref().unwrap_or("default");
    let params_name = params.name();
    let Some(namespace) = index.namespace(namespace_name) else {
        let requires = selector.match_labels.iter().flatten().next().is_some()
            || selector.match_expressions.iter().flatten().next().is_some();
        if requires && !defaults.inventory_complete {
            return Err(Verdict::NotJudged(format!(
                "namespace `{namespace_name}` is not among the inputs, so whether the namespaceSelector of \
                 IngressClassParams `{params_name}` lets the controller take this Ingress is not known"
            )));
        }
        return Ok(None);
    };
    if selector::matches(Some(selector), namespace.metadata.labels.as_ref()) {
        return Ok(None);
    }
    Ok(Some(class_problem(
        format!(
            "namespaceSelector of IngressClassParams `{params_name}` does not select namespace `{namespace_name}`; \
             the controller refuses this Ingress"
        ),
        format!(
            "Label namespace `{namespace_name}` to match spec.namespaceSelector of IngressClassParams `{params_name}`, \
             or use another IngressClass"
        ),
    )))
}

/// A class configuration the controller rejects. Medium: the controller then leaves the
/// Ingress's ALB as it was rather than exposing anything new.
fn class_problem(message: String, remediation: String) -> Issue {
    Issue::new(Rule::AlbIngressAnnotationsValid, message, remediation).at(Severity::Medium)
}

#[cfg(test)]
mod tests;
