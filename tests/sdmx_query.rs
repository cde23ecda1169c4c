//! SDMX queries and polite fetching against the real binary: a loopback publisher records
//! what the exporter asks (URL, Accept, Accept-Encoding, when) and answers as a service would:
//! data, gzip that inflates past the limit, a queued answer to poll.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::exposition::parse;
use common::publisher::{Answer, Publisher, Seen};
use common::{poll_until_ok, repo, Exporter};

const DEADLINE: Duration = Duration::from_secs(20);

fn start(config: &Path) -> Exporter {
    Exporter::start(&["--config.file", config.to_str().unwrap()])
}

/// Polls the exposition until `name{labels}` is `want`.
fn until_served(e: &Exporter, name: &str, labels: &[(&str, &str)], want: f64) {
    poll_until_ok(
        &format!("{name} {labels:?} = {want}"),
        DEADLINE,
        Duration::from_millis(50),
        || {
            let text = e.metrics();
            match parse(&text).value(name, labels) {
                Some(v) if v == want => Ok(()),
                other => Err(format!("{other:?} in\n{text}")),
            }
        },
    );
}

/// Waits until the publisher has seen `n` requests; returns them.
fn until_seen(p: &Publisher, n: usize) -> Vec<Seen> {
    poll_until_ok(
        &format!("{n} requests"),
        DEADLINE,
        Duration::from_millis(50),
        || {
            let seen = p.seen();
            if seen.len() >= n {
                Ok(seen)
            } else {
                Err(format!("{seen:#?}"))
            }
        },
    )
}

/// What the ECB answers to the query of docs/remote-sources.md, in SDMX-CSV 1.0.
const ECB_CSV: &str =
    "DATAFLOW,FREQ,CURRENCY,CURRENCY_DENOM,EXR_TYPE,EXR_SUFFIX,TIME_PERIOD,OBS_VALUE\n\
ECB:EXR(1.0),M,USD,EUR,SP00,A,2024-01,1.0905\n\
ECB:EXR(1.0),M,JPY,EUR,SP00,A,2024-01,159.46\n";

#[test]
fn the_docs_query_asks_for_its_url_and_media_type_and_is_served() {
    let publisher = Publisher::start(Duration::ZERO, |target, _| {
        if target == "/service/data/EXR/M.USD+JPY.EUR.SP00.A?startPeriod=2020" {
            Answer::ok(ECB_CSV)
        } else {
            Answer::status(404)
        }
    });
    let dir = tempfile::tempdir().unwrap();
    // The example of docs/remote-sources.md as written, its service moved to the loopback
    // publisher.
    let example = std::fs::read_to_string(repo("examples/sdmx-query-ecb.toml")).unwrap();
    let page = common::docs::page("docs/remote-sources.md");
    assert!(
        page.contains(&format!(
            "<!-- file: examples/sdmx-query-ecb.toml -->\n```toml\n{example}```\n"
        )),
        "docs/remote-sources.md shows examples/sdmx-query-ecb.toml as it is"
    );
    let config = dir.path().join("ecb.toml");
    let moved = format!(
        "{example}\n[sdmx.services.ECB]\nurl = \"{}/service\"\n",
        publisher.base()
    );
    std::fs::write(&config, moved).unwrap();
    let e = start(&config);
    until_served(
        &e,
        "ecb_exchange_rate_ratio",
        &[("currency", "USD"), ("month", "2024-01")],
        1.0905,
    );
    let first = &publisher.seen()[0];
    assert_eq!(
        first.target,
        "/service/data/EXR/M.USD+JPY.EUR.SP00.A?startPeriod=2020"
    );
    assert_eq!(first.accept, "application/vnd.sdmx.data+csv;version=1.0.0");
    assert_eq!(first.accept_encoding, "gzip");
}

#[test]
fn a_query_with_structure_fetches_the_dataflow_structure_for_the_names_of_codes() {
    let data = std::fs::read(repo(
        "tests/fixtures/publishers/sdmx-ml/ecb_exr_M.USD.EUR.SP00.A_generic.xml",
    ))
    .unwrap();
    let structure = std::fs::read(repo(
        "tests/fixtures/publishers/sdmx-ml/ecb_exr1_structure_full_with_codelists.xml",
    ))
    .unwrap();
    let publisher = Publisher::start(Duration::ZERO, move |target, _| match target {
        "/service/data/EXR/M.USD.EUR.SP00.A" => Answer::ok(data.clone()),
        "/service/dataflow/ECB/EXR/latest?references=all" => Answer::ok(structure.clone()),
        _ => Answer::status(404),
    });
    let dir = tempfile::tempdir().unwrap();
    let example = std::fs::read_to_string(repo("examples/sdmx-query-ecb.toml")).unwrap();
    let text = example
        .replace("format = \"sdmx-csv\"", "format = \"sdmx-ml\"")
        .replace(
            "key = \"M.USD+JPY.EUR.SP00.A\"",
            "key = \"M.USD.EUR.SP00.A\"",
        )
        .replace("start_period = \"2020\"", "structure = true")
        .replace(
            "labels = { currency = \"CURRENCY\" }",
            "labels = { currency = \"CURRENCY\" }\nunit_codes = { USD = \"ratio\" }",
        );
    let config = dir.path().join("ecb.toml");
    std::fs::write(
        &config,
        format!(
            "{text}\n[sdmx.services.ECB]\nurl = \"{}/service\"\n",
            publisher.base()
        ),
    )
    .unwrap();
    let e = start(&config);
    poll_until_ok(
        "the names of the codes",
        DEADLINE,
        Duration::from_millis(50),
        || {
            let m = e.metrics();
            match parse(&m).value(
                "ecb_currency_info",
                &[("currency", "USD"), ("name_en", "US dollar")],
            ) {
                Some(1.0) => Ok(()),
                other => Err(format!("{other:?} in\n{m}")),
            }
        },
    );
    let targets: Vec<String> = publisher.seen().into_iter().map(|s| s.target).collect();
    assert!(
        targets.contains(&"/service/dataflow/ECB/EXR/latest?references=all".to_string()),
        "{targets:?}"
    );
}

#[test]
fn a_query_that_names_no_known_service_is_refused_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    let example = std::fs::read_to_string(repo("examples/sdmx-query-ecb.toml")).unwrap();
    std::fs::write(
        &config,
        example.replace("service = \"ECB\"", "service = \"ECBB\""),
    )
    .unwrap();
    let out = common::exporter::run(&["--config.check", "--config.file", config.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    let line = example
        .lines()
        .position(|l| l.starts_with("service = "))
        .unwrap()
        + 1;
    assert!(
        stderr.contains(&format!(
            "bad.toml:{line}:11: unknown sdmx service `ECBB`, expected one of ABS, BIS, ECB, ESTAT, ILO, IMF, INSEE, ISTAT, OECD, UNICEF or a [sdmx.services.NAME] table"
        )),
        "{stderr}"
    );
}

/// A dataset named `name` reading `csv` data from `url`, with these `[fetch]` lines.
fn csv_dataset(dir: &Path, name: &str, url: &str, fetch: &str) -> PathBuf {
    let text = format!(
        "[dataset]\nname = \"{name}\"\ntitle = \"t\"\npublisher = \"p\"\nsource_url = \"https://example.org\"\npublished = \"2025-01-01\"\nmetric_prefix = \"{name}_\"\n\n[fetch]\n{fetch}\n[[metric]]\nname = \"widgets\"\nunit = \"count\"\nhelp = \"Widgets.\"\n\n[[input]]\nfile = \"{url}\"\nformat = \"csv\"\nmetric = \"widgets\"\n"
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn csv(v: u32) -> String {
    format!("area,year,value\nAA,2024,{v}\n")
}

#[test]
fn two_datasets_on_one_host_keep_the_minimum_interval_between_requests() {
    let publisher = Publisher::start(Duration::ZERO, |_, n| Answer::ok(csv(n as u32)));
    let dir = tempfile::tempdir().unwrap();
    let fetch = "refresh = \"1s\"\nmin_interval = \"700ms\"\n";
    for name in ["a", "b"] {
        let url = format!("{}/{name}.csv", publisher.base());
        csv_dataset(dir.path(), name, &url, fetch);
    }
    let main = dir.path().join("main.toml");
    std::fs::write(&main, "[catalog]\ndatasets = [\"a.toml\", \"b.toml\"]\n").unwrap();
    let _e = start(&main);
    // Start-up fetches both at once; then each refreshes every second: six requests.
    let seen = until_seen(&publisher, 6);
    let targets: Vec<&str> = seen.iter().map(|s| s.target.as_str()).collect();
    assert!(
        targets.contains(&"/a.csv") && targets.contains(&"/b.csv"),
        "{targets:?}"
    );
    let gaps: Vec<Duration> = seen.windows(2).map(|w| w[1].at - w[0].at).collect();
    // The exporter spaces the sends by 700 ms; the loopback adds a few ms either way.
    assert!(
        gaps.iter().all(|g| *g >= Duration::from_millis(650)),
        "gaps between requests to one host: {gaps:?}"
    );
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn a_gzip_body_over_the_limit_once_decompressed_is_refused_and_the_last_good_data_kept() {
    // 200 KB of rows compress to well under the 4 KiB limit.
    let bomb = format!("area,year,value\n{}", "AA,2024,9\n".repeat(20_000));
    let bomb = gzip(bomb.as_bytes());
    assert!(bomb.len() < 4096, "{}", bomb.len());
    let publisher = Publisher::start(Duration::ZERO, move |_, n| Answer {
        status: 200,
        headers: vec![("Content-Encoding", "gzip".into())],
        body: if n == 1 {
            gzip(csv(2).as_bytes())
        } else {
            bomb.clone()
        },
    });
    let dir = tempfile::tempdir().unwrap();
    let url = format!("{}/data.csv", publisher.base());
    let fetch = "refresh = \"1s\"\nmax_size = \"4KiB\"\n";
    let config = csv_dataset(dir.path(), "gz", &url, fetch);
    let e = start(&config);
    until_served(&e, "gz_widgets", &[("area", "AA"), ("period", "2024")], 2.0);
    e.wait_for_log(
        "the gzip body decompresses to over 4096 bytes, expected at most 4096 (max_size, applied to the decompressed data)",
        DEADLINE,
    );
    let labels = [("dataset", "gz"), ("reason", "too_large"), ("source", &url)];
    poll_until_ok(
        "a too_large failure",
        DEADLINE,
        Duration::from_millis(50),
        || {
            let text = e.metrics();
            let m = parse(&text);
            let failed = m.value("indicator_exporter_source_failures_total", &labels);
            match (
                failed,
                m.value("gz_widgets", &[("area", "AA"), ("period", "2024")]),
            ) {
                (Some(f), Some(v)) if f >= 1.0 && v == 2.0 => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    );
}

/// Eurostat's answer to a query it queues: a SOAP message with the request's key.
const QUEUED: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/"><env:Header/><env:Body>
<ns0:syncResponse xmlns:ns0="http://estat.ec.europa.eu/disschain/soap/extraction">
<queued><id>a1b2-c3d4</id><status>SUBMITTED</status></queued>
</ns0:syncResponse></env:Body></env:Envelope>"#;

fn status_answer(status: &str) -> String {
    format!(
        r#"<env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/"><env:Body><ns0:asyncResponse xmlns:ns0="http://estat.ec.europa.eu/disschain/soap/extraction"><status><key>a1b2-c3d4</key><status>{status}</status></status></ns0:asyncResponse></env:Body></env:Envelope>"#
    )
}

const ESTAT_CSV: &str = "DATAFLOW,LAST UPDATE,freq,s_adj,age,unit,sex,geo,TIME_PERIOD,OBS_VALUE\n\
ESTAT:UNE_RT_M(1.0),01/12/26 11:00:00,M,SA,TOTAL,PC_ACT,T,DE,2024-01,3.1\n";

#[test]
fn a_queued_answer_is_polled_until_the_data_arrives() {
    let publisher = Publisher::start(Duration::ZERO, |target, n| match target {
        "/estat/data/une_rt_m/M.SA.TOTAL.PC_ACT.T.DE?format=SDMX-CSV" => Answer::ok(QUEUED),
        "/async/status/a1b2-c3d4" if n < 3 => Answer::ok(status_answer("PROCESSING")),
        "/async/status/a1b2-c3d4" => Answer::ok(status_answer("AVAILABLE")),
        "/async/data/a1b2-c3d4" => Answer::ok(ESTAT_CSV),
        _ => Answer::status(404),
    });
    let base = publisher.base();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("estat.toml");
    let text = format!(
        r#"[dataset]
name = "estat"
title = "Unemployment"
publisher = "Eurostat"
source_url = "https://ec.europa.eu/eurostat"
published = "2026-12-01"
metric_prefix = "estat_"

[dataset.period]
label = "month"

[sdmx.services.ESTAT]
url = "{base}/estat"
async_status = "{base}/async/status/{{id}}"
async_data = "{base}/async/data/{{id}}"
async_every = "200ms"
min_interval = "0s"

[[metric]]
name = "unemployment_rate"
unit = "percent"
help = "Unemployment rate."

[[input]]
format = "sdmx-csv"
metric = "unemployment_rate"
labels = {{ geo = "geo" }}
[input.query]
service = "ESTAT"
dataflow = "une_rt_m"
key = "M.SA.TOTAL.PC_ACT.T.DE"
"#
    );
    std::fs::write(&config, text).unwrap();
    let e = start(&config);
    until_served(
        &e,
        "estat_unemployment_rate_ratio",
        &[("geo", "DE"), ("month", "2024-01")],
        0.031,
    );
    let asked: Vec<String> = publisher.seen().into_iter().map(|s| s.target).collect();
    assert_eq!(
        asked[..5],
        [
            "/estat/data/une_rt_m/M.SA.TOTAL.PC_ACT.T.DE?format=SDMX-CSV",
            "/async/status/a1b2-c3d4",
            "/async/status/a1b2-c3d4",
            "/async/status/a1b2-c3d4",
            "/async/data/a1b2-c3d4",
        ]
    );
}

#[test]
fn start_up_fetches_different_hosts_at_once_and_one_host_within_its_bound() {
    let slow = Duration::from_millis(800);
    let one = Publisher::start(slow, |_, _| Answer::ok(csv(1)));
    let other = Publisher::start(slow, |_, _| Answer::ok(csv(2)));
    let dir = tempfile::tempdir().unwrap();
    let fetch = "max_concurrent_per_host = 1\n";
    csv_dataset(dir.path(), "a", &format!("{}/a.csv", one.base()), fetch);
    csv_dataset(dir.path(), "b", &format!("{}/b.csv", one.base()), fetch);
    csv_dataset(dir.path(), "c", &format!("{}/c.csv", other.base()), fetch);
    let main = dir.path().join("main.toml");
    std::fs::write(
        &main,
        "[catalog]\ndatasets = [\"a.toml\", \"b.toml\", \"c.toml\"]\n",
    )
    .unwrap();
    let e = start(&main);
    until_served(&e, "c_widgets", &[("area", "AA"), ("period", "2024")], 2.0);
    let (first, second) = match &until_seen(&one, 2)[..] {
        [a, b, ..] => (a.at, b.at),
        seen => panic!("{seen:?}"),
    };
    let c = other.seen()[0].at;
    // One host, one at a time: the second request waits for the first answer.
    assert!(second - first >= slow, "{:?}", second - first);
    // Another host does not wait for the first one's turn.
    let apart = if c > first { c - first } else { first - c };
    assert!(apart < slow / 2, "{apart:?}");
}
