//! Events as the controllers publish them: a repeat about the same object within the series
//! window counts in the first Event's series; another reason, or another object, is an Event
//! of its own.

mod support;

use dpo::controller::events::EventPublisher;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Reporter};
use serde_json::Value;

fn reference(name: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some("dpo.dev/v1alpha1".into()),
        kind: Some("ProtectedSecret".into()),
        namespace: Some("team".into()),
        name: Some(name.into()),
        uid: Some(format!("uid-{name}")),
        ..ObjectReference::default()
    }
}

fn event(type_: EventType, reason: &str) -> Event {
    Event {
        type_,
        reason: reason.into(),
        note: Some(format!("{reason} happened")),
        action: "Sync".into(),
        secondary: None,
    }
}

#[tokio::test]
async fn a_repeat_counts_in_the_series_of_the_first_event_and_anything_else_is_its_own() {
    let (client, api) = support::apiserver::start();
    let reporter = Reporter { controller: "dpo".into(), instance: Some("dpo-0".into()) };
    let publisher = EventPublisher::new(client, reporter);
    let failed = event(EventType::Warning, "SecretNotFound");
    for _ in 0..3 {
        publisher.publish(&failed, &reference("db")).await.unwrap();
    }
    publisher.publish(&event(EventType::Normal, "Created"), &reference("db")).await.unwrap();
    publisher.publish(&failed, &reference("api")).await.unwrap();

    let events = api.events();
    assert_eq!(events.len(), 5, "one write per publish");
    let created: Vec<&Value> = events.iter().filter(|e| e["series"].is_null()).collect();
    assert_eq!(created.len(), 3, "db's failure, db's Created, api's failure: {created:#?}");
    let db_failed =
        created.iter().find(|e| e["reason"] == "SecretNotFound" && e["regarding"]["name"] == "db").unwrap();
    assert_eq!(db_failed["type"], "Warning");
    assert_eq!(db_failed["note"], "SecretNotFound happened");
    assert_eq!(db_failed["reportingController"], "dpo");
    assert_eq!(db_failed["reportingInstance"], "dpo-0");
    assert!(db_failed["metadata"]["name"].as_str().unwrap().starts_with("db."));

    let series = api.get(&format!(
        "/apis/events.k8s.io/v1/namespaces/team/events/{}",
        db_failed["metadata"]["name"].as_str().unwrap()
    ));
    let series = series.expect("the first Event is stored");
    assert_eq!(series["series"]["count"], 3, "two repeats after the first: {series:#}");
    assert_eq!(series["reason"], "SecretNotFound", "a series update keeps the Event");
}
