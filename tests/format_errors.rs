//! Bad input in every publisher format, through the whole pipeline, each with its exact
//! messages and positions. Fixtures: tests/fixtures/bad-formats/FORMAT/NAME.toml (with the small
//! data files they name) and NAME.expected; `UPDATE_GOLDEN=1` rewrites the latter.

mod common;

use std::fmt::Write as _;
use std::path::Path;

const ROOT: &str = "tests/fixtures/bad-formats";

fn check(format: &str, name: &str) {
    let path = format!("{ROOT}/{format}/{name}.toml");
    let errors = match indicator_exporter::check(Path::new(&path)) {
        Ok(_) => panic!("{path} was accepted"),
        Err(e) => e.to_string() + "\n",
    };
    let expected_path = format!("{ROOT}/{format}/{name}.expected");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&expected_path, &errors).unwrap();
    }
    let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
    assert_eq!(errors, expected, "diagnostics of {path}");
}

/// The cases of one format: `FORMAT/NAME.toml` for each NAME, and `FORMAT/good.toml`, the
/// well-formed variant, which loads (so each bad case fails for the reason its name gives).
macro_rules! cases {
    ($module:ident in $dir:literal: [$($name:ident),* $(,)?]) => {
        mod $module {
            $(
                #[test]
                fn $name() {
                    super::check($dir, stringify!($name));
                }
            )*
            #[test]
            fn good_variant_loads() {
                super::loads($dir);
            }
        }
    };
}

fn loads(format: &str) {
    let path = format!("{ROOT}/{format}/good.toml");
    if let Err(e) = indicator_exporter::check(Path::new(&path)) {
        panic!("{path}:\n{e}");
    }
}

cases!(csv_long in "csv-long": [
    truncated,
    no_value_column,
    no_period_column,
    duplicate_column,
    filter_unknown_dimension,
    non_numeric,
    bad_periods,
    two_units,
    unit_not_the_configured_one,
    duplicate_in_one_file,
    duplicate_across_inputs,
    two_cadences,
    unknown_metric,
    unknown_unit_code,
    unknown_multiplier,
    label_not_a_component,
    metric_label_not_a_component,
    options_of_another_format,
    unknown_format,
    missing_file,
]);

cases!(csv_wide in "csv-wide": [
    truncated,
    no_period_columns,
    value_column,
    duplicate_column,
    filter_unknown_dimension,
    non_numeric,
    bad_periods,
    two_units,
    unit_not_the_configured_one,
    duplicate_in_one_file,
    duplicate_across_inputs,
    two_cadences,
    unknown_metric,
    unknown_unit_code,
    unknown_multiplier,
    label_not_a_component,
    metric_label_not_a_component,
    options_of_another_format,
    unknown_format,
    missing_file,
]);

cases!(json_records in "json": [
    truncated,
    no_value_key,
    wrong_records_path,
    duplicate_key,
    filter_unknown_dimension,
    non_numeric,
    bad_periods,
    two_units,
    unit_not_the_configured_one,
    duplicate_in_one_file,
    duplicate_across_inputs,
    two_cadences,
    unknown_metric,
    unknown_unit_code,
    unknown_multiplier,
    label_not_a_component,
    metric_label_not_a_component,
    options_of_another_format,
    unknown_format,
    missing_file,
]);

cases!(sdmx_csv_1 in "sdmx-csv1": [
    truncated,
    no_obs_value,
    not_sdmx,
    duplicate_column,
    filter_unknown_dimension,
    non_numeric,
    bad_periods,
    two_units,
    unit_not_the_configured_one,
    duplicate_in_one_file,
    duplicate_across_inputs,
    two_cadences,
    unknown_metric,
    unknown_unit_code,
    unknown_multiplier,
    label_not_a_component,
    metric_label_not_a_component,
    options_of_another_format,
    unknown_format,
    missing_file,
]);

cases!(sdmx_csv_2 in "sdmx-csv2": [
    truncated,
    no_obs_value,
    no_structure_id,
    duplicate_column,
    bad_action,
    filter_unknown_dimension,
    non_numeric,
    bad_periods,
    two_units,
    unit_not_the_configured_one,
    duplicate_in_one_file,
    duplicate_across_inputs,
    two_cadences,
    unknown_metric,
    unknown_unit_code,
    unknown_multiplier,
    label_not_a_component,
    metric_label_not_a_component,
    options_of_another_format,
    unknown_format,
    missing_file,
]);

cases!(sdmx_json in "sdmx-json": [
    truncated,
    no_measure,
    no_time_dimension,
    filter_unknown_dimension,
    non_numeric,
    bad_periods,
    two_units,
    unit_not_the_configured_one,
    duplicate_in_one_file,
    duplicate_across_inputs,
    two_cadences,
    unknown_metric,
    unknown_unit_code,
    unknown_multiplier,
    label_not_a_component,
    metric_label_not_a_component,
    options_of_another_format,
    unknown_format,
    missing_file,
]);

cases!(sdmx_ml in "sdmx-ml": [
    truncated,
    billion_laughs,
    external_entity,
    too_deep,
    unknown_entity,
    structure_message,
    generic_value_without_id,
    bad_action,
    filter_unknown_dimension,
    non_numeric,
    bad_periods,
    duplicate_in_one_file,
    unknown_unit_code,
    unknown_multiplier,
    label_not_a_component,
    options_of_another_format,
    unknown_sdmx_ml_option,
    unknown_format,
    missing_file,
]);

cases!(json_stat in "json-stat": [
    truncated,
    no_value,
    size_mismatch,
    duplicate_id,
    filter_unknown_dimension,
    non_numeric,
    bad_periods,
    two_units,
    unit_not_the_configured_one,
    duplicate_in_one_file,
    duplicate_across_inputs,
    two_cadences,
    unknown_metric,
    unknown_unit_code,
    unknown_multiplier,
    label_not_a_component,
    metric_label_not_a_component,
    options_of_another_format,
    unknown_format,
    missing_file,
]);

cases!(pc_axis in "pc-axis": [
    truncated,
    bad_records,
    bad_periods,
    non_numeric,
    unknown_codepage,
    language_not_in_file,
    options_of_another_format,
]);

cases!(excel in "excel": [
    truncated,
    not_a_workbook,
    zip_bomb,
    no_sheet,
    no_metadata_row,
    duplicate_column,
    cell_outside_the_data,
    non_numeric,
    bad_periods,
    unknown_unit_code,
    options_of_another_format,
]);

const HEAD: &str = r#"[dataset]
name = "many_bad_rows"
title = "Thousands of bad rows"
publisher = "Test office"
source_url = "https://example.org/data"
published = "2025-01-01"
metric_prefix = "t_"

[[metric]]
name = "gdp"
help = "Gross domestic product at current prices."
unit = "usd"
"#;

const ROWS: usize = 5000;

/// A data file of `ROWS` observations whose values are all `bad{i}`, and the input options
/// that read it.
fn many_bad_rows(format: &str) -> (&'static str, &'static str, String) {
    let mut t = String::new();
    match format {
        "csv-long" => {
            t.push_str("REF_AREA,TIME_PERIOD,OBS_VALUE\n");
            for i in 0..ROWS {
                writeln!(t, "C{i},2020,bad{i}").unwrap();
            }
            ("csv", "", t)
        }
        "csv-wide" => {
            t.push_str("Country Code,2020\n");
            for i in 0..ROWS {
                writeln!(t, "C{i},bad{i}").unwrap();
            }
            ("csv", "csv = { layout = \"wide\" }\n", t)
        }
        "json" => {
            t.push('[');
            for i in 0..ROWS {
                let sep = if i == 0 { "" } else { "," };
                write!(
                    t,
                    "{sep}\n{{\"geo\": \"C{i}\", \"time\": \"2020\", \"value\": \"bad{i}\"}}"
                )
                .unwrap();
            }
            t.push_str("\n]\n");
            ("json", "", t)
        }
        "sdmx-csv1" => {
            t.push_str("DATAFLOW,REF_AREA,TIME_PERIOD,OBS_VALUE\n");
            for i in 0..ROWS {
                writeln!(t, "X:GDP(1.0),C{i},2020,bad{i}").unwrap();
            }
            ("sdmx-csv", "", t)
        }
        "sdmx-csv2" => {
            t.push_str("STRUCTURE,STRUCTURE_ID,REF_AREA,TIME_PERIOD,OBS_VALUE\r\n");
            for i in 0..ROWS {
                write!(t, "dataflow,X:GDP(1.0),C{i},2020,bad{i}\r\n").unwrap();
            }
            ("sdmx-csv", "", t)
        }
        "sdmx-json" => {
            let areas: Vec<String> = (0..ROWS).map(|i| format!("{{\"id\": \"C{i}\"}}")).collect();
            let series: Vec<String> = (0..ROWS)
                .map(|i| format!("\"{i}\": {{\"observations\": {{\"0\": [\"bad{i}\"]}}}}"))
                .collect();
            write!(
                t,
                r#"{{"data": {{"structures": [{{"dimensions": {{
  "series": [{{"id": "REF_AREA", "values": [{}]}}],
  "observation": [{{"id": "TIME_PERIOD", "role": "TIME_PERIOD", "values": [{{"id": "2020"}}]}}]}}}}],
  "dataSets": [{{"structure": 0, "series": {{{}}}}}]}}}}
"#,
                areas.join(", "),
                series.join(",\n")
            )
            .unwrap();
            ("sdmx-json", "", t)
        }
        "json-stat" => {
            let geo: Vec<String> = (0..ROWS).map(|i| format!("\"C{i}\"")).collect();
            let values: Vec<String> = (0..ROWS).map(|i| format!("\"bad{i}\"")).collect();
            write!(
                t,
                r#"{{"version": "2.0", "class": "dataset", "id": ["geo", "time"], "size": [{ROWS}, 1],
 "dimension": {{"geo": {{"category": {{"index": [{}]}}}}, "time": {{"category": {{"index": ["2020"]}}}}}},
 "value": [{}]}}
"#,
                geo.join(", "),
                values.join(", ")
            )
            .unwrap();
            ("json-stat", "", t)
        }
        "sdmx-ml" => {
            t.push_str("<m:StructureSpecificData xmlns:m=\"urn:m\">\n<m:DataSet>\n");
            for i in 0..ROWS {
                writeln!(
                    t,
                    "<Series REF_AREA=\"C{i}\"><Obs TIME_PERIOD=\"2020\" OBS_VALUE=\"bad{i}\"/></Series>"
                )
                .unwrap();
            }
            t.push_str("</m:DataSet>\n</m:StructureSpecificData>\n");
            ("sdmx-ml", "", t)
        }
        other => unreachable!("no generator for {other}"),
    }
}

/// Reads a generated file of `ROWS` bad values of `format`; its path and the diagnostics.
fn many_bad_rows_read(dir: &Path, format: &str) -> (String, String) {
    let (name, options, text) = many_bad_rows(format);
    let data = dir.join(format!("{format}.data"));
    std::fs::write(&data, text).unwrap();
    let config = dir.join(format!("{format}.toml"));
    std::fs::write(
        &config,
        format!(
            "{HEAD}\n[[input]]\nfile = \"{format}.data\"\nformat = \"{name}\"\nmetric = \"gdp\"\n{options}"
        ),
    )
    .unwrap();
    let errors = indicator_exporter::check(&config)
        .err()
        .unwrap_or_else(|| panic!("{format}: accepted"))
        .to_string();
    (data.display().to_string(), errors)
}

/// Thousands of bad rows: the first 100 problems of the file are listed, the rest counted on
/// one last line.
#[test]
fn thousands_of_bad_rows_are_capped_per_file() {
    let dir = tempfile::tempdir().unwrap();
    for format in [
        "csv-long",
        "json",
        "sdmx-csv1",
        "sdmx-csv2",
        "sdmx-json",
        "json-stat",
        "sdmx-ml",
    ] {
        let (data, errors) = many_bad_rows_read(dir.path(), format);
        let lines: Vec<&str> = errors.lines().collect();
        assert_eq!(lines.len(), 101, "{format}:\n{errors}");
        let listed = &lines[..100];
        for l in listed {
            assert!(
                l.starts_with(&format!("{data}:")) && l.contains(": invalid value `bad"),
                "{format}: {l}"
            );
        }
        // The first 100 rows of the file are the ones listed (SDMX-JSON series are read in
        // the order of their keys as strings: "0", "1", "10", "100" …).
        let last = if format == "sdmx-json" { 1 } else { 99 };
        for i in [0, last] {
            let want = format!(": invalid value `bad{i}`, expected a number");
            assert!(
                listed.iter().any(|l| l.ends_with(&want)),
                "{format}: bad{i} not listed:\n{errors}"
            );
        }
        assert!(
            format == "sdmx-json" || !errors.contains("`bad100`"),
            "{format}: a problem after the first 100 is listed"
        );
        assert!(
            lines[100].starts_with(&format!("{data}:"))
                && lines[100].ends_with(": … and 4900 more problems in this file"),
            "{format}: {}",
            lines[100]
        );
    }
}

/// The count line names the file only, like every problem of a file as a whole.
#[test]
fn the_count_of_problems_beyond_the_cap_names_only_the_file() {
    let dir = tempfile::tempdir().unwrap();
    for format in [
        "csv-long",
        "csv-wide",
        "json",
        "sdmx-csv1",
        "sdmx-csv2",
        "sdmx-json",
        "json-stat",
        "sdmx-ml",
    ] {
        let (data, errors) = many_bad_rows_read(dir.path(), format);
        let lines: Vec<&str> = errors.lines().collect();
        assert_eq!(lines.len(), 101, "{format}:\n{errors}");
        assert_eq!(
            lines[100],
            format!("{data}: … and 4900 more problems in this file"),
            "{format}"
        );
    }
}

fn config_check(path: &str) -> (Option<i32>, String, String) {
    let out = common::exporter::run(&["--config.check", "--config.file", path]);
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

const CHECK: &str = "tests/fixtures/bad-formats/check/config.toml";

/// Every unknown key (in different tables and twice in one table) and the missing key are
/// reported in one run, with the count line and exit status 1.
#[test]
fn config_check_reports_every_config_error_in_one_run() {
    let (status, stdout, stderr) = config_check(CHECK);
    assert_eq!(status, Some(1), "{stderr}");
    assert_eq!(stdout, "");
    let lines: Vec<&str> = stderr.lines().collect();
    for want in [
        format!("{CHECK}:8:1: unknown field `colour`, expected one of `name`, `title`, `publisher`, `source_url`, `published`, `description`, `metric_prefix`, `period`, `max_label_value_length`"),
        format!("{CHECK}:12:1: unknown field `cadance`, expected one of `label`, `cadence`, `expected_release_lag_days`, `overdue_release_lag_days`"),
        format!("{CHECK}:19:1: missing field `help`"),
        format!("{CHECK}:22:1: unknown field `shade`, expected one of `name`, `help`, `unit`, `scale`, `index_base`, `labels`, `cadence`, `release`, `samples`, `samples_file`"),
        format!("{CHECK}:23:1: unknown field `tint`, expected one of `name`, `help`, `unit`, `scale`, `index_base`, `labels`, `cadence`, `release`, `samples`, `samples_file`"),
    ] {
        assert!(lines.contains(&want.as_str()), "missing {want:?} in:\n{stderr}");
    }
    let n = lines.len() - 1;
    assert_eq!(lines[n], format!("{CHECK}: {n} error(s)"), "{stderr}");
}

/// The same run also reports the bad row of the data file that a well-formed [[input]] of the
/// same config names: the whole output, exactly.
#[test]
fn config_check_also_reports_bad_data_rows() {
    let (status, _, stderr) = config_check(CHECK);
    assert_eq!(status, Some(1), "{stderr}");
    let want = format!(
        "{CHECK}:8:1: unknown field `colour`, expected one of `name`, `title`, `publisher`, `source_url`, `published`, `description`, `metric_prefix`, `period`, `max_label_value_length`
{CHECK}:12:1: unknown field `cadance`, expected one of `label`, `cadence`, `expected_release_lag_days`, `overdue_release_lag_days`
{CHECK}:19:1: missing field `help`
{CHECK}:22:1: unknown field `shade`, expected one of `name`, `help`, `unit`, `scale`, `index_base`, `labels`, `cadence`, `release`, `samples`, `samples_file`
{CHECK}:23:1: unknown field `tint`, expected one of `name`, `help`, `unit`, `scale`, `index_base`, `labels`, `cadence`, `release`, `samples`, `samples_file`
tests/fixtures/bad-formats/check/coverage.csv:3:30: invalid value `ninety-five`, expected a number
{CHECK}: 6 error(s)
"
    );
    assert_eq!(stderr, want);
}

/// The well-formed PC-Axis file's symbol cells through the whole pipeline: `".."` is not
/// available, `"..."` is confidential as its DATASYMBOL3 text says; neither is served.
#[test]
fn pc_axis_symbols_are_counted_by_reason() {
    let ds = indicator_exporter::check(Path::new(&format!("{ROOT}/pc-axis/good.toml")))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut missing: Vec<(String, String, u64)> = ds
        .missing
        .iter()
        .map(|(m, r, n)| (m.clone(), r.to_string(), *n))
        .collect();
    missing.sort();
    assert_eq!(
        missing,
        [
            (
                "t_population_persons".to_string(),
                "confidential".to_string(),
                1
            ),
            (
                "t_population_persons".to_string(),
                "not_available".to_string(),
                1
            ),
        ]
    );
    assert_eq!(ds.series_count(), 4);
}
