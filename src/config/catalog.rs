//! The catalogue: which datasets one daemon serves, and what must hold across them.
//!
//! The main config file (`--config.file`) may hold a dataset itself, name dataset config files
//! (`[catalog] datasets`) and a directory of them (`[catalog] directory`, one `*.toml` file per
//! dataset, as a Kubernetes ConfigMap mounts them). Each dataset is then loaded on its own
//! ([`crate::reload::load`]); [`crate::dataset::families::clashes`] checks that together they
//! still make one valid exposition.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::config;
use crate::diagnostic::{Diagnostic, Diagnostics, SourceMap};
use crate::read::read_text;

/// One dataset of the catalogue: the config file it is read from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Entry {
    pub config_file: PathBuf,
}

/// What the main config file names.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub entries: Vec<Entry>,
    /// `[catalog] directory`, watched for dataset files that come and go.
    pub directory: Option<PathBuf>,
    /// The main config's text when it holds a dataset: that dataset's load parses it instead
    /// of reading the file a second time.
    pub main_text: Option<String>,
}

/// The datasets the main config file names, in order: itself first when it holds a dataset,
/// then the listed files, then the directory's files by name.
pub fn plan(main: &Path, max_file_size: u64) -> Result<Plan, Diagnostics> {
    let text = read_text(main, max_file_size).map_err(|why| {
        Diagnostics::one(Diagnostic::file(
            main,
            format!("cannot read config file: {why}"),
        ))
    })?;
    let file = config::parse_catalog(main, &text)?;
    let map = SourceMap::new(main, &text);
    let base = main.parent().unwrap_or(Path::new("."));
    let mut entries = Vec::new();
    let mut errs = Vec::new();
    if file.has_dataset {
        entries.push(Entry {
            config_file: main.to_path_buf(),
        });
    }
    let Some(catalog) = file.catalog else {
        if entries.is_empty() {
            // Loading the file as a dataset says what is missing, with every other problem.
            entries.push(Entry {
                config_file: main.to_path_buf(),
            });
        }
        return Ok(Plan {
            entries,
            directory: None,
            main_text: Some(text),
        });
    };
    let catalog = catalog.into_inner();
    // Where each entry was named, to report one named twice.
    let mut named: HashMap<PathBuf, String> = HashMap::new();
    if file.has_dataset {
        named.insert(key(main), "the main config file itself".into());
    }
    let add = |path: PathBuf,
               at: std::ops::Range<usize>,
               named: &mut HashMap<PathBuf, String>,
               entries: &mut Vec<Entry>,
               errs: &mut Vec<Diagnostic>| {
        let (line, col) = map.line_col(at.start);
        let here = format!("{}:{line}:{col}", main.display());
        match named.get(&key(&path)) {
            Some(first) => errs.push(map.diag(
                at,
                format!(
                    "dataset file `{}` is already in the catalogue ({first}), expected each dataset once",
                    path.display()
                ),
            )),
            None => {
                named.insert(key(&path), here);
                entries.push(Entry { config_file: path });
            }
        }
    };
    for f in &catalog.datasets {
        add(
            normal(&base.join(f.get_ref())),
            f.span(),
            &mut named,
            &mut entries,
            &mut errs,
        );
    }
    let mut directory = None;
    if let Some(dir) = &catalog.directory {
        let path = normal(&base.join(dir.get_ref()));
        directory = Some(path.clone());
        match dataset_files(&path) {
            Ok(files) if files.is_empty() && named.is_empty() => errs.push(map.diag(
                dir.span(),
                format!(
                    "directory `{}` has no `*.toml` dataset file, expected at least one dataset in the catalogue",
                    path.display()
                ),
            )),
            Ok(files) => {
                for f in files {
                    add(f, dir.span(), &mut named, &mut entries, &mut errs);
                }
            }
            Err(e) => errs.push(map.diag(
                dir.span(),
                format!(
                    "cannot read directory `{}`: {e}, expected a directory of dataset files",
                    path.display()
                ),
            )),
        }
    }
    if entries.is_empty() && errs.is_empty() {
        errs.push(Diagnostic::file(
            main,
            "no dataset: expected a `[dataset]` table or a `[catalog]` naming dataset files",
        ));
    }
    if errs.is_empty() {
        let main_text = file.has_dataset.then_some(text);
        Ok(Plan {
            entries,
            directory,
            main_text,
        })
    } else {
        Err(Diagnostics::new(errs))
    }
}

/// How two names of one file are compared: joined to the same base, `.` and `dir/..` taken
/// out as written (symlinks are not resolved: a name is what the user wrote).
fn key(p: &Path) -> PathBuf {
    normal(p)
}

/// `p` with `.` and `dir/..` removed, so messages show `examples/formats/x.toml`, not
/// `examples/catalog/../formats/x.toml`.
pub fn normal(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            c => out.push(c),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// The `*.toml` files of `dir`, sorted. Hidden entries are skipped: a ConfigMap keeps its
/// versions in `..data` and `..2026_…` directories beside the symlinks to its files.
pub fn dataset_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || !name.ends_with(".toml") {
            continue;
        }
        // Symlinks are followed: a ConfigMap's files are links into `..data`.
        if std::fs::metadata(e.path()).is_ok_and(|m| m.is_file()) {
            out.push(e.path());
        }
    }
    out.sort();
    Ok(out)
}
