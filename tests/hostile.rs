//! Hostile input and bad operating conditions, against the real binary and the in-process
//! server: data files replaced by a FIFO or a device, huge binary files, signals at awkward
//! moments, and churn that would grow the exporter's own metrics.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::exporter::{command, run, BIN};
use common::{poll_until, sample, Exporter, Server};

/// A small valid dataset whose one metric is read from `data.csv` beside it.
const CONFIG: &str = r#"[dataset]
name = "hostile"
title = "Hostile input"
publisher = "Test office"
source_url = "https://example.org/"
published = "2025-01-01"
metric_prefix = "h_"

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

const DATA: &str = "region,year,value\nnorth,2024,12.5\nsouth,2024,40\n";
const SERIES: &str = "h_rate_ratio{region=\"north\",year=\"2024\"}";

/// A temporary directory with `config.toml` (`config`) and `data.csv` (`data`).
fn dataset(config: &str, data: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::write(dir.path().join("config.toml"), config).expect("write config");
    std::fs::write(dir.path().join("data.csv"), data).expect("write data");
    let config = dir.path().join("config.toml");
    (dir, config)
}

fn mkfifo(path: &Path) {
    let ok = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo")
        .success();
    assert!(ok, "mkfifo {}", path.display());
}

/// The exporter keeps serving and stops on SIGTERM after a watched data file was replaced by
/// `replace`, a reload having said `why`.
fn survives_a_data_file_replaced_by(replace: impl FnOnce(&Path), why: &str) {
    let (dir, config) = dataset(CONFIG, DATA.as_bytes());
    let mut r = Exporter::start(&["--config.file", config.to_str().unwrap(), "--config.watch"]);
    assert_eq!(
        sample(&r.get("/metrics").text(), SERIES).as_deref(),
        Some("0.125")
    );
    let data = dir.path().join("data.csv");
    std::fs::remove_file(&data).unwrap();
    replace(&data);
    let failed = r.wait_for_log("reload failed", Duration::from_secs(30));
    assert!(failed.contains(why), "{failed}");
    assert!(
        failed.contains("data.csv"),
        "the error names the file: {failed}"
    );
    // The first "reload failed" line is logged before the reload has ended and set its gauge.
    poll_until(
        "indicator_exporter_config_last_reload_successful 0 after the failed reload",
        Duration::from_secs(20),
        || {
            let body = r.get("/metrics").text();
            (sample(&body, "indicator_exporter_config_last_reload_successful").as_deref()
                == Some("0"))
            .then_some(())
        },
    );
    for _ in 0..3 {
        assert_eq!(r.get("/-/healthy").status, 200);
        let body = r.get("/metrics").text();
        assert_eq!(sample(&body, SERIES).as_deref(), Some("0.125"));
        assert_eq!(
            sample(&body, "indicator_exporter_config_last_reload_successful").as_deref(),
            Some("0")
        );
    }
    r.signal(libc::SIGTERM);
    let status = r.wait_exit(Duration::from_secs(15));
    assert!(status.success(), "{status}\n{}", r.stderr());
}

#[test]
fn a_watched_data_file_replaced_by_a_fifo_leaves_the_exporter_serving_and_stoppable() {
    survives_a_data_file_replaced_by(mkfifo, "is a FIFO (named pipe), expected a regular file");
}

#[test]
fn a_watched_data_file_replaced_by_a_symlink_to_dev_zero_leaves_the_exporter_serving_and_stoppable()
{
    survives_a_data_file_replaced_by(
        |p| std::os::unix::fs::symlink("/dev/zero", p).unwrap(),
        "is a character device, expected a regular file",
    );
}

#[test]
fn config_check_on_a_fifo_fails_at_once_naming_the_file() {
    let (dir, config) = dataset(CONFIG, b"");
    let data = dir.path().join("data.csv");
    std::fs::remove_file(&data).unwrap();
    mkfifo(&data);
    let fifo_config = dir.path().join("fifo.toml");
    mkfifo(&fifo_config);
    for (path, expected) in [
        (
            &config,
            format!("{}:18:16: cannot read samples_file `data.csv`: is a FIFO (named pipe), expected a regular file", config.display()),
        ),
        (
            &fifo_config,
            format!("{}: cannot read config file: is a FIFO (named pipe), expected a regular file", fifo_config.display()),
        ),
    ] {
        let started = Instant::now();
        let mut cmd = command();
        cmd.args(["--config.check", "--config.file", path.to_str().unwrap()]);
        let mut child = Exporter::spawn(cmd);
        let status = child.wait_exit(Duration::from_secs(10));
        let stderr = child.stderr();
        assert_eq!(status.code(), Some(1), "{stderr}");
        assert_eq!(stderr.lines().next(), Some(expected.as_str()), "{stderr}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}

#[test]
fn a_100_mb_data_file_of_nul_bytes_gives_a_short_error_quickly() {
    let (dir, config) = dataset(CONFIG, b"");
    let data = std::fs::File::create(dir.path().join("data.csv")).unwrap();
    data.set_len(100_000_000).unwrap();
    drop(data);
    let started = Instant::now();
    let out = run(&["--config.check", "--config.file", config.to_str().unwrap()]);
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr,
        format!("{c}:18:16: cannot read samples_file `data.csv`: NUL byte at byte 0 (line 1), expected text (is this a binary file?)\n{c}: 1 error(s)\n", c = config.display())
    );
    eprintln!(
        "100 MB of NUL bytes: {} bytes of errors in {took:.2?}",
        out.stderr.len()
    );
    assert!(took < Duration::from_secs(10), "{took:?}");

    // On reload: the answer and the landing page stay small, the last good dataset served.
    std::fs::write(dir.path().join("data.csv"), DATA).unwrap();
    let s = Server::start(&config);
    let data = std::fs::File::create(dir.path().join("data.csv")).unwrap();
    data.set_len(100_000_000).unwrap();
    drop(data);
    let started = Instant::now();
    let r = s.post("/-/reload");
    assert_eq!(r.status, 500);
    assert!(r.body.len() < 1024, "{}", r.text());
    assert!(r.text().contains("NUL byte at byte 0"), "{}", r.text());
    assert!(started.elapsed() < Duration::from_secs(10));
    let page = s.get("/").unwrap();
    assert!(
        page.body.len() < 8192,
        "landing page of {} bytes",
        page.body.len()
    );
    assert!(page.text().contains("NUL byte at byte 0"));
    assert_eq!(sample(&s.metrics(), SERIES).as_deref(), Some("0.125"));
}

#[test]
fn a_file_over_the_size_limit_is_refused_before_it_is_read() {
    let (dir, config) = dataset(CONFIG, DATA.as_bytes());
    let big = std::fs::File::create(dir.path().join("data.csv")).unwrap();
    big.set_len(5 << 20).unwrap();
    drop(big);
    let out = run(&[
        "--config.check",
        "--config.max-file-size=1MiB",
        "--config.file",
        config.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.starts_with(&format!("{}:18:16: cannot read samples_file `data.csv`: is 5 MiB, expected at most 1 MiB (--config.max-file-size)\n", config.display())),
        "{stderr}"
    );
    // The config file itself too.
    let out = run(&[
        "--config.check",
        "--config.max-file-size=100",
        "--config.file",
        config.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = format!(
        "cannot read config file: is {} bytes, expected at most 100 bytes (--config.max-file-size)",
        CONFIG.len()
    );
    assert!(stderr.contains(&expected), "{stderr}");
    let out = run(&["--config.check", "--config.max-file-size=1.5MiB"]);
    assert_eq!(out.status.code(), Some(2), "a bad size is a usage error");
}

#[test]
fn errors_are_bounded_per_file_whatever_their_source() {
    // 300 unknown keys: problems of shape, listed up to the cap and counted beyond it.
    let keys: String = (0..300).map(|i| format!("unknown_{i:03} = 1\n")).collect();
    let config_text = CONFIG.replace("[dataset.period]\n", &format!("{keys}[dataset.period]\n"));
    let (_dir, config) = dataset(&config_text, DATA.as_bytes());
    let errors = indicator_exporter::check(&config).unwrap_err();
    assert_eq!(
        errors.len(),
        indicator_exporter::diagnostic::MAX_ERRORS_PER_FILE + 1
    );
    assert_eq!(
        errors.0.last().unwrap().to_string(),
        format!("{}: … and 200 more problems in this file", config.display())
    );
    // A key of a megabyte is cut to an excerpt.
    let long = format!("{} = 1\n", "k".repeat(1 << 20));
    let (_dir, config) = dataset(
        &CONFIG.replace("[dataset.period]\n", &format!("{long}[dataset.period]\n")),
        DATA.as_bytes(),
    );
    let errors = indicator_exporter::check(&config).unwrap_err().to_string();
    assert!(errors.len() < 1024, "{} bytes", errors.len());
    assert!(errors.contains("unknown field `kkkkkkkkkk"), "{errors}");
}

#[test]
fn sighup_during_a_long_start_up_does_not_end_the_process() {
    // Half a million rows: start-up takes seconds in a debug build.
    let mut data = String::from("region,year,value\n");
    for r in 0..20_000 {
        for y in 2000..2025 {
            data.push_str(&format!("r{r},{y},{}\n", r % 97));
        }
    }
    let (_dir, config) = dataset(&CONFIG.replace("percent", "count"), data.as_bytes());
    let mut cmd = command();
    cmd.args([
        "--web.listen-address",
        "127.0.0.1:0",
        "--log.level",
        "debug",
        "--config.file",
        config.to_str().unwrap(),
    ]);
    let mut r = Exporter::spawn(cmd);
    r.wait_for_log("loading the dataset", Duration::from_secs(30));
    r.signal(libc::SIGHUP);
    r.wait_listening(Duration::from_secs(60));
    assert!(r.exited().is_none(), "{}", r.stderr());
    // The SIGHUP is not lost: it becomes a reload once the reload task listens.
    r.wait_for_log(
        "SIGHUP received during start-up, reloading",
        Duration::from_secs(30),
    );
    r.wait_for_log("msg=\"dataset reloaded\"", Duration::from_secs(60));
    assert_eq!(r.get("/-/healthy").status, 200);
    r.signal(libc::SIGTERM);
    let status = r.wait_exit(Duration::from_secs(15));
    assert!(status.success(), "{status}");
}

#[test]
fn a_second_sigterm_ends_the_graceful_shutdown_at_once() {
    let (_dir, config) = dataset(CONFIG, DATA.as_bytes());
    let mut r = Exporter::start(&["--config.file", config.to_str().unwrap()]);
    // A slow client: half a request, which the graceful shutdown waits for.
    let mut slow = TcpStream::connect(r.addr()).unwrap();
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    // The server has the connection before the signal arrives.
    poll_until(
        "the slow connection to be served",
        Duration::from_secs(10),
        || (r.get("/-/healthy").status == 200).then_some(()),
    );
    r.signal(libc::SIGTERM);
    r.wait_for_log("waiting for open connections", Duration::from_secs(10));
    assert!(
        r.exited().is_none(),
        "the slow connection holds the graceful shutdown"
    );
    let started = Instant::now();
    r.signal(libc::SIGTERM);
    let status = r.wait_exit(Duration::from_secs(5));
    let took = started.elapsed();
    assert_eq!(status.code(), Some(1), "{}", r.stderr());
    assert!(took < Duration::from_secs(3), "{took:?}");
    r.wait_for_log(
        "second signal during shutdown, stopping at once",
        Duration::from_secs(5),
    );
    drop(slow);
}

#[cfg(target_os = "linux")]
#[test]
fn the_open_files_limit_is_raised_to_the_hard_limit() {
    let (_dir, config) = dataset(CONFIG, DATA.as_bytes());
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        "ulimit -S -n 256 && exec \"$0\" \"$@\"",
        BIN,
        "--web.listen-address",
        "127.0.0.1:0",
        "--log.level",
        "debug",
        "--config.file",
        config.to_str().unwrap(),
    ]);
    let mut r = Exporter::spawn(cmd);
    r.wait_listening(Duration::from_secs(60));
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", r.pid())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files");
    let numbers: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_eq!(
        numbers[0], numbers[1],
        "soft limit raised to the hard one: {line}"
    );
    if numbers[1] != "256" {
        let raised = r.wait_for_log("raised the open files limit", Duration::from_secs(5));
        assert!(raised.contains("from=256"), "{raised}");
    }
}

#[test]
fn a_thousand_renames_keep_the_self_metrics_bounded() {
    let config_for = |i: usize| {
        CONFIG
            .replace("name = \"rate\"", &format!("name = \"rate_{i:04}\""))
            .replace("percent", "count")
    };
    let (dir, config) = dataset(&config_for(0), DATA.as_bytes());
    let s = Server::start(&config);
    let first = s.metrics().len();
    let mut sizes = Vec::new();
    let started = Instant::now();
    for i in 1..=1000 {
        std::fs::write(dir.path().join("config.toml"), config_for(i)).unwrap();
        let r = s.post("/-/reload");
        assert_eq!(r.status, 200, "{}", r.text());
        if i % 250 == 0 {
            sizes.push(s.metrics().len());
        }
    }
    let body = s.metrics();
    eprintln!(
        "/metrics: {first} bytes at start, {sizes:?} after 250, 500, 750 and 1000 renames ({:.1?})",
        started.elapsed()
    );
    // The metrics that left last keep their counters, so IndicatorSeriesRemoved fires for them.
    assert!(body.contains(
        "indicator_exporter_series_removed_total{dataset=\"hostile\",metric=\"h_rate_0999\"} 2\n"
    ));
    assert!(!body.contains("metric=\"h_rate_0001\""));
    let kept = body
        .lines()
        .filter(|l| l.starts_with("indicator_exporter_series_removed_total{"))
        .count();
    assert_eq!(kept, indicator_exporter::telemetry::MAX_REMOVED_METRICS + 1);
    // Bounded: the same size after 250 renames as after 1000, whatever the digits of a time.
    let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
    assert!(max - min < 512, "{sizes:?}");
}

/// The dataset's own lines of an exposition (its families and samples), without the
/// exporter's self-metrics, which a failed reload changes on purpose.
fn dataset_lines(body: &str) -> Vec<&str> {
    body.lines()
        .filter(|l| l.starts_with("h_") || l.starts_with("# HELP h_") || l.starts_with("# TYPE h_"))
        .collect()
}

#[test]
fn a_label_value_over_the_length_limit_is_refused_at_its_cell() {
    let huge = "n".repeat(1 << 20);
    let bad = format!("region,year,value\nnorth,2024,12.5\n{huge},2024,40\n");
    let (dir, config) = dataset(CONFIG, bad.as_bytes());
    let errors = indicator_exporter::check(&config).unwrap_err().to_string();
    let data = dir.path().join("data.csv");
    assert_eq!(
        errors,
        format!("{}:3:1: value of label `region` is 1048576 bytes long, expected at most 4096 (max_label_value_length in [dataset])", data.display())
    );

    // The key raises the limit (or lifts it with 0).
    for max in ["1048576", "0"] {
        let raised = CONFIG.replace(
            "metric_prefix = \"h_\"\n",
            &format!("metric_prefix = \"h_\"\nmax_label_value_length = {max}\n"),
        );
        std::fs::write(&config, raised).unwrap();
        indicator_exporter::check(&config).expect("within the raised limit");
    }
    std::fs::write(
        &config,
        CONFIG.replace(
            "metric_prefix = \"h_\"\n",
            "metric_prefix = \"h_\"\nmax_label_value_length = 10\n",
        ),
    )
    .unwrap();
    let errors = indicator_exporter::check(&config).unwrap_err().to_string();
    assert!(
        errors.ends_with("data.csv:3:1: value of label `region` is 1048576 bytes long, expected at most 10 (max_label_value_length in [dataset])"),
        "{errors}"
    );

    // On reload: refused, and the last good data is served as it was.
    std::fs::write(&config, CONFIG).unwrap();
    std::fs::write(&data, DATA).unwrap();
    let s = Server::start(&config);
    let before = s.metrics();
    assert_eq!(sample(&before, SERIES).as_deref(), Some("0.125"));
    std::fs::write(&data, &bad).unwrap();
    let r = s.post("/-/reload");
    assert_eq!(r.status, 500);
    assert!(
        r.text().contains(
            "data.csv:3:1: value of label `region` is 1048576 bytes long, expected at most 4096"
        ),
        "{}",
        r.text()
    );
    let after = s.metrics();
    assert!(after.len() < 64 << 10, "{} bytes", after.len());
    assert_eq!(dataset_lines(&after), dataset_lines(&before));
    assert!(!dataset_lines(&before).is_empty());
    assert_eq!(
        sample(&after, "indicator_exporter_config_last_reload_successful").as_deref(),
        Some("0")
    );
}

#[test]
fn a_display_name_over_the_length_limit_is_refused_at_its_cell() {
    let config_text = CONFIG.replace(
        "samples_file = \"data.csv\"\n",
        "\n[[input]]\nfile = \"data.csv\"\nformat = \"csv\"\nmetric = \"rate\"\ncsv = { names = { region = \"region_name\" } }\n",
    );
    let name = "N".repeat(5000);
    let data =
        format!("region,region_name,year,value\nnorth,North,2024,12.5\nsouth,{name},2024,40\n");
    let (dir, config) = dataset(&config_text, data.as_bytes());
    let errors = indicator_exporter::check(&config).unwrap_err().to_string();
    assert_eq!(
        errors,
        format!("{}:3:7: display name of label `region` is 5000 bytes long, expected at most 4096 (max_label_value_length in [dataset])", dir.path().join("data.csv").display())
    );
    // SDMX-CSV gives names in the code's own cell (`FR: France`).
    let config_text = CONFIG.replace(
        "samples_file = \"data.csv\"\n",
        "\n[[input]]\nfile = \"data.csv\"\nformat = \"sdmx-csv\"\nmetric = \"rate\"\nlabels = { region = \"REF_AREA\", year = \"TIME_PERIOD\" }\nsdmx_csv = { labels = \"both\" }\n",
    );
    let data = format!("STRUCTURE,STRUCTURE_ID,ACTION,REF_AREA: Reference area,TIME_PERIOD: Time,OBS_VALUE\ndataflow,X:Y(1.0),I,DE: Germany,2024,12.5\ndataflow,X:Y(1.0),I,FR: {name},2024,40\n");
    let (dir, config) = dataset(&config_text, data.as_bytes());
    let errors = indicator_exporter::check(&config).unwrap_err().to_string();
    assert_eq!(
        errors,
        format!("{}:3:21: display name of label `region` is 5000 bytes long, expected at most 4096 (max_label_value_length in [dataset])", dir.path().join("data.csv").display())
    );
    // JSON-stat: at the label's JSON path.
    let config_text = CONFIG.replace(
        "samples_file = \"data.csv\"\n",
        "\n[[input]]\nfile = \"data.csv\"\nformat = \"json-stat\"\nmetric = \"rate\"\nlabels = { region = \"geo\", year = \"time\" }\n",
    );
    let data = format!(
        r#"{{"version":"2.0","class":"dataset","id":["geo","time"],"size":[2,1],"dimension":{{"geo":{{"category":{{"index":["DE","FR"],"label":{{"DE":"Germany","FR":"{name}"}}}}}},"time":{{"category":{{"index":["2024"]}}}}}},"value":[12.5,40]}}"#
    );
    let (dir, config) = dataset(&config_text, data.as_bytes());
    let errors = indicator_exporter::check(&config).unwrap_err().to_string();
    assert_eq!(
        errors,
        format!("{}: $.dimension.geo.category.label.FR: display name of label `region` is 5000 bytes long, expected at most 4096 (max_label_value_length in [dataset])", dir.path().join("data.csv").display())
    );
}

/// A dataset read from `data.xml`, an SDMX-ML StructureSpecific message.
const XML_CONFIG: &str = r#"[dataset]
name = "hostile_xml"
title = "Hostile XML"
publisher = "Test office"
source_url = "https://example.org/"
published = "2025-01-01"
metric_prefix = "x_"

[dataset.period]
label = "year"
cadence = "annual"

[[metric]]
name = "rate"
unit = "percent"
help = "A rate."

[[input]]
file = "data.xml"
format = "sdmx-ml"
metric = "rate"
labels = { region = "REF_AREA" }
"#;

const XML_DATA: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<message:StructureSpecificData xmlns:message="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/message">
  <message:DataSet>
    <Series REF_AREA="north"><Obs TIME_PERIOD="2024" OBS_VALUE="12.5"/></Series>
  </message:DataSet>
</message:StructureSpecificData>
"#;

/// Hostile SDMX-ML documents: each refused at once with one positioned error, at
/// `--config.check` and on reload, where the last good data stay served.
#[test]
fn hostile_xml_documents_give_one_positioned_error_and_keep_the_last_good_data() {
    let laughs = format!(
        "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n <!ENTITY lol \"lol\">\n{}]>\n<lolz>&lol9;</lolz>\n",
        (1..10)
            .map(|i| format!(" <!ENTITY lol{i} \"{}\">\n", format!("&lol{};", i - 1).repeat(10)))
            .collect::<String>()
            .replace("&lol0;", "&lol;")
    );
    let external = XML_DATA.replacen(
        "\n",
        "\n<!DOCTYPE m [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>\n",
        1,
    );
    let external = external.replace("\"north\"", "\"&x;\"");
    let deep = format!("<a>\n{}", "<a>".repeat(100_000));
    let truncated = XML_DATA[..XML_DATA.find("OBS_VALUE").unwrap()].to_string();
    let doctype =
        "a DOCTYPE declaration, expected none: DTDs and the entities they declare are refused";
    let cases = [
        (laughs, format!("data.xml:2:1: {doctype}")),
        (external, format!("data.xml:2:1: {doctype}")),
        (
            deep,
            "data.xml:2:190: elements nested deeper than 64 levels, expected an SDMX-ML message (a few levels)".to_string(),
        ),
        (
            truncated,
            "data.xml:4:30: malformed XML: syntax error: tag not closed: `>` not found before end of input, expected a well-formed document".to_string(),
        ),
    ];
    let (dir, config) = dataset(XML_CONFIG, b"");
    std::fs::write(dir.path().join("data.xml"), XML_DATA).unwrap();
    let series = "x_rate_ratio{region=\"north\",year=\"2024\"}";
    let s = Server::start(&config);
    assert_eq!(sample(&s.metrics(), series).as_deref(), Some("0.125"));
    for (text, want) in &cases {
        std::fs::write(dir.path().join("data.xml"), text).unwrap();
        let started = Instant::now();
        let errors = indicator_exporter::check(&config).unwrap_err();
        let took = started.elapsed();
        let lines: Vec<String> = errors.iter().map(|d| d.to_string()).collect();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].ends_with(want.as_str()),
            "{lines:?}, expected {want}"
        );
        assert!(took < Duration::from_secs(1), "{want}: {took:?}");
        let r = s.post("/-/reload");
        assert_eq!(r.status, 500, "{}", r.text());
        assert!(r.text().contains(want.as_str()), "{}", r.text());
        assert_eq!(sample(&s.metrics(), series).as_deref(), Some("0.125"));
    }
}
