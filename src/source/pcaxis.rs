//! PC-Axis (`.px`), the format of PxWeb and of many statistics offices: `KEYWORD[lang]("sub")=
//! value;` records, then `DATA=` with the cells in row-major order over the `STUB` and
//! `HEADING` variables (the last varies fastest). The file names its own code page. Yields one
//! row per cell: each variable's code (the `TIMEVAL` variable as [`Role::Time`], its periods
//! in the forms the pipeline reads), `value`, `status` (why a cell has no figure) and `unit`.

use std::collections::HashMap;

use encoding_rs::Encoding;

use super::{Component, Origin, Role, Sink};
use crate::dataset::calendar::Period;

/// Options of the PC-Axis reader.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PcAxisOptions {
    /// The language whose variable names become component ids and whose `CODES` (else
    /// `VALUES`) become label values. Default: the file's `LANGUAGE`.
    pub language: Option<String>,
}

/// Cells a file may declare: far above real tables, so the product of the VALUES counts is
/// compared in range.
const MAX_CELLS: u64 = 1 << 32;

/// Values the records before DATA may hold in all: real headers hold thousands. Each value
/// costs some fifty bytes, so this bounds what a hostile header (`A=a,a,a,…`) makes the reader
/// keep, whatever the file's size.
const MAX_ITEMS: usize = 1_000_000;

/// A place in the decoded text: 1-based line and column in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pos {
    line: u32,
    col: u32,
}

impl Pos {
    fn origin(self) -> Origin {
        Origin::At {
            line: self.line,
            col: self.col,
        }
    }
}

/// One value of a keyword: a string (quoted parts joined) or a bare word (`YES`, `2`).
#[derive(Debug, Clone, PartialEq)]
struct Item {
    text: String,
    quoted: bool,
    at: Pos,
}

/// `TLIST(kind)` or `TLIST(kind, "from"-"to")` in a `TIMEVAL`.
#[derive(Debug, Clone, PartialEq)]
struct Tlist {
    kind: String,
    range: Option<(Item, Item)>,
    at: Pos,
}

/// One `KEYWORD[lang]("sub", …)=items;` record.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    keyword: String,
    lang: String,
    subs: Vec<String>,
    tlist: Option<Tlist>,
    items: Vec<Item>,
    at: Pos,
}

/// Walks the decoded text, counting lines and columns.
struct Cursor<'t> {
    text: &'t str,
    i: usize,
    pos: Pos,
}

impl<'t> Cursor<'t> {
    fn new(text: &'t str) -> Self {
        Cursor {
            text,
            i: 0,
            pos: Pos { line: 1, col: 1 },
        }
    }

    fn peek(&self) -> Option<char> {
        self.text[self.i..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.i += c.len_utf8();
        if c == '\n' {
            self.pos.line = self.pos.line.saturating_add(1);
            self.pos.col = 1;
        } else {
            self.pos.col = self.pos.col.saturating_add(1);
        }
        Some(c)
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    /// Skips past the next `;` outside quotes (recovery after a bad record).
    fn skip_record(&mut self) {
        let mut quoted = false;
        while let Some(c) = self.bump() {
            match c {
                '"' => quoted = !quoted,
                '\n' => quoted = false,
                ';' if !quoted => return,
                _ => {}
            }
        }
    }

    /// A quoted string from the opening `"`, which must close on its line.
    fn quoted(&mut self) -> Result<String, (Pos, String)> {
        let start = self.pos;
        self.bump();
        let from = self.i;
        loop {
            match self.peek() {
                Some('"') => {
                    let s = self.text[from..self.i].to_string();
                    self.bump();
                    return Ok(s);
                }
                Some('\n' | '\r') | None => {
                    return Err((
                        start,
                        "unterminated string, expected a closing `\"` on the same line".into(),
                    ))
                }
                Some(_) => {
                    self.bump();
                }
            }
        }
    }

    /// A bare word: up to whitespace or punctuation.
    fn word(&mut self) -> &'t str {
        let from = self.i;
        while self.peek().is_some_and(|c| {
            !c.is_whitespace() && !matches!(c, ',' | ';' | '"' | '(' | ')' | '=' | '[')
        }) {
            self.bump();
        }
        &self.text[from..self.i]
    }
}

/// Describes a character found where something else was expected.
fn found(c: Option<char>) -> String {
    match c {
        None => "the end of the file".into(),
        Some('\n' | '\r') => "the end of the line".into(),
        Some(c) => format!("`{c}`"),
    }
}

/// The metadata records and where `DATA=` starts (the cursor just after its `=`).
struct Parsed<'t> {
    entries: Vec<Entry>,
    data: Option<(Pos, Cursor<'t>)>,
    /// The header held more than [`MAX_ITEMS`] values (reported): nothing is read.
    stopped: bool,
}

/// Reads every record up to `DATA=`, reporting each malformed one and going on at the next.
fn parse<'t>(text: &'t str, sink: &mut dyn Sink) -> Parsed<'t> {
    let mut c = Cursor::new(text);
    let mut entries = Vec::new();
    let mut budget = MAX_ITEMS;
    loop {
        c.skip_ws();
        if c.peek().is_none() {
            return Parsed {
                entries,
                data: None,
                stopped: false,
            };
        }
        let at = c.pos;
        match record(&mut c, at, &mut budget) {
            Ok(Record::Data) => {
                return Parsed {
                    entries,
                    data: Some((at, c)),
                    stopped: false,
                }
            }
            Ok(Record::Entry(e)) => entries.push(*e),
            Err((pos, message)) => {
                sink.error(pos.origin(), message);
                if budget == 0 {
                    return Parsed {
                        entries: Vec::new(),
                        data: None,
                        stopped: true,
                    };
                }
                c.skip_record();
            }
        }
    }
}

enum Record {
    Entry(Box<Entry>),
    Data,
}

/// One record from its keyword to its `;` (or, for `DATA`, to its `=`).
fn record(c: &mut Cursor, at: Pos, budget: &mut usize) -> Result<Record, (Pos, String)> {
    let keyword = c.word().to_string();
    if keyword.is_empty() {
        return Err((
            c.pos,
            format!(
                "unexpected {}, expected a keyword such as `VALUES`",
                found(c.peek())
            ),
        ));
    }
    let lang = if c.peek() == Some('[') {
        language(c)?
    } else {
        String::new()
    };
    let subs = if c.peek() == Some('(') {
        sub_keys(c, &keyword, budget)?
    } else {
        Vec::new()
    };
    c.skip_ws();
    if c.peek() != Some('=') {
        return Err((
            c.pos,
            format!(
                "unexpected {} after `{keyword}`, expected `=`",
                found(c.peek())
            ),
        ));
    }
    c.bump();
    if keyword == "DATA" {
        return Ok(Record::Data);
    }
    let mut entry = Entry {
        keyword,
        lang,
        subs,
        tlist: None,
        items: Vec::new(),
        at,
    };
    values(c, &mut entry, budget)?;
    Ok(Record::Entry(Box::new(entry)))
}

/// Counts one more value against the header's [`MAX_ITEMS`].
fn spend(budget: &mut usize, at: Pos) -> Result<(), (Pos, String)> {
    if *budget == 0 {
        return Err((
            at,
            format!("more than {MAX_ITEMS} values before DATA, expected a table header of fewer"),
        ));
    }
    *budget -= 1;
    Ok(())
}

/// The language of `KEYWORD[lang]`, from its `[` to past its `]`.
fn language(c: &mut Cursor) -> Result<String, (Pos, String)> {
    c.bump();
    let from = c.i;
    while c
        .peek()
        .is_some_and(|ch| ch != ']' && ch != '\n' && ch != ';')
    {
        c.bump();
    }
    if c.peek() != Some(']') {
        return Err((
            c.pos,
            format!(
                "unexpected {}, expected `]` closing the language",
                found(c.peek())
            ),
        ));
    }
    let lang = c.text[from..c.i].trim().to_string();
    c.bump();
    Ok(lang)
}

/// The sub-keys of `KEYWORD("sub", …)`, from its `(` to past its `)`.
fn sub_keys(
    c: &mut Cursor,
    keyword: &str,
    budget: &mut usize,
) -> Result<Vec<String>, (Pos, String)> {
    c.bump();
    let mut subs = Vec::new();
    loop {
        c.skip_ws();
        if c.peek() != Some('"') {
            return Err((
                c.pos,
                format!(
                    "unexpected {}, expected a quoted name in `{keyword}(…)`",
                    found(c.peek())
                ),
            ));
        }
        spend(budget, c.pos)?;
        subs.push(c.quoted()?);
        c.skip_ws();
        let before = c.pos;
        match c.bump() {
            Some(',') => continue,
            Some(')') => return Ok(subs),
            other => {
                return Err((
                    before,
                    format!("unexpected {}, expected `,` or `)`", found(other)),
                ))
            }
        }
    }
}

/// The values after `=`, to past the `;` that ends the record.
fn values(c: &mut Cursor, entry: &mut Entry, budget: &mut usize) -> Result<(), (Pos, String)> {
    loop {
        c.skip_ws();
        let item_at = c.pos;
        spend(budget, item_at)?;
        value(c, entry, item_at)?;
        let before = c.pos;
        match c.bump() {
            Some(',') => continue,
            Some(';') => return Ok(()),
            other => {
                return Err((
                    before,
                    format!(
                        "unexpected {} in `{}`, expected `,` or `;`",
                        found(other),
                        entry.keyword
                    ),
                ))
            }
        }
    }
}

/// One value: a string (its quoted parts joined), a bare word, or `TLIST(…)`.
fn value(c: &mut Cursor, entry: &mut Entry, item_at: Pos) -> Result<(), (Pos, String)> {
    match c.peek() {
        Some('"') => {
            let mut text = c.quoted()?;
            // A string split over lines: `"abc"` then `"def"` on the next is one value.
            loop {
                c.skip_ws();
                if c.peek() != Some('"') {
                    break;
                }
                text.push_str(&c.quoted()?);
            }
            entry.items.push(Item {
                text,
                quoted: true,
                at: item_at,
            });
        }
        Some(ch) if !matches!(ch, ',' | ';' | '(' | ')' | '=') => {
            let word = c.word().to_string();
            if word.eq_ignore_ascii_case("TLIST") && c.peek() == Some('(') {
                entry.tlist = Some(tlist(c, item_at)?);
            } else {
                entry.items.push(Item {
                    text: word,
                    quoted: false,
                    at: item_at,
                });
            }
            c.skip_ws();
        }
        other => {
            return Err((
                c.pos,
                format!(
                    "unexpected {} in `{}`, expected a quoted string or a word",
                    found(other),
                    entry.keyword
                ),
            ))
        }
    }
    Ok(())
}

/// `TLIST(kind)` or `TLIST(kind, "from"-"to")`, from its `(`.
fn tlist(c: &mut Cursor, at: Pos) -> Result<Tlist, (Pos, String)> {
    c.bump();
    c.skip_ws();
    let kind = c.word().to_string();
    c.skip_ws();
    let mut range = None;
    if c.peek() == Some(',') {
        c.bump();
        c.skip_ws();
        let end = |c: &mut Cursor| -> Result<Item, (Pos, String)> {
            let at = c.pos;
            if c.peek() != Some('"') {
                return Err((
                    at,
                    format!(
                        "unexpected {}, expected a quoted period in the TLIST range",
                        found(c.peek())
                    ),
                ));
            }
            Ok(Item {
                text: c.quoted()?,
                quoted: true,
                at,
            })
        };
        let from = end(c)?;
        c.skip_ws();
        if c.peek() != Some('-') {
            return Err((
                c.pos,
                format!(
                    "unexpected {}, expected `-` between the ends of the TLIST range",
                    found(c.peek())
                ),
            ));
        }
        c.bump();
        c.skip_ws();
        let to = end(c)?;
        c.skip_ws();
        range = Some((from, to));
    }
    if c.peek() != Some(')') {
        return Err((
            c.pos,
            format!("unexpected {}, expected `)` closing TLIST", found(c.peek())),
        ));
    }
    c.bump();
    Ok(Tlist { kind, range, at })
}

/// The encoding the file's `CODEPAGE` names (absent: Windows-1252, the format's default), and
/// where it is written; a UTF-8 byte order mark wins.
fn encoding(bytes: &[u8], sink: &mut dyn Sink) -> (&'static Encoding, usize) {
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        return (encoding_rs::UTF_8, 3);
    }
    let Some((label, offset)) = codepage(bytes) else {
        return (encoding_rs::WINDOWS_1252, 0);
    };
    let at = byte_pos(bytes, offset).origin();
    match Encoding::for_label(label.as_bytes()) {
        // Not a code page of a text format in ASCII: the keywords would not be readable.
        Some(e) if e == encoding_rs::UTF_16LE || e == encoding_rs::UTF_16BE => {
            sink.error(
                at,
                format!("unsupported CODEPAGE `{label}`, expected an ASCII-compatible code page such as utf-8, iso-8859-1 or windows-1252"),
            );
            (encoding_rs::WINDOWS_1252, 0)
        }
        Some(e) => (e, 0),
        None => {
            let label: String = label.chars().take(40).collect();
            sink.error(
                at,
                format!("unknown CODEPAGE `{label}`, expected a code page such as utf-8, iso-8859-15 or windows-1252 (read as windows-1252)"),
            );
            (encoding_rs::WINDOWS_1252, 0)
        }
    }
}

/// Line and column of a byte offset (columns in bytes: the header before it is ASCII).
fn byte_pos(bytes: &[u8], offset: usize) -> Pos {
    let before = &bytes[..offset.min(bytes.len())];
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let lines = before.iter().filter(|&&b| b == b'\n').count();
    Pos {
        line: u32::try_from(lines + 1).unwrap_or(u32::MAX),
        col: u32::try_from(offset - line_start + 1).unwrap_or(u32::MAX),
    }
}

/// The label of `CODEPAGE="…";` found in the header (before `DATA=`), read as ASCII, and the
/// offset of the label.
fn codepage(bytes: &[u8]) -> Option<(String, usize)> {
    let header = match find(bytes, b"\nDATA=") {
        Some(end) => &bytes[..end],
        None => bytes,
    };
    let at = find(header, b"CODEPAGE")?;
    if at > 0 && !matches!(header[at - 1], b'\n' | b'\r' | b' ' | b'\t' | b';') {
        return None;
    }
    let rest = &header[at + b"CODEPAGE".len()..];
    let rest = rest.strip_prefix(b"=")?;
    let rest = rest.strip_prefix(b"\"")?;
    let end = rest.iter().position(|&b| b == b'"' || b == b'\n')?;
    let offset = at + b"CODEPAGE=\"".len();
    std::str::from_utf8(&rest[..end])
        .ok()
        .map(|s| (s.trim().to_string(), offset))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The kind of periods of a time variable (`TLIST(A1)`, …), or guessed from how they look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Annual,
    Semiannual,
    Quarterly,
    Monthly,
    Weekly,
    /// No `TLIST`: each period is read in whatever form it has.
    Any,
}

impl Kind {
    fn parse(s: &str) -> Option<Kind> {
        Some(match s.trim().to_ascii_uppercase().as_str() {
            "A1" => Kind::Annual,
            "H1" => Kind::Semiannual,
            "Q1" => Kind::Quarterly,
            "M1" => Kind::Monthly,
            "W1" => Kind::Weekly,
            _ => return None,
        })
    }

    fn forms(self) -> &'static str {
        match self {
            Kind::Annual => "CCYY such as 2024",
            Kind::Semiannual => "CCYYH or CCYYHn such as 20241 or 2024H1",
            Kind::Quarterly => "CCYYQ or CCYYQn such as 20241, 2024Q1, 2024K1 or 2024T1",
            Kind::Monthly => "CCYYMM or CCYYMmm such as 202401 or 2024M01",
            Kind::Weekly => "CCYYWW or CCYYWww such as 202405 or 2024W05 (ISO weeks)",
            Kind::Any => "CCYY, CCYYHn, CCYYQn, CCYYMmm or CCYYWww",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Annual => "A1",
            Kind::Semiannual => "H1",
            Kind::Quarterly => "Q1",
            Kind::Monthly => "M1",
            Kind::Weekly => "W1",
            Kind::Any => "",
        }
    }
}

/// A period as PC-Axis writes it (`2024`; half-years `20241`, `2024H1`; quarters `20241`,
/// `2024Q1`, `2024K1`, `2024T1`; months `202401`, `2024M01`; ISO weeks `202405`, `2024W05`) in
/// the form the pipeline reads (`2024`, `2024-H1`, `2024-Q1`, `2024-01`, `2024-W05`); None
/// when it does not fit `kind`.
fn period(kind: Kind, text: &str) -> Option<String> {
    let t = text.trim();
    let b = t.as_bytes();
    let digits = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_digit);
    if b.len() < 4 || !digits(&b[..4]) {
        return None;
    }
    let year = &t[..4];
    let rest = &b[4..];
    let quarter = |q: &[u8]| (q.len() == 1 && (b'1'..=b'4').contains(&q[0])).then(|| q[0] as char);
    let month = |m: &[u8]| -> Option<u8> {
        if !digits(m) || m.len() > 2 {
            return None;
        }
        let n: u8 = std::str::from_utf8(m).ok()?.parse().ok()?;
        (1..=12).contains(&n).then_some(n)
    };
    let annual = || rest.is_empty().then(|| year.to_string());
    let quarterly = || {
        let q = match rest {
            [q] => quarter(&[*q])?,
            [b'Q' | b'K' | b'T' | b'q' | b'k' | b't', q] => quarter(&[*q])?,
            [b'-', b'Q', q] => quarter(&[*q])?,
            _ => return None,
        };
        Some(format!("{year}-Q{q}"))
    };
    let monthly = || {
        let m = match rest {
            [b'M' | b'm', m @ ..] => month(m)?,
            [b'-', m @ ..] => month(m)?,
            m if m.len() == 2 => month(m)?,
            _ => return None,
        };
        Some(format!("{year}-{m:02}"))
    };
    let semiannual = || {
        let h = match rest {
            [h] | [b'H' | b'h', h] => *h,
            _ => return None,
        };
        matches!(h, b'1' | b'2').then(|| format!("{year}-H{}", h as char))
    };
    // Through the calendar, which knows which ISO years have a week 53.
    let weekly = || {
        let w = match rest {
            [a, b] | [b'W' | b'w', a, b] => [*a, *b],
            _ => return None,
        };
        let w = std::str::from_utf8(&w).ok()?;
        Period::parse(&format!("{year}-W{w}")).map(|p| p.to_string())
    };
    match kind {
        Kind::Annual => annual(),
        Kind::Semiannual => semiannual(),
        Kind::Quarterly => quarterly(),
        Kind::Monthly => monthly(),
        Kind::Weekly => weekly(),
        // Bare digits after the year are quarters or months here; half-years and weeks only
        // with their letter.
        Kind::Any => match rest.first() {
            Some(b'H' | b'h') => semiannual(),
            Some(b'W' | b'w') => weekly(),
            _ => annual()
                .or_else(|| (rest.len() != 1).then(quarterly).flatten())
                .or_else(monthly),
        },
    }
}

/// Why a cell has no figure, from its symbol: the status flag the pipeline counts it by.
/// `.` (category not applicable) and `..` (not available) are `M` and `L` as in SDMX, a
/// symbol the file describes as confidential is `C`, and the rest (`-` nil, `...` …) have no
/// flag: counted as plainly missing, never as a 0.
fn symbol_status(symbol: &str, described: Option<&str>) -> &'static str {
    if let Some(d) = described {
        let d = d.to_lowercase();
        if [
            "confidential",
            "secre",
            "suppress",
            "sekretess",
            "salassa",
            "secret",
        ]
        .iter()
        .any(|w| d.contains(w))
        {
            return "C";
        }
    }
    match symbol {
        "." => "M",
        ".." => "L",
        _ => "",
    }
}

/// The standard symbols, `.` to `......` (DATASYMBOL1 to 6), then `-` (DATASYMBOLNIL).
const SYMBOLS: [&str; 7] = [".", "..", "...", "....", ".....", "......", "-"];
const SYMBOL_KEYWORDS: [&str; 7] = [
    "DATASYMBOL1",
    "DATASYMBOL2",
    "DATASYMBOL3",
    "DATASYMBOL4",
    "DATASYMBOL5",
    "DATASYMBOL6",
    "DATASYMBOLNIL",
];

/// The records by (keyword, language, sub-keys), first one kept.
struct Meta<'e> {
    by_key: HashMap<(&'e str, &'e str, &'e [String]), &'e Entry>,
    /// The file's main language (`LANGUAGE`), "" when it does not say.
    main: String,
}

impl<'e> Meta<'e> {
    fn new(entries: &'e [Entry]) -> Self {
        let mut by_key = HashMap::new();
        for e in entries {
            by_key
                .entry((e.keyword.as_str(), e.lang.as_str(), e.subs.as_slice()))
                .or_insert(e);
        }
        let main = by_key
            .get(&("LANGUAGE", "", &[][..]))
            .and_then(|e: &&Entry| e.items.first())
            .map(|i| i.text.trim().to_string())
            .unwrap_or_default();
        Meta { by_key, main }
    }

    /// The record `keyword` in `lang` (the main language's are written without `[lang]`).
    fn get(&self, keyword: &str, lang: &str, subs: &[String]) -> Option<&'e Entry> {
        let key_lang = if lang == self.main { "" } else { lang };
        self.by_key
            .get(&(keyword, key_lang, subs))
            // Some files also tag the main language's records (`VALUES[fi]` beside LANGUAGE fi).
            .or_else(|| self.by_key.get(&(keyword, lang, subs)))
            .copied()
    }

    fn get1(&self, keyword: &str, lang: &str, sub: &str) -> Option<&'e Entry> {
        self.get(keyword, lang, &[sub.to_string()])
    }

    /// The languages of the file (`LANGUAGES`), the main one first.
    fn languages(&self) -> Vec<String> {
        let mut langs = vec![self.main.clone()];
        if let Some(e) = self.get("LANGUAGES", &self.main, &[]) {
            for i in &e.items {
                let l = i.text.trim().to_string();
                if !langs.contains(&l) {
                    langs.push(l);
                }
            }
        }
        langs
    }

    /// The variables `STUB` then `HEADING` name in `lang`; None when there are neither.
    fn stub_heading(&self, lang: &str) -> Option<Vec<&'e Item>> {
        let stub = self.get("STUB", lang, &[]);
        let heading = self.get("HEADING", lang, &[]);
        if stub.is_none() && heading.is_none() {
            return None;
        }
        Some(
            stub.into_iter()
                .chain(heading)
                .flat_map(|e| &e.items)
                .collect(),
        )
    }

    /// The time variable and its `TIMEVAL` (in `lang`, else in the main language) when it
    /// has one.
    fn time_variable(
        &self,
        lang: &str,
        langs: &[String],
        selected: &[&Item],
        names: &[Vec<Option<String>>],
    ) -> (Option<(usize, &'e Entry)>, Option<usize>) {
        let time_name = |l: &str| -> Option<(usize, &'e Entry)> {
            selected.iter().enumerate().find_map(|(v, _)| {
                let n = names[v].get(langs.iter().position(|x| x == l)?)?.as_ref()?;
                self.get1("TIMEVAL", l, n).map(|e| (v, e))
            })
        };
        let timeval = time_name(lang).or_else(|| time_name(&self.main));
        let time = timeval.map(|(v, _)| v).or_else(|| {
            // Without TIMEVAL, the variable whose VARIABLE-TYPE is Time (Statistics Finland).
            selected.iter().position(|item| {
                self.get1("VARIABLE-TYPE", lang, &item.text)
                    .and_then(|e| e.items.first())
                    .is_some_and(|i| i.text.eq_ignore_ascii_case("time"))
            })
        });
        (timeval, time)
    }

    /// The file's `UNITS`, and the unit of each value of the content variable (its own
    /// `UNITS("value")`, else the file's).
    fn units(&self, lang: &str, content: Option<&Variable>) -> (Option<String>, Vec<String>) {
        let unit = self
            .get("UNITS", lang, &[])
            .and_then(|e| e.items.first())
            .map(|i| i.text.trim().to_string());
        let content_units = match content {
            Some(var) => var
                .values
                .iter()
                .map(|value| {
                    self.get1("UNITS", lang, value)
                        .and_then(|e| e.items.first())
                        .map(|i| i.text.trim().to_string())
                        .or_else(|| unit.clone())
                        .unwrap_or_default()
                })
                .collect(),
            None => Vec::new(),
        };
        (unit, content_units)
    }

    /// What the file says each standard symbol means, and the status that gives its cells.
    fn symbols(&self, lang: &str) -> Vec<(String, &'static str)> {
        SYMBOLS
            .iter()
            .zip(SYMBOL_KEYWORDS)
            .map(|(s, k)| {
                let text = self
                    .get(k, lang, &[])
                    .and_then(|e| e.items.first())
                    .map(|i| i.text.trim().to_string())
                    .unwrap_or_default();
                let status =
                    symbol_status(s, Some(&text).filter(|t| !t.is_empty()).map(String::as_str));
                (text, status)
            })
            .collect()
    }
}

/// One `STUB` or `HEADING` variable.
struct Variable {
    /// Its name in each language of the file (main language first).
    names: Vec<Option<String>>,
    /// Label values: `CODES`, else `VALUES` in the selected language.
    codes: Vec<String>,
    /// `VALUES` in the selected language.
    values: Vec<String>,
    /// Periods of the time variable (None: not a period, reported); empty for others.
    periods: Vec<Option<String>>,
    at: Pos,
}

/// Line and column (in characters) of byte `offset` of `text`.
fn text_pos(text: &str, offset: usize) -> Pos {
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    Pos {
        line: u32::try_from(before.matches('\n').count() + 1).unwrap_or(u32::MAX),
        col: u32::try_from(before[line_start..].chars().count() + 1).unwrap_or(u32::MAX),
    }
}

/// Reads a PC-Axis file's bytes into `sink`.
pub fn read(bytes: &[u8], options: &PcAxisOptions, sink: &mut dyn Sink) {
    let (enc, skip) = encoding(bytes, sink);
    let (text, malformed) = enc.decode_without_bom_handling(&bytes[skip..]);
    if malformed {
        let at = text_pos(&text, text.find('\u{FFFD}').unwrap_or(0));
        sink.error(
            at.origin(),
            format!(
                "bytes that are not {} text (shown as U+FFFD), expected the code page that CODEPAGE names",
                enc.name()
            ),
        );
    }
    if text.trim().is_empty() {
        sink.error(
            Pos { line: 1, col: 1 }.origin(),
            "empty file, expected PC-Axis records such as `STUB=\"region\";` and `DATA=`".into(),
        );
        return;
    }
    let Parsed {
        entries,
        data,
        stopped,
    } = parse(&text, sink);
    if stopped {
        return;
    }
    let meta = Meta::new(&entries);
    let Some((data_at, data)) = data else {
        sink.error(
            text_pos(&text, text.len()).origin(),
            "no `DATA=` keyword, expected the cells after `DATA=` at the end of the file".into(),
        );
        return;
    };
    let Some(table) = Table::new(&meta, options, data_at, sink) else {
        return;
    };
    table.emit(&meta, data, sink);
}

/// The language the options select, else the file's main one; None when the file does not
/// have it (reported).
fn chosen_language(
    meta: &Meta,
    options: &PcAxisOptions,
    langs: &[String],
    data_at: Pos,
    sink: &mut dyn Sink,
) -> Option<String> {
    match &options.language {
        Some(l) if !langs.contains(l) => {
            let have: Vec<String> = langs
                .iter()
                .filter(|l| !l.is_empty())
                .map(|l| format!("`{l}`"))
                .collect();
            let at = meta
                .get("LANGUAGES", &meta.main, &[])
                .or_else(|| meta.get("LANGUAGE", "", &[]))
                .map_or(data_at, |e| e.at);
            sink.error(
                at.origin(),
                format!(
                    "language `{l}` is not in the file, expected one of its LANGUAGE and LANGUAGES: {}",
                    if have.is_empty() { "none given".to_string() } else { have.join(", ") }
                ),
            );
            None
        }
        Some(l) => Some(l.clone()),
        None => Some(meta.main.clone()),
    }
}

/// The variables STUB and HEADING name in `lang`; None when they name none (reported).
fn table_variables<'e>(
    meta: &Meta<'e>,
    lang: &str,
    data_at: Pos,
    sink: &mut dyn Sink,
) -> Option<Vec<&'e Item>> {
    let Some(selected) = meta.stub_heading(lang) else {
        sink.error(
            data_at.origin(),
            format!(
                "no STUB or HEADING{}, expected the variables of the table in order",
                in_lang(lang, &meta.main)
            ),
        );
        return None;
    };
    if selected.is_empty() {
        sink.error(
            data_at.origin(),
            "STUB and HEADING name no variable, expected at least one".into(),
        );
        return None;
    }
    Some(selected)
}

/// Each variable's name in each language (by the index in `langs`); a language whose STUB
/// and HEADING name another count of variables is reported and left out.
fn names_by_language(
    meta: &Meta,
    langs: &[String],
    lang: &str,
    selected: &[&Item],
    data_at: Pos,
    sink: &mut dyn Sink,
) -> Vec<Vec<Option<String>>> {
    // Each language names the variables in the same order.
    let mut names: Vec<Vec<Option<String>>> = vec![vec![None; langs.len()]; selected.len()];
    for (k, l) in langs.iter().enumerate() {
        let Some(list) = meta.stub_heading(l) else {
            continue;
        };
        if list.len() != selected.len() {
            sink.error(
                list.first().map_or(data_at.origin(), |i| i.at.origin()),
                format!(
                    "STUB and HEADING{} name {} variables, expected {} as in language `{lang}`",
                    in_lang(l, &meta.main),
                    list.len(),
                    selected.len()
                ),
            );
            continue;
        }
        for (v, item) in list.iter().enumerate() {
            names[v][k] = Some(item.text.clone());
        }
    }
    names
}

/// False when a variable is named twice or like a component the reader adds (reported).
fn unique_names(selected: &[&Item], sink: &mut dyn Sink) -> bool {
    let mut ok = true;
    let mut seen = HashMap::new();
    for item in selected {
        let id = item.text.as_str();
        if ["value", "status", "unit"]
            .iter()
            .any(|r| r.eq_ignore_ascii_case(id))
        {
            sink.error(item.at.origin(), format!("variable `{id}` has the name of a component the reader adds, expected a name other than value, status and unit"));
            ok = false;
        }
        if let Some(first) = seen.insert(id, item.at) {
            sink.error(
                item.at.origin(),
                format!(
                    "variable `{id}` is named twice (first at {}:{}), expected unique names",
                    first.line, first.col
                ),
            );
            ok = false;
        }
    }
    ok
}

/// A variable's VALUES, CODES and, for the time variable (`timeval` Some, holding its
/// TIMEVAL if any), periods; None when one of them cannot be read (each reported).
fn variable(
    meta: &Meta,
    lang: &str,
    item: &Item,
    names: &[Option<String>],
    timeval: Option<Option<&Entry>>,
    sink: &mut dyn Sink,
) -> Option<Variable> {
    let name = &item.text;
    let Some(values) = meta.get1("VALUES", lang, name) else {
        sink.error(
            item.at.origin(),
            format!(
                "no VALUES(\"{name}\"){}, expected the values of every variable",
                in_lang(lang, &meta.main)
            ),
        );
        return None;
    };
    let values: Vec<String> = values.items.iter().map(|i| i.text.clone()).collect();
    let mut ok = true;
    // Codes are the same in every language; some files give them in the main one only.
    let main_name = names[0].as_deref().unwrap_or(name);
    let codes_entry = meta
        .get1("CODES", lang, name)
        .or_else(|| meta.get1("CODES", &meta.main, main_name));
    let codes = match codes_entry {
        Some(c) if c.items.len() != values.len() => {
            sink.error(
                c.at.origin(),
                format!(
                    "CODES(\"{name}\") has {} codes, expected {} like its VALUES",
                    c.items.len(),
                    values.len()
                ),
            );
            ok = false;
            values.clone()
        }
        Some(c) => c.items.iter().map(|i| i.text.clone()).collect(),
        None => values.clone(),
    };
    // Read even after bad CODES: the periods' errors are reported too.
    let periods = match timeval {
        Some(tv) => periods(tv, &codes, name, sink)?,
        None => Vec::new(),
    };
    ok.then(|| Variable {
        names: names.to_vec(),
        codes,
        values,
        periods,
        at: item.at,
    })
}

/// The variable `CONTVARIABLE` names, if any; one that is not in the table is reported.
fn content_variable(
    meta: &Meta,
    lang: &str,
    selected: &[&Item],
    sink: &mut dyn Sink,
) -> Option<usize> {
    meta.get("CONTVARIABLE", lang, &[])
        .and_then(|e| e.items.first())
        .and_then(|n| {
            let v = selected.iter().position(|i| i.text == n.text);
            if v.is_none() {
                sink.error(
                    n.at.origin(),
                    format!(
                        "CONTVARIABLE `{}` is not a STUB or HEADING variable, expected one of them",
                        n.text
                    ),
                );
            }
            v
        })
}

/// What the metadata says about the cells.
struct Table {
    lang: String,
    /// Languages display names are given in, the main one first.
    langs: Vec<String>,
    vars: Vec<Variable>,
    time: Option<usize>,
    content: Option<usize>,
    /// The unit of each content (by content value), or of the whole file.
    content_units: Vec<String>,
    unit: Option<String>,
    /// The described meaning of each standard symbol (DATASYMBOL1…6, NIL), and its text.
    symbols: Vec<(String, &'static str)>,
    data_at: Pos,
}

impl Table {
    fn new(
        meta: &Meta,
        options: &PcAxisOptions,
        data_at: Pos,
        sink: &mut dyn Sink,
    ) -> Option<Table> {
        let langs = meta.languages();
        let lang = chosen_language(meta, options, &langs, data_at, sink)?;
        let selected = table_variables(meta, &lang, data_at, sink)?;
        let names = names_by_language(meta, &langs, &lang, &selected, data_at, sink);
        // A bad name stops nothing yet: every variable's own errors are reported too.
        let mut ok = unique_names(&selected, sink);
        let (timeval, time) = meta.time_variable(&lang, &langs, &selected, &names);
        let mut vars = Vec::with_capacity(selected.len());
        for (v, item) in selected.iter().enumerate() {
            let timeval =
                (Some(v) == time).then(|| timeval.filter(|(t, _)| *t == v).map(|(_, e)| e));
            match variable(meta, &lang, item, &names[v], timeval, sink) {
                Some(var) => vars.push(var),
                None => ok = false,
            }
        }
        if !ok {
            return None;
        }
        let content = content_variable(meta, &lang, &selected, sink);
        let (unit, content_units) = meta.units(&lang, content.map(|c| &vars[c]));
        let symbols = meta.symbols(&lang);
        let has_unit = unit.is_some() || content_units.iter().any(|u| !u.is_empty());
        Some(Table {
            lang,
            langs,
            vars,
            time,
            content,
            content_units,
            unit: if has_unit {
                Some(unit.unwrap_or_default())
            } else {
                None
            },
            symbols,
            data_at,
        })
    }

    /// The status of a symbol cell, or None when `cell` is not a missing-cell symbol.
    fn symbol(&self, cell: &str) -> Option<&'static str> {
        if let Some(k) = SYMBOLS.iter().position(|s| *s == cell) {
            return Some(self.symbols[k].1);
        }
        self.symbols
            .iter()
            .find(|(text, _)| !text.is_empty() && text == cell)
            .map(|(_, status)| *status)
    }

    fn components(&self) -> Vec<Component> {
        let mut components: Vec<Component> = self
            .vars
            .iter()
            .enumerate()
            .map(|(v, var)| {
                let role = if Some(v) == self.time {
                    Role::Time
                } else {
                    Role::Dimension
                };
                let li = self.langs.iter().position(|l| *l == self.lang).unwrap_or(0);
                let id = var.names[li].clone().unwrap_or_default();
                Component::new(id, role)
            })
            .collect();
        components.push(Component::new("value", Role::Measure));
        components.push(Component::new("status", Role::Attribute));
        if self.unit.is_some() {
            components.push(Component::new("unit", Role::Attribute));
        }
        components
    }

    /// Counts the cells, then yields the components, the display names and, when the count
    /// is the product of the VALUES counts, one row per cell.
    fn emit(&self, meta: &Meta, data: Cursor, sink: &mut dyn Sink) {
        let sizes: Vec<usize> = self.vars.iter().map(|v| v.codes.len()).collect();
        let expected = sizes
            .iter()
            .try_fold(1u64, |acc, &n| acc.checked_mul(n as u64))
            .filter(|&n| n <= MAX_CELLS);
        let mut counter = Cells::new(data.text, data.i, data.pos);
        let mut count = 0u64;
        while let Some(cell) = counter.next_cell() {
            if let Err((at, message)) = cell {
                sink.error(at.origin(), message);
                return;
            }
            count += 1;
        }
        if let Some(at) = counter.trailing {
            sink.error(
                at.origin(),
                "text after the `;` that ends DATA, expected the end of the file".into(),
            );
        }
        // No `;` after the last cell is no error: Statistics Sweden's own samples end so, and
        // a cut file is caught by the count.
        let components = self.components();
        let headers: Vec<Origin> = (0..components.len())
            .map(|i| {
                self.vars
                    .get(i)
                    .map_or(self.data_at.origin(), |v| v.at.origin())
            })
            .collect();
        if !sink.components(&components, &|i| {
            headers.get(i).cloned().unwrap_or(Origin::File)
        }) {
            return;
        }
        self.names(meta, sink);
        let product = sizes
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(" × ");
        match expected {
            Some(n) if n == count => {}
            Some(n) => {
                sink.error(
                    self.data_at.origin(),
                    format!("DATA has {count} cells, expected {n}, the product of the VALUES counts ({product})"),
                );
                return;
            }
            None => {
                sink.error(
                    self.data_at.origin(),
                    format!("DATA has {count} cells, expected the product of the VALUES counts ({product}), which is too large to read"),
                );
                return;
            }
        }
        self.rows(Cells::new(data.text, data.i, data.pos), &sizes, sink);
    }

    /// The display names of every variable's codes, in every language of the file.
    fn names(&self, meta: &Meta, sink: &mut dyn Sink) {
        for (v, var) in self.vars.iter().enumerate() {
            if Some(v) == self.time {
                continue;
            }
            let coded = var.codes != var.values;
            for (k, l) in self.langs.iter().enumerate() {
                if !coded && *l == self.lang {
                    continue;
                }
                let Some(name) = &var.names[k] else { continue };
                let Some(values) = meta.get1("VALUES", l, name) else {
                    continue;
                };
                if values.items.len() != var.codes.len() {
                    sink.error(
                        values.at.origin(),
                        format!(
                            "VALUES(\"{name}\"){} has {} values, expected {} as in language `{}`",
                            in_lang(l, &meta.main),
                            values.items.len(),
                            var.codes.len(),
                            self.lang
                        ),
                    );
                    continue;
                }
                for (code, value) in var.codes.iter().zip(&values.items) {
                    sink.name(v, code, l, &value.text);
                }
            }
        }
    }

    /// One row per cell, the last variable varying fastest.
    fn rows(&self, mut cells: Cells, sizes: &[usize], sink: &mut dyn Sink) {
        let n = self.vars.len();
        let mut coords = vec![0usize; n];
        let mut fields: Vec<&str> = Vec::with_capacity(n + 3);
        let mut first = true;
        while let Some(Ok(cell)) = cells.next_cell() {
            if !first {
                // The odometer: the last variable turns fastest.
                for k in (0..n).rev() {
                    coords[k] += 1;
                    if coords[k] < sizes[k] {
                        break;
                    }
                    coords[k] = 0;
                }
            }
            first = false;
            fields.clear();
            let mut skip = false;
            for (k, var) in self.vars.iter().enumerate() {
                if Some(k) == self.time {
                    match &var.periods[coords[k]] {
                        Some(p) => fields.push(p),
                        None => skip = true,
                    }
                } else {
                    fields.push(&var.codes[coords[k]]);
                }
            }
            if skip {
                continue;
            }
            // A symbol has no figure: an empty value, and its status says why.
            let (value, status) = match self.symbol(cell.text) {
                Some(status) => ("", status),
                None => (cell.text, ""),
            };
            fields.push(value);
            fields.push(status);
            if let Some(unit) = &self.unit {
                match self.content {
                    Some(c) => fields.push(&self.content_units[coords[c]]),
                    None => fields.push(unit),
                }
            }
            let at = cell.at.origin();
            sink.row(&fields, &|_| at.clone());
        }
    }
}

/// " in language `sv`" unless `lang` is the main language.
fn in_lang(lang: &str, main: &str) -> String {
    if lang == main || lang.is_empty() {
        String::new()
    } else {
        format!(" in language `{lang}`")
    }
}

/// The periods of the time variable: from its TIMEVAL list or range when given, else from its
/// codes; None when TIMEVAL cannot be read (reported). A period that does not fit is reported
/// and its cells are skipped.
fn periods(
    timeval: Option<&Entry>,
    codes: &[String],
    name: &str,
    sink: &mut dyn Sink,
) -> Option<Vec<Option<String>>> {
    let kind = match timeval.and_then(|e| e.tlist.as_ref()) {
        Some(t) => match Kind::parse(&t.kind) {
            Some(k) => k,
            None => {
                sink.error(t.at.origin(), format!("TLIST({}) of `{name}` is not a time scale, expected TLIST(A1), TLIST(H1), TLIST(Q1), TLIST(M1) or TLIST(W1)", t.kind.chars().take(10).collect::<String>()));
                return None;
            }
        },
        None => Kind::Any,
    };
    let written: Vec<(String, Option<Pos>)> = match timeval {
        Some(e) if e.tlist.as_ref().is_some_and(|t| t.range.is_some()) => {
            let t = e.tlist.as_ref().expect("checked");
            let (from, to) = t.range.as_ref().expect("checked");
            let ends: Vec<Option<Period>> = [from, to]
                .iter()
                .map(|i| period(kind, &i.text).and_then(|p| Period::parse(&p)))
                .collect();
            for (end, item) in ends.iter().zip([from, to]) {
                if end.is_none() {
                    sink.error(
                        item.at.origin(),
                        format!(
                            "TLIST range end `{}` is not a period of TLIST({}), expected {}",
                            item.text,
                            kind.name(),
                            kind.forms()
                        ),
                    );
                }
            }
            let (Some(a), Some(b)) = (ends[0], ends[1]) else {
                return None;
            };
            let n = b.ordinal() - a.ordinal() + 1;
            if n != codes.len() as i64 {
                sink.error(t.at.origin(), format!("TLIST range `{}`-`{}` gives {} periods, expected {} like VALUES(\"{name}\")", from.text, to.text, n.max(0), codes.len()));
                return None;
            }
            return Some((0..n).map(|o| Some(a.offset(o).to_string())).collect());
        }
        Some(e) if !e.items.is_empty() => {
            if e.items.len() != codes.len() {
                sink.error(
                    e.at.origin(),
                    format!(
                        "TIMEVAL(\"{name}\") has {} periods, expected {} like VALUES(\"{name}\")",
                        e.items.len(),
                        codes.len()
                    ),
                );
                return None;
            }
            e.items
                .iter()
                .map(|i| (i.text.clone(), Some(i.at)))
                .collect()
        }
        _ => codes.iter().map(|c| (c.clone(), None)).collect(),
    };
    let at = timeval.map(|e| e.at);
    let mut out = Vec::with_capacity(written.len());
    for (text, pos) in written {
        let p = period(kind, &text);
        if p.is_none() {
            let pos = pos.or(at);
            let message = format!(
                "period `{}` of `{name}` does not fit{}, expected {}",
                text.chars().take(40).collect::<String>(),
                if kind == Kind::Any {
                    String::new()
                } else {
                    format!(" TLIST({})", kind.name())
                },
                kind.forms()
            );
            match pos {
                Some(pos) => sink.error(pos.origin(), message),
                None if kind == Kind::Any => {
                    // No TIMEVAL: pass the period as written; the pipeline reads other forms.
                    out.push(Some(text));
                    continue;
                }
                None => sink.error(Pos { line: 1, col: 1 }.origin(), message),
            }
        }
        out.push(p);
    }
    Some(out)
}

/// One cell of DATA as written.
struct Cell<'t> {
    text: &'t str,
    at: Pos,
}

/// The cells of DATA, one at a time (read twice: counted, then yielded, so nothing is kept).
struct Cells<'t> {
    c: Cursor<'t>,
    closed: bool,
    trailing: Option<Pos>,
    pos: Pos,
}

impl<'t> Cells<'t> {
    fn new(text: &'t str, i: usize, pos: Pos) -> Self {
        Cells {
            c: Cursor { text, i, pos },
            closed: false,
            trailing: None,
            pos,
        }
    }

    fn next_cell(&mut self) -> Option<Result<Cell<'t>, (Pos, String)>> {
        if self.closed {
            return None;
        }
        self.c.skip_ws();
        self.pos = self.c.pos;
        let at = self.c.pos;
        match self.c.peek() {
            None => None,
            Some(';') => {
                self.c.bump();
                self.closed = true;
                self.c.skip_ws();
                if self.c.peek().is_some() {
                    self.trailing = Some(self.c.pos);
                }
                None
            }
            Some('"') => {
                self.c.bump();
                let from = self.c.i;
                while self.c.peek().is_some_and(|ch| ch != '"' && ch != '\n') {
                    self.c.bump();
                }
                if self.c.peek() != Some('"') {
                    return Some(Err((
                        at,
                        "unterminated quoted cell, expected a closing `\"` on the same line".into(),
                    )));
                }
                let text = &self.c.text[from..self.c.i];
                self.c.bump();
                Some(Ok(Cell { text, at }))
            }
            Some(_) => {
                let from = self.c.i;
                while self
                    .c
                    .peek()
                    .is_some_and(|ch| !ch.is_whitespace() && ch != ';' && ch != '"')
                {
                    self.c.bump();
                }
                Some(Ok(Cell {
                    text: &self.c.text[from..self.c.i],
                    at,
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Collect;

    const SCB: &[u8] =
        include_bytes!("../../tests/fixtures/publishers/pcaxis/scb_PR0101B3_cpi_monthly.px");

    fn run(bytes: &[u8]) -> Collect {
        run_with(bytes, &PcAxisOptions::default())
    }

    fn run_with(bytes: &[u8], options: &PcAxisOptions) -> Collect {
        let mut c = Collect::default();
        read(bytes, options, &mut c);
        c
    }

    fn at(line: u32, col: u32) -> Origin {
        Origin::At { line, col }
    }

    /// A small table: `head` records, then STUB/HEADING over region x year, then DATA.
    fn table(head: &str, data: &str) -> Vec<u8> {
        format!(
            "{head}STUB=\"region\";\nHEADING=\"year\";\nVALUES(\"region\")=\"North\",\"South\";\n\
             VALUES(\"year\")=\"2023\",\"2024\";\nCODES(\"region\")=\"N\",\"S\";\n\
             TIMEVAL(\"year\")=TLIST(A1),\"2023\",\"2024\";\nUNITS=\"persons\";\nDATA=\n{data};\n"
        )
        .into_bytes()
    }

    #[test]
    fn records_with_languages_sub_keys_and_continued_strings() {
        let text = "CHARSET=\"ANSI\";\nTITLE=\"Consumer \"\n  \"prices\";\n\
                    VALUES[en](\"region\", \"x\")=\"North\",\n\"South\" ,\"East\";\n\
                    DECIMALS=2;\nTIMEVAL(\"t\")=TLIST(A1, \"1994\"-\"1996\");\nDATA=\n1;";
        let mut c = Collect::default();
        let p = parse(text, &mut c);
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        let e = &p.entries;
        assert_eq!(e.len(), 5);
        assert_eq!(e[1].keyword, "TITLE");
        assert_eq!(e[1].items[0].text, "Consumer prices");
        assert_eq!(e[1].at, Pos { line: 2, col: 1 });
        assert_eq!(e[2].lang, "en");
        assert_eq!(e[2].subs, ["region", "x"]);
        let values: Vec<&str> = e[2].items.iter().map(|i| i.text.as_str()).collect();
        assert_eq!(values, ["North", "South", "East"]);
        assert_eq!(e[2].items[1].at, Pos { line: 5, col: 1 });
        assert_eq!(
            (e[3].items[0].text.as_str(), e[3].items[0].quoted),
            ("2", false)
        );
        let t = e[4].tlist.as_ref().unwrap();
        assert_eq!(t.kind, "A1");
        let (from, to) = t.range.as_ref().unwrap();
        assert_eq!((from.text.as_str(), to.text.as_str()), ("1994", "1996"));
        let (data_at, _) = p.data.as_ref().unwrap();
        assert_eq!(*data_at, Pos { line: 8, col: 1 });
    }

    #[test]
    fn code_pages_default_to_windows_1252() {
        // 0xE9 is é in Windows-1252 and ISO-8859-15; 0xA4 is € in ISO-8859-15 only.
        let name = |head: &[u8], value: &[u8]| {
            let mut b = head.to_vec();
            b.extend_from_slice(b"STUB=\"r\";\nVALUES(\"r\")=\"");
            b.extend_from_slice(value);
            b.extend_from_slice(b"\";\nCODES(\"r\")=\"A\";\nDATA=\n1;\n");
            let c = run(&b);
            assert!(c.errors.is_empty(), "{:?}", c.errors);
            c.names[0].3.clone()
        };
        assert_eq!(name(b"", b"Caf\xe9 \x80"), "Café €");
        assert_eq!(
            name(b"CODEPAGE=\"iso-8859-15\";\n", b"Caf\xe9 \xa4"),
            "Café €"
        );
        assert_eq!(
            name(b"CODEPAGE=\"utf-8\";\n", "Café €".as_bytes()),
            "Café €"
        );
        assert_eq!(
            name(b"\xef\xbb\xbfCHARSET=\"ANSI\";\n", "Café".as_bytes()),
            "Café"
        );
        // An unknown code page is named at its label, and the file read as Windows-1252.
        let c = run(b"AXIS-VERSION=\"2013\";\nCODEPAGE=\"klingon\";\nSTUB=\"r\";\nVALUES(\"r\")=\"\xe9\";\nDATA=\n1;");
        assert_eq!(
            c.error_lines(),
            ["2:11: unknown CODEPAGE `klingon`, expected a code page such as utf-8, iso-8859-15 or windows-1252 (read as windows-1252)"]
        );
        assert_eq!(c.rows, [["é", "1", ""]]);
        // Bytes that are not UTF-8 in a UTF-8 file: named where the first one is.
        let c = run(b"CODEPAGE=\"utf-8\";\nSTUB=\"r\";\nVALUES(\"r\")=\"a\xff\";\nDATA=\n1;");
        assert_eq!(
            c.error_lines(),
            ["3:15: bytes that are not UTF-8 text (shown as U+FFFD), expected the code page that CODEPAGE names"]
        );
    }

    #[test]
    fn period_forms_of_each_tlist() {
        assert_eq!(period(Kind::Annual, "2024").as_deref(), Some("2024"));
        for q in ["20241", "2024Q1", "2024K1", "2024T1", "2024-Q1"] {
            assert_eq!(
                period(Kind::Quarterly, q).as_deref(),
                Some("2024-Q1"),
                "{q}"
            );
        }
        for m in ["202401", "2024M01", "2024M1", "2024-01"] {
            assert_eq!(period(Kind::Monthly, m).as_deref(), Some("2024-01"), "{m}");
        }
        for h in ["20241", "2024H1", "2024h1"] {
            assert_eq!(
                period(Kind::Semiannual, h).as_deref(),
                Some("2024-H1"),
                "{h}"
            );
        }
        for w in ["202405", "2024W05", "2024w05"] {
            assert_eq!(period(Kind::Weekly, w).as_deref(), Some("2024-W05"), "{w}");
        }
        assert_eq!(period(Kind::Weekly, "202053").as_deref(), Some("2020-W53"));
        for (k, bad) in [
            (Kind::Semiannual, "20243"),
            (Kind::Semiannual, "20240"),
            (Kind::Semiannual, "2024Q1"),
            (Kind::Weekly, "202153"),
            (Kind::Weekly, "202400"),
            (Kind::Weekly, "20245"),
            (Kind::Weekly, "2024W5"),
            (Kind::Annual, "2024Q1"),
            (Kind::Quarterly, "20245"),
            (Kind::Quarterly, "2024"),
            (Kind::Monthly, "202413"),
            (Kind::Monthly, "2024M00"),
            (Kind::Annual, "24"),
        ] {
            assert_eq!(period(k, bad), None, "{bad}");
        }
        // Without TLIST each period is read by its form.
        assert_eq!(period(Kind::Any, "2013T4").as_deref(), Some("2013-Q4"));
        assert_eq!(period(Kind::Any, "2018M12").as_deref(), Some("2018-12"));
        assert_eq!(period(Kind::Any, "1999").as_deref(), Some("1999"));
        assert_eq!(period(Kind::Any, "2023H2").as_deref(), Some("2023-H2"));
        assert_eq!(period(Kind::Any, "2023W09").as_deref(), Some("2023-W09"));
        // Bare digits stay months without TLIST.
        assert_eq!(period(Kind::Any, "202309").as_deref(), Some("2023-09"));
    }

    #[test]
    fn timeval_list_and_range_forms() {
        let file = |timeval: &str| {
            format!(
                "STUB=\"q\";\nVALUES(\"q\")=\"a\",\"b\",\"c\";\nTIMEVAL(\"q\")={timeval};\nDATA=\n1 2 3;"
            )
        };
        let c = run(file("TLIST(Q1),\"20234\",\"20241\",\"20242\"").as_bytes());
        assert_eq!(c.ids()[0], ("q", Role::Time));
        assert_eq!(c.column("q"), ["2023-Q4", "2024-Q1", "2024-Q2"]);
        let c = run(file("TLIST(M1, \"202311\"-\"202401\")").as_bytes());
        assert_eq!(c.column("q"), ["2023-11", "2023-12", "2024-01"]);
        let c = run(file("TLIST(A1, \"1994\"-\"1996\")").as_bytes());
        assert_eq!(c.column("q"), ["1994", "1995", "1996"]);
        // A range of another length, a period that does not fit, a kind the exporter cannot
        // serve: each named where it is written, and no row.
        let c = run(file("TLIST(A1, \"1994\"-\"1997\")").as_bytes());
        assert_eq!(
            c.error_lines(),
            ["3:14: TLIST range `1994`-`1997` gives 4 periods, expected 3 like VALUES(\"q\")"]
        );
        assert!(c.rows.is_empty());
        let c = run(file("TLIST(Q1),\"20234\",\"20245\",\"20242\"").as_bytes());
        assert_eq!(
            c.error_lines(),
            ["3:32: period `20245` of `q` does not fit TLIST(Q1), expected CCYYQ or CCYYQn such as 20241, 2024Q1, 2024K1 or 2024T1"]
        );
        // The cells of that period are left out; the others are read.
        assert_eq!(c.column("q"), ["2023-Q4", "2024-Q2"]);
        let c = run(file("TLIST(D1),\"20231\",\"20232\",\"20241\"").as_bytes());
        assert_eq!(
            c.error_lines(),
            ["3:14: TLIST(D1) of `q` is not a time scale, expected TLIST(A1), TLIST(H1), TLIST(Q1), TLIST(M1) or TLIST(W1)"]
        );
        assert!(c.rows.is_empty());
        // Half-years and ISO weeks, listed and as ranges (across a year end, and a week 53).
        let c = run(file("TLIST(H1),\"20231\",\"20232\",\"2024H1\"").as_bytes());
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        assert_eq!(c.column("q"), ["2023-H1", "2023-H2", "2024-H1"]);
        let c = run(file("TLIST(H1, \"20232\"-\"20242\")").as_bytes());
        assert_eq!(c.column("q"), ["2023-H2", "2024-H1", "2024-H2"]);
        let c = run(file("TLIST(W1),\"202305\",\"202306\",\"2023W07\"").as_bytes());
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        assert_eq!(c.column("q"), ["2023-W05", "2023-W06", "2023-W07"]);
        let c = run(file("TLIST(W1, \"202052\"-\"202101\")").as_bytes());
        assert_eq!(c.column("q"), ["2020-W52", "2020-W53", "2021-W01"]);
        // 2021 has 52 ISO weeks: its range to week 1 of 2022 is 3 weeks long.
        let c = run(file("TLIST(W1, \"202151\"-\"202201\")").as_bytes());
        assert_eq!(c.column("q"), ["2021-W51", "2021-W52", "2022-W01"]);
        let c = run(file("TLIST(W1),\"202152\",\"202153\",\"202201\"").as_bytes());
        assert_eq!(
            c.error_lines(),
            ["3:33: period `202153` of `q` does not fit TLIST(W1), expected CCYYWW or CCYYWww such as 202405 or 2024W05 (ISO weeks)"]
        );
        assert_eq!(c.column("q"), ["2021-W52", "2022-W01"]);
    }

    #[test]
    fn cells_in_row_major_order_with_codes_and_units() {
        let c = run(&table("", "1 2\n3\t4"));
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        assert_eq!(
            c.ids(),
            [
                ("region", Role::Dimension),
                ("year", Role::Time),
                ("value", Role::Measure),
                ("status", Role::Attribute),
                ("unit", Role::Attribute),
            ]
        );
        assert_eq!(
            c.row_fields(),
            [
                ["N", "2023", "1", "", "persons"],
                ["N", "2024", "2", "", "persons"],
                ["S", "2023", "3", "", "persons"],
                ["S", "2024", "4", "", "persons"],
            ]
        );
        // Every field of a row is located at its cell; components at their STUB/HEADING name.
        assert_eq!(c.origins[3][0], at(10, 3));
        assert_eq!(c.headers[0], at(1, 6));
        assert_eq!(c.headers[1], at(2, 9));
        assert_eq!(
            c.names,
            [
                (0, "N".into(), "".into(), "North".into()),
                (0, "S".into(), "".into(), "South".into())
            ]
        );
    }

    #[test]
    fn missing_symbols_have_no_figure_and_say_why() {
        let c = run(&table("", "\".\" \"..\" \"...\" -"));
        assert_eq!(c.column("value"), ["", "", "", ""]);
        assert_eq!(c.column("status"), ["M", "L", "", ""]);
        // The file's own DATASYMBOL texts are symbols too, and a description of secrecy makes
        // a cell confidential.
        let head = "DATASYMBOL3=\"Confidential\";\nDATASYMBOLNIL=\"nil\";\n";
        let c = run(&table(head, "\"....\" \"...\" \"nil\" \"......\""));
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        assert_eq!(c.column("value"), ["", "", "", ""]);
        assert_eq!(c.column("status"), ["", "C", "", ""]);
        // Anything else is a value as written, for the pipeline to check.
        let c = run(&table("", "1.5 \"2\" abc -0.25"));
        assert_eq!(c.column("value"), ["1.5", "2", "abc", "-0.25"]);
        assert_eq!(c.column("status"), ["", "", "", ""]);
    }

    #[test]
    fn content_variable_with_a_unit_per_content() {
        let file = "STUB=\"year\";\nHEADING=\"contents\";\nCONTVARIABLE=\"contents\";\n\
                    VALUES(\"year\")=\"2024\";\nVALUES(\"contents\")=\"Value\",\"Count\";\n\
                    CODES(\"contents\")=\"V\",\"C\";\nUNITS=\"other\";\n\
                    UNITS(\"Value\")=\"MIO_EUR\";\nUNITS(\"Count\")=\"NR\";\nDATA=\n1 2;";
        let c = run(file.as_bytes());
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        assert_eq!(
            c.row_fields(),
            [
                ["2024", "V", "1", "", "MIO_EUR"],
                ["2024", "C", "2", "", "NR"]
            ]
        );
        // Without TIMEVAL, a year variable is a dimension named `year`: the pipeline finds it.
        assert_eq!(c.ids()[0], ("year", Role::Dimension));
    }

    #[test]
    fn languages_pick_ids_and_labels_and_every_language_names_codes() {
        let file = "CODEPAGE=\"utf-8\";\nLANGUAGE=\"sv\";\nLANGUAGES=\"sv\",\"en\";\nSTUB=\"region\";\nSTUB[en]=\"area\";\n\
                    HEADING=\"år\";\nHEADING[en]=\"year\";\n\
                    VALUES(\"region\")=\"Norr\",\"Söder\";\nVALUES[en](\"area\")=\"North\",\"South\";\n\
                    CODES(\"region\")=\"N\",\"S\";\nCODES[en](\"area\")=\"N\",\"S\";\n\
                    VALUES(\"år\")=\"2024\";\nVALUES[en](\"year\")=\"2024\";\n\
                    TIMEVAL(\"år\")=TLIST(A1),\"2024\";\nTIMEVAL[en](\"year\")=TLIST(A1),\"2024\";\n\
                    DATA=\n1 2;";
        let c = run(file.as_bytes());
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        assert_eq!(
            c.ids()[..2],
            [("region", Role::Dimension), ("år", Role::Time)]
        );
        assert_eq!(c.column("region"), ["N", "S"]);
        let names: Vec<(&str, &str, &str)> = c
            .names
            .iter()
            .map(|(_, code, lang, name)| (code.as_str(), lang.as_str(), name.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("N", "sv", "Norr"),
                ("S", "sv", "Söder"),
                ("N", "en", "North"),
                ("S", "en", "South")
            ]
        );
        let en = PcAxisOptions {
            language: Some("en".into()),
        };
        let c = run_with(file.as_bytes(), &en);
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        assert_eq!(
            c.ids()[..2],
            [("area", Role::Dimension), ("year", Role::Time)]
        );
        assert_eq!(c.column("year"), ["2024", "2024"]);
        assert_eq!(c.names.len(), 4);
        // Codes given in the main language only serve every language.
        let main_codes_only = file.replace("CODES[en](\"area\")=\"N\",\"S\";\n", "");
        let c = run_with(main_codes_only.as_bytes(), &en);
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        assert_eq!(c.column("area"), ["N", "S"]);
        let de = PcAxisOptions {
            language: Some("de".into()),
        };
        let c = run_with(file.as_bytes(), &de);
        assert_eq!(
            c.error_lines(),
            ["3:1: language `de` is not in the file, expected one of its LANGUAGE and LANGUAGES: `sv`, `en`"]
        );
        assert!(c.components.is_empty());
    }

    #[test]
    fn main_language_records_may_carry_their_tag() {
        let c = run(
            b"LANGUAGE=\"fi\";\nSTUB[fi]=\"alue\";\nVALUES[fi](\"alue\")=\"Koko maa\";\nDATA=\n7;",
        );
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        assert_eq!(c.row_fields(), [["Koko maa", "7", ""]]);
    }

    #[test]
    fn cell_count_must_be_the_product_of_the_values_counts() {
        let c = run(&table("", "1 2 3"));
        assert_eq!(
            c.error_lines(),
            ["8:1: DATA has 3 cells, expected 4, the product of the VALUES counts (2 × 2)"]
        );
        assert!(c.rows.is_empty());
        // The components are still given, so the config is checked in the same run.
        assert_eq!(c.components.len(), 5);
    }

    #[test]
    fn every_bad_record_is_reported_in_one_run() {
        let file = "BAD KEYWORD;\nVALUES(\"region\"=\"a\";\nTITLE=\"unterminated;\n\
                    DECIMALS=1;\nSTUB=\"region\";\nVALUES(\"region\")=\"N\",\"S\";\n\
                    CODES(\"region\")=\"N\";\nDATA=\n1 2;";
        let c = run(file.as_bytes());
        // An unterminated string hides the rest of its record, up to the next `;` (line 4).
        assert_eq!(
            c.error_lines(),
            [
                "1:5: unexpected `K` after `BAD`, expected `=`",
                "2:16: unexpected `=`, expected `,` or `)`",
                "3:7: unterminated string, expected a closing `\"` on the same line",
                "7:1: CODES(\"region\") has 1 codes, expected 2 like its VALUES",
            ]
        );
        assert!(c.components.is_empty());
        let c = run(b"STUB=\"r\";\nVALUES(\"r\")=\"a\";\nDATA=\n1;\nmore");
        assert_eq!(
            c.error_lines(),
            ["5:1: text after the `;` that ends DATA, expected the end of the file"]
        );
        assert_eq!(c.rows.len(), 1);
        let c = run(b"STUB=\"r\";\n");
        assert_eq!(
            c.error_lines(),
            ["2:1: no `DATA=` keyword, expected the cells after `DATA=` at the end of the file"]
        );
        let c = run(b"HEADING=\"r\";\nDATA=\n1;");
        assert_eq!(
            c.error_lines(),
            ["1:9: no VALUES(\"r\"), expected the values of every variable"]
        );
        let c = run(b" \n ");
        assert_eq!(
            c.error_lines(),
            ["1:1: empty file, expected PC-Axis records such as `STUB=\"region\";` and `DATA=`"]
        );
    }

    #[test]
    fn a_huge_declared_table_is_refused_without_allocating_it() {
        let values: Vec<String> = (0..2000).map(|i| format!("\"{i}\"")).collect();
        let values = values.join(",");
        let file = format!(
            "STUB=\"a\",\"b\",\"c\";\nVALUES(\"a\")={values};\nVALUES(\"b\")={values};\n\
             VALUES(\"c\")={values};\nDATA=\n1 2;"
        );
        let c = run(file.as_bytes());
        assert_eq!(
            c.error_lines(),
            ["5:1: DATA has 2 cells, expected the product of the VALUES counts (2000 × 2000 × 2000), which is too large to read"]
        );
        assert!(c.rows.is_empty());
    }

    #[test]
    fn a_header_of_too_many_values_is_refused() {
        let mut file = String::from("NOTE=");
        for _ in 0..MAX_ITEMS {
            file.push_str("a,");
        }
        file.push_str("a;\nSTUB=\"r\";\nDATA=\n1;");
        let c = run(file.as_bytes());
        assert_eq!(
            c.error_lines(),
            [format!(
                "1:{}: more than 1000000 values before DATA, expected a table header of fewer",
                5 + 2 * MAX_ITEMS + 1
            )]
        );
        assert!(c.components.is_empty());
    }

    #[test]
    fn statistics_sweden_cpi_file() {
        let c = run(SCB);
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        assert_eq!(
            c.ids(),
            [
                ("Product group", Role::Dimension),
                ("period", Role::Time),
                ("value", Role::Measure),
                ("status", Role::Attribute),
                ("unit", Role::Attribute),
            ]
        );
        assert_eq!(c.rows.len(), 12 * 27);
        assert_eq!(c.rows[0], ["01", "2006-10", "240.25", "", "Index"]);
        assert_eq!(c.rows[323], ["01.2", "2008-12", "182.84", "", "Index"]);
        assert_eq!(c.origins[0][2], at(45, 1));
        assert_eq!(
            c.names[3],
            (0, "01.1.2".into(), "en".into(), "01.1.2 Meat".into())
        );
    }
}
