//! ACM: certificate state as [`CertificateFacts`], and discovery of certificates by host the way
//! the AWS Load Balancer Controller does it (issued certificates whose names cover the host).

use super::cache::{Cached, FactKind, Scope};
use super::error::AwsError;
use super::retry::Operation;
use super::secrets::timestamp;
use super::session::{AwsFacts, Target};
use crate::policy::facts::CertificateFacts;
use crate::policy::ingress::name_covers;
use aws_sdk_acm::types::{CertificateStatus, CertificateSummary, Filters, KeyAlgorithm};
use futures::future::join_all;
use std::future::Future;

const DESCRIBE_CERTIFICATE: Operation = Operation::new("acm:DescribeCertificate", "certificate");
const LIST_CERTIFICATES: Operation = Operation::new("acm:ListCertificates", "certificate");

/// The id under which a region's certificate listing is cached.
const LISTING_ID: &str = "issued";

impl Cached for CertificateFacts {
    const KIND: FactKind = FactKind::Certificate;
}

/// One listed certificate, with its names when the listing carried all of them.
#[derive(Clone, Debug)]
struct Listed {
    arn: String,
    names: Option<Vec<String>>,
}

#[derive(Clone, Debug)]
struct Listing(Vec<Listed>);

impl Cached for Listing {
    const KIND: FactKind = FactKind::CertificateList;
}

/// Facts about ACM certificates.
pub trait AcmApi {
    /// One certificate by ARN (DescribeCertificate).
    fn certificate(
        &self,
        target: &Target,
        arn: &str,
    ) -> impl Future<Output = Result<CertificateFacts, AwsError>> + Send;

    /// Issued certificates whose domain name or a SAN covers `host` (RFC 6125 wildcards).
    fn certificates_for_host(
        &self,
        target: &Target,
        host: &str,
    ) -> impl Future<Output = Result<Vec<CertificateFacts>, AwsError>> + Send;
}

impl AcmApi for AwsFacts {
    async fn certificate(&self, target: &Target, arn: &str) -> Result<CertificateFacts, AwsError> {
        let scope = self.scope(target)?;
        self.describe_certificate(&scope, arn).await
    }

    async fn certificates_for_host(
        &self,
        target: &Target,
        host: &str,
    ) -> Result<Vec<CertificateFacts>, AwsError> {
        let scope = self.scope(target)?;
        let listing = self.listing(&scope).await?;
        let mut candidates = Vec::new();
        let mut undecided = Vec::new();
        for listed in listing.0 {
            match &listed.names {
                Some(names) if names.iter().any(|n| name_covers(n, host)) => candidates.push(listed.arn),
                Some(_) => {}
                None => undecided.push(listed.arn),
            }
        }
        // Certificates whose listing did not carry every name are described to decide.
        let described = join_all(undecided.iter().map(|arn| self.describe_certificate(&scope, arn))).await;
        let mut found = Vec::new();
        for facts in described {
            let facts = facts?;
            if facts.domain_names.iter().any(|n| name_covers(n, host)) {
                found.push(facts);
            }
        }
        for facts in join_all(candidates.iter().map(|arn| self.describe_certificate(&scope, arn))).await {
            found.push(facts?);
        }
        found.sort_by(|a, b| a.arn.cmp(&b.arn));
        Ok(found)
    }
}

impl AwsFacts {
    async fn describe_certificate(&self, scope: &Scope, arn: &str) -> Result<CertificateFacts, AwsError> {
        let client = self.clients(scope).acm.clone();
        let requester = self.inner.requester.clone();
        let arn_owned = arn.to_string();
        self.inner
            .cache
            .get_or_load(scope, arn, move || async move {
                let out = requester
                    .send(DESCRIBE_CERTIFICATE, &arn_owned, || {
                        client.describe_certificate().certificate_arn(&arn_owned).send()
                    })
                    .await?;
                let detail = out
                    .certificate
                    .ok_or_else(|| AwsError::NotFound { kind: "certificate", id: arn_owned.clone() })?;
                let mut domain_names: Vec<String> = detail.domain_name.clone().into_iter().collect();
                for san in detail.subject_alternative_names() {
                    if !domain_names.contains(san) {
                        domain_names.push(san.clone());
                    }
                }
                Ok(CertificateFacts {
                    arn: detail.certificate_arn.clone().unwrap_or(arn_owned),
                    status: detail
                        .status
                        .as_ref()
                        .map_or_else(|| "UNKNOWN".to_string(), |s| s.as_str().to_string()),
                    not_after: timestamp(detail.not_after),
                    domain_names,
                    in_use: !detail.in_use_by().is_empty(),
                    key_algorithm: detail.key_algorithm.as_ref().map(|k| k.as_str().to_string()),
                })
            })
            .await
    }

    /// Every issued certificate of the region, of every key type (ListCertificates otherwise
    /// returns RSA-2048 ones only).
    async fn listing(&self, scope: &Scope) -> Result<Listing, AwsError> {
        let client = self.clients(scope).acm.clone();
        let requester = self.inner.requester.clone();
        self.inner
            .cache
            .get_or_load(scope, LISTING_ID, move || async move {
                let includes = Filters::builder()
                    .set_key_types(Some(
                        KeyAlgorithm::values().iter().map(|k| KeyAlgorithm::from(*k)).collect(),
                    ))
                    .build();
                let mut listed = Vec::new();
                let mut next_token: Option<String> = None;
                loop {
                    let out = requester
                        .send(LIST_CERTIFICATES, LISTING_ID, || {
                            client
                                .list_certificates()
                                .certificate_statuses(CertificateStatus::Issued)
                                .includes(includes.clone())
                                .set_next_token(next_token.clone())
                                .send()
                        })
                        .await?;
                    listed.extend(
                        out.certificate_summary_list.unwrap_or_default().into_iter().map(listed_names),
                    );
                    match out.next_token {
                        Some(token) if !token.is_empty() => next_token = Some(token),
                        _ => return Ok(Listing(listed)),
                    }
                }
            })
            .await
    }
}

fn listed_names(summary: CertificateSummary) -> Listed {
    let complete = summary.has_additional_subject_alternative_names != Some(true)
        && !summary.subject_alternative_name_summaries().is_empty();
    let names = complete.then(|| {
        let mut names: Vec<String> = summary.domain_name.clone().into_iter().collect();
        names.extend(summary.subject_alternative_name_summaries().iter().cloned());
        names
    });
    Listed { arn: summary.certificate_arn.unwrap_or_default(), names }
}
