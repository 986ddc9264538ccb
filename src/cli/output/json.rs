//! `{"findings": [...], "notJudged": [...], "warnings": [...], "inputErrors": [...],
//! "summary": {...}}`: each finding as the API serialises it, with the `file`, `line` and
//! `documentIndex` (0-based) of the document it is about.

use super::Summary;
use crate::cli::input::InputError;
use crate::cli::report::{CheckReport, LocatedFinding, NotJudged, Warning};
use serde::Serialize;
use std::io::{self, Write};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonReport<'a> {
    findings: Vec<LocatedFinding<'a>>,
    not_judged: &'a [NotJudged],
    warnings: &'a [Warning],
    input_errors: &'a [InputError],
    summary: Summary,
}

pub(super) fn render(report: &CheckReport, out: &mut dyn Write) -> io::Result<()> {
    let json = JsonReport {
        findings: report.findings().collect(),
        not_judged: &report.not_judged,
        warnings: &report.warnings,
        input_errors: &report.input_errors,
        summary: Summary::of(report),
    };
    serde_json::to_writer_pretty(&mut *out, &json)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::super::{OutputFormat, sample};
    use serde_json::{Value, json};

    #[test]
    fn shape_is_findings_and_summary() {
        let report = sample::mixed();
        let out: Value =
            serde_json::from_str(&sample::rendered(&report, OutputFormat::Json)).expect("valid JSON");

        let top_level: Vec<&str> = out.as_object().expect("an object").keys().map(String::as_str).collect();
        assert_eq!(top_level, ["findings", "inputErrors", "notJudged", "summary", "warnings"]);

        let findings = out["findings"].as_array().expect("findings is an array");
        assert_eq!(findings.len(), 4);
        assert_eq!(
            findings[0],
            json!({
                "rule": "storageclass-encrypted",
                "severity": "critical",
                "resource": {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "name": "gp2"},
                "message": "StorageClass gp2 provisions unencrypted EBS volumes.",
                "remediation": "parameters:\n  encrypted: \"true\"",
                "file": "deploy/storage.yaml",
                "line": 1,
                "documentIndex": 0,
            })
        );
        assert_eq!(findings[1]["resource"]["namespace"], "shop");
        let severities: Vec<&str> = findings.iter().filter_map(|f| f["severity"].as_str()).collect();
        assert_eq!(severities, ["critical", "high", "medium", "low"]);

        let summary = &out["summary"];
        assert_eq!(summary["resources"], 6);
        assert_eq!(summary["findings"], 4);
        assert_eq!(summary["bySeverity"], json!({"low": 1, "medium": 1, "high": 1, "critical": 1}));
        assert_eq!(summary["skipped"][3], json!({"rule": "acm-certificate-status", "resources": 2}));
        assert_eq!(summary["notJudged"], 0);
        assert_eq!(summary.as_object().map(|s| s.len()), Some(5));
    }

    #[test]
    fn findings_round_trip_to_the_api_type() {
        let report = sample::mixed();
        let out: Value =
            serde_json::from_str(&sample::rendered(&report, OutputFormat::Json)).expect("valid JSON");
        let findings: Vec<crate::api::Finding> =
            serde_json::from_value(out["findings"].clone()).expect("findings deserialise");
        let expected: Vec<_> = report.findings().map(|f| f.finding.clone()).collect();
        assert_eq!(findings, expected);
    }

    #[test]
    fn empty_report_has_zero_counts() {
        let out: Value =
            serde_json::from_str(&sample::rendered(&sample::report(Vec::new()), OutputFormat::Json))
                .expect("valid JSON");
        assert_eq!(
            out,
            json!({
                "findings": [],
                "notJudged": [],
                "warnings": [],
                "inputErrors": [],
                "summary": {
                    "resources": 0,
                    "findings": 0,
                    "notJudged": 0,
                    "bySeverity": {"low": 0, "medium": 0, "high": 0, "critical": 0},
                    "skipped": [],
                },
            })
        );
    }
}
