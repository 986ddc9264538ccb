//! `{"findings": [...], "notJudged": [...], "warnings": [...], "inputErrors": [...],
//! "summary": {...}}`: each finding as the API serialises it, with the `file`, `line` and
//! `documentIndex` (0-based) of the document it is about.

use super::{Summary, pretty};
use crate::cli::report::{CheckReport, LocatedFinding};
use std::io::{self, Write};

pub(super) fn render(report: &CheckReport, out: &mut dyn Write) -> io::Result<()> {
    let findings: Vec<LocatedFinding<'_>> = report.findings().collect();
    out.write_all(b"{")?;
    pretty::write_key("findings", true, 0, out)?;
    pretty::write_array(&findings, 1, |finding| *finding, out)?;
    pretty::write_key("notJudged", false, 0, out)?;
    pretty::write_value(&report.not_judged, 1, out)?;
    pretty::write_key("warnings", false, 0, out)?;
    pretty::write_value(&report.warnings, 1, out)?;
    pretty::write_key("inputErrors", false, 0, out)?;
    pretty::write_value(&report.input_errors, 1, out)?;
    pretty::write_key("summary", false, 0, out)?;
    pretty::write_value(&Summary::of(report), 1, out)?;
    out.write_all(b"\n}\n")
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
