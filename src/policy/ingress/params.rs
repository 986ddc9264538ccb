//! `IngressClassParams` (`elbv2.k8s.aws/v1beta1`, cluster-scoped): settings an IngressClass of
//! the AWS Load Balancer Controller imposes on all its Ingresses. Only the fields this policy
//! reads are modelled; the others are ignored when parsing.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The subset of the controller's `IngressClassParamsSpec` that bears on TLS. Where one of these
/// is set, the controller ignores the matching Ingress annotation.
#[derive(CustomResource, JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "elbv2.k8s.aws",
    version = "v1beta1",
    kind = "IngressClassParams",
    plural = "ingressclassparams"
)]
#[serde(rename_all = "camelCase")]
pub struct IngressClassParamsSpec {
    /// Namespaces whose Ingresses may use the class; the controller refuses others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// Overrides `alb.ingress.kubernetes.io/group.name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<IngressGroupParams>,
    /// Overrides `alb.ingress.kubernetes.io/certificate-arn` when not empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificate_arn: Vec<String>,
    /// Overrides `alb.ingress.kubernetes.io/ssl-policy` when not empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_policy: Option<String>,
    /// Overrides `alb.ingress.kubernetes.io/ssl-redirect` when not empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_redirect_port: Option<String>,
}

/// `spec.group` of an IngressClassParams.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct IngressGroupParams {
    pub name: String,
}

impl IngressClassParamsSpec {
    /// The settings the controller treats as present: it ignores empty strings.
    pub fn ssl_policy(&self) -> Option<&str> {
        self.ssl_policy.as_deref().filter(|policy| !policy.is_empty())
    }

    pub fn ssl_redirect_port(&self) -> Option<&str> {
        self.ssl_redirect_port.as_deref().filter(|port| !port.is_empty())
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
  namespaceSelector: {matchLabels: {team: shop}}",
        )
        .unwrap();
        assert_eq!(params.spec.group.as_ref().map(|g| g.name.as_str()), Some("shared-alb"));
        assert_eq!(params.spec.certificate_arn.len(), 1);
        assert_eq!(params.spec.ssl_policy(), Some("ELBSecurityPolicy-TLS13-1-2-2021-06"));
        assert_eq!(params.spec.ssl_redirect_port(), Some("443"));
        assert_eq!(IngressClassParams::api_version(&()), "elbv2.k8s.aws/v1beta1");
    }

    #[test]
    fn is_cluster_scoped() {
        // The controller looks IngressClassParams up by name alone; this fails to compile if the
        // type were namespaced.
        fn cluster_scoped<K: Resource<Scope = kube::core::ClusterResourceScope>>() {}
        cluster_scoped::<IngressClassParams>();
    }

    #[test]
    fn empty_strings_count_as_unset() {
        let spec = IngressClassParamsSpec {
            ssl_policy: Some(String::new()),
            ssl_redirect_port: Some(String::new()),
            ..Default::default()
        };
        assert_eq!(spec.ssl_policy(), None);
        assert_eq!(spec.ssl_redirect_port(), None);
    }
}
