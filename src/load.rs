//! The load pipeline, start-up and reload alike: read the config and the data files it names
//! (the only I/O), parse and validate ([`load`]), then render ([`load_and_render`]).

use std::path::Path;

use crate::config;
use crate::dataset::{self, DataFile, DataFiles, Dataset};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::snapshot::Snapshot;

/// The whole pipeline, on a blocking thread: a large dataset takes CPU-bound seconds.
pub async fn load_and_render(path: &Path) -> Result<(Dataset, Snapshot), Diagnostics> {
    let owned = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let d = load(&owned)?;
        let s = Snapshot::build(&d);
        Ok((d, s))
    })
    .await
    .unwrap_or_else(|e| {
        Err(Diagnostics::one(Diagnostic::file(
            path,
            format!("loading failed internally: {e}"),
        )))
    })
}

pub fn load(path: &Path) -> Result<Dataset, Diagnostics> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Diagnostics::one(Diagnostic::file(
            path,
            format!("cannot read config file: {}", io_reason(&e)),
        ))
    })?;
    let (config, mut shape) = config::parse_partial(path, &text);
    let Some(config) = config else {
        return Err(Diagnostics::new(shape));
    };
    let base = path.parent().unwrap_or(Path::new("."));
    let mut data = DataFiles::new();
    let named = config
        .metrics
        .iter()
        .filter_map(|m| m.get_ref().samples_file.as_ref())
        .chain(config.inputs.iter().map(|i| &i.get_ref().file));
    for f in named {
        let p = base.join(f.get_ref());
        let text = read_text(&p);
        data.insert(f.get_ref().clone(), DataFile { path: p, text });
    }
    match dataset::build(path, &text, &config, &data) {
        Ok(d) if shape.is_empty() => Ok(d),
        Ok(_) => Err(Diagnostics::new(shape)),
        Err(e) => {
            // Problems of shape first hide what they cause: a metric left out has no labels.
            shape.extend(e.0);
            Err(Diagnostics::new(shape))
        }
    }
}

/// A data file as text: UTF-8 checked here, so that every reader gets text.
fn read_text(p: &Path) -> Result<String, String> {
    let bytes = std::fs::read(p).map_err(|e| io_reason(&e))?;
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        format!("invalid UTF-8 at byte {at} (line {line}), expected UTF-8 text")
    })
}

/// The OS error without Rust's "(os error 2)" tail.
fn io_reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}
