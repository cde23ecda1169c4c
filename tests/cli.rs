//! The real binary: --config.check, --version, start-up failures, SIGHUP and SIGTERM.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_indicator_exporter");

fn exporter(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("run the binary")
}

#[test]
fn config_check_accepts_the_bundled_config() {
    let out = exporter(&["--config.check", "--config.file", "config.toml"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "config.toml: OK: dataset cnipa_patent_survey, 6 metrics, 37 series\n"
    );
}

#[test]
fn config_check_prints_every_error_and_fails() {
    let out = exporter(&[
        "--config.check",
        "--config.file",
        "tests/fixtures/bad/many_errors.toml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let expected = std::fs::read_to_string("tests/fixtures/bad/many_errors.expected").unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!("{expected}tests/fixtures/bad/many_errors.toml: 8 error(s)\n")
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn version_names_version_and_revision() {
    let out = exporter(&["--version"]);
    assert!(out.status.success());
    let v = String::from_utf8_lossy(&out.stdout);
    assert!(
        v.starts_with(&format!(
            "indicator_exporter, version {} (revision: ",
            env!("CARGO_PKG_VERSION")
        )),
        "{v}"
    );
}

#[test]
fn invalid_config_at_start_exits_non_zero_without_serving() {
    let out = exporter(&[
        "--config.file",
        "tests/fixtures/bad/duplicate_series.toml",
        "--web.listen-address",
        "127.0.0.1:0",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid configuration, not serving"), "{err}");
    assert!(
        err.contains("tests/fixtures/bad/duplicate_series.toml:16:3: duplicate series"),
        "{err}"
    );
}

#[test]
fn unusable_listen_address_exits_non_zero() {
    let out = exporter(&["--web.listen-address", "256.0.0.1:1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot listen"));
}

/// The binary running in the background; killed on drop if still running.
struct Running {
    child: Child,
    addr: String,
    log: mpsc::Receiver<String>,
}

impl Running {
    fn start(args: &[&str]) -> Running {
        let mut child = Command::new(BIN)
            .args(["--web.listen-address", "127.0.0.1:0"])
            .args(args)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("start the binary");
        let (tx, log) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut running = Running {
            child,
            addr: String::new(),
            log,
        };
        let line = running.wait_log("msg=listening");
        running.addr = line
            .split("address=")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .to_string();
        running
    }

    fn wait_log(&mut self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(e) => panic!("no log line with {needle:?}: {e}"),
            }
        }
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig}");
    }

    fn metrics(&self) -> String {
        request("GET", &format!("http://{}/metrics", self.addr), &[])
            .unwrap()
            .text()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn sigterm_and_sigint_stop_gracefully_with_exit_zero() {
    for (sig, name) in [("-TERM", "SIGTERM"), ("-INT", "SIGINT")] {
        let mut r = Running::start(&["--config.file", "config.toml"]);
        assert!(r.metrics().contains("cnipa_dataset_info"));
        r.signal(sig);
        let status = poll_until("the exporter to exit", Duration::from_secs(20), || {
            r.child.try_wait().unwrap()
        });
        assert!(status.success(), "{name}: {status}");
        r.wait_log(&format!("{name} received"));
        r.wait_log("msg=stopped");
    }
}

#[test]
fn sighup_reloads_an_edited_value_and_keeps_serving_on_a_bad_edit() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    let original = std::fs::read_to_string("config.toml").unwrap();
    std::fs::write(&config, &original).unwrap();
    let mut r = Running::start(&[
        "--config.file",
        config.to_str().unwrap(),
        "--log.format",
        "logfmt",
    ]);
    let series = "cnipa_enterprise_invention_patent_industrialization_ratio{sector=\"all\",size=\"all\",year=\"2025\"}";
    assert_eq!(sample(&r.metrics(), series).as_deref(), Some("0.54"));

    let edited = original.replace(
        "year = \"2025\" }, value = 54,",
        "year = \"2025\" }, value = 54.2,",
    );
    assert_ne!(edited, original);
    std::fs::write(&config, &edited).unwrap();
    r.signal("-HUP");
    poll_until(
        "the revised value after SIGHUP",
        Duration::from_secs(20),
        || (sample(&r.metrics(), series).as_deref() == Some("0.542")).then_some(()),
    );
    r.wait_log("msg=\"published figure revised\"");

    std::fs::write(
        &config,
        edited.replace("unit = \"percent\"", "unit = \"percentage\""),
    )
    .unwrap();
    r.signal("-HUP");
    r.wait_log("reload failed");
    let body = r.metrics();
    assert_eq!(sample(&body, series).as_deref(), Some("0.542"));
    assert_eq!(
        sample(&body, "indicator_exporter_config_last_reload_successful").as_deref(),
        Some("0")
    );
}
