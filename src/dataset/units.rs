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
    /// Mass.
    Grams,
    /// Energy.
    Joules,
    /// Length.
    Meters,
    /// Area.
    SquareMeters,
    /// Volume.
    CubicMeters,
}

/// A published unit: the exposed base, and the power of ten from the published figure to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Unit {
    pub base: Base,
    pub exponent: i32,
    /// A factor besides the power of ten, for units that are no decimal multiple of their
    /// base: a kilowatt-hour is 36 × 10^5 joules, a tonne of oil equivalent 41868 × 10^6.
    pub factor: u32,
    /// A share in percent, checked to be within 0–100 (`percent`); `percent_change` is not.
    pub share: bool,
}

/// One unit of the exporter's table: its config name (or `None`), the publisher codes that
/// mean it, what it is exposed as, and a word for the documentation. The configuration
/// reference's unit list is generated from this table ([`reference()`]).
pub struct Known {
    pub name: Option<&'static str>,
    pub codes: &'static [&'static str],
    pub unit: Unit,
    pub meaning: &'static str,
}

const fn u(base: Base, exponent: i32, factor: u32) -> Unit {
    Unit {
        base,
        exponent,
        factor,
        share: false,
    }
}

/// Every unit the exporter knows by name or code, besides ISO 4217 currencies and the scale
/// prefixes of codes (`THS_`, `MIO_`, `BN_`).
pub const KNOWN: &[Known] = &[
    Known { name: Some("percent"), codes: &[], unit: Unit { share: true, ..u(Base::Ratio, -2, 1) }, meaning: "a share in percent (0–100 checked), served as a 0–1 ratio" },
    Known { name: None, codes: &["PC", "PCT", "PCNT", "PERCENT", "PC_*"], unit: u(Base::Ratio, -2, 1), meaning: "a percentage (of GDP, of the labour force …; not checked against 100), served as a ratio" },
    Known { name: Some("percent_change"), codes: &["PCH", "PCH_*"], unit: u(Base::Ratio, -2, 1), meaning: "a change in percent, served as a ratio" },
    Known { name: Some("ratio"), codes: &["RT", "RATIO"], unit: u(Base::Ratio, 0, 1), meaning: "a ratio" },
    Known { name: Some("per_1000"), codes: &["P_THAB", "PER_1000", "PER_THS"], unit: u(Base::Ratio, -3, 1), meaning: "a rate per 1,000, served as a ratio" },
    Known { name: Some("per_100000"), codes: &["P_HTHAB", "PER_100000", "PER_100K"], unit: u(Base::Ratio, -5, 1), meaning: "a rate per 100,000, served as a ratio" },
    Known { name: Some("count"), codes: &["NR", "NBR", "NUM", "NUMBER", "UNITS", "COUNT"], unit: u(Base::Count, 0, 1), meaning: "a number of things" },
    Known { name: Some("persons"), codes: &["PS", "PER", "PERS", "PERSONS", "PERSON"], unit: u(Base::Persons, 0, 1), meaning: "a number of persons" },
    Known { name: Some("index"), codes: &["IX", "IDX", "INDEX", "I15", "I2015", "I*"], unit: u(Base::Index, 0, 1), meaning: "index points (the base period in `index_base`)" },
    Known { name: Some("yuan"), codes: &[], unit: u(Base::Yuan, 0, 1), meaning: "yuan (元)" },
    Known { name: Some("10k_yuan"), codes: &[], unit: u(Base::Yuan, 4, 1), meaning: "10,000 yuan (万元)" },
    Known { name: Some("100m_yuan"), codes: &[], unit: u(Base::Yuan, 8, 1), meaning: "100,000,000 yuan (亿元)" },
    Known { name: Some("seconds"), codes: &["SEC"], unit: u(Base::Seconds, 0, 1), meaning: "seconds" },
    Known { name: Some("bytes"), codes: &[], unit: u(Base::Bytes, 0, 1), meaning: "bytes" },
    Known { name: Some("grams"), codes: &[], unit: u(Base::Grams, 0, 1), meaning: "grams" },
    Known { name: Some("kilograms"), codes: &["KG"], unit: u(Base::Grams, 3, 1), meaning: "kilograms, served in grams" },
    Known { name: Some("tonnes"), codes: &["T", "TONNES", "TONNE"], unit: u(Base::Grams, 6, 1), meaning: "tonnes, served in grams" },
    Known { name: Some("joules"), codes: &[], unit: u(Base::Joules, 0, 1), meaning: "joules" },
    Known { name: Some("gigajoules"), codes: &["GJ"], unit: u(Base::Joules, 9, 1), meaning: "gigajoules, served in joules" },
    Known { name: Some("terajoules"), codes: &["TJ"], unit: u(Base::Joules, 12, 1), meaning: "terajoules, served in joules" },
    Known { name: Some("kwh"), codes: &["KWH"], unit: u(Base::Joules, 5, 36), meaning: "kilowatt-hours (3.6 MJ), served in joules" },
    Known { name: Some("gwh"), codes: &["GWH"], unit: u(Base::Joules, 11, 36), meaning: "gigawatt-hours (3.6 TJ), served in joules" },
    Known { name: Some("toe"), codes: &["TOE"], unit: u(Base::Joules, 6, 41868), meaning: "tonnes of oil equivalent (41.868 GJ), served in joules" },
    Known { name: Some("meters"), codes: &["METRES", "METERS"], unit: u(Base::Meters, 0, 1), meaning: "meters" },
    Known { name: Some("kilometers"), codes: &["KM"], unit: u(Base::Meters, 3, 1), meaning: "kilometers, served in meters" },
    Known { name: Some("square_meters"), codes: &["M2"], unit: u(Base::SquareMeters, 0, 1), meaning: "square meters" },
    Known { name: Some("hectares"), codes: &["HA"], unit: u(Base::SquareMeters, 4, 1), meaning: "hectares, served in square meters" },
    Known { name: Some("square_kilometers"), codes: &["KM2"], unit: u(Base::SquareMeters, 6, 1), meaning: "square kilometers, served in square meters" },
    Known { name: Some("cubic_meters"), codes: &["M3"], unit: u(Base::CubicMeters, 0, 1), meaning: "cubic meters" },
    Known { name: Some("liters"), codes: &["LITRES", "LITERS"], unit: u(Base::CubicMeters, -3, 1), meaning: "liters, served in cubic meters" },
];

/// The unit names accepted in `unit = "…"` besides ISO 4217 codes, for messages and docs: the
/// names of [`KNOWN`], in its order (a test keeps them the same).
pub const UNIT_NAMES: &[&str] = &[
    "percent",
    "percent_change",
    "ratio",
    "per_1000",
    "per_100000",
    "count",
    "persons",
    "index",
    "yuan",
    "10k_yuan",
    "100m_yuan",
    "seconds",
    "bytes",
    "grams",
    "kilograms",
    "tonnes",
    "joules",
    "gigajoules",
    "terajoules",
    "kwh",
    "gwh",
    "toe",
    "meters",
    "kilometers",
    "square_meters",
    "hectares",
    "square_kilometers",
    "cubic_meters",
    "liters",
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
        u(base, exponent, 1)
    }

    /// Reads a unit name of the config: one of [`UNIT_NAMES`] (British spellings of meters
    /// and liters too), an ISO 4217 code, or a publisher's code that keeps its scale
    /// (`MIO_EUR`, `THS_T`).
    pub fn parse(s: &str) -> Option<Unit> {
        let name = match s {
            "metres" => "meters",
            "kilometres" => "kilometers",
            "square_metres" => "square_meters",
            "square_kilometres" => "square_kilometers",
            "cubic_metres" => "cubic_meters",
            "litres" => "liters",
            s => s,
        };
        if let Some(k) = KNOWN.iter().find(|k| k.name == Some(name)) {
            return Some(k.unit);
        }
        currency(s)
            .map(|c| Unit::of(Base::Currency(c), 0))
            .or_else(|| Unit::from_code(s).filter(|u| u.exponent != 0 || u.factor != 1))
    }

    /// Reads a unit code as publishers write it in a file (SDMX `UNIT_MEASURE`, Eurostat's
    /// `unit` dimension, OECD `UNIT`): `USD`, `MIO_EUR`, `THS_PER`, `PC_GDP`, `I15`, `NR`,
    /// `THS_T`, `KTOE` … (the codes of [`KNOWN`], an ISO 4217 currency, each after a scale
    /// prefix or not). None when the code is not one the exporter knows (the config can map
    /// it).
    pub fn from_code(code: &str) -> Option<Unit> {
        let upper = code.trim().to_ascii_uppercase();
        let (exp, rest) = match upper.split_once('_') {
            Some((scale, rest)) if scale_prefix(scale).is_some() => {
                (scale_prefix(scale).expect("checked"), rest)
            }
            _ => (0, upper.as_str()),
        };
        // Energy balances write the scale into the code: KTOE, MTOE.
        let (exp, rest) = match rest.strip_prefix('K').filter(|r| *r == "TOE") {
            Some(r) => (exp + 3, r),
            None => match rest.strip_prefix('M').filter(|r| *r == "TOE") {
                Some(r) => (exp + 6, r),
                None => (exp, rest),
            },
        };
        let unit = match currency(rest) {
            Some(c) => Unit::of(Base::Currency(c), 0),
            None => {
                KNOWN
                    .iter()
                    .find(|k| k.codes.iter().any(|c| code_matches(c, rest)))?
                    .unit
            }
        };
        // A percentage of something scaled is no percentage the exporter can serve.
        if unit.base == Base::Ratio && unit.exponent == -2 && exp != 0 {
            return None;
        }
        Some(Unit {
            exponent: unit.exponent + exp,
            ..unit
        })
    }

    /// A unit column's code as the exporter reads it when the input maps it to nothing: a
    /// publisher's code ([`Unit::from_code`]) or a unit name of the config ([`Unit::parse`]).
    pub fn of_code(code: &str) -> Option<Unit> {
        Unit::from_code(code).or_else(|| Unit::parse(code))
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
            Base::Grams => Some("grams"),
            Base::Joules => Some("joules"),
            Base::Meters => Some("meters"),
            Base::SquareMeters => Some("square_meters"),
            Base::CubicMeters => Some("cubic_meters"),
        }
    }

    /// Same exposed unit (suffix and scale), whatever the published name.
    pub fn same_as(&self, other: &Unit) -> bool {
        self.base == other.base && self.exponent == other.exponent && self.factor == other.factor
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
        self.times_factor(scale_pow10(published, self.exponent))
    }

    /// `value` × the unit's factor, exact in decimal (1 kWh = 3600000 J, not 3599999.9…).
    pub fn times_factor(&self, value: f64) -> f64 {
        if self.factor == 1 || !value.is_finite() {
            return value;
        }
        match Decimal::from_str(&value.to_string()) {
            Ok(d) => d
                .checked_mul(Decimal::from(self.factor))
                .map_or(value * self.factor as f64, to_f64),
            Err(_) => value * self.factor as f64,
        }
    }
}

/// Whether `code` of [`KNOWN`] (`PC_*` a prefix, `I*` an `I` with digits) names `rest`.
fn code_matches(code: &str, rest: &str) -> bool {
    match code {
        "PC_*" | "PCH_*" => rest.starts_with(&code[..code.len() - 1]),
        "I*" => {
            rest.len() > 1
                && rest.len() <= 5
                && rest.starts_with('I')
                && rest[1..].bytes().all(|b| b.is_ascii_digit())
        }
        c => c == rest,
    }
}

/// The unit reference of the documentation, generated from [`KNOWN`]: each unit's config
/// name, the publisher codes that mean it, and how it is served.
pub fn reference() -> String {
    let mut out = String::from(
        "| `unit =` | Publisher codes | Served with suffix | Published figure × | Meaning |\n|---|---|---|---|---|\n",
    );
    for k in KNOWN {
        let codes: Vec<String> = k.codes.iter().map(|c| format!("`{c}`")).collect();
        let served = match k.unit.suffix() {
            Some(s) => format!("`_{s}`"),
            None => "no suffix".into(),
        };
        let scale = match (k.unit.exponent, k.unit.factor) {
            (0, 1) => "1".to_string(),
            (e, 1) => format!("10^{e}"),
            (e, f) => format!("{f}×10^{e}"),
        };
        out.push_str(&format!(
            "| {} | {} | {served} | {scale} | {} |\n",
            k.name.map_or("—".to_string(), |n| format!("`{n}`")),
            if codes.is_empty() {
                "—".into()
            } else {
                codes.join(", ")
            },
            k.meaning
        ));
    }
    out.push_str("\nAny ISO 4217 currency code (`usd`, `EUR` …) is a unit served with its lower-case code as suffix (`_usd`). A publisher code may start with a scale: `HUN_` (×10^2), `THS_` (×10^3), `MIO_` (×10^6), `BN_` or `MRD_` (×10^9), as in `MIO_EUR` or `THS_T`; `KTOE` and `MTOE` are thousands and millions of `TOE`.\n");
    out
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.factor != 1 {
            return write!(
                f,
                "{} ×{}×10^{}",
                self.suffix().unwrap_or("count"),
                self.factor,
                self.exponent
            );
        }
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
pub fn parse_number(t: &str) -> Option<f64> {
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
    fn the_unit_names_are_the_tables() {
        let names: Vec<&str> = KNOWN.iter().filter_map(|k| k.name).collect();
        assert_eq!(names, UNIT_NAMES);
    }

    #[test]
    fn physical_units_and_rates_are_scaled_exactly_to_base_units() {
        let c = |s| Unit::from_code(s).unwrap();
        assert_eq!(c("THS_T").to_base(350.154), 350_154_000_000.0);
        assert_eq!(unit("kilograms").to_base(1.5), 1500.0);
        assert_eq!(unit("kwh").to_base(1.0), 3_600_000.0);
        assert_eq!(unit("kwh").to_base(0.1), 360_000.0);
        assert_eq!(c("KTOE").to_base(2.5), 104_670_000_000_000.0);
        assert_eq!(c("TOE").to_base(1.0), 41_868_000_000.0);
        assert_eq!(c("GWH").to_base(1.0), 3.6e12);
        assert_eq!(unit("per_1000").to_base(7.3).to_string(), "0.0073");
        assert_eq!(c("P_HTHAB").to_base(12.0).to_string(), "0.00012");
        assert_eq!(unit("hectares").to_base(2.0), 20_000.0);
        assert_eq!(unit("litres").to_base(1500.0), 1.5);
        assert_eq!(c("TJ").suffix(), Some("joules"));
        assert_eq!(c("KM2").suffix(), Some("square_meters"));
        assert_eq!(c("M3").suffix(), Some("cubic_meters"));
        assert_eq!(c("MIO_M3").exponent, 6);
        assert_eq!(unit("kwh").to_string(), "joules ×36×10^5");
        assert!(!unit("kwh").same_as(&Unit::from_code("MIO_J").unwrap_or(unit("joules"))));
    }

    #[test]
    fn the_units_reference_is_generated_from_the_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/units.md");
        let head = "# Units\n\nGenerated from the exporter's unit table (`src/dataset/units.rs`); `UPDATE_GOLDEN=1 cargo test --lib units` rewrites it.\n\nA metric's `unit`, an input's `unit_codes` values and the unit codes read from files are one of these. Prometheus wants base units, so each is served in its base: a published percent as a 0–1 `_ratio`, tonnes as `_grams`, kilowatt-hours as `_joules`, every scaling exact in decimal.\n\n";
        let want = format!("{head}{}", reference());
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(path, &want).unwrap();
        }
        assert_eq!(std::fs::read_to_string(path).unwrap_or_default(), want);
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
