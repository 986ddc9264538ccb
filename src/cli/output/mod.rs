//! The output formats of `dpo check`: one module per format, and the few facts they share.

mod block_yaml;
mod json;
mod junit;
mod pieces;
mod policyreport;
mod pretty;

pub use policyreport::ReportApi;
mod sarif;
mod text;

use super::report::{CheckReport, CheckedObject};
use crate::api::{Finding, SeverityCounts};
use crate::policy::Verdict;
use serde::Serialize;
use std::io::Write;

/// The formats `dpo check --output` accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Findings grouped by resource, for people.
    Text,
    /// `{"findings": [...], "summary": {...}}`, for scripts.
    Json,
    /// JUnit XML, for CI test reports (GitLab, Jenkins).
    Junit,
    /// SARIF 2.1.0, for code scanning (GitHub and others).
    Sarif,
    /// Policy reports (`openreports.io`, or `wgpolicyk8s.io` with `--report-api`), as a YAML
    /// stream.
    Policyreport,
}

/// How a format is written beyond its choice.
#[derive(Clone, Copy, Debug, Default)]
pub struct Style {
    /// ANSI colours in the text format: only for a terminal.
    pub color: bool,
    pub report_api: ReportApi,
}

/// Writes `report` in `format`.
pub fn render(
    report: &CheckReport,
    format: OutputFormat,
    out: &mut dyn Write,
    style: Style,
) -> std::io::Result<()> {
    match format {
        OutputFormat::Text => text::render(report, out, style.color),
        OutputFormat::Json => json::render(report, out),
        OutputFormat::Junit => junit::render(report, out),
        OutputFormat::Sarif => sarif::render(report, out),
        OutputFormat::Policyreport => policyreport::render(report, style.report_api, out),
    }
}

/// Why a rule was skipped, as every format says it.
const NEEDS_AWS: &str = "needs facts from AWS, which `dpo check --aws` gathers";

/// `1 resource`, `2 resources`.
fn plural(count: usize, noun: &str) -> String {
    if count == 1 { format!("{count} {noun}") } else { format!("{count} {noun}s") }
}

/// The counts every format's summary is made of.
#[derive(Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
struct Summary {
    /// Objects of the inputs some policy governs.
    resources: usize,
    findings: usize,
    /// Objects the policies would govern that could not be judged.
    not_judged: usize,
    by_severity: SeverityCounts,
    /// Rules not judged for want of AWS facts.
    skipped: Vec<SkippedRule>,
}

#[derive(Debug, PartialEq, Serialize)]
struct SkippedRule {
    rule: &'static str,
    /// How many objects the rule was skipped for.
    resources: usize,
}

impl Summary {
    fn of(report: &CheckReport) -> Summary {
        Summary {
            resources: report.resources(),
            findings: report.findings().len(),
            not_judged: report.not_judged.len(),
            by_severity: report.by_severity(),
            skipped: report
                .skipped
                .iter()
                .map(|(rule, resources)| SkippedRule { rule: rule.id(), resources: *resources })
                .collect(),
        }
    }
}

/// What became of one rule on one object.
#[derive(Debug, PartialEq)]
enum Outcome<'a> {
    Pass,
    /// The rule's findings on the object; never empty.
    Fail(Vec<&'a Finding>),
    /// Needed AWS facts that were not gathered.
    Skip,
}

/// One rule judged (or skipped) on one object: a JUnit test case, a PolicyReport result.
#[derive(Debug, PartialEq)]
struct RuleOutcome<'a> {
    rule_id: &'a str,
    outcome: Outcome<'a>,
}

/// Every rule the policies judged or skipped on `object`, in the order first met. Several policies
/// may judge one object; a rule counts once, failed if any of them found something, and the same
/// finding from two policies counts once.
fn rule_outcomes(object: &CheckedObject) -> Vec<RuleOutcome<'_>> {
    let judgements: Vec<_> = object
        .verdicts
        .iter()
        .filter_map(|verdict| match verdict {
            Verdict::Judged(judgement) => Some(judgement),
            Verdict::NotApplicable(_) | Verdict::NotJudged(_) | Verdict::Exempt(_) => None,
        })
        .collect();

    // A finding names its rule even where the policy forgot to record the rule as checked.
    let mut rule_ids: Vec<&str> = Vec::new();
    let judged_ids = judgements.iter().flat_map(|j| {
        j.checked.iter().map(|rule| rule.id()).chain(j.findings.iter().map(|f| f.rule.as_str()))
    });
    let skipped_ids = judgements.iter().flat_map(|j| j.skipped.iter().map(|rule| rule.id()));
    for id in judged_ids.chain(skipped_ids) {
        if !rule_ids.contains(&id) {
            rule_ids.push(id);
        }
    }

    rule_ids
        .into_iter()
        .map(|rule_id| {
            let mut findings: Vec<&Finding> = Vec::new();
            for finding in judgements.iter().flat_map(|j| &j.findings).filter(|f| f.rule == rule_id) {
                if !findings.contains(&finding) {
                    findings.push(finding);
                }
            }
            let checked = judgements.iter().any(|j| j.checked.iter().any(|rule| rule.id() == rule_id));
            let outcome = if !findings.is_empty() {
                Outcome::Fail(findings)
            } else if checked {
                Outcome::Pass
            } else {
                Outcome::Skip
            };
            RuleOutcome { rule_id, outcome }
        })
        .collect()
}

/// A report to render in the tests of every format.
#[cfg(test)]
mod sample {
    use super::*;
    use crate::api::{ResourceRef, Severity};
    use crate::cli::report::SourceLocation;
    use crate::policy::Judgement;
    use crate::policy::Rule;

    pub(super) fn resource(
        api_version: &'static str,
        kind: &'static str,
        namespace: Option<&str>,
        name: &str,
    ) -> ResourceRef {
        ResourceRef {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
        }
    }

    pub(super) fn ingress(namespace: &str, name: &str) -> ResourceRef {
        resource("networking.k8s.io/v1", "Ingress", Some(namespace), name)
    }

    pub(super) fn storage_class(name: &str) -> ResourceRef {
        resource("storage.k8s.io/v1", "StorageClass", None, name)
    }

    pub(super) fn protected_secret(namespace: &str, name: &str) -> ResourceRef {
        resource("dpo.dev/v1alpha1", "ProtectedSecret", Some(namespace), name)
    }

    pub(super) fn object(
        resource: ResourceRef,
        file: &str,
        line: usize,
        verdicts: Vec<Verdict>,
    ) -> CheckedObject {
        CheckedObject {
            resource,
            location: SourceLocation { file: file.into(), line, document: 0 },
            verdicts,
        }
    }

    /// Fills `findings` and `skipped` from the objects' judgements, as `dpo check` does.
    pub(super) fn report(objects: Vec<CheckedObject>) -> CheckReport {
        let mut report = CheckReport::of(objects);
        report.checked_at = Some("2025-03-01T12:00:00.5Z".parse().expect("a valid timestamp"));
        report
    }

    /// A web Ingress failing two rules, a cluster-scoped StorageClass failing one, a ProtectedSecret
    /// with a low finding and rules skipped for want of AWS, a compliant Ingress read from stdin in
    /// another namespace, and objects no rule was judged on. Messages carry characters that XML and
    /// YAML must escape.
    pub(super) fn mixed() -> CheckReport {
        report(mixed_objects())
    }

    fn mixed_objects() -> Vec<CheckedObject> {
        let web = ingress("shop", "web");
        let mut web_judgement = Judgement::default();
        for rule in [
            Rule::AlbHttpToHttpsRedirectionCheck,
            Rule::Elbv2AcmCertificateRequired,
            Rule::Elbv2PredefinedSecurityPolicySslCheck,
        ] {
            web_judgement.check(rule);
        }
        web_judgement.violation(
            Rule::AlbHttpToHttpsRedirectionCheck,
            &web,
            "Listener \"HTTP:80\" forwards <all> traffic & does not redirect.".to_string(),
            "Annotate: alb.ingress.kubernetes.io/ssl-redirect: '443'".to_string(),
        );
        web_judgement.violation_at(
            Rule::Elbv2PredefinedSecurityPolicySslCheck,
            Severity::Medium,
            &web,
            "SSL policy ELBSecurityPolicy-2016-08 allows TLS 1.0.".to_string(),
            "alb.ingress.kubernetes.io/ssl-policy: ELBSecurityPolicy-TLS13-1-2-2021-06".to_string(),
        );
        web_judgement.skip(Rule::AcmCertificateStatus);
        web_judgement.skip(Rule::AcmCertificateExpirationCheck);

        let gp2 = storage_class("gp2");
        let mut gp2_judgement = Judgement::default();
        gp2_judgement.check(Rule::StorageclassEncrypted);
        gp2_judgement.violation_at(
            Rule::StorageclassEncrypted,
            Severity::Critical,
            &gp2,
            "StorageClass gp2 provisions unencrypted EBS volumes.".to_string(),
            "parameters:\n  encrypted: \"true\"".to_string(),
        );
        gp2_judgement.skip(Rule::Ec2EbsEncryptionByDefault);

        let db = protected_secret("shop", "db");
        let mut db_judgement = Judgement::default();
        db_judgement.check(Rule::KmsKeyApproved);
        db_judgement.violation_at(
            Rule::KmsKeyApproved,
            Severity::Low,
            &db,
            "Key alias/shop is not in allowedKmsKeys.".to_string(),
            "Add alias/shop to spec.policy.allowedKmsKeys.".to_string(),
        );
        db_judgement.skip(Rule::SecretsmanagerUsingCmk);
        db_judgement.skip(Rule::AcmCertificateStatus);

        let api = ingress("payments", "api");
        let mut api_judgement = Judgement::default();
        api_judgement.check(Rule::AlbHttpToHttpsRedirectionCheck);

        vec![
            object(web, "deploy/web ingress.yaml", 12, vec![Verdict::Judged(web_judgement)]),
            object(gp2, "deploy/storage.yaml", 1, vec![Verdict::Judged(gp2_judgement)]),
            object(db, "deploy/secrets.yaml", 30, vec![Verdict::Judged(db_judgement)]),
            object(api, SourceLocation::STDIN, 1, vec![Verdict::Judged(api_judgement)]),
            object(
                storage_class("efs"),
                "deploy/storage.yaml",
                20,
                vec![Verdict::NotApplicable("provisioner efs.csi.aws.com".to_string())],
            ),
            object(
                ingress("shop", "legacy"),
                "deploy/legacy.yaml",
                1,
                vec![Verdict::Exempt("migrating to NLB".to_string())],
            ),
        ]
    }

    /// [`mixed`]'s objects `copies` times over, each copy's names ending in its number: enough
    /// objects for a report to be rendered in several pieces.
    pub(super) fn copies(copies: usize) -> CheckReport {
        let objects = (0..copies).flat_map(|copy| {
            mixed_objects().into_iter().map(move |mut object| {
                object.resource.name = format!("{}-{copy}", object.resource.name);
                object
            })
        });
        report(objects.collect())
    }

    /// Renders `report` in `format` without colour.
    pub(super) fn rendered(report: &CheckReport, format: OutputFormat) -> String {
        rendered_with(report, format, Style::default())
    }

    pub(super) fn rendered_with(report: &CheckReport, format: OutputFormat, style: Style) -> String {
        let mut out = Vec::new();
        render(report, format, &mut out, style).expect("writing to a Vec cannot fail");
        String::from_utf8(out).expect("every format writes UTF-8")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Judgement, Rule};

    #[test]
    fn outcomes_merge_the_judgements_of_several_policies() {
        let resource = sample::storage_class("gp2");
        let finding_of = |judgement: &mut Judgement| {
            judgement.check(Rule::StorageclassEncrypted);
            judgement.violation(
                Rule::StorageclassEncrypted,
                &resource,
                "unencrypted".to_string(),
                "encrypt".to_string(),
            );
        };
        let mut first = Judgement::default();
        finding_of(&mut first);
        first.skip(Rule::Ec2EbsEncryptionByDefault);
        let mut second = Judgement::default();
        finding_of(&mut second);
        second.check(Rule::Ec2EbsEncryptionByDefault);
        // A policy that found something without recording the rule as checked.
        let mut third = Judgement::default();
        third.violation(Rule::KmsKeyApproved, &resource, "not allowed".to_string(), "allow".to_string());
        let object = sample::object(
            resource.clone(),
            "sc.yaml",
            1,
            vec![Verdict::Judged(first), Verdict::Judged(second), Verdict::Judged(third)],
        );

        let outcomes = rule_outcomes(&object);

        let summary: Vec<(&str, &str)> = outcomes
            .iter()
            .map(|o| {
                let outcome = match &o.outcome {
                    Outcome::Pass => "pass",
                    Outcome::Fail(findings) if findings.len() == 1 => "fail once",
                    Outcome::Fail(_) => "fail more than once",
                    Outcome::Skip => "skip",
                };
                (o.rule_id, outcome)
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("storageclass-encrypted", "fail once"),
                ("ec2-ebs-encryption-by-default", "pass"),
                ("kms-key-approved", "fail once"),
            ]
        );
    }

    #[test]
    fn objects_without_judgements_have_no_outcomes() {
        let report = sample::mixed();
        let unjudged: Vec<_> = report
            .objects()
            .iter()
            .filter(|o| rule_outcomes(o).is_empty())
            .map(|o| &o.resource.name)
            .collect();
        assert_eq!(unjudged, ["efs", "legacy"]);
    }

    #[test]
    fn summary_counts_resources_findings_and_skipped_rules() {
        let summary = Summary::of(&sample::mixed());
        assert_eq!(summary.resources, 6);
        assert_eq!(summary.findings, 4);
        assert_eq!(summary.by_severity, SeverityCounts { low: 1, medium: 1, high: 1, critical: 1 });
        let skipped: Vec<_> = summary.skipped.iter().map(|s| (s.rule, s.resources)).collect();
        assert_eq!(
            skipped,
            [
                ("secretsmanager-using-cmk", 1),
                ("ec2-ebs-encryption-by-default", 1),
                ("acm-certificate-expiration-check", 1),
                ("acm-certificate-status", 2),
            ]
        );
    }
}
