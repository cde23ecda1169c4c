//! Remote sources against the real binary: a dataset whose data file is a URL on a loopback
//! server the test controls. Whatever the source does (changes, 304, 500, hangs, grows too
//! large, redirects too often, serves a bad file, is down at start-up), the last good data
//! stays served and the per-source self-metrics say why.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::exporter::command;
use common::exposition::{parse, Exposition};
use common::source::{Behaviour, Source};
use common::{poll_until_ok, Exporter};

/// How long a condition may take to become true: a few refreshes of 1 s.
const DEADLINE: Duration = Duration::from_secs(20);
const DATASET: &str = "remote_test";
/// The served metric.
const SERIES: &str = "r_widgets";

/// The data: two years of one series; `v` is 2024's value.
fn csv(v: u32) -> String {
    format!("area,year,value\nAA,2023,1\nAA,2024,{v}\n")
}

/// A dataset config reading `url` with these `[fetch]` lines (refresh 1 s and timeout 1 s
/// unless `fetch` sets them).
fn write_config(dir: &Path, url: &str, fetch: &str) -> PathBuf {
    let mut lines = String::from(fetch);
    if !fetch.contains("refresh") {
        lines.push_str("refresh = \"1s\"\n");
    }
    if !fetch.contains("timeout =") {
        lines.push_str("timeout = \"1s\"\n");
    }
    let text = format!(
        r#"[dataset]
name = "{DATASET}"
title = "Remote test"
publisher = "Test office"
source_url = "https://example.org/data"
published = "2025-01-01"
metric_prefix = "r_"

[fetch]
{lines}
[[metric]]
name = "widgets"
unit = "count"
help = "Widgets counted."

[[input]]
file = "{url}"
format = "csv"
metric = "widgets"
"#
    );
    let path = dir.join("remote.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// The exporter binary serving `config`.
fn start(config: &Path) -> Exporter {
    Exporter::start(&["--config.file", config.to_str().unwrap()])
}

fn metrics(e: &Exporter) -> Metrics {
    let text = e.metrics();
    Metrics(parse(&text), text)
}

/// Polls the metrics until `f` holds, failing with `what` and the last exposition.
fn until(e: &Exporter, what: &str, f: impl Fn(&Metrics) -> bool) -> Metrics {
    poll_until_ok(what, DEADLINE, Duration::from_millis(100), || {
        let m = metrics(e);
        if f(&m) {
            Ok(m)
        } else {
            Err(format!("metrics:\n{}", m.ours()))
        }
    })
}

/// A text exposition, read by name and labels whatever their order; and its text.
struct Metrics(Exposition, String);

impl Metrics {
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.0.value(name, labels)
    }

    /// A per-source self-metric of the test's dataset and source `url`, 0 when absent.
    fn source(&self, name: &str, url: &str, extra: &[(&str, &str)]) -> f64 {
        let mut labels = vec![("dataset", DATASET), ("source", url)];
        labels.extend_from_slice(extra);
        self.value(&format!("indicator_exporter_{name}"), &labels)
            .unwrap_or(0.0)
    }

    fn failures(&self, url: &str, reason: &str) -> f64 {
        self.source("source_failures_total", url, &[("reason", reason)])
    }

    fn requests(&self, url: &str, result: &str) -> f64 {
        self.source("source_requests_total", url, &[("result", result)])
    }

    fn loads(&self, result: &str) -> f64 {
        self.value(
            "indicator_exporter_dataset_loads_total",
            &[("dataset", DATASET), ("result", result)],
        )
        .unwrap_or(0.0)
    }

    /// The served 2024 value.
    fn served(&self) -> Option<f64> {
        self.value(SERIES, &[("area", "AA"), ("period", "2024")])
    }

    /// The exporter's own lines, for failure messages.
    fn ours(&self) -> String {
        self.1
            .lines()
            .filter(|l| l.starts_with("indicator_exporter_") || l.starts_with("r_widgets{"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Starts a source serving `csv(2)` and the exporter reading it with these `[fetch]` lines;
/// returns both once the data is served.
fn running(fetch: &str) -> (tempfile::TempDir, Source, Exporter) {
    let dir = tempfile::tempdir().unwrap();
    let source = Source::start(&csv(2));
    let config = write_config(dir.path(), &source.url(), fetch);
    let exporter = start(&config);
    let m = metrics(&exporter);
    assert_eq!(m.served(), Some(2.0), "{}", m.ours());
    assert_eq!(
        m.source("source_last_attempt_successful", &source.url(), &[]),
        1.0
    );
    (dir, source, exporter)
}

/// A failure that keeps the last good data: counted with `reason`, the last attempt marked
/// failed, 2024's value still 2; then the source recovers and the attempt is marked good.
fn assert_failure_keeps_data(source: &Source, exporter: &Exporter, reason: &str) {
    let url = source.url();
    let m = until(
        exporter,
        &format!("a failure counted with reason {reason}"),
        |m| {
            m.failures(&url, reason) >= 1.0
                && m.source("source_last_attempt_successful", &url, &[]) == 0.0
        },
    );
    assert_eq!(m.served(), Some(2.0), "{}", m.ours());
    assert!(m.requests(&url, "failed") >= 1.0, "{}", m.ours());
    assert!(
        m.source("source_last_success_timestamp_seconds", &url, &[]) > 0.0,
        "{}",
        m.ours()
    );
    assert_eq!(m.loads("failure"), 0.0, "{}", m.ours());
    source.set(|b| {
        *b = Behaviour {
            body: csv(2),
            etag: true,
            status: None,
            hang: false,
            hops: 0,
            fail_request: None,
        }
    });
    until(exporter, "the source's recovery", |m| {
        m.source("source_last_attempt_successful", &url, &[]) == 1.0
    });
}

#[test]
fn a_changed_source_is_served_after_its_refresh() {
    let (_dir, source, exporter) = running("");
    let url = source.url();
    source.set(|b| b.body = csv(5));
    let m = until(&exporter, "the new value", |m| m.served() == Some(5.0));
    assert!(m.requests(&url, "changed") >= 2.0, "{}", m.ours());
    assert!(m.loads("success") >= 2.0, "{}", m.ours());
    assert!(
        m.source("source_fetched_bytes_total", &url, &[]) >= (csv(2).len() + csv(5).len()) as f64,
        "{}",
        m.ours()
    );
    assert_eq!(m.source("source_last_attempt_successful", &url, &[]), 1.0);
}

#[test]
fn not_modified_and_unchanged_bodies_do_not_reload() {
    let (_dir, source, exporter) = running("");
    let url = source.url();
    let m = until(&exporter, "two 304 answers", |m| {
        m.requests(&url, "not_modified") >= 2.0
    });
    assert_eq!(m.loads("success"), 1.0, "{}", m.ours());
    assert_eq!(m.requests(&url, "changed"), 1.0, "{}", m.ours());
    assert_eq!(m.source("source_last_attempt_successful", &url, &[]), 1.0);
    assert!(source.stats().conditional >= 2);

    // Without an ETag the same body comes back whole: fetched, not parsed.
    source.set(|b| b.etag = false);
    let m = until(&exporter, "two unchanged bodies", |m| {
        m.requests(&url, "unchanged") >= 2.0
    });
    assert_eq!(m.loads("success"), 1.0, "{}", m.ours());
    assert_eq!(m.served(), Some(2.0));
}

#[test]
fn a_server_error_keeps_the_last_good_data() {
    let (_dir, source, exporter) = running("");
    source.set(|b| b.status = Some(500));
    assert_failure_keeps_data(&source, &exporter, "http_status");
}

#[test]
fn a_source_that_never_answers_times_out() {
    let (_dir, source, exporter) = running("");
    source.set(|b| b.hang = true);
    assert_failure_keeps_data(&source, &exporter, "timeout");
}

#[test]
fn a_body_over_max_size_is_refused() {
    let (_dir, source, exporter) = running("max_size = \"1KiB\"\n");
    source.set(|b| b.body = format!("{}{}", csv(3), "AA,1999,1\n".repeat(200)));
    assert_failure_keeps_data(&source, &exporter, "too_large");
}

#[test]
fn redirects_are_followed_up_to_max_redirects() {
    let dir = tempfile::tempdir().unwrap();
    let source = Source::start(&csv(2));
    source.set(|b| b.hops = 2);
    let config = write_config(dir.path(), &source.url(), "max_redirects = 2\n");
    let exporter = start(&config);
    assert_eq!(metrics(&exporter).served(), Some(2.0));
    source.set(|b| b.hops = 3);
    assert_failure_keeps_data(&source, &exporter, "redirects");
}

#[test]
fn an_invalid_body_keeps_the_last_good_data_and_shows_why() {
    let (_dir, source, exporter) = running("");
    let url = source.url();
    source.set(|b| b.body = "area,year,value\nAA,2023,1\nAA,2024,lots\n".into());
    // The source's failure and the dataset's failed load are two counters: wait for both.
    let m = until(&exporter, "the bad body refused", |m| {
        m.failures(&url, "invalid") >= 1.0 && m.loads("failure") >= 1.0
    });
    assert_eq!(m.served(), Some(2.0), "{}", m.ours());
    let page = exporter.get(&format!("/datasets/{DATASET}"));
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(
        html.contains(&format!("{url}:3:")),
        "the error's position is not on the page:\n{html}"
    );
    assert!(
        html.contains("lots"),
        "the bad value is not on the page:\n{html}"
    );
}

#[test]
fn an_unchanged_invalid_body_is_parsed_once() {
    let (_dir, source, exporter) = running("");
    let url = source.url();
    source.set(|b| {
        b.body = "area,year,value\nAA,2024,lots\n".into();
        b.etag = false;
    });
    // Fetched again and again (the backoff is capped by the 1 s refresh), refused each time,
    // loaded once.
    let m = until(&exporter, "the bad body refused three times", |m| {
        m.failures(&url, "invalid") >= 3.0
    });
    assert_eq!(m.loads("failure"), 1.0, "{}", m.ours());
    assert_eq!(m.served(), Some(2.0), "{}", m.ours());
    // A new body is parsed, and served.
    source.set(|b| b.body = csv(7));
    let m = until(&exporter, "the good body served", |m| {
        m.served() == Some(7.0)
    });
    assert_eq!(m.loads("failure"), 1.0, "{}", m.ours());
}

#[test]
fn a_source_down_at_start_up_fails_the_start_by_default() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/data.csv");
    let config = write_config(dir.path(), &url, "");
    let mut cmd = command();
    cmd.arg("--config.file")
        .arg(&config)
        .arg("--web.listen-address=127.0.0.1:0");
    let mut exporter = Exporter::spawn(cmd);
    let status = exporter.wait_exit(DEADLINE);
    let stderr = exporter.stderr();
    assert!(!status.success(), "{status}: {stderr}");
    assert!(stderr.contains(&url), "the URL is not named: {stderr}");
    assert!(!stderr.contains("msg=listening"), "{stderr}");
}

#[test]
fn a_not_ready_source_down_at_start_up_is_served_once_it_answers() {
    let dir = tempfile::tempdir().unwrap();
    let source = Source::start(&csv(4));
    source.set(|b| b.status = Some(503));
    let url = source.url();
    let config = write_config(dir.path(), &url, "on_start_failure = \"not-ready\"\n");
    let exporter = start(&config);
    let ready = exporter.get("/-/ready");
    assert_eq!(ready.status, 503, "{}", ready.text());
    assert!(ready.text().contains(DATASET), "{}", ready.text());
    let m = metrics(&exporter);
    assert_eq!(m.served(), None, "{}", m.ours());
    assert_eq!(
        m.value("indicator_exporter_dataset_ready", &[("dataset", DATASET)]),
        Some(0.0),
        "{}",
        m.ours()
    );
    assert!(m.failures(&url, "http_status") >= 1.0, "{}", m.ours());

    source.set(|b| b.status = None);
    let m = until(&exporter, "the data once the source answers", |m| {
        m.served() == Some(4.0)
    });
    assert_eq!(
        m.value("indicator_exporter_dataset_ready", &[("dataset", DATASET)]),
        Some(1.0)
    );
    let ready = exporter.get("/-/ready");
    assert_eq!(ready.status, 200, "{}", ready.text());
}
