//! JSON-stat: a 2.0 dataset (alone or embedded in a 2.0 collection) or a 1.x bundle of named
//! datasets, whose cells are laid out row-major over `id`/`size` (the last dimension varies
//! fastest). Yields one row per cell: each dimension's category code (the time dimension as
//! [`Role::Time`]), `value`, `status`, and `unit` when a metric dimension labels its units.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashSet};

use super::{
    json_kind, json_syntax_error, json_tree, strip_bom, Component, Origin, Role, Sink, ROW,
};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// Options of the JSON-stat reader.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JsonStatOptions {
    /// The dataset to read when the file holds several (a 1.x bundle or a 2.0 collection): its
    /// name in the bundle or its `label`. Unset: the file's only dataset.
    pub dataset: Option<String>,
}

/// Reads a JSON-stat document into `sink`.
pub fn read(text: &str, options: &JsonStatOptions, sink: &mut dyn Sink) {
    let text = strip_bom(text);
    let (doc, table) = match parse(text) {
        Ok(parsed) => parsed,
        Err(e) => {
            let (origin, message) = json_syntax_error(text, &e);
            sink.error(origin, message);
            return;
        }
    };
    if let Some((dataset, path)) = select(&doc, options, sink) {
        read_dataset(dataset, &table, &path, sink);
    }
}

/// A JSON path step to member `name`: `.name` when it is an identifier, else `["name"]`.
fn member(name: &str) -> String {
    let mut chars = name.chars();
    let ident = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ident {
        format!(".{name}")
    } else {
        key(name)
    }
}

/// A JSON path step to member `name`, always bracketed: `["3"]`.
fn key(name: &str) -> String {
    let quoted = serde_json::to_string(name).expect("a string always serializes");
    format!("[{quoted}]")
}

fn list(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A dataset of a bundle or collection.
struct Candidate<'a> {
    /// Its member name in a bundle; in a collection its label (else `href`, else position).
    name: String,
    label: Option<&'a str>,
    dataset: &'a Map<String, Value>,
    path: String,
}

/// Finds the dataset to read and its JSON path.
fn select<'a>(
    doc: &'a Value,
    options: &JsonStatOptions,
    sink: &mut dyn Sink,
) -> Option<(&'a Map<String, Value>, String)> {
    let root_path = || Origin::Path("$".into());
    let Some(root) = doc.as_object() else {
        sink.error(
            root_path(),
            format!(
                "not JSON-stat: the document is {}, expected a JSON-stat dataset, collection or bundle",
                json_kind(doc)
            ),
        );
        return None;
    };
    let candidates = match root.get("class").and_then(Value::as_str) {
        Some("dataset") => return Some((root, "$".into())),
        Some("collection") => {
            let candidates = collection_datasets(root);
            if candidates.is_empty() {
                sink.error(
                    Origin::Path("$.link.item".into()),
                    "collection embeds no dataset, expected `link.item` entries of class `dataset`"
                        .into(),
                );
                return None;
            }
            candidates
        }
        Some("bundle") | None => {
            if root.get("dimension").is_some_and(Value::is_object) {
                return Some((root, "$".into()));
            }
            let candidates = bundle_datasets(root);
            if candidates.is_empty() {
                sink.error(
                    root_path(),
                    "not JSON-stat: found no dataset, expected a JSON-stat dataset, collection or bundle"
                        .into(),
                );
                return None;
            }
            candidates
        }
        Some(other) => {
            sink.error(
                Origin::Path("$.class".into()),
                format!(
                    "not JSON-stat data: class `{other}` holds no cells, expected class `dataset`, `collection` or a bundle"
                ),
            );
            return None;
        }
    };
    choose(candidates, options, sink).map(|c| (c.dataset, c.path))
}

/// The datasets a 2.0 collection embeds: its `link.item` entries of class `dataset`.
fn collection_datasets(root: &Map<String, Value>) -> Vec<Candidate<'_>> {
    let items = root
        .get("link")
        .and_then(|l| l.get("item"))
        .and_then(Value::as_array);
    let mut candidates = Vec::new();
    for (i, item) in items.into_iter().flatten().enumerate() {
        let Some(ds) = item.as_object() else { continue };
        if ds.get("class").and_then(Value::as_str) != Some("dataset")
            || !ds.contains_key("dimension")
        {
            continue;
        }
        let label = ds.get("label").and_then(Value::as_str);
        let name = label
            .or_else(|| ds.get("href").and_then(Value::as_str))
            .map_or_else(|| i.to_string(), str::to_string);
        candidates.push(Candidate {
            name,
            label,
            dataset: ds,
            path: format!("$.link.item[{i}]"),
        });
    }
    candidates
}

/// The datasets of a 1.x bundle: its members with a `dimension` object.
fn bundle_datasets(root: &Map<String, Value>) -> Vec<Candidate<'_>> {
    let mut candidates = Vec::new();
    for (name, v) in root {
        let Some(ds) = v.as_object() else { continue };
        if ds.get("dimension").is_some_and(Value::is_object) {
            let label = ds.get("label").and_then(Value::as_str);
            candidates.push(Candidate {
                name: name.clone(),
                label,
                dataset: ds,
                path: format!("${}", member(name)),
            });
        }
    }
    candidates
}

/// The dataset the `dataset` option names (by name or label), else the only one; reports when
/// there is none such.
fn choose<'a>(
    mut candidates: Vec<Candidate<'a>>,
    options: &JsonStatOptions,
    sink: &mut dyn Sink,
) -> Option<Candidate<'a>> {
    let root_path = || Origin::Path("$".into());
    let names: Vec<String> = candidates.iter().map(|c| c.name.clone()).collect();
    match &options.dataset {
        Some(want) => {
            let found = candidates
                .into_iter()
                .find(|c| c.name == *want || c.label == Some(want.as_str()));
            if found.is_none() {
                sink.error(
                    root_path(),
                    format!("no dataset `{want}`, expected one of {}", list(&names)),
                );
            }
            found
        }
        None if candidates.len() == 1 => candidates.pop(),
        None => {
            sink.error(
                root_path(),
                format!(
                    "found {} datasets ({}), expected the `dataset` option to name one",
                    names.len(),
                    list(&names)
                ),
            );
            None
        }
    }
}

/// How a dimension's codes are written, for the origin of a code.
enum CodeAt {
    /// `index` is an array: `index[3]`.
    Array,
    /// `index` is an object: `index["DE"]`.
    Object,
    /// No `index`, the single code is the key of `label`: `label["DE"]`.
    Label,
}

struct Dim<'a> {
    /// Path of the dimension's `category`.
    category_path: String,
    code_at: CodeAt,
    /// Codes by position ("" where the file gives none), borrowing the text unless escaped: a
    /// dimension may declare far more categories than the values use.
    codes: Vec<Cow<'a, str>>,
    /// Unit labels by position, when the dimension is a metric with `unit`.
    units: Vec<Option<String>>,
}

impl Dim<'_> {
    /// Where the code at position `pos` is written.
    fn code_path(&self, pos: usize) -> String {
        match self.code_at {
            CodeAt::Array => format!("{}.index[{pos}]", self.category_path),
            CodeAt::Object => format!("{}.index{}", self.category_path, key(&self.codes[pos])),
            CodeAt::Label => format!("{}.label{}", self.category_path, key(&self.codes[pos])),
        }
    }
}

/// Reads dimension `id`: its codes by position, their labels and units. None, with `broken`
/// set, when its codes cannot be known.
fn read_dimension<'a>(
    id: &str,
    v: &'a Value,
    table: &'a [&'a RawValue],
    dim_path: &str,
    metric: bool,
    sink: &mut dyn Sink,
    broken: &mut bool,
) -> Option<Dim<'a>> {
    let Some(category) = category_of(id, v, dim_path, sink) else {
        *broken = true;
        return None;
    };
    let cp = format!("{dim_path}.category");
    let label_map = label_map(category, table, &cp, sink);
    let (codes, code_at) =
        category_codes(id, category, table, label_map.as_deref(), &cp, sink, broken)?;
    if let Some(m) = &label_map {
        check_labels(m, &codes, &cp, sink);
    }
    let units = if metric {
        unit_labels(category, &codes)
    } else {
        Vec::new()
    };
    Some(Dim {
        category_path: cp,
        code_at,
        codes,
        units,
    })
}

/// A dimension's `category` object, reported when the dimension has none.
fn category_of<'a>(
    id: &str,
    v: &'a Value,
    dim_path: &str,
    sink: &mut dyn Sink,
) -> Option<&'a Map<String, Value>> {
    let Some(obj) = v.as_object() else {
        sink.error(
            Origin::Path(dim_path.into()),
            format!(
                "dimension `{id}` is {}, expected an object with `category`",
                json_kind(v)
            ),
        );
        return None;
    };
    let category = obj.get("category").and_then(Value::as_object);
    if category.is_none() {
        sink.error(
            Origin::Path(dim_path.into()),
            format!(
                "dimension `{id}` has no `category`, expected an object with `index` or `label`"
            ),
        );
    }
    category
}

/// A category's `index` or `label`: an object or array is text (see `parse`), else a tree.
enum Member<'a> {
    Text(&'a RawValue),
    Tree(&'a Value),
}

impl Member<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Member::Tree(v) => json_kind(v),
            Member::Text(r) if r.get().starts_with('[') => "an array",
            Member::Text(_) => "an object",
        }
    }
}

/// Member `name` (`index` or `label`) of a category.
fn category_member<'a>(
    category: &'a Map<String, Value>,
    table: &'a [&'a RawValue],
    name: &str,
) -> Option<Member<'a>> {
    let at = if name == "index" { INDEX_AT } else { LABEL_AT };
    match category.get(at) {
        Some(i) => i
            .as_u64()
            .and_then(|i| table.get(usize::try_from(i).ok()?))
            .map(|r| Member::Text(r)),
        None => category.get(name).map(Member::Tree),
    }
}

/// An object's members as text, in key order, the last of a repeated key only: the order and
/// the choice a parsed `Map` makes. Keys borrow the text unless they hold escapes.
type Entries<'a> = Vec<(Cow<'a, str>, &'a RawValue)>;

/// The members of object text `raw` (see `Entries`).
fn entries(raw: &RawValue) -> Entries<'_> {
    let mut out: Entries =
        serde_json::from_str::<EntryList>(raw.get()).map_or_else(|_| Vec::new(), |l| l.0);
    // Reversed, a stable sort puts the last of equal keys first, which `dedup_by` keeps.
    out.reverse();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.dedup_by(|a, b| a.0 == b.0);
    out
}

/// The entry of `code` in `m`.
fn entry<'a>(m: &[(Cow<'a, str>, &'a RawValue)], code: &str) -> Option<&'a RawValue> {
    m.binary_search_by(|(k, _)| k.as_ref().cmp(code))
        .ok()
        .map(|i| m[i].1)
}

/// An object's members in document order, as `entries` reads them.
struct EntryList<'a>(Entries<'a>);

impl<'de: 'a, 'a> Deserialize<'de> for EntryList<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = EntryList<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(Key(k)) = map.next_key()? {
                    out.push((k, map.next_value::<&'de RawValue>()?));
                }
                Ok(EntryList(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// A key borrowed from the text when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Key<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Key<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Owned(s.to_string())))
            }
            fn visit_string<E>(self, s: String) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Owned(s)))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

/// The parsed value of `raw`, for messages.
fn parsed(raw: &RawValue) -> Value {
    serde_json::from_str(raw.get()).unwrap_or(Value::Null)
}

/// The category's `label` object, reported (and ignored) when it is not one.
fn label_map<'a>(
    category: &'a Map<String, Value>,
    table: &'a [&'a RawValue],
    cp: &str,
    sink: &mut dyn Sink,
) -> Option<Entries<'a>> {
    match category_member(category, table, "label") {
        None => None,
        Some(Member::Text(r)) if r.get().starts_with('{') => Some(entries(r)),
        Some(other) => {
            sink.error(
                Origin::Path(format!("{cp}.label")),
                format!(
                    "`label` is {}, expected an object of names by code",
                    other.kind()
                ),
            );
            None
        }
    }
}

/// The category codes by position, from `index`, else from a single-entry `label`.
fn category_codes<'a>(
    id: &str,
    category: &'a Map<String, Value>,
    table: &'a [&'a RawValue],
    label_map: Option<&[(Cow<'a, str>, &'a RawValue)]>,
    cp: &str,
    sink: &mut dyn Sink,
    broken: &mut bool,
) -> Option<(Vec<Cow<'a, str>>, CodeAt)> {
    let mut err = |path: String, message: String| {
        sink.error(Origin::Path(path), message);
        *broken = true;
    };
    match category_member(category, table, "index") {
        Some(Member::Text(r)) if r.get().starts_with('[') => {
            Some((array_codes(r, cp, &mut err), CodeAt::Array))
        }
        Some(Member::Text(r)) => Some((object_codes(entries(r), cp, &mut err), CodeAt::Object)),
        Some(other) => {
            err(
                format!("{cp}.index"),
                format!(
                    "`index` is {}, expected an array of codes or an object of positions",
                    other.kind()
                ),
            );
            None
        }
        None => {
            match label_map {
                Some(m) if m.len() == 1 => Some((vec![m[0].0.clone()], CodeAt::Label)),
                Some(m) => {
                    err(
                    cp.to_string(),
                    format!(
                        "category of `{id}` has {} labels and no `index`, expected an `index` when there are several categories",
                        m.len()
                    ),
                );
                    None
                }
                None => {
                    err(
                    cp.to_string(),
                    format!("category of `{id}` has neither `index` nor `label`, expected at least one"),
                );
                    None
                }
            }
        }
    }
}

/// Codes of an `index` array, "" for an entry that is not a string (reported with `err`).
fn array_codes<'a>(
    raw: &'a RawValue,
    cp: &str,
    err: &mut dyn FnMut(String, String),
) -> Vec<Cow<'a, str>> {
    let a: Vec<&RawValue> = serde_json::from_str(raw.get()).unwrap_or_default();
    let mut codes = Vec::with_capacity(a.len());
    for (i, c) in a.iter().enumerate() {
        match serde_json::from_str::<Key>(c.get()) {
            Ok(Key(c)) => codes.push(c),
            Err(_) => {
                err(
                    format!("{cp}.index[{i}]"),
                    format!(
                        "category code is {}, expected a string",
                        json_kind(&parsed(c))
                    ),
                );
                codes.push(Cow::Borrowed(""));
            }
        }
    }
    codes
}

/// Codes of an `index` object of positions, "" for a position no valid entry holds; bad and
/// shared positions are reported with `err`.
fn object_codes<'a>(
    m: Entries<'a>,
    cp: &str,
    err: &mut dyn FnMut(String, String),
) -> Vec<Cow<'a, str>> {
    let n = m.len();
    let mut codes: Vec<Option<Cow<'a, str>>> = vec![None; n];
    for (code, pos) in m {
        // A whole number's text is its decimal digits: what `Value::as_u64` accepts.
        let at = pos
            .get()
            .parse::<u64>()
            .ok()
            .and_then(|p| usize::try_from(p).ok())
            .filter(|p| *p < n);
        match at {
            None => err(
                format!("{cp}.index{}", key(&code)),
                format!(
                    "position of `{code}` is {}, expected a whole number from 0 to {}",
                    parsed(pos),
                    n - 1
                ),
            ),
            Some(p) => match &codes[p] {
                Some(other) => err(
                    format!("{cp}.index{}", key(&code)),
                    format!(
                        "position {p} of `{code}` is also that of `{other}`, expected one position per category"
                    ),
                ),
                None => codes[p] = Some(code),
            },
        }
    }
    codes.into_iter().map(Option::unwrap_or_default).collect()
}

/// Reports the labels that are not strings: of the indexed codes in position order, then of
/// the codes `label` alone has. The labels themselves are read once the rows are known, for
/// the codes they use only.
fn check_labels(
    m: &[(Cow<'_, str>, &RawValue)],
    codes: &[Cow<'_, str>],
    cp: &str,
    sink: &mut dyn Sink,
) {
    let is_string = |v: &RawValue| v.get().starts_with('"');
    // Labels are nearly always strings: the lookups below are for the rare file with others.
    if m.iter().all(|(_, v)| is_string(v)) {
        return;
    }
    let mut check = |code: &str, v: &RawValue| {
        if !is_string(v) {
            sink.error(
                Origin::Path(format!("{cp}.label{}", key(code))),
                format!(
                    "label of `{code}` is {}, expected a string",
                    json_kind(&parsed(v))
                ),
            );
        }
    };
    for code in codes {
        if let Some(v) = entry(m, code) {
            check(code, v);
        }
    }
    let indexed: HashSet<&str> = codes.iter().map(AsRef::as_ref).collect();
    for (code, v) in m {
        if !indexed.contains(code.as_ref()) {
            check(code, v);
        }
    }
}

/// A metric dimension's unit labels by position (`category.unit[code].label`), or none when
/// the category has no `unit` object.
fn unit_labels(category: &Map<String, Value>, codes: &[Cow<'_, str>]) -> Vec<Option<String>> {
    let Some(u) = category.get("unit").and_then(Value::as_object) else {
        return Vec::new();
    };
    codes
        .iter()
        .map(|c| {
            u.get(c.as_ref())
                .and_then(|u| u.get("label"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect()
}

/// Reads a sparse object's keys as cell numbers, reporting those that are not.
fn sparse<'a>(
    m: &'a Map<String, Value>,
    path: &str,
    cells: Option<usize>,
    sink: &mut dyn Sink,
) -> Vec<(usize, &'a str, &'a Value)> {
    let range = match cells {
        Some(0) => "expected none as the dataset has no cells".to_string(),
        Some(n) => format!("expected one from 0 to {}", n - 1),
        None => "expected a cell number".to_string(),
    };
    let mut out = Vec::with_capacity(m.len());
    for (k, v) in m {
        let canonical = !k.is_empty()
            && k.bytes().all(|b| b.is_ascii_digit())
            && (k == "0" || !k.starts_with('0'));
        match k.parse::<usize>().ok().filter(|_| canonical) {
            None => sink.error(
                Origin::Path(format!("{path}{}", key(k))),
                format!("cell index `{k}` is not a whole number, {range}"),
            ),
            Some(c) if cells.is_some_and(|n| c >= n) => sink.error(
                Origin::Path(format!("{path}{}", key(k))),
                format!("cell index `{k}` is out of range, {range}"),
            ),
            Some(c) => out.push((c, k.as_str(), v)),
        }
    }
    out.sort_by_key(|e| e.0);
    out
}

/// A cell's value as written, or None (reported) when it is neither number, string nor null.
fn value_text(v: &Value, path: impl FnOnce() -> String, sink: &mut dyn Sink) -> Option<String> {
    match v {
        Value::Null => Some(String::new()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        other => {
            sink.error(
                Origin::Path(path()),
                format!(
                    "value is {}, expected a number, a string or null",
                    json_kind(other)
                ),
            );
            None
        }
    }
}

/// A cell's status as written ("" for null; reported and "" when not a string).
fn status_text(v: &Value, path: impl FnOnce() -> String, sink: &mut dyn Sink) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => {
            sink.error(
                Origin::Path(path()),
                format!("status is {}, expected a string or null", json_kind(other)),
            );
            String::new()
        }
    }
}

/// Where a cell's value or status is written.
#[derive(Clone, Copy)]
enum At<'a> {
    /// Not in the file.
    Absent,
    /// `[i]` of an array.
    Index(usize),
    /// `["k"]` of an object.
    Key(&'a str),
    /// The member itself (a single status for every cell).
    Whole,
}

fn path_at(base: &str, at: At) -> String {
    match at {
        At::Absent | At::Whole => base.to_string(),
        At::Index(i) => format!("{base}[{i}]"),
        At::Key(k) => format!("{base}{}", key(k)),
    }
}

fn string_list(v: Option<&Value>) -> Option<Vec<&str>> {
    v?.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
}

/// A dataset's `dimension` object, reported when missing or not an object.
fn dimension_member<'a>(
    ds: &'a Map<String, Value>,
    p: &str,
    sink: &mut dyn Sink,
) -> Option<&'a Map<String, Value>> {
    match ds.get("dimension") {
        Some(Value::Object(m)) => Some(m),
        Some(other) => {
            sink.error(
                Origin::Path(format!("{p}.dimension")),
                format!(
                    "`dimension` is {}, expected an object of dimensions",
                    json_kind(other)
                ),
            );
            None
        }
        None => {
            sink.error(
                Origin::Path(p.into()),
                "missing `dimension`, expected an object of dimensions".into(),
            );
            None
        }
    }
}

/// What the dataset's `role` says about its dimensions.
struct Roles<'a> {
    /// Ids listed in `role.time`; None when `role` has no such list.
    time: Option<Vec<&'a str>>,
    /// Ids listed in `role.metric`.
    metric: Vec<&'a str>,
}

impl<'a> Roles<'a> {
    /// Reads the dataset's `role` object, if any.
    fn of(role: Option<&'a Map<String, Value>>) -> Self {
        Roles {
            time: string_list(role.and_then(|r| r.get("time"))),
            metric: string_list(role.and_then(|r| r.get("metric"))).unwrap_or_default(),
        }
    }

    /// Whether dimension `id` is a time dimension: listed in `role.time` when there is such a
    /// list, else named as time dimensions conventionally are.
    fn is_time(&self, id: &str) -> bool {
        match &self.time {
            Some(t) => t.contains(&id),
            None => matches!(id, "time" | "TIME_PERIOD" | "TIME"),
        }
    }
}

/// The unit component's dimension: the first metric dimension whose categories label their
/// units, unless a dimension is itself called `unit`.
fn unit_dimension(dims: &[Option<Dim<'_>>], ids: &[&str]) -> Option<usize> {
    dims.iter()
        .position(|d| {
            d.as_ref()
                .is_some_and(|d| d.units.iter().any(Option::is_some))
        })
        .filter(|_| !ids.contains(&"unit"))
}

/// The components of every row: the dimensions, `value`, `status`, and `unit` when a metric
/// dimension gives units.
fn components(ids: &[&str], roles: &Roles, unit_dim: Option<usize>) -> Vec<Component> {
    let mut components: Vec<Component> = ids
        .iter()
        .map(|id| {
            let role = if roles.is_time(id) {
                Role::Time
            } else {
                Role::Dimension
            };
            Component::new(*id, role)
        })
        .collect();
    components.push(Component::new("value", Role::Measure));
    components.push(Component::new("status", Role::Attribute));
    if unit_dim.is_some() {
        components.push(Component::new("unit", Role::Attribute));
    }
    components
}

/// The dataset's `status`, checked in full before any row is yielded.
enum Status<'a> {
    /// No status.
    None,
    /// One status for every cell.
    All(&'a str),
    /// A status per cell, by cell number.
    Dense(Vec<String>),
    /// (cell, its key, its status), sorted by cell.
    Sparse(Vec<(usize, &'a str, String)>),
}

impl Status<'_> {
    /// The status of `cell` and where it is written ("" and absent when it has none).
    fn of(&self, cell: usize) -> (&str, At<'_>) {
        match self {
            Status::None => ("", At::Absent),
            Status::All(s) => (s, At::Whole),
            Status::Dense(s) => match s.get(cell) {
                Some(t) => (t, At::Index(cell)),
                None => ("", At::Absent),
            },
            Status::Sparse(s) => match s.binary_search_by_key(&cell, |e| e.0) {
                Ok(i) => (&s[i].2, At::Key(s[i].1)),
                Err(_) => ("", At::Absent),
            },
        }
    }
}

/// Cell values as read: (cell, where its value is, its text or None when invalid).
type Values<'a> = Vec<(usize, At<'a>, Option<String>)>;

/// A sparse dataset's values with a row for each cell that has no value but a status: a row
/// with an empty value. Sorted by cell.
fn with_status_only_cells<'a>(mut values: Values<'a>, status: &Status) -> Values<'a> {
    let extra: Vec<(usize, At)> = match status {
        Status::Sparse(s) => s
            .iter()
            .filter(|(_, _, t)| !t.is_empty())
            .map(|(c, _, _)| (*c, At::Absent))
            .collect(),
        Status::Dense(s) => s
            .iter()
            .enumerate()
            .filter(|(_, t)| !t.is_empty())
            .map(|(c, _)| (c, At::Absent))
            .collect(),
        Status::None | Status::All(_) => Vec::new(),
    };
    let have: std::collections::HashSet<usize> = values.iter().map(|v| v.0).collect();
    values.extend(
        extra
            .into_iter()
            .filter(|(c, _)| !have.contains(c))
            .map(|(c, at)| (c, at, Some(String::new()))),
    );
    values.sort_by_key(|v| v.0);
    values
}

/// A dataset being read: its members, and whether a problem already rules out yielding rows
/// (checks go on after one, so that every problem is reported).
struct DatasetReader<'a, 's> {
    ds: &'a Map<String, Value>,
    /// The objects and arrays `parse` kept as text.
    table: &'a [&'a RawValue],
    /// The dataset's `dimension` object.
    dimension: &'a Map<String, Value>,
    /// The dataset's JSON path.
    p: &'a str,
    sink: &'s mut dyn Sink,
    broken: bool,
}

/// Reads the dataset at path `p`: its layout, statuses and values are checked in full, then,
/// when all is sound, its rows are yielded in cell order.
fn read_dataset<'a>(
    ds: &'a Map<String, Value>,
    table: &'a [&'a RawValue],
    p: &str,
    sink: &mut dyn Sink,
) {
    let Some(dimension) = dimension_member(ds, p, sink) else {
        return;
    };
    let mut r = DatasetReader {
        ds,
        table,
        dimension,
        p,
        sink,
        broken: false,
    };
    let Some(ids) = r.ids() else {
        return;
    };
    let (sizes, size_path) = r.sizes(ids.len());
    let cells = r.cells(sizes.as_deref(), &size_path);
    let roles = Roles::of(r.located("role").and_then(|(v, _)| v.as_object()));
    let dims = r.dimensions(&ids, sizes.as_deref(), &roles.metric);
    let unit_dim = unit_dimension(&dims, &ids);
    if !r.announce(&ids, &roles, unit_dim) {
        return;
    }

    let value_path = format!("{p}.value");
    let status_path = format!("{p}.status");
    // Statuses, then values, each checked in full before any row is yielded.
    let status = r.status(&status_path, cells);
    let Some((values, is_sparse)) = r.values(&value_path, cells) else {
        return;
    };
    if r.broken {
        return;
    }
    let (Some(sizes), Some(_)) = (sizes, cells) else {
        return;
    };
    let dims: Vec<Dim> = dims.into_iter().flatten().collect();
    if dims.len() != ids.len() {
        return;
    }
    let values = if is_sparse {
        with_status_only_cells(values, &status)
    } else {
        values
    };
    let rows = Rows {
        dims: &dims,
        sizes: &sizes,
        status: &status,
        unit_dim,
        value_path: &value_path,
        status_path: &status_path,
    };
    let used = rows.emit(&values, r.sink);
    r.names(&ids, &dims, &used);
}

impl<'a> DatasetReader<'a, '_> {
    /// Member `name` of the dataset and its path: 2.0 puts `id`, `size` and `role` at the top
    /// of the dataset, 1.x inside `dimension`.
    fn located(&self, name: &str) -> Option<(&'a Value, String)> {
        let p = self.p;
        match self.ds.get(name) {
            Some(v) => Some((v, format!("{p}.{name}"))),
            None => self
                .dimension
                .get(name)
                .map(|v| (v, format!("{p}.dimension.{name}"))),
        }
    }

    /// The dimension ids ("" for one that is not a string); None when `id` is unusable.
    fn ids(&mut self) -> Option<Vec<&'a str>> {
        let Some((id_v, id_path)) = self.located("id") else {
            self.sink.error(
                Origin::Path(self.p.into()),
                "missing `id`, expected an array of dimension ids".into(),
            );
            return None;
        };
        let Some(id_a) = id_v.as_array() else {
            self.sink.error(
                Origin::Path(id_path),
                format!(
                    "`id` is {}, expected an array of dimension ids",
                    json_kind(id_v)
                ),
            );
            return None;
        };
        let mut ids: Vec<&str> = Vec::with_capacity(id_a.len());
        for (i, v) in id_a.iter().enumerate() {
            match v.as_str() {
                Some(id) => {
                    if let Some(j) = ids.iter().position(|d| *d == id) {
                        self.sink.error(
                            Origin::Path(format!("{id_path}[{i}]")),
                            format!(
                                "duplicate dimension id `{id}` (also id {j}), expected unique ids"
                            ),
                        );
                        self.broken = true;
                    }
                    ids.push(id);
                }
                None => {
                    self.sink.error(
                        Origin::Path(format!("{id_path}[{i}]")),
                        format!("id is {}, expected a string", json_kind(v)),
                    );
                    self.broken = true;
                    ids.push("");
                }
            }
        }
        Some(ids)
    }

    /// The category counts, one per id (None when unusable), and the path of `size`.
    fn sizes(&mut self, n_ids: usize) -> (Option<Vec<usize>>, String) {
        let Some((v, size_path)) = self.located("size") else {
            self.sink.error(
                Origin::Path(self.p.into()),
                "missing `size`, expected an array of category counts".into(),
            );
            self.broken = true;
            return (None, format!("{}.size", self.p));
        };
        let Some(a) = v.as_array() else {
            self.sink.error(
                Origin::Path(size_path.clone()),
                format!(
                    "`size` is {}, expected an array of category counts",
                    json_kind(v)
                ),
            );
            self.broken = true;
            return (None, size_path);
        };
        let mut s = Vec::with_capacity(a.len());
        for (i, n) in a.iter().enumerate() {
            match n.as_u64().and_then(|n| usize::try_from(n).ok()) {
                Some(n) => s.push(n),
                None => {
                    self.sink.error(
                        Origin::Path(format!("{size_path}[{i}]")),
                        format!("size is {n}, expected a whole number"),
                    );
                    self.broken = true;
                }
            }
        }
        if s.len() != a.len() {
            return (None, size_path);
        }
        if s.len() != n_ids {
            self.sink.error(
                Origin::Path(size_path.clone()),
                format!("`size` has {} entries, expected {n_ids} like `id`", s.len()),
            );
            self.broken = true;
            return (None, size_path);
        }
        (Some(s), size_path)
    }

    /// The number of cells, the product of `size`; None when unknown or too many to count.
    fn cells(&mut self, sizes: Option<&[usize]>, size_path: &str) -> Option<usize> {
        let product = sizes?.iter().try_fold(1usize, |acc, n| acc.checked_mul(*n));
        if product.is_none() {
            self.sink.error(
                Origin::Path(size_path.into()),
                "`size` multiplies to more cells than can be counted, expected fewer cells".into(),
            );
            self.broken = true;
        }
        product
    }

    /// Every id's dimension (None when missing or unreadable), checked against its `size`.
    fn dimensions(
        &mut self,
        ids: &[&str],
        sizes: Option<&[usize]>,
        metric: &[&str],
    ) -> Vec<Option<Dim<'a>>> {
        let dims_path = format!("{}.dimension", self.p);
        let mut dims: Vec<Option<Dim<'a>>> = Vec::with_capacity(ids.len());
        for (k, id) in ids.iter().enumerate() {
            let Some(v) = self.dimension.get(*id) else {
                self.sink.error(
                    Origin::Path(dims_path.clone()),
                    format!(
                        "missing dimension `{id}`, expected an entry in `dimension` for every id"
                    ),
                );
                self.broken = true;
                dims.push(None);
                continue;
            };
            let dim_path = format!("{dims_path}{}", member(id));
            let dim = read_dimension(
                id,
                v,
                self.table,
                &dim_path,
                metric.contains(id),
                self.sink,
                &mut self.broken,
            );
            if let (Some(d), Some(s)) = (&dim, sizes) {
                if d.codes.len() != s[k] {
                    let at = match d.code_at {
                        CodeAt::Label => format!("{}.label", d.category_path),
                        _ => format!("{}.index", d.category_path),
                    };
                    self.sink.error(
                        Origin::Path(at),
                        format!(
                            "dimension `{id}` has {} categories, expected {} like its `size`",
                            d.codes.len(),
                            s[k]
                        ),
                    );
                    self.broken = true;
                }
            }
            dims.push(dim);
        }
        dims
    }

    /// Gives the sink the components; false when it refuses them.
    fn announce(&mut self, ids: &[&str], roles: &Roles, unit_dim: Option<usize>) -> bool {
        let p = self.p;
        let dims_path = format!("{p}.dimension");
        let header = |i: usize| match ids.get(i) {
            Some(id) => Origin::Path(format!("{dims_path}{}", member(id))),
            None if i == ids.len() => Origin::Path(format!("{p}.value")),
            None => Origin::Path(format!("{p}.status")),
        };
        if !self
            .sink
            .components(&components(ids, roles, unit_dim), &header)
        {
            return false;
        }
        true
    }

    /// Gives the sink the category labels of the codes at the `used` positions of each
    /// dimension: a dimension may declare far more categories than the values use.
    fn names(&mut self, ids: &[&str], dims: &[Dim], used: &[BTreeSet<usize>]) {
        let dims_path = format!("{}.dimension", self.p);
        for (k, ((id, dim), used)) in ids.iter().zip(dims).zip(used).enumerate() {
            let labels = self
                .dimension
                .get(*id)
                .and_then(|v| v.get("category"))
                .and_then(Value::as_object)
                .and_then(|c| category_member(c, self.table, "label"));
            let Some(Member::Text(labels)) = labels else {
                continue;
            };
            if !labels.get().starts_with('{') {
                continue;
            }
            let labels = entries(labels);
            for &pos in used {
                let code = &dim.codes[pos];
                let label =
                    entry(&labels, code).and_then(|v| serde_json::from_str::<String>(v.get()).ok());
                if let Some(label) = label {
                    let origin = || {
                        let (id, code) = (member(id), member(code));
                        Origin::Path(format!("{dims_path}{id}.category.label{code}"))
                    };
                    self.sink.name_at(k, code, "", &label, &origin);
                }
            }
        }
    }

    /// The `status` member, every entry checked.
    fn status(&mut self, status_path: &str, cells: Option<usize>) -> Status<'a> {
        let status = self.ds.get("status");
        // Eurostat's pre-2.0 files wrap the statuses as `{"value": …, "category": {…}}`.
        if let Some(Value::Object(m)) = status {
            if let Some(v) = m.get("value") {
                return self.status_of(Some(v), &format!("{status_path}.value"), cells);
            }
        }
        self.status_of(status, status_path, cells)
    }

    /// Statuses written as `v`, at `status_path`.
    fn status_of(
        &mut self,
        v: Option<&'a Value>,
        status_path: &str,
        cells: Option<usize>,
    ) -> Status<'a> {
        let sink = &mut *self.sink;
        match v {
            None | Some(Value::Null) => Status::None,
            Some(Value::String(s)) => Status::All(s),
            Some(Value::Array(a)) => {
                if let Some(n) = cells.filter(|n| *n != a.len()) {
                    sink.error(
                        Origin::Path(status_path.into()),
                        format!(
                            "`status` has {} entries, expected {n}, the product of `size`",
                            a.len()
                        ),
                    );
                    self.broken = true;
                }
                let texts = a
                    .iter()
                    .enumerate()
                    .map(|(i, v)| status_text(v, || format!("{status_path}[{i}]"), sink))
                    .collect();
                Status::Dense(texts)
            }
            Some(Value::Object(m)) => {
                let entries = sparse(m, status_path, cells, sink)
                    .into_iter()
                    .map(|(c, k, v)| {
                        (
                            c,
                            k,
                            status_text(v, || path_at(status_path, At::Key(k)), sink),
                        )
                    })
                    .collect();
                Status::Sparse(entries)
            }
            Some(other) => {
                sink.error(
                    Origin::Path(status_path.into()),
                    format!(
                        "`status` is {}, expected a string, an array or an object keyed by cell index",
                        json_kind(other)
                    ),
                );
                self.broken = true;
                Status::None
            }
        }
    }

    /// The `value` member, every entry checked, and whether it is sparse (an object); None
    /// when it is missing or neither an array nor an object.
    fn values(&mut self, value_path: &str, cells: Option<usize>) -> Option<(Values<'a>, bool)> {
        let sink = &mut *self.sink;
        let mut values: Values = Vec::new();
        match self.ds.get("value") {
            None => {
                sink.error(
                    Origin::Path(self.p.into()),
                    "missing `value`, expected an array or an object of cell values".into(),
                );
                None
            }
            Some(Value::Array(a)) => {
                if let Some(n) = cells.filter(|n| *n != a.len()) {
                    sink.error(
                        Origin::Path(value_path.into()),
                        format!(
                            "`value` has {} entries, expected {n}, the product of `size`",
                            a.len()
                        ),
                    );
                    self.broken = true;
                }
                for (i, v) in a.iter().enumerate() {
                    let text = value_text(v, || format!("{value_path}[{i}]"), sink);
                    values.push((i, At::Index(i), text));
                }
                Some((values, false))
            }
            Some(Value::Object(m)) => {
                for (c, k, v) in sparse(m, value_path, cells, sink) {
                    let text = value_text(v, || path_at(value_path, At::Key(k)), sink);
                    values.push((c, At::Key(k), text));
                }
                Some((values, true))
            }
            Some(other) => {
                sink.error(
                    Origin::Path(value_path.into()),
                    format!(
                        "`value` is {}, expected an array or an object keyed by cell index",
                        json_kind(other)
                    ),
                );
                None
            }
        }
    }
}

/// The row-major position of `cell` along every dimension (the last varies fastest).
fn coordinates(cell: usize, sizes: &[usize], coords: &mut [usize]) {
    let mut rest = cell;
    for k in (0..coords.len()).rev() {
        coords[k] = rest % sizes[k];
        rest /= sizes[k];
    }
}

/// What a sound dataset's rows are made of.
struct Rows<'r, 'a> {
    dims: &'r [Dim<'a>],
    sizes: &'r [usize],
    status: &'r Status<'a>,
    unit_dim: Option<usize>,
    value_path: &'r str,
    status_path: &'r str,
}

impl Rows<'_, '_> {
    /// Yields a row for every cell with a valid value, in `values` order; returns the positions
    /// each dimension's rows used.
    fn emit(&self, values: &Values, sink: &mut dyn Sink) -> Vec<BTreeSet<usize>> {
        let n = self.dims.len();
        let mut used = vec![BTreeSet::new(); n];
        let mut coords = vec![0usize; n];
        let mut fields: Vec<&str> = Vec::with_capacity(n + 3);
        for (cell, value_at, text) in values {
            let Some(text) = text else { continue };
            coordinates(*cell, self.sizes, &mut coords);
            let (status_text, status_at) = self.status.of(*cell);
            fields.clear();
            for (k, d) in self.dims.iter().enumerate() {
                fields.push(&d.codes[coords[k]]);
                used[k].insert(coords[k]);
            }
            fields.push(text);
            fields.push(status_text);
            if let Some(u) = self.unit_dim {
                fields.push(self.dims[u].units[coords[u]].as_deref().unwrap_or(""));
            }
            let origin = |i: usize| -> Origin {
                Origin::Path(self.field_path(i, &coords, *value_at, status_at))
            };
            sink.row(&fields, &origin);
        }
        used
    }

    /// Where field `i` of the row at `coords` is written (`ROW`: the row's value).
    fn field_path(&self, i: usize, coords: &[usize], value_at: At, status_at: At) -> String {
        let n = self.dims.len();
        if i == ROW {
            path_at(self.value_path, value_at)
        } else if i < n {
            self.dims[i].code_path(coords[i])
        } else if i == n {
            path_at(self.value_path, value_at)
        } else if i == n + 1 {
            path_at(self.status_path, status_at)
        } else {
            let u = self
                .unit_dim
                .expect("the unit field exists only with a unit dimension");
            let d = &self.dims[u];
            format!("{}.unit{}.label", d.category_path, key(&d.codes[coords[u]]))
        }
    }
}

/// Where `parse` keeps a category's `index` or `label` object or array: under these keys, its
/// index in the table. No key of a category can start with NUL once parsed, as `parse` drops
/// such keys there.
const INDEX_AT: &str = "\0index";
const LABEL_AT: &str = "\0label";

/// Parses the document into a tree, except every category's `index` and `label` object or
/// array: a dimension may declare far more categories than the values use. Those stay text in
/// the returned table; the category holding one gets `INDEX_AT` or `LABEL_AT` with its index.
fn parse(text: &str) -> Result<(Value, Vec<&RawValue>), serde_json::Error> {
    const KEEP: json_tree::Keep = json_tree::Keep {
        hidden: |parent, key| match (parent, key) {
            ("category", "index") => Some(INDEX_AT),
            ("category", "label") => Some(LABEL_AT),
            _ => None,
        },
        opens: &['{', '['],
    };
    json_tree::parse(text, &KEEP)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Collect;

    const ESTAT: &str = include_str!(
        "../../tests/fixtures/publishers/jsonstat/estat_une_rt_m_DE_since_2024-01.json"
    );
    const CSO: &str =
        include_str!("../../tests/fixtures/publishers/jsonstat/cso_ie_NQQ25_bundle.json");

    fn run(text: &str) -> Collect {
        run_with(text, &JsonStatOptions::default())
    }

    fn run_with(text: &str, options: &JsonStatOptions) -> Collect {
        let mut c = Collect::default();
        read(text, options, &mut c);
        c
    }

    fn path(p: &str) -> Origin {
        Origin::Path(p.into())
    }

    #[test]
    fn eurostat_components_rows_and_cells() {
        let c = run(ESTAT);
        assert_eq!(c.errors, vec![]);
        use Role::*;
        assert_eq!(
            c.ids(),
            vec![
                ("freq", Dimension),
                ("s_adj", Dimension),
                ("age", Dimension),
                ("unit", Dimension),
                ("sex", Dimension),
                ("geo", Dimension),
                ("time", Time),
                ("value", Measure),
                ("status", Attribute),
            ]
        );
        // `value` has keys "0".."30"; cell 31 (2026-08) is absent and has no status: no row.
        assert_eq!(c.rows.len(), 31);
        // "0": 3.2 -> the first month.
        assert_eq!(
            c.row_fields()[0],
            ["M", "SA", "TOTAL", "PC_ACT", "T", "DE", "2024-01", "3.2", ""]
        );
        // "12": 3.5 -> time position 12 is "2025-01".
        assert_eq!(c.row_fields()[12][6..], ["2025-01", "3.5", ""]);
        // "29": 4.0 (written `4.0`) -> "2026-06".
        assert_eq!(c.row_fields()[29][6..], ["2026-06", "4.0", ""]);
        // "30": 4.0 -> "2026-07", the last row.
        assert_eq!(c.row_fields()[30][6..], ["2026-07", "4.0", ""]);
        // Rows come in cell order although the object's keys sort as "0", "1", "10", ...
        let times = c.column("time");
        assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
        assert_eq!(
            c.origins[29],
            vec![
                path("$.dimension.freq.category.index[\"M\"]"),
                path("$.dimension.s_adj.category.index[\"SA\"]"),
                path("$.dimension.age.category.index[\"TOTAL\"]"),
                path("$.dimension.unit.category.index[\"PC_ACT\"]"),
                path("$.dimension.sex.category.index[\"T\"]"),
                path("$.dimension.geo.category.index[\"DE\"]"),
                path("$.dimension.time.category.index[\"2026-06\"]"),
                path("$.value[\"29\"]"),
                path("$.status"),
            ]
        );
    }

    #[test]
    fn eurostat_names() {
        let c = run(ESTAT);
        // `freq`: "label": { "M": "Monthly" }, language not said.
        assert_eq!(
            c.names[0],
            (0, "M".to_string(), String::new(), "Monthly".to_string())
        );
        let find = |k: usize, code: &str| {
            c.names
                .iter()
                .find(|n| n.0 == k && n.1 == code)
                .map(|n| (n.2.as_str(), n.3.as_str()))
        };
        assert_eq!(
            find(1, "SA"),
            Some(("", "Seasonally adjusted data, not calendar adjusted data"))
        );
        assert_eq!(
            find(3, "PC_ACT"),
            Some(("", "Percentage of population in the labour force"))
        );
        assert_eq!(find(5, "DE"), Some(("", "Germany")));
        assert_eq!(find(6, "2026-07"), Some(("", "2026-07")));
        // 2026-08 is declared but has no value: no row uses it, so it is not named.
        assert_eq!(find(6, "2026-08"), None);
        // Six one-category dimensions and the 31 months with a value; the dataset label is
        // not a name.
        assert_eq!(c.names.len(), 6 + 31);
        assert!(!c.names.iter().any(|n| n.3.starts_with("Unemployment")));
    }

    #[test]
    fn cso_bundle_components_rows_and_cells() {
        let c = run(CSO);
        assert_eq!(c.errors, vec![]);
        use Role::*;
        // `unit` of the metric `Statistic` has only `base`, no `label`: no unit component.
        assert_eq!(
            c.ids(),
            vec![
                ("Sector", Dimension),
                ("Quarter", Time),
                ("Statistic", Dimension),
                ("value", Measure),
                ("status", Attribute),
            ]
        );
        assert_eq!(c.rows.len(), 8 * 76 * 2);
        let r = c.row_fields();
        // value[0] = 19960: Sector "0", 1997Q1, NQQ25C01.
        assert_eq!(r[0], ["0", "1997Q1", "NQQ25C01", "19960", ""]);
        // value[1] = 20342: Statistic varies fastest.
        assert_eq!(r[1], ["0", "1997Q1", "NQQ25S1", "20342", ""]);
        // value[2] = 21473: then Quarter.
        assert_eq!(r[2], ["0", "1997Q2", "NQQ25C01", "21473", ""]);
        // value[152] = 1170: the first cell of Sector "01" (152 = 76 * 2).
        assert_eq!(r[152], ["01", "1997Q1", "NQQ25C01", "1170", ""]);
        // value[455] = 13839, just before 5083: Sector "02", 2015Q4, NQQ25S1.
        assert_eq!(r[455], ["02", "2015Q4", "NQQ25S1", "13839", ""]);
        // value[1215] = 12521, the last: Sector "08", 2015Q4, NQQ25S1.
        assert_eq!(r[1215], ["08", "2015Q4", "NQQ25S1", "12521", ""]);
        assert_eq!(
            c.origins[455],
            vec![
                path("$.dataset.dimension.Sector.category.index[\"02\"]"),
                path("$.dataset.dimension.Quarter.category.index[\"2015Q4\"]"),
                path("$.dataset.dimension.Statistic.category.index[\"NQQ25S1\"]"),
                path("$.dataset.value[455]"),
                path("$.dataset.status"),
            ]
        );
        let find = |k: usize, code: &str| {
            c.names
                .iter()
                .find(|n| n.0 == k && n.1 == code)
                .map(|n| n.3.as_str())
        };
        assert_eq!(find(0, "0"), Some("All Sectors"));
        assert_eq!(find(0, "07"), Some("Industry - Building and Construction"));
        assert_eq!(find(1, "1997Q1"), Some("1997Q1"));
        assert_eq!(
            find(2, "NQQ25S1"),
            Some("Gross Domestic Product at Constant Factor Cost (chain linked annually and referenced to 2013) (Seasonally Adjusted) (Euro Million)")
        );
        assert_eq!(c.names.len(), 8 + 76 + 2);
        assert!(c.names.iter().all(|n| n.2.is_empty()));
    }

    #[test]
    fn cso_bundle_selected_by_name_or_label() {
        let by_name = run_with(
            CSO,
            &JsonStatOptions {
                dataset: Some("dataset".into()),
            },
        );
        assert_eq!(by_name, run(CSO));
        let label = "Gross Domestic Product at Constant Factor Cost (chain linked annually and referenced to 2013) by Sector, Quarter and Statistic";
        let by_label = run_with(
            CSO,
            &JsonStatOptions {
                dataset: Some(label.into()),
            },
        );
        assert_eq!(by_label, by_name);
        let wrong = run_with(
            CSO,
            &JsonStatOptions {
                dataset: Some("NQQ26".into()),
            },
        );
        assert_eq!(
            wrong.error_lines(),
            ["$: no dataset `NQQ26`, expected one of `dataset`"]
        );
        assert!(wrong.rows.is_empty());
    }

    /// The position of each code of a dimension, from `index` as the obvious walk reads it.
    fn codes_by_position(dim: &Value) -> Vec<String> {
        let cat = &dim["category"];
        match &cat["index"] {
            Value::Array(a) => a.iter().map(|c| c.as_str().unwrap().to_string()).collect(),
            Value::Object(m) => {
                let mut pairs: Vec<(u64, String)> = m
                    .iter()
                    .map(|(k, v)| (v.as_u64().unwrap(), k.clone()))
                    .collect();
                pairs.sort();
                pairs.into_iter().map(|p| p.1).collect()
            }
            _ => cat["label"].as_object().unwrap().keys().cloned().collect(),
        }
    }

    /// A second, plain reading: strides computed up front, every cell 0..N visited, a cell's
    /// value looked up in the array or the object by its decimal index.
    fn independent(ds: &Value, id: &Value, size: &Value, dims: &Value) -> Vec<Vec<String>> {
        let ids: Vec<&str> = id
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let sizes: Vec<usize> = size
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        let codes: Vec<Vec<String>> = ids.iter().map(|i| codes_by_position(&dims[*i])).collect();
        let mut strides = vec![1usize; sizes.len()];
        for k in (0..sizes.len().saturating_sub(1)).rev() {
            strides[k] = strides[k + 1] * sizes[k + 1];
        }
        let total: usize = sizes.iter().product();
        let mut out = Vec::new();
        for cell in 0..total {
            let v = match &ds["value"] {
                Value::Array(a) => Some(&a[cell]),
                Value::Object(m) => m.get(&cell.to_string()),
                _ => unreachable!(),
            };
            let status = match &ds["status"] {
                Value::Object(m) => m.get(&cell.to_string()).and_then(|s| s.as_str()),
                Value::Null => None,
                _ => unreachable!(),
            };
            if v.is_none() && status.is_none() {
                continue;
            }
            let mut row: Vec<String> = Vec::new();
            for k in 0..ids.len() {
                row.push(codes[k][(cell / strides[k]) % sizes[k]].clone());
            }
            row.push(match v {
                Some(Value::Number(n)) => n.to_string(),
                Some(Value::String(s)) => s.clone(),
                _ => String::new(),
            });
            row.push(status.unwrap_or("").to_string());
            out.push(row);
        }
        out
    }

    #[test]
    fn every_cell_matches_an_independent_reading() {
        let doc: Value = serde_json::from_str(ESTAT).unwrap();
        let expected = independent(&doc, &doc["id"], &doc["size"], &doc["dimension"]);
        assert_eq!(expected.len(), 31);
        assert_eq!(run(ESTAT).rows, expected);

        let doc: Value = serde_json::from_str(CSO).unwrap();
        let ds = &doc["dataset"];
        let dims = &ds["dimension"];
        let expected = independent(ds, &dims["id"], &dims["size"], dims);
        assert_eq!(expected.len(), 1216);
        assert_eq!(run(CSO).rows, expected);

        // And the CSO cube by nested loops over the categories, in the order `id` gives.
        let c = run(CSO);
        let mut i = 0;
        let values = ds["value"].as_array().unwrap();
        for sector in codes_by_position(&dims["Sector"]) {
            for quarter in codes_by_position(&dims["Quarter"]) {
                for statistic in codes_by_position(&dims["Statistic"]) {
                    let v = values[i].as_u64().unwrap().to_string();
                    assert_eq!(c.rows[i], [&sector, &quarter, &statistic, &v, ""]);
                    i += 1;
                }
            }
        }
        assert_eq!(i, c.rows.len());
    }

    #[test]
    fn dense_values_nulls_strings_and_status_forms() {
        // 2 x 3 cells; `year` is the time dimension by role although another is named `time`.
        let doc = r#"{"version":"2.0","class":"dataset","id":["time","year"],"size":[2,3],
            "role":{"time":["year"]},
            "dimension":{
              "time":{"category":{"index":["a","b"],"label":{"a":"A","b":"B"}}},
              "year":{"category":{"index":{"2001":1,"2000":0,"2002":2}}}},
            "value":[1,null,"x",2.50,1e2,-0],
            "status":["p",null,"",":","e","c"]}"#;
        let c = run(doc);
        assert_eq!(c.errors, vec![]);
        assert_eq!(
            c.ids(),
            vec![
                ("time", Role::Dimension),
                ("year", Role::Time),
                ("value", Role::Measure),
                ("status", Role::Attribute),
            ]
        );
        assert_eq!(
            c.row_fields(),
            vec![
                ["a", "2000", "1", "p"],
                ["a", "2001", "", ""],
                ["a", "2002", "x", ""],
                // Numbers keep their digits (serde_json arbitrary_precision); 1e2 reads back as 1e+2.
                ["b", "2000", "2.50", ":"],
                ["b", "2001", "1e+2", "e"],
                ["b", "2002", "-0", "c"],
            ]
        );
        assert_eq!(c.origins[3][0], path("$.dimension.time.category.index[1]"));
        assert_eq!(c.origins[3][3], path("$.status[3]"));
        assert_eq!(
            c.names,
            vec![
                (0, "a".into(), "".into(), "A".into()),
                (0, "b".into(), "".into(), "B".into())
            ]
        );

        // One status for every cell.
        let all = doc.replace(r#"["p",null,"",":","e","c"]"#, r#""p""#);
        let c = run(&all);
        assert_eq!(c.column("status"), ["p"; 6]);
        assert_eq!(c.origins[5][3], path("$.status"));
    }

    #[test]
    fn sparse_values_with_statuses_of_absent_cells() {
        // Cells 2 and 0 have values (out of order); 3 has only a status; 1 has neither;
        // 4 has an empty status only. Label-only single-category dimension `geo`.
        let doc = r#"{"class":"dataset","id":["geo","time"],"size":[1,5],
            "dimension":{"geo":{"category":{"label":{"DE":"Germany"}}},
                         "time":{"category":{"index":["t0","t1","t2","t3","t4"]}}},
            "value":{"2":"7","0":0.1},
            "status":{"3":":","0":"|C","4":""}}"#;
        let c = run(doc);
        assert_eq!(c.errors, vec![]);
        assert_eq!(c.components[1], Component::new("time", Role::Time));
        assert_eq!(
            c.row_fields(),
            vec![
                ["DE", "t0", "0.1", "|C"],
                ["DE", "t2", "7", ""],
                ["DE", "t3", "", ":"],
            ]
        );
        assert_eq!(
            c.origins[2],
            vec![
                path("$.dimension.geo.category.label[\"DE\"]"),
                path("$.dimension.time.category.index[3]"),
                path("$.value"),
                path("$.status[\"3\"]"),
            ]
        );
        assert_eq!(c.names, vec![(0, "DE".into(), "".into(), "Germany".into())]);

        // A single status does not turn absent cells of a sparse value into rows.
        let c = run(&doc.replace(r#"{"3":":","0":"|C","4":""}"#, r#""p""#));
        assert_eq!(
            c.row_fields(),
            vec![["DE", "t0", "0.1", "p"], ["DE", "t2", "7", "p"]]
        );
    }

    #[test]
    fn unit_labels_of_a_metric_dimension() {
        let doc = r#"{"class":"dataset","id":["concept","TIME"],"size":[2,1],
            "role":{"metric":["concept"]},
            "dimension":{"concept":{"category":{"index":["gdp","pop"],
                "unit":{"gdp":{"label":"euro","decimals":0},"pop":{"symbol":"p"}}}},
              "TIME":{"category":{"index":["2020"]}}},
            "value":[5,6]}"#;
        let c = run(doc);
        assert_eq!(c.errors, vec![]);
        assert_eq!(
            c.ids(),
            vec![
                ("concept", Role::Dimension),
                ("TIME", Role::Time),
                ("value", Role::Measure),
                ("status", Role::Attribute),
                ("unit", Role::Attribute),
            ]
        );
        assert_eq!(
            c.row_fields(),
            vec![
                ["gdp", "2020", "5", "", "euro"],
                ["pop", "2020", "6", "", ""]
            ]
        );
        assert_eq!(
            c.origins[0][4],
            path("$.dimension.concept.category.unit[\"gdp\"].label")
        );
        // Without the metric role the units are not read.
        let c = run(&doc.replace(r#""role":{"metric":["concept"]},"#, ""));
        assert_eq!(c.components.len(), 4);
        // A dimension already named `unit` keeps its id; the unit labels are then not yielded.
        let c = run(&doc.replace(r#""TIME""#, r#""unit""#));
        assert_eq!(c.errors, vec![]);
        assert_eq!(
            c.components
                .iter()
                .map(|c| c.id.as_str())
                .collect::<Vec<_>>(),
            ["concept", "unit", "value", "status"]
        );
    }

    fn tiny(name: &str, v: u32) -> String {
        format!(
            r#"{{"class":"dataset","label":"{name} label","id":["x"],"size":[1],
               "dimension":{{"x":{{"category":{{"index":["{name}"]}}}}}},"value":[{v}]}}"#
        )
    }

    #[test]
    fn collections_and_bundles_of_several() {
        let collection = format!(
            r#"{{"version":"2.0","class":"collection","link":{{"item":[
               {{"class":"dataset","href":"https://example.org/a"}}, {}, {}]}}}}"#,
            tiny("a", 1),
            tiny("b", 2)
        );
        let c = run(&collection);
        assert_eq!(
            c.error_lines(),
            ["$: found 2 datasets (`a label`, `b label`), expected the `dataset` option to name one"]
        );
        assert!(c.components.is_empty());
        let pick = |text: &str, name: &str| {
            run_with(
                text,
                &JsonStatOptions {
                    dataset: Some(name.into()),
                },
            )
        };
        let c = pick(&collection, "b label");
        assert_eq!(c.errors, vec![]);
        assert_eq!(c.row_fields(), vec![["b", "2", ""]]);
        assert_eq!(c.origins[0][1], path("$.link.item[2].value[0]"));

        let bundle = format!(
            r#"{{"first": {}, "second set": {}}}"#,
            tiny("a", 1),
            tiny("b", 2)
        );
        let c = run(&bundle);
        assert_eq!(
            c.error_lines(),
            ["$: found 2 datasets (`first`, `second set`), expected the `dataset` option to name one"]
        );
        let c = pick(&bundle, "second set");
        assert_eq!(c.row_fields(), vec![["b", "2", ""]]);
        assert_eq!(c.origins[0][1], path("$[\"second set\"].value[0]"));
        let c = pick(&bundle, "a label");
        assert_eq!(c.row_fields(), vec![["a", "1", ""]]);
        let c = pick(&bundle, "third");
        assert_eq!(
            c.error_lines(),
            ["$: no dataset `third`, expected one of `first`, `second set`"]
        );

        // A byte order mark is skipped; an option naming no dataset of a lone one is ignored.
        let c = pick(&format!("\u{feff}{}", tiny("a", 1)), "other");
        assert_eq!(c.errors, vec![]);
        assert_eq!(c.row_fields(), vec![["a", "1", ""]]);
    }

    fn errors(text: &str) -> Vec<String> {
        run(text).error_lines()
    }

    #[test]
    fn syntax_errors() {
        assert_eq!(
            errors(r#"{"version":"2.0""#),
            ["1:16: truncated JSON: EOF while parsing an object, expected a complete document"]
        );
        assert_eq!(
            errors(""),
            ["1:1: truncated JSON: EOF while parsing a value, expected a complete document"]
        );
        assert_eq!(
            errors("{\n  \"a\" 1}"),
            ["2:7: invalid JSON: expected `:`, expected well-formed JSON"]
        );
        // Columns count characters: `é` is two bytes.
        assert_eq!(
            errors("{\"é\": x}"),
            ["1:7: invalid JSON: expected value, expected well-formed JSON"]
        );
        assert_eq!(
            errors("\u{feff}{} x"),
            ["1:4: invalid JSON: trailing characters, expected well-formed JSON"]
        );
        let cut = &ESTAT[..ESTAT.find("\"2024-05\": 4").unwrap()];
        let c = run(cut);
        assert_eq!(c.errors.len(), 1);
        assert!(matches!(c.errors[0].0, Origin::At { .. }));
        assert!(
            c.errors[0]
                .1
                .starts_with("truncated JSON: EOF while parsing"),
            "{:?}",
            c.errors
        );
        assert!(c.components.is_empty() && c.rows.is_empty());
    }

    #[test]
    fn not_json_stat() {
        assert_eq!(
            errors("[1, 2]"),
            ["$: not JSON-stat: the document is an array, expected a JSON-stat dataset, collection or bundle"]
        );
        assert_eq!(
            errors(r#"{"a": {"b": 1}, "version": "2.0"}"#),
            ["$: not JSON-stat: found no dataset, expected a JSON-stat dataset, collection or bundle"]
        );
        assert_eq!(
            errors(r#"{"class": "dimension", "category": {}}"#),
            ["$.class: not JSON-stat data: class `dimension` holds no cells, expected class `dataset`, `collection` or a bundle"]
        );
        assert_eq!(
            errors(r#"{"class": "collection", "link": {"item": [{"class": "dataset", "href": "x"}]}}"#),
            ["$.link.item: collection embeds no dataset, expected `link.item` entries of class `dataset`"]
        );
    }

    /// A 2 x 2 dataset to break one piece at a time.
    const GOOD: &str = r#"{"class":"dataset","id":["geo","time"],"size":[2,2],
        "dimension":{"geo":{"category":{"index":{"DE":0,"FR":1}}},
                     "time":{"category":{"index":["2020","2021"]}}},
        "value":[1,2,3,4]}"#;

    fn broken(from: &str, to: &str) -> Collect {
        assert!(GOOD.contains(from), "{from}");
        run(&GOOD.replacen(from, to, 1))
    }

    #[test]
    fn good_is_good() {
        let c = run(GOOD);
        assert_eq!(c.errors, vec![]);
        assert_eq!(c.rows.len(), 4);
        assert_eq!(c.row_fields()[2], ["FR", "2020", "3", ""]);
    }

    #[test]
    fn structure_errors() {
        let c = broken(r#""size":[2,2]"#, r#""size":[2,2,1]"#);
        assert_eq!(
            c.error_lines(),
            ["$.size: `size` has 3 entries, expected 2 like `id`"]
        );
        // The components are still said; no rows from a cube whose layout is unknown.
        assert_eq!(c.components.len(), 4);
        assert!(c.rows.is_empty());

        let c = broken(r#""size":[2,2]"#, r#""size":[3,2]"#);
        assert_eq!(
            c.error_lines(),
            [
                "$.dimension.geo.category.index: dimension `geo` has 2 categories, expected 3 like its `size`",
                "$.value: `value` has 4 entries, expected 6, the product of `size`",
            ]
        );
        assert!(c.rows.is_empty());

        let c = broken(r#""id":["geo","time"]"#, r#""id":["geo","TIME"]"#);
        assert_eq!(
            c.error_lines(),
            ["$.dimension: missing dimension `TIME`, expected an entry in `dimension` for every id"]
        );
        assert!(c.rows.is_empty());

        assert_eq!(
            broken(r#""size":[2,2]"#, r#""size":[2,-1]"#).error_lines(),
            ["$.size[1]: size is -1, expected a whole number"]
        );
        assert_eq!(
            broken(r#""id":["geo","time"]"#, r#""id":["geo",7]"#).error_lines(),
            [
                "$.id[1]: id is a number, expected a string",
                "$.dimension: missing dimension ``, expected an entry in `dimension` for every id"
            ]
        );
        assert_eq!(
            broken(r#""id":["geo","time"]"#, r#""id":["geo","geo"]"#).error_lines(),
            ["$.id[1]: duplicate dimension id `geo` (also id 0), expected unique ids"]
        );
        assert_eq!(
            broken(r#""id":["geo","time"],"#, "").error_lines(),
            ["$: missing `id`, expected an array of dimension ids"]
        );
        assert_eq!(
            broken(r#""size":[2,2],"#, "").error_lines(),
            ["$: missing `size`, expected an array of category counts"]
        );
        assert_eq!(
            broken(r#"{"DE":0,"FR":1}"#, r#"{"DE":0,"FR":0}"#).error_lines(),
            ["$.dimension.geo.category.index[\"FR\"]: position 0 of `FR` is also that of `DE`, expected one position per category"]
        );
        assert_eq!(
            broken(r#"{"DE":0,"FR":1}"#, r#"{"DE":0,"FR":2}"#).error_lines(),
            ["$.dimension.geo.category.index[\"FR\"]: position of `FR` is 2, expected a whole number from 0 to 1"]
        );
        assert_eq!(
            broken(r#"["2020","2021"]"#, r#"["2020",2021]"#).error_lines(),
            ["$.dimension.time.category.index[1]: category code is a number, expected a string"]
        );
        assert_eq!(
            broken(r#"{"index":["2020","2021"]}"#, r#"{"label":{"a":"A","b":"B"}}"#)
                .error_lines(),
            ["$.dimension.time.category: category of `time` has 2 labels and no `index`, expected an `index` when there are several categories"]
        );
        assert_eq!(
            broken(r#"{"category":{"index":["2020","2021"]}}"#, "{}").error_lines(),
            ["$.dimension.time: dimension `time` has no `category`, expected an object with `index` or `label`"]
        );
        assert_eq!(
            broken(r#"["2020","2021"]}"#, r#"["2020","2021"],"label":{"2020":5}}"#)
                .error_lines(),
            ["$.dimension.time.category.label[\"2020\"]: label of `2020` is a number, expected a string"]
        );
    }

    #[test]
    fn value_and_status_errors() {
        let c = broken("[1,2,3,4]", "[1,2,3]");
        assert_eq!(
            c.error_lines(),
            ["$.value: `value` has 3 entries, expected 4, the product of `size`"]
        );
        assert!(c.rows.is_empty());

        // A bad cell is reported and yields no row; the others are read.
        let c = broken("[1,2,3,4]", r#"[1,true,{"v":3},4]"#);
        assert_eq!(
            c.error_lines(),
            [
                "$.value[1]: value is a boolean, expected a number, a string or null",
                "$.value[2]: value is an object, expected a number, a string or null",
            ]
        );
        assert_eq!(c.column("value"), ["1", "4"]);

        let c = broken("[1,2,3,4]", r#"{"0":1,"x":2,"4":3,"01":4,"-1":5,"3":[6]}"#);
        assert_eq!(
            c.error_lines(),
            [
                "$.value[\"-1\"]: cell index `-1` is not a whole number, expected one from 0 to 3",
                "$.value[\"01\"]: cell index `01` is not a whole number, expected one from 0 to 3",
                "$.value[\"4\"]: cell index `4` is out of range, expected one from 0 to 3",
                "$.value[\"x\"]: cell index `x` is not a whole number, expected one from 0 to 3",
                "$.value[\"3\"]: value is an array, expected a number, a string or null",
            ]
        );
        assert_eq!(c.row_fields(), vec![["DE", "2020", "1", ""]]);

        assert_eq!(
            broken("[1,2,3,4]", r#""1,2""#).error_lines(),
            ["$.value: `value` is a string, expected an array or an object keyed by cell index"]
        );
        assert_eq!(
            broken(r#""value":[1,2,3,4]"#, r#""values":[1,2,3,4]"#).error_lines(),
            ["$: missing `value`, expected an array or an object of cell values"]
        );
        let c = broken("[1,2,3,4]", r#"[1,2,3,4],"status":["a",1,null]"#);
        assert_eq!(
            c.error_lines(),
            [
                "$.status: `status` has 3 entries, expected 4, the product of `size`",
                "$.status[1]: status is a number, expected a string or null",
            ]
        );
        assert!(c.rows.is_empty());
        assert_eq!(
            broken("[1,2,3,4]", r#"[1,2,3,4],"status":{"9":"a"}"#).error_lines(),
            ["$.status[\"9\"]: cell index `9` is out of range, expected one from 0 to 3"]
        );
        assert_eq!(
            broken("[1,2,3,4]", r#"[1,2,3,4],"status":true"#).error_lines(),
            ["$.status: `status` is a boolean, expected a string, an array or an object keyed by cell index"]
        );
    }

    #[test]
    fn every_problem_of_a_file_is_reported() {
        let text = r#"{"class":"dataset","id":["geo","time","sex"],"size":[3,2,1],
            "dimension":{"geo":{"category":{"index":{"DE":0,"FR":1}}},
                         "time":{"category":{"index":["2020","2021"]}}},
            "value":{"0":1,"a":2,"99":3,"2":false}}"#;
        assert_eq!(
            errors(text),
            [
                "$.dimension.geo.category.index: dimension `geo` has 2 categories, expected 3 like its `size`",
                "$.dimension: missing dimension `sex`, expected an entry in `dimension` for every id",
                "$.value[\"99\"]: cell index `99` is out of range, expected one from 0 to 5",
                "$.value[\"a\"]: cell index `a` is not a whole number, expected one from 0 to 5",
                "$.value[\"2\"]: value is a boolean, expected a number, a string or null",
            ]
        );
    }

    #[test]
    fn sink_refusing_components_stops_the_reader() {
        let mut sink = Collect {
            refuse: true,
            ..Collect::default()
        };
        read(ESTAT, &JsonStatOptions::default(), &mut sink);
        assert!(sink.received_nothing(), "{:?}", sink);
    }

    #[test]
    fn no_panic_on_truncations_and_byte_flips() {
        for text in [ESTAT, CSO] {
            for end in (0..text.len()).step_by(5) {
                if let Some(cut) = text.get(..end) {
                    let c = run(cut);
                    assert!(!c.errors.is_empty(), "no error for a cut at {end}");
                }
            }
            let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
            let mut next = move || {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed
            };
            let replacements = b"0123456789-.,:{}[]\"ae ";
            for _ in 0..300 {
                let mut bytes = text.as_bytes().to_vec();
                for _ in 0..1 + next() % 3 {
                    let at = (next() % bytes.len() as u64) as usize;
                    bytes[at] = replacements[(next() % replacements.len() as u64) as usize];
                }
                if let Ok(s) = std::str::from_utf8(&bytes) {
                    let c = run(s);
                    for (r, o) in c.rows.iter().zip(&c.origins) {
                        assert_eq!(r.len(), c.components.len());
                        assert_eq!(o.len(), c.components.len());
                    }
                }
            }
        }
    }

    fn object(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn time_dimensions_by_role_else_by_id() {
        let role = object(serde_json::json!({"time": ["period"], "metric": ["unit"]}));
        let roles = Roles::of(Some(&role));
        assert!(roles.is_time("period"));
        // A `role.time` list overrides the conventional ids.
        assert!(!roles.is_time("time"));
        assert!(!roles.is_time("TIME_PERIOD"));
        assert_eq!(roles.metric, ["unit"]);

        let empty = object(serde_json::json!({"time": []}));
        assert!(!Roles::of(Some(&empty)).is_time("time"));

        // No list (no `role`, or `time` not an array): the conventional ids, exactly.
        let not_a_list = object(serde_json::json!({"time": "period"}));
        for roles in [Roles::of(None), Roles::of(Some(&not_a_list))] {
            assert!(roles.is_time("time"));
            assert!(roles.is_time("TIME_PERIOD"));
            assert!(roles.is_time("TIME"));
            assert!(!roles.is_time("Time"));
            assert!(!roles.is_time("period"));
            assert!(roles.metric.is_empty());
        }
    }

    fn dim(codes: &[&'static str], units: &[Option<&str>]) -> Option<Dim<'static>> {
        Some(Dim {
            category_path: "$.dimension.d.category".into(),
            code_at: CodeAt::Array,
            codes: codes.iter().map(|c| Cow::Borrowed(*c)).collect(),
            units: units.iter().map(|u| u.map(str::to_string)).collect(),
        })
    }

    #[test]
    fn unit_dimension_is_the_first_with_a_unit_label() {
        let dims = vec![
            dim(&["A"], &[]),
            None,
            dim(&["X", "Y"], &[None, None]),
            dim(&["P", "Q"], &[None, Some("euro")]),
            dim(&["R"], &[Some("tonnes")]),
        ];
        assert_eq!(unit_dimension(&dims, &["a", "b", "c", "d", "e"]), Some(3));
        // A dimension called `unit` takes the name: no unit component.
        assert_eq!(unit_dimension(&dims, &["a", "unit", "c", "d", "e"]), None);
        assert_eq!(unit_dimension(&dims[..3], &["a", "b", "c"]), None);

        let c = super::components(&["geo", "time"], &Roles::of(None), Some(0));
        let c: Vec<(&str, Role)> = c.iter().map(|c| (c.id.as_str(), c.role)).collect();
        use Role::*;
        assert_eq!(
            c,
            [
                ("geo", Dimension),
                ("time", Time),
                ("value", Measure),
                ("status", Attribute),
                ("unit", Attribute),
            ]
        );
        assert_eq!(super::components(&["geo"], &Roles::of(None), None).len(), 3);
    }

    #[test]
    fn status_of_a_cell_and_where_it_is() {
        let at = |(t, a): (&str, At)| (t.to_string(), path_at("$.status", a));
        let s = |t: &str, p: &str| (t.to_string(), p.to_string());
        assert_eq!(at(Status::None.of(3)), s("", "$.status"));
        assert_eq!(at(Status::All("p").of(3)), s("p", "$.status"));
        let dense = Status::Dense(vec!["".into(), "e".into()]);
        assert_eq!(at(dense.of(1)), s("e", "$.status[1]"));
        assert_eq!(at(dense.of(0)), s("", "$.status[0]"));
        assert_eq!(at(dense.of(2)), s("", "$.status"));
        let sparse = Status::Sparse(vec![(2, "2", "b".into()), (10, "10", "c".into())]);
        assert_eq!(at(sparse.of(10)), s("c", "$.status[\"10\"]"));
        assert_eq!(at(sparse.of(3)), s("", "$.status"));
    }

    #[test]
    fn status_only_cells_of_a_sparse_dataset() {
        let cells = |v: &Values| -> Vec<(usize, String, Option<String>)> {
            v.iter()
                .map(|(c, a, t)| (*c, path_at("$.value", *a), t.clone()))
                .collect()
        };
        let values =
            || -> Values { vec![(1, At::Key("1"), Some("5".into())), (4, At::Key("4"), None)] };
        let sparse = Status::Sparse(vec![
            (0, "0", "e".into()),
            (1, "1", "p".into()),
            (2, "2", String::new()),
            (7, "7", "c".into()),
        ]);
        assert_eq!(
            cells(&with_status_only_cells(values(), &sparse)),
            [
                (0, "$.value".into(), Some(String::new())),
                (1, "$.value[\"1\"]".into(), Some("5".into())),
                (4, "$.value[\"4\"]".into(), None),
                (7, "$.value".into(), Some(String::new())),
            ]
        );
        let dense = Status::Dense(vec![String::new(), "p".into(), "m".into()]);
        assert_eq!(
            cells(&with_status_only_cells(values(), &dense)),
            [
                (1, "$.value[\"1\"]".into(), Some("5".into())),
                (2, "$.value".into(), Some(String::new())),
                (4, "$.value[\"4\"]".into(), None),
            ]
        );
        // A single status for every cell adds no rows.
        assert_eq!(with_status_only_cells(values(), &Status::All("p")).len(), 2);
    }

    #[test]
    fn cells_are_row_major() {
        let mut coords = [0; 3];
        coordinates(0, &[2, 3, 4], &mut coords);
        assert_eq!(coords, [0, 0, 0]);
        coordinates(1, &[2, 3, 4], &mut coords);
        assert_eq!(coords, [0, 0, 1]);
        coordinates(4, &[2, 3, 4], &mut coords);
        assert_eq!(coords, [0, 1, 0]);
        coordinates(23, &[2, 3, 4], &mut coords);
        assert_eq!(coords, [1, 2, 3]);
    }

    #[test]
    fn dataset_chosen_by_name_label_or_being_the_only_one() {
        let root = object(serde_json::json!({"link": {"item": [
            {"class": "dataset", "dimension": {}, "label": "Prices", "href": "p.json"},
            {"class": "dataset", "dimension": {}, "href": "q.json"},
            {"class": "collection", "dimension": {}},
            {"class": "dataset"},
            {"class": "dataset", "dimension": {}},
        ]}}));
        let names = |c: &[Candidate]| -> Vec<(String, String)> {
            c.iter().map(|c| (c.name.clone(), c.path.clone())).collect()
        };
        let s = |n: &str, p: &str| (n.to_string(), p.to_string());
        assert_eq!(
            names(&collection_datasets(&root)),
            [
                s("Prices", "$.link.item[0]"),
                s("q.json", "$.link.item[1]"),
                s("4", "$.link.item[4]"),
            ]
        );
        let pick = |want: Option<&str>| {
            let mut sink = Collect::default();
            let options = JsonStatOptions {
                dataset: want.map(str::to_string),
            };
            let chosen = choose(collection_datasets(&root), &options, &mut sink);
            (chosen.map(|c| c.path), sink.error_lines())
        };
        assert_eq!(
            pick(Some("Prices")),
            (Some("$.link.item[0]".into()), vec![])
        );
        assert_eq!(
            pick(Some("q.json")),
            (Some("$.link.item[1]".into()), vec![])
        );
        assert_eq!(pick(Some("4")), (Some("$.link.item[4]".into()), vec![]));
        assert_eq!(
            pick(Some("p.json")),
            (
                None,
                vec!["$: no dataset `p.json`, expected one of `Prices`, `q.json`, `4`".into()]
            )
        );
        assert_eq!(
            pick(None),
            (
                None,
                vec!["$: found 3 datasets (`Prices`, `q.json`, `4`), expected the `dataset` option to name one".into()]
            )
        );

        let bundle = object(serde_json::json!({
            "b c": {"dimension": {}, "label": "B"},
            "a": {"dimension": {}},
            "x": {"dimension": []},
            "y": 1,
        }));
        assert_eq!(
            names(&bundle_datasets(&bundle)),
            [s("a", "$.a"), s("b c", "$[\"b c\"]")]
        );
        let mut sink = Collect::default();
        let only = JsonStatOptions::default();
        let chosen = choose(
            bundle_datasets(&bundle).into_iter().take(1).collect(),
            &only,
            &mut sink,
        );
        assert_eq!(chosen.map(|c| c.path), Some("$.a".into()));
        assert_eq!(sink.errors, vec![]);
    }
}
