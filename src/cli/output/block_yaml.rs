//! Block-style YAML written by serde_json's serializer: fast enough for reports of hundreds of
//! megabytes, and streamed, where serde_yaml builds each document whole and emits it slowly.
//!
//! Every string is double-quoted with JSON's escapes, which are YAML's too; keys are plain when
//! they can be. Numbers, booleans and null are written as JSON writes them.

use serde::Serialize;
use serde_json::ser::{CharEscape, Formatter};
use std::io::{self, Write};

/// Writes `value` as one block-style YAML document (no `---`, no final newline).
pub fn to_writer<W: Write + ?Sized, T: Serialize + ?Sized>(out: &mut W, value: &T) -> io::Result<()> {
    let mut serializer = serde_json::Serializer::with_formatter(out, BlockYaml::default());
    value.serialize(&mut serializer).map_err(io::Error::other)
}

/// Writes the items of `sequence` as entries of the block sequence that is the value of a key
/// at column `key_indent`, written before; nothing when it has none. Written one after another,
/// the entries of several sequences read as one sequence.
pub fn entries_to_writer<W: Write + ?Sized, T: Serialize + ?Sized>(
    out: &mut W,
    key_indent: usize,
    sequence: &T,
) -> io::Result<()> {
    let parent = Block { indent: key_indent, empty: false, inline: false };
    let formatter =
        BlockYaml { blocks: vec![parent], after: After::Key, entries_only: true, ..BlockYaml::default() };
    let mut serializer = serde_json::Serializer::with_formatter(out, formatter);
    sequence.serialize(&mut serializer).map_err(io::Error::other)
}

/// An open mapping or sequence: the column of its entries, whether it has had one, and whether
/// its first entry goes on the line of the `- ` that holds it.
struct Block {
    indent: usize,
    empty: bool,
    inline: bool,
}

/// What was written just before the next value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum After {
    Start,
    Key,
    Dash,
    Value,
}

struct BlockYaml {
    blocks: Vec<Block>,
    after: After,
    /// The key being written, JSON-escaped, and whether it may be written plain; `None` outside
    /// a key.
    key: Option<bool>,
    /// The bytes of the key being written, kept for the next key.
    key_bytes: Vec<u8>,
    /// Only the entries of the outermost sequence are written (see [`entries_to_writer`]).
    entries_only: bool,
}

impl Default for BlockYaml {
    fn default() -> Self {
        BlockYaml {
            blocks: Vec::new(),
            after: After::Start,
            key: None,
            key_bytes: Vec::new(),
            entries_only: false,
        }
    }
}

/// Spaces an indentation is cut from.
const SPACES: &[u8; 64] = &[b' '; 64];

impl BlockYaml {
    fn open(&mut self) {
        let indent = match (self.after, self.blocks.last()) {
            (After::Key | After::Dash, Some(parent)) => parent.indent + 2,
            _ => 0,
        };
        let inline = self.after == After::Dash;
        self.blocks.push(Block { indent, empty: true, inline });
    }

    /// Starts the next entry of the innermost block on a line of its own, unless it is the
    /// first of a document or of a `- ` item.
    fn entry<W: ?Sized + Write>(&mut self, out: &mut W) -> io::Result<()> {
        let at_start = self.blocks.len() == 1 && self.after == After::Start;
        let block = self.blocks.last_mut().expect("an entry is inside a block");
        let first = std::mem::replace(&mut block.empty, false);
        if !(first && (block.inline || at_start)) {
            out.write_all(b"\n")?;
            let mut indent = block.indent;
            while indent > 0 {
                let spaces = indent.min(SPACES.len());
                out.write_all(&SPACES[..spaces])?;
                indent -= spaces;
            }
        }
        Ok(())
    }

    /// Closes the innermost block; an empty one is written in flow style.
    fn close<W: ?Sized + Write>(&mut self, out: &mut W, empty: &[u8]) -> io::Result<()> {
        let block = self.blocks.pop().expect("a block to close");
        let outermost = self.blocks.len() == 1;
        if block.empty && !(self.entries_only && outermost) {
            self.scalar(out)?;
            out.write_all(empty)?;
        }
        self.after = After::Value;
        Ok(())
    }

    /// Separates a scalar from the key before it.
    fn scalar<W: ?Sized + Write>(&mut self, out: &mut W) -> io::Result<()> {
        if self.after == After::Key {
            out.write_all(b" ")?;
        }
        self.after = After::Value;
        Ok(())
    }
}

/// A key YAML reads as the same string without quotes.
fn plain_key_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'/' | b'-' | b'_')
}

/// Plain scalars YAML 1.1 or 1.2 reads as booleans or null.
fn is_reserved_word(key: &[u8]) -> bool {
    const WORDS: [&str; 10] = ["true", "false", "yes", "no", "on", "off", "y", "n", "null", "~"];
    WORDS.iter().any(|word| key.eq_ignore_ascii_case(word.as_bytes()))
}

macro_rules! scalars {
    ($($method:ident: $type:ty),* $(,)?) => {
        $(
            fn $method<W: ?Sized + Write>(&mut self, out: &mut W, value: $type) -> io::Result<()> {
                // A key that is no string is written quoted, as JSON writes it.
                if let Some(plain) = &mut self.key {
                    *plain = false;
                    return serde_json::ser::CompactFormatter.$method(&mut self.key_bytes, value);
                }
                self.scalar(out)?;
                serde_json::ser::CompactFormatter.$method(out, value)
            }
        )*
    };
}

impl Formatter for BlockYaml {
    scalars!(
        write_bool: bool, write_i8: i8, write_i16: i16, write_i32: i32, write_i64: i64,
        write_i128: i128, write_u8: u8, write_u16: u16, write_u32: u32, write_u64: u64,
        write_u128: u128, write_f32: f32, write_f64: f64, write_number_str: &str,
    );

    fn write_null<W: ?Sized + Write>(&mut self, out: &mut W) -> io::Result<()> {
        self.scalar(out)?;
        out.write_all(b"null")
    }

    fn begin_string<W: ?Sized + Write>(&mut self, out: &mut W) -> io::Result<()> {
        if self.key.is_some() {
            return Ok(());
        }
        self.scalar(out)?;
        out.write_all(b"\"")
    }

    fn end_string<W: ?Sized + Write>(&mut self, out: &mut W) -> io::Result<()> {
        if self.key.is_some() { Ok(()) } else { out.write_all(b"\"") }
    }

    fn write_string_fragment<W: ?Sized + Write>(&mut self, out: &mut W, fragment: &str) -> io::Result<()> {
        match &mut self.key {
            Some(plain) => {
                *plain &= fragment.bytes().all(plain_key_byte);
                self.key_bytes.extend_from_slice(fragment.as_bytes());
                Ok(())
            }
            None => out.write_all(fragment.as_bytes()),
        }
    }

    fn write_char_escape<W: ?Sized + Write>(&mut self, out: &mut W, escape: CharEscape) -> io::Result<()> {
        match &mut self.key {
            Some(plain) => {
                *plain = false;
                serde_json::ser::CompactFormatter.write_char_escape(&mut self.key_bytes, escape)
            }
            None => serde_json::ser::CompactFormatter.write_char_escape(out, escape),
        }
    }

    fn begin_array<W: ?Sized + Write>(&mut self, _out: &mut W) -> io::Result<()> {
        self.open();
        Ok(())
    }

    fn end_array<W: ?Sized + Write>(&mut self, out: &mut W) -> io::Result<()> {
        self.close(out, b"[]")
    }

    fn begin_array_value<W: ?Sized + Write>(&mut self, out: &mut W, _first: bool) -> io::Result<()> {
        self.entry(out)?;
        out.write_all(b"- ")?;
        self.after = After::Dash;
        Ok(())
    }

    fn end_array_value<W: ?Sized + Write>(&mut self, _out: &mut W) -> io::Result<()> {
        Ok(())
    }

    fn begin_object<W: ?Sized + Write>(&mut self, _out: &mut W) -> io::Result<()> {
        self.open();
        Ok(())
    }

    fn end_object<W: ?Sized + Write>(&mut self, out: &mut W) -> io::Result<()> {
        self.close(out, b"{}")
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, out: &mut W, _first: bool) -> io::Result<()> {
        self.entry(out)?;
        self.key = Some(true);
        self.key_bytes.clear();
        Ok(())
    }

    fn end_object_key<W: ?Sized + Write>(&mut self, out: &mut W) -> io::Result<()> {
        let plain = self.key.take().expect("a key was begun");
        let key = &self.key_bytes;
        // An empty key, or one YAML would read as another type, is quoted.
        let plain = plain && key.first().is_some_and(u8::is_ascii_alphabetic) && !is_reserved_word(key);
        if plain {
            out.write_all(key)?;
        } else {
            out.write_all(b"\"")?;
            out.write_all(key)?;
            out.write_all(b"\"")?;
        }
        out.write_all(b":")?;
        self.after = After::Key;
        Ok(())
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, _out: &mut W) -> io::Result<()> {
        Ok(())
    }

    fn end_object_value<W: ?Sized + Write>(&mut self, _out: &mut W) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::to_writer;
    use serde_json::{Value, json};

    fn yaml(value: &Value) -> String {
        let mut out = Vec::new();
        to_writer(&mut out, value).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn round_trip(value: Value) {
        let text = yaml(&value);
        let read: Value = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{e}:\n{text}"));
        assert_eq!(read, value, "{text}");
    }

    #[test]
    fn reads_back_as_what_was_written() {
        round_trip(json!({
            "apiVersion": "openreports.io/v1alpha1",
            "metadata": {"name": "dpo-check", "labels": {"app.kubernetes.io/managed-by": "dpo"}},
            "summary": {"pass": 3, "fail": 0, "ratio": 0.5, "none": null, "scored": true},
            "results": [
                {"rule": "a", "resources": [{"kind": "Service"}, {"kind": "Ingress"}], "empty": {}},
                {"nested": [[1, 2], [], ["x"]], "list": []},
                "scalar item",
            ],
            "emptyMap": {},
            "emptyList": [],
        }));
    }

    #[test]
    fn strings_and_keys_keep_every_character() {
        round_trip(json!({
            "message": "line one\nline \"two\"\t\\ end: # not a comment",
            "yes": "yes",
            "number": "010",
            "unicode": "naïve ☃ \u{1F600} \u{7}",
            "": "empty key",
            "key: with colon": "- dash",
            "1st": "starts with a digit",
            "true": false,
            "Off": "off",
        }));
        round_trip(json!([]));
        round_trip(json!("top-level string"));
    }

    #[test]
    fn entries_written_apart_read_as_one_sequence() {
        let mut out = b"results:".to_vec();
        super::entries_to_writer(&mut out, 0, &json!([{"a": 1}, {"b": [2]}])).unwrap();
        super::entries_to_writer(&mut out, 0, &json!([])).unwrap();
        super::entries_to_writer(&mut out, 0, &json!(["c"])).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, yaml(&json!({"results": [{"a": 1}, {"b": [2]}, "c"]})));
    }

    #[test]
    fn blocks_are_indented_and_items_start_on_their_dash() {
        let text = yaml(&json!({"a": {"b": [{"c": 1, "d": [2]}]}}));
        assert_eq!(text, "a:\n  b:\n    - c: 1\n      d:\n        - 2");
    }
}
