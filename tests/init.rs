//! `indicator_exporter init` on every real publisher file (and the JSON records sample): the
//! config it writes passes `--config.check` as written, and the exporter started on it serves
//! every figure of the file (read here independently of the exporter's readers) in the unit
//! the file states.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::exporter::run;
use common::{exposition, repo, Exporter};

/// One publisher file and the units its figures must be served in: (family suffix, power of
/// ten from the published figure to the served one). "" is a plain number.
struct Row {
    file: &'static str,
    units: &'static [(&'static str, i32)],
}

const ROWS: &[Row] = &[
    // UNIT_MEASURE PCNT: percent, served as a ratio.
    Row {
        file: "csv-plain/unicef_fusion_csv_IM_MCV1_USA_BRA_2015_2023.csv",
        units: &[("ratio", -2)],
    },
    // "GDP (current US$)".
    Row {
        file: "csv-plain/worldbank_API_NY.GDP.MKTP.CD_DS2_en_csv_v2.csv",
        units: &[("usd", 0)],
    },
    // Category unit "Euro Million".
    Row {
        file: "jsonstat/cso_ie_NQQ25_bundle.json",
        units: &[("eur", 6)],
    },
    // unit PC_ACT: percent of the active population.
    Row {
        file: "jsonstat/estat_une_rt_m_DE_since_2024-01.json",
        units: &[("ratio", -2)],
    },
    // UNITS "Índice, Tasas".
    Row {
        file: "pcaxis/ine_27067_ipri_cantabria_monthly.px",
        units: &[("index", 0)],
    },
    // UNITS "Index".
    Row {
        file: "pcaxis/scb_PR0101B3_cpi_monthly.px",
        units: &[("index", 0)],
    },
    // UNITS "%" of annual changes (some negative).
    Row {
        file: "pcaxis/statfin_khi_pxt_122q_cpi_annual_change.px",
        units: &[("ratio", -2)],
    },
    // No unit in this SDMX-CSV extract.
    Row {
        file: "sdmx-csv/bis_der_sdmxcsv1.csv",
        units: &[("", 0)],
    },
    // unit MIO_EUR.
    Row {
        file: "sdmx-csv/estat_ei_bpm6ca_q_sdmxcsv2_labelsname.csv",
        units: &[("eur", 6)],
    },
    // UNIT AUD, EUR, CAD, CLP with POWERCODE 6.
    Row {
        file: "sdmx-json/oecd_qna_oecdstat_draft.json",
        units: &[("aud", 6), ("eur", 6), ("cad", 6), ("clp", 6)],
    },
    // UNIT_MEASURE TONES (tonnes, 10^6 g) with UNIT_MULT 3.
    Row {
        file: "sdmx-json/spec_v2.0.0_agri.json",
        units: &[("grams", 9)],
    },
    // No unit attribute.
    Row {
        file: "sdmx-json/spec_v2.0.0_exr-time-series.json",
        units: &[("", 0)],
    },
    // UNIT_MEASURE USD, UNIT_MULT 6.
    Row {
        file: "sdmx-ml/bis_der_structurespecific.xml",
        units: &[("usd", 6)],
    },
    // UNIT USD.
    Row {
        file: "sdmx-ml/ecb_exr_M.USD.EUR.SP00.A_generic.xml",
        units: &[("usd", 0)],
    },
    Row {
        file: "sdmx-ml/ecb_exr_ca_sdmxml30_multivalued.xml",
        units: &[("cad", 0)],
    },
    // UNIT CAD, CHF and LTL (no longer an ISO 4217 code: a plain number).
    Row {
        file: "sdmx-ml/ecb_exr_sdmxml30_structurespecific.xml",
        units: &[("cad", 0), ("chf", 0), ("", 0)],
    },
    // Unit rows "Index Numbers" and "Percent".
    Row {
        file: "xls/abs_640101_cpi.xls",
        units: &[("index", 0), ("ratio", -2)],
    },
    // Unit row "000 Hours": thousands, a plain number.
    Row {
        file: "xlsx/abs_6202021_labour_force.xlsx",
        units: &[("", 3)],
    },
    // JSON records (the illustrative sample of the formats guide): PC, THS_PER and NR.
    Row {
        file: "../../../examples/formats/data/observations.json",
        units: &[("ratio", -2), ("persons", 3), ("", 0)],
    },
];

/// Structure messages hold no observations: init says so and what to do.
const STRUCTURES: &[&str] = &[
    "sdmx-ml/ecb_exr1_structure_full_with_codelists.xml",
    "sdmx-ml/ecb_exr_ca_sdmxml30_dsd.xml",
    "sdmx-ml/sdmx_cl_age_sdmxml30_codelists.xml",
];

fn fixture(file: &str) -> PathBuf {
    repo("tests/fixtures/publishers").join(file)
}

#[test]
fn the_table_covers_every_publisher_fixture() {
    let mut listed: Vec<&str> = ROWS
        .iter()
        .map(|r| r.file)
        .filter(|f| !f.starts_with("../"))
        .chain(STRUCTURES.iter().copied())
        .collect();
    listed.sort_unstable();
    let mut found = Vec::new();
    let root = repo("tests/fixtures/publishers");
    for dir in std::fs::read_dir(&root).unwrap() {
        let dir = dir.unwrap().path();
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().path();
            if f.file_name().unwrap() != "README.md" {
                found.push(
                    f.strip_prefix(&root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    found.sort_unstable();
    assert_eq!(listed, found);
}

#[test]
fn init_writes_a_config_that_serves_every_figure_of_every_publisher_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for row in ROWS {
        if let Err(e) = check_row(row, dir.path()) {
            failures.push(format!("{}: {e}", row.file));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

fn check_row(row: &Row, dir: &Path) -> Result<(), String> {
    let config = dir.join(format!("{}.toml", row.file.replace('/', "_")));
    let source = fixture(row.file);
    let out = run(&[
        "init",
        source.to_str().unwrap(),
        "-o",
        config.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("init failed: {stderr}"));
    }
    let text = std::fs::read_to_string(&config).unwrap();
    let check = run(&["--config.check", "--config.file", config.to_str().unwrap()]);
    if !check.status.success() {
        return Err(format!(
            "--config.check refused it:\n{}\n{text}",
            String::from_utf8_lossy(&check.stderr)
        ));
    }
    let served = served(&config, &text, row)?;
    let want = figures(&source);
    compare(served, want).map_err(|e| format!("{e}\n{text}"))
}

/// Every figure the exporter serves for the config's metrics, each brought back to the
/// published scale by its unit's power of ten.
fn served(config: &Path, text: &str, row: &Row) -> Result<Vec<f64>, String> {
    let parsed: toml::Table = text.parse().map_err(|e| format!("{e}"))?;
    let prefix = parsed["dataset"]["metric_prefix"]
        .as_str()
        .unwrap()
        .to_string();
    let names: Vec<String> = parsed["metric"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_string())
        .collect();
    let e = Exporter::start(&["--config.file", config.to_str().unwrap()]);
    let x = exposition::parse(&e.metrics());
    let by_name = x.by_name();
    let mut values = Vec::new();
    for name in names {
        let found = row.units.iter().find_map(|(suffix, exp)| {
            let family = match *suffix {
                "" => format!("{prefix}{name}"),
                s => format!("{prefix}{name}_{s}"),
            };
            by_name.get(&family).map(|samples| (samples, *exp))
        });
        let Some((samples, exp)) = found else {
            return Err(format!(
                "metric {name}: served in none of the units {:?}",
                row.units
            ));
        };
        values.extend(samples.iter().map(|s| s.value / 10f64.powi(exp)));
    }
    Ok(values)
}

/// Same figures, one for one (sorted; equal to 12 significant digits, what survives dividing
/// the served figure by its power of ten).
fn compare(mut got: Vec<f64>, mut want: Vec<f64>) -> Result<(), String> {
    got.sort_by(f64::total_cmp);
    want.sort_by(f64::total_cmp);
    if got.len() != want.len() {
        return Err(format!(
            "{} figures served, the file has {}",
            got.len(),
            want.len()
        ));
    }
    for (g, w) in got.iter().zip(&want) {
        if (g - w).abs() > 1e-12 * w.abs().max(1e-300) {
            return Err(format!("served {g}, the file has {w}"));
        }
    }
    Ok(())
}

/// A figure of the file: a finite number.
fn figure(text: &str) -> Option<f64> {
    text.trim()
        .trim_matches('"')
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
}

/// The figures of a publisher file, read by hand from its format's plain structure.
fn figures(path: &Path) -> Vec<f64> {
    let bytes = std::fs::read(path).unwrap();
    let name = path.to_string_lossy();
    if name.ends_with(".xlsx") || name.ends_with(".xls") {
        return workbook(path);
    }
    let text = String::from_utf8_lossy(&bytes);
    let text = text.trim_start_matches('\u{feff}');
    if name.ends_with(".px") {
        let data = &text[text.find("DATA=").unwrap() + 5..];
        return data
            .split([' ', '\t', '\r', '\n', ';'])
            .filter_map(figure)
            .collect();
    }
    if name.ends_with(".xml") {
        return xml_values(text);
    }
    if name.ends_with(".json") {
        let doc: serde_json::Value = serde_json::from_str(text).unwrap();
        if let Some(records) = doc.pointer("/data/observations").and_then(|r| r.as_array()) {
            return records
                .iter()
                .filter_map(|r| figure(&r["value"].to_string()))
                .collect();
        }
        let mut out = Vec::new();
        json_values(&doc, &mut out);
        return out;
    }
    csv_values(text)
}

/// `OBS_VALUE="…"` (StructureSpecific) and `<…ObsValue value="…"/>` (GenericData).
fn xml_values(text: &str) -> Vec<f64> {
    let mut out = Vec::new();
    for marker in ["OBS_VALUE=\"", "ObsValue value=\""] {
        for piece in text.split(marker).skip(1) {
            if let Some(v) = figure(&piece[..piece.find('"').unwrap()]) {
                out.push(v);
            }
        }
    }
    out
}

/// JSON-stat `value` (array or sparse object) and SDMX-JSON `observations` (each an array
/// whose first element is the figure), wherever they are in the document.
fn json_values(v: &serde_json::Value, out: &mut Vec<f64>) {
    use serde_json::Value;
    let Value::Object(o) = v else {
        if let Value::Array(a) = v {
            a.iter().for_each(|e| json_values(e, out));
        }
        return;
    };
    for (k, v) in o {
        match (k.as_str(), v) {
            ("value", Value::Array(a)) => {
                out.extend(a.iter().filter_map(|x| figure(&x.to_string())))
            }
            ("value", Value::Object(m)) => {
                out.extend(m.values().filter_map(|x| figure(&x.to_string())))
            }
            ("observations", Value::Object(m)) => out.extend(
                m.values()
                    .filter_map(|obs| obs.get(0))
                    .filter_map(|x| figure(&x.to_string())),
            ),
            _ => json_values(v, out),
        }
    }
}

/// A CSV's `OBS_VALUE` column, or for a wide file (World Bank) the cells under year headers.
fn csv_values(text: &str) -> Vec<f64> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let header = records.iter().position(|r| r.len() > 3).unwrap();
    let cols: Vec<usize> = match records[header]
        .iter()
        .position(|h| h.eq_ignore_ascii_case("OBS_VALUE"))
    {
        Some(c) => vec![c],
        None => records[header]
            .iter()
            .enumerate()
            .filter(|(_, h)| h.len() == 4 && h.chars().all(|c| c.is_ascii_digit()))
            .map(|(i, _)| i)
            .collect(),
    };
    records[header + 1..]
        .iter()
        .flat_map(|r| {
            cols.iter()
                .filter_map(|&c| r.get(c).and_then(figure))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The numbers right of column A below the `Series ID` row of a time-series workbook's data
/// sheet.
fn workbook(path: &Path) -> Vec<f64> {
    use calamine::{open_workbook_auto, Data, Reader};
    let mut wb = open_workbook_auto(path).unwrap();
    let sheet = wb
        .sheet_names()
        .into_iter()
        .find(|n| n.starts_with("Data"))
        .unwrap();
    let range = wb.worksheet_range(&sheet).unwrap();
    let rows: Vec<&[Data]> = range.rows().collect();
    let header = rows
        .iter()
        .position(|r| matches!(&r[0], Data::String(s) if s == "Series ID"))
        .unwrap();
    rows[header + 1..]
        .iter()
        .flat_map(|r| {
            r[1..].iter().filter_map(|d| match d {
                Data::Float(f) => Some(*f),
                Data::Int(i) => Some(*i as f64),
                _ => None,
            })
        })
        .collect()
}

#[test]
fn a_structure_message_is_refused_with_what_to_do() {
    for file in STRUCTURES {
        let out = run(&["init", fixture(file).to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{file}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("an SDMX structure message") && stderr.contains("`structure`"),
            "{file}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{file}: nothing written");
    }
}

#[test]
fn init_reads_a_url_and_the_config_names_it() {
    let body = std::fs::read(fixture(
        "sdmx-csv/estat_ei_bpm6ca_q_sdmxcsv2_labelsname.csv",
    ))
    .unwrap();
    let body = bytes::Bytes::from(body);
    let server = common::loopback::Loopback::start(move |_req| {
        let body = body.clone();
        async move {
            http::Response::builder()
                .header("content-type", "text/csv")
                .body(http_body_util::Full::new(body))
                .unwrap()
        }
    });
    let url = format!("http://{}/data/ei_bpm6ca_q.csv", server.addr());
    let out = run(&["init", &url]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains(&format!("file = \"{url}\"")), "{text}");
    assert!(text.contains("metric_dimension = \"bop_item\""), "{text}");
    assert!(
        stderr.contains("standard output: OK: dataset ei_bpm6ca_q, 2 metrics, 19 series"),
        "{stderr}"
    );
}

#[test]
fn every_choice_is_a_comment_and_guesses_are_marked() {
    let out = run(&[
        "init",
        fixture("xlsx/abs_6202021_labour_force.xlsx")
            .to_str()
            .unwrap(),
    ]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    // The unit row's code is unknown: its guess is marked, and its scale kept.
    assert!(
        text.contains("# CHOOSE: unit code `000 Hours` is not one the exporter knows; `count`"),
        "{text}"
    );
    assert!(
        text.contains("scale = 3        # `000 Hours` is in thousands"),
        "{text}"
    );
    assert!(
        text.contains("unit_codes = { \"000 Hours\" = \"count\" }"),
        "{text}"
    );
    // Where the series and periods are.
    assert!(text.contains("header = \"Series ID\""), "{text}");
    assert!(text.contains("frequency = \"quarterly\""), "{text}");
    let unicef = run(&[
        "init",
        fixture("csv-plain/unicef_fusion_csv_IM_MCV1_USA_BRA_2015_2023.csv")
            .to_str()
            .unwrap(),
    ]);
    let text = String::from_utf8(unicef.stdout).unwrap();
    // One label: the area varies; the indicator has one code and names the metric.
    assert!(
        text.contains("labels = { ref_area = \"REF_AREA\" }"),
        "{text}"
    );
    assert!(
        text.contains("Not labels, one code in the whole file: INDICATOR = IM_MCV1"),
        "{text}"
    );
    assert!(text.contains("name = \"im_mcv1\""), "{text}");
    let map: BTreeMap<&str, &str> = [("REF_AREA", "Geographic area")].into_iter().collect();
    for (code, name) in map {
        assert!(text.contains(&format!("{code} = \"{name}\"")), "{text}");
    }
}

#[test]
fn a_file_init_cannot_read_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("notes.txt");
    std::fs::write(&bad, "just one line of prose\n").unwrap();
    let out = run(&["init", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!("{}: ", bad.display())),
        "{stderr}"
    );
    assert!(
        stderr.contains("expected CSV, JSON, XML or PC-Axis"),
        "{stderr}"
    );
}

/// The config the documentation shows is what init writes for that file (its `published`
/// line, the file's modification date, aside).
#[test]
fn the_documented_config_is_what_init_writes() {
    let dir = repo("examples/init");
    let out = common::exporter::command()
        .args([
            "init",
            "../../tests/fixtures/publishers/sdmx-csv/estat_ei_bpm6ca_q_sdmxcsv2_labelsname.csv",
        ])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let published = |t: &str| {
        t.lines()
            .filter(|l| !l.starts_with("published = "))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let written = String::from_utf8(out.stdout).unwrap();
    let kept = std::fs::read_to_string(dir.join("estat-current-account.toml")).unwrap();
    assert_eq!(published(&written), published(&kept));
}

/// `--structure`: the DSD and codelists of SDMX data name its codes, and the config names the
/// structure; a structure for data of another format is refused.
#[test]
fn a_structure_names_the_codes_of_sdmx_data() {
    let data = fixture("sdmx-ml/ecb_exr_M.USD.EUR.SP00.A_generic.xml");
    let structure = fixture("sdmx-ml/ecb_exr1_structure_full_with_codelists.xml");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ecb.toml");
    let out = run(&[
        "init",
        data.to_str().unwrap(),
        "--structure",
        structure.to_str().unwrap(),
        "-o",
        config.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("252 series, month 1999-01..2019-12"),
        "{stderr}"
    );
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("CURRENCY = USD (US dollar)"), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("structure = \"")
            && l.contains(
                "/tests/fixtures/publishers/sdmx-ml/ecb_exr1_structure_full_with_codelists.xml\""
            )),
        "{text}"
    );
    let csv = fixture("csv-plain/unicef_fusion_csv_IM_MCV1_USA_BRA_2015_2023.csv");
    let out = run(&[
        "init",
        csv.to_str().unwrap(),
        "--structure",
        structure.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "--structure for a csv file, expected one only for SDMX-ML, SDMX-CSV or SDMX-JSON data"
        ),
        "{stderr}"
    );
}
