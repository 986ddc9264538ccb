//! The keys of the Kubernetes Secret, rendered from an AWS secret value: explicit `data`
//! mappings with JSON paths, `dataFrom.extract` and minijinja templates.
//!
//! Error messages name the field and the missing key, never a value: they end up in status.

use crate::api::ProtectedSecretSpec;
use crate::aws::SecretValue;
use crate::policy::secret::secret_key_problem;
use k8s_openapi::ByteString;
use minijinja::{Environment, UndefinedBehavior};
use serde_json::Value;
use std::collections::BTreeMap;

/// Why the value could not be turned into Secret keys.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct RenderError {
    /// `Ready` reason: `PropertyNotFound`, `NotJson`, `InvalidSecretKey` or `TemplateError`.
    pub reason: &'static str,
    pub field: String,
    pub message: String,
}

impl RenderError {
    fn new(reason: &'static str, field: String, message: impl Into<String>) -> Self {
        RenderError { reason, field, message: message.into() }
    }
}

/// The Secret data for `spec` from `value`.
pub fn render(
    spec: &ProtectedSecretSpec,
    value: &SecretValue,
) -> Result<BTreeMap<String, ByteString>, RenderError> {
    let mut json: Option<Value> = None;
    let mut parsed = |field: &str| -> Result<Value, RenderError> {
        if let Some(json) = &json {
            return Ok(json.clone());
        }
        let parsed: Value = serde_json::from_slice(value.expose_bytes()).map_err(|_| {
            RenderError::new(
                "NotJson",
                field.to_string(),
                "the secret value is not JSON, so it has no properties",
            )
        })?;
        json = Some(parsed.clone());
        Ok(parsed)
    };
    let mut out = BTreeMap::new();
    if spec.data_from.as_ref().is_some_and(|d| d.extract) {
        let field = "spec.dataFrom.extract";
        match parsed(field)? {
            Value::Object(map) => {
                for (key, v) in map {
                    // The key names a JSON property, not a value: safe to show.
                    if let Some(problem) = secret_key_problem(&key) {
                        let message =
                            format!("the secret's property {key:?} {problem}, so it cannot be a Secret key");
                        return Err(RenderError::new("InvalidSecretKey", field.into(), message));
                    }
                    out.insert(key, ByteString(leaf_bytes(&v)));
                }
            }
            _ => {
                return Err(RenderError::new(
                    "NotJson",
                    field.into(),
                    "the secret value is not a JSON object",
                ));
            }
        }
    }
    for (i, mapping) in spec.data.iter().enumerate() {
        let bytes = match &mapping.property {
            None => value.expose_bytes().to_vec(),
            Some(path) => {
                let field = format!("spec.data[{i}].property");
                let json = parsed(&field)?;
                let leaf = lookup(&json, path).ok_or_else(|| {
                    RenderError::new(
                        "PropertyNotFound",
                        field,
                        format!("the secret has no property {path:?}"),
                    )
                })?;
                leaf_bytes(leaf)
            }
        };
        out.insert(mapping.key.clone(), ByteString(bytes));
    }
    if let Some(template) = spec.template.as_ref().filter(|t| !t.data.is_empty()) {
        let context = parsed("spec.template")?;
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        for (key, source) in &template.data {
            let field = format!("spec.template.data.{key}");
            let compiled = env.template_from_str(source).map_err(|e| {
                RenderError::new("TemplateError", field.clone(), format!("does not parse: {}", e.kind()))
            })?;
            let mut missing: Vec<String> = compiled
                .undeclared_variables(true)
                .into_iter()
                .filter(|path| lookup(&context, path).is_none() && !is_global(&env, path))
                .collect();
            if !missing.is_empty() {
                missing.sort();
                return Err(RenderError::new(
                    "TemplateError",
                    field,
                    format!("the secret has no property {}", missing.join(", ")),
                ));
            }
            // Only the error kind and line: a render error's detail may quote what it rendered.
            let rendered = compiled.render(minijinja::value::Serde(&context)).map_err(|e| {
                let line = e.line().map(|l| format!(" at line {l}")).unwrap_or_default();
                RenderError::new(
                    "TemplateError",
                    field.clone(),
                    format!("does not render: {}{line}", e.kind()),
                )
            })?;
            out.insert(key.clone(), ByteString(rendered.into_bytes()));
        }
    }
    Ok(out)
}

fn is_global(env: &Environment<'_>, path: &str) -> bool {
    env.globals().any(|(name, _)| path.split('.').next() == Some(name))
}

/// Follows a JSON path like `db.password` or `hosts.0`. A key that itself contains dots is
/// found too, preferring the longest key that matches.
fn lookup<'a>(json: &'a Value, path: &str) -> Option<&'a Value> {
    if path.is_empty() {
        return Some(json);
    }
    let segments: Vec<&str> = path.split('.').collect();
    for take in (1..=segments.len()).rev() {
        let head = segments[..take].join(".");
        let rest = segments[take..].join(".");
        let child = match json {
            Value::Object(map) => map.get(&head),
            Value::Array(items) => head.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        };
        if let Some(found) = child.and_then(|c| lookup(c, &rest)) {
            return Some(found);
        }
    }
    None
}

/// A string as its text, anything else as JSON.
fn leaf_bytes(value: &Value) -> Vec<u8> {
    match value {
        Value::String(s) => s.as_bytes().to_vec(),
        other => other.to_string().into_bytes(),
    }
}

#[cfg(test)]
mod tests {
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
            refresh_interval: "1h".into(),
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

    const VALUE: &str = r#"{"username":"app","db":{"password":"pw","port":5432},"hosts":["a","b"],"tls":true,"a.b":"dotted"}"#;

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

        s.template = Some(SecretTemplate {
            data: [("DSN".to_string(), "{{ db.user }}/{{ nope }}".to_string())].into(),
        });
        let err = render(&s, &text(VALUE)).unwrap_err();
        assert_eq!((err.reason, err.field.as_str()), ("TemplateError", "spec.template.data.DSN"));
        assert!(err.message.contains("db.user") && err.message.contains("nope"), "{err}");
    }
}
