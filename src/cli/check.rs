//! `dpo check`: objects in, findings out. The same policy code the controllers run.

use super::input::{Located, Object};
use super::report::{CheckReport, CheckedObject, SourceLocation};
use crate::api::{EncryptedVolumePolicy, ProtectedSecret, ResourceRef, TlsIngressPolicy};
use crate::aws::{AwsFacts, FactRequest, Target};
use crate::policy::facts::{FACT_ROUNDS, FactRecorder, FactSet, Wanted};
use crate::policy::ingress::{
    AlbDefaults, AutoModeIngressClassParams, GatewayInventory, IngressClassParams, IngressInventory,
    evaluate_tls_policy,
};
use crate::policy::secret::{judge_secret, validate_spec};
use crate::policy::storage::evaluate_volume_policy;
use crate::policy::{Evaluation, Facts, Verdict, exemption, resource_ref, sort_findings, untrusted_policy};
use k8s_openapi::api::core::v1::{Namespace, PersistentVolume, Service};
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use k8s_openapi::api::storage::v1::StorageClass;
use rustc_hash::FxHashMap;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};

use super::input::InputError;

/// Objects of the inputs, sorted by kind, and every distinct resource once, in input order,
/// ready to collect its verdicts.
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
    volume_policies: Vec<&'a EncryptedVolumePolicy>,
    tls_policies: Vec<&'a TlsIngressPolicy>,
    checked: Vec<CheckedObject>,
    position: FxHashMap<ResourceRef, usize>,
}

/// Which policies count in a `dpo check` run.
#[derive(Clone, Copy, Debug)]
pub enum Policies<'a> {
    /// Those among the inputs; for a kind with none, the built-in defaults.
    FromInputs,
    /// Only these, read from `--policy` files (and the built-in defaults for a kind they lack);
    /// policies among the inputs are `policy-in-input` findings.
    Trusted(&'a [Located]),
}

impl<'a> Inventory<'a> {
    fn new(objects: &'a [Located], policies: Policies<'a>) -> Self {
        let mut inventory = Inventory::default();
        for located in objects {
            match (policies, located.object.policy()) {
                // Judged, never applied.
                (Policies::Trusted(_), Some((resource, meta))) => {
                    let origin = format!("{}:{}", located.location.file, located.location.line);
                    let verdict = untrusted_policy(&resource, meta, &origin);
                    let position = inventory.add(resource, located.location.clone());
                    inventory.checked[position].verdicts.push(verdict);
                }
                _ => inventory.file(located),
            }
        }
        if let Policies::Trusted(trusted) = policies {
            trusted.iter().for_each(|located| inventory.file(located));
        }
        inventory
    }

    /// Files an object by kind, and adds it.
    fn file(&mut self, located: &'a Located) {
        let resource = match &located.object {
            Object::StorageClass(o) => self.storage_classes.push_ref(o),
            Object::PersistentVolume(o) => self.persistent_volumes.push_ref(o),
            Object::EncryptedVolumePolicy(o) => self.volume_policies.push_ref(o),
            Object::TlsIngressPolicy(o) => self.tls_policies.push_ref(o),
            Object::Ingress(o) => self.ingresses.push_ref(o),
            Object::IngressClass(o) => self.ingress_classes.push_ref(o),
            Object::IngressClassParams(o) => self.ingress_class_params.push_ref(o),
            Object::AutoModeIngressClassParams(o) => self.auto_mode_class_params.push_ref(o),
            Object::Service(o) => self.services.push_ref(o),
            Object::Namespace(o) => self.namespaces.push_ref(o),
            Object::Gateway(o) => self.gateways.gateways.push_ref(o),
            Object::HttpRoute(o) => self.gateways.http_routes.push_ref(o),
            Object::GatewayClass(o) => self.gateways.gateway_classes.push_ref(o),
            Object::LoadBalancerConfiguration(o) => self.gateways.load_balancer_configurations.push_ref(o),
            Object::ProtectedSecret(o) => resource_ref(&**o),
        };
        self.add(resource, located.location.clone());
    }

    /// The position of a resource, added if not seen before; the first location of a duplicate
    /// wins.
    fn add(&mut self, resource: ResourceRef, location: SourceLocation) -> usize {
        match self.position.entry(resource) {
            Entry::Occupied(slot) => *slot.get(),
            Entry::Vacant(slot) => {
                let resource = slot.key().clone();
                slot.insert(self.checked.len());
                self.checked.push(CheckedObject { resource, location, verdicts: Vec::new() });
                self.checked.len() - 1
            }
        }
    }

    fn record(&mut self, evaluation: Evaluation) {
        for object in evaluation.verdicts {
            let position = match self.position.get(&object.resource) {
                Some(&position) => position,
                // Only the built-in policies judge themselves without being among the inputs.
                None => self.add(object.resource, built_in_location()),
            };
            self.checked[position].verdicts.push(object.verdict);
        }
    }
}

/// Files a typed object by kind and names it.
trait PushRef<'a, K> {
    fn push_ref(&mut self, object: &'a K) -> ResourceRef;
}

impl<'a, K: kube::Resource<DynamicType = ()>> PushRef<'a, K> for Vec<&'a K> {
    fn push_ref(&mut self, object: &'a K) -> ResourceRef {
        self.push(object);
        resource_ref(object)
    }
}

/// Where findings against the built-in default policies point.
fn built_in_location() -> SourceLocation {
    SourceLocation { file: "<built-in>".into(), line: 1, document: 0 }
}

fn built_in<K: kube::Resource<DynamicType = ()>>(spec: K) -> K {
    let mut object = spec;
    object.meta_mut().name = Some("built-in".to_string());
    object
}

/// Runs every policy over the objects. ProtectedSecrets whose spec is unusable come back as
/// input errors, since nothing could be judged about them.
pub fn check(
    objects: &[Located],
    policies: Policies,
    facts: &dyn Facts,
    alb: &AlbDefaults,
) -> (CheckReport, Vec<InputError>) {
    let mut inventory = Inventory::new(objects, policies);
    let mut errors = Vec::new();

    let default_volume_policy = built_in(EncryptedVolumePolicy::new("", Default::default()));
    let volume_policies = match inventory.volume_policies.is_empty() {
        true => vec![&default_volume_policy],
        false => std::mem::take(&mut inventory.volume_policies),
    };
    for policy in volume_policies {
        let evaluation =
            evaluate_volume_policy(policy, &inventory.storage_classes, &inventory.persistent_volumes, facts);
        inventory.record(evaluation);
    }

    let default_tls_policy = built_in(TlsIngressPolicy::new("", Default::default()));
    let tls_policies = match inventory.tls_policies.is_empty() {
        true => vec![&default_tls_policy],
        false => std::mem::take(&mut inventory.tls_policies),
    };
    for policy in tls_policies {
        let ingress_inventory = IngressInventory {
            ingresses: &inventory.ingresses,
            ingress_classes: &inventory.ingress_classes,
            ingress_class_params: &inventory.ingress_class_params,
            auto_mode_class_params: &inventory.auto_mode_class_params,
            services: &inventory.services,
            namespaces: &inventory.namespaces,
        };
        let evaluation =
            evaluate_tls_policy(&policy.spec, &ingress_inventory, &inventory.gateways, facts, alb);
        inventory.record(evaluation);
    }

    for located in objects {
        let Object::ProtectedSecret(secret) = &located.object else { continue };
        let secret = &**secret;
        let resource = resource_ref(secret);
        let spec_errors = validate_spec(&secret.spec);
        if !spec_errors.is_empty() {
            errors.extend(spec_errors.into_iter().map(|e| InputError {
                location: located.location.clone(),
                message: format!("ProtectedSecret {}: {e}", resource.name),
            }));
            continue;
        }
        let verdict = match exemption(&secret.metadata) {
            Some(reason) => Verdict::Exempt(reason.to_string()),
            None => Verdict::Judged(judge_secret(&resource, &secret.spec, facts)),
        };
        let mut evaluation = Evaluation::default();
        evaluation.push(resource, verdict);
        inventory.record(evaluation);
    }

    (assemble(inventory.checked), errors)
}

/// Keeps the objects some policy had a verdict on, in input order with the built-in policies
/// last, and sums them up.
fn assemble(mut checked: Vec<CheckedObject>) -> CheckReport {
    checked.retain(|object| !object.verdicts.is_empty());
    let mut report = CheckReport { objects: checked, ..CheckReport::default() };
    let mut skipped = BTreeMap::new();
    for verdict in report.objects.iter().flat_map(|o| &o.verdicts) {
        if let Verdict::Judged(judgement) = verdict {
            report.findings.extend(judgement.findings.iter().cloned());
            for rule in &judgement.skipped {
                *skipped.entry(*rule).or_insert(0) += 1;
            }
        }
    }
    sort_findings(&mut report.findings);
    report.findings.dedup();
    report.skipped = skipped.into_iter().collect();
    report
}

/// Gathers the AWS facts the policies ask for, for `dpo check --aws`: evaluate with a recorder,
/// fetch what it wanted, and again while answers lead to new questions (an alias names a key,
/// a host names certificates). What a ProtectedSecret's rules read (the secret, its key, the keys
/// of its allowlist) is read where the secret is: in the region and role its source names.
pub async fn gather_facts(
    objects: &[Located],
    policies: Policies<'_>,
    aws: &AwsFacts,
    alb: &AlbDefaults,
) -> FactSet {
    let secrets: Vec<(&ProtectedSecret, Target)> = objects
        .iter()
        .filter_map(|located| match &located.object {
            // Those `check` judges: usable specs, not exempt.
            Object::ProtectedSecret(secret)
                if validate_spec(&secret.spec).is_empty() && exemption(&secret.metadata).is_none() =>
            {
                Some((&**secret, Target::of(&secret.spec.source)))
            }
            _ => None,
        })
        .collect();
    let mut facts = FactSet { now: Some(jiff::Timestamp::now()), ..FactSet::default() };
    for _ in 0..FACT_ROUNDS {
        let recorder = FactRecorder::new(&facts);
        let _ = check(objects, policies, &recorder, alb);
        let mut shared = recorder.into_wanted();
        if shared.is_empty() {
            break;
        }
        let mut by_target: HashMap<Target, Wanted> = HashMap::new();
        for (secret, target) in &secrets {
            let recorder = FactRecorder::new(&facts);
            let _ = judge_secret(&resource_ref(*secret), &secret.spec, &recorder);
            let own = recorder.into_wanted();
            shared.remove(&own);
            by_target.entry(target.clone()).or_default().merge(own);
        }
        by_target.entry(Target::default()).or_default().merge(shared);
        let requests: Vec<FactRequest> = by_target
            .into_iter()
            .filter(|(_, wanted)| !wanted.is_empty())
            .map(|(target, wanted)| FactRequest::new(target, wanted))
            .collect();
        for gathered in futures::future::join_all(requests.iter().map(|request| aws.gather(request))).await {
            facts.extend(gathered);
        }
    }
    facts
}
