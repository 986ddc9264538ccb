//! EC2: encryption of EBS volumes and the account/region's EBS encryption-by-default setting.

use super::cache::{Cached, FactKind, Scope};
use super::error::AwsError;
use super::retry::Operation;
use super::session::{AwsFacts, Target};
use crate::policy::facts::{EbsDefaultFacts, VolumeFacts};
use aws_sdk_ec2::types::Filter;
use std::collections::HashMap;
use std::future::Future;

const DESCRIBE_VOLUMES: Operation = Operation::new("ec2:DescribeVolumes", "volume");
const GET_EBS_ENCRYPTION_BY_DEFAULT: Operation = Operation::new("ec2:GetEbsEncryptionByDefault", "setting");
const GET_EBS_DEFAULT_KMS_KEY_ID: Operation = Operation::new("ec2:GetEbsDefaultKmsKeyId", "setting");

/// Most values one DescribeVolumes `volume-id` filter takes.
const VOLUME_BATCH: usize = 200;
/// The id under which a region's EBS default is cached.
const EBS_DEFAULT_ID: &str = "ebs-default";

impl Cached for VolumeFacts {
    const KIND: FactKind = FactKind::Volume;
}

impl Cached for EbsDefaultFacts {
    const KIND: FactKind = FactKind::EbsDefault;
}

/// Facts about EBS.
pub trait Ec2Api {
    /// Volumes by id. Cached ones are free; the rest are read in DescribeVolumes calls of up to
    /// 200 ids (a `volume-id` filter, so that one missing volume does not fail the batch).
    fn volumes(
        &self,
        target: &Target,
        volume_ids: &[String],
    ) -> impl Future<Output = HashMap<String, Result<VolumeFacts, AwsError>>> + Send;

    /// Whether new volumes are encrypted by default, and with which key.
    fn ebs_default(&self, target: &Target) -> impl Future<Output = Result<EbsDefaultFacts, AwsError>> + Send;
}

impl Ec2Api for AwsFacts {
    async fn volumes(
        &self,
        target: &Target,
        volume_ids: &[String],
    ) -> HashMap<String, Result<VolumeFacts, AwsError>> {
        let scope = match self.scope(target) {
            Ok(scope) => scope,
            Err(err) => return volume_ids.iter().map(|id| (id.clone(), Err(err.clone()))).collect(),
        };
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        for id in volume_ids {
            if found.contains_key(id) || missing.contains(id) {
                continue;
            }
            match self.inner.cache.peek::<VolumeFacts>(&scope, id) {
                Some(result) => drop(found.insert(id.clone(), result)),
                None => missing.push(id.clone()),
            }
        }
        for batch in missing.chunks(VOLUME_BATCH) {
            match self.describe_volumes(&scope, batch).await {
                Ok(mut described) => {
                    for id in batch {
                        let result = described
                            .remove(id)
                            .ok_or_else(|| AwsError::NotFound { kind: "volume", id: id.clone() });
                        self.inner.cache.put(&scope, id, result.clone());
                        found.insert(id.clone(), result);
                    }
                }
                Err(err) => found.extend(batch.iter().map(|id| (id.clone(), Err(err.clone())))),
            }
        }
        found
    }

    async fn ebs_default(&self, target: &Target) -> Result<EbsDefaultFacts, AwsError> {
        let scope = self.scope(target)?;
        let client = self.clients(&scope).ec2.clone();
        let requester = self.inner.requester.clone();
        let region = scope.region.clone();
        self.inner
            .cache
            .get_or_load(&scope, EBS_DEFAULT_ID, move || async move {
                let enabled = requester
                    .send(GET_EBS_ENCRYPTION_BY_DEFAULT, &region, || {
                        client.get_ebs_encryption_by_default().send()
                    })
                    .await?
                    .ebs_encryption_by_default
                    .unwrap_or(false);
                let key = requester
                    .send(GET_EBS_DEFAULT_KMS_KEY_ID, &region, || client.get_ebs_default_kms_key_id().send())
                    .await?
                    .kms_key_id;
                Ok(EbsDefaultFacts { region, encryption_by_default: enabled, default_kms_key_id: key })
            })
            .await
    }
}

impl AwsFacts {
    async fn describe_volumes(
        &self,
        scope: &Scope,
        ids: &[String],
    ) -> Result<HashMap<String, VolumeFacts>, AwsError> {
        let client = self.clients(scope).ec2.clone();
        let filter = Filter::builder().name("volume-id").set_values(Some(ids.to_vec())).build();
        let label = ids.join(",");
        let mut described = HashMap::new();
        let mut next_token: Option<String> = None;
        loop {
            let out = self
                .inner
                .requester
                .send(DESCRIBE_VOLUMES, &label, || {
                    client
                        .describe_volumes()
                        .filters(filter.clone())
                        .set_next_token(next_token.clone())
                        .send()
                })
                .await?;
            for volume in out.volumes.unwrap_or_default() {
                let Some(volume_id) = volume.volume_id else { continue };
                let facts = VolumeFacts {
                    volume_id: volume_id.clone(),
                    encrypted: volume.encrypted.unwrap_or(false),
                    kms_key_id: volume.kms_key_id,
                };
                described.insert(volume_id, facts);
            }
            match out.next_token {
                Some(token) if !token.is_empty() => next_token = Some(token),
                _ => return Ok(described),
            }
        }
    }
}
