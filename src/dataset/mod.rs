//! Stage 2 of the pipeline: the typed config (+ the data files it names) -> validated
//! [`Dataset`]. Pure: no I/O. Every problem found is reported, each with its position.
//!
//! Observations reach one validator (`Builder::add`) whatever they were written in: inline
//! TOML samples here, data files through `ingest` and the format readers of `crate::source`.
//! Then series are sorted and checked for duplicates once, the latest / change series and
//! release calendars are derived (`derive`), and the one list of the families the dataset
//! serves is made and checked ([`families`]).

mod builder;
pub mod calendar;
pub(crate) mod changes;
mod derive;
pub mod families;
pub(crate) mod ingest;
pub mod units;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use toml::Spanned;

use crate::config::{
    Config, DatasetConfig, LabelConfig, MetricConfig, PeriodConfig, ReleaseConfig,
};
use crate::dataset::calendar::{Cadence, Period};
use crate::diagnostic::{Diagnostic, Diagnostics, SourceMap};
use units::{Unit, MULTIPLIER_FORMS, UNIT_NAMES};

pub use crate::diagnostic::excerpt;
pub use builder::MAX_ERRORS_PER_FILE;
pub(crate) use builder::{Builder, Field, Loc, MetricDef, Obs, Value};
pub use families::{Family, Kind};

/// A validated dataset, values already in base units.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub info: DatasetInfo,
    pub sources: Vec<Source>,
    pub labels: Vec<LabelDisplay>,
    /// The metrics declared in the config, in config order.
    pub metrics: Vec<Metric>,
    /// Series derived from `metrics` along the period label (latest value, latest period,
    /// change on the previous period, change on a year earlier); empty without periods.
    pub derived: Vec<Metric>,
    /// The dataset's release calendar, from `[dataset.period]`.
    pub release: Option<ReleaseSchedule>,
    /// Calendars of metrics that have their own (`[metric.release]`).
    pub metric_releases: Vec<(String, ReleaseSchedule)>,
    /// Observations without a figure, per metric and reason (`missing`, `confidential`,
    /// `not_available`).
    pub missing: Vec<(String, &'static str, u64)>,
    /// Every file the dataset was read from: the config first, then its data files.
    pub files: Vec<PathBuf>,
    /// The label that carries the period (`[dataset.period] label`, `period` by default).
    pub period_label: String,
    /// Every distinct label value, once; metrics refer to them by index.
    pub symbols: Vec<Box<str>>,
    /// Every family the dataset serves, sorted by name: what it is, where its samples are,
    /// what declares it and where (in the config, the first of `files`). Rendering, export,
    /// the pages and the clash check across datasets all read this one list.
    pub families: Vec<Family>,
    /// The series of the small families the list made (info metrics, calendars).
    pub tables: Vec<Metric>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DatasetInfo {
    pub name: String,
    pub title: String,
    pub publisher: String,
    pub source_url: String,
    pub published: String,
    pub published_timestamp: i64,
    pub description: String,
    pub prefix: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub id: String,
    pub title: String,
    pub url: String,
    pub published: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LabelDisplay {
    pub name: String,
    pub help: String,
    /// Language codes, sorted; each becomes a `name_<lang>` label.
    pub languages: Vec<String>,
    /// (code, display name per language in `languages` order; empty where not given).
    pub values: Vec<(String, Vec<String>)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// The exposed name: prefix + config name + unit suffix.
    pub name: String,
    pub help: String,
    pub unit: Unit,
    pub label_names: Vec<String>,
    /// Indices into `label_names` in the order labels are written: sorted by name.
    pub order: Vec<usize>,
    /// The cadence of the period label's values, when the metric has one.
    pub cadence: Option<Cadence>,
    /// Label values of every series as ids into [`Dataset::symbols`], `label_names.len()` per
    /// series in `label_names` order. Series are sorted by their values taken in `order`, so
    /// rendering and comparing never sort again. Flat ids keep a million series in ~24 MB.
    labels: Vec<u32>,
    values: Vec<f64>,
    /// Observation status per series as a symbol id, `u32::MAX` for none; empty when no
    /// series has one.
    status: Vec<u32>,
}

/// No status: the observation is a normal value.
pub const NO_STATUS: u32 = u32::MAX;

/// Records the status of the `n`th series; the vector stays empty until a series has one, so
/// a metric without flags costs nothing.
fn push_status(status: &mut Vec<u32>, n: usize, s: u32) {
    if s != NO_STATUS || !status.is_empty() {
        status.resize(n - 1, NO_STATUS);
        status.push(s);
    }
}

impl Metric {
    fn new(name: String, help: String, unit: Unit, label_names: Vec<String>) -> Metric {
        let mut order: Vec<usize> = (0..label_names.len()).collect();
        order.sort_by(|a, b| label_names[*a].cmp(&label_names[*b]));
        Metric {
            name,
            help,
            unit,
            label_names,
            order,
            cadence: None,
            labels: Vec::new(),
            values: Vec::new(),
            status: Vec::new(),
        }
    }

    /// Number of series.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Label value ids of series `i`, in `label_names` order.
    pub fn labels(&self, i: usize) -> &[u32] {
        let k = self.label_names.len();
        &self.labels[i * k..(i + 1) * k]
    }

    pub fn value(&self, i: usize) -> f64 {
        self.values[i]
    }

    /// The status symbol of series `i`, if it has one.
    pub fn status(&self, i: usize) -> Option<u32> {
        self.status.get(i).copied().filter(|&s| s != NO_STATUS)
    }

    /// Whether any series carries a status flag.
    pub fn has_status(&self) -> bool {
        self.status.iter().any(|&s| s != NO_STATUS)
    }

    fn push(&mut self, labels: &[u32], value: f64, status: u32) {
        self.labels.extend_from_slice(labels);
        self.values.push(value);
        push_status(&mut self.status, self.values.len(), status);
    }

    /// The family that serves the status flags of this metric's series.
    pub fn status_family(&self) -> String {
        format!("{}_observation_status_info", self.stem())
    }

    /// The name without its unit suffix: what derived families are named after.
    pub fn stem(&self) -> &str {
        match self.unit.suffix() {
            Some(s) => self
                .name
                .strip_suffix(s)
                .and_then(|n| n.strip_suffix('_'))
                .unwrap_or(&self.name),
            None => &self.name,
        }
    }
}

/// When the period after the latest one is due, from a release calendar.
#[derive(Debug, Clone, PartialEq)]
pub struct ReleaseSchedule {
    pub period_label: String,
    /// The period whose figures are awaited (the one after the latest published).
    pub next_period: Period,
    pub expected_timestamp: Option<i64>,
    pub overdue_timestamp: Option<i64>,
}

impl Dataset {
    /// Number of series of the declared metrics.
    pub fn series_count(&self) -> usize {
        self.metrics.iter().map(Metric::len).sum()
    }

    pub fn symbol(&self, id: u32) -> &str {
        &self.symbols[id as usize]
    }

    /// `name="value",…` of series `i` of `m`, in written order (for messages and logs).
    pub fn labels_text(&self, m: &Metric, i: usize) -> String {
        labels_text(m, i, &self.symbols)
    }

    /// `dataset NAME, N metrics, N series`: what a load reports.
    /// What each metric will serve, one line each, so a wrong scale or period is seen before
    /// it is served: its series, the periods they cover, the unit as published and as served,
    /// the range of the served values and the cells without a figure, by reason.
    pub fn served(&self) -> Vec<String> {
        let width = self.metrics.iter().map(|m| m.name.len()).max().unwrap_or(0);
        self.metrics
            .iter()
            .map(|m| {
                let mut line = format!("{:width$}  {} series", m.name, m.len());
                if let Some(p) = m.label_names.iter().position(|l| *l == self.period_label) {
                    let periods = (0..m.len()).map(|i| &*self.symbols[m.labels(i)[p] as usize]);
                    let (lo, hi) =
                        periods.fold((None, None), |(lo, hi): (Option<&str>, Option<&str>), p| {
                            (
                                Some(lo.map_or(p, |l| l.min(p))),
                                Some(hi.map_or(p, |h| h.max(p))),
                            )
                        });
                    if let (Some(lo), Some(hi)) = (lo, hi) {
                        line += &format!(", {} {lo}..{hi}", self.period_label);
                    }
                }
                if m.unit.exponent != 0 {
                    let served = m.unit.suffix().unwrap_or("count");
                    line += &format!(", published in {} and served in {served}", m.unit);
                }
                let values = (0..m.len()).map(|i| m.value(i));
                let lo = values.clone().fold(f64::INFINITY, f64::min);
                let hi = values.fold(f64::NEG_INFINITY, f64::max);
                if lo.is_finite() {
                    line += &format!(", values {lo}..{hi}");
                }
                for (metric, reason, n) in &self.missing {
                    if *metric == m.name {
                        line += &format!(", {n} {reason}");
                    }
                }
                line
            })
            .collect()
    }

    pub fn summary(&self) -> String {
        format!(
            "dataset {}, {} metrics, {} series",
            self.info.name,
            self.metrics.len(),
            self.series_count()
        )
    }
}

/// A data file as the loader read it: the resolved path, and its bytes or why it could not be
/// read. Each format's reader decodes them: text formats check UTF-8, others have their own
/// encoding or none.
#[derive(Debug, Clone)]
pub struct DataFile {
    pub path: PathBuf,
    pub bytes: Result<bytes::Bytes, String>,
}

/// Data files by the string written in the config (`samples_file`, `[[input]] file`).
pub type DataFiles = HashMap<String, DataFile>;

/// Name endings that Prometheus and OpenMetrics give to other metric types.
const RESERVED_SUFFIXES: &[&str] = &[
    "_total", "_info", "_created", "_count", "_sum", "_bucket", "_gcount", "_gsum",
];

/// The dataset's period settings, checked.
pub(crate) struct PeriodSettings {
    pub label: String,
    pub cadence: Option<Cadence>,
    pub expected_lag_days: Option<i64>,
    pub overdue_lag_days: Option<i64>,
}

/// Stage 2: a parsed config and the data files it names -> a validated dataset, or every
/// problem found on the way.
pub fn build(
    path: &Path,
    text: &str,
    config: &Config,
    data: &DataFiles,
) -> Result<Dataset, Diagnostics> {
    let map = SourceMap::new(path, text);
    let mut errs = Vec::new();
    let ds = config.dataset.get_ref();
    let info = dataset_info(&map, ds, &mut errs);
    let (sources, source_ids) = sources(&map, config, &mut errs);
    // Without `[dataset.period]` (or with a bad one) the period label is `period`.
    let period = ds
        .period
        .as_ref()
        .and_then(|p| check_period(&map, p.get_ref(), &mut errs))
        .unwrap_or_else(|| PeriodSettings {
            label: "period".into(),
            cadence: None,
            expected_lag_days: None,
            overdue_lag_days: None,
        });
    let mut labels = labels(&map, config, &mut errs);

    let mut b = Builder::new(path.to_path_buf(), period.label.clone(), source_ids, errs);
    b.max_label_value_length = max_label_value_length(&map, ds, &mut b.errs);
    let mut out = observations(&map, config, b, &info.prefix, &period, data);
    let mut errs = std::mem::take(&mut out.errs);
    unserved(&map, config, &out, &mut errs);
    let (mut symbols, metrics) = (out.symbols, out.metrics);
    // Display names from data files fill in what the config did not give.
    for (label, names) in out.names {
        merge_names(&mut labels, &label, names);
    }
    // So do the names of what labels stand for.
    for (label, help) in out.helps {
        if let Some(l) = labels
            .iter_mut()
            .find(|l| l.name == label && l.help.is_empty())
        {
            l.help = help;
        }
    }

    let derived = derive::derive(&metrics, &period.label, &symbols);
    let (release, metric_releases) = releases(&map, config, &metrics, &symbols, &period, &mut errs);
    let index_bases: Vec<(String, String)> = config
        .metrics
        .iter()
        .zip(&metrics)
        .filter(|(_, m)| m.unit.base == units::Base::Index)
        .filter_map(|(c, m)| {
            Some((
                m.name.clone(),
                c.get_ref().index_base.as_ref()?.get_ref().clone(),
            ))
        })
        .collect();
    let parts = families::Parts {
        info: &info,
        sources: &sources,
        labels: &labels,
        metrics: &metrics,
        derived: &derived,
        release: release.as_ref(),
        metric_releases: &metric_releases,
        index_bases: &index_bases,
    };
    let mut listed = families::list(&parts, &mut symbols);
    families::check(
        &map,
        config,
        &parts,
        &period.label,
        &mut listed.families,
        &mut errs,
    );

    if !errs.is_empty() {
        return Err(Diagnostics::new(errs));
    }
    Ok(Dataset {
        info,
        sources,
        labels,
        metrics,
        derived: derived.into_iter().map(|(_, _, m)| m).collect(),
        release,
        metric_releases,
        missing: out.missing,
        files: out.files,
        period_label: period.label,
        symbols,
        families: listed.families,
        tables: listed.tables,
    })
}

/// Metrics that would serve nothing: one without a unit, and a dataset with neither a sample
/// nor a missing figure.
fn unserved(map: &SourceMap, config: &Config, out: &builder::Built, errs: &mut Vec<Diagnostic>) {
    // An input refused by the config gave no unit; saying so again would only repeat it.
    let config_refused = errs.iter().any(|d| d.path == map.path());
    for &i in out.unitless.iter().filter(|_| !config_refused) {
        let m = config.metrics[i].get_ref();
        errs.push(map.diag(
            m.name.span(),
            format!("metric `{}` has no unit, expected `unit` in its [[metric]] or a unit column in an [[input]] that feeds it", m.name.get_ref()),
        ));
    }
    // A dataset whose every figure is missing or confidential still loads: it serves its
    // missing counts and provenance (a source may turn all-confidential on a refresh).
    if !config.metrics.is_empty()
        && errs.is_empty()
        && out.metrics.iter().all(Metric::is_empty)
        && out.missing.is_empty()
    {
        errs.push(Diagnostic::file(
            map.path(),
            "empty dataset: no samples and no missing figures in any [[metric]], expected at least one",
        ));
    }
}

/// `[dataset]`: its name, prefix and publication date, checked.
fn dataset_info(map: &SourceMap, ds: &DatasetConfig, errs: &mut Vec<Diagnostic>) -> DatasetInfo {
    let prefix = ds.metric_prefix.get_ref().clone();
    if !prefix.is_empty() && !is_metric_name(&prefix) {
        errs.push(map.diag(
            ds.metric_prefix.span(),
            format!("invalid metric_prefix `{}`, expected letters, digits and underscores, not starting with a digit", excerpt(&prefix)),
        ));
    }
    if ds.name.get_ref().is_empty() {
        errs.push(map.diag(
            ds.name.span(),
            "empty dataset name, expected a short identifier",
        ));
    }
    let published_timestamp = date(map, &ds.published, false, errs).unwrap_or(0);
    DatasetInfo {
        name: ds.name.get_ref().clone(),
        title: ds.title.clone(),
        publisher: ds.publisher.clone(),
        source_url: ds.source_url.clone(),
        published: ds.published.get_ref().clone(),
        published_timestamp,
        description: ds.description.clone(),
        prefix,
    }
}

/// Label values and display names longer than this (bytes) are refused: one huge cell would
/// otherwise be served in every scrape.
pub const DEFAULT_MAX_LABEL_VALUE_LENGTH: usize = 4096;

/// `[dataset] max_label_value_length`, checked; 0 means no limit.
fn max_label_value_length(
    map: &SourceMap,
    ds: &DatasetConfig,
    errs: &mut Vec<Diagnostic>,
) -> usize {
    match &ds.max_label_value_length {
        None => DEFAULT_MAX_LABEL_VALUE_LENGTH,
        Some(n) => match usize::try_from(*n.get_ref()) {
            Ok(0) => usize::MAX,
            Ok(n) => n,
            Err(_) => {
                errs.push(map.diag(
                    n.span(),
                    format!(
                        "max_label_value_length {} is negative, expected a number of bytes, or 0 for no limit",
                        n.get_ref()
                    ),
                ));
                DEFAULT_MAX_LABEL_VALUE_LENGTH
            }
        },
    }
}

/// The `[[source]]` list, and the ids samples may cite.
fn sources(
    map: &SourceMap,
    config: &Config,
    errs: &mut Vec<Diagnostic>,
) -> (Vec<Source>, HashSet<String>) {
    let mut sources = Vec::new();
    let mut source_ids = HashSet::new();
    for s in &config.sources {
        let s = s.get_ref();
        if !source_ids.insert(s.id.get_ref().clone()) {
            errs.push(map.diag(
                s.id.span(),
                format!("duplicate source id `{}`", excerpt(s.id.get_ref())),
            ));
        }
        date(map, &s.published, true, errs);
        sources.push(Source {
            id: s.id.get_ref().clone(),
            title: s.title.clone(),
            url: s.url.clone(),
            published: s.published.get_ref().clone(),
        });
    }
    (sources, source_ids)
}

/// The `[[label]]` tables: display names of label values.
fn labels(map: &SourceMap, config: &Config, errs: &mut Vec<Diagnostic>) -> Vec<LabelDisplay> {
    let mut labels = Vec::new();
    let mut seen = HashSet::new();
    for l in &config.labels {
        let l = l.get_ref();
        let name = l.name.get_ref();
        check_label_name(map, &l.name, errs);
        if !seen.insert(name.as_str()) {
            errs.push(map.diag(
                l.name.span(),
                format!("duplicate [[label]] `{}`", excerpt(name)),
            ));
        }
        labels.push(label_display(map, l, errs));
    }
    labels
}

/// Every observation, through the one validator: the metrics' definitions, their inline
/// samples, then each metric's samples_file, then the inputs, the order in which duplicates
/// are reported ("first defined at").
fn observations(
    map: &SourceMap,
    config: &Config,
    mut b: Builder,
    prefix: &str,
    period: &PeriodSettings,
    data: &DataFiles,
) -> builder::Built {
    b.unread_metrics.clone_from(&config.unread_metrics);
    for m in &config.metrics {
        let def = metric_def(map, m, prefix, period, &mut b.errs);
        b.add_metric(def);
    }
    for (mi, m) in config.metrics.iter().enumerate() {
        inline_samples(map, &mut b, mi, m);
    }
    for (mi, m) in config.metrics.iter().enumerate() {
        if let Some(f) = &m.get_ref().samples_file {
            crate::dataset::ingest::samples_file(map, &mut b, mi, f, data);
        }
    }
    for input in &config.inputs {
        crate::dataset::ingest::input(map, &mut b, input, data);
    }
    if config.metrics.is_empty() && config.unread_metrics.is_empty() {
        b.errs.push(Diagnostic::file(
            map.path(),
            "empty dataset: no [[metric]] defined, expected at least one",
        ));
    }
    b.finish()
}

/// The dataset's release calendar (with `[dataset.period]`) and the metrics' own ones.
#[allow(clippy::type_complexity)]
fn releases(
    map: &SourceMap,
    config: &Config,
    metrics: &[Metric],
    symbols: &[Box<str>],
    period: &PeriodSettings,
    errs: &mut Vec<Diagnostic>,
) -> (Option<ReleaseSchedule>, Vec<(String, ReleaseSchedule)>) {
    let release = match config.dataset.get_ref().period {
        Some(_) => derive::dataset_release(metrics, symbols, period),
        None => None,
    };
    let mut metric_releases = Vec::new();
    for (m, def) in metrics.iter().zip(&config.metrics) {
        if let Some(r) = &def.get_ref().release {
            let (expected, overdue) = lags(map, r.get_ref(), errs);
            if let Some(s) = derive::release_of(m, &period.label, symbols, expected, overdue) {
                metric_releases.push((m.name.clone(), s));
            }
        }
    }
    (release, metric_releases)
}

/// A `source` given to a sample or an input names a `[[source]]`.
pub(crate) fn check_source_id(map: &SourceMap, b: &mut Builder, src: &Spanned<String>) {
    if !b.source_ids.contains(src.get_ref().as_str()) {
        b.errs.push(map.diag(
            src.span(),
            format!(
                "unknown source `{}`, expected the id of a [[source]]",
                src.get_ref()
            ),
        ));
    }
}

/// Display names read from data files, merged into the `[[label]]` of that label (created
/// when the config has none); names the config gives win.
fn merge_names(
    labels: &mut Vec<LabelDisplay>,
    label: &str,
    names: BTreeMap<String, BTreeMap<String, String>>,
) {
    let idx = match labels.iter().position(|l| l.name == label) {
        Some(i) => i,
        None => {
            labels.push(LabelDisplay {
                name: label.to_string(),
                help: String::new(),
                languages: Vec::new(),
                values: Vec::new(),
            });
            labels.len() - 1
        }
    };
    let l = &mut labels[idx];
    let mut langs: Vec<String> = l.languages.clone();
    for by_lang in names.values() {
        for lang in by_lang.keys() {
            if !langs.contains(lang) {
                langs.push(lang.clone());
            }
        }
    }
    langs.sort();
    let mut values: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (code, given) in &l.values {
        let mut row = vec![String::new(); langs.len()];
        for (i, lang) in l.languages.iter().enumerate() {
            let j = langs.iter().position(|x| x == lang).expect("merged");
            row[j] = given[i].clone();
        }
        values.insert(code.clone(), row);
    }
    for (code, by_lang) in names {
        let row = values
            .entry(code)
            .or_insert_with(|| vec![String::new(); langs.len()]);
        for (lang, name) in by_lang {
            let j = langs.iter().position(|x| *x == lang).expect("merged");
            if row[j].is_empty() {
                row[j] = name;
            }
        }
    }
    l.languages = langs;
    l.values = values.into_iter().collect();
}

/// Checks a `[[metric]]` definition; what later stages need of it.
fn metric_def(
    map: &SourceMap,
    m: &Spanned<MetricConfig>,
    prefix: &str,
    period: &PeriodSettings,
    errs: &mut Vec<Diagnostic>,
) -> MetricDef {
    let m = m.get_ref();
    let raw_name = m.name.get_ref();
    let before = errs.len();
    let unit = metric_unit(map, m, errs);
    let mut usable = errs.len() == before;
    let multiplier = metric_multiplier(map, m, errs);
    let index_base = m.index_base.as_ref().map(|b| {
        if Period::parse(b.get_ref()).is_none() {
            errs.push(map.diag(
                b.span(),
                format!(
                    "index_base `{}` is not a period, expected {}",
                    b.get_ref(),
                    crate::dataset::calendar::PERIOD_FORMS
                ),
            ));
        }
        b.get_ref().clone()
    });
    metric_name(map, m, unit.as_ref(), errs);
    if m.help.get_ref().trim().is_empty() {
        errs.push(map.diag(
            m.help.span(),
            "empty help, expected a sentence saying what the figure is and where it comes from",
        ));
    }
    let labels = metric_labels(map, m, &mut usable, errs);
    let cadence = match &m.cadence {
        Some(c) => {
            let parsed = Cadence::parse(c.get_ref());
            if parsed.is_none() {
                errs.push(map.diag(
                    c.span(),
                    format!(
                        "unknown cadence `{}`, expected one of {}",
                        c.get_ref(),
                        Cadence::NAMES.join(", ")
                    ),
                ));
            }
            parsed.map(|p| (p, false))
        }
        None => period.cadence.map(|c| (c, true)),
    };
    let mut help = m.help.get_ref().trim().to_string();
    if let (Some(u), Some(b)) = (&unit, &index_base) {
        if u.base == crate::dataset::units::Base::Index {
            help.push_str(&format!(" Index points, {b} = 100."));
        }
    }
    MetricDef::new(
        raw_name.clone(),
        prefix.to_string(),
        help,
        unit,
        multiplier,
        labels,
        cadence,
        usable,
    )
}

/// The metric's `unit`, if it gives a known one.
fn metric_unit(map: &SourceMap, m: &MetricConfig, errs: &mut Vec<Diagnostic>) -> Option<Unit> {
    let u = m.unit.as_ref()?;
    let parsed = Unit::parse(u.get_ref());
    if parsed.is_none() {
        errs.push(map.diag(
            u.span(),
            format!(
                "unknown unit `{}`, expected one of {} or an ISO 4217 currency code (usd, eur …)",
                u.get_ref(),
                UNIT_NAMES.join(", ")
            ),
        ));
    }
    parsed
}

/// The metric's `scale` as a power of ten (0 without one).
fn metric_multiplier(map: &SourceMap, m: &MetricConfig, errs: &mut Vec<Diagnostic>) -> i32 {
    let Some(mu) = &m.scale else { return 0 };
    let text = match mu.get_ref() {
        crate::config::ScalarOrString::Integer(i) => i.to_string(),
        crate::config::ScalarOrString::Text(s) => s.clone(),
    };
    match units::multiplier(&text) {
        Some(e) => e,
        None => {
            errs.push(map.diag(
                mu.span(),
                format!(
                    "unknown scale `{}`, expected {MULTIPLIER_FORMS}",
                    excerpt(&text)
                ),
            ));
            0
        }
    }
}

/// The metric's name as written: valid, without the unit suffix the exporter appends, and
/// not ending as another metric type's samples do.
fn metric_name(map: &SourceMap, m: &MetricConfig, unit: Option<&Unit>, errs: &mut Vec<Diagnostic>) {
    let raw_name = m.name.get_ref();
    if !is_metric_name(raw_name) || raw_name.starts_with("__") {
        errs.push(map.diag(
            m.name.span(),
            format!("invalid metric name `{}`, expected letters, digits and underscores, not starting with a digit or `__`", excerpt(raw_name)),
        ));
    }
    if let Some(s) = unit.and_then(Unit::suffix) {
        if raw_name.ends_with(&format!("_{s}")) {
            errs.push(map.diag(
                m.name.span(),
                format!("metric name `{raw_name}` already ends in `_{s}`, expected the name without its unit suffix (the exporter appends it)"),
            ));
        }
    }
    if let Some(s) = RESERVED_SUFFIXES.iter().find(|s| raw_name.ends_with(*s)) {
        errs.push(map.diag(m.name.span(), format!("metric name `{raw_name}` ends in `{s}`, which Prometheus reserves for other metric types")));
    }
}

/// The metric's `labels`, checked; `usable` turns false when its samples cannot be read.
fn metric_labels(
    map: &SourceMap,
    m: &MetricConfig,
    usable: &mut bool,
    errs: &mut Vec<Diagnostic>,
) -> Option<Vec<String>> {
    let labels = m.labels.as_ref().map(|ls| {
        let mut names = Vec::new();
        for l in ls.get_ref() {
            let before = errs.len();
            check_label_name(map, l, errs);
            if names.contains(l.get_ref()) {
                errs.push(map.diag(
                    l.span(),
                    format!("duplicate label name `{}`", excerpt(l.get_ref())),
                ));
            }
            *usable &= errs.len() == before;
            names.push(l.get_ref().clone());
        }
        names
    });
    if labels.is_none() && (!m.samples.is_empty() || m.samples_file.is_some()) {
        errs.push(map.diag(
            m.name.span(),
            format!(
                "metric `{}` has samples but no `labels`, expected the list of its label names",
                m.name.get_ref()
            ),
        ));
        *usable = false;
    }
    labels
}

/// The inline `samples = [...]` of a metric, through the one validator.
fn inline_samples(map: &SourceMap, b: &mut Builder, mi: usize, m: &Spanned<MetricConfig>) {
    let m = m.get_ref();
    if !b.metrics[mi].usable {
        return;
    }
    let Some(names) = b.metrics[mi].labels.clone() else {
        return;
    };
    let raw_name = m.name.get_ref();
    let mut values: Vec<&str> = vec![""; names.len()];
    let mut spans: Vec<std::ops::Range<usize>> = vec![0..0; names.len()];
    for s in &m.samples {
        let sample = s.get_ref();
        let mut ok = true;
        let mut given = vec![false; names.len()];
        for (k, v) in sample.labels.get_ref() {
            match names.iter().position(|l| l == k.get_ref()) {
                Some(i) => {
                    values[i] = v.get_ref();
                    spans[i] = v.span();
                    given[i] = true;
                }
                None => {
                    b.errs.push(map.diag(
                        k.span(),
                        format!(
                            "label `{}` is not a label of metric `{raw_name}`, expected one of: {}",
                            k.get_ref(),
                            names.join(", ")
                        ),
                    ));
                    ok = false;
                }
            }
        }
        for (i, g) in given.iter().enumerate() {
            if !g {
                b.errs.push(map.diag(
                    sample.labels.span(),
                    format!("sample has no value for label `{}`, expected every label of metric `{raw_name}`: {}", names[i], names.join(", ")),
                ));
                ok = false;
            }
        }
        if let Some(src) = &sample.source {
            check_source_id(map, b, src);
        }
        let value = match &sample.value {
            None => {
                b.errs
                    .push(map.diag(s.span(), "sample has no `value`, expected a number"));
                continue;
            }
            Some(v) => v,
        };
        if !ok {
            continue;
        }
        let loc = |span: std::ops::Range<usize>| {
            let (line, col) = map.line_col(span.start);
            Loc::At(line as u32, col as u32)
        };
        let at = |f: Field| match f {
            Field::Label(i) => loc(spans[i].clone()),
            Field::Value => loc(value.span()),
            Field::Row | Field::Unit => loc(s.span()),
        };
        b.add(
            &Obs {
                metric: mi,
                labels: &values,
                value: Value::Number(*value.get_ref()),
                exponent: 0,
                unit: None,
                status: "",
                file: 0,
                position: Field::Row,
            },
            &at,
        );
    }
}

/// What an observation status code means, for the `flag` label: SDMX `OBS_STATUS` codes
/// and Eurostat flags (a code may combine several, as Eurostat's `bp`, or list them, as
/// `B; E` or `p,e`).
pub fn status_flag(code: &str) -> String {
    let word = |c: char| match c.to_ascii_lowercase() {
        'b' => "break",
        'c' => "confidential",
        'd' => "definition_differs",
        'e' => "estimated",
        'f' => "forecast",
        'g' => "experimental",
        'i' => "imputed",
        'm' | 'l' | 'o' | 'q' | ':' => "not_available",
        'n' => "not_significant",
        'p' => "provisional",
        'r' => "revised",
        's' => "estimated",
        'u' | 't' => "low_reliability",
        'v' => "unvalidated",
        'z' => "not_applicable",
        _ => "other",
    };
    let mut words: Vec<&str> = Vec::new();
    for w in ingest::status_codes(code).flat_map(str::chars).map(word) {
        if !words.contains(&w) {
            words.push(w);
        }
    }
    if words.is_empty() {
        "other".into()
    } else {
        words.join(",")
    }
}

fn labels_text(m: &Metric, i: usize, symbols: &[Box<str>]) -> String {
    series_text(m, m.labels(i), symbols)
}

/// `name="value",…` of the label value ids `ids` (in `m.label_names` order), in written order.
fn series_text(m: &Metric, ids: &[u32], symbols: &[Box<str>]) -> String {
    m.order
        .iter()
        .map(|&j| format!("{}=\"{}\"", m.label_names[j], symbols[ids[j] as usize]))
        .collect::<Vec<_>>()
        .join(",")
}

/// Display names of one label's codes; languages missing for a code are empty.
fn label_display(map: &SourceMap, l: &LabelConfig, errs: &mut Vec<Diagnostic>) -> LabelDisplay {
    let name = l.name.get_ref();
    let mut languages: Vec<String> = Vec::new();
    for v in &l.values {
        for lang in v.get_ref().names.get_ref().keys() {
            if !is_label_name(lang.get_ref()) {
                errs.push(map.diag(
                    lang.span(),
                    format!(
                        "invalid language code `{}`, expected letters, digits and underscores",
                        lang.get_ref()
                    ),
                ));
            } else if !languages.contains(lang.get_ref()) {
                languages.push(lang.get_ref().clone());
            }
        }
    }
    languages.sort();
    let mut codes = HashSet::new();
    let mut values = Vec::new();
    for v in &l.values {
        let v = v.get_ref();
        if !codes.insert(v.code.get_ref().as_str()) {
            errs.push(map.diag(
                v.code.span(),
                format!(
                    "duplicate code `{}` in label `{name}`",
                    excerpt(v.code.get_ref())
                ),
            ));
        }
        let names = v.names.get_ref();
        let display = languages
            .iter()
            .map(|lang| {
                names
                    .iter()
                    .find(|(k, _)| k.get_ref() == lang)
                    .map_or(String::new(), |(_, n)| n.clone())
            })
            .collect();
        values.push((v.code.get_ref().clone(), display));
    }
    LabelDisplay {
        name: name.clone(),
        help: l.help.clone(),
        languages,
        values,
    }
}

fn check_period(
    map: &SourceMap,
    p: &PeriodConfig,
    errs: &mut Vec<Diagnostic>,
) -> Option<PeriodSettings> {
    let before = errs.len();
    check_label_name(map, &p.label, errs);
    let cadence = p.cadence.as_ref().and_then(|c| {
        let parsed = Cadence::parse(c.get_ref());
        if parsed.is_none() {
            errs.push(map.diag(
                c.span(),
                format!(
                    "unknown cadence `{}`, expected one of {}",
                    c.get_ref(),
                    Cadence::NAMES.join(", ")
                ),
            ));
        }
        parsed
    });
    let (expected_lag_days, overdue_lag_days) = lags(
        map,
        &ReleaseConfig {
            expected_release_lag_days: p.expected_release_lag_days.clone(),
            overdue_release_lag_days: p.overdue_release_lag_days.clone(),
        },
        errs,
    );
    (errs.len() == before).then(|| PeriodSettings {
        label: p.label.get_ref().clone(),
        cadence,
        expected_lag_days,
        overdue_lag_days,
    })
}

/// The two release lags of a calendar, checked.
fn lags(
    map: &SourceMap,
    r: &ReleaseConfig,
    errs: &mut Vec<Diagnostic>,
) -> (Option<i64>, Option<i64>) {
    let lag = |v: &Option<Spanned<i64>>, errs: &mut Vec<Diagnostic>| {
        let v = v.as_ref()?;
        if !(0..=3660).contains(v.get_ref()) {
            errs.push(map.diag(
                v.span(),
                format!(
                    "release lag {} days out of range, expected 0 to 3660",
                    v.get_ref()
                ),
            ));
        }
        Some(*v.get_ref())
    };
    let expected = lag(&r.expected_release_lag_days, errs);
    let overdue = lag(&r.overdue_release_lag_days, errs);
    if let (Some(e), Some(o)) = (&expected, &r.overdue_release_lag_days) {
        if *o.get_ref() < *e {
            errs.push(map.diag(o.span(), "overdue_release_lag_days is before expected_release_lag_days, expected a later or equal lag"));
        }
    }
    (expected, overdue)
}

pub(crate) fn check_label_name(map: &SourceMap, l: &Spanned<String>, errs: &mut Vec<Diagnostic>) {
    let n = l.get_ref();
    if n.starts_with("__") {
        errs.push(map.diag(
            l.span(),
            format!(
                "label name `{}` starts with `__`, which Prometheus reserves for internal use",
                excerpt(n)
            ),
        ));
    } else if !is_label_name(n) {
        errs.push(map.diag(l.span(), format!("invalid label name `{}`, expected letters, digits and underscores, not starting with a digit", excerpt(n))));
    }
}

pub(crate) fn is_label_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && c.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Exporters do not use `:` (reserved for recording rules).
fn is_metric_name(s: &str) -> bool {
    is_label_name(s)
}

/// Parses `YYYY-MM-DD` into seconds since the epoch at 00:00 UTC. With `partial`, `YYYY-MM`
/// and `YYYY` pass too (sources are sometimes dated by month only) and give the first day.
fn date(
    map: &SourceMap,
    d: &Spanned<String>,
    partial: bool,
    errs: &mut Vec<Diagnostic>,
) -> Option<i64> {
    use crate::dataset::calendar::{days_from_civil, days_in_month};
    let s = d.get_ref();
    let parts: Vec<&str> = s.split('-').collect();
    let widths_ok = parts
        .iter()
        .zip([4, 2, 2])
        .all(|(p, w)| p.len() == w && p.bytes().all(|b| b.is_ascii_digit()));
    let count_ok = if partial {
        (1..=3).contains(&parts.len())
    } else {
        parts.len() == 3
    };
    let num = |i: usize| parts.get(i).map_or(Some(1), |p| p.parse::<i64>().ok());
    match (widths_ok && count_ok, num(0), num(1), num(2)) {
        (true, Some(y), Some(m), Some(day))
            if (1..=12).contains(&m) && (1..=days_in_month(y, m)).contains(&day) =>
        {
            Some(days_from_civil(y, m, day) * 86_400)
        }
        _ => {
            let expected = if partial {
                "YYYY-MM-DD, YYYY-MM or YYYY"
            } else {
                "YYYY-MM-DD"
            };
            errs.push(map.diag(
                d.span(),
                format!("invalid date `{}`, expected {expected}", excerpt(s)),
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "[dataset]\nname = \"d\"\ntitle = \"t\"\npublisher = \"p\"\nsource_url = \"u\"\npublished = \"2024-01-01\"\n";

    /// The errors of `body` after the dataset header (with `metric_prefix`), data files given
    /// in memory, as `line:col: message`.
    fn errors(prefix: &str, body: &str, files: &[(&str, &str)]) -> Vec<String> {
        let text = format!("{HEAD}metric_prefix = \"{prefix}\"\n{body}");
        let path = Path::new("c.toml");
        let config = crate::config::parse(path, &text).unwrap_or_else(|e| panic!("{e}"));
        let data: DataFiles = files
            .iter()
            .map(|(name, text)| {
                let file = DataFile {
                    path: PathBuf::from(name),
                    bytes: Ok(text.to_string().into()),
                };
                (name.to_string(), file)
            })
            .collect();
        match build(path, &text, &config, &data) {
            Ok(_) => vec![],
            Err(e) => e
                .iter()
                .map(|d| format!("{}:{}: {}", d.line, d.col, d.message))
                .collect(),
        }
    }

    fn metric(name: &str, labels: &str, sample: &str) -> String {
        format!("[[metric]]\nname = \"{name}\"\nunit = \"count\"\nhelp = \"h\"\nlabels = [{labels}]\nsamples = [{{ labels = {{ {sample} }}, value = 1 }}]\n")
    }

    #[test]
    fn a_gauge_and_an_info_metric_of_one_openmetrics_family_clash() {
        let label =
            "[[label]]\nname = \"size\"\nvalues = [{ code = \"s\", names = { en = \"Small\" } }]\n";
        let body = format!("{label}{}", metric("size", "\"size\"", "size = \"s\""));
        assert_eq!(
            errors("t_", &body, &[]),
            ["12:8: metric name `t_size` of metric `size` and `t_size_info` of [[label]] `size` are one family `t_size` in OpenMetrics, expected unique names"]
        );
        // The dataset's own info metric, too: `t_dataset` beside `t_dataset_info`.
        assert_eq!(
            errors("t_", &metric("dataset", "\"k\"", "k = \"a\""), &[]),
            ["9:8: metric name `t_dataset` of metric `dataset` and `t_dataset_info` of the dataset are one family `t_dataset` in OpenMetrics, expected unique names"]
        );
    }

    #[test]
    fn families_ending_in_a_suffix_of_another_type_are_refused() {
        // A label named `count` makes the info family `t_count`; a period label `total` makes
        // `t_m_latest_total`.
        let label =
            "[[label]]\nname = \"count\"\nvalues = [{ code = \"a\", names = { en = \"A\" } }]\n";
        let body = format!("{label}{}", metric("m", "\"count\"", "count = \"a\""));
        assert_eq!(
            errors("t_", &body, &[]),
            ["9:8: metric name `t_count_info` of [[label]] `count` makes family `t_count`, which ends in `_count`, a suffix OpenMetrics gives the samples of histograms and summaries, expected a name without it"]
        );
        let period = "[dataset.period]\nlabel = \"total\"\ncadence = \"annual\"\n";
        let body = format!("{period}{}", metric("m", "\"total\"", "total = \"2024\""));
        assert_eq!(
            errors("t_", &body, &[]),
            ["12:8: metric name `t_m_latest_total` of the series derived from `t_m` makes family `t_m_latest_total`, which ends in `_total`, a suffix OpenMetrics gives the samples of counters, expected a name without it"]
        );
        // A [[metric]] name is reported once, where it is written.
        assert_eq!(
            errors("t_", &metric("m_created", "\"k\"", "k = \"a\""), &[]),
            ["9:8: metric name `m_created` ends in `_created`, which Prometheus reserves for other metric types"]
        );
    }

    #[test]
    fn the_exporters_own_namespaces_are_refused() {
        assert_eq!(
            errors("process_", &metric("m", "\"k\"", "k = \"a\""), &[]),
            ["7:17: metric_prefix `process_` is in the `process_` namespace of the exporter's own metrics, expected another prefix"]
        );
        assert_eq!(
            errors("", &metric("indicator_exporter_m", "\"k\"", "k = \"a\""), &[]),
            ["9:8: metric name `indicator_exporter_m` of metric `indicator_exporter_m` is in the `indicator_exporter_` namespace of the exporter's own metrics, expected another name"]
        );
    }

    #[test]
    fn labels_that_clash_with_the_labels_the_exporter_adds_are_refused() {
        let label =
            "[[label]]\nname = \"name_en\"\nvalues = [{ code = \"a\", names = { en = \"A\" } }]\n";
        let body = format!("{label}{}", metric("m", "\"name_en\"", "name_en = \"a\""));
        assert_eq!(
            errors("t_", &body, &[]),
            ["9:8: label `name_en` clashes with the label `name_en` that the display names in language `en` get in `t_name_en_info`, expected another label name"]
        );
        // Status flags add `flag` and `status`.
        let input = "[[metric]]\nname = \"m\"\nunit = \"count\"\nhelp = \"h\"\nlabels = [\"status\", \"period\"]\n\n[[input]]\nfile = \"m.csv\"\nformat = \"csv\"\nmetric = \"m\"\nstatus = \"OBS_STATUS\"\nlabels = { status = \"STATE\" }\n";
        let csv = "STATE,period,value,OBS_STATUS\nx,2024,1,p\n";
        assert_eq!(
            errors("t_", input, &[("m.csv", csv)]),
            ["12:11: label `status` of metric `t_m` clashes with the label `status` that its status flags get in `t_m_observation_status_info`, expected another label name (rename it with `labels` in its [[input]])"]
        );
        // Prometheus's own target labels.
        assert_eq!(
            errors("t_", &metric("m", "\"instance\", \"k\"", "instance = \"a\", k = \"b\""), &[]),
            ["12:11: label `instance` of metric `t_m` is a label Prometheus gives every target: it would be stored as `exported_instance`, expected another label name"]
        );
        // Release calendars put `dataset` (or `metric`) beside the period label.
        let period = "[dataset.period]\nlabel = \"dataset\"\ncadence = \"annual\"\nexpected_release_lag_days = 31\n";
        let body = format!(
            "{period}{}",
            metric("m", "\"dataset\"", "dataset = \"2024\"")
        );
        assert_eq!(
            errors("t_", &body, &[]),
            ["9:9: period label `dataset` clashes with the label `dataset` beside it in `t_next_release_expected_timestamp_seconds`, expected another label name"]
        );
        let period = "[dataset.period]\nlabel = \"metric\"\ncadence = \"annual\"\n";
        let release = "[metric.release]\nexpected_release_lag_days = 31\n";
        let body = format!(
            "{period}{}{release}",
            metric("m", "\"metric\"", "metric = \"2024\"")
        );
        assert_eq!(
            errors("t_", &body, &[]),
            ["9:9: period label `metric` clashes with the label `metric` beside it in `t_metric_next_release_expected_timestamp_seconds`, expected another label name"]
        );
    }
}
