//! The status a cluster policy's evaluation leads to: `Ready` by `failOn`, over the findings and
//! over the rules that could not be judged for want of AWS facts; summary, bounded findings,
//! skipped rules and exemptions.

use crate::api::{
    MAX_SKIPPED_RESOURCES, MAX_STATUS_FINDINGS, PolicyStatus, ResourceRef, Severity, SkippedRule,
};
use crate::policy::{Evaluation, Skipped};
use crate::status::{Desired, READY, RECONCILING, merge_conditions, not_ready};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// Objects a condition message names per skipped rule; the rest are counted.
const NAMED_OBJECTS: usize = 3;

/// What keeps a policy from `Ready`.
#[derive(Clone, Copy, Debug)]
pub struct Gate {
    /// Findings, and skipped rules, at or above it.
    pub fail_on: Severity,
    /// Skipped rules do not count.
    pub skipped_rules_pass: bool,
}

/// The status an evaluation leads to. Conditions keep their transition time while unchanged.
pub fn desired_status(
    evaluation: &Evaluation,
    gate: Gate,
    generation: Option<i64>,
    current: &PolicyStatus,
    now: &Time,
) -> PolicyStatus {
    let fail_on = gate.fail_on;
    let summary = evaluation.summary();
    let mut findings = evaluation.sorted_findings();
    let findings_total = findings.len() as u32;
    findings.truncate(MAX_STATUS_FINDINGS);
    let mut exemptions = evaluation.exemptions();
    exemptions.truncate(MAX_STATUS_FINDINGS);
    let mut skipped = evaluation.skipped();
    // Most severe first, as findings are.
    skipped
        .sort_by(|a, b| b.rule.severity().cmp(&a.rule.severity()).then_with(|| a.rule.id().cmp(b.rule.id())));
    let (blocking, passing): (Vec<&Skipped>, Vec<&Skipped>) =
        skipped.iter().partition(|s| s.rule.severity() >= fail_on && !gate.skipped_rules_pass);
    let failing = summary.by_severity.at_or_above(fail_on);
    let (ready, transient) = match findings.first() {
        // Findings are sorted most severe first, so the first one is at or above failOn.
        Some(top) if failing > 0 => {
            let also = if blocking.is_empty() {
                String::new()
            } else {
                format!("; not evaluated either: {}", rule_ids(&blocking))
            };
            let message = format!(
                "{failing} finding(s) at or above {fail_on}; the most severe: {} ({}) on {}: {}{also}",
                top.rule, top.severity, top.resource, top.message
            );
            (Desired::new(READY, false, "ViolationsFound", message), false)
        }
        _ if !blocking.is_empty() => {
            let message = format!(
                "{} rule(s) at or above {fail_on} not evaluated, as AWS did not give the facts they need: {}",
                blocking.len(),
                not_evaluated(&blocking)
            );
            let transient = blocking.iter().all(|s| s.is_transient());
            (Desired::new(READY, false, "PolicyNotEvaluated", message), transient)
        }
        _ => {
            let found = match summary.violations {
                0 => "no findings".to_string(),
                n => format!("{n} finding(s), none at or above {fail_on}"),
            };
            // Only rules that may pass are left here.
            let unjudged = if passing.is_empty() {
                String::new()
            } else {
                format!("; {} rule(s) not evaluated (status.skipped): {}", passing.len(), rule_ids(&passing))
            };
            let message = format!(
                "{} object(s) evaluated; {found}{unjudged}{}",
                summary.evaluated,
                not_judged(evaluation)
            );
            (Desired::new(READY, true, "Compliant", message), false)
        }
    };
    let mut desired = vec![ready.clone()];
    if ready.status {
        desired.push(evaluated(generation));
    } else if transient {
        // Asked again soon without anyone's help: in progress.
        desired.push(not_ready(&ready.reason, ready.message, true));
    } else {
        // Waits for a person: Stalled, so a rollout gated on this policy fails at once.
        desired.push(evaluated(generation));
        desired.push(not_ready(&ready.reason, ready.message, false));
    }
    PolicyStatus {
        observed_generation: generation,
        conditions: merge_conditions(&current.conditions, &desired, generation, now),
        summary: Some(summary),
        findings,
        findings_total,
        exemptions,
        skipped: skipped.iter().map(skipped_rule).collect(),
        last_evaluated_time: Some(now.clone()),
    }
}

fn evaluated(generation: Option<i64>) -> Desired {
    Desired::new(
        RECONCILING,
        false,
        "Evaluated",
        format!("generation {} evaluated", generation.unwrap_or_default()),
    )
}

fn rule_ids(skipped: &[&Skipped]) -> String {
    skipped.iter().map(|s| s.rule.id()).collect::<Vec<_>>().join(", ")
}

/// The first [`NAMED_OBJECTS`] of `resources`, then how many more.
fn named<'r>(resources: impl ExactSizeIterator<Item = &'r ResourceRef>) -> String {
    let total = resources.len();
    let mut objects: Vec<String> = resources.take(NAMED_OBJECTS).map(|r| r.to_string()).collect();
    if total > NAMED_OBJECTS {
        objects.push(format!("{} more", total - NAMED_OBJECTS));
    }
    objects.join(", ")
}

/// Objects whose verdict depends on an object the inputs lack, said rather than passed over in
/// silence. A controller's inventory is the whole cluster, so it has none; the engine is shared.
fn not_judged(evaluation: &Evaluation) -> String {
    let resources: Vec<&ResourceRef> = evaluation.not_judged().map(|(resource, _)| resource).collect();
    if resources.is_empty() {
        return String::new();
    }
    let count = resources.len();
    format!(
        "; {count} object(s) not judged, as what their verdict depends on is missing: {}",
        named(resources.into_iter())
    )
}

/// Each rule with the objects it was not judged for, then what AWS said.
fn not_evaluated(skipped: &[&Skipped]) -> String {
    let rules: Vec<String> = skipped
        .iter()
        .map(|s| format!("{} ({}) on {}", s.rule.id(), s.rule.severity(), named(s.resources.iter())))
        .collect();
    let mut causes: Vec<String> = Vec::new();
    for cause in skipped.iter().flat_map(|s| &s.causes) {
        let cause = cause.to_string();
        if !causes.contains(&cause) {
            causes.push(cause);
        }
    }
    let causes =
        if causes.is_empty() { "the facts were not gathered yet".to_string() } else { causes.join("; ") };
    format!("{}. Cause: {causes}", rules.join("; "))
}

fn skipped_rule(skipped: &Skipped) -> SkippedRule {
    SkippedRule {
        rule: skipped.rule.id().to_string(),
        severity: skipped.rule.severity(),
        count: skipped.resources.len() as u32,
        resources: skipped.resources.iter().take(MAX_SKIPPED_RESOURCES).cloned().collect(),
        causes: skipped.causes.iter().map(ToString::to_string).collect(),
    }
}

/// Whether two statuses differ in nothing but the evaluation time.
pub fn same_apart_from_time(a: &PolicyStatus, b: &PolicyStatus) -> bool {
    let strip = |s: &PolicyStatus| PolicyStatus { last_evaluated_time: None, ..s.clone() };
    strip(a) == strip(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ResourceRef;
    use crate::policy::facts::{Fact, FactError};
    use crate::policy::{Judgement, Rule, Verdict};

    const HIGH: Gate = Gate { fail_on: Severity::High, skipped_rules_pass: false };

    fn now() -> Time {
        time("2026-01-01T00:00:00Z")
    }

    fn class(name: &str) -> ResourceRef {
        ResourceRef {
            api_version: "storage.k8s.io/v1".into(),
            kind: "StorageClass".into(),
            namespace: None,
            name: name.into(),
        }
    }

    fn evaluation(findings: &[(&str, Severity)]) -> Evaluation {
        let mut evaluation = Evaluation::default();
        for (name, severity) in findings {
            let mut judgement = Judgement::default();
            judgement.violation_at(
                Rule::StorageclassEncrypted,
                *severity,
                &class(name),
                "unencrypted".into(),
                "fix".into(),
            );
            evaluation.push(class(name), Verdict::Judged(judgement));
        }
        evaluation
    }

    fn time(s: &str) -> Time {
        Time(s.parse().unwrap())
    }

    #[test]
    fn objects_not_judged_are_named_in_a_ready_message() {
        let mut evaluation = evaluation(&[("gp2", Severity::Low)]);
        for name in ["a", "b", "c", "d"] {
            evaluation
                .push(class(name), Verdict::NotJudged("its IngressClass is not among the inputs".into()));
        }
        let status = desired_status(
            &evaluation,
            HIGH,
            Some(1),
            &PolicyStatus::default(),
            &time("2026-01-01T00:00:00Z"),
        );
        let ready = &status.conditions[0];
        assert_eq!((ready.status.as_str(), ready.reason.as_str()), ("True", "Compliant"));
        assert_eq!(
            ready.message,
            "1 object(s) evaluated; 1 finding(s), none at or above high; 4 object(s) not judged, as what their \
             verdict depends on is missing: StorageClass/a, StorageClass/b, StorageClass/c, 1 more"
        );
        assert_eq!(status.summary.map(|s| s.evaluated), Some(1));
    }

    #[test]
    fn findings_below_fail_on_leave_the_policy_ready() {
        let status = desired_status(
            &evaluation(&[("gp2", Severity::Low)]),
            HIGH,
            Some(3),
            &PolicyStatus::default(),
            &time("2026-01-01T00:00:00Z"),
        );
        let ready = &status.conditions[0];
        assert_eq!((ready.status.as_str(), ready.reason.as_str()), ("True", "Compliant"));
        assert_eq!(ready.message, "1 object(s) evaluated; 1 finding(s), none at or above high");
        assert_eq!((status.observed_generation, ready.observed_generation), (Some(3), Some(3)));
        let lowered = desired_status(
            &evaluation(&[("gp2", Severity::Low)]),
            Gate { fail_on: Severity::Low, ..HIGH },
            Some(3),
            &status,
            &time("2026-01-02T00:00:00Z"),
        );
        assert_eq!(lowered.conditions[0].status, "False");
        assert_eq!(lowered.conditions[0].last_transition_time, time("2026-01-02T00:00:00Z"));
        assert!(lowered.conditions[0].message.starts_with("1 finding(s) at or above low; the most severe: "));
    }

    #[test]
    fn status_lists_the_most_severe_findings_and_counts_all() {
        let mut findings: Vec<(String, Severity)> =
            (0..MAX_STATUS_FINDINGS + 5).map(|i| (format!("low-{i:03}"), Severity::Low)).collect();
        findings.push(("critical".into(), Severity::Critical));
        let findings: Vec<(&str, Severity)> = findings.iter().map(|(n, s)| (n.as_str(), *s)).collect();
        let status = desired_status(&evaluation(&findings), HIGH, Some(1), &PolicyStatus::default(), &now());
        assert_eq!(status.findings.len(), MAX_STATUS_FINDINGS);
        assert_eq!(status.findings_total as usize, MAX_STATUS_FINDINGS + 6);
        assert_eq!(status.findings[0].resource.name, "critical");
        assert_eq!(status.conditions[0].reason, "ViolationsFound");
    }

    #[test]
    fn only_the_evaluation_time_differing_is_no_change() {
        let first = desired_status(
            &evaluation(&[]),
            HIGH,
            Some(1),
            &PolicyStatus::default(),
            &time("2026-01-01T00:00:00Z"),
        );
        let later = desired_status(&evaluation(&[]), HIGH, Some(1), &first, &time("2026-01-01T00:10:00Z"));
        assert_ne!(first.last_evaluated_time, later.last_evaluated_time);
        assert!(same_apart_from_time(&first, &later));
        let changed = desired_status(
            &evaluation(&[("gp2", Severity::High)]),
            HIGH,
            Some(1),
            &first,
            &time("2026-01-01T00:20:00Z"),
        );
        assert!(!same_apart_from_time(&first, &changed));
    }

    /// An evaluation where `rule` could not be judged on StorageClass `name` for `cause`.
    fn skipped(rule: Rule, name: &str, cause: Fact<()>) -> Evaluation {
        let mut evaluation = Evaluation::default();
        let mut judgement = Judgement::default();
        judgement.skip_for(rule, &cause);
        evaluation.push(class(name), Verdict::Judged(judgement));
        evaluation
    }

    fn denied() -> Fact<()> {
        Fact::Failed(FactError {
            reason: "AccessDenied",
            message: "access denied: kms:DescribeKey on alias/shop".into(),
            transient: false,
        })
    }

    fn throttled() -> Fact<()> {
        Fact::Failed(FactError { reason: "AwsThrottled", message: "throttled".into(), transient: true })
    }

    fn condition<'a>(status: &'a PolicyStatus, type_: &str) -> Option<(&'a str, &'a str)> {
        let c = status.conditions.iter().find(|c| c.type_ == type_)?;
        Some((c.status.as_str(), c.reason.as_str()))
    }

    #[test]
    fn rules_skipped_at_or_above_fail_on_keep_the_policy_from_ready() {
        let status = desired_status(
            &skipped(Rule::KmsKeyEnabled, "gp3", denied()),
            HIGH,
            Some(1),
            &PolicyStatus::default(),
            &now(),
        );
        assert_eq!(condition(&status, READY), Some(("False", "PolicyNotEvaluated")));
        assert_eq!(condition(&status, "Stalled"), Some(("True", "PolicyNotEvaluated")));
        assert_eq!(condition(&status, RECONCILING), Some(("False", "Evaluated")));
        assert_eq!(
            status.conditions[0].message,
            "1 rule(s) at or above high not evaluated, as AWS did not give the facts they need: \
             kms-key-enabled (critical) on StorageClass/gp3. \
             Cause: AccessDenied: access denied: kms:DescribeKey on alias/shop"
        );
        assert_eq!(status.summary.as_ref().map(|s| s.skipped), Some(1));
        assert_eq!(
            status.skipped,
            [SkippedRule {
                rule: "kms-key-enabled".into(),
                severity: Severity::Critical,
                count: 1,
                resources: vec![class("gp3")],
                causes: vec!["AccessDenied: access denied: kms:DescribeKey on alias/shop".into()],
            }]
        );

        // Retried without anyone's help: in progress, not stalled.
        let status = desired_status(
            &skipped(Rule::KmsKeyEnabled, "gp3", throttled()),
            HIGH,
            Some(1),
            &PolicyStatus::default(),
            &now(),
        );
        assert_eq!(condition(&status, READY), Some(("False", "PolicyNotEvaluated")));
        assert_eq!(condition(&status, RECONCILING), Some(("True", "PolicyNotEvaluated")));
        assert_eq!(condition(&status, "Stalled"), None);
    }

    #[test]
    fn rules_skipped_below_fail_on_or_allowed_to_pass_are_listed_on_a_ready_policy() {
        let below = skipped(Rule::StorageclassUsingCmk, "gp3", denied());
        let status = desired_status(&below, HIGH, Some(1), &PolicyStatus::default(), &now());
        assert_eq!(condition(&status, READY), Some(("True", "Compliant")));
        assert_eq!(
            status.conditions[0].message,
            "1 object(s) evaluated; no findings; 1 rule(s) not evaluated (status.skipped): storageclass-using-cmk"
        );
        assert_eq!(status.skipped.len(), 1);

        let lenient = Gate { skipped_rules_pass: true, ..HIGH };
        let status = desired_status(
            &skipped(Rule::KmsKeyEnabled, "gp3", denied()),
            lenient,
            Some(1),
            &PolicyStatus::default(),
            &now(),
        );
        assert_eq!(condition(&status, READY), Some(("True", "Compliant")));
        assert_eq!(condition(&status, "Stalled"), None);
        assert_eq!(status.skipped[0].rule, "kms-key-enabled");
    }

    #[test]
    fn a_skipped_rule_lists_its_first_objects_and_counts_all() {
        let mut evaluation = Evaluation::default();
        for i in 0..MAX_SKIPPED_RESOURCES + 2 {
            let mut judgement = Judgement::default();
            judgement.skip_for(Rule::EncryptedVolumes, &throttled());
            evaluation.push(class(&format!("pv-{i:02}")), Verdict::Judged(judgement));
        }
        let status = desired_status(&evaluation, HIGH, Some(1), &PolicyStatus::default(), &now());
        assert_eq!(status.skipped[0].count as usize, MAX_SKIPPED_RESOURCES + 2);
        assert_eq!(status.skipped[0].resources.len(), MAX_SKIPPED_RESOURCES);
        assert_eq!(status.skipped[0].causes.len(), 1, "a cause shared by many objects is listed once");
        let message = &status.conditions[0].message;
        assert!(
            message.contains("on StorageClass/pv-00, StorageClass/pv-01, StorageClass/pv-02, 9 more."),
            "{message}"
        );
    }
}
