//! Half-years and ISO weeks through the real binary: PC-Axis files with `TLIST(H1)` and
//! `TLIST(W1)` are served with canonical periods (`2024-H1`, `2020-W53`), and their latest,
//! change and year-on-year series.

mod common;

use common::exposition::{parse, Exposition};
use common::Exporter;

/// Serves the PC-Axis file `px` as metric `t_price_eur`, its period label `label` of
/// `cadence`, and returns `/metrics`.
fn serve(px: &str, label: &str, cadence: &str) -> Exposition {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = dir.path().join("dataset.toml");
    std::fs::write(dir.path().join("table.px"), px).expect("write table");
    std::fs::write(
        &config,
        format!(
            r#"[dataset]
name = "periods"
title = "Prices by {label}"
publisher = "Test office"
source_url = "https://example.org/"
published = "2025-01-01"
metric_prefix = "t_"

[dataset.period]
label = "{label}"
cadence = "{cadence}"

[[metric]]
name = "price"
unit = "eur"
help = "Average price."

[[input]]
file = "table.px"
format = "pc-axis"
metric = "price"
labels = {{ fuel = "fuel" }}
"#
        ),
    )
    .expect("write config");
    let e = Exporter::start(&["--config.file", config.to_str().unwrap()]);
    parse(&e.metrics())
}

/// The text of the sample of `name` with `labels`, panicking with the family when absent.
#[track_caller]
fn text(x: &Exposition, name: &str, labels: &[(&str, &str)]) -> String {
    match x.get(name, labels) {
        Some(s) => s.text.clone(),
        None => panic!("no {name}{labels:?} in {:?}", x.by_name().get(name)),
    }
}

/// The periods served for `fuel`, in the order of the exposition.
fn periods(x: &Exposition, label: &str, fuel: &str) -> Vec<String> {
    x.by_name()["t_price_eur"]
        .iter()
        .filter(|s| s.label("fuel") == Some(fuel))
        .map(|s| s.label(label).unwrap().to_string())
        .collect()
}

fn px(heading: &str, values: &str, timeval: &str, data: &str) -> String {
    format!(
        r#"CHARSET="ANSI";
AXIS-VERSION="2013";
CODEPAGE="utf-8";
LANGUAGE="en";
MATRIX="FUEL01";
SUBJECT-AREA="Prices";
SUBJECT-CODE="PR";
TITLE="Fuel prices by fuel and {heading}";
CONTENTS="Fuel prices";
UNITS="EUR";
STUB="fuel";
HEADING="{heading}";
VALUES("fuel")="Petrol","Diesel";
VALUES("{heading}")={values};
TIMEVAL("{heading}")={timeval};
CODES("fuel")="P","D";
DATA=
{data};
"#
    )
}

#[test]
fn half_years_of_tlist_h1_are_served_with_year_on_year_changes() {
    let file = px(
        "half",
        r#""2022H2","2023H1","2023H2","2024H1""#,
        r#"TLIST(H1),"20222","20231","2023H2","20241""#,
        "1.50 1.61 1.63 1.72\n1.40 \"..\" 1.55 1.49",
    );
    let x = serve(&file, "half", "semiannual");
    let want = ["2022-H2", "2023-H1", "2023-H2", "2024-H1"];
    assert_eq!(periods(&x, "half", "P"), want);
    assert_eq!(periods(&x, "half", "D"), ["2022-H2", "2023-H2", "2024-H1"]);
    let p = [("fuel", "P")];
    assert_eq!(
        text(&x, "t_price_eur", &[("fuel", "P"), ("half", "2023-H2")]),
        "1.63"
    );
    assert_eq!(text(&x, "t_price_latest_eur", &p), "1.72");
    // 2024-01-01T00:00:00Z, the start of 2024-H1.
    assert_eq!(
        text(&x, "t_price_latest_half_start_timestamp_seconds", &p),
        "1704067200"
    );
    assert_eq!(text(&x, "t_price_change_eur", &p), "0.09");
    assert_eq!(text(&x, "t_price_year_on_year_change_eur", &p), "0.11");
    // Diesel has no figure for 2023-H1: a change on 2023-H2, none on a year earlier.
    let d = [("fuel", "D")];
    assert_eq!(text(&x, "t_price_change_eur", &d), "-0.06");
    assert_eq!(x.get("t_price_year_on_year_change_eur", &d), None);
}

#[test]
fn iso_weeks_of_tlist_w1_are_served_across_a_week_53() {
    let file = px(
        "week",
        r#""2020W02","2020W52","2020W53","2021W01","2021W02""#,
        r#"TLIST(W1),"202002","202052","2020W53","202101","202102""#,
        "1.50 1.61 1.63 1.62 1.58\n1.40 1.52 1.55 \"...\" 1.49",
    );
    let x = serve(&file, "week", "weekly");
    let want = ["2020-W02", "2020-W52", "2020-W53", "2021-W01", "2021-W02"];
    assert_eq!(periods(&x, "week", "P"), want);
    let p = [("fuel", "P")];
    assert_eq!(
        text(&x, "t_price_eur", &[("fuel", "P"), ("week", "2020-W53")]),
        "1.63"
    );
    assert_eq!(text(&x, "t_price_latest_eur", &p), "1.58");
    // Monday 2021-01-11T00:00:00Z, the start of ISO week 2 of 2021.
    assert_eq!(
        text(&x, "t_price_latest_week_start_timestamp_seconds", &p),
        "1610323200"
    );
    assert_eq!(text(&x, "t_price_change_eur", &p), "-0.04");
    // The same week number a year earlier: 2020-W02.
    assert_eq!(text(&x, "t_price_year_on_year_change_eur", &p), "0.08");
    // Diesel's 2021-W01 is missing: its change is on 2020-W53.
    let d = [("fuel", "D")];
    assert_eq!(text(&x, "t_price_change_eur", &d), "-0.06");
    assert_eq!(text(&x, "t_price_year_on_year_change_eur", &d), "0.09");
    assert_eq!(
        x.value(
            "indicator_exporter_dataset_missing_observations",
            &[
                ("dataset", "periods"),
                ("metric", "t_price_eur"),
                ("reason", "missing")
            ]
        ),
        Some(1.0)
    );
}
