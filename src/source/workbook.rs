//! Excel and OpenDocument workbooks (.xlsx, .xlsm, .xls, .ods, told apart by their bytes), read
//! with calamine: one sheet, a header row found by its number or by the label in its first
//! column, and either one column per series (`wide`, as ABS time-series workbooks lay them out:
//! per-series metadata rows above a `Series ID` row, dates as Excel serial numbers below) or
//! one column per component (`long`). Positions are `Sheet!C12`.
//!
//! A workbook is a compressed or compound file that expands in memory, and calamine trusts
//! what it declares, so sizes are checked before calamine reads it: what a zip expands to, the
//! chains and tables of an .xls compound file and the extent its sheets declare and span, the
//! repeats of an .ods; then the cells and extent of the sheet read.

use std::collections::BTreeMap;
use std::io::{Cursor, Read};

use calamine::{Data, DataRef, Reader};

use super::{Component, Origin, Role, Sink};
use crate::dataset::calendar::{civil_from_days, days_from_civil};
use crate::diagnostic::excerpt;

/// How the cells of the sheet hold observations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// The first column holds periods, every other column of the header row is one series
    /// (its header cell the series id); each cell below is one observation.
    #[default]
    Wide,
    /// Every column of the header row is a component; each row below is one observation.
    Long,
}

/// The period a date stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Frequency {
    Annual,
    Quarterly,
    Monthly,
    Daily,
}

/// A sheet by name or by its 1-based place in the workbook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SheetRef {
    Index(usize),
    Name(String),
}

/// A row by the text of its first cell or by its 1-based number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowRef {
    Number(u32),
    Label(String),
}

/// Reads a positive whole number or a string; its text says what for, in messages.
struct NumberOrText(&'static str);

impl serde::de::Visitor<'_> for NumberOrText {
    type Value = Result<u32, String>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(self.0)
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
        match u32::try_from(v) {
            Ok(n) if n >= 1 => Ok(Ok(n)),
            _ => Err(E::invalid_value(serde::de::Unexpected::Signed(v), &self)),
        }
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
        self.visit_i64(i64::try_from(v).unwrap_or(-1))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Err(v.to_string()))
    }
}

impl<'de> serde::Deserialize<'de> for SheetRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = d.deserialize_any(NumberOrText(
            "a sheet name or its place in the workbook (1 for the first)",
        ))?;
        Ok(v.map_or_else(SheetRef::Name, |n| SheetRef::Index(n as usize)))
    }
}

impl<'de> serde::Deserialize<'de> for RowRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = d.deserialize_any(NumberOrText(
            "the text of the row's first cell or its number (1 for the first)",
        ))?;
        Ok(v.map_or_else(RowRef::Label, RowRef::Number))
    }
}

/// Options of the workbook reader (`[input.excel]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExcelOptions {
    /// The sheet: `"Data1"` or `2` (1-based). Default: the first.
    pub sheet: Option<SheetRef>,
    /// The 1-based number of the header row.
    pub header_row: Option<u32>,
    /// The text of the header row's first cell (`"Series ID"`), when `header_row` is not given.
    /// Neither: the first non-empty row.
    pub header: Option<String>,
    /// `wide` (the default) or `long`.
    pub layout: Layout,
    /// Component id -> the metadata row above the header that gives it per series (wide
    /// layout), by the text of its first cell or its number: `unit = "Unit"`,
    /// `description = 1`. `description` also gives the series' display names.
    pub metadata: BTreeMap<String, RowRef>,
    /// The period a date cell or serial number stands for: `annual` (2024), `quarterly`
    /// (2024-Q1, the quarter holding the date), `monthly` (2024-01) or `daily` (the default).
    pub frequency: Option<Frequency>,
    /// The id of the series component of the wide layout. Default `series_id`.
    pub series: Option<String>,
}

/// The most non-empty cells a sheet may hold.
const MAX_CELLS: usize = 5_000_000;
/// The extent (rows × columns from the first to the last non-empty cell) a sheet may span:
/// calamine holds .xls and .ods sheets as dense ranges of 32-byte cells, and a wide sheet
/// yields one observation per row and series. At least this many cells …
const MIN_EXTENT_BOUND: u64 = 1 << 20;
/// … or this many per byte of the file (a dense .xls spends 14 bytes or more per cell) …
const EXTENT_PER_BYTE: u64 = 4;
/// … and never more than this (1 GiB of cells).
const MAX_EXTENT_BOUND: u64 = 32 << 20;
/// What a zip workbook may expand to, per byte of the file, with a floor and a ceiling.
const EXPANSION_PER_BYTE: u64 = 100;
const MIN_EXPANSION: u64 = 16 << 20;
const MAX_EXPANSION: u64 = 512 << 20;

/// The kinds of workbook, told apart by their first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Xlsx,
    Xls,
    Ods,
}

/// A cell of the sheet: 0-based row and column.
type Pos = (u32, u32);

/// The non-empty cells of one sheet, by row, each row's cells by column.
struct Grid {
    /// How positions name the sheet: `Data1`, `'My sheet'`.
    sheet: String,
    rows: Vec<(u32, Vec<(u32, Data)>)>,
    first_col: u32,
    is_1904: bool,
}

impl Grid {
    fn new(sheet: &str, mut cells: Vec<(Pos, Data)>, is_1904: bool) -> Grid {
        cells.sort_by_key(|c| c.0);
        let first_col = cells.iter().map(|c| c.0 .1).min().unwrap_or(0);
        let mut rows: Vec<(u32, Vec<(u32, Data)>)> = Vec::new();
        for ((r, c), d) in cells {
            match rows.last_mut() {
                Some((row, cols)) if *row == r => cols.push((c, d)),
                _ => rows.push((r, vec![(c, d)])),
            }
        }
        Grid {
            sheet: sheet_ref(sheet),
            rows,
            first_col,
            is_1904,
        }
    }

    fn row(&self, r: u32) -> Option<&[(u32, Data)]> {
        self.rows
            .binary_search_by_key(&r, |(row, _)| *row)
            .ok()
            .map(|i| self.rows[i].1.as_slice())
    }

    fn cell(&self, (r, c): Pos) -> &Data {
        static EMPTY: Data = Data::Empty;
        self.row(r)
            .and_then(|cols| {
                cols.binary_search_by_key(&c, |(col, _)| *col)
                    .ok()
                    .map(|i| &cols[i].1)
            })
            .unwrap_or(&EMPTY)
    }

    fn at(&self, pos: Pos) -> Origin {
        Origin::Path(format!("{}!{}", self.sheet, cell_name(pos)))
    }

    /// The trimmed text of a cell, for labels: "" unless it is a string.
    fn label(&self, pos: Pos) -> &str {
        match self.cell(pos) {
            Data::String(s) => s.trim(),
            _ => "",
        }
    }
}

/// A sheet name as a position names it, quoted as Excel quotes it when it is not a plain
/// name, and cut short (a hostile name must not fill every message).
fn sheet_ref(name: &str) -> String {
    let short: String = name.chars().take(40).collect();
    let plain = !short.is_empty()
        && short
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '.')
        && !short.starts_with(|c: char| c.is_ascii_digit());
    if plain {
        short
    } else {
        format!("'{}'", short.replace('\'', "''"))
    }
}

/// `C12` for row 11, column 2 (0-based).
pub fn cell_name((r, c): Pos) -> String {
    let mut letters = Vec::new();
    let mut n = c as u64 + 1;
    while n > 0 {
        let rem = ((n - 1) % 26) as u8;
        letters.push(b'A' + rem);
        n = (n - 1) / 26;
    }
    letters.reverse();
    format!(
        "{}{}",
        String::from_utf8(letters).expect("ASCII letters"),
        r as u64 + 1
    )
}

/// Reads a workbook's bytes into `sink`.
pub fn read(bytes: &[u8], options: &ExcelOptions, sink: &mut dyn Sink) {
    let grid = match load(bytes, options) {
        Ok(g) => g,
        Err(message) => return sink.error(Origin::File, message),
    };
    let Some(header) = header_row(&grid, options, sink) else {
        return;
    };
    match options.layout {
        Layout::Wide => wide(&grid, header, options, sink),
        Layout::Long => long(&grid, header, options, sink),
    }
}

fn unreadable(what: impl std::fmt::Display) -> String {
    let text = what.to_string();
    let short: String = text.chars().take(200).collect();
    format!("unreadable workbook: {short}, expected an .xlsx, .xlsm, .xls or .ods file")
}

fn kind(bytes: &[u8]) -> Result<Kind, String> {
    if bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) {
        return Ok(Kind::Xls);
    }
    if bytes.starts_with(b"PK\x03\x04") {
        // An OpenDocument spreadsheet keeps its cells in content.xml, Office Open XML in xl/.
        let ods = zip::ZipArchive::new(Cursor::new(bytes))
            .is_ok_and(|z| z.index_for_name("content.xml").is_some());
        return Ok(if ods { Kind::Ods } else { Kind::Xlsx });
    }
    Err(unreadable(
        "neither a zip (.xlsx, .ods) nor a compound document (.xls)",
    ))
}

/// The bound on a sheet's extent for a file of `len` bytes.
fn extent_bound(len: usize) -> u64 {
    EXTENT_PER_BYTE
        .saturating_mul(len as u64)
        .clamp(MIN_EXTENT_BOUND, MAX_EXTENT_BOUND)
}

/// Opens the workbook and reads the chosen sheet's non-empty cells, within the bounds.
fn load(bytes: &[u8], options: &ExcelOptions) -> Result<Grid, String> {
    let kind = kind(bytes)?;
    match kind {
        Kind::Xlsx | Kind::Ods => check_expansion(bytes)?,
        Kind::Xls => check_xls(bytes)?,
    }
    if kind == Kind::Ods {
        check_ods_repeats(bytes)?;
    }
    // calamine is not written against hostile files: a panic in it is a bad file, not a
    // crash of the exporter.
    let loaded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        load_sheet(kind, bytes, options)
    }));
    let grid = loaded.unwrap_or_else(|_| Err(unreadable("malformed contents")))?;
    check_extent(&grid, bytes.len())?;
    Ok(grid)
}

/// The sheet's name among the workbook's.
fn pick_sheet(names: &[String], options: &ExcelOptions) -> Result<String, String> {
    let list = || {
        names
            .iter()
            .take(20)
            .map(|n| format!("`{}`", n.chars().take(40).collect::<String>()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match &options.sheet {
        None => names.first().cloned().ok_or_else(|| unreadable("no sheet")),
        Some(SheetRef::Name(n)) => names.iter().find(|s| *s == n).cloned().ok_or_else(|| {
            format!(
                "no sheet `{}` in the workbook, expected one of {}",
                n.chars().take(40).collect::<String>(),
                list()
            )
        }),
        Some(SheetRef::Index(i)) => names.get(i.wrapping_sub(1)).cloned().ok_or_else(|| {
            format!(
                "no sheet {i} in the workbook, expected 1 to {} ({})",
                names.len(),
                list()
            )
        }),
    }
}

fn too_many_cells() -> String {
    format!("the sheet has more than {MAX_CELLS} non-empty cells, expected a smaller sheet")
}

fn load_sheet(kind: Kind, bytes: &[u8], options: &ExcelOptions) -> Result<Grid, String> {
    match kind {
        Kind::Xlsx => {
            let mut wb: calamine::Xlsx<_> =
                calamine::open_workbook_from_rs(Cursor::new(bytes)).map_err(unreadable)?;
            let name = pick_sheet(&wb.sheet_names(), options)?;
            let is_1904 = wb.has_1904_epoch();
            // Cell by cell: calamine's whole-sheet range is dense, as large as the sheet's
            // extent, which a small hostile file can make huge.
            let mut reader = wb.worksheet_cells_reader(&name).map_err(unreadable)?;
            let mut cells = Vec::new();
            while let Some(cell) = reader.next_cell().map_err(unreadable)? {
                let value: Data = match cell.get_value() {
                    DataRef::Empty => continue,
                    v => v.clone().into(),
                };
                if cells.len() >= MAX_CELLS {
                    return Err(too_many_cells());
                }
                cells.push((cell.get_position(), value));
            }
            Ok(Grid::new(&name, cells, is_1904))
        }
        Kind::Xls => {
            let mut wb: calamine::Xls<_> =
                calamine::open_workbook_from_rs(Cursor::new(bytes)).map_err(unreadable)?;
            let name = pick_sheet(&wb.sheet_names(), options)?;
            let is_1904 = wb.has_1904_epoch();
            let range = wb.worksheet_range(&name).map_err(unreadable)?;
            Ok(Grid::new(&name, used(&range)?, is_1904))
        }
        Kind::Ods => {
            let mut wb: calamine::Ods<_> =
                calamine::open_workbook_from_rs(Cursor::new(bytes)).map_err(unreadable)?;
            let name = pick_sheet(&wb.sheet_names(), options)?;
            let range = wb.worksheet_range(&name).map_err(unreadable)?;
            // OpenDocument dates are ISO 8601 text, not serial numbers.
            Ok(Grid::new(&name, used(&range)?, false))
        }
    }
}

/// The non-empty cells of a calamine range, at absolute positions.
fn used(range: &calamine::Range<Data>) -> Result<Vec<(Pos, Data)>, String> {
    let (r0, c0) = range.start().unwrap_or((0, 0));
    let mut cells = Vec::new();
    for (r, c, d) in range.used_cells() {
        if cells.len() >= MAX_CELLS {
            return Err(too_many_cells());
        }
        cells.push(((r0 + r as u32, c0 + c as u32), d.clone()));
    }
    Ok(cells)
}

/// A zip workbook (.xlsx, .ods) must not expand beyond a bound related to its size: every
/// entry is decompressed and counted (declared sizes may lie), before calamine reads any.
fn check_expansion(bytes: &[u8]) -> Result<(), String> {
    let bound = EXPANSION_PER_BYTE
        .saturating_mul(bytes.len() as u64)
        .clamp(MIN_EXPANSION, MAX_EXPANSION);
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(unreadable)?;
    let mut total: u64 = 0;
    let mut buf = vec![0u8; 64 << 10];
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(unreadable)?;
        loop {
            let n = match entry.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => return Err(unreadable(e)),
            };
            total += n as u64;
            if total > bound {
                return Err(format!(
                    "the workbook expands to more than {} MiB, expected at most {EXPANSION_PER_BYTE} times its size of {} bytes",
                    bound >> 20,
                    bytes.len()
                ));
            }
        }
    }
    Ok(())
}

/// An .xls is a compound file (sectors chained by allocation tables) holding a BIFF
/// `Workbook` stream. calamine trusts the sizes and chains it declares (a looping chain or a
/// huge declared table would exhaust memory or never end) and makes each sheet a dense range
/// from its farthest cells, so the structure is walked here first: every chain it follows
/// must end within the file, every size fit the file, and every sheet's declared dimensions
/// and cells span no more than the bound.
fn check_xls(bytes: &[u8]) -> Result<(), String> {
    let cfb = Compound::open(bytes)?;
    let fat = cfb.fat()?;
    let whole = |id: u32| cfb.sector(id).map(<[u8]>::to_vec);
    let dirs = cfb.chain(u32_at(bytes, 48), &fat, cfb.ss, None, &whole)?;
    let entries = directory(&dirs, cfb.ss);
    let Some(root) = entries.first() else {
        return Err(bad_cfb("without a directory"));
    };
    let too_big = |size: u64| size > bytes.len() as u64;
    let mini_fat_len = u32_at(bytes, 64) as usize;
    let (mini_fat, mini_stream) = if mini_fat_len > 0 {
        if too_big(root.2) {
            return Err(bad_cfb("whose mini stream is larger than the file"));
        }
        let stream = cfb.chain(root.1, &fat, cfb.ss, Some(root.2 as usize), &whole)?;
        let len = Some(mini_fat_len * cfb.ss);
        let table = cfb.chain(u32_at(bytes, 60), &fat, cfb.ss, len, &whole)?;
        (
            table.chunks_exact(4).map(|c| u32_at(c, 0)).collect(),
            stream,
        )
    } else {
        (Vec::new(), Vec::new())
    };
    let Some(book) = ["Workbook", "Book", "WORKBOOK", "BOOK"]
        .iter()
        .find_map(|name| entries.iter().find(|e| e.0 == *name))
    else {
        return Err(bad_cfb("without a Workbook stream"));
    };
    if too_big(book.2) {
        return Err(bad_cfb("whose Workbook stream is larger than the file"));
    }
    let stream = if book.2 < 4096 {
        let mini = |id: u32| -> Result<Vec<u8>, String> {
            let start = (id as usize).saturating_mul(64);
            mini_stream
                .get(start..start.saturating_add(64))
                .map(<[u8]>::to_vec)
                .ok_or_else(|| bad_cfb("with a mini sector beyond its mini stream"))
        };
        cfb.chain(book.1, &mini_fat, 64, Some(book.2 as usize), &mini)?
    } else {
        cfb.chain(book.1, &fat, cfb.ss, Some(book.2 as usize), &whole)?
    };
    check_biff(&stream, extent_bound(bytes.len()), bytes.len())
}

fn bad_cfb(what: &str) -> String {
    unreadable(format!("compound document {what}"))
}

/// The little-endian u32 at `o`, 0 past the end.
fn u32_at(b: &[u8], o: usize) -> u32 {
    b.get(o..o + 4)
        .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

const CFB_END: u32 = 0xFFFF_FFFE;
const CFB_RESERVED: u32 = 0xFFFF_FFFA;

/// A compound document (the container of an .xls) whose header was checked.
struct Compound<'b> {
    bytes: &'b [u8],
    /// Sector size.
    ss: usize,
    /// Sector ids that can lie in the file.
    n: u64,
}

impl<'b> Compound<'b> {
    fn open(bytes: &'b [u8]) -> Result<Compound<'b>, String> {
        if bytes.len() < 512 {
            return Err(bad_cfb("shorter than its header"));
        }
        let ss: usize = match u16::from_le_bytes([bytes[30], bytes[31]]) {
            9 => 512,
            12 => 4096,
            _ => return Err(bad_cfb("with a sector size other than 512 or 4096 bytes")),
        };
        let n = (bytes.len() / ss) as u64 + 1;
        // What calamine reserves room for from the header: the FAT's length, and a DIFAT
        // capacity it reads from bytes 62-65.
        if u64::from(u32_at(bytes, 44)) > n
            || u64::from(u32_at(bytes, 64)) > n
            || u32_at(bytes, 62) > 1 << 24
        {
            return Err(bad_cfb("declaring more sectors than the file holds"));
        }
        Ok(Compound { bytes, ss, n })
    }

    fn sector(&self, id: u32) -> Result<&'b [u8], String> {
        let start = (id as usize)
            .checked_add(1)
            .and_then(|i| i.checked_mul(self.ss))
            .ok_or_else(|| bad_cfb("with a sector beyond its end"))?;
        self.bytes
            .get(start..start.saturating_add(self.ss))
            .ok_or_else(|| bad_cfb("with a sector beyond its end"))
    }

    /// The sector allocation table, through the DIFAT: 109 entries in the header, then a
    /// chain of sectors, each ending with the next one's id.
    fn fat(&self) -> Result<Vec<u32>, String> {
        let bytes = self.bytes;
        let mut difat: Vec<u32> = (0..109).map(|k| u32_at(bytes, 76 + 4 * k)).collect();
        let mut id = u32_at(bytes, 68);
        let mut steps = 0;
        while id < CFB_RESERVED {
            steps += 1;
            if steps > self.n {
                return Err(bad_cfb("whose sector allocation chain loops"));
            }
            let s = self.sector(id)?;
            difat.extend(s.chunks_exact(4).map(|c| u32_at(c, 0)));
            id = difat.pop().unwrap_or(CFB_END);
        }
        let fat_sectors: Vec<u32> = difat.into_iter().filter(|&i| i < 0xFFFF_FFFC).collect();
        if fat_sectors.len() as u64 > self.n {
            return Err(bad_cfb("declaring more sectors than the file holds"));
        }
        let mut fat: Vec<u32> = Vec::new();
        for id in fat_sectors {
            fat.extend(self.sector(id)?.chunks_exact(4).map(|c| u32_at(c, 0)));
        }
        Ok(fat)
    }

    /// A chain of sectors of `size` bytes from `first` through `table`, at most `len` bytes
    /// (None: the whole chain, which must end).
    fn chain(
        &self,
        first: u32,
        table: &[u32],
        size: usize,
        len: Option<usize>,
        get: &dyn Fn(u32) -> Result<Vec<u8>, String>,
    ) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        let mut id = first;
        let mut steps = 0u64;
        let limit = len.map_or(self.n.saturating_mul(self.ss as u64 / size as u64), |l| {
            (l / size) as u64 + 1
        });
        while id != CFB_END {
            steps += 1;
            if steps > limit.max(1) {
                return Err(bad_cfb("whose sector chain loops"));
            }
            out.extend_from_slice(&get(id)?);
            if len.is_some_and(|l| out.len() >= l) {
                break;
            }
            id = *table
                .get(id as usize)
                .ok_or_else(|| bad_cfb("with a chain leaving its allocation table"))?;
        }
        if let Some(l) = len {
            out.truncate(l);
        }
        Ok(out)
    }
}

/// Directory entries: a UTF-16 name, its start sector and its stream's size.
fn directory(dirs: &[u8], ss: usize) -> Vec<(String, u32, u64)> {
    dirs.chunks_exact(128)
        .map(|e| {
            let name_len = (u16::from_le_bytes([e[64], e[65]]) as usize / 2).clamp(1, 32) - 1;
            let units: Vec<u16> = e[..name_len * 2]
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect();
            let size = if ss == 512 {
                u64::from(u32_at(e, 120))
            } else {
                u64::from(u32_at(e, 120)) | (u64::from(u32_at(e, 124)) << 32)
            };
            (String::from_utf16_lossy(&units), u32_at(e, 116), size)
        })
        .collect()
}

/// BIFF records from `at`, as calamine reads them: type, body.
fn biff_records(stream: &[u8], at: usize) -> impl Iterator<Item = (u16, &[u8])> {
    let mut rest = stream.get(at..).unwrap_or(&[]);
    std::iter::from_fn(move || {
        if rest.len() < 4 {
            return None;
        }
        let typ = u16::from_le_bytes([rest[0], rest[1]]);
        let len = u16::from_le_bytes([rest[2], rest[3]]) as usize;
        let body = rest.get(4..4 + len)?;
        rest = &rest[4 + len..];
        Some((typ, body))
    })
}

/// Each sheet of a BIFF workbook stream (found as calamine finds them, by the positions its
/// BOUNDSHEET records give): its declared dimensions and the extent of its cells.
fn check_biff(stream: &[u8], bound: u64, file_len: usize) -> Result<(), String> {
    let u16_at = |b: &[u8], o: usize| -> u64 {
        b.get(o..o + 2)
            .map_or(0, |b| u64::from(u16::from_le_bytes([b[0], b[1]])))
    };
    let u32_at = |b: &[u8], o: usize| -> u64 {
        b.get(o..o + 4).map_or(0, |b| {
            u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        })
    };
    let refuse = |rows: u64, cols: u64| {
        Err(format!(
            "a sheet spans {rows} rows × {cols} columns, expected at most {bound} cells for a file of {file_len} bytes"
        ))
    };
    let mut sheets = Vec::new();
    for (typ, body) in biff_records(stream, 0) {
        match typ {
            0x0085 if body.len() >= 4 => sheets.push(u32_at(body, 0) as usize),
            0x000A => break,
            _ => {}
        }
    }
    for pos in sheets {
        // First and last row and column of the sheet's cells.
        let mut span: Option<(u64, u64, u64, u64)> = None;
        for (typ, body) in biff_records(stream, pos) {
            let cells = match typ {
                0x0200 => {
                    let (r0, r1, c0, c1) = if body.len() >= 14 {
                        (
                            u32_at(body, 0),
                            u32_at(body, 4),
                            u16_at(body, 8),
                            u16_at(body, 10),
                        )
                    } else {
                        (
                            u16_at(body, 0),
                            u16_at(body, 2),
                            u16_at(body, 4),
                            u16_at(body, 6),
                        )
                    };
                    // calamine reserves (r1 - r0 + 1) × (c1 - c0 + 1) cells.
                    let (rows, cols) = (r1.wrapping_sub(r0) + 1, c1.wrapping_sub(c0) + 1);
                    if r1 < r0 || c1 < c0 || rows.saturating_mul(cols) > bound {
                        return refuse(rows, cols);
                    }
                    None
                }
                0x0203 | 0x0204 | 0x0205 | 0x027E | 0x00FD | 0x0006 | 0x00D6 if body.len() >= 4 => {
                    Some((u16_at(body, 0), u16_at(body, 2), u16_at(body, 2)))
                }
                0x00BD if body.len() >= 6 => {
                    let count = ((body.len() - 6) / 6) as u64;
                    let first = u16_at(body, 2);
                    Some((u16_at(body, 0), first, first + count.max(1) - 1))
                }
                0x000A => break,
                _ => None,
            };
            if let Some((r, c0, c1)) = cells {
                let s = span.map_or((r, r, c0, c1), |(a, b, c, d)| {
                    (a.min(r), b.max(r), c.min(c0), d.max(c1))
                });
                span = Some(s);
                let (rows, cols) = (s.1 - s.0 + 1, s.3 - s.2 + 1);
                if rows.saturating_mul(cols) > bound {
                    return refuse(rows, cols);
                }
            }
        }
    }
    Ok(())
}

/// An .ods repeats a cell or a row by an attribute, and calamine expands the repeats into a
/// dense sheet: a small file could describe billions of cells. The cells calamine would hold
/// (those with a value, and the empty ones before them in their row) and the extent of the
/// cells with a value, in any sheet, must stay within the bound (trailing empty rows and
/// columns, which office suites write as huge repeats, cost nothing and are not counted).
fn check_ods_repeats(bytes: &[u8]) -> Result<(), String> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(unreadable)?;
    let mut xml = Vec::new();
    zip.by_name("content.xml")
        .map_err(unreadable)?
        .read_to_end(&mut xml)
        .map_err(unreadable)?;
    let bound = extent_bound(bytes.len());
    let number = |tag: &[u8], attr: &[u8]| -> u64 {
        let Some(at) = tag.windows(attr.len()).position(|w| w == attr) else {
            return 1;
        };
        let digits: Vec<u8> = tag[at + attr.len()..]
            .iter()
            .skip_while(|b| **b == b'"' || **b == b'\'')
            .take_while(|b| b.is_ascii_digit())
            .copied()
            .collect();
        std::str::from_utf8(&digits)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(u64::MAX)
    };
    let refuse = || {
        Err(format!(
            "the sheets repeat cells more than {bound} times, expected at most that for a file of {} bytes",
            bytes.len()
        ))
    };
    let (mut held, mut row, mut row_repeats, mut col, mut pending) = (0u64, 0u64, 1u64, 0u64, 0u64);
    // First and last row and column of the cells with a value in the current sheet.
    let mut span: Option<(u64, u64, u64, u64)> = None;
    let mut i = 0;
    while let Some(off) = xml[i..].iter().position(|&b| b == b'<') {
        let start = i + off;
        let end = xml[start..]
            .iter()
            .position(|&b| b == b'>')
            .map_or(xml.len(), |e| start + e);
        let tag = &xml[start..end];
        let closed = tag.ends_with(b"/");
        if tag.starts_with(b"<table:table ") || tag == b"<table:table" {
            (row, span) = (0, None);
        } else if tag.starts_with(b"<table:table-row") {
            (row_repeats, col, pending) = (number(tag, b"table:number-rows-repeated="), 0, 0);
            if closed {
                row = row.saturating_add(row_repeats);
            }
        } else if tag.starts_with(b"</table:table-row") {
            row = row.saturating_add(row_repeats);
        } else if tag.starts_with(b"<table:table-cell")
            || tag.starts_with(b"<table:covered-table-cell")
        {
            let repeats = number(tag, b"table:number-columns-repeated=");
            if tag.windows(17).any(|w| w == b"office:value-type") {
                held = held.saturating_add(pending).saturating_add(repeats);
                pending = 0;
                let last_row = row.saturating_add(row_repeats - 1);
                let last_col = col.saturating_add(repeats - 1);
                let (r0, r1, c0, c1) = span.unwrap_or((row, last_row, col, last_col));
                let s = (r0.min(row), r1.max(last_row), c0.min(col), c1.max(last_col));
                span = Some(s);
                let extent = (s.1 - s.0 + 1).saturating_mul(s.3 - s.2 + 1);
                if held > bound || extent > bound {
                    return refuse();
                }
            } else {
                pending = pending.saturating_add(repeats);
            }
            col = col.saturating_add(repeats);
        }
        i = end;
    }
    Ok(())
}

/// The sheet's non-empty cells must span an extent the file's size can account for: a wide
/// sheet yields one observation per row and series, empty or not.
fn check_extent(grid: &Grid, len: usize) -> Result<(), String> {
    let (Some(first), Some(last)) = (grid.rows.first(), grid.rows.last()) else {
        return Ok(());
    };
    let last_col = grid
        .rows
        .iter()
        .filter_map(|(_, cols)| cols.last().map(|c| c.0))
        .max()
        .unwrap_or(0);
    let rows = u64::from(last.0 - first.0) + 1;
    let cols = u64::from(last_col - grid.first_col) + 1;
    let bound = extent_bound(len);
    if rows.saturating_mul(cols) > bound {
        return Err(format!(
            "sheet {} spans {rows} rows × {cols} columns, expected at most {bound} cells for a file of {len} bytes",
            grid.sheet
        ));
    }
    Ok(())
}

/// The 0-based header row, or None (reported).
fn header_row(grid: &Grid, options: &ExcelOptions, sink: &mut dyn Sink) -> Option<u32> {
    let Some(&(first_row, _)) = grid.rows.first() else {
        sink.error(
            Origin::File,
            format!(
                "sheet {} is empty, expected a header row and data",
                grid.sheet
            ),
        );
        return None;
    };
    let last_row = grid.rows.last().map_or(0, |r| r.0);
    if let Some(n) = options.header_row {
        if n == 0 || n - 1 > last_row {
            sink.error(
                grid.at((first_row, grid.first_col)),
                format!(
                    "header_row {n} is not a row of the sheet, expected 1 to {}",
                    last_row + 1
                ),
            );
            return None;
        }
        return Some(n - 1);
    }
    let Some(label) = &options.header else {
        return Some(first_row);
    };
    let found = grid.rows.iter().map(|(r, _)| *r).find(|&r| {
        grid.label((r, grid.first_col))
            .eq_ignore_ascii_case(label.trim())
    });
    if found.is_none() {
        sink.error(
            grid.at((first_row, grid.first_col)),
            format!(
                "no row labelled `{}` in column {}, expected the header row's first cell, one of: {}",
                excerpt(label),
                column_name(grid.first_col),
                labels(grid, first_row, last_row)
            ),
        );
    }
    found
}

/// The labels of the first column between two rows, for messages.
fn labels(grid: &Grid, from: u32, to: u32) -> String {
    let mut out: Vec<String> = grid
        .rows
        .iter()
        .filter(|(r, _)| (from..=to).contains(r))
        .map(|(r, _)| grid.label((*r, grid.first_col)))
        .filter(|l| !l.is_empty())
        .take(12)
        .map(|l| format!("`{}`", excerpt(l)))
        .collect();
    if out.is_empty() {
        out.push("none".into());
    }
    out.join(", ")
}

fn column_name(c: u32) -> String {
    let name = cell_name((0, c));
    name.trim_end_matches('1').to_string()
}

/// A cell's value as written: a number in its shortest round-trip form, a date as a period
/// of the frequency (or an error), text as it is, "" for nothing.
fn render(d: &Data, is_1904: bool, freq: Option<Frequency>) -> Result<String, String> {
    Ok(match d {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        Data::Float(f) => number(*f),
        Data::Int(i) => i.to_string(),
        Data::Bool(b) => if *b { "TRUE" } else { "FALSE" }.into(),
        Data::DateTime(dt) if dt.is_datetime() => {
            let (y, m, day) = serial_date(dt.as_f64(), is_1904)?;
            date_period(y, m, day, dt.as_f64(), freq)?
        }
        Data::DateTime(dt) => number(dt.as_f64()),
        Data::DateTimeIso(s) => match iso_date(s) {
            Some((y, m, day)) => period_of(y, m, day, freq),
            None => s.clone(),
        },
        Data::DurationIso(s) => s.clone(),
        Data::Error(e) => e.to_string(),
    })
}

/// A float in its shortest form that reads back as the same double: 2923556.4817, not
/// 2923556.4816999999.
fn number(f: f64) -> String {
    if f == 0.0 {
        return "0".into();
    }
    format!("{f}")
}

/// `YYYY-MM-DD…` at the start of an ISO 8601 text.
fn iso_date(s: &str) -> Option<(i64, u32, u32)> {
    let b = s.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y: i64 = s.get(0..4)?.parse().ok()?;
    let m: u32 = s.get(5..7)?.parse().ok()?;
    let d: u32 = s.get(8..10)?.parse().ok()?;
    let valid = (1..=12).contains(&m)
        && d >= 1
        && i64::from(d) <= crate::dataset::calendar::days_in_month(y, i64::from(m));
    valid.then_some((y, m, d))
}

/// The civil date of an Excel serial number (the whole days of it). The 1900 system counts
/// 1900-01-01 as 1 and has a 29 February 1900 (60) that the calendar does not: it is returned
/// as (1900, 2, 29). The 1904 system counts 1904-01-01 as 0.
pub fn serial_date(serial: f64, is_1904: bool) -> Result<(i64, u32, u32), String> {
    // 9999-12-31, Excel's last date, in either system.
    let last = if is_1904 { 2_957_003.0 } else { 2_958_465.0 };
    let first = if is_1904 { 0.0 } else { 1.0 };
    if !serial.is_finite() || serial < first || serial >= last + 1.0 {
        return Err(format!(
            "serial number {} is not a date of the {} date system, expected {first} to {last}",
            number(serial),
            if is_1904 { "1904" } else { "1900" }
        ));
    }
    let n = serial.floor() as i64;
    let days = if is_1904 {
        days_from_civil(1904, 1, 1) + n
    } else if n == 60 {
        return Ok((1900, 2, 29));
    } else if n < 60 {
        days_from_civil(1900, 1, 1) + n - 1
    } else {
        days_from_civil(1899, 12, 30) + n
    };
    let (y, m, d) = civil_from_days(days);
    Ok((y, m as u32, d as u32))
}

/// A date as the period of `freq` holding it; 1900-02-29 (which the 1900 system counts but
/// the calendar lacks) is no day.
fn date_period(
    y: i64,
    m: u32,
    d: u32,
    serial: f64,
    freq: Option<Frequency>,
) -> Result<String, String> {
    let real = d >= 1
        && m >= 1
        && i64::from(d) <= crate::dataset::calendar::days_in_month(y, i64::from(m));
    if !real && matches!(freq, None | Some(Frequency::Daily)) {
        return Err(format!(
            "serial number {} is {y}-{m:02}-{d:02}, a day the 1900 date system counts but the calendar does not have, expected another date",
            number(serial)
        ));
    }
    Ok(period_of(y, m, d, freq))
}

fn period_of(y: i64, m: u32, d: u32, freq: Option<Frequency>) -> String {
    match freq {
        Some(Frequency::Annual) => format!("{y:04}"),
        Some(Frequency::Quarterly) => format!("{y:04}-Q{}", (m - 1) / 3 + 1),
        Some(Frequency::Monthly) => format!("{y:04}-{m:02}"),
        Some(Frequency::Daily) | None => format!("{y:04}-{m:02}-{d:02}"),
    }
}

/// A period cell of the wide layout: a number is a serial date (or a year, when it is a whole
/// number from 1000 to 2999: publishers type years as numbers, and those serial numbers are
/// days of 1902 to 1912 that no series uses), a date cell its date, text the period as
/// written.
fn period_cell(d: &Data, is_1904: bool, freq: Option<Frequency>) -> Result<String, String> {
    match d {
        Data::Float(_) | Data::Int(_) => {
            let serial = match d {
                Data::Float(f) => *f,
                Data::Int(i) => *i as f64,
                _ => unreachable!("matched above"),
            };
            if serial.fract() == 0.0 && (1000.0..3000.0).contains(&serial) {
                return Ok(number(serial));
            }
            let (y, m, day) = serial_date(serial, is_1904)?;
            date_period(y, m, day, serial, freq)
        }
        Data::String(s) => Ok(s.trim().to_string()),
        other => render(other, is_1904, freq),
    }
}

/// For `init`: where a time-series workbook keeps its data, as `[input.excel]` options (a
/// TOML table) with what was seen. The first sheet whose first column holds dates below a
/// header row; the rows above the header, by their first cell's text (a row without one is
/// the series' description), become metadata; the frequency is the `Frequency` row's, else the
/// spacing of the first two dates. `id` makes a component id of a metadata row's label.
pub fn guess_layout(
    bytes: &[u8],
    id: &dyn Fn(&str) -> String,
) -> Result<(toml::Table, Vec<String>), String> {
    let mut last_error = String::from("no sheet");
    for i in 1..=64 {
        let options = ExcelOptions {
            sheet: Some(SheetRef::Index(i)),
            ..ExcelOptions::default()
        };
        let grid = match load(bytes, &options) {
            Ok(g) => g,
            Err(e) if e.starts_with("no sheet") => break,
            Err(e) => {
                last_error = e;
                continue;
            }
        };
        if let Some(found) = guess_sheet(&grid, i, id) {
            return Ok(found);
        }
    }
    Err(format!(
        "no sheet with dates in its first column below a header row, expected a time-series workbook ({last_error})"
    ))
}

/// A whole serial number of a date from 1910 on, or a date cell.
fn is_date_cell(d: &Data) -> bool {
    match d {
        Data::DateTime(_) | Data::DateTimeIso(_) => true,
        Data::Float(f) => f.fract() == 0.0 && (3654.0..2_958_466.0).contains(f),
        Data::Int(i) => (3654..2_958_466).contains(i),
        _ => false,
    }
}

fn serial_of(d: &Data) -> Option<f64> {
    match d {
        Data::DateTime(dt) => Some(dt.as_f64()),
        Data::Float(f) => Some(*f),
        Data::Int(i) => Some(*i as f64),
        _ => None,
    }
}

fn guess_sheet(
    grid: &Grid,
    index: usize,
    id_of: &dyn Fn(&str) -> String,
) -> Option<(toml::Table, Vec<String>)> {
    use toml::Value;
    let col = grid.first_col;
    let rows: Vec<u32> = grid.rows.iter().map(|(r, _)| *r).collect();
    // The header: the row just above the first run of two date rows, with text to its right.
    let at = rows.windows(3).position(|w| {
        is_date_cell(grid.cell((w[1], col)))
            && is_date_cell(grid.cell((w[2], col)))
            && !is_date_cell(grid.cell((w[0], col)))
            && grid.row(w[0]).is_some_and(|cells| {
                cells
                    .iter()
                    .any(|(c, d)| *c > col && matches!(d, Data::String(_)))
            })
    })?;
    let header = rows[at];
    let mut t = toml::Table::new();
    let mut notes = vec![format!(
        "workbook sheet {} holds the series, one per column",
        grid.sheet
    )];
    t.insert("sheet".into(), Value::Integer(index as i64));
    match grid.label((header, col)) {
        "" => {
            t.insert("header_row".into(), Value::Integer(i64::from(header) + 1));
        }
        label => {
            t.insert("header".into(), Value::String(label.into()));
        }
    }
    notes.push(format!(
        "row {} holds the series ids; the dates below it in column {} are the periods",
        header + 1,
        column_name(col)
    ));
    let mut metadata = toml::Table::new();
    let mut frequency = None;
    for &r in rows.iter().take(at) {
        let label = grid.label((r, col));
        let id = id_of(label);
        if label.is_empty() {
            if !metadata.contains_key("description") {
                metadata.insert("description".into(), Value::Integer(i64::from(r) + 1));
            }
        } else if !["period", "value", "series_id", "description"].contains(&id.as_str())
            && !metadata.contains_key(&id)
        {
            if id == "frequency" {
                frequency = grid.row(r).and_then(|cells| {
                    cells.iter().find_map(|(c, d)| match d {
                        Data::String(s) if *c > col => frequency_word(s),
                        _ => None,
                    })
                });
            }
            metadata.insert(id, Value::String(label.into()));
        }
    }
    if !metadata.is_empty() {
        notes.push(format!(
            "the rows above it describe each series: {}",
            metadata.keys().cloned().collect::<Vec<_>>().join(", ")
        ));
        t.insert("metadata".into(), Value::Table(metadata));
    }
    let spacing = || {
        let a = serial_of(grid.cell((rows[at + 1], col)))?;
        let b = serial_of(grid.cell((rows[at + 2], col)))?;
        Some(match (b - a).abs() {
            d if d >= 360.0 => "annual",
            d if d >= 88.0 => "quarterly",
            d if d >= 27.0 => "monthly",
            _ => "daily",
        })
    };
    if let Some(f) = frequency.or_else(spacing) {
        notes.push(format!("dates are read as {f} periods"));
        t.insert("frequency".into(), Value::String(f.into()));
    }
    Some((t, notes))
}

/// A frequency as a workbook's `Frequency` row writes it.
fn frequency_word(s: &str) -> Option<&'static str> {
    match s.trim().to_ascii_lowercase().as_str() {
        "year" | "annual" | "yearly" => Some("annual"),
        "quarter" | "quarterly" => Some("quarterly"),
        "month" | "monthly" => Some("monthly"),
        "day" | "daily" => Some("daily"),
        _ => None,
    }
}

/// The wide layout: the first column holds periods, every other header cell names a series.
fn wide(grid: &Grid, header: u32, options: &ExcelOptions, sink: &mut dyn Sink) {
    let series_id = options.series.as_deref().unwrap_or("series_id");
    let period_col = grid.first_col;
    let duplicate = |id: &str, other: &str| {
        format!("duplicate series id `{id}` (also in column {other}), expected unique ids in the header row")
    };
    let (series, bad) = header_ids(grid, header, period_col + 1, &duplicate, sink);
    if series.is_empty() {
        sink.error(
            grid.at((header, period_col)),
            format!(
                "no series id in header row {} right of column {}, expected one per series column",
                header + 1,
                column_name(period_col)
            ),
        );
        return;
    }
    let Some(meta) = metadata_rows(grid, header, options, series_id, sink) else {
        return;
    };
    if bad {
        return;
    }

    let mut components = vec![Component::new(series_id, Role::Dimension)];
    components.extend(
        meta.iter()
            .map(|(id, _)| Component::new(id.as_str(), Role::Attribute)),
    );
    components.push(Component::new("period", Role::Time));
    components.push(Component::new("value", Role::Measure));
    let n_meta = meta.len();
    let header_origin = |i: usize| match i {
        0 => grid.at((header, series[0].0)),
        i if i <= n_meta => grid.at((meta[i - 1].1, period_col)),
        _ => grid.at((header, period_col)),
    };
    if !sink.components(&components, &header_origin) {
        return;
    }
    let values = series_metadata(grid, &series, &meta, sink);
    let wide = Wide {
        grid,
        header,
        series: &series,
        meta: &meta,
        values: &values,
    };
    for (r, cols) in grid.rows.iter().filter(|(r, _)| *r > header) {
        wide.row(*r, cols, options.frequency, sink);
    }
}

/// The named columns of a header row, in column order: (column, id), padding spaces trimmed,
/// empty cells skipped; and whether any was refused (reported). `from` is the first column
/// read (a wide sheet's series right of its period column); `duplicate(id, other column)` says
/// what a repeated id is.
fn header_ids(
    grid: &Grid,
    header: u32,
    from: u32,
    duplicate: &dyn Fn(&str, &str) -> String,
    sink: &mut dyn Sink,
) -> (Vec<(u32, String)>, bool) {
    let mut out: Vec<(u32, String)> = Vec::new();
    // Each id's column, to find duplicates among thousands of columns.
    let mut seen: rustc_hash::FxHashMap<String, u32> = Default::default();
    let mut bad = false;
    for (c, d) in grid.row(header).unwrap_or(&[]) {
        if *c < from {
            continue;
        }
        // Spaces padding a header cell are layout; other whitespace is part of the id.
        let id = match render(d, grid.is_1904, None) {
            Ok(s) => s.trim_matches(' ').to_string(),
            Err(e) => {
                sink.error(grid.at((header, *c)), e);
                bad = true;
                continue;
            }
        };
        if id.is_empty() {
            continue;
        }
        if let Some(k) = seen.get(&id) {
            sink.error(
                grid.at((header, *c)),
                duplicate(&excerpt(&id), &column_name(*k)),
            );
            bad = true;
            continue;
        }
        seen.insert(id.clone(), *c);
        out.push((*c, id));
    }
    (out, bad)
}

/// The metadata of each series, read once; and its descriptions as display names.
fn series_metadata(
    grid: &Grid,
    series: &[(u32, String)],
    meta: &[(String, u32)],
    sink: &mut dyn Sink,
) -> Vec<Vec<String>> {
    let mut values: Vec<Vec<String>> = Vec::with_capacity(series.len());
    for (c, _) in series {
        let mut v = Vec::with_capacity(meta.len());
        for (_, r) in meta {
            match render(grid.cell((*r, *c)), grid.is_1904, None) {
                Ok(s) => v.push(s.trim_matches(' ').to_string()),
                Err(e) => {
                    sink.error(grid.at((*r, *c)), e);
                    v.push(String::new());
                }
            }
        }
        values.push(v);
    }
    if let Some(k) = meta.iter().position(|(id, _)| id == "description") {
        for ((_, id), v) in series.iter().zip(&values) {
            if !v[k].is_empty() {
                sink.name(0, id, "", &v[k]);
            }
        }
    }
    values
}

/// A wide sheet's layout, found above its data rows.
struct Wide<'a> {
    grid: &'a Grid,
    header: u32,
    /// (column, series id), in column order.
    series: &'a [(u32, String)],
    /// (component id, row) of each mapped metadata row.
    meta: &'a [(String, u32)],
    /// Each series' metadata values, in `meta` order.
    values: &'a [Vec<String>],
}

impl Wide<'_> {
    /// One data row: an observation per series column.
    fn row(&self, r: u32, cols: &[(u32, Data)], freq: Option<Frequency>, sink: &mut dyn Sink) {
        let (grid, header, period_col) = (self.grid, self.header, self.grid.first_col);
        // Series are in column order: a column is found by binary search.
        let is_series = |c: u32| self.series.binary_search_by_key(&c, |s| s.0).is_ok();
        let has_values = cols.iter().any(|(c, _)| is_series(*c));
        for (c, d) in cols {
            if *c != period_col && !is_series(*c) && *d != Data::Empty {
                sink.error(
                    grid.at((r, *c)),
                    format!(
                        "a cell in column {} which has no series id in header row {}, expected it empty",
                        column_name(*c),
                        header + 1
                    ),
                );
            }
        }
        let period = match period_cell(grid.cell((r, period_col)), grid.is_1904, freq) {
            Ok(p) => p,
            Err(e) => {
                sink.error(grid.at((r, period_col)), e);
                return;
            }
        };
        if !has_values {
            // A note under the data, or an empty row: no observations unless it has a period.
            if period.is_empty() || crate::dataset::calendar::Period::parse(&period).is_none() {
                return;
            }
        }
        if period.is_empty() {
            sink.error(
                grid.at((r, period_col)),
                format!(
                    "no period in column {}, expected a date, a serial number or a period such as 2024-Q1",
                    column_name(period_col)
                ),
            );
            return;
        }
        let n_meta = self.meta.len();
        for (k, (c, id)) in self.series.iter().enumerate() {
            let pos = (r, *c);
            let value = match render(grid.cell(pos), grid.is_1904, None) {
                Ok(v) => v,
                Err(e) => {
                    sink.error(grid.at(pos), e);
                    continue;
                }
            };
            let mut fields: Vec<&str> = Vec::with_capacity(n_meta + 3);
            fields.push(id);
            fields.extend(self.values[k].iter().map(String::as_str));
            fields.push(&period);
            fields.push(&value);
            let origin = |i: usize| match i {
                0 => grid.at((header, *c)),
                i if i <= n_meta => grid.at((self.meta[i - 1].1, *c)),
                i if i == n_meta + 1 => grid.at((r, period_col)),
                _ => grid.at(pos),
            };
            sink.row(&fields, &origin);
        }
    }
}

/// The metadata rows the options map, each above the header: (component id, 0-based row).
fn metadata_rows(
    grid: &Grid,
    header: u32,
    options: &ExcelOptions,
    series_id: &str,
    sink: &mut dyn Sink,
) -> Option<Vec<(String, u32)>> {
    let mut out = Vec::new();
    let mut bad = false;
    let first = grid.rows.first().map_or(0, |r| r.0);
    for (id, row) in &options.metadata {
        if [series_id, "period", "value"].contains(&id.as_str()) {
            sink.error(
                grid.at((header, grid.first_col)),
                format!("metadata `{}` has the name of a component the wide layout has, expected another name than `{series_id}`, `period` and `value`", excerpt(id)),
            );
            bad = true;
            continue;
        }
        let found = match row {
            RowRef::Number(n) => (*n >= 1 && *n - 1 < header).then(|| n - 1),
            RowRef::Label(l) => grid
                .rows
                .iter()
                .map(|(r, _)| *r)
                .take_while(|r| *r < header)
                .find(|&r| {
                    grid.label((r, grid.first_col))
                        .eq_ignore_ascii_case(l.trim())
                }),
        };
        match found {
            Some(r) => out.push((id.clone(), r)),
            None => {
                let what = match row {
                    RowRef::Number(n) => format!("row {n}"),
                    RowRef::Label(l) => format!("no row labelled `{}`", excerpt(l)),
                };
                sink.error(
                    grid.at((header, grid.first_col)),
                    format!(
                        "metadata `{}`: {what} above header row {}, expected a row 1 to {} or one of the labels: {}",
                        excerpt(id),
                        header + 1,
                        header,
                        labels(grid, first, header.saturating_sub(1))
                    ),
                );
                bad = true;
            }
        }
    }
    (!bad).then_some(out)
}

/// The long layout: every header cell names a component; each row below is an observation.
fn long(grid: &Grid, header: u32, options: &ExcelOptions, sink: &mut dyn Sink) {
    if !options.metadata.is_empty() {
        sink.error(
            Origin::File,
            "metadata rows are read in the wide layout, expected no `metadata` with layout = \"long\"".into(),
        );
        return;
    }
    let duplicate = |id: &str, other: &str| {
        format!("duplicate column `{id}` (also column {other}), expected unique column names")
    };
    let (columns, bad) = header_ids(grid, header, 0, &duplicate, sink);
    if columns.is_empty() || bad {
        if columns.is_empty() {
            sink.error(
                grid.at((header, grid.first_col)),
                format!("header row {} is empty, expected column names", header + 1),
            );
        }
        return;
    }
    let components: Vec<Component> = columns
        .iter()
        .map(|(_, id)| Component::new(id.as_str(), Role::Dimension))
        .collect();
    if !sink.components(&components, &|i| grid.at((header, columns[i].0))) {
        return;
    }
    let freq = options.frequency;
    let mut texts: Vec<String> = vec![String::new(); columns.len()];
    for (r, cols) in grid.rows.iter().filter(|(r, _)| *r > header) {
        let r = *r;
        let mut ok = true;
        for (c, d) in cols {
            // Columns are in column order, as the header row's cells are.
            let named = columns.binary_search_by_key(c, |k| k.0).is_ok();
            if *d != Data::Empty && !named {
                sink.error(
                    grid.at((r, *c)),
                    format!(
                        "a cell in column {} which has no name in header row {}, expected it empty",
                        column_name(*c),
                        header + 1
                    ),
                );
                ok = false;
            }
        }
        for (k, (c, _)) in columns.iter().enumerate() {
            match render(grid.cell((r, *c)), grid.is_1904, freq) {
                Ok(s) => texts[k] = s,
                Err(e) => {
                    sink.error(grid.at((r, *c)), e);
                    ok = false;
                }
            }
        }
        if !ok {
            continue;
        }
        let fields: Vec<&str> = texts.iter().map(String::as_str).collect();
        let first = columns[0].0;
        sink.row(&fields, &|i| {
            let c = columns.get(i).map_or(first, |k| k.0);
            grid.at((r, c))
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Collect;
    use std::io::Write;

    const ABS_XLSX: &[u8] =
        include_bytes!("../../tests/fixtures/publishers/xlsx/abs_6202021_labour_force.xlsx");

    /// A zip of these entries, deflated.
    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, data) in entries {
            let o = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated);
            w.start_file(*name, o).unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    /// A cell of a test sheet: a number, or text written as an inline string.
    enum V {
        N(&'static str),
        T(&'static str),
    }

    /// An .xlsx of sheets, each a list of (reference, value); `date1904` sets the 1904 system.
    fn xlsx(sheets: &[(&str, Vec<(&str, V)>)], date1904: bool) -> Vec<u8> {
        let mut workbook = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><workbookPr{}/><sheets>"#,
            if date1904 { r#" date1904="1""# } else { "" }
        );
        let mut rels = String::from(
            r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">"#,
        );
        let mut parts: Vec<(String, Vec<u8>)> = Vec::new();
        for (i, (name, cells)) in sheets.iter().enumerate() {
            let n = i + 1;
            workbook.push_str(&format!(
                r#"<sheet name="{name}" sheetId="{n}" r:id="rId{n}"/>"#
            ));
            rels.push_str(&format!(
                r#"<Relationship Id="rId{n}" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet{n}.xml"/>"#
            ));
            let mut rows: BTreeMap<u32, String> = BTreeMap::new();
            for (r, v) in cells {
                let row: u32 = r
                    .trim_start_matches(|c: char| c.is_ascii_alphabetic())
                    .parse()
                    .unwrap();
                let cell = match v {
                    V::N(x) => format!(r#"<c r="{r}"><v>{x}</v></c>"#),
                    V::T(t) => format!(r#"<c r="{r}" t="inlineStr"><is><t>{t}</t></is></c>"#),
                };
                rows.entry(row).or_default().push_str(&cell);
            }
            let data: String = rows
                .iter()
                .map(|(r, c)| format!(r#"<row r="{r}">{c}</row>"#))
                .collect();
            parts.push((
                format!("xl/worksheets/sheet{n}.xml"),
                format!(
                    r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>{data}</sheetData></worksheet>"#
                )
                .into_bytes(),
            ));
        }
        workbook.push_str("</sheets></workbook>");
        rels.push_str("</Relationships>");
        let types = r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/></Types>"#;
        let root = r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#;
        let mut entries: Vec<(&str, &[u8])> = vec![
            ("[Content_Types].xml", types.as_bytes()),
            ("_rels/.rels", root.as_bytes()),
            ("xl/workbook.xml", workbook.as_bytes()),
            ("xl/_rels/workbook.xml.rels", rels.as_bytes()),
        ];
        for (name, data) in &parts {
            entries.push((name, data));
        }
        zip_of(&entries)
    }

    fn run(bytes: &[u8], options: &ExcelOptions) -> Collect {
        let mut c = Collect::default();
        read(bytes, options, &mut c);
        c
    }

    fn at(cell: &str) -> Origin {
        Origin::Path(format!("Data!{cell}"))
    }

    fn meta(pairs: &[(&str, RowRef)]) -> BTreeMap<String, RowRef> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    /// An ABS-like sheet: description and unit rows, the series ids in row 3, two quarters.
    fn abs_like() -> Vec<(&'static str, V)> {
        use V::*;
        vec![
            ("B1", T("Hours ;  Persons ;")),
            ("C1", T("Hours ;  Males ;")),
            ("A2", T("Unit")),
            ("B2", T("000 Hours")),
            ("C2", T("000 Hours")),
            ("A3", T("Series ID")),
            ("B3", T("A1X")),
            ("C3", T("A2Y")),
            ("A4", N("31017")),
            ("B4", N("2923556.4816999999")),
            ("C4", N("0.30000000000000004")),
            ("A5", N("31107")),
            ("B5", N("12")),
        ]
    }

    fn abs_options() -> ExcelOptions {
        ExcelOptions {
            header: Some("series id".into()),
            frequency: Some(Frequency::Quarterly),
            metadata: meta(&[
                ("description", RowRef::Number(1)),
                ("unit", RowRef::Label("Unit".into())),
            ]),
            ..ExcelOptions::default()
        }
    }

    #[test]
    fn serial_numbers_in_the_1900_system_with_its_29_february() {
        let d = |s: f64| serial_date(s, false);
        assert_eq!(d(1.0), Ok((1900, 1, 1)));
        assert_eq!(d(59.0), Ok((1900, 2, 28)));
        assert_eq!(d(60.0), Ok((1900, 2, 29)));
        assert_eq!(d(61.0), Ok((1900, 3, 1)));
        assert_eq!(d(31017.0), Ok((1984, 12, 1)));
        assert_eq!(d(44440.75), Ok((2021, 9, 1)));
        assert_eq!(d(2_958_465.0), Ok((9999, 12, 31)));
        assert_eq!(
            d(0.0),
            Err(
                "serial number 0 is not a date of the 1900 date system, expected 1 to 2958465"
                    .into()
            )
        );
        assert!(d(2_958_466.0).is_err());
        assert!(d(-3.0).is_err());
        assert!(d(f64::NAN).is_err());
        // 1900-02-29 is a month and a quarter, not a day.
        assert_eq!(
            date_period(1900, 2, 29, 60.0, Some(Frequency::Monthly)),
            Ok("1900-02".into())
        );
        assert_eq!(
            date_period(1900, 2, 29, 60.0, Some(Frequency::Daily)),
            Err("serial number 60 is 1900-02-29, a day the 1900 date system counts but the calendar does not have, expected another date".into())
        );
    }

    #[test]
    fn serial_numbers_in_the_1904_system() {
        let d = |s: f64| serial_date(s, true);
        assert_eq!(d(0.0), Ok((1904, 1, 1)));
        assert_eq!(d(59.0), Ok((1904, 2, 29)));
        // 1462 days between the two systems' day counts.
        assert_eq!(d(31017.0 - 1462.0), Ok((1984, 12, 1)));
        assert_eq!(d(2_957_003.0), Ok((9999, 12, 31)));
        assert!(d(-1.0).is_err());
        assert!(d(2_957_004.0).is_err());
    }

    #[test]
    fn periods_of_each_frequency() {
        let p = |f| period_of(2024, 8, 1, f);
        assert_eq!(p(Some(Frequency::Annual)), "2024");
        assert_eq!(p(Some(Frequency::Quarterly)), "2024-Q3");
        assert_eq!(p(Some(Frequency::Monthly)), "2024-08");
        assert_eq!(p(Some(Frequency::Daily)), "2024-08-01");
        assert_eq!(p(None), "2024-08-01");
        assert_eq!(
            period_of(2024, 12, 31, Some(Frequency::Quarterly)),
            "2024-Q4"
        );
    }

    #[test]
    fn cell_names_and_sheet_references() {
        assert_eq!(cell_name((0, 0)), "A1");
        assert_eq!(cell_name((11, 2)), "C12");
        assert_eq!(cell_name((0, 25)), "Z1");
        assert_eq!(cell_name((0, 26)), "AA1");
        assert_eq!(cell_name((1_048_575, 16_383)), "XFD1048576");
        assert_eq!(sheet_ref("Data1"), "Data1");
        assert_eq!(sheet_ref("My sheet"), "'My sheet'");
        assert_eq!(sheet_ref("O'Brien"), "'O''Brien'");
        assert_eq!(sheet_ref(&"x".repeat(100)), "x".repeat(40));
    }

    #[test]
    fn numbers_in_their_shortest_round_trip_form() {
        // The text a cell stores, read as Excel does.
        assert_eq!(
            number("2923556.4816999999".parse().unwrap()),
            "2923556.4817"
        );
        assert_eq!(number(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(number(3.0), "3");
        assert_eq!(number(-0.0), "0");
        assert_eq!(number(1e21), "1000000000000000000000");
    }

    #[test]
    fn wide_sheet_with_metadata_rows_found_by_label_and_number() {
        let c = run(&xlsx(&[("Data", abs_like())], false), &abs_options());
        assert_eq!(c.errors, vec![]);
        let ids: Vec<(&str, Role)> = c
            .components
            .iter()
            .map(|c| (c.id.as_str(), c.role))
            .collect();
        assert_eq!(
            ids,
            [
                ("series_id", Role::Dimension),
                ("description", Role::Attribute),
                ("unit", Role::Attribute),
                ("period", Role::Time),
                ("value", Role::Measure),
            ]
        );
        assert_eq!(
            c.headers,
            [at("B3"), at("A1"), at("A2"), at("A3"), at("A3")]
        );
        assert_eq!(
            c.rows,
            [
                [
                    "A1X",
                    "Hours ;  Persons ;",
                    "000 Hours",
                    "1984-Q4",
                    "2923556.4817"
                ],
                [
                    "A2Y",
                    "Hours ;  Males ;",
                    "000 Hours",
                    "1984-Q4",
                    "0.30000000000000004"
                ],
                ["A1X", "Hours ;  Persons ;", "000 Hours", "1985-Q1", "12"],
                // An empty cell is an observation with no figure, never 0.
                ["A2Y", "Hours ;  Males ;", "000 Hours", "1985-Q1", ""],
            ]
        );
        assert_eq!(
            c.origins[1],
            [at("C3"), at("C1"), at("C2"), at("A4"), at("C4")]
        );
        assert_eq!(c.origins[3][4], at("C5"));
        assert_eq!(
            c.names,
            [
                (0, "A1X".into(), "".into(), "Hours ;  Persons ;".into()),
                (0, "A2Y".into(), "".into(), "Hours ;  Males ;".into()),
            ]
        );
    }

    #[test]
    fn a_1904_workbook_counts_serial_numbers_from_1904() {
        use V::*;
        let cells = vec![
            ("A1", T("Date")),
            ("B1", T("X")),
            ("A2", N("0")),
            ("B2", N("1")),
            ("A3", N("29555")),
            ("B3", N("2")),
        ];
        let c = run(&xlsx(&[("Data", cells)], true), &ExcelOptions::default());
        assert_eq!(c.errors, vec![]);
        assert_eq!(c.column("period"), ["1904-01-01", "1984-12-01"]);
        // The same serial numbers in the 1900 system: 0 is no date.
        let cells = vec![
            ("A1", T("Date")),
            ("B1", T("X")),
            ("A2", N("0")),
            ("B2", N("1")),
        ];
        let c = run(&xlsx(&[("Data", cells)], false), &ExcelOptions::default());
        assert_eq!(
            c.error_lines(),
            ["Data!A2: serial number 0 is not a date of the 1900 date system, expected 1 to 2958465"]
        );
    }

    #[test]
    fn header_row_by_number_or_first_non_empty_row_and_text_periods() {
        use V::*;
        let cells = vec![
            ("B2", T("Note")),
            ("A4", T("Period")),
            ("B4", T("S1")),
            ("A5", T("2024-Q1")),
            ("B5", N("1.5")),
            ("A6", T("Source: a note under the data")),
        ];
        let book = xlsx(&[("Other", vec![]), ("Data", cells)], false);
        let by_number = ExcelOptions {
            sheet: Some(SheetRef::Index(2)),
            header_row: Some(4),
            ..ExcelOptions::default()
        };
        let c = run(&book, &by_number);
        assert_eq!(c.errors, vec![]);
        assert_eq!(c.rows, [["S1", "2024-Q1", "1.5"]]);
        // Default: the first non-empty row (row 2) is the header; `Note` is its series.
        let by_name = ExcelOptions {
            sheet: Some(SheetRef::Name("Data".into())),
            ..ExcelOptions::default()
        };
        let c = run(&book, &by_name);
        // Text periods are passed on as written, for the pipeline to check; a row with no
        // value and no period (a note) is no observation.
        assert_eq!(c.errors, vec![]);
        assert_eq!(
            c.rows,
            [["Note", "Period", "S1"], ["Note", "2024-Q1", "1.5"]]
        );
    }

    #[test]
    fn long_layout_reads_every_column_as_a_component() {
        use V::*;
        let cells = vec![
            ("A1", T("REF_AREA")),
            ("B1", T("TIME_PERIOD")),
            ("C1", T("OBS_VALUE")),
            ("A2", T("AU")),
            ("B2", T("2024-Q1")),
            ("C2", N("101.25")),
            ("A4", T("NZ")),
            ("B4", T("2024-Q1")),
        ];
        let options = ExcelOptions {
            layout: Layout::Long,
            ..ExcelOptions::default()
        };
        let c = run(&xlsx(&[("Data", cells)], false), &options);
        assert_eq!(c.errors, vec![]);
        assert_eq!(
            c.components
                .iter()
                .map(|c| c.id.as_str())
                .collect::<Vec<_>>(),
            ["REF_AREA", "TIME_PERIOD", "OBS_VALUE"]
        );
        assert_eq!(c.rows, [["AU", "2024-Q1", "101.25"], ["NZ", "2024-Q1", ""]]);
        assert_eq!(c.origins[1], [at("A4"), at("B4"), at("C4")]);
    }

    #[test]
    fn every_problem_is_reported_at_its_cell() {
        use V::*;
        let cells = vec![
            ("A1", T("Series ID")),
            ("B1", T("S1")),
            ("C1", T("S1")),
            ("A2", N("60")),
            ("B2", N("1")),
            ("A3", N("31017")),
            ("B3", N("2")),
            ("D3", N("9")),
            ("B4", N("3")),
        ];
        let book = xlsx(&[("Data", cells)], false);
        let c = run(&book, &ExcelOptions::default());
        assert_eq!(
            c.error_lines(),
            ["Data!C1: duplicate series id `S1` (also in column B), expected unique ids in the header row"]
        );
        let cells = vec![
            ("A1", T("Series ID")),
            ("B1", T("S1")),
            ("A2", N("60")),
            ("B2", N("1")),
            ("A3", N("31017")),
            ("B3", N("2")),
            ("D3", N("9")),
            ("B4", N("3")),
        ];
        let c = run(&xlsx(&[("Data", cells)], false), &ExcelOptions::default());
        assert_eq!(
            c.error_lines(),
            [
                "Data!A2: serial number 60 is 1900-02-29, a day the 1900 date system counts but the calendar does not have, expected another date",
                "Data!D3: a cell in column D which has no series id in header row 1, expected it empty",
                "Data!A4: no period in column A, expected a date, a serial number or a period such as 2024-Q1",
            ]
        );
        assert_eq!(c.rows, [["S1", "1984-12-01", "2"]]);
    }

    #[test]
    fn options_that_do_not_match_the_workbook_are_reported() {
        let book = xlsx(&[("Data", abs_like())], false);
        let with = |f: &dyn Fn(&mut ExcelOptions)| {
            let mut o = abs_options();
            f(&mut o);
            run(&book, &o).error_lines()
        };
        assert_eq!(
            with(&|o| o.sheet = Some(SheetRef::Name("Data1".into()))),
            ["no sheet `Data1` in the workbook, expected one of `Data`"]
        );
        assert_eq!(
            with(&|o| o.sheet = Some(SheetRef::Index(2))),
            ["no sheet 2 in the workbook, expected 1 to 1 (`Data`)"]
        );
        assert_eq!(
            with(&|o| o.header = Some("Series Identifier".into())),
            ["Data!A1: no row labelled `Series Identifier` in column A, expected the header row's first cell, one of: `Unit`, `Series ID`"]
        );
        assert_eq!(
            with(&|o| {
                o.metadata.insert("frequency".into(), RowRef::Label("Frequency".into()));
            }),
            ["Data!A3: metadata `frequency`: no row labelled `Frequency` above header row 3, expected a row 1 to 2 or one of the labels: `Unit`"]
        );
        assert_eq!(
            with(&|o| o.header_row = Some(9)),
            ["Data!A1: header_row 9 is not a row of the sheet, expected 1 to 5"]
        );
    }

    #[test]
    fn the_abs_workbook_reads_at_its_cells() {
        let options = ExcelOptions {
            sheet: Some(SheetRef::Name("Data1".into())),
            header_row: Some(10),
            frequency: Some(Frequency::Monthly),
            metadata: meta(&[("unit", RowRef::Label("Unit".into()))]),
            ..ExcelOptions::default()
        };
        let c = run(ABS_XLSX, &options);
        assert_eq!(c.errors, vec![]);
        assert_eq!(c.rows.len(), 7 * 148);
        assert_eq!(
            c.rows[0],
            ["A84426298K", "000 Hours", "1984-12", "2923556.4817"]
        );
        assert_eq!(
            c.origins[0],
            [
                Origin::Path("Data1!B10".into()),
                Origin::Path("Data1!B2".into()),
                Origin::Path("Data1!A11".into()),
                Origin::Path("Data1!B11".into()),
            ]
        );
        let last = c.rows.last().unwrap();
        assert_eq!(last, &["A84426295C", "000 Hours", "2021-09", "1067782.869"]);
        assert_eq!(
            c.origins.last().unwrap()[3],
            Origin::Path("Data1!H158".into())
        );
    }

    #[test]
    fn files_that_are_not_workbooks_are_refused_without_panic() {
        let c = run(b"Date,Value\n2024,1\n", &ExcelOptions::default());
        assert_eq!(
            c.error_lines(),
            ["unreadable workbook: neither a zip (.xlsx, .ods) nor a compound document (.xls), expected an .xlsx, .xlsm, .xls or .ods file"]
        );
        // Every truncation of a real workbook is an error, never a panic.
        for cut in (0..ABS_XLSX.len()).step_by(997) {
            let c = run(&ABS_XLSX[..cut], &abs_options());
            assert_eq!(c.errors.len(), 1, "cut at {cut}: {:?}", c.errors);
            assert!(c.rows.is_empty());
        }
    }

    #[test]
    fn a_zip_bomb_is_refused_before_it_is_expanded() {
        let zeros = vec![b'0'; 20 << 20];
        let mut sheet = abs_like();
        sheet.push(("D1", V::T("x")));
        let book = xlsx(&[("Data", sheet)], false);
        // The same workbook with one more entry of 20 MiB of zeros.
        let mut z = zip::ZipArchive::new(Cursor::new(&book[..])).unwrap();
        let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
        for i in 0..z.len() {
            let mut f = z.by_index(i).unwrap();
            let mut data = Vec::new();
            f.read_to_end(&mut data).unwrap();
            entries.push((f.name().to_string(), data));
        }
        entries.push(("xl/padding.xml".into(), zeros));
        let refs: Vec<(&str, &[u8])> = entries.iter().map(|(n, d)| (n.as_str(), &d[..])).collect();
        let bomb = zip_of(&refs);
        assert!(bomb.len() < 100_000, "{}", bomb.len());
        let c = run(&bomb, &abs_options());
        assert_eq!(
            c.error_lines(),
            [format!("the workbook expands to more than 16 MiB, expected at most 100 times its size of {} bytes", bomb.len())]
        );
    }

    #[test]
    fn a_sheet_spanning_more_than_its_file_can_describe_is_refused() {
        use V::*;
        let cells = vec![
            ("A1", T("Series ID")),
            ("B1", T("S")),
            ("XFD1048576", N("1")),
        ];
        let book = xlsx(&[("Data", cells)], false);
        let c = run(&book, &ExcelOptions::default());
        assert_eq!(
            c.error_lines(),
            [format!("sheet Data spans 1048576 rows × 16384 columns, expected at most 1048576 cells for a file of {} bytes", book.len())]
        );
    }

    const CPI_XLS: &[u8] = include_bytes!("../../tests/fixtures/publishers/xls/abs_640101_cpi.xls");

    /// The CPI workbook with `patch` written at `at`, read.
    fn patched_xls(at: usize, patch: &[u8]) -> Vec<String> {
        let mut b = CPI_XLS.to_vec();
        b[at..at + patch.len()].copy_from_slice(patch);
        let options = ExcelOptions {
            sheet: Some(SheetRef::Name("Data1".into())),
            header_row: Some(10),
            ..ExcelOptions::default()
        };
        run(&b, &options).error_lines()
    }

    #[test]
    fn an_xls_declaring_or_holding_a_huge_sheet_is_refused_before_calamine_reads_it() {
        // The workbook stream is stored in order: Data1's DIMENSIONS record (rows 0-294,
        // columns 0-28) starts at byte 34412, a NUMBER record (row 11, column 8) at 38278.
        assert_eq!(&CPI_XLS[34412..34416], [0x00, 0x02, 14, 0]);
        assert_eq!(&CPI_XLS[38278..38286], [0x03, 0x02, 14, 0, 11, 0, 8, 0]);
        assert_eq!(
            patched_xls(34412 + 8, &0xFFFF_FFF0u32.to_le_bytes()),
            ["a sheet spans 4294967281 rows × 29 columns, expected at most 1048576 cells for a file of 128000 bytes"]
        );
        // One cell moved to row 65536, column 256: the dense range would span them all.
        assert_eq!(
            patched_xls(38282, &[0xFF, 0xFF, 0xFF, 0x00]),
            ["a sheet spans 65536 rows × 256 columns, expected at most 1048576 cells for a file of 128000 bytes"]
        );
        // The unpatched workbook reads.
        assert!(patched_xls(0, &CPI_XLS[..8]).is_empty());
    }

    #[test]
    fn an_xls_with_looping_chains_or_oversized_tables_is_refused() {
        let bad = |what: &str| {
            vec![format!(
                "unreadable workbook: compound document {what}, expected an .xlsx, .xlsm, .xls or .ods file"
            )]
        };
        // A FAT of 2^28 sectors in a file of 250.
        assert_eq!(
            patched_xls(44, &0x1000_0000u32.to_le_bytes()),
            bad("declaring more sectors than the file holds")
        );
        // A DIFAT sector (the last one, 248) whose next DIFAT sector is itself.
        let mut b = CPI_XLS.to_vec();
        b[68..72].copy_from_slice(&248u32.to_le_bytes());
        let end = 512 + 249 * 512;
        b[end - 4..end].copy_from_slice(&248u32.to_le_bytes());
        assert_eq!(
            run(&b, &ExcelOptions::default()).error_lines(),
            bad("whose sector allocation chain loops")
        );
        // The directory's first sector chained to itself in the FAT.
        let dir = u32::from_le_bytes(CPI_XLS[48..52].try_into().unwrap()) as usize;
        let fat0 = u32::from_le_bytes(CPI_XLS[76..80].try_into().unwrap()) as usize;
        let entry = 512 + fat0 * 512 + 4 * dir;
        assert_eq!(
            patched_xls(entry, &(dir as u32).to_le_bytes()),
            bad("whose sector chain loops")
        );
        // Every truncation is an error, never a panic or an abort.
        for cut in (0..CPI_XLS.len()).step_by(4099) {
            let c = run(&CPI_XLS[..cut], &ExcelOptions::default());
            assert_eq!(c.errors.len(), 1, "cut at {cut}: {:?}", c.errors);
        }
    }

    #[test]
    fn an_ods_repeating_a_cell_a_billion_times_is_refused() {
        let content = r#"<?xml version="1.0" encoding="UTF-8"?><office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0"><office:body><office:spreadsheet><table:table table:name="Data"><table:table-row table:number-rows-repeated="1000"><table:table-cell office:value-type="float" office:value="1" table:number-columns-repeated="1000000"/></table:table-row><table:table-row table:number-rows-repeated="1048000"><table:table-cell table:number-columns-repeated="16384"/></table:table-row></table:table></office:spreadsheet></office:body></office:document-content>"#;
        let ods = zip_of(&[
            (
                "mimetype",
                b"application/vnd.oasis.opendocument.spreadsheet",
            ),
            ("content.xml", content.as_bytes()),
        ]);
        let c = run(&ods, &ExcelOptions::default());
        assert_eq!(
            c.error_lines(),
            [format!("the sheets repeat cells more than 1048576 times, expected at most that for a file of {} bytes", ods.len())]
        );
    }

    /// An .ods of one sheet `Data` whose table holds these rows (table XML).
    fn ods(rows: &str) -> Vec<u8> {
        let content = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2"><office:body><office:spreadsheet><table:table table:name="Data">{rows}</table:table></office:spreadsheet></office:body></office:document-content>"#
        );
        zip_of(&[
            (
                "mimetype",
                b"application/vnd.oasis.opendocument.spreadsheet",
            ),
            ("META-INF/manifest.xml", MANIFEST.as_bytes()),
            ("content.xml", content.as_bytes()),
        ])
    }

    const MANIFEST: &str = r#"<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2"><manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/><manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>"#;

    fn text_cell(t: &str) -> String {
        format!(
            r#"<table:table-cell office:value-type="string"><text:p>{t}</text:p></table:table-cell>"#
        )
    }

    #[test]
    fn an_ods_reads_with_iso_dates_and_trailing_repeats() {
        let rows = format!(
            r#"<table:table-row>{}{}</table:table-row><table:table-row><table:table-cell office:value-type="date" office:date-value="2024-03-31"><text:p>31/03/2024</text:p></table:table-cell><table:table-cell office:value-type="float" office:value="0.1"><text:p>0.1</text:p></table:table-cell></table:table-row><table:table-row><table:table-cell office:value-type="date" office:date-value="2024-06-30T00:00:00"/><table:table-cell/></table:table-row><table:table-row table:number-rows-repeated="1048573"><table:table-cell table:number-columns-repeated="1024"/></table:table-row>"#,
            text_cell("Series ID"),
            text_cell("S1")
        );
        let options = ExcelOptions {
            frequency: Some(Frequency::Quarterly),
            ..ExcelOptions::default()
        };
        let c = run(&ods(&rows), &options);
        assert_eq!(c.errors, vec![]);
        assert_eq!(c.rows, [["S1", "2024-Q1", "0.1"], ["S1", "2024-Q2", ""]]);
        assert_eq!(c.origins[1][2], at("B3"));
    }

    #[test]
    fn an_ods_spreading_two_cells_over_a_huge_extent_is_refused() {
        let rows = format!(
            r#"<table:table-row>{}</table:table-row><table:table-row table:number-rows-repeated="2000000"><table:table-cell/></table:table-row><table:table-row><table:table-cell table:number-columns-repeated="3"/>{}</table:table-row>"#,
            text_cell("a"),
            text_cell("b")
        );
        let book = ods(&rows);
        let c = run(&book, &ExcelOptions::default());
        assert_eq!(
            c.error_lines(),
            [format!("the sheets repeat cells more than 1048576 times, expected at most that for a file of {} bytes", book.len())]
        );
    }

    /// Bytes of both real workbooks changed at random (mostly in their headers and tables,
    /// where sizes and chains are): every read ends, in rows or in errors, each error short
    /// and at a cell or the whole file; calamine's panics are caught as malformed contents.
    #[test]
    fn mutated_real_workbooks_never_escape_the_reader() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            x.wrapping_mul(0x2545_F491_4F6C_DD1D)
        };
        let options = ExcelOptions {
            sheet: Some(SheetRef::Name("Data1".into())),
            header_row: Some(10),
            ..ExcelOptions::default()
        };
        let (mut read_some, mut refused) = (0, 0);
        for i in 0..400 {
            let mut b = if i % 2 == 0 { CPI_XLS } else { ABS_XLSX }.to_vec();
            for _ in 0..1 + next() % 4 {
                let at = if next() % 2 == 0 {
                    (next() % 4096) as usize
                } else {
                    next() as usize
                } % b.len();
                b[at] = next() as u8;
            }
            let c = run(&b, &options);
            for (origin, message) in &c.errors {
                assert!(message.chars().count() < 400, "{message}");
                assert!(
                    matches!(origin, Origin::File)
                        || matches!(origin, Origin::Path(p) if p.starts_with("Data1!")),
                    "{origin:?}"
                );
            }
            assert!(c.rows.len() <= 27 * 284, "{} rows", c.rows.len());
            if c.errors.is_empty() {
                read_some += 1;
            } else {
                refused += 1;
            }
        }
        assert!(
            read_some > 50 && refused > 50,
            "{read_some} read, {refused} refused"
        );
    }

    #[test]
    fn whole_numbers_from_1000_to_2999_in_the_period_column_are_years() {
        use V::*;
        let cells = vec![
            ("A1", T("Year")),
            ("B1", T("GDP")),
            ("A2", N("2023")),
            ("B2", N("1.5")),
            ("A3", N("2024")),
            ("B3", N("2")),
            ("A4", N("3000")),
            ("B4", N("3")),
        ];
        let c = run(&xlsx(&[("Data", cells)], false), &ExcelOptions::default());
        assert_eq!(c.errors, vec![]);
        // 3000 is a serial number again: 1908-03-18.
        assert_eq!(c.column("period"), ["2023", "2024", "1908-03-18"]);
    }

    #[test]
    fn options_read_from_toml_with_messages_that_say_what_is_expected() {
        let read = |t: &str| toml::from_str::<ExcelOptions>(t).map_err(|e| e.message().to_string());
        assert_eq!(
            read("sheet = 2\nheader = \"Series ID\"\nmetadata = { unit = \"Unit\", description = 1 }\nframe = 1"),
            Err("unknown field `frame`, expected one of `sheet`, `header_row`, `header`, `layout`, `metadata`, `frequency`, `series`".into())
        );
        let o = read("sheet = \"Data1\"\nheader_row = 10\nlayout = \"long\"\nfrequency = \"monthly\"\nmetadata = { unit = \"Unit\", description = 1 }").unwrap();
        assert_eq!(o.sheet, Some(SheetRef::Name("Data1".into())));
        assert_eq!(
            (o.header_row, o.layout, o.frequency),
            (Some(10), Layout::Long, Some(Frequency::Monthly))
        );
        assert_eq!(o.metadata["unit"], RowRef::Label("Unit".into()));
        assert_eq!(o.metadata["description"], RowRef::Number(1));
        assert_eq!(read("sheet = 2").unwrap().sheet, Some(SheetRef::Index(2)));
        assert_eq!(
            read("sheet = 0"),
            Err("invalid value: integer `0`, expected a sheet name or its place in the workbook (1 for the first)".into())
        );
        assert_eq!(
            read("metadata = { unit = true }"),
            Err("invalid type: boolean `true`, expected the text of the row's first cell or its number (1 for the first)".into())
        );
    }
}
