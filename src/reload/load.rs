//! One dataset's load, start-up, reload, `--config.check` and `export` alike, in two steps
//! around the fetch of its remote sources: [`parse`] reads its config once and parses it into
//! a [`Parsed`] value (its name, its remote sources, the problems of its shape), then [`build`]
//! reads each data file once and validates the dataset. Both run on a blocking thread that is
//! waited for within a time ([`off_thread`]). Every read goes through `crate::read`, within
//! `--config.max-file-size`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::config;
use crate::dataset::{self, DataFile, DataFiles, Dataset};
use crate::diagnostic::{Diagnostic, Diagnostics, SourceMap};
use crate::expose::snapshot::Snapshot;
use crate::read::{read_file, read_text, DEFAULT_MAX_FILE_SIZE};
use crate::source::fetch::{self, FetchSettings};
use crate::source::pxweb;

/// How long a load may take before its caller stops waiting for it.
pub const LOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// Loads that outlived their timeout and may still be running (each holds a blocking thread);
/// beyond this many, no new load is started until one ends.
pub const MAX_ABANDONED_LOADS: usize = 4;

/// Bounds on what one load reads and how long it may take.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest config or data file read, in bytes (`--config.max-file-size`).
    pub max_file_size: u64,
    /// How long a load's step waits for its blocking thread.
    pub timeout: Duration,
    /// Loads still running after their timeout, shared by every load of one exporter.
    pub abandoned: Arc<AtomicUsize>,
    /// `--storage.path`: each dataset's figures and vintages (`state/`) and the copies of
    /// remote structures (`structures/`), if kept anywhere.
    pub storage: Option<Arc<crate::state::Storage>>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            timeout: LOAD_TIMEOUT,
            abandoned: Arc::default(),
            storage: None,
        }
    }
}

/// The bodies of a dataset's remote sources, by URL as written in the config, as last
/// fetched (or why there is none). A load reads them instead of files.
pub type RemoteBodies = HashMap<String, Result<bytes::Bytes, String>>;

/// A dataset's config as read and parsed once: what every later step of its load takes.
#[derive(Debug)]
pub struct Parsed {
    pub path: PathBuf,
    text: String,
    /// The config, when its shape let it be read.
    config: Option<config::Config>,
    /// Problems of shape (every one toml and serde report).
    shape: Vec<Diagnostic>,
    /// The remote sources it names, with their checked settings.
    pub remote: Vec<RemoteSource>,
    /// Problems of the remote sources' `[fetch]` options.
    pub fetch_errors: Vec<Diagnostic>,
}

/// A data file that is a URL, with its settings and where it is written (for errors).
#[derive(Debug, Clone)]
pub struct RemoteSource {
    pub url: String,
    pub settings: FetchSettings,
    pub at: Diagnostic,
    /// The PxWeb query asked instead of a GET of `url` (then the query's key).
    pub pxweb: Option<Arc<pxweb::Query>>,
    /// Kept on disk under `--storage.path` (an SDMX structure), so that a start with the
    /// publisher down uses the last copy.
    pub kept: bool,
}

impl Parsed {
    /// The dataset's name as declared, when the config could be read that far.
    pub fn name(&self) -> Option<&str> {
        let c = self.config.as_ref()?;
        Some(c.dataset.get_ref().name.get_ref())
    }
}

/// Reads the config at `path` (unless its `text` was read already, as the main config's is
/// by the catalogue) and parses it. Only a file that cannot be read is an error here; problems
/// of shape are kept for [`build`], which reports them with every other.
pub fn parse(path: &Path, max_file_size: u64, text: Option<String>) -> Result<Parsed, Diagnostics> {
    let text = match text {
        Some(t) => t,
        None => read_text(path, max_file_size).map_err(|why| {
            Diagnostics::one(Diagnostic::file(
                path,
                format!("cannot read config file: {why}"),
            ))
        })?,
    };
    let (config, shape) = config::parse_partial(path, &text);
    let (remote, fetch_errors) = match &config {
        Some(c) => remote_sources(path, &text, c),
        None => (Vec::new(), Vec::new()),
    };
    Ok(Parsed {
        path: path.to_path_buf(),
        text,
        config,
        shape,
        remote,
        fetch_errors,
    })
}

/// Reads each data file the config names once (the bodies of remote ones are in `remote`)
/// and validates the dataset.
pub fn build(
    parsed: &Parsed,
    max_file_size: u64,
    remote: &RemoteBodies,
) -> Result<Dataset, Diagnostics> {
    let Some(config) = &parsed.config else {
        return Err(Diagnostics::new(parsed.shape.clone()));
    };
    let path = &parsed.path;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut data = DataFiles::new();
    let named = config
        .metrics
        .iter()
        .filter_map(|m| m.get_ref().samples_file.as_ref())
        .chain(config.inputs.iter().map(|i| &i.get_ref().file))
        .chain(
            config
                .inputs
                .iter()
                .filter_map(|i| i.get_ref().structure.as_ref()),
        );
    for f in named {
        if data.contains_key(f.get_ref()) {
            continue;
        }
        let (p, bytes) = if fetch::is_remote(f.get_ref()) {
            let bytes = remote
                .get(f.get_ref())
                .cloned()
                .unwrap_or_else(|| Err("not fetched yet, expected a body from the source".into()));
            (PathBuf::from(fetch::redact(f.get_ref())), bytes)
        } else {
            let p = base.join(f.get_ref());
            let bytes = read_file(&p, max_file_size).map(bytes::Bytes::from);
            (p, bytes)
        };
        data.insert(f.get_ref().clone(), DataFile { path: p, bytes });
    }
    // The fetch options of remote sources are checked whether or not they are fetched.
    let mut shape = parsed.shape.clone();
    shape.extend(parsed.fetch_errors.iter().cloned());
    match dataset::build(path, &parsed.text, config, &data) {
        Ok(d) if shape.is_empty() => Ok(d),
        Ok(_) => Err(Diagnostics::new(shape)),
        Err(e) => {
            // Problems of shape first hide what they cause: a metric left out has no labels.
            shape.extend(e.0);
            Err(Diagnostics::new(shape))
        }
    }
}

/// The remote sources a parsed config names, with their checked settings and where each URL
/// is written; and the problems of their `[fetch]` options, positioned.
fn remote_sources(
    config_file: &Path,
    text: &str,
    config: &config::Config,
) -> (Vec<RemoteSource>, Vec<Diagnostic>) {
    let map = SourceMap::new(config_file, text);
    let base = config_file.parent().unwrap_or(Path::new("."));
    let dataset = config
        .fetch
        .as_ref()
        .map(|f| f.get_ref().clone())
        .unwrap_or_default();
    let mut out: Vec<RemoteSource> = Vec::new();
    let mut errors = Vec::new();
    let structures: Vec<&String> = config
        .inputs
        .iter()
        .filter_map(|i| i.get_ref().structure.as_ref().map(|s| s.get_ref()))
        .collect();
    let named = config
        .inputs
        .iter()
        .map(|i| {
            let i = i.get_ref();
            (
                &i.file,
                i.fetch.as_ref(),
                i.pxweb.as_ref(),
                i.request.as_ref(),
            )
        })
        .chain(config.inputs.iter().filter_map(|i| {
            let i = i.get_ref();
            i.structure
                .as_ref()
                .map(|s| (s, i.fetch.as_ref(), None, None))
        }))
        .chain(config.metrics.iter().filter_map(|m| {
            m.get_ref()
                .samples_file
                .as_ref()
                .map(|f| (f, None, None, None))
        }));
    for (file, own, px, request) in named {
        if !fetch::is_remote(file.get_ref()) || out.iter().any(|r| r.url == *file.get_ref()) {
            continue;
        }
        let options = match own {
            Some(o) => dataset.merged(o.get_ref()),
            None => dataset.clone(),
        };
        let query = match px.map(|p| p.get_ref().query(|span, m| map.diag(span, m))) {
            Some(Err(problems)) => {
                errors.extend(problems);
                continue;
            }
            Some(Ok(q)) => Some(Arc::new(q)),
            None => None,
        };
        match options.settings(base) {
            Ok(mut settings) => out.push(RemoteSource {
                settings: {
                    if let Some(r) = request {
                        r.apply(&options, &mut settings);
                    }
                    settings
                },
                url: file.get_ref().clone(),
                at: map.diag(file.span(), String::new()),
                pxweb: query,
                kept: structures.contains(&file.get_ref()),
            }),
            Err(problems) => {
                errors.extend(problems.into_iter().map(|(span, m)| map.diag(span, m)));
            }
        }
    }
    (out, errors)
}

/// Parses, then builds and (for serving) renders, on blocking threads: a large dataset takes
/// CPU-bound seconds. Each step is waited for at most `limits.timeout`: a load stuck on a
/// file (a hung network mount) fails instead, and the next reload does not wait for it.
pub async fn parse_off_thread(
    path: &Path,
    text: Option<String>,
    limits: &Limits,
) -> Result<Parsed, Diagnostics> {
    let (owned, max) = (path.to_path_buf(), limits.max_file_size);
    match off_thread(limits, move || parse(&owned, max, text)).await {
        Ok(result) => result,
        Err(stuck) => Err(Diagnostics::one(Diagnostic::file(
            path,
            stuck.message(limits),
        ))),
    }
}

/// What a load made of a dataset: validated, and rendered when it is to be served.
pub struct Loaded {
    pub dataset: Arc<Dataset>,
    pub snapshot: Option<Snapshot>,
}

/// The second step of [`parse_off_thread`]: [`build`], then [`Snapshot::build`] if `render`.
pub async fn build_off_thread(
    parsed: Parsed,
    limits: &Limits,
    remote: Arc<RemoteBodies>,
    render: bool,
) -> Result<Loaded, Diagnostics> {
    tracing::debug!(config = %parsed.path.display(), "loading the dataset");
    let path = parsed.path.clone();
    let max = limits.max_file_size;
    match off_thread(limits, move || {
        let dataset = Arc::new(build(&parsed, max, &remote)?);
        let snapshot = render.then(|| Snapshot::build(dataset.clone()));
        Ok(Loaded { dataset, snapshot })
    })
    .await
    {
        Ok(result) => result,
        Err(stuck) => Err(Diagnostics::one(Diagnostic::file(
            &path,
            stuck.message(limits),
        ))),
    }
}

/// Why [`off_thread`] gave no result.
#[derive(Debug)]
pub enum Stuck {
    /// The work did not finish in time; it may still be running.
    Timeout,
    /// Too many earlier calls are still running past their timeout.
    Busy(usize),
    Panicked(String),
}

impl Stuck {
    /// What a load that gave no result says, as the message of a diagnostic.
    pub fn message(&self, limits: &Limits) -> String {
        match self {
            Stuck::Timeout => format!(
                "loading did not finish within {} s (a file that cannot be read?), expected a load to finish; still serving what was loaded before",
                limits.timeout.as_secs()
            ),
            Stuck::Busy(n) => format!(
                "{n} earlier loads are still running past their timeout (a file that cannot be read?), expected them to end before another starts"
            ),
            Stuck::Panicked(e) => format!("loading failed internally: {e}"),
        }
    }
}

/// Runs `work` on a blocking thread and waits at most `limits.timeout` for it. Work that
/// outlives its wait is counted in `limits.abandoned` until it ends.
pub async fn off_thread<T: Send + 'static>(
    limits: &Limits,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Stuck> {
    let abandoned = limits.abandoned.load(Ordering::Acquire);
    if abandoned >= MAX_ABANDONED_LOADS {
        return Err(Stuck::Busy(abandoned));
    }
    // The worker and its waiter agree through `state` on who counts an abandoned load:
    // 0 running, 1 finished, 2 abandoned by the waiter.
    let state = Arc::new(AtomicUsize::new(0));
    let (worker_state, counter) = (state.clone(), limits.abandoned.clone());
    let handle = tokio::task::spawn_blocking(move || {
        let out = work();
        if worker_state.swap(1, Ordering::AcqRel) == 2 {
            counter.fetch_sub(1, Ordering::AcqRel);
        }
        out
    });
    match tokio::time::timeout(limits.timeout, handle).await {
        Ok(Ok(out)) => Ok(out),
        Ok(Err(e)) => Err(Stuck::Panicked(e.to_string())),
        Err(_) => {
            if state
                .compare_exchange(0, 2, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                limits.abandoned.fetch_add(1, Ordering::AcqRel);
            }
            Err(Stuck::Timeout)
        }
    }
}

/// Reads and validates the dataset with the default [`Limits`].
pub fn load(path: &Path) -> Result<Dataset, Diagnostics> {
    load_with(path, DEFAULT_MAX_FILE_SIZE)
}

/// Reads and validates one dataset without remote sources (they are "not fetched"), reading
/// no file larger than `max_file_size` bytes: [`parse`] then [`build`].
pub fn load_with(path: &Path, max_file_size: u64) -> Result<Dataset, Diagnostics> {
    build(
        &parse(path, max_file_size, None)?,
        max_file_size,
        &RemoteBodies::new(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[tokio::test]
    async fn a_stuck_load_is_abandoned_at_its_timeout_and_counted_until_it_ends() {
        let limits = Limits {
            timeout: Duration::from_millis(50),
            ..Limits::default()
        };
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let stuck = off_thread(&limits, move || wait.recv().is_ok()).await;
        assert!(matches!(stuck, Err(Stuck::Timeout)), "{stuck:?}");
        assert_eq!(limits.abandoned.load(Ordering::Acquire), 1);
        // The next load is not held up by the stuck one (given time to run on a busy machine).
        let patient = Limits {
            timeout: Duration::from_secs(30),
            ..limits.clone()
        };
        assert_eq!(off_thread(&patient, || 7).await.unwrap(), 7);
        // Once the stuck load ends, it is no longer counted.
        release.send(()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while limits.abandoned.load(Ordering::Acquire) != 0 {
            assert!(
                Instant::now() < deadline,
                "the abandoned load was never uncounted"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn too_many_stuck_loads_refuse_the_next_one() {
        let limits = Limits {
            timeout: Duration::from_millis(20),
            ..Limits::default()
        };
        let mut releases = Vec::new();
        for _ in 0..MAX_ABANDONED_LOADS {
            let (release, wait) = std::sync::mpsc::channel::<()>();
            releases.push(release);
            let r = off_thread(&limits, move || wait.recv().is_ok()).await;
            assert!(matches!(r, Err(Stuck::Timeout)));
        }
        let refused = off_thread(&limits, || ()).await;
        assert!(
            matches!(refused, Err(Stuck::Busy(n)) if n == MAX_ABANDONED_LOADS),
            "{refused:?}"
        );
        drop(releases);
    }
}
