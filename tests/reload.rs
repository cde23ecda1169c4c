//! Live reload against the real server: HTTP, file watching, bad edits, revisions, and an
//! atomic swap under continuous scraping.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

const RATE_2024: &str = "t_rate_ratio{size=\"all\",year=\"2024\"}";
const RATE_2023: &str = "t_rate_ratio{size=\"all\",year=\"2023\"}";
const RELOADS_OK: &str = "indicator_exporter_config_reloads_total{result=\"success\"}";
const RELOADS_FAILED: &str = "indicator_exporter_config_reloads_total{result=\"failure\"}";

/// A small dataset; `samples` are (size, year, percent) rows.
fn config(samples: &[(&str, &str, &str)]) -> String {
    let mut s = String::from(
        r#"[dataset]
name = "t"
title = "Test dataset"
publisher = "Test publisher"
source_url = "https://example.org/"
published = "2025-01-15"
metric_prefix = "t_"

[[metric]]
name = "rate"
unit = "percent"
help = "A test rate."
labels = ["size", "year"]
samples = [
"#,
    );
    for (size, year, v) in samples {
        s.push_str(&format!(
            "  {{ labels = {{ size = \"{size}\", year = \"{year}\" }}, value = {v} }},\n"
        ));
    }
    s.push_str("]\n");
    s
}

struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn fixture(text: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).unwrap();
    Fixture { _dir: dir, path }
}

/// Saves as editors do: write a temporary file, then rename it over the original.
fn save_by_rename(path: &Path, text: &str) {
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Writes `text` to the config, reloads over HTTP (which must succeed) and scrapes.
fn edit_and_reload(s: &Server, path: &Path, text: &str) -> String {
    std::fs::write(path, text).unwrap();
    let r = s.post("/-/reload");
    assert_eq!(r.status, 200, "{}", r.text());
    s.metrics()
}

fn value(s: &Server, series: &str) -> Option<String> {
    sample(&s.metrics(), series)
}

fn wait_value(s: &Server, series: &str, want: Option<&str>) {
    poll_until(
        &format!("{series} = {want:?}"),
        Duration::from_secs(20),
        || (value(s, series).as_deref() == want).then_some(()),
    );
}

#[test]
fn post_reload_applies_an_edit_and_answers_with_the_outcome() {
    let f = fixture(&config(&[("all", "2023", "51.3"), ("all", "2024", "53.3")]));
    let s = Server::start(&f.path);
    assert_eq!(value(&s, RATE_2024).as_deref(), Some("0.533"));
    std::fs::write(
        &f.path,
        config(&[("all", "2023", "51.3"), ("all", "2024", "53.4")]),
    )
    .unwrap();
    let r = s.post("/-/reload");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "loaded dataset t, 1 metrics, 2 series\n");
    assert_eq!(value(&s, RATE_2024).as_deref(), Some("0.534"));
    let body = s.metrics();
    assert_eq!(sample(&body, RELOADS_OK).as_deref(), Some("1"));
}

#[test]
fn reload_endpoint_is_refused_without_the_lifecycle_flag() {
    let f = fixture(&config(&[("all", "2024", "53.3")]));
    let s = Server::start_with(&f.path, false, false);
    let r = s.post("/-/reload");
    assert_eq!(r.status, 403);
    assert_eq!(r.text(), "Lifecycle API is not enabled.\n");
}

#[test]
fn a_broken_edit_keeps_the_last_good_dataset_and_a_fix_recovers() {
    let f = fixture(&config(&[("all", "2024", "53.3")]));
    let s = Server::start(&f.path);
    std::fs::write(&f.path, config(&[("all", "2024", "153.3")])).unwrap();
    let r = s.post("/-/reload");
    assert_eq!(r.status, 500);
    let msg = r.text();
    let expected_error = format!(
        "{}:15:55: percent value 153.3 out of range, expected 0 to 100",
        f.path.display()
    );
    assert!(
        msg.starts_with("failed to reload config: ") && msg.contains(&expected_error),
        "{msg}"
    );
    let body = s.metrics();
    assert_eq!(sample(&body, RATE_2024).as_deref(), Some("0.533"));
    assert_eq!(
        sample(&body, "indicator_exporter_config_last_reload_successful").as_deref(),
        Some("0")
    );
    assert_eq!(sample(&body, RELOADS_FAILED).as_deref(), Some("1"));
    let page = s.get_with("/", &[]).text();
    assert!(
        page.contains("last load failed") && page.contains(&expected_error),
        "{page}"
    );

    let body = edit_and_reload(&s, &f.path, &config(&[("all", "2024", "53.5")]));
    assert_eq!(sample(&body, RATE_2024).as_deref(), Some("0.535"));
    assert_eq!(
        sample(&body, "indicator_exporter_config_last_reload_successful").as_deref(),
        Some("1")
    );
    assert!(!s.get_with("/", &[]).text().contains("Last reload failed"));
}

#[test]
fn removed_samples_disappear_and_new_ones_appear() {
    let f = fixture(&config(&[("all", "2023", "51.3"), ("all", "2024", "53.3")]));
    let s = Server::start(&f.path);
    let body = edit_and_reload(
        &s,
        &f.path,
        &config(&[("all", "2024", "53.3"), ("all", "2025", "54")]),
    );
    assert_eq!(sample(&body, RATE_2023), None);
    assert_eq!(
        sample(&body, "t_rate_ratio{size=\"all\",year=\"2025\"}").as_deref(),
        Some("0.54")
    );
    assert_eq!(
        sample(
            &body,
            "indicator_exporter_series_added_total{dataset=\"t\",metric=\"t_rate_ratio\"}"
        )
        .as_deref(),
        Some("1")
    );
    assert_eq!(
        sample(
            &body,
            "indicator_exporter_series_removed_total{dataset=\"t\",metric=\"t_rate_ratio\"}"
        )
        .as_deref(),
        Some("1")
    );
    assert_eq!(
        sample(
            &body,
            "indicator_exporter_series_revisions_total{dataset=\"t\",metric=\"t_rate_ratio\"}"
        )
        .as_deref(),
        Some("0")
    );
    assert_eq!(
        sample(&body, "indicator_exporter_dataset_series{dataset=\"t\"}").as_deref(),
        Some("2")
    );
}

#[test]
fn a_revision_counts_once_and_stamps_the_change() {
    let f = fixture(&config(&[("all", "2023", "51.3"), ("all", "2024", "53.3")]));
    let s = Server::start(&f.path);
    let stamp = "indicator_exporter_metric_last_change_timestamp_seconds{dataset=\"t\",metric=\"t_rate_ratio\"}";
    let revisions =
        "indicator_exporter_series_revisions_total{dataset=\"t\",metric=\"t_rate_ratio\"}";
    let body = s.metrics();
    assert_eq!(sample(&body, revisions).as_deref(), Some("0"));
    assert_eq!(sample(&body, stamp), None, "a start is not a change");

    let before = indicator_exporter::telemetry::unix_now();
    let body = edit_and_reload(
        &s,
        &f.path,
        &config(&[("all", "2023", "51.3"), ("all", "2024", "53.4")]),
    );
    assert_eq!(sample(&body, revisions).as_deref(), Some("1"));
    let t: f64 = sample(&body, stamp).unwrap().parse().unwrap();
    assert!(
        t >= before.floor() && t <= indicator_exporter::telemetry::unix_now(),
        "{t}"
    );

    // Reloading the same content changes nothing.
    assert_eq!(s.post("/-/reload").status, 200);
    let body = s.metrics();
    assert_eq!(sample(&body, revisions).as_deref(), Some("1"));
    assert_eq!(sample(&body, stamp).unwrap().parse::<f64>().unwrap(), t);
}

#[test]
fn a_watched_save_by_rename_reloads_once() {
    let f = fixture(&config(&[("all", "2024", "53.3")]));
    let s = Server::start_with(&f.path, true, true);
    save_by_rename(&f.path, &config(&[("all", "2024", "53.6")]));
    wait_value(&s, RATE_2024, Some("0.536"));
    let reloads = RELOADS_OK;
    assert_eq!(sample(&s.metrics(), reloads).as_deref(), Some("1"));

    // A broken save keeps the old values and says so; fixing it recovers.
    std::fs::write(&f.path, "[dataset\n").unwrap();
    poll_until("the failed reload", Duration::from_secs(20), || {
        (sample(
            &s.metrics(),
            "indicator_exporter_config_last_reload_successful",
        )
        .as_deref()
            == Some("0"))
        .then_some(())
    });
    assert_eq!(value(&s, RATE_2024).as_deref(), Some("0.536"));
    std::fs::write(&f.path, config(&[("all", "2024", "53.7")])).unwrap();
    wait_value(&s, RATE_2024, Some("0.537"));
}

#[test]
fn a_watched_symlink_swap_reloads() {
    // The layout Kubernetes uses for a ConfigMap volume: config.toml -> ..data/config.toml,
    // ..data -> a timestamped directory, swapped by renaming a new symlink over ..data.
    let dir = tempfile::tempdir().unwrap();
    let v1 = dir.path().join("..v1");
    let v2 = dir.path().join("..v2");
    std::fs::create_dir(&v1).unwrap();
    std::fs::create_dir(&v2).unwrap();
    std::fs::write(v1.join("config.toml"), config(&[("all", "2024", "53.3")])).unwrap();
    std::fs::write(v2.join("config.toml"), config(&[("all", "2024", "60.1")])).unwrap();
    std::os::unix::fs::symlink("..v1", dir.path().join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/config.toml", dir.path().join("config.toml")).unwrap();
    let s = Server::start_with(&dir.path().join("config.toml"), true, true);
    assert_eq!(value(&s, RATE_2024).as_deref(), Some("0.533"));
    std::os::unix::fs::symlink("..v2", dir.path().join("..data_tmp")).unwrap();
    std::fs::rename(dir.path().join("..data_tmp"), dir.path().join("..data")).unwrap();
    wait_value(&s, RATE_2024, Some("0.601"));
}

#[test]
fn a_watched_data_file_change_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    let text = config(&[]).replace("samples = [\n]\n", "samples_file = \"data/rate.csv\"\n");
    std::fs::write(&path, text).unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::write(
        dir.path().join("data/rate.csv"),
        "size,year,value\nall,2024,53.3\n",
    )
    .unwrap();
    let s = Server::start_with(&path, true, true);
    assert_eq!(value(&s, RATE_2024).as_deref(), Some("0.533"));
    save_by_rename(
        &dir.path().join("data/rate.csv"),
        "size,year,value\nall,2024,53.9\n",
    );
    wait_value(&s, RATE_2024, Some("0.539"));
}

/// Scrapes continuously while another thread reloads between two datasets many times: every
/// scrape succeeds and its body is entirely one version or the other.
#[test]
fn scrapes_during_reloads_see_exactly_one_version() {
    let a = config(&[
        ("all", "2023", "11.1"),
        ("all", "2024", "11.2"),
        ("small", "2024", "11.3"),
    ]);
    let b = config(&[
        ("all", "2023", "22.1"),
        ("all", "2024", "22.2"),
        ("large", "2024", "22.3"),
    ]);
    let f = fixture(&a);
    let s = Server::start(&f.path);
    let dataset = |body: &str| -> String {
        body.lines()
            .filter(|l| l.starts_with("t_rate_ratio{"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let version_a = dataset(&s.metrics());
    std::fs::write(&f.path, &b).unwrap();
    assert_eq!(s.post("/-/reload").status, 200);
    let version_b = dataset(&s.metrics());
    assert_ne!(version_a, version_b);

    const RELOADS: usize = 60;
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (seen_a, seen_b, scrapes) = std::thread::scope(|scope| {
        let scraper = scope.spawn(|| {
            let (mut seen_a, mut seen_b, mut n) = (0, 0, 0);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || n < 10 {
                let r = s.get("/metrics").expect("scrape succeeds");
                assert_eq!(r.status, 200);
                let text = r.text();
                assert!(
                    text.contains("indicator_exporter_build_info"),
                    "truncated body"
                );
                let d = dataset(&text);
                if d == version_a {
                    seen_a += 1;
                } else if d == version_b {
                    seen_b += 1;
                } else {
                    panic!("a scrape mixed versions:\n{d}");
                }
                n += 1;
            }
            (seen_a, seen_b, n)
        });
        for i in 0..RELOADS {
            std::fs::write(&f.path, if i % 2 == 0 { &a } else { &b }).unwrap();
            assert_eq!(s.post("/-/reload").status, 200);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        scraper.join().unwrap()
    });
    assert_eq!(seen_a + seen_b, scrapes);
    let body = s.metrics();
    assert_eq!(
        sample(&body, RELOADS_OK).as_deref(),
        Some(&*(RELOADS + 1).to_string())
    );
    eprintln!("{scrapes} scrapes: {seen_a} of version A, {seen_b} of version B");
}

/// Reloads asked for at the same time run one after another, and each gets its own answer.
#[test]
fn concurrent_reloads_are_serialised() {
    let f = fixture(&config(&[("all", "2024", "53.3")]));
    let s = Server::start(&f.path);
    std::fs::write(&f.path, config(&[("all", "2024", "53.8")])).unwrap();
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let posts: Vec<_> = (0..8)
            .map(|_| scope.spawn(|| s.post("/-/reload").status))
            .collect();
        posts.into_iter().map(|p| p.join().unwrap()).collect()
    });
    assert_eq!(statuses, vec![200; 8]);
    let body = s.metrics();
    assert_eq!(sample(&body, RELOADS_OK).as_deref(), Some("8"));
    // Only the first of them saw a change.
    assert_eq!(
        sample(
            &body,
            "indicator_exporter_series_revisions_total{dataset=\"t\",metric=\"t_rate_ratio\"}"
        )
        .as_deref(),
        Some("1")
    );
    assert_eq!(sample(&body, RATE_2024).as_deref(), Some("0.538"));
}

#[test]
fn a_renamed_dataset_replaces_its_series_gauge() {
    let f = fixture(&config(&[("all", "2024", "53.3")]));
    let s = Server::start(&f.path);
    let renamed = config(&[("all", "2024", "53.3")]).replace("name = \"t\"", "name = \"u\"");
    let body = edit_and_reload(&s, &f.path, &renamed);
    assert_eq!(
        sample(&body, "indicator_exporter_dataset_series{dataset=\"u\"}").as_deref(),
        Some("1")
    );
    assert_eq!(
        sample(&body, "indicator_exporter_dataset_series{dataset=\"t\"}"),
        None
    );
}
