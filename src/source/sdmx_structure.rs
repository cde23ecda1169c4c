//! SDMX-ML structure messages, 2.1 and 3.0: the data structure definition (DSD: dimensions in
//! order, the time dimension, attributes and where they attach, the measures), codelists
//! (each code's names in every language) and concepts (their names, and the codelist a
//! concept's core representation names). A data message leaves all of this out; with it, a
//! reader knows which component is a dimension without guessing, and codes get display names.
//!
//! Read as a stream of XML events by the walk of [`super::sdmx_ml`], with its rules: no DTD, no
//! entity but the predefined ones, bounded depth and sizes, errors at line:column. Elements are
//! matched on local names, whatever their prefix. 2.1 refers to a codelist or a concept by a
//! `Ref` element's attributes, 3.0 by a URN written as the element's text; both are read.

use std::collections::HashMap;

use quick_xml::XmlVersion;

use super::sdmx_csv::SdmxCsvOptions;
use super::sdmx_ml::{self, origin_at, Element, Handler, Kinds, Roles};
use super::sdmx_ml::{SdmxMlOptions, MAX_COMPONENTS};
use super::{strip_bom, Component, Origin, Role, Sink};

/// Longest display name kept, in bytes: longer ones are a problem of the document.
pub const MAX_NAME_BYTES: usize = sdmx_ml::MAX_VALUE_BYTES;

/// Names by language (`xml:lang`, "" when not given), in document order.
pub type Names = Vec<(String, String)>;

/// What a structure message gives.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Structure {
    /// The first data structure definition of the message, if any.
    pub dsd: Option<Dsd>,
    /// Codelists by id.
    pub codelists: HashMap<String, Codelist>,
    /// Concepts by id (the first scheme that defines an id wins).
    pub concepts: HashMap<String, Concept>,
}

/// A data structure definition.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dsd {
    pub id: String,
    /// Dimensions in their order, the time dimension, then attributes, then measures.
    pub components: Vec<DsdComponent>,
}

/// One component of a DSD.
#[derive(Debug, Clone, PartialEq)]
pub struct DsdComponent {
    pub id: String,
    pub role: Role,
    /// The concept it stands for (`ConceptIdentity`).
    pub concept: Option<String>,
    /// The codelist of its values (`LocalRepresentation/Enumeration`), when it names one.
    pub codelist: Option<String>,
    /// Where an attribute attaches; None for other components.
    pub attachment: Option<Attachment>,
    /// Whether it may take several values (3.0 `maxOccurs` above 1).
    pub multi_valued: bool,
}

/// The level an attribute's values are given at (`AttributeRelationship`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attachment {
    /// The whole data set (`None`, 3.0 `Dataflow`).
    DataSet,
    /// Series or part of their key: the dimensions it depends on.
    Dimensions(Vec<String>),
    /// A group of series.
    Group(String),
    /// Each observation (2.1 `PrimaryMeasure`, 3.0 `Observation` or `Measure`).
    Observation,
}

/// A codelist: its codes, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Codelist {
    pub id: String,
    pub names: Names,
    pub codes: Vec<Code>,
}

/// A code and its names.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Code {
    pub id: String,
    pub names: Names,
}

/// A concept: its names, and the codelist its core representation names.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Concept {
    pub names: Names,
    pub codelist: Option<String>,
}

impl Structure {
    /// The component of the DSD of this id (case-insensitive).
    pub fn component(&self, id: &str) -> Option<&DsdComponent> {
        let dsd = self.dsd.as_ref()?;
        dsd.components
            .iter()
            .find(|c| c.id.eq_ignore_ascii_case(id))
    }

    /// The codelist of component `id`: its own, or its concept's.
    pub fn codelist_of(&self, id: &str) -> Option<&Codelist> {
        let c = self.component(id);
        let own = c.and_then(|c| c.codelist.as_deref());
        let concept = c.and_then(|c| c.concept.as_deref()).unwrap_or(id);
        let via_concept = || self.concepts.get(concept)?.codelist.as_deref();
        self.codelists.get(own.or_else(via_concept)?)
    }

    /// The names of component `id`'s concept (its `ConceptIdentity`, else the concept of its
    /// id); none when the message has no such concept.
    pub fn concept_names(&self, id: &str) -> &[(String, String)] {
        let concept = self
            .component(id)
            .and_then(|c| c.concept.as_deref())
            .unwrap_or(id);
        self.concepts.get(concept).map_or(&[], |c| &c.names)
    }

    /// SDMX-CSV options with the DSD's dimensions and attributes added to those the options
    /// name (the options win).
    pub fn sdmx_csv_options(&self, options: &SdmxCsvOptions) -> SdmxCsvOptions {
        let mut out = options.clone();
        let named = |list: &[String], id: &str| list.iter().any(|x| x.eq_ignore_ascii_case(id));
        for c in self.dsd.iter().flat_map(|d| &d.components) {
            let (own, other) = match c.role {
                Role::Dimension => (&mut out.dimensions, &options.attributes),
                Role::Attribute => (&mut out.attributes, &options.dimensions),
                Role::Time | Role::Measure => continue,
            };
            if !named(other, &c.id) && !named(own, &c.id) {
                own.push(c.id.clone());
            }
        }
        out
    }

    /// The roles the DSD gives its components (empty without a DSD); its measure, when it
    /// has one only, is the value whatever its id.
    pub fn roles(&self) -> Roles {
        let mut roles = Roles::default();
        let components = || self.dsd.iter().flat_map(|d| &d.components);
        for c in components() {
            roles.set(&c.id, c.role);
        }
        let mut measures = components().filter(|c| c.role == Role::Measure);
        if let (Some(m), None) = (measures.next(), measures.next()) {
            roles.apply(&SdmxMlOptions {
                measure: Some(m.id.clone()),
                ..SdmxMlOptions::default()
            });
        }
        roles
    }
}

/// Parses an SDMX-ML structure message; every problem with its place when it is not one.
pub fn parse(text: &str) -> Result<Structure, Vec<(Origin, String)>> {
    let text = strip_bom(text);
    let mut r = Reading::default();
    if let Err(fatal) = sdmx_ml::walk(text, &mut r) {
        r.problems.push((fatal.at, fatal.message));
    }
    if r.problems.is_empty() {
        match &r.root {
            Some(root) if root != "Structure" => r.problems.push((
                0,
                format!("`{root}` message, expected an SDMX-ML structure message (Structure)"),
            )),
            _ if r.out.dsd.is_none() && r.out.codelists.is_empty() => r.problems.push((
                0,
                "no data structure and no codelist, expected a `DataStructure` or `Codelist` \
                 element"
                    .into(),
            )),
            _ => {}
        }
    }
    if r.problems.is_empty() {
        return Ok(r.out);
    }
    r.problems.sort_by_key(|(at, _)| *at);
    Err(r
        .problems
        .into_iter()
        .map(|(at, m)| (origin_at(text, at), m))
        .collect())
}

/// The elements of a structure message the reading tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum S {
    Document,
    Message,
    Structures,
    Codelists,
    Codelist,
    Code,
    Concepts,
    ConceptScheme,
    Concept,
    CoreRepresentation,
    DataStructures,
    DataStructure,
    DsdComponents,
    /// `DimensionList`, `AttributeList`, `MeasureList`.
    ComponentList,
    /// A `Dimension`, `TimeDimension`, `Attribute`, `PrimaryMeasure` or `Measure` of a list.
    Component(Role),
    ConceptIdentity,
    LocalRepresentation,
    Enumeration,
    AttributeRelationship,
    /// What an `AttributeRelationship` holds: the level it names.
    Relation(Level),
    /// A `Name` of a codelist, code or concept.
    Name,
    /// A `Ref` or `URN` inside a reference (an identity, an enumeration, a relation).
    Ref,
    Other,
}

/// The levels an `AttributeRelationship` child names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    DataSet,
    Dimension,
    Group,
    Observation,
}

impl Kinds for S {
    const DOCUMENT: S = S::Document;
    const EXPECTED: &'static str = "an SDMX-ML structure message";

    fn classify(parent: S, local: &[u8]) -> S {
        use S::*;
        let reference = matches!(
            parent,
            ConceptIdentity | Enumeration | Relation(Level::Dimension | Level::Group)
        );
        match (parent, local) {
            (Document, _) => Message,
            (Message, b"Structures") => Structures,
            (Structures, b"Codelists") => Codelists,
            (Codelists, b"Codelist") => Codelist,
            (Codelist, b"Code") => Code,
            (Structures, b"Concepts") => Concepts,
            (Concepts, b"ConceptScheme") => ConceptScheme,
            (ConceptScheme, b"Concept") => Concept,
            (Concept, b"CoreRepresentation") => CoreRepresentation,
            (CoreRepresentation | LocalRepresentation, b"Enumeration") => Enumeration,
            (Structures, b"DataStructures") => DataStructures,
            (DataStructures, b"DataStructure") => DataStructure,
            (DataStructure, b"DataStructureComponents") => DsdComponents,
            (DsdComponents, b"DimensionList" | b"AttributeList" | b"MeasureList") => ComponentList,
            (ComponentList, b"Dimension") => Component(Role::Dimension),
            (ComponentList, b"TimeDimension") => Component(Role::Time),
            (ComponentList, b"Attribute") => Component(Role::Attribute),
            (ComponentList, b"PrimaryMeasure" | b"Measure") => Component(Role::Measure),
            (Component(_), b"ConceptIdentity") => ConceptIdentity,
            (Component(_), b"LocalRepresentation") => LocalRepresentation,
            (Component(Role::Attribute), b"AttributeRelationship") => AttributeRelationship,
            (AttributeRelationship, b"None" | b"Dataflow") => Relation(Level::DataSet),
            (AttributeRelationship, b"Dimension") => Relation(Level::Dimension),
            (AttributeRelationship, b"AttachmentGroup" | b"Group") => Relation(Level::Group),
            (AttributeRelationship, b"PrimaryMeasure" | b"Observation" | b"Measure") => {
                Relation(Level::Observation)
            }
            (Codelist | Code | Concept, b"Name") => Name,
            (_, b"Ref" | b"URN") if reference => Ref,
            _ => Other,
        }
    }

    fn keeps_text(self) -> bool {
        // 3.0 writes references as text: a URN, or a dimension's id.
        matches!(
            self,
            S::Name
                | S::Ref
                | S::ConceptIdentity
                | S::Enumeration
                | S::Relation(Level::Dimension | Level::Group)
        )
    }
}

/// The reading of one structure message.
#[derive(Default)]
struct Reading {
    out: Structure,
    root: Option<String>,
    /// The codelist, code and concept being read.
    codelist: Option<Codelist>,
    code: Option<Code>,
    concept: Option<(String, Concept)>,
    /// The DSD and component being read (only the first DSD is kept).
    dsd: Option<Dsd>,
    component: Option<DsdComponent>,
    /// The `xml:lang` of the name being read, and its text so far.
    name: Option<(String, String)>,
    /// The text of the reference being read (3.0 URN, an id).
    reference: String,
    /// The element a `Ref` or `URN` being read is in.
    ref_in: Option<S>,
    /// Where the name or reference being read starts, for its problems.
    text_at: usize,
    problems: Vec<(usize, String)>,
}

/// The value of attribute `name` (local name) of element `e`, unescaped; None when it is
/// longer than any id or language code ([`sdmx_ml::MAX_VALUE_BYTES`]).
fn attribute(e: &Element, name: &[u8]) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == name)
        .filter(|a| a.value.len() <= sdmx_ml::MAX_VALUE_BYTES)
        .map(|a| match a.normalized_value(XmlVersion::Implicit1_0) {
            Ok(v) => v.into_owned(),
            Err(_) => String::from_utf8_lossy(&a.value).into_owned(),
        })
}

/// The id of the item or maintainable a URN names: `…Codelist=ECB:CL_FREQ(1.0)` is `CL_FREQ`,
/// `…Concept=ECB:ECB_CONCEPTS(1.0).FREQ` is `FREQ`; text without `=` is an id already.
fn urn_id(urn: &str) -> &str {
    let urn = urn.trim();
    let Some((_, after)) = urn.split_once('=') else {
        return urn;
    };
    if let Some((_, item)) = after.rsplit_once(").") {
        return item;
    }
    let id = after.split_once(':').map_or(after, |(_, id)| id);
    id.split_once('(').map_or(id, |(id, _)| id)
}

impl Reading {
    /// Takes a reference (a 2.1 `Ref`'s id, or 3.0 text) for the element it is in.
    fn referred(&mut self, to: S, id: &str) {
        let id = urn_id(id).to_string();
        if id.is_empty() {
            return;
        }
        match (to, self.component.as_mut(), self.concept.as_mut()) {
            (S::ConceptIdentity, Some(c), _) => c.concept = Some(id),
            (S::Enumeration, Some(c), _) => c.codelist = Some(id),
            (S::Enumeration, None, Some((_, concept))) => concept.codelist = Some(id),
            (S::Relation(Level::Dimension), Some(c), _) => {
                match c
                    .attachment
                    .get_or_insert(Attachment::Dimensions(Vec::new()))
                {
                    Attachment::Dimensions(d) => d.push(id),
                    other => *other = Attachment::Dimensions(vec![id]),
                }
            }
            (S::Relation(Level::Group), Some(c), _) => c.attachment = Some(Attachment::Group(id)),
            _ => {}
        }
    }

    fn open_component(&mut self, role: Role, e: &Element) {
        let Some(id) = attribute(e, b"id") else {
            self.problems.push((
                e.at,
                "a component without `id`, expected its id as the `id` attribute (at most 64 KiB)"
                    .into(),
            ));
            return;
        };
        self.component = Some(DsdComponent {
            id,
            role,
            concept: None,
            codelist: None,
            attachment: None,
            multi_valued: false,
        });
    }

    fn close_component(&mut self) {
        let (Some(c), Some(dsd)) = (self.component.take(), self.dsd.as_mut()) else {
            return;
        };
        if dsd.components.len() < MAX_COMPONENTS {
            dsd.components.push(c);
        }
    }

    fn close_name(&mut self) {
        let Some((lang, name)) = self.name.take() else {
            return;
        };
        if name.len() > MAX_NAME_BYTES {
            self.problems.push((
                self.text_at,
                format!(
                    "a name of {} bytes, expected at most {MAX_NAME_BYTES}",
                    name.len()
                ),
            ));
            return;
        }
        let name = name.trim().to_string();
        let names = if let Some(code) = self.code.as_mut() {
            &mut code.names
        } else if let Some(cl) = self.codelist.as_mut() {
            &mut cl.names
        } else if let Some((_, concept)) = self.concept.as_mut() {
            &mut concept.names
        } else {
            return;
        };
        names.push((lang, name));
    }

    /// An item (codelist, code, concept, DSD) without an id is reported and left out.
    fn id_of(&mut self, e: &Element, what: &str) -> Option<String> {
        let id = attribute(e, b"id");
        if id.is_none() {
            self.problems.push((
                e.at,
                format!(
                    "a {what} without `id`, expected its id as the `id` attribute (at most \
                     64 KiB)"
                ),
            ));
        }
        id
    }
}

impl<'a> Handler<'a, S> for Reading {
    fn open(&mut self, tag: S, parent: S, e: &Element<'a>) {
        match tag {
            S::Message => self.root = Some(String::from_utf8_lossy(e.local).into_owned()),
            S::Codelist => {
                self.codelist = self.id_of(e, "codelist").map(|id| Codelist {
                    id,
                    ..Codelist::default()
                });
            }
            S::Code => {
                self.code = self.id_of(e, "code").map(|id| Code {
                    id,
                    ..Code::default()
                });
            }
            S::Concept => {
                self.concept = self.id_of(e, "concept").map(|id| (id, Concept::default()));
            }
            S::DataStructure => {
                let id = self.id_of(e, "data structure").unwrap_or_default();
                self.dsd = Some(Dsd {
                    id,
                    components: Vec::new(),
                });
            }
            S::Component(role) => self.open_component(role, e),
            S::LocalRepresentation => {
                let max = attribute(e, b"maxOccurs");
                if let (Some(c), Some(max)) = (self.component.as_mut(), max) {
                    c.multi_valued = max == "unbounded" || max.parse::<u32>().is_ok_and(|n| n > 1);
                }
            }
            S::Relation(level) => {
                let fixed = match level {
                    Level::DataSet => Some(Attachment::DataSet),
                    Level::Observation => Some(Attachment::Observation),
                    Level::Dimension | Level::Group => None,
                };
                if let (Some(c), Some(a)) = (self.component.as_mut(), fixed) {
                    c.attachment = Some(a);
                }
                self.reference.clear();
                self.text_at = e.at;
            }
            S::ConceptIdentity | S::Enumeration => {
                self.reference.clear();
                self.text_at = e.at;
            }
            S::Ref => {
                if let Some(id) = attribute(e, b"id") {
                    self.referred(parent, &id);
                }
                self.ref_in = Some(parent);
                self.reference.clear();
            }
            S::Name => {
                let lang = attribute(e, b"lang").unwrap_or_default();
                self.name = Some((lang, String::new()));
                self.text_at = e.at;
            }
            _ => {}
        }
    }

    fn close(&mut self, tag: S) {
        match tag {
            S::Codelist => {
                if let Some(cl) = self.codelist.take() {
                    self.out.codelists.entry(cl.id.clone()).or_insert(cl);
                }
            }
            S::Code => {
                if let (Some(code), Some(cl)) = (self.code.take(), self.codelist.as_mut()) {
                    cl.codes.push(code);
                }
            }
            S::Concept => {
                if let Some((id, c)) = self.concept.take() {
                    self.out.concepts.entry(id).or_insert(c);
                }
            }
            S::DataStructure => {
                let dsd = self.dsd.take();
                if self.out.dsd.is_none() {
                    self.out.dsd = dsd;
                }
            }
            S::Component(_) => self.close_component(),
            S::Name => self.close_name(),
            S::ConceptIdentity | S::Enumeration | S::Relation(_) | S::Ref => {
                // 3.0 text, or a 2.1 `URN` element's; a 2.1 `Ref` was taken when it opened.
                let text = std::mem::take(&mut self.reference);
                let to = match tag {
                    S::Ref => self.ref_in.take(),
                    _ => Some(tag),
                };
                if let (Some(to), false) = (to, text.trim().is_empty()) {
                    self.referred(to, &text);
                }
            }
            _ => {}
        }
    }

    fn text(&mut self, tag: S, text: &str) {
        if tag == S::Name {
            if let Some((_, name)) = self.name.as_mut() {
                // Bounded: the walk bounds each piece, this the sum.
                if name.len() <= MAX_NAME_BYTES {
                    name.push_str(text);
                }
            }
        } else if self.reference.len() <= MAX_NAME_BYTES {
            self.reference.push_str(text);
        }
    }

    fn problem(&mut self, at: usize, message: String) {
        self.problems.push((at, message));
    }
}

/// A [`Sink`] that gives the codes of each component the names its codelist has in the
/// structure, as soon as the reader's components are known, then passes everything on.
pub struct Named<'a> {
    pub inner: &'a mut dyn Sink,
    pub structure: &'a Structure,
}

impl Sink for Named<'_> {
    fn components(&mut self, components: &[Component], origin: &dyn Fn(usize) -> Origin) -> bool {
        if !self.inner.components(components, origin) {
            return false;
        }
        for (i, c) in components.iter().enumerate() {
            for (lang, name) in self.structure.concept_names(&c.id) {
                self.inner.component_name(i, lang, name);
            }
            let Some(list) = self.structure.codelist_of(&c.id) else {
                continue;
            };
            for code in &list.codes {
                for (lang, name) in &code.names {
                    self.inner.name(i, &code.id, lang, name);
                }
            }
        }
        true
    }

    fn row(&mut self, fields: &[&str], origin: &dyn Fn(usize) -> Origin) {
        self.inner.row(fields, origin);
    }

    fn delete(&mut self, fields: &[&str], origin: &dyn Fn(usize) -> Origin) {
        self.inner.delete(fields, origin);
    }

    fn name(&mut self, component: usize, code: &str, lang: &str, name: &str) {
        self.inner.name(component, code, lang, name);
    }

    fn name_at(
        &mut self,
        component: usize,
        code: &str,
        lang: &str,
        name: &str,
        origin: &dyn Fn() -> Origin,
    ) {
        self.inner.name_at(component, code, lang, name, origin);
    }

    fn component_name(&mut self, component: usize, lang: &str, name: &str) {
        self.inner.component_name(component, lang, name);
    }

    fn error(&mut self, origin: Origin, message: String) {
        self.inner.error(origin, message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Collect;
    use std::time::{Duration, Instant};

    /// A problem list as `origin: message` lines, for a diagnostic naming the structure file.
    fn describe(problems: &[(Origin, String)]) -> Vec<String> {
        problems
            .iter()
            .map(|(o, m)| match o {
                Origin::File => m.clone(),
                o => format!("{o}: {m}"),
            })
            .collect()
    }

    const ECB: &str = include_str!(
        "../../tests/fixtures/publishers/sdmx-ml/ecb_exr1_structure_full_with_codelists.xml"
    );
    const DSD_30: &str =
        include_str!("../../tests/fixtures/publishers/sdmx-ml/ecb_exr_ca_sdmxml30_dsd.xml");
    const CODELISTS_30: &str =
        include_str!("../../tests/fixtures/publishers/sdmx-ml/sdmx_cl_age_sdmxml30_codelists.xml");

    fn ids(s: &Structure, role: Role) -> Vec<&str> {
        let dsd = s.dsd.as_ref().expect("a DSD");
        dsd.components
            .iter()
            .filter(|c| c.role == role)
            .map(|c| c.id.as_str())
            .collect()
    }

    fn name<'s>(s: &'s Structure, list: &str, code: &str) -> Vec<(&'s str, &'s str)> {
        let cl = &s.codelists[list];
        let code = cl.codes.iter().find(|c| c.id == code).expect("the code");
        code.names
            .iter()
            .map(|(l, n)| (l.as_str(), n.as_str()))
            .collect()
    }

    #[test]
    fn the_ecb_exchange_rate_structure() {
        let s = parse(ECB).expect("parses");
        let dsd = s.dsd.as_ref().unwrap();
        assert_eq!(dsd.id, "ECB_EXR1");
        assert_eq!(
            ids(&s, Role::Dimension),
            [
                "FREQ",
                "CURRENCY",
                "CURRENCY_DENOM",
                "EXR_TYPE",
                "EXR_SUFFIX"
            ]
        );
        assert_eq!(ids(&s, Role::Time), ["TIME_PERIOD"]);
        assert_eq!(ids(&s, Role::Measure), ["OBS_VALUE"]);
        assert_eq!(
            ids(&s, Role::Attribute),
            [
                "TIME_FORMAT",
                "OBS_STATUS",
                "OBS_CONF",
                "OBS_PRE_BREAK",
                "OBS_COM",
                "BREAKS",
                "COLLECTION",
                "COMPILING_ORG",
                "DISS_ORG",
                "DOM_SER_IDS",
                "PUBL_ECB",
                "PUBL_MU",
                "PUBL_PUBLIC",
                "UNIT_INDEX_BASE",
                "COMPILATION",
                "COVERAGE",
                "DECIMALS",
                "NAT_TITLE",
                "SOURCE_AGENCY",
                "SOURCE_PUB",
                "TITLE",
                "TITLE_COMPL",
                "UNIT",
                "UNIT_MULT",
            ]
        );
        let c = s.component("obs_status").unwrap();
        assert_eq!(c.attachment, Some(Attachment::Observation));
        assert_eq!(c.codelist.as_deref(), Some("CL_OBS_STATUS"));
        let series = Attachment::Dimensions(
            [
                "FREQ",
                "CURRENCY",
                "CURRENCY_DENOM",
                "EXR_TYPE",
                "EXR_SUFFIX",
            ]
            .map(String::from)
            .to_vec(),
        );
        assert_eq!(s.component("TIME_FORMAT").unwrap().attachment, Some(series));
        assert_eq!(
            s.component("CURRENCY").unwrap().concept.as_deref(),
            Some("CURRENCY")
        );
        assert_eq!(s.codelists.len(), 11);
        assert_eq!(name(&s, "CL_CURRENCY", "USD"), [("en", "US dollar")]);
        assert_eq!(name(&s, "CL_FREQ", "M"), [("en", "Monthly")]);
        assert_eq!(name(&s, "CL_EXR_TYPE", "SP00"), [("en", "Spot")]);
        // CURRENCY_DENOM shares CURRENCY's codelist.
        let denom = s.codelist_of("CURRENCY_DENOM").unwrap();
        assert_eq!(denom.id, "CL_CURRENCY");
        assert_eq!(
            s.concepts["CURRENCY"].names,
            [("en".to_string(), "Currency".to_string())]
        );
        let roles = s.roles();
        let mut sink = Collect::default();
        sdmx_ml::read_with(GENERIC_SHORT, &roles, &mut sink);
        assert_eq!(sink.errors, vec![]);
    }

    /// A data message whose series key has a component the usual guess calls an attribute.
    const GENERIC_SHORT: &str = r#"<m:GenericData xmlns:m="m" xmlns:g="g"><m:DataSet>
<g:Series><g:SeriesKey><g:Value id="FREQ" value="M"/></g:SeriesKey>
<g:Obs><g:ObsDimension value="2020-01"/><g:ObsValue value="1"/></g:Obs></g:Series>
</m:DataSet></m:GenericData>"#;

    #[test]
    fn a_dsd_decides_the_roles_of_structure_specific_data() {
        // Without a DSD, an XML attribute of `Series` not known as an attribute is a
        // dimension; the DSD says `PUBL_ECB` is an attribute.
        let data = r#"<m:StructureSpecificData xmlns:m="m"><m:DataSet>
<Series FREQ="M" CURRENCY="USD" COLLECTION="A" PUBL_ECB="b"><Obs TIME_PERIOD="2020-01" OBS_VALUE="1"/></Series>
</m:DataSet></m:StructureSpecificData>"#;
        let mut guessed = Collect::default();
        sdmx_ml::read(data, &Default::default(), &mut guessed);
        assert!(guessed.ids().contains(&("PUBL_ECB", Role::Dimension)));
        let s = parse(ECB).unwrap();
        let mut told = Collect::default();
        sdmx_ml::read_with(data, &s.roles(), &mut told);
        assert_eq!(
            told.ids(),
            [
                ("FREQ", Role::Dimension),
                ("CURRENCY", Role::Dimension),
                ("TIME_PERIOD", Role::Time),
                ("OBS_VALUE", Role::Measure),
                ("COLLECTION", Role::Attribute),
                ("PUBL_ECB", Role::Attribute),
            ]
        );
    }

    #[test]
    fn the_one_measure_of_a_dsd_is_the_value_whatever_its_id() {
        let dsd = ECB.replace("id=\"OBS_VALUE\"", "id=\"RATE\"");
        let s = parse(&dsd).unwrap();
        assert_eq!(ids(&s, Role::Measure), ["RATE"]);
        let data = r#"<m:StructureSpecificData xmlns:m="m"><m:DataSet>
<Series FREQ="M"><Obs TIME_PERIOD="2020-01" RATE="1.5"/></Series>
</m:DataSet></m:StructureSpecificData>"#;
        let mut sink = Collect::default();
        sdmx_ml::read_with(data, &s.roles(), &mut sink);
        assert_eq!(sink.errors, vec![]);
        assert_eq!(
            sink.ids(),
            [
                ("FREQ", Role::Dimension),
                ("TIME_PERIOD", Role::Time),
                ("RATE", Role::Measure)
            ]
        );
        assert_eq!(sink.column("RATE"), ["1.5"]);
    }

    #[test]
    fn names_reach_the_sink_for_the_components_read() {
        let s = parse(ECB).unwrap();
        let mut sink = Collect::default();
        let mut named = Named {
            inner: &mut sink,
            structure: &s,
        };
        sdmx_ml::read_with(GENERIC_SHORT, &s.roles(), &mut named);
        let freq = sink.col("FREQ");
        assert!(sink
            .names
            .contains(&(freq, "M".into(), "en".into(), "Monthly".into())));
        // Only FREQ has a codelist among the components read.
        assert!(sink.names.iter().all(|(c, ..)| *c == freq));
        // Components are named by their concepts.
        assert!(sink
            .component_names
            .contains(&(freq, "en".into(), "Frequency".into())));
    }

    #[test]
    fn a_dsd_decides_the_roles_of_sdmx_csv_columns_and_names_their_codes() {
        use crate::source::{Content, Options};
        // Without a DSD, a column after TIME_PERIOD is an attribute.
        let text = "DATAFLOW,FREQ,TIME_PERIOD,OBS_VALUE,CURRENCY,PUBL_ECB\n\
                    ECB:EXR(1.0),M,2020-01,1.1,USD,x\n";
        let options = Options::SdmxCsv(SdmxCsvOptions::default());
        let mut guessed = Collect::default();
        options.read(Content::Text(text), &mut guessed);
        assert!(guessed.ids().contains(&("CURRENCY", Role::Attribute)));
        let s = parse(ECB).unwrap();
        let mut told = Collect::default();
        options.read_with_structure(Content::Text(text), &s, &mut told);
        assert_eq!(told.errors, vec![]);
        let currency = told.col("CURRENCY");
        assert_eq!(told.components[currency].role, Role::Dimension);
        assert_eq!(told.components[told.col("PUBL_ECB")].role, Role::Attribute);
        assert!(told
            .names
            .contains(&(currency, "USD".into(), "en".into(), "US dollar".into())));
        // The options still win over the DSD.
        let own = SdmxCsvOptions {
            attributes: vec!["currency".into()],
            ..SdmxCsvOptions::default()
        };
        let merged = s.sdmx_csv_options(&own);
        assert!(!merged.dimensions.iter().any(|d| d == "CURRENCY"));
        assert!(merged.dimensions.iter().any(|d| d == "FREQ"));
        assert!(merged.attributes.iter().any(|a| a == "OBS_STATUS"));
    }

    #[test]
    fn a_3_0_data_structure_with_urn_references() {
        let s = parse(DSD_30).expect("parses");
        assert_eq!(s.dsd.as_ref().unwrap().id, "ECB_EXR_COMPLEX_ATTRIBUTES");
        assert_eq!(
            ids(&s, Role::Dimension),
            [
                "FREQ",
                "CURRENCY",
                "CURRENCY_DENOM",
                "EXR_TYPE",
                "EXR_SUFFIX"
            ]
        );
        assert_eq!(ids(&s, Role::Time), ["TIME_PERIOD"]);
        assert_eq!(ids(&s, Role::Measure), ["OBS_VALUE"]);
        let status = s.component("OBS_STATUS").unwrap();
        assert_eq!(status.codelist.as_deref(), Some("CL_OBS_STATUS"));
        assert_eq!(status.concept.as_deref(), Some("OBS_STATUS"));
        assert_eq!(status.attachment, Some(Attachment::Observation));
        assert!(status.multi_valued);
        assert!(!s.component("OBS_CONF").unwrap().multi_valued);
        assert_eq!(
            s.component("BREAKS").unwrap().attachment,
            Some(Attachment::Dimensions(
                [
                    "FREQ",
                    "CURRENCY",
                    "CURRENCY_DENOM",
                    "EXR_TYPE",
                    "EXR_SUFFIX"
                ]
                .map(String::from)
                .to_vec()
            ))
        );
        assert_eq!(
            s.component("CURRENCY_DENOM").unwrap().codelist.as_deref(),
            Some("CL_CURRENCY")
        );
    }

    #[test]
    fn codelists_of_3_0() {
        let s = parse(CODELISTS_30).expect("parses");
        assert_eq!(s.dsd, None);
        assert_eq!(name(&s, "CL_AGE", "M"), [("en", "Month(s)")]);
        assert_eq!(name(&s, "CL_EXTENDED_AGE", "I"), [("en", "Minutes(s)")]);
        assert_eq!(
            s.codelists["CL_AGE"]
                .codes
                .iter()
                .map(|c| c.id.as_str())
                .collect::<Vec<_>>(),
            ["Y", "M", "W", "D", "H"]
        );
    }

    #[test]
    fn names_in_every_language_with_references_resolved() {
        let text = r#"<?xml version="1.0"?>
<m:Structure xmlns:m="m" xmlns:s="s" xmlns:c="c"><m:Structures><s:Codelists>
<s:Codelist id="CL_GEO"><c:Name xml:lang="en">Geography</c:Name>
<s:Code id="BE"><c:Name xml:lang="en">Belgium</c:Name><c:Name xml:lang="fr">Belgique</c:Name>
<c:Name xml:lang="de">Belgien &amp; &#x4C;uxemburg</c:Name></s:Code>
</s:Codelist></s:Codelists></m:Structures></m:Structure>"#;
        let s = parse(text).unwrap();
        assert_eq!(
            name(&s, "CL_GEO", "BE"),
            [
                ("en", "Belgium"),
                ("fr", "Belgique"),
                ("de", "Belgien & Luxemburg")
            ]
        );
    }

    #[test]
    fn a_data_message_or_an_empty_structure_is_refused() {
        let e = parse(GENERIC_SHORT).unwrap_err();
        assert_eq!(
            describe(&e),
            ["1:1: `GenericData` message, expected an SDMX-ML structure message (Structure)"]
        );
        let e = parse("<Structure><Header/></Structure>").unwrap_err();
        assert!(describe(&e)[0].contains("expected a `DataStructure` or `Codelist`"));
        let e = parse("").unwrap_err();
        assert_eq!(
            describe(&e),
            ["1:1: no element, expected an SDMX-ML structure message"]
        );
    }

    #[test]
    fn hostile_documents_give_one_positioned_error_at_once() {
        let laughs = format!(
            "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [<!ENTITY lol \"lol\">{}]>\n<Structure>&lol9;</Structure>",
            (1..10)
                .map(|i| format!("<!ENTITY lol{i} \"{}\">", format!("&lol{};", i - 1).repeat(10)))
                .collect::<String>()
        );
        let external = "<?xml version=\"1.0\"?>\n<!DOCTYPE s [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>\n<Structure>&x;</Structure>";
        let deep = format!("<Structure>{}", "<a>".repeat(100_000));
        // Cut after a tag, so that it is the end that is missing, not a tag's `>`.
        let truncated = &ECB[..ECB[..ECB.len() / 2].rfind('>').unwrap() + 1];
        let undeclared = "<Structure><Structures><Codelists><Codelist id=\"C\"><Code id=\"A\"><Name>&x;</Name></Code></Codelist></Codelists></Structures></Structure>";
        let cases: [(&str, &str); 5] = [
            (&laughs, "2:1: a DOCTYPE declaration, expected none"),
            (external, "2:1: a DOCTYPE declaration, expected none"),
            (&deep, "1:"),
            (truncated, "truncated document: element `"),
            (undeclared, "1:71: unknown entity `&x`"),
        ];
        for (text, expected) in cases {
            let started = Instant::now();
            let e = parse(text).unwrap_err();
            assert!(started.elapsed() < Duration::from_secs(2), "{expected}");
            assert_eq!(e.len(), 1, "{e:?}");
            let line = &describe(&e)[0];
            assert!(line.contains(expected), "{line}");
            assert!(matches!(e[0].0, Origin::At { .. }), "{line}");
        }
        let deep = describe(&parse(&deep).unwrap_err())[0].clone();
        assert!(
            deep.contains(&format!("nested deeper than {}", sdmx_ml::MAX_DEPTH)),
            "{deep}"
        );
    }
}
