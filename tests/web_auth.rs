//! Basic auth, security headers and the rate limit of the web config, against the real
//! server on loopback, over plain HTTP and over TLS.

mod common;
mod web_support;

use std::net::SocketAddr;

use web_support::*;

/// `GET path` over plain HTTP/1.0 with extra header lines: status line, headers, body.
fn plain_get(addr: SocketAddr, path: &str, headers: &[&str]) -> (u16, String, String) {
    let mut req = format!("GET {path} HTTP/1.0\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    let answer = raw(addr, req.as_bytes());
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {answer:?}"));
    (status, head.to_ascii_lowercase(), body.to_string())
}

fn users_config(dir: &std::path::Path, extra: &str) -> std::path::PathBuf {
    let alice = bcrypt::hash("wonderland", 4).unwrap();
    let bob = bcrypt::hash("builder", 4).unwrap();
    write_config(
        dir,
        &format!("basic_auth_users:\n  alice: {alice}\n  bob: '{bob}'\n{extra}"),
    )
}

// "alice:wonderland", "alice:wrong", "bob:builder", "carol:wonderland"
const ALICE: &str = "Authorization: Basic YWxpY2U6d29uZGVybGFuZA==";
const ALICE_WRONG: &str = "Authorization: Basic YWxpY2U6d3Jvbmc=";
const BOB: &str = "Authorization: Basic Ym9iOmJ1aWxkZXI=";
const CAROL: &str = "Authorization: Basic Y2Fyb2w6d29uZGVybGFuZA==";

#[test]
fn every_path_needs_a_user_and_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let server = WebServer::start(Some(&users_config(dir.path(), "")));
    for path in ["/metrics", "/", "/-/healthy", "/-/ready", "/nowhere"] {
        let (status, head, body) = plain_get(server.addr(), path, &[]);
        assert_eq!(status, 401, "{path} without credentials");
        assert!(head.contains("\r\nwww-authenticate: basic\r\n"), "{head}");
        assert_eq!(body, "Unauthorized\n");
    }
    for (who, header) in [
        ("a wrong password", ALICE_WRONG),
        ("an unknown user", CAROL),
        ("another scheme", "Authorization: Bearer abc"),
        ("broken base64", "Authorization: Basic %%%"),
    ] {
        let (status, head, _) = plain_get(server.addr(), "/metrics", &[header]);
        assert_eq!(status, 401, "{who}");
        assert!(head.contains("www-authenticate: basic"), "{who}: {head}");
    }
    for header in [ALICE, BOB] {
        let (status, _, body) = plain_get(server.addr(), "/metrics", &[header]);
        assert_eq!(status, 200, "{header}");
        assert!(body.contains("indicator_exporter_build_info"));
    }
    // Verified credentials are remembered, wrong ones are checked every time.
    let (status, _, _) = plain_get(server.addr(), "/metrics", &[ALICE]);
    assert_eq!(status, 200);
    let (status, _, _) = plain_get(server.addr(), "/metrics", &[ALICE_WRONG]);
    assert_eq!(status, 401);
}

#[test]
fn basic_auth_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    ca.server(1).write(dir.path(), "server");
    let web = users_config(
        dir.path(),
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n",
    );
    let server = WebServer::start(Some(&web));
    let c = client(&ca.der(), None, &[]);
    let r = get(server.addr(), &c, "/metrics", &[]).unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(r.header("WWW-Authenticate"), Some("Basic"));
    let (k, v) = ALICE.split_once(": ").unwrap();
    let r = get(server.addr(), &c, "/metrics", &[(k, v)]).unwrap();
    assert_eq!(r.status, 200);
}

#[test]
fn configured_headers_are_on_every_response() {
    let dir = tempfile::tempdir().unwrap();
    let web = users_config(
        dir.path(),
        "http_server_config:\n  headers:\n    X-Frame-Options: deny\n    X-Content-Type-Options: nosniff\n    Content-Security-Policy: \"default-src 'none'\"\n    Strict-Transport-Security: max-age=31536000\n    X-XSS-Protection: ''\n",
    );
    let server = WebServer::start(Some(&web));
    for (path, creds, status) in [
        ("/metrics", ALICE, 200),
        ("/nowhere", ALICE, 404),
        ("/metrics", ALICE_WRONG, 401),
    ] {
        let (got, head, _) = plain_get(server.addr(), path, &[creds]);
        assert_eq!(got, status, "{path}");
        for h in [
            "\r\nx-frame-options: deny\r\n",
            "\r\nx-content-type-options: nosniff\r\n",
            "\r\ncontent-security-policy: default-src 'none'\r\n",
            "\r\nstrict-transport-security: max-age=31536000\r\n",
        ] {
            assert!(head.contains(h), "{path} {status}: {h:?} not in {head}");
        }
        // Blank means unset.
        assert!(!head.contains("x-xss-protection"), "{head}");
    }
}

#[test]
fn the_rate_limit_answers_429_past_the_burst() {
    let dir = tempfile::tempdir().unwrap();
    let web = write_config(dir.path(), "rate_limit:\n  interval: 1h\n  burst: 3\n");
    let server = WebServer::start(Some(&web));
    // The start-up probe took one token.
    let statuses: Vec<u16> = (0..4)
        .map(|_| plain_get(server.addr(), "/-/healthy", &[]).0)
        .collect();
    assert_eq!(statuses, [200, 200, 429, 429]);
}

#[test]
fn without_a_web_config_nothing_changes() {
    let server = WebServer::start(None);
    let (status, head, _) = plain_get(server.addr(), "/metrics", &[]);
    assert_eq!(status, 200);
    assert!(!head.contains("www-authenticate"));
}

#[test]
fn config_watch_applies_an_edited_web_config() {
    let dir = tempfile::tempdir().unwrap();
    let web = write_config(dir.path(), "# nothing yet\n");
    let server = WebServer::start_watching(&web);
    assert_eq!(plain_get(server.addr(), "/metrics", &[]).0, 200);
    // Written aside and renamed over, as editors save.
    let staging = dir.path().join("staging");
    std::fs::create_dir(&staging).unwrap();
    let next = users_config(&staging, "");
    std::fs::rename(&next, &web).unwrap();
    common::poll_until(
        "the edited web config to be applied (401 without a user)",
        std::time::Duration::from_secs(30),
        || (plain_get(server.addr(), "/metrics", &[]).0 == 401).then_some(()),
    );
    assert_eq!(plain_get(server.addr(), "/metrics", &[ALICE]).0, 200);
}
