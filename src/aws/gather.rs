//! Fills a [`FactSet`] for the references an evaluation needs, for `dpo check --aws` and the
//! controllers. Failures become [`Fact::Failed`] or [`Fact::NotFound`]; nothing panics.

use super::acm::AcmApi;
use super::ec2::Ec2Api;
use super::eks::EksApi;
use super::error::AwsError;
use super::kms::KmsApi;
use super::secrets::SecretsApi;
use super::session::{AwsFacts, Target};
use super::wafv2::Wafv2Api;
use crate::policy::facts::{Fact, FactError, FactSet, Wanted};
use futures::{StreamExt, stream};
use std::collections::{BTreeSet, HashMap};
use std::future::Future;

/// Lookups of one kind in flight at once. Each holds a connection and the SDK's request state,
/// and AWS throttles bursts (ACM allows a few DescribeCertificate calls a second), so a gather
/// of thousands of references runs them a few at a time.
const IN_FLIGHT: usize = 16;

/// The AWS references one evaluation needs, all in one region and role.
#[derive(Clone, Debug, Default)]
pub struct FactRequest {
    pub target: Target,
    /// Key ids, ARNs, alias names or alias ARNs.
    pub kms_keys: BTreeSet<String>,
    /// Keys (referenced as in `kms_keys`) whose rotation status is wanted.
    pub kms_rotations: BTreeSet<String>,
    pub certificate_arns: BTreeSet<String>,
    /// Hosts to discover certificates for.
    pub hosts: BTreeSet<String>,
    pub volume_ids: BTreeSet<String>,
    /// Whether the account/region's EBS encryption-by-default setting is needed.
    pub ebs_default: bool,
    /// Secret names or ARNs.
    pub secret_ids: BTreeSet<String>,
    /// Names of EKS clusters.
    pub clusters: BTreeSet<String>,
    /// Regional WAFv2 Web ACL ARNs.
    pub web_acl_arns: BTreeSet<String>,
}

impl FactRequest {
    /// A request for what an evaluation recorded as wanted (see [`crate::policy::facts::FactRecorder`]).
    pub fn new(target: Target, wanted: Wanted) -> Self {
        FactRequest {
            target,
            kms_keys: wanted.kms_keys,
            kms_rotations: wanted.kms_rotations,
            certificate_arns: wanted.certificate_arns,
            hosts: wanted.hosts,
            volume_ids: wanted.volume_ids,
            ebs_default: wanted.ebs_default,
            secret_ids: wanted.secret_ids,
            clusters: wanted.clusters,
            web_acl_arns: wanted.web_acl_arns,
        }
    }
}

/// `lookup` of every id, in order, [`IN_FLIGHT`] at a time. (Ids are passed owned: a lookup
/// borrowing its id makes the caller's future fail to be `Send` for every lifetime.)
async fn each<T, Fut>(ids: &BTreeSet<String>, lookup: impl FnMut(String) -> Fut) -> Vec<T>
where
    Fut: Future<Output = T>,
{
    stream::iter(ids.iter().cloned()).map(lookup).buffered(IN_FLIGHT).collect().await
}

/// Looks every id up as [`each`] does, each result a fact under its id.
async fn each_fact<T, Fut>(
    ids: &BTreeSet<String>,
    lookup: impl FnMut(String) -> Fut,
) -> HashMap<String, Fact<T>>
where
    Fut: Future<Output = Result<T, AwsError>>,
{
    let results = each(ids, lookup).await;
    ids.iter().cloned().zip(results.into_iter().map(fact)).collect()
}

fn fact<T>(result: Result<T, AwsError>) -> Fact<T> {
    match result {
        Ok(value) => Fact::Known(value),
        Err(err) if err.is_not_found() => Fact::NotFound,
        Err(err) => Fact::Failed(FactError {
            reason: err.reason(),
            message: err.to_string(),
            transient: err.class().is_retryable(),
        }),
    }
}

impl AwsFacts {
    /// Gathers every fact `wanted` names, [`IN_FLIGHT`] lookups of a kind at a time.
    pub async fn gather(&self, wanted: &FactRequest) -> FactSet {
        let target = &wanted.target;
        let mut set = FactSet { now: Some(jiff::Timestamp::now()), ..FactSet::default() };

        let keys = each(&wanted.kms_keys, |key| async move { self.kms_key(target, &key).await }).await;
        for (key, result) in wanted.kms_keys.iter().zip(keys) {
            // Rules look a key up by the reference they hold; an alias is also known by its ARN.
            if let Ok(facts) = &result
                && !facts.arn.is_empty()
            {
                set.kms_keys.insert(facts.arn.clone(), Fact::Known(facts.clone()));
            }
            set.kms_keys.insert(key.clone(), fact(result));
        }

        set.kms_rotations =
            each_fact(&wanted.kms_rotations, |key| async move { self.kms_key_rotation(target, &key).await })
                .await;

        set.certificates =
            each_fact(&wanted.certificate_arns, |arn| async move { self.certificate(target, &arn).await })
                .await;

        let by_host =
            each(&wanted.hosts, |host| async move { self.certificates_for_host(target, &host).await }).await;
        for (host, result) in wanted.hosts.iter().zip(by_host) {
            let arns = result.map(|found| {
                found
                    .into_iter()
                    .map(|facts| {
                        let arn = facts.arn.clone();
                        set.certificates.entry(arn.clone()).or_insert(Fact::Known(facts));
                        arn
                    })
                    .collect()
            });
            set.host_certificates.insert(host.clone(), fact(arns));
        }

        if !wanted.volume_ids.is_empty() {
            let ids: Vec<String> = wanted.volume_ids.iter().cloned().collect();
            set.volumes = self.volumes(target, &ids).await.into_iter().map(|(id, r)| (id, fact(r))).collect();
        }

        if wanted.ebs_default {
            set.ebs_default = Some(fact(self.ebs_default(target).await));
        }

        if !wanted.secret_ids.is_empty() {
            let ids: Vec<String> = wanted.secret_ids.iter().cloned().collect();
            set.secrets = self.secrets(target, &ids).await.into_iter().map(|(id, r)| (id, fact(r))).collect();
        }

        set.clusters =
            each_fact(&wanted.clusters, |name| async move { self.eks_cluster(target, &name).await }).await;
        set.web_acls =
            each_fact(&wanted.web_acl_arns, |arn| async move { self.web_acl(target, &arn).await }).await;
        set
    }
}
