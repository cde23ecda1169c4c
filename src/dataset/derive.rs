//! Series derived along the period label, for every cadence: the latest value and period, the
//! change on the previous period, for semiannual, quarterly, monthly and weekly data the change on
//! the same period a year earlier; and release calendars (when the period after the latest is due).

use rustc_hash::FxHashMap;

use super::{Kind, Metric, PeriodSettings, ReleaseSchedule};
use crate::dataset::calendar::{Cadence, Period};
use crate::dataset::units::{decimal_sub, Unit};

/// The derived metrics, each with the index of the metric it comes from and its kind.
pub(super) fn derive(
    metrics: &[Metric],
    period_label: &str,
    symbols: &[Box<str>],
) -> Vec<(usize, Kind, Metric)> {
    let ranks = super::builder::ranks(symbols);
    let mut periods = Periods {
        symbols,
        parsed: FxHashMap::default(),
    };
    let mut out = Vec::new();
    for (idx, m) in metrics.iter().enumerate() {
        let Some(pi) = m.label_names.iter().position(|l| l == period_label) else {
            continue;
        };
        let Some(cadence) = m.cadence else { continue };
        if m.is_empty() {
            continue;
        }
        let mut d = Derived::new(m, period_label, cadence);
        let order = by_label_set(m, pi, &ranks);
        d.fill(m, pi, cadence, &order, &mut periods);
        out.push((idx, Kind::Latest, d.latest));
        out.push((idx, Kind::LatestPeriod, d.latest_period));
        // A single period has no change to report; an empty family would only confuse.
        if !d.change.is_empty() {
            out.push((idx, Kind::Change, d.change));
        }
        if !d.yoy.is_empty() {
            out.push((idx, Kind::YearOnYear, d.yoy));
        }
    }
    out
}

/// Period label values parsed once, by symbol id.
struct Periods<'s> {
    symbols: &'s [Box<str>],
    parsed: FxHashMap<u32, Period>,
}

impl Periods<'_> {
    fn of(&mut self, id: u32) -> Period {
        let symbols = self.symbols;
        *self.parsed.entry(id).or_insert_with(|| {
            Period::parse(&symbols[id as usize]).expect("period labels are canonical periods")
        })
    }
}

/// The families derived from one metric.
struct Derived {
    latest: Metric,
    latest_period: Metric,
    change: Metric,
    yoy: Metric,
}

impl Derived {
    /// The empty families of metric `m`, named and described after it.
    fn new(m: &Metric, period_label: &str, cadence: Cadence) -> Derived {
        let stem = m.stem().to_string();
        let unit_suffix = m.unit.suffix().map_or(String::new(), |s| format!("_{s}"));
        let names: Vec<String> = m
            .label_names
            .iter()
            .filter(|l| *l != period_label)
            .cloned()
            .collect();
        let new =
            |name: String, help: String, unit: Unit| Metric::new(name, help, unit, names.clone());
        let annual = cadence == Cadence::Annual;
        let period_name = if annual {
            format!("{stem}_latest_{period_label}")
        } else {
            format!("{stem}_latest_{period_label}_start_timestamp_seconds")
        };
        let latest = new(
            format!("{stem}_latest{unit_suffix}"),
            format!("Latest published value of {} per label set: the value at the latest {period_label} that has one (see {period_name}).", m.name),
            m.unit,
        );
        let latest_period = if annual {
            new(
                period_name,
                format!(
                    "Latest {period_label} for which {} has a value, per label set.",
                    m.name
                ),
                Unit::parse("count").expect("known unit"),
            )
        } else {
            new(
                period_name,
                format!("Start of the latest {period_label} ({}) for which {} has a value, per label set, as a Unix timestamp.", cadence.name(), m.name),
                Unit::parse("seconds").expect("known unit"),
            )
        };
        let change = new(
            format!("{stem}_change{unit_suffix}"),
            format!("Change of {} from the previous {period_label} that has a value to the latest, per label set (latest minus previous, in the metric's unit).", m.name),
            m.unit,
        );
        let yoy = new(
            format!("{stem}_year_on_year_change{unit_suffix}"),
            format!("Change of {} from the same {period_label} a year earlier to the latest, per label set (latest minus a year earlier, in the metric's unit; absent when that {period_label} has no value).", m.name),
            m.unit,
        );
        Derived {
            latest,
            latest_period,
            change,
            yoy,
        }
    }

    /// One series per label set of `m` (its series in `order`, each label set's periods
    /// adjacent and in time order): the latest value and period, and the changes.
    fn fill(
        &mut self,
        m: &Metric,
        pi: usize,
        cadence: Cadence,
        order: &[u32],
        periods: &mut Periods,
    ) {
        let annual = cadence == Cadence::Annual;
        let rest: Vec<usize> = m.order.iter().copied().filter(|&j| j != pi).collect();
        let mut rest_ids: Vec<u32> = Vec::with_capacity(rest.len());
        let mut n = 0;
        while n < order.len() {
            let group = m.labels(order[n] as usize);
            let same = |i: u32| rest.iter().all(|&j| m.labels(i as usize)[j] == group[j]);
            let end = n + order[n..].iter().take_while(|&&i| same(i)).count();
            let last = order[end - 1] as usize;
            rest_ids.clear();
            rest_ids.extend(
                m.labels(last)
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != pi)
                    .map(|(_, &id)| id),
            );
            let p = periods.of(m.labels(last)[pi]);
            self.latest.push(&rest_ids, m.value(last), super::NO_STATUS);
            let period_value = if annual {
                p.year() as f64
            } else {
                p.start_timestamp() as f64
            };
            self.latest_period
                .push(&rest_ids, period_value, super::NO_STATUS);
            if end - n >= 2 {
                let prev = order[end - 2] as usize;
                let change = decimal_sub(m.value(last), m.value(prev));
                self.change.push(&rest_ids, change, super::NO_STATUS);
            }
            if cadence.has_year_on_year() {
                let target = p.year_earlier();
                let earlier = order[n..end - 1]
                    .iter()
                    .rev()
                    .map(|&i| i as usize)
                    .find(|&i| periods.of(m.labels(i)[pi]) == target);
                if let Some(e) = earlier {
                    let change = decimal_sub(m.value(last), m.value(e));
                    self.yoy.push(&rest_ids, change, super::NO_STATUS);
                }
            }
            n = end;
        }
    }
}

/// The series of `m` ordered by their labels other than the period, then by the period.
fn by_label_set(m: &Metric, pi: usize, ranks: &[u32]) -> Vec<u32> {
    let rest: Vec<usize> = m.order.iter().copied().filter(|&j| j != pi).collect();
    let mut order: Vec<u32> = (0..m.len() as u32).collect();
    // Series are sorted by label name order; when the period label sorts last (`year`
    // among `sector`, `size`), each label set's periods are already adjacent and in order
    // (canonical period forms sort as text in time order).
    if m.order.last() != Some(&pi) {
        let key = |i: u32| {
            let l = m.labels(i as usize);
            rest.iter()
                .map(|&j| ranks[l[j] as usize])
                .chain(std::iter::once(ranks[l[pi] as usize]))
                .collect::<Vec<_>>()
        };
        order.sort_by_cached_key(|&i| key(i));
    }
    order
}

/// The latest period of a metric over all its series.
fn latest_period(m: &Metric, period_label: &str, symbols: &[Box<str>]) -> Option<Period> {
    let j = m.label_names.iter().position(|l| l == period_label)?;
    m.cadence?;
    let mut best: Option<u32> = None;
    for i in 0..m.len() {
        let id = m.labels(i)[j];
        if best.is_none_or(|b| symbols[id as usize] > symbols[b as usize]) {
            best = Some(id);
        }
    }
    Period::parse(&symbols[best? as usize])
}

fn schedule(
    latest: Period,
    label: &str,
    expected: Option<i64>,
    overdue: Option<i64>,
) -> ReleaseSchedule {
    let next = latest.next();
    let end = next.end_timestamp();
    ReleaseSchedule {
        period_label: label.to_string(),
        next_period: next,
        expected_timestamp: expected.map(|d| end + d * 86_400),
        overdue_timestamp: overdue.map(|d| end + d * 86_400),
    }
}

/// The dataset's calendar: the period after the latest of the metrics of its cadence (or of
/// the one cadence all metrics share, when the dataset names none).
pub(super) fn dataset_release(
    metrics: &[Metric],
    symbols: &[Box<str>],
    p: &PeriodSettings,
) -> Option<ReleaseSchedule> {
    if p.expected_lag_days.is_none() && p.overdue_lag_days.is_none() {
        return None;
    }
    let cadence = match p.cadence {
        Some(c) => c,
        None => {
            let mut cs = metrics.iter().filter_map(|m| m.cadence);
            let first = cs.next()?;
            if cs.any(|c| c != first) {
                return None;
            }
            first
        }
    };
    let latest = metrics
        .iter()
        .filter(|m| m.cadence == Some(cadence))
        .filter_map(|m| latest_period(m, &p.label, symbols))
        .max()?;
    Some(schedule(
        latest,
        &p.label,
        p.expected_lag_days,
        p.overdue_lag_days,
    ))
}

/// One metric's own calendar.
pub(super) fn release_of(
    m: &Metric,
    label: &str,
    symbols: &[Box<str>],
    expected: Option<i64>,
    overdue: Option<i64>,
) -> Option<ReleaseSchedule> {
    if expected.is_none() && overdue.is_none() {
        return None;
    }
    let latest = latest_period(m, label, symbols)?;
    Some(schedule(latest, label, expected, overdue))
}
