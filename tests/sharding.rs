//! A catalogue of 40 datasets split over 4 shards (`--catalog.shard`, `--catalog.shards`):
//! the real binary, 4 shards beside one unsharded exporter; a real Prometheus scraping the
//! shards through the shipped `prometheus/prometheus-sharded.yml` and remote-writing to a real
//! VictoriaMetrics; two replicas of one shard deduplicated there.
//!
//! Needs `prometheus`, `promtool` and `victoria-metrics` on PATH (`scripts/install-deps`).
//! Talks to 127.0.0.1 only.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use common::e2e::*;
use common::exposition::{parse, Exposition};
use common::source::Source;
use common::Exporter;
use indicator_exporter::Shard;

const SHARDS: u64 = 4;
const DATASETS: usize = 40;
/// The dataset read from a remote source: only its shard may fetch it.
const REMOTE: &str = "ds_00";

/// A dataset config: two series of one inline metric, or read from `url`.
fn dataset(i: usize, url: Option<&str>) -> String {
    let head = format!(
        "[dataset]\nname = \"ds_{i:02}\"\ntitle = \"Dataset {i}\"\npublisher = \"Test office\"\nsource_url = \"https://example.org/{i}\"\npublished = \"2026-01-01\"\nmetric_prefix = \"ds{i:02}_\"\n\n"
    );
    match url {
        Some(url) => format!(
            "{head}[fetch]\nrefresh = \"1h\"\non_start_failure = \"not-ready\"\n\n[[metric]]\nname = \"widgets\"\nunit = \"count\"\nhelp = \"Widgets counted.\"\n\n[[input]]\nfile = \"{url}\"\nformat = \"csv\"\nmetric = \"widgets\"\n"
        ),
        None => format!(
            "{head}[[metric]]\nname = \"level\"\nunit = \"count\"\nhelp = \"A level.\"\nlabels = [\"k\"]\nsamples = [{{ labels = {{ k = \"x\" }}, value = {i} }}, {{ labels = {{ k = \"y\" }}, value = {} }}]\n",
            i * 10 + 1
        ),
    }
}

/// The catalogue in `dir`: `main.toml` naming the directory `datasets/` of 40 dataset files,
/// the first read from `source`.
fn catalogue(dir: &Path, source: &Source) -> PathBuf {
    let datasets = dir.join("datasets");
    std::fs::create_dir_all(&datasets).expect("mkdir");
    for i in 0..DATASETS {
        let url = (i == 0).then(|| source.url());
        let text = dataset(i, url.as_deref());
        std::fs::write(datasets.join(format!("d{i:02}.toml")), text).expect("write dataset");
    }
    let main = dir.join("main.toml");
    std::fs::write(&main, "[catalog]\ndirectory = \"datasets\"\n").expect("write main");
    main
}

fn own(name: &str) -> bool {
    name.starts_with("indicator_exporter_") || name.starts_with("process_")
}

/// The dataset series of an exposition (everything but self-metrics) and their values.
fn dataset_series(e: &Exposition) -> BTreeMap<SampleKey, f64> {
    e.samples
        .iter()
        .filter(|s| !own(&s.name))
        .map(|s| (s.key(), s.value))
        .collect()
}

/// The datasets with per-dataset self-metrics in an exposition.
fn datasets_reported(e: &Exposition) -> BTreeSet<String> {
    e.samples
        .iter()
        .filter(|s| s.name.starts_with("indicator_exporter_"))
        .filter_map(|s| s.label("dataset").map(str::to_string))
        .collect()
}

/// Shard `i` of 4 serving `main`.
fn shard(main: &Path, i: u64) -> Exporter {
    let (i, n) = (i.to_string(), SHARDS.to_string());
    let main = main.to_str().expect("UTF-8 path");
    Exporter::start(&[
        "--config.file",
        main,
        "--catalog.shard",
        &i,
        "--catalog.shards",
        &n,
    ])
}

fn source() -> Source {
    Source::start("area,year,value\nAA,2024,7\nBB,2024,8\n")
}

#[test]
fn four_shards_together_serve_exactly_the_unsharded_catalogue() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let source = source();
    let main = catalogue(tmp.path(), &source);
    let whole = Exporter::start(&["--config.file", main.to_str().unwrap()]);
    let whole = parse(&whole.metrics());
    let want = dataset_series(&whole);
    assert!(want.len() >= 2 * DATASETS, "{} series", want.len());
    assert_eq!(datasets_reported(&whole).len(), DATASETS);

    // Shard 2 takes its number from a StatefulSet pod's name.
    let main_str = main.to_str().unwrap();
    let shards: Vec<Exporter> = (0..SHARDS)
        .map(|i| match i {
            2 => Exporter::start(&[
                "--config.file",
                main_str,
                "--catalog.shard-from-pod-name=indicator-exporter-2",
                "--catalog.shards=4",
            ]),
            i => shard(&main, i),
        })
        .collect();
    let mut union: BTreeMap<SampleKey, f64> = BTreeMap::new();
    let mut served_by: BTreeMap<String, u64> = BTreeMap::new();
    for (i, e) in shards.iter().enumerate() {
        let m = parse(&e.metrics());
        let i = i as u64;
        let info = m.value(
            "indicator_exporter_catalog_shard_info",
            &[("shard", &i.to_string()), ("shards", "4")],
        );
        assert_eq!(info, Some(1.0), "shard {i}'s info");
        let mine = datasets_reported(&m);
        let served = m.value(
            "indicator_exporter_catalog_datasets",
            &[("assignment", "served")],
        );
        let skipped = m.value(
            "indicator_exporter_catalog_datasets",
            &[("assignment", "skipped")],
        );
        assert_eq!(served, Some(mine.len() as f64), "shard {i}: {mine:?}");
        assert_eq!(skipped, Some((DATASETS - mine.len()) as f64), "shard {i}");
        for d in mine {
            assert_eq!(Shard::of(&d, SHARDS), i, "{d} is FNV-1a's shard's alone");
            assert!(served_by.insert(d.clone(), i).is_none(), "{d} served twice");
        }
        for (key, value) in dataset_series(&m) {
            assert!(union.insert(key.clone(), value).is_none(), "{key:?} twice");
        }
    }
    assert_eq!(served_by.len(), DATASETS, "every dataset has a shard");
    assert_eq!(union, want, "the shards' union is the unsharded exposition");
    // Only the remote dataset's shard fetched it (and the unsharded exporter).
    assert_eq!(source.stats().requests, 2, "fetches of {REMOTE}");
}

/// The self-metrics docs/metrics.md says how to aggregate over shards and replicas.
fn docs_aggregation_table() -> Vec<String> {
    let page = common::docs::page("docs/metrics.md");
    let section = common::docs::section(
        &page,
        "## Aggregating self-metrics over shards and replicas",
    )
    .expect("docs/metrics.md has the aggregation table");
    let rows = section
        .lines()
        .skip_while(|l| !l.starts_with("| Self-metric"))
        .skip(2)
        .take_while(|l| l.starts_with('|'));
    rows.flat_map(|row| {
        let first = row.split('|').nth(1).unwrap_or_default();
        first
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect::<Vec<_>>()
    })
    .collect()
}

#[test]
fn every_self_metric_of_the_docs_aggregation_table_is_served() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let source = source();
    let main = catalogue(tmp.path(), &source);
    // The shard of the remote dataset, its source failing: it has every kind of self-metric.
    source.set(|b| b.status = Some(503));
    let e = shard(&main, Shard::of(REMOTE, SHARDS));
    let m = parse(&e.metrics());
    let names = docs_aggregation_table();
    assert!(names.len() >= 20, "{names:?}");
    for name in names {
        let family = name.strip_suffix("_total").unwrap_or(&name);
        assert!(
            m.family(&name).is_some() || m.family(family).is_some(),
            "{name} is in the table of docs/metrics.md but not on /metrics"
        );
    }
}

#[test]
fn config_check_checks_the_whole_catalogue_and_bad_shards_are_refused() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let source = source();
    let main = catalogue(tmp.path(), &source);
    let main = main.to_str().unwrap();
    let out = common::exporter::run(&[
        "--config.file",
        main,
        "--config.check",
        "--catalog.shard=1",
        "--catalog.shards=4",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert_eq!(
        stdout.matches(": OK: dataset ").count(),
        DATASETS,
        "{stdout}"
    );
    for (args, why) in [
        (
            &["--catalog.shard=4", "--catalog.shards=4"][..],
            "--catalog.shard=4 is not below --catalog.shards=4",
        ),
        (
            &["--catalog.shards=0"][..],
            "--catalog.shards must be at least 1",
        ),
        (
            &[
                "--catalog.shard-from-pod-name=indicator-exporter",
                "--catalog.shards=4",
            ][..],
            "does not end with `-N`",
        ),
    ] {
        let out = common::exporter::run(&[&["--config.file", main], args].concat());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(why), "{args:?}: {stderr}");
    }
}

/// The shipped plain-host config, its shard groups pointed at `groups` (each a list of
/// `host:port`; empty for a shard not run), its store at `vm`, 1 s scrapes.
fn sharded_config(groups: &[Vec<String>], vm: &str) -> String {
    let example = std::fs::read_to_string(format!("{ROOT}/prometheus/prometheus-sharded.yml"))
        .expect("prometheus/prometheus-sharded.yml");
    let mut swaps: Vec<(String, String)> = groups
        .iter()
        .enumerate()
        .map(|(i, targets)| {
            let quoted: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
            (
                format!("[\"exporter-{i}a:8905\", \"exporter-{i}b:8905\"]"),
                format!("[{}]", quoted.join(", ")),
            )
        })
        .collect();
    swaps.extend(
        [
            ("http://localhost:8428", vm),
            ("rules/*.yml", &format!("{ROOT}/prometheus/rules/*.yml")),
            ("scrape_interval: 1m", "scrape_interval: 1s"),
            ("evaluation_interval: 1m", "evaluation_interval: 1s"),
            ("scrape_timeout: 10s", "scrape_timeout: 1s"),
            ("batch_send_deadline: 5s", "batch_send_deadline: 1s"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string())),
    );
    swaps.iter().fold(example, |text, (from, to)| {
        assert!(text.contains(from.as_str()), "the example has no `{from}`");
        text.replace(from.as_str(), to)
    })
}

/// The dataset series VictoriaMetrics holds for the job (names and labels, `shard` apart),
/// each with how many series carry it.
fn stored_series(agent: &ureq::Agent, vm: &str) -> Result<BTreeMap<SampleKey, usize>, String> {
    let data = api(
        agent,
        vm,
        "/api/v1/series",
        &[("match[]", r#"{job="indicator_exporter",__name__=~"ds.*"}"#)],
    )?;
    let mut out = BTreeMap::new();
    for s in data.as_array().ok_or("no series list")? {
        let mut labels: BTreeMap<String, String> =
            serde_json::from_value(s.clone()).map_err(|e| e.to_string())?;
        let name = labels.remove("__name__").ok_or("no __name__")?;
        for l in ["job", "shard"] {
            labels.remove(l).ok_or(format!("{name}: no {l} label"))?;
        }
        *out.entry((name, labels)).or_insert(0) += 1;
    }
    Ok(out)
}

#[test]
fn prometheus_writes_every_shards_series_to_victoriametrics_once() {
    require_tool("prometheus");
    require_tool("promtool");
    require_tool("victoria-metrics");
    let tmp = tempfile::tempdir().expect("temporary directory");
    let source = source();
    let main = catalogue(tmp.path(), &source);
    let whole = Exporter::start(&["--config.file", main.to_str().unwrap()]);
    let want: BTreeSet<SampleKey> = dataset_series(&parse(&whole.metrics()))
        .into_keys()
        .collect();
    let shards: Vec<Exporter> = (0..SHARDS).map(|i| shard(&main, i)).collect();
    let (_vm, vm) = start_victoria_metrics(tmp.path());
    let groups: Vec<Vec<String>> = shards.iter().map(|e| vec![e.addr().to_string()]).collect();
    let (_prometheus, _prom) = start_prometheus_config(tmp.path(), &sharded_config(&groups, &vm));
    let agent = agent();
    let stored = poll("every dataset series in VictoriaMetrics", || {
        let stored = stored_series(&agent, &vm)?;
        let missing = want.iter().filter(|k| !stored.contains_key(*k)).count();
        if missing == 0 {
            Ok(stored)
        } else {
            Err(format!("{missing} of {} series missing", want.len()))
        }
    });
    let have: BTreeSet<SampleKey> = stored.keys().cloned().collect();
    assert_eq!(have, want, "the stored series are the catalogue's");
    let twice: Vec<_> = stored.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "stored more than once: {twice:?}");
}

/// Samples of `series` in VictoriaMetrics, as (timestamp ms) sorted.
fn stored_times(agent: &ureq::Agent, vm: &str, series: &str) -> Result<Vec<i64>, String> {
    let mut t: Vec<i64> = vm_export(agent, vm, series)?
        .into_iter()
        .map(|(_, _, t)| t)
        .collect();
    t.sort();
    Ok(t)
}

#[test]
fn two_replicas_of_a_shard_are_stored_once_after_deduplication() {
    require_tool("prometheus");
    require_tool("promtool");
    require_tool("victoria-metrics");
    let tmp = tempfile::tempdir().expect("temporary directory");
    let source = source();
    let main = catalogue(tmp.path(), &source);
    let replicas = [shard(&main, 0), shard(&main, 0)];
    let want: BTreeSet<SampleKey> = dataset_series(&parse(&replicas[0].metrics()))
        .into_keys()
        .collect();
    assert!(!want.is_empty(), "shard 0 serves something");
    let (_vm, vm) = start_victoria_metrics_with(tmp.path(), &["-dedup.minScrapeInterval=2s"]);
    let mut groups = vec![Vec::new(); SHARDS as usize];
    groups[0] = replicas.iter().map(|e| e.addr().to_string()).collect();
    let (_prometheus, prom) = start_prometheus_config(tmp.path(), &sharded_config(&groups, &vm));
    let agent = agent();
    poll("both replicas up in Prometheus", || {
        let up = query(
            &agent,
            &prom,
            r#"sum(up{job="indicator_exporter",shard="0"})"#,
        )?;
        match up.first().map(prom_value) {
            Some(2.0) => Ok(()),
            other => Err(format!("up: {other:?}")),
        }
    });
    let (name, labels) = want.iter().next().cloned().expect("a series");
    let matchers: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    let selector = format!("{name}{{{}}}", matchers.join(","));
    // Both replicas write every second; after 10 s of that, one sample per 2 s is kept.
    let times = poll("10 s of samples in VictoriaMetrics", || {
        let t = stored_times(&agent, &vm, &selector)?;
        match (t.first(), t.last()) {
            (Some(a), Some(b)) if b - a >= 10_000 => Ok(t),
            _ => Err(format!("{} samples", t.len())),
        }
    });
    let span = times[times.len() - 1] - times[0];
    assert!(
        times.len() as i64 <= span / 2000 + 2,
        "{} samples over {span} ms: not deduplicated",
        times.len()
    );
    let scraped = query(
        &agent,
        &prom,
        &format!("sum(count_over_time({selector}[10s]))"),
    )
    .unwrap();
    assert!(
        scraped.first().map(prom_value).unwrap_or(0.0) >= 12.0,
        "Prometheus holds both replicas' scrapes: {scraped:?}"
    );
    let stored = poll("every series of shard 0 in VictoriaMetrics", || {
        let stored = stored_series(&agent, &vm)?;
        if want.iter().all(|k| stored.contains_key(k)) {
            Ok(stored)
        } else {
            Err(format!("{} of {} series", stored.len(), want.len()))
        }
    });
    let have: BTreeSet<SampleKey> = stored.keys().cloned().collect();
    assert_eq!(have, want);
    assert!(stored.values().all(|n| *n == 1), "{stored:?}");
}
