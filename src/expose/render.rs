//! Stage 3 of the pipeline: validated [`Dataset`] -> encoded exposition, once per load.
//! Families are sorted by name and series by label values, so output is deterministic.
//!
//! Sample lines are the same in both formats; only the metadata lines differ. So the text body
//! is written once, and the OpenMetrics body is its sample ranges with OpenMetrics metadata in
//! between: a dataset costs one body of memory, not two.

use std::ops::Range;

use crate::dataset::families::{Family, Series};
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
    let fams = &dataset.families;
    let weight = |f: &Family| series_of(dataset, f).map_or(1, Metric::len);
    let total: usize = fams.iter().map(weight).sum();
    if total < PARALLEL_FROM || threads < 2 {
        let mut out = Rendered {
            text: Vec::with_capacity(estimate(dataset)),
            families: Vec::new(),
        };
        let all = (0..fams.len()).map(|i| (i, 0, usize::MAX)).collect();
        render_share(dataset, &Share { items: all }, &mut out);
        return out;
    }
    // Contiguous shares of about equal series counts; a large metric is cut between series.
    let per = total.div_ceil(threads);
    let mut shares = vec![Share { items: Vec::new() }];
    let mut filled = 0;
    for (i, f) in fams.iter().enumerate() {
        // A status family's samples are its flagged series: not cut, as they are not indexed.
        let (n, cuttable) = (weight(f), !matches!(f.series, Series::Status(_)));
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
                    let lead = render_share(dataset, share, &mut out);
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

/// The type a family is written as: an info metric, else a gauge.
pub(crate) fn encoded_as(f: &Family) -> Kind {
    if f.kind.is_info() {
        Kind::Info
    } else {
        Kind::Gauge
    }
}

/// The table of series a family's samples come from: a declared or derived metric, a table
/// the list made, or (for status flags) the metric whose flags they are.
fn series_of<'d>(d: &'d Dataset, f: &Family) -> Option<&'d Metric> {
    match f.series {
        Series::Metric(i) | Series::Status(i) => d.metrics.get(i),
        Series::Derived(j) => d.derived.get(j),
        Series::Table(t) => d.tables.get(t),
    }
}

/// Writes one share of the families into `out`. Returns how many bytes lead it that belong to
/// the family the share before it began (its samples from a series on).
fn render_share(dataset: &Dataset, share: &Share, out: &mut Rendered) -> usize {
    let mut lead = 0;
    for (n, &(i, from, to)) in share.items.iter().enumerate() {
        if n == 1 && share.items[0].1 > 0 {
            lead = out.text.len();
        }
        let f = &dataset.families[i];
        if from == 0 {
            out.family(&f.name, &f.help, encoded_as(f), f.unit.as_deref());
        }
        let Some(m) = series_of(dataset, f) else {
            continue;
        };
        match f.series {
            Series::Status(_) => status_samples(dataset, &f.name, m, out),
            _ => samples(dataset, &f.name, m, from..to.min(m.len()), out),
        }
    }
    if share.items.len() == 1 && share.items[0].1 > 0 {
        lead = out.text.len();
    }
    out.close();
    lead
}

/// Series `range` of `m` as samples of `name`. Series are stored sorted; labels are written
/// sorted by name.
fn samples(d: &Dataset, name: &str, m: &Metric, range: Range<usize>, out: &mut Rendered) {
    for i in range {
        let ids = m.labels(i);
        let labels = m
            .order
            .iter()
            .map(|&j| (m.label_names[j].as_str(), d.symbol(ids[j])));
        out.sample(name, labels, m.value(i));
    }
}

/// A sample of 1 per series of `m` that has a status flag: its labels, the code as `status`
/// and its meaning as `flag`.
fn status_samples(d: &Dataset, name: &str, m: &Metric, out: &mut Rendered) {
    for i in 0..m.len() {
        let Some(st) = m.status(i) else { continue };
        let code = d.symbol(st);
        let flag = crate::dataset::status_flag(code);
        let ids = m.labels(i);
        let mut labels: Vec<(&str, &str)> = m
            .order
            .iter()
            .map(|&j| (m.label_names[j].as_str(), d.symbol(ids[j])))
            .collect();
        labels.push(("flag", flag.as_str()));
        labels.push(("status", code));
        labels.sort_by(|a, b| a.0.cmp(b.0));
        out.sample(name, labels, 1.0);
    }
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
                    bytes: Ok(csv.into()),
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
