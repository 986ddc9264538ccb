//! Policy reports, as a multi-document YAML stream to `kubectl apply`: `openreports.io/v1alpha1`
//! (`Report`, `ClusterReport`), the successor Kyverno and Policy Reporter move to, or
//! `wgpolicyk8s.io/v1alpha2` (`PolicyReport`, `ClusterPolicyReport`). One namespaced report per
//! namespace, then one cluster report for cluster-scoped resources; the two APIs share the
//! result schema. Each rule judged on a resource is one result: `fail` per finding, `pass`, or
//! `skip` when it needed AWS facts.

use super::{NEEDS_AWS, Outcome, RuleOutcome, block_yaml, rule_outcomes};
use crate::api::{ResourceRef, Severity};
use crate::cli::parallel::write_on_every_core;
use crate::cli::report::{CheckReport, CheckedObject};
use crate::policy::Rule;
use serde::Serialize;
use serde::ser::SerializeSeq;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::{self, Write};

/// The report API `--output policyreport` writes (`--report-api`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportApi {
    /// `openreports.io/v1alpha1` `Report` and `ClusterReport`.
    #[default]
    Openreports,
    /// `wgpolicyk8s.io/v1alpha2` `PolicyReport` and `ClusterPolicyReport`.
    Wgpolicyk8s,
}

impl ReportApi {
    fn api_version(self) -> &'static str {
        match self {
            ReportApi::Openreports => "openreports.io/v1alpha1",
            ReportApi::Wgpolicyk8s => "wgpolicyk8s.io/v1alpha2",
        }
    }

    /// The kinds of the namespaced and the cluster report.
    fn kinds(self) -> (&'static str, &'static str) {
        match self {
            ReportApi::Openreports => ("Report", "ClusterReport"),
            ReportApi::Wgpolicyk8s => ("PolicyReport", "ClusterPolicyReport"),
        }
    }

    /// openreports names the engine once per report; wgpolicyk8s only per result.
    fn report_source(self) -> Option<&'static str> {
        (self == ReportApi::Openreports).then_some(SOURCE)
    }
}

/// Name of every report `dpo check` writes, so applying a newer one replaces the older.
const REPORT_NAME: &str = "dpo-check";
/// The `source` of every result: the engine that wrote it.
const SOURCE: &str = "dpo";
/// Where a namespaced resource lands when its manifest names no namespace, as `kubectl apply`
/// without `--namespace` puts it.
const DEFAULT_NAMESPACE: &str = "default";
/// Kinds `dpo check` meets that have no namespace; other kinds without one are namespaced
/// resources whose manifests leave the namespace to `kubectl`.
const CLUSTER_SCOPED_KINDS: [&str; 6] = [
    "StorageClass",
    "PersistentVolume",
    "IngressClass",
    "Namespace",
    "EncryptedVolumePolicy",
    "TlsIngressPolicy",
];

pub(super) fn render(report: &CheckReport, api: ReportApi, out: &mut dyn Write) -> io::Result<()> {
    let timestamp = Timestamp::of(report.checked_at.unwrap_or_else(jiff::Timestamp::now));
    let mut namespaced: BTreeMap<&str, Vec<&CheckedObject>> = BTreeMap::new();
    let mut cluster: Vec<&CheckedObject> = Vec::new();
    for object in &report.objects {
        match report_namespace(&object.resource) {
            Some(namespace) => namespaced.entry(namespace).or_default().push(object),
            None => cluster.push(object),
        }
    }
    let (namespaced_kind, cluster_kind) = api.kinds();
    let reports: Vec<_> = namespaced
        .into_iter()
        .map(|(namespace, objects)| (namespaced_kind, Some(namespace), objects))
        .chain([(cluster_kind, None, cluster)])
        .collect();
    let mut parts = Vec::new();
    for (kind, namespace, objects) in &reports {
        let head = Report::new(api, kind, *namespace, objects);
        if head.summary.total() == 0 {
            continue;
        }
        parts.push(Part::Head(head));
        let chunks = objects.chunks(OBJECTS_PER_PIECE);
        let count = chunks.len();
        parts.extend(chunks.enumerate().map(|(index, objects)| Part::Results {
            results: Results { objects, timestamp },
            last: index + 1 == count,
        }));
    }
    write_on_every_core(&pieces(&parts), out, |piece, buffer| {
        piece.iter().try_for_each(|part| part.render(buffer))
    })
}

/// About how many objects' results are rendered together, on one core.
const OBJECTS_PER_PIECE: usize = 256;

/// A part of the report stream: the head of a report (all but its results, which come last), or
/// the results of some of its objects.
enum Part<'a> {
    Head(Report<'a>),
    Results { results: Results<'a>, last: bool },
}

impl Part<'_> {
    fn objects(&self) -> usize {
        match self {
            Part::Head(_) => 0,
            Part::Results { results, .. } => results.objects.len(),
        }
    }

    fn render(&self, buffer: &mut Vec<u8>) -> io::Result<()> {
        match self {
            Part::Head(head) => {
                buffer.extend_from_slice(b"---\n");
                block_yaml::to_writer(buffer, head)?;
                buffer.extend_from_slice(b"\nresults:");
            }
            Part::Results { results, last } => {
                block_yaml::entries_to_writer(buffer, 0, results)?;
                if *last {
                    buffer.push(b'\n');
                }
            }
        }
        Ok(())
    }
}

/// `parts` cut into runs of about [`OBJECTS_PER_PIECE`] objects: a namespace's report may hold
/// one object, or thousands.
fn pieces<'p, 'a>(parts: &'p [Part<'a>]) -> Vec<&'p [Part<'a>]> {
    let mut pieces = Vec::new();
    let (mut start, mut objects) = (0, 0);
    for (index, part) in parts.iter().enumerate() {
        objects += part.objects();
        if objects >= OBJECTS_PER_PIECE {
            pieces.push(&parts[start..=index]);
            (start, objects) = (index + 1, 0);
        }
    }
    if start < parts.len() {
        pieces.push(&parts[start..]);
    }
    pieces
}

/// The namespace whose PolicyReport holds the resource's results; `None` for the cluster report.
fn report_namespace(resource: &ResourceRef) -> Option<&str> {
    match resource.namespace.as_deref() {
        Some(namespace) => Some(namespace),
        None if CLUSTER_SCOPED_KINDS.contains(&&*resource.kind) => None,
        None => Some(DEFAULT_NAMESPACE),
    }
}

/// Every result of `object`, each passed to `emit` as it is made.
fn object_results<'a, E>(
    object: &'a CheckedObject,
    timestamp: Timestamp,
    mut emit: impl FnMut(&PolicyResult<'_>) -> Result<(), E>,
) -> Result<(), E> {
    let location = format!("{}:{}", object.location.file, object.location.line);
    for RuleOutcome { rule_id, outcome } in rule_outcomes(object) {
        let result = |result: ResultKind,
                      severity: Severity,
                      message: Cow<'a, str>,
                      remediation: Option<&'a str>| PolicyResult {
            policy: rule_id,
            rule: rule_id,
            result,
            severity,
            message,
            source: SOURCE,
            scored: true,
            resources: [&object.resource],
            properties: Properties { location: &location, remediation },
            timestamp,
        };
        // Passed and skipped rules are always catalogue rules; only a finding may name another.
        let rule = Rule::from_id(rule_id);
        let severity = rule.map(Rule::severity).unwrap_or_default();
        let description = rule.map(Rule::description).unwrap_or_default();
        match outcome {
            Outcome::Pass => emit(&result(ResultKind::Pass, severity, description.into(), None))?,
            Outcome::Skip => {
                let message = format!("{description} Skipped: {NEEDS_AWS}.");
                emit(&result(ResultKind::Skip, severity, message.into(), None))?;
            }
            Outcome::Fail(findings) => {
                for finding in findings {
                    let message = finding.message.as_str().into();
                    emit(&result(ResultKind::Fail, finding.severity, message, Some(&finding.remediation)))?;
                }
            }
        }
    }
    Ok(())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Report<'a> {
    api_version: &'static str,
    kind: &'static str,
    metadata: Metadata<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'static str>,
    summary: ResultSummary,
}

/// The results of some of a report's objects, each built as it is written.
struct Results<'a> {
    objects: &'a [&'a CheckedObject],
    timestamp: Timestamp,
}

impl Serialize for Results<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut results = serializer.serialize_seq(None)?;
        for object in self.objects {
            object_results(object, self.timestamp, |result| results.serialize_element(result))?;
        }
        results.end()
    }
}

impl<'a> Report<'a> {
    fn new(
        api: ReportApi,
        kind: &'static str,
        namespace: Option<&'a str>,
        objects: &[&CheckedObject],
    ) -> Report<'a> {
        let mut summary = ResultSummary { pass: 0, fail: 0, warn: 0, error: 0, skip: 0 };
        for outcome in objects.iter().flat_map(|object| rule_outcomes(object)) {
            match outcome.outcome {
                Outcome::Pass => summary.pass += 1,
                Outcome::Fail(findings) => summary.fail += findings.len(),
                Outcome::Skip => summary.skip += 1,
            }
        }
        Report {
            api_version: api.api_version(),
            kind,
            source: api.report_source(),
            metadata: Metadata {
                name: REPORT_NAME,
                namespace,
                labels: BTreeMap::from([("app.kubernetes.io/managed-by", "dpo")]),
            },
            summary,
        }
    }
}

#[derive(Serialize)]
struct Metadata<'a> {
    name: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<&'a str>,
    labels: BTreeMap<&'static str, &'static str>,
}

#[derive(Serialize)]
struct ResultSummary {
    pass: usize,
    fail: usize,
    warn: usize,
    error: usize,
    skip: usize,
}

impl ResultSummary {
    fn total(&self) -> usize {
        self.pass + self.fail + self.warn + self.error + self.skip
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum ResultKind {
    Pass,
    Fail,
    Skip,
}

#[derive(Serialize)]
struct PolicyResult<'a> {
    /// dpo's unit of policy is the rule (named like the AWS Config rule it mirrors), so the rule id
    /// is both the policy and the rule a report viewer groups by.
    policy: &'a str,
    rule: &'a str,
    result: ResultKind,
    /// Every dpo severity is in the CRD's enum, spelt the same.
    severity: Severity,
    message: Cow<'a, str>,
    source: &'static str,
    scored: bool,
    resources: [&'a ResourceRef; 1],
    properties: Properties<'a>,
    timestamp: Timestamp,
}

/// A result's `properties`, a map of strings to strings in the CRD: keys in sorted order.
#[derive(Serialize)]
struct Properties<'a> {
    location: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    remediation: Option<&'a str>,
}

/// A protobuf `Timestamp`, as the CRD wants it: whole seconds, and non-negative nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
struct Timestamp {
    seconds: i64,
    nanos: i32,
}

impl Timestamp {
    fn of(time: jiff::Timestamp) -> Timestamp {
        const NANOS_PER_SECOND: i128 = 1_000_000_000;
        let nanoseconds = time.as_nanosecond();
        // jiff's range (years -9999 to 9999) fits both fields, so neither conversion can fail.
        Timestamp {
            seconds: i64::try_from(nanoseconds.div_euclid(NANOS_PER_SECOND)).unwrap_or_default(),
            nanos: i32::try_from(nanoseconds.rem_euclid(NANOS_PER_SECOND)).unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{OutputFormat, Style, sample};
    use super::{ReportApi, Timestamp};
    use serde::Deserialize;
    use serde_json::Value;

    /// The vendored CRD's `openAPIV3Schema` for a report's `apiVersion` and `kind`, made to reject
    /// fields it does not declare: the API server would silently prune them, so a misspelt field
    /// would otherwise go unnoticed.
    fn report_schema(document: &Value) -> Value {
        let crd = match (document["apiVersion"].as_str(), document["kind"].as_str()) {
            (Some("openreports.io/v1alpha1"), Some("Report")) => {
                include_str!("../../../tests/fixtures/openreports.io_reports.yaml")
            }
            (Some("openreports.io/v1alpha1"), Some("ClusterReport")) => {
                include_str!("../../../tests/fixtures/openreports.io_clusterreports.yaml")
            }
            // The ClusterPolicyReport CRD has the same schema (see tests/fixtures/README.md).
            (Some("wgpolicyk8s.io/v1alpha2"), Some("PolicyReport" | "ClusterPolicyReport")) => {
                include_str!("../../../tests/fixtures/wgpolicyk8s.io_policyreports.yaml")
            }
            other => panic!("no vendored CRD for {other:?}"),
        };
        let crd: Value = serde_yaml::from_str(crd).expect("the vendored CRD is YAML");
        assert_eq!(
            crd["spec"]["group"].as_str(),
            document["apiVersion"].as_str().and_then(|v| v.split('/').next())
        );
        let version = document["apiVersion"].as_str().and_then(|v| v.split('/').nth(1)).unwrap_or_default();
        let versions = crd["spec"]["versions"].as_array().expect("CRD versions");
        let served = versions.iter().find(|v| v["name"] == version).expect("the document's version");
        let mut schema = served["schema"]["openAPIV3Schema"].clone();
        forbid_undeclared_fields(&mut schema);
        schema
    }

    fn rendered(report: &crate::cli::report::CheckReport, report_api: ReportApi) -> String {
        sample::rendered_with(report, OutputFormat::Policyreport, Style { report_api, ..Style::default() })
    }

    fn forbid_undeclared_fields(schema: &mut Value) {
        if let Some(object) = schema.as_object_mut() {
            if object.contains_key("properties") && !object.contains_key("additionalProperties") {
                object.insert("additionalProperties".to_string(), Value::Bool(false));
            }
            object.values_mut().for_each(forbid_undeclared_fields);
        } else if let Some(array) = schema.as_array_mut() {
            array.iter_mut().for_each(forbid_undeclared_fields);
        }
    }

    fn documents(yaml: &str) -> Vec<Value> {
        serde_yaml::Deserializer::from_str(yaml)
            .map(|document| Value::deserialize(document).expect("each document is YAML"))
            .collect()
    }

    fn validate(document: &Value) {
        let validator = jsonschema::validator_for(&report_schema(document)).expect("the CRD schema compiles");
        let errors: Vec<String> =
            validator.iter_errors(document).map(|e| format!("{} at {}", e, e.instance_path())).collect();
        assert!(errors.is_empty(), "invalid {}: {errors:#?}", document["kind"]);
    }

    #[test]
    fn one_report_per_namespace_and_one_for_the_cluster_all_valid_in_either_api() {
        let apis = [
            (ReportApi::Openreports, "openreports.io/v1alpha1", "Report", "ClusterReport"),
            (ReportApi::Wgpolicyk8s, "wgpolicyk8s.io/v1alpha2", "PolicyReport", "ClusterPolicyReport"),
        ];
        for (api, api_version, namespaced, cluster) in apis {
            let documents = documents(&rendered(&sample::mixed(), api));
            let reports: Vec<(&str, Option<&str>)> = documents
                .iter()
                .map(|d| (d["kind"].as_str().unwrap_or_default(), d["metadata"]["namespace"].as_str()))
                .collect();
            assert_eq!(
                reports,
                [(namespaced, Some("payments")), (namespaced, Some("shop")), (cluster, None)]
            );
            for document in &documents {
                assert_eq!(document["apiVersion"], api_version);
                validate(document);
            }
            // The engine is named once per openreports report, and in every result of both.
            let report_source = (api == ReportApi::Openreports).then_some("dpo");
            assert_eq!(documents[0]["source"].as_str(), report_source);
            assert_eq!(documents[0]["results"][0]["source"], "dpo");
        }
    }

    #[test]
    fn openreports_is_the_default_api() {
        let default = sample::rendered(&sample::mixed(), OutputFormat::Policyreport);
        assert_eq!(default, rendered(&sample::mixed(), ReportApi::Openreports));
    }

    #[test]
    fn schema_check_catches_undeclared_fields_and_bad_enums() {
        let yaml = sample::rendered(&sample::mixed(), OutputFormat::Policyreport);
        let document = documents(&yaml).remove(1);
        let validator =
            jsonschema::validator_for(&report_schema(&document)).expect("the CRD schema compiles");
        let mut misspelt = document.clone();
        misspelt["results"][0]["remediation"] = Value::from("top-level");
        assert!(!validator.is_valid(&misspelt));
        let mut bad_severity = document;
        bad_severity["results"][0]["severity"] = Value::from("urgent");
        assert!(!validator.is_valid(&bad_severity));
    }

    #[test]
    fn results_and_summary_of_a_namespace() {
        let yaml = sample::rendered(&sample::mixed(), OutputFormat::Policyreport);
        let shop = documents(&yaml).remove(1);
        let results = shop["results"].as_array().expect("results");
        let outcomes: Vec<(&str, &str, &str, &str)> = results
            .iter()
            .map(|r| {
                (
                    r["resources"][0]["name"].as_str().unwrap_or_default(),
                    r["policy"].as_str().unwrap_or_default(),
                    r["result"].as_str().unwrap_or_default(),
                    r["severity"].as_str().unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            outcomes,
            [
                ("web", "alb-http-to-https-redirection-check", "fail", "high"),
                ("web", "elbv2-acm-certificate-required", "pass", "high"),
                ("web", "elbv2-predefined-security-policy-ssl-check", "fail", "medium"),
                ("web", "acm-certificate-status", "skip", "high"),
                ("web", "acm-certificate-expiration-check", "skip", "high"),
                ("db", "kms-key-approved", "fail", "low"),
                ("db", "secretsmanager-using-cmk", "skip", "medium"),
                ("db", "acm-certificate-status", "skip", "high"),
            ]
        );
        assert_eq!(
            shop["summary"],
            serde_json::json!({"pass": 1, "fail": 3, "warn": 0, "error": 0, "skip": 4})
        );

        let redirect = &results[0];
        assert_eq!(redirect["rule"], "alb-http-to-https-redirection-check");
        assert_eq!(redirect["source"], "dpo");
        assert_eq!(redirect["message"], "Listener \"HTTP:80\" forwards <all> traffic & does not redirect.");
        assert_eq!(
            redirect["properties"]["remediation"],
            "Annotate: alb.ingress.kubernetes.io/ssl-redirect: '443'"
        );
        assert_eq!(redirect["properties"]["location"], "deploy/web ingress.yaml:12");
        assert_eq!(
            redirect["resources"][0],
            serde_json::json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "namespace": "shop", "name": "web"})
        );
        assert_eq!(
            redirect["timestamp"],
            serde_json::json!({"seconds": 1_740_830_400, "nanos": 500_000_000})
        );
        assert!(results[3]["message"].as_str().is_some_and(|m| m.contains("--aws")));
    }

    #[test]
    fn cluster_report_holds_cluster_scoped_resources() {
        let yaml = sample::rendered(&sample::mixed(), OutputFormat::Policyreport);
        let cluster = documents(&yaml).remove(2);
        let resources: Vec<&str> = cluster["results"]
            .as_array()
            .expect("results")
            .iter()
            .filter_map(|r| r["resources"][0]["name"].as_str())
            .collect();
        assert_eq!(resources, ["gp2", "gp2"]);
        assert_eq!(cluster["results"][0]["severity"], "critical");
        assert_eq!(cluster["summary"]["fail"], 1);
        assert_eq!(cluster["summary"]["skip"], 1);
    }

    #[test]
    fn namespaced_kind_without_namespace_goes_to_default() {
        let report = sample::report(vec![sample::object(
            sample::resource("networking.k8s.io/v1", "Ingress", None, "web"),
            "web.yaml",
            1,
            vec![crate::policy::Verdict::Judged({
                let mut judgement = crate::policy::Judgement::default();
                judgement.check(crate::policy::Rule::AlbHttpToHttpsRedirectionCheck);
                judgement
            })],
        )]);
        let documents = documents(&sample::rendered(&report, OutputFormat::Policyreport));
        assert_eq!(documents.len(), 1);
        assert_eq!(documents[0]["kind"], "Report");
        assert_eq!(documents[0]["metadata"]["namespace"], "default");
        validate(&documents[0]);
    }

    #[test]
    fn nothing_judged_writes_no_report() {
        assert_eq!(sample::rendered(&sample::report(Vec::new()), OutputFormat::Policyreport), "");
    }

    #[test]
    fn timestamps_keep_nanoseconds_non_negative() {
        let before_epoch: jiff::Timestamp = "1969-12-31T23:59:59.75Z".parse().expect("a valid timestamp");
        assert_eq!(Timestamp::of(before_epoch), Timestamp { seconds: -1, nanos: 750_000_000 });
    }
}
