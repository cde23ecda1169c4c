//! What a reload changed: the declared metrics of the dataset in service and of its successor,
//! compared series by series. Pure; the reload task reports the result through telemetry.

use std::cmp::Ordering;

use crate::dataset::{Dataset, Metric};

/// What one reload changed in one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricChange {
    pub metric: String,
    pub added: usize,
    pub removed: usize,
    /// (labels as `a="x",b="y"`, old value, new value)
    pub revised: Vec<(String, f64, f64)>,
}

/// One metric's series as a comparison reads them: sorted by their label values taken in
/// label-name order.
pub trait Series {
    /// The label names, sorted.
    fn names(&self) -> Vec<&str>;
    fn len(&self) -> usize;
    /// The `k`th label value (in sorted-name order) of series `i`.
    fn key(&self, i: usize, k: usize) -> &str;
    fn value(&self, i: usize) -> f64;
    /// `a="x",b="y"` of series `i`.
    fn text(&self, i: usize) -> String;
}

/// The figures of a dataset, or of what was stored of one: its metrics by name.
pub trait Figures {
    type Metric<'a>: Series
    where
        Self: 'a;
    fn metric_names(&self) -> Vec<&str>;
    fn metric(&self, name: &str) -> Option<Self::Metric<'_>>;
}

/// A declared metric of a dataset, with the dataset that holds its label values.
pub struct Served<'a>(&'a Dataset, &'a Metric);

impl Series for Served<'_> {
    fn names(&self) -> Vec<&str> {
        sorted_names(self.1)
    }
    fn len(&self) -> usize {
        self.1.len()
    }
    fn key(&self, i: usize, k: usize) -> &str {
        self.0.symbol(self.1.labels(i)[self.1.order[k]])
    }
    fn value(&self, i: usize) -> f64 {
        self.1.value(i)
    }
    fn text(&self, i: usize) -> String {
        self.0.labels_text(self.1, i)
    }
}

impl Figures for Dataset {
    type Metric<'a> = Served<'a>;
    fn metric_names(&self) -> Vec<&str> {
        self.metrics.iter().map(|m| m.name.as_str()).collect()
    }
    fn metric(&self, name: &str) -> Option<Served<'_>> {
        let m = self.metrics.iter().find(|m| m.name == name)?;
        Some(Served(self, m))
    }
}

/// Compares the declared metrics of two datasets series by series.
pub fn diff(old: &Dataset, new: &Dataset) -> Vec<MetricChange> {
    compare(old, new)
}

/// Compares two sets of figures series by series: a merge of two sorted lists, so a million
/// series compare in one pass without an index. Reloads compare the dataset served with its
/// successor; start-up compares what was stored before a restart with the first load.
pub fn compare<A: Figures, B: Figures>(old: &A, new: &B) -> Vec<MetricChange> {
    let mut names: Vec<&str> = old.metric_names();
    names.extend(new.metric_names());
    names.sort_unstable();
    names.dedup();
    let mut out = Vec::new();
    for name in names {
        let mut change = MetricChange {
            metric: name.to_string(),
            added: 0,
            removed: 0,
            revised: vec![],
        };
        match (old.metric(name), new.metric(name)) {
            (Some(o), Some(n)) if o.names() == n.names() => merge(&o, &n, &mut change),
            (o, n) => {
                change.removed = o.map_or(0, |m| m.len());
                change.added = n.map_or(0, |m| m.len());
            }
        }
        if change.added + change.removed + change.revised.len() > 0 {
            out.push(change);
        }
    }
    out
}

/// Counts the series only in `o` (removed), only in `n` (added), and in both with another
/// value (revised), walking both sorted lists once.
fn merge(o: &impl Series, n: &impl Series, change: &mut MetricChange) {
    let width = o.names().len();
    let cmp = |i: usize, j: usize| {
        (0..width)
            .map(|k| o.key(i, k).cmp(n.key(j, k)))
            .find(|c| c.is_ne())
            .unwrap_or(Ordering::Equal)
    };
    let (mut i, mut j) = (0, 0);
    while i < o.len() || j < n.len() {
        let ord = match (i < o.len(), j < n.len()) {
            (true, true) => cmp(i, j),
            (true, false) => Ordering::Less,
            _ => Ordering::Greater,
        };
        match ord {
            Ordering::Less => {
                change.removed += 1;
                i += 1;
            }
            Ordering::Greater => {
                change.added += 1;
                j += 1;
            }
            Ordering::Equal => {
                if o.value(i).to_bits() != n.value(j).to_bits() {
                    change.revised.push((n.text(j), o.value(i), n.value(j)));
                }
                i += 1;
                j += 1;
            }
        }
    }
}

fn sorted_names(m: &Metric) -> Vec<&str> {
    m.order.iter().map(|&j| m.label_names[j].as_str()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::{build, DataFiles};
    use std::path::Path;

    /// (name, label names, [(label values, percent)])
    type MetricSpec<'a> = (&'a str, &'a [&'a str], &'a [(&'a [&'a str], f64)]);

    fn dataset(metrics: &[MetricSpec]) -> Dataset {
        let mut text = String::from(
            "[dataset]\nname = \"t\"\ntitle = \"t\"\npublisher = \"p\"\nsource_url = \"u\"\npublished = \"2025-01-01\"\nmetric_prefix = \"t_\"\n",
        );
        for (name, labels, samples) in metrics {
            let names: Vec<String> = labels.iter().map(|l| format!("\"{l}\"")).collect();
            text += &format!("[[metric]]\nname = \"{name}\"\nunit = \"percent\"\nhelp = \"h\"\nlabels = [{}]\nsamples = [\n", names.join(", "));
            for (values, v) in *samples {
                let pairs: Vec<String> = labels
                    .iter()
                    .zip(*values)
                    .map(|(l, x)| format!("{l} = \"{x}\""))
                    .collect();
                text += &format!(
                    "  {{ labels = {{ {} }}, value = {v} }},\n",
                    pairs.join(", ")
                );
            }
            text += "]\n";
        }
        let path = Path::new("t.toml");
        let config = crate::config::parse(path, &text).unwrap();
        build(path, &text, &config, &DataFiles::new()).unwrap()
    }

    #[test]
    fn counts_added_removed_and_revised_series_per_metric() {
        let old = dataset(&[
            (
                "a",
                &["size", "year"],
                &[
                    (&["all", "2023"], 51.3),
                    (&["all", "2024"], 53.3),
                    (&["small", "2024"], 57.8),
                ],
            ),
            ("gone", &["year"], &[(&["2024"], 1.0)]),
        ]);
        let new = dataset(&[
            (
                "a",
                &["year", "size"],
                &[
                    (&["2024", "all"], 53.4),
                    (&["2024", "small"], 57.8),
                    (&["2025", "all"], 54.0),
                ],
            ),
            ("fresh", &["year"], &[(&["2025"], 2.0), (&["2026"], 3.0)]),
        ]);
        let changes = diff(&old, &new);
        assert_eq!(
            changes,
            vec![
                MetricChange {
                    metric: "t_a_ratio".into(),
                    added: 1,
                    removed: 1,
                    revised: vec![("size=\"all\",year=\"2024\"".into(), 0.533, 0.534)]
                },
                MetricChange {
                    metric: "t_fresh_ratio".into(),
                    added: 2,
                    removed: 0,
                    revised: vec![]
                },
                MetricChange {
                    metric: "t_gone_ratio".into(),
                    added: 0,
                    removed: 1,
                    revised: vec![]
                },
            ]
        );
        assert!(diff(&new, &new).is_empty());
    }

    #[test]
    fn other_label_names_replace_every_series() {
        let old = dataset(&[("a", &["year"], &[(&["2024"], 1.0)])]);
        let new = dataset(&[("a", &["region", "year"], &[(&["x", "2024"], 1.0)])]);
        assert_eq!(
            diff(&old, &new),
            vec![MetricChange {
                metric: "t_a_ratio".into(),
                added: 1,
                removed: 1,
                revised: vec![]
            }]
        );
    }
}
