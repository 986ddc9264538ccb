//! A fast reader for the plain block-style YAML that manifests and `helm template` output are
//! written in: block mappings and sequences, one-line plain and quoted scalars, one-line flow
//! collections, comments. It answers `None` for anything else (block and multi-line scalars,
//! anchors, tags, duplicate keys, floats and other ambiguous scalars), and the caller parses
//! that document with `serde_yaml`, which also produces every error message. Scalars resolve as
//! `serde_yaml` resolves them, so a document read here deserialises to the same object.

mod de;
mod scalar;
#[cfg(test)]
mod tests;

use scalar::{scalar, split_key};
use std::borrow::Cow;

/// A node as this reader builds it: lighter than a generic value, and deserialised straight into
/// typed objects.
#[derive(Debug, PartialEq)]
pub enum Node<'a> {
    Null,
    Bool(bool),
    Int(i64),
    /// Borrowed from the document unless unescaping changed it.
    Str(Cow<'a, str>),
    Seq(Vec<Node<'a>>),
    Map(Vec<(Cow<'a, str>, Node<'a>)>),
}

/// Adds an entry unless the key is taken (YAML forbids duplicate keys; the full parser says so).
fn insert<'a>(map: &mut Vec<(Cow<'a, str>, Node<'a>)>, key: Cow<'a, str>, value: Node<'a>) -> bool {
    let fresh = !map.iter().any(|(existing, _)| *existing == key);
    if fresh {
        map.push((key, value));
    }
    fresh
}

/// The document's node, or `None` when it uses YAML beyond this reader's subset.
pub fn read(doc: &str) -> Option<Node<'_>> {
    if !plain_text(doc) {
        return None;
    }
    let mut lines = Vec::with_capacity(32);
    for line in doc.lines() {
        let content = line.trim_start_matches(' ');
        let text = content.trim_end();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        // Directives are the full parser's business.
        if content.starts_with('%') {
            return None;
        }
        lines.push(Line { indent: line.len() - content.len(), text });
    }
    let mut reader = Reader { lines, next: 0 };
    let first = reader.lines.first()?.indent;
    let value = reader.node(first)?;
    // Anything left over sits at an indentation the document's structure does not allow.
    (reader.next == reader.lines.len()).then_some(value)
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
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<Line<'a>> {
        self.lines.get(self.next).copied()
    }

    /// The block node whose first line is the next one, at `indent`.
    fn node(&mut self, indent: usize) -> Option<Node<'a>> {
        let line = self.peek()?;
        if line.is_item() { self.sequence(indent) } else { self.mapping(indent) }
    }

    /// The value of a key or item with nothing after it on its line: a nested block, or null.
    fn nested(&mut self, parent: usize, sequence_may_align: bool) -> Option<Node<'a>> {
        match self.peek() {
            Some(line) if line.indent > parent => self.node(line.indent),
            // `key:` followed by `- item` at the key's own indentation.
            Some(line) if sequence_may_align && line.indent == parent && line.is_item() => {
                self.sequence(parent)
            }
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
                self.lines[self.next] = Line { indent: content_indent, text: rest };
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

    /// A scalar on the line of its key or item; a more-indented line after it would continue
    /// it (a multi-line scalar), which this reader leaves to the full parser.
    fn inline(&self, indent: usize, text: &'a str) -> Option<Node<'a>> {
        if self.peek().is_some_and(|next| next.indent > indent) {
            return None;
        }
        scalar(text)
    }
}
