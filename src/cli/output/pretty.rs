//! Pretty-printed JSON written a part at a time, byte for byte as `serde_json::to_writer_pretty`
//! writes the whole document, so that the long array of a report can be rendered on every core.

use super::pieces::OBJECTS_PER_PIECE;
use crate::cli::parallel::write_on_every_core;
use serde::Serialize;
use serde_json::ser::{Formatter, PrettyFormatter, Serializer};
use std::io::{self, Write};

/// What serde_json indents each level with.
const INDENT: &[u8] = b"  ";

/// serde_json's pretty formatter as it stands `depth` levels into a document.
fn formatter_at(depth: usize) -> PrettyFormatter<'static> {
    let mut formatter = PrettyFormatter::with_indent(INDENT);
    for _ in 0..depth {
        // Opening an array is how the formatter goes a level deeper; a sink takes the bracket.
        // The tests here and in `sarif` hold the result to serde_json's whole-document output.
        let _ = formatter.begin_array(&mut io::sink());
    }
    formatter
}

/// Writes `value` as it stands `depth` levels into a document.
pub(super) fn write_value(value: &impl Serialize, depth: usize, out: &mut dyn Write) -> io::Result<()> {
    value.serialize(&mut Serializer::with_formatter(out, formatter_at(depth))).map_err(io::Error::from)
}

/// Starts the next entry of an object or array `depth` levels into a document: after a comma
/// unless it is the first, on a line of its own, indented one level deeper.
fn begin_entry(first: bool, depth: usize, out: &mut dyn Write) -> io::Result<()> {
    out.write_all(if first { b"\n" } else { b",\n" })?;
    out.write_all(&INDENT.repeat(depth + 1))
}

/// Writes `"key": ` for the next field of an object `depth` levels into a document; its value
/// goes `depth + 1` levels in.
pub(super) fn write_key(key: &str, first: bool, depth: usize, out: &mut dyn Write) -> io::Result<()> {
    begin_entry(first, depth, out)?;
    write_value(&key, depth + 1, out)?;
    out.write_all(b": ")
}

/// Writes the array of `items` as `to_json` makes each, `depth` levels into a document, its
/// items rendered on every core.
pub(super) fn write_array<T: Sync, J: Serialize>(
    items: &[T],
    depth: usize,
    to_json: impl Fn(&T) -> J + Sync,
    out: &mut dyn Write,
) -> io::Result<()> {
    if items.is_empty() {
        return out.write_all(b"[]");
    }
    out.write_all(b"[")?;
    let pieces: Vec<(usize, &[T])> = items.chunks(OBJECTS_PER_PIECE).enumerate().collect();
    write_on_every_core(&pieces, out, |&(index, piece), buffer| {
        for (position, item) in piece.iter().enumerate() {
            begin_entry(index == 0 && position == 0, depth, buffer)?;
            write_value(&to_json(item), depth + 1, buffer)?;
        }
        Ok(())
    })?;
    out.write_all(b"\n")?;
    out.write_all(&INDENT.repeat(depth))?;
    out.write_all(b"]")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// `document` written field by field, its `items` array by [`write_array`].
    fn written_in_parts(document: &Value) -> String {
        let mut out = Vec::new();
        out.extend_from_slice(b"{");
        let fields = document.as_object().expect("an object");
        for (position, (key, value)) in fields.iter().enumerate() {
            write_key(key, position == 0, 0, &mut out).unwrap();
            match value.as_array() {
                Some(items) if key == "items" => write_array(items, 1, Value::clone, &mut out).unwrap(),
                _ => write_value(value, 1, &mut out).unwrap(),
            }
        }
        out.extend_from_slice(b"\n}");
        String::from_utf8(out).expect("UTF-8")
    }

    #[test]
    fn a_document_written_in_parts_is_the_one_serde_json_writes_whole() {
        let item =
            |n: usize| json!({"n": n, "text": "line\none \"quoted\"", "nested": {"list": [n, [], {}]}});
        for count in [0, 1, OBJECTS_PER_PIECE, 3 * OBJECTS_PER_PIECE + 5] {
            let document = json!({
                "before": {"a": [1, 2], "b": {}},
                "items": (0..count).map(item).collect::<Vec<_>>(),
                "summary": {"count": count, "empty": []},
            });
            let whole = serde_json::to_string_pretty(&document).unwrap();
            assert_eq!(written_in_parts(&document), whole, "{count} items");
        }
    }
}
