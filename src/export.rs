//! History for backfill: every series of the dataset along its period label, as timestamped
//! samples that a time-series database can ingest. `/metrics` serves each period as a label
//! value (`year="2024"`); here the period becomes the sample's time instead, so the series
//! keeps the names and labels it is served with, minus the period label, and draws a line over
//! the periods.
//!
//! The time of a period's sample is the last second of the period (2024 → 2024-12-31
//! 23:59:59 UTC; 2024-Q3 → 2024-09-30 23:59:59 UTC): the figure describes the period as a
//! whole, and its timestamp stays inside it, so `year()` or `month()` of the sample's time give
//! the period back.
//!
//! Two outputs, one writer ([`crate::expose::encode::Encoder`]):
//! - OpenMetrics with timestamps in seconds and `# EOF`, for
//!   `promtool tsdb create-blocks-from openmetrics`;
//! - the text format with timestamps in milliseconds, for VictoriaMetrics'
//!   `/api/v1/import/prometheus` (and any other importer of the text format).

use crate::dataset::calendar::{rfc3339, Period};
use crate::dataset::families::Series;
use crate::dataset::Dataset;
use crate::expose::encode::{Encoder, Format, Kind};
use crate::expose::render::encoded_as;
use crate::state::{State, Vintage};

/// The time given to a period's sample: its last second, in Unix seconds.
pub fn period_timestamp(p: Period) -> i64 {
    p.end_timestamp() - 1
}

/// What an export wrote, for the report on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    pub families: usize,
    pub series: usize,
    pub samples: usize,
    /// Samples of periods that end before 1970: their timestamps are negative, which
    /// time-series databases do not support (`promtool` drops the earliest block of them).
    pub before_1970: usize,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} samples of {} series in {} families",
            self.samples, self.series, self.families
        )
    }
}

/// Writes the history of `dataset` in `format`. Metrics without a period label have no
/// history (they are one figure) and are left out, as are the derived series (latest value,
/// change), which a query computes from the history itself.
pub fn write(dataset: &Dataset, format: Format, out: &mut Vec<u8>) -> Summary {
    let period_label = dataset.period_label.as_str();
    // The families of declared metrics along the period: their values and status flags, in
    // name order, with the index of the period label.
    let families = dataset.families.iter().filter_map(|f| {
        let (Series::Metric(i) | Series::Status(i)) = f.series else {
            return None;
        };
        let m = &dataset.metrics[i];
        m.cadence?;
        let pi = m.label_names.iter().position(|l| l == period_label)?;
        Some((f, m, pi, matches!(f.series, Series::Status(_))))
    });
    let mut summary = Summary::default();
    let mut enc = Encoder { format, out };
    for (f, m, pi, status) in families {
        let name = &f.name;
        // The other labels in written order; series ordered by them, then by period, so each
        // series' samples are contiguous and in time order as OpenMetrics requires.
        let others: Vec<usize> = m.order.iter().copied().filter(|&j| j != pi).collect();
        let mut rows: Vec<(Vec<&str>, Period, usize)> = (0..m.len())
            .filter(|&i| !status || m.status(i).is_some())
            .filter_map(|i| {
                let ids = m.labels(i);
                let period = Period::parse(dataset.symbol(ids[pi]))?;
                let key = others.iter().map(|&j| dataset.symbol(ids[j])).collect();
                Some((key, period, i))
            })
            .collect();
        rows.sort();
        enc.family(name, &f.help, encoded_as(f), f.unit.as_deref());
        summary.families += 1;
        let mut last_key: Option<&Vec<&str>> = None;
        for (key, period, i) in &rows {
            if last_key != Some(key) {
                summary.series += 1;
                last_key = Some(key);
            }
            let labels: Vec<(&str, &str)> = others
                .iter()
                .map(|&j| m.label_names[j].as_str())
                .zip(key.iter().copied())
                .collect();
            let at = period_timestamp(*period);
            if at < 0 {
                summary.before_1970 += 1;
            }
            let at = Some(at);
            if status {
                // As served: the code and its meaning are labels, the value is 1.
                let code = dataset.symbol(m.status(*i).expect("rows filtered on status"));
                let flag = crate::dataset::status_flag(code);
                let mut labels = labels;
                labels.push(("flag", &flag));
                labels.push(("status", code));
                labels.sort_by(|a, b| a.0.cmp(b.0));
                enc.sample_at(name, labels, 1.0, at);
            } else {
                enc.sample_at(name, labels, m.value(*i), at);
            }
            summary.samples += 1;
        }
    }
    if format == Format::OpenMetrics {
        enc.out.extend_from_slice(b"# EOF\n");
    }
    summary
}

/// Writes the revision history kept in `states`: per declared metric a gauge family
/// `NAME_vintage`, each series with the labels it is served with and one sample per vintage
/// at the time it was first seen, so a time-series database shows when each value appeared.
pub fn vintages(states: &[State], format: Format, out: &mut Vec<u8>) -> Summary {
    let mut summary = Summary::default();
    let mut enc = Encoder { format, out };
    for m in states.iter().flat_map(|s| &s.metrics) {
        let name = format!("{}_vintage", m.name);
        let help = format!(
            "Every value each series of {} has had, at the time the exporter first served it.",
            m.name
        );
        enc.family(&name, &help, Kind::Gauge, None);
        summary.families += 1;
        for s in &m.series {
            summary.series += 1;
            let labels = || {
                m.label_names
                    .iter()
                    .map(String::as_str)
                    .zip(s.labels.iter().map(String::as_str))
            };
            for v in in_time_order(&s.vintages) {
                enc.sample_at_ms(&name, labels(), v.value, v.seen_ms);
                summary.samples += 1;
            }
        }
    }
    if format == Format::OpenMetrics {
        enc.out.extend_from_slice(b"# EOF\n");
    }
    summary
}

/// The revision history as CSV, one row per vintage: dataset, metric, the series' labels as
/// served (`a="x",b="y"`), value, when first seen (UTC, and Unix milliseconds), status flag,
/// and the dataset's `published` date at that load.
pub fn vintages_csv(states: &[State], out: &mut Vec<u8>) -> Summary {
    let mut summary = Summary::default();
    let mut w = csv::Writer::from_writer(out);
    let header = [
        "dataset",
        "metric",
        "labels",
        "value",
        "first_seen",
        "first_seen_unix_ms",
        "status",
        "published",
    ];
    let _ = w.write_record(header);
    for state in states {
        for m in &state.metrics {
            summary.families += 1;
            for s in &m.series {
                summary.series += 1;
                let labels = m.text(s);
                for v in in_time_order(&s.vintages) {
                    let mut value = Vec::new();
                    crate::expose::encode::write_value(&mut value, v.value);
                    let seen = format!(
                        "{}.{:03}Z",
                        rfc3339(v.seen_ms.div_euclid(1000)).trim_end_matches('Z'),
                        v.seen_ms.rem_euclid(1000)
                    );
                    let ms = v.seen_ms.to_string();
                    let row = [
                        state.dataset.as_bytes(),
                        m.name.as_bytes(),
                        labels.as_bytes(),
                        &value,
                        seen.as_bytes(),
                        ms.as_bytes(),
                        s.status.as_deref().unwrap_or("").as_bytes(),
                        v.published.as_bytes(),
                    ];
                    let _ = w.write_record(row);
                    summary.samples += 1;
                }
            }
        }
    }
    let _ = w.flush();
    summary
}

/// A series' vintages by time, one per millisecond (the later load's), as a time-series
/// database takes them: a clock set back must not make the export unreadable.
fn in_time_order(vintages: &[Vintage]) -> Vec<&Vintage> {
    let mut v: Vec<&Vintage> = vintages.iter().collect();
    v.sort_by_key(|v| v.seen_ms);
    let mut out: Vec<&Vintage> = Vec::with_capacity(v.len());
    for x in v {
        match out.last_mut() {
            Some(last) if last.seen_ms == x.seen_ms => *last = x,
            _ => out.push(x),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::{build, DataFiles};
    use std::path::Path;

    /// A quarterly dataset whose period label sorts first, written out of order, with a metric
    /// that has no period label.
    const QUARTERLY: &str = r#"
[dataset]
name = "q"
title = "t"
publisher = "p"
source_url = "u"
published = "2025-01-01"
metric_prefix = "q_"
[dataset.period]
label = "a_quarter"
cadence = "quarterly"
[[metric]]
name = "jobs"
unit = "persons"
help = "Jobs \"held\"."
labels = ["geo", "a_quarter"]
samples = [
  { labels = { geo = "FR", a_quarter = "2024Q3" }, value = 7 },
  { labels = { geo = "DE", a_quarter = "2024-Q4" }, value = 5 },
  { labels = { geo = "DE", a_quarter = "2024Q3" }, value = 4 },
  { labels = { geo = "FR", a_quarter = "2025-Q1" }, value = 8 },
]
[[metric]]
name = "area"
unit = "count"
help = "No period."
labels = ["geo"]
samples = [{ labels = { geo = "DE" }, value = 1 }]
"#;

    fn dataset(text: &str) -> Dataset {
        let path = Path::new("q.toml");
        let config = crate::config::parse(path, text).unwrap();
        build(path, text, &config, &DataFiles::new()).unwrap()
    }

    fn export(d: &Dataset, format: Format) -> (String, Summary) {
        let mut out = Vec::new();
        let s = write(d, format, &mut out);
        (String::from_utf8(out).unwrap(), s)
    }

    #[test]
    fn the_last_second_of_each_period() {
        let t = |s: &str| period_timestamp(Period::parse(s).unwrap());
        assert_eq!(t("2024"), 1_735_689_599); // 2024-12-31T23:59:59Z
        assert_eq!(t("2024-Q3"), 1_727_740_799); // 2024-09-30T23:59:59Z
        assert_eq!(t("2024-02"), 1_709_251_199); // 2024-02-29T23:59:59Z
        assert_eq!(t("2024-02-29"), 1_709_251_199);
        assert_eq!(t("1969"), -1);
    }

    #[test]
    fn openmetrics_series_in_time_order_without_the_period_label() {
        let (om, s) = export(&dataset(QUARTERLY), Format::OpenMetrics);
        assert_eq!(
            om,
            "# HELP q_jobs_persons Jobs \\\"held\\\".\n\
             # TYPE q_jobs_persons gauge\n\
             # UNIT q_jobs_persons persons\n\
             q_jobs_persons{geo=\"DE\"} 4 1727740799\n\
             q_jobs_persons{geo=\"DE\"} 5 1735689599\n\
             q_jobs_persons{geo=\"FR\"} 7 1727740799\n\
             q_jobs_persons{geo=\"FR\"} 8 1743465599\n\
             # EOF\n"
        );
        assert_eq!(
            s,
            Summary {
                families: 1,
                series: 2,
                samples: 4,
                before_1970: 0
            }
        );
    }

    #[test]
    fn text_format_has_millisecond_timestamps_and_no_eof() {
        let (text, _) = export(&dataset(QUARTERLY), Format::Text);
        assert_eq!(
            text,
            "# HELP q_jobs_persons Jobs \"held\".\n\
             # TYPE q_jobs_persons gauge\n\
             q_jobs_persons{geo=\"DE\"} 4 1727740799000\n\
             q_jobs_persons{geo=\"DE\"} 5 1735689599000\n\
             q_jobs_persons{geo=\"FR\"} 7 1727740799000\n\
             q_jobs_persons{geo=\"FR\"} 8 1743465599000\n"
        );
    }

    #[test]
    fn status_flags_are_exported_at_their_period() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/formats/json-records.toml");
        let d = crate::reload::load::load(&path).unwrap();
        let (om, s) = export(&d, Format::OpenMetrics);
        assert!(
            om.contains("# TYPE example_employment_observation_status info\nexample_employment_observation_status_info{flag=\"provisional\",region=\"R1\",status=\"P\"} 1 1743465599\n"),
            "{om}"
        );
        assert!(!om.contains(&d.period_label), "{om}");
        // Every served value sample of a metric with periods is exported once.
        let served: usize = d.metrics.iter().map(crate::dataset::Metric::len).sum();
        let flagged: usize = d
            .metrics
            .iter()
            .map(|m| (0..m.len()).filter(|&i| m.status(i).is_some()).count())
            .sum();
        assert_eq!(s.samples, served + flagged);
    }
}
