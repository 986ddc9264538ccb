//! A fast reader for the plain block-style YAML that manifests and `helm template` output are
//! written in: block mappings and sequences, one-line plain and quoted scalars, one-line flow
//! collections, comments. It answers `None` for anything else (block and multi-line scalars,
//! anchors, tags, duplicate keys, floats and other ambiguous scalars), and the caller parses
//! that document with `serde_yaml`, which also produces every error message. Scalars resolve as
//! `serde_yaml` resolves them, so a document read here deserialises to the same object.

use serde::de::value::{MapDeserializer, SeqDeserializer};
use serde::de::{self, IntoDeserializer, Visitor};
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

/// `key: rest` (rest may be empty) for a mapping entry line.
fn split_key(text: &str) -> Option<(Cow<'_, str>, &str)> {
    let (key, rest) = if let Some(quote) = text.chars().next().filter(|c| *c == '"' || *c == '\'') {
        let (key, after) = quoted(text, quote)?;
        (key, after.strip_prefix(':')?)
    } else {
        let colon = find_pair(text, b": ").or_else(|| text.strip_suffix(':').map(str::len))?;
        let key = &text[..colon];
        if key.is_empty()
            || key.ends_with(' ')
            || key.starts_with(INDICATORS)
            || find_pair(key, b" #").is_some()
            || resolves(key)
        {
            return None;
        }
        (Cow::Borrowed(key), &text[colon + 1..])
    };
    if !rest.is_empty() && !rest.starts_with(' ') {
        return None;
    }
    Some((key, strip_comment(rest.trim_start_matches(' '))))
}

/// Characters that begin something other than a plain scalar.
const INDICATORS: [char; 13] = ['&', '*', '!', '|', '>', '%', '@', '`', '[', ']', '{', '}', '?'];

/// Whether a plain key would resolve to something other than a string.
fn resolves(key: &str) -> bool {
    let may_resolve = |c: char| c.is_ascii_digit() || "-+.~nNtTfF".contains(c);
    key.starts_with(may_resolve) && !matches!(plain(key), Some(Node::Str(_)))
}

/// Where two ASCII characters first occur together (cheaper than a substring search for lines
/// this short).
fn find_pair(text: &str, pair: &[u8; 2]) -> Option<usize> {
    text.as_bytes().windows(2).position(|window| window == pair)
}

/// A plain scalar without its trailing comment; quoted scalars are left whole.
fn strip_comment(text: &str) -> &str {
    if text.starts_with('#') {
        return "";
    }
    match find_pair(text, b" #") {
        Some(i) if !text.starts_with(['"', '\'']) => text[..i].trim_end_matches(' '),
        _ => text,
    }
}

fn scalar(text: &str) -> Option<Node<'_>> {
    match text.chars().next()? {
        quote @ ('"' | '\'') => {
            let (value, rest) = quoted(text, quote)?;
            let rest = rest.trim_start_matches(' ');
            (rest.is_empty() || rest.starts_with('#')).then_some(Node::Str(value))
        }
        '[' | '{' => {
            let mut cursor = Flow { rest: text };
            let value = cursor.node()?;
            let rest = cursor.rest.trim_start_matches(' ');
            (rest.is_empty() || rest.starts_with('#')).then_some(value)
        }
        _ => plain(strip_comment(text)),
    }
}

/// A one-line flow collection (`[a, b]`, `{app: web}`), nested or not, of plain and quoted
/// scalars.
struct Flow<'a> {
    rest: &'a str,
}

impl<'a> Flow<'a> {
    fn skip_spaces(&mut self) {
        self.rest = self.rest.trim_start_matches(' ');
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_spaces();
        self.rest.strip_prefix(c).map(|rest| self.rest = rest).is_some()
    }

    fn node(&mut self) -> Option<Node<'a>> {
        self.skip_spaces();
        if self.eat('[') {
            let mut items = Vec::new();
            while !self.eat(']') {
                items.push(self.node()?);
                if !self.eat(',') && !self.rest.starts_with(']') {
                    return None;
                }
            }
            Some(Node::Seq(items))
        } else if self.eat('{') {
            let mut map = Vec::new();
            while !self.eat('}') {
                let Node::Str(key) = self.scalar()? else { return None };
                // `key: value`; a quoted key may be followed directly by the colon.
                if !self.eat(':') || !self.rest.starts_with(' ') {
                    return None;
                }
                let value = self.node()?;
                if !insert(&mut map, key, value) || (!self.eat(',') && !self.rest.starts_with('}')) {
                    return None;
                }
            }
            Some(Node::Map(map))
        } else {
            self.scalar()
        }
    }

    fn scalar(&mut self) -> Option<Node<'a>> {
        self.skip_spaces();
        match self.rest.chars().next()? {
            quote @ ('"' | '\'') => {
                let (value, rest) = quoted(self.rest, quote)?;
                self.rest = rest;
                Some(Node::Str(value))
            }
            _ => {
                let end = self.rest.find([',', '[', ']', '{', '}', ':', '#']).unwrap_or(self.rest.len());
                let (text, rest) = self.rest.split_at(end);
                self.rest = rest;
                plain(text.trim_end_matches(' ')).filter(|_| !text.trim().is_empty())
            }
        }
    }
}

/// A quoted scalar that closes on its line, and the text after it.
fn quoted(text: &str, quote: char) -> Option<(Cow<'_, str>, &str)> {
    let body = &text[1..];
    // Most quoted scalars have nothing to unescape: borrow those.
    if let Some(end) = body.find(|c: char| c == quote || (quote == '"' && c == '\\')) {
        let doubled = quote == '\'' && body[end + 1..].starts_with('\'');
        if body[end..].starts_with(quote) && !doubled {
            return Some((Cow::Borrowed(&body[..end]), &body[end + 1..]));
        }
    }
    let mut value = String::with_capacity(body.len());
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\'' if quote == '\'' => {
                if body[i + 1..].starts_with('\'') {
                    chars.next();
                    value.push('\'');
                } else {
                    return Some((Cow::Owned(value), &body[i + 1..]));
                }
            }
            '"' if quote == '"' => return Some((Cow::Owned(value), &body[i + 1..])),
            '\\' if quote == '"' => match chars.next()?.1 {
                escaped @ ('"' | '\\' | '/') => value.push(escaped),
                'n' => value.push('\n'),
                't' => value.push('\t'),
                // Rarer escapes (\x, \u, \N, line folding) go to the full parser.
                _ => return None,
            },
            _ => value.push(c),
        }
    }
    None
}

/// A one-line plain scalar resolved by YAML 1.2's core schema, as `serde_yaml` does. Scalars
/// that may resolve to floats or non-decimal integers are left to the full parser.
fn plain(text: &str) -> Option<Node<'_>> {
    if text == "-"
        || text.starts_with(INDICATORS)
        || text.starts_with("- ")
        || find_pair(text, b": ").is_some()
        || text.ends_with(':')
    {
        return None;
    }
    let value = match text {
        "~" | "null" | "Null" | "NULL" => Node::Null,
        "true" | "True" | "TRUE" => Node::Bool(true),
        "false" | "False" | "FALSE" => Node::Bool(false),
        _ if text.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '-' | '+' | '.')) => {
            let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
            let leading_zero = unsigned.len() > 1 && unsigned.starts_with('0');
            match text.parse::<i64>() {
                // `010` is a string to YAML 1.2 but octal to YAML 1.1 readers; let the full parser say.
                Ok(_) if leading_zero => return None,
                Ok(int) => Node::Int(int),
                // Floats, `.inf`, `0x1F`, `0o17` and `0b101` resolve to numbers in ways not worth
                // repeating here.
                Err(_) if text.parse::<f64>().is_ok() || leading_zero || unsigned.starts_with('.') => {
                    return None;
                }
                Err(_) => Node::Str(Cow::Borrowed(text)),
            }
        }
        _ => Node::Str(Cow::Borrowed(text)),
    };
    Some(value)
}

impl<'de> de::Deserializer<'de> for Node<'de> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self {
            Node::Null => visitor.visit_unit(),
            Node::Bool(b) => visitor.visit_bool(b),
            Node::Int(i) => visitor.visit_i64(i),
            Node::Str(Cow::Borrowed(s)) => visitor.visit_borrowed_str(s),
            Node::Str(Cow::Owned(s)) => visitor.visit_string(s),
            Node::Seq(items) => visitor.visit_seq(SeqDeserializer::new(items.into_iter())),
            Node::Map(entries) => visitor.visit_map(MapDeserializer::new(entries.into_iter())),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self {
            Node::Null => visitor.visit_none(),
            node => visitor.visit_some(node),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    /// Unit variants, written as strings; other shapes are left to the full parser.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self {
            Node::Str(variant) => visitor.visit_enum(variant.into_deserializer()),
            _ => Err(de::Error::custom("only unit variants are read here")),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf unit
        unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

impl<'de> IntoDeserializer<'de, de::value::Error> for Node<'de> {
    type Deserializer = Node<'de>;

    fn into_deserializer(self) -> Node<'de> {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::{Value, json};

    fn full(doc: &str) -> Value {
        serde_yaml::from_str(doc).expect("valid YAML")
    }

    /// What the reader makes of `doc`, as a JSON value (deserialised from the node).
    fn fast(doc: &str) -> Option<Value> {
        read(doc).map(|node| Value::deserialize(node).expect("a node deserialises"))
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
            let node = read(doc).unwrap_or_else(|| panic!("declined:\n{doc}"));
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
            for doc in super::super::input::documents(&text).iter().map(|doc| doc.text) {
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
        let doc =
            "a: 10\nb: \"10\"\nc: true\nd: 'true'\ne: null\nf: v1\ng: -1\nh: 15m\ni: 20Gi\nj: 6.8-apache\n";
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
            "a: 010\n",
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
        ] {
            assert_eq!(read(doc), None, "{doc}");
        }
    }
}
