//! EKS: the KMS key a cluster envelope-encrypts Kubernetes Secrets with (`DescribeCluster`
//! `encryptionConfig`).

use super::error::AwsError;
use super::retry::Operation;
use super::session::{AwsFacts, Target};
use crate::policy::facts::ClusterFacts;
use std::future::Future;

const DESCRIBE_CLUSTER: Operation = Operation::new("eks:DescribeCluster", "EKS cluster");

/// Facts about EKS clusters.
pub trait EksApi {
    /// A cluster by name. Not cached: each policy evaluation reads it once, and the callers
    /// keep what they read for as long as they keep other facts.
    fn eks_cluster(
        &self,
        target: &Target,
        name: &str,
    ) -> impl Future<Output = Result<ClusterFacts, AwsError>> + Send;
}

impl EksApi for AwsFacts {
    async fn eks_cluster(&self, target: &Target, name: &str) -> Result<ClusterFacts, AwsError> {
        let scope = self.scope(target)?;
        let client = self.clients(&scope).eks.clone();
        let out = self
            .inner
            .requester
            .send(DESCRIBE_CLUSTER, name, || client.describe_cluster().name(name).send())
            .await?;
        let cluster =
            out.cluster.ok_or_else(|| AwsError::NotFound { kind: "EKS cluster", id: name.into() })?;
        // An `encryptionConfig` was once for the resources it lists (`secrets`, the only one EKS
        // took); EKS now uses its key for all Kubernetes API data, Secrets included, and the
        // SDK deprecates `resources` as deciding nothing. So any entry's key is the Secrets key.
        let secrets_key_arn = cluster
            .encryption_config()
            .iter()
            .find_map(|config| config.provider()?.key_arn())
            .map(str::to_string);
        Ok(ClusterFacts {
            name: cluster.name.unwrap_or_else(|| name.to_string()),
            arn: cluster.arn.unwrap_or_default(),
            secrets_key_arn,
        })
    }
}
