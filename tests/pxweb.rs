//! PxWeb API sources against the real binary: a loopback server plays a PxWeb service (API v1
//! and PxWebApi 2) serving Statistics Sweden's CPI table PR0101B3 (the real figures of the
//! PC-Axis fixture), with the limits the test sets. A query over the service's cell limit is
//! split into as few requests as it needs, the calls-per-window limit is kept, and what is
//! served is what one unlimited request gives.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use serde_json::{json, Map, Value};

use common::exporter::run;
use common::exposition::{parse, Exposition};
use common::loopback::Loopback;
use common::{poll_until_ok, repo, Exporter};

const DEADLINE: Duration = Duration::from_secs(30);
const FIXTURE: &str = "tests/fixtures/publishers/pcaxis/scb_PR0101B3_cpi_monthly.px";
/// Where the PxWeb example says the service is; the test puts its own server there.
const README_HOST: &str = "https://pxweb.example.org";
const V1_TABLE: &str = "/api/v1/en/Example/Month/PR0101B3";
const V2_TABLE: &str = "/api/v2/tables/PR0101B3";

/// A variable of the table: its code, value codes and value texts.
struct Variable {
    code: &'static str,
    values: Vec<String>,
    texts: Vec<String>,
    time: bool,
}

/// The table as PxWeb serves a PC-Axis file: variables named as the file names them, values
/// by their CODES (else VALUES), the cells row-major.
struct Table {
    variables: Vec<Variable>,
    cells: Vec<String>,
}

/// The quoted strings of `KEY=…;` in the PC-Axis text.
fn px_list(text: &str, key: &str) -> Vec<String> {
    let start = text
        .find(key)
        .unwrap_or_else(|| panic!("{key} in the fixture"))
        + key.len();
    let end = start + text[start..].find(';').expect("the end of the record");
    text[start..end]
        .split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

fn table() -> Table {
    let bytes = std::fs::read(repo(FIXTURE)).expect("the SCB fixture");
    let text = String::from_utf8_lossy(&bytes);
    let months = px_list(&text, "VALUES(\"period\")=");
    let variables = vec![
        Variable {
            code: "Product group",
            values: px_list(&text, "CODES(\"Product group\")="),
            texts: px_list(&text, "VALUES(\"Product group\")="),
            time: false,
        },
        Variable {
            code: "period",
            values: months.clone(),
            texts: months,
            time: true,
        },
    ];
    let data = &text[text.find("DATA=").expect("DATA") + 5..];
    let cells: Vec<String> = data
        .split_whitespace()
        .map(|c| c.trim_end_matches(';').to_string())
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(cells.len(), 12 * 27, "the fixture's cells");
    Table { variables, cells }
}

/// A table of `groups` product groups by `months` months, the size a national office's
/// regional tables reach, shaped as [`table`]: codes `G001`…, months from 2000M01, each cell
/// a value of its own.
fn large_table(groups: usize, months: usize) -> Table {
    let codes: Vec<String> = (1..=groups).map(|g| format!("G{g:03}")).collect();
    let periods: Vec<String> = (0..months)
        .map(|m| format!("{}M{:02}", 2000 + m / 12, m % 12 + 1))
        .collect();
    let cells = (0..groups * months)
        .map(|i| format!("{}.{:02}", 100 + i / months, i % months))
        .collect();
    Table {
        variables: vec![
            Variable {
                code: "Product group",
                texts: codes.iter().map(|c| format!("Group {c}")).collect(),
                values: codes,
                time: false,
            },
            Variable {
                code: "period",
                values: periods.clone(),
                texts: periods,
                time: true,
            },
        ],
        cells,
    }
}

/// What the service allows, and what it saw.
#[derive(Default)]
struct State {
    max_cells: usize,
    max_calls: usize,
    window: Duration,
    /// Data requests answered (200).
    data_requests: usize,
    /// When each call came.
    calls: Vec<Instant>,
    /// Calls that came over `max_calls` in a window.
    over_limit: usize,
    /// Answer the next data request 429 with this Retry-After (seconds).
    too_many_once: Option<u64>,
    /// Data requests answered 429.
    refused: usize,
    /// A cell (by its position in the table) served with another value, as a revision.
    revised: Option<(usize, String)>,
    /// A value code the metadata no longer lists, as a table changed by its publisher.
    withdrawn: Option<String>,
}

/// A loopback PxWeb service, stopped on drop.
struct Service {
    server: Loopback,
    state: Arc<Mutex<State>>,
}

impl Service {
    fn start(max_cells: usize, max_calls: usize, window: Duration) -> Service {
        Service::serving(table(), max_cells, max_calls, window)
    }

    fn serving(table: Table, max_cells: usize, max_calls: usize, window: Duration) -> Service {
        let state = Arc::new(Mutex::new(State {
            max_cells,
            max_calls,
            window,
            ..State::default()
        }));
        let s = state.clone();
        let server = Loopback::start(move |req| {
            let (parts, body) = req.into_parts();
            let reply = answer(&s, &table, &parts, &body);
            async move { reply }
        });
        Service { server, state }
    }

    fn base(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }
}

fn reply(status: u16, body: String) -> http::Response<Full<Bytes>> {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=utf-8")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

/// Counts a call against the window; the service's own check is a little lenient (200 ms)
/// for the time a request spends on the way.
fn count_call(s: &mut State) {
    let now = Instant::now();
    let window = s.window.saturating_sub(Duration::from_millis(200));
    let recent = s.calls.iter().filter(|t| now - **t < window).count();
    if recent >= s.max_calls {
        s.over_limit += 1;
    }
    s.calls.push(now);
}

fn answer(
    state: &Mutex<State>,
    t: &Table,
    req: &http::request::Parts,
    body: &[u8],
) -> http::Response<Full<Bytes>> {
    let mut s = state.lock().unwrap();
    count_call(&mut s);
    let path = req.uri.path();
    let query = req.uri.query().unwrap_or("");
    match (req.method.as_str(), path) {
        ("GET", "/api/v1/en/") if query == "config" => reply(
            200,
            json!({"maxValues": s.max_cells, "maxCalls": s.max_calls, "timeWindow": s.window.as_secs(), "CORS": true}).to_string(),
        ),
        ("GET", "/api/v2/config") => reply(
            200,
            json!({"apiVersion": "2.0.0", "maxDataCells": s.max_cells, "maxCallsPerTimeWindow": s.max_calls, "timeWindow": s.window.as_secs()}).to_string(),
        ),
        ("GET", V1_TABLE) => reply(200, v1_metadata(t, s.withdrawn.as_deref())),
        ("GET", p) if p == format!("{V2_TABLE}/metadata") => {
            let all: Vec<Vec<usize>> = t.variables.iter().map(|v| (0..v.values.len()).collect()).collect();
            reply(200, dataset(t, &all, None))
        }
        ("POST", V1_TABLE) => {
            let q: Value = serde_json::from_slice(body).expect("a JSON query");
            assert_eq!(q["response"]["format"], "json-stat2");
            let selections = t
                .variables
                .iter()
                .map(|v| {
                    let item = q["query"].as_array().unwrap().iter().find(|i| i["code"] == v.code);
                    let Some(sel) = item.map(|i| &i["selection"]) else {
                        return (0..1).collect();
                    };
                    let values: Vec<&str> = sel["values"].as_array().unwrap().iter().map(|x| x.as_str().unwrap()).collect();
                    pick(v, sel["filter"].as_str().unwrap(), &values)
                })
                .collect();
            data(&mut s, t, selections)
        }
        ("GET", p) if p == format!("{V2_TABLE}/data") => {
            let pairs: Vec<(String, String)> = reqwest::Url::parse(&format!("http://x/?{query}"))
                .unwrap()
                .query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            assert!(pairs.contains(&("outputFormat".into(), "json-stat2".into())), "{pairs:?}");
            let selections = t
                .variables
                .iter()
                .map(|v| {
                    let key = format!("valueCodes[{}]", v.code);
                    let Some((_, codes)) = pairs.iter().find(|(k, _)| *k == key) else {
                        return (0..1).collect();
                    };
                    match codes.as_str() {
                        "*" => pick(v, "all", &[]),
                        c if c.starts_with("top(") => {
                            pick(v, "top", &[c.trim_start_matches("top(").trim_end_matches(')')])
                        }
                        c => pick(v, "item", &c.split(',').collect::<Vec<_>>()),
                    }
                })
                .collect();
            data(&mut s, t, selections)
        }
        _ => reply(404, format!("{{\"error\":\"no {path}\"}}")),
    }
}

/// The positions of the values a selection picks, in table order; `top` the latest periods.
fn pick(v: &Variable, filter: &str, values: &[&str]) -> Vec<usize> {
    let n = v.values.len();
    match filter {
        "all" => (0..n).collect(),
        "top" => {
            let k: usize = values[0].parse().unwrap();
            (n - k.min(n)..n).collect()
        }
        _ => (0..n)
            .filter(|i| values.contains(&v.values[*i].as_str()))
            .collect(),
    }
}

/// A data request: refused over the cell limit (as PxWeb does, 403) or once with 429 when the
/// test asks, else answered in JSON-stat 2.
fn data(s: &mut State, t: &Table, selections: Vec<Vec<usize>>) -> http::Response<Full<Bytes>> {
    let cells: usize = selections.iter().map(Vec::len).product();
    if cells > s.max_cells {
        return reply(403, "{\"error\":\"too many cells\"}".into());
    }
    if let Some(secs) = s.too_many_once.take() {
        s.refused += 1;
        let mut r = reply(429, String::new());
        r.headers_mut()
            .insert("retry-after", secs.to_string().parse().unwrap());
        return r;
    }
    s.data_requests += 1;
    reply(200, dataset(t, &selections, Some(&s.revised)))
}

fn v1_metadata(t: &Table, withdrawn: Option<&str>) -> String {
    let variables: Vec<Value> = t
        .variables
        .iter()
        .map(|v| {
            let values: Vec<&String> = v
                .values
                .iter()
                .filter(|c| Some(c.as_str()) != withdrawn)
                .collect();
            json!({"code": v.code, "text": v.code, "values": values, "valueTexts": v.texts,
                   "elimination": false, "time": v.time})
        })
        .collect();
    json!({"title": "Consumer Price Index (CPI) (by COICOP), 1980=100", "variables": variables})
        .to_string()
}

/// A JSON-stat 2 dataset of the selected positions per variable; with values when `values`
/// is given (it says which cell is revised, if one is).
fn dataset(
    t: &Table,
    selections: &[Vec<usize>],
    values: Option<&Option<(usize, String)>>,
) -> String {
    let mut dimension = Map::new();
    for (v, sel) in t.variables.iter().zip(selections) {
        let index: Map<String, Value> = sel
            .iter()
            .enumerate()
            .map(|(i, &p)| (v.values[p].clone(), Value::from(i)))
            .collect();
        let label: Map<String, Value> = sel
            .iter()
            .map(|&p| (v.values[p].clone(), Value::from(v.texts[p].clone())))
            .collect();
        dimension.insert(
            v.code.into(),
            json!({"label": v.code, "category": {"index": index, "label": label}}),
        );
    }
    let mut doc = json!({
        "version": "2.0", "class": "dataset",
        "label": "Consumer Price Index (CPI) (by COICOP), 1980=100 by Product group and period",
        "source": "Statistics Sweden", "updated": "2009-07-08T12:44:00Z",
        "id": t.variables.iter().map(|v| v.code).collect::<Vec<_>>(),
        "size": selections.iter().map(Vec::len).collect::<Vec<_>>(),
        "role": {"time": ["period"]},
        "dimension": dimension,
    });
    if let Some(revised) = values {
        let width = t.variables[1].values.len();
        let mut cells = Vec::new();
        for &g in &selections[0] {
            for &m in &selections[1] {
                let at = g * width + m;
                let cell = match revised {
                    Some((r, v)) if *r == at => v,
                    _ => &t.cells[at],
                };
                cells.push(serde_json::from_str::<Value>(cell).unwrap_or(Value::Null));
            }
        }
        doc["value"] = Value::Array(cells);
    }
    doc.to_string()
}

/// The PxWeb example of docs/remote-sources.md, its service moved to `base`.
fn docs_example(base: &str) -> String {
    let example = std::fs::read_to_string(repo(EXAMPLE)).expect(EXAMPLE);
    let page = common::docs::page("docs/remote-sources.md");
    let section = common::docs::section(&page, "## PxWeb API (Statistics Sweden)")
        .expect("the PxWeb section");
    assert!(
        section.contains(&format!(
            "<!-- file: {EXAMPLE} -->\n```toml\n{example}```\n"
        )),
        "the PxWeb section shows {EXAMPLE} as it is"
    );
    example.replace(README_HOST, base)
}

/// The PxWeb example config.
const EXAMPLE: &str = "examples/remote/pxweb-scb-cpi.toml";

/// The PxWeb example with these selections and api instead of its own.
fn config(dir: &Path, base: &str, api: &str, select: &str) -> PathBuf {
    let example = docs_example(base);
    let cut = example
        .find("[input.pxweb]")
        .expect("[input.pxweb] in the example");
    let table = match api {
        "v1" => format!("{base}{V1_TABLE}"),
        _ => format!("{base}{V2_TABLE}?lang=en"),
    };
    let text = format!(
        "{}[input.pxweb]\ntable = \"{table}\"\napi = \"{api}\"\n\n[input.pxweb.select]\n{select}",
        &example[..cut]
    );
    let path = dir.join(format!("pxweb-{api}.toml"));
    std::fs::write(&path, text).expect("write config");
    path
}

const ALL: &str = "\"Product group\" = \"*\"\nperiod = \"*\"\n";

/// The dataset's own series as served (not the exporter's self-metrics), sorted.
fn served(e: &Exporter, what: &str) -> Vec<String> {
    poll_until_ok(what, DEADLINE, Duration::from_millis(100), || {
        let text = e.metrics();
        let mut lines: Vec<String> = text
            .lines()
            .filter(|l| l.starts_with("scb_"))
            .map(str::to_string)
            .collect();
        lines.sort();
        if lines.iter().any(|l| l.starts_with("scb_cpi_coicop_index{")) {
            Ok(lines)
        } else {
            Err(text)
        }
    })
}

fn start(config: &Path) -> Exporter {
    Exporter::start(&["--config.file", config.to_str().unwrap()])
}

/// The served index of a product group in a month.
fn cpi(m: &Exposition, group: &str, month: &str) -> Option<f64> {
    m.value(
        "scb_cpi_coicop_index",
        &[("product_group", group), ("month", month)],
    )
}

/// Every cell of the table: 12 product groups by 27 months.
fn every_cell(lines: &[String]) -> usize {
    lines
        .iter()
        .filter(|l| l.starts_with("scb_cpi_coicop_index{"))
        .count()
}

#[test]
fn a_query_over_the_cell_limit_is_split_and_serves_what_one_request_serves() {
    let dir = tempfile::tempdir().unwrap();
    for api in ["v1", "v2"] {
        // 324 cells, 72 a request: 6 months a request, 5 requests.
        let limited = Service::start(72, 100, Duration::from_secs(10));
        let e = start(&config(dir.path(), &limited.base(), api, ALL));
        let split = served(&e, "the split query served");
        drop(e);
        assert_eq!(limited.with(|s| s.data_requests), 5, "{api}");
        let unlimited = Service::start(100_000, 100, Duration::from_secs(10));
        let e = start(&config(dir.path(), &unlimited.base(), api, ALL));
        let whole = served(&e, "the unlimited query served");
        assert_eq!(unlimited.with(|s| s.data_requests), 1, "{api}");
        assert_eq!(split, whole, "{api}");
        assert_eq!(every_cell(&whole), 12 * 27, "{api}");
        // The file's first and last cells, as Statistics Sweden published them.
        let m = parse(&e.metrics());
        assert_eq!(cpi(&m, "01", "2006-10"), Some(240.25), "{api}");
        assert_eq!(cpi(&m, "01.2", "2008-12"), Some(182.84), "{api}");
    }
}

#[test]
fn a_5000_cell_query_against_a_1000_cell_limit_is_joined_from_5_requests() {
    let dir = tempfile::tempdir().unwrap();
    for api in ["v1", "v2"] {
        let limited = Service::serving(large_table(50, 100), 1000, 100, Duration::from_secs(10));
        let e = start(&config(dir.path(), &limited.base(), api, ALL));
        let split = served(&e, "the split query served");
        drop(e);
        assert_eq!(limited.with(|s| s.data_requests), 5, "{api}");
        let unlimited =
            Service::serving(large_table(50, 100), 100_000, 100, Duration::from_secs(10));
        let e = start(&config(dir.path(), &unlimited.base(), api, ALL));
        let whole = served(&e, "the unlimited query served");
        assert_eq!(unlimited.with(|s| s.data_requests), 1, "{api}");
        assert_eq!(every_cell(&whole), 5000, "{api}");
        assert_eq!(split, whole, "{api}");
        let m = parse(&e.metrics());
        assert_eq!(cpi(&m, "G050", "2008-04"), Some(149.99), "{api}");
    }
}

#[test]
fn the_calls_per_window_limit_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    // Config, metadata and 5 data requests, 3 calls a second: at least two waits.
    let service = Service::start(72, 3, Duration::from_secs(1));
    let e = start(&config(dir.path(), &service.base(), "v1", ALL));
    served(&e, "the paced query served");
    let (calls, over, first_to_last) = service.with(|s| {
        let span = *s.calls.last().unwrap() - s.calls[0];
        (s.calls.len(), s.over_limit, span)
    });
    assert!(calls >= 7, "{calls} calls");
    assert_eq!(over, 0, "calls over the limit");
    assert!(
        first_to_last >= Duration::from_millis(1900),
        "{first_to_last:?}"
    );
}

#[test]
fn a_429_is_waited_out_as_retry_after_says() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::start(100_000, 100, Duration::from_secs(10));
    service.with(|s| s.too_many_once = Some(1));
    let e = start(&config(
        dir.path(),
        &service.base(),
        "v2",
        "period = \"top(3)\"\n\"Product group\" = [\"01\", \"01.1\"]\n",
    ));
    let lines = served(&e, "the query served after a 429");
    assert_eq!(every_cell(&lines), 6);
    assert!(
        cpi(&parse(&e.metrics()), "01.1", "2008-12").is_some(),
        "{lines:?}"
    );
    let (refused, answered, calls) =
        service.with(|s| (s.refused, s.data_requests, s.calls.clone()));
    assert_eq!((refused, answered), (1, 1));
    let last_two = calls[calls.len() - 1] - calls[calls.len() - 2];
    assert!(
        last_two >= Duration::from_millis(950),
        "retried after {last_two:?}"
    );
}

#[test]
fn an_unknown_value_is_a_positioned_error_listing_the_table_values() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::start(100_000, 100, Duration::from_secs(10));
    let path = config(
        dir.path(),
        &service.base(),
        "v1",
        "\"Product group\" = [\"01\", \"09.9\"]\nperiod = \"top(12)\"\n",
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let line = text
        .lines()
        .position(|l| l.starts_with("\"Product group\""))
        .unwrap()
        + 1;
    let out = run(&["--config.check", "--config.file", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    let want = format!(
        "{}:{line}:1: {}{V1_TABLE}: unknown value `09.9` of variable `Product group` in table {}{V1_TABLE}, expected one of `01`, `01.1`, `01.1.1`,",
        path.display(),
        service.base(),
        service.base()
    );
    assert!(stderr.contains(&want), "{want}\n{stderr}");
    assert_eq!(service.with(|s| s.data_requests), 0);
}

#[test]
fn the_docs_example_serves_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::start(100_000, 100, Duration::from_secs(10));
    let path = dir.path().join("example.toml");
    std::fs::write(&path, docs_example(&service.base())).unwrap();
    let e = start(&path);
    let lines = served(&e, "the docs example served");
    // Its selection: three product groups, the latest 12 months.
    assert_eq!(every_cell(&lines), 3 * 12, "{lines:?}");
    let m = parse(&e.metrics());
    assert!(cpi(&m, "01.1.1", "2008-01").is_some(), "{lines:?}");
    assert!(cpi(&m, "01.1.1", "2007-12").is_none(), "{lines:?}");
}

#[test]
fn a_refresh_serves_revisions_and_a_query_the_table_no_longer_fits_keeps_the_last_good_data() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::start(100_000, 100, Duration::from_secs(10));
    let select = "\"Product group\" = [\"01\", \"01.1.1\"]\nperiod = \"top(2)\"\n";
    let path = config(dir.path(), &service.base(), "v1", select);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("refresh = \"1d\"", "refresh = \"1s\"")).unwrap();
    let e = start(&path);
    assert_eq!(every_cell(&served(&e, "the query served")), 4);
    assert_eq!(cpi(&parse(&e.metrics()), "01", "2008-12"), Some(266.36));
    // Group "01", December 2008: the 27th cell of the table.
    service.with(|s| s.revised = Some((26, "266.5".into())));
    poll_until_ok(
        "the revision served",
        DEADLINE,
        Duration::from_millis(100),
        || {
            let m = parse(&e.metrics());
            (cpi(&m, "01", "2008-12") == Some(266.5))
                .then_some(())
                .ok_or_else(|| e.metrics())
        },
    );
    service.with(|s| s.withdrawn = Some("01.1.1".into()));
    let source = format!("{}{V1_TABLE}#pxweb-v1:", service.base());
    let failures = |m: &Exposition| {
        m.samples
            .iter()
            .find(|s| {
                s.name == "indicator_exporter_source_failures_total"
                    && s.label("reason") == Some("query")
                    && s.label("source").is_some_and(|u| u.starts_with(&source))
            })
            .map_or(0.0, |s| s.value)
    };
    let m = poll_until_ok(
        "the failed query counted",
        DEADLINE,
        Duration::from_millis(100),
        || {
            let m = parse(&e.metrics());
            if failures(&m) >= 1.0 {
                Ok(m)
            } else {
                Err(e.metrics())
            }
        },
    );
    assert_eq!(cpi(&m, "01", "2008-12"), Some(266.5), "the last good data");
    assert_eq!(cpi(&m, "01.1.1", "2008-12"), Some(284.69));
    let log = e.stderr();
    assert!(
        log.contains("unknown value `01.1.1` of variable `Product group`"),
        "{log}"
    );
}
