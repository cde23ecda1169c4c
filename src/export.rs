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
//! Two outputs, one writer ([`crate::encode::Encoder`]):
//! - OpenMetrics with timestamps in seconds and `# EOF`, for
//!   `promtool tsdb create-blocks-from openmetrics`;
//! - the text format with timestamps in milliseconds, for VictoriaMetrics'
//!   `/api/v1/import/prometheus` (and any other importer of the text format).

use crate::calendar::Period;
use crate::dataset::{Dataset, Metric};
use crate::encode::{Encoder, Format, Kind};

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
    // (family name, metric, whether the family is the metric's status flags)
    let mut families: Vec<(String, &Metric, bool)> = Vec::new();
    for m in &dataset.metrics {
        if m.cadence.is_none() || !m.label_names.iter().any(|l| l == period_label) {
            continue;
        }
        families.push((m.name.clone(), m, false));
        if m.has_status() {
            families.push((m.status_family(), m, true));
        }
    }
    families.sort_by(|a, b| a.0.cmp(&b.0));

    let mut summary = Summary::default();
    let mut enc = Encoder { format, out };
    for (name, m, status) in &families {
        let Some(pi) = m.label_names.iter().position(|l| l == period_label) else {
            continue;
        };
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
        if *status {
            enc.family(name, &crate::render::status_help(m), Kind::Info, None);
        } else {
            enc.family(name, &m.help, Kind::Gauge, m.unit.suffix());
        }
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
            let at = Some(period_timestamp(*period));
            if *status {
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
