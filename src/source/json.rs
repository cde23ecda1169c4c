//! A JSON array of flat records, as many publishers' APIs answer (`[{"geo": "DE", "time":
//! "2024", "value": 1.5}, ...]`), possibly inside the document (`records = "data.observations"`).
//! Every record key is a dimension, in first-seen order; each record is one row.

use std::borrow::Cow;
use std::fmt;

use rustc_hash::FxHashMap;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use super::{json_syntax_error, strip_bom, Component, Origin, Role, Sink, ROW};

/// Options of the JSON records reader (`[input.json]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JsonOptions {
    /// Dotted path of object keys from the document to the array of records, e.g.
    /// `data.observations`; "" (the default) when the document itself is the array.
    pub records: String,
}

/// Reads a JSON array of records in `text` into `sink`.
pub fn read(text: &str, options: &JsonOptions, sink: &mut dyn Sink) {
    let text = strip_bom(text);
    if text.trim().is_empty() {
        return sink.error(
            Origin::File,
            "empty file, expected a JSON document".to_string(),
        );
    }
    let doc: Json = match serde_json::from_str(text) {
        Ok(doc) => doc,
        Err(e) => {
            let (origin, message) = json_syntax_error(text, &e);
            return sink.error(origin, message);
        }
    };
    let Some((records, path)) = find_records(&doc, options, sink) else {
        return;
    };
    let (index, components) = components(records);
    let records_at = Origin::Path(path.clone());
    if !sink.components(&components, &|_| records_at.clone()) {
        return;
    }
    let rows = Rows {
        path: &path,
        components: &components,
        index: &index,
        keys: components
            .iter()
            .map(|c| {
                let mut s = String::new();
                push_key(&mut s, &c.id);
                s
            })
            .collect(),
    };
    rows.emit(records, sink);
}

/// The array of records `options.records` leads to, and its path; reports where the way to
/// it fails.
fn find_records<'a>(
    doc: &'a Json,
    options: &JsonOptions,
    sink: &mut dyn Sink,
) -> Option<(&'a [Json], String)> {
    let mut path = String::from("$");
    let mut node = doc;
    let wanted = if options.records.is_empty() {
        "the document itself (`records` is empty)".to_string()
    } else {
        format!("`records` = {:?}", options.records)
    };
    if !options.records.is_empty() {
        for key in options.records.split('.') {
            let Json::Object(entries) = node else {
                sink.error(
                    Origin::Path(path),
                    format!(
                        "found {}, expected an object with key `{key}` on the way to the records ({wanted})",
                        node.kind()
                    ),
                );
                return None;
            };
            let Some((_, next)) = entries.iter().find(|(k, _)| k == key) else {
                sink.error(
                    Origin::Path(path),
                    format!(
                        "object has no key `{key}`, expected one on the way to the records ({wanted})"
                    ),
                );
                return None;
            };
            push_key(&mut path, key);
            node = next;
        }
    }
    let Json::Array(records) = node else {
        sink.error(
            Origin::Path(path),
            format!(
                "found {}, expected an array of records at {wanted}",
                node.kind()
            ),
        );
        return None;
    };
    Some((records, path))
}

/// One dimension per key of any record, in first-seen order, and each key's component.
fn components(records: &[Json]) -> (FxHashMap<&str, usize>, Vec<Component>) {
    let mut index: FxHashMap<&str, usize> = FxHashMap::default();
    let mut components: Vec<Component> = Vec::new();
    for record in records {
        if let Json::Object(entries) = record {
            for (k, _) in entries {
                index.entry(k.as_str()).or_insert_with(|| {
                    components.push(Component::new(k.as_str(), Role::Dimension));
                    components.len() - 1
                });
            }
        }
    }
    (index, components)
}

/// What the records' rows are made of.
struct Rows<'r, 'a> {
    /// Path of the array of records.
    path: &'r str,
    components: &'r [Component],
    /// Component of each key.
    index: &'r FxHashMap<&'a str, usize>,
    /// Each component's path step from its record: `.geo`, `["unit name"]`.
    keys: Vec<String>,
}

impl<'a> Rows<'_, 'a> {
    /// Yields a row per record, reporting records that are not objects of scalars.
    fn emit(&self, records: &'a [Json], sink: &mut dyn Sink) {
        let path = self.path;
        let mut fields: Vec<Cow<str>> = Vec::with_capacity(self.components.len());
        let mut present = vec![false; self.components.len()];
        for (i, record) in records.iter().enumerate() {
            let Json::Object(entries) = record else {
                sink.error(
                    Origin::Path(format!("{path}[{i}]")),
                    format!("found {}, expected a record (an object)", record.kind()),
                );
                continue;
            };
            if !self.fill(i, entries, &mut fields, &mut present, sink) {
                continue;
            }
            let refs: Vec<&str> = fields.iter().map(|f| f.as_ref()).collect();
            let origin = |c: usize| self.field_origin(i, entries, c);
            sink.row(&refs, &origin);
        }
    }

    /// Sets `fields` to record `i`'s values by component ("" for a key it lacks); false when
    /// a key is repeated or a value is not a scalar (each reported).
    fn fill(
        &self,
        i: usize,
        entries: &'a [(String, Json)],
        fields: &mut Vec<Cow<'a, str>>,
        present: &mut [bool],
        sink: &mut dyn Sink,
    ) -> bool {
        let path = self.path;
        fields.clear();
        fields.resize(self.components.len(), Cow::Borrowed(""));
        present.fill(false);
        let mut bad = false;
        for (k, v) in entries {
            let c = self.index[k.as_str()];
            if present[c] {
                sink.error(
                    Origin::Path(format!("{path}[{i}]{}", self.keys[c])),
                    format!("duplicate key `{k}`, expected each key once in a record"),
                );
                bad = true;
                continue;
            }
            present[c] = true;
            fields[c] = match v {
                Json::Null => Cow::Borrowed(""),
                Json::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
                Json::Number(n) => Cow::Borrowed(n.as_str()),
                Json::String(s) => Cow::Borrowed(s.as_str()),
                Json::Array(_) | Json::Object(_) => {
                    sink.error(
                        Origin::Path(format!("{path}[{i}]{}", self.keys[c])),
                        format!(
                            "found {}, expected a string, number, boolean or null as a field value",
                            v.kind()
                        ),
                    );
                    bad = true;
                    continue;
                }
            };
        }
        !bad
    }

    /// Where field `c` of record `i` is: its key, or the record itself when the record lacks
    /// the key (and for `ROW`).
    fn field_origin(&self, i: usize, entries: &[(String, Json)], c: usize) -> Origin {
        let path = self.path;
        if c == ROW {
            Origin::Path(format!("{path}[{i}]"))
        } else if entries.iter().any(|(k, _)| *k == self.components[c].id) {
            Origin::Path(format!("{path}[{i}]{}", self.keys[c]))
        } else {
            Origin::Path(format!("{path}[{i}]"))
        }
    }
}

/// Appends `.key`, or `["key"]` when the key is not a plain identifier.
fn push_key(path: &mut String, key: &str) {
    let plain = key
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain {
        path.push('.');
        path.push_str(key);
    } else {
        path.push('[');
        path.push_str(&serde_json::Value::from(key).to_string());
        path.push(']');
    }
}

/// A JSON document that keeps object keys in document order (serde_json's map sorts them),
/// numbers as their text.
#[derive(Debug)]
enum Json {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Number(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Json, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

/// The key serde_json (`arbitrary_precision`) wraps a number's text in.
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Number(v.to_string()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Number(v.to_string()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Json, E> {
        // serde_json's own shortest form, so values read the same as through its Value.
        Ok(Json::Number(
            serde_json::Number::from_f64(v).map_or_else(|| v.to_string(), |n| n.to_string()),
        ))
    }

    fn visit_str<E>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Json, E> {
        Ok(Json::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            // serde_json with `arbitrary_precision` hands a number over as a one-entry map
            // holding its text as written.
            if entries.is_empty() && key == NUMBER_TOKEN {
                return Ok(Json::Number(map.next_value::<String>()?));
            }
            entries.push((key, map.next_value::<Json>()?));
        }
        Ok(Json::Object(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Collect;

    /// Shaped like an observations API answer: metadata around `data.observations`.
    const ANSWER: &str = r#"{
  "meta": {"source": "Statistics Office", "updated": "2024-06-30"},
  "data": {
    "count": 5,
    "observations": [
      {"geo": "DE", "time": "2024-Q1", "value": 1.50, "status": null},
      {"geo": "FR", "time": "2024-Q1", "value": -2, "status": "p"},
      {"time": "2024-Q2", "geo": "IT", "value": 1e3, "flag": true},
      {"geo": "ES", "time": "2024-Q2", "value": "3.25", "status": "", "flag": false},
      {"geo": "PT", "time": "2024-Q2", "value": 12345678901234567890, "unit name": "EUR m"}
    ]
  }
}"#;

    fn run(text: &str, records: &str) -> Collect {
        let mut c = Collect::default();
        read(
            text,
            &JsonOptions {
                records: records.to_string(),
            },
            &mut c,
        );
        c
    }

    fn path(p: &str) -> Origin {
        Origin::Path(p.to_string())
    }

    #[test]
    fn records_inside_an_api_answer() {
        let c = run(ANSWER, "data.observations");
        assert_eq!(c.errors, vec![]);
        let ids: Vec<(&str, Role)> = c
            .components
            .iter()
            .map(|c| (c.id.as_str(), c.role))
            .collect();
        assert_eq!(
            ids,
            [
                ("geo", Role::Dimension),
                ("time", Role::Dimension),
                ("value", Role::Dimension),
                ("status", Role::Dimension),
                ("flag", Role::Dimension),
                ("unit name", Role::Dimension),
            ]
        );
        assert_eq!(
            c.rows,
            [
                // 1.50 in its shortest form; null is "".
                // Numbers keep their digits as written (serde_json arbitrary_precision).
                ["DE", "2024-Q1", "1.50", "", "", ""],
                ["FR", "2024-Q1", "-2", "p", "", ""],
                // Keys in another order land in their components; 1e3 is a float.
                ["IT", "2024-Q2", "1e+3", "", "true", ""],
                ["ES", "2024-Q2", "3.25", "", "false", ""],
                ["PT", "2024-Q2", "12345678901234567890", "", "", "EUR m"],
            ]
        );
        assert_eq!(
            c.origins[2],
            [
                path("$.data.observations[2].geo"),
                path("$.data.observations[2].time"),
                path("$.data.observations[2].value"),
                path("$.data.observations[2]"),
                path("$.data.observations[2].flag"),
                path("$.data.observations[2]"),
            ]
        );
        assert_eq!(
            c.origins[4][5],
            path("$.data.observations[4][\"unit name\"]")
        );
        assert!(c.names.is_empty());
    }

    /// Expected rows by walking serde_json's own Value in the obvious way.
    fn naive(doc: &serde_json::Value, ids: &[String]) -> Vec<Vec<String>> {
        doc.as_array()
            .expect("array")
            .iter()
            .map(|r| {
                ids.iter()
                    .map(|id| match r.get(id) {
                        None | Some(serde_json::Value::Null) => String::new(),
                        Some(serde_json::Value::String(s)) => s.clone(),
                        Some(v) => v.to_string(),
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn every_field_matches_serde_json_value() {
        let doc: serde_json::Value = serde_json::from_str(ANSWER).expect("valid");
        let records = &doc["data"]["observations"];
        // In the document, and re-serialized (keys sorted) as a document of its own.
        for (text, at) in [(ANSWER, "data.observations"), (&records.to_string(), "")] {
            let c = run(text, at);
            assert_eq!(c.errors, vec![]);
            let ids: Vec<String> = c.components.iter().map(|c| c.id.clone()).collect();
            assert_eq!(ids.len(), 6);
            assert_eq!(c.rows, naive(records, &ids));
        }
        let c = run(&records.to_string(), "");
        assert_eq!(c.origins[0][0], path("$[0].geo"));
    }

    #[test]
    fn document_as_array_with_bom() {
        let c = run("\u{feff}[{\"a\": 1}, {\"b\": \"x\"}, {}]", "");
        assert_eq!(c.errors, vec![]);
        assert_eq!(c.rows, [["1", ""], ["", "x"], ["", ""]]);
        assert_eq!(c.origins[1], [path("$[1]"), path("$[1].b")]);
        let c = run("[]", "");
        assert_eq!(
            (c.errors.len(), c.components.len(), c.rows.len()),
            (0, 0, 0)
        );
    }

    #[test]
    fn bad_records() {
        let text = r#"{"data": [
            {"geo": "DE", "value": 1},
            {"geo": "FR", "value": {"v": 2}},
            "DE,3",
            {"geo": "IT", "value": [4], "geo": "IT"},
            null,
            {"geo": "ES", "value": 5}
        ]}"#;
        let c = run(text, "data");
        assert_eq!(
            c.error_lines(),
            [
                "$.data[1].value: found an object, expected a string, number, boolean or null as a field value",
                "$.data[2]: found a string, expected a record (an object)",
                "$.data[3].value: found an array, expected a string, number, boolean or null as a field value",
                "$.data[3].geo: duplicate key `geo`, expected each key once in a record",
                "$.data[4]: found null, expected a record (an object)",
            ]
        );
        assert_eq!(c.rows, [["DE", "1"], ["ES", "5"]]);
    }

    #[test]
    fn records_path_problems() {
        let cases = [
            (
                ANSWER,
                "data.obs",
                "$.data: object has no key `obs`, expected one on the way to the records (`records` = \"data.obs\")",
            ),
            (
                ANSWER,
                "meta.source.x",
                "$.meta.source: found a string, expected an object with key `x` on the way to the records (`records` = \"meta.source.x\")",
            ),
            (
                ANSWER,
                "data",
                "$.data: found an object, expected an array of records at `records` = \"data\"",
            ),
            (
                ANSWER,
                "",
                "$: found an object, expected an array of records at the document itself (`records` is empty)",
            ),
            (
                "[1]",
                "data",
                "$: found an array, expected an object with key `data` on the way to the records (`records` = \"data\")",
            ),
            (
                "{\"a b\": {\"c\": 3}}",
                "a b.c",
                "$[\"a b\"].c: found a number, expected an array of records at `records` = \"a b.c\"",
            ),
        ];
        for (text, records, expected) in cases {
            let c = run(text, records);
            assert_eq!(c.error_lines(), [expected], "{records}");
            assert!(c.components.is_empty());
        }
    }

    #[test]
    fn syntax_errors_and_truncation() {
        let cases = [
            (
                "[{\"a\": 1},\n {\"a\": 2}",
                "2:9",
                "truncated JSON: EOF while parsing a list, expected a complete document",
            ),
            (
                "[{\"a\": 1",
                "1:8",
                "truncated JSON: EOF while parsing an object, expected a complete document",
            ),
            (
                "[{\"a\": \"x",
                "1:9",
                "truncated JSON: EOF while parsing a string, expected a complete document",
            ),
            (
                "[{\"a\": 1}\n {\"a\": 2}]",
                "2:2",
                "invalid JSON: expected `,` or `]`, expected well-formed JSON",
            ),
            (
                "[{\"a\": 1}] x",
                "1:12",
                "invalid JSON: trailing characters, expected well-formed JSON",
            ),
            (
                "[{a: 1}]",
                "1:3",
                "invalid JSON: key must be a string, expected well-formed JSON",
            ),
        ];
        for (text, at, message) in cases {
            let c = run(text, "");
            assert_eq!(c.error_lines(), [format!("{at}: {message}")], "{text}");
            assert!(c.components.is_empty());
        }
        for text in ["", " \n", "\u{feff}"] {
            let c = run(text, "");
            assert_eq!(
                c.errors,
                [(
                    Origin::File,
                    "empty file, expected a JSON document".to_string()
                )]
            );
        }
    }

    #[test]
    fn options_from_config() {
        let o: JsonOptions = toml::from_str("records = \"data.observations\"").expect("valid");
        assert_eq!(o.records, "data.observations");
        assert_eq!(
            toml::from_str::<JsonOptions>("").expect("defaults"),
            JsonOptions::default()
        );
        assert!(toml::from_str::<JsonOptions>("path = \"data\"").is_err());
    }

    #[test]
    fn no_panic_on_truncation_or_byte_flips() {
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for cut in 0..ANSWER.len() {
            let c = run(&ANSWER[..cut], "data.observations");
            assert_eq!(c.errors.len(), 1, "{cut}");
        }
        for _ in 0..300 {
            let mut bytes = ANSWER.as_bytes().to_vec();
            for _ in 0..4 {
                let i = (next() % bytes.len() as u64) as usize;
                bytes[i] = b"{}[]\",:0 \xc3"[(next() % 10) as usize];
            }
            let c = run(&String::from_utf8_lossy(&bytes), "data.observations");
            for (row, origins) in c.rows.iter().zip(&c.origins) {
                assert_eq!(row.len(), origins.len());
            }
        }
    }

    fn parse(text: &str) -> Json {
        serde_json::from_str(text).expect("valid JSON")
    }

    #[test]
    fn components_in_first_seen_order() {
        let doc = parse(r#"[{"b": 1, "a": 2}, 3, {"c": 4, "a": 5, "b": 6}, {"d": null}]"#);
        let Json::Array(records) = &doc else {
            panic!("not an array")
        };
        let (index, components) = components(records);
        let ids: Vec<&str> = components.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["b", "a", "c", "d"]);
        assert!(components.iter().all(|c| c.role == Role::Dimension));
        assert_eq!(
            (index["b"], index["a"], index["c"], index["d"]),
            (0, 1, 2, 3)
        );
    }

    #[test]
    fn field_origin_is_its_key_else_its_record() {
        let doc = parse(r#"[{"geo": "DE", "unit name": "EUR"}, {"time": "2024"}]"#);
        let Json::Array(records) = &doc else {
            panic!("not an array")
        };
        let (index, components) = components(records);
        let rows = Rows {
            path: "$.data",
            components: &components,
            index: &index,
            keys: vec![".geo".into(), "[\"unit name\"]".into(), ".time".into()],
        };
        let Json::Object(first) = &records[0] else {
            panic!("not an object")
        };
        assert_eq!(rows.field_origin(0, first, 0), path("$.data[0].geo"));
        assert_eq!(
            rows.field_origin(0, first, 1),
            path("$.data[0][\"unit name\"]")
        );
        assert_eq!(rows.field_origin(0, first, 2), path("$.data[0]"));
        assert_eq!(rows.field_origin(0, first, ROW), path("$.data[0]"));
    }
}
