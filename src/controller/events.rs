//! Events (events.k8s.io/v1), published as kube's `Recorder` publishes them: a repeat of the
//! same type, action and reason about the same object within six minutes counts in the first
//! Event's `series`. Of each recent Event only a digest of that key, its name and its count are
//! kept; the `Recorder` keeps whole Events (about 2 KiB each in its map), which with one Event
//! per ProtectedSecret at a start was a quarter of the controller's heap at 10,000 objects.

use super::lock;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event as KubeEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Reporter};
use serde_json::json;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a repeat joins the series of the first Event, as for kube's `Recorder`.
const SERIES_WINDOW: Duration = Duration::from_secs(6 * 60);

pub struct EventPublisher {
    client: kube::Client,
    reporter: Reporter,
    digests: RandomState,
    recent: Mutex<Recent>,
}

#[derive(Default)]
struct Recent {
    /// By digest of (type, action, reason, regarding, related).
    published: HashMap<u64, Published>,
    pruned: Option<Instant>,
}

struct Published {
    name: String,
    count: i32,
    at: Instant,
}

impl EventPublisher {
    pub fn new(client: kube::Client, reporter: Reporter) -> Self {
        EventPublisher { client, reporter, digests: RandomState::new(), recent: Mutex::default() }
    }

    /// Creates the Event, or counts it in the series of the same one published lately.
    pub async fn publish(&self, event: &Event, regarding: &ObjectReference) -> Result<(), kube::Error> {
        let digest = self.digest(event, regarding);
        let repeat = self.repeat_of(digest);
        let namespace = regarding.namespace.as_deref().unwrap_or("default");
        let api: Api<KubeEvent> = Api::namespaced(self.client.clone(), namespace);
        let now = jiff::Timestamp::now();
        let (name, count) = match repeat {
            Some((name, count)) => {
                let series = json!({"series": {"count": count, "lastObservedTime": MicroTime(now)}});
                api.patch(&name, &PatchParams::default(), &Patch::Merge(&series)).await?;
                (name, count)
            }
            None => {
                let created = api.create(&PostParams::default(), &self.event(event, regarding, now)).await?;
                (created.metadata.name.unwrap_or_default(), 1)
            }
        };
        lock(&self.recent).published.insert(digest, Published { name, count, at: Instant::now() });
        Ok(())
    }

    /// The name and next count of the series `digest` joins, if one is open; forgets closed
    /// series now and then (not on every call: there may be an entry per object).
    fn repeat_of(&self, digest: u64) -> Option<(String, i32)> {
        let mut recent = lock(&self.recent);
        if recent.pruned.is_none_or(|at| at.elapsed() >= SERIES_WINDOW / 6) {
            recent.published.retain(|_, p| p.at.elapsed() < SERIES_WINDOW);
            recent.pruned = Some(Instant::now());
        }
        let open = recent.published.get(&digest).filter(|p| p.at.elapsed() < SERIES_WINDOW)?;
        Some((open.name.clone(), open.count + 1))
    }

    fn digest(&self, event: &Event, regarding: &ObjectReference) -> u64 {
        let type_ = matches!(event.type_, EventType::Warning);
        let key = (
            type_,
            &event.action,
            &event.reason,
            reference_key(regarding),
            event.secondary.as_ref().map(reference_key),
        );
        self.digests.hash_one(key)
    }

    fn event(&self, event: &Event, regarding: &ObjectReference, now: jiff::Timestamp) -> KubeEvent {
        let controller = &self.reporter.controller;
        let name = regarding.name.as_deref().unwrap_or(controller);
        KubeEvent {
            action: Some(event.action.clone()),
            reason: Some(event.reason.clone()),
            note: event.note.clone(),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding.clone()),
            related: event.secondary.clone(),
            metadata: ObjectMeta {
                namespace: regarding.namespace.clone(),
                name: Some(format!("{name}.{:x}", now.as_nanosecond())),
                ..ObjectMeta::default()
            },
            reporting_controller: Some(controller.clone()),
            reporting_instance: Some(self.reporter.instance.clone().unwrap_or_else(|| controller.clone())),
            type_: Some(match event.type_ {
                EventType::Normal => "Normal".into(),
                EventType::Warning => "Warning".into(),
            }),
            ..KubeEvent::default()
        }
    }
}

fn reference_key(reference: &ObjectReference) -> impl Hash + '_ {
    (&reference.api_version, &reference.kind, &reference.namespace, &reference.name, &reference.uid)
}
