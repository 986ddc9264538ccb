//! What one reconcile came to: the version synced, or why not, and what the policy said.

use super::Error;
use super::target::Written;
use crate::api::Finding;
use crate::aws::{AwsError, ErrorClass, ValueRef};
use crate::policy::facts::FactError;

/// Why a reconcile did not sync (or did, but owes its consumers a restart), as `Ready`
/// reports it.
#[derive(Debug)]
pub(super) struct Failure {
    pub reason: String,
    pub message: String,
    /// Retried with backoff rather than at the next refresh: AWS or the apiserver may answer
    /// otherwise soon.
    pub retry: Option<Error>,
    /// Goes away without anyone's help (throttling, an outage, a write conflict). A missing
    /// secret, permission or a refused write is retried too, as someone may fix it, but only a
    /// person can.
    pub transient: bool,
}

impl Failure {
    pub fn new(reason: impl Into<String>, message: impl Into<String>) -> Self {
        Failure { reason: reason.into(), message: message.into(), retry: None, transient: false }
    }

    pub fn aws(err: AwsError) -> Self {
        Failure {
            reason: err.reason().to_string(),
            message: err.to_string(),
            transient: matches!(err.class(), ErrorClass::Throttled | ErrorClass::Transient),
            retry: (!matches!(err, AwsError::RoleNotAllowed { .. })).then(|| Error::Aws(err)),
        }
    }

    /// Under `enforcement: Enforce`, rules that could not be checked: nothing is written.
    /// Retried with backoff, as AWS may answer soon or someone may grant what is missing.
    pub fn not_evaluated(version_id: &str, rules: &[&str], causes: &[FactError]) -> Self {
        let because = match causes {
            [] => "AWS did not answer what they need".to_string(),
            _ => causes.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
        };
        Failure {
            reason: "PolicyNotEvaluated".into(),
            message: format!(
                "policy is enforced and {} could not be checked for version {version_id} ({because}); the Secret \
                 is not written",
                rules.join(", ")
            ),
            retry: Some(Error::NotEvaluated(rules.join(", "))),
            transient: !causes.is_empty() && causes.iter().all(|cause| cause.transient),
        }
    }

    /// A write of `object` the apiserver refused (invalid, forbidden, denied by admission): reason
    /// `{action}{the apiserver's reason}`, e.g. `SecretWriteInvalid`. Other errors come back.
    pub fn refused(action: &str, object: &str, err: kube::Error) -> Result<Self, kube::Error> {
        let kube::Error::Api(status) = &err else { return Err(err) };
        if !(400..500).contains(&status.code) {
            return Err(err);
        }
        let because: String = status.reason.chars().filter(char::is_ascii_alphanumeric).collect();
        Ok(Failure {
            reason: format!("{action}{}", if because.is_empty() { "Rejected" } else { &because }),
            message: format!(
                "the apiserver refused {object} ({} {}): {}",
                status.code, status.reason, status.message
            ),
            transient: matches!(status.code, 409 | 429),
            retry: Some(Error::Kube(err)),
        })
    }
}

use std::time::Instant;

/// A successful sync: the version in the Secret and what the write did.
#[derive(Debug)]
pub(super) struct Synced {
    /// The version, as it was read: the value cache's key for it, session and region included.
    pub value: ValueRef,
    pub written: Written,
    /// When the metadata that chose the version was read from AWS, for a due refresh (`None`:
    /// the version was known, or pinned by id).
    pub checked: Option<Instant>,
    /// The rollout restart this version owes its consumers, when it could not be done.
    pub restart_failed: Option<Failure>,
}

#[derive(Debug)]
pub(super) struct Outcome {
    pub sync: Result<Synced, Failure>,
    /// `None`: the policy was not judged this time; status keeps what it said.
    pub findings: Option<Vec<Finding>>,
    /// Rules that could not be checked because AWS did not answer what they need.
    pub unchecked: Vec<&'static str>,
}

impl Outcome {
    pub fn failed(failure: Failure) -> Self {
        Outcome { sync: Err(failure), findings: None, unchecked: Vec::new() }
    }

    /// The failure `Ready` reports: the sync's, or the restart's.
    pub fn failure(&self) -> Option<&Failure> {
        match &self.sync {
            Ok(synced) => synced.restart_failed.as_ref(),
            Err(failure) => Some(failure),
        }
    }
}
