//! The server against slow, idle, stalled, greedy and hostile clients, over real TCP (and TLS)
//! on loopback: request head and idle deadlines, the connection cap, `--web.max-requests`,
//! header and body limits, responses nobody reads (and the memory they hold), and the real
//! binary under 1,100 clients that never read.
//!
//! Tests here run one at a time (they open thousands of sockets, and one measures the heap of
//! this process with a counting allocator).

mod common;
mod web_support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicator_exporter::http::limits::{Limits, STALLED_AFTER};

/// Live heap bytes of this process.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator and only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            LIVE.fetch_add(new_size, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// One test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Series in the big dataset: its text body (about 9 MB) is more than loopback's socket
/// buffers hold, so a client that does not read stalls the response.
const BIG_SERIES: usize = 150_000;

/// Writes a dataset of `series` series, each value `i + offset`, into `dir`.
fn write_big(dir: &Path, series: usize, offset: usize) -> PathBuf {
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        r#"[dataset]
name = "big"
title = "A big dataset"
publisher = "Test office"
source_url = "https://example.org/"
published = "2025-01-01"
metric_prefix = "big_"

[[metric]]
name = "load"
unit = "count"
help = "A count per host."
labels = ["host", "year"]
samples_file = "data.csv"
"#,
    )
    .unwrap();
    let mut csv = String::with_capacity(series * 40);
    csv.push_str("host,year,value\n");
    for i in 0..series {
        csv.push_str(&format!("host-{i:08}.example.org,2024,{}\n", i + offset));
    }
    std::fs::write(dir.join("data.csv"), csv).unwrap();
    config
}

/// Raises this process's soft limit on open files to the hard limit; panics if that is
/// below `need`.
fn raise_open_files(need: u64) {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) }, 0);
    l.rlim_cur = l.rlim_max;
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &l) }, 0);
    assert!(
        l.rlim_max >= need,
        "this test needs {need} open files, the hard limit is {}",
        l.rlim_max
    );
}

/// An exporter in this process with the given limits, stopped on drop.
fn start(config: &Path, web: Option<&Path>, limits: Limits) -> web_support::WebServer {
    web_support::WebServer::start_with_limits(config, web, limits)
}

fn limits(f: impl FnOnce(&mut Limits)) -> Limits {
    let mut l = Limits::default();
    f(&mut l);
    l
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s
}

/// A response: status code, headers (lower-case names), body.
#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// The lines of a body that belong to the big dataset: the exporter's and the process's own
/// metrics were rendered at the time of each response and may differ between two.
fn dataset_lines(r: &Resp) -> Vec<String> {
    r.text()
        .lines()
        .filter(|l| {
            l.starts_with("big_") || l.starts_with("# HELP big_") || l.starts_with("# TYPE big_")
        })
        .map(str::to_owned)
        .collect()
}

/// Reads one response (by Content-Length) off `r`.
fn read_response(r: &mut impl BufRead) -> std::io::Result<Resp> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line: {line:?}")))?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        r.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = vec![0; len];
    r.read_exact(&mut body)?;
    Ok(Resp {
        status,
        headers,
        body,
    })
}

/// Sends `request` on a new connection and reads one response.
fn exchange(addr: SocketAddr, request: &str) -> Resp {
    let mut s = connect(addr);
    s.write_all(request.as_bytes()).unwrap();
    read_response(&mut BufReader::new(s)).unwrap()
}

fn get(addr: SocketAddr, path: &str) -> Resp {
    exchange(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    )
}

/// Reads and discards until the server closes `s`; how long that took from `from`, and the
/// bytes read. Panics if it is still open after `within`.
fn wait_closed(s: &mut impl Read, from: Instant, within: Duration) -> (Duration, usize) {
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0;
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (from.elapsed(), total),
            Ok(n) => total += n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return (from.elapsed(), total),
        }
        assert!(
            from.elapsed() < within,
            "still open after {within:?} ({total} bytes read)"
        );
    }
}

fn short_reads(s: &TcpStream) {
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
}

/// Asserts `took` is the deadline `d`, give or take the slack a loaded 2-core machine
/// running a debug build needs.
fn about(took: Duration, d: Duration, what: &str) {
    assert!(
        took >= d - Duration::from_millis(50) && took < d + Duration::from_secs(3),
        "{what}: closed after {took:?}, expected about {d:?}"
    );
}

const HEAD_DEADLINE: Duration = Duration::from_millis(1500);

#[test]
fn a_stalled_request_head_is_cut_at_the_deadline_while_scrapes_go_on() {
    let _serial = serial();
    let config = common::repo("config.toml");
    let e = start(
        &config,
        None,
        limits(|l| {
            l.read_header_timeout = Some(HEAD_DEADLINE);
            l.idle_timeout = Some(Duration::from_secs(60));
        }),
    );
    let addr = e.addr();
    // Silent from the start; a partial head; a whole request, an idle pause longer than the
    // head deadline, a whole request again, then a partial head.
    let silent = std::thread::spawn(move || {
        let mut s = connect(addr);
        short_reads(&s);
        wait_closed(&mut s, Instant::now(), Duration::from_secs(10))
    });
    let partial = std::thread::spawn(move || {
        let mut s = connect(addr);
        short_reads(&s);
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
        let t = Instant::now();
        // More bytes of the same head do not move its deadline: a client trickling its head
        // (the pause is the behaviour under test, not a wait).
        std::thread::sleep(Duration::from_millis(500));
        s.write_all(b"Accept: */*\r\n").unwrap();
        wait_closed(&mut s, t, Duration::from_secs(10))
    });
    let kept = std::thread::spawn(move || {
        let s = connect(addr);
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut w = s;
        let req = b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n";
        w.write_all(req).unwrap();
        assert_eq!(read_response(&mut r).unwrap().status, 200);
        // Idle for longer than the head deadline: not cut, it is waiting, not sending. (The
        // idleness is the behaviour under test, not a wait.)
        std::thread::sleep(HEAD_DEADLINE + Duration::from_millis(500));
        w.write_all(req).unwrap();
        assert_eq!(read_response(&mut r).unwrap().status, 200);
        w.write_all(b"GET /metrics HTTP/1.1\r\n").unwrap();
        let t = Instant::now();
        short_reads(&w);
        wait_closed(&mut r, t, Duration::from_secs(10))
    });
    // Scrapes meanwhile.
    let mut scrapes = 0;
    while !(silent.is_finished() && partial.is_finished() && kept.is_finished()) {
        let r = get(addr, "/metrics");
        assert_eq!(r.status, 200);
        assert!(r.text().contains("indicator_exporter_build_info"));
        scrapes += 1;
        assert!(scrapes < 10_000, "the stalled clients were never cut");
    }
    let (took, _) = silent.join().unwrap();
    about(took, HEAD_DEADLINE, "silent connection");
    let (took, n) = partial.join().unwrap();
    about(took, HEAD_DEADLINE, "partial head");
    assert_eq!(n, 0, "no response to a partial head");
    let (took, _) = kept.join().unwrap();
    about(took, HEAD_DEADLINE, "partial second head");
    assert!(scrapes > 0);
    eprintln!("head deadline {HEAD_DEADLINE:?}: {scrapes} scrapes served meanwhile");
}

#[test]
fn a_stalled_request_head_over_tls_is_cut_at_the_deadline() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let ca = web_support::Ca::new("test CA");
    ca.server(1).write(dir.path(), "server");
    let web = web_support::write_config(
        dir.path(),
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n",
    );
    let e = start(
        &common::repo("config.toml"),
        Some(&web),
        limits(|l| l.read_header_timeout = Some(HEAD_DEADLINE)),
    );
    let client = web_support::client(&ca.der(), None, &[b"http/1.1"]);
    let tls = |bytes: &'static [u8]| {
        let client = client.clone();
        let addr = e.addr();
        std::thread::spawn(move || {
            let tcp = connect(addr);
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let conn = rustls::ClientConnection::new(client, name).unwrap();
            let mut s = rustls::StreamOwned::new(conn, tcp);
            while s.conn.is_handshaking() {
                s.conn.complete_io(&mut s.sock).unwrap();
            }
            let t = Instant::now();
            s.write_all(bytes).unwrap();
            s.flush().unwrap();
            short_reads(&s.sock);
            wait_closed(&mut s, t, Duration::from_secs(10))
        })
    };
    let silent = tls(b"");
    let partial = tls(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n");
    let mut scrapes = 0;
    while !(silent.is_finished() && partial.is_finished()) {
        let r = web_support::get(e.addr(), &client, "/metrics", &[]).unwrap();
        assert_eq!(r.status, 200);
        scrapes += 1;
        assert!(scrapes < 10_000, "the stalled clients were never cut");
    }
    let (took, n) = silent.join().unwrap();
    about(took, HEAD_DEADLINE, "silent TLS connection");
    assert_eq!(n, 0);
    let (took, n) = partial.join().unwrap();
    about(took, HEAD_DEADLINE, "partial head over TLS");
    assert_eq!(n, 0);
    assert!(scrapes > 0);
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let _serial = serial();
    let idle = Duration::from_millis(1500);
    let e = start(
        &common::repo("config.toml"),
        None,
        limits(|l| l.idle_timeout = Some(idle)),
    );
    let s = connect(e.addr());
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut w = s;
    let req = b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n";
    // Requests closer together than the idle timeout keep it open well past it (the pauses
    // between them are the behaviour under test).
    let start = Instant::now();
    while start.elapsed() < idle * 2 {
        w.write_all(req).unwrap();
        assert_eq!(read_response(&mut r).unwrap().status, 200);
        std::thread::sleep(idle / 3);
    }
    w.write_all(req).unwrap();
    assert_eq!(read_response(&mut r).unwrap().status, 200);
    let t = Instant::now();
    short_reads(&w);
    let (took, n) = wait_closed(&mut r, t, Duration::from_secs(10));
    about(took, idle, "idle connection");
    assert_eq!(n, 0);
}

#[test]
fn two_thousand_idle_connections_do_not_stop_a_scrape() {
    let _serial = serial();
    // Both ends of every connection are in this process.
    raise_open_files(4 * 1024 + 512);
    let e = start(&common::repo("config.toml"), None, Limits::default());
    let first = get(e.addr(), "/metrics");
    assert_eq!(first.status, 200);
    let started = Instant::now();
    // Half kept alive after a request, half connected and silent.
    let mut idle = Vec::new();
    for i in 0..2000 {
        let mut s = connect(e.addr());
        if i % 2 == 0 {
            s.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            assert_eq!(read_response(&mut r).unwrap().status, 200, "connection {i}");
        }
        idle.push(s);
    }
    let opened = started.elapsed();
    let mut latencies = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let r = get(e.addr(), "/metrics");
        latencies.push(t.elapsed());
        assert_eq!(r.status, 200);
        // The whole dataset; the self-metrics (open file descriptors) have moved on.
        let text = |b: &[u8]| common::dataset_part(&String::from_utf8_lossy(b));
        assert_eq!(text(&r.body), text(&first.body));
    }
    // The kept-alive ones are still open and serve.
    for s in idle.iter_mut().step_by(2).take(20) {
        s.write_all(b"GET /-/ready HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        assert_eq!(read_response(&mut r).unwrap().status, 200);
    }
    latencies.sort();
    eprintln!(
        "2,000 idle connections opened in {opened:?}; /metrics with them open: median {:?}, max {:?}",
        latencies[2], latencies[4]
    );
}

#[test]
fn at_the_connection_cap_the_longest_idle_connection_makes_room() {
    let _serial = serial();
    let e = start(
        &common::repo("config.toml"),
        None,
        limits(|l| l.max_connections = 20),
    );
    let mut idle = Vec::new();
    for _ in 0..20 {
        let mut s = connect(e.addr());
        s.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        assert_eq!(read_response(&mut r).unwrap().status, 200);
        idle.push(r);
    }
    let r = get(e.addr(), "/metrics");
    assert_eq!(r.status, 200);
    // The first (longest idle) was closed to make room; the last is still open.
    let t = Instant::now();
    short_reads(idle[0].get_ref());
    wait_closed(&mut idle[0], t, Duration::from_secs(5));
    let last = idle.last_mut().unwrap();
    last.get_mut()
        .write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(last).unwrap().status, 200);
}

/// Sends `GET /metrics` on a new connection and never reads; returns once the response has
/// begun to arrive.
fn stalled_scrape(addr: SocketAddr) -> TcpStream {
    let mut s = connect(addr);
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut b = [0u8; 1];
    assert_eq!(s.peek(&mut b).unwrap(), 1, "the response has begun");
    s
}

#[test]
fn when_every_connection_is_busy_new_ones_are_closed_at_once() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let config = write_big(dir.path(), BIG_SERIES, 0);
    let e = start(
        &config,
        None,
        limits(|l| {
            l.max_connections = 10;
            l.max_requests = 0;
        }),
    );
    let mut stalled: Vec<TcpStream> = (0..10).map(|_| stalled_scrape(e.addr())).collect();
    let t = Instant::now();
    let mut refused = connect(e.addr());
    let _ = refused.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n");
    let (took, n) = wait_closed(&mut refused, t, Duration::from_secs(5));
    assert_eq!(n, 0, "refused without an answer");
    assert!(
        took < Duration::from_secs(2),
        "refused at once, took {took:?}"
    );
    // One busy connection ends: there is room again.
    drop(stalled.pop());
    common::poll_until("room for a connection", Duration::from_secs(10), || {
        let mut s = connect(e.addr());
        s.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .ok()?;
        let r = read_response(&mut BufReader::new(s)).ok()?;
        (r.status == 200).then_some(())
    });
}

/// A client that reads its scrape slowly (16 KiB every 50 ms) until told to stop.
struct SlowReader {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SlowReader {
    fn start(addr: SocketAddr) -> SlowReader {
        let mut s = stalled_scrape(addr);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 16 * 1024];
            while !flag.load(Ordering::Relaxed) {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => panic!("the server closed a slow but reading client"),
                    // A slow reader: the pause is its behaviour, not a wait.
                    Ok(_) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        });
        SlowReader {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for SlowReader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let r = t.join();
            if !std::thread::panicking() {
                r.unwrap();
            }
        }
    }
}

#[test]
fn max_requests_answers_503_beyond_the_limit_at_once_and_recovers() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let config = write_big(dir.path(), BIG_SERIES, 0);
    let e = start(&config, None, limits(|l| l.max_requests = 3));
    // Three slow scrapes, each taking half a minute: reading, so never taken over.
    let slow: Vec<SlowReader> = (0..3).map(|_| SlowReader::start(e.addr())).collect();
    let t = Instant::now();
    let busy = get(e.addr(), "/metrics");
    assert_eq!(busy.status, 503);
    assert!(t.elapsed() < Duration::from_secs(2), "503 at once");
    assert_eq!(
        busy.text(),
        "Limit of concurrent requests reached (3), try again later.\n"
    );
    // Other endpoints are not limited.
    assert_eq!(get(e.addr(), "/-/healthy").status, 200);
    assert_eq!(get(e.addr(), "/").status, 200);
    // Still 503, past the time after which a response nobody reads would give up its
    // permit: these are read, if slowly.
    let t = Instant::now();
    while t.elapsed() < STALLED_AFTER + Duration::from_secs(1) {
        assert_eq!(get(e.addr(), "/metrics").status, 503);
        // Spaces the checks over the span in which it must stay 503; not a wait.
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(slow);
    common::poll_until("a scrape to get through", Duration::from_secs(10), || {
        let r = get(e.addr(), "/metrics");
        (r.status == 200).then_some(r)
    });
}

#[test]
fn a_scrape_takes_the_permit_of_a_response_nobody_reads() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let config = write_big(dir.path(), BIG_SERIES, 0);
    let e = start(&config, None, limits(|l| l.max_requests = 2));
    let started = Instant::now();
    let mut stalled: Vec<TcpStream> = (0..2).map(|_| stalled_scrape(e.addr())).collect();
    assert_eq!(
        get(e.addr(), "/metrics").status,
        503,
        "not stalled long yet"
    );
    let (took, r) = common::poll_until("a scrape to get through", Duration::from_secs(15), || {
        let r = get(e.addr(), "/metrics");
        (r.status == 200).then(|| (started.elapsed(), r))
    });
    assert!(took >= STALLED_AFTER, "took over after {took:?}");
    assert!(
        took < STALLED_AFTER + Duration::from_secs(5),
        "took {took:?}, well before the write timeout"
    );
    assert!(r
        .text()
        .contains("big_load{host=\"host-00000000.example.org\",year=\"2024\"} 0"));
    // Exactly one of the stalled responses was closed; the other is still being sent.
    let mut cut = 0;
    for s in &mut stalled {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        match read_response(&mut BufReader::new(&*s)) {
            Ok(whole) => {
                assert_eq!(whole.status, 200);
                let (got, want) = (dataset_lines(&whole), dataset_lines(&r));
                assert_eq!(got.len(), want.len(), "the whole dataset was sent");
                assert!(got == want, "the stalled response carries the same samples");
            }
            Err(_) => cut += 1,
        }
    }
    assert_eq!(cut, 1);
}

#[test]
fn request_bodies_are_refused_unread_with_413() {
    let _serial = serial();
    let e = start(&common::repo("config.toml"), None, Limits::default());
    for (what, request) in [
        (
            "a reload with a body",
            "POST /-/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
        ),
        (
            "a scrape with a chunked body",
            "GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        ),
        (
            "a body of 10 GB announced and never sent",
            "POST /-/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000000\r\n\r\n",
        ),
        (
            "a body behind Expect: 100-continue",
            "PUT /-/reload HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 100\r\n\r\n",
        ),
    ] {
        let t = Instant::now();
        let mut s = connect(e.addr());
        s.write_all(request.as_bytes()).unwrap();
        let mut r = BufReader::new(s);
        let resp = read_response(&mut r).unwrap();
        assert_eq!(resp.status, 413, "{what}");
        assert_eq!(resp.text(), "Request body not accepted.\n", "{what}");
        assert_eq!(resp.header("connection"), Some("close"), "{what}");
        short_reads(r.get_ref());
        wait_closed(&mut r, t, Duration::from_secs(5));
        assert!(t.elapsed() < Duration::from_secs(3), "{what}: answered at once");
    }
    // A chunked body that never comes is refused once it has had a second to show it is
    // empty.
    let t = Instant::now();
    let r = exchange(
        e.addr(),
        "POST /-/reload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    assert_eq!(r.status, 413);
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    // An empty body is no body: by length, or a chunked body that ends at once (as some
    // clients send every POST).
    for request in [
        "POST /-/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        "POST /-/reload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n",
    ] {
        let r = exchange(e.addr(), request);
        assert_eq!(r.status, 200, "{request:?}: {}", r.text());
    }
}

#[test]
fn oversized_request_heads_get_431() {
    let _serial = serial();
    let e = start(&common::repo("config.toml"), None, Limits::default());
    let with = |headers: &str| {
        exchange(
            e.addr(),
            &format!("GET /-/healthy HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n"),
        )
    };
    let token = "a".repeat(8 * 1024);
    assert_eq!(
        with(&format!("Authorization: Bearer {token}\r\n")).status,
        200
    );
    let huge = "a".repeat(20 * 1024);
    assert_eq!(with(&format!("X-Big: {huge}\r\n")).status, 431);
    let many: String = (0..101).map(|i| format!("X-H{i}: v\r\n")).collect();
    assert_eq!(with(&many).status, 431);
    // A head that never ends is answered at the size limit, not read on forever.
    let mut s = connect(e.addr());
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    let line = format!("X-Filler: {}\r\n", "b".repeat(1000));
    for _ in 0..64 {
        if s.write_all(line.as_bytes()).is_err() {
            break;
        }
    }
    let r = read_response(&mut BufReader::new(s)).unwrap();
    assert_eq!(r.status, 431);
    assert_eq!(get(e.addr(), "/-/healthy").status, 200);
}

#[test]
fn responses_nobody_reads_are_cut_at_the_write_timeout_and_their_memory_freed() {
    let _serial = serial();
    let write = Duration::from_secs(10);
    let dir = tempfile::tempdir().unwrap();
    let config = write_big(dir.path(), BIG_SERIES, 0);
    let e = start(
        &config,
        None,
        limits(|l| {
            l.write_timeout = Some(write);
            l.max_requests = 0;
        }),
    );
    let full = get(e.addr(), "/metrics").body.len();
    let before = LIVE.load(Ordering::Relaxed);
    let started = Instant::now();
    let mut stalled: Vec<TcpStream> = (0..8).map(|_| stalled_scrape(e.addr())).collect();
    // A new dataset: the old one's body now lives only in the responses nobody reads.
    write_big(dir.path(), BIG_SERIES, 1);
    let r = exchange(
        e.addr(),
        "POST /-/reload HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let pinned = LIVE.load(Ordering::Relaxed);
    assert!(
        started.elapsed() < write,
        "the reload took longer than the write timeout: the test proves nothing"
    );
    // Held: the old text body (and the new one's being the same size, nothing else grew much).
    assert!(
        pinned > before + full * 8 / 10,
        "the stalled responses hold the old body: {before} -> {pinned} bytes, body {full}"
    );
    let freed_at = common::poll_until("the stalled responses to be dropped", write * 3, || {
        let now = LIVE.load(Ordering::Relaxed);
        (now + full * 8 / 10 < pinned).then(|| (started.elapsed(), now))
    });
    assert!(
        freed_at.0 >= write - Duration::from_millis(100),
        "freed after {:?}, before the write timeout",
        freed_at.0
    );
    // Each was cut: what had reached its socket, then the end.
    for s in &mut stalled {
        short_reads(s);
        let (_, n) = wait_closed(s, Instant::now(), Duration::from_secs(10));
        assert!(
            n < full,
            "a whole response ({n} bytes) reached a stalled client"
        );
    }
    eprintln!(
        "{} stalled readers: heap {:.1} MB before the reload, {:.1} MB while they held the old body, {:.1} MB {:.1?} later, after the write timeout ({write:?}); body {:.1} MB",
        8,
        before as f64 / 1e6,
        pinned as f64 / 1e6,
        freed_at.1 as f64 / 1e6,
        freed_at.0,
        full as f64 / 1e6
    );
    assert_eq!(get(e.addr(), "/metrics").status, 200);
}

/// Starts the binary with a soft open files limit of `soft`, as a shell's `ulimit -S -n`
/// would leave it, and waits until it listens.
fn spawn_with_soft_limit(soft: u64, args: &[&str]) -> (common::Exporter, SocketAddr) {
    use std::os::unix::process::CommandExt;
    let mut cmd = common::exporter::command();
    cmd.args(["--web.listen-address", "127.0.0.1:0"]).args(args);
    // SAFETY: getrlimit and setrlimit are async-signal-safe and touch only the struct passed.
    unsafe {
        cmd.pre_exec(move || {
            let mut l = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            l.rlim_cur = soft.min(l.rlim_max);
            if libc::setrlimit(libc::RLIMIT_NOFILE, &l) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    // Killed on drop, should start-up fail.
    let mut b = common::Exporter::spawn(cmd);
    let addr: SocketAddr = b
        .wait_listening(Duration::from_secs(60))
        .parse()
        .expect("a socket address");
    common::poll_until("the exporter to answer", Duration::from_secs(30), || {
        let answer = web_support::raw(addr, b"GET /-/ready HTTP/1.0\r\n\r\n");
        (answer.starts_with("HTTP/1.") && answer.contains(" 200 OK")).then_some(())
    });
    (b, addr)
}

#[test]
fn eleven_hundred_clients_that_never_read_do_not_block_health_checks() {
    let _serial = serial();
    raise_open_files(2048);
    let dir = tempfile::tempdir().unwrap();
    let config = write_big(dir.path(), BIG_SERIES, 0);
    let (b, addr) = spawn_with_soft_limit(1024, &["--config.file", config.to_str().unwrap()]);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", b.pid())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let n: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_eq!(n[0], n[1], "the exporter raised its soft limit: {line}");
    let started = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..1100 {
        let mut s = connect(addr);
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        clients.push(s);
    }
    let opened = started.elapsed();
    let t = Instant::now();
    let r = get(addr, "/-/healthy");
    let health = t.elapsed();
    assert_eq!((r.status, r.text().as_str()), (200, "Healthy.\n"));
    assert!(
        health < Duration::from_secs(2),
        "/-/healthy took {health:?}"
    );
    // 40 of them hold the scrape permits and read nothing: a scrape takes one over, long
    // before the 30 s write timeout would free it.
    let back = common::poll_until("a scrape to get through", Duration::from_secs(25), || {
        let r = get(addr, "/metrics");
        (r.status == 200).then(|| started.elapsed())
    });
    eprintln!(
        "1,100 clients that never read (opened in {opened:?}): /-/healthy in {health:?}; a scrape answered 200 after {back:?} (stalled {STALLED_AFTER:?} before takeover, write timeout 30s)"
    );
    drop(clients);
}
