//! SDMX structure messages against the real binary: the ECB's GenericData reply served with
//! the ECB's structure message gives the codes' display names on /metrics and on the dataset
//! page; a structure fetched from a publisher is kept under --storage.path, and a restart with
//! the publisher down still serves the names from that copy.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::source::Source;
use common::{poll_until_ok, repo, Exporter};

const DEADLINE: Duration = Duration::from_secs(20);
const NAMED_USD: &str = r#"ecb_currency_info{currency="USD",name_en="US dollar"} 1"#;

fn fixture(name: &str) -> PathBuf {
    repo(&format!("tests/fixtures/publishers/sdmx-ml/{name}"))
}

/// A dataset config reading the ECB GenericData reply with `structure`.
fn write_config(dir: &Path, structure: &str) -> PathBuf {
    let data = fixture("ecb_exr_M.USD.EUR.SP00.A_generic.xml");
    let text = format!(
        r#"[dataset]
name = "ecb_exr"
title = "ECB exchange rates"
publisher = "European Central Bank"
source_url = "https://data.ecb.europa.eu/data/datasets/EXR"
published = "2020-01-16"
metric_prefix = "ecb_"

[dataset.period]
label = "month"
cadence = "monthly"

[fetch]
refresh = "1h"
timeout = "2s"

[[metric]]
name = "euro_reference_exchange_rate"
unit = "ratio"
help = "US dollars per euro."

[[input]]
file = "{}"
format = "sdmx-ml"
structure = "{structure}"
metric = "euro_reference_exchange_rate"
labels = {{ currency = "CURRENCY", currency_denom = "CURRENCY_DENOM" }}
unit_codes = {{ USD = "ratio" }}
"#,
        data.display()
    );
    let path = dir.join("ecb.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// Polls /metrics until it holds `needle`.
fn until_metrics(e: &Exporter, needle: &str) -> String {
    poll_until_ok(needle, DEADLINE, Duration::from_millis(100), || {
        let m = e.metrics();
        if m.contains(needle) {
            Ok(m)
        } else {
            Err(m)
        }
    })
}

#[test]
fn a_structure_file_gives_display_names_on_metrics_and_the_dataset_page() {
    let dir = tempfile::tempdir().unwrap();
    let structure = fixture("ecb_exr1_structure_full_with_codelists.xml");
    let config = write_config(dir.path(), structure.to_str().unwrap());
    let e = Exporter::start(&["--config.file", config.to_str().unwrap()]);
    let m = until_metrics(&e, NAMED_USD);
    assert!(
        m.contains(r#"ecb_currency_denom_info{currency_denom="EUR",name_en="Euro"} 1"#),
        "{m}"
    );
    // A label is described by its component's concept.
    assert!(
        m.contains(
            "# HELP ecb_currency_info Display names of the codes of label `currency`: Currency\n"
        ),
        "{m}"
    );
    // Only codes that are served get a name: the codelist has hundreds of currencies.
    assert!(!m.contains(r#"currency="JPY""#), "{m}");
    let page = e.get("/datasets/ecb_exr").text();
    assert!(page.contains("US dollar"), "{page}");
}

#[test]
fn a_remote_structure_is_kept_on_disk_and_used_when_the_publisher_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("storage");
    let body = std::fs::read_to_string(fixture("ecb_exr1_structure_full_with_codelists.xml"))
        .expect("fixture");
    let source = Source::start(&body);
    let config = write_config(dir.path(), &source.url());
    let args = [
        "--config.file",
        config.to_str().unwrap(),
        "--storage.path",
        storage.to_str().unwrap(),
    ];
    let first = Exporter::start(&args);
    until_metrics(&first, NAMED_USD);
    // Written once the load that used it succeeded.
    let kept: Vec<PathBuf> = poll_until_ok(
        "a copy under structures/",
        DEADLINE,
        Duration::from_millis(50),
        || {
            let files: Vec<PathBuf> = std::fs::read_dir(storage.join("structures"))
                .map_err(|e| e.to_string())?
                .map(|f| f.unwrap().path())
                .filter(|p| p.extension().is_some_and(|x| x == "xml"))
                .collect();
            if files.is_empty() {
                Err("none yet".to_string())
            } else {
                Ok(files)
            }
        },
    );
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(std::fs::read_to_string(&kept[0]).unwrap(), body);
    assert_eq!(source.stats().requests, 1);
    drop(first);
    drop(source);

    // The publisher is down: the start uses the copy, says so, and counts it.
    let second = Exporter::start(&args);
    let m = until_metrics(&second, NAMED_USD);
    let used = m
        .lines()
        .find(|l| l.starts_with("indicator_exporter_source_disk_copy_uses_total{"))
        .unwrap_or_else(|| panic!("no copy use counted:\n{m}"));
    assert!(used.ends_with(" 1"), "{used}");
    second.wait_for_log("using the copy kept on disk", DEADLINE);
    let page = second.get("/datasets/ecb_exr").text();
    assert!(page.contains("US dollar"), "{page}");
}

#[test]
fn a_broken_structure_is_reported_at_its_place_and_nothing_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("structure.xml");
    std::fs::write(
        &broken,
        "<?xml version=\"1.0\"?>\n<!DOCTYPE s [<!ENTITY x \"y\">]>\n<Structure/>",
    )
    .unwrap();
    let config = write_config(dir.path(), broken.to_str().unwrap());
    let out = common::exporter::run(&["--config.file", config.to_str().unwrap(), "--config.check"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    let expected = format!(
        "{}:2:1: a DOCTYPE declaration, expected none",
        broken.display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
}

#[test]
fn a_structure_on_an_input_that_is_not_sdmx_is_refused_at_its_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("d.csv"), "year,value\n2024,1\n").unwrap();
    let config = dir.path().join("d.toml");
    std::fs::write(
        &config,
        r#"[dataset]
name = "d"
title = "D"
publisher = "P"
source_url = "https://example.org"
published = "2025-01-01"
metric_prefix = "d_"

[[metric]]
name = "widgets"
unit = "count"
help = "Widgets."

[[input]]
file = "d.csv"
format = "csv"
metric = "widgets"
structure = "structure.xml"
"#,
    )
    .unwrap();
    let out = common::exporter::run(&["--config.file", config.to_str().unwrap(), "--config.check"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    let expected = format!(
        "{}:18:13: a structure for an input of format `csv`, expected one only for sdmx-ml, \
         sdmx-csv or sdmx-json",
        config.display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
}
