//! YAML with positions: the web config as a tree whose every node knows its line and column,
//! and a serde `Deserializer` over that tree. serde types (with `deny_unknown_fields`) give the
//! shape; the tree gives every unknown key, duplicate key and wrong type its position, all in
//! one run, which a one-pass serde YAML reader cannot (it stops at the first error).

use std::cell::Cell;
use std::collections::BTreeMap;

use saphyr_parser::{Event, Parser, ScalarStyle};
use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess};
use serde::forward_to_deserialize_any;

/// A 1-based line and column (in characters).
pub type Pos = (usize, usize);

/// One YAML node and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: Kind,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Null,
    /// A scalar as written; `plain` (unquoted) scalars may be booleans or numbers.
    Scalar {
        text: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// The key and value of `key` in a mapping.
    pub fn entry(&self, key: &str) -> Option<(&Node, &Node)> {
        match &self.kind {
            Kind::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_key() == Some(key))
                .map(|(k, v)| (k, v)),
            _ => None,
        }
    }

    /// The position of the value of `key`, or of this node if the key is absent.
    pub fn pos_of(&self, key: &str) -> Pos {
        self.entry(key).map_or(self.pos, |(_, v)| v.pos)
    }

    /// The position of `key` itself, or of this node if the key is absent.
    pub fn key_pos(&self, key: &str) -> Pos {
        self.entry(key).map_or(self.pos, |(k, _)| k.pos)
    }

    /// The position of item `i` of the list under `key`, or of the list, or of this node.
    pub fn item_pos(&self, key: &str, i: usize) -> Pos {
        match self.entry(key) {
            Some((
                _,
                Node {
                    kind: Kind::Seq(items),
                    pos,
                },
            )) => items.get(i).map_or(*pos, |n| n.pos),
            Some((_, v)) => v.pos,
            None => self.pos,
        }
    }

    /// A scalar key's text (`~` and empty keys have none).
    pub fn as_key(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    fn what(&self) -> &'static str {
        match &self.kind {
            Kind::Null => "nothing",
            Kind::Scalar { .. } => "a scalar",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }
}

/// Parses the first document of `text`; `None` for an empty file (a valid, empty config).
/// A syntax error is one positioned message: YAML, like TOML, cannot go on after one.
pub fn parse(text: &str) -> Result<Option<Node>, (Pos, String)> {
    let mut parser = Parser::new_from_str(text);
    let mut anchors: BTreeMap<usize, Node> = BTreeMap::new();
    // Open collections: the node being built and, for a mapping, a key waiting for its value.
    let mut stack: Vec<(Node, Option<Node>)> = Vec::new();
    let mut anchor_ids: Vec<usize> = Vec::new();
    let mut root = None;
    while let Some(ev) = parser.next_event() {
        let (ev, span) = ev.map_err(|e| {
            let m = e.marker();
            ((m.line(), m.col() + 1), e.info().to_string())
        })?;
        let pos = (span.start.line(), span.start.col() + 1);
        let (done, anchor) = match ev {
            Event::DocumentEnd if root.is_some() || stack.is_empty() && anchors.is_empty() => {
                if root.is_some() {
                    break;
                }
                continue;
            }
            Event::StreamEnd => break,
            Event::Scalar(text, style, anchor, _) => {
                let plain = style == ScalarStyle::Plain;
                let kind = if plain && is_null(&text) {
                    Kind::Null
                } else {
                    Kind::Scalar {
                        text: text.into_owned(),
                        plain,
                    }
                };
                (Node { kind, pos }, anchor)
            }
            Event::Alias(id) => match anchors.get(&id) {
                Some(n) => (Node { pos, ..n.clone() }, 0),
                None => return Err((pos, "alias to an unknown anchor".into())),
            },
            Event::SequenceStart(anchor, _) => {
                stack.push((
                    Node {
                        kind: Kind::Seq(Vec::new()),
                        pos,
                    },
                    None,
                ));
                anchor_ids.push(anchor);
                continue;
            }
            Event::MappingStart(anchor, _) => {
                stack.push((
                    Node {
                        kind: Kind::Map(Vec::new()),
                        pos,
                    },
                    None,
                ));
                anchor_ids.push(anchor);
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, _) = stack.pop().expect("balanced collection events");
                (node, anchor_ids.pop().unwrap_or(0))
            }
            _ => continue,
        };
        if anchor > 0 {
            anchors.insert(anchor, done.clone());
        }
        match stack.last_mut() {
            None => {
                root = Some(done);
            }
            Some((parent, pending)) => match &mut parent.kind {
                Kind::Seq(items) => items.push(done),
                Kind::Map(entries) => match pending.take() {
                    None => *pending = Some(done),
                    Some(key) => entries.push((key, done)),
                },
                _ => unreachable!("only collections are pushed"),
            },
        }
    }
    Ok(root.filter(|r| r.kind != Kind::Null))
}

fn is_null(s: &str) -> bool {
    matches!(s, "" | "~" | "null" | "Null" | "NULL")
}

fn as_bool(s: &str) -> Option<bool> {
    match s {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

fn as_int(s: &str) -> Option<i64> {
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let v = if let Some(h) = digits.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()?
    } else if let Some(o) = digits.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()?
    } else if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse().ok()?
    } else {
        return None;
    };
    Some(if neg { -v } else { v })
}

/// The field names of a `deny_unknown_fields` struct, read from serde's own message about an
/// unknown field, so the list of keys is never written twice.
pub fn fields<T: DeserializeOwned>() -> Vec<String> {
    let probe = [("\u{0}", ())].into_iter();
    let map = de::value::MapDeserializer::<_, de::value::Error>::new(probe);
    let Err(e) = T::deserialize(map) else {
        return Vec::new();
    };
    let msg = e.to_string();
    let Some((_, expected)) = msg.split_once("expected") else {
        return Vec::new();
    };
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// Problems found while reading the tree: position and message.
pub type Problems = Vec<(Pos, String)>;

/// Reads `node` as `T`: first every unknown and duplicate key of the mapping (all of them),
/// then serde's first type error, with the position of the node it arose at. Unknown keys are
/// dropped before serde reads the rest, so they hide nothing else.
pub fn read<T: DeserializeOwned>(node: &Node, section: &str, problems: &mut Problems) -> Option<T> {
    let mut node = node.clone();
    if let Kind::Map(entries) = &mut node.kind {
        // No field names: T takes any key (a map), so only duplicates are problems.
        let known = fields::<T>();
        let known = (!known.is_empty()).then_some(known);
        check_keys(entries, section, known.as_deref(), problems);
    }
    deserialize(&node, section, problems)
}

/// Reports duplicate keys and, when `known` is given, unknown ones (which are dropped).
pub fn check_keys(
    entries: &mut Vec<(Node, Node)>,
    section: &str,
    known: Option<&[String]>,
    problems: &mut Problems,
) {
    let mut seen: BTreeMap<String, Pos> = BTreeMap::new();
    entries.retain(|(k, _)| {
        let Some(name) = k.as_key() else {
            problems.push((
                k.pos,
                format!("{} as a key in {section}, expected a name", k.what()),
            ));
            return false;
        };
        if let Some(known) = known {
            if !known.iter().any(|f| f == name) {
                problems.push((
                    k.pos,
                    format!(
                        "unknown key `{name}` in {section}, expected {}",
                        one_of(known)
                    ),
                ));
                return false;
            }
        }
        if let Some(first) = seen.get(name) {
            problems.push((
                k.pos,
                format!(
                    "duplicate key `{name}` in {section} (first at line {}), expected each key once",
                    first.0
                ),
            ));
            return false;
        }
        seen.insert(name.to_string(), k.pos);
        true
    });
}

/// `a`, `b` or `c`.
pub fn one_of(names: &[impl AsRef<str>]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{}`", n.as_ref())).collect();
    match quoted.split_last() {
        None => "nothing".into(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("one of {} or {last}", rest.join(", ")),
    }
}

fn deserialize<T: DeserializeOwned>(
    node: &Node,
    section: &str,
    problems: &mut Problems,
) -> Option<T> {
    let at = Cell::new(node.pos);
    match T::deserialize(NodeDe { node, at: &at }) {
        Ok(v) => Some(v),
        Err(e) => {
            problems.push((at.get(), format!("{e} in {section}")));
            None
        }
    }
}

/// A serde `Deserializer` over a [`Node`]; `at` follows the node being read, so an error
/// carries the position it arose at.
struct NodeDe<'a> {
    node: &'a Node,
    at: &'a Cell<Pos>,
}

type Error = de::value::Error;

impl<'de> de::Deserializer<'de> for NodeDe<'_> {
    type Error = Error;

    fn deserialize_any<V: de::Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.at.set(self.node.pos);
        match &self.node.kind {
            Kind::Null => v.visit_unit(),
            Kind::Scalar { text, plain: true } => {
                if let Some(b) = as_bool(text) {
                    v.visit_bool(b)
                } else if let Some(i) = as_int(text) {
                    v.visit_i64(i)
                } else {
                    v.visit_str(text)
                }
            }
            Kind::Scalar { text, .. } => v.visit_str(text),
            Kind::Seq(items) => v.visit_seq(Seq {
                items: items.iter(),
                at: self.at,
            }),
            Kind::Map(entries) => v.visit_map(Map {
                entries: entries.iter(),
                value: None,
                at: self.at,
            }),
        }
    }

    /// Any scalar reads as a string, as Go's YAML reader does (`port: 8080` into a string);
    /// nothing reads as the empty string, Go's zero value.
    fn deserialize_str<V: de::Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.at.set(self.node.pos);
        match &self.node.kind {
            Kind::Scalar { text, .. } => v.visit_str(text),
            Kind::Null => v.visit_str(""),
            _ => self.deserialize_any(v),
        }
    }

    fn deserialize_string<V: de::Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.deserialize_str(v)
    }

    fn deserialize_option<V: de::Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.at.set(self.node.pos);
        match &self.node.kind {
            Kind::Null => v.visit_none(),
            _ => v.visit_some(self),
        }
    }

    /// Nothing reads as an empty list, mapping or struct: Go's zero values.
    fn deserialize_seq<V: de::Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.at.set(self.node.pos);
        match &self.node.kind {
            Kind::Null => v.visit_seq(Seq {
                items: [].iter(),
                at: self.at,
            }),
            _ => self.deserialize_any(v),
        }
    }

    fn deserialize_map<V: de::Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.at.set(self.node.pos);
        match &self.node.kind {
            Kind::Null => v.visit_map(Map {
                entries: [].iter(),
                value: None,
                at: self.at,
            }),
            _ => self.deserialize_any(v),
        }
    }

    fn deserialize_struct<V: de::Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_map(v)
    }

    fn deserialize_newtype_struct<V: de::Visitor<'de>>(
        self,
        _: &'static str,
        v: V,
    ) -> Result<V::Value, Error> {
        v.visit_newtype_struct(self)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char bytes byte_buf unit
        unit_struct tuple tuple_struct enum identifier ignored_any
    }
}

struct Seq<'a> {
    items: std::slice::Iter<'a, Node>,
    at: &'a Cell<Pos>,
}

impl<'de> SeqAccess<'de> for Seq<'_> {
    type Error = Error;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        match self.items.next() {
            Some(node) => seed.deserialize(NodeDe { node, at: self.at }).map(Some),
            None => Ok(None),
        }
    }
}

struct Map<'a> {
    entries: std::slice::Iter<'a, (Node, Node)>,
    value: Option<&'a Node>,
    at: &'a Cell<Pos>,
}

impl<'de> MapAccess<'de> for Map<'_> {
    type Error = Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.entries.next() {
            Some((k, v)) => {
                self.value = Some(v);
                self.at.set(k.pos);
                // Keys are names: read them as text whatever they look like.
                let name = k.as_key().unwrap_or("");
                seed.deserialize(name.into_deserializer()).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let node = self.value.take().expect("a value follows its key");
        seed.deserialize(NodeDe { node, at: self.at })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, Default, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct T {
        name: String,
        on: Option<bool>,
        list: Vec<String>,
    }

    #[test]
    fn positions_are_one_based() {
        let root = parse("# c\na:\n  b: x\n").unwrap().unwrap();
        let (_, a) = root.entry("a").unwrap();
        assert_eq!(a.key_pos("b"), (3, 3));
        assert_eq!(a.pos_of("b"), (3, 6));
        assert_eq!(parse("").unwrap(), None);
        assert_eq!(parse("# only a comment\n").unwrap(), None);
        let (pos, msg) = parse("a: [x\n").unwrap_err();
        assert_eq!(pos.0, 2, "{msg}");
    }

    #[test]
    fn every_unknown_key_and_the_first_type_error_are_reported() {
        let root = parse("name: 8080\nnmae: x\non: yes\nlist: [a, 2]\nother: 1\nname: y\n")
            .unwrap()
            .unwrap();
        let mut p = Problems::new();
        let t: Option<T> = read(&root, "`t`", &mut p);
        assert_eq!(t, None);
        let text: Vec<String> = p.iter().map(|(pos, m)| format!("{pos:?} {m}")).collect();
        assert_eq!(
            text,
            [
                "(2, 1) unknown key `nmae` in `t`, expected one of `name`, `on` or `list`",
                "(5, 1) unknown key `other` in `t`, expected one of `name`, `on` or `list`",
                "(6, 1) duplicate key `name` in `t` (first at line 1), expected each key once",
                "(3, 5) invalid type: string \"yes\", expected a boolean in `t`",
            ]
        );
    }

    #[test]
    fn scalars_read_as_strings_and_nothing_as_zero_values() {
        let root = parse("name: 8080\non:\nlist: [a, 2, \"3\"]\n")
            .unwrap()
            .unwrap();
        let mut p = Problems::new();
        let t: T = read(&root, "t", &mut p).unwrap();
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(t.name, "8080");
        assert_eq!(t.on, None);
        assert_eq!(t.list, ["a", "2", "3"]);
    }

    #[test]
    fn anchors_and_aliases_resolve() {
        let root = parse("a: &x [1, 2]\nb: *x\n").unwrap().unwrap();
        let (_, b) = root.entry("b").unwrap();
        assert!(matches!(&b.kind, Kind::Seq(items) if items.len() == 2));
        assert_eq!(b.pos, (2, 4));
    }

    #[test]
    fn field_names_come_from_serde() {
        assert_eq!(fields::<T>(), ["name", "on", "list"]);
    }
}
