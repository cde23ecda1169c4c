//! Load-pipeline benchmark: how long a start-up or reload takes for 10,000, 100,000 and
//! 1,000,000 series, stage by stage, and how big the bodies it renders are.
//!
//! ```sh
//! cargo bench --bench pipeline              # all three sizes, every input format
//! cargo bench --bench pipeline -- 100000    # chosen sizes only
//! ```
//!
//! Datasets are written by `benches/generate.py` (python3) into `benches/out/<format>/<series>/`,
//! the same observations in three forms: one CSV per metric (`samples_file`), one long CSV with
//! an indicator column, and one SDMX-CSV 1.0 file, the last two through `[[input]]`.
//! Stages, each the median of several runs (fewer for large datasets):
//! `load` = read + parse + validate (`load::load`), `render` = render and gzip both formats
//! (`Snapshot::build`), `total` = both, as start-up and reload run them; `first` is the total of
//! the first run of a size, whose memory comes fresh from the OS as at start-up. `vs 3 s` is
//! total divided by the 3-second budget for loading a dataset. Memory is counted by the
//! allocator: `peak` is the most heap in use during a load (file text included), `kept` what
//! the loaded dataset holds, both per declared series.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use indicator_exporter::encode::Format;
use indicator_exporter::load;
use indicator_exporter::snapshot::Snapshot;

const SIZES: &[usize] = &[10_000, 100_000, 1_000_000];
const FORMATS: &[&str] = &["metric-csv", "long-csv", "sdmx-csv"];
const BUDGET: Duration = Duration::from_secs(3);
/// What loading (read + parse + validate) 1,000,000 observations of a publisher file may take.
const LOAD_BUDGET: Duration = Duration::from_secs(1);

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
    render: Duration,
    total: Duration,
    first: Duration,
    worst: Duration,
    text: usize,
    text_gz: usize,
    om: usize,
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
    let mut sizes = None;
    let mut memory = None;
    for _ in 0..runs {
        let before = IN_USE.load(Ordering::Relaxed);
        PEAK.store(before, Ordering::Relaxed);
        let t0 = Instant::now();
        let dataset = match load::load(config) {
            Ok(d) => d,
            Err(e) => panic!("{}: invalid dataset:\n{e}", config.display()),
        };
        let t1 = Instant::now();
        if memory.is_none() {
            let peak = PEAK.load(Ordering::Relaxed) - before;
            let kept = IN_USE.load(Ordering::Relaxed) - before;
            memory = Some((peak, kept));
        }
        let snapshot = Snapshot::build(&dataset);
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
            let text = snapshot.body(Format::Text);
            let om = snapshot.body(Format::OpenMetrics);
            sizes = Some((
                exposed,
                text.plain.iter().map(|b| b.len()).sum(),
                text.gzip.compressed_len(),
                om.plain.iter().map(|b| b.len()).sum(),
                om.gzip.compressed_len(),
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
        render: median(renders),
        total: median(totals),
        first,
        worst,
        text,
        text_gz,
        om,
        om_gz,
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn mib(bytes: usize) -> String {
    format!("{:.2}", bytes as f64 / (1024.0 * 1024.0))
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
    let mut rows = Vec::new();
    for &series in &sizes {
        for &format in FORMATS {
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
        "render ms",
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
                ms(r.render),
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
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            table
                .iter()
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
    line(&header.map(String::from));
    println!(
        "|{}|",
        widths
            .iter()
            .map(|w| format!("{}:", "-".repeat(w + 1)))
            .collect::<Vec<_>>()
            .join("|")
    );
    for row in &table {
        line(row);
    }
    println!();
    println!("series: declared series; exposed: with the derived latest/change series.");
    println!("load: read + parse + validate (load::load); render: both formats rendered and");
    println!("gzip-compressed (Snapshot::build); first: total of the first run, on memory fresh");
    println!("from the OS like a start-up; max: slowest run; vs 3 s: total / 3 s (< 1 is within).");
    println!("Bodies are the dataset part of /metrics (without the exporter's own metrics).");
    println!("peak / kept: heap in use at the peak of a load and held by the loaded dataset,");
    println!("per declared series (the first run of each row).");
    for r in rows
        .iter()
        .filter(|r| r.series == 1_000_000 && r.format != "metric-csv")
    {
        let verdict = if r.load < LOAD_BUDGET { "PASS" } else { "FAIL" };
        println!(
            "{verdict}: 1,000,000 observations of {} loaded (read + parse + validate) in {} ms (target < 1000 ms)",
            r.format,
            ms(r.load)
        );
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
    }
}
