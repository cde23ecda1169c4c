//! End to end: the real exporter serving the bundled `config.toml` in a catalogue (beside a
//! dataset fetched from a loopback server), scraped by a real Prometheus that loads the
//! repository's alerting rules. Checks that every sample arrives intact over OpenMetrics, that
//! the rules load and evaluate cleanly and fire on real data, that every query of the Grafana
//! dashboards returns data, and the dashboards' structure.
//!
//! Needs `prometheus` and `promtool` on PATH (`scripts/install-deps`). Talks to 127.0.0.1 only.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::e2e::*;
use common::exposition::parse;
use common::source::Source;
use common::Exporter;
use serde_json::Value;

const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config.toml");
const DASHBOARDS: [&str; 3] = [
    "indicator-overview.json",
    "indicator-drilldown.json",
    "indicator-exporter-health.json",
];

/// The dataset of the catalogue whose data file is a URL (see [`Source`]).
const REMOTE_DATASET: &str = "e2e_remote";

/// Writes a catalogue in `dir`: the bundled config.toml and a dataset fetched from `source`
/// every second. Returns the main config file.
fn write_catalogue(dir: &Path, source: &Source) -> PathBuf {
    let remote = format!(
        r#"[dataset]
name = "{REMOTE_DATASET}"
title = "A dataset fetched from a loopback server"
publisher = "Test office"
source_url = "https://example.org/data"
published = "2025-01-01"
metric_prefix = "e2e_"

[fetch]
refresh = "1s"
timeout = "2s"

[[metric]]
name = "widgets"
unit = "count"
help = "Widgets counted."

[[input]]
file = "{url}"
format = "csv"
metric = "widgets"
"#,
        url = source.url()
    );
    std::fs::write(dir.join("remote.toml"), remote).expect("write remote.toml");
    let main = dir.join("catalog.toml");
    let config = toml_string(CONFIG);
    std::fs::write(
        &main,
        format!("[catalog]\ndatasets = [{config}, \"remote.toml\"]\n"),
    )
    .expect("write catalog.toml");
    main
}

/// `s` as a TOML basic string.
fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The alerts Prometheus currently holds (pending or firing).
fn alerts(agent: &ureq::Agent, prom: &str) -> Result<Vec<Value>, String> {
    let data = api(agent, prom, "/api/v1/alerts", &[])?;
    Ok(data["alerts"].as_array().cloned().unwrap_or_default())
}

/// Polls until an alert named `name` with the given labels is in `state`; returns it.
fn wait_alert(
    agent: &ureq::Agent,
    prom: &str,
    name: &str,
    labels: &[(&str, &str)],
    state: &str,
) -> Value {
    poll(&format!("alert {name} {labels:?} to be {state}"), || {
        let all = alerts(agent, prom)?;
        all.iter()
            .find(|a| {
                a["labels"]["alertname"] == name
                    && a["state"] == state
                    && labels.iter().all(|(k, v)| a["labels"][*k] == *v)
            })
            .cloned()
            .ok_or_else(|| format!("alerts: {all:?}"))
    })
}

/// Writes `text` to `path` in one step (rename), so a reload never sees half a file.
fn replace_file(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write config");
    std::fs::rename(&tmp, path).expect("rename config into place");
}

fn reload(agent: &ureq::Agent, target: &str) -> Result<String, String> {
    let mut resp = agent
        .post(format!("http://{target}/-/reload"))
        .send_empty()
        .map_err(|e| format!("POST /-/reload: {e}"))?;
    let status = resp.status();
    let body = resp.body_mut().read_to_string().unwrap_or_default();
    if status == 200 {
        Ok(body)
    } else {
        Err(format!("{status}: {body}"))
    }
}

fn load_dashboards() -> Vec<(String, Value)> {
    DASHBOARDS
        .iter()
        .map(|f| {
            let path = PathBuf::from(ROOT).join("grafana/dashboards").join(f);
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
            let v: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{f} is not valid JSON: {e}"));
            (f.to_string(), v)
        })
        .collect()
}

/// Every panel of a dashboard, including those nested in collapsed rows.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().into_iter().flatten() {
        out.push(p);
        for q in p["panels"].as_array().into_iter().flatten() {
            out.push(q);
        }
    }
    out
}

fn refers_to_datasource_variable(ds: &Value) -> bool {
    match ds {
        Value::String(s) => s == "$datasource" || s == "${datasource}",
        Value::Object(o) => matches!(
            o.get("uid").and_then(Value::as_str),
            Some("$datasource" | "${datasource}")
        ),
        _ => false,
    }
}

/// Replaces Grafana variables (`$name`, `${name}`, `[[name]]` is not used) with test values;
/// `$1`-style regex references of `label_replace` are left alone. Panics on an unknown variable.
fn substitute(expr: &str, vars: &HashMap<&str, String>) -> String {
    let mut out = String::new();
    let mut rest = expr;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, len) = if let Some(braced) = after.strip_prefix('{') {
            let end = braced.find('}').expect("closing brace of ${...}");
            (&braced[..end], end + 2)
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
            out.push('$');
            rest = after;
            continue;
        }
        let value = vars
            .get(name)
            .unwrap_or_else(|| panic!("query uses unknown variable ${name}: {expr}"));
        out.push_str(value);
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

fn check_dashboard_structure(dashboards: &[(String, Value)]) {
    let mut uids = HashSet::new();
    for (file, d) in dashboards {
        let uid = d["uid"]
            .as_str()
            .unwrap_or_else(|| panic!("{file}: no uid"));
        assert!(!uid.is_empty(), "{file}: empty uid");
        assert!(uids.insert(uid.to_string()), "{file}: uid {uid} used twice");
        assert!(
            d["title"].as_str().is_some_and(|t| !t.is_empty()),
            "{file}: no title"
        );

        let vars = d["templating"]["list"].as_array().expect("templating.list");
        assert!(
            vars.iter().any(|v| v["type"] == "datasource"
                && v["name"] == "datasource"
                && v["query"] == "prometheus"),
            "{file}: no `datasource` variable of type datasource (query prometheus)"
        );
        for v in vars.iter().filter(|v| v["type"] == "query") {
            assert!(
                refers_to_datasource_variable(&v["datasource"]),
                "{file}: variable {} does not use the datasource variable",
                v["name"]
            );
        }

        let mut ids = HashSet::new();
        let mut rects: Vec<(i64, i64, i64, i64, String)> = Vec::new();
        for p in panels(d) {
            let title = p["title"].as_str().unwrap_or_default().to_string();
            let id = p["id"]
                .as_i64()
                .unwrap_or_else(|| panic!("{file}: panel {title:?} has no id"));
            assert!(ids.insert(id), "{file}: panel id {id} used twice");
            assert!(
                refers_to_datasource_variable(&p["datasource"]),
                "{file}: panel {title:?} datasource is {} instead of the datasource variable",
                p["datasource"]
            );
            for t in p["targets"].as_array().into_iter().flatten() {
                if !t["datasource"].is_null() {
                    assert!(
                        refers_to_datasource_variable(&t["datasource"]),
                        "{file}: a query of panel {title:?} has datasource {}",
                        t["datasource"]
                    );
                }
            }
            if p["type"] != "row" {
                assert!(
                    p["description"].as_str().is_some_and(|s| s.len() > 20),
                    "{file}: panel {title:?} has no description"
                );
                assert!(
                    p["fieldConfig"]["defaults"]["unit"].as_str().is_some(),
                    "{file}: panel {title:?} has no unit"
                );
                assert!(
                    p["targets"].as_array().is_some_and(|t| !t.is_empty()),
                    "{file}: panel {title:?} has no query"
                );
            }
            let g = &p["gridPos"];
            let [x, y, w, h] = ["x", "y", "w", "h"].map(|k| {
                g[k].as_i64()
                    .unwrap_or_else(|| panic!("{file}: panel {title:?} gridPos.{k} missing"))
            });
            assert!(
                x >= 0 && y >= 0 && w > 0 && h > 0 && x + w <= 24,
                "{file}: panel {title:?} gridPos {g} is outside the 24-column grid"
            );
            for (ox, oy, ow, oh, other) in &rects {
                let overlap = x < ox + ow && *ox < x + w && y < oy + oh && *oy < y + h;
                assert!(!overlap, "{file}: panels {title:?} and {other:?} overlap");
            }
            rects.push((x, y, w, h, title));
        }
    }
}

#[test]
fn prometheus_scrapes_exporter_rules_and_dashboards_work() {
    require_tool("prometheus");
    require_tool("promtool");

    // The repository's rules and their unit tests, as `make rules` runs them.
    let rule_files: Vec<PathBuf> = std::fs::read_dir(format!("{ROOT}/prometheus/rules"))
        .expect("prometheus/rules")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    assert!(!rule_files.is_empty(), "no rule files in prometheus/rules");
    let test_files: Vec<PathBuf> = std::fs::read_dir(format!("{ROOT}/prometheus/rules/tests"))
        .expect("prometheus/rules/tests")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    for (what, files) in [("check", &rule_files), ("test", &test_files)] {
        let out = Command::new(require_tool("promtool"))
            .args([what, "rules"])
            .args(files)
            .output()
            .expect("run promtool");
        assert!(
            out.status.success(),
            "promtool {what} rules failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = Command::new(require_tool("promtool"))
        .args(["check", "config"])
        .arg(format!("{ROOT}/prometheus/prometheus.yml"))
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool check config prometheus/prometheus.yml failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let dashboards = load_dashboards();
    check_dashboard_structure(&dashboards);

    let tmp = tempfile::tempdir().expect("temporary directory");
    // The history the dashboards' time-series panels read, backfilled as docs/alerts-and-dashboards.md says.
    let history = backfill(tmp.path(), Path::new(CONFIG));
    let published: Vec<f64> = parse(&history).samples.iter().map(|s| s.value).collect();
    // The second fetch of the remote source fails, so its failure series exist for the panels;
    // the others bring the same body (no ETag), counted as unchanged.
    let source = Source::start("area,year,value\nAA,2023,1\nAA,2024,2\n");
    source.set(|b| {
        b.etag = false;
        b.fail_request = Some(2);
    });
    let catalogue = tmp.path().join("catalogue");
    std::fs::create_dir(&catalogue).expect("mkdir");
    let main = write_catalogue(&catalogue, &source);
    let exporter = Exporter::start(&["--config.file", main.to_str().unwrap()]);
    let target = exporter.addr().to_string();
    let (_prometheus, prom) = start_prometheus(tmp.path(), &target);
    let agent = agent();
    let prom_log = tmp.path().join("prometheus.log");
    let with_log = |e: String| {
        format!(
            "{e}\n--- prometheus log ---\n{}",
            std::fs::read_to_string(&prom_log).unwrap_or_default()
        )
    };

    // The target is up, scraped without error.
    wait_target_up(&agent, &prom, &with_log);

    // Every rule file is loaded, and every rule evaluates without error against real data.
    let expected_files: BTreeSet<String> = rule_files
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let rules = poll("every rule to be loaded and evaluated", || {
        let data = api(&agent, &prom, "/api/v1/rules", &[])?;
        let groups = data["groups"].as_array().cloned().unwrap_or_default();
        let files: BTreeSet<String> = groups
            .iter()
            .filter_map(|g| g["file"].as_str().map(String::from))
            .collect();
        if files != expected_files {
            return Err(format!("rule files loaded: {files:?}"));
        }
        let rules: Vec<Value> = groups
            .iter()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect();
        match rules.iter().find(|r| r["health"] != "ok") {
            Some(r) => Err(format!("rule not (yet) healthy: {r}")),
            None => Ok(rules),
        }
    });
    assert!(rules.len() >= 10, "only {} rules loaded", rules.len());
    for r in &rules {
        assert_eq!(r["type"], "alerting", "{r}");
        assert!(
            r["labels"]["severity"]
                .as_str()
                .is_some_and(|s| !s.is_empty()),
            "alert without severity: {r}"
        );
        for a in ["summary", "description"] {
            assert!(
                r["annotations"][a].as_str().is_some_and(|s| !s.is_empty()),
                "alert without {a}: {r}"
            );
        }
    }
    // The bundled dataset and the remote one, served by a healthy exporter, raise none of these
    // once the rules have been evaluated with the target up (an evaluation before the first
    // scrape sees no `up`) and the remote source has answered again after its one failure.
    let quiet = [
        "IndicatorExporterDown",
        "IndicatorExporterAbsent",
        "IndicatorDatasetReloadFailed",
        "IndicatorDatasetLoadFailed",
        "IndicatorDatasetNotReady",
        "IndicatorSourceFailing",
        "IndicatorSourceStale",
        "IndicatorRateFell",
        "IndicatorLevelFell",
        "IndicatorFigureRevised",
        "IndicatorSeriesRemoved",
    ];
    for name in quiet {
        assert!(
            rules.iter().any(|r| r["name"] == name),
            "alert {name} not loaded"
        );
    }
    // The remote dataset is served; its source failed once (the 503) and answers again.
    let url = source.url();
    for (expr, want) in [
        (
            format!(r#"indicator_exporter_dataset_ready{{dataset="{REMOTE_DATASET}"}}"#),
            1.0,
        ),
        (
            format!(
                r#"indicator_exporter_source_failures_total{{dataset="{REMOTE_DATASET}",source="{url}",reason="http_status"}}"#
            ),
            1.0,
        ),
        (
            format!(
                r#"indicator_exporter_source_last_attempt_successful{{dataset="{REMOTE_DATASET}",source="{url}"}}"#
            ),
            1.0,
        ),
    ] {
        poll(&format!("{expr} = {want} in Prometheus"), || {
            let r = query(&agent, &prom, &expr)?;
            match r.first().map(prom_value) {
                Some(v) if v == want => Ok(()),
                other => Err(format!("{other:?}")),
            }
        });
    }
    assert!(source.stats().requests >= 3);
    poll("the health and fall alerts to be inactive", || {
        let data = api(&agent, &prom, "/api/v1/rules", &[])?;
        let groups = data["groups"].as_array().cloned().unwrap_or_default();
        for g in &groups {
            for r in g["rules"].as_array().into_iter().flatten() {
                if quiet.iter().any(|q| r["name"] == *q) && r["state"] != "inactive" {
                    return Err(format!("{} is {}: {r}", r["name"], r["state"]));
                }
            }
        }
        Ok(())
    });

    // (1) The scrape used OpenMetrics: only its parser knows `info` families and `# UNIT`.
    let exporter = format!("http://{target}/metrics");
    let meta = api(&agent, &prom, "/api/v1/metadata", &[])
        .map_err(with_log)
        .unwrap();
    let meta_of = |family: &str| -> Value {
        meta[family]
            .as_array()
            .and_then(|a| a.first())
            .cloned()
            .unwrap_or_else(|| panic!("no metadata for {family}"))
    };
    assert_eq!(
        meta_of("cnipa_dataset")["type"],
        "info",
        "OpenMetrics info family"
    );
    assert_eq!(
        meta_of("cnipa_enterprise_invention_patent_industrialization_ratio")["unit"],
        "ratio",
        "OpenMetrics # UNIT"
    );
    assert_eq!(
        meta_of("cnipa_average_income_per_industrialized_enterprise_invention_patent_yuan")["unit"],
        "yuan"
    );
    assert_eq!(
        meta_of("indicator_exporter_config_reloads")["type"],
        "counter"
    );

    // Every `cnipa_` sample of the text exposition is in Prometheus, with the same value.
    let text = get(&agent, &exporter, &[]).expect("scrape the exporter");
    let exposed: BTreeMap<SampleKey, f64> = parse(&text)
        .samples
        .iter()
        .map(|s| (s.key(), s.value))
        .filter(|((name, _), _)| name.starts_with("cnipa_"))
        .collect();
    let lines = text.lines().filter(|l| l.starts_with("cnipa_")).count();
    assert_eq!(exposed.len(), lines, "duplicate samples in the exposition");
    assert!(lines >= 37, "only {lines} cnipa_ samples exposed");
    let stored = query(&agent, &prom, r#"{__name__=~"cnipa_.*"}"#).unwrap();
    let stored: BTreeMap<SampleKey, f64> = stored
        .iter()
        .map(|s| {
            let mut labels: BTreeMap<String, String> =
                serde_json::from_value(s["metric"].clone()).expect("labels");
            let name = labels.remove("__name__").expect("__name__");
            assert_eq!(labels.remove("job").as_deref(), Some("indicator_exporter"));
            assert_eq!(labels.remove("instance").as_deref(), Some(target.as_str()));
            ((name, labels), prom_value(s))
        })
        .collect();
    assert_eq!(
        stored.len(),
        lines,
        "cnipa_ series in Prometheus vs sample lines in /metrics"
    );
    for (key, value) in &exposed {
        let got = stored
            .get(key)
            .unwrap_or_else(|| panic!("{key:?} is exposed but not in Prometheus"));
        assert_eq!(got, value, "value of {key:?}");
    }
    let count = query(&agent, &prom, r#"count({__name__=~"cnipa_.*"})"#).unwrap();
    assert_eq!(prom_value(&count[0]), lines as f64);
    for (expr, want) in [
        (
            r#"cnipa_enterprise_invention_patent_industrialization_ratio{size="all",sector="all",year="2024"}"#,
            0.533,
        ),
        (
            r#"cnipa_enterprise_invention_patent_industrialization_latest_ratio{size="all",sector="all"}"#,
            0.54,
        ),
        (
            r#"cnipa_enterprise_invention_patent_industrialization_latest_year{size="all",sector="all"}"#,
            2025.0,
        ),
        (
            r#"cnipa_average_income_per_industrialized_enterprise_invention_patent_yuan{year="2023"}"#,
            8_296_000.0,
        ),
        (
            r#"cnipa_domestic_enterprise_valid_invention_patents{year="2024"}"#,
            3_506_000.0,
        ),
        (
            r#"cnipa_next_release_overdue_timestamp_seconds{dataset="cnipa_patent_survey",year="2026"}"#,
            1_819_756_800.0,
        ),
        (
            r#"indicator_exporter_dataset_series{dataset="cnipa_patent_survey"}"#,
            37.0,
        ),
    ] {
        let r = query(&agent, &prom, expr).unwrap();
        assert_eq!(r.len(), 1, "{expr}: {r:?}");
        assert_eq!(prom_value(&r[0]), want, "{expr}");
    }
    // A display-name join as the overview dashboard does it.
    let r = query(
        &agent,
        &prom,
        r#"cnipa_enterprise_invention_patent_industrialization_latest_ratio{sector="all",size="medium"} * on(size) group_left(name_en) cnipa_size_info"#,
    )
    .unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["metric"]["name_en"], "Medium-sized enterprises");
    assert_eq!(prom_value(&r[0]), 0.614);

    // (2) Every query of every dashboard returns data, variables set as a user would set them.
    let vars: HashMap<&str, String> = [
        ("datasource", "prometheus".to_string()),
        ("lang", "en".to_string()),
        (
            "metric",
            "cnipa_enterprise_invention_patent_industrialization_ratio".to_string(),
        ),
        (
            "stem",
            "cnipa_enterprise_invention_patent_industrialization".to_string(),
        ),
        ("size", "all".to_string()),
        ("sector", "all".to_string()),
        ("year", "2024".to_string()),
        ("dataset", "cnipa_patent_survey".to_string()),
        ("job", "indicator_exporter".to_string()),
        ("instance", target.clone()),
        ("__rate_interval", "1m".to_string()),
        ("__interval", "15s".to_string()),
        ("__range", "5m".to_string()),
    ]
    .into_iter()
    .collect();
    // Where a variable takes several values (the health dashboard's datasets), both datasets
    // are selected, as Grafana writes a selection into a regex matcher: `(a|b)`.
    let selections: HashMap<&str, Vec<String>> = [(
        "dataset",
        vec![
            "cnipa_patent_survey".to_string(),
            REMOTE_DATASET.to_string(),
        ],
    )]
    .into_iter()
    .collect();
    let vars_of = |d: &Value| -> HashMap<&str, String> {
        let mut out = vars.clone();
        for v in d["templating"]["list"].as_array().into_iter().flatten() {
            if v["multi"] == true {
                let name = v["name"].as_str().expect("variable name");
                let (name, chosen) = selections
                    .get_key_value(name)
                    .unwrap_or_else(|| panic!("no test selection for variable {name}"));
                out.insert(*name, format!("({})", chosen.join("|")));
            }
        }
        out
    };
    // The variables' own queries (`label_values(selector, label)`) return the values used above.
    for (file, d) in &dashboards {
        let vars = vars_of(d);
        for v in d["templating"]["list"].as_array().into_iter().flatten() {
            if v["type"] != "query" {
                continue;
            }
            let name = v["name"].as_str().expect("variable name");
            let def = v["definition"].as_str().expect("variable definition");
            let inner = def
                .strip_prefix("label_values(")
                .and_then(|s| s.strip_suffix(')'))
                .unwrap_or_else(|| panic!("{file}: variable {name}: unexpected query {def}"));
            let (selector, label) = match inner.rsplit_once(',') {
                Some((s, l)) => (Some(substitute(s.trim(), &vars)), l.trim()),
                None => (None, inner.trim()),
            };
            let values = poll(&format!("{file}: values of variable {name}"), || {
                let params: Vec<(&str, &str)> =
                    selector.iter().map(|s| ("match[]", s.as_str())).collect();
                let data = api(
                    &agent,
                    &prom,
                    &format!("/api/v1/label/{label}/values"),
                    &params,
                )?;
                let values: Vec<String> = data
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect();
                if values.is_empty() {
                    Err(format!("no values for {def}"))
                } else {
                    Ok(values)
                }
            });
            if v["regex"].as_str().is_none_or(str::is_empty) {
                let chosen = match selections.get(name) {
                    Some(several) if v["multi"] == true => several.clone(),
                    _ => vec![vars[name].clone()],
                };
                for c in &chosen {
                    assert!(
                        values.contains(c),
                        "{file}: variable {name} = {c} is not among its values {values:?}"
                    );
                }
            }
        }
    }
    // History panels (a `timeFrom` of years) draw the backfilled figures over their window:
    // evaluated as Grafana does, a range query with a step of the panel's interval.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    let (start, end) = ((now - 10 * 366 * 86_400).to_string(), now.to_string());
    let mut queried = 0;
    let mut history_panels = 0;
    for (file, d) in &dashboards {
        let vars = vars_of(d);
        let mut history_vars = vars.clone();
        history_vars.insert("__interval", "1d".to_string());
        for p in panels(d) {
            let title = p["title"].as_str().unwrap_or_default();
            let history = p["timeFrom"].as_str().is_some();
            if history {
                assert_eq!(p["timeFrom"], "10y", "{file}: {title:?}");
                assert_eq!(p["interval"], "1d", "{file}: {title:?}");
                history_panels += 1;
            }
            for t in p["targets"].as_array().into_iter().flatten() {
                let Some(expr) = t["expr"].as_str() else {
                    continue;
                };
                if !history {
                    let expr = substitute(expr, &vars);
                    poll(&format!("{file}: panel {title:?}: {expr}"), || {
                        let r = query(&agent, &prom, &expr)?;
                        if r.is_empty() {
                            Err("empty result".to_string())
                        } else {
                            Ok(())
                        }
                    });
                    queried += 1;
                    continue;
                }
                let expr = substitute(expr, &history_vars);
                let data = api(
                    &agent,
                    &prom,
                    "/api/v1/query_range",
                    &[
                        ("query", &expr),
                        ("start", &start),
                        ("end", &end),
                        ("step", "86400"),
                    ],
                )
                .unwrap_or_else(|e| panic!("{file}: panel {title:?}: {e}"));
                let series = data["result"].as_array().expect("a matrix");
                assert!(!series.is_empty(), "{file}: {title:?}: {expr}: no series");
                for s in series {
                    // One series per label set over the years: the figures, and only those.
                    let values: Vec<f64> = s["values"]
                        .as_array()
                        .expect("values")
                        .iter()
                        .map(|v| v[1].as_str().expect("value").parse().expect("a number"))
                        .collect();
                    assert!(
                        values.iter().all(|v| published.contains(v)),
                        "{file}: {title:?}: {expr}: a value that is not a published figure: {values:?}"
                    );
                    let mut distinct = values.clone();
                    distinct.dedup();
                    assert!(
                        distinct.len() >= 2,
                        "{file}: {title:?}: {expr}: {} is not a history: {values:?}",
                        s["metric"]
                    );
                }
                queried += 1;
            }
        }
    }
    assert!(queried >= 40, "only {queried} dashboard queries found");
    assert!(history_panels >= 3, "only {history_panels} history panels");

    // The health dashboard's catalogue panels show each selected dataset and the remote source:
    // one row per dataset (or source), whatever the query, so the table's merge lines them up.
    let (_, health) = dashboards
        .iter()
        .find(|(f, _)| f == "indicator-exporter-health.json")
        .expect("health dashboard");
    let vars = vars_of(health);
    let both: BTreeSet<String> = selections["dataset"].iter().cloned().collect();
    let label_set = |r: &[Value], label: &str| -> BTreeSet<String> {
        r.iter()
            .filter_map(|s| s["metric"][label].as_str().map(String::from))
            .collect()
    };
    for (title, label, want) in [
        ("Datasets", "dataset", both.clone()),
        ("Remote sources", "source", BTreeSet::from([url.clone()])),
        (
            "Fetch failures by reason",
            "reason",
            BTreeSet::from(["http_status".to_string()]),
        ),
    ] {
        let p = panels(health)
            .into_iter()
            .find(|p| p["title"] == title)
            .unwrap_or_else(|| panic!("health dashboard: no panel {title:?}"));
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = substitute(t["expr"].as_str().expect("expr"), &vars);
            let r = query(&agent, &prom, &expr).unwrap();
            assert_eq!(label_set(&r, label), want, "{title:?}: {expr}: {r:?}");
            assert_eq!(
                r.len(),
                want.len(),
                "{title:?}: {expr}: one row each: {r:?}"
            );
        }
    }
}

/// The alerts fire on real data: a reload that revises a published figure and publishes a new
/// (lower) year, then a reload rejected for a broken main config file, then one rejected for a
/// broken dataset file. Uses a catalogue naming a copy of the bundled configuration.
#[test]
fn alerts_fire_on_revision_new_year_and_failed_reload() {
    require_tool("prometheus");
    require_tool("promtool");
    let tmp = tempfile::tempdir().expect("temporary directory");
    let config = tmp.path().join("config.toml");
    let original = std::fs::read_to_string(CONFIG).expect("read config.toml");
    std::fs::write(&config, &original).expect("copy config.toml");
    let main = tmp.path().join("catalog.toml");
    let catalogue = "[catalog]\ndatasets = [\"config.toml\"]\n";
    std::fs::write(&main, catalogue).expect("write catalog.toml");
    let exporter = Exporter::start(&[
        "--config.file",
        main.to_str().unwrap(),
        "--web.enable-lifecycle",
    ]);
    let target = exporter.addr().to_string();
    let prom_dir = tmp.path().join("prometheus");
    std::fs::create_dir(&prom_dir).expect("mkdir");
    let (_prometheus, prom) = start_prometheus(&prom_dir, &target);
    let agent = agent();
    let prom_log = prom_dir.join("prometheus.log");
    let with_log = |e: String| {
        format!(
            "{e}\n--- prometheus log ---\n{}",
            std::fs::read_to_string(&prom_log).unwrap_or_default()
        )
    };
    wait_target_up(&agent, &prom, &with_log);
    // Let Prometheus record the counters at zero before they move.
    poll("the change counters to be scraped", || {
        let r = query(
            &agent,
            &prom,
            "count_over_time(indicator_exporter_series_revisions_total[1m]) >= 2",
        )?;
        if r.is_empty() {
            Err("fewer than two samples".into())
        } else {
            Ok(())
        }
    });
    assert!(alerts(&agent, &prom)
        .unwrap()
        .iter()
        .all(|a| a["labels"]["alertname"] != "IndicatorFigureRevised"));

    // 2025: 54 % is published with a decimal (54.2 %), and 2026 comes out lower, at 53 %.
    let old = r#"year = "2025" }, value = 54, source = "S2""#;
    assert!(
        original.contains(old),
        "config.toml no longer has the 2025 figure"
    );
    let revised = original.replace(old, r#"year = "2025" }, value = 54.2, source = "S2""#);
    let mut lines: Vec<&str> = revised.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains(r#"year = "2025" }, value = 54.2"#))
        .expect("revised line");
    let new_year = r#"  { labels = { size = "all", sector = "all", year = "2026" }, value = 53, source = "S2" },"#;
    lines.insert(at + 1, new_year);
    replace_file(&config, &(lines.join("\n") + "\n"));
    reload(&agent, &target).expect("reload with the revised figure and the new year");

    let metric = "cnipa_enterprise_invention_patent_industrialization_ratio";
    let a = wait_alert(
        &agent,
        &prom,
        "IndicatorFigureRevised",
        &[("metric", metric)],
        "firing",
    );
    assert_eq!(a["labels"]["severity"], "warning");
    assert!(a["annotations"]["description"]
        .as_str()
        .is_some_and(|d| d.contains(metric)));
    let a = wait_alert(
        &agent,
        &prom,
        "IndicatorSeriesAdded",
        &[("metric", metric)],
        "firing",
    );
    assert_eq!(a["labels"]["severity"], "info");
    // The enterprise rate fell by 1.2 points: pending for its 5 minutes, labelled with the metric.
    let a = wait_alert(
        &agent,
        &prom,
        "IndicatorRateFell",
        &[
            (
                "metric",
                "cnipa_enterprise_invention_patent_industrialization_change_ratio",
            ),
            ("size", "all"),
            ("sector", "all"),
        ],
        "pending",
    );
    assert_eq!(
        a["value"].as_str().and_then(|v| v.parse::<f64>().ok()),
        Some(-0.012)
    );
    // The awaited year moved on to 2027.
    let r = query(
        &agent,
        &prom,
        r#"cnipa_next_release_overdue_timestamp_seconds{year="2027"}"#,
    )
    .unwrap();
    assert_eq!(r.len(), 1, "{r:?}");

    // A broken main config file is rejected; the exporter keeps serving, the reload alert pends.
    // No dataset failed to load.
    replace_file(&main, "this is not a configuration [\n");
    assert!(
        reload(&agent, &target).is_err(),
        "a broken config must be rejected"
    );
    let a = wait_alert(
        &agent,
        &prom,
        "IndicatorDatasetReloadFailed",
        &[],
        "pending",
    );
    assert_eq!(a["labels"]["instance"], target.as_str());
    assert!(alerts(&agent, &prom)
        .unwrap()
        .iter()
        .all(|a| a["labels"]["alertname"] != "IndicatorDatasetLoadFailed"));

    // The main file is fixed and the dataset file broken: the dataset alert pends, naming it, with
    // the time of the version still served; the configuration alert gives way to it.
    replace_file(&main, catalogue);
    replace_file(&config, "this is not a dataset [\n");
    assert!(
        reload(&agent, &target).is_err(),
        "a broken dataset must be rejected"
    );
    let a = wait_alert(
        &agent,
        &prom,
        "IndicatorDatasetLoadFailed",
        &[("dataset", "cnipa_patent_survey")],
        "pending",
    );
    assert_eq!(a["labels"]["instance"], target.as_str());
    assert_eq!(a["labels"]["severity"], "warning");
    let loaded_at: f64 = a["value"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .expect("a timestamp value");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64();
    assert!(
        loaded_at > now - 600.0 && loaded_at < now,
        "the last good load was at {loaded_at}, now is {now}"
    );
    poll(
        "IndicatorDatasetReloadFailed to give way",
        || match alerts(&agent, &prom)?
            .iter()
            .find(|a| a["labels"]["alertname"] == "IndicatorDatasetReloadFailed")
        {
            Some(a) => Err(format!("{a}")),
            None => Ok(()),
        },
    );
    let r = query(
        &agent,
        &prom,
        r#"cnipa_enterprise_invention_patent_industrialization_ratio{year="2026"}"#,
    )
    .unwrap();
    assert_eq!(r.len(), 1, "the last good dataset is still served: {r:?}");
    wait_target_up(&agent, &prom, &with_log);
}

/// Every example dataset of examples/formats (one per publisher format), served at once and
/// scraped over OpenMetrics by one real Prometheus: `promtool check metrics` is clean on each
/// exposition, and every sample arrives with its exact value.
#[test]
fn every_publisher_format_is_scraped_intact() {
    require_tool("prometheus");
    require_tool("promtool");
    let mut examples: Vec<PathBuf> = std::fs::read_dir(format!("{ROOT}/examples/formats"))
        .expect("examples/formats")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    examples.sort();
    assert!(examples.len() >= 10, "{examples:?}");
    let agent = agent();
    let mut exporters = Vec::new();
    let mut jobs = String::new();
    for (i, config) in examples.iter().enumerate() {
        let guard = Exporter::start(&["--config.file", config.to_str().unwrap()]);
        let target = guard.addr().to_string();
        let body = get(&agent, &format!("http://{target}/metrics"), &[]).expect("scrape");
        if let Err(report) = common::promtool_check_metrics(&body) {
            panic!("{}: promtool check metrics: {report}", config.display());
        }
        jobs.push_str(&format!(
            "  - job_name: ex{i}\n    static_configs:\n      - targets: ['{target}']\n"
        ));
        exporters.push((guard, format!("ex{i}"), body, config.clone()));
    }
    let tmp = tempfile::tempdir().expect("temporary directory");
    let config_path = tmp.path().join("prometheus.yml");
    std::fs::write(
        &config_path,
        format!("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n{jobs}"),
    )
    .expect("write prometheus.yml");
    let port = free_port();
    let child = Command::new(require_tool("prometheus"))
        .arg(format!("--config.file={}", config_path.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            tmp.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    let _prometheus = Guard {
        name: "prometheus",
        child,
    };
    let prom = format!("http://127.0.0.1:{port}");
    for (_, job, body, config) in &exporters {
        // The dataset's own samples (not the exporter's, which change between scrapes).
        let want: BTreeMap<SampleKey, f64> = parse(body)
            .samples
            .iter()
            .map(|s| (s.key(), s.value))
            .filter(|((name, _), _)| {
                !name.starts_with("indicator_exporter_") && !name.starts_with("process_")
            })
            .map(|((name, mut labels), v)| {
                labels.insert("job".into(), job.clone());
                ((name, labels), v)
            })
            .collect();
        let expr = format!(
            "{{job=\"{job}\",__name__!~\"indicator_exporter_.*|process_.*|up|scrape_.*\"}}"
        );
        let got: BTreeMap<SampleKey, f64> =
            poll(&format!("{} in Prometheus", config.display()), || {
                let result = query(&agent, &prom, &expr)?;
                let got: BTreeMap<SampleKey, f64> = result
                    .iter()
                    .map(|s| {
                        let mut labels: BTreeMap<String, String> = s["metric"]
                            .as_object()
                            .map(|m| {
                                m.iter()
                                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                                    .collect()
                            })
                            .unwrap_or_default();
                        let name = labels.remove("__name__").unwrap_or_default();
                        labels.remove("instance");
                        ((name, labels), prom_value(s))
                    })
                    .collect();
                if got.len() == want.len() {
                    Ok(got)
                } else {
                    Err(format!("{} of {} samples", got.len(), want.len()))
                }
            });
        for (key, v) in &want {
            let g = got
                .get(key)
                .unwrap_or_else(|| panic!("{}: {key:?} not in Prometheus", config.display()));
            assert!(
                g.to_bits() == v.to_bits() || (g.is_nan() && v.is_nan()),
                "{}: {key:?}: served {v}, Prometheus has {g}",
                config.display()
            );
        }
    }
}
