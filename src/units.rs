//! Units as published and as exposed: Prometheus wants base units, so a published percent is
//! exposed as a 0–1 `_ratio` and 万元 (10,000 yuan) as yuan. Scaling is done in decimal, so
//! 53.3 % becomes exactly `0.533`, never `0.5329999999999999`.

use std::str::FromStr;

use rust_decimal::Decimal;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Ratio,
    Percent,
    Count,
    Yuan,
    TenThousandYuan,
    HundredMillionYuan,
    Seconds,
    Bytes,
}

/// The names accepted in `unit = "…"`, for error messages and docs.
pub const UNIT_NAMES: &[&str] = &[
    "percent",
    "ratio",
    "count",
    "yuan",
    "10k_yuan",
    "100m_yuan",
    "seconds",
    "bytes",
];

impl Unit {
    pub fn parse(s: &str) -> Option<Unit> {
        Some(match s {
            "percent" => Unit::Percent,
            "ratio" => Unit::Ratio,
            "count" => Unit::Count,
            "yuan" => Unit::Yuan,
            "10k_yuan" => Unit::TenThousandYuan,
            "100m_yuan" => Unit::HundredMillionYuan,
            "seconds" => Unit::Seconds,
            "bytes" => Unit::Bytes,
            _ => return None,
        })
    }

    /// The base unit appended to the metric name (and given in OpenMetrics `# UNIT`).
    pub fn base(self) -> Option<&'static str> {
        match self {
            Unit::Ratio | Unit::Percent => Some("ratio"),
            Unit::Count => None,
            Unit::Yuan | Unit::TenThousandYuan | Unit::HundredMillionYuan => Some("yuan"),
            Unit::Seconds => Some("seconds"),
            Unit::Bytes => Some("bytes"),
        }
    }

    /// Power of ten from the published unit to the base unit.
    fn exponent(self) -> i32 {
        match self {
            Unit::Percent => -2,
            Unit::TenThousandYuan => 4,
            Unit::HundredMillionYuan => 8,
            _ => 0,
        }
    }

    /// Converts a published value to the base unit, exactly in decimal.
    ///
    /// ```
    /// use indicator_exporter::units::Unit;
    /// assert_eq!(Unit::Percent.to_base(53.3).to_string(), "0.533"); // not 0.5329999999999999
    /// assert_eq!(Unit::TenThousandYuan.to_base(829.6), 8_296_000.0);
    /// ```
    pub fn to_base(self, published: f64) -> f64 {
        scale_pow10(published, self.exponent())
    }
}

/// `value × 10^exp`, exact in decimal: the shortest decimal form of `value` (`5.33e1`) gets
/// its exponent moved (`5.33e-1`) and is read back as the double nearest to that decimal.
pub fn scale_pow10(value: f64, exp: i32) -> f64 {
    if exp == 0 || !value.is_finite() {
        return value;
    }
    let sci = format!("{value:e}");
    let (mantissa, e) = sci
        .split_once('e')
        .expect("`{:e}` always writes an exponent");
    let e: i32 = e.parse().expect("`{:e}` writes an integer exponent");
    format!("{mantissa}e{}", e + exp)
        .parse()
        .expect("a mantissa and an integer exponent form a float")
}

/// `a - b`, exact in decimal for values that came from published decimals.
pub fn decimal_sub(a: f64, b: f64) -> f64 {
    let parse = |v: f64| Decimal::from_str(&v.to_string()).ok();
    match (parse(a), parse(b)) {
        (Some(x), Some(y)) => x.checked_sub(y).map_or(a - b, to_f64),
        _ => a - b,
    }
}

fn to_f64(d: Decimal) -> f64 {
    // Display of a Decimal is its exact digits; parsing them picks the nearest double.
    d.normalize()
        .to_string()
        .parse()
        .expect("a Decimal always prints as a valid float")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_is_exact() {
        assert_eq!(Unit::Percent.to_base(53.3).to_string(), "0.533");
        assert_eq!(Unit::Percent.to_base(54.0).to_string(), "0.54");
        assert_eq!(Unit::Percent.to_base(8.0).to_string(), "0.08");
        assert_eq!(Unit::Percent.to_base(0.1).to_string(), "0.001");
        assert_ne!((53.3f64 / 100.0).to_string(), "0.533");
    }

    #[test]
    fn ten_thousand_yuan_is_exact() {
        assert_eq!(Unit::TenThousandYuan.to_base(829.6).to_string(), "8296000");
        assert_eq!(
            Unit::HundredMillionYuan.to_base(1.23).to_string(),
            "123000000"
        );
    }

    #[test]
    fn extreme_values_stay_exact() {
        assert_eq!(Unit::TenThousandYuan.to_base(1.5e300), 1.5e304);
        assert_eq!(Unit::Percent.to_base(5e-320), 5e-322);
        assert_eq!(Unit::Count.to_base(1e300), 1e300);
        assert_eq!(Unit::HundredMillionYuan.to_base(1e301), f64::INFINITY);
    }

    #[test]
    fn subtraction_is_exact() {
        assert_eq!(decimal_sub(0.54, 0.533).to_string(), "0.007");
        assert_eq!(decimal_sub(0.533, 0.513).to_string(), "0.02");
        assert_ne!((0.54f64 - 0.533).to_string(), "0.007");
    }
}
