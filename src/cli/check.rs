//! `dpo check`: objects in, findings out. The same policy code the controllers run.

use super::input::{Located, Object};
use super::report::{CheckReport, CheckedObject, SourceLocation};
use crate::api::{EncryptedVolumePolicy, ResourceRef, TlsIngressPolicy};
use crate::aws::{AwsFacts, FactRequest, Target};
use crate::policy::facts::{FactRecorder, FactSet, Wanted};
use crate::policy::ingress::{AlbDefaults, IngressClassParams, IngressInventory, evaluate_tls_policy};
use crate::policy::secret::{judge_secret, validate_spec};
use crate::policy::storage::evaluate_volume_policy;
use crate::policy::{Evaluation, Facts, Verdict, exemption, resource_ref, sort_findings};
use k8s_openapi::api::core::v1::{Namespace, PersistentVolume, Service};
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use k8s_openapi::api::storage::v1::StorageClass;
use std::collections::{BTreeMap, HashMap, HashSet};

use super::input::InputError;

/// Objects of the inputs, sorted by kind, each with where it came from.
#[derive(Default)]
struct Inventory<'a> {
    storage_classes: Vec<&'a StorageClass>,
    persistent_volumes: Vec<&'a PersistentVolume>,
    ingresses: Vec<&'a Ingress>,
    ingress_classes: Vec<&'a IngressClass>,
    ingress_class_params: Vec<&'a IngressClassParams>,
    services: Vec<&'a Service>,
    namespaces: Vec<&'a Namespace>,
    volume_policies: Vec<&'a EncryptedVolumePolicy>,
    tls_policies: Vec<&'a TlsIngressPolicy>,
    locations: HashMap<ResourceRef, SourceLocation>,
    /// Resources in input order.
    order: Vec<ResourceRef>,
}

impl<'a> Inventory<'a> {
    fn new(objects: &'a [Located]) -> Self {
        let mut inventory = Inventory::default();
        for located in objects {
            let resource = match &located.object {
                Object::StorageClass(o) => {
                    inventory.storage_classes.push(&**o);
                    resource_ref(&**o)
                }
                Object::PersistentVolume(o) => {
                    inventory.persistent_volumes.push(&**o);
                    resource_ref(&**o)
                }
                Object::EncryptedVolumePolicy(o) => {
                    inventory.volume_policies.push(&**o);
                    resource_ref(&**o)
                }
                Object::TlsIngressPolicy(o) => {
                    inventory.tls_policies.push(&**o);
                    resource_ref(&**o)
                }
                Object::Ingress(o) => {
                    inventory.ingresses.push(&**o);
                    resource_ref(&**o)
                }
                Object::IngressClass(o) => {
                    inventory.ingress_classes.push(&**o);
                    resource_ref(&**o)
                }
                Object::IngressClassParams(o) => {
                    inventory.ingress_class_params.push(&**o);
                    resource_ref(&**o)
                }
                Object::Service(o) => {
                    inventory.services.push(&**o);
                    resource_ref(&**o)
                }
                Object::Namespace(o) => {
                    inventory.namespaces.push(&**o);
                    resource_ref(&**o)
                }
                Object::ProtectedSecret(o) => resource_ref(&**o),
            };
            if inventory.locations.insert(resource.clone(), located.location.clone()).is_none() {
                inventory.order.push(resource);
            }
        }
        inventory
    }
}

/// Where findings against the built-in default policies point.
fn built_in_location() -> SourceLocation {
    SourceLocation { file: "<built-in>".to_string(), line: 1, document: 0 }
}

fn built_in<K: kube::Resource<DynamicType = ()>>(spec: K) -> K {
    let mut object = spec;
    object.meta_mut().name = Some("built-in".to_string());
    object
}

/// Runs every policy over the objects. ProtectedSecrets whose spec is unusable come back as
/// input errors, since nothing could be judged about them.
pub fn check(objects: &[Located], facts: &dyn Facts) -> (CheckReport, Vec<InputError>) {
    let inventory = Inventory::new(objects);
    let mut verdicts: HashMap<ResourceRef, Vec<Verdict>> = HashMap::new();
    let mut locations = inventory.locations.clone();
    let mut errors = Vec::new();
    let mut record = |evaluation: Evaluation| {
        for object in evaluation.verdicts {
            verdicts.entry(object.resource).or_default().push(object.verdict);
        }
    };

    let default_volume_policy;
    let volume_policies = if inventory.volume_policies.is_empty() {
        default_volume_policy = built_in(EncryptedVolumePolicy::new("", Default::default()));
        locations.insert(resource_ref(&default_volume_policy), built_in_location());
        vec![&default_volume_policy]
    } else {
        inventory.volume_policies.clone()
    };
    for policy in volume_policies {
        record(evaluate_volume_policy(
            policy,
            &inventory.storage_classes,
            &inventory.persistent_volumes,
            facts,
        ));
    }

    let default_tls_policy;
    let tls_policies = if inventory.tls_policies.is_empty() {
        default_tls_policy = built_in(TlsIngressPolicy::new("", Default::default()));
        vec![&default_tls_policy]
    } else {
        inventory.tls_policies.clone()
    };
    let ingress_inventory = IngressInventory {
        ingresses: &inventory.ingresses,
        ingress_classes: &inventory.ingress_classes,
        ingress_class_params: &inventory.ingress_class_params,
        services: &inventory.services,
        namespaces: &inventory.namespaces,
    };
    let alb_defaults = AlbDefaults::default();
    for policy in tls_policies {
        record(evaluate_tls_policy(&policy.spec, &ingress_inventory, facts, &alb_defaults));
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
        record(evaluation);
    }

    (assemble(inventory.order, locations, verdicts), errors)
}

/// Orders the verdicts as the inputs were, and sums them up.
fn assemble(
    order: Vec<ResourceRef>,
    locations: HashMap<ResourceRef, SourceLocation>,
    mut verdicts: HashMap<ResourceRef, Vec<Verdict>>,
) -> CheckReport {
    let mut report = CheckReport::default();
    // Built-in policies are not in the inputs; they come last.
    let inputs: HashSet<&ResourceRef> = order.iter().collect();
    let mut extra: Vec<ResourceRef> = verdicts.keys().filter(|r| !inputs.contains(r)).cloned().collect();
    extra.sort();
    for resource in order.into_iter().chain(extra) {
        let Some(object_verdicts) = verdicts.remove(&resource) else { continue };
        let location = locations.get(&resource).cloned().unwrap_or_else(built_in_location);
        report.objects.push(CheckedObject { resource, location, verdicts: object_verdicts });
    }
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
/// a host names certificates). Secrets are read in the region and role their ProtectedSecret
/// names.
pub async fn gather_facts(objects: &[Located], aws: &AwsFacts) -> FactSet {
    const ROUNDS: usize = 3;
    let secret_targets: HashMap<&str, Target> = objects
        .iter()
        .filter_map(|located| match &located.object {
            Object::ProtectedSecret(secret) => {
                let source = &secret.spec.source;
                Some((
                    source.secret_id.as_str(),
                    Target { region: source.region.clone(), role_arn: source.role_arn.clone() },
                ))
            }
            _ => None,
        })
        .collect();
    let mut facts = FactSet { now: Some(jiff::Timestamp::now()), ..FactSet::default() };
    for _ in 0..ROUNDS {
        let recorder = FactRecorder::new(&facts);
        let _ = check(objects, &recorder);
        let mut wanted = recorder.into_wanted();
        if wanted.is_empty() {
            break;
        }
        let secret_ids = std::mem::take(&mut wanted.secret_ids);
        let mut by_target: HashMap<Target, Wanted> = HashMap::from([(Target::default(), wanted)]);
        for secret_id in secret_ids {
            let target = secret_targets.get(secret_id.as_str()).cloned().unwrap_or_default();
            by_target.entry(target).or_default().secret_ids.insert(secret_id);
        }
        let requests: Vec<FactRequest> =
            by_target.into_iter().map(|(target, wanted)| FactRequest::new(target, wanted)).collect();
        for gathered in futures::future::join_all(requests.iter().map(|request| aws.gather(request))).await {
            facts.extend(gathered);
        }
    }
    facts
}
