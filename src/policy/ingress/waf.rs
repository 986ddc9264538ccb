//! `alb-waf-enabled`: with `requireWaf`, an internet-facing ALB has a WAFv2 Web ACL, and with AWS
//! facts the Web ACL exists.
//!
//! The controllers read the scheme from IngressClassParams `scheme`, else the `scheme`
//! annotation, `internal` by default; the Web ACL from `spec.wafv2AclArn` of elbv2.k8s.aws
//! IngressClassParams, else the `wafv2-acl-arn` annotation, else `wafv2-acl-name` (EKS Auto Mode
//! has only the annotations). `none` detaches any Web ACL. An ACL named rather than given by ARN
//! cannot be looked up by GetWebACL (which takes the id), so only its presence is judged.

use super::alb::{AlbEvaluation, Source};
use super::annotations::{SCHEME, WAFV2_ACL_ARN, WAFV2_ACL_NAME, annotation};
use super::ledger::Issue;
use super::params::ClassParams;
use crate::policy::arn::Arn;
use crate::policy::{Fact, Rule};

const INTERNET_FACING: &str = "internet-facing";
/// The value that tells the controller to attach no Web ACL.
const NO_ACL: &str = "none";
const ACL_ARN_PLACEHOLDER: &str = "arn:aws:wafv2:<region>:<account>:regional/webacl/<name>/<id>";

/// A member's Web ACL setting.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Acl<'g> {
    Arn(&'g str),
    Name(&'g str),
}

impl AlbEvaluation<'_> {
    pub(super) fn judge_waf(&mut self) {
        if !self.policy.require_waf {
            return;
        }
        self.ledger.evaluate(Rule::AlbWafEnabled);
        let members = self.members;
        let internet_facing = members.iter().any(|member| {
            let params_scheme = member.class.params.and_then(ClassParams::scheme);
            let scheme =
                params_scheme.or_else(|| annotation(member.ingress.metadata.annotations.as_ref(), SCHEME));
            scheme == Some(INTERNET_FACING)
        });
        if !internet_facing {
            return;
        }
        // The first member in group order that sets a Web ACL decides it; others must agree.
        let mut chosen: Option<(Option<Acl<'_>>, usize)> = None;
        for (cause, member) in members.iter().enumerate() {
            let annotations = member.ingress.metadata.annotations.as_ref();
            let setting = member
                .class
                .params
                .and_then(ClassParams::wafv2_acl_arn)
                .or_else(|| annotation(annotations, WAFV2_ACL_ARN))
                .map(Acl::Arn)
                .or_else(|| annotation(annotations, WAFV2_ACL_NAME).map(Acl::Name));
            let Some(setting) = setting else { continue };
            let acl = match setting {
                Acl::Arn(NO_ACL) | Acl::Name(NO_ACL) => None,
                acl => Some(acl),
            };
            match chosen {
                None => chosen = Some((acl, cause)),
                Some((first, _)) if first != acl => self.ledger.report(
                    cause,
                    Issue::new(
                        Rule::AlbIngressGroupConsistent,
                        format!(
                            "Ingress {} sets another WAFv2 Web ACL than {}; the controller fails to build the ALB",
                            self.describe(cause),
                            self.describe(chosen.map_or(0, |(_, at)| at))
                        ),
                        format!("Set one `{WAFV2_ACL_ARN}` on every Ingress of the group"),
                    ),
                ),
                Some(_) => {}
            }
        }
        match chosen {
            None | Some((None, _)) => {
                let cause = chosen.map_or(0, |(_, cause)| cause);
                let source = match members[cause].class.params {
                    Some(params @ ClassParams::LoadBalancerController(_)) => {
                        Source::ClassParams(params.name())
                    }
                    _ => Source::Annotation,
                };
                self.ledger.report(
                    cause,
                    Issue::new(
                        Rule::AlbWafEnabled,
                        "the ALB is internet-facing and has no WAFv2 Web ACL".to_string(),
                        source.fix(WAFV2_ACL_ARN, "wafv2AclArn", ACL_ARN_PLACEHOLDER),
                    ),
                );
            }
            Some((Some(Acl::Name(_)), _)) => {}
            Some((Some(Acl::Arn(arn)), cause)) => self.judge_acl_exists(arn, cause),
        }
    }

    fn judge_acl_exists(&mut self, arn: &str, cause: usize) {
        if Arn::parse(arn).and_then(|parsed| parsed.regional_web_acl()).is_none() {
            self.ledger.report(
                cause,
                Issue::new(
                    Rule::AlbIngressAnnotationsValid,
                    format!(
                        "`{arn}` is not the ARN of a regional WAFv2 Web ACL; the controller cannot attach it"
                    ),
                    format!("Set `{WAFV2_ACL_ARN}: {ACL_ARN_PLACEHOLDER}`"),
                ),
            );
            return;
        }
        match self.facts.web_acl(arn) {
            Fact::Known(_) => {}
            Fact::NotFound => self.ledger.report(
                cause,
                Issue::new(
                    Rule::AlbWafEnabled,
                    format!("WAFv2 Web ACL {arn} does not exist: the controller cannot attach it"),
                    "Create the Web ACL (`aws wafv2 create-web-acl --scope REGIONAL ...`) or reference an existing \
                     one (`aws wafv2 list-web-acls --scope REGIONAL`)"
                        .to_string(),
                ),
            ),
            fact => self.ledger.pend_for(Rule::AlbWafEnabled, &fact),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::api::TlsIngressPolicySpec;
    use crate::policy::facts::WebAclFacts;
    use crate::policy::ingress::test_support::*;
    use crate::policy::{Fact, Rule};

    const ACL: &str = "arn:aws:wafv2:us-east-1:123456789012:regional/webacl/shop/a1b2";
    const PUBLIC: (&str, &str) = ("alb.ingress.kubernetes.io/scheme", "internet-facing");
    const WAF: (&str, &str) = ("alb.ingress.kubernetes.io/wafv2-acl-arn", ACL);

    fn require_waf() -> TlsIngressPolicySpec {
        TlsIngressPolicySpec { require_waf: true, ..policy() }
    }

    fn waf_findings(annotations: &[(&str, &str)], facts: &dyn crate::policy::Facts) -> Vec<String> {
        let mut all = COMPLIANT.to_vec();
        all.extend_from_slice(annotations);
        findings(&evaluate(&shop(&all), &require_waf(), facts))
    }

    fn with_acl(fact: Fact<WebAclFacts>) -> crate::policy::FactSet {
        let mut facts = facts(&[issued(ARN, &["shop.example.com"], "2026-01-01T00:00:00Z")], &[]);
        facts.web_acls.insert(ACL.into(), fact);
        facts
    }

    #[test]
    fn internet_facing_alb_without_waf_is_a_finding() {
        let found = waf_findings(&[PUBLIC], &offline());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            found[0],
            "alb-waf-enabled shop/web: the ALB is internet-facing and has no WAFv2 Web ACL => Set \
             `alb.ingress.kubernetes.io/wafv2-acl-arn: arn:aws:wafv2:<region>:<account>:regional/webacl/<name>/<id>` \
             on the Ingress"
        );
        let none = waf_findings(&[PUBLIC, ("alb.ingress.kubernetes.io/wafv2-acl-arn", "none")], &offline());
        assert_eq!(none.len(), 1, "`none` detaches the Web ACL: {none:?}");
    }

    #[test]
    fn internal_albs_and_policies_without_require_waf_pass() {
        assert!(waf_findings(&[], &offline()).is_empty(), "the controllers' default scheme is internal");
        let internal = [("alb.ingress.kubernetes.io/scheme", "internal")];
        let evaluation = evaluate(&shop(&[&COMPLIANT[..], &internal].concat()), &require_waf(), &offline());
        assert!(judgement(&evaluation, "web").checked.contains(&Rule::AlbWafEnabled));
        let evaluation = evaluate(&shop(&[&COMPLIANT[..], &[PUBLIC]].concat()), &policy(), &offline());
        let judgement = judgement(&evaluation, "web");
        assert!(judgement.findings.is_empty());
        assert!(
            !judgement.checked.contains(&Rule::AlbWafEnabled)
                && !judgement.skipped.contains(&Rule::AlbWafEnabled)
        );
    }

    #[test]
    fn the_web_acls_existence_is_skipped_offline_and_judged_with_facts() {
        let evaluation =
            evaluate(&shop(&[&COMPLIANT[..], &[PUBLIC, WAF]].concat()), &require_waf(), &offline());
        let offline_judgement = judgement(&evaluation, "web");
        assert!(offline_judgement.findings.is_empty());
        assert!(offline_judgement.skipped.contains(&Rule::AlbWafEnabled), "never a pass without the fact");

        let known = with_acl(Fact::Known(WebAclFacts { arn: ACL.into(), rules: 3 }));
        let evaluation = evaluate(&shop(&[&COMPLIANT[..], &[PUBLIC, WAF]].concat()), &require_waf(), &known);
        let judged = judgement(&evaluation, "web");
        assert!(judged.findings.is_empty(), "{:?}", findings(&evaluation));
        assert!(judged.checked.contains(&Rule::AlbWafEnabled));

        let found = waf_findings(&[PUBLIC, WAF], &with_acl(Fact::NotFound));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with(&format!("alb-waf-enabled shop/web: WAFv2 Web ACL {ACL} does not exist"))
        );
    }

    #[test]
    fn malformed_acl_arns_and_names() {
        let bad = (
            "alb.ingress.kubernetes.io/wafv2-acl-arn",
            "arn:aws:wafv2:us-east-1:123456789012:global/webacl/x/y",
        );
        let found = waf_findings(&[PUBLIC, bad], &offline());
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("alb-ingress-annotations-valid shop/web:"));
        // A name cannot be looked up by GetWebACL; its presence satisfies the rule.
        let named = ("alb.ingress.kubernetes.io/wafv2-acl-name", "shop");
        assert!(waf_findings(&[PUBLIC, named], &offline()).is_empty());
    }

    #[test]
    fn class_params_set_scheme_and_web_acl() {
        let class = "apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: shared}
spec:
  controller: ingress.k8s.aws/alb
  parameters: {apiGroup: elbv2.k8s.aws, kind: IngressClassParams, name: shared}";
        let manifests = |spec: &str| {
            format!(
                "{class}\n---\napiVersion: elbv2.k8s.aws/v1beta1\nkind: IngressClassParams\nmetadata: {{name: shared}}\nspec: {spec}\n---\n{}",
                shop(&COMPLIANT).replace("ingressClassName: alb", "ingressClassName: shared")
            )
        };
        let found = findings(&evaluate(&manifests("{scheme: internet-facing}"), &require_waf(), &offline()));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].ends_with("Set `spec.wafv2AclArn: arn:aws:wafv2:<region>:<account>:regional/webacl/<name>/<id>` in IngressClassParams `shared` (it overrides the alb.ingress.kubernetes.io/wafv2-acl-arn annotation)"), "{found:?}");
        let covered = manifests(&format!("{{scheme: internet-facing, wafv2AclArn: {ACL}}}"));
        assert!(findings(&evaluate(&covered, &require_waf(), &offline())).is_empty());
    }

    #[test]
    fn group_members_must_agree_on_the_web_acl() {
        let group = ("alb.ingress.kubernetes.io/group.name", "shop");
        let other = (
            "alb.ingress.kubernetes.io/wafv2-acl-arn",
            "arn:aws:wafv2:us-east-1:123456789012:regional/webacl/other/c3",
        );
        let a = alb_ingress("a", "a.example.com", &[&COMPLIANT[..], &[group, PUBLIC, WAF]].concat());
        let b = alb_ingress("b", "b.example.com", &[&COMPLIANT[..], &[group, other]].concat());
        let found = findings(&evaluate(&format!("{a}\n---\n{b}"), &require_waf(), &offline()));
        assert!(
            found.iter().any(|f| f.starts_with("alb-ingress-group-consistent shop/b: IngressGroup shop: Ingress shop/b sets another WAFv2 Web ACL than shop/a")),
            "{found:?}"
        );
    }
}
