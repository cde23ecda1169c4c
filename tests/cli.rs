//! The real binary: --config.check, --version, start-up failures, SIGHUP and SIGTERM.

mod common;

use std::time::Duration;

use common::exporter::run as exporter;
use common::*;

#[test]
fn config_check_accepts_the_bundled_config() {
    let out = exporter(&["--config.check", "--config.file", "config.toml"]);
    assert!(out.status.success());
    // What will be served, per metric: a wrong scale shows before it is served.
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        concat!(
            "config.toml: OK: dataset cnipa_patent_survey, 6 metrics, 37 series\n",
            "  cnipa_enterprise_invention_patent_industrialization_ratio                 22 series, year 2020..2025, published in percent and served in ratio, values 0.338..0.614\n",
            "  cnipa_national_invention_patent_industrialization_ratio                   5 series, year 2019..2023, published in percent and served in ratio, values 0.329..0.396\n",
            "  cnipa_industrialization_income_premium_vs_average_enterprise_ratio        2 series, year 2024..2024, published in percent and served in ratio, values 0.08..0.303\n",
            "  cnipa_average_income_per_industrialized_enterprise_invention_patent_yuan  2 series, year 2022..2023, published in yuan ×10^4 and served in yuan, values 7992000..8296000\n",
            "  cnipa_domestic_enterprise_valid_invention_patents                         4 series, year 2021..2024, values 1908000..3506000\n",
            "  cnipa_domestic_enterprise_share_of_valid_invention_patents_ratio          2 series, year 2023..2024, published in percent and served in ratio, values 0.712..0.737\n"
        )
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

#[test]
fn sigterm_and_sigint_stop_gracefully_with_exit_zero() {
    for (sig, name) in [(libc::SIGTERM, "SIGTERM"), (libc::SIGINT, "SIGINT")] {
        let mut r = Exporter::start(&["--config.file", "config.toml"]);
        assert!(r.metrics().contains("cnipa_dataset_info"));
        r.signal(sig);
        let status = r.wait_exit(Duration::from_secs(20));
        assert!(status.success(), "{name}: {status}");
        let received = format!("{name} received");
        let log = r.stderr();
        let (at_received, at_stopped) = (log.find(&received), log.find("msg=stopped"));
        assert!(at_received.is_some(), "no {received:?} in:\n{log}");
        assert!(
            at_stopped > at_received,
            "no msg=stopped after it in:\n{log}"
        );
    }
}

#[test]
fn sighup_reloads_an_edited_value_and_keeps_serving_on_a_bad_edit() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    let original = std::fs::read_to_string("config.toml").unwrap();
    std::fs::write(&config, &original).unwrap();
    let r = Exporter::start(&[
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
    r.signal(libc::SIGHUP);
    poll_until(
        "the revised value after SIGHUP",
        Duration::from_secs(20),
        || (sample(&r.metrics(), series).as_deref() == Some("0.542")).then_some(()),
    );
    r.wait_for_log("msg=\"published figure revised\"", Duration::from_secs(30));

    std::fs::write(
        &config,
        edited.replace("unit = \"percent\"", "unit = \"percentage\""),
    )
    .unwrap();
    r.signal(libc::SIGHUP);
    r.wait_for_log("reload failed", Duration::from_secs(30));
    // The first "reload failed" line is logged before the reload has ended and set its gauge.
    let body = poll_until(
        "indicator_exporter_config_last_reload_successful 0 after the bad edit",
        Duration::from_secs(20),
        || {
            let body = r.metrics();
            (sample(&body, "indicator_exporter_config_last_reload_successful").as_deref()
                == Some("0"))
            .then_some(body)
        },
    );
    assert_eq!(sample(&body, series).as_deref(), Some("0.542"));
    assert_eq!(
        sample(&body, "indicator_exporter_config_last_reload_successful").as_deref(),
        Some("0")
    );
}

/// `--config.check | head -1`: a reader that stops early is no failure and no panic.
#[test]
fn config_check_into_a_closed_pipe_exits_cleanly() {
    let mut child = common::exporter::command()
        .args(["--config.check", "--config.file", "config.toml"])
        .current_dir(repo(""))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
