//! The one list of metric families a dataset serves: built once per load from the validated
//! parts, with a kind per family and where its samples are. Validation (`check`), the clash
//! check across datasets ([`clashes`]), rendering, export and the pages all read this list,
//! so a new family is one entry here.
//!
//! Small families (info metrics, the publication date, release calendars) get their samples
//! here, as tables of series like any metric's; the large ones point at the declared and
//! derived metrics they serve.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use rustc_hash::FxHashMap;

use super::units::Unit;
use super::{
    DatasetInfo, LabelDisplay, Metric, ReleaseSchedule, Source, NO_STATUS, RESERVED_SUFFIXES,
};
use crate::config::Config;
use crate::diagnostic::{Diagnostic, SourceMap};

/// What a family serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A declared metric's figures.
    Value,
    /// Derived: the latest value per label set.
    Latest,
    /// Derived: the latest period per label set (a year, or a period's start).
    LatestPeriod,
    /// Derived: the change from the previous period.
    Change,
    /// Derived: the change from the same period a year earlier.
    YearOnYear,
    /// An info metric: the dataset, its sources, a label's display names.
    Info,
    /// The observation status flags of a metric (an info metric).
    Status,
    /// A date: the publication of the figures, the next release.
    Calendar,
}

impl Kind {
    /// Whether the family is an info metric: a constant 1 whose labels carry the information,
    /// its OpenMetrics family name without `_info`.
    pub fn is_info(self) -> bool {
        matches!(self, Kind::Info | Kind::Status)
    }

    /// Whether the family is a series derived along the period label.
    pub fn is_derived(self) -> bool {
        matches!(
            self,
            Kind::Latest | Kind::LatestPeriod | Kind::Change | Kind::YearOnYear
        )
    }
}

/// Where a family's samples are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Series {
    /// `Dataset::metrics[i]`.
    Metric(usize),
    /// `Dataset::derived[i]`.
    Derived(usize),
    /// The status flags of `Dataset::metrics[i]`: a sample of 1 per flagged series, its labels
    /// and `flag` and `status`.
    Status(usize),
    /// `Dataset::tables[i]`, made with the list.
    Table(usize),
}

/// What declares a family in the config: where a problem with its name is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Declared {
    Dataset,
    Sources,
    /// `Dataset::labels[i]`.
    Label(usize),
    /// The `[[metric]]` at index `i`, for its values, the series derived from it and its
    /// status flags alike.
    Metric(usize),
    /// The dataset's release calendar (`[dataset.period]`).
    Calendar,
    /// The metrics' own calendars (`[metric.release]`).
    MetricCalendars,
}

/// A family the dataset serves.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// The name as exposed.
    pub name: String,
    /// The OpenMetrics family name: an info metric's name without `_info`.
    pub family: String,
    pub kind: Kind,
    pub help: String,
    /// The unit suffix the name ends with, for OpenMetrics' `# UNIT`.
    pub unit: Option<String>,
    pub series: Series,
    pub declared: Declared,
    /// What declares it, for messages (`metric \`x\``, `the dataset` …).
    pub what: String,
    /// Where it is declared in the config (the dataset's first file).
    pub line: usize,
    pub col: usize,
}

impl Family {
    /// The declared metric the family serves or derives from, if any.
    pub fn metric(&self) -> Option<usize> {
        match self.declared {
            Declared::Metric(i) => Some(i),
            _ => None,
        }
    }
}

/// The validated parts of a dataset that its families are made of.
pub(super) struct Parts<'a> {
    pub info: &'a DatasetInfo,
    pub sources: &'a [Source],
    pub labels: &'a [LabelDisplay],
    pub metrics: &'a [Metric],
    /// Derived metrics with the index of the metric each comes from, and its kind.
    pub derived: &'a [(usize, Kind, Metric)],
    pub release: Option<&'a ReleaseSchedule>,
    pub metric_releases: &'a [(String, ReleaseSchedule)],
    /// Each index metric's name and its base period (`index_base`).
    pub index_bases: &'a [(String, String)],
}

/// The families, sorted by name, and the tables of the small ones.
pub(super) struct Listed {
    pub families: Vec<Family>,
    pub tables: Vec<Metric>,
}

/// Interns the label values of tables into the dataset's symbols. Only the tables' own values
/// are looked up: one the dataset already has gets a second id, which costs a few bytes,
/// where indexing every symbol of a large dataset would cost a copy of each.
struct Symbols<'s> {
    symbols: &'s mut Vec<Box<str>>,
    ids: FxHashMap<Box<str>, u32>,
}

impl Symbols<'_> {
    fn id(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.symbols.len() as u32;
        self.symbols.push(s.into());
        self.ids.insert(s.into(), id);
        id
    }
}

/// Builds the list as it goes.
struct Lister<'s> {
    families: Vec<Family>,
    tables: Vec<Metric>,
    symbols: Symbols<'s>,
}

impl Lister<'_> {
    fn add(&mut self, name: String, kind: Kind, help: String, series: Series, declared: Declared) {
        let family = match kind.is_info() {
            true => name.strip_suffix("_info").unwrap_or(&name).to_string(),
            false => name.clone(),
        };
        let unit = match series {
            Series::Table(t) => self.tables[t].unit.suffix().map(str::to_string),
            _ => None,
        };
        self.families.push(Family {
            name,
            family,
            kind,
            help,
            unit,
            series,
            declared,
            what: String::new(),
            line: 0,
            col: 0,
        });
    }

    /// A table of `rows` (label values in `labels` order, and the value), served as `name`.
    #[allow(clippy::too_many_arguments)]
    fn table(
        &mut self,
        name: String,
        kind: Kind,
        help: String,
        unit: &str,
        labels: &[&str],
        rows: &[(Vec<&str>, f64)],
        declared: Declared,
    ) {
        let unit = Unit::parse(unit).expect("a unit the exporter names");
        let names = labels.iter().map(|l| l.to_string()).collect();
        let mut t = Metric::new(name.clone(), help.clone(), unit, names);
        for (values, value) in rows {
            let ids: Vec<u32> = values.iter().map(|v| self.symbols.id(v)).collect();
            t.push(&ids, *value, NO_STATUS);
        }
        self.tables.push(t);
        self.add(
            name,
            kind,
            help,
            Series::Table(self.tables.len() - 1),
            declared,
        );
    }
}

/// Every family the dataset serves, sorted by name. Label values of the tables are added to
/// `symbols`.
pub(super) fn list(p: &Parts, symbols: &mut Vec<Box<str>>) -> Listed {
    let mut l = Lister {
        families: Vec::new(),
        tables: Vec::new(),
        symbols: Symbols {
            symbols,
            ids: FxHashMap::default(),
        },
    };
    dataset_families(&mut l, p);
    for (i, label) in p.labels.iter().enumerate() {
        label_family(&mut l, p.info, i, label);
    }
    metric_families(&mut l, p);
    calendar_families(&mut l, p);
    l.families.sort_by(|a, b| a.name.cmp(&b.name));
    Listed {
        families: l.families,
        tables: l.tables,
    }
}

/// The dataset's info, its publication date and its sources.
fn dataset_families(l: &mut Lister, p: &Parts) {
    let (info, prefix) = (p.info, &p.info.prefix);
    l.table(
        format!("{prefix}dataset_info"),
        Kind::Info,
        format!(
            "Dataset served by this exporter: {}, published by {} on {}.",
            info.title, info.publisher, info.published
        ),
        "count",
        &["dataset", "published", "publisher", "source_url", "title"],
        &[(
            vec![
                &info.name,
                &info.published,
                &info.publisher,
                &info.source_url,
                &info.title,
            ],
            1.0,
        )],
        Declared::Dataset,
    );
    l.table(
        format!("{prefix}dataset_published_timestamp_seconds"),
        Kind::Calendar,
        format!("Publication date of the latest figures of the dataset {} (00:00 UTC), as a Unix timestamp.", info.name),
        "seconds",
        &["dataset"],
        &[(vec![&info.name], info.published_timestamp as f64)],
        Declared::Dataset,
    );
    if !p.index_bases.is_empty() {
        let rows: Vec<(Vec<&str>, f64)> = p
            .index_bases
            .iter()
            .map(|(metric, base)| (vec![base.as_str(), metric.as_str()], 1.0))
            .collect();
        l.table(
            format!("{prefix}index_base_info"),
            Kind::Info,
            "The base period of each index metric of this dataset: its figures are index points, 100 in that period.".into(),
            "count",
            &["base", "metric"],
            &rows,
            Declared::Dataset,
        );
    }
    if p.sources.is_empty() {
        return;
    }
    let mut sources: Vec<&Source> = p.sources.iter().collect();
    sources.sort_by(|a, b| a.id.cmp(&b.id));
    let rows: Vec<(Vec<&str>, f64)> = sources
        .iter()
        .map(|s| (vec![&*s.published, &s.id, &s.title, &s.url], 1.0))
        .collect();
    l.table(
        format!("{prefix}source_info"),
        Kind::Info,
        "Publications the figures of this dataset are taken from; `source` is the id samples cite."
            .into(),
        "count",
        &["published", "source", "title", "url"],
        &rows,
        Declared::Sources,
    );
}

/// The display names of one label's codes, a `name_<lang>` label per language.
fn label_family(l: &mut Lister, info: &DatasetInfo, i: usize, label: &LabelDisplay) {
    let help = if label.help.is_empty() {
        format!("Display names of the codes of label `{}`.", label.name)
    } else {
        format!(
            "Display names of the codes of label `{}`: {}",
            label.name, label.help
        )
    };
    let keys: Vec<String> = label
        .languages
        .iter()
        .map(|lang| format!("name_{lang}"))
        .collect();
    let mut names: Vec<&str> = vec![&label.name];
    names.extend(keys.iter().map(String::as_str));
    let mut values: Vec<&(String, Vec<String>)> = label.values.iter().collect();
    values.sort_by(|a, b| a.0.cmp(&b.0));
    let rows: Vec<(Vec<&str>, f64)> = values
        .iter()
        .map(|(code, given)| {
            let mut row: Vec<&str> = vec![code];
            row.extend(given.iter().map(String::as_str));
            (row, 1.0)
        })
        .collect();
    l.table(
        format!("{}{}_info", info.prefix, label.name),
        Kind::Info,
        help,
        "count",
        &names,
        &rows,
        Declared::Label(i),
    );
}

/// Each declared metric, the series derived from it, and its status flags.
fn metric_families(l: &mut Lister, p: &Parts) {
    for (i, m) in p.metrics.iter().enumerate() {
        l.add(
            m.name.clone(),
            Kind::Value,
            m.help.clone(),
            Series::Metric(i),
            Declared::Metric(i),
        );
        if m.has_status() {
            l.add(
                m.status_family(),
                Kind::Status,
                status_help(m),
                Series::Status(i),
                Declared::Metric(i),
            );
        }
    }
    for (j, (i, kind, d)) in p.derived.iter().enumerate() {
        l.add(
            d.name.clone(),
            *kind,
            d.help.clone(),
            Series::Derived(j),
            Declared::Metric(*i),
        );
    }
    for f in &mut l.families {
        let m = match f.series {
            Series::Metric(i) => &p.metrics[i],
            Series::Derived(j) => &p.derived[j].2,
            _ => continue,
        };
        f.unit = m.unit.suffix().map(str::to_string);
    }
}

/// HELP of a metric's status family.
fn status_help(m: &Metric) -> String {
    format!("Observation status flags of {} (provisional, estimated, break …) as the publisher gives them, for the series that have one; `status` is the code, `flag` its meaning. The value series keeps its identity when a flag changes.", m.name)
}

/// When the next release of the dataset, and of each metric with its own calendar, is
/// expected and overdue.
fn calendar_families(l: &mut Lister, p: &Parts) {
    let (info, prefix) = (p.info, &p.info.prefix);
    let words = |expected: bool| match expected {
        true => ("expected", "usually published", "by"),
        false => ("overdue", "overdue", "after"),
    };
    for expected in [true, false] {
        let (key, what, when) = words(expected);
        let at = |r: &ReleaseSchedule| match expected {
            true => r.expected_timestamp,
            false => r.overdue_timestamp,
        };
        let mut rs: Vec<&(String, ReleaseSchedule)> = p.metric_releases.iter().collect();
        rs.sort_by(|a, b| a.0.cmp(&b.0));
        let periods: Vec<String> = rs.iter().map(|(_, r)| r.next_period.to_string()).collect();
        let rows: Vec<(Vec<&str>, f64)> = rs
            .iter()
            .zip(&periods)
            .filter_map(|((metric, r), period)| Some((vec![&**metric, &**period], at(r)? as f64)))
            .collect();
        if let (false, Some((_, r))) = (rows.is_empty(), rs.first()) {
            l.table(
                format!("{prefix}metric_next_release_{key}_timestamp_seconds"),
                Kind::Calendar,
                format!("When the figures of the next period of each metric with its own release calendar are {what}: {when} this Unix timestamp, from the metric's [metric.release] in the config."),
                "seconds",
                &["metric", &r.period_label],
                &rows,
                Declared::MetricCalendars,
            );
        }
        let Some(r) = p.release else { continue };
        let Some(t) = at(r) else { continue };
        let period = r.next_period.to_string();
        l.table(
            format!("{prefix}next_release_{key}_timestamp_seconds"),
            Kind::Calendar,
            format!(
                "When the figures of the next {} of dataset {} are {what}: {when} this Unix timestamp, from the release calendar in the config.",
                r.period_label, info.name
            ),
            "seconds",
            &["dataset", &r.period_label],
            &[(vec![&info.name, &period], t as f64)],
            Declared::Calendar,
        );
    }
}

/// Labels Prometheus attaches to every scraped series: a series carrying one of its own keeps
/// it only as `exported_<name>`, which every query and rule would miss.
pub(super) const TARGET_LABELS: &[&str] = &["job", "instance"];

/// Name prefixes of the exporter's own metrics, served in the same exposition.
const OWN_NAMESPACES: &[&str] = &["indicator_exporter_", "process_"];

fn own_namespace(name: &str) -> Option<&'static str> {
    OWN_NAMESPACES
        .iter()
        .find(|ns| name.starts_with(*ns))
        .copied()
}

/// Checks that every family will read back as what it is, in the text format and in
/// OpenMetrics alike, and gives each its place in the config:
///
/// - names unique, counting the family names OpenMetrics gives info metrics (`foo_info` is
///   family `foo`, so a gauge `foo` beside it is one family twice);
/// - no family name ending in a suffix that OpenMetrics gives the samples of another type
///   (`_total`, `_created`, `_count`, `_sum`, `_bucket`, `_gcount`, `_gsum`, `_info`): a
///   counter `foo` would write `foo_total`, so a gauge `foo_total` could be read as its sample;
/// - none in the namespaces of the exporter's own metrics (`indicator_exporter_`, `process_`);
/// - no label twice in one family, where the exporter adds labels of its own: `name_<lang>` on
///   display names, `flag` and `status` on status flags, `dataset` and `metric` beside the
///   period label on release calendars;
/// - no `job` or `instance` label, which Prometheus would store as `exported_job` and
///   `exported_instance`.
pub(super) fn check(
    map: &SourceMap,
    config: &Config,
    p: &Parts,
    period_label: &str,
    families: &mut Vec<Family>,
    errs: &mut Vec<Diagnostic>,
) {
    let places = Places { config, p };
    let prefix = &p.info.prefix;
    // A prefix in the exporter's namespace is one mistake, not one per family.
    let prefix_is_own = match own_namespace(prefix) {
        Some(ns) => {
            let span = config.dataset.get_ref().metric_prefix.span();
            errs.push(map.diag(span, format!("metric_prefix `{prefix}` is in the `{ns}` namespace of the exporter's own metrics, expected another prefix")));
            true
        }
        None => false,
    };
    // Claimed in the order families are declared, so that "already taken by" names the first.
    let mut order: Vec<usize> = (0..families.len()).collect();
    order.sort_by_key(|&i| declaration_order(&families[i]));
    let mut claimed: HashMap<String, usize> = HashMap::new();
    let mut kept = vec![false; families.len()];
    for i in order {
        let f = &mut families[i];
        f.what = places.what(f);
        let span = places.span(f);
        (f.line, f.col) = map.line_col(span.start);
        if !prefix_is_own {
            if let Some(ns) = own_namespace(&f.name) {
                errs.push(map.diag(span.clone(), format!("metric name `{}` of {} is in the `{ns}` namespace of the exporter's own metrics, expected another name", f.name, f.what)));
            }
        }
        reserved_suffix(map, &places, f, span.clone(), errs);
        match claimed.get(&f.family) {
            Some(&j) => {
                let first = &families[j];
                let message = if first.name == families[i].name {
                    format!(
                        "metric name `{}` of {} is already taken by {}, expected unique names",
                        first.name, families[i].what, first.what
                    )
                } else {
                    format!("metric name `{}` of {} and `{}` of {} are one family `{}` in OpenMetrics, expected unique names", families[i].name, families[i].what, first.name, first.what, first.family)
                };
                errs.push(map.diag(span, message));
            }
            None => {
                claimed.insert(f.family.clone(), i);
                kept[i] = true;
            }
        }
    }
    check_labels(map, &places, period_label, errs);
    // A name claimed twice is served once: the second claim is an error already.
    let mut k = kept.into_iter();
    families.retain(|_| k.next().unwrap_or(false));
}

/// The order in which families are claimed, so that "already taken by" names the first: the
/// dataset's, the labels', each metric's values and status flags, the derived series, the
/// calendars.
fn declaration_order(f: &Family) -> (usize, usize, usize, &str) {
    let name = f.name.as_str();
    match (f.declared, f.series) {
        (Declared::Dataset, _) => (0, (f.kind == Kind::Calendar) as usize, 0, name),
        (Declared::Sources, _) => (1, 0, 0, name),
        (Declared::Label(i), _) => (2, i, 0, name),
        (_, Series::Metric(i)) => (3, i, 0, name),
        (_, Series::Status(i)) => (3, i, 1, name),
        (_, Series::Derived(j)) => (4, j, 0, name),
        (Declared::Calendar, _) => (5, 0, 0, name),
        _ => (6, 0, 0, name),
    }
}

/// A family name that ends in a suffix OpenMetrics gives the samples of another type. A
/// `[[metric]]` name was checked where it was written; the names the exporter makes are
/// checked here.
fn reserved_suffix(
    map: &SourceMap,
    places: &Places,
    f: &Family,
    span: Range<usize>,
    errs: &mut Vec<Diagnostic>,
) {
    if let (Kind::Value, Declared::Metric(i)) = (f.kind, f.declared) {
        let raw = places.config.metrics[i].get_ref().name.get_ref();
        if RESERVED_SUFFIXES.iter().any(|s| raw.ends_with(s)) {
            return;
        }
    }
    let Some(s) = RESERVED_SUFFIXES.iter().find(|s| f.family.ends_with(*s)) else {
        return;
    };
    let whose = match *s {
        "_total" | "_created" => "counters",
        "_info" => "info metrics",
        "_gcount" | "_gsum" => "gauge histograms",
        _ => "histograms and summaries",
    };
    errs.push(map.diag(
        span,
        format!("metric name `{}` of {} makes family `{}`, which ends in `{s}`, a suffix OpenMetrics gives the samples of {whose}, expected a name without it", f.name, f.what, f.family),
    ));
}

/// Labels that clash with the labels the exporter adds, or that Prometheus gives every target.
fn check_labels(map: &SourceMap, places: &Places, period_label: &str, errs: &mut Vec<Diagnostic>) {
    let (config, p) = (places.config, places.p);
    let prefix = &p.info.prefix;
    for (i, l) in p.labels.iter().enumerate() {
        let span = places.span_of(Declared::Label(i));
        if TARGET_LABELS.contains(&l.name.as_str()) {
            errs.push(map.diag(span.clone(), format!("label `{}` is a label Prometheus gives every target: it would be stored as `exported_{}`, expected another label name", l.name, l.name)));
        }
        if let Some(lang) = l
            .languages
            .iter()
            .find(|lang| format!("name_{lang}") == l.name)
        {
            errs.push(map.diag(span, format!("label `{}` clashes with the label `name_{lang}` that the display names in language `{lang}` get in `{prefix}{}_info`, expected another label name", l.name, l.name)));
        }
    }
    for (i, m) in p.metrics.iter().enumerate() {
        for l in m
            .label_names
            .iter()
            .filter(|l| TARGET_LABELS.contains(&l.as_str()))
        {
            errs.push(map.diag(places.label_span(i, l), format!("label `{l}` of metric `{}` is a label Prometheus gives every target: it would be stored as `exported_{l}`, expected another label name", m.name)));
        }
        if !m.has_status() {
            continue;
        }
        let family = m.status_family();
        for added in ["flag", "status"] {
            if m.label_names.iter().any(|l| l == added) {
                errs.push(map.diag(places.label_span(i, added), format!("label `{added}` of metric `{}` clashes with the label `{added}` that its status flags get in `{family}`, expected another label name (rename it with `labels` in its [[input]])", m.name)));
            }
        }
    }
    let ds = config.dataset.get_ref();
    let period_span = ds
        .period
        .as_ref()
        .map_or(config.dataset.span(), |p| p.get_ref().label.span());
    let calendars = [
        (
            p.release.is_some(),
            "dataset",
            "next_release_expected_timestamp_seconds",
        ),
        (
            !p.metric_releases.is_empty(),
            "metric",
            "metric_next_release_expected_timestamp_seconds",
        ),
    ];
    for (has, beside, family) in calendars {
        if has && period_label == beside {
            errs.push(map.diag(period_span.clone(), format!("period label `{period_label}` clashes with the label `{beside}` beside it in `{prefix}{family}`, expected another label name")));
        }
    }
}

/// Where families are declared in the config, and what declares them.
struct Places<'a> {
    config: &'a Config,
    p: &'a Parts<'a>,
}

impl Places<'_> {
    fn what(&self, f: &Family) -> String {
        match f.declared {
            Declared::Dataset => "the dataset".into(),
            Declared::Sources => "the [[source]] list".into(),
            Declared::Label(i) => format!("[[label]] `{}`", self.p.labels[i].name),
            Declared::Metric(i) => match f.kind {
                Kind::Value => format!(
                    "metric `{}`",
                    self.config.metrics[i].get_ref().name.get_ref()
                ),
                Kind::Status => format!("the status flags of `{}`", self.p.metrics[i].name),
                _ => format!("the series derived from `{}`", self.p.metrics[i].name),
            },
            Declared::Calendar => "the release calendar".into(),
            Declared::MetricCalendars => "the metrics' release calendars".into(),
        }
    }

    fn span(&self, f: &Family) -> Range<usize> {
        self.span_of(f.declared)
    }

    fn span_of(&self, d: Declared) -> Range<usize> {
        let config = self.config;
        match d {
            Declared::Label(i) => {
                let name = &self.p.labels[i].name;
                config
                    .labels
                    .iter()
                    .find(|c| c.get_ref().name.get_ref() == name)
                    .map_or(config.dataset.span(), |c| c.get_ref().name.span())
            }
            Declared::Metric(i) => config.metrics[i].get_ref().name.span(),
            _ => config.dataset.span(),
        }
    }

    /// Where a label of metric `i` is written: in its `labels`, else (read from a file) its
    /// name.
    fn label_span(&self, i: usize, label: &str) -> Range<usize> {
        self.config.metrics[i]
            .get_ref()
            .labels
            .as_ref()
            .and_then(|ls| ls.get_ref().iter().find(|l| l.get_ref() == label))
            .map_or_else(|| self.span_of(Declared::Metric(i)), |l| l.span())
    }
}

/// What makes datasets that are each valid clash when served together: two with one name,
/// or one family served by two. Each problem names both places. `datasets` are in catalogue
/// order; a problem is reported at the later one of a pair, which is the one refused.
pub fn clashes(datasets: &[&super::Dataset]) -> Vec<(usize, Diagnostic)> {
    let mut out = Vec::new();
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut families: HashMap<&str, (usize, &Family)> = HashMap::new();
    let at = |d: &super::Dataset| -> PathBuf { d.files.first().cloned().unwrap_or_default() };
    for (i, d) in datasets.iter().enumerate() {
        let name = d.info.name.as_str();
        if let Some(&j) = names.get(name) {
            let message = format!("dataset name `{name}` is also the name of the dataset in {}, expected unique dataset names", at(datasets[j]).display());
            out.push((i, Diagnostic::file(&at(d), message)));
            continue;
        }
        let mut mine = Vec::new();
        for f in &d.families {
            let Some((j, other)) = families.get(f.family.as_str()) else {
                continue;
            };
            mine.push(clash(
                &at(d),
                name,
                f,
                datasets[*j],
                &at(datasets[*j]),
                other,
            ));
        }
        if mine.is_empty() {
            names.insert(name, i);
            for f in &d.families {
                families.insert(f.family.as_str(), (i, f));
            }
        } else {
            out.extend(mine.into_iter().map(|m| (i, m)));
        }
    }
    out
}

/// Family `f` of dataset `name` (at `path`) is also `other` of dataset `first`.
fn clash(
    path: &Path,
    name: &str,
    f: &Family,
    first: &super::Dataset,
    first_path: &Path,
    other: &Family,
) -> Diagnostic {
    Diagnostic::at(
        path,
        f.line,
        f.col,
        format!(
            "`{}` ({}) of dataset `{name}` is also served by dataset `{}` ({} at {}:{}:{}), expected metric names unique across datasets (another metric_prefix?)",
            f.name,
            f.what,
            first.info.name,
            other.what,
            first_path.display(),
            other.line,
            other.col
        ),
    )
}
