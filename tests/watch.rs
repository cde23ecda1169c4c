//! The file watcher against the real binary: an idle daemon reads no file, a change made
//! while a reload runs is served in the end, and a busy unrelated file next to the dataset
//! does not hold a change back.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{poll_until, sample, Exporter};

/// A dataset whose one metric is read from `data.csv` beside it.
const CONFIG: &str = r#"[dataset]
name = "watched"
title = "Watched dataset"
publisher = "Test office"
source_url = "https://example.org/"
published = "2025-01-01"
metric_prefix = "w_"

[dataset.period]
label = "year"
cadence = "annual"

[[metric]]
name = "rate"
unit = "percent"
help = "A rate."
labels = ["region", "year"]
samples_file = "data.csv"
"#;

const SERIES: &str = "w_rate_ratio{region=\"r000000\",year=\"2024\"}";

/// `rows` rows of data, the first region's value being `first` percent.
fn data(rows: usize, first: &str) -> String {
    let mut s = String::with_capacity(rows * 20 + 20);
    s.push_str("region,year,value\n");
    for i in 0..rows {
        if i == 0 {
            s.push_str(&format!("r{i:06},2024,{first}\n"));
        } else {
            s.push_str(&format!("r{i:06},2024,{}.5\n", i % 100));
        }
    }
    s
}

/// `config.toml` and `data.csv` in `conf/` of a temporary directory: the directory above
/// the dataset's is the test's own, so no other process's files share a watched directory.
fn dataset(data: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let conf = dir.path().join("conf");
    std::fs::create_dir(&conf).expect("create conf/");
    std::fs::write(conf.join("config.toml"), CONFIG).expect("write config");
    std::fs::write(conf.join("data.csv"), data).expect("write data");
    (dir, conf)
}

/// Saves as editors do: a temporary file renamed over the original.
fn save_by_rename(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write the temporary file");
    std::fs::rename(&tmp, path).expect("rename over the file");
}

/// The binary watching `config`, started within `deadline`.
fn start(config: &Path, deadline: Duration) -> Exporter {
    Exporter::start_within(
        &["--config.watch", "--config.file", config.to_str().unwrap()],
        deadline,
    )
}

/// The served value of [`SERIES`].
fn value(r: &Exporter) -> Option<String> {
    sample(&r.metrics(), SERIES)
}

/// Polls until [`SERIES`] is `want`; how long that took.
fn wait_value(r: &Exporter, want: &str, deadline: Duration) -> Duration {
    let start = Instant::now();
    poll_until(&format!("{SERIES} = {want}"), deadline, || {
        (value(r).as_deref() == Some(want)).then_some(())
    });
    start.elapsed()
}

/// Read counters of a process, from `/proc/PID/io`: bytes read by any read call (`rchar`,
/// files, sockets and pipes alike) and read calls made (`syscr`).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Io {
    rchar: u64,
    syscr: u64,
}

impl Io {
    fn of(pid: u32) -> Io {
        let text = std::fs::read_to_string(format!("/proc/{pid}/io")).expect("read /proc/PID/io");
        let field = |name: &str| -> u64 {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/io:\n{text}"))
        };
        Io {
            rchar: field("rchar"),
            syscr: field("syscr"),
        }
    }
}

#[test]
fn an_idle_watching_daemon_reads_nothing() {
    let (_dir, conf) = dataset(&data(3, "12.5"));
    let r = start(&conf.join("config.toml"), Duration::from_secs(60));
    assert_eq!(value(&r).as_deref(), Some("0.125"));
    // The scrape's connection closing is read by the server after the answer: wait until
    // the counters stand still, within a bound (a daemon that never idles goes on to fail
    // the measurement below, with figures).
    let end = Instant::now() + Duration::from_secs(5);
    let mut last = Io::of(r.pid());
    while Instant::now() < end {
        // Not a wait for one event: standing still can only be seen over a span, 500 ms here,
        // and a daemon that never stands still is not failed here but below.
        std::thread::sleep(Duration::from_millis(500));
        let now = Io::of(r.pid());
        if now == last {
            break;
        }
        last = now;
    }

    // The measurement: 10 s without a request or a file change.
    let before = Io::of(r.pid());
    // The behaviour under test: 10 s of idleness, measured.
    std::thread::sleep(Duration::from_secs(10));
    let after = Io::of(r.pid());
    let (calls, bytes) = (after.syscr - before.syscr, after.rchar - before.rchar);
    eprintln!("idle for 10 s: {calls} read calls, {bytes} bytes read");
    assert_eq!(
        (calls, bytes),
        (0, 0),
        "an idle daemon made {calls} read calls ({bytes} bytes) in 10 s"
    );

    // Idle, not deaf: a change after the window is served.
    save_by_rename(&conf.join("data.csv"), &data(3, "13.5"));
    wait_value(&r, "0.135", Duration::from_secs(20));
}

#[test]
fn a_change_made_while_a_reload_runs_is_served_in_the_end() {
    const ROWS: usize = 100_000;
    let first = data(ROWS, "0.5");
    let size = first.len() as u64;
    let (_dir, conf) = dataset(&first);
    let r = start(&conf.join("config.toml"), Duration::from_secs(300));
    assert_eq!(value(&r).as_deref(), Some("0.005"));

    let start = Io::of(r.pid());
    let loading = Instant::now();
    save_by_rename(&conf.join("data.csv"), &data(ROWS, "11"));
    // A reload is running once the daemon has read the new file.
    poll_until(
        "the daemon to read the changed data file",
        Duration::from_secs(60),
        || (Io::of(r.pid()).rchar - start.rchar >= size).then_some(()),
    );
    let reading_after = loading.elapsed();
    save_by_rename(&conf.join("data.csv"), &data(ROWS, "22"));
    // Asked after the second save: still the first version, so the reload that read the
    // first change had not finished when the second was made.
    assert_eq!(
        value(&r).as_deref(),
        Some("0.005"),
        "the reload ended before the second change: make the dataset larger"
    );
    let took = wait_value(&r, "0.22", Duration::from_secs(300));
    eprintln!(
        "{ROWS} rows: reading began {reading_after:?} after the first save; \
         the second save was served {took:?} after it was made"
    );
    // And it stays: nothing later brings the first change back.
    assert_eq!(value(&r).as_deref(), Some("0.22"), "{}", r.stderr());
}

#[test]
fn a_busy_unrelated_file_does_not_hold_a_change_back() {
    let (_dir, conf) = dataset(&data(3, "12.5"));
    let r = start(&conf.join("config.toml"), Duration::from_secs(60));
    assert_eq!(value(&r).as_deref(), Some("0.125"));
    let stop = AtomicBool::new(false);
    let rewritten = AtomicU64::new(0);
    let log = conf.join("exporter.log");
    let took = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let mut f = std::fs::File::create(&log).expect("rewrite the log file");
                writeln!(f, "line {n}").expect("write the log file");
                drop(f);
                n += 1;
                rewritten.store(n, Ordering::Relaxed);
                // The churn under test: a rewrite every 100 ms.
                std::thread::sleep(Duration::from_millis(100));
            }
            n
        });
        // Once the writer is going: the change lands in the middle of its churn.
        poll_until(
            "the writer to rewrite the log five times",
            Duration::from_secs(10),
            || (rewritten.load(Ordering::Relaxed) >= 5).then_some(()),
        );
        save_by_rename(&conf.join("data.csv"), &data(3, "14.5"));
        let start = Instant::now();
        let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            poll_until(&format!("{SERIES} = 0.145"), Duration::from_secs(5), || {
                (value(&r).as_deref() == Some("0.145")).then_some(())
            })
        }));
        let took = start.elapsed();
        stop.store(true, Ordering::Relaxed);
        let rewrites = writer.join().expect("the writer ends");
        assert!(rewrites > 5, "the log was rewritten {rewrites} times");
        if let Err(e) = served {
            std::panic::resume_unwind(e);
        }
        took
    });
    eprintln!("served {took:?} after the change, the log being rewritten every 100 ms");
}
