//! One-line scalars, mapping keys and flow collections.

use super::{Depth, Node, insert};
use std::borrow::Cow;

/// `key: rest` (rest may be empty) for a mapping entry line.
pub(super) fn split_key(text: &str) -> Option<(Cow<'_, str>, &str)> {
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
const INDICATORS: [char; 14] = ['&', '*', '!', '|', '>', '%', '@', '`', '[', ']', '{', '}', '?', ','];

/// Whether a plain key would resolve to something other than a string.
fn resolves(key: &str) -> bool {
    let may_resolve =
        |c: char| matches!(c, '0'..='9' | '-' | '+' | '.' | '~' | 'n' | 'N' | 't' | 'T' | 'f' | 'F');
    key.starts_with(may_resolve) && !matches!(plain(key), Some(Node::Str(_) | Node::Yaml11(_)))
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

/// A scalar or flow collection that takes the rest of document line `line`.
pub(super) fn scalar<'a>(text: &'a str, depth: &mut Depth, line: usize) -> Option<Node<'a>> {
    match text.chars().next()? {
        quote @ ('"' | '\'') => {
            let (value, rest) = quoted(text, quote)?;
            let rest = rest.trim_start_matches(' ');
            (rest.is_empty() || rest.starts_with('#')).then_some(Node::Str(value))
        }
        '[' | '{' => {
            let mut cursor = Flow { rest: text, depth, line };
            let value = cursor.node()?;
            let rest = cursor.rest.trim_start_matches(' ');
            (rest.is_empty() || rest.starts_with('#')).then_some(value)
        }
        _ => plain(strip_comment(text)),
    }
}

/// A one-line flow collection (`[a, b]`, `{app: web}`), nested or not, of plain and quoted
/// scalars.
struct Flow<'a, 'd> {
    rest: &'a str,
    depth: &'d mut Depth,
    line: usize,
}

impl<'a> Flow<'a, '_> {
    fn skip_spaces(&mut self) {
        self.rest = self.rest.trim_start_matches(' ');
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_spaces();
        self.rest.strip_prefix(c).map(|rest| self.rest = rest).is_some()
    }

    fn node(&mut self) -> Option<Node<'a>> {
        self.skip_spaces();
        if !self.rest.starts_with(['[', '{']) {
            return self.scalar();
        }
        self.depth.enter(self.line)?;
        let node = self.collection();
        self.depth.leave();
        node
    }

    fn collection(&mut self) -> Option<Node<'a>> {
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
            None
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
    let string = |text| match yaml11(text) {
        Some(_) => Node::Yaml11(text),
        None => Node::Str(Cow::Borrowed(text)),
    };
    let value = match text {
        "~" | "null" | "Null" | "NULL" => Node::Null,
        "true" | "True" | "TRUE" => Node::Bool(true),
        "false" | "False" | "FALSE" => Node::Bool(false),
        _ if text.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '-' | '+' | '.')) => {
            let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
            let leading_zero = unsigned.len() > 1 && unsigned.starts_with('0');
            match text.parse::<i64>() {
                // `010` is a string to YAML 1.2, and so to serde_yaml, but octal to YAML 1.1.
                Ok(_) if leading_zero => Node::Yaml11(text),
                Ok(int) => Node::Int(int),
                // Floats, `.inf`, `0x1F`, `0o17` and `0b101` resolve to numbers in ways not worth
                // repeating here.
                Err(_) if text.parse::<f64>().is_ok() || leading_zero || unsigned.starts_with('.') => {
                    return None;
                }
                Err(_) => string(text),
            }
        }
        _ => string(text),
    };
    Some(value)
}

/// What YAML 1.1 makes of a plain scalar that YAML 1.2 reads as a string, where it is not one.
/// kubectl reads manifests by YAML 1.1 (`sigs.k8s.io/yaml` over go-yaml v2, `resolve.go`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Yaml11 {
    Bool(bool),
    Number,
}

/// go-yaml v2's reading of `text` where YAML 1.2's core schema reads a string: the booleans it
/// adds (`y`, `yes`, `on`, `n`, `no`, `off` in three cases), and numbers once underscores are
/// dropped (Go integers with a `0x`, `0o`, `0b` or octal `0` prefix, and floats).
pub fn yaml11(text: &str) -> Option<Yaml11> {
    match text {
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => return Some(Yaml11::Bool(true)),
        "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => return Some(Yaml11::Bool(false)),
        _ => {}
    }
    if !text.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '-' | '+')) {
        return None;
    }
    let unsigned: String =
        text.strip_prefix(['-', '+']).unwrap_or(text).chars().filter(|c| *c != '_').collect();
    let prefixed = |prefixes: [&str; 2], radix: u32| {
        prefixes
            .iter()
            .find_map(|prefix| unsigned.strip_prefix(prefix))
            .is_some_and(|digits| !digits.is_empty() && digits.chars().all(|c| c.is_digit(radix)))
    };
    let number = prefixed(["0x", "0X"], 16)
        || prefixed(["0o", "0O"], 8)
        || prefixed(["0b", "0B"], 2)
        || yaml_float(&unsigned);
    number.then_some(Yaml11::Number)
}

/// go-yaml v2's float syntax without the sign, which covers decimal integers too:
/// `(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`.
fn yaml_float(text: &str) -> bool {
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], Some(&text[at + 1..])),
        None => (text, None),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    let mantissa_ok = match mantissa.split_once('.') {
        Some((int, fraction)) => digits(int) && digits(fraction) && (!int.is_empty() || !fraction.is_empty()),
        None => !mantissa.is_empty() && digits(mantissa),
    };
    exponent_ok && mantissa_ok
}
