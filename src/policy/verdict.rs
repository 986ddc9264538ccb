//! What a policy made of each object, and the sums over them.

use super::Rule;
use super::facts::{Fact, FactError};
use crate::api::{Exemption, Finding, PolicySummary, ResourceRef, Severity};
use std::collections::BTreeMap;

/// What a policy made of one object.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Outside the policy's scope (a non-EBS StorageClass, a non-ALB Ingress), and why.
    NotApplicable(String),
    /// Could not be judged: the inputs lack an object the verdict depends on (an IngressClass, a
    /// Namespace), and which. Only offline, where the inputs are some manifests rather than the
    /// whole cluster.
    NotJudged(String),
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
    /// Why skipped rules were not judged, where gathering a fact failed (a fact that was never
    /// gathered, as offline, has no cause).
    pub skip_causes: BTreeMap<Rule, FactError>,
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

    /// Records that `rule` needs `fact`, which is not known, and why where gathering failed.
    pub fn skip_for<T>(&mut self, rule: Rule, fact: &Fact<T>) {
        self.skip(rule);
        if let Fact::Failed(cause) = fact {
            self.skip_causes.entry(rule).or_insert_with(|| cause.clone());
        }
    }

    pub fn is_compliant(&self) -> bool {
        self.findings.is_empty()
    }
}

/// A rule not judged for want of AWS facts, over one evaluation.
#[derive(Clone, Debug, PartialEq)]
pub struct Skipped {
    pub rule: Rule,
    /// The objects it was not judged for, in order.
    pub resources: Vec<ResourceRef>,
    /// The distinct causes, in order; empty where the facts were never gathered.
    pub causes: Vec<FactError>,
}

impl Skipped {
    /// Whether asking AWS again may judge the rule without anyone's help: every cause is
    /// transient, or the facts were only not gathered yet.
    pub fn is_transient(&self) -> bool {
        self.causes.iter().all(|cause| cause.transient)
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

    /// The objects not judged for want of an object among the inputs, and why.
    pub fn not_judged(&self) -> impl Iterator<Item = (&ResourceRef, &str)> {
        self.verdicts.iter().filter_map(|v| match &v.verdict {
            Verdict::NotJudged(reason) => Some((&v.resource, reason.as_str())),
            _ => None,
        })
    }

    /// The rules skipped on some object, in rule order.
    pub fn skipped(&self) -> Vec<Skipped> {
        let mut by_rule: BTreeMap<Rule, Skipped> = BTreeMap::new();
        for verdict in &self.verdicts {
            let Verdict::Judged(judgement) = &verdict.verdict else { continue };
            for rule in &judgement.skipped {
                let skipped = by_rule.entry(*rule).or_insert_with(|| Skipped {
                    rule: *rule,
                    resources: Vec::new(),
                    causes: Vec::new(),
                });
                skipped.resources.push(verdict.resource.clone());
                if let Some(cause) = judgement.skip_causes.get(rule)
                    && !skipped.causes.contains(cause)
                {
                    skipped.causes.push(cause.clone());
                }
            }
        }
        let mut skipped: Vec<Skipped> = by_rule.into_values().collect();
        for rule in &mut skipped {
            rule.resources.sort();
            rule.resources.dedup();
        }
        skipped
    }

    pub fn summary(&self) -> PolicySummary {
        let mut summary = PolicySummary::default();
        for verdict in &self.verdicts {
            match &verdict.verdict {
                // Neither was evaluated; a policy's status message names those not judged.
                Verdict::NotApplicable(_) | Verdict::NotJudged(_) => {}
                Verdict::Exempt(_) => summary.exempt += 1,
                Verdict::Judged(judgement) => {
                    summary.evaluated += 1;
                    summary.skipped += judgement.skipped.len() as u32;
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
    findings.sort_by(finding_order);
}

/// Most severe first, then by resource, rule and message.
pub fn finding_order(a: &Finding, b: &Finding) -> std::cmp::Ordering {
    b.severity
        .cmp(&a.severity)
        .then_with(|| a.resource.cmp(&b.resource))
        .then_with(|| a.rule.cmp(&b.rule))
        .then_with(|| a.message.cmp(&b.message))
}
