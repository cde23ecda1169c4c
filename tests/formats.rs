//! The example configs of examples/formats/, one per publisher file, loaded as a user would and
//! checked against the publishers' own numbers: names, labels, units, periods, display names,
//! missing counts and flags, a few cells read by hand, and every cell read a second time by a
//! deliberately simple reader of each file (the csv crate or line splitting for CSV, a plain
//! `serde_json::Value` walk for JSON). Expected values are scaled on the text of the number
//! (the decimal point is moved, then the text parsed), never by multiplying floats.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use indicator_exporter::dataset::{Dataset, Metric};
use serde_json::Value;

/// Label name -> value, the period included: one series.
type Key = BTreeMap<String, String>;
/// Every series of a metric: its value and its status flag.
type Series = BTreeMap<Key, (f64, Option<String>)>;

const EXAMPLES: &[&str] = &[
    "csv-unicef-long.toml",
    "csv-worldbank-wide.toml",
    "excel-abs-cpi-xls.toml",
    "excel-abs-labour-force.toml",
    "json-records.toml",
    "jsonstat-cso-bundle.toml",
    "jsonstat-eurostat.toml",
    "pcaxis-ine-ipri.toml",
    "pcaxis-scb-cpi.toml",
    "pcaxis-statfin-cpi.toml",
    "sdmx-csv-bis.toml",
    "sdmx-csv-eurostat.toml",
    "sdmx-json-agri.toml",
    "sdmx-json-exr.toml",
    "sdmx-json-oecd.toml",
    "sdmx-ml-30-ecb.toml",
    "sdmx-ml-bis-structurespecific.toml",
    "sdmx-ml-ecb-generic.toml",
];

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn load(example: &str) -> Dataset {
    let path = repo(&format!("examples/formats/{example}"));
    indicator_exporter::check(&path).unwrap_or_else(|e| panic!("{example} does not load:\n{e}"))
}

fn fixture(path: &str) -> String {
    std::fs::read_to_string(repo(&format!("tests/fixtures/publishers/{path}")))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn json_fixture(path: &str) -> Value {
    serde_json::from_str(&fixture(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `text` with its decimal point moved `exp` places to the right, parsed: the exact decimal
/// value of the scaled figure, rounded once to the nearest f64.
fn shift(text: &str, exp: i32) -> f64 {
    let t = text.trim();
    let (sign, t) = match t.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", t.strip_prefix('+').unwrap_or(t)),
    };
    assert!(
        !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit() || b == b'.'),
        "not a plain decimal: {text:?}"
    );
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    let mut digits = format!("{int}{frac}");
    let mut point = int.len() as i64 + exp as i64;
    if point < 0 {
        digits.insert_str(0, &"0".repeat((-point) as usize));
        point = 0;
    }
    while (digits.len() as i64) < point {
        digits.push('0');
    }
    let (head, tail) = digits.split_at(point as usize);
    let head = if head.is_empty() { "0" } else { head };
    let tail = if tail.is_empty() { "0" } else { tail };
    format!("{sign}{head}.{tail}").parse().expect("decimal")
}

#[test]
fn shift_moves_the_decimal_point_on_the_text() {
    assert_eq!(shift("23962.1", 6), 23_962_100_000.0);
    assert_eq!(shift("53.3", -2), 0.533);
    assert_eq!(shift("5", -2), 0.05);
    assert_eq!(shift("-0.5", 3), -500.0);
    assert_eq!(shift("14206.490766", 6), 14_206_490_766.0);
    assert_eq!(shift("1330167597.76536", 0), 1_330_167_597.765_36);
}

fn key(pairs: &[(&str, &str)]) -> Key {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn metric<'a>(ds: &'a Dataset, name: &str) -> &'a Metric {
    ds.metrics
        .iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| {
            let names: Vec<&str> = ds.metrics.iter().map(|m| m.name.as_str()).collect();
            panic!("no metric {name}, have {names:?}")
        })
}

fn series(ds: &Dataset, m: &Metric) -> Series {
    (0..m.len())
        .map(|i| {
            let k: Key = m
                .label_names
                .iter()
                .zip(m.labels(i))
                .map(|(n, &id)| (n.clone(), ds.symbol(id).to_string()))
                .collect();
            (
                k,
                (m.value(i), m.status(i).map(|s| ds.symbol(s).to_string())),
            )
        })
        .collect()
}

/// Checks a metric's shape: exposed name, unit suffix, label names (any order) and number of
/// series. Returns its series.
fn shape(ds: &Dataset, name: &str, suffix: Option<&str>, labels: &[&str], n: usize) -> Series {
    let m = metric(ds, name);
    assert_eq!(m.unit.suffix(), suffix, "unit of {name}");
    let mut have: Vec<&str> = m.label_names.iter().map(String::as_str).collect();
    let mut want = labels.to_vec();
    have.sort_unstable();
    want.sort_unstable();
    assert_eq!(have, want, "labels of {name}");
    assert_eq!(m.len(), n, "series of {name}");
    series(ds, m)
}

/// Compares every series with the second reading: same keys, values equal as f64, same flags.
fn same(name: &str, got: &Series, want: &Series) {
    let extra: Vec<&Key> = got.keys().filter(|k| !want.contains_key(*k)).collect();
    let absent: Vec<&Key> = want.keys().filter(|k| !got.contains_key(*k)).collect();
    assert!(
        extra.is_empty() && absent.is_empty(),
        "{name}: series not in the file: {extra:?}; series of the file not served: {absent:?}"
    );
    for (k, w) in want {
        let g = &got[k];
        assert!(
            g.0 == w.0 && g.1 == w.1,
            "{name} {k:?}: got {g:?}, expected {w:?}"
        );
    }
}

/// The periods of a metric, in order.
fn periods(s: &Series, label: &str) -> Vec<String> {
    let set: BTreeSet<&str> = s.keys().map(|k| k[label].as_str()).collect();
    set.into_iter().map(str::to_string).collect()
}

/// Display names of a label, in its only language `lang`.
fn names(ds: &Dataset, label: &str, lang: &str) -> BTreeMap<String, String> {
    let l = ds
        .labels
        .iter()
        .find(|l| l.name == label)
        .unwrap_or_else(|| panic!("no display names for label {label}"));
    assert_eq!(l.languages, vec![lang.to_string()], "languages of {label}");
    l.values
        .iter()
        .map(|(code, n)| (code.clone(), n[0].clone()))
        .collect()
}

fn named_labels(ds: &Dataset) -> Vec<&str> {
    let mut v: Vec<&str> = ds.labels.iter().map(|l| l.name.as_str()).collect();
    v.sort_unstable();
    v
}

fn missing(ds: &Dataset) -> Vec<(String, String, u64)> {
    let mut v: Vec<(String, String, u64)> = ds
        .missing
        .iter()
        .map(|(m, r, n)| (m.clone(), r.to_string(), *n))
        .collect();
    v.sort();
    v
}

fn no_status(ds: &Dataset) {
    for m in &ds.metrics {
        assert!(!m.has_status(), "{} has status flags", m.name);
    }
}

/// A CSV file's records by the csv crate, after `skip` preamble lines (BOM dropped).
fn csv_records(text: &str, skip: usize) -> (Vec<String>, Vec<Vec<String>>) {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut body = text;
    for _ in 0..skip {
        body = &body[body.find('\n').expect("preamble line") + 1..];
    }
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(body.as_bytes());
    let header = rdr
        .headers()
        .expect("header")
        .iter()
        .map(str::to_string)
        .collect();
    let rows = rdr
        .records()
        .map(|r| r.expect("record").iter().map(str::to_string).collect())
        .collect();
    (header, rows)
}

fn col(header: &[String], id: &str) -> usize {
    header
        .iter()
        .position(|h| h == id)
        .unwrap_or_else(|| panic!("no column {id}"))
}

/// The text of a JSON number as written (serde_json keeps it with `arbitrary_precision`), or a
/// string value; None for null.
fn number_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        other => panic!("not a value: {other}"),
    }
}

fn codes(values: &Value) -> Vec<String> {
    values
        .as_array()
        .expect("values")
        .iter()
        .map(|v| v["id"].as_str().expect("id").to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------------

#[test]
fn sdmx_csv_bis_otc_fx_turnover() {
    let ds = load("sdmx-csv-bis.toml");
    assert_eq!(ds.info.name, "bis_fx_turnover");
    assert_eq!(ds.metrics.len(), 1);
    let name = "bis_fx_turnover_daily_average_usd";
    let got = shape(
        &ds,
        name,
        Some("usd"),
        &["currency_leg1", "currency_leg2", "year"],
        360,
    );
    let yr = |l1: &str, l2: &str, y: &str| {
        key(&[("currency_leg1", l1), ("currency_leg2", l2), ("year", y)])
    };
    // Line 4: `...,HKD,TO1,A,A,3,C,2004,K,S,A,F,14206.490766` (OBS_VALUE last), US dollar
    // millions -> 14206490766 USD.
    assert_eq!(got[&yr("HKD", "TO1", "2004")], (14_206_490_766.0, None));
    // Line 2: `...,HKD,TO1,...,2002,K,S,M,F,` : empty OBS_VALUE with OBS_STATUS M, no series.
    assert!(!got.contains_key(&yr("HKD", "TO1", "2002")));
    // Survey years only: the others are all M.
    assert_eq!(
        periods(&got, "year"),
        ["1992", "1995", "1998", "2001", "2004", "2007", "2010", "2013", "2016", "2019"]
    );
    assert_eq!(
        missing(&ds),
        [(name.to_string(), "not_available".to_string(), 640)]
    );
    assert!(ds.labels.is_empty(), "SDMX-CSV 1.0 gives no names");
    no_status(&ds);

    // Second reading: the csv crate, columns by name.
    let (h, rows) = csv_records(&fixture("sdmx-csv/bis_der_sdmxcsv1.csv"), 0);
    assert_eq!(h[0], "DATAFLOW");
    let (l1, l2, t, v, s) = (
        col(&h, "DER_CURR_LEG1"),
        col(&h, "DER_CURR_LEG2"),
        col(&h, "TIME_PERIOD"),
        col(&h, "OBS_VALUE"),
        col(&h, "OBS_STATUS"),
    );
    let mut want = Series::new();
    let mut m = 0;
    for r in &rows {
        if r[v].is_empty() {
            assert_eq!(r[s], "M");
            m += 1;
            continue;
        }
        assert_eq!(r[s], "A");
        want.insert(yr(&r[l1], &r[l2], &r[t]), (shift(&r[v], 6), None));
    }
    assert_eq!((rows.len(), m), (1000, 640));
    same(name, &got, &want);
}

#[test]
fn sdmx_csv_eurostat_current_account() {
    let ds = load("sdmx-csv-eurostat.toml");
    let ca = "estat_current_account_balance_eur";
    let cka = "estat_current_and_capital_account_balance_eur";
    let labels = ["geo", "partner", "quarter"];
    let got_ca = shape(&ds, ca, Some("eur"), &labels, 10);
    let got_cka = shape(&ds, cka, Some("eur"), &labels, 9);
    let q = |p: &str| key(&[("geo", "EA20"), ("partner", "EXT_EA20"), ("quarter", p)]);
    // Line 2: `...,CA,Current account,EA20,...,2023-Q1,,23962.1,...` MIO_EUR -> 23962100000.
    assert_eq!(got_ca[&q("2023-Q1")], (23_962_100_000.0, None));
    // Line 11: `...,CA,...,2025-Q2,,57650.1,...` -> 57650100000.
    assert_eq!(got_ca[&q("2025-Q2")], (57_650_100_000.0, None));
    // Line 15: `...,CKA,Current plus capital account (...),EA20,...,2023-Q4,,139047.4,...`.
    assert_eq!(got_cka[&q("2023-Q4")], (139_047_400_000.0, None));
    assert_eq!(periods(&got_cka, "quarter").last().unwrap(), "2025-Q1");
    assert_eq!(periods(&got_ca, "quarter").first().unwrap(), "2023-Q1");
    assert_eq!(named_labels(&ds), ["geo", "partner"]);
    assert_eq!(
        names(&ds, "geo", "en"),
        BTreeMap::from([(
            "EA20".to_string(),
            "Euro area – 20 countries (from 2023)".to_string()
        )])
    );
    assert_eq!(
        names(&ds, "partner", "en")["EXT_EA20"],
        "Extra-euro area - 20 countries (from 2023)"
    );
    assert!(missing(&ds).is_empty());
    no_status(&ds);
    let release = ds.release.as_ref().expect("calendar");
    assert_eq!(release.next_period.to_string(), "2025-Q3");

    // Second reading: naive line splitting (no field of this file is quoted).
    let text = fixture("sdmx-csv/estat_ei_bpm6ca_q_sdmxcsv2_labelsname.csv");
    assert!(!text.contains('"'));
    let mut lines = text.lines();
    let h: Vec<String> = lines
        .next()
        .unwrap()
        .split(',')
        .map(str::to_string)
        .collect();
    let (item, geo, partner, unit, t, v) = (
        col(&h, "bop_item"),
        col(&h, "geo"),
        col(&h, "partner"),
        col(&h, "unit"),
        col(&h, "TIME_PERIOD"),
        col(&h, "OBS_VALUE"),
    );
    let (mut want_ca, mut want_cka) = (Series::new(), Series::new());
    for line in lines {
        let f: Vec<&str> = line.trim_end_matches('\r').split(',').collect();
        assert_eq!(f.len(), h.len(), "{line}");
        assert_eq!(f[unit], "MIO_EUR");
        let k = key(&[("geo", f[geo]), ("partner", f[partner]), ("quarter", f[t])]);
        let target = match f[item] {
            "CA" => &mut want_ca,
            "CKA" => &mut want_cka,
            other => panic!("bop_item {other}"),
        };
        target.insert(k, (shift(f[v], 6), None));
    }
    same(ca, &got_ca, &want_ca);
    same(cka, &got_cka, &want_cka);
}

#[test]
fn sdmx_json_oecd_stat_quarterly_national_accounts() {
    let ds = load("sdmx-json-oecd.toml");
    let by_unit = [
        ("AUD", "oecd_gdp_volume_australia_aud", "aud", 12),
        ("EUR", "oecd_gdp_volume_euro_area_members_eur", "eur", 24),
        ("CAD", "oecd_gdp_volume_canada_cad", "cad", 12),
        ("CLP", "oecd_gdp_volume_chile_clp", "clp", 12),
    ];
    let mut got = BTreeMap::new();
    for (code, name, suffix, n) in by_unit {
        got.insert(
            code,
            shape(&ds, name, Some(suffix), &["location", "quarter"], n),
        );
    }
    let lq = |l: &str, q: &str| key(&[("location", l), ("quarter", q)]);
    // "1:0:0:0" (AUT, UNIT EUR, POWERCODE 6) "0":[291301.971016,null] -> 291301971016 EUR.
    assert_eq!(got["EUR"][&lq("AUT", "2009-Q1")], (291_301_971_016.0, None));
    // "4:0:0:0" (CHL, CLP) "11":[120601874.99935,null] -> 120601874999350 CLP.
    assert_eq!(
        got["CLP"][&lq("CHL", "2011-Q4")],
        (120_601_874_999_350.0, None)
    );
    // "0:0:0:0" (AUS, AUD) "9":[1391739.300428,null] -> 1391739300428 AUD.
    assert_eq!(
        got["AUD"][&lq("AUS", "2011-Q2")],
        (1_391_739_300_428.0, None)
    );
    assert_eq!(periods(&got["CAD"], "quarter").len(), 12);
    assert_eq!(periods(&got["CAD"], "quarter")[0], "2009-Q1");
    assert_eq!(named_labels(&ds), ["location"]);
    assert_eq!(
        names(&ds, "location", "en"),
        BTreeMap::from(
            [
                ("AUS", "Australia"),
                ("AUT", "Austria"),
                ("BEL", "Belgium"),
                ("CAN", "Canada"),
                ("CHL", "Chile")
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        )
    );
    assert!(missing(&ds).is_empty());
    no_status(&ds);

    // Second reading: walk the series, decode keys and attribute indexes by hand.
    let doc = json_fixture("sdmx-json/oecd_qna_oecdstat_draft.json");
    let st = &doc["structure"];
    let location = codes(&st["dimensions"]["series"][0]["values"]);
    assert_eq!(st["dimensions"]["series"][0]["id"], "LOCATION");
    let time = codes(&st["dimensions"]["observation"][0]["values"]);
    let attrs = st["attributes"]["series"].as_array().unwrap();
    assert_eq!(
        (attrs[1]["id"].as_str(), attrs[2]["id"].as_str()),
        (Some("UNIT"), Some("POWERCODE"))
    );
    let units = codes(&attrs[1]["values"]);
    let powers = codes(&attrs[2]["values"]);
    let mut want: BTreeMap<&str, Series> = BTreeMap::new();
    for (k, s) in doc["dataSets"][0]["series"].as_object().unwrap() {
        let l: usize = k.split(':').next().unwrap().parse().unwrap();
        let a = s["attributes"].as_array().unwrap();
        let unit = units[a[1].as_u64().unwrap() as usize].clone();
        let power: i32 = powers[a[2].as_u64().unwrap() as usize].parse().unwrap();
        let code = by_unit.iter().find(|b| b.0 == unit).expect("unit").0;
        for (o, obs) in s["observations"].as_object().unwrap() {
            let text = number_text(&obs[0]).expect("a value");
            let q = &time[o.parse::<usize>().unwrap()];
            want.entry(code)
                .or_default()
                .insert(lq(&location[l], q), (shift(&text, power), None));
        }
    }
    for (code, name, _, _) in by_unit {
        same(name, &got[code], &want[code]);
    }
}

#[test]
fn sdmx_json_2_exchange_rates_series_view() {
    let ds = load("sdmx-json-exr.toml");
    let name = "ecb_euro_reference_exchange_rate_ratio";
    let got = shape(&ds, name, Some("ratio"), &["currency", "date"], 4);
    let cd = |c: &str, d: &str| key(&[("currency", c), ("date", d)]);
    // series "0" (NZD) "0":[1.5931,0] -> 1.5931 (OBS_STATUS A: no flag).
    assert_eq!(got[&cd("NZD", "2013-01-18")], (1.5931, None));
    // series "1" (RUB) "1":[40.3,0,1] (the trailing 1 is an annotation) -> 40.3.
    assert_eq!(got[&cd("RUB", "2013-01-21")], (40.3, None));
    assert_eq!(periods(&got, "date"), ["2013-01-18", "2013-01-21"]);
    assert_eq!(named_labels(&ds), ["currency"]);
    let n = names(&ds, "currency", "en");
    assert_eq!(n["NZD"], "New Zealand dollar");
    assert_eq!(n["RUB"], "Russian rouble");
    assert_eq!(n.len(), 2);
    assert!(missing(&ds).is_empty());
    no_status(&ds);

    // Second reading.
    let doc = json_fixture("sdmx-json/spec_v2.0.0_exr-time-series.json");
    let st = &doc["data"]["structures"][0];
    assert_eq!(st["dimensions"]["series"][0]["id"], "CURRENCY");
    let currency = codes(&st["dimensions"]["series"][0]["values"]);
    let time = codes(&st["dimensions"]["observation"][0]["values"]);
    let status = codes(&st["attributes"]["observation"][0]["values"]);
    let mut want = Series::new();
    for (k, s) in doc["data"]["dataSets"][0]["series"].as_object().unwrap() {
        let c = &currency[k.parse::<usize>().unwrap()];
        for (o, obs) in s["observations"].as_object().unwrap() {
            let st = &status[obs[1].as_u64().unwrap() as usize];
            assert_eq!(st, "A");
            let v = shift(&number_text(&obs[0]).unwrap(), 0);
            want.insert(cd(c, &time[o.parse::<usize>().unwrap()]), (v, None));
        }
    }
    same(name, &got, &want);
}

#[test]
fn sdmx_json_2_flat_view_unit_mult_3() {
    let ds = load("sdmx-json-agri.toml");
    let name = "nis_milled_rice_production_grams";
    // TONES is mapped to tonnes: served in grams.
    let got = shape(&ds, name, Some("grams"), &["province", "year"], 12);
    let py = |p: &str, y: &str| key(&[("province", p), ("year", y)]);
    // "0:0":[350.154,null,"2018-03-18T11:00:00"] (ASIKHM001, 2014), UNIT_MULT 3 -> 350154
    // tonnes -> 350154000000 grams.
    assert_eq!(got[&py("ASIKHM001", "2014")], (350_154_000_000.0, None));
    // "2:3":[5541.424,...] (ASIKHM, 2017) -> 5541424 tonnes.
    assert_eq!(got[&py("ASIKHM", "2017")], (5_541_424_000_000.0, None));
    // "1:2":[479.686,...] (ASIKHM002, 2016) -> 479686 tonnes.
    assert_eq!(got[&py("ASIKHM002", "2016")], (479_686_000_000.0, None));
    assert_eq!(periods(&got, "year"), ["2014", "2015", "2016", "2017"]);
    assert_eq!(named_labels(&ds), ["province"]);
    assert_eq!(
        names(&ds, "province", "en"),
        BTreeMap::from(
            [
                ("ASIKHM", "Cambodia"),
                ("ASIKHM001", "Banteay Meanchey"),
                ("ASIKHM002", "Battambang")
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        )
    );
    assert!(missing(&ds).is_empty());
    no_status(&ds);

    // Second reading: observation keys index the observation-level dimensions in order.
    let doc = json_fixture("sdmx-json/spec_v2.0.0_agri.json");
    let st = &doc["data"]["structures"][0];
    let dims = st["dimensions"]["observation"].as_array().unwrap();
    assert_eq!(
        (dims[0]["id"].as_str(), dims[1]["id"].as_str()),
        (Some("REF_AREA"), Some("TIME_PERIOD"))
    );
    let area = codes(&dims[0]["values"]);
    let time = codes(&dims[1]["values"]);
    let ds_attrs = st["attributes"]["dataSet"].as_array().unwrap();
    let data = &doc["data"]["dataSets"][0];
    let attr = |id: &str| {
        let i = ds_attrs.iter().position(|a| a["id"] == id).unwrap();
        let v = data["attributes"][i].as_u64().unwrap() as usize;
        codes(&ds_attrs[i]["values"])[v].clone()
    };
    assert_eq!(attr("UNIT_MEASURE"), "TONES");
    let mult: i32 = attr("UNIT_MULT").parse().unwrap();
    assert_eq!(mult, 3);
    let mut want = Series::new();
    for (k, obs) in data["observations"].as_object().unwrap() {
        let (a, t) = k.split_once(':').unwrap();
        let k = py(
            &area[a.parse::<usize>().unwrap()],
            &time[t.parse::<usize>().unwrap()],
        );
        assert!(obs[1].is_null(), "OBS_STATUS: default A");
        // Tonnes to grams: 10^6 more.
        want.insert(k, (shift(&number_text(&obs[0]).unwrap(), mult + 6), None));
    }
    same(name, &got, &want);
}

#[test]
fn csv_world_bank_wide_layout() {
    let ds = load("csv-worldbank-wide.toml");
    let name = "wdi_gdp_current_usd";
    let got = shape(&ds, name, Some("usd"), &["country", "year"], 11542);
    let cy = |c: &str, y: &str| key(&[("country", c), ("year", y)]);
    // Line 6: `"Aruba","ABW",...,"1330167597.76536"` in column "1994" (the first that is not
    // `""`) -> 1330167597.76536 USD.
    assert_eq!(got[&cy("ABW", "1994")], (1_330_167_597.765_36, None));
    // Line 7: `"Afghanistan","AFG",...,"537777811.111111"` in column "1960".
    assert_eq!(got[&cy("AFG", "1960")], (537_777_811.111_111, None));
    // Aruba's 1960 cell is `""`: no series.
    assert!(!got.contains_key(&cy("ABW", "1960")));
    let years = periods(&got, "year");
    assert_eq!(
        (years[0].as_str(), years.last().unwrap().as_str()),
        ("1960", "2016")
    );
    assert_eq!(named_labels(&ds), ["country"]);
    let n = names(&ds, "country", "en");
    assert_eq!(n["BHS"], "Bahamas, The");
    assert_eq!(n["WLD"], "World");
    no_status(&ds);

    // Second reading: the csv crate after the 4 preamble lines; every year column.
    let (h, rows) = csv_records(
        &fixture("csv-plain/worldbank_API_NY.GDP.MKTP.CD_DS2_en_csv_v2.csv"),
        4,
    );
    let code = col(&h, "Country Code");
    let cname = col(&h, "Country Name");
    let years: Vec<usize> = (0..h.len())
        .filter(|&j| h[j].len() == 4 && h[j].bytes().all(|b| b.is_ascii_digit()))
        .collect();
    assert_eq!(years.len(), 57);
    assert_eq!(h.last().unwrap(), "", "the trailing empty column");
    let mut want = Series::new();
    let mut want_names = BTreeMap::new();
    let mut empty = 0;
    for r in &rows {
        assert_eq!(r[col(&h, "Indicator Code")], "NY.GDP.MKTP.CD");
        // Display names are served for codes that are served: countries with a figure.
        if years.iter().any(|&j| !r[j].is_empty()) {
            want_names.insert(r[code].clone(), r[cname].clone());
        }
        for &j in &years {
            if r[j].is_empty() {
                empty += 1;
            } else {
                want.insert(cy(&r[code], &h[j]), (shift(&r[j], 0), None));
            }
        }
    }
    assert_eq!(rows.len(), 264);
    assert_eq!(
        missing(&ds),
        [(name.to_string(), "missing".to_string(), empty)]
    );
    assert_eq!(empty, 3506);
    // 8 rows (CUW, GIB, INX, MAF, PRK, SXM, TCA, VGB) have no figure at all.
    assert_eq!((n.len(), want_names.len()), (256, 256));
    assert_eq!(n, want_names);
    same(name, &got, &want);
}

#[test]
fn csv_unicef_long_layout_with_flags() {
    let ds = load("csv-unicef-long.toml");
    let name = "unicef_measles_first_dose_coverage_ratio";
    let got = shape(&ds, name, Some("ratio"), &["ref_area", "year"], 18);
    let ay = |a: &str, y: &str| key(&[("ref_area", a), ("year", y)]);
    let e = Some("E".to_string());
    // Line 2: `BRA,Brazil,IM_MCV1,...,0,Units,PCNT,%,,,2015,96,,,E,Estimated value,...`
    // -> 96 % = 0.96, flagged E.
    assert_eq!(got[&ay("BRA", "2015")], (0.96, e.clone()));
    // Line 8: `BRA,...,2021,73,...,E,...` -> 0.73.
    assert_eq!(got[&ay("BRA", "2021")], (0.73, e.clone()));
    // Line 15: `USA,United States,...,2019,90,...,E,...` -> 0.9.
    assert_eq!(got[&ay("USA", "2019")], (0.9, e.clone()));
    assert_eq!(
        periods(&got, "year"),
        ["2015", "2016", "2017", "2018", "2019", "2020", "2021", "2022", "2023"]
    );
    assert_eq!(named_labels(&ds), ["ref_area"]);
    assert_eq!(
        names(&ds, "ref_area", "en"),
        BTreeMap::from([
            ("BRA".to_string(), "Brazil".to_string()),
            ("USA".to_string(), "United States".to_string())
        ])
    );
    assert!(missing(&ds).is_empty());

    // Second reading: the csv crate; percent and UNIT_MULTIPLIER shifted on the text.
    let (h, rows) = csv_records(
        &fixture("csv-plain/unicef_fusion_csv_IM_MCV1_USA_BRA_2015_2023.csv"),
        0,
    );
    let mut want = Series::new();
    for r in &rows {
        assert_eq!(r[col(&h, "UNIT_MEASURE")], "PCNT");
        let mult: i32 = r[col(&h, "UNIT_MULTIPLIER")].parse().unwrap();
        let status = match r[col(&h, "OBS_STATUS")].as_str() {
            "A" | "" => None,
            s => Some(s.to_string()),
        };
        want.insert(
            ay(&r[col(&h, "REF_AREA")], &r[col(&h, "TIME_PERIOD")]),
            (shift(&r[col(&h, "OBS_VALUE")], mult - 2), status),
        );
    }
    same(name, &got, &want);
}

#[test]
fn json_records_under_data_observations() {
    let ds = load("json-records.toml");
    let rate = "example_unemployment_rate_ratio";
    let emp = "example_employment_persons";
    let labels = ["quarter", "region"];
    let got_rate = shape(&ds, rate, Some("ratio"), &labels, 5);
    let got_emp = shape(&ds, emp, Some("persons"), &labels, 5);
    assert_eq!(ds.metrics.len(), 2, "VACANCIES is not served");
    let rq = |r: &str, q: &str| key(&[("quarter", q), ("region", r)]);
    let p = Some("P".to_string());
    // {"region":"R2","period":"2024Q3","value":"7.25","unit":"PC"} -> 0.0725.
    assert_eq!(got_rate[&rq("R2", "2024-Q3")], (0.0725, None));
    // {"region":"R1","period":"2025Q1","value":409.8,"unit":"THS_PER","status":"P"} -> 409800.
    assert_eq!(got_emp[&rq("R1", "2025-Q1")], (409_800.0, p.clone()));
    // {"region":"R2","period":"2024Q4","value":null,...,"status":"M"}: no series.
    assert!(!got_rate.contains_key(&rq("R2", "2024-Q4")));
    assert_eq!(
        periods(&got_emp, "quarter"),
        ["2024-Q3", "2024-Q4", "2025-Q1"]
    );
    assert!(ds.labels.is_empty());
    assert_eq!(
        missing(&ds),
        [
            (emp.to_string(), "confidential".to_string(), 1),
            (rate.to_string(), "not_available".to_string(), 1)
        ]
    );

    // Second reading.
    let text = std::fs::read_to_string(repo("examples/formats/data/observations.json")).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert!(doc["notice"]
        .as_str()
        .unwrap()
        .contains("Illustrative sample"));
    let (mut want_rate, mut want_emp) = (Series::new(), Series::new());
    for o in doc["data"]["observations"].as_array().unwrap() {
        let target = match o["indicator"].as_str().unwrap() {
            "UNEMP_RATE" => &mut want_rate,
            "EMPLOYED" => &mut want_emp,
            _ => continue,
        };
        let text = match number_text(&o["value"]) {
            Some(t) if t != ":" => t,
            _ => continue,
        };
        let exp = match o["unit"].as_str().unwrap() {
            "PC" => -2,
            "THS_PER" => 3,
            u => panic!("unit {u}"),
        };
        let period = o["period"].as_str().unwrap().replace('Q', "-Q");
        let status = match o["status"].as_str().unwrap() {
            "A" => None,
            s => Some(s.to_string()),
        };
        target.insert(
            rq(o["region"].as_str().unwrap(), &period),
            (shift(&text, exp), status),
        );
    }
    same(rate, &got_rate, &want_rate);
    same(emp, &got_emp, &want_emp);
}

#[test]
fn json_stat_2_eurostat_sparse_values() {
    let ds = load("jsonstat-eurostat.toml");
    let name = "estat_unemployment_rate_ratio";
    let labels = ["geo", "sex", "age", "seasonal_adjustment", "period"];
    let got = shape(&ds, name, Some("ratio"), &labels, 31);
    let at = |p: &str| {
        key(&[
            ("geo", "DE"),
            ("sex", "T"),
            ("age", "TOTAL"),
            ("seasonal_adjustment", "SA"),
            ("period", p),
        ])
    };
    // "value": {"0": 3.2, ...} with time index {"2024-01": 0}: 3.2 % -> 0.032.
    assert_eq!(got[&at("2024-01")], (0.032, None));
    // "30": 4.0 ("2026-07": 30) -> 0.04.
    assert_eq!(got[&at("2026-07")], (0.04, None));
    // "2026-08": 31 has no entry in `value`.
    assert!(!got.contains_key(&at("2026-08")));
    assert_eq!(names(&ds, "geo", "en")["DE"], "Germany");
    assert_eq!(names(&ds, "sex", "en")["T"], "Total");
    no_status(&ds);

    // Second reading: row-major cell index over `size`, the last dimension fastest.
    let doc = json_fixture("jsonstat/estat_une_rt_m_DE_since_2024-01.json");
    let ids: Vec<&str> = doc["id"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let sizes: Vec<usize> = doc["size"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    let cells: usize = sizes.iter().product();
    let by_index = |dim: &str| -> BTreeMap<usize, String> {
        doc["dimension"][dim]["category"]["index"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(c, i)| (i.as_u64().unwrap() as usize, c.clone()))
            .collect()
    };
    let mut want = Series::new();
    let mut absent = 0;
    for cell in 0..cells {
        let Some(text) = doc["value"].get(cell.to_string()).and_then(number_text) else {
            absent += 1;
            continue;
        };
        let mut rest = cell;
        let mut k = Key::new();
        for (d, &n) in ids.iter().zip(&sizes).rev() {
            let code = by_index(d)[&(rest % n)].clone();
            rest /= n;
            match *d {
                "time" => k.insert("period".into(), code),
                "unit" => {
                    assert_eq!(code, "PC_ACT");
                    None
                }
                "freq" => None,
                // Renamed in the config: promtool reads `_s_` as an abbreviated unit.
                "s_adj" => k.insert("seasonal_adjustment".into(), code),
                other => k.insert(other.to_string(), code),
            };
        }
        want.insert(k, (shift(&text, -2), None));
    }
    // Cell 31 (2026-08) is absent from the sparse `value` (the file's extension lists it in
    // `positions-with-no-data`). The reader yields no observation for an absent cell without a
    // status, so it is not counted as missing (a dense `null` in the same place would be).
    assert_eq!(absent, 1);
    assert!(ds.missing.is_empty(), "{:?}", ds.missing);
    same(name, &got, &want);
}

#[test]
fn json_stat_1_cso_bundle() {
    let ds = load("jsonstat-cso-bundle.toml");
    let unadj = "cso_gdp_constant_factor_cost_eur";
    let sa = "cso_gdp_constant_factor_cost_seasonally_adjusted_eur";
    let got_unadj = shape(&ds, unadj, Some("eur"), &["sector", "quarter"], 608);
    let got_sa = shape(&ds, sa, Some("eur"), &["sector", "quarter"], 608);
    let sq = |s: &str, q: &str| key(&[("sector", s), ("quarter", q)]);
    // value[0] = 19960: Sector "0", Quarter "1997Q1", Statistic NQQ25C01, Euro Million
    // -> 19960000000.
    assert_eq!(got_unadj[&sq("0", "1997-Q1")], (19_960_000_000.0, None));
    // value[3] = 21396: Sector "0", "1997Q2", NQQ25S1 (seasonally adjusted).
    assert_eq!(got_sa[&sq("0", "1997-Q2")], (21_396_000_000.0, None));
    assert_eq!(periods(&got_sa, "quarter")[0], "1997-Q1");
    assert_eq!(names(&ds, "sector", "en")["02"], "Industry");
    assert!(missing(&ds).is_empty());
    no_status(&ds);

    // Second reading: Sector x Quarter x Statistic, row-major.
    let doc = json_fixture("jsonstat/cso_ie_NQQ25_bundle.json");
    let d = &doc["dataset"];
    let dim = &d["dimension"];
    let order = |id: &str| -> Vec<String> {
        let mut v: Vec<(u64, String)> = dim[id]["category"]["index"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(c, i)| (i.as_u64().unwrap(), c.clone()))
            .collect();
        v.sort();
        v.into_iter().map(|(_, c)| c).collect()
    };
    assert_eq!(
        dim["id"],
        serde_json::json!(["Sector", "Quarter", "Statistic"])
    );
    let (sectors, quarters, stats) = (order("Sector"), order("Quarter"), order("Statistic"));
    let values = d["value"].as_array().unwrap();
    assert_eq!(values.len(), sectors.len() * quarters.len() * stats.len());
    let (mut want_unadj, mut want_sa) = (Series::new(), Series::new());
    for (i, v) in values.iter().enumerate() {
        let (s, q, st) = (
            i / (quarters.len() * stats.len()),
            i / stats.len() % quarters.len(),
            i % stats.len(),
        );
        let q = &quarters[q];
        let period = format!("{}-{}", &q[..4], &q[4..]);
        let target = match stats[st].as_str() {
            "NQQ25C01" => &mut want_unadj,
            "NQQ25S1" => &mut want_sa,
            o => panic!("{o}"),
        };
        target.insert(
            sq(&sectors[s], &period),
            (shift(&number_text(v).unwrap(), 6), None),
        );
    }
    same(unadj, &got_unadj, &want_unadj);
    same(sa, &got_sa, &want_sa);
}

/// A PC-Axis fixture decoded in the code page its test names.
fn px_fixture(path: &str, encoding: &'static encoding_rs::Encoding) -> String {
    let bytes = std::fs::read(repo(&format!("tests/fixtures/publishers/{path}")))
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let (text, _, bad) = encoding.decode(&bytes);
    assert!(!bad, "{path} is not {}", encoding.name());
    text.replace("\r\n", "\n")
}

/// The strings of record `key` (`VALUES("Product group")`), a deliberately simple reading: from
/// the line starting `key=` to the first `;` ending a line, `TLIST(..),` dropped, strings
/// continued over lines joined, items split at `","`.
fn px_items(text: &str, key: &str) -> Vec<String> {
    let head = format!("\n{key}=");
    let start = text.find(&head).unwrap_or_else(|| panic!("no {key}")) + head.len();
    let body = &text[start..];
    let body = &body[..body.find(";\n").expect("end of record")];
    let body = body.replace(",\n", ",").replace("\"\n\"", "");
    let body = match body.strip_prefix("TLIST(") {
        Some(rest) => rest[rest.find("),").expect("TLIST list") + 2..].to_string(),
        None => body,
    };
    body.trim()
        .trim_matches('"')
        .split("\",\"")
        .map(str::to_string)
        .collect()
}

/// The cells after `DATA=`, quotes dropped.
fn px_data(text: &str) -> Vec<String> {
    let data = &text[text.find("\nDATA=").expect("DATA") + 6..];
    data.trim_end()
        .trim_end_matches(';')
        .split_whitespace()
        .map(|c| c.trim_matches('"').to_string())
        .collect()
}

/// Every cell of a table with variables of these sizes: its coordinates, last fastest.
fn px_coordinates(sizes: &[usize]) -> Vec<Vec<usize>> {
    let cells: usize = sizes.iter().product();
    (0..cells)
        .map(|mut i| {
            let mut c = vec![0; sizes.len()];
            for k in (0..sizes.len()).rev() {
                c[k] = i % sizes[k];
                i /= sizes[k];
            }
            c
        })
        .collect()
}

#[test]
fn pc_axis_scb_cpi_windows_1252_timeval_months() {
    let ds = load("pcaxis-scb-cpi.toml");
    let name = "scb_cpi_coicop_index";
    let got = shape(&ds, name, Some("index"), &["product_group", "month"], 324);
    let at = |g: &str, m: &str| key(&[("product_group", g), ("month", m)]);
    // The first cell of DATA: "01" in TIMEVAL's first period "200610".
    assert_eq!(got[&at("01", "2006-10")], (240.25, None));
    // The last: "01.2" in "200812".
    assert_eq!(got[&at("01.2", "2008-12")], (182.84, None));
    // Row 4 ("01.1.2"), column 4 ("200701").
    assert_eq!(got[&at("01.1.2", "2007-01")], (233.91, None));
    let names = names(&ds, "product_group", "en");
    assert_eq!(names["01.1.2"], "01.1.2 Meat");
    assert_eq!(
        names["01.1.8"],
        "01.1.8 Sugar, jam, honey, chocolate and confectionery"
    );
    assert_eq!(names.len(), 12);
    assert!(missing(&ds).is_empty());
    no_status(&ds);

    // Second reading: STUB "Product group" (CODES) x HEADING "period" (TIMEVAL CCYYMM).
    let text = px_fixture(
        "pcaxis/scb_PR0101B3_cpi_monthly.px",
        encoding_rs::WINDOWS_1252,
    );
    let groups = px_items(&text, "CODES(\"Product group\")");
    let months: Vec<String> = px_items(&text, "TIMEVAL(\"period\")")
        .iter()
        .map(|t| format!("{}-{}", &t[..4], &t[4..]))
        .collect();
    assert_eq!(months.len(), 27);
    let cells = px_data(&text);
    let coords = px_coordinates(&[groups.len(), months.len()]);
    assert_eq!(cells.len(), coords.len());
    let mut want = Series::new();
    for (cell, c) in cells.iter().zip(&coords) {
        want.insert(at(&groups[c[0]], &months[c[1]]), (shift(cell, 0), None));
    }
    same(name, &got, &want);
}

#[test]
fn pc_axis_ine_iso_8859_15_missing_symbols() {
    let ds = load("pcaxis-ine-ipri.toml");
    let name = "ine_industrial_producer_prices_index";
    let labels = ["region", "division", "month"];
    let got = shape(&ds, name, Some("index"), &labels, 91);
    let food = "10 Industria de la alimentación";
    let at = |d: &str, m: &str| key(&[("region", "CA06"), ("division", d), ("month", m)]);
    // Division 4 ("10 …"), "Índice", the first period "2018M12" and the last "2018M06".
    assert_eq!(got[&at(food, "2018-12")], (102.787, None));
    assert_eq!(got[&at(food, "2018-06")], (104.388, None));
    assert_eq!(
        got[&at("08 Otras industrias extractivas", "2018-09")],
        (100.0, None)
    );
    // Division "05 …" is all "..": no sample.
    assert!(!got.keys().any(|k| k["division"].starts_with("05 ")));
    assert_eq!(names(&ds, "region", "es")["CA06"], "06 Cantabria");
    assert_eq!(named_labels(&ds), ["region"]);
    no_status(&ds);

    // Second reading: Comunidad (CODES) x Divisiones x Índice y tasas x Periodo (VALUES).
    let text = px_fixture(
        "pcaxis/ine_27067_ipri_cantabria_monthly.px",
        encoding_rs::ISO_8859_15,
    );
    let region = px_items(&text, "CODES(\"Comunidades y Ciudades Autónomas\")");
    let divisions = px_items(&text, "VALUES(\"Divisiones\")");
    let measures = px_items(&text, "VALUES(\"Índice y tasas\")");
    let months: Vec<String> = px_items(&text, "VALUES(\"Periodo\")")
        .iter()
        .map(|t| format!("{}-{}", &t[..4], &t[5..]))
        .collect();
    assert_eq!((divisions.len(), measures.len(), months.len()), (29, 4, 7));
    let cells = px_data(&text);
    let sizes = [region.len(), divisions.len(), measures.len(), months.len()];
    let coords = px_coordinates(&sizes);
    assert_eq!(cells.len(), coords.len());
    let mut want = Series::new();
    let mut symbols = 0;
    for (cell, c) in cells.iter().zip(&coords) {
        if measures[c[2]] != "Índice" {
            continue;
        }
        if cell == "." || cell == ".." {
            symbols += 1;
            continue;
        }
        let k = key(&[
            ("region", &region[c[0]]),
            ("division", &divisions[c[1]]),
            ("month", &months[c[3]]),
        ]);
        want.insert(k, (shift(cell, 0), None));
    }
    assert_eq!(symbols, 29 * 7 - 91);
    assert_eq!(
        missing(&ds),
        [(name.to_string(), "not_available".to_string(), symbols)]
    );
    same(name, &got, &want);
}

#[test]
fn pc_axis_statfin_three_languages_content_units() {
    let ds = load("pcaxis-statfin-cpi.toml");
    let name = "statfin_cpi_annual_change_ratio";
    let got = shape(&ds, name, Some("ratio"), &["measure", "year"], 44);
    let at = |y: &str| key(&[("measure", "Vuosimuutos"), ("year", y)]);
    assert_eq!(got[&at("1980")], (0.116, None));
    assert_eq!(got[&at("2015")], (-0.002, None));
    assert_eq!(got[&at("2023")], (0.062, None));
    // The content's name in each of the file's languages, main language first.
    let l = ds.labels.iter().find(|l| l.name == "measure").unwrap();
    assert_eq!(l.languages, ["en", "fi", "sv"]);
    assert_eq!(
        l.values,
        [(
            "Vuosimuutos".to_string(),
            vec![
                "Annual change (%)".to_string(),
                "Vuosimuutos (%)".to_string(),
                "Årsförändring (%)".to_string()
            ]
        )]
    );
    assert!(missing(&ds).is_empty());
    no_status(&ds);

    // Second reading: STUB "Year" (TIMEVAL A1) x HEADING "Information" (one content).
    let text = px_fixture(
        "pcaxis/statfin_khi_pxt_122q_cpi_annual_change.px",
        encoding_rs::ISO_8859_15,
    );
    let years = px_items(&text, "TIMEVAL[en](\"Year\")");
    assert_eq!(px_items(&text, "UNITS[en](\"Annual change (%)\")"), ["%"]);
    let cells = px_data(&text);
    assert_eq!(cells.len(), years.len());
    let want: Series = years
        .iter()
        .zip(&cells)
        .map(|(y, c)| (at(y), (shift(c, -2), None)))
        .collect();
    same(name, &got, &want);
}

/// Fixture bytes.
fn fixture_bytes(path: &str) -> Vec<u8> {
    std::fs::read(repo(&format!("tests/fixtures/publishers/{path}")))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `YYYY-Qn` of an Excel 1900-system serial number counted by hand: day 1 is 1899-12-31 for
/// serials after the fictitious 1900-02-29 (60), so day n is n days after 1899-12-30.
fn quarter_of_serial(serial: u32) -> String {
    assert!(serial > 60);
    let (mut y, mut m, mut d) = (1899u32, 12u32, 30u32);
    let mut left = serial;
    let month_len = |y: u32, m: u32| match m {
        2 if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    while left > 0 {
        let step = left.min(month_len(y, m) - d + 1);
        left -= step;
        d += step;
        if d > month_len(y, m) {
            d = 1;
            m += 1;
            if m == 13 {
                m = 1;
                y += 1;
            }
        }
    }
    format!("{y}-Q{}", (m - 1) / 3 + 1)
}

/// The cells of one worksheet of an .xlsx, read with the zip crate and plain string search:
/// reference (`B11`) -> text (shared strings resolved).
fn xlsx_cells(bytes: &[u8], sheet_xml: &str) -> BTreeMap<String, String> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("zip");
    let mut read = |name: &str| {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut zip.by_name(name).expect(name), &mut s).expect(name);
        s
    };
    let strings: Vec<String> = read("xl/sharedStrings.xml")
        .split("<si>")
        .skip(1)
        .map(|si| {
            // Text of every <t> run, tags dropped, the five XML entities decoded.
            let mut text = String::new();
            for part in si.split("<t").skip(1) {
                let body = &part[part.find('>').unwrap() + 1..];
                text.push_str(&body[..body.find("</t>").unwrap_or(0)]);
            }
            text.replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&")
        })
        .collect();
    let xml = read(sheet_xml);
    let mut cells = BTreeMap::new();
    for c in xml.split("<c r=\"").skip(1) {
        let r = &c[..c.find('"').unwrap()];
        let open = &c[..c.find('>').unwrap()];
        if open.ends_with('/') {
            continue;
        }
        let Some(v) = c.find("<v>") else { continue };
        let v = &c[v + 3..v + c[v..].find("</v>").unwrap()];
        let text = if open.contains("t=\"s\"") {
            strings[v.parse::<usize>().unwrap()].clone()
        } else {
            v.to_string()
        };
        cells.insert(r.to_string(), text);
    }
    cells
}

#[test]
fn excel_abs_labour_force_xlsx_wide_with_metadata_rows() {
    let ds = load("excel-abs-labour-force.toml");
    assert_eq!(ds.info.name, "abs_lfs_hours");
    let name = "abs_labour_input_all_jobs";
    let got = shape(
        &ds,
        name,
        None,
        &["series_id", "series_type", "quarter"],
        7 * 148,
    );
    let q = |id: &str, p: &str| {
        key(&[
            ("series_id", id),
            ("series_type", "Seasonally Adjusted"),
            ("quarter", p),
        ])
    };
    // Data1!B11: serial 31017 (1984-12-01), 2923556.4816999999 thousand hours as stored: the
    // double 2923556.4817, times 1000.
    assert_eq!(got[&q("A84426298K", "1984-Q4")], (2_923_556_481.7, None));
    // Data1!B158: serial 44440 (2021-09-01), 5219204.7937000003.
    assert_eq!(got[&q("A84426298K", "2021-Q3")], (5_219_204_793.7, None));
    let ps = periods(&got, "quarter");
    assert_eq!(
        (ps.len(), ps[0].as_str(), ps[147].as_str()),
        (148, "1984-Q4", "2021-Q3")
    );
    assert!(ds.missing.is_empty(), "every cell has a figure");
    no_status(&ds);
    assert_eq!(named_labels(&ds), ["series_id"]);
    let n = names(&ds, "series_id", "en");
    assert_eq!(n.len(), 7);
    assert_eq!(n["A84426298K"], "Quarterly hours worked in all jobs ;");
    assert_eq!(
        n["A84426294A"],
        "Quarterly hours worked in all jobs ;  Market ;"
    );

    // Second reading: the sheet's XML, with the zip crate and string search.
    let cells = xlsx_cells(
        &fixture_bytes("xlsx/abs_6202021_labour_force.xlsx"),
        "xl/worksheets/sheet2.xml",
    );
    assert_eq!(cells["A10"], "Series ID");
    assert_eq!(cells["A2"], "Unit");
    let mut want = Series::new();
    for col in ["B", "C", "D", "E", "F", "G", "H"] {
        let id = &cells[&format!("{col}10")];
        assert_eq!(cells[&format!("{col}2")], "000 Hours");
        assert_eq!(cells[&format!("{col}3")], "Seasonally Adjusted");
        assert_eq!(&n[id], &cells[&format!("{col}1")]);
        for row in 11..=158 {
            let serial: u32 = cells[&format!("A{row}")].parse().unwrap();
            let stored: f64 = cells[&format!("{col}{row}")].parse().unwrap();
            // The double the cell holds, in its shortest form, scaled on the text.
            want.insert(
                q(id, &quarter_of_serial(serial)),
                (shift(&stored.to_string(), 3), None),
            );
        }
    }
    same(name, &got, &want);
}

#[test]
fn excel_abs_cpi_xls_filtered_by_unit_with_missing_cells() {
    use calamine::Reader;
    let ds = load("excel-abs-cpi-xls.toml");
    let name = "abs_cpi_all_groups_index";
    let got = shape(
        &ds,
        name,
        Some("index"),
        &["series_id", "quarter"],
        9 * 284 - 128,
    );
    let q = |id: &str, p: &str| key(&[("series_id", id), ("quarter", p)]);
    // Sydney: Data1!B11, 1948-09-01, 3.7; Data1!B294, 2019-06-01, 115.9.
    assert_eq!(got[&q("A2325806K", "1948-Q3")], (3.7, None));
    assert_eq!(got[&q("A2325806K", "2019-Q2")], (115.9, None));
    // Darwin's index starts in 1980-Q3 (Data1!H139, 28.8): 128 empty cells before it.
    assert!(!got.contains_key(&q("A2325836X", "1980-Q2")));
    assert_eq!(got[&q("A2325836X", "1980-Q3")], (28.8, None));
    assert_eq!(
        missing(&ds),
        [(name.to_string(), "missing".to_string(), 128)]
    );
    assert_eq!(
        names(&ds, "series_id", "en")["A2325846C"],
        "Index Numbers ;  All groups CPI ;  Australia ;"
    );

    // Second reading: calamine's own range of the sheet, dates by calamine's conversion.
    let mut wb: calamine::Xls<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(
        fixture_bytes("xls/abs_640101_cpi.xls"),
    ))
    .unwrap();
    let range = wb.worksheet_range("Data1").unwrap();
    let rows: Vec<_> = range.rows().collect();
    let text = |d: &calamine::Data| d.to_string();
    assert_eq!(text(&rows[9][0]), "Series ID");
    let mut want = Series::new();
    let mut empty = 0;
    for c in 1..rows[9].len() {
        if text(&rows[1][c]) != "Index Numbers" {
            continue;
        }
        for row in &rows[10..] {
            let calamine::Data::DateTime(dt) = &row[0] else {
                panic!("not a date: {:?}", row[0]);
            };
            let (y, m, ..) = dt.to_ymd_hms_milli();
            let period = format!("{y}-Q{}", (m - 1) / 3 + 1);
            match &row[c] {
                calamine::Data::Empty => empty += 1,
                calamine::Data::Float(f) => {
                    want.insert(q(&text(&rows[9][c]), &period), (*f, None));
                }
                other => panic!("not a number: {other:?}"),
            }
        }
    }
    assert_eq!(empty, 128);
    same(name, &got, &want);
}

#[test]
fn bundled_config_still_loads() {
    let ds = indicator_exporter::check(&repo("config.toml")).expect("config.toml loads");
    assert_eq!(ds.series_count(), 37);
}

#[test]
fn every_example_passes_config_check() {
    let dir = repo("examples/formats");
    let mut found: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    found.sort();
    assert_eq!(found, EXAMPLES, "every example has its test");
    for name in EXAMPLES {
        let out = common::exporter::command()
            .arg("--config.check")
            .arg("--config.file")
            .arg(dir.join(name))
            .output()
            .expect("run the binary");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && format!("{stdout}{stderr}").contains(": OK: dataset "),
            "{name}: {}\n{stdout}{stderr}",
            out.status
        );
    }
}

/// Every example docs/formats.md shows is the file it names, byte for byte; every example file
/// is shown whole there; and any other page that names one shows the whole file or, as the
/// link checker of tests/docs.rs requires, a part of it.
#[test]
fn docs_examples_are_the_example_files() {
    let mut shown = BTreeSet::new();
    for (page, text) in common::docs::pages() {
        for b in common::docs::blocks(&page, &text) {
            let Some(path) = b.file.filter(|f| f.starts_with("examples/formats/")) else {
                continue;
            };
            let file =
                std::fs::read_to_string(repo(&path)).unwrap_or_else(|e| panic!("{path}: {e}"));
            if page == "docs/formats.md" {
                assert_eq!(b.body, file, "{page}:{}: the block of {path}", b.line);
            }
            if b.body == file {
                shown.insert(path);
            }
        }
    }
    let files: BTreeSet<String> = std::fs::read_dir(repo("examples/formats"))
        .expect("examples/formats")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| {
            format!(
                "examples/formats/{}",
                p.file_name().unwrap().to_string_lossy()
            )
        })
        .collect();
    assert_eq!(shown, files);
}

/// A file's unit column is read even when the metric names its unit: euros are refused for a
/// metric in dollars, not served as dollars.
#[test]
fn a_unit_column_is_checked_against_the_configured_unit() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("d.csv"),
        "REF_AREA,TIME_PERIOD,OBS_VALUE,UNIT_MEASURE\nDE,2024,1.5,EUR\n",
    )
    .unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        "[dataset]\nname = \"d\"\ntitle = \"t\"\npublisher = \"p\"\nsource_url = \"u\"\npublished = \"2025-01-01\"\nmetric_prefix = \"x_\"\n\
         [[metric]]\nname = \"gdp\"\nunit = \"usd\"\nhelp = \"h\"\n\
         [[input]]\nfile = \"d.csv\"\nformat = \"csv\"\nmetric = \"gdp\"\nlabels = { area = \"REF_AREA\" }\n",
    )
    .unwrap();
    let e = indicator_exporter::check(&config).unwrap_err().to_string();
    let want = format!(
        "{}:2:13: unit `EUR` is eur, expected usd like the unit of metric `gdp` in the config",
        dir.path().join("d.csv").display()
    );
    assert_eq!(e, want);
}

/// Labels dropped as single-valued take their display names with them: no `_info` family for
/// a label that no series has.
#[test]
fn dropped_labels_have_no_display_names() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(repo("examples/formats/sdmx-csv-eurostat.toml")).unwrap();
    let fixture =
        repo("tests/fixtures/publishers/sdmx-csv/estat_ei_bpm6ca_q_sdmxcsv2_labelsname.csv");
    let text: String = text
        .lines()
        .map(|l| {
            if l.starts_with("labels = ") {
                "drop_single_valued = true".to_string()
            } else if l.starts_with("file = ") {
                format!("file = {:?}", fixture.display().to_string())
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let config = dir.path().join("c.toml");
    std::fs::write(&config, text).unwrap();
    let ds = indicator_exporter::check(&config).unwrap_or_else(|e| panic!("{e}"));
    let served: BTreeSet<&str> = ds
        .metrics
        .iter()
        .flat_map(|m| m.label_names.iter().map(String::as_str))
        .collect();
    assert!(!ds.labels.is_empty() || served.len() == 1);
    for l in &ds.labels {
        assert!(
            served.contains(l.name.as_str()),
            "names of `{}`, which no metric has",
            l.name
        );
    }
}

// ---------------------------------------------------------------------------------------------
// SDMX-ML, read a second time by splitting the text at `<`: each piece up to `>` is one tag, its
// local name and `NAME="value"` attributes found by plain string search.

/// The tags of an XML text: (local name, attribute text), end tags and declarations left out.
fn xml_tags(text: &str) -> Vec<(&str, &str)> {
    text.split('<')
        .skip(1)
        .filter(|t| !t.starts_with(['/', '?', '!']))
        .map(|t| {
            let t = &t[..t.find('>').expect("tag closed")];
            let end = t.find(char::is_whitespace).unwrap_or(t.len());
            let name = &t[..end];
            (name.rsplit(':').next().unwrap(), &t[end..])
        })
        .collect()
}

/// The value of attribute `name` in a tag's attribute text (no entity in these files).
fn xml_attr<'t>(attrs: &'t str, name: &str) -> Option<&'t str> {
    let at = attrs
        .match_indices(&format!("{name}=\""))
        .find(|(i, _)| attrs[..*i].ends_with(char::is_whitespace))?
        .0;
    let rest = &attrs[at + name.len() + 2..];
    Some(&rest[..rest.find('"').expect("closing quote")])
}

#[test]
fn sdmx_ml_ecb_generic_data_reply() {
    let ds = load("sdmx-ml-ecb-generic.toml");
    assert_eq!(ds.info.name, "ecb_exr_usd_monthly");
    let name = "ecb_euro_reference_exchange_rate_ratio";
    let got = shape(&ds, name, Some("ratio"), &["currency", "month"], 252);
    let m = |p: &str| key(&[("currency", "USD"), ("month", p)]);
    // Lines 32-34: `<generic:Obs>`, `<generic:ObsDimension value="1999-01"/>`,
    // `<generic:ObsValue value="1.16078"/>`.
    assert_eq!(got[&m("1999-01")], (1.16078, None));
    assert_eq!(got[&m("1999-03")], (1.088_295_652_173_913, None));
    assert_eq!(got[&m("2019-12")], (1.111345, None));
    let months = periods(&got, "month");
    assert_eq!(
        (months[0].as_str(), months[251].as_str()),
        ("1999-01", "2019-12")
    );
    assert!(missing(&ds).is_empty());
    // The data message gives no names; the structure message the input names does.
    let currency = ds.labels.iter().find(|l| l.name == "currency").unwrap();
    assert_eq!(currency.languages, ["en"]);
    assert_eq!(
        currency.values,
        [("USD".to_string(), vec!["US dollar".to_string()])]
    );
    no_status(&ds);

    // Second reading.
    let text = fixture("sdmx-ml/ecb_exr_M.USD.EUR.SP00.A_generic.xml");
    let mut want = Series::new();
    let mut period = None;
    let mut statuses = 0;
    for (tag, attrs) in xml_tags(&text) {
        match tag {
            "ObsDimension" => period = xml_attr(attrs, "value"),
            "ObsValue" => {
                let v = xml_attr(attrs, "value").expect("value");
                let p = period.take().expect("ObsDimension before ObsValue");
                assert!(want.insert(m(p), (shift(v, 0), None)).is_none());
            }
            "Value" if xml_attr(attrs, "id") == Some("OBS_STATUS") => {
                assert_eq!(xml_attr(attrs, "value"), Some("A"));
                statuses += 1;
            }
            _ => {}
        }
    }
    assert_eq!((want.len(), statuses), (252, 252));
    same(name, &got, &want);
}

#[test]
fn sdmx_ml_bis_structure_specific_equals_the_bis_sdmx_csv() {
    let ds = load("sdmx-ml-bis-structurespecific.toml");
    let name = "bis_fx_turnover_daily_average_usd";
    let labels = ["currency_leg1", "currency_leg2", "year"];
    let got = shape(&ds, name, Some("usd"), &labels, 360);
    let yr = |l1: &str, l2: &str, y: &str| {
        key(&[("currency_leg1", l1), ("currency_leg2", l2), ("year", y)])
    };
    // Line 29: `<Obs TIME_PERIOD="2004" OBS_VALUE="14206.490766" OBS_STATUS="A" .../>` in the
    // HKD/TO1 series, UNIT_MULT="6" on the DataSet: 14206490766 USD.
    assert_eq!(got[&yr("HKD", "TO1", "2004")], (14_206_490_766.0, None));
    assert!(!got.contains_key(&yr("HKD", "TO1", "2002")));
    assert_eq!(
        missing(&ds),
        [(name.to_string(), "not_available".to_string(), 640)]
    );
    no_status(&ds);

    // The same observations as SDMX-CSV: every series and every missing count equal.
    let csv = load("sdmx-csv-bis.toml");
    let want = shape(&csv, name, Some("usd"), &labels, 360);
    same(name, &got, &want);
    assert_eq!(missing(&ds), missing(&csv));

    // Second reading of the XML.
    let text = fixture("sdmx-ml/bis_der_structurespecific.xml");
    let mut want = Series::new();
    let (mut legs, mut m, mut obs) = ((String::new(), String::new()), 0, 0);
    let mut unit_mult = None;
    for (tag, attrs) in xml_tags(&text) {
        match tag {
            "DataSet" => unit_mult = xml_attr(attrs, "UNIT_MULT"),
            "Series" => {
                legs = (
                    xml_attr(attrs, "DER_CURR_LEG1").unwrap().to_string(),
                    xml_attr(attrs, "DER_CURR_LEG2").unwrap().to_string(),
                )
            }
            "Obs" => {
                obs += 1;
                let v = xml_attr(attrs, "OBS_VALUE").unwrap();
                let status = xml_attr(attrs, "OBS_STATUS").unwrap();
                if v.is_empty() {
                    assert_eq!(status, "M");
                    m += 1;
                    continue;
                }
                assert_eq!(status, "A");
                let t = xml_attr(attrs, "TIME_PERIOD").unwrap();
                want.insert(yr(&legs.0, &legs.1, t), (shift(v, 6), None));
            }
            _ => {}
        }
    }
    assert_eq!((obs, m, unit_mult), (1000, 640, Some("6")));
    same(name, &got, &want);
}

#[test]
fn sdmx_ml_30_ecb_structure_specific_sample() {
    let ds = load("sdmx-ml-30-ecb.toml");
    let name = "ecb_euro_reference_exchange_rate_ratio";
    let got = shape(
        &ds,
        name,
        Some("ratio"),
        &["currency", "suffix", "year"],
        116,
    );
    let k = |c: &str, s: &str, y: &str| key(&[("currency", c), ("suffix", s), ("year", y)]);
    // Line 20: the first Obs of the CAD average series.
    assert_eq!(got[&k("CAD", "A", "1999")], (1.583_993_822_393_823, None));
    // Line 112: the first Obs of the LTL average series; line 130: of its end-of-year series.
    assert_eq!(got[&k("LTL", "A", "1999")], (4.264_074_131_274_129, None));
    assert_eq!(got[&k("LTL", "E", "1999")], (4.0169, None));
    assert!(missing(&ds).is_empty());
    no_status(&ds);

    // Second reading.
    let text = fixture("sdmx-ml/ecb_exr_sdmxml30_structurespecific.xml");
    let mut want = Series::new();
    let mut series = (String::new(), String::new());
    for (tag, attrs) in xml_tags(&text) {
        match tag {
            "Series" => {
                assert_eq!(xml_attr(attrs, "UNIT_MULT"), Some("0"));
                series = (
                    xml_attr(attrs, "CURRENCY").unwrap().to_string(),
                    xml_attr(attrs, "EXR_SUFFIX").unwrap().to_string(),
                );
            }
            "Obs" => {
                let (t, v) = (xml_attr(attrs, "TIME_PERIOD"), xml_attr(attrs, "OBS_VALUE"));
                let kk = k(&series.0, &series.1, t.unwrap());
                assert!(want.insert(kk, (shift(v.unwrap(), 0), None)).is_none());
            }
            _ => {}
        }
    }
    assert_eq!(want.len(), 116);
    same(name, &got, &want);
}

/// An SDMX-ML message whose second data set has `action="Delete"`: the observations it names
/// are not served, the others are; a missing value (`NaN`) gives no sample and is counted.
#[test]
fn sdmx_ml_delete_data_sets_remove_what_the_message_gave_before() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("d.xml"),
        r#"<?xml version="1.0"?>
<mes:StructureSpecificData xmlns:mes="http://www.sdmx.org/resources/sdmxml/schemas/v3_0/message">
<mes:DataSet action="Replace" UNIT_MEASURE="EUR">
<Series REF_AREA="DE"><Obs TIME_PERIOD="2023" OBS_VALUE="1.5"/><Obs TIME_PERIOD="2024" OBS_VALUE="2.5"/></Series>
<Series REF_AREA="FR"><Obs TIME_PERIOD="2024" OBS_VALUE="NaN"/></Series>
</mes:DataSet>
<mes:DataSet action="Delete"><Series REF_AREA="DE"><Obs TIME_PERIOD="2023"/></Series></mes:DataSet>
</mes:StructureSpecificData>
"#,
    )
    .unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        "[dataset]\nname = \"d\"\ntitle = \"t\"\npublisher = \"p\"\nsource_url = \"u\"\npublished = \"2025-01-01\"\nmetric_prefix = \"x_\"\n\
         [dataset.period]\nlabel = \"year\"\ncadence = \"annual\"\n\
         [[metric]]\nname = \"gdp\"\nunit = \"eur\"\nhelp = \"h\"\n\
         [[input]]\nfile = \"d.xml\"\nformat = \"sdmx-ml\"\nmetric = \"gdp\"\nlabels = { area = \"REF_AREA\" }\n",
    )
    .unwrap();
    let ds = indicator_exporter::check(&config).unwrap_or_else(|e| panic!("{e}"));
    let got = shape(&ds, "x_gdp_eur", Some("eur"), &["area", "year"], 1);
    assert_eq!(got[&key(&[("area", "DE"), ("year", "2024")])], (2.5, None));
    assert_eq!(
        missing(&ds),
        [("x_gdp_eur".to_string(), "missing".to_string(), 1)]
    );
}
