//! Stage 3 of the pipeline: validated [`Dataset`] -> encoded exposition, once per load.
//! Families are sorted by name and series by label values, so output is deterministic.
//!
//! Sample lines are the same in both formats; only the metadata lines differ. So the text body
//! is written once, and the OpenMetrics body is its sample ranges with OpenMetrics metadata in
//! between: a dataset costs one body of memory, not two.

use std::ops::Range;

use crate::dataset::{Dataset, Metric};
use crate::expose::encode::{Encoder, Format, Kind};

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

/// A family of the exposition and where its samples come from.
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

/// Below this many series a dataset is rendered on one thread: starting threads would cost
/// more than they save.
const PARALLEL_FROM: usize = 100_000;

/// One thread's share of the exposition: families in order, the first possibly the rest of a
/// family the previous share began (its samples from `from`, without its metadata).
struct Share {
    /// (index in the families, first series, end of series or `usize::MAX`).
    items: Vec<(usize, usize, usize)>,
}

/// Renders the dataset, a large one on every core.
pub fn render(dataset: &Dataset) -> Rendered {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    render_on(dataset, threads)
}

/// [`render`] on at most `threads` threads.
fn render_on(dataset: &Dataset, threads: usize) -> Rendered {
    let fams = families(dataset);
    let weight = |f: &Fam| match f {
        Fam::Metric(m) | Fam::Status(m) => m.len(),
        _ => 1,
    };
    let total: usize = fams.iter().map(|(_, f)| weight(f)).sum();
    if total < PARALLEL_FROM || threads < 2 {
        let mut out = Rendered {
            text: Vec::with_capacity(estimate(dataset)),
            families: Vec::new(),
        };
        let all = (0..fams.len()).map(|i| (i, 0, usize::MAX)).collect();
        render_share(dataset, &fams, &Share { items: all }, &mut out);
        return out;
    }
    // Contiguous shares of about equal series counts; a large metric is cut between series.
    let per = total.div_ceil(threads);
    let mut shares = vec![Share { items: Vec::new() }];
    let mut filled = 0;
    for (i, (_, f)) in fams.iter().enumerate() {
        let (n, cuttable) = match f {
            Fam::Metric(m) => (m.len(), true),
            f => (weight(f), false),
        };
        let mut from = 0;
        while cuttable && filled + (n - from) > per && shares.len() < threads {
            let to = from + (per - filled);
            shares
                .last_mut()
                .expect("one share")
                .items
                .push((i, from, to));
            shares.push(Share { items: Vec::new() });
            filled = 0;
            from = to;
        }
        shares
            .last_mut()
            .expect("one share")
            .items
            .push((i, from, usize::MAX));
        filled += n - from;
        if filled >= per && shares.len() < threads && !cuttable {
            shares.push(Share { items: Vec::new() });
            filled = 0;
        }
    }
    let size = estimate(dataset) / shares.len() + 4096;
    let parts: Vec<(Rendered, usize)> = std::thread::scope(|s| {
        let handles: Vec<_> = shares
            .iter()
            .map(|share| {
                s.spawn(|| {
                    let mut out = Rendered {
                        text: Vec::with_capacity(size),
                        families: Vec::new(),
                    };
                    let lead = render_share(dataset, &fams, share, &mut out);
                    (out, lead)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("rendering does not panic"))
            .collect()
    });
    // Joined in order: a share's leading samples end the family the share before it began.
    let mut parts = parts.into_iter();
    let (mut out, _) = parts.next().expect("one share");
    for (part, lead) in parts {
        let offset = out.text.len();
        if let Some(last) = out.families.last_mut() {
            last.1.end = offset + lead;
        }
        out.text.extend_from_slice(&part.text);
        out.families.extend(
            part.families
                .into_iter()
                .map(|(meta, r)| (meta, r.start + offset..r.end + offset)),
        );
    }
    out
}

/// Every family of the dataset, sorted by name.
fn families(dataset: &Dataset) -> Vec<(String, Fam<'_>)> {
    let prefix = &dataset.info.prefix;
    let releases = &dataset.metric_releases;
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
    fams
}

/// Writes one share of the families into `out`. Returns how many bytes lead it that belong to
/// the family the share before it began (its samples from a series on).
fn render_share(
    dataset: &Dataset,
    fams: &[(String, Fam)],
    share: &Share,
    out: &mut Rendered,
) -> usize {
    let info = &dataset.info;
    let releases = &dataset.metric_releases;
    let mut lead = 0;
    for (n, &(i, from, to)) in share.items.iter().enumerate() {
        if n == 1 && share.items[0].1 > 0 {
            lead = out.text.len();
        }
        let (name, fam) = &fams[i];
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
                if from == 0 {
                    out.family(&m.name, &m.help, Kind::Gauge, m.unit.suffix());
                }
                // Series are stored sorted; labels are written sorted by name.
                for i in from..to.min(m.len()) {
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
    if share.items.len() == 1 && share.items[0].1 > 0 {
        lead = out.text.len();
    }
    out.close();
    lead
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::{DataFile, DataFiles};
    use std::path::{Path, PathBuf};

    /// Two metrics of `n` series each over `years` periods, from CSV files.
    fn dataset(n: usize) -> Dataset {
        let text = "[dataset]\nname = \"d\"\ntitle = \"t\"\npublisher = \"p\"\nsource_url = \"u\"\npublished = \"2024-01-01\"\nmetric_prefix = \"p_\"\n\n[dataset.period]\nlabel = \"year\"\n\n[[metric]]\nname = \"a\"\nunit = \"count\"\nhelp = \"h\"\nlabels = [\"k\", \"year\"]\nsamples_file = \"a.csv\"\n\n[[metric]]\nname = \"b\"\nunit = \"percent\"\nhelp = \"h\"\nlabels = [\"k\", \"year\"]\nsamples_file = \"b.csv\"\n";
        let mut files = DataFiles::new();
        for f in ["a.csv", "b.csv"] {
            let mut csv = String::from("k,year,value\n");
            for i in 0..n / 2 {
                for y in [2023, 2024] {
                    csv.push_str(&format!("k{i},{y},{}\n", (i * 7 + y) % 100));
                }
            }
            files.insert(
                f.to_string(),
                DataFile {
                    path: PathBuf::from(f),
                    text: Ok(csv),
                },
            );
        }
        let path = Path::new("c.toml");
        let config = crate::config::parse(path, text).unwrap();
        crate::dataset::build(path, text, &config, &files).unwrap()
    }

    #[test]
    fn shares_rendered_apart_join_into_the_same_exposition() {
        let d = dataset(PARALLEL_FROM);
        let one = render_on(&d, 1);
        for threads in [2, 3, 8] {
            let many = render_on(&d, threads);
            assert!(many.text == one.text, "{threads} threads: another text");
            assert_eq!(many.families.len(), one.families.len());
            for (a, b) in many.families.iter().zip(&one.families) {
                assert_eq!(a.1, b.1, "{threads} threads: a family's samples moved");
                assert_eq!(a.0, b.0);
            }
        }
        // Every family's samples are where its name is.
        let text = std::str::from_utf8(&one.text).unwrap();
        for (meta, r) in &one.families {
            let meta = std::str::from_utf8(meta).unwrap();
            let name = meta.split_whitespace().nth(2).unwrap();
            let samples = &text[r.clone()];
            assert!(samples.lines().all(|l| l.starts_with(name)), "{name}");
        }
    }
}
