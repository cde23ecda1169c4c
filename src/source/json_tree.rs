//! A JSON document as a tree, except the members a reader names, which stay text. Publishers
//! may declare far more codes than their data use (an SDMX-JSON structure's `values`, a
//! JSON-stat dimension's `category.index` and `label`), and a tree of each costs ten times its
//! text or more: kept as one slice of the document, such a member costs 16 bytes until a reader
//! parses the part the data use.

use std::cell::RefCell;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// Which members stay text.
pub struct Keep {
    /// For a member `key` of the object that is the value of member `parent` ("" at the top
    /// and in arrays): the key under which its object notes the member's index in the table.
    /// Keys starting with NUL are reserved for these: the parsed document has no others.
    pub hidden: fn(parent: &str, key: &str) -> Option<&'static str>,
    /// The first characters of the values that stay text (`[` for arrays); other values of
    /// such a member are parsed as usual.
    pub opens: &'static [char],
}

/// The magic key serde_json's `arbitrary_precision` numbers arrive under.
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// Parses `text` into a tree, keeping the members `keep` names as slices of `text` in the
/// returned table (the last of a repeated member winning, as in a parsed `Map`).
pub fn parse<'a>(
    text: &'a str,
    keep: &Keep,
) -> Result<(Value, Vec<&'a RawValue>), serde_json::Error> {
    let table = RefCell::new(Vec::new());
    let mut de = serde_json::Deserializer::from_str(text);
    let doc = Tree {
        table: &table,
        keep,
        parent: "",
    }
    .deserialize(&mut de)?;
    de.end()?;
    Ok((doc, table.into_inner()))
}

#[derive(Clone, Copy)]
struct Tree<'t, 'a, 'p> {
    table: &'t RefCell<Vec<&'a RawValue>>,
    keep: &'t Keep,
    /// The key of the member whose value this is.
    parent: &'p str,
}

impl<'a> DeserializeSeed<'a> for Tree<'_, 'a, '_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'a>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'a> Visitor<'a> for Tree<'_, 'a, '_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_string()))
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'a>>(self, mut seq: A) -> Result<Value, A::Error> {
        let child = Tree { parent: "", ..self };
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(child)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'a>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if key == NUMBER_TOKEN {
                let n: String = map.next_value()?;
                return n
                    .parse()
                    .map(Value::Number)
                    .map_err(serde::de::Error::custom);
            }
            if key.starts_with('\0') {
                map.next_value::<IgnoredAny>()?;
            } else if let Some(hidden) = (self.keep.hidden)(self.parent, &key) {
                let raw: &'a RawValue = map.next_value()?;
                if raw.get().starts_with(self.keep.opens) {
                    let mut table = self.table.borrow_mut();
                    out.insert(hidden.into(), Value::from(table.len()));
                    table.push(raw);
                    out.remove(&key);
                } else {
                    let v = serde_json::from_str(raw.get()).map_err(serde::de::Error::custom)?;
                    out.remove(hidden);
                    out.insert(key, v);
                }
            } else {
                let v = map.next_value_seed(Tree {
                    parent: &key,
                    ..self
                })?;
                out.insert(key, v);
            }
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEEP: Keep = Keep {
        hidden: |parent, key| (parent == "category" && key == "index").then_some("\0index"),
        opens: &['{', '['],
    };

    #[test]
    fn named_members_stay_text_and_the_rest_is_a_tree() {
        let text = r#"{"category": {"index": {"b": 1, "a": 0}, "label": {"a": "A"}},
                       "index": [1, 2], "other": {"category": {"index": 7}}, "\u0000x": 1}"#;
        let (doc, table) = parse(text, &KEEP).unwrap();
        assert_eq!(table.len(), 1);
        assert_eq!(table[0].get(), r#"{"b": 1, "a": 0}"#);
        assert_eq!(doc["category"]["\0index"], 0);
        assert_eq!(doc["category"]["label"]["a"], "A");
        // Not under `category`: parsed.
        assert_eq!(doc["index"], serde_json::json!([1, 2]));
        // Under `category` but not an object or array: parsed.
        assert_eq!(doc["other"]["category"]["index"], 7);
        assert!(doc.get("\0x").is_none(), "reserved keys are dropped");
    }

    #[test]
    fn the_last_of_a_repeated_member_wins() {
        let (doc, table) = parse(r#"{"category": {"index": [0], "index": 5}}"#, &KEEP).unwrap();
        assert_eq!(table.len(), 1);
        assert_eq!(doc["category"]["index"], 5);
        assert!(doc["category"].get("\0index").is_none());
        let (doc, table) = parse(r#"{"category": {"index": 5, "index": [0]}}"#, &KEEP).unwrap();
        assert_eq!(doc["category"]["\0index"], 0);
        assert_eq!(table[0].get(), "[0]");
        assert!(doc["category"].get("index").is_none());
    }
}
