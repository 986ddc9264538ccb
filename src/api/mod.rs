//! The `dpo.dev/v1alpha1` API: custom resource types, their defaults and schema validation.
//!
//! Doc comments on fields become the CRD descriptions that `kubectl explain` shows.

// kube's `printcolumn(type_ = ...)` repeats keys across columns by design.
#![allow(clippy::duplicated_attributes)]

mod common;
mod duration;
mod ingress_policy;
mod protected_secret;
mod selector;
mod volume_policy;

pub use common::*;
pub use duration::{DurationError, parse_duration};
pub use ingress_policy::*;
pub use protected_secret::*;
pub use selector::*;
pub use volume_policy::*;

use kube::CustomResourceExt;

/// API group of every kind this operator serves.
pub const GROUP: &str = "dpo.dev";
/// API version of every kind this operator serves.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` as it appears in manifests.
pub const API_VERSION: &str = "dpo.dev/v1alpha1";
/// Prefix of every label and annotation the operator writes or reads.
pub const LABEL_PREFIX: &str = "dpo.dev/";
/// Label that exempts an object from policy, with the reason as its value.
pub const EXEMPT_LABEL: &str = "dpo.dev/exempt";

/// All CustomResourceDefinitions, in the order `dpo crdgen` prints them.
pub fn crds()
-> Vec<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> {
    vec![ProtectedSecret::crd(), EncryptedVolumePolicy::crd(), TlsIngressPolicy::crd()]
}

/// The CRDs as one multi-document YAML stream: the content of `crds/`.
pub fn crds_yaml() -> String {
    crds()
        .iter()
        .map(|crd| format!("---\n{}", serde_yaml::to_string(crd).expect("a CRD always serialises")))
        .collect()
}
