//! What a reconcile reports: the status its outcome calls for, Events and logs.

use super::target::{self, Written};
use super::{Context, Failure, Outcome};
use crate::api::{Finding, ProtectedSecret, ProtectedSecretStatus, SecretRef};
use crate::status::{COMPLIANT, Desired, READY, SYNCED, event_note, merge_conditions, not_ready};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};

/// "2 findings: first; second".
pub(super) fn summary(findings: &[Finding]) -> String {
    let messages: Vec<&str> = findings.iter().take(3).map(|f| f.message.as_str()).collect();
    let more = if findings.len() > 3 { "; ..." } else { "" };
    format!("{} finding(s): {}{more}", findings.len(), messages.join("; "))
}

/// The status `outcome` calls for. Equal to `previous` when nothing changed, so that a steady
/// refresh writes nothing. `cluster_note` says that the cluster does not envelope-encrypt the
/// Secret with a KMS key: it goes with the synced message, and holds nothing back.
pub(super) fn next_status(
    ps: &ProtectedSecret,
    previous: &ProtectedSecretStatus,
    outcome: &Outcome,
    cluster_note: Option<&str>,
) -> ProtectedSecretStatus {
    let generation = ps.meta().generation;
    let target = target::target_name(ps);
    let not_ready_because = |failure: &Failure, message: String| {
        vec![
            Desired::new(READY, false, &failure.reason, &message),
            not_ready(&failure.reason, message, failure.transient),
        ]
    };
    let restarted_for = previous.rolled_out_version_id.clone().or_else(|| previous.synced_version_id.clone());
    let (synced_version_id, rolled_out_version_id, mut desired) = match &outcome.sync {
        Ok(synced) => {
            let version = &synced.value.version_id;
            let note = cluster_note.map(|note| format!("; {note}")).unwrap_or_default();
            let message =
                format!("version {version} of {} is in Secret {target}{note}", ps.spec.source.secret_id);
            let mut desired = vec![Desired::new(SYNCED, true, "Synced", &message)];
            let rolled_out = match &synced.restart_failed {
                None => {
                    desired.push(Desired::new(READY, true, "Synced", message));
                    Some(version.clone())
                }
                Some(failure) => {
                    desired.extend(not_ready_because(failure, failure.message.clone()));
                    restarted_for
                }
            };
            (Some(version.clone()), rolled_out.filter(|_| !ps.spec.rollout_restart.is_empty()), desired)
        }
        Err(failure) => {
            let kept = previous
                .synced_version_id
                .as_ref()
                .map(|v| format!("; Secret {target} keeps version {v}"))
                .unwrap_or_default();
            let message = format!("{}{kept}", failure.message);
            let mut desired = not_ready_because(failure, message.clone());
            desired.push(Desired::new(SYNCED, false, &failure.reason, message));
            (previous.synced_version_id.clone(), previous.rolled_out_version_id.clone(), desired)
        }
    };
    let compliant = match &outcome.findings {
        Some(findings) if findings.is_empty() && !outcome.unchecked.is_empty() => Some(Desired::new(
            COMPLIANT,
            false,
            "PolicyNotEvaluated",
            format!("could not check {}: AWS did not answer what they need", outcome.unchecked.join(", ")),
        )),
        Some(findings) if findings.is_empty() => {
            Some(Desired::new(COMPLIANT, true, "Compliant", "the AWS secret meets the policy"))
        }
        Some(findings) => Some(Desired::new(COMPLIANT, false, "PolicyViolation", summary(findings))),
        None => previous
            .conditions
            .iter()
            .find(|c| c.type_ == COMPLIANT)
            .map(|c| Desired::new(COMPLIANT, c.status == "True", &c.reason, &c.message)),
    };
    desired.extend(compliant);
    let now = Time(jiff::Timestamp::now());
    let conditions = merge_conditions(&previous.conditions, &desired, generation, &now);
    ProtectedSecretStatus {
        observed_generation: generation,
        conditions,
        secret_ref: synced_version_id.is_some().then_some(SecretRef { name: target }),
        synced_version_id,
        rolled_out_version_id,
        findings: outcome.findings.clone().unwrap_or_else(|| previous.findings.clone()),
    }
}

/// Events and logs for what the reconcile did. Failures to publish are
/// logged: an event is never worth failing a sync for.
pub(super) async fn report(
    ps: &ProtectedSecret,
    ctx: &Context,
    previous: &ProtectedSecretStatus,
    outcome: &Outcome,
) {
    let namespace = ps.namespace().unwrap_or_default();
    let name = ps.name_any();
    let target = target::target_name(ps);
    let mut events = Vec::new();
    if let Ok(synced) = &outcome.sync
        && synced.written != Written::Unchanged
    {
        let version = &synced.value.version_id;
        let (reason, note) = match synced.written {
            Written::Repaired => (
                "DriftRepaired",
                format!("Secret {target} was changed or deleted outside dpo; restored version {version}"),
            ),
            _ => ("Synced", format!("wrote version {version} to Secret {target}")),
        };
        ctx.protected_secrets.metrics.synced();
        tracing::info!(%namespace, %name, %target, version = %version, event = reason, "secret written");
        events.push((EventType::Normal, reason.to_string(), note));
    }
    if let Some(failure) = outcome.failure() {
        let was = previous.conditions.iter().find(|c| c.type_ == READY).map(|c| c.reason.as_str());
        tracing::warn!(%namespace, %name, reason = %failure.reason, message = %failure.message, "not ready");
        if was != Some(failure.reason.as_str()) {
            events.push((EventType::Warning, failure.reason.clone(), failure.message.clone()));
        }
    }
    if let Some(findings) = &outcome.findings {
        let new: Vec<&Finding> =
            findings.iter().filter(|f| !previous.findings.iter().any(|p| p.rule == f.rule)).collect();
        if !new.is_empty() {
            let owned: Vec<Finding> = new.into_iter().cloned().collect();
            events.push((EventType::Warning, "PolicyViolation".into(), summary(&owned)));
        }
    }
    let recorder = ctx.protected_secrets.recorder(&ctx.client);
    let reference = ps.object_ref(&());
    for (type_, reason, note) in events {
        let event =
            Event { type_, reason, note: Some(event_note(note)), action: "Sync".into(), secondary: None };
        if let Err(err) = recorder.publish(&event, &reference).await {
            tracing::warn!(%namespace, %name, error = %err, "could not publish an event");
        }
    }
}
