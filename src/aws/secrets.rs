//! Secrets Manager: metadata (never values) as [`SecretFacts`], values by version id.
//!
//! Change detection reads only metadata (the version id of a stage); values are read for new
//! version ids only, in BatchGetSecretValue calls of up to 20 secrets.

use super::cache::{Cached, FactKind, Scope};
use super::error::{AttemptError, AwsError};
use super::retry::Operation;
use super::session::{AwsFacts, Target};
use crate::policy::arn::Arn;
use crate::policy::facts::SecretFacts;
use aws_sdk_secretsmanager::types::SecretListEntry;
use aws_smithy_types::DateTime;
use futures::future::join_all;
use secrecy::{ExposeSecret, SecretBox};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

const DESCRIBE_SECRET: Operation = Operation::new("secretsmanager:DescribeSecret", "secret");
const GET_SECRET_VALUE: Operation = Operation::new("secretsmanager:GetSecretValue", "secret version");
const BATCH_GET_SECRET_VALUE: Operation =
    Operation::new("secretsmanager:BatchGetSecretValue", "secret version");

/// Most secret ids one BatchGetSecretValue call takes.
const BATCH_SIZE: usize = 20;

/// A secret value. Held in zeroizing memory, shared without copying, and never printed: the
/// bytes are wiped when the last clone (the cache's, or a reconcile's) is dropped.
#[derive(Clone)]
pub struct SecretValue {
    version_id: String,
    payload: Arc<Payload>,
}

/// The SDK's own `String` and `Vec` are kept as they are: making them a boxed slice could copy
/// them and leave the original unwiped.
enum Payload {
    Text(SecretBox<String>),
    Binary(SecretBox<Vec<u8>>),
}

impl SecretValue {
    fn new(version_id: String, text: Option<String>, binary: Option<aws_smithy_types::Blob>) -> Self {
        let payload = match (text, binary) {
            (Some(text), _) => Payload::Text(SecretBox::new(Box::new(text))),
            (None, Some(blob)) => Payload::Binary(SecretBox::new(Box::new(blob.into_inner()))),
            (None, None) => Payload::Text(SecretBox::default()),
        };
        Self { version_id, payload: Arc::new(payload) }
    }

    /// A value built in memory, for tests of code that consumes values.
    #[cfg(test)]
    pub(crate) fn for_tests(version_id: &str, text: Option<String>, binary: Option<Vec<u8>>) -> Self {
        Self::new(version_id.to_string(), text, binary.map(aws_smithy_types::Blob::new))
    }

    /// The version this value belongs to (not secret).
    pub fn version_id(&self) -> &str {
        &self.version_id
    }

    /// The `SecretString`, when the secret is text.
    pub fn expose_text(&self) -> Option<&str> {
        match &*self.payload {
            Payload::Text(s) => Some(s.expose_secret().as_str()),
            Payload::Binary(_) => None,
        }
    }

    /// The raw bytes: `SecretString` as UTF-8, or `SecretBinary`.
    pub fn expose_bytes(&self) -> &[u8] {
        match &*self.payload {
            Payload::Text(s) => s.expose_secret().as_bytes(),
            Payload::Binary(b) => b.expose_secret(),
        }
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretValue")
            .field("version_id", &self.version_id)
            .field("value", &"<redacted>")
            .finish()
    }
}

impl Cached for SecretValue {
    const KIND: FactKind = FactKind::SecretValue;

    fn bytes(&self) -> usize {
        self.expose_bytes().len()
    }
}

impl Cached for SecretFacts {
    const KIND: FactKind = FactKind::SecretMetadata;
}

/// One value wanted: a secret (name or ARN) at an exact version id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ValueRef {
    pub target: Target,
    pub secret_id: String,
    pub version_id: String,
}

impl ValueRef {
    fn cache_id(&self) -> String {
        value_cache_id(&self.secret_id, &self.version_id)
    }
}

fn value_cache_id(secret_id: &str, version_id: &str) -> String {
    // A NUL cannot occur in a secret id or a version id.
    format!("{secret_id}\0{version_id}")
}

/// Facts about Secrets Manager secrets.
pub trait SecretsApi {
    /// Metadata of one secret (DescribeSecret). A secret scheduled for deletion is NotFound.
    fn secret(
        &self,
        target: &Target,
        secret_id: &str,
    ) -> impl Future<Output = Result<SecretFacts, AwsError>> + Send;

    /// Metadata of many secrets in one region, as cheaply as possible: cached ones are free;
    /// from [`super::AwsSettings::list_secrets_from`] uncached ones on, ListSecrets pages filtered by
    /// name replace one DescribeSecret per secret.
    fn secrets(
        &self,
        target: &Target,
        secret_ids: &[String],
    ) -> impl Future<Output = HashMap<String, Result<SecretFacts, AwsError>>> + Send;

    /// Metadata of every secret whose name starts with one of `prefixes` (ListSecrets).
    fn list_secrets(
        &self,
        target: &Target,
        prefixes: &[String],
    ) -> impl Future<Output = Result<Vec<SecretFacts>, AwsError>> + Send;

    /// The value of one version (GetSecretValue), cached until evicted.
    fn value(
        &self,
        target: &Target,
        secret_id: &str,
        version_id: &str,
    ) -> impl Future<Output = Result<SecretValue, AwsError>> + Send;

    /// Many values at once: cached ones are free, the rest are read with BatchGetSecretValue in
    /// chunks of 20 per (region, role). BatchGetSecretValue returns the current version only, so
    /// any other version wanted is read with GetSecretValue.
    fn values(
        &self,
        wanted: &[ValueRef],
    ) -> impl Future<Output = HashMap<ValueRef, Result<SecretValue, AwsError>>> + Send;
}

impl SecretsApi for AwsFacts {
    async fn secret(&self, target: &Target, secret_id: &str) -> Result<SecretFacts, AwsError> {
        let scope = self.scope(target)?;
        self.describe_secret(&scope, secret_id).await
    }

    async fn secrets(
        &self,
        target: &Target,
        secret_ids: &[String],
    ) -> HashMap<String, Result<SecretFacts, AwsError>> {
        let scope = match self.scope(target) {
            Ok(scope) => scope,
            Err(err) => return secret_ids.iter().map(|id| (id.clone(), Err(err.clone()))).collect(),
        };
        let mut found = HashMap::new();
        let mut missing: Vec<&String> = Vec::new();
        for id in unique(secret_ids) {
            match self.inner.cache.peek::<SecretFacts>(&scope, id) {
                Some(result) => drop(found.insert(id.clone(), result)),
                None => missing.push(id),
            }
        }
        if missing.len() >= self.inner.settings.list_secrets_from {
            // A failed listing is not fatal: DescribeSecret below still answers each secret.
            if let Ok(listed) = self.list_into_cache(&scope, &missing).await {
                missing.retain(|id| match listed.get(id.as_str()) {
                    Some(facts) => {
                        found.insert((*id).clone(), Ok(facts.clone()));
                        false
                    }
                    None => true,
                });
            }
        }
        let described = join_all(missing.iter().map(|id| self.describe_secret(&scope, id))).await;
        found.extend(missing.into_iter().cloned().zip(described));
        found
    }

    async fn list_secrets(&self, target: &Target, prefixes: &[String]) -> Result<Vec<SecretFacts>, AwsError> {
        let scope = self.scope(target)?;
        let listed = self.list_in_scope(&scope, prefixes).await?;
        for facts in &listed {
            self.inner.cache.put(&scope, &facts.name, Ok(facts.clone()));
            self.inner.cache.put(&scope, &facts.arn, Ok(facts.clone()));
        }
        Ok(listed)
    }

    async fn value(
        &self,
        target: &Target,
        secret_id: &str,
        version_id: &str,
    ) -> Result<SecretValue, AwsError> {
        let scope = self.scope(target)?;
        self.get_value(&scope, secret_id, version_id).await
    }

    async fn values(&self, wanted: &[ValueRef]) -> HashMap<ValueRef, Result<SecretValue, AwsError>> {
        let mut found = HashMap::new();
        let mut by_scope: HashMap<Scope, Vec<&ValueRef>> = HashMap::new();
        for value_ref in unique(wanted) {
            let scope = match self.scope(&value_ref.target) {
                Ok(scope) => scope,
                Err(err) => {
                    found.insert(value_ref.clone(), Err(err));
                    continue;
                }
            };
            match self.inner.cache.peek::<SecretValue>(&scope, &value_ref.cache_id()) {
                Some(result) => drop(found.insert(value_ref.clone(), result)),
                None => by_scope.entry(scope).or_default().push(value_ref),
            }
        }
        let mut singles = Vec::new();
        for (scope, refs) in &by_scope {
            for chunk in chunks_by_secret(refs) {
                match self.batch_get(scope, &chunk).await {
                    Ok(answers) => {
                        for value_ref in chunk {
                            match answers.get(&value_ref.secret_id) {
                                Some(Ok(value)) if value.version_id == value_ref.version_id => {
                                    self.inner.cache.put(scope, &value_ref.cache_id(), Ok(value.clone()));
                                    found.insert(value_ref.clone(), Ok(value.clone()));
                                }
                                Some(Err(err)) => drop(found.insert(value_ref.clone(), Err(err.clone()))),
                                // Not the current version, or not answered: read it by version id.
                                _ => singles.push((scope, value_ref)),
                            }
                        }
                    }
                    // Some IAM policies grant GetSecretValue but not BatchGetSecretValue.
                    Err(AwsError::AccessDenied { .. }) => {
                        singles.extend(chunk.into_iter().map(|r| (scope, r)))
                    }
                    Err(err) => found.extend(chunk.into_iter().map(|r| (r.clone(), Err(err.clone())))),
                }
            }
        }
        let reads =
            join_all(singles.iter().map(|(scope, r)| self.get_value(scope, &r.secret_id, &r.version_id)))
                .await;
        found.extend(singles.into_iter().map(|(_, r)| r.clone()).zip(reads));
        found
    }
}

impl AwsFacts {
    /// Makes the next metadata read of `secret_id` ask AWS if what is cached was read `max_age`
    /// ago or earlier: a ProtectedSecret refreshing more often than the cache's TTL sees a
    /// rotation within its own interval, and a refresh AWS did not answer is reported as such.
    pub fn forget_secret_metadata(&self, target: &Target, secret_id: &str, max_age: Duration) {
        if let Ok(scope) = self.scope(target) {
            self.inner.cache.forget_older_than::<SecretFacts>(&scope, secret_id, max_age);
        }
    }

    /// When the metadata of `secret_id` now cached was read from AWS.
    pub fn secret_metadata_fetched(&self, target: &Target, secret_id: &str) -> Option<std::time::Instant> {
        self.inner.cache.fetched::<SecretFacts>(&self.scope(target).ok()?, secret_id)
    }

    /// How long secret metadata read ahead of a refresh is kept.
    pub fn secret_metadata_ttl(&self) -> Duration {
        self.inner.cache.ttl(FactKind::SecretMetadata).unwrap_or(Duration::MAX)
    }

    /// Drops the cached value of a version no ProtectedSecret uses any more: wiped at once,
    /// unless a reconcile still holds it.
    pub fn forget_value(&self, value_ref: &ValueRef) {
        if let Ok(scope) = self.scope(&value_ref.target) {
            self.inner.cache.forget::<SecretValue>(&scope, &value_ref.cache_id());
        }
    }

    async fn describe_secret(&self, scope: &Scope, secret_id: &str) -> Result<SecretFacts, AwsError> {
        let client = self.clients(scope).secrets.clone();
        let requester = self.inner.requester.clone();
        let id = secret_id.to_string();
        self.inner
            .cache
            .get_or_load(scope, secret_id, move || async move {
                let out = requester
                    .send(DESCRIBE_SECRET, &id, || client.describe_secret().secret_id(&id).send())
                    .await?;
                // A partial ARN is looked up by prefix: a longer name's secret is not this one.
                let (arn, name) =
                    (out.arn.as_deref().unwrap_or_default(), out.name.as_deref().unwrap_or_default());
                if out.deleted_date.is_some() || !id_matches(&id, arn, name) {
                    return Err(AwsError::NotFound { kind: "secret", id });
                }
                Ok(SecretFacts {
                    arn: out.arn.unwrap_or_default(),
                    name: out.name.unwrap_or_default(),
                    kms_key_id: out.kms_key_id,
                    rotation_enabled: out.rotation_enabled.unwrap_or(false),
                    rotation_interval_days: rotation_days(out.rotation_rules.as_ref()),
                    last_rotated: timestamp(out.last_rotated_date),
                    last_changed: timestamp(out.last_changed_date),
                    next_rotation: timestamp(out.next_rotation_date),
                    created: timestamp(out.created_date),
                    version_stages: out.version_ids_to_stages.unwrap_or_default(),
                })
            })
            .await
    }

    async fn get_value(
        &self,
        scope: &Scope,
        secret_id: &str,
        version_id: &str,
    ) -> Result<SecretValue, AwsError> {
        let client = self.clients(scope).secrets.clone();
        let requester = self.inner.requester.clone();
        let (id, version) = (secret_id.to_string(), version_id.to_string());
        self.inner
            .cache
            .get_or_load(scope, &value_cache_id(secret_id, version_id), move || async move {
                let out = requester
                    .send(GET_SECRET_VALUE, &id, || {
                        client.get_secret_value().secret_id(&id).version_id(&version).send()
                    })
                    .await?;
                let (arn, name) =
                    (out.arn.as_deref().unwrap_or_default(), out.name.as_deref().unwrap_or_default());
                if !id_matches(&id, arn, name) {
                    return Err(AwsError::NotFound { kind: GET_SECRET_VALUE.subject, id });
                }
                Ok(SecretValue::new(version, out.secret_string, out.secret_binary))
            })
            .await
    }

    /// One BatchGetSecretValue round (following NextToken): secret id as asked -> the current
    /// value, or that secret's own error.
    async fn batch_get(
        &self,
        scope: &Scope,
        chunk: &[&ValueRef],
    ) -> Result<HashMap<String, Result<SecretValue, AwsError>>, AwsError> {
        let client = self.clients(scope).secrets.clone();
        let ids: Vec<String> = unique(chunk.iter().map(|r| &r.secret_id)).cloned().collect();
        let label = ids.join(",");
        let mut answers = HashMap::new();
        let mut next_token: Option<String> = None;
        loop {
            let out = self
                .inner
                .requester
                .send(BATCH_GET_SECRET_VALUE, &label, || {
                    client
                        .batch_get_secret_value()
                        .set_secret_id_list(Some(ids.clone()))
                        .set_next_token(next_token.clone())
                        .send()
                })
                .await?;
            for entry in out.secret_values.unwrap_or_default() {
                let (arn, name) = (entry.arn.unwrap_or_default(), entry.name.unwrap_or_default());
                let value = SecretValue::new(
                    entry.version_id.unwrap_or_default(),
                    entry.secret_string,
                    entry.secret_binary,
                );
                for id in ids.iter().filter(|id| id_matches(id, &arn, &name)) {
                    answers.insert(id.clone(), Ok(value.clone()));
                }
            }
            for error in out.errors.unwrap_or_default() {
                let id = error.secret_id.unwrap_or_default();
                let failure =
                    AttemptError::from_code(error.error_code.as_deref().unwrap_or("Unknown"), error.message);
                let err = failure.into_error(GET_SECRET_VALUE.action, &id, GET_SECRET_VALUE.subject, 1);
                answers.insert(id, Err(err));
            }
            match out.next_token {
                Some(token) if !token.is_empty() => next_token = Some(token),
                _ => return Ok(answers),
            }
        }
    }
}

/// Splits value references into BatchGetSecretValue chunks of at most 20 distinct secrets.
/// Several versions of one secret stay in one chunk: the batch answers the current one.
fn chunks_by_secret<'a>(refs: &[&'a ValueRef]) -> Vec<Vec<&'a ValueRef>> {
    let mut groups: Vec<(&str, Vec<&'a ValueRef>)> = Vec::new();
    for value_ref in refs {
        match groups.iter_mut().find(|(id, _)| *id == value_ref.secret_id) {
            Some((_, group)) => group.push(value_ref),
            None => groups.push((&value_ref.secret_id, vec![value_ref])),
        }
    }
    groups
        .chunks(BATCH_SIZE)
        .map(|chunk| chunk.iter().flat_map(|(_, g)| g.iter().copied()).collect())
        .collect()
}

/// The name filter that finds a secret referenced by name or (partial) ARN.
fn name_prefix(secret_id: &str) -> &str {
    let Some(name) = Arn::parse(secret_id).and_then(|arn| arn.secret_name()) else {
        return secret_id;
    };
    match name.rfind('-') {
        Some(at) if is_random_suffix(&name[at..]) => &name[..at],
        _ => name,
    }
}

/// Whether `suffix` is what a complete ARN adds to the secret's name: `-` and six random
/// characters.
fn is_random_suffix(suffix: &str) -> bool {
    suffix.len() == 7 && suffix.starts_with('-') && suffix[1..].bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Whether a reference (name, full ARN or partial ARN) names the secret with `arn` and `name`.
/// Exactly: ListSecrets filters and AWS's partial-ARN lookup match prefixes, so `prod/db` must
/// not take `prod/db-extra`. Every answer naming a secret is checked with it.
fn id_matches(id: &str, arn: &str, name: &str) -> bool {
    id == name || id == arn || (id.starts_with("arn:") && arn.strip_prefix(id).is_some_and(is_random_suffix))
}

fn refers_to(id: &str, facts: &SecretFacts) -> bool {
    id_matches(id, &facts.arn, &facts.name)
}

fn list_entry_facts(entry: SecretListEntry) -> SecretFacts {
    SecretFacts {
        arn: entry.arn.unwrap_or_default(),
        name: entry.name.unwrap_or_default(),
        kms_key_id: entry.kms_key_id,
        rotation_enabled: entry.rotation_enabled.unwrap_or(false),
        rotation_interval_days: rotation_days(entry.rotation_rules.as_ref()),
        last_rotated: timestamp(entry.last_rotated_date),
        last_changed: timestamp(entry.last_changed_date),
        next_rotation: timestamp(entry.next_rotation_date),
        created: timestamp(entry.created_date),
        version_stages: entry.secret_versions_to_stages.unwrap_or_default(),
    }
}

fn rotation_days(rules: Option<&aws_sdk_secretsmanager::types::RotationRulesType>) -> Option<u32> {
    rules?.automatically_after_days.and_then(|days| u32::try_from(days).ok())
}

pub(crate) fn timestamp(t: Option<DateTime>) -> Option<jiff::Timestamp> {
    let t = t?;
    jiff::Timestamp::new(t.secs(), i32::try_from(t.subsec_nanos()).ok()?).ok()
}

/// Each distinct item once, in first-seen order.
fn unique<T: Eq + std::hash::Hash + Clone>(items: impl IntoIterator<Item = T>) -> impl Iterator<Item = T> {
    let mut seen = HashSet::new();
    items.into_iter().filter(move |item| seen.insert(item.clone()))
}

mod listing;

#[cfg(test)]
mod tests;
