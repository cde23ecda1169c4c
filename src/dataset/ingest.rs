//! Data files -> observations. Each `[[input]]` (and each metric's `samples_file`) is read by
//! the reader of its format ([`crate::source`]); this module maps the reader's components to
//! metrics, labels, the period, the value, the unit and the status as the config says, and
//! feeds every observation to the one validator (`dataset::Builder::add`).

use std::collections::HashSet;
use std::ops::Range;

use rustc_hash::{FxHashMap, FxHashSet};
use toml::Spanned;

use crate::config::InputConfig;
use crate::dataset::units::{self, Unit, MULTIPLIER_FORMS};
use crate::dataset::{Builder, DataFiles, Field, Loc, Obs, Value};
use crate::diagnostic::SourceMap;
use crate::source::{self, Component, Format, Origin, Role, Sink};

/// Values that mean "no figure" unless an input says otherwise.
pub(crate) const DEFAULT_MISSING: &[&str] = &[
    "", "..", "...", ":", "x", "X", "NaN", "nan", "-", "n/a", "NA", ":C", ":c",
];

/// Component ids looked for, case-blind, when the config does not name one.
pub(crate) const PERIOD_NAMES: &[&str] = &["period", "year", "time_period", "time", "date"];
pub(crate) const VALUE_NAMES: &[&str] = &["value", "obs_value"];
pub(crate) const UNIT_NAMES: &[&str] = &["unit_measure", "unit"];
pub(crate) const MULTIPLIER_NAMES: &[&str] =
    &["unit_mult", "powercode", "unit_multiplier", "scalar_factor"];
pub(crate) const STATUS_NAMES: &[&str] = &["obs_status", "obs_flag", "status"];
pub(crate) const CONF_NAMES: &[&str] = &["obs_conf", "conf_status"];

/// A metric's own CSV file (`samples_file`): a header of its label names, `value`, and
/// optionally `source` and `basis`. Read by the CSV reader, checked strictly.
pub(crate) fn samples_file(
    map: &SourceMap,
    b: &mut Builder,
    metric: usize,
    f: &Spanned<String>,
    data: &DataFiles,
) {
    let Some(text) = open(map, b, f, "samples_file", data, crate::read::as_text) else {
        return;
    };
    let (file, text) = text;
    let spec = Spec {
        // Problems of the file as a whole are at the `samples_file` key naming it.
        span: f.span(),
        file_name: f.get_ref().clone(),
        metric: Some(metric),
        strict: true,
        missing: FxHashSet::default(),
        ..Spec::default()
    };
    let mut plan = Plan::new(map, b, spec, file);
    source::csv::read(text, &Default::default(), &mut plan);
}

/// One `[[input]]`.
pub(crate) fn input(
    map: &SourceMap,
    b: &mut Builder,
    input: &Spanned<InputConfig>,
    data: &DataFiles,
) {
    let c = input.get_ref();
    let name = c.format.get_ref().as_str();
    let Some(format) = Format::parse(name) else {
        b.errs.push(map.diag(
            c.format.span(),
            format!(
                "unknown format `{name}`, expected one of {}",
                Format::names()
            ),
        ));
        return;
    };
    // Options of one format under another are a mistake worth saying.
    let mut bad_options = false;
    for other in Format::ALL.into_iter().filter(|&f| f != format) {
        if let Some(span) = c.options_span(other) {
            b.errs.push(map.diag(
                span,
                format!(
                    "options for format `{}` in an input of format `{name}`, expected [input.{}] or none",
                    other.name(),
                    format.options_key()
                ),
            ));
            bad_options = true;
        }
    }
    let f = &c.file;
    let Some(spec) = Spec::from_config(map, b, c, f) else {
        return;
    };
    if bad_options {
        return;
    }
    // Read first: the data file is the builder's current file while its rows are read.
    let structure = match &c.structure {
        Some(s) => match structure(map, b, s, format, data) {
            Some(s) => Some(s),
            None => return,
        },
        None => None,
    };
    let decode = |bytes| format.content(bytes);
    let Some((file, content)) = open(map, b, f, "input file", data, decode) else {
        return;
    };
    let mut plan = Plan::new(map, b, spec, file);
    match &structure {
        Some(s) => c.options(format).read_with_structure(content, s, &mut plan),
        None => c.options(format).read(content, &mut plan),
    }
}

/// The SDMX structure message an input names, parsed; None when it cannot be used (the
/// reason reported at the config key, or in the structure file at its place).
fn structure(
    map: &SourceMap,
    b: &mut Builder,
    key: &Spanned<String>,
    format: Format,
    data: &DataFiles,
) -> Option<source::sdmx_structure::Structure> {
    if !matches!(format, Format::SdmxMl | Format::SdmxCsv | Format::SdmxJson) {
        let msg = format!(
            "a structure for an input of format `{}`, expected one only for sdmx-ml, sdmx-csv or sdmx-json",
            format.name()
        );
        b.errs.push(map.diag(key.span(), msg));
        return None;
    }
    let decode = |bytes| crate::read::as_text(bytes);
    let (file, text) = open(map, b, key, "structure", data, decode)?;
    match source::sdmx_structure::parse(text) {
        Ok(s) => Some(s),
        Err(problems) => {
            for (origin, message) in problems {
                b.error(file, loc(origin), message);
            }
            None
        }
    }
}

/// The file's contents as `decode` takes them (text checked, or the bytes as they are),
/// registered with the builder; or an error at the config key naming it.
fn open<'d, T>(
    map: &SourceMap,
    b: &mut Builder,
    f: &Spanned<String>,
    what: &str,
    data: &'d DataFiles,
    decode: impl FnOnce(&'d [u8]) -> Result<T, String>,
) -> Option<(u32, T)> {
    let read = match data.get(f.get_ref()) {
        Some(d) => d.bytes.as_ref().map_err(Clone::clone).and_then(|bytes| {
            let content = decode(bytes)?;
            Ok((d, content))
        }),
        None => Err("not read".to_string()),
    };
    match read {
        Ok((d, content)) => Some((b.add_file(d.path.clone()), content)),
        Err(why) => {
            b.errs.push(map.diag(
                f.span(),
                format!("cannot read {what} `{}`: {why}", f.get_ref()),
            ));
            None
        }
    }
}

/// What the config says about one input, checked and resolved to metric indices.
#[derive(Default)]
struct Spec {
    /// The config span that problems of the input as a whole are reported at.
    span: Range<usize>,
    file_name: String,
    metric: Option<usize>,
    metric_dimension: Option<(String, Range<usize>)>,
    metric_codes: FxHashMap<String, usize>,
    labels: Option<Vec<(String, String, Range<usize>)>>,
    drop_single_valued: bool,
    filter: Vec<(String, FxHashSet<String>, Range<usize>)>,
    period: Option<(String, Range<usize>)>,
    value: Option<(String, Range<usize>)>,
    unit: Option<(String, Range<usize>)>,
    unit_codes: FxHashMap<String, Unit>,
    multiplier: Option<(String, Range<usize>)>,
    status: Option<(String, Range<usize>)>,
    confidentiality: Option<(String, Range<usize>)>,
    missing: FxHashSet<String>,
    /// The operator's reasons for missing figures, by value or status code.
    missing_reasons: FxHashMap<String, &'static str>,
    source_column: Option<(String, Range<usize>)>,
    language: String,
    /// A `samples_file`: every column must be a label, `value`, `source` or `basis`.
    strict: bool,
}

impl Spec {
    fn from_config(
        map: &SourceMap,
        b: &mut Builder,
        c: &InputConfig,
        file: &Spanned<String>,
    ) -> Option<Spec> {
        let before = b.errs.len();
        let s = |v: &Option<Spanned<String>>| v.as_ref().map(|x| (x.get_ref().clone(), x.span()));
        let mut spec = Spec {
            span: file.span(),
            file_name: file.get_ref().clone(),
            drop_single_valued: c.drop_single_valued,
            period: s(&c.period),
            value: s(&c.value),
            unit: s(&c.unit),
            multiplier: s(&c.multiplier),
            status: s(&c.status),
            confidentiality: s(&c.confidentiality),
            source_column: s(&c.source_column),
            language: c
                .language
                .as_ref()
                .map_or("en".into(), |l| l.get_ref().clone()),
            missing: missing_values(c),
            ..Spec::default()
        };
        spec.missing_reasons(map, b, c);
        check_language(map, b, c);
        spec.metrics(map, b, c);
        if let Some(labels) = &c.labels {
            let mut out = Vec::new();
            for (label, comp) in labels.get_ref() {
                crate::dataset::check_label_name(map, label, &mut b.errs);
                out.push((label.get_ref().clone(), comp.get_ref().clone(), comp.span()));
            }
            spec.labels = Some(out);
        }
        if let Some(f) = &c.filter {
            for (comp, codes) in f.get_ref() {
                let set = codes
                    .get_ref()
                    .values()
                    .into_iter()
                    .map(str::to_string)
                    .collect();
                spec.filter.push((comp.get_ref().clone(), set, comp.span()));
            }
        }
        spec.unit_codes(map, b, c);
        check_source(map, b, c);
        (b.errs.len() == before).then_some(spec)
    }

    /// The metric or metrics the input feeds: `metric`, or `metric_dimension` with `metrics`.
    fn metrics(&mut self, map: &SourceMap, b: &mut Builder, c: &InputConfig) {
        match (&c.metric, &c.metric_dimension, &c.metrics) {
            (Some(m), None, None) => self.metric = find_metric(map, b, m),
            (None, Some(d), Some(codes)) => {
                self.metric_dimension = Some((d.get_ref().clone(), d.span()));
                for (code, m) in codes.get_ref() {
                    if let Some(i) = find_metric(map, b, m) {
                        self.metric_codes.insert(code.get_ref().clone(), i);
                    }
                }
            }
            (None, Some(d), None) => b.errs.push(map.diag(
                d.span(),
                "metric_dimension without `metrics`, expected `metrics = { CODE = \"metric name\" }` saying which metric each code feeds",
            )),
            (None, None, Some(m)) => b.errs.push(map.diag(
                m.span(),
                "`metrics` without `metric_dimension`, expected the component whose codes the table maps",
            )),
            (None, None, None) => b.errs.push(map.diag(
                self.span.clone(),
                "input feeds no metric, expected `metric = \"NAME\"` or `metric_dimension` with `metrics`",
            )),
            (Some(m), _, _) => b.errs.push(map.diag(
                m.span(),
                "both `metric` and `metric_dimension`, expected one of them",
            )),
        }
    }

    /// `missing_reasons`: each code's reason checked; a value listed there means no figure.
    fn missing_reasons(&mut self, map: &SourceMap, b: &mut Builder, c: &InputConfig) {
        let Some(reasons) = &c.missing_reasons else {
            return;
        };
        for (code, reason) in reasons.get_ref() {
            match MISSING_REASONS.iter().find(|r| **r == reason.get_ref()) {
                Some(r) => {
                    self.missing.insert(code.get_ref().trim().to_string());
                    self.missing_reasons
                        .insert(code.get_ref().trim().to_string(), r);
                }
                None => b.errs.push(map.diag(
                    reason.span(),
                    format!(
                        "unknown missing reason `{}`, expected one of {}",
                        crate::diagnostic::excerpt(reason.get_ref()),
                        MISSING_REASONS.join(", ")
                    ),
                )),
            }
        }
    }

    /// The input's own unit codes, each naming a known unit.
    fn unit_codes(&mut self, map: &SourceMap, b: &mut Builder, c: &InputConfig) {
        let Some(codes) = &c.unit_codes else {
            return;
        };
        for (code, unit) in codes.get_ref() {
            match Unit::parse(unit.get_ref()) {
                Some(u) => {
                    if let Some(msg) = self.dropped_scale(b, c, code.get_ref(), unit.get_ref(), u) {
                        b.errs.push(map.diag(unit.span(), msg));
                    }
                    self.unit_codes.insert(code.get_ref().clone(), u);
                }
                None => b.errs.push(map.diag(
                    unit.span(),
                    format!(
                        "unknown unit `{}`, expected one of {}, an ISO 4217 currency code or a publisher code with its scale (MIO_EUR, THS_PER)",
                        unit.get_ref(),
                        crate::dataset::units::UNIT_NAMES.join(", ")
                    ),
                )),
            }
        }
    }

    /// Why mapping `code` to `unit` would change the figures' magnitude unsaid: the code
    /// states a scale (`Million euro`) that neither the unit (`MIO_EUR`), the fed metrics'
    /// `scale` nor a multiplier component keeps.
    fn dropped_scale(
        &self,
        b: &Builder,
        c: &InputConfig,
        code: &str,
        name: &str,
        unit: Unit,
    ) -> Option<String> {
        let (stated, word) = units::stated_scale(code)?;
        if c.multiplier.is_some() {
            return None;
        }
        let fed: Vec<usize> = self
            .metric
            .into_iter()
            .chain(self.metric_codes.values().copied())
            .collect();
        let kept = |mi: &usize| unit.exponent + b.metrics[*mi].scale() == stated;
        if fed.is_empty() || fed.iter().all(kept) {
            return None;
        }
        let keep = match (stated, unit.suffix()) {
            (3 | 6 | 9, Some(suffix)) if unit.exponent == 0 => {
                let prefix = ["THS", "MIO", "BN"][(stated / 3 - 1) as usize];
                format!(
                    "a unit that keeps it (`{prefix}_{}`) or ",
                    suffix.to_ascii_uppercase()
                )
            }
            _ => String::new(),
        };
        Some(format!(
            "unit code `{}` is in {word}s (×10^{stated}) but `{}` drops that scale, expected {keep}`scale = \"{word}\"` on the metric",
            crate::diagnostic::excerpt(code),
            crate::diagnostic::excerpt(name),
        ))
    }
}

/// The index of the `[[metric]]` of this name; an unknown name is reported unless its metric
/// could not be read (already reported).
fn find_metric(map: &SourceMap, b: &mut Builder, name: &Spanned<String>) -> Option<usize> {
    let i = b.metrics.iter().position(|m| m.raw_name == *name.get_ref());
    if i.is_none() && !b.unread_metrics.contains(name.get_ref()) {
        let names: Vec<&str> = b.metrics.iter().map(|m| m.raw_name.as_str()).collect();
        b.errs.push(map.diag(
            name.span(),
            format!(
                "unknown metric `{}`, expected the name of a [[metric]]: {}",
                name.get_ref(),
                names.join(", ")
            ),
        ));
    }
    i
}

/// The input's `language` becomes part of label names (`name_<lang>`).
fn check_language(map: &SourceMap, b: &mut Builder, c: &InputConfig) {
    if let Some(l) = &c.language {
        if !crate::dataset::is_label_name(l.get_ref()) {
            b.errs.push(map.diag(
                l.span(),
                format!(
                    "invalid language code `{}`, expected letters, digits and underscores",
                    l.get_ref()
                ),
            ));
        }
    }
}

/// The input's `source` names a `[[source]]`.
fn check_source(map: &SourceMap, b: &mut Builder, c: &InputConfig) {
    if let Some(src) = &c.source {
        super::check_source_id(map, b, src);
    }
}

/// (label, component) pairs of a metric, and whether each label may be dropped when it has
/// one value.
type LabelPairs = (Vec<(String, usize)>, Vec<bool>);

/// How one metric's labels are read from the components.
#[derive(Clone)]
struct Target {
    /// Component index of each of the metric's labels, in the metric's label order.
    cols: Vec<usize>,
}

/// The [`Sink`] that maps a reader's components and rows onto metrics.
struct Plan<'a, 'm> {
    map: &'a SourceMap<'m>,
    b: &'a mut Builder,
    spec: Spec,
    file: u32,
    ready: bool,
    components: Vec<Component>,
    metric_col: Option<usize>,
    /// Target per metric index (None: the input does not feed it); shared so a row can hold
    /// it while the plan changes its caches.
    targets: std::rc::Rc<Vec<Option<Target>>>,
    value_col: usize,
    unit_col: Option<usize>,
    multiplier_col: Option<usize>,
    status_col: Option<usize>,
    conf_col: Option<usize>,
    source_col: Option<usize>,
    filters: Vec<(usize, FxHashSet<String>)>,
    /// The label each component feeds, for display names.
    name_labels: Vec<Option<String>>,
    units: FxHashMap<String, Option<Unit>>,
    multipliers: FxHashMap<String, Option<i32>>,
}

impl<'a, 'm> Plan<'a, 'm> {
    fn new(map: &'a SourceMap<'m>, b: &'a mut Builder, spec: Spec, file: u32) -> Self {
        let n = b.metrics.len();
        Plan {
            map,
            b,
            spec,
            file,
            ready: false,
            components: Vec::new(),
            metric_col: None,
            targets: std::rc::Rc::new((0..n).map(|_| None).collect()),
            value_col: 0,
            unit_col: None,
            multiplier_col: None,
            status_col: None,
            conf_col: None,
            source_col: None,
            filters: Vec::new(),
            name_labels: Vec::new(),
            units: FxHashMap::default(),
            multipliers: FxHashMap::default(),
        }
    }

    fn config_error(&mut self, span: Range<usize>, message: String) {
        self.b.errs.push(self.map.diag(span, message));
    }

    fn ids(&self) -> String {
        self.components
            .iter()
            .map(|c| c.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The component with this id (exact, else case-blind).
    fn find(&self, id: &str) -> Option<usize> {
        self.components.iter().position(|c| c.id == id).or_else(|| {
            self.components
                .iter()
                .position(|c| c.id.eq_ignore_ascii_case(id))
        })
    }

    /// A component named in the config, or an error at the config key.
    fn named(
        &mut self,
        what: &str,
        named: &Option<(String, Range<usize>)>,
    ) -> Result<Option<usize>, ()> {
        match named {
            None => Ok(None),
            Some((id, span)) => match self.find(id) {
                Some(i) => Ok(Some(i)),
                None => {
                    let msg = format!(
                        "unknown {what} component `{id}` in `{}`, expected one of: {}",
                        self.spec.file_name,
                        self.ids()
                    );
                    self.config_error(span.clone(), msg);
                    Err(())
                }
            },
        }
    }

    fn default_col(&self, role: Option<Role>, names: &[&str]) -> Option<usize> {
        role.and_then(|r| self.components.iter().position(|c| c.role == r))
            .or_else(|| names.iter().find_map(|n| self.find(n)))
    }

    /// Maps the components onto the period, the value, the attributes and the labels of each
    /// metric the input feeds; None when the config and the file disagree (reported).
    fn resolve(&mut self, origin: &dyn Fn(usize) -> Origin) -> Option<()> {
        let fed = self.fed_metrics();
        let period_col = self.resolve_period(&fed)?;
        self.value_col = self.resolve_value()?;
        self.unit_col = self.resolve_unit(&fed)?;
        self.resolve_attributes()?;
        self.resolve_metric_dimension()?;
        self.resolve_filters()?;
        let used = self.used_columns(period_col);
        self.name_labels = vec![None; self.components.len()];
        if self.spec.strict {
            return self.resolve_strict(fed[0], period_col, origin);
        }
        for mi in fed {
            self.resolve_labels(mi, period_col, &used)?;
        }
        Some(())
    }

    /// The period: the component named by `period` or by the period label in `labels`, else
    /// the format's time component or one of the usual names; Some(None) when the file has
    /// none and no metric it feeds declares the period label (figures without a period, as
    /// inline samples can be).
    fn resolve_period(&mut self, fed: &[usize]) -> Option<Option<usize>> {
        let spec_period = self.spec.period.clone();
        let period_label = self.b.period_label.clone();
        let explicit_period = self.spec.labels.as_ref().and_then(|l| {
            l.iter()
                .find(|(label, _, _)| *label == period_label)
                .map(|(_, c, s)| (c.clone(), s.clone()))
        });
        if let Some(i) = self
            .named("period", &spec_period.or(explicit_period))
            .ok()?
        {
            return Some(Some(i));
        }
        let mut names = vec![period_label.as_str()];
        names.extend_from_slice(PERIOD_NAMES);
        let found = self.default_col(Some(Role::Time), &names);
        let wants_period = fed.iter().any(|&mi| {
            self.b.metrics[mi]
                .labels
                .as_ref()
                .is_some_and(|l| l.contains(&period_label))
        });
        if found.is_none() && !wants_period {
            return Some(None);
        }
        if found.is_none() {
            let msg = if self.spec.strict {
                format!("no period in `{}`, expected a column `{period_label}`, the period label (columns: {})", self.spec.file_name, self.ids())
            } else {
                format!("no period in `{}`, expected a time component or `period = \"COMPONENT\"`, one of: {} (or leave `{period_label}` out of the metric's labels to serve figures without a period)", self.spec.file_name, self.ids())
            };
            self.config_error(self.spec.span.clone(), msg);
        }
        found.map(Some)
    }

    /// The value: the component named by `value`, else the format's measure or a usual name.
    fn resolve_value(&mut self) -> Option<usize> {
        let spec_value = self.spec.value.clone();
        if let Some(i) = self.named("value", &spec_value).ok()? {
            return Some(i);
        }
        let found = self.default_col(Some(Role::Measure), VALUE_NAMES);
        if found.is_none() {
            let msg = if self.spec.strict {
                format!(
                    "no value in `{}`, expected a column `value` (columns: {})",
                    self.spec.file_name,
                    self.ids()
                )
            } else {
                format!("no value in `{}`, expected a measure component or `value = \"COMPONENT\"`, one of: {}", self.spec.file_name, self.ids())
            };
            self.config_error(self.spec.span.clone(), msg);
        }
        found
    }

    /// The metrics the input feeds, in metric order.
    fn fed_metrics(&self) -> Vec<usize> {
        match self.spec.metric {
            Some(i) => vec![i],
            None => {
                let mut v: Vec<usize> = self.spec.metric_codes.values().copied().collect();
                v.sort_unstable();
                v.dedup();
                v
            }
        }
    }

    /// The unit component (Some(None): none); required when a fed metric has no unit in the
    /// config.
    fn resolve_unit(&mut self, fed: &[usize]) -> Option<Option<usize>> {
        let u = self.spec.unit.clone();
        let needs_unit = fed.iter().any(|&i| !self.b.metrics[i].has_config_unit());
        match self.named("unit", &u).ok()? {
            Some(i) => Some(Some(i)),
            // A unit column is read even when the metric names its unit: a file in euros must
            // not be served as dollars.
            None if !self.spec.strict && !needs_unit => Some(self.default_col(None, UNIT_NAMES)),
            None if needs_unit => match self.default_col(None, UNIT_NAMES) {
                Some(i) => Some(Some(i)),
                None => {
                    let i = fed
                        .iter()
                        .copied()
                        .find(|&i| !self.b.metrics[i].has_config_unit())
                        .expect("needs_unit");
                    let msg = format!("metric `{}` has no unit, expected `unit` in its [[metric]] or `unit = \"COMPONENT\"` in this [[input]], one of: {}", self.b.metrics[i].raw_name, self.ids());
                    self.config_error(self.spec.span.clone(), msg);
                    None
                }
            },
            None => Some(None),
        }
    }

    /// The multiplier, status, confidentiality and source components.
    fn resolve_attributes(&mut self) -> Option<()> {
        let (m, s, c, src) = (
            self.spec.multiplier.clone(),
            self.spec.status.clone(),
            self.spec.confidentiality.clone(),
            self.spec.source_column.clone(),
        );
        self.multiplier_col = self.optional("multiplier", &m, MULTIPLIER_NAMES)?;
        self.status_col = self.optional("status", &s, STATUS_NAMES)?;
        self.conf_col = self.optional("confidentiality", &c, CONF_NAMES)?;
        self.source_col = match self.named("source", &src).ok()? {
            Some(i) => Some(i),
            None if self.spec.strict => self.find("source"),
            None => None,
        };
        Some(())
    }

    /// An optional component: named, else (but in a `samples_file`) found by a usual name.
    fn optional(
        &mut self,
        what: &str,
        named: &Option<(String, Range<usize>)>,
        names: &[&str],
    ) -> Option<Option<usize>> {
        Some(match self.named(what, named).ok()? {
            Some(i) => Some(i),
            None if !self.spec.strict => self.default_col(None, names),
            None => None,
        })
    }

    /// The component whose codes pick the metric, when the input maps codes to metrics.
    fn resolve_metric_dimension(&mut self) -> Option<()> {
        let Some((id, span)) = self.spec.metric_dimension.clone() else {
            return Some(());
        };
        match self.find(&id) {
            Some(i) => {
                self.metric_col = Some(i);
                Some(())
            }
            None => {
                let msg = format!(
                    "unknown metric_dimension `{id}` in `{}`, expected one of: {}",
                    self.spec.file_name,
                    self.ids()
                );
                self.config_error(span, msg);
                None
            }
        }
    }

    /// The filtered components; every unknown one is reported.
    fn resolve_filters(&mut self) -> Option<()> {
        let mut bad = false;
        for (id, codes, span) in std::mem::take(&mut self.spec.filter) {
            match self.find(&id) {
                Some(i) => self.filters.push((i, codes)),
                None => {
                    let msg = format!(
                        "unknown dimension `{id}` in filter, expected one of: {}",
                        self.ids()
                    );
                    self.config_error(span, msg);
                    bad = true;
                }
            }
        }
        (!bad).then_some(())
    }

    /// Components with another job, which are not labels: a filter keeping one code is one.
    fn used_columns(&self, period_col: Option<usize>) -> HashSet<usize> {
        let mut used: HashSet<usize> = [
            period_col,
            Some(self.value_col),
            self.unit_col,
            self.multiplier_col,
            self.status_col,
            self.conf_col,
            self.source_col,
            self.metric_col,
        ]
        .into_iter()
        .flatten()
        .collect();
        used.extend(
            self.filters
                .iter()
                .filter(|(_, codes)| codes.len() == 1)
                .map(|(i, _)| *i),
        );
        used
    }

    /// Which component feeds each label of metric `mi`, the period included; a metric that
    /// declares no labels gets them from this, its first input.
    fn resolve_labels(
        &mut self,
        mi: usize,
        period_col: Option<usize>,
        used: &HashSet<usize>,
    ) -> Option<()> {
        let period_label = self.b.period_label.clone();
        let declared = self.b.metrics[mi].labels.clone();
        let explicit = self.spec.labels.clone();
        let (mut pairs, mut droppable) = if let Some(declared) = &declared {
            self.declared_pairs(mi, declared, explicit.as_deref(), &period_label)?
        } else if let Some(explicit) = explicit {
            self.explicit_pairs(explicit, &period_label)?
        } else {
            self.inferred_pairs(used)
        };
        if let Some(p) = period_col {
            pairs.push((period_label, p));
            droppable.push(false);
        }
        for (label, i) in &pairs {
            if self.name_labels[*i].is_none() && Some(*i) != period_col {
                self.name_labels[*i] = Some(label.clone());
            }
        }
        let cols = match &declared {
            None => self.undeclared_cols(mi, &pairs, droppable)?,
            Some(declared) => self.declared_cols(mi, &pairs, declared)?,
        };
        std::rc::Rc::make_mut(&mut self.targets)[mi] = Some(Target { cols });
        Some(())
    }

    /// (label, component) pairs of a metric that declares its labels: each label is the
    /// component `labels` maps it to, else the component of its name.
    fn declared_pairs(
        &mut self,
        mi: usize,
        declared: &[String],
        explicit: Option<&[(String, String, Range<usize>)]>,
        period_label: &str,
    ) -> Option<LabelPairs> {
        let mut pairs = Vec::new();
        let mut bad = false;
        for label in declared.iter().filter(|l| **l != period_label) {
            let mapped = explicit
                .and_then(|e| e.iter().find(|(l, _, _)| l == label))
                .map(|(_, comp, span)| (comp.clone(), span.clone()));
            let found = match &mapped {
                Some((comp, _)) => self.find(comp),
                None => self.find(label).or_else(|| {
                    self.components
                        .iter()
                        .position(|c| label_name(&c.id) == *label)
                }),
            };
            match (found, mapped) {
                (Some(i), _) => pairs.push((label.clone(), i)),
                (None, Some((comp, span))) => {
                    let msg = format!("unknown component `{comp}` for label `{label}` in `{}`, expected one of: {}", self.spec.file_name, self.ids());
                    self.config_error(span, msg);
                    bad = true;
                }
                (None, None) => {
                    let msg = format!("label `{label}` of metric `{}` is not a component of `{}`, expected one of: {} (or map it: labels = {{ {label} = \"COMPONENT\" }})", self.b.metrics[mi].raw_name, self.spec.file_name, self.ids());
                    self.config_error(self.spec.span.clone(), msg);
                    bad = true;
                }
            }
        }
        let n = pairs.len();
        (!bad).then(|| (pairs, vec![false; n]))
    }

    /// (label, component) pairs from the input's `labels`, for a metric that declares none.
    fn explicit_pairs(
        &mut self,
        explicit: Vec<(String, String, Range<usize>)>,
        period_label: &str,
    ) -> Option<LabelPairs> {
        let mut pairs = Vec::new();
        let mut bad = false;
        for (label, comp, span) in explicit {
            if label == period_label {
                continue;
            }
            match self.find(&comp) {
                Some(i) => pairs.push((label, i)),
                None => {
                    let msg = format!("unknown component `{comp}` for label `{label}` in `{}`, expected one of: {}", self.spec.file_name, self.ids());
                    self.config_error(span, msg);
                    bad = true;
                }
            }
        }
        let n = pairs.len();
        (!bad).then(|| (pairs, vec![false; n]))
    }

    /// Every dimension without another job, as a label of its lower-cased id; droppable when
    /// the input says `drop_single_valued`.
    fn inferred_pairs(&self, used: &HashSet<usize>) -> LabelPairs {
        let mut pairs = Vec::new();
        let mut droppable = Vec::new();
        for (i, comp) in self.components.iter().enumerate() {
            if comp.role == Role::Dimension && !used.contains(&i) {
                pairs.push((label_name(&comp.id), i));
                droppable.push(self.spec.drop_single_valued);
            }
        }
        (pairs, droppable)
    }

    /// Fixes the labels of a metric that declared none; two components may not become one
    /// label.
    fn undeclared_cols(
        &mut self,
        mi: usize,
        pairs: &[(String, usize)],
        droppable: Vec<bool>,
    ) -> Option<Vec<usize>> {
        let names: Vec<String> = pairs.iter().map(|(l, _)| l.clone()).collect();
        let mut seen = HashSet::new();
        for n in &names {
            if !seen.insert(n) {
                let msg = format!("two components of `{}` become label `{n}`, expected unique label names (map them with `labels`)", self.spec.file_name);
                self.config_error(self.spec.span.clone(), msg);
                return None;
            }
        }
        self.b.set_labels(mi, names, droppable);
        Some(pairs.iter().map(|(_, i)| *i).collect())
    }

    /// The components in the order of the metric's declared labels, which the pairs must
    /// match as a set.
    fn declared_cols(
        &mut self,
        mi: usize,
        pairs: &[(String, usize)],
        declared: &[String],
    ) -> Option<Vec<usize>> {
        let mut have: Vec<&str> = pairs.iter().map(|(l, _)| l.as_str()).collect();
        let mut want: Vec<&str> = declared.iter().map(String::as_str).collect();
        have.sort_unstable();
        want.sort_unstable();
        if have != want {
            let msg = format!(
                "`{}` gives metric `{}` the labels {}, expected its labels {}",
                self.spec.file_name,
                self.b.metrics[mi].raw_name,
                have.join(", "),
                want.join(", ")
            );
            self.config_error(self.spec.span.clone(), msg);
            return None;
        }
        Some(
            declared
                .iter()
                .map(|l| pairs.iter().find(|(p, _)| p == l).expect("same set").1)
                .collect(),
        )
    }

    /// A `samples_file` takes exactly the metric's labels, `value`, `source` and `basis`.
    fn resolve_strict(
        &mut self,
        mi: usize,
        _period_col: Option<usize>,
        origin: &dyn Fn(usize) -> Origin,
    ) -> Option<()> {
        let labels = self.b.metrics[mi].labels.clone().unwrap_or_default();
        let raw = self.b.metrics[mi].raw_name.clone();
        let mut ok = true;
        for (i, c) in self.components.iter().enumerate() {
            if !labels.contains(&c.id) && !["value", "source", "basis"].contains(&c.id.as_str()) {
                let msg = format!("unknown column `{}`, expected the labels of metric `{raw}` ({}), value, source or basis", c.id, labels.join(", "));
                self.b.error(self.file, loc(origin(i)), msg);
                ok = false;
            }
        }
        let mut cols = Vec::new();
        for l in &labels {
            match self.components.iter().position(|c| c.id == *l) {
                Some(i) => cols.push(i),
                None => {
                    let msg = format!(
                        "header has no column `{l}`, expected every label of metric `{raw}`"
                    );
                    self.b.error(self.file, header_loc(origin), msg);
                    ok = false;
                }
            }
        }
        if !self.components.iter().any(|c| c.id == "value") {
            self.b.error(
                self.file,
                header_loc(origin),
                "header has no column `value`".into(),
            );
            return None;
        }
        self.value_col = self
            .components
            .iter()
            .position(|c| c.id == "value")
            .expect("checked");
        if !ok {
            return None;
        }
        std::rc::Rc::make_mut(&mut self.targets)[mi] = Some(Target { cols });
        Some(())
    }

    /// The metric a row feeds: the input's one metric, or the one its code maps to (None:
    /// a code the input does not serve).
    fn metric_of(&self, fields: &[&str]) -> Option<usize> {
        match (self.spec.metric, self.metric_col) {
            (Some(m), _) => Some(m),
            (None, Some(c)) => self.spec.metric_codes.get(fields[c]).copied(),
            (None, None) => None,
        }
    }

    fn unit_of(&mut self, code: &str) -> Option<Option<Unit>> {
        if let Some(u) = self.units.get(code) {
            return Some(*u);
        }
        let u = self
            .spec
            .unit_codes
            .get(code)
            .copied()
            .or_else(|| Unit::of_code(code));
        self.units.insert(code.to_string(), u);
        Some(u)
    }

    fn multiplier_of(&mut self, code: &str) -> Option<i32> {
        if code.is_empty() {
            return Some(0);
        }
        if let Some(m) = self.multipliers.get(code) {
            return *m;
        }
        let m = units::multiplier(code);
        self.multipliers.insert(code.to_string(), m);
        m
    }

    /// Whether a row passes the input's filters.
    fn kept(&self, fields: &[&str]) -> bool {
        self.filters
            .iter()
            .all(|(i, codes)| codes.contains(fields[*i]))
    }

    /// A row's value as written, or why it has no figure when it is one of the missing marks.
    fn value_of<'v>(&self, raw: &'v str, status: &str, conf: &str) -> Value<'v> {
        if self.spec.missing.contains(raw.trim()) {
            let mapped = [raw, conf]
                .into_iter()
                .chain(status_codes(status))
                .find_map(|code| self.spec.missing_reasons.get(code.trim()).copied());
            Value::Missing(mapped.unwrap_or_else(|| missing_reason(raw, status, conf)))
        } else {
            Value::Text(raw)
        }
    }

    /// A row's unit and its code (None: no unit column, or none needed for a missing figure);
    /// Err when the code is unknown (reported).
    fn row_unit<'f>(
        &mut self,
        fields: &[&'f str],
        value: &Value,
        at: &dyn Fn(Field) -> Loc,
    ) -> Result<Option<(Unit, &'f str)>, ()> {
        let Some(c) = self.unit_col else {
            return Ok(None);
        };
        let code = fields[c];
        match self.unit_of(code).flatten() {
            Some(u) => Ok(Some((u, code))),
            None if matches!(value, Value::Missing(_)) => Ok(None),
            None => {
                let msg = format!("unknown unit code `{}`, expected an ISO 4217 currency, a code such as PC, IX, NR, MIO_EUR, or an entry in the input's `unit_codes`", crate::dataset::excerpt(code));
                self.b.error(self.file, at(Field::Unit), msg);
                Err(())
            }
        }
    }

    /// A row's power of ten from its multiplier column (0 without one); Err when the
    /// multiplier is unknown (reported).
    fn row_exponent(
        &mut self,
        fields: &[&str],
        origin: &dyn Fn(usize) -> Origin,
    ) -> Result<i32, ()> {
        let Some(c) = self.multiplier_col else {
            return Ok(0);
        };
        match self.multiplier_of(fields[c].trim()) {
            Some(e) => Ok(e),
            None => {
                let msg = format!(
                    "unknown multiplier `{}`, expected {MULTIPLIER_FORMS}",
                    crate::dataset::excerpt(fields[c])
                );
                self.b.error(self.file, loc(origin(c)), msg);
                Err(())
            }
        }
    }

    /// A row's source column names a `[[source]]`; the row is kept either way.
    fn check_source(&mut self, fields: &[&str], origin: &dyn Fn(usize) -> Origin) {
        if let Some(c) = self.source_col {
            let s = fields[c];
            if !s.is_empty() && !self.b.source_ids.contains(s) {
                let msg = format!("unknown source `{s}`, expected the id of a [[source]]");
                self.b.error(self.file, loc(origin(c)), msg);
            }
        }
    }
}

/// A component id as a Prometheus label name: lower case, other characters as `_`.
fn label_name(id: &str) -> String {
    let mut s: String = id
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    while s.starts_with("__") {
        s.remove(0);
    }
    s
}

fn loc(o: Origin) -> Loc {
    match o {
        Origin::File => Loc::File,
        Origin::At { line, col } => Loc::At(line, col),
        Origin::Path(p) => Loc::Path(p),
    }
}

/// The start of the header line (problems with the header as a whole).
fn header_loc(origin: &dyn Fn(usize) -> Origin) -> Loc {
    match origin(0) {
        Origin::At { line, .. } => Loc::At(line, 1),
        o => loc(o),
    }
}

/// Why a figure may be missing, as `indicator_exporter_dataset_missing_observations` says.
const MISSING_REASONS: &[&str] = &["missing", "not_available", "confidential"];

/// The values that mean no figure: the defaults and the input's `missing`, or its `missing`
/// alone with `missing_defaults = false`.
fn missing_values(c: &InputConfig) -> FxHashSet<String> {
    let defaults = c.missing_defaults.as_ref().is_none_or(|d| *d.get_ref());
    let extra = c.missing.iter().flat_map(|m| m.get_ref().iter().cloned());
    DEFAULT_MISSING
        .iter()
        .filter(|_| defaults)
        .map(|s| s.to_string())
        .chain(extra)
        .collect()
}

/// The flags of a status that may combine several (`B; E`, `p,e`, `B|E`).
pub(crate) fn status_codes(status: &str) -> impl Iterator<Item = &str> {
    status
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | '|' | '/'))
        .filter(|s| !s.is_empty())
}

/// Why an observation has no figure, from its value and flags.
fn missing_reason(value: &str, status: &str, conf: &str) -> &'static str {
    let v = value.trim();
    let conf_flag = matches!(conf.trim(), "C" | "c" | "S" | "confidential");
    let status_conf = status.chars().any(|c| c == 'c' || c == 'C');
    if conf_flag || v.eq_ignore_ascii_case(":c") || v == "x" || v == "X" || status_conf {
        "confidential"
    } else if matches!(
        status.trim(),
        "M" | "L" | "O" | "Q" | ":" | "na" | "NA" | "z"
    ) || v == ":"
        || v == ".."
    {
        "not_available"
    } else {
        "missing"
    }
}

impl Sink for Plan<'_, '_> {
    fn components(&mut self, components: &[Component], origin: &dyn Fn(usize) -> Origin) -> bool {
        self.components = components.to_vec();
        self.ready = self.resolve(origin).is_some();
        self.ready
    }

    fn row(&mut self, fields: &[&str], origin: &dyn Fn(usize) -> Origin) {
        if !self.ready || !self.kept(fields) {
            return;
        }
        let Some(metric) = self.metric_of(fields) else {
            return;
        };
        let targets = self.targets.clone();
        let Some(target) = targets[metric].as_ref() else {
            return;
        };
        // Labels on the stack for the usual few, so a row allocates nothing.
        let mut buf: [&str; 16] = [""; 16];
        let heap: Vec<&str>;
        let labels: &[&str] = if target.cols.len() <= 16 {
            for (k, &c) in target.cols.iter().enumerate() {
                buf[k] = fields[c];
            }
            &buf[..target.cols.len()]
        } else {
            heap = target.cols.iter().map(|&c| fields[c]).collect();
            &heap
        };
        let cols = &target.cols;
        let field = |c: Option<usize>| c.map_or("", |c| fields[c]);
        let status = field(self.status_col);
        let value = self.value_of(fields[self.value_col], status, field(self.conf_col));
        let (value_col, unit_col) = (self.value_col, self.unit_col);
        let at = |f: Field| match f {
            Field::Label(i) => loc(origin(cols[i])),
            Field::Value => loc(origin(value_col)),
            Field::Row => loc(origin(source::ROW)),
            Field::Unit => loc(origin(unit_col.unwrap_or(value_col))),
        };
        let Ok(unit) = self.row_unit(fields, &value, &at) else {
            return;
        };
        let Ok(exponent) = self.row_exponent(fields, origin) else {
            return;
        };
        self.check_source(fields, origin);
        let status = if status == "A" { "" } else { status.trim() };
        self.b.add(
            &Obs {
                metric,
                labels,
                value,
                exponent,
                unit,
                status,
                file: self.file,
                position: Field::Row,
            },
            &at,
        );
    }

    fn delete(&mut self, fields: &[&str], _origin: &dyn Fn(usize) -> Origin) {
        if !self.ready {
            return;
        }
        let Some(metric) = self.metric_of(fields) else {
            return;
        };
        let Some(target) = self.targets[metric].as_ref() else {
            return;
        };
        let labels: Vec<&str> = target.cols.iter().map(|&c| fields[c]).collect();
        self.b.delete(metric, &labels);
    }

    fn name(&mut self, component: usize, code: &str, lang: &str, name: &str) {
        self.name_at(component, code, lang, name, &|| Origin::File);
    }

    fn name_at(
        &mut self,
        component: usize,
        code: &str,
        lang: &str,
        name: &str,
        origin: &dyn Fn() -> Origin,
    ) {
        if let Some(Some(label)) = self.name_labels.get(component) {
            let lang = if lang.is_empty() {
                self.spec.language.as_str()
            } else {
                lang
            };
            let lang = lang.replace('-', "_").to_ascii_lowercase();
            let label = label.clone();
            self.b.name(&label, code, &lang, name, &|| loc(origin()));
        }
    }

    fn component_name(&mut self, component: usize, lang: &str, name: &str) {
        if let Some(Some(label)) = self.name_labels.get(component) {
            let preferred = lang.eq_ignore_ascii_case(&self.spec.language);
            self.b.label_help(label, name, preferred);
        }
    }

    fn error(&mut self, origin: Origin, message: String) {
        self.b.error(self.file, loc(origin), message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::path::{Path, PathBuf};

    use crate::dataset::MetricDef;

    /// The config the spans of these tests point into.
    const CONFIG: &str = "[[input]]\nfile = \"data.csv\"\nperiod = \"WHEN\"\n";

    /// The span of `what` in [`CONFIG`].
    fn span(what: &str) -> Range<usize> {
        let i = CONFIG.find(what).expect("in CONFIG");
        i..i + what.len()
    }

    /// A metric of a test: name, unit from the config, declared labels.
    type TestMetric<'a> = (&'a str, Option<&'a str>, Option<&'a [&'a str]>);

    /// A builder whose period label is `year`, with these metrics, and data file 1.
    fn builder(metrics: &[TestMetric]) -> Builder {
        let mut b = Builder::new(
            PathBuf::from("config.toml"),
            "year".into(),
            HashSet::new(),
            Vec::new(),
        );
        for (name, unit, labels) in metrics {
            b.add_metric(MetricDef::new(
                name.to_string(),
                String::new(),
                String::new(),
                unit.map(|u| Unit::parse(u).expect("known unit")),
                0,
                labels.map(|l| l.iter().map(|s| s.to_string()).collect()),
                None,
                true,
            ));
        }
        b.add_file(PathBuf::from("data.csv"));
        b
    }

    /// An input of `data.csv` feeding metric 0.
    fn spec() -> Spec {
        Spec {
            span: span("file"),
            file_name: "data.csv".into(),
            metric: Some(0),
            ..Spec::default()
        }
    }

    /// What resolving the components came to.
    #[derive(Debug, PartialEq)]
    struct Resolved {
        ok: bool,
        value: usize,
        unit: Option<usize>,
        multiplier: Option<usize>,
        status: Option<usize>,
        metric: Option<usize>,
        /// Per metric: its labels, and the component of each.
        targets: Vec<Option<(Vec<String>, Vec<usize>)>>,
        errors: Vec<String>,
    }

    fn resolve(b: &mut Builder, spec: Spec, components: &[(&str, Role)]) -> Resolved {
        let path = Path::new("config.toml");
        let map = SourceMap::new(path, CONFIG);
        let components: Vec<Component> = components
            .iter()
            .map(|(id, role)| Component::new(*id, *role))
            .collect();
        let mut plan = Plan::new(&map, b, spec, 1);
        let ok = plan.components(&components, &|i| Origin::At {
            line: 1,
            col: i as u32 + 1,
        });
        let targets = plan.targets.clone();
        let (value, unit, multiplier, status, metric) = (
            plan.value_col,
            plan.unit_col,
            plan.multiplier_col,
            plan.status_col,
            plan.metric_col,
        );
        drop(plan);
        Resolved {
            ok,
            value,
            unit,
            multiplier,
            status,
            metric,
            targets: targets
                .iter()
                .enumerate()
                .map(|(mi, t)| {
                    t.as_ref().map(|t| {
                        let labels = b.metrics[mi].labels.clone().unwrap_or_default();
                        (labels, t.cols.clone())
                    })
                })
                .collect(),
            errors: b.errs.iter().map(ToString::to_string).collect(),
        }
    }

    fn labels(names: &[&str], cols: &[usize]) -> Option<(Vec<String>, Vec<usize>)> {
        Some((names.iter().map(|s| s.to_string()).collect(), cols.to_vec()))
    }

    use Role::{Attribute as A, Dimension as D, Measure as M, Time as T};

    const SDMX: &[(&str, Role)] = &[
        ("REF_AREA", D),
        ("TIME_PERIOD", T),
        ("OBS_VALUE", M),
        ("UNIT_MEASURE", A),
        ("OBS_STATUS", A),
        ("FREQ", D),
    ];

    #[test]
    fn roles_and_usual_names_give_period_value_unit_and_status() {
        let mut b = builder(&[("gdp", None, None)]);
        let r = resolve(&mut b, spec(), SDMX);
        assert_eq!(
            r,
            Resolved {
                ok: true,
                value: 2,
                unit: Some(3),
                multiplier: None,
                status: Some(4),
                metric: None,
                // Every other dimension is a label, lower-cased; the period comes last.
                targets: vec![labels(&["ref_area", "freq", "year"], &[0, 5, 1])],
                errors: vec![],
            }
        );

        // Plain columns by name, case-blind; the period named in the config.
        let mut b = builder(&[("gdp", None, None)]);
        let input = Spec {
            period: Some(("WHEN".into(), span("WHEN"))),
            ..spec()
        };
        let r = resolve(
            &mut b,
            input,
            &[
                ("area", D),
                ("Value", D),
                ("WHEN", D),
                ("UNIT_MULT", D),
                ("unit", D),
            ],
        );
        assert_eq!(r.errors, Vec::<String>::new());
        assert_eq!((r.value, r.unit, r.multiplier), (1, Some(4), Some(3)));
        assert_eq!(r.targets, vec![labels(&["area", "year"], &[0, 2])]);
    }

    #[test]
    fn labels_map_components_and_leave_the_rest_out() {
        let mut b = builder(&[("gdp", Some("count"), None)]);
        let input = Spec {
            labels: Some(vec![("country".into(), "REF_AREA".into(), span("file"))]),
            ..spec()
        };
        let r = resolve(&mut b, input, SDMX);
        assert_eq!(r.errors, Vec::<String>::new());
        // FREQ is not listed, so not a label.
        assert_eq!(r.targets, vec![labels(&["country", "year"], &[0, 1])]);

        // Declared labels are found by name and ordered as declared.
        let mut b = builder(&[("gdp", Some("count"), Some(&["year", "ref_area"]))]);
        let r = resolve(&mut b, spec(), SDMX);
        assert_eq!(r.targets, vec![labels(&["year", "ref_area"], &[1, 0])]);

        let mut b = builder(&[("gdp", Some("count"), Some(&["sex", "year"]))]);
        let r = resolve(&mut b, spec(), SDMX);
        assert!(!r.ok);
        assert_eq!(
            r.errors,
            vec!["config.toml:2:1: label `sex` of metric `gdp` is not a component of `data.csv`, expected one of: REF_AREA, TIME_PERIOD, OBS_VALUE, UNIT_MEASURE, OBS_STATUS, FREQ (or map it: labels = { sex = \"COMPONENT\" })"]
        );
    }

    #[test]
    fn a_metric_dimension_picks_the_metric_of_each_row() {
        let mut b = builder(&[("gdp", Some("count"), None), ("pop", Some("persons"), None)]);
        let input = Spec {
            metric: None,
            metric_dimension: Some(("INDICATOR".into(), span("file"))),
            metric_codes: [("GDP".to_string(), 0), ("POP".to_string(), 1)]
                .into_iter()
                .collect(),
            ..spec()
        };
        let comps = [
            ("INDICATOR", D),
            ("REF_AREA", D),
            ("TIME_PERIOD", T),
            ("OBS_VALUE", M),
        ];
        let path = Path::new("config.toml");
        let map = SourceMap::new(path, CONFIG);
        let components: Vec<Component> = comps
            .iter()
            .map(|(id, role)| Component::new(*id, *role))
            .collect();
        let mut plan = Plan::new(&map, &mut b, input, 1);
        assert!(plan.components(&components, &|_| Origin::File));
        assert_eq!(plan.metric_col, Some(0));
        assert_eq!(plan.metric_of(&["POP", "FR", "2020", "1"]), Some(1));
        assert_eq!(plan.metric_of(&["GDP", "FR", "2020", "1"]), Some(0));
        assert_eq!(plan.metric_of(&["CPI", "FR", "2020", "1"]), None);
        let cols: Vec<Vec<usize>> = plan
            .targets
            .iter()
            .map(|t| t.as_ref().expect("fed").cols.clone())
            .collect();
        drop(plan);
        assert_eq!(cols, vec![vec![1, 2], vec![1, 2]]);
        assert_eq!(
            b.metrics[1].labels,
            Some(vec!["ref_area".into(), "year".into()])
        );
    }

    #[test]
    fn a_missing_period_value_or_unit_is_reported_at_the_input() {
        let mut b = builder(&[("gdp", Some("count"), Some(&["area", "year"]))]);
        let r = resolve(&mut b, spec(), &[("area", D), ("OBS_VALUE", M)]);
        assert!(!r.ok);
        assert_eq!(
            r.errors,
            vec!["config.toml:2:1: no period in `data.csv`, expected a time component or `period = \"COMPONENT\"`, one of: area, OBS_VALUE (or leave `year` out of the metric's labels to serve figures without a period)"]
        );
        // A metric that does not take the period label is served without one.
        for labels in [None, Some(&["area"][..])] {
            let mut b = builder(&[("gdp", Some("count"), labels)]);
            let r = resolve(&mut b, spec(), &[("area", D), ("OBS_VALUE", M)]);
            assert!(r.ok, "{:?}", r.errors);
            assert_eq!(b.metrics[0].labels, Some(vec!["area".to_string()]));
        }

        let mut b = builder(&[("gdp", Some("count"), None)]);
        let r = resolve(&mut b, spec(), &[("area", D), ("year", D)]);
        assert_eq!(
            r.errors,
            vec!["config.toml:2:1: no value in `data.csv`, expected a measure component or `value = \"COMPONENT\"`, one of: area, year"]
        );

        let mut b = builder(&[("gdp", None, None)]);
        let r = resolve(&mut b, spec(), &[("area", D), ("year", T), ("value", M)]);
        assert_eq!(
            r.errors,
            vec!["config.toml:2:1: metric `gdp` has no unit, expected `unit` in its [[metric]] or `unit = \"COMPONENT\"` in this [[input]], one of: area, year, value"]
        );

        // A component the config names must be in the file; reported at the config key.
        let mut b = builder(&[("gdp", Some("count"), None)]);
        let input = Spec {
            period: Some(("WHEN".into(), span("WHEN"))),
            ..spec()
        };
        let r = resolve(&mut b, input, &[("area", D), ("year", T), ("value", M)]);
        assert_eq!(
            r.errors,
            vec!["config.toml:3:11: unknown period component `WHEN` in `data.csv`, expected one of: area, year, value"]
        );
    }

    /// A long CSV of `gdp` loaded through the plan and the builder, read in pieces of
    /// `piece` bytes or in one pass.
    fn load_csv(text: &str, piece: Option<usize>) -> crate::dataset::builder::Built {
        let mut b = builder(&[("gdp", Some("count"), None)]);
        let path = Path::new("config.toml");
        let map = SourceMap::new(path, CONFIG);
        let input = Spec {
            missing: DEFAULT_MISSING.iter().map(|s| s.to_string()).collect(),
            ..spec()
        };
        let mut plan = Plan::new(&map, &mut b, input, 1);
        let options = source::csv::CsvOptions::default();
        match piece {
            None => source::csv::read(text, &options, &mut plan),
            Some(p) => {
                source::records::in_pieces(p, || source::csv::read(text, &options, &mut plan))
            }
        }
        drop(plan);
        b.finish()
    }

    #[test]
    fn a_file_read_in_pieces_gives_the_same_dataset_and_errors() {
        let mut text = String::from("area,year,value,status\n");
        for i in 0..300 {
            let area = format!("A{}", i % 40);
            let year = 2000 + i / 40;
            match i {
                // A duplicate of row 2, a bad value, a bad period and a missing figure, all
                // far from the header.
                250 => text.push_str("A0,2000,9,\n"),
                260 => text.push_str(&format!("{area},{year},12;5,\n")),
                270 => text.push_str(&format!("{area},20x0,1,\n")),
                280 => text.push_str(&format!("{area},{year},..,c\n")),
                _ => text.push_str(&format!(
                    "{area},{year},{i}.25,{}\n",
                    if i % 7 == 0 { "p" } else { "" }
                )),
            }
        }
        let want = load_csv(&text, None);
        let errors: Vec<String> = want.errs.iter().map(ToString::to_string).collect();
        assert_eq!(
            errors,
            vec![
                "data.csv:262:10: invalid value `12;5`, expected a number".to_string(),
                format!("data.csv:272:5: year `20x0` is not a period, expected {}", crate::dataset::calendar::PERIOD_FORMS),
                "data.csv:252:1: duplicate series gdp{area=\"A0\",year=\"2000\"}, first defined at line 2".to_string(),
            ]
        );
        assert_eq!(want.missing, vec![("gdp".to_string(), "confidential", 1)]);
        for piece in [1, 16, 333, 2000] {
            let got = load_csv(&text, Some(piece));
            assert_eq!(got.errs, want.errs, "pieces of {piece}");
            assert_eq!(got.metrics, want.metrics, "pieces of {piece}");
            assert_eq!(got.symbols, want.symbols, "pieces of {piece}");
            assert_eq!(got.missing, want.missing, "pieces of {piece}");
        }
    }

    #[test]
    fn component_ids_become_label_names() {
        assert_eq!(label_name("REF_AREA"), "ref_area");
        assert_eq!(label_name("Country Code"), "country_code");
        assert_eq!(label_name("2nd"), "_2nd");
        assert_eq!(label_name("__x"), "_x");
    }

    #[test]
    fn reasons_for_missing_figures() {
        assert_eq!(missing_reason("", "M", ""), "not_available");
        assert_eq!(missing_reason("", "", "C"), "confidential");
        assert_eq!(missing_reason(":C", "", ""), "confidential");
        assert_eq!(missing_reason("", "c", ""), "confidential");
        assert_eq!(missing_reason("..", "", ""), "not_available");
        assert_eq!(missing_reason("", "", ""), "missing");
    }
}
