use super::template::TEMPLATE_FUEL;
use super::*;
use crate::api::{DataFrom, DataMapping, SecretSource, SecretTemplate};

fn spec(data: &[(&str, Option<&str>)]) -> ProtectedSecretSpec {
    ProtectedSecretSpec {
        source: SecretSource { secret_id: "team/db".into(), ..Default::default() },
        target: Default::default(),
        data: data
            .iter()
            .map(|(k, p)| DataMapping { key: k.to_string(), property: p.map(str::to_string) })
            .collect(),
        data_from: None,
        template: None,
        refresh_interval: Some("1h".into()),
        rollout_restart: vec![],
        policy: Default::default(),
    }
}

fn text(s: &str) -> SecretValue {
    SecretValue::for_tests("v1", Some(s.to_string()), None)
}

fn get(out: &BTreeMap<String, ByteString>, key: &str) -> String {
    String::from_utf8(out[key].0.clone()).unwrap()
}

const VALUE: &str =
    r#"{"username":"app","db":{"password":"pw","port":5432},"hosts":["a","b"],"tls":true,"a.b":"dotted"}"#;

#[test]
fn data_paths_nested_keys_indexes_and_json_leaves() {
    let out = render(
        &spec(&[
            ("user", Some("username")),
            ("pw", Some("db.password")),
            ("port", Some("db.port")),
            ("host", Some("hosts.1")),
            ("db", Some("db")),
            ("dotted", Some("a.b")),
            ("all", None),
        ]),
        &text(VALUE),
    )
    .unwrap();
    assert_eq!(get(&out, "user"), "app");
    assert_eq!(get(&out, "pw"), "pw");
    assert_eq!(get(&out, "port"), "5432");
    assert_eq!(get(&out, "host"), "b");
    assert_eq!(get(&out, "db"), r#"{"password":"pw","port":5432}"#);
    assert_eq!(get(&out, "dotted"), "dotted");
    assert_eq!(get(&out, "all"), VALUE);
}

#[test]
fn missing_property_names_the_field_and_path_not_the_value() {
    let err = render(&spec(&[("x", Some("db.user"))]), &text(VALUE)).unwrap_err();
    assert_eq!((err.reason, err.field.as_str()), ("PropertyNotFound", "spec.data[0].property"));
    assert!(err.message.contains("db.user") && !err.message.contains("pw"), "{err}");
    let err = render(&spec(&[("x", Some("hosts.7"))]), &text(VALUE)).unwrap_err();
    assert_eq!(err.reason, "PropertyNotFound");
    let err = render(&spec(&[("x", Some("k"))]), &text("plain-text")).unwrap_err();
    assert_eq!(err.reason, "NotJson");
}

#[test]
fn binary_values_are_copied_whole() {
    let value = SecretValue::for_tests("v1", None, Some(vec![0, 159, 146, 150]));
    let out = render(&spec(&[("blob", None)]), &value).unwrap();
    assert_eq!(out["blob"].0, vec![0, 159, 146, 150]);
}

#[test]
fn extract_takes_top_level_keys_and_data_wins() {
    let mut s = spec(&[("username", Some("db.password"))]);
    s.data_from = Some(DataFrom { extract: true });
    let out = render(&s, &text(VALUE)).unwrap();
    assert_eq!(get(&out, "username"), "pw");
    assert_eq!(get(&out, "tls"), "true");
    assert_eq!(get(&out, "hosts"), r#"["a","b"]"#);
    let err = render(&s, &text("[1]")).unwrap_err();
    assert_eq!(err.field, "spec.dataFrom.extract");
}

#[test]
fn an_extracted_property_that_is_no_secret_key_is_named_and_nothing_rendered() {
    let mut s = spec(&[]);
    s.data_from = Some(DataFrom { extract: true });
    let err = render(&s, &text(r#"{"user": "u", "db password": "s3cret-canary"}"#)).unwrap_err();
    assert_eq!((err.reason, err.field.as_str()), ("InvalidSecretKey", "spec.dataFrom.extract"));
    assert!(err.message.contains(r#""db password""#), "{}", err.message);
    assert!(!err.to_string().contains("s3cret-canary"), "{err}");
}

#[test]
fn templates_render_and_name_missing_keys() {
    let mut s = spec(&[]);
    s.template = Some(SecretTemplate {
        data: [(
            "DSN".to_string(),
            "postgres://{{ username }}:{{ db.password }}@{{ hosts[0] }}/shop".to_string(),
        )]
        .into(),
    });
    let out = render(&s, &text(VALUE)).unwrap();
    assert_eq!(get(&out, "DSN"), "postgres://app:pw@a/shop");

    s.template =
        Some(SecretTemplate { data: [("DSN".to_string(), "{{ db.user }}/{{ nope }}".to_string())].into() });
    let err = render(&s, &text(VALUE)).unwrap_err();
    assert_eq!((err.reason, err.field.as_str()), ("TemplateError", "spec.template.data.DSN"));
    assert!(err.message.contains("db.user") && err.message.contains("nope"), "{err}");
}

fn templated(keys: &[(&str, &str)]) -> ProtectedSecretSpec {
    let mut s = spec(&[]);
    s.template =
        Some(SecretTemplate { data: keys.iter().map(|(k, t)| (k.to_string(), t.to_string())).collect() });
    s
}

const LOOPS: &str = "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}";

#[test]
fn a_template_past_its_fuel_fails_naming_the_key_and_the_limit() {
    let err = render(&templated(&[("LOOP", LOOPS)]), &text(VALUE)).unwrap_err();
    assert_eq!((err.reason, err.field.as_str()), ("TemplateError", "spec.template.data.LOOP"));
    assert!(err.message.contains(&format!("fuel limit of {TEMPLATE_FUEL}")), "{err}");
}

#[test]
fn a_secrets_templates_share_one_fuel_budget() {
    // Each alone costs well under the budget; twenty of them do not fit together.
    let idle = "{% for i in range(20000) %}{% endfor %}ok";
    assert!(render(&templated(&[("A", idle)]), &text(VALUE)).is_ok());
    let keys: Vec<(String, &str)> = (0..20).map(|i| (format!("K{i:02}"), idle)).collect();
    let keys: Vec<(&str, &str)> = keys.iter().map(|(k, t)| (k.as_str(), *t)).collect();
    let err = render(&templated(&keys), &text(VALUE)).unwrap_err();
    assert_eq!(err.reason, "TemplateError");
    assert!(err.message.contains("fuel"), "{err}");
}

#[test]
fn output_past_the_secret_limit_fails_naming_the_key_and_the_limit() {
    let big = format!("{{{{ 'x' * {} }}}}", MAX_SECRET_BYTES + 1);
    let err = render(&templated(&[("BIG", &big)]), &text(VALUE)).unwrap_err();
    assert_eq!((err.reason, err.field.as_str()), ("TemplateError", "spec.template.data.BIG"));
    assert!(err.message.contains(&MAX_SECRET_BYTES.to_string()), "{err}");

    // The limit is over the whole Secret: keys from `data` leave less room for templates.
    let half = format!("{{{{ 'x' * {} }}}}", MAX_SECRET_BYTES / 2);
    let mut s = templated(&[("A", &half), ("B", &half)]);
    s.data = spec(&[("all", None)]).data;
    let err = render(&s, &text(VALUE)).unwrap_err();
    assert_eq!(err.field, "spec.template.data.B", "{err}");
}

#[test]
fn data_past_the_secret_limit_is_secret_too_large() {
    let value = "v".repeat(60 * 1024);
    let keys: Vec<String> = (0..20).map(|i| format!("k{i:02}")).collect();
    let keys: Vec<(&str, Option<&str>)> = keys.iter().map(|k| (k.as_str(), None)).collect();
    let err = render(&spec(&keys), &text(&value)).unwrap_err();
    assert_eq!((err.reason, err.field.as_str()), ("SecretTooLarge", "spec.data[17]"), "{err}");
    assert!(err.message.contains(&MAX_SECRET_BYTES.to_string()) && !err.message.contains("vvv"), "{err}");
    assert!(render(&spec(&keys[..17]), &text(&value)).is_ok());
}

#[tokio::test(flavor = "current_thread")]
async fn rendering_leaves_the_async_worker_free() {
    let s = templated(&[("LOOP", LOOPS)]);
    let value = text(VALUE);
    let rendering = tokio::spawn(async move { render_blocking(&s, &value).await });
    // Run inline, the render would hold this runtime's only thread until it ran out of fuel,
    // and be done when this task is next polled.
    tokio::task::yield_now().await;
    assert!(!rendering.is_finished(), "the render runs off the worker thread");
    let err = rendering.await.unwrap().unwrap_err();
    assert_eq!(err.reason, "TemplateError");
}

#[test]
fn a_parsed_value_is_wiped_when_dropped() {
    let mut tree: Value = serde_json::from_str(VALUE).unwrap();
    wipe(&mut tree);
    assert_eq!(tree, serde_json::json!({}), "keys and strings are wiped, maps emptied");
    let mut list: Value = serde_json::from_str(r#"["pw", {"k": "v"}]"#).unwrap();
    wipe(&mut list);
    assert_eq!(list, serde_json::json!(["", {}]));
}

#[test]
fn a_long_path_costs_what_the_value_holds() {
    // Joining the path's segments at every split would copy gigabytes here.
    let mut deep = serde_json::json!("leaf");
    for _ in 0..100 {
        deep = serde_json::json!({"a": deep, "a.b": 1});
    }
    let long = vec!["a"; 20_000].join(".");
    assert_eq!(lookup(&deep, &long), None);
    assert_eq!(lookup(&deep, &vec!["a"; 100].join(".")), Some(&serde_json::json!("leaf")));
    assert_eq!(lookup(&deep, "a.a.b"), Some(&serde_json::json!(1)));
    assert_eq!(lookup(&serde_json::json!({"a": {"b": 2}, "a.b": 1}), "a.b"), Some(&serde_json::json!(1)));
    assert_eq!(lookup(&serde_json::json!({"hosts": ["x", "y"]}), "hosts.1"), Some(&serde_json::json!("y")));
}
