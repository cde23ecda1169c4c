//! Readers, one per publisher format: each turns a data file's text into a stream of
//! observations over named components (dimensions, the period, the value, attributes), with
//! the origin of every field. Readers know nothing about metrics, units or validation: the one
//! mapping and validation path in [`crate::dataset`] consumes what every reader yields, so a
//! check and its message are the same whatever the format.

pub mod csv;
pub mod fetch;
pub mod json;
pub mod json_tree;
pub mod jsonstat;
pub mod pcaxis;
pub mod pxweb;
pub mod records;
pub mod sdmx_csv;
pub mod sdmx_json;
pub mod sdmx_ml;
pub mod sdmx_query;
pub mod sdmx_structure;
pub mod workbook;

use std::fmt;

/// The formats an `[[input]]` may name; each variant has one reader. Adding a format is a
/// variant here, its name, its options in the config and its reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
    SdmxCsv,
    SdmxJson,
    JsonStat,
    PcAxis,
    /// .xlsx, .xlsm, .xls or .ods, told apart by content.
    Excel,
    SdmxMl,
}

impl Format {
    /// Every format, in the order the error message lists them.
    pub const ALL: [Format; 8] = [
        Format::Csv,
        Format::Json,
        Format::SdmxCsv,
        Format::SdmxJson,
        Format::JsonStat,
        Format::PcAxis,
        Format::Excel,
        Format::SdmxMl,
    ];

    /// The name as written in configs (`format = "sdmx-csv"`).
    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Json => "json",
            Format::SdmxCsv => "sdmx-csv",
            Format::SdmxJson => "sdmx-json",
            Format::JsonStat => "json-stat",
            Format::PcAxis => "pc-axis",
            Format::Excel => "excel",
            Format::SdmxMl => "sdmx-ml",
        }
    }

    /// The format of this name, exactly as written (no case folding: configs are checked).
    pub fn parse(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Every name, comma-separated, for messages.
    pub fn names() -> String {
        Format::ALL.map(Format::name).join(", ")
    }

    /// The key of this format's options table under `[input]` (`sdmx_csv`).
    pub fn options_key(self) -> String {
        self.name().replace('-', "_")
    }
}

impl Format {
    /// Whether the format is UTF-8 text. Others decode their bytes themselves: a binary
    /// workbook, a file that names its own code page.
    pub fn is_text(self) -> bool {
        // A PC-Axis file names its code page (CODEPAGE), Windows-1252 when it does not.
        // A workbook is binary.
        !matches!(self, Format::PcAxis | Format::Excel)
    }

    /// A file's bytes as this format's reader takes them: text checked (UTF-8, no NUL, no
    /// UTF-16), or the bytes as they are.
    pub fn content(self, bytes: &[u8]) -> Result<Content<'_>, String> {
        if self.is_text() {
            crate::read::as_text(bytes).map(Content::Text)
        } else {
            Ok(Content::Bytes(bytes))
        }
    }
}

/// A file's contents as its reader takes them ([`Format::content`]).
#[derive(Debug, Clone, Copy)]
pub enum Content<'a> {
    Text(&'a str),
    Bytes(&'a [u8]),
}

impl<'a> Content<'a> {
    pub fn bytes(self) -> &'a [u8] {
        match self {
            Content::Text(t) => t.as_bytes(),
            Content::Bytes(b) => b,
        }
    }
}

/// A format's reader options, as an `[[input]]` gives them (its defaults when absent).
#[derive(Debug, Clone)]
pub enum Options {
    Csv(csv::CsvOptions),
    Json(json::JsonOptions),
    SdmxCsv(sdmx_csv::SdmxCsvOptions),
    SdmxJson(sdmx_json::SdmxJsonOptions),
    JsonStat(jsonstat::JsonStatOptions),
    PcAxis(pcaxis::PcAxisOptions),
    Excel(workbook::ExcelOptions),
    SdmxMl(sdmx_ml::SdmxMlOptions),
}

impl Options {
    /// Reads `content` (as [`Format::content`] made it for this format) with the reader these
    /// options are for, into `sink`.
    pub fn read(&self, content: Content<'_>, sink: &mut dyn Sink) {
        let text = match (self, content) {
            (Options::PcAxis(o), content) => return pcaxis::read(content.bytes(), o, sink),
            (Options::Excel(o), content) => return workbook::read(content.bytes(), o, sink),
            (_, Content::Text(text)) => text,
            (_, Content::Bytes(_)) => {
                // Format::content gives text formats text.
                sink.error(Origin::File, "expected text, got bytes".into());
                return;
            }
        };
        match self {
            Options::Csv(o) => csv::read(text, o, sink),
            Options::Json(o) => json::read(text, o, sink),
            Options::SdmxCsv(o) => sdmx_csv::read(text, o, sink),
            Options::SdmxJson(o) => sdmx_json::read(text, o, sink),
            Options::JsonStat(o) => jsonstat::read(text, o, sink),
            Options::PcAxis(_) | Options::Excel(_) => {} // read above, from their bytes
            Options::SdmxMl(o) => sdmx_ml::read(text, o, sink),
        }
    }
}

impl Options {
    /// [`Options::read`] with an SDMX structure message's help: its DSD's roles under the
    /// options' own (SDMX-ML, SDMX-CSV; SDMX-JSON carries its structure), and its codelists'
    /// display names for every component it knows.
    pub fn read_with_structure(
        &self,
        content: Content<'_>,
        structure: &sdmx_structure::Structure,
        sink: &mut dyn Sink,
    ) {
        let mut named = sdmx_structure::Named {
            inner: sink,
            structure,
        };
        match (self, content) {
            (Options::SdmxMl(o), Content::Text(text)) => {
                let mut roles = structure.roles();
                roles.apply(o);
                sdmx_ml::read_with(text, &roles, &mut named);
            }
            (Options::SdmxCsv(o), Content::Text(text)) => {
                sdmx_csv::read(text, &structure.sdmx_csv_options(o), &mut named);
            }
            _ => self.read(content, &mut named),
        }
    }
}

/// What a component of the file is, as far as the format says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Identifies a series (SDMX dimension, JSON-stat dimension, a CSV column by default).
    Dimension,
    /// The period of the observation (SDMX `TIME_PERIOD`, a JSON-stat time dimension).
    Time,
    /// The observed value (SDMX `OBS_VALUE`, JSON-stat `value`).
    Measure,
    /// Describes an observation without identifying it (status, unit, multiplier, note).
    Attribute,
}

/// One column of what a reader yields: its id as the file spells it, and its role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    pub id: String,
    pub role: Role,
}

impl Component {
    pub fn new(id: impl Into<String>, role: Role) -> Self {
        Component {
            id: id.into(),
            role,
        }
    }
}

/// Where a field or a problem is in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The file as a whole.
    File,
    /// 1-based line and column (in characters).
    At { line: u32, col: u32 },
    /// A JSON path into the document, e.g. `$.dataSets[0].series["0:1"].observations["3"]`.
    Path(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File => Ok(()),
            Origin::At { line, col } => write!(f, "{line}:{col}"),
            Origin::Path(p) => f.write_str(p),
        }
    }
}

/// The index to pass to a row's `origin` for where the row itself starts: cheap, so it can be
/// asked for every row (a CSV row's line, a JSON observation's path).
pub const ROW: usize = usize::MAX;

/// What a reader feeds. The mapping stage implements it; [`Collect`] records it for tests.
pub trait Sink {
    /// The components, once, before any row; `origin(i)` locates component `i`'s header (a
    /// header cell, a JSON path). Returns false when the caller cannot use them (it has
    /// reported why); the reader then stops.
    fn components(&mut self, components: &[Component], origin: &dyn Fn(usize) -> Origin) -> bool;

    /// One observation. `fields[i]` is the value of component `i` as written: a code for a
    /// dimension, the period as written, the value as written (a JSON number in its shortest
    /// decimal form), "" when the file gives nothing. `origin(i)` locates field `i`; it is
    /// called only when there is a problem to report, so it may be slow. `origin(ROW)` locates
    /// the row and must be cheap: it is asked for every row.
    fn row(&mut self, fields: &[&str], origin: &dyn Fn(usize) -> Origin);

    /// An SDMX `ACTION=D` row: delete the observation with these fields' dimensions and
    /// period, read earlier.
    fn delete(&mut self, fields: &[&str], origin: &dyn Fn(usize) -> Origin) {
        let _ = (fields, origin);
    }

    /// The display name of `code` of component `component`, in `lang` (a language code such
    /// as `en`, or "" when the file does not say).
    fn name(&mut self, component: usize, code: &str, lang: &str, name: &str);

    /// [`Sink::name`] from a reader that can say where the name is (`origin` is called only
    /// when there is a problem to report), so a bad name is reported at its cell.
    fn name_at(
        &mut self,
        component: usize,
        code: &str,
        lang: &str,
        name: &str,
        origin: &dyn Fn() -> Origin,
    ) {
        let _ = origin;
        self.name(component, code, lang, name);
    }

    /// The display name of component `component` itself, in `lang` (an SDMX concept's name).
    fn component_name(&mut self, component: usize, lang: &str, name: &str) {
        let _ = (component, lang, name);
    }

    /// A problem with the file; the reader goes on where it can, so every problem is reported.
    /// `message` says what is wrong and what was expected: `row has 3 fields, expected 5 like
    /// the header`.
    fn error(&mut self, origin: Origin, message: String);
}

/// A [`Sink`] that keeps everything, for tests of readers.
#[cfg(test)]
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Collect {
    pub components: Vec<Component>,
    /// Origin of each component's header.
    pub headers: Vec<Origin>,
    pub rows: Vec<Vec<String>>,
    /// Origin of each row's fields, in `rows` order.
    pub origins: Vec<Vec<Origin>>,
    pub deleted: Vec<Vec<String>>,
    /// (component, code, lang, name).
    pub names: Vec<(usize, String, String, String)>,
    /// (component, lang, name) of components themselves.
    pub component_names: Vec<(usize, String, String)>,
    pub errors: Vec<(Origin, String)>,
    /// Refuse the components, as a caller that cannot use them does.
    pub refuse: bool,
}

#[cfg(test)]
impl Collect {
    /// Each component's id and role.
    pub fn ids(&self) -> Vec<(&str, Role)> {
        self.components
            .iter()
            .map(|c| (c.id.as_str(), c.role))
            .collect()
    }

    /// The rows' fields, borrowed.
    pub fn row_fields(&self) -> Vec<Vec<&str>> {
        self.rows
            .iter()
            .map(|r| r.iter().map(String::as_str).collect())
            .collect()
    }

    /// Index of the component with this id.
    pub fn col(&self, id: &str) -> usize {
        self.components
            .iter()
            .position(|c| c.id == id)
            .unwrap_or_else(|| panic!("no component `{id}` in {:?}", self.components))
    }

    /// The field of component `id` of every row.
    pub fn column(&self, id: &str) -> Vec<&str> {
        let c = self.col(id);
        self.rows.iter().map(|r| r[c].as_str()).collect()
    }

    /// Whether nothing but components was received (what a refusing sink should see).
    pub fn received_nothing(&self) -> bool {
        self.rows.is_empty()
            && self.deleted.is_empty()
            && self.names.is_empty()
            && self.errors.is_empty()
    }

    /// Errors as `origin: message` lines.
    pub fn error_lines(&self) -> Vec<String> {
        self.errors
            .iter()
            .map(|(o, m)| match o {
                Origin::File => m.clone(),
                o => format!("{o}: {m}"),
            })
            .collect()
    }
}

#[cfg(test)]
impl Sink for Collect {
    fn components(&mut self, components: &[Component], origin: &dyn Fn(usize) -> Origin) -> bool {
        self.components = components.to_vec();
        self.headers = (0..components.len()).map(origin).collect();
        !self.refuse
    }

    fn row(&mut self, fields: &[&str], origin: &dyn Fn(usize) -> Origin) {
        self.rows
            .push(fields.iter().map(|s| s.to_string()).collect());
        self.origins.push((0..fields.len()).map(origin).collect());
    }

    fn delete(&mut self, fields: &[&str], _origin: &dyn Fn(usize) -> Origin) {
        self.deleted
            .push(fields.iter().map(|s| s.to_string()).collect());
    }

    fn name(&mut self, component: usize, code: &str, lang: &str, name: &str) {
        self.names
            .push((component, code.into(), lang.into(), name.into()));
    }

    fn component_name(&mut self, component: usize, lang: &str, name: &str) {
        self.component_names
            .push((component, lang.into(), name.into()));
    }

    fn error(&mut self, origin: Origin, message: String) {
        self.errors.push((origin, message));
    }
}

/// Strips a UTF-8 byte order mark: publishers' CSV and JSON files often start with one.
pub fn strip_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

/// A serde_json syntax error as origin and message, the same for every JSON format: its line,
/// its column in characters (serde_json counts bytes), and what was expected.
pub fn json_syntax_error(text: &str, e: &serde_json::Error) -> (Origin, String) {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let what = full.strip_suffix(&suffix).unwrap_or(&full);
    let message = if e.is_eof() {
        format!("truncated JSON: {what}, expected a complete document")
    } else {
        format!("invalid JSON: {what}, expected well-formed JSON")
    };
    let line = e.line().max(1);
    let byte_col = e.column();
    let col = text
        .split('\n')
        .nth(line - 1)
        .map(|l| l.char_indices().take_while(|(b, _)| *b < byte_col).count())
        .unwrap_or(byte_col);
    let origin = Origin::At {
        line: u32::try_from(line).unwrap_or(u32::MAX),
        col: u32::try_from(col.max(1)).unwrap_or(u32::MAX),
    };
    (origin, message)
}

/// What kind of JSON value `v` is, for messages: "a string", "an object" …
pub fn json_kind(v: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
