//! `indicator_exporter init FILE|URL`: reads a publisher file, tells its format and layout,
//! reads it as the exporter would, and writes a dataset config that serves it, every choice
//! said in a comment. The config is then loaded as `--config.check` loads it, and what it
//! will serve is printed, so that a wrong unit or scale is seen before anything is served.

mod detect;
mod draft;
mod survey;

use std::path::{Component as PathPart, Path, PathBuf};

use toml::Value;

use crate::dataset::calendar;
use crate::reload::load;
use crate::source::{fetch, sdmx_structure, Format, Role};
use detect::Detected;
use survey::Survey;

use draft::snake;

/// What `init` was asked.
#[derive(Debug, Clone)]
pub struct Request {
    /// A file path or an http(s) URL.
    pub source: String,
    /// An SDMX structure message (file or URL) for an SDMX data file: its roles and names.
    pub structure: Option<String>,
    /// Where to write the config; None: standard output.
    pub output: Option<PathBuf>,
    /// Largest file read, in bytes.
    pub max_file_size: u64,
}

/// What `init` made: the config text and where it was written, and what it serves (or why it
/// does not load).
#[derive(Debug)]
pub struct Outcome {
    pub text: String,
    pub served: Result<Vec<String>, String>,
}

/// Reads the source, writes the config. Err: the source could not be read or understood.
pub fn run(req: &Request) -> Result<Outcome, String> {
    let remote = fetch::is_remote(&req.source);
    let bytes = get(&req.source, req.max_file_size)?;
    let mut detected = detect::format(&bytes).map_err(|why| format!("{}: {why}", req.source))?;
    let structure = match &req.structure {
        Some(s) => Some((s, structure(s, detected.format, req.max_file_size)?)),
        None => None,
    };
    let survey = survey(&bytes, &mut detected, structure.as_ref().map(|(_, s)| &s.1))
        .map_err(|e| format!("{}: {e}", req.source))?;
    let config_path = req
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from("dataset.toml"));
    let named = |source: &str| {
        if fetch::is_remote(source) {
            source.to_string()
        } else {
            relative_to(Path::new(source), &config_path)
        }
    };
    let input = draft::Input {
        file: named(&req.source),
        source: req.source.clone(),
        structure: structure.as_ref().map(|(s, _)| named(s)),
        stem: stem(&req.source),
        detected: &detected,
        survey: &survey,
        about: about(&detected.meta, req, remote),
    };
    let text = draft::config(&input);
    let mut bodies = load::RemoteBodies::new();
    if remote {
        bodies.insert(req.source.clone(), Ok(bytes::Bytes::from(bytes)));
    }
    if let Some((s, (body, _))) = structure.filter(|(s, _)| fetch::is_remote(s)) {
        bodies.insert(s.clone(), Ok(bytes::Bytes::from(body)));
    }
    let served = check(&config_path, &text, &bodies, req);
    Ok(Outcome { text, served })
}

/// The bytes of a file or URL.
fn get(source: &str, max: u64) -> Result<Vec<u8>, String> {
    if fetch::is_remote(source) {
        fetch_url(source, max)
    } else {
        crate::read::read_file(Path::new(source), max)
            .map_err(|why| format!("{source}: cannot read: {why}"))
    }
}

/// An SDMX structure message for a data file of `format`, its bytes and what it says.
fn structure(
    source: &str,
    format: Format,
    max: u64,
) -> Result<(Vec<u8>, sdmx_structure::Structure), String> {
    if !matches!(format, Format::SdmxMl | Format::SdmxCsv | Format::SdmxJson) {
        return Err(format!(
            "--structure for a {} file, expected one only for SDMX-ML, SDMX-CSV or SDMX-JSON data",
            format.name()
        ));
    }
    let bytes = get(source, max)?;
    let text = crate::read::as_text(&bytes).map_err(|e| format!("{source}: {e}"))?;
    match sdmx_structure::parse(text) {
        Ok(s) => Ok((bytes, s)),
        Err(problems) => {
            let lines: Vec<String> = problems
                .iter()
                .take(20)
                .map(|(at, m)| format!("{source}:{at}: {m}"))
                .collect();
            Err(lines.join("\n"))
        }
    }
}

/// GETs the URL as a dataset's source is fetched (size cap, redirects, gzip).
fn fetch_url(url: &str, max: u64) -> Result<Vec<u8>, String> {
    let options = fetch::FetchOptions::default();
    let mut settings = options
        .settings(Path::new("."))
        .map_err(|_| format!("{url}: cannot set up fetching"))?;
    settings.max_size = max;
    let fetcher = fetch::Fetcher::new(&settings).map_err(|e| format!("{url}: {e}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    match runtime.block_on(fetcher.fetch(url, &fetch::Validators::default())) {
        Ok(fetch::Fetched::Body { body, .. }) => Ok(body.to_vec()),
        Ok(fetch::Fetched::NotModified) => {
            Err(format!("{url}: 304 Not Modified to a first request"))
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Reads the file with the detected options into a survey; a plain CSV's code and name
/// column pairs are found on a first reading and read as such on a second.
fn survey(
    bytes: &[u8],
    detected: &mut Detected,
    structure: Option<&sdmx_structure::Structure>,
) -> Result<Survey, String> {
    if detected.format == Format::Excel {
        detected.options = detect::excel(bytes, &mut detected.notes)?;
    }
    let mut survey = read(bytes, detected, structure)?;
    if detected.format == Format::Csv {
        let pairs = name_columns(&survey);
        if !pairs.is_empty() {
            let names: toml::Table = pairs
                .iter()
                .map(|(c, n)| (c.clone(), Value::String(n.clone())))
                .collect();
            let listed: Vec<String> = pairs.iter().map(|(c, n)| format!("{c} = {n}")).collect();
            detected.notes.push(format!(
                "code columns followed or preceded by their names: {}",
                listed.join(", ")
            ));
            detected.options.insert("names".into(), Value::Table(names));
            survey = read(bytes, detected, None)?;
        }
    }
    if survey.row_count == 0 {
        return Err(format!(
            "no observations read as {}, expected a file with data",
            detected.format.name()
        ));
    }
    Ok(survey)
}

fn read(
    bytes: &[u8],
    detected: &Detected,
    structure: Option<&sdmx_structure::Structure>,
) -> Result<Survey, String> {
    let options = draft::options(detected.format, &detected.options)?;
    let content = detected.format.content(bytes)?;
    let mut survey = Survey::default();
    match structure {
        Some(s) => options.read_with_structure(content, s, &mut survey),
        None => options.read(content, &mut survey),
    }
    if !survey.errors.is_empty() {
        let lines: Vec<String> = survey
            .errors
            .iter()
            .take(20)
            .map(|(at, m)| format!("{at}: {m}"))
            .collect();
        return Err(format!(
            "cannot be read as {}:\n  {}",
            detected.format.name(),
            lines.join("\n  ")
        ));
    }
    Ok(survey)
}

/// Adjacent columns of a plain CSV where one holds codes and the other one name per code
/// (`Country Name`, `Country Code`; `REF_AREA`, `Geographic area`): code column -> name column.
fn name_columns(s: &Survey) -> Vec<(String, String)> {
    let code_like = |c: usize| {
        s.codes[c].iter().all(|(code, _)| {
            !code.is_empty() && code.len() <= 32 && !code.contains(char::is_whitespace)
        })
    };
    let texty = |c: usize| {
        s.codes[c]
            .iter()
            .any(|(t, _)| t.contains(char::is_whitespace) || t.chars().any(char::is_lowercase))
    };
    let one_to_one = |a: usize, b: usize| {
        let mut ab = rustc_hash::FxHashMap::default();
        let mut ba = rustc_hash::FxHashMap::default();
        s.distinct(a) == s.distinct(b)
            && s.rows.iter().all(|r| {
                *ab.entry(r[a]).or_insert(r[b]) == r[b] && *ba.entry(r[b]).or_insert(r[a]) == r[a]
            })
    };
    let n = s.components.len();
    let usable = |c: usize| s.components[c].role == Role::Dimension;
    let mut used = vec![false; n];
    let mut pairs = Vec::new();
    for a in 0..n.saturating_sub(1) {
        let b = a + 1;
        if used[a] || used[b] || !usable(a) || !usable(b) {
            continue;
        }
        let pair = match (code_like(a) && texty(b), code_like(b) && texty(a)) {
            (true, _) => Some((a, b)),
            (false, true) => Some((b, a)),
            _ => None,
        };
        if let Some((code, name)) = pair.filter(|&(c, m)| one_to_one(c, m)) {
            used[a] = true;
            used[b] = true;
            pairs.push((s.components[code].id.clone(), s.components[name].id.clone()));
        }
    }
    pairs
}

/// Loads the config as `--config.check` does, the data given (a URL's body as fetched);
/// what it will serve, or every error.
fn check(
    path: &Path,
    text: &str,
    bodies: &load::RemoteBodies,
    req: &Request,
) -> Result<Vec<String>, String> {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let parsed = load::parse(&absolute, req.max_file_size, Some(text.to_string()))
        .map_err(|e| e.to_string())?;
    let d = load::build(&parsed, req.max_file_size, bodies).map_err(|e| e.to_string())?;
    let mut lines = vec![format!("OK: {}", d.summary())];
    lines.extend(d.served().into_iter().map(|l| format!("  {l}")));
    Ok(lines)
}

/// The file's name without directory and extension (a URL's last path segment).
fn stem(source: &str) -> String {
    let last = source
        .split(['?', '#'])
        .next()
        .unwrap_or(source)
        .trim_end_matches('/')
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(source);
    let stem = Path::new(last)
        .file_stem()
        .map_or(last.to_string(), |s| s.to_string_lossy().into_owned());
    if stem.is_empty() {
        "dataset".into()
    } else {
        stem
    }
}

/// The dataset's title, publisher, page and publication date: what the file says, else
/// what init can tell (marked CHOOSE).
fn about(meta: &detect::Meta, req: &Request, remote: bool) -> draft::About {
    let from = |v: &Option<(String, String)>| v.clone().map(|(v, w)| (v, format!("from {w}")));
    let choose = |v: String, why: &str| (v, format!("CHOOSE: {why}"));
    draft::About {
        title: from(&meta.title).unwrap_or_else(|| {
            choose(
                stem(&req.source),
                "the dataset's title as its publisher gives it",
            )
        }),
        publisher: from(&meta.publisher)
            .unwrap_or_else(|| choose("unknown".into(), "who publishes it")),
        source_url: if remote {
            (req.source.clone(), "the URL the data was read from".into())
        } else {
            choose(req.source.clone(), "the publisher's page for this data")
        },
        published: from(&meta.published).unwrap_or_else(|| published(&req.source, remote)),
    }
}

/// The publication date to start from: the file's modification date, or today for a URL.
fn published(source: &str, remote: bool) -> (String, String) {
    let modified = (!remote)
        .then(|| std::fs::metadata(source).and_then(|m| m.modified()).ok())
        .flatten();
    let (time, why) = match modified {
        Some(t) => (
            t,
            "CHOOSE: the file's modification date; give the release's date",
        ),
        None => (
            std::time::SystemTime::now(),
            "CHOOSE: the day it was read; give the release's date",
        ),
    };
    let secs = time
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    (calendar::rfc3339(secs)[..10].to_string(), why.into())
}

/// `file`'s path as the config at `config` names it: relative to the config's directory.
fn relative_to(file: &Path, config: &Path) -> String {
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let file = abs(file);
    let dir = abs(config)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let f: Vec<PathPart> = file.components().collect();
    let d: Vec<PathPart> = dir.components().collect();
    let common = f.iter().zip(&d).take_while(|(a, b)| a == b).count();
    if common == 0 {
        return file.display().to_string();
    }
    let mut rel = PathBuf::new();
    for _ in common..d.len() {
        rel.push("..");
    }
    for part in &f[common..] {
        rel.push(part);
    }
    rel.display().to_string()
}
