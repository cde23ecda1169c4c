//! Load-pipeline benchmark: how long a start-up or reload takes for 10,000, 100,000 and
//! 1,000,000 series, stage by stage, and how big the bodies it renders are.
//!
//! ```sh
//! cargo bench --bench pipeline              # all three sizes, every input format
//! cargo bench --bench pipeline -- 100000    # chosen sizes only
//! PIPELINE_FORMATS=long-csv,sdmx-csv cargo bench --bench pipeline -- 1000000  # chosen formats
//! ```
//!
//! Datasets are written by `benches/generate.py` (python3) into `benches/out/<format>/<series>/`,
//! the same observations in four forms: one CSV per metric (`samples_file`), one long CSV with
//! an indicator column, one SDMX-CSV 1.0 file and one SDMX-ML 2.1 StructureSpecificData file,
//! the last three through `[[input]]`.
//! Stages, each the median of several runs (fewer for large datasets):
//! `load` = read + parse + validate (`load::load`), `render` = render and gzip both formats
//! (`Snapshot::build`; from 250,000 series at level 1, to be in service sooner), `gzip` = the
//! compression at the final level alone (`gzip::compress_formats` on the rendered bodies: part of
//! `render` below 250,000 series, `Snapshot::recompressed` after the load above), `total` = load +
//! render, as start-up and reload run them before the dataset is served; `first` is
//! the total of the first run of a size, whose memory comes fresh from the OS as at start-up.
//! `vs 3 s` is total divided by the 3-second budget for loading a dataset. Memory is counted by
//! the allocator: `peak` is the most heap in use during a load (file text included), `kept` what
//! the loaded dataset holds, both per declared series.
//!
//! A second table gives, for the one-CSV-per-metric dataset of each size, the gzip bytes and
//! time of both formats at levels 1 to 6, and the gzip bytes node_exporter's textfile collector
//! serves for the same text body (Go's default level), when node_exporter is installed
//! (`scripts/install-deps --bench`; `NODE_EXPORTER` names another binary). It listens on
//! 127.0.0.1 only and is stopped after each size.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use flate2::Compression;
use indicator_exporter::expose::encode::Format;
use indicator_exporter::expose::gzip;
use indicator_exporter::expose::snapshot::Snapshot;
use indicator_exporter::reload::load;

const SIZES: &[usize] = &[10_000, 100_000, 1_000_000];
const FORMATS: &[&str] = &["metric-csv", "long-csv", "sdmx-csv", "sdmx-ml"];
const BUDGET: Duration = Duration::from_secs(3);
/// What loading (read + parse + validate) 1,000,000 observations of a publisher file may take.
const LOAD_BUDGET: Duration = Duration::from_secs(1);
/// The same for SDMX-ML, whose files are about twice as long as SDMX-CSV's.
const XML_LOAD_BUDGET: Duration = Duration::from_millis(1500);
/// What a whole load of 1,000,000 series (parse + validate + render + compress) aims at.
const SNAPSHOT_BUDGET: Duration = Duration::from_secs(1);
/// The levels the level table compares.
const LEVELS: std::ops::RangeInclusive<u32> = 1..=6;
const NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";

/// The system allocator, counting bytes in use and their peak.
struct Counting;
static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = IN_USE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                let now = IN_USE.fetch_add(new_size - layout.size(), Ordering::Relaxed)
                    + (new_size - layout.size());
                PEAK.fetch_max(now, Ordering::Relaxed);
            } else {
                IN_USE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

struct Row {
    format: &'static str,
    series: usize,
    peak: usize,
    kept: usize,
    exposed: usize,
    runs: usize,
    load: Duration,
    /// CPU time of the load, all threads: above `load` when the parsing is spread over cores.
    load_cpu: Duration,
    /// CPU time of the load on the calling thread: about the load's wall time on idle cores.
    load_main_cpu: Duration,
    render: Duration,
    gzip: Duration,
    gzip_cpu: Duration,
    total: Duration,
    first: Duration,
    worst: Duration,
    text: usize,
    text_gz: usize,
    om: usize,
    om_gz: usize,
    levels: Vec<Level>,
    /// node_exporter's gzip bytes for the text body, or why there are none.
    node: Option<Result<usize, String>>,
}

/// Both formats compressed at one level.
struct Level {
    level: u32,
    time: Duration,
    cpu: Duration,
    text_gz: usize,
    om_gz: usize,
}

fn runs_for(series: usize) -> usize {
    match series {
        0..=20_000 => 9,
        20_001..=200_000 => 5,
        _ => 3,
    }
}

fn generate(root: &Path, format: &str, series: usize) -> PathBuf {
    let out = root
        .join("benches/out")
        .join(format)
        .join(series.to_string());
    let status = Command::new("python3")
        .arg(root.join("benches/generate.py"))
        .arg(series.to_string())
        .arg(&out)
        .arg("--format")
        .arg(format)
        .status()
        .expect("python3 runs benches/generate.py");
    assert!(status.success(), "benches/generate.py failed: {status}");
    out.join("config.toml")
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn measure(config: &Path, format: &'static str, series: usize) -> Row {
    let runs = runs_for(series);
    let (mut loads, mut renders, mut totals) = (Vec::new(), Vec::new(), Vec::new());
    let (mut load_cpus, mut load_main_cpus) = (Vec::new(), Vec::new());
    let (mut gzips, mut gzip_cpus) = (Vec::new(), Vec::new());
    let mut sizes = None;
    let mut memory = None;
    let mut levels = Vec::new();
    let mut node = None;
    for _ in 0..runs {
        let before = IN_USE.load(Ordering::Relaxed);
        PEAK.store(before, Ordering::Relaxed);
        let (t0, c0, m0) = (Instant::now(), cpu_time(), thread_cpu_time());
        let dataset = std::sync::Arc::new(match load::load(config) {
            Ok(d) => d,
            Err(e) => panic!("{}: invalid dataset:\n{e}", config.display()),
        });
        load_cpus.push(cpu_time() - c0);
        load_main_cpus.push(thread_cpu_time() - m0);
        let t1 = Instant::now();
        if memory.is_none() {
            let peak = PEAK.load(Ordering::Relaxed) - before;
            let kept = IN_USE.load(Ordering::Relaxed) - before;
            memory = Some((peak, kept));
        }
        let snapshot = Snapshot::build(dataset.clone());
        let t2 = Instant::now();
        assert_eq!(
            dataset.series_count(),
            series,
            "generator wrote another size"
        );
        if sizes.is_none() {
            let exposed = dataset
                .metrics
                .iter()
                .chain(&dataset.derived)
                .map(|m| m.len())
                .sum::<usize>();
            // The bodies as served once the load is done: at the final level.
            let last = snapshot.recompressed();
            let last = last.as_ref().unwrap_or(&snapshot);
            let text = last.body(Format::Text);
            let om = last.body(Format::OpenMetrics);
            sizes = Some((
                exposed,
                text.plain.iter().map(|b| b.len()).sum(),
                text.gzip.compressed_len(),
                om.plain.iter().map(|b| b.len()).sum(),
                om.gzip.compressed_len(),
            ));
        }
        let (text, om) = (
            snapshot.body(Format::Text),
            snapshot.body(Format::OpenMetrics),
        );
        let (t3, c3) = (Instant::now(), cpu_time());
        let again = gzip::compress_formats(&text.plain, &om.plain);
        gzips.push(t3.elapsed());
        gzip_cpus.push(cpu_time() - c3);
        drop(again);
        if levels.is_empty() && format == "metric-csv" {
            levels = LEVELS.map(|l| compress_at(l, &snapshot)).collect();
            let body: Vec<u8> = text.plain.iter().flat_map(|b| b.iter().copied()).collect();
            node = Some(node_exporter_gzip(
                config.parent().unwrap_or(Path::new(".")),
                series,
                &body,
            ));
        }
        // Freeing is part of a reload too, but not of these stages.
        drop(snapshot);
        drop(dataset);
        loads.push(t1 - t0);
        renders.push(t2 - t1);
        totals.push(t2 - t0);
    }
    let (exposed, text, text_gz, om, om_gz) = sizes.expect("at least one run");
    let (peak, kept) = memory.expect("at least one run");
    let first = totals[0];
    let worst = *totals.iter().max().expect("at least one run");
    Row {
        format,
        series,
        peak,
        kept,
        exposed,
        runs,
        load: median(loads),
        load_cpu: median(load_cpus),
        load_main_cpu: median(load_main_cpus),
        render: median(renders),
        gzip: median(gzips),
        gzip_cpu: median(gzip_cpus),
        total: median(totals),
        first,
        worst,
        text,
        text_gz,
        om,
        om_gz,
        levels,
        node,
    }
}

/// Both formats of `snapshot` compressed at `level`, the fastest of three runs.
fn compress_at(level: u32, snapshot: &Snapshot) -> Level {
    let (text, om) = (
        snapshot.body(Format::Text),
        snapshot.body(Format::OpenMetrics),
    );
    let (mut best, mut best_cpu) = (Duration::MAX, Duration::MAX);
    let mut sizes = (0, 0);
    for _ in 0..3 {
        let (t, c) = (Instant::now(), cpu_time());
        let (t_gz, o_gz) =
            gzip::compress_formats_at(Compression::new(level), &text.plain, &om.plain);
        best = best.min(t.elapsed());
        best_cpu = best_cpu.min(cpu_time() - c);
        sizes = (t_gz.compressed_len(), o_gz.compressed_len());
    }
    Level {
        level,
        time: best,
        cpu: best_cpu,
        text_gz: sizes.0,
        om_gz: sizes.1,
    }
}

/// CPU time (user + system) the process has used so far, all threads: unlike wall time, it
/// does not grow when other processes share the cores.
fn cpu_time() -> Duration {
    rusage_time(libc::RUSAGE_SELF)
}

/// CPU time of the calling thread alone: for a load, the part no other core can take over.
fn thread_cpu_time() -> Duration {
    rusage_time(libc::RUSAGE_THREAD)
}

fn rusage_time(who: libc::c_int) -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(who, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// A process killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The gzip bytes node_exporter's textfile collector serves for `text` (its HTTP body, which
/// adds the collector's own few series), or why there are none. The file goes into `dir`.
fn node_exporter_gzip(dir: &Path, series: usize, text: &[u8]) -> Result<usize, String> {
    let binary = std::env::var("NODE_EXPORTER").unwrap_or_else(|_| NODE_EXPORTER.to_string());
    if !Path::new(&binary).exists() {
        return Err(format!(
            "{binary} not found (scripts/install-deps --bench installs it)"
        ));
    }
    let dir = dir.join(format!("textfile-{series}"));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let prom = dir.join("dataset.prom");
    std::fs::write(&prom, text).map_err(|e| format!("{}: {e}", prom.display()))?;
    // A port the kernel just gave out and took back: free unless another process races for it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port on 127.0.0.1: {e}"))?
        .port();
    let child = Command::new(&binary)
        .args([
            "--collector.disable-defaults",
            "--collector.textfile",
            &format!("--collector.textfile.directory={}", dir.display()),
            "--web.disable-exporter-metrics",
            &format!("--web.listen-address=127.0.0.1:{port}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{binary}: {e}"))?;
    let mut node = Running(child);
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(300)))
            .http_status_as_error(false)
            .build(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let base = format!("http://127.0.0.1:{port}");
    while agent.get(&base).call().is_err() {
        if let Ok(Some(status)) = node.0.try_wait() {
            return Err(format!("{binary} exited at start-up: {status}"));
        }
        if Instant::now() > deadline {
            return Err(format!("{binary} did not answer {base} within 30 s"));
        }
        std::thread::sleep(Duration::from_millis(50)); // next poll
    }
    let mut response = agent
        .get(format!("{base}/metrics"))
        .header("Accept-Encoding", "gzip")
        .call()
        .map_err(|e| format!("{base}/metrics: {e}"))?;
    let encoding = response
        .headers()
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if response.status() != 200 || encoding != "gzip" {
        return Err(format!(
            "{base}/metrics answered {} with content-encoding {encoding:?}",
            response.status()
        ));
    }
    let body = response
        .body_mut()
        .with_config()
        .limit(u64::MAX)
        .read_to_vec()
        .map_err(|e| format!("{base}/metrics: {e}"))?;
    Ok(body.len())
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn mib(bytes: usize) -> String {
    format!("{:.2}", bytes as f64 / (1024.0 * 1024.0))
}

/// Prints a Markdown table, numbers right-aligned.
fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|row| row[i].len())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:>w$}"))
            .collect();
        println!("| {} |", parts.join(" | "));
    };
    line(&header.iter().map(|h| h.to_string()).collect::<Vec<_>>());
    println!(
        "|{}|",
        widths
            .iter()
            .map(|w| format!("{}:", "-".repeat(w + 1)))
            .collect::<Vec<_>>()
            .join("|")
    );
    for row in rows {
        line(row);
    }
}

/// The gzip bytes of a text-format response: the body's pieces, the 10-byte header and 8-byte
/// trailer (the exporter's own metrics, a few hundred bytes more, left out).
fn response_gz(r: &Row) -> usize {
    r.text_gz + 18
}

fn main() {
    // cargo passes `--bench`; any other argument is a series count.
    let mut sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .map(|a| a.parse().expect("arguments are series counts"))
        .collect();
    if sizes.is_empty() {
        sizes = SIZES.to_vec();
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("load pipeline, median of N runs, {cpus} CPUs (times in ms, sizes in MiB)");
    // PIPELINE_FORMATS=long-csv,sdmx-csv measures only those formats.
    let only = std::env::var("PIPELINE_FORMATS").ok();
    let wanted = |f: &str| only.as_deref().is_none_or(|o| o.split(',').any(|w| w == f));
    let mut rows = Vec::new();
    for &series in &sizes {
        for &format in FORMATS.iter().filter(|f| wanted(f)) {
            let config = generate(root, format, series);
            rows.push(measure(&config, format, series));
        }
    }
    println!();
    let header = [
        "format",
        "series",
        "exposed",
        "N",
        "load ms",
        "load CPU ms",
        "main CPU ms",
        "render ms",
        "gzip ms",
        "gzip CPU ms",
        "total ms",
        "first ms",
        "max ms",
        "vs 3 s",
        "text",
        "text.gz",
        "om",
        "om.gz",
        "gz ratio",
        "peak B/series",
        "kept B/series",
    ];
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let per = |b: usize| format!("{:.0}", b as f64 / r.series as f64);
            vec![
                r.format.to_string(),
                r.series.to_string(),
                r.exposed.to_string(),
                r.runs.to_string(),
                ms(r.load),
                ms(r.load_cpu),
                ms(r.load_main_cpu),
                ms(r.render),
                ms(r.gzip),
                ms(r.gzip_cpu),
                ms(r.total),
                ms(r.first),
                ms(r.worst),
                format!("{:.2}", r.total.as_secs_f64() / BUDGET.as_secs_f64()),
                mib(r.text),
                mib(r.text_gz),
                mib(r.om),
                mib(r.om_gz),
                format!("{:.1}", r.text as f64 / r.text_gz.max(1) as f64),
                per(r.peak),
                per(r.kept),
            ]
        })
        .collect();
    print_table(&header, &table);
    println!();
    println!("series: declared series; exposed: with the derived latest/change series.");
    println!("load: read + parse + validate (load::load), and the CPU time it used (all threads:");
    println!(
        "above load when the parsing is spread over cores); render: both formats rendered and"
    );
    println!(
        "gzip-compressed (Snapshot::build; level 1 from 250,000 series); gzip: compression at"
    );
    println!("level 5 alone (below 250,000 series part of render; above, done after the load), on {cpus} cores,");
    println!("and the CPU time it used (all threads; it does not grow when other processes share");
    println!("the cores, so wall time on idle cores is about gzip CPU / {cpus});");
    println!("total: load + render; first: total of the first run, on memory fresh from the OS");
    println!("like a start-up; max: slowest run; vs 3 s: total / 3 s (< 1 is within).");
    println!("Bodies are the dataset part of /metrics (without the exporter's own metrics).");
    println!("peak / kept: heap in use at the peak of a load and held by the loaded dataset,");
    println!("per declared series (the first run of each row).");

    println!();
    let mut level_rows = Vec::new();
    for r in rows.iter().filter(|r| !r.levels.is_empty()) {
        let node = match &r.node {
            Some(Ok(bytes)) => Some(*bytes),
            _ => None,
        };
        for l in &r.levels {
            level_rows.push(vec![
                r.series.to_string(),
                l.level.to_string(),
                ms(l.time),
                ms(l.cpu),
                mib(l.text_gz),
                mib(l.om_gz),
                format!("{:.1}", r.text as f64 / l.text_gz.max(1) as f64),
                node.map_or("-".into(), |n| {
                    format!("{:.3}", (l.text_gz + 18) as f64 / n as f64)
                }),
            ]);
        }
    }
    print_table(
        &[
            "series",
            "level",
            "gzip ms",
            "CPU ms",
            "text.gz",
            "om.gz",
            "gz ratio",
            "vs node_exporter",
        ],
        &level_rows,
    );
    println!();
    println!("Both formats compressed by gzip::compress_formats_at (one-CSV-per-metric dataset,");
    println!("fastest of 3; CPU: all threads); the exporter uses level 5. vs node_exporter: the");
    println!("text body's gzip response bytes / node_exporter's textfile collector's for the");
    println!("same body.");
    for r in rows.iter().filter(|r| r.node.is_some()) {
        match &r.node {
            Some(Ok(node)) => {
                let ours = response_gz(r);
                let verdict = if ours <= *node { "PASS" } else { "FAIL" };
                println!(
                    "{verdict}: {} series: gzip body {ours} bytes, node_exporter {node} bytes ({:.3}x, target <= 1)",
                    r.series,
                    ours as f64 / *node as f64
                );
            }
            Some(Err(why)) => println!("{} series: no node_exporter figure: {why}", r.series),
            None => {}
        }
    }
    for r in rows
        .iter()
        .filter(|r| r.series == 1_000_000 && r.format != "metric-csv")
    {
        let budget = match r.format {
            "sdmx-ml" => XML_LOAD_BUDGET,
            _ => LOAD_BUDGET,
        };
        let verdict = if r.load < budget { "PASS" } else { "FAIL" };
        println!(
            "{verdict}: 1,000,000 observations of {} loaded (read + parse + validate) in {} ms (target < {} ms)",
            r.format,
            ms(r.load),
            budget.as_millis()
        );
        if let Some(csv) = rows
            .iter()
            .find(|b| b.series == r.series && b.format == "sdmx-csv")
            .filter(|_| r.format == "sdmx-ml")
        {
            println!(
                "  sdmx-ml: load {:.2}x, peak memory {:.2}x and kept {:.2}x of SDMX-CSV (target peak <= 2x)",
                r.load.as_secs_f64() / csv.load.as_secs_f64().max(1e-9),
                r.peak as f64 / csv.peak.max(1) as f64,
                r.kept as f64 / csv.kept.max(1) as f64
            );
        }
        if let Some(base) = rows
            .iter()
            .find(|b| b.series == r.series && b.format == "metric-csv")
        {
            println!(
                "  {}: kept memory {:.2}x and peak {:.2}x of one CSV per metric (target kept <= 2x)",
                r.format,
                r.kept as f64 / base.kept.max(1) as f64,
                r.peak as f64 / base.peak.max(1) as f64
            );
        }
    }
    if let Some(r) = rows
        .iter()
        .find(|r| r.series == 1_000_000 && r.format == "metric-csv")
    {
        for (what, t) in [("median", r.total), ("first run", r.first)] {
            let verdict = if t < BUDGET { "PASS" } else { "FAIL" };
            println!(
                "{verdict}: 1,000,000 series loaded+validated+rendered in {} ms, {what} (target < 3000 ms)",
                ms(t)
            );
        }
        let verdict = if r.total < SNAPSHOT_BUDGET {
            "PASS"
        } else {
            "FAIL"
        };
        println!(
            "{verdict}: 1,000,000 series parsed+validated+rendered+compressed (level 1) and in service in {} ms, median (target < 1000 ms); compressed again at level 5 in {} ms after that",
            ms(r.total),
            ms(r.gzip)
        );
    }
}
