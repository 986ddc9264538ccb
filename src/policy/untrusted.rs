//! `policy-in-input`: a policy among the manifests `dpo check` judges while `--policy` names the
//! trusted ones. It is not applied (a change must not bring the policy it is judged by), and is
//! reported, since once applied to the cluster it would govern it.

use super::{Judgement, Rule, Verdict, exemption};
use crate::api::ResourceRef;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// The verdict on a policy found at `origin` (`file:line`) among the checked manifests.
pub fn untrusted_policy(resource: &ResourceRef, meta: &ObjectMeta, origin: &str) -> Verdict {
    if let Some(reason) = exemption(meta) {
        return Verdict::Exempt(reason.to_string());
    }
    let mut judgement = Judgement::default();
    judgement.check(Rule::PolicyInInput);
    judgement.violation(
        Rule::PolicyInInput,
        resource,
        format!(
            "{} {} ({origin}) is among the checked manifests, so it was not applied: only the policies of the --policy files count",
            resource.kind, resource.name
        ),
        Rule::PolicyInInput.remediation().to_string(),
    );
    Verdict::Judged(judgement)
}
