//! The README's commands run as written: every `indicator_exporter` line of its `sh` blocks
//! that does not serve (`--config.check`, `export`, `--version`) is run verbatim by `sh`, with
//! the built binary first on the PATH (as `make run` installs it), in a folder that holds the
//! repository's config and examples, and must succeed. Serving commands are the ones every
//! other test runs.

mod common;

use std::path::Path;
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The lines of the README's `sh` code blocks, comments kept (sh ignores them).
fn sh_lines(readme: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_sh = false;
    for line in readme.lines() {
        if line.trim_start().starts_with("```") {
            in_sh = !in_sh && line.trim() == "```sh";
            continue;
        }
        if in_sh {
            out.push(line.trim().to_string());
        }
    }
    out
}

#[test]
fn readme_commands_that_do_not_serve_run_as_written() {
    let readme = std::fs::read_to_string(format!("{ROOT}/README.md")).expect("README.md");
    let commands: Vec<String> = sh_lines(&readme)
        .into_iter()
        .filter(|l| l.starts_with("indicator_exporter "))
        .filter(|l| {
            ["--config.check", " export ", "--version"]
                .iter()
                .any(|w| l.contains(w))
        })
        .collect();
    assert!(
        commands.len() >= 5,
        "only {} such commands in the README: {commands:?}",
        commands.len()
    );
    let tmp = tempfile::tempdir().expect("temporary directory");
    for entry in ["config.toml", "examples"] {
        std::os::unix::fs::symlink(Path::new(ROOT).join(entry), tmp.path().join(entry))
            .expect("link the repository's files");
    }
    let bin_dir = Path::new(common::exporter::BIN)
        .parent()
        .expect("the binary's folder");
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for c in &commands {
        let out = Command::new("sh")
            .arg("-c")
            .arg(c)
            .current_dir(tmp.path())
            .env("PATH", &path)
            .output()
            .expect("run sh");
        assert!(
            out.status.success(),
            "README command failed: {c}\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // What they wrote is what they say.
    let om = std::fs::read_to_string(tmp.path().join("history.om")).expect("history.om");
    assert!(om.ends_with("# EOF\n"), "{om}");
    let prom = std::fs::read_to_string(tmp.path().join("history.prom")).expect("history.prom");
    assert!(
        prom.lines().any(|l| l.ends_with(" 0.533 1735689599000")),
        "{prom}"
    );
}
