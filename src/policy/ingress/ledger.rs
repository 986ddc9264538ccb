//! Findings of one load balancer before they are handed to the objects that cause them, and the
//! rules judged or left pending on AWS facts along the way.

use crate::api::ResourceRef;
use crate::api::Severity;
use crate::policy::facts::{Fact, FactError};
use crate::policy::{Judgement, Rule, Verdict};
use std::collections::BTreeMap;

/// One violation, not yet tied to a resource.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Issue {
    pub rule: Rule,
    pub severity: Severity,
    pub message: String,
    pub remediation: String,
}

impl Issue {
    /// An issue at the rule's own severity.
    pub fn new(rule: Rule, message: String, remediation: String) -> Issue {
        Issue { rule, severity: rule.severity(), message, remediation }
    }

    pub fn at(self, severity: Severity) -> Issue {
        Issue { severity, ..self }
    }
}

/// What evaluating one load balancer found. `cause` indexes the objects that make up the load
/// balancer (the members of an IngressGroup; always 0 for a Service).
#[derive(Debug, Default)]
pub(super) struct Ledger {
    pub issues: Vec<(usize, Issue)>,
    evaluated: Vec<Rule>,
    pending: Vec<Rule>,
    /// Why pending rules wait, where gathering a fact failed.
    causes: BTreeMap<Rule, FactError>,
}

impl Ledger {
    /// Records that `rule` applies to this load balancer and was looked at.
    pub fn evaluate(&mut self, rule: Rule) {
        if !self.evaluated.contains(&rule) {
            self.evaluated.push(rule);
        }
    }

    /// Records that part of `rule` waits on a fact that was not gathered.
    pub fn pend(&mut self, rule: Rule) {
        self.evaluate(rule);
        if !self.pending.contains(&rule) {
            self.pending.push(rule);
        }
    }

    /// Records that part of `rule` waits on `fact`, and why where gathering it failed.
    pub fn pend_for<T>(&mut self, rule: Rule, fact: &Fact<T>) {
        self.pend(rule);
        if let Fact::Failed(cause) = fact {
            self.causes.entry(rule).or_insert_with(|| cause.clone());
        }
    }

    pub fn report(&mut self, cause: usize, issue: Issue) {
        self.evaluate(issue.rule);
        self.issues.push((cause, issue));
    }

    /// The verdict on `resource`, the one object this load balancer is made of.
    pub fn into_verdict(self, resource: &ResourceRef) -> Verdict {
        let mut judgement = Judgement::default();
        self.record_rules(&mut judgement);
        // Held until the report is written, for every object of a run.
        judgement.findings.reserve_exact(self.issues.len());
        for (_, issue) in self.issues {
            judgement.violation_at(issue.rule, issue.severity, resource, issue.message, issue.remediation);
        }
        Verdict::Judged(judgement)
    }

    /// Marks each rule checked or skipped on `judgement`: a rule with a missing fact is skipped
    /// unless something was found against it anyway (a finding is never hidden by a skip).
    pub fn record_rules(&self, judgement: &mut Judgement) {
        for &rule in &self.evaluated {
            let found = self.issues.iter().any(|(_, issue)| issue.rule == rule);
            if self.pending.contains(&rule) && !found {
                judgement.skip(rule);
                if let Some(cause) = self.causes.get(&rule) {
                    judgement.skip_causes.entry(rule).or_insert_with(|| cause.clone());
                }
            } else {
                judgement.check(rule);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_rules_are_skipped_unless_something_was_found() {
        let mut ledger = Ledger::default();
        ledger.evaluate(Rule::AlbIngressAnnotationsValid);
        ledger.pend(Rule::AcmCertificateStatus);
        ledger.pend(Rule::AcmCertificateExpirationCheck);
        ledger.report(0, Issue::new(Rule::AcmCertificateExpirationCheck, "expired".into(), "renew".into()));
        let mut judgement = Judgement::default();
        ledger.record_rules(&mut judgement);
        assert_eq!(
            judgement.checked,
            [Rule::AlbIngressAnnotationsValid, Rule::AcmCertificateExpirationCheck]
        );
        assert_eq!(judgement.skipped, [Rule::AcmCertificateStatus]);
    }
}
