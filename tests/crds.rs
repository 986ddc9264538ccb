//! `crds/` is exactly what `dpo crdgen` prints, and the schemas hold what the apiserver needs.

use serde_json::Value;

#[test]
fn checked_in_crds_match_the_rust_types() {
    let checked_in = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/crds/crds.yaml")).unwrap();
    assert!(
        checked_in == dpo::api::crds_yaml(),
        "crds/crds.yaml is stale: run `cargo run -- crdgen > crds/crds.yaml` and commit it"
    );
}

#[test]
fn crdgen_prints_the_three_kinds_with_short_names() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_dpo")).arg("crdgen").output().unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    let docs: Vec<Value> = serde_yaml::Deserializer::from_str(&text)
        .map(|doc| serde::Deserialize::deserialize(doc).unwrap())
        .collect();
    let names: Vec<(&str, &str, &str)> = docs
        .iter()
        .map(|crd| {
            let names = &crd["spec"]["names"];
            (
                names["kind"].as_str().unwrap(),
                names["shortNames"][0].as_str().unwrap(),
                crd["spec"]["scope"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("ProtectedSecret", "psec", "Namespaced"),
            ("EncryptedVolumePolicy", "evpol", "Cluster"),
            ("TlsIngressPolicy", "tlspol", "Cluster")
        ]
    );
}

/// Walks a schema, calling `visit` on every sub-schema with its path.
fn walk<'a>(schema: &'a Value, path: String, visit: &mut impl FnMut(&str, &'a Value)) {
    visit(&path, schema);
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (name, child) in properties {
            walk(child, format!("{path}.{name}"), visit);
        }
    }
    if let Some(items) = schema.get("items") {
        walk(items, format!("{path}[]"), visit);
    }
    if let Some(additional) = schema.get("additionalProperties").filter(|a| a.is_object()) {
        walk(additional, format!("{path}{{}}"), visit);
    }
}

#[test]
fn schemas_are_structural() {
    // A structural schema gives every node a type (or x-kubernetes-int-or-string /
    // preserve-unknown-fields) and uses no $ref, anyOf/oneOf without types, or definitions.
    for crd in dpo::api::crds() {
        let crd = serde_json::to_value(&crd).unwrap();
        let version = &crd["spec"]["versions"][0];
        let schema = &version["schema"]["openAPIV3Schema"];
        let mut problems = Vec::new();
        walk(schema, crd["spec"]["names"]["kind"].as_str().unwrap().to_string(), &mut |path, node| {
            let typed = node.get("type").is_some()
                || node.get("x-kubernetes-int-or-string").is_some()
                || node.get("x-kubernetes-preserve-unknown-fields").is_some();
            if !typed {
                problems.push(format!("{path}: no type"));
            }
            for forbidden in ["$ref", "definitions", "$schema"] {
                if node.get(forbidden).is_some() {
                    problems.push(format!("{path}: {forbidden}"));
                }
            }
        });
        assert!(problems.is_empty(), "{problems:#?}");
        assert_eq!(version["subresources"]["status"], serde_json::json!({}));
    }
}

#[test]
fn apiserver_enforced_validation_is_in_the_schema() {
    let yaml = dpo::api::crds_yaml();
    for rule in [
        "!(has(self.versionStage) && has(self.versionId))",
        "duration(self) >= duration('10s')",
        "has(self.dataFrom)",
    ] {
        assert!(yaml.contains(rule), "missing CEL rule {rule}");
    }
    for column in ["name: Ready", "name: Reason", "name: Violations", "name: Age"] {
        assert!(yaml.contains(column), "missing printer column {column}");
    }
}
