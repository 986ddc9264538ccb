//! A fast reader for the plain block-style YAML that manifests and `helm template` output are
//! written in: block mappings and sequences, one-line plain and quoted scalars, one-line flow
//! collections, comments. It declines anything else (block and multi-line scalars, anchors,
//! tags, duplicate keys, floats and other ambiguous scalars), and the caller parses that
//! document with `serde_yaml`, which also produces every error message. Scalars resolve as
//! `serde_yaml` resolves them, so a document read here deserialises to the same object.
//! Documents nesting deeper than `serde_yaml` reads are refused here as there.
//!
//! [`typed`] types a document from this reader's node or, for a document it declines, from the
//! tree serde_yaml parsed, so that both hold a map of strings to strings (see [`de`]).

mod de;
#[cfg(test)]
mod generated;
mod scalar;
#[cfg(test)]
mod tests;

pub use de::NotAString;
use scalar::{scalar, split_key};
use serde::de::DeserializeOwned;
use std::borrow::Cow;

/// A node as this reader builds it: lighter than a generic value, and deserialised straight into
/// typed objects.
#[derive(Debug, PartialEq)]
pub enum Node<'a> {
    Null,
    Bool(bool),
    Int(i64),
    /// Only from serde_yaml's tree: this reader leaves floats to it.
    Float(f64),
    /// Borrowed from the document unless unescaping changed it.
    Str(Cow<'a, str>),
    /// A plain scalar that YAML 1.2 reads as a string, as serde_yaml does, but kubectl's YAML 1.1
    /// as a boolean or a number (`yes`, `off`, `010`): a string to every field but a map's.
    Yaml11(&'a str),
    Seq(Vec<Node<'a>>),
    Map(Vec<(Cow<'a, str>, Node<'a>)>),
}

/// How deeply collections may nest: `serde_yaml`'s own limit, far beyond any manifest. It keeps
/// recursion shallow whatever the input.
pub const MAX_DEPTH: usize = 128;

impl<'a> Node<'a> {
    /// The node of a tree serde_yaml parsed; `None` where it holds what a node cannot (a tag, a
    /// key that is not a string).
    pub fn from_value(value: &'a serde_yaml::Value) -> Option<Node<'a>> {
        use serde_yaml::Value;
        Some(match value {
            Value::Null => Node::Null,
            Value::Bool(b) => Node::Bool(*b),
            Value::Number(n) => match n.as_i64() {
                Some(int) => Node::Int(int),
                None => Node::Float(n.as_f64()?),
            },
            Value::String(s) => Node::Str(Cow::Borrowed(s)),
            Value::Sequence(items) => Node::Seq(items.iter().map(Node::from_value).collect::<Option<_>>()?),
            Value::Mapping(entries) => Node::Map(
                entries
                    .iter()
                    .map(|(key, value)| Some((Cow::Borrowed(key.as_str()?), Node::from_value(value)?)))
                    .collect::<Option<_>>()?,
            ),
            Value::Tagged(_) => return None,
        })
    }
}

/// Why [`typed`] gave a document back.
#[derive(Debug, PartialEq)]
pub enum Untyped {
    /// As [`Declined::TooDeep`].
    TooDeep { line: usize },
    /// A map of strings holds something else, which the apiserver refuses.
    NotAString(NotAString),
    /// Left to serde_yaml, whose messages carry the lines.
    Declined,
}

/// `T` from a document: from `tree` where the caller parsed one (a List item, a JSON document),
/// else from this reader's node, or from the tree serde_yaml parses of a document it declines.
pub fn typed<T: DeserializeOwned>(text: &str, tree: Option<&serde_yaml::Value>) -> Result<T, Untyped> {
    let parsed;
    let node = match tree {
        Some(tree) => Node::from_value(tree),
        None => match read(text) {
            Ok(node) => Some(node),
            Err(Declined::TooDeep { line }) => return Err(Untyped::TooDeep { line }),
            Err(Declined::Beyond) => {
                parsed = serde_yaml::from_str::<serde_yaml::Value>(text).ok();
                parsed.as_ref().and_then(Node::from_value)
            }
        },
    };
    match node.map(T::deserialize) {
        Some(Ok(value)) => Ok(value),
        Some(Err(de::Error::NotAString(error))) => Err(Untyped::NotAString(error)),
        _ => Err(Untyped::Declined),
    }
}

/// Why the reader gave a document back.
#[derive(Debug, PartialEq, Eq)]
pub enum Declined {
    /// It uses YAML beyond this reader's subset: the full parser reads it.
    Beyond,
    /// Its collections nest deeper than [`MAX_DEPTH`] from this line of the document (1-based)
    /// on; the full parser refuses it too, after a parse that takes time quadratic in the depth.
    TooDeep { line: usize },
}

/// The nesting left to a document being read, and where it ran out.
struct Depth {
    room: usize,
    exceeded_at: Option<usize>,
}

impl Depth {
    /// Enters a collection starting on `line`; `None` when that nests too deep.
    fn enter(&mut self, line: usize) -> Option<()> {
        match self.room.checked_sub(1) {
            Some(room) => self.room = room,
            None => self.exceeded_at = Some(line),
        }
        self.exceeded_at.is_none().then_some(())
    }

    fn leave(&mut self) {
        self.room += 1;
    }
}

/// Adds an entry unless the key is taken (YAML forbids duplicate keys; the full parser says so).
fn insert<'a>(map: &mut Vec<(Cow<'a, str>, Node<'a>)>, key: Cow<'a, str>, value: Node<'a>) -> bool {
    let fresh = !map.iter().any(|(existing, _)| *existing == key);
    if fresh {
        map.push((key, value));
    }
    fresh
}

/// The document's node, unless it uses YAML beyond this reader's subset or nests too deep.
pub fn read(doc: &str) -> Result<Node<'_>, Declined> {
    if !plain_text(doc) {
        return Err(Declined::Beyond);
    }
    let mut lines = Vec::with_capacity(32);
    for (index, line) in doc.lines().enumerate() {
        let content = line.trim_start_matches(' ');
        let text = content.trim_end();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        // Directives are the full parser's business.
        if content.starts_with('%') {
            return Err(Declined::Beyond);
        }
        lines.push(Line { number: index + 1, indent: line.len() - content.len(), text });
    }
    let mut reader = Reader { lines, next: 0, depth: Depth { room: MAX_DEPTH, exceeded_at: None } };
    let value = reader.document();
    match reader.depth.exceeded_at {
        Some(line) => Err(Declined::TooDeep { line }),
        None => value.ok_or(Declined::Beyond),
    }
}

/// Whether the text has none of the characters whose handling this reader leaves to the full
/// parser: tabs (which may separate comments and may not indent), characters YAML forbids, a
/// byte order mark and the line breaks YAML knows besides `\n`.
fn plain_text(doc: &str) -> bool {
    let control = |b: u8| (b < 0x20 && b != b'\n' && b != b'\r') || b == 0x7f;
    if doc.bytes().any(control) {
        return false;
    }
    doc.is_ascii()
        || !doc.chars().any(|c| {
            matches!(c, '\u{80}'..='\u{9f}' | '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}')
        })
}

#[derive(Clone, Copy)]
struct Line<'a> {
    /// 1-based, in the document.
    number: usize,
    indent: usize,
    text: &'a str,
}

impl Line<'_> {
    fn is_item(&self) -> bool {
        self.text == "-" || self.text.starts_with("- ")
    }
}

struct Reader<'a> {
    lines: Vec<Line<'a>>,
    next: usize,
    depth: Depth,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<Line<'a>> {
        self.lines.get(self.next).copied()
    }

    fn document(&mut self) -> Option<Node<'a>> {
        let value = self.node(self.peek()?.indent)?;
        // Anything left over sits at an indentation the document's structure does not allow.
        (self.next == self.lines.len()).then_some(value)
    }

    /// The node whose first line is the next one, at `indent`: a block collection, or a flow
    /// collection on a line of its own.
    fn node(&mut self, indent: usize) -> Option<Node<'a>> {
        let line = self.peek()?;
        if line.text.starts_with(['[', '{']) {
            self.next += 1;
            return self.inline(indent, line.text);
        }
        self.depth.enter(line.number)?;
        let node = if line.is_item() { self.sequence(indent) } else { self.mapping(indent) };
        self.depth.leave();
        node
    }

    /// The value of a key or item with nothing after it on its line: a nested block, or null.
    fn nested(&mut self, parent: usize, sequence_may_align: bool) -> Option<Node<'a>> {
        match self.peek() {
            Some(line) if line.indent > parent => self.node(line.indent),
            // `key:` followed by `- item` at the key's own indentation.
            Some(line) if sequence_may_align && line.indent == parent && line.is_item() => self.node(parent),
            _ => Some(Node::Null),
        }
    }

    fn mapping(&mut self, indent: usize) -> Option<Node<'a>> {
        let mut map = Vec::new();
        while let Some(line) = self.peek() {
            if line.indent < indent || (line.indent == indent && line.is_item()) {
                break;
            }
            if line.indent > indent {
                return None;
            }
            self.next += 1;
            let (key, rest) = split_key(line.text)?;
            let value = if rest.is_empty() { self.nested(indent, true)? } else { self.inline(indent, rest)? };
            if !insert(&mut map, key, value) {
                return None;
            }
        }
        Some(Node::Map(map))
    }

    fn sequence(&mut self, indent: usize) -> Option<Node<'a>> {
        let mut items = Vec::new();
        while let Some(line) = self.peek() {
            if line.indent != indent || !line.is_item() {
                if line.indent > indent {
                    return None;
                }
                break;
            }
            let rest = line.text[1..].trim_start_matches(' ');
            if rest.is_empty() || rest.starts_with('#') {
                self.next += 1;
                items.push(self.nested(indent, false)?);
            } else {
                // The item's content is a line of its own, indented to where it starts.
                let content_indent = indent + (line.text.len() - rest.len());
                self.lines[self.next] = Line { indent: content_indent, text: rest, ..line };
                let starts_block = rest.starts_with("- ") || rest == "-" || split_key(rest).is_some();
                if starts_block {
                    items.push(self.node(content_indent)?);
                } else {
                    self.next += 1;
                    items.push(self.inline(content_indent, rest)?);
                }
            }
        }
        Some(Node::Seq(items))
    }

    /// A scalar or flow collection ending the line just taken; a more-indented line after it
    /// would continue it (a multi-line scalar), which this reader leaves to the full parser.
    fn inline(&mut self, indent: usize, text: &'a str) -> Option<Node<'a>> {
        if self.peek().is_some_and(|next| next.indent > indent) {
            return None;
        }
        let line = self.lines[self.next - 1].number;
        scalar(text, &mut self.depth, line)
    }
}
