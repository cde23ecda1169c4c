//! PxWeb API sources (Statistics Sweden's PxWeb API v1 and PxWebApi 2): an `[input.pxweb]`
//! names a table and selects values per variable; the query is planned against the table's
//! metadata and the service's limits, split into as few requests as the cell limit allows, and
//! the JSON-stat 2 answers are joined into one dataset, which goes down the normal path as the
//! source's body. The planning and the join are pure; [`Client`] does the requests, keeping
//! the service's calls-per-window limit.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Map, Value};
use toml::Spanned;

use crate::config::OneOrMany;
use crate::diagnostic::Diagnostic;
use crate::source::fetch::{
    self, BuildError, FetchError, FetchSettings, Fetched, Fetcher, Validators,
};

/// A 429 asking to wait longer than this fails the fetch (the refresh loop then waits as
/// asked) instead of holding a split query open.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(60);
/// Retries of one request after a 429 that asked for a short wait.
const MAX_RETRIES: u32 = 3;

/// `[input.pxweb]`: the table and the values selected per variable.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PxWebConfig {
    /// v1: the table's URL (`…/api/v1/en/ssd/PR/PR0101/KPI2020M`); v2: the table's URL under
    /// the API root (`…/api/v2/tables/TAB5737`), a `?lang=en` kept on every request.
    pub table: Spanned<String>,
    /// `v1` (default) or `v2`.
    #[serde(default)]
    pub api: Api,
    /// Variable code -> value codes, `"*"` (all) or `"top(N)"` (the N latest periods of a time
    /// variable, else the N first values). Variables left out are left to the service.
    #[serde(default)]
    pub select: BTreeMap<Spanned<String>, Spanned<OneOrMany>>,
}

/// Which PxWeb API a table is served by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    /// PxWeb API v1: metadata by GET of the table, data by POST of a JSON query.
    #[default]
    V1,
    /// PxWebApi 2: `tables/{id}/metadata` and `tables/{id}/data?valueCodes[VAR]=…`.
    V2,
}

/// What is selected of one variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    Codes(Vec<String>),
    All,
    Top(usize),
}

impl Selection {
    fn of(v: &OneOrMany) -> Result<Selection, String> {
        let one = match v {
            OneOrMany::Many(codes) => return Ok(Selection::Codes(codes.clone())),
            OneOrMany::One(s) => s.trim(),
        };
        if one == "*" {
            return Ok(Selection::All);
        }
        let lower = one.to_ascii_lowercase();
        let top = lower
            .strip_prefix("top(")
            .and_then(|r| r.strip_suffix(')'))
            .map(|n| n.trim().parse::<usize>());
        match top {
            Some(Ok(n)) if n > 0 => Ok(Selection::Top(n)),
            Some(_) => Err(format!(
                "`{one}` is not a count of values, expected `top(N)` with N at least 1"
            )),
            None => Ok(Selection::Codes(vec![one.to_string()])),
        }
    }

    /// The expression that asks for it: v2 `valueCodes`, or the v1 filter and values.
    fn v2(&self) -> String {
        match self {
            Selection::Codes(c) => c.join(","),
            Selection::All => "*".into(),
            Selection::Top(n) => format!("top({n})"),
        }
    }

    fn v1(&self) -> Value {
        let (filter, values) = match self {
            Selection::Codes(c) => ("item", c.clone()),
            Selection::All => ("all", vec!["*".to_string()]),
            Selection::Top(n) => ("top", vec![n.to_string()]),
        };
        serde_json::json!({ "filter": filter, "values": values })
    }
}

/// One variable's selection and where it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Select {
    pub variable: String,
    pub selection: Selection,
    /// At the variable's key in the config.
    pub at: Diagnostic,
}

/// A PxWeb query as configured: what [`Client`] asks for each time the source is fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub api: Api,
    pub table: String,
    pub select: Vec<Select>,
}

impl PxWebConfig {
    /// The source's key: the table and the selection, stable and readable, used as the
    /// input's data file name (and so as the `source` label of its self-metrics).
    pub fn key(&self) -> String {
        let api = match self.api {
            Api::V1 => "v1",
            Api::V2 => "v2",
        };
        let select: Vec<String> = self
            .select
            .iter()
            .map(|(k, v)| format!("{}={}", k.get_ref(), v.get_ref().values().join(",")))
            .collect();
        format!("{}#pxweb-{api}:{}", self.table.get_ref(), select.join("&"))
    }

    /// The query, with each selection positioned by `at` (a span to a diagnostic); or the
    /// problems of selections that are not codes, `*` nor `top(N)`.
    pub fn query(
        &self,
        at: impl Fn(std::ops::Range<usize>, String) -> Diagnostic,
    ) -> Result<Query, Vec<Diagnostic>> {
        let mut select = Vec::new();
        let mut errors = Vec::new();
        for (k, v) in &self.select {
            match Selection::of(v.get_ref()) {
                Ok(selection) => select.push(Select {
                    variable: k.get_ref().clone(),
                    selection,
                    at: at(k.span(), String::new()),
                }),
                Err(m) => errors.push(at(v.span(), m)),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Query {
            api: self.api,
            table: self.table.get_ref().clone(),
            select,
        })
    }
}

/// A table's variables as its metadata gives them, in the table's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub variables: Vec<Variable>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    pub code: String,
    pub values: Vec<String>,
    pub time: bool,
}

/// The service's limits: cells per request, and calls per time window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_cells: u64,
    pub max_calls: u32,
    pub window: Duration,
}

/// Reads the service's config: v1 `?config` (`maxValues`, `maxCalls`, `timeWindow`) or v2
/// `config` (`maxDataCells`, `maxCallsPerTimeWindow`, `timeWindow`), the window in seconds.
pub fn limits(api: Api, body: &[u8]) -> Result<Limits, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON ({e})"))?;
    let (cells, calls) = match api {
        Api::V1 => ("maxValues", "maxCalls"),
        Api::V2 => ("maxDataCells", "maxCallsPerTimeWindow"),
    };
    let number = |k: &str| {
        v.get(k)
            .and_then(|n| n.as_u64().or_else(|| n.as_str()?.parse().ok()))
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("no positive `{k}`, expected the service's limits"))
    };
    Ok(Limits {
        max_cells: number(cells)?,
        max_calls: u32::try_from(number(calls)?).unwrap_or(u32::MAX),
        window: Duration::from_secs(number("timeWindow")?),
    })
}

/// Reads a table's metadata: v1 `{"variables":[{"code","values","time"}]}`, v2 a JSON-stat 2
/// dataset (`id`, `dimension.*.category.index`, `role.time`).
pub fn table(api: Api, body: &[u8]) -> Result<Table, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON ({e})"))?;
    let variables = match api {
        Api::V1 => v1_variables(&v),
        Api::V2 => Dataset::of(&v).map(|d| {
            d.ids
                .iter()
                .zip(d.codes)
                .map(|(id, values)| Variable {
                    time: d.time.contains(id),
                    code: id.clone(),
                    values,
                })
                .collect()
        }),
    }?;
    if variables.is_empty() {
        return Err("no variables, expected the table's metadata".into());
    }
    Ok(Table { variables })
}

fn v1_variables(v: &Value) -> Result<Vec<Variable>, String> {
    let vars = v
        .get("variables")
        .and_then(Value::as_array)
        .ok_or("no `variables` array, expected PxWeb API v1 table metadata")?;
    vars.iter()
        .map(|var| {
            let code = var.get("code").and_then(Value::as_str);
            let values = var.get("values").and_then(strings);
            match (code, values) {
                (Some(code), Some(values)) => Ok(Variable {
                    code: code.to_string(),
                    values,
                    time: var.get("time").and_then(Value::as_bool).unwrap_or(false),
                }),
                _ => Err("a variable without `code` or `values`, expected both".to_string()),
            }
        })
        .collect()
}

fn strings(v: &Value) -> Option<Vec<String>> {
    v.as_array()?
        .iter()
        .map(|s| s.as_str().map(str::to_string))
        .collect()
}

/// Why a query cannot be asked: where in the config, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    pub at: Option<Diagnostic>,
    pub problem: String,
}

/// The requests that together ask what a query selects: each selects every variable as the
/// query does, but the split one (`split`), which each request narrows to a run of its values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Per request, the values of the split variable (empty when the query is not split).
    pub chunks: Vec<Vec<String>>,
    /// The split variable's code.
    pub split: Option<String>,
}

/// Resolves the query against `table` (every variable and value must exist) and splits it
/// along the variable that needs the fewest requests within `max_cells` (time on a tie).
pub fn plan(query: &Query, table: &Table, max_cells: u64) -> Result<Plan, QueryError> {
    let resolved = resolve(query, table)?;
    let cells: u64 = resolved.iter().map(|(_, v)| v.len() as u64).product();
    if cells <= max_cells {
        return Ok(Plan {
            chunks: vec![Vec::new()],
            split: None,
        });
    }
    let mut best: Option<(u64, bool, usize, u64)> = None;
    for (i, (var, values)) in resolved.iter().enumerate() {
        let n = values.len() as u64;
        let others = cells / n;
        if n < 2 || others > max_cells {
            continue;
        }
        let per = max_cells / others;
        let requests = n.div_ceil(per);
        let candidate = (requests, !var.time, i, per);
        if best.is_none_or(|b| (candidate.0, candidate.1) < (b.0, b.1)) {
            best = Some(candidate);
        }
    }
    let Some((_, _, i, per)) = best else {
        return Err(QueryError {
            at: None,
            problem: format!(
                "the selection is {cells} cells, and no one variable splits it into requests of at most {max_cells} (the service's limit), expected a narrower selection"
            ),
        });
    };
    let (var, values) = &resolved[i];
    let per = usize::try_from(per).unwrap_or(usize::MAX);
    Ok(Plan {
        chunks: values.chunks(per).map(<[String]>::to_vec).collect(),
        split: Some(var.code.clone()),
    })
}

/// Each selected variable of the table with the values its selection names, in table order;
/// a variable not selected counts as one value (the service eliminates it or picks a default).
fn resolve<'a>(
    query: &Query,
    table: &'a Table,
) -> Result<Vec<(&'a Variable, Vec<String>)>, QueryError> {
    for s in &query.select {
        if !table.variables.iter().any(|v| v.code == s.variable) {
            let codes: Vec<&str> = table.variables.iter().map(|v| v.code.as_str()).collect();
            return Err(QueryError {
                at: Some(s.at.clone()),
                problem: format!(
                    "unknown variable `{}` in table {}, expected one of {}",
                    s.variable,
                    query.table,
                    listed(&codes)
                ),
            });
        }
    }
    let mut out = Vec::new();
    for var in &table.variables {
        let Some(s) = query.select.iter().find(|s| s.variable == var.code) else {
            out.push((var, vec![String::new()]));
            continue;
        };
        let values = match &s.selection {
            Selection::All => var.values.clone(),
            Selection::Top(n) if var.time => {
                var.values[var.values.len().saturating_sub(*n)..].to_vec()
            }
            Selection::Top(n) => var.values.iter().take(*n).cloned().collect(),
            Selection::Codes(codes) => {
                if let Some(bad) = codes.iter().find(|c| !var.values.contains(c)) {
                    let all: Vec<&str> = var.values.iter().map(String::as_str).collect();
                    return Err(QueryError {
                        at: Some(s.at.clone()),
                        problem: format!(
                            "unknown value `{bad}` of variable `{}` in table {}, expected one of {}",
                            var.code,
                            query.table,
                            listed(&all)
                        ),
                    });
                }
                // In table order, as the service answers.
                var.values
                    .iter()
                    .filter(|v| codes.contains(v))
                    .cloned()
                    .collect()
            }
        };
        out.push((var, values));
    }
    Ok(out)
}

/// Up to 20 codes, then how many more.
fn listed(codes: &[&str]) -> String {
    let shown: Vec<String> = codes.iter().take(20).map(|c| format!("`{c}`")).collect();
    match codes.len().saturating_sub(20) {
        0 => shown.join(", "),
        more => format!("{} and {more} more", shown.join(", ")),
    }
}

/// The v1 POST body of request `chunk` of `plan`.
pub fn v1_body(query: &Query, plan: &Plan, chunk: usize) -> Bytes {
    let items: Vec<Value> = query
        .select
        .iter()
        .map(|s| {
            let selection = match narrowed(s, plan, chunk) {
                Some(codes) => Selection::Codes(codes.to_vec()).v1(),
                None => s.selection.v1(),
            };
            serde_json::json!({ "code": s.variable, "selection": selection })
        })
        .collect();
    let body = serde_json::json!({ "query": items, "response": { "format": "json-stat2" } });
    Bytes::from(body.to_string())
}

/// The v2 GET URL of request `chunk` of `plan`.
pub fn v2_url(query: &Query, plan: &Plan, chunk: usize) -> Result<String, String> {
    let mut url = v2_endpoint(&query.table, "data")?;
    {
        let mut q = url.query_pairs_mut();
        for s in &query.select {
            let codes = match narrowed(s, plan, chunk) {
                Some(codes) => codes.join(","),
                None => s.selection.v2(),
            };
            q.append_pair(&format!("valueCodes[{}]", s.variable), &codes);
        }
        q.append_pair("outputFormat", "json-stat2");
    }
    Ok(url.to_string())
}

/// The codes of the split variable in request `chunk`, when `s` is the split one.
fn narrowed<'a>(s: &Select, plan: &'a Plan, chunk: usize) -> Option<&'a [String]> {
    (plan.split.as_deref() == Some(s.variable.as_str())).then(|| plan.chunks[chunk].as_slice())
}

/// `…/tables/{id}/{what}`, keeping the table URL's query (`lang`).
fn v2_endpoint(table: &str, what: &str) -> Result<reqwest::Url, String> {
    let mut url = reqwest::Url::parse(table).map_err(|e| format!("not a URL ({e})"))?;
    let path = format!("{}/{what}", url.path().trim_end_matches('/'));
    url.set_path(&path);
    Ok(url)
}

/// The URL of the service's limits: v1 `<api root>/<language>/?config` (the path up to the
/// segment after `v1`), v2 `<api root>/config` (the path before `/tables/`).
pub fn config_url(api: Api, table: &str) -> Result<String, String> {
    let mut url = reqwest::Url::parse(table).map_err(|e| format!("not a URL ({e})"))?;
    let segments: Vec<String> = url.path().split('/').map(str::to_string).collect();
    let path = match api {
        Api::V1 => {
            // The language follows the version, after a database name at some offices
            // (Statistics Sweden: `/OV0104/v1/doris/en/ssd/…`).
            let language = |s: &String| s.len() == 2 && s.bytes().all(|b| b.is_ascii_lowercase());
            let v = segments
                .iter()
                .position(|s| s.len() == 2 && s.starts_with('v') && s[1..].parse::<u8>().is_ok());
            let lang = v.and_then(|v| Some(v + 1 + segments[v + 1..].iter().position(language)?));
            let end = lang.ok_or(
                "no `v1/<lang>` in the table's path, expected …/api/v1/<lang>/<table path>",
            )? + 1;
            url.set_query(Some("config"));
            format!("{}/", segments[..end].join("/"))
        }
        Api::V2 => {
            let t = segments
                .iter()
                .rposition(|s| s == "tables")
                .ok_or("no `tables` segment in the table's path, expected …/api/v2/tables/<id>")?;
            url.set_query(None);
            format!("{}/config", segments[..t].join("/"))
        }
    };
    url.set_path(&path);
    Ok(url.to_string())
}

/// The metadata URL: v1 the table itself, v2 `tables/{id}/metadata` in JSON-stat 2.
pub fn metadata_url(api: Api, table: &str) -> Result<String, String> {
    match api {
        Api::V1 => Ok(table.to_string()),
        Api::V2 => {
            let mut url = v2_endpoint(table, "metadata")?;
            url.query_pairs_mut()
                .append_pair("outputFormat", "json-stat2");
            Ok(url.to_string())
        }
    }
}

/// A JSON-stat 2 dataset's layout: dimension ids, each one's category codes in order, and
/// which are time.
struct Dataset {
    ids: Vec<String>,
    codes: Vec<Vec<String>>,
    time: Vec<String>,
}

impl Dataset {
    fn of(v: &Value) -> Result<Dataset, String> {
        let ids = v
            .get("id")
            .and_then(strings)
            .ok_or("no `id` array, expected a JSON-stat 2 dataset")?;
        let mut codes = Vec::new();
        for id in &ids {
            let index = v
                .pointer(&format!("/dimension/{}/category/index", pointer(id)))
                .ok_or_else(|| format!("dimension `{id}` has no category index"))?;
            codes.push(category_codes(index).ok_or_else(|| {
                format!("dimension `{id}`'s category index is neither an array nor an object")
            })?);
        }
        let time = v
            .pointer("/role/time")
            .and_then(strings)
            .unwrap_or_default();
        Ok(Dataset { ids, codes, time })
    }

    fn cells(&self) -> usize {
        self.codes.iter().map(Vec::len).product()
    }
}

/// A JSON pointer token (RFC 6901).
fn pointer(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

fn category_codes(index: &Value) -> Option<Vec<String>> {
    match index {
        Value::Array(_) => strings(index),
        Value::Object(m) => {
            let mut pairs: Vec<(u64, &String)> = m
                .iter()
                .map(|(k, p)| Some((p.as_u64()?, k)))
                .collect::<Option<_>>()?;
            pairs.sort();
            Some(pairs.into_iter().map(|(_, k)| k.clone()).collect())
        }
        _ => None,
    }
}

/// Each cell of a dataset's `value` or `status` (array, sparse object, or one string for all).
fn cells_of(v: Option<&Value>, n: usize) -> Vec<Option<Value>> {
    match v {
        Some(Value::Array(a)) => (0..n)
            .map(|i| a.get(i).filter(|x| !x.is_null()).cloned())
            .collect(),
        Some(Value::Object(m)) => {
            let mut out = vec![None; n];
            for (k, x) in m {
                if let Some(slot) = k.parse::<usize>().ok().and_then(|i| out.get_mut(i)) {
                    *slot = Some(x.clone()).filter(|x| !x.is_null());
                }
            }
            out
        }
        Some(s @ Value::String(_)) => vec![Some(s.clone()); n],
        _ => vec![None; n],
    }
}

/// Joins the JSON-stat 2 answers of a split query into the one dataset a single request would
/// have answered: the split dimension's categories end to end, every cell in its place.
pub fn join(parts: &[Bytes], split: Option<&str>) -> Result<Bytes, String> {
    let Some(split) = split else {
        return parts.first().cloned().ok_or("no answer".into());
    };
    let docs: Vec<Value> = parts
        .iter()
        .map(|b| serde_json::from_slice(b).map_err(|e| format!("an answer is not JSON ({e})")))
        .collect::<Result<_, _>>()?;
    let layouts: Vec<Dataset> = docs.iter().map(Dataset::of).collect::<Result<_, _>>()?;
    let Some(first) = layouts.first() else {
        return Err("no answer".into());
    };
    let d = first
        .ids
        .iter()
        .position(|i| i == split)
        .ok_or_else(|| format!("the answers have no dimension `{split}`"))?;
    let mut codes = first.codes.clone();
    codes[d].clear();
    for l in &layouts {
        let same = l.ids == first.ids
            && l.codes
                .iter()
                .zip(&first.codes)
                .enumerate()
                .all(|(k, (a, b))| k == d || a == b);
        if !same {
            return Err(format!(
                "the answers differ in dimensions other than `{split}`, expected the same"
            ));
        }
        codes[d].extend(l.codes[d].iter().cloned());
    }
    let distinct: std::collections::BTreeSet<&String> = codes[d].iter().collect();
    if distinct.len() != codes[d].len() {
        return Err(format!(
            "the answers repeat values of `{split}`, expected each in one answer"
        ));
    }
    let total: usize = codes.iter().map(Vec::len).product();
    let mut values = vec![Value::Null; total];
    let mut status = Map::new();
    let mut offset = 0;
    for (doc, l) in docs.iter().zip(&layouts) {
        let n = l.cells();
        let part_values = cells_of(doc.get("value"), n);
        let part_status = cells_of(doc.get("status"), n);
        for cell in 0..n {
            let at = place(cell, &l.codes, &codes, d, offset);
            if let Some(v) = &part_values[cell] {
                values[at] = v.clone();
            }
            if let Some(s) = &part_status[cell] {
                status.insert(at.to_string(), s.clone());
            }
        }
        offset += l.codes[d].len();
    }
    let mut out = docs[0].clone();
    merge_dimension(&mut out, &docs, split, &codes[d]);
    let sizes: Vec<Value> = codes.iter().map(|c| Value::from(c.len())).collect();
    out["size"] = Value::Array(sizes);
    out["value"] = Value::Array(values);
    match status.is_empty() {
        true => drop(out.as_object_mut().and_then(|o| o.remove("status"))),
        false => out["status"] = Value::Object(status),
    }
    Ok(Bytes::from(out.to_string()))
}

/// Where cell `cell` of a part (dimension sizes `part`) lands in the joined dataset (`all`),
/// its split dimension `d` shifted by `offset`.
fn place(cell: usize, part: &[Vec<String>], all: &[Vec<String>], d: usize, offset: usize) -> usize {
    let mut rest = cell;
    let mut coords = vec![0; part.len()];
    for k in (0..part.len()).rev() {
        let n = part[k].len().max(1);
        coords[k] = rest % n;
        rest /= n;
    }
    coords[d] += offset;
    coords
        .iter()
        .zip(all)
        .fold(0, |acc, (c, codes)| acc * codes.len() + c)
}

/// The split dimension's category of the joined dataset: every part's codes in order, and
/// the union of their labels and units.
fn merge_dimension(out: &mut Value, docs: &[Value], split: &str, codes: &[String]) {
    let path = format!("/dimension/{}/category", pointer(split));
    let mut category = out.pointer(&path).cloned().unwrap_or(Value::Null);
    let index: Map<String, Value> = codes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.clone(), Value::from(i)))
        .collect();
    category["index"] = Value::Object(index);
    for member in ["label", "unit"] {
        let merged: Map<String, Value> = docs
            .iter()
            .filter_map(|d| d.pointer(&format!("{path}/{member}"))?.as_object())
            .flat_map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())))
            .collect();
        if !merged.is_empty() {
            category[member] = Value::Object(merged);
        }
    }
    if let Some(slot) = out.pointer_mut(&path) {
        *slot = category;
    }
}

/// Keeps a service's calls within `max_calls` per `window`: a call waits until the oldest of
/// the last `max_calls` is a window old. Lives as long as its source, across fetches.
#[derive(Debug, Default)]
pub struct Pacer {
    calls: Mutex<VecDeque<tokio::time::Instant>>,
}

impl Pacer {
    /// Waits, if need be, until a call is allowed, and counts it.
    pub async fn call(&self, limits: &Limits) {
        loop {
            let wait = {
                let mut calls = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
                let now = tokio::time::Instant::now();
                while calls.front().is_some_and(|t| now - *t >= limits.window) {
                    calls.pop_front();
                }
                if calls.len() < limits.max_calls as usize {
                    calls.push_back(now);
                    return;
                }
                calls.front().map(|t| *t + limits.window - now)
            };
            if let Some(w) = wait {
                tokio::time::sleep(w).await;
            }
        }
    }
}

/// Makes one call within the limits, again after a 429 that asks for a short wait (at most
/// [`MAX_RETRY_WAIT`], [`MAX_RETRIES`] times); a longer wait fails the fetch, and the refresh
/// loop waits as asked.
pub async fn paced<T, F, Fut>(pacer: &Pacer, limits: &Limits, call: F) -> Result<T, FetchError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, FetchError>>,
{
    let mut retries = 0;
    loop {
        pacer.call(limits).await;
        match call().await {
            Err(FetchError::HttpStatus {
                status: reqwest::StatusCode::TOO_MANY_REQUESTS,
                retry_after: Some(wait),
                ..
            }) if wait <= MAX_RETRY_WAIT && retries < MAX_RETRIES => {
                retries += 1;
                tokio::time::sleep(wait).await;
            }
            other => return other,
        }
    }
}

/// Fetches a PxWeb query with a source's settings: the service's limits, the table's
/// metadata, then the planned data requests, joined.
pub struct Client {
    fetcher: Fetcher,
    query: Arc<Query>,
    pacer: Pacer,
    /// The limits the service gave last, which pace the next fetch's first call.
    known: Mutex<Option<Limits>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("query", &self.query)
            .finish_non_exhaustive()
    }
}

/// Before the service's limits are first read there is no call to count against them.
const FIRST_LIMITS: Limits = Limits {
    max_cells: u64::MAX,
    max_calls: u32::MAX,
    window: Duration::ZERO,
};

impl Client {
    pub fn new(settings: &FetchSettings, query: Arc<Query>) -> Result<Client, BuildError> {
        Ok(Client {
            fetcher: Fetcher::new(settings)?,
            query,
            pacer: Pacer::default(),
            known: Mutex::default(),
        })
    }

    pub fn settings(&self) -> &FetchSettings {
        self.fetcher.settings()
    }

    /// One fetch of the whole query. Conditional requests do not apply to a query made of
    /// several requests: the body is always whole, and an unchanged one costs no parse.
    pub async fn fetch(&self) -> Result<Fetched, FetchError> {
        let q = &self.query;
        let shown = fetch::redact(&q.table);
        let invalid = |problem: String| FetchError::InvalidUrl {
            url: shown.clone(),
            problem,
        };
        let config = config_url(q.api, &q.table).map_err(invalid)?;
        let last = *self.known.lock().unwrap_or_else(PoisonError::into_inner);
        let first = last.unwrap_or(FIRST_LIMITS);
        let body = paced(&self.pacer, &first, || self.get(&config)).await?;
        let limits = limits(q.api, &body).map_err(|e| self.query_error(&config, None, e))?;
        *self.known.lock().unwrap_or_else(PoisonError::into_inner) = Some(limits);
        let meta = metadata_url(q.api, &q.table).map_err(invalid)?;
        let body = paced(&self.pacer, &limits, || self.get(&meta)).await?;
        let table = table(q.api, &body).map_err(|e| self.query_error(&meta, None, e))?;
        let plan = plan(q, &table, limits.max_cells)
            .map_err(|e| self.query_error(&q.table, e.at, e.problem))?;
        let mut parts = Vec::with_capacity(plan.chunks.len());
        for chunk in 0..plan.chunks.len() {
            let body = match q.api {
                Api::V1 => {
                    let post = v1_body(q, &plan, chunk);
                    paced(&self.pacer, &limits, || self.post(&q.table, &post)).await?
                }
                Api::V2 => {
                    let url = v2_url(q, &plan, chunk).map_err(invalid)?;
                    paced(&self.pacer, &limits, || self.get(&url)).await?
                }
            };
            parts.push(body);
        }
        let body =
            join(&parts, plan.split.as_deref()).map_err(|e| self.query_error(&q.table, None, e))?;
        Ok(Fetched::Body {
            body,
            validators: Validators::default(),
        })
    }

    async fn get(&self, url: &str) -> Result<Bytes, FetchError> {
        self.fetcher
            .fetch(url, &Validators::default())
            .await
            .map(whole)
    }

    async fn post(&self, url: &str, body: &Bytes) -> Result<Bytes, FetchError> {
        self.fetcher.post_json(url, body.clone()).await.map(whole)
    }

    fn query_error(&self, url: &str, at: Option<Diagnostic>, problem: String) -> FetchError {
        FetchError::Query {
            url: fetch::redact(url),
            at: at.map(Box::new),
            problem,
        }
    }
}

/// The body of an answer to a request without validators (which a 304 cannot answer).
fn whole(fetched: Fetched) -> Bytes {
    match fetched {
        Fetched::Body { body, .. } => body,
        Fetched::NotModified => Bytes::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn at(what: &str) -> Diagnostic {
        Diagnostic::at(Path::new("c.toml"), 9, 1, what)
    }

    fn query(select: &[(&str, Selection)]) -> Query {
        Query {
            api: Api::V1,
            table: "http://h/api/v1/en/ssd/PR/KPI".into(),
            select: select
                .iter()
                .map(|(v, s)| Select {
                    variable: v.to_string(),
                    selection: s.clone(),
                    at: at(v),
                })
                .collect(),
        }
    }

    fn codes(prefix: &str, n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{prefix}{i:02}")).collect()
    }

    /// Product groups (12) by months (27), as the SCB CPI table.
    fn cpi() -> Table {
        Table {
            variables: vec![
                Variable {
                    code: "Group".into(),
                    values: codes("G", 12),
                    time: false,
                },
                Variable {
                    code: "Tid".into(),
                    values: codes("M", 27),
                    time: true,
                },
            ],
        }
    }

    #[test]
    fn a_query_within_the_limit_is_one_request() {
        let q = query(&[("Group", Selection::All), ("Tid", Selection::Top(3))]);
        let p = plan(&q, &cpi(), 36).unwrap();
        assert_eq!(p.chunks.len(), 1);
        assert_eq!(p.split, None);
    }

    #[test]
    fn a_query_over_the_limit_is_split_along_the_variable_needing_fewest_requests() {
        let q = query(&[("Group", Selection::All), ("Tid", Selection::All)]);
        // 324 cells, 72 a request: 6 months a request (5 requests) beats 2 groups (6).
        let p = plan(&q, &cpi(), 72).unwrap();
        assert_eq!(p.split.as_deref(), Some("Tid"));
        assert_eq!(p.chunks.len(), 5);
        assert_eq!(p.chunks[0], codes("M", 6));
        assert_eq!(p.chunks[4], codes("M", 27)[24..].to_vec());
        // 108 a request: 9 months (3 requests) ties 4 groups (3 requests): time wins the tie.
        let p = plan(&q, &cpi(), 108).unwrap();
        assert_eq!(p.split.as_deref(), Some("Tid"));
        assert_eq!(p.chunks.len(), 3);
        // 30 a request: 1 group of 27 months (12 requests) beats 2 months of 12 groups (14).
        let p = plan(&q, &cpi(), 30).unwrap();
        assert_eq!((p.split.as_deref(), p.chunks.len()), (Some("Group"), 12));
        // 20 a request: a group's 27 months do not fit, a month's 12 groups do.
        let p = plan(&q, &cpi(), 20).unwrap();
        assert_eq!((p.split.as_deref(), p.chunks.len()), (Some("Tid"), 27));
        let e = plan(&q, &cpi(), 10).unwrap_err();
        assert!(e.problem.contains("324 cells"), "{}", e.problem);
    }

    #[test]
    fn groups_are_split_when_that_takes_fewer_requests() {
        let q = query(&[
            ("Group", Selection::All),
            ("Tid", Selection::Codes(vec!["M00".into(), "M01".into()])),
        ]);
        // 24 cells, 8 a request: 4 groups a request (3 requests); months cannot (12 > 8).
        let p = plan(&q, &cpi(), 8).unwrap();
        assert_eq!(p.split.as_deref(), Some("Group"));
        assert_eq!(
            p.chunks,
            vec![
                codes("G", 4),
                codes("G", 8)[4..].to_vec(),
                codes("G", 12)[8..].to_vec()
            ]
        );
    }

    #[test]
    fn top_takes_the_latest_periods_and_the_first_other_values() {
        let q = query(&[("Group", Selection::Top(2)), ("Tid", Selection::Top(3))]);
        let table = cpi();
        let r = resolve(&q, &table).unwrap();
        assert_eq!(r[0].1, vec!["G00", "G01"]);
        assert_eq!(r[1].1, vec!["M24", "M25", "M26"]);
    }

    #[test]
    fn an_unknown_variable_or_value_is_positioned_at_its_key_and_lists_the_table() {
        let q = query(&[(
            "Tid",
            Selection::Codes(vec!["M01".into(), "2031M01".into()]),
        )]);
        let e = plan(&q, &cpi(), 1000).unwrap_err();
        assert_eq!(e.at, Some(at("Tid")));
        assert!(
            e.problem.starts_with("unknown value `2031M01` of variable `Tid` in table http://h/api/v1/en/ssd/PR/KPI, expected one of `M00`, `M01`,"),
            "{}",
            e.problem
        );
        assert!(e.problem.ends_with("`M19` and 7 more"), "{}", e.problem);
        let q = query(&[("Region", Selection::All)]);
        let e = plan(&q, &cpi(), 1000).unwrap_err();
        assert_eq!(e.at, Some(at("Region")));
        assert!(
            e.problem.ends_with("expected one of `Group`, `Tid`"),
            "{}",
            e.problem
        );
    }

    #[test]
    fn selections_read_codes_all_and_top() {
        let one = |s: &str| Selection::of(&OneOrMany::One(s.into()));
        assert_eq!(one("*"), Ok(Selection::All));
        assert_eq!(one("top(12)"), Ok(Selection::Top(12)));
        assert_eq!(one("TOP(3)"), Ok(Selection::Top(3)));
        assert_eq!(
            one("000003TJ"),
            Ok(Selection::Codes(vec!["000003TJ".into()]))
        );
        assert!(one("top(0)").unwrap_err().contains("expected `top(N)`"));
        assert!(one("top(x)").is_err());
    }

    #[test]
    fn limits_read_both_apis() {
        let v1 =
            br#"{"maxValues":150000,"maxCells":150000,"maxCalls":30,"timeWindow":10,"CORS":true}"#;
        assert_eq!(
            limits(Api::V1, v1),
            Ok(Limits {
                max_cells: 150_000,
                max_calls: 30,
                window: Duration::from_secs(10)
            })
        );
        let v2 = br#"{"apiVersion":"2.0.0","maxDataCells":100000,"maxCallsPerTimeWindow":30,"timeWindow":10}"#;
        assert_eq!(limits(Api::V2, v2).unwrap().max_cells, 100_000);
        assert!(limits(Api::V2, v1).unwrap_err().contains("maxDataCells"));
    }

    #[test]
    fn urls_of_the_config_the_metadata_and_the_data() {
        let v1 = "http://h:1/api/v1/en/ssd/PR/PR0101/KPI2020M";
        assert_eq!(
            config_url(Api::V1, v1).unwrap(),
            "http://h:1/api/v1/en/?config"
        );
        let scb = "https://api.scb.se/OV0104/v1/doris/sv/ssd/PR/PR0101/PR0101A/KPItotM";
        assert_eq!(
            config_url(Api::V1, scb).unwrap(),
            "https://api.scb.se/OV0104/v1/doris/sv/?config"
        );
        assert!(config_url(Api::V1, "http://h/tables/x").is_err());
        assert_eq!(metadata_url(Api::V1, v1).unwrap(), v1);
        let v2 = "http://h:1/api/v2/tables/TAB5737?lang=en";
        assert_eq!(config_url(Api::V2, v2).unwrap(), "http://h:1/api/v2/config");
        assert_eq!(
            metadata_url(Api::V2, v2).unwrap(),
            "http://h:1/api/v2/tables/TAB5737/metadata?lang=en&outputFormat=json-stat2"
        );
        let mut q = query(&[("Group", Selection::Top(2)), ("Tid", Selection::All)]);
        q.table = v2.into();
        let p = Plan {
            chunks: vec![vec!["M00".into(), "M01".into()]],
            split: Some("Tid".into()),
        };
        assert_eq!(
            v2_url(&q, &p, 0).unwrap(),
            "http://h:1/api/v2/tables/TAB5737/data?lang=en&valueCodes%5BGroup%5D=top%282%29&valueCodes%5BTid%5D=M00%2CM01&outputFormat=json-stat2"
        );
        let body: Value = serde_json::from_slice(&v1_body(&q, &p, 0)).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"query": [
                {"code": "Group", "selection": {"filter": "top", "values": ["2"]}},
                {"code": "Tid", "selection": {"filter": "item", "values": ["M00", "M01"]}}
            ], "response": {"format": "json-stat2"}})
        );
    }

    /// A JSON-stat 2 dataset of `groups` by `months`, each cell's value from its codes, with
    /// a status on some cells and a missing value on one.
    fn dataset(groups: &[String], months: &[String]) -> Value {
        let mut values = Vec::new();
        let mut status = Map::new();
        for g in groups {
            for m in months {
                let i = values.len();
                let v: Value = if g == "G03" && m == "M05" {
                    Value::Null
                } else {
                    let (gi, mi): (u32, u32) = (g[1..].parse().unwrap(), m[1..].parse().unwrap());
                    serde_json::from_str(&format!("{}.{mi:02}", 100 + gi)).unwrap()
                };
                values.push(v);
                if m == "M07" {
                    status.insert(i.to_string(), Value::from(format!("p{g}")));
                }
            }
        }
        let index = |c: &[String]| -> Map<String, Value> {
            c.iter()
                .enumerate()
                .map(|(i, c)| (c.clone(), Value::from(i)))
                .collect()
        };
        let label = |c: &[String]| -> Map<String, Value> {
            c.iter()
                .map(|c| (c.clone(), Value::from(format!("label {c}"))))
                .collect()
        };
        serde_json::json!({
            "version": "2.0", "class": "dataset", "label": "CPI",
            "id": ["Group", "Tid"], "size": [groups.len(), months.len()],
            "role": {"time": ["Tid"]},
            "dimension": {
                "Group": {"label": "group", "category": {"index": index(groups), "label": label(groups)}},
                "Tid": {"label": "month", "category": {"index": index(months), "label": label(months)}}
            },
            "value": values, "status": status
        })
    }

    fn bytes(v: &Value) -> Bytes {
        Bytes::from(v.to_string())
    }

    #[test]
    fn joined_answers_are_the_one_answer_of_an_unlimited_request() {
        let (groups, months) = (codes("G", 12), codes("M", 27));
        let whole = dataset(&groups, &months);
        for (split, max) in [("Tid", 72), ("Group", 54)] {
            let q = query(&[("Group", Selection::All), ("Tid", Selection::All)]);
            let p = plan(&q, &cpi(), max).unwrap();
            assert_eq!(p.split.as_deref(), Some(split));
            let parts: Vec<Bytes> = p
                .chunks
                .iter()
                .map(|c| match split {
                    "Tid" => bytes(&dataset(&groups, c)),
                    _ => bytes(&dataset(c, &months)),
                })
                .collect();
            assert!(parts.len() > 1);
            let joined: Value =
                serde_json::from_slice(&join(&parts, Some(split)).unwrap()).unwrap();
            assert_eq!(joined["value"], whole["value"], "split along {split}");
            assert_eq!(joined["status"], whole["status"]);
            assert_eq!(joined["size"], whole["size"]);
            assert_eq!(joined["dimension"], whole["dimension"]);
            assert_eq!(joined, whole);
        }
    }

    #[test]
    fn answers_that_differ_outside_the_split_dimension_are_refused() {
        let months = codes("M", 4);
        let a = dataset(&codes("G", 2), &months[..2]);
        let b = dataset(&codes("G", 3), &months[2..]);
        let e = join(&[bytes(&a), bytes(&b)], Some("Tid")).unwrap_err();
        assert!(e.contains("differ in dimensions other than `Tid`"), "{e}");
        let c = dataset(&codes("G", 2), &months[1..3]);
        let e = join(&[bytes(&a), bytes(&c)], Some("Tid")).unwrap_err();
        assert!(e.contains("repeat values of `Tid`"), "{e}");
        assert_eq!(join(&[], Some("Tid")), Err("no answer".to_string()));
    }

    fn limits_of(max_calls: u32, secs: u64) -> Limits {
        Limits {
            max_cells: 1000,
            max_calls,
            window: Duration::from_secs(secs),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn calls_beyond_the_limit_wait_for_the_window() {
        let pacer = Pacer::default();
        let limits = limits_of(3, 10);
        let start = tokio::time::Instant::now();
        let mut times = Vec::new();
        for _ in 0..7 {
            pacer.call(&limits).await;
            times.push((tokio::time::Instant::now() - start).as_secs());
        }
        assert_eq!(times, vec![0, 0, 0, 10, 10, 10, 20]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_is_retried_after_its_retry_after() {
        let pacer = Pacer::default();
        let limits = limits_of(100, 10);
        let start = tokio::time::Instant::now();
        let asked = Mutex::new(Vec::new());
        let too_many = |secs| FetchError::HttpStatus {
            url: "http://h/x".into(),
            status: reqwest::StatusCode::TOO_MANY_REQUESTS,
            retry_after: Some(Duration::from_secs(secs)),
        };
        let r = paced(&pacer, &limits, || {
            let mut a = asked.lock().unwrap();
            a.push((tokio::time::Instant::now() - start).as_secs());
            let n = a.len();
            async move {
                match n {
                    1 => Err(too_many(7)),
                    _ => Ok(n),
                }
            }
        })
        .await;
        assert_eq!(r, Ok(2));
        assert_eq!(*asked.lock().unwrap(), vec![0, 7]);
        // A wait longer than a short pause fails the fetch: the refresh loop honours it.
        let r: Result<usize, _> = paced(&pacer, &limits, || async { Err(too_many(3600)) }).await;
        assert_eq!(
            r.unwrap_err().retry_after(),
            Some(Duration::from_secs(3600))
        );
    }
}
