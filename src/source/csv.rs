//! Plain CSV as publishers export it (World Bank bulk files, UNICEF's csv export, national
//! offices): optional preamble lines, a header, then either one row per observation (`long`,
//! every column a dimension) or one column per period (`wide`, yielding the other columns plus
//! a synthesized `period` and `value`). Columns named in `names` give display names of codes.

use std::collections::BTreeMap;

use rustc_hash::FxHashSet;

use super::records::{self, Record};
use super::{strip_bom, Component, Origin, Role, Sink, ROW};
use crate::dataset::calendar::{Period, PERIOD_FORMS};

/// How the rows of a CSV file hold observations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// One row per observation; every column is a dimension.
    #[default]
    Long,
    /// One column per period (header cells such as `1960`, `2024-Q1`); each cell of such a
    /// column is one observation.
    Wide,
}

/// Options of the plain CSV reader (`[input.csv]`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CsvOptions {
    /// The field separator, one ASCII character: `,` (the default), `;`, `\t`, ...
    pub delimiter: char,
    /// How many lines before the header to skip: a publisher's preamble (World Bank bulk files
    /// have 4: `Data Source`, an empty line, `Last Updated Date`, an empty line).
    pub skip_lines: usize,
    /// `long` (the default): one row per observation, every column a dimension. `wide`: every
    /// header cell that reads as a period is a period column; the other columns are dimensions
    /// and each period cell becomes an observation with the components `period` and `value`.
    pub layout: Layout,
    /// Code column -> name column, e.g. `{ "Country Code" = "Country Name" }`: the name column
    /// is not a component, it gives the display name of each code of the code column.
    pub names: BTreeMap<String, String>,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            delimiter: ',',
            skip_lines: 0,
            layout: Layout::Long,
            names: BTreeMap::new(),
        }
    }
}

/// What a header cell is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A dimension: component index.
    Dimension(usize),
    /// An empty header: its cells must be empty too.
    Unnamed,
    /// The name column of a `names` entry, or a dropped duplicate.
    Skipped,
    /// A period column of the wide layout.
    Period,
}

/// A `names` entry resolved against the header.
struct NameColumn {
    code: usize,
    name: usize,
    component: usize,
    seen: FxHashSet<String>,
}

/// Reads plain CSV `text` into `sink`.
pub fn read(text: &str, options: &CsvOptions, sink: &mut dyn Sink) {
    let text = strip_bom(text);
    let delim = match delimiter_byte(options.delimiter) {
        Ok(d) => d,
        Err(message) => return sink.error(Origin::File, message),
    };
    let base = preamble_end(text, options.skip_lines);
    let body = &text[base..];
    let locate = Locator {
        text,
        delim,
        base,
        first_line: options.skip_lines as u64,
    };

    let mut rdr = records::reader(delim, body.as_bytes());
    let mut record = csv::StringRecord::new();
    match rdr.read_record(&mut record) {
        Ok(true) => {}
        Ok(false) => {
            let message = if options.skip_lines == 0 {
                "empty file, expected a header line".to_string()
            } else {
                format!(
                    "nothing after the {} preamble lines, expected a header line",
                    options.skip_lines
                )
            };
            return sink.error(Origin::File, message);
        }
        Err(e) => return sink.error(Origin::File, unreadable(&e)),
    }
    let header_at = Start::of(&record);
    let header: Vec<String> = record.iter().map(str::to_string).collect();
    let Some(columns) = Columns::resolve(header, header_at, options, &locate, sink) else {
        return;
    };
    let components = columns.components(options.layout);
    let header_origin = |i: usize| match columns.dims.get(i) {
        Some(&j) => locate.field(header_at, j),
        // The wide layout's period and value come from the period columns' headers.
        None => locate.field(header_at, columns.periods.first().map_or(0, |p| p.0)),
    };
    if !sink.components(&components, &header_origin) {
        return;
    }
    let mut rows = Rows::new(&columns, options.layout, &locate, header_at);
    if let Some(e) = records::for_each(&mut rdr, body, delim, &mut |r| rows.record(r, sink)) {
        sink.error(Origin::File, unreadable(&e));
    }
}

/// The byte offset of the line after the `skip_lines` preamble lines.
fn preamble_end(text: &str, skip_lines: usize) -> usize {
    let mut base = 0;
    for _ in 0..skip_lines {
        match text[base..].find('\n') {
            Some(i) => base += i + 1,
            None => base = text.len(),
        }
    }
    base
}

/// What the header's columns are for.
struct Columns {
    header: Vec<String>,
    kinds: Vec<Kind>,
    /// The column of each dimension component.
    dims: Vec<usize>,
    /// The period columns of the wide layout, with their period as written.
    periods: Vec<(usize, String)>,
    /// (code column, name column) of each `names` entry found in the header.
    code_columns: Vec<(usize, usize)>,
}

impl Columns {
    /// Classifies the header's columns, reporting its problems; None when nothing can be read.
    fn resolve(
        header: Vec<String>,
        header_at: Start,
        options: &CsvOptions,
        locate: &Locator,
        sink: &mut dyn Sink,
    ) -> Option<Columns> {
        let header_line = match locate.field(header_at, 0) {
            Origin::At { line, .. } => line,
            _ => 1,
        };
        let (code_columns, name_cols) = name_columns(&header, options, header_line, sink);
        let wide = options.layout == Layout::Wide;
        let mut kinds = vec![Kind::Skipped; header.len()];
        let mut dims: Vec<usize> = Vec::new();
        let mut periods: Vec<(usize, String)> = Vec::new();
        for (j, h) in header.iter().enumerate() {
            if h.trim().is_empty() {
                kinds[j] = Kind::Unnamed;
                continue;
            }
            if let Some(k) = header[..j].iter().position(|e| e == h) {
                sink.error(
                    locate.field(header_at, j),
                    format!(
                        "duplicate column `{h}` (also column {}), expected unique column names",
                        k + 1
                    ),
                );
                continue;
            }
            if name_cols.contains(&j) {
                continue;
            }
            let is_code = code_columns.iter().any(|&(c, _)| c == j);
            if wide && !is_code && Period::parse(h.trim()).is_some() {
                kinds[j] = Kind::Period;
                periods.push((j, h.trim().to_string()));
                continue;
            }
            if wide && (h == "period" || h == "value") {
                sink.error(
                    locate.field(header_at, j),
                    format!(
                        "column `{h}` has the name of a component the wide layout adds, expected other names than `period` and `value`"
                    ),
                );
                continue;
            }
            kinds[j] = Kind::Dimension(dims.len());
            dims.push(j);
        }
        if wide && periods.is_empty() {
            sink.error(
                Origin::At { line: header_line, col: 1 },
                format!(
                    "no period column in the header, expected columns named like periods ({PERIOD_FORMS}) for the wide layout"
                ),
            );
            return None;
        }
        Some(Columns {
            header,
            kinds,
            dims,
            periods,
            code_columns,
        })
    }

    /// The components: the dimensions, and for the wide layout `period` and `value`.
    fn components(&self, layout: Layout) -> Vec<Component> {
        let mut components: Vec<Component> = self
            .dims
            .iter()
            .map(|&j| Component::new(self.header[j].as_str(), Role::Dimension))
            .collect();
        if layout == Layout::Wide {
            components.push(Component::new("period", Role::Time));
            components.push(Component::new("value", Role::Measure));
        }
        components
    }
}

/// The `names` entries found in the header as (code column, name column), sorted, and every
/// name column; problems are reported at the header line.
fn name_columns(
    header: &[String],
    options: &CsvOptions,
    header_line: u32,
    sink: &mut dyn Sink,
) -> (Vec<(usize, usize)>, Vec<usize>) {
    let at = Origin::At {
        line: header_line,
        col: 1,
    };
    let find = |id: &str| header.iter().position(|h| h == id);
    let listing = || {
        header
            .iter()
            .filter(|h| !h.trim().is_empty())
            .map(|h| format!("`{h}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut code_columns: Vec<(usize, usize)> = Vec::new();
    for (code, name) in &options.names {
        let (c, n) = (find(code), find(name));
        for (id, found) in [(code, c), (name, n)] {
            if found.is_none() {
                sink.error(
                    at.clone(),
                    format!(
                        "no column `{id}` named in `names`, expected one of the header's columns: {}",
                        listing()
                    ),
                );
            }
        }
        if let (Some(c), Some(n)) = (c, n) {
            code_columns.push((c, n));
        }
    }
    code_columns.sort_unstable();
    let name_cols: Vec<usize> = code_columns.iter().map(|&(_, n)| n).collect();
    code_columns.retain(|&(c, _)| {
        let both = name_cols.contains(&c);
        if both {
            sink.error(
                at.clone(),
                format!(
                    "column `{}` is both a code and a name column in `names`, expected distinct columns",
                    header[c]
                ),
            );
        }
        !both
    });
    (code_columns, name_cols)
}

/// Reads rows against the header's columns, with what is kept from row to row.
struct Rows<'c> {
    columns: &'c Columns,
    layout: Layout,
    locate: &'c Locator<'c>,
    names: Vec<NameColumn>,
    /// Columns without a header, whose cells must be empty.
    unnamed: Vec<usize>,
    /// The origin of each period column's header: where the wide layout's period is.
    period_origins: Vec<Origin>,
    /// A code and its name, to look up in `NameColumn::seen` without allocating.
    key: String,
    /// The allocation of a row's fields, reused.
    store: Vec<&'static str>,
}

impl<'c> Rows<'c> {
    fn new(columns: &'c Columns, layout: Layout, locate: &'c Locator, header_at: Start) -> Self {
        let names = columns
            .code_columns
            .iter()
            .filter_map(|&(code, name)| match columns.kinds[code] {
                Kind::Dimension(component) => Some(NameColumn {
                    code,
                    name,
                    component,
                    seen: FxHashSet::default(),
                }),
                _ => None,
            })
            .collect();
        let unnamed = (0..columns.header.len())
            .filter(|&j| columns.kinds[j] == Kind::Unnamed)
            .collect();
        let period_origins = columns
            .periods
            .iter()
            .map(|&(j, _)| locate.field(header_at, j))
            .collect();
        let store = Vec::with_capacity(columns.dims.len() + 2);
        Rows {
            columns,
            layout,
            locate,
            names,
            unnamed,
            period_origins,
            key: String::new(),
            store,
        }
    }

    /// One record: its display names, then its observation (long) or observations (wide).
    fn record(&mut self, record: &Record, sink: &mut dyn Sink) {
        let at = Start {
            byte: record.byte,
            line: record.line,
        };
        if !self.fits(record, at, sink) {
            return;
        }
        self.names(record, at, sink);
        let dims = &self.columns.dims;
        let locate = self.locate;
        let mut fields = recycle(std::mem::take(&mut self.store));
        fields.extend(dims.iter().map(|&j| &record[j]));
        match self.layout {
            Layout::Long => {
                sink.row(&fields, &|i| match dims.get(i) {
                    Some(&j) => locate.field(at, j),
                    None => locate.field(at, 0),
                });
            }
            Layout::Wide => self.wide(record, at, &mut fields, sink),
        }
        self.store = recycle(fields);
    }

    /// Whether a record has the header's width and nothing under unnamed columns (else
    /// reported, and the record skipped).
    fn fits(&self, record: &Record, at: Start, sink: &mut dyn Sink) -> bool {
        let width = self.columns.header.len();
        if record.len() != width {
            let line = match self.locate.field(at, 0) {
                Origin::At { line, .. } => line,
                _ => 1,
            };
            sink.error(
                Origin::At { line, col: 1 },
                format!(
                    "row has {} fields, expected {} like the header",
                    record.len(),
                    width
                ),
            );
            return false;
        }
        let mut misplaced = false;
        for &j in &self.unnamed {
            if !record[j].is_empty() {
                sink.error(
                    self.locate.field(at, j),
                    format!(
                        "cell `{}` in column {} which has no header, expected it empty",
                        &record[j],
                        j + 1
                    ),
                );
                misplaced = true;
            }
        }
        !misplaced
    }

    /// The display names a record gives, each (code, name) once.
    fn names(&mut self, record: &Record, at: Start, sink: &mut dyn Sink) {
        let locate = self.locate;
        for nc in &mut self.names {
            let (code, name) = (&record[nc.code], &record[nc.name]);
            if code.is_empty() || name.is_empty() {
                continue;
            }
            self.key.clear();
            self.key.push_str(code);
            self.key.push('\0');
            self.key.push_str(name);
            if !nc.seen.contains(self.key.as_str()) {
                nc.seen.insert(self.key.clone());
                let origin = || locate.field(at, nc.name);
                sink.name_at(nc.component, code, "", name, &origin);
            }
        }
    }

    /// One observation per period column of a wide record; `fields` holds its dimensions.
    fn wide<'f>(
        &self,
        record: &'f Record,
        at: Start,
        fields: &mut Vec<&'f str>,
        sink: &mut dyn Sink,
    ) where
        'c: 'f,
    {
        let dims = &self.columns.dims;
        let n = dims.len();
        fields.push("");
        fields.push("");
        for (p, (j, period)) in self.columns.periods.iter().enumerate() {
            let j = *j;
            fields[n] = period;
            fields[n + 1] = &record[j];
            let origin = |i: usize| {
                let i = if i == ROW { 0 } else { i };
                match i.cmp(&n) {
                    std::cmp::Ordering::Less => self.locate.field(at, dims[i]),
                    std::cmp::Ordering::Equal => self.period_origins[p].clone(),
                    std::cmp::Ordering::Greater => self.locate.field(at, j),
                }
            };
            sink.row(fields, &origin);
        }
    }
}

fn delimiter_byte(c: char) -> Result<u8, String> {
    if !c.is_ascii() {
        return Err(format!(
            "delimiter `{c}` is not an ASCII character, expected one such as `,`, `;` or a tab"
        ));
    }
    if matches!(c, '"' | '\r' | '\n') {
        return Err(format!(
            "delimiter {c:?} is the quote or a line end, expected another ASCII character such as `,`, `;` or a tab"
        ));
    }
    Ok(c as u8)
}

fn unreadable(e: &csv::Error) -> String {
    format!("unreadable CSV: {e}, expected UTF-8 text")
}

/// An empty vector of any lifetime, keeping the allocation of `v` (collecting a mapped
/// `IntoIter` into a same-layout element type reuses its buffer).
fn recycle<'a>(mut v: Vec<&str>) -> Vec<&'a str> {
    v.clear();
    v.into_iter().map(|_| "").collect()
}

/// Where the csv reader started reading a record (before any blank lines it skipped).
#[derive(Debug, Clone, Copy)]
struct Start {
    byte: u64,
    line: u64,
}

impl Start {
    fn of(record: &csv::StringRecord) -> Start {
        record
            .position()
            .map_or(Start { byte: 0, line: 1 }, |p| Start {
                byte: p.byte(),
                line: p.line(),
            })
    }
}

/// Turns a record start and a field index into a line and character column of the file.
struct Locator<'a> {
    /// The whole file, without its BOM.
    text: &'a str,
    delim: u8,
    /// Byte offset of the text after the preamble, which the csv reader reads.
    base: usize,
    /// Lines of the preamble.
    first_line: u64,
}

impl Locator<'_> {
    fn field(&self, at: Start, field: usize) -> Origin {
        let b = self.text.as_bytes();
        let mut i = (self.base as u64).saturating_add(at.byte) as usize;
        let mut line = self.first_line + at.line;
        // The reader's position is where it began, which may be the line end of the previous
        // record or blank lines it skipped.
        while i < b.len() && (b[i] == b'\r' || b[i] == b'\n') {
            line += (b[i] == b'\n') as u64;
            i += 1;
        }
        for _ in 0..field {
            if b.get(i) == Some(&b'"') {
                i += 1;
                while i < b.len() {
                    if b[i] == b'"' {
                        if b.get(i + 1) == Some(&b'"') {
                            i += 2;
                            continue;
                        }
                        i += 1;
                        break;
                    }
                    line += (b[i] == b'\n') as u64;
                    i += 1;
                }
            }
            // Past a closing quote, the csv reader takes everything up to the delimiter.
            while i < b.len() && b[i] != self.delim && b[i] != b'\n' && b[i] != b'\r' {
                i += 1;
            }
            if b.get(i) == Some(&self.delim) {
                i += 1;
            } else {
                break;
            }
        }
        let i = i.min(b.len());
        let line_start = b[..i]
            .iter()
            .rposition(|&c| c == b'\n')
            .map_or(0, |p| p + 1);
        let col = self
            .text
            .get(line_start..i)
            .map_or(1, |s| s.chars().count() + 1);
        Origin::At {
            line: u32::try_from(line).unwrap_or(u32::MAX),
            col: u32::try_from(col).unwrap_or(u32::MAX),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Collect;

    const WORLD_BANK: &str = include_str!(
        "../../tests/fixtures/publishers/csv-plain/worldbank_API_NY.GDP.MKTP.CD_DS2_en_csv_v2.csv"
    );
    const UNICEF: &str = include_str!(
        "../../tests/fixtures/publishers/csv-plain/unicef_fusion_csv_IM_MCV1_USA_BRA_2015_2023.csv"
    );

    fn run(text: &str, options: &CsvOptions) -> Collect {
        let mut c = Collect::default();
        read(text, options, &mut c);
        c
    }

    fn long() -> CsvOptions {
        CsvOptions::default()
    }

    fn wide() -> CsvOptions {
        CsvOptions {
            layout: Layout::Wide,
            ..CsvOptions::default()
        }
    }

    fn names(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(c, n)| (c.to_string(), n.to_string()))
            .collect()
    }

    fn at(line: u32, col: u32) -> Origin {
        Origin::At { line, col }
    }

    /// A deliberately simple CSV splitter for checking the reader: fields of one line (no
    /// embedded newlines) with the 1-based character column where each starts.
    fn naive_split(line: &str) -> Vec<(String, u32)> {
        let mut out = Vec::new();
        let mut field = String::new();
        let mut start = 1;
        let mut quoted = false;
        let chars: Vec<char> = line.chars().collect();
        let mut k = 0;
        while k < chars.len() {
            let ch = chars[k];
            if quoted {
                if ch == '"' && chars.get(k + 1) == Some(&'"') {
                    field.push('"');
                    k += 1;
                } else if ch == '"' {
                    quoted = false;
                } else {
                    field.push(ch);
                }
            } else if ch == '"' && field.is_empty() {
                quoted = true;
            } else if ch == ',' {
                out.push((std::mem::take(&mut field), start));
                start = k as u32 + 2;
            } else {
                field.push(ch);
            }
            k += 1;
        }
        out.push((field, start));
        out
    }

    fn world_bank_options() -> CsvOptions {
        CsvOptions {
            skip_lines: 4,
            layout: Layout::Wide,
            names: names(&[
                ("Country Code", "Country Name"),
                ("Indicator Code", "Indicator Name"),
            ]),
            ..CsvOptions::default()
        }
    }

    #[test]
    fn world_bank_wide_bulk_file() {
        let c = run(WORLD_BANK, &world_bank_options());
        assert_eq!(c.errors, vec![]);
        assert_eq!(
            c.ids(),
            vec![
                ("Country Code", Role::Dimension),
                ("Indicator Code", Role::Dimension),
                ("period", Role::Time),
                ("value", Role::Measure),
            ]
        );
        // 264 countries and aggregates, 57 year columns (1960..2016), empty cells included.
        assert_eq!(c.rows.len(), 264 * 57);

        // Line 33: "Brazil","BRA",...; its "2016" cell is "1796186586414.45", at character 1091;
        // the header's "2016" is on line 5 at character 457.
        let k = c
            .rows
            .iter()
            .position(|r| r[0] == "BRA" && r[2] == "2016")
            .expect("BRA 2016");
        assert_eq!(
            c.rows[k],
            ["BRA", "NY.GDP.MKTP.CD", "2016", "1796186586414.45"]
        );
        assert_eq!(c.origins[k][3], at(33, 1091));
        assert_eq!(c.origins[k][2], at(5, 457));
        assert_eq!(c.origins[k][0], at(33, 10));

        // Line 6: Aruba has no value for 1960: the cell is "" and still an observation.
        assert_eq!(c.rows[0], ["ABW", "NY.GDP.MKTP.CD", "1960", ""]);
        assert_eq!(c.origins[0], [at(6, 9), at(6, 35), at(5, 65), at(6, 52)]);

        // Line 197: "Korea, Dem. People’s Rep.","PRK": the apostrophe is 3 bytes but one
        // character, so "PRK" starts at character 29 (byte 31).
        let k = c.rows.iter().position(|r| r[0] == "PRK").expect("PRK");
        assert_eq!(c.origins[k][0], at(197, 29));

        assert_eq!(c.names.len(), 264 + 1);
        assert!(c
            .names
            .contains(&(0, "BRA".into(), "".into(), "Brazil".into())));
        assert!(c.names.contains(&(
            0,
            "PRK".into(),
            "".into(),
            "Korea, Dem. People’s Rep.".into()
        )));
        assert_eq!(
            c.names.iter().filter(|n| n.0 == 1).collect::<Vec<_>>(),
            vec![&(
                1,
                "NY.GDP.MKTP.CD".into(),
                "".into(),
                "GDP (current US$)".into()
            )]
        );
    }

    #[test]
    fn world_bank_every_cell_matches_a_naive_reading() {
        let c = run(WORLD_BANK, &world_bank_options());
        let lines: Vec<&str> = WORLD_BANK
            .trim_start_matches('\u{feff}')
            .split('\n')
            .map(|l| l.trim_end_matches('\r'))
            .collect();
        let unquote = |l: &str| -> Vec<String> {
            // Every cell is quoted and the line ends with a comma: "a","b",...,"z",
            let inner = l.strip_suffix(',').expect("trailing comma");
            let inner = &inner[1..inner.len() - 1];
            inner.split("\",\"").map(str::to_string).collect()
        };
        let header = unquote(lines[4]);
        let mut expected = Vec::new();
        let mut expected_names = Vec::new();
        for (n, l) in lines[5..].iter().enumerate().filter(|(_, l)| !l.is_empty()) {
            let cells = unquote(l);
            assert_eq!(cells.len(), header.len());
            if !expected_names.contains(&cells[1]) {
                expected_names.push(cells[1].clone());
            }
            for y in 4..cells.len() {
                expected.push((
                    vec![
                        cells[1].clone(),
                        cells[3].clone(),
                        header[y].clone(),
                        cells[y].clone(),
                    ],
                    n as u32 + 6,
                ));
            }
        }
        assert_eq!(
            c.rows,
            expected.iter().map(|e| e.0.clone()).collect::<Vec<_>>()
        );
        let lines_of_values: Vec<Origin> = c.origins.iter().map(|o| o[3].clone()).collect();
        for (o, (_, line)) in lines_of_values.iter().zip(&expected) {
            assert!(
                matches!(o, Origin::At { line: l, .. } if l == line),
                "{o:?} {line}"
            );
        }
        let got: Vec<&String> = c.names.iter().filter(|n| n.0 == 0).map(|n| &n.1).collect();
        assert_eq!(got, expected_names.iter().collect::<Vec<_>>());
    }

    fn unicef_options() -> CsvOptions {
        CsvOptions {
            names: names(&[
                ("REF_AREA", "Geographic area"),
                ("INDICATOR", "Indicator"),
                ("VACCINE", "Vaccine"),
                ("AGE", "Current age"),
                ("UNIT_MEASURE", "Unit of measure"),
                ("OBS_STATUS", "Observation Status"),
            ]),
            ..CsvOptions::default()
        }
    }

    #[test]
    fn unicef_long_with_code_and_label_columns() {
        let c = run(UNICEF, &unicef_options());
        assert_eq!(c.errors, vec![]);
        let expected_ids = [
            "REF_AREA",
            "INDICATOR",
            "VACCINE",
            "AGE",
            "UNIT_MULTIPLIER",
            "Unit multiplier",
            "UNIT_MEASURE",
            "SOURCE_LINK",
            "SERIES_FOOTNOTE",
            "TIME_PERIOD",
            "OBS_VALUE",
            "SOWC_FLAG_A",
            "SOWC flag A",
            "OBS_STATUS",
            "OBS_CONF",
            "Observation confidentaility",
            "DATA_SOURCE",
            "TIME_PERIOD_METHOD",
            "Time period activity related to when the data are collected",
            "COVERAGE_TIME",
            "FREQ_COLL",
            "Time interval at which the source data are collected",
            "OBS_FOOTNOTE",
        ];
        assert_eq!(
            c.ids(),
            expected_ids
                .iter()
                .map(|i| (*i, Role::Dimension))
                .collect::<Vec<_>>()
        );
        assert_eq!(c.rows.len(), 18);
        // Line 7: BRA,...,2020,79,...: Brazil's 2020 coverage is "79", at character 183.
        let (area, period, value) = (c.col("REF_AREA"), c.col("TIME_PERIOD"), c.col("OBS_VALUE"));
        let k = c
            .rows
            .iter()
            .position(|r| r[area] == "BRA" && r[period] == "2020")
            .expect("BRA 2020");
        assert_eq!(c.rows[k][value], "79");
        assert_eq!(c.origins[k][value], at(7, 183));
        // Line 17: USA,...,2021,92,...
        let k = c
            .rows
            .iter()
            .position(|r| r[area] == "USA" && r[period] == "2021")
            .expect("USA 2021");
        assert_eq!(c.rows[k][value], "92");
        // The quoted DATA_SOURCE holds the delimiter.
        assert_eq!(
            c.rows[k][c.col("DATA_SOURCE")],
            "WHO/UNICEF estimates of national immunization coverage, 2024 revision"
        );
        let name =
            |comp: &str, code: &str, name: &str| (c.col(comp), code.into(), "".into(), name.into());
        assert_eq!(
            c.names,
            vec![
                name("REF_AREA", "BRA", "Brazil"),
                name("INDICATOR", "IM_MCV1", "Percentage of surviving infants who received the first dose of measles-containing vaccine"),
                name("VACCINE", "MCV1", "Measles first dose"),
                name("AGE", "M12T23", "12 to 23 months old"),
                name("UNIT_MEASURE", "PCNT", "%"),
                name("OBS_STATUS", "E", "Estimated value"),
                name("REF_AREA", "USA", "United States"),
            ]
        );
    }

    #[test]
    fn unicef_every_cell_and_origin_matches_a_naive_reading() {
        let c = run(UNICEF, &CsvOptions::default());
        assert_eq!(c.errors, vec![]);
        let lines: Vec<&str> = UNICEF.lines().filter(|l| !l.is_empty()).collect();
        let header: Vec<String> = naive_split(lines[0]).into_iter().map(|f| f.0).collect();
        assert_eq!(c.components.len(), header.len());
        let mut rows = Vec::new();
        let mut origins = Vec::new();
        for (n, l) in lines[1..].iter().enumerate() {
            let fields = naive_split(l);
            rows.push(fields.iter().map(|f| f.0.clone()).collect::<Vec<_>>());
            origins.push(
                fields
                    .iter()
                    .map(|f| at(n as u32 + 2, f.1))
                    .collect::<Vec<_>>(),
            );
        }
        assert_eq!(c.rows, rows);
        assert_eq!(c.origins, origins);
    }

    #[test]
    fn delimiters() {
        for d in [';', '\t', '|'] {
            let text = format!("geo{d}time{d}v\nDE{d}2024{d}\"1{d}5\"\n");
            let c = run(
                &text,
                &CsvOptions {
                    delimiter: d,
                    ..CsvOptions::default()
                },
            );
            assert_eq!(c.errors, vec![]);
            assert_eq!(c.rows, vec![vec!["DE", "2024", &format!("1{d}5")]]);
            assert_eq!(c.origins[0], [at(2, 1), at(2, 4), at(2, 9)]);
        }
        let c = run(
            "a;b\n",
            &CsvOptions {
                delimiter: '§',
                ..CsvOptions::default()
            },
        );
        assert_eq!(
            c.error_lines(),
            ["delimiter `§` is not an ASCII character, expected one such as `,`, `;` or a tab"]
        );
        assert_eq!(c.errors[0].0, Origin::File);
        let c = run(
            "a;b\n",
            &CsvOptions {
                delimiter: '"',
                ..CsvOptions::default()
            },
        );
        assert_eq!(
            c.error_lines(),
            ["delimiter '\"' is the quote or a line end, expected another ASCII character such as `,`, `;` or a tab"]
        );
    }

    #[test]
    fn preamble_and_missing_header() {
        let options = CsvOptions {
            skip_lines: 2,
            ..CsvOptions::default()
        };
        let c = run(
            "\u{feff}Title, with \"odd quote\nUpdated 2024\ngeo,v\nDE,1\n",
            &options,
        );
        assert_eq!(c.errors, vec![]);
        assert_eq!(c.ids(), [("geo", Role::Dimension), ("v", Role::Dimension)]);
        assert_eq!(c.rows, [["DE", "1"]]);
        assert_eq!(c.origins, [[at(4, 1), at(4, 4)]]);

        for text in ["Title\nUpdated\n", "Title\n", "Title\nUpdated\n\n\r\n"] {
            let c = run(text, &options);
            assert_eq!(
                c.errors,
                [(
                    Origin::File,
                    "nothing after the 2 preamble lines, expected a header line".to_string()
                )]
            );
            assert!(c.components.is_empty());
        }
        for text in ["", "\u{feff}", "\n\n", "\r\n"] {
            let c = run(text, &long());
            assert_eq!(
                c.errors,
                [(
                    Origin::File,
                    "empty file, expected a header line".to_string()
                )]
            );
        }
    }

    #[test]
    fn wide_layout() {
        let text = "geo, 2024-Q1 ,2024Q2,note\nDE,1.5,,x\nFR,2,3,y\n";
        let c = run(text, &wide());
        assert_eq!(c.errors, vec![]);
        assert_eq!(
            c.ids(),
            [
                ("geo", Role::Dimension),
                ("note", Role::Dimension),
                ("period", Role::Time),
                ("value", Role::Measure),
            ]
        );
        assert_eq!(
            c.rows,
            [
                ["DE", "x", "2024-Q1", "1.5"],
                ["DE", "x", "2024Q2", ""],
                ["FR", "y", "2024-Q1", "2"],
                ["FR", "y", "2024Q2", "3"],
            ]
        );
        assert_eq!(c.origins[1], [at(2, 1), at(2, 9), at(1, 15), at(2, 8)]);
        assert_eq!(c.origins[2], [at(3, 1), at(3, 8), at(1, 5), at(3, 4)]);

        let c = run("geo,year\nDE,2024\n", &wide());
        assert_eq!(
            c.error_lines(),
            ["1:1: no period column in the header, expected columns named like periods (YYYY, YYYY-Hn, YYYY-Sn, YYYY-Qn, YYYYQn, YYYY-MM, YYYY-Mmm, YYYYMmm, YYYY-Www or YYYY-MM-DD) for the wide layout"]
        );
        assert!(c.components.is_empty());

        let c = run("geo,value,2024\nDE,x,1\n", &wide());
        assert_eq!(
            c.error_lines(),
            ["1:5: column `value` has the name of a component the wide layout adds, expected other names than `period` and `value`"]
        );
        assert_eq!(c.rows, [["DE", "2024", "1"]]);

        // A code column is never a period column, even when its header reads as one.
        let options = CsvOptions {
            names: names(&[("2024", "label")]),
            ..wide()
        };
        let c = run("2024,label,2025\nA,Alpha,1\n", &options);
        assert_eq!(c.errors, vec![]);
        assert_eq!(c.rows, [["A", "2025", "1"]]);
        assert_eq!(c.names, [(0, "A".into(), "".into(), "Alpha".into())]);
    }

    #[test]
    fn names_columns() {
        let options = CsvOptions {
            names: names(&[("geo", "Geo name")]),
            ..long()
        };
        let text = "geo,Geo name,v\nDE,Germany,1\nDE,Germany,2\nFR,France,3\nDE,Deutschland,4\n,Nowhere,5\nIT,,6\nDE,Germany,7\n";
        let c = run(text, &options);
        assert_eq!(c.errors, vec![]);
        assert_eq!(c.ids(), [("geo", Role::Dimension), ("v", Role::Dimension)]);
        assert_eq!(c.rows.len(), 7);
        assert_eq!(
            c.names,
            [
                (0, "DE".into(), "".into(), "Germany".into()),
                (0, "FR".into(), "".into(), "France".into()),
                (0, "DE".into(), "".into(), "Deutschland".into()),
            ]
        );

        let options = CsvOptions {
            names: names(&[("geo", "Country")]),
            ..long()
        };
        let c = run("\n\ngeo,Geo name,\nDE,Germany,\n", &options);
        assert_eq!(
            c.error_lines(),
            ["3:1: no column `Country` named in `names`, expected one of the header's columns: `geo`, `Geo name`"]
        );
        // The entry is ignored; reading goes on.
        assert_eq!(c.rows, [["DE", "Germany"]]);

        let options = CsvOptions {
            names: names(&[("a", "b"), ("b", "c")]),
            ..long()
        };
        let c = run("a,b,c\n1,2,3\n", &options);
        assert_eq!(
            c.error_lines(),
            ["1:1: column `b` is both a code and a name column in `names`, expected distinct columns"]
        );
        assert_eq!(c.rows, [["1"]]);
    }

    #[test]
    fn unnamed_columns() {
        let c = run("geo,v,\nDE,1,\n\"FR\",2,x\nIT,3,\n", &long());
        assert_eq!(
            c.error_lines(),
            ["3:8: cell `x` in column 3 which has no header, expected it empty"]
        );
        assert_eq!(c.rows, [["DE", "1"], ["IT", "3"]]);
        assert_eq!(c.ids(), [("geo", Role::Dimension), ("v", Role::Dimension)]);
    }

    #[test]
    fn duplicate_columns() {
        let c = run("geo,time,v,geo,v\nDE,2024,1,DE,1\n", &long());
        assert_eq!(
            c.error_lines(),
            [
                "1:12: duplicate column `geo` (also column 1), expected unique column names",
                "1:16: duplicate column `v` (also column 3), expected unique column names",
            ]
        );
        assert_eq!(c.ids().len(), 3);
        assert_eq!(c.rows, [["DE", "2024", "1"]]);
    }

    /// Reading in pieces of any size on worker threads gives what one pass gives: rows,
    /// origins, names and errors, in the same order.
    fn same_in_pieces(text: &str, options: &CsvOptions) {
        let want = run(text, options);
        for piece in [1, 2, 7, 40, 500, 4096] {
            let got = crate::source::records::in_pieces(piece, || run(text, options));
            assert_eq!(got, want, "pieces of {piece} bytes");
        }
    }

    #[test]
    fn pieces_read_like_one_pass() {
        same_in_pieces(UNICEF, &unicef_options());
        same_in_pieces(WORLD_BANK, &world_bank_options());
        // Problems in later pieces keep their lines and their order.
        let mut text = String::from("a,b,,c\n");
        for i in 0..200 {
            match i % 37 {
                5 => text.push_str("1,2\n"),
                11 => text.push_str("\"x\ny\",2,oops,3\r\n"),
                17 => text.push_str("\n\n"),
                _ => text.push_str(&format!("\"r{i}\",\"q\"\"{i}\",,{i}\n")),
            }
        }
        let c = run(&text, &long());
        assert_eq!(c.errors.len(), 12, "{:?}", c.error_lines());
        assert_eq!(
            c.error_lines()[11],
            "209:6: cell `oops` in column 3 which has no header, expected it empty"
        );
        same_in_pieces(&text, &long());
    }

    #[test]
    fn rows_with_other_field_counts_are_skipped() {
        let c = run("a,b,c\n1,2,3\n\n1,2\n\r\n1,2,3,4\n4,5,6\n", &long());
        assert_eq!(
            c.error_lines(),
            [
                "4:1: row has 2 fields, expected 3 like the header",
                "6:1: row has 4 fields, expected 3 like the header",
            ]
        );
        assert_eq!(c.rows, [["1", "2", "3"], ["4", "5", "6"]]);
        assert_eq!(c.origins[1], [at(7, 1), at(7, 3), at(7, 5)]);
    }

    #[test]
    fn quoted_fields_and_line_ends() {
        let text = "\u{feff}\"g,eo\",note,v\r\n\r\n\"DE\",\"say \"\"hi\"\"\",1\r\nFR,\"two\nlines, ü\",\"2\"\r\nIT,é,3";
        let c = run(text, &long());
        assert_eq!(c.errors, vec![]);
        assert_eq!(c.ids()[0], ("g,eo", Role::Dimension));
        assert_eq!(
            c.rows,
            [
                ["DE", "say \"hi\"", "1"],
                ["FR", "two\nlines, ü", "2"],
                ["IT", "é", "3"],
            ]
        );
        assert_eq!(
            c.origins,
            [
                [at(3, 1), at(3, 6), at(3, 19)],
                [at(4, 1), at(4, 4), at(5, 11)],
                [at(6, 1), at(6, 4), at(6, 6)],
            ]
        );
    }

    #[test]
    fn a_refusing_sink_stops_the_reader() {
        let mut s = Collect {
            refuse: true,
            ..Collect::default()
        };
        read(UNICEF, &unicef_options(), &mut s);
        assert!(s.received_nothing(), "{:?}", s);
    }

    #[test]
    fn recycled_field_vectors_keep_their_buffer() {
        let mut v: Vec<&str> = Vec::with_capacity(32);
        v.push("x");
        let p = v.as_ptr() as usize;
        let w: Vec<&str> = recycle(v);
        assert!(w.is_empty());
        assert_eq!((w.as_ptr() as usize, w.capacity()), (p, 32));
    }

    #[test]
    fn options_from_config() {
        let o: CsvOptions = toml::from_str(
            "delimiter = \"\\t\"\nskip_lines = 4\nlayout = \"wide\"\nnames = { \"Country Code\" = \"Country Name\" }",
        )
        .expect("valid options");
        assert_eq!(o.delimiter, '\t');
        assert_eq!(o.skip_lines, 4);
        assert_eq!(o.layout, Layout::Wide);
        assert_eq!(o.names, names(&[("Country Code", "Country Name")]));
        let o: CsvOptions = toml::from_str("").expect("defaults");
        assert_eq!(o, CsvOptions::default());
        assert_eq!(o.delimiter, ',');
        assert!(toml::from_str::<CsvOptions>("separator = \";\"").is_err());
        assert!(toml::from_str::<CsvOptions>("layout = \"tall\"").is_err());
    }

    #[test]
    fn many_rows() {
        struct Count(usize, usize);
        impl Sink for Count {
            fn components(&mut self, c: &[Component], _: &dyn Fn(usize) -> Origin) -> bool {
                self.1 = c.len();
                true
            }
            fn row(&mut self, fields: &[&str], _: &dyn Fn(usize) -> Origin) {
                assert_eq!(fields.len(), self.1);
                self.0 += 1;
            }
            fn name(&mut self, _: usize, _: &str, _: &str, _: &str) {}
            fn error(&mut self, o: Origin, m: String) {
                panic!("{o}: {m}");
            }
        }
        let mut text = String::from("geo,Geo name,time,value,status\n");
        for i in 0..200_000 {
            use std::fmt::Write;
            writeln!(
                text,
                "C{},Country {},{},{}.5,A",
                i % 50,
                i % 50,
                1900 + i / 50,
                i
            )
            .expect("write to string");
        }
        let mut s = Count(0, 0);
        let options = CsvOptions {
            names: names(&[("geo", "Geo name")]),
            ..long()
        };
        read(&text, &options, &mut s);
        assert_eq!((s.0, s.1), (200_000, 4));
    }

    /// Checks the shape of what the reader yields without keeping it, locating a few fields.
    #[derive(Default)]
    struct Shape {
        width: usize,
        rows: usize,
    }

    impl Sink for Shape {
        fn components(&mut self, c: &[Component], _: &dyn Fn(usize) -> Origin) -> bool {
            self.width = c.len();
            true
        }
        fn row(&mut self, fields: &[&str], origin: &dyn Fn(usize) -> Origin) {
            assert_eq!(fields.len(), self.width);
            if self.rows % 61 == 0 {
                for i in 0..fields.len() {
                    assert!(matches!(origin(i), Origin::At { .. }));
                }
            }
            self.rows += 1;
        }
        fn name(&mut self, _: usize, _: &str, _: &str, _: &str) {}
        fn error(&mut self, _: Origin, m: String) {
            assert!(!m.is_empty());
        }
    }

    #[test]
    fn no_panic_on_truncation_or_byte_flips() {
        let cases = [
            (WORLD_BANK, world_bank_options()),
            (UNICEF, unicef_options()),
            (UNICEF, wide()),
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for (text, options) in &cases {
            let step = (text.len() / 150).max(1);
            for cut in (0..text.len()).step_by(step) {
                let cut = (0..=cut)
                    .rev()
                    .find(|&i| text.is_char_boundary(i))
                    .unwrap_or(0);
                read(&text[..cut], options, &mut Shape::default());
            }
            for _ in 0..60 {
                let mut bytes = text.as_bytes().to_vec();
                for _ in 0..8 {
                    let i = (next() % bytes.len() as u64) as usize;
                    bytes[i] = b"\",;\n\r x\xc3"[(next() % 8) as usize];
                }
                read(
                    &String::from_utf8_lossy(&bytes),
                    options,
                    &mut Shape::default(),
                );
            }
        }
    }
}
