//! Classifying Ingresses as the controller does.

use super::*;
use crate::policy::ingress::test_support::{ingress, parse};

fn classify_with(ingress_yaml: &str, classes: &[IngressClass], params: &[IngressClassParams]) -> String {
    classify_auto(ingress_yaml, classes, params, &[])
}

fn classify_auto(
    ingress_yaml: &str,
    classes: &[IngressClass],
    params: &[IngressClassParams],
    auto_params: &[AutoModeIngressClassParams],
) -> String {
    classify_in(ingress_yaml, classes, params, auto_params, &AlbDefaults::default())
}

/// As `dpo check` classifies: its inputs are not the whole cluster.
fn classify_offline(ingress_yaml: &str, classes: &[IngressClass], params: &[IngressClassParams]) -> String {
    let offline = AlbDefaults { inventory_complete: false, ..AlbDefaults::default() };
    classify_in(ingress_yaml, classes, params, &[], &offline)
}

fn classify_in(
    ingress_yaml: &str,
    classes: &[IngressClass],
    params: &[IngressClassParams],
    auto_params: &[AutoModeIngressClassParams],
    defaults: &AlbDefaults,
) -> String {
    let ingress = ingress(ingress_yaml);
    let classes: Vec<_> = classes.iter().collect();
    let params: Vec<_> = params.iter().collect();
    let auto_params: Vec<_> = auto_params.iter().collect();
    let namespace: Namespace = parse("metadata: {name: shop, labels: {team: shop}}");
    let index = InventoryIndex::new(&classes, &params, &[&namespace]).with_auto_mode_params(&auto_params);
    match classify(&ingress, &index, defaults) {
        IngressClassification::NotAlb(Verdict::NotApplicable(reason)) => format!("not ALB: {reason}"),
        IngressClassification::NotAlb(Verdict::NotJudged(reason)) => format!("not judged: {reason}"),
        IngressClassification::NotAlb(other) => panic!("unexpected {other:?}"),
        IngressClassification::Alb(alb) => format!(
            "ALB class={:?} params={:?} problem={:?}",
            alb.class_name,
            alb.params.map(ClassParams::name),
            alb.problem.map(|issue| issue.message)
        ),
    }
}

fn class(yaml: &str) -> IngressClass {
    parse(yaml)
}

const ALB_CLASS: &str = "metadata: {name: public}\nspec: {controller: ingress.k8s.aws/alb}";
const NGINX_DEFAULT: &str = "metadata:
  name: nginx
  annotations: {ingressclass.kubernetes.io/is-default-class: \"true\"}
spec: {controller: k8s.io/ingress-nginx}";
const ALB_DEFAULT: &str = "metadata:
  name: public
  annotations: {ingressclass.kubernetes.io/is-default-class: \"true\"}
spec: {controller: ingress.k8s.aws/alb}";

#[test]
fn class_name_resolves_through_the_ingress_class() {
    let yaml = "metadata: {name: web, namespace: shop}\nspec: {ingressClassName: public}";
    assert_eq!(
        classify_with(yaml, &[class(ALB_CLASS)], &[]),
        "ALB class=Some(\"public\") params=None problem=None"
    );
    let nginx = class("metadata: {name: public}\nspec: {controller: k8s.io/ingress-nginx}");
    assert_eq!(
        classify_with(yaml, &[nginx], &[]),
        "not ALB: IngressClass `public` uses controller `k8s.io/ingress-nginx`"
    );
    assert!(
        classify_with(yaml, &[], &[]).starts_with("not ALB: IngressClass `public` is not among the inputs")
    );
}

#[test]
fn class_alb_counts_when_its_class_object_is_absent() {
    let yaml = "metadata: {name: web, namespace: shop}\nspec: {ingressClassName: alb}";
    assert_eq!(classify_with(yaml, &[], &[]), "ALB class=Some(\"alb\") params=None problem=None");
}

#[test]
fn legacy_annotation_takes_precedence_over_the_class_name() {
    let alb = "metadata: {name: web, namespace: shop, annotations: {kubernetes.io/ingress.class: alb}}
spec: {ingressClassName: nginx}";
    assert_eq!(classify_with(alb, &[class(NGINX_DEFAULT)], &[]), "ALB class=None params=None problem=None");
    let nginx = "metadata: {name: web, namespace: shop, annotations: {kubernetes.io/ingress.class: nginx}}
spec: {ingressClassName: public}";
    assert_eq!(
        classify_with(nginx, &[class(ALB_CLASS)], &[]),
        "not ALB: kubernetes.io/ingress.class is `nginx`"
    );
}

#[test]
fn default_class_applies_to_ingresses_without_one() {
    let yaml = "metadata: {name: web, namespace: shop}";
    assert_eq!(
        classify_with(yaml, &[class(ALB_DEFAULT)], &[]),
        "ALB class=Some(\"public\") params=None problem=None"
    );
    assert_eq!(
        classify_with(yaml, &[class(NGINX_DEFAULT)], &[]),
        "not ALB: IngressClass `nginx` uses controller `k8s.io/ingress-nginx`"
    );
    assert_eq!(classify_with(yaml, &[class(ALB_CLASS)], &[]), "not ALB: the Ingress has no class");
    assert_eq!(
        classify_with(yaml, &[class(ALB_DEFAULT), class(NGINX_DEFAULT)], &[]),
        "not ALB: the Ingress has no class and several IngressClasses are marked default"
    );
}

const CLASS_WITH_PARAMS: &str = "metadata: {name: public}
spec:
  controller: ingress.k8s.aws/alb
  parameters: {apiGroup: elbv2.k8s.aws, kind: IngressClassParams, name: shared}";

#[test]
fn params_are_resolved_and_checked() {
    let yaml = "metadata: {name: web, namespace: shop}\nspec: {ingressClassName: public}";
    let shared: IngressClassParams = parse(
        "apiVersion: elbv2.k8s.aws/v1beta1\nkind: IngressClassParams\nmetadata: {name: shared}\nspec: {}",
    );
    assert_eq!(
        classify_with(yaml, &[class(CLASS_WITH_PARAMS)], &[shared]),
        "ALB class=Some(\"public\") params=Some(\"shared\") problem=None"
    );
    assert!(
        classify_with(yaml, &[class(CLASS_WITH_PARAMS)], &[])
            .contains("references IngressClassParams `shared`, which does not exist")
    );
    let refusing: IngressClassParams = parse(
        "apiVersion: elbv2.k8s.aws/v1beta1\nkind: IngressClassParams\nmetadata: {name: shared}
spec: {namespaceSelector: {matchLabels: {team: web}}}",
    );
    assert!(
        classify_with(yaml, &[class(CLASS_WITH_PARAMS)], &[refusing])
            .contains("does not select namespace `shop`; the controller refuses this Ingress")
    );
    let unknown_kind = CLASS_WITH_PARAMS.replace("kind: IngressClassParams", "kind: ConfigMap");
    assert!(classify_with(yaml, &[class(&unknown_kind)], &[]).contains("references unknown parameters"));
}

#[test]
fn auto_mode_classes_resolve_their_own_params() {
    let yaml = "metadata: {name: web, namespace: shop}\nspec: {ingressClassName: auto}";
    let auto_class = class(
        "metadata: {name: auto}
spec:
  controller: eks.amazonaws.com/alb
  parameters: {apiGroup: eks.amazonaws.com, kind: IngressClassParams, name: shared}",
    );
    let auto_params: AutoModeIngressClassParams = parse(
        "apiVersion: eks.amazonaws.com/v1\nkind: IngressClassParams\nmetadata: {name: shared}\nspec: {}",
    );
    let elbv2_params: IngressClassParams = parse(
        "apiVersion: elbv2.k8s.aws/v1beta1\nkind: IngressClassParams\nmetadata: {name: shared}\nspec: {}",
    );
    assert_eq!(
        classify_auto(yaml, std::slice::from_ref(&auto_class), &[], &[auto_params]),
        "ALB class=Some(\"auto\") params=Some(\"shared\") problem=None"
    );
    // The self-managed controller's params of the same name are another object.
    assert!(
        classify_auto(yaml, std::slice::from_ref(&auto_class), &[elbv2_params], &[])
            .contains("references IngressClassParams `shared`, which does not exist")
    );
    let wrong_group = class(
        "metadata: {name: auto}
spec:
  controller: eks.amazonaws.com/alb
  parameters: {apiGroup: elbv2.k8s.aws, kind: IngressClassParams, name: shared}",
    );
    assert!(classify_auto(yaml, &[wrong_group], &[], &[]).contains("references unknown parameters"));
}

#[test]
fn offline_an_absent_class_other_than_the_controllers_is_not_judged() {
    let yaml = "metadata: {name: web, namespace: shop}\nspec: {ingressClassName: public}";
    assert_eq!(
        classify_offline(yaml, &[], &[]),
        "not judged: IngressClass `public` is not among the inputs and is not the ALB controller's `alb`"
    );
    // In a cluster the inventory is complete: the class does not exist, the controller ignores it.
    assert!(classify_with(yaml, &[], &[]).starts_with("not ALB: IngressClass `public` is not among"));
    // The controller's own class name, and a class among the inputs, need nothing more.
    let alb = "metadata: {name: web, namespace: shop}\nspec: {ingressClassName: alb}";
    assert_eq!(classify_offline(alb, &[], &[]), "ALB class=Some(\"alb\") params=None problem=None");
    assert_eq!(
        classify_offline(yaml, &[class(ALB_CLASS)], &[]),
        "ALB class=Some(\"public\") params=None problem=None"
    );
    // The legacy annotation is matched against the controller's class name alone, never an
    // IngressClass object, so the inputs lack nothing.
    let legacy = "metadata: {name: web, namespace: shop, annotations: {kubernetes.io/ingress.class: nginx}}";
    assert_eq!(classify_offline(legacy, &[], &[]), "not ALB: kubernetes.io/ingress.class is `nginx`");
}

#[test]
fn offline_absent_params_and_their_namespace_are_not_judged() {
    let yaml = "metadata: {name: web, namespace: shop}\nspec: {ingressClassName: public}";
    assert_eq!(
        classify_offline(yaml, &[class(CLASS_WITH_PARAMS)], &[]),
        "not judged: IngressClass `public` references IngressClassParams `shared`, which is not among the inputs"
    );
    // The namespaceSelector needs namespace `web`, which is not among the inputs.
    let elsewhere = "metadata: {name: web, namespace: web}\nspec: {ingressClassName: public}";
    let selecting: IngressClassParams = parse(
        "apiVersion: elbv2.k8s.aws/v1beta1\nkind: IngressClassParams\nmetadata: {name: shared}
spec: {namespaceSelector: {matchLabels: {team: web}}}",
    );
    assert_eq!(
        classify_offline(elsewhere, &[class(CLASS_WITH_PARAMS)], std::slice::from_ref(&selecting)),
        "not judged: namespace `web` is not among the inputs, so whether the namespaceSelector of \
             IngressClassParams `shared` lets the controller take this Ingress is not known"
    );
    assert_eq!(
        classify_with(elsewhere, &[class(CLASS_WITH_PARAMS)], std::slice::from_ref(&selecting)),
        "ALB class=Some(\"public\") params=Some(\"shared\") problem=None"
    );
    // An empty selector selects every namespace: nothing is missing.
    let everyone: IngressClassParams = parse(
        "apiVersion: elbv2.k8s.aws/v1beta1\nkind: IngressClassParams\nmetadata: {name: shared}
spec: {namespaceSelector: {}}",
    );
    assert_eq!(
        classify_offline(elsewhere, &[class(CLASS_WITH_PARAMS)], &[everyone]),
        "ALB class=Some(\"public\") params=Some(\"shared\") problem=None"
    );
    // The namespace among the inputs decides it as in a cluster.
    assert!(
        classify_offline(yaml, &[class(CLASS_WITH_PARAMS)], &[selecting])
            .contains("does not select namespace `shop`; the controller refuses this Ingress")
    );
}
