//! Civil dates and reporting periods. A period is read in any form publishers write
//! (`2024`, `2024-Q1`, `2024Q1`, `2024-01`, `2024-M01`, `2024M01`, `2024-01-18`) and exposed in
//! one canonical form per cadence (`2024`, `2024-Q1`, `2024-01`, `2024-01-18`), which sorts as
//! text in time order within a cadence.

use std::fmt;

/// How often a series has a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cadence {
    Annual,
    Quarterly,
    Monthly,
    Daily,
}

impl Cadence {
    pub const NAMES: &'static [&'static str] = &["annual", "quarterly", "monthly", "daily"];

    pub fn parse(s: &str) -> Option<Cadence> {
        Some(match s {
            "annual" => Cadence::Annual,
            "quarterly" => Cadence::Quarterly,
            "monthly" => Cadence::Monthly,
            "daily" => Cadence::Daily,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Cadence::Annual => "annual",
            Cadence::Quarterly => "quarterly",
            Cadence::Monthly => "monthly",
            Cadence::Daily => "daily",
        }
    }

    /// How the canonical form of a period of this cadence looks, for messages.
    pub fn form(self) -> &'static str {
        match self {
            Cadence::Annual => "YYYY",
            Cadence::Quarterly => "YYYY-Qn",
            Cadence::Monthly => "YYYY-MM",
            Cadence::Daily => "YYYY-MM-DD",
        }
    }

    /// Periods per year, or None for daily (not a whole number).
    pub fn per_year(self) -> Option<u32> {
        match self {
            Cadence::Annual => Some(1),
            Cadence::Quarterly => Some(4),
            Cadence::Monthly => Some(12),
            Cadence::Daily => None,
        }
    }
}

/// A reporting period: a year, a quarter, a month or a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Period {
    Year(i32),
    Quarter(i32, u8),
    Month(i32, u8),
    Day(i32, u8, u8),
}

/// The forms [`Period::parse`] reads, for messages.
pub const PERIOD_FORMS: &str = "YYYY, YYYY-Qn, YYYYQn, YYYY-MM, YYYY-Mmm, YYYYMmm or YYYY-MM-DD";

impl Period {
    /// Reads a period in any of [`PERIOD_FORMS`]; None for anything else (including a month
    /// 13 or a 30 February).
    ///
    /// ```
    /// use indicator_exporter::dataset::calendar::Period;
    /// assert_eq!(Period::parse("1997Q1").unwrap().to_string(), "1997-Q1");
    /// assert_eq!(Period::parse("2025-M01").unwrap().to_string(), "2025-01");
    /// assert!(Period::parse("2024-13").is_none());
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
            Period::Quarter(..) => Cadence::Quarterly,
            Period::Month(..) => Cadence::Monthly,
            Period::Day(..) => Cadence::Daily,
        }
    }

    pub fn year(self) -> i32 {
        match self {
            Period::Year(y) | Period::Quarter(y, _) | Period::Month(y, _) | Period::Day(y, ..) => y,
        }
    }

    /// First day of the period as (year, month, day).
    fn first_day(self) -> (i64, i64, i64) {
        match self {
            Period::Year(y) => (y as i64, 1, 1),
            Period::Quarter(y, q) => (y as i64, (q as i64 - 1) * 3 + 1, 1),
            Period::Month(y, m) => (y as i64, m as i64, 1),
            Period::Day(y, m, d) => (y as i64, m as i64, d as i64),
        }
    }

    /// Start of the period, 00:00 UTC, in seconds since the epoch.
    pub fn start_timestamp(self) -> i64 {
        let (y, m, d) = self.first_day();
        days_from_civil(y, m, d) * 86_400
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
            Period::Quarter(y, q) => {
                let i = y as i64 * 4 + (q as i64 - 1) + n;
                Period::Quarter(i.div_euclid(4) as i32, (i.rem_euclid(4) + 1) as u8)
            }
            Period::Month(y, m) => {
                let i = y as i64 * 12 + (m as i64 - 1) + n;
                Period::Month(i.div_euclid(12) as i32, (i.rem_euclid(12) + 1) as u8)
            }
            Period::Day(y, m, d) => {
                let (y, m, d) = civil_from_days(days_from_civil(y as i64, m as i64, d as i64) + n);
                Period::Day(y as i32, m as u8, d as u8)
            }
        }
    }

    /// The same period a year earlier (29 February falls back to 28 February).
    pub fn year_earlier(self) -> Period {
        match self {
            Period::Day(y, m, d) => {
                let d = d.min(days_in_month(y as i64 - 1, m as i64) as u8);
                Period::Day(y - 1, m, d)
            }
            p => p.offset(-(p.cadence().per_year().expect("not daily") as i64)),
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Period::Year(y) => write!(f, "{y:04}"),
            Period::Quarter(y, q) => write!(f, "{y:04}-Q{q}"),
            Period::Month(y, m) => write!(f, "{y:04}-{m:02}"),
            Period::Day(y, m, d) => write!(f, "{y:04}-{m:02}-{d:02}"),
        }
    }
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
            "2024-W01",
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
