//! EncryptedVolumePolicy as units: one per StorageClass with the PersistentVolumes of that class,
//! and the account's EBS encryption by default and the cluster's Secrets encryption when the
//! policy checks them.

use super::{Judge, Unit, UnitPlan, UnitVerdicts, Versions};
use crate::api::EncryptedVolumePolicy;
use crate::policy::storage::{judge_policy_itself, judge_storage_class, judge_volume, judges_itself};
use crate::policy::{Facts, Verdict, resource_ref};
use k8s_openapi::api::core::v1::PersistentVolume;
use k8s_openapi::api::storage::v1::StorageClass;
use std::collections::HashMap;
use std::iter;

/// The units of an EncryptedVolumePolicy: StorageClasses with their volumes, then the account
/// default and the cluster.
pub struct VolumeUnits<'a> {
    policy: &'a EncryptedVolumePolicy,
    classes: Vec<(&'a StorageClass, Vec<&'a PersistentVolume>)>,
}

impl Judge for VolumeUnits<'_> {
    fn judge(&self, unit: usize, facts: &dyn Facts) -> UnitVerdicts {
        let spec = &self.policy.spec;
        let Some((class, volumes)) = self.classes.get(unit) else {
            let own = judge_policy_itself(spec, &resource_ref(self.policy), facts);
            return vec![own.map(Verdict::Judged)];
        };
        let verdict = judge_storage_class(spec, class, facts);
        // Volumes are judged where the policy governs their class.
        let governed =
            spec.check_volumes && matches!(&verdict, Some(v) if !matches!(v, Verdict::NotApplicable(_)));
        let volumes = volumes.iter().map(|volume| governed.then(|| judge_volume(spec, volume, facts)));
        iter::once(verdict).chain(volumes).collect()
    }
}

/// Cuts an EncryptedVolumePolicy's world into units. Verdict slots are those of
/// `evaluate_volume_policy`: the StorageClasses in input order, the volumes in input order, then
/// the account default.
pub fn volume_plan<'a>(
    policy: &'a EncryptedVolumePolicy,
    classes: &[&'a StorageClass],
    volumes: &[&'a PersistentVolume],
) -> UnitPlan<VolumeUnits<'a>> {
    let volume_slot = |i: usize| classes.len() + i;
    // Class names are unique in a cluster; should two objects share one, the first class gets
    // the volumes.
    let mut class_of: HashMap<&str, usize> = HashMap::new();
    for (i, class) in classes.iter().enumerate() {
        class_of.entry(class.metadata.name.as_deref().unwrap_or_default()).or_insert(i);
    }
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); classes.len()];
    for (i, volume) in volumes.iter().enumerate() {
        let class = volume.spec.as_ref().and_then(|s| s.storage_class_name.as_deref()).unwrap_or_default();
        if let Some(&unit) = class_of.get(class) {
            members[unit].push(i);
        }
    }
    // A unit's volumes by name, whatever order the store lists them in.
    for bound in &mut members {
        bound.sort_by_key(|&v| volumes[v].metadata.name.as_deref());
    }

    // Volume policies read no objects every unit shares.
    let shared = Versions::default();
    let mut units: Vec<Unit> = classes
        .iter()
        .zip(&members)
        .enumerate()
        .map(|(i, (class, bound))| {
            let bound = bound.iter().map(|&v| (volume_slot(v), &volumes[v].metadata));
            Unit::new(&shared, iter::once((i, &class.metadata)).chain(bound))
        })
        .collect();
    let mut resources: Vec<_> =
        classes.iter().map(|o| resource_ref(*o)).chain(volumes.iter().map(|o| resource_ref(*o))).collect();
    if judges_itself(&policy.spec) {
        // It rests on AWS facts alone; the policy's own writes change nothing in it.
        units.push(Unit { fingerprint: shared.fingerprint(), slots: vec![resources.len()] });
        resources.push(resource_ref(policy));
    }
    let classes = classes
        .iter()
        .zip(members)
        .map(|(class, bound)| (*class, bound.into_iter().map(|v| volumes[v]).collect()))
        .collect();
    UnitPlan { judge: VolumeUnits { policy, classes }, units, resources, fixed: Vec::new() }
}
