//! The policy core against what the real components do: the CRD schemas the apiserver enforces
//! for policy selectors.

use serde_json::Value;

/// The schema under `path` (property names) of a kind's `spec`.
fn spec_schema<'a>(crds: &'a [Value], kind: &str, path: &[&str]) -> &'a Value {
    let crd = crds.iter().find(|crd| crd["spec"]["names"]["kind"] == kind).expect("kind");
    let mut schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    for name in path {
        schema = &schema["properties"][name];
    }
    schema
}

#[test]
fn selector_operators_outside_the_four_kubernetes_knows_are_refused_by_the_schema() {
    let crds: Vec<Value> = dpo::api::crds().iter().map(|crd| serde_json::to_value(crd).unwrap()).collect();
    for (kind, selector) in [
        ("EncryptedVolumePolicy", "storageClassSelector"),
        ("TlsIngressPolicy", "ingressSelector"),
        ("TlsIngressPolicy", "namespaceSelector"),
    ] {
        let requirement = &spec_schema(&crds, kind, &[selector, "matchExpressions"])["items"];
        assert_eq!(
            requirement["properties"]["operator"]["enum"],
            serde_json::json!(["In", "NotIn", "Exists", "DoesNotExist"]),
            "{kind}.spec.{selector}: {requirement}"
        );
        assert_eq!(requirement["required"], serde_json::json!(["key", "operator"]), "{kind}.spec.{selector}");
    }
}
