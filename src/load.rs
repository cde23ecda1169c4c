//! The load pipeline, start-up and reload alike: read the config and the data files it names
//! (the only I/O), parse and validate ([`load`]), then render ([`load_and_render`]).

use std::path::Path;

use crate::config;
use crate::dataset::{self, DataFiles, Dataset};
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
    let config = config::parse(path, &text)?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut data = DataFiles::new();
    for m in &config.metrics {
        if let Some(f) = &m.get_ref().samples_file {
            let p = base.join(f.get_ref());
            let read = std::fs::read_to_string(&p).map_err(|e| io_reason(&e));
            data.insert(f.get_ref().clone(), (p, read));
        }
    }
    dataset::build(path, &text, &config, &data)
}

/// The OS error without Rust's "(os error 2)" tail.
fn io_reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}
