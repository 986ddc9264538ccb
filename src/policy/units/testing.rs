//! Worlds of versioned objects, as an apiserver serves them, and edits that bump their
//! resourceVersion, for tests of unit evaluation.

use super::{TlsObjects, TlsUnits, UnitPlan, VolumeUnits, tls_plan, volume_plan};
use crate::api::{EncryptedVolumePolicy, TlsIngressPolicySpec};
use crate::policy::Evaluation;
use crate::policy::facts::{CertificateFacts, EbsDefaultFacts, Fact, FactSet, VolumeFacts};
use crate::policy::ingress::gateway::{Gateway, GatewayClass, HTTPRoute, LoadBalancerConfiguration};
use crate::policy::ingress::{
    AlbDefaults, GatewayInventory, IngressClassParams, IngressInventory, evaluate_tls_policy,
};
use crate::policy::storage::evaluate_volume_policy;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolume, Service};
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};

pub const ARN: &str = "arn:aws:acm:us-east-1:123456789012:certificate/shop";
pub const STRONG: &str = "ELBSecurityPolicy-TLS13-1-2-2021-06";
pub const WEAK: &str = "ELBSecurityPolicy-2016-08";
const GROUP: &str = "alb.ingress.kubernetes.io/group.name";
const SSL_POLICY: &str = "alb.ingress.kubernetes.io/ssl-policy";

/// Gives the object a new resourceVersion, as the apiserver does on every write.
pub fn touch(meta: &mut ObjectMeta) {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    meta.resource_version = Some(NEXT.fetch_add(1, Ordering::Relaxed).to_string());
}

/// An object from JSON, with a uid and a resourceVersion.
fn object<T: DeserializeOwned>(value: Value) -> T {
    let mut meta: ObjectMeta = serde_json::from_value(value["metadata"].clone()).expect("metadata");
    let uid = format!(
        "{}/{}/{}",
        value["kind"],
        meta.namespace.as_deref().unwrap_or(""),
        meta.name.as_deref().unwrap_or("")
    );
    meta.uid = Some(uid);
    touch(&mut meta);
    let mut value = value;
    value["metadata"] = serde_json::to_value(meta).expect("metadata");
    serde_json::from_value(value).expect("test object")
}

pub fn annotations(meta: &mut ObjectMeta) -> &mut std::collections::BTreeMap<String, String> {
    meta.annotations.get_or_insert_default()
}

pub fn labels(meta: &mut ObjectMeta) -> &mut std::collections::BTreeMap<String, String> {
    meta.labels.get_or_insert_default()
}

/// An ALB Ingress with HTTPS, a redirect and `ssl_policy`, in IngressGroup `group` if given.
pub fn ingress(name: &str, namespace: &str, group: Option<&str>, ssl_policy: &str) -> Ingress {
    let mut ingress: Ingress = object(json!({
        "kind": "Ingress",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"tier": "prod"},
            "annotations": {
                "alb.ingress.kubernetes.io/listen-ports": "[{\"HTTP\": 80}, {\"HTTPS\": 443}]",
                "alb.ingress.kubernetes.io/ssl-redirect": "443",
                "alb.ingress.kubernetes.io/certificate-arn": ARN,
                SSL_POLICY: ssl_policy,
            },
        },
        "spec": {
            "ingressClassName": "alb",
            "rules": [{"host": format!("{name}.example.com"), "http": {"paths": [{
                "path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": name, "port": {"number": 80}}},
            }]}}],
        },
    }));
    if let Some(group) = group {
        annotations(&mut ingress.metadata).insert(GROUP.into(), group.into());
    }
    ingress
}

/// Objects a TlsIngressPolicy governs.
#[derive(Clone, Debug)]
pub struct TlsWorld {
    pub ingresses: Vec<Ingress>,
    pub classes: Vec<IngressClass>,
    pub params: Vec<IngressClassParams>,
    pub services: Vec<Service>,
    pub namespaces: Vec<Namespace>,
    pub gateways: Vec<Gateway>,
    pub routes: Vec<HTTPRoute>,
    pub gateway_classes: Vec<GatewayClass>,
    pub configurations: Vec<LoadBalancerConfiguration>,
}

impl TlsWorld {
    /// Two IngressGroups (one with a conflicting security policy and an exempt member), lone
    /// Ingresses (one through IngressClassParams, one by the legacy annotation), an nginx
    /// Ingress, an NLB Service and a ClusterIP one, an ALB Gateway with a redirecting route and a
    /// Gateway of another controller.
    pub fn sample() -> TlsWorld {
        let mut ingresses = vec![
            ingress("a", "shop", Some("g1"), STRONG),
            ingress("b", "web", Some("g1"), WEAK),
            ingress("c", "shop", Some("g1"), STRONG),
            ingress("d", "shop", Some("g2"), STRONG),
            ingress("e", "web", Some("g2"), STRONG),
            ingress("f", "shop", None, STRONG),
            ingress("g", "web", None, WEAK),
            ingress("h", "shop", None, STRONG),
            ingress("i", "web", None, STRONG),
        ];
        labels(&mut ingresses[2].metadata).insert("dpo.dev/exempt".into(), "legacy clients".into());
        ingresses[6].spec.get_or_insert_default().ingress_class_name = Some("public".into());
        ingresses[7].spec.get_or_insert_default().ingress_class_name = Some("nginx".into());
        ingresses[8].spec.get_or_insert_default().ingress_class_name = None;
        annotations(&mut ingresses[8].metadata).insert("kubernetes.io/ingress.class".into(), "alb".into());
        let class = |name: &str, controller: &str| -> IngressClass {
            object(
                json!({"kind": "IngressClass", "metadata": {"name": name}, "spec": {"controller": controller}}),
            )
        };
        let mut public = class("public", "ingress.k8s.aws/alb");
        public.spec.get_or_insert_default().parameters = serde_json::from_value(
            json!({"apiGroup": "elbv2.k8s.aws", "kind": "IngressClassParams", "name": "shared"}),
        )
        .ok();
        let namespace = |name: &str| -> Namespace {
            object(json!({"kind": "Namespace", "metadata": {"name": name, "labels": {"team": name}}}))
        };
        TlsWorld {
            ingresses,
            classes: vec![public, class("nginx", "k8s.io/ingress-nginx")],
            params: vec![object(json!({
                "apiVersion": "elbv2.k8s.aws/v1beta1", "kind": "IngressClassParams",
                "metadata": {"name": "shared"}, "spec": {"sslPolicy": STRONG},
            }))],
            services: vec![
                object(json!({
                    "kind": "Service",
                    "metadata": {"name": "nlb", "namespace": "shop", "annotations": {
                        "service.beta.kubernetes.io/aws-load-balancer-type": "external",
                        "service.beta.kubernetes.io/aws-load-balancer-ssl-cert": ARN,
                    }},
                    "spec": {"type": "LoadBalancer", "ports": [{"name": "https", "port": 443}]},
                })),
                object(json!({"kind": "Service", "metadata": {"name": "db", "namespace": "web"},
                              "spec": {"ports": [{"port": 5432}]}})),
            ],
            namespaces: vec![namespace("shop"), namespace("web")],
            gateways: vec![
                object(
                    json!({"kind": "Gateway", "metadata": {"name": "edge", "namespace": "shop"}, "spec": {
                        "gatewayClassName": "aws-alb",
                        "infrastructure": {"parametersRef": {
                            "group": "gateway.k8s.aws", "kind": "LoadBalancerConfiguration", "name": "edge"}},
                        "listeners": [
                            {"name": "http", "port": 80, "protocol": "HTTP"},
                            {"name": "https", "port": 443, "protocol": "HTTPS", "hostname": "edge.example.com"},
                        ],
                    }}),
                ),
                object(
                    json!({"kind": "Gateway", "metadata": {"name": "envoy", "namespace": "web"}, "spec": {
                        "gatewayClassName": "envoy", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}],
                    }}),
                ),
            ],
            routes: vec![object(
                json!({"kind": "HTTPRoute", "metadata": {"name": "redirect", "namespace": "shop"}, "spec": {
                    "parentRefs": [{"name": "edge", "sectionName": "http"}],
                    "rules": [{"filters": [{"type": "RequestRedirect", "requestRedirect": {"scheme": "https"}}]}],
                }}),
            )],
            gateway_classes: vec![
                object(
                    json!({"kind": "GatewayClass", "metadata": {"name": "aws-alb"}, "spec": {"controllerName": "gateway.k8s.aws/alb"}}),
                ),
                object(json!({"kind": "GatewayClass", "metadata": {"name": "envoy"},
                              "spec": {"controllerName": "gateway.envoyproxy.io/gatewayclass-controller"}})),
            ],
            configurations: vec![object(
                json!({"kind": "LoadBalancerConfiguration", "metadata": {"name": "edge", "namespace": "shop"}, "spec": {
                    "listenerConfigurations": [{"protocolPort": "HTTPS:443", "defaultCertificate": ARN,
                                                "sslPolicy": STRONG}],
                }}),
            )],
        }
    }

    /// The world's objects, as the controller and `dpo check` hand them over.
    pub fn objects(&self) -> TlsObjects<'_> {
        TlsObjects {
            ingresses: self.ingresses.iter().collect(),
            ingress_classes: self.classes.iter().collect(),
            ingress_class_params: self.params.iter().collect(),
            auto_mode_class_params: Vec::new(),
            services: self.services.iter().collect(),
            namespaces: self.namespaces.iter().collect(),
            gateways: GatewayInventory {
                gateways: self.gateways.iter().collect(),
                http_routes: self.routes.iter().collect(),
                gateway_classes: self.gateway_classes.iter().collect(),
                load_balancer_configurations: self.configurations.iter().collect(),
            },
        }
    }

    pub fn plan<'a>(
        &'a self,
        policy: &'a TlsIngressPolicySpec,
        defaults: &'a AlbDefaults,
    ) -> UnitPlan<TlsUnits<'a>> {
        tls_plan(policy, &self.objects(), defaults)
    }

    /// The whole-world evaluation `dpo check` runs.
    pub fn evaluate(&self, policy: &TlsIngressPolicySpec, facts: &FactSet) -> Evaluation {
        let objects = self.objects();
        let inventory = IngressInventory {
            ingresses: &objects.ingresses,
            ingress_classes: &objects.ingress_classes,
            ingress_class_params: &objects.ingress_class_params,
            auto_mode_class_params: &objects.auto_mode_class_params,
            services: &objects.services,
            namespaces: &objects.namespaces,
        };
        evaluate_tls_policy(policy, &inventory, &objects.gateways, facts, &AlbDefaults::default())
    }

    /// Facts that answer every lookup the world makes: the certificate is issued and valid.
    pub fn facts() -> FactSet {
        let mut facts = FactSet { now: Some("2025-06-01T00:00:00Z".parse().unwrap()), ..FactSet::default() };
        facts.certificates.insert(ARN.into(), Fact::Known(certificate()));
        facts
    }
}

pub fn certificate() -> CertificateFacts {
    CertificateFacts {
        arn: ARN.into(),
        status: "ISSUED".into(),
        not_after: Some("2026-06-01T00:00:00Z".parse().unwrap()),
        domain_names: vec!["*.example.com".into()],
        in_use: true,
        key_algorithm: Some("RSA_2048".into()),
    }
}

/// Sets an Ingress's security policy (a write: the resourceVersion changes).
pub fn set_ssl_policy(ingress: &mut Ingress, ssl_policy: &str) {
    annotations(&mut ingress.metadata).insert(SSL_POLICY.into(), ssl_policy.into());
    touch(&mut ingress.metadata);
}

/// Objects an EncryptedVolumePolicy governs.
#[derive(Clone, Debug)]
pub struct VolumeWorld {
    pub classes: Vec<StorageClass>,
    pub volumes: Vec<PersistentVolume>,
}

pub fn storage_class(name: &str, provisioner: &str, parameters: Value) -> StorageClass {
    object(json!({
        "kind": "StorageClass", "metadata": {"name": name, "labels": {"tier": "prod"}},
        "provisioner": provisioner, "parameters": parameters,
    }))
}

pub fn volume(name: &str, class: &str, volume_id: &str) -> PersistentVolume {
    object(json!({
        "kind": "PersistentVolume", "metadata": {"name": name},
        "spec": {"storageClassName": class, "csi": {"driver": "ebs.csi.aws.com", "volumeHandle": volume_id}},
    }))
}

impl VolumeWorld {
    /// An encrypted class with two volumes (one unencrypted), an unencrypted class, an EFS
    /// class, an exempt class, and a volume of a class that does not exist.
    pub fn sample() -> VolumeWorld {
        let mut legacy = storage_class("legacy", "ebs.csi.aws.com", json!({}));
        labels(&mut legacy.metadata).insert("dpo.dev/exempt".into(), "migrating".into());
        VolumeWorld {
            classes: vec![
                storage_class("gp3", "ebs.csi.aws.com", json!({"encrypted": "true"})),
                storage_class("gp2", "kubernetes.io/aws-ebs", json!({"type": "gp2"})),
                storage_class("efs", "efs.csi.aws.com", json!({})),
                legacy,
            ],
            volumes: vec![
                volume("pv-1", "gp3", "vol-1"),
                volume("pv-2", "gp2", "vol-2"),
                volume("pv-3", "gp3", "vol-3"),
                volume("pv-4", "efs", "vol-4"),
                volume("pv-5", "gone", "vol-5"),
                volume("pv-6", "legacy", "vol-6"),
            ],
        }
    }

    pub fn plan<'a>(&'a self, policy: &'a EncryptedVolumePolicy) -> UnitPlan<VolumeUnits<'a>> {
        volume_plan(
            policy,
            &self.classes.iter().collect::<Vec<_>>(),
            &self.volumes.iter().collect::<Vec<_>>(),
        )
    }

    pub fn evaluate(&self, policy: &EncryptedVolumePolicy, facts: &FactSet) -> Evaluation {
        let classes: Vec<_> = self.classes.iter().collect();
        let volumes: Vec<_> = self.volumes.iter().collect();
        evaluate_volume_policy(policy, &classes, &volumes, facts)
    }

    /// Facts for every volume (vol-3 is unencrypted) and an account default that is on.
    pub fn facts() -> FactSet {
        let mut facts = FactSet::default();
        for id in ["vol-1", "vol-2", "vol-3", "vol-4", "vol-5", "vol-6"] {
            let encrypted = id != "vol-3";
            let volume = VolumeFacts { volume_id: id.into(), encrypted, kms_key_id: None };
            facts.volumes.insert(id.into(), Fact::Known(volume));
        }
        facts.ebs_default = Some(Fact::Known(EbsDefaultFacts {
            region: "us-east-1".into(),
            encryption_by_default: true,
            default_kms_key_id: None,
        }));
        facts
    }
}
