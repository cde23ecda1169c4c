//! Loading never panics, and every error it reports has a position: mutations of the bundled
//! config, and of the data file of every example in examples/formats (CSV long and wide, JSON
//! records, SDMX-CSV, SDMX-JSON, JSON-stat, PC-Axis, Excel .xlsx and .xls), deterministic and seeded, through the whole load
//! pipeline. Every mutation that loads is then served, and both expositions are checked: the
//! text format by `promtool check metrics`, OpenMetrics by the strict reader of tests/common/exposition.rs, and label
//! values with quotes, backslashes and newlines read back exactly from both.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use common::exposition::{check, Sample};

/// xorshift64*: enough randomness for mutations, and reproducible from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// One random edit of `text` at a random character boundary: a token of `tokens` inserted,
/// up to 20 bytes deleted, or the caller's own kind of edit.
fn edit(rng: &mut Rng, text: &mut String, tokens: &[&str], other: fn(&mut String, usize)) {
    let mut at = rng.below(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    match rng.below(3) {
        0 => text.insert_str(at, tokens[rng.below(tokens.len())]),
        1 => {
            let mut end = (at + 1 + rng.below(20)).min(text.len());
            while !text.is_char_boundary(end) {
                end += 1;
            }
            text.replace_range(at..end, "");
        }
        _ => other(text, at),
    }
}

const TOKENS: &[&str] = &[
    "\"",
    "=",
    "[",
    "]",
    "{",
    "}",
    ",",
    "\n",
    "#",
    "nan",
    "-1e999",
    "101",
    "__x",
    "[[metric]]",
    "value = ",
    "labels = { }",
    "unit = \"yuan\"",
    "中",
    "\\",
    "'",
    "year",
    "0",
    "samples_file = \"x.csv\"",
];

#[test]
fn mutated_configs_never_panic_and_every_error_has_a_position() {
    let original =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let (mut accepted, mut rejected) = (0, 0);
    for _ in 0..1500 {
        let mut text = original.clone();
        for _ in 0..1 + rng.below(3) {
            edit(&mut rng, &mut text, TOKENS, |text, at| {
                // The line at `at` written twice.
                let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
                let line_end = text[at..].find('\n').map_or(text.len(), |i| at + i);
                let line = text[line_start..line_end].to_string();
                text.insert_str(line_end, &format!("\n{line}"));
            });
        }
        std::fs::write(&path, &text).unwrap();
        match indicator_exporter::check(Path::new(&path)) {
            Ok(_) => accepted += 1,
            Err(errors) => {
                rejected += 1;
                assert!(!errors.is_empty());
                for d in errors.iter() {
                    assert!(!d.message.is_empty());
                    let file_level = d.message.starts_with("empty dataset")
                        || d.message.starts_with("cannot read");
                    if d.line == usize::MAX {
                        assert!(d.message.starts_with("… and "), "{d}");
                        continue;
                    }
                    assert!(
                        d.line > 0 || file_level,
                        "no position: {d}\n--- config ---\n{text}"
                    );
                    if d.line > 0 {
                        assert!(d.line <= text.lines().count() + 1, "line out of range: {d}");
                    }
                }
            }
        }
    }
    eprintln!("{accepted} mutations accepted, {rejected} rejected");
    assert!(
        rejected > 500,
        "the mutations should mostly break the config"
    );
}

/// Label values that must survive both exposition formats exactly.
const HOSTILE: &[&str] = &[
    "quote\"d",
    "back\\slash",
    "new\nline",
    "all\"\\\nof them\\",
    "\\n literally",
    "tab\tand\rcarriage",
    "x\n# EOF\n",
    "{a=\"b\"} 1",
    "\u{2028}sep 🙂 ü 中",
];

/// Text that replaces a run of digits: numbers no publisher writes.
const NUMBERS: &[&str] = &[
    "1e999",
    "-1e999",
    "1e-400",
    "18446744073709551616",
    "1.7976931348623157e309",
    "NaN",
    "inf",
    "-0",
    "0x1F",
    "1_000",
    "99999999999999999999999999999999999999999999999999999999999999999999999999999999",
];

/// Bytes inserted at random: the structure of every format, and what text must not contain.
const DATA_TOKENS: &[&[u8]] = &[
    b"\"",
    b",",
    b"\n",
    b"\r\n",
    b";",
    b"{",
    b"}",
    b"[",
    b"]",
    b":",
    b"\\",
    b"\0",
    b"\0\0\0\0",
    b"\xff",
    b"\xc3\x28",
    b"\xe2\x82",
    "\u{feff}".as_bytes(),
    b"null",
    b"\"\":",
    b"<",
    b"/>",
    b"&",
    b"&x;",
    b"<!DOCTYPE m [<!ENTITY x \"xx\">]>",
];

/// One example of examples/formats, with its data file.
struct Example {
    name: String,
    /// The config, its `file =` pointing at `data.<ext>` beside it.
    config: String,
    data: Vec<u8>,
    file_name: String,
    json: bool,
    /// A workbook: codes are replaced inside the zip (.xlsx) or not at all (.xls).
    workbook: bool,
    px: bool,
    xml: bool,
}

fn examples() -> Vec<Example> {
    let dir = common::repo("examples/formats");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("examples/formats")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for p in paths {
        let text = std::fs::read_to_string(&p).expect("example config");
        let line = text
            .lines()
            .find(|l| l.starts_with("file = \""))
            .unwrap_or_else(|| panic!("{}: no `file =` line", p.display()));
        let rel = line["file = \"".len()..].trim_end_matches('"');
        let ext = Path::new(rel)
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("txt");
        let file_name = format!("data.{ext}");
        let data = std::fs::read(dir.join(rel)).expect("example data file");
        let mut config = text.replace(line, &format!("file = \"{file_name}\""));
        // An SDMX structure is not mutated: the case reads it where it is.
        if let Some(s) = text.lines().find(|l| l.starts_with("structure = \"")) {
            let rel = s["structure = \"".len()..].trim_end_matches('"');
            let abs = format!("structure = \"{}\"", dir.join(rel).display());
            config = config.replace(s, &abs);
        }
        out.push(Example {
            name: p.file_name().unwrap().to_string_lossy().into_owned(),
            config,
            data,
            json: ext == "json",
            workbook: matches!(ext, "xlsx" | "xls" | "ods"),
            px: ext == "px",
            xml: ext == "xml",
            file_name,
        });
    }
    assert_eq!(out.len(), 18, "one example per publisher format variant");
    out
}

/// A case: which example, what was done to its data file, and the result.
struct Case {
    example: usize,
    what: String,
    data: Vec<u8>,
    /// The hostile value put in place of a label value, which must be served.
    hostile: Option<&'static str>,
}

/// Mutations per example; the World Bank file is large, so fewer of it.
fn count_for(e: &Example) -> usize {
    if e.data.len() > 100_000 {
        16
    } else {
        48
    }
}

fn cases(examples: &[Example]) -> Vec<Case> {
    let mut rng = Rng(0xDA7A_F11E_5EED_0002);
    let mut out = Vec::new();
    for (i, e) in examples.iter().enumerate() {
        for _ in 0..count_for(e) {
            let (what, data) = mutate(&mut rng, e);
            out.push(Case {
                example: i,
                what,
                data,
                hostile: None,
            });
        }
        // Every hostile value in place of a code that certainly is a label value: the first
        // one served.
        let dir = tempfile::tempdir().unwrap();
        let dataset = indicator_exporter::check(&write_case(dir.path(), e, &e.data))
            .unwrap_or_else(|err| panic!("{}: {err}", e.name));
        let m = dataset
            .metrics
            .iter()
            .find(|m| !m.is_empty())
            .expect("a metric with series");
        let j = (0..m.label_names.len())
            .find(|&j| m.label_names[j] != dataset.period_label)
            .expect("a label beside the period");
        let code = dataset.symbol(m.labels(0)[j]).to_string();
        for hostile in HOSTILE {
            if let Some((_, data)) = replace_code(e, &e.data, &mut rng, Some(&code), hostile) {
                out.push(Case {
                    example: i,
                    what: format!("label value {code:?} replaced by {hostile:?}"),
                    data,
                    hostile: Some(hostile),
                });
            }
        }
    }
    out
}

fn mutate(rng: &mut Rng, e: &Example) -> (String, Vec<u8>) {
    let mut d = e.data.clone();
    let at = rng.below(d.len() + 1);
    match rng.below(10) {
        0 => {
            d.truncate(at);
            (format!("truncated at byte {at}"), d)
        }
        1 => {
            let n = 1 + rng.below(3);
            for _ in 0..n {
                let i = rng.below(d.len());
                d[i] ^= 1 + rng.below(255) as u8;
            }
            (format!("{n} bytes flipped"), d)
        }
        2 | 3 => {
            // A run of digits (a figure, a year, a code) replaced.
            let starts: Vec<usize> = (0..d.len())
                .filter(|&i| d[i].is_ascii_digit() && (i == 0 || !d[i - 1].is_ascii_digit()))
                .collect();
            let Some(&s) = starts.get(rng.below(starts.len().max(1))) else {
                return (String::from("unchanged"), d);
            };
            let end = s + d[s..].iter().take_while(|b| b.is_ascii_digit()).count();
            let n = NUMBERS[rng.below(NUMBERS.len())];
            d.splice(s..end, n.bytes());
            (format!("number at byte {s} replaced by {n}"), d)
        }
        4 => {
            let depth = 200 + rng.below(5000);
            let open = if rng.below(2) == 0 { "[" } else { "{\"a\":" };
            let mut nest = open.repeat(depth).into_bytes();
            nest.extend("]".repeat(depth).bytes());
            d.splice(at..at, nest);
            (format!("{depth} levels of nesting at byte {at}"), d)
        }
        5..=7 => {
            let hostile = HOSTILE[rng.below(HOSTILE.len())];
            let replaced = replace_code(e, &d, rng, None, hostile);
            match replaced {
                Some((code, data)) => (format!("code {code:?} replaced by {hostile:?}"), data),
                None => (String::from("unchanged"), d),
            }
        }
        8 => {
            // A line repeated (duplicate rows) or dropped.
            let lines: Vec<&[u8]> = e.data.split(|&b| b == b'\n').collect();
            let i = rng.below(lines.len());
            let mut out: Vec<&[u8]> = lines.clone();
            let what = if rng.below(2) == 0 {
                out.insert(i, lines[i]);
                format!("line {} repeated", i + 1)
            } else {
                out.remove(i);
                format!("line {} dropped", i + 1)
            };
            (what, out.join(&b'\n'))
        }
        _ => {
            let t = DATA_TOKENS[rng.below(DATA_TOKENS.len())];
            d.splice(at..at, t.iter().copied());
            (
                format!("{:?} inserted at byte {at}", String::from_utf8_lossy(t)),
                d,
            )
        }
    }
}

fn replace_code(
    e: &Example,
    data: &[u8],
    rng: &mut Rng,
    fixed: Option<&str>,
    hostile: &str,
) -> Option<(String, Vec<u8>)> {
    if e.workbook {
        xlsx_replace(data, rng, fixed, hostile)
    } else if e.json {
        json_replace(data, rng, fixed, hostile)
    } else if e.px {
        px_replace(data, rng, fixed, hostile)
    } else if e.xml {
        xml_replace(data, rng, fixed, hostile)
    } else {
        csv_replace(data, rng, fixed, hostile)
    }
}

/// A code-like cell of a CSV file replaced, wherever it occurs, by `hostile` (quoted as CSV
/// quotes it).
fn csv_replace(
    data: &[u8],
    rng: &mut Rng,
    fixed: Option<&str>,
    hostile: &str,
) -> Option<(String, Vec<u8>)> {
    let rows: Vec<csv::ByteRecord> = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(data)
        .byte_records()
        .collect::<Result<_, _>>()
        .ok()?;
    let code = fixed.map(str::to_string).or_else(|| {
        (0..50).find_map(|_| {
            let row = rows.get(1 + rng.below(rows.len().saturating_sub(1).max(1)))?;
            let cell = row.get(rng.below(row.len().max(1)))?;
            let s = std::str::from_utf8(cell).ok()?;
            let code_like = (1..=12).contains(&s.len()) && s.parse::<f64>().is_err();
            code_like.then(|| s.to_string())
        })
    })?;
    // Quoted fields are replaced in place: rewriting the file would drop its empty lines,
    // which `skip_lines` counts.
    let quoted = format!("\"{code}\"");
    if let Some(at) = find(data, quoted.as_bytes()) {
        let mut out = data[..at].to_vec();
        let mut rest = &data[at..];
        let with = format!("\"{}\"", hostile.replace('"', "\"\""));
        while let Some(i) = find(rest, quoted.as_bytes()) {
            out.extend_from_slice(&rest[..i]);
            out.extend_from_slice(with.as_bytes());
            rest = &rest[i + quoted.len()..];
        }
        out.extend_from_slice(rest);
        return Some((code, out));
    }
    let mut w = csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(Vec::new());
    for row in &rows {
        let cells: Vec<&[u8]> = row
            .iter()
            .map(|c| {
                if c == code.as_bytes() {
                    hostile.as_bytes()
                } else {
                    c
                }
            })
            .collect();
        w.write_record(&cells).ok()?;
    }
    Some((code, w.into_inner().ok()?))
}

/// A code-like shared string of an .xlsx replaced by `hostile` (escaped as XML escapes it,
/// line ends as character references so that no parser normalises them), the zip rewritten;
/// None for an .xls or a zip that does not open.
fn xlsx_replace(
    data: &[u8],
    rng: &mut Rng,
    fixed: Option<&str>,
    hostile: &str,
) -> Option<(String, Vec<u8>)> {
    use std::io::{Read, Write};
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(data)).ok()?;
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..z.len() {
        let mut f = z.by_index(i).ok()?;
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).ok()?;
        entries.push((f.name().to_string(), bytes));
    }
    let k = entries
        .iter()
        .position(|(n, _)| n == "xl/sharedStrings.xml")?;
    let xml = String::from_utf8(entries[k].1.clone()).ok()?;
    let texts: Vec<&str> = xml
        .split("<t>")
        .skip(1)
        .filter_map(|t| t.split("</t>").next())
        .filter(|t| (1..=12).contains(&t.len()) && t.parse::<f64>().is_err() && !t.contains('&'))
        .collect();
    let code = match fixed {
        Some(c) => c.to_string(),
        None => texts.get(rng.below(texts.len().max(1)))?.to_string(),
    };
    let escaped = hostile
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\n', "&#10;")
        .replace('\r', "&#13;")
        .replace('\t', "&#9;");
    let replaced = xml.replace(&format!("<t>{code}</t>"), &format!("<t>{escaped}</t>"));
    if replaced == xml {
        return None;
    }
    entries[k].1 = replaced.into_bytes();
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, bytes) in &entries {
        let o = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        w.start_file(name.as_str(), o).ok()?;
        w.write_all(bytes).ok()?;
    }
    Some((code, w.finish().ok()?.into_inner()))
}

/// Whether a message is positioned at a workbook cell: `Data1!C12: …`, `'My sheet'!A1: …`.
fn at_cell(message: &str) -> bool {
    let Some((sheet, rest)) = message.split_once('!') else {
        return false;
    };
    let Some((cell, _)) = rest.split_once(": ") else {
        return false;
    };
    let letters = cell.trim_end_matches(|c: char| c.is_ascii_digit());
    !sheet.is_empty()
        && !sheet.contains(": ")
        && !letters.is_empty()
        && letters.len() < cell.len()
        && letters.chars().all(|c| c.is_ascii_uppercase())
}

/// A quoted code-like string of a PC-Axis file replaced, wherever it occurs, by `hostile` in
/// the file's code page; None when PC-Axis cannot write it (it has no escapes: no quote, no
/// line break) or the code page has no such characters.
fn px_replace(
    data: &[u8],
    rng: &mut Rng,
    fixed: Option<&str>,
    hostile: &str,
) -> Option<(String, Vec<u8>)> {
    if hostile.contains(['"', '\n', '\r']) {
        return None;
    }
    let encoding = if find(data, b"CODEPAGE=\"iso-8859-15\"").is_some() {
        encoding_rs::ISO_8859_15
    } else {
        encoding_rs::WINDOWS_1252
    };
    let (text, _, _) = encoding.decode(data);
    let code = match fixed {
        Some(c) => c.to_string(),
        None => {
            let quoted: Vec<&str> = text
                .split('"')
                .skip(1)
                .step_by(2)
                .filter(|s| (1..=12).contains(&s.len()) && s.parse::<f64>().is_err())
                .collect();
            quoted.get(rng.below(quoted.len().max(1)))?.to_string()
        }
    };
    let (with, _, unmappable) = encoding.encode(hostile);
    if unmappable {
        return None;
    }
    let quoted = format!("\"{code}\"");
    let (quoted, _, _) = encoding.encode(&quoted);
    let mut out = Vec::with_capacity(data.len());
    let mut rest = data;
    while let Some(i) = find(rest, &quoted) {
        out.extend_from_slice(&rest[..i]);
        out.push(b'"');
        out.extend_from_slice(&with);
        out.push(b'"');
        rest = &rest[i + quoted.len()..];
    }
    out.extend_from_slice(rest);
    Some((code, out))
}

/// A code-like XML attribute value replaced, wherever it is a whole value, by `hostile` (escaped
/// as XML escapes it; line breaks and tabs as character references, which attribute value
/// normalisation keeps).
fn xml_replace(
    data: &[u8],
    rng: &mut Rng,
    fixed: Option<&str>,
    hostile: &str,
) -> Option<(String, Vec<u8>)> {
    let text = std::str::from_utf8(data).ok()?;
    let values: Vec<&str> = text
        .split("=\"")
        .skip(1)
        .filter_map(|v| v.split('"').next())
        .filter(|v| (1..=12).contains(&v.len()) && v.parse::<f64>().is_err())
        .filter(|v| !v.contains(['<', '&', ':']))
        .collect();
    let code = match fixed {
        Some(c) => c.to_string(),
        None => values.get(rng.below(values.len().max(1)))?.to_string(),
    };
    let mut escaped = String::new();
    for c in hostile.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            '\n' => escaped.push_str("&#10;"),
            '\r' => escaped.push_str("&#13;"),
            '\t' => escaped.push_str("&#9;"),
            c => escaped.push(c),
        }
    }
    let out = text.replace(&format!("=\"{code}\""), &format!("=\"{escaped}\""));
    Some((code, out.into_bytes()))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A code-like string of a JSON file (as a value or as a key) replaced, wherever it occurs,
/// by `hostile` (escaped as JSON escapes it).
fn json_replace(
    data: &[u8],
    rng: &mut Rng,
    fixed: Option<&str>,
    hostile: &str,
) -> Option<(String, Vec<u8>)> {
    fn strings(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::String(s) => out.push(s.clone()),
            serde_json::Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
            serde_json::Value::Object(o) => {
                for (k, x) in o {
                    out.push(k.clone());
                    strings(x, out);
                }
            }
            _ => {}
        }
    }
    fn replace(v: &mut serde_json::Value, code: &str, hostile: &str) {
        match v {
            serde_json::Value::String(s) if s == code => *s = hostile.to_string(),
            serde_json::Value::Array(a) => a.iter_mut().for_each(|x| replace(x, code, hostile)),
            serde_json::Value::Object(o) => {
                let taken = std::mem::take(o);
                for (k, mut x) in taken {
                    replace(&mut x, code, hostile);
                    o.insert(if k == code { hostile.to_string() } else { k }, x);
                }
            }
            _ => {}
        }
    }
    let mut v: serde_json::Value = serde_json::from_slice(data).ok()?;
    let mut all = Vec::new();
    strings(&v, &mut all);
    all.retain(|s| (1..=12).contains(&s.len()) && s.parse::<f64>().is_err());
    let code = match fixed {
        Some(c) => c.to_string(),
        None => all.get(rng.below(all.len().max(1)))?.clone(),
    };
    replace(&mut v, &code, hostile);
    Some((code, serde_json::to_vec_pretty(&v).ok()?))
}

/// Writes the example's config and the case's data into `dir`; the config's path.
fn write_case(dir: &Path, e: &Example, data: &[u8]) -> PathBuf {
    let config = dir.join("config.toml");
    std::fs::write(&config, &e.config).expect("write config");
    std::fs::write(dir.join(&e.file_name), data).expect("write data");
    config
}

/// Loads a case; a panic is a test failure that names the case.
fn load_case(
    config: &Path,
    what: &str,
) -> Result<indicator_exporter::dataset::Dataset, indicator_exporter::diagnostic::Diagnostics> {
    std::panic::catch_unwind(|| indicator_exporter::check(config))
        .unwrap_or_else(|_| panic!("loading panicked: {} with {what}", config.display()))
}

/// Problems of a workbook as a whole: it does not open, is too large, or has no such sheet.
const WORKBOOK_WHOLE_FILE: &[&str] = &[
    "unreadable workbook",
    "the workbook expands",
    "a sheet declares",
    "the sheets repeat cells",
    "the sheet has more than",
    "no sheet",
    "sheet ",
];

/// Every problem has a place: a line and column, a JSON path, or it is about the whole file.
fn assert_positioned(
    errors: &indicator_exporter::diagnostic::Diagnostics,
    data: &[u8],
    what: &str,
) {
    let lines = data.split(|&b| b == b'\n').count();
    for d in errors.iter() {
        assert!(!d.message.is_empty(), "{what}: empty message");
        assert!(
            d.message.chars().count() <= indicator_exporter::diagnostic::MAX_MESSAGE_CHARS,
            "{what}: message not bounded: {d}"
        );
        if d.line == usize::MAX {
            assert!(d.message.starts_with("… and "), "{what}: {d}");
            continue;
        }
        let whole_file = d.message.starts_with("empty dataset")
            || d.message.starts_with("cannot read")
            || d.message.starts_with("display names in language")
            || WORKBOOK_WHOLE_FILE.iter().any(|p| d.message.starts_with(p));
        assert!(
            d.line > 0 || d.message.starts_with('$') || at_cell(&d.message) || whole_file,
            "{what}: no position: {d}"
        );
        if d.line > 0 && d.path.ends_with("config.toml") {
            assert!(d.line <= 60, "{what}: line out of range of the config: {d}");
        } else if d.line > 0 {
            assert!(
                d.line <= lines,
                "{what}: line out of range of the file: {d}"
            );
        }
    }
}

#[test]
fn mutated_data_files_of_every_format_never_panic_and_every_error_has_a_position() {
    let started = Instant::now();
    let examples = examples();
    let dir = tempfile::tempdir().unwrap();
    let mut tally: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let all = cases(&examples);
    for c in &all {
        let e = &examples[c.example];
        let config = write_case(dir.path(), e, &c.data);
        let what = format!("{} with {}", e.name, c.what);
        let t = tally.entry(e.name.as_str()).or_default();
        match load_case(&config, &what) {
            Ok(_) => t.0 += 1,
            Err(errors) => {
                t.1 += 1;
                assert!(!errors.is_empty());
                assert_positioned(&errors, &c.data, &what);
            }
        }
    }
    let (accepted, rejected) = tally.values().fold((0, 0), |(a, r), (x, y)| (a + x, r + y));
    eprintln!(
        "{} data-file mutations in {:.1?}: {accepted} accepted, {rejected} rejected; per example (accepted, rejected): {tally:?}",
        all.len(),
        started.elapsed()
    );
    assert!(
        rejected > all.len() / 3,
        "the mutations should mostly break the files"
    );
    assert!(
        accepted > 40,
        "enough mutations load to check what is served"
    );
}

/// `# HELP`, `# TYPE` and sample lines of a text body with every family renamed `c{n}_…`, so
/// that many bodies make one valid exposition for one `promtool` run.
fn renamed(body: &str, n: usize) -> String {
    let mut out = String::with_capacity(body.len() + 4096);
    for line in body.lines() {
        if let Some(rest) = line
            .strip_prefix("# HELP ")
            .or_else(|| line.strip_prefix("# TYPE "))
        {
            out.push_str(&line[..7]);
            out.push_str(&format!("c{n}_{rest}\n"));
        } else if line.starts_with('#') || line.is_empty() {
            out.push_str(line);
            out.push('\n');
        } else {
            out.push_str(&format!("c{n}_{line}\n"));
        }
    }
    out
}

#[test]
fn every_accepted_mutation_is_served_as_valid_text_and_openmetrics() {
    let started = Instant::now();
    let examples = examples();
    let all = cases(&examples);
    let mut text_batch = String::new();
    let mut batch_lines = 0;
    // Line ranges of the batch, to name the case promtool complains about.
    let mut batch_cases: Vec<(usize, String)> = Vec::new();
    let mut served = 0;
    let mut hostile_checked = 0;
    for (i, e) in examples.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let config = write_case(dir.path(), e, &e.data);
        let server = common::Server::start(&config);
        for (n, c) in all.iter().enumerate().filter(|(_, c)| c.example == i) {
            let what = format!("{} with {}", e.name, c.what);
            std::fs::write(dir.path().join(&e.file_name), &c.data).unwrap();
            // The reload runs the same pipeline as the fuzz test: 200 for what loads.
            let r = server.post("/-/reload");
            if r.status != 200 {
                assert_eq!(r.status, 500, "{what}: reload: {}", r.text());
                continue;
            }
            let text = server.metrics();
            let om = server
                .get_with("/metrics", &[("Accept", common::OPENMETRICS)])
                .text();
            let from_text = check(&text, false)
                .unwrap_or_else(|err| panic!("{what}: text format: {err}"))
                .samples;
            let from_om = check(&om, true)
                .unwrap_or_else(|err| panic!("{what}: OpenMetrics: {err}"))
                .samples;
            // The same samples in both, label values read back the same.
            let key = |s: &Sample| (s.name.clone(), s.labels.clone(), s.text.clone());
            let dataset_only = |s: &&Sample| {
                !s.name.starts_with("indicator_exporter_") && !s.name.starts_with("process_")
            };
            let a: Vec<_> = from_text.iter().filter(dataset_only).map(key).collect();
            let b: Vec<_> = from_om.iter().filter(dataset_only).map(key).collect();
            assert_eq!(a, b, "{what}: the formats disagree");
            // A hostile value put in place of a label value is served exactly, in both
            // formats (they agree, above).
            if let Some(h) = c.hostile {
                let found = from_om.iter().any(|s| s.labels.iter().any(|(_, v)| v == h));
                assert!(found, "{what}: label value {h:?} not read back");
                hostile_checked += 1;
            }
            let body = renamed(&text, n);
            batch_cases.push((batch_lines, what));
            batch_lines += body.lines().count();
            text_batch.push_str(&body);
            served += 1;
        }
    }
    // One promtool run for every body.
    if let Err(report) = common::promtool_check_metrics(&text_batch) {
        let line: usize = report
            .split("line ")
            .nth(1)
            .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let case = batch_cases
            .iter()
            .rev()
            .find(|(start, _)| *start < line)
            .map_or("?", |(_, w)| w.as_str());
        panic!("promtool check metrics (case {case}): {report}");
    }
    eprintln!(
        "{served} accepted mutations served and checked ({hostile_checked} hostile label values read back) in {:.1?}, {} lines through promtool",
        started.elapsed(),
        batch_lines
    );
    assert!(
        served > 40 && hostile_checked > 5,
        "{served} served, {hostile_checked} hostile"
    );
}

/// YAML pieces that break a web config in the ways people and attackers do.
const YAML_TOKENS: &[&str] = &[
    ":",
    "- ",
    "  ",
    "\t",
    "{",
    "}",
    "[",
    "]",
    "'",
    "\"",
    "&a ",
    "*a",
    "!!binary ",
    "#",
    "\n",
    "\0",
    "\u{FEFF}",
    "~",
    "null",
    "99999999999999999999999",
    "-1",
    "yes",
    "cert_file: ",
    "basic_auth_users:\n  x: y\n",
    "tls_server_config:\n",
    "中",
    "\\",
    "%YAML 1.1\n---\n",
];

#[test]
fn mutated_web_configs_never_panic_and_every_error_has_a_position() {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/web");
    let dir = tempfile::tempdir().unwrap();
    // The certificates the file names, beside it, as in the fixture folder.
    for f in ["ca.crt", "server.crt", "server.key"] {
        std::fs::copy(format!("{fixtures}/{f}"), dir.path().join(f)).unwrap();
    }
    let original = std::fs::read_to_string(format!("{fixtures}/every-key.yml")).unwrap();
    let path = dir.path().join("web.yml");
    std::fs::write(&path, &original).unwrap();
    assert!(
        indicator_exporter::http::web::check(&path).is_ok(),
        "the unmutated file is valid"
    );
    let mut rng = Rng(0x5EED_7E57_0000_0002);
    let (mut accepted, mut rejected) = (0, 0);
    for case in 0..1000 {
        let mut text = original.clone();
        if case % 100 == 99 {
            // Deep nesting and a huge line: bounded work, a positioned error.
            let depth = 5_000 + rng.below(5_000);
            text.push_str(&format!("x: {}{}\n", "[".repeat(depth), "]".repeat(depth)));
        }
        for _ in 0..1 + rng.below(3) {
            edit(&mut rng, &mut text, YAML_TOKENS, |text, at| {
                text.truncate(at)
            });
        }
        std::fs::write(&path, &text).unwrap();
        match indicator_exporter::http::web::check(&path) {
            Ok(_) => accepted += 1,
            Err(errors) => {
                rejected += 1;
                assert!(!errors.is_empty());
                assert!(errors.len() <= 101, "unbounded: {} errors", errors.len());
                for d in errors.iter() {
                    assert!(!d.message.is_empty() && d.message.len() <= 480, "{d}");
                    if d.line == usize::MAX {
                        assert!(d.message.starts_with("… and "), "{d}");
                        continue;
                    }
                    // Problems of a file as a whole (unreadable, empty) have no line.
                    let file_level = d.line == 0 && d.path != path;
                    assert!(
                        d.line > 0 || file_level || d.message.contains("empty"),
                        "no position: {d}\n--- web config ---\n{text}"
                    );
                }
            }
        }
    }
    eprintln!("web config: {accepted} mutations accepted, {rejected} rejected");
    assert!(rejected > 300, "the mutations should mostly break the file");
}
