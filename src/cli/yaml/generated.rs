//! A property test over the fast reader's grammar: documents built at random from its
//! constructs, and from near misses of them, read as `serde_yaml` reads them, or are declined.

use super::{Declined, read};
use fastrand::Rng;
use serde::Deserialize;
use serde_yaml::Value;

/// Scalars the reader resolves.
const SCALARS: &[&str] = &[
    "web",
    "v1",
    "true",
    "FALSE",
    "~",
    "null",
    "10",
    "-1",
    "0",
    "15m",
    "20Gi",
    "6.8-apache",
    "-web",
    "http://x.example.com/a#b",
    "a:b",
    "x,y",
    "'it''s'",
    "'x # y'",
    "''",
    "\"\"",
    "\"esc \\\" \\\\ \\n \\t\"",
    "café",
];

/// Scalars it must decline, or resolve exactly as the full parser does.
const ODD_SCALARS: &[&str] = &[
    "True",
    "yes",
    "Null",
    "+3",
    "010",
    "1.5",
    "-.5",
    "1e3",
    "0x1F",
    "0o17",
    ".inf",
    "1_000",
    "a #b",
    "a: b",
    "-",
    "- x",
    "?x",
    "&a",
    "*a",
    "!t",
    "|",
    ">-",
    "@x",
    "%x",
    "\"\\u00e9\"",
    "\"\\x41\"",
    "'open",
    "\"open",
    "[",
    "]",
    "{",
    "}",
    ",x",
    "#x",
];

/// Plain and quoted mapping keys.
const KEYS: &[&str] =
    &["a", "b", "name", "app.kubernetes.io/name", "\"a\"", "'b'", "\"q: x\"", "'it''s'", "a b", "a-"];

/// Keys that resolve to non-strings or are not keys the reader takes.
const ODD_KEYS: &[&str] = &["1", "true", "~", "-a", ".a", "a#b", "?a", "&a", "-", "\"\"", "[a]", ",a"];

/// Characters a mutation inserts: the ones the reader's decisions hinge on.
const NOISE: &[char] =
    &[':', '-', '#', '[', ']', '{', '}', ',', '\'', '"', '\t', ' ', '&', '*', '!', '|', '>', '?', '\n'];

struct Generator {
    rng: Rng,
}

impl Generator {
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.rng.usize(..from.len())]
    }

    /// Mostly a common value, one time in eight an odd one.
    fn pick_mostly<'a>(&mut self, common: &[&'a str], odd: &[&'a str]) -> &'a str {
        if self.rng.u8(..8) == 0 { self.pick(odd) } else { self.pick(common) }
    }

    fn scalar(&mut self) -> &'static str {
        self.pick_mostly(SCALARS, ODD_SCALARS)
    }

    fn key(&mut self) -> &'static str {
        self.pick_mostly(KEYS, ODD_KEYS)
    }

    fn spaces(&mut self) -> &'static str {
        ["", " ", "  "][self.rng.usize(..3)]
    }

    fn comment(&mut self) -> &'static str {
        if self.rng.u8(..8) == 0 { " # note" } else { "" }
    }

    /// A flow collection or scalar, nesting at most `depth` more levels.
    fn flow(&mut self, depth: usize) -> String {
        if depth == 0 || self.rng.u8(..3) == 0 {
            return self.scalar().to_string();
        }
        let (open, close) = if self.rng.bool() { ('[', ']') } else { ('{', '}') };
        let items: Vec<String> = (0..self.rng.usize(..4))
            .map(|_| match open {
                '[' => self.flow(depth - 1),
                _ => format!("{}: {}", self.key(), self.flow(depth - 1)),
            })
            .collect();
        let (inner, trailing) = (self.spaces(), if self.rng.u8(..6) == 0 { "," } else { "" });
        format!("{open}{inner}{}{trailing}{inner}{close}", items.join(&format!(",{}", self.spaces())))
    }

    /// What follows `key:` or `-` on its line (with the lines after it): a scalar or flow
    /// collection, or a nested block indented past `indent` (or, under a key, a sequence at it).
    fn value(&mut self, indent: usize, depth: usize, under_key: bool) -> String {
        match self.rng.u8(..4) {
            0 | 1 if depth > 0 => {
                let nested = indent + self.rng.usize(1..4);
                let aligned = under_key && self.rng.bool();
                let block = match aligned {
                    true => self.sequence(indent, depth - 1),
                    false => self.block(nested, depth - 1),
                };
                format!("{}\n{block}", self.comment())
            }
            0 | 1 => "\n".to_string(),
            2 => format!(" {}{}\n", self.flow(depth), self.comment()),
            _ => format!(" {}{}\n", self.scalar(), self.comment()),
        }
    }

    fn block(&mut self, indent: usize, depth: usize) -> String {
        if self.rng.bool() { self.mapping(indent, depth) } else { self.sequence(indent, depth) }
    }

    fn mapping(&mut self, indent: usize, depth: usize) -> String {
        let pad = " ".repeat(indent);
        let mut text = String::new();
        for _ in 0..self.rng.usize(1..4) {
            let key = self.key();
            text.push_str(&format!("{pad}{key}:{}", self.value(indent, depth, true)));
            if self.rng.u8(..10) == 0 {
                text.push_str(&format!("{}# a comment line\n\n", " ".repeat(self.rng.usize(..indent + 2))));
            }
        }
        text
    }

    fn sequence(&mut self, indent: usize, depth: usize) -> String {
        let pad = " ".repeat(indent);
        let mut text = String::new();
        for _ in 0..self.rng.usize(1..4) {
            // A nested block may start on the item's own line: `- key: v` or `- - x`.
            if depth > 0 && self.rng.u8(..3) == 0 {
                let gap = self.rng.usize(1..3);
                let block = self.block(indent + 1 + gap, depth - 1);
                text.push_str(&format!("{pad}-{}{}", " ".repeat(gap), block.trim_start_matches(' ')));
            } else {
                text.push_str(&format!("{pad}-{}", self.value(indent, depth, false)));
            }
        }
        text
    }

    /// `doc` with one character inserted, deleted or a line's indentation changed.
    fn mutate(&mut self, doc: &str) -> String {
        let boundaries: Vec<usize> = doc.char_indices().map(|(i, _)| i).chain([doc.len()]).collect();
        let at = boundaries[self.rng.usize(..boundaries.len())];
        let mut mutated = doc.to_string();
        match self.rng.u8(..3) {
            0 => mutated.insert(at, NOISE[self.rng.usize(..NOISE.len())]),
            1 if at < doc.len() => drop(mutated.remove(at)),
            _ => {
                let line_start = doc[..at].rfind('\n').map_or(0, |i| i + 1);
                mutated.insert(line_start, ' ');
            }
        }
        mutated
    }
}

#[test]
fn generated_documents_read_as_serde_yaml_reads_them_or_are_declined() {
    let mut generator = Generator { rng: Rng::with_seed(13) };
    let (mut read_here, mut declined) = (0, 0);
    for case in 0..20_000 {
        let (indent, depth) = (generator.rng.usize(..2), generator.rng.usize(..5));
        let mut doc = generator.block(indent, depth);
        if case % 3 == 0 {
            doc = generator.mutate(&doc);
        }
        let full = serde_yaml::from_str::<Value>(&doc);
        match read(&doc) {
            Ok(node) => {
                let fast = Value::deserialize(node).expect("a node deserialises");
                assert_eq!(full.as_ref().ok(), Some(&fast), "case {case}:\n{doc}");
                read_here += 1;
            }
            Err(Declined::TooDeep { .. }) => panic!("case {case} nests only {depth} deep:\n{doc}"),
            Err(Declined::Beyond) => declined += 1,
        }
    }
    // Both sides of the grammar's edge are exercised.
    assert!(read_here > 5_000 && declined > 3_000, "{read_here} read, {declined} declined");
}
