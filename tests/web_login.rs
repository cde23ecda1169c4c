//! Failed logins limited by client address, against the real server on loopback: a flood of
//! wrong passwords from one address does not hold up another address's first login, and an
//! address past its budget of failures is answered 429 without a password check. Linux
//! routes all of 127.0.0.0/8 to loopback, so each client address is a socket bound to one.

mod common;
mod web_support;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};
use web_support::*;

// "alice:wonderland", "alice:wrong", "bob:builder"
const ALICE: &str = "Authorization: Basic YWxpY2U6d29uZGVybGFuZA==";
const ALICE_WRONG: &str = "Authorization: Basic YWxpY2U6d3Jvbmc=";
const BOB: &str = "Authorization: Basic Ym9iOmJ1aWxkZXI=";

/// The failed checks an address may make before it is locked out (the server's
/// `FAILURE_BUDGET`).
const BUDGET: u64 = 5;

/// A web config whose users' hashes have `cost`: 10 is what `htpasswd -B` and most guides
/// use, tens of milliseconds per check.
fn users_config(dir: &std::path::Path, cost: u32) -> std::path::PathBuf {
    let alice = bcrypt::hash("wonderland", cost).unwrap();
    let bob = bcrypt::hash("builder", cost).unwrap();
    write_config(
        dir,
        &format!("basic_auth_users:\n  alice: '{alice}'\n  bob: '{bob}'\n"),
    )
}

/// An answer: status, lower-cased head, body.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

/// `GET path` over HTTP/1.0 from the loopback address `from`, with an extra header line.
fn get_from(from: Ipv4Addr, server: SocketAddr, path: &str, header: &str) -> Answer {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket
        .bind(&SocketAddrV4::new(from, 0).into())
        .unwrap_or_else(|e| panic!("bind {from}: {e}"));
    socket
        .connect_timeout(&server.into(), Duration::from_secs(10))
        .unwrap();
    let mut s: TcpStream = socket.into();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(format!("GET {path} HTTP/1.0\r\n{header}\r\n\r\n").as_bytes())
        .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    Answer {
        status,
        head: head.to_ascii_lowercase(),
        body: body.to_string(),
    }
}

/// The value of the sample `name` in a `/metrics` body.
fn sample(body: &str, name: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// The login counters, read from `from` with alice's credentials.
fn counters(server: SocketAddr, from: Ipv4Addr) -> (u64, u64) {
    let a = get_from(from, server, "/metrics", ALICE);
    assert_eq!(a.status, 200, "{}", a.head);
    let get = |name| sample(&a.body, name).unwrap_or_else(|| panic!("no {name}")) as u64;
    (
        get("indicator_exporter_http_auth_failures_total"),
        get("indicator_exporter_http_auth_throttled_total"),
    )
}

#[test]
fn a_flood_of_wrong_passwords_does_not_hold_up_another_address() {
    let dir = tempfile::tempdir().unwrap();
    let server = WebServer::start(Some(&users_config(dir.path(), 10)));
    let addr = server.addr();
    let hash = bcrypt::hash("x", 10).unwrap();
    let start = Instant::now();
    assert!(!bcrypt::verify("y", &hash).unwrap());
    let check = start.elapsed();
    let flooder = Ipv4Addr::new(127, 0, 0, 1);
    let stop = Arc::new(AtomicBool::new(false));
    let (sent, refused, throttled) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    // 100 clients sending wrong passwords, one request at a time each, until the end.
    let flood: Vec<_> = (0..100)
        .map(|_| {
            let (stop, sent, refused, throttled) = (
                stop.clone(),
                sent.clone(),
                refused.clone(),
                throttled.clone(),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    sent.fetch_add(1, Ordering::Relaxed);
                    match get_from(flooder, addr, "/metrics", ALICE_WRONG).status {
                        401 => refused.fetch_add(1, Ordering::Relaxed),
                        429 => throttled.fetch_add(1, Ordering::Relaxed),
                        other => panic!("a wrong password answered {other}"),
                    };
                }
            })
        })
        .collect();
    // Every flooding client has a request in, and password checks are being made.
    common::poll_until(
        "100 wrong passwords sent and one refused after a check",
        Duration::from_secs(30),
        || {
            (sent.load(Ordering::Relaxed) >= 100 && refused.load(Ordering::Relaxed) >= 1)
                .then_some(())
        },
    );
    // First logins: nothing is cached yet for alice or bob.
    let mut took = Vec::new();
    for (from, who) in [
        (Ipv4Addr::new(127, 0, 0, 2), ALICE),
        (Ipv4Addr::new(127, 0, 0, 3), BOB),
    ] {
        let start = Instant::now();
        let a = get_from(from, addr, "/-/healthy", who);
        let elapsed = start.elapsed();
        assert_eq!((a.status, a.body.as_str()), (200, "Healthy.\n"), "{from}");
        took.push(elapsed);
    }
    let during = sent.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    for t in flood {
        t.join().unwrap();
    }
    eprintln!(
        "one check takes {check:?}; first logins under the flood took {took:?}; the flood sent {} requests: {} refused after a check, {} answered 429",
        sent.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed),
        throttled.load(Ordering::Relaxed),
    );
    assert!(during > 100, "the flood went on during the logins");
    for t in &took {
        assert!(*t < Duration::from_secs(1), "a first login took {t:?}");
    }
    // The flood cost a few checks, not one per request.
    let (failures, throttled_total) = counters(addr, Ipv4Addr::new(127, 0, 0, 2));
    assert_eq!(failures, refused.load(Ordering::Relaxed) as u64);
    assert_eq!(throttled_total, throttled.load(Ordering::Relaxed) as u64);
    assert!(
        throttled_total > failures,
        "{throttled_total} vs {failures}"
    );
}

#[test]
fn an_address_past_its_budget_gets_429_without_a_password_check() {
    let dir = tempfile::tempdir().unwrap();
    let server = WebServer::start(Some(&users_config(dir.path(), 4)));
    let addr = server.addr();
    let (bad, other) = (Ipv4Addr::new(127, 0, 0, 5), Ipv4Addr::new(127, 0, 0, 6));
    for n in 1..=BUDGET {
        let a = get_from(bad, addr, "/metrics", ALICE_WRONG);
        assert_eq!(a.status, 401, "failure {n}");
    }
    let a = get_from(bad, addr, "/metrics", ALICE_WRONG);
    assert_eq!(a.status, 429, "{}", a.head);
    let retry: u64 = a
        .head
        .lines()
        .find_map(|l| l.strip_prefix("retry-after: "))
        .unwrap_or_else(|| panic!("no Retry-After in {}", a.head))
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "Retry-After: {retry}");
    // Not checked: the right password is refused too, as long as it has not been verified.
    assert_eq!(get_from(bad, addr, "/metrics", ALICE).status, 429);
    // Other addresses log in; the counters show 5 checks failed and 2 logins not checked.
    assert_eq!(counters(addr, other), (BUDGET, 2));
    // Verified credentials cost no check, so they pass from the locked-out address.
    assert_eq!(get_from(bad, addr, "/metrics", ALICE).status, 200);
    assert_eq!(get_from(bad, addr, "/metrics", BOB).status, 429);
    // Once the lock-out is over, the next failure is checked, and locks it out again.
    common::poll_until("the lock-out to end", Duration::from_secs(10), || {
        (get_from(bad, addr, "/metrics", ALICE_WRONG).status == 401).then_some(())
    });
    assert_eq!(get_from(bad, addr, "/metrics", ALICE_WRONG).status, 429);
    let (failures, throttled) = counters(addr, other);
    assert_eq!(failures, BUDGET + 1);
    assert!(throttled >= 4, "{throttled}");
    // A request without credentials is no failure: 401, and nothing counted.
    assert_eq!(get_from(other, addr, "/metrics", "X-None: 1").status, 401);
    assert_eq!(counters(addr, other).0, BUDGET + 1);
}
