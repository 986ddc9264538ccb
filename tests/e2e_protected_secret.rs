//! End to end against a real cluster (`KUBECONFIG`): the CRDs are applied, the controller runs
//! in this process against moto, and a ProtectedSecret is synced, refreshed after a rotation,
//! repaired after a hand edit and a deletion, and deleted per its policies (by the garbage
//! collector where it owns the Secret); a retained Secret is taken back; a secret of another
//! account is refused; with `--secret-namespaces`, a ProtectedSecret in another namespace is
//! left alone. Merging into one Secret: `e2e_protected_secret_merge.rs`.
//!
//! Run with `tests/run.sh`, which starts a control plane; without a cluster every test fails
//! saying so.

mod support;

use dpo::api::ProtectedSecret;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use std::future::Future;
use std::time::Duration;
use support::cluster::{self, eventually};
use support::moto::Seed;
use support::protected_secrets::{
    apply_protected_secret, compliant_secret, dpo_managers, in_namespace, key, run_in_namespace, secret_where,
};

fn password(secret: &Secret) -> Option<String> {
    let bytes = secret.data.as_ref()?.get("password")?;
    String::from_utf8(bytes.0.clone()).ok()
}

/// A check for [`eventually`]: the Secret `db`, once its password is `expected`.
fn holding(
    secrets: &Api<Secret>,
    expected: &'static str,
) -> impl FnMut() -> std::pin::Pin<Box<dyn Future<Output = Option<Secret>> + Send>> + use<> {
    let secrets = secrets.clone();
    move || {
        let secrets = secrets.clone();
        Box::pin(async move {
            secrets.get_opt("db").await.ok().flatten().filter(|s| password(s).as_deref() == Some(expected))
        })
    }
}

#[tokio::test]
async fn a_secret_is_synced_refreshed_repaired_and_retained() {
    in_namespace(|client, namespace| async move {
        let secret_id = compliant_secret(&namespace, "pw-1").await;
        let spec = json!({
            "source": {"secretId": secret_id},
            "data": [{"key": "password", "property": "password"}],
            "refreshInterval": "10s",
        });
        apply_protected_secret(&client, &namespace, "db", spec).await;
        let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
        let get = |expected: &'static str| holding(&secrets, expected);
        let synced = eventually("the Secret with pw-1", get("pw-1")).await;
        assert_eq!(synced.metadata.owner_references.as_ref().map(Vec::len), Some(1), "Owner: owned");
        let psecs: Api<ProtectedSecret> = Api::namespaced(client.clone(), &namespace);
        eventually("Ready=True", || {
            let psecs = psecs.clone();
            async move {
                let ps = psecs.get("db").await.ok()?;
                let status = ps.status?;
                status.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True").then_some(())
            }
        })
        .await;

        Seed::new()
            .await
            .put_value(&secret_id, &json!({"username": "app", "password": "pw-2"}).to_string())
            .await;
        eventually("the rotated value pw-2", get("pw-2")).await;

        let edit = json!({"data": {"password": "aGFja2Vk"}});
        secrets.patch("db", &PatchParams::default(), &Patch::Merge(&edit)).await.expect("hand edit");
        eventually("the hand edit repaired", get("pw-2")).await;

        secrets.delete("db", &DeleteParams::default()).await.expect("delete Secret");
        eventually("the deleted Secret recreated", get("pw-2")).await;

        // Owner + Retain: the ProtectedSecret goes, the Secret stays without its owner.
        psecs.delete("db", &DeleteParams::default()).await.expect("delete ProtectedSecret");
        eventually("the ProtectedSecret gone", || {
            let psecs = psecs.clone();
            async move { psecs.get_opt("db").await.ok().flatten().is_none().then_some(()) }
        })
        .await;
        let kept = secrets.get("db").await.expect("Retain keeps the Secret");
        assert!(kept.metadata.owner_references.as_ref().is_none_or(Vec::is_empty), "released by its owner");
        assert_eq!(password(&kept).as_deref(), Some("pw-2"));
    })
    .await;
}

#[tokio::test]
async fn a_hand_edit_is_repaired_without_waiting_for_the_refresh() {
    in_namespace(|client, namespace| async move {
        let secret_id = compliant_secret(&namespace, "pw-1").await;
        let spec = json!({
            "source": {"secretId": secret_id},
            "data": [{"key": "password", "property": "password"}],
            "refreshInterval": "24h",
        });
        apply_protected_secret(&client, &namespace, "db", spec).await;
        let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
        eventually("the Secret with pw-1", holding(&secrets, "pw-1")).await;
        // Only the watch of the Secret can bring it back before the refresh, a day away.
        let edit = json!({"data": {"password": "aGFja2Vk"}});
        secrets.patch("db", &PatchParams::default(), &Patch::Merge(&edit)).await.expect("hand edit");
        eventually("the hand edit repaired", holding(&secrets, "pw-1")).await;
    })
    .await;
}

#[tokio::test]
async fn delete_policy_removes_the_secret_with_its_protected_secret() {
    in_namespace(|client, namespace| async move {
        let secret_id = compliant_secret(&namespace, "pw-1").await;
        let spec = json!({
            "source": {"secretId": secret_id},
            "target": {"name": "orphan", "creationPolicy": "Orphan", "deletionPolicy": "Delete"},
            "data": [{"key": "password", "property": "password"}],
        });
        apply_protected_secret(&client, &namespace, "db", spec).await;
        let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
        let created = eventually("the Secret", || {
            let secrets = secrets.clone();
            async move { secrets.get_opt("orphan").await.ok().flatten() }
        })
        .await;
        assert!(created.metadata.owner_references.unwrap_or_default().is_empty(), "Orphan: no owner");

        let psecs: Api<ProtectedSecret> = Api::namespaced(client.clone(), &namespace);
        psecs.delete("db", &DeleteParams::default()).await.expect("delete ProtectedSecret");
        eventually("the Secret deleted with its ProtectedSecret", || {
            let (secrets, psecs) = (secrets.clone(), psecs.clone());
            async move {
                let secret_gone = secrets.get_opt("orphan").await.ok()?.is_none();
                let psec_gone = psecs.get_opt("db").await.ok()?.is_none();
                (secret_gone && psec_gone).then_some(())
            }
        })
        .await;
    })
    .await;
}

#[tokio::test]
async fn a_foreign_secret_is_never_adopted() {
    in_namespace(|client, namespace| async move {
        let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
        let foreign =
            serde_json::from_value(json!({"metadata": {"name": "db"}, "stringData": {"password": "mine"}}))
                .unwrap();
        secrets.create(&PostParams::default(), &foreign).await.expect("create foreign Secret");
        let secret_id = compliant_secret(&namespace, "pw-1").await;
        let spec =
            json!({"source": {"secretId": secret_id}, "data": [{"key": "password", "property": "password"}]});
        apply_protected_secret(&client, &namespace, "db", spec).await;
        let psecs: Api<ProtectedSecret> = Api::namespaced(client.clone(), &namespace);
        eventually("Ready=False TargetExists", || {
            let psecs = psecs.clone();
            async move {
                let status = psecs.get("db").await.ok()?.status?;
                status
                    .conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.reason == "TargetExists")
                    .then_some(())
            }
        })
        .await;
        assert_eq!(password(&secrets.get("db").await.unwrap()).as_deref(), Some("mine"));
    })
    .await;
}

#[tokio::test]
async fn a_secret_of_another_account_is_refused_naming_the_rule_field() {
    in_namespace(|client, namespace| async move {
        let secret_id = format!("arn:aws:secretsmanager:us-east-1:222222222222:secret:{namespace}/db");
        let spec =
            json!({"source": {"secretId": secret_id}, "data": [{"key": "password", "property": "password"}]});
        apply_protected_secret(&client, &namespace, "db", spec).await;
        let psecs: Api<ProtectedSecret> = Api::namespaced(client.clone(), &namespace);
        let message = eventually("Ready=False AccessNotAllowed", || {
            let psecs = psecs.clone();
            async move {
                let status = psecs.get("db").await.ok()?.status?;
                let ready = status.conditions.into_iter().find(|c| c.type_ == "Ready")?;
                (ready.reason == "AccessNotAllowed").then_some(ready.message)
            }
        })
        .await;
        assert!(
            message.contains("in account 222222222222") && message.contains("accounts of its access rules"),
            "{message}"
        );
        let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
        assert!(secrets.get_opt("db").await.unwrap().is_none(), "nothing written");
    })
    .await;
}

#[tokio::test]
async fn with_secret_namespaces_a_protected_secret_elsewhere_is_not_watched() {
    run_in_namespace(true, |client, namespace| async move {
        let elsewhere = cluster::create_namespace(&client, "dpo-e2e-elsewhere").await;
        let spec = |secret_id: &str| {
            json!({
                "source": {"secretId": secret_id},
                "data": [{"key": "password", "property": "password"}],
            })
        };
        let secret_id = compliant_secret(&namespace, "pw-1").await;
        apply_protected_secret(&client, &namespace, "db", spec(&secret_id)).await;
        // Were it watched, even a missing AWS secret would be reported in status.
        apply_protected_secret(&client, &elsewhere, "db", spec(&format!("{elsewhere}/db"))).await;
        let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
        eventually("the Secret in the watched namespace", || {
            let secrets = secrets.clone();
            async move {
                let secret = secrets.get_opt("db").await.ok().flatten();
                secret.filter(|s| password(s).as_deref() == Some("pw-1"))
            }
        })
        .await;
        // The other namespace has had as long, and a few seconds more.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let unwatched = Api::<ProtectedSecret>::namespaced(client.clone(), &elsewhere).get("db").await;
        let secret = Api::<Secret>::namespaced(client.clone(), &elsewhere).get_opt("db").await;
        cluster::delete_namespace(&client, &elsewhere).await;
        // What the apiserver serves until a controller writes status: the CRD's default.
        let status = unwatched.expect("get the ProtectedSecret").status.unwrap_or_default();
        assert!(
            status.observed_generation == Some(-1) && status.conditions.is_empty(),
            "a ProtectedSecret outside --secret-namespaces got a status: {status:?}"
        );
        assert!(
            secret.expect("get the Secret").is_none(),
            "a Secret was written outside --secret-namespaces"
        );
    })
    .await;
}

#[tokio::test]
async fn an_owned_secret_is_collected_with_its_protected_secret() {
    in_namespace(|client, namespace| async move {
        let secret_id = compliant_secret(&namespace, "pw-1").await;
        let spec = json!({
            "source": {"secretId": secret_id},
            "target": {"deletionPolicy": "Delete"},
            "data": [{"key": "password", "property": "password"}],
        });
        apply_protected_secret(&client, &namespace, "db", spec).await;
        let synced = secret_where(&client, &namespace, "db", "the owned Secret", |s| s.data.is_some()).await;
        assert_eq!(synced.metadata.owner_references.map(|o| o.len()), Some(1));
        let psecs: Api<ProtectedSecret> = Api::namespaced(client.clone(), &namespace);
        // Owner + Delete is the garbage collector's job: no finalizer of ours holds it up.
        assert!(psecs.get("db").await.expect("get").metadata.finalizers.unwrap_or_default().is_empty());
        psecs.delete("db", &DeleteParams::background()).await.expect("delete ProtectedSecret");
        let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
        eventually("the garbage collector deleting the owned Secret", || {
            let secrets = secrets.clone();
            async move { secrets.get_opt("db").await.ok()?.is_none().then_some(()) }
        })
        .await;
    })
    .await;
}

#[tokio::test]
async fn a_retained_secret_is_taken_back_when_its_protected_secret_is_created_again() {
    in_namespace(|client, namespace| async move {
        let secret_id = compliant_secret(&namespace, "pw-1").await;
        let both = json!({
            "source": {"secretId": secret_id},
            "data": [{"key": "password", "property": "password"}, {"key": "username", "property": "username"}],
        });
        apply_protected_secret(&client, &namespace, "db", both).await;
        let first = secret_where(&client, &namespace, "db", "the first sync", |s| key(s, "username").is_some()).await;
        let psecs: Api<ProtectedSecret> = Api::namespaced(client.clone(), &namespace);
        let old_uid = psecs.get("db").await.expect("get").metadata.uid.expect("uid");
        assert_eq!(dpo_managers(&first), [format!("dpo/{old_uid}")]);

        // Deleted with Retain, then created again (a restore, an Argo CD replace), asking for one
        // key fewer.
        psecs.delete("db", &DeleteParams::default()).await.expect("delete ProtectedSecret");
        eventually("the ProtectedSecret gone", || {
            let psecs = psecs.clone();
            async move { psecs.get_opt("db").await.ok().flatten().is_none().then_some(()) }
        })
        .await;
        let one = json!({"source": {"secretId": secret_id}, "data": [{"key": "password", "property": "password"}]});
        apply_protected_secret(&client, &namespace, "db", one).await;
        let new_uid = psecs.get("db").await.expect("get").metadata.uid.expect("uid");
        let owned_again = |s: &Secret| {
            s.metadata.owner_references.iter().flatten().any(|o| o.uid == new_uid && o.controller == Some(true))
        };
        let taken = secret_where(&client, &namespace, "db", "the Secret owned again", |s| {
            owned_again(s) && key(s, "username").is_none()
        })
        .await;
        assert_eq!(key(&taken, "password").as_deref(), Some("pw-1"));
        assert_eq!(dpo_managers(&taken), [format!("dpo/{new_uid}")], "the earlier manager released");
        eventually("Ready=True", || {
            let psecs = psecs.clone();
            async move {
                let status = psecs.get("db").await.ok()?.status?;
                status.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True").then_some(())
            }
        })
        .await;
    })
    .await;
}

#[tokio::test]
async fn the_crd_refuses_what_no_protected_secret_may_ask_for() {
    let client = cluster::client().await;
    cluster::install_crds(&client).await;
    let namespace = cluster::create_namespace(&client, "dpo-e2e-crd").await;
    let psecs: Api<ProtectedSecret> = Api::namespaced(client.clone(), &namespace);
    let cases = [
        (json!({"type": "kubernetes.io/service-account-token"}), json!({}), "ServiceAccount token"),
        (json!({"labels": {"dpo.dev/managed-by": "dpo"}}), json!({}), "reserved"),
        (json!({"annotations": {"kubernetes.io/service-account.name": "default"}}), json!({}), "reserved"),
        (json!({}), json!({"data": [{"key": "..data"}]}), "does not start with '..'"),
        (json!({}), json!({"data": [{"key": "a b"}]}), "spec.data[0].key"),
        (json!({}), json!({"template": {"data": {"a/b": "{{ x }}"}}}), "template keys are Secret keys"),
    ];
    for (i, (target, extra, expected)) in cases.into_iter().enumerate() {
        let mut spec =
            json!({"source": {"secretId": format!("{namespace}/db")}, "dataFrom": {"extract": true}});
        spec["target"] = target;
        spec.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let object = json!({"apiVersion": "dpo.dev/v1alpha1", "kind": "ProtectedSecret", "metadata": {"name": format!("c{i}")}, "spec": spec});
        let refused = psecs
            .create(&PostParams::default(), &serde_json::from_value(object).unwrap())
            .await
            .expect_err("the apiserver refuses it");
        let kube::Error::Api(status) = refused else { panic!("case {i}: {refused}") };
        assert_eq!(status.code, 422, "case {i}: {status:?}");
        assert!(status.message.contains(expected), "case {i}: {}", status.message);
    }
    cluster::delete_namespace(&client, &namespace).await;
}
