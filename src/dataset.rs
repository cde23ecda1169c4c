//! Stage 2 of the pipeline: typed [`Config`] (+ the data files it names) -> validated
//! [`Dataset`]. Pure: no I/O. Every problem found is reported, each with its position.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use toml::Spanned;

use crate::config::{Config, MetricConfig, PeriodConfig, SampleConfig};
use crate::diagnostic::{Diagnostic, Diagnostics, SourceMap};
use crate::units::{decimal_sub, Unit, UNIT_NAMES};

/// A validated dataset, values already in base units.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub info: DatasetInfo,
    pub sources: Vec<Source>,
    pub labels: Vec<LabelDisplay>,
    /// The metrics declared in the config, in config order.
    pub metrics: Vec<Metric>,
    /// Series derived from `metrics` along the period label (latest value, latest period,
    /// change on the previous period); empty without `[dataset.period]`.
    pub derived: Vec<Metric>,
    pub release: Option<ReleaseSchedule>,
    /// Every file the dataset was read from: the config first, then its data files.
    pub files: Vec<PathBuf>,
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
    /// Label values in `label_names` order.
    pub series: Vec<Series>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: Box<[Arc<str>]>,
    pub value: f64,
}

/// When the period after the latest one is due, from `[dataset.period]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReleaseSchedule {
    pub period_label: String,
    /// The period whose figures are awaited (latest published + 1).
    pub next_period: i64,
    pub expected_timestamp: Option<i64>,
    pub overdue_timestamp: Option<i64>,
}

impl Dataset {
    /// Number of series of the declared metrics.
    pub fn series_count(&self) -> usize {
        self.metrics.iter().map(|m| m.series.len()).sum()
    }
}

/// Data files named by `samples_file`, as read by the loader: the key is the string written in
/// the config; the value is the resolved path and its text, or why it could not be read.
pub type DataFiles = HashMap<String, (PathBuf, Result<String, String>)>;

/// Name endings that Prometheus and OpenMetrics give to other metric types.
const RESERVED_SUFFIXES: &[&str] = &["_total", "_info", "_created", "_count", "_sum", "_bucket"];

pub fn build(
    path: &Path,
    text: &str,
    config: &Config,
    data: &DataFiles,
) -> Result<Dataset, Diagnostics> {
    let map = SourceMap::new(path, text);
    let mut errs = Vec::new();
    let mut interner = Interner::default();

    let ds = config.dataset.get_ref();
    let prefix = ds.metric_prefix.get_ref().clone();
    if !prefix.is_empty() && !is_metric_name(&prefix) {
        errs.push(map.diag(
            ds.metric_prefix.span(),
            format!("invalid metric_prefix `{prefix}`, expected letters, digits and underscores, not starting with a digit"),
        ));
    }
    if ds.name.get_ref().is_empty() {
        errs.push(map.diag(
            ds.name.span(),
            "empty dataset name, expected a short identifier",
        ));
    }
    let published_timestamp = date(&map, &ds.published, false, &mut errs).unwrap_or(0);

    let mut sources = Vec::new();
    let mut source_ids = HashSet::new();
    for s in &config.sources {
        let s = s.get_ref();
        if !source_ids.insert(s.id.get_ref().as_str()) {
            errs.push(map.diag(
                s.id.span(),
                format!("duplicate source id `{}`", s.id.get_ref()),
            ));
        }
        date(&map, &s.published, true, &mut errs);
        sources.push(Source {
            id: s.id.get_ref().clone(),
            title: s.title.clone(),
            url: s.url.clone(),
            published: s.published.get_ref().clone(),
        });
    }

    let period = ds
        .period
        .as_ref()
        .map(|p| check_period(&map, p.get_ref(), &mut errs));

    // Every family name the exposition will carry, to catch clashes between them.
    let mut families: HashMap<String, String> = HashMap::new();
    let mut claim = |name: String,
                     span: std::ops::Range<usize>,
                     what: String,
                     errs: &mut Vec<Diagnostic>| {
        match families.get(&name) {
            Some(first) => errs.push(map.diag(
                span,
                format!("metric name `{name}` of {what} is already taken by {first}, expected unique names"),
            )),
            None => {
                families.insert(name, what);
            }
        }
    };
    let dataset_span = config.dataset.span();
    for family in ["dataset_info", "dataset_published_timestamp_seconds"] {
        claim(
            format!("{prefix}{family}"),
            dataset_span.clone(),
            "the dataset".into(),
            &mut errs,
        );
    }
    if !sources.is_empty() {
        claim(
            format!("{prefix}source_info"),
            dataset_span.clone(),
            "the [[source]] list".into(),
            &mut errs,
        );
    }

    let mut labels = Vec::new();
    let mut label_names_seen = HashSet::new();
    for l in &config.labels {
        let l = l.get_ref();
        let name = l.name.get_ref();
        check_label_name(&map, &l.name, &mut errs);
        if !label_names_seen.insert(name.as_str()) {
            errs.push(map.diag(l.name.span(), format!("duplicate [[label]] `{name}`")));
        }
        claim(
            format!("{prefix}{name}_info"),
            l.name.span(),
            format!("[[label]] `{name}`"),
            &mut errs,
        );
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
                    format!("duplicate code `{}` in label `{name}`", v.code.get_ref()),
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
        labels.push(LabelDisplay {
            name: name.clone(),
            help: l.help.clone(),
            languages,
            values,
        });
    }

    let mut metrics = Vec::new();
    let mut metric_spans = Vec::new();
    for m in &config.metrics {
        if let Some(metric) = build_metric(
            &map,
            m,
            &prefix,
            &source_ids,
            period.as_ref().and_then(|p| p.as_ref()),
            data,
            &mut interner,
            &mut errs,
        ) {
            let what = format!("metric `{}`", m.get_ref().name.get_ref());
            claim(
                metric.name.clone(),
                m.get_ref().name.span(),
                what,
                &mut errs,
            );
            metric_spans.push(m.get_ref().name.span());
            metrics.push(metric);
        }
    }

    if config.metrics.is_empty() {
        errs.push(Diagnostic::file(
            path,
            "empty dataset: no [[metric]] defined, expected at least one",
        ));
    } else if errs.is_empty() && metrics.iter().all(|m| m.series.is_empty()) {
        errs.push(Diagnostic::file(
            path,
            "empty dataset: no samples in any [[metric]], expected at least one",
        ));
    }

    let mut derived = Vec::new();
    let mut release = None;
    if let Some(Some(p)) = &period {
        for (i, d) in derive(&metrics, &p.label) {
            let what = format!("the series derived from `{}`", metrics[i].name);
            claim(d.name.clone(), metric_spans[i].clone(), what, &mut errs);
            derived.push(d);
        }
        let latest = metrics
            .iter()
            .filter_map(|m| {
                let i = m.label_names.iter().position(|l| l == &p.label)?;
                m.series
                    .iter()
                    .filter_map(|s| s.labels[i].parse::<i64>().ok())
                    .max()
            })
            .max();
        if let Some(latest) = latest {
            let next = latest + 1;
            // An annual period N ends at the start of N+1.
            let end = days_from_civil(next + 1, 1, 1) * 86_400;
            release = Some(ReleaseSchedule {
                period_label: p.label.clone(),
                next_period: next,
                expected_timestamp: p.expected_lag_days.map(|d| end + d * 86_400),
                overdue_timestamp: p.overdue_lag_days.map(|d| end + d * 86_400),
            });
            for family in [
                "next_release_expected_timestamp_seconds",
                "next_release_overdue_timestamp_seconds",
            ] {
                claim(
                    format!("{prefix}{family}"),
                    dataset_span.clone(),
                    "the release calendar".into(),
                    &mut errs,
                );
            }
        }
    }

    if !errs.is_empty() {
        return Err(Diagnostics::new(errs));
    }
    let mut files = vec![path.to_path_buf()];
    for m in &config.metrics {
        if let Some(f) = &m.get_ref().samples_file {
            if let Some((p, _)) = data.get(f.get_ref()) {
                files.push(p.clone());
            }
        }
    }
    Ok(Dataset {
        info: DatasetInfo {
            name: ds.name.get_ref().clone(),
            title: ds.title.clone(),
            publisher: ds.publisher.clone(),
            source_url: ds.source_url.clone(),
            published: ds.published.get_ref().clone(),
            published_timestamp,
            description: ds.description.clone(),
            prefix,
        },
        sources,
        labels,
        metrics,
        derived,
        release,
        files,
    })
}

struct Period {
    label: String,
    expected_lag_days: Option<i64>,
    overdue_lag_days: Option<i64>,
}

fn check_period(map: &SourceMap, p: &PeriodConfig, errs: &mut Vec<Diagnostic>) -> Option<Period> {
    let before = errs.len();
    check_label_name(map, &p.label, errs);
    if p.cadence.get_ref() != "annual" {
        errs.push(map.diag(
            p.cadence.span(),
            format!(
                "unsupported cadence `{}`, expected `annual`",
                p.cadence.get_ref()
            ),
        ));
    }
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
    let expected_lag_days = lag(&p.expected_release_lag_days, errs);
    let overdue_lag_days = lag(&p.overdue_release_lag_days, errs);
    if let (Some(e), Some(o)) = (&expected_lag_days, &p.overdue_release_lag_days) {
        if *o.get_ref() < *e {
            errs.push(map.diag(o.span(), "overdue_release_lag_days is before expected_release_lag_days, expected a later or equal lag"));
        }
    }
    (errs.len() == before).then(|| Period {
        label: p.label.get_ref().clone(),
        expected_lag_days,
        overdue_lag_days,
    })
}

#[allow(clippy::too_many_arguments)]
fn build_metric(
    map: &SourceMap,
    m: &Spanned<MetricConfig>,
    prefix: &str,
    source_ids: &HashSet<&str>,
    period: Option<&Period>,
    data: &DataFiles,
    interner: &mut Interner,
    errs: &mut Vec<Diagnostic>,
) -> Option<Metric> {
    let m = m.get_ref();
    let before = errs.len();
    let raw_name = m.name.get_ref();
    let unit = Unit::parse(m.unit.get_ref());
    if unit.is_none() {
        errs.push(map.diag(
            m.unit.span(),
            format!(
                "unknown unit `{}`, expected one of {}",
                m.unit.get_ref(),
                UNIT_NAMES.join(", ")
            ),
        ));
    }
    if !is_metric_name(raw_name) || raw_name.starts_with("__") {
        errs.push(map.diag(
            m.name.span(),
            format!("invalid metric name `{raw_name}`, expected letters, digits and underscores, not starting with a digit or `__`"),
        ));
    }
    let base = unit.and_then(Unit::base);
    if let Some(b) = base {
        if raw_name.ends_with(&format!("_{b}")) {
            errs.push(map.diag(
                m.name.span(),
                format!("metric name `{raw_name}` already ends in `_{b}`, expected the name without its unit suffix (the exporter appends it)"),
            ));
        }
    }
    if let Some(s) = RESERVED_SUFFIXES.iter().find(|s| raw_name.ends_with(*s)) {
        errs.push(map.diag(m.name.span(), format!("metric name `{raw_name}` ends in `{s}`, which Prometheus reserves for other metric types")));
    }
    if m.help.get_ref().trim().is_empty() {
        errs.push(map.diag(
            m.help.span(),
            "empty help, expected a sentence saying what the figure is and where it comes from",
        ));
    }
    let mut label_names = Vec::new();
    let labels_before = errs.len();
    for l in m.labels.get_ref() {
        check_label_name(map, l, errs);
        if label_names.contains(l.get_ref()) {
            errs.push(map.diag(l.span(), format!("duplicate label name `{}`", l.get_ref())));
        }
        label_names.push(l.get_ref().clone());
    }
    // Samples can still be checked against a metric with a bad name or help, not against
    // unusable label names or an unknown unit.
    if errs.len() > labels_before || unit.is_none() {
        return None;
    }
    let unit = unit.expect("checked above");
    let name = match base {
        Some(b) => format!("{prefix}{raw_name}_{b}"),
        None => format!("{prefix}{raw_name}"),
    };

    let mut series = Vec::new();
    let mut seen: HashMap<Box<[Arc<str>]>, (usize, usize)> = HashMap::new();
    let mut push =
        |labels: Box<[Arc<str>]>, value: f64, at: Diagnostic, errs: &mut Vec<Diagnostic>| {
            if let Some((line, col)) = seen.get(&labels) {
                errs.push(Diagnostic {
                    message: format!(
                        "duplicate series {name}{{{}}}, first defined at line {line} column {col}",
                        labels_text(&label_names, &labels)
                    ),
                    ..at
                });
                return;
            }
            seen.insert(labels.clone(), (at.line, at.col));
            series.push(Series { labels, value });
        };
    let check_value = |v: f64, at: &Diagnostic, errs: &mut Vec<Diagnostic>| -> Option<f64> {
        if !v.is_finite() {
            errs.push(Diagnostic {
                message: format!("value {v} is not a finite number, expected a published figure"),
                ..at.clone()
            });
            return None;
        }
        if unit == Unit::Percent && !(0.0..=100.0).contains(&v) {
            errs.push(Diagnostic {
                message: format!("percent value {v} out of range, expected 0 to 100"),
                ..at.clone()
            });
            return None;
        }
        let base = unit.to_base(v);
        if !base.is_finite() {
            errs.push(Diagnostic {
                message: format!(
                    "value {v} is too large to convert to {}",
                    unit.base().unwrap_or("the base unit")
                ),
                ..at.clone()
            });
            return None;
        }
        Some(base)
    };
    let check_period_value = |labels: &[Arc<str>], at: &Diagnostic, errs: &mut Vec<Diagnostic>| {
        let Some(p) = period else { return };
        let Some(i) = label_names.iter().position(|l| l == &p.label) else {
            return;
        };
        let v = &labels[i];
        if v.len() != 4 || v.parse::<u16>().is_err() {
            errs.push(Diagnostic { message: format!("{} `{v}` is not a year, expected four digits (the period label of an annual dataset)", p.label), ..at.clone() });
        }
    };

    for s in &m.samples {
        let sample: &SampleConfig = s.get_ref();
        let at = map.diag(s.span(), "");
        let given = sample.labels.get_ref();
        let mut values: Vec<Option<Arc<str>>> = vec![None; label_names.len()];
        let mut ok = true;
        for (k, v) in given {
            match label_names.iter().position(|l| l == k.get_ref()) {
                Some(i) => {
                    if v.get_ref().is_empty() {
                        errs.push(map.diag(
                            v.span(),
                            format!("empty value for label `{}`, expected a code", k.get_ref()),
                        ));
                        ok = false;
                    }
                    values[i] = Some(interner.intern(v.get_ref()));
                }
                None => {
                    errs.push(map.diag(
                        k.span(),
                        format!(
                            "label `{}` is not a label of metric `{raw_name}`, expected one of: {}",
                            k.get_ref(),
                            label_names.join(", ")
                        ),
                    ));
                    ok = false;
                }
            }
        }
        for (i, v) in values.iter().enumerate() {
            if v.is_none() {
                errs.push(map.diag(
                    sample.labels.span(),
                    format!("sample has no value for label `{}`, expected every label of metric `{raw_name}`: {}", label_names[i], label_names.join(", ")),
                ));
                ok = false;
            }
        }
        if let Some(src) = &sample.source {
            if !source_ids.contains(src.get_ref().as_str()) {
                errs.push(map.diag(
                    src.span(),
                    format!(
                        "unknown source `{}`, expected the id of a [[source]]",
                        src.get_ref()
                    ),
                ));
            }
        }
        let value = match &sample.value {
            None => {
                errs.push(Diagnostic {
                    message: "sample has no `value`, expected a number".into(),
                    ..at.clone()
                });
                None
            }
            Some(v) => check_value(*v.get_ref(), &map.diag(v.span(), ""), errs),
        };
        if !ok {
            continue;
        }
        let labels: Box<[Arc<str>]> = values
            .into_iter()
            .map(|v| v.expect("checked above"))
            .collect();
        check_period_value(&labels, &at, errs);
        if let Some(value) = value {
            push(labels, value, at, errs);
        }
    }

    if let Some(f) = &m.samples_file {
        match data.get(f.get_ref()) {
            None | Some((_, Err(_))) => {
                let why = data
                    .get(f.get_ref())
                    .and_then(|(_, r)| r.as_ref().err())
                    .cloned()
                    .unwrap_or_else(|| "not read".into());
                errs.push(map.diag(
                    f.span(),
                    format!("cannot read samples_file `{}`: {why}", f.get_ref()),
                ));
            }
            Some((path, Ok(text))) => {
                read_csv(
                    path,
                    text,
                    raw_name,
                    &label_names,
                    source_ids,
                    interner,
                    errs,
                    |labels, value, at, errs| {
                        if let Some(value) = check_value(value, &at, errs) {
                            check_period_value(&labels, &at, errs);
                            push(labels, value, at, errs);
                        }
                    },
                );
            }
        }
    }

    (errs.len() == before).then(|| Metric {
        name,
        help: m.help.get_ref().trim().to_string(),
        unit,
        label_names,
        series,
    })
}

/// Reads a samples CSV: header = label names + `value` (+ `source`, `basis`).
#[allow(clippy::too_many_arguments)]
fn read_csv(
    path: &Path,
    text: &str,
    metric: &str,
    label_names: &[String],
    source_ids: &HashSet<&str>,
    interner: &mut Interner,
    errs: &mut Vec<Diagnostic>,
    mut sample: impl FnMut(Box<[Arc<str>]>, f64, Diagnostic, &mut Vec<Diagnostic>),
) {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes());
    let mut rows = rdr.records();
    let header = match rows.next() {
        None => {
            errs.push(Diagnostic::file(path, format!("empty file, expected a header with the labels of metric `{metric}` and `value`")));
            return;
        }
        Some(Err(e)) => {
            errs.push(csv_error(path, &e));
            return;
        }
        Some(Ok(h)) => h,
    };
    let mut label_cols = vec![None; label_names.len()];
    let (mut value_col, mut source_col) = (None, None);
    let mut bad_header = false;
    for (i, h) in header.iter().enumerate() {
        let col = column(&header, i);
        match h {
            "value" => value_col = Some(i),
            "source" => source_col = Some(i),
            "basis" => {}
            _ => match label_names.iter().position(|l| l == h) {
                Some(j) => label_cols[j] = Some(i),
                None => {
                    errs.push(Diagnostic::at(path, 1, col, format!("unknown column `{h}`, expected the labels of metric `{metric}` ({}), value, source or basis", label_names.join(", "))));
                    bad_header = true;
                }
            },
        }
    }
    for (j, c) in label_cols.iter().enumerate() {
        if c.is_none() {
            errs.push(Diagnostic::at(
                path,
                1,
                1,
                format!(
                    "header has no column `{}`, expected every label of metric `{metric}`",
                    label_names[j]
                ),
            ));
            bad_header = true;
        }
    }
    let Some(value_col) = value_col else {
        errs.push(Diagnostic::at(path, 1, 1, "header has no column `value`"));
        return;
    };
    if bad_header {
        return;
    }
    for row in rows {
        let row = match row {
            Ok(r) => r,
            Err(e) => {
                errs.push(csv_error(path, &e));
                continue;
            }
        };
        let line = row.position().map_or(0, |p| p.line() as usize);
        let at = |i: usize| Diagnostic::at(path, line, column(&row, i), "");
        let mut ok = true;
        let mut labels = Vec::with_capacity(label_cols.len());
        for (j, c) in label_cols.iter().enumerate() {
            let c = c.expect("checked above");
            let v = row.get(c).unwrap_or("");
            if v.is_empty() {
                errs.push(Diagnostic {
                    message: format!(
                        "empty value for label `{}`, expected a code",
                        label_names[j]
                    ),
                    ..at(c)
                });
                ok = false;
            }
            labels.push(interner.intern(v));
        }
        if let Some(c) = source_col {
            let s = row.get(c).unwrap_or("");
            if !s.is_empty() && !source_ids.contains(s) {
                errs.push(Diagnostic {
                    message: format!("unknown source `{s}`, expected the id of a [[source]]"),
                    ..at(c)
                });
            }
        }
        let raw = row.get(value_col).unwrap_or("").trim();
        let value = if raw.is_empty() {
            errs.push(Diagnostic {
                message: "missing value, expected a number".into(),
                ..at(value_col)
            });
            None
        } else {
            match raw.parse::<f64>() {
                Ok(v) => Some(v),
                Err(_) => {
                    errs.push(Diagnostic {
                        message: format!("invalid value `{raw}`, expected a number"),
                        ..at(value_col)
                    });
                    None
                }
            }
        };
        if let (true, Some(v)) = (ok, value) {
            sample(labels.into_boxed_slice(), v, at(value_col), errs);
        }
    }
}

fn csv_error(path: &Path, e: &csv::Error) -> Diagnostic {
    let line = e.position().map_or(0, |p| p.line() as usize);
    let message = match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => {
            format!("row has {len} fields, expected {expected_len} like the header")
        }
        csv::ErrorKind::Utf8 { .. } => "invalid UTF-8, expected UTF-8 text".into(),
        _ => e.to_string(),
    };
    Diagnostic {
        line,
        col: if line > 0 { 1 } else { 0 },
        ..Diagnostic::file(path, message)
    }
}

/// 1-based column of field `i`, exact for unquoted fields.
fn column(row: &csv::StringRecord, i: usize) -> usize {
    1 + row
        .iter()
        .take(i)
        .map(|f| f.chars().count() + 1)
        .sum::<usize>()
}

/// Derived series along the period label: latest value, latest period, change on the
/// previous period, for every label combination of a metric without the period label.
fn derive(metrics: &[Metric], period_label: &str) -> Vec<(usize, Metric)> {
    let mut out = Vec::new();
    for (idx, m) in metrics.iter().enumerate() {
        let Some(pi) = m.label_names.iter().position(|l| l == period_label) else {
            continue;
        };
        let stem = match m.unit.base() {
            Some(b) => m
                .name
                .strip_suffix(&format!("_{b}"))
                .expect("name ends with its unit"),
            None => &m.name,
        };
        let unit_suffix = m.unit.base().map_or(String::new(), |b| format!("_{b}"));
        let label_names: Vec<String> = m
            .label_names
            .iter()
            .filter(|l| *l != period_label)
            .cloned()
            .collect();
        // group: labels without period -> (period, value) sorted
        let mut groups: BTreeMap<Vec<Arc<str>>, Vec<(i64, f64)>> = BTreeMap::new();
        for s in &m.series {
            let Ok(p) = s.labels[pi].parse::<i64>() else {
                continue;
            };
            let key: Vec<Arc<str>> = s
                .labels
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != pi)
                .map(|(_, v)| v.clone())
                .collect();
            groups.entry(key).or_default().push((p, s.value));
        }
        let (mut latest, mut latest_period, mut change) = (Vec::new(), Vec::new(), Vec::new());
        for (key, mut points) in groups {
            points.sort_by_key(|p| p.0);
            let (p, v) = *points.last().expect("groups are never empty");
            let labels: Box<[Arc<str>]> = key.into_boxed_slice();
            latest.push(Series {
                labels: labels.clone(),
                value: v,
            });
            latest_period.push(Series {
                labels: labels.clone(),
                value: p as f64,
            });
            if let Some(&(_, prev)) = points.iter().rev().nth(1) {
                change.push(Series {
                    labels,
                    value: decimal_sub(v, prev),
                });
            }
        }
        out.push((idx, Metric {
            name: format!("{stem}_latest{unit_suffix}"),
            help: format!("Latest published value of {} per label set: the value at the latest {period_label} that has one (see {stem}_latest_{period_label}).", m.name),
            unit: m.unit,
            label_names: label_names.clone(),
            series: latest,
        }));
        out.push((
            idx,
            Metric {
                name: format!("{stem}_latest_{period_label}"),
                help: format!(
                    "Latest {period_label} for which {} has a value, per label set.",
                    m.name
                ),
                unit: Unit::Count,
                label_names: label_names.clone(),
                series: latest_period,
            },
        ));
        if change.is_empty() {
            // A single period has no change to report; an empty family would only confuse.
            continue;
        }
        out.push((idx, Metric {
            name: format!("{stem}_change{unit_suffix}"),
            help: format!("Change of {} from the previous {period_label} that has a value to the latest, per label set (latest minus previous, in the metric's unit).", m.name),
            unit: m.unit,
            label_names,
            series: change,
        }));
    }
    out
}

fn labels_text(names: &[String], values: &[Arc<str>]) -> String {
    names
        .iter()
        .zip(values)
        .map(|(n, v)| format!("{n}=\"{v}\""))
        .collect::<Vec<_>>()
        .join(",")
}

fn check_label_name(map: &SourceMap, l: &Spanned<String>, errs: &mut Vec<Diagnostic>) {
    let n = l.get_ref();
    if n.starts_with("__") {
        errs.push(map.diag(
            l.span(),
            format!(
                "label name `{n}` starts with `__`, which Prometheus reserves for internal use"
            ),
        ));
    } else if !is_label_name(n) {
        errs.push(map.diag(l.span(), format!("invalid label name `{n}`, expected letters, digits and underscores, not starting with a digit")));
    }
}

fn is_label_name(s: &str) -> bool {
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
            errs.push(map.diag(d.span(), format!("invalid date `{s}`, expected {expected}")));
            None
        }
    }
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Shares repeated label values (years, codes) between series to keep large datasets small.
#[derive(Default)]
struct Interner(HashSet<Arc<str>>);

impl Interner {
    fn intern(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.0.get(s) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(s);
        self.0.insert(a.clone());
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2025, 1, 15) * 86_400, 1_736_899_200);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }
}
