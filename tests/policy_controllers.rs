//! The cluster policy controllers' reconcile core against a mock apiserver and moto: findings,
//! conditions, exact status patches, Events, metrics, and no writes while nothing changes.

mod support;

use dpo::api::{EncryptedVolumePolicy, EncryptedVolumePolicySpec, TlsIngressPolicy, TlsIngressPolicySpec};
use dpo::aws::AwsFacts;
use dpo::controller::policy::{PolicyEngine, TlsPolicies, TlsWorld, VolumePolicies, VolumeWorld};
use dpo::controller::{Context, ControllerConfig};
use dpo::metrics::{FindingLabels, PolicyMetrics};
use k8s_openapi::api::core::v1::PersistentVolume;
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::Resource;
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use support::apiserver::{self, Call};
use support::moto::{self, Seed};
use support::proxy::{Fault, Proxy};

const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/default/events";

async fn context(client: kube::Client, aws: AwsFacts, policies: PolicyMetrics) -> Context {
    Context { policies, ..Context::new(client, aws, ControllerConfig::default(), &mut Registry::default()) }
}

fn parse<T: serde::de::DeserializeOwned>(yaml: &str) -> T {
    serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

fn calls(requests: &[Call]) -> Vec<(&str, &str)> {
    requests.iter().map(|r| (r.method.as_str(), r.path.as_str())).collect()
}

/// The body with its timestamps replaced, so that it can be compared as a whole.
fn without_times(mut body: Value) -> Value {
    fn walk(value: &mut Value) {
        match value {
            Value::Object(map) => {
                for (key, value) in map.iter_mut() {
                    if key == "lastTransitionTime" || key == "lastEvaluatedTime" {
                        *value = json!("<time>");
                    } else {
                        walk(value);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut body);
    body
}

fn finding_keys(status: &Value) -> Vec<(String, String, String)> {
    status["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let text = |v: &Value| v.as_str().unwrap().to_string();
            (text(&f["rule"]), text(&f["severity"]), text(&f["resource"]["name"]))
        })
        .collect()
}

fn storage_class(name: &str, parameters: &str, labels: &str) -> Arc<StorageClass> {
    Arc::new(parse(&format!(
        "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {{name: {name}, labels: {{{labels}}}}}\nprovisioner: ebs.csi.aws.com\nparameters: {{{parameters}}}\n"
    )))
}

fn volume(name: &str, class: &str, volume_id: &str) -> Arc<PersistentVolume> {
    Arc::new(parse(&format!(
        "apiVersion: v1\nkind: PersistentVolume\nmetadata: {{name: {name}}}\nspec:\n  storageClassName: {class}\n  capacity: {{storage: 1Gi}}\n  accessModes: [ReadWriteOnce]\n  claimRef: {{namespace: shop, name: data-{name}}}\n  csi: {{driver: ebs.csi.aws.com, volumeHandle: {volume_id}}}\nstatus: {{phase: Bound}}\n"
    )))
}

#[tokio::test]
async fn volume_policy_status_events_and_metrics_follow_the_world() {
    let seed = Seed::new().await;
    seed.ebs_default(false).await;
    let encrypted = seed.volume(true, None).await;
    let plain = seed.volume(false, None).await;
    let key = seed.key().await;
    let with_cmk = seed.volume(true, Some(&key.arn)).await;

    let (client, api) = apiserver::start();
    let metrics = PolicyMetrics::default();
    // The account default is toggled below; read it afresh on every evaluation.
    let mut settings = moto::test_settings();
    settings.cache.ebs_default_ttl = Duration::ZERO;
    // moto lacks GetEbsDefaultKmsKeyId; the proxy answers it as AWS does.
    let proxy = Proxy::start(moto::endpoint()).await;
    proxy.inject("GetEbsDefaultKmsKeyId", moto::ebs_default_key_answer("alias/aws/ebs"), 3);
    let aws = moto::facts_at(proxy.endpoint(), settings).await;
    let mut ctx = context(client.clone(), aws, metrics.clone()).await;
    // Nor may the engine hold facts from one evaluation to the next.
    ctx.config =
        Arc::new(ControllerConfig { reevaluation_period: Duration::ZERO, ..ControllerConfig::default() });
    let engine = PolicyEngine::<VolumePolicies>::new(ctx);
    let mut policy = EncryptedVolumePolicy::new("ebs", EncryptedVolumePolicySpec::default());
    policy.meta_mut().generation = Some(1);
    api.store(&policy);
    let mut world = VolumeWorld {
        storage_classes: vec![
            storage_class("gp3", "encrypted: \"true\"", ""),
            storage_class("gp2", "type: gp2", ""),
            storage_class("legacy", "", "dpo.dev/exempt: migrating-in-q3"),
        ],
        persistent_volumes: vec![volume("pv-enc", "gp3", &encrypted), volume("pv-plain", "gp3", &plain)],
    };

    let outcome = engine.reconcile(&policy, &world).await.expect("reconcile");
    let requests = api.take();
    let status_path = "/apis/dpo.dev/v1alpha1/encryptedvolumepolicies/ebs/status";
    assert_eq!(calls(&requests), [("PATCH", status_path), ("PATCH", status_path), ("POST", EVENTS)]);
    for patch in &requests[..2] {
        assert_eq!(patch.content_type, "application/apply-patch+yaml");
        assert!(
            patch.query.contains("fieldManager=dpo") && patch.query.contains("force=true"),
            "{}",
            patch.query
        );
    }
    // First the new generation is marked in progress, leaving the rest of the status alone.
    assert_eq!(
        without_times(requests[0].body.clone()),
        json!({
            "apiVersion": "dpo.dev/v1alpha1",
            "kind": "EncryptedVolumePolicy",
            "status": {
                "conditions": [{
                    "type": "Reconciling", "status": "True", "reason": "Evaluating",
                    "message": "evaluating generation 1", "observedGeneration": 1,
                    "lastTransitionTime": "<time>",
                }],
                "findings": [],
                "findingsTotal": 0,
            },
        })
    );
    // Then the evaluation: the body is exactly the status the reconcile reports.
    let body = &requests[1].body;
    assert_eq!(
        body,
        &json!({
            "apiVersion": "dpo.dev/v1alpha1",
            "kind": "EncryptedVolumePolicy",
            "status": serde_json::to_value(&outcome.status).unwrap(),
        })
    );
    let status = &body["status"];
    assert_eq!(status["observedGeneration"], 1);
    assert_eq!(
        status["summary"],
        json!({"evaluated": 5, "compliant": 2, "exempt": 1, "violations": 3, "skipped": 0,
               "bySeverity": {"low": 0, "medium": 1, "high": 2, "critical": 0}}),
        "{status:#}"
    );
    assert_eq!(
        finding_keys(status),
        [
            ("storageclass-encrypted".into(), "high".into(), "gp2".into()),
            ("encrypted-volumes".into(), "high".into(), "pv-plain".into()),
            ("ec2-ebs-encryption-by-default".into(), "medium".into(), "ebs".into()),
        ]
    );
    assert_eq!(status["findingsTotal"], 3);
    assert_eq!(
        status["exemptions"],
        json!([{"resource": {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "name": "legacy"},
                "reason": "migrating-in-q3"}])
    );
    let ready = &status["conditions"][0];
    assert_eq!((ready["type"].as_str(), ready["status"].as_str()), (Some("Ready"), Some("False")));
    assert_eq!(ready["reason"], "ViolationsFound");
    let message = ready["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "2 finding(s) at or above high; the most severe: storageclass-encrypted (high) on StorageClass/gp2: "
        ),
        "{message}"
    );
    assert_eq!(status["conditions"][1]["type"], "Reconciling");
    assert_eq!(status["conditions"][1]["status"], "False");
    assert!(status["lastEvaluatedTime"].is_string());

    let event = &requests[2].body;
    assert_eq!(
        (event["type"].as_str(), event["reason"].as_str()),
        (Some("Warning"), Some("ViolationsFound"))
    );
    assert_eq!(event["regarding"]["kind"], "EncryptedVolumePolicy");
    assert!(
        event["note"].as_str().unwrap().starts_with(
            "3 new violation(s); the most severe: storageclass-encrypted (high) on StorageClass/gp2: "
        ),
        "{event}"
    );
    let series = |rule: &str, severity: &'static str| {
        metrics.findings(&FindingLabels { policy: "ebs".into(), rule: rule.into(), severity })
    };
    assert_eq!(series("encrypted-volumes", "high"), Some(1));
    assert_eq!(series("ec2-ebs-encryption-by-default", "medium"), Some(1));

    // The same world again: the status the apiserver holds is already right, so no request.
    policy.status = Some(outcome.status.clone());
    let again = engine.reconcile(&policy, &world).await.expect("reconcile");
    assert_eq!(again.writes, 0);
    assert!(api.take().is_empty(), "an unchanged world must not write");

    // Everything fixed: encryption requested, the volume replaced by one under a CMK, the
    // account default on.
    seed.ebs_default(true).await;
    world.storage_classes[1] = storage_class("gp2", "encrypted: \"true\"", "");
    world.persistent_volumes[1] = volume("pv-plain", "gp3", &with_cmk);
    let fixed = engine.reconcile(&policy, &world).await.expect("reconcile");
    let requests = api.take();
    assert_eq!(calls(&requests), [("PATCH", status_path), ("POST", EVENTS)]);
    let status = &requests[0].body["status"];
    assert_eq!(status["findings"], json!([]));
    assert_eq!(status["summary"]["violations"], 0);
    assert_eq!(
        without_times(status["conditions"][0].clone()),
        json!({"type": "Ready", "status": "True", "reason": "Compliant",
               "message": "5 object(s) evaluated; no findings", "observedGeneration": 1,
               "lastTransitionTime": "<time>"})
    );
    assert_ne!(
        status["conditions"][0]["lastTransitionTime"],
        json!(null),
        "the flip to True records a transition"
    );
    let event = &requests[1].body;
    assert_eq!(
        (event["type"].as_str(), event["reason"].as_str()),
        (Some("Normal"), Some("ViolationsResolved"))
    );
    assert!(event["note"].as_str().unwrap().starts_with("3 violation(s) resolved"), "{event}");
    assert_eq!(series("encrypted-volumes", "high"), None, "stale series are removed");
    assert_eq!(series("ec2-ebs-encryption-by-default", "medium"), None);
    assert_eq!(fixed.writes, 1);
    seed.ebs_default(false).await;
}

fn ingress(name: &str, host: &str, annotations: &[(&str, &str)], labels: &str) -> Arc<Ingress> {
    let annotations: String =
        annotations.iter().map(|(k, v)| format!("\n    {k}: '{v}'")).collect::<Vec<_>>().concat();
    Arc::new(parse(&format!(
        "apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {name}
  namespace: shop
  labels: {{{labels}}}
  annotations:{annotations}
spec:
  ingressClassName: alb
  rules:
    - host: {host}
      http:
        paths:
          - {{path: /, pathType: Prefix, backend: {{service: {{name: web, port: {{number: 80}}}}}}}}"
    )))
}

const LISTEN: (&str, &str) = ("alb.ingress.kubernetes.io/listen-ports", r#"[{"HTTP": 80}, {"HTTPS": 443}]"#);
const REDIRECT: (&str, &str) = ("alb.ingress.kubernetes.io/ssl-redirect", "443");
const SSL_POLICY: (&str, &str) =
    ("alb.ingress.kubernetes.io/ssl-policy", "ELBSecurityPolicy-TLS13-1-2-2021-06");
const CERT: &str = "alb.ingress.kubernetes.io/certificate-arn";

#[tokio::test]
async fn tls_policy_judges_acm_certificates_and_flips_ready_back() {
    let seed = Seed::new().await;
    let days = |n: i64| jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * n);
    let shop_host = format!("{}.example.com", moto::unique("shop"));
    let old_host = format!("{}.example.com", moto::unique("old"));
    let found_host = format!("{}.example.com", moto::unique("found"));
    let good = seed.certificate(&[&shop_host], days(200)).await;
    let expiring = seed.certificate(&[&old_host], days(5)).await;
    let renewed = seed.certificate(&[&old_host], days(300)).await;
    seed.certificate(&[&found_host], days(100)).await;

    let (client, api) = apiserver::start();
    let ctx =
        context(client.clone(), moto::facts(moto::test_settings()).await, PolicyMetrics::default()).await;
    let aws = ctx.aws.clone();
    let engine = PolicyEngine::<TlsPolicies>::new(ctx);
    let mut policy = TlsIngressPolicy::new("tls", TlsIngressPolicySpec::default());
    policy.meta_mut().generation = Some(1);
    policy.status = Some(Default::default());
    api.store(&policy);
    let mut world = TlsWorld {
        ingresses: vec![
            ingress("shop", &shop_host, &[LISTEN, REDIRECT, SSL_POLICY, (CERT, &good)], ""),
            ingress("old", &old_host, &[LISTEN, REDIRECT, SSL_POLICY, (CERT, &expiring)], ""),
            // No certificate-arn: the ALB controller discovers one by host in ACM.
            ingress("found", &found_host, &[LISTEN, REDIRECT, SSL_POLICY], ""),
            ingress("legacy", "legacy.example.com", &[], "dpo.dev/exempt: retiring"),
        ],
        ..TlsWorld::default()
    };

    let outcome = engine.reconcile(&policy, &world).await.expect("reconcile");
    let requests = api.take();
    let status_path = "/apis/dpo.dev/v1alpha1/tlsingresspolicies/tls/status";
    assert_eq!(calls(&requests), [("PATCH", status_path), ("PATCH", status_path), ("POST", EVENTS)]);
    let status = &requests[1].body["status"];
    assert_eq!(status, &serde_json::to_value(&outcome.status).unwrap());
    assert_eq!(
        finding_keys(status),
        [("acm-certificate-expiration-check".into(), "high".into(), "old".into())]
    );
    assert_eq!(
        status["summary"],
        json!({"evaluated": 3, "compliant": 2, "exempt": 1, "violations": 1, "skipped": 0,
               "bySeverity": {"low": 0, "medium": 0, "high": 1, "critical": 0}})
    );
    assert_eq!(status["conditions"][0]["reason"], "ViolationsFound");
    let message = status["conditions"][0]["message"].as_str().unwrap();
    assert!(message.contains(&format!("certificate {expiring} expires on")), "{message}");
    assert_eq!(requests[2].body["reason"], "ViolationsFound");

    // Each certificate is described once; the unchanged pass reuses the facts gathered.
    let described = aws.metrics().count("acm", "DescribeCertificate");
    policy.status = Some(outcome.status.clone());
    engine.reconcile(&policy, &world).await.expect("reconcile");
    assert!(api.take().is_empty(), "an unchanged world must not write");
    assert_eq!(aws.metrics().count("acm", "DescribeCertificate"), described);

    // The certificate is renewed: Ready flips back and the resolution is reported once.
    world.ingresses[1] = ingress("old", &old_host, &[LISTEN, REDIRECT, SSL_POLICY, (CERT, &renewed)], "");
    let fixed = engine.reconcile(&policy, &world).await.expect("reconcile");
    let requests = api.take();
    assert_eq!(calls(&requests), [("PATCH", status_path), ("POST", EVENTS)]);
    assert_eq!(requests[0].body["status"]["conditions"][0]["status"], "True");
    assert_eq!(requests[0].body["status"]["findingsTotal"], 0);
    assert_eq!(requests[1].body["reason"], "ViolationsResolved");
    assert_eq!(requests[1].body["type"], "Normal");
    policy.status = Some(fixed.status);
    engine.reconcile(&policy, &world).await.expect("reconcile");
    assert!(api.take().is_empty(), "no second event for the same resolution");
}

#[tokio::test]
async fn a_rejected_status_write_is_a_typed_error() {
    let (client, api) = apiserver::start();
    api.reject_status_writes();
    let engine = PolicyEngine::<VolumePolicies>::new(
        context(client.clone(), moto::facts(moto::test_settings()).await, PolicyMetrics::default()).await,
    );
    let mut policy = EncryptedVolumePolicy::new("gone", EncryptedVolumePolicySpec::default());
    policy.meta_mut().generation = Some(2);
    api.store(&policy);
    let err = engine.reconcile(&policy, &VolumeWorld::default()).await.unwrap_err();
    assert!(err.to_string().starts_with("writing the status of gone: "), "{err}");
    assert_eq!(calls(&api.take()), [("PATCH", "/apis/dpo.dev/v1alpha1/encryptedvolumepolicies/gone/status")]);
}

/// The object as an apiserver serves it, at resourceVersion `version`.
fn served(mut ingress: Arc<Ingress>, version: u32) -> Arc<Ingress> {
    let meta = &mut Arc::make_mut(&mut ingress).metadata;
    meta.uid = Some(format!("uid-{}", meta.name.as_deref().unwrap_or_default()));
    meta.resource_version = Some(version.to_string());
    ingress
}

#[tokio::test]
async fn a_change_judges_only_the_units_it_touches_and_the_periodic_pass_all() {
    let seed = Seed::new().await;
    let host = format!("{}.example.com", moto::unique("units"));
    let certificate =
        seed.certificate(&[&host], jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 90)).await;
    let (client, api) = apiserver::start();
    let ctx =
        context(client.clone(), moto::facts(moto::test_settings()).await, PolicyMetrics::default()).await;
    let engine = PolicyEngine::<TlsPolicies>::new(ctx.clone());
    let mut policy = TlsIngressPolicy::new("units", TlsIngressPolicySpec::default());
    policy.meta_mut().generation = Some(1);
    policy.status = Some(Default::default());
    api.store(&policy);
    let grouped = |name: &str, group: &str, ssl_policy: &str, version: u32| {
        let annotations = [
            LISTEN,
            REDIRECT,
            ("alb.ingress.kubernetes.io/ssl-policy", ssl_policy),
            (CERT, &certificate),
            ("alb.ingress.kubernetes.io/group.name", group),
        ];
        served(ingress(name, &host, &annotations, ""), version)
    };
    let strong = SSL_POLICY.1;
    let mut world = TlsWorld {
        ingresses: vec![
            grouped("a1", "a", strong, 1),
            grouped("a2", "a", strong, 2),
            grouped("b1", "b", strong, 3),
            grouped("c1", "c", strong, 4),
        ],
        ..TlsWorld::default()
    };

    let first = engine.reconcile(&policy, &world).await.expect("reconcile");
    assert_eq!((first.units, first.judged_units), (3, 3));
    assert!(first.next_full_pass <= ControllerConfig::default().reevaluation_period);
    policy.status = Some(first.status);
    api.take();
    let unchanged = engine.reconcile(&policy, &world).await.expect("reconcile");
    assert_eq!((unchanged.judged_units, unchanged.writes), (0, 0));

    // The ALB of group b allows TLS 1.0: only that ALB is judged again.
    world.ingresses[2] = grouped("b1", "b", "ELBSecurityPolicy-2016-08", 5);
    let changed = engine.reconcile(&policy, &world).await.expect("reconcile");
    assert_eq!(changed.judged_units, 1);
    assert_eq!(changed.writes, 1);
    assert_eq!(
        changed
            .evaluation
            .sorted_findings()
            .iter()
            .map(|f| (f.rule.as_str(), f.resource.name.as_str()))
            .collect::<Vec<_>>(),
        [("elbv2-predefined-security-policy-ssl-check", "b1")]
    );

    // A new generation is judged whole.
    policy.meta_mut().generation = Some(2);
    policy.status = Some(changed.status);
    assert_eq!(engine.reconcile(&policy, &world).await.expect("reconcile").judged_units, 3);

    // With held facts read afresh on every pass, every pass is a full one.
    let mut periodic = ctx;
    periodic.config =
        Arc::new(ControllerConfig { reevaluation_period: Duration::ZERO, ..ControllerConfig::default() });
    let engine = PolicyEngine::<TlsPolicies>::new(periodic);
    for _ in 0..2 {
        let outcome = engine.reconcile(&policy, &world).await.expect("reconcile");
        assert_eq!((outcome.judged_units, outcome.next_full_pass), (3, Duration::ZERO));
    }
}

fn condition<'a>(status: &'a Value, type_: &str) -> Option<&'a Value> {
    status["conditions"].as_array().unwrap().iter().find(|c| c["type"] == type_)
}

/// Rules AWS could not answer for are counted and listed, and keep the policy from Ready while
/// they are at or above failOn: Stalled while only a person can fix the cause, Reconciling
/// while it is retried; unless the policy lets skipped rules pass.
#[tokio::test]
async fn rules_skipped_for_want_of_facts_keep_the_policy_from_ready() {
    let seed = Seed::new().await;
    let (denied, throttled, tolerated) = (seed.key().await, seed.key().await, seed.key().await);
    let proxy = Proxy::start(moto::endpoint()).await;
    let (client, api) = apiserver::start();
    let aws = moto::facts_at(proxy.endpoint(), moto::test_settings()).await;
    let engine = PolicyEngine::<VolumePolicies>::new(context(client, aws, PolicyMetrics::default()).await);
    let policy = |name: &str, extra: &str| {
        let spec = format!(
            "requireCustomerManagedKey: true\ncheckVolumes: false\ncheckAccountDefault: false\n{extra}"
        );
        let mut policy = EncryptedVolumePolicy::new(name, parse(&spec));
        policy.meta_mut().generation = Some(1);
        policy.status = Some(Default::default());
        api.store(&policy);
        policy
    };
    let world = |key: &moto::Key| VolumeWorld {
        storage_classes: vec![storage_class("cmk", &format!("kmsKeyId: {}", key.arn), "")],
        ..VolumeWorld::default()
    };
    let strict = policy("strict", "");
    let evaluate = |policy: &EncryptedVolumePolicy, world: VolumeWorld| {
        let engine = &engine;
        let policy = policy.clone();
        async move {
            serde_json::to_value(engine.reconcile(&policy, &world).await.expect("reconcile").status).unwrap()
        }
    };

    proxy.inject("DescribeKey", Fault::AccessDenied, 1);
    let status = evaluate(&strict, world(&denied)).await;
    let ready = condition(&status, "Ready").expect("Ready");
    assert_eq!(
        (ready["status"].as_str(), ready["reason"].as_str()),
        (Some("False"), Some("PolicyNotEvaluated"))
    );
    let message = ready["message"].as_str().unwrap();
    for part in
        ["kms-key-enabled", "kms-cmk-not-scheduled-for-deletion", "StorageClass/cmk", "kms:DescribeKey"]
    {
        assert!(message.contains(part), "{part} not in {message}");
    }
    assert_eq!(condition(&status, "Stalled").map(|c| &c["status"]), Some(&json!("True")), "{status:#}");
    assert_eq!(condition(&status, "Reconciling").map(|c| &c["status"]), Some(&json!("False")));
    assert_eq!(status["summary"]["skipped"], 3, "{status:#}");
    assert_eq!(status["summary"]["violations"], 0);
    let skipped = status["skipped"].as_array().expect("skipped rules listed");
    let rules: Vec<&str> = skipped.iter().map(|s| s["rule"].as_str().unwrap()).collect();
    assert_eq!(rules, ["kms-cmk-not-scheduled-for-deletion", "kms-key-enabled", "storageclass-using-cmk"]);
    assert_eq!(skipped[0]["severity"], "critical");
    assert_eq!(skipped[0]["count"], 1);
    assert_eq!(skipped[0]["resources"][0]["name"], "cmk");
    assert!(skipped[0]["causes"][0].as_str().unwrap().starts_with("AccessDenied: "), "{skipped:?}");

    // The fault is gone: the next evaluation asks AWS again and the policy is Ready.
    let status = evaluate(&strict, world(&denied)).await;
    let ready = condition(&status, "Ready").unwrap();
    assert_eq!(
        (ready["status"].as_str(), ready["reason"].as_str()),
        (Some("True"), Some("Compliant")),
        "{status:#}"
    );
    assert_eq!(status["summary"]["skipped"], 0);
    assert_eq!(status.get("skipped"), None);
    assert_eq!(condition(&status, "Stalled"), None);

    // A policy that lets skipped rules pass is Ready, and still lists them.
    let lenient = policy("lenient", "skippedRulesPass: true\n");
    proxy.inject("DescribeKey", Fault::AccessDenied, 1);
    let status = evaluate(&lenient, world(&tolerated)).await;
    let ready = condition(&status, "Ready").unwrap();
    assert_eq!(ready["status"], "True", "{status:#}");
    assert!(ready["message"].as_str().unwrap().contains("not evaluated"), "{ready}");
    assert_eq!(status["summary"]["skipped"], 3);
    assert_eq!(status["skipped"].as_array().map(Vec::len), Some(3));

    // Throttling is retried without anyone's help: in progress, not stalled, and asked again soon.
    proxy.inject("DescribeKey", Fault::Throttle, moto::test_settings().retry.max_attempts as usize);
    let outcome = engine.reconcile(&strict, &world(&throttled)).await.expect("reconcile");
    assert!(outcome.requeue_after() < outcome.next_full_pass, "{:?}", outcome.requeue_after());
    let status = serde_json::to_value(outcome.status).unwrap();
    let ready = condition(&status, "Ready").unwrap();
    assert_eq!(
        (ready["status"].as_str(), ready["reason"].as_str()),
        (Some("False"), Some("PolicyNotEvaluated"))
    );
    assert_eq!(condition(&status, "Reconciling").map(|c| &c["status"]), Some(&json!("True")), "{status:#}");
    assert_eq!(condition(&status, "Stalled"), None);
}
