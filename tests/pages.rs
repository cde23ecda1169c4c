//! The HTML pages as a browser renders them: the real binary serves them, headless Chromium
//! (Debian `chromium`) loads them at 1280 and 400 pixels wide. The text shown is checked
//! against `/metrics` from the same server, the layout against the viewport (nothing wider than
//! 400 pixels), and screenshots go to `target/screenshots/` for a person to look at.
//!
//! Chromium reaches nothing but 127.0.0.1 and is killed with its whole process group after
//! each use, within a deadline.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::ErrorKind;
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::e2e;
use common::exposition::{parse, Sample};
use common::{require_tool, Exporter};
use indicator_exporter::dataset::calendar::Period;
use indicator_exporter::dataset::{Dataset, Metric};
use serde_json::{json, Value};
use tungstenite::{Message, WebSocket};

/// How long Chromium may take for any one step (start, load, screenshot, exit).
const DEADLINE: Duration = Duration::from_secs(60);
const WIDTHS: [u32; 2] = [1280, 400];

fn chromium() -> String {
    require_tool("chromium").display().to_string()
}

/// Flags of every Chromium run: headless, no sandbox (tests may run as root), and no traffic
/// beyond the loopback interface (no updates, no sync, no name resolution of other hosts).
fn command(profile: &Path, width: u32, height: u32) -> Command {
    let mut c = Command::new(chromium());
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--disable-default-apps",
        "--no-first-run",
        "--no-default-browser-check",
        "--no-proxy-server",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--force-device-scale-factor=1",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .arg(format!("--window-size={width},{height}"))
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    // Its own process group, so that the browser and every helper it starts die together.
    .process_group(0);
    c
}

/// A Chromium process group, killed (SIGKILL to the group) and reaped on drop; the drop waits,
/// within a deadline, until no process of the group is left.
struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn spawn(mut command: Command, profile: tempfile::TempDir) -> Browser {
        let child = command.spawn().expect("start chromium");
        Browser {
            child,
            _profile: profile,
        }
    }

    fn group(&self) -> i32 {
        self.child.id() as i32
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let group = self.group();
        // SAFETY: kill(2) with a negative pid signals the process group Chromium leads; it has
        // no memory effects in this process.
        unsafe {
            libc::kill(-group, libc::SIGKILL);
        }
        let _ = self.child.wait();
        // No panic in a drop: a group that outlives the deadline is only reported.
        if common::poll(Duration::from_secs(10), || {
            (!group_alive(group)).then_some(())
        })
        .is_none()
        {
            eprintln!("chromium process group {group} still has processes");
        }
    }
}

/// Whether any process (zombies aside) is in process group `group`.
fn group_alive(group: i32) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    dir.filter_map(Result::ok).any(|e| {
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        // pid (comm) state ppid pgrp ...: comm may hold spaces, so split after its `)`.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
        fields.len() > 2 && fields[0] != "Z" && fields[2] == group.to_string()
    })
}

/// The directory screenshots are written to: `screenshots/` in the target directory.
fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("screenshots");
    std::fs::create_dir_all(&dir).expect("create target/screenshots");
    dir
}

/// A page in headless Chromium, driven over the DevTools protocol.
struct Tab {
    ws: WebSocket<TcpStream>,
    next_id: u64,
    width: u32,
    // Dropped last: the browser outlives the connection to it.
    _browser: Browser,
}

impl Tab {
    fn open(width: u32, height: u32) -> Tab {
        let profile = tempfile::tempdir().expect("profile dir");
        let port_file = profile.path().join("DevToolsActivePort");
        let mut c = command(profile.path(), width, height);
        c.arg("--remote-debugging-port=0").arg("about:blank");
        let mut browser = Browser::spawn(c, profile);
        let port = e2e::poll("chromium's DevToolsActivePort file", || {
            if let Some(status) = browser.child.try_wait().expect("chromium status") {
                panic!("chromium exited at start: {status}");
            }
            std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|t| t.lines().next()?.trim().parse::<u16>().ok())
                .ok_or_else(|| "not written yet".to_string())
        });
        let agent = e2e::agent();
        let ws_url = e2e::poll("chromium's page target", || {
            let list = e2e::get(&agent, &format!("http://127.0.0.1:{port}/json/list"), &[])?;
            let targets: Vec<Value> = serde_json::from_str(&list).map_err(|e| e.to_string())?;
            targets
                .iter()
                .find(|t| t["type"] == "page")
                .and_then(|t| t["webSocketDebuggerUrl"].as_str().map(str::to_string))
                .ok_or_else(|| format!("no page target in {list}"))
        });
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to chromium");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("read timeout");
        stream
            .set_write_timeout(Some(DEADLINE))
            .expect("write timeout");
        let (ws, _) = tungstenite::client(ws_url.as_str(), stream).expect("DevTools websocket");
        let mut tab = Tab {
            ws,
            next_id: 0,
            width,
            _browser: browser,
        };
        tab.resize(height);
        tab
    }

    /// Sets the viewport: headless Chromium makes no window narrower than 500 pixels, and
    /// `--screenshot` crops such a window instead of laying the page out narrower.
    fn resize(&mut self, height: u32) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": self.width, "height": height, "deviceScaleFactor": 1, "mobile": false }),
        );
    }

    /// A PNG of the whole page, `self.width` wide, into `target/screenshots/NAME-WIDTH.png`.
    fn screenshot(&mut self, height: u32, name: &str) -> PathBuf {
        self.resize(height);
        let r = self.call("Page.captureScreenshot", json!({ "format": "png" }));
        self.resize(900);
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().expect("screenshot data"))
            .expect("base64 PNG");
        let file = screenshot_dir().join(format!("{name}-{}.png", self.width));
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{name}: not a PNG");
        assert_eq!(&png[12..16], b"IHDR", "{name}: no IHDR first");
        let w = u32::from_be_bytes(png[16..20].try_into().expect("4 bytes"));
        let h = u32::from_be_bytes(png[20..24].try_into().expect("4 bytes"));
        assert_eq!((w, h), (self.width, height), "{name}: PNG size");
        std::fs::write(&file, png).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        eprintln!("screenshot: {}", file.display());
        file
    }

    /// Sends one DevTools command and returns its result, skipping events.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let msg = json!({ "id": id, "method": method, "params": params });
        self.ws
            .send(Message::text(msg.to_string()))
            .unwrap_or_else(|e| panic!("send {method}: {e}"));
        let end = Instant::now() + DEADLINE;
        loop {
            assert!(
                Instant::now() < end,
                "no answer to {method} in {DEADLINE:?}"
            );
            let text = match self.ws.read() {
                Ok(Message::Text(t)) => t,
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    continue
                }
                Err(e) => panic!("DevTools connection, waiting for {method}: {e}"),
            };
            let v: Value = serde_json::from_str(text.as_str()).expect("DevTools JSON");
            if v["id"] == id {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    /// The value of a JavaScript expression (made JSON-serializable by the caller).
    fn eval(&mut self, expression: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true }),
        );
        assert!(
            r.get("exceptionDetails").is_none(),
            "{expression}: {}",
            r["exceptionDetails"]
        );
        r["result"]["value"].clone()
    }

    /// Loads `url` and waits until the document is complete.
    fn goto(&mut self, url: &str) {
        let r = self.call("Page.navigate", json!({ "url": url }));
        assert!(r.get("errorText").is_none(), "{url}: {r}");
        let check = format!(
            "document.readyState === 'complete' && location.href === {}",
            json!(url)
        );
        e2e::poll(&format!("{url} to load"), || {
            if self.eval(&check) == json!(true) {
                Ok(())
            } else {
                Err("loading".into())
            }
        });
    }

    /// Width of the viewport and of the document, the height of the document, and the text.
    fn layout(&mut self) -> Layout {
        let v = self.eval(
            "({ viewport: window.innerWidth, width: document.documentElement.scrollWidth, \
               height: document.documentElement.scrollHeight, text: document.body.innerText })",
        );
        Layout {
            viewport: v["viewport"].as_u64().expect("innerWidth") as u32,
            width: v["width"].as_u64().expect("scrollWidth") as u32,
            height: v["height"].as_u64().expect("scrollHeight") as u32,
            text: v["text"].as_str().expect("innerText").to_string(),
        }
    }
}

#[derive(Debug)]
struct Layout {
    viewport: u32,
    width: u32,
    height: u32,
    text: String,
}

/// Loads `url`, checks that the page fits the viewport `width` wide, takes a screenshot of
/// all of it, and returns its layout.
fn show(tab: &mut Tab, url: &str, width: u32, name: &str) -> Layout {
    tab.goto(url);
    let l = tab.layout();
    assert_eq!(l.viewport, width, "{url}: viewport width");
    if l.width > width {
        let wide = tab.eval(&format!(
            "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > {width}) \
               .slice(0, 10).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right) + ': ' + e.textContent.slice(0, 60))"
        ));
        panic!(
            "{url} at {width} px: the document is {} px wide; elements past the edge: {wide:#}",
            l.width
        );
    }
    tab.screenshot(l.height.clamp(300, 16_000), name);
    l
}

/// Labels as the exposition writes them, in name order, leaving `skip` out.
fn labels_text(labels: &[(String, String)], skip: &str) -> String {
    let labels: BTreeMap<&String, &String> = labels.iter().map(|(k, v)| (k, v)).collect();
    labels
        .into_iter()
        .filter(|(k, _)| *k != skip)
        .map(|(k, v)| {
            let v = v
                .replace('\\', "\\\\")
                .replace('\n', "\\n")
                .replace('"', "\\\"");
            format!("{k}=\"{v}\"")
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// What a metric's section of a dataset page shows, read from the rendered DOM.
const ROWS_JS: &str = "[...document.querySelectorAll('section.metric')].map(s => ({
  metric: s.dataset.metric,
  more: s.innerText.match(/and (\\d+) more label sets?, not shown/)?.[1] ?? null,
  rows: [...s.querySelectorAll('tr[data-labels]')].map(r => ({
    labels: r.dataset.labels,
    period: r.querySelector('td.period .p').innerText,
    latest: r.querySelector('td.latest .v').innerText,
    change: r.querySelector('td.change .v')?.innerText ?? null,
    yoy: r.querySelector('td.change .yoy')?.innerText ?? null,
    points: Number(r.querySelector('svg')?.dataset.points ?? 0),
    dots: r.querySelectorAll('svg circle').length,
    text: r.innerText,
  })),
}))";

/// Checks a dataset page's DOM against the served exposition: every metric has its section,
/// every label set shown has the latest value, period and change that `/metrics` serves, one
/// chart point per period served; the label sets not shown are counted right.
fn check_dataset_page(tab: &mut Tab, d: &Dataset, served: &HashMap<String, Vec<Sample>>) {
    let sections = tab.eval(ROWS_JS);
    let sections = sections.as_array().expect("sections");
    assert_eq!(
        sections
            .iter()
            .map(|s| s["metric"].as_str().expect("metric"))
            .collect::<Vec<_>>(),
        d.metrics
            .iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>(),
        "{}: one section per metric, in config order",
        d.info.name
    );
    let none = Vec::new();
    let mut checked = 0;
    for (s, m) in sections.iter().zip(&d.metrics) {
        let names = Derived::of(m, &d.period_label);
        let latest: HashMap<String, &Sample> = served
            .get(&names.latest)
            .unwrap_or(&none)
            .iter()
            .map(|x| (labels_text(&x.labels, ""), x))
            .collect();
        let period_of = |name: &str| -> HashMap<String, String> {
            served
                .get(name)
                .unwrap_or(&none)
                .iter()
                .map(|x| (labels_text(&x.labels, ""), x.text.clone()))
                .collect()
        };
        let periods = period_of(&names.period);
        let changes = period_of(&names.change);
        let yoys = period_of(&names.yoy);
        let mut per_set: HashMap<String, usize> = HashMap::new();
        for x in served.get(&m.name).unwrap_or(&none) {
            *per_set
                .entry(labels_text(&x.labels, &d.period_label))
                .or_default() += 1;
        }
        let rows = s["rows"].as_array().expect("rows");
        assert!(!rows.is_empty(), "{}: no rows", m.name);
        for r in rows {
            let labels = r["labels"].as_str().expect("labels");
            let shown = |k: &str| r[k].as_str().map(str::to_string);
            let at = format!("{} {{{labels}}}", m.name);
            let want = latest
                .get(labels)
                .unwrap_or_else(|| panic!("{at}: no {} served", names.latest));
            assert_eq!(
                shown("latest").as_deref(),
                Some(want.text.as_str()),
                "{at}: latest value"
            );
            assert!(
                r["text"].as_str().expect("text").contains(&want.text),
                "{at}: the row's text has the value"
            );
            let period = shown("period").expect("period");
            let p = Period::parse(&period).unwrap_or_else(|| panic!("{at}: period {period}"));
            let served_period = periods
                .get(labels)
                .unwrap_or_else(|| panic!("{at}: period"));
            let expected = if names.annual {
                p.year().to_string()
            } else {
                p.start_timestamp().to_string()
            };
            assert_eq!(*served_period, expected, "{at}: period {period}");
            assert_eq!(
                shown("change"),
                changes.get(labels).cloned(),
                "{at}: change"
            );
            assert_eq!(
                shown("yoy"),
                yoys.get(labels).cloned(),
                "{at}: year on year"
            );
            let n = per_set[labels];
            assert_eq!(r["points"], json!(n.min(120)), "{at}: chart points");
            let dots = if n <= 24 { n } else { 1 };
            assert_eq!(r["dots"], json!(dots), "{at}: a dot per period, up to 24");
            checked += 1;
        }
        let more: usize = s["more"]
            .as_str()
            .map_or(0, |n| n.parse().expect("a count"));
        assert_eq!(rows.len() + more, latest.len(), "{}: label sets", m.name);
    }
    eprintln!("{}: {checked} rows match /metrics", d.info.name);
}

/// Names of the series derived from a metric, as the exporter builds them.
struct Derived {
    latest: String,
    period: String,
    change: String,
    yoy: String,
    annual: bool,
}

impl Derived {
    fn of(m: &Metric, period_label: &str) -> Derived {
        let stem = m.stem();
        let suffix = m.unit.suffix().map_or(String::new(), |s| format!("_{s}"));
        let annual = m.cadence.is_some_and(|c| c.per_year() == Some(1));
        Derived {
            latest: format!("{stem}_latest{suffix}"),
            period: if annual {
                format!("{stem}_latest_{period_label}")
            } else {
                format!("{stem}_latest_{period_label}_start_timestamp_seconds")
            },
            change: format!("{stem}_change{suffix}"),
            yoy: format!("{stem}_year_on_year_change{suffix}"),
            annual,
        }
    }
}

fn scrape(base: &str) -> String {
    e2e::get(&e2e::agent(), &format!("{base}/metrics"), &[]).expect("scrape /metrics")
}

/// The links of the page in the tab, as absolute URLs.
fn links(tab: &mut Tab) -> Vec<String> {
    let v = tab.eval("[...document.querySelectorAll('a')].map(a => a.href)");
    v.as_array()
        .expect("links")
        .iter()
        .map(|l| l.as_str().expect("href").to_string())
        .collect()
}

#[test]
fn the_bundled_dataset_reads_the_same_in_chromium_as_on_metrics() {
    let config = Path::new(e2e::ROOT).join("config.toml");
    let d = indicator_exporter::check(&config).expect("the bundled config loads");
    let exporter = Exporter::start(&["--config.file", config.to_str().unwrap()]);
    let addr = exporter.addr();
    let base = format!("http://{addr}");
    let served = parse(&scrape(&base)).by_name();
    let page = format!("{base}/datasets/{}", d.info.name);
    for width in WIDTHS {
        let mut tab = Tab::open(width, 900);
        let index = show(&mut tab, &format!("{base}/"), width, "bundled-index");
        assert!(index.text.contains(&d.info.name), "{}", index.text);
        assert!(index.text.contains(&d.info.title));
        assert!(index.text.contains("ready"));
        let l = links(&mut tab);
        for want in [
            &page,
            &format!("{base}/metrics"),
            &format!("{base}/-/healthy"),
            &format!("{base}/-/ready"),
        ] {
            assert!(l.contains(want), "index links to {want}: {l:?}");
        }

        let shown = show(&mut tab, &page, width, "bundled-dataset");
        for text in [
            d.info.title.as_str(),
            d.info.publisher.as_str(),
            d.info.published.as_str(),
            "Medium-sized enterprises",
            "中型企业",
            "Cited sources",
        ] {
            assert!(
                shown.text.contains(text),
                "{width} px: no {text:?} in the page text"
            );
        }
        check_dataset_page(&mut tab, &d, &served);
        assert!(
            links(&mut tab).contains(&format!("{base}/")),
            "a link back to the index"
        );
    }
}

#[test]
fn a_catalogue_lists_errors_first_and_every_page_fits_400_pixels() {
    let main = Path::new(e2e::ROOT).join("tests/fixtures/pages/catalog.toml");
    let files = [
        "config.toml",
        "examples/formats/json-records.toml",
        "examples/formats/csv-worldbank-wide.toml",
    ];
    let datasets: Vec<Dataset> = files
        .iter()
        .map(|f| {
            indicator_exporter::check(&Path::new(e2e::ROOT).join(f))
                .unwrap_or_else(|e| panic!("{f}: {e}"))
        })
        .collect();
    let exporter = Exporter::start(&["--config.file", main.to_str().unwrap()]);
    let addr = exporter.addr();
    let base = format!("http://{addr}");
    // The unreachable dataset has tried and failed once, and the others are served.
    let agent = e2e::agent();
    e2e::poll("every dataset loaded or failed", || {
        let page = e2e::get(&agent, &format!("{base}/datasets/unreachable"), &[])?;
        let all = datasets.iter().all(|d| {
            e2e::get(&agent, &format!("{base}/datasets/{}", d.info.name), &[])
                .is_ok_and(|p| p.contains("<span class=\"badge ok\">ready</span>"))
        });
        (all && page.contains("Errors of the last load"))
            .then_some(())
            .ok_or_else(|| "loading".to_string())
    });
    let served = parse(&scrape(&base)).by_name();
    for width in WIDTHS {
        let mut tab = Tab::open(width, 900);
        let index = show(&mut tab, &format!("{base}/"), width, "catalog-index");
        // The dataset that failed comes first, then the one with an overdue release.
        let order = tab
            .eval("[...document.querySelectorAll('tr[data-dataset]')].map(r => r.dataset.dataset)");
        let order: Vec<&str> = order
            .as_array()
            .expect("rows")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(order.len(), 4, "{order:?}");
        assert_eq!(order[0], "unreachable", "{order:?}");
        assert_eq!(order[1], datasets[1].info.name, "{order:?}");
        assert!(index.text.contains("1 with errors"), "{}", index.text);
        assert!(index.text.contains("not ready"));
        assert!(
            index.text.contains("127.0.0.1:9"),
            "the error names the source"
        );

        let broken = show(
            &mut tab,
            &format!("{base}/datasets/unreachable"),
            width,
            "catalog-unreachable",
        );
        assert!(broken.text.contains("not ready") && broken.text.contains("not loaded yet"));
        assert!(
            broken.text.contains("http://127.0.0.1:9/figures.csv"),
            "source status"
        );

        for (d, name) in
            datasets
                .iter()
                .zip(["catalog-bundled", "catalog-quarterly", "catalog-worldbank"])
        {
            show(
                &mut tab,
                &format!("{base}/datasets/{}", d.info.name),
                width,
                name,
            );
            check_dataset_page(&mut tab, d, &served);
        }
    }
}
