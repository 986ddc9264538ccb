use super::*;
use serde_json::Value;

#[test]
fn digests_differ_by_key_and_by_process() {
    let one: BTreeMap<String, ByteString> = [("a".to_string(), ByteString(b"bc".to_vec()))].into();
    let other: BTreeMap<String, ByteString> = [("ab".to_string(), ByteString(b"c".to_vec()))].into();
    let key = ContentKey::random();
    assert_eq!(key.digest(&one), key.digest(&one));
    assert_ne!(key.digest(&one), key.digest(&other));
    assert_ne!(key.digest(&one), ContentKey::random().digest(&one));
    assert_eq!(key.digest(&one).len(), 64);
}

/// ProtectedSecret `db` (uid `new`) under `policy`, writing `password`.
fn protected_secret(policy: &str) -> ProtectedSecret {
    serde_json::from_value(json!({
        "apiVersion": "dpo.dev/v1alpha1", "kind": "ProtectedSecret",
        "metadata": {"name": "db", "namespace": "team", "uid": "new"},
        "spec": {
            "source": {"secretId": "team/db"},
            "target": {"name": "db", "creationPolicy": policy},
            "data": [{"key": "password", "property": "password"}],
        },
    }))
    .unwrap()
}

/// A Secret `db` with `metadata` merged in.
fn secret(metadata: Value) -> Secret {
    let mut object = json!({"metadata": {"name": "db", "namespace": "team"}});
    object["metadata"].as_object_mut().unwrap().extend(metadata.as_object().unwrap().clone());
    serde_json::from_value(object).unwrap()
}

/// Written under `name` by the operator, with these owner references.
fn written_by(name: &str, owners: Value) -> Secret {
    secret(json!({
        "labels": {MANAGED_BY_LABEL: MANAGED_BY},
        "annotations": {OWNER_ANNOTATION: name},
        "ownerReferences": owners,
    }))
}

fn owner(uid: &str, controller: bool) -> Value {
    json!({"apiVersion": "v1", "kind": "X", "name": "x", "uid": uid, "controller": controller})
}

#[test]
fn a_secret_is_ours_when_we_own_it_or_wrote_it_under_our_name_and_nothing_controls_it() {
    let (owned, orphan, merge) =
        (protected_secret("Owner"), protected_secret("Orphan"), protected_secret("Merge"));
    let cases = [
        ("owner reference to us", written_by("other", json!([owner("new", true)])), true, false),
        ("retained, no owner left", written_by("db", json!([])), true, true),
        ("retained, a non-controller owner", written_by("db", json!([owner("gc", false)])), true, true),
        ("retained, another controller", written_by("db", json!([owner("old", true)])), false, true),
        ("another ProtectedSecret's", written_by("other", json!([])), false, false),
        ("not the operator's", secret(json!({"annotations": {OWNER_ANNOTATION: "db"}})), false, false),
        (
            "the operator's, no owner annotation",
            secret(json!({"labels": {MANAGED_BY_LABEL: MANAGED_BY}})),
            false,
            false,
        ),
    ];
    for (case, secret, owner_policy, orphan_policy) in cases {
        assert_eq!(is_ours(&secret, &owned), owner_policy, "Owner: {case}");
        assert_eq!(is_ours(&secret, &orphan), orphan_policy, "Orphan: {case}");
        assert!(is_ours(&secret, &merge), "Merge writes its keys into any Secret it may: {case}");
    }
}

/// A managed-fields entry of `manager` with `fields`.
fn entry(manager: &str, operation: &str, fields: Value) -> Value {
    json!({"manager": manager, "operation": operation, "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": fields})
}

fn keys(password: bool, extra: &str) -> Value {
    let mut data = json!({".": {}});
    for key in password.then_some("f:password").into_iter().chain((!extra.is_empty()).then_some(extra)) {
        data[key] = json!({});
    }
    json!({
        "f:data": data,
        "f:metadata": {
            "f:labels": {".": {}, "f:dpo.dev/managed-by": {}},
            "f:annotations": {".": {}, "f:dpo.dev/protected-secret": {}, "f:dpo.dev/content-hmac": {}},
        },
    })
}

fn managed(entries: Vec<Value>) -> Secret {
    secret(json!({"managedFields": entries}))
}

fn want(ps: &ProtectedSecret) -> Secret {
    let data = [("password".to_string(), ByteString(b"pw".to_vec()))].into();
    desired(ps, data, &ContentKey::random())
}

#[test]
fn a_secret_written_by_one_object_drops_every_earlier_operator_manager() {
    let ps = protected_secret("Owner");
    let secret = managed(vec![
        entry("dpo/old", "Apply", keys(true, "f:username")),
        entry("dpo", "Apply", keys(true, "")),
        entry("dpo/new", "Apply", keys(true, "")),
        entry("kubectl", "Apply", keys(false, "f:note")),
        entry("dpo/hand", "Update", keys(false, "f:edited")),
    ]);
    assert_eq!(stale_managers(&secret, &ps, &want(&ps)), ["dpo/old", "dpo"]);
    let orphan = protected_secret("Orphan");
    assert_eq!(stale_managers(&secret, &orphan, &want(&orphan)), ["dpo/old", "dpo"]);
}

#[test]
fn a_merged_secret_drops_the_older_single_manager_only_when_it_held_nothing_but_ours() {
    let ps = protected_secret("Merge");
    let want = want(&ps);
    let sibling = entry("dpo/sibling", "Apply", keys(false, "f:token"));
    // The older versions' manager held our key and its bookkeeping: nothing else goes with it.
    let ours = managed(vec![entry("dpo", "Apply", keys(true, "")), sibling.clone()]);
    assert_eq!(stale_managers(&ours, &ps, &want), ["dpo"]);
    // It held another object's key too (that one wrote last): kept, or the key would go.
    let theirs = managed(vec![entry("dpo", "Apply", keys(true, "f:token")), sibling.clone()]);
    assert!(stale_managers(&theirs, &ps, &want).is_empty());
    // It applied the Secret's type: a release would take that away.
    let mut typed = keys(true, "");
    typed["f:type"] = json!({});
    assert!(stale_managers(&managed(vec![entry("dpo", "Apply", typed)]), &ps, &want).is_empty());
    // Another ProtectedSecret's own manager is never stale, nor is a label of another's.
    let mut labelled = keys(true, "");
    labelled["f:metadata"]["f:labels"]["f:team"] = json!({});
    assert!(stale_managers(&managed(vec![entry("dpo", "Apply", labelled)]), &ps, &want).is_empty());
    assert!(stale_managers(&managed(vec![sibling]), &ps, &want).is_empty());
}
