use super::*;
use crate::api::{EncryptedVolumePolicy, TlsIngressPolicySpec};
use crate::policy::ingress::AlbDefaults;
use crate::policy::units::testing::{
    ARN, STRONG, TlsWorld, VolumeWorld, WEAK, annotations, certificate, ingress, labels, set_ssl_policy,
    touch, volume as volume_of,
};

fn basis(generation: i64, epoch: u64) -> Basis {
    Basis { uid: Some("policy-uid".into()), generation: Some(generation), epoch }
}

/// Evaluates with facts that answer every lookup.
fn run<J: Judge>(plan: UnitPlan<J>, basis: Basis, cache: UnitCache, facts: &FactSet) -> Judged {
    let mut evaluation = Incremental::new(plan, basis, cache);
    let wanted = evaluation.round(facts);
    assert!(wanted.is_empty(), "the facts answer every lookup: {wanted:?}");
    evaluation.finish(facts)
}

/// A TlsIngressPolicy's evaluations over a world that changes between them.
struct Tls {
    world: TlsWorld,
    spec: TlsIngressPolicySpec,
    cache: UnitCache,
    basis: Basis,
}

impl Tls {
    fn new(spec: TlsIngressPolicySpec) -> Tls {
        Tls { world: TlsWorld::sample(), spec, cache: UnitCache::default(), basis: basis(1, 0) }
    }

    /// Evaluates incrementally, checks the result against the whole-world evaluation, and
    /// returns the number of units judged.
    fn evaluate(&mut self) -> usize {
        let facts = TlsWorld::facts();
        let defaults = AlbDefaults::default();
        let plan = self.world.plan(&self.spec, &defaults);
        let judged = run(plan, self.basis.clone(), std::mem::take(&mut self.cache), &facts);
        assert_eq!(judged.evaluation, self.world.evaluate(&self.spec, &facts));
        self.cache = judged.cache;
        judged.judged
    }
}

#[test]
fn a_changed_ingress_judges_only_its_alb() {
    let mut tls = Tls::new(TlsIngressPolicySpec::default());
    assert_eq!(tls.evaluate(), 9, "a first evaluation judges every unit");
    assert_eq!(tls.evaluate(), 0, "an unchanged world keeps every verdict");
    set_ssl_policy(&mut tls.world.ingresses[0], WEAK);
    assert_eq!(tls.evaluate(), 1);
    set_ssl_policy(&mut tls.world.ingresses[5], WEAK);
    touch(&mut tls.world.services[1].metadata);
    assert_eq!(tls.evaluate(), 2);
    // Moving an Ingress to another group changes both groups.
    annotations(&mut tls.world.ingresses[4].metadata)
        .insert("alb.ingress.kubernetes.io/group.name".into(), "g1".into());
    touch(&mut tls.world.ingresses[4].metadata);
    assert_eq!(tls.evaluate(), 2);
    // A store lists its objects in no particular order.
    tls.world.ingresses.reverse();
    tls.world.namespaces.reverse();
    tls.world.classes.reverse();
    assert_eq!(tls.evaluate(), 0);
}

#[test]
fn a_change_to_a_shared_object_judges_every_unit() {
    let mut tls = Tls::new(TlsIngressPolicySpec::default());
    let units = tls.evaluate();
    touch(&mut tls.world.classes[0].metadata);
    assert_eq!(tls.evaluate(), units);
    labels(&mut tls.world.namespaces[1].metadata).insert("team".into(), "platform".into());
    touch(&mut tls.world.namespaces[1].metadata);
    assert_eq!(tls.evaluate(), units);
    touch(&mut tls.world.params[0].metadata);
    assert_eq!(tls.evaluate(), units);
}

#[test]
fn a_new_generation_or_facts_epoch_judges_every_unit() {
    let mut tls = Tls::new(TlsIngressPolicySpec::default());
    let units = tls.evaluate();
    tls.basis = basis(1, 1);
    assert_eq!(tls.evaluate(), units, "the periodic pass, with facts read afresh");
    assert_eq!(tls.evaluate(), 0);
    tls.basis = basis(2, 1);
    assert_eq!(tls.evaluate(), units);
    tls.basis.uid = Some("recreated".into());
    assert_eq!(tls.evaluate(), units);
}

#[test]
fn objects_without_versions_are_judged_every_time() {
    let mut tls = Tls::new(TlsIngressPolicySpec::default());
    tls.world.ingresses[0].metadata.resource_version = None;
    assert_eq!(tls.evaluate(), 9);
    // Only the group of that Ingress.
    assert_eq!(tls.evaluate(), 1);
}

/// One random write to the world.
fn edit(world: &mut TlsWorld, rng: &mut fastrand::Rng, created: &mut usize) {
    let groups = [None, Some("g1"), Some("g2"), Some("g3")];
    let pick = rng.usize(..world.ingresses.len());
    let ingress_meta = &mut world.ingresses[pick].metadata;
    match rng.u8(..10) {
        0 => {
            let policy = if rng.bool() { WEAK } else { STRONG };
            annotations(ingress_meta).insert("alb.ingress.kubernetes.io/ssl-policy".into(), policy.into());
        }
        1 => match groups[rng.usize(..groups.len())] {
            Some(group) => {
                annotations(ingress_meta).insert("alb.ingress.kubernetes.io/group.name".into(), group.into());
            }
            None => {
                annotations(ingress_meta).remove("alb.ingress.kubernetes.io/group.name");
            }
        },
        2 => {
            if labels(ingress_meta).remove("dpo.dev/exempt").is_none() {
                labels(ingress_meta).insert("dpo.dev/exempt".into(), "testing".into());
            }
        }
        3 => {
            let tier = if rng.bool() { "prod" } else { "dev" };
            labels(ingress_meta).insert("tier".into(), tier.into());
        }
        4 if world.ingresses.len() > 1 => {
            world.ingresses.remove(pick);
            return;
        }
        4 => {}
        5 => {
            *created += 1;
            let namespace = if rng.bool() { "shop" } else { "web" };
            let group = groups[rng.usize(..groups.len())];
            let position = rng.usize(..=world.ingresses.len());
            world.ingresses.insert(position, ingress(&format!("new-{created}"), namespace, group, STRONG));
            return;
        }
        6 => {
            let namespace = &mut world.namespaces[rng.usize(..2)].metadata;
            let team = if rng.bool() { "shop" } else { "other" };
            labels(namespace).insert("team".into(), team.into());
            touch(namespace);
            return;
        }
        7 => {
            let nginx = world.classes[1].spec.get_or_insert_default();
            let alb = nginx.controller.as_deref() == Some("ingress.k8s.aws/alb");
            nginx.controller = Some(if alb { "k8s.io/ingress-nginx" } else { "ingress.k8s.aws/alb" }.into());
            touch(&mut world.classes[1].metadata);
            return;
        }
        8 => {
            // A route that stops (or starts) redirecting HTTP, or whose Gateway changes.
            let route = &mut world.routes[0];
            if rng.bool() {
                let rule = &mut route.spec.rules[0];
                rule.filters.iter_mut().for_each(|filter| {
                    let redirect = filter.request_redirect.get_or_insert_default();
                    let https = redirect.scheme.as_deref() == Some("https");
                    redirect.scheme = Some(if https { "http" } else { "https" }.into());
                });
            } else {
                let name = &mut route.spec.parent_refs[0].name;
                *name = if name == "edge" { "envoy".into() } else { "edge".into() };
            }
            touch(&mut route.metadata);
            return;
        }
        _ => {
            let service = &mut world.services[rng.usize(..2)];
            let spec = service.spec.get_or_insert_default();
            let balanced = spec.type_.as_deref() == Some("LoadBalancer");
            spec.type_ = Some(if balanced { "ClusterIP" } else { "LoadBalancer" }.into());
            touch(&mut service.metadata);
            return;
        }
    }
    touch(&mut world.ingresses[pick].metadata);
}

#[test]
fn incremental_evaluations_equal_whole_ones_through_any_edits() {
    let specs: Vec<TlsIngressPolicySpec> = [
        serde_json::json!({}),
        serde_json::json!({"namespaceSelector": {"matchLabels": {"team": "shop"}},
                           "ingressSelector": {"matchLabels": {"tier": "prod"}}}),
    ]
    .into_iter()
    .map(|spec| serde_json::from_value(spec).unwrap())
    .collect();
    for (seed, spec) in specs.into_iter().enumerate() {
        let mut rng = fastrand::Rng::with_seed(seed as u64);
        let mut tls = Tls::new(spec);
        let mut created = 0;
        let (mut judged, mut units) = (0, 0);
        for _ in 0..300 {
            for _ in 0..rng.usize(1..3) {
                edit(&mut tls.world, &mut rng, &mut created);
            }
            // Tls::evaluate compares with the whole-world evaluation.
            judged += tls.evaluate();
            units += tls.world.plan(&tls.spec, &AlbDefaults::default()).units().len();
        }
        assert!(judged < units / 2, "{judged} of {units} units judged");
    }
}

#[test]
fn units_judged_after_gathering_facts_are_kept_but_not_those_that_read_a_failure() {
    let world = TlsWorld::sample();
    let (spec, defaults) = (TlsIngressPolicySpec::default(), AlbDefaults::default());
    let mut facts = FactSet { now: TlsWorld::facts().now, ..FactSet::default() };
    let mut evaluation = Incremental::new(world.plan(&spec, &defaults), basis(1, 0), UnitCache::default());
    let wanted = evaluation.round(&facts);
    assert_eq!(wanted.certificate_arns.iter().collect::<Vec<_>>(), [ARN]);
    facts.certificates.insert(ARN.into(), Fact::Known(certificate()));
    assert!(evaluation.round(&facts).is_empty());
    let judged = evaluation.finish(&facts);
    assert_eq!(judged.evaluation, world.evaluate(&spec, &facts));
    let again = run(world.plan(&spec, &defaults), basis(1, 0), judged.cache, &facts);
    assert_eq!(again.judged, 0);

    // A failed lookup is not a fact: the units that read it ask again next time.
    facts.certificates.insert(
        ARN.into(),
        Fact::Failed(crate::policy::facts::FactError {
            reason: "AwsThrottled",
            message: "throttled".into(),
            transient: true,
        }),
    );
    let failed = run(world.plan(&spec, &defaults), basis(1, 1), UnitCache::default(), &facts);
    let again = run(world.plan(&spec, &defaults), basis(1, 1), failed.cache, &facts);
    // Every unit but the ClusterIP Service and the Gateway of another controller reads the
    // certificate.
    assert_eq!((again.units, again.judged), (9, 7));
}

#[test]
fn incremental_volume_evaluations_equal_whole_ones_through_any_edits() {
    let policy: EncryptedVolumePolicy = serde_json::from_value(serde_json::json!({
        "apiVersion": "dpo.dev/v1alpha1", "kind": "EncryptedVolumePolicy",
        "metadata": {"name": "ebs"}, "spec": {"storageClassSelector": {"matchLabels": {"tier": "prod"}}},
    }))
    .unwrap();
    let facts = VolumeWorld::facts();
    let mut world = VolumeWorld::sample();
    let mut rng = fastrand::Rng::with_seed(7);
    let mut cache = UnitCache::default();
    let (mut judged, mut units) = (0, 0);
    for created in 0..200 {
        let classes = ["gp3", "gp2", "efs", "legacy", "gone"];
        let volume = rng.usize(..world.volumes.len());
        match rng.u8(..6) {
            0 => {
                let class = &mut world.classes[rng.usize(..4)];
                let encrypted = if rng.bool() { "true" } else { "false" };
                class.parameters.get_or_insert_default().insert("encrypted".into(), encrypted.into());
                touch(&mut class.metadata);
            }
            1 => {
                let class = &mut world.classes[rng.usize(..4)];
                let tier = if rng.bool() { "prod" } else { "dev" };
                labels(&mut class.metadata).insert("tier".into(), tier.into());
                touch(&mut class.metadata);
            }
            2 => {
                let spec = world.volumes[volume].spec.as_mut().unwrap();
                spec.storage_class_name = Some(classes[rng.usize(..classes.len())].into());
                touch(&mut world.volumes[volume].metadata);
            }
            3 => {
                let handle = format!("vol-{}", rng.usize(1..7));
                world.volumes[volume].spec.as_mut().unwrap().csi.as_mut().unwrap().volume_handle = handle;
                touch(&mut world.volumes[volume].metadata);
            }
            4 if world.volumes.len() > 1 => {
                world.volumes.swap_remove(volume);
            }
            _ => {
                let class = classes[rng.usize(..classes.len())];
                let position = rng.usize(..=world.volumes.len());
                world.volumes.insert(position, volume_of(&format!("new-{created}"), class, "vol-2"));
            }
        }
        let result = run(world.plan(&policy), basis(1, 0), cache, &facts);
        assert_eq!(result.evaluation, world.evaluate(&policy, &facts));
        (judged, units, cache) = (judged + result.judged, units + result.units, result.cache);
    }
    assert!(judged < units / 2, "{judged} of {units} units judged");
}

#[test]
fn a_changed_volume_judges_only_its_class() {
    let policy: EncryptedVolumePolicy = serde_json::from_value(serde_json::json!({
        "apiVersion": "dpo.dev/v1alpha1", "kind": "EncryptedVolumePolicy",
        "metadata": {"name": "ebs"}, "spec": {},
    }))
    .unwrap();
    let facts = VolumeWorld::facts();
    let mut world = VolumeWorld::sample();
    let first = run(world.plan(&policy), basis(1, 0), UnitCache::default(), &facts);
    assert_eq!((first.units, first.judged), (5, 5));
    world.volumes[2].spec.as_mut().unwrap().csi.as_mut().unwrap().volume_handle = "vol-1".into();
    touch(&mut world.volumes[2].metadata);
    let second = run(world.plan(&policy), basis(1, 0), first.cache, &facts);
    assert_eq!(second.judged, 1);
    assert_eq!(second.evaluation, world.evaluate(&policy, &facts));
    assert_eq!(second.evaluation.summary().violations, first.evaluation.summary().violations - 1);
    // A store lists its objects in no particular order.
    world.volumes.reverse();
    world.classes.reverse();
    let third = run(world.plan(&policy), basis(1, 0), second.cache, &facts);
    assert_eq!(third.judged, 0);
    assert_eq!(third.evaluation, world.evaluate(&policy, &facts));
}
