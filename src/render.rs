//! Stage 3 of the pipeline: validated [`Dataset`] -> encoded exposition bodies, once per load.
//! Families are sorted by name and series by label values, so output is deterministic.

use std::cmp::Ordering;
use std::sync::Arc;

use crate::dataset::{Dataset, Metric, Series};
use crate::encode::{Encoder, Format, Kind};

/// The dataset's part of `/metrics` in one format (OpenMetrics without its `# EOF`).
pub fn render(dataset: &Dataset, format: Format) -> Vec<u8> {
    let mut out = Vec::with_capacity(estimate(dataset));
    let mut enc = Encoder {
        format,
        out: &mut out,
    };
    let prefix = &dataset.info.prefix;

    enum Fam<'a> {
        DatasetInfo,
        Published,
        Sources,
        Label(usize),
        Metric(&'a Metric),
        Expected(i64),
        Overdue(i64),
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
                enc.family(
                    name,
                    &format!(
                        "Dataset served by this exporter: {}, published by {} on {}.",
                        info.title, info.publisher, info.published
                    ),
                    Kind::Info,
                    None,
                );
                enc.sample(
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
                enc.family(name, &format!("Publication date of the latest figures of the dataset {} (00:00 UTC), as a Unix timestamp.", info.name), Kind::Gauge, Some("seconds"));
                enc.sample(
                    name,
                    [("dataset", info.name.as_str())],
                    info.published_timestamp as f64,
                );
            }
            Fam::Sources => {
                enc.family(name, "Publications the figures of this dataset are taken from; `source` is the id samples cite.", Kind::Info, None);
                let mut sources: Vec<_> = dataset.sources.iter().collect();
                sources.sort_by(|a, b| a.id.cmp(&b.id));
                for s in sources {
                    enc.sample(
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
                enc.family(name, &help, Kind::Info, None);
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
                    enc.sample(name, order.iter().map(|&i| (key(i), val(i))), 1.0);
                }
            }
            Fam::Metric(m) => write_metric(&mut enc, m),
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
                enc.family(name, &format!("When the figures of the next {} of dataset {} are {what}: {when} this Unix timestamp, from the release calendar in the config.", r.period_label, info.name), Kind::Gauge, Some("seconds"));
                let period = r.next_period.to_string();
                let mut labels = [
                    ("dataset", info.name.as_str()),
                    (r.period_label.as_str(), period.as_str()),
                ];
                labels.sort_by(|a, b| a.0.cmp(b.0));
                enc.sample(name, labels, *t as f64);
            }
        }
    }
    out
}

fn write_metric(enc: &mut Encoder, m: &Metric) {
    enc.family(&m.name, &m.help, Kind::Gauge, m.unit.base());
    // Labels are written sorted by name, series sorted by their values in that order.
    let mut perm: Vec<usize> = (0..m.label_names.len()).collect();
    perm.sort_by(|a, b| m.label_names[*a].cmp(&m.label_names[*b]));
    let mut order: Vec<&Series> = m.series.iter().collect();
    order.sort_by(|a, b| cmp_labels(&perm, &a.labels, &b.labels));
    for s in order {
        enc.sample(
            &m.name,
            perm.iter()
                .map(|&i| (m.label_names[i].as_str(), &*s.labels[i])),
            s.value,
        );
    }
}

fn cmp_labels(perm: &[usize], a: &[Arc<str>], b: &[Arc<str>]) -> Ordering {
    perm.iter()
        .map(|&i| a[i].cmp(&b[i]))
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}

fn estimate(d: &Dataset) -> usize {
    d.metrics
        .iter()
        .chain(&d.derived)
        .map(|m| {
            (m.name.len() + 16 + m.label_names.iter().map(|l| l.len() + 8).sum::<usize>())
                * m.series.len()
        })
        .sum::<usize>()
        + 4096
}
