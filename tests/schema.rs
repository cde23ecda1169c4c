//! The published JSON Schema (schema/config.schema.json) checked by a real JSON Schema
//! validator (Python's `jsonschema`, in the project's validator environment that
//! `scripts/install-deps` makes): every example and every test config the exporter accepts is
//! valid, and a config with an unknown key is not. And taplo, the engine of the editors' TOML
//! support, finds the schema through `.taplo.toml` and flags what the exporter would refuse.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::repo;

/// Validates each TOML file against the schema; the validator's verdict per file.
const VALIDATE: &str = r#"
import json, sys, tomllib
import jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
v = jsonschema.Draft202012Validator(schema)
for path in sys.argv[2:]:
    with open(path, "rb") as f:
        doc = tomllib.load(f)
    errors = sorted(v.iter_errors(doc), key=lambda e: list(e.path))
    print(("OK " if not errors else "INVALID ") + path + "".join(" | " + e.message for e in errors))
"#;

fn python() -> PathBuf {
    let p = repo("target/deploy-venv/bin/python3");
    assert!(
        p.exists(),
        "{} is missing: run scripts/install-deps",
        p.display()
    );
    p
}

/// The validator's line for each file, in order.
fn validate(files: &[PathBuf]) -> Vec<String> {
    let out = Command::new(python())
        .arg("-c")
        .arg(VALIDATE)
        .arg(repo("schema/config.schema.json"))
        .args(files)
        .output()
        .expect("run the validator");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn tomls(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            tomls(&p, out);
        } else if p.extension().is_some_and(|x| x == "toml") {
            out.push(p);
        }
    }
}

#[test]
fn every_example_and_accepted_test_config_is_valid() {
    let mut files = vec![repo("config.toml")];
    tomls(&repo("examples"), &mut files);
    let mut fixtures = Vec::new();
    tomls(&repo("tests/fixtures"), &mut fixtures);
    // The test configs the exporter accepts (the bad ones are meant to be refused).
    let accepted: Vec<PathBuf> = fixtures
        .into_iter()
        .filter(|p| indicator_exporter::check(p).is_ok())
        .collect();
    assert!(accepted.len() >= 10, "{accepted:?}");
    files.extend(accepted);
    let verdicts = validate(&files);
    assert_eq!(verdicts.len(), files.len());
    let invalid: Vec<&String> = verdicts.iter().filter(|v| !v.starts_with("OK ")).collect();
    assert!(invalid.is_empty(), "{invalid:#?}");
}

#[test]
fn an_unknown_key_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(repo("config.toml")).unwrap();
    let cases = [
        ("top.toml", format!("colour = \"red\"\n{good}")),
        (
            "dataset.toml",
            good.replacen("[dataset]\n", "[dataset]\ncolour = \"red\"\n", 1),
        ),
        (
            "metric.toml",
            good.replacen("[[metric]]\n", "[[metric]]\nmultiplier = 3\n", 1),
        ),
    ];
    let mut files = Vec::new();
    for (name, text) in &cases {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        files.push(p);
    }
    // The unchanged file is valid: each case fails for its one key.
    files.push(repo("config.toml"));
    let verdicts = validate(&files);
    for v in &verdicts[..3] {
        assert!(
            v.starts_with("INVALID ") && v.contains("Additional properties are not allowed"),
            "{v}"
        );
    }
    assert!(
        verdicts[0].contains("'colour' was unexpected"),
        "{}",
        verdicts[0]
    );
    assert!(
        verdicts[2].contains("'multiplier' was unexpected"),
        "{}",
        verdicts[2]
    );
    assert!(verdicts[3].starts_with("OK "), "{}", verdicts[3]);
}

/// Values are typed as the config types parse them: a value of the wrong kind is flagged as
/// the exporter refuses it.
#[test]
fn a_value_of_the_wrong_kind_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(repo("config.toml")).unwrap();
    let cases = [
        (
            "cadence.toml",
            good.replacen("cadence = \"annual\"", "cadence = 5", 1),
            "5 is not of type 'string'",
        ),
        (
            "lag.toml",
            good.replacen(
                "expected_release_lag_days = 31",
                "expected_release_lag_days = \"ninety\"",
                1,
            ),
            "'ninety' is not of type 'integer'",
        ),
    ];
    for (name, text, want) in &cases {
        assert_ne!(text, &good, "{name}: the case changes the file");
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        assert!(
            indicator_exporter::check(&p).is_err(),
            "{name}: the exporter refuses it"
        );
        let verdict = &validate(&[p])[0];
        assert!(
            verdict.starts_with("INVALID ") && verdict.contains(want),
            "{name}: {verdict}"
        );
    }
}

#[test]
fn taplo_finds_the_schema_for_the_examples_and_flags_an_unknown_key() {
    let taplo = repo("target/deploy-venv/bin/taplo");
    assert!(
        taplo.exists(),
        "{} is missing: run scripts/install-deps",
        taplo.display()
    );
    let lint = |dir: &Path, files: &[&str]| {
        Command::new(&taplo)
            .current_dir(dir)
            .arg("lint")
            .args(files)
            .output()
            .expect("run taplo")
    };
    let ok = lint(
        &repo(""),
        &["config.toml", "examples/formats/sdmx-csv-bis.toml"],
    );
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // A copy of the repository's .taplo.toml and schema, and a file its rule covers with a
    // misspelt key (in a directory of its own, so no other test sees the file).
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("schema")).unwrap();
    std::fs::create_dir_all(dir.path().join("examples")).unwrap();
    for f in [".taplo.toml", "schema/config.schema.json"] {
        std::fs::copy(repo(f), dir.path().join(f)).unwrap();
    }
    let good = std::fs::read_to_string(repo("config.toml")).unwrap();
    std::fs::write(
        dir.path().join("examples/misspelt.toml"),
        good.replacen("[dataset]\n", "[dataset]\ntitel = \"x\"\n", 1),
    )
    .unwrap();
    let out = lint(dir.path(), &["examples/misspelt.toml"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("'titel' was unexpected"), "{err}");
}

/// Every key of the schema, with its dotted path.
fn keys(node: &serde_json::Value, path: &str, out: &mut Vec<(String, String)>) {
    let node = match node.get("type").and_then(|t| t.as_str()) {
        Some("array") => &node["items"],
        _ => node,
    };
    let Some(props) = node.get("properties").and_then(|p| p.as_object()) else {
        return;
    };
    for (k, v) in props {
        let p = if path.is_empty() {
            k.clone()
        } else {
            format!("{path}.{k}")
        };
        out.push((k.clone(), p.clone()));
        keys(v, &p, out);
    }
}

#[test]
fn every_key_of_the_config_is_in_the_reference() {
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo("schema/config.schema.json")).unwrap())
            .unwrap();
    let mut all = Vec::new();
    keys(&schema, "", &mut all);
    assert!(all.len() > 100, "{}", all.len());
    let reference = std::fs::read_to_string(repo("docs/configuration.md")).unwrap();
    let missing: Vec<&String> = all
        .iter()
        .filter(|(k, p)| {
            !(reference.contains(&format!("`{k}`"))
                || reference.contains(&format!("{k} ="))
                || reference.contains(&format!("[{p}"))
                || reference.contains(&format!("[[{p}")))
        })
        .map(|(_, p)| p)
        .collect();
    assert!(
        missing.is_empty(),
        "keys docs/configuration.md does not describe: {missing:?}"
    );
}
