//! An in-memory stand-in for the Kubernetes API server behind kube's mock service
//! (`tower_test::mock::pair`): it stores objects by path, answers GET, POST, PATCH (apply and
//! merge) and DELETE the way the real one does for the calls the controllers make, lists
//! collections (label selectors ignored) and holds watches open with nothing to report, and
//! records every call so that tests can assert exactly what was written and watched. Wire-level
//! behaviour (field ownership, validation, watches, RBAC) is the real control plane's to test:
//! see `cluster.rs`.

use http::{Request, Response, StatusCode};
use kube::Resource;
use kube::client::Body;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One request as the API server saw it.
#[derive(Clone, Debug)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub query: String,
    pub content_type: String,
    pub body: Value,
}

impl Call {
    /// Reads a request as the client sent it.
    pub async fn read(request: Request<Body>) -> Call {
        let (parts, body) = request.into_parts();
        let bytes = body.collect_bytes().await.unwrap_or_default();
        Call {
            method: parts.method.to_string(),
            path: parts.uri.path().to_string(),
            query: parts.uri.query().unwrap_or_default().to_string(),
            content_type: parts
                .headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string(),
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    pub fn is_write(&self) -> bool {
        self.method != "GET"
    }

    pub fn is_watch(&self) -> bool {
        self.method == "GET" && self.query.split('&').any(|pair| pair == "watch=true")
    }
}

#[derive(Default)]
struct State {
    objects: HashMap<String, Value>,
    calls: Vec<Call>,
    /// Calls before this index were handed out by `take`.
    taken: usize,
    next_version: u64,
    reject_status_writes: bool,
}

#[derive(Clone, Default)]
pub struct FakeApiserver {
    state: Arc<Mutex<State>>,
}

/// A client talking to a new, empty fake API server.
pub fn start() -> (kube::Client, FakeApiserver) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let server = FakeApiserver::default();
    let serving = server.clone();
    tokio::spawn(async move {
        // Watches stay open and report nothing: their replies are kept, never sent.
        let mut watches = Vec::new();
        while let Some((request, reply)) = handle.next_request().await {
            let call = Call::read(request).await;
            if call.is_watch() {
                serving.lock().calls.push(call);
                watches.push(reply);
                continue;
            }
            let (status, answer) = serving.serve(call);
            let response = Response::builder()
                .status(status)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(Body::from(serde_json::to_vec(&answer).expect("json")))
                .expect("response");
            reply.send_response(response);
        }
    });
    (kube::Client::new(service, "default"), server)
}

/// The path of a namespaced object: `/api/v1/namespaces/ns/secrets/name` and the like.
pub fn secret_path(namespace: &str, name: &str) -> String {
    format!("/api/v1/namespaces/{namespace}/secrets/{name}")
}

pub fn protected_secret_path(namespace: &str, name: &str) -> String {
    format!("/apis/dpo.dev/v1alpha1/namespaces/{namespace}/protectedsecrets/{name}")
}

/// Whether `path` names a collection: `<prefix>/<plural>` or `<prefix>/namespaces/<ns>/<plural>`,
/// the prefix `/api/v1` or `/apis/<group>/<version>`.
fn is_collection(path: &str) -> bool {
    let rest = match (path.strip_prefix("/api/v1/"), path.strip_prefix("/apis/")) {
        (Some(rest), _) => rest,
        (None, Some(grouped)) => grouped.splitn(3, '/').nth(2).unwrap_or_default(),
        (None, None) => return false,
    };
    matches!(rest.split('/').collect::<Vec<_>>().as_slice(), [_] | ["namespaces", _, _])
}

/// The collections an object at `path` is listed in: its namespace's and the cluster-wide one.
fn listed_in(path: &str) -> Vec<String> {
    let Some((collection, _)) = path.rsplit_once('/') else { return Vec::new() };
    let segments: Vec<&str> = collection.split('/').collect();
    let mut lists = vec![collection.to_string()];
    if let Some(at) = segments.iter().position(|s| *s == "namespaces")
        && at + 2 < segments.len()
    {
        lists.push([&segments[..at], &segments[at + 2..]].concat().join("/"));
    }
    lists
}

fn not_found(path: &str) -> (StatusCode, Value) {
    let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
        "message": format!("{path} not found"), "code": 404});
    (StatusCode::NOT_FOUND, status)
}

/// RFC 7386 merge: objects merge key by key, `null` removes, anything else replaces.
fn merge(into: &mut Value, patch: &Value) {
    match (into, patch) {
        (Value::Object(into), Value::Object(patch)) => {
            for (key, value) in patch {
                if value.is_null() {
                    into.remove(key);
                } else {
                    merge(into.entry(key.clone()).or_insert(Value::Null), value);
                }
            }
        }
        (into, patch) => *into = patch.clone(),
    }
}

impl FakeApiserver {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn serve(&self, call: Call) -> (StatusCode, Value) {
        let mut state = self.lock();
        state.calls.push(call.clone());
        let (path, subresource) = match call.path.strip_suffix("/status") {
            Some(object) => (object.to_string(), true),
            None => (call.path.clone(), false),
        };
        match call.method.as_str() {
            "PATCH" if subresource && state.reject_status_writes => {
                let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Conflict",
                    "message": format!("{path}: the object has been modified"), "code": 409});
                (StatusCode::CONFLICT, status)
            }
            "GET" if is_collection(&path) => {
                let mut items: Vec<(&String, &Value)> =
                    state.objects.iter().filter(|(at, _)| listed_in(at).contains(&path)).collect();
                items.sort_by_key(|(at, _)| *at);
                let items: Vec<Value> = items.into_iter().map(|(_, object)| object.clone()).collect();
                let version = state.next_version.to_string();
                (
                    StatusCode::OK,
                    json!({"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": version}, "items": items}),
                )
            }
            "GET" => match state.objects.get(&path) {
                Some(object) => (StatusCode::OK, object.clone()),
                None => not_found(&path),
            },
            "POST" => {
                let name = call.body.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("generated");
                let path = format!("{path}/{name}");
                let object = state.stamp(call.body.clone(), true);
                state.objects.insert(path, object.clone());
                (StatusCode::CREATED, object)
            }
            "DELETE" => match state.objects.remove(&path) {
                Some(object) => (StatusCode::OK, object),
                None => not_found(&path),
            },
            "PATCH" => {
                let apply = call.content_type.contains("apply-patch");
                let existing = state.objects.get(&path).cloned();
                let mut object = match (existing, apply && !subresource) {
                    (Some(object), _) => object,
                    (None, true) => Value::Object(Default::default()),
                    (None, false) => return not_found(&path),
                };
                let created = object.get("metadata").is_none();
                let mut patch = call.body.clone();
                if subresource {
                    // Only status changes through the subresource.
                    patch = json!({"status": patch.get("status").cloned().unwrap_or(Value::Null)});
                } else if let Some(meta) = patch.get_mut("metadata").and_then(Value::as_object_mut) {
                    meta.remove("resourceVersion");
                }
                merge(&mut object, &patch);
                let object = state.stamp(object, created);
                state.objects.insert(path, object.clone());
                (StatusCode::OK, object)
            }
            _ => (StatusCode::METHOD_NOT_ALLOWED, Value::Null),
        }
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// Every call other than a GET.
    pub fn writes(&self) -> Vec<Call> {
        self.calls().into_iter().filter(Call::is_write).collect()
    }

    /// Writes other than Events.
    pub fn object_writes(&self) -> Vec<Call> {
        self.writes().into_iter().filter(|c| !c.path.contains("/events")).collect()
    }

    /// Events published so far, one per write: as created, or as stored after a series update
    /// (which patches only the series).
    pub fn events(&self) -> Vec<Value> {
        let writes = self.writes().into_iter().filter(|c| c.path.contains("/events"));
        writes
            .map(|c| if c.method == "PATCH" { self.get(&c.path).unwrap_or(c.body) } else { c.body })
            .collect()
    }

    /// Drops the stored Events, as their TTL does in a cluster: a long benchmark then measures
    /// the controller rather than this store.
    pub fn forget_events(&self) {
        self.lock().objects.retain(|path, _| !path.contains("/events/"));
    }

    pub fn clear_calls(&self) {
        let mut state = self.lock();
        state.calls.clear();
        state.taken = 0;
    }

    /// The calls since the last `take`.
    pub fn take(&self) -> Vec<Call> {
        let mut state = self.lock();
        let end = state.calls.len();
        let from = std::mem::replace(&mut state.taken, end);
        state.calls[from..].to_vec()
    }

    /// From now on, status writes are refused with 409 Conflict.
    pub fn reject_status_writes(&self) {
        self.lock().reject_status_writes = true;
    }

    /// Stores `object` at its own path, as if someone else had created it.
    pub fn store<K: Resource<DynamicType = ()> + serde::Serialize>(&self, object: &K) {
        let meta = object.meta();
        let name = meta.name.as_deref().expect("an object to store has a name");
        let path = format!("{}/{name}", K::url_path(&(), meta.namespace.as_deref()));
        self.put(&path, serde_json::to_value(object).expect("object as JSON"));
    }

    pub fn get(&self, path: &str) -> Option<Value> {
        self.lock().objects.get(path).cloned()
    }

    /// Stores an object as if someone else had written it.
    pub fn put(&self, path: &str, object: Value) {
        let mut state = self.lock();
        let object = state.stamp(object, true);
        state.objects.insert(path.to_string(), object);
    }

    pub fn remove(&self, path: &str) {
        self.lock().objects.remove(path);
    }

    /// A stored object, typed.
    pub fn object<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        serde_json::from_value(self.get(path).unwrap_or_else(|| panic!("{path} is stored")))
            .expect("typed object")
    }
}

impl State {
    /// Sets the fields the API server owns: resourceVersion always, uid and
    /// creationTimestamp on creation.
    fn stamp(&mut self, mut object: Value, created: bool) -> Value {
        self.next_version += 1;
        let version = self.next_version.to_string();
        if !object.is_object() {
            object = json!({});
        }
        let meta = object.as_object_mut().expect("object").entry("metadata").or_insert_with(|| json!({}));
        if let Some(meta) = meta.as_object_mut() {
            meta.insert("resourceVersion".into(), json!(version));
            if created && !meta.contains_key("uid") {
                meta.insert("uid".into(), json!(format!("uid-{version}")));
            }
        }
        object
    }
}
