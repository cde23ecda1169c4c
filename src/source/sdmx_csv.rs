//! SDMX-CSV 1.0 (header starting `DATAFLOW`) and 2.0 (header starting `STRUCTURE`) data
//! messages; the version, the separator and the labelling are read from the header. Yields the
//! dataflow id (an attribute), the dimensions, `TIME_PERIOD`, `OBS_VALUE` and the attributes,
//! one row per observation, `ACTION=D` rows as deletes and code names as display names.

use super::records::{self, Record};
use super::{strip_bom, Component, Origin, Role, Sink};

/// How an SDMX-CSV file labels its components and codes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Labels {
    /// Decide from the header (see [`SdmxCsvOptions::labels`]).
    #[default]
    Auto,
    /// Ids only.
    Id,
    /// Header cells `ID: Name` and code cells `CODE: Name`.
    Both,
    /// Each component column is followed by a column holding the names of its codes.
    Name,
}

/// Options of the SDMX-CSV reader.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SdmxCsvOptions {
    /// How the file labels components and codes: `id` (ids only), `both` (header cells
    /// `ID: Name`, code cells `CODE: Name`), `name` (each component column is followed by a
    /// column of its codes' names) or `auto` (the default): `both` when the `TIME_PERIOD` or
    /// `OBS_VALUE` header cell is written `ID: Name`; else `name` when an SDMX-CSV 2.0 header
    /// has a `STRUCTURE_NAME` column and its other columns pair up, `TIME_PERIOD` and
    /// `OBS_VALUE` each opening a pair; else `id`.
    pub labels: Labels,
    /// Ids of the columns that are dimensions (case-insensitive), overriding the guess: columns
    /// before `TIME_PERIOD` are dimensions, columns after it attributes, and well-known
    /// attributes (`OBS_STATUS`, `OBS_CONF`, `OBS_FLAG`, `CONF_STATUS`, `UNIT_MULT`,
    /// `DECIMALS`, `OBS_COMMENT`, `TIME_FORMAT`, `LAST UPDATE`) are attributes wherever they are.
    pub dimensions: Vec<String>,
    /// Ids of the columns that are attributes (case-insensitive), overriding the guess.
    pub attributes: Vec<String>,
}

const WELL_KNOWN_ATTRIBUTES: [&str; 9] = [
    "OBS_STATUS",
    "OBS_CONF",
    "OBS_FLAG",
    "CONF_STATUS",
    "UNIT_MULT",
    "DECIMALS",
    "OBS_COMMENT",
    "TIME_FORMAT",
    "LAST UPDATE",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

/// Where each component is in a record, and what its cells hold.
struct Layout {
    components: Vec<Component>,
    /// Record index of each component's cells.
    cols: Vec<usize>,
    /// Record index of the column naming each component's codes.
    name_cols: Vec<Option<usize>>,
    /// Whether each component's cells are written `CODE: Name`.
    split: Vec<bool>,
    time: usize,
    value: usize,
    /// Record index of the `ACTION` column.
    action: Option<usize>,
    width: usize,
}

/// Reads an SDMX-CSV 1.0 or 2.0 message into `sink`.
pub fn read(text: &str, options: &SdmxCsvOptions, sink: &mut dyn Sink) {
    let text = strip_bom(text);
    if text.trim().is_empty() {
        sink.error(
            Origin::File,
            "empty file, expected an SDMX-CSV header starting with `DATAFLOW` or `STRUCTURE`"
                .into(),
        );
        return;
    }
    let (version, sep, declared) = match sniff(text) {
        Ok(v) => v,
        Err(message) => {
            sink.error(Origin::At { line: 1, col: 1 }, message);
            return;
        }
    };
    let mut reader = records::reader(sep, text.as_bytes());
    let mut record = csv::StringRecord::new();
    match reader.read_record(&mut record) {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => {
            csv_error(text, sep, &e, sink);
            return;
        }
    }
    // `STRUCTURE[;]` holds the separator it declares, so the reader cut it in two.
    let shift = usize::from(declared && !record.get(0).is_some_and(|c| c.ends_with(']')));
    let cells: Vec<&str> = record
        .iter()
        .enumerate()
        .filter(|&(j, _)| shift == 0 || j != 1)
        .map(|(_, c)| c)
        .collect();
    let (layout, mut errors) = layout(&cells, version, options, |j| {
        locate(text, 0, 1, sep, if j == 0 { 0 } else { j + shift })
    });
    errors.sort_by_key(|(origin, _)| match origin {
        Origin::At { col, .. } => *col,
        _ => 0,
    });
    for (origin, message) in errors {
        sink.error(origin, message);
    }
    let Some(layout) = layout else {
        return;
    };
    let headers: Vec<Origin> = layout
        .cols
        .iter()
        .map(|&j| locate(text, 0, 1, sep, if j == 0 { 0 } else { j + shift }))
        .collect();
    read_rows(text, sep, &layout, &headers, &mut reader, sink);
}

/// Reads the records after the header into `sink`, once it takes the components.
fn read_rows(
    text: &str,
    sep: u8,
    layout: &Layout,
    headers: &[Origin],
    reader: &mut csv::Reader<&[u8]>,
    sink: &mut dyn Sink,
) {
    if !sink.components(&layout.components, &|i| headers[i].clone()) {
        return;
    }
    let mut rows = Rows {
        text,
        sep,
        layout,
        spare: Vec::with_capacity(layout.components.len()),
        last_names: vec![Default::default(); layout.components.len()],
    };
    if let Some(e) = records::for_each(reader, text, sep, &mut |r| rows.record(r, sink)) {
        csv_error(text, sep, &e, sink);
    }
}

/// What is kept from row to row.
struct Rows<'l> {
    text: &'l str,
    sep: u8,
    layout: &'l Layout,
    /// The allocation of a row's fields, reused.
    spare: Vec<&'static str>,
    /// The last name given for each component: publishers repeat a code's name on every row.
    last_names: Vec<(String, String)>,
}

impl Rows<'_> {
    /// One record: an observation, a delete, or series attributes only (skipped).
    fn record(&mut self, record: &Record, sink: &mut dyn Sink) {
        let (text, sep, layout) = (self.text, self.sep, self.layout);
        let (start, line) = (record.byte as usize, record.line);
        let at = |field: usize| locate(text, start, line, sep, field);
        if record.len() != layout.width {
            sink.error(
                at(record.len().min(layout.width)),
                format!(
                    "row has {} field{}, expected {} like the header",
                    record.len(),
                    if record.len() == 1 { "" } else { "s" },
                    layout.width
                ),
            );
            return;
        }
        let Some(delete) = action(record, layout, &at, sink) else {
            return;
        };
        let mut fields = recycle(std::mem::take(&mut self.spare));
        for (i, last) in self.last_names.iter_mut().enumerate() {
            let (code, name) = code_and_name(record, layout, i);
            if !code.is_empty() && !name.is_empty() && (last.0 != code || last.1 != name) {
                // The name's own column, else the `CODE: Name` cell it was split from.
                let origin = || {
                    let named = layout.name_cols[i]
                        .filter(|&c| record.get(c).is_some_and(|n| !n.is_empty()));
                    at(named.unwrap_or(layout.cols[i]))
                };
                sink.name_at(i, code, "", name, &origin);
                last.0.clear();
                last.0.push_str(code);
                last.1.clear();
                last.1.push_str(name);
            }
            fields.push(code);
        }
        let origin = |i: usize| at(layout.cols.get(i).copied().unwrap_or(0));
        if delete {
            sink.delete(&fields, &origin);
        } else if !(fields[layout.time].is_empty() && fields[layout.value].is_empty()) {
            // A row with neither period nor value carries series attributes only.
            sink.row(&fields, &origin);
        }
        self.spare = recycle(fields);
    }
}

/// Whether a record is a delete (`ACTION=D`); None for an unknown action (reported).
fn action(
    record: &Record,
    layout: &Layout,
    at: &dyn Fn(usize) -> Origin,
    sink: &mut dyn Sink,
) -> Option<bool> {
    let Some(a) = layout.action else {
        return Some(false);
    };
    match record.get(a).unwrap_or("") {
        "" | "I" | "A" | "R" | "M" | "i" | "a" | "r" | "m" => Some(false),
        "D" | "d" => Some(true),
        other => {
            sink.error(
                at(a),
                format!(
                    "unknown action `{other}`, expected one of `I`, `A`, `R`, `M`, `D` \
                     or empty"
                ),
            );
            None
        }
    }
}

/// Component `i`'s code in a record, and the name the record gives it ("" for none): from
/// a `CODE: Name` cell or the component's name column.
fn code_and_name<'r>(record: &Record<'r>, layout: &Layout, i: usize) -> (&'r str, &'r str) {
    let cell = record.get(layout.cols[i]).unwrap_or("");
    let (code, name) = match layout.split[i] {
        true => cell.split_once(": ").unwrap_or((cell, "")),
        false => (cell, ""),
    };
    let name = match layout.name_cols[i].and_then(|c| record.get(c)) {
        Some(named) if !named.is_empty() => named,
        _ => name,
    };
    (code, name)
}

/// Empties `v` and hands back its allocation for borrows of another lifetime.
fn recycle<'b>(mut v: Vec<&str>) -> Vec<&'b str> {
    v.clear();
    v.into_iter().map(|_| "").collect()
}

fn csv_error(text: &str, sep: u8, e: &csv::Error, sink: &mut dyn Sink) {
    let origin = match e.position() {
        Some(p) => locate(text, p.byte() as usize, p.line(), sep, 0),
        None => Origin::File,
    };
    sink.error(
        origin,
        format!("unreadable CSV: {e}, expected RFC 4180 records"),
    );
}

/// The version and separator from the first header cell: `DATAFLOW` then the separator (1.0),
/// `STRUCTURE` then the separator or `STRUCTURE[c]` declaring separator `c` (2.0).
fn sniff(text: &str) -> Result<(Version, u8, bool), String> {
    let line = text.split(['\n', '\r']).next().unwrap_or("");
    let unknown = || {
        let cell = line.split([',', ';', '\t', '|']).next().unwrap_or("");
        let cell: String = cell.trim_matches('"').chars().take(40).collect();
        format!(
            "unknown first column `{cell}`, expected `DATAFLOW` (SDMX-CSV 1.0) or `STRUCTURE` \
             (SDMX-CSV 2.0)"
        )
    };
    let (quoted, rest) = match line.strip_prefix('"') {
        Some(rest) => (true, rest),
        None => (false, line),
    };
    let (version, mut rest) = if let Some(rest) = strip_prefix_ci(rest, "DATAFLOW") {
        (Version::V1, rest)
    } else if let Some(rest) = strip_prefix_ci(rest, "STRUCTURE") {
        (Version::V2, rest)
    } else {
        return Err(unknown());
    };
    let mut declared = None;
    if version == Version::V2 {
        if let Some(inner) = rest.strip_prefix('[') {
            let mut chars = inner.chars();
            match (chars.next(), chars.next()) {
                (Some(c), Some(']')) if is_separator(c) && !matches!(c, '[' | ']') => {
                    declared = Some(c as u8);
                    rest = chars.as_str();
                }
                _ => {
                    let cell: String = line.chars().take(20).collect();
                    return Err(format!(
                        "malformed separator declaration `{cell}`, expected `STRUCTURE[c]` with \
                         c one ASCII punctuation or space character"
                    ));
                }
            }
        }
    }
    if quoted {
        rest = rest.strip_prefix('"').ok_or_else(unknown)?;
    }
    match (declared, rest.chars().next()) {
        (Some(sep), _) => Ok((version, sep, true)),
        (None, None) => Ok((version, b',', false)),
        (None, Some(c)) if is_separator(c) => Ok((version, c as u8, false)),
        (None, Some(_)) => Err(unknown()),
    }
}

fn is_separator(c: char) -> bool {
    c.is_ascii() && !c.is_ascii_alphanumeric() && !matches!(c, '_' | '"' | '\r' | '\n')
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// The part of a header cell before the first `": "`.
fn id_part(cell: &str) -> &str {
    cell.split_once(": ").map_or(cell, |(id, _)| id)
}

/// Works out the layout from the header record, with the header's problems: a duplicate or
/// unnamed column is left out and the rest read; without a layout nothing can be read.
fn layout(
    cells: &[&str],
    version: Version,
    options: &SdmxCsvOptions,
    at: impl Fn(usize) -> Origin,
) -> (Option<Layout>, Vec<(Origin, String)>) {
    let mut errors = Vec::new();
    let message = message_columns(cells, version, &at, &mut errors);
    let labels = match options.labels {
        Labels::Auto => guess_labels(cells, &message),
        other => other,
    };
    let columns = component_columns(cells, version, &message, labels, &at, &mut errors);
    let first = usize::from(version == Version::V1 || message.structure_id.is_some());
    let find = |want: &str| {
        columns
            .iter()
            .skip(first)
            .position(|&(j, _)| id_of(cells, labels, j).eq_ignore_ascii_case(want))
            .map(|p| p + first)
    };
    let time = find("TIME_PERIOD");
    let value = find("OBS_VALUE");
    if time.is_none() {
        errors.push((
            at(0),
            "header has no `TIME_PERIOD` column, expected one holding the period of each \
             observation"
                .into(),
        ));
    }
    if value.is_none() {
        errors.push((
            at(0),
            "header has no `OBS_VALUE` column, expected one holding the value of each \
             observation"
                .into(),
        ));
    }
    let (Some(time), Some(value)) = (time, value) else {
        return (None, errors);
    };
    if version == Version::V2 && message.structure_id.is_none() {
        return (None, errors);
    }
    let components: Vec<Component> = columns
        .iter()
        .enumerate()
        .map(|(i, &(j, _))| {
            let id = id_of(cells, labels, j);
            Component::new(id, role(i, id, time, value, options))
        })
        .collect();
    let split = components
        .iter()
        .map(|c| labels == Labels::Both && c.role != Role::Measure)
        .collect();
    let layout = Layout {
        split,
        cols: columns.iter().map(|&(j, _)| j).collect(),
        name_cols: columns.iter().map(|&(_, n)| n).collect(),
        components,
        time,
        value,
        action: message.action,
        width: cells.len(),
    };
    (Some(layout), errors)
}

/// SDMX-CSV 2.0 columns that are about the message, not the data, and the other columns.
struct MessageColumns {
    structure_id: Option<usize>,
    structure_name: Option<usize>,
    action: Option<usize>,
    /// The columns of the data, after the first.
    region: Vec<usize>,
}

/// Finds the message columns of a 2.0 header (each once) and the data's columns.
fn message_columns(
    cells: &[&str],
    version: Version,
    at: &dyn Fn(usize) -> Origin,
    errors: &mut Vec<(Origin, String)>,
) -> MessageColumns {
    let mut m = MessageColumns {
        structure_id: None,
        structure_name: None,
        action: None,
        region: Vec::new(),
    };
    for (j, cell) in cells.iter().enumerate().skip(1) {
        let id = id_part(cell);
        let slot = match version {
            Version::V2 if id.eq_ignore_ascii_case("STRUCTURE_ID") => &mut m.structure_id,
            Version::V2 if id.eq_ignore_ascii_case("STRUCTURE_NAME") => &mut m.structure_name,
            Version::V2 if id.eq_ignore_ascii_case("ACTION") => &mut m.action,
            _ => {
                m.region.push(j);
                continue;
            }
        };
        match slot {
            None => *slot = Some(j),
            Some(first) => errors.push((
                at(j),
                format!(
                    "duplicate column `{id}` (also column {}), expected unique column names",
                    *first + 1
                ),
            )),
        }
    }
    m
}

/// The labelling `auto` stands for (see [`SdmxCsvOptions::labels`]).
fn guess_labels(cells: &[&str], m: &MessageColumns) -> Labels {
    let region = &m.region;
    let both = region.iter().any(|&j| {
        cells[j].contains(": ")
            && ["TIME_PERIOD", "OBS_VALUE"]
                .iter()
                .any(|w| id_part(cells[j]).eq_ignore_ascii_case(w))
    });
    let opens_pair = |want: &str| {
        region
            .iter()
            .position(|&j| cells[j].eq_ignore_ascii_case(want))
            .is_some_and(|p| p % 2 == 0)
    };
    if both {
        Labels::Both
    } else if m.structure_name.is_some()
        && region.len() % 2 == 0
        && opens_pair("TIME_PERIOD")
        && opens_pair("OBS_VALUE")
    {
        Labels::Name
    } else {
        Labels::Id
    }
}

/// The id of the component in column `j`.
fn id_of<'c>(cells: &[&'c str], labels: Labels, j: usize) -> &'c str {
    match labels {
        Labels::Both => id_part(cells[j]),
        _ => cells[j],
    }
}

/// (record index, name column) of each component, the dataflow first; unnamed and duplicate
/// columns are reported and left out.
fn component_columns(
    cells: &[&str],
    version: Version,
    m: &MessageColumns,
    labels: Labels,
    at: &dyn Fn(usize) -> Origin,
    errors: &mut Vec<(Origin, String)>,
) -> Vec<(usize, Option<usize>)> {
    let id_of = |j: usize| id_of(cells, labels, j);
    let mut columns: Vec<(usize, Option<usize>)> = Vec::new();
    match version {
        Version::V1 => columns.push((0, None)),
        Version::V2 => match m.structure_id {
            Some(j) => columns.push((j, m.structure_name)),
            None => errors.push((
                at(0),
                "header has no `STRUCTURE_ID` column, expected one naming the dataflow".into(),
            )),
        },
    }
    let step = if labels == Labels::Name { 2 } else { 1 };
    for pair in m.region.chunks(step) {
        let j = pair[0];
        let name_col = pair.get(1).copied();
        if id_of(j).is_empty() {
            errors.push((
                at(j),
                format!("column {} has no name, expected a component id", j + 1),
            ));
            continue;
        }
        let dup = columns
            .iter()
            .map(|&(k, _)| k)
            .find(|&k| id_of(k).eq_ignore_ascii_case(id_of(j)));
        if let Some(k) = dup {
            errors.push((
                at(j),
                format!(
                    "duplicate column `{}` (also column {}), expected unique column names",
                    id_of(j),
                    k + 1
                ),
            ));
            continue;
        }
        columns.push((j, name_col));
    }
    columns
}

/// The role of component `i` (id `id`): the dataflow is an attribute; columns before
/// `TIME_PERIOD` are dimensions and after it attributes, unless the options or the
/// well-known attributes say otherwise.
fn role(i: usize, id: &str, time: usize, value: usize, options: &SdmxCsvOptions) -> Role {
    let listed = |list: &[String]| list.iter().any(|l| l.eq_ignore_ascii_case(id));
    if i == 0 {
        Role::Attribute
    } else if i == time {
        Role::Time
    } else if i == value {
        Role::Measure
    } else if listed(&options.dimensions) {
        Role::Dimension
    } else if listed(&options.attributes)
        || WELL_KNOWN_ATTRIBUTES
            .iter()
            .any(|w| w.eq_ignore_ascii_case(id))
        || i > time
    {
        Role::Attribute
    } else {
        Role::Dimension
    }
}

/// The origin of field `field` of the record starting at byte `start` on line `line`: where the
/// field starts or, for a field past the record's end, where the record ends.
fn locate(text: &str, start: usize, line: u64, sep: u8, field: usize) -> Origin {
    let mut line = u32::try_from(line).unwrap_or(u32::MAX);
    let mut rest = text.get(start..).unwrap_or("");
    // A record's position may lie before the blank lines the CSV reader skipped.
    while let Some(c) = rest.chars().next().filter(|c| matches!(c, '\r' | '\n')) {
        if c == '\n' {
            line = line.saturating_add(1);
        }
        rest = &rest[1..];
    }
    let mut col = 1u32;
    let mut f = 0;
    let mut quoted = false;
    for c in rest.chars() {
        if f == field {
            break;
        }
        if quoted {
            if c == '"' {
                quoted = false;
            } else if c == '\n' {
                line = line.saturating_add(1);
                col = 1;
                continue;
            }
        } else if c == '"' {
            quoted = true;
        } else if c == char::from(sep) {
            f += 1;
        } else if matches!(c, '\r' | '\n') {
            break;
        }
        col = col.saturating_add(1);
    }
    Origin::At { line, col }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Collect;
    use std::collections::BTreeSet;

    const BIS: &str = include_str!("../../tests/fixtures/publishers/sdmx-csv/bis_der_sdmxcsv1.csv");
    const ESTAT: &str = include_str!(
        "../../tests/fixtures/publishers/sdmx-csv/estat_ei_bpm6ca_q_sdmxcsv2_labelsname.csv"
    );

    fn run(text: &str, options: &SdmxCsvOptions) -> Collect {
        let mut sink = Collect::default();
        read(text, options, &mut sink);
        sink
    }

    fn read_default(text: &str) -> Collect {
        run(text, &SdmxCsvOptions::default())
    }

    fn roles(c: &Collect) -> Vec<(&str, Role)> {
        c.components
            .iter()
            .map(|c| (c.id.as_str(), c.role))
            .collect()
    }

    fn field<'a>(c: &'a Collect, row: usize, id: &str) -> &'a str {
        &c.rows[row][c.col(id)]
    }

    use Role::{Attribute as A, Dimension as D, Measure as M, Time as T};

    #[test]
    fn pieces_read_like_one_pass() {
        let mut text = String::from(
            "STRUCTURE;STRUCTURE_ID;ACTION;REF_AREA;TIME_PERIOD;OBS_VALUE;OBS_COMMENT\r\n",
        );
        for i in 0..150 {
            match i % 29 {
                3 => text.push_str("dataflow;ESTAT:X(1.0);Q;FR;2020;1;\r\n"),
                8 => text.push_str("dataflow;ESTAT:X(1.0);D;FR;2020\r\n"),
                13 => text.push_str(&format!("dataflow;ESTAT:X(1.0);D;FR: France;{};;\r\n", 1990 + i)),
                21 => text.push_str("\r\n"),
                _ => text.push_str(&format!(
                    "dataflow;\"ESTAT:X(1.0)\";I;\"FR: France\";{};{i}.5;\"said \"\"{i}\"\"\nthen\"\r\n",
                    1990 + i
                )),
            }
        }
        let want = read_default(&text);
        assert_eq!(want.errors.len(), 11, "{:?}", want.error_lines());
        assert_eq!(
            want.error_lines()[10],
            "278:23: unknown action `Q`, expected one of `I`, `A`, `R`, `M`, `D` or empty"
        );
        for (text, options) in [
            (text.as_str(), SdmxCsvOptions::default()),
            (BIS, SdmxCsvOptions::default()),
            (ESTAT, SdmxCsvOptions::default()),
        ] {
            let want = run(text, &options);
            for piece in [1, 3, 50, 700, 9000] {
                let got = crate::source::records::in_pieces(piece, || run(text, &options));
                assert_eq!(got, want, "pieces of {piece} bytes");
            }
        }
    }

    #[test]
    fn bis_sdmx_csv_1_components_rows_and_cells() {
        let c = read_default(BIS);
        assert_eq!(c.errors, vec![]);
        assert_eq!(
            roles(&c),
            vec![
                ("DATAFLOW", A),
                ("FREQ", D),
                ("DER_TYPE", D),
                ("DER_INSTR", D),
                ("DER_RISK", D),
                ("DER_REP_CTY", D),
                ("DER_SECTOR_CPY", D),
                ("DER_CPC", D),
                ("DER_SECTOR_UDL", D),
                ("DER_CURR_LEG1", D),
                ("DER_CURR_LEG2", D),
                ("DER_ISSUE_MAT", D),
                ("DER_RATING", D),
                ("DER_EX_METHOD", D),
                ("DER_BASIS", D),
                ("TIME_PERIOD", T),
                ("AVAILABILITY", A),
                ("COLLECTION", A),
                ("OBS_STATUS", A),
                ("OBS_CONF", A),
                ("OBS_VALUE", M),
            ]
        );
        assert_eq!(c.rows.len(), 1000);
        assert!(c.names.is_empty() && c.deleted.is_empty());
        // Line 2: `BIS:BIS_DER(1.0),A,U,A,B,5J,A,1E,A,HKD,TO1,A,A,3,C,2002,K,S,M,F,`.
        assert_eq!(field(&c, 0, "DATAFLOW"), "BIS:BIS_DER(1.0)");
        assert_eq!(field(&c, 0, "DER_CURR_LEG1"), "HKD");
        assert_eq!(field(&c, 0, "TIME_PERIOD"), "2002");
        assert_eq!(field(&c, 0, "OBS_STATUS"), "M");
        assert_eq!(field(&c, 0, "OBS_VALUE"), "");
        // Line 4: `...,HKD,TO1,A,A,3,C,2004,K,S,A,F,14206.490766`.
        assert_eq!(field(&c, 2, "TIME_PERIOD"), "2004");
        assert_eq!(field(&c, 2, "OBS_STATUS"), "A");
        assert_eq!(field(&c, 2, "OBS_VALUE"), "14206.490766");
        assert_eq!(
            c.origins[2][c.col("OBS_VALUE")],
            Origin::At { line: 4, col: 65 }
        );
        assert_eq!(
            c.origins[2][c.col("DATAFLOW")],
            Origin::At { line: 4, col: 1 }
        );
        // Last line: `...,A,TO1,EUR,A,A,3,C,2009,K,S,M,F,`.
        assert_eq!(field(&c, 999, "DER_CURR_LEG1"), "TO1");
        assert_eq!(field(&c, 999, "DER_CURR_LEG2"), "EUR");
        assert_eq!(field(&c, 999, "TIME_PERIOD"), "2009");
        assert_eq!(field(&c, 999, "OBS_VALUE"), "");
    }

    #[test]
    fn bis_every_cell_matches_a_naive_reading() {
        let c = read_default(BIS);
        let expected: Vec<Vec<String>> = BIS
            .lines()
            .skip(1)
            .map(|l| l.split(',').map(String::from).collect())
            .collect();
        assert_eq!(c.rows, expected);
        let header: Vec<&str> = BIS.lines().next().unwrap().split(',').collect();
        let ids: Vec<&str> = c.components.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, header);
    }

    #[test]
    fn eurostat_sdmx_csv_2_labels_name() {
        for labels in [Labels::Auto, Labels::Name] {
            let options = SdmxCsvOptions {
                labels,
                ..Default::default()
            };
            let c = run(ESTAT, &options);
            assert_eq!(c.errors, vec![]);
            assert_eq!(
                roles(&c),
                vec![
                    ("STRUCTURE_ID", A),
                    ("freq", D),
                    ("unit", D),
                    ("s_adj", D),
                    ("sector10", D),
                    ("sectpart", D),
                    ("partner", D),
                    ("stk_flow", D),
                    ("bop_item", D),
                    ("geo", D),
                    ("TIME_PERIOD", T),
                    ("OBS_VALUE", M),
                    ("OBS_FLAG", A),
                    ("CONF_STATUS", A),
                ]
            );
            assert_eq!(c.rows.len(), 19);
            // Line 2: `dataflow,ESTAT:EI_BPM6CA_Q$DEFAULTVIEW(1.0),...,EA20,Euro area – 20
            // countries (from 2023),2023-Q1,,23962.1,,,,,`.
            assert_eq!(
                field(&c, 0, "STRUCTURE_ID"),
                "ESTAT:EI_BPM6CA_Q$DEFAULTVIEW(1.0)"
            );
            assert_eq!(field(&c, 0, "geo"), "EA20");
            assert_eq!(field(&c, 0, "bop_item"), "CA");
            assert_eq!(field(&c, 0, "TIME_PERIOD"), "2023-Q1");
            assert_eq!(field(&c, 0, "OBS_VALUE"), "23962.1");
            assert_eq!(field(&c, 0, "OBS_FLAG"), "");
            // Line 12: `...,CKA,Current plus capital account (...),...,2023-Q1,,25861.6,,,,,`.
            assert_eq!(field(&c, 10, "bop_item"), "CKA");
            assert_eq!(field(&c, 10, "OBS_VALUE"), "25861.6");
            // Line 20, the last: `...,2025-Q1,,63670.1,,,,,` ending in CRLF.
            assert_eq!(field(&c, 18, "TIME_PERIOD"), "2025-Q1");
            assert_eq!(field(&c, 18, "CONF_STATUS"), "");
            let name = |id: &str, code: &str| {
                let i = c.col(id);
                c.names
                    .iter()
                    .filter(|n| n.0 == i && n.1 == code)
                    .map(|n| (n.2.as_str(), n.3.as_str()))
                    .collect::<Vec<_>>()
            };
            assert_eq!(name("freq", "Q"), vec![("", "Quarterly")]);
            assert_eq!(name("unit", "MIO_EUR"), vec![("", "Million euro")]);
            assert_eq!(
                name("geo", "EA20"),
                vec![("", "Euro area \u{2013} 20 countries (from 2023)")]
            );
            assert_eq!(name("bop_item", "CA"), vec![("", "Current account")]);
            assert_eq!(
                name("STRUCTURE_ID", "ESTAT:EI_BPM6CA_Q$DEFAULTVIEW(1.0)"),
                vec![("", "Current account - quarterly data")]
            );
            // The period and value name columns are empty.
            assert_eq!(name("TIME_PERIOD", "2023-Q1"), vec![]);
        }
    }

    #[test]
    fn eurostat_every_cell_and_name_matches_a_naive_reading() {
        let c = read_default(ESTAT);
        let lines: Vec<Vec<&str>> = ESTAT
            .split("\r\n")
            .filter(|l| !l.is_empty())
            .map(|l| l.split(',').collect())
            .collect();
        // STRUCTURE_ID, then every other column from the fourth: code, name, code, name, ...
        let code_cols: Vec<usize> = std::iter::once(1).chain((3..29).step_by(2)).collect();
        let ids: Vec<&str> = c.components.iter().map(|c| c.id.as_str()).collect();
        let header: Vec<&str> = code_cols.iter().map(|&j| lines[0][j]).collect();
        assert_eq!(ids, header);
        let expected: Vec<Vec<String>> = lines[1..]
            .iter()
            .map(|l| code_cols.iter().map(|&j| l[j].to_string()).collect())
            .collect();
        assert_eq!(c.rows, expected);
        let mut names = BTreeSet::new();
        for l in &lines[1..] {
            for (i, &j) in code_cols.iter().enumerate() {
                if !l[j + 1].is_empty() {
                    names.insert((i, l[j].to_string(), String::new(), l[j + 1].to_string()));
                }
            }
        }
        assert_eq!(c.names.iter().cloned().collect::<BTreeSet<_>>(), names);
    }

    #[test]
    fn labels_id_keeps_name_columns_as_components() {
        let c = run(
            ESTAT,
            &SdmxCsvOptions {
                labels: Labels::Id,
                ..Default::default()
            },
        );
        assert_eq!(c.components.len(), 27);
        assert_eq!(c.components[2], Component::new("Time frequency", D));
        assert!(c.names.iter().all(|n| n.0 == 0));
    }

    #[test]
    fn labels_both_splits_header_and_code_cells() {
        let text = "STRUCTURE,STRUCTURE_ID,ACTION,FREQ: Frequency,REF_AREA: Reference area,\
                    TIME_PERIOD: Time period,OBS_VALUE: Observation value,OBS_STATUS: Status\n\
                    dataflow,ECB:EXR(1.0.0): Exchange rates,I,A: Annual,DE: Germany,2020,1.5,\
                    A: Normal value\n\
                    dataflow,ECB:EXR(1.0.0): Exchange rates,,A: Annual,FR,2021,2.5,\n";
        let c = read_default(text);
        assert_eq!(c.errors, vec![]);
        assert_eq!(
            roles(&c),
            vec![
                ("STRUCTURE_ID", A),
                ("FREQ", D),
                ("REF_AREA", D),
                ("TIME_PERIOD", T),
                ("OBS_VALUE", M),
                ("OBS_STATUS", A),
            ]
        );
        assert_eq!(
            c.rows,
            vec![
                vec!["ECB:EXR(1.0.0)", "A", "DE", "2020", "1.5", "A"],
                vec!["ECB:EXR(1.0.0)", "A", "FR", "2021", "2.5", ""],
            ]
        );
        let n = |i: usize, code: &str, name: &str| (i, code.into(), String::new(), name.into());
        assert_eq!(
            c.names,
            vec![
                n(0, "ECB:EXR(1.0.0)", "Exchange rates"),
                n(1, "A", "Annual"),
                n(2, "DE", "Germany"),
                n(5, "A", "Normal value"),
            ]
        );
        assert_eq!(c.origins[0][2], Origin::At { line: 2, col: 53 });
        // A STRUCTURE_NAME column names the dataflow; its id is still split from its name.
        let text = "STRUCTURE,STRUCTURE_ID,STRUCTURE_NAME,TIME_PERIOD: Time,OBS_VALUE: Value\n\
                    dataflow,X:Y(1.0): Why,Why not,2020,1\n";
        let c = read_default(text);
        assert_eq!(c.rows, vec![vec!["X:Y(1.0)", "2020", "1"]]);
        assert_eq!(c.names, vec![n(0, "X:Y(1.0)", "Why not")]);
    }

    #[test]
    fn declared_separator_actions_and_attribute_only_rows() {
        let text = "STRUCTURE[;];STRUCTURE_ID;ACTION;freq;LAST UPDATE;geo;TIME_PERIOD;\
                    OBS_VALUE;obs_status\r\n\
                    dataflow;ESTAT:X(1.0);I;A;01/01/24;DE;2020;1,5;\r\n\
                    dataflow;ESTAT:X(1.0);D;A;;DE;2019;;\r\n\
                    dataflow;ESTAT:X(1.0);;A;02/01/24;FR;;;p\r\n\
                    dataflow;ESTAT:X(1.0);R;A;;FR;2020;\"2;5\";\r\n\
                    dataflow;ESTAT:X(1.0);M;A;;IT;2020;3;\r\n\
                    dataflow;ESTAT:X(1.0);A;A;;ES;2020;4;\r\n";
        let c = read_default(text);
        assert_eq!(c.errors, vec![]);
        assert_eq!(
            roles(&c),
            vec![
                ("STRUCTURE_ID", A),
                ("freq", D),
                ("LAST UPDATE", A),
                ("geo", D),
                ("TIME_PERIOD", T),
                ("OBS_VALUE", M),
                ("obs_status", A),
            ]
        );
        let row = |g: &str, t: &str, v: &str, u: &str| -> Vec<String> {
            ["ESTAT:X(1.0)", "A", u, g, t, v, ""]
                .map(String::from)
                .to_vec()
        };
        assert_eq!(
            c.rows,
            vec![
                row("DE", "2020", "1,5", "01/01/24"),
                row("FR", "2020", "2;5", ""),
                row("IT", "2020", "3", ""),
                row("ES", "2020", "4", ""),
            ]
        );
        assert_eq!(c.deleted, vec![row("DE", "2019", "", "")]);
        assert_eq!(c.origins[1][5], Origin::At { line: 5, col: 36 });
    }

    #[test]
    fn role_guess_and_overrides() {
        let text = "DATAFLOW;OBS_STATUS;REF_AREA;TIME_PERIOD;OBS_VALUE;UNIT;NOTE\nX:Y(1.0);A;DE;2020;1;EUR;n\n";
        let c = read_default(text);
        assert_eq!(
            roles(&c),
            vec![
                ("DATAFLOW", A),
                ("OBS_STATUS", A),
                ("REF_AREA", D),
                ("TIME_PERIOD", T),
                ("OBS_VALUE", M),
                ("UNIT", A),
                ("NOTE", A),
            ]
        );
        let options: SdmxCsvOptions =
            toml::from_str("labels = \"id\"\ndimensions = [\"unit\"]\nattributes = [\"ref_area\"]")
                .expect("valid options");
        let c = run(text, &options);
        assert_eq!(c.components[2], Component::new("REF_AREA", A));
        assert_eq!(c.components[5], Component::new("UNIT", D));
        assert_eq!(
            c.rows,
            vec![vec!["X:Y(1.0)", "A", "DE", "2020", "1", "EUR", "n"]]
        );
        assert!(toml::from_str::<SdmxCsvOptions>("label = \"id\"").is_err());
        assert!(toml::from_str::<SdmxCsvOptions>("labels = \"codes\"").is_err());
    }

    #[test]
    fn quoted_header_and_multi_line_cells_keep_origins_right() {
        let text = "\u{feff}\"DATAFLOW\",\"TIME_PERIOD\",\"OBS_VALUE\",\"OBS_COMMENT\"\n\
                    X:Y(1.0),2020,1,\"two\nlines\"\n\nX:Y(1.0),2021,2,x,extra\n";
        let c = read_default(text);
        assert_eq!(c.rows, vec![vec!["X:Y(1.0)", "2020", "1", "two\nlines"]]);
        assert_eq!(c.origins[0][3], Origin::At { line: 2, col: 17 });
        assert_eq!(
            c.error_lines(),
            vec!["5:19: row has 5 fields, expected 4 like the header"]
        );
    }

    fn errors(text: &str) -> Vec<String> {
        read_default(text).error_lines()
    }

    #[test]
    fn empty_and_unknown_headers() {
        let empty = "empty file, expected an SDMX-CSV header starting with `DATAFLOW` or \
                     `STRUCTURE`";
        assert_eq!(errors(""), vec![empty]);
        assert_eq!(errors("\u{feff}\r\n \n"), vec![empty]);
        assert_eq!(
            errors("SERIES,TIME_PERIOD,OBS_VALUE\nA,2020,1\n"),
            vec![
                "1:1: unknown first column `SERIES`, expected `DATAFLOW` (SDMX-CSV 1.0) or \
                 `STRUCTURE` (SDMX-CSV 2.0)"
            ]
        );
        assert_eq!(
            errors("DATAFLOWS,TIME_PERIOD,OBS_VALUE\n"),
            vec![
                "1:1: unknown first column `DATAFLOWS`, expected `DATAFLOW` (SDMX-CSV 1.0) or \
                 `STRUCTURE` (SDMX-CSV 2.0)"
            ]
        );
        assert_eq!(
            errors("STRUCTURE[;;STRUCTURE_ID;TIME_PERIOD;OBS_VALUE\n"),
            vec![
                "1:1: malformed separator declaration `STRUCTURE[;;STRUCTUR`, expected \
                 `STRUCTURE[c]` with c one ASCII punctuation or space character"
            ]
        );
    }

    #[test]
    fn missing_columns() {
        let c = read_default("DATAFLOW,FREQ,VALUE\nX:Y(1.0),A,1\n");
        assert_eq!(
            c.error_lines(),
            vec![
                "1:1: header has no `TIME_PERIOD` column, expected one holding the period of \
                 each observation",
                "1:1: header has no `OBS_VALUE` column, expected one holding the value of each \
                 observation",
            ]
        );
        assert!(c.components.is_empty() && c.rows.is_empty());
        assert_eq!(
            errors("DATAFLOW\n"),
            vec![
                "1:1: header has no `TIME_PERIOD` column, expected one holding the period of \
                 each observation",
                "1:1: header has no `OBS_VALUE` column, expected one holding the value of each \
                 observation",
            ]
        );
        assert_eq!(
            errors("STRUCTURE,ACTION,TIME_PERIOD,OBS_VALUE\ndataflow,I,2020,1\n"),
            vec!["1:1: header has no `STRUCTURE_ID` column, expected one naming the dataflow"]
        );
    }

    #[test]
    fn duplicate_and_unnamed_columns_are_reported_and_left_out() {
        let text = "STRUCTURE,STRUCTURE_ID,freq,TIME_PERIOD,OBS_VALUE,FREQ,,ACTION,action\n\
                    dataflow,X:Y(1.0),A,2020,1,Q,z,I,D\n";
        let c = read_default(text);
        assert_eq!(
            c.error_lines(),
            vec![
                "1:51: duplicate column `FREQ` (also column 3), expected unique column names",
                "1:56: column 7 has no name, expected a component id",
                "1:64: duplicate column `action` (also column 8), expected unique column names",
            ]
        );
        assert_eq!(
            roles(&c),
            vec![
                ("STRUCTURE_ID", A),
                ("freq", D),
                ("TIME_PERIOD", T),
                ("OBS_VALUE", M)
            ]
        );
        assert_eq!(c.rows, vec![vec!["X:Y(1.0)", "A", "2020", "1"]]);
        // The declared separator inside the first cell does not shift later columns.
        let c = read_default(
            "STRUCTURE[;];STRUCTURE_ID;TIME_PERIOD;OBS_VALUE;time_period\ndataflow;X:Y(1.0);2020;1;2021\n",
        );
        assert_eq!(
            c.error_lines(),
            vec![
                "1:49: duplicate column `time_period` (also column 3), expected unique column \
                 names"
            ]
        );
        assert_eq!(c.rows, vec![vec!["X:Y(1.0)", "2020", "1"]]);
    }

    #[test]
    fn wrong_field_counts_and_actions_are_reported_and_the_rest_read() {
        let text = "STRUCTURE,STRUCTURE_ID,ACTION,geo,TIME_PERIOD,OBS_VALUE\n\
                    dataflow,X:Y(1.0),I,DE,2020,1,9\n\
                    dataflow,X:Y(1.0),I,DE,2020\n\
                    dataflow,X:Y(1.0),X,DE,2020,3\n\
                    dataflow\n\
                    dataflow,X:Y(1.0),,FR,2020,4\n";
        let c = read_default(text);
        assert_eq!(
            c.error_lines(),
            vec![
                "2:31: row has 7 fields, expected 6 like the header",
                "3:28: row has 5 fields, expected 6 like the header",
                "4:19: unknown action `X`, expected one of `I`, `A`, `R`, `M`, `D` or empty",
                "5:9: row has 1 field, expected 6 like the header",
            ]
        );
        assert_eq!(c.rows, vec![vec!["X:Y(1.0)", "FR", "2020", "4"]]);
    }

    #[test]
    fn truncated_file_reports_the_short_last_row() {
        // Cut in the middle of line 5 of the BIS file, after `...,3,C,2005,K,S`.
        let line5 = BIS.lines().nth(4).unwrap();
        let cut = BIS.find(line5).unwrap() + line5.find(",2005,K,S").unwrap() + 9;
        let c = read_default(&BIS[..cut]);
        assert_eq!(
            c.error_lines(),
            vec!["5:60: row has 18 fields, expected 21 like the header"]
        );
        assert_eq!(c.rows.len(), 3);
    }

    #[test]
    fn no_panic_on_truncations_and_byte_flips() {
        let options = [
            SdmxCsvOptions::default(),
            SdmxCsvOptions {
                labels: Labels::Both,
                ..Default::default()
            },
            SdmxCsvOptions {
                labels: Labels::Name,
                ..Default::default()
            },
        ];
        for text in [BIS, ESTAT] {
            let bytes = text.as_bytes();
            for o in &options {
                let head = bytes.len().min(4000);
                for cut in (0..head)
                    .step_by(7)
                    .chain((head..bytes.len()).step_by(4999))
                {
                    let t = String::from_utf8_lossy(&bytes[..cut]);
                    let mut sink = Collect::default();
                    read(&t, o, &mut sink);
                    for r in sink.rows.iter().chain(&sink.deleted) {
                        assert_eq!(r.len(), sink.components.len());
                    }
                }
            }
            let mut seed = 0x2545_f491_4f6c_dd1du64;
            for _ in 0..200 {
                let mut b = bytes[..bytes.len().min(4000)].to_vec();
                for _ in 0..4 {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let i = (seed % b.len() as u64) as usize;
                    b[i] = [
                        b'"',
                        b',',
                        b';',
                        b'\n',
                        b'\r',
                        b'[',
                        b':',
                        b' ',
                        (seed >> 32) as u8,
                    ][(seed >> 40) as usize % 9];
                }
                let t = String::from_utf8_lossy(&b);
                for o in &options {
                    let mut sink = Collect::default();
                    read(&t, o, &mut sink);
                }
            }
        }
    }

    /// Counts rows without keeping them, as the mapping stage would.
    #[derive(Default)]
    struct Count {
        rows: usize,
        errors: Vec<(Origin, String)>,
        value: usize,
        sum: u64,
        refuse: bool,
    }

    impl Sink for Count {
        fn components(&mut self, components: &[Component], _: &dyn Fn(usize) -> Origin) -> bool {
            self.value = components.iter().position(|c| c.role == M).unwrap();
            !self.refuse
        }
        fn row(&mut self, fields: &[&str], _origin: &dyn Fn(usize) -> Origin) {
            self.rows += 1;
            self.sum += fields[self.value].len() as u64;
        }
        fn name(&mut self, _: usize, _: &str, _: &str, _: &str) {}
        fn error(&mut self, origin: Origin, message: String) {
            self.errors.push((origin, message));
        }
    }

    #[test]
    fn a_sink_refusing_the_components_gets_no_rows() {
        let mut sink = Count {
            refuse: true,
            ..Default::default()
        };
        read(BIS, &SdmxCsvOptions::default(), &mut sink);
        assert_eq!((sink.rows, sink.errors.len()), (0, 0));
    }

    #[test]
    fn reads_a_generated_200000_row_body() {
        let mut text =
            String::from("DATAFLOW,FREQ,REF_AREA,INDICATOR,TIME_PERIOD,OBS_STATUS,OBS_VALUE\n");
        let mut value_chars = 0u64;
        for i in 0..200_000u32 {
            let value = format!("{}.{}", i, i % 7);
            value_chars += value.len() as u64;
            text.push_str(&format!(
                "BIS:X(1.0),M,C{},I{},{}-{:02},A,{value}\n",
                i % 50,
                i % 11,
                1900 + i / 12 % 200,
                i % 12 + 1
            ));
        }
        let mut sink = Count::default();
        read(&text, &SdmxCsvOptions::default(), &mut sink);
        assert_eq!(sink.errors, vec![]);
        assert_eq!(sink.rows, 200_000);
        assert_eq!(sink.sum, value_chars);
    }
}
