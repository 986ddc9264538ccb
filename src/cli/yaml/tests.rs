//! The fast reader against the full parser.

use super::*;
use serde::Deserialize;
use serde_json::{Value, json};

fn full(doc: &str) -> Value {
    serde_yaml::from_str(doc).expect("valid YAML")
}

/// What the reader makes of `doc`, as a JSON value (deserialised from the node).
fn fast(doc: &str) -> Option<Value> {
    read(doc).ok().map(|node| Value::deserialize(node).expect("a node deserialises"))
}

/// Documents inside the subset read exactly as the full parser reads them.
#[test]
fn the_subset_reads_as_serde_yaml_reads_it() {
    let docs = [
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web # trailing comment\n  annotations: {}\n  labels:\n    app: web\n    \"quoted key\": 'it''s'\nspec:\n  ports:\n    - name: https\n      port: 443\n      targetPort: 8443\n  selector: {}\n",
        "a:\n- 1\n- -2\n- x: y\n  z:\n  - nested\n- - inner\n  - more\n-\n  deep: true\nb: \"esc \\\" \\\\ \\n done\"\nc: ~\nd:\ne: []\nf: False\ng: -web\nh: http://x.example.com/a#b\n",
        "# leading comment\n\nkey: value\n\n  # indented comment\nother: 'x # not a comment'\nnone: # a comment\nitems:\n  - # a comment\n    k: v\n",
        "list:\n  -   spaced: 1\n      again: 2\n",
        "a: [ReadWriteOnce]\nb: {app: web, 'tier': \"x, y\"}\nc: [1, [true, ~], {}, []] # note\nd: [a, b,]\n",
    ];
    for doc in docs {
        assert_eq!(fast(doc), Some(full(doc)), "{doc}");
    }
}

/// Typical manifests take the fast path and type exactly as through serde_yaml.
#[test]
fn typical_manifests_are_read_and_typed_alike() {
    use k8s_openapi::api::core::v1::Service;
    use k8s_openapi::api::networking::v1::Ingress;
    use k8s_openapi::api::storage::v1::StorageClass;
    fn same<T: serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(doc: &str) {
        let node = read(doc).unwrap_or_else(|declined| panic!("{declined:?}:\n{doc}"));
        assert_eq!(T::deserialize(node).expect("types"), serde_yaml::from_str::<T>(doc).unwrap());
    }
    same::<Ingress>(concat!(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: app\n  namespace: team\n",
        "  annotations:\n    alb.ingress.kubernetes.io/group.order: \"3\"\n",
        "    alb.ingress.kubernetes.io/listen-ports: '[{\"HTTP\": 80}, {\"HTTPS\": 443}]'\n",
        "spec:\n  ingressClassName: alb\n  rules:\n    - host: app.example.com\n      http:\n        paths:\n",
        "          - path: /\n            pathType: Prefix\n            backend:\n              service:\n",
        "                name: app\n                port:\n                  number: 80\n",
    ));
    same::<StorageClass>(concat!(
        "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: gp3\n",
        "provisioner: ebs.csi.aws.com\nparameters:\n  type: gp3\n  encrypted: \"true\"\n",
        "allowVolumeExpansion: true\nvolumeBindingMode: WaitForFirstConsumer\n",
    ));
    same::<Service>(concat!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: nlb\nspec:\n  type: LoadBalancer\n",
        "  ports:\n    - name: https\n      port: 443\n      targetPort: 8443\n",
    ));
}

/// Every document the project ships that this reader takes reads as the full parser reads
/// it, and the examples (plain manifests, as users write them) are all taken.
#[test]
fn shipped_manifests_read_as_serde_yaml_reads_them() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut pending = vec![root.join("deploy"), root.join("crds")];
    let (mut read_here, mut declined) = (0, Vec::new());
    while let Some(path) = pending.pop() {
        if path.is_dir() {
            pending.extend(std::fs::read_dir(&path).unwrap().map(|entry| entry.unwrap().path()));
            continue;
        }
        if path.extension().is_none_or(|ext| ext != "yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for doc in crate::cli::input::documents(&text).iter().map(|doc| doc.text) {
            match fast(doc) {
                Some(value) => {
                    assert_eq!(value, full(doc), "{}:\n{doc}", path.display());
                    read_here += 1;
                }
                None => declined.push(path.clone()),
            }
        }
    }
    assert!(read_here > 20, "only {read_here} documents read; declined {declined:?}");
    assert!(!declined.iter().any(|path| path.starts_with(root.join("deploy/examples"))), "{declined:?}");
}

#[test]
fn values_resolve_like_the_core_schema() {
    let doc = "a: 10\nb: \"10\"\nc: true\nd: 'true'\ne: null\nf: v1\ng: -1\nh: 15m\ni: 20Gi\nj: 6.8-apache\n";
    let expected = json!({
        "a": 10, "b": "10", "c": true, "d": "true", "e": null, "f": "v1", "g": -1,
        "h": "15m", "i": "20Gi", "j": "6.8-apache",
    });
    assert_eq!(fast(doc), Some(expected.clone()));
    assert_eq!(full(doc), expected);
}

/// What this reader does not read, it declines rather than misreads.
#[test]
fn yaml_beyond_the_subset_is_declined() {
    for doc in [
        "a: |\n  block\n",
        "a: >-\n  folded\n",
        "a: &anchor 1\nb: *anchor\n",
        "a: !!str 1\n",
        "a: [1, 2\n",
        "a: {b: 1, b: 2}\n",
        "a: {b:1}\n",
        "a: [b: 1]\n",
        "a: [x]]\n",
        "a: [x, {y: }]\n",
        "a: plain\n  continued\n",
        "a: \"open\n  quote\"\n",
        "a: 1\na: 2\n",
        "a: 1.5\n",
        "a: 0x1F\n",
        "a: 0o17\n",
        "a: 1e3\n",
        "a: -.5\n",
        "a: .inf\n",
        "a: \"\\u00e9\"\n",
        "a:\n\tb: 1\n",
        "a: 1\n  b: 2\n",
        "? complex\n: key\n",
        "1: numeric key\n",
        "just a scalar\n",
        "a: -\n",
        "a: b\t# tab before the comment\n",
        "\u{feff}a: b\n",
        "a: line\u{2028}break\n",
        "a: bell\u{7}\n",
        "key : spaced\n",
        "a: ,x\n",
        ",a: b\n",
    ] {
        assert_eq!(read(doc), Err(Declined::Beyond), "{doc}");
    }
}

/// Collections nested `depth` deep, in each way the reader nests them; indented blocks grow
/// with the square of their depth, so those stay shorter.
fn nested(depth: usize) -> Vec<String> {
    let mut docs = vec![
        format!("a: {}x{}\n", "[".repeat(depth), "]".repeat(depth)),
        format!("a: {}1{}\n", "{a: ".repeat(depth), "}".repeat(depth)),
        format!("a:\n  {}x\n", "- ".repeat(depth)),
    ];
    if depth <= 2_000 {
        docs.push((0..depth).map(|level| format!("{}k:\n", " ".repeat(level))).collect());
    }
    docs
}

/// The reader bounds its recursion: however deep the input nests, it answers, and it agrees
/// with the full parser: the same value, or declined, or refused as too deep where the full
/// parser refuses it too (at the same depth: nothing it reads is refused here).
#[test]
fn nesting_reads_as_serde_yaml_reads_it_or_is_refused_alike_at_any_depth() {
    for depth in (1..200).chain([2_000, 100_000]) {
        for doc in nested(depth) {
            let shown = &doc[..doc.len().min(80)];
            match read(&doc) {
                Ok(node) => {
                    let value = Value::deserialize(node).expect("a node deserialises");
                    assert_eq!(
                        serde_yaml::from_str::<Value>(&doc).ok(),
                        Some(value),
                        "depth {depth}: {shown}"
                    );
                }
                Err(Declined::TooDeep { line }) => {
                    assert!(depth >= MAX_DEPTH, "depth {depth}: {shown}");
                    assert!(line <= 1 + MAX_DEPTH, "line {line}, depth {depth}: {shown}");
                    if depth < 1_000 {
                        assert!(serde_yaml::from_str::<Value>(&doc).is_err(), "depth {depth}: {shown}");
                    }
                }
                Err(Declined::Beyond) => panic!("depth {depth} declined: {shown}"),
            }
        }
    }
}

/// A flow collection may also stand on a line of its own, below its key or item, or alone.
#[test]
fn flow_collections_on_lines_of_their_own_are_read() {
    for doc in ["a:\n  [x, y]\n", "a:\n  {b: 1} # note\n", "- \n  [1]\n", "[a, {b: c}]\n"] {
        assert_eq!(fast(doc), Some(full(doc)), "{doc}");
    }
    for doc in ["a:\n  [x,\n  y]\n", "a:\n  [x]\n    y\n", "a:\n  [x]: y\n", "a: 1\n[x]\n"] {
        assert_eq!(read(doc), Err(Declined::Beyond), "{doc}");
    }
}

/// Plain scalars YAML 1.2 reads as strings but kubectl's YAML 1.1 does not: read as the strings
/// serde_yaml reads, and marked.
#[test]
fn yaml_1_1_booleans_and_numbers_are_strings_marked_as_such() {
    let doc = "a: yes\nb: Off\nc: n\nd: 010\ne: '010'\nf: 1_000\ng: yesterday\nh: \"on\"\n";
    assert_eq!(fast(doc), Some(full(doc)));
    let Ok(Node::Map(entries)) = read(doc) else { panic!("read") };
    let marked: Vec<&str> = entries
        .iter()
        .filter(|(_, node)| matches!(node, Node::Yaml11(_)))
        .map(|(key, _)| key.as_ref())
        .collect();
    assert_eq!(marked, ["a", "b", "c", "d", "f"]);
}

#[test]
fn go_yaml_v2_resolution_of_plain_scalars() {
    use super::scalar::{Yaml11, yaml11};
    for (text, reading) in [
        ("y", Some(Yaml11::Bool(true))),
        ("YES", Some(Yaml11::Bool(true))),
        ("On", Some(Yaml11::Bool(true))),
        ("N", Some(Yaml11::Bool(false))),
        ("off", Some(Yaml11::Bool(false))),
        ("010", Some(Yaml11::Number)),
        ("089", Some(Yaml11::Number)),
        ("-1_000", Some(Yaml11::Number)),
        ("1_0.5", Some(Yaml11::Number)),
        ("0b101", Some(Yaml11::Number)),
        ("+0x_1F", Some(Yaml11::Number)),
        ("1.5e3", Some(Yaml11::Number)),
        ("1e", None),
        ("12abc", None),
        ("2024-01-01", None),
        ("1:30", None),
        ("yesterday", None),
        ("_1", None),
        ("-", None),
        ("0x", None),
    ] {
        assert_eq!(yaml11(text), reading, "{text}");
    }
}

fn storage_class(parameters: &str) -> String {
    format!(
        "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: gp3\nprovisioner: ebs.csi.aws.com\n\
         parameters:\n{parameters}"
    )
}

fn not_a_string<T: serde::de::DeserializeOwned + std::fmt::Debug>(doc: &str) -> String {
    match typed::<T>(doc, None) {
        Err(Untyped::NotAString(error)) => error.to_string(),
        other => panic!("{other:?}:\n{doc}"),
    }
}

/// kubectl sends a YAML boolean or number as JSON one, and the apiserver refuses it in a
/// `map[string]string`; serde_yaml would have read it as a string.
#[test]
fn a_map_of_strings_holds_strings() {
    use k8s_openapi::api::storage::v1::StorageClass;
    assert_eq!(
        not_a_string::<StorageClass>(&storage_class("  type: gp3\n  encrypted: true\n")),
        "parameters.encrypted: expected a string, found the boolean true; quote it: encrypted: \"true\""
    );
    assert_eq!(
        not_a_string::<StorageClass>(&storage_class("  encrypted: yes\n")),
        "parameters.encrypted: expected a string, found yes, which kubectl reads as the boolean true; quote it: \
         encrypted: \"yes\""
    );
    assert_eq!(
        not_a_string::<StorageClass>(&storage_class("  iops: 3000\n")),
        "parameters.iops: expected a string, found the number 3000; quote it: iops: \"3000\""
    );
    let annotated = storage_class("  encrypted: \"true\"\n")
        .replace("  name: gp3\n", "  name: gp3\n  annotations:\n    team.example.com/owner: 010\n");
    assert_eq!(
        not_a_string::<StorageClass>(&annotated),
        "metadata.annotations.team.example.com/owner: expected a string, found 010, which kubectl reads as a \
         number; quote it: team.example.com/owner: \"010\""
    );
    // Quoted, they are strings; a null is the empty string the apiserver stores.
    let quoted = storage_class("  encrypted: \"true\"\n  iops: '3000'\n  note: 'yes'\n  empty:\n");
    let class: StorageClass = typed(&quoted, None).unwrap();
    let parameters = class.parameters.unwrap();
    assert_eq!(
        parameters.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect::<Vec<_>>(),
        [("empty", ""), ("encrypted", "true"), ("iops", "3000"), ("note", "yes")]
    );
    // Fields of other types take booleans and numbers as ever.
    let expanding = format!("{}allowVolumeExpansion: true\n", storage_class("  type: gp3\n"));
    assert_eq!(typed::<StorageClass>(&expanding, None).unwrap().allow_volume_expansion, Some(true));
}

#[test]
fn the_path_names_list_items_by_index() {
    use crate::policy::ingress::gateway::Gateway;
    let doc = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: edge}\nspec:
  gatewayClassName: aws-alb
  listeners:
    - {name: http, port: 80, protocol: HTTP}
    - name: https
      port: 443
      protocol: HTTPS
      allowedRoutes: {namespaces: {from: Selector, selector: {matchLabels: {shared: true}}}}
";
    assert_eq!(
        not_a_string::<Gateway>(doc),
        "spec.listeners[1].allowedRoutes.namespaces.selector.matchLabels.shared: expected a string, found the \
         boolean true; quote it: shared: \"true\""
    );
}

/// Documents this reader declines are typed from serde_yaml's tree by the same rules, as far as
/// that tree tells: it reads YAML 1.2, so a plain `yes` there is a string as a quoted one is.
#[test]
fn documents_beyond_the_reader_are_held_to_the_same_rule() {
    use k8s_openapi::api::storage::v1::StorageClass;
    let block = |parameters: &str| {
        storage_class(parameters)
            .replace("  name: gp3\n", "  name: gp3\n  annotations:\n    note: |\n      multi\n      line\n")
    };
    assert_eq!(read(&block("  encrypted: true\n")), Err(Declined::Beyond));
    assert_eq!(
        not_a_string::<StorageClass>(&block("  encrypted: true\n")),
        "parameters.encrypted: expected a string, found the boolean true; quote it: encrypted: \"true\""
    );
    assert_eq!(
        not_a_string::<StorageClass>(&block("  throughput: 125.5\n")),
        "parameters.throughput: expected a string, found the number 125.5; quote it: throughput: \"125.5\""
    );
    let plain_yes: StorageClass = typed(&block("  encrypted: yes\n"), None).unwrap();
    assert_eq!(plain_yes.parameters.unwrap()["encrypted"], "yes");
}

/// Through `dpo check`'s reader: an input error naming the field, and List items typed from their
/// tree, so that a quoted `"yes"` stays a string.
#[test]
fn input_errors_name_the_field_and_list_items_keep_their_quotes() {
    use crate::cli::input::{Inputs, parse_text};
    let mut inputs = Inputs::default();
    parse_text("sc.yaml", &format!("---\n{}", storage_class("  encrypted: true\n")), &mut inputs);
    assert!(inputs.objects.is_empty());
    assert_eq!(
        inputs.errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
        [
            "sc.yaml:2: document 1: invalid object: parameters.encrypted: expected a string, found the boolean true; \
          quote it: encrypted: \"true\""
        ]
    );
    let list = "apiVersion: v1\nkind: List\nitems:
  - {apiVersion: storage.k8s.io/v1, kind: StorageClass, metadata: {name: a}, provisioner: ebs.csi.aws.com, parameters: {encrypted: 'yes'}}
  - {apiVersion: storage.k8s.io/v1, kind: StorageClass, metadata: {name: b}, provisioner: ebs.csi.aws.com, parameters: {encrypted: true}}
";
    let mut inputs = Inputs::default();
    parse_text("list.yaml", list, &mut inputs);
    assert_eq!(inputs.objects.len(), 1, "{:?}", inputs.errors);
    assert_eq!(inputs.errors.len(), 1);
    assert!(
        inputs.errors[0].message.ends_with(
            "parameters.encrypted: expected a string, found the boolean true; quote it: encrypted: \"true\""
        ),
        "{:?}",
        inputs.errors
    );
}
