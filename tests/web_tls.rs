//! TLS from the exporter-toolkit web config (`--web.config.file`), against the real server on
//! loopback: scrapes over TLS, plain HTTP on the TLS port, client certificates and allowed
//! SANs, HTTP/2 by ALPN, certificate rotation and reloads, several and dual-stack listeners.

mod common;
mod web_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use common::exporter::{command, BIN};
use common::{poll_until, require_tool, Exporter};

use indicator_exporter::http::web::TLS_HANDSHAKE_TIMEOUT;
use rcgen::SanType;
use web_support::*;

fn tls_config(dir: &std::path::Path, extra: &str) -> std::path::PathBuf {
    write_config(
        dir,
        &format!("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n{extra}"),
    )
}

#[test]
fn scrapes_over_tls_and_the_served_certificate_is_the_configured_one() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    let server_cert = ca.server(1001);
    server_cert.write(dir.path(), "server");
    let server = WebServer::start(Some(&tls_config(dir.path(), "")));
    let client = client(&ca.der(), None, &[]);
    let r = get(server.addr(), &client, "/metrics", &[]).expect("TLS scrape");
    assert_eq!(r.status, 200);
    assert!(
        r.body
            .contains("cnipa_enterprise_invention_patent_industrialization_ratio"),
        "{}",
        &r.body[..200.min(r.body.len())]
    );
    assert_eq!(r.server_cert, server_cert.der);
    // A client that does not trust the CA refuses the server.
    let stranger = Ca::new("other CA");
    let err = get(server.addr(), &client_for(&stranger), "/metrics", &[]).unwrap_err();
    assert!(err.contains("invalid peer certificate"), "{err}");
}

fn client_for(ca: &Ca) -> std::sync::Arc<rustls::ClientConfig> {
    client(&ca.der(), None, &[])
}

#[test]
fn plain_http_to_the_tls_port_is_told_and_closed_and_tls_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    ca.server(1).write(dir.path(), "server");
    let server = WebServer::start(Some(&tls_config(dir.path(), "")));
    let answer = raw(
        server.addr(),
        b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n",
    );
    assert!(
        answer.starts_with("HTTP/1.0 400 Bad Request\r\n"),
        "{answer:?}"
    );
    assert!(answer.ends_with("Client sent an HTTP request to an HTTPS server.\n"));
    // Garbage that is neither TLS nor HTTP: at most a TLS alert record (type 21), then closed.
    let garbage = raw(server.addr(), b"\x00\x01\x02\x03");
    assert!(
        garbage.is_empty() || garbage.starts_with('\u{15}'),
        "{garbage:?}"
    );
    let r = get(server.addr(), &client_for(&ca), "/-/healthy", &[]).unwrap();
    assert_eq!((r.status, r.body.as_str()), (200, "Healthy.\n"));
}

#[test]
fn a_client_that_never_finishes_the_handshake_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    ca.server(1).write(dir.path(), "server");
    let server = WebServer::start(Some(&tls_config(dir.path(), "")));
    let started = Instant::now();
    let mut s = TcpStream::connect(server.addr()).unwrap();
    // The start of a TLS record, then nothing.
    s.write_all(&[0x16, 0x03, 0x01]).unwrap();
    s.set_read_timeout(Some(TLS_HANDSHAKE_TIMEOUT + Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf);
    let waited = started.elapsed();
    assert!(
        matches!(n, Ok(0))
            || n.as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "expected the server to close the connection, got {n:?} after {waited:?}"
    );
    assert!(
        waited >= TLS_HANDSHAKE_TIMEOUT - Duration::from_millis(100)
            && waited < TLS_HANDSHAKE_TIMEOUT + Duration::from_secs(5),
        "closed after {waited:?}, expected about {TLS_HANDSHAKE_TIMEOUT:?}"
    );
    // Others were served meanwhile and still are.
    assert_eq!(
        get(server.addr(), &client_for(&ca), "/-/ready", &[])
            .unwrap()
            .status,
        200
    );
}

#[test]
fn client_certificates_are_required_and_verified() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    ca.server(1).write(dir.path(), "server");
    std::fs::write(dir.path().join("ca.crt"), ca.pem()).unwrap();
    let web = tls_config(
        dir.path(),
        "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n",
    );
    let server = WebServer::start(Some(&web));

    let anonymous = get(server.addr(), &client_for(&ca), "/metrics", &[]).unwrap_err();
    assert!(
        anonymous.contains("CertificateRequired") || anonymous.contains("HandshakeFailure"),
        "{anonymous}"
    );
    let other_ca = Ca::new("other CA");
    let forged = other_ca.client("scraper.example.org");
    let err = get(
        server.addr(),
        &client(&ca.der(), Some(&forged), &[]),
        "/metrics",
        &[],
    )
    .unwrap_err();
    assert!(
        err.contains("UnknownCA") || err.contains("BadCertificate"),
        "{err}"
    );
    let good = ca.client("scraper.example.org");
    let r = get(
        server.addr(),
        &client(&ca.der(), Some(&good), &[]),
        "/metrics",
        &[],
    )
    .unwrap();
    assert_eq!(r.status, 200);
}

#[test]
fn verify_if_given_lets_anonymous_clients_in_and_checks_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    ca.server(1).write(dir.path(), "server");
    std::fs::write(dir.path().join("ca.crt"), ca.pem()).unwrap();
    let web = tls_config(
        dir.path(),
        "  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ca.crt\n",
    );
    let server = WebServer::start(Some(&web));
    assert_eq!(
        get(server.addr(), &client_for(&ca), "/metrics", &[])
            .unwrap()
            .status,
        200
    );
    let forged = Ca::new("other CA").client("x.example");
    assert!(get(
        server.addr(),
        &client(&ca.der(), Some(&forged), &[]),
        "/metrics",
        &[]
    )
    .is_err());
}

#[test]
fn client_allowed_sans_refuse_other_names() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    ca.server(1).write(dir.path(), "server");
    std::fs::write(dir.path().join("ca.crt"), ca.pem()).unwrap();
    let web = tls_config(
        dir.path(),
        "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  client_allowed_sans:\n    - scraper.example.org\n    - spiffe://example.org/prometheus\n",
    );
    let server = WebServer::start(Some(&web));
    let wrong = ca.client("intruder.example.org");
    let err = get(
        server.addr(),
        &client(&ca.der(), Some(&wrong), &[]),
        "/metrics",
        &[],
    )
    .unwrap_err();
    assert!(err.contains("alert"), "{err}");
    for (what, cert) in [
        ("DNS SAN", ca.client("scraper.example.org")),
        (
            "URI SAN",
            ca.client_with(vec![
                SanType::DnsName("elsewhere.example".try_into().unwrap()),
                SanType::URI("spiffe://example.org/prometheus".try_into().unwrap()),
            ]),
        ),
    ] {
        let r = get(
            server.addr(),
            &client(&ca.der(), Some(&cert), &[]),
            "/metrics",
            &[],
        )
        .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(r.status, 200, "{what}");
    }
    // Without a certificate, there is no SAN to allow.
    assert!(get(server.addr(), &client_for(&ca), "/metrics", &[]).is_err());
}

#[test]
fn http2_is_offered_by_alpn_unless_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    ca.server(1).write(dir.path(), "server");
    let both: &[&[u8]] = &[b"h2", b"http/1.1"];
    let server = WebServer::start(Some(&tls_config(dir.path(), "")));
    assert_eq!(
        handshake(server.addr(), &client(&ca.der(), None, both)).unwrap(),
        Some(b"h2".to_vec())
    );
    drop(server);
    let web = tls_config(dir.path(), "http_server_config:\n  http2: false\n");
    let server = WebServer::start(Some(&web));
    assert_eq!(
        handshake(server.addr(), &client(&ca.der(), None, both)).unwrap(),
        Some(b"http/1.1".to_vec())
    );
    let r = get(
        server.addr(),
        &client(&ca.der(), None, &[b"http/1.1"]),
        "/-/ready",
        &[],
    )
    .unwrap();
    assert_eq!(r.status, 200);
}

#[test]
fn a_replaced_certificate_is_served_after_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    let first = ca.server(1001);
    first.write(dir.path(), "server");
    let server = WebServer::start(Some(&tls_config(dir.path(), "")));
    let c = client_for(&ca);
    let before = get(server.addr(), &c, "/-/ready", &[]).unwrap();
    assert_eq!(serial(&before.server_cert), serial(&first.der));

    let second = ca.server(2002);
    // Written to new files, then renamed over the old ones, as cert-manager and certbot do.
    second.write(dir.path(), "next");
    std::fs::rename(dir.path().join("next.key"), dir.path().join("server.key")).unwrap();
    std::fs::rename(dir.path().join("next.crt"), dir.path().join("server.crt")).unwrap();
    let r = send(server.addr(), &c, "POST", "/-/reload", &[]).unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let after = get(server.addr(), &c, "/-/ready", &[]).unwrap();
    assert_eq!(serial(&after.server_cert), serial(&second.der));
    assert_ne!(serial(&after.server_cert), serial(&before.server_cert));

    // A config that names other files takes effect by the reload alone.
    let third = ca.server(3003);
    third.write(dir.path(), "third");
    std::fs::write(
        dir.path().join("web.yml"),
        "tls_server_config:\n  cert_file: third.crt\n  key_file: third.key\n",
    )
    .unwrap();
    let r = get(server.addr(), &c, "/-/ready", &[]).unwrap();
    assert_eq!(
        serial(&r.server_cert),
        serial(&second.der),
        "before the reload"
    );
    let r = send(server.addr(), &c, "POST", "/-/reload", &[]).unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let r = get(server.addr(), &c, "/-/ready", &[]).unwrap();
    assert_eq!(serial(&r.server_cert), serial(&third.der));
}

#[test]
fn a_replaced_certificate_is_served_without_a_reload_once_both_files_match() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    let first = ca.server(1001);
    first.write(dir.path(), "server");
    let server = WebServer::start(Some(&tls_config(dir.path(), "")));
    let c = client_for(&ca);
    // Only the certificate replaced: the pair does not match, the old one stays in service.
    let second = ca.server(3003);
    std::fs::write(dir.path().join("server.crt"), &second.cert_pem).unwrap();
    let r = get(server.addr(), &c, "/-/ready", &[]).unwrap();
    assert_eq!(serial(&r.server_cert), serial(&first.der));
    std::fs::write(dir.path().join("server.key"), &second.key_pem).unwrap();
    let r = get(server.addr(), &c, "/-/ready", &[]).unwrap();
    assert_eq!(serial(&r.server_cert), serial(&second.der));
}

#[test]
fn a_bad_web_config_on_reload_keeps_the_previous_one() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    let first = ca.server(1001);
    first.write(dir.path(), "server");
    let web = tls_config(dir.path(), "");
    let server = WebServer::start(Some(&web));
    let c = client_for(&ca);
    std::fs::write(
        &web,
        "tls_server_config:\n  cert_file: server.crt\n  key_file: missing.key\n  client_auth_type: RequireAndVerifyClientCert\nbasic_auth_users:\n  alice: not-a-hash\n",
    )
    .unwrap();
    let r = send(server.addr(), &c, "POST", "/-/reload", &[]).unwrap();
    assert_eq!(r.status, 500);
    let path = web.display();
    for expected in [
        format!("{path}:3:13: cannot read key_file"),
        format!("{path}:4:21: client_auth_type `RequireAndVerifyClientCert` verifies client certificates against a CA"),
        format!("{path}:6:10: the password hash of `alice` is not a bcrypt hash"),
    ] {
        assert!(r.body.contains(&expected), "{expected} not in {}", r.body);
    }
    // Still TLS with the old certificate, no client certificate, no basic auth.
    let r = get(server.addr(), &c, "/metrics", &[]).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(serial(&r.server_cert), serial(&first.der));
    assert!(r
        .body
        .contains("indicator_exporter_config_last_reload_successful 0\n"));
    let landing = get(server.addr(), &c, "/", &[]).unwrap();
    assert!(landing.body.contains("Last reload failed"));
    assert!(landing.body.contains("not a bcrypt hash"));

    // A good edit applies, to new requests: basic auth from now on.
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    std::fs::write(
        &web,
        format!("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  alice: {hash}\n"),
    )
    .unwrap();
    let r = send(server.addr(), &c, "POST", "/-/reload", &[]).unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(get(server.addr(), &c, "/metrics", &[]).unwrap().status, 401);
    let auth = [("Authorization", "Basic YWxpY2U6czNjcmV0")];
    let r = get(server.addr(), &c, "/metrics", &auth).unwrap();
    assert_eq!(r.status, 200);
    assert!(r
        .body
        .contains("indicator_exporter_config_last_reload_successful 1\n"));
}

#[test]
fn colon_port_listens_on_ipv4_and_ipv6() {
    let listener = indicator_exporter::http::listen::bind(":0").expect("bind :0");
    let port = listener.local_addr().unwrap().port();
    let server = WebServer::start_on(vec![listener], None);
    let v4 = raw(
        SocketAddr::from(([127, 0, 0, 1], port)),
        b"GET /-/ready HTTP/1.0\r\n\r\n",
    );
    assert!(v4.starts_with("HTTP/1.0 200 OK"), "{v4:?}");
    let has_ipv6_loopback = std::net::TcpListener::bind("[::1]:0").is_ok();
    if has_ipv6_loopback {
        let v6 = raw(
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port)),
            b"GET /-/ready HTTP/1.0\r\n\r\n",
        );
        assert!(
            v6.starts_with("HTTP/1.0 200 OK"),
            "[::1]:{port} did not answer: {v6:?}"
        );
    } else {
        eprintln!("this machine has no IPv6 loopback: only the IPv4 half of :PORT was checked");
    }
    drop(server);
}

#[test]
fn every_listen_address_is_served() {
    let mut cmd = command();
    cmd.arg("--config.file").arg(config()).args([
        "--web.listen-address=127.0.0.1:0",
        "--web.listen-address=127.0.0.1:0",
    ]);
    let exporter = Exporter::spawn(cmd);
    let addrs: Vec<SocketAddr> = exporter
        .addresses(2, Duration::from_secs(30))
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
    assert_ne!(addrs[0], addrs[1]);
    for a in &addrs {
        let answer = raw(*a, b"GET /-/healthy HTTP/1.0\r\n\r\n");
        assert!(answer.starts_with("HTTP/1.0 200 OK"), "{a}: {answer:?}");
    }
    drop(exporter);
}

#[test]
fn node_exporter_web_configs_are_accepted_unchanged() {
    for (file, summary) in [
        (
            "web-config.yml",
            "TLS 1.3 and 1.2, client certificates: NoClientCert, basic auth for 2 users, rate limit 1 per 1s, burst 20",
        ),
        (
            "every-key.yml",
            "TLS 1.3 and 1.2, client certificates: RequireAndVerifyClientCert with 2 allowed SANs, basic auth for 1 user, 5 response headers, rate limit 1 per 1s, burst 20",
        ),
    ] {
        let web = format!("{ROOT}/tests/fixtures/web/{file}");
        let out = command()
            .arg("--config.check")
            .arg("--config.file")
            .arg(config())
            .arg("--web.config.file")
            .arg(&web)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{file}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains(&format!("{web}: OK: web config, {summary}\n")),
            "{stdout}"
        );
    }
}

#[test]
fn web_config_errors_name_file_line_and_column_all_in_one_run() {
    let web = format!("{ROOT}/tests/fixtures/web/bad.yml");
    let out = command()
        .arg("--config.check")
        .arg("--config.file")
        .arg(config())
        .arg("--web.config.file")
        .arg(&web)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = std::fs::read_to_string(format!("{ROOT}/tests/fixtures/web/bad.expected"))
        .unwrap()
        .replace("{DIR}", &format!("{ROOT}/tests/fixtures/web"));
    assert_eq!(
        stderr
            .lines()
            .filter(|l| l.contains("bad.yml"))
            .collect::<Vec<_>>()
            .join("\n")
            + "\n",
        expected
    );
    // The count names the file the errors are in: the dataset itself is valid.
    assert!(
        !stderr
            .lines()
            .any(|l| l.contains(".toml: ") && l.ends_with(" error(s)")),
        "{stderr}"
    );
}

#[test]
fn start_up_fails_with_every_web_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let web = write_config(
        dir.path(),
        "tls_server_config:\n  cert_file: none.crt\n  key_file: none.key\nbasic_auth_users:\n  bob: x\n",
    );
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let Err(errors) = WebServer::try_start_on(vec![l], Some(&web)) else {
        panic!("served with a broken web config");
    };
    let text = errors.to_string();
    assert_eq!(errors.len(), 3, "{text}");
    assert!(text.contains(":2:14: cannot read cert_file"), "{text}");
    assert!(text.contains(":3:13: cannot read key_file"), "{text}");
    assert!(text.contains(":5:8: the password hash of `bob`"), "{text}");
}

#[test]
fn systemd_socket_activation_serves_the_passed_socket() {
    // python3 plays systemd: it binds, puts the socket at descriptor 3 and becomes the
    // exporter (exec keeps its process id, which LISTEN_PID names).
    let script = r#"
import os, socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
print(s.getsockname()[1], flush=True)
os.dup2(s.fileno(), 3)
os.set_inheritable(3, True)
os.environ["LISTEN_FDS"] = "1"
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.argv[1], sys.argv[1:])
"#;
    let mut child = Command::new(require_tool("python3"))
        .arg("-c")
        .arg(script)
        .arg(BIN)
        .arg("--config.file")
        .arg(config())
        .arg("--web.systemd-socket")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("python3 to play systemd");
    let stdout = child.stdout.take().unwrap();
    // Killed on drop, however the test ends.
    let exporter = common::e2e::Guard {
        name: "indicator_exporter",
        child,
    };
    let mut port = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut port).unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], port.trim().parse::<u16>().unwrap()));
    let answer = poll_until(
        "the exporter to answer on the passed socket",
        Duration::from_secs(30),
        || {
            let a = raw(addr, b"GET /-/healthy HTTP/1.0\r\n\r\n");
            a.starts_with("HTTP/1.").then_some(a)
        },
    );
    drop(exporter);
    assert!(answer.starts_with("HTTP/1.0 200 OK"), "{answer:?}");
}

#[test]
fn a_stalled_handshake_does_not_hold_up_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    ca.server(1).write(dir.path(), "server");
    let server = WebServer::start(Some(&tls_config(dir.path(), "")));
    let mut s = TcpStream::connect(server.addr()).unwrap();
    s.write_all(&[0x16, 0x03, 0x01]).unwrap();
    // Accepted and handshaking: a full round trip on another connection shows the first was
    // accepted too (connections are accepted in order).
    assert_eq!(
        get(server.addr(), &client_for(&ca), "/-/ready", &[])
            .unwrap()
            .status,
        200
    );
    let started = Instant::now();
    drop(server);
    assert!(
        started.elapsed() < TLS_HANDSHAKE_TIMEOUT / 2,
        "shutdown took {:?}",
        started.elapsed()
    );
}
