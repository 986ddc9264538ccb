//! What `dpo check` hands to its output formats.

use crate::api::{Finding, ResourceRef, Severity, SeverityCounts};
use crate::policy::{Rule, Verdict};
use std::collections::HashMap;
use std::sync::Arc;

/// Where an object came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceLocation {
    /// The path as given (or [`SourceLocation::STDIN`]).
    pub file: Arc<str>,
    /// 1-based line where the object's document starts.
    pub line: usize,
    /// 0-based index of the YAML document in the file.
    pub document: usize,
}

impl SourceLocation {
    /// The `file` of objects read from standard input.
    pub const STDIN: &str = "<stdin>";

    pub fn is_stdin(&self) -> bool {
        &*self.file == Self::STDIN
    }
}

/// The outcome of a `dpo check` run, ready to print.
#[derive(Clone, Debug, Default)]
pub struct CheckReport {
    /// Every object seen that some policy governs, with what each policy made of it, in input order.
    pub objects: Vec<CheckedObject>,
    /// All findings, most severe first.
    pub findings: Vec<Finding>,
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
        for finding in &self.findings {
            counts.add(finding.severity);
        }
        counts
    }

    /// Whether any finding is at or above `threshold` (exit code 1).
    pub fn fails(&self, threshold: Severity) -> bool {
        self.findings.iter().any(|f| f.severity >= threshold)
    }

    /// Where each resource came from, for formats that point at a line.
    pub fn locations(&self) -> HashMap<&ResourceRef, &SourceLocation> {
        self.objects.iter().map(|o| (&o.resource, &o.location)).collect()
    }
}
