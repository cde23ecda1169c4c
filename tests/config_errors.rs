//! Every class of bad input, each with its exact messages and positions (fixtures in
//! tests/fixtures/bad: NAME.toml and NAME.expected; `UPDATE_GOLDEN=1` rewrites the latter).

use std::path::Path;

fn check(name: &str) {
    let path = format!("tests/fixtures/bad/{name}.toml");
    let errors = match indicator_exporter::check(Path::new(&path)) {
        Ok(_) => panic!("{path} was accepted"),
        Err(e) => e.to_string() + "\n",
    };
    let expected_path = format!("tests/fixtures/bad/{name}.expected");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&expected_path, &errors).unwrap();
    }
    let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
    assert_eq!(errors, expected, "diagnostics of {path}");
}

#[test]
fn syntax_error() {
    check("syntax_error");
}
#[test]
fn unknown_key() {
    check("unknown_key");
}
#[test]
fn invalid_metric_and_label_names_and_reserved_labels() {
    check("invalid_names");
}
#[test]
fn sample_labels_do_not_match_the_metric() {
    check("label_mismatch");
}
#[test]
fn duplicate_series() {
    check("duplicate_series");
}
#[test]
fn missing_non_finite_and_out_of_range_values() {
    check("bad_values");
}
#[test]
fn unknown_unit() {
    check("unknown_unit");
}
#[test]
fn empty_dataset() {
    check("empty_dataset");
}
#[test]
fn metrics_without_samples() {
    check("no_samples");
}
#[test]
fn missing_samples_file() {
    check("missing_samples_file");
}
#[test]
fn bad_rows_in_a_samples_file() {
    check("bad_csv");
}
#[test]
fn all_errors_of_one_file_at_once() {
    check("many_errors");
}
#[test]
fn missing_config_file() {
    let e =
        indicator_exporter::check(Path::new("tests/fixtures/bad/does-not-exist.toml")).unwrap_err();
    assert_eq!(e.to_string(), "tests/fixtures/bad/does-not-exist.toml: cannot read config file: No such file or directory");
}
#[test]
fn generated_names_that_clash_and_periods_that_are_not_years() {
    check("name_clash");
}
#[test]
fn unreadable_config_files() {
    let dir = tempfile::tempdir().unwrap();
    let e = indicator_exporter::check(dir.path()).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{}: cannot read config file: is a directory, expected a regular file",
            dir.path().display()
        )
    );
    let binary = dir.path().join("config.toml");
    std::fs::write(&binary, b"[dataset]\nname = \"\xff\"\n").unwrap();
    let e = indicator_exporter::check(&binary).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{}: cannot read config file: invalid UTF-8 at byte 18 (line 2), expected UTF-8 text",
            binary.display()
        )
    );
}
#[test]
fn a_samples_file_without_a_period_column_is_named_at_its_key() {
    check("samples_file_without_period");
}
