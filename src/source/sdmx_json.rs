//! SDMX-JSON data messages: 2.0 (`data.structures[]`), 1.0 (`data.structure`) and OECD.Stat's
//! older top-level `structure`/`dataSets`, in the series or the flat view. Every index of a
//! series or observation key, measure and attribute is resolved against the structure: one row
//! per observation of every dimension, the measure(s) and every attribute, as codes.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::{json_kind, json_syntax_error, json_tree, strip_bom, Component, Origin, Role, Sink};

/// Options of the SDMX-JSON reader.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SdmxJsonOptions {
    /// Which data set of the message to read: an index into its `dataSets` array, from 0.
    pub dataset: usize,
}

/// A dimension of the structure and its values.
struct Dim<'a> {
    id: &'a str,
    values: Values<'a>,
}

/// A measure or an attribute: coded when the structure lists its `values` (the data then hold
/// indexes into them), otherwise the data hold the values themselves.
struct Coded<'a> {
    id: &'a str,
    codes: Option<Values<'a>>,
    default: Option<String>,
}

/// Which part of the message a component comes from, for its row field's origin.
#[derive(Clone, Copy)]
enum Slot {
    DataSetDim(usize),
    SeriesDim,
    ObsDim,
    Measure(usize),
    DataSetAttr(usize),
    GroupAttr(usize),
    SeriesAttr(usize),
    ObsAttr(usize),
}

/// The values of the dimension group attributes for one combination of dimension positions:
/// `positions` are the dimensions (in key order) the keys of `entries` give indexes for.
struct GroupPattern {
    positions: Vec<usize>,
    entries: HashMap<Vec<usize>, (String, Vec<Option<String>>)>,
}

/// Reads the data set `options.dataset` of an SDMX-JSON data message.
pub fn read(text: &str, options: &SdmxJsonOptions, sink: &mut dyn Sink) {
    let text = strip_bom(text);
    let (doc, table) = match parse(text) {
        Ok(v) => v,
        Err(e) => {
            let (origin, message) = json_syntax_error(text, &e);
            sink.error(origin, message);
            return;
        }
    };
    let Some(DataSet {
        base,
        container,
        ds,
        ds_path,
    }) = data_set(&doc, options, sink)
    else {
        return;
    };
    let Some((structure, s_path)) = find_structure(container, base, ds, &ds_path, sink) else {
        return;
    };

    let st = Structure::read(structure, &table, &s_path, sink);
    let (components, slots) = st.components(structure);
    let structure_at = Origin::Path(s_path.clone());
    if !sink.components(&components, &|_| structure_at.clone()) {
        return;
    }
    let layout = Layout {
        ds_dims: &st.ds_dims,
        series_dims: &st.series_dims,
        obs_dims: &st.obs_dims,
        measures: &st.measures,
        obs_attrs: &st.obs_attrs,
        series_attrs: &st.series_attrs,
        group_attrs: &st.group_attrs,
        groups: dimension_groups(
            ds,
            &ds_path,
            &st.ds_dims,
            &st.series_dims,
            &st.obs_dims,
            &st.group_attrs,
            sink,
        ),
        slots: &slots,
        s_path: &s_path,
        ds_path: &ds_path,
        ds_attr_values: dataset_attributes(ds, &ds_path, &st.ds_attrs, sink),
        ds_attrs_in_data: matches!(ds.get("attributes"), Some(Value::Array(_))),
        delete: ds
            .get("action")
            .and_then(Value::as_str)
            .is_some_and(|a| a.eq_ignore_ascii_case("delete")),
    };
    layout.all_series(ds, sink);
    layout.flat_observations(ds, sink);
    st.names(sink);
}

/// The data set to read, and the object holding it and the structure(s).
struct DataSet<'a> {
    /// Path of `container`: `$.data`, or `$` in OECD.Stat's older messages.
    base: &'static str,
    container: &'a Map<String, Value>,
    ds: &'a Map<String, Value>,
    ds_path: String,
}

/// Finds data set `options.dataset` of the message, reporting why when there is none.
fn data_set<'a>(
    doc: &'a Value,
    options: &SdmxJsonOptions,
    sink: &mut dyn Sink,
) -> Option<DataSet<'a>> {
    let Some(root) = doc.as_object() else {
        sink.error(
            Origin::Path("$".into()),
            format!(
                "document is {}, expected an SDMX-JSON message object",
                json_kind(doc)
            ),
        );
        return None;
    };
    let (base, container) = match root.get("data") {
        Some(Value::Object(d)) => ("$.data", d),
        _ => ("$", root),
    };
    let data_sets = match container.get("dataSets") {
        Some(Value::Array(a)) if !a.is_empty() => a,
        _ => {
            sink.error(
                Origin::Path(base.into()),
                "no data sets, expected a non-empty `dataSets` array".into(),
            );
            return None;
        }
    };
    let Some(ds) = data_sets.get(options.dataset) else {
        sink.error(
            Origin::Path(format!("{base}.dataSets")),
            format!(
                "dataset {} is out of range, expected 0 to {}: the message has {} data sets",
                options.dataset,
                data_sets.len() - 1,
                data_sets.len()
            ),
        );
        return None;
    };
    let ds_path = format!("{base}.dataSets[{}]", options.dataset);
    let Some(ds) = ds.as_object() else {
        sink.error(
            Origin::Path(ds_path),
            format!("data set is {}, expected an object", json_kind(ds)),
        );
        return None;
    };
    Some(DataSet {
        base,
        container,
        ds,
        ds_path,
    })
}

/// The components the structure describes, level by level.
struct Structure<'a> {
    ds_dims: Vec<Dim<'a>>,
    series_dims: Vec<Dim<'a>>,
    obs_dims: Vec<Dim<'a>>,
    measures: Vec<Coded<'a>>,
    ds_attrs: Vec<Coded<'a>>,
    group_attrs: Vec<Coded<'a>>,
    series_attrs: Vec<Coded<'a>>,
    obs_attrs: Vec<Coded<'a>>,
}

impl<'a> Structure<'a> {
    /// Reads the dimensions, measures and attributes of `structure`, reporting bad ones.
    fn read(
        structure: &'a Map<String, Value>,
        table: &'a [Vec<&'a RawValue>],
        s_path: &str,
        sink: &mut dyn Sink,
    ) -> Self {
        // Dimensions in structure order: dataSet, series, observation level. Dimension group
        // keys give a position to each of them in this order.
        let ds_dims = dims(structure, table, "dataSet", s_path, sink);
        let series_dims = dims(structure, table, "series", s_path, sink);
        let obs_dims = dims(structure, table, "observation", s_path, sink);
        let measures: Vec<Coded> = match structure.get("measures") {
            None | Some(Value::Null) => vec![Coded {
                id: "OBS_VALUE",
                codes: None,
                default: None,
            }],
            Some(_) => coded(structure, table, "measures", "observation", s_path, sink),
        };
        Structure {
            ds_dims,
            series_dims,
            obs_dims,
            measures,
            ds_attrs: coded(structure, table, "attributes", "dataSet", s_path, sink),
            group_attrs: coded(
                structure,
                table,
                "attributes",
                "dimensionGroup",
                s_path,
                sink,
            ),
            series_attrs: coded(structure, table, "attributes", "series", s_path, sink),
            obs_attrs: coded(structure, table, "attributes", "observation", s_path, sink),
        }
    }

    /// The components of every row, and which part of the message each comes from: the
    /// dimensions level by level, the measures, then the attributes level by level.
    fn components(&self, structure: &Map<String, Value>) -> (Vec<Component>, Vec<Slot>) {
        let mut components = Vec::new();
        let mut slots = Vec::new();
        for (i, d) in self.ds_dims.iter().enumerate() {
            components.push(Component::new(d.id, dim_role(structure, "dataSet", i)));
            slots.push(Slot::DataSetDim(i));
        }
        for (i, d) in self.series_dims.iter().enumerate() {
            components.push(Component::new(d.id, dim_role(structure, "series", i)));
            slots.push(Slot::SeriesDim);
        }
        for (i, d) in self.obs_dims.iter().enumerate() {
            components.push(Component::new(d.id, dim_role(structure, "observation", i)));
            slots.push(Slot::ObsDim);
        }
        for (i, m) in self.measures.iter().enumerate() {
            components.push(Component::new(m.id, Role::Measure));
            slots.push(Slot::Measure(i));
        }
        let attr_levels = [
            &self.ds_attrs,
            &self.group_attrs,
            &self.series_attrs,
            &self.obs_attrs,
        ];
        let attr_slots = [
            Slot::DataSetAttr,
            Slot::GroupAttr,
            Slot::SeriesAttr,
            Slot::ObsAttr,
        ];
        for (attrs, slot) in attr_levels.into_iter().zip(attr_slots) {
            for (i, a) in attrs.iter().enumerate() {
                components.push(Component::new(a.id, Role::Attribute));
                slots.push(slot(i));
            }
        }
        (components, slots)
    }

    /// Gives the sink the display names of the dimension and attribute values the rows used, in
    /// component order.
    fn names(&self, sink: &mut dyn Sink) {
        let mut col = 0;
        for d in self
            .ds_dims
            .iter()
            .chain(&self.series_dims)
            .chain(&self.obs_dims)
        {
            d.values.names(sink, col);
            col += 1;
        }
        col += self.measures.len();
        for a in self
            .ds_attrs
            .iter()
            .chain(&self.group_attrs)
            .chain(&self.series_attrs)
            .chain(&self.obs_attrs)
        {
            if let Some(codes) = &a.codes {
                codes.names(sink, col);
            }
            col += 1;
        }
    }
}

/// The role of dimension `i` of `level`: the time dimension, or an ordinary one.
fn dim_role(structure: &Map<String, Value>, level: &str, i: usize) -> Role {
    let c = level_array(structure, "dimensions", level)
        .get(i)
        .and_then(Value::as_object);
    if c.is_some_and(is_time) {
        Role::Time
    } else {
        Role::Dimension
    }
}

/// Everything an observation needs to become a row.
struct Layout<'a> {
    ds_dims: &'a [Dim<'a>],
    series_dims: &'a [Dim<'a>],
    obs_dims: &'a [Dim<'a>],
    measures: &'a [Coded<'a>],
    obs_attrs: &'a [Coded<'a>],
    series_attrs: &'a [Coded<'a>],
    group_attrs: &'a [Coded<'a>],
    groups: Vec<GroupPattern>,
    slots: &'a [Slot],
    s_path: &'a str,
    ds_path: &'a str,
    ds_attr_values: Vec<String>,
    ds_attrs_in_data: bool,
    delete: bool,
}

impl Layout<'_> {
    /// Reads the data set's `series` (the series view), each with its observations.
    fn all_series(&self, ds: &Map<String, Value>, sink: &mut dyn Sink) {
        match ds.get("series") {
            None | Some(Value::Null) => {}
            Some(Value::Object(series)) => {
                for (key, s) in series {
                    self.series(key, s, sink);
                }
            }
            Some(v) => sink.error(
                Origin::Path(format!("{}.series", self.ds_path)),
                format!(
                    "series are {}, expected an object keyed by series key",
                    json_kind(v)
                ),
            ),
        }
    }

    /// Reads the data set's own `observations` (the flat view).
    fn flat_observations(&self, ds: &Map<String, Value>, sink: &mut dyn Sink) {
        let ds_path = self.ds_path;
        match ds.get("observations") {
            None | Some(Value::Null) => {}
            Some(Value::Object(obs)) => {
                // A flat view's keys cover the observation level only: series-level dimensions
                // would have no value, so such observations are checked but not yielded.
                let flat = self.series_dims.is_empty();
                if !flat {
                    let all: Vec<&Dim> = self.series_dims.iter().collect();
                    sink.error(
                        Origin::Path(format!("{ds_path}.observations")),
                        format!(
                            "flat observations but series-level dimensions ({}), expected every dimension at the observation or dataSet level",
                            ids(&all)
                        ),
                    );
                }
                for (key, o) in obs {
                    let path = format!("{ds_path}.observations[{}]", quote(key));
                    self.observation(None, flat, &path, key, o, sink);
                }
            }
            Some(v) => sink.error(
                Origin::Path(format!("{ds_path}.observations")),
                format!(
                    "observations are {}, expected an object keyed by observation key",
                    json_kind(v)
                ),
            ),
        }
    }

    fn series(&self, key: &str, s: &Value, sink: &mut dyn Sink) {
        let path = format!("{}.series[{}]", self.ds_path, quote(key));
        let Some(s) = s.as_object() else {
            sink.error(
                Origin::Path(path),
                format!(
                    "series is {}, expected an object with `observations`",
                    json_kind(s)
                ),
            );
            return;
        };
        let indexes = parse_key(key, self.series_dims, "series", &path, sink);
        let mut ok = indexes.is_some();
        let given = match s.get("attributes") {
            None | Some(Value::Null) => None,
            Some(Value::Array(a)) => Some(a),
            Some(v) => {
                sink.error(
                    Origin::Path(format!("{path}.attributes")),
                    format!("series attributes are {}, expected an array", json_kind(v)),
                );
                ok = false;
                None
            }
        };
        let mut attrs = Vec::with_capacity(self.series_attrs.len());
        for (j, a) in self.series_attrs.iter().enumerate() {
            match given.and_then(|g| g.get(j)).map(|v| a.resolve(v)) {
                None => attrs.push(a.default.clone().unwrap_or_default()),
                Some(Ok(t)) => attrs.push(t.unwrap_or_default()),
                Some(Err(m)) => {
                    sink.error(Origin::Path(format!("{path}.attributes[{j}]")), m);
                    ok = false;
                }
            }
        }
        match s.get("observations") {
            None | Some(Value::Null) => {}
            Some(Value::Object(obs)) => {
                let at = SeriesAt {
                    path: &path,
                    indexes: indexes.as_deref().unwrap_or(&[]),
                    attrs: &attrs,
                    attrs_in_data: given.is_some(),
                };
                for (okey, o) in obs {
                    let opath = format!("{path}.observations[{}]", quote(okey));
                    // A bad series still has its observations checked, but yields no rows.
                    self.observation(Some(&at), ok, &opath, okey, o, sink);
                }
            }
            Some(v) => sink.error(
                Origin::Path(format!("{path}.observations")),
                format!(
                    "observations are {}, expected an object keyed by observation key",
                    json_kind(v)
                ),
            ),
        }
    }

    /// Checks one observation and, when it and its series are sound and `emit`, yields it.
    fn observation(
        &self,
        series: Option<&SeriesAt>,
        emit: bool,
        path: &str,
        key: &str,
        o: &Value,
        sink: &mut dyn Sink,
    ) {
        let obs_idx = parse_key(key, self.obs_dims, "observation", path, sink);
        let Some(arr) = o.as_array() else {
            sink.error(
                Origin::Path(path.into()),
                format!(
                    "observation is {}, expected an array [value, attribute, ...]",
                    json_kind(o)
                ),
            );
            return;
        };
        let values = self.observed(arr, path, sink);
        let (true, Some(obs_idx), Some((measures, obs_attrs))) = (emit, obs_idx, values) else {
            return;
        };
        // A flat view has no series level: its key covers every non-dataSet dimension.
        let series_idx = series.map_or(&[][..], |s| s.indexes);

        let mut fields: Vec<String> = Vec::with_capacity(self.slots.len());
        for d in self.ds_dims {
            fields.push(d.values.code(0).unwrap_or_default());
        }
        for (k, d) in self.series_dims.iter().enumerate() {
            let code = series_idx.get(k).and_then(|&i| d.values.code(i));
            fields.push(code.unwrap_or_default());
        }
        for (d, &i) in self.obs_dims.iter().zip(&obs_idx) {
            fields.push(d.values.code(i).unwrap_or_default());
        }
        fields.extend(measures);
        fields.extend(self.ds_attr_values.iter().cloned());

        let all_idx = key_positions(
            self.ds_dims.len(),
            self.series_dims.len(),
            series_idx,
            &obs_idx,
        );
        let mut group_keys: Vec<Option<&str>> = Vec::with_capacity(self.group_attrs.len());
        for (j, a) in self.group_attrs.iter().enumerate() {
            match group_value(&self.groups, j, &all_idx) {
                Some((ekey, v)) => {
                    fields.push(v.clone());
                    group_keys.push(Some(ekey));
                }
                None => {
                    fields.push(a.default.clone().unwrap_or_default());
                    group_keys.push(None);
                }
            }
        }
        match series {
            Some(s) => fields.extend(s.attrs.iter().cloned()),
            None => fields.extend(
                self.series_attrs
                    .iter()
                    .map(|a| a.default.clone().unwrap_or_default()),
            ),
        }
        fields.extend(obs_attrs);

        let refs: Vec<&str> = fields.iter().map(String::as_str).collect();
        let origin =
            |i: usize| -> Origin { Origin::Path(self.field_path(i, series, path, &group_keys)) };
        if self.delete {
            sink.delete(&refs, &origin);
        } else {
            sink.row(&refs, &origin);
        }
    }

    /// The measures' and observation attributes' values of an observation's array, each
    /// checked; None when one is wrong.
    fn observed(
        &self,
        arr: &[Value],
        path: &str,
        sink: &mut dyn Sink,
    ) -> Option<(Vec<String>, Vec<String>)> {
        let mut ok = true;
        let nm = self.measures.len();
        let mut measures = Vec::with_capacity(nm);
        for (m, measure) in self.measures.iter().enumerate() {
            match measure.measure_value(arr.get(m).unwrap_or(&Value::Null)) {
                Ok(t) => measures.push(t),
                Err(msg) => {
                    sink.error(Origin::Path(format!("{path}[{m}]")), msg);
                    ok = false;
                }
            }
        }
        let mut obs_attrs = Vec::with_capacity(self.obs_attrs.len());
        for (j, a) in self.obs_attrs.iter().enumerate() {
            match arr.get(nm + j).map(|v| a.resolve(v)) {
                None => obs_attrs.push(a.default.clone().unwrap_or_default()),
                Some(Ok(t)) => obs_attrs.push(t.unwrap_or_default()),
                Some(Err(msg)) => {
                    sink.error(Origin::Path(format!("{path}[{}]", nm + j)), msg);
                    ok = false;
                }
            }
        }
        ok.then_some((measures, obs_attrs))
    }

    /// Where field `i` of the observation at `path` comes from; `group_keys` are the keys of
    /// the dimension group entries that gave the group attributes.
    fn field_path(
        &self,
        i: usize,
        series: Option<&SeriesAt>,
        path: &str,
        group_keys: &[Option<&str>],
    ) -> String {
        match self.slots.get(i) {
            Some(Slot::DataSetDim(k)) => format!("{}.dimensions.dataSet[{k}]", self.s_path),
            Some(Slot::SeriesDim) => series.map_or(path, |s| s.path).to_string(),
            Some(Slot::ObsDim) | None => path.to_string(),
            Some(Slot::Measure(m)) => format!("{path}[{m}]"),
            Some(Slot::DataSetAttr(k)) if self.ds_attrs_in_data => {
                format!("{}.attributes[{k}]", self.ds_path)
            }
            Some(Slot::DataSetAttr(k)) => {
                format!("{}.attributes.dataSet[{k}]", self.s_path)
            }
            Some(Slot::GroupAttr(k)) => match group_keys.get(*k).copied().flatten() {
                Some(ekey) => format!(
                    "{}.dimensionGroupAttributes[{}][{k}]",
                    self.ds_path,
                    quote(ekey)
                ),
                None => format!("{}.attributes.dimensionGroup[{k}]", self.s_path),
            },
            Some(Slot::SeriesAttr(k)) => match series {
                Some(s) if s.attrs_in_data => format!("{}.attributes[{k}]", s.path),
                Some(s) => s.path.to_string(),
                None => format!("{}.attributes.series[{k}]", self.s_path),
            },
            Some(Slot::ObsAttr(k)) => format!("{path}[{}]", self.measures.len() + k),
        }
    }
}

/// Every dimension's index in dimension group key order: dataSet-level dimensions (always
/// their single value), then the series key's, then the observation key's. A flat view has
/// no series key: its series-level positions are 0.
fn key_positions(
    n_ds: usize,
    n_series: usize,
    series_idx: &[usize],
    obs_idx: &[usize],
) -> Vec<usize> {
    let mut all_idx: Vec<usize> = vec![0; n_ds];
    all_idx.extend_from_slice(series_idx);
    all_idx.resize(n_ds + n_series, 0);
    all_idx.extend_from_slice(obs_idx);
    all_idx
}

/// The value of dimension group attribute `j` for the dimension indexes `all_idx`, and the
/// key of the entry giving it: the first group whose positions match an entry that gives
/// the attribute a value.
fn group_value<'g>(
    groups: &'g [GroupPattern],
    j: usize,
    all_idx: &[usize],
) -> Option<(&'g str, &'g String)> {
    groups.iter().find_map(|g| {
        let k: Vec<usize> = g.positions.iter().map(|&p| all_idx[p]).collect();
        let (ekey, vals) = g.entries.get(&k)?;
        Some((ekey.as_str(), vals.get(j)?.as_ref()?))
    })
}

/// A series as its observations see it: where it is, its key's indexes, its attributes.
struct SeriesAt<'a> {
    path: &'a str,
    indexes: &'a [usize],
    attrs: &'a [String],
    attrs_in_data: bool,
}
impl Coded<'_> {
    /// An attribute's element in the data: `Ok(None)` for null, else its code or value.
    fn resolve(&self, v: &Value) -> Result<Option<String>, String> {
        if v.is_null() {
            return Ok(None);
        }
        let Some(codes) = &self.codes else {
            return Ok(Some(text_of(v)));
        };
        match v.as_u64() {
            Some(i) => match usize::try_from(i).ok().and_then(|i| codes.code(i)) {
                Some(c) => Ok(Some(c)),
                None => Err(format!(
                    "index {i} is out of range of attribute `{}`, expected {}",
                    self.id,
                    attr_range(codes.len())
                )),
            },
            None => Err(format!(
                "attribute `{}` has {} {}, expected an index ({}) into its values",
                self.id,
                json_kind(v),
                compact(v),
                attr_range(codes.len())
            )),
        }
    }

    /// A measure's element in the data, as written (an index for a coded measure).
    fn measure_value(&self, v: &Value) -> Result<String, String> {
        match v {
            Value::Null => Ok(String::new()),
            Value::String(s) if self.codes.is_none() => Ok(s.clone()),
            Value::Number(n) => match &self.codes {
                None => Ok(n.to_string()),
                Some(codes) => match n
                    .as_u64()
                    .and_then(|i| usize::try_from(i).ok())
                    .and_then(|i| codes.code(i))
                {
                    Some(c) => Ok(c),
                    None => Err(format!(
                        "index {n} is out of range of measure `{}`, expected {}",
                        self.id,
                        attr_range(codes.len())
                    )),
                },
            },
            _ if self.codes.is_some() => Err(format!(
                "measure `{}` has {} {}, expected an index ({}) into its values or null",
                self.id,
                json_kind(v),
                compact(v),
                attr_range(self.codes.as_ref().map_or(0, Values::len))
            )),
            _ => Err(format!(
                "value of measure `{}` is {}, expected a number, string or null",
                self.id,
                json_kind(v)
            )),
        }
    }
}

/// The structure describing the data set: `structures[ds.structure]` (2.0), else `structure`.
fn find_structure<'a>(
    container: &'a Map<String, Value>,
    base: &str,
    ds: &Map<String, Value>,
    ds_path: &str,
    sink: &mut dyn Sink,
) -> Option<(&'a Map<String, Value>, String)> {
    if let Some(Value::Array(structs)) = container.get("structures") {
        let idx = match ds.get("structure") {
            None | Some(Value::Null) => 0,
            Some(v) => match v.as_u64().and_then(|i| usize::try_from(i).ok()) {
                Some(i) => i,
                None => {
                    sink.error(
                        Origin::Path(format!("{ds_path}.structure")),
                        format!(
                            "structure is {} {}, expected an index into `structures`",
                            json_kind(v),
                            compact(v)
                        ),
                    );
                    return None;
                }
            },
        };
        let path = format!("{base}.structures[{idx}]");
        return match structs.get(idx) {
            Some(Value::Object(s)) => Some((s, path)),
            Some(v) => {
                sink.error(
                    Origin::Path(path),
                    format!("structure is {}, expected an object", json_kind(v)),
                );
                None
            }
            None => {
                sink.error(
                    Origin::Path(format!("{ds_path}.structure")),
                    format!(
                        "structure {idx} is out of range, expected {}: the message has {} structures",
                        attr_range(structs.len()),
                        structs.len()
                    ),
                );
                None
            }
        };
    }
    match container.get("structure") {
        Some(Value::Object(s)) => Some((s, format!("{base}.structure"))),
        _ => {
            sink.error(
                Origin::Path(base.into()),
                "no structure, expected a `structures` array or a `structure` object".into(),
            );
            None
        }
    }
}

/// A component's `values` array, as `parse` kept it; None when it has none.
fn values_of<'a>(c: &Value, table: &'a [Vec<&'a RawValue>]) -> Option<&'a [&'a RawValue]> {
    let at = c.get(VALUES_AT)?.as_u64()?;
    table.get(usize::try_from(at).ok()?).map(Vec::as_slice)
}

/// The components of `structure.<group>.<level>`, or none.
fn level_array<'a>(structure: &'a Map<String, Value>, group: &str, level: &str) -> &'a [Value] {
    structure
        .get(group)
        .and_then(|g| g.get(level))
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn component_id<'a>(c: &'a Value, path: &str, sink: &mut dyn Sink) -> &'a str {
    match c.get("id").and_then(Value::as_str) {
        Some(id) => id,
        None => {
            sink.error(
                Origin::Path(path.into()),
                "component has no `id`, expected a string id".into(),
            );
            ""
        }
    }
}

fn dims<'a>(
    structure: &'a Map<String, Value>,
    table: &'a [Vec<&'a RawValue>],
    level: &str,
    s_path: &str,
    sink: &mut dyn Sink,
) -> Vec<Dim<'a>> {
    let mut out = Vec::new();
    for (i, c) in level_array(structure, "dimensions", level)
        .iter()
        .enumerate()
    {
        let path = format!("{s_path}.dimensions.{level}[{i}]");
        let id = component_id(c, &path, sink);
        let values = Values::new(values_of(c, table).unwrap_or(&[]));
        if level == "dataSet" && values.len() != 1 {
            sink.error(
                Origin::Path(path),
                format!(
                    "dataSet-level dimension `{id}` has {} values, expected exactly one",
                    values.len()
                ),
            );
        }
        out.push(Dim { id, values });
    }
    out
}

fn coded<'a>(
    structure: &'a Map<String, Value>,
    table: &'a [Vec<&'a RawValue>],
    group: &str,
    level: &str,
    s_path: &str,
    sink: &mut dyn Sink,
) -> Vec<Coded<'a>> {
    let mut out = Vec::new();
    for (i, c) in level_array(structure, group, level).iter().enumerate() {
        let path = format!("{s_path}.{group}.{level}[{i}]");
        let id = component_id(c, &path, sink);
        out.push(Coded {
            id,
            codes: values_of(c, table).map(Values::new),
            default: c.get("default").filter(|d| !d.is_null()).map(text_of),
        });
    }
    out
}

/// The dataSet-level attributes' values: from the data set's `attributes` array when it has
/// one, else the structure's single value or default.
fn dataset_attributes(
    ds: &Map<String, Value>,
    ds_path: &str,
    attrs: &[Coded],
    sink: &mut dyn Sink,
) -> Vec<String> {
    let given = match ds.get("attributes") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) => Some(a),
        Some(v) => {
            sink.error(
                Origin::Path(format!("{ds_path}.attributes")),
                format!("dataSet attributes are {}, expected an array", json_kind(v)),
            );
            None
        }
    };
    attrs
        .iter()
        .enumerate()
        .map(|(j, a)| {
            let fallback = || a.default.clone().unwrap_or_default();
            match given {
                None => match &a.codes {
                    Some(only) if only.len() == 1 => only.code(0).unwrap_or_default(),
                    _ => fallback(),
                },
                Some(g) => match g.get(j) {
                    None => fallback(),
                    Some(v) => a
                        .resolve(v)
                        .unwrap_or_else(|m| {
                            sink.error(Origin::Path(format!("{ds_path}.attributes[{j}]")), m);
                            None
                        })
                        .unwrap_or_default(),
                },
            }
        })
        .collect()
}

/// Parses `dimensionGroupAttributes`: keys give an index or nothing for every dimension (in
/// dataSet, series, observation order); values list the dimension group attributes' values.
fn dimension_groups(
    ds: &Map<String, Value>,
    ds_path: &str,
    ds_dims: &[Dim],
    series_dims: &[Dim],
    obs_dims: &[Dim],
    attrs: &[Coded],
    sink: &mut dyn Sink,
) -> Vec<GroupPattern> {
    let all: Vec<&Dim> = ds_dims.iter().chain(series_dims).chain(obs_dims).collect();
    let mut groups: Vec<GroupPattern> = Vec::new();
    let entries = match ds.get("dimensionGroupAttributes") {
        None | Some(Value::Null) => return groups,
        Some(Value::Object(e)) => e,
        Some(v) => {
            sink.error(
                Origin::Path(format!("{ds_path}.dimensionGroupAttributes")),
                format!(
                    "dimensionGroupAttributes is {}, expected an object keyed by partial key",
                    json_kind(v)
                ),
            );
            return groups;
        }
    };
    'entry: for (key, v) in entries {
        let path = format!("{ds_path}.dimensionGroupAttributes[{}]", quote(key));
        let parts: Vec<&str> = key.split(':').collect();
        if parts.len() != all.len() {
            sink.error(
                Origin::Path(path),
                format!(
                    "dimension group key {} has {} parts, expected {}: one position per dimension ({})",
                    quote(key),
                    parts.len(),
                    all.len(),
                    ids(&all)
                ),
            );
            continue;
        }
        let mut positions = Vec::new();
        let mut idx = Vec::new();
        for (p, (part, d)) in parts.iter().zip(&all).enumerate() {
            if part.is_empty() {
                continue;
            }
            match dim_index(part, d) {
                Ok(i) => {
                    positions.push(p);
                    idx.push(i);
                }
                Err(m) => {
                    sink.error(Origin::Path(path), m);
                    continue 'entry;
                }
            }
        }
        let Some(arr) = v.as_array() else {
            sink.error(
                Origin::Path(path),
                format!(
                    "dimension group attributes are {}, expected an array [attribute, ...]",
                    json_kind(v)
                ),
            );
            continue;
        };
        let mut vals = Vec::with_capacity(attrs.len());
        for (j, a) in attrs.iter().enumerate() {
            match arr.get(j).map(|e| a.resolve(e)) {
                None => vals.push(None),
                Some(Ok(t)) => vals.push(t),
                Some(Err(m)) => {
                    sink.error(Origin::Path(format!("{path}[{j}]")), m);
                    continue 'entry;
                }
            }
        }
        let entry = (key.clone(), vals);
        match groups.iter_mut().find(|g| g.positions == positions) {
            Some(g) => {
                g.entries.insert(idx, entry);
            }
            None => {
                groups.push(GroupPattern {
                    positions,
                    entries: HashMap::from([(idx, entry)]),
                });
            }
        }
    }
    groups
}

/// Splits a series or observation key into one index per dimension of its level.
fn parse_key(
    key: &str,
    dims: &[Dim],
    level: &str,
    path: &str,
    sink: &mut dyn Sink,
) -> Option<Vec<usize>> {
    let parts: Vec<&str> = if key.is_empty() {
        Vec::new()
    } else {
        key.split(':').collect()
    };
    if parts.len() != dims.len() {
        let all: Vec<&Dim> = dims.iter().collect();
        sink.error(
            Origin::Path(path.into()),
            format!(
                "{level} key {} has {} parts, expected {}: one index per {level} dimension ({})",
                quote(key),
                parts.len(),
                dims.len(),
                ids(&all)
            ),
        );
        return None;
    }
    let mut out = Vec::with_capacity(dims.len());
    let mut ok = true;
    for (part, d) in parts.iter().zip(dims) {
        match dim_index(part, d) {
            Ok(i) => out.push(i),
            Err(m) => {
                sink.error(Origin::Path(path.into()), m);
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

fn dim_index(part: &str, d: &Dim) -> Result<usize, String> {
    let n = d.values.len();
    let range = if n == 0 {
        "none: the dimension has no values".to_string()
    } else {
        format!("0 to {}", n - 1)
    };
    let digits = !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    match part.parse::<usize>() {
        Ok(i) if digits && i < n => Ok(i),
        _ if digits => Err(format!(
            "index {part} is out of range of dimension `{}`, expected {range}",
            d.id
        )),
        _ => Err(format!(
            "key part {} is not an index, expected {range} for dimension `{}`",
            quote(part),
            d.id
        )),
    }
}

fn ids(dims: &[&Dim]) -> String {
    dims.iter().map(|d| d.id).collect::<Vec<_>>().join(", ")
}

fn attr_range(n: usize) -> String {
    if n == 0 {
        "none: it has no values".into()
    } else {
        format!("0 to {}", n - 1)
    }
}

/// Whether a dimension is the time dimension: its role(s) say `time`/`TIME_PERIOD`, or its id
/// is `TIME_PERIOD`.
fn is_time(c: &Map<String, Value>) -> bool {
    let time = |s: &str| s.eq_ignore_ascii_case("time") || s.eq_ignore_ascii_case("time_period");
    let role_says = |v: Option<&Value>| match v {
        Some(Value::String(s)) => time(s),
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).any(time),
        _ => false,
    };
    role_says(c.get("role"))
        || role_says(c.get("roles"))
        || c.get("id").and_then(Value::as_str) == Some("TIME_PERIOD")
}

/// The code a component value stands for: its `id`, else its (non-coded) `value`/`values`,
/// else its name.
fn value_code(v: &Value) -> String {
    let Some(o) = v.as_object() else {
        return text_of(v);
    };
    for field in ["id", "value", "values", "name"] {
        match o.get(field) {
            None | Some(Value::Null) => {}
            Some(x) => return text_of(x),
        }
    }
    o.get("names").map(text_of).unwrap_or_default()
}

/// A non-coded value as text: numbers in their shortest form, a localised text in its first
/// language, several values joined with `;`.
fn text_of(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Object(o) => o.values().next().map(text_of).unwrap_or_default(),
        Value::Array(a) => a
            .iter()
            .filter(|x| !x.is_null())
            .map(text_of)
            .collect::<Vec<_>>()
            .join(";"),
    }
}

/// A short rendering of a JSON value for a message.
fn compact(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 40 {
        let cut: String = s.chars().take(37).collect();
        format!("{cut}...")
    } else {
        s
    }
}

/// A key as a JSON string, for paths and messages.
fn quote(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

/// Where `parse` keeps a component's `values` array: under this key, the index of the array in
/// its table. No key of a document can start with NUL once parsed, as `parse` drops such keys.
const VALUES_AT: &str = "\0values";

/// Parses the message into a tree, except every `values` array: a structure may declare far
/// more values than the data use. Those arrays stay text, one slice of `text` per value, in the
/// returned table; the object holding one gets `VALUES_AT` with its index instead.
fn parse(text: &str) -> Result<(Value, Vec<Vec<&RawValue>>), serde_json::Error> {
    const KEEP: json_tree::Keep = json_tree::Keep {
        hidden: |_, key| (key == "values").then_some(VALUES_AT),
        opens: &['['],
    };
    let (doc, table) = json_tree::parse(text, &KEEP)?;
    // Each is a whole JSON array already checked by the parse: it splits into its values.
    let table = table
        .into_iter()
        .map(|array| serde_json::from_str(array.get()))
        .collect::<Result<_, _>>()?;
    Ok((doc, table))
}

/// A component's `values`, kept as text: only the values the data use are parsed, into the
/// codes that fill rows and, once the rows are read, the names of those codes.
struct Values<'a> {
    raw: &'a [&'a RawValue],
    used: RefCell<BTreeMap<usize, String>>,
}

impl<'a> Values<'a> {
    fn new(raw: &'a [&'a RawValue]) -> Self {
        Values {
            raw,
            used: RefCell::new(BTreeMap::new()),
        }
    }

    fn len(&self) -> usize {
        self.raw.len()
    }

    fn value(&self, i: usize) -> Value {
        self.raw
            .get(i)
            .and_then(|r| serde_json::from_str(r.get()).ok())
            .unwrap_or(Value::Null)
    }

    /// The code of value `i`, which counts as used; None out of range.
    fn code(&self, i: usize) -> Option<String> {
        if i >= self.raw.len() {
            return None;
        }
        let mut used = self.used.borrow_mut();
        let code = used.entry(i).or_insert_with(|| value_code(&self.value(i)));
        Some(code.clone())
    }

    /// Gives the sink the display names of the values used.
    fn names(&self, sink: &mut dyn Sink, col: usize) {
        for (&i, code) in self.used.borrow().iter() {
            let v = self.value(i);
            if let Some(name) = v.get("name").and_then(Value::as_str) {
                sink.name(col, code, "", name);
            }
            if let Some(Value::Object(names)) = v.get("names") {
                for (lang, name) in names {
                    if let Some(name) = name.as_str() {
                        sink.name(col, code, lang, name);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Collect;

    const OECD: &str =
        include_str!("../../tests/fixtures/publishers/sdmx-json/oecd_qna_oecdstat_draft.json");
    const EXR: &str =
        include_str!("../../tests/fixtures/publishers/sdmx-json/spec_v2.0.0_exr-time-series.json");
    const AGRI: &str =
        include_str!("../../tests/fixtures/publishers/sdmx-json/spec_v2.0.0_agri.json");

    fn run(text: &str) -> Collect {
        run_with(text, 0)
    }

    fn run_with(text: &str, dataset: usize) -> Collect {
        let mut c = Collect::default();
        read(text, &SdmxJsonOptions { dataset }, &mut c);
        c
    }

    fn roles(c: &Collect) -> Vec<(&str, Role)> {
        c.components
            .iter()
            .map(|c| (c.id.as_str(), c.role))
            .collect()
    }

    /// The row whose fields of `ids` are `values`.
    fn row<'a>(c: &'a Collect, key: &[(&str, &str)]) -> &'a Vec<String> {
        let hits: Vec<_> = c
            .rows
            .iter()
            .filter(|r| key.iter().all(|(id, v)| r[c.col(id)] == *v))
            .collect();
        assert_eq!(hits.len(), 1, "rows matching {key:?}");
        hits[0]
    }

    fn cell<'a>(c: &'a Collect, r: &'a [String], id: &str) -> &'a str {
        &r[c.col(id)]
    }

    fn has_name(c: &Collect, id: &str, code: &str, lang: &str, name: &str) -> bool {
        let col = c.col(id);
        c.names
            .iter()
            .any(|n| n.0 == col && n.1 == code && n.2 == lang && n.3 == name)
    }

    #[test]
    fn oecd_stat_shape() {
        let c = run(OECD);
        assert_eq!(c.error_lines(), Vec::<String>::new());
        use Role::*;
        assert_eq!(
            roles(&c),
            vec![
                ("LOCATION", Dimension),
                ("SUBJECT", Dimension),
                ("MEASURE", Dimension),
                ("FREQUENCY", Dimension),
                ("TIME_PERIOD", Time),
                ("OBS_VALUE", Measure),
                ("TIME_FORMAT", Attribute),
                ("UNIT", Attribute),
                ("POWERCODE", Attribute),
                ("REFERENCEPERIOD", Attribute),
                ("OBS_STATUS", Attribute),
            ]
        );
        // 5 series of 12 quarters each.
        assert_eq!(c.rows.len(), 60);
        // "1:0:0:0" (AUT) {"attributes":[0,1,0,0], "0":[291301.971016,null]}
        let r = row(&c, &[("LOCATION", "AUT"), ("TIME_PERIOD", "2009-Q1")]);
        assert_eq!(
            r,
            &[
                "AUT",
                "B1_GE",
                "VOBARSA",
                "Q",
                "2009-Q1",
                "291301.971016",
                "P3M",
                "EUR",
                "6",
                "2010",
                ""
            ]
        );
        // "4:0:0:0" (CHL) {"attributes":[0,3,0,0], "11":[120601874.99935,null]}
        let r = row(&c, &[("LOCATION", "CHL"), ("TIME_PERIOD", "2011-Q4")]);
        assert_eq!(cell(&c, r, "OBS_VALUE"), "120601874.99935");
        assert_eq!(cell(&c, r, "UNIT"), "CLP");
        // "3:0:0:0" (CAN) "2":[1610574.277634,null]
        let r = row(&c, &[("LOCATION", "CAN"), ("TIME_PERIOD", "2009-Q3")]);
        assert_eq!(cell(&c, r, "OBS_VALUE"), "1610574.277634");
        assert_eq!(cell(&c, r, "UNIT"), "CAD");
        // "0:0:0:0" (AUS) "9":[1391739.300428,null]
        let r = row(&c, &[("LOCATION", "AUS"), ("TIME_PERIOD", "2011-Q2")]);
        assert_eq!(cell(&c, r, "OBS_VALUE"), "1391739.300428");
        assert_eq!(cell(&c, r, "UNIT"), "AUD");
        assert!(has_name(&c, "LOCATION", "AUS", "", "Australia"));
        assert!(has_name(&c, "TIME_PERIOD", "2009-Q1", "", "Q1-2009"));
        assert!(has_name(&c, "UNIT", "CLP", "", "Chilean Peso"));
        assert!(has_name(&c, "POWERCODE", "6", "", "Millions"));
        // Origins point into the series and the observation.
        let i = c.rows.iter().position(|x| x == r).expect("row");
        let col = c.col("UNIT");
        assert_eq!(
            c.origins[i][col],
            Origin::Path(r#"$.dataSets[0].series["0:0:0:0"].attributes[1]"#.into())
        );
        assert_eq!(
            c.origins[i][c.col("OBS_VALUE")],
            Origin::Path(r#"$.dataSets[0].series["0:0:0:0"].observations["9"][0]"#.into())
        );
    }

    #[test]
    fn spec_time_series() {
        let c = run(EXR);
        assert_eq!(c.error_lines(), Vec::<String>::new());
        use Role::*;
        assert_eq!(
            roles(&c),
            vec![
                ("FREQ", Dimension),
                ("CURRENCY_DENOM", Dimension),
                ("EXR_TYPE", Dimension),
                ("EXR_SUFFIX", Dimension),
                ("CURRENCY", Dimension),
                ("TIME_PERIOD", Time),
                ("OBS_VALUE", Measure),
                ("TIME_FORMAT", Attribute),
                ("TITLE", Attribute),
                ("OBS_STATUS", Attribute),
            ]
        );
        assert_eq!(c.rows.len(), 4);
        // series "1" {"attributes":[1], "1":[40.3,0,1]}: the trailing 1 is an annotation.
        let r = row(&c, &[("CURRENCY", "RUB"), ("TIME_PERIOD", "2013-01-21")]);
        assert_eq!(
            r,
            &[
                "D",
                "EUR",
                "SP00",
                "A",
                "RUB",
                "2013-01-21",
                "40.3",
                "P1D",
                "Russian rouble (RUB)",
                "A"
            ]
        );
        // series "0" "0":[1.5931,0]
        let r = row(&c, &[("CURRENCY", "NZD"), ("TIME_PERIOD", "2013-01-18")]);
        assert_eq!(cell(&c, r, "OBS_VALUE"), "1.5931");
        assert_eq!(cell(&c, r, "TITLE"), "New Zealand dollar (NZD)");
        let i = c.rows.iter().position(|x| x == r).expect("row");
        // TIME_FORMAT is given by the structure only.
        assert_eq!(
            c.origins[i][c.col("TIME_FORMAT")],
            Origin::Path("$.data.structures[0].attributes.dataSet[0]".into())
        );
        assert_eq!(
            c.origins[i][c.col("FREQ")],
            Origin::Path("$.data.structures[0].dimensions.dataSet[0]".into())
        );
        assert!(has_name(&c, "CURRENCY", "NZD", "", "New Zealand dollar"));
        assert!(has_name(&c, "CURRENCY", "NZD", "en", "New Zealand dollar"));
        assert!(has_name(&c, "FREQ", "D", "en", "Daily"));
        assert!(has_name(&c, "OBS_STATUS", "A", "en", "Normal value"));
        assert!(has_name(&c, "TIME_FORMAT", "P1D", "", "Daily"));
    }

    #[test]
    fn spec_flat_view_with_dimension_groups() {
        let c = run(AGRI);
        assert_eq!(c.error_lines(), Vec::<String>::new());
        use Role::*;
        assert_eq!(
            roles(&c),
            vec![
                ("FREQ", Dimension),
                ("REF_AREA", Dimension),
                ("TIME_PERIOD", Time),
                ("OBS_VALUE", Measure),
                ("UNIT_MEASURE", Attribute),
                ("UNIT_MULT", Attribute),
                ("BASE_PER", Attribute),
                ("PREF_SCALE", Attribute),
                ("DECIMALS", Attribute),
                ("CONTACT_EMAIL", Attribute),
                ("SOURCE", Attribute),
                ("SERIES_COMMENT", Attribute),
                ("OBS_STATUS", Attribute),
                ("EMBARGO_TIME", Attribute),
            ]
        );
        assert_eq!(c.rows.len(), 12);
        // "1:2":[479.686,null,"2020-03-18T11:00:00"]; "::2" SOURCE, "0:1:" SERIES_COMMENT.
        let r = row(&c, &[("REF_AREA", "ASIKHM002"), ("TIME_PERIOD", "2016")]);
        assert_eq!(
            r,
            &[
                "A",
                "ASIKHM002",
                "2016",
                "479.686",
                "TONES",
                "3",
                "2010_100",
                "-3",
                "1",
                "contact@organisation.org",
                "MAFF_Agricultural Statistics_2016",
                "Comment for Annual data for Battambang",
                "",
                "2020-03-18T11:00:00"
            ]
        );
        // "0:1":[389.385,...]; "::1" lists two sources.
        let r = row(&c, &[("REF_AREA", "ASIKHM001"), ("TIME_PERIOD", "2015")]);
        assert_eq!(cell(&c, r, "OBS_VALUE"), "389.385");
        assert_eq!(
            cell(&c, r, "SOURCE"),
            "MAFF_Agricultural Statistics_2015;Other sources"
        );
        assert_eq!(
            cell(&c, r, "SERIES_COMMENT"),
            "Comment for Annual data for Banteay Meanchey"
        );
        let i = c.rows.iter().position(|x| x == r).expect("row");
        assert_eq!(
            c.origins[i][c.col("SOURCE")],
            Origin::Path(r#"$.data.dataSets[0].dimensionGroupAttributes["::1"][0]"#.into())
        );
        // "2:3":[5541.424,null,"2021-03-18T11:00:00"]
        let r = row(&c, &[("REF_AREA", "ASIKHM"), ("TIME_PERIOD", "2017")]);
        assert_eq!(cell(&c, r, "OBS_VALUE"), "5541.424");
        assert_eq!(cell(&c, r, "UNIT_MULT"), "3");
        assert_eq!(cell(&c, r, "EMBARGO_TIME"), "2021-03-18T11:00:00");
        assert!(has_name(
            &c,
            "REF_AREA",
            "ASIKHM001",
            "en",
            "Banteay Meanchey"
        ));
        assert!(has_name(&c, "UNIT_MULT", "3", "", "Thousands"));
        assert!(has_name(&c, "TIME_PERIOD", "2014", "en", "2014"));
    }

    /// A deliberately simple second reading: dimension codes of the key(s), the first
    /// observation element and the observation-level attribute codes, walking the JSON.
    fn simple(text: &str) -> Vec<Vec<String>> {
        let doc: Value = serde_json::from_str(text).expect("fixture parses");
        let (structure, ds) = match doc.get("data") {
            Some(d) => (&d["structures"][0], &d["dataSets"][0]),
            None => (&doc["structure"], &doc["dataSets"][0]),
        };
        let level = |group: &str, l: &str| -> Vec<Value> {
            structure[group][l].as_array().cloned().unwrap_or_default()
        };
        let ids = |dims: &[Value], key: &str| -> Vec<String> {
            if dims.is_empty() {
                return vec![];
            }
            key.split(':')
                .zip(dims)
                .map(|(k, d)| {
                    let i: usize = k.parse().expect("index");
                    d["values"][i]["id"].as_str().expect("id").to_string()
                })
                .collect()
        };
        let num = |v: &Value| match v {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            v => v.to_string(),
        };
        let ds_dims: Vec<String> = level("dimensions", "dataSet")
            .iter()
            .map(|d| d["values"][0]["id"].as_str().expect("id").to_string())
            .collect();
        let series_dims = level("dimensions", "series");
        let obs_dims = level("dimensions", "observation");
        let obs_attrs = level("attributes", "observation");
        let mut out = Vec::new();
        let mut add = |skey: &str, okey: &str, o: &Value| {
            let mut r = ds_dims.clone();
            r.extend(ids(&series_dims, skey));
            r.extend(ids(&obs_dims, okey));
            r.push(num(&o[0]));
            for (j, a) in obs_attrs.iter().enumerate() {
                r.push(match (&o[j + 1], a.get("values")) {
                    (Value::Null, _) => String::new(),
                    (Value::Number(i), Some(vals)) => {
                        let i = i.as_u64().expect("index") as usize;
                        vals[i]["id"].as_str().expect("id").to_string()
                    }
                    (v, _) => num(v),
                });
            }
            out.push(r);
        };
        if let Some(series) = ds["series"].as_object() {
            for (sk, s) in series {
                for (ok, o) in s["observations"].as_object().expect("observations") {
                    add(sk, ok, o);
                }
            }
        }
        if let Some(obs) = ds["observations"].as_object() {
            for (ok, o) in obs {
                add("", ok, o);
            }
        }
        out.sort();
        out
    }

    #[test]
    fn every_observation_matches_a_simple_reading() {
        for (text, n) in [(OECD, 60), (EXR, 4), (AGRI, 12)] {
            let c = run(text);
            let keep: Vec<usize> = c
                .components
                .iter()
                .enumerate()
                .filter(|(i, comp)| {
                    comp.role != Role::Attribute || *i >= c.components.len() - obs_attr_count(text)
                })
                .map(|(i, _)| i)
                .collect();
            let mut got: Vec<Vec<String>> = c
                .rows
                .iter()
                .map(|r| keep.iter().map(|&i| r[i].clone()).collect())
                .collect();
            got.sort();
            let want = simple(text);
            assert_eq!(want.len(), n);
            assert_eq!(got, want);
        }
    }

    fn obs_attr_count(text: &str) -> usize {
        let doc: Value = serde_json::from_str(text).expect("fixture parses");
        let s = match doc.get("data") {
            Some(d) => &d["structures"][0],
            None => &doc["structure"],
        };
        s["attributes"]["observation"]
            .as_array()
            .map_or(0, Vec::len)
    }

    const BAD: &str = r#"{"data":{"structures":[{
        "dimensions":{"series":[{"id":"A","values":[{"id":"a0"},{"id":"a1"},{"id":"a2"}]}],
            "observation":[{"id":"TIME_PERIOD","values":[{"id":"2020"},{"id":"2021"},{"id":"2022"}]}]},
        "attributes":{"series":[{"id":"S","values":[{"id":"s0"}]}],
            "observation":[{"id":"OBS_STATUS","values":[{"id":"A"}]}]}}],
      "dataSets":[{"series":{
        "0":{"attributes":[0],"observations":{"0":[1,0],"1":["2.50",null],"5":[3],"1:0":[4],"x":[1]}},
        "0:9":{"observations":{"0":[1]}},
        "1":{"attributes":[3],"observations":{"0":[1,"x"]}},
        "2":{"observations":{"0":{"v":1},"1":[true,0],"2":[1,7]}},
        "9":{"observations":{"0":[1]}}}}]}}"#;

    #[test]
    fn bad_keys_indexes_and_observations() {
        let c = run(BAD);
        let s = r#"$.data.dataSets[0].series"#;
        assert_eq!(
            c.error_lines(),
            vec![
                format!(
                    r#"{s}["0"].observations["1:0"]: observation key "1:0" has 2 parts, expected 1: one index per observation dimension (TIME_PERIOD)"#
                ),
                format!(
                    r#"{s}["0"].observations["5"]: index 5 is out of range of dimension `TIME_PERIOD`, expected 0 to 2"#
                ),
                format!(
                    r#"{s}["0"].observations["x"]: key part "x" is not an index, expected 0 to 2 for dimension `TIME_PERIOD`"#
                ),
                format!(
                    r#"{s}["0:9"]: series key "0:9" has 2 parts, expected 1: one index per series dimension (A)"#
                ),
                format!(
                    r#"{s}["1"].attributes[0]: index 3 is out of range of attribute `S`, expected 0 to 0"#
                ),
                format!(
                    r#"{s}["1"].observations["0"][1]: attribute `OBS_STATUS` has a string "x", expected an index (0 to 0) into its values"#
                ),
                format!(
                    r#"{s}["2"].observations["0"]: observation is an object, expected an array [value, attribute, ...]"#
                ),
                format!(
                    r#"{s}["2"].observations["1"][0]: value of measure `OBS_VALUE` is a boolean, expected a number, string or null"#
                ),
                format!(
                    r#"{s}["2"].observations["2"][1]: index 7 is out of range of attribute `OBS_STATUS`, expected 0 to 0"#
                ),
                format!(r#"{s}["9"]: index 9 is out of range of dimension `A`, expected 0 to 2"#),
            ]
        );
        // Only the two sound observations of series "0" are yielded.
        assert_eq!(
            c.rows,
            vec![
                vec!["a0", "2020", "1", "s0", "A"],
                vec!["a0", "2021", "2.50", "s0", ""],
            ]
        );
    }

    #[test]
    fn bad_documents() {
        let lines = |t: &str| run(t).error_lines();
        // The first 60 characters of the OECD file end inside the string "2b-daf2-4592-...".
        assert_eq!(
            lines(&OECD[..60]),
            vec!["1:60: truncated JSON: EOF while parsing a string, expected a complete document"]
        );
        assert_eq!(
            lines("{\"data\": x}"),
            vec!["1:10: invalid JSON: expected value, expected well-formed JSON"]
        );
        // Columns count characters, not bytes.
        assert_eq!(
            lines("{\"é\": x}"),
            vec!["1:7: invalid JSON: expected value, expected well-formed JSON"]
        );
        assert_eq!(
            lines("[1]"),
            vec!["$: document is an array, expected an SDMX-JSON message object"]
        );
        assert_eq!(
            lines(r#"{"meta":{},"data":{"structures":[]}}"#),
            vec!["$.data: no data sets, expected a non-empty `dataSets` array"]
        );
        assert_eq!(
            lines(r#"{"dataSets":[]}"#),
            vec!["$: no data sets, expected a non-empty `dataSets` array"]
        );
        assert_eq!(
            lines(r#"{"dataSets":[{}]}"#),
            vec!["$: no structure, expected a `structures` array or a `structure` object"]
        );
        assert_eq!(
            lines(r#"{"data":{"structures":[{}],"dataSets":[{"structure":1}]}}"#),
            vec!["$.data.dataSets[0].structure: structure 1 is out of range, expected 0 to 0: the message has 1 structures"]
        );
        assert_eq!(
            run_with(EXR, 2).error_lines(),
            vec!["$.data.dataSets: dataset 2 is out of range, expected 0 to 0: the message has 1 data sets"]
        );
        let c = run(&OECD.replacen(r#""0:0:0:0""#, r#""0:0:0""#, 1));
        assert_eq!(
            c.error_lines(),
            vec![
                r#"$.dataSets[0].series["0:0:0"]: series key "0:0:0" has 3 parts, expected 4: one index per series dimension (LOCATION, SUBJECT, MEASURE, FREQUENCY)"#
            ]
        );
        assert_eq!(c.rows.len(), 48);
        let c = run(&AGRI.replacen(r#""::0""#, r#"":0""#, 1));
        assert_eq!(
            c.error_lines(),
            vec![
                r#"$.data.dataSets[0].dimensionGroupAttributes[":0"]: dimension group key ":0" has 2 parts, expected 3: one position per dimension (FREQ, REF_AREA, TIME_PERIOD)"#
            ]
        );
        assert_eq!(c.rows.len(), 12);
        assert_eq!(
            c.column("SOURCE").iter().filter(|s| s.is_empty()).count(),
            3
        );
        let c = run(&AGRI.replacen(r#""::3""#, r#""::4""#, 1));
        assert_eq!(
            c.error_lines(),
            vec![
                r#"$.data.dataSets[0].dimensionGroupAttributes["::4"]: index 4 is out of range of dimension `TIME_PERIOD`, expected 0 to 3"#
            ]
        );
    }

    #[test]
    fn flat_observations_need_every_dimension_at_observation_level() {
        let text = EXR.replacen(r#""series":{"#, r#""observations":{"0":[1]},"x":{"#, 1);
        let c = run(&text);
        assert_eq!(
            c.error_lines(),
            vec!["$.data.dataSets[0].observations: flat observations but series-level dimensions (CURRENCY), expected every dimension at the observation or dataSet level"]
        );
        assert!(c.rows.is_empty());
    }

    #[test]
    fn byte_order_mark() {
        let c = run(&format!("\u{feff}{EXR}"));
        assert!(c.errors.is_empty());
        assert_eq!(c.rows.len(), 4);
    }

    /// SDMX-JSON 1.0: one `data.structure`; a `time` role; dataSet attributes by index; string
    /// values kept as written; a default for omitted attributes; a second, deleting data set.
    const V1: &str = r#"{"header":{"id":"X"},"data":{"structure":{
        "dimensions":{"dataSet":[{"id":"FREQ","values":[{"id":"A","name":"Annual"}]}],
          "observation":[{"id":"GEO","values":[{"id":"DE"},{"id":"FR","name":"France"}]},
                         {"id":"TIME","role":"time","values":[{"id":"2020"}]}]},
        "attributes":{"dataSet":[{"id":"UNIT_MULT","values":[{"id":"0"},{"id":"3"}]}],
          "observation":[{"id":"OBS_STATUS","default":"A",
             "values":[{"id":"A"},{"id":"E","names":{"en":"Estimated","fr":"Estimé"}}]}]}},
      "dataSets":[{"attributes":[1],"observations":{"0:0":["1.50",1],"1:0":[2]}},
                  {"action":"Delete","observations":{"1:0":[null]}}]}}"#;

    #[test]
    fn version_1_and_delete() {
        let c = run(V1);
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        use Role::*;
        assert_eq!(
            roles(&c),
            vec![
                ("FREQ", Dimension),
                ("GEO", Dimension),
                ("TIME", Time),
                ("OBS_VALUE", Measure),
                ("UNIT_MULT", Attribute),
                ("OBS_STATUS", Attribute),
            ]
        );
        assert_eq!(
            c.rows,
            vec![
                vec!["A", "DE", "2020", "1.50", "3", "E"],
                vec!["A", "FR", "2020", "2", "3", "A"],
            ]
        );
        assert!(has_name(&c, "OBS_STATUS", "E", "fr", "Estimé"));
        assert!(has_name(&c, "GEO", "FR", "", "France"));
        assert!(has_name(&c, "FREQ", "A", "", "Annual"));
        let d = run_with(V1, 1);
        assert!(d.errors.is_empty());
        assert!(d.rows.is_empty());
        assert_eq!(d.deleted, vec![vec!["A", "FR", "2020", "", "", "A"]]);
    }

    #[test]
    fn several_measures_and_uncoded_values() {
        let text = r#"{"data":{"structures":[{
            "dimensions":{"observation":[{"id":"TIME_PERIOD","values":[{"id":"2020"}]}]},
            "measures":{"observation":[{"id":"M1"},{"id":"M2","values":[{"id":"LOW"},{"id":"HIGH"}]}]},
            "attributes":{"dataSet":[{"id":"NOTE"}],
              "series":[],
              "observation":[{"id":"COMMENT"},{"id":"CONF","values":[{"names":{"fr":"libre","en":"free"}}]}]}}],
          "dataSets":[{"attributes":[{"en":"a note"}],
            "observations":{"0":[0.000012345678901234,1,["x",2],0]}}]}}"#;
        let c = run(text);
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        use Role::*;
        assert_eq!(
            roles(&c),
            vec![
                ("TIME_PERIOD", Time),
                ("M1", Measure),
                ("M2", Measure),
                ("NOTE", Attribute),
                ("COMMENT", Attribute),
                ("CONF", Attribute),
            ]
        );
        // A value with neither id nor name yields the first of its names.
        assert_eq!(
            c.rows,
            vec![vec![
                "2020",
                "0.000012345678901234",
                "HIGH",
                "a note",
                "x;2",
                "free"
            ]]
        );
        assert!(has_name(&c, "CONF", "free", "fr", "libre"));
    }

    /// Deterministic pseudo-random numbers for the fuzz test.
    fn lcg(state: &mut u64) -> usize {
        *state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (*state >> 33) as usize
    }

    #[test]
    fn no_panic_on_truncations_and_byte_flips() {
        let check = |text: &str| {
            let c = run(text);
            for r in c.rows.iter().chain(&c.deleted) {
                assert_eq!(r.len(), c.components.len());
            }
        };
        let mut seed = 7u64;
        for text in [OECD, EXR, AGRI, BAD, V1] {
            let step = if text.len() > 5000 { 3 } else { 1 };
            for end in (0..text.len())
                .step_by(step)
                .filter(|&i| text.is_char_boundary(i))
            {
                check(&text[..end]);
            }
            let noise = b"{}[]:,\"0123456789-.eEnulltrfa \\x";
            for _ in 0..1500 {
                let mut bytes = text.as_bytes().to_vec();
                for _ in 0..1 + lcg(&mut seed) % 3 {
                    let at = lcg(&mut seed) % bytes.len();
                    bytes[at] = noise[lcg(&mut seed) % noise.len()];
                }
                if let Ok(t) = std::str::from_utf8(&bytes) {
                    check(t);
                }
            }
        }
    }

    #[test]
    fn time_dimension_by_role_roles_or_id() {
        let structure = serde_json::json!({"dimensions": {
            "series": [
                {"id": "FREQ", "role": "FREQ"},
                {"id": "PERIOD", "role": "time"},
                {"id": "REF_AREA"},
            ],
            "observation": [
                {"id": "TIME_PERIOD"},
                {"id": "T", "roles": ["x", "Time_Period"]},
                {"id": "time"},
                {"id": "U", "roles": "TIME"},
                "TIME_PERIOD",
            ],
        }});
        let structure = structure.as_object().expect("an object");
        let roles = |level: &str, n: usize| -> Vec<Role> {
            (0..n).map(|i| dim_role(structure, level, i)).collect()
        };
        use Role::*;
        assert_eq!(roles("series", 4), [Dimension, Time, Dimension, Dimension]);
        // By id only `TIME_PERIOD`; a dimension that is not an object is no time dimension.
        assert_eq!(
            roles("observation", 5),
            [Time, Time, Dimension, Time, Dimension]
        );
        assert_eq!(roles("dataSet", 1), [Dimension]);
    }

    #[test]
    fn dimension_positions_and_group_values() {
        // dataSet-level dimensions are at their single value; a flat view's series-level
        // dimensions at 0.
        assert_eq!(key_positions(1, 2, &[3, 4], &[5]), [0, 3, 4, 5]);
        assert_eq!(key_positions(1, 2, &[], &[5]), [0, 0, 0, 5]);
        assert_eq!(key_positions(0, 0, &[], &[1, 2]), [1, 2]);

        let entry = |key: &str, vals: &[Option<&str>]| {
            (
                key.to_string(),
                vals.iter().map(|v| v.map(str::to_string)).collect(),
            )
        };
        let groups = vec![
            GroupPattern {
                positions: vec![1],
                entries: HashMap::from([
                    (vec![0], entry(":0:", &[Some("a"), None])),
                    (vec![1], entry(":1:", &[Some("b")])),
                ]),
            },
            GroupPattern {
                positions: vec![1, 2],
                entries: HashMap::from([(vec![0, 2], entry(":0:2", &[Some("c"), Some("d")]))]),
            },
        ];
        let value = |j: usize, idx: &[usize]| {
            group_value(&groups, j, idx).map(|(k, v)| (k.to_string(), v.clone()))
        };
        let kv = |k: &str, v: &str| Some((k.to_string(), v.to_string()));
        // The first group whose entry gives the attribute a value wins.
        assert_eq!(value(0, &[0, 0, 2]), kv(":0:", "a"));
        assert_eq!(value(1, &[0, 0, 2]), kv(":0:2", "d"));
        assert_eq!(value(1, &[0, 0, 1]), None);
        // An entry listing fewer attributes gives no value to the others.
        assert_eq!(value(0, &[0, 1, 2]), kv(":1:", "b"));
        assert_eq!(value(1, &[0, 1, 2]), None);
        assert_eq!(value(0, &[0, 2, 2]), None);
    }
}
