//! Incremental evaluation: the units of a policy's world whose inputs did not change keep the
//! verdicts of the policy's previous evaluation; only the others are judged, gathering the AWS
//! facts they ask for.
//!
//! Kept verdicts are valid while the policy (uid, generation) and the engine's held AWS facts
//! (its epoch) are those they were judged with: held facts are never replaced within an epoch,
//! and a unit is kept only if every fact it read was settled (known, or known not to exist) —
//! one that read a failed or missing fact is judged again next time, which asks AWS again.

use crate::policy::Evaluation;
use crate::policy::facts::{
    CertificateFacts, ClusterFacts, EbsDefaultFacts, Fact, FactRecorder, FactSet, Facts, KmsKeyFacts,
    SecretFacts, VolumeFacts, Wanted, WebAclFacts,
};
use crate::policy::units::{Fingerprint, Judge, UnitPlan, UnitVerdicts};
use jiff::Timestamp;
use std::cell::Cell;
use std::collections::HashMap;

/// What kept verdicts hold for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Basis {
    pub uid: Option<String>,
    pub generation: Option<i64>,
    /// The reading of the engine's held facts (they are read afresh every reevaluation period).
    pub epoch: u64,
}

/// The verdicts of a policy's units, by fingerprint.
#[derive(Debug, Default)]
pub struct UnitCache {
    basis: Option<Basis>,
    verdicts: HashMap<Fingerprint, UnitVerdicts>,
}

/// One evaluation of a policy, unit by unit: [`Incremental::round`] as long as units want facts
/// (gathering them in between), then [`Incremental::finish`].
pub struct Incremental<J> {
    plan: UnitPlan<J>,
    basis: Basis,
    /// Each unit's verdicts: kept, judged, or (while pending) empty.
    verdicts: Vec<UnitVerdicts>,
    /// Whether each unit's verdicts may be kept for the next evaluation.
    keep: Vec<bool>,
    pending: Vec<usize>,
    judged: usize,
}

/// A finished evaluation.
pub struct Judged {
    pub evaluation: Evaluation,
    /// What to keep for the policy's next evaluation.
    pub cache: UnitCache,
    pub units: usize,
    /// Units judged in this evaluation; the others kept their verdicts.
    pub judged: usize,
}

impl<J: Judge> Incremental<J> {
    /// Starts an evaluation of `plan`, taking the verdicts `cache` holds for `basis`.
    pub fn new(plan: UnitPlan<J>, basis: Basis, cache: UnitCache) -> Self {
        let mut kept = if cache.basis.as_ref() == Some(&basis) { cache.verdicts } else { HashMap::new() };
        let mut verdicts = Vec::with_capacity(plan.units().len());
        let mut keep = Vec::with_capacity(plan.units().len());
        let mut pending = Vec::new();
        for (unit, fingerprint) in plan.units().iter().map(|u| u.fingerprint).enumerate() {
            let found = fingerprint.and_then(|fingerprint| kept.remove(&fingerprint));
            keep.push(found.is_some());
            match found {
                Some(found) => verdicts.push(found),
                None => {
                    verdicts.push(Vec::new());
                    pending.push(unit);
                }
            }
        }
        Incremental { judged: pending.len(), plan, basis, verdicts, keep, pending }
    }

    /// Judges the pending units over `facts`. A unit that found every fact it asked for is done;
    /// the others stay pending, and what they asked for is returned.
    pub fn round(&mut self, facts: &FactSet) -> Wanted {
        let mut wanted = Wanted::default();
        for unit in std::mem::take(&mut self.pending) {
            let recorder = FactRecorder::new(facts);
            let (verdicts, settled) = judge(&self.plan, unit, &recorder);
            let more = recorder.into_wanted();
            if more.is_empty() {
                self.done(unit, verdicts, settled);
            } else {
                wanted.merge(more);
                self.pending.push(unit);
            }
        }
        wanted
    }

    /// Judges what is still pending with the facts there are, and puts the evaluation together.
    pub fn finish(mut self, facts: &FactSet) -> Judged {
        for unit in std::mem::take(&mut self.pending) {
            let (verdicts, settled) = judge(&self.plan, unit, facts);
            self.done(unit, verdicts, settled);
        }
        let units = self.plan.units().len();
        let kept = (self.plan.units().iter())
            .zip(&self.verdicts)
            .zip(&self.keep)
            .filter_map(|((unit, verdicts), keep)| {
                Some((unit.fingerprint.filter(|_| *keep)?, verdicts.clone()))
            })
            .collect();
        Judged {
            units,
            judged: self.judged,
            cache: UnitCache { basis: Some(self.basis), verdicts: kept },
            evaluation: self.plan.assemble(self.verdicts),
        }
    }

    fn done(&mut self, unit: usize, verdicts: UnitVerdicts, settled: bool) {
        self.verdicts[unit] = verdicts;
        self.keep[unit] = settled;
    }
}

/// Judges one unit; true when every fact it read was settled.
fn judge<J: Judge>(plan: &UnitPlan<J>, unit: usize, facts: &dyn Facts) -> (UnitVerdicts, bool) {
    let watched = Watched { facts, unsettled: Cell::new(false) };
    let verdicts = plan.judge(unit, &watched);
    (verdicts, !watched.unsettled.get())
}

/// Facts that notice a lookup of one not known yet or whose gathering failed.
struct Watched<'f> {
    facts: &'f dyn Facts,
    unsettled: Cell<bool>,
}

impl Watched<'_> {
    fn note<T>(&self, fact: Fact<T>) -> Fact<T> {
        if matches!(fact, Fact::Unknown | Fact::Failed(_)) {
            self.unsettled.set(true);
        }
        fact
    }
}

impl Facts for Watched<'_> {
    fn now(&self) -> Timestamp {
        self.facts.now()
    }
    fn kms_key(&self, key: &str) -> Fact<&KmsKeyFacts> {
        self.note(self.facts.kms_key(key))
    }
    fn kms_key_rotation(&self, key: &str) -> Fact<&bool> {
        self.note(self.facts.kms_key_rotation(key))
    }
    fn certificate(&self, arn: &str) -> Fact<&CertificateFacts> {
        self.note(self.facts.certificate(arn))
    }
    fn certificates_for_host(&self, host: &str) -> Fact<Vec<&CertificateFacts>> {
        self.note(self.facts.certificates_for_host(host))
    }
    fn volume(&self, volume_id: &str) -> Fact<&VolumeFacts> {
        self.note(self.facts.volume(volume_id))
    }
    fn ebs_default(&self) -> Fact<&EbsDefaultFacts> {
        self.note(self.facts.ebs_default())
    }
    fn secret(&self, secret_id: &str) -> Fact<&SecretFacts> {
        self.note(self.facts.secret(secret_id))
    }
    fn eks_cluster(&self, name: &str) -> Fact<&ClusterFacts> {
        self.note(self.facts.eks_cluster(name))
    }
    fn web_acl(&self, arn: &str) -> Fact<&WebAclFacts> {
        self.note(self.facts.web_acl(arn))
    }
}

#[cfg(test)]
mod tests;
