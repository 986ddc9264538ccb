//! KMS: key state as [`KmsKeyFacts`], aliases resolved to the key's ARN.

use super::cache::{Cached, FactKind};
use super::error::AwsError;
use super::retry::Operation;
use super::secrets::timestamp;
use super::session::{AwsFacts, Target};
use crate::policy::facts::{KeyManager, KmsKeyFacts};
use aws_sdk_kms::types::{KeyManagerType, KeySpec, KeyState, OriginType};
use std::future::Future;

const DESCRIBE_KEY: Operation = Operation::new("kms:DescribeKey", "KMS key");
const GET_KEY_ROTATION_STATUS: Operation = Operation::new("kms:GetKeyRotationStatus", "KMS key");

impl Cached for KmsKeyFacts {
    const KIND: FactKind = FactKind::KmsKey;
}

/// Facts about KMS keys.
pub trait KmsApi {
    /// A key by id, ARN, alias name (`alias/x`) or alias ARN.
    fn kms_key(
        &self,
        target: &Target,
        key: &str,
    ) -> impl Future<Output = Result<KmsKeyFacts, AwsError>> + Send;
}

impl KmsApi for AwsFacts {
    async fn kms_key(&self, target: &Target, key: &str) -> Result<KmsKeyFacts, AwsError> {
        let scope = self.scope(target)?;
        let client = self.clients(&scope).kms.clone();
        let requester = self.inner.requester.clone();
        let key_ref = key.to_string();
        self.inner
            .cache
            .get_or_load(&scope, key, move || async move {
                let out = requester
                    .send(DESCRIBE_KEY, &key_ref, || client.describe_key().key_id(&key_ref).send())
                    .await?;
                let meta = out
                    .key_metadata
                    .ok_or_else(|| AwsError::NotFound { kind: "KMS key", id: key_ref.clone() })?;
                // Automatic rotation exists only for symmetric keys with KMS-generated material;
                // asking about other keys is an error, so do not.
                let rotatable = meta.key_spec.as_ref().is_none_or(|spec| *spec == KeySpec::SymmetricDefault)
                    && meta.origin.as_ref().is_none_or(|origin| *origin == OriginType::AwsKms);
                let rotation_enabled = if rotatable {
                    // By key id: some implementations reject an ARN here.
                    let key_id = meta.key_id.clone();
                    requester
                        .send(GET_KEY_ROTATION_STATUS, &key_id, || {
                            client.get_key_rotation_status().key_id(&key_id).send()
                        })
                        .await?
                        .key_rotation_enabled
                } else {
                    false
                };
                Ok(KmsKeyFacts {
                    arn: meta.arn.clone().unwrap_or_default(),
                    key_id: meta.key_id.clone(),
                    key_manager: match meta.key_manager {
                        Some(KeyManagerType::Aws) => KeyManager::Aws,
                        _ => KeyManager::Customer,
                    },
                    enabled: meta.enabled,
                    pending_deletion: matches!(
                        meta.key_state,
                        Some(KeyState::PendingDeletion | KeyState::PendingReplicaDeletion)
                    ),
                    deletion_date: timestamp(meta.deletion_date),
                    rotation_enabled,
                })
            })
            .await
    }
}
