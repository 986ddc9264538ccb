//! Status conditions as kstatus, Argo CD and Flux read them.
//!
//! `Ready` is the summary a GitOps tool gates on; `Reconciling` is True while work is in
//! progress, `Stalled` while only a person can fix what is wrong. Every condition carries the `observedGeneration` it describes. A condition keeps its
//! `lastTransitionTime` while its status does not change, so an unchanged world produces an
//! identical status and no write.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

pub const READY: &str = "Ready";
pub const RECONCILING: &str = "Reconciling";
pub const SYNCED: &str = "Synced";
pub const COMPLIANT: &str = "Compliant";
pub const STALLED: &str = "Stalled";

/// Events carry at most this many bytes of note (the Events API refuses more than 1 kB).
pub const EVENT_NOTE_LIMIT: usize = 1000;

/// `text` cut to [`EVENT_NOTE_LIMIT`] on a character boundary, marked `...` where cut.
pub fn event_note(mut text: String) -> String {
    if text.len() > EVENT_NOTE_LIMIT {
        let mut end = EVENT_NOTE_LIMIT - 3;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("...");
    }
    text
}

/// What a `Ready=False` verdict adds for the GitOps tools: a transient failure, retried without
/// anyone's help, is `Reconciling=True` (kstatus InProgress, Argo CD Progressing); any other is
/// `Stalled=True` (kstatus Failed, Argo CD Degraded), so a rollout gate fails at once instead of
/// waiting for its timeout.
pub fn not_ready(reason: &str, message: impl Into<String>, transient: bool) -> Desired {
    Desired::new(if transient { RECONCILING } else { STALLED }, true, reason, message)
}

/// A condition to set: type, status, CamelCase reason and a message a person can act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    pub type_: &'static str,
    pub status: bool,
    pub reason: String,
    pub message: String,
}

impl Desired {
    pub fn new(
        type_: &'static str,
        status: bool,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Desired { type_, status, reason: reason.into(), message: message.into() }
    }
}

fn status_str(status: bool) -> &'static str {
    if status { "True" } else { "False" }
}

/// The conditions after applying `desired` to `current`: conditions of types not in `desired`
/// are dropped, and a condition whose status is unchanged keeps its `lastTransitionTime`.
pub fn merge_conditions(
    current: &[Condition],
    desired: &[Desired],
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    desired
        .iter()
        .map(|want| {
            let status = status_str(want.status);
            let previous = current.iter().find(|c| c.type_ == want.type_);
            let last_transition_time = match previous {
                Some(prev) if prev.status == status => prev.last_transition_time.clone(),
                _ => now.clone(),
            };
            Condition {
                type_: want.type_.to_string(),
                status: status.to_string(),
                reason: want.reason.clone(),
                message: want.message.clone(),
                observed_generation: generation,
                last_transition_time,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_event_notes_are_clipped_on_a_character_boundary() {
        let note = event_note("é".repeat(EVENT_NOTE_LIMIT));
        assert!(note.len() <= EVENT_NOTE_LIMIT && note.ends_with("..."), "{}", note.len());
        assert_eq!(event_note("short".into()), "short");
    }

    fn time(s: &str) -> Time {
        Time(s.parse().unwrap())
    }

    #[test]
    fn unchanged_status_keeps_its_transition_time() {
        let first = merge_conditions(
            &[],
            &[Desired::new(READY, true, "Synced", "ok")],
            Some(1),
            &time("2026-01-01T00:00:00Z"),
        );
        let again = merge_conditions(
            &first,
            &[Desired::new(READY, true, "Synced", "ok")],
            Some(1),
            &time("2026-02-01T00:00:00Z"),
        );
        assert_eq!(first, again);
        let flipped = merge_conditions(
            &again,
            &[Desired::new(READY, false, "AccessDenied", "no")],
            Some(2),
            &time("2026-03-01T00:00:00Z"),
        );
        assert_eq!(flipped[0].last_transition_time, time("2026-03-01T00:00:00Z"));
        assert_eq!((flipped[0].status.as_str(), flipped[0].observed_generation), ("False", Some(2)));
    }
}
