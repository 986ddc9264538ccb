//! Findings grouped by resource, then a summary: what a person reads in a terminal or a CI log.

use super::{NEEDS_AWS, Summary, plural};
use crate::api::{Finding, ResourceRef, Severity};
use crate::cli::report::{CheckReport, LocatedFinding, SourceLocation};
use std::collections::HashMap;
use std::io::{self, Write};

/// Width of the severity column: the longest name, `critical`.
const SEVERITY_WIDTH: usize = 8;

pub(super) fn render(report: &CheckReport, out: &mut dyn Write, color: bool) -> io::Result<()> {
    let paint = Painter { color };
    for group in findings_by_document(report) {
        let header = format!("{}: {}", group.location, group.resource);
        writeln!(out, "{}", paint.apply(&header, Style::Bold))?;
        for finding in group.findings {
            let severity = format!("{:<SEVERITY_WIDTH$}", finding.severity.as_str());
            writeln!(
                out,
                "  {}  {}  {}",
                paint.apply(&severity, Style::of(finding.severity)),
                finding.rule,
                finding.message
            )?;
            // Continuation lines of a multi-line fix line up under its first line.
            let indent = " ".repeat(2 + SEVERITY_WIDTH + 2);
            let remediation = finding.remediation.replace('\n', &format!("\n{indent}     "));
            writeln!(out, "{indent}{} {remediation}", paint.apply("fix:", Style::Fix))?;
        }
        writeln!(out)?;
    }
    if !report.not_judged.is_empty() {
        writeln!(out, "{}", paint.apply("Not judged:", Style::Bold))?;
        for object in &report.not_judged {
            writeln!(out, "  {}: {}: {}", object.location, object.resource, object.reason)?;
        }
        writeln!(out)?;
    }
    write_summary(&Summary::of(report), out, &paint)
}

fn write_summary(summary: &Summary, out: &mut dyn Write, paint: &Painter) -> io::Result<()> {
    let resources = plural(summary.resources, "resource");
    if summary.findings == 0 {
        writeln!(out, "{} ({resources} checked)", paint.apply("No findings", Style::Good))?;
    } else {
        let by_severity: Vec<String> = Severity::ALL
            .iter()
            .rev()
            .map(|&severity| {
                let count = format!("{} {severity}", summary.by_severity.get(severity));
                paint.apply(&count, Style::of(severity))
            })
            .collect();
        writeln!(out, "{} in {resources}: {}", plural(summary.findings, "finding"), by_severity.join(", "))?;
    }
    if summary.not_judged > 0 {
        writeln!(out, "{} not judged (listed above)", plural(summary.not_judged, "resource"))?;
    }
    if !summary.skipped.is_empty() {
        let skipped: Vec<String> = summary
            .skipped
            .iter()
            .map(|skipped| format!("{} ({})", skipped.rule, plural(skipped.resources, "resource")))
            .collect();
        writeln!(out, "Skipped ({NEEDS_AWS}): {}", skipped.join(", "))?;
    }
    Ok(())
}

/// One document with findings: where it is, what it holds, its findings, most severe first.
struct DocumentFindings<'a> {
    resource: &'a ResourceRef,
    location: &'a SourceLocation,
    findings: Vec<&'a Finding>,
}

/// Findings grouped by document, in input order.
fn findings_by_document(report: &CheckReport) -> Vec<DocumentFindings<'_>> {
    // Findings keep the report's order (most severe first) within each document.
    let mut findings_of: HashMap<(&SourceLocation, &ResourceRef), Vec<&Finding>> = HashMap::new();
    for LocatedFinding { finding, location } in report.findings() {
        findings_of.entry((location, &finding.resource)).or_default().push(finding);
    }
    report
        .objects()
        .iter()
        .filter_map(|object| {
            let findings = findings_of.remove(&(&object.location, &object.resource))?;
            Some(DocumentFindings { resource: &object.resource, location: &object.location, findings })
        })
        .collect()
}

#[derive(Clone, Copy)]
enum Style {
    Bold,
    Critical,
    High,
    Medium,
    Low,
    Fix,
    Good,
}

impl Style {
    fn of(severity: Severity) -> Style {
        match severity {
            Severity::Critical => Style::Critical,
            Severity::High => Style::High,
            Severity::Medium => Style::Medium,
            Severity::Low => Style::Low,
        }
    }

    /// The ANSI SGR parameters of the style.
    fn sgr(self) -> &'static str {
        match self {
            Style::Bold => "1",
            Style::Critical => "1;35",
            Style::High => "31",
            Style::Medium => "33",
            Style::Low => "36",
            Style::Fix => "32",
            Style::Good => "1;32",
        }
    }
}

/// Applies ANSI styles, or leaves text plain when colour is off.
struct Painter {
    color: bool,
}

impl Painter {
    fn apply(&self, text: &str, style: Style) -> String {
        if self.color { format!("\x1b[{}m{text}\x1b[0m", style.sgr()) } else { text.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{OutputFormat, Style, sample};
    use crate::cli::report::CheckReport;

    fn text(report: &CheckReport, color: bool) -> String {
        sample::rendered_with(report, OutputFormat::Text, Style { color, ..Style::default() })
    }

    #[test]
    fn findings_are_grouped_under_their_resource_with_location_and_fix() {
        let out = text(&sample::mixed(), false);
        let expected = "\
deploy/web ingress.yaml:12: Ingress/shop/web
  high      alb-http-to-https-redirection-check  Listener \"HTTP:80\" forwards <all> traffic & does not redirect.
            fix: Annotate: alb.ingress.kubernetes.io/ssl-redirect: '443'
  medium    elbv2-predefined-security-policy-ssl-check  SSL policy ELBSecurityPolicy-2016-08 allows TLS 1.0.
            fix: alb.ingress.kubernetes.io/ssl-policy: ELBSecurityPolicy-TLS13-1-2-2021-06

deploy/storage.yaml:1: StorageClass/gp2
  critical  storageclass-encrypted  StorageClass gp2 provisions unencrypted EBS volumes.
            fix: parameters:
                   encrypted: \"true\"

deploy/secrets.yaml:30: ProtectedSecret/shop/db
  low       kms-key-approved  Key alias/shop is not in allowedKmsKeys.
            fix: Add alias/shop to spec.policy.allowedKmsKeys.

";
        assert!(out.starts_with(expected), "got:\n{out}");
    }

    #[test]
    fn summary_counts_findings_by_severity_and_names_skipped_rules() {
        let out = text(&sample::mixed(), false);
        let summary: Vec<&str> = out.lines().rev().take(2).collect();
        assert_eq!(summary[1], "4 findings in 6 resources: 1 critical, 1 high, 1 medium, 1 low");
        assert_eq!(
            summary[0],
            "Skipped (needs facts from AWS, which `dpo check --aws` gathers): secretsmanager-using-cmk (1 resource), ec2-ebs-encryption-by-default (1 resource), \
             acm-certificate-expiration-check (1 resource), acm-certificate-status (2 resources)"
        );
    }

    #[test]
    fn compliant_resources_get_no_header() {
        let out = text(&sample::mixed(), false);
        assert!(!out.contains("payments"), "got:\n{out}");
        assert!(!out.contains("efs"), "got:\n{out}");
    }

    #[test]
    fn no_findings_says_so() {
        let report = sample::report(vec![sample::object(
            sample::ingress("payments", "api"),
            "api.yaml",
            1,
            Vec::new(),
        )]);
        assert_eq!(text(&report, false), "No findings (1 resource checked)\n");
    }

    #[test]
    fn colour_only_when_asked() {
        let report = sample::mixed();
        assert!(!text(&report, false).contains('\x1b'));
        let coloured = text(&report, true);
        assert!(coloured.contains("\x1b[1;35mcritical\x1b[0m"), "got:\n{coloured}");
        assert!(
            coloured.contains("\x1b[1mdeploy/storage.yaml:1: StorageClass/gp2\x1b[0m"),
            "got:\n{coloured}"
        );
    }
}
