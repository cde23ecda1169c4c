//! The config language where real files tripped new users: each rule with the exact message it
//! gives or the exact series it serves, through the real binary.

mod common;

use std::path::{Path, PathBuf};

use common::exporter::run;
use common::exposition::{parse, Exposition};
use common::Exporter;

const HEAD: &str = r#"[dataset]
name = "lang"
title = "Config language"
publisher = "Test office"
source_url = "https://example.org/"
published = "2025-01-01"
metric_prefix = "t_"

[dataset.period]
label = "year"
cadence = "annual"
"#;

/// A temporary directory holding `dataset.toml` (HEAD + `rest`) and `data.csv`.
fn dataset(rest: &str, data: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = dir.path().join("dataset.toml");
    std::fs::write(&config, format!("{HEAD}{rest}")).expect("write config");
    std::fs::write(dir.path().join("data.csv"), data).expect("write data");
    (dir, config)
}

/// `--config.check`'s verdict: Ok(its stdout) or Err(its stderr, the file's directory cut).
fn check(dir: &tempfile::TempDir, config: &Path) -> Result<String, String> {
    let out = run(&["--config.check", "--config.file", config.to_str().unwrap()]);
    let cut =
        |b: &[u8]| String::from_utf8_lossy(b).replace(&format!("{}/", dir.path().display()), "");
    if out.status.success() {
        Ok(cut(&out.stdout))
    } else {
        Err(cut(&out.stderr))
    }
}

fn serve(config: &Path) -> Exposition {
    let e = Exporter::start(&["--config.file", config.to_str().unwrap()]);
    parse(&e.metrics())
}

fn missing(x: &Exposition, reason: &str) -> Option<f64> {
    x.value(
        "indicator_exporter_dataset_missing_observations",
        &[
            ("dataset", "lang"),
            ("metric", "t_gdp_eur"),
            ("reason", reason),
        ],
    )
}

const GDP: &str = r#"
[[metric]]
name = "gdp"
help = "Gross domestic product."
unit = "eur"
labels = ["area", "year"]
"#;

#[test]
fn missing_values_extend_the_defaults_and_replacing_them_is_explicit() {
    let data = "area,year,value\nDE,2020,1.5\nFR,2020,x\nES,2020,C\nIT,2020,..\n";
    let input =
        "\n[[input]]\nfile = \"data.csv\"\nformat = \"csv\"\nmetric = \"gdp\"\nmissing = [\"C\"]\n";
    let (_d, config) = dataset(&format!("{GDP}{input}"), data);
    let x = serve(&config);
    assert_eq!(
        x.value("t_gdp_eur", &[("area", "DE"), ("year", "2020")]),
        Some(1.5)
    );
    // `x` and `..` are defaults, `C` the input's own.
    assert_eq!(missing(&x, "confidential"), Some(1.0));
    assert_eq!(missing(&x, "not_available"), Some(1.0));
    assert_eq!(missing(&x, "missing"), Some(1.0));

    let replace = input.replace("missing = [", "missing_defaults = false\nmissing = [");
    let (d, config) = dataset(&format!("{GDP}{replace}"), data);
    assert_eq!(
        check(&d, &config),
        Err("data.csv:3:9: invalid value `x`, expected a number\n\
             data.csv:5:9: invalid value `..`, expected a number\n\
             dataset.toml: 2 error(s)\n"
            .into())
    );
}

#[test]
fn missing_reasons_are_mapped_from_status_codes_and_values() {
    // The publisher writes `x` for confidential cells and `F` (its status) for ones not yet
    // available; neither is what the exporter would guess.
    let data = "area,year,value,status\nDE,2020,1.5,\nFR,2020,,x\nES,2020,,F\nIT,2020,n.p.,\n";
    let input = "\n[[input]]\nfile = \"data.csv\"\nformat = \"csv\"\nmetric = \"gdp\"\n\
                 missing_reasons = { x = \"confidential\", F = \"not_available\", \"n.p.\" = \"confidential\" }\n";
    let (_d, config) = dataset(&format!("{GDP}{input}"), data);
    let x = serve(&config);
    assert_eq!(missing(&x, "confidential"), Some(2.0));
    assert_eq!(missing(&x, "not_available"), Some(1.0));
    assert_eq!(missing(&x, "missing"), None);

    let bad = input.replace("\"not_available\"", "\"withheld\"");
    let (d, config) = dataset(&format!("{GDP}{bad}"), data);
    let err = check(&d, &config).unwrap_err();
    assert!(
        err.starts_with("dataset.toml:23:45: unknown missing reason `withheld`, expected one of missing, not_available, confidential\n"),
        "{err}"
    );
}

#[test]
fn combined_statuses_split_into_their_flags() {
    let data = "area,year,value,status\nDE,2020,1.5,B; E\nFR,2020,2,\"p,e\"\nIT,2020,3,bp\n";
    let input = "\n[[input]]\nfile = \"data.csv\"\nformat = \"csv\"\nmetric = \"gdp\"\n";
    let (_d, config) = dataset(&format!("{GDP}{input}"), data);
    let x = serve(&config);
    let flag = |area: &str| {
        x.samples
            .iter()
            .find(|s| s.name == "t_gdp_observation_status_info" && s.label("area") == Some(area))
            .and_then(|s| s.label("flag").map(str::to_string))
    };
    assert_eq!(flag("DE").as_deref(), Some("break,estimated"));
    assert_eq!(flag("FR").as_deref(), Some("provisional,estimated"));
    assert_eq!(flag("IT").as_deref(), Some("break,provisional"));
}

#[test]
fn a_metric_scale_and_an_input_multiplier_have_distinct_names() {
    let data = "area,year,value\nDE,2020,1.5\n";
    let input = "\n[[input]]\nfile = \"data.csv\"\nformat = \"csv\"\nmetric = \"gdp\"\n";
    let old = GDP.replace("unit = \"eur\"", "unit = \"eur\"\nmultiplier = \"million\"");
    let (d, config) = dataset(&format!("{old}{input}"), data);
    assert_eq!(
        check(&d, &config),
        Err("dataset.toml:17:1: `multiplier` of a [[metric]] is now `scale` (the scale its figures are published in: `scale = \"million\"`); `multiplier` names an [[input]]'s component that holds one per observation\n\
             dataset.toml: 1 error(s)\n".into())
    );
    let new = GDP.replace("unit = \"eur\"", "unit = \"eur\"\nscale = \"million\"");
    let (_d, config) = dataset(&format!("{new}{input}"), data);
    let x = serve(&config);
    assert_eq!(
        x.value("t_gdp_eur", &[("area", "DE"), ("year", "2020")]),
        Some(1_500_000.0)
    );
}

#[test]
fn an_input_without_a_time_component_serves_figures_without_a_period() {
    let data = "area,value\nDE,1.5\nFR,2\n";
    let metric = GDP.replace("labels = [\"area\", \"year\"]", "labels = [\"area\"]");
    let input = "\n[[input]]\nfile = \"data.csv\"\nformat = \"csv\"\nmetric = \"gdp\"\n";
    let (_d, config) = dataset(&format!("{metric}{input}"), data);
    let x = serve(&config);
    let gdp: Vec<_> = x.samples.iter().filter(|s| s.name == "t_gdp_eur").collect();
    assert_eq!(gdp.len(), 2);
    assert_eq!(x.value("t_gdp_eur", &[("area", "FR")]), Some(2.0));

    // A metric that takes the period label still needs one, and is told how to do without.
    let (d, config) = dataset(&format!("{GDP}{input}"), data);
    assert_eq!(
        check(&d, &config),
        Err("dataset.toml:20:8: no period in `data.csv`, expected a time component or `period = \"COMPONENT\"`, one of: area, value (or leave `year` out of the metric's labels to serve figures without a period)\n\
             dataset.toml: 1 error(s)\n".into())
    );
}

#[test]
fn a_dataset_whose_every_figure_is_missing_loads_and_serves_its_counts() {
    let data = "area,year,value,status\nDE,2020,,C\nFR,2020,..,\n";
    let input = "\n[[input]]\nfile = \"data.csv\"\nformat = \"csv\"\nmetric = \"gdp\"\n";
    let (d, config) = dataset(&format!("{GDP}{input}"), data);
    assert_eq!(
        check(&d, &config),
        Ok("dataset.toml: OK: dataset lang, 1 metrics, 0 series\n  t_gdp_eur  0 series, 1 confidential, 1 not_available\n".into())
    );
    let x = serve(&config);
    assert_eq!(missing(&x, "confidential"), Some(1.0));
    assert_eq!(missing(&x, "not_available"), Some(1.0));
    assert!(x
        .samples
        .iter()
        .any(|s| s.name == "t_dataset_info" && s.label("publisher") == Some("Test office")));
    assert_eq!(
        x.value("indicator_exporter_dataset_ready", &[("dataset", "lang")]),
        Some(1.0)
    );
}

#[test]
fn identical_problems_on_many_rows_are_reported_once_with_a_count() {
    let mut data = String::from("area,year,value\n");
    for i in 0..40 {
        data.push_str(&format!("A{i},2020,n/k\n"));
    }
    data.push_str("B,2020,oops\n");
    let input = "\n[[input]]\nfile = \"data.csv\"\nformat = \"csv\"\nmetric = \"gdp\"\n";
    let (d, config) = dataset(&format!("{GDP}{input}"), &data);
    assert_eq!(
        check(&d, &config),
        Err("data.csv:2:9: invalid value `n/k`, expected a number (the same at 39 more places: 3:9, 4:9, 5:9 …)\n\
             data.csv:42:8: invalid value `oops`, expected a number\n\
             dataset.toml: 2 error(s)\n".into())
    );
}

#[test]
fn every_missing_field_of_a_table_is_named_in_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("dataset.toml");
    std::fs::write(
        &config,
        "[dataset]\nname = \"x\"\nmetric_prefix = \"x_\"\n\n[[metric]]\nname = \"gdp\"\n",
    )
    .unwrap();
    assert_eq!(
        check(&dir, &config),
        Err(
            "dataset.toml:1:1: missing fields `title`, `publisher`, `source_url`, `published`\n\
             dataset.toml:5:1: missing field `help`\n\
             dataset.toml: 2 error(s)\n"
                .into()
        )
    );
}

#[test]
fn a_pre_2_0_json_stat_status_object_is_read() {
    // Eurostat's files before JSON-stat 2.0 wrap the statuses in `value`, beside a category
    // that names them.
    let json = r#"{"dataset": {
        "label": "GDP",
        "dimension": {
            "id": ["geo", "time"], "size": [2, 1],
            "geo": {"category": {"index": {"DE": 0, "FR": 1}}},
            "time": {"category": {"index": {"2020": 0}}}
        },
        "value": {"0": 1.5},
        "status": {"value": {"0": "p", "1": ":"},
                   "category": {"label": {"p": "provisional", ":": "not available"}}}
    }}"#;
    let metric = GDP.replace(
        "labels = [\"area\", \"year\"]",
        "labels = [\"geo\", \"year\"]",
    );
    let input = "\n[[input]]\nfile = \"data.json\"\nformat = \"json-stat\"\nmetric = \"gdp\"\nlabels = { year = \"time\" }\n";
    let (d, config) = dataset(&format!("{metric}{input}"), "");
    std::fs::write(d.path().join("data.json"), json).unwrap();
    let x = serve(&config);
    assert_eq!(
        x.value("t_gdp_eur", &[("geo", "DE"), ("year", "2020")]),
        Some(1.5)
    );
    let flag = x
        .samples
        .iter()
        .find(|s| s.name == "t_gdp_observation_status_info" && s.label("geo") == Some("DE"))
        .and_then(|s| s.label("flag").map(str::to_string));
    assert_eq!(flag.as_deref(), Some("provisional"));
    assert_eq!(missing(&x, "not_available"), Some(1.0));
}

#[test]
fn a_unit_code_that_states_a_scale_cannot_be_mapped_to_a_unit_without_it() {
    let metric = GDP.replace("unit = \"eur\"\n", "");
    let data = "area,year,value,unit\nDE,2020,1.5,Million euro\n";
    let input = "\n[[input]]\nfile = \"data.csv\"\nformat = \"csv\"\nmetric = \"gdp\"\nunit_codes = { \"Million euro\" = \"eur\" }\n";
    let (d, config) = dataset(&format!("{metric}{input}"), data);
    assert_eq!(
        check(&d, &config),
        Err("dataset.toml:22:33: unit code `Million euro` is in millions (×10^6) but `eur` drops that scale, expected a unit that keeps it (`MIO_EUR`) or `scale = \"million\"` on the metric\n\
             dataset.toml: 1 error(s)\n".into())
    );
    // Kept by the unit, or stated by the metric: both serve euros.
    for (metric, input) in [
        (metric.clone(), input.replace("= \"eur\"", "= \"MIO_EUR\"")),
        (
            metric.replace("help =", "scale = \"million\"\nhelp ="),
            input.to_string(),
        ),
    ] {
        let (_d, config) = dataset(&format!("{metric}{input}"), data);
        let x = serve(&config);
        assert_eq!(
            x.value("t_gdp_eur", &[("area", "DE"), ("year", "2020")]),
            Some(1_500_000.0),
            "{metric}{input}"
        );
    }
    // A publisher's own code carries its scale without any mapping.
    let (_d, config) = dataset(
        &format!("{metric}\n[[input]]\nfile = \"data.csv\"\nformat = \"csv\"\nmetric = \"gdp\"\n"),
        "area,year,value,UNIT_MEASURE\nDE,2020,23962.1,MIO_EUR\n",
    );
    let x = serve(&config);
    assert_eq!(
        x.value("t_gdp_eur", &[("area", "DE"), ("year", "2020")]),
        Some(23_962_100_000.0)
    );
}

#[test]
fn an_index_metric_serves_and_shows_its_base_period() {
    let metric = GDP
        .replace("unit = \"eur\"", "unit = \"index\"\nindex_base = \"2015\"")
        .replace("name = \"gdp\"", "name = \"prices\"");
    let input = "\n[[input]]\nfile = \"data.csv\"\nformat = \"csv\"\nmetric = \"prices\"\n";
    let (_d, config) = dataset(
        &format!("{metric}{input}"),
        "area,year,value\nDE,2020,105.2\n",
    );
    let e = Exporter::start(&["--config.file", config.to_str().unwrap()]);
    let x = parse(&e.metrics());
    assert_eq!(
        x.value(
            "t_index_base_info",
            &[("base", "2015"), ("metric", "t_prices_index")]
        ),
        Some(1.0)
    );
    assert_eq!(
        x.value("t_prices_index", &[("area", "DE"), ("year", "2020")]),
        Some(105.2)
    );
    let help = x.family("t_prices_index").and_then(|f| f.help.clone());
    assert!(help.is_some_and(|h| h.ends_with("Index points, 2015 = 100.")));
    let page = e.get("/datasets/lang").text();
    assert!(page.contains("Index points, 2015 = 100."), "{page}");
}
