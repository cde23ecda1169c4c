//! Peak memory of a load against the size of its body, for publishers whose structure declares
//! far more codes than their data use: the real binary's `--config.check`, its peak resident
//! set read from `wait4` once it has exited.

mod common;

use std::fmt::Write as _;
use std::path::Path;
use std::process::Stdio;

/// The SDMX-JSON fixture every format test knows, its config naming `file`.
const SDMX_JSON: &str = "tests/fixtures/bad-formats/sdmx-json/good.json";
const SDMX_JSON_CONFIG: &str = "tests/fixtures/bad-formats/sdmx-json/good.toml";

/// Runs `--config.check` on `config` to its end: its exit code, stdout and stderr, and peak
/// resident set in bytes, from `wait4`: the peak of exactly this process, start-up included,
/// with no sampling to miss a short spike.
///
/// Linux carries a process's peak across `exec` from the memory it had before, and a child
/// spawned straight from this test process (vfork) starts with this process's memory: its
/// peak would be this process's, large bodies generated in it included. So the binary is
/// started by a small shell, which exits at once; this process, a subreaper, inherits the
/// binary and reaps it.
fn check(config: &Path) -> (Option<i32>, String, u64) {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER only sets a flag of this process.
    assert_eq!(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) }, 0);
    let dir = tempfile::tempdir().expect("temporary directory");
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let shell = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(r#""$0" "$@" >"$OUT" 2>"$ERR" </dev/null & echo $!"#)
        .arg(common::exporter::BIN)
        .args(["--config.check", "--config.file", config.to_str().unwrap()])
        .env("OUT", &out)
        .env("ERR", &err)
        .stderr(Stdio::inherit())
        .output()
        .expect("run /bin/sh");
    let pid: libc::pid_t = String::from_utf8_lossy(&shell.stdout)
        .trim()
        .parse()
        .expect("the shell prints the binary's pid");
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 only writes the status and struct given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let got = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(got, pid, "wait4: {}", std::io::Error::last_os_error());
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    let mut output = std::fs::read_to_string(&err).expect("read stderr");
    output.push_str(&std::fs::read_to_string(&out).expect("read stdout"));
    // Linux gives ru_maxrss in KiB.
    (code, output, usage.ru_maxrss as u64 * 1024)
}

/// A directory with the SDMX-JSON config and `json` as its data file.
fn sdmx_json_dataset(json: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = dir.path().join("good.toml");
    std::fs::copy(SDMX_JSON_CONFIG, &config).expect("copy config");
    std::fs::write(dir.path().join("good.json"), json).expect("write data");
    (dir, config)
}

/// `n` values of a dimension, codes `<prefix><i>`, each with a name.
fn values(prefix: &str, n: usize) -> String {
    let mut out = String::with_capacity(n * 40);
    for i in 0..n {
        if i > 0 {
            out.push(',');
        }
        write!(out, r#"{{"id":"{prefix}{i:06}","name":"{prefix} {i}"}}"#).unwrap();
    }
    out
}

/// The fixture with its two series dimensions declaring `n` values each, its second series
/// keyed `second` instead.
fn sdmx_json_wide(n: usize, second: &str) -> String {
    let fixture: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(SDMX_JSON).unwrap()).unwrap();
    let text = serde_json::to_string(&fixture).unwrap();
    let mut out = text.clone();
    for (id, prefix) in [("REF_AREA", "A"), ("MEASURE", "M")] {
        let dims = &fixture["data"]["structures"][0]["dimensions"]["series"];
        let dim = dims
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == id)
            .unwrap();
        let declared = serde_json::to_string(&dim["values"]).unwrap();
        assert!(out.contains(&declared), "{id} values in the fixture");
        out = out.replace(&declared, &format!("[{}]", values(prefix, n)));
    }
    assert!(out.contains(r#""1:0""#));
    out.replace(r#""1:0""#, &format!("\"{second}\""))
}

/// Peak of a load of the small fixture: the process itself, its allocator and start-up.
fn baseline() -> u64 {
    let json = std::fs::read_to_string(SDMX_JSON).unwrap();
    let (_dir, config) = sdmx_json_dataset(&json);
    let (code, output, peak) = check(&config);
    assert_eq!(code, Some(0), "{output}");
    peak
}

const MB: f64 = 1048576.0;

#[test]
fn sdmx_json_declaring_200000_codes_per_dimension_loads_within_5x_its_body() {
    let base = baseline();
    let n = 200_000;
    let last = n - 1;
    let json = sdmx_json_wide(n, &format!("{last}:{last}"));
    let body = json.len() as u64;
    let (_dir, config) = sdmx_json_dataset(&json);
    let (code, output, peak) = check(&config);
    assert_eq!(code, Some(0), "{output}");
    assert!(output.contains("4 series"), "{output}");
    eprintln!(
        "body {:.1} MB, peak {:.1} MB, baseline {:.1} MB",
        body as f64 / MB,
        peak as f64 / MB,
        base as f64 / MB
    );
    assert!(
        peak <= 5 * body + base,
        "peak {peak} B over 5 x body {body} B + baseline {base} B"
    );

    // A series key out of range is refused, within the same bound.
    let json = sdmx_json_wide(n, &format!("{n}:{last}"));
    let (_dir, config) = sdmx_json_dataset(&json);
    let (code, output, peak) = check(&config);
    assert_eq!(code, Some(1), "{output}");
    assert!(
        output.contains(&format!(
            "index {n} is out of range of dimension `REF_AREA`, expected 0 to {last}"
        )),
        "{output}"
    );
    assert!(
        peak <= 5 * body + base,
        "peak {peak} B over 5 x body {body} B + baseline {base} B"
    );
}

/// The JSON-stat fixture every format test knows, its config naming `good.json`.
const JSON_STAT: &str = "tests/fixtures/bad-formats/json-stat/good.json";
const JSON_STAT_CONFIG: &str = "tests/fixtures/bad-formats/json-stat/good.toml";

/// The JSON-stat fixture with its `geo` dimension declaring `n` categories, `index` an object
/// written last position first (with `last_at` as the position of the last one written) and
/// every category labelled; a value for each `time` of the first and last `geo`, sparse.
fn json_stat_wide(n: usize, last_at: &str) -> String {
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(JSON_STAT).unwrap()).unwrap();
    let ids: Vec<&str> = doc["id"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let geo = ids.iter().position(|id| *id == "geo").unwrap();
    assert_eq!(ids.last(), Some(&"time"), "time varies fastest");
    doc["size"][geo] = n.into();
    let last = 2 * n - 1;
    doc["value"] =
        serde_json::json!({"0": 1.5, "1": 2.5, (last - 1).to_string(): 3.5, last.to_string(): 4.5});
    doc["dimension"]["geo"]["category"] = serde_json::json!("CATEGORY");
    let text = serde_json::to_string(&doc).unwrap();
    let mut index = String::with_capacity(n * 20);
    let mut label = String::with_capacity(n * 30);
    for i in (0..n).rev() {
        let sep = if i + 1 < n { "," } else { "" };
        let at = if i == 0 {
            last_at.to_string()
        } else {
            i.to_string()
        };
        write!(index, r#"{sep}"G{i:06}":{at}"#).unwrap();
        write!(label, r#"{sep}"G{i:06}":"Region {i}""#).unwrap();
    }
    text.replace(
        r#""CATEGORY""#,
        &format!(r#"{{"index":{{{index}}},"label":{{{label}}}}}"#),
    )
}

/// A directory with the JSON-stat config and `json` as its data file.
fn json_stat_dataset(json: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = dir.path().join("good.toml");
    std::fs::copy(JSON_STAT_CONFIG, &config).expect("copy config");
    std::fs::write(dir.path().join("good.json"), json).expect("write data");
    (dir, config)
}

#[test]
fn json_stat_declaring_200000_categories_loads_within_5x_its_body() {
    let base = baseline();
    let n = 200_000;
    let json = json_stat_wide(n, "0");
    let body = json.len() as u64;
    let (_dir, config) = json_stat_dataset(&json);
    let (code, output, peak) = check(&config);
    assert_eq!(code, Some(0), "{output}");
    assert!(output.contains("4 series"), "{output}");
    eprintln!(
        "body {:.1} MB, peak {:.1} MB, baseline {:.1} MB",
        body as f64 / MB,
        peak as f64 / MB,
        base as f64 / MB
    );
    assert!(
        peak <= 5 * body + base,
        "peak {peak} B over 5 x body {body} B + baseline {base} B"
    );

    // A position out of range is refused, within the same bound.
    let json = json_stat_wide(n, &n.to_string());
    let (_dir, config) = json_stat_dataset(&json);
    let (code, output, peak) = check(&config);
    assert_eq!(code, Some(1), "{output}");
    let last = n - 1;
    assert!(
        output.contains(&format!(
            "position of `G000000` is {n}, expected a whole number from 0 to {last}"
        )),
        "{output}"
    );
    assert!(
        peak <= 5 * body + base,
        "peak {peak} B over 5 x body {body} B + baseline {base} B"
    );
}
