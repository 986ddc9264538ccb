//! A fast reader for the plain block-style YAML that manifests and `helm template` output are
//! written in: block mappings and sequences, one-line plain and quoted scalars, comments, `{}`
//! and `[]`. It answers `None` for anything else (flow collections, block and multi-line
//! scalars, anchors, tags, duplicate keys, ambiguous scalars), and the caller parses that
//! document with `serde_yaml`, which also produces every error message. Scalars resolve as
//! `serde_yaml` resolves them, so a document read here deserialises to the same object.

use serde_json::{Map, Number, Value};

/// The document as a JSON value, or `None` when it uses YAML beyond this reader's subset.
pub fn read(doc: &str) -> Option<Value> {
    let mut lines = Vec::with_capacity(32);
    for line in doc.lines() {
        let content = line.trim_start_matches(' ');
        let text = content.trim_end();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        // Tabs may not indent YAML; directives are the full parser's business.
        if content.starts_with(['\t', '%']) {
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
    fn node(&mut self, indent: usize) -> Option<Value> {
        let line = self.peek()?;
        if line.is_item() { self.sequence(indent) } else { self.mapping(indent) }
    }

    /// The value of a key or item with nothing after it on its line: a nested block, or null.
    fn nested(&mut self, parent: usize, sequence_may_align: bool) -> Option<Value> {
        match self.peek() {
            Some(line) if line.indent > parent => self.node(line.indent),
            // `key:` followed by `- item` at the key's own indentation.
            Some(line) if sequence_may_align && line.indent == parent && line.is_item() => {
                self.sequence(parent)
            }
            _ => Some(Value::Null),
        }
    }

    fn mapping(&mut self, indent: usize) -> Option<Value> {
        let mut map = Map::new();
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
            if map.insert(key, value).is_some() {
                return None;
            }
        }
        Some(Value::Object(map))
    }

    fn sequence(&mut self, indent: usize) -> Option<Value> {
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
        Some(Value::Array(items))
    }

    /// A scalar on the line of its key or item; a more-indented line after it would continue
    /// it (a multi-line scalar), which this reader leaves to the full parser.
    fn inline(&self, indent: usize, text: &str) -> Option<Value> {
        if self.peek().is_some_and(|next| next.indent > indent) {
            return None;
        }
        scalar(text)
    }
}

/// `key: rest` (rest may be empty) for a mapping entry line.
fn split_key(text: &str) -> Option<(String, &str)> {
    let (key, rest) = if let Some(quote) = text.chars().next().filter(|c| *c == '"' || *c == '\'') {
        let (key, after) = quoted(text, quote)?;
        (key, after.strip_prefix(':')?)
    } else {
        let colon = find_pair(text, b": ").or_else(|| text.strip_suffix(':').map(str::len))?;
        let key = &text[..colon];
        if key.is_empty() || key.starts_with(INDICATORS) || find_pair(key, b" #").is_some() || resolves(key) {
            return None;
        }
        (key.to_string(), &text[colon + 1..])
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
    key.starts_with(may_resolve) && !matches!(plain(key), Some(Value::String(_)))
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

fn scalar(text: &str) -> Option<Value> {
    match text.chars().next()? {
        quote @ ('"' | '\'') => {
            let (value, rest) = quoted(text, quote)?;
            let rest = rest.trim_start_matches(' ');
            (rest.is_empty() || rest.starts_with('#')).then_some(Value::String(value))
        }
        _ => match strip_comment(text) {
            "{}" => Some(Value::Object(Map::new())),
            "[]" => Some(Value::Array(Vec::new())),
            plain_text => plain(plain_text),
        },
    }
}

/// A quoted scalar that closes on its line, and the text after it.
fn quoted(text: &str, quote: char) -> Option<(String, &str)> {
    let body = &text[1..];
    let mut value = String::with_capacity(body.len());
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\'' if quote == '\'' => {
                if body[i + 1..].starts_with('\'') {
                    chars.next();
                    value.push('\'');
                } else {
                    return Some((value, &body[i + 1..]));
                }
            }
            '"' if quote == '"' => return Some((value, &body[i + 1..])),
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
/// that resolve to floats or other numbers are left to the full parser.
fn plain(text: &str) -> Option<Value> {
    if text == "-"
        || text.starts_with(INDICATORS)
        || text.starts_with("- ")
        || find_pair(text, b": ").is_some()
        || text.ends_with(':')
    {
        return None;
    }
    let value = match text {
        "~" | "null" | "Null" | "NULL" => Value::Null,
        "true" | "True" | "TRUE" => Value::Bool(true),
        "false" | "False" | "FALSE" => Value::Bool(false),
        _ if text.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '-' | '+' | '.')) => {
            let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                // `-foo` and `.bar` are strings, but `1.5`, `.inf`, `0x1F` and `1e3` are not.
                let numeric_looking = digits.starts_with(|c: char| c.is_ascii_digit() || c == '.');
                return (!numeric_looking && !text.starts_with('+')).then(|| Value::String(text.to_string()));
            }
            // Leading zeros would be octal in YAML 1.1; leave them to the full parser.
            if digits.len() > 1 && digits.starts_with('0') {
                return None;
            }
            Value::Number(text.parse::<i64>().ok().map(Number::from)?)
        }
        _ => Value::String(text.to_string()),
    };
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn full(doc: &str) -> Value {
        serde_yaml::from_str(doc).expect("valid YAML")
    }

    /// Documents inside the subset read exactly as the full parser reads them.
    #[test]
    fn the_subset_reads_as_serde_yaml_reads_it() {
        let docs = [
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: web # trailing comment\n  annotations: {}\n  labels:\n    app: web\n    \"quoted key\": 'it''s'\nspec:\n  ports:\n    - name: https\n      port: 443\n      targetPort: 8443\n  selector: {}\n",
            "a:\n- 1\n- -2\n- x: y\n  z:\n  - nested\n- - inner\n  - more\n-\n  deep: true\nb: \"esc \\\" \\\\ \\n done\"\nc: ~\nd:\ne: []\nf: False\ng: -web\nh: http://x.example.com/a#b\n",
            "# leading comment\n\nkey: value\n\n  # indented comment\nother: 'x # not a comment'\nnone: # a comment\nitems:\n  - # a comment\n    k: v\n",
            "list:\n  -   spaced: 1\n      again: 2\n",
        ];
        for doc in docs {
            assert_eq!(read(doc), Some(full(doc)), "{doc}");
        }
    }

    /// Typical manifests take the fast path and type exactly as through serde_yaml.
    #[test]
    fn typical_manifests_are_read_and_typed_alike() {
        use k8s_openapi::api::core::v1::Service;
        use k8s_openapi::api::networking::v1::Ingress;
        use k8s_openapi::api::storage::v1::StorageClass;
        fn same<T: serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(doc: &str) {
            let value = read(doc).unwrap_or_else(|| panic!("declined:\n{doc}"));
            let fast: T = serde_json::from_value(value).expect("types");
            assert_eq!(fast, serde_yaml::from_str::<T>(doc).unwrap());
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

    #[test]
    fn values_resolve_like_the_core_schema() {
        let doc = "a: 10\nb: \"10\"\nc: true\nd: 'true'\ne: null\nf: v1\ng: -1\n";
        assert_eq!(
            read(doc),
            Some(json!({"a": 10, "b": "10", "c": true, "d": "true", "e": null, "f": "v1", "g": -1}))
        );
    }

    /// What this reader does not read, it declines rather than misreads.
    #[test]
    fn yaml_beyond_the_subset_is_declined() {
        for doc in [
            "a: |\n  block\n",
            "a: >-\n  folded\n",
            "a: &anchor 1\nb: *anchor\n",
            "a: !!str 1\n",
            "a: [1, 2]\n",
            "a: {b: 1}\n",
            "a: plain\n  continued\n",
            "a: \"open\n  quote\"\n",
            "a: 1\na: 2\n",
            "a: 1.5\n",
            "a: 0x1F\n",
            "a: 010\n",
            "a: .inf\n",
            "a: \"\\u00e9\"\n",
            "a:\n\tb: 1\n",
            "a: 1\n  b: 2\n",
            "? complex\n: key\n",
            "1: numeric key\n",
            "just a scalar\n",
            "a: -\n",
        ] {
            assert_eq!(read(doc), None, "{doc}");
        }
    }
}
