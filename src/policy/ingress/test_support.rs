//! Test fixtures written as YAML manifests.

use super::{
    AlbDefaults, AutoModeIngressClassParams, GatewayInventory, IngressClassParams, IngressInventory,
    evaluate_tls_policy,
};
use crate::api::TlsIngressPolicySpec;
use crate::policy::facts::CertificateFacts;
use crate::policy::{Evaluation, Fact, FactSet, Facts, Judgement, Offline, Verdict};
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use serde::Deserialize;
use serde::de::DeserializeOwned;

pub fn parse<T: DeserializeOwned>(yaml: &str) -> T {
    crate::policy::testing::from_yaml(yaml)
}

pub fn ingress(yaml: &str) -> Ingress {
    parse(yaml)
}

/// The objects of a multi-document YAML stream, sorted by kind. Objects are leaked so the
/// inventory can borrow them for as long as a test runs.
#[derive(Default)]
pub struct Manifests {
    ingresses: Vec<&'static Ingress>,
    classes: Vec<&'static IngressClass>,
    params: Vec<&'static IngressClassParams>,
    auto_mode_params: Vec<&'static AutoModeIngressClassParams>,
    services: Vec<&'static Service>,
    namespaces: Vec<&'static Namespace>,
    gateways: GatewayInventory<'static>,
}

fn leak<T: DeserializeOwned>(document: serde_yaml::Value) -> &'static T {
    Box::leak(Box::new(
        serde_yaml::from_value(document).unwrap_or_else(|err| panic!("bad test object: {err}")),
    ))
}

impl Manifests {
    pub fn parse(yaml: &str) -> Manifests {
        let mut manifests = Manifests::default();
        for document in serde_yaml::Deserializer::from_str(yaml) {
            let document = serde_yaml::Value::deserialize(document).expect("test YAML parses");
            let api_version = document.get("apiVersion").and_then(serde_yaml::Value::as_str);
            match document.get("kind").and_then(serde_yaml::Value::as_str) {
                Some("Ingress") => manifests.ingresses.push(leak(document)),
                Some("IngressClass") => manifests.classes.push(leak(document)),
                Some("IngressClassParams") if api_version == Some("eks.amazonaws.com/v1") => {
                    manifests.auto_mode_params.push(leak(document))
                }
                Some("IngressClassParams") => manifests.params.push(leak(document)),
                Some("Service") => manifests.services.push(leak(document)),
                Some("Namespace") => manifests.namespaces.push(leak(document)),
                Some("Gateway") => manifests.gateways.gateways.push(leak(document)),
                Some("HTTPRoute") => manifests.gateways.http_routes.push(leak(document)),
                Some("GatewayClass") => manifests.gateways.gateway_classes.push(leak(document)),
                Some("LoadBalancerConfiguration") => {
                    manifests.gateways.load_balancer_configurations.push(leak(document))
                }
                other => panic!("unexpected kind {other:?} in test YAML"),
            }
        }
        manifests
    }

    pub fn inventory(&self) -> IngressInventory<'_> {
        IngressInventory {
            ingresses: &self.ingresses,
            ingress_classes: &self.classes,
            ingress_class_params: &self.params,
            auto_mode_class_params: &self.auto_mode_params,
            services: &self.services,
            namespaces: &self.namespaces,
        }
    }
}

/// Evaluates a policy over manifests with the controller's defaults.
pub fn evaluate(yaml: &str, policy: &TlsIngressPolicySpec, facts: &dyn Facts) -> Evaluation {
    evaluate_with(yaml, policy, facts, &AlbDefaults::default())
}

pub fn evaluate_with(
    yaml: &str,
    policy: &TlsIngressPolicySpec,
    facts: &dyn Facts,
    defaults: &AlbDefaults,
) -> Evaluation {
    let manifests = Manifests::parse(yaml);
    evaluate_tls_policy(policy, &manifests.inventory(), &manifests.gateways, facts, defaults)
}

/// Findings as `rule namespace/name: message => remediation`, in evaluation order.
pub fn findings(evaluation: &Evaluation) -> Vec<String> {
    evaluation
        .findings()
        .map(|f| {
            let namespace = f.resource.namespace.as_deref().unwrap_or_default();
            format!("{} {namespace}/{}: {} => {}", f.rule, f.resource.name, f.message, f.remediation)
        })
        .collect()
}

/// An ISSUED certificate for `names`, valid until `not_after`.
pub fn issued(arn: &str, names: &[&str], not_after: &str) -> CertificateFacts {
    CertificateFacts {
        arn: arn.into(),
        status: "ISSUED".into(),
        not_after: Some(not_after.parse().expect("test timestamp")),
        domain_names: names.iter().map(|name| name.to_string()).collect(),
        in_use: true,
        key_algorithm: Some("RSA_2048".into()),
    }
}

pub const ARN: &str = "arn:aws:acm:us-east-1:123456789012:certificate/shop";
pub const OTHER_ARN: &str = "arn:aws:acm:us-east-1:123456789012:certificate/other";
pub const BOTH_PORTS: (&str, &str) =
    ("alb.ingress.kubernetes.io/listen-ports", r#"[{"HTTP": 80}, {"HTTPS": 443}]"#);
pub const CERTIFICATE: (&str, &str) = ("alb.ingress.kubernetes.io/certificate-arn", ARN);
pub const REDIRECT: (&str, &str) = ("alb.ingress.kubernetes.io/ssl-redirect", "443");
pub const MODERN_POLICY: (&str, &str) =
    ("alb.ingress.kubernetes.io/ssl-policy", "ELBSecurityPolicy-TLS13-1-2-2021-06");
pub const COMPLIANT: [(&str, &str); 4] = [BOTH_PORTS, CERTIFICATE, REDIRECT, MODERN_POLICY];

pub fn now() -> jiff::Timestamp {
    "2025-06-01T00:00:00Z".parse().unwrap()
}

pub fn offline() -> Offline {
    Offline { now: now() }
}

/// Facts in which ACM finds two ISSUED certificates for shop.example.com: ARN for that name and
/// OTHER_ARN for `*.example.com`.
pub fn both_match_shop() -> FactSet {
    let later = "2026-06-01T00:00:00Z";
    facts(
        &[issued(ARN, &["shop.example.com"], later), issued(OTHER_ARN, &["*.example.com"], later)],
        &[("shop.example.com", &[ARN, OTHER_ARN])],
    )
}

/// Facts knowing these certificates, and which of them ACM would find for each host.
pub fn facts(certificates: &[CertificateFacts], discoverable: &[(&str, &[&str])]) -> FactSet {
    let mut facts = FactSet { now: Some(now()), ..FactSet::default() };
    for certificate in certificates {
        facts.certificates.insert(certificate.arn.clone(), Fact::Known(certificate.clone()));
    }
    for (host, arns) in discoverable {
        facts
            .host_certificates
            .insert(host.to_string(), Fact::Known(arns.iter().map(|a| a.to_string()).collect()));
    }
    facts
}

/// An Ingress of class `alb` in namespace `shop` routing `host` (also its TLS host) to `web`.
pub fn alb_ingress(name: &str, host: &str, annotations: &[(&str, &str)]) -> String {
    let annotations: String = annotations
        .iter()
        .map(|(key, value)| format!("\n    {key}: '{}'", value.replace('\'', "''")))
        .collect();
    format!(
        "kind: Ingress
metadata:
  name: {name}
  namespace: shop
  annotations: {{}}{annotations}
spec:
  ingressClassName: alb
  tls: [{{hosts: [{host}]}}]
  rules:
    - host: {host}
      http:
        paths:
          - {{path: /, pathType: Prefix, backend: {{service: {{name: web, port: {{number: 80}}}}}}}}"
    )
    .replace("annotations: {}\n", "annotations:\n")
}

pub fn shop(annotations: &[(&str, &str)]) -> String {
    alb_ingress("web", "shop.example.com", annotations)
}

pub fn judgement<'e>(evaluation: &'e Evaluation, name: &str) -> &'e Judgement {
    match &evaluation.verdicts.iter().find(|v| v.resource.name == name).expect("object evaluated").verdict {
        Verdict::Judged(judgement) => judgement,
        other => panic!("{name} was not judged: {other:?}"),
    }
}

pub fn verdict<'e>(evaluation: &'e Evaluation, name: &str) -> &'e Verdict {
    &evaluation.verdicts.iter().find(|v| v.resource.name == name).expect("object evaluated").verdict
}

pub fn policy() -> TlsIngressPolicySpec {
    TlsIngressPolicySpec::default()
}
