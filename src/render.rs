//! Stage 3 of the pipeline: validated [`Dataset`] -> encoded exposition, once per load.
//! Families are sorted by name and series by label values, so output is deterministic.
//!
//! Sample lines are the same in both formats; only the metadata lines differ. So the text body
//! is written once, and the OpenMetrics body is its sample ranges with OpenMetrics metadata in
//! between: a dataset costs one body of memory, not two.

use std::ops::Range;

use crate::dataset::{Dataset, Metric};
use crate::encode::{Encoder, Format, Kind};

/// The dataset's part of `/metrics`.
#[derive(Debug, Default)]
pub struct Rendered {
    /// The text-format (0.0.4) body.
    pub text: Vec<u8>,
    /// Per family, in order: its OpenMetrics metadata lines, and where its sample lines are
    /// in `text`.
    pub families: Vec<(Vec<u8>, Range<usize>)>,
}

impl Rendered {
    fn family(&mut self, name: &str, help: &str, kind: Kind, unit: Option<&str>) {
        self.close();
        Encoder {
            format: Format::Text,
            out: &mut self.text,
        }
        .family(name, help, kind, unit);
        let mut meta = Vec::new();
        Encoder {
            format: Format::OpenMetrics,
            out: &mut meta,
        }
        .family(name, help, kind, unit);
        let at = self.text.len();
        self.families.push((meta, at..at));
    }

    fn sample<'l>(
        &mut self,
        name: &str,
        labels: impl IntoIterator<Item = (&'l str, &'l str)>,
        value: f64,
    ) {
        Encoder {
            format: Format::Text,
            out: &mut self.text,
        }
        .sample(name, labels, value);
    }

    /// Ends the last family's sample range at the end of the text.
    fn close(&mut self) {
        let end = self.text.len();
        if let Some((_, r)) = self.families.last_mut() {
            r.end = end;
        }
    }
}

pub fn render(dataset: &Dataset) -> Rendered {
    let mut out = Rendered {
        text: Vec::with_capacity(estimate(dataset)),
        families: Vec::new(),
    };
    let prefix = &dataset.info.prefix;

    enum Fam<'a> {
        DatasetInfo,
        Published,
        Sources,
        Label(usize),
        Metric(&'a Metric),
        Status(&'a Metric),
        Expected(i64),
        Overdue(i64),
        MetricReleases(bool),
    }
    let mut fams: Vec<(String, Fam)> = vec![
        (format!("{prefix}dataset_info"), Fam::DatasetInfo),
        (
            format!("{prefix}dataset_published_timestamp_seconds"),
            Fam::Published,
        ),
    ];
    if !dataset.sources.is_empty() {
        fams.push((format!("{prefix}source_info"), Fam::Sources));
    }
    for (i, l) in dataset.labels.iter().enumerate() {
        fams.push((format!("{prefix}{}_info", l.name), Fam::Label(i)));
    }
    for m in dataset.metrics.iter().chain(&dataset.derived) {
        fams.push((m.name.clone(), Fam::Metric(m)));
    }
    for m in dataset.metrics.iter().filter(|m| m.has_status()) {
        fams.push((m.status_family(), Fam::Status(m)));
    }
    let releases = &dataset.metric_releases;
    if releases.iter().any(|(_, r)| r.expected_timestamp.is_some()) {
        fams.push((
            format!("{prefix}metric_next_release_expected_timestamp_seconds"),
            Fam::MetricReleases(true),
        ));
    }
    if releases.iter().any(|(_, r)| r.overdue_timestamp.is_some()) {
        fams.push((
            format!("{prefix}metric_next_release_overdue_timestamp_seconds"),
            Fam::MetricReleases(false),
        ));
    }
    if let Some(r) = &dataset.release {
        if let Some(t) = r.expected_timestamp {
            fams.push((
                format!("{prefix}next_release_expected_timestamp_seconds"),
                Fam::Expected(t),
            ));
        }
        if let Some(t) = r.overdue_timestamp {
            fams.push((
                format!("{prefix}next_release_overdue_timestamp_seconds"),
                Fam::Overdue(t),
            ));
        }
    }
    fams.sort_by(|a, b| a.0.cmp(&b.0));

    let info = &dataset.info;
    for (name, fam) in &fams {
        match fam {
            Fam::DatasetInfo => {
                out.family(
                    name,
                    &format!(
                        "Dataset served by this exporter: {}, published by {} on {}.",
                        info.title, info.publisher, info.published
                    ),
                    Kind::Info,
                    None,
                );
                out.sample(
                    name,
                    [
                        ("dataset", info.name.as_str()),
                        ("published", info.published.as_str()),
                        ("publisher", info.publisher.as_str()),
                        ("source_url", info.source_url.as_str()),
                        ("title", info.title.as_str()),
                    ],
                    1.0,
                );
            }
            Fam::Published => {
                out.family(
                    name,
                    &format!("Publication date of the latest figures of the dataset {} (00:00 UTC), as a Unix timestamp.", info.name),
                    Kind::Gauge,
                    Some("seconds"),
                );
                out.sample(
                    name,
                    [("dataset", info.name.as_str())],
                    info.published_timestamp as f64,
                );
            }
            Fam::Sources => {
                out.family(name, "Publications the figures of this dataset are taken from; `source` is the id samples cite.", Kind::Info, None);
                let mut sources: Vec<_> = dataset.sources.iter().collect();
                sources.sort_by(|a, b| a.id.cmp(&b.id));
                for s in sources {
                    out.sample(
                        name,
                        [
                            ("published", s.published.as_str()),
                            ("source", &s.id),
                            ("title", &s.title),
                            ("url", &s.url),
                        ],
                        1.0,
                    );
                }
            }
            Fam::Label(i) => {
                let l = &dataset.labels[*i];
                let help = if l.help.is_empty() {
                    format!("Display names of the codes of label `{}`.", l.name)
                } else {
                    format!(
                        "Display names of the codes of label `{}`: {}",
                        l.name, l.help
                    )
                };
                out.family(name, &help, Kind::Info, None);
                let keys: Vec<String> = l
                    .languages
                    .iter()
                    .map(|lang| format!("name_{lang}"))
                    .collect();
                // Label names sorted: the label itself sorts among `name_*` by its own name.
                let mut order: Vec<usize> = (0..=keys.len()).collect();
                let key = |i: usize| {
                    if i == keys.len() {
                        l.name.as_str()
                    } else {
                        keys[i].as_str()
                    }
                };
                order.sort_by(|a, b| key(*a).cmp(key(*b)));
                let mut values: Vec<&(String, Vec<String>)> = l.values.iter().collect();
                values.sort_by(|a, b| a.0.cmp(&b.0));
                for (code, names) in values {
                    let val = |i: usize| {
                        if i == keys.len() {
                            code.as_str()
                        } else {
                            names[i].as_str()
                        }
                    };
                    out.sample(name, order.iter().map(|&i| (key(i), val(i))), 1.0);
                }
            }
            Fam::Metric(m) => {
                out.family(&m.name, &m.help, Kind::Gauge, m.unit.suffix());
                // Series are stored sorted; labels are written sorted by name.
                for i in 0..m.len() {
                    let ids = m.labels(i);
                    out.sample(
                        &m.name,
                        m.order
                            .iter()
                            .map(|&j| (m.label_names[j].as_str(), dataset.symbol(ids[j]))),
                        m.value(i),
                    );
                }
            }
            Fam::Status(m) => {
                out.family(name, &status_help(m), Kind::Info, None);
                for i in 0..m.len() {
                    let Some(st) = m.status(i) else { continue };
                    let code = dataset.symbol(st);
                    let flag = crate::dataset::status_flag(code);
                    let ids = m.labels(i);
                    let mut labels: Vec<(&str, &str)> = m
                        .order
                        .iter()
                        .map(|&j| (m.label_names[j].as_str(), dataset.symbol(ids[j])))
                        .collect();
                    labels.push(("flag", flag.as_str()));
                    labels.push(("status", code));
                    labels.sort_by(|a, b| a.0.cmp(b.0));
                    out.sample(name, labels, 1.0);
                }
            }
            Fam::MetricReleases(expected) => {
                let (what, when) = if *expected {
                    ("usually published", "by")
                } else {
                    ("overdue", "after")
                };
                out.family(
                    name,
                    &format!("When the figures of the next period of each metric with its own release calendar are {what}: {when} this Unix timestamp, from the metric's [metric.release] in the config."),
                    Kind::Gauge,
                    Some("seconds"),
                );
                let mut rs: Vec<&(String, crate::dataset::ReleaseSchedule)> =
                    releases.iter().collect();
                rs.sort_by(|a, b| a.0.cmp(&b.0));
                for (metric, r) in rs {
                    let t = if *expected {
                        r.expected_timestamp
                    } else {
                        r.overdue_timestamp
                    };
                    let Some(t) = t else { continue };
                    let period = r.next_period.to_string();
                    let mut labels = [
                        ("metric", metric.as_str()),
                        (r.period_label.as_str(), period.as_str()),
                    ];
                    labels.sort_by(|a, b| a.0.cmp(b.0));
                    out.sample(name, labels, t as f64);
                }
            }
            Fam::Expected(t) | Fam::Overdue(t) => {
                let r = dataset
                    .release
                    .as_ref()
                    .expect("release families exist only with a schedule");
                let (what, when) = if matches!(fam, Fam::Expected(_)) {
                    ("usually published", "by")
                } else {
                    ("overdue", "after")
                };
                out.family(
                    name,
                    &format!(
                        "When the figures of the next {} of dataset {} are {what}: {when} this Unix timestamp, from the release calendar in the config.",
                        r.period_label, info.name
                    ),
                    Kind::Gauge,
                    Some("seconds"),
                );
                let period = r.next_period.to_string();
                let mut labels = [
                    ("dataset", info.name.as_str()),
                    (r.period_label.as_str(), period.as_str()),
                ];
                labels.sort_by(|a, b| a.0.cmp(b.0));
                out.sample(name, labels, *t as f64);
            }
        }
    }
    out.close();
    out
}

/// HELP of a metric's status family, served and exported alike.
pub(crate) fn status_help(m: &Metric) -> String {
    format!("Observation status flags of {} (provisional, estimated, break …) as the publisher gives them, for the series that have one; `status` is the code, `flag` its meaning. The value series keeps its identity when a flag changes.", m.name)
}

fn estimate(d: &Dataset) -> usize {
    d.metrics
        .iter()
        .chain(&d.derived)
        .map(|m| {
            (m.name.len() + 16 + m.label_names.iter().map(|l| l.len() + 8).sum::<usize>()) * m.len()
        })
        .sum::<usize>()
        + 4096
}
