//! WAFv2: whether the regional Web ACL an ALB names exists ([`WebAclFacts`]).

use super::cache::{Cached, FactKind};
use super::error::AwsError;
use super::retry::Operation;
use super::session::{AwsFacts, Target};
use crate::policy::arn::Arn;
use crate::policy::facts::WebAclFacts;
use aws_sdk_wafv2::types::Scope as WafScope;
use std::future::Future;

const GET_WEB_ACL: Operation = Operation::new("wafv2:GetWebACL", "Web ACL");

impl Cached for WebAclFacts {
    const KIND: FactKind = FactKind::WebAcl;
}

/// Facts about WAFv2 Web ACLs.
pub trait Wafv2Api {
    /// The regional Web ACL with this ARN (GetWebACL), read in the ARN's own region.
    fn web_acl(
        &self,
        target: &Target,
        arn: &str,
    ) -> impl Future<Output = Result<WebAclFacts, AwsError>> + Send;
}

impl Wafv2Api for AwsFacts {
    async fn web_acl(&self, target: &Target, arn: &str) -> Result<WebAclFacts, AwsError> {
        let invalid = || AwsError::Invalid {
            action: GET_WEB_ACL.action,
            message: format!(
                "{arn:?} is not a regional WAFv2 Web ACL ARN (arn:aws:wafv2:<region>:<account>:regional/webacl/<name>/<id>)"
            ),
        };
        let parsed = Arn::parse(arn).ok_or_else(invalid)?;
        let (name, id) = parsed.regional_web_acl().ok_or_else(invalid)?;
        let scope = self.scope(&Target { region: Some(parsed.region.to_string()), ..target.clone() })?;
        let client = self.clients(&scope).wafv2.clone();
        let requester = self.inner.requester.clone();
        let (arn, name, id) = (arn.to_string(), name.to_string(), id.to_string());
        self.inner
            .cache
            .get_or_load(&scope, &arn.clone(), move || async move {
                let out = requester
                    .send(GET_WEB_ACL, &arn, || {
                        client.get_web_acl().name(&name).id(&id).scope(WafScope::Regional).send()
                    })
                    .await?;
                let acl =
                    out.web_acl.ok_or_else(|| AwsError::NotFound { kind: "Web ACL", id: arn.clone() })?;
                Ok(WebAclFacts { arn: acl.arn, rules: acl.rules.unwrap_or_default().len() })
            })
            .await
    }
}
