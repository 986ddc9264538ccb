//! SARIF 2.1.0 for code scanning: every rule's metadata, one result per finding, located at the
//! line of the manifest where the resource's document starts.

use super::{NEEDS_AWS, Summary, plural, pretty};
use crate::api::Severity;
use crate::cli::report::{CheckReport, LocatedFinding};
use crate::policy::Rule;
use serde_json::{Value, json};
use std::io::{self, Write};

/// The schema reference GitHub code scanning documents for uploads.
const SCHEMA_URI: &str = "https://json.schemastore.org/sarif-2.1.0.json";

pub(super) fn render(report: &CheckReport, out: &mut dyn Write) -> io::Result<()> {
    let invocations = json!([{
        "executionSuccessful": true,
        "toolExecutionNotifications": skipped_notifications(&Summary::of(report)),
    }]);
    let tool = json!({"driver": {
        "name": "dpo",
        "version": env!("CARGO_PKG_VERSION"),
        "informationUri": env!("CARGO_PKG_REPOSITORY"),
        "rules": Rule::ALL.map(rule_descriptor),
    }});
    let findings: Vec<LocatedFinding<'_>> = report.findings().collect();
    // The log's keys in the order of the rest of the document (sorted). Its single run is
    // written by hand, so that its results can be rendered on every core.
    out.write_all(b"{")?;
    pretty::write_key("$schema", true, 0, out)?;
    pretty::write_value(&SCHEMA_URI, 1, out)?;
    pretty::write_key("runs", false, 0, out)?;
    out.write_all(b"[\n    {")?;
    pretty::write_key("invocations", true, 2, out)?;
    pretty::write_value(&invocations, 3, out)?;
    // Each result is built as it is written, on every core: many findings are never held twice.
    pretty::write_key("results", false, 2, out)?;
    pretty::write_array(&findings, 3, |finding| result(*finding), out)?;
    pretty::write_key("tool", false, 2, out)?;
    pretty::write_value(&tool, 3, out)?;
    out.write_all(b"\n    }\n  ]")?;
    pretty::write_key("version", false, 0, out)?;
    pretty::write_value(&"2.1.0", 1, out)?;
    out.write_all(b"\n}\n")
}

fn rule_descriptor(rule: Rule) -> Value {
    let mut description = rule.description().to_string();
    if let Some(config_rule) = rule.aws_config_rule() {
        description.push_str(&format!(" Mirrors the AWS Config managed rule {config_rule}."));
    }
    let mut tags = vec!["security", "data-protection"];
    if rule.needs_aws() {
        // Such rules are judged only with `--aws`; the tag lets a dashboard tell why none ran.
        tags.push("needs-aws");
    }
    json!({
        "id": rule.id(),
        "shortDescription": {"text": rule.description()},
        "fullDescription": {"text": description},
        "help": {
            "text": format!("{}\n\nRemediation: {}", rule.description(), rule.remediation()),
            "markdown": format!("{}\n\n**Remediation:** {}", rule.description(), rule.remediation()),
        },
        "defaultConfiguration": {"level": level(rule.severity())},
        "properties": {
            "tags": tags,
            "security-severity": security_severity(rule.severity()),
        },
    })
}

fn result(located: LocatedFinding<'_>) -> Value {
    let LocatedFinding { finding, location } = located;
    let resource = &finding.resource;
    let mut sarif_location = json!({
        "logicalLocations": [{
            "name": resource.name,
            "fullyQualifiedName": resource.to_string(),
            "kind": "resource",
        }],
    });
    // Standard input is no file a viewer could open.
    if !location.is_stdin() && !location.is_built_in() {
        sarif_location["physicalLocation"] = json!({
            "artifactLocation": {"uri": uri_reference(&location.file)},
            // SARIF lines start at 1; a location that says 0 means the start of the file.
            "region": {"startLine": location.line.max(1)},
        });
    }
    let mut result = json!({
        "ruleId": finding.rule,
        "level": level(finding.severity),
        "message": {"text": format!("{} Remediation: {}", finding.message, finding.remediation)},
        "locations": [sarif_location],
        // The rule and resource identify a finding across edits that move it to another line.
        // The file tells apart documents of one name (examples of one repository).
        "partialFingerprints": {
            "dpoFinding/v2": format!("{}|{}|{}|{}", finding.rule, resource.api_version, resource, location.file)
        },
        "properties": {
            "severity": finding.severity,
            "remediation": finding.remediation,
            "resource": resource,
        },
    });
    if let Some(index) = rule_index(&finding.rule) {
        result["ruleIndex"] = json!(index);
    }
    result
}

/// Where the rule is in `tool.driver.rules`; `None` for an id outside the catalogue.
fn rule_index(id: &str) -> Option<usize> {
    Rule::ALL.iter().position(|rule| rule.id() == id)
}

/// A note per rule skipped for want of AWS facts, so a SARIF viewer can tell it did not run.
fn skipped_notifications(summary: &Summary) -> Vec<Value> {
    summary
        .skipped
        .iter()
        .map(|skipped| {
            let mut notification = json!({
                "level": "note",
                "message": {"text": format!(
                    "{} was skipped for {}: it {NEEDS_AWS}.",
                    skipped.rule,
                    plural(skipped.resources, "resource")
                )},
                "associatedRule": {"id": skipped.rule},
            });
            if let Some(index) = rule_index(skipped.rule) {
                notification["associatedRule"]["index"] = json!(index);
            }
            notification
        })
        .collect()
}

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low => "note",
    }
}

/// The CVSS-like score GitHub ranks security alerts by: over 9.0 critical, 7.0 to 8.9 high,
/// 4.0 to 6.9 medium, below that low.
fn security_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
    }
}

/// A path as a relative URI reference: `/` separators, and every byte outside RFC 3986's
/// unreserved set and `/` percent-encoded. That includes `:`, which would otherwise make a
/// Windows drive letter read as a URI scheme.
fn uri_reference(path: &str) -> String {
    let mut uri = String::with_capacity(path.len());
    for byte in path.replace('\\', "/").bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                uri.push(char::from(byte))
            }
            _ => uri.push_str(&format!("%{byte:02X}")),
        }
    }
    uri
}

#[cfg(test)]
mod tests {
    use super::super::{OutputFormat, sample};
    use super::uri_reference;
    use crate::cli::report::{CheckReport, SourceLocation};
    use crate::policy::{Judgement, Rule, Verdict};
    use serde_json::Value;

    /// A validator for the vendored official schema. The schema declares draft-04, which has no
    /// `uri-reference` format; draft-07 reads every keyword the schema uses the same way and also
    /// checks the format of artifact URIs.
    fn official_validator() -> jsonschema::Validator {
        let schema: Value =
            serde_json::from_str(include_str!("../../../tests/fixtures/sarif-schema-2.1.0.json"))
                .expect("the vendored schema is JSON");
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft7)
            .should_validate_formats(true)
            .build(&schema)
            .expect("the vendored schema compiles offline")
    }

    fn assert_valid(log: &Value) {
        let validator = official_validator();
        let errors: Vec<String> =
            validator.iter_errors(log).map(|e| format!("{} at {}", e, e.instance_path())).collect();
        assert!(errors.is_empty(), "SARIF is invalid: {errors:#?}");
    }

    fn sarif(report: &CheckReport) -> Value {
        serde_json::from_str(&sample::rendered(report, OutputFormat::Sarif)).expect("SARIF is JSON")
    }

    fn descriptor(log: &Value, rule: Rule) -> &Value {
        let rules = log["runs"][0]["tool"]["driver"]["rules"].as_array().expect("rules");
        rules.iter().find(|r| r["id"] == rule.id()).expect("the rule's descriptor")
    }

    #[test]
    fn valid_against_the_sarif_schema() {
        assert_valid(&sarif(&sample::mixed()));
        assert_valid(&sarif(&sample::report(Vec::new())));
    }

    #[test]
    fn written_in_parts_the_log_is_what_serde_json_writes_whole() {
        // Every map of the log has its keys sorted, so its parsed value prints the same bytes.
        for report in [sample::mixed(), sample::copies(300), sample::report(Vec::new())] {
            let rendered = sample::rendered(&report, OutputFormat::Sarif);
            let parsed: Value = serde_json::from_str(&rendered).expect("SARIF is JSON");
            assert_eq!(rendered, serde_json::to_string_pretty(&parsed).expect("printed") + "\n");
        }
    }

    #[test]
    fn schema_validation_catches_a_bad_level_and_a_bad_uri() {
        let validator = official_validator();
        let log = sarif(&sample::mixed());
        let mut bad_level = log.clone();
        bad_level["runs"][0]["results"][0]["level"] = Value::from("fatal");
        assert!(!validator.is_valid(&bad_level));
        let mut bad_uri = log;
        bad_uri["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] =
            Value::from("deploy/web ingress.yaml");
        assert!(!validator.is_valid(&bad_uri));
    }

    #[test]
    fn driver_describes_every_rule() {
        let log = sarif(&sample::mixed());
        let driver = &log["runs"][0]["tool"]["driver"];
        assert_eq!(driver["name"], "dpo");
        assert_eq!(driver["version"], env!("CARGO_PKG_VERSION"));
        let ids: Vec<&str> =
            driver["rules"].as_array().expect("rules").iter().filter_map(|r| r["id"].as_str()).collect();
        assert_eq!(ids, Rule::ALL.map(Rule::id));

        let kms = descriptor(&log, Rule::KmsCmkNotScheduledForDeletion);
        assert_eq!(kms["shortDescription"]["text"], Rule::KmsCmkNotScheduledForDeletion.description());
        assert_eq!(kms["defaultConfiguration"]["level"], "error");
        assert_eq!(kms["properties"]["security-severity"], "9.5");
        let help = kms["help"]["text"].as_str().expect("help text");
        assert!(help.contains("aws kms cancel-key-deletion"), "help: {help}");
        let tags = kms["properties"]["tags"].as_array().expect("tags");
        assert!(tags.contains(&Value::from("needs-aws")));

        let levels =
            [(Rule::AlbHttpToHttpsRedirectionCheck, "error"), (Rule::SecretsmanagerUsingCmk, "warning")];
        for (rule, level) in levels {
            assert_eq!(descriptor(&log, rule)["defaultConfiguration"]["level"], level, "{rule}");
        }
        let annotations = descriptor(&log, Rule::AlbIngressAnnotationsValid);
        assert!(
            !annotations["properties"]["tags"].as_array().expect("tags").contains(&Value::from("needs-aws"))
        );
    }

    #[test]
    fn results_point_at_rule_level_file_and_line() {
        let log = sarif(&sample::mixed());
        let results = log["runs"][0]["results"].as_array().expect("results");
        assert_eq!(results.len(), 4);
        let rules = &log["runs"][0]["tool"]["driver"]["rules"];

        let levels: Vec<&str> = results.iter().filter_map(|r| r["level"].as_str()).collect();
        assert_eq!(levels, ["error", "error", "warning", "note"]);
        for result in results {
            let index = result["ruleIndex"].as_u64().expect("ruleIndex");
            assert_eq!(rules[index as usize]["id"], result["ruleId"]);
        }

        let web = &results[1];
        assert_eq!(web["ruleId"], "alb-http-to-https-redirection-check");
        let physical = &web["locations"][0]["physicalLocation"];
        assert_eq!(physical["artifactLocation"]["uri"], "deploy/web%20ingress.yaml");
        assert_eq!(physical["region"]["startLine"], 12);
        assert_eq!(web["locations"][0]["logicalLocations"][0]["fullyQualifiedName"], "Ingress/shop/web");
        let message = web["message"]["text"].as_str().expect("message text");
        assert!(message.starts_with("Listener \"HTTP:80\""), "{message}");
        assert!(message.ends_with("ssl-redirect: '443'"), "{message}");
    }

    #[test]
    fn findings_from_stdin_have_only_a_logical_location() {
        let resource = sample::ingress("payments", "api");
        let mut judgement = Judgement::default();
        judgement.check(Rule::AlbHttpToHttpsRedirectionCheck);
        judgement.violation(
            Rule::AlbHttpToHttpsRedirectionCheck,
            &resource,
            "No redirect.".to_string(),
            "Redirect.".to_string(),
        );
        let report = sample::report(vec![sample::object(
            resource,
            SourceLocation::STDIN,
            1,
            vec![Verdict::Judged(judgement)],
        )]);
        let log = sarif(&report);
        assert_valid(&log);
        let location = &log["runs"][0]["results"][0]["locations"][0];
        assert!(location.get("physicalLocation").is_none(), "{location}");
        assert_eq!(location["logicalLocations"][0]["fullyQualifiedName"], "Ingress/payments/api");
    }

    #[test]
    fn skipped_rules_become_notes() {
        let log = sarif(&sample::mixed());
        let notes = log["runs"][0]["invocations"][0]["toolExecutionNotifications"].as_array().expect("notes");
        let rules: Vec<&str> = notes.iter().filter_map(|n| n["associatedRule"]["id"].as_str()).collect();
        assert_eq!(
            rules,
            [
                "secretsmanager-using-cmk",
                "ec2-ebs-encryption-by-default",
                "acm-certificate-expiration-check",
                "acm-certificate-status"
            ]
        );
        assert_eq!(
            notes[3]["message"]["text"],
            "acm-certificate-status was skipped for 2 resources: it needs facts from AWS, which \
             `dpo check --aws` gathers."
        );
    }

    #[test]
    fn paths_become_uri_references() {
        assert_eq!(uri_reference("deploy/app.yaml"), "deploy/app.yaml");
        assert_eq!(uri_reference(r"C:\repo\k8s #1\app.yaml"), "C%3A/repo/k8s%20%231/app.yaml");
        assert_eq!(uri_reference("ünï/100%.yaml"), "%C3%BCn%C3%AF/100%25.yaml");
    }
}
