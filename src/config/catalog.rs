//! The catalogue: which datasets one daemon serves, and what must hold across them.
//!
//! The main config file (`--config.file`) may hold a dataset itself, name dataset config files
//! (`[catalog] datasets`) and a directory of them (`[catalog] directory`, one `*.toml` file per
//! dataset, as a Kubernetes ConfigMap mounts them). Each dataset is then loaded on its own
//! ([`crate::reload::load`]); [`crate::dataset::families::clashes`] checks that together they
//! still make one valid exposition.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;

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
    let Some(catalog) = file.catalog else {
        // The file alone, dataset or not: loading it as a dataset says what is missing, with
        // every other problem.
        return Ok(Plan {
            entries: vec![Entry {
                config_file: main.to_path_buf(),
            }],
            directory: None,
            main_text: Some(text),
        });
    };
    let catalog = catalog.into_inner();
    let base = main.parent().unwrap_or(Path::new("."));
    let map = SourceMap::new(main, &text);
    let mut gathering = Gathering::new(main, &map, file.has_dataset);
    for f in &catalog.datasets {
        gathering.add(normal(&base.join(f.get_ref())), f.span());
    }
    let directory = catalog
        .directory
        .as_ref()
        .map(|dir| gathering.add_directory(base, dir));
    let Gathering {
        entries, mut errs, ..
    } = gathering;
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

/// The catalogue's entries as they are gathered from the main config file, where each was
/// named, and the problems found on the way.
struct Gathering<'a> {
    main: &'a Path,
    map: &'a SourceMap<'a>,
    /// Where each entry was named, to report one named twice.
    named: HashMap<PathBuf, String>,
    entries: Vec<Entry>,
    errs: Vec<Diagnostic>,
}

impl<'a> Gathering<'a> {
    /// Starts with the main config file itself when it holds a dataset.
    fn new(main: &'a Path, map: &'a SourceMap<'a>, has_dataset: bool) -> Gathering<'a> {
        let mut g = Gathering {
            main,
            map,
            named: HashMap::new(),
            entries: Vec::new(),
            errs: Vec::new(),
        };
        if has_dataset {
            g.entries.push(Entry {
                config_file: main.to_path_buf(),
            });
            g.named
                .insert(key(main), "the main config file itself".into());
        }
        g
    }

    /// Adds the dataset file `path`, named at `at` in the main config file, unless it is in
    /// the catalogue already: then the problem says where it was named first.
    fn add(&mut self, path: PathBuf, at: Range<usize>) {
        let (line, col) = self.map.line_col(at.start);
        let here = format!("{}:{line}:{col}", self.main.display());
        match self.named.get(&key(&path)) {
            Some(first) => self.errs.push(self.map.diag(
                at,
                format!(
                    "dataset file `{}` is already in the catalogue ({first}), expected each dataset once",
                    path.display()
                ),
            )),
            None => {
                self.named.insert(key(&path), here);
                self.entries.push(Entry { config_file: path });
            }
        }
    }

    /// Adds the dataset files of `[catalog] directory` (relative to `base`), and returns the
    /// directory. An empty directory is a problem only when the catalogue has no other dataset.
    fn add_directory(&mut self, base: &Path, dir: &Spanned<String>) -> PathBuf {
        let path = normal(&base.join(dir.get_ref()));
        match dataset_files(&path) {
            Ok(files) if files.is_empty() && self.named.is_empty() => self.errs.push(self.map.diag(
                dir.span(),
                format!(
                    "directory `{}` has no `*.toml` dataset file, expected at least one dataset in the catalogue",
                    path.display()
                ),
            )),
            Ok(files) => {
                for f in files {
                    self.add(f, dir.span());
                }
            }
            Err(e) => self.errs.push(self.map.diag(
                dir.span(),
                format!(
                    "cannot read directory `{}`: {e}, expected a directory of dataset files",
                    path.display()
                ),
            )),
        }
        path
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_named_twice_is_refused_where_it_is_named_again() {
        let main = Path::new("/etc/ie/main.toml");
        let text = "[dataset]\n[catalog]\ndatasets = [\"a.toml\", \"./a.toml\", \"main.toml\"]\n";
        let map = SourceMap::new(main, text);
        let mut g = Gathering::new(main, &map, true);
        let at = |s: &str| {
            let start = text.find(s).unwrap();
            start..start + s.len()
        };
        g.add(normal(Path::new("/etc/ie/a.toml")), at("\"a.toml\""));
        g.add(normal(Path::new("/etc/ie/./a.toml")), at("\"./a.toml\""));
        g.add(normal(Path::new("/etc/ie/main.toml")), at("\"main.toml\""));
        let entries: Vec<&Path> = g.entries.iter().map(|e| e.config_file.as_path()).collect();
        assert_eq!(
            entries,
            [Path::new("/etc/ie/main.toml"), Path::new("/etc/ie/a.toml")]
        );
        let errs: Vec<String> = g.errs.iter().map(|d| d.to_string()).collect();
        assert_eq!(
            errs,
            [
                "/etc/ie/main.toml:3:23: dataset file `/etc/ie/a.toml` is already in the catalogue (/etc/ie/main.toml:3:13), expected each dataset once",
                "/etc/ie/main.toml:3:35: dataset file `/etc/ie/main.toml` is already in the catalogue (the main config file itself), expected each dataset once",
            ]
        );
    }
}
