//! The one reader of the exposition formats the tests use: Prometheus text 0.0.4 and
//! OpenMetrics 1.0, as bodies of `/metrics` and as export files.
//!
//! [`parse`] reads any body the exporter writes (timestamps too, as export files have) into
//! families and samples, failing on what is malformed. [`check`] reads a served body as the
//! specifications write the format and refuses what Prometheus would misread: it is written
//! here rather than taken from a crate because the crates at hand are lenient in what matters
//! (escapes, interleaved or repeated families, names that clash through suffixes) or wrong
//! about info metrics; these are exactly the rules the exporter must keep.

use std::collections::{BTreeMap, HashMap, HashSet};

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    /// Labels in written order, values unescaped.
    pub labels: Vec<(String, String)>,
    /// Name and labels exactly as written.
    pub series: String,
    /// The value as written (`0.54`, `+Inf`, `NaN`).
    pub text: String,
    pub value: f64,
    /// The timestamp as written (milliseconds in the text format, seconds in OpenMetrics).
    pub timestamp: Option<i64>,
    /// The family of the last `# HELP`, `# TYPE` or `# UNIT` line before it.
    pub family: Option<String>,
}

impl Sample {
    /// The value of label `name`.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The labels by name.
    pub fn label_map(&self) -> BTreeMap<String, String> {
        self.labels.iter().cloned().collect()
    }

    /// Whether the labels are exactly `want`, in any order.
    pub fn has_labels(&self, want: &[(&str, &str)]) -> bool {
        self.labels.len() == want.len() && want.iter().all(|(k, v)| self.label(k) == Some(*v))
    }

    /// Name and labels as Prometheus stores the series: a label with an empty value is no
    /// label at all.
    pub fn key(&self) -> (String, BTreeMap<String, String>) {
        let labels = self
            .labels
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .cloned()
            .collect();
        (self.name.clone(), labels)
    }
}

/// A family's metadata, as its `# HELP`, `# TYPE` and `# UNIT` lines say.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Family {
    pub name: String,
    pub kind: Option<String>,
    /// Unescaped.
    pub help: Option<String>,
    pub unit: Option<String>,
}

/// A parsed body.
#[derive(Debug, Clone, Default)]
pub struct Exposition {
    /// In written order.
    pub families: Vec<Family>,
    pub samples: Vec<Sample>,
    /// Whether it ended with `# EOF` (OpenMetrics).
    pub eof: bool,
}

impl Exposition {
    /// The sample named `name` with exactly the labels `labels`, in any order.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<&Sample> {
        self.samples
            .iter()
            .find(|s| s.name == name && s.has_labels(labels))
    }

    /// The value of the sample named `name` with exactly the labels `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.get(name, labels).map(|s| s.value)
    }

    /// The sample whose name and labels are written exactly `series`.
    pub fn series(&self, series: &str) -> Option<&Sample> {
        self.samples.iter().find(|s| s.series == series)
    }

    pub fn family(&self, name: &str) -> Option<&Family> {
        self.families.iter().find(|f| f.name == name)
    }

    /// The samples by name.
    pub fn by_name(&self) -> HashMap<String, Vec<Sample>> {
        let mut out: HashMap<String, Vec<Sample>> = HashMap::new();
        for s in &self.samples {
            out.entry(s.name.clone()).or_default().push(s.clone());
        }
        out
    }
}

/// Reads `body` (text or OpenMetrics, timestamps allowed); panics naming the line of anything
/// malformed.
#[track_caller]
pub fn parse(body: &str) -> Exposition {
    read(body, Mode::Lenient).unwrap_or_else(|e| panic!("unreadable exposition: {e}"))
}

/// Reads a served body strictly, as OpenMetrics 1.0 (`om`) or text 0.0.4: the escapes of
/// each place, families whole and in one piece, names that do not clash through the type
/// suffixes, no series twice, info samples of 1, `# EOF` last. The first problem with its
/// line, otherwise the body read.
pub fn check(body: &str, om: bool) -> Result<Exposition, String> {
    read(body, if om { Mode::OpenMetrics } else { Mode::Text })
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Anything the exporter writes: either format, timestamps, no rules across lines.
    Lenient,
    Text,
    OpenMetrics,
}

/// Where an escaped string is, which decides its escapes.
#[derive(Clone, Copy, PartialEq)]
enum Escaped {
    /// A label value, up to its closing quote: `\\`, `\n`, `\"`.
    Label,
    /// OpenMetrics HELP, to the end of the line: the same escapes, and no raw quote.
    OmHelp,
    /// Text-format HELP: only `\\` and `\n`.
    TextHelp,
    /// HELP of either format.
    AnyHelp,
}

/// Reads an escaped string; with the bytes used (through the closing quote of a label value).
fn unescape(s: &str, mode: Escaped) -> Result<(String, usize), String> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' if mode == Escaped::Label => return Ok((out, i + 1)),
            '"' if mode == Escaped::OmHelp => return Err("unescaped quote".into()),
            '\n' => return Err("raw newline".into()),
            '\\' => match chars.next() {
                Some((_, '\\')) => out.push('\\'),
                Some((_, 'n')) => out.push('\n'),
                Some((_, '"')) if mode != Escaped::TextHelp => out.push('"'),
                other => return Err(format!("invalid escape \\{other:?}")),
            },
            c => out.push(c),
        }
    }
    if mode == Escaped::Label {
        Err("unterminated label value".into())
    } else {
        Ok((out, s.len()))
    }
}

fn is_name(s: &str, colon: bool) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || (colon && c == ':'))
        && c.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':'))
        && !s.starts_with("__")
}

/// A value as the formats write it: a decimal or exponent number, `+Inf`, `-Inf` or `NaN`.
fn value_of(v: &str) -> Option<f64> {
    match v {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ if !v.is_empty()
            && v.bytes()
                .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b)) =>
        {
            v.parse::<f64>().ok().filter(|f| f.is_finite())
        }
        _ => None,
    }
}

fn read(body: &str, mode: Mode) -> Result<Exposition, String> {
    const SUFFIXES: &[&str] = &[
        "_total", "_created", "_count", "_sum", "_bucket", "_gcount", "_gsum", "_info",
    ];
    let strict = mode != Mode::Lenient;
    let om = mode == Mode::OpenMetrics;
    let mut out = Exposition::default();
    // Family name -> index in out.families; families closed, to refuse one seen again later.
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut closed: HashSet<String> = HashSet::new();
    let mut current: Option<String> = None;
    let mut has_samples = false;
    let mut seen_meta: HashSet<(String, &str)> = HashSet::new();
    let mut series: HashSet<(String, Vec<(String, String)>)> = HashSet::new();
    if om && !body.ends_with("# EOF\n") {
        return Err("OpenMetrics body does not end with `# EOF`".into());
    }
    if strict && !body.is_empty() && !body.ends_with('\n') {
        return Err("body does not end with a newline".into());
    }
    for (n, line) in body.lines().enumerate() {
        let at = |m: String| format!("line {}: {m}: {line:?}", n + 1);
        if out.eof {
            return Err(at("content after `# EOF`".into()));
        }
        if line == "# EOF" && mode != Mode::Text {
            out.eof = true;
            continue;
        }
        if !strict && line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('#') {
            let Some(rest) = rest.strip_prefix(' ') else {
                if strict {
                    return Err(at("comment without a space".into()));
                }
                continue;
            };
            let (kind, rest) = rest.split_once(' ').unwrap_or((rest, ""));
            let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
            let kind: &'static str = match kind {
                "HELP" => "HELP",
                "TYPE" => "TYPE",
                "UNIT" if mode != Mode::Text => "UNIT",
                _ if om => return Err(at("unknown metadata".into())),
                // The text format allows other comments.
                _ => continue,
            };
            if !is_name(name, false) {
                return Err(at(format!("invalid family name `{name}`")));
            }
            if strict {
                start_family(name, strict, &mut current, &mut has_samples, &mut closed)
                    .map_err(at)?;
                if has_samples {
                    return Err(at(format!("{kind} after samples")));
                }
                if !seen_meta.insert((name.to_string(), kind)) {
                    return Err(at(format!("second {kind} for `{name}`")));
                }
            } else {
                start_family(name, strict, &mut current, &mut has_samples, &mut closed)
                    .map_err(at)?;
            }
            let family = *index.entry(name.to_string()).or_insert_with(|| {
                out.families.push(Family {
                    name: name.to_string(),
                    ..Family::default()
                });
                out.families.len() - 1
            });
            match kind {
                "HELP" => {
                    let escaped = match mode {
                        Mode::OpenMetrics => Escaped::OmHelp,
                        Mode::Text => Escaped::TextHelp,
                        Mode::Lenient => Escaped::AnyHelp,
                    };
                    let (help, _) = unescape(text, escaped).map_err(at)?;
                    out.families[family].help = Some(help);
                }
                "TYPE" => {
                    if strict {
                        match (text, om) {
                            ("gauge" | "counter", _) | ("info", true) => {}
                            _ => return Err(at(format!("unexpected type `{text}`"))),
                        }
                    }
                    if om {
                        if let Some(s) = SUFFIXES.iter().find(|s| name.ends_with(*s)) {
                            return Err(at(format!("family name ends in `{s}`")));
                        }
                        // A family with a TYPE or a UNIT.
                        let typed = |f: &str| {
                            index.get(f).is_some_and(|&i| {
                                out.families[i].kind.is_some() || out.families[i].unit.is_some()
                            })
                        };
                        if let Some(s) = SUFFIXES.iter().find(|s| typed(&format!("{name}{s}"))) {
                            return Err(at(format!("family `{name}{s}` clashes with `{name}`")));
                        }
                        if let Some(base) = SUFFIXES.iter().find_map(|s| name.strip_suffix(s)) {
                            if typed(base) {
                                return Err(at(format!("family `{name}` clashes with `{base}`")));
                            }
                        }
                    }
                    out.families[family].kind = Some(text.to_string());
                }
                _ => {
                    if strict && !name.ends_with(&format!("_{text}")) {
                        return Err(at(format!("unit `{text}` is not the end of `{name}`")));
                    }
                    out.families[family].unit = Some(text.to_string());
                }
            }
            continue;
        }
        // A sample: name, optional labels, value, and outside the strict modes a timestamp.
        let name_end = line
            .find(['{', ' '])
            .ok_or_else(|| at("sample without a value".into()))?;
        let name = &line[..name_end];
        if !is_name(name, true) {
            return Err(at(format!("invalid metric name `{name}`")));
        }
        let mut rest = &line[name_end..];
        let mut labels: Vec<(String, String)> = Vec::new();
        if let Some(r) = rest.strip_prefix('{') {
            rest = r;
            loop {
                if let Some(r) = rest.strip_prefix('}') {
                    rest = r;
                    break;
                }
                if !labels.is_empty() {
                    rest = rest
                        .strip_prefix(',')
                        .ok_or_else(|| at("labels not separated by `,`".into()))?;
                    // A trailing comma.
                    if let Some(r) = rest.strip_prefix('}').filter(|_| !strict) {
                        rest = r;
                        break;
                    }
                }
                let (label, r) = rest
                    .split_once("=\"")
                    .ok_or_else(|| at("label without `=\"`".into()))?;
                if !is_name(label, false) {
                    return Err(at(format!("invalid label name `{label}`")));
                }
                let (value, used) = unescape(r, Escaped::Label).map_err(at)?;
                if labels.iter().any(|(l, _)| l == label) {
                    return Err(at(format!("label `{label}` twice")));
                }
                labels.push((label.to_string(), value));
                rest = &r[used..];
            }
        }
        let series_text = &line[..line.len() - rest.len()];
        let rest = rest
            .strip_prefix(' ')
            .ok_or_else(|| at("no space before the value".into()))?;
        let (text, timestamp) = match rest.split_once(' ') {
            Some((v, t)) if !strict => (v, Some(t)),
            _ => (rest, None),
        };
        let value = value_of(text).ok_or_else(|| at(format!("invalid value `{text}`")))?;
        let timestamp = timestamp
            .map(|t| t.parse::<i64>())
            .transpose()
            .map_err(|e| at(format!("invalid timestamp: {e}")))?;
        if strict {
            // Which family the sample belongs to, by its type's suffixes.
            let kind = current
                .as_deref()
                .and_then(|c| index.get(c))
                .and_then(|&i| out.families[i].kind.clone());
            let family = match (current.as_deref(), kind) {
                (Some(c), Some(t)) => {
                    let ok = match (t.as_str(), om) {
                        ("gauge", _) | ("counter", false) => name == c,
                        ("counter", true) => {
                            name == format!("{c}_total") || name == format!("{c}_created")
                        }
                        ("info", _) => name == format!("{c}_info"),
                        _ => false,
                    };
                    if !ok {
                        return Err(at(format!("sample `{name}` is not of family `{c}` ({t})")));
                    }
                    if t == "info" && text != "1" {
                        return Err(at("info sample other than 1".into()));
                    }
                    c.to_string()
                }
                _ if om => return Err(at("sample before its family's TYPE".into())),
                _ => name.to_string(),
            };
            has_samples = true;
            let mut key_labels = labels.clone();
            key_labels.sort();
            if !series.insert((name.to_string(), key_labels)) {
                return Err(at(format!("duplicate series in family `{family}`")));
            }
        }
        out.samples.push(Sample {
            name: name.to_string(),
            labels,
            series: series_text.to_string(),
            text: text.to_string(),
            value,
            timestamp,
            family: current.clone(),
        });
    }
    if om && !out.eof {
        return Err("no `# EOF`".into());
    }
    Ok(out)
}

/// Makes `name` the current family; in the strict modes, refuses one seen before others.
fn start_family(
    name: &str,
    strict: bool,
    current: &mut Option<String>,
    has_samples: &mut bool,
    closed: &mut HashSet<String>,
) -> Result<(), String> {
    if current.as_deref() == Some(name) {
        return Ok(());
    }
    if let Some(c) = current.take() {
        closed.insert(c);
    }
    if strict && closed.contains(name) {
        return Err(format!(
            "family `{name}` appears again after other families"
        ));
    }
    *current = Some(name.to_string());
    *has_samples = false;
    Ok(())
}
