//! Pure policy evaluation: (object, policy, facts) -> findings. No I/O, no async.
//!
//! The controllers and `dpo check` call the same functions here; a rule is written once.

pub mod arn;
pub mod facts;
pub mod ingress;
pub mod kms;
mod rules;
pub mod secret;
pub mod selector;
pub mod storage;
pub mod units;
mod untrusted;
mod verdict;

pub use facts::{Fact, FactSet, Facts, Offline};
pub use ingress::{AlbDefaults, IngressInventory, evaluate_tls_policy};
pub use rules::Rule;
pub use untrusted::untrusted_policy;
pub use verdict::{Evaluation, Judgement, ObjectVerdict, Skipped, Verdict, finding_order, sort_findings};

use crate::api::{EXEMPT_LABEL, ResourceRef};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;

/// The reference a finding carries for a typed Kubernetes object.
pub fn resource_ref<K: Resource<DynamicType = ()>>(obj: &K) -> ResourceRef {
    ResourceRef {
        api_version: K::api_version(&()),
        kind: K::kind(&()),
        namespace: obj.meta().namespace.clone(),
        name: obj.meta().name.clone().unwrap_or_default(),
    }
}

/// The reason an object gives for being exempt (`dpo.dev/exempt: "<reason>"`), if it does.
pub fn exemption(meta: &ObjectMeta) -> Option<&str> {
    meta.labels.as_ref()?.get(EXEMPT_LABEL).map(String::as_str)
}

#[cfg(test)]
pub(crate) mod testing {
    /// Builds a test object from YAML, the way users write them.
    pub fn from_yaml<T: serde::de::DeserializeOwned>(yaml: &str) -> T {
        serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("test YAML does not parse: {e}\n{yaml}"))
    }
}
