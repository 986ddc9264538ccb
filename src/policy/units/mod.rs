//! A policy's world cut into units that are judged independently: an IngressGroup (or a lone
//! Ingress) or a Service for TlsIngressPolicy, a StorageClass with its bound volumes for
//! EncryptedVolumePolicy. A unit's verdicts depend only on its own objects, on objects every unit
//! shares (IngressClasses, their parameters, Namespaces), on the policy and on AWS facts, so a
//! caller that keeps verdicts by [`Fingerprint`] re-judges only the units whose objects changed.
//!
//! Judging every unit of a plan and assembling the verdicts gives exactly the evaluation of
//! `evaluate_tls_policy` or `evaluate_volume_policy`: the units run the same rules, and
//! [`UnitPlan::assemble`] lists verdicts in the same order.

#[cfg(test)]
pub(crate) mod testing;
mod tls;
mod volume;

pub use tls::{TlsObjects, TlsUnits, tls_plan};
pub use volume::{VolumeUnits, volume_plan};

use super::{Evaluation, Facts, Verdict};
use crate::api::ResourceRef;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::hash::{DefaultHasher, Hash, Hasher};

/// Identifies the inputs of a unit: the versions of its objects and of the objects all units share.
pub type Fingerprint = u64;

/// A unit's verdicts, one per object of the unit; `None` for an object the policy gives no
/// verdict (a StorageClass it does not select, a volume of a class it does not govern).
pub type UnitVerdicts = Vec<Option<Verdict>>;

/// Hashes the uid and resourceVersion of objects: the apiserver gives every write of an object a
/// new resourceVersion, so equal fingerprints mean unchanged objects. The order objects are added
/// in does not count: stores list them in no particular order.
#[derive(Clone, Debug)]
pub struct Versions {
    /// Sum of the objects' hashes.
    sum: u64,
    /// False once an object without a resourceVersion was added: one not read from an apiserver
    /// (a test's), whose changes cannot be told.
    versioned: bool,
}

impl Default for Versions {
    fn default() -> Self {
        Versions { sum: 0, versioned: true }
    }
}

impl Versions {
    pub fn add(&mut self, meta: &ObjectMeta) {
        match &meta.resource_version {
            Some(version) => {
                let mut hasher = DefaultHasher::new();
                (&meta.uid, version).hash(&mut hasher);
                self.sum = self.sum.wrapping_add(hasher.finish());
            }
            None => self.versioned = false,
        }
    }

    /// `None` when some object had no resourceVersion: such a unit is judged every time.
    pub fn fingerprint(&self) -> Option<Fingerprint> {
        self.versioned.then_some(self.sum)
    }
}

/// One unit: the fingerprint of its inputs and the verdict slots its objects fill. The objects
/// are in an order of their own (an IngressGroup's, names), so that equal fingerprints also mean
/// verdicts in the same order.
#[derive(Clone, Debug)]
pub struct Unit {
    pub fingerprint: Option<Fingerprint>,
    slots: Vec<usize>,
}

impl Unit {
    /// The unit of `members` (each with its verdict slot), whose inputs are theirs and `shared`.
    fn new<'m>(shared: &Versions, members: impl IntoIterator<Item = (usize, &'m ObjectMeta)>) -> Unit {
        let mut versions = shared.clone();
        let slots = members
            .into_iter()
            .map(|(slot, meta)| {
                versions.add(meta);
                slot
            })
            .collect();
        Unit { fingerprint: versions.fingerprint(), slots }
    }
}

/// Judges the units of one plan.
pub trait Judge {
    /// Judges unit `unit`: one entry per object of the unit, in the order of its slots.
    fn judge(&self, unit: usize, facts: &dyn Facts) -> UnitVerdicts;
}

/// A policy's world as units, and where their verdicts go in the evaluation.
#[derive(Debug)]
pub struct UnitPlan<J> {
    judge: J,
    units: Vec<Unit>,
    /// The resource of each verdict slot, in the order the evaluation lists verdicts.
    resources: Vec<ResourceRef>,
    /// Verdicts known without judging (an Ingress no ALB serves), by slot.
    fixed: Vec<(usize, Verdict)>,
}

impl<J: Judge> UnitPlan<J> {
    pub fn units(&self) -> &[Unit] {
        &self.units
    }

    pub fn judge(&self, unit: usize, facts: &dyn Facts) -> UnitVerdicts {
        let verdicts = self.judge.judge(unit, facts);
        debug_assert_eq!(verdicts.len(), self.units[unit].slots.len(), "one verdict per slot of unit {unit}");
        verdicts
    }

    /// The evaluation made of each unit's verdicts (`verdicts[i]` those of unit `i`).
    pub fn assemble(self, verdicts: Vec<UnitVerdicts>) -> Evaluation {
        let mut slots: Vec<Option<Verdict>> = vec![None; self.resources.len()];
        for (slot, verdict) in self.fixed {
            slots[slot] = Some(verdict);
        }
        for (unit, unit_verdicts) in self.units.iter().zip(verdicts) {
            for (&slot, verdict) in unit.slots.iter().zip(unit_verdicts) {
                slots[slot] = verdict;
            }
        }
        let mut evaluation = Evaluation::default();
        for (resource, verdict) in self.resources.into_iter().zip(slots) {
            if let Some(verdict) = verdict {
                evaluation.push(resource, verdict);
            }
        }
        evaluation
    }

    /// Every unit judged over `facts`: the evaluation the whole-world functions give.
    #[cfg(test)]
    pub fn evaluate(self, facts: &dyn Facts) -> Evaluation {
        let verdicts = (0..self.units.len()).map(|unit| self.judge(unit, facts)).collect();
        self.assemble(verdicts)
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{TlsWorld, VolumeWorld, set_ssl_policy, touch};
    use super::*;
    use crate::api::{EncryptedVolumePolicy, TlsIngressPolicySpec};
    use crate::policy::FactSet;
    use crate::policy::ingress::AlbDefaults;
    use serde_json::json;

    fn tls_policies() -> Vec<TlsIngressPolicySpec> {
        [
            json!({}),
            json!({"namespaceSelector": {"matchLabels": {"team": "shop"}}}),
            json!({"ingressSelector": {"matchLabels": {"tier": "dev"}}, "includeServices": false}),
            json!({"minTlsVersion": "1.3", "requireHttpsRedirect": false}),
        ]
        .into_iter()
        .map(|spec| serde_json::from_value(spec).unwrap())
        .collect()
    }

    fn volume_policies() -> Vec<EncryptedVolumePolicy> {
        [
            json!({}),
            json!({"storageClassSelector": {"matchLabels": {"tier": "dev"}}}),
            json!({"checkVolumes": false, "checkAccountDefault": false}),
            json!({"requireCustomerManagedKey": true, "requireEncryption": false}),
        ]
        .into_iter()
        .map(|spec| {
            serde_json::from_value(json!({
                "apiVersion": "dpo.dev/v1alpha1", "kind": "EncryptedVolumePolicy",
                "metadata": {"name": "ebs"}, "spec": spec,
            }))
            .unwrap()
        })
        .collect()
    }

    #[test]
    fn judging_every_unit_is_the_whole_world_evaluation() {
        let world = TlsWorld::sample();
        let defaults = AlbDefaults::default();
        for spec in tls_policies() {
            for facts in [TlsWorld::facts(), FactSet::default()] {
                let whole = world.evaluate(&spec, &facts);
                assert!(!whole.verdicts.is_empty());
                assert_eq!(world.plan(&spec, &defaults).evaluate(&facts), whole, "{spec:?}");
            }
        }
        let world = VolumeWorld::sample();
        for policy in volume_policies() {
            for facts in [VolumeWorld::facts(), FactSet::default()] {
                let whole = world.evaluate(&policy, &facts);
                assert_eq!(world.plan(&policy).evaluate(&facts), whole, "{:?}", policy.spec);
            }
        }
        // The sample worlds have findings and verdicts of every kind to place.
        let whole = TlsWorld::sample().evaluate(&TlsIngressPolicySpec::default(), &TlsWorld::facts());
        assert!(whole.findings().count() > 0 && !whole.exemptions().is_empty());
        assert!(whole.verdicts.iter().any(|v| matches!(v.verdict, Verdict::NotApplicable(_))));
    }

    fn fingerprints<J: Judge>(plan: &UnitPlan<J>) -> Vec<Option<Fingerprint>> {
        plan.units().iter().map(|unit| unit.fingerprint).collect()
    }

    /// Positions of the fingerprints that differ.
    fn changed(before: &[Option<Fingerprint>], after: &[Option<Fingerprint>]) -> Vec<usize> {
        assert_eq!(before.len(), after.len());
        (0..before.len()).filter(|&i| before[i] != after[i]).collect()
    }

    #[test]
    fn tls_units_are_albs_services_and_gateways_and_share_classes_and_namespaces() {
        let (spec, defaults) = (TlsIngressPolicySpec::default(), AlbDefaults::default());
        let mut world = TlsWorld::sample();
        let before = fingerprints(&world.plan(&spec, &defaults));
        // Groups g1 and g2, the lone ALB Ingresses f, g and i (h is nginx's), two Services, two
        // Gateways.
        assert_eq!(before.len(), 9);
        assert!(before.iter().all(Option::is_some));

        set_ssl_policy(&mut world.ingresses[1], "ELBSecurityPolicy-TLS13-1-3-2021-06");
        assert_eq!(changed(&before, &fingerprints(&world.plan(&spec, &defaults))), [0]);
        touch(&mut world.services[0].metadata);
        assert_eq!(changed(&before, &fingerprints(&world.plan(&spec, &defaults))), [0, 5]);
        // A route is an input of the Gateway it names only.
        touch(&mut world.routes[0].metadata);
        assert_eq!(changed(&before, &fingerprints(&world.plan(&spec, &defaults))), [0, 5, 7]);
        touch(&mut world.classes[1].metadata);
        assert_eq!(
            changed(&before, &fingerprints(&world.plan(&spec, &defaults))),
            [0, 1, 2, 3, 4, 5, 6, 7, 8]
        );
        let after_classes = fingerprints(&world.plan(&spec, &defaults));
        touch(&mut world.gateway_classes[1].metadata);
        assert_eq!(changed(&after_classes, &fingerprints(&world.plan(&spec, &defaults))).len(), 9);

        world.namespaces[0].metadata.resource_version = None;
        assert!(fingerprints(&world.plan(&spec, &defaults)).iter().all(Option::is_none));
    }

    #[test]
    fn volume_units_are_classes_with_their_volumes() {
        let policy = &volume_policies()[0];
        let mut world = VolumeWorld::sample();
        let before = fingerprints(&world.plan(policy));
        // Four classes and the account default.
        assert_eq!(before.len(), 5);
        touch(&mut world.volumes[2].metadata);
        assert_eq!(changed(&before, &fingerprints(&world.plan(policy))), [0]);
        // A volume moved to another class changes both.
        world.volumes[1].spec.as_mut().unwrap().storage_class_name = Some("gp3".into());
        touch(&mut world.volumes[1].metadata);
        assert_eq!(changed(&before, &fingerprints(&world.plan(policy))), [0, 1]);
    }

    fn meta(uid: &str, version: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            uid: Some(uid.into()),
            resource_version: version.map(Into::into),
            ..ObjectMeta::default()
        }
    }

    fn fingerprint(objects: &[&ObjectMeta]) -> Option<Fingerprint> {
        let mut versions = Versions::default();
        objects.iter().for_each(|meta| versions.add(meta));
        versions.fingerprint()
    }

    #[test]
    fn fingerprints_follow_object_versions() {
        let (a1, a2, b1) = (meta("a", Some("1")), meta("a", Some("2")), meta("b", Some("1")));
        assert_eq!(fingerprint(&[&a1]), fingerprint(&[&a1.clone()]));
        assert_ne!(fingerprint(&[&a1]), fingerprint(&[&a2]));
        // The same version of another object (recreated under the same name) is another input.
        assert_ne!(fingerprint(&[&a1]), fingerprint(&[&b1]));
        assert_ne!(fingerprint(&[&a1]), fingerprint(&[&a1, &b1]));
        assert_eq!(fingerprint(&[&a1, &b1]), fingerprint(&[&b1, &a1]));
        assert_eq!(fingerprint(&[&a1, &meta("b", None)]), None);
    }
}
