//! What `dpo check` hands to its output formats.

use super::input::InputError;
use crate::api::{Finding, ResourceRef, Severity, SeverityCounts};
use crate::policy::{Rule, Verdict, finding_order};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Where an object came from.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceLocation {
    /// The path as given (or [`SourceLocation::STDIN`]).
    #[serde(serialize_with = "as_str")]
    pub file: Arc<str>,
    /// 1-based line where the object's document starts.
    pub line: usize,
    /// 0-based index of the YAML document in the file.
    #[serde(rename = "documentIndex")]
    pub document: usize,
}

impl SourceLocation {
    /// The `file` of objects read from standard input.
    pub const STDIN: &str = "<stdin>";

    /// The `file` of findings against the built-in default policies.
    pub const BUILT_IN: &str = "<built-in>";

    pub fn is_stdin(&self) -> bool {
        &*self.file == Self::STDIN
    }

    pub fn is_built_in(&self) -> bool {
        &*self.file == Self::BUILT_IN
    }
}

impl std::fmt::Display for SourceLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

fn as_str<S: serde::Serializer>(file: &Arc<str>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(file)
}

/// A finding and the document of the object it is about.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct LocatedFinding<'a> {
    #[serde(flatten)]
    pub finding: &'a Finding,
    #[serde(flatten)]
    pub location: &'a SourceLocation,
}

/// Where a finding of the report is held: its object, the verdict, the finding in it. The
/// findings stay in the verdicts that found them; the report orders them without a copy.
#[derive(Clone, Copy, Debug)]
struct FindingAt {
    object: usize,
    verdict: usize,
    finding: usize,
}

/// An object of a kind the policies judge that could not be judged, and why: an API version
/// dpo does not read, or an object it depends on that is not among the inputs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NotJudged {
    pub resource: ResourceRef,
    #[serde(flatten)]
    pub location: SourceLocation,
    pub reason: String,
}

/// Something worth knowing about the inputs that changes no verdict.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Warning {
    pub message: String,
    /// The documents it concerns.
    pub locations: Vec<SourceLocation>,
}

/// The outcome of a `dpo check` run, ready to print.
#[derive(Clone, Debug, Default)]
pub struct CheckReport {
    /// Every object seen that some policy governs, with what each policy made of it, in input
    /// order. Never changed after [`CheckReport::of`]: `findings` points into it.
    objects: Vec<CheckedObject>,
    /// Every finding of `objects`, most severe first (see [`CheckReport::findings`]).
    findings: Vec<FindingAt>,
    /// Objects the policies would govern that could not be judged, in input order.
    pub not_judged: Vec<NotJudged>,
    pub warnings: Vec<Warning>,
    /// Inputs that could not be read, reported with `--keep-going`.
    pub input_errors: Vec<InputError>,
    /// Rules that needed AWS facts and were not judged, with how many objects each was skipped for.
    pub skipped: Vec<(Rule, usize)>,
    /// When the check ran, for formats that stamp their results; `None` stamps the time of rendering.
    pub checked_at: Option<jiff::Timestamp>,
}

/// One object of the input and the policies' verdicts on it.
#[derive(Clone, Debug)]
pub struct CheckedObject {
    pub resource: ResourceRef,
    pub location: SourceLocation,
    pub verdicts: Vec<Verdict>,
}

impl CheckReport {
    /// The report of `objects`: their findings, most severe first, and how many objects each
    /// rule was skipped for. The rest is left for the caller to fill.
    pub fn of(objects: Vec<CheckedObject>) -> CheckReport {
        let mut findings = Vec::new();
        let mut skipped = BTreeMap::new();
        for (object_index, object) in objects.iter().enumerate() {
            for (verdict_index, verdict) in object.verdicts.iter().enumerate() {
                let Verdict::Judged(judgement) = verdict else { continue };
                findings.extend((0..judgement.findings.len()).map(|finding| FindingAt {
                    object: object_index,
                    verdict: verdict_index,
                    finding,
                }));
                for rule in &judgement.skipped {
                    *skipped.entry(*rule).or_insert(0) += 1;
                }
            }
        }
        let located = |at: &FindingAt| located(&objects, *at);
        findings.sort_by(|a, b| {
            let (a, b) = (located(a), located(b));
            finding_order(a.finding, b.finding).then_with(|| a.location.cmp(b.location))
        });
        // Two policies may find the same thing.
        findings.dedup_by(|a, b| located(a) == located(b));
        CheckReport { objects, findings, skipped: skipped.into_iter().collect(), ..CheckReport::default() }
    }

    /// Every object some policy had a verdict on, in input order, with policies read elsewhere
    /// last.
    pub fn objects(&self) -> &[CheckedObject] {
        &self.objects
    }

    /// Every finding, most severe first.
    pub fn findings(&self) -> impl ExactSizeIterator<Item = LocatedFinding<'_>> + Clone {
        self.findings.iter().map(|at| located(&self.objects, *at))
    }

    pub fn by_severity(&self) -> SeverityCounts {
        let mut counts = SeverityCounts::default();
        for located in self.findings() {
            counts.add(located.finding.severity);
        }
        counts
    }

    /// Whether any finding is at or above `threshold` (exit code 1).
    pub fn fails(&self, threshold: Severity) -> bool {
        self.findings().any(|f| f.finding.severity >= threshold)
    }

    /// The objects of the inputs some policy had a verdict on (not the built-in policies).
    pub fn resources(&self) -> usize {
        self.objects.iter().filter(|o| !o.location.is_built_in()).count()
    }
}

fn located(objects: &[CheckedObject], at: FindingAt) -> LocatedFinding<'_> {
    let object = &objects[at.object];
    let findings = match &object.verdicts[at.verdict] {
        Verdict::Judged(judgement) => judgement.findings.as_slice(),
        Verdict::NotApplicable(_) | Verdict::NotJudged(_) | Verdict::Exempt(_) => &[],
    };
    LocatedFinding { finding: &findings[at.finding], location: &object.location }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Judgement;

    fn object(name: &str, line: usize, verdicts: Vec<Verdict>) -> CheckedObject {
        CheckedObject {
            resource: ResourceRef {
                api_version: "storage.k8s.io/v1".into(),
                kind: "StorageClass".into(),
                namespace: None,
                name: name.into(),
            },
            location: SourceLocation { file: "storage.yaml".into(), line, document: line - 1 },
            verdicts,
        }
    }

    fn judged(object: &CheckedObject, rules: &[Rule], skipped: &[Rule]) -> Verdict {
        let mut judgement = Judgement::default();
        for rule in rules {
            judgement.violation(
                *rule,
                &object.resource,
                format!("{} fails", object.resource.name),
                "fix".into(),
            );
        }
        judgement.skipped = skipped.to_vec();
        Verdict::Judged(judgement)
    }

    #[test]
    fn findings_are_ordered_most_severe_first_and_one_found_by_two_policies_counts_once() {
        let mut gp2 = object("gp2", 1, Vec::new());
        let mut fast = object("fast", 2, Vec::new());
        // Two policies judge gp2 and find the same thing.
        gp2.verdicts = vec![
            judged(&gp2, &[Rule::StorageclassEncrypted], &[Rule::CmkBackingKeyRotationEnabled]),
            judged(&gp2, &[Rule::StorageclassEncrypted], &[]),
        ];
        fast.verdicts = vec![
            Verdict::NotApplicable("not EBS".into()),
            judged(
                &fast,
                &[Rule::StorageclassUsingCmk, Rule::StorageclassEncrypted],
                &[Rule::CmkBackingKeyRotationEnabled],
            ),
        ];
        let report = CheckReport::of(vec![gp2, fast]);
        let found: Vec<(&str, &str, usize)> = report
            .findings()
            .map(|f| (f.finding.rule.as_str(), &*f.finding.resource.name, f.location.line))
            .collect();
        let (encrypted, approved) = (Rule::StorageclassEncrypted.id(), Rule::StorageclassUsingCmk.id());
        assert!(Rule::StorageclassEncrypted.severity() > Rule::StorageclassUsingCmk.severity());
        assert_eq!(found, [(encrypted, "fast", 2), (encrypted, "gp2", 1), (approved, "fast", 2)]);
        assert_eq!(report.skipped, [(Rule::CmkBackingKeyRotationEnabled, 2)]);
        assert!(report.fails(Rule::StorageclassEncrypted.severity()));
    }
}
