//! The decisions of `init`, from what a file holds ([`Survey`]) to a dataset config: which
//! component is the period, the value, the unit, the status; which components vary and
//! identify a series (labels) and which do not (dropped, said in a comment); which codes pick
//! the metric; each metric's unit and scale. Every choice is written as a comment beside it.

use std::fmt::Write as _;

use rustc_hash::{FxHashMap, FxHashSet};
use toml::Table;

use super::detect::Detected;
use super::survey::Survey;
use crate::dataset::calendar::{Cadence, Period};
use crate::dataset::ingest::{
    CONF_NAMES, DEFAULT_MISSING, MULTIPLIER_NAMES, PERIOD_NAMES, STATUS_NAMES, UNIT_NAMES,
    VALUE_NAMES,
};
use crate::dataset::units::{self, Unit};
use crate::source::{Format, Role};

/// Components whose codes name the indicator: one metric per code. Compared on the id's
/// letters and digits, lower-cased.
const INDICATOR_NAMES: &[&str] = &[
    "indicator",
    "indicatorcode",
    "indicatorid",
    "indicators",
    "indic",
    "bopitem",
    "naitem",
    "statistic",
    "statistics",
    "contents",
    "subject",
    "measure",
    "concept",
    "variable",
    "information",
];

/// Words that make a component's id name measures (`Índice y tasas`: index and rates).
const INDICATOR_WORDS: &[&str] = &[
    "indicator",
    "indicators",
    "measures",
    "statistic",
    "tasas",
    "rates",
];

/// Rows that decide which columns of a plain file identify a series.
const IDENTIFYING_ROWS: usize = 50_000;

/// Most codes a component may have and still name one metric each.
const MAX_METRICS: usize = 50;

/// The file and what is known of it besides its contents.
pub struct Input<'a> {
    /// As the config names it: a path relative to the config, or the URL.
    pub file: String,
    /// The file or URL as it was given.
    pub source: String,
    /// The SDMX structure message, as the config names it.
    pub structure: Option<String>,
    /// The file's name, for the dataset's name and messages.
    pub stem: String,
    pub detected: &'a Detected,
    pub survey: &'a Survey,
    pub about: About,
}

/// The `[dataset]` lines that say what the data is, each with the comment that says where it
/// comes from.
pub struct About {
    pub title: (String, String),
    pub publisher: (String, String),
    pub source_url: (String, String),
    pub published: (String, String),
}

/// Which component is which.
#[derive(Debug, Default, Clone, Copy)]
struct Roles {
    period: Option<usize>,
    value: Option<usize>,
    unit: Option<usize>,
    multiplier: Option<usize>,
    status: Option<usize>,
    conf: Option<usize>,
}

/// One `[[metric]]` to write.
struct MetricDraft {
    name: String,
    help: String,
    /// `unit = …` of the metric, with why (None: the unit column gives it).
    unit: Option<(String, String)>,
    /// `scale`: the power of ten the published figures are in, with why.
    scale: Option<(i32, String)>,
}

/// What `init` writes for a file.
pub fn config(input: &Input) -> String {
    let s = input.survey;
    let roles = roles(s);
    let missing = missing_tokens(s, roles.value);
    let served: Vec<usize> = (0..s.rows.len())
        .filter(|&r| roles.value.is_some_and(|v| !missing.contains(s.code(r, v))))
        .collect();
    let candidates: Vec<usize> = (0..s.components.len())
        .filter(|&c| s.components[c].role == Role::Dimension && !roles.has(c))
        .collect();
    let (varying, single): (Vec<usize>, Vec<usize>) =
        candidates.iter().partition(|&&c| s.distinct(c) > 1);
    let unit_key = |r: usize| roles.unit.map(|u| unit_key(s.code(r, u)));
    let split = metric_split(s, &roles, &varying, &served, &unit_key);
    let mut labels: Vec<usize> = varying
        .iter()
        .copied()
        .filter(|&c| Some(c) != split)
        .collect();
    let mut not_labels = Vec::new();
    if matches!(input.detected.format, Format::Csv | Format::Json) {
        (labels, not_labels) = identifying(s, &labels, &roles, split, &served);
    }
    let mut out = String::new();
    header(&mut out, input, &roles);
    let period = period(s, roles.period);
    dataset(&mut out, input, &period);
    let code_units = code_units(s, &roles, &served);
    let metrics = metrics(s, &roles, split, &served, &code_units, input);
    for (_, m) in &metrics {
        metric(&mut out, m);
    }
    let ctx = InputCtx {
        s,
        roles: &roles,
        split,
        labels: &labels,
        not_labels: &not_labels,
        single: &single,
        missing: &missing,
        metrics: &metrics,
        code_units: &code_units,
    };
    write_input(&mut out, input, &ctx);
    out
}

impl Roles {
    fn has(&self, c: usize) -> bool {
        [
            self.period,
            self.value,
            self.unit,
            self.multiplier,
            self.status,
            self.conf,
        ]
        .contains(&Some(c))
    }
}

fn roles(s: &Survey) -> Roles {
    let by_name = |names: &[&str]| s.named(names);
    let period = s
        .role(Role::Time)
        .or_else(|| by_name(PERIOD_NAMES))
        .or_else(|| {
            (0..s.components.len()).find(|&c| {
                s.codes[c]
                    .iter()
                    .all(|(code, _)| code.is_empty() || Period::parse(code.trim()).is_some())
            })
        });
    let value = s
        .role(Role::Measure)
        .or_else(|| by_name(VALUE_NAMES))
        .or_else(|| {
            // A plain file's value column: the last whose cells are numbers.
            (0..s.components.len()).rev().find(|&c| {
                Some(c) != period
                    && s.codes[c]
                        .iter()
                        .all(|(code, _)| code.trim().is_empty() || number(code).is_some())
            })
        });
    let other = |c: &usize| Some(*c) != period && Some(*c) != value;
    Roles {
        period,
        value,
        unit: by_name(UNIT_NAMES).filter(other),
        multiplier: by_name(MULTIPLIER_NAMES).filter(other),
        status: by_name(STATUS_NAMES).filter(other),
        conf: by_name(CONF_NAMES).filter(other),
    }
}

/// A figure as the exporter reads one (finite).
fn number(text: &str) -> Option<f64> {
    units::parse_number(text.trim()).filter(|v| v.is_finite())
}

/// The value column's cells that are no number: marks of a missing figure.
fn missing_tokens(s: &Survey, value: Option<usize>) -> FxHashSet<String> {
    let Some(v) = value else {
        return FxHashSet::default();
    };
    s.codes[v]
        .iter()
        .filter(|(code, _)| number(code).is_none())
        .map(|(code, _)| code.clone())
        .collect()
}

/// A key that is the same for two unit codes when they serve the same unit.
fn unit_key(code: &str) -> String {
    match Unit::of_code(code) {
        Some(u) => format!("{:?}/{}/{}", u.base, u.exponent, u.factor),
        None => format!("?{code}"),
    }
}

/// The component whose codes pick the metric: one that names indicators, or the unit column
/// when one metric would otherwise hold figures in several units (a metric has one unit).
fn metric_split(
    s: &Survey,
    roles: &Roles,
    varying: &[usize],
    served: &[usize],
    unit_key: &dyn Fn(usize) -> Option<String>,
) -> Option<usize> {
    let indicator = varying
        .iter()
        .copied()
        .find(|&c| is_indicator(&s.components[c].id) && s.distinct(c) <= MAX_METRICS);
    let keys: FxHashSet<Option<String>> = served.iter().map(|&r| unit_key(r)).collect();
    if keys.len() > 1 {
        let determines = |c: usize| {
            let mut seen: FxHashMap<&str, Option<String>> = FxHashMap::default();
            served
                .iter()
                .all(|&r| seen.entry(s.code(r, c)).or_insert_with(|| unit_key(r)) == &unit_key(r))
        };
        return indicator.filter(|&c| determines(c)).or(roles.unit);
    }
    indicator
}

fn is_indicator(id: &str) -> bool {
    let key: String = id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase();
    let words = snake(id);
    INDICATOR_NAMES.contains(&key.as_str())
        || words.split('_').any(|w| INDICATOR_WORDS.contains(&w))
}

/// Of the varying columns of a plain file (where every column reads as a dimension), the
/// fewest that identify each served row with the period (and the metric's code): the labels.
/// The others describe an observation (a note, a source) and are not labels.
fn identifying(
    s: &Survey,
    varying: &[usize],
    roles: &Roles,
    split: Option<usize>,
    served: &[usize],
) -> (Vec<usize>, Vec<usize>) {
    // The first rows decide: the search tries each column at each step, and the config check
    // that follows reads every row.
    let served = &served[..served.len().min(IDENTIFYING_ROWS)];
    let base: Vec<usize> = roles.period.into_iter().chain(split).collect();
    let dups = |cols: &[usize]| {
        let mut seen = FxHashSet::default();
        served
            .iter()
            .filter(|&&r| !seen.insert(cols.iter().map(|&c| s.rows[r][c]).collect::<Vec<_>>()))
            .count()
    };
    let code_like = |c: usize| {
        s.codes[c]
            .iter()
            .all(|(code, _)| code.len() <= 32 && !code.contains(char::is_whitespace))
    };
    let mut chosen = base.clone();
    let mut rest: Vec<usize> = varying.to_vec();
    // Codes before text, then fewer codes first.
    rest.sort_by_key(|&c| (!code_like(c), s.distinct(c)));
    while dups(&chosen) > 0 && !rest.is_empty() {
        let best = (0..rest.len())
            .min_by_key(|&i| {
                let mut with = chosen.clone();
                with.push(rest[i]);
                dups(&with)
            })
            .expect("not empty");
        chosen.push(rest.remove(best));
    }
    let labels: Vec<usize> = varying
        .iter()
        .copied()
        .filter(|c| chosen.contains(c))
        .collect();
    (labels, rest)
}

/// The period label and cadence the period codes say: `year` and annual for `2024` …
fn period(s: &Survey, period: Option<usize>) -> Option<(String, Option<Cadence>)> {
    let p = period?;
    let cadences: FxHashSet<Cadence> = s.codes[p]
        .iter()
        .filter_map(|(code, _)| Period::parse(code.trim()).map(Period::cadence))
        .collect();
    let cadence = (cadences.len() == 1).then(|| *cadences.iter().next().expect("one"));
    let label = match cadence {
        Some(Cadence::Annual) => "year",
        Some(Cadence::Semiannual) => "half",
        Some(Cadence::Quarterly) => "quarter",
        Some(Cadence::Monthly) => "month",
        Some(Cadence::Weekly) => "week",
        Some(Cadence::Daily) => "date",
        None => "period",
    };
    Some((label.to_string(), cadence))
}

/// A name for a metric or label: lower-case letters, digits and underscores, from a code or a
/// display name, at most 48 characters, cut at a word.
pub fn snake(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars().map(unaccent) {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    let mut out = out.trim_matches('_').to_string();
    if out.len() > 48 {
        let cut = out[..48].rfind('_').unwrap_or(48);
        out.truncate(cut);
    }
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "m_");
    }
    out
}

/// A Latin letter without its accent (`Índice` → `Indice`), so that names keep their words.
fn unaccent(c: char) -> char {
    const FROM: &str = "ÀÁÂÃÄÅàáâãäåÇçÈÉÊËèéêëÌÍÎÏìíîïÑñÒÓÔÕÖØòóôõöøÙÚÛÜùúûüÝýÿ";
    const TO: &str = "AAAAAAaaaaaaCcEEEEeeeeIIIIiiiiNnOOOOOOooooooUUUUuuuuYyy";
    FROM.chars()
        .position(|f| f == c)
        .and_then(|i| TO.chars().nth(i))
        .unwrap_or(c)
}

/// TOML string (quoted and escaped).
fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A TOML key, quoted unless bare.
fn key(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        s.to_string()
    } else {
        q(s)
    }
}

/// A comment of one or more lines, each wrapped at 100 characters.
fn comment(out: &mut String, text: &str) {
    for line in text.lines() {
        let mut current = String::new();
        for word in line.split(' ') {
            if !current.is_empty() && current.chars().count() + word.chars().count() > 96 {
                let _ = writeln!(out, "# {current}");
                current.clear();
            }
            if !current.is_empty() {
                current.push(' ');
            }
            current.push_str(word);
        }
        let _ = writeln!(out, "# {current}");
    }
}

fn header(out: &mut String, input: &Input, roles: &Roles) {
    let s = input.survey;
    comment(
        out,
        &format!(
            "Written by `indicator_exporter init` from {}.\nLines marked CHOOSE are guesses: check them against the publisher's documentation.\nCheck what will be served: indicator_exporter --config.check --config.file THIS_FILE",
            input.source
        ),
    );
    for note in &input.detected.notes {
        comment(out, &format!("Format: {note}."));
    }
    let mut found = format!("{} observations", s.row_count);
    let mut role = |what: &str, c: Option<usize>| {
        if let Some(c) = c {
            let _ = write!(found, "; {what} `{}`", s.components[c].id);
        }
    };
    role("period", roles.period);
    role("value", roles.value);
    role("unit", roles.unit);
    role("multiplier", roles.multiplier);
    role("status", roles.status);
    role("confidentiality", roles.conf);
    comment(out, &format!("Found {found}."));
    out.push('\n');
}

fn dataset(out: &mut String, input: &Input, period: &Option<(String, Option<Cadence>)>) {
    let name = dataset_name(input);
    let prefix = dataset_prefix(input);
    let _ = writeln!(out, "[dataset]");
    let _ = writeln!(out, "name = {}", q(&name));
    let a = &input.about;
    let lines = [
        ("title", &a.title),
        ("publisher", &a.publisher),
        ("source_url", &a.source_url),
        ("published", &a.published),
    ];
    for (key, (value, why)) in lines {
        let _ = writeln!(out, "{key} = {}        # {why}", q(value));
    }
    let _ = writeln!(out, "metric_prefix = {}", q(&prefix));
    if let Some((label, cadence)) = period {
        let _ = writeln!(out, "\n[dataset.period]");
        let _ = writeln!(out, "label = {}", q(label));
        match cadence {
            Some(c) => {
                let _ = writeln!(
                    out,
                    "cadence = {}        # every period in the file is {}",
                    q(c.name()),
                    c.form()
                );
            }
            None => comment(
                out,
                "The periods have several cadences: each metric takes its data's.",
            ),
        }
    }
    out.push('\n');
}

fn metric(out: &mut String, m: &MetricDraft) {
    let _ = writeln!(out, "[[metric]]");
    let _ = writeln!(out, "name = {}", q(&m.name));
    let _ = writeln!(out, "help = {}", q(&m.help));
    if let Some((unit, why)) = &m.unit {
        let _ = writeln!(out, "unit = {}        # {why}", q(unit));
    }
    if let Some((exp, why)) = &m.scale {
        let _ = writeln!(out, "scale = {exp}        # {why}");
    }
    out.push('\n');
}

/// One metric per code of the split component (or one metric), each with its unit.
fn metrics(
    s: &Survey,
    roles: &Roles,
    split: Option<usize>,
    served: &[usize],
    code_units: &[CodeUnit],
    input: &Input,
) -> Vec<(String, MetricDraft)> {
    let groups: Vec<(String, String)> = match split {
        Some(c) => s.codes[c]
            .iter()
            .filter(|(code, _)| !code.is_empty())
            .map(|(code, _)| {
                let title = s.name(c, code).unwrap_or(code).to_string();
                (code.clone(), title)
            })
            .collect(),
        None => vec![single_title(s, input)],
    };
    let prefix = dataset_prefix(input);
    let mut taken = FxHashSet::default();
    groups
        .into_iter()
        .map(|(code, title)| {
            let rows: Vec<usize> = served
                .iter()
                .copied()
                .filter(|&r| split.is_none_or(|c| s.code(r, c) == code))
                .collect();
            let base = if title.chars().count() <= 60 || code.is_empty() {
                snake(&title)
            } else {
                snake(&code)
            };
            // The prefix is added by the exporter: `estat_estat_…` says nothing more.
            let base = match base.strip_prefix(&prefix) {
                Some(rest) if !rest.is_empty() => snake(rest),
                _ => base,
            };
            let mut name = base.clone();
            let mut n = 2;
            while !taken.insert(name.clone()) {
                name = format!("{base}_{n}");
                n += 1;
            }
            let help = match split {
                Some(c) => format!(
                    "{title} ({} {code}), from {}.",
                    s.components[c].id, input.stem
                ),
                None => format!("{title}, from {}.", input.stem),
            };
            let (unit, scale) = metric_unit(s, roles, &rows, code_units, &title);
            let code = if split.is_some() { code } else { String::new() };
            (
                code,
                MetricDraft {
                    name,
                    help,
                    unit,
                    scale,
                },
            )
        })
        .collect()
}

/// The one metric's code and title: the one code of an indicator component, else the file's
/// name.
fn single_title(s: &Survey, input: &Input) -> (String, String) {
    (0..s.components.len())
        .find(|&c| is_indicator(&s.components[c].id) && s.distinct(c) == 1)
        .map(|c| {
            let code = &s.codes[c][0].0;
            (code.clone(), s.name(c, code).unwrap_or(code).to_string())
        })
        .unwrap_or_else(|| (String::new(), input.stem.clone()))
}

/// The dataset's name (the file name's first three words) and metric prefix (its first).
fn dataset_name(input: &Input) -> String {
    snake(&input.stem.split('_').take(3).collect::<Vec<_>>().join("_"))
}

fn dataset_prefix(input: &Input) -> String {
    format!("{}_", dataset_name(input).split('_').next().unwrap_or("ds"))
}

type UnitChoice = (Option<(String, String)>, Option<(i32, String)>);

/// A served unit code, and for one the exporter does not know, the unit its words say and
/// whether they said one.
type CodeUnit = (String, Option<(String, bool)>);

/// Every unit code of the served rows, in the order first seen, each unknown one guessed once
/// (`percent` when its figures are within 0–100, else `percent_change`).
fn code_units(s: &Survey, roles: &Roles, served: &[usize]) -> Vec<CodeUnit> {
    let Some(u) = roles.unit else {
        return Vec::new();
    };
    let mut seen = FxHashSet::default();
    let mut out = Vec::new();
    for &r in served {
        let code = s.code(r, u);
        if !seen.insert(code) {
            continue;
        }
        let guess = Unit::of_code(code).is_none().then(|| {
            let in_0_100 = roles.value.is_some_and(|v| {
                served
                    .iter()
                    .filter(|&&x| s.code(x, u) == code)
                    .filter_map(|&x| number(s.code(x, v)))
                    .all(|x| (0.0..=100.0).contains(&x))
            });
            guess_unit(code, in_0_100)
        });
        out.push((code.to_string(), guess));
    }
    out
}

/// A metric's `unit` and `scale`: none when its unit column's codes are known; a guess from
/// the unit code or the title, marked CHOOSE, when not, with the scale the code states.
fn metric_unit(
    s: &Survey,
    roles: &Roles,
    rows: &[usize],
    code_units: &[CodeUnit],
    title: &str,
) -> UnitChoice {
    if let Some(u) = roles.unit {
        let codes: FxHashSet<&str> = rows.iter().map(|&r| s.code(r, u)).collect();
        // Codes of one metric share one unit key: one stated scale.
        let scale = code_units.iter().find_map(|(c, guess)| {
            let (unit, _) = guess.as_ref().filter(|_| codes.contains(c.as_str()))?;
            let (exp, word) = units::stated_scale(c)?;
            (Unit::parse(unit)?.exponent == 0).then(|| (exp, format!("`{c}` is in {word}s")))
        });
        return (None, scale);
    }
    let values = roles
        .value
        .map(|v| rows.iter().filter_map(move |&r| number(s.code(r, v))));
    let in_0_100 = values.is_some_and(|mut v| v.all(|x| (0.0..=100.0).contains(&x)));
    let (unit, sure) = guess_unit(title, in_0_100);
    let why = if sure {
        format!("CHOOSE: read from \"{title}\"")
    } else {
        "CHOOSE: the file states no unit; `count` is a plain number".to_string()
    };
    let scale = units::stated_scale(title)
        .filter(|_| Unit::parse(&unit).is_some_and(|u| u.exponent == 0))
        .map(|(exp, word)| (exp, format!("CHOOSE: \"{title}\" says {word}s")));
    (Some((unit, why)), scale)
}

/// The unit a unit label or title speaks of (`"%"`, "Index Numbers", "Euro Million",
/// "GDP (current US$)"), and whether one was found; `count` when none.
fn guess_unit(text: &str, in_0_100: bool) -> (String, bool) {
    if let Some(u) = Unit::of_code(text) {
        if let Some(k) = units::KNOWN
            .iter()
            .find(|k| k.unit.same_as(&u) && k.name.is_some())
        {
            return (k.name.expect("filtered").to_string(), true);
        }
    }
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !(c.is_alphanumeric() || c == '$' || c == '%'))
        .filter(|w| !w.is_empty())
        .collect();
    let has = |w: &[&str]| words.iter().any(|x| w.contains(x));
    let unit = if lower.contains('%')
        || has(&["percent", "percentage", "pcnt"])
        || lower.contains("per cent")
    {
        if in_0_100 {
            "percent"
        } else {
            "percent_change"
        }
    } else if has(&["index", "índice", "indice", "indices"]) {
        "index"
    } else if lower.contains("us$") || has(&["usd"]) || lower.contains("us dollar") {
        "usd"
    } else if has(&["euro", "euros", "eur"]) {
        "eur"
    } else if has(&["yuan"]) {
        "yuan"
    } else if has(&["tonnes", "tonne", "tons", "tones"]) {
        "tonnes"
    } else if has(&["persons", "people"]) {
        "persons"
    } else {
        return ("count".into(), false);
    };
    (unit.into(), true)
}

/// What the `[[input]]` is written from.
struct InputCtx<'a> {
    s: &'a Survey,
    roles: &'a Roles,
    split: Option<usize>,
    labels: &'a [usize],
    not_labels: &'a [usize],
    single: &'a [usize],
    missing: &'a FxHashSet<String>,
    metrics: &'a [(String, MetricDraft)],
    code_units: &'a [CodeUnit],
}

fn write_input(out: &mut String, input: &Input, c: &InputCtx) {
    let s = c.s;
    let id = |i: usize| s.components[i].id.as_str();
    let _ = writeln!(out, "[[input]]");
    let _ = writeln!(out, "file = {}", q(&input.file));
    let _ = writeln!(out, "format = {}", q(input.detected.format.name()));
    if let Some(st) = &input.structure {
        let _ = writeln!(
            out,
            "structure = {}        # its DSD's roles and codelists' names",
            q(st)
        );
    }
    match c.split {
        Some(m) => {
            let _ = writeln!(
                out,
                "metric_dimension = {}        # one metric per code",
                q(id(m))
            );
            let entries: Vec<String> = c
                .metrics
                .iter()
                .map(|(code, m)| format!("{} = {}", key(code), q(&m.name)))
                .collect();
            let _ = writeln!(out, "metrics = {{ {} }}", entries.join(", "));
        }
        None => {
            let _ = writeln!(out, "metric = {}", q(&c.metrics[0].1.name));
        }
    }
    let mut fields = Vec::new();
    for (what, comp) in [
        ("period", c.roles.period),
        ("value", c.roles.value),
        ("unit", c.roles.unit),
        ("multiplier", c.roles.multiplier),
        ("status", c.roles.status),
        ("confidentiality", c.roles.conf),
    ] {
        if let Some(i) = comp {
            fields.push(format!("{what} = {}", q(id(i))));
        }
    }
    for f in fields {
        let _ = writeln!(out, "{f}");
    }
    labels(out, c);
    unit_codes(out, c);
    missing(out, c);
    if !input.detected.options.is_empty() {
        let table = toml::Value::Table(input.detected.options.clone());
        let _ = writeln!(
            out,
            "{} = {}",
            input.detected.format.options_key(),
            inline(&table)
        );
    }
}

fn labels(out: &mut String, c: &InputCtx) {
    let s = c.s;
    let mut taken = FxHashSet::default();
    let entries: Vec<String> = c
        .labels
        .iter()
        .map(|&i| {
            let base = snake(&s.components[i].id);
            let mut name = base.clone();
            let mut n = 2;
            while !taken.insert(name.clone()) {
                name = format!("{base}_{n}");
                n += 1;
            }
            format!("{} = {}", key(&name), q(&s.components[i].id))
        })
        .collect();
    let varied: Vec<String> = c
        .labels
        .iter()
        .map(|&i| format!("{} ({} codes)", s.components[i].id, s.distinct(i)))
        .collect();
    if !varied.is_empty() {
        comment(
            out,
            &format!("Labels: the components that vary: {}.", varied.join(", ")),
        );
    }
    let (empty, single): (Vec<usize>, Vec<usize>) = c
        .single
        .iter()
        .partition(|&&i| s.codes[i][0].0.trim().is_empty());
    let one: Vec<String> = single
        .iter()
        .map(|&i| {
            let code = &s.codes[i][0].0;
            match s.name(i, code) {
                Some(n) => format!("{} = {code} ({n})", s.components[i].id),
                None => format!("{} = {code}", s.components[i].id),
            }
        })
        .collect();
    if !one.is_empty() {
        comment(
            out,
            &format!(
                "Not labels, one code in the whole file: {}.",
                one.join("; ")
            ),
        );
    }
    if !empty.is_empty() {
        let ids: Vec<&str> = empty.iter().map(|&i| s.components[i].id.as_str()).collect();
        comment(
            out,
            &format!("Not labels, empty in the whole file: {}.", ids.join(", ")),
        );
    }
    for &i in c.not_labels {
        comment(out, &format!("Not a label: `{}` varies but does not identify a series (it describes observations).", s.components[i].id));
    }
    if entries.is_empty() {
        let _ = writeln!(
            out,
            "labels = {{}}        # no component varies: one series per metric and period"
        );
    } else {
        let _ = writeln!(out, "labels = {{ {} }}", entries.join(", "));
    }
}

fn unit_codes(out: &mut String, c: &InputCtx) {
    let mut entries = Vec::new();
    for (code, guess) in c.code_units {
        match guess {
            None => {
                let unit = Unit::of_code(code).expect("known");
                comment(out, &format!("Unit code `{code}` is known: {unit}."));
            }
            Some((unit, sure)) => {
                let why = if *sure {
                    "read from the code"
                } else {
                    "no unit read from it: a plain number"
                };
                comment(out, &format!("CHOOSE: unit code `{code}` is not one the exporter knows; `{unit}`: {why}."));
                entries.push(format!("{} = {}", key(code), q(unit)));
            }
        }
    }
    if !entries.is_empty() {
        let _ = writeln!(out, "unit_codes = {{ {} }}", entries.join(", "));
    }
}

fn missing(out: &mut String, c: &InputCtx) {
    let Some(v) = c.roles.value else {
        return;
    };
    let s = c.s;
    let mut marks: Vec<(&str, usize)> = s.codes[v]
        .iter()
        .filter(|(code, _)| c.missing.contains(code))
        .map(|(code, n)| (code.as_str(), *n))
        .collect();
    marks.sort();
    if marks.is_empty() {
        return;
    }
    let listed: Vec<String> = marks.iter().map(|(m, n)| format!("{m:?} ×{n}")).collect();
    comment(
        out,
        &format!(
            "Cells without a figure: {} (counted as missing, by reason, with the status).",
            listed.join(", ")
        ),
    );
    let extra: Vec<String> = marks
        .iter()
        .filter(|(m, _)| !DEFAULT_MISSING.contains(&m.trim()))
        .map(|(m, _)| q(m.trim()))
        .collect();
    if !extra.is_empty() {
        let _ = writeln!(
            out,
            "missing = [{}]        # besides the defaults",
            extra.join(", ")
        );
    }
}

/// A TOML value written inline (`{ a = 1, b = { c = "d" } }`).
fn inline(v: &toml::Value) -> String {
    match v {
        toml::Value::Table(t) => {
            let parts: Vec<String> = t
                .iter()
                .map(|(k, v)| format!("{} = {}", key(k), inline(v)))
                .collect();
            format!("{{ {} }}", parts.join(", "))
        }
        other => other.to_string(),
    }
}

/// The options table as the reader takes it.
pub fn options(format: Format, options: &Table) -> Result<crate::source::Options, String> {
    use crate::source::Options;
    let v = toml::Value::Table(options.clone());
    let e = |e: toml::de::Error| e.to_string();
    Ok(match format {
        Format::Csv => Options::Csv(v.try_into().map_err(e)?),
        Format::Json => Options::Json(v.try_into().map_err(e)?),
        Format::SdmxCsv => Options::SdmxCsv(v.try_into().map_err(e)?),
        Format::SdmxJson => Options::SdmxJson(v.try_into().map_err(e)?),
        Format::JsonStat => Options::JsonStat(v.try_into().map_err(e)?),
        Format::PcAxis => Options::PcAxis(v.try_into().map_err(e)?),
        Format::Excel => Options::Excel(v.try_into().map_err(e)?),
        Format::SdmxMl => Options::SdmxMl(v.try_into().map_err(e)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_from_codes_and_titles() {
        assert_eq!(snake("GDP (current US$)"), "gdp_current_us");
        assert_eq!(snake("Indicator Code"), "indicator_code");
        assert_eq!(snake("2015"), "m_2015");
        assert_eq!(snake("Índice y tasas"), "indice_y_tasas");
    }

    #[test]
    fn units_are_read_from_labels_and_titles() {
        assert_eq!(guess_unit("%", true), ("percent".into(), true));
        assert_eq!(guess_unit("%", false), ("percent_change".into(), true));
        assert_eq!(guess_unit("Index Numbers", false), ("index".into(), true));
        assert_eq!(guess_unit("Euro Million", false), ("eur".into(), true));
        assert_eq!(guess_unit("GDP (current US$)", false), ("usd".into(), true));
        assert_eq!(guess_unit("000 Hours", false), ("count".into(), false));
        assert_eq!(guess_unit("TONNES", false), ("tonnes".into(), true));
    }
}
