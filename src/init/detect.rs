//! Which format a publisher file is in, and the reader options its layout needs, told from
//! its bytes alone: the first step of `init`.

use toml::{Table, Value};

use crate::dataset::calendar::Period;
use crate::source::Format;

/// The format and the reader options `init` found, with why.
#[derive(Debug, Clone)]
pub struct Detected {
    pub format: Format,
    /// The options table of the format (`csv = { … }`), as written in the config.
    pub options: Table,
    /// What was seen, one comment line each.
    pub notes: Vec<String>,
    /// What the file says of itself.
    pub meta: Meta,
}

/// What the bytes are. Err: a file `init` cannot make a config for, and why.
pub fn format(bytes: &[u8]) -> Result<Detected, String> {
    let mut d = kind(bytes)?;
    // JSON's is read from the document `kind` parsed.
    if !matches!(d.format, Format::JsonStat | Format::SdmxJson) {
        d.meta = metadata(d.format, bytes);
    }
    Ok(d)
}

fn kind(bytes: &[u8]) -> Result<Detected, String> {
    let detected = |format, note: &str| Detected {
        format,
        options: Table::new(),
        notes: vec![note.to_string()],
        meta: Meta::default(),
    };
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]) {
        return Ok(detected(
            Format::Excel,
            "a workbook (Office Open XML, OpenDocument or BIFF)",
        ));
    }
    if is_pc_axis(bytes) {
        return Ok(detected(
            Format::PcAxis,
            "PC-Axis keywords (KEYWORD=value;) and a DATA section",
        ));
    }
    let text = crate::read::as_text(bytes)?;
    let text = crate::source::strip_bom(text);
    let start = text.trim_start();
    if start.starts_with('<') {
        return xml(start).map(|f| detected(f, "an SDMX-ML data message"));
    }
    if start.starts_with('{') || start.starts_with('[') {
        return json(text);
    }
    csv(text)
}

/// What a file says of itself: its title, its publisher and when it was prepared, each with
/// where it was read.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Meta {
    pub title: Option<(String, String)>,
    pub publisher: Option<(String, String)>,
    pub published: Option<(String, String)>,
}

/// The file's own title, publisher and date, where its format has them: JSON-stat `label`,
/// `source` and `updated`; SDMX-JSON's structure name, sender and `prepared`; PC-Axis TITLE,
/// SOURCE and LAST-UPDATED; an SDMX-ML header's Sender and Prepared; a CSV preamble's date.
fn metadata(format: Format, bytes: &[u8]) -> Meta {
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => std::borrow::Cow::Borrowed(crate::source::strip_bom(t)),
        Err(_) => encoding_rs::WINDOWS_1252.decode(bytes).0,
    };
    match format {
        Format::PcAxis => Meta {
            title: [
                "DESCRIPTION[en]",
                "TITLE[en]",
                "TITLE",
                "CONTENTS",
                "DESCRIPTION",
            ]
            .iter()
            .find_map(|k| at(px_value(&text, k), &format!("the file's {k}"))),
            publisher: at(px_value(&text, "SOURCE"), "the file's SOURCE"),
            published: ["LAST-UPDATED", "CREATION-DATE"].iter().find_map(|k| {
                at(
                    px_value(&text, k).and_then(|d| date(&d)),
                    &format!("the file's {k}"),
                )
            }),
        },
        Format::SdmxMl => Meta {
            title: None,
            publisher: at(
                xml_attr(&text, "Sender", "id").filter(|s| s != "Unknown"),
                "the message's Sender",
            ),
            published: at(
                xml_text(&text, "Prepared").and_then(|d| date(&d)),
                "the message's Prepared",
            ),
        },
        Format::Csv => Meta {
            published: at(
                text.lines()
                    .take(10)
                    .filter(|l| l.to_ascii_lowercase().contains("updated"))
                    .find_map(|l| l.split(',').find_map(|c| date(c.trim().trim_matches('"')))),
                "the file's preamble",
            ),
            ..Meta::default()
        },
        _ => Meta::default(),
    }
}

fn json_meta(format: Format, doc: &serde_json::Value) -> Meta {
    let s = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).map(str::to_string);
    if format == Format::JsonStat {
        // A 1.x bundle: its first dataset.
        let ds = match doc.get("value") {
            Some(_) => doc,
            None => doc
                .as_object()
                .and_then(|o| o.values().next())
                .unwrap_or(doc),
        };
        return Meta {
            title: at(s(ds.get("label")), "the file's label"),
            publisher: at(s(ds.get("source")), "the file's source"),
            published: at(
                s(ds.get("updated")).and_then(|d| date(&d)),
                "the file's updated",
            ),
        };
    }
    let header = doc.get("meta").or_else(|| doc.get("header"));
    let structure = doc
        .pointer("/data/structures/0")
        .or_else(|| doc.pointer("/data/structure"))
        .or_else(|| doc.get("structure"));
    let sender = header.and_then(|h| h.get("sender"));
    Meta {
        title: at(
            s(structure.and_then(|st| st.get("name"))),
            "the message's structure name",
        ),
        publisher: at(
            s(sender.and_then(|x| x.get("name"))).or_else(|| s(sender.and_then(|x| x.get("id")))),
            "the message's sender",
        ),
        published: at(
            s(header.and_then(|h| h.get("prepared"))).and_then(|d| date(&d)),
            "the message's prepared",
        ),
    }
}

/// A value the file gives (trimmed, not empty), with where it was read.
fn at(v: Option<String>, why: &str) -> Option<(String, String)> {
    v.map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .map(|v| (v, why.to_string()))
}

/// `YYYY-MM-DD` from the start of a date or timestamp (`2026-09-22T11:00`, `20090708 12:44`).
fn date(text: &str) -> Option<String> {
    let t = text.trim();
    let digits: String = t.chars().take(10).filter(char::is_ascii_digit).collect();
    let dashed = t.len() >= 10 && t.as_bytes()[4] == b'-' && t.as_bytes()[7] == b'-';
    let compact = t.len() >= 8 && t[..8].bytes().all(|b| b.is_ascii_digit());
    let d = if dashed || compact {
        digits.get(..8)?
    } else {
        return None;
    };
    let (y, m, day) = (&d[..4], &d[4..6], &d[6..8]);
    let ok = m.parse::<u32>().is_ok_and(|m| (1..=12).contains(&m))
        && day.parse::<u32>().is_ok_and(|d| (1..=31).contains(&d));
    ok.then(|| format!("{y}-{m}-{day}"))
}

/// A PC-Axis keyword's value: its quoted strings joined, up to the `;` that ends it.
fn px_value(text: &str, keyword: &str) -> Option<String> {
    // `KEYWORD=` or, for a keyword given per content, its first `KEYWORD("content")=`.
    let at_line = |i: usize| i == 0 || text.as_bytes()[i - 1] == b'\n';
    let start = text
        .match_indices(&format!("{keyword}="))
        .find(|(i, _)| at_line(*i))
        .map(|(i, _)| i + keyword.len() + 1)
        .or_else(|| {
            let (i, _) = text
                .match_indices(&format!("{keyword}(\""))
                .find(|(i, _)| at_line(*i))?;
            Some(i + text[i..].find(")=")? + 2)
        })?;
    let rest = &text[start..];
    let end = rest
        .find(";\n")
        .or_else(|| rest.find(";\r"))
        .or_else(|| rest.find(';'))?;
    let value: Vec<&str> = rest[..end].split('"').skip(1).step_by(2).collect();
    Some(
        value
            .join(" ")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// The first `<…:NAME …>…</…>` element's text.
fn xml_text(text: &str, name: &str) -> Option<String> {
    let i = text.find(&format!(":{name}>"))? + name.len() + 2;
    Some(text[i..i + text[i..].find('<')?].to_string())
}

/// The attribute `attr` of the first `<…:NAME …>` element.
fn xml_attr(text: &str, name: &str, attr: &str) -> Option<String> {
    let i = text.find(&format!(":{name} "))?;
    let tag = &text[i..i + text[i..].find('>')?];
    let j = tag.find(&format!("{attr}=\""))? + attr.len() + 2;
    Some(tag[j..j + tag[j..].find('"')?].to_string())
}

/// A workbook's sheet, header and metadata rows.
pub fn excel(bytes: &[u8], notes: &mut Vec<String>) -> Result<Table, String> {
    let (options, seen) = crate::source::workbook::guess_layout(bytes, &super::snake)?;
    notes.extend(seen);
    Ok(options)
}

/// PC-Axis opens with `KEYWORD=` or `KEYWORD[lang]=` records and holds `DATA=`.
fn is_pc_axis(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(4096)];
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let word = head
        .iter()
        .take_while(|b| b.is_ascii_uppercase() || **b == b'-')
        .count();
    word >= 3
        && matches!(head.get(word), Some(b'=' | b'[' | b'('))
        && bytes.windows(5).any(|w| w == b"DATA=")
}

/// An SDMX-ML data message; a structure message is not data.
fn xml(text: &str) -> Result<Format, String> {
    let mut reader = quick_xml::Reader::from_str(text);
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e)) => {
                let name = e.local_name();
                let name = String::from_utf8_lossy(name.as_ref()).into_owned();
                return if name == "Structure" {
                    Err("an SDMX structure message (data structure definitions and codelists, no observations), expected a data message: give init the data file, and name this file as the input's `structure`".into())
                } else if name.ends_with("Data") || name == "Data" {
                    Ok(Format::SdmxMl)
                } else {
                    Err(format!("an XML document whose root is <{name}>, expected an SDMX-ML data message (GenericData, StructureSpecificData)"))
                };
            }
            Ok(quick_xml::events::Event::Eof) | Err(_) => {
                return Err("XML without a root element, expected an SDMX-ML data message".into())
            }
            Ok(_) => {}
        }
    }
}

/// SDMX-JSON, JSON-stat, or JSON records (and where they are).
fn json(text: &str) -> Result<Detected, String> {
    let doc: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        let (at, msg) = crate::source::json_syntax_error(text, &e);
        format!("{at}: {msg}")
    })?;
    let has = |v: &serde_json::Value, k: &str| v.get(k).is_some();
    let done = |format, note: &str, options| {
        Ok(Detected {
            format,
            options,
            notes: vec![note.to_string()],
            meta: json_meta(format, &doc),
        })
    };
    if has(&doc, "dataSets") || doc.get("data").is_some_and(|d| has(d, "dataSets")) {
        return done(Format::SdmxJson, "SDMX-JSON (`dataSets`)", Table::new());
    }
    let jsonstat = |v: &serde_json::Value| has(v, "value") && has(v, "dimension");
    let bundle = doc
        .as_object()
        .is_some_and(|o| !o.is_empty() && o.values().all(jsonstat));
    if has(&doc, "class") && has(&doc, "version") || jsonstat(&doc) || bundle {
        return done(
            Format::JsonStat,
            "JSON-stat (`dimension` and `value`)",
            Table::new(),
        );
    }
    let Some(path) = records(&doc, String::new()) else {
        return Err("JSON without an array of records, expected SDMX-JSON, JSON-stat or an array of objects (one per observation)".into());
    };
    let mut options = Table::new();
    let note = if path.is_empty() {
        "JSON records: the document is an array of objects".to_string()
    } else {
        options.insert("records".into(), Value::String(path.clone()));
        format!("JSON records: an array of objects at `{path}`")
    };
    done(Format::Json, &note, options)
}

/// The dotted path to the largest array of objects (the first of equal ones, breadth first).
fn records(doc: &serde_json::Value, path: String) -> Option<String> {
    let mut queue = std::collections::VecDeque::from([(doc, path)]);
    let mut best: Option<(usize, String)> = None;
    while let Some((v, path)) = queue.pop_front() {
        match v {
            serde_json::Value::Array(a)
                if !a.is_empty()
                    && a.iter().all(|e| e.is_object())
                    && best.as_ref().is_none_or(|(n, _)| a.len() > *n) =>
            {
                best = Some((a.len(), path));
            }
            serde_json::Value::Object(o) => {
                for (k, v) in o {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    queue.push_back((v, p));
                }
            }
            _ => {}
        }
    }
    best.map(|(_, p)| p)
}

/// SDMX-CSV (a `DATAFLOW` or `STRUCTURE` first column) or plain CSV, with its delimiter,
/// preamble and layout.
fn csv(text: &str) -> Result<Detected, String> {
    let (delimiter, header_line, header) = [',', ';', '\t', '|']
        .into_iter()
        .map(|d| {
            let (line, header) = header_of(text, d);
            (d, line, header)
        })
        .max_by_key(|(_, _, h)| h.len())
        .expect("four delimiters");
    if header.len() < 2 {
        return Err("text that is not CSV (no line with two or more fields), expected CSV, JSON, XML or PC-Axis".into());
    }
    let first = header[0].trim().to_ascii_uppercase();
    if first == "DATAFLOW" || first.starts_with("STRUCTURE") {
        return Ok(Detected {
            format: Format::SdmxCsv,
            options: Table::new(),
            notes: vec![format!("SDMX-CSV (first column `{}`)", header[0])],
            meta: Meta::default(),
        });
    }
    let mut options = Table::new();
    let mut notes = vec![format!(
        "CSV with {} columns separated by `{}`",
        header.len(),
        delimiter.escape_default()
    )];
    if delimiter != ',' {
        options.insert("delimiter".into(), Value::String(delimiter.to_string()));
    }
    if header_line > 0 {
        options.insert("skip_lines".into(), Value::Integer(header_line as i64));
        notes.push(format!(
            "{header_line} lines before the header (a preamble) are skipped"
        ));
    }
    let periods = header
        .iter()
        .filter(|h| Period::parse(h.trim()).is_some())
        .count();
    if periods >= 2 {
        options.insert("layout".into(), Value::String("wide".into()));
        notes.push(format!(
            "wide layout: {periods} header cells are periods, one column per period"
        ));
    }
    Ok(Detected {
        format: Format::Csv,
        options,
        notes,
        meta: Meta::default(),
    })
}

/// The header of a CSV text with this delimiter: the first of its first records with the most
/// fields (a preamble has fewer), its 0-based line and its cells.
fn header_of(text: &str, delimiter: char) -> (usize, Vec<String>) {
    let mut reader = ::csv::ReaderBuilder::new()
        .delimiter(delimiter as u8)
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut best: (usize, Vec<String>) = (0, Vec::new());
    for record in reader.records().take(60) {
        let Ok(record) = record else { break };
        let cells: Vec<&str> = record.iter().collect();
        let width = cells
            .iter()
            .rposition(|c| !c.is_empty())
            .map_or(0, |i| i + 1);
        if width > best.1.len() {
            // Lines before the record's first byte: its position is where the previous
            // record ended, before any blank lines (and the reader's line count skips them).
            let at = record.position().map_or(0, |p| p.byte()) as usize;
            let bytes = text.as_bytes();
            let start = at
                + bytes[at.min(bytes.len())..]
                    .iter()
                    .take_while(|b| matches!(b, b'\r' | b'\n'))
                    .count();
            let line = bytes[..start.min(bytes.len())]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            best = (line, record.iter().map(str::to_string).collect());
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_told_from_their_bytes() {
        let f = |b: &[u8]| format(b).map(|d| d.format);
        assert_eq!(
            f(b"DATAFLOW,FREQ,TIME_PERIOD,OBS_VALUE\nA:B(1.0),A,2020,1\n"),
            Ok(Format::SdmxCsv)
        );
        assert_eq!(f(b"STRUCTURE;STRUCTURE_ID;A\nx;y;z\n"), Ok(Format::SdmxCsv));
        assert_eq!(f(b"geo;year;value\nDE;2020;1\n"), Ok(Format::Csv));
        assert_eq!(f(b"CHARSET=\"ANSI\";\nDATA=\n1 2;\n"), Ok(Format::PcAxis));
        assert_eq!(f(br#"{"data":{"dataSets":[]}}"#), Ok(Format::SdmxJson));
        assert_eq!(
            f(br#"{"version":"2.0","class":"dataset","value":[]}"#),
            Ok(Format::JsonStat)
        );
        assert_eq!(
            f(br#"{"a":{"dimension":{},"value":[]}}"#),
            Ok(Format::JsonStat)
        );
        assert_eq!(f(br#"{"x":{"rows":[{"a":1}]}}"#), Ok(Format::Json));
        assert_eq!(
            f(b"<?xml version=\"1.0\"?><m:StructureSpecificData/>"),
            Ok(Format::SdmxMl)
        );
        assert!(f(b"<?xml version=\"1.0\"?><mes:Structure/>")
            .unwrap_err()
            .contains("structure message"));
        assert_eq!(f(b"PK\x03\x04rest"), Ok(Format::Excel));
    }

    #[test]
    fn a_file_says_its_title_publisher_and_date() {
        let m = format(
            br#"{"class":"dataset","version":"2.0","label":"Unemployment","source":"ESTAT","updated":"2026-09-22T11:00:00+0200","value":[],"dimension":{}}"#,
        )
        .unwrap()
        .meta;
        assert_eq!(m.title.unwrap().0, "Unemployment");
        assert_eq!(m.publisher.unwrap().0, "ESTAT");
        assert_eq!(m.published.unwrap().0, "2026-09-22");
        let px = "CHARSET=\"ANSI\";\nTITLE=\"Consumer prices by\"\n\"group\";\nSOURCE=\"Statistics Sweden\";\nLAST-UPDATED=\"20090708 12:44\";\nDATA=\n1;\n";
        let m = metadata(Format::PcAxis, px.as_bytes());
        assert_eq!(m.title.unwrap().0, "Consumer prices by group");
        assert_eq!(m.publisher.unwrap().0, "Statistics Sweden");
        assert_eq!(m.published.unwrap().0, "2009-07-08");
        let xml = r#"<m:GenericData><m:Header><m:Prepared>2020-01-16T08:16:20</m:Prepared><m:Sender id="ECB"/></m:Header></m:GenericData>"#;
        let m = metadata(Format::SdmxMl, xml.as_bytes());
        assert_eq!(m.publisher.unwrap().0, "ECB");
        assert_eq!(m.published.unwrap().0, "2020-01-16");
        assert_eq!(date("2024-13-01"), None);
    }

    #[test]
    fn a_csv_preamble_and_a_wide_layout_are_found() {
        let text = "\"Data Source\",\"WDI\",\n\n\"Last Updated\",\"2017\",\n\n\"Name\",\"Code\",\"1960\",\"1961\",\n\"A\",\"B\",\"1\",\"2\",\n";
        let d = format(text.as_bytes()).unwrap();
        assert_eq!(d.options.get("skip_lines"), Some(&Value::Integer(4)));
        assert_eq!(d.options.get("layout"), Some(&Value::String("wide".into())));
        let d = format(b"a;b;c\n1;2;3\n").unwrap();
        assert_eq!(d.options.get("delimiter"), Some(&Value::String(";".into())));
    }
}
