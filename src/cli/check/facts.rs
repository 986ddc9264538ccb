//! `dpo check --aws`: the AWS facts the policies ask for, gathered before they judge.

use super::{Settings, check};
use crate::api::ProtectedSecret;
use crate::aws::{AwsFacts, FactRequest, Target};
use crate::cli::input::{Inputs, Object};
use crate::policy::facts::{FACT_ROUNDS, FactRecorder, FactSet, Wanted};
use crate::policy::secret::{judge_secret, validate_spec};
use crate::policy::{exemption, resource_ref};
use std::collections::HashMap;

/// Gathers the AWS facts the policies ask for, for `dpo check --aws`: evaluate with a recorder,
/// fetch what it wanted, and again while answers lead to new questions (an alias names a key,
/// a host names certificates). What a ProtectedSecret's rules read (the secret, its key, the keys
/// of its allowlist) is read where the secret is: in the region and role its source names.
pub async fn gather_facts(inputs: &Inputs, settings: Settings<'_>, aws: &AwsFacts) -> FactSet {
    let secrets: Vec<(&ProtectedSecret, Target)> = inputs
        .objects
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
        let _ = check(inputs, settings, &recorder);
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
