//! The documentation's commands run as written: every `indicator_exporter` line of the `sh`
//! blocks of README.md and of every page of docs/ that does not serve (`--config.check`,
//! `export`, `init`, `--version`) is run verbatim by `sh`, with the built binary first on the PATH (as
//! `make run` installs it), in a folder that holds the repository's config and examples, and
//! must succeed. Serving commands are the ones every other test runs.

mod common;

use std::path::Path;
use std::process::Command;

use common::docs::{blocks, pages};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Every line of every `sh` block of the README and docs/, comments kept (sh ignores them),
/// with the page it is on.
fn sh_lines() -> Vec<(String, String)> {
    pages()
        .iter()
        .flat_map(|(name, text)| blocks(name, text))
        .filter(|b| b.lang == "sh")
        .flat_map(|b| {
            let page = b.page.clone();
            b.body
                .lines()
                .map(|l| (page.clone(), l.trim().to_string()))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn documented_commands_that_do_not_serve_run_as_written() {
    let commands: Vec<(String, String)> = sh_lines()
        .into_iter()
        .filter(|(_, l)| l.starts_with("indicator_exporter "))
        .filter(|(_, l)| {
            ["--config.check", " export ", "--version", " init "]
                .iter()
                .any(|w| l.contains(w))
        })
        .collect();
    assert!(
        commands.len() >= 15,
        "only {} such commands in the documentation: {commands:?}",
        commands.len()
    );
    assert!(
        commands.iter().any(|(page, _)| page == "README.md"),
        "the README's own commands are run"
    );
    let tmp = tempfile::tempdir().expect("temporary directory");
    for entry in ["config.toml", "examples", "tests"] {
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
    for (page, c) in &commands {
        let out = Command::new("sh")
            .arg("-c")
            .arg(c)
            .current_dir(tmp.path())
            .env("PATH", &path)
            .output()
            .expect("run sh");
        assert!(
            out.status.success(),
            "{page}: command failed: {c}\n{}{}",
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
