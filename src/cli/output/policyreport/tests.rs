use super::super::{OutputFormat, Style, sample};
use super::{ReportApi, Timestamp};
use serde::Deserialize;
use serde_json::Value;

/// The vendored CRD's `openAPIV3Schema` for a report's `apiVersion` and `kind`, made to reject
/// fields it does not declare: the API server would silently prune them, so a misspelt field
/// would otherwise go unnoticed.
fn report_schema(document: &Value) -> Value {
    let crd = match (document["apiVersion"].as_str(), document["kind"].as_str()) {
        (Some("openreports.io/v1alpha1"), Some("Report")) => {
            include_str!("../../../../tests/fixtures/openreports.io_reports.yaml")
        }
        (Some("openreports.io/v1alpha1"), Some("ClusterReport")) => {
            include_str!("../../../../tests/fixtures/openreports.io_clusterreports.yaml")
        }
        // The ClusterPolicyReport CRD has the same schema (see tests/fixtures/README.md).
        (Some("wgpolicyk8s.io/v1alpha2"), Some("PolicyReport" | "ClusterPolicyReport")) => {
            include_str!("../../../../tests/fixtures/wgpolicyk8s.io_policyreports.yaml")
        }
        other => panic!("no vendored CRD for {other:?}"),
    };
    let crd: Value = serde_yaml::from_str(crd).expect("the vendored CRD is YAML");
    assert_eq!(
        crd["spec"]["group"].as_str(),
        document["apiVersion"].as_str().and_then(|v| v.split('/').next())
    );
    let version = document["apiVersion"].as_str().and_then(|v| v.split('/').nth(1)).unwrap_or_default();
    let versions = crd["spec"]["versions"].as_array().expect("CRD versions");
    let served = versions.iter().find(|v| v["name"] == version).expect("the document's version");
    let mut schema = served["schema"]["openAPIV3Schema"].clone();
    forbid_undeclared_fields(&mut schema);
    schema
}

fn rendered(report: &crate::cli::report::CheckReport, report_api: ReportApi) -> String {
    sample::rendered_with(report, OutputFormat::Policyreport, Style { report_api, ..Style::default() })
}

fn forbid_undeclared_fields(schema: &mut Value) {
    if let Some(object) = schema.as_object_mut() {
        if object.contains_key("properties") && !object.contains_key("additionalProperties") {
            object.insert("additionalProperties".to_string(), Value::Bool(false));
        }
        object.values_mut().for_each(forbid_undeclared_fields);
    } else if let Some(array) = schema.as_array_mut() {
        array.iter_mut().for_each(forbid_undeclared_fields);
    }
}

fn documents(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|document| Value::deserialize(document).expect("each document is YAML"))
        .collect()
}

fn validate(document: &Value) {
    let validator = jsonschema::validator_for(&report_schema(document)).expect("the CRD schema compiles");
    let errors: Vec<String> =
        validator.iter_errors(document).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "invalid {}: {errors:#?}", document["kind"]);
}

#[test]
fn one_report_per_namespace_and_one_for_the_cluster_all_valid_in_either_api() {
    let apis = [
        (ReportApi::Openreports, "openreports.io/v1alpha1", "Report", "ClusterReport"),
        (ReportApi::Wgpolicyk8s, "wgpolicyk8s.io/v1alpha2", "PolicyReport", "ClusterPolicyReport"),
    ];
    for (api, api_version, namespaced, cluster) in apis {
        let documents = documents(&rendered(&sample::mixed(), api));
        let reports: Vec<(&str, Option<&str>)> = documents
            .iter()
            .map(|d| (d["kind"].as_str().unwrap_or_default(), d["metadata"]["namespace"].as_str()))
            .collect();
        assert_eq!(reports, [(namespaced, Some("payments")), (namespaced, Some("shop")), (cluster, None)]);
        for document in &documents {
            assert_eq!(document["apiVersion"], api_version);
            validate(document);
        }
        // The engine is named once per openreports report, and in every result of both.
        let report_source = (api == ReportApi::Openreports).then_some("dpo");
        assert_eq!(documents[0]["source"].as_str(), report_source);
        assert_eq!(documents[0]["results"][0]["source"], "dpo");
    }
}

#[test]
fn openreports_is_the_default_api() {
    let default = sample::rendered(&sample::mixed(), OutputFormat::Policyreport);
    assert_eq!(default, rendered(&sample::mixed(), ReportApi::Openreports));
}

#[test]
fn schema_check_catches_undeclared_fields_and_bad_enums() {
    let yaml = sample::rendered(&sample::mixed(), OutputFormat::Policyreport);
    let document = documents(&yaml).remove(1);
    let validator = jsonschema::validator_for(&report_schema(&document)).expect("the CRD schema compiles");
    let mut misspelt = document.clone();
    misspelt["results"][0]["remediation"] = Value::from("top-level");
    assert!(!validator.is_valid(&misspelt));
    let mut bad_severity = document;
    bad_severity["results"][0]["severity"] = Value::from("urgent");
    assert!(!validator.is_valid(&bad_severity));
}

#[test]
fn results_and_summary_of_a_namespace() {
    let yaml = sample::rendered(&sample::mixed(), OutputFormat::Policyreport);
    let shop = documents(&yaml).remove(1);
    let results = shop["results"].as_array().expect("results");
    let outcomes: Vec<(&str, &str, &str, &str)> = results
        .iter()
        .map(|r| {
            (
                r["resources"][0]["name"].as_str().unwrap_or_default(),
                r["policy"].as_str().unwrap_or_default(),
                r["result"].as_str().unwrap_or_default(),
                r["severity"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("web", "alb-http-to-https-redirection-check", "fail", "high"),
            ("web", "elbv2-acm-certificate-required", "pass", "high"),
            ("web", "elbv2-predefined-security-policy-ssl-check", "fail", "medium"),
            ("web", "acm-certificate-status", "skip", "high"),
            ("web", "acm-certificate-expiration-check", "skip", "high"),
            ("db", "kms-key-approved", "fail", "low"),
            ("db", "secretsmanager-using-cmk", "skip", "medium"),
            ("db", "acm-certificate-status", "skip", "high"),
        ]
    );
    assert_eq!(shop["summary"], serde_json::json!({"pass": 1, "fail": 3, "warn": 0, "error": 0, "skip": 4}));

    let redirect = &results[0];
    assert_eq!(redirect["rule"], "alb-http-to-https-redirection-check");
    assert_eq!(redirect["source"], "dpo");
    assert_eq!(redirect["message"], "Listener \"HTTP:80\" forwards <all> traffic & does not redirect.");
    assert_eq!(
        redirect["properties"]["remediation"],
        "Annotate: alb.ingress.kubernetes.io/ssl-redirect: '443'"
    );
    assert_eq!(redirect["properties"]["location"], "deploy/web ingress.yaml:12");
    assert_eq!(
        redirect["resources"][0],
        serde_json::json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "namespace": "shop", "name": "web"})
    );
    assert_eq!(redirect["timestamp"], serde_json::json!({"seconds": 1_740_830_400, "nanos": 500_000_000}));
    assert!(results[3]["message"].as_str().is_some_and(|m| m.contains("--aws")));
}

#[test]
fn cluster_report_holds_cluster_scoped_resources() {
    let yaml = sample::rendered(&sample::mixed(), OutputFormat::Policyreport);
    let cluster = documents(&yaml).remove(2);
    let resources: Vec<&str> = cluster["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|r| r["resources"][0]["name"].as_str())
        .collect();
    assert_eq!(resources, ["gp2", "gp2"]);
    assert_eq!(cluster["results"][0]["severity"], "critical");
    assert_eq!(cluster["summary"]["fail"], 1);
    assert_eq!(cluster["summary"]["skip"], 1);
}

#[test]
fn namespaced_kind_without_namespace_goes_to_default() {
    let report = sample::report(vec![sample::object(
        sample::resource("networking.k8s.io/v1", "Ingress", None, "web"),
        "web.yaml",
        1,
        vec![crate::policy::Verdict::Judged({
            let mut judgement = crate::policy::Judgement::default();
            judgement.check(crate::policy::Rule::AlbHttpToHttpsRedirectionCheck);
            judgement
        })],
    )]);
    let documents = documents(&sample::rendered(&report, OutputFormat::Policyreport));
    assert_eq!(documents.len(), 1);
    assert_eq!(documents[0]["kind"], "Report");
    assert_eq!(documents[0]["metadata"]["namespace"], "default");
    validate(&documents[0]);
}

#[test]
fn nothing_judged_writes_no_report() {
    assert_eq!(sample::rendered(&sample::report(Vec::new()), OutputFormat::Policyreport), "");
}

#[test]
fn timestamps_keep_nanoseconds_non_negative() {
    let before_epoch: jiff::Timestamp = "1969-12-31T23:59:59.75Z".parse().expect("a valid timestamp");
    assert_eq!(Timestamp::of(before_epoch), Timestamp { seconds: -1, nanos: 750_000_000 });
}

#[test]
fn reports_rendered_in_many_pieces_keep_every_result_in_order_with_their_summaries() {
    let copies = 300;
    let documents = documents(&rendered(&sample::copies(copies), ReportApi::Openreports));
    let sizes: Vec<(Option<&str>, usize)> = documents
        .iter()
        .map(|d| (d["metadata"]["namespace"].as_str(), d["results"].as_array().map_or(0, Vec::len)))
        .collect();
    // Per copy: payments holds api's one result, shop web's five and db's three, the cluster gp2's two.
    assert_eq!(sizes, [(Some("payments"), copies), (Some("shop"), 8 * copies), (None, 2 * copies)]);
    for document in &documents {
        let summary = &document["summary"];
        let total: u64 =
            ["pass", "fail", "warn", "error", "skip"].iter().filter_map(|k| summary[k].as_u64()).sum();
        assert_eq!(total as usize, document["results"].as_array().map_or(0, Vec::len));
        validate(document);
    }
    let shop: Vec<&str> = documents[1]["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["resources"][0]["name"].as_str())
        .collect();
    let expected: Vec<String> = (0..copies)
        .flat_map(|copy| [vec![format!("web-{copy}"); 5], vec![format!("db-{copy}"); 3]].concat())
        .collect();
    assert_eq!(shop, expected);
}
