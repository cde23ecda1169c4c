//! Stage 1 of the pipeline: the text of `config.toml` -> typed [`Config`].
//!
//! Every problem of shape is reported in one run: all syntax errors toml can recover from, then
//! every unknown key of every table, then, per table, a missing key or a wrong type (each
//! `[[metric]]`, `[[input]]`, sample … is read on its own, so one bad table hides no other).
//! Fields that a later stage checks keep their position through `toml::Spanned`.

pub mod catalog;
pub mod shard;

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use serde::de::{DeserializeOwned, Visitor};
use serde::Deserialize;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

use crate::diagnostic::{Diagnostic, Diagnostics, SourceMap};
use crate::source::fetch::FetchOptions;
use crate::source::pxweb::PxWebConfig;
use crate::source::sdmx_ml::SdmxMlOptions;
use crate::source::sdmx_query::{self, QueryConfig, Request, SdmxConfig};
use crate::source::workbook::ExcelOptions;
use crate::source::{csv::CsvOptions, json::JsonOptions, jsonstat::JsonStatOptions};
use crate::source::{pcaxis::PcAxisOptions, sdmx_csv::SdmxCsvOptions, sdmx_json::SdmxJsonOptions};
use crate::source::{Format, Options};

/// The whole configuration file.
#[derive(Debug)]
pub struct Config {
    pub dataset: Spanned<DatasetConfig>,
    /// Publications the samples cite, by id.
    pub sources: Vec<Spanned<SourceConfig>>,
    /// Display names of label values, exposed as `<prefix><label>_info`.
    pub labels: Vec<Spanned<LabelConfig>>,
    pub metrics: Vec<Spanned<MetricConfig>>,
    /// Data files in publishers' formats, each feeding one or more metrics.
    pub inputs: Vec<Spanned<InputConfig>>,
    /// Names of `[[metric]]` tables that could not be read (already reported): inputs that
    /// feed them are not reported again.
    pub unread_metrics: Vec<String>,
    /// How the dataset's remote sources (data files that are URLs) are fetched.
    pub fetch: Option<Spanned<FetchOptions>>,
    /// SDMX services added or changed for this dataset's queries.
    pub sdmx: Option<Spanned<SdmxConfig>>,
}

/// Only to name the top-level keys in messages.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct TopLevel {
    catalog: (),
    dataset: (),
    fetch: (),
    sdmx: (),
    source: (),
    label: (),
    metric: (),
    input: (),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetConfig {
    /// Short stable identifier, used as the `dataset` label of the exporter's own metrics.
    pub name: Spanned<String>,
    pub title: String,
    pub publisher: String,
    pub source_url: String,
    /// Publication date of the latest figures, `YYYY-MM-DD`.
    pub published: Spanned<String>,
    #[serde(default)]
    pub description: String,
    /// Prepended to every metric name of the dataset, e.g. `cnipa_`.
    pub metric_prefix: Spanned<String>,
    pub period: Option<Spanned<PeriodConfig>>,
    /// Longest label value or display name taken from the data, in bytes (default
    /// [`crate::dataset::DEFAULT_MAX_LABEL_VALUE_LENGTH`]; 0: no limit, as Prometheus's
    /// `label_value_length_limit`).
    pub max_label_value_length: Option<Spanned<i64>>,
}

/// Which label carries the reporting period, and the release calendar.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeriodConfig {
    pub label: Spanned<String>,
    /// `annual`, `semiannual`, `quarterly`, `monthly`, `weekly` or `daily`; metrics may set their own.
    pub cadence: Option<Spanned<String>>,
    /// Days after a period ends by which its figures are usually published.
    pub expected_release_lag_days: Option<Spanned<i64>>,
    /// Days after a period ends after which its figures count as overdue.
    pub overdue_release_lag_days: Option<Spanned<i64>>,
}

/// A metric's own release calendar, when it is not published with the rest of the dataset.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseConfig {
    pub expected_release_lag_days: Option<Spanned<i64>>,
    pub overdue_release_lag_days: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    pub id: Spanned<String>,
    pub title: String,
    #[serde(default)]
    pub url: String,
    /// `YYYY-MM-DD`.
    pub published: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelConfig {
    pub name: Spanned<String>,
    #[serde(default)]
    pub help: String,
    pub values: Vec<Spanned<LabelValueConfig>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelValueConfig {
    pub code: Spanned<String>,
    /// Display name by language code, e.g. `{ en = "Medium-sized enterprises", zh = "中型企业" }`.
    pub names: Spanned<BTreeMap<Spanned<String>, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricConfig {
    /// Name without prefix and unit suffix; both are added by the exporter.
    pub name: Spanned<String>,
    pub help: Spanned<String>,
    /// The unit as published; optional when an `[[input]]` gives it per observation.
    pub unit: Option<Spanned<String>>,
    /// The scale the published figures are in: `thousand`, `million`, `10k`, or a power of
    /// ten. (An `[[input]]`'s `multiplier` names a component holding one per observation.)
    pub scale: Option<Spanned<ScalarOrString>>,
    /// The base period of an index (`unit = "index"`), e.g. `2015` or `2015-Q1`.
    pub index_base: Option<Spanned<String>>,
    /// Label names; optional when the metric is fed only by `[[input]]`s.
    pub labels: Option<Spanned<Vec<Spanned<String>>>>,
    /// `annual`, `semiannual`, `quarterly`, `monthly`, `weekly` or `daily`; default: the dataset's, else the data's.
    pub cadence: Option<Spanned<String>>,
    /// The metric's own release calendar.
    pub release: Option<Spanned<ReleaseConfig>>,
    #[serde(skip)]
    pub samples: Vec<Spanned<SampleConfig>>,
    /// A CSV file of samples: a header with the label names and `value` (and optionally
    /// `source`, `basis`), relative to the config file.
    pub samples_file: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleConfig {
    pub labels: Spanned<BTreeMap<Spanned<String>, Spanned<String>>>,
    /// Optional here so that a missing value is reported with all other errors.
    pub value: Option<Spanned<f64>>,
    /// Id of a `[[source]]`.
    pub source: Option<Spanned<String>>,
    /// How the figure was published (as reported, rounded, derived …); documentation only.
    pub basis: Option<String>,
}

/// A TOML value that may be written as a number or as a word (`6` or `"million"`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum ScalarOrString {
    Integer(i64),
    Text(String),
}

/// One or several codes: `"Q"` or `["DE", "FR"]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn values(&self) -> Vec<&str> {
        match self {
            OneOrMany::One(s) => vec![s.as_str()],
            OneOrMany::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// A data file in a publisher's format, and how its components map to metrics and labels.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputConfig {
    /// The data file, relative to the config file, or its URL. Absent when `[input.pxweb]`
    /// names a table: then the query's key (see [`PxWebConfig::key`]).
    #[serde(default = "no_file")]
    pub file: Spanned<String>,
    /// An SDMX query instead of `file`: its URL is built from the service, dataflow and key.
    pub query: Option<Spanned<QueryConfig>>,
    /// The query's request, once resolved against the SDMX services.
    #[serde(skip)]
    pub request: Option<Request>,
    /// `csv`, `json`, `sdmx-csv`, `sdmx-json`, `json-stat`, `pc-axis`, `excel` or `sdmx-ml`.
    pub format: Spanned<String>,
    /// The `[[metric]]` every observation feeds.
    pub metric: Option<Spanned<String>>,
    /// The component whose code picks the metric (an indicator or measure column) …
    pub metric_dimension: Option<Spanned<String>>,
    /// … and which metric each code feeds; observations of other codes are skipped.
    pub metrics: Option<Spanned<BTreeMap<Spanned<String>, Spanned<String>>>>,
    /// Label name -> component id. Default: the metric's labels matched by id (case-blind), or
    /// else every dimension, lower-cased.
    pub labels: Option<Spanned<BTreeMap<Spanned<String>, Spanned<String>>>>,
    /// Drop an inferred label whose component has one value in the whole file.
    #[serde(default)]
    pub drop_single_valued: bool,
    /// Component id -> the codes to keep; other observations are skipped.
    pub filter: Option<Spanned<BTreeMap<Spanned<String>, Spanned<OneOrMany>>>>,
    /// The component holding the period. Default: the format's time component, else a column
    /// named like the period label, `period`, `year`, `time_period`, `time` or `date`.
    pub period: Option<Spanned<String>>,
    /// The component holding the value. Default: the format's measure, else `value` or
    /// `obs_value`.
    pub value: Option<Spanned<String>>,
    /// The component holding each observation's unit code (`UNIT_MEASURE`, `unit`).
    pub unit: Option<Spanned<String>>,
    /// Unit code in the file -> unit name, for codes the exporter does not know.
    pub unit_codes: Option<Spanned<BTreeMap<Spanned<String>, Spanned<String>>>>,
    /// The component holding a multiplier (`UNIT_MULT`, `POWERCODE`, a scale word).
    pub multiplier: Option<Spanned<String>>,
    /// The component holding the observation status (`OBS_STATUS`, `OBS_FLAG`, `status`).
    pub status: Option<Spanned<String>>,
    /// The component holding confidentiality (`OBS_CONF`, `CONF_STATUS`).
    pub confidentiality: Option<Spanned<String>>,
    /// Values that mean "no figure" (no sample, counted as missing), besides the defaults.
    pub missing: Option<Spanned<Vec<String>>>,
    /// `false`: `missing` replaces the default missing values instead of extending them.
    pub missing_defaults: Option<Spanned<bool>>,
    /// Value or status code -> why there is no figure (`missing`, `not_available`,
    /// `confidential`); a value listed here means no figure too.
    pub missing_reasons: Option<Spanned<BTreeMap<Spanned<String>, Spanned<String>>>>,
    /// The component holding the `[[source]]` id of each observation.
    pub source_column: Option<Spanned<String>>,
    /// The `[[source]]` every observation of this file comes from.
    pub source: Option<Spanned<String>>,
    /// Language of the display names the file gives (default `en`).
    pub language: Option<Spanned<String>>,
    pub csv: Option<Spanned<CsvOptions>>,
    pub json: Option<Spanned<JsonOptions>>,
    pub sdmx_csv: Option<Spanned<SdmxCsvOptions>>,
    pub sdmx_json: Option<Spanned<SdmxJsonOptions>>,
    pub json_stat: Option<Spanned<JsonStatOptions>>,
    pub pc_axis: Option<Spanned<PcAxisOptions>>,
    pub excel: Option<Spanned<ExcelOptions>>,
    pub sdmx_ml: Option<Spanned<SdmxMlOptions>>,
    /// How this file is fetched when it is a URL, over the dataset's `[fetch]`.
    pub fetch: Option<Spanned<FetchOptions>>,
    /// A PxWeb table queried instead of a file.
    pub pxweb: Option<Spanned<PxWebConfig>>,
    /// An SDMX-ML structure message (a file relative to the config file, or a URL fetched like
    /// `file`) for an SDMX input: its DSD says which component is a dimension, an attribute or
    /// the measure, its codelists give the codes' display names.
    pub structure: Option<Spanned<String>>,
}

/// `file` as written when the input has none.
fn no_file() -> Spanned<String> {
    Spanned::new(0..0, String::new())
}

/// Each input names exactly one of `file`, `[input.query]` and `[input.pxweb]`; a PxWeb
/// input's file is its query's key. An input with none is left out.
fn pxweb_inputs(
    map: &SourceMap,
    inputs: &mut Vec<Spanned<InputConfig>>,
    errs: &mut Vec<Diagnostic>,
) {
    inputs.retain_mut(|input| {
        let span = input.span();
        let i = input.get_mut();
        let no_file = i.file.span() == (0..0);
        match (&i.pxweb, no_file) {
            (Some(px), true) => {
                if i.format.get_ref() != Format::JsonStat.name() {
                    errs.push(map.diag(
                        i.format.span(),
                        format!(
                            "format `{}` with `[input.pxweb]`, expected \"json-stat\" (the query is answered in JSON-stat 2)",
                            crate::diagnostic::excerpt(i.format.get_ref())
                        ),
                    ));
                }
                i.file = Spanned::new(px.get_ref().table.span(), px.get_ref().key());
                true
            }
            (Some(px), false) => {
                errs.push(map.diag(
                    px.span(),
                    "`[input.pxweb]` and `file` both given, expected one of them",
                ));
                true
            }
            // A query that could not be resolved was reported by `resolve_queries`.
            (None, true) if i.query.is_some() => false,
            (None, true) => {
                errs.push(map.diag(
                    span.start..span.start,
                    "missing field `file`, expected a data file, a URL, `[input.query]` or `[input.pxweb]`",
                ));
                false
            }
            (None, false) => true,
        }
    });
}

impl InputConfig {
    /// The span of `format`'s options table in this input, when it is given.
    pub fn options_span(&self, format: Format) -> Option<Range<usize>> {
        match format {
            Format::Csv => self.csv.as_ref().map(|s| s.span()),
            Format::Json => self.json.as_ref().map(|s| s.span()),
            Format::SdmxCsv => self.sdmx_csv.as_ref().map(|s| s.span()),
            Format::SdmxJson => self.sdmx_json.as_ref().map(|s| s.span()),
            Format::JsonStat => self.json_stat.as_ref().map(|s| s.span()),
            Format::PcAxis => self.pc_axis.as_ref().map(|s| s.span()),
            Format::Excel => self.excel.as_ref().map(|s| s.span()),
            Format::SdmxMl => self.sdmx_ml.as_ref().map(|s| s.span()),
        }
    }

    /// `format`'s reader options as this input gives them, its defaults when absent; cloned
    /// once per load, not per row.
    pub fn options(&self, format: Format) -> Options {
        fn opts<T: Clone + Default>(o: &Option<Spanned<T>>) -> T {
            o.as_ref().map(|o| o.get_ref().clone()).unwrap_or_default()
        }
        match format {
            Format::Csv => Options::Csv(opts(&self.csv)),
            Format::Json => Options::Json(opts(&self.json)),
            Format::SdmxCsv => Options::SdmxCsv(opts(&self.sdmx_csv)),
            Format::SdmxJson => Options::SdmxJson(opts(&self.sdmx_json)),
            Format::JsonStat => Options::JsonStat(opts(&self.json_stat)),
            Format::PcAxis => Options::PcAxis(opts(&self.pc_axis)),
            Format::Excel => Options::Excel(opts(&self.excel)),
            Format::SdmxMl => Options::SdmxMl(opts(&self.sdmx_ml)),
        }
    }
}

/// The `[catalog]` table of the main config file: more datasets, each in a file of its own.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogConfig {
    /// Dataset config files, relative to the main config file.
    #[serde(default)]
    pub datasets: Vec<Spanned<String>>,
    /// A directory whose every `*.toml` file is one dataset config (a Kubernetes ConfigMap).
    pub directory: Option<Spanned<String>>,
}

/// What the main config file says about the catalogue: its `[catalog]` (default: none), and
/// whether the file holds a dataset itself (`[dataset]`).
#[derive(Debug)]
pub struct CatalogFile {
    pub catalog: Option<Spanned<CatalogConfig>>,
    pub has_dataset: bool,
}

/// Reads the catalogue part of the main config file. Syntax errors are reported here; the
/// rest of the file is checked when it is loaded as a dataset.
pub fn parse_catalog(path: &Path, text: &str) -> Result<CatalogFile, Diagnostics> {
    let map = SourceMap::new(path, text);
    let (root, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        return Err(Diagnostics::new(
            syntax.iter().map(|e| toml_error(&map, path, e)).collect(),
        ));
    }
    let mut root = root.into_inner();
    let mut errs = Vec::new();
    let catalog = match root.remove("catalog") {
        Some(v) => {
            let mut v = v;
            if let DeValue::Table(t) = v.get_mut() {
                check_keys(&map, t, fields::<CatalogConfig>(), "catalog", &mut errs);
            }
            read::<CatalogConfig>(&map, path, v, &mut errs)
        }
        None => None,
    };
    if !errs.is_empty() {
        return Err(Diagnostics::new(errs));
    }
    Ok(CatalogFile {
        catalog,
        has_dataset: root.contains_key("dataset"),
    })
}

/// Parses the config text, reporting every problem of shape it can find (the load takes
/// [`parse_partial`], which keeps the problems for the build to report with its own).
#[cfg(test)]
pub fn parse(path: &Path, text: &str) -> Result<Config, Diagnostics> {
    match parse_partial(path, text) {
        (Some(c), errs) if errs.is_empty() => Ok(c),
        (_, errs) => Err(Diagnostics::new(errs)),
    }
}

/// Like [`parse`], but also hands back what could be read despite errors, so that later
/// stages report their problems (a bad data row) in the same run. Tables that could not be
/// read are left out; `Config::unread_metrics` names the metrics among them.
pub fn parse_partial(path: &Path, text: &str) -> (Option<Config>, Vec<Diagnostic>) {
    let map = SourceMap::new(path, text);
    let mut errs = Vec::new();
    let (root, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        for e in syntax {
            errs.push(toml_error(&map, path, &e));
        }
        return (None, errs);
    }
    let root_span = root.span();
    let mut root = root.into_inner();
    check_keys(&map, &mut root, fields::<TopLevel>(), "", &mut errs);

    // Read by `parse_catalog`: which datasets the daemon serves, not part of this one.
    root.remove("catalog");
    let mut dataset = None;
    match root.remove("dataset") {
        Some(v) => dataset = read::<DatasetConfig>(&map, path, v, &mut errs),
        None => errs.push(map.diag(
            root_span.start..root_span.start,
            "missing table `[dataset]`, expected the dataset's name, title, publisher, source_url, published and metric_prefix",
        )),
    }
    let fetch = root
        .remove("fetch")
        .and_then(|v| read::<FetchOptions>(&map, path, v, &mut errs));
    let sources = read_array(&map, path, root.remove("source"), "source", &mut errs);
    let labels = read_array(&map, path, root.remove("label"), "label", &mut errs);
    let sdmx = root
        .remove("sdmx")
        .and_then(|v| read::<SdmxConfig>(&map, path, v, &mut errs));
    let mut inputs = read_array(&map, path, root.remove("input"), "input", &mut errs);
    resolve_queries(&map, sdmx.as_ref(), &mut inputs, &mut errs);
    pxweb_inputs(&map, &mut inputs, &mut errs);
    let mut metrics = Vec::new();
    let mut unread_metrics = Vec::new();
    if let Some(metric_tables) = root.remove("metric") {
        let items = match metric_tables.into_inner() {
            DeValue::Array(a) => a.to_vec(),
            other => {
                let v = Spanned::new(0..0, other);
                errs.push(type_error(
                    &map,
                    &v,
                    "metric",
                    "an array of tables `[[metric]]`",
                ));
                Vec::new()
            }
        };
        for item in items {
            let span = item.span();
            let DeValue::Table(mut t) = item.into_inner() else {
                errs.push(map.diag(span, "`metric` item is not a table, expected `[[metric]]`"));
                continue;
            };
            // Samples are read one by one, so one bad sample hides neither the others nor the
            // metric's other errors.
            let samples = t.remove("samples");
            let name = t
                .get("name")
                .and_then(|n| n.get_ref().as_str().map(str::to_string));
            let metric =
                read::<MetricConfig>(&map, path, Spanned::new(span, DeValue::Table(t)), &mut errs);
            let samples = read_array::<SampleConfig>(&map, path, samples, "samples", &mut errs);
            match metric {
                Some(mut m) => {
                    m.get_mut().samples = samples;
                    metrics.push(m);
                }
                None => unread_metrics.extend(name),
            }
        }
    }
    let config = dataset.map(|dataset| Config {
        dataset,
        sources,
        labels,
        metrics,
        inputs,
        unread_metrics,
        fetch,
        sdmx,
    });
    (config, errs)
}

/// Gives each input with an `[input.query]` its request and, as its `file`, the query's URL;
/// reports an input with both a file and a query, or neither.
fn resolve_queries(
    map: &SourceMap,
    sdmx: Option<&Spanned<SdmxConfig>>,
    inputs: &mut [Spanned<InputConfig>],
    errs: &mut Vec<Diagnostic>,
) {
    let overrides = sdmx
        .map(|s| s.get_ref().services.clone())
        .unwrap_or_default();
    let mut services = None;
    for input in inputs.iter_mut() {
        let i = input.get_mut();
        let Some(q) = &i.query else {
            continue;
        };
        if i.file.span() != (0..0) {
            errs.push(map.diag(
                i.file.span(),
                "input has both `file` and `[input.query]`, expected one of them",
            ));
            continue;
        }
        let services = services.get_or_insert_with(|| {
            sdmx_query::services(&overrides).unwrap_or_else(|problems| {
                errs.extend(problems.into_iter().map(|(at, m)| map.diag(at, m)));
                Default::default()
            })
        });
        match sdmx_query::request(q.get_ref(), q.span(), i.format.get_ref(), services) {
            Ok(r) => {
                // The input's own `structure` wins over the dataflow's.
                if q.get_ref().structure && i.structure.is_none() {
                    i.structure = Some(Spanned::new(q.span(), r.structure_url.clone()));
                }
                i.file = Spanned::new(q.span(), r.url.clone());
                i.request = Some(r);
            }
            Err((at, m)) => errs.push(map.diag(at, m)),
        }
    }
}

fn toml_error(map: &SourceMap, path: &Path, e: &toml::de::Error) -> Diagnostic {
    let message = e.message().trim_end().replace('\n', " ");
    match e.span() {
        Some(span) => map.diag(span, message),
        None => Diagnostic::file(path, message),
    }
}

fn type_error(map: &SourceMap, v: &Spanned<DeValue>, key: &str, expected: &str) -> Diagnostic {
    map.diag(
        v.span(),
        format!(
            "`{key}` is a {}, expected {expected}",
            v.get_ref().type_str()
        ),
    )
}

/// Deserializes one value on its own, so its errors are its own.
fn read<T: DeserializeOwned>(
    map: &SourceMap,
    path: &Path,
    v: Spanned<DeValue>,
    errs: &mut Vec<Diagnostic>,
) -> Option<Spanned<T>> {
    let span = v.span();
    let v_copy = v.clone();
    match T::deserialize(ValueDeserializer::from(v)) {
        Ok(t) => Some(Spanned::new(span, t)),
        Err(e) => {
            let mut d = toml_error(map, path, &e);
            if e.span().is_none() {
                d = map.diag(span, d.message);
            }
            if let Some(name) = missing_field(&e) {
                let all = all_missing::<T>(&v_copy, name);
                d.message = if all.len() == 1 {
                    format!("missing field `{}`", all[0])
                } else {
                    format!(
                        "missing fields {}",
                        all.iter()
                            .map(|f| format!("`{f}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
            }
            errs.push(d);
            None
        }
    }
}

/// The field an error says is missing.
fn missing_field(e: &toml::de::Error) -> Option<String> {
    let rest = e.message().strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_string())
}

/// Every required field missing from table `v`, the first being `first`: serde stops at one,
/// and a new config missing four would take four runs to learn them.
fn all_missing<T: DeserializeOwned>(v: &Spanned<DeValue>, first: String) -> Vec<String> {
    let mut missing = vec![first];
    let DeValue::Table(t) = v.get_ref() else {
        return missing;
    };
    let mut t = t.clone();
    // Each pass fills the last one found with a stand-in, so serde names the next.
    while missing.len() < 64 {
        let name = missing.last().expect("one").clone();
        t.insert(
            Spanned::new(0..0, name.into()),
            Spanned::new(0..0, DeValue::String(String::new().into())),
        );
        let table = Spanned::new(v.span(), DeValue::Table(t.clone()));
        match T::deserialize(ValueDeserializer::from(table)) {
            Err(e) => match missing_field(&e) {
                Some(next) if !missing.contains(&next) => missing.push(next),
                _ => break,
            },
            Ok(_) => break,
        }
    }
    missing
}

fn read_array<T: DeserializeOwned>(
    map: &SourceMap,
    path: &Path,
    v: Option<Spanned<DeValue>>,
    key: &str,
    errs: &mut Vec<Diagnostic>,
) -> Vec<Spanned<T>> {
    let Some(v) = v else { return Vec::new() };
    let span = v.span();
    match v.into_inner() {
        DeValue::Array(a) => a
            .iter()
            .cloned()
            .filter_map(|item| read::<T>(map, path, item, errs))
            .collect(),
        other => {
            errs.push(type_error(map, &Spanned::new(span, other), key, "an array"));
            Vec::new()
        }
    }
}

/// Keys that were renamed: (table, old key, what to write instead).
const RENAMED: &[(&str, &str, &str)] = &[(
    "metric",
    "multiplier",
    "`multiplier` of a [[metric]] is now `scale` (the scale its figures are published in: `scale = \"million\"`); `multiplier` names an [[input]]'s component that holds one per observation",
)];

/// Reports every key of `table` (and of the tables below it) that its struct does not have,
/// and removes them, so that reading the table reports its other problems.
fn check_keys(
    map: &SourceMap,
    table: &mut DeTable,
    known: &'static [&'static str],
    at: &str,
    errs: &mut Vec<Diagnostic>,
) {
    let unknown: Vec<(String, Range<usize>)> = table
        .iter()
        .filter(|(k, _)| !known.contains(&k.get_ref().as_ref()))
        .map(|(k, _)| (k.get_ref().to_string(), k.span()))
        .collect();
    let expected = known
        .iter()
        .map(|f| format!("`{f}`"))
        .collect::<Vec<_>>()
        .join(", ");
    for (k, span) in unknown {
        if let Some((_, _, why)) = RENAMED.iter().find(|(t, old, _)| *t == at && *old == k) {
            errs.push(map.diag(span, *why));
            table.remove(k.as_str());
            continue;
        }
        let what = if at.is_empty() {
            "top-level key"
        } else {
            "field"
        };
        errs.push(map.diag(
            span,
            format!(
                "unknown {what} `{}`, expected one of {expected}",
                crate::diagnostic::excerpt(&k)
            ),
        ));
        table.remove(k.as_str());
    }
    for (k, v) in table.iter_mut() {
        let child = if at.is_empty() {
            k.get_ref().to_string()
        } else {
            format!("{at}.{}", k.get_ref())
        };
        let Some(known) = table_type(&child).map(|t| t.keys) else {
            continue;
        };
        match v.get_mut() {
            DeValue::Table(t) => check_keys(map, t, known, &child, errs),
            DeValue::Array(a) => {
                for item in a.iter_mut() {
                    if let DeValue::Table(t) = item.get_mut() {
                        check_keys(map, t, known, &child, errs);
                    }
                }
            }
            _ => {}
        }
    }
}

/// A table of the config: its keys, and the type that parses it (for the JSON Schema's
/// value kinds).
struct TableType {
    keys: &'static [&'static str],
    #[cfg(test)]
    parse: fn(&str) -> Result<(), String>,
}

/// The table whose keys are `K`'s fields and which `T` parses (`[[metric]]` lists `samples`,
/// read apart from [`MetricConfig`]). `T` is used only where the schema is made.
#[cfg_attr(not(test), allow(clippy::extra_unused_type_parameters))]
fn table<K, T>() -> TableType
where
    K: serde::de::DeserializeOwned,
    T: serde::de::DeserializeOwned,
{
    TableType {
        keys: fields::<K>(),
        #[cfg(test)]
        parse: |text| {
            toml::from_str::<T>(text)
                .map(drop)
                .map_err(|e| e.message().to_string())
        },
    }
}

/// Each table of the config, by its dotted path (arrays are transparent).
fn table_type(path: &str) -> Option<TableType> {
    Some(match path {
        "dataset" => table::<DatasetConfig, DatasetConfig>(),
        "dataset.period" => table::<PeriodConfig, PeriodConfig>(),
        "source" => table::<SourceConfig, SourceConfig>(),
        "label" => table::<LabelConfig, LabelConfig>(),
        "label.values" => table::<LabelValueConfig, LabelValueConfig>(),
        "metric" => table::<MetricConfigKeys, MetricConfig>(),
        "metric.samples" => table::<SampleConfig, SampleConfig>(),
        "metric.release" => table::<ReleaseConfig, ReleaseConfig>(),
        "input" => table::<InputConfig, InputConfig>(),
        "fetch" | "input.fetch" => table::<FetchOptions, FetchOptions>(),
        "input.query" => table::<QueryConfig, QueryConfig>(),
        "sdmx" => table::<SdmxConfig, SdmxConfig>(),
        "input.csv" => table::<CsvOptions, CsvOptions>(),
        "input.json" => table::<JsonOptions, JsonOptions>(),
        "input.sdmx_csv" => table::<SdmxCsvOptions, SdmxCsvOptions>(),
        "input.sdmx_json" => table::<SdmxJsonOptions, SdmxJsonOptions>(),
        "input.json_stat" => table::<JsonStatOptions, JsonStatOptions>(),
        "input.excel" => table::<ExcelOptions, ExcelOptions>(),
        "input.sdmx_ml" => table::<SdmxMlOptions, SdmxMlOptions>(),
        "input.pxweb" => table::<PxWebConfig, PxWebConfig>(),
        "input.pc_axis" => table::<PcAxisOptions, PcAxisOptions>(),
        _ => return None,
    })
}

/// The tables of the config that are arrays of tables (`[[metric]]`).
#[cfg(test)]
const ARRAYS: &[&str] = &[
    "source",
    "label",
    "label.values",
    "metric",
    "metric.samples",
    "input",
];

/// The JSON types a key of a table takes, asked of the type that parses the table: a kind of
/// value is refused when parsing says "invalid type" for it (other problems, a value out of
/// range or a missing key, are the exporter's to report). None: any value.
#[cfg(test)]
fn value_types(t: &TableType, key: &str) -> Option<serde_json::Value> {
    const KINDS: &[(&str, &str)] = &[
        ("string", "\"x\""),
        ("integer", "1"),
        ("number", "1.5"),
        ("boolean", "true"),
        ("array", "[\"x\"]"),
        ("object", "{}"),
    ];
    let accepted: Vec<&str> = KINDS
        .iter()
        .filter(|(_, sample)| {
            let text = format!("{} = {sample}\n", toml_key(key));
            (t.parse)(&text)
                .err()
                .is_none_or(|e| !e.contains("invalid type"))
        })
        .map(|(kind, _)| *kind)
        .collect();
    if accepted.len() == KINDS.len() {
        return None;
    }
    // JSON Schema's "number" holds integers too.
    let kinds: Vec<&str> = if accepted.contains(&"number") {
        accepted.into_iter().filter(|k| *k != "integer").collect()
    } else {
        accepted
    };
    Some(match kinds.as_slice() {
        [one] => serde_json::json!(one),
        many => serde_json::json!(many),
    })
}

/// A key as TOML writes it.
#[cfg(test)]
fn toml_key(key: &str) -> String {
    if key
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        key.to_string()
    } else {
        format!("{key:?}")
    }
}

/// A JSON Schema (draft 2020-12) of dataset and catalogue config files, made from the same
/// types that parse them: their keys ([`table_type`]) and the kinds of value each key takes
/// ([`value_types`]), so editors with TOML schema support complete keys and flag unknown keys
/// and values of the wrong kind. Values' ranges and names stay the exporter's checks, with
/// their positions. A test writes it to schema/config.schema.json.
#[cfg(test)]
pub fn json_schema() -> serde_json::Value {
    fn object(path: &str, t: &TableType) -> serde_json::Value {
        let properties: serde_json::Map<String, serde_json::Value> = t
            .keys
            .iter()
            .map(|k| {
                let child = if path.is_empty() {
                    k.to_string()
                } else {
                    format!("{path}.{k}")
                };
                // The catalogue's keys are checked by the catalogue, not by `table_type`.
                let child_type = match child.as_str() {
                    "catalog" => Some(table::<CatalogConfig, CatalogConfig>()),
                    c => table_type(c),
                };
                let v = match child_type {
                    Some(ct) if ARRAYS.contains(&child.as_str()) => {
                        serde_json::json!({"type": "array", "items": object(&child, &ct)})
                    }
                    Some(ct) => object(&child, &ct),
                    None => match value_types(t, k) {
                        Some(kind) => serde_json::json!({ "type": kind }),
                        None => serde_json::Value::Bool(true),
                    },
                };
                (k.to_string(), v)
            })
            .collect();
        serde_json::json!({
            "type": "object",
            "properties": properties,
            "additionalProperties": false,
        })
    }
    let mut root = object("", &table::<TopLevel, TopLevel>());
    let obj = root.as_object_mut().expect("an object");
    obj.insert(
        "$schema".into(),
        "https://json-schema.org/draft/2020-12/schema".into(),
    );
    obj.insert(
        "title".into(),
        "indicator_exporter dataset or catalogue config".into(),
    );
    root
}

/// The keys of `[[metric]]`: [`MetricConfig`]'s plus `samples`, which is read separately.
#[derive(Deserialize)]
#[allow(dead_code)]
struct MetricConfigKeys {
    name: (),
    help: (),
    unit: (),
    scale: (),
    index_base: (),
    labels: (),
    cadence: (),
    release: (),
    samples: (),
    samples_file: (),
}

/// The field names of a struct, as its `Deserialize` implementation knows them.
fn fields<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    struct Fields(&'static [&'static str]);
    #[derive(Debug)]
    struct Stop;
    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("stop")
        }
    }
    impl std::error::Error for Stop {}
    impl serde::de::Error for Stop {
        fn custom<M: std::fmt::Display>(_: M) -> Self {
            Stop
        }
    }
    struct Probe<'a>(&'a mut Fields);
    impl<'de> serde::Deserializer<'de> for Probe<'_> {
        type Error = Stop;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            self.0 .0 = fields;
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }
    let mut f = Fields(&[]);
    let _ = T::deserialize(Probe(&mut f));
    f.0
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_published_json_schema_is_generated_from_the_config_types() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/config.schema.json");
        let want = serde_json::to_string_pretty(&super::json_schema()).unwrap() + "\n";
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(path, &want).unwrap();
        }
        assert_eq!(std::fs::read_to_string(path).unwrap_or_default(), want);
    }

    use super::*;

    fn err(text: &str) -> String {
        parse(Path::new("c.toml"), text).unwrap_err().to_string()
    }

    const HEAD: &str = r#"
[dataset]
name = "d"
title = "t"
publisher = "p"
source_url = "u"
published = "2025-01-01"
metric_prefix = "x_"
"#;

    #[test]
    fn syntax_error_has_position() {
        let e = err("[dataset]\nname = \"x\n");
        assert!(e.starts_with("c.toml:2:"), "{e}");
    }

    #[test]
    fn unknown_key_is_named_with_position() {
        let e = err("[dataset]\nnme = \"x\"\n");
        assert!(
            e.contains("\nc.toml:2:1: unknown field `nme`, expected one of"),
            "{e}"
        );
        // The misspelt key is also a missing one: both are said, with every other missing
        // field in the same message.
        assert!(
            e.starts_with("c.toml:1:1: missing fields `name`, `title`, `publisher`, `source_url`, `published`, `metric_prefix`\n"),
            "{e}"
        );
    }

    #[test]
    fn every_unknown_key_missing_key_and_type_error_in_one_run() {
        let text = format!(
            "{HEAD}colour = 1\n[[metric]]\nname = \"a\"\nhelp = \"h\"\nunit = \"count\"\nlabels = [\"k\"]\nshade = 2\nsamples = [{{ labels = {{ k = \"1\" }}, value = \"x\" }}, {{ labels = {{ k = \"2\" }}, vlaue = 1 }}]\n[[metric]]\nhelp = \"h\"\n[[input]]\nfile = 3\nformat = \"csv\"\n"
        );
        let e = err(&text);
        let lines: Vec<&str> = e.lines().collect();
        assert_eq!(lines.len(), 6, "{e}");
        assert!(
            lines[0].starts_with("c.toml:9:1: unknown field `colour`"),
            "{e}"
        );
        assert!(
            lines[1].starts_with("c.toml:15:1: unknown field `shade`"),
            "{e}"
        );
        assert!(lines[2].starts_with("c.toml:16:"), "{e}");
        assert!(
            lines[2].contains("invalid type: string \"x\", expected f64"),
            "{e}"
        );
        assert!(lines[3].contains("unknown field `vlaue`"), "{e}");
        assert!(
            lines[4].starts_with("c.toml:17:1: missing field `name`"),
            "{e}"
        );
        assert!(
            lines[5].starts_with("c.toml:20:8: invalid type: integer `3`"),
            "{e}"
        );
    }

    #[test]
    fn integer_value_reads_as_float() {
        let text = format!(
            "{HEAD}[[metric]]\nname = \"m\"\nhelp = \"h\"\nunit = \"count\"\nlabels = [\"a\"]\nsamples = [{{ labels = {{ a = \"1\" }}, value = 1908000 }}]\n"
        );
        let c = parse(Path::new("c.toml"), &text).unwrap();
        let v = c.metrics[0].get_ref().samples[0]
            .get_ref()
            .value
            .as_ref()
            .unwrap();
        assert_eq!(*v.get_ref(), 1_908_000.0);
    }

    #[test]
    fn a_pxweb_input_is_named_by_its_query_and_needs_no_file() {
        let input = "[[input]]\nformat = \"json-stat\"\nmetric = \"m\"\n[input.pxweb]\ntable = \"http://h/api/v1/en/ssd/T\"\n[input.pxweb.select]\nTid = \"top(2)\"\nGroup = [\"A\", \"B\"]\n";
        let c = parse(Path::new("c.toml"), &format!("{HEAD}{input}")).unwrap();
        let i = c.inputs[0].get_ref();
        assert_eq!(
            i.file.get_ref(),
            "http://h/api/v1/en/ssd/T#pxweb-v1:Group=A,B&Tid=top(2)"
        );
        let px = i.pxweb.as_ref().unwrap().get_ref();
        let map = SourceMap::new(Path::new("c.toml"), "");
        let q = px.query(|span, m| map.diag(span, m)).unwrap();
        assert_eq!(q.select.len(), 2);
    }

    #[test]
    fn an_input_names_exactly_one_of_file_and_pxweb_and_a_pxweb_one_is_json_stat() {
        let table = "[input.pxweb]\ntable = \"http://h/api/v1/en/ssd/T\"\n";
        let e = err(&format!(
            "{HEAD}[[input]]\nfile = \"d.json\"\nformat = \"json-stat\"\n{table}"
        ));
        assert!(
            e.starts_with("c.toml:12:1: `[input.pxweb]` and `file` both given"),
            "{e}"
        );
        let e = err(&format!("{HEAD}[[input]]\nformat = \"json-stat\"\n"));
        assert!(
            e.starts_with(
                "c.toml:9:1: missing field `file`, expected a data file, a URL, `[input.query]` or `[input.pxweb]`"
            ),
            "{e}"
        );
        let e = err(&format!("{HEAD}[[input]]\nformat = \"csv\"\n{table}"));
        assert!(
            e.starts_with(
                "c.toml:10:10: format `csv` with `[input.pxweb]`, expected \"json-stat\""
            ),
            "{e}"
        );
        let e = err(&format!(
            "{HEAD}[[input]]\nformat = \"json-stat\"\n{table}api = \"v3\"\n"
        ));
        assert!(e.starts_with("c.toml:13:7: unknown variant `v3`"), "{e}");
    }

    #[test]
    fn field_names_come_from_the_structs() {
        assert!(fields::<SampleConfig>().contains(&"basis"));
        assert!(fields::<InputConfig>().contains(&"metric_dimension"));
    }
}
