//! IngressClassParams: settings an IngressClass imposes on all its Ingresses, in the two shapes
//! AWS ships — `elbv2.k8s.aws/v1beta1` of the self-managed AWS Load Balancer Controller and
//! `eks.amazonaws.com/v1` of EKS Auto Mode (both cluster-scoped). Only the fields this policy
//! reads are modelled; the others are ignored when parsing. [`ClassParams`] reads either.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// An IngressClassParams kind. Written out rather than derived with `CustomResource`, whose root
/// requires `spec`: neither CRD does (an IngressClassParams may be only a name), and the
/// apiserver serves such objects to the controller's watch as readily as to `dpo check`.
macro_rules! class_params_kind {
    ($(#[$doc:meta])* $root:ident($spec:ident), $group:literal, $version:literal) => {
        $(#[$doc])*
        #[derive(Deserialize, Clone, Debug, Default, PartialEq)]
        pub struct $root {
            pub metadata: ObjectMeta,
            #[serde(default, deserialize_with = "null_as_default")]
            pub spec: $spec,
        }

        impl $root {
            pub fn new(name: &str, spec: $spec) -> Self {
                let metadata = ObjectMeta { name: Some(name.to_string()), ..ObjectMeta::default() };
                $root { metadata, spec }
            }
        }

        impl kube::Resource for $root {
            type DynamicType = ();
            type Scope = kube::core::ClusterResourceScope;

            fn kind(_: &()) -> Cow<'_, str> {
                "IngressClassParams".into()
            }

            fn group(_: &()) -> Cow<'_, str> {
                $group.into()
            }

            fn version(_: &()) -> Cow<'_, str> {
                $version.into()
            }

            fn plural(_: &()) -> Cow<'_, str> {
                "ingressclassparams".into()
            }

            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }

            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }

        impl Serialize for $root {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeStruct;
                let mut object = serializer.serialize_struct(stringify!($root), 4)?;
                object.serialize_field("apiVersion", concat!($group, "/", $version))?;
                object.serialize_field("kind", "IngressClassParams")?;
                object.serialize_field("metadata", &self.metadata)?;
                object.serialize_field("spec", &self.spec)?;
                object.end()
            }
        }
    };
}

/// A `spec: null` reads as an absent one, as the controllers' Go types read it.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Option::<T>::deserialize(deserializer).map(Option::unwrap_or_default)
}

class_params_kind!(
    /// The AWS Load Balancer Controller's IngressClassParams.
    IngressClassParams(IngressClassParamsSpec),
    "elbv2.k8s.aws",
    "v1beta1"
);
class_params_kind!(
    /// EKS Auto Mode's IngressClassParams.
    AutoModeIngressClassParams(AutoModeIngressClassParamsSpec),
    "eks.amazonaws.com",
    "v1"
);

/// The fields both kinds share. Where one is set, the controller ignores the matching Ingress
/// annotation.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SharedParams {
    /// Namespaces whose Ingresses may use the class; the controller refuses others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// Overrides `alb.ingress.kubernetes.io/group.name` (which Auto Mode ignores anyway).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<IngressGroupParams>,
    /// Overrides `alb.ingress.kubernetes.io/ssl-policy` when not empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_policy: Option<String>,
    /// Overrides `alb.ingress.kubernetes.io/scheme`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
}

/// The subset of the controller's `IngressClassParamsSpec` that bears on TLS.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IngressClassParamsSpec {
    #[serde(flatten)]
    pub shared: SharedParams,
    /// Overrides `alb.ingress.kubernetes.io/certificate-arn` when not empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificate_arn: Vec<String>,
    /// Overrides `alb.ingress.kubernetes.io/ssl-redirect` when not empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_redirect_port: Option<String>,
    /// Overrides `alb.ingress.kubernetes.io/wafv2-acl-arn` when not empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wafv2_acl_arn: Option<String>,
}

/// EKS Auto Mode's IngressClassParams. It renames `certificateArn` to `certificateARNs` and has
/// no `sslRedirectPort` nor `wafv2AclArn`: Auto Mode reads those from the Ingress annotations
/// (EKS user guide, "Create an IngressClass to configure an Application Load Balancer").
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct AutoModeIngressClassParamsSpec {
    #[serde(flatten)]
    pub shared: SharedParams,
    #[serde(default, rename = "certificateARNs", skip_serializing_if = "Vec::is_empty")]
    pub certificate_arns: Vec<String>,
}

/// `spec.group` of an IngressClassParams.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct IngressGroupParams {
    pub name: String,
}

/// The IngressClassParams an IngressClass resolved to, of either API group.
#[derive(Clone, Copy, Debug)]
pub enum ClassParams<'a> {
    LoadBalancerController(&'a IngressClassParams),
    AutoMode(&'a AutoModeIngressClassParams),
}

/// The controllers ignore empty strings.
fn present(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|value| !value.is_empty())
}

impl<'a> ClassParams<'a> {
    pub fn name(self) -> &'a str {
        let meta = match self {
            ClassParams::LoadBalancerController(p) => &p.metadata,
            ClassParams::AutoMode(p) => &p.metadata,
        };
        meta.name.as_deref().unwrap_or_default()
    }

    fn shared(self) -> &'a SharedParams {
        match self {
            ClassParams::LoadBalancerController(p) => &p.spec.shared,
            ClassParams::AutoMode(p) => &p.spec.shared,
        }
    }

    pub fn namespace_selector(self) -> Option<&'a LabelSelector> {
        self.shared().namespace_selector.as_ref()
    }

    pub fn group_name(self) -> Option<&'a str> {
        self.shared().group.as_ref().map(|group| group.name.as_str())
    }

    pub fn ssl_policy(self) -> Option<&'a str> {
        present(&self.shared().ssl_policy)
    }

    pub fn scheme(self) -> Option<&'a str> {
        present(&self.shared().scheme)
    }

    /// The certificates and the field that lists them.
    pub fn certificates(self) -> (&'a [String], &'static str) {
        match self {
            ClassParams::LoadBalancerController(p) => (&p.spec.certificate_arn, "certificateArn"),
            ClassParams::AutoMode(p) => (&p.spec.certificate_arns, "certificateARNs"),
        }
    }

    pub fn ssl_redirect_port(self) -> Option<&'a str> {
        match self {
            ClassParams::LoadBalancerController(p) => present(&p.spec.ssl_redirect_port),
            ClassParams::AutoMode(_) => None,
        }
    }

    /// The field that attaches a WAFv2 Web ACL, where this kind has one.
    pub fn wafv2_acl_arn(self) -> Option<&'a str> {
        match self {
            ClassParams::LoadBalancerController(p) => present(&p.spec.wafv2_acl_arn),
            ClassParams::AutoMode(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::Resource;

    #[test]
    fn parses_the_controllers_manifest_and_ignores_other_fields() {
        let params: IngressClassParams = serde_yaml::from_str(
            "apiVersion: elbv2.k8s.aws/v1beta1
kind: IngressClassParams
metadata: {name: shared}
spec:
  scheme: internet-facing
  group: {name: shared-alb}
  certificateArn: [arn:aws:acm:us-east-1:123456789012:certificate/a]
  sslPolicy: ELBSecurityPolicy-TLS13-1-2-2021-06
  sslRedirectPort: \"443\"
  wafv2AclArn: arn:aws:wafv2:us-east-1:123456789012:regional/webacl/shop/a1b2
  namespaceSelector: {matchLabels: {team: shop}}",
        )
        .unwrap();
        let view = ClassParams::LoadBalancerController(&params);
        assert_eq!(view.group_name(), Some("shared-alb"));
        assert_eq!(view.certificates().0.len(), 1);
        assert_eq!(view.ssl_policy(), Some("ELBSecurityPolicy-TLS13-1-2-2021-06"));
        assert_eq!(view.ssl_redirect_port(), Some("443"));
        assert_eq!(view.scheme(), Some("internet-facing"));
        assert!(view.wafv2_acl_arn().is_some_and(|arn| arn.ends_with("/shop/a1b2")));
        assert_eq!(IngressClassParams::api_version(&()), "elbv2.k8s.aws/v1beta1");
    }

    #[test]
    fn parses_auto_modes_manifest_with_several_certificates() {
        let params: AutoModeIngressClassParams = serde_yaml::from_str(
            "apiVersion: eks.amazonaws.com/v1
kind: IngressClassParams
metadata: {name: alb}
spec:
  scheme: internet-facing
  group: {name: retail-apps}
  certificateARNs: [arn:aws:acm:us-east-1:123456789012:certificate/a, arn:aws:acm:us-east-1:123456789012:certificate/b]
  sslPolicy: ELBSecurityPolicy-TLS13-1-2-2021-06
  subnets: {matchTags: [{key: Environment, values: [prod]}]}",
        )
        .unwrap();
        let view = ClassParams::AutoMode(&params);
        assert_eq!(view.name(), "alb");
        assert_eq!(view.certificates(), (&params.spec.certificate_arns[..], "certificateARNs"));
        assert_eq!(view.certificates().0.len(), 2);
        assert_eq!(view.group_name(), Some("retail-apps"));
        assert_eq!(view.scheme(), Some("internet-facing"));
        // Auto Mode has neither field; the annotations apply.
        assert_eq!(view.ssl_redirect_port(), None);
        assert_eq!(view.wafv2_acl_arn(), None);
        assert_eq!(AutoModeIngressClassParams::api_version(&()), "eks.amazonaws.com/v1");
    }

    #[test]
    fn a_manifest_without_spec_is_a_valid_object_of_either_kind() {
        // Neither CRD requires `spec`: such an object names a class and sets nothing.
        let lbc: IngressClassParams = serde_yaml::from_str(
            "apiVersion: elbv2.k8s.aws/v1beta1\nkind: IngressClassParams\nmetadata: {name: bare}",
        )
        .unwrap();
        assert_eq!(lbc, IngressClassParams::new("bare", IngressClassParamsSpec::default()));
        let auto: AutoModeIngressClassParams = serde_yaml::from_str(
            "apiVersion: eks.amazonaws.com/v1\nkind: IngressClassParams\nmetadata: {name: bare}",
        )
        .unwrap();
        assert_eq!(auto, AutoModeIngressClassParams::new("bare", AutoModeIngressClassParamsSpec::default()));
        let view = ClassParams::AutoMode(&auto);
        assert_eq!((view.name(), view.group_name(), view.certificates().0.len()), ("bare", None, 0));
        // A null spec reads as none.
        let null: IngressClassParams = serde_yaml::from_str("metadata: {name: bare}\nspec:").unwrap();
        assert_eq!(null.spec, IngressClassParamsSpec::default());
    }

    #[test]
    fn serialises_with_its_api_version_and_kind() {
        let params = IngressClassParams::new("shared", IngressClassParamsSpec::default());
        let value = serde_json::to_value(&params).unwrap();
        assert_eq!(value["apiVersion"], "elbv2.k8s.aws/v1beta1");
        assert_eq!(value["kind"], "IngressClassParams");
        assert_eq!(value["metadata"]["name"], "shared");
        let auto = serde_json::to_value(AutoModeIngressClassParams::new("alb", Default::default())).unwrap();
        assert_eq!(
            (auto["apiVersion"].as_str(), auto["kind"].as_str()),
            (Some("eks.amazonaws.com/v1"), Some("IngressClassParams"))
        );
        assert_eq!(AutoModeIngressClassParams::plural(&()), "ingressclassparams");
    }

    #[test]
    fn is_cluster_scoped() {
        // The controller looks IngressClassParams up by name alone; this fails to compile if the
        // type were namespaced.
        fn cluster_scoped<K: Resource<Scope = kube::core::ClusterResourceScope>>() {}
        cluster_scoped::<IngressClassParams>();
        cluster_scoped::<AutoModeIngressClassParams>();
    }

    #[test]
    fn empty_strings_count_as_unset() {
        let spec = IngressClassParamsSpec {
            shared: SharedParams { ssl_policy: Some(String::new()), ..Default::default() },
            ssl_redirect_port: Some(String::new()),
            wafv2_acl_arn: Some(String::new()),
            ..Default::default()
        };
        let params = IngressClassParams::new("shared", spec);
        let view = ClassParams::LoadBalancerController(&params);
        assert_eq!(view.ssl_policy(), None);
        assert_eq!(view.ssl_redirect_port(), None);
        assert_eq!(view.wafv2_acl_arn(), None);
    }
}
