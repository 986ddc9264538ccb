//! Deserialising typed objects straight from a [`Node`].
//!
//! The values of a map (a `deserialize_map`, as opposed to a struct's fields) must be strings
//! where strings are expected: labels, annotations and StorageClass parameters are
//! `map[string]string`, kubectl sends a YAML boolean or number there as a JSON one, and the
//! apiserver refuses it. serde_yaml would read `true` as the string "true"; this reader says so.

use super::Node;
use super::scalar::{Yaml11, yaml11};
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// Why a node did not deserialise.
#[derive(Debug)]
pub enum Error {
    /// A shape this reader leaves to serde_yaml, whose message then names the cause.
    Declined(String),
    NotAString(NotAString),
}

impl Error {
    /// The error as seen from the collection holding the value at `step`.
    fn within(self, step: impl FnOnce() -> String) -> Error {
        match self {
            Error::NotAString(mut error) => {
                error.path.insert(0, step());
                Error::NotAString(error)
            }
            declined => declined,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Declined(message) => f.write_str(message),
            Error::NotAString(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(message: T) -> Self {
        Error::Declined(message.to_string())
    }
}

/// A value of a map of strings that is not a string to kubectl.
#[derive(Clone, Debug, PartialEq)]
pub struct NotAString {
    /// Keys (and `[index]`es) from the document's root to the value.
    path: Vec<String>,
    found: Found,
}

#[derive(Clone, Debug, PartialEq)]
enum Found {
    Bool(bool),
    Number(String),
    /// A plain scalar that YAML 1.2 reads as a string and YAML 1.1, kubectl's
    /// (`sigs.k8s.io/yaml` over go-yaml v2), does not.
    Yaml11(String, Yaml11),
}

impl fmt::Display for NotAString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut path = String::new();
        for step in &self.path {
            if !path.is_empty() && !step.starts_with('[') {
                path.push('.');
            }
            path.push_str(step);
        }
        let key = self.path.iter().rev().find(|step| !step.starts_with('[')).map_or("", String::as_str);
        let (found, text) = match &self.found {
            Found::Bool(value) => (format!("the boolean {value}"), value.to_string()),
            Found::Number(number) => (format!("the number {number}"), number.clone()),
            Found::Yaml11(text, Yaml11::Bool(value)) => {
                (format!("{text}, which kubectl reads as the boolean {value}"), text.clone())
            }
            Found::Yaml11(text, Yaml11::Number) => {
                (format!("{text}, which kubectl reads as a number"), text.clone())
            }
        };
        write!(f, "{path}: expected a string, found {found}; quote it: {key}: \"{text}\"")
    }
}

impl<'de> de::Deserializer<'de> for Node<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Node::Null => visitor.visit_unit(),
            Node::Bool(b) => visitor.visit_bool(b),
            Node::Int(i) => visitor.visit_i64(i),
            Node::Float(f) => visitor.visit_f64(f),
            Node::Str(Cow::Borrowed(s)) | Node::Yaml11(s) => visitor.visit_borrowed_str(s),
            Node::Str(Cow::Owned(s)) => visitor.visit_string(s),
            Node::Seq(items) => visitor.visit_seq(Items { items: items.into_iter(), index: 0 }),
            Node::Map(entries) => visitor.visit_map(Entries::new(entries, false)),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Node::Map(entries) => visitor.visit_map(Entries::new(entries, true)),
            node => node.deserialize_any(visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Node::Null => visitor.visit_none(),
            node => visitor.visit_some(node),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    /// Unit variants, written as strings; other shapes are left to the full parser.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self {
            Node::Str(variant) => visitor.visit_enum(de::value::CowStrDeserializer::new(variant)),
            Node::Yaml11(variant) => visitor.visit_enum(de::value::BorrowedStrDeserializer::new(variant)),
            _ => Err(de::Error::custom("only unit variants are read here")),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf unit
        unit_struct seq tuple tuple_struct struct identifier ignored_any
    }
}

/// The entries of a mapping. Those of a map, not a struct, hold their string values to being
/// strings.
struct Entries<'de> {
    entries: std::vec::IntoIter<(Cow<'de, str>, Node<'de>)>,
    /// The entry whose key was just read.
    pending: Option<(Cow<'de, str>, Node<'de>)>,
    strings: bool,
}

impl<'de> Entries<'de> {
    fn new(entries: Vec<(Cow<'de, str>, Node<'de>)>, strings: bool) -> Self {
        Entries { entries: entries.into_iter(), pending: None, strings }
    }
}

impl<'de> MapAccess<'de> for Entries<'de> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Error> {
        let Some((key, value)) = self.entries.next() else { return Ok(None) };
        let read = seed.deserialize(Node::Str(key.clone()))?;
        self.pending = Some((key, value));
        Ok(Some(read))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let (key, value) = self
            .pending
            .take()
            .ok_or_else(|| Error::Declined("a map value asked for before its key".into()))?;
        let read = match self.strings {
            true => seed.deserialize(MapValue(value)),
            false => seed.deserialize(value),
        };
        read.map_err(|error| error.within(|| key.into_owned()))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

struct Items<'de> {
    items: std::vec::IntoIter<Node<'de>>,
    index: usize,
}

impl<'de> SeqAccess<'de> for Items<'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Error> {
        let Some(item) = self.items.next() else { return Ok(None) };
        let index = self.index;
        self.index += 1;
        seed.deserialize(item).map(Some).map_err(|error| error.within(|| format!("[{index}]")))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// A value of a map: where a string is expected, it is one.
struct MapValue<'de>(Node<'de>);

impl<'de> de::Deserializer<'de> for MapValue<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.0.deserialize_any(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_string(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let found = match self.0 {
            // kubectl sends a null, which the apiserver stores as an empty string.
            Node::Null => return visitor.visit_borrowed_str(""),
            Node::Bool(value) => Found::Bool(value),
            Node::Int(number) => Found::Number(number.to_string()),
            Node::Float(number) => Found::Number(number.to_string()),
            Node::Yaml11(text) => match yaml11(text) {
                Some(reading) => Found::Yaml11(text.to_string(), reading),
                None => return visitor.visit_borrowed_str(text),
            },
            node => return node.deserialize_any(visitor),
        };
        Err(Error::NotAString(NotAString { path: Vec::new(), found }))
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.0.deserialize_map(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.0.deserialize_option(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.0.deserialize_newtype_struct(name, visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.0.deserialize_enum(name, variants, visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char bytes byte_buf unit unit_struct seq
        tuple tuple_struct struct identifier ignored_any
    }
}
