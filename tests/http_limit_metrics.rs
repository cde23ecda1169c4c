//! The HTTP limits' self-metrics, driven over real TCP against the real binary and read back
//! from `/metrics`: scrapes refused by `--web.max-requests`, connections closed by reason, and
//! requests in flight.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::Exporter;

const DEADLINE: Duration = Duration::from_secs(30);

/// A dataset of `series` series in `dir`: at 150,000 its text body (about 9 MB) is more than
/// loopback's socket buffers hold, so a client that does not read stalls its response.
fn write_dataset(dir: &Path, series: usize) -> PathBuf {
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        "[dataset]\nname = \"big\"\ntitle = \"A dataset\"\npublisher = \"Test office\"\nsource_url = \"https://example.org/\"\npublished = \"2025-01-01\"\nmetric_prefix = \"big_\"\n\n[[metric]]\nname = \"load\"\nunit = \"count\"\nhelp = \"A count per host.\"\nlabels = [\"host\", \"year\"]\nsamples_file = \"data.csv\"\n",
    )
    .unwrap();
    let mut csv = String::from("host,year,value\n");
    for i in 0..series {
        csv.push_str(&format!("host-{i:08}.example.org,2024,{i}\n"));
    }
    std::fs::write(dir.join("data.csv"), csv).unwrap();
    config
}

fn connect(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    s
}

/// One request on a new connection that the server closes after it: status and body.
fn request(addr: &str, path: &str) -> (u16, String) {
    let mut s = connect(addr);
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read the response");
    let text = String::from_utf8_lossy(&raw).into_owned();
    // 0: closed unanswered.
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

/// The value of `series` (name and labels as written) in a text exposition.
fn value(body: &str, series: &str) -> Option<f64> {
    let prefix = format!("\n{series} ");
    let at = body.find(&prefix)? + prefix.len();
    body[at..].lines().next()?.parse().ok()
}

fn closed(reason: &str) -> String {
    format!("indicator_exporter_http_connections_closed_total{{reason=\"{reason}\"}}")
}

const REFUSED: &str = "indicator_exporter_http_requests_refused_total";
const IN_FLIGHT: &str = "indicator_exporter_http_requests_in_flight";

/// Scrapes until every `(series, value)` of `want` reads as given.
#[track_caller]
fn until(addr: &str, want: &[(&str, f64)]) -> String {
    common::poll_until(&format!("{want:?}"), DEADLINE, || {
        let (status, body) = request(addr, "/metrics");
        let ok = status == 200 && want.iter().all(|(s, v)| value(&body, s) == Some(*v));
        ok.then_some(body)
    })
}

/// Sends `GET /metrics` on a new connection and never reads; returns once the response has
/// begun to arrive.
fn stalled_scrape(addr: &str) -> TcpStream {
    let mut s = connect(addr);
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut b = [0u8; 1];
    assert_eq!(s.peek(&mut b).unwrap(), 1, "the response has begun");
    s
}

/// Waits until the server closes `s` (reads to its end).
fn wait_closed(mut s: TcpStream) {
    let mut sink = Vec::new();
    let _ = s.read_to_end(&mut sink);
}

#[test]
fn timeouts_and_evictions_are_counted_by_reason() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_dataset(dir.path(), 2);
    let e = Exporter::start(&[
        "--config.file",
        config.to_str().unwrap(),
        "--web.read-header-timeout=300ms",
        "--web.idle-timeout=300ms",
    ]);
    let addr = e.addr();
    let fresh = until(addr, &[(&closed("read_header_timeout"), 0.0)]);
    for r in indicator_exporter::telemetry::CLOSE_REASONS {
        assert_eq!(value(&fresh, &closed(r)), Some(0.0), "{r} starts at 0");
    }
    // No request head: cut at the head deadline.
    wait_closed(connect(addr));
    // One request answered, then nothing: cut at the idle deadline.
    let mut idle = connect(addr);
    idle.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    wait_closed(idle);
    until(
        addr,
        &[
            (&closed("read_header_timeout"), 1.0),
            (&closed("idle_timeout"), 1.0),
            (&closed("max_connections_evicted"), 0.0),
        ],
    );

    let e = Exporter::start(&[
        "--config.file",
        config.to_str().unwrap(),
        "--web.max-connections=2",
    ]);
    let addr = e.addr();
    // Two kept-alive idle connections fill the cap; a scrape makes room by closing one.
    let idle: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut s = connect(addr);
            s.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            let mut b = [0u8; 1];
            assert_eq!(s.peek(&mut b).unwrap(), 1, "answered");
            s
        })
        .collect();
    let (status, _) = request(addr, "/-/healthy");
    assert_eq!(status, 200, "room made for a new connection");
    // The one idle longest was closed.
    let mut idle = idle.into_iter();
    wait_closed(idle.next().expect("two"));
    common::poll_until("the eviction counted", DEADLINE, || {
        let (_, body) = request(addr, "/metrics");
        value(&body, &closed("max_connections_evicted")).filter(|n| *n >= 1.0)
    });
}

#[test]
fn refused_scrapes_and_permits_taken_from_stalled_responses_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_dataset(dir.path(), 150_000);
    let e = Exporter::start(&[
        "--config.file",
        config.to_str().unwrap(),
        "--web.max-requests=1",
    ]);
    let addr = e.addr();
    let stalled = stalled_scrape(addr);
    // Refused until the stalled response has held its permit long enough to lose it.
    let mut refused = 0.0;
    let body = common::poll_until("a scrape to take the permit", DEADLINE, || {
        match request(addr, "/metrics") {
            (503, _) => {
                refused += 1.0;
                None
            }
            (200, body) => Some(body),
            (status, _) => panic!("/metrics answered {status}"),
        }
    });
    assert!(
        refused >= 1.0,
        "the first scrape beside the stalled one is refused"
    );
    assert_eq!(value(&body, REFUSED), Some(refused), "each 503 counted");
    until(
        addr,
        &[(&closed("stalled_permit_taken"), 1.0), (REFUSED, refused)],
    );
    drop(stalled);
}

#[test]
fn requests_in_flight_and_responses_cut_at_the_write_timeout_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_dataset(dir.path(), 150_000);
    let e = Exporter::start(&[
        "--config.file",
        config.to_str().unwrap(),
        "--log.level=debug",
        "--web.write-timeout=5s",
        "--web.max-requests=0",
        "--web.max-connections=3",
    ]);
    let addr = e.addr();
    let stalled = [stalled_scrape(addr), stalled_scrape(addr)];
    // The two stalled scrapes and the one reading.
    until(addr, &[(IN_FLIGHT, 3.0)]);
    // Every connection busy: a new one is closed at once, unanswered.
    let third = stalled_scrape(addr);
    let mut refused = connect(addr);
    let _ = refused.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut got = Vec::new();
    let _ = refused.read_to_end(&mut got);
    assert!(got.is_empty(), "refused without an answer");
    // Unread, they are cut at the write timeout (the log says when; a read would finish them).
    common::poll_until("three responses cut", DEADLINE, || {
        let cut = e
            .stderr()
            .matches("reason=\"response not read in time\"")
            .count();
        (cut >= 3).then_some(())
    });
    until(
        addr,
        &[
            (&closed("write_timeout"), 3.0),
            (&closed("max_connections_refused"), 1.0),
            (IN_FLIGHT, 1.0),
        ],
    );
    drop((stalled, third));
}
