//! What a policy made of each object, and the sums over them.

use super::Rule;
use crate::api::{Exemption, Finding, PolicySummary, ResourceRef, Severity};

/// What a policy made of one object.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Outside the policy's scope (a non-EBS StorageClass, a non-ALB Ingress), and why.
    NotApplicable(String),
    /// Labelled `dpo.dev/exempt`; the label's value is the reason.
    Exempt(String),
    /// Judged: no findings means compliant.
    Judged(Judgement),
}

/// Findings for one object, the rules judged, and those that could not be judged for want of
/// AWS facts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Judgement {
    pub findings: Vec<Finding>,
    /// Rules evaluated for this object, passed or failed (JUnit makes one test case of each).
    pub checked: Vec<Rule>,
    pub skipped: Vec<Rule>,
}

impl Judgement {
    /// Records that `rule` was evaluated (whether or not it found anything).
    pub fn check(&mut self, rule: Rule) {
        if !self.checked.contains(&rule) {
            self.checked.push(rule);
        }
    }

    /// Records a violation of `rule` at the rule's own severity.
    pub fn violation(&mut self, rule: Rule, resource: &ResourceRef, message: String, remediation: String) {
        self.violation_at(rule, rule.severity(), resource, message, remediation);
    }

    /// Records a violation of `rule` at a severity chosen for this case.
    pub fn violation_at(
        &mut self,
        rule: Rule,
        severity: Severity,
        resource: &ResourceRef,
        message: String,
        remediation: String,
    ) {
        self.findings.push(Finding {
            rule: rule.id().to_string(),
            severity,
            resource: resource.clone(),
            message,
            remediation,
        });
    }

    /// Records that `rule` needs a fact that was not gathered.
    pub fn skip(&mut self, rule: Rule) {
        if !self.skipped.contains(&rule) {
            self.skipped.push(rule);
        }
    }

    pub fn is_compliant(&self) -> bool {
        self.findings.is_empty()
    }
}

/// One object and its verdict.
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectVerdict {
    pub resource: ResourceRef,
    pub verdict: Verdict,
}

/// The verdicts of one evaluation pass.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Evaluation {
    pub verdicts: Vec<ObjectVerdict>,
}

impl Evaluation {
    pub fn push(&mut self, resource: ResourceRef, verdict: Verdict) {
        self.verdicts.push(ObjectVerdict { resource, verdict });
    }

    pub fn findings(&self) -> impl Iterator<Item = &Finding> {
        self.judgements().flat_map(|j| j.findings.iter())
    }

    fn judgements(&self) -> impl Iterator<Item = &Judgement> {
        self.verdicts.iter().filter_map(|v| match &v.verdict {
            Verdict::Judged(j) => Some(j),
            _ => None,
        })
    }

    /// Findings ordered most severe first, then by resource and rule: the order status shows.
    pub fn sorted_findings(&self) -> Vec<Finding> {
        let mut findings: Vec<Finding> = self.findings().cloned().collect();
        sort_findings(&mut findings);
        findings
    }

    pub fn exemptions(&self) -> Vec<Exemption> {
        self.verdicts
            .iter()
            .filter_map(|v| match &v.verdict {
                Verdict::Exempt(reason) => {
                    Some(Exemption { resource: v.resource.clone(), reason: reason.clone() })
                }
                _ => None,
            })
            .collect()
    }

    pub fn summary(&self) -> PolicySummary {
        let mut summary = PolicySummary::default();
        for verdict in &self.verdicts {
            match &verdict.verdict {
                Verdict::NotApplicable(_) => {}
                Verdict::Exempt(_) => summary.exempt += 1,
                Verdict::Judged(judgement) => {
                    summary.evaluated += 1;
                    if judgement.is_compliant() {
                        summary.compliant += 1;
                    }
                    for finding in &judgement.findings {
                        summary.by_severity.add(finding.severity);
                    }
                }
            }
        }
        summary.violations = summary.by_severity.total();
        summary
    }
}

/// Most severe first, then by resource, rule and message, so output is stable.
pub fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.resource.cmp(&b.resource))
            .then_with(|| a.rule.cmp(&b.rule))
            .then_with(|| a.message.cmp(&b.message))
    });
}
