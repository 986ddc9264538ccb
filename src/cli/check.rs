//! `dpo check`: objects in, findings out. The same policy code the controllers run.

mod facts;
mod scope;
mod stream;

use super::input::{InputError, Inputs, Located, Object};
use super::parallel::on_every_core;
use super::report::{CheckReport, CheckedObject, NotJudged, SourceLocation, Warning};
use crate::api::{EncryptedVolumePolicy, ProtectedSecret, ResourceRef, TlsIngressPolicy};
use crate::policy::ingress::{
    AlbDefaults, AutoModeIngressClassParams, GatewayInventory, IngressClassParams, IngressInventory,
    evaluate_tls_policy,
};
use crate::policy::secret::{judge_secret, validate_spec};
use crate::policy::storage::evaluate_volume_policy;
use crate::policy::{Evaluation, Facts, Verdict, exemption, resource_ref, untrusted_policy};
use k8s_openapi::api::core::v1::{Namespace, PersistentVolume, Service};
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use k8s_openapi::api::storage::v1::StorageClass;
use rustc_hash::FxHashMap;

pub use facts::gather_facts;
pub use scope::Context;
pub use stream::{Checked, check_listing};

/// Which policies count in a `dpo check` run.
#[derive(Clone, Copy, Debug)]
pub enum Policies<'a> {
    /// Those among the inputs; for a kind with none, the built-in defaults.
    FromInputs,
    /// Only these, read from `--policy` files (and the built-in defaults for a kind they lack);
    /// policies among the inputs are `policy-in-input` findings.
    Trusted(&'a [Located]),
}

/// How one `dpo check` run judges: the policies, the reach of cross-object resolution, the load
/// balancer controller's settings.
#[derive(Clone, Copy, Debug)]
pub struct Settings<'a> {
    pub policies: Policies<'a>,
    pub context: Context,
    pub alb: &'a AlbDefaults,
}

/// The objects one evaluation sees, sorted by kind.
#[derive(Default)]
struct Inventory<'a> {
    storage_classes: Vec<&'a StorageClass>,
    persistent_volumes: Vec<&'a PersistentVolume>,
    ingresses: Vec<&'a Ingress>,
    ingress_classes: Vec<&'a IngressClass>,
    ingress_class_params: Vec<&'a IngressClassParams>,
    auto_mode_class_params: Vec<&'a AutoModeIngressClassParams>,
    services: Vec<&'a Service>,
    namespaces: Vec<&'a Namespace>,
    gateways: GatewayInventory<'a>,
}

impl<'a> Inventory<'a> {
    fn of(objects: impl IntoIterator<Item = &'a Located>) -> Self {
        let mut inventory = Inventory::default();
        for located in objects {
            match &located.object {
                Object::StorageClass(o) => inventory.storage_classes.push(o),
                Object::PersistentVolume(o) => inventory.persistent_volumes.push(o),
                Object::Ingress(o) => inventory.ingresses.push(o),
                Object::IngressClass(o) => inventory.ingress_classes.push(o),
                Object::IngressClassParams(o) => inventory.ingress_class_params.push(o),
                Object::AutoModeIngressClassParams(o) => inventory.auto_mode_class_params.push(o),
                Object::Service(o) => inventory.services.push(o),
                Object::Namespace(o) => inventory.namespaces.push(o),
                Object::Gateway(o) => inventory.gateways.gateways.push(o),
                Object::HttpRoute(o) => inventory.gateways.http_routes.push(o),
                Object::GatewayClass(o) => inventory.gateways.gateway_classes.push(o),
                Object::LoadBalancerConfiguration(o) => {
                    inventory.gateways.load_balancer_configurations.push(o)
                }
                Object::ProtectedSecret(_)
                | Object::EncryptedVolumePolicy(_)
                | Object::TlsIngressPolicy(_) => {}
            }
        }
        inventory
    }

    fn evaluate(
        &self,
        policies: &ApplicablePolicies<'_>,
        facts: &dyn Facts,
        alb: &AlbDefaults,
    ) -> Vec<Evaluation> {
        let volumes = policies.volume.iter().map(|(policy, _)| {
            evaluate_volume_policy(policy, &self.storage_classes, &self.persistent_volumes, facts)
        });
        let ingress_inventory = IngressInventory {
            ingresses: &self.ingresses,
            ingress_classes: &self.ingress_classes,
            ingress_class_params: &self.ingress_class_params,
            auto_mode_class_params: &self.auto_mode_class_params,
            services: &self.services,
            namespaces: &self.namespaces,
        };
        let tls = policies.tls.iter().map(|(policy, _)| {
            evaluate_tls_policy(&policy.spec, &ingress_inventory, &self.gateways, facts, alb)
        });
        volumes.chain(tls).collect()
    }
}

/// A document's place in the input order, which the report keeps whatever order it is judged in.
type Key = u64;

/// Where an applied policy was read.
#[derive(Clone, Debug)]
enum Origin {
    /// A document of the inputs.
    Input(Key),
    /// A `--policy` file.
    Trusted(SourceLocation),
    BuiltIn,
}

/// The policies applied, each with where it was read.
struct ApplicablePolicies<'a> {
    volume: Vec<(&'a EncryptedVolumePolicy, Origin)>,
    tls: Vec<(&'a TlsIngressPolicy, Origin)>,
}

/// The built-in policies, for a kind no applied policy has.
struct BuiltIn {
    volume: EncryptedVolumePolicy,
    tls: TlsIngressPolicy,
}

impl BuiltIn {
    fn new() -> Self {
        BuiltIn {
            volume: built_in(EncryptedVolumePolicy::new("", Default::default())),
            tls: built_in(TlsIngressPolicy::new("", Default::default())),
        }
    }
}

fn built_in<K: kube::Resource<DynamicType = ()>>(spec: K) -> K {
    let mut object = spec;
    object.meta_mut().name = Some("built-in".to_string());
    object
}

impl<'a> ApplicablePolicies<'a> {
    /// `inputs`: the policies among the inputs, by key (other documents are passed over).
    fn new(
        inputs: impl IntoIterator<Item = (Key, &'a Located)>,
        policies: Policies<'a>,
        built_in: &'a BuiltIn,
    ) -> Self {
        let mut found = ApplicablePolicies { volume: Vec::new(), tls: Vec::new() };
        let mut add = |located: &'a Located, origin: Origin| match &located.object {
            Object::EncryptedVolumePolicy(o) => found.volume.push((o, origin)),
            Object::TlsIngressPolicy(o) => found.tls.push((o, origin)),
            _ => {}
        };
        match policies {
            Policies::FromInputs => inputs.into_iter().for_each(|(key, o)| add(o, Origin::Input(key))),
            Policies::Trusted(trusted) => {
                trusted.iter().for_each(|o| add(o, Origin::Trusted(o.location.clone())));
            }
        }
        if found.volume.is_empty() {
            found.volume.push((&built_in.volume, Origin::BuiltIn));
        }
        if found.tls.is_empty() {
            found.tls.push((&built_in.tls, Origin::BuiltIn));
        }
        found
    }

    fn origins(&self) -> impl Iterator<Item = &Origin> {
        self.volume.iter().map(|(_, o)| o).chain(self.tls.iter().map(|(_, o)| o))
    }
}

/// What judging documents gave: each judged document with its verdicts, and the ProtectedSecrets
/// whose spec is unusable, by key.
#[derive(Default)]
struct Judged {
    documents: Vec<(Key, CheckedObject)>,
    errors: Vec<(Key, InputError)>,
}

impl Judged {
    /// All of `parts`, in room made for exactly them.
    fn concat(parts: impl IntoIterator<Item = Judged>) -> Judged {
        let parts: Vec<Judged> = parts.into_iter().collect();
        let mut all = Judged::default();
        all.documents.reserve_exact(parts.iter().map(|part| part.documents.len()).sum());
        for part in parts {
            all.documents.extend(part.documents);
            all.errors.extend(part.errors);
        }
        all
    }
}

/// Every document's verdicts in input order (by key), and those of policies read elsewhere.
struct Ledger {
    documents: Vec<(Key, CheckedObject)>,
    others: Vec<CheckedObject>,
}

/// A verdict on a document. Most documents get one or two, each held until the report is
/// written: room for exactly those.
fn push(verdicts: &mut Vec<Verdict>, verdict: Verdict) {
    verdicts.reserve_exact(1);
    verdicts.push(verdict);
}

impl Ledger {
    fn record(&mut self, origin: &Origin, resource: ResourceRef, verdict: Verdict) {
        let location = match origin {
            Origin::Input(key) => {
                let index = self
                    .documents
                    .binary_search_by_key(key, |(key, _)| *key)
                    .expect("a policy of the inputs is a document");
                return push(&mut self.documents[index].1.verdicts, verdict);
            }
            Origin::Trusted(location) => location.clone(),
            Origin::BuiltIn => SourceLocation { file: SourceLocation::BUILT_IN.into(), line: 1, document: 0 },
        };
        match self.others.iter_mut().find(|o| o.resource == resource && o.location == location) {
            Some(object) => object.verdicts.push(verdict),
            None => self.others.push(CheckedObject { resource, location, verdicts: vec![verdict] }),
        }
    }

    /// Whether some StorageClass of the inputs was judged.
    fn judged_a_storage_class(&self) -> bool {
        self.documents
            .iter()
            .any(|(_, object)| object.resource.kind == "StorageClass" && is_judged(&object.verdicts))
    }
}

/// Runs every policy over the objects, each document judged where it stands. ProtectedSecrets
/// whose spec is unusable come back as input errors, since nothing could be judged about them.
pub fn check(
    inputs: &Inputs,
    settings: Settings<'_>,
    facts: &(dyn Facts + Sync),
) -> (CheckReport, Vec<InputError>) {
    let view: Vec<(Key, &Located)> =
        inputs.objects.iter().enumerate().map(|(index, located)| (index as Key, located)).collect();
    let built_in = BuiltIn::new();
    let policies = ApplicablePolicies::new(view.iter().copied(), settings.policies, &built_in);
    let judged = judge(&view, |_| true, &policies, settings, facts, Spread::EveryCore);
    finish(judged, &policies, settings, facts, (inputs.not_judged.clone(), inputs.warnings.clone()))
}

/// Whether [`judge`] spreads its units over every core, or leaves that to its caller.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Spread {
    EveryCore,
    OneCore,
}

/// Judges the documents of `view` that `judged` picks out (by position); the others are there to
/// be resolved against. `view` is in input order.
fn judge(
    view: &[(Key, &Located)],
    judged: impl Fn(usize) -> bool + Sync,
    policies: &ApplicablePolicies<'_>,
    settings: Settings<'_>,
    facts: &(dyn Facts + Sync),
    spread: Spread,
) -> Judged {
    let objects: Vec<&Located> = view.iter().map(|(_, located)| *located).collect();
    let mut verdicts: Vec<Vec<Verdict>> = vec![Vec::new(); objects.len()];
    let mut errors = Vec::new();
    let mut candidates = Vec::new();
    for (index, located) in objects.iter().enumerate() {
        match &located.object {
            Object::ProtectedSecret(secret) if judged(index) => {
                match judge_protected_secret(secret, located, facts) {
                    Ok(verdict) => push(&mut verdicts[index], verdict),
                    Err(spec_errors) => errors.extend(spec_errors.into_iter().map(|e| (view[index].0, e))),
                }
            }
            Object::ProtectedSecret(_) => {}
            object => match (settings.policies, object.policy()) {
                // Judged, never applied.
                (Policies::Trusted(_), Some((resource, meta))) if judged(index) => {
                    let origin = located.location.to_string();
                    push(&mut verdicts[index], untrusted_policy(&resource, meta, &origin));
                }
                (_, Some(_)) => {}
                (_, None) => candidates.push(index),
            },
        }
    }

    // Each document's identity, made once: units, verdicts and the report all look documents up by it.
    let identities: Vec<ResourceRef> = objects.iter().map(|located| located.object.resource()).collect();
    let units = scope::units(&objects, &identities, &candidates, settings.context, &judged);
    let judge_unit = |unit: &scope::Unit| {
        let judged: FxHashMap<&ResourceRef, usize> =
            unit.judged.iter().map(|&index| (&identities[index], index)).collect();
        let inventory = Inventory::of(unit.visible().into_iter().map(|index| objects[index]));
        let evaluations = inventory.evaluate(policies, facts, settings.alb);
        // Context documents are judged in their own unit; policies just below.
        let verdicts = evaluations.into_iter().flat_map(|evaluation| evaluation.verdicts);
        verdicts
            .filter_map(|object| Some((*judged.get(&object.resource)?, object.verdict)))
            .collect::<Vec<_>>()
    };
    let per_unit = match spread {
        Spread::EveryCore => on_every_core(&units, judge_unit),
        Spread::OneCore => units.iter().map(judge_unit).collect(),
    };
    for (index, verdict) in per_unit.into_iter().flatten() {
        push(&mut verdicts[index], verdict);
    }
    let documents = identities
        .into_iter()
        .zip(verdicts)
        .enumerate()
        .filter(|&(index, _)| judged(index))
        .map(|(index, (resource, verdicts))| {
            let location = objects[index].location.clone();
            (view[index].0, CheckedObject { resource, location, verdicts })
        })
        .collect();
    Judged { documents, errors }
}

/// Completes the report from every document's verdicts: the policies' verdicts on themselves, the
/// summary, and what was said of the inputs while they were read (`said`: documents not judged
/// and warnings, in input order).
fn finish(
    judged: Judged,
    policies: &ApplicablePolicies<'_>,
    settings: Settings<'_>,
    facts: &dyn Facts,
    said: (Vec<NotJudged>, Vec<Warning>),
) -> (CheckReport, Vec<InputError>) {
    let Judged { mut documents, mut errors } = judged;
    documents.sort_unstable_by_key(|(key, _)| *key);
    errors.sort_by_key(|(key, _)| *key);
    let mut ledger = Ledger { documents, others: Vec::new() };

    // A policy's verdict on itself depends on no object: judged once, over nothing. The built-in
    // policy judges the account's EBS default only for a run that has a StorageClass to guard.
    let own = Inventory::default().evaluate(policies, facts, settings.alb);
    let guards_storage = ledger.judged_a_storage_class();
    for (evaluation, origin) in own.into_iter().zip(policies.origins()) {
        if matches!(origin, Origin::BuiltIn) && !guards_storage {
            continue;
        }
        for object in evaluation.verdicts {
            ledger.record(origin, object.resource, object.verdict);
        }
    }

    let repeated = duplicates(&ledger.documents);
    let mut report = assemble(ledger);
    let (not_judged, warnings) = said;
    report.not_judged.splice(0..0, not_judged);
    report.warnings.extend(warnings);
    report.warnings.extend(repeated);
    (report, errors.into_iter().map(|(_, error)| error).collect())
}

fn judge_protected_secret(
    secret: &ProtectedSecret,
    located: &Located,
    facts: &dyn Facts,
) -> Result<Verdict, Vec<InputError>> {
    let resource = resource_ref(secret);
    let spec_errors = validate_spec(&secret.spec);
    if !spec_errors.is_empty() {
        return Err(spec_errors
            .into_iter()
            .map(|e| InputError {
                location: located.location.clone(),
                message: format!("ProtectedSecret {}: {e}", resource.name),
            })
            .collect());
    }
    Ok(match exemption(&secret.metadata) {
        Some(reason) => Verdict::Exempt(reason.to_string()),
        None => Verdict::Judged(judge_secret(&resource, &secret.spec, facts)),
    })
}
/// Keeps the documents some policy had a verdict on, in input order with policies read elsewhere
/// last, and sums them up.
fn assemble(ledger: Ledger) -> CheckReport {
    let mut documents = ledger.documents;
    documents.retain(|(_, object)| !object.verdicts.is_empty());
    // Collected in place: the documents are most of what the report holds.
    let mut checked: Vec<CheckedObject> = documents.into_iter().map(|(_, object)| object).collect();
    checked.extend(ledger.others);
    let mut report = CheckReport::of(checked);
    let mut not_judged: Vec<NotJudged> = Vec::new();
    for object in report.objects() {
        // Another policy may judge what this one could not; said once per document.
        if is_judged(&object.verdicts) {
            continue;
        }
        let reason = object.verdicts.iter().find_map(|verdict| match verdict {
            Verdict::NotJudged(reason) => Some(reason),
            Verdict::Judged(_) | Verdict::NotApplicable(_) | Verdict::Exempt(_) => None,
        });
        // The items of a `List` share their document's location: it is said once.
        let listed = not_judged.last().is_some_and(|last| last.location == object.location);
        if let (Some(reason), false) = (reason, listed) {
            not_judged.push(NotJudged {
                resource: object.resource.clone(),
                location: object.location.clone(),
                reason: reason.clone(),
            });
        }
    }
    report.not_judged = not_judged;
    report
}

fn is_judged(verdicts: &[Verdict]) -> bool {
    verdicts.iter().any(|verdict| matches!(verdict, Verdict::Judged(_)))
}

/// A warning for each identity written in more than one document: each is judged where it
/// stands, but a cluster holds only one of them.
fn duplicates(documents: &[(Key, CheckedObject)]) -> Vec<Warning> {
    // The first document of each identity; the documents of a repeated one, in input order.
    let mut first: FxHashMap<&ResourceRef, usize> = FxHashMap::default();
    let mut repeated: Vec<Vec<usize>> = Vec::new();
    let mut repeated_slot: FxHashMap<usize, usize> = FxHashMap::default();
    for (index, identity) in documents.iter().map(|(_, document)| &document.resource).enumerate() {
        let &mut earliest = first.entry(identity).or_insert(index);
        if earliest != index {
            let slot = *repeated_slot.entry(earliest).or_insert_with(|| {
                repeated.push(vec![earliest]);
                repeated.len() - 1
            });
            repeated[slot].push(index);
        }
    }
    repeated.sort_unstable_by_key(|indices| indices[0]);
    repeated
        .into_iter()
        .map(|indices| {
            let resource = &documents[indices[0]].1.resource;
            let locations: Vec<SourceLocation> =
                indices.iter().map(|&index| documents[index].1.location.clone()).collect();
            let places: Vec<String> = locations.iter().map(ToString::to_string).collect();
            Warning {
                message: format!(
                    "{resource} is written in {} documents ({}): each is judged where it stands, and a cluster keeps only the last applied",
                    locations.len(),
                    places.join(", ")
                ),
                locations,
            }
        })
        .collect()
}
