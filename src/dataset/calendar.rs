//! Civil dates and reporting periods. A period is read in any form publishers write
//! (`2024`, `2024-H1`, `2024-S1`, `2024-Q1`, `2024Q1`, `2024-01`, `2024-M01`, `2024M01`,
//! `2024-W05`, `2024-01-18`) and exposed in one canonical form per cadence (`2024`, `2024-H1`,
//! `2024-Q1`, `2024-01`, `2024-W05`, `2024-01-18`), which sorts as text in time order within a
//! cadence. Weeks are ISO 8601 weeks: Monday to Sunday, numbered within the ISO year whose
//! week 1 holds 4 January.

use std::fmt;

/// How often a series has a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cadence {
    Annual,
    Semiannual,
    Quarterly,
    Monthly,
    Weekly,
    Daily,
}

impl Cadence {
    pub const NAMES: &'static [&'static str] = &[
        "annual",
        "semiannual",
        "quarterly",
        "monthly",
        "weekly",
        "daily",
    ];

    pub fn parse(s: &str) -> Option<Cadence> {
        Some(match s {
            "annual" => Cadence::Annual,
            "semiannual" => Cadence::Semiannual,
            "quarterly" => Cadence::Quarterly,
            "monthly" => Cadence::Monthly,
            "weekly" => Cadence::Weekly,
            "daily" => Cadence::Daily,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Cadence::Annual => "annual",
            Cadence::Semiannual => "semiannual",
            Cadence::Quarterly => "quarterly",
            Cadence::Monthly => "monthly",
            Cadence::Weekly => "weekly",
            Cadence::Daily => "daily",
        }
    }

    /// How the canonical form of a period of this cadence looks, for messages.
    pub fn form(self) -> &'static str {
        match self {
            Cadence::Annual => "YYYY",
            Cadence::Semiannual => "YYYY-Hn",
            Cadence::Quarterly => "YYYY-Qn",
            Cadence::Monthly => "YYYY-MM",
            Cadence::Weekly => "YYYY-Www",
            Cadence::Daily => "YYYY-MM-DD",
        }
    }

    /// Periods per year, or None for weekly and daily (not a whole number: 52 or 53 ISO
    /// weeks, 365 or 366 days).
    pub fn per_year(self) -> Option<u32> {
        match self {
            Cadence::Annual => Some(1),
            Cadence::Semiannual => Some(2),
            Cadence::Quarterly => Some(4),
            Cadence::Monthly => Some(12),
            Cadence::Weekly | Cadence::Daily => None,
        }
    }

    /// Whether a year-on-year change is derived: for every cadence between annual (where it
    /// is the change) and daily (where the same day a year earlier is often no working day).
    pub fn has_year_on_year(self) -> bool {
        !matches!(self, Cadence::Annual | Cadence::Daily)
    }
}

/// A reporting period: a year, a half-year, a quarter, a month, an ISO week (in its ISO
/// year) or a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Period {
    Year(i32),
    Half(i32, u8),
    Quarter(i32, u8),
    Month(i32, u8),
    Week(i32, u8),
    Day(i32, u8, u8),
}

/// The forms [`Period::parse`] reads, for messages.
pub const PERIOD_FORMS: &str =
    "YYYY, YYYY-Hn, YYYY-Sn, YYYY-Qn, YYYYQn, YYYY-MM, YYYY-Mmm, YYYYMmm, YYYY-Www or YYYY-MM-DD";

impl Period {
    /// Reads a period in any of [`PERIOD_FORMS`]; None for anything else (including a month
    /// 13 or a 30 February).
    ///
    /// ```
    /// use indicator_exporter::dataset::calendar::Period;
    /// assert_eq!(Period::parse("1997Q1").unwrap().to_string(), "1997-Q1");
    /// assert_eq!(Period::parse("2025-M01").unwrap().to_string(), "2025-01");
    /// assert_eq!(Period::parse("2024S2").unwrap().to_string(), "2024-H2");
    /// assert_eq!(Period::parse("2020W53").unwrap().to_string(), "2020-W53");
    /// assert!(Period::parse("2024-13").is_none());
    /// assert!(Period::parse("2021-W53").is_none());
    /// ```
    pub fn parse(s: &str) -> Option<Period> {
        let b = s.as_bytes();
        if b.len() < 4 || !b[..4].iter().all(u8::is_ascii_digit) {
            return None;
        }
        let year: i32 = s[..4].parse().ok()?;
        let rest = &s[4..];
        let num = |t: &str, width: usize| -> Option<u32> {
            (t.len() == width && t.bytes().all(|c| c.is_ascii_digit()))
                .then(|| t.parse().ok())
                .flatten()
        };
        let p = if rest.is_empty() {
            Period::Year(year)
        } else if let Some(h) = ["-H", "H", "-S", "S"]
            .iter()
            .find_map(|f| rest.strip_prefix(f))
        {
            let h = num(h, 1)?;
            if !(1..=2).contains(&h) {
                return None;
            }
            Period::Half(year, h as u8)
        } else if let Some(w) = rest.strip_prefix("-W").or_else(|| rest.strip_prefix('W')) {
            let w = num(w, 2)?;
            if w < 1 || w > iso_weeks(year as i64) as u32 {
                return None;
            }
            Period::Week(year, w as u8)
        } else if let Some(q) = rest.strip_prefix("-Q").or_else(|| rest.strip_prefix('Q')) {
            let q = num(q, 1)?;
            if !(1..=4).contains(&q) {
                return None;
            }
            Period::Quarter(year, q as u8)
        } else if let Some(m) = rest.strip_prefix("-M").or_else(|| rest.strip_prefix('M')) {
            Period::Month(year, month(num(m, 2)?)?)
        } else if let Some(md) = rest.strip_prefix('-') {
            match md.split_once('-') {
                None => Period::Month(year, month(num(md, 2)?)?),
                Some((m, d)) => {
                    let m = month(num(m, 2)?)?;
                    let d = num(d, 2)?;
                    if d < 1 || d > days_in_month(year as i64, m as i64) as u32 {
                        return None;
                    }
                    Period::Day(year, m, d as u8)
                }
            }
        } else {
            return None;
        };
        Some(p)
    }

    pub fn cadence(self) -> Cadence {
        match self {
            Period::Year(_) => Cadence::Annual,
            Period::Half(..) => Cadence::Semiannual,
            Period::Quarter(..) => Cadence::Quarterly,
            Period::Month(..) => Cadence::Monthly,
            Period::Week(..) => Cadence::Weekly,
            Period::Day(..) => Cadence::Daily,
        }
    }

    /// The year the period belongs to (for a week, its ISO year).
    pub fn year(self) -> i32 {
        match self {
            Period::Year(y)
            | Period::Half(y, _)
            | Period::Quarter(y, _)
            | Period::Month(y, _)
            | Period::Week(y, _)
            | Period::Day(y, ..) => y,
        }
    }

    /// First day of the period, in days since 1970-01-01.
    fn first_day(self) -> i64 {
        match self {
            Period::Year(y) => days_from_civil(y as i64, 1, 1),
            Period::Half(y, h) => days_from_civil(y as i64, (h as i64 - 1) * 6 + 1, 1),
            Period::Quarter(y, q) => days_from_civil(y as i64, (q as i64 - 1) * 3 + 1, 1),
            Period::Month(y, m) => days_from_civil(y as i64, m as i64, 1),
            Period::Week(y, w) => iso_week_one(y as i64) + (w as i64 - 1) * 7,
            Period::Day(y, m, d) => days_from_civil(y as i64, m as i64, d as i64),
        }
    }

    /// Start of the period, 00:00 UTC, in seconds since the epoch.
    pub fn start_timestamp(self) -> i64 {
        self.first_day() * 86_400
    }

    /// A position along the time axis: consecutive periods of one cadence are one apart.
    pub fn ordinal(self) -> i64 {
        match self {
            Period::Year(y) => y as i64,
            Period::Half(y, h) => y as i64 * 2 + h as i64 - 1,
            Period::Quarter(y, q) => y as i64 * 4 + q as i64 - 1,
            Period::Month(y, m) => y as i64 * 12 + m as i64 - 1,
            // Mondays are 7 days apart, and 1970-01-05 was one.
            Period::Week(..) => (self.first_day() - 4).div_euclid(7),
            Period::Day(..) => self.first_day(),
        }
    }

    /// End of the period (the start of the next one), in seconds since the epoch.
    pub fn end_timestamp(self) -> i64 {
        self.next().start_timestamp()
    }

    /// The period after this one, of the same cadence.
    pub fn next(self) -> Period {
        self.offset(1)
    }

    /// The period `n` periods later (earlier when negative), of the same cadence.
    pub fn offset(self, n: i64) -> Period {
        match self {
            Period::Year(y) => Period::Year((y as i64 + n) as i32),
            Period::Half(y, h) => {
                let i = y as i64 * 2 + (h as i64 - 1) + n;
                Period::Half(i.div_euclid(2) as i32, (i.rem_euclid(2) + 1) as u8)
            }
            Period::Quarter(y, q) => {
                let i = y as i64 * 4 + (q as i64 - 1) + n;
                Period::Quarter(i.div_euclid(4) as i32, (i.rem_euclid(4) + 1) as u8)
            }
            Period::Month(y, m) => {
                let i = y as i64 * 12 + (m as i64 - 1) + n;
                Period::Month(i.div_euclid(12) as i32, (i.rem_euclid(12) + 1) as u8)
            }
            Period::Week(..) => iso_week_of(self.first_day() + 7 * n),
            Period::Day(y, m, d) => {
                let (y, m, d) = civil_from_days(days_from_civil(y as i64, m as i64, d as i64) + n);
                Period::Day(y as i32, m as u8, d as u8)
            }
        }
    }

    /// The same period a year earlier (29 February falls back to 28 February, week 53 to
    /// week 52 of an ISO year that has no week 53).
    pub fn year_earlier(self) -> Period {
        match self {
            Period::Day(y, m, d) => {
                let d = d.min(days_in_month(y as i64 - 1, m as i64) as u8);
                Period::Day(y - 1, m, d)
            }
            Period::Week(y, w) => Period::Week(y - 1, w.min(iso_weeks(y as i64 - 1) as u8)),
            p => p.offset(-(p.cadence().per_year().expect("a whole number") as i64)),
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Period::Year(y) => write!(f, "{y:04}"),
            Period::Half(y, h) => write!(f, "{y:04}-H{h}"),
            Period::Quarter(y, q) => write!(f, "{y:04}-Q{q}"),
            Period::Month(y, m) => write!(f, "{y:04}-{m:02}"),
            Period::Week(y, w) => write!(f, "{y:04}-W{w:02}"),
            Period::Day(y, m, d) => write!(f, "{y:04}-{m:02}-{d:02}"),
        }
    }
}

/// The Monday of ISO week 1 of ISO year `y` (the week holding 4 January), in days since
/// 1970-01-01.
fn iso_week_one(y: i64) -> i64 {
    let jan4 = days_from_civil(y, 1, 4);
    // 1970-01-01 was a Thursday: day 0 is weekday 3 counted from Monday.
    jan4 - (jan4 + 3).rem_euclid(7)
}

/// The number of ISO weeks of ISO year `y`: 52 or 53.
fn iso_weeks(y: i64) -> i64 {
    (iso_week_one(y + 1) - iso_week_one(y)) / 7
}

/// The ISO week holding day `z` (days since 1970-01-01): the ISO year is the year of that
/// week's Thursday.
fn iso_week_of(z: i64) -> Period {
    let thursday = z - (z + 3).rem_euclid(7) + 3;
    let (y, ..) = civil_from_days(thursday);
    let w = (thursday - iso_week_one(y)) / 7 + 1;
    Period::Week(y as i32, w as u8)
}

fn month(m: u32) -> Option<u8> {
    (1..=12).contains(&m).then_some(m as u8)
}

pub fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01 (the inverse of [`days_from_civil`]).
/// `YYYY-MM-DDTHH:MM:SSZ` of Unix seconds `t`.
pub fn rfc3339(t: i64) -> String {
    let (days, rem) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> Option<String> {
        Period::parse(s).map(|p| p.to_string())
    }

    #[test]
    fn every_publisher_form_reads_to_one_canonical_form() {
        for (input, want) in [
            ("2002", "2002"),
            ("2023-Q1", "2023-Q1"),
            ("1997Q1", "1997-Q1"),
            ("2024-01", "2024-01"),
            ("2025-M01", "2025-01"),
            ("2025M12", "2025-12"),
            ("2013-01-18", "2013-01-18"),
            ("2024-02-29", "2024-02-29"),
            ("2024-H1", "2024-H1"),
            ("2024H2", "2024-H2"),
            ("2024-S1", "2024-H1"),
            ("2024S2", "2024-H2"),
            ("2024-W05", "2024-W05"),
            ("2024W05", "2024-W05"),
            ("2020-W53", "2020-W53"),
        ] {
            assert_eq!(canon(input).as_deref(), Some(want), "{input}");
        }
        for bad in [
            "",
            "24",
            "20245",
            "2024-Q5",
            "2024-Q0",
            "2024-13",
            "2024-00",
            "2023-02-29",
            "2024-1",
            "2024-M1",
            "2024-W1",
            "2024-W00",
            "2021-W53",
            "2024-W54",
            "2024-H0",
            "2024-H3",
            "2024-S3",
            "2024-H01",
            "2024-B1",
            "2024 ",
            "abcd",
            "2024-01-32",
            "+2024",
        ] {
            assert_eq!(canon(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn canonical_forms_sort_in_time_order() {
        let mut v = ["2024-Q2", "2023-Q4", "2024-Q1"]
            .map(|s| Period::parse(s).unwrap().to_string())
            .to_vec();
        v.sort();
        assert_eq!(v, ["2023-Q4", "2024-Q1", "2024-Q2"]);
        // Weeks and half-years too: their text order is their start order.
        for forms in [
            &["2024-W10", "2023-W52", "2024-W02", "2020-W53", "2024-W01"][..],
            &["2024-S2", "2023H2", "2024-H1", "1999-H2"][..],
        ] {
            let mut by_text: Vec<Period> =
                forms.iter().map(|s| Period::parse(s).unwrap()).collect();
            let mut by_time = by_text.clone();
            by_text.sort_by_key(|p| p.to_string());
            by_time.sort_by_key(|p| p.start_timestamp());
            assert_eq!(by_text, by_time);
        }
    }

    #[test]
    fn iso_weeks_start_on_the_monday_of_the_week_holding_4_january() {
        let p = |s| Period::parse(s).unwrap();
        let day = |s| p(s).start_timestamp();
        assert_eq!(day("2021-W01"), day("2021-01-04"));
        assert_eq!(day("2026-W01"), day("2025-12-29"));
        assert_eq!(day("2020-W53"), day("2020-12-28"));
        assert_eq!(day("2024-W05"), day("2024-01-29"));
        assert_eq!(p("2020-W53").end_timestamp(), day("2021-W01"));
        assert_eq!(p("2024-W52").end_timestamp(), day("2025-W01"));
        // ISO years with 53 weeks: Thursday 1 January, or Wednesday in a leap year.
        for (y, n) in [
            (2015, 53),
            (2020, 53),
            (2021, 52),
            (2026, 53),
            (2032, 53),
            (2024, 52),
        ] {
            assert_eq!(iso_weeks(y), n, "{y}");
        }
    }

    #[test]
    fn weeks_and_half_years_step_across_year_ends() {
        let p = |s| Period::parse(s).unwrap();
        assert_eq!(p("2020-W53").next(), p("2021-W01"));
        assert_eq!(p("2021-W52").next(), p("2022-W01"));
        assert_eq!(p("2021-W01").offset(-1), p("2020-W53"));
        assert_eq!(p("2024-W01").offset(-2), p("2023-W51"));
        assert_eq!(p("2024-W05").offset(52), p("2025-W05"));
        assert_eq!(p("2020-W10").offset(-53), p("2019-W09"));
        assert_eq!(p("2024-H2").next(), p("2025-H1"));
        assert_eq!(p("2024-H1").offset(-1), p("2023-H2"));
        assert_eq!(p("2024-H1").offset(-4), p("2022-H1"));
        // Consecutive periods are one apart on the time axis, across year ends too.
        for s in ["2020-W52", "2020-W53", "2024-H2", "2024-12-31", "2024-Q4"] {
            assert_eq!(p(s).next().ordinal(), p(s).ordinal() + 1, "{s}");
        }
        assert_eq!(p("2024-H2").year_earlier(), p("2023-H2"));
        assert_eq!(p("2024-W05").year_earlier(), p("2023-W05"));
        assert_eq!(p("2021-W01").year_earlier(), p("2020-W01"));
        assert_eq!(p("2021-W52").year_earlier(), p("2020-W52"));
        assert_eq!(p("2026-W53").year_earlier(), p("2025-W52"));
        assert_eq!(
            p("2024-H1").start_timestamp(),
            p("2024-01-01").start_timestamp()
        );
        assert_eq!(
            p("2024-H2").start_timestamp(),
            p("2024-07-01").start_timestamp()
        );
    }

    #[test]
    fn offsets_cross_year_boundaries() {
        let p = |s| Period::parse(s).unwrap();
        assert_eq!(p("2024-Q4").next(), p("2025-Q1"));
        assert_eq!(p("2024-01").offset(-1), p("2023-12"));
        assert_eq!(p("2024-12-31").next(), p("2025-01-01"));
        assert_eq!(p("2024-Q1").year_earlier(), p("2023-Q1"));
        assert_eq!(p("2024-03").year_earlier(), p("2023-03"));
        assert_eq!(p("2024-02-29").year_earlier(), p("2023-02-28"));
        assert_eq!(p("2024").year_earlier(), p("2023"));
    }

    #[test]
    fn timestamps() {
        let p = |s| Period::parse(s).unwrap();
        assert_eq!(p("2025").start_timestamp(), 1_735_689_600);
        assert_eq!(p("2025").end_timestamp(), p("2026").start_timestamp());
        assert_eq!(p("2024-Q4").end_timestamp(), p("2025").start_timestamp());
        assert_eq!(
            p("2024-02").end_timestamp(),
            p("2024-03-01").start_timestamp()
        );
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        for z in [-1000, 0, 11_017, 20_000, 60_000] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
    }
}
