//! The real server over HTTP on 127.0.0.1: the bundled dataset, formats, endpoints.

mod common;

use std::io::Read;

use common::*;
use flate2::read::GzDecoder;

fn bundled() -> Server {
    Server::start(&repo("config.toml"))
}

/// Compares against a golden file; `UPDATE_GOLDEN=1` rewrites it.
fn golden(name: &str, actual: &str) {
    let path = repo(&format!("tests/golden/{name}"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).expect("write golden");
    }
    let expected =
        std::fs::read_to_string(&path).expect("golden file exists (UPDATE_GOLDEN=1 creates it)");
    assert!(
        expected == actual,
        "{name} differs from the golden file; diff it with UPDATE_GOLDEN=1 and git diff"
    );
}

#[test]
fn bundled_exposition_matches_golden_files() {
    let s = bundled();
    let text = s.get_with("/metrics", &[]);
    assert_eq!(text.header("content-type"), Some(TEXT));
    golden("bundled.prom", &dataset_part(&text.text()));
    let om = s.get_with(
        "/metrics",
        &[("Accept", "application/openmetrics-text;version=1.0.0")],
    );
    assert_eq!(om.header("content-type"), Some(OPENMETRICS));
    golden("bundled.om.txt", &dataset_part(&om.text()));
}

/// Every row of the sourced CSV, converted to base units in decimal by this test itself.
#[test]
fn every_sourced_figure_is_served_exactly() {
    let csv = std::fs::read_to_string(repo("tests/data/cnipa-patent-indicators.csv")).unwrap();
    let shared = repo("../shared/data/cnipa-patent-indicators.csv");
    if let Ok(original) = std::fs::read_to_string(&shared) {
        assert_eq!(
            csv, original,
            "tests/data copy of the sourced CSV is out of date"
        );
    }
    let body = bundled().metrics();
    let mut rows = 0;
    let mut rdr = csv::Reader::from_reader(csv.as_bytes());
    for row in rdr.records() {
        let row = row.unwrap();
        let (indicator, size, sector, year, value, unit) =
            (&row[0], &row[1], &row[2], &row[3], &row[4], &row[5]);
        let (suffix, exp) = match unit {
            "percent" => ("_ratio", -2),
            "10k_yuan" => ("_yuan", 4),
            "patents" => ("", 0),
            u => panic!("unit {u} not handled by this test"),
        };
        let expected: f64 = shift_decimal(value, exp).parse().unwrap();
        let series = format!(
            "cnipa_{indicator}{suffix}{{sector=\"{sector}\",size=\"{size}\",year=\"{year}\"}}"
        );
        let got = sample(&body, &series).unwrap_or_else(|| panic!("{series} missing"));
        assert_eq!(got, expected.to_string(), "{series}");
        rows += 1;
    }
    assert_eq!(rows, 37);
    // The headline figures, spelled out.
    for (series, v) in [
        ("cnipa_enterprise_invention_patent_industrialization_ratio{sector=\"all\",size=\"all\",year=\"2024\"}", "0.533"),
        ("cnipa_enterprise_invention_patent_industrialization_ratio{sector=\"all\",size=\"all\",year=\"2025\"}", "0.54"),
        ("cnipa_enterprise_invention_patent_industrialization_ratio{sector=\"high_tech\",size=\"all\",year=\"2024\"}", "0.612"),
        ("cnipa_domestic_enterprise_valid_invention_patents{sector=\"all\",size=\"all\",year=\"2024\"}", "3506000"),
        ("cnipa_industrialization_income_premium_vs_average_enterprise_ratio{sector=\"future_industries\",size=\"all\",year=\"2024\"}", "0.303"),
    ] {
        assert_eq!(sample(&body, series).as_deref(), Some(v), "{series}");
    }
}

/// "53.3", -2 -> "0.533": moves the decimal point in the text, no floating point involved.
fn shift_decimal(v: &str, exp: i32) -> String {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    let mut digits = format!("{int}{frac}");
    let mut point = int.len() as i32 + exp;
    while point <= 0 {
        digits.insert(0, '0');
        point += 1;
    }
    while digits.len() < point as usize {
        digits.push('0');
    }
    let (a, b) = digits.split_at(point as usize);
    if b.is_empty() {
        a.to_string()
    } else {
        format!("{a}.{b}")
    }
}

#[test]
fn derived_series_and_info_metrics() {
    let body = bundled().metrics();
    for (series, v) in [
        ("cnipa_enterprise_invention_patent_industrialization_latest_ratio{sector=\"all\",size=\"all\"}", "0.54"),
        ("cnipa_enterprise_invention_patent_industrialization_latest_year{sector=\"all\",size=\"all\"}", "2025"),
        ("cnipa_enterprise_invention_patent_industrialization_change_ratio{sector=\"all\",size=\"all\"}", "0.007"),
        ("cnipa_enterprise_invention_patent_industrialization_change_ratio{sector=\"high_tech\",size=\"all\"}", "0.036"),
        ("cnipa_enterprise_invention_patent_industrialization_latest_ratio{sector=\"all\",size=\"micro\"}", "0.367"),
        ("cnipa_domestic_enterprise_share_of_valid_invention_patents_change_ratio{sector=\"all\",size=\"all\"}", "0.025"),
        ("cnipa_size_info{name_en=\"Medium-sized enterprises\",name_zh=\"中型企业\",size=\"medium\"}", "1"),
        ("cnipa_sector_info{name_en=\"National high-tech enterprises\",name_zh=\"国家高新技术企业\",sector=\"high_tech\"}", "1"),
        ("cnipa_dataset_published_timestamp_seconds{dataset=\"cnipa_patent_survey\"}", "1769126400"),
        ("cnipa_next_release_expected_timestamp_seconds{dataset=\"cnipa_patent_survey\",year=\"2026\"}", "1801440000"),
        ("cnipa_next_release_overdue_timestamp_seconds{dataset=\"cnipa_patent_survey\",year=\"2026\"}", "1819756800"),
        ("indicator_exporter_dataset_series{dataset=\"cnipa_patent_survey\"}", "37"),
        ("indicator_exporter_config_last_reload_successful", "1"),
    ] {
        assert_eq!(sample(&body, series).as_deref(), Some(v), "{series}");
    }
    assert!(body.contains("\ncnipa_dataset_info{dataset=\"cnipa_patent_survey\",published=\"2026-01-23\",publisher=\"China National Intellectual Property Administration (CNIPA)\""));
    assert!(body.contains("\ncnipa_source_info{published=\"2025-01-15\",source=\"S1\","));
    assert!(body.contains("\nindicator_exporter_build_info{revision=\""));
    assert!(body.contains("\nprocess_resident_memory_bytes "));
    // A single year has no change: no empty family is written.
    assert!(!body.contains("income_premium_vs_average_enterprise_change_ratio"));
}

#[test]
fn every_family_has_help_and_type() {
    let body = bundled().metrics();
    // Read strictly: a family's HELP and TYPE come before its samples, families are whole.
    let e = exposition::check(&body, false).unwrap_or_else(|err| panic!("{err}"));
    for s in &e.samples {
        let family = s.family.as_deref().and_then(|f| e.family(f));
        assert!(
            family.is_some_and(|f| f.name == s.name && f.help.is_some() && f.kind.is_some()),
            "{} has no HELP/TYPE before it",
            s.name
        );
    }
}

#[test]
fn openmetrics_carries_the_same_samples_and_ends_with_eof() {
    let s = bundled();
    let text = dataset_part(&s.metrics());
    let om = s.get_with(
        "/metrics",
        &[(
            "Accept",
            "application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
        )],
    );
    assert_eq!(om.header("content-type"), Some(OPENMETRICS));
    let body = om.text();
    assert!(body.ends_with("\n# EOF\n"), "{}", &body[body.len() - 40..]);
    assert_eq!(body.matches("# EOF").count(), 1);
    assert!(body.contains("# TYPE cnipa_enterprise_invention_patent_industrialization_ratio gauge\n# UNIT cnipa_enterprise_invention_patent_industrialization_ratio ratio\n"));
    assert!(body.contains("# TYPE cnipa_dataset info\n"));
    assert!(body.contains("# TYPE indicator_exporter_config_reloads counter\n"));
    let samples = |b: &str| -> Vec<String> {
        b.lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::to_string)
            .collect()
    };
    let om_samples = samples(&dataset_part(&body));
    assert_eq!(samples(&text), om_samples);
    assert!(om_samples.len() > 37);
}

#[test]
fn gzip_round_trips_to_the_plain_body() {
    let s = bundled();
    for accept in ["text/plain", "application/openmetrics-text;version=1.0.0"] {
        let plain = s.get_with("/metrics", &[("Accept", accept)]);
        let gz = s.get_with(
            "/metrics",
            &[("Accept", accept), ("Accept-Encoding", "gzip")],
        );
        assert_eq!(gz.header("content-encoding"), Some("gzip"));
        assert_eq!(gz.header("content-type"), plain.header("content-type"));
        assert_eq!(
            gz.header("content-length").unwrap(),
            gz.body.len().to_string()
        );
        let mut out = String::new();
        // A single-member decoder, as curl's: the self-metrics must be in the same stream.
        GzDecoder::new(&gz.body[..])
            .read_to_string(&mut out)
            .unwrap();
        // Self-metrics (process memory, …) may differ between two scrapes: compare the rest.
        assert_eq!(dataset_part(&out), dataset_part(&plain.text()));
        assert!(out.contains("indicator_exporter_build_info"));
        assert!(plain.header("content-encoding").is_none());
    }
}

#[test]
fn head_has_headers_and_no_body() {
    let s = bundled();
    let get = s.get_with("/metrics", &[]);
    let head = request("HEAD", &s.url("/metrics"), &[]).unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type"), Some(TEXT));
    assert!(head.body.is_empty());
    let len: usize = head.header("content-length").unwrap().parse().unwrap();
    // Same dataset bytes; self-metrics may differ by a few digits.
    assert!(
        len.abs_diff(get.body.len()) < 200,
        "{len} vs {}",
        get.body.len()
    );
}

#[test]
fn endpoints_and_errors() {
    let s = bundled();
    let landing = s.get_with("/", &[]);
    assert_eq!(landing.status, 200);
    assert_eq!(
        landing.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let page = landing.text();
    for want in [
        "China invention patent industrialization indicators (CNIPA China Patent Survey)",
        "China National Intellectual Property Administration (CNIPA)",
        "href=\"/datasets/cnipa_patent_survey\"",
        "37 series",
        "<a href=\"/metrics\">",
    ] {
        assert!(page.contains(want), "landing page lacks {want}");
    }
    let dataset = s.get_with("/datasets/cnipa_patent_survey", &[]);
    assert_eq!(dataset.status, 200);
    assert!(dataset
        .text()
        .contains("<a href=\"http://en.people.cn/n3/2025/0115/c90000-20266428.html\">"));
    assert_eq!(s.get_with("/datasets/nope", &[]).status, 404);
    assert_eq!(s.get_with("/-/healthy", &[]).status, 200);
    assert_eq!(s.get_with("/-/ready", &[]).status, 200);
    let missing = s.get_with("/nope", &[]);
    assert_eq!(missing.status, 404);
    for (method, path, allow) in [
        ("POST", "/metrics", "GET, HEAD"),
        ("DELETE", "/", "GET, HEAD"),
        ("GET", "/-/reload", "POST, PUT"),
    ] {
        let r = request(method, &s.url(path), &[]).unwrap();
        assert_eq!(r.status, 405, "{method} {path}");
        assert_eq!(r.header("allow"), Some(allow));
    }
}

#[test]
fn exposition_passes_promtool_check_metrics() {
    let body = bundled().metrics();
    if let Err(report) = promtool_check_metrics(&body) {
        panic!("promtool check metrics: {report}");
    }
}
