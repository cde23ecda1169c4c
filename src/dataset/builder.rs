//! The one validator: every observation, whatever file and format it was written in, passes
//! [`Builder::add`], so every check and every message is the same. Then [`Builder::finish`]
//! sorts each metric's series once and reports duplicates.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use rustc_hash::FxHashMap;

use super::{series_text, Metric, NO_STATUS};
use crate::dataset::calendar::{Cadence, Period, PERIOD_FORMS};
use crate::dataset::units::{parse_scaled, scale_pow10, Unit};
pub use crate::diagnostic::MAX_ERRORS_PER_FILE;
use crate::diagnostic::{excerpt, Diagnostic};

/// Where something is in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loc {
    File,
    At(u32, u32),
    Path(String),
}

/// Which part of an observation a location or a problem is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// The observation as a whole (an inline sample's table).
    Row,
    /// Label `i` of the metric's labels.
    Label(usize),
    Value,
    Unit,
}

/// An observation's value as written.
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    Number(f64),
    Text(&'a str),
    /// No figure, for this reason (`missing`, `confidential`, `not_available`).
    Missing(&'static str),
}

/// One observation for one metric, labels in the metric's label order (the period included).
pub struct Obs<'a> {
    pub metric: usize,
    pub labels: &'a [&'a str],
    pub value: Value<'a>,
    /// A power of ten the file says the value is in (UNIT_MULT, POWERCODE …).
    pub exponent: i32,
    /// The unit the file gives this observation, and the code it was written as.
    pub unit: Option<(Unit, &'a str)>,
    /// The observation status flag, "" for a normal value.
    pub status: &'a str,
    /// Index into the builder's files.
    pub file: u32,
    /// Which field's location identifies the observation in messages.
    pub position: Field,
}

/// Where a series was defined: a file, and a line and column (line 0: `col` indexes the
/// builder's JSON paths).
#[derive(Debug, Clone, Copy)]
struct Pos {
    file: u32,
    line: u32,
    col: u32,
}

/// A `[[metric]]` as validation knows it, and the series read for it so far.
pub struct MetricDef {
    pub raw_name: String,
    prefix: String,
    help: String,
    pub unit: Option<Unit>,
    unit_from_config: bool,
    /// The unit code the first file-given unit was written as.
    unit_code: String,
    multiplier: i32,
    /// Label names; None until the metric's config or its first input says.
    pub labels: Option<Vec<String>>,
    period_col: Option<usize>,
    /// The cadence, and whether it came from the dataset's `[dataset.period]`.
    cadence: Option<(Cadence, bool)>,
    cadence_first: String,
    pub usable: bool,
    /// Labels that may be dropped when they have one value in all series.
    droppable: Vec<bool>,
    ids: Vec<u32>,
    values: Vec<f64>,
    status: Vec<u32>,
    positions: Vec<Pos>,
    deleted: Vec<Vec<u32>>,
    missing: BTreeMap<&'static str, u64>,
}

impl MetricDef {
    /// The metric's `scale` as a power of ten.
    pub fn scale(&self) -> i32 {
        self.multiplier
    }

    #[allow(clippy::too_many_arguments)]
    pub fn new(
        raw_name: String,
        prefix: String,
        help: String,
        unit: Option<Unit>,
        multiplier: i32,
        labels: Option<Vec<String>>,
        cadence: Option<(Cadence, bool)>,
        usable: bool,
    ) -> MetricDef {
        MetricDef {
            raw_name,
            prefix,
            help,
            unit_from_config: unit.is_some(),
            unit,
            unit_code: String::new(),
            multiplier,
            labels: None,
            period_col: None,
            cadence,
            cadence_first: String::new(),
            usable,
            droppable: Vec::new(),
            ids: Vec::new(),
            values: Vec::new(),
            status: Vec::new(),
            positions: Vec::new(),
            deleted: Vec::new(),
            missing: BTreeMap::new(),
        }
        .with_labels(labels)
    }

    fn with_labels(mut self, labels: Option<Vec<String>>) -> Self {
        if let Some(l) = labels {
            self.droppable = vec![false; l.len()];
            self.labels = Some(l);
        }
        self
    }

    /// Whether the metric knows its unit before reading files.
    pub fn has_config_unit(&self) -> bool {
        self.unit_from_config
    }

    fn name(&self) -> String {
        match self.unit.as_ref().and_then(Unit::suffix) {
            Some(s) => format!("{}{}_{s}", self.prefix, self.raw_name),
            None => format!("{}{}", self.prefix, self.raw_name),
        }
    }
}

/// What [`Builder::finish`] hands back.
pub struct Built {
    pub metrics: Vec<Metric>,
    pub symbols: Vec<Box<str>>,
    pub files: Vec<PathBuf>,
    pub errs: Vec<Diagnostic>,
    pub missing: Vec<(String, &'static str, u64)>,
    /// Display names from data files: label -> code -> language -> name.
    pub names: BTreeMap<String, BTreeMap<String, BTreeMap<String, String>>>,
    /// Metrics that got no unit from the config nor from a file.
    pub unitless: Vec<usize>,
    /// What labels stand for, from data files (an SDMX concept's name): label -> text.
    pub helps: BTreeMap<String, String>,
}

pub struct Builder {
    pub files: Vec<PathBuf>,
    pub source_ids: HashSet<String>,
    pub errs: Vec<Diagnostic>,
    pub metrics: Vec<MetricDef>,
    pub period_label: String,
    /// Metrics whose table could not be read: not reported again where they are named.
    pub unread_metrics: Vec<String>,
    interner: Interner,
    periods: FxHashMap<Box<str>, Option<(u32, Period)>>,
    paths: Vec<String>,
    buf: String,
    names: BTreeMap<String, BTreeMap<String, BTreeMap<String, String>>>,
    /// Label -> what it stands for, and whether in the input's language.
    helps: BTreeMap<String, (String, bool)>,
    /// Problems per file (index into `files`), to cap what is listed.
    counts: Vec<usize>,
    /// Languages of display names refused, per file.
    bad_languages: HashSet<(u32, String)>,
    /// Longest label value or display name, in bytes (`usize::MAX`: no limit).
    pub max_label_value_length: usize,
}

impl Builder {
    pub fn new(
        config: PathBuf,
        period_label: String,
        source_ids: HashSet<String>,
        errs: Vec<Diagnostic>,
    ) -> Builder {
        Builder {
            files: vec![config],
            source_ids,
            errs,
            metrics: Vec::new(),
            period_label,
            unread_metrics: Vec::new(),
            interner: Interner::default(),
            periods: FxHashMap::default(),
            paths: Vec::new(),
            buf: String::new(),
            names: BTreeMap::new(),
            helps: BTreeMap::new(),
            counts: vec![0],
            bad_languages: HashSet::new(),
            max_label_value_length: super::DEFAULT_MAX_LABEL_VALUE_LENGTH,
        }
    }

    pub fn add_metric(&mut self, def: MetricDef) {
        let mut def = def;
        if let Some(l) = &def.labels {
            def.period_col = l.iter().position(|n| *n == self.period_label);
        }
        self.metrics.push(def);
    }

    /// Fixes the labels of a metric that declared none, from its first input.
    pub fn set_labels(&mut self, metric: usize, labels: Vec<String>, droppable: Vec<bool>) {
        let def = &mut self.metrics[metric];
        def.period_col = labels.iter().position(|n| *n == self.period_label);
        def.droppable = droppable;
        def.labels = Some(labels);
    }

    /// Registers a data file; its index is what observations and problems refer to.
    pub fn add_file(&mut self, path: PathBuf) -> u32 {
        self.files.push(path);
        self.counts.push(0);
        self.files.len() as u32 - 1
    }

    /// A problem at `loc` in file `file`; beyond [`MAX_ERRORS_PER_FILE`] only counted, so a
    /// file of a million bad rows costs no memory for messages that will not be shown.
    pub fn error(&mut self, file: u32, loc: Loc, message: String) {
        let n = &mut self.counts[file as usize];
        *n += 1;
        if *n > MAX_ERRORS_PER_FILE {
            return;
        }
        let path = &self.files[file as usize];
        self.errs.push(match loc {
            Loc::File => Diagnostic::file(path, message),
            Loc::At(line, col) => Diagnostic::at(path, line as usize, col as usize, message),
            Loc::Path(p) => Diagnostic::file(path, format!("{p}: {message}")),
        });
    }

    /// A display name a data file gives for a code of a label. Its language becomes label
    /// `name_<lang>`, so a language that cannot be part of a label name is refused, once per
    /// file and language; names arrive while their file is read, the last one added.
    pub fn name(&mut self, label: &str, code: &str, lang: &str, name: &str, at: &dyn Fn() -> Loc) {
        let file = self.files.len() as u32 - 1;
        // Checked before the language: the limit is the problem worth saying of a huge name.
        let too_long = self
            .too_long("value of", label, code.len())
            .or_else(|| self.too_long("display name of", label, name.len()));
        if let Some(msg) = too_long {
            self.error(file, at(), msg);
            return;
        }
        if !super::is_label_name(lang) {
            if self.bad_languages.insert((file, lang.to_string())) {
                let msg = format!(
                    "display names in language `{}` cannot be served as label `name_{}`, expected a language code of letters, digits, `_` and `-`",
                    excerpt(lang),
                    excerpt(lang)
                );
                self.error(file, Loc::File, msg);
            }
            return;
        }
        self.names
            .entry(label.to_string())
            .or_default()
            .entry(code.to_string())
            .or_default()
            .entry(lang.to_string())
            .or_insert_with(|| name.to_string());
    }

    /// What `label` stands for, as a data file names its component; the first name in the
    /// input's language (`preferred`) wins, else the first of any.
    pub fn label_help(&mut self, label: &str, name: &str, preferred: bool) {
        if name.len() > self.max_label_value_length {
            return;
        }
        let kept = self.helps.get(label).is_some_and(|(_, p)| *p || !preferred);
        if !kept {
            self.helps
                .insert(label.to_string(), (name.to_string(), preferred));
        }
    }

    /// Counts an observation without a figure.
    pub fn missing(&mut self, metric: usize, reason: &'static str) {
        *self.metrics[metric].missing.entry(reason).or_default() += 1;
    }

    /// An SDMX delete: the series with these labels is removed from the metric.
    pub fn delete(&mut self, metric: usize, labels: &[&str]) {
        let ids: Vec<u32> = labels
            .iter()
            .map(|v| match Period::parse(v) {
                Some(p) => self.interner.intern(&p.to_string()),
                None => self.interner.intern(v),
            })
            .collect();
        self.metrics[metric].deleted.push(ids);
    }

    /// Validates one observation and adds it to its metric, or reports why it cannot be.
    pub fn add(&mut self, o: &Obs, at: &dyn Fn(Field) -> Loc) {
        let multiplier = {
            let d = &self.metrics[o.metric];
            if !d.usable || d.labels.is_none() {
                return;
            }
            d.multiplier
        };
        // The unit first: the exponent depends on it.
        let Some(unit) = self.obs_unit(o, at) else {
            return;
        };
        let exp = unit.exponent + multiplier + o.exponent;
        let Some(value) = self.obs_value(o, unit, exp, at) else {
            return;
        };
        // Label ids on the stack for the usual few, so an observation allocates nothing.
        let mut ids: [u32; 16] = [0; 16];
        let mut heap: Vec<u32>;
        let n = o.labels.len();
        let ids: &mut [u32] = if n <= 16 {
            &mut ids[..n]
        } else {
            heap = vec![0; n];
            &mut heap
        };
        if !self.label_ids(o, ids, at) {
            return;
        }
        let status = if o.status.is_empty() {
            NO_STATUS
        } else {
            self.interner.intern(o.status)
        };
        let pos = self.pos(o, at);
        let def = &mut self.metrics[o.metric];
        def.ids.extend_from_slice(ids);
        def.values.push(value);
        super::push_status(&mut def.status, def.values.len(), status);
        def.positions.push(pos);
    }

    /// The observation's unit: the file's, which must have the base of the metric's (the
    /// first one fixes a metric without a unit), else the metric's; None when there is none
    /// or it conflicts (reported).
    fn obs_unit(&mut self, o: &Obs, at: &dyn Fn(Field) -> Loc) -> Option<Unit> {
        let def_unit = self.metrics[o.metric].unit;
        match (o.unit, def_unit) {
            (Some((u, code)), None) => {
                let d = &mut self.metrics[o.metric];
                d.unit = Some(u);
                d.unit_code = code.to_string();
                Some(u)
            }
            (Some((u, code)), Some(du)) => {
                if u.base != du.base {
                    let d = &self.metrics[o.metric];
                    let was = if d.unit_from_config {
                        format!("the unit of metric `{}` in the config", d.raw_name)
                    } else {
                        format!(
                            "`{}`, the unit of the rest of metric `{}`",
                            d.unit_code, d.raw_name
                        )
                    };
                    let msg = format!("unit `{}` is {u}, expected {du} like {was}", excerpt(code));
                    self.error(o.file, at(Field::Unit), msg);
                    return None;
                }
                Some(u)
            }
            (None, Some(du)) => Some(du),
            (None, None) => None,
        }
    }

    /// The value in the unit's base, scaled by `exp`; None when there is no figure (counted)
    /// or it is not a usable number (reported).
    fn obs_value(
        &mut self,
        o: &Obs,
        unit: Unit,
        exp: i32,
        at: &dyn Fn(Field) -> Loc,
    ) -> Option<f64> {
        let value = match o.value {
            Value::Missing(reason) => {
                self.missing(o.metric, reason);
                return None;
            }
            Value::Number(v) => self.number_value(o, v, unit, exp, at)?,
            Value::Text(t) => self.text_value(o, t.trim(), unit, exp, at)?,
        };
        let value = unit.times_factor(value);
        if !value.is_finite() {
            let base = unit.suffix().unwrap_or("the base unit").to_string();
            let msg = match o.value {
                Value::Number(v) => format!("value {v} is too large to convert to {base}"),
                Value::Text(t) => format!("value {} is too large to convert to {base}", excerpt(t)),
                Value::Missing(_) => unreachable!("returned above"),
            };
            self.error(o.file, at(Field::Value), msg);
            return None;
        }
        Some(value)
    }

    /// A value given as a number: finite, a percent within 0 to 100, then scaled.
    fn number_value(
        &mut self,
        o: &Obs,
        v: f64,
        unit: Unit,
        exp: i32,
        at: &dyn Fn(Field) -> Loc,
    ) -> Option<f64> {
        if !v.is_finite() {
            let msg = format!("value {v} is not a finite number, expected a published figure");
            self.error(o.file, at(Field::Value), msg);
            return None;
        }
        if unit.share && !(0.0..=100.0).contains(&v) {
            let msg = format!("percent value {v} out of range, expected 0 to 100");
            self.error(o.file, at(Field::Value), msg);
            return None;
        }
        Some(scale_pow10(v, exp))
    }

    /// A value given as text (trimmed): parsed in decimal and scaled; a percent is checked
    /// as written, before scaling.
    fn text_value(
        &mut self,
        o: &Obs,
        t: &str,
        unit: Unit,
        exp: i32,
        at: &dyn Fn(Field) -> Loc,
    ) -> Option<f64> {
        let parsed = if t.is_empty() {
            None
        } else {
            parse_scaled(t, exp, &mut self.buf)
        };
        let msg = match parsed {
            None if t.is_empty() => "missing value, expected a number".to_string(),
            None => format!("invalid value `{}`, expected a number", excerpt(t)),
            // Infinite as written, not only once scaled (that is "too large" below).
            Some(v)
                if !v.is_finite()
                    && parse_scaled(t, 0, &mut self.buf).is_some_and(|r| !r.is_finite()) =>
            {
                format!("value {t} is not a finite number, expected a published figure")
            }
            Some(v) if unit.share => {
                let raw = parse_scaled(t, 0, &mut self.buf).unwrap_or(v);
                if (0.0..=100.0).contains(&raw) {
                    return Some(v);
                }
                format!("percent value {raw} out of range, expected 0 to 100")
            }
            Some(v) => return Some(v),
        };
        self.error(o.file, at(Field::Value), msg);
        None
    }

    /// Interns the observation's labels into `ids`, checking its period and that no label is
    /// empty; false when one is not (every one reported).
    fn label_ids(&mut self, o: &Obs, ids: &mut [u32], at: &dyn Fn(Field) -> Loc) -> bool {
        let mut ok = true;
        for (i, v) in o.labels.iter().enumerate() {
            let label = || &self.metrics[o.metric].labels.as_ref().expect("checked")[i];
            if let Some(msg) = self.too_long("value of", label(), v.len()) {
                self.error(o.file, at(Field::Label(i)), msg);
                ok = false;
            } else if Some(i) == self.metrics[o.metric].period_col {
                match self.period(o.metric, i, v, o.file, at) {
                    Some(id) => ids[i] = id,
                    None => ok = false,
                }
            } else if v.is_empty() {
                let label = &self.metrics[o.metric].labels.as_ref().expect("checked")[i];
                let msg = format!("empty value for label `{label}`, expected a code");
                self.error(o.file, at(Field::Label(i)), msg);
                ok = false;
            } else {
                ids[i] = self.interner.intern(v);
            }
        }
        ok
    }

    /// The message for a value of `len` bytes over the limit, None within it. The value itself
    /// is not quoted: its start says nothing its position does not.
    fn too_long(&self, what: &str, label: &str, len: usize) -> Option<String> {
        let max = self.max_label_value_length;
        (len > max).then(|| {
            format!(
                "{what} label `{label}` is {len} bytes long, expected at most {max} (max_label_value_length in [dataset])"
            )
        })
    }

    /// Where the observation is, kept compact: a JSON path is stored once in `paths`.
    fn pos(&mut self, o: &Obs, at: &dyn Fn(Field) -> Loc) -> Pos {
        match at(o.position) {
            Loc::At(line, col) => Pos {
                file: o.file,
                line,
                col,
            },
            Loc::Path(p) => {
                self.paths.push(p);
                Pos {
                    file: o.file,
                    line: 0,
                    col: self.paths.len() as u32 - 1,
                }
            }
            Loc::File => Pos {
                file: o.file,
                line: 0,
                col: u32::MAX,
            },
        }
    }

    /// Checks a period value and returns the id of its canonical form.
    fn period(
        &mut self,
        metric: usize,
        i: usize,
        v: &str,
        file: u32,
        at: &dyn Fn(Field) -> Loc,
    ) -> Option<u32> {
        let parsed = match self.periods.get(v) {
            Some(p) => *p,
            None => {
                let p = Period::parse(v).map(|p| (self.interner.intern(&p.to_string()), p));
                self.periods.insert(v.into(), p);
                p
            }
        };
        let def = &self.metrics[metric];
        let label = &def.labels.as_ref().expect("checked")[i];
        let msg = match (parsed, def.cadence) {
            (None, Some((Cadence::Annual, true))) => format!("{label} `{}` is not a year, expected four digits (the period label of an annual dataset)", excerpt(v)),
            (None, _) => format!("{label} `{}` is not a period, expected {PERIOD_FORMS}", excerpt(v)),
            (Some((id, p)), None) => {
                let def = &mut self.metrics[metric];
                def.cadence = Some((p.cadence(), false));
                def.cadence_first = v.to_string();
                return Some(id);
            }
            (Some((id, p)), Some((c, _))) if p.cadence() == c => return Some(id),
            (Some((_, p)), Some((c, from_dataset))) => {
                let like = if !def.cadence_first.is_empty() {
                    format!("like `{}`, the first period of metric `{}`", def.cadence_first, def.raw_name)
                } else if from_dataset {
                    "the cadence of the dataset".to_string()
                } else {
                    format!("the cadence of metric `{}`", def.raw_name)
                };
                format!("{label} `{v}` is {} period, expected {} period ({}), {like}", a(p.cadence()), a(c), c.form())
            }
        };
        self.error(file, at(Field::Label(i)), msg);
        None
    }

    /// Sorts every metric's series, reports duplicates, and hands the results back.
    pub fn finish(self) -> Built {
        self.finish_with(PARALLEL_SORT_FROM)
    }

    /// [`Builder::finish`], sorting metrics on threads from `parallel_from` series a batch.
    fn finish_with(mut self, parallel_from: usize) -> Built {
        for (file, n) in self.counts.iter().enumerate() {
            if *n > MAX_ERRORS_PER_FILE {
                self.errs.push(Diagnostic::omitted(
                    &self.files[file],
                    n - MAX_ERRORS_PER_FILE,
                ));
            }
        }
        let symbols = std::mem::take(&mut self.interner.symbols);
        let ranks = ranks(&symbols);
        let mut metrics = Vec::new();
        let mut missing = Vec::new();
        let mut unitless = Vec::new();
        // A few metrics at a time, one per core: sorting their series is most of finishing,
        // and only the metrics of a batch hold their series twice (as read and sorted).
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut defs = std::mem::take(&mut self.metrics).into_iter().peekable();
        while defs.peek().is_some() {
            let mut batch = Vec::new();
            for mut def in defs.by_ref().take(cpus) {
                let name = def.name();
                for (reason, n) in &def.missing {
                    missing.push((name.clone(), *reason, *n));
                }
                if def.usable && def.unit.is_none() {
                    unitless.push(metrics.len() + batch.len());
                }
                drop_single_valued(&mut def);
                let labels = def.labels.clone().unwrap_or_default();
                let mut m = Metric::new(
                    name,
                    def.help.clone(),
                    def.unit.unwrap_or(Unit::parse("count").expect("known")),
                    labels,
                );
                m.cadence = def.period_col.and(def.cadence.map(|c| c.0));
                batch.push((m, def));
            }
            let read = Read {
                ranks: &ranks,
                symbols: &symbols,
                files: &self.files,
                paths: &self.paths,
            };
            // Each metric's problems in metric order, as one after the other would give.
            for errs in canonicalize_batch(&mut batch, &read, parallel_from) {
                self.errs.extend(errs);
            }
            metrics.extend(batch.into_iter().map(|(m, _)| m));
        }
        // Only names of codes that are served.
        let used: HashSet<&str> = symbols.iter().map(|s| &**s).collect();
        let mut names = std::mem::take(&mut self.names);
        for codes in names.values_mut() {
            codes.retain(|code, _| used.contains(code.as_str()));
        }
        // Nor of labels no metric has (dropped as single-valued, or not mapped).
        names.retain(|label, codes| {
            !codes.is_empty() && metrics.iter().any(|m| m.label_names.contains(label))
        });
        let helps = std::mem::take(&mut self.helps)
            .into_iter()
            .filter(|(label, _)| names.contains_key(label))
            .map(|(label, (help, _))| (label, help))
            .collect();
        Built {
            metrics,
            symbols,
            files: self.files,
            errs: self.errs,
            missing,
            names,
            unitless,
            helps,
        }
    }
}

/// Removes labels allowed to go that have one value across all series of the metric.
fn drop_single_valued(def: &mut MetricDef) {
    let Some(labels) = def.labels.clone() else {
        return;
    };
    let k = labels.len();
    if k == 0 || def.values.is_empty() {
        return;
    }
    let keep: Vec<bool> = (0..k)
        .map(|j| {
            !def.droppable.get(j).copied().unwrap_or(false)
                || Some(j) == def.period_col
                || def.ids.chunks(k).any(|s| s[j] != def.ids[j])
        })
        .collect();
    if keep.iter().all(|&x| x) {
        return;
    }
    let period_name = def.period_col.map(|p| labels[p].clone());
    let ids: Vec<u32> = def
        .ids
        .chunks(k)
        .flat_map(|s| s.iter().zip(&keep).filter(|(_, &k)| k).map(|(&v, _)| v))
        .collect();
    def.ids = ids;
    let kept: Vec<String> = labels
        .into_iter()
        .zip(&keep)
        .filter(|(_, &k)| k)
        .map(|(l, _)| l)
        .collect();
    def.period_col = period_name.and_then(|n| kept.iter().position(|l| *l == n));
    def.labels = Some(kept);
}

/// The lexicographic rank of every symbol: comparing ranks orders series like comparing
/// their label strings, at the cost of an integer comparison.
pub(super) fn ranks(symbols: &[Box<str>]) -> Vec<u32> {
    let mut by_text: Vec<u32> = (0..symbols.len() as u32).collect();
    by_text.sort_by(|a, b| symbols[*a as usize].cmp(&symbols[*b as usize]));
    let mut ranks = vec![0; symbols.len()];
    for (rank, id) in by_text.into_iter().enumerate() {
        ranks[id as usize] = rank as u32;
    }
    ranks
}

/// What sorting a metric reads besides the metric.
struct Read<'a> {
    ranks: &'a [u32],
    symbols: &'a [Box<str>],
    files: &'a [PathBuf],
    paths: &'a [String],
}

/// Below this many series in a batch, metrics are sorted one after the other: a thread
/// would cost more than it saves.
const PARALLEL_SORT_FROM: usize = 100_000;

/// Sorts the metrics of a batch, each on a thread of its own when they are large; the
/// problems of each metric, in batch order.
fn canonicalize_batch(
    batch: &mut [(Metric, MetricDef)],
    read: &Read,
    parallel_from: usize,
) -> Vec<Vec<Diagnostic>> {
    let one = |(m, def): &mut (Metric, MetricDef)| {
        let mut errs = Vec::new();
        canonicalize(
            m,
            def,
            read.ranks,
            read.symbols,
            read.files,
            read.paths,
            &mut errs,
        );
        errs
    };
    let series: usize = batch.iter().map(|(_, d)| d.values.len()).sum();
    if batch.len() < 2 || series < parallel_from {
        return batch.iter_mut().map(one).collect();
    }
    let (first, rest) = batch.split_first_mut().expect("two or more");
    std::thread::scope(|scope| {
        let others: Vec<_> = rest
            .iter_mut()
            .map(|x| scope.spawn(move || one(x)))
            .collect();
        let mut out = vec![one(first)];
        out.extend(
            others
                .into_iter()
                .map(|h| h.join().expect("sorting does not panic")),
        );
        out
    })
}

/// Sorts a metric's series into written order and reports duplicates, each at its later
/// definition (the sort is stable, so equal series keep their reading order).
fn canonicalize(
    m: &mut Metric,
    def: &MetricDef,
    ranks: &[u32],
    symbols: &[Box<str>],
    files: &[PathBuf],
    paths: &[String],
    errs: &mut Vec<Diagnostic>,
) {
    let k = m.label_names.len();
    let n = def.values.len();
    let series = |i: usize| &def.ids[i * k..(i + 1) * k];
    let mut idx: Vec<u32> = (0..n as u32).collect();
    idx.sort_by(|a, b| {
        let (la, lb) = (series(*a as usize), series(*b as usize));
        m.order
            .iter()
            .map(|&j| ranks[la[j] as usize].cmp(&ranks[lb[j] as usize]))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let deleted: HashSet<&[u32]> = def.deleted.iter().map(Vec::as_slice).collect();
    m.labels.reserve(n * k);
    m.values.reserve(n);
    let mut first = 0;
    for (pos_in_order, &i) in idx.iter().enumerate() {
        let i = i as usize;
        if pos_in_order > 0 && series(i) == series(idx[pos_in_order - 1] as usize) {
            let (at, was) = (def.positions[i], def.positions[idx[first] as usize]);
            let labels = series_text(m, series(i), symbols);
            let where_first = if at.file == was.file {
                match was.line {
                    0 => paths.get(was.col as usize).cloned().unwrap_or_default(),
                    // A row's start is its line.
                    l if was.col == 1 => format!("line {l}"),
                    l => format!("line {l} column {}", was.col),
                }
            } else {
                let f = files[was.file as usize].display();
                match was.line {
                    0 => format!(
                        "{f}: {}",
                        paths.get(was.col as usize).cloned().unwrap_or_default()
                    ),
                    l => format!("{f}:{l}:{}", was.col),
                }
            };
            let message = format!(
                "duplicate series {}{{{labels}}}, first defined at {where_first}",
                m.name
            );
            let path = &files[at.file as usize];
            errs.push(match at.line {
                0 => Diagnostic::file(
                    path,
                    format!(
                        "{}: {message}",
                        paths.get(at.col as usize).cloned().unwrap_or_default()
                    ),
                ),
                l => Diagnostic::at(path, l as usize, at.col as usize, message),
            });
            continue;
        }
        first = pos_in_order;
        if !deleted.is_empty() && deleted.contains(series(i)) {
            continue;
        }
        let status = def.status.get(i).copied().unwrap_or(NO_STATUS);
        m.push(series(i), def.values[i], status);
    }
}

/// "an annual", "a monthly" …
fn a(c: Cadence) -> String {
    match c {
        Cadence::Annual => "an annual".into(),
        c => format!("a {}", c.name()),
    }
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

    /// A builder for dataset `config.toml` with metric `gdp` (prefix `x_`, labels `area` and
    /// `year`, the period label) of `unit` from the config, times 10^`multiplier`, and data
    /// file 1, `data.csv`.
    fn builder(unit: Option<&str>, multiplier: i32) -> Builder {
        let mut b = Builder::new(
            PathBuf::from("config.toml"),
            "year".into(),
            HashSet::new(),
            Vec::new(),
        );
        b.add_metric(MetricDef::new(
            "gdp".into(),
            "x_".into(),
            "GDP.".into(),
            unit.map(|u| Unit::parse(u).expect("known unit")),
            multiplier,
            Some(vec!["area".into(), "year".into()]),
            None,
            true,
        ));
        assert_eq!(b.add_file(PathBuf::from("data.csv")), 1);
        b
    }

    /// One observation on line `line` of `data.csv` with `area` and `year`, the value at
    /// column 10 and the unit at column 20.
    struct Row<'a> {
        line: u32,
        area: &'a str,
        year: &'a str,
        value: Value<'a>,
        exponent: i32,
        unit: Option<(Unit, &'a str)>,
        status: &'a str,
    }

    fn row<'a>(line: u32, area: &'a str, year: &'a str, value: &'a str) -> Row<'a> {
        Row {
            line,
            area,
            year,
            value: Value::Text(value),
            exponent: 0,
            unit: None,
            status: "",
        }
    }

    fn add(b: &mut Builder, r: Row) {
        let labels = [r.area, r.year];
        let line = r.line;
        let at = |f: Field| match f {
            Field::Row => Loc::At(line, 1),
            Field::Label(i) => Loc::At(line, 3 + 5 * i as u32),
            Field::Value => Loc::At(line, 10),
            Field::Unit => Loc::At(line, 20),
        };
        let obs = Obs {
            metric: 0,
            labels: &labels,
            value: r.value,
            exponent: r.exponent,
            unit: r.unit,
            status: r.status,
            file: 1,
            position: Field::Row,
        };
        b.add(&obs, &at);
    }

    fn errors(b: &Builder) -> Vec<String> {
        b.errs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn values_are_kept_in_base_units_exactly() {
        // A percent is a ratio: 0.1 % is 0.001, not 0.1 * 0.01 (0.0010000000000000002).
        let mut b = builder(Some("percent"), 0);
        add(&mut b, row(2, "FR", "2020", "0.1"));
        add(&mut b, row(3, "DE", "2020", " 12.5 "));
        assert_eq!(errors(&b), Vec::<String>::new());
        assert_eq!(b.metrics[0].values, vec![0.001, 0.125]);

        // The metric's multiplier, the file's and the unit's scale add up.
        let mut b = builder(Some("10k_yuan"), 2);
        add(
            &mut b,
            Row {
                exponent: -1,
                ..row(2, "FR", "2020", "0.3")
            },
        );
        assert_eq!(b.metrics[0].values, vec![3e4]);
    }

    #[test]
    fn a_duplicate_series_is_reported_at_the_later_row_with_the_first() {
        let mut b = builder(Some("count"), 0);
        add(&mut b, row(2, "FR", "2020", "1"));
        add(&mut b, row(3, "FR", "2021", "2"));
        add(&mut b, row(5, "FR", "2020", "3"));
        let built = b.finish();
        let errs: Vec<String> = built.errs.iter().map(ToString::to_string).collect();
        assert_eq!(
            errs,
            vec![
                "data.csv:5:1: duplicate series x_gdp{area=\"FR\",year=\"2020\"}, first defined at line 2"
            ]
        );
        // The first definition is kept.
        assert_eq!(built.metrics[0].values, vec![1.0, 2.0]);
    }

    #[test]
    fn metrics_sorted_on_threads_come_out_as_sorted_one_by_one() {
        let build = |parallel_from: usize| {
            let mut b = builder(Some("count"), 0);
            for name in ["pop", "jobs"] {
                b.add_metric(MetricDef::new(
                    name.into(),
                    "x_".into(),
                    String::new(),
                    Unit::parse("persons"),
                    0,
                    Some(vec!["area".into(), "year".into()]),
                    None,
                    true,
                ));
            }
            for i in 0..80u32 {
                let (area, year) = (format!("A{}", (i * 7) % 13), format!("{}", 2000 + i % 5));
                for metric in 0..3 {
                    let labels = [area.as_str(), year.as_str()];
                    let value = i.to_string();
                    let obs = Obs {
                        metric,
                        labels: &labels,
                        value: Value::Text(&value),
                        exponent: 0,
                        unit: None,
                        status: "",
                        file: 1,
                        position: Field::Row,
                    };
                    b.add(&obs, &|_| Loc::At(i + 2, 1 + metric as u32));
                }
            }
            b.finish_with(parallel_from)
        };
        let (one_by_one, threads) = (build(usize::MAX), build(0));
        // Rows 65 to 79 repeat the series of rows 0 to 14, in each of the three metrics.
        assert_eq!(one_by_one.errs.len(), 3 * 15);
        assert_eq!(threads.metrics, one_by_one.metrics);
        assert_eq!(threads.errs, one_by_one.errs);
        assert_eq!(threads.unitless, one_by_one.unitless);
    }

    #[test]
    fn bad_values_are_reported_at_the_value() {
        let mut b = builder(Some("percent"), 0);
        add(&mut b, row(2, "FR", "2020", "12,5"));
        add(&mut b, row(3, "FR", "2021", ""));
        add(&mut b, row(4, "FR", "2022", "120"));
        add(&mut b, row(5, "FR", "2023", "1e999"));
        assert_eq!(
            errors(&b),
            vec![
                "data.csv:2:10: invalid value `12,5`, expected a number",
                "data.csv:3:10: missing value, expected a number",
                "data.csv:4:10: percent value 120 out of range, expected 0 to 100",
                "data.csv:5:10: value 1e999 is not a finite number, expected a published figure",
            ]
        );
        assert!(b.metrics[0].values.is_empty());
    }

    #[test]
    fn bad_labels_are_reported_at_the_label() {
        let mut b = builder(Some("count"), 0);
        add(&mut b, row(2, "", "2020", "1"));
        add(&mut b, row(3, "FR", "20x0", "1"));
        assert_eq!(
            errors(&b),
            vec![
                "data.csv:2:3: empty value for label `area`, expected a code".to_string(),
                format!("data.csv:3:8: year `20x0` is not a period, expected {PERIOD_FORMS}"),
            ]
        );
    }

    #[test]
    fn a_file_unit_must_have_the_base_of_the_metric_unit() {
        let mut b = builder(Some("count"), 0);
        let eur = Unit::parse("EUR").expect("currency");
        add(
            &mut b,
            Row {
                unit: Some((eur, "EUR")),
                ..row(2, "FR", "2020", "1")
            },
        );
        assert_eq!(
            errors(&b),
            vec!["data.csv:2:20: unit `EUR` is eur, expected count like the unit of metric `gdp` in the config"]
        );
        // Without a unit in the config, the first file's fixes it.
        let mut b = builder(None, 0);
        let mio_eur = Unit::from_code("MIO_EUR").expect("known code");
        add(
            &mut b,
            Row {
                unit: Some((mio_eur, "MIO_EUR")),
                ..row(2, "FR", "2020", "1.5")
            },
        );
        assert_eq!(errors(&b), Vec::<String>::new());
        assert_eq!(b.metrics[0].values, vec![1.5e6]);
        assert_eq!(b.metrics[0].unit_code, "MIO_EUR");
    }

    #[test]
    fn missing_figures_are_counted_and_statuses_kept() {
        let mut b = builder(Some("count"), 0);
        add(
            &mut b,
            Row {
                value: Value::Missing("confidential"),
                ..row(2, "FR", "2020", "")
            },
        );
        add(&mut b, row(3, "DE", "2020", "7"));
        add(
            &mut b,
            Row {
                status: "p",
                ..row(4, "IT", "2020", "8")
            },
        );
        assert_eq!(errors(&b), Vec::<String>::new());
        let def = &b.metrics[0];
        assert_eq!(def.values, vec![7.0, 8.0]);
        assert_eq!(
            def.missing
                .iter()
                .map(|(r, n)| (*r, *n))
                .collect::<Vec<_>>(),
            vec![("confidential", 1)]
        );
        // No status on the first series, `p` on the second.
        let p = b.interner.ids["p"];
        assert_eq!(def.status, vec![NO_STATUS, p]);
    }
}
