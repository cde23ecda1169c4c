//! State across restarts (`--storage.path`), with the real binary: a figure revised while the
//! exporter was stopped is counted and logged at the next start; damaged state files are a
//! warning and a fresh start; SIGKILL during a write leaves a whole state file; and the
//! vintages of a figure revised three times come back from `export --vintages`, from a real
//! Prometheus the export was backfilled into, and on the dataset page.
//!
//! Needs `prometheus` and `promtool` on PATH (`scripts/install-deps`). Talks to 127.0.0.1 only.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::e2e::{agent, api, poll, require_tool, start_prometheus_config};
use common::exposition::parse;
use common::{poll_until, request, Exporter};
use indicator_exporter::state::{decode, State};

const DEADLINE: Duration = Duration::from_secs(60);
const DATASET: &str = "jobs";
const FAMILY: &str = "s_jobs";

/// A dataset `jobs` in `dir` whose figures are `csv` (`area,year,value`).
fn write_dataset(dir: &Path, csv: &str) -> PathBuf {
    let config = dir.join("jobs.toml");
    std::fs::write(
        &config,
        format!(
            r#"[dataset]
name = "{DATASET}"
title = "Jobs"
publisher = "Test office"
source_url = "https://example.org/jobs"
published = "2025-01-01"
metric_prefix = "s_"

[dataset.period]
label = "year"
cadence = "annual"

[[metric]]
name = "jobs"
unit = "count"
help = "Jobs counted."

[[input]]
file = "jobs.csv"
format = "csv"
metric = "jobs"
"#
        ),
    )
    .expect("write jobs.toml");
    write_csv(dir, csv);
    config
}

/// Replaces the data file in one step, so no load sees half of it.
fn write_csv(dir: &Path, csv: &str) {
    let tmp = dir.join("jobs.csv.new");
    std::fs::write(&tmp, csv).expect("write jobs.csv");
    std::fs::rename(&tmp, dir.join("jobs.csv")).expect("rename jobs.csv");
}

fn storage(dir: &Path) -> PathBuf {
    dir.join("storage")
}

fn state_file(dir: &Path) -> PathBuf {
    storage(dir).join("state").join(format!("{DATASET}.state"))
}

/// The exporter serving `dir`'s dataset with its state in `dir/storage`.
#[track_caller]
fn start(dir: &Path) -> Exporter {
    start_config(dir, "jobs.toml")
}

/// The exporter serving `dir/config` with its state in `dir/storage`.
#[track_caller]
fn start_config(dir: &Path, config: &str) -> Exporter {
    let config = dir.join(config);
    let storage = storage(dir);
    Exporter::start(&[
        "--config.file",
        config.to_str().expect("utf-8 path"),
        "--storage.path",
        storage.to_str().expect("utf-8 path"),
        "--web.enable-lifecycle",
    ])
}

/// Stops it as an operator would; what it stored by then is what the next start reads.
#[track_caller]
fn stop(mut e: Exporter) {
    e.signal(libc::SIGTERM);
    e.wait_exit(DEADLINE);
}

/// The value of `name` with `labels` on `/metrics`, 0 when absent.
fn value(e: &Exporter, name: &str, labels: &[(&str, &str)]) -> f64 {
    parse(&e.metrics()).value(name, labels).unwrap_or(0.0)
}

fn changes(e: &Exporter, what: &str) -> f64 {
    let name = format!("indicator_exporter_series_{what}_total");
    value(e, &name, &[("dataset", DATASET), ("metric", FAMILY)])
}

fn state(dir: &Path) -> State {
    let bytes = std::fs::read(state_file(dir)).expect("read the state file");
    decode(&bytes).unwrap_or_else(|e| panic!("the state file is whole: {e:?}"))
}

#[test]
fn a_revision_published_while_stopped_is_counted_and_logged_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(
        dir.path(),
        "area,year,value\nAA,2023,1\nAA,2024,2\nBB,2024,3\n",
    );
    let e = start(dir.path());
    assert_eq!(changes(&e, "revisions"), 0.0);
    assert_eq!(state(dir.path()).metrics[0].series.len(), 3);
    stop(e);

    // While it is down: AA 2024 revised, BB 2024 withdrawn, 2025 published.
    write_csv(
        dir.path(),
        "area,year,value\nAA,2023,1\nAA,2024,2.5\nAA,2025,4\n",
    );
    let e = start(dir.path());
    assert_eq!(changes(&e, "revisions"), 1.0, "{}", e.stderr());
    assert_eq!(changes(&e, "added"), 1.0);
    assert_eq!(changes(&e, "removed"), 1.0);
    let line = e.wait_for_log("published figure revised", DEADLINE);
    assert!(
        line.contains("dataset=jobs")
            && line.contains("old=2.0 ")
            && line.contains("new=2.5")
            && line.contains(r#"area=\"AA\",year=\"2024\""#),
        "{line}"
    );
    assert_eq!(
        value(
            &e,
            "indicator_exporter_storage_state_errors_total",
            &[("dataset", DATASET)]
        ),
        0.0
    );
    // The state now holds the new figures: a second restart finds nothing new.
    stop(e);
    let e = start(dir.path());
    assert_eq!(changes(&e, "revisions"), 0.0);
    assert_eq!(changes(&e, "added"), 0.0);
}

#[test]
fn a_truncated_or_garbage_state_file_is_a_warning_and_a_fresh_start() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(dir.path(), "area,year,value\nAA,2024,2\n");
    stop(start(dir.path()));
    let whole = std::fs::read(state_file(dir.path())).unwrap();
    let garbage = b"these are not the bytes of a state file, just text".to_vec();
    for (damaged, reason) in [
        (whole[..whole.len() / 2].to_vec(), "truncated"),
        (garbage, "corrupt"),
    ] {
        std::fs::write(state_file(dir.path()), damaged).unwrap();
        // A figure changed meanwhile cannot be told apart from a first start: not counted.
        write_csv(
            dir.path(),
            &format!("area,year,value\nAA,2024,{}\n", reason.len()),
        );
        let e = start(dir.path());
        let line = e.wait_for_log("stored state not usable", DEADLINE);
        assert!(
            line.contains("level=warn") && line.contains(&format!("reason={reason}")),
            "{line}"
        );
        let errors = [("dataset", DATASET), ("reason", reason)];
        let counted = value(&e, "indicator_exporter_storage_state_errors_total", &errors);
        assert_eq!(counted, 1.0);
        assert_eq!(changes(&e, "revisions"), 0.0);
        let served = value(&e, FAMILY, &[("area", "AA"), ("year", "2024")]);
        assert_eq!(served, reason.len() as f64);
        // Started fresh: the state is whole again.
        let s = state(dir.path());
        assert_eq!(s.metrics[0].series[0].vintages.len(), 1);
        stop(e);
    }
}

#[test]
fn the_state_of_a_dataset_that_left_the_catalogue_is_deleted_at_the_next_catalogue_load() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(dir.path(), "area,year,value\nAA,2024,2\n");
    std::fs::write(
        dir.path().join("other.toml"),
        "[dataset]\nname = \"other\"\ntitle = \"t\"\npublisher = \"p\"\nsource_url = \"u\"\npublished = \"2025-01-01\"\nmetric_prefix = \"o_\"\n\n[[metric]]\nname = \"rate\"\nunit = \"percent\"\nhelp = \"h\"\nlabels = [\"k\"]\nsamples = [{ labels = { k = \"x\" }, value = 1 }]\n",
    )
    .unwrap();
    let catalog = dir.path().join("catalog.toml");
    std::fs::write(
        &catalog,
        "[catalog]\ndatasets = [\"jobs.toml\", \"other.toml\"]\n",
    )
    .unwrap();
    let e = start_config(dir.path(), "catalog.toml");
    let other = storage(dir.path()).join("state/other.state");
    assert!(other.exists() && state_file(dir.path()).exists());
    std::fs::write(&catalog, "[catalog]\ndatasets = [\"jobs.toml\"]\n").unwrap();
    reload(&e);
    assert!(!other.exists(), "the state of `other` is deleted");
    assert_eq!(state(dir.path()).dataset, DATASET);
    e.wait_for_log(
        "state of a dataset no longer in the catalogue deleted",
        DEADLINE,
    );
}

/// `count` series (areas × years), AA 2024 at `v`.
fn large_csv(count: usize, v: usize) -> String {
    let mut csv = String::from("area,year,value\nAA,2024,");
    csv.push_str(&format!("{v}\n"));
    for i in 0..count - 1 {
        csv.push_str(&format!("A{:05},{},{}\n", i / 3, 2022 + i % 3, i));
    }
    csv
}

/// The value of AA 2024 in the state file.
fn stored_aa(s: &State) -> f64 {
    let m = &s.metrics[0];
    let aa = m
        .series
        .iter()
        .find(|s| s.labels == ["AA", "2024"])
        .expect("AA 2024 stored");
    aa.vintages.last().expect("a vintage").value
}

#[test]
fn sigkill_during_state_writes_leaves_the_previous_or_the_new_state_whole() {
    const SERIES: usize = 30_000;
    let dir = tempfile::tempdir().unwrap();
    write_dataset(dir.path(), &large_csv(SERIES, 0));
    stop(start(dir.path()));
    let tmp = state_file(dir.path()).with_extension("state.tmp");
    let (mut kept, mut replaced) = (0, 0);
    for round in 1..=8 {
        let mut e = start(dir.path());
        // Start-up stored the figures of the last round if the kill came before.
        let started = stored_aa(&state(dir.path()));
        assert_eq!(started, (round - 1) as f64, "round {round}");
        let stored = started;
        let before = std::fs::metadata(state_file(dir.path()))
            .unwrap()
            .modified()
            .unwrap();
        write_csv(dir.path(), &large_csv(SERIES, round));
        e.signal(libc::SIGHUP);
        let replaced_since = || {
            let modified = std::fs::metadata(state_file(dir.path()))
                .ok()?
                .modified()
                .ok()?;
            Some(modified != before)
        };
        match round % 4 {
            // At once: most likely before the write.
            0 => {}
            // As soon as the write shows: its temporary file, or the file replaced.
            1 => poll_until("a state write to start", DEADLINE, || {
                (tmp.exists() || replaced_since()?).then_some(())
            }),
            // Once the revision is logged: the write follows it.
            2 => {
                e.wait_for_log(&format!("new={round}.0"), DEADLINE);
            }
            // Once the file is replaced: the new state must be there whole.
            _ => poll_until("the state file to be replaced", DEADLINE, || {
                replaced_since()?.then_some(())
            }),
        }
        e.signal(libc::SIGKILL);
        e.wait_exit(DEADLINE);
        let now = stored_aa(&state(dir.path()));
        if round % 4 == 3 {
            assert_eq!(now, round as f64, "round {round}: the write was complete");
        }
        assert!(
            now == stored || now == round as f64,
            "round {round}: AA 2024 stored as {now}, expected {stored} or {round}"
        );
        if now == stored {
            kept += 1;
        } else {
            replaced += 1;
        }
        assert_eq!(state(dir.path()).metrics[0].series.len(), SERIES);
    }
    let size = std::fs::metadata(state_file(dir.path())).unwrap().len();
    eprintln!("after SIGKILL: previous state {kept} times, new state {replaced} times; state file {size} bytes for {SERIES} series");
    assert!(kept > 0 && replaced > 0, "kills before and after a write");
    // The next start reads it, without an error.
    let e = start(dir.path());
    let errors = [("dataset", DATASET)];
    let counted = value(&e, "indicator_exporter_storage_state_errors_total", &errors);
    assert_eq!(counted, 0.0, "{}", e.stderr());
}

fn reload(e: &Exporter) {
    let r = request("POST", &e.url("/-/reload"), &[]).expect("POST /-/reload");
    assert_eq!(r.status, 200, "{}", r.text());
}

/// Runs `export --vintages` on `dir`'s storage in `format`; returns the output.
fn export_vintages(dir: &Path, format: &str) -> String {
    let out = dir.join(format!("vintages.{format}"));
    let run = common::exporter::command()
        .args(["export", "--vintages", "--format", format, "--storage.path"])
        .arg(storage(dir))
        .arg("-o")
        .arg(&out)
        .output()
        .expect("run export --vintages");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    std::fs::read_to_string(out).expect("read the export")
}

#[test]
fn three_revisions_give_four_vintages_in_the_export_in_prometheus_and_on_the_page() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(dir.path(), "area,year,value\nAA,2023,1\nAA,2024,10\n");
    let e = start(dir.path());
    for v in ["11", "12.5", "13"] {
        write_csv(
            dir.path(),
            &format!("area,year,value\nAA,2023,1\nAA,2024,{v}\n"),
        );
        reload(&e);
    }
    assert_eq!(changes(&e, "revisions"), 3.0);

    // CSV: the four values with their first-seen times, in order.
    let csv = export_vintages(dir.path(), "csv");
    let mut rows = csv::Reader::from_reader(csv.as_bytes());
    let vintages: Vec<(f64, i64)> = rows
        .records()
        .map(|r| r.expect("a CSV record"))
        .filter(|r| &r[2] == r#"area="AA",year="2024""#)
        .map(|r| (r[3].parse().unwrap(), r[5].parse().unwrap()))
        .collect();
    let values: Vec<f64> = vintages.iter().map(|v| v.0).collect();
    assert_eq!(values, [10.0, 11.0, 12.5, 13.0], "{csv}");
    assert!(vintages.windows(2).all(|w| w[0].1 < w[1].1), "{csv}");

    // The dataset page lists them.
    let page = e.get(&format!("/datasets/{DATASET}")).text();
    let section = page
        .split("<h2>Revisions</h2>")
        .nth(1)
        .expect("a Revisions section");
    let mut at = 0;
    for v in ["10", "11", "12.5", "13"] {
        let cell = format!("class=\"num\">{v}</td>");
        at += section[at..]
            .find(&cell)
            .unwrap_or_else(|| panic!("{cell} after the previous value in {section}"));
    }

    // OpenMetrics, backfilled into a real Prometheus and read back.
    let om = export_vintages(dir.path(), "openmetrics");
    let om_path = dir.path().join("vintages.openmetrics");
    let data = dir.path().join("prom");
    std::fs::create_dir_all(&data).unwrap();
    let blocks = Command::new(require_tool("promtool"))
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&om_path)
        .arg(data.join("data"))
        .output()
        .expect("run promtool");
    assert!(
        blocks.status.success(),
        "promtool: {}{}\n{om}",
        String::from_utf8_lossy(&blocks.stdout),
        String::from_utf8_lossy(&blocks.stderr)
    );
    let (_prom, url) = start_prometheus_config(&data, "global:\n  scrape_interval: 1m\n");
    let agent = agent();
    let selector = format!("{FAMILY}_vintage{{area=\"AA\",year=\"2024\"}}[1d]");
    let back: Vec<(f64, i64)> = poll("the vintages in Prometheus", || {
        let data = api(&agent, &url, "/api/v1/query", &[("query", &selector)])?;
        let series = data["result"][0]["values"]
            .as_array()
            .cloned()
            .ok_or_else(|| format!("no series yet: {data}"))?;
        Ok(series
            .iter()
            .map(|p| {
                let t = p[0].as_f64().expect("a time");
                let v = p[1].as_str().and_then(|v| v.parse().ok()).expect("a value");
                (v, (t * 1000.0).round() as i64)
            })
            .collect())
    });
    assert_eq!(back, vintages);
}

#[test]
fn storage_settings_are_checked_on_the_command_line() {
    let out = common::exporter::run(&["export", "--vintages"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--storage.path"));
    let out = common::exporter::run(&["--storage.vintages.retention=soon", "--version"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--storage.vintages.retention"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
