//! Offline, the inputs are some manifests rather than the whole cluster: an object whose verdict
//! depends on one they lack is not judged, where in a cluster it would be out of scope.

use super::AlbDefaults;
use super::test_support::*;
use crate::api::TlsIngressPolicySpec;
use crate::policy::Verdict;

fn offline_defaults() -> AlbDefaults {
    AlbDefaults { inventory_complete: false, ..AlbDefaults::default() }
}

fn offline_verdicts(yaml: &str, policy: &TlsIngressPolicySpec) -> Vec<(String, Verdict)> {
    evaluate_with(yaml, policy, &offline(), &offline_defaults())
        .verdicts
        .into_iter()
        .map(|v| (v.resource.name, v.verdict))
        .collect()
}

#[test]
fn an_ingress_of_a_class_not_among_the_inputs_is_not_judged() {
    let nginx = shop(&[]).replace("ingressClassName: alb", "ingressClassName: nginx");
    assert_eq!(
        offline_verdicts(&nginx, &policy()),
        [(
            "web".to_string(),
            Verdict::NotJudged(
                "IngressClass `nginx` is not among the inputs and is not the ALB controller's `alb`".into()
            )
        )]
    );
    // With the class among the inputs it is judged, or out of scope.
    let nginx_class = "kind: IngressClass\nmetadata: {name: nginx}\nspec: {controller: k8s.io/ingress-nginx}";
    let [(_, verdict)] = &offline_verdicts(&format!("{nginx_class}\n---\n{nginx}"), &policy())[..] else {
        panic!("one verdict")
    };
    assert!(matches!(verdict, Verdict::NotApplicable(reason) if reason.contains("k8s.io/ingress-nginx")));
    // The controller's own class needs no IngressClass object.
    assert!(matches!(&offline_verdicts(&shop(&COMPLIANT), &policy())[0].1, Verdict::Judged(_)));
    // An Ingress the policy does not select is out of scope, whatever its class.
    let selecting: TlsIngressPolicySpec =
        serde_yaml::from_str("ingressSelector: {matchLabels: {tier: public}}").unwrap();
    assert_eq!(
        offline_verdicts(&nginx, &selecting)[0].1,
        Verdict::NotApplicable("not selected by the policy's ingressSelector".into())
    );
}

#[test]
fn a_member_whose_params_are_not_among_the_inputs_leaves_the_group_unjudged_by_it() {
    let params_class = "kind: IngressClass
metadata: {name: shared}
spec:
  controller: ingress.k8s.aws/alb
  parameters: {apiGroup: elbv2.k8s.aws, kind: IngressClassParams, name: shared}";
    let shared = ("alb.ingress.kubernetes.io/group.name", "shared");
    // `api` would conflict on port 443 were it in the group; its params may move it elsewhere.
    let api = alb_ingress(
        "api",
        "api.example.com",
        &[shared, ("alb.ingress.kubernetes.io/listen-ports", r#"[{"HTTP": 443}]"#)],
    )
    .replace("ingressClassName: alb", "ingressClassName: shared");
    let yaml = format!(
        "{params_class}\n---\n{}\n---\n{api}",
        shop(&[shared, BOTH_PORTS, CERTIFICATE, REDIRECT, MODERN_POLICY])
    );
    let verdicts = offline_verdicts(&yaml, &policy());
    assert_eq!(
        verdicts[1],
        (
            "api".to_string(),
            Verdict::NotJudged(
                "IngressClass `shared` references IngressClassParams `shared`, which is not among the inputs"
                    .into()
            )
        )
    );
    let Verdict::Judged(web) = &verdicts[0].1 else { panic!("web is judged: {:?}", verdicts[0]) };
    assert!(web.findings.is_empty(), "{:?}", web.findings);
    // In a cluster the missing params are a finding of the member, which stays in its group.
    let found = findings(&evaluate(&yaml, &policy(), &offline()));
    assert!(
        found.iter().any(|f| f.contains("IngressClassParams `shared`, which does not exist")),
        "{found:?}"
    );
}

#[test]
fn a_namespace_selector_over_a_namespace_not_among_the_inputs_is_not_judged() {
    let by_namespace: TlsIngressPolicySpec =
        serde_yaml::from_str("namespaceSelector: {matchLabels: {env: prod}}").unwrap();
    let service = "kind: Service
metadata: {name: api, namespace: shop, annotations: {service.beta.kubernetes.io/aws-load-balancer-type: external}}
spec: {type: LoadBalancer, ports: [{port: 443}]}";
    let yaml = format!("{}\n---\n{service}", shop(&COMPLIANT));
    let reason =
        "namespace `shop` is not among the inputs, and the policy's namespaceSelector needs its labels";
    assert_eq!(
        offline_verdicts(&yaml, &by_namespace),
        [
            ("web".to_string(), Verdict::NotJudged(reason.into())),
            ("api".to_string(), Verdict::NotJudged(reason.into()))
        ]
    );
    // In a cluster every Namespace is seen: an absent one selects nothing.
    let evaluation = evaluate(&yaml, &by_namespace, &offline());
    assert_eq!(verdict(&evaluation, "web"), &Verdict::NotApplicable(reason.into()));
    // The Namespace among the inputs decides it; an empty selector needs none.
    let prod = "kind: Namespace\nmetadata: {name: shop, labels: {env: prod}}";
    assert!(
        offline_verdicts(&format!("{prod}\n---\n{yaml}"), &by_namespace)
            .iter()
            .all(|(_, verdict)| matches!(verdict, Verdict::Judged(_)))
    );
    let everything: TlsIngressPolicySpec = serde_yaml::from_str("namespaceSelector: {}").unwrap();
    assert!(
        offline_verdicts(&yaml, &everything).iter().all(|(_, verdict)| matches!(verdict, Verdict::Judged(_)))
    );
    // Selection by labels comes first: an object not selected is out of scope whatever is missing.
    let labelled: TlsIngressPolicySpec = serde_yaml::from_str(
        "namespaceSelector: {matchLabels: {env: prod}}\ningressSelector: {matchLabels: {tier: public}}",
    )
    .unwrap();
    assert!(matches!(&offline_verdicts(&shop(&COMPLIANT), &labelled)[0].1, Verdict::NotApplicable(_)));
}
