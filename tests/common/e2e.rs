//! Support for the end-to-end tests: real processes (Prometheus, VictoriaMetrics; the
//! exporter is [`super::Exporter`]) on loopback ports, killed when the test ends, and their
//! HTTP APIs. Needs `prometheus`, `promtool` and `victoria-metrics` on PATH
//! (`scripts/install-deps`), checked by [`super::require_tool`].

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

pub use super::require_tool;
use super::{exporter, poll_until_ok};

pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// How long anything may take to become true before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(60);
pub const POLL: Duration = Duration::from_millis(250);

/// A child process killed (and reaped) when the test ends, however it ends.
pub struct Guard {
    pub name: &'static str,
    pub child: Child,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Err(e) = self.child.kill() {
            eprintln!("could not kill {}: {e}", self.name);
        }
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral loopback port")
        .port()
}

/// Polls `f` every [`POLL`] until it returns Ok, failing with `what` (and the last error) at
/// [`DEADLINE`].
pub fn poll<T>(what: &str, f: impl FnMut() -> Result<T, String>) -> T {
    poll_until_ok(what, DEADLINE, POLL, f)
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            .proxy(None)
            .build(),
    )
}

/// GET `url` with query parameters; the body if the status is 200.
pub fn get(agent: &ureq::Agent, url: &str, params: &[(&str, &str)]) -> Result<String, String> {
    let mut req = agent.get(url);
    for (k, v) in params {
        req = req.query(*k, *v);
    }
    let mut resp = req.call().map_err(|e| format!("GET {url}: {e}"))?;
    let status = resp.status();
    let body = resp
        .body_mut()
        .read_to_string()
        .map_err(|e| format!("GET {url}: reading body: {e}"))?;
    if status != 200 {
        return Err(format!("GET {url} {params:?}: {status}: {body}"));
    }
    Ok(body)
}

/// The `data` of a Prometheus HTTP API answer.
pub fn api(
    agent: &ureq::Agent,
    prom: &str,
    path: &str,
    params: &[(&str, &str)],
) -> Result<Value, String> {
    let body = get(agent, &format!("{prom}{path}"), params)?;
    let v: Value = serde_json::from_str(&body).map_err(|e| format!("{path}: {e}: {body}"))?;
    if v["status"] != "success" {
        return Err(format!("{path} {params:?}: {body}"));
    }
    Ok(v["data"].clone())
}

/// The result vector of an instant query.
pub fn query(agent: &ureq::Agent, prom: &str, expr: &str) -> Result<Vec<Value>, String> {
    let data = api(agent, prom, "/api/v1/query", &[("query", expr)])?;
    match &data["result"] {
        Value::Array(a) => Ok(a.clone()),
        // A scalar or string result is one value.
        other => Ok(vec![other.clone()]),
    }
}

pub fn start_prometheus(dir: &Path, target: &str) -> (Guard, String) {
    let rules = format!("{ROOT}/prometheus/rules/*.yml");
    start_prometheus_config(
        dir,
        &format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - '{rules}'\n\
             scrape_configs:\n  - job_name: indicator_exporter\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
}

/// Starts Prometheus with `config` (checked by promtool first) storing in `dir/data`, where
/// backfilled blocks may already be. Retention is long: backfilled history is years old, and
/// the default 15 days would delete it at start.
pub fn start_prometheus_config(dir: &Path, config: &str) -> (Guard, String) {
    let config_path = dir.join("prometheus.yml");
    std::fs::write(&config_path, config).expect("write prometheus.yml");
    let out = Command::new(require_tool("promtool"))
        .arg("check")
        .arg("config")
        .arg(&config_path)
        .output()
        .expect("run promtool check config");
    assert!(
        out.status.success(),
        "promtool check config: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let port = free_port();
    let log = std::fs::File::create(dir.join("prometheus.log")).expect("create prometheus.log");
    let child = Command::new(require_tool("prometheus"))
        .arg(format!("--config.file={}", config_path.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg("--storage.tsdb.retention.time=100y")
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start prometheus");
    (
        Guard {
            name: "prometheus",
            child,
        },
        format!("http://127.0.0.1:{port}"),
    )
}

/// Polls until Prometheus's indicator_exporter target is up and its last scrape had no error.
pub fn wait_target_up(agent: &ureq::Agent, prom: &str, with_log: &dyn Fn(String) -> String) {
    poll("the exporter target to be up", || {
        let data = api(agent, prom, "/api/v1/targets", &[("state", "active")]).map_err(with_log)?;
        let targets = data["activeTargets"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let t = targets
            .iter()
            .find(|t| t["labels"]["job"] == "indicator_exporter")
            .ok_or_else(|| format!("no indicator_exporter target in {data}"))?;
        if t["health"] == "up" && t["lastError"] == "" {
            Ok(())
        } else {
            Err(format!("target {t}"))
        }
    });
}

/// A sample of the text exposition: its name and labels (sorted), as one key.
pub type SampleKey = (String, BTreeMap<String, String>);

pub fn prom_value(sample: &Value) -> f64 {
    sample["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no value in {sample}"))
}

/// Starts VictoriaMetrics storing in `dir/vm`, keeping everything (history is years old; the
/// default retention is one month), and waits for it to be healthy.
pub fn start_victoria_metrics(dir: &Path) -> (Guard, String) {
    start_victoria_metrics_with(dir, &[])
}

/// [`start_victoria_metrics`] with more flags (`-dedup.minScrapeInterval=…`).
pub fn start_victoria_metrics_with(dir: &Path, flags: &[&str]) -> (Guard, String) {
    let port = free_port();
    let log = std::fs::File::create(dir.join("victoria-metrics.log")).expect("create vm log");
    let child = Command::new(require_tool("victoria-metrics"))
        .arg(format!("-storageDataPath={}", dir.join("vm").display()))
        .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
        .arg("-retentionPeriod=100y")
        .args(flags)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start victoria-metrics");
    let guard = Guard {
        name: "victoria-metrics",
        child,
    };
    let url = format!("http://127.0.0.1:{port}");
    let agent = agent();
    poll("VictoriaMetrics to be healthy", || {
        get(&agent, &format!("{url}/health"), &[])
    });
    (guard, url)
}

/// Every sample VictoriaMetrics holds for `selector`, from `/api/v1/export` (one JSON line
/// per series), as (name and labels, value, timestamp in milliseconds).
pub fn vm_export(
    agent: &ureq::Agent,
    vm: &str,
    selector: &str,
) -> Result<Vec<(SampleKey, f64, i64)>, String> {
    let body = get(
        agent,
        &format!("{vm}/api/v1/export"),
        &[("match[]", selector)],
    )?;
    let mut out = Vec::new();
    for line in body.lines().filter(|l| !l.is_empty()) {
        let v: Value = serde_json::from_str(line).map_err(|e| format!("{e}: {line}"))?;
        let mut labels: BTreeMap<String, String> =
            serde_json::from_value(v["metric"].clone()).map_err(|e| format!("{e}: {line}"))?;
        let name = labels.remove("__name__").ok_or("no __name__")?;
        let values = v["values"].as_array().ok_or("no values")?;
        let times = v["timestamps"].as_array().ok_or("no timestamps")?;
        for (value, t) in values.iter().zip(times) {
            let value = value
                .as_f64()
                .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
                .ok_or_else(|| format!("value {value} in {line}"))?;
            let t = t
                .as_i64()
                .ok_or_else(|| format!("timestamp {t} in {line}"))?;
            out.push(((name.clone(), labels.clone()), value, t));
        }
    }
    Ok(out)
}

/// Runs `indicator_exporter export` on `config` in `format` (`openmetrics` or `prometheus`)
/// into `dir/history.FORMAT`; returns the file's text and the summary printed on stderr.
pub fn export(dir: &Path, config: &Path, format: &str) -> (String, String) {
    let path = dir.join(format!("history.{format}"));
    let out = exporter::command()
        .arg("export")
        .arg("--config.file")
        .arg(config)
        .args(["--format", format, "-o"])
        .arg(&path)
        .output()
        .expect("run indicator_exporter export");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "export failed: {stderr}");
    let text = std::fs::read_to_string(&path).expect("read the export");
    (text, stderr)
}

/// Backfills the history of `config` into `dir/data`, where [`start_prometheus_config`]
/// stores: the export in OpenMetrics, turned into blocks by `promtool tsdb
/// create-blocks-from openmetrics`, as the backfill steps of
/// docs/alerts-and-dashboards.md do. Returns the export.
pub fn backfill(dir: &Path, config: &Path) -> String {
    let (text, _) = export(dir, config, "openmetrics");
    let out = Command::new(require_tool("promtool"))
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(dir.join("history.openmetrics"))
        .arg(dir.join("data"))
        .output()
        .expect("run promtool tsdb create-blocks-from openmetrics");
    assert!(
        out.status.success(),
        "promtool tsdb create-blocks-from openmetrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    text
}
