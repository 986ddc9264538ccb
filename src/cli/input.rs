//! Reads manifests for `dpo check`: files, directories, stdin; multi-document YAML, JSON,
//! `List` kinds and `helm template` output.

use super::report::{NotJudged, SourceLocation, Warning};
use super::yaml::{self, Untyped};
use crate::api::{API_VERSION, EncryptedVolumePolicy, GROUP, ProtectedSecret, ResourceRef, TlsIngressPolicy};
use crate::policy::ingress::gateway::{Gateway, GatewayClass, HTTPRoute, LoadBalancerConfiguration};
use crate::policy::ingress::{AutoModeIngressClassParams, IngressClassParams};
use crate::policy::resource_ref;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolume, Service};
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::DeserializeOwned;
use std::collections::HashSet;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// A manifest the input could not supply, located as precisely as possible.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InputError {
    #[serde(flatten)]
    pub location: SourceLocation,
    pub message: String,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let SourceLocation { file, line, document } = &self.location;
        write!(f, "{file}:{line}: document {}: {}", document + 1, self.message)
    }
}

impl std::error::Error for InputError {}

/// The objects `dpo check` understands, as parsed (boxed: the types differ a lot in size).
#[derive(Debug, Clone)]
pub enum Object {
    StorageClass(Box<StorageClass>),
    PersistentVolume(Box<PersistentVolume>),
    Ingress(Box<Ingress>),
    IngressClass(Box<IngressClass>),
    Service(Box<Service>),
    Namespace(Box<Namespace>),
    ProtectedSecret(Box<ProtectedSecret>),
    EncryptedVolumePolicy(Box<EncryptedVolumePolicy>),
    TlsIngressPolicy(Box<TlsIngressPolicy>),
    IngressClassParams(Box<IngressClassParams>),
    AutoModeIngressClassParams(Box<AutoModeIngressClassParams>),
    Gateway(Box<Gateway>),
    HttpRoute(Box<HTTPRoute>),
    GatewayClass(Box<GatewayClass>),
    LoadBalancerConfiguration(Box<LoadBalancerConfiguration>),
}

impl Object {
    /// The name and metadata of an EncryptedVolumePolicy or TlsIngressPolicy.
    pub fn policy(&self) -> Option<(ResourceRef, &ObjectMeta)> {
        match self {
            Object::EncryptedVolumePolicy(o) => Some((resource_ref(&**o), &o.metadata)),
            Object::TlsIngressPolicy(o) => Some((resource_ref(&**o), &o.metadata)),
            _ => None,
        }
    }

    pub fn resource(&self) -> ResourceRef {
        match self {
            Object::StorageClass(o) => resource_ref(&**o),
            Object::PersistentVolume(o) => resource_ref(&**o),
            Object::Ingress(o) => resource_ref(&**o),
            Object::IngressClass(o) => resource_ref(&**o),
            Object::Service(o) => resource_ref(&**o),
            Object::Namespace(o) => resource_ref(&**o),
            Object::ProtectedSecret(o) => resource_ref(&**o),
            Object::EncryptedVolumePolicy(o) => resource_ref(&**o),
            Object::TlsIngressPolicy(o) => resource_ref(&**o),
            Object::IngressClassParams(o) => resource_ref(&**o),
            Object::AutoModeIngressClassParams(o) => resource_ref(&**o),
            Object::Gateway(o) => resource_ref(&**o),
            Object::HttpRoute(o) => resource_ref(&**o),
            Object::GatewayClass(o) => resource_ref(&**o),
            Object::LoadBalancerConfiguration(o) => resource_ref(&**o),
        }
    }
}

/// One parsed object and where it came from.
#[derive(Debug, Clone)]
pub struct Located {
    pub object: Object,
    pub location: SourceLocation,
}

/// Everything read from the inputs: the objects, and the errors met on the way.
#[derive(Debug, Default)]
pub struct Inputs {
    pub objects: Vec<Located>,
    pub errors: Vec<InputError>,
    /// Documents of kinds the policies judge, at API versions dpo does not read.
    pub not_judged: Vec<NotJudged>,
    pub warnings: Vec<Warning>,
    /// The files read, canonicalised.
    pub files: HashSet<PathBuf>,
}

mod sources;

pub use sources::{Item, Listing, Source, list_sources, read, read_policies, read_sources};

/// A YAML document of a stream: its text and its first line in the file (1-based).
pub(super) struct Document<'a> {
    pub(super) text: &'a str,
    line: usize,
}

/// Splits a YAML stream on `---` and `...` markers; comment-only documents are dropped.
pub(super) fn documents(text: &str) -> Vec<Document<'_>> {
    let mut docs = Vec::new();
    let mut start = 0;
    let mut start_line = 1;
    let mut offset = 0;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let bare = line.trim_end();
        let marker = bare == "---" || bare.starts_with("--- ") || bare == "...";
        if marker {
            docs.push(Document { text: &text[start..offset], line: start_line });
            start = offset + line.len();
            start_line = index + 2;
        }
        offset += line.len();
    }
    docs.push(Document { text: &text[start..], line: start_line });
    docs.retain(|doc| doc.text.lines().any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#')));
    docs
}

/// Parses one file's text (a YAML stream, or JSON, which is YAML too) into objects and errors.
pub fn parse_text(file: &str, text: &str, inputs: &mut Inputs) {
    // One name shared by every object of the file.
    let file: Arc<str> = file.into();
    for (index, doc) in documents(text).into_iter().enumerate() {
        let location = SourceLocation { file: file.clone(), line: doc.line, document: index };
        let errors_before = inputs.errors.len();
        parse_document(&doc, &location, inputs);
        // A ProtectedSecret's own templates use the same delimiters.
        if is_template(doc.text) && type_meta(doc.text).is_none_or(|(_, kind)| kind != "ProtectedSecret") {
            for error in &mut inputs.errors[errors_before..] {
                error.message.push_str(HELM_HINT);
            }
            if inputs.errors.len() == errors_before {
                inputs.warnings.push(Warning {
                    message: format!(
                        "{location}: document {} looks like a template: it is judged as written{HELM_HINT}",
                        index + 1
                    ),
                    locations: vec![location],
                });
            }
        }
    }
}

/// Appended to what is said of a document holding `{{ }}` actions.
const HELM_HINT: &str = "; if it is a Helm template, render it first: `helm template CHART | dpo check -`";

/// Whether a document holds Go template actions outside comments.
fn is_template(text: &str) -> bool {
    // One search over the document first: almost none has an action.
    text.contains("{{")
        && text.lines().any(|line| {
            let line = line.trim_start();
            !line.starts_with('#') && line.contains("{{") && line.contains("}}")
        })
}

fn parse_document(doc: &Document<'_>, location: &SourceLocation, inputs: &mut Inputs) {
    match type_meta(doc.text) {
        Some((api_version, kind)) if !kind.ends_with("List") => {
            parse_object(doc.text.into(), api_version, kind, location, inputs)
        }
        // Lists, JSON and flow-style documents need a full parse to find their kinds.
        _ => match parse::<serde_yaml::Value>(doc.text.into(), location, "not valid YAML") {
            Ok(value) => parse_value(&value, doc.text, location, inputs),
            Err(error) => inputs.errors.push(error),
        },
    }
}

/// `apiVersion` and `kind` from top-level block-style keys, without parsing the document.
fn type_meta(doc: &str) -> Option<(&str, &str)> {
    let mut api_version = None;
    let mut kind = None;
    for line in doc.lines() {
        if let Some(value) = line.strip_prefix("apiVersion:") {
            api_version = Some(scalar(value));
        } else if let Some(value) = line.strip_prefix("kind:") {
            kind = Some(scalar(value));
        }
        if let (Some(a), Some(k)) = (api_version, kind) {
            return Some((a, k));
        }
    }
    None
}

/// A plain or quoted one-line YAML scalar, comment stripped.
fn scalar(value: &str) -> &str {
    let value = value.trim();
    let value = match value.find(" #") {
        Some(i) => value[..i].trim_end(),
        None => value,
    };
    value.trim_matches(|c| c == '"' || c == '\'')
}

fn yaml_error(location: &SourceLocation, error: &serde_yaml::Error, what: &str) -> InputError {
    // serde_yaml counts lines from the document start; report file lines.
    let line = error.location().map_or(location.line, |l| location.line + l.line() - 1);
    let message = without_marks(&error.to_string());
    InputError {
        location: SourceLocation { line, ..location.clone() },
        message: format!("{what}: {message}"),
    }
}

/// serde_yaml's message without the marks it places (" at line 8 column 1"), which count lines
/// from the document's start rather than the file's.
fn without_marks(message: &str) -> String {
    fn skip_number(text: &str) -> &str {
        text.trim_start_matches(|c: char| c.is_ascii_digit())
    }
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find(" at line ") {
        out.push_str(&rest[..start]);
        let after = skip_number(&rest[start + " at line ".len()..]);
        rest = after.strip_prefix(" column ").map_or(after, skip_number);
    }
    out.push_str(rest);
    out
}

/// A document's text, and serde_yaml's tree of it where it was parsed already (a List item).
#[derive(Clone, Copy)]
struct Text<'a> {
    text: &'a str,
    tree: Option<&'a serde_yaml::Value>,
}

impl<'a> From<&'a str> for Text<'a> {
    fn from(text: &'a str) -> Self {
        Text { text, tree: None }
    }
}

/// Parses a document into `T`. Most manifests are plain block YAML, which the fast reader takes;
/// whatever it declines, serde_yaml parses, and both trees are typed alike. Whatever they cannot
/// type, serde_yaml types from the text, and its errors carry the lines.
fn parse<T: DeserializeOwned>(
    text: Text<'_>,
    location: &SourceLocation,
    what: &str,
) -> Result<T, InputError> {
    match yaml::typed(text.text, text.tree) {
        Ok(value) => return Ok(value),
        // Refused before serde_yaml spends time quadratic in the depth to refuse it too.
        Err(Untyped::TooDeep { line }) => {
            return Err(InputError {
                location: SourceLocation { line: location.line + line - 1, ..location.clone() },
                message: format!(
                    "{what}: collections nest more than {} deep, beyond what dpo reads; flatten this value (no manifest needs that depth)",
                    yaml::MAX_DEPTH
                ),
            });
        }
        Err(Untyped::NotAString(error)) => {
            return Err(InputError { location: location.clone(), message: format!("{what}: {error}") });
        }
        Err(Untyped::Declined) => {}
    }
    serde_yaml::from_str::<T>(text.text).map_err(|e| yaml_error(location, &e, what))
}

/// Handles a fully parsed document: a List's items one by one, or a single object.
fn parse_value(value: &serde_yaml::Value, text: &str, location: &SourceLocation, inputs: &mut Inputs) {
    let field = |name: &str| value.get(name).and_then(|v| v.as_str()).unwrap_or_default();
    let (api_version, kind) = (field("apiVersion"), field("kind"));
    if kind.ends_with("List") {
        let Some(items) = value.get("items").and_then(|i| i.as_sequence()) else {
            inputs.errors.push(InputError {
                location: location.clone(),
                message: format!("{kind} has no items list"),
            });
            return;
        };
        for item in items {
            // Items go through text again so that type errors name their field.
            match serde_yaml::to_string(item) {
                Ok(item_text) => parse_value(item, &item_text, location, inputs),
                Err(e) => inputs.errors.push(yaml_error(location, &e, "unreadable List item")),
            }
        }
    } else if api_version.is_empty() || kind.is_empty() {
        inputs.errors.push(InputError {
            location: location.clone(),
            message: "not a Kubernetes object: apiVersion and kind are required".to_string(),
        });
    } else {
        // Typed from the tree: serde_yaml writes strings like `yes` unquoted, for YAML 1.2.
        parse_object(Text { text, tree: Some(value) }, api_version, kind, location, inputs);
    }
}

/// Why an object of a kind the policies judge is not judged at this API version, if it is such an
/// object.
fn unread_version(api_version: &str, kind: &str) -> Option<String> {
    let removed = |read: &str| {
        format!(
            "{api_version} {kind} was removed in Kubernetes 1.22 and the apiserver refuses it: write it as {read} {kind}"
        )
    };
    match (api_version, kind) {
        ("extensions/v1beta1" | "networking.k8s.io/v1beta1", "Ingress") => {
            Some(removed("networking.k8s.io/v1"))
        }
        ("networking.k8s.io/v1beta1", "IngressClass") => Some(removed("networking.k8s.io/v1")),
        ("storage.k8s.io/v1beta1", "StorageClass") => Some(removed("storage.k8s.io/v1")),
        (
            "gateway.networking.k8s.io/v1beta1" | "gateway.networking.k8s.io/v1alpha2",
            "Gateway" | "HTTPRoute" | "GatewayClass",
        ) => Some(format!(
            "dpo reads gateway.networking.k8s.io/v1 {kind}, which the Gateway API CRDs also serve: write it as v1 to have it judged"
        )),
        _ => None,
    }
}

/// The name an object of an unread version goes by, from its metadata as written.
fn unread_resource(value: &serde_yaml::Value, api_version: &str, kind: &str) -> ResourceRef {
    let metadata = |field: &str| value.get("metadata")?.get(field)?.as_str().map(str::to_string);
    ResourceRef {
        api_version: api_version.to_string().into(),
        kind: kind.to_string().into(),
        namespace: metadata("namespace"),
        name: metadata("name").unwrap_or_default(),
    }
}

/// Parses one object of a known type; kinds that no policy reads are only checked to be valid
/// YAML, since a broken document breaks the apply it belongs to whatever its kind.
fn parse_object(
    text: Text<'_>,
    api_version: &str,
    kind: &str,
    location: &SourceLocation,
    inputs: &mut Inputs,
) {
    fn typed<T: DeserializeOwned>(
        text: Text<'_>,
        location: &SourceLocation,
        wrap: fn(T) -> Object,
    ) -> Result<Object, InputError> {
        parse(text, location, "invalid object").map(wrap)
    }
    let parsed = match (api_version, kind) {
        ("storage.k8s.io/v1", "StorageClass") => typed(text, location, |o| Object::StorageClass(Box::new(o))),
        ("v1", "PersistentVolume") => typed(text, location, |o| Object::PersistentVolume(Box::new(o))),
        ("networking.k8s.io/v1", "Ingress") => typed(text, location, |o| Object::Ingress(Box::new(o))),
        ("networking.k8s.io/v1", "IngressClass") => {
            typed(text, location, |o| Object::IngressClass(Box::new(o)))
        }
        ("v1", "Service") => typed(text, location, |o| Object::Service(Box::new(o))),
        ("v1", "Namespace") => typed(text, location, |o| Object::Namespace(Box::new(o))),
        ("elbv2.k8s.aws/v1beta1", "IngressClassParams") => {
            typed(text, location, |o| Object::IngressClassParams(Box::new(o)))
        }
        ("eks.amazonaws.com/v1", "IngressClassParams") => {
            typed(text, location, |o| Object::AutoModeIngressClassParams(Box::new(o)))
        }
        ("gateway.networking.k8s.io/v1", "Gateway") => {
            typed(text, location, |o| Object::Gateway(Box::new(o)))
        }
        ("gateway.networking.k8s.io/v1", "HTTPRoute") => {
            typed(text, location, |o| Object::HttpRoute(Box::new(o)))
        }
        ("gateway.networking.k8s.io/v1", "GatewayClass") => {
            typed(text, location, |o| Object::GatewayClass(Box::new(o)))
        }
        ("gateway.k8s.aws/v1beta1", "LoadBalancerConfiguration") => {
            typed(text, location, |o| Object::LoadBalancerConfiguration(Box::new(o)))
        }
        (API_VERSION, "ProtectedSecret") => typed(text, location, |o| Object::ProtectedSecret(Box::new(o))),
        (API_VERSION, "EncryptedVolumePolicy") => {
            typed(text, location, |o| Object::EncryptedVolumePolicy(Box::new(o)))
        }
        (API_VERSION, "TlsIngressPolicy") => typed(text, location, |o| Object::TlsIngressPolicy(Box::new(o))),
        (version, kind) if version.split('/').next() == Some(GROUP) => Err(InputError {
            location: location.clone(),
            message: format!(
                "unknown {GROUP} object {version}/{kind}: this dpo reads {API_VERSION} ProtectedSecret, EncryptedVolumePolicy and TlsIngressPolicy"
            ),
        }),
        _ => {
            match parse::<serde_yaml::Value>(text, location, &format!("invalid {kind}")) {
                Ok(value) => {
                    if let Some(reason) = unread_version(api_version, kind) {
                        let resource = unread_resource(&value, api_version, kind);
                        inputs.not_judged.push(NotJudged { resource, location: location.clone(), reason });
                    }
                }
                Err(error) => inputs.errors.push(error),
            }
            return;
        }
    };
    match parsed {
        Ok(object) => inputs.objects.push(Located { object, location: location.clone() }),
        Err(error) => inputs.errors.push(error),
    }
}
