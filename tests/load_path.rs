//! The load path reads each file once per load: a main config with a dataset of its own, a
//! listed dataset and one in the catalogue's directory, at start-up, on SIGHUP and on a
//! watched change of one dataset's file; and `--config.max-file-size` bounds every read.
//! Reads are counted from the real binary's `read file` debug lines.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::exporter::{run, Exporter};
use common::poll_until;

const DEADLINE: Duration = Duration::from_secs(60);

fn dataset(name: &str, prefix: &str, csv: &str, catalog: &str) -> String {
    format!(
        r#"[dataset]
name = "{name}"
title = "Dataset {name}"
publisher = "Test"
source_url = "https://example.org/{name}"
published = "2026-01-01"
metric_prefix = "{prefix}"

[dataset.period]
label = "year"

[[metric]]
name = "rate"
unit = "percent"
help = "A rate."
labels = ["year"]
samples_file = "{csv}"
{catalog}"#
    )
}

/// main.toml (dataset `a` and the catalogue), b.toml listed, datasets.d/c.toml; each with its
/// CSV beside it.
fn catalogue(dir: &Path) {
    let catalog = "\n[catalog]\ndatasets = [\"b.toml\"]\ndirectory = \"datasets.d\"\n";
    std::fs::write(dir.join("main.toml"), dataset("a", "a_", "a.csv", catalog)).unwrap();
    std::fs::write(dir.join("b.toml"), dataset("b", "b_", "b.csv", "")).unwrap();
    std::fs::create_dir(dir.join("datasets.d")).unwrap();
    let c = dataset("c", "c_", "c.csv", "");
    std::fs::write(dir.join("datasets.d/c.toml"), c).unwrap();
    for (f, v) in [("a.csv", "1"), ("b.csv", "2"), ("datasets.d/c.csv", "3")] {
        std::fs::write(dir.join(f), format!("year,value\n2025,{v}\n")).unwrap();
    }
}

/// How many times each file was read, from the `read file` debug lines.
fn reads(log: &str, dir: &Path) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for line in log.lines().filter(|l| l.contains("msg=\"read file\"")) {
        let file = line
            .split_whitespace()
            .find_map(|f| f.strip_prefix("file="))
            .expect("file= in a read line")
            .trim_matches('"');
        let name = Path::new(file)
            .strip_prefix(dir)
            .map_or(file.to_string(), |p| p.display().to_string());
        *out.entry(name).or_insert(0) += 1;
    }
    out
}

fn counts(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(f, n)| (f.to_string(), *n)).collect()
}

#[test]
fn each_file_is_read_once_per_load() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().canonicalize().unwrap();
    catalogue(&dir);
    let main = dir.join("main.toml");
    let e = Exporter::start(&[
        "--log.level=debug",
        "--config.watch",
        "--config.file",
        main.to_str().unwrap(),
    ]);
    let all_once = [
        ("main.toml", 1),
        ("a.csv", 1),
        ("b.toml", 1),
        ("b.csv", 1),
        ("datasets.d/c.toml", 1),
        ("datasets.d/c.csv", 1),
    ];
    assert_eq!(reads(&e.stderr(), &dir), counts(&all_once), "start-up");

    // SIGHUP: the whole catalogue again, each file once more.
    e.signal(libc::SIGHUP);
    let twice: Vec<(&str, usize)> = all_once.iter().map(|(f, _)| (*f, 2)).collect();
    poll_until("every file read a second time", DEADLINE, || {
        (reads(&e.stderr(), &dir) == counts(&twice)).then_some(())
    });

    // A watched change of b's data: b alone, its config and its data once each.
    let tmp_csv = dir.join(".b.csv.tmp");
    std::fs::write(&tmp_csv, "year,value\n2025,5\n").unwrap();
    std::fs::rename(&tmp_csv, dir.join("b.csv")).unwrap();
    poll_until("b's new value served", DEADLINE, || {
        let body = e.metrics();
        body.lines()
            .any(|l| l.starts_with("b_rate_ratio{year=\"2025\"} 0.05"))
            .then_some(())
    });
    let mut after = counts(&twice);
    after.insert("b.toml".into(), 3);
    after.insert("b.csv".into(), 3);
    assert_eq!(reads(&e.stderr(), &dir), after, "after b.csv changed");
}

/// `--config.check` of `main` with `--config.max-file-size` at `limit`, which must fail; its
/// stderr.
fn check_fails(main: &Path, limit: u64) -> String {
    let out = run(&[
        "--config.check",
        "--config.max-file-size",
        &limit.to_string(),
        "--config.file",
        main.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_file_size_limit_bounds_every_read() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().canonicalize().unwrap();
    catalogue(&dir);
    let main = dir.join("main.toml");
    let size = |f: &str| std::fs::metadata(dir.join(f)).unwrap().len();
    // Above every data file and below every config file: each config is refused, by name.
    let limit = size("a.csv").max(size("b.csv")) + 1;
    assert!(limit < size("b.toml") && limit < size("main.toml"));
    let stderr = check_fails(&main, limit);
    assert!(
        stderr.contains(&format!(
            "{}: cannot read config file: is {} bytes, expected at most {limit} bytes (--config.max-file-size)",
            main.display(),
            size("main.toml")
        )),
        "{stderr}"
    );
    // With the main file within the limit, the listed and directory datasets' configs are
    // refused, and their data files are not read.
    let limit = size("main.toml");
    let big = "# padding\n".repeat(100);
    for f in ["b.toml", "datasets.d/c.toml"] {
        let text = std::fs::read_to_string(dir.join(f)).unwrap();
        std::fs::write(dir.join(f), format!("{big}{text}")).unwrap();
    }
    let stderr = check_fails(&main, limit);
    for f in ["b.toml", "datasets.d/c.toml"] {
        assert!(size(f) > limit);
        let line = stderr
            .lines()
            .find(|l| {
                l.starts_with(&format!(
                    "{}: cannot read config file: is ",
                    dir.join(f).display()
                ))
            })
            .unwrap_or_else(|| panic!("no error for {f} in\n{stderr}"));
        assert!(
            line.ends_with(&format!(
                "({} bytes), expected at most {limit} bytes (--config.max-file-size)",
                size(f)
            )),
            "{line}"
        );
    }
    assert!(
        !stderr.contains("b.csv") && !stderr.contains("c.csv"),
        "{stderr}"
    );
}
