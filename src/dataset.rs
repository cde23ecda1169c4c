//! Stage 2 of the pipeline: typed [`Config`] (+ the data files it names) -> validated
//! [`Dataset`]. Pure: no I/O. Every problem found is reported, each with its position.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use rustc_hash::FxHashMap;

use toml::Spanned;

use crate::config::{Config, LabelConfig, MetricConfig, PeriodConfig, SampleConfig};
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
    /// Every distinct label value, once; metrics refer to them by index.
    pub symbols: Vec<Box<str>>,
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
    /// Label values of every series as ids into [`Dataset::symbols`], `label_names.len()` per
    /// series in `label_names` order. Series are sorted by their values taken in `order`, so
    /// rendering and comparing never sort again. Flat ids keep a million series in ~24 MB.
    labels: Vec<u32>,
    values: Vec<f64>,
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
            labels: Vec::new(),
            values: Vec::new(),
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

    fn push(&mut self, labels: &[u32], value: f64) {
        self.labels.extend_from_slice(labels);
        self.values.push(value);
    }
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
    pub fn summary(&self) -> String {
        format!(
            "dataset {}, {} metrics, {} series",
            self.info.name,
            self.metrics.len(),
            self.series_count()
        )
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
        labels.push(label_display(&map, l, &mut errs));
    }

    // Files series can come from: the config, then each readable samples_file.
    let mut files = vec![path.to_path_buf()];
    let mut raw = Vec::new();
    let mut metric_spans = Vec::new();
    for m in &config.metrics {
        let file = m
            .get_ref()
            .samples_file
            .as_ref()
            .and_then(|f| match data.get(f.get_ref()) {
                Some((p, Ok(_))) => {
                    files.push(p.clone());
                    Some(files.len() as u32 - 1)
                }
                _ => None,
            });
        let ctx = MetricContext {
            map: &map,
            prefix: &prefix,
            source_ids: &source_ids,
            period: period.as_ref().and_then(|p| p.as_ref()),
            data,
        };
        if let Some((metric, positions)) = build_metric(&ctx, m, file, &mut interner, &mut errs) {
            let what = format!("metric `{}`", m.get_ref().name.get_ref());
            claim(
                metric.name.clone(),
                m.get_ref().name.span(),
                what,
                &mut errs,
            );
            metric_spans.push(m.get_ref().name.span());
            raw.push((metric, positions));
        }
    }
    let symbols = interner.symbols;
    let ranks = ranks(&symbols);
    let metrics: Vec<Metric> = raw
        .into_iter()
        .map(|(m, positions)| canonicalize(m, &positions, &ranks, &symbols, &files, &mut errs))
        .collect();

    if config.metrics.is_empty() {
        errs.push(Diagnostic::file(
            path,
            "empty dataset: no [[metric]] defined, expected at least one",
        ));
    } else if errs.is_empty() && metrics.iter().all(Metric::is_empty) {
        errs.push(Diagnostic::file(
            path,
            "empty dataset: no samples in any [[metric]], expected at least one",
        ));
    }

    let mut derived = Vec::new();
    let mut release = None;
    if let Some(Some(p)) = &period {
        for (i, d) in derive(&metrics, &p.label, &symbols, &ranks) {
            let what = format!("the series derived from `{}`", metrics[i].name);
            claim(d.name.clone(), metric_spans[i].clone(), what, &mut errs);
            derived.push(d);
        }
        let latest = metrics
            .iter()
            .filter_map(|m| {
                let j = m.label_names.iter().position(|l| l == &p.label)?;
                (0..m.len())
                    .filter_map(|i| symbols[m.labels(i)[j] as usize].parse::<i64>().ok())
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
        symbols,
    })
}

/// Where a series was defined: a file of `Dataset::files`, line and column.
#[derive(Debug, Clone, Copy)]
struct Pos {
    file: u32,
    line: u32,
    col: u32,
}

/// What every metric's validation reads.
struct MetricContext<'a> {
    map: &'a SourceMap<'a>,
    prefix: &'a str,
    source_ids: &'a HashSet<&'a str>,
    period: Option<&'a Period>,
    data: &'a DataFiles,
}

/// The lexicographic rank of every symbol: comparing ranks orders series like comparing
/// their label strings, at the cost of an integer comparison.
fn ranks(symbols: &[Box<str>]) -> Vec<u32> {
    let mut by_text: Vec<u32> = (0..symbols.len() as u32).collect();
    by_text.sort_by(|a, b| symbols[*a as usize].cmp(&symbols[*b as usize]));
    let mut ranks = vec![0; symbols.len()];
    for (rank, id) in by_text.into_iter().enumerate() {
        ranks[id as usize] = rank as u32;
    }
    ranks
}

/// Sorts a metric's series into written order and reports duplicates, each at its later
/// definition (the sort is stable, so equal series keep their file order).
fn canonicalize(
    m: Metric,
    positions: &[Pos],
    ranks: &[u32],
    symbols: &[Box<str>],
    files: &[PathBuf],
    errs: &mut Vec<Diagnostic>,
) -> Metric {
    let mut idx: Vec<u32> = (0..m.len() as u32).collect();
    idx.sort_by(|a, b| {
        let (la, lb) = (m.labels(*a as usize), m.labels(*b as usize));
        m.order
            .iter()
            .map(|&j| ranks[la[j] as usize].cmp(&ranks[lb[j] as usize]))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let mut out = Metric {
        labels: Vec::with_capacity(m.labels.len()),
        values: Vec::with_capacity(m.len()),
        ..Metric::new(
            m.name.clone(),
            m.help.clone(),
            m.unit,
            m.label_names.clone(),
        )
    };
    let mut first = 0;
    for (n, &i) in idx.iter().enumerate() {
        let i = i as usize;
        if n > 0 && m.labels(i) == m.labels(idx[n - 1] as usize) {
            let (at, was) = (positions[i], positions[idx[first] as usize]);
            let labels = labels_text(&m, i, symbols);
            let where_first = if at.file == was.file {
                format!("line {} column {}", was.line, was.col)
            } else {
                format!(
                    "{}:{}:{}",
                    files[was.file as usize].display(),
                    was.line,
                    was.col
                )
            };
            errs.push(Diagnostic::at(
                &files[at.file as usize],
                at.line as usize,
                at.col as usize,
                format!(
                    "duplicate series {}{{{labels}}}, first defined at {where_first}",
                    m.name
                ),
            ));
            continue;
        }
        first = n;
        out.push(m.labels(i), m.value(i));
    }
    out
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
    LabelDisplay {
        name: name.clone(),
        help: l.help.clone(),
        languages,
        values,
    }
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

/// Validates one metric's definition and samples; series come back unsorted, with where each
/// was defined.
fn build_metric(
    ctx: &MetricContext,
    m: &Spanned<MetricConfig>,
    file: Option<u32>,
    interner: &mut Interner,
    errs: &mut Vec<Diagnostic>,
) -> Option<(Metric, Vec<Pos>)> {
    let map = ctx.map;
    let m = m.get_ref();
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
        Some(b) => format!("{}{raw_name}_{b}", ctx.prefix),
        None => format!("{}{raw_name}", ctx.prefix),
    };
    let period_col = ctx
        .period
        .and_then(|p| label_names.iter().position(|l| l == &p.label));
    let rules = SampleRules {
        unit,
        period_col,
        period_label: ctx.period.map_or("", |p| p.label.as_str()),
    };

    let mut metric = Metric::new(name, m.help.get_ref().trim().to_string(), unit, label_names);
    let mut positions = Vec::new();
    let mut ids = vec![0u32; metric.label_names.len()];
    for s in &m.samples {
        let sample: &SampleConfig = s.get_ref();
        let at = |span: std::ops::Range<usize>| map.diag(span, "");
        let mut ok = true;
        let mut given = vec![false; ids.len()];
        for (k, v) in sample.labels.get_ref() {
            match metric.label_names.iter().position(|l| l == k.get_ref()) {
                Some(i) => {
                    ok &= rules.label_value(i, k.get_ref(), v.get_ref(), || at(v.span()), errs);
                    ids[i] = interner.intern(v.get_ref());
                    given[i] = true;
                }
                None => {
                    errs.push(map.diag(
                        k.span(),
                        format!(
                            "label `{}` is not a label of metric `{raw_name}`, expected one of: {}",
                            k.get_ref(),
                            metric.label_names.join(", ")
                        ),
                    ));
                    ok = false;
                }
            }
        }
        for (i, g) in given.iter().enumerate() {
            if !g {
                errs.push(map.diag(
                    sample.labels.span(),
                    format!("sample has no value for label `{}`, expected every label of metric `{raw_name}`: {}", metric.label_names[i], metric.label_names.join(", ")),
                ));
                ok = false;
            }
        }
        if let Some(src) = &sample.source {
            if !ctx.source_ids.contains(src.get_ref().as_str()) {
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
                    ..at(s.span())
                });
                None
            }
            Some(v) => rules.value(*v.get_ref(), || at(v.span()), errs),
        };
        if let (true, Some(value)) = (ok, value) {
            let d = at(s.span());
            positions.push(Pos {
                file: 0,
                line: d.line as u32,
                col: d.col as u32,
            });
            metric.push(&ids, value);
        }
    }

    if let Some(f) = &m.samples_file {
        match (ctx.data.get(f.get_ref()), file) {
            (Some((path, Ok(text))), Some(file)) => {
                read_csv(
                    path,
                    text,
                    raw_name,
                    &rules,
                    &mut metric,
                    ctx.source_ids,
                    interner,
                    errs,
                    |line, col| {
                        positions.push(Pos { file, line, col });
                    },
                );
            }
            (found, _) => {
                let why = found
                    .and_then(|(_, r)| r.as_ref().err())
                    .cloned()
                    .unwrap_or_else(|| "not read".into());
                errs.push(map.diag(
                    f.span(),
                    format!("cannot read samples_file `{}`: {why}", f.get_ref()),
                ));
            }
        }
    }

    // Returned even with errors, so that duplicates among the valid samples are found too.
    Some((metric, positions))
}

/// The checks every sample of one metric passes, wherever it was written.
struct SampleRules<'a> {
    unit: Unit,
    period_col: Option<usize>,
    period_label: &'a str,
}

impl SampleRules<'_> {
    /// Checks label `i`'s value; false if the sample cannot be used.
    fn label_value(
        &self,
        i: usize,
        label: &str,
        v: &str,
        at: impl FnOnce() -> Diagnostic,
        errs: &mut Vec<Diagnostic>,
    ) -> bool {
        let problem = if v.is_empty() {
            format!("empty value for label `{label}`, expected a code")
        } else if self.period_col == Some(i)
            && !(v.len() == 4 && v.bytes().all(|b| b.is_ascii_digit()))
        {
            format!("{} `{v}` is not a year, expected four digits (the period label of an annual dataset)", self.period_label)
        } else {
            return true;
        };
        errs.push(Diagnostic {
            message: problem,
            ..at()
        });
        false
    }

    /// Checks a published value and converts it to the base unit.
    fn value(
        &self,
        v: f64,
        at: impl FnOnce() -> Diagnostic,
        errs: &mut Vec<Diagnostic>,
    ) -> Option<f64> {
        let problem = if !v.is_finite() {
            format!("value {v} is not a finite number, expected a published figure")
        } else if self.unit == Unit::Percent && !(0.0..=100.0).contains(&v) {
            format!("percent value {v} out of range, expected 0 to 100")
        } else {
            let base = self.unit.to_base(v);
            if base.is_finite() {
                return Some(base);
            }
            format!(
                "value {v} is too large to convert to {}",
                self.unit.base().unwrap_or("the base unit")
            )
        };
        errs.push(Diagnostic {
            message: problem,
            ..at()
        });
        None
    }
}

/// Reads a samples CSV (header = label names + `value`, optionally `source`, `basis`) into
/// `metric`, calling `defined(line, col)` for each series added.
#[allow(clippy::too_many_arguments)]
fn read_csv(
    path: &Path,
    text: &str,
    metric_name: &str,
    rules: &SampleRules,
    metric: &mut Metric,
    source_ids: &HashSet<&str>,
    interner: &mut Interner,
    errs: &mut Vec<Diagnostic>,
    mut defined: impl FnMut(u32, u32),
) {
    let label_names = metric.label_names.clone();
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes());
    let mut rows = rdr.records();
    let header = match rows.next() {
        None => {
            errs.push(Diagnostic::file(path, format!("empty file, expected a header with the labels of metric `{metric_name}` and `value`")));
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
        match h {
            "value" => value_col = Some(i),
            "source" => source_col = Some(i),
            "basis" => {}
            _ => match label_names.iter().position(|l| l == h) {
                Some(j) => label_cols[j] = Some(i),
                None => {
                    errs.push(Diagnostic::at(path, 1, column(&header, i), format!("unknown column `{h}`, expected the labels of metric `{metric_name}` ({}), value, source or basis", label_names.join(", "))));
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
                    "header has no column `{}`, expected every label of metric `{metric_name}`",
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
    let label_cols: Vec<usize> = label_cols
        .into_iter()
        .map(|c| c.expect("checked above"))
        .collect();
    let mut ids = vec![0u32; label_cols.len()];
    for row in rows {
        let row = match row {
            Ok(r) => r,
            Err(e) => {
                errs.push(csv_error(path, &e));
                continue;
            }
        };
        let line = row.position().map_or(0, |p| p.line() as usize);
        // Positions are worked out only when needed: most rows are fine.
        let at = |i: usize| Diagnostic::at(path, line, column(&row, i), "");
        let mut ok = true;
        for (j, &c) in label_cols.iter().enumerate() {
            let v = row.get(c).unwrap_or("");
            ok &= rules.label_value(j, &label_names[j], v, || at(c), errs);
            ids[j] = interner.intern(v);
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
                Ok(v) => rules.value(v, || at(value_col), errs),
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
            metric.push(&ids, v);
            defined(line as u32, column(&row, value_col) as u32);
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
fn derive(
    metrics: &[Metric],
    period_label: &str,
    symbols: &[Box<str>],
    ranks: &[u32],
) -> Vec<(usize, Metric)> {
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
        let names: Vec<String> = m
            .label_names
            .iter()
            .filter(|l| *l != period_label)
            .cloned()
            .collect();
        let new =
            |name: String, help: String, unit: Unit| Metric::new(name, help, unit, names.clone());
        let mut latest = new(
            format!("{stem}_latest{unit_suffix}"),
            format!("Latest published value of {} per label set: the value at the latest {period_label} that has one (see {stem}_latest_{period_label}).", m.name),
            m.unit,
        );
        let mut latest_period = new(
            format!("{stem}_latest_{period_label}"),
            format!(
                "Latest {period_label} for which {} has a value, per label set.",
                m.name
            ),
            Unit::Count,
        );
        let mut change = new(
            format!("{stem}_change{unit_suffix}"),
            format!("Change of {} from the previous {period_label} that has a value to the latest, per label set (latest minus previous, in the metric's unit).", m.name),
            m.unit,
        );

        // Series are sorted by label name order; when the period label sorts last (`year`
        // among `sector`, `size`), each label set's periods are already adjacent and in order.
        let rest: Vec<usize> = m.order.iter().copied().filter(|&j| j != pi).collect();
        let mut idx_order: Vec<u32> = (0..m.len() as u32).collect();
        if m.order.last() != Some(&pi) {
            let key = |i: u32| {
                let l = m.labels(i as usize);
                rest.iter()
                    .map(|&j| ranks[l[j] as usize])
                    .chain(std::iter::once(ranks[l[pi] as usize]))
                    .collect::<Vec<_>>()
            };
            idx_order.sort_by_cached_key(|&i| key(i));
        }
        let mut rest_ids: Vec<u32> = Vec::with_capacity(names.len());
        let mut n = 0;
        while n < idx_order.len() {
            let group = m.labels(idx_order[n] as usize);
            let same = |i: u32| rest.iter().all(|&j| m.labels(i as usize)[j] == group[j]);
            let end = n + idx_order[n..].iter().take_while(|&&i| same(i)).count();
            let last = idx_order[end - 1] as usize;
            rest_ids.clear();
            rest_ids.extend(
                m.labels(last)
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != pi)
                    .map(|(_, &id)| id),
            );
            // Period values were checked to be four-digit years.
            let year: f64 = symbols[m.labels(last)[pi] as usize]
                .parse()
                .unwrap_or(f64::NAN);
            latest.push(&rest_ids, m.value(last));
            latest_period.push(&rest_ids, year);
            if end - n >= 2 {
                change.push(
                    &rest_ids,
                    decimal_sub(m.value(last), m.value(idx_order[end - 2] as usize)),
                );
            }
            n = end;
        }
        out.push((idx, latest));
        out.push((idx, latest_period));
        // A single period has no change to report; an empty family would only confuse.
        if !change.is_empty() {
            out.push((idx, change));
        }
    }
    out
}

fn labels_text(m: &Metric, i: usize, symbols: &[Box<str>]) -> String {
    let ids = m.labels(i);
    m.order
        .iter()
        .map(|&j| format!("{}=\"{}\"", m.label_names[j], symbols[ids[j] as usize]))
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

/// Gives each distinct label value one id: label values repeat (years, codes), and ids make
/// series small and cheap to compare.
#[derive(Default)]
struct Interner {
    ids: FxHashMap<Box<str>, u32>,
    symbols: Vec<Box<str>>,
}

impl Interner {
    fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.symbols.len() as u32;
        self.symbols.push(s.into());
        self.ids.insert(s.into(), id);
        id
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
