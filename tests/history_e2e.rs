//! End to end for history and long-term storage, with real parts: the bundled dataset's history
//! from `indicator_exporter export`, backfilled into a real Prometheus with the real `promtool`
//! and imported into a real VictoriaMetrics, every published figure read back at its
//! timestamp; and a real Prometheus that scrapes the exporter and remote-writes what it scrapes
//! to VictoriaMetrics, where every served series is found.
//!
//! Needs `prometheus`, `promtool` and `victoria-metrics` on PATH (`scripts/install-deps`).
//! Talks to 127.0.0.1 only.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::e2e::*;
use common::exposition::parse;
use common::Exporter;

const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config.toml");
/// The bundled dataset's published figures (`../shared/data/`: 37 rows).
const FIGURES: usize = 37;

/// A figure as it should come back from a time-series database: the series (name and labels
/// without `year`), the time in Unix seconds, the value.
type Point = (SampleKey, i64, f64);

/// The last second of year `y` (UTC), counted here without the exporter's calendar.
fn end_of_year(y: i64) -> i64 {
    let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days: i64 = (1970..=y).map(|y| if leap(y) { 366 } else { 365 }).sum();
    days * 86_400 - 1
}

/// The figures the exporter serves on `/metrics`, one per `year` label, as the points a
/// backfill must give back. Release-calendar families carry `year` too (the year awaited);
/// they are not figures.
fn served_figures(target: &str) -> Vec<Point> {
    let text = get(&agent(), &format!("http://{target}/metrics"), &[]).expect("scrape");
    let mut points: Vec<Point> = parse(&text)
        .samples
        .iter()
        .map(|s| (s.key(), s.value))
        .filter(|((name, _), _)| name.starts_with("cnipa_") && !name.contains("next_release"))
        .filter_map(|((name, mut labels), value)| {
            let year: i64 = labels.remove("year")?.parse().expect("a year");
            Some(((name, labels), end_of_year(year), value))
        })
        .collect();
    points.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    assert_eq!(points.len(), FIGURES, "figures served: {points:?}");
    points
}

/// The bundled config's export in `format`, checked to hold every figure.
fn export_bundled(dir: &Path, format: &str) -> String {
    let (text, stderr) = export(dir, Path::new(CONFIG), format);
    assert!(
        stderr.contains(&format!(
            "exported {FIGURES} samples of 12 series in 6 families"
        )),
        "{stderr}"
    );
    text
}

/// The points of an export file, timestamps in seconds.
fn exported_points(text: &str, ms: bool) -> Vec<Point> {
    let mut points: Vec<Point> = parse(text)
        .samples
        .iter()
        .map(|s| (s.key(), s.value, s.timestamp))
        .map(|(key, value, t)| {
            let t = t.expect("every exported sample has a timestamp");
            (key, if ms { t / 1000 } else { t }, value)
        })
        .collect();
    points.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    points
}

/// `name{label="value",…,year=""}`: the series as exported (no `year`), not as scraped.
fn selector((name, labels): &SampleKey) -> String {
    let mut s = format!("{name}{{");
    for (k, v) in labels {
        s += &format!("{k}=\"{v}\",");
    }
    s + "year=\"\"}"
}

#[test]
fn backfilled_history_reads_back_at_each_period_in_prometheus() {
    require_tool("prometheus");
    require_tool("promtool");
    let tmp = tempfile::tempdir().expect("temporary directory");
    let exporter = Exporter::start(&["--config.file", CONFIG]);
    let target = exporter.addr().to_string();
    let want = served_figures(&target);

    let om = backfill(tmp.path(), Path::new(CONFIG));
    assert!(om.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
    assert_eq!(exported_points(&om, false), want, "the export file itself");

    let (_prometheus, prom) = start_prometheus_config(tmp.path(), "scrape_configs: []\n");
    let agent = agent();
    poll("Prometheus to be ready", || {
        get(&agent, &format!("{prom}/-/ready"), &[])
    });
    for (key, t, value) in &want {
        let expr = selector(key);
        let at = t.to_string();
        let r = poll(&format!("{expr} at {at}"), || {
            let data = api(
                &agent,
                &prom,
                "/api/v1/query",
                &[("query", &expr), ("time", &at)],
            )?;
            match data["result"].as_array() {
                Some(r) if r.len() == 1 => Ok(r[0].clone()),
                _ => Err(format!("{data}")),
            }
        });
        assert_eq!(prom_value(&r), *value, "{expr} at {at}");
        assert_eq!(
            r["value"][0].as_f64(),
            Some(*t as f64),
            "{expr}: evaluated at the period's end"
        );
    }
    // One series per label set across the years, as time-series panels and *_over_time need.
    let latest = end_of_year(2025).to_string();
    for (expr, expected) in [
        (
            r#"count_over_time(cnipa_enterprise_invention_patent_industrialization_ratio{size="all",sector="all",year=""}[10y])"#,
            6.0,
        ),
        (
            r#"max_over_time(cnipa_enterprise_invention_patent_industrialization_ratio{size="all",sector="all",year=""}[10y])"#,
            0.54,
        ),
        (
            r#"min_over_time(cnipa_enterprise_invention_patent_industrialization_ratio{size="all",sector="all",year=""}[10y])"#,
            0.449,
        ),
    ] {
        let data = api(
            &agent,
            &prom,
            "/api/v1/query",
            &[("query", expr), ("time", &latest)],
        )
        .unwrap();
        let r = data["result"].as_array().expect("a vector");
        assert_eq!(r.len(), 1, "{expr}: {data}");
        assert_eq!(prom_value(&r[0]), expected, "{expr}");
    }
}

#[test]
fn history_imports_into_victoriametrics() {
    require_tool("victoria-metrics");
    let tmp = tempfile::tempdir().expect("temporary directory");
    let exporter = Exporter::start(&["--config.file", CONFIG]);
    let target = exporter.addr().to_string();
    let want = served_figures(&target);

    let text = export_bundled(tmp.path(), "prometheus");
    assert!(!text.contains("# EOF"), "the text format has no # EOF");
    assert_eq!(exported_points(&text, true), want, "the export file itself");

    let (_vm, vm) = start_victoria_metrics(tmp.path());
    let agent = agent();
    let mut resp = agent
        .post(format!("{vm}/api/v1/import/prometheus"))
        .send(text.as_bytes())
        .expect("POST the export to /api/v1/import/prometheus");
    let status = resp.status();
    let body = resp.body_mut().read_to_string().unwrap_or_default();
    assert!(status.is_success(), "import: {status}: {body}");

    let got = poll("every figure to be in VictoriaMetrics", || {
        let mut points: Vec<Point> = vm_export(&agent, &vm, r#"{__name__=~"cnipa_.*"}"#)?
            .into_iter()
            .map(|(key, value, ms)| (key, ms / 1000, value))
            .collect();
        points.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
        if points.len() == want.len() {
            Ok(points)
        } else {
            Err(format!("{} of {} points", points.len(), want.len()))
        }
    });
    assert_eq!(got, want);
    // And through the Prometheus-compatible query API, as Grafana reads it.
    let (key, t, value) = &want[want.len() / 2];
    let expr = selector(key);
    let data = api(
        &agent,
        &vm,
        "/api/v1/query",
        &[("query", &expr), ("time", &t.to_string())],
    )
    .unwrap();
    let r = data["result"].as_array().expect("a vector");
    assert_eq!(r.len(), 1, "{expr}: {data}");
    assert_eq!(prom_value(&r[0]), *value, "{expr}");
}

#[test]
fn prometheus_remote_writes_served_series_to_victoriametrics() {
    require_tool("prometheus");
    require_tool("promtool");
    require_tool("victoria-metrics");
    let tmp = tempfile::tempdir().expect("temporary directory");
    let (_vm, vm) = start_victoria_metrics(tmp.path());
    let exporter = Exporter::start(&["--config.file", CONFIG]);
    let target = exporter.addr().to_string();
    // The shipped example, pointed at this test's ports, its rules and a 1 s scrape.
    let example = std::fs::read_to_string(format!("{ROOT}/prometheus/prometheus-remote-write.yml"))
        .expect("prometheus/prometheus-remote-write.yml");
    let config = [
        ("localhost:8905", target.as_str()),
        ("http://localhost:8428", vm.as_str()),
        ("rules/*.yml", &format!("{ROOT}/prometheus/rules/*.yml")),
        ("scrape_interval: 1m", "scrape_interval: 1s"),
        ("scrape_timeout: 10s", "scrape_timeout: 1s"),
        ("batch_send_deadline: 5s", "batch_send_deadline: 1s"),
    ]
    .iter()
    .fold(example, |text, (from, to)| {
        assert!(text.contains(from), "the example has no `{from}`");
        text.replace(from, to)
    });
    let (_prometheus, _prom) = start_prometheus_config(tmp.path(), &config);
    let agent = agent();
    let text = get(&agent, &format!("http://{target}/metrics"), &[]).expect("scrape");
    let served: BTreeMap<SampleKey, f64> = parse(&text)
        .samples
        .iter()
        .map(|s| (s.key(), s.value))
        .filter(|((name, _), _)| name.starts_with("cnipa_"))
        .collect();
    assert!(served.len() >= FIGURES, "{} cnipa_ samples", served.len());

    let stored = poll("every served cnipa_ series in VictoriaMetrics", || {
        let points = vm_export(
            &agent,
            &vm,
            r#"{__name__=~"cnipa_.*",job="indicator_exporter"}"#,
        )?;
        let mut latest: BTreeMap<SampleKey, (i64, f64)> = BTreeMap::new();
        for ((name, mut labels), value, t) in points {
            if labels.remove("job").as_deref() != Some("indicator_exporter")
                || labels.remove("instance").as_deref() != Some(target.as_str())
            {
                return Err(format!("{name} {labels:?} lacks job or instance"));
            }
            let e = latest.entry((name, labels)).or_insert((t, value));
            if t >= e.0 {
                *e = (t, value);
            }
        }
        let have: BTreeSet<&SampleKey> = latest.keys().collect();
        let missing: Vec<&SampleKey> = served.keys().filter(|k| !have.contains(k)).collect();
        if missing.is_empty() {
            Ok(latest)
        } else {
            Err(format!(
                "{} series missing, e.g. {:?}",
                missing.len(),
                missing[0]
            ))
        }
    });
    assert_eq!(stored.len(), served.len(), "no series beyond those served");
    for (key, value) in &served {
        assert_eq!(stored[key].1, *value, "{key:?}");
    }
    // The exporter's own metrics travel too: a replicated deployment aggregates them there.
    let own = poll("indicator_exporter_build_info in VictoriaMetrics", || {
        let p = vm_export(&agent, &vm, "indicator_exporter_build_info")?;
        if p.is_empty() {
            Err("not yet".into())
        } else {
            Ok(p)
        }
    });
    assert_eq!(own[0].1, 1.0);
}
