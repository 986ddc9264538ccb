//! Reads manifests for `dpo check`: files, directories, stdin; multi-document YAML, JSON,
//! `List` kinds and `helm template` output.

use super::report::SourceLocation;
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
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A manifest the input could not supply, located as precisely as possible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
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

    fn resource(&self) -> ResourceRef {
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
    /// The files read, canonicalised.
    pub files: HashSet<PathBuf>,
}

/// Where manifests come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Stdin,
    Path(PathBuf),
}

impl Source {
    pub fn parse(arg: &str) -> Source {
        if arg == "-" { Source::Stdin } else { Source::Path(PathBuf::from(arg)) }
    }
}

/// Reads every source but the files in `skip` (canonicalised); a bad file is recorded as an
/// error and the rest are still read.
pub fn read_sources(sources: &[Source], skip: &HashSet<PathBuf>) -> Inputs {
    let mut inputs = Inputs::default();
    for source in sources {
        match source {
            Source::Stdin => match std::io::read_to_string(std::io::stdin()) {
                Ok(text) => parse_text(SourceLocation::STDIN, &text, &mut inputs),
                Err(e) => inputs.errors.push(file_error(SourceLocation::STDIN, format!("cannot read: {e}"))),
            },
            Source::Path(path) => read_path(path, skip, &mut inputs),
        }
    }
    inputs
}

/// Reads `--policy` sources: policies only, anything else `dpo check` reads is an error there.
pub fn read_policies(sources: &[Source]) -> Inputs {
    let mut inputs = read_sources(sources, &HashSet::new());
    let (policies, others): (Vec<Located>, Vec<Located>) = std::mem::take(&mut inputs.objects)
        .into_iter()
        .partition(|located| located.object.policy().is_some());
    inputs.objects = policies;
    inputs.errors.extend(others.into_iter().map(|located| {
        let resource = located.object.resource();
        InputError {
            location: located.location,
            message: format!(
                "{} {} is not a policy: --policy files hold EncryptedVolumePolicy and TlsIngressPolicy objects; pass this file as an input to check it",
                resource.kind, resource.name
            ),
        }
    }));
    inputs
}

fn file_error(file: &str, message: String) -> InputError {
    InputError { location: SourceLocation { file: file.into(), line: 1, document: 0 }, message }
}

fn read_path(path: &Path, skip: &HashSet<PathBuf>, inputs: &mut Inputs) {
    let display = path.display().to_string();
    if path.is_dir() {
        match manifest_files(path) {
            Ok(files) => files.iter().for_each(|file| read_file(file, skip, inputs)),
            Err(e) => inputs.errors.push(file_error(&display, format!("cannot list directory: {e}"))),
        }
    } else if path.exists() {
        read_file(path, skip, inputs);
    } else {
        inputs.errors.push(file_error(&display, "no such file or directory".to_string()));
    }
}

fn read_file(path: &Path, skip: &HashSet<PathBuf>, inputs: &mut Inputs) {
    let display = path.display().to_string();
    if let Ok(canonical) = path.canonicalize() {
        if skip.contains(&canonical) {
            return;
        }
        inputs.files.insert(canonical);
    }
    match std::fs::read_to_string(path) {
        Ok(text) => parse_text(&display, &text, inputs),
        Err(e) => inputs.errors.push(file_error(&display, format!("cannot read: {e}"))),
    }
}

/// `*.yaml`, `*.yml` and `*.json` below `dir`, recursively, in a stable order.
fn manifest_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "yaml" || ext == "yml" || ext == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

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
        match type_meta(doc.text) {
            Some((api_version, kind)) if !kind.ends_with("List") => {
                parse_object(doc.text.into(), api_version, kind, &location, inputs)
            }
            // Lists, JSON and flow-style documents need a full parse to find their kinds.
            _ => match parse::<serde_yaml::Value>(doc.text.into(), &location, "not valid YAML") {
                Ok(value) => parse_value(&value, doc.text, &location, inputs),
                Err(error) => inputs.errors.push(error),
            },
        }
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
            if let Err(error) = parse::<serde_yaml::Value>(text, location, &format!("invalid {kind}")) {
                inputs.errors.push(error);
            }
            return;
        }
    };
    match parsed {
        Ok(object) => inputs.objects.push(Located { object, location: location.clone() }),
        Err(error) => inputs.errors.push(error),
    }
}
