//! SDMX-ML data messages, read as a stream of XML events: 2.1 GenericData (components as
//! `<Value id=".." value=".."/>` under `SeriesKey`, `GroupKey`, `ObsKey` and `Attributes`, the
//! observation as `ObsDimension` and `ObsValue`), 2.1 and 3.0 StructureSpecificData
//! (components as XML attributes of `DataSet`, `Group`, `Series` and `Obs`), in the series or
//! the flat view. Elements and attributes are matched on their local names, whatever their
//! prefix. One row per observation with its dimensions, period, value and the attributes of
//! every level above it (data set, group, series); observations of `action="Delete"` data sets
//! are deletes.
//!
//! The document is read twice: once to find its components (which must all be known before the
//! first row), once to yield the rows. Both readings refuse a DOCTYPE (so no DTD, external
//! entity or entity expansion), resolve only the five predefined entities and character
//! references, and bound nesting depth and value sizes.

use std::borrow::Cow;
use std::collections::HashMap;

use rustc_hash::FxHashMap;

use quick_xml::events::attributes::Attributes;
use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};

use super::{strip_bom, Component, Origin, Role, Sink, ROW};

/// Options of the SDMX-ML reader.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SdmxMlOptions {
    /// Ids of the components that are dimensions (case-insensitive), overriding the guess (see
    /// [`Roles`]).
    pub dimensions: Vec<String>,
    /// Ids of the components that are attributes (case-insensitive), overriding the guess.
    pub attributes: Vec<String>,
    /// Id of the measure, when it is not `OBS_VALUE` (SDMX 3.0 allows other measures).
    pub measure: Option<String>,
}

/// Attributes of the SDMX information model that publishers use; an XML attribute of these
/// names is an attribute of the data wherever it is (in StructureSpecific data only the data
/// structure says which XML attribute is a dimension).
const WELL_KNOWN_ATTRIBUTES: [&str; 33] = [
    "OBS_STATUS",
    "OBS_CONF",
    "OBS_FLAG",
    "OBS_PRE_BREAK",
    "OBS_COM",
    "OBS_COMMENT",
    "COMMENT_OBS",
    "CONF_STATUS",
    "UNIT_MULT",
    "UNIT_MEASURE",
    "UNIT",
    "UNIT_INDEX_BASE",
    "DECIMALS",
    "TITLE",
    "TITLE_COMPL",
    "NAT_TITLE",
    "COLLECTION",
    "TIME_FORMAT",
    "TIME_PER_COLLECT",
    "COMMENT",
    "COMMENT_TS",
    "COMMENT_DSET",
    "SOURCE_AGENCY",
    "SOURCE_PUB",
    "COMPILATION",
    "COMPILING_ORG",
    "DISS_ORG",
    "COVERAGE",
    "BREAKS",
    "AVAILABILITY",
    "EMBARGO_TIME",
    "BASE_PER",
    "DATA_COMP",
];

/// XML attributes of a `DataSet` element that describe the message, not the data.
const DATASET_XML_ATTRIBUTES: [&str; 10] = [
    "action",
    "structureRef",
    "setID",
    "dataScope",
    "reportingBeginDate",
    "reportingEndDate",
    "validFromDate",
    "validToDate",
    "publicationYear",
    "publicationPeriod",
];

/// Deepest element nesting accepted: SDMX-ML data nest six or seven levels.
pub const MAX_DEPTH: usize = 64;
/// Longest attribute value accepted, in bytes: codes, periods, figures and titles are short.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
/// Longest text accepted between two tags, in bytes.
pub const MAX_TEXT_BYTES: usize = 1 << 20;
/// Most distinct components accepted: a data structure has tens.
pub const MAX_COMPONENTS: usize = 1000;

/// The roles of components, by id (case-insensitive); ids not listed are guessed from where
/// and how they are written. [`read`] takes them from the options; a data structure
/// definition (DSD), once structure messages are read, gives them all: build a `Roles` from
/// the DSD's dimension, attribute and measure lists with [`Roles::set`], apply the options over
/// it, and pass it to [`read_with`].
#[derive(Debug, Clone, Default)]
pub struct Roles {
    by_id: HashMap<String, Role>,
    measure: Option<String>,
}

impl Roles {
    /// The roles the options give: their `dimensions`, `attributes` and `measure`.
    pub fn from_options(options: &SdmxMlOptions) -> Roles {
        let mut roles = Roles::default();
        roles.apply(options);
        roles
    }

    /// The options' roles over these (the options win).
    pub fn apply(&mut self, options: &SdmxMlOptions) {
        for d in &options.dimensions {
            self.set(d, Role::Dimension);
        }
        for a in &options.attributes {
            self.set(a, Role::Attribute);
        }
        if let Some(m) = &options.measure {
            self.set(m, Role::Measure);
            self.measure = Some(m.clone());
        }
    }

    /// Says that component `id` has `role`.
    pub fn set(&mut self, id: &str, role: Role) {
        self.by_id.insert(id.to_ascii_uppercase(), role);
    }

    fn get(&self, id: &str) -> Option<Role> {
        self.by_id.get(&id.to_ascii_uppercase()).copied()
    }

    fn measure(&self) -> &str {
        self.measure.as_deref().unwrap_or("OBS_VALUE")
    }
}

/// Reads an SDMX-ML data message into `sink`, roles from the options and names.
pub fn read(text: &str, options: &SdmxMlOptions, sink: &mut dyn Sink) {
    read_with(text, &Roles::from_options(options), sink);
}

/// Reads an SDMX-ML data message into `sink`, with the components' roles `roles` gives.
pub fn read_with(text: &str, roles: &Roles, sink: &mut dyn Sink) {
    let text = strip_bom(text);
    if text.trim().is_empty() {
        sink.error(
            Origin::File,
            "empty file, expected an SDMX-ML data message".into(),
        );
        return;
    }
    // First reading: the components. It stops quietly at a fatal problem, which the second
    // reading reports in its place.
    let mut scan = Scan::default();
    let scanned = walk(text, &mut scan);
    let Some(layout) = scan.layout(roles) else {
        match scanned {
            Err(fatal) => sink.error(origin_at(text, fatal.at), fatal.message),
            Ok(()) => sink.error(
                Origin::At { line: 1, col: 1 },
                match scan.root {
                    Some(root) if !DATA_ROOTS.contains(&root.as_str()) => format!(
                        "`{root}` message, expected an SDMX-ML data message (GenericData or \
                         StructureSpecificData)"
                    ),
                    _ => "no data set, expected a `DataSet` element".into(),
                },
            ),
        }
        return;
    };
    // Each component's first place, found in one scan of the text in byte order.
    let mut order: Vec<usize> = (0..layout.first.len()).collect();
    order.sort_by_key(|&i| layout.first[i]);
    let mut headers = vec![Origin::File; order.len()];
    let mut pos = Pos::START;
    for i in order {
        pos = pos.advanced(text, layout.first[i]);
        headers[i] = pos.origin();
    }
    if !sink.components(&layout.components, &|i| headers[i].clone()) {
        return;
    }
    let mut emit = Emit::new(text, &layout, sink);
    let result = walk(text, &mut emit);
    if let Err(fatal) = result {
        emit.sink.error(origin_at(text, fatal.at), fatal.message);
    }
}

/// Root elements of the data messages read.
const DATA_ROOTS: [&str; 4] = [
    "GenericData",
    "StructureSpecificData",
    "GenericTimeSeriesData",
    "StructureSpecificTimeSeriesData",
];

/// What an element is, from its local name and its parent's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    Document,
    Message,
    Header,
    HeaderStructure,
    DataSetAction,
    DataSet,
    Group,
    GroupKey,
    Series,
    SeriesKey,
    Obs,
    ObsKey,
    ObsDimension,
    ObsValue,
    Attributes,
    /// A `Value` of a key or of `Attributes`; the parent says which.
    Value,
    /// An SDMX-ML 3.0 component of several values (`<Comp id=".."><Value>a</Value>…`) of a
    /// data set, group, series or observation; each `Value` holds text, or `Text` elements
    /// (one per language) of which the first is read.
    Comp,
    CompValue,
    CompText,
    /// Anything else (header details, footers, annotations): skipped with what it holds.
    Other,
}

fn classify(parent: Tag, local: &[u8]) -> Tag {
    match (parent, local) {
        (Tag::Document, _) => Tag::Message,
        (Tag::Message, b"Header") => Tag::Header,
        (Tag::Message, b"DataSet") => Tag::DataSet,
        (Tag::Header, b"Structure") => Tag::HeaderStructure,
        (Tag::Header, b"DataSetAction") => Tag::DataSetAction,
        (Tag::DataSet, b"Group") => Tag::Group,
        (Tag::DataSet, b"Series") => Tag::Series,
        (Tag::DataSet, b"Obs") | (Tag::Series, b"Obs") => Tag::Obs,
        (Tag::DataSet | Tag::Group | Tag::Series | Tag::Obs, b"Attributes") => Tag::Attributes,
        (Tag::Group, b"GroupKey") => Tag::GroupKey,
        (Tag::Series, b"SeriesKey") => Tag::SeriesKey,
        (Tag::Obs, b"ObsKey") => Tag::ObsKey,
        (Tag::Obs, b"ObsDimension") => Tag::ObsDimension,
        (Tag::Obs, b"ObsValue") => Tag::ObsValue,
        (Tag::GroupKey | Tag::SeriesKey | Tag::ObsKey | Tag::Attributes, b"Value") => Tag::Value,
        (Tag::DataSet | Tag::Group | Tag::Series | Tag::Obs, b"Comp") => Tag::Comp,
        (Tag::Comp, b"Value") => Tag::CompValue,
        (Tag::CompValue, b"Text") => Tag::CompText,
        _ => Tag::Other,
    }
}

/// A problem that ends the reading.
#[derive(Debug)]
pub(super) struct Fatal {
    pub(super) at: usize,
    pub(super) message: String,
}

/// The kinds of element a reading tells apart (data messages here, structure messages in
/// `sdmx_structure`): the walk classifies each element from its parent's kind.
pub(super) trait Kinds: Copy + PartialEq {
    /// The kind of the document itself, parent of the root element.
    const DOCUMENT: Self;
    /// What the document is expected to be, for messages: "an SDMX-ML data message".
    const EXPECTED: &'static str;
    /// The kind of an element of local name `local` inside one of kind `parent`.
    fn classify(parent: Self, local: &[u8]) -> Self;
    /// Whether the text inside elements of this kind is handed to the handler.
    fn keeps_text(self) -> bool;
}

impl Kinds for Tag {
    const DOCUMENT: Tag = Tag::Document;
    const EXPECTED: &'static str = "an SDMX-ML data message";
    fn classify(parent: Tag, local: &[u8]) -> Tag {
        // What an element the reading skips holds is skipped too.
        if parent == Tag::Other {
            Tag::Other
        } else {
            classify(parent, local)
        }
    }
    fn keeps_text(self) -> bool {
        matches!(self, Tag::DataSetAction | Tag::CompValue | Tag::CompText)
    }
}

/// What a reading does with the elements the walk meets.
pub(super) trait Handler<'a, K: Kinds> {
    /// An element opens: its kind, its parent's kind, its start tag (from `<`'s byte `at`).
    fn open(&mut self, tag: K, parent: K, e: &Element<'a>);
    /// The element of kind `tag` closes (an empty element closes at once).
    fn close(&mut self, tag: K);
    /// Text inside an element of kind `tag` (one piece of it: text, a resolved reference).
    fn text(&mut self, tag: K, text: &str) {
        let _ = (tag, text);
    }
    /// A problem that does not end the reading.
    fn problem(&mut self, at: usize, message: String);
}

/// A start tag, borrowed from the document.
pub(super) struct Element<'a> {
    /// Byte of its `<`.
    pub(super) at: usize,
    pub(super) local: &'a [u8],
    /// The tag's text after `<`, up to `>` or `/>`.
    raw: &'a str,
    name_len: usize,
}

impl<'a> Element<'a> {
    pub(super) fn attributes(&self) -> Attributes<'a> {
        Attributes::new(self.raw, self.name_len)
    }
}

/// Reads the document's events, checking what every reading needs checked, and hands the
/// elements to `h`.
pub(super) fn walk<'a, K: Kinds>(text: &'a str, h: &mut impl Handler<'a, K>) -> Result<(), Fatal> {
    let mut reader = Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    // Kind and `<` byte of each open element.
    let mut stack: Vec<(K, usize)> = Vec::with_capacity(16);
    let base = text.as_ptr() as usize;
    loop {
        let event = match reader.read_event() {
            Ok(e) => e,
            Err(e) => {
                return Err(Fatal {
                    at: (reader.error_position() as usize).min(text.len()),
                    message: format!(
                        "malformed XML: {}, expected a well-formed document",
                        excerpt(&e.to_string(), 200)
                    ),
                })
            }
        };
        match event {
            Event::Start(e) | Event::Empty(e) if stack.len() >= MAX_DEPTH => {
                let at = start_of(&e, base);
                return Err(Fatal {
                    at,
                    message: format!(
                        "elements nested deeper than {MAX_DEPTH} levels, expected an SDMX-ML \
                         message (a few levels)"
                    ),
                });
            }
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(event, Event::Empty(_));
                let content_at = e.as_ptr() as usize - base;
                let raw = &text[content_at..content_at + e.len()];
                let element = Element {
                    at: content_at - 1,
                    local: local_of(raw, e.name().as_ref().len()),
                    raw,
                    name_len: e.name().as_ref().len(),
                };
                let parent = stack.last().map_or(K::DOCUMENT, |&(t, _)| t);
                let tag = K::classify(parent, element.local);
                h.open(tag, parent, &element);
                if empty {
                    h.close(tag);
                } else {
                    stack.push((tag, element.at));
                }
            }
            Event::End(_) => {
                if let Some((tag, _)) = stack.pop() {
                    h.close(tag);
                }
            }
            Event::Text(t) => {
                if t.len() > MAX_TEXT_BYTES {
                    h.problem(
                        t.as_ptr() as usize - base,
                        format!(
                            "text of {} bytes, expected at most {MAX_TEXT_BYTES}",
                            t.len()
                        ),
                    );
                } else if let Some(&(tag, _)) = stack.last().filter(|(t, _)| t.keeps_text()) {
                    h.text(tag, &text[t.as_ptr() as usize - base..][..t.len()]);
                }
            }
            Event::CData(t) => {
                if let Some(&(tag, _)) = stack.last().filter(|(t, _)| t.keeps_text()) {
                    h.text(tag, &String::from_utf8_lossy(&t));
                }
            }
            Event::GeneralRef(r) => {
                let resolved = check_ref(text, &r)?;
                if let Some(&(tag, _)) = stack.last().filter(|(t, _)| t.keeps_text()) {
                    h.text(tag, &resolved);
                }
            }
            Event::DocType(d) => {
                return Err(Fatal {
                    at: text[..(d.as_ptr() as usize - base).min(text.len())]
                        .rfind('<')
                        .unwrap_or(0),
                    message: "a DOCTYPE declaration, expected none: DTDs and the entities \
                              they declare are refused"
                        .into(),
                });
            }
            Event::Eof => return at_end(text, stack.last().map(|&(_, at)| at), K::EXPECTED),
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
        }
    }
}

fn seen_any(text: &str) -> bool {
    text.contains('<')
}

/// An entity or character reference: only the five predefined entities and characters;
/// what it stands for.
fn check_ref(text: &str, r: &quick_xml::events::BytesRef) -> Result<String, Fatal> {
    let at = r.as_ptr() as usize - text.as_ptr() as usize;
    let name = &text[at..][..r.len()];
    let known = r.is_char_ref() || quick_xml::escape::resolve_predefined_entity(name).is_some();
    if !known {
        return Err(Fatal {
            at: at - 1,
            message: format!(
                "unknown entity `&{}`, expected one of the five predefined entities \
                 (&lt; &gt; &amp; &apos; &quot;) or a character reference",
                excerpt(name, 40)
            ),
        });
    }
    if !r.is_char_ref() {
        let entity = quick_xml::escape::resolve_predefined_entity(name).unwrap_or_default();
        return Ok(entity.to_string());
    }
    match r.resolve_char_ref() {
        Ok(Some(c)) => Ok(c.to_string()),
        _ => Err(Fatal {
            at: at - 1,
            message: format!(
                "invalid character reference `&{}`, expected a Unicode character",
                excerpt(name, 40)
            ),
        }),
    }
}

/// The end of the text: an error if an element is still open (its `<` at `open`) or there
/// was none.
fn at_end(text: &str, open: Option<usize>, expected: &str) -> Result<(), Fatal> {
    if let Some(at) = open {
        let name_len = text[at + 1..]
            .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
            .unwrap_or(0);
        let name = &text[at + 1..at + 1 + name_len];
        let o = origin_at(text, at);
        return Err(Fatal {
            at: text.len(),
            message: format!(
                "truncated document: element `{}` opened at {o} is not closed, \
                 expected the whole message",
                excerpt(name, 40)
            ),
        });
    }
    if !seen_any(text) {
        return Err(Fatal {
            at: 0,
            message: format!("no element, expected {expected}"),
        });
    }
    Ok(())
}

fn start_of(e: &BytesStart, base: usize) -> usize {
    (e.as_ptr() as usize - base).saturating_sub(1)
}

/// The local part of an element name: after its prefix's `:`.
fn local_of(raw: &str, name_len: usize) -> &[u8] {
    let name = &raw.as_bytes()[..name_len];
    match name.iter().position(|&b| b == b':') {
        Some(i) => &name[i + 1..],
        None => name,
    }
}

/// At most `n` characters of `s`, with `…` when cut.
fn excerpt(s: &str, n: usize) -> String {
    let mut out: String = s.chars().take(n).collect();
    if s.chars().nth(n).is_some() {
        out.push('…');
    }
    out
}

/// Line and column (in characters) of byte `at`, counted from the start: for the few places
/// reported once per file.
pub(super) fn origin_at(text: &str, at: usize) -> Origin {
    Pos::START.advanced(text, at).origin()
}

/// A place in the document: byte, line, column; later places are found by scanning on from an
/// earlier one, so that every row's place costs the bytes since the last row only.
#[derive(Debug, Clone, Copy)]
struct Pos {
    byte: usize,
    line: u32,
    col: u32,
}

impl Pos {
    const START: Pos = Pos {
        byte: 0,
        line: 1,
        col: 1,
    };

    fn advanced(self, text: &str, to: usize) -> Pos {
        let to = to.min(text.len()).max(self.byte);
        let (mut line, mut col) = (self.line, self.col);
        for &b in &text.as_bytes()[self.byte..to] {
            if b == b'\n' {
                line = line.saturating_add(1);
                col = 1;
            } else if (b & 0xC0) != 0x80 {
                // Not a UTF-8 continuation byte: a character starts.
                col = col.saturating_add(1);
            }
        }
        Pos {
            byte: to,
            line,
            col,
        }
    }

    fn origin(self) -> Origin {
        Origin::At {
            line: self.line,
            col: self.col,
        }
    }
}

/// Where a component is written, as far as the first reading saw.
#[derive(Debug, Clone, Copy, Default)]
struct Places {
    /// An XML attribute of `DataSet`, `Group`, `Series`, an `Obs` of a series, a flat `Obs`.
    ds_xml: bool,
    group_xml: bool,
    series_xml: bool,
    obs_xml: bool,
    flat_obs_xml: bool,
    /// A `Value` of a `SeriesKey`, `GroupKey` or `ObsKey`.
    key: bool,
    /// A `Value` of `Attributes`.
    attribute: bool,
    /// The id of `ObsDimension` (GenericData's observation dimension).
    obs_dimension: bool,
    /// The id of `ObsValue`.
    obs_value: bool,
}

/// The first reading: every component id, where it is written and where it first appears.
#[derive(Default)]
struct Scan {
    ids: Vec<(String, Places, usize)>,
    index: FxHashMap<Vec<u8>, usize>,
    /// The id each XML attribute position of the last `Obs` was (see `Emit::obs_cache`).
    obs_cache: Vec<usize>,
    root: Option<String>,
    data_sets: usize,
    /// `dimensionAtObservation` of the header, when it names a dimension.
    obs_dimension: Option<String>,
    /// Components past [`MAX_COMPONENTS`] were left out.
    too_many: bool,
}

impl Scan {
    fn note(&mut self, id: &[u8], at: usize, set: impl Fn(&mut Places)) {
        let i = match self.index.get(id) {
            Some(&i) => i,
            None => {
                if self.ids.len() >= MAX_COMPONENTS {
                    self.too_many = true;
                    return;
                }
                let i = self.ids.len();
                self.ids.push((
                    String::from_utf8_lossy(id).into_owned(),
                    Places::default(),
                    at,
                ));
                self.index.insert(id.to_vec(), i);
                i
            }
        };
        set(&mut self.ids[i].1);
    }

    fn xml_components(&mut self, e: &Element, set: impl Fn(&mut Places), skip: &[&str]) {
        let mut attrs = e.attributes();
        // Duplicates are reported by the second reading.
        attrs.with_checks(false);
        for (position, a) in attrs.flatten().enumerate() {
            let key = a.key;
            let id = key.as_ref();
            // Most observations repeat the ids of the last one, in its order.
            if let Some(&i) = self.obs_cache.get(position).filter(|_| skip.is_empty()) {
                if self.ids[i].0.as_bytes() == id {
                    set(&mut self.ids[i].1);
                    continue;
                }
            }
            if key.prefix().is_some() || id == b"xmlns" {
                continue;
            }
            if skip.iter().any(|s| s.as_bytes() == id) {
                continue;
            }
            self.note(id, e.at, &set);
            if let Some(&i) = self.index.get(id) {
                if position < self.obs_cache.len() {
                    self.obs_cache[position] = i;
                } else if position == self.obs_cache.len() {
                    self.obs_cache.push(i);
                }
            }
        }
    }

    /// The components in row order, or None when the document has no data set.
    fn layout(&self, roles: &Roles) -> Option<Layout> {
        if self.data_sets == 0 {
            return None;
        }
        let has_time = self
            .ids
            .iter()
            .any(|(id, _, _)| id.eq_ignore_ascii_case("TIME_PERIOD"));
        let role_of = |id: &str, p: &Places| -> Role {
            if id.eq_ignore_ascii_case("TIME_PERIOD") {
                return Role::Time;
            }
            if let Some(r) = roles.get(id) {
                return r;
            }
            if p.obs_dimension && !has_time {
                Role::Time
            } else if id.eq_ignore_ascii_case(roles.measure()) || p.obs_value {
                Role::Measure
            } else if p.key || p.obs_dimension {
                Role::Dimension
            } else if p.attribute
                || WELL_KNOWN_ATTRIBUTES
                    .iter()
                    .any(|w| w.eq_ignore_ascii_case(id))
            {
                Role::Attribute
            } else if p.series_xml || p.flat_obs_xml {
                Role::Dimension
            } else {
                Role::Attribute
            }
        };
        let mut by_role: [Vec<usize>; 4] = Default::default();
        for (i, (id, p, _)) in self.ids.iter().enumerate() {
            let slot = match role_of(id, p) {
                Role::Dimension => 0,
                Role::Time => 1,
                Role::Measure => 2,
                Role::Attribute => 3,
            };
            by_role[slot].push(i);
        }
        let mut components = Vec::new();
        let mut first = Vec::new();
        let mut source = Vec::new();
        for (slot, list) in by_role.iter().enumerate() {
            for &i in list {
                let (id, _, at) = &self.ids[i];
                let role = [Role::Dimension, Role::Time, Role::Measure, Role::Attribute][slot];
                components.push(Component::new(id.clone(), role));
                first.push(*at);
                source.push(Some(i));
            }
            // Every row has a period and a value, written or not.
            let (missing, role) = match slot {
                1 => (list.is_empty(), Role::Time),
                2 => (list.is_empty(), Role::Measure),
                _ => (false, Role::Dimension),
            };
            if missing {
                let id = if role == Role::Time {
                    self.obs_dimension.as_deref().unwrap_or("TIME_PERIOD")
                } else {
                    roles.measure()
                };
                components.push(Component::new(id, role));
                first.push(0);
                source.push(None);
            }
        }
        let mut index = FxHashMap::default();
        for (c, s) in source.iter().enumerate() {
            if let Some(i) = s {
                index.insert(self.ids[*i].0.as_bytes().to_vec(), c);
            }
        }
        let time = components.iter().position(|c| c.role == Role::Time)?;
        let value = components.iter().position(|c| c.role == Role::Measure)?;
        Some(Layout {
            components,
            first,
            index,
            time,
            value,
            too_many: self.too_many,
        })
    }
}

impl<'a> Handler<'a, Tag> for Scan {
    fn open(&mut self, tag: Tag, parent: Tag, e: &Element<'a>) {
        match tag {
            Tag::Message => {
                self.root = Some(String::from_utf8_lossy(e.local).into_owned());
            }
            Tag::HeaderStructure => {
                for a in e.attributes().flatten() {
                    if a.key.local_name().as_ref() == b"dimensionAtObservation" {
                        let v = String::from_utf8_lossy(&a.value).into_owned();
                        if v != "AllDimensions" {
                            self.obs_dimension = Some(v);
                        }
                    }
                }
            }
            Tag::DataSet => {
                self.data_sets += 1;
                self.xml_components(e, |p| p.ds_xml = true, &DATASET_XML_ATTRIBUTES);
            }
            Tag::Group => self.xml_components(e, |p| p.group_xml = true, &["type"]),
            Tag::Series => self.xml_components(e, |p| p.series_xml = true, &[]),
            Tag::Obs if parent == Tag::Series => self.xml_components(e, |p| p.obs_xml = true, &[]),
            Tag::Obs => self.xml_components(e, |p| p.flat_obs_xml = true, &[]),
            Tag::Comp => {
                let id = e
                    .attributes()
                    .flatten()
                    .find(|a| a.key.local_name().as_ref() == b"id")
                    .map(|a| a.value.into_owned());
                if let Some(id) = id {
                    self.note(&id, e.at, |p| p.attribute = true);
                }
            }
            Tag::Value | Tag::ObsValue | Tag::ObsDimension => {
                let id = e
                    .attributes()
                    .flatten()
                    .find(|a| a.key.local_name().as_ref() == b"id")
                    .map(|a| (a.value.into_owned(), e.at));
                let (id, at) = match (tag, id) {
                    (_, Some(found)) => found,
                    (Tag::ObsValue, None) => (b"OBS_VALUE".to_vec(), e.at),
                    (Tag::ObsDimension, None) => (
                        self.obs_dimension
                            .clone()
                            .unwrap_or_else(|| "TIME_PERIOD".into())
                            .into_bytes(),
                        e.at,
                    ),
                    (_, None) => return,
                };
                match (tag, parent) {
                    (Tag::ObsValue, _) => self.note(&id, at, |p| p.obs_value = true),
                    (Tag::ObsDimension, _) => self.note(&id, at, |p| p.obs_dimension = true),
                    (_, Tag::Attributes) => self.note(&id, at, |p| p.attribute = true),
                    _ => self.note(&id, at, |p| p.key = true),
                }
            }
            _ => {}
        }
    }

    fn close(&mut self, _tag: Tag) {}

    fn problem(&mut self, _at: usize, _message: String) {}
}

/// The components of every row, found by the first reading.
struct Layout {
    components: Vec<Component>,
    /// Byte where each component is first written (0 for the period or value, when none is).
    first: Vec<usize>,
    index: FxHashMap<Vec<u8>, usize>,
    time: usize,
    value: usize,
    too_many: bool,
}

/// A component's value at one level, and where it is written.
#[derive(Clone)]
struct Field<'a> {
    value: Cow<'a, str>,
    /// Byte of the value.
    at: usize,
    /// The place of the element holding it, to count the value's place from.
    from: Pos,
}

/// The values the elements of one level (data set, series, observation) give.
struct Level<'a> {
    fields: Vec<Option<Field<'a>>>,
    /// Indexes set, to clear them.
    set: Vec<usize>,
    /// Where the level's element starts.
    pos: Pos,
    /// A value of this level could not be read (reported): its rows are left out.
    bad: bool,
}

impl<'a> Level<'a> {
    fn new(n: usize) -> Self {
        Level {
            fields: vec![None; n],
            set: Vec::new(),
            pos: Pos::START,
            bad: false,
        }
    }

    fn clear(&mut self, pos: Pos) {
        for &i in &self.set {
            self.fields[i] = None;
        }
        self.set.clear();
        self.pos = pos;
        self.bad = false;
    }

    fn put(&mut self, i: usize, f: Field<'a>) -> bool {
        let fresh = self.fields[i].is_none();
        if fresh {
            self.set.push(i);
        }
        self.fields[i] = Some(f);
        fresh
    }
}

/// The attributes of the groups of one set of dimensions, by the groups' codes of them.
struct GroupPattern<'a> {
    dims: Vec<usize>,
    entries: HashMap<Vec<Cow<'a, str>>, Vec<(usize, Field<'a>)>>,
}

/// The second reading: a row for each observation.
struct Emit<'a, 'l, 's> {
    text: &'a str,
    layout: &'l Layout,
    sink: &'s mut dyn Sink,
    /// Where the last element read starts.
    cursor: Pos,
    ds: Level<'a>,
    group: Level<'a>,
    series: Level<'a>,
    obs: Level<'a>,
    /// The values the series' groups give, once the series key is read.
    from_groups: Level<'a>,
    groups_resolved: bool,
    patterns: Vec<GroupPattern<'a>>,
    series_obs: usize,
    /// The header's `DataSetAction` and the data set's `action`.
    header_delete: bool,
    delete: bool,
    /// Component of the `ObsDimension` of GenericData.
    obs_dimension: Option<usize>,
    /// The component each XML attribute position of the last `Obs` was: most elements of a
    /// file write the same attributes in the same order, so the lookup is a comparison.
    obs_cache: Vec<usize>,
    reported_too_many: bool,
    /// The data set, group, series and observation elements open, innermost last: a generic
    /// `Value` belongs to the innermost.
    open_levels: Vec<Which>,
    spare: Vec<&'static str>,
    /// The `Comp` being read: its values so far.
    comp: Option<Comp>,
}

/// An SDMX-ML 3.0 component of several values, as read so far.
struct Comp {
    /// Its component and the level it is given at, unless its id is unknown.
    target: Option<(usize, Which)>,
    at: usize,
    from: Pos,
    values: Vec<String>,
    /// Whether the current `Value` holds `Text` elements (its own text is then white space),
    /// and whether the one being read is its first.
    texts: bool,
    first_text: bool,
}

/// What joins the values of a component of several values in its one field.
pub const VALUE_SEPARATOR: &str = ";";

/// Which level's values an element fills.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    DataSet,
    Group,
    Series,
    Obs,
}

impl<'a, 'l, 's> Emit<'a, 'l, 's> {
    fn new(text: &'a str, layout: &'l Layout, sink: &'s mut dyn Sink) -> Self {
        let n = layout.components.len();
        Emit {
            text,
            layout,
            sink,
            cursor: Pos::START,
            ds: Level::new(n),
            group: Level::new(n),
            series: Level::new(n),
            obs: Level::new(n),
            from_groups: Level::new(n),
            groups_resolved: false,
            patterns: Vec::new(),
            series_obs: 0,
            header_delete: false,
            delete: false,
            obs_dimension: None,
            obs_cache: Vec::new(),
            reported_too_many: false,
            open_levels: Vec::new(),
            spare: Vec::new(),
            comp: None,
        }
    }

    fn level(&mut self, w: Which) -> &mut Level<'a> {
        match w {
            Which::DataSet => &mut self.ds,
            Which::Group => &mut self.group,
            Which::Series => &mut self.series,
            Which::Obs => &mut self.obs,
        }
    }

    fn at(&self, from: Pos, byte: usize) -> Origin {
        from.advanced(self.text, byte).origin()
    }

    fn report(&mut self, from: Pos, byte: usize, message: String) {
        let o = self.at(from, byte);
        self.sink.error(o, message);
    }

    /// The byte of `s`, a slice of the document.
    fn offset(&self, s: &[u8]) -> usize {
        (s.as_ptr() as usize).saturating_sub(self.text.as_ptr() as usize)
    }

    /// A value as the file means it (entities and character references resolved, white space
    /// normalised), or None when it cannot be read (reported).
    fn value(
        &mut self,
        raw: &Cow<'a, [u8]>,
        decoded: quick_xml::Result<Cow<'a, str>>,
        from: Pos,
    ) -> Option<(Cow<'a, str>, usize)> {
        let at = self.offset(raw);
        if raw.len() > MAX_VALUE_BYTES {
            self.report(
                from,
                at,
                format!(
                    "attribute value of {} bytes, expected at most {MAX_VALUE_BYTES}",
                    raw.len()
                ),
            );
            return None;
        }
        match decoded {
            Ok(v) => Some((v, at)),
            Err(e) => {
                self.report(
                    from,
                    at,
                    format!(
                        "unreadable attribute value: {}, expected text with only the five \
                         predefined entities and character references",
                        excerpt(&e.to_string(), 200)
                    ),
                );
                None
            }
        }
    }

    /// An attribute of `e` the XML reader could not split: reported, and level `w` refused.
    fn malformed_attribute(
        &mut self,
        from: Pos,
        e: &Element<'a>,
        w: Which,
        err: &dyn std::fmt::Display,
    ) {
        self.report(
            from,
            e.at,
            format!(
                "malformed attribute: {}, expected name=\"value\"",
                excerpt(&err.to_string(), 200)
            ),
        );
        self.level(w).bad = true;
    }

    /// The XML attributes of a StructureSpecific element as components of level `w`.
    fn xml_components(&mut self, e: &Element<'a>, w: Which, skip: &[&str]) {
        let from = self.cursor;
        let mut position = 0;
        let mut attrs = e.attributes();
        loop {
            let a = match attrs.next() {
                None => break,
                Some(Ok(a)) => a,
                Some(Err(err)) => {
                    // Attribute syntax: the reader has checked the tag, so this is rare.
                    self.malformed_attribute(from, e, w, &err);
                    return;
                }
            };
            let key = a.key.as_ref();
            // The data set's action, whatever its prefix.
            if w == Which::DataSet && a.key.local_name().as_ref() == b"action" {
                let v = a.normalized_value(XmlVersion::Implicit1_0);
                let raw = a.value.clone();
                if let Some((v, at)) = self.value(&raw, v, from) {
                    self.delete = self.action(&v, from, at);
                }
                continue;
            }
            if a.key.prefix().is_some() || key == b"xmlns" {
                continue;
            }
            if skip.iter().any(|s| s.as_bytes() == key) {
                continue;
            }
            let cached = if w == Which::Obs {
                self.obs_cache
                    .get(position)
                    .copied()
                    .filter(|&c| self.layout.components[c].id.as_bytes() == key)
            } else {
                None
            };
            let Some(c) = cached.or_else(|| self.layout.index.get(key).copied()) else {
                self.too_many(from, e.at);
                continue;
            };
            if w == Which::Obs {
                if position < self.obs_cache.len() {
                    self.obs_cache[position] = c;
                } else {
                    self.obs_cache.push(c);
                }
            }
            position += 1;
            let raw = a.value.clone();
            let v = a.normalized_value(XmlVersion::Implicit1_0);
            match self.value(&raw, v, from) {
                Some((value, at)) => {
                    self.level(w).put(c, Field { value, at, from });
                }
                None => self.level(w).bad = true,
            }
        }
    }

    fn too_many(&mut self, from: Pos, at: usize) {
        if self.layout.too_many && !self.reported_too_many {
            self.reported_too_many = true;
            self.report(
                from,
                at,
                format!(
                    "more than {MAX_COMPONENTS} distinct components, expected the tens of a data \
                     structure"
                ),
            );
        }
    }

    /// Whether a data set's action deletes; an unknown action is reported (and read as not).
    fn action(&mut self, v: &str, from: Pos, at: usize) -> bool {
        match v {
            "Delete" | "delete" => true,
            "Replace" | "Append" | "Information" | "Merge" | "replace" | "append"
            | "information" | "merge" => false,
            other => {
                self.report(
                    from,
                    at,
                    format!(
                        "unknown action `{}`, expected Append, Replace, Merge, Information or \
                         Delete",
                        excerpt(other, 40)
                    ),
                );
                false
            }
        }
    }

    /// A GenericData `Value` (`id`, `value`), `ObsValue` or `ObsDimension`, into level `w`.
    fn generic_value(&mut self, e: &Element<'a>, w: Which, default_id: Option<usize>) {
        let from = self.cursor;
        let (mut id, mut value) = (None, None);
        for a in e.attributes() {
            let a = match a {
                Ok(a) => a,
                Err(err) => {
                    self.malformed_attribute(from, e, w, &err);
                    return;
                }
            };
            match a.key.local_name().as_ref() {
                b"id" => id = Some(a.value.clone()),
                b"value" => {
                    let raw = a.value.clone();
                    let v = a.normalized_value(XmlVersion::Implicit1_0);
                    match self.value(&raw, v, from) {
                        Some(v) => value = Some(v),
                        None => {
                            self.level(w).bad = true;
                            return;
                        }
                    }
                }
                _ => {}
            }
        }
        let c = match &id {
            Some(id) => self.layout.index.get(id.as_ref()).copied(),
            None => default_id,
        };
        let Some(c) = c else {
            if id.is_none() {
                self.report(
                    from,
                    e.at,
                    "`Value` without an `id`, expected the id of a component".into(),
                );
            } else {
                self.too_many(from, e.at);
            }
            return;
        };
        // An ObsValue without `value` is a missing figure: the empty field says so.
        let (value, at) = value.unwrap_or((Cow::Borrowed(""), e.at));
        self.level(w).put(c, Field { value, at, from });
    }

    /// The attributes the groups give the current series, found once its key is read.
    fn resolve_groups(&mut self) {
        if self.groups_resolved {
            return;
        }
        self.groups_resolved = true;
        self.from_groups.clear(self.series.pos);
        let mut found = Vec::new();
        for p in &self.patterns {
            let key: Option<Vec<Cow<'a, str>>> = p
                .dims
                .iter()
                .map(|&d| {
                    let f = self.series.fields[d].as_ref();
                    f.or(self.obs.fields[d].as_ref()).map(|f| f.value.clone())
                })
                .collect();
            if let Some(attrs) = key.and_then(|k| p.entries.get(&k)) {
                found.extend(attrs.iter().cloned());
            }
        }
        for (c, f) in found {
            self.from_groups.put(c, f);
        }
    }

    /// A group's key and attributes, kept for the series whose key matches.
    fn end_group(&mut self) {
        if self.group.bad {
            return;
        }
        let layout = self.layout;
        let mut dims: Vec<usize> = Vec::new();
        let mut attrs = Vec::new();
        let mut set = self.group.set.clone();
        set.sort_unstable();
        for i in set {
            let Some(f) = self.group.fields[i].clone() else {
                continue;
            };
            if matches!(layout.components[i].role, Role::Dimension | Role::Time) {
                dims.push(i);
            } else {
                attrs.push((i, f));
            }
        }
        let key: Vec<Cow<'a, str>> = dims
            .iter()
            .filter_map(|&d| self.group.fields[d].as_ref().map(|f| f.value.clone()))
            .collect();
        let p = match self.patterns.iter().position(|p| p.dims == dims) {
            Some(p) => p,
            None => {
                self.patterns.push(GroupPattern {
                    dims,
                    entries: HashMap::new(),
                });
                self.patterns.len() - 1
            }
        };
        self.patterns[p]
            .entries
            .entry(key)
            .or_default()
            .extend(attrs);
    }

    /// One observation: its row (or delete) from every level's values.
    fn end_obs(&mut self) {
        if self.obs.bad || self.series.bad || self.ds.bad {
            return;
        }
        if self.open_levels.len() < 3 {
            // A flat observation: its own key picks its groups.
            self.groups_resolved = false;
        }
        self.resolve_groups();
        self.series_obs += 1;
        let n = self.layout.components.len();
        let mut fields = recycle(std::mem::take(&mut self.spare));
        // Each component's value from the nearest level that gives it.
        for i in 0..n {
            let f = self.obs.fields[i]
                .as_ref()
                .or(self.series.fields[i].as_ref())
                .or(self.from_groups.fields[i].as_ref())
                .or(self.ds.fields[i].as_ref());
            fields.push(f.map_or("", |f| f.value.as_ref()));
        }
        let text = self.text;
        let row = self.obs.pos;
        let levels = [&self.obs, &self.series, &self.from_groups, &self.ds];
        let origin = |i: usize| -> Origin {
            if i == ROW {
                return row.origin();
            }
            levels
                .iter()
                .find_map(|l| l.fields.get(i).and_then(Option::as_ref))
                .map_or(row.origin(), |f| f.from.advanced(text, f.at).origin())
        };
        if self.delete {
            self.sink.delete(&fields, &origin);
        } else {
            self.sink.row(&fields, &origin);
        }
        self.spare = recycle(fields);
    }
}

impl<'a> Handler<'a, Tag> for Emit<'a, '_, '_> {
    fn open(&mut self, tag: Tag, parent: Tag, e: &Element<'a>) {
        if matches!(
            tag,
            Tag::Other | Tag::Message | Tag::Header | Tag::Attributes
        ) || matches!(tag, Tag::SeriesKey | Tag::GroupKey | Tag::ObsKey)
        {
            return;
        }
        self.cursor = self.cursor.advanced(self.text, e.at);
        let pos = self.cursor;
        let which = match tag {
            Tag::DataSet => Some(Which::DataSet),
            Tag::Group => Some(Which::Group),
            Tag::Series => Some(Which::Series),
            Tag::Obs => Some(Which::Obs),
            _ => None,
        };
        self.open_levels.extend(which);
        match tag {
            Tag::HeaderStructure => {
                for a in e.attributes().flatten() {
                    if a.key.local_name().as_ref() == b"dimensionAtObservation" {
                        let v = String::from_utf8_lossy(&a.value).into_owned();
                        self.obs_dimension = self.layout.index.get(v.as_bytes()).copied();
                    }
                }
            }
            Tag::DataSet => {
                self.ds.clear(pos);
                self.patterns.clear();
                // The header's action, unless the data set says its own.
                self.delete = self.header_delete;
                self.xml_components(e, Which::DataSet, &DATASET_XML_ATTRIBUTES);
            }
            Tag::Group => {
                self.group.clear(pos);
                self.xml_components(e, Which::Group, &["type"]);
            }
            Tag::Series => {
                self.series.clear(pos);
                self.groups_resolved = false;
                self.series_obs = 0;
                self.xml_components(e, Which::Series, &[]);
            }
            Tag::Obs => {
                self.obs.clear(pos);
                if parent == Tag::DataSet {
                    // A flat observation belongs to no series.
                    self.series.clear(pos);
                    self.groups_resolved = false;
                }
                self.xml_components(e, Which::Obs, &[]);
            }
            Tag::ObsValue => {
                let c = self.layout.index.get(b"OBS_VALUE".as_slice()).copied();
                self.generic_value(e, Which::Obs, c.or(Some(self.layout.value)));
            }
            Tag::ObsDimension => {
                let c = self.obs_dimension.or(Some(self.layout.time));
                self.generic_value(e, Which::Obs, c);
            }
            Tag::Value => {
                let w = *self.open_levels.last().unwrap_or(&Which::DataSet);
                self.generic_value(e, w, None);
            }
            Tag::Comp | Tag::CompValue | Tag::CompText => self.open_comp(tag, e),
            _ => {}
        }
    }

    fn close(&mut self, tag: Tag) {
        match tag {
            Tag::Obs => {
                self.end_obs();
                self.obs.clear(self.cursor);
            }
            Tag::Group => {
                self.end_group();
                self.group.clear(self.cursor);
            }
            Tag::Series => {
                if self.series_obs == 0 && self.delete {
                    let pos = self.series.pos;
                    self.sink.error(
                        pos.origin(),
                        "series without observations in a Delete data set, expected the \
                         observations to delete (deleting a whole series is not supported)"
                            .into(),
                    );
                }
                self.series.clear(self.cursor);
                self.groups_resolved = false;
            }
            Tag::DataSet => {
                self.ds.clear(self.cursor);
            }
            Tag::Comp => self.close_comp(),
            _ => {}
        }
        if matches!(tag, Tag::DataSet | Tag::Group | Tag::Series | Tag::Obs) {
            self.open_levels.pop();
        }
    }

    fn text(&mut self, tag: Tag, text: &str) {
        match (tag, self.comp.as_mut()) {
            (Tag::DataSetAction, _) => {
                self.header_delete = text.trim().eq_ignore_ascii_case("delete");
            }
            (Tag::CompValue, Some(c)) if !c.texts => c.push(text),
            (Tag::CompText, Some(c)) if c.first_text => c.push(text),
            _ => {}
        }
    }

    fn problem(&mut self, at: usize, message: String) {
        let o = self.at(self.cursor, at);
        self.sink.error(o, message);
    }
}

impl Comp {
    /// Text of the value being read; a value longer than any the reader takes is cut here
    /// and refused when the component closes.
    fn push(&mut self, text: &str) {
        if let Some(v) = self.values.last_mut() {
            if v.len() <= MAX_VALUE_BYTES {
                v.push_str(text);
            }
        }
    }
}

impl<'a> Emit<'a, '_, '_> {
    /// A `Comp`, one of its `Value`s or a `Text` of one opens.
    fn open_comp(&mut self, tag: Tag, e: &Element<'a>) {
        if tag == Tag::Comp {
            let id = e
                .attributes()
                .flatten()
                .find(|a| a.key.local_name().as_ref() == b"id")
                .map(|a| a.value);
            let c = id.and_then(|id| self.layout.index.get(id.as_ref()).copied());
            let w = *self.open_levels.last().unwrap_or(&Which::DataSet);
            self.comp = Some(Comp {
                target: c.map(|c| (c, w)),
                at: e.at,
                from: self.cursor,
                values: Vec::new(),
                texts: false,
                first_text: false,
            });
            return;
        }
        let Some(c) = self.comp.as_mut() else { return };
        if tag == Tag::CompValue {
            c.values.push(String::new());
            c.texts = false;
        } else {
            // The white space before the first `Text` is not part of the value.
            c.first_text = !c.texts;
            if !c.texts {
                if let Some(v) = c.values.last_mut() {
                    v.clear();
                }
            }
            c.texts = true;
        }
    }

    /// A `Comp` closes: its values, trimmed and joined, become its component's field.
    fn close_comp(&mut self) {
        let Some(c) = self.comp.take() else { return };
        let Some((i, w)) = c.target else {
            self.too_many(c.from, c.at);
            return;
        };
        let values: Vec<&str> = c.values.iter().map(|v| v.trim()).collect();
        let value = values.join(VALUE_SEPARATOR);
        if value.len() > MAX_VALUE_BYTES {
            self.report(
                c.from,
                c.at,
                format!(
                    "component value of {} bytes, expected at most {MAX_VALUE_BYTES}",
                    value.len()
                ),
            );
            self.level(w).bad = true;
            return;
        }
        let field = Field {
            value: Cow::Owned(value),
            at: c.at,
            from: c.from,
        };
        self.level(w).put(i, field);
    }
}

/// Empties `v` and hands back its allocation for borrows of another lifetime.
fn recycle<'b>(mut v: Vec<&str>) -> Vec<&'b str> {
    v.clear();
    v.into_iter().map(|_| "").collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Collect;
    use std::time::{Duration, Instant};

    const ECB_GENERIC: &str = include_str!(
        "../../tests/fixtures/publishers/sdmx-ml/ecb_exr_M.USD.EUR.SP00.A_generic.xml"
    );
    const BIS_SS: &str =
        include_str!("../../tests/fixtures/publishers/sdmx-ml/bis_der_structurespecific.xml");
    const ECB_30: &str = include_str!(
        "../../tests/fixtures/publishers/sdmx-ml/ecb_exr_sdmxml30_structurespecific.xml"
    );

    use Role::{Attribute as A, Dimension as D, Measure as M, Time as T};

    fn run(text: &str, options: &SdmxMlOptions) -> Collect {
        let mut sink = Collect::default();
        read(text, options, &mut sink);
        for r in sink.rows.iter().chain(&sink.deleted) {
            assert_eq!(r.len(), sink.components.len());
        }
        sink
    }

    fn read_default(text: &str) -> Collect {
        run(text, &SdmxMlOptions::default())
    }

    fn roles(c: &Collect) -> Vec<(&str, Role)> {
        c.components
            .iter()
            .map(|c| (c.id.as_str(), c.role))
            .collect()
    }

    /// A row as `ID=value` pairs of its non-empty fields, for short expectations.
    fn row(c: &Collect, r: &[String]) -> String {
        c.components
            .iter()
            .zip(r)
            .filter(|(_, v)| !v.is_empty())
            .map(|(c, v)| format!("{}={v}", c.id))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn rows(c: &Collect) -> Vec<String> {
        c.rows.iter().map(|r| row(c, r)).collect()
    }

    #[test]
    fn generic_data_of_the_ecb() {
        let c = read_default(ECB_GENERIC);
        assert_eq!(c.errors, vec![]);
        assert_eq!(
            roles(&c),
            vec![
                ("FREQ", D),
                ("CURRENCY", D),
                ("CURRENCY_DENOM", D),
                ("EXR_TYPE", D),
                ("EXR_SUFFIX", D),
                ("TIME_PERIOD", T),
                ("OBS_VALUE", M),
                ("DECIMALS", A),
                ("TIME_FORMAT", A),
                ("SOURCE_AGENCY", A),
                ("TITLE_COMPL", A),
                ("COLLECTION", A),
                ("UNIT", A),
                ("TITLE", A),
                ("UNIT_MULT", A),
                ("OBS_STATUS", A),
            ]
        );
        assert_eq!(c.rows.len(), 252);
        assert_eq!(
            rows(&c)[0],
            "FREQ=M CURRENCY=USD CURRENCY_DENOM=EUR EXR_TYPE=SP00 EXR_SUFFIX=A \
             TIME_PERIOD=1999-01 OBS_VALUE=1.16078 DECIMALS=4 TIME_FORMAT=P1M SOURCE_AGENCY=4F0 \
             TITLE_COMPL=ECB reference exchange rate, US dollar/Euro, 2:15 pm (C.E.T.) \
             COLLECTION=A UNIT=USD TITLE=US dollar/Euro UNIT_MULT=0 OBS_STATUS=A"
        );
        assert_eq!(c.column("TIME_PERIOD")[251], "2019-12");
        // Line 34: `<generic:ObsValue value="1.16078"/>`, the value at column 26.
        assert_eq!(c.origins[0][6], Origin::At { line: 34, col: 26 });
        // The row's own place: its `<generic:Obs>` on line 32.
        let mut row_at = None;
        let mut sink = RowAt(&mut row_at);
        read(ECB_GENERIC, &SdmxMlOptions::default(), &mut sink);
        assert_eq!(row_at, Some(Origin::At { line: 32, col: 1 }));
        // The series attribute DECIMALS (line 23) is placed where the series writes it.
        assert_eq!(c.origins[0][7], Origin::At { line: 23, col: 37 });
    }

    /// Keeps the place of the first row.
    struct RowAt<'a>(&'a mut Option<Origin>);

    impl Sink for RowAt<'_> {
        fn components(&mut self, _: &[Component], _: &dyn Fn(usize) -> Origin) -> bool {
            true
        }
        fn row(&mut self, _: &[&str], origin: &dyn Fn(usize) -> Origin) {
            self.0.get_or_insert_with(|| origin(ROW));
        }
        fn name(&mut self, _: usize, _: &str, _: &str, _: &str) {}
        fn error(&mut self, origin: Origin, message: String) {
            panic!("{origin}: {message}");
        }
    }

    #[test]
    fn structure_specific_21_of_the_bis() {
        let c = read_default(BIS_SS);
        assert_eq!(c.errors, vec![]);
        let dims = [
            "FREQ",
            "DER_TYPE",
            "DER_INSTR",
            "DER_RISK",
            "DER_REP_CTY",
            "DER_SECTOR_CPY",
            "DER_CPC",
            "DER_SECTOR_UDL",
            "DER_CURR_LEG1",
            "DER_CURR_LEG2",
            "DER_ISSUE_MAT",
            "DER_RATING",
            "DER_EX_METHOD",
            "DER_BASIS",
        ];
        let mut want: Vec<(&str, Role)> = dims.iter().map(|d| (*d, D)).collect();
        want.extend([
            ("TIME_PERIOD", T),
            ("OBS_VALUE", M),
            ("DECIMALS", A),
            ("UNIT_MULT", A),
            ("UNIT_MEASURE", A),
            ("AVAILABILITY", A),
            ("COLLECTION", A),
            ("OBS_STATUS", A),
            ("OBS_CONF", A),
        ]);
        assert_eq!(roles(&c), want);
        assert_eq!(c.rows.len(), 1000);
        let empty = c
            .column("OBS_VALUE")
            .iter()
            .filter(|v| v.is_empty())
            .count();
        assert_eq!(empty, 640);
        assert!(c
            .rows
            .iter()
            .all(|r| r[c.col("OBS_VALUE")].is_empty() == (r[c.col("OBS_STATUS")] == "M")));
        // The third observation of the first series, with the data set's attributes.
        assert_eq!(
            rows(&c)[2],
            "FREQ=A DER_TYPE=U DER_INSTR=A DER_RISK=B DER_REP_CTY=5J DER_SECTOR_CPY=A \
             DER_CPC=1E DER_SECTOR_UDL=A DER_CURR_LEG1=HKD DER_CURR_LEG2=TO1 DER_ISSUE_MAT=A \
             DER_RATING=A DER_EX_METHOD=3 DER_BASIS=C TIME_PERIOD=2004 OBS_VALUE=14206.490766 \
             DECIMALS=3 UNIT_MULT=6 UNIT_MEASURE=USD AVAILABILITY=K COLLECTION=S OBS_STATUS=A \
             OBS_CONF=F"
        );
        // `UNIT_MULT="6"` on the DataSet element, line 22 column 46.
        assert_eq!(
            c.origins[2][c.col("UNIT_MULT")],
            Origin::At { line: 22, col: 46 }
        );
        // OBS_VALUE of line 29: `            <Obs TIME_PERIOD="2004" OBS_VALUE="14206.490766" ...`.
        assert_eq!(
            c.origins[2][c.col("OBS_VALUE")],
            Origin::At { line: 29, col: 48 }
        );
    }

    #[test]
    fn components_of_several_values_in_30_data() {
        let text = include_str!(
            "../../tests/fixtures/publishers/sdmx-ml/ecb_exr_ca_sdmxml30_multivalued.xml"
        );
        let c = read_default(text);
        assert_eq!(c.errors, vec![]);
        assert_eq!(c.column("OBS_STATUS"), ["A;F", "J;U;N", "A"]);
        assert_eq!(c.column("SOURCE_AGENCY"), ["4F0;4D0;CZ2"; 3]);
        assert_eq!(
            c.column("SOURCE_PUB"),
            ["First publication source;Second publication source"; 3]
        );
        // A value in several languages is read in the first it is written in.
        assert_eq!(
            c.column("TITLE"),
            ["Some English Text;Additional English Text where lang defaults to en"; 3]
        );
        assert_eq!(c.column("OBS_VALUE")[1], "1.529364705882353");
        assert_eq!(c.column("UNIT"), ["CAD"; 3]);
        let status = c.col("OBS_STATUS");
        assert_eq!(c.components[status].role, A);
        // Each value's place is its `Comp` element's: line 40, after four tabs.
        assert_eq!(c.origins[0][status], Origin::At { line: 40, col: 5 });
    }

    #[test]
    fn structure_specific_30_of_the_ecb() {
        let c = read_default(ECB_30);
        assert_eq!(c.errors, vec![]);
        assert_eq!(c.rows.len(), 116);
        let r = roles(&c);
        assert_eq!(
            r[..7],
            [
                ("FREQ", D),
                ("CURRENCY", D),
                ("CURRENCY_DENOM", D),
                ("EXR_TYPE", D),
                ("EXR_SUFFIX", D),
                ("TIME_PERIOD", T),
                ("OBS_VALUE", M)
            ]
        );
        assert!(r[7..].iter().all(|(_, role)| *role == A));
        assert_eq!(
            rows(&c)[0],
            "FREQ=A CURRENCY=CAD CURRENCY_DENOM=EUR EXR_TYPE=SP00 EXR_SUFFIX=A TIME_PERIOD=1999 \
             OBS_VALUE=1.583993822393823 TIME_FORMAT=P1Y COLLECTION=A DECIMALS=4 \
             SOURCE_AGENCY=4F0 TITLE=Canadian dollar/Euro TITLE_COMPL=ECB reference exchange \
             rate, Canadian dollar/Euro, 2:15 pm (C.E.T.) UNIT=CAD UNIT_MULT=0 OBS_STATUS=A"
        );
        let currencies: std::collections::BTreeSet<&str> =
            c.column("CURRENCY").into_iter().collect();
        // Six series: three currencies, each as the average (A) and end of period (E).
        assert_eq!(
            currencies.into_iter().collect::<Vec<_>>(),
            ["CAD", "CHF", "LTL"]
        );
    }

    const GENERIC_HEAD: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<mes:GenericData xmlns:mes="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/message" xmlns:gen="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/data/generic">
<mes:Header><mes:ID>x</mes:ID><mes:Structure structureID="S" dimensionAtObservation="TIME_PERIOD"/></mes:Header>
"#;

    #[test]
    fn other_prefixes_flat_generic_groups_and_data_set_attributes() {
        let text = format!(
            r#"{GENERIC_HEAD}<mes:DataSet structureRef="S">
<gen:Attributes><gen:Value id="UNIT_MULT" value="3"/></gen:Attributes>
<gen:Group type="SiblingGroup"><gen:GroupKey><gen:Value id="REF_AREA" value="DE"/></gen:GroupKey><gen:Attributes><gen:Value id="TITLE" value="Germany &amp; co"/></gen:Attributes></gen:Group>
<gen:Obs><gen:ObsKey><gen:Value id="REF_AREA" value="DE"/><gen:Value id="TIME_PERIOD" value="2020"/></gen:ObsKey><gen:ObsValue value="1.5"/></gen:Obs>
<gen:Obs><gen:ObsKey><gen:Value id="REF_AREA" value="FR"/><gen:Value id="TIME_PERIOD" value="2020"/></gen:ObsKey><gen:ObsValue value="NaN"/><gen:Attributes><gen:Value id="OBS_STATUS" value="M"/></gen:Attributes></gen:Obs>
<gen:Obs><gen:ObsKey><gen:Value id="REF_AREA" value="IT"/><gen:Value id="TIME_PERIOD" value="2020"/></gen:ObsKey></gen:Obs>
</mes:DataSet></mes:GenericData>"#
        );
        let c = read_default(&text);
        assert_eq!(c.errors, vec![]);
        assert_eq!(
            roles(&c),
            vec![
                ("REF_AREA", D),
                ("TIME_PERIOD", T),
                ("OBS_VALUE", M),
                ("UNIT_MULT", A),
                ("TITLE", A),
                ("OBS_STATUS", A),
            ]
        );
        assert_eq!(
            rows(&c),
            vec![
                "REF_AREA=DE TIME_PERIOD=2020 OBS_VALUE=1.5 UNIT_MULT=3 TITLE=Germany & co",
                "REF_AREA=FR TIME_PERIOD=2020 OBS_VALUE=NaN UNIT_MULT=3 OBS_STATUS=M",
                "REF_AREA=IT TIME_PERIOD=2020 UNIT_MULT=3",
            ]
        );
    }

    const SS_HEAD: &str = r#"<?xml version="1.0"?>
<m:StructureSpecificData xmlns:m="urn:m" xmlns:x="http://www.w3.org/2001/XMLSchema-instance" xmlns:s="urn:s">
<m:Header><m:Structure dimensionAtObservation="TIME_PERIOD"/></m:Header>
"#;

    fn ss(body: &str) -> String {
        format!("{SS_HEAD}{body}\n</m:StructureSpecificData>\n")
    }

    #[test]
    fn group_attributes_apply_to_the_series_of_their_key() {
        let text = ss(r#"<m:DataSet s:structureRef="S" UNIT_MEASURE="EUR">
<Group x:type="s:SiblingGroup" type="SiblingGroup" CURRENCY="USD" TITLE="US dollar"/>
<Group CURRENCY="JPY" TITLE="Yen" UNIT_MULT="0"/>
<Series FREQ="M" CURRENCY="USD"><Obs TIME_PERIOD="2020-01" OBS_VALUE="1.1"/></Series>
<Series FREQ="M" CURRENCY="JPY"><Obs TIME_PERIOD="2020-01" OBS_VALUE="120" UNIT_MULT="2"/></Series>
<Series FREQ="M" CURRENCY="GBP"><Obs TIME_PERIOD="2020-01" OBS_VALUE="0.9" TITLE="own"/></Series>
</m:DataSet>"#);
        let c = read_default(&text);
        assert_eq!(c.errors, vec![]);
        assert_eq!(
            roles(&c),
            vec![
                ("CURRENCY", D),
                ("FREQ", D),
                ("TIME_PERIOD", T),
                ("OBS_VALUE", M),
                ("UNIT_MEASURE", A),
                ("TITLE", A),
                ("UNIT_MULT", A),
            ]
        );
        assert_eq!(
            rows(&c),
            vec![
                "CURRENCY=USD FREQ=M TIME_PERIOD=2020-01 OBS_VALUE=1.1 UNIT_MEASURE=EUR \
                 TITLE=US dollar",
                "CURRENCY=JPY FREQ=M TIME_PERIOD=2020-01 OBS_VALUE=120 UNIT_MEASURE=EUR \
                 TITLE=Yen UNIT_MULT=2",
                "CURRENCY=GBP FREQ=M TIME_PERIOD=2020-01 OBS_VALUE=0.9 UNIT_MEASURE=EUR \
                 TITLE=own",
            ]
        );
    }

    #[test]
    fn flat_structure_specific_observations_and_role_overrides() {
        let text = ss(r#"<m:DataSet>
<Obs REF_AREA="DE" SECTOR="S1" TIME_PERIOD="2020" OBS_VALUE="1" NOTE="n"/>
<Obs REF_AREA="FR" SECTOR="S1" TIME_PERIOD="2020" OBS_VALUE=""/>
</m:DataSet>"#);
        let c = read_default(&text);
        assert_eq!(
            roles(&c),
            vec![
                ("REF_AREA", D),
                ("SECTOR", D),
                ("NOTE", D),
                ("TIME_PERIOD", T),
                ("OBS_VALUE", M),
            ]
        );
        let options: SdmxMlOptions =
            toml::from_str("attributes = [\"note\"]\ndimensions = [\"Obs_Status\"]")
                .expect("options");
        let c = run(&text, &options);
        assert_eq!(c.components[2], Component::new("TIME_PERIOD", T));
        assert_eq!(c.components[4], Component::new("NOTE", A));
        assert_eq!(
            rows(&c),
            vec![
                "REF_AREA=DE SECTOR=S1 TIME_PERIOD=2020 OBS_VALUE=1 NOTE=n",
                "REF_AREA=FR SECTOR=S1 TIME_PERIOD=2020",
            ]
        );
        // Another measure, as SDMX 3.0 allows.
        let text =
            ss(r#"<m:DataSet><Series A="x"><Obs TIME_PERIOD="1" PRICE="2"/></Series></m:DataSet>"#);
        let options: SdmxMlOptions = toml::from_str("measure = \"PRICE\"").expect("options");
        let c = run(&text, &options);
        assert_eq!(roles(&c), vec![("A", D), ("TIME_PERIOD", T), ("PRICE", M)]);
        assert_eq!(rows(&c), vec!["A=x TIME_PERIOD=1 PRICE=2"]);
        assert!(toml::from_str::<SdmxMlOptions>("dimension = []").is_err());
    }

    #[test]
    fn a_roles_value_from_a_structure_decides_over_the_guess() {
        let text = ss(
            r#"<m:DataSet><Series FREQ="A" ADJ="N"><Obs TIME_PERIOD="1" OBS_VALUE="2"/></Series></m:DataSet>"#,
        );
        let mut roles = Roles::default();
        roles.set("ADJ", Role::Attribute);
        let mut c = Collect::default();
        read_with(&text, &roles, &mut c);
        assert_eq!(
            c.components,
            vec![
                Component::new("FREQ", D),
                Component::new("TIME_PERIOD", T),
                Component::new("OBS_VALUE", M),
                Component::new("ADJ", A),
            ]
        );
    }

    #[test]
    fn deletes_and_missing_values() {
        let text = ss(
            r#"<m:DataSet action="Replace"><Series K="a"><Obs TIME_PERIOD="1" OBS_VALUE="NaN"/><Obs TIME_PERIOD="2"/></Series></m:DataSet>
<m:DataSet s:action="Delete"><Series K="a"><Obs TIME_PERIOD="3"/></Series><Series K="b"/></m:DataSet>
<m:DataSet action="Sideways"><Series K="c"><Obs TIME_PERIOD="4" OBS_VALUE="1"/></Series></m:DataSet>"#,
        );
        let c = read_default(&text);
        assert_eq!(
            rows(&c),
            vec![
                "K=a TIME_PERIOD=1 OBS_VALUE=NaN",
                "K=a TIME_PERIOD=2",
                "K=c TIME_PERIOD=4 OBS_VALUE=1"
            ]
        );
        assert_eq!(c.deleted, vec![vec!["a", "3", ""]]);
        assert_eq!(
            c.error_lines(),
            vec![
                "5:75: series without observations in a Delete data set, expected the \
                 observations to delete (deleting a whole series is not supported)",
                "6:20: unknown action `Sideways`, expected Append, Replace, Merge, Information \
                 or Delete",
            ]
        );
        // The header may say it for every data set that does not say its own.
        let text = text.replace(
            "</m:Header>",
            "<m:DataSetAction>Delete</m:DataSetAction></m:Header>",
        );
        let c = read_default(&text.replace("action=\"Sideways\"", ""));
        assert_eq!(c.rows.len(), 2, "the Replace data set");
        assert_eq!(c.deleted, vec![vec!["a", "3", ""], vec!["c", "4", "1"]]);
    }

    fn errors(text: &str) -> Vec<String> {
        let started = Instant::now();
        let c = read_default(text);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        c.error_lines()
    }

    #[test]
    fn hostile_documents_give_one_positioned_error_at_once() {
        let laughs = format!(
            "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n <!ENTITY lol \"lol\">\n{}]>\n<lolz>&lol9;</lolz>\n",
            (1..10)
                .map(|i| format!(
                    " <!ENTITY lol{i} \"{}\">\n",
                    format!("&lol{};", i - 1).repeat(10)
                ))
                .collect::<String>()
        );
        let doctype = "a DOCTYPE declaration, expected none: DTDs and the entities they declare \
                       are refused";
        assert_eq!(errors(&laughs), vec![format!("2:1: {doctype}")]);
        let external = "<?xml version=\"1.0\"?>\n<!DOCTYPE m [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>\n<m:GenericData xmlns:m=\"u\">&x;</m:GenericData>";
        assert_eq!(errors(external), vec![format!("2:1: {doctype}")]);
        // An entity used without a declaration is refused too.
        assert_eq!(
            errors("<m>\n  <a>&x;</a></m>"),
            vec![
                "2:6: unknown entity `&x`, expected one of the five predefined entities (&lt; \
                 &gt; &amp; &apos; &quot;) or a character reference"
            ]
        );
        let deep = format!("<a>{}", "<a>".repeat(100_000));
        assert_eq!(
            errors(&deep),
            vec![
                "1:193: elements nested deeper than 64 levels, expected an SDMX-ML message (a \
                 few levels)"
            ]
        );
        let cut = &BIS_SS[..BIS_SS.find("OBS_VALUE=\"14206").unwrap()];
        let c = read_default(cut);
        assert_eq!(c.rows.len(), 2, "the observations before the cut are read");
        assert_eq!(
            c.error_lines(),
            vec!["29:13: malformed XML: syntax error: tag not closed: `>` not found before end of input, expected a well-formed document"]
        );
        let cut = &BIS_SS[..BIS_SS.find("</message:DataSet>").unwrap()];
        assert_eq!(
            errors(cut),
            vec![format!(
                "{}:5: truncated document: element `message:DataSet` opened at 22:5 is not \
                 closed, expected the whole message",
                cut.lines().count()
            )]
        );
        let big = ss(&format!(
            "<m:DataSet><Series K=\"{}\"><Obs TIME_PERIOD=\"1\" OBS_VALUE=\"1\"/></Series><Series K=\"b\"><Obs TIME_PERIOD=\"1\" OBS_VALUE=\"2\"/></Series></m:DataSet>",
            "k".repeat(MAX_VALUE_BYTES + 1)
        ));
        let c = read_default(&big);
        assert_eq!(
            c.error_lines(),
            vec!["4:23: attribute value of 65537 bytes, expected at most 65536"]
        );
        assert_eq!(rows(&c), vec!["K=b TIME_PERIOD=1 OBS_VALUE=2"]);
    }

    #[test]
    fn messages_that_are_not_data() {
        assert_eq!(
            errors("  \n"),
            vec!["empty file, expected an SDMX-ML data message"]
        );
        assert_eq!(
            errors("<?xml version=\"1.0\"?>\n<mes:Structure xmlns:mes=\"u\"><mes:Header/></mes:Structure>"),
            vec![
                "1:1: `Structure` message, expected an SDMX-ML data message (GenericData or \
                 StructureSpecificData)"
            ]
        );
        assert_eq!(
            errors("<mes:GenericData xmlns:mes=\"u\"><mes:Header/></mes:GenericData>"),
            vec!["1:1: no data set, expected a `DataSet` element"]
        );
        assert_eq!(
            errors("DATAFLOW,TIME_PERIOD,OBS_VALUE\n"),
            vec!["1:1: no element, expected an SDMX-ML data message"]
        );
        assert_eq!(
            errors("<a><b></a>"),
            vec!["1:7: malformed XML: ill-formed document: expected `</b>`, but `</a>` was found, expected a well-formed document"]
        );
    }

    #[test]
    fn bad_values_are_reported_and_their_rows_left_out() {
        let text = ss(
            r#"<m:DataSet><Series K="a&#0;"><Obs TIME_PERIOD="1" OBS_VALUE="1"/></Series>
<Series K="b"><Obs TIME_PERIOD="1" OBS_VALUE="&bogus;"/><Obs TIME_PERIOD="2" OBS_VALUE="2"/></Series></m:DataSet>"#,
        );
        let c = read_default(&text);
        assert_eq!(rows(&c), vec!["K=b TIME_PERIOD=2 OBS_VALUE=2"]);
        assert_eq!(c.error_lines().len(), 2, "{:?}", c.error_lines());
        assert!(c.error_lines()[0].starts_with("4:23: unreadable attribute value"));
        assert!(c.error_lines()[1].starts_with("5:47: unreadable attribute value"));
    }

    #[test]
    fn no_panic_on_truncations_and_byte_flips() {
        for text in [ECB_GENERIC, BIS_SS, ECB_30] {
            let bytes = text.as_bytes();
            for cut in (0..bytes.len()).step_by(bytes.len() / 120 + 1) {
                let t = String::from_utf8_lossy(&bytes[..cut]);
                let c = read_default(&t);
                if cut < bytes.len() - 30 {
                    assert!(!c.errors.is_empty(), "cut at {cut} not reported");
                }
            }
            let mut seed = 0x2545_f491_4f6c_dd1du64;
            for _ in 0..300 {
                let mut b = bytes[..bytes.len().min(6000)].to_vec();
                for _ in 0..3 {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let i = (seed % b.len() as u64) as usize;
                    b[i] = [
                        b'<',
                        b'>',
                        b'"',
                        b'&',
                        b'/',
                        b'=',
                        b' ',
                        b'\n',
                        (seed >> 32) as u8,
                    ][(seed >> 40) as usize % 9];
                }
                read_default(&String::from_utf8_lossy(&b));
            }
        }
    }

    /// Counts rows without keeping them, as the mapping stage would.
    #[derive(Default)]
    struct Count {
        rows: usize,
        sum: usize,
        value: usize,
        errors: Vec<(Origin, String)>,
    }

    impl Sink for Count {
        fn components(&mut self, components: &[Component], _: &dyn Fn(usize) -> Origin) -> bool {
            self.value = components.iter().position(|c| c.role == M).unwrap();
            true
        }
        fn row(&mut self, fields: &[&str], origin: &dyn Fn(usize) -> Origin) {
            self.rows += 1;
            self.sum += fields[self.value].len();
            let _ = origin(ROW);
        }
        fn name(&mut self, _: usize, _: &str, _: &str, _: &str) {}
        fn error(&mut self, origin: Origin, message: String) {
            self.errors.push((origin, message));
        }
    }

    #[test]
    fn reads_a_generated_200000_observation_body_on_one_line() {
        // No line breaks: the place of every row is still found without rescanning.
        let mut text = String::from(SS_HEAD.trim_end());
        text.push_str("<m:DataSet>");
        let mut chars = 0;
        for s in 0..2000 {
            text.push_str(&format!("<Series A=\"a{s}\" B=\"b\">"));
            for o in 0..100 {
                let v = format!("{s}.{o}");
                chars += v.len();
                text.push_str(&format!(
                    "<Obs TIME_PERIOD=\"{}\" OBS_VALUE=\"{v}\" OBS_STATUS=\"A\"/>",
                    1900 + o
                ));
            }
            text.push_str("</Series>");
        }
        text.push_str("</m:DataSet></m:StructureSpecificData>");
        let started = Instant::now();
        let mut sink = Count::default();
        read(&text, &SdmxMlOptions::default(), &mut sink);
        assert_eq!(sink.errors, vec![]);
        assert_eq!((sink.rows, sink.sum), (200_000, chars));
        assert!(started.elapsed() < Duration::from_secs(20));
    }
}
