//! Shared test support: an in-process exporter on 127.0.0.1:0, the real binary
//! ([`exporter::Exporter`]), one reader of the exposition formats ([`exposition`]), a plain
//! HTTP client, polling with a deadline and the external tools the tests need.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicator_exporter::diagnostic::Diagnostics;
use indicator_exporter::{run, Settings};
use tokio::sync::oneshot;

pub mod docs;
pub mod e2e;
pub mod exporter;
pub mod exposition;
pub mod loopback;
pub mod publisher;
pub mod source;

#[allow(unused_imports)]
pub use exporter::Exporter;

pub const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// How often [`poll_until`] looks again.
const POLL_EVERY: Duration = Duration::from_millis(20);

/// Polls `f` until it returns Some, or panics after `deadline` saying that `what` never
/// happened.
#[track_caller]
pub fn poll_until<T>(what: &str, deadline: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    poll_until_ok(what, deadline, POLL_EVERY, || f().ok_or_else(String::new))
}

/// Polls `f` until it returns Some; None if it has not after `deadline`. For where a panic
/// must not be (a drop): elsewhere [`poll_until`] says what never happened.
pub fn poll<T>(deadline: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        // Not a wait for something to happen: the pause between two looks.
        std::thread::sleep(POLL_EVERY);
    }
}

/// Polls `f` every `every` until it returns Ok, or panics after `deadline` saying that `what`
/// never happened, with the last error `f` gave.
#[track_caller]
pub fn poll_until_ok<T>(
    what: &str,
    deadline: Duration,
    every: Duration,
    mut f: impl FnMut() -> Result<T, String>,
) -> T {
    let end = Instant::now() + deadline;
    loop {
        match f() {
            Ok(v) => return v,
            Err(last) if Instant::now() >= end => {
                let last = if last.is_empty() {
                    String::new()
                } else {
                    format!("; last: {last}")
                };
                panic!("timed out after {deadline:?} waiting for {what}{last}")
            }
            // Not a wait for something to happen: the pause between two looks.
            Err(_) => std::thread::sleep(every),
        }
    }
}

/// How to get each external tool the tests run.
const TOOLS: &[(&str, &str)] = &[
    (
        "prometheus",
        "install the Debian package `prometheus` (scripts/install-deps does)",
    ),
    (
        "promtool",
        "install the Debian package `prometheus` (scripts/install-deps does)",
    ),
    (
        "victoria-metrics",
        "install the Debian package `victoria-metrics`, which puts it in /usr/bin (scripts/install-deps does)",
    ),
    (
        "chromium",
        "install the Debian package `chromium` (scripts/install-deps does)",
    ),
    (
        "python3",
        "install the Debian package `python3` (scripts/install-deps needs it too)",
    ),
];

/// The path of `tool` on PATH. A test that needs a missing tool fails here at once, naming the
/// tool and how to get it; it never skips (CI installs every tool, and a skip would hide a
/// missing install).
#[track_caller]
pub fn require_tool(tool: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(tool))
            .find(|p| is_executable(p))
    });
    found.unwrap_or_else(|| {
        let how = TOOLS
            .iter()
            .find(|(t, _)| *t == tool)
            .map_or("run scripts/install-deps", |(_, how)| how);
        panic!("{tool} not found on PATH: {how}")
    })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

pub struct Response {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("UTF-8 body")
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

pub fn request(method: &str, url: &str, headers: &[(&str, &str)]) -> Result<Response, ureq::Error> {
    let mut req = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(()).expect("valid request");
    let mut resp = agent().run(req)?;
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let body = resp.body_mut().with_config().limit(1 << 30).read_to_vec()?;
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// An exporter running in this process, stopped on drop.
pub struct Server {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<Result<(), Diagnostics>>>,
}

impl Server {
    pub fn start(config: &Path) -> Server {
        Server::start_with(config, true, false)
    }

    pub fn start_with(config: &Path, lifecycle: bool, watch: bool) -> Server {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("local addr");
        let (tx, rx) = oneshot::channel::<()>();
        let settings = Settings {
            config_file: config.to_path_buf(),
            telemetry_path: "/metrics".into(),
            enable_lifecycle: lifecycle,
            watch,
            limits: Default::default(),
            web_config_file: None,
            web_limits: Default::default(),
            shard: Default::default(),
        };
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                run(settings, listener, async {
                    let _ = rx.await;
                })
                .await
            })
        });
        let mut server = Server {
            addr,
            shutdown: Some(tx),
            thread: Some(thread),
        };
        poll_until(
            "the server to become ready",
            Duration::from_secs(30),
            || {
                if server.thread.as_ref().is_some_and(|t| t.is_finished()) {
                    let result = server
                        .thread
                        .take()
                        .expect("thread")
                        .join()
                        .expect("no panic");
                    panic!("server stopped during start-up: {result:?}");
                }
                server.get("/-/ready").ok().filter(|r| r.status == 200)
            },
        );
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn get(&self, path: &str) -> Result<Response, ureq::Error> {
        request("GET", &self.url(path), &[])
    }

    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        request("GET", &self.url(path), headers).expect("request")
    }

    pub fn metrics(&self) -> String {
        let r = self.get("/metrics").expect("scrape");
        assert_eq!(r.status, 200);
        r.text()
    }

    pub fn post(&self, path: &str) -> Response {
        request("POST", &self.url(path), &[]).expect("request")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The value, as written, of the sample whose name and labels are written exactly `series`,
/// if present.
pub fn sample(body: &str, series: &str) -> Option<String> {
    exposition::parse(body)
        .series(series)
        .map(|s| s.text.clone())
}

/// The dataset's part of a text exposition: everything but the exporter's own families.
pub fn dataset_part(body: &str) -> String {
    let mut out = String::new();
    let mut keep = true;
    for line in body.lines() {
        let name = line
            .strip_prefix("# HELP ")
            .or_else(|| line.strip_prefix("# TYPE "))
            .or_else(|| line.strip_prefix("# UNIT "))
            .unwrap_or(line);
        if line.starts_with("# HELP ") {
            keep = !(name.starts_with("indicator_exporter_") || name.starts_with("process_"));
        }
        if keep && line != "# EOF" {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Runs `promtool check metrics` on `body`: Err with what it printed unless it exits 0 and
/// prints nothing (promtool reports lint problems on a successful exit too).
#[track_caller]
pub fn promtool_check_metrics(body: &str) -> Result<(), String> {
    use std::io::Write;
    let mut child = std::process::Command::new(require_tool("promtool"))
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run promtool check metrics");
    let written = child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(body.as_bytes());
    let out = child.wait_with_output().expect("promtool ends");
    written.expect("write to promtool");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && report.trim().is_empty() {
        Ok(())
    } else {
        Err(report)
    }
}
