//! Several datasets in one daemon: a catalogue of a dataset inline, a listed file and a
//! directory of files. A dataset broken on reload keeps its last good version and leaves the
//! others serving and reloading; a directory gains and loses datasets; names that would clash
//! across datasets are refused with both places; a scrape joins every dataset in one gzip
//! stream.

mod common;

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use common::*;

/// A small dataset `name` with prefix `prefix` and one rate per year.
fn dataset(name: &str, prefix: &str, values: &[(&str, &str)]) -> String {
    let mut s = format!(
        r#"[dataset]
name = "{name}"
title = "Dataset {name}"
publisher = "Test publisher"
source_url = "https://example.org/{name}"
published = "2025-01-15"
metric_prefix = "{prefix}"

[dataset.period]
label = "year"

[[metric]]
name = "rate"
unit = "percent"
help = "A test rate."
labels = ["year"]
samples = [
"#
    );
    for (year, v) in values {
        s.push_str(&format!(
            "  {{ labels = {{ year = \"{year}\" }}, value = {v} }},\n"
        ));
    }
    s.push_str("]\n");
    s
}

struct Catalogue {
    dir: PathBuf,
}

impl Catalogue {
    /// `main.toml` holds dataset `a` inline, lists `listed/b.toml`, and reads `datasets.d/`,
    /// which holds `c.toml`.
    fn new(test: &str) -> Catalogue {
        let dir = std::env::temp_dir().join(format!(
            "indicator_exporter_catalog_{test}_{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("listed")).unwrap();
        std::fs::create_dir_all(dir.join("datasets.d")).unwrap();
        let c = Catalogue { dir };
        c.write_main(&[("2023", "10"), ("2024", "11")]);
        c.write(
            "listed/b.toml",
            &dataset("b", "b_", &[("2023", "20"), ("2024", "21")]),
        );
        c.write(
            "datasets.d/c.toml",
            &dataset("c", "c_", &[("2023", "30"), ("2024", "31")]),
        );
        c
    }

    fn write_main(&self, values: &[(&str, &str)]) {
        let text = format!(
            "[catalog]\ndatasets = [\"listed/b.toml\"]\ndirectory = \"datasets.d\"\n\n{}",
            dataset("a", "a_", values)
        );
        self.write("main.toml", &text);
    }

    fn write(&self, file: &str, text: &str) {
        // Written whole and renamed into place, as editors and ConfigMaps do.
        let tmp = self.dir.join(format!(".{}.tmp", file.replace('/', "_")));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, self.dir.join(file)).unwrap();
    }

    fn main(&self) -> PathBuf {
        self.dir.join("main.toml")
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }
}

impl Drop for Catalogue {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn value(body: &str, series: &str) -> Option<f64> {
    sample(body, series).and_then(|v| v.parse().ok())
}

fn loads(body: &str, dataset: &str, result: &str) -> f64 {
    value(
        body,
        &format!(
            "indicator_exporter_dataset_loads_total{{dataset=\"{dataset}\",result=\"{result}\"}}"
        ),
    )
    .unwrap_or(0.0)
}

#[test]
fn three_datasets_serve_side_by_side_and_a_broken_one_keeps_its_last_good_version() {
    let c = Catalogue::new("three");
    let server = Server::start(&c.main());
    let body = server.metrics();
    for (series, v) in [
        ("a_rate_ratio{year=\"2024\"}", 0.11),
        ("b_rate_ratio{year=\"2024\"}", 0.21),
        ("c_rate_ratio{year=\"2024\"}", 0.31),
    ] {
        assert_eq!(value(&body, series), Some(v), "{series} in\n{body}");
    }
    for d in ["a", "b", "c"] {
        let ready = format!("indicator_exporter_dataset_ready{{dataset=\"{d}\"}}");
        assert_eq!(value(&body, &ready), Some(1.0), "{ready}");
        assert_eq!(loads(&body, d, "success"), 1.0);
    }
    promtool_check_metrics(&body).unwrap();

    // b breaks: a syntax error on line 3. a and c change, and are reloaded all the same.
    c.write("listed/b.toml", "[dataset]\nname = \"b\"\ntitle = \n");
    c.write_main(&[("2023", "10"), ("2024", "12")]);
    c.write(
        "datasets.d/c.toml",
        &dataset("c", "c_", &[("2023", "30"), ("2024", "32")]),
    );
    let r = server.post("/-/reload");
    assert_eq!(r.status, 500, "{}", r.text());
    let b_path = c.path("listed/b.toml").display().to_string();
    assert!(
        r.text().contains(&format!("{b_path}:3:")),
        "the error names b's file and line: {}",
        r.text()
    );
    let body = server.metrics();
    assert_eq!(value(&body, "a_rate_ratio{year=\"2024\"}"), Some(0.12));
    assert_eq!(value(&body, "c_rate_ratio{year=\"2024\"}"), Some(0.32));
    assert_eq!(
        value(&body, "b_rate_ratio{year=\"2024\"}"),
        Some(0.21),
        "b keeps its last good version"
    );
    assert_eq!(
        value(
            &body,
            "indicator_exporter_dataset_last_load_successful{dataset=\"b\"}"
        ),
        Some(0.0)
    );
    assert_eq!(loads(&body, "b", "failure"), 1.0);
    for d in ["a", "c"] {
        let ok = format!("indicator_exporter_dataset_last_load_successful{{dataset=\"{d}\"}}");
        assert_eq!(value(&body, &ok), Some(1.0), "{ok}");
        assert_eq!(loads(&body, d, "success"), 2.0);
    }
    assert_eq!(
        value(&body, "indicator_exporter_config_last_reload_successful"),
        Some(0.0)
    );
    // A revision in a is counted against a alone.
    assert_eq!(
        value(
            &body,
            "indicator_exporter_series_revisions_total{dataset=\"a\",metric=\"a_rate_ratio\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &body,
            "indicator_exporter_series_revisions_total{dataset=\"c\",metric=\"c_rate_ratio\"}"
        ),
        Some(1.0)
    );
    // The index page puts the error first, naming b.
    let index = server.get("/").unwrap().text();
    assert!(index.contains(&b_path), "{index}");
    // Still ready: b is served, in its last good version.
    assert_eq!(server.get("/-/ready").unwrap().status, 200);

    // Fixed: everything is back.
    c.write(
        "listed/b.toml",
        &dataset("b", "b_", &[("2023", "20"), ("2024", "22")]),
    );
    let r = server.post("/-/reload");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("loaded 3 datasets"), "{}", r.text());
    let body = server.metrics();
    assert_eq!(value(&body, "b_rate_ratio{year=\"2024\"}"), Some(0.22));
    assert_eq!(
        value(&body, "indicator_exporter_config_last_reload_successful"),
        Some(1.0)
    );
}

#[test]
fn a_directory_gains_and_loses_datasets() {
    let c = Catalogue::new("directory");
    let server = Server::start(&c.main());
    c.write("datasets.d/d.toml", &dataset("d", "d_", &[("2024", "41")]));
    // Not a dataset file: neither hidden files nor other extensions are read.
    c.write("datasets.d/notes.txt", "not toml");
    let r = server.post("/-/reload");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("loaded 4 datasets"), "{}", r.text());
    let body = server.metrics();
    assert_eq!(value(&body, "d_rate_ratio{year=\"2024\"}"), Some(0.41));
    assert_eq!(
        value(&body, "indicator_exporter_dataset_series{dataset=\"d\"}"),
        Some(1.0)
    );
    assert_eq!(server.get("/datasets/d").unwrap().status, 200);

    std::fs::remove_file(c.path("datasets.d/c.toml")).unwrap();
    let r = server.post("/-/reload");
    assert_eq!(r.status, 200, "{}", r.text());
    let body = server.metrics();
    assert!(
        !body.contains("c_rate_ratio"),
        "c's series are gone:\n{body}"
    );
    assert!(
        !body.contains("dataset=\"c\""),
        "so are c's self-metrics:\n{body}"
    );
    assert!(body.contains("d_rate_ratio"));
    assert_eq!(server.get("/datasets/c").unwrap().status, 404);
    promtool_check_metrics(&body).unwrap();
}

/// What `--config.check` prints on a config it must refuse.
fn check_fails(main: &std::path::Path) -> String {
    let out = common::exporter::command()
        .arg("--config.file")
        .arg(main)
        .arg("--config.check")
        .output()
        .unwrap();
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn names_that_clash_across_datasets_are_refused_with_both_places() {
    let c = Catalogue::new("clash");
    // c takes b's prefix: `b_rate_ratio` twice, and the dataset info families too.
    c.write("datasets.d/c.toml", &dataset("c", "b_", &[("2024", "31")]));
    let err = check_fails(&c.main());
    let (b, cc) = (
        c.path("listed/b.toml").display().to_string(),
        c.path("datasets.d/c.toml").display().to_string(),
    );
    // Where c declares the metric, and where b does.
    let line = err
        .lines()
        .find(|l| l.contains("`b_rate_ratio`") && l.starts_with(&cc))
        .unwrap_or_else(|| panic!("no clash on b_rate_ratio at c's file:\n{err}"));
    assert!(line.starts_with(&format!("{cc}:13:")), "{line}");
    assert!(line.contains(&format!("{b}:13:")), "{line}");
    assert!(line.contains("dataset `b`"), "{line}");

    // Two datasets of one name.
    c.write("datasets.d/c.toml", &dataset("b", "c_", &[("2024", "31")]));
    let err = check_fails(&c.main());
    assert!(
        err.contains(&format!(
            "{cc}: dataset name `b` is also the name of the dataset in {b}"
        )),
        "{err}"
    );

    // On reload, the dataset that changed into a clash is refused; the others stay.
    c.write("datasets.d/c.toml", &dataset("c", "c_", &[("2024", "31")]));
    let server = Server::start(&c.main());
    c.write("datasets.d/c.toml", &dataset("c", "a_", &[("2024", "39")]));
    let r = server.post("/-/reload");
    assert_eq!(r.status, 500);
    assert!(
        r.text().contains("also served by dataset `a`"),
        "{}",
        r.text()
    );
    let body = server.metrics();
    assert_eq!(value(&body, "c_rate_ratio{year=\"2024\"}"), Some(0.31));
    assert_eq!(value(&body, "a_rate_ratio{year=\"2024\"}"), Some(0.11));
    promtool_check_metrics(&body).unwrap();
}

#[test]
fn a_file_change_reloads_only_its_dataset() {
    let c = Catalogue::new("watch");
    let server = Server::start_with(&c.main(), true, true);
    c.write(
        "datasets.d/c.toml",
        &dataset("c", "c_", &[("2023", "30"), ("2024", "35")]),
    );
    let body = poll_until("c's change served", Duration::from_secs(20), || {
        let body = server.metrics();
        (value(&body, "c_rate_ratio{year=\"2024\"}") == Some(0.35)).then_some(body)
    });
    assert_eq!(loads(&body, "c", "success"), 2.0);
    assert_eq!(loads(&body, "a", "success"), 1.0, "a was not reloaded");
    assert_eq!(loads(&body, "b", "success"), 1.0, "b was not reloaded");
    // A new dataset file in the directory is a catalogue change: picked up too.
    c.write("datasets.d/e.toml", &dataset("e", "e_", &[("2024", "51")]));
    poll_until("e served", Duration::from_secs(20), || {
        value(&server.metrics(), "e_rate_ratio{year=\"2024\"}")
    });
}

#[test]
fn one_gzip_stream_carries_every_dataset() {
    let c = Catalogue::new("gzip");
    let server = Server::start(&c.main());
    for accept in [TEXT, OPENMETRICS] {
        let plain = server.get_with("/metrics", &[("Accept", accept)]).body;
        let gz = server.get_with(
            "/metrics",
            &[("Accept", accept), ("Accept-Encoding", "gzip")],
        );
        assert_eq!(gz.header("content-encoding"), Some("gzip"));
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&gz.body[..])
            .read_to_end(&mut out)
            .unwrap();
        let (plain, out) = (
            String::from_utf8(plain).unwrap(),
            String::from_utf8(out).unwrap(),
        );
        // The self-metrics may have moved on between the two; the datasets may not.
        assert_eq!(dataset_part(&plain), dataset_part(&out));
        for p in ["a_rate_ratio", "b_rate_ratio", "c_rate_ratio"] {
            assert!(out.contains(p), "{p}");
        }
        if accept == OPENMETRICS {
            assert_eq!(out.matches("# EOF").count(), 1);
            assert!(out.ends_with("# EOF\n"));
        }
    }
}
