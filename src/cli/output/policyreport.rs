//! Policy reports, as a multi-document YAML stream to `kubectl apply`: `openreports.io/v1alpha1`
//! (`Report`, `ClusterReport`), the successor Kyverno and Policy Reporter move to, or
//! `wgpolicyk8s.io/v1alpha2` (`PolicyReport`, `ClusterPolicyReport`). One namespaced report per
//! namespace, then one cluster report for cluster-scoped resources; the two APIs share the
//! result schema. Each rule judged on a resource is one result: `fail` per finding, `pass`, or
//! `skip` when it needed AWS facts.

use super::pieces::{self, OBJECTS_PER_PIECE};
use super::{NEEDS_AWS, Outcome, RuleOutcome, block_yaml, rule_outcomes};
use crate::api::{ResourceRef, Severity};
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
    for object in report.objects() {
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
    pieces::write_parts(&parts, out)
}

/// A part of the report stream: the head of a report (all but its results, which come last), or
/// the results of some of its objects.
enum Part<'a> {
    Head(Report<'a>),
    Results { results: Results<'a>, last: bool },
}

impl pieces::Part for Part<'_> {
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
mod tests;
