//! Units as published and as exposed: Prometheus wants base units, so a published percent is
//! exposed as a 0–1 `_ratio`, 万元 (10,000 yuan) as yuan and "million euro" as euro. Scaling
//! is done in decimal, so 53.3 % becomes exactly `0.533`, never `0.5329999999999999`.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;

/// What a figure measures, as exposed: the name suffix and OpenMetrics `# UNIT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Base {
    Ratio,
    /// A plain number of things; no suffix.
    Count,
    Persons,
    /// Index points (the base period is in the metric's help).
    Index,
    /// An ISO 4217 currency, lower case (`usd`); `yuan` is kept as its own name.
    Currency([u8; 3]),
    Yuan,
    Seconds,
    Bytes,
}

/// A published unit: the exposed base, and the power of ten from the published figure to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Unit {
    pub base: Base,
    pub exponent: i32,
    /// A share in percent, checked to be within 0–100 (`percent`); `percent_change` is not.
    pub share: bool,
}

/// The unit names accepted in `unit = "…"` besides ISO 4217 codes, for messages and docs.
pub const UNIT_NAMES: &[&str] = &[
    "percent",
    "percent_change",
    "ratio",
    "count",
    "persons",
    "index",
    "yuan",
    "10k_yuan",
    "100m_yuan",
    "seconds",
    "bytes",
];

/// Active ISO 4217 codes (plus XDR, the IMF's special drawing right).
const CURRENCIES: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT",
    "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD",
    "CDF", "CHF", "CLP", "CNY", "COP", "CRC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD",
    "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ",
    "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD", "JOD",
    "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR",
    "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR",
    "MWK", "MXN", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN",
    "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR",
    "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB",
    "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS",
    "VES", "VND", "VUV", "WST", "XAF", "XCD", "XDR", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWG",
];

impl Unit {
    const fn of(base: Base, exponent: i32) -> Unit {
        Unit {
            base,
            exponent,
            share: false,
        }
    }

    /// Reads a unit name of the config: one of [`UNIT_NAMES`] or an ISO 4217 code.
    pub fn parse(s: &str) -> Option<Unit> {
        Some(match s {
            "percent" => Unit {
                share: true,
                ..Unit::of(Base::Ratio, -2)
            },
            "percent_change" => Unit::of(Base::Ratio, -2),
            "ratio" => Unit::of(Base::Ratio, 0),
            "count" => Unit::of(Base::Count, 0),
            "persons" => Unit::of(Base::Persons, 0),
            "index" => Unit::of(Base::Index, 0),
            "yuan" => Unit::of(Base::Yuan, 0),
            "10k_yuan" => Unit::of(Base::Yuan, 4),
            "100m_yuan" => Unit::of(Base::Yuan, 8),
            "seconds" => Unit::of(Base::Seconds, 0),
            "bytes" => Unit::of(Base::Bytes, 0),
            // A publisher's code keeps its scale: `MIO_EUR`, `THS_PER`.
            _ => {
                return currency(s)
                    .map(|c| Unit::of(Base::Currency(c), 0))
                    .or_else(|| Unit::from_code(s).filter(|u| u.exponent != 0))
            }
        })
    }

    /// Reads a unit code as publishers write it in a file (SDMX `UNIT_MEASURE`, Eurostat's
    /// `unit` dimension, OECD `UNIT`): `USD`, `MIO_EUR`, `THS_PER`, `PC_GDP`, `I15`, `NR` …
    /// None when the code is not one the exporter knows (the config can map it).
    pub fn from_code(code: &str) -> Option<Unit> {
        let upper = code.trim().to_ascii_uppercase();
        let (exp, rest) = match upper.split_once('_') {
            Some((scale, rest)) if scale_prefix(scale).is_some() => {
                (scale_prefix(scale).expect("checked"), rest)
            }
            _ => (0, upper.as_str()),
        };
        let base = if let Some(c) = currency(rest) {
            Base::Currency(c)
        } else if rest == "PC"
            || rest == "PCT"
            || rest == "PCNT"
            || rest.starts_with("PC_")
            || rest == "PERCENT"
        {
            return (exp == 0).then_some(Unit::of(Base::Ratio, -2));
        } else if rest == "RT" || rest == "RATIO" {
            Base::Ratio
        } else if rest == "IX"
            || rest == "IDX"
            || rest == "INDEX"
            || (rest.starts_with('I')
                && rest.len() <= 5
                && rest[1..].bytes().all(|b| b.is_ascii_digit())
                && rest.len() > 1)
        {
            Base::Index
        } else if matches!(rest, "PS" | "PER" | "PERS" | "PERSONS" | "PERSON") {
            Base::Persons
        } else if matches!(rest, "NR" | "NUM" | "NUMBER" | "UNITS" | "COUNT") {
            Base::Count
        } else {
            return None;
        };
        Some(Unit::of(base, exp))
    }

    /// The suffix appended to the metric name (and given in OpenMetrics `# UNIT`).
    pub fn suffix(&self) -> Option<&str> {
        match &self.base {
            Base::Ratio => Some("ratio"),
            Base::Count => None,
            Base::Persons => Some("persons"),
            Base::Index => Some("index"),
            Base::Currency(c) => Some(std::str::from_utf8(c).expect("ASCII letters")),
            Base::Yuan => Some("yuan"),
            Base::Seconds => Some("seconds"),
            Base::Bytes => Some("bytes"),
        }
    }

    /// Same exposed unit (suffix and scale), whatever the published name.
    pub fn same_as(&self, other: &Unit) -> bool {
        self.base == other.base && self.exponent == other.exponent
    }

    /// Converts a published value to the base unit, exactly in decimal.
    ///
    /// ```
    /// use indicator_exporter::dataset::units::Unit;
    /// let percent = Unit::parse("percent").unwrap();
    /// assert_eq!(percent.to_base(53.3).to_string(), "0.533"); // not 0.5329999999999999
    /// assert_eq!(Unit::parse("10k_yuan").unwrap().to_base(829.6), 8_296_000.0);
    /// ```
    pub fn to_base(&self, published: f64) -> f64 {
        scale_pow10(published, self.exponent)
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.suffix(), self.exponent) {
            (Some("ratio"), -2) => write!(f, "percent"),
            (Some(s), 0) => write!(f, "{s}"),
            (None, 0) => write!(f, "count"),
            (s, e) => write!(f, "{} ×10^{e}", s.unwrap_or("count")),
        }
    }
}

fn currency(s: &str) -> Option<[u8; 3]> {
    let up = s.to_ascii_uppercase();
    CURRENCIES.binary_search(&up.as_str()).ok()?;
    let b = up.to_ascii_lowercase().into_bytes();
    Some([b[0], b[1], b[2]])
}

/// Eurostat-style scale prefixes of unit codes: `THS_`, `MIO_`, `BN_`.
fn scale_prefix(s: &str) -> Option<i32> {
    Some(match s {
        "HUN" => 2,
        "THS" => 3,
        "MIO" => 6,
        "BN" | "MRD" => 9,
        _ => return None,
    })
}

/// Reads a multiplier as publishers write it: a power of ten (SDMX `UNIT_MULT`, OECD
/// `POWERCODE`, StatCan `SCALAR_ID`) or a word (`thousand`, `millions`, `10k`, StatCan's
/// `SCALAR_FACTOR` "thousands"). None for anything else.
pub fn multiplier(s: &str) -> Option<i32> {
    let t = s.trim().to_ascii_lowercase();
    if let Ok(n) = t.parse::<i32>() {
        return (-30..=30).contains(&n).then_some(n);
    }
    Some(match t.as_str() {
        "unit" | "units" | "one" | "ones" => 0,
        "ten" | "tens" => 1,
        "hundred" | "hundreds" => 2,
        "thousand" | "thousands" | "k" => 3,
        "10k" | "ten_thousand" | "ten thousand" | "ten thousands" => 4,
        "hundred thousand" | "hundred thousands" | "100k" => 5,
        "million" | "millions" | "mio" | "m" => 6,
        "10m" | "ten million" | "ten millions" => 7,
        "100m" | "hundred million" | "hundred millions" => 8,
        "billion" | "billions" | "bn" => 9,
        "trillion" | "trillions" => 12,
        _ => return None,
    })
}

/// The scale a publisher's unit code or label states, as a power of ten and the word for it:
/// `MIO_EUR` and "Million euro" say 10^6, "000 Hours" and `THS_PER` 10^3. None when it states
/// none (`EUR`, "Euro", "Percent").
pub fn stated_scale(code: &str) -> Option<(i32, &'static str)> {
    let word = |e: i32| match e {
        2 => "hundred",
        3 => "thousand",
        6 => "million",
        9 => "billion",
        12 => "trillion",
        _ => "a power of ten",
    };
    if let Some(u) = Unit::from_code(code).filter(|u| u.exponent > 0) {
        return Some((u.exponent, word(u.exponent)));
    }
    code.split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter_map(|t| {
            Some(match t.to_ascii_lowercase().as_str() {
                "hundred" | "hundreds" => 2,
                "thousand" | "thousands" | "000" | "'000" | "ths" => 3,
                "million" | "millions" | "mio" | "mln" => 6,
                "billion" | "billions" | "bn" | "mrd" | "milliard" | "milliards" => 9,
                "trillion" | "trillions" => 12,
                _ => return None,
            })
        })
        .next()
        .map(|e| (e, word(e)))
}

/// The multiplier forms [`multiplier`] reads, for messages.
pub const MULTIPLIER_FORMS: &str =
    "a power of ten (3, 6) or a word (thousand, 10k, million, 100m, billion)";

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

/// Reads a published decimal written as text and scales it by `10^exp` exactly: the digits
/// are read once, with the exponent appended, into the nearest double. `buf` is reused
/// between calls. None when the text is not a number.
pub fn parse_scaled(text: &str, exp: i32, buf: &mut String) -> Option<f64> {
    let t = text.trim();
    if exp == 0 {
        return parse_number(t);
    }
    let v = parse_number(t)?;
    if !v.is_finite() {
        return Some(v);
    }
    if t.bytes().any(|b| b == b'e' || b == b'E') {
        return Some(scale_pow10(v, exp));
    }
    buf.clear();
    buf.push_str(t);
    use std::fmt::Write as _;
    let _ = write!(buf, "e{exp}");
    buf.parse().ok()
}

/// A number as publishers write it; Rust's float syntax minus its words (`inf`, `nan`).
fn parse_number(t: &str) -> Option<f64> {
    let ok = !t.is_empty()
        && t.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'));
    if ok {
        t.parse().ok()
    } else {
        match t.to_ascii_lowercase().as_str() {
            "nan" => Some(f64::NAN),
            "inf" | "+inf" | "infinity" => Some(f64::INFINITY),
            "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        }
    }
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

    fn unit(s: &str) -> Unit {
        Unit::parse(s).unwrap()
    }

    #[test]
    fn percent_is_exact() {
        let p = unit("percent");
        assert_eq!(p.to_base(53.3).to_string(), "0.533");
        assert_eq!(p.to_base(54.0).to_string(), "0.54");
        assert_eq!(p.to_base(8.0).to_string(), "0.08");
        assert_eq!(p.to_base(0.1).to_string(), "0.001");
        assert_ne!((53.3f64 / 100.0).to_string(), "0.533");
    }

    #[test]
    fn ten_thousand_yuan_is_exact() {
        assert_eq!(unit("10k_yuan").to_base(829.6).to_string(), "8296000");
        assert_eq!(unit("100m_yuan").to_base(1.23).to_string(), "123000000");
    }

    #[test]
    fn extreme_values_stay_exact() {
        assert_eq!(unit("10k_yuan").to_base(1.5e300), 1.5e304);
        assert_eq!(unit("percent").to_base(5e-320), 5e-322);
        assert_eq!(unit("count").to_base(1e300), 1e300);
        assert_eq!(unit("100m_yuan").to_base(1e301), f64::INFINITY);
    }

    #[test]
    fn subtraction_is_exact() {
        assert_eq!(decimal_sub(0.54, 0.533).to_string(), "0.007");
        assert_eq!(decimal_sub(0.533, 0.513).to_string(), "0.02");
        assert_ne!((0.54f64 - 0.533).to_string(), "0.007");
    }

    #[test]
    fn currencies_and_names() {
        assert_eq!(unit("usd").suffix(), Some("usd"));
        assert_eq!(unit("EUR").suffix(), Some("eur"));
        assert_eq!(unit("yuan").suffix(), Some("yuan"));
        assert_eq!(unit("persons").suffix(), Some("persons"));
        assert_eq!(unit("count").suffix(), None);
        assert!(Unit::parse("usx").is_none());
        assert!(Unit::parse("dollars").is_none());
        assert!(
            CURRENCIES.windows(2).all(|w| w[0] < w[1]),
            "sorted for binary search"
        );
    }

    #[test]
    fn publisher_unit_codes() {
        let c = |s| Unit::from_code(s).map(|u| (u.suffix().map(str::to_string), u.exponent));
        assert_eq!(c("USD"), Some((Some("usd".into()), 0)));
        assert_eq!(c("MIO_EUR"), Some((Some("eur".into()), 6)));
        assert_eq!(c("THS_PER"), Some((Some("persons".into()), 3)));
        assert_eq!(c("PC_ACT"), Some((Some("ratio".into()), -2)));
        assert_eq!(c("PC"), Some((Some("ratio".into()), -2)));
        assert_eq!(c("I15"), Some((Some("index".into()), 0)));
        assert_eq!(c("NR"), Some((None, 0)));
        assert_eq!(c("MIO_NAC"), None);
        assert_eq!(c("XYZ"), None);
    }

    #[test]
    fn scales_stated_by_unit_codes() {
        assert_eq!(stated_scale("MIO_EUR"), Some((6, "million")));
        assert_eq!(stated_scale("Million euro"), Some((6, "million")));
        assert_eq!(stated_scale("000 Hours"), Some((3, "thousand")));
        assert_eq!(stated_scale("THS_PER"), Some((3, "thousand")));
        assert_eq!(stated_scale("Euro, billions"), Some((9, "billion")));
        assert_eq!(stated_scale("EUR"), None);
        assert_eq!(stated_scale("Percent"), None);
        assert_eq!(stated_scale("Index (2015=100)"), None);
    }

    #[test]
    fn multipliers() {
        assert_eq!(multiplier("3"), Some(3));
        assert_eq!(multiplier("0"), Some(0));
        assert_eq!(multiplier("Millions"), Some(6));
        assert_eq!(multiplier("10k"), Some(4));
        assert_eq!(multiplier("thousands"), Some(3));
        assert_eq!(multiplier("lots"), None);
    }

    #[test]
    fn text_values_scale_exactly() {
        let mut b = String::new();
        assert_eq!(parse_scaled("23962.1", 6, &mut b), Some(23_962_100_000.0));
        assert_eq!(
            parse_scaled("53.3", -2, &mut b).unwrap().to_string(),
            "0.533"
        );
        assert_eq!(parse_scaled(" 1.5e3 ", 3, &mut b), Some(1.5e6));
        assert_eq!(parse_scaled("12", 0, &mut b), Some(12.0));
        assert_eq!(parse_scaled("abc", 0, &mut b), None);
        assert_eq!(parse_scaled("1,5", 0, &mut b), None);
        assert!(parse_scaled("NaN", 2, &mut b).unwrap().is_nan());
    }
}
