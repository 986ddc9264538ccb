//! Facts about AWS, behind small per-service traits: Secrets Manager ([`SecretsApi`]), KMS
//! ([`KmsApi`]), ACM ([`AcmApi`]), EC2 ([`Ec2Api`]) and EKS ([`EksApi`]). One [`AwsFacts`]
//! handle implements them all over the real SDK clients, with one shared [`FactCache`], per-attempt request accounting
//! ([`AwsMetrics`]) and errors classified into [`AwsError`]. [`AwsFacts::gather`] fills a
//! [`crate::policy::FactSet`] for the policy core.

mod acm;
mod cache;
mod ec2;
mod eks;
mod error;
mod gather;
mod kms;
mod metrics;
mod pool;
mod retry;
mod secrets;
mod session;
mod wafv2;

pub use acm::AcmApi;
pub use cache::{CacheSettings, DEFAULT_VALUE_BYTES, FactCache, FactKind, Scope};
pub use ec2::Ec2Api;
pub use eks::EksApi;
pub use error::{AwsError, ErrorClass};
pub use gather::FactRequest;
pub use kms::KmsApi;
pub use metrics::AwsMetrics;
pub use retry::RetryPolicy;
pub use secrets::{SecretValue, SecretsApi, ValueRef};
pub use session::{AwsFacts, AwsSettings, Identity, NAMESPACE_TAG, RoleSession, Target, role_allowed};
pub use wafv2::Wafv2Api;
