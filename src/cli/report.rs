//! What `dpo check` hands to its output formats.

use super::input::InputError;
use crate::api::{Finding, ResourceRef, Severity, SeverityCounts};
use crate::policy::{Rule, Verdict};
use serde::Serialize;
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
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LocatedFinding {
    #[serde(flatten)]
    pub finding: Finding,
    #[serde(flatten)]
    pub location: SourceLocation,
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
    /// Every object seen that some policy governs, with what each policy made of it, in input order.
    pub objects: Vec<CheckedObject>,
    /// All findings, most severe first.
    pub findings: Vec<LocatedFinding>,
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
    pub fn by_severity(&self) -> SeverityCounts {
        let mut counts = SeverityCounts::default();
        for located in &self.findings {
            counts.add(located.finding.severity);
        }
        counts
    }

    /// Whether any finding is at or above `threshold` (exit code 1).
    pub fn fails(&self, threshold: Severity) -> bool {
        self.findings.iter().any(|f| f.finding.severity >= threshold)
    }

    /// The objects of the inputs some policy had a verdict on (not the built-in policies).
    pub fn resources(&self) -> usize {
        self.objects.iter().filter(|o| !o.location.is_built_in()).count()
    }
}
