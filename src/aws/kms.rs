//! KMS: key state as [`KmsKeyFacts`] (`DescribeKey`, aliases resolved to the key's ARN) and
//! whether a key rotates (`GetKeyRotationStatus`), each cached and failing on its own.

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

/// What `DescribeKey` said of a key.
#[derive(Clone, Debug)]
struct Described {
    facts: KmsKeyFacts,
    /// Automatic rotation exists only for symmetric keys with KMS-generated material.
    rotatable: bool,
}

impl Cached for Described {
    const KIND: FactKind = FactKind::KmsKey;
}

/// Whether a key, by key id, rotates.
#[derive(Clone, Debug)]
struct Rotation(bool);

impl Cached for Rotation {
    const KIND: FactKind = FactKind::KmsKeyRotation;
}

/// Facts about KMS keys.
pub trait KmsApi {
    /// A key by id, ARN, alias name (`alias/x`) or alias ARN.
    fn kms_key(
        &self,
        target: &Target,
        key: &str,
    ) -> impl Future<Output = Result<KmsKeyFacts, AwsError>> + Send;

    /// Whether a key (referenced as for [`KmsApi::kms_key`]) has automatic rotation on. A key
    /// that cannot rotate (asymmetric, imported or custom key store material) does not.
    fn kms_key_rotation(
        &self,
        target: &Target,
        key: &str,
    ) -> impl Future<Output = Result<bool, AwsError>> + Send;
}

impl AwsFacts {
    async fn describe_key(&self, target: &Target, key: &str) -> Result<Described, AwsError> {
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
                let rotatable = meta.key_spec.as_ref().is_none_or(|spec| *spec == KeySpec::SymmetricDefault)
                    && meta.origin.as_ref().is_none_or(|origin| *origin == OriginType::AwsKms);
                let facts = KmsKeyFacts {
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
                };
                Ok(Described { facts, rotatable })
            })
            .await
    }
}

impl KmsApi for AwsFacts {
    async fn kms_key(&self, target: &Target, key: &str) -> Result<KmsKeyFacts, AwsError> {
        Ok(self.describe_key(target, key).await?.facts)
    }

    async fn kms_key_rotation(&self, target: &Target, key: &str) -> Result<bool, AwsError> {
        let described = self.describe_key(target, key).await?;
        // Asking about a key that cannot rotate is an error, so do not.
        if !described.rotatable {
            return Ok(false);
        }
        let scope = self.scope(target)?;
        let client = self.clients(&scope).kms.clone();
        let requester = self.inner.requester.clone();
        // By key id: some implementations reject an ARN here.
        let key_id = described.facts.key_id;
        let rotation = self
            .inner
            .cache
            .get_or_load(&scope, &key_id.clone(), move || async move {
                let out = requester
                    .send(GET_KEY_ROTATION_STATUS, &key_id, || {
                        client.get_key_rotation_status().key_id(&key_id).send()
                    })
                    .await?;
                Ok(Rotation(out.key_rotation_enabled))
            })
            .await?;
        Ok(rotation.0)
    }
}
