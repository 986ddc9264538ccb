//! The keys of the Kubernetes Secret, rendered from an AWS secret value: explicit `data`
//! mappings with JSON paths, `dataFrom.extract` and minijinja templates.
//!
//! Error messages name the field and the missing key, never a value: they end up in status.
//! One Secret costs bounded work and memory whatever its spec and value: its keys add up to
//! at most [`MAX_SECRET_BYTES`], its templates share [`template::TEMPLATE_FUEL`], and
//! [`render_blocking`] runs it off the async workers.

mod template;

use crate::api::ProtectedSecretSpec;
use crate::aws::SecretValue;
use crate::policy::secret::secret_key_problem;
use k8s_openapi::ByteString;
use serde_json::Value;
use std::collections::BTreeMap;
use zeroize::Zeroize;

/// Most bytes of keys and values one rendered Secret may hold: what the apiserver accepts in a
/// Secret's data, so nothing larger could be written anyway.
pub const MAX_SECRET_BYTES: usize = 1024 * 1024;

/// Why the value could not be turned into Secret keys.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct RenderError {
    /// `Ready` reason: `PropertyNotFound`, `NotJson`, `InvalidSecretKey`, `SecretTooLarge` or
    /// `TemplateError`.
    pub reason: &'static str,
    pub field: String,
    pub message: String,
}

impl RenderError {
    fn new(reason: &'static str, field: String, message: impl Into<String>) -> Self {
        RenderError { reason, field, message: message.into() }
    }
}

/// [`render`] on the blocking pool: a costly template holds a blocking thread (within its fuel),
/// never a worker that other reconciles need.
pub async fn render_blocking(
    spec: &ProtectedSecretSpec,
    value: &SecretValue,
) -> Result<BTreeMap<String, ByteString>, RenderError> {
    let (spec, value) = (spec.clone(), value.clone());
    tokio::task::spawn_blocking(move || render(&spec, &value)).await.unwrap_or_else(|_| {
        // A panic in the template engine fails this object alone.
        Err(RenderError::new("TemplateError", "spec".into(), "rendering stopped unexpectedly"))
    })
}

/// The Secret data for `spec` from `value`.
fn render(
    spec: &ProtectedSecretSpec,
    value: &SecretValue,
) -> Result<BTreeMap<String, ByteString>, RenderError> {
    let mut rendering = Rendering { value, json: None, room: MAX_SECRET_BYTES, out: BTreeMap::new() };
    if spec.data_from.as_ref().is_some_and(|d| d.extract) {
        rendering.extract()?;
    }
    for (i, mapping) in spec.data.iter().enumerate() {
        let field = format!("spec.data[{i}]");
        let bytes = match &mapping.property {
            None => rendering.whole_value(&field)?,
            Some(path) => {
                let field = format!("{field}.property");
                let leaf = lookup(rendering.json(&field)?, path).ok_or_else(|| {
                    RenderError::new(
                        "PropertyNotFound",
                        field,
                        format!("the secret has no property {path:?}"),
                    )
                })?;
                leaf_bytes(leaf)
            }
        };
        rendering.insert(&field, mapping.key.clone(), bytes)?;
    }
    if let Some(template) = spec.template.as_ref().filter(|t| !t.data.is_empty()) {
        rendering.json("spec.template")?;
        template::render_templates(&template.data, &mut rendering)?;
    }
    Ok(rendering.out)
}

/// One Secret being rendered: the value parsed at most once, and the bytes left for keys.
struct Rendering<'v> {
    value: &'v SecretValue,
    json: Option<Json>,
    room: usize,
    out: BTreeMap<String, ByteString>,
}

impl Rendering<'_> {
    fn json(&mut self, field: &str) -> Result<&Value, RenderError> {
        let json = match self.json.take() {
            Some(json) => json,
            None => Json(serde_json::from_slice(self.value.expose_bytes()).map_err(|_| {
                RenderError::new(
                    "NotJson",
                    field.to_string(),
                    "the secret value is not JSON, so it has no properties",
                )
            })?),
        };
        Ok(&self.json.insert(json).0)
    }

    fn extract(&mut self) -> Result<(), RenderError> {
        let field = "spec.dataFrom.extract";
        let Value::Object(map) = self.json(field)? else {
            return Err(RenderError::new("NotJson", field.into(), "the secret value is not a JSON object"));
        };
        // A key names a JSON property, not a value: safe to show.
        if let Some((key, problem)) = map.keys().find_map(|key| Some((key, secret_key_problem(key)?))) {
            let message = format!("the secret's property {key:?} {problem}, so it cannot be a Secret key");
            return Err(RenderError::new("InvalidSecretKey", field.into(), message));
        }
        let keys: Vec<(String, Vec<u8>)> = map.iter().map(|(key, v)| (key.clone(), leaf_bytes(v))).collect();
        for (key, bytes) in keys {
            self.insert(field, key, bytes)?;
        }
        Ok(())
    }

    /// A copy of the whole value, made only if it fits.
    fn whole_value(&self, field: &str) -> Result<Vec<u8>, RenderError> {
        let bytes = self.value.expose_bytes();
        if bytes.len() > self.room {
            return Err(too_large(field));
        }
        Ok(bytes.to_vec())
    }

    /// Adds a key unless it would take the Secret past [`MAX_SECRET_BYTES`]; a key set twice
    /// counts once.
    fn insert(&mut self, field: &str, key: String, bytes: Vec<u8>) -> Result<(), RenderError> {
        let size = key.len() + bytes.len();
        let freed = self.out.get(&key).map_or(0, |old| key.len() + old.0.len());
        if size > self.room + freed {
            return Err(too_large(field));
        }
        self.room = self.room + freed - size;
        self.out.insert(key, ByteString(bytes));
        Ok(())
    }
}

fn too_large(field: &str) -> RenderError {
    RenderError::new(
        "SecretTooLarge",
        field.to_string(),
        format!(
            "the Secret's keys and values would exceed {MAX_SECRET_BYTES} bytes, the most a Secret holds"
        ),
    )
}

/// A parsed secret value whose strings and keys are wiped when it is dropped. (Numbers and
/// booleans are not; the tree lives for one render.)
struct Json(Value);

impl Drop for Json {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

fn wipe(value: &mut Value) {
    match value {
        Value::String(s) => s.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(wipe),
        Value::Object(map) => {
            for (mut key, mut child) in std::mem::take(map) {
                key.zeroize();
                wipe(&mut child);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Follows a JSON path like `db.password` or `hosts.0`. A key that itself contains dots is
/// found too, preferring the longest key that matches. Only keys the path starts with are
/// tried, so the work is bounded by the value, however long the path.
fn lookup<'a>(json: &'a Value, path: &str) -> Option<&'a Value> {
    if path.is_empty() {
        return Some(json);
    }
    match json {
        Value::Object(map) => {
            let mut heads: Vec<(&String, &Value)> =
                map.iter().filter(|(key, _)| after(path, key).is_some()).collect();
            heads.sort_by_key(|(key, _)| std::cmp::Reverse(key.len()));
            heads.into_iter().find_map(|(key, child)| lookup(child, after(path, key)?))
        }
        Value::Array(items) => {
            let (index, rest) = path.split_once('.').unwrap_or((path, ""));
            lookup(items.get(index.parse::<usize>().ok()?)?, rest)
        }
        _ => None,
    }
}

/// The rest of `path` after `key`, if `key` is whole segments of it.
fn after<'p>(path: &'p str, key: &str) -> Option<&'p str> {
    match path.strip_prefix(key)? {
        "" => Some(""),
        rest => rest.strip_prefix('.'),
    }
}

/// A string as its text, anything else as JSON.
fn leaf_bytes(value: &Value) -> Vec<u8> {
    match value {
        Value::String(s) => s.as_bytes().to_vec(),
        other => other.to_string().into_bytes(),
    }
}

#[cfg(test)]
mod tests;
